"""Hand-built TcpSegments for the reassembler tests: a tiny two-endpoint conversation builder."""
from __future__ import annotations

from collections.abc import Iterable

from pcapsmtp.model import TcpFlags, TcpSegment
from pcapsmtp.tcp.events import FlowClosed, FlowEvent, FlowOpened, StreamData, StreamGap
from pcapsmtp.tcp.reassembler import TcpReassembler

F, S, R, P, A = TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST, TcpFlags.PSH, TcpFlags.ACK
MASK = 0xFFFFFFFF


class Conv:
    """Builds segments between a client and a server, numbering frames from ``frame``.

    ``c(...)``/``s(...)`` make a client/server segment; ``seq`` is relative to the side's
    ISN (0 = the SYN, 1 = the first payload byte) unless ``raw=True``."""

    def __init__(self, cip: str = "10.0.0.1", cport: int = 40000, sip: str = "10.0.0.2",
                 sport: int = 25, cisn: int = 1000, sisn: int = 5000, frame: int = 1,
                 ts: int = 1_000_000_000_000) -> None:
        self.cip, self.cport, self.sip, self.sport = cip, cport, sip, sport
        self.cisn, self.sisn = cisn, sisn
        self.frame = frame
        self.ts = ts

    def _seg(self, client: bool, rel: int, flags: int, data: bytes, ack: int | None,
             missing: int, raw: bool) -> TcpSegment:
        isn = self.cisn if client else self.sisn
        peer = self.sisn if client else self.cisn
        seq = rel & MASK if raw else (isn + rel) & MASK
        ackv = 0 if ack is None else (peer + ack) & MASK
        if ack is not None:
            flags |= A
        src, sp, dst, dp = ((self.cip, self.cport, self.sip, self.sport) if client
                            else (self.sip, self.sport, self.cip, self.cport))
        seg = TcpSegment(self.frame, self.ts, src, sp, dst, dp, seq, ackv, int(flags), data,
                         missing)
        self.frame += 1
        self.ts += 1_000_000
        return seg

    def c(self, rel: int, data: bytes = b"", flags: int = 0, ack: int | None = None,
          missing: int = 0, raw: bool = False) -> TcpSegment:
        return self._seg(True, rel, flags, data, ack, missing, raw)

    def s(self, rel: int, data: bytes = b"", flags: int = 0, ack: int | None = None,
          missing: int = 0, raw: bool = False) -> TcpSegment:
        return self._seg(False, rel, flags, data, ack, missing, raw)

    def handshake(self) -> list[TcpSegment]:
        return [self.c(0, flags=S), self.s(0, flags=S, ack=1), self.c(1, ack=1)]


def side_bytes(events: list[FlowEvent], side: str) -> bytes:
    """Concatenated StreamData of one side, checking offsets are contiguous (gaps skip)."""
    out = bytearray()
    pos = 0
    for e in events:
        if isinstance(e, StreamData) and e.side == side:
            assert e.offset == pos, (e.offset, pos)
            out += e.data
            pos += len(e.data)
        elif isinstance(e, StreamGap) and e.side == side:
            assert e.offset == pos, (e.offset, pos)
            pos += e.length
    return bytes(out)


def feed_all(reasm: TcpReassembler, segs: Iterable[TcpSegment]) -> list[FlowEvent]:
    out: list[FlowEvent] = []
    for s in segs:
        out.extend(reasm.feed(s))
    out.extend(reasm.finish())
    return out


def assert_bracketed(ev: list[FlowEvent]) -> None:
    """Every flow's events come between its FlowOpened and its FlowClosed, and all close."""
    open_: set[int] = set()
    for e in ev:
        if isinstance(e, FlowOpened):
            assert e.flow.stream not in open_
            open_.add(e.flow.stream)
        elif isinstance(e, FlowClosed):
            open_.remove(e.stream)
        else:
            assert e.stream in open_
    assert not open_
