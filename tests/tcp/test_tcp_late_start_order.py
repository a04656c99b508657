"""Where a stream starts when the capture shows its first packets out of order.

- A side whose start TCP does not tell (a late start: no SYN or SYN-ACK of it, no handshake
  ACK of the other side) starts at the lowest sequence number of its first segments, whatever
  order they arrive in: its bytes wait (``HalfStream.soft``) until the other side sends more
  than a pure ACK of none of them, its own FIN/RST, a bound, or the causal window in time.
- An ACK that would be the handshake ACK (the client's first segment after its SYN, a pure ACK
  at ISN+1, nothing of the server seen) is not one when server bytes before the start it would
  give show up: it acknowledged them (``tcp.streams.refutes_ack_start``).
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tcp_builder import MASK, Conv, F, S, feed_all, side_bytes
from pcapsmtp.model import Side
from pcapsmtp.tcp.events import FlowEvent, FlowInfo, FlowOpened, StreamData, StreamGap
from pcapsmtp.tcp.reassembler import ReassemblyConfig, TcpReassembler

N = int(os.environ.get("TCP_PROPERTY_EXAMPLES", "150"))

GREETING = b"220 mx.example.org ESMTP\r\n"        # 26 bytes
EHLO = b"EHLO client.example\r\n"                 # 21 bytes
REPLY = b"250 ok\r\n"
G, E = len(GREETING), len(EHLO)


def _info(ev: list[FlowEvent]) -> FlowInfo:
    (opened,) = [e for e in ev if isinstance(e, FlowOpened)]
    return opened.flow


def _data(ev: list[FlowEvent], side: Side) -> list[tuple[int, bytes, int]]:
    return [(e.offset, e.data, e.frame) for e in ev if isinstance(e, StreamData) and e.side is side]


def _gaps(ev: list[FlowEvent]) -> list[StreamGap]:
    return [e for e in ev if isinstance(e, StreamGap)]


# ------------------------------------------------------------------ an ACK before the bytes it acks

def test_an_ack_seen_before_the_bytes_it_acknowledges_is_no_handshake_ack() -> None:
    """No SYN-ACK, no handshake ACK; the client's ACK of the banner is in the file before the
    banner. While nothing of the server is seen it looks like the handshake ACK; the banner
    then lies before the start it would give: it acknowledged the banner, so the server's
    start is not known (as when the ACK comes after the banner), and the banner is the
    server's first byte seen instead of bytes dropped before a start."""
    for port in (25, 2600):
        c = Conv(sport=port)
        syn, ack, banner = c.c(0, flags=S), c.c(1, ack=1 + G), c.s(1, GREETING, ack=1)
        ev = feed_all(TcpReassembler(ReassemblyConfig(detect_by_content=True)),
                      [syn, ack, banner, c.c(1, EHLO, ack=1 + G), c.s(1 + G, REPLY, ack=1 + E)])
        info = _info(ev)
        assert (info.client_start, info.server_start, info.midstream) == (1001, None, True), port
        assert side_bytes(ev, Side.SERVER) == GREETING + REPLY, port
        assert _data(ev, Side.SERVER)[0] == (0, GREETING, banner.frame), port
        assert not _gaps(ev), port


def test_an_ack_of_the_banners_first_byte_while_the_next_is_held() -> None:
    """Another port (found by content): the banner's second byte first (held: the client's
    handshake ACK may still tell its start, and ``2`` does not decide), then the client's ACK
    of the first byte (taken for the handshake ACK: it acknowledges none of the bytes seen),
    then the first byte, before that start: the ACK acknowledged it, no start is known, and
    the banner is read whole once its bytes decide. (A known limit: on an SMTP port the
    conversation opens at that ACK, before the first byte comes, so the start it gave stays
    and that byte is before it.)"""
    c = Conv(sport=2600)
    segs = [c.c(0, flags=S), c.s(2, GREETING[1:2], ack=1), c.c(1, ack=2),
            c.s(1, GREETING[:1], ack=1), c.s(3, GREETING[2:], ack=1), c.c(1, EHLO, ack=1 + G),
            c.s(1 + G, REPLY, ack=1 + E)]
    ev = feed_all(TcpReassembler(ReassemblyConfig(detect_by_content=True)), segs)
    info = _info(ev)
    assert (info.server_start, info.midstream) == (None, True)
    assert side_bytes(ev, Side.SERVER) == GREETING + REPLY
    assert not _gaps(ev)


