"""``pcapsmtp analyze``: every SMTP conversation in the captures, with its verdict."""
from __future__ import annotations

import argparse
import os
from typing import Any, TextIO

from pcapsmtp.commands.args import positive_int
from pcapsmtp.commands.common import add_common, add_redaction, config, err_line, make_redactor
from pcapsmtp.commands.status import needs_attention
from pcapsmtp.errors import UsageError
from pcapsmtp.render.fit import output_width


def add_parser(sub: Any) -> argparse.ArgumentParser:
    a = sub.add_parser("analyze", help="every SMTP conversation in the captures, with its verdict",
                       description="Read pcap/pcapng files (gzip too; '-' is standard input) and "
                       "give one verdict per SMTP conversation.")
    a.add_argument("files", nargs="+", metavar="FILE")
    a.add_argument("--format", choices=("table", "json", "csv", "tlsrpt"), default="table")
    a.add_argument("--summary", action="store_true",
                   help="add the per-server summary (a final JSON line with \"summary\" in json)")
    a.add_argument("--findings", action="store_true", help="table format: list the findings too")
    add_redaction(a)
    a.add_argument("-q", "--quiet", action="store_true", help="no progress or notes on stderr")
    a.add_argument("-j", "--jobs", type=positive_int, default=1, metavar="N",
                   help="analyse N files in parallel (output identical to a serial run, in input "
                   "order)")
    add_common(a)
    a.set_defaults(func=run)
    return a


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pcapsmtp.render import text
    cfg = config(args)
    redactor = make_redactor(args)
    status = 0
    allconv: list[dict[str, Any]] = []   # only for the formats that need every row at the end
    keep_all = args.format in ("table", "tlsrpt")
    header_done = False
    summaries = []
    if args.files.count("-") > 1:
        raise UsageError("standard input ('-') can be read only once")

    def write(conv: dict[str, Any]) -> None:
        """One conversation, written as soon as it is final (JSON Lines and CSV stream)."""
        nonlocal status, header_done
        if redactor is not None:
            conv = redactor.redact(conv)
        if needs_attention(conv):
            status = max(status, 1)
        if args.format == "json":
            out.write(text.render_jsonl(conv) + "\n")
        elif args.format == "csv":
            out.write(text.render_csv([conv], header=not header_done))
            header_done = True
        if not keep_all:
            out.flush()   # `tcpdump -w - | pcapsmtp analyze --format json - | jq` sees it now
        else:
            allconv.append(conv)

    for res in _results(args, cfg, err, None if keep_all else write):
        path = res.path
        for conv in res.conversations:
            write(conv)
        if args.format == "csv" and not header_done:
            out.write(text.render_csv([], header=True))
            header_done = True
        out.flush()
        if redactor is not None:
            res.summary = redactor.redact_summary(res.summary)
        summaries.append(res.summary)
        if not args.quiet:
            for note in res.notes:
                print(f"pcapsmtp: note: {text.safe(path)}: {text.safe(note)}", file=err)
        if res.error is not None:
            err_line(text.safe(str(res.error)), err)
            status = 2
    width = output_width(out)
    several = len(args.files) > 1
    if args.format == "table":
        out.write(text.render_table(allconv, with_file=several, width=width) + "\n")
        if args.findings:
            f = text.render_findings(allconv, with_file=several, width=width)
            if f:
                out.write("\n" + f + "\n")
    elif args.format == "tlsrpt":
        from pcapsmtp.render.tlsrpt import render_tlsrpt
        out.write(render_tlsrpt(allconv) + "\n")
    if args.summary:
        from pcapsmtp.analysis.summary import merge_summaries
        merged = merge_summaries(summaries)
        if args.format == "json":
            import json
            out.write(json.dumps({"summary": merged}, default=str) + "\n")
        elif args.format == "table":
            out.write("\n" + text.render_summary(merged, width=width) + "\n")
        else:
            err.write(text.render_summary(merged, width=output_width(err)) + "\n")
    out.flush()
    return status


class _Progress:
    """A progress line on stderr for files that take more than a couple of seconds (only when
    stderr is a terminal and --quiet is not given)."""

    def __init__(self, path: str, err: TextIO) -> None:
        import time
        self.path = path
        self.err = err
        self.clock = time.monotonic
        self.start = self.clock()
        self.shown = False
        try:
            self.size = os.path.getsize(path) if path != "-" else 0
        except OSError:
            self.size = 0

    def __call__(self, frames: int, offset: int) -> None:
        if self.clock() - self.start < 2.0:
            return
        from pcapsmtp.render.text import safe
        pct = f" {min(99, offset * 100 // self.size)}%" if self.size and offset <= self.size else ""
        self.err.write(f"\rpcapsmtp: {safe(self.path)}:{pct} {frames:,} frames")
        self.err.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.err.write("\r\x1b[K")
            self.err.flush()


def _analyze_one(job: tuple[str, Any, str]) -> Any:
    from pcapsmtp.engine.analyzer import analyze_file
    path, cfg, engine = job
    return analyze_file(path, cfg, engine=engine)


def _results(args: argparse.Namespace, cfg: Any, err: TextIO, emit: Any = None) -> Any:
    """FileResults in input order; with -j N the files are analysed by N processes. With
    ``emit`` (serial runs), each conversation goes to it as soon as it is final and the
    results' lists stay empty: memory does not grow with the number of conversations."""
    from pcapsmtp.engine.analyzer import analyze_file
    files = list(args.files)
    jobs = max(1, min(args.jobs, len(files)))
    if jobs == 1 or "-" in files:
        for path in files:
            prog = _Progress(path, err) if (not args.quiet and err.isatty()) else None
            res = analyze_file(path, cfg, engine=args.engine, progress=prog, emit=emit)
            if prog is not None:
                prog.done()
            yield res
        return
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(_analyze_one, [(p, cfg, args.engine) for p in files])
