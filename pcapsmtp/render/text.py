"""Table, JSON Lines, CSV and summary output: pure functions of the conversation dicts.

Text from a capture is untrusted: every control character is escaped before it reaches a
terminal (``safe``)."""
from __future__ import annotations

import csv
import io
import json
import re
from typing import Any, Iterable

from pcapsmtp.render.fit import Col, fit_table, wrap_text

__all__ = ["safe", "render_jsonl", "render_table", "table_row", "TABLE_HEADERS", "TABLE_COLS",
           "render_csv", "CSV_FIELDS", "ROTATED_CSV_FIELDS", "render_summary", "render_findings", "json_ready"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    return {"\r": "\\r", "\n": "\\n", "\t": "\\t"}.get(c, f"\\x{ord(c):02x}" if ord(c) < 256
                                                     else f"\\u{ord(c):04x}")


def safe(text: Any) -> str:
    """``text`` with every control character (ESC, CR, BS, BEL, bidi overrides...) escaped."""
    s = "" if text is None else str(text)
    if s.isascii() and s.isprintable():
        # (the usual case, tested in C: an ASCII text is printable exactly when it has none of
        # the ASCII characters of ``_CONTROL``, and ``_CONTROL``'s others are not ASCII)
        return s
    return _CONTROL.sub(_escape_char, s)


def json_ready(conv: dict[str, Any]) -> dict[str, Any]:
    """The conversation without internal keys (those starting with '_')."""
    return {k: v for k, v in conv.items() if not k.startswith("_")}


#: One encoder for every line (``json.dumps`` with options builds a new one per call). A
#: conversation is a tree of fresh dicts and lists (no value refers back to its container), so
#: the encoder does not check for cycles (a set of every container's id per line).
_JSONL = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": "), default=str,
                          check_circular=False)


class _EncodedStrings(dict):  # type: ignore[type-arg]
    """The JSON text (``json.encoder.encode_basestring_ascii``) of the strings encoded so far,
    each key and string value of a line looked up here by the encoder (``_LINE``): most of a
    line's strings are the same from one conversation to the next (every key, the outcome and
    reason, the explanation's texts, the client names), so each is escaped once, not once per
    line. Bounded: emptied when full, and a long string is escaped but not kept."""

    __slots__ = ()

    def __missing__(self, s: str) -> str:
        text = _encode_ascii(s)
        if len(s) <= _MEMO_CHARS:
            if len(self) >= _MEMO_MAX:
                self.clear()
            self[s] = text
        return text


_MEMO_MAX = 4096
_MEMO_CHARS = 512
_encode_ascii = json.encoder.encode_basestring_ascii


#: What the made encoder must encode as ``_JSONL.encode`` does before it is used: a string with
#: a control character, a quote, a backslash, non-ASCII (BMP and astral) and a line separator,
#: floats (NaN and the infinities included), ints, booleans, None and nesting. A Python whose
#: ``c_make_encoder`` takes its arguments in another order (``allow_nan`` or the string encoder
#: in another place, say) or formats floats otherwise fails it, and the lines are then
#: ``_JSONL.encode``'s.
_CHECK_SAMPLE: dict[str, Any] = {
    "a": ["b", 1, None], "s": "q\"\\\x01\t\x7f\u00e9\u2028\U0001f600 end", "f": [0.1, -1.5e300, 2.0],
    "n": float("nan"), "i": [float("inf"), float("-inf")], "t": [True, False], "\u00e9\n": {}}


def _line_encoder(make: Any = None) -> Any:
    """The C encoder ``_JSONL.encode`` makes for each line, made once, with the strings' JSON
    looked up in ``_EncodedStrings`` (a C call per string, no Python one: the dictionary's
    ``__getitem__``); None where the C encoder is missing, takes other arguments or encodes
    ``_CHECK_SAMPLE`` otherwise than the ``json`` module (the line is then ``_JSONL.encode``'s,
    which gives the same text). ``make`` stands for ``json.encoder.c_make_encoder`` (tests)."""
    if make is None:
        make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        # CPython 3.11's order: markers, default, encoder, indent, key_separator,
        # item_separator, sort_keys, skipkeys, allow_nan
        enc = make(None, _JSONL.default, _EncodedStrings().__getitem__, None,
                   _JSONL.key_separator, _JSONL.item_separator, False, False, True)
        got = "".join(enc(_CHECK_SAMPLE, 0))
    except (TypeError, ValueError):
        return None
    return enc if got == _JSONL.encode(_CHECK_SAMPLE) else None


_LINE = _line_encoder()


