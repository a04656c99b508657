"""A hole proven by the sender's own later sequence number (tshark's ``tcp.analysis.lost_segment``,
"previous segment not captured"): a pure ACK or a reset of a side whose sequence number lies past
that side's next byte shows its stack had sent the bytes between; the capture lost them.

A pure ACK buffers a zero-length proof at its offset (``HalfStream.sent``): the hole before it is
declared as any hole before buffered data (at the close, when the peer acknowledges it, at the
buffer bound), at the proof's frame, and a data segment that arrives later (reordered on the way)
still fills it. A reset past its side's bytes waits for them as a segment acknowledging bytes not
delivered, then declares what is still missing at its own frame. One past the next byte (the ACK
or reset after an uncaptured FIN), at or before it (keep-alives, window probes), too far past
(garbage) or a reset with a foreign TTL (more than a hop outside its side's: forged by a box)
prove nothing."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from _stream_events import events
from _tcp_builder import MASK, Conv, F, R, feed_all, side_bytes
from pcapsmtp.model import Side, TcpSegment
from pcapsmtp.tcp.events import FlowEvent, GapCause, StreamGap
from pcapsmtp.tcp.reassembler import TcpReassembler

N = int(os.environ.get("TCP_PROPERTY_EXAMPLES", "150"))
C, S = Side.CLIENT, Side.SERVER

BANNER = b"220 mx.example.com ESMTP\r\n"                    # server 0..26
EHLO = b"EHLO client.example.org\r\n"                       # client 0..25
R1 = b"250-mx.example.com\r\n250-PIPELINING\r\n"          # server 26..62
R2 = b"250 STARTTLS\r\n"                                    # server 62..76
STARTTLS = b"STARTTLS\r\n"                                  # client 25..35
READY = b"220 2.0.0 Ready to start TLS\r\n"                 # server 76..106
HELLO = b"\x16\x03\x01\x00\x20" + bytes(32)                 # client 35..72

B, E, A1, A2, T, RD, H = (len(BANNER), len(EHLO), len(R1), len(R2), len(STARTTLS), len(READY),
                          len(HELLO))
#: relative sequence numbers (1: the first byte)
S_READY = 1 + B + A1 + A2           # the server's READY
S_AFTER = S_READY + RD              # the server's next byte after READY
C_HELLO = 1 + E + T                 # the client's ClientHello
C_AFTER = C_HELLO + H


def gaps(ev: list[FlowEvent]) -> list[tuple[Side, int, int, int]]:
    return [(e.side, e.offset, e.length, e.frame) for e in ev if isinstance(e, StreamGap)]


def run(segs: list[TcpSegment]) -> tuple[TcpReassembler, list[FlowEvent]]:
    r = TcpReassembler()
    return r, feed_all(r, segs)


def opening(c: Conv) -> list[TcpSegment]:
    """Frames 1-8: handshake, banner, EHLO, its reply in two segments, STARTTLS."""
    return c.handshake() + [
        c.s(1, BANNER, ack=1),                              # 4
        c.c(1, EHLO, ack=1 + B),                            # 5
        c.s(1 + B, R1, ack=1 + E),                          # 6
        c.s(1 + B + A1, R2, ack=1 + E),                     # 7
        c.c(1 + E, STARTTLS, ack=S_READY),                  # 8
    ]


# -- pure ACKs -----------------------------------------------------------------------------------

def test_ready_lost_the_servers_later_pure_ack_proves_it() -> None:
    """The 220 to STARTTLS is not in the capture, nor the client's ACK of it or its ClientHello;
    the server's ACK of the ClientHello carries a sequence number past the 220: a gap there, at
    that ACK's frame (tshark's lost_segment frame), never acknowledged in the capture."""
    c = Conv()
    segs = opening(c) + [c.s(S_AFTER, ack=C_AFTER)]         # 9 (READY, ACK, hello lost)
    r, ev = run(segs)
    (gap,) = [e for e in ev if isinstance(e, StreamGap) and e.side is S]
    assert (gap.side, gap.offset, gap.length, gap.frame) == (S, S_READY - 1, RD, 9)
    assert gap.cause is GapCause.LOST and gap.acked is False
    assert gap.ts_ns == segs[8].ts_ns
    # the client's ClientHello, which the server's ACK acknowledges, is a gap too (ACK above
    # hole; as a hole at the end, at the client's last segment)
    assert (C, C_HELLO - 1, H, 8) in gaps(ev)
    assert r.stats.gap_bytes == RD + H


def test_one_direction_only() -> None:
    """Only the server's direction captured (no handshake): the server's pure ACK past its lost
    READY proves it; the client, of which no segment is captured, claims no hole."""
    c = Conv()
    segs = [c.s(1, BANNER, ack=1), c.s(1 + B, R1, ack=1 + E), c.s(1 + B + A1, R2, ack=1 + E),
            c.s(S_AFTER, ack=C_AFTER)]                      # frames 1-4
    _, ev = run(segs)
    assert gaps(ev) == [(S, S_READY - 1, RD, 4)]


def test_last_ehlo_reply_segment_lost() -> None:
    c = Conv()
    hs = c.handshake()
    segs = hs + [c.s(1, BANNER, ack=1), c.c(1, EHLO, ack=1 + B), c.s(1 + B, R1, ack=1 + E),
                 # R2 lost, the client's STARTTLS lost: the server ACKs it
                 c.s(S_READY, ack=1 + E + T)]               # 7
    _, ev = run(segs)
    assert (S, B + A1, A2, 7) in gaps(ev)
    assert side_bytes(ev, S) == BANNER + R1


def test_several_acks_past_the_same_hole_declare_it_once_at_the_first() -> None:
    c = Conv()
    segs = opening(c) + [c.s(S_AFTER, ack=C_HELLO), c.s(S_AFTER, ack=C_HELLO)]
    _, ev = run(segs)
    assert gaps(ev) == [(S, S_READY - 1, RD, 9)]


def test_two_proofs_two_holes() -> None:
    """A pure ACK past READY, then one past a second lost reply: two gaps, each at its proof (as
    tshark flags each)."""
    c = Conv()
    more = b"250 ok\r\n"
    segs = opening(c) + [c.s(S_AFTER, ack=C_HELLO),                      # 9
                         c.s(S_AFTER + len(more), ack=C_HELLO)]          # 10
    _, ev = run(segs)
    assert gaps(ev) == [(S, S_READY - 1, RD, 9), (S, S_AFTER - 1, len(more), 10)]


def test_proof_then_later_data_gap_at_the_proof() -> None:
    """Data of the side after the proof: the hole is declared before that data, at the proof's
    frame (the first segment past the hole), not at the data's."""
    c = Conv()
    flight = b"\x16\x03\x03\x00\x04abcd"
    segs = opening(c) + [c.s(S_AFTER, ack=C_HELLO),                       # 9
                         c.s(S_AFTER, flight, ack=C_HELLO)]               # 10
    _, ev = run(segs)
    assert [x for x in events(ev) if x[1] is S][-3:] == [
        ("gap", S, S_READY - 1, RD, 9), ("data", S, S_AFTER - 1, len(flight), 10),
        ("end", S, 0, 0, 10)]


