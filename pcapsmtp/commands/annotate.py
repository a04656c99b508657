"""``pcapsmtp annotate``: the capture written back as pcapng with comments on evidence frames."""
from __future__ import annotations

import argparse
from typing import Any, TextIO

from pcapsmtp.commands.common import add_common, config, err_line
from pcapsmtp.commands.status import needs_attention
from pcapsmtp.errors import UsageError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    n = sub.add_parser("annotate", help="write the capture back as pcapng with a packet comment "
                       "on every evidence frame")
    n.add_argument("file", metavar="FILE")
    n.add_argument("-o", "--output", required=True, metavar="OUT.pcapng")
    add_common(n)
    n.set_defaults(func=run)
    return n


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pcapsmtp.engine.analyzer import analyze_file
    from pcapsmtp.render.pcapng import comments_from_conversations, write_annotated
    from pcapsmtp.render.text import safe
    if args.file == "-":
        raise UsageError("annotate needs a file: it reads the capture twice")
    res = analyze_file(args.file, config(args), engine=args.engine)
    if res.error is not None:
        err_line(safe(str(res.error)), err)
        return 2
    comments = comments_from_conversations(res.conversations)
    n = write_annotated(args.file, args.output, comments)
    print(f"pcapsmtp: wrote {safe(args.output)}: {n} frame(s) commented in "
          f"{len(res.conversations)} SMTP conversation(s)", file=err)
    return 1 if any(needs_attention(c) for c in res.conversations) else 0