def render_jsonl(conv: dict[str, Any]) -> str:
    """One JSON object on one line (non-ASCII escaped, so no control character survives)."""
    # No key that sorts at or after "a" starts with "_": when none sorts before (every key of
    # the contract starts with a small letter), there is no internal key to leave out and the
    # dict is encoded as it is, without a copy.
    obj = conv if min(conv, default="a") >= "a" else json_ready(conv)
    if _LINE is None:
        return _JSONL.encode(obj)
    return "".join(_LINE(obj, 0))


TABLE_HEADERS = ["stream", "client", "server", "server name", "STARTTLS offered", "requested",
                 "answer", "outcome", "caused by", "reason"]

#: The conversation table's columns; on a narrow terminal ``requested``, ``answer``, ``client``,
#: ``server name`` and then ``STARTTLS offered`` are left out, in that order (README.md).
TABLE_COLS = [Col("stream", right=True), Col("client", drop=3), Col("server"),
              Col("server name", drop=2, wrap=12), Col("STARTTLS offered", drop=1),
              Col("requested", drop=5), Col("answer", drop=4, right=True), Col("outcome"),
              Col("caused by"), Col("reason", wrap=14)]
FILE_COL = Col("file", wrap=14)


def endpoint(e: dict[str, Any]) -> str:
    """``ip:port`` (``[ip]:port`` for IPv6) of a contract endpoint dict."""
    ip = e["ip"]
    return f"[{ip}]:{e['port']}" if ":" in ip else f"{ip}:{e['port']}"


def table_row(conv: dict[str, Any]) -> list[str]:
    st = conv["starttls"]
    return [str(conv["stream"]), endpoint(conv["client"]), endpoint(conv["server"]),
            safe(conv.get("server_name") or "-")[:40], st["offered"],
            "yes" if st["requested"] else "no",
            str(st["reply_code"]) if st["reply_code"] is not None else "-",
            conv["outcome"], conv["caused_by"], conv["reason"]]


def render_table(convs: Iterable[dict[str, Any]], *, with_file: bool = False,
                 width: int | None = None) -> str:
    """One row per conversation, fitted to ``width`` columns (None: every column whole)."""
    rows = []
    cols = ([FILE_COL] if with_file else []) + TABLE_COLS
    for c in convs:
        rows.append(([safe(c["file"])] if with_file else []) + table_row(c))
    if not rows:
        return "no SMTP conversation found"
    return fit_table(cols, rows, width)


def render_findings(convs: Iterable[dict[str, Any]], *, with_file: bool = False,
                    width: int | None = None) -> str:
    """The findings of every conversation, then each conversation's Wireshark filter; with
    ``with_file`` each row names its capture file: in a rotated set, the file of the
    finding's frame (where its display filter applies), and the evidence frames' file."""
    convs = list(convs)
    lead = [FILE_COL] if with_file else []
    rows = []
    for c in convs:
        for f in c["findings"]:
            rows.append(([safe(f.get("file") or c["file"])] if with_file else []) + [
                str(c["stream"]), f["code"], f["side"],
                str(f["frame"]) if f["frame"] is not None else "-",
                safe(f.get("rfc") or ""), safe(f["message"]),
                f.get("wireshark_filter", "")])
    out = []
    if rows:
        out.append(fit_table(lead + [
            Col("stream", right=True), Col("finding", wrap=16), Col("side", drop=1),
            Col("frame", right=True), Col("RFC", drop=2, wrap=8), Col("what", wrap=20),
            Col("display filter", drop=3, wrap=14)], rows, width))
    flt = [([safe(c["file"])] if with_file else []) +
           [str(c["stream"]), c.get("wireshark_filter", ""), _evidence_cell(c)]
           for c in convs]
    if flt:
        out.append(fit_table(lead + [Col("stream", right=True),
                                     Col("conversation filter", wrap=24),
                                     Col("evidence frames", wrap=14)], flt, width))
    return "\n\n".join(out)


def _evidence_cell(c: dict[str, Any]) -> str:
    """The evidence frames' display filter, with the file it applies to when that is not the
    row's (a rotated set whose conversation crosses into another piece)."""
    ef = c.get("evidence_filter") or ""
    if ef and c.get("evidence_file") and c["evidence_file"] != c["file"]:
        return f"{ef} (in {safe(c['evidence_file'])})"
    return ef


CSV_FIELDS = ["file", "stream", "first_frame", "client_ip", "client_port", "server_ip",
              "server_port", "server_name", "banner", "greeting", "starttls_offered",
              "starttls_requested", "starttls_reply_code", "tls_established", "outcome",
              "caused_by", "reason", "evidence_frame", "findings", "wireshark_filter"]


