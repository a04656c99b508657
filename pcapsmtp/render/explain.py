"""``pcapsmtp explain``: the exchange as text with the guilty line marked, two sentences (what a
strict client does, what to ask of whom), the client table and the Wireshark references."""
from __future__ import annotations

import os
from typing import Any

from pcapsmtp.analysis.exchange import verdict_line
from pcapsmtp.render.fit import Col, fit_table, wrap_text
from pcapsmtp.render.text import endpoint as _ep
from pcapsmtp.render.text import safe
from pcapsmtp.render.wireshark import tshark_command

__all__ = ["render_explain", "render_clients"]


def render_clients(clients: dict[str, list[str]] | None, matrix: list[tuple[str, str, str]] | None = None,
                   *, width: int | None = None) -> str:
    if matrix and len({cell for _, cell, _ in matrix}) == 1:
        what = {"Y": "see STARTTLS", "N": "downgrade", "X": "fail",
                "?": "depend on an EHLO reply not in the capture"}[matrix[0][1]]
        return f"  all {len(matrix)} known clients {what} with this reply"
    if matrix:
        return fit_table([Col("client"), Col("with this reply"), Col("why", wrap=24)],
                         [[n, {"Y": "sees STARTTLS", "N": "downgrades", "X": "error, no mail",
                               "?": "unknown"}[c],
                           safe(w)] for n, c, w in matrix], width)
    if not clients:
        return ""
    parts = []
    for key, label in (("see_starttls", "would see STARTTLS"), ("downgrade", "would downgrade"),
                       ("error", "would fail"), ("unknown", "cannot tell from this capture")):
        if clients.get(key):
            parts.append(wrap_text(f"  {label}: {', '.join(clients[key])}", width, "    "))
    return "\n".join(parts)


def render_explain(conv: dict[str, Any], *, path: str | None = None, width: int | None = None) -> str:
    """The exchange, the verdict and what to do, for a person; lines wrap at ``width`` (None: never)."""
    out: list[str] = []
    out.append(f"stream {conv['stream']}: {_ep(conv['client'])} -> {_ep(conv['server'])}, "
               f"first frame {conv['first_frame']}")
    # (in the order of the dialogue: build_exchange puts a reply a hole closed late where it
    # starts)
    ex = conv.get("_exchange") or []
    # The verdict is marked here, not when the exchange was built: a later step (tls-fallback)
    # may have changed it.
    verdict_mark = f"verdict {conv['reason']}: {conv.get('detail', '')}"
    target = verdict_line(conv, ex)
    def label(ln: Any) -> str:
        # a rotated set: a frame in another file than the conversation's first is FILE:N
        if ln.frame is None:
            return ""
        if ln.file and ln.file != conv.get("file"):
            return f"{safe(os.path.basename(ln.file))}:{ln.frame}"
        return str(ln.frame)

    fw = max((len(label(x)) for x in ex if x.frame is not None), default=1)
    for ln in ex:
        frame = label(ln)
        arrow = {"C": "C:", "S": "S:", "!": "  "}.get(ln.side, "  ")
        text = safe(ln.text)
        if len(text) > 160:
            text = text[:157] + "..."
        row = f"  {frame:>{fw}}  {arrow} {text}"
        hang = " " * (fw + 7)
        marks = ln.marks + ([verdict_mark] if ln is target else [])
        if marks and width is not None and len(row) + 8 + len(safe(marks[0])) > width:
            # a narrow terminal: the dialogue line whole, each mark on its own lines below it
            out.append(wrap_text(row, width, hang))
            for m in marks:
                out.append(wrap_text(hang + "<--- " + safe(m), width, hang + "     "))
        elif marks:
            out.append(row + "   <--- " + safe(marks[0]))
            for m in marks[1:]:
                out.append(" " * (fw + 8) + "<--- " + safe(m))
        else:
            out.append(wrap_text(row, width, hang))
    caused = conv["caused_by"]
    who = {"none": "nobody", "unknown": "unknown"}.get(caused, f"the {caused}")
    out.append("")
    out.append(wrap_text(f"Verdict: {conv['outcome']}, caused by {who} ({conv['reason']})"
                         + (f": {safe(conv['detail'])}" if conv.get("detail") else ""), width, "  "))
    if conv.get("fallback_of"):
        fb = conv["fallback_of"]
        out.append(wrap_text(f"  This retry follows the {fb['reason']} of stream {fb['stream']}"
                             + (f" (frame {fb['frame']})" if fb.get("frame") else "") + ".", width,
                             "  "))
    exp = conv.get("explanation")
    if exp:
        out.append(wrap_text(f"What a strict client does: {exp['client_does']}", width, "  "))
        out.append(wrap_text(f"What to ask, and of whom: {exp['ask']}", width, "  "))
    if conv.get("tlsrpt_result"):
        out.append(f"TLS-RPT (RFC 8460) result type: {conv['tlsrpt_result']}")
    cl = conv.get("_clients_matrix")
    if cl or conv.get("clients"):
        out.append("")
        out.append("Known clients facing this banner:" if conv.get("_masked_banner_helo")
                   else "Known clients facing this EHLO reply:")
        out.append(render_clients(conv.get("clients"), cl, width=width))
    out.append("")
    out.append(wrap_text(f"Wireshark: {conv.get('wireshark_filter', '')}", width, "  "))
    if conv.get("evidence_filter"):
        out.append(f"Evidence frames: {conv['evidence_filter']}")
        if path and path != "-":
            out.append(wrap_text(f"  {tshark_command(path, conv['evidence_filter'])}", width, "    "))
    return "\n".join(out)
