"""A client's plaintext in the middle of the TLS handshake that has no line end, and a QUIT that
crossed the rest of a partial answer (the twenty-second session's review of ``TlsNotTls``'s time,
smtp/tls.py, and of ``_spoke_clear_at_once``, analysis/verdict.py).

``TlsNotTls`` was emitted once its first line was whole (at its LF, at most 64 bytes), or at the
stream's end: plaintext with no LF (``QUIT`` without its CRLF, bytes that are neither TLS nor a
line) took the time of the close. The TLS observer now stamps it with the time of the segment that
carried its first byte, whatever follows.

- ``hunt9-quit-no-crlf-after-hello-at-once.pcap``: STARTTLS, 220, the ClientHello (acknowledged
  at once); 5 ms later the client sends ``QUIT`` with no CRLF and closes 30 s after, the server
  silent. It read the server's (``server-silent``, "the client gave up waiting", the QUIT dated at
  the close): the client gave up on TLS at once, the client's, at the QUIT, as
  ``hunt9-quit-crlf-after-hello-at-once.pcap`` (the control, ``QUIT\\r\\n``, as
  ``hunt8-client-quit-in-clear-after-hello-at-once.pcap``).
- ``hunt9-quit-no-crlf-after-hello-1-2-s.pcap``: the control, ``QUIT`` with no CRLF 1.2 s after the
  acknowledged ClientHello, the close 30 s after it: the client waited, the server's
  (``server-silent``), the detail naming the QUIT 1.2 s after the ClientHello (it said 31.2 s).
- ``hunt9-garbage-after-hello-at-once.pcap``: 16 bytes that are neither TLS nor a line (an SSLv2
  record header after the ClientHello, which only a first record may be) 5 ms after the
  ClientHello, the close 30 s later: the client's, at those bytes (it read ``server-silent``).
- ``hunt9-quit-no-crlf-split-after-hello-at-once.pcap``: ``QU`` 5 ms after the ClientHello and
  ``IT`` 500 ms later, the close 30 s after that: the plaintext's time is its first byte's (the
  detail says 6 ms, not 506 ms), the client's at once. (Not seconds apart: a capture whose two
  segments come out of order, ``tests/test_transforms.py``'s reorder, then shows the first byte
  that much later, and the wait moves with it.)
- ``hunt9-stall-quit-no-crlf-at-once.pcap``: TLS 1.2, the server's answer stopping before its
  ServerHelloDone, acknowledged at once; 5 ms later ``QUIT`` with no CRLF, the close 1.5 s after
  (``hunt7-stall-client-quit-in-clear-at-once.pcap`` without the CRLF). It read the server's
  (``server-silent``, the QUIT dated at the close, 1.5 s after the answer): the client gave up at
  once, the client's, at the QUIT.

A QUIT 5 ms after a partial answer whose rest came 100 ms later, the client's acknowledgement of
that rest advancing after the QUIT (``_spoke_clear_at_once`` reads the client's acknowledgement as
last advanced, ``Transcript.server_acked_ns``, and leaves a plaintext it cannot place before the
answer to the general rule):

- ``hunt9-quit-crossed-answer-rest-after-it.pcap``: the QUIT's own segment acknowledges nothing of
  the answer (it was sent before any of it arrived: it crossed it); the general rule, the client's
  (``closed the connection after the ServerHello``), at its close.
- ``hunt9-quit-after-answer-rest-after-it.pcap``: the QUIT's own segment acknowledges the partial
  answer whole (sent after it arrived: it did not cross it). The client gave up on TLS at once,
  before the rest could come: ``_spoke_clear_at_once``'s reading (the detail naming the QUIT, the
  evidence frame the QUIT), from the acknowledgement the QUIT's segment carried
  (``tcp.events.StreamData.ack``, since the twenty-third session; it read as the crossing one).
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, Pkt, client_hello, opening
from scenarios_hunt6 import _answer

#: bytes that are neither TLS nor a line: an SSLv2 record header (after a ClientHello, where only
#: the first record may be SSLv2) and what follows it, no LF
GARBAGE = bytes.fromhex("802e0103010015000000100100800200")


def plain_after_hello(cport: int, plain: bytes | list[bytes], after_ms: float | list[float],
                      close_ms: float = 30000.0) -> Conv:
    """STARTTLS, 220, the client's TLS 1.3 ClientHello, acknowledged by the server at once, no
    answer; the client's ``plain`` (segments, each ``after_ms`` after the step before) and its close
    ``close_ms`` after the last, the server silent."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt9 {cport}", "mx.example.com"), tag="client_hello")
    plains = [plain] if isinstance(plain, bytes) else plain
    waits = [after_ms] if isinstance(after_ms, float) else after_ms
    for k, (data, wait) in enumerate(zip(plains, waits, strict=True)):
        conv.c(data, tag="plain" if k == 0 else f"plain{k}", delay_ms=wait, acked=False)
    conv.fin("C", tag="client_fin", delay_ms=close_ms, acked=False)
    return conv


