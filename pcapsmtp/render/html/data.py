"""The data of the HTML report: pure functions from conversation dicts (analysed with
``keep_exchange=True``) to plain JSON-ready structures that the page embeds once and draws from.

Nothing here escapes for HTML: the template engine (autoescape) and the page's script
(``textContent``, ``createElementNS``) do that. Text quoted from a capture passes through
``render.text.safe`` so that control characters are shown, not sent to the browser raw, and
long lines are cut so that one hostile line cannot make the page unusable.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, UTC
from typing import Any
from collections.abc import Callable, Iterable, Sequence

from pcapsmtp.analysis.exchange import middlebox_role, verdict_line
from pcapsmtp.analysis.reasons import BLAMED
from pcapsmtp.analysis.vantage import proven, unproven_pairs
from pcapsmtp.render.text import endpoint, safe
from pcapsmtp.render.wireshark import tshark_command

__all__ = [
    "CAUSES",
    "MAX_TEXT",
    "OUTCOMES",
    "conversation_data",
    "counts",
    "reason_causes",
    "diff_data",
    "report_data",
    "server_rows",
    "span",
    "timeline",
]

OUTCOMES = ("tls", "plaintext", "aborted", "incomplete")
CAUSES = ("none", "client", "server", "middlebox", "unknown")
#: Characters of one quoted line kept in the page (the rest is counted).
MAX_TEXT = 240
_OFFERED = ("valid", "misplaced", "masked", "absent", "unknown")
#: ``analysis.exchange.middlebox_role`` -> the page's ``mb`` (the ladder's middlebox lifeline)
_BOX: dict[str | None, int] = {"blamed": 1, "named": 2}


def _cut(text: Any, limit: int = MAX_TEXT) -> str:
    s = safe(text)
    if len(s) > limit:
        return s[:limit] + f"\u2026 [{len(s) - limit} more characters]"
    return s


def _kind(side: str, text: str) -> str:
    """How the ladder draws a line: an SMTP arrow, a TLS arrow, a body, a close, a break."""
    if side == "!":
        return "gap" if "missing in the capture" in text else "note"
    if text.startswith(("[TLS", "[not TLS")):
        return "tls"
    if text.startswith("[message content"):
        return "body"
    if text in ("[FIN]", "[RST]", "[capture ends]"):
        return "end"
    if text.startswith("["):
        return "note" if text.startswith("[...") else "other"
    return "smtp"


def conversation_data(conv: dict[str, Any], index: int, file_index: int, t0_ns: int,
                      path: str | None = None,
                      files: dict[str, int] | None = None) -> dict[str, Any]:
    """One conversation, compact (short keys: the page may hold 10,000 of them).

    ``L`` holds the ladder: ``[frame, side, text, ms since the conversation's start, kind,
    findings on the line, 1 if the verdict blames a side with this line, 2 if it is the line
    that decided a verdict blaming no one, else 0]``.

    A conversation of a rotated set (its frame references name their files) has, with
    ``files`` (path -> index in the page's file list), the file of every frame: ``lf`` per
    ladder line (None for a line without a frame), ``fl`` per finding, ``eff`` of the
    evidence frame, ``fbf`` of the earlier attempt's frame. A single file has none of them."""
    ex = conv.get("_exchange") or []
    target = verdict_line(conv, ex)
    # 1: the verdict blames a side and this line is the proof (drawn red); 2: the line that
    # decided a verdict that blames nobody (tls) or cannot blame (incomplete).
    verdict_flag = 1 if conv.get("caused_by") in BLAMED else 2
    start = int(conv.get("started_ns") or 0)
    lines = []
    for ln in ex:
        ts = getattr(ln, "ts_ns", None)
        ms = round((ts - start) / 1e6, 3) if ts and start else None
        text = _cut(ln.text)
        lines.append([ln.frame, ln.side, text, ms, _kind(ln.side, ln.text),
                      [_cut(m, 400) for m in ln.marks], verdict_flag if ln is target else 0])
    st = conv.get("starttls") or {}
    g = conv.get("greeting") or {}
    ef = conv.get("evidence_filter")
    cmx = conv.get("_clients_matrix")
    # a middlebox lifeline: 1 when the verdict blames one, 2 when only a finding names one
    box = _BOX.get(middlebox_role(conv), 0)
    exp = conv.get("explanation")
    located = files is not None and any(getattr(ln, "file", None) for ln in ex)
    evidence_path = conv.get("evidence_file") or path
    data = {
        "i": index, "f": file_index, "s": conv.get("stream"), "ff": conv.get("first_frame"),
        "c": endpoint(conv["client"]), "sv": endpoint(conv["server"]), "sip": conv["server"]["ip"],
        "sn": _cut(conv.get("server_name") or "", 120), "h": _cut(g.get("argument") or "", 120),
        "hc": g.get("command"),
        "t": round((start - t0_ns) / 1e9, 6) if start else None,
        "d": round((int(conv.get("ended_ns") or start) - start) / 1e9, 6) if start else None,
        "ts": _iso(start) if start else None,
        "o": conv.get("outcome"), "cb": conv.get("caused_by"), "r": conv.get("reason"),
        "ca": conv.get("case"),
        "de": _cut(conv.get("detail") or "", 600),
        "of": st.get("offered"), "rq": bool(st.get("requested")), "rc": st.get("reply_code"),
        "x": {k: safe(v) for k, v in exp.items()} if isinstance(exp, dict) else None,
        "tr": conv.get("tlsrpt_result"),
        "fb": conv.get("fallback_of"),
        "fi": [{"code": f.get("code"), "frame": f.get("frame"), "side": f.get("side"),
                "message": _cut(f.get("message"), 600), "rfc": f.get("rfc")}
               for f in conv.get("findings") or ()],
        "ef": conv.get("evidence_frame"), "wf": conv.get("wireshark_filter"), "evf": ef,
        "tc": tshark_command(evidence_path, ef) if ef and evidence_path and path != "-" else None,
        "tca": tshark_command(path, conv["wireshark_filter"]) if conv.get("wireshark_filter")
        and not ef and path and path != "-" else None,
        "cm": [[n, c, _cut(w, 200)] for n, c, w in cmx] if cmx else None,
        "cl": None if cmx else conv.get("clients"),
        "mb": box,
        "L": lines,
    }
    if located and files is not None:
        def at(p: Any) -> int | None:
            return files.get(p) if isinstance(p, str) else None
        data["lf"] = [at(getattr(ln, "file", None)) if ln.frame is not None else None for ln in ex]
        for f, src in zip(data["fi"], conv.get("findings") or ()):
            f["fl"] = at(src.get("file"))
        data["eff"] = at(conv.get("evidence_file"))
        if isinstance(conv.get("fallback_of"), dict):
            data["fbf"] = at(conv["fallback_of"].get("file"))
    return data


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def counts(convs: Sequence[dict[str, Any]]) -> dict[str, list[tuple[str, int]]]:
    """Conversations per outcome and per cause, in a fixed order (then any other value)."""
    out: dict[str, list[tuple[str, int]]] = {}
    for key, order in (("outcome", OUTCOMES), ("caused_by", CAUSES)):
        c = Counter(str(x.get(key)) for x in convs)
        out[key] = [(k, c[k]) for k in order if c[k]] + sorted((k, n) for k, n in c.items() if k not in order)
    out["reason"] = sorted(Counter(str(x.get("reason")) for x in convs).items(), key=lambda kv: (-kv[1], kv[0]))
    return out


def reason_causes(convs: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The side each reason most often blames (the colour of its bar)."""
    by: dict[str, Counter[str]] = {}
    for x in convs:
        by.setdefault(str(x.get("reason")), Counter())[str(x.get("caused_by"))] += 1
    return {r: c.most_common(1)[0][0] for r, c in by.items()}


def span(convs: Sequence[dict[str, Any]]) -> tuple[int, int]:
    starts = [int(c["started_ns"]) for c in convs if c.get("started_ns")]
    ends = [int(c.get("ended_ns") or c["started_ns"]) for c in convs if c.get("started_ns")]
    return (min(starts), max(ends)) if starts else (0, 0)


def server_rows(convs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per server IP: names, conversations, how STARTTLS was offered, outcomes, and whether the
    offer varied between connections (a path-dependent middlebox, or a pool of servers)."""
    rows: dict[str, dict[str, Any]] = {}
    for c in convs:
        ip = c["server"]["ip"]
        r = rows.get(ip)
        if r is None:
            r = rows[ip] = {"ip": ip, "names": set(), "conversations": 0, "offered": Counter(),
                            "outcomes": Counter(), "ports": set()}
        r["conversations"] += 1
        r["ports"].add(c["server"]["port"])
        if c.get("server_name") and len(r["names"]) < 8:
            r["names"].add(_cut(c["server_name"], 120))
        r["offered"][(c.get("starttls") or {}).get("offered") or "unknown"] += 1
        r["outcomes"][c.get("outcome")] += 1
    out = []
    for r in rows.values():
        seen = [k for k in _OFFERED if k != "unknown" and r["offered"][k]]
        out.append({"ip": r["ip"], "names": sorted(r["names"]), "ports": sorted(r["ports"]),
                    "conversations": r["conversations"],
                    "offered": [(k, r["offered"][k]) for k in _OFFERED if r["offered"][k]],
                    "tls": r["outcomes"]["tls"], "plaintext": r["outcomes"]["plaintext"],
                    "other": r["conversations"] - r["outcomes"]["tls"] - r["outcomes"]["plaintext"],
                    "varies": len(seen) > 1})
    out.sort(key=lambda r: (-int(r["conversations"]), str(r["ip"])))
    return out


def timeline(convs: Sequence[dict[str, Any]], width: float = 1000.0, lane_h: float = 7.0,
             max_lanes: int = 24) -> dict[str, Any]:
    """Bars of the conversations over capture time, packed into lanes (greedy; beyond
    ``max_lanes`` bars share the lane that frees first). Coordinates in the SVG's units."""
    t0, t1 = span(convs)
    total = max(t1 - t0, 1)
    min_w = 2.0
    lanes: list[float] = []
    bars: list[dict[str, Any]] = []
    order = sorted(range(len(convs)), key=lambda k: int(convs[k].get("started_ns") or 0))
    for k in order:
        c = convs[k]
        s = int(c.get("started_ns") or t0)
        e = int(c.get("ended_ns") or s)
        x = (s - t0) / total * width
        w = max((e - s) / total * width, min_w)
        lane = next((n for n, end in enumerate(lanes) if end <= x), None)
        if lane is None:
            if len(lanes) < max_lanes:
                lanes.append(0.0)
                lane = len(lanes) - 1
            else:
                lane = min(range(len(lanes)), key=lambda n: lanes[n])
        lanes[lane] = max(lanes[lane], x + w + 1)
        bars.append({"i": k, "x": round(x, 2), "w": round(w, 2), "y": lane * (lane_h + 2),
                     "o": str(c.get("outcome")),
                     "title": f"stream {c.get('stream')} {endpoint(c['server'])} {c.get('reason')}"})
    bars.sort(key=lambda b: b["i"])
    height = max(len(lanes), 1) * (lane_h + 2)
    return {"bars": bars, "width": width, "height": height, "lane_h": lane_h,
            "start": _iso(t0) if t0 else None, "end": _iso(t1) if t1 else None,
            "seconds": round((t1 - t0) / 1e9, 3) if t0 else 0}


class _Shared:
    """Values that many conversations share (the known-clients table of an EHLO reply, the
    explanation of a reason), kept once in the page and referred to by index."""

    def __init__(self) -> None:
        self.tables: dict[str, list[Any]] = {"cm": [], "x": [], "t": []}
        self._index: dict[tuple[str, str], int] = {}
        self._texts: dict[str, int] = {}

    def intern(self, conv: dict[str, Any]) -> dict[str, Any]:
        texts, table = self._texts, self.tables["t"]
        for ln in conv["L"]:
            n = texts.get(ln[2])
            if n is None:
                n = texts[ln[2]] = len(table)
                table.append(ln[2])
            ln[2] = n
        for key in ("cm", "x"):
            table = self.tables[key]
            value = conv.get(key)
            if value is None:
                continue
            k = (key, json.dumps(value, sort_keys=True))
            n = self._index.get(k)
            if n is None:
                n = self._index[k] = len(table)
                table.append(value)
            conv[key] = n
        return conv


def report_data(files: Sequence[dict[str, Any]], convs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Everything the report page shows. ``files``: ``{"path", "packets", "conversations",
    "error"}`` per capture in the order given; ``convs``: the conversations of all files, each with
    ``file`` equal to one of the paths (and ``_clients_matrix`` where computed)."""
    t0, t1 = span(convs)
    index = {f["path"]: n for n, f in enumerate(files)}
    shared = _Shared()
    return {
        "kind": "report",
        "files": [dict(f, path=safe(f["path"]), error=safe(f["error"]) if f.get("error") else None)
                  for f in files],
        "start": _iso(t0) if t0 else None, "end": _iso(t1) if t1 else None,
        "seconds": round((t1 - t0) / 1e9, 3) if t0 else 0,
        "packets": sum(int(f.get("packets") or 0) for f in files),
        "counts": counts(convs),
        "reason_cause": reason_causes(convs),
        "servers": server_rows(convs),
        "timeline": timeline(convs),
        "convs": [shared.intern(conversation_data(c, k, index.get(c.get("file"), 0), t0,
                                                  c.get("file"), index))
                  for k, c in enumerate(convs)],
        "shared": shared.tables,
    }


def _diff_marks(diffs: Sequence[dict[str, Any]], prefix: str) -> dict[tuple[int | None, str], str]:
    """(frame, line as in the exchange) -> kind, for the lines of one side that the box changed: the
    differences both captures vouch for (``analysis.vantage.proven``), not a line one capture lacks
    where it shows nothing of that direction (it stopped earlier, or lost bytes there)."""
    out: dict[tuple[int | None, str], str] = {}
    for d in diffs:
        line = d.get(f"{prefix}_line")
        if line is not None and proven(d):
            out[(d.get(f"{prefix}_frame"), line)] = d["kind"]
    return out


def _diff_summary(s: dict[str, Any]) -> dict[str, Any]:
    """The report's summary, with ``unproven``: the pairs that are neither identical nor changed by
    the box (lines only one capture shows, no evidence), as the text report counts them."""
    if not s:
        return s
    return dict(s, unproven=unproven_pairs(s))


def _text_redactor(redactor: Any, *convs: dict[str, Any] | None) -> Callable[[Any], Any]:
    """Pseudonyms for text quoted from a pair (difference lines, the verdict, the pairing's
    evidence), with the names both sides' conversations give (``render.redact.Redactor``)."""
    if redactor is None:
        return lambda text: text
    keys = ("greeting", "banner", "server_name", "ehlo_reply", "client", "server")
    contexts = [{k: c.get(k) for k in keys if k in c} for c in convs if c is not None]

    def red(text: Any) -> Any:
        if not isinstance(text, str):
            return text
        for ctx in contexts:
            text = redactor.redact(dict(ctx, lines=[text]))["lines"][0]
        return text
    return red


def diff_data(report: dict[str, Any], outside: Sequence[dict[str, Any]],
              inside: Sequence[dict[str, Any]], redactor: Any = None) -> dict[str, Any]:
    """The ``diff`` page: each pair with both vantage points' ladders; the lines the box changed
    carry the kind of change (``rewritten``, ``masked``, ``removed``, ``added``). Per pair,
    ``tampered``: the box changed at least one line (the joint verdict's ``tampered``); each
    difference's ``pv``: both captures vouch for it (``analysis.vantage.proven``), else it is a
    line one capture lacks where it does not show that direction, listed apart as no evidence.
    The summary adds ``unproven``: the pairs with such lines only.

    ``redactor`` (a ``render.redact.Redactor``): the page shows pseudonyms; the pairing and the
    changed lines were found on the real text, which the page does not hold."""
    def find(convs: Sequence[dict[str, Any]], side: dict[str, Any]) -> dict[str, Any] | None:
        return next((c for c in convs if c.get("stream") == side.get("stream")
                     and c.get("first_frame") == side.get("first_frame")), None)

    shared = _Shared()
    every = list(outside) + list(inside)
    t0, t1 = span(every)
    pairs = []
    for n, p in enumerate(report.get("pairs") or ()):
        o, i = find(outside, p["outside"]), find(inside, p["inside"])
        red = _text_redactor(redactor, o, i)
        views: list[dict[str, Any] | None] = []
        for which, conv, file in (("outside", o, report.get("outside_file")),
                                  ("inside", i, report.get("inside_file"))):
            if conv is None:
                views.append(None)
                continue
            shown = redactor.redact(conv) if redactor is not None else conv
            d = conversation_data(shown, n, 0 if which == "outside" else 1, t0, file)
            marks = _diff_marks(p.get("differences") or (), which)   # found on the real lines
            for ln, src in zip(d["L"], conv.get("_exchange") or ()):
                ln[6] = 0   # one side alone may blame someone else: the pair's verdict rules here
                kind = marks.get((src.frame, src.text))
                ln.append(kind or "")
            views.append(shared.intern(d))
        v = p["verdict"]
        pairs.append({
            "n": n, "tampered": bool(v.get("tampered")), "o": v.get("outcome"),
            "cb": v.get("caused_by"),
            "r": v.get("reason"), "msg": _cut(red(v.get("message")), 1200),
            "match": {"method": p["match"].get("method"), "score": p["match"].get("score"),
                      "confidence": p["match"].get("confidence"),
                      "evidence": [_cut(red(e), 300) for e in p["match"].get("evidence") or ()]},
            "diffs": [{"direction": d["direction"], "kind": d["kind"],
                       "of": d["outside_frame"],
                       "ol": None if d["outside_line"] is None else _cut(red(d["outside_line"])),
                       "if": d["inside_frame"],
                       "il": None if d["inside_line"] is None else _cut(red(d["inside_line"])),
                       "pv": proven(d)}
                      for d in p.get("differences") or ()],
            "views": views,
        })
    def ep(e: Any) -> str:
        if not isinstance(e, dict) or "ip" not in e:
            return "?"
        if redactor is not None and redactor.ips:
            e = dict(e, ip=redactor.ip(e["ip"]))
        return endpoint(e)

    unpaired = [{"side": u["side"], "s": u.get("stream"), "ff": u.get("first_frame"),
                 "c": ep(u.get("client")), "sv": ep(u.get("server")),
                 "o": u.get("outcome"), "cb": u.get("caused_by"), "r": u.get("reason")}
                for u in report.get("unpaired") or ()]
    return {
        "kind": "diff",
        "files": [{"path": safe(report.get("outside_file")), "role": "outside",
                   "conversations": len(outside)},
                  {"path": safe(report.get("inside_file")), "role": "inside", "conversations": len(inside)}],
        "start": _iso(t0) if t0 else None, "end": _iso(t1) if t1 else None,
        "clock_offset_s": report.get("clock_offset_s"), "anchors": report.get("clock_offset_anchors"),
        "summary": _diff_summary(report.get("summary") or {}),
        "counts": counts([{"outcome": p["o"], "caused_by": p["cb"], "reason": p["r"]} for p in pairs]),
        "reason_cause": reason_causes([{"caused_by": p["cb"], "reason": p["r"]} for p in pairs]),
        "pairs": pairs, "unpaired": unpaired, "shared": shared.tables,
    }
