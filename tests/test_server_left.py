"""A refusal of STARTTLS followed by the server's own end of the connection
(captures/scenarios_serverleft.py, and the two reordered captures where the reset overtook the
refusal): the client had no next step, so the verdict is the server's refusal
(``aborted``/``server``/``starttls-refused``), not a capture that ends "before the client's next
step". A hole in the server's direction between its reply and its end leaves it ``incomplete``.

Cross-checked against tshark: the reply's frame carries the code in the server's payload, the
server's RST or FIN comes right after it (or overtook it, in the reordered control), and tshark
sees the control's hole too (``tcp.analysis.lost_segment`` at the FIN).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching, tshark_fields

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
SERVER = "tcp.srcport == 25"

#: capture -> (outcome, caused_by, reason, reply code, evidence frame, message ending)
VERDICTS: dict[str, tuple[str, str, str, int, int, str]] = {
    "starttls-421-server-resets.pcap": ("aborted", "server", "starttls-refused", 421, 12,
                                        "421 4.3.2 Service shutting down; then it reset the connection"),
    "starttls-454-server-closes.pcap": ("aborted", "server", "starttls-refused", 454, 12,
                                        "local problem; then it closed the connection"),
    "starttls-454-server-closes-after-hole.pcap": ("incomplete", "unknown", "incomplete", 454, 12,
                                                   "the capture ends before the client's next step"),
    "lost-segment-reset-overtakes.pcap": ("aborted", "server", "starttls-refused", 454, 12,
                                          "local problem; then it reset the connection"),
}


def _conv(name: str, stream: int = 0) -> dict[str, Any]:
    return next(c for c in analyze_path(str(CAPTURES / name)) if c["stream"] == stream)


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_verdict(name: str) -> None:
    outcome, by, reason, code, frame, ending = VERDICTS[name]
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == (outcome, by, reason)
    assert conv["starttls"]["reply_code"] == code
    assert conv["evidence_frame"] == frame
    assert conv["detail"].endswith(ending), conv["detail"]
    gaps = [f["frame"] for f in conv["findings"] if f["code"] == "tcp-gap"]
    assert gaps == ([14] if outcome == "incomplete" else [])


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_the_reply_is_what_tshark_reads_before_the_servers_end(name: str) -> None:
    path = CAPTURES / name
    outcome, _, _, code, frame, _ = VERDICTS[name]
    ((payload,),) = tshark_fields(path, f"frame.number == {frame} && {SERVER}", "tcp.payload")
    assert bytes.fromhex(payload.replace(":", "")).startswith(f"{code} ".encode())
    (end,) = frames_matching(path, f"{SERVER} && (tcp.flags.reset == 1 || tcp.flags.fin == 1)")
    data = frames_matching(path, f"{SERVER} && tcp.len > 0")
    # in capture order the server's end follows its reply, or overtook it (the reordered control)
    assert end == frame + 2 or (name == "lost-segment-reset-overtakes.pcap" and end < frame)
    # the control's hole: tshark too sees a server segment missing before the FIN
    lost = frames_matching(path, f"{SERVER} && tcp.analysis.lost_segment")
    assert (lost == [end]) == (outcome == "incomplete"), (lost, data)
