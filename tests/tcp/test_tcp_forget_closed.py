"""Closed conversations leave the light table: an entry whose conversation closed (RST in
either direction, FIN in each) is forgotten ``closed_grace_ns`` after the close if it has
not changed since; within the grace nothing differs from a table that never forgets.

What "changed" means here: the packed entry is no longer the value it had at the close
(a SYN with a new ISN started a new conversation, a late first payload decided an undecided
conversation, the first segment of a direction not seen before). Segments that change
nothing (ACKs, retransmitted FINs) do not extend the grace; a change keeps the entry, and
if it is still closed its grace starts again."""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tcp_builder import Conv, F, R, S
from pcapsmtp.model import TcpSegment
from pcapsmtp.tcp.config import ReassemblyConfig
from pcapsmtp.tcp.events import FlowClosed, FlowOpened
from pcapsmtp.tcp.reassembler import TcpReassembler

N = int(os.environ.get("TCP_PROPERTY_EXAMPLES", "150"))

SEC = 10**9
G = 10 * SEC                     #: the grace of these tests
Q = G >> 6                       #: close times are kept rounded up to this
T0 = 1_000 * SEC
GREETING = b"220 mx.example.org ESMTP\r\n"
TLS = b"\x16\x03\x01\x02\x00"


def _reasm(grace: int | None = G, **kw: Any) -> TcpReassembler:
    return TcpReassembler(ReassemblyConfig(closed_grace_ns=grace, **kw))


_newcomers = iter(range(1, 1 << 30))


def _newcomer(r: TcpReassembler, ts: int) -> None:
    """A SYN of a new 4-tuple at ``ts``: creating a conversation is when entries are
    forgotten."""
    i = next(_newcomers)
    r.feed(TcpSegment(1000 + i, ts, f"10.9.{i >> 8 & 255}.{i & 255}", 1024 + (i & 0x7FFF),
                      "192.0.2.80", 80, i, 0, int(S), b""))


def _stream(r: TcpReassembler, c: Conv) -> int | None:
    return r.stream_of(c.cip, c.cport, c.sip, c.sport)


def _fin_closed(r: TcpReassembler, c: Conv, first: bytes = TLS) -> int:
    """Handshake, one payload, FIN both ways, the last ACK; returns the close time."""
    for s in c.handshake():
        r.feed(s)
    r.feed(c.c(1, first, ack=1))
    r.feed(c.c(1 + len(first), flags=F, ack=1))
    fin = c.s(1, flags=F, ack=2 + len(first))
    r.feed(fin)
    r.feed(c.c(2 + len(first), ack=2))
    return fin.ts_ns


# --------------------------------------------------------------------------- closed: when

@pytest.mark.parametrize("port, first", [(443, TLS), (25, GREETING), (8080, b"")],
                         ids=["ignored", "candidate", "undecided"])
def test_closed_by_fin_is_forgotten_after_the_grace_and_not_before(port: int,
                                                                   first: bytes) -> None:
    r = _reasm()
    c = Conv(sport=port, ts=T0)
    if first:
        closed = _fin_closed(r, c, first)
    else:                       # no payload: stays undecided
        for s in c.handshake():
            r.feed(s)
        r.feed(c.c(1, flags=F, ack=1))
        fin = c.s(1, flags=F, ack=2)
        r.feed(fin)
        closed = fin.ts_ns
    _newcomer(r, closed + G - 1)
    assert _stream(r, c) == 0 and r.stats.forgotten == 0
    _newcomer(r, closed + G + Q)
    assert _stream(r, c) is None and r.stats.forgotten == 1
    assert r.tracked == 2 and r.stats.flows_seen == 3


@pytest.mark.parametrize("client_resets", [True, False])
@pytest.mark.parametrize("port, payload", [(443, TLS), (8080, b""), (25, b"")],
                         ids=["ignored", "undecided", "candidate"])
