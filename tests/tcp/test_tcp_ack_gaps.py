"""A hole the peer has acknowledged is a gap (Zeek's "ACK above hole"), declared before the
peer's bytes that acknowledge it: the two directions come out in causal order. The bytes may
only be late (captures merged from two taps, ``-i any`` on a multi-queue NIC): the
acknowledging segment waits for them, up to ``causal_window_ns`` of capture time, while the
segments held are no more than ``max_held_segments``, or the end of the capture; bytes that
arrive within the window are no gap at all."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tcp_builder import MASK, Conv, F, feed_all, side_bytes
from pcapsmtp.model import Side, TcpSegment
from pcapsmtp.tcp.events import FlowEvent, OverlapConflict, StreamData, StreamEnd, StreamGap
from pcapsmtp.tcp.reassembler import ReassemblyConfig, TcpReassembler

N = int(os.environ.get("TCP_PROPERTY_EXAMPLES", "150"))

R1 = b"250-mx.example.com\r\n250-PIPELINING\r\n"
R2 = b"250-SIZE 1000\r\n250-8BITMIME\r\n"
R3 = b"250 SMTPUTF8\r\n"
MAIL = b"MAIL FROM:<a@example.org>\r\n"


def per_segment(r: TcpReassembler, segs: list[TcpSegment]) -> list[list[FlowEvent]]:
    out = [r.feed(s) for s in segs]
    out.append(r.finish())
    return out


def flat(chunks: list[list[FlowEvent]]) -> list[FlowEvent]:
    return [e for c in chunks for e in c]


def where(e: FlowEvent) -> tuple[str, Side | None, int, int]:
    if isinstance(e, StreamData):
        return ("data", e.side, e.offset, e.frame)
    if isinstance(e, StreamGap):
        return ("gap", e.side, e.offset, e.frame)
    return (type(e).__name__, getattr(e, "side", None), 0, getattr(e, "frame", 0))


def test_lost_middle_of_reply_is_a_gap_before_the_next_command() -> None:
    """captures/gap-in-ehlo-reply.pcap in small: R2 lost, the client ACKs R3 and sends MAIL.
    MAIL waits for R2 (it could be late); when the capture ends without it, R2 is a gap,
    declared before MAIL (and at the frame after the hole)."""
    c = Conv()
    a, b = len(R1), len(R2)
    segs = c.handshake() + [
        c.c(1, b"EHLO x\r\n", ack=1),                 # 4
        c.s(1, R1, ack=9),                            # 5
        c.s(1 + a + b, R3, ack=9),                    # 6 (R2 was not captured)
        c.c(9, MAIL, ack=1 + a + b + len(R3)),        # 7
    ]
    chunks = per_segment(TcpReassembler(), segs)
    assert chunks[6] == []                            # MAIL waits for the bytes it acks
    assert [where(e) for e in chunks[7] if isinstance(e, (StreamData, StreamGap))] == [
        ("gap", Side.SERVER, a, 6), ("data", Side.SERVER, a + b, 6), ("data", Side.CLIENT, 8, 7)]
    gap = next(e for e in chunks[7] if isinstance(e, StreamGap))
    assert gap.length == b and gap.ts_ns == segs[5].ts_ns


def test_pure_ack_waits_then_the_peers_payload_forces_the_gap() -> None:
    """R3 lost at the end of the reply: a pure ACK past it could be the ACK of a FIN too, so
    the hole waits; the client's next command proves the order and gets the gap first."""
    c = Conv()
    a = len(R1)
    end = 1 + a + len(R3)
    segs = c.handshake() + [c.s(1, R1, ack=1), c.c(1, ack=end), c.c(1, MAIL, ack=end)]
    r = TcpReassembler()
    chunks = per_segment(r, segs)
    assert chunks[4] == [] and chunks[5] == []
    assert [where(e) for e in chunks[6][:2]] == [("gap", Side.SERVER, a, 6),
                                                 ("data", Side.CLIENT, 0, 6)]
    assert r.stats.acked_gap_bytes == len(R3)


