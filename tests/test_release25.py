"""The release of the segments held for the other side's bytes (``tcp/reassembler.py`` ``_release``,
``ReassemblyConfig.max_held_segments``; captures/scenarios_release25.py). Frames cross-checked with
tshark.

- When both heads of the hold wait past the window for bytes not all held, only the bytes held
  nowhere are lost: a head whose acknowledged bytes begin with a hole before bytes held behind the
  other head declares that hole alone, and the held bytes are delivered in order.
- The hold is bounded by the segments held, not by the segments of the conversation that pass
  meanwhile (a capture of one-byte segments passes over a thousand in the 300 ms two taps can be
  apart); a flood of tiny held segments still runs in time linear in the segments and in bounded
  memory.
"""
from __future__ import annotations

import os
import sys
import time
import tracemalloc
from collections.abc import Iterable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tsharkfilter import frames_matching, tshark_fields

import cuts
from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from pcapsmtp.model import Side, TcpSegment
from pcapsmtp.tcp.config import ReassemblyConfig
from pcapsmtp.tcp.events import FlowEvent, StreamData, StreamGap
from pcapsmtp.tcp.reassembler import TcpReassembler

sys.path.insert(0, str(Path(__file__).resolve().parent / "tcp"))
from _tcp_builder import Conv  # noqa: E402
import transforms as T  # noqa: E402

N = int(os.environ.get("TCP_PROPERTY_EXAMPLES", "150"))


def _events(segs: Iterable[TcpSegment], config: ReassemblyConfig | None = None) -> tuple[list[FlowEvent], int]:
    """The reassembler's events for ``segs`` and the most segments it held at once."""
    r = TcpReassembler(config or ReassemblyConfig())
    out: list[FlowEvent] = []
    most = 0
    for s in segs:
        out += r.feed(s)
        most = max([most] + [len(f.held) for f in r._flows.values()])
    out += r.finish()
    return out, most


def _gaps(events: list[FlowEvent]) -> list[tuple[str, int, int, int]]:
    return [(e.side.value, e.offset, e.length, e.frame) for e in events if isinstance(e, StreamGap)]


def _data(events: list[FlowEvent], side: Side) -> list[tuple[int, int, int]]:
    return [(e.offset, len(e.data), e.frame) for e in events if isinstance(e, StreamData) and e.side is side]


def test_only_the_bytes_held_nowhere_are_lost_when_both_heads_wait() -> None:
    """Two taps, the client's 300 ms behind; the capture lost the server's 220 to STARTTLS and the
    client's ClientHello. The client's ACK of the 220 (frame 7) and the server's of the ClientHello
    (frame 18) head the hold, each waiting for bytes held nowhere; behind the client's head its QUIT
    acknowledges the server's answer (frame 19), held behind the server's head. The older head went
    first and declared lost every server byte up to the answer's end (934): the verdict read
    plaintext after a 220 (tls-not-started, the client's). Now the 220 (30 bytes) is lost, at the
    server's first segment past it (18), the ClientHello (166) at the answer that acknowledges it,
    and the answer is delivered whole: incomplete, as with the taps in order."""
    name = "release25-skew-behind-220-and-hello-lost.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, 18)
    assert _findings(conv) == [("tcp-gap", "capture", 18), ("tcp-gap", "capture", 19),
                               ("tls-alert", "server", 20)]
    assert conv["tls"]["server_hello_frame"] == 19
    assert conv["tls"]["client_hello_frame"] is None
    events, _ = _events(cuts.load(path).segments)
    assert _gaps(events) == [("server", 156, 30, 18), ("client", 35, 166, 19)]
    assert _data(events, Side.SERVER) == [(0, 34, 14), (34, 122, 16), (186, 904, 19), (1090, 7, 20)]
    # tshark: the client's segments first (its clock behind), its pure ACK in 8 past the lost
    # ClientHello; the server's pure ACK in 18 past the lost 220, acknowledging the ClientHello;
    # the answer in 19, 904 bytes from the 220's end
    assert frames_matching(path, "tcp.analysis.lost_segment") == [8, 18]
    # (tshark decodes no TLS here: the 220 to STARTTLS is lost; a TLS handshake record's header)
    assert frames_matching(path, "tcp.payload[0:3] == 16:03:03") == [19]
    ((seq17, len17),) = tshark_fields(path, "frame.number == 17", "tcp.seq", "tcp.len")
    ((seq18, ack18),) = tshark_fields(path, "frame.number == 18", "tcp.seq", "tcp.ack")
    ((seq19, len19),) = tshark_fields(path, "frame.number == 19", "tcp.seq", "tcp.len")
    ((seq6, len6),) = tshark_fields(path, "frame.number == 6", "tcp.seq", "tcp.len")
    assert int(seq18) - int(seq17) == 30 and int(seq19) == int(seq18)
    assert int(ack18) - (int(seq6) + int(len6)) == 166
    assert int(len19) == 904
    ((ack9,),) = tshark_fields(path, "frame.number == 9", "tcp.ack")
    assert int(ack9) == int(seq19) + 904                # the QUIT acknowledges the answer whole


