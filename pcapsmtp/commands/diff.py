"""``pcapsmtp diff OUTSIDE INSIDE``: read the captures taken on both sides of a middlebox,
pair the deliveries and print what the box changed (``pcapsmtp.analysis.vantage`` does the work).

Exit status: 0 every paired delivery is identical on both sides, 1 the box changed at least
one (tampering found), 2 bad usage or an unreadable capture (one line on stderr naming the
file and the offset)."""
from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from pcapsmtp.commands.args import port, score, seconds
from pcapsmtp.commands.common import add_redaction, err_line, make_redactor
from pcapsmtp.errors import PcapSmtpError, UsageError
from pcapsmtp.model import SMTP_PORTS

__all__ = ["add_parser", "run"]








def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``diff`` on the CLI's subparsers; dispatch to ``run(args)``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "diff", help="pair the same deliveries seen on both sides of a middlebox and name what changed",
        description="Compare a capture taken between the clients and a middlebox (OUTSIDE) with one "
                    "taken between the middlebox and the server (INSIDE): pair the deliveries by "
                    "content (addresses may differ), name every line the box changed, and give a "
                    "joint verdict (caused_by middlebox: starttls-stripped, starttls-masked, "
                    "starttls-refused). Exit 1 when the box changed a delivery.")
    p.add_argument("outside", metavar="OUTSIDE", help="capture between the clients and the box")
    p.add_argument("inside", metavar="INSIDE", help="capture between the box and the server")
    p.add_argument("--format", choices=("table", "json", "html"), default="table",
                   help="a report for a person (default), one JSON object, or a self-contained "
                        "HTML page with both vantage points' ladder diagrams side by side")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write the report to FILE instead of standard output (with --format html: "
                        "the page to attach to a ticket)")
    p.add_argument("--clock-offset", type=seconds, default=None, metavar="S",
                   help="the inside capture's clock minus the outside one's, in seconds (default: "
                        "estimated from the deliveries whose envelope agrees)")
    p.add_argument("--tolerance", type=seconds, default=10.0, metavar="S",
                   help="paired deliveries start or end within S seconds of each other after the "
                        "clock offset (default 10)")
    p.add_argument("--threshold", type=score, default=0.5, metavar="SCORE",
                   help="minimum match score (0..1) to pair two conversations (default 0.5)")
    add_redaction(p)
    p.add_argument("--port", dest="ports", type=port, action="append", default=[], metavar="N",
                   help="also treat TCP port N as SMTP (repeatable; 25, 465, 587, 2525 always are)")
    p.add_argument("--engine", choices=("scapy", "tshark"), default="scapy",
                   help="how packets are decoded (as for analyze)")
    p.set_defaults(func=run, command="diff")
    return p


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        return _run(args, out, err)
    except BrokenPipeError:
        return 0
    except PcapSmtpError as exc:
        from pcapsmtp.render.text import safe
        err_line(safe(str(exc).splitlines()[0] if str(exc) else type(exc).__name__), err)
        return 2


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pcapsmtp.analysis.vantage import DiffConfig, diff_conversations
    from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
    from pcapsmtp.render.diff import render_json, render_table

    redactor = make_redactor(args)
    if redactor is not None and args.format != "html":
        raise UsageError("pcapsmtp diff: --redact-addresses goes with --format html")
    if args.tolerance <= 0:
        raise UsageError("pcapsmtp diff: --tolerance must be positive")
    if "-" in (args.outside, args.inside):
        raise UsageError("pcapsmtp diff: both captures must be files (not '-')")
    cfg = AnalysisConfig(ports=frozenset(SMTP_PORTS | set(getattr(args, "ports", []) or [])),
                         keep_exchange=True)
    sides = []
    for path in (args.outside, args.inside):
        res = analyze_file(path, cfg, engine=args.engine)
        if res.error is not None:
            raise res.error if isinstance(res.error, PcapSmtpError) else UsageError(f"{path}: {res.error}")
        sides.append(res.conversations)
    report = diff_conversations(sides[0], sides[1], DiffConfig(
        threshold=args.threshold, tolerance_s=args.tolerance, clock_offset_s=args.clock_offset))
    report = {"outside_file": args.outside, "inside_file": args.inside, **report}
    if args.format == "html":
        from pcapsmtp.commands.report import add_clients_matrix, write_html
        from pcapsmtp.render.html import diff_data, render_diff
        for convs in sides:
            add_clients_matrix(convs)
        html = render_diff(diff_data(report, sides[0], sides[1], redactor),
                           title=f"pcapsmtp diff: {args.outside} / {args.inside}"[:240])
        write_html(args.output or "-", html, out)
    else:
        from pcapsmtp.render.fit import output_width
        width = None if args.output else output_width(out)    # a file gets whole lines
        text = (render_json(report) if args.format == "json" else render_table(report, width)) + "\n"
        if args.output:
            from pcapsmtp.commands.report import write_html
            write_html(args.output, text, out)
        else:
            out.write(text)
            out.flush()
    return 1 if report["summary"]["tampered"] else 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m pcapsmtp.commands.diff OUTSIDE INSIDE``) until the CLI wires it."""
    ap = argparse.ArgumentParser(prog="pcapsmtp")
    sub = ap.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = ap.parse_args(["diff", *(sys.argv[1:] if argv is None else argv)])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
