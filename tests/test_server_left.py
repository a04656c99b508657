"""A refusal of STARTTLS followed by the server's own end of the connection
(captures/scenarios_serverleft.py, and the two reordered captures where the reset overtook the
refusal): the client had no next step, so the verdict is the server's refusal
(``aborted``/``server``/``starttls-refused``), not a capture that ends "before the client's next
step". A hole in the server's direction between its reply and its end leaves it ``incomplete``. The
refusal alone ruled TLS out, so a reset after it that the server's stack did not send (its TTL
outside the server's) blames no one: still the server's refusal, evidence the reply, no case (the
server did not close), and a ``reset-forged`` finding at the reset.

Cross-checked against tshark: the reply's frame carries the code in the server's payload, the
server's RST or FIN comes right after it (or overtook it, in the reordered control), and tshark
sees the control's hole too (``tcp.analysis.lost_segment`` at the FIN), and the forged reset's TTL
(``ip.ttl``) against the server's other segments.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching, tshark_fields

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
SERVER = "tcp.srcport == 25"

#: capture -> (outcome, caused_by, reason, reply code, the reply's frame, message ending); the
#: evidence frame is the reply's, or the forged reset's
VERDICTS: dict[str, tuple[str, str, str, int, int, str]] = {
    "starttls-421-server-resets.pcap": ("aborted", "server", "starttls-refused", 421, 12,
                                        "421 4.3.2 Service shutting down; then it reset the connection"),
    "starttls-454-server-closes.pcap": ("aborted", "server", "starttls-refused", 454, 12,
                                        "local problem; then it closed the connection"),
    "starttls-454-server-closes-after-hole.pcap": ("incomplete", "unknown", "incomplete", 454, 12,
                                                   "the capture ends before the client's next step"),
    "lost-segment-reset-overtakes.pcap": ("aborted", "server", "starttls-refused", 454, 12,
                                          "local problem; then it reset the connection"),
    "starttls-421-forged-reset.pcap": ("aborted", "server", "starttls-refused", 421, 12,
                                       "Service shutting down; then a reset with the server's address that "
                                       "the server's stack did not send ended the connection (frame 14: its "
                                       "TTL 250 is not the TTL 52 of the server's own segments)"),
    "starttls-454-server-closes-late.pcap": ("aborted", "server", "starttls-refused", 454, 12,
                                             "local problem; then it closed the connection"),
    "starttls-421-server-closes-client-quits.pcap": ("aborted", "server", "starttls-refused", 421, 12,
                                                     "Service shutting down; then it closed the connection"),
}
#: the frame of the server's own end (its RST or FIN), where the ``server-closed`` finding is
SERVER_END = {"starttls-421-server-resets.pcap": 14, "starttls-454-server-closes.pcap": 14,
              "lost-segment-reset-overtakes.pcap": 11, "starttls-454-server-closes-after-hole.pcap": 14,
              "starttls-454-server-closes-late.pcap": 14, "starttls-421-server-closes-client-quits.pcap": 14}
#: the server closed 300 s after its refusal (its idle timeout): no case server-closed
LATE = {"starttls-454-server-closes-late.pcap"}
#: the captures whose reset a box forged -> (the reset's frame, its TTL, the server's TTL)
FORGED = {"starttls-421-forged-reset.pcap": (14, 250, 52)}


def _conv(name: str, stream: int = 0) -> dict[str, Any]:
    return next(c for c in analyze_path(str(CAPTURES / name)) if c["stream"] == stream)


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_verdict(name: str) -> None:
    outcome, by, reason, code, frame, ending = VERDICTS[name]
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == (outcome, by, reason)
    assert conv["starttls"]["reply_code"] == code
    assert conv["detail"].endswith(ending), conv["detail"]
    gaps = [f["frame"] for f in conv["findings"] if f["code"] == "tcp-gap"]
    assert gaps == ([14] if outcome == "incomplete" else [])
    forged = [f["frame"] for f in conv["findings"] if f["code"] == "reset-forged"]
    closed = [(f["frame"], f["rfc"]) for f in conv["findings"] if f["code"] == "server-closed"]
    # the verdict rests on the refusal, even when a box forged the reset after it
    assert conv["evidence_frame"] == frame
    assert conv.get("case") != "reset-forged"
    if name in FORGED:
        reset, ttl, own = FORGED[name]
        (msg,) = [f["message"] for f in conv["findings"] if f["code"] == "reset-forged"]
        assert forged == [reset]
        assert f"came with TTL {ttl}, while the server's 5 segments after the handshake came with TTL {own}" in msg
        assert msg.endswith(f"it came after the {code} the client read as the answer to STARTTLS (frame {frame}), "
                            "which had already ruled TLS out on this connection: the verdict rests on that "
                            "answer, not on the reset")
        assert closed == [] and conv.get("case") is None     # the server did not close: a box reset
    else:
        assert forged == []
    if outcome == "aborted" and name not in FORGED and name not in LATE:
        # case server-closed, its finding at the server's end; RFC 5321 3.8 broken only after a code
        # that announces no close (a 421 announces it)
        assert conv.get("case") == "server-closed"
        assert closed == [(SERVER_END[name], "" if code == 421 else "RFC 5321 3.8")]
    elif name not in FORGED:
        assert conv.get("case") is None and closed == []


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_the_reply_is_what_tshark_reads_before_the_servers_end(name: str) -> None:
    path = CAPTURES / name
    outcome, _, _, code, frame, _ = VERDICTS[name]
    ((payload,),) = tshark_fields(path, f"frame.number == {frame} && {SERVER}", "tcp.payload")
    assert bytes.fromhex(payload.replace(":", "")).startswith(f"{code} ".encode())
    (end,) = frames_matching(path, f"{SERVER} && (tcp.flags.reset == 1 || tcp.flags.fin == 1)")
    assert end == (FORGED[name][0] if name in FORGED else SERVER_END[name])
    data = frames_matching(path, f"{SERVER} && tcp.len > 0")
    # in capture order the server's end follows its reply, or overtook it (the reordered control)
    assert end == frame + 2 or (name == "lost-segment-reset-overtakes.pcap" and end < frame)
    # the control's hole: tshark too sees a server segment missing before the FIN
    lost = frames_matching(path, f"{SERVER} && tcp.analysis.lost_segment")
    assert (lost == [end]) == (outcome == "incomplete"), (lost, data)
    # the reset's TTL against the server's segments after the handshake (the SYN-ACK aside)
    rows = tshark_fields(path, f"{SERVER} && tcp.flags.syn == 0", "frame.number", "ip.ttl")
    ttls = {int(n): int(ttl) for n, ttl in rows}
    if name in FORGED:
        reset, ttl, own = FORGED[name]
        assert end == reset and ttls.pop(reset) == ttl
        assert set(ttls.values()) == {own}
    else:
        assert len(set(ttls.values())) == 1


def test_a_forged_reset_after_a_refusal_the_capture_lost_is_no_answer() -> None:
    """The control of the forged reset: the capture lost the 421 (the client's ACK, frame 12, acknowledges
    its 33 bytes; tshark flags it ``tcp.analysis.ack_lost_segment``), and the box's reset (TTL 250) follows.
    The reset does not come "instead of the answer" (the box's reset says nothing of the server's sequence
    numbers, so no hole shows at it): the answer is missing from the capture, ``incomplete``, not a box that
    reset the connection before the server answered."""
    name = "starttls-421-lost-forged-reset.pcap"
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case")) == (
        "incomplete", "unknown", "incomplete", None)
    assert (conv["evidence_frame"], conv["starttls"]["frame"], conv["starttls"]["reply_code"]) == (10, 10, None)
    assert conv["findings"] == []
    assert conv["detail"] == ("the capture does not show the answer to STARTTLS: the client acknowledged 33 bytes "
                              "of the server that the capture does not hold (its answer may be among them)")
    path = CAPTURES / name
    assert frames_matching(path, "tcp.analysis.ack_lost_segment") == [12]
    assert frames_matching(path, f"{SERVER} && tcp.len > 0") == [4, 8]
    rows = tshark_fields(path, f"{SERVER} && tcp.flags.reset == 1", "frame.number", "ip.ttl")
    assert rows == [("13", "250")]
