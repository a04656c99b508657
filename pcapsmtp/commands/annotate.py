"""``pcapsmtp annotate``: the capture written back as pcapng with comments on evidence frames."""
from __future__ import annotations

import argparse
import os
from typing import Any, TextIO

from pcapsmtp.commands.common import add_common, add_rotation, config, err_line, rotated_set
from pcapsmtp.errors import UsageError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    n = sub.add_parser("annotate", help="write the capture back as pcapng with a packet comment "
                       "on every evidence frame",
                       description="Write the capture back as pcapng with a packet comment on "
                       "every evidence frame (open it in Wireshark: pkt_comment). Exit status 0 "
                       "once the file is written, whatever the verdicts; 2 when it cannot be.")
    n.add_argument("files", metavar="FILE", nargs="+",
                   help="the capture to annotate (pcap, pcapng, gzip); several only with --rotated")
    n.add_argument("-o", "--output", required=True, metavar="OUT.pcapng",
                   help="the annotated copy to write (created with your umask; never the input); "
                   "with --rotated a directory, which gets one annotated NAME.pcapng per piece")
    add_rotation(n)
    add_common(n)
    n.set_defaults(func=run)
    return n


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pcapsmtp.engine.analyzer import analyze_file
    from pcapsmtp.render.pcapng import comments_from_conversations
    from pcapsmtp.errors import ForeignCapture
    from pcapsmtp.render.text import safe
    if "-" in args.files:
        raise UsageError("annotate needs a file: it reads the capture twice")
    if len(args.files) > 1 and not args.rotated:
        raise UsageError("annotate reads one capture; several files only as the pieces of one "
                         "(--rotated, with -o DIR)")
    if args.rotated:
        return _run_rotated(args, err)
    args.file = args.files[0]
    if os.path.isdir(args.output):
        raise UsageError(f"{args.output}: is a directory; give the annotated file's name "
                         "(-o DIR/name.pcapng)")
    res = analyze_file(args.file, config(args), engine=args.engine)
    if res.error is not None:
        err_line(safe(str(res.error)), err)
        return 2
    comments = comments_from_conversations(res.conversations)
    try:
        n = _write(args.file, args.output, comments)
    except ForeignCapture as exc:
        # analysed through tshark, but the annotated copy is written record by record
        err_line(safe(f"{exc.path}: a {exc.kind} capture: annotate copies the records of a pcap "
                      "or pcapng file; convert it first ('editcap -F pcapng FILE OUT.pcapng')"),
                 err)
        return 2
    print(f"pcapsmtp: wrote {safe(args.output)}: {n} frame(s) commented in "
          f"{len(res.conversations)} SMTP conversation(s)", file=err)
    # the exit status is about writing the file; the verdicts are in it (and in `analyze`)
    return 0


def _write(src: str, dst: str, comments: dict[int, list[str]]) -> int:
    from pcapsmtp.render.pcapng import write_annotated
    try:
        mode = os.stat(dst).st_mode & 0o7777      # an existing file keeps its mode
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        mode = 0o666 & ~mask                       # a new file gets the user's umask
    n = write_annotated(src, dst, comments)
    os.chmod(dst, mode)
    return n


def _run_rotated(args: argparse.Namespace, err: TextIO) -> int:
    """The pieces of one capture analysed as one; each piece written annotated into the
    directory -o, with the comments of the frames it holds (rotated output names the file of
    every frame: docs/output.md)."""
    from pcapsmtp.engine.analyzer import analyze_files
    from pcapsmtp.render.pcapng import comments_from_conversations
    from pcapsmtp.render.text import safe
    files = rotated_set(args, args.files)
    if not os.path.isdir(args.output):
        raise UsageError(f"{args.output}: with --rotated, -o names an existing directory (one "
                         "annotated file per piece goes there)")
    outs = {p: os.path.join(args.output, os.path.splitext(os.path.basename(p))[0] + ".pcapng")
            for p in files}
    for p, o in outs.items():
        if os.path.exists(o) and os.path.samefile(p, o):
            raise UsageError(f"{o}: would overwrite the input")
    if len(set(outs.values())) < len(outs):
        raise UsageError("two pieces have the same name: annotate them into different directories")
    res = analyze_files(files, config(args), engine=args.engine)
    if res.error is not None:
        err_line(safe(str(res.error)), err)
        return 2
    total = 0
    for path in files:
        views = []
        for c in res.conversations:     # only what lies in this piece
            view = {k: v for k, v in c.items() if k not in ("findings", "evidence_frame")}
            view["findings"] = [f for f in c["findings"] if f.get("file") == path]
            if c.get("evidence_file") == path:
                view["evidence_frame"] = c["evidence_frame"]
            views.append(view)
        total += _write(path, outs[path], comments_from_conversations(views))
    print(f"pcapsmtp: wrote {len(files)} annotated files into {safe(args.output)}: {total} "
          f"frame(s) commented in {len(res.conversations)} SMTP conversation(s)", file=err)
    return 0