def test_closed_by_one_rst_is_forgotten(client_resets: bool, port: int, payload: bytes) -> None:
    r = _reasm()
    c = Conv(sport=port, ts=T0)
    for s in c.handshake():
        r.feed(s)
    if payload:
        r.feed(c.c(1, payload, ack=1))
    rst = (c.c(1 + len(payload), flags=R, ack=1) if client_resets
           else c.s(1, flags=R, ack=1 + len(payload)))
    ev = r.feed(rst)
    if port == 25:
        # (the candidate's FlowClosed waits while the resetting side is watched: SentAfterReset)
        ev += r.tick(rst.ts_ns + r.config.reset_watch_ns + 1)
        assert [(e.stream, e.reason) for e in ev if isinstance(e, FlowClosed)] == [(0, "closed")]
    _newcomer(r, rst.ts_ns + G - 1)
    assert _stream(r, c) == 0
    _newcomer(r, rst.ts_ns + G + Q)
    assert _stream(r, c) is None and r.stats.forgotten == 1


def test_refused_connection_is_forgotten() -> None:
    """SYN, RST-ACK: never a payload, never decided; closed all the same."""
    r = _reasm()
    c = Conv(sport=8080, ts=T0)
    r.feed(c.c(0, flags=S))
    rst = c.s(0, flags=R, ack=1, raw=True)
    r.feed(rst)
    assert r.earliest_pending_frame() == 1          # undecided: may still become SMTP
    _newcomer(r, rst.ts_ns + G + Q)
    assert _stream(r, c) is None and r.stats.forgotten == 1
    assert r.earliest_pending_frame() > 1000        # only the newcomer is left


def test_one_fin_is_not_a_close() -> None:
    r = _reasm()
    c = Conv(sport=443, ts=T0)
    for s in c.handshake():
        r.feed(s)
    r.feed(c.c(1, TLS, ack=1))
    r.feed(c.c(1 + len(TLS), flags=F, ack=1))
    r.feed(c.s(1, ack=2 + len(TLS)))
    _newcomer(r, T0 + 100 * G)
    assert _stream(r, c) == 0 and r.stats.forgotten == 0


def test_candidate_closed_by_idleness_or_the_end_is_kept() -> None:
    """Only a close by FIN or RST counts; an idle flow may well come back."""
    r = _reasm(idle_timeout_ns=SEC)
    c = Conv(sport=25, ts=T0)
    for s in c.handshake() + [c.s(1, GREETING, ack=1)]:
        r.feed(s)
    ev = r.tick(T0 + 5 * SEC)
    assert [(e.stream, e.reason) for e in ev if isinstance(e, FlowClosed)] == [(0, "idle")]
    _newcomer(r, T0 + 100 * G)
    assert _stream(r, c) == 0 and r.stats.forgotten == 0


def test_no_grace_never_forgets() -> None:
    r = _reasm(None)
    c = Conv(sport=443, ts=T0)
    closed = _fin_closed(r, c)
    _newcomer(r, closed + 1000 * G)
    assert _stream(r, c) == 0 and r.stats.forgotten == 0


# --------------------------------------------------------------------------- changed or not

def test_segments_that_change_nothing_do_not_extend_the_grace() -> None:
    r = _reasm()
    c = Conv(sport=443, ts=T0)
    closed = _fin_closed(r, c)
    c.ts = closed + G // 2
    r.feed(c.c(2 + len(TLS), ack=2))                # the last ACK again
    r.feed(c.s(1, flags=F, ack=2 + len(TLS)))       # the FIN again
    _newcomer(r, closed + G + Q)
    assert _stream(r, c) is None and r.stats.forgotten == 1


def test_a_change_while_closed_restarts_the_grace() -> None:
    """Refused (RST) without payload, then a late payload decides it: the entry changed
    (undecided -> ignored, still closed), so it is kept a grace from the change."""
    r = _reasm()
    c = Conv(sport=8080, ts=T0)
    r.feed(c.c(0, flags=S))
    rst = c.s(0, flags=R, ack=1, raw=True)
    r.feed(rst)
    c.ts = rst.ts_ns + G // 2
    late = c.c(1, b"GET / HTTP/1.0\r\n\r\n", ack=1)
    r.feed(late)
    _newcomer(r, rst.ts_ns + G + Q)
    assert _stream(r, c) == 0 and r.stats.forgotten == 0
    _newcomer(r, late.ts_ns + G + Q)
    assert _stream(r, c) is None and r.stats.forgotten == 1


def test_the_first_segment_of_a_direction_is_a_change() -> None:
    r = _reasm()
    c = Conv(sport=8080, ts=T0)
    rst = c.c(7, flags=R, raw=True)                 # a lone RST: closed, one base known
    r.feed(rst)
    c.ts = rst.ts_ns + G // 2
    back = c.s(9, flags=R, raw=True)
    r.feed(back)                                    # the other base: changed, still closed
    _newcomer(r, rst.ts_ns + G + Q)
    assert _stream(r, c) == 0
    _newcomer(r, back.ts_ns + G + Q)
    assert _stream(r, c) is None


