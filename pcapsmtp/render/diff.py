"""Output of ``pcapsmtp diff``: a JSON document or a text report for a person. Pure
functions of the report dict that ``pcapsmtp.analysis.vantage.diff_conversations`` builds (plus the two
file names). Text from a capture is escaped before it reaches a terminal."""
from __future__ import annotations

import json
from typing import Any

from pcapsmtp.analysis.vantage import unproven_pairs
from pcapsmtp.render.fit import Col, fit_table, wrap_text
from pcapsmtp.render.text import endpoint, safe

__all__ = ["render_json", "render_table"]


def render_json(report: dict[str, Any]) -> str:
    """The whole report as one JSON object (indented; non-ASCII escaped)."""
    return json.dumps(report, ensure_ascii=True, indent=2, default=str)


def _ep(e: dict[str, Any] | None) -> str:
    return endpoint(e) if e and "ip" in e else "?"


def _conv(side: dict[str, Any]) -> str:
    return (f"stream {side['stream']} {_ep(side['client'])} -> {_ep(side['server'])} "
            f"(frame {side['first_frame']})")


def _reason(side: dict[str, Any]) -> str:
    """A side's reason, with the case the verdict names (``tls-handshake-failed, case server-silent``)."""
    return str(side["reason"]) + (f", case {side['case']}" if side.get("case") else "")


def _line(text: str | None) -> str:
    return "-" if text is None else safe(text)


def render_table(report: dict[str, Any], width: int | None = None) -> str:
    """The report for a person, lines wrapped and tables fitted to ``width`` (None: whole)."""
    out: list[str] = [f"outside: {safe(report.get('outside_file'))}",
                      f"inside:  {safe(report.get('inside_file'))}",
                      f"clock offset (inside - outside): {report['clock_offset_s']:+.3f} s"
                      + (f" (estimated from {report['clock_offset_anchors']} anchor(s))"
                         if report.get("clock_offset_anchors") else "")]
    s = report["summary"]
    unproven = unproven_pairs(s)
    out.append(wrap_text(f"{s['pairs']} paired deliver{'y' if s['pairs'] == 1 else 'ies'}: "
                         f"{s['identical']} identical, {s['tampered']} changed by the box "
                         f"({s['middlebox']} blamed on it)"
                         + (f", {unproven} with lines only one capture shows (no evidence)" if unproven else "")
                         + f"; unpaired: {s['unpaired_outside']} "
                         f"outside, {s['unpaired_inside']} inside", width, "  "))
    for n, p in enumerate(report["pairs"], 1):
        m, v = p["match"], p["verdict"]
        out.append("")
        out.append(f"pair {n}: outside {_conv(p['outside'])}")
        out.append(f"        inside  {_conv(p['inside'])}")
        out.append(wrap_text(f"  match: {m['method']}, score {m['score']:.2f} ({m['confidence']}; "
                             f"runner-up {m['runner_up']:.2f}): "
                             + "; ".join(safe(e) for e in m["evidence"]), width, "    "))
        out.append(wrap_text(f"  verdict: {v['outcome']}, caused by {v['caused_by']}, {v['reason']}"
                             + ("" if not v.get("tampered") else
                                "  [CHANGED BY THE BOX, TLS all the same: not the cause]"
                                if v["outcome"] == "tls" else "  [CHANGED BY THE BOX]"), width, "    "))
        out.append(wrap_text(f"    {safe(v['message'])}", width, "    "))
        out.append(wrap_text(f"  outside alone: {p['outside']['caused_by']} ({_reason(p['outside'])}); "
                             f"inside alone: {p['inside']['caused_by']} ({_reason(p['inside'])})", width, "    "))
        if p["differences"]:
            rows = [[d["direction"], d["kind"], d["outside_frame"] if d["outside_frame"] is not None else "-",
                     _line(d["outside_line"]), d["inside_frame"] if d["inside_frame"] is not None else "-",
                     _line(d["inside_line"])] for d in p["differences"]]
            out.append(fit_table([Col("direction", drop=1), Col("kind"), Col("out frame", right=True),
                                  Col("outside line", wrap=16), Col("in frame", right=True),
                                  Col("inside line", wrap=16)], rows, width, indent=2))
        else:
            out.append("  identical: every line arrived as it was sent, both ways")
    if report["unpaired"]:
        out.append("")
        out.append("unpaired (seen on one side only):")
        rows = [[u["side"], u["stream"], _ep(u["client"]), _ep(u["server"]), u["first_frame"], u["outcome"],
                 u["caused_by"], u["reason"]] for u in report["unpaired"]]
        out.append(fit_table([Col("side"), Col("stream", right=True), Col("client", drop=2),
                              Col("server", drop=1), Col("frame", right=True), Col("outcome"),
                              Col("caused by"), Col("reason", wrap=14)], rows, width, indent=2))
    return "\n".join(out)
