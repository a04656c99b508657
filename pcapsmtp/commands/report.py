"""``pcapsmtp report FILE... -o report.html``: one self-contained HTML page (overview, charts,
timeline, servers, and every conversation with its ladder diagram) for a ticket or a mail to
the other side's admin. Reading is done here; the page is rendered by ``pcapsmtp.render.html``.

Exit status as for ``analyze``: 0 nothing lost TLS, 1 something did, 2 bad usage or an unreadable
capture (the page is still written with what was read before the damage)."""
from __future__ import annotations

import argparse
import os
from typing import Any, TextIO

from pcapsmtp.commands.common import (
    add_common,
    add_redaction,
    add_rotation,
    config,
    err_line,
    make_redactor,
    rotated_set,
)
from pcapsmtp.commands.selection import SELECTION_HELP, add_selection, selection
from pcapsmtp.commands.status import needs_attention
from pcapsmtp.errors import UsageError

__all__ = ["add_parser", "run", "write_html"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report", help="one self-contained HTML page with every conversation as a ladder diagram",
        description="Write one HTML file (no network access when opened, works from file://) with "
                    "the capture's overview, the per-server table and every SMTP conversation: "
                    "a ladder diagram of the exchange with the guilty line in red, the verdict, "
                    "what to ask of whom and the Wireshark filters. With a selection the page "
                    "(overview, charts, timeline, servers, conversations) holds the selected "
                    "conversations only, and its title says so; the packet counts stay the "
                    "captures'. " + SELECTION_HELP)
    p.add_argument("files", metavar="FILE", nargs="+", help="pcap or pcapng captures (gzip too)")
    p.add_argument("-o", "--output", metavar="OUT.html", required=True,
                   help="the HTML file to write ('-' for standard output)")
    p.add_argument("--title", default=None, help="the page's title (default: the capture names)")
    add_redaction(p)
    add_rotation(p)
    add_common(p)
    add_selection(p)
    p.set_defaults(func=run)
    return p


def write_html(path: str, html: str, out: TextIO) -> None:
    """Write the page to ``path`` (atomically: a half-written page never replaces a good one),
    or to ``out`` for '-'."""
    if path == "-":
        out.write(html)
        out.flush()
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8", errors="replace", newline="\n") as fh:
            fh.write(html)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise UsageError(f"{path}: cannot write the report: {exc.strerror or exc}") from None


def add_clients_matrix(convs: list[dict[str, Any]]) -> None:
    """The known-clients table of each conversation's EHLO reply (cached: many are alike)."""
    from pcapsmtp.analysis.clients import matrix
    cache: dict[tuple[bytes, tuple[bytes, ...]], list[tuple[str, str, str]]] = {}
    for conv in convs:
        raw = conv.get("_raw_ehlo_reply_kept")
        if raw:
            # (the replies of EHLOs sent before the acted one too: a client may keep an offer)
            key = (bytes(raw), tuple(bytes(e) for e in conv.get("_raw_earlier_ehlo_replies_kept") or ()))
            if key not in cache:
                cache[key] = matrix(*key)
            conv["_clients_matrix"] = cache[key]


def _described(args: argparse.Namespace) -> str:
    """The selection as given on the command line, for the page's title (escaped there)."""
    parts = []
    for opt, dest in (("--server", "server"), ("--client", "client"), ("--outcome", "outcome"),
                      ("--caused-by", "caused_by"), ("--reason", "reason"),
                      ("--server-name", "server_name")):
        parts += [f"{opt} {v}" for v in getattr(args, dest)]
    return " ".join(parts)[:300]


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pcapsmtp.engine.analyzer import analyze_files
    from pcapsmtp.render.html import render_report, report_data
    from pcapsmtp.render.text import safe

    redactor = make_redactor(args)
    sel = selection(args)
    seen = 0
    if args.files.count("-") > 1:
        raise UsageError("standard input ('-') can be read only once")
    cfg = config(args, keep_exchange=True)
    files: list[dict[str, Any]] = []
    convs: list[dict[str, Any]] = []
    errors: list[str] = []
    units = [[p] for p in args.files]
    if args.rotated:       # one analysis of the set; one entry per piece, as for separate files
        units = [rotated_set(args, args.files)]
    for paths in units:
        res = analyze_files(paths, cfg, engine=args.engine)
        got = res.conversations
        seen += len(got)
        if sel is not None:
            got = [c for c in got if sel.matches(c)]
        if redactor is not None:
            got = [redactor.redact(c) for c in got]
        starts = [s for s, _ in res.pieces] or [1]
        for k, path in enumerate(paths):
            frames = res.summary.get("frames")
            if res.pieces and frames is not None:
                frames = (starts[k + 1] - 1 if k + 1 < len(starts) else frames) - starts[k] + 1
            files.append({"path": path, "packets": frames,
                          "conversations": sum(1 for c in got if c.get("file") == path),
                          "error": str(res.error) if res.error is not None and (
                              getattr(res.error, "path", path) == path) else None})
        convs.extend(got)
        if res.error is not None:
            errors.append(safe(str(res.error)))
    add_clients_matrix(convs)
    title = args.title or ("pcapsmtp report: " + ", ".join(os.path.basename(p) for p in args.files)[:200])
    if sel is not None and not args.title:
        # the selected addresses and names would undo --redact-addresses: only the counts then
        what = "" if redactor is not None else f": {_described(args)}"
        title += f" ({len(convs)} selected of {seen} conversations{what})"
    write_html(args.output, render_report(report_data(files, convs), title=title), out)
    for e in errors:
        err_line(e, err)
    if errors:
        return 2
    return 1 if any(needs_attention(c) for c in convs) else 0