def test_the_same_capture_with_the_taps_in_order_reads_the_same() -> None:
    """The control: the same conversation on one clock reads incomplete, the holes at the same
    places (the server's pure ACK past the 220, 13; the answer, 14)."""
    name = "release25-in-order-220-and-hello-lost.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, 13)
    assert _findings(conv) == [("tcp-gap", "capture", 13), ("tcp-gap", "capture", 14),
                               ("tls-alert", "server", 17)]
    events, _ = _events(cuts.load(path).segments)
    assert _gaps(events) == [("server", 156, 30, 13), ("client", 35, 166, 14)]
    assert frames_matching(path, "tcp.analysis.lost_segment") == [13, 15]
    assert frames_matching(path, "tcp.payload[0:3] == 16:03:03") == [14]


def test_the_hunt12_cut_declares_only_the_220_and_the_clienthello_lost() -> None:
    """hunt12-skew-client-behind-300-ms-stall-quit-100-ms-alert.pcap without frames 8 and 19 (the
    ClientHello and the 220), the cut of the two-loss sweep (test_late_start_loss.py) that read
    tls-not-started, the client's: the holes are 30 and 166 bytes, not 934, and the answer (21)
    is delivered."""
    cap = cuts.load(cuts.REPO / "captures" / "hunt12-skew-client-behind-300-ms-stall-quit-100-ms-alert.pcap")
    segs = cuts.without(cap, 8, 19)
    events, _ = _events(segs)
    assert _gaps(events) == [("server", 156, 30, 20), ("client", 35, 166, 21)]
    assert (186, 904, 21) in _data(events, Side.SERVER)
    (conv,) = cuts.analyze(segs, cap.name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")


def test_a_wait_outlives_the_segments_that_pass_unheld() -> None:
    """One-byte segments, the client's tap 300 ms behind: the client's QUIT waits for the server's
    answer, which comes in 1100-odd one-byte segments, none held (they wait for nothing). It
    waited 1024 segments of the conversation and declared the answer's last 86 bytes lost; now no
    byte is (a few of the client's segments are held), and the verdict reads as in whole segments:
    the client gave up at once."""
    name = "release25-one-byte-skew-behind-quit-100-ms.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 207)
    assert _findings(conv) == [("tls-alert", "server", 1311)]
    events, most = _events(cuts.load(path).segments)
    assert _gaps(events) == []
    assert most < 300 < ReassemblyConfig().max_held_segments
    # tshark: no segment of the capture is lost; the QUIT (207) comes before the server's answer it
    # acknowledges, and over 1024 frames before that answer's last byte
    assert frames_matching(path, "tcp.analysis.lost_segment") == []
    ((ack207,),) = tshark_fields(path, "frame.number == 207", "tcp.ack")
    last = [int(f) for f, in tshark_fields(path, f"tcp.seq == {int(ack207) - 1} && tcp.len == 1", "frame.number")]
    assert len(last) == 1 and last[0] - 207 > 1024


def test_a_wait_holds_over_a_thousand_one_byte_segments(tmp_path: Path) -> None:
    """hunt12-skew-client-ahead-300-ms-stall-quit-1-2-s-alert.pcap cut in one-byte segments (the
    ordering sweep's resegment(1)): the client's tap 300 ms ahead, the server's first segment waits
    for the client's EHLO and the server's EHLO reply, 220 and answer (1000-odd one-byte segments)
    wait behind it. Past 1024 the client's EHLO and ClientHello were declared lost (incomplete);
    they are now within max_held_segments: no gap, and the server stalled, as in whole segments."""
    cap = T.apply(T.load(CAPTURES / "hunt12-skew-client-ahead-300-ms-stall-quit-1-2-s-alert.pcap"),
                  T.resegment(1, max_bytes=4096))
    path = T.save(cap, tmp_path / "resegment-1.pcap")
    loaded = cuts.load(path)
    events, most = _events(loaded.segments)
    assert _gaps(events) == []
    assert 1024 < most <= ReassemblyConfig().max_held_segments
    (conv,) = cuts.analyze(loaded.segments, "resegment-1.pcap")
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case")) == (
        "aborted", "server", "tls-handshake-failed", "server-silent")
    # tshark: every byte in its own segment, none lost
    assert frames_matching(path, "tcp.len > 1") == []
    assert frames_matching(path, "tcp.analysis.lost_segment") == []


def _flood(n: int, block: int) -> list[TcpSegment]:
    """Two sides each sending one-byte segments that acknowledge bytes of the other never seen, in
    blocks of ``block`` segments of one side then the other, all within the causal window: every
    segment waits, and once the bound is reached every one makes the oldest head go."""
    c = Conv()
    segs = c.handshake()
    ci = si = 0
    while len(segs) < n:
        for _ in range(block):
            segs.append(c.s(1 + si, b"y", ack=10**6 + si))
            si += 1
        for _ in range(block):
            segs.append(c.c(1 + ci, b"x", ack=10**6 + ci))
            ci += 1
    for i, s in enumerate(segs):
        s.ts_ns = 10**12 + i * 1000
    return segs


