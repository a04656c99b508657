"""The captures of captures/scenarios_ackhole.py: a hole proven by the sender's own later sequence
number (a pure ACK, a reset), its last bytes with nothing after them and nothing of the other side
acknowledging them. The verdict is not the server's silence: the server answered, the capture does
not hold what (``incomplete``); the controls (a keep-alive, a window probe, data overtaken by its
side's own pure ACK or reset) lose nothing.

Cross-checked against tshark: each gap proven by a segment of the side itself (not a reset) is
reported at the frame tshark flags ``tcp.analysis.lost_segment`` ("previous segment not
captured"), and tshark flags nothing else of that side. Deliberate differences:

- tshark does not look at resets (packet-tcp.c: "RST packets are not checked for this"): the gap
  a reset proves is at the reset's frame, which tshark does not flag;
- tshark flags a segment past the next byte whatever comes after it; data of the side sent before
  it and captured right after (a direction reordered on the way) fills what it pointed past here,
  and there is no gap (tshark then calls the data a "(suspected) spurious retransmission": the
  other side's ACK had covered it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.capture.pcapfile import iter_segments
from pcapsmtp.engine.analyzer import analyze_path
from pcapsmtp.model import Side
from pcapsmtp.tcp.events import StreamGap
from pcapsmtp.tcp.reassembler import TcpReassembler
from tsharkfilter import frames_matching

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
FROM_SERVER = "tcp.srcport == 25"

#: capture -> (outcome, caused_by, reason, reply code, tcp-gap frames)
VERDICTS: dict[str, tuple[str, str, str, int | None, list[int]]] = {
    "lost-segment-ready-one-direction.pcap": ("incomplete", "unknown", "incomplete", None, [6]),
    "lost-segment-ready-acks-lost.pcap": ("incomplete", "unknown", "incomplete", None, [10, 12]),
    "lost-segment-ready-blackholed.pcap": ("incomplete", "unknown", "incomplete", None, [13]),
    "lost-segment-ready-blackholed-cut.pcap": ("incomplete", "unknown", "incomplete", None, [13]),
    "lost-segment-ehlo-tail-lost.pcap": ("incomplete", "unknown", "incomplete", None, [6, 9]),
    "lost-segment-reset-past.pcap": ("incomplete", "unknown", "incomplete", None, [12]),
    "lost-segment-reset-past-acked-beyond.pcap": ("incomplete", "unknown", "incomplete", None, [9]),
    "lost-segment-reset-past-acks-quit.pcap": ("incomplete", "unknown", "incomplete", None, [8]),
    "lost-segment-keepalive.pcap": ("tls", "none", "tls-established", 220, []),
    "lost-segment-window-probe.pcap": ("tls", "none", "tls-established", 220, []),
    "lost-segment-reordered.pcap": ("tls", "none", "tls-established", 220, []),
    "lost-segment-reset-overtakes.pcap": ("aborted", "server", "starttls-refused", 454, []),
}

#: a reset whose sequence number lies short of what the client's QUIT acknowledged (the
#: server's gaps proven by the client's acknowledgement or the reset, not by lost_segment)
STALE_RESET = ["lost-segment-reset-past-acked-beyond.pcap", "lost-segment-reset-past-acks-quit.pcap"]
#: captures whose server gaps tshark flags the same way
CROSS = sorted(set(VERDICTS) - set(STALE_RESET))
#: frames tshark flags lost_segment where nothing is lost (see the module docstring)
TSHARK_ONLY = {"lost-segment-reordered.pcap": 1}


def _conv(name: str) -> dict[str, Any]:
    (conv,) = analyze_path(str(CAPTURES / name))
    return conv


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_verdict(name: str) -> None:
    outcome, by, reason, code, gaps = VERDICTS[name]
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == (outcome, by, reason)
    assert conv["starttls"]["reply_code"] == code
    assert sorted(f["frame"] for f in conv["findings"] if f["code"] == "tcp-gap") == gaps
    assert not any(f["code"] == "no-answer" for f in conv["findings"])


def _server_gaps(path: Path) -> tuple[list[StreamGap], dict[int, Any]]:
    segs = list(iter_segments(path))
    r = TcpReassembler()
    ev = [e for s in segs for e in r.feed(s)] + r.finish()
    return [e for e in ev if isinstance(e, StreamGap) and e.side is Side.SERVER], {s.frame: s for s in segs}


@pytest.mark.parametrize("name", CROSS)
def test_server_gaps_at_tsharks_lost_segment(name: str) -> None:
    path = CAPTURES / name
    gaps, by_frame = _server_gaps(path)
    ours = {g.frame for g in gaps if not by_frame[g.frame].flags & 0x04}
    resets = {g.frame for g in gaps if by_frame[g.frame].flags & 0x04}
    theirs = set(frames_matching(path, f"tcp.analysis.lost_segment && {FROM_SERVER}"))
    assert ours <= theirs
    assert len(theirs - ours) == TSHARK_ONLY.get(name, 0), (sorted(ours), sorted(theirs))
    # a reset's gap: where tshark sees the reset, not lost_segment
    assert resets == (set(frames_matching(path, f"tcp.flags.reset == 1 && {FROM_SERVER}"))
                      if name == "lost-segment-reset-past.pcap" else set())


def test_a_hole_the_other_sides_fin_acknowledges_is_declared_at_that_fin() -> None:
    """hang-starttls-answer-lost.pcap: the client's FIN acknowledges the server's lost answer (53
    bytes past its captured data) before any later segment of the server: the hole is declared at
    that FIN, as at a reset (the close does not overtake bytes it acknowledges), one frame before
    the server's pure ACK that tshark flags ``lost_segment``."""
    path = CAPTURES / "hang-starttls-answer-lost.pcap"
    gaps, _ = _server_gaps(path)
    (fin,) = frames_matching(path, "tcp.flags.fin == 1 && tcp.dstport == 25")
    (theirs,) = frames_matching(path, f"tcp.analysis.lost_segment && {FROM_SERVER}")
    assert [g.frame for g in gaps] == [fin] and fin < theirs
    assert [g.length for g in gaps] == [53]