def test_a_start_from_the_synack_is_not_refuted() -> None:
    """The SYN-ACK's ack tells the client's start: a client segment before it is still bytes
    before the start (the SYN-ACK answers the SYN itself, it acknowledges no data)."""
    c = Conv()
    hs = c.handshake()
    ev = feed_all(TcpReassembler(), [hs[1], c.c(-2, b"xyz" + EHLO, ack=1)])
    assert _info(ev).client_start == 1001
    assert side_bytes(ev, Side.CLIENT) == EHLO


# ------------------------------------------------------------------ a late start's lowest seq

def _late(first_server: list[int], first_client: list[int], cut: int = 9
          ) -> tuple[list[FlowEvent], dict[str, int]]:
    """No SYN, no SYN-ACK: the client's handshake ACK, the banner in two segments (in the
    order ``first_server`` gives), the client's ACK of it, the EHLO in two segments (order
    ``first_client``), the reply. Returns the events and the frames of the pieces."""
    c = Conv()
    ack0 = c.c(1, ack=1)
    b = [(1, GREETING[:cut]), (1 + cut, GREETING[cut:])]
    e = [(1, EHLO[:5]), (6, EHLO[5:])]
    bs = [c.s(b[i][0], b[i][1], ack=1) for i in first_server]
    ack1 = c.c(1, ack=1 + G)
    es = [c.c(e[i][0], e[i][1], ack=1 + G) for i in first_client]
    reply = c.s(1 + G, REPLY, ack=1 + E)
    frames = {f"b{i}": s.frame for i, s in zip(first_server, bs)}
    frames.update({f"e{i}": s.frame for i, s in zip(first_client, es)})
    return feed_all(TcpReassembler(), [ack0, *bs, ack1, *es, reply]), frames


def test_a_late_start_starts_at_the_lowest_sequence_number_whatever_the_order() -> None:
    """The banner's and the EHLO's second segments written first: each side still starts at
    its lowest sequence number; each byte keeps the frame that carried it."""
    ref, _ = _late([0, 1], [0, 1])
    for order in ([0, 1], [1, 0]):
        for corder in ([0, 1], [1, 0]):
            ev, fr = _late(order, corder)
            info = _info(ev)
            assert (info.client_start, info.server_start, info.midstream) == (None, None, True)
            assert side_bytes(ev, Side.SERVER) == GREETING + REPLY
            assert side_bytes(ev, Side.CLIENT) == EHLO
            assert _data(ev, Side.SERVER)[:2] == [(0, GREETING[:9], fr["b0"]),
                                                  (9, GREETING[9:], fr["b1"])]
            assert _data(ev, Side.CLIENT) == [(0, EHLO[:5], fr["e0"]), (5, EHLO[5:], fr["e1"])]
            assert not _gaps(ev)
            # the same events in the same order, but for the frames
            strip = [(type(x).__name__, getattr(x, "side", None), getattr(x, "offset", None),
                      getattr(x, "data", None)) for x in ev]
            assert strip == [(type(x).__name__, getattr(x, "side", None),
                              getattr(x, "offset", None), getattr(x, "data", None)) for x in ref]