def test_peer_payload_acknowledging_the_hole_reports_it_at_the_proof() -> None:
    """The client's ClientHello acknowledges READY (ACK above hole): declared before it, at the
    server's pure ACK that proved it first."""
    c = Conv()
    segs = opening(c) + [c.s(S_AFTER, ack=C_HELLO),                       # 9
                         c.c(C_HELLO, HELLO, ack=S_AFTER)]                # 10
    _, ev = run(segs)
    ev_s = events(ev)
    assert ev_s.index(("gap", S, S_READY - 1, RD, 9)) < ev_s.index(("data", C, C_HELLO - 1, H, 10))


def test_reordered_data_after_the_pure_ack_is_no_hole() -> None:
    """The server's READY overtaken by its own later pure ACK on the way to the capture: it
    arrives after it and fills the hole; no gap."""
    c = Conv()
    head = opening(c)
    ready = c.s(S_READY, READY, ack=C_HELLO - 0)             # 9 (sent first)
    ack = c.s(S_AFTER, ack=C_HELLO)                          # 10
    _, ev = run(head + [ack, ready])
    assert gaps(ev) == []
    assert side_bytes(ev, S) == BANNER + R1 + R2 + READY


def test_reordered_data_after_the_pure_ack_late_in_time_is_no_hole() -> None:
    """The same with the data 5 s behind (past the causal window): bytes still arrive before the
    close; the proof only waits as a buffered piece does."""
    c = Conv()
    head = opening(c)
    ready = c.s(S_READY, READY, ack=C_HELLO)
    ack = c.s(S_AFTER, ack=C_HELLO)
    ready.ts_ns = ack.ts_ns + 5 * 10**9
    _, ev = run(head + [ack, ready])
    assert gaps(ev) == []


