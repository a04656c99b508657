"""How long a client waited before its plaintext in the middle of the TLS handshake, measured on
the client's own evidence (the twenty-third session's "F3" finding).

A client that gives up on TLS by sending SMTP in the clear after its ClientHello (PHPMailer's
QUIT) waited either for a server that stalled (``server-silent``) or not at all (the client's own
decision). The wait was counted from when the client's acknowledgement of the server's stream
last advanced (``Transcript.server_acked_ns``); but the client's acknowledgement of the server's
alert to the QUIT moves that past the QUIT, and the wait then fell back to the server record's
capture time: the other tap's clock in two merged taps, and on a long path the round trip on top
of the wait. Now the segment that carried the plaintext tells it itself: its acknowledgement
number (``tcp.events.StreamData.ack``, ``smtp.tls.TlsNotTls.ack``) says which of the server's
records the client had when it sent the plaintext, and ``ack_age`` since when (its
acknowledgement first reaching that far), two times of the client's own segments.

TLS 1.2, the server's answer without its ServerHelloDone, acknowledged by the client's pure ACK,
then the client's QUIT in the clear and the server's reaction (its unexpected_message alert,
which the client acknowledges, and its close; or its close alone), then the client's close:

- ``hunt12-skew-client-behind-300-ms-stall-quit-1-2-s-alert.pcap``: two taps merged, the client's
  clock 300 ms behind the server's; the QUIT 1.2 s after the answer. It read 0.9 s after the
  answer, "at once", the client's; the client waited 1.2 s for the rest of an answer that stopped
  short: the server stalled (``server-silent``), as ``hunt10-stall-quit-1-2-s-server-alert.pcap``.
- ``hunt12-skew-client-ahead-300-ms-stall-quit-1-2-s-alert.pcap``: the client's clock 300 ms ahead:
  the same (it read 1.5 s, also ``server-silent``).
- ``hunt12-skew-client-behind-300-ms-stall-quit-100-ms-alert.pcap``: the client's clock 300 ms
  behind, the QUIT 100 ms after the answer, stamped before it: the client's, at once (as before;
  the detail now says how long after the client had the answer).
- ``hunt12-long-path-400-ms-stall-quit-700-ms-alert.pcap``: a capture at the server of a path with
  a 400 ms round trip: the client's acknowledgement of the answer comes 400 ms after it, the QUIT
  700 ms after that. It read 1.1 s after the answer, ``server-silent``; the client gave up 0.7 s
  after it had the answer: at once, the client's.
- ``hunt12-long-path-400-ms-stall-quit-700-ms-fin.pcap``: the same, the server closing instead of
  its alert (the client's acknowledgement of a FIN alone does not advance it): the client's, as
  before.
- ``hunt12-stall-quit-crossed-alert.pcap``: the QUIT 5 ms after the answer acknowledges none of it
  (sent before it arrived: it crossed it): the client's at once, the detail saying that no answer
  had reached it.
- ``hunt12-stall-quit-after-answer-alert.pcap``: the control, the QUIT 5 ms after the answer
  acknowledging all of it (no pure ACK before it): the client's, at once, with the answer in hand.
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, LateAck, Pkt, alert, client_hello, opening
from scenarios_hunt6 import _answer

#: unexpected_message: OpenSSL's answer to a record whose header is no TLS
UNEXPECTED_MESSAGE = 10


class CrossingQuit(LateAck):
    """``LateAck``, and with ``crossed`` the client's segment carrying ``QUIT\\r\\n`` acknowledges
    the server's stream only up to before its step ``flight`` (sent before any of it arrived)."""

    def __init__(self, *, crossed: bool, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.crossed = crossed

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        if self.crossed:
            side, off = marks["flight"]
            first = next(p for p in pkts if p.side == side and p.payload and p.off is not None and p.off >= off)
            next(p for p in pkts if p.side == "C" and p.payload == b"QUIT\r\n").ack = first.seq
        return pkts, marks


def stall_quit(cport: int, quit_after_ms: float, react: str, *, ack_after_ms: float | None = 1.0,
               crossed: bool = False) -> Conv:
    """STARTTLS, 220, the client's TLS 1.2 ClientHello, the server's answer without its
    ServerHelloDone (one segment), acknowledged by the client's pure ACK ``ack_after_ms`` after it
    (None: no pure ACK, the QUIT's segment acknowledges it; ``crossed``: the QUIT's segment
    acknowledges none of it); the client's QUIT in the clear ``quit_after_ms`` after the answer;
    1 ms later the server's ``react``: "alert" (a cleartext unexpected_message, which the client
    acknowledges 1 ms later, and the server's close 0.1 ms after that) or "fin" (its close); the
    client's close 1 ms after the server's."""
    conv = CrossingQuit(tag="flight", ack_after_ms=ack_after_ms, segment=0, crossed=crossed, cport=cport,
                        close=None)
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt12 {cport}", "mx.example.com", tls13=False), tag="client_hello")
    conv.s(_answer(cport, "tls12-no-done"), tag="flight", acked=False)
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=quit_after_ms, acked=False)
    if react == "alert":
        conv.s(alert(UNEXPECTED_MESSAGE), tag="alert", delay_ms=1.0)
        conv.fin("S", tag="server_fin", delay_ms=0.1)
    else:
        conv.fin("S", tag="server_fin", delay_ms=1.0)
    conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def scenarios() -> list[Capture]:
    stalled = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                     [("no-answer", "server", "flight"), ("tls-alert", "server", "alert")])
    at_once_alert = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                           [("tls-alert", "server", "alert")])
    at_once = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220)
    return [
        Capture("hunt12-skew-client-behind-300-ms-stall-quit-1-2-s-alert.pcap",
                "two taps merged, the client's clock 300 ms behind: TLS 1.2, the answer without its ServerHelloDone "
                "(acknowledged), QUIT 1.2 s after it, the server's alert: the server stalled (server-silent; it read "
                "0.9 s, the client's at once)",
                [(stall_quit(49201, 1200.0, "alert"), stalled)], client_skew_ms=-300.0),
        Capture("hunt12-skew-client-ahead-300-ms-stall-quit-1-2-s-alert.pcap",
                "as the capture with the client's clock behind, the client's clock 300 ms ahead: the server stalled",
                [(stall_quit(49202, 1200.0, "alert"), stalled)], client_skew_ms=300.0),
        Capture("hunt12-skew-client-behind-300-ms-stall-quit-100-ms-alert.pcap",
                "the client's clock 300 ms behind, QUIT 100 ms after the answer (stamped before it), the server's "
                "alert: the client gave up at once, the client's",
                [(stall_quit(49203, 100.0, "alert"), at_once_alert)], client_skew_ms=-300.0),
        Capture("hunt12-long-path-400-ms-stall-quit-700-ms-alert.pcap",
                "captured at the server, a 400 ms round trip: the client's acknowledgement of the answer 400 ms after "
                "it, QUIT 700 ms after that, the server's alert: the client gave up at once, the client's (it read "
                "1.1 s, server-silent)",
                [(stall_quit(49204, 1100.0, "alert", ack_after_ms=400.0), at_once_alert)]),
        Capture("hunt12-long-path-400-ms-stall-quit-700-ms-fin.pcap",
                "as the long path's capture with the alert, the server closing instead: the client's",
                [(stall_quit(49205, 1100.0, "fin", ack_after_ms=400.0), at_once)]),
        Capture("hunt12-stall-quit-crossed-alert.pcap",
                "the QUIT 5 ms after the answer acknowledging none of it (it crossed it), the server's alert: the "
                "client gave up at once, before any answer had reached it",
                [(stall_quit(49206, 5.0, "alert", ack_after_ms=None, crossed=True), at_once_alert)]),
        Capture("hunt12-stall-quit-after-answer-alert.pcap",
                "the control: the QUIT 5 ms after the answer acknowledging all of it, the server's alert: the client "
                "gave up at once, the client's",
                [(stall_quit(49207, 5.0, "alert", ack_after_ms=None), at_once_alert)]),
    ]
