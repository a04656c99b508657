"""A reset that its side's stack did not send, told by what that side does after it: a stack that
resets a connection sends nothing more on it (but a reset answering the peer, or a new SYN), while
the real end behind a reset a box forged goes on (its reply or retransmission racing the reset, its
ACKs, its FIN) at the reset's sequence number or beyond, also when the box copied its TTL
(tcp/events.py ``SentAfterReset``, docs/output.md "Forged resets").

The TCP layer over any segments (hypothesis: a genuine stack's segments reordered around its own
reset never count; the real end's new data after a forged one always does), the watch's end (its
time, a new SYN, the capture's end, ``tick``), and the verdict on the generated captures
(captures/scenarios_forged.py ``tcp-reset-race-*``: exact outcome, caused_by, reason, case and
frames, the sequence numbers cross-checked with tshark).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapsmtp.analysis.reasons import REASON_CASES
from pcapsmtp.engine.analyzer import AnalysisConfig, Analyzer, analyze_file
from pcapsmtp.model import Side, TcpSegment
from pcapsmtp.tcp.config import ReassemblyConfig
from pcapsmtp.tcp.events import FlowClosed, FlowOpened, SentAfterReset, StreamEnd, StreamGap
from pcapsmtp.tcp.reassembler import TcpReassembler
from tsharkfilter import tshark_fields

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"

_C, _S = "192.0.2.10", "198.51.100.25"
_T0 = 1_767_261_600 * 10**9
_MS = 10**6
_CISN, _SISN = 1000, 5000
_BANNER, _EHLO = b"220 mx ESMTP\r\n", b"EHLO c\r\n"
_REPLY, _STARTTLS = b"250-mx\r\n250 STARTTLS\r\n", b"STARTTLS\r\n"
_READY = b"220 2.0.0 Ready to start TLS\r\n"


class _Dialogue:
    """Segments of one connection on 40000 -> 25, captured at the client, built in order."""

    def __init__(self) -> None:
        self.segs: list[TcpSegment] = []
        self.ts = _T0
        self.c = _CISN + 1          # the client's next sequence number
        self.s = _SISN + 1          # the server's

    def seg(self, client: bool, seq: int, ack: int, flags: int, data: bytes = b"",
            after_ms: float = 1.0, ttl: int = 64) -> TcpSegment:
        self.ts += int(after_ms * _MS)
        src, sp, dst, dp = (_C, 40000, _S, 25) if client else (_S, 25, _C, 40000)
        s = TcpSegment(len(self.segs) + 1, self.ts, src, sp, dst, dp, seq & 0xFFFFFFFF,
                       ack & 0xFFFFFFFF, flags, data, 0, ttl if client else 52)
        self.segs.append(s)
        return s

    def opening(self) -> _Dialogue:
        """Handshake, banner, EHLO, EHLO reply, STARTTLS (the server's answer not yet)."""
        self.seg(True, _CISN, 0, 0x02)
        self.seg(False, _SISN, _CISN + 1, 0x12)
        self.seg(True, self.c, self.s, 0x10)
        self.data(False, _BANNER)
        self.data(True, _EHLO)
        self.data(False, _REPLY)
        self.data(True, _STARTTLS)
        return self

    def data(self, client: bool, payload: bytes, after_ms: float = 1.0) -> TcpSegment:
        if client:
            s = self.seg(True, self.c, self.s, 0x18, payload, after_ms)
            self.c += len(payload)
        else:
            s = self.seg(False, self.s, self.c, 0x18, payload, after_ms)
            self.s += len(payload)
        return s


def _renumber(segs: list[TcpSegment]) -> list[TcpSegment]:
    """The segments as captured in this order: frames 1, 2, ..."""
    return [TcpSegment(i, s.ts_ns, s.src, s.sport, s.dst, s.dport, s.seq, s.ack, s.flags, s.payload,
                       0, s.ttl) for i, s in enumerate(segs, 1)]


def _events(segs: list[TcpSegment], config: ReassemblyConfig = ReassemblyConfig()) -> list[Any]:
    r = TcpReassembler(config)
    out = [ev for s in segs for ev in r.feed(s)]
    return out + r.finish()


def _after(events: list[Any]) -> list[SentAfterReset]:
    return [ev for ev in events if isinstance(ev, SentAfterReset)]


# ------------------------------------------------------------------------------------------------
# The TCP layer
# ------------------------------------------------------------------------------------------------

def test_the_real_reply_after_a_forged_reset_counts() -> None:
    """The box resets at STARTTLS with the server's address and its next sequence number; the
    server's 220, its ACK of more, its FIN, all after, count; the client's answer does not."""
    d = _Dialogue().opening()
    rst = d.seg(False, d.s, d.c, 0x14)
    ready = d.data(False, _READY, 0.3)
    d.seg(True, d.c, 0, 0x04)                        # the client's stack answers (not the server's)
    d.seg(False, d.s, d.c, 0x11)                      # the server's FIN
    events = _events(d.segs)
    (ev,) = _after(events)
    assert (ev.side, ev.reset_frame, ev.kind, ev.frame, ev.last_frame, ev.segments) == (
        Side.SERVER, rst.frame, "data", ready.frame, len(d.segs), 2)
    # the watch ends before the conversation's FlowClosed, which keeps the reset's time
    kinds = [type(e) for e in events]
    assert kinds.index(SentAfterReset) == kinds.index(FlowClosed) - 1
    closed = next(e for e in events if isinstance(e, FlowClosed))
    assert (closed.reason, closed.ts_ns) == ("closed", rst.ts_ns)


def test_two_taps_put_the_answer_before_the_forged_reset() -> None:
    """Captures merged from two taps, the client's ahead: the client's reset answering the
    server's 220 (it acknowledges it) comes before the forged reset and the 220 it answers. In
    causal order it is after both: it waits, the forged reset ends the conversation where it
    comes, the 220 is the server going on after it, and the client's reset is after the close:
    no hole declared in the server's stream, the reset at the client's side not taken for the
    end."""
    d = _Dialogue().opening()
    answer = d.seg(True, d.c, d.s + len(_READY), 0x14)
    rst = d.seg(False, d.s, d.c, 0x14)
    ready = d.data(False, _READY, 0.3)
    events = _events(_renumber(d.segs))
    assert [(e.frame, e.kind) for e in _after(events)] == [(ready.frame, "data")]
    ends = [(e.side, e.reset, e.truncated, e.frame) for e in events if isinstance(e, StreamEnd)]
    assert ends == [(Side.SERVER, True, False, rst.frame), (Side.CLIENT, False, True, answer.frame - 1)]
    assert not any(isinstance(e, StreamGap) for e in events)


@pytest.mark.parametrize("flags,ack_more,kind", [(0x11, 0, "FIN"), (0x10, 5, "ACK"), (0x10, 0, None)])
def test_a_fin_or_an_ack_of_more_after_it(flags: int, ack_more: int, kind: str | None) -> None:
    """A FIN at the reset's sequence number; an ACK there acknowledging more of the peer than the
    reset did (a reset with ACK tells how far its sender had received); an ACK of no more (it may
    have been sent before the reset): nothing."""
    d = _Dialogue().opening()
    d.seg(False, d.s, d.c - 5, 0x14)                 # the reset acknowledges STARTTLS but 5 bytes
    d.seg(False, d.s, d.c - 5 + ack_more, flags)
    assert [e.kind for e in _after(_events(d.segs))] == ([kind] if kind else [])


def test_what_its_stack_may_send_does_not_count() -> None:
    """After the server's own reset: its data sent before it (below its sequence number, captured
    after it), a second reset answering the client's STARTTLS that crossed it, the client's
    segments, and a segment far outside the connection's sequence space: nothing."""
    d = _Dialogue().opening()
    before = d.seg(False, d.s, d.c, 0x18, b"421 bye\r\n")
    d.segs.pop()                                       # captured after the reset
    end = d.s + len(b"421 bye\r\n")
    d.seg(False, end, d.c, 0x14)
    d.segs.append(before)
    d.seg(True, d.c, end, 0x18, b"QUIT\r\n")
    d.seg(False, end, 0, 0x04)
    d.seg(False, end + (1 << 24), d.c, 0x18, b"x")      # another connection's numbers
    d.seg(False, end, d.c + (1 << 24), 0x10)           # an ACK of nothing this connection sent
    assert _after(_events(_renumber(d.segs))) == []


def test_a_new_syn_ends_the_watch() -> None:
    """A new connection on the 4-tuple (a new SYN) right after the reset: its server segments
    are another connection's; the old conversation closes at the SYN, before the new one opens."""
    d = _Dialogue().opening()
    d.seg(False, d.s, d.c, 0x14)
    d.seg(True, 777_000, 0, 0x02, after_ms=200)
    d.seg(False, 888_000, 777_001, 0x12)
    d.seg(True, 777_001, 888_001, 0x10)
    d.seg(False, 888_001, 777_001, 0x18, _BANNER)
    events = _events(d.segs)
    assert _after(events) == []
    kinds = [type(e) for e in events]
    assert kinds.count(FlowClosed) == 2 and kinds.index(FlowClosed) < kinds.index(FlowOpened, 1)


def test_the_watch_ends_after_its_time() -> None:
    """Later than ``reset_watch_ns`` after the reset, the side's segments no longer count (and
    the conversation has closed); ``tick`` ends the watch without a segment (live capture)."""
    d = _Dialogue().opening()
    rst = d.seg(False, d.s, d.c, 0x14)
    window = ReassemblyConfig().reset_watch_ns
    d.data(False, _READY, (window + _MS) / _MS)
    assert _after(_events(d.segs)) == []
    r = TcpReassembler()
    for s in d.segs[:-1]:
        r.feed(s)
    assert r.earliest_pending_frame() == 1            # not concluded yet: output waits for it
    assert r.tick(rst.ts_ns + window) == []
    closed = r.tick(rst.ts_ns + window + 1)
    assert [type(e) for e in closed] == [FlowClosed] and r.earliest_pending_frame() is None
    assert _after(_events(d.segs, ReassemblyConfig(reset_watch_ns=0))) == []


def test_the_capture_end_ends_the_watch() -> None:
    d = _Dialogue().opening()
    d.seg(False, d.s, d.c, 0x14)
    d.data(False, _READY, 0.3)
    r = TcpReassembler()
    out = [ev for s in d.segs for ev in r.feed(s)]
    assert not any(isinstance(e, FlowClosed) for e in out)
    assert [type(e) for e in r.finish()] == [SentAfterReset, FlowClosed]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=6),
       st.integers(min_value=0, max_value=6), st.booleans(), st.integers(min_value=0, max_value=3))
