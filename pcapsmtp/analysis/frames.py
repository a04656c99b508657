"""From the SMTP core's byte offsets to frame numbers: ``FrameIndex`` (per side, which frame
carried which offset) and ``make_item`` (an event with the frames that carried it)."""
from __future__ import annotations

from bisect import bisect_right
from typing import Any

from pcapsmtp.model import Item
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


#: How ``make_item`` treats an event, by its class (the first of the ``isinstance`` tests it
#: passes, in the order ``make_item`` made them one by one): filled on first sight, so an event
#: costs one dictionary look-up instead of up to four ``isinstance`` calls.
_BODY, _REPLY, _GAP, _END, _OTHER = range(5)
_KINDS: dict[type, int] = {}


def _kind_of(cls: type) -> int:
    kind = next((k for base, k in ((MessageBody, _BODY), (Reply, _REPLY), (StreamGap, _GAP),
                                   (StreamEnded, _END)) if issubclass(cls, base)), _OTHER)
    _KINDS[cls] = kind
    return kind


def make_item(ev: Any, idx: FrameIndex, ts_default: int) -> Item:
    """``ev`` with its frames: every frame of a reply (and each line's first frame), the
    frame after a hole for a gap, the last frame of a side for its end, no frame for a body
    (its frames are not kept)."""
    cls = type(ev)
    kind = _KINDS.get(cls)
    if kind is None:
        kind = _kind_of(cls)
    if kind == _BODY:
        return Item(ev, (), ev.ts_ns)
    sp = ev.span
    start = sp.start
    end = sp.end
    if kind == _OTHER and end > start or kind == _REPLY:
        # ``idx.covering(start, end)`` written out (once per event): most events, and most
        # replies, came in one segment
        offs = idx.offs
        frames: tuple[int, ...]
        if not offs:
            frames = ()
            one = None
        else:
            n = len(offs)
            if offs[n - 1] <= start:
                # the usual case (about 19 events in 20): the event starts in the side's last
                # segment indexed so far, so no later one carried any of it (the two
                # ``bisect_right`` below would give ``n``: i = n - 1, j = n)
                i = n - 1
                j = n
            else:
                i = bisect_right(offs, start) - 1
                if i < 0:
                    i = 0
                j = bisect_right(offs, end - 1 if end - 1 > start else start)
            if j == i + 1:
                one = idx.frames[i]
                frames = (one,)
            else:
                one = None
                frames = tuple(sorted(set(idx.frames[i:j])))
        if kind == _OTHER:
            return Item(ev, frames, getattr(ev, "ts_ns", 0) or ts_default)
        lf = {}
        for ln in ev.lines[:64]:
            ls = ln.span.start
            # a line that starts within the reply's one segment was carried by it
            # (``idx.at(ls)``, as a line elsewhere asks)
            fr = one if one is not None and start <= ls < end else idx.at(ls)
            if fr:
                lf[ls] = fr
        return Item(ev, frames, ev.ts_ns, lf)
    if kind == _GAP:
        fr = idx.at(end)
    elif kind == _END:
        fr = idx.frames[-1] if idx.frames else None
    else:
        fr = idx.at(start)
    return Item(ev, (fr,) if fr else (), getattr(ev, "ts_ns", 0) or ts_default)
