"""RFC 1869/5321/3207 checks and the verdict per conversation (pure functions of a
transcript: no I/O, no capture library)."""