def test_keepalive_is_no_proof() -> None:
    c = Conv()
    segs = opening(c) + [c.s(S_READY - 1, ack=C_HELLO),      # 9: keep-alive, 0 bytes at next-1
                         c.s(S_READY - 1, b"\x00", ack=C_HELLO)]   # 10: with its 1 byte
    r, ev = run(segs)
    assert gaps(ev) == []
    assert r.stats.keepalives == 1


def test_window_probe_is_no_proof() -> None:
    """A zero-window probe: one byte at the next sequence number (delivered), then the sender's
    ACKs stay at the probe's sequence number (the byte not acknowledged); no hole."""
    c = Conv()
    segs = opening(c) + [c.s(S_READY, READY[:1], ack=C_HELLO),      # 9: the probe
                         c.s(S_READY, ack=C_HELLO),                   # 10
                         c.s(S_READY, READY[:1], ack=C_HELLO)]        # 11: probe again
    _, ev = run(segs)
    assert gaps(ev) == []


def test_one_past_is_an_uncaptured_fin_not_a_hole() -> None:
    c = Conv()
    segs = opening(c) + [c.s(S_READY + 1, ack=C_HELLO)]
    _, ev = run(segs)
    assert gaps(ev) == []


def test_garbage_sequence_number_is_no_proof() -> None:
    c = Conv()
    segs = opening(c) + [c.s(S_READY + (1 << 24), ack=C_HELLO),
                         c.s(S_READY + (1 << 31) + 5, ack=C_HELLO)]
    _, ev = run(segs)
    assert gaps(ev) == []


def test_across_the_sequence_wrap() -> None:
    c = Conv(sisn=MASK - B - 2)
    segs = opening(c) + [c.s(S_AFTER, ack=C_HELLO)]
    _, ev = run(segs)
    assert gaps(ev) == [(S, S_READY - 1, RD, 9)]


def test_late_start_side() -> None:
    """No handshake (a late start): the server's start is its lowest sequence number seen;
    the proof counts from there."""
    c = Conv()
    segs = [c.s(1 + B, R1, ack=1 + E), c.s(1 + B + A1, R2, ack=1 + E),      # 1, 2
            c.c(1 + E, STARTTLS, ack=S_READY),                            # 3
            c.s(S_AFTER, ack=C_HELLO)]                                     # 4
    _, ev = run(segs)
    assert gaps(ev) == [(S, A1 + A2, RD, 4)]


def test_fin_past_the_hole_reports_it_at_the_fin() -> None:
    """A FIN without data past the hole, then the server's ACK of the client's FIN: the gap is
    at the FIN (the side's first segment past it), not at its last segment."""
    c = Conv()
    segs = opening(c) + [c.s(S_AFTER, flags=F, ack=C_HELLO),              # 9
                         c.s(S_AFTER + 1, ack=C_HELLO)]                   # 10
    _, ev = run(segs)
    assert gaps(ev) == [(S, S_READY - 1, RD, 9)]


# -- resets --------------------------------------------------------------------------------------

def test_reset_past_the_lost_bytes() -> None:
    c = Conv()
    segs = opening(c) + [c.s(S_AFTER, flags=R, ack=C_HELLO)]              # 9
    _, ev = run(segs)
    assert gaps(ev) == [(S, S_READY - 1, RD, 9)]
    assert ("end", S, 0, 1, 9) in events(ev)


def test_reset_without_ack_past_the_lost_bytes() -> None:
    c = Conv()
    segs = opening(c) + [c.s(S_AFTER, flags=R)]
    _, ev = run(segs)
    assert gaps(ev) == [(S, S_READY - 1, RD, 9)]


def test_reset_one_past_is_an_uncaptured_fin() -> None:
    c = Conv()
    segs = opening(c) + [c.s(S_READY + 1, flags=R, ack=C_HELLO)]
    _, ev = run(segs)
    assert gaps(ev) == []


