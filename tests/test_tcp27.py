"""A reset in the receiver's window answered only by a pure ACK of the receiver: dropped only once
the conversation goes on (captures/scenarios_tcp27.py).

A pure ACK of the receiver after a reset past its side's next byte, acknowledging nothing new, is the
challenge ACK of RFC 5961 3.2 (the reset dropped) or an ACK the receiver sent before the reset reached
it (a window update that crossed it: the reset taken); the TCP layer reads no window field and cannot
tell them. It read both as the drop, so a real reset followed by a crossing window update
"disappeared": no ``tcp-gap`` for the side's bytes before it, the conversation not ended by it. Now
the drop holds only when bytes of either side come after it; a FIN, a reset, or the end of the
capture first, and the reset reads as a reset with nothing after it.

Each capture is checked for its verdict, evidence frame, findings and counters, the frames named
cross-checked with tshark: the reset (its sequence number 1000 past its side's next byte, the end of
that side's last bytes before it), the receiver's pure ACK right after it (its acknowledgement number
its previous ACK's; tshark ``tcp.analysis.window_update`` when the window changed,
``tcp.analysis.duplicate_ack`` when not) and what comes after it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from tsharkfilter import tshark_fields as _tshark
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
from pcapsmtp.model import Side, TcpFlags, TcpSegment
from pcapsmtp.tcp.events import FlowClosed
from pcapsmtp.tcp.reassembler import ReassemblyConfig, TcpReassembler

sys.path.insert(0, str(CAPTURES))
sys.path.insert(0, str(Path(__file__).resolve().parent / "tcp"))
from _stream_events import events  # noqa: E402
from generate import render  # noqa: E402
from scenarios_tcp27 import late_capture  # noqa: E402

_MOD = 1 << 32




def _analyze(name: str, folder: Path = CAPTURES) -> tuple[dict, dict]:
    res = analyze_file(str(folder / name), AnalysisConfig())
    assert res.error is None
    (conv,) = res.conversations
    return conv, res.summary["reassembly"]


def _reset_and_answer(path: Path) -> tuple[int, str, int, str]:
    """tshark: the one reset's frame and source port, the receiver's pure ACK right after it (its
    frame, checked to acknowledge what the receiver's last segment before the reset did) and the
    expert flag tshark gives it; the reset lies 1000 past the end of its side's last bytes."""
    ((rst, seq, sport, dport),) = _tshark(path, "tcp.flags.reset == 1", "frame.number", "tcp.seq_raw",
                                          "tcp.srcport", "tcp.dstport")
    rst_i = int(rst)
    seq_end, length = _tshark(path, f"frame.number < {rst} && tcp.srcport == {sport} && tcp.len > 0",
                              "tcp.seq_raw", "tcp.len")[-1]
    assert (int(seq) - int(seq_end) - int(length)) % _MOD == 1000
    ((prev_ack, prev_win),) = _tshark(path, f"frame.number < {rst} && tcp.srcport == {dport}", "tcp.ack_raw",
                                      "tcp.window_size_value")[-1:]
    ((ack_frame, ack, win, flags, n, update, dup_of),) = _tshark(
        path, f"frame.number == {rst_i + 1}", "frame.number", "tcp.ack_raw", "tcp.window_size_value",
        "tcp.flags", "tcp.len", "tcp.analysis.window_update", "tcp.analysis.duplicate_ack_frame")
    assert (flags, n, ack) == ("0x0010", "0", prev_ack) and _tshark(
        path, f"frame.number == {ack_frame}", "tcp.srcport") == [(dport,)]
    kind = ("window-update" if update == "1" and win != prev_win and not dup_of
            else "duplicate-ack" if dup_of and int(dup_of) < rst_i and win == prev_win else "?")
    return rst_i, sport, int(ack_frame), kind


@pytest.mark.parametrize("name, port, direction", [
    ("tcp27-server-reset-window-update-crossed.pcap", "25", "server"),
    ("tcp27-client-reset-window-update-crossed.pcap", "49702", "client"),
])
def test_a_window_update_that_crossed_a_reset_does_not_make_it_disappear(name: str, port: str,
                                                                         direction: str) -> None:
    """The side's reset 1000 bytes past its next byte, the receiver's window update after it
    (sent before the reset reached it) and nothing more: the reset ends the conversation and its
    side's 1000 bytes are missing (``tcp-gap`` at the reset), as with nothing after the reset. It
    read ``incomplete`` with no finding, the evidence the last reply before the reset."""
    path = CAPTURES / name
    conv, stats = _analyze(name)
    rst, sport, update, kind = _reset_and_answer(path)
    assert (sport, kind) == (port, "window-update")
    assert _tshark(path, f"frame.number > {update}", "frame.number") == []
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case")) == (
        "incomplete", "unknown", "incomplete", None)
    assert conv["evidence_frame"] == rst
    assert _findings(conv) == [("tcp-gap", "capture", rst)]
    assert f"1000 byte(s) of the {direction} direction" in conv["findings"][0]["message"]
    assert stats["ignored_resets"] == 0


