"""The watches after a reset (``_ResetWatch``: the conversation's ``FlowClosed`` waits while the
resetting side's later segments are checked, ``SentAfterReset``) end in the order of their resets,
whatever ends them: their time running out at a sweep (``_watch_until``, every
``idle_check_every`` segments), ``tick``, the capture's end, or a segment on a watched 4-tuple
after the watch's time or a new SYN there (which end, first, every watch whose time was up by
then: ``TcpReassembler._end_watch``)."""
from __future__ import annotations

from typing import Any

from _tcp_builder import Conv, R
from pcapsmtp.model import TcpSegment
from pcapsmtp.tcp.events import FlowClosed, SentAfterReset
from pcapsmtp.tcp.reassembler import ReassemblyConfig, TcpReassembler

T0 = 1_000_000_000_000
SEC = 10**9
BANNER = b"220 mx ESMTP\r\n"
EHLO = b"EHLO c\r\n"
WINDOW = ReassemblyConfig().reset_watch_ns


def _conversation(cport: int, ts: int) -> tuple[Conv, list[TcpSegment]]:
    """Handshake, banner, EHLO, and the server's reset (frame numbers are set by ``_capture``)."""
    c = Conv(cport=cport, ts=ts)
    segs = c.handshake() + [c.s(1, BANNER, ack=1), c.c(1, EHLO, ack=1 + len(BANNER)),
                            c.s(1 + len(BANNER), flags=R)]
    return c, segs


def _capture(late_on: int) -> tuple[list[TcpSegment], TcpSegment]:
    """Two conversations, each ended by a reset of its server, the second's 1 s after the first's;
    the second's server goes on sending 0.5 s after its reset (``SentAfterReset``). Then a segment
    on the 4-tuple of conversation ``late_on`` once both watches' time is up."""
    c0, first = _conversation(40001, T0)
    c1, second = _conversation(40002, first[-1].ts_ns + SEC - 5_000_000)
    going_on = c1.s(1 + len(BANNER), b"250 mx\r\n", ack=1 + len(EHLO))
    going_on.ts_ns = second[-1].ts_ns + SEC // 2
    late_conv = (c0, c1)[late_on]
    late = late_conv.c(1 + len(EHLO), b"QUIT\r\n", ack=1 + len(BANNER))
    late.ts_ns = second[-1].ts_ns + WINDOW + SEC
    segs = first + second + [going_on, late]
    for i, s in enumerate(segs, 1):
        s.frame = i
    return segs, late


def _ends(ev: list[Any]) -> list[tuple[str, int]]:
    return [(type(e).__name__, e.stream) for e in ev if isinstance(e, (FlowClosed, SentAfterReset))]


ORDER = [("FlowClosed", 0), ("SentAfterReset", 1), ("FlowClosed", 1)]


def test_a_late_segment_on_the_later_watch_ends_the_earlier_one_first() -> None:
    segs, late = _capture(1)
    r = TcpReassembler()
    before = [e for s in segs[:-1] for e in r.feed(s)]
    assert _ends(before) == []                  # both watches still running
    assert _ends(r.feed(late)) == ORDER
    assert _ends(r.finish()) == []


def test_a_late_segment_on_the_earlier_watch_ends_both() -> None:
    """On the first conversation's 4-tuple: both watches' time was up, both end, in order."""
    segs, late = _capture(0)
    r = TcpReassembler()
    for s in segs[:-1]:
        r.feed(s)
    assert _ends(r.feed(late)) == ORDER


def test_the_same_order_as_a_sweep_tick_or_the_end_gives() -> None:
    """The order without the late segment: the capture's end, ``tick``, a sweep at every segment."""
    segs, late = _capture(1)
    r = TcpReassembler()
    ev = [e for s in segs[:-1] for e in r.feed(s)]
    assert _ends(ev + r.finish()) == ORDER
    r = TcpReassembler()
    for s in segs[:-1]:
        r.feed(s)
    assert _ends(r.tick(late.ts_ns)) == ORDER
    r = TcpReassembler(ReassemblyConfig(idle_check_every=1))
    assert _ends([e for s in segs for e in r.feed(s)]) == ORDER


def test_a_new_syn_on_the_later_watch_ends_the_earlier_one_first() -> None:
    """A new connection on the second conversation's 4-tuple (a SYN with a new ISN) once both
    watches' time is up: the second's watch ends with its conversation, after the first's."""
    segs, late = _capture(1)
    syn = Conv(cport=40002, cisn=777_000, ts=late.ts_ns, frame=late.frame).handshake()[0]
    r = TcpReassembler()
    for s in segs[:-1]:
        r.feed(s)
    assert _ends(r.feed(syn)) == ORDER