def test_reset_with_a_foreign_ttl_proves_nothing() -> None:
    """A reset with the server's addresses and a TTL more than a hop away from those its segments
    came with: a box on the path forged it; its sequence number says nothing of what the server
    sent. Within a hop (a route that changed) it is the server's own, as for the verdict
    (``reset_ttl_foreign``)."""
    c = Conv()
    segs = opening(c)
    for s in segs:
        s.ttl = 52 if s.src == c.sip else 64
    rst = c.s(S_AFTER, flags=R, ack=C_HELLO)
    for ttl in (250, 54, 50):
        rst.ttl = ttl
        _, ev = run(segs + [rst])
        assert gaps(ev) == [], ttl
    for ttl in (52, 53, 51, 0):
        rst.ttl = ttl
        _, ev = run(segs + [rst])
        assert gaps(ev) == [(S, S_READY - 1, RD, 9)], ttl


def test_reset_overtaking_its_sides_data_waits_for_it() -> None:
    """READY sent before the reset, captured after it: the reset waits for it; READY is read and
    there is no gap."""
    c = Conv()
    head = opening(c)
    ready = c.s(S_READY, READY, ack=C_HELLO)                 # 9
    rst = c.s(S_AFTER, flags=R, ack=C_HELLO)                 # 10
    r, ev = run(head + [rst, ready])
    assert gaps(ev) == []
    assert side_bytes(ev, S) == BANNER + R1 + R2 + READY
    assert ("end", S, 0, 1, 10) in events(ev)
    assert r.stats.causal_held == 1


def test_reset_waiting_in_vain_declares_the_gap_at_the_window() -> None:
    """The reset waits for its side's bytes at most the causal window: the client's segment
    2.5 s later ends the wait, the hole is a gap at the reset, before the client's bytes."""
    c = Conv()
    head = opening(c)
    rst = c.s(S_AFTER, flags=R, ack=C_HELLO)                 # 9
    later = c.c(C_HELLO, b"QUIT\r\n", ack=S_READY)           # 10
    later.ts_ns = rst.ts_ns + 2_500_000_000
    _, ev = run(head + [rst, later])
    assert gaps(ev) == [(S, S_READY - 1, RD, 9)]


# -- properties ----------------------------------------------------------------------------------

@st.composite
def dropped(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, bytes]], list[bool]]:
    data = draw(st.binary(min_size=2, max_size=1200))
    pieces: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        n = draw(st.integers(1, max(1, min(150, len(data) - pos))))
        pieces.append((pos, data[pos:pos + n]))
        pos += n
    keep = [draw(st.booleans()) for _ in pieces]
    return data, pieces, keep


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dropped(), st.sampled_from([0, 1000, MASK - 300]), st.booleans())
def test_a_later_pure_ack_yields_exactly_the_dropped_ranges(
        case: tuple[bytes, list[tuple[int, bytes]], list[bool]], sisn: int, reset: bool) -> None:
    """Any server stream cut into segments, some dropped, then the server's pure ACK (or reset)
    at its end: the gaps are exactly the runs of dropped segments, each at the first segment
    captured after it, but a last run of one byte (the ACK after an uncaptured FIN as well)."""
    data, pieces, keep = case
    assume(any(keep))           # (a conversation without a byte of payload is no SMTP candidate)
    c = Conv(sisn=sisn)
    segs = c.handshake()
    frames: list[int] = []                  # the frame of each captured piece
    for (off, chunk), k in zip(pieces, keep):
        if k:
            frames.append(c.frame)
            segs.append(c.s(1 + off, chunk, ack=1))
    proof = c.frame
    segs.append(c.s(1 + len(data), flags=R if reset else 0, ack=1))
    _, ev = run(segs)
    want = []
    i = 0
    while i < len(pieces):
        if keep[i]:
            i += 1
            continue
        j = i
        while j < len(pieces) and not keep[j]:
            j += 1
        off = pieces[i][0]
        end = pieces[j][0] if j < len(pieces) else len(data)
        after = proof if j == len(pieces) else frames[sum(keep[:j])]
        if not (j == len(pieces) and end - off == 1):
            want.append((S, off, end - off, after))
        i = j
    assert gaps(ev) == want
    assert side_bytes(ev, S) == b"".join(chunk for (_, chunk), k in zip(pieces, keep) if k)


