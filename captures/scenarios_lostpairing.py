"""STARTTLS after a hole that swallowed the client's EHLO and the end of the EHLO reply.

The capture lost the client's EHLO and the second segment of the server's EHLO reply (both
ACKed: the endpoints got them). What is left of the reply arrived before STARTTLS but ends only
after it (at the server's next line): the server began it before it read STARTTLS, so it
answers the lost EHLO, and STARTTLS gets the 220 (the session's pairing,
captures/scenarios_pr.py has the same for other commands). The TLS records are TLS, never
command or reply lines.
"""
from __future__ import annotations

from generate import BANNER, READY, STARTTLS, Capture, Conv, Expect, alert, client_hello, tls12_session
from scenarios_explain import EHLO, REPLY_END, REPLY_HEAD     # the same EHLO reply, cut the same way


#: each hole is shown first by the other side's ACK of the lost bytes: the EHLO by the reply's
#: segment, the end of the reply by the client's STARTTLS
_HOLES = [("tcp-gap", "capture", "reply_head"), ("tcp-gap", "capture", "starttls")]


def _opening(cport: int, **kw: object) -> Conv:
    c = Conv(cport=cport, **kw)
    c.s(BANNER, tag="banner").c([EHLO], tag="greeting", lost=[0])
    c.s([REPLY_HEAD, REPLY_END], tag="reply_head", lost=[1])    # (no EHLO seen: no ehlo_reply)
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    return c


def tls_completes() -> Capture:
    c = _opening(40711)
    tls12_session(c, "lost-pairing", "mx.example.com", "mx.example.com",
                  [("C", EHLO), ("S", REPLY_HEAD + REPLY_END), ("C", b"QUIT\r\n"),
                   ("S", b"221 2.0.0 Bye\r\n")])
    return Capture(
        "lost-ehlo-starttls-tls.pcap",
        "the client's EHLO and the end of the EHLO reply are missing from the capture (ACKed); "
        "STARTTLS, 220, ClientHello: the client read the 220 as its answer; TLS 1.2 completes",
        [(c, Expect("tls", "none", "tls-established", "unknown", True, 220,
                    findings=_HOLES))])


def handshake_refused() -> Capture:
    c = _opening(40712, close=("fin", "S"))
    c.c(client_hello("lost-pairing-alert", "mx.example.com"), tag="client_hello")
    c.s(alert(40), tag="alert")
    return Capture(
        "lost-ehlo-starttls-alert.pcap",
        "the client's EHLO and the end of the EHLO reply are missing from the capture (ACKed); "
        "STARTTLS, 220, ClientHello, the server's fatal alert: what the client read before the "
        "220 is unsure, but its ClientHello shows it began TLS, and the server ended the handshake",
        [(c, Expect("aborted", "server", "tls-handshake-failed", "unknown", True, 220,
                    findings=_HOLES + [("tls-alert", "server", "alert")]))])


def scenarios() -> list[Capture]:
    return [tls_completes(), handshake_refused()]
