"""Renderers: pure functions of the conversation dicts (table, JSON Lines, CSV, explain,
TLS-RPT, Wireshark references, annotated pcapng). They never decide a verdict."""
