"""The compiled loop's classification of raw segments (``hotloop_c.TableClassifier``, C on the
packed entries) does exactly what ``StreamTable.classify`` (tcp/streams.py, the readable
reference) does: the same decision for every segment and, after each, the same table (both
generations, in order), the same statistics, stream counter, clock and closing bookkeeping.

Driven by the same random sequences of SYN/ACK/FIN/RST/payload segments on a few 4-tuples (port
reuse, sequence numbers at and around each side's start, first bytes that could start SMTP or
a proxy handshake), mixed with what the reassembler does to the table between two segments
(an entry held as an object, a closed entry, a watched 4-tuple, the generations turning),
with small tables (full, evicting), every grace, odd timestamps (negative, beyond 64 bits)
and frame numbers, and stream counters at the edge of their field. Then the same through the
whole file loop: random captures of such segments give the same result on both loops.

Without the extension built these tests skip (as tests/perf/test_compiled_equivalence.py)."""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import struct
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcapsmtp.engine import accel
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
from pcapsmtp.tcp.config import ReassemblyConfig, ReassemblyStats
from pcapsmtp.tcp.detect import HEAD_BYTES, may_matter
from pcapsmtp.tcp.streams import (B1, CLOSED, ENDED, FEED, HAS0, HAS1, M40, SKIPPED, ST,
                                  StreamTable, int_key)

try:
    from pcapsmtp.engine import hotloop_c  # type: ignore[attr-defined]
    BUILT = True
except ImportError:
    BUILT = False

pytestmark = pytest.mark.skipif(not BUILT, reason="compiled file loop not built")

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
SEC = 10**9

#: a few 4-tuples (source first): both directions of each, an SMTP port, port reuse
HOSTS = [0x0A000001, 0x0A000002, 0xC0A80001]
TUPLES = [(HOSTS[0], 40000, HOSTS[1], 80), (HOSTS[1], 80, HOSTS[0], 40000),
          (HOSTS[0], 40001, HOSTS[1], 443), (HOSTS[1], 443, HOSTS[0], 40001),
          (HOSTS[2], 40000, HOSTS[1], 25), (HOSTS[1], 25, HOSTS[2], 40000),
          (HOSTS[2], 5000, HOSTS[0], 5000), (HOSTS[0], 5000, HOSTS[2], 5000)]
ISNS = [1000, 1001, 999, 5000, 5001, 0, 0xFFFFFFFF, 0x80000000, 1000 + (1 << 30)]
PAYLOADS = [b"", b"", b"GET / HTTP/1.1\r\n", b"\x16\x03\x01\x02\x00", b"220 mx ESMTP\r\n", b"22",
            b"EHLO x\r\n", b"ehlo", b"HELOx", b"\x05\x01\x00", b"\x05", b"CONNECT mx:25 HTTP",
            b"CONN", b"SSH-2.0-x", b"x"]
#: marks the reassembler's objects (a candidate, a watched reset) in both tables alike
MARK = ("object",)


def _may_matter_other(head: bytes) -> bool:
    """A content test that is not ``tcp.detect.may_matter`` (the compiled code calls it)."""
    return head[:1] in (b"2", b"E", b"X")


M32 = 0xFFFFFFFF