def test_a_soft_side_keeps_the_capture_order_with_the_other_sides_bytes() -> None:
    """The client's bytes wait only until the server sends more than a pure ACK of none of
    them: here its payload (a reply to an earlier command, not acknowledging the EHLO): the
    EHLO is delivered first, as in the capture."""
    c = Conv()
    segs = [c.c(1, EHLO, ack=1), c.s(1, REPLY, ack=1), c.c(1 + E, b"QUIT\r\n", ack=1 + len(REPLY))]
    ev = feed_all(TcpReassembler(), segs)
    kinds = [(e.side, e.offset) for e in ev if isinstance(e, StreamData)]
    assert kinds == [(Side.CLIENT, 0), (Side.SERVER, 0), (Side.CLIENT, E)]


def test_an_ack_seen_before_a_soft_sides_bytes_does_not_fix_its_start() -> None:
    """Merged taps: the client's EHLO (acknowledging the whole banner) before any server
    byte, then the banner's second segment, then its first: the EHLO's acknowledgement does
    not make the first segment older than the capture, it moves the start back."""
    c = Conv()
    segs = [c.c(0, flags=S), c.c(1, EHLO, ack=1 + G), c.s(11, GREETING[10:], ack=1),
            c.c(1 + E, ack=1 + G), c.s(1, GREETING[:10], ack=1),
            c.s(1 + G, REPLY, ack=1 + E), c.c(1 + E, b"QUIT\r\n", ack=1 + G + len(REPLY))]
    ev = feed_all(TcpReassembler(), segs)
    assert _info(ev).server_start is None
    assert side_bytes(ev, Side.SERVER) == GREETING + REPLY
    assert not _gaps(ev)


def test_a_segment_far_before_the_lowest_is_not_moved_to() -> None:
    """More than 64 KiB before a soft side's lowest sequence number: not its start (a
    retransmission from long before, or garbage)."""
    c = Conv()
    segs = [c.s(1 + 70_000, GREETING, ack=1), c.s(1, b"x" * 10, ack=1),
            c.c(1, EHLO, ack=1 + 70_000 + G)]
    ev = feed_all(TcpReassembler(), segs)
    assert _data(ev, Side.SERVER) == [(0, GREETING, segs[0].frame)]


def test_the_start_moves_no_more_past_the_bound() -> None:
    """Past ``detect_segments`` segments (or ``detect_bytes`` bytes) buffered, a soft side
    settles: a segment before it that comes later is older, dropped. (The client's pure ACK
    comes first: with nothing of the client in the capture the server's first segment would wait
    for the client's first one, and the ones after it behind it, none buffered, ``_unseen``.)"""
    c = Conv()
    client = c.c(1, ack=1)
    pieces = [c.s(1 + k, GREETING[k:k + 1], ack=1) for k in range(3, G)]
    late = c.s(1, GREETING[:3], ack=1)
    for bound, want in ((len(pieces) + 1, GREETING), (len(pieces), GREETING[3:])):
        ev = feed_all(TcpReassembler(ReassemblyConfig(detect_segments=bound)),
                      [client] + pieces + [late])
        assert side_bytes(ev, Side.SERVER) == want, bound


def test_live_time_settles_a_soft_side() -> None:
    """Live capture: no segment comes, time passes (``tick``): the soft side's bytes are
    delivered once the causal window has passed since its first segment."""
    c = Conv()
    r = TcpReassembler()
    seg = c.s(1, GREETING, ack=1)
    ev = r.feed(seg)
    assert not _data(ev, Side.SERVER)
    assert not _data(r.tick(seg.ts_ns + r.config.causal_window_ns - 1), Side.SERVER)
    assert _data(r.tick(seg.ts_ns + r.config.causal_window_ns), Side.SERVER) == [
        (0, GREETING, seg.frame)]


def test_a_fin_or_reset_settles_it() -> None:
    for flags in (F, 0x04):
        c = Conv()
        ev = feed_all(TcpReassembler(), [c.s(11, GREETING[10:], ack=1),
                                         c.s(1, GREETING[:10], ack=1),
                                         c.s(1 + G, flags=flags, ack=1)])
        assert side_bytes(ev, Side.SERVER) == GREETING


# ------------------------------------------------------------------ property

