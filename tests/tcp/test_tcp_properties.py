"""Hypothesis properties: whatever the segmentation, reordering (within the buffer bound),
duplication and identical overlap, each side's bytes come out exactly once and in order;
one dropped segment gives exactly one gap of its length at its offset."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tcp_builder import MASK, Conv, F, S, A, assert_bracketed, side_bytes
from pcapsmtp.model import Side, TcpSegment
from pcapsmtp.tcp.events import (FlowClosed, FlowEvent, FlowOpened, GapCause, OverlapConflict,
                                 StreamData, StreamEnd, StreamGap)
from pcapsmtp.tcp.reassembler import TcpReassembler

#: raise for a deeper local run, e.g. TCP_PROPERTY_EXAMPLES=5000
N = int(os.environ.get("TCP_PROPERTY_EXAMPLES", "150"))

ISNS = st.one_of(st.integers(0, MASK), st.integers(MASK - 64, MASK))


@st.composite
def cuts(draw: st.DrawFn, data: bytes) -> list[tuple[int, bytes]]:
    """Split ``data`` into (offset, chunk) pieces."""
    pieces = []
    pos = 0
    while pos < len(data):
        n = draw(st.integers(1, max(1, min(200, len(data) - pos))))
        pieces.append((pos, data[pos:pos + n]))
        pos += n
    return pieces


@st.composite
def scenario(draw: st.DrawFn, *, overlaps: bool = True) -> tuple[bytes, bytes, Conv, list]:
    client = draw(st.binary(min_size=1, max_size=1500))
    server = draw(st.binary(min_size=1, max_size=1500))
    conv = Conv(cisn=draw(ISNS), sisn=draw(ISNS))
    items: list[tuple[bool, int, bytes]] = []
    for is_client, data in ((True, client), (False, server)):
        for off, chunk in draw(cuts(data)):
            items.append((is_client, off, chunk))
        if overlaps:
            # identical copies of arbitrary ranges (retransmissions, repacketization)
            for _ in range(draw(st.integers(0, 4))):
                a = draw(st.integers(0, len(data) - 1))
                b = draw(st.integers(a + 1, min(len(data), a + 300)))
                items.append((is_client, a, data[a:b]))
    # interleave the two sides and reorder within a bounded displacement
    keys = [i + draw(st.integers(0, 6)) for i in range(len(items))]
    order = [it for _, it in sorted(zip(keys, items), key=lambda kv: kv[0])]
    return client, server, conv, order


def run(conv: Conv, order: list, client: bytes, server: bytes) -> list[FlowEvent]:
    segs: list[TcpSegment] = conv.handshake()
    for is_client, off, chunk in order:
        if is_client:
            segs.append(conv.c(1 + off, chunk, ack=1))
        else:
            segs.append(conv.s(1 + off, chunk, ack=1))
    segs.append(conv.c(1 + len(client), flags=F, ack=2 + len(server)))
    segs.append(conv.s(1 + len(server), flags=F, ack=2 + len(client)))
    r = TcpReassembler()
    out: list[FlowEvent] = []
    for s in segs:
        out += r.feed(s)
    out += r.finish()
    return out


def check_framing(ev: list[FlowEvent]) -> None:
    assert isinstance(ev[0], FlowOpened)
    assert isinstance(ev[-1], FlowClosed)
    assert sum(isinstance(e, (FlowOpened, FlowClosed)) for e in ev) == 2
    ends = [e for e in ev if isinstance(e, StreamEnd)]
    assert sorted(e.side for e in ends) == [Side.CLIENT, Side.SERVER]


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_any_segmentation_reordering_duplication_same_bytes(sc: tuple) -> None:
    client, server, conv, order = sc
    ev = run(conv, order, client, server)
    check_framing(ev)
    assert side_bytes(ev, Side.CLIENT) == client
    assert side_bytes(ev, Side.SERVER) == server
    assert not any(isinstance(e, (StreamGap, OverlapConflict)) for e in ev)
    assert ev[-1].reason == "closed"


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(overlaps=False), st.data())
def test_dropping_one_segment_gives_one_gap(sc: tuple, data: st.DataObject) -> None:
    client, server, conv, order = sc
    victim = data.draw(st.integers(0, len(order) - 1))
    is_client, off, chunk = order[victim]
    kept = order[:victim] + order[victim + 1:]
    # exact duplicates of kept segments are harmless
    kept += data.draw(st.lists(st.sampled_from(kept), max_size=3)) if kept else []
    ev = run(conv, kept, client, server)
    check_framing(ev)
    gaps = [e for e in ev if isinstance(e, StreamGap)]
    side = Side.CLIENT if is_client else Side.SERVER
    assert [(g.side, g.offset, g.length) for g in gaps] == [(side, off, len(chunk))]
    whole = client if is_client else server
    assert side_bytes(ev, side) == whole[:off] + whole[off + len(chunk):]
    other = server if is_client else client
    assert side_bytes(ev, side.other) == other


@settings(max_examples=max(1, N // 2), deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(min_size=0, max_size=40)), max_size=40),
       ISNS, ISNS)
def test_random_flags_never_raise_and_frame_flows(pieces: list, cisn: int, sisn: int) -> None:
    """Arbitrary seq/flag soup: no exception, and every flow is framed Opened..Closed."""
    conv = Conv(cisn=cisn, sisn=sisn)
    r = TcpReassembler()
    ev: list[FlowEvent] = []
    for i, (is_client, payload) in enumerate(pieces):
        flags = [0, S, S | A, F | A, A, 0x04][i % 6]
        seg = (conv.c if is_client else conv.s)((i * 37) % 97, payload, flags=flags,
                                                 ack=(i * 11) % 50)
        ev += r.feed(seg)
    ev += r.finish()
    assert_bracketed(ev)


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_snaplen_cut_bytes_are_snaplen_gaps_and_only_they(data: st.DataObject) -> None:
    """Segments each cut after a random number of bytes (the snap length), delivered in any
    order within the buffer bound, one maybe dropped: the cut tails come out as
    ``GapCause.SNAPLEN`` gaps at their offsets, named at their own frames, the dropped
    segment as one ``GapCause.LOST`` gap, and the captured bytes exactly once."""
    conv = Conv(cisn=data.draw(ISNS), sisn=data.draw(ISNS))
    sizes = data.draw(st.lists(st.integers(1, 120), min_size=2, max_size=12))
    keep = [data.draw(st.integers(0, n)) for n in sizes]
    drop = data.draw(st.one_of(st.none(), st.integers(0, len(sizes) - 2)))
    segs = conv.handshake()
    pieces: list[tuple[int, int, int, TcpSegment]] = []     # (offset, kept, cut, segment)
    off = 0
    for k, (n, kept) in enumerate(zip(sizes, keep)):
        seg = conv.s(1 + off, bytes((off + i) & 0xFF for i in range(kept)), missing=n - kept)
        if k != drop:
            pieces.append((off, kept, n - kept, seg))
        off += n
    order = data.draw(st.permutations(pieces))
    r = TcpReassembler()
    ev: list[FlowEvent] = []
    for s in segs + [p[3] for p in order]:
        ev += r.feed(s)
    ev += r.finish()
    gaps = [e for e in ev if isinstance(e, StreamGap)]
    want = sorted((o + kept, cut, p.frame) for o, kept, cut, p in pieces if cut)
    assert sorted((g.offset, g.length, g.frame) for g in gaps if g.cause is GapCause.SNAPLEN) == want
    lost = [(g.offset, g.length) for g in gaps if g.cause is GapCause.LOST]
    if drop is None:
        assert lost == []
    else:
        assert lost == [(sum(sizes[:drop]), sizes[drop])]
    got = {(e.offset + i): b for e in ev if isinstance(e, StreamData) and e.side is Side.SERVER
           for i, b in enumerate(e.data)}
    assert got == {o + i: (o + i) & 0xFF for o, kept, _, _ in pieces for i in range(kept)}
    assert r.stats.snaplen_cut_segments == sum(1 for p in pieces if p[2])
