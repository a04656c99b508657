"""A reading of the SMTP session (the twenty-fifth session, ``smtp/session.py``).

- ``smtp25-mail-530-starttls-lost-then-tls.pcap``: the client's MAIL FROM in the clear after a valid
  offer, the server's 530 "Must issue a STARTTLS command first" and the client's STARTTLS both lost
  by the capture (the peer acknowledged each), then the server's 220 and a whole TLS 1.2 session.
  The 220 answers only STARTTLS (RFC 3207 4), the server's hole since its last reply holds the
  MAIL's answer and the client's hole since its MAIL (10 bytes) is room for a STARTTLS: the 220
  answers the STARTTLS lost in the client's hole (``SmtpSession._replies_lost_with_starttls``), and
  the TLS that follows proves the client asked: ``tls``. It read ``client-did-not-request`` (the
  client's), the 220 paired with the MAIL and the server's TLS read as reply lines
  (``live-mail-refused-then-starttls.pcap`` without frames 12 and 14).
"""
from __future__ import annotations

from typing import Any

from generate import (
    EHLO, EHLO_NO_TLS, MAIL_STEPS, QUIT_STEPS, READY, STARTTLS, Capture, Conv, Expect, opening,
    tls12_session,
)

MAIL = b"MAIL FROM:<alice@client.example.org>\r\n"
MUST_STARTTLS = b"530 5.7.0 Must issue a STARTTLS command first\r\n"


def mail_refused_starttls_lost(cport: int) -> Conv:
    """MAIL FROM in the clear, its 530 and the client's STARTTLS lost by the capture, the 220 and a
    whole TLS 1.2 session (the mail inside it)."""
    conv = opening(Conv(cport=cport))
    conv.c(MAIL, tag="mail")
    conv.s(MUST_STARTTLS, tag="refused", lost=[0])
    conv.c(STARTTLS, tag="starttls", lost=[0])
    conv.s(READY, tag="starttls_reply")
    encrypted = [("C", EHLO), ("S", EHLO_NO_TLS)] + MAIL_STEPS + QUIT_STEPS
    return tls12_session(conv, f"smtp25 {cport}", "mx.example.com", "mx.example.com", encrypted)


def scenarios() -> list[Capture]:
    caps: list[Any] = [
        Capture("smtp25-mail-530-starttls-lost-then-tls.pcap",
                "MAIL FROM in the clear, the server's 530 and the client's STARTTLS lost by the capture, then the "
                "220 and a whole TLS session: the 220 answers the STARTTLS lost in the client's hole (tls)",
                [(mail_refused_starttls_lost(48901),
                  Expect("tls", "none", "tls-established", "valid", True, 220,
                         [("tcp-gap", "capture", "lost_segment:S"), ("tcp-gap", "capture", "starttls_reply")]))]),
    ]
    return caps
