"""A capture clock that steps back: durations across the step cannot be measured.

NTP stepping the capturing host's clock back, a virtual machine's clock set after a pause, or
two hosts' captures put one after the other make a capture's timestamps go back in the middle
of the file. Read as they are, a 5 s wait across the step is -3595 s: a client that "did not
wait", a server that "answered at once".

``CaptureClock`` watches the capture's timestamps in capture order (the segments of the SMTP
conversations the analyzer reads). A timestamp more than ``STEP_NS`` behind the
latest one (more than a file written as read from two interfaces puts one direction behind the
other) is a *step* (``ClockStep``): from its frame on, the analysis moves every time
forward by how far the clock went back, so the capture's times run on without a gap at the
step (a *continuous* timeline). A duration across the step is then at least what the
continuous timeline says (the real pause at the step, ``g`` below, is unknown and not
negative), never exactly known.

``judge_clocked`` judges a conversation whose frames span a step under several values of that
unknown pause (none, a second, ..., an hour): when every reading gives the same verdict
(outcome, caused_by, reason, case), the verdict does not turn on the unmeasurable duration and
stands; otherwise it is ``incomplete``/``unknown``, and ``detail`` names the readings. Either
way a ``clock-step`` finding (side ``capture``) names the frame and how far the clock went
back, and only the findings every reading gives are kept.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace
from typing import Any

from pcapsmtp.analysis.reasons import REASONS
from pcapsmtp.analysis.verdict import Item, Transcript, judge
from pcapsmtp.smtp.events import WAITED_NS

__all__ = ["STEP_NS", "STEP_PAUSE_NS", "ClockStep", "CaptureClock", "judge_clocked",
           "any_reading", "PAUSES_NS"]

#: How far a timestamp must fall behind the latest one to be a step. A file written as read
#: from two interfaces (dumpcap ``-i a -i b``, one tap per direction) or merged without sorting
#: files each interface's packets in blocks, so one direction's segments fall behind the other's
#: by up to a buffer's flush (hundreds of milliseconds, a second) while each direction's own
#: times go forward: no step; nor is the reordering of one clock (a multi-queue NIC, ``-i any``:
#: microseconds to milliseconds). A step of the clock shorter than this is read as stamped (it
#: shortens the durations across it by less than this). It is not confirmed later by a direction
#: seen before either: a connection opened between the step and that confirmation runs on the
#: new clock, and the offset put on its later segments would be a pause it never had.
STEP_NS = 2_000_000_000

#: The pause the continuous timeline puts at a step: the least the rules call waiting
#: (``WAITED_NS``), so the SMTP core reads what came after the step as coming after a wait (the
#: client's plaintext after an unanswered STARTTLS as its giving up, the server's after its 220 as
#: its timeout, not as bytes injected in the same flight) and leaves the timing to the verdict,
#: which is judged under every pause of ``PAUSES_NS``.
STEP_PAUSE_NS = WAITED_NS

#: The pauses at a step a verdict is judged under (``judge_clocked``): the continuous timeline's
#: own (whose verdict is the one given), none, then past each duration the rules measure (ten
#: seconds, thirty), and an hour.
PAUSES_NS = (STEP_PAUSE_NS, 0, 12_000_000_000, 45_000_000_000, 3600_000_000_000)

#: steps kept per capture (a file whose clock jumps back and forth at every packet is garbage
#: for timing: past this bound later steps are merged into the last one)
_MAX_STEPS = 4096


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ClockStep:
    """The capture's clock went back at ``frame``: its time is ``back_ns`` before the latest
    time before it. ``at_ns``: the continuous time of the step (frames from ``frame`` on are at
    or after it, every frame before it before it)."""

    frame: int
    back_ns: int
    at_ns: int


class CaptureClock:
    """The capture's timestamps, in capture order, made continuous across backward steps."""

    __slots__ = ("steps", "_frames", "_offsets", "offset", "latest")

    def __init__(self) -> None:
        self.steps: list[ClockStep] = []
        self._frames: list[int] = []       #: the steps' frames, ascending
        self._offsets: list[int] = []      #: the offset from each step's frame on
        self.offset = 0                    #: the offset of the latest frame
        self.latest: int | None = None     #: the latest continuous time seen

    def see(self, frame: int, ts_ns: int) -> None:
        """A segment of ``frame`` stamped ``ts_ns`` (capture order)."""
        t = ts_ns + self.offset
        latest = self.latest
        if latest is None or t > latest:
            self.latest = t
        elif t < latest - STEP_NS:
            back = latest - t
            # (the frames from the step on come ``STEP_PAUSE_NS`` after every frame before it)
            self.offset += back + STEP_PAUSE_NS
            self.latest = latest + STEP_PAUSE_NS
            if len(self.steps) < _MAX_STEPS:
                self.steps.append(ClockStep(frame, back, latest + 1))
                self._frames.append(frame)
                self._offsets.append(self.offset)
            else:
                last = self.steps[-1]
                self.steps[-1] = replace(last, back_ns=last.back_ns + back)
                self._offsets[-1] = self.offset

    def at(self, frame: int, ts_ns: int) -> int:
        """The continuous time of a segment of ``frame`` stamped ``ts_ns``."""
        if not self._frames:
            return ts_ns
        i = bisect_right(self._frames, frame) - 1
        return ts_ns + (self._offsets[i] if i >= 0 else 0)

    def last_of(self, ts_ns: int | None, low: int) -> int | None:
        """The continuous time of a side's last segment stamped ``ts_ns`` (its frame is not
        known): the earliest reading at or after ``low`` (the continuous time of the side's last
        event, or of the conversation's start), so a time across a step is never made longer
        than the capture shows."""
        if ts_ns is None or not self._offsets:
            return ts_ns
        for off in (0, *self._offsets):
            if ts_ns + off >= low:
                return ts_ns + off
        return ts_ns + self._offsets[-1]

    def offset_before(self, ts_ns: int) -> int:
        """How far the continuous time ``ts_ns`` is ahead of the captured one."""
        i = bisect_right([s.at_ns for s in self.steps], ts_ns) - 1
        return self._offsets[i] if i >= 0 else 0

    def within(self, t: Transcript) -> list[ClockStep]:
        """The steps inside the conversation of ``t`` (its times continuous): after its first
        frame, at or before its last segment."""
        last = max(t.last_ts_ns, t.client_last_ns or 0, t.server_last_ns or 0)
        return [s for s in self.steps if t.first_ts_ns < s.at_ns <= last]


