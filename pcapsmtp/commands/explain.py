"""``pcapsmtp explain``: the exchange of one or all conversations, the guilty line marked."""
from __future__ import annotations

import argparse
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


def add_parser(sub: Any) -> argparse.ArgumentParser:
    e = sub.add_parser("explain", help="the exchange of one or all conversations, the guilty line "
                       "marked and explained",
                       description="Print the SMTP exchange of one or all conversations with the "
                       "guilty line marked, what a strict client does with it, what to ask of "
                       "whom, which known clients would downgrade, and the Wireshark filter and "
                       "tshark command to see the evidence. --stream and the selection options "
                       "combine (all must match). " + SELECTION_HELP)
    e.add_argument("files", metavar="FILE", nargs="+", help="the capture (pcap, pcapng, gzip; "
                   "'-' for standard input); several only with --rotated")
    e.add_argument("--stream", type=int, default=None, metavar="N",
                   help="only the conversation with this tcp.stream index")
    add_redaction(e)
    add_rotation(e)
    add_common(e)
    add_selection(e)
    e.set_defaults(func=run)
    return e


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pcapsmtp.analysis.clients import banner_matrix, matrix
    from pcapsmtp.engine.analyzer import analyze_files
    from pcapsmtp.render.explain import render_explain
    from pcapsmtp.render.fit import output_width
    redactor = make_redactor(args)
    sel = selection(args)
    if len(args.files) > 1 and not args.rotated:
        raise UsageError("explain reads one capture; several files only as the pieces of one "
                         "(--rotated)")
    files = rotated_set(args, args.files)
    args.file = files[0]
    res = analyze_files(files, config(args, keep_exchange=True), engine=args.engine)
    convs = res.conversations
    if args.stream is not None:
        convs = [c for c in convs if c["stream"] == args.stream]
        if not convs and res.error is None:
            known = ", ".join(str(c["stream"]) for c in res.conversations) or "none"
            raise UsageError(f"{args.file}: no SMTP conversation with tcp.stream {args.stream} "
                             f"(SMTP streams: {known})")
    if sel is not None:
        convs = [c for c in convs if sel.matches(c)]
    if redactor is not None:
        convs = [redactor.redact(c) for c in convs]
    status = 0
    width = output_width(out)
    for i, conv in enumerate(convs):
        raw = conv.get("_raw_ehlo_reply_kept")
        if raw:
            conv["_clients_matrix"] = matrix(raw, tuple(conv.get("_raw_earlier_ehlo_replies_kept") or ()))
        elif conv.get("_masked_banner_helo"):
            conv["_clients_matrix"] = banner_matrix()
        if i:
            out.write("\n" + "-" * min(78, (width or 79) - 1) + "\n")
        out.write(render_explain(conv, path=conv.get("file") if args.rotated else args.file,
                                 width=width) + "\n")
        if needs_attention(conv):
            status = 1
    if not convs and res.error is None:
        if sel is not None and res.conversations:
            out.write(f"no SMTP conversation matches the selection ({len(res.conversations)} "
                      "found)\n")
        else:
            out.write("no SMTP conversation found\n")
    out.flush()
    if res.error is not None:
        from pcapsmtp.render.text import safe
        err_line(safe(str(res.error)), err)
        return 2
    return status
