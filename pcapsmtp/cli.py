"""Command line: ``pcapsmtp analyze|explain|annotate|check-ehlo|live``.

Exit status: 0 no conversation lost TLS and no RFC violation was found; 1 at least one did
or was; 2 bad usage or unreadable input (one line on stderr naming the file and offset).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence, TextIO

from pcapsmtp import __version__
from pcapsmtp.argtypes import grace_ns, minutes_ns, port, positive_int
from pcapsmtp.errors import BackendUnavailable, CaptureError, PcapSmtpError, UsageError
from pcapsmtp.status import lost_tls, needs_attention, violations
from pcapsmtp.tcp.config import ReassemblyConfig

__all__ = ["main", "lost_tls", "violations"]

def _redaction(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redact-addresses", action="store_true",
                   help="replace envelope addresses, EHLO names and host names with stable "
                   "pseudonyms, for sharing a report")
    p.add_argument("--redact-key", metavar="KEY", default=None,
                   help="with --redact-addresses: the key of the pseudonyms, so that two reports "
                   "can be compared (default: a random key per run)")
    p.add_argument("--redact-ips", action="store_true",
                   help="with --redact-addresses: replace IP addresses too")


def _redactor(args: argparse.Namespace) -> Any:
    if not getattr(args, "redact_addresses", False):
        if getattr(args, "redact_key", None) or getattr(args, "redact_ips", False):
            raise UsageError("--redact-key and --redact-ips go with --redact-addresses")
        return None
    from pcapsmtp.redact import Redactor
    return Redactor(args.redact_key.encode() if args.redact_key else None, ips=args.redact_ips)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", dest="ports", type=port, action="append", default=[],
                   metavar="N", help="also treat TCP port N as SMTP (repeatable; 25, 465, 587 "
                   "and 2525 always are, and any port whose server speaks first with 220)")
    p.add_argument("--no-content-detection", action="store_true",
                   help="only follow the SMTP ports, not conversations recognised by content")
    p.add_argument("--engine", choices=("scapy", "tshark"), default="scapy",
                   help="how packets are decoded: pcapsmtp's own reader (default) or tshark's "
                   "dissection through pyshark (for GRE, VXLAN, MPLS... encapsulations)")
    p.add_argument("--fallback-window", type=minutes_ns, default=15 * 60 * 10**9, metavar="MIN",
                   help="a plaintext retry within MIN minutes (capture time) of a failed TLS "
                   "attempt between the same hosts is reported as tls-fallback (default 15)")
    p.add_argument("--closed-grace", type=grace_ns, default=ReassemblyConfig.closed_grace_ns,
                   metavar="SEC|never",
                   help="forget a closed TCP conversation (FIN both ways, or RST) SEC seconds of "
                   "capture time after it closed, so memory stays flat on long captures "
                   f"(default {(ReassemblyConfig.closed_grace_ns or 0) // 10**9}); 'never' keeps tcp.stream equal to Wireshark's even for "
                   "packets that come later, at the cost of memory")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="pcapsmtp",
        description="Why did STARTTLS not happen, and whose fault was it? Answered from packet "
                    "captures alone: pcapsmtp never connects to a server or resolves a name.")
    ap.add_argument("--version", action="version", version=f"pcapsmtp {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("analyze", help="every SMTP conversation in the captures, with its verdict",
                       description="Read pcap/pcapng files (gzip too; '-' is standard input) and "
                       "give one verdict per SMTP conversation.")
    a.add_argument("files", nargs="+", metavar="FILE")
    a.add_argument("--format", choices=("table", "json", "csv", "tlsrpt"), default="table")
    a.add_argument("--summary", action="store_true",
                   help="add the per-server summary (a final JSON line with \"summary\" in json)")
    a.add_argument("--findings", action="store_true", help="table format: list the findings too")
    _redaction(a)
    a.add_argument("-q", "--quiet", action="store_true", help="no progress or notes on stderr")
    a.add_argument("-j", "--jobs", type=positive_int, default=1, metavar="N",
                   help="analyse N files in parallel (output identical to a serial run, in input "
                   "order)")
    _common(a)

    e = sub.add_parser("explain", help="the exchange of one or all conversations, the guilty line "
                       "marked and explained")
    e.add_argument("file", metavar="FILE")
    e.add_argument("--stream", type=int, default=None, metavar="N",
                   help="only the conversation with this tcp.stream index")
    _redaction(e)
    _common(e)

    n = sub.add_parser("annotate", help="write the capture back as pcapng with a packet comment "
                       "on every evidence frame")
    n.add_argument("file", metavar="FILE")
    n.add_argument("-o", "--output", required=True, metavar="OUT.pcapng")
    _common(n)

    c = sub.add_parser("check-ehlo", help="check an EHLO reply pasted as text (from a log or a "
                       "telnet session); no capture needed")
    c.add_argument("file", nargs="?", default="-", metavar="FILE",
                   help="a text file with the reply lines ('-' or nothing: standard input)")

    from pcapsmtp import diff_cmd, live_cmd
    live_cmd.add_parser(sub)
    diff_cmd.add_parser(sub)
    return ap


def _config(args: argparse.Namespace, **kw: Any) -> Any:
    from pcapsmtp.model import SMTP_PORTS
    from pcapsmtp.pipeline import AnalysisConfig
    return AnalysisConfig(ports=frozenset(SMTP_PORTS | set(args.ports)),
                          detect_by_content=not args.no_content_detection,
                          fallback_window_ns=args.fallback_window,
                          closed_grace_ns=args.closed_grace, **kw)


def _err(msg: str, err: TextIO) -> None:
    print(f"pcapsmtp: error: {msg}", file=err, flush=True)


def _cmd_analyze(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pcapsmtp.render import text
    cfg = _config(args)
    redactor = _redactor(args)
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
            _err(text.safe(str(res.error)), err)
            status = 2
    if args.format == "table":
        out.write(text.render_table(allconv, with_file=len(args.files) > 1) + "\n")
        if args.findings:
            f = text.render_findings(allconv)
            if f:
                out.write("\n" + f + "\n")
    elif args.format == "tlsrpt":
        from pcapsmtp.render.tlsrpt import render_tlsrpt
        out.write(render_tlsrpt(allconv) + "\n")
    if args.summary:
        merged = _merge_summaries(summaries)
        if args.format == "json":
            import json
            out.write(json.dumps({"summary": merged}, default=str) + "\n")
        elif args.format == "table":
            out.write("\n" + text.render_summary(merged) + "\n")
        else:
            err.write(text.render_summary(merged) + "\n")
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
    from pcapsmtp.pipeline import analyze_file
    path, cfg, engine = job
    return analyze_file(path, cfg, engine=engine)


def _results(args: argparse.Namespace, cfg: Any, err: TextIO, emit: Any = None) -> Any:
    """FileResults in input order; with -j N the files are analysed by N processes. With
    ``emit`` (serial runs), each conversation goes to it as soon as it is final and the
    results' lists stay empty: memory does not grow with the number of conversations."""
    from pcapsmtp.pipeline import analyze_file
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


