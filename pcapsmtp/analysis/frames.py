"""From the SMTP core's byte offsets to frame numbers: ``FrameIndex`` (per side, which frame
carried which offset) and ``make_item`` (an event with the frames that carried it)."""
from __future__ import annotations

from bisect import bisect_right
from typing import Any

from pcapsmtp.analysis.verdict import Item
from pcapsmtp.smtp.events import MessageBody, Reply, StreamEnded, StreamGap

__all__ = ["FrameIndex", "make_item"]


class FrameIndex:
    """Per side: stream offset -> frame, sorted; trimmed to what events may still refer to
    (message bodies are never indexed for long)."""

    __slots__ = ("offs", "frames")

    def __init__(self) -> None:
        self.offs: list[int] = []
        self.frames: list[int] = []

    def add(self, offset: int, frame: int) -> None:
        if self.frames and self.frames[-1] == frame and self.offs[-1] <= offset:
            return
        self.offs.append(offset)
        self.frames.append(frame)

    def trim(self, low: int) -> None:
        """Forget entries wholly below ``low`` (kept in batches, not one by one)."""
        i = bisect_right(self.offs, low) - 1
        if i > 64:
            del self.offs[:i]
            del self.frames[:i]

    def at(self, offset: int) -> int | None:
        i = bisect_right(self.offs, offset) - 1
        return self.frames[i] if i >= 0 else (self.frames[0] if self.frames else None)

    def covering(self, start: int, end: int) -> tuple[int, ...]:
        offs = self.offs
        if not offs:
            return ()
        i = max(bisect_right(offs, start) - 1, 0)
        j = bisect_right(offs, max(end - 1, start))
        if j == i + 1:
            # most events come in one segment: no set to build, nothing to sort
            return (self.frames[i],)
        return tuple(sorted(set(self.frames[i:j])))


def make_item(ev: Any, idx: FrameIndex, ts_default: int) -> Item:
    """``ev`` with its frames: every frame of a reply (and each line's first frame), the
    frame after a hole for a gap, the last frame of a side for its end, no frame for a body
    (its frames are not kept)."""
    if isinstance(ev, MessageBody):
        return Item(ev, (), ev.ts_ns)
    sp = ev.span
    if isinstance(ev, Reply):
        lf = {}
        for ln in ev.lines[:64]:
            fr = idx.at(ln.span.start)
            if fr:
                lf[ln.span.start] = fr
        return Item(ev, idx.covering(sp.start, sp.end), ev.ts_ns, lf)
    if isinstance(ev, StreamGap):
        fr = idx.at(sp.end)
    elif isinstance(ev, StreamEnded):
        fr = idx.frames[-1] if idx.frames else None
    elif sp.end > sp.start:
        return Item(ev, idx.covering(sp.start, sp.end), getattr(ev, "ts_ns", 0) or ts_default)
    else:
        fr = idx.at(sp.start)
    return Item(ev, (fr,) if fr else (), getattr(ev, "ts_ns", 0) or ts_default)
