"""``pcapsmtp diff``: the same deliveries seen on both sides of a middlebox, paired and compared.

Pure logic on conversation dicts (the output contract's, analysed with
``AnalysisConfig(keep_exchange=True)`` so that each carries ``_exchange``, its dialogue line
by line). No file, socket or clock is touched here; ``pcapsmtp.commands.diff`` reads the captures.

Three steps:

1. **Pairing** (``pair_conversations``). Addresses and ports may differ on the two sides
   (NAT, a proxy with its own upstream connection), segment boundaries differ and the two
   capture clocks may be offset. A candidate pair is scored on content: the envelope (MAIL
   FROM, RCPT TO), the message sizes, the banner (a masked banner still matches by length
   and by its '2'/'0' positions), the EHLO argument, the start time after the clock offset
   (estimated from the pairs whose envelope agrees), and the 4-tuple when it is the same on
   both sides. Pairs are accepted greedily by score, each conversation at most once; below
   ``DiffConfig.threshold`` a conversation stays unpaired.
2. **Comparison** (``compare_dialogues``), per direction: what the sender wrote (the server
   inside, the client outside) against what the receiver got, line by line. Every
   difference is ``rewritten``, ``masked`` (same length, characters replaced by a fill such as
   ``*`` or ``X``), ``removed`` (the receiver never got it) or ``added`` (the sender never
   wrote it: the box did), with the frame on each side.
   TLS records are lines too, and so is a ``[RST]`` of the TLS handshake. A line missing on
   one side has that side's frame of where it would have been, or None when that capture shows
   nothing of the direction there (it stopped earlier, or lost bytes there that may hold the
   line): such a difference proves nothing. A hole of the capture is weighed by what the
   receiver acknowledged (``_unreceived``): bytes it acknowledged reached it (only the capture
   lost them: no evidence against the box); bytes before the sender's FIN that it never
   acknowledged, while its own later segments show what it had, never reached it.
3. **Joint verdict** (``joint_verdict``): ``caused_by: middlebox`` with ``starttls-masked``,
   ``starttls-stripped`` or ``starttls-refused`` when a difference touches STARTTLS, or
   ``tls-handshake-failed`` when the box let STARTTLS and its 220 through and then dropped the
   ClientHello or the server's answer or reset the connection itself (proven differences
   only), beside the two single-side verdicts that each file alone gives.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "DiffConfig", "Features", "features", "score_pair", "estimate_clock_offset",
    "pair_conversations", "compare_dialogues", "joint_verdict", "diff_conversations",
    "banner_compatible", "is_masked", "tampered", "proven", "unproven_pairs",
]

SERVER_TO_CLIENT = "server->client"
CLIENT_TO_SERVER = "client->server"

#: Lines of the exchange that describe the capture, not the dialogue (they legitimately
#: differ between two capture points).
_NOT_DIALOGUE = re.compile(r"^\[(FIN|RST|capture ends|\d+ bytes from the .* missing in the capture|"
                           r"frame \d+ resends .*|\.\.\. .*)\]$")
_GAP_LINE = re.compile(r"^\[\d+ bytes from the (client|server)( cut by the snap length,)? missing in the capture\]$")
_ADDR = re.compile(r"<([^>]*)>")
_SIZE = re.compile(r"^\[message content: (\d+) octets")
FIN_LINE, RST_LINE = "[FIN]", "[RST]"
_APPDATA = "[TLS encrypted record"
_KEYWORD_STARTTLS = re.compile(r"^\d{3}[- ]STARTTLS\s*$", re.IGNORECASE)
_REFUSAL = re.compile(r"^[45]\d\d[ -]")
_MASK_FILL = frozenset("*Xx#?")


@dataclass(frozen=True, slots=True)
class DiffConfig:
    threshold: float = 0.5            #: minimum score for a pair
    tolerance_s: float = 10.0         #: start times may differ this much after the clock offset
    clock_offset_s: float | None = None   #: inside clock minus outside clock; None: estimate it
    max_differences: int = 100        #: differences kept per pair


# ------------------------------------------------------------------------------------ features

@dataclass(slots=True)
class Features:
    """What pairing looks at in one conversation."""

    banner: str | None
    ehlo: str | None
    senders: list[str]
    recipients: list[str]
    sizes: list[int]
    start_ns: int
    end_ns: int
    endpoints: tuple[str, int, str, int]
    lines: dict[str, list[tuple[str, int | None]]] = field(default_factory=dict)  #: "C"/"S" -> (text, frame)


def _dialogue(conv: dict[str, Any]) -> dict[str, list[tuple[str, int | None]]]:
    """The lines of each side ("C", "S") with their frames (``_dialogue_and_holes``)."""
    return _dialogue_and_holes(conv)[0]


_Holes = dict[str, dict[int, list[Any]]]


def _dialogue_and_holes(conv: dict[str, Any]) -> tuple[dict[str, list[tuple[str, int | None]]], _Holes]:
    """The lines of each side ("C", "S") with their frames, and the holes of each side's stream
    (its ``[N bytes from the ... missing in the capture]`` lines) by position: the number of that
    side's lines before the hole. A ``[RST]`` of the TLS handshake (after the client's STARTTLS,
    before the first encrypted record of the session) is dialogue: nothing else can be read
    there, and a box that kills TLS by resetting the connection injects one on one side that the
    other never sent. Other ends (``[FIN]``, a ``[RST]`` of the SMTP dialogue or after the
    handshake) and gaps describe each capture and are not compared."""
    out: dict[str, list[tuple[str, int | None]]] = {"C": [], "S": []}
    holes: _Holes = {"C": {}, "S": {}}
    handshake = False
    for ln in conv.get("_exchange") or ():
        side = getattr(ln, "side", None)
        text = getattr(ln, "text", "")
        if side == "C" and _is_starttls_cmd(text):
            handshake = True
        elif text.startswith(_APPDATA):
            handshake = False
        gap = _GAP_LINE.match(text) if side == "!" else None
        if gap is not None:
            who = "C" if gap.group(1) == "client" else "S"
            holes[who].setdefault(len(out[who]), []).append(ln)
            continue
        if side not in out or _NOT_DIALOGUE.match(text) and not (handshake and text == RST_LINE):
            continue
        out[side].append((text, getattr(ln, "frame", None)))
    return out, holes


def _unreceived(conv: dict[str, Any], hole: Any, sender: str, since_ns: int | None = None) -> bool:
    """Did the bytes of ``hole`` (a gap line of ``sender``'s direction at its end: nothing of the
    sender's but its FIN or RST after it) never reach the receiver? TCP acknowledges
    cumulatively, and every segment of an open connection but a bare RST carries the ACK, so:

    - bytes the receiver acknowledged (the gap's ``acked``) reached it: the capture lost them,
      the box did not drop them; no evidence of anything;
    - bytes cut by the snap length were on the wire where the capture was taken: not dropped
      before it;
    - bytes the receiver never acknowledged were sent all the same (the sender's FIN after them
      has a sequence number past them), but they never reached the receiver if a segment of the
      receiver that carries its ACK (its FIN or a line of its own; not a RST, which may carry
      none) was captured a while (``COVER_AFTER_NS``) after they were sent: after the frame
      that follows the hole (the sender had sent them by then), or after ``since_ns`` (the time
      the other capture saw them sent, on this capture's clock, plus that while). Had they
      arrived, that segment would acknowledge them (a capture that lost them would still show
      the receiver's ACK of them): they were dropped before this capture point. Sooner, they
      may still have been on their way; without such a segment (the capture ends first, or the
      receiver stays silent), nothing shows what the receiver had."""
    if getattr(hole, "acked", None) is not False:
        return False            # acknowledged: received; None: not known (a line made by hand)
    m = _GAP_LINE.match(getattr(hole, "text", ""))
    if m is None or m.group(2):
        return False
    bounds = [t for t in (None if hole.ts_ns is None else hole.ts_ns + COVER_AFTER_NS, since_ns) if t is not None]
    if not bounds:
        return False
    bound = min(bounds)
    receiver = "S" if sender == "C" else "C"
    return any(getattr(ln, "side", None) == receiver and ln.frame is not None and ln.ts_ns is not None
               and ln.ts_ns >= bound and ln.text not in (RST_LINE, "[capture ends]")
               for ln in conv.get("_exchange") or ())


def _hides(conv: dict[str, Any], sender: str, since_ns: int | None = None, receiving: bool = False,
           at: int | None = None, seen: tuple[dict[str, list[tuple[str, int | None]]], _Holes] | None = None
           ) -> bool:
    """May ``conv``'s capture have lost bytes of the direction from ``sender`` ("C"/"S") that
    may hold a line missing there (a hole at position ``at``, or anywhere)? On the receiver's
    side of the box (``receiving``: the line is one the sender sent and this capture lacks), a
    hole at the end of the direction whose bytes never reached the receiver (``_unreceived``)
    hides nothing: the line, if it was there, did not arrive. On the sender's side, every hole
    may hold what the sender sent. ``seen``: ``_dialogue_and_holes(conv)`` when known."""
    lines, holes = seen if seen is not None else _dialogue_and_holes(conv)
    end = len(lines[sender])
    for pos, gaps in holes[sender].items():
        if at is not None and pos != at:
            continue
        for h in gaps:
            if not (receiving and pos == end and _unreceived(conv, h, sender, since_ns)):
                return True
    return False


def _direction_covered(conv: dict[str, Any], sender: str, since_ns: int | None = None,
                       receiving: bool = False) -> int | None:
    """The frame that shows ``conv``'s capture holds the direction from ``sender`` ("C"/"S") to its
    end: that side's own FIN or RST, or a RST of the other side (nothing more can come on a reset
    connection). None when the capture just stops (``[capture ends]``) or lost bytes of that
    direction (what is missing may be in the hole; see ``_hides``): no line missing there proves
    anything."""
    if _hides(conv, sender, since_ns, receiving):
        return None
    end: int | None = None
    for ln in conv.get("_exchange") or ():
        side, text, frame = getattr(ln, "side", None), getattr(ln, "text", ""), getattr(ln, "frame", None)
        if end is None and frame is not None and (
                side == sender and text in (FIN_LINE, RST_LINE) or side in ("C", "S") and text == RST_LINE):
            end = frame
    return end


#: how much later (after the clock offset) a line of the same conversation must come for a
#: capture to show that a record sent on the other side never arrived: the box's own delay and
#: the error of the estimated offset are far smaller
COVER_AFTER_NS = 1_000_000_000


def _frame_times(conv: dict[str, Any]) -> dict[int, int]:
    out: dict[int, int] = {}
    for ln in conv.get("_exchange") or ():
        frame, ts = getattr(ln, "frame", None), getattr(ln, "ts_ns", None)
        if frame is not None and ts is not None:
            out.setdefault(frame, ts)
    return out


def _covered_after(conv: dict[str, Any], sender: str, t_ns: int, receiving: bool = False) -> int | None:
    """The frame of ``conv``'s first line (of either side, a FIN or RST too) at ``t_ns`` or
    later on that capture's clock, when the capture holds the direction from ``sender``: a line
    of it was captured, and it hides no bytes of it (``_hides``, with ``t_ns`` as the time a line
    had to arrive by). The conversation going on there that much later without a record shows
    the record did not arrive; None: the capture does not show it."""
    if _hides(conv, sender, t_ns, receiving):
        return None
    lines = list(conv.get("_exchange") or ())
    if not any(getattr(ln, "side", None) == sender and getattr(ln, "text", "") != "[capture ends]"
               for ln in lines):
        return None
    for ln in lines:
        ts, frame = getattr(ln, "ts_ns", None), getattr(ln, "frame", None)
        if (getattr(ln, "side", None) in ("C", "S") and getattr(ln, "text", "") != "[capture ends]"
                and ts is not None and frame is not None and ts >= t_ns):
            return int(frame)
    return None


def features(conv: dict[str, Any]) -> Features:
    lines = _dialogue(conv)
    senders: list[str] = []
    recipients: list[str] = []
    sizes: list[int] = []
    for text, _fr in lines["C"]:
        up = text[:9].upper()
        if up.startswith("MAIL FROM"):
            m = _ADDR.search(text)
            senders.append((m.group(1) if m else text[10:].strip()).lower())
        elif up.startswith("RCPT TO"):
            m = _ADDR.search(text)
            recipients.append((m.group(1) if m else text[8:].strip()).lower())
        else:
            m = _SIZE.match(text)
            if m:
                sizes.append(int(m.group(1)))
    greeting = conv.get("greeting") or {}
    cl, sv = conv.get("client") or {}, conv.get("server") or {}
    return Features(
        banner=conv.get("banner"),
        ehlo=(greeting.get("argument") or "").lower() or None,
        senders=senders, recipients=recipients, sizes=sizes,
        start_ns=int(conv.get("started_ns") or 0),
        end_ns=int(conv.get("ended_ns") or conv.get("started_ns") or 0),
        endpoints=(str(cl.get("ip", "")), int(cl.get("port", 0)), str(sv.get("ip", "")), int(sv.get("port", 0))),
        lines=lines)


def banner_compatible(outside: str, inside: str) -> bool:
    """A banner masked by ESMTP inspection: same length, the code kept, every character
    that is not '2' or '0' replaced by '*' (and the '2'/'0' in the same places)."""
    if len(outside) != len(inside) or outside[:4] != inside[:4]:
        return False
    for a, b in zip(outside[4:], inside[4:]):
        if a == b:
            continue
        if a != "*" or b in "20":
            return False
    return "*" in outside


def is_masked(sent: str, received: str) -> bool:
    """``received`` is ``sent`` with characters overwritten by a fill (``XXXXXXXA``, ``***``):
    same length, and most changed characters are one fill character."""
    if len(sent) != len(received) or sent == received:
        return False
    changed = [r for s, r in zip(sent, received) if s != r]
    fill, n = Counter(changed).most_common(1)[0]
    return fill in _MASK_FILL and n * 10 >= len(changed) * 6


def _same_list(a: Sequence[Any], b: Sequence[Any]) -> float:
    if not a and not b:
        return 1.0
    sa, sb = Counter(a), Counter(b)
    common = sum((sa & sb).values())
    return common / max(len(a), len(b))


def _content_parts(a: Features, b: Features, dialogue: bool = True) -> list[tuple[str, float, float, str]]:
    """(name, weight, similarity 0..1, evidence) for the content features, outside ``a`` and
    inside ``b``. A feature seen on neither side is left out; on one side only it counts at
    half weight as a disagreement."""
    parts: list[tuple[str, float, float, str]] = []

    def one_sided(name: str, w: float, has_a: bool, has_b: bool) -> bool:
        if has_a and has_b:
            return False
        if has_a or has_b:
            parts.append((name, w / 2, 0.0, f"{name} seen on the {'outside' if has_a else 'inside'} only"))
        return True

    if not one_sided("sender", 3.0, bool(a.senders), bool(b.senders)):
        s = _same_list(a.senders, b.senders)
        parts.append(("sender", 3.0, s, f"MAIL FROM <{', '.join(a.senders)}>" + (" on both sides" if s == 1.0
                      else f" vs <{', '.join(b.senders)}>")))
    if not one_sided("recipients", 3.0, bool(a.recipients), bool(b.recipients)):
        s = _same_list(sorted(a.recipients), sorted(b.recipients))
        parts.append(("recipients", 3.0, s, f"RCPT TO {len(a.recipients)} / {len(b.recipients)}, "
                      f"{round(s * 100)}% in common"))
    if not one_sided("size", 2.0, bool(a.sizes), bool(b.sizes)):
        if a.sizes == b.sizes:
            parts.append(("size", 2.0, 1.0, f"message size {'+'.join(map(str, a.sizes))} octets on both sides"))
        else:
            ta, tb = sum(a.sizes), sum(b.sizes)
            close = len(a.sizes) == len(b.sizes) and abs(ta - tb) <= max(1024, max(ta, tb) // 50)
            parts.append(("size", 2.0, 0.7 if close else 0.0,
                          f"message size {ta} vs {tb} octets" + (" (close)" if close else "")))
    if a.banner is not None and b.banner is not None:
        if a.banner == b.banner:
            parts.append(("banner", 1.0, 1.0, "banner identical"))
        elif banner_compatible(a.banner, b.banner):
            parts.append(("banner", 1.0, 0.9, "banner masked on the outside (same length, '2'/'0' agree)"))
        else:
            parts.append(("banner", 1.0, 0.0, "banners differ"))
    if a.ehlo is not None and b.ehlo is not None:
        same = a.ehlo == b.ehlo
        parts.append(("ehlo", 1.5, 1.0 if same else 0.0,
                      f"EHLO {a.ehlo}" + (" on both sides" if same else f" vs {b.ehlo}")))
    tls_a, tls_b = _tls_lines(a), _tls_lines(b)
    if tls_a and tls_b:
        same_tls = tls_a == tls_b
        sim = 1.0 if same_tls else SequenceMatcher(None, tls_a, tls_b, autojunk=False).ratio() * 0.8
        parts.append(("tls", 2.0, sim, f"TLS records {'identical' if same_tls else 'differ'} "
                      f"({len(tls_a)} / {len(tls_b)})"))
    elif tls_a or tls_b:
        parts.append(("tls-one-sided", 1.0, 0.0, f"TLS seen on the {'outside' if tls_a else 'inside'} only"))
    la, lb = (_all_lines(a), _all_lines(b)) if dialogue else ([], [])
    if la and lb:
        sm = SequenceMatcher(None, la, lb, autojunk=False)
        sim = sm.ratio() if sm.quick_ratio() >= 0.5 else 0.0
        parts.append(("dialogue", 1.0, sim, f"{round(sim * 100)}% of the dialogue lines alike"))
    if a.endpoints == b.endpoints and a.endpoints[1]:
        parts.append(("addresses", 2.0, 1.0, "same addresses and ports on both sides"))
    return parts


def _tls_lines(f: Features) -> list[str]:
    """The TLS records of both directions in order (a spliced session keeps them all)."""
    return [f"{side}{t}" for side in ("C", "S") for t, _fr in f.lines.get(side, ()) if t.startswith("[TLS")]


def _records_dropped(a: Features, b: Features) -> bool:
    """The TLS records of one side are those of the other with some left out, in the same order
    (what a box that drops some of them leaves), and they are not the same."""
    ta, tb = _tls_lines(a), _tls_lines(b)

    def within(short: list[str], long: list[str]) -> bool:
        it = iter(long)
        return all(x in it for x in short)
    return ta != tb and (within(ta, tb) or within(tb, ta))


def _all_lines(f: Features) -> list[str]:
    return [f"{side}{t}" for side in ("C", "S") for t, _fr in f.lines.get(side, ())]


def _envelope_conflict(a: Features, b: Features) -> bool:
    """Both sides saw a sender and no sender agrees, or both saw recipients and none agrees:
    not the same delivery (a middlebox does not rewrite the envelope)."""
    return ((bool(a.senders) and bool(b.senders) and _same_list(a.senders, b.senders) == 0.0)
            or (bool(a.recipients) and bool(b.recipients)
                and _same_list(sorted(a.recipients), sorted(b.recipients)) == 0.0))


def _weighted(parts: Iterable[tuple[str, float, float, str]]) -> float:
    parts = list(parts)
    total = sum(w for _n, w, _s, _e in parts)
    return sum(w * s for _n, w, s, _e in parts) / total if total else 0.0


def _time_gap(a: Features, b: Features, offset_ns: int) -> int:
    """How far apart in time (ns, after the offset): the closer of the starts and the ends
    (a proxy may open its upstream connection late, or hold the reply until the end)."""
    return min(abs(b.start_ns - a.start_ns - offset_ns), abs(b.end_ns - a.end_ns - offset_ns))


def score_pair(a: Features, b: Features, offset_ns: int, cfg: DiffConfig) -> tuple[float, list[str]]:
    """Score 0..1 that outside ``a`` and inside ``b`` are the same delivery, and the evidence."""
    parts = _content_parts(a, b)
    dt = _time_gap(a, b, offset_ns) / 1e9
    tol = max(cfg.tolerance_s, 1e-3)
    ts = max(0.0, 1.0 - dt / tol)
    parts.append(("time", 2.0, ts, f"{dt:.3f} s apart in time after the clock offset"))
    score = _weighted(parts)
    evidence = [e for _n, _w, _s, e in parts]
    if dt > tol:
        score *= 0.5
        evidence.append(f"further apart in time than the tolerance ({cfg.tolerance_s:g} s)")
    if _envelope_conflict(a, b):
        score *= 0.4
        evidence.append("different envelopes: not the same delivery")
    if not any(n in ("sender", "recipients", "banner", "ehlo", "addresses", "tls") and s > 0.5
               or n == "dialogue" and s >= 0.9
               for n, _w, s, _e in parts):
        score = min(score, 0.45)          # time alone never pairs
        evidence.append("no content in common")
    return round(score, 3), evidence


def _strong(parts: Sequence[tuple[str, float, float, str]]) -> bool:
    return any(n in ("sender", "recipients") and s == 1.0 for n, _w, s, _e in parts) or sum(
        1 for n, _w, s, _e in parts if n in ("banner", "ehlo", "addresses", "tls", "dialogue") and s >= 0.9) >= 2


def estimate_clock_offset(outside: Sequence[Features], inside: Sequence[Features], cfg: DiffConfig,
                          candidates: Iterable[tuple[int, int]] | None = None) -> tuple[int, int]:
    """(inside clock minus outside clock in ns, number of anchor pairs that support it).

    Anchors are the candidate pairs whose content agrees strongly (envelope, or addresses,
    banner and EHLO); the offset is the median of the largest cluster of their start-time
    differences, so that repeated deliveries of one envelope vote for the right offset."""
    if cfg.clock_offset_s is not None:
        return int(cfg.clock_offset_s * 1e9), 0
    anchors: list[tuple[int, float]] = []
    if candidates is None:
        candidates = _candidates(outside, inside)
    for i, j in candidates:
        a, b = outside[i], inside[j]
        if _envelope_conflict(a, b):
            continue
        # TLS seen on one side only is left out here, as the dialogue lines are from the vote: a box
        # that drops the ClientHello makes it so, and the delivery must still anchor the offset; so
        # are TLS records one side has only some of, in the same order (a box that drops the
        # server's answer to the ClientHello)
        dropped = _records_dropped(a, b)
        parts = [x for x in _content_parts(a, b, dialogue=False)
                 if x[0] != "tls-one-sided" and not (dropped and x[0] == "tls")]
        strong = _strong(parts)
        if not strong and not (a.senders or a.recipients):
            parts = [x for x in _content_parts(a, b)
                     if x[0] != "tls-one-sided" and not (dropped and x[0] == "tls")]
            strong = _strong(parts)
        score = _weighted(parts)
        if strong and score >= 0.75:
            # Each strong pair votes (the end half as much as the start), weighed by its content
            # score without the dialogue lines: a tampered delivery differs in its dialogue from an
            # untouched look-alike and must not lose the vote for that. Equal votes go to the
            # smaller offset.
            vote = round(_weighted(x for x in parts if x[0] != "dialogue"), 2)
            anchors.append((b.start_ns - a.start_ns, vote))
            if b.end_ns - a.end_ns != b.start_ns - a.start_ns:
                anchors.append((b.end_ns - a.end_ns, vote / 2))
    if not anchors:
        return 0, 0
    anchors.sort()
    window = int(min(cfg.tolerance_s, 2.0) * 1e9)
    # Densest window of width 2*window centred on an anchor (two pointers over the sorted list).
    best_key: tuple[float, int] | None = None
    best_span = (0, 0)
    lo = hi = 0
    total = 0.0
    for d, _s in anchors:
        while hi < len(anchors) and anchors[hi][0] <= d + window:
            total += anchors[hi][1]
            hi += 1
        while anchors[lo][0] < d - window:
            total -= anchors[lo][1]
            lo += 1
        key = (round(total, 6), -abs(d))
        if best_key is None or key > best_key:
            best_key, best_span = key, (lo, hi)
    members = [d for d, _s in anchors[best_span[0]:best_span[1]]]
    median = members[len(members) // 2]
    return median, len(members)


def _confidence(score: float, margin: float) -> str:
    if score >= 0.8 and margin >= 0.2:
        return "high"
    if score >= 0.6 and margin >= 0.1:
        return "medium"
    return "low"


def _keys(f: Features) -> set[tuple[str, Any]]:
    """Blocking keys: only conversations that share one are scored against each other (the
    envelope when there is one, otherwise EHLO name, banner length and addresses)."""
    first = tuple(next((t for t, _fr in f.lines.get(side, ())), None) for side in ("C", "S"))
    if f.senders or f.recipients:
        return {("s", x) for x in f.senders} | {("r", x) for x in f.recipients} | {("l", first)}
    keys: set[tuple[str, Any]] = {("ep", f.endpoints), ("l", first)}
    if f.ehlo:
        keys.add(("e", f.ehlo))
    if f.banner is not None:
        keys.add(("b", len(f.banner)))
    return keys


def _candidates(fa: Sequence[Features], fb: Sequence[Features]) -> list[tuple[int, int]]:
    index: dict[tuple[str, Any], list[int]] = {}
    for j, b in enumerate(fb):
        for k in _keys(b):
            index.setdefault(k, []).append(j)
    out: set[tuple[int, int]] = set()
    for i, a in enumerate(fa):
        for k in _keys(a):
            out.update((i, j) for j in index.get(k, ()))
    return sorted(out)


def _top2(values: dict[int, list[tuple[float, int]]], key: int, exclude: int) -> float:
    return max((v for v, other in values.get(key, ()) if other != exclude), default=0.0)


def pair_conversations(outside: Sequence[dict[str, Any]], inside: Sequence[dict[str, Any]],
                       cfg: DiffConfig | None = None
                       ) -> tuple[list[tuple[int, int, dict[str, Any]]], list[int], list[int], int, int]:
    """Greedy 1:1 assignment by score. Returns (pairs as (outside index, inside index, match),
    unpaired outside indexes, unpaired inside indexes, clock offset ns, anchors)."""
    cfg = cfg or DiffConfig()
    fa = [features(c) for c in outside]
    fb = [features(c) for c in inside]
    cands = _candidates(fa, fb)
    offset, anchors = estimate_clock_offset(fa, fb, cfg, cands)
    scored: list[tuple[float, int, int, int, list[str]]] = []
    rows: dict[int, list[tuple[float, int]]] = {}
    cols: dict[int, list[tuple[float, int]]] = {}
    tol_ns = int(cfg.tolerance_s * 1e9)
    for i, j in cands:
        a, b = fa[i], fb[j]
        if cfg.threshold >= 0.5 and _time_gap(a, b, offset) > tol_ns:
            continue      # halved for time: below 0.5 whatever the content (see score_pair)
        s, ev = score_pair(a, b, offset, cfg)
        scored.append((s, _time_gap(a, b, offset), i, j, ev))
        for table, k, other in ((rows, i, j), (cols, j, i)):
            top = table.setdefault(k, [])
            top.append((s, other))
            top.sort(reverse=True)
            del top[2:]
    scored.sort(key=lambda x: (-x[0], x[1], x[2], x[3]))
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs: list[tuple[int, int, dict[str, Any]]] = []
    for s, _dt, i, j, ev in scored:
        if s < cfg.threshold:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        runner = max(_top2(rows, i, j), _top2(cols, j, i))
        margin = round(s - runner, 3)
        method = "addresses" if fa[i].endpoints == fb[j].endpoints and fa[i].endpoints[1] else "content"
        pairs.append((i, j, {"method": method, "score": s, "confidence": _confidence(s, margin),
                             "runner_up": runner, "evidence": ev}))
    pairs.sort(key=lambda p: (outside[p[0]].get("first_frame") or 0, p[0]))
    return (pairs, [i for i in range(len(fa)) if i not in used_a],
            [j for j in range(len(fb)) if j not in used_b], offset, anchors)


# ---------------------------------------------------------------------------------- comparison

def _line_class(line: str) -> str:
    """What a line is: a TLS record, a reset, or a line of the SMTP dialogue. A line of one class
    never turns into one of another (a ClientHello the box dropped and a RST it sent in its
    place are a removal and an addition, not a rewrite)."""
    return "tls" if line.startswith("[TLS ") else "rst" if line == RST_LINE else "smtp"


def _similar(x: str, y: str) -> float:
    if _line_class(x) != _line_class(y):
        return 0.0
    if len(x) == len(y) and is_masked(x, y):
        return 0.95
    r = SequenceMatcher(None, x, y, autojunk=False).ratio()
    if x[:4] == y[:4] or x.split(" ", 1)[0].upper() == y.split(" ", 1)[0].upper():
        r = max(r, 0.5) + 0.1
    return r


def _align(a: list[str], b: list[str]) -> list[tuple[int | None, int | None]]:
    """Monotonic alignment of two small blocks of unequal length, pairing similar lines."""
    n, m = len(a), len(b)
    if n * m > 2500:
        k = min(n, m)
        return ([(x, x) for x in range(k)] + [(x, None) for x in range(k, n)]
                + [(None, y) for y in range(k, m)])
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for x in range(n - 1, -1, -1):
        for y in range(m - 1, -1, -1):
            sim = _similar(a[x], b[y])
            take = best[x + 1][y + 1] + sim if sim >= 0.55 else -1.0
            best[x][y] = max(take, best[x + 1][y], best[x][y + 1])
    out: list[tuple[int | None, int | None]] = []
    x = y = 0
    while x < n and y < m:
        sim = _similar(a[x], b[y])
        if sim >= 0.55 and best[x][y] == best[x + 1][y + 1] + sim:
            out.append((x, y))
            x += 1
            y += 1
        elif best[x][y] == best[x + 1][y]:
            out.append((x, None))
            x += 1
        else:
            out.append((None, y))
            y += 1
    out += [(k, None) for k in range(x, n)] + [(None, k) for k in range(y, m)]
    return out


#: where a line missing from one capture's direction would have been: (its position there, the
#: frame of the line on the other side) -> that capture's frame, or None
_Near = Callable[[int, int | None], int | None]


def _near(conv: dict[str, Any], sender: str, receiving: bool, other_times: dict[int, int] | None,
          shift: int) -> _Near:
    """Where a line missing from ``conv``'s direction from ``sender`` would have been, at position
    ``k`` among that direction's lines: the frame of the next line in that direction; past the
    last line, the frame that shows the capture holds that direction to its end
    (``_direction_covered``), else, with the clock offset (``other_times``, the other capture's
    frame times, and ``shift``, to this capture's clock), the frame of a line of this capture a
    while after the other side's frame (``_covered_after``); else None (the capture may just have
    stopped earlier). None too when a hole of the capture lies where the line would have been
    (between the lines around it) and may hold it (``_hides``): a capture that lost the line is
    no evidence that the box removed it. ``receiving``: the capture is on the receiver's side of
    the box for this direction (the line is one the sender sent); only there can a hole's bytes
    be shown never to have arrived (``_unreceived``)."""
    seen = _dialogue_and_holes(conv)
    lines, holes = seen[0][sender], seen[1][sender]

    def at(k: int, other: int | None) -> int | None:
        since: int | None = None
        if other_times is not None and other is not None and other in other_times:
            since = other_times[other] + shift + COVER_AFTER_NS
        for idx in range(k, len(lines) + 1):
            if idx in holes and _hides(conv, sender, since, receiving, at=idx, seen=seen):
                return None
            if idx < len(lines) and lines[idx][1] is not None:
                return lines[idx][1]
        tail = _direction_covered(conv, sender, since, receiving)
        if tail is None and since is not None:
            tail = _covered_after(conv, sender, since, receiving)
        return tail
    return at


def _direction(sent: list[tuple[str, int | None]], got: list[tuple[str, int | None]],
               direction: str, sender_is_outside: bool, sent_near: _Near, got_near: _Near) -> list[dict[str, Any]]:
    """The differences of one direction. A line missing on one side gets that side's frame of
    where it would have been (``_near``), given the frame of the line on the other side."""
    a = [t for t, _f in sent]
    b = [t for t, _f in got]
    out: list[dict[str, Any]] = []

    def emit(x: int | None, y: int | None, kind: str, xs: int, ys: int) -> None:
        s_line = a[x] if x is not None else None
        g_line = b[y] if y is not None else None
        s_frame = sent[x][1] if x is not None else None
        g_frame = got[y][1] if y is not None else None
        if x is None:
            s_frame = sent_near(xs, g_frame)
        if y is None:
            g_frame = got_near(ys, s_frame)
        o_line, i_line = (s_line, g_line) if sender_is_outside else (g_line, s_line)
        o_frame, i_frame = (s_frame, g_frame) if sender_is_outside else (g_frame, s_frame)
        out.append({"direction": direction, "kind": kind, "outside_frame": o_frame, "inside_frame": i_frame,
                    "outside_line": o_line, "inside_line": i_line})

    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if tag == "delete":
            for x in range(i1, i2):
                emit(x, None, "removed", x, j1)
            continue
        if tag == "insert":
            for y in range(j1, j2):
                emit(None, y, "added", i1, y)
            continue
        if i2 - i1 == j2 - j1 and all(_line_class(a[x]) == _line_class(b[y])
                                       for x, y in zip(range(i1, i2), range(j1, j2))):
            pairs: list[tuple[int | None, int | None]] = list(zip(range(i1, i2), range(j1, j2)))
        else:
            pairs = [(None if x is None else x + i1, None if y is None else y + j1)
                     for x, y in _align(a[i1:i2], b[j1:j2])]
        nx, ny = i1, j1
        for px, py in pairs:
            if px is not None and py is not None:
                emit(px, py, "masked" if is_masked(a[px], b[py]) else "rewritten", px, py)
            elif px is not None:
                emit(px, None, "removed", px, ny)
            elif py is not None:
                emit(None, py, "added", nx, py)
            nx = px + 1 if px is not None else nx
            ny = py + 1 if py is not None else ny
    return out


def compare_dialogues(outside: dict[str, Any], inside: dict[str, Any], max_differences: int = 100,
                      offset_ns: int | None = None) -> list[dict[str, Any]]:
    """Every line that differs, per direction, in dialogue order. Server->client compares what
    the server wrote (inside) with what the client got (outside); client->server the other way.
    With the clock offset (inside minus outside), a line missing past the end of what one
    capture shows of its direction gets the frame of that capture's conversation going on
    ``COVER_AFTER_NS`` or more later (``_covered_after``), and a hole at the end of the direction
    on the receiver's side can be shown never to have arrived by the time the other capture saw
    it sent (``_unreceived``)."""
    lo, li = _dialogue(outside), _dialogue(inside)
    t_out = _frame_times(outside) if offset_ns is not None else None
    t_in = _frame_times(inside) if offset_ns is not None else None
    shift = offset_ns or 0
    # the server sends inside and the client receives outside; the client sends outside
    diffs = (_direction(li["S"], lo["S"], SERVER_TO_CLIENT, False,
                        _near(inside, "S", False, t_out, shift), _near(outside, "S", True, t_in, -shift))
             + _direction(lo["C"], li["C"], CLIENT_TO_SERVER, True,
                          _near(outside, "C", False, t_in, -shift), _near(inside, "C", True, t_out, shift)))
    big = 1 << 62
    diffs.sort(key=lambda d: (d["outside_frame"] if d["outside_frame"] is not None else big,
                              d["inside_frame"] if d["inside_frame"] is not None else big,
                              d["direction"]))
    return diffs[:max_differences]


# -------------------------------------------------------------------------------------- verdict

def _is_starttls_cmd(line: str | None) -> bool:
    return line is not None and line.strip().upper() == "STARTTLS"


def _offers_starttls(line: str | None) -> bool:
    return line is not None and bool(_KEYWORD_STARTTLS.match(line.strip()))


def _answer_to_starttls(conv: dict[str, Any]) -> tuple[str, int | None] | None:
    """The first server line after the client's STARTTLS, as the client got it."""
    seen: int | None = None
    for ln in conv.get("_exchange") or ():
        side, text, frame = getattr(ln, "side", ""), getattr(ln, "text", ""), getattr(ln, "frame", None)
        if seen is None:
            if side == "C" and _is_starttls_cmd(text):
                seen = frame if frame is not None else 0
        elif side == "S" and not _NOT_DIALOGUE.match(text):
            return text, frame
    return None


def _side(conv: dict[str, Any]) -> dict[str, Any]:
    """One side of a pair (or an unpaired conversation): where it is, and the verdict that file
    alone gives, with its case (null when the verdict names none)."""
    return {"file": conv.get("file"), "stream": conv.get("stream"), "first_frame": conv.get("first_frame"),
            "client": conv.get("client"), "server": conv.get("server"), "outcome": conv.get("outcome"),
            "caused_by": conv.get("caused_by"), "reason": conv.get("reason"), "case": conv.get("case")}


def _quote(line: str | None) -> str:
    return "(nothing)" if line is None else repr(line)


def _holes_of(conv: dict[str, Any] | None, sender: str, at_end: bool = False) -> list[Any]:
    """The gap lines of ``conv``'s direction from ``sender``, in order (``at_end``: only those after
    its last line)."""
    if conv is None:
        return []
    lines, holes = _dialogue_and_holes(conv)
    end = len(lines[sender])
    return [h for pos, gaps in holes[sender].items() if not at_end or pos == end for h in gaps]


def _hole_bytes(holes: Sequence[Any]) -> int:
    return sum(int(h.text[1:].split(" ", 1)[0]) for h in holes)


def _holes_reached(holes: Sequence[Any]) -> bool:
    """Did the bytes of ``holes`` (the gap lines of one direction) all reach their receiver, as the
    capture shows: there are some, and the receiver acknowledged every one (the capture lost
    them, not the path). One it did not acknowledge (or that nothing says of) may hold the line
    a box kept from it. The one test of both the pair's verdict (``_reached``) and its message
    (``_hole_words``)."""
    return bool(holes) and all(getattr(h, "acked", None) for h in holes)


def _hole_words(holes: Sequence[Any], who: str, receiver: str) -> str:
    """What the holes of ``who``'s direction say of a line missing there, for a person."""
    what = f"{_hole_bytes(holes)} bytes from the {who}"
    if _holes_reached(holes):
        return (f"lost {what}, which the {receiver} acknowledged (they reached it: only the capture lost them; "
                "the line may be among them)")
    if any(" cut by the snap length," in h.text for h in holes):
        return f"had {what} cut by the snap length (they were on the wire there; the line may be among them)"
    acked = [h for h in holes if getattr(h, "acked", None)]
    if acked:
        return (f"lost {what}; the {receiver} acknowledged {_hole_bytes(acked)} of them (they reached it), and "
                f"nothing in it shows whether it got the other {_hole_bytes(holes) - _hole_bytes(acked)} (the line "
                "may be among them)")
    return (f"lost {what}, and nothing in it shows whether the {receiver} got them (the line may be among "
            "them)")


def _describe(d: dict[str, Any], outside: dict[str, Any] | None = None,
              inside: dict[str, Any] | None = None) -> str:
    """A difference for a person, with both frames. With the pair's conversations, a line missing
    where the capture lacking it has a hole says what the hole shows (``_unreceived``)."""
    o, i = d["outside_frame"], d["inside_frame"]
    if d["direction"] == SERVER_TO_CLIENT:
        sent, got, sf, gf = d["inside_line"], d["outside_line"], i, o
        who_s, who_g = "the server sent", "the client got"
        fs, fg = "inside", "outside"
        sender, sent_conv, got_conv = "S", inside, outside
    else:
        sent, got, sf, gf = d["outside_line"], d["inside_line"], o, i
        who_s, who_g = "the client sent", "the server got"
        fs, fg = "outside", "inside"
        sender, sent_conv, got_conv = "C", outside, inside
    who, receiver = ("server", "client") if sender == "S" else ("client", "server")
    if d["kind"] == "removed":
        holes = _holes_of(got_conv, sender)
        if gf is None:
            if holes:
                return (f"{who_s} {_quote(sent)} ({fs} frame {sf}); the {fg} capture "
                        f"{_hole_words(holes, who, receiver)}: no evidence")
            return (f"{who_s} {_quote(sent)} ({fs} frame {sf}); the {fg} capture shows nothing of that "
                    "direction after it (it may just have stopped earlier: no evidence)")
        # the line would have been after the sender's last line there, where the hole is
        past = got_conv is not None and gf not in {f for _t, f in _dialogue(got_conv)[sender]}
        gone = [h for h in _holes_of(got_conv, sender, at_end=True) if past
                and getattr(h, "acked", None) is False and " cut by the snap length," not in h.text]
        why = (f": the {fg} capture has {_hole_bytes(gone)} bytes from the {who} missing there, which the "
               f"{receiver} never acknowledged in its later segments: they never reached it" if gone else "")
        return f"{who_s} {_quote(sent)} ({fs} frame {sf}); it never arrived ({fg} frame {gf}{why})"
    if d["kind"] == "added":
        if sf is None:
            holes = _holes_of(sent_conv, sender)
            if holes:
                return (f"{who_g} {_quote(got)} ({fg} frame {gf}); the {fs} capture "
                        f"{_hole_words(holes, who, receiver)}: no evidence")
            return (f"{who_g} {_quote(got)} ({fg} frame {gf}); the {fs} capture shows nothing of that "
                    "direction after it (it may just have stopped earlier: no evidence)")
        return f"{who_g} {_quote(got)} ({fg} frame {gf}), which {who_s[:-5]} never sent ({fs} frame {sf})"
    return f"{who_s} {_quote(sent)} ({fs} frame {sf}); {who_g} {_quote(got)} ({fg} frame {gf}): {d['kind']}"


def joint_verdict(outside: dict[str, Any], inside: dict[str, Any],
                  differences: Sequence[dict[str, Any]], offset_ns: int | None = None) -> dict[str, Any]:
    """The verdict of a pair. ``caused_by: middlebox`` when a difference touches STARTTLS:
    ``starttls-masked`` (the keyword or the command overwritten with a fill),
    ``starttls-stripped`` (the server's offer or the client's command removed or rewritten),
    ``starttls-refused`` (the client got a refusal of STARTTLS that the server never sent);
    then ``tls-handshake-failed`` when STARTTLS passed and the box killed the handshake (see
    ``_tls_killed``). Differences that are not ``proven`` blame no one.

    ``tampered`` says whether the box changed the dialogue at all. One invariant holds for
    every verdict pcapsmtp gives: ``outcome: tls`` implies ``caused_by: none``. A box that
    tampered with the dialogue while TLS still happened (it stripped the offer, yet the client
    asked anyway) is reported beside the verdict (``tampered`` and the pair's
    ``differences``), never as its cause."""
    v = _joint_verdict(outside, inside, differences, offset_ns)
    v["tampered"] = any(proven(d) for d in differences)
    if v["outcome"] == "tls" and v["caused_by"] != "none":
        base = outside if outside.get("outcome") == "tls" else inside
        reason = base.get("reason") if base.get("outcome") == "tls" else "tls-established"
        v = {"outcome": "tls", "caused_by": "none", "reason": reason, "tampered": v["tampered"],
             "message": "TLS was established all the same, so the box is not the cause; what it "
                        f"changed is reported beside the verdict: {v['message']}"}
    return v


def _single(outside: dict[str, Any], inside: dict[str, Any],
            differences: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The single-capture verdict a pair keeps when the two captures prove no change by the box
    (no difference, none ``proven``, or none touching STARTTLS or TLS): the outside capture's, the
    client's side, where the delivery's fate shows (a downgrade, a refusal the client read), unless

    - it blames a middlebox: the pair shows no such change by the box between the two capture
      points, so the inside's view is taken;
    - it is ``incomplete`` while the inside's is decided, and each line one capture lacks
      (``differences``, none proven) lies in bytes its receiver acknowledged there
      (``_reached``): the outside capture lost or missed what decides (a hole, an early end, a
      late start) and the inside capture shows it; what the inside shows is what happened. A
      line in bytes that nothing shows reached the receiver (a server's answer the client never
      acknowledged) may be what a box kept from it: the outside's ``incomplete`` stays.
    """
    if outside.get("caused_by") == "middlebox":
        return inside
    if outside.get("outcome") in (None, "incomplete") and inside.get("outcome") not in (None, "incomplete") \
            and all(_reached(d, outside, inside) for d in differences):
        return inside
    return outside


def _reached(d: dict[str, Any], outside: dict[str, Any], inside: dict[str, Any]) -> bool:
    """Did the line of difference ``d`` (seen in one capture only) reach its receiver, as far as
    the capture lacking it shows: that capture has holes in the sender's direction, and its
    receiver acknowledged every one of them (the capture lost the bytes, the box did not)."""
    removed = d["kind"] == "removed"
    sender = "S" if d["direction"] == SERVER_TO_CLIENT else "C"
    lacking = (outside if sender == "S" else inside) if removed else (inside if sender == "S" else outside)
    return _holes_reached(_holes_of(lacking, sender))


def _joint_verdict(outside: dict[str, Any], inside: dict[str, Any],
                   differences: Sequence[dict[str, Any]], offset_ns: int | None = None) -> dict[str, Any]:
    views = (f"outside alone: {outside.get('caused_by')} ({outside.get('reason')}); "
             f"inside alone: {inside.get('caused_by')} ({inside.get('reason')})")
    outcome = outside.get("outcome")
    if outcome in (None, "incomplete"):
        outcome = inside.get("outcome") or outcome
    if not differences:
        base = _single(outside, inside)
        return {"outcome": outcome, "caused_by": base.get("caused_by"), "reason": base.get("reason"),
                "message": "the dialogue is identical on both sides: the box changed nothing; " + views}
    if not any(proven(d) for d in differences):
        base = _single(outside, inside, differences)
        if base is outside and outside.get("outcome") == "incomplete":
            outcome = "incomplete"      # what the inside shows may not have reached the client
        n = len(differences)
        return {"outcome": outcome, "caused_by": base.get("caused_by"), "reason": base.get("reason"),
                "message": f"{n} line{'s' if n != 1 else ''} seen on one side only, where the other capture "
                           f"does not show that direction (first: {_describe(differences[0], outside, inside)}): "
                           "no evidence that the box changed anything; " + views}
    masked = stripped = refused = None
    answer = _answer_to_starttls(outside)
    refusal = next((d for d in differences if d["direction"] == SERVER_TO_CLIENT and d["kind"] != "removed"
                    and answer is not None and (d["outside_line"], d["outside_frame"]) == answer
                    and _REFUSAL.match(d["outside_line"] or "")), None)
    for d in differences:
        if d["direction"] == SERVER_TO_CLIENT:
            if _offers_starttls(d["inside_line"]) and not _offers_starttls(d["outside_line"]):
                if d["kind"] == "masked":
                    masked = masked or d
                else:
                    stripped = stripped or d
        elif _is_starttls_cmd(d["outside_line"]) and not _is_starttls_cmd(d["inside_line"]):
            if d["kind"] == "masked":
                masked = masked or d
            else:
                stripped = stripped or d
    if masked is None and refusal is not None and (stripped is None or stripped["direction"] == CLIENT_TO_SERVER):
        refused, stripped = stripped or refusal, None
    if masked is not None:
        reason, hit = "starttls-masked", masked
        what = "the box overwrote STARTTLS with a fill (ESMTP inspection)"
    elif stripped is not None:
        reason, hit = "starttls-stripped", stripped
        what = ("the box removed the server's STARTTLS offer" if stripped["direction"] == SERVER_TO_CLIENT
                else "the box kept the client's STARTTLS from the server")
    elif refused is not None and refusal is not None:
        reason, hit = "starttls-refused", refused
        if refused is refusal:
            what = "the box turned the server's answer to STARTTLS into a refusal"
        else:
            what = ("the client's STARTTLS never reached the server and the box answered it itself: "
                    f"{_describe(refusal, outside, inside)}; and")
    else:
        killed = _tls_killed(outside, inside, differences, offset_ns)
        if killed is not None and outcome != "tls":
            return {"outcome": outcome, "caused_by": "middlebox", "reason": "tls-handshake-failed",
                    "message": f"{killed}; {views}"}
        base = _single(outside, inside)
        n = len(differences)
        return {"outcome": outcome, "caused_by": base.get("caused_by"), "reason": base.get("reason"),
                "message": f"the box changed {n} line{'s' if n != 1 else ''} without touching STARTTLS "
                           f"(first: {_describe(differences[0], outside, inside)}); " + views}
    return {"outcome": outcome, "caused_by": "middlebox", "reason": reason,
            "message": f"{what}: {_describe(hit, outside, inside)}; {views}"}


def proven(d: dict[str, Any]) -> bool:
    """A difference both captures vouch for: a line on each side, or a line missing on one side
    whose capture shows that direction past where the line would have been (a later line, or
    that direction's end). A line after the end of what the other capture holds proves nothing."""
    return d["outside_frame"] is not None and d["inside_frame"] is not None


def unproven_pairs(summary: dict[str, Any]) -> int:
    """The pairs of a report's ``summary`` that are neither identical nor changed by the box:
    their differences are lines only one capture shows, no evidence (``proven``)."""
    return int(summary["pairs"] - summary["identical"] - summary["tampered"])


def _is_tls_record(line: str | None) -> bool:
    """A TLS record of the handshake that a box which kills TLS keeps from the other end; an alert
    is not one: an end that sent it had already ended the handshake, whatever became of it."""
    return line is not None and line.startswith("[TLS ") and not line.startswith("[TLS alert")


def _frames_of(conv: dict[str, Any], side: str) -> set[int]:
    """The frames of ``side``'s lines in ``conv`` (its TLS records, its FIN or RST), not the
    frame ``[capture ends]`` repeats."""
    return {ln.frame for ln in conv.get("_exchange") or ()
            if getattr(ln, "side", None) == side and ln.frame is not None and ln.text != "[capture ends]"}


def _closed_at(conv: dict[str, Any], side: str) -> int | None:
    """When ``side`` first closed or reset its direction in ``conv``'s capture (its clock; -1
    when the line has no time), or None: it never did there."""
    for ln in conv.get("_exchange") or ():
        if getattr(ln, "side", None) == side and ln.text in (FIN_LINE, RST_LINE):
            return ln.ts_ns if getattr(ln, "ts_ns", None) is not None else -1
    return None


def _tls_killed(outside: dict[str, Any], inside: dict[str, Any],
                differences: Sequence[dict[str, Any]], offset_ns: int | None = None) -> str | None:
    """What a box that let STARTTLS and its 220 through did to the TLS handshake, or None. Only
    proven differences count, and only where the evidence is the box's:

    - a RST the client got "from the server" that the server never sent, where the inside
      capture shows the server never closed its direction, or closed it ``COVER_AFTER_NS`` or
      more later (else the box may only have turned the server's own FIN into a RST), and the
      same for a RST the server got "from the client";
    - the client's TLS records (the ClientHello) sent outside and missing inside, where the
      client's direction goes on inside past them (a later line of it, or its FIN or RST; a hole
      there that the server never acknowledged is their absence, ``_unreceived``), or
      the conversation goes on there ``COVER_AFTER_NS`` or more later (not merely the server's
      reset, which may have come first); the same for the server's answer.

    Times are compared with the clock offset ``offset_ns`` (inside minus outside); without it,
    only what the frames show alone counts. The words name the records and both frames."""
    proof = [d for d in differences if proven(d)]
    t_out, t_in = _frame_times(outside), _frame_times(inside)

    def well_after(late: tuple[str, int | None], early: tuple[str, int | None]) -> bool:
        """The event ``late`` came COVER_AFTER_NS or more after ``early``; each is (the capture
        whose clock its time is on, "outside"/"inside"; the time), compared on the outside clock."""
        if offset_ns is None or late[1] is None or early[1] is None or late[1] < 0 or early[1] < 0:
            return False
        t_late = late[1] - (offset_ns if late[0] == "inside" else 0)
        t_early = early[1] - (offset_ns if early[0] == "inside" else 0)
        return t_late >= t_early + COVER_AFTER_NS

    def never_or_later(conv: str, closed: int | None, reset: tuple[str, int | None]) -> bool:
        """An end that never closed its direction in its capture, or closed it only well after
        the reset the other end got: that reset was not its close passed on."""
        return closed is None or well_after((conv, closed), reset)

    to_client = next((d for d in proof if d["direction"] == SERVER_TO_CLIENT and d["kind"] == "added"
                      and d["outside_line"] == RST_LINE
                      and never_or_later("inside", _closed_at(inside, "S"),
                                         ("outside", t_out.get(d["outside_frame"])))), None)
    to_server = next((d for d in proof if d["direction"] == CLIENT_TO_SERVER and d["kind"] == "added"
                      and d["inside_line"] == RST_LINE
                      and never_or_later("outside", _closed_at(outside, "C"),
                                         ("inside", t_in.get(d["inside_frame"])))), None)
    c_in, s_out = _frames_of(inside, "C"), _frames_of(outside, "S")
    dropped_c = [d for d in proof if d["direction"] == CLIENT_TO_SERVER and d["kind"] == "removed"
                 and _is_tls_record(d["outside_line"])
                 and (d["inside_frame"] in c_in
                      or well_after(("inside", t_in.get(d["inside_frame"])),
                                    ("outside", t_out.get(d["outside_frame"]))))]
    dropped_s = [d for d in proof if d["direction"] == SERVER_TO_CLIENT and d["kind"] == "removed"
                 and _is_tls_record(d["inside_line"])
                 and (d["outside_frame"] in s_out
                      or well_after(("outside", t_out.get(d["outside_frame"])),
                                    ("inside", t_in.get(d["inside_frame"]))))]

    def records(ds: list[dict[str, Any]], side: str) -> str:
        return ", ".join((d[f"{side}_line"] or "")[5:].split(":", 1)[0].rstrip("]") for d in ds)

    if to_client is not None or to_server is not None:
        parts = [_describe(d, outside, inside) for d in (to_client, to_server) if d is not None]
        lost = dropped_c + dropped_s
        if lost:
            parts.append(f"and it kept {len(lost)} TLS record{'s' if len(lost) != 1 else ''} from the other "
                         f"end (first: {_describe(lost[0], outside, inside)})")
        return "the box reset the connection itself during the TLS handshake: " + "; ".join(parts)
    def went_on(d: dict[str, Any], missing: str) -> str:
        """How the capture lacking the record shows it never arrived, when not by its direction."""
        frames, t_miss, t_sent = ((c_in, t_in, t_out) if missing == "inside" else (s_out, t_out, t_in))
        other = "outside" if missing == "inside" else "inside"
        f_miss, f_sent = d[f"{missing}_frame"], d[f"{other}_frame"]
        if f_miss in frames or offset_ns is None or t_miss.get(f_miss) is None or t_sent.get(f_sent) is None:
            return ""
        gap = (t_miss[f_miss] - t_sent[f_sent]) + (-offset_ns if missing == "inside" else offset_ns)
        return (f" (the {missing} capture goes on without it: frame {f_miss} is {gap / 1e9:.1f} s after it was "
                "sent)")

    if dropped_c:
        return (f"the box dropped the client's {records(dropped_c, 'outside')} after letting STARTTLS and "
                f"the 220 through: {_describe(dropped_c[0], outside, inside)}{went_on(dropped_c[0], 'inside')}")
    if dropped_s:
        return (f"the box dropped the server's answer to the ClientHello ({records(dropped_s, 'inside')}) "
                f"after letting STARTTLS and the 220 through: {_describe(dropped_s[0], outside, inside)}"
                f"{went_on(dropped_s[0], 'outside')}")
    return None


def tampered(pair: dict[str, Any]) -> bool:
    """The box changed the pair's dialogue: a proven difference (``proven``), not merely lines
    one capture holds after the other stopped."""
    return bool(pair["verdict"]["tampered"])


def diff_conversations(outside: Sequence[dict[str, Any]], inside: Sequence[dict[str, Any]],
                       cfg: DiffConfig | None = None) -> dict[str, Any]:
    """The whole comparison of two captures' conversations (the ``diff --format json`` object,
    without the file names, which the caller adds)."""
    cfg = cfg or DiffConfig()
    pairs, un_o, un_i, offset, anchors = pair_conversations(outside, inside, cfg)
    out_pairs: list[dict[str, Any]] = []
    for i, j, match in pairs:
        o, n = outside[i], inside[j]
        diffs = compare_dialogues(o, n, cfg.max_differences, offset)
        out_pairs.append({"outside": _side(o), "inside": _side(n), "match": match,
                          "identical": not diffs, "differences": diffs,
                          "verdict": joint_verdict(o, n, diffs, offset)})
    unpaired = ([dict(_side(outside[i]), side="outside") for i in un_o]
                + [dict(_side(inside[j]), side="inside") for j in un_i])
    n_t = sum(1 for p in out_pairs if tampered(p))
    return {
        "clock_offset_s": round(offset / 1e9, 3),
        "clock_offset_anchors": anchors,
        "pairs": out_pairs,
        "unpaired": unpaired,
        "summary": {"pairs": len(out_pairs), "identical": sum(1 for p in out_pairs if p["identical"]),
                    "tampered": n_t,
                    "middlebox": sum(1 for p in out_pairs if p["verdict"]["caused_by"] == "middlebox"),
                    "tampered_but_tls": sum(1 for p in out_pairs
                                            if tampered(p) and p["verdict"]["outcome"] == "tls"),
                    "unpaired_outside": len(un_o), "unpaired_inside": len(un_i)},
    }