def test_ack_of_a_seen_fin_covers_data_only() -> None:
    c = Conv()
    bye = b"221 bye\r\n"
    segs = c.handshake() + [c.s(1, GREETING, ack=1),
                            c.s(1 + len(GREETING) + len(bye), flags=F, ack=1),   # 5: FIN
                            c.c(1, ack=2 + len(GREETING) + len(bye))]            # 6: ACK of FIN
    chunks = per_segment(TcpReassembler(), segs)
    assert [where(e) for e in flat(chunks) if isinstance(e, (StreamGap, StreamEnd))][:2] == [
        ("gap", Side.SERVER, len(GREETING), 5), ("StreamEnd", Side.SERVER, 0, 5)]
    (gap,) = [e for e in flat(chunks) if isinstance(e, StreamGap)]
    assert gap.length == len(bye)


def test_ack_one_past_the_data_is_an_uncaptured_fin_not_a_gap() -> None:
    c = Conv()
    segs = c.handshake() + [c.s(1, GREETING, ack=1), c.c(1, ack=2 + len(GREETING)),
                            c.c(1, flags=F, ack=2 + len(GREETING))]
    ev = flat(per_segment(TcpReassembler(), segs))
    assert not [e for e in ev if isinstance(e, StreamGap)]


def test_fin_after_an_ack_that_covered_lost_data_declares_the_gap_at_the_fin() -> None:
    c = Conv()
    bye = b"221 bye\r\n"
    n = len(GREETING) + len(bye)
    segs = c.handshake() + [c.s(1, GREETING, ack=1), c.c(1, ack=2 + n),       # 5: waits
                            c.s(1 + n, flags=F, ack=1)]                          # 6: FIN
    chunks = per_segment(TcpReassembler(), segs)
    assert chunks[4] == []
    assert [where(e) for e in flat(chunks) if isinstance(e, (StreamGap, StreamEnd))][:2] == [
        ("gap", Side.SERVER, len(GREETING), 6), ("StreamEnd", Side.SERVER, 0, 6)]


def test_later_data_of_the_side_after_a_waiting_ack_declares_the_gap() -> None:
    c = Conv()
    a = len(R1)
    segs = c.handshake() + [c.s(1, R1, ack=1), c.c(1, ack=1 + a + len(R2)),    # 5: waits
                            c.s(1 + a + len(R2), R3, ack=1)]                     # 6
    chunks = per_segment(TcpReassembler(), segs)
    assert chunks[4] == []
    assert [where(e) for e in flat(chunks) if isinstance(e, (StreamData, StreamGap))][1:] == [
        ("gap", Side.SERVER, a, 6), ("data", Side.SERVER, a + len(R2), 6)]


def test_midstream_peer_base_unknown_ack_is_ignored() -> None:
    """The client ACKs server bytes before any server segment was captured: no offset 0 yet."""
    c = Conv()
    segs = [c.c(100, MAIL, ack=5000), c.c(100 + len(MAIL), b"RCPT TO:<b@c>\r\n", ack=9000),
            c.s(9000, b"250 ok\r\n", ack=100 + len(MAIL))]
    ev = flat(per_segment(TcpReassembler(), segs))
    assert not [e for e in ev if isinstance(e, StreamGap)]
    assert side_bytes(ev, Side.SERVER) == b"250 ok\r\n"


def test_retransmission_after_the_early_gap_is_dropped_quietly() -> None:
    c = Conv()
    a = len(R1)
    r = TcpReassembler()
    segs = c.handshake() + [c.s(1, R1, ack=1), c.s(1 + a + len(R2), R3, ack=1),
                            c.c(1, MAIL, ack=1 + a + len(R2) + len(R3)),
                            c.s(1 + a, R2, ack=1 + len(MAIL))]       # spurious retransmission
    ev = flat(per_segment(r, segs))
    gaps = [e for e in ev if isinstance(e, StreamGap)]
    assert [(g.offset, g.length) for g in gaps] == [(a, len(R2))]
    assert not [e for e in ev if isinstance(e, OverlapConflict)]
    assert r.stats.retransmitted_bytes == len(R2)


