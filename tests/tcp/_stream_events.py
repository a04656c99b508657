"""The stream events of a reassembler's output in a form tests compare: what each side's byte
stream got, in order (shared by the direction-order and reset-answer tests)."""
from __future__ import annotations

from pcapsmtp.model import Side
from pcapsmtp.tcp.events import FlowEvent, StreamData, StreamEnd, StreamGap


def events(ev: list[FlowEvent]) -> list[tuple[str, Side, int, int, int]]:
    """(kind, side, offset or 0, length or reset flag, frame) of the stream events, in order."""
    out: list[tuple[str, Side, int, int, int]] = []
    for e in ev:
        if isinstance(e, StreamData):
            out.append(("data", e.side, e.offset, len(e.data), e.frame))
        elif isinstance(e, StreamGap):
            out.append(("gap", e.side, e.offset, e.length, e.frame))
        elif isinstance(e, StreamEnd):
            out.append(("end", e.side, 0, int(e.reset), e.frame))
    return out