def test_a_challenge_ack_with_nothing_after_it_reads_as_the_crossed_window_update() -> None:
    """The client's true challenge ACK (its window unchanged: tshark's duplicate ACK) and nothing
    after it: the same fields as the window update but for the window, so the same reading (it
    read the reset dropped, ``incomplete`` at the EHLO reply, no finding); the control without
    any answer reads so too (``reset25-in-window-server-reset-then-nothing.pcap``)."""
    name = "tcp27-server-reset-challenge-ack-then-nothing.pcap"
    path = CAPTURES / name
    conv, stats = _analyze(name)
    rst, sport, challenge, kind = _reset_and_answer(path)
    assert (sport, kind) == ("25", "duplicate-ack")
    assert _tshark(path, f"frame.number > {challenge}", "frame.number") == []
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case"), conv["evidence_frame"]) == (
        "incomplete", "unknown", "incomplete", None, rst)
    assert _findings(conv) == [("tcp-gap", "capture", rst)]
    assert stats["ignored_resets"] == 0
    control, _ = _analyze("reset25-in-window-server-reset-then-nothing.pcap")
    assert (control["outcome"], control["caused_by"], control["reason"], [f[0] for f in _findings(control)]) == (
        conv["outcome"], conv["caused_by"], conv["reason"], ["tcp-gap"])


def test_a_challenge_ack_followed_by_the_receivers_fin_drops_the_reset() -> None:
    """The challenge ACK, then only the client's FIN 2 s later, no bytes: a stack that took the reset
    sends nothing more, so the client's FIN shows its connection still open and the reset dropped:
    the client left before any mail (``aborted``, ``no-mail-transaction``), no gap (the review of
    the rule's first form, which read it taken: ``incomplete``, a false ``tcp-gap`` at the reset)."""
    name = "tcp27-server-reset-challenge-ack-then-client-fin.pcap"
    path = CAPTURES / name
    conv, stats = _analyze(name)
    rst, _, challenge, kind = _reset_and_answer(path)
    assert kind == "duplicate-ack"
    ((fin, flags, n, t_fin),) = _tshark(path, f"frame.number > {challenge}", "frame.number", "tcp.flags", "tcp.len",
                                        "frame.time_epoch")
    ((t_rst,),) = _tshark(path, f"frame.number == {rst}", "frame.time_epoch")
    assert (int(fin), flags, n) == (challenge + 1, "0x0011", "0") and float(t_fin) - float(t_rst) > 1.9
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("aborted", "none", "no-mail-transaction")
    assert _findings(conv) == []
    assert (stats["ignored_resets"], stats["after_close_segments"]) == (1, 0)