def test_wraparound_inside_the_hole() -> None:
    c = Conv(sisn=MASK - 20)
    a = len(R1)
    segs = c.handshake() + [c.s(1, R1, ack=1), c.s(1 + a + len(R2), R3, ack=1),
                            c.c(1, MAIL, ack=1 + a + len(R2) + len(R3))]
    ev = flat(per_segment(TcpReassembler(), segs))
    gaps = [(e.offset, e.length) for e in ev if isinstance(e, StreamGap)]
    assert gaps == [(a, len(R2))]
    assert side_bytes(ev, Side.SERVER) == R1 + R3


def test_window_probe_and_old_or_garbage_acks_declare_nothing() -> None:
    c = Conv()
    g = len(GREETING)
    segs = c.handshake() + [c.s(1, GREETING, ack=1),
                            c.s(1 + g, b"2", ack=1),          # zero-window probe, not accepted
                            c.c(1, ack=1 + g),                # ACK stays at the probe
                            c.c(1, ack=1),                    # an old ACK
                            c.c(1, ack=1 + g + (1 << 31)),    # nonsense
                            c.s(1 + g, b"250 ok\r\n", ack=1),
                            c.c(1, MAIL, ack=1 + g + 8)]
    ev = flat(per_segment(TcpReassembler(), segs))
    assert not [e for e in ev if isinstance(e, StreamGap)]
    assert side_bytes(ev, Side.SERVER) == GREETING + b"250 ok\r\n"


def test_snaplen_cut_piece_below_the_ack() -> None:
    """A known-missing buffered piece (snaplen) and a lost segment before it, both acked."""
    c = Conv()
    segs = c.handshake() + [c.s(1, b"abc", ack=1), c.s(11, b"kl", missing=5, ack=1),
                            c.c(1, MAIL, ack=18)]
    ev = [e for e in flat(per_segment(TcpReassembler(), segs))
          if isinstance(e, (StreamData, StreamGap))]
    assert [(e.offset, e.length) for e in ev if isinstance(e, StreamGap)] == [(3, 7), (12, 5)]
    assert [where(e)[0] for e in ev] == ["data", "gap", "data", "gap", "data"]


GREETING = b"220 mx.example.org ESMTP\r\n"


# ---------------------------------------------------------------------------- property

@st.composite
def dialogue(draw: st.DrawFn) -> tuple[list[tuple[bool, bytes]], bool]:
    """Turns of a conversation: (client?, bytes), alternating, server first."""
    turns = []
    for i in range(draw(st.integers(2, 7))):
        turns.append((i % 2 == 1, draw(st.binary(min_size=1, max_size=400))))
    return turns, draw(st.booleans())