@st.composite
def reordered(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    """A server stream in segments, each followed by pure ACKs at the sequence number after it
    (the server acknowledging client bytes, keep-alives at the byte before), the whole shuffled
    with a bounded displacement (within the causal hold)."""
    data = draw(st.binary(min_size=1, max_size=1000))
    items: list[tuple[int, int, bytes]] = []       # (kind: 0 data / 1 ack / 2 keep-alive, rel seq, bytes)
    pos = 0
    while pos < len(data):
        n = draw(st.integers(1, max(1, min(150, len(data) - pos))))
        items.append((0, pos, data[pos:pos + n]))
        pos += n
        for _ in range(draw(st.integers(0, 2))):
            items.append((draw(st.sampled_from([1, 1, 2])), pos, b""))
    keys = [i + draw(st.integers(0, 5)) for i in range(len(items))]
    return data, [it for _, it in sorted(zip(keys, items), key=lambda kv: kv[0])]


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reordered(), st.sampled_from([0, MASK - 200]), st.booleans())
def test_reordering_never_creates_a_hole(case: tuple[bytes, list[tuple[int, int, bytes]]],
                                         sisn: int, reset: bool) -> None:
    """Nothing dropped, pure ACKs and keep-alives overtaking data: no gap, every byte once in
    order; a closing reset at the end changes nothing."""
    data, items = case
    c = Conv(sisn=sisn)
    segs = c.handshake() + [c.c(1, b"EHLO x\r\n", ack=1)]
    for kind, off, chunk in items:
        if kind == 0:
            segs.append(c.s(1 + off, chunk, ack=9))
        elif kind == 1:
            segs.append(c.s(1 + off, ack=9))
        else:
            segs.append(c.s(off, ack=9))
    if reset:
        segs.append(c.s(1 + len(data), flags=R, ack=9))
    _, ev = run(segs)
    assert gaps(ev) == []
    assert side_bytes(ev, S) == data


def test_reset_waits_for_its_sides_data_that_waits_itself() -> None:
    """Two taps, the client's behind: the server's reset, then its READY (sent before it), both
    acknowledging the client's STARTTLS, which comes last. READY waits for STARTTLS and goes
    before the reset (it was sent before it): read, no gap."""
    c = Conv()
    segs = c.handshake() + [c.s(1, BANNER, ack=1), c.c(1, EHLO, ack=1 + B),
                            c.s(1 + B, R1 + R2, ack=1 + E)]                     # 4-6
    rst = c.s(S_AFTER, flags=R, ack=C_HELLO)                                    # 7
    ready = c.s(S_READY, READY, ack=C_HELLO)                                    # 8
    starttls = c.c(1 + E, STARTTLS, ack=S_READY)                                # 9
    _, ev = run(segs + [rst, ready, starttls])
    assert gaps(ev) == []
    assert side_bytes(ev, S) == BANNER + R1 + R2 + READY
    ev_s = events(ev)
    assert ev_s.index(("data", C, E, T, 9)) < ev_s.index(("data", S, S_READY - 1, RD, 8)) \
        < ev_s.index(("end", S, 0, 1, 7))


def test_reset_waits_for_a_hole_before_buffered_bytes() -> None:
    """READY's second half, then the reset past it, then READY's first half (late): the reset
    waits for the hole before the buffered half too; no gap."""
    c = Conv()
    head = opening(c)
    h = RD // 2
    tail = c.s(S_READY + h, READY[h:], ack=C_HELLO)          # 9
    rst = c.s(S_AFTER, flags=R, ack=C_HELLO)                 # 10
    first = c.s(S_READY, READY[:h], ack=C_HELLO)             # 11
    _, ev = run(head + [tail, rst, first])
    assert gaps(ev) == []
    assert side_bytes(ev, S) == BANNER + R1 + R2 + READY
    # and without the late half: the hole before the buffered one is a gap at the close
    c = Conv()
    head = opening(c)
    tail = c.s(S_READY + h, READY[h:], ack=C_HELLO)          # 9
    rst = c.s(S_AFTER, flags=R, ack=C_HELLO)                 # 10
    _, ev = run(head + [tail, rst])
    assert gaps(ev) == [(S, S_READY - 1, h, 9)]