def test_a_stack_never_goes_on_after_its_own_reset(sizes: list[int], late: int, with_ack: bool,
                                                   answers: int) -> None:
    """The server sends segments of ``sizes`` bytes and resets at its next sequence number (with
    or without ACK); the capture shows its last ``late`` segments after the reset (reordered),
    then ``answers`` resets of its stack answering the client: never counted. The same with the
    reset ``k`` bytes early (a box that forged it with a stale sequence number) and the server's
    next reply after it: always counted, as data."""
    for forged in (False, True):
        d = _Dialogue().opening()
        mine = [d.data(False, bytes(n)) for n in sizes]
        back = sum(sizes[-1:]) if forged else 0
        late = min(late, len(mine))
        kept = mine[:len(mine) - late]
        rst = TcpSegment(0, d.ts + _MS, _S, 25, _C, 40000, (d.s - back) & 0xFFFFFFFF, d.c,
                         0x14 if with_ack else 0x04, b"", 0, 52)
        order = d.segs[:len(d.segs) - len(mine)] + kept + [rst] + mine[len(kept):]
        for _ in range(answers):
            order.append(TcpSegment(0, d.ts + 2 * _MS, _S, 25, _C, 40000, d.s, 0, 0x04, b"", 0, 52))
        if forged:
            order.append(TcpSegment(0, d.ts + 3 * _MS, _S, 25, _C, 40000, d.s, d.c, 0x18, _READY, 0, 52))
        segs = _renumber(order)
        got = _after(_events(segs))
        if forged:
            # the first counted: its last segment when captured after the reset (its bytes end
            # beyond the reset's number: that reset's sender had not sent them), else the reply
            first = order.index(mine[-1]) + 1 if late else len(segs)
            assert [(e.kind, e.frame, e.segments) for e in got] == [("data", first, 2 if late else 1)]
        else:
            assert got == []


