"""The light table: compact entries for conversations that are not SMTP candidates, a bound
close to an LRU, and what happens to a conversation that was evicted."""
from __future__ import annotations

import gc
import tracemalloc

from _tcp_builder import A, Conv, S
from pcapsmtp.model import TcpSegment
from pcapsmtp.tcp.config import ReassemblyConfig
from pcapsmtp.tcp.events import FlowClosed, FlowOpened
from pcapsmtp.tcp.reassembler import TcpReassembler

GREETING = b"220 mx.example.org ESMTP\r\n"


def _scan(n: int) -> tuple[list[str], list[int]]:
    # the capture reader shares address strings between segments: build them beforehand
    return [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(n)], \
        [(i * 7919) & 0xFFFFFFFF for i in range(n)]


def _bytes_per_entry(payload: bool) -> float:
    n = 20_000
    addrs, seqs = _scan(n)
    r = TcpReassembler(ReassemblyConfig(max_tracked=10 * n))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            r.feed(TcpSegment(i + 1, i, addrs[i], 1024 + i, "192.0.2.1", 443, seqs[i], 0, int(S), b""))
            if payload:
                r.feed(TcpSegment(i + 1, i, addrs[i], 1024 + i, "192.0.2.1", 443, seqs[i] + 1, 1,
                                  int(A), b"\x16\x03\x01"))
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert r.tracked == n
    return used / n


def test_entries_are_compact() -> None:
    """~190 bytes per conversation (key, packed int, dict slot); an object per entry was ~420."""
    assert _bytes_per_entry(payload=False) < 260     # undecided (SYN only)
    assert _bytes_per_entry(payload=True) < 240      # decided: not SMTP


def test_default_bound_fits_the_memory_target() -> None:
    assert ReassemblyConfig().max_tracked * 260 < 24 * 2**20


def _seg(i: int, port: int, flags: int = int(S), payload: bytes = b"") -> TcpSegment:
    return TcpSegment(i, i, f"10.1.{i >> 8 & 255}.{i & 255}", 2000 + i, "192.0.2.9", port,
                      i, 0, flags, payload)


def test_busy_conversation_survives_a_flood_and_keeps_its_stream() -> None:
    r = TcpReassembler(ReassemblyConfig(max_tracked=100))
    busy = Conv(sport=443, cport=999)
    quiet = Conv(sport=443, cport=998)
    r.feed(busy.c(0, flags=S))
    r.feed(quiet.c(0, flags=S))
    for i in range(1, 1000):
        r.feed(_seg(i, 80))
        if i % 40 == 0:
            r.feed(busy.c(1, b"x", ack=1))
    assert r.stream_of(busy.cip, busy.cport, busy.sip, busy.sport) == 0
    assert r.stream_of(quiet.cip, quiet.cport, quiet.sip, quiet.sport) is None
    assert r.tracked == 100 and r.stats.evicted == 1001 - 100
    # the trade-off: the evicted conversation comes back as a new one, with a new index
    r.feed(quiet.c(1, b"y", ack=1))
    assert r.stream_of(quiet.cip, quiet.cport, quiet.sip, quiet.sport) == 1001
    assert r.stats.flows_seen == 1002


def test_active_smtp_flow_is_not_evicted_by_a_scan() -> None:
    r = TcpReassembler(ReassemblyConfig(max_tracked=64))
    mail = Conv(cport=50000)
    ev = []
    for s in mail.handshake() + [mail.s(1, GREETING, ack=1)]:
        ev += r.feed(s)
    for i in range(1, 2000):
        ev += r.feed(_seg(i, 80))
        if i % 30 == 0:
            ev += r.feed(mail.c(1, ack=1 + len(GREETING)))      # keep-alive ACKs
    assert [e for e in ev if isinstance(e, FlowClosed)] == []
    ev += r.finish()
    assert [(e.stream, e.reason) for e in ev if isinstance(e, FlowClosed)] == [(0, "end")]


def test_idle_smtp_flow_evicted_with_its_entry() -> None:
    r = TcpReassembler(ReassemblyConfig(max_tracked=64))
    mail = Conv(cport=50000)
    ev = []
    for s in mail.handshake() + [mail.s(1, GREETING, ack=1)]:
        ev += r.feed(s)
    for i in range(1, 200):
        ev += r.feed(_seg(i, 80))
    assert [(e.stream, e.reason) for e in ev if isinstance(e, FlowClosed)] == [(0, "evicted")]
    assert r.stats.flows_evicted == 1 and r.active_flows == 0


def test_closed_flow_entry_is_compacted_and_late_segments_counted() -> None:
    r = TcpReassembler()
    c = Conv()
    g = len(GREETING)
    segs = c.handshake() + [c.s(1, GREETING, ack=1), c.c(1, flags=0x01, ack=1 + g),
                            c.s(1 + g, flags=0x01, ack=2)]
    ev = [e for s in segs for e in r.feed(s)]
    assert isinstance(ev[0], FlowOpened) and isinstance(ev[-1], FlowClosed)
    assert r.stream_of(c.cip, c.cport, c.sip, c.sport) == 0
    assert r.feed(c.c(2, ack=2 + g)) == [] and r.stats.after_close_segments == 1
    # same ISN again: a retransmission, same conversation (Wireshark); a new ISN: a new one
    r.feed(c.c(0, flags=S))
    assert r.stats.flows_seen == 1
    r.feed(c.c(500, flags=S))
    assert r.stats.flows_seen == 2 and r.stream_of(c.cip, c.cport, c.sip, c.sport) == 1


def test_port_reuse_of_an_ignored_conversation() -> None:
    r = TcpReassembler()
    c = Conv(sport=443)
    r.feed(c.c(0, flags=S))
    r.feed(c.c(1, b"\x16\x03\x01", ack=1))
    r.feed(Conv(sport=443, cisn=77).c(0, flags=S))
    assert r.stats.reused == 1 and r.stream_of(c.cip, c.cport, c.sip, c.sport) == 1
    # and the new conversation is judged on its own first payload (after the client's
    # handshake ACK, which tells where the server's stream starts)
    assert r.feed(Conv(sport=443, cisn=77).c(1, ack=1)) == []
    ev = r.feed(Conv(sport=443, cisn=77).s(1, GREETING, ack=1))
    assert isinstance(ev[0], FlowOpened) and ev[0].flow.stream == 1
    assert not ev[0].flow.midstream


def test_max_tracked_one_never_raises() -> None:
    r = TcpReassembler(ReassemblyConfig(max_tracked=1))
    for i in range(1, 50):
        r.feed(_seg(i, 25))
        r.feed(_seg(i, 25, int(A), GREETING))
        assert r.tracked == 1
    r.finish()


def test_packed_entry_keeps_negative_timestamps_and_big_frame_numbers() -> None:
    r = TcpReassembler()
    f = (1 << 41) + 5
    r.feed(TcpSegment(f, -123_456_789, "10.0.0.1", 40000, "10.0.0.2", 25, 100, 0, int(S), b""))
    r.feed(TcpSegment(f + 1, -123, "10.0.0.2", 25, "10.0.0.1", 40000, 500, 101, int(S | A), b""))
    ev = r.feed(TcpSegment(f + 2, -100, "10.0.0.2", 25, "10.0.0.1", 40000, 501, 101, int(A),
                           GREETING))
    info = ev[0].flow
    assert (info.first_frame, info.first_ts_ns, info.handshake_seen) == (f, -123_456_789, True)