def test_a_challenge_ack_with_the_conversation_going_on_later_still_drops_the_reset(tmp_path: Path) -> None:
    """The control (``late_capture``, not shipped): the challenge ACK, then 3 s later (past the
    2 s causal window) STARTTLS and the session: the conversation went on, the reset was dropped,
    however long after (``tls``, no finding, the reset in ``ignored_resets``)."""
    cap = late_capture()
    path = tmp_path / cap.name
    path.write_bytes(render(cap)[0])
    conv, stats = _analyze(cap.name, tmp_path)
    rst, _, challenge, kind = _reset_and_answer(path)
    assert kind == "duplicate-ack"
    ((nxt, t_next),) = _tshark(path, f"frame.number > {challenge} && tcp.len > 0", "frame.number",
                               "frame.time_epoch")[:1]
    ((t_challenge,),) = _tshark(path, f"frame.number == {challenge}", "frame.time_epoch")
    assert int(nxt) == challenge + 1 and float(t_next) - float(t_challenge) > 2.9
    ((finished,),) = _tshark(path, "tls.handshake.type == 16", "frame.number", analysis=False)[:1]
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case"), conv["evidence_frame"]) == (
        "tls", "none", "tls-established", None, int(finished))
    assert _findings(conv) == []
    assert stats["ignored_resets"] == 1


# -- the TCP layer alone (sans-I/O: hand-built segments) ---------------------------------------------------

_CISN, _SISN = 1000, 5000
_BANNER = b"220 mx ESMTP\r\n"       # server bytes 0..14
_EHLO = b"EHLO c\r\n"               # client bytes 0..8
_NOOP = b"NOOP\r\n"


def _segments(after: str) -> list[TcpSegment]:
    """Handshake, banner, EHLO and the server's ACK of it; the server's reset (its TTL) 1000 bytes
    past its next byte (frame 7), the client's pure ACK of the banner alone (frame 8, what it had:
    a challenge ACK, or an ACK that crossed the reset), then ``after``: "" nothing, "noop" the
    client's NOOP, "fin" the client's FIN, "late-noop" the NOOP 5 s later, "keepalive" the
    client's keep-alive 60 s later, "rst" the client's reset, "server-fin" the server's FIN at the
    reset's sequence number, "server-rst-exact" the server's reset at its next byte in the capture
    (RFC 5961 3.2's answer to the challenge ACK)."""
    segs: list[TcpSegment] = []
    ts = 1_000_000_000_000

    def add(client: bool, rel: int, flags: int, data: bytes = b"", ack: int | None = None,
            gap_ns: int = 1_000_000) -> None:
        nonlocal ts
        ts += gap_ns
        isn, peer = (_CISN, _SISN) if client else (_SISN, _CISN)
        src, sp, dst, dp = ("10.0.0.1", 40000, "10.0.0.2", 25) if client else ("10.0.0.2", 25, "10.0.0.1", 40000)
        if ack is not None:
            flags |= TcpFlags.ACK
        segs.append(TcpSegment(len(segs) + 1, ts, src, sp, dst, dp, (isn + rel) & 0xFFFFFFFF,
                               0 if ack is None else (peer + ack) & 0xFFFFFFFF, int(flags), data, 0,
                               ttl=64 if client else 52))

    b, e = len(_BANNER), len(_EHLO)
    add(True, 0, TcpFlags.SYN)                                      # 1
    add(False, 0, TcpFlags.SYN, ack=1)                              # 2
    add(True, 1, 0, ack=1)                                          # 3
    add(False, 1, TcpFlags.PSH, _BANNER, ack=1)                     # 4
    add(True, 1, TcpFlags.PSH, _EHLO, ack=1 + b)                    # 5
    add(False, 1 + b, 0, ack=1 + e)                                 # 6
    add(False, 1 + b + 1000, TcpFlags.RST, ack=1 + e)               # 7: 1000 bytes past the server's next
    add(True, 1 + e, 0, ack=1 + b, gap_ns=50_000)                   # 8: the client's pure ACK
    if after == "noop":
        add(True, 1 + e, TcpFlags.PSH, _NOOP, ack=1 + b)            # 9
    elif after == "late-noop":
        add(True, 1 + e, TcpFlags.PSH, _NOOP, ack=1 + b, gap_ns=5 * 10**9)
    elif after == "fin":
        add(True, 1 + e, TcpFlags.FIN, ack=1 + b)                   # 9
    elif after == "keepalive":
        add(True, e, 0, ack=1 + b, gap_ns=60 * 10**9)               # 9: a keep-alive (its next byte - 1)
    elif after == "rst":
        add(True, 1 + e, TcpFlags.RST, ack=1 + b)                   # 9: the client's own reset
    elif after == "server-fin":
        add(False, 1 + b + 1000, TcpFlags.FIN, ack=1 + e)           # 9: at the reset's sequence number
    elif after == "server-rst-exact":
        add(False, 1 + b, TcpFlags.RST, ack=1 + e)                  # 9: at the challenge ACK's number
    return segs