def test_reordered_data_is_what_tshark_calls_a_retransmission() -> None:
    """The frame tshark flags in lost-segment-reordered.pcap is the server's ACK that overtook its
    220; the 220 right after it is tshark's (spurious) retransmission, and is read here."""
    path = CAPTURES / "lost-segment-reordered.pcap"
    (flagged,) = frames_matching(path, f"tcp.analysis.lost_segment && {FROM_SERVER}")
    (ooo,) = frames_matching(path, f"tcp.analysis.spurious_retransmission && {FROM_SERVER}")
    assert ooo > flagged
    assert _conv("lost-segment-reordered.pcap")["starttls"]["reply_code"] == 220
    assert _server_gaps(path)[0] == []


@pytest.mark.parametrize("name", STALE_RESET)
def test_a_reset_short_of_the_acknowledgement(name: str) -> None:
    """The client's QUIT acknowledges the whole EHLO reply the capture lost (tshark: "ACKed
    segment that wasn't captured" at the QUIT), the server's reset that follows lies at the end
    of the reply's first segment. Where the reset acknowledges the client's bytes only up to the
    EHLO, the QUIT comes after it in causal order (it acknowledges bytes past the reset): it is
    not read, and the one gap is the bytes the reset proves, at the reset. Where the reset
    acknowledges the QUIT too, it came after the QUIT: the QUIT is read, and its acknowledgement
    proves the whole reply lost, at tshark's frame."""
    path = CAPTURES / name
    gaps, by_frame = _server_gaps(path)
    (acked,) = frames_matching(path, "tcp.analysis.ack_lost_segment")
    (rst,) = frames_matching(path, f"tcp.flags.reset == 1 && {FROM_SERVER}")
    (quit_,) = [f for f, s in by_frame.items() if s.payload == b"QUIT\r\n"]
    assert acked == quit_ < rst
    head = len(b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n")
    tail = len(b"250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
    if name.endswith("acked-beyond.pcap"):
        assert [(g.frame, g.length) for g in gaps] == [(rst, head)]
    else:
        assert [(g.frame, g.length) for g in gaps] == [(acked, head + tail)]