@st.composite
def _conversation(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """One conversation's segments on a 4-tuple, each kept with a probability of 4 in 5, its
    sequence and acknowledgement numbers at their place or one off, neighbours sometimes
    swapped (two taps merged): what the rules about a direction's start are about."""
    pair = draw(st.integers(0, len(TUPLES) // 2 - 1))
    c = 2 * pair + draw(st.integers(0, 1))
    s = c ^ 1
    ci, si = draw(st.sampled_from(ISNS)), draw(st.sampled_from(ISNS))

    def near(x: int) -> int:
        return (x + draw(st.sampled_from([0, 0, 0, 0, 1, -1, 100]))) & M32

    pc = draw(st.sampled_from(PAYLOADS))
    ps = draw(st.sampled_from(PAYLOADS))
    first = draw(st.sampled_from(["client", "server", "both"]))
    cd = len(pc) if first != "server" else 0
    sd = len(ps) if first != "client" else 0
    segs = [(c, SYN, ci, 0, b""), (s, SYN | ACK, si, near(ci + 1), b""),
            (c, ACK, near(ci + 1), near(si + 1), b"")]
    if first != "server":
        segs.append((c, ACK | PSH, near(ci + 1), near(si + 1), pc))
    if first != "client":
        segs.append((s, ACK | PSH, near(si + 1), near(ci + 1 + cd), ps))
    end = draw(st.sampled_from(["fin", "rst-c", "rst-s", "open"]))
    if end == "fin":
        segs += [(c, FIN | ACK, near(ci + 1 + cd), near(si + 1 + sd), b""),
                 (s, FIN | ACK, near(si + 1 + sd), near(ci + 2 + cd), b""),
                 (c, ACK, near(ci + 2 + cd), near(si + 2 + sd), b"")]
    elif end == "rst-c":
        segs.append((c, RST | ACK, near(ci + 1 + cd), near(si + 1 + sd), b""))
    elif end == "rst-s":
        segs.append((s, RST, near(si + 1 + sd), 0, b""))
    segs = [x for x in segs if draw(st.integers(0, 4))]
    segs += draw(st.lists(st.sampled_from(segs), max_size=2)) if segs else []   # late copies
    for i in range(len(segs) - 1):
        if not draw(st.integers(0, 5)):
            segs[i], segs[i + 1] = segs[i + 1], segs[i]
    return [("seg", t, flags, seq, ack, payload, draw(st.sampled_from(DTS)))
            for t, flags, seq, ack, payload in segs]


DTS = [0, 1, SEC // 100, SEC, 5 * SEC, 100 * SEC, -SEC]


@st.composite
def _random_op(draw: st.DrawFn) -> tuple[Any, ...]:
    """A segment with anything in it, or what the reassembler does to the table."""
    kind = draw(st.sampled_from(["seg"] * 4 + ["object", "closed", "watch", "unwatch", "turn",
                                               "touch"]))
    t = draw(st.integers(0, len(TUPLES) - 1))
    if kind != "seg":
        return (kind, t, draw(st.integers(0, 3)))
    flags = draw(st.sampled_from([SYN, SYN | ACK, ACK, ACK, ACK | PSH, FIN | ACK, RST,
                                  RST | ACK, FIN, SYN | FIN, ACK | FIN | RST, 0]))
    seq = draw(st.sampled_from(ISNS) | st.integers(0, M32))
    ack = draw(st.sampled_from(ISNS) | st.integers(0, M32))
    payload = draw(st.sampled_from(PAYLOADS) | st.binary(max_size=12))
    return ("seg", t, flags, seq, ack, payload, draw(st.sampled_from(DTS)))


@st.composite
def _ops(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Conversations interleaved, with random segments and table operations among them."""
    queues = draw(st.lists(_conversation(), min_size=1, max_size=5))
    queues.append(draw(st.lists(_random_op(), max_size=12)))
    ops: list[tuple[Any, ...]] = []
    while any(queues):
        live = [q for q in queues if q]
        ops.append(live[draw(st.integers(0, len(live) - 1))].pop(0))
    return ops


def _state(t: StreamTable) -> tuple[Any, ...]:
    return (list(t.young.items()), list(t.old.items()), dict(t.watched),
            dataclasses.asdict(t.stats), t.next_stream, t.newest, t.pending_closes, len(t))


def _table(max_tracked: int, grace: int | None, could: Any, ports: frozenset[int],
           next_stream: int) -> StreamTable:
    t = StreamTable(ReassemblyConfig(max_tracked=max_tracked, closed_grace_ns=grace,
                                     smtp_ports=ports), ReassemblyStats(), could)
    t.next_stream = next_stream
    return t


def _apply(t: StreamTable, op: tuple[Any, ...], key: int) -> None:
    """What the reassembler does to the table between two segments."""
    kind = op[0]
    if kind == "object":
        t.young[key] = MARK
    elif kind == "closed":          # (TcpReassembler's _Conv.packed(CLOSED), ENDED or not)
        v = t.young.get(key)
        if isinstance(v, int):
            v = (v & ~ST) | CLOSED
            if op[2] & 1:
                v &= ~(HAS1 | (M32 << B1))
            t.young[key] = v | ENDED if op[2] & 2 else v
    elif kind == "watch":
        t.watched[key] = MARK
    elif kind == "unwatch":
        t.watched.pop(key, None)
    elif kind == "turn":
        if not t.old:
            t.old, t.young = t.young, {}
    elif kind == "touch":
        v = t.old.pop(key, None)
        if v is not None:
            t.young[key] = v


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops(), max_tracked=st.sampled_from([1, 2, 3, 5, 1000]),
       grace=st.sampled_from([None, 0, SEC // 10, 2 * SEC, 60 * SEC]),
       could=st.sampled_from(["may_matter", None, "other"]),
       ports=st.sampled_from([frozenset({25, 587}), frozenset({80}), frozenset()]),
       ts0=st.sampled_from([1_700_000_000 * SEC, 0, -5 * SEC, (1 << 63) - 3 * SEC,
                            1 << 64, -(1 << 63) - 1]),
       frame0=st.sampled_from([1, (1 << 48) - 3, 1 << 60]),
       next0=st.sampled_from([0, M40 - 1, (1 << 64) - 2]))
def test_same_decisions_and_table_as_the_reference(ops: list[tuple[Any, ...]], max_tracked: int,
                                                   grace: int | None, could: str | None,
                                                   ports: frozenset[int], ts0: int, frame0: int,
                                                   next0: int) -> None:
    fn = {"may_matter": may_matter, "other": _may_matter_other, None: None}[could]
    ref = _table(max_tracked, grace, fn, ports, next0)
    ctab = _table(max_tracked, grace, fn, ports, next0)
    compiled = hotloop_c.TableClassifier(ctab)
    ts, frame = ts0, frame0
    for op in ops:
        key, d = int_key(*TUPLES[op[1]][:2], *TUPLES[op[1]][2:])
        if op[0] != "seg":
            _apply(ref, op, key)
            _apply(ctab, op, key)
            continue
        _kind, _t, flags, seq, ack, payload, dt = op
        ts += dt
        frame += 1
        buf = b"\x00" * 3 + payload + b"\xff" * 2
        want = ref.classify(key, d, seq, flags, buf, 3, 3 + len(payload), frame, ts, ack)
        got = compiled.classify(key, d, seq, flags, buf, 3, 3 + len(payload), frame, ts, ack)
        assert got == want and want in (FEED, SKIPPED), op
        assert _state(ctab) == _state(ref), op
    # what is still waiting to be forgotten is the same too
    if grace is not None:
        ref.creation_time(ts + 10 * grace + SEC)
        ctab.creation_time(ts + 10 * grace + SEC)
        assert _state(ctab) == _state(ref)


#: what the property must reach, read off the reference table after a run and its decisions
#: (``"content"``: fed for its first bytes; ``"full"``: a new 4-tuple fed because the table held
#: ``max_tracked`` entries)
_CASES = {
    "a new conversation": lambda t, d: t.stats.flows_seen >= 2,
    "a reused 4-tuple": lambda t, d: t.stats.reused >= 1,
    "a decision by content": lambda t, d: "content" in d,
    "a closed entry": lambda t, d: t.pending_closes >= 1 or t.stats.forgotten >= 1,
    "a forgotten entry": lambda t, d: t.stats.forgotten >= 1,
    "a full table": lambda t, d: "full" in d,
}


def _reference_run(ops: list[tuple[Any, ...]], max_tracked: int, grace: int | None,
                   ports: frozenset[int]) -> tuple[StreamTable, list[Any]]:
    """``ops`` on the reference table (``may_matter``, the property's clock and frames): the
    table after them and every decision."""
    t = _table(max_tracked, grace, may_matter, ports, 0)
    ts, frame, decisions = 1_700_000_000 * SEC, 1, []
    for op in ops:
        key, d = int_key(*TUPLES[op[1]][:2], *TUPLES[op[1]][2:])
        if op[0] != "seg":
            _apply(t, op, key)
            continue
        _kind, _t, flags, seq, ack, payload, dt = op
        ts += dt
        frame += 1
        new = key not in t.young and key not in t.old and key not in t.watched
        got = t.classify(key, d, seq, flags, payload, 0, len(payload), frame, ts, ack)
        # fed for its first bytes (the port test comes first, the table's state after)
        port = ((key >> 16) & 0xFFFF) in ports or (key & 0xFFFF) in ports
        content = got == FEED and not port and bool(payload) and may_matter(payload[:HEAD_BYTES])
        full = (new and got == FEED and not port and not content
                and len(t.young) + len(t.old) >= max_tracked)
        decisions.append("content" if content else "full" if full else got)
    return t, decisions


def test_the_property_reaches_every_case() -> None:
    """The property's own strategies (``_ops`` and its table sizes, graces and ports) make new
    conversations, reuse a 4-tuple, decide by content, close, forget and find the table full:
    300 of their examples (a fixed seed, so a failure repeats), run on the reference table,
    reach every case of ``_CASES`` (a property that never got there would prove nothing
    about it)."""
    from hypothesis import Phase
    from hypothesis import seed as fixed_seed

    reached: set[str] = set()

    @fixed_seed(20261205)
    @settings(max_examples=300, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(ops=_ops(), max_tracked=st.sampled_from([1, 2, 3, 5, 1000]),
           grace=st.sampled_from([None, 0, SEC // 10, 2 * SEC, 60 * SEC]),
           ports=st.sampled_from([frozenset({25, 587}), frozenset({80}), frozenset()]))
    def run(ops: list[tuple[Any, ...]], max_tracked: int, grace: int | None,
            ports: frozenset[int]) -> None:
        t, decisions = _reference_run(ops, max_tracked, grace, ports)
        reached.update(case for case, hit in _CASES.items() if hit(t, decisions))

    run()
    assert sorted(set(_CASES) - reached) == []


def test_a_hand_written_walk_through_every_case() -> None:
    """The compiled classifier on one hand-written sequence, with the decisions and table
    changes a reader can check by eye: a new conversation ignored by its content, a reused
    4-tuple, a reset's pending close, a closed entry forgotten past its grace, a full table
    and a decision by content."""
    t = _table(2, SEC, may_matter, frozenset({25}), 0)
    c = hotloop_c.TableClassifier(t)
    k, _ = int_key(HOSTS[0], 40000, HOSTS[1], 80)
    k2, _ = int_key(HOSTS[0], 40001, HOSTS[1], 443)
    k3, _ = int_key(HOSTS[2], 40000, HOSTS[1], 443)
    buf = b"GET / HTTP/1.1\r\n"
    assert c.classify(k, 0, 1000, SYN, b"", 0, 0, 1, SEC, 0) == SKIPPED
    assert c.classify(k, 1, 5000, SYN | ACK, b"", 0, 0, 2, SEC, 1001) == SKIPPED
    assert c.classify(k, 0, 1001, ACK, buf, 0, len(buf), 3, SEC, 5001) == SKIPPED
    assert t.young[k] & ST == 2                                          # IGNORED
    assert c.classify(k, 0, 2000, SYN, b"", 0, 0, 4, SEC, 0) == SKIPPED   # reuse
    assert t.stats.reused == 1 and t.stats.flows_seen == 2
    assert c.classify(k, 0, 2001, RST, b"", 0, 0, 5, SEC, 0) == SKIPPED
    assert t.pending_closes == 1
    assert c.classify(k2, 0, 7, SYN, b"", 0, 0, 6, 3 * SEC, 0) == SKIPPED
    assert t.stats.forgotten == 1 and k not in t.young
    assert c.classify(k3, 0, 7, SYN, b"", 0, 0, 7, 3 * SEC, 0) == SKIPPED
    assert c.classify(k, 0, 7, SYN, b"", 0, 0, 8, 3 * SEC, 0) == FEED     # full
    assert c.classify(k2, 0, 8, ACK, b"EHLO x", 0, 6, 9, 3 * SEC, 0) == FEED  # content


def test_a_closed_conversation_s_late_segments() -> None:
    """A closed entry (the reassembler's, after a candidate ended) on an SMTP port, a late
    segment with bytes that could start SMTP: counted as after the close and skipped by both,
    unless the 4-tuple is watched (then fed)."""
    for watched in (False, True):
        tables = [_table(8, SEC, may_matter, frozenset({25}), 0) for _ in range(2)]
        k, d = int_key(HOSTS[2], 40000, HOSTS[1], 25)
        for t in tables:
            t.young[k] = CLOSED | HAS0 | HAS1 | (7 << B1) | ENDED
            if watched:
                t.watched[k] = MARK
        got = [tables[0].classify(k, d, 8, ACK | PSH, b"EHLO x\r\n", 0, 8, 10, SEC, 1),
               hotloop_c.TableClassifier(tables[1]).classify(k, d, 8, ACK | PSH,
                                                             b"EHLO x\r\n", 0, 8, 10, SEC, 1)]
        assert got == [FEED if watched else SKIPPED] * 2
        assert _state(tables[0]) == _state(tables[1])
        assert tables[1].stats.after_close_segments == (0 if watched else 1)


HEAD_ALPHABET = b"2204155EHLOehlo CONNECTconnect\x05\x01\x10\x11\x00\r\n\t-xX"


def _heads() -> Iterator[bytes]:
    for n in range(1, 4):
        for t in itertools.product(sorted(set(HEAD_ALPHABET)), repeat=n):
            yield bytes(t)
    for word in (b"220 ", b"220-", b"421 ", b"554-", b"EHLO", b"helo", b"LhLo", b"CONNECT ",
                 b"\x05\x02\x00\x01"):
        for n in range(1, len(word) + 1):
            for tail in (b"", b" ", b"\r", b"\n", b"\t", b"x", b"-", b"\x00"):
                yield (word[:n] + tail)[:HEAD_BYTES]


def test_content_test_matches_detect_on_every_short_head() -> None:
    heads = set(_heads())
    assert len(heads) > 1000
    for h in heads:
        assert hotloop_c.head_may_matter(h) == may_matter(h), h


@settings(max_examples=2000, deadline=None)
@given(head=st.binary(min_size=1, max_size=HEAD_BYTES)
       | st.builds(lambda a, b: (a + b)[:HEAD_BYTES],
                   st.sampled_from([b"220", b"421 ", b"554-", b"EHLO", b"ehl", b"CONNEC",
                                    b"\x05", b"LHLO"]), st.binary(max_size=5)))
def test_content_test_matches_detect(head: bytes) -> None:
    assert hotloop_c.head_may_matter(head) == may_matter(head)


_ADDR4 = st.sampled_from([0, 1, 0x00FFFFFF, 0x03FFFFFF, 0x04000000, 0x7F000001, 0xC0000201,
                          0xFFFFFFFF]) | st.integers(0, 0xFFFFFFFF)
_PORT = st.sampled_from([0, 1, 25, 80, 0xFFFF]) | st.integers(0, 0xFFFF)


@settings(max_examples=3000, deadline=None)
@given(src=_ADDR4, dst=_ADDR4, sport=_PORT, dport=_PORT)
def test_ipv4_key_is_int_key(src: int, dst: int, sport: int, dport: int) -> None:
    """The compiled loop's table key of an IPv4 segment (its digits written directly) is the
    int ``int_key`` makes, in value and in every other respect an int shows (the keys of the
    same conversation from either path must meet in the table's dictionaries)."""
    got, d = hotloop_c.table_key(_frame(src, sport, dst, dport, 1, 0, 0x10, b""))
    want, wd = int_key(src, sport, dst, dport)
    assert (got, d) == (want, wd) and type(got) is int
    assert hash(got) == hash(want) and got.bit_length() == want.bit_length() and repr(got) == repr(want)
    assert {want: 1}.get(got) == 1 and got & 0xFFFF == want & 0xFFFF and got >> 64 == want >> 64


@settings(max_examples=500, deadline=None)
@given(src=st.integers(0, (1 << 128) - 1), dst=st.integers(0, (1 << 128) - 1), sport=_PORT,
       dport=_PORT)
def test_ipv6_key_is_int_key(src: int, dst: int, sport: int, dport: int) -> None:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x10, 65535, 0, 0)
    ip = struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + src.to_bytes(16, "big") + dst.to_bytes(16, "big")
    got = hotloop_c.table_key(b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd" + ip + tcp)
    assert got == int_key(src, sport, dst, dport, v6=True)


# ------------------------------------------------------------------------- the whole loop

def _frame(src: int, sport: int, dst: int, dport: int, seq: int, ack: int, flags: int,
           payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(tcp) + len(payload), 1, 0, 64, 6, 0,
                     src, dst)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp + payload


def _pcap(frames: list[tuple[int, bytes]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for ts, f in frames:
        out.append(struct.pack("<IIII", ts // 10**6, ts % 10**6, len(f), len(f)) + f)
    return b"".join(out)


def _loop_result(path: str, compiled: bool, config: AnalysisConfig) -> str:
    accel.select(compiled)
    try:
        res = analyze_file(path, config)
    finally:
        accel.select(None)
    return json.dumps({"conversations": res.conversations, "summary": res.summary,
                       "notes": res.notes}, default=repr, sort_keys=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops(), max_tracked=st.sampled_from([2, 3, 1000]))
def test_whole_loop_same_on_random_captures(ops: list[tuple[Any, ...]], max_tracked: int) -> None:
    """Random segments of the sequences above written as a capture (microsecond times): the
    compiled loop and its twin give the same conversations, summary and notes."""
    frames = []
    ts = 1_700_000_000 * 10**6
    for op in ops:
        if op[0] != "seg":
            continue
        _kind, t, flags, seq, ack, payload, dt = op
        ts = max(0, ts + dt // 1000)
        frames.append((ts, _frame(*TUPLES[t], seq, ack, flags, payload)))
    cfg = AnalysisConfig(max_tracked=max_tracked, max_flows=2)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "random.pcap")
        with open(p, "wb") as f:
            f.write(_pcap(frames))
        assert _loop_result(p, True, cfg) == _loop_result(p, False, cfg)