def _run(segs: list[TcpSegment], config: ReassemblyConfig) -> tuple[float, int, int]:
    """Seconds, peak traced memory and the most segments held, for ``segs`` fed and finished."""
    r = TcpReassembler(config)
    tracemalloc.start()
    t = time.perf_counter()
    most = 0
    try:
        for s in segs:
            r.feed(s)
            for f in r._flows.values():
                most = max(most, len(f.held))
        r.finish()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return time.perf_counter() - t, peak, most


def test_a_flood_of_tiny_held_segments_runs_in_linear_time_and_bounded_memory() -> None:
    """The hold's bound is what keeps its cost: a segment that comes while segments wait costs
    O(segments held). A flood of one-byte segments of both sides that each wait (bound 256 here,
    blocks of 200: every segment scans a block) holds no more than the bound, in memory that does
    not grow with the flood, and in time that grows with it linearly (4x the segments, well under
    8x the time)."""
    config = ReassemblyConfig(max_held_segments=256)
    small, big = _flood(4000, 200), _flood(16000, 200)
    t_small, peak_small, most_small = min(_run(small, config) for _ in range(2))
    t_big, peak_big, most_big = _run(big, config)
    assert most_small == most_big == 256          # (the one past it releases the oldest head)
    assert peak_big < 1.5 * peak_small + (1 << 20), (peak_small, peak_big)
    assert t_big < 4 * t_small * 2.0 + 0.5, (t_small, t_big)


def test_the_default_bound_holds_a_flood_to_max_held_segments() -> None:
    """With the default bound, a flood of 20 000 one-byte segments of one side that each wait for
    bytes of the other never seen holds no more than max_held_segments at once (the one past it
    releases the oldest head), in memory bounded by it."""
    config = ReassemblyConfig()
    c = Conv()
    segs = c.handshake() + [c.c(1 + i, b"x", ack=101 + i) for i in range(20_000)]
    for i, s in enumerate(segs):
        s.ts_ns = 10**12 + i * 1000
    _, peak, most = _run(segs, config)
    assert most == config.max_held_segments
    assert peak < 8 << 20, peak


@st.composite
def _exchange(draw: st.DrawFn) -> tuple[bytes, bytes, list[TcpSegment]]:
    """A dialogue of messages, alternately the client's and the server's, each cut in segments
    acknowledging what the sender had of the other side when it sent them; the two directions
    interleaved in any order that keeps each one's (two taps merged, however far apart within the
    causal window): the capture order."""
    c = Conv(cisn=draw(st.integers(0, 2**32 - 1)), sisn=draw(st.integers(0, 2**32 - 1)))
    hs = c.handshake()
    sent = {True: 0, False: 0}           # bytes sent so far by the client (True) and the server
    dirs: dict[bool, list[TcpSegment]] = {True: [], False: []}
    client = bytearray()
    server = bytearray()
    for k in range(draw(st.integers(1, 8))):
        side = k % 2 == 1               # the server speaks first
        msg = draw(st.binary(min_size=1, max_size=300))
        pos = 0
        while pos < len(msg):
            n = draw(st.integers(1, max(1, min(60, len(msg) - pos))))
            chunk = msg[pos:pos + n]
            make = c.c if side else c.s
            dirs[side].append(make(1 + sent[side] + pos, chunk, ack=1 + sent[not side]))
            pos += n
        sent[side] += len(msg)
        (client if side else server).extend(msg)
    order = draw(st.lists(st.booleans(), min_size=len(dirs[True]) + len(dirs[False]),
                          max_size=len(dirs[True]) + len(dirs[False])))
    merged: list[TcpSegment] = []
    it = {True: iter(dirs[True]), False: iter(dirs[False])}
    left = {True: len(dirs[True]), False: len(dirs[False])}
    for pick in order:
        if not left[pick]:
            pick = not pick
        merged.append(next(it[pick]))
        left[pick] -= 1
    for i, s in enumerate(hs + merged):
        s.frame = i + 1
        s.ts_ns = 10**12 + i * 1_000_000       # within the window: 1 ms apart
    return bytes(client), bytes(server), hs + merged


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_exchange())
def test_every_byte_captured_is_delivered_whatever_the_interleaving(ex: tuple[bytes, bytes, list[TcpSegment]]) -> None:
    """Whenever every byte was captured, the reassembler delivers each side's bytes exactly, in
    order and without a gap, however the two directions interleave within the window."""
    client, server, segs = ex
    events, _ = _events(segs)
    assert _gaps(events) == []
    for side, want in ((Side.CLIENT, client), (Side.SERVER, server)):
        got = b"".join(e.data for e in events if isinstance(e, StreamData) and e.side is side)
        assert got == want