def build(conv: Conv, turns: list[tuple[bool, bytes]], cuts: list[list[int]], pure_acks: bool
          ) -> tuple[list[TcpSegment], list[tuple[bool, int, int, int]]]:
    """Segments of the turns in order, every one acknowledging all the peer sent before it.
    Returns the segments and, per data segment, (client?, offset, length, index in segs)."""
    segs = conv.handshake()
    sent = {True: 0, False: 0}
    info = []
    for (is_client, data), cut in zip(turns, cuts):
        bounds = [0] + sorted(set(cut)) + [len(data)]
        for a, b in zip(bounds, bounds[1:]):
            if a == b:
                continue
            mk = conv.c if is_client else conv.s
            info.append((is_client, sent[is_client] + a, b - a, len(segs)))
            segs.append(mk(1 + sent[is_client] + a, data[a:b], ack=1 + sent[not is_client]))
        sent[is_client] += len(data)
        if pure_acks:
            mk = conv.s if is_client else conv.c
            segs.append(mk(1 + sent[not is_client], ack=1 + sent[is_client]))
    segs.append(conv.c(1 + sent[True], flags=F, ack=1 + sent[False]))
    segs.append(conv.s(1 + sent[False], flags=F, ack=2 + sent[True]))
    segs.append(conv.c(2 + sent[True], ack=2 + sent[False]))
    return segs, info


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dialogue(), st.data())
def test_dropped_segment_gap_comes_at_the_first_later_peer_segment(sc: tuple, data: st.DataObject
                                                                   ) -> None:
    turns, pure_acks = sc
    cuts = [data.draw(st.lists(st.integers(1, max(1, len(d) - 1)), max_size=4)) for _, d in turns]
    segs, info = build(Conv(cisn=data.draw(st.integers(0, MASK)),
                            sisn=data.draw(st.integers(0, MASK))), turns, cuts, pure_acks)
    is_client, off, length, idx = data.draw(st.sampled_from(info))
    kept = segs[:idx] + segs[idx + 1:]
    chunks = per_segment(TcpReassembler(), kept)
    ev = flat(chunks)
    side = Side.CLIENT if is_client else Side.SERVER
    gaps = [e for e in ev if isinstance(e, StreamGap)]
    assert [(g.side, g.offset, g.length) for g in gaps] == [(side, off, length)]
    whole = b"".join(d for c, d in turns if c == is_client)
    assert side_bytes(ev, side) == whole[:off] + whole[off + length:]
    assert side_bytes(ev, side.other) == b"".join(d for c, d in turns if c != is_client)
    # causal order: every byte of the other side sent after the lost one (its segment acks
    # past the hole) comes after the gap
    hole_end = off + length
    by_frame = {sg.frame: sg for sg in kept}
    base = segs[idx].seq - off
    gi = ev.index(gaps[0])
    for i, e in enumerate(ev):
        if isinstance(e, StreamData) and e.side is side.other:
            sg = by_frame[e.frame]
            if ((sg.ack - base - hole_end) & MASK) < (1 << 31):
                assert i > gi, (e, gaps[0])
    ends = [e for e in ev if isinstance(e, StreamEnd)]
    assert sorted(e.side for e in ends) == [Side.CLIENT, Side.SERVER]


# ---------------------------------------------------------------------------- late, not lost

def test_reply_captured_before_its_command_is_late_not_lost() -> None:
    """Two taps merged out of order: the server's reply (it acks the EHLO) comes before the
    EHLO in the capture. The reply waits for the EHLO; no gap; each byte keeps its frame."""
    c = Conv()
    g = len(GREETING)
    ehlo = b"EHLO x\r\n"
    hs = c.handshake()
    greet = c.s(1, GREETING, ack=1)                                  # 4
    reply = c.s(1 + g, R3, ack=1 + len(ehlo))                        # 5 (answers frame 6)
    cmd = c.c(1, ehlo, ack=1 + g)                                    # 6
    segs = hs + [greet, reply, cmd, c.c(1 + len(ehlo), MAIL, ack=1 + g + len(R3))]
    r = TcpReassembler()
    chunks = per_segment(r, segs)
    assert chunks[4] == []
    assert [where(e) for e in chunks[5]] == [("data", Side.CLIENT, 0, 6),
                                             ("data", Side.SERVER, g, 5)]
    ev = flat(chunks)
    assert not [e for e in ev if isinstance(e, StreamGap)]
    assert r.stats.causal_held == 1 and r.stats.causal_late == 1


def test_crossing_fins_that_ack_each_other_close_without_a_gap() -> None:
    c = Conv()
    segs = c.handshake() + [c.s(1, GREETING, ack=1),
                            c.c(1, flags=F, ack=2 + len(GREETING)),          # acks the server FIN
                            c.s(1 + len(GREETING), flags=F, ack=2)]          # acks the client FIN
    ev = flat(per_segment(TcpReassembler(), segs))
    assert not [e for e in ev if isinstance(e, StreamGap)]
    assert ev[-1].reason == "closed"


def _lost_r2(c: Conv) -> list[TcpSegment]:
    a, b = len(R1), len(R2)
    return c.handshake() + [c.c(1, b"EHLO x\r\n", ack=1), c.s(1, R1, ack=9),
                            c.s(1 + a + b, R3, ack=9),                        # 6 (R2 lost)
                            c.c(9, MAIL, ack=1 + a + b + len(R3))]            # 7: waits


