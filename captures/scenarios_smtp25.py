"""Two readings of the SMTP session and the verdict (the twenty-fifth session, ``smtp/session.py``
and ``analysis/verdict.py``).

- ``smtp25-mail-530-starttls-lost-then-tls.pcap``: the client's MAIL FROM in the clear after a valid
  offer, the server's 530 "Must issue a STARTTLS command first" and the client's STARTTLS both lost
  by the capture (the peer acknowledged each), then the server's 220 and a whole TLS 1.2 session.
  The 220 answers only STARTTLS (RFC 3207 4), the server's hole since its last reply holds the
  MAIL's answer and the client's hole since its MAIL (10 bytes) is room for a STARTTLS: the 220
  answers the STARTTLS lost in the client's hole (``SmtpSession._replies_lost_with_starttls``), and
  the TLS that follows proves the client asked: ``tls``. It read ``client-did-not-request`` (the
  client's), the 220 paired with the MAIL and the server's TLS read as reply lines
  (``live-mail-refused-then-starttls.pcap`` without frames 12 and 14).
- ``smtp25-answer-in-flight-quit-1-2-s.pcap``: the server's whole TLS 1.2 answer 200 ms after the
  ClientHello, on a path slower than a second (the client's ACK of the answer comes 1.5 s after
  it); the client's QUIT in the clear 1.2 s after the answer, whose segment acknowledges none of it,
  its close 1.5 s later. The client's (``client-silent``: it gave up after 1.4 s on an answer the
  server sent in 200 ms), but the detail says what the capture shows: the answer was still in
  flight, the client had not acknowledged any of it when it sent the QUIT. It said "the client had
  the server's whole answer ... and sent nothing for 1.2 s".
"""
from __future__ import annotations

from typing import Any

from generate import (
    EHLO, EHLO_NO_TLS, MAIL_STEPS, QUIT_STEPS, READY, STARTTLS, Capture, Conv, Expect, LateAck, Pkt,
    client_hello, opening, tls12_session,
)
from scenarios_hunt6 import _answer
from scenarios_quitcross import quit_acks_before

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


class QuitWithAnswerInFlight(LateAck):
    """``LateAck`` whose client ``QUIT`` acknowledges none of the server's step ``tag``: sent before
    any of it reached the client."""

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        quit_acks_before(pkts, marks, self.tag)
        return pkts, marks


def answer_in_flight_quit(cport: int) -> Conv:
    """STARTTLS, 220, the ClientHello; the server's whole TLS 1.2 answer 200 ms after it, acknowledged
    by the client only 1.5 s after its last segment (a slow path); the client's QUIT in the clear
    1.2 s after the answer, acknowledging none of it, and its close 1.5 s after the QUIT."""
    conv: Conv = QuitWithAnswerInFlight(tag="flight", ack_after_ms=1500.0, cport=cport, close=None)
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"smtp25 {cport}", "mx.example.com"), tag="client_hello")
    conv.s(_answer(cport, "tls12"), tag="flight", delay_ms=200.0, acked=False)
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=1200.0, acked=False)
    conv.fin("C", tag="client_fin", delay_ms=1500.0, acked=False)
    return conv


def scenarios() -> list[Capture]:
    caps: list[Any] = [
        Capture("smtp25-mail-530-starttls-lost-then-tls.pcap",
                "MAIL FROM in the clear, the server's 530 and the client's STARTTLS lost by the capture, then the "
                "220 and a whole TLS session: the 220 answers the STARTTLS lost in the client's hole (tls)",
                [(mail_refused_starttls_lost(48901),
                  Expect("tls", "none", "tls-established", "valid", True, 220,
                         [("tcp-gap", "capture", "lost_segment:S"), ("tcp-gap", "capture", "starttls_reply")]))]),
        Capture("smtp25-answer-in-flight-quit-1-2-s.pcap",
                "the server's whole answer 200 ms after the ClientHello on a path slower than a second; the client's "
                "QUIT in the clear 1.2 s after it, acknowledging none of it: the client's, the answer in flight",
                [(answer_in_flight_quit(48904),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                         [("client-silent", "client", "flight")]))]),
    ]
    return caps
