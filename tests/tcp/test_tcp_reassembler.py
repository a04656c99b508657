"""Unit tests of the TCP reassembler with hand-built segments, one behaviour each."""
from __future__ import annotations

import pytest

from _tcp_builder import MASK, A, Conv, F, R, S, feed_all, side_bytes
from pcapsmtp.model import Side, TcpSegment
from pcapsmtp.tcp.events import (FlowClosed, FlowEvent, FlowOpened, GapCause, OverlapConflict,
                                 StreamData, StreamEnd, StreamGap)
from pcapsmtp.tcp.reassembler import ReassemblyConfig, TcpReassembler, is_smtp_start

GREETING = b"220 mx.example.org ESMTP\r\n"
EHLO = b"EHLO client.example\r\n"


def kinds(events: list[FlowEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def of(events: list[FlowEvent], cls: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, cls)]


def smtp_dialogue(c: Conv) -> list[TcpSegment]:
    g, e = len(GREETING), len(EHLO)
    return c.handshake() + [
        c.s(1, GREETING, ack=1),
        c.c(1, EHLO, ack=1 + g),
        c.s(1 + g, b"250 ok\r\n", ack=1 + e),
        c.c(1 + e, flags=F, ack=1 + g + 8),
        c.s(1 + g + 8, flags=F, ack=2 + e),
        c.c(2 + e, ack=2 + g + 8),
    ]


def test_clean_dialogue() -> None:
    c = Conv()
    segs = list(smtp_dialogue(c))
    ev = feed_all(TcpReassembler(), segs)
    assert isinstance(ev[0], FlowOpened)
    info = ev[0].flow
    assert (info.stream, info.side_evidence, info.midstream, info.handshake_seen) == \
        (0, "syn", False, True)
    assert str(info.client) == "10.0.0.1:40000" and str(info.server) == "10.0.0.2:25"
    assert info.first_frame == 1
    assert side_bytes(ev, Side.SERVER) == GREETING + b"250 ok\r\n"
    assert side_bytes(ev, Side.CLIENT) == EHLO
    ends = of(ev, StreamEnd)
    assert [(e.side, e.reset, e.truncated, e.frame) for e in ends] == \
        [(Side.CLIENT, False, False, 7), (Side.SERVER, False, False, 8)]
    # the flow closes at the second FIN (the server's): by then the server acknowledged the
    # client's bytes and FIN (one past the last byte), the client the server's bytes only
    # and each side's last segment until then (a pure ACK counts; the client's ACK of the
    # server's FIN comes after the close)
    last = {side: max(sg.ts_ns for sg in segs if (sg.src == "10.0.0.1") == (side is Side.CLIENT)
                      and sg.ts_ns <= ev[-1].ts_ns) for side in Side}
    # and when the client's acknowledgement last advanced: at its FIN (frame 7), over the 250
    at = {sg.frame: sg.ts_ns for sg in segs}
    assert ev[-1] == FlowClosed(0, "closed", ev[-1].ts_ns, client_acked=len(EHLO) + 1,
                                server_acked=len(GREETING) + 8, client_last_ns=last[Side.CLIENT],
                                server_last_ns=last[Side.SERVER], server_acked_ns=at[7],
                                server_acked_frame=7)
    assert not of(ev, StreamGap) and not of(ev, OverlapConflict)
    first = of(ev, StreamData)[0]
    assert (first.side, first.offset, first.frame) == (Side.SERVER, 0, 4)


def test_midstream_port_evidence_and_offsets_from_first_byte() -> None:
    c = Conv(sport=587)
    ev = feed_all(TcpReassembler(), [c.c(500, b"MAIL FROM:<a@b>\r\n", ack=900),
                                     c.s(900, b"250 ok\r\n", ack=517)])
    info = ev[0].flow
    assert (info.side_evidence, info.midstream, info.handshake_seen) == ("port", True, False)
    assert info.server.port == 587
    data = of(ev, StreamData)
    assert [(d.side, d.offset) for d in data] == [(Side.CLIENT, 0), (Side.SERVER, 0)]
    assert [e.truncated for e in of(ev, StreamEnd)] == [True, True]
    assert ev[-1].reason == "end"


@pytest.mark.parametrize("first, who", [(b"220 hi\r\n", "s"), (b"220-hi\r\n", "s"),
                                        (b"554 no\r\n", "s"), (b"421 busy\r\n", "s"),
                                        (b"ehlo x\r\n", "c"), (b"HELO x\r\n", "c"),
                                        (b"LHLO x\r\n", "c")])
def test_content_detection_on_other_ports(first: bytes, who: str) -> None:
    c = Conv(sport=8025, cport=40001)
    seg = c.s(1, first, ack=1) if who == "s" else c.c(1, first, ack=1)
    ev = feed_all(TcpReassembler(), [seg])
    info = ev[0].flow
    assert info.side_evidence == "content"
    assert info.server.port == 8025 and info.client.port == 40001


def test_is_smtp_start() -> None:
    assert is_smtp_start(b"220 x") is Side.SERVER
    assert is_smtp_start(b"EhLo\r\n") is Side.CLIENT
    assert is_smtp_start(b"EHLOX") is None
    assert is_smtp_start(b"GET / HTTP/1.1") is None
    assert is_smtp_start(b"") is None


def test_non_candidate_counted_but_silent() -> None:
    r = TcpReassembler()
    web = Conv(sport=80, cport=50000)
    mail = Conv(cport=50001)
    ev = feed_all(r, web.handshake() + [web.c(1, b"GET / HTTP/1.1\r\n\r\n", ack=1)]
                  + smtp_dialogue(mail))
    assert ev[0].flow.stream == 1            # the web conversation took index 0
    assert {e.stream for e in ev[1:]} == {1}
    assert r.stats.flows_seen == 2 and r.stats.candidates == 1


def test_content_detection_can_be_disabled() -> None:
    c = Conv(sport=8025)
    r = TcpReassembler(ReassemblyConfig(detect_by_content=False))
    assert feed_all(r, [c.s(1, GREETING, ack=1)]) == []


def test_side_decided_later_keeps_handshake() -> None:
    """Content-detected flow: the SYN seen before the first payload still gives ISNs."""
    c = Conv(sport=8025)
    ev = feed_all(TcpReassembler(), c.handshake() + [c.s(1, GREETING, ack=1)])
    info = ev[0].flow
    assert (info.side_evidence, info.first_frame, info.handshake_seen) == ("syn", 1, True)
    assert of(ev, StreamData)[0].offset == 0


def test_exact_and_partial_retransmission() -> None:
    c = Conv()
    segs = c.handshake() + [c.c(1, b"EHLO a\r\n", ack=1), c.c(1, b"EHLO a\r\n", ack=1),
                            c.c(6, b"a\r\nMAIL", ack=1)]
    ev = feed_all(TcpReassembler(), segs)
    assert side_bytes(ev, Side.CLIENT) == b"EHLO a\r\nMAIL"
    assert not of(ev, OverlapConflict)
    assert of(ev, StreamData)[-1].data == b"MAIL"


def test_conflicting_overlap_first_copy_wins() -> None:
    c = Conv()
    segs = c.handshake() + [c.s(1, b"250-STARTTLS\r\n", ack=1),
                            c.s(5, b"XXXXXXXA\r\n250 OK\r\n", ack=1)]
    ev = feed_all(TcpReassembler(), segs)
    assert side_bytes(ev, Side.SERVER) == b"250-STARTTLS\r\n250 OK\r\n"
    (conf,) = of(ev, OverlapConflict)
    assert (conf.side, conf.offset, conf.length, conf.first_frame, conf.second_frame) == \
        (Side.SERVER, 4, 10, 4, 5)


def test_conflict_between_buffered_copies() -> None:
    c = Conv()
    segs = c.handshake() + [c.s(5, b"WXYZ", ack=1), c.s(5, b"WQYZ", ack=1),
                            c.s(1, b"abcd", ack=1)]
    ev = feed_all(TcpReassembler(), segs)
    assert side_bytes(ev, Side.SERVER) == b"abcdWXYZ"
    (conf,) = of(ev, OverlapConflict)
    assert (conf.offset, conf.length, conf.first_frame, conf.second_frame) == (4, 4, 4, 5)


def test_out_of_order_delivered_in_order_with_carrier_frames() -> None:
    c = Conv()
    segs = c.handshake() + [c.c(7, b"ghi", ack=1), c.c(4, b"def", ack=1), c.c(1, b"abc", ack=1)]
    ev = feed_all(TcpReassembler(), segs)
    data = of(ev, StreamData)
    assert [(d.offset, d.data, d.frame) for d in data] == \
        [(0, b"abc", 6), (3, b"def", 5), (6, b"ghi", 4)]


def test_ooo_budget_forces_gap() -> None:
    c = Conv()
    r = TcpReassembler(ReassemblyConfig(max_ooo_bytes=10))
    segs = c.handshake() + [c.c(1, b"abc", ack=1), c.c(11, b"0123456", ack=1),
                            c.c(18, b"789xyz", ack=1), c.c(4, b"late!!!", ack=1)]
    ev = feed_all(r, segs)
    gaps = of(ev, StreamGap)
    assert [(g.offset, g.length, g.frame) for g in gaps] == [(3, 7, 5)]
    assert side_bytes(ev, Side.CLIENT) == b"abc0123456789xyz"
    assert r.stats.ooo_dropped_bytes == 7
    # the gap comes before the data that follows it
    k = kinds(ev)
    assert k.index("StreamGap") < max(i for i, e in enumerate(ev) if isinstance(e, StreamData))


def test_hole_before_fin_is_gap() -> None:
    c = Conv()
    segs = c.handshake() + [c.c(1, b"abc", ack=1), c.c(8, b"xyz", flags=F, ack=1),
                            c.s(1, flags=F, ack=12)]
    ev = feed_all(TcpReassembler(), segs)
    (gap,) = of(ev, StreamGap)
    assert (gap.side, gap.offset, gap.length) == (Side.CLIENT, 3, 4)
    assert side_bytes(ev, Side.CLIENT) == b"abcxyz"
    assert of(ev, StreamEnd)[0].truncated is False
    assert ev[-1].reason == "closed"


def test_hole_at_end_without_evidence_is_not_gap() -> None:
    c = Conv()
    ev = feed_all(TcpReassembler(), c.handshake() + [c.c(1, b"abc", ack=1)])
    assert not of(ev, StreamGap)


def test_ack_beyond_seen_data_is_gap_at_end() -> None:
    c = Conv()
    # the client acknowledges 19 server bytes; only 7 were captured
    segs = c.handshake() + [c.s(1, b"220 a\r\n", ack=1), c.c(1, ack=20)]
    ev = feed_all(TcpReassembler(), segs)
    (gap,) = of(ev, StreamGap)
    assert (gap.side, gap.offset, gap.length) == (Side.SERVER, 7, 12)


def test_ack_of_uncaptured_fin_is_not_gap() -> None:
    c = Conv()
    segs = c.handshake() + [c.s(1, b"220 a\r\n", ack=1), c.c(1, ack=9)]
    assert not of(feed_all(TcpReassembler(), segs), StreamGap)


def test_snaplen_cut_reports_missing_bytes() -> None:
    c = Conv()
    segs = c.handshake() + [c.s(1, b"220 ", missing=20, ack=1), c.s(25, b"250 ok", ack=1)]
    ev = feed_all(TcpReassembler(), segs)
    (gap,) = of(ev, StreamGap)
    assert (gap.offset, gap.length, gap.frame) == (4, 20, 4)
    data = of(ev, StreamData)
    assert [(d.offset, d.data) for d in data] == [(0, b"220 "), (24, b"250 ok")]


def test_snaplen_cut_gap_says_snaplen_and_a_lost_segment_says_lost() -> None:
    """Bytes a frame carried but the capture cut (its tail) and bytes of a segment never
    captured are both gaps; the cause tells them apart."""
    c = Conv()
    r = TcpReassembler()
    segs = c.handshake() + [c.s(1, b"220 ", missing=20, ack=1),   # frame 4: tail cut
                            c.s(31, b"250 ok", ack=1),              # 25..30 never captured
                            c.c(1, b"QUIT\r\n", ack=37)]
    gaps = of(feed_all(r, segs), StreamGap)
    assert [(g.offset, g.length, g.frame, g.cause) for g in gaps] == [
        (4, 20, 4, GapCause.SNAPLEN), (24, 6, 5, GapCause.LOST)]
    assert (r.stats.snaplen_cut_segments, r.stats.snaplen_gap_bytes, r.stats.gap_bytes) == (
        1, 20, 26)


def test_snaplen_cut_out_of_order_is_named_at_the_cut_frame() -> None:
    """A cut frame that arrives before the bytes ahead of it waits in the buffer; its tail
    is still a snap-length gap named at that frame when the buffer drains."""
    c = Conv()
    segs = c.handshake() + [c.s(5, b"ok", missing=10, ack=1), c.s(1, b"220 ", ack=1),
                            c.s(17, b"x\r\n", ack=1)]
    gaps = of(feed_all(TcpReassembler(), segs), StreamGap)
    assert [(g.offset, g.length, g.frame, g.cause) for g in gaps] == [
        (6, 10, 4, GapCause.SNAPLEN)]


def test_keepalives_are_not_data_or_conflicts() -> None:
    c = Conv()
    r = TcpReassembler()
    segs = c.handshake() + [c.c(1, b"EHLO a\r\n", ack=1), c.c(8, b"\x00", ack=1),
                            c.c(8, ack=1), c.c(9, b"QUIT\r\n", ack=1)]
    ev = feed_all(r, segs)
    assert side_bytes(ev, Side.CLIENT) == b"EHLO a\r\nQUIT\r\n"
    assert not of(ev, OverlapConflict)
    assert r.stats.keepalives == 1


def test_zero_window_probe() -> None:
    c = Conv()
    segs = c.handshake() + [c.c(1, b"M", ack=1), c.c(1, b"MAIL FROM:<>\r\n", ack=1)]
    ev = feed_all(TcpReassembler(), segs)
    assert side_bytes(ev, Side.CLIENT) == b"MAIL FROM:<>\r\n"
    assert not of(ev, OverlapConflict)


def test_syn_retransmission_is_same_conversation() -> None:
    c = Conv()
    r = TcpReassembler()
    segs = [c.c(0, flags=S), c.c(0, flags=S)] + smtp_dialogue(c)[1:]
    ev = feed_all(r, segs)
    assert len(of(ev, FlowOpened)) == 1 and r.stats.flows_seen == 1


def test_wraparound_isn() -> None:
    c = Conv(cisn=MASK - 3, sisn=MASK)
    segs = c.handshake() + [c.c(1, b"EHLO", ack=1), c.c(5, b" a\r\n", ack=1),
                            c.s(1, b"220 ", ack=9), c.s(5, b"ok\r\n", ack=9)]
    ev = feed_all(TcpReassembler(), segs)
    assert side_bytes(ev, Side.CLIENT) == b"EHLO a\r\n"
    assert side_bytes(ev, Side.SERVER) == b"220 ok\r\n"
    assert not of(ev, StreamGap)


def test_data_after_fin_ignored() -> None:
    c = Conv()
    r = TcpReassembler()
    segs = c.handshake() + [c.c(1, b"QUIT\r\n", flags=F, ack=1), c.c(8, b"junk", ack=1)]
    ev = feed_all(r, segs)
    assert side_bytes(ev, Side.CLIENT) == b"QUIT\r\n"
    assert r.stats.after_fin_bytes == 4


def test_rst_ends_both_sides() -> None:
    c = Conv()
    segs = c.handshake() + [c.s(1, GREETING, ack=1), c.c(1, flags=R | A, ack=27)]
    ev = feed_all(TcpReassembler(), segs)
    ends = of(ev, StreamEnd)
    assert [(e.side, e.reset, e.truncated) for e in ends] == \
        [(Side.CLIENT, True, False), (Side.SERVER, False, True)]
    assert ev[-1].reason == "closed"


def test_connection_refused_on_smtp_port_is_a_flow() -> None:
    c = Conv()
    ev = feed_all(TcpReassembler(), [c.c(0, flags=S), c.s(0, flags=R, ack=1)])
    assert kinds(ev) == ["FlowOpened", "StreamEnd", "StreamEnd", "FlowClosed"]
    server_end, client_end = of(ev, StreamEnd)      # the RST side ends first
    assert server_end.side is Side.SERVER and server_end.reset and server_end.frame == 2
    assert client_end.side is Side.CLIENT and client_end.truncated


def test_one_sided_capture() -> None:
    """Only the client's direction: its SYN and its handshake ACK tell where the server's
    stream starts (the ACK's ack, ISN+1), but no segment of the server is in the capture, so
    no hole is claimed for it (a one-sided capture)."""
    c = Conv()
    segs = [c.c(0, flags=S), c.c(1, ack=1), c.c(1, EHLO, ack=27)]
    ev = feed_all(TcpReassembler(), segs)
    assert side_bytes(ev, Side.CLIENT) == EHLO
    server_end = [e for e in of(ev, StreamEnd) if e.side is Side.SERVER]
    assert server_end[0].truncated and server_end[0].frame == 0
    info = ev[0].flow
    assert info.midstream is False and ev[-1].reason == "end"
    assert (info.client_start, info.server_start) == (c.cisn + 1, c.sisn + 1)
    assert not of(ev, StreamGap)


def test_idle_timeout_in_capture_time() -> None:
    r = TcpReassembler(ReassemblyConfig(idle_timeout_ns=10**9, idle_check_every=1))
    old = Conv(cport=1)
    ev = [e for s in old.handshake() + [old.s(1, GREETING, ack=1)] for e in r.feed(s)]
    later = Conv(cport=2, ts=old.ts + 5 * 10**9)
    for s in later.handshake():
        ev += r.feed(s)
    closed = of(ev, FlowClosed)
    assert [(e.stream, e.reason) for e in closed] == [(0, "idle")]
    assert r.stats.idle_closed == 1


def test_flow_table_full_evicts_least_recent() -> None:
    r = TcpReassembler(ReassemblyConfig(max_flows=2))
    ev: list[FlowEvent] = []
    convs = [Conv(cport=p) for p in (1, 2, 3)]
    for c in convs[:2]:
        for s in c.handshake() + [c.s(1, GREETING, ack=1)]:
            ev += r.feed(s)
    ev += r.feed(convs[0].c(1, EHLO, ack=27))     # conversation 0 is now the more recent
    for s in convs[2].handshake() + [convs[2].s(1, GREETING, ack=1)]:
        ev += r.feed(s)
    assert [(e.stream, e.reason) for e in of(ev, FlowClosed)] == [(1, "evicted")]
    assert r.active_flows == 2


def test_port_reuse_new_isn() -> None:
    r = TcpReassembler()
    c1 = Conv(cisn=100)
    ev = feed_all(r, c1.handshake() + [c1.s(1, GREETING, ack=1)]
                  + [Conv(cisn=99999, frame=10).c(0, flags=S)]
                  + Conv(cisn=99999, sisn=7, frame=11).handshake()[1:]
                  + [Conv(cisn=99999, sisn=7, frame=13).s(1, GREETING, ack=1)])
    closed = of(ev, FlowClosed)
    assert (closed[0].stream, closed[0].reason) == (0, "reused")
    assert [e.flow.stream for e in of(ev, FlowOpened)] == [0, 1]
    assert r.stats.reused == 1


def test_same_isn_after_fin_is_same_stream_like_wireshark() -> None:
    r = TcpReassembler()
    c = Conv()
    feed_all(r, smtp_dialogue(c) + [Conv(frame=50).c(0, flags=S)])
    assert r.stats.flows_seen == 1


def test_wireshark_base_seq_rules() -> None:
    r = TcpReassembler()
    c = Conv(sport=80)
    # midstream: base = seq - 1; a SYN at exactly that seq is a retransmission
    r.feed(c.c(5000, b"x", ack=1, raw=True))
    r.feed(c.c(4999, flags=S, raw=True))
    assert r.stats.flows_seen == 1
    # SYN-ACK with another seq never starts a conversation
    r.feed(c.s(123456, flags=S | A, raw=True))
    assert r.stats.flows_seen == 1
    # a SYN at another seq does
    r.feed(c.c(5000, flags=S, raw=True))
    assert r.stats.flows_seen == 2
    assert r.stream_of("10.0.0.1", 40000, "10.0.0.2", 80) == 1
    # SYN from a direction that sent nothing yet in the conversation: no new conversation
    d = Conv(sport=81)
    r.feed(d.s(1, flags=S | A, raw=True))
    r.feed(d.c(777, flags=S, raw=True))
    assert r.stats.flows_seen == 3


def test_light_table_bounded_under_syn_flood() -> None:
    r = TcpReassembler(ReassemblyConfig(max_tracked=1000))
    for i in range(20_000):
        r.feed(TcpSegment(i + 1, i, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1024 + i % 50000,
                          "192.0.2.1", 80, i * 7919, 0, int(S), b""))
        assert r.tracked <= 1000
    assert r.stats.flows_seen == 20_000 and r.stats.evicted == 19_000
    assert r.finish() == []


def test_syn_flood_on_smtp_port_opens_no_flows() -> None:
    r = TcpReassembler(ReassemblyConfig(max_tracked=500, max_flows=10))
    for i in range(5000):
        out = r.feed(TcpSegment(i + 1, i, f"10.0.{i >> 8 & 255}.{i & 255}", 2000 + i, "192.0.2.1",
                                25, i, 0, int(S), b""))
        assert out == []
    assert r.tracked <= 500 and r.active_flows == 0


def test_events_per_flow_start_opened_end_closed() -> None:
    r = TcpReassembler()
    a, b = Conv(cport=1), Conv(cport=2)
    segs: list[TcpSegment] = []
    for x, y in zip(smtp_dialogue(a), smtp_dialogue(b)):
        segs += [x, y]
    ev = feed_all(r, segs)
    for stream in (0, 1):
        mine = [e for e in ev if (e.flow.stream if isinstance(e, FlowOpened) else e.stream)
                == stream]
        assert isinstance(mine[0], FlowOpened) and isinstance(mine[-1], FlowClosed)
        assert len(of(mine, FlowClosed)) == 1


def test_tick_closes_idle_flows_without_segments() -> None:
    r = TcpReassembler(ReassemblyConfig(idle_timeout_ns=10**9))
    c = Conv()
    for s in c.handshake() + [c.s(1, GREETING, ack=1)]:
        r.feed(s)
    assert r.tick(c.ts) == []
    ev = r.tick(c.ts + 2 * 10**9)
    assert kinds(ev) == ["StreamEnd", "StreamEnd", "FlowClosed"] and ev[-1].reason == "idle"
    assert r.finish() == []