def test_the_segments_held_bound_the_wait() -> None:
    c = Conv()
    end = 1 + len(R1) + len(R2) + len(R3)
    segs = _lost_r2(c) + [c.c(9 + len(MAIL), ack=end) for _ in range(3)]     # 8, 9, 10
    r = TcpReassembler(ReassemblyConfig(max_held_segments=2))
    chunks = per_segment(r, segs)
    got = [i for i, ch in enumerate(chunks) if any(isinstance(e, StreamGap) for e in ch)]
    assert got == [8]           # frame 9: the third segment held (MAIL's, 8 and 9; bound 2)
    assert [where(e) for e in chunks[8][:3]] == [
        ("gap", Side.SERVER, len(R1), 6), ("data", Side.SERVER, len(R1) + len(R2), 6),
        ("data", Side.CLIENT, 8, 7)]


def test_the_window_in_capture_time_bounds_the_wait() -> None:
    c = Conv()
    end = 1 + len(R1) + len(R2) + len(R3)
    segs = _lost_r2(c)
    c.ts += 3 * 10**9                                                         # 3 s later
    segs.append(c.c(9 + len(MAIL), ack=end))                                  # 8
    r = TcpReassembler(ReassemblyConfig(causal_window_ns=2 * 10**9))
    chunks = per_segment(r, segs)
    got = [i for i, ch in enumerate(chunks) if any(isinstance(e, StreamGap) for e in ch)]
    assert got == [7]


def test_live_tick_ends_the_wait_without_a_new_segment() -> None:
    c = Conv()
    segs = _lost_r2(c)
    r = TcpReassembler(ReassemblyConfig(causal_window_ns=2 * 10**9))
    for s in segs:
        r.feed(s)
    assert not [e for e in r.tick(segs[-1].ts_ns + 10**9) if isinstance(e, StreamGap)]
    got = r.tick(segs[-1].ts_ns + 3 * 10**9)
    assert [where(e) for e in got if isinstance(e, (StreamGap, StreamData))] == [
        ("gap", Side.SERVER, len(R1), 6), ("data", Side.SERVER, len(R1) + len(R2), 6),
        ("data", Side.CLIENT, 8, 7)]


def _order(events: list[FlowEvent]) -> list[tuple[str, int, int]]:
    """(kind, side, offset) of the data and gap events, in the order they came out."""
    return [("data" if isinstance(e, StreamData) else "gap", e.side, e.offset)
            for e in events if isinstance(e, (StreamData, StreamGap))]


def test_a_reply_that_waits_for_a_command_follows_it_when_the_command_waits_for_lost_bytes() -> None:
    """Two taps merged out of order, and a lost server segment: the server's reply to MAIL
    comes before MAIL, and MAIL acknowledges the lost bytes. The reply waits for MAIL, MAIL
    waits for bytes held nowhere: when the wait is over the lost bytes are a gap declared by
    MAIL's acknowledgement, then MAIL, then the reply (the reply did not declare MAIL's bytes
    lost, nor was it read before the command it answers)."""
    c = Conv()
    segs = c.handshake() + [
        c.s(1, b"220 mx\r\n", ack=1),                         # server bytes 0..8
        c.c(1, b"EHLO a\r\n", ack=9),                         # client bytes 0..8
        c.s(9, b"250-mx\r\n", ack=9),                         # server 8..16; 16..24 lost
        c.s(25, b"250 2.1.0 Ok\r\n", ack=9 + 15),             # answers MAIL, before it
        c.c(9, b"MAIL FROM:<a>\r\n", ack=25),                 # acknowledges the lost bytes
    ]
    events = feed_all(TcpReassembler(), segs)
    server, client = Side.SERVER, Side.CLIENT
    order = _order(events)
    assert order[-3:] == [("gap", server, 16), ("data", client, 8), ("data", server, 24)], order