def _shifted(t: Transcript, steps: list[ClockStep], pause: int) -> Transcript:
    """``t`` with a pause of ``pause`` at each of ``steps`` instead of ``STEP_PAUSE_NS``: the
    continuous time of the frames after a step moved by the difference (an item without frames
    by its time; the client's last acknowledgement, ``server_acked_ns``, by its frame)."""
    if pause == STEP_PAUSE_NS:
        return t
    pause -= STEP_PAUSE_NS
    frames = [s.frame for s in steps]
    ats = [s.at_ns for s in steps]

    def move(ts: int | None) -> int | None:
        if ts is None or not ts:
            return ts
        return ts + pause * bisect_right(ats, ts)

    acked = t.server_acked_ns
    if acked:
        # (the client's acknowledgement moves with its own frame, as an item does)
        acked += pause * (bisect_right(frames, t.server_acked_frame) if t.server_acked_frame
                          else bisect_right(ats, acked))
    items = []
    for it in t.items:
        n = bisect_right(frames, it.frames[0]) if it.frames else bisect_right(ats, it.ts_ns)
        items.append(Item(it.event, it.frames, it.ts_ns + pause * n if it.ts_ns else 0,
                          it.line_frames) if n else it)
    return replace(t, items=items, last_ts_ns=move(t.last_ts_ns) or 0,
                   server_last_ns=move(t.server_last_ns), client_last_ns=move(t.client_last_ns),
                   server_acked_ns=acked)


def _key(conv: dict[str, Any]) -> tuple[Any, ...]:
    return conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case")


def _finding_key(f: dict[str, Any]) -> tuple[Any, ...]:
    return f["code"], f["side"], f["frame"]


def _or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _seconds(ns: int) -> str:
    return f"{ns / 1e9:.3f}".rstrip("0").rstrip(".") + " s"


def any_reading(t: Transcript, steps: list[ClockStep], pred: Any) -> bool:
    """Whether ``pred`` holds of ``t`` under some pause at its ``steps`` (``PAUSES_NS``)."""
    return any(pred(_shifted(t, steps, pause)) for pause in (PAUSES_NS if steps else PAUSES_NS[:1]))


def judge_clocked(t: Transcript, steps: list[ClockStep]) -> dict[str, Any]:
    """``judge(t)`` for a conversation whose frames span the capture clock's backward
    ``steps`` (its times continuous, ``CaptureClock``): the verdict every pause at the steps
    gives, or ``incomplete``/``unknown`` when the pause decides (module docstring)."""
    if not steps:
        return judge(t)
    convs = [judge(_shifted(t, steps, pause)) for pause in PAUSES_NS]
    conv = convs[0]
    readings: list[tuple[Any, ...]] = []
    for c in convs:
        if _key(c) not in readings:
            readings.append(_key(c))
    common = set.intersection(*({_finding_key(f) for f in c["findings"]} for c in convs))
    conv["findings"] = [f for f in conv["findings"] if _finding_key(f) in common]
    first = steps[0]
    where = (f"the capture's clock went back {_seconds(first.back_ns)} at frame {first.frame}"
             + (f" (and {len(steps) - 1} more time{'s' if len(steps) > 2 else ''})" if len(steps) > 1 else ""))
    conv["findings"].append({
        "code": "clock-step", "side": "capture", "frame": first.frame, "rfc": "",
        "message": (f"{where}, in the middle of this conversation (NTP stepping the capturing "
                    "host's clock, or captures of two hosts put together): how long anything "
                    "took across it cannot be measured"),
        "wireshark_filter": f"frame.number == {first.frame}"})
    conv["findings"].sort(key=lambda f: (f["frame"] is None, f["frame"] or 0))
    if len(readings) == 1:
        return conv
    by_reading: dict[tuple[Any, ...], list[int]] = {}
    for pause, c in zip(PAUSES_NS, convs):
        by_reading.setdefault(_key(c), []).append(pause)
    alone = ", as ".join(f"{reason} ({caused_by}) with "
                         + ("no pause" if pauses == [0] else
                            "a pause of " + _or([_seconds(p) if p else "none" for p in sorted(pauses)]))
                         for (_, caused_by, reason, _), pauses in by_reading.items())
    conv["detail"] = (f"{where}: how long a side waited across it is not known, and the verdict "
                      f"turns on it: it reads as {alone} at the step; no side is blamed")
    conv["outcome"], conv["caused_by"], conv["reason"] = "incomplete", "unknown", "incomplete"
    conv["evidence_frame"] = first.frame
    conv.pop("case", None)
    conv.pop("tlsrpt_result", None)
    info = REASONS["incomplete"]
    conv["explanation"] = {"client_does": info.client_does, "ask": info.remedy}
    return conv