def test_port_reuse_within_the_grace_is_not_forgotten_with_the_old_conversation() -> None:
    r = _reasm()
    c = Conv(sport=443, ts=T0)
    closed = _fin_closed(r, c)
    again = Conv(sport=443, cisn=777_777, ts=closed + G // 2)
    r.feed(again.c(0, flags=S))                     # new ISN: a new conversation (reused)
    assert r.stats.reused == 1 and _stream(r, c) == 1
    _newcomer(r, closed + 3 * G)
    assert _stream(r, c) == 1 and r.stats.forgotten == 0   # open: nothing to forget


def test_port_reuse_by_syn_numbers_as_without_forgetting() -> None:
    """A SYN with a new ISN is a new conversation whether the old entry is still there
    (reuse) or forgotten (a new entry): the same stream index either way."""
    got = []
    for grace in (G, None):
        r = _reasm(grace)
        c = Conv(sport=443, ts=T0)
        closed = _fin_closed(r, c)
        _newcomer(r, closed + 2 * G)
        again = Conv(sport=443, cisn=777_777, ts=closed + 3 * G)
        n = [r.number(s) for s in again.handshake() + [again.c(1, TLS, ack=1)]]
        got.append((n, r.stats.flows_seen, r.stats.forgotten, r.stats.reused))
    assert got[0][:2] == got[1][:2] == ([2, 2, 2, 2], 3)
    assert got[0][2:] == (1, 0) and got[1][2:] == (0, 1)


# --------------------------------------------------------------------------- late segments

def test_late_segment_within_the_grace_keeps_the_stream() -> None:
    r = _reasm()
    c = Conv(sport=443, ts=T0)
    closed = _fin_closed(r, c)
    _newcomer(r, closed + G - 1)
    c.ts = closed + G - 1
    assert r.number(c.s(1, flags=F, ack=2 + len(TLS))) == 0
    assert r.stats.flows_seen == 2


def test_late_segment_after_the_grace_is_a_new_conversation() -> None:
    """The documented deviation (closed_grace_ns): Wireshark would keep stream 0."""
    r = _reasm()
    c = Conv(sport=443, ts=T0)
    closed = _fin_closed(r, c)
    _newcomer(r, closed + G + Q)                    # stream 1, and stream 0 is forgotten
    c.ts = closed + G + Q + 1
    assert r.number(c.s(1, flags=F, ack=2 + len(TLS))) == 2
    assert r.stats.flows_seen == 3


def test_fifo_is_bounded_by_the_table() -> None:
    r = _reasm(max_tracked=50)
    for i in range(500):
        c = Conv(cip=f"10.3.{i >> 8}.{i & 255}", sport=443, ts=T0 + i * SEC // 1000)
        _fin_closed(r, c)
    assert r.tracked <= 50 and r.table.pending_closes <= 50
    assert r.stats.evicted > 0


def test_out_of_order_timestamps_forget_nothing_early() -> None:
    """Time is the newest timestamp seen: a close stamped earlier than a segment already
    seen counts from that segment's time."""
    r = _reasm()
    _newcomer(r, T0 + G)                            # the newest time seen
    c = Conv(sport=443, ts=T0)                      # closes "before" it
    _fin_closed(r, c)
    _newcomer(r, T0 + 2 * G - 1)
    assert _stream(r, c) == 1
    _newcomer(r, T0 + 2 * G + Q)
    assert _stream(r, c) is None


# --------------------------------------------------------------------------- property

PORTS = (443, 25, 8080)
KINDS = ("fin", "rst-c", "rst-s", "open")


@st.composite
def _plans(draw: st.DrawFn) -> list[tuple[int, list[tuple[int, TcpSegment]]]]:
    """Conversations on a few 4-tuples (so SYNs reuse them), each a list of (time, segment);
    a later conversation of a 4-tuple starts with a SYN with a new ISN after the previous
    one's last segment; no segment comes more than the grace after its conversation's close."""
    grace = SEC
    n = draw(st.integers(1, 10))
    tuples = draw(st.lists(st.sampled_from([(p, cp) for p in PORTS for cp in (40000, 40001)]),
                           min_size=n, max_size=n))
    free: dict[tuple[int, int], int] = {}
    out = []
    for i, (port, cport) in enumerate(tuples):
        reuse = (port, cport) in free
        start = max(draw(st.integers(0, 6 * grace)), free.get((port, cport), -1) + 1)
        c = Conv(sport=port, cport=cport, cisn=1000 * (i + 1), sisn=500_000 + i, ts=start)
        payload = draw(st.sampled_from([b"", TLS, GREETING, b"EHLO x\r\n"]))
        kind = draw(st.sampled_from(KINDS))
        midstream = not reuse and draw(st.booleans())
        segs = [] if midstream else [c.c(0, flags=S), c.s(0, flags=S, ack=1)]
        segs.append(c.c(1, ack=1))
        p = len(payload)
        if payload:
            segs.append(c.s(1, payload, ack=1) if payload == GREETING else c.c(1, payload, ack=1))
        cl, sv = (1 + p, 1) if payload != GREETING else (1, 1 + p)
        if kind == "fin":
            segs += [c.c(cl, flags=F, ack=sv), c.s(sv, flags=F, ack=cl + 1),
                     c.c(cl + 1, ack=sv + 1)]
        elif kind == "rst-c":
            segs.append(c.c(cl, flags=R, ack=sv))
        elif kind == "rst-s":
            segs.append(c.s(sv, flags=R, ack=cl))
        # late duplicates of the conversation's segments, after its close
        segs += draw(st.lists(st.sampled_from(segs[-3:]), max_size=3))
        t = start
        closed_at: int | None = None
        timed = []
        for s in segs:
            t += draw(st.sampled_from([0, 1, SEC // 1000, SEC // 10, SEC // 2, 2 * SEC, 5 * SEC]))
            if closed_at is not None:
                t = min(t, closed_at + grace)
            timed.append((t, s))
            if closed_at is None and s.flags & (R | F):
                fins = [x for _, x in timed if x.flags & (F | R)]
                if any(x.flags & R for x in fins) or (
                        any(x.src == c.cip for x in fins) and any(x.src == c.sip for x in fins)):
                    closed_at = t
        free[(port, cport)] = t
        out.append((i, timed))
    return out


def _merge(plans: list[tuple[int, list[tuple[int, TcpSegment]]]]) -> list[TcpSegment]:
    items = sorted((t, i, j, s) for i, timed in plans for j, (t, s) in enumerate(timed))
    return [TcpSegment(k + 1, t, s.src, s.sport, s.dst, s.dport, s.seq, s.ack, s.flags,
                       s.payload) for k, (t, _i, _j, s) in enumerate(items)]


def _run(segs: list[TcpSegment], grace: int | None) -> tuple[list[int], list[str], int]:
    r = _reasm(grace)
    numbers = []
    events = []
    for s in segs:
        events += [repr(e) for e in r.feed(s) if isinstance(e, (FlowOpened, FlowClosed))]
        n = r.stream_of(s.src, s.sport, s.dst, s.dport)
        numbers.append(-1 if n is None else n)
    events += [repr(e) for e in r.finish()]
    return numbers, events, r.stats.forgotten


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_plans())
def test_within_the_grace_numbering_equals_never_forgetting(plans: Any) -> None:
    segs = _merge(plans)
    a = _run(segs, SEC)
    b = _run(segs, None)
    assert a[0] == b[0]
    assert a[1] == b[1]
    assert b[2] == 0


def test_the_property_does_forget() -> None:
    """The property above is not vacuous: its inputs (grace 1 s, conversations seconds
    apart) do forget entries."""
    plans = [(0, [(k * SEC, s) for k, s in enumerate(
        Conv(sport=443, cport=40000).handshake()
        + [Conv(sport=443, cport=40000).c(1, flags=R, ack=1)])]),
             (1, [(9 * SEC, Conv(sport=8080, cport=40001).c(0, flags=S))])]
    assert _run(_merge(plans), SEC)[2] == 1


# --------------------------------------------------------------------------- fused loop

_ETH = bytes.fromhex("020000000002" "020000000001" "0800")


def _frame(s: TcpSegment) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", s.sport, s.dport, s.seq, s.ack, 5 << 4, s.flags & 0xFF,
                      65535, 0, 0) + s.payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                     bytes(int(x) for x in s.src.split(".")),
                     bytes(int(x) for x in s.dst.split("."))) + tcp
    return _ETH + ip


def _write_pcap(path: Path, segs: list[TcpSegment]) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))   # ns stamps
        for s in segs:
            data = _frame(s)
            sec, ns = divmod(s.ts_ns, SEC)
            f.write(struct.pack("<IIII", sec, ns, len(data), len(data)) + data)


