"""``pcapsmtp annotate``: the capture written back as pcapng with comments on evidence frames."""
from __future__ import annotations

import argparse
import os
from typing import Any, TextIO

from pcapsmtp.commands.common import add_common, config, err_line
from pcapsmtp.errors import UsageError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    n = sub.add_parser("annotate", help="write the capture back as pcapng with a packet comment "
                       "on every evidence frame",
                       description="Write the capture back as pcapng with a packet comment on "
                       "every evidence frame (open it in Wireshark: pkt_comment). Exit status 0 "
                       "once the file is written, whatever the verdicts; 2 when it cannot be.")
    n.add_argument("file", metavar="FILE", help="the capture to annotate (pcap, pcapng, gzip)")
    n.add_argument("-o", "--output", required=True, metavar="OUT.pcapng",
                   help="the annotated copy to write (created with your umask; never the input)")
    add_common(n)
    n.set_defaults(func=run)
    return n


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pcapsmtp.engine.analyzer import analyze_file
    from pcapsmtp.render.pcapng import comments_from_conversations, write_annotated
    from pcapsmtp.render.text import safe
    if args.file == "-":
        raise UsageError("annotate needs a file: it reads the capture twice")
    if os.path.isdir(args.output):
        raise UsageError(f"{args.output}: is a directory; give the annotated file's name "
                         "(-o DIR/name.pcapng)")
    res = analyze_file(args.file, config(args), engine=args.engine)
    if res.error is not None:
        err_line(safe(str(res.error)), err)
        return 2
    comments = comments_from_conversations(res.conversations)
    try:
        mode = os.stat(args.output).st_mode & 0o7777      # an existing file keeps its mode
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        mode = 0o666 & ~mask                               # a new file gets the user's umask
    n = write_annotated(args.file, args.output, comments)
    os.chmod(args.output, mode)
    print(f"pcapsmtp: wrote {safe(args.output)}: {n} frame(s) commented in "
          f"{len(res.conversations)} SMTP conversation(s)", file=err)
    # the exit status is about writing the file; the verdicts are in it (and in `analyze`)
    return 0
