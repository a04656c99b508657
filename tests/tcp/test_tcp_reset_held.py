"""A reset that ends the conversation while segments of the other side are held (they wait for
bytes of the resetting side not read yet, ``TcpReassembler._flow_segment``): those that
acknowledge bytes past the reset's sequence number come after it in causal order (bytes the
resetting side sent after its reset, or never: the real end's reply racing a box's forged
reset, two taps merged). They are after the close, not read as the conversation's, and what
they acknowledge is no loss; whatever else was held with them (a segment acknowledging bytes
below the reset, read before it with the gap its acknowledgement proves), as ``_close`` does
with what it finds held."""
from __future__ import annotations

from _stream_events import events
from _tcp_builder import Conv, R, feed_all
from pcapsmtp.model import Side
from pcapsmtp.tcp.events import FlowClosed, FlowEvent
from pcapsmtp.tcp.reassembler import ReassemblyConfig, TcpReassembler

C, S = Side.CLIENT, Side.SERVER
BANNER = b"220 mx ESMTP\r\n"            # server 0..14
EHLO = b"EHLO c\r\n"                    # client 0..8
NOOP = b"NOOP\r\n"                      # client 8..14
QUIT = b"QUIT\r\n"                      # client 14..20
B, E = len(BANNER), len(EHLO)
#: where the box's reset stands in the server's sequence space: 20 bytes after the banner (the
#: server's EHLO reply, which the capture holds none of)
RST_AT = 1 + B + 20


def _run(noop_acks: int) -> tuple[TcpReassembler, list[FlowEvent]]:
    """Banner, EHLO; the client's NOOP acknowledging ``noop_acks`` bytes of the server after the
    banner, its QUIT acknowledging 40 (past the reset), then a reset with the server's address
    and a TTL none of the server's segments came with (a box's: it proves no bytes of the server
    and waits for none), without ACK (it waits for nothing of the client either)."""
    c = Conv()
    segs = c.handshake() + [
        c.s(1, BANNER, ack=1),                                  # 4
        c.c(1, EHLO, ack=1 + B),                                # 5
        c.c(1 + E, NOOP, ack=1 + B + noop_acks),                # 6
        c.c(1 + E + len(NOOP), QUIT, ack=1 + B + 40),           # 7: past the reset
        c.s(RST_AT, flags=R),                                   # 8
    ]
    for s in segs:
        s.ttl = 52 if s.src == c.sip else 64
    segs[-1].ttl = 250
    r = TcpReassembler(ReassemblyConfig(reset_watch_ns=0))
    return r, feed_all(r, segs)


def _held(r: TcpReassembler) -> int:
    return r.stats.causal_held


def test_alone_the_segment_past_the_reset_is_after_the_close() -> None:
    """The NOOP acknowledges nothing not read: only the QUIT waits, and the reset leaves it
    after the close."""
    r, ev = _run(0)
    assert _held(r) == 1 and r.stats.after_close_segments == 1
    assert events(ev) == [
        ("data", S, 0, B, 4), ("data", C, 0, E, 5), ("data", C, E, len(NOOP), 6),
        ("end", S, 0, 1, 8), ("end", C, 0, 0, 6)]
    assert isinstance(ev[-1], FlowClosed)


def test_held_with_one_below_the_reset_it_is_after_the_close_too() -> None:
    """The NOOP acknowledges 5 bytes of the server not in the capture (below the reset): it
    waits, the QUIT behind it. The reset reads the NOOP first (its acknowledgement proves the 5
    bytes lost: a gap at the NOOP), and leaves the QUIT after the close as when it waited alone:
    neither its bytes nor a gap for the 35 bytes past the reset that it acknowledges."""
    r, ev = _run(5)
    assert _held(r) == 2 and r.stats.after_close_segments == 1
    assert events(ev) == [
        ("data", S, 0, B, 4), ("data", C, 0, E, 5), ("gap", S, B, 5, 6),
        ("data", C, E, len(NOOP), 6), ("end", S, 0, 1, 8), ("end", C, 0, 0, 6)]
    assert isinstance(ev[-1], FlowClosed)
