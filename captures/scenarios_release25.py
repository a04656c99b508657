"""The release of the segments held for the other side's bytes (the twenty-fifth session,
``tcp/reassembler.py`` ``_release`` and ``ReassemblyConfig.max_held_segments``).

Two taps merged, the client's clock 300 ms off the server's: a segment stamped before the bytes of
the other side it acknowledges waits for them (``Flow.held``), and each direction keeps its order
behind it. Both conversations are ``scenarios_hunt12.stall_quit`` (TLS 1.2, the server's answer
without its ServerHelloDone, the client's QUIT in the clear 100 ms or 1.2 s after it, the server's
unexpected_message alert).

- ``release25-skew-behind-220-and-hello-lost.pcap``: the client's tap 300 ms behind, and the capture
  lost the server's 220 to STARTTLS and the client's ClientHello (each acknowledged). Both heads of
  the hold wait for bytes held nowhere: the client's ACK of the 220, the server's ACK of the
  ClientHello. The older, the client's, went first and its acknowledgements then declared lost
  every server byte up to the QUIT's acknowledgement, the server's answer held behind the server's
  head included (934 bytes): the verdict read plaintext after a 220 (``tls-not-started``, the
  client's) from a capture that shows a ServerHello answering a ClientHello in the hole. Now only
  the bytes held nowhere are lost (the 220, 30 bytes, at the server's first segment past it, then
  the ClientHello) and the answer is delivered in order: ``incomplete``, as the same capture with
  the taps in order reads.
- ``release25-in-order-220-and-hello-lost.pcap`` (control): the same conversation on one clock:
  ``incomplete``, as before.
- ``release25-one-byte-skew-behind-quit-100-ms.pcap``: every segment carries one byte, the client's
  tap 300 ms behind: its QUIT, which acknowledges the server's whole answer, comes before the
  server's 1100-odd one-byte segments. Its wait was bounded by the segments of the conversation
  that came after it (1024), whatever was held: it ended before the answer's last bytes, which
  were declared lost (86 bytes, the end of the answer's last record, which the verdict reads short
  either way). The bound is now on the segments held (a few of the client's here): no gap.
The one-byte capture reads as in whole segments, before as now (the client gave up at once):
``tests/test_release25.py`` checks the gaps the reassembler declares in it. (The other way round,
the client's tap ahead, is ``hunt12-skew-client-ahead-300-ms-stall-quit-1-2-s-alert.pcap`` cut in
one-byte segments by the ordering sweep, ``tests/test_transforms.py``, which reads its stall now.)
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, alert, client_hello, opening
from scenarios_hunt6 import _answer
from scenarios_hunt12 import UNEXPECTED_MESSAGE, CrossingQuit


def quit_after_answer(cport: int, quit_after_ms: float, *, lost: bool = False, one_byte: bool = False) -> Conv:
    """``scenarios_hunt12.stall_quit`` with the server's alert; ``lost``: the capture lost the
    server's 220 to STARTTLS and the client's ClientHello; ``one_byte``: every segment carries one
    byte (the client's pure ACK then acknowledges the answer's last byte)."""
    conv = CrossingQuit(tag="flight", ack_after_ms=1.0, segment=-1 if one_byte else 0, crossed=False,
                        cport=cport, close=None, one_byte=one_byte)
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply", lost=[0] if lost else ())
    conv.c(client_hello(f"release25 {cport}", "mx.example.com", tls13=False), tag="client_hello",
           lost=[0] if lost else ())
    conv.s(_answer(cport, "tls12-no-done"), tag="flight", acked=False)
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=quit_after_ms, acked=False)
    conv.s(alert(UNEXPECTED_MESSAGE), tag="alert", delay_ms=1.0)
    conv.fin("S", tag="server_fin", delay_ms=0.1)
    conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def scenarios() -> list[Capture]:
    # (the 220's hole at the server's first segment past it, its pure ACK of the ClientHello; the
    # ClientHello's at the server's answer, the segment whose acknowledgement declares it: before
    # the client's first segment past it, its pure ACK, is processed)
    holes = Expect("incomplete", "unknown", "incomplete", "valid", True, None,
                   [("tcp-gap", "capture", "lost_segment:S"), ("tcp-gap", "capture", "flight"),
                    ("tls-alert", "server", "alert")])
    at_once = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                     [("tls-alert", "server", "alert")])
    return [
        Capture("release25-skew-behind-220-and-hello-lost.pcap",
                "two taps merged, the client's clock 300 ms behind; the server's 220 to STARTTLS and the client's "
                "ClientHello lost by the capture (each acknowledged), then the server's ServerHello, the client's "
                "QUIT in the clear 100 ms after it: only the 220 and the ClientHello are lost, the answer is "
                "delivered (incomplete, as with the taps in order)",
                [(quit_after_answer(49251, 100.0, lost=True), holes)], client_skew_ms=-300.0),
        Capture("release25-in-order-220-and-hello-lost.pcap",
                "the control: the same conversation on one clock: incomplete",
                [(quit_after_answer(49252, 100.0, lost=True), holes)]),
        Capture("release25-one-byte-skew-behind-quit-100-ms.pcap",
                "every segment one byte, the client's clock 300 ms behind: the QUIT, stamped before the server's "
                "answer it acknowledges, waits for over a thousand one-byte segments of the server: the client gave "
                "up at once, the client's",
                [(quit_after_answer(49253, 100.0, one_byte=True), at_once)], client_skew_ms=-300.0),
    ]