def _merge_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    if len(summaries) == 1:
        return summaries[0]
    from collections import Counter
    merged: dict[str, Any] = {"conversations": 0, "outcomes": Counter(), "reasons": Counter(),
                              "servers": [], "packets": 0}
    for s in summaries:
        merged["conversations"] += s.get("conversations", 0)
        merged["outcomes"].update(s.get("outcomes", {}))
        merged["reasons"].update(s.get("reasons", {}))
        merged["servers"].extend(s.get("servers", []))
        merged["packets"] += s.get("packets", 0)
    merged["outcomes"] = dict(merged["outcomes"])
    merged["reasons"] = dict(merged["reasons"])
    return merged


def _cmd_explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pcapsmtp.analysis.clients import matrix
    from pcapsmtp.pipeline import analyze_file
    from pcapsmtp.render.explain import render_explain
    redactor = _redactor(args)
    res = analyze_file(args.file, _config(args, keep_exchange=True), engine=args.engine)
    convs = res.conversations
    if redactor is not None:
        convs = [redactor.redact(c) for c in convs]
    if args.stream is not None:
        convs = [c for c in convs if c["stream"] == args.stream]
        if not convs and res.error is None:
            known = ", ".join(str(c["stream"]) for c in res.conversations) or "none"
            raise UsageError(f"{args.file}: no SMTP conversation with tcp.stream {args.stream} "
                             f"(SMTP streams: {known})")
    status = 0
    for i, conv in enumerate(convs):
        raw = conv.get("_raw_ehlo_reply_kept")
        if raw:
            conv["_clients_matrix"] = matrix(raw)
        if i:
            out.write("\n" + "-" * 78 + "\n")
        out.write(render_explain(conv, path=args.file) + "\n")
        if needs_attention(conv):
            status = 1
    if not convs and res.error is None:
        out.write("no SMTP conversation found\n")
    out.flush()
    if res.error is not None:
        from pcapsmtp.render.text import safe
        _err(safe(str(res.error)), err)
        return 2
    return status


def _cmd_annotate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pcapsmtp.pipeline import analyze_file
    from pcapsmtp.render.pcapng import comments_from_conversations, write_annotated
    from pcapsmtp.render.text import safe
    if args.file == "-":
        raise UsageError("annotate needs a file: it reads the capture twice")
    res = analyze_file(args.file, _config(args), engine=args.engine)
    if res.error is not None:
        _err(safe(str(res.error)), err)
        return 2
    comments = comments_from_conversations(res.conversations)
    n = write_annotated(args.file, args.output, comments)
    print(f"pcapsmtp: wrote {safe(args.output)}: {n} frame(s) commented in "
          f"{len(res.conversations)} SMTP conversation(s)", file=err)
    return 1 if any(needs_attention(c) for c in res.conversations) else 0


def _cmd_check_ehlo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pcapsmtp.checkehlo import check_pasted_reply
    from pcapsmtp.render.text import safe
    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            with open(args.file, "rb") as fh:
                data = fh.read(1 << 20)
        except OSError as exc:
            raise CaptureError(args.file, None, exc.strerror or str(exc)) from None
    report, bad = check_pasted_reply(data)
    out.write(report + "\n")
    del safe
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    ap = _parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code not in (0, None) else 0
    if args.command is None:
        ap.print_help(err)
        return 2
    try:
        if args.command == "analyze":
            return _cmd_analyze(args, out, err)
        if args.command == "explain":
            return _cmd_explain(args, out, err)
        if args.command == "annotate":
            return _cmd_annotate(args, out, err)
        if args.command == "check-ehlo":
            return _cmd_check_ehlo(args, out, err)
        return int(args.func(args))
    except (CaptureError, UsageError, BackendUnavailable, PcapSmtpError) as exc:
        from pcapsmtp.render.text import safe
        _err(safe(str(exc)), err)
        return 2
    except BrokenPipeError:
        _quiet_pipe()
        return 0
    except KeyboardInterrupt:
        return 130


def _quiet_pipe() -> None:
    """`pcapsmtp ... | head`: stop quietly when the reader goes away."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