def _reassemble(after: str) -> tuple[TcpReassembler, list[tuple[str, Side, int, int, int]], str]:
    r = TcpReassembler(ReassemblyConfig(reset_watch_ns=0))
    out = []
    for s in _segments(after):
        out.extend(r.feed(s))
    out.extend(r.finish())
    (closed,) = [e for e in out if isinstance(e, FlowClosed)]
    return r, events(out), closed.reason


@pytest.mark.parametrize("after", ["", "server-fin"])
def test_the_tcp_layer_takes_a_reset_only_a_pure_ack_answered_when_the_conversation_ends(after: str) -> None:
    """Nothing after the receiver's pure ACK, or only a FIN of the reset's side at the reset's
    sequence number: the reset ends the server's stream at frame 7 after a 1000-byte gap there,
    the conversation closed by it (the FIN after the close)."""
    r, ev, reason = _reassemble(after)
    server = [x for x in ev if x[1] is Side.SERVER]
    assert server == [("data", Side.SERVER, 0, len(_BANNER), 4), ("gap", Side.SERVER, len(_BANNER), 1000, 7),
                      ("end", Side.SERVER, 0, 1, 7)]
    assert reason == "closed"
    assert (r.stats.ignored_resets, r.stats.after_close_segments) == (0, 1 if after else 0)


@pytest.mark.parametrize(("after", "closed_by"), [("noop", "end"), ("late-noop", "end"), ("fin", "end"),
                                                  ("keepalive", "end"), ("rst", "closed")])
def test_the_tcp_layer_drops_a_reset_only_a_pure_ack_answered_when_the_conversation_goes_on(
        after: str, closed_by: str) -> None:
    """A later segment of the receiver after its pure ACK: its NOOP (at once, or 5 s later: past
    the causal window), its FIN, its keep-alive 60 s later, its own reset (a stack that took the
    reset sends none of them): the reset was dropped, no gap, the server's stream not ended by it."""
    r, ev, reason = _reassemble(after)
    if after.endswith("noop"):
        assert ("data", Side.CLIENT, len(_EHLO), len(_NOOP), 9) in ev
    assert [x for x in ev if x[1] is Side.SERVER and x[0] != "end"] == [("data", Side.SERVER, 0, len(_BANNER), 4)]
    assert not any(x[0] == "end" and x[3] and x[1] is Side.SERVER for x in ev)
    assert reason == closed_by
    assert (r.stats.ignored_resets, r.stats.after_close_segments) == (1, 0)


def test_the_reset_sides_segment_before_the_reset_drops_it() -> None:
    """RFC 5961 3.2 to the end: the server answers the challenge ACK with a reset at its next byte
    (the ACK's number, 1000 bytes before its first reset): the first was dropped, the second ends
    the server's stream there, no gap (the rule's first form took the first: a false 1000-byte gap)."""
    r, ev, reason = _reassemble("server-rst-exact")
    assert [x for x in ev if x[1] is Side.SERVER] == [("data", Side.SERVER, 0, len(_BANNER), 4),
                                                      ("end", Side.SERVER, 0, 1, 9)]
    assert reason == "closed"
    assert r.stats.ignored_resets == 1