def plain_after_partial_answer(cport: int, plain: bytes, after_ms: float) -> Conv:
    """STARTTLS, 220, the client's TLS 1.2 ClientHello and the server's answer without its
    ServerHelloDone, acknowledged at once; the client's ``plain`` ``after_ms`` after the answer and
    its close 1.5 s after that, the server silent (``scenarios_hunt7.quit_in_clear``)."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt9 {cport}", "mx.example.com"), tag="client_hello")
    conv.s(_answer(cport, "tls12-no-done"), tag="flight")
    conv.c(plain, tag="plain", delay_ms=after_ms, acked=False)
    conv.fin("C", tag="client_fin", delay_ms=1500.0, acked=False)
    return conv


class QuitAcks(Conv):
    """A conversation whose client segment carrying ``QUIT\r\n`` acknowledges the server's stream
    only up to before its step ``tag`` when ``crossed`` (sent before any of it arrived), as
    ``Conv`` writes it otherwise (all the server sent before it)."""

    def __init__(self, *, tag: str, crossed: bool, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.tag, self.crossed = tag, crossed

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        if self.crossed:
            side, off = marks[self.tag]
            first = next(p for p in pkts if p.side == side and p.payload and p.off is not None and p.off >= off)
            next(p for p in pkts if p.side == "C" and p.payload == b"QUIT\r\n").ack = first.seq
        return pkts, marks


def quit_then_rest(cport: int, *, crossed: bool) -> Conv:
    """STARTTLS, 220, the client's TLS 1.2 ClientHello, the server's answer without its
    ServerHelloDone (no pure ACK of it); the client's QUIT in the clear 5 ms after it, whose
    acknowledgement covers that partial answer (``crossed``: none of it); the ServerHelloDone 100 ms
    after the QUIT, which the client's pure ACK covers with the rest; the client's close 1.5 s
    after that."""
    conv = opening(QuitAcks(tag="flight", crossed=crossed, cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt9 {cport}", "mx.example.com"), tag="client_hello")
    whole = _answer(cport, "tls12")
    conv.s(whole[:-9], tag="flight", acked=False)      # (the ServerHelloDone record: 5 + 4 bytes)
    conv.c(b"QUIT\r\n", tag="plain", delay_ms=5.0, acked=False)
    conv.s(whole[-9:], tag="done", delay_ms=100.0)
    conv.fin("C", tag="client_fin", delay_ms=1500.0, acked=False)
    return conv


def scenarios() -> list[Capture]:
    gave_up = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220)
    silent = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                    [("no-answer", "server", "client_hello")])
    return [
        Capture("hunt9-quit-crlf-after-hello-at-once.pcap",
                "the control: STARTTLS, 220, the ClientHello (acknowledged); 5 ms later the client sends QUIT with "
                "its CRLF in the clear and closes 30 s after, the server silent: it gave up on TLS at once, the "
                "client's",
                [(plain_after_hello(48901, b"QUIT\r\n", 5.0), gave_up)]),
        Capture("hunt9-quit-no-crlf-after-hello-at-once.pcap",
                "STARTTLS, 220, the ClientHello (acknowledged); 5 ms later the client sends QUIT with no CRLF and "
                "closes 30 s after, the server silent: it gave up on TLS at once, the client's (it read "
                "server-silent, the QUIT dated at the close)",
                [(plain_after_hello(48902, b"QUIT", 5.0), gave_up)]),
        Capture("hunt9-quit-no-crlf-after-hello-1-2-s.pcap",
                "the control: QUIT with no CRLF 1.2 s after the acknowledged ClientHello, the close 30 s after it: "
                "the client waited, the server's (server-silent)",
                [(plain_after_hello(48903, b"QUIT", 1200.0), silent)]),
        Capture("hunt9-garbage-after-hello-at-once.pcap",
                "16 bytes that are neither TLS nor a line (an SSLv2 record header after the ClientHello) 5 ms "
                "after the ClientHello, the close 30 s later: the client gave up on TLS at once, the client's",
                [(plain_after_hello(48904, GARBAGE, 5.0), gave_up)]),
        Capture("hunt9-quit-no-crlf-split-after-hello-at-once.pcap",
                "QU 5 ms after the acknowledged ClientHello, IT 500 ms later, the close 30 s after: the plaintext "
                "came at once (its first byte's time), the client's",
                [(plain_after_hello(48905, [b"QU", b"IT"], [5.0, 500.0], 30000.0), gave_up)]),
        Capture("hunt9-stall-quit-no-crlf-at-once.pcap",
                "TLS 1.2, the server's answer without its ServerHelloDone, acknowledged; 5 ms later the client sends "
                "QUIT with no CRLF and closes 1.5 s after: it gave up on TLS at once, the client's (it read "
                "server-silent)",
                [(plain_after_partial_answer(48906, b"QUIT", 5.0), gave_up)]),
        Capture("hunt9-quit-crossed-answer-rest-after-it.pcap",
                "TLS 1.2, the server's answer without its ServerHelloDone; the client's QUIT 5 ms later acknowledging "
                "none of it (it crossed it), the ServerHelloDone 100 ms after the QUIT, acknowledged, the close "
                "1.5 s after: the general rule, the client's at its close",
                [(quit_then_rest(48907, crossed=True), gave_up)]),
        Capture("hunt9-quit-after-answer-rest-after-it.pcap",
                "TLS 1.2, the server's answer without its ServerHelloDone; the client's QUIT 5 ms later acknowledging "
                "all of it, the ServerHelloDone 100 ms after the QUIT, acknowledged, the close 1.5 s after: the "
                "client gave up at once (the client's)",
                [(quit_then_rest(48908, crossed=False), gave_up)]),
    ]