def _write_pcapng(path: Path, segs: list[TcpSegment]) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))
        f.write(struct.pack("<IIHHII", 1, 20, 1, 0, 262144, 20))
        for s in segs:
            data = _frame(s)
            us = s.ts_ns // 1000
            pad = b"\0" * (-len(data) % 4)
            blen = 32 + len(data) + len(pad)
            f.write(struct.pack("<IIIIIII", 6, blen, 0, us >> 32, us & 0xFFFFFFFF, len(data),
                                len(data)) + data + pad + struct.pack("<I", blen))


def _busy_capture() -> list[TcpSegment]:
    """Many short conversations over 200 s of capture time (default grace: 20 s): ignored,
    undecided and SMTP ones closed by FIN or RST, refused ones, late segments within and
    after the grace, 4-tuples reused by SYN, a few timestamps out of order."""
    out: list[TcpSegment] = []
    base = 1_700_000_000 * SEC
    for i in range(600):
        kind = i % 6
        port = (25, 443, 8080, 443, 587, 8080)[kind]
        c = Conv(cip=f"10.7.{i % 7}.{i % 5}", cport=40000 + (i % 50), sport=port,
                 cisn=(i * 7919) & 0xFFFFFFFF, sisn=(i * 104729) & 0xFFFFFFFF,
                 ts=base + i * SEC // 3)
        segs = c.handshake()
        if kind in (0, 4):
            segs.append(c.s(1, GREETING, ack=1))
            segs += [c.c(1, b"QUIT\r\n", ack=1 + len(GREETING)),
                     c.c(7, flags=F, ack=1 + len(GREETING)),
                     c.s(1 + len(GREETING), flags=F, ack=8), c.c(8, ack=2 + len(GREETING))]
        elif kind in (1, 3):
            segs.append(c.c(1, TLS, ack=1))
            if i % 4 == 1:
                segs.append(c.s(1, flags=R, ack=1 + len(TLS)))
            else:
                segs += [c.c(1 + len(TLS), flags=F, ack=1), c.s(1, flags=F, ack=2 + len(TLS)),
                         c.c(2 + len(TLS), ack=2)]
        elif kind == 2:
            segs = [c.c(0, flags=S), c.s(0, flags=R, ack=1, raw=True)]
        else:
            segs += [c.c(1, flags=F, ack=1), c.s(1, flags=F, ack=2)]
        if i % 10 == 3:                       # a late duplicate of the last segment
            last = segs[-1]
            segs.append(TcpSegment(0, last.ts_ns + (5 if i % 20 == 3 else 30) * SEC, last.src,
                                   last.sport, last.dst, last.dport, last.seq, last.ack,
                                   last.flags, last.payload))
        out += segs
    out.sort(key=lambda s: s.ts_ns)
    for k in range(0, len(out) - 1, 97):      # slightly out of time order
        a, b = out[k], out[k + 1]
        out[k], out[k + 1] = b, a
    return out


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_fused_loop_and_general_path_agree(tmp_path: Path, fmt: str) -> None:
    import json
    from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file

    def dump(res: Any) -> str:
        return json.dumps({"conversations": res.conversations, "summary": res.summary,
                           "notes": res.notes}, default=repr)

    path = tmp_path / f"busy.{fmt}"
    (_write_pcap if fmt == "pcap" else _write_pcapng)(path, _busy_capture())
    for cfg in (None, AnalysisConfig(max_tracked=40), AnalysisConfig(idle_timeout_ns=SEC)):
        general = analyze_file(str(path), cfg, fast=False)
        fast = analyze_file(str(path), cfg, fast=True)
        assert dump(fast) == dump(general)
        got: list[dict[str, Any]] = []
        streamed = analyze_file(str(path), cfg, emit=got.append)
        streamed.conversations = got
        assert dump(streamed) == dump(general)
        if cfg is None:
            r = general.summary["reassembly"]
            assert r["forgotten"] > 300 and r["evicted"] == 0
            assert len(general.conversations) == 200