#: The columns of a rotated set (``analyze --rotated`` over several files): ``evidence_file``
#: names the file of ``evidence_frame``, as the JSON's key of that name does.
ROTATED_CSV_FIELDS = CSV_FIELDS[:CSV_FIELDS.index("evidence_frame") + 1] + ["evidence_file"] + \
    CSV_FIELDS[CSV_FIELDS.index("evidence_frame") + 1:]


def _csv_finding(f: dict[str, Any]) -> str:
    """``code@frame``, or ``code@FILE:frame`` when the frame's file is named (a rotated set)."""
    if f.get("file") is not None:
        return f"{f['code']}@{safe(f['file'])}:{f['frame']}"
    return f"{f['code']}@{f['frame']}"


def render_csv(convs: Iterable[dict[str, Any]], *, header: bool = True,
               rotated: bool = False) -> str:
    """CSV rows (docs/output.md). ``rotated``: the conversations come from a rotated set
    (their frame references carry files): the ``evidence_file`` column is added and each
    finding names its file."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(ROTATED_CSV_FIELDS if rotated else CSV_FIELDS)
    for c in convs:
        g = c.get("greeting") or {}
        row = [
            safe(c["file"]), c["stream"], c["first_frame"], c["client"]["ip"], c["client"]["port"],
            c["server"]["ip"], c["server"]["port"], safe(c.get("server_name") or ""),
            safe(c.get("banner") or ""),
            safe(f"{g.get('command', '')} {g.get('argument', '')}".strip()),
            c["starttls"]["offered"], str(c["starttls"]["requested"]).lower(),
            c["starttls"]["reply_code"] if c["starttls"]["reply_code"] is not None else "",
            str(c["tls"]["established"]).lower(), c["outcome"], c["caused_by"], c["reason"],
            c.get("evidence_frame") if c.get("evidence_frame") is not None else "",
            ";".join(_csv_finding(f) for f in c["findings"]),
            c.get("wireshark_filter", ""),
        ]
        if rotated:
            row.insert(ROTATED_CSV_FIELDS.index("evidence_file"), safe(c.get("evidence_file") or ""))
        w.writerow(row)
    return buf.getvalue()


def render_summary(summary: dict[str, Any], *, width: int | None = None) -> str:
    """The summary for a person: totals, reasons, and the servers that downgraded or whose
    offer varies, fitted to ``width``."""
    of = (f" selected of {summary['selected_from']}" if "selected_from" in summary else "")
    lines = [wrap_text(f"{summary.get('conversations', 0)}{of} SMTP conversation(s): " +
                       (", ".join(f"{k} {v}" for k, v in sorted(summary.get("outcomes", {}).items()))
                        or "none"), width, "  ")]
    if summary.get("reasons"):
        lines.append(wrap_text("by reason: " + ", ".join(f"{k} {v}" for k, v in
                                                         sorted(summary["reasons"].items())),
                               width, "  "))
    if summary.get("no_payload_attempts"):
        lines.append(wrap_text(f"{summary['no_payload_attempts']} connection attempt(s) to an SMTP "
                               "port without payload (scans, probes): no conversation, no verdict",
                               width, "  "))
    rows = []
    for s in summary.get("servers", []):
        down = s["downgraded"]
        if not down and not s["inconsistent_offer"]:
            continue
        rows.append([safe(s["ip"]), safe(", ".join(s["names"]))[:40], s["conversations"],
                     s["protected"], ", ".join(f"{k} {v}" for k, v in sorted(down.items())) or "-",
                     "yes" if s["inconsistent_offer"] else ""])
    if rows:
        lines.append("")
        lines.append(fit_table([Col("server"), Col("names", drop=2, wrap=16),
                                Col("conversations", right=True), Col("protected", right=True),
                                Col("downgraded", wrap=20), Col("offer varies", drop=1)],
                               rows, width))
    for key in ("packets", "frames"):
        if key in summary:
            lines.append(f"{key}: {summary[key]}")
    if summary.get("snaplen_cut_frames"):
        snap = f" (snap length {summary['snaplen']})" if summary.get("snaplen") else ""
        lines.append(wrap_text(f"{summary['snaplen_cut_frames']} frame(s) of SMTP conversations "
                               f"cut by the capture's snap length{snap}: capture again with "
                               "`tcpdump -s 0`", width, "  "))
    r = summary.get("reassembly") or {}
    notes = [f"{k.replace('_', ' ')} {v}" for k, v in r.items()
             if k in ("evicted", "flows_evicted", "idle_closed", "ooo_dropped_bytes") and v]
    if notes:
        lines.append(wrap_text("reassembly: " + ", ".join(notes), width, "  "))
    return "\n".join(lines)
