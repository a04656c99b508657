"""A client's plaintext in the middle of the TLS handshake, where the capture's two directions do
not tell the order on one clock (the twenty-first session's review of ``_spoke_clear_at_once``
and ``_answer_not_received``, analysis/verdict.py).

- ``quitcross-stall-quit-1-2-s-client-tap-behind.pcap``: the server's TLS 1.2 answer stops before
  its ServerHelloDone, acknowledged at once; the client's QUIT in the clear 1.2 s later and its
  close 1.5 s after (PHPMailer giving up), captured by merged taps whose client side runs 300 ms
  behind. The client's wait is counted from its own acknowledgement (its clock, as its QUIT's), not
  from the server's record as the server's tap stamped it: the client waited, the server's
  (``server-silent``), as without the skew (``hunt7-stall-client-quit-in-clear-after-1-2-s.pcap``).
  It read the client's ("901 ms after"), the two taps' clocks compared.
- ``quitcross-late-answer-crossed-quit.pcap``: the server answers the ClientHello 30 s late with its
  whole TLS 1.2 flight; the client's QUIT in the clear 5 ms after, whose ACK is from before the
  answer (sent before any of it arrived: it crossed the answer), its close 1.5 s later. The rule for
  plaintext sent at once after the answer does not apply (the client's acknowledgement advanced
  only with its close, after the QUIT), and the QUIT's own segment shows the client had nothing of
  the server's 30 s after its ClientHello, the answer acknowledged by its close (it crossed the
  QUIT, it was not lost): the server's (``server-silent``), as a QUIT filed before the answer reads
  (the twenty-fourth session; the general rule read it, the client's at its close).
- ``quitcross-answer-lost-quit-after-30s.pcap``: the server's whole answer is resent three times
  and never acknowledged (the path dropped it); 30 s after it the client sends QUIT in the clear and
  closes 1.5 s later. The plaintext is no TLS of the client's: the answer never reached the client,
  the path's (``middlebox``, case ``answer-lost``), as when the client closes without a QUIT. It
  read the client's ("closed the connection after the ServerHello").
- ``quitcross-answer-lost-quit-at-once.pcap``: the same lost answer, but the client's QUIT in the
  clear 5 ms after its first copy, its close 30 s later: the client gave up at once, before the
  answer could reach it (the client's, at the QUIT, the detail saying its TCP had not acknowledged
  the answer), as a QUIT 5 ms after a ClientHello never answered (``hunt8``). It read the path's
  once the plaintext stopped counting as the client's answer (found by the second review).
- ``quitcross-hello-resent-quit-after-last-resend.pcap``: the ClientHello resent 1 and 3 s after it,
  never acknowledged, the client's QUIT in the clear 5 ms after the last copy and its close 30 s
  later: the path's (``hello-lost``); the detail gives the QUIT's time once, not the close's too
  (it said "33.0 s after it the client gave up waiting and sent 'QUIT' ... 3.0 s after it").
- ``quitcross-quit-before-answer.pcap``: the client's QUIT in the clear 5 ms after its ClientHello,
  the server's whole answer 40 ms later (acknowledged), the client's close 30 s after: the client
  gave up on TLS at once, before any answer; the answer that came after the QUIT changes nothing of
  that (the client's, at the QUIT). It read ``client-silent`` ("sent nothing ... without a word"),
  the rule for plaintext soon after a ClientHello stopping at the ServerHello before the close;
  merged taps a few milliseconds apart put a QUIT sent just after the answer arrived before it the
  same way (found by the second review and the skew sweep).
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, Pkt, client_hello, opening
from scenarios_hunt6 import _answer
from scenarios_hunt7 import quit_in_clear


def quit_acks_before(pkts: list[Pkt], marks: dict[str, tuple[str, int]], tag: str) -> Pkt:
    """Make the client segment carrying ``QUIT`` acknowledge only what came before the step ``tag``
    (it was sent before any of that step arrived); return that QUIT segment."""
    side, off = marks[tag]
    first = next(p for p in pkts if p.side == side and p.payload and p.off is not None and p.off >= off)
    quit_seg = next(p for p in pkts if p.side == "C" and p.payload == b"QUIT\r\n")
    quit_seg.ack = first.seq
    return quit_seg


class CrossedQuit(Conv):
    """A conversation whose client segment carrying ``QUIT`` acknowledges only what came before
    the server's step ``tag``: it was sent before any of that step arrived."""

    def __init__(self, *, tag: str, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.tag = tag

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        quit_acks_before(pkts, marks, self.tag)
        return pkts, marks


class QuitAtOnce(Conv):
    """A conversation whose client ``QUIT`` is sent ``quit_ms`` after the first copy of the server's
    step ``tag`` (before that step's resends), the server's ACK of it 1 ms later."""

    def __init__(self, *, tag: str, quit_ms: float, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.tag, self.quit_ms = tag, quit_ms

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        side, off = marks[self.tag]
        first = next(p for p in pkts if p.side == side and p.payload and p.off is not None and p.off >= off)
        at = next(i for i, p in enumerate(pkts) if p.side == "C" and p.payload == b"QUIT\r\n")
        pkts[at].ts_ns = first.ts_ns + int(self.quit_ms * 1_000_000)
        assert pkts[at + 1].side == "S" and not pkts[at + 1].payload
        pkts[at + 1].ts_ns = pkts[at].ts_ns + 1_000_000
        pkts.sort(key=lambda p: p.ts_ns)
        return pkts, marks


def _hello(conv: Conv, cport: int) -> Conv:
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"quitcross {cport}", "mx.example.com", tls13=False), tag="client_hello")
    return conv


