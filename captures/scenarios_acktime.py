"""When the client acknowledged the server's answer to its ClientHello (the twentieth session).

The rule for a client that had the server's whole answer and hung (``_server_gave_up_on_client_flight``
in analysis/verdict.py; ``hunt5-client-hangs-after-answer*.pcap``) read only how far the client's
acknowledgements reached by the end of the capture. A client whose acknowledgement of the answer
comes only with its own close, after the server's handshake timeout closed, was blamed as one
that had the answer all along; but nothing shows it had the answer before the server gave up (a
stack acknowledges within its delayed-ACK timeout, at most 500 ms: the answer may have reached
it late, or its earlier acknowledgements may be missing). The TCP layer now tells when each
side's acknowledgement last advanced (``FlowClosed.server_acked_ns``), and the client is blamed
only when it acknowledged the whole answer before its own close, not only with it (an ACK's time
is not compared with the server's close: two directions, which merged taps stamp with their
clocks' skew).

- ``acktime-answer-acked-at-client-close.pcap``: STARTTLS, 220, ClientHello, the server's whole
  answer (ServerHello to ServerHelloDone) with no acknowledgement of the client's; the server's
  FIN 60 s later, the client's FIN 5 s after, acknowledging the answer (and the server's FIN)
  for the first time: ``incomplete`` (it was the client's, ``client-silent``).
- ``acktime-answer-acked-2s-before-server-close.pcap``: the same, that ACK 2 s before the
  server's FIN (58 s after the answer): the client had the whole answer and sat on it: the
  client's (``client-silent``).
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, LateAck, client_hello, opening, server_flight_tls12

#: the server's TLS handshake timeout (it closes this long after its answer to the ClientHello)
SERVER_TLS_TIMEOUT_MS = 60000.0


def answer_acked_late(cport: int, ack_after_ms: float | None, fin_acked: bool = False) -> Conv:
    """STARTTLS, 220, the ClientHello and the server's whole TLS 1.2 answer, not acknowledged at
    once; the client's first acknowledgement of it ``ack_after_ms`` after it (None: only with its
    FIN); the server's handshake timeout closes ``SERVER_TLS_TIMEOUT_MS`` after the answer, the
    client 5 s after that, having sent nothing (``fin_acked``: the client's stack acknowledges the
    server's FIN at once, an ACK that covers the answer too)."""
    conv = opening(LateAck(cport=cport, close=None, tag="flight", ack_after_ms=ack_after_ms))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"acktime {cport}", "mx.example.com"), tag="client_hello")
    flight, _hello_len = server_flight_tls12(f"acktime {cport}", "mx.example.com")
    conv.s(flight, tag="flight", acked=False)
    conv.fin("S", tag="server_fin", delay_ms=SERVER_TLS_TIMEOUT_MS, acked=fin_acked)
    conv.fin("C", tag="client_fin", delay_ms=5000.0)
    return conv


def scenarios() -> list[Capture]:
    unsure = Expect("incomplete", "unknown", "incomplete", "valid", True, 220)
    return [
        Capture("acktime-answer-acked-at-client-close.pcap",
                "STARTTLS, 220, ClientHello; the server's whole answer (ServerHello to ServerHelloDone), which "
                "no ACK of the client's follows; the server's handshake timeout closes 60 s later, the client's "
                "FIN 5 s after acknowledges the answer for the first time",
                [(answer_acked_late(48601, None), unsure)]),
        Capture("acktime-first-ack-covers-server-fin.pcap",
                "as acktime-answer-acked-at-client-close.pcap, the client's stack acknowledging the server's FIN "
                "at once: that ACK, the first to cover the answer, was sent after the FIN arrived, so nothing shows "
                "the client had the answer while the server waited",
                [(answer_acked_late(48604, None, fin_acked=True), unsure)]),
        Capture("acktime-answer-acked-2s-before-server-close.pcap",
                "as acktime-answer-acked-at-client-close.pcap, the client's first ACK of the answer 2 s before "
                "the server's FIN: it had the whole answer and sent nothing",
                [(answer_acked_late(48603, SERVER_TLS_TIMEOUT_MS - 2000.0),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                         [("client-silent", "client", "flight")]))]),
    ]