@st.composite
def late_start(draw: st.DrawFn) -> tuple[bytes, bytes, Conv, list[int]]:
    server = draw(st.binary(min_size=1, max_size=600))
    client = draw(st.binary(min_size=1, max_size=300))
    conv = Conv(cisn=draw(st.integers(0, MASK)), sisn=draw(st.integers(0, MASK)))
    # at most 40 pieces (within the bound of 64 segments held)
    cuts = sorted(set(draw(st.lists(st.integers(1, len(server) - 1), max_size=39))
                      if len(server) > 1 else []))
    order = draw(st.permutations(range(len(cuts) + 1)))
    return server, client, conv, [0, *cuts, len(server)], list(order)  # type: ignore[return-value]


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(late_start())
def test_a_late_starts_first_segments_in_any_order_give_the_same_stream(sc: tuple) -> None:
    """No SYN, no SYN-ACK: the server's first segments (up to the client's first segment that
    acknowledges them) in any order give the same stream, from the lowest sequence number,
    without a gap; each byte keeps its frame."""
    server, client, conv, bounds, order = sc
    segs = [conv.c(1, ack=1)]
    frame_of: dict[int, int] = {}
    for k in order:
        s = conv.s(1 + bounds[k], server[bounds[k]:bounds[k + 1]], ack=1)
        frame_of[bounds[k]] = s.frame
        segs.append(s)
    segs += [conv.c(1, client, ack=1 + len(server)),
             conv.s(1 + len(server), flags=F, ack=1 + len(client)),
             conv.c(1 + len(client), flags=F, ack=2 + len(server))]
    ev = feed_all(TcpReassembler(), segs)
    assert side_bytes(ev, Side.SERVER) == server
    assert side_bytes(ev, Side.CLIENT) == client
    assert not _gaps(ev)
    assert [(off, fr) for off, _, fr in _data(ev, Side.SERVER)] == [
        (b, frame_of[b]) for b in bounds[:-1]]


# ------------------------------------------------------------------ the wait for a handshake ACK

def test_the_clients_next_segment_ends_the_wait_at_once() -> None:
    """No SYN-ACK, the banner before any client segment but the SYN: held for the client's
    handshake ACK. The client's next segment decides at once: its EHLO, or its ACK of exactly
    the banner, is no handshake ACK (a late start of the server's side), a pure ACK at its
    ISN+1 acknowledging none of the banner is one. The banner comes out with the EHLO (the
    client's first payload: a late start's bytes wait for the other side's payload, an ACK of
    them waits for them), with the handshake ACK at once (its start is known)."""
    for nxt, start, with_it in ((lambda c: [c.c(1, EHLO, ack=1 + G)], None, 0),
                                (lambda c: [c.c(1, ack=1 + G), c.c(1, EHLO, ack=1 + G)], None, 1),
                                (lambda c: [c.c(1, ack=1)], 5001, 0)):
        c = Conv()
        r = TcpReassembler()
        banner = c.s(1, GREETING, ack=1)
        assert r.feed(c.c(0, flags=S)) == [] and r.feed(banner) == []
        segs = nxt(c)
        ev = r.feed(segs[0])
        assert _info(ev).server_start == start
        if with_it:
            assert not _data(ev, Side.SERVER)
            ev = r.feed(segs[1])
        assert _data(ev, Side.SERVER) == [(0, GREETING, banner.frame)]


