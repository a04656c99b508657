"""``pcapsmtp analyze``: every SMTP conversation in the captures, with its verdict."""
from __future__ import annotations

import argparse
import os
from typing import Any, TextIO

from pcapsmtp.commands.args import positive_int
from pcapsmtp.commands.common import (
    add_common,
    add_redaction,
    add_rotation,
    config,
    err_line,
    make_redactor,
    rotated_set,
)
from pcapsmtp.commands.selection import (SELECTION_HELP, add_selection, selected_summary,
                                         selection)
from pcapsmtp.commands.status import needs_attention
from pcapsmtp.errors import UsageError
from pcapsmtp.render.fit import output_width


def add_parser(sub: Any) -> argparse.ArgumentParser:
    a = sub.add_parser("analyze", help="every SMTP conversation in the captures, with its verdict",
                       description="Read pcap/pcapng files (gzip too; '-' is standard input) and "
                       "give one verdict per SMTP conversation. " + SELECTION_HELP)
    a.add_argument("files", nargs="+", metavar="FILE",
                   help="capture files: pcap or pcapng, gzip of either, '-' for standard input")
    a.add_argument("--format", choices=("table", "json", "csv", "tlsrpt"), default="table",
                   help="a table for a person (default, fitted to the terminal), JSON Lines or "
                   "CSV for scripts (docs/output.md), or one RFC 8460 TLS-RPT report")
    a.add_argument("--summary", action="store_true",
                   help="add the per-server summary (a final JSON line with \"summary\" in json)")
    a.add_argument("--findings", action="store_true", help="table format: list the findings too")
    add_redaction(a)
    a.add_argument("-q", "--quiet", action="store_true", help="no progress or notes on stderr")
    a.add_argument("-j", "--jobs", type=positive_int, default=1, metavar="N",
                   help="analyse with N processes: several files side by side, and a file (or a "
                   "rotated set) cut by conversation when there are fewer files than N; the "
                   "output is identical to a serial run (docs/scale.md)")
    add_rotation(a)
    a.add_argument("--dask", metavar="tcp://HOST:PORT", default=None,
                   help="run the analysis on a Dask distributed cluster (the scheduler's "
                   "address; the files must be readable at the same paths on every worker; "
                   "pip install '.[dask]' in the clone); the work is cut as for -j, by default into "
                   "as many tasks as the cluster has worker threads")
    add_common(a)
    add_selection(a)
    a.set_defaults(func=run)
    return a


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pcapsmtp.render import text
    cfg = config(args)
    redactor = make_redactor(args)
    sel = selection(args)
    seen = 0            # with a selection: the conversations read, selected or not
    picked: Any = None  # with a selection: the summary of the unit's selected conversations
    if sel is not None:
        from pcapsmtp.analysis.summary import Summary
        picked = Summary()
    status = 0
    allconv: list[dict[str, Any]] = []   # only for the formats that need every row at the end
    keep_all = args.format in ("table", "tlsrpt")
    header_done = False
    summaries = []
    if args.files.count("-") > 1:
        raise UsageError("standard input ('-') can be read only once")
    # a rotated set's frame references name their files: its CSV has the evidence_file column
    rotated = bool(args.rotated) and len(args.files) > 1

    def write(conv: dict[str, Any]) -> None:
        """One conversation, written as soon as it is final (JSON Lines and CSV stream)."""
        nonlocal status, header_done, seen
        if sel is not None:
            seen += 1
            if not sel.matches(conv):
                return
            picked.add(conv)
        if redactor is not None:
            conv = redactor.redact(conv)
        if needs_attention(conv):
            status = max(status, 1)
        if args.format == "json":
            out.write(text.render_jsonl(conv) + "\n")
        elif args.format == "csv":
            out.write(text.render_csv([conv], header=not header_done, rotated=rotated))
            header_done = True
        if not keep_all:
            out.flush()   # `tcpdump -w - | pcapsmtp analyze --format json - | jq` sees it now
        else:
            allconv.append(conv)

    read_any = False   # nothing goes to stdout when no input could be read at all
    for res in _results(args, cfg, err, None if keep_all else write):
        path = res.path
        for conv in res.conversations:
            write(conv)
        if not _unreadable(res):
            read_any = True
        if args.format == "csv" and not header_done and read_any:
            out.write(text.render_csv([], header=True, rotated=rotated))
            header_done = True
        out.flush()
        if sel is not None:
            res.summary = selected_summary(res.summary, picked.as_dict())
            picked = Summary()
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
    shown = read_any or bool(allconv)
    if shown and args.format == "table":
        out.write(text.render_table(allconv, with_file=several, width=width) + "\n")
        if args.findings:
            f = text.render_findings(allconv, with_file=several, width=width)
            if f:
                out.write("\n" + f + "\n")
    elif shown and args.format == "tlsrpt":
        from pcapsmtp.render.tlsrpt import render_tlsrpt
        out.write(render_tlsrpt(allconv) + "\n")
    if args.summary and shown:
        from pcapsmtp.analysis.summary import merge_summaries
        merged = merge_summaries(summaries)
        if sel is not None:
            merged = dict(merged, selected_from=seen)
        if args.format == "json":
            import json
            out.write(json.dumps({"summary": merged}, default=str) + "\n")
        elif args.format == "table":
            out.write("\n" + text.render_summary(merged, width=width) + "\n")
        else:
            err.write(text.render_summary(merged, width=output_width(err)) + "\n")
    out.flush()
    return status


def _unreadable(res: Any) -> bool:
    """The file could not be read at all: opening it failed, or its first bytes are no capture
    (a file damaged further on still counts as read, its results kept)."""
    err = res.error
    return err is not None and not res.conversations and not getattr(err, "offset", None)


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


def _units(args: argparse.Namespace) -> list[tuple[str, ...]]:
    """What one serial analyzer reads: each file, or the rotated set (in capture order)."""
    files = rotated_set(args, args.files)
    return [tuple(files)] if args.rotated else [(p,) for p in files]


def _results(args: argparse.Namespace, cfg: Any, err: TextIO, emit: Any = None) -> Any:
    """FileResults in input order (one per file, or one for a rotated set). With -j N or
    --dask the work is cut into tasks (whole files, or buckets of conversations of a file:
    ``engine.partition``) and merged back into the serial run's output. With ``emit``
    (serial runs), each conversation goes to it as soon as it is final and the results'
    lists stay empty: memory does not grow with the number of conversations."""
    from pcapsmtp.engine.analyzer import analyze_files
    units = _units(args)
    if args.dask:
        if "-" in args.files:
            raise UsageError("--dask reads files every worker can open, not standard input")
        from pcapsmtp.engine.distributed import run_dask
        yield from run_dask(units, cfg, args.dask, jobs=args.jobs if args.jobs > 1 else None,
                            engine=args.engine, err=None if args.quiet else err)
        return
    if args.jobs == 1 or "-" in args.files:
        for paths in units:
            prog = _Progress(paths[0], err) if (not args.quiet and err.isatty()) else None
            res = analyze_files(list(paths), cfg, engine=args.engine, progress=prog, emit=emit)
            if prog is not None:
                prog.done()
            yield res
        return
    from pcapsmtp.engine.partition import plan, run_local
    tasks = plan(units, cfg, args.jobs, args.engine)
    yield from run_local(tasks, args.jobs)