def late_answer_crossed_quit(cport: int) -> Conv:
    """The whole TLS 1.2 answer 30 s after the ClientHello, the client's QUIT 5 ms after it
    carrying an ACK from before it, the client's close 1.5 s later."""
    conv = _hello(CrossedQuit(tag="flight", cport=cport, close=None), cport)
    conv.s(_answer(cport, "tls12"), tag="flight", delay_ms=30000.0, acked=False)
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=5.0, acked=False)
    conv.fin("C", tag="client_fin", delay_ms=1500.0, acked=False)
    return conv


def answer_lost_quit(cport: int) -> Conv:
    """The whole TLS 1.2 answer, resent 1, 3 and 7 s after it and never acknowledged; the client's
    QUIT in the clear 30 s after it, its close 1.5 s later, each acknowledged by the server (whose
    sequence number then shows the bytes it had sent)."""
    conv = _hello(Conv(cport=cport, close=None), cport)
    conv.s(_answer(cport, "tls12"), tag="flight", resend_ms=(1000.0, 3000.0, 7000.0))
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=30000.0)
    conv.fin("C", tag="client_fin", delay_ms=1500.0)
    return conv


def answer_lost_quit_at_once(cport: int) -> Conv:
    """The whole TLS 1.2 answer, resent 1, 3 and 7 s after it and never acknowledged; the client's
    QUIT in the clear 5 ms after its first copy, the client's close 30 s after the QUIT's place in
    the steps (each acknowledged by the server)."""
    conv = _hello(QuitAtOnce(tag="flight", quit_ms=5.0, cport=cport, close=None), cport)
    conv.s(_answer(cport, "tls12"), tag="flight", resend_ms=(1000.0, 3000.0, 7000.0))
    conv.c(b"QUIT\r\n", tag="quit")
    conv.fin("C", tag="client_fin", delay_ms=30000.0)
    return conv


def hello_resent_quit(cport: int) -> Conv:
    """The ClientHello resent 1 and 3 s after it, never acknowledged; the client's QUIT in the clear
    5 ms after the last copy, its close 30 s later."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"quitcross {cport}", "mx.example.com"), tag="client_hello", resend_ms=(1000.0, 3000.0))
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=5.0, acked=False)
    conv.fin("C", tag="client_fin", delay_ms=30000.0, acked=False)
    return conv


def quit_before_answer(cport: int) -> Conv:
    """The client's QUIT in the clear 5 ms after its ClientHello, the server's whole TLS 1.2 answer
    40 ms after the QUIT, the client's close 30 s later."""
    conv = _hello(Conv(cport=cport, close=None), cport)
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=5.0)
    conv.s(_answer(cport, "tls12"), tag="flight", delay_ms=40.0)
    conv.fin("C", tag="client_fin", delay_ms=30000.0)
    return conv


def scenarios() -> list[Capture]:
    return [
        Capture("quitcross-stall-quit-1-2-s-client-tap-behind.pcap",
                "the server's answer stops before its ServerHelloDone, acknowledged; the client's QUIT in the clear "
                "1.2 s later, its close 1.5 s after; merged taps, the client's 300 ms behind: the client waited, "
                "the server's (server-silent)",
                [(quit_in_clear(48801, "tls12-no-done", 1200.0),
                  Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         [("no-answer", "server", "flight")]))],
                client_skew_ms=-300),
        Capture("quitcross-late-answer-crossed-quit.pcap",
                "the server's whole answer 30 s after the ClientHello; the client's QUIT 5 ms after it, sent before "
                "the answer arrived (its ACK is from before it), its close 1.5 s later: the client waited 30 s for an "
                "answer that crossed its QUIT (server-silent)",
                [(late_answer_crossed_quit(48802),
                  Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         [("no-answer", "server", "client_hello")]))]),
        Capture("quitcross-answer-lost-quit-after-30s.pcap",
                "the server's whole answer resent three times, never acknowledged; the client's QUIT in the clear "
                "30 s later, its close 1.5 s after: the path dropped the answer (answer-lost)",
                [(answer_lost_quit(48803),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                         [("answer-not-received", "middlebox", "flight")]))]),
        Capture("quitcross-answer-lost-quit-at-once.pcap",
                "the server's whole answer resent three times, never acknowledged; the client's QUIT in the clear "
                "5 ms after its first copy, its close 30 s later: the client gave up at once (the client's)",
                [(answer_lost_quit_at_once(48804),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220))]),
        Capture("quitcross-hello-resent-quit-after-last-resend.pcap",
                "the ClientHello resent twice, never acknowledged; the client's QUIT in the clear 5 ms after the last "
                "copy, its close 30 s later: the path dropped the ClientHello (hello-lost)",
                [(hello_resent_quit(48805),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                         [("request-not-received", "middlebox", "client_hello")]))]),
        Capture("quitcross-quit-before-answer.pcap",
                "the client's QUIT in the clear 5 ms after its ClientHello, the server's whole answer 40 ms later, "
                "the client's close 30 s after: the client gave up at once (the client's, at the QUIT)",
                [(quit_before_answer(48806),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220))]),
    ]