# ------------------------------------------------------------------------------------------------
# The verdict on the generated captures
# ------------------------------------------------------------------------------------------------

#: (capture, stream) -> outcome, caused_by, reason, case, the reset's frame, the side's first
#: segment after it (None: none counts), the side
VERDICTS: dict[tuple[str, int], tuple[str, str, str, str | None, int, int | None, str]] = {
    ("tcp-reset-race-starttls.pcap", 0):
        ("aborted", "middlebox", "starttls-refused", "reset-forged", 11, 12, "server"),
    ("tcp-reset-race-starttls-ipv6.pcap", 0):
        ("aborted", "middlebox", "starttls-refused", "reset-forged", 11, 12, "server"),
    ("tcp-reset-race-hello.pcap", 0):
        ("aborted", "middlebox", "tls-handshake-failed", "reset-forged", 15, 16, "server"),
    ("tcp-reset-race-hello-ipv6.pcap", 0):
        ("aborted", "middlebox", "tls-handshake-failed", "reset-forged", 15, 16, "server"),
    ("tcp-reset-race-server-side.pcap", 0):
        ("aborted", "middlebox", "no-mail-transaction", "reset-forged", 10, 11, "client"),
    ("tcp-reset-race-server-side.pcap", 1):
        ("aborted", "middlebox", "tls-not-started", "reset-forged", 26, 27, "client"),
    ("tcp-reset-race-server-side-ipv6.pcap", 0):
        ("aborted", "middlebox", "no-mail-transaction", "reset-forged", 10, 11, "client"),
    ("tcp-reset-race-server-side-ipv6.pcap", 1):
        ("aborted", "middlebox", "tls-not-started", "reset-forged", 26, 27, "client"),
    # controls: the side's own
    ("tcp-reset-race-controls.pcap", 0): ("aborted", "server", "starttls-refused", None, 11, None, "server"),
    # (its 421, captured after the reset and below its sequence number, is read before it: the
    # verdict of the same packets in capture order, the server's refusal and its own reset, never
    # a box's: case server-closed)
    ("tcp-reset-race-controls.pcap", 1):
        ("aborted", "server", "starttls-refused", "server-closed", 22, None, "server"),
    ("tcp-reset-race-crossed.pcap", 0): ("aborted", "none", "no-mail-transaction", None, 10, None, "server"),
    ("tcp-reset-race-reuse.pcap", 0): ("aborted", "server", "starttls-refused", None, 11, None, "server"),
}


