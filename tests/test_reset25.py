"""Resets in the receiver's window that its stack answers with a challenge ACK and drops (RFC 5961
3.2; captures/scenarios_reset25.py).

A reset past its side's next byte (under 2^24 past it) was taken for the side's bytes sent and lost
(``HalfStream.reset_past``): a ``tcp-gap`` at the reset, and the conversation ended there. A pure ACK
of the receiver after it that acknowledges nothing new of that side, before the reset's sequence
number, is the challenge ACK a stack that follows RFC 5961 sends for a reset in its window but not
at its next byte, which it drops: the conversation goes on, and the reset counts in
``ignored_resets``. So do the side's bytes at its next byte that acknowledge more than the reset
did (sent after it). Without either the reset reads as before. (The challenge ACK alone, which a
window update that crossed the reset is not told from, drops it only once the conversation goes
on: here the session does; tests/test_tcp27.py has it end there.)

Each capture is checked for its verdict, evidence frame, findings and counter; the frames are
cross-checked with tshark: the reset (its sequence number against the side's next segment's, its
sequence analysis off), the challenge ACK (``tcp.analysis.duplicate_ack`` of the receiver's last
ACK, its analysis on) and the side's next bytes at its real next byte, which tshark, having taken the
reset's sequence number for the next byte, flags ``tcp.analysis.retransmission`` (or
``tcp.analysis.out_of_order``).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from tsharkfilter import tshark_fields as _tshark
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file




def _analyze(name: str) -> tuple[dict, dict]:
    res = analyze_file(str(CAPTURES / name), AnalysisConfig())
    assert res.error is None
    (conv,) = res.conversations
    return conv, res.summary["reassembly"]


def _reset(path: Path) -> tuple[int, int, str, str]:
    """tshark: the one reset's frame, how far its sequence number lies past its side's next byte
    (its side's next segment's sequence number), its source and destination ports."""
    ((frame, seq, sport, dport),) = _tshark(path, "tcp.flags.reset == 1", "frame.number", "tcp.seq_raw",
                                            "tcp.srcport", "tcp.dstport", analysis=False)
    after = _tshark(path, f"frame.number > {frame} && tcp.srcport == {sport}", "tcp.seq_raw", analysis=False)
    return int(frame), (int(seq) - int(after[0][0])) % (1 << 32), sport, dport


@pytest.mark.parametrize("name, side", [
    ("reset25-in-window-server-reset-challenge-ack-then-tls.pcap", "server"),
    ("reset25-in-window-client-reset-challenge-ack-then-tls.pcap", "client"),
])
def test_a_reset_in_the_window_answered_by_a_challenge_ack_is_dropped(name: str, side: str) -> None:
    """The reset 1000 bytes past its side's next byte, the receiver's challenge ACK 0.1 ms later,
    the side's next bytes at its real next byte: the session goes on to TLS (it read
    ``incomplete``, a 1000-byte ``tcp-gap`` at the reset)."""
    path = CAPTURES / name
    conv, stats = _analyze(name)
    rst, off, sport, dport = _reset(path)
    assert off == 1000
    assert (sport == "25") == (side == "server")
    # the challenge ACK: the receiver's next segment, a pure ACK, a duplicate of its last ACK
    ((challenge, dup_of),) = _tshark(path, f"frame.number > {rst} && tcp.srcport == {dport}", "frame.number",
                                     "tcp.analysis.duplicate_ack_frame")[:1]
    assert int(challenge) == rst + 1 and int(dup_of) < rst
    assert _tshark(path, f"frame.number == {challenge}", "tcp.len", "tcp.flags.ack") == [("0", "1")]
    # the side's next bytes come at its real next byte, behind the reset's: tshark flags them (a
    # retransmission, or out of order when they come right after the reset)
    sent = _tshark(path, f"frame.number > {rst} && tcp.srcport == {sport} && tcp.len > 0", "frame.number",
                   "tcp.analysis.retransmission", "tcp.analysis.out_of_order")
    assert sent and "1" in sent[0][1:]
    ((finished,),) = _tshark(path, "tls.handshake.type == 16", "frame.number", analysis=False)[:1]
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case")) == (
        "tls", "none", "tls-established", None)
    assert conv["evidence_frame"] == int(finished) > int(challenge)
    assert conv["tls"]["established"] is True
    assert _findings(conv) == []
    assert stats["ignored_resets"] == 1


def test_a_reset_in_the_window_with_nothing_after_it_still_reads_the_bytes_lost() -> None:
    """The control: the same server reset and nothing after it, no challenge ACK: the reset took
    effect (or the receiver's answer is not in the capture), the server's 1000 bytes before it
    are missing: ``incomplete``, ``tcp-gap`` at the reset, as before."""
    name = "reset25-in-window-server-reset-then-nothing.pcap"
    path = CAPTURES / name
    conv, stats = _analyze(name)
    ((rst, seq),) = _tshark(path, "tcp.flags.reset == 1", "frame.number", "tcp.seq_raw", analysis=False)
    ((reply_seq, reply_len),) = _tshark(path, "smtp.response.code == 250", "tcp.seq_raw", "tcp.len", analysis=False)
    assert int(seq) - int(reply_seq) - int(reply_len) == 1000
    assert _tshark(path, f"frame.number > {rst}", "frame.number") == []
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case")) == (
        "incomplete", "unknown", "incomplete", None)
    assert conv["evidence_frame"] == int(rst)
    assert _findings(conv) == [("tcp-gap", "capture", int(rst))]
    assert "1000 byte(s) of the server direction" in conv["findings"][0]["message"]
    assert stats["ignored_resets"] == 0


def test_a_reset_in_the_window_without_a_challenge_ack_is_dropped_by_the_sides_next_bytes() -> None:
    """No challenge ACK (rate-limited): the server's 220 at its real next byte, acknowledging the
    client's STARTTLS that the reset did not acknowledge, was sent after the reset, so the client
    had not received those bytes when the reset came: the reset was not at its next byte, and the
    session goes on to TLS."""
    name = "reset25-in-window-server-reset-no-challenge-then-tls.pcap"
    path = CAPTURES / name
    conv, stats = _analyze(name)
    rst, off, sport, dport = _reset(path)
    assert (off, sport) == (1000, "25")
    ((rst_ack,),) = _tshark(path, f"frame.number == {rst}", "tcp.ack_raw", analysis=False)
    assert _tshark(path, f"frame.number > {rst} && tcp.analysis.duplicate_ack", "frame.number") == []
    ((reply, reply_seq, reply_ack),) = _tshark(path, "smtp.response.code == 220 && frame.number > 5", "frame.number",
                                               "tcp.seq_raw", "tcp.ack_raw", analysis=False)
    assert int(reply) > rst and (int(reply_ack) - int(rst_ack)) % (1 << 32) == len("STARTTLS\r\n")
    ((next_seq,),) = _tshark(path, f"frame.number > {rst} && tcp.srcport == 25", "tcp.seq_raw", analysis=False)[:1]
    assert reply_seq == next_seq
    ((finished,),) = _tshark(path, "tls.handshake.type == 16", "frame.number", analysis=False)[:1]
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case"), conv["evidence_frame"]) == (
        "tls", "none", "tls-established", None, int(finished))
    assert _findings(conv) == []
    assert stats["ignored_resets"] == 1
