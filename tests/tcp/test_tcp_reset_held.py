"""A reset that ends the conversation while segments of the other side are held (they wait for
bytes of the resetting side not read yet, ``TcpReassembler._flow_segment``): those that
acknowledge bytes past the reset's sequence number come after it in causal order (bytes the
resetting side sent after its reset, or never: the real end's reply racing a box's forged
reset, two taps merged). They are after the close, not read as the conversation's, and what
they acknowledge is no loss; whatever else was held with them (a segment acknowledging bytes
below the reset, read before it with the gap its acknowledgement proves), as ``_close`` does
with what it finds held."""
from __future__ import annotations

import pytest
from _stream_events import events
from _tcp_builder import Conv, F, R, feed_all
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


def _run(noop_acks: int, rst_ttl: int = 250, quit_after: bool = False,
         ) -> tuple[TcpReassembler, list[FlowEvent]]:
    """Banner, EHLO; the client's NOOP acknowledging ``noop_acks`` bytes of the server after the
    banner, its QUIT acknowledging 40 (past the reset), then a reset with the server's address
    without ACK (it waits for nothing of the client). Its TTL ``rst_ttl``: by default one none
    of the server's segments (52) came with (a box's: it proves no bytes of the server and waits
    for none); within a hop of 52 the server's own, which proves the 20 bytes before it sent
    and waits for them (``HalfStream.reset_past``). ``quit_after``: the QUIT is captured after
    the reset (the reset is frame 7 then, the QUIT 8)."""
    c = Conv()
    segs = c.handshake() + [
        c.s(1, BANNER, ack=1),                                  # 4
        c.c(1, EHLO, ack=1 + B),                                # 5
        c.c(1 + E, NOOP, ack=1 + B + noop_acks),                # 6
    ]
    last = [lambda: c.c(1 + E + len(NOOP), QUIT, ack=1 + B + 40),   # 7: past the reset
            lambda: c.s(RST_AT, flags=R)]                       # 8
    segs += [make() for make in (last[::-1] if quit_after else last)]
    for s in segs:
        s.ttl = 52 if s.src == c.sip else 64
        if s.flags & R:
            s.ttl = rst_ttl
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


@pytest.mark.parametrize("rst_ttl", [52, 53])
@pytest.mark.parametrize("quit_after", [False, True])
def test_a_held_reset_leaves_the_segment_past_it_after_the_close(rst_ttl: int,
                                                                 quit_after: bool) -> None:
    """The reset is the server's own (its TTL, or one hop off it: ``reset_ttl_foreign``'s
    slack) and lies 20 bytes past the server's last byte read: it waits for them itself
    (``reset_past``). The QUIT, acknowledging 40 bytes of the server, comes after it in causal
    order whether captured before it or after it: it is after the close, not read as the
    conversation's, and declares no gap of 40 bytes reaching past the reset; the reset declares
    the 20 bytes it proves, at its own frame."""
    r, ev = _run(0, rst_ttl, quit_after)
    rst = 7 if quit_after else 8
    assert r.stats.after_close_segments == 1
    assert events(ev) == [
        ("data", S, 0, B, 4), ("data", C, 0, E, 5), ("data", C, E, len(NOOP), 6),
        ("gap", S, B, 20, rst), ("end", S, 0, 1, rst), ("end", C, 0, 0, 6)]
    assert isinstance(ev[-1], FlowClosed)


@pytest.mark.parametrize("rst_ttl", [52, 53])
def test_a_held_reset_reads_the_segment_below_it_first(rst_ttl: int) -> None:
    """The NOOP acknowledges 5 bytes not in the capture (below the reset): read first, its gap
    at its frame; the reset then proves the 15 bytes between them and its own sequence number;
    the QUIT past it is after the close."""
    r, ev = _run(5, rst_ttl)
    assert r.stats.after_close_segments == 1
    assert events(ev) == [
        ("data", S, 0, B, 4), ("data", C, 0, E, 5), ("gap", S, B, 5, 6),
        ("data", C, E, len(NOOP), 6), ("gap", S, B + 5, 15, 8), ("end", S, 0, 1, 8),
        ("end", C, 0, 0, 6)]