def _conv(name: str, stream: int) -> dict[str, Any]:
    res = analyze_file(str(CAPTURES / name), AnalysisConfig())
    assert res.error is None, res.error
    return next(c for c in res.conversations if c["stream"] == stream)


@pytest.mark.parametrize("name,stream", sorted(VERDICTS))
def test_the_verdict(name: str, stream: int) -> None:
    outcome, caused_by, reason, case, rst, went, side = VERDICTS[(name, stream)]
    conv = _conv(name, stream)
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case")) == (
        outcome, caused_by, reason, case)
    forged = [f for f in conv["findings"] if f["code"] == "reset-forged"]
    if case != "reset-forged":
        assert forged == [] and went is None
        return
    assert conv["evidence_frame"] == rst
    assert [(f["side"], f["frame"]) for f in forged] == [("middlebox", rst)]
    msg = forged[0]["message"]
    assert f"the {side} went on sending after it (its bytes in frame {went}, " in msg
    assert "came with" not in msg           # the TTL is the side's: the box copied it
    assert conv["detail"].endswith(
        f"the reset (frame {rst}) carries the {side}'s address, but the {side} went on sending "
        f"after it (frame {went})")
    info = REASON_CASES[(reason, case)]
    assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}


def test_the_reuse_is_another_connection() -> None:
    res = analyze_file(str(CAPTURES / "tcp-reset-race-reuse.pcap"), AnalysisConfig())
    assert [(c["stream"], c["caused_by"], c["reason"]) for c in res.conversations] == [
        (0, "server", "starttls-refused"), (1, "server", "tls-fallback")]


def test_ttl_and_race_together() -> None:
    """A reset at another TTL whose side also goes on: the finding and the detail give both."""
    d = _Dialogue().opening()
    d.seg(False, d.s, d.c, 0x14).ttl = 250       # (a plain class: the TTL is settable)
    d.data(False, _READY, 0.3)
    an = Analyzer()
    (conv,) = [c for s in d.segs for c in an.feed(s)] + an.finish()
    assert (conv["caused_by"], conv["case"]) == ("middlebox", "reset-forged")
    assert conv["detail"].endswith("its TTL 250 is not the TTL 52 of the server's own segments, and "
                                   f"the server went on sending after it (frame {len(d.segs)})")


def _tshark(path: Path) -> list[tuple[str, ...]]:
    return tshark_fields(path, "tcp", "frame.number", "tcp.stream", "tcp.srcport", "tcp.flags.reset",
                         "tcp.flags.syn", "tcp.seq_raw", "tcp.len")


@pytest.mark.parametrize("name", sorted({n for n, _ in VERDICTS}))
def test_tshark_shows_the_side_going_on(name: str) -> None:
    """tshark's first reset of each stream is ours, and of the segments of its side after it that
    are not resets, the first whose bytes end beyond the reset's sequence number (tcp.seq_raw +
    tcp.len) is the frame we name; none for the controls."""
    rows = _tshark(CAPTURES / name)
    is_set = ("1", "True")
    for (n, stream), (*_, rst, went, _side) in VERDICTS.items():
        if n != name:
            continue
        mine = [r for r in rows if int(r[1]) == stream]
        first = next(r for r in mine if r[3] in is_set)
        assert int(first[0]) == rst
        later = [r for r in mine if int(r[0]) > rst and r[2] == first[2] and r[3] not in is_set
                 and r[4] not in is_set]
        beyond = [int(r[0]) for r in later
                  if 0 < (int(r[5]) + int(r[6]) - int(first[5])) % (1 << 32) < 1 << 30]
        assert (beyond[0] if beyond else None) == went
