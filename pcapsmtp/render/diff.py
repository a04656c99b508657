"""Output of ``pcapsmtp diff``: a JSON document or a text report for a person. Pure
functions of the report dict that ``pcapsmtp.analysis.vantage.diff_conversations`` builds (plus the two
file names). Text from a capture is escaped before it reaches a terminal."""
from __future__ import annotations

import json
from typing import Any

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


def _line(text: str | None) -> str:
    return "-" if text is None else safe(text)


def render_table(report: dict[str, Any]) -> str:
    from tabulate import tabulate

    out: list[str] = [f"outside: {safe(report.get('outside_file'))}",
                      f"inside:  {safe(report.get('inside_file'))}",
                      f"clock offset (inside - outside): {report['clock_offset_s']:+.3f} s"
                      + (f" (estimated from {report['clock_offset_anchors']} anchor(s))"
                         if report.get("clock_offset_anchors") else "")]
    s = report["summary"]
    out.append(f"{s['pairs']} paired deliver{'y' if s['pairs'] == 1 else 'ies'}: {s['identical']} identical, "
               f"{s['tampered']} changed by the box ({s['middlebox']} blamed on it); unpaired: "
               f"{s['unpaired_outside']} outside, {s['unpaired_inside']} inside")
    for n, p in enumerate(report["pairs"], 1):
        m, v = p["match"], p["verdict"]
        out.append("")
        out.append(f"pair {n}: outside {_conv(p['outside'])}")
        out.append(f"        inside  {_conv(p['inside'])}")
        out.append(f"  match: {m['method']}, score {m['score']:.2f} ({m['confidence']}; runner-up "
                   f"{m['runner_up']:.2f}): " + "; ".join(safe(e) for e in m["evidence"]))
        out.append(f"  verdict: {v['outcome']}, caused by {v['caused_by']}, {v['reason']}"
                   + ("" if p["identical"] else "  [CHANGED BY THE BOX]"))
        out.append(f"    {safe(v['message'])}")
        out.append(f"  outside alone: {p['outside']['caused_by']} ({p['outside']['reason']}); "
                   f"inside alone: {p['inside']['caused_by']} ({p['inside']['reason']})")
        if p["differences"]:
            rows = [[d["direction"], d["kind"], d["outside_frame"] if d["outside_frame"] is not None else "-",
                     _line(d["outside_line"])[:60], d["inside_frame"] if d["inside_frame"] is not None else "-",
                     _line(d["inside_line"])[:60]] for d in p["differences"]]
            table = tabulate(rows, headers=["direction", "kind", "out frame", "outside line", "in frame",
                                            "inside line"], tablefmt="simple")
            out += ["  " + ln for ln in table.splitlines()]
        else:
            out.append("  identical: every line arrived as it was sent, both ways")
    if report["unpaired"]:
        out.append("")
        out.append("unpaired (seen on one side only):")
        rows = [[u["side"], u["stream"], _ep(u["client"]), _ep(u["server"]), u["first_frame"], u["outcome"],
                 u["caused_by"], u["reason"]] for u in report["unpaired"]]
        table = tabulate(rows, headers=["side", "stream", "client", "server", "frame", "outcome", "caused by",
                                        "reason"], tablefmt="simple")
        out += ["  " + ln for ln in table.splitlines()]
    return "\n".join(out)
