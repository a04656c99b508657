"""Packets the capture lost (live mode: the kernel's drop counters) and the verdicts they touch.

The kernel only says how many packets it dropped, not which: ``Loss`` is a window of capture
time in which ``dropped`` packets were lost (between two reads of the counters). A
conversation *overlaps* a loss when the window falls while it was open: after its first
packet (any time before its last one when its start was not captured: it may have begun
earlier) and before its last. Such a conversation gets a ``capture-loss`` finding, and when
its verdict names a side (client, server, middlebox) on the strength of bytes at or after
the start of the loss, the verdict becomes ``incomplete``/``unknown``: the lost packets may
hold what would have decided otherwise (a STARTTLS, a reply, the end of a side). A verdict
decided before the loss stands: packets lost later cannot change what was already seen.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pcapsmtp.analysis.reasons import BLAMED, REASONS
from pcapsmtp.analysis.verdict import Transcript

__all__ = ["Loss", "BLAMED", "apply_losses"]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Loss:
    after_ns: int       #: the packets were lost after this capture time ...
    until_ns: int       #: ... and at or before this one
    dropped: int        #: how many the kernel dropped in that window


def _evidence_ts(t: Transcript, frame: int | None) -> int:
    """Capture time of the event carrying ``frame`` (the conversation's last time if it is
    not among the kept events: the safe side)."""
    if frame is not None:
        for it in t.items:
            if frame in it.frames:
                return it.ts_ns
    return t.last_ts_ns


def apply_losses(conv: dict[str, Any], t: Transcript, losses: list[Loss]) -> None:
    """Add the ``capture-loss`` finding to ``conv`` (the verdict of ``t``) for the losses it
    overlaps, and take the blame back when the deciding bytes come after one."""
    hit = [x for x in losses if x.after_ns < t.last_ts_ns
           and (t.midstream or x.until_ns > t.first_ts_ns)]
    if not hit:
        return
    dropped = sum(x.dropped for x in hit)
    conv["findings"].append({
        "code": "capture-loss", "side": "capture", "frame": None, "rfc": "",
        "message": f"the capture lost packets while this conversation was open (the kernel "
                   f"dropped {dropped} packet{'s' if dropped != 1 else ''} of the capture "
                   "then); what it shows after that may be incomplete"})
    if conv["caused_by"] not in BLAMED:
        return
    first_loss = min(x.after_ns for x in hit)
    if _evidence_ts(t, conv.get("evidence_frame")) <= first_loss:
        return
    was = f"{conv['reason']} ({conv['caused_by']})"
    conv["outcome"], conv["caused_by"], conv["reason"] = "incomplete", "unknown", "incomplete"
    conv["detail"] = (f"the capture lost packets before the bytes that decide this "
                      f"conversation, so no side is blamed; as captured it would read as {was}")
    info = REASONS["incomplete"]
    conv["explanation"] = {"client_does": info.client_does, "ask": info.remedy}
    conv.pop("tlsrpt_result", None)
