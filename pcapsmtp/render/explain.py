"""``pcapsmtp explain``: the exchange as text with the guilty line marked, two sentences (what a
strict client does, what to ask of whom), the client table and the Wireshark references."""
from __future__ import annotations

from typing import Any

from pcapsmtp.render.text import endpoint as _ep
from pcapsmtp.render.text import safe
from pcapsmtp.render.wireshark import tshark_command

__all__ = ["render_explain", "render_clients"]


def render_clients(clients: dict[str, list[str]] | None, matrix: list[tuple[str, str, str]] | None = None
                   ) -> str:
    if matrix and len({cell for _, cell, _ in matrix}) == 1:
        what = {"Y": "see STARTTLS", "N": "downgrade", "X": "fail"}[matrix[0][1]]
        return f"  all {len(matrix)} known clients {what} with this reply"
    if matrix:
        from tabulate import tabulate
        return str(tabulate([[n, {"Y": "sees STARTTLS", "N": "downgrades", "X": "error, no mail"}[c],
                              safe(w)] for n, c, w in matrix],
                            headers=["client", "with this reply", "why"], tablefmt="simple"))
    if not clients:
        return ""
    parts = []
    for key, label in (("see_starttls", "would see STARTTLS"), ("downgrade", "would downgrade"),
                       ("error", "would fail")):
        if clients.get(key):
            parts.append(f"  {label}: {', '.join(clients[key])}")
    return "\n".join(parts)


def render_explain(conv: dict[str, Any], *, path: str | None = None) -> str:
    out: list[str] = []
    out.append(f"stream {conv['stream']}: {_ep(conv['client'])} -> {_ep(conv['server'])}, "
               f"first frame {conv['first_frame']}")
    ex = conv.get("_exchange") or []
    # The verdict is marked here, not when the exchange was built: a later step (tls-fallback)
    # may have changed it.
    verdict_mark = f"verdict {conv['reason']}: {conv.get('detail', '')}"
    at = conv.get("_evidence_at")
    side = {"client": "C", "server": "S"}.get(at[0], "") if at else ""
    target = next((ln for ln in ex if at and ln.offset == at[1] and ln.side == side
                   and ln.frame == conv.get("evidence_frame")), None)
    target = target or next((ln for ln in ex if conv.get("evidence_frame") is not None
                             and ln.frame == conv["evidence_frame"]), None)
    width = max((len(str(x.frame)) for x in ex if x.frame is not None), default=1)
    for ln in ex:
        frame = str(ln.frame) if ln.frame is not None else ""
        arrow = {"C": "C:", "S": "S:", "!": "  "}.get(ln.side, "  ")
        text = safe(ln.text)
        if len(text) > 160:
            text = text[:157] + "..."
        row = f"  {frame:>{width}}  {arrow} {text}"
        marks = ln.marks + ([verdict_mark] if ln is target else [])
        if marks:
            row += "   <--- " + safe(marks[0])
            out.append(row)
            for m in marks[1:]:
                out.append(" " * (width + 8) + "<--- " + safe(m))
        else:
            out.append(row)
    caused = conv["caused_by"]
    who = {"none": "nobody", "unknown": "unknown"}.get(caused, f"the {caused}")
    out.append("")
    out.append(f"Verdict: {conv['outcome']}, caused by {who} ({conv['reason']})"
               + (f": {safe(conv['detail'])}" if conv.get("detail") else ""))
    if conv.get("fallback_of"):
        fb = conv["fallback_of"]
        out.append(f"  This retry follows the {fb['reason']} of stream {fb['stream']}"
                   + (f" (frame {fb['frame']})" if fb.get("frame") else "") + ".")
    exp = conv.get("explanation")
    if exp:
        out.append(f"What a strict client does: {exp['client_does']}")
        out.append(f"What to ask, and of whom: {exp['ask']}")
    if conv.get("tlsrpt_result"):
        out.append(f"TLS-RPT (RFC 8460) result type: {conv['tlsrpt_result']}")
    cl = conv.get("_clients_matrix")
    if cl or conv.get("clients"):
        out.append("")
        out.append("Known clients facing this EHLO reply:")
        out.append(render_clients(conv.get("clients"), cl))
    out.append("")
    out.append(f"Wireshark: {conv.get('wireshark_filter', '')}")
    if conv.get("evidence_filter"):
        out.append(f"Evidence frames: {conv['evidence_filter']}")
        if path and path != "-":
            out.append(f"  {tshark_command(path, conv['evidence_filter'])}")
    return "\n".join(out)