@pytest.mark.parametrize("quit_after", [False, True])
def test_a_reset_that_acknowledges_the_segment_past_it_comes_after_it(quit_after: bool) -> None:
    """The reset, the server's own by its TTL, acknowledges the QUIT: it was sent after the QUIT
    arrived, which contradicts the QUIT's acknowledgement past it. Capture order does not decide
    between them here: the QUIT is read either way (the reset's acknowledgement of its bytes is
    evidence of its own), and its acknowledgement proves the 40 bytes lost; the reset, short of
    them, proves nothing more."""
    c = Conv()
    segs = c.handshake() + [c.s(1, BANNER, ack=1), c.c(1, EHLO, ack=1 + B),
                            c.c(1 + E, NOOP, ack=1 + B)]
    last = [lambda: c.c(1 + E + len(NOOP), QUIT, ack=1 + B + 40),
            lambda: c.s(RST_AT, flags=R, ack=1 + E + len(NOOP) + len(QUIT))]
    segs += [make() for make in (last[::-1] if quit_after else last)]
    for s in segs:
        s.ttl = 52 if s.src == c.sip else 64
    r = TcpReassembler(ReassemblyConfig(reset_watch_ns=0))
    ev = feed_all(r, segs)
    quit_, rst = (8, 7) if quit_after else (7, 8)
    assert r.stats.after_close_segments == 0
    assert events(ev) == [
        ("data", S, 0, B, 4), ("data", C, 0, E, 5), ("data", C, E, len(NOOP), 6),
        ("gap", S, B, 40, quit_), ("data", C, E + len(NOOP), len(QUIT), quit_),
        ("end", S, 0, 1, rst), ("end", C, 0, 0, quit_)]


@pytest.mark.parametrize("fin_after", [False, True])
def test_a_reset_that_acknowledges_a_bare_fin_past_it_comes_after_it(fin_after: bool) -> None:
    """The same with a bare FIN in place of the QUIT: the FIN takes one sequence number, which
    the reset acknowledges, so the reset was sent after the FIN arrived and the FIN is read (the
    client's end at its own frame), not left after the close as a segment past the reset. As the
    QUIT, the FIN acknowledges the 40 bytes lost (more than one byte past: not only a FIN of the
    server's): they are declared at it, before the client's end."""
    c = Conv()
    o = 1 + E + len(NOOP)
    segs = c.handshake() + [c.s(1, BANNER, ack=1), c.c(1, EHLO, ack=1 + B),
                            c.c(1 + E, NOOP, ack=1 + B)]
    last = [lambda: c.c(o, b"", flags=F, ack=1 + B + 40),
            lambda: c.s(RST_AT, flags=R, ack=o + 1)]
    segs += [make() for make in (last[::-1] if fin_after else last)]
    for s in segs:
        s.ttl = 52 if s.src == c.sip else 64
    r = TcpReassembler(ReassemblyConfig(reset_watch_ns=0))
    ev = feed_all(r, segs)
    fin, rst = (8, 7) if fin_after else (7, 8)
    assert r.stats.after_close_segments == 0
    assert events(ev) == [
        ("data", S, 0, B, 4), ("data", C, 0, E, 5), ("data", C, E, len(NOOP), 6),
        ("gap", S, B, 40, fin), ("end", C, 0, 0, fin), ("end", S, 0, 1, rst)]


def test_a_reset_that_overtook_its_sides_reply_in_a_one_sided_capture_comes_after_it() -> None:
    """The server's direction only, without the handshake: the first segment waits for the
    client's, which never comes, and the server's later segments queue behind it in capture
    order. Its reset overtook its last reply (the 454, sequence numbers below the reset's) on
    the way to the capture: the reply is read before the reset, not lost in a gap at the reset
    and left after the close."""
    c = Conv()
    reply = b"250-mx\r\n250 STARTTLS\r\n"
    refusal = b"454 4.7.0 TLS not available\r\n"
    o = 1 + B + len(reply)
    segs = [c.s(1, BANNER, ack=1), c.s(1 + B, b"", ack=1 + E),       # 1, 2
            c.s(1 + B, reply, ack=1 + E),                             # 3
            c.s(o + len(refusal), flags=R, ack=1 + E + 10),           # 4: past the 454
            c.s(o, refusal, ack=1 + E + 10)]                          # 5
    r = TcpReassembler(ReassemblyConfig(reset_watch_ns=0))
    ev = feed_all(r, segs)
    assert r.stats.after_close_segments == 0
    assert [e for e in events(ev) if e[0] != "end"] == [
        ("data", S, 0, B, 1), ("data", S, B, len(reply), 3), ("data", S, B + len(reply), len(refusal), 5)]
    assert ("end", S, 0, 1, 4) in events(ev)
