"""Conversations whose verdict live mode must not give too early (docs/live.md, "When a verdict
appears"): live mode prints a conversation once its verdict is settled, and what it prints must
be what ``pcapsmtp analyze`` gives on the whole capture (tests/test_invariants.py holds that
over every shipped capture). Each capture here has a point where an earlier rule settled it
while the rest of the conversation still changed the verdict.
"""
from __future__ import annotations

from generate import TLS_OK, Capture, Conv, opening, starttls_ok


def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    add = caps.append

    # A server that wants TLS before mail: the client's MAIL FROM in the clear is refused
    # (530, RFC 3207 4), the client then asks for STARTTLS and delivers over TLS. A MAIL in the
    # clear settles nothing until the server accepts it.
    c = opening(Conv(cport=45260))
    c.c(b"MAIL FROM:<alice@client.example.org>\r\n")
    c.s(b"530 5.7.0 Must issue a STARTTLS command first\r\n")
    add(Capture("live-mail-refused-then-starttls.pcap",
                "the client's MAIL FROM in the clear is refused with 530 (STARTTLS first); the client "
                "then asks for STARTTLS and delivers over TLS",
                [(starttls_ok(c, "live 530"), TLS_OK)]))
    return caps