def test_a_held_banner_waits_no_longer_than_the_causal_window() -> None:
    """The client stays silent after the banner (live capture: time passes without
    segments): the wait for its handshake ACK ends after the causal window, as any wait for
    the other tap's segments; the banner then starts the server's side (a late start). The
    same bound in capture time: a handshake ACK that comes that late tells nothing."""
    c = Conv()
    r = TcpReassembler()
    window = r.config.causal_window_ns
    banner = c.s(1, GREETING, ack=1)
    assert r.feed(c.c(0, flags=S)) == [] and r.feed(banner) == []
    assert r.tick(banner.ts_ns + window - 1) == []
    ev = r.tick(banner.ts_ns + window)
    assert (_info(ev).server_start, _info(ev).midstream) == (None, True)
    assert _data(ev, Side.SERVER) == [(0, GREETING, banner.frame)]
    for delay, start in ((window - 1_000_000, 5001), (window, None)):
        c = Conv()
        syn, banner = c.c(0, flags=S), c.s(1, GREETING, ack=1)
        c.ts = banner.ts_ns + delay
        ev = feed_all(TcpReassembler(), [syn, banner, c.c(1, ack=1), c.c(1, EHLO, ack=1 + G)])
        assert _info(ev).server_start == start, delay
        assert side_bytes(ev, Side.SERVER) == GREETING


# ------------------------------------------------------------------ a side not seen yet

def _order(ev: list[FlowEvent]) -> list[tuple[Side, int, int]]:
    return [(e.side, e.offset, len(e.data)) for e in ev if isinstance(e, StreamData)]


C_, S_ = Side.CLIENT, Side.SERVER


def test_a_segment_before_any_of_the_other_side_waits_for_its_first_one() -> None:
    """SYN, no SYN-ACK: the client's EHLO, acknowledging the whole greeting, comes before any
    segment of the server (two taps merged, the client's ahead). No sequence number of the
    server says the EHLO acknowledges bytes not seen: it waits for the server's first segment,
    whose bytes it acknowledges, so the greeting (its tail first) is read before it."""
    c = Conv()
    segs = [c.c(0, flags=S), c.c(1, EHLO, ack=1 + G), c.s(11, GREETING[10:], ack=1),
            c.s(1, GREETING[:10], ack=1), c.s(1 + G, REPLY, ack=1 + E)]
    ev = feed_all(TcpReassembler(), segs)
    assert _order(ev) == [(S_, 0, 10), (S_, 10, G - 10), (C_, 0, E), (S_, G, len(REPLY))]


def test_the_first_segment_of_the_other_side_past_it_goes_after_it() -> None:
    """The same EHLO, and the server's first segment is its reply (the greeting lost): the
    EHLO, which acknowledges none of its bytes, goes first, at once."""
    c = Conv()
    segs = [c.c(0, flags=S), c.c(1, EHLO, ack=1 + G), c.s(1 + G, REPLY, ack=1 + E)]
    r = TcpReassembler()
    out = [e for s in segs[:2] for e in r.feed(s)]
    assert _order(out) == []
    out += r.feed(segs[2])
    assert _order(out)[0] == (C_, 0, E)


def test_a_capture_of_one_direction_waits_once() -> None:
    """Nothing of the server ever comes (a capture of the client's direction): the first
    segment waits the causal window (here 1 ns: the second segment is held behind it, then both
    go), then no segment waits for the server again."""
    c = Conv()
    lines = [b"EHLO a\r\n", b"MAIL FROM:<a@b>\r\n", b"QUIT\r\n"]
    segs, off = [c.c(0, flags=S)], 1
    for line in lines:
        segs.append(c.c(off, line, ack=1))
        off += len(line)
    r = TcpReassembler(ReassemblyConfig(causal_window_ns=1))
    ev = feed_all(r, segs)
    assert side_bytes(ev, Side.CLIENT) == b"".join(lines)
    assert r.stats.causal_held == 2


def test_a_pure_ack_tells_where_a_late_side_stands() -> None:
    """A late start (no SYN): the client's pure ACK, then the server's reply to the EHLO before
    the EHLO (two taps merged): the pure ACK's sequence number is the client's next byte, so
    the reply acknowledges bytes of the client not seen yet and waits for them."""
    c = Conv()
    segs = [c.s(1, GREETING, ack=1), c.c(1, ack=1 + G), c.s(1 + G, REPLY, ack=1 + E),
            c.c(1, EHLO, ack=1 + G)]
    ev = feed_all(TcpReassembler(), segs)
    assert _order(ev) == [(S_, 0, G), (C_, 0, E), (S_, G, len(REPLY))]
