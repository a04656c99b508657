"""``pcapsmtp live``: sniff an interface and print each conversation's verdict as soon as it
is decided.

Capture (``capture.live.LiveSource``) -> ``capture.decode.Decoder`` -> ``pipeline.Analyzer``
-> renderers, exactly as for files. The receive loop wakes up at least every 0.2 s, closes
idle flows with ``Analyzer.tick`` and prints what was decided, so a verdict appears within
a second of the packet that decided it. JSON Lines are flushed line by line.

Frame numbers and ``file`` in the verdicts: with ``--write`` they refer to the written
pcapng; with ``--rotate-mb`` each file counts from frame 1 and ``file`` names the file in
which the conversation's first frame lies (see docs/live.md for conversations that cross
a rotation). Without ``--write``, ``file`` is ``live:IFACE`` and frames count the packets
analysed since the start.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, TextIO

from pcapsmtp.capture.decode import TUNNEL_IP_PROTOCOLS, TUNNEL_UDP_PORTS
from pcapsmtp.commands.args import port, positive_int, positive_seconds
from pcapsmtp.commands.selection import (LIVE_SELECTION_HELP, add_selection, selected_summary,
                                         selection)
from pcapsmtp.commands.status import needs_attention
from pcapsmtp.errors import PcapSmtpError, UsageError
from pcapsmtp.model import SMTP_PORTS
from pcapsmtp.render.fit import Layout

__all__ = ["add_parser", "run", "main", "build_bpf", "FrameMapper", "TUNNEL_BPF"]

#: Wake-up period of the receive loop (seconds): bounds verdict latency and stop latency.
POLL_TIMEOUT = 0.2
#: Idle flows are closed (``Analyzer.tick``) at least this often, even under steady traffic.
TICK_EVERY_NS = 1_000_000_000

# Non-first IP fragments carry no TCP header, so ``tcp port N`` cannot match them; let them
# through so that the decoder can reassemble fragmented segments.
_FRAGMENTS = "(ip[6:2] & 0x1fff != 0) or (ip6 and ip6[6] == 44)"

#: ``--tunnels``: the packets of the tunnels the decoder unwraps (IP in IP, 6in4, GRE with
#: ERSPAN, VXLAN, Geneve), whatever they carry: a mirror session sent to this host. Not in the
#: default filter: on a host whose own overlay network is VXLAN or Geneve (Kubernetes, OVN),
#: every packet of every workload would come up to be unwrapped (~10 us of CPU each,
#: docs/live.md), where the kernel drops them for nothing.
TUNNEL_BPF = " or ".join([f"proto {p}" for p in sorted(TUNNEL_IP_PROTOCOLS)]
                         + [f"udp port {p}" for p in sorted(TUNNEL_UDP_PORTS)])


def build_bpf(ports: Sequence[int] | frozenset[int], *, tunnels: bool = False) -> str:
    """The default kernel filter: the SMTP ports, the tunnels with ``tunnels``, and IP
    fragments (of a segment, or of a tunnel's outer packet); the same behind VLAN tags.

    Linux takes a frame's outer VLAN tag out of the data before a packet socket's filter
    runs, so the plain expression matches a single tag; a second tag (QinQ, a mirror port
    that keeps the customer's tag inside the provider's) stays in the data and needs
    ``vlan and (...)``: libpcap's ``vlan`` reads the tag from the metadata first and shifts
    the offsets past a tag in the data."""
    tcp = " or ".join(f"tcp port {p}" for p in sorted(set(ports)))
    plain = f"{tcp} or {TUNNEL_BPF} or {_FRAGMENTS}" if tunnels else f"{tcp} or {_FRAGMENTS}"
    return f"{plain} or (vlan and ({plain}))"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``live`` on the CLI's subparsers; dispatch to ``run(args)``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "live", help="sniff an interface and print verdicts as they are decided",
        description="Sniff an interface (needs root or CAP_NET_RAW) and print each SMTP "
                    "conversation's STARTTLS verdict as soon as it is decided. A summary is "
                    "printed at the end and on SIGINT/SIGTERM. The selection options keep "
                    "only some conversations in the report, never in the capture written.")
    _add_arguments(p)
    p.set_defaults(func=run, command="live")
    return p








def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--interface", dest="interface", required=True, metavar="IFACE",
                   help="interface to sniff (e.g. eth0, lo; not 'any')")
    p.add_argument("-f", "--filter", dest="bpf", metavar="BPF", default=None,
                   help="kernel capture filter (default: the SMTP ports and IP fragments)")
    p.add_argument("--tunnels", action="store_true",
                   help="also capture the tunnels a mirror session arrives in (GRE/ERSPAN, "
                        "VXLAN 4789, Geneve 6081, IP in IP) and unwrap them; with -f, they "
                        "are added to that filter")
    p.add_argument("--port", dest="ports", type=port, action="append", default=[],
                   metavar="N", help="also treat TCP port N as SMTP (repeatable; 25, 465, 587 "
                                     "and 2525 always are)")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table (default) or JSON Lines, one object per conversation")
    p.add_argument("-w", "--write", metavar="FILE.pcapng", default=None,
                   help="save the analysed packets to this pcapng; verdict frame numbers "
                        "refer to it")
    p.add_argument("--rotate-mb", type=positive_int, default=None, metavar="MB",
                   help="with --write: start a new file after MB million bytes")
    p.add_argument("--rotate-keep", type=positive_int, default=None, metavar="N",
                   help="with --rotate-mb: keep only the newest N files")
    p.add_argument("-c", "--count", type=positive_int, default=None, metavar="COUNT",
                   help="stop after COUNT packets")
    p.add_argument("--duration", type=positive_seconds, default=None, metavar="S",
                   help="stop after S seconds")
    p.add_argument("-s", "--snaplen", type=positive_int, default=262144, metavar="BYTES",
                   help="bytes kept of each packet (default 262144)")
    p.add_argument("-B", "--buffer-size", type=positive_int, default=16384, metavar="KIB",
                   help="the kernel's receive buffer for the capture, in KiB (default 16384); "
                        "packets that arrive while it is full are dropped by the kernel, "
                        "counted and reported")
    p.add_argument("--promisc", action="store_true",
                   help="put the interface in promiscuous mode (for a mirror/SPAN port)")
    add_selection(p, LIVE_SELECTION_HELP)


# ---------------------------------------------------------------------------------------------
# frame numbers and stream indexes of rotated files

_FRAME_KEYS = frozenset({"frame", "frames", "first_frame"})


def _is_frame_key(key: str) -> bool:
    return key in _FRAME_KEYS or key.endswith("_frame") or key.endswith("_frames")


class FrameMapper:
    """Rewrites the run's global frame numbers in a verdict into the numbers of the file
    the conversation starts in, and ``stream`` into that file's ``tcp.stream`` index.

    ``note_segment`` must see every decoded segment in order: per written file it numbers
    TCP conversations the way Wireshark does (a new index per new address/port 4-tuple, and
    for a SYN without ACK that reuses a 4-tuple with a different initial sequence number).
    Only the first frame of each conversation is remembered (bounded by ``max_entries``).
    """

    def __init__(self, locate: Callable[[int], tuple[str, int]],
                 file_start: Callable[[str], int | None], *, max_entries: int = 200_000) -> None:
        self._locate = locate
        self._file_start = file_start
        self._file: str | None = None
        self._tuples: dict[tuple[str, int, str, int], tuple[int, int | None]] = {}
        self._next = 0
        self._opened: OrderedDict[int, int] = OrderedDict()   # global first frame -> stream
        self._max = max_entries

    def note_segment(self, number: int, src: str, sport: int, dst: str, dport: int,
                     flags: int, seq: int) -> None:
        path, _ = self._locate(number)
        if path != self._file:                 # a new file: Wireshark numbers from 0 again
            self._file = path
            self._tuples.clear()
            self._next = 0
        a, b = (src, sport), (dst, dport)
        key = (*a, *b) if a <= b else (*b, *a)
        syn_only = flags & 0x12 == 0x02
        known = self._tuples.get(key)
        if known is not None and not (syn_only and known[1] is not None and known[1] != seq):
            return
        self._tuples[key] = (self._next, seq if syn_only else None)
        self._opened[number] = self._next
        self._next += 1
        while len(self._opened) > self._max:
            self._opened.popitem(last=False)

    def rewrite(self, conv: dict[str, Any]) -> dict[str, Any]:
        first = conv.get("first_frame")
        if not isinstance(first, int):
            return conv
        path, local = self._locate(first)
        offset = first - local                 # global = local + offset, within this file
        out: dict[str, Any] = _shift(conv, offset)
        out["file"] = path
        start = self._file_start(path)
        if start is not None and start > 1:    # a rotated file: our own stream numbering
            stream = self._opened.get(first)
            if stream is not None:
                out["stream"] = stream
        last = _max_frame(conv)
        if last is not None:
            last_path, _ = self._locate(last)
            if last_path != path:
                out["continued_in"] = last_path
        self._opened.pop(first, None)
        return out


def _shift(value: Any, offset: int, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _shift(v, offset, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, offset, key) for v in value]
    if offset and _is_frame_key(key) and isinstance(value, int) and not isinstance(value, bool):
        return value - offset
    return value


def _max_frame(value: Any, key: str = "") -> int | None:
    best: int | None = None
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = list(value.items())
    elif isinstance(value, list):
        items = [(key, v) for v in value]
    else:
        if _is_frame_key(key) and isinstance(value, int) and not isinstance(value, bool):
            return value
        return None
    for k, v in items:
        m = _max_frame(v, k)
        if m is not None and (best is None or m > best):
            best = m
    return best


# ---------------------------------------------------------------------------------------------
# output


#: The widest values a live verdict row usually has: the table is laid out for these before the
#: first verdict is known.
_TYPICAL_ROW = ["99999", "203.0.113.254:65535", "203.0.113.254:65535", "mx12.mail.example.com",
                "misplaced", "yes", "454", "incomplete", "middlebox", "client-did-not-request"]


class _Printer:
    """Writes verdicts and the summary to ``out``, flushing every line."""

    def __init__(self, out: TextIO, fmt: str) -> None:
        self.out = out
        self.fmt = fmt
        self._layout: Layout | None = None

    def conversation(self, conv: dict[str, Any]) -> None:
        if self.fmt == "json":
            try:
                from pcapsmtp.render.text import render_jsonl
                line = render_jsonl(conv).rstrip("\n")
            except ImportError:
                line = json.dumps(conv, sort_keys=True, separators=(",", ":"))
            self.out.write(line + "\n")
        else:
            self._row(conv)
        self.out.flush()

    def _row(self, conv: dict[str, Any]) -> None:
        """One table row per verdict, as it comes. The columns are laid out once, before the
        first row, for the terminal's width and for the widest values a verdict usually has
        (a longer value wraps inside its column), so every row lines up with the header."""
        from pcapsmtp.render.fit import layout, output_width, render_rows
        from pcapsmtp.render.text import TABLE_COLS, table_row
        if self._layout is None:
            self._layout = layout(TABLE_COLS, [_TYPICAL_ROW], output_width(self.out))
            for line in render_rows(TABLE_COLS, self._layout, []):
                self.out.write(line + "\n")
        for line in render_rows(TABLE_COLS, self._layout, [table_row(conv)], header=False):
            self.out.write(line + "\n")

    def summary(self, analysis: dict[str, Any], capture: dict[str, Any]) -> None:
        if self.fmt == "json":
            self.out.write(json.dumps({"summary": {**analysis, "capture": capture}},
                                      sort_keys=True, separators=(",", ":")) + "\n")
        else:
            lines = [
                "",
                f"capture: {capture['received']} packets seen on {capture['interface']}, "
                f"{capture['dropped_by_kernel']} dropped by the kernel",
            ]
            if capture.get("files"):
                lines.append("written: " + ", ".join(capture["files"]))
            from pcapsmtp.render.fit import output_width
            from pcapsmtp.render.text import render_summary
            lines.append(render_summary(analysis, width=output_width(self.out)).rstrip("\n"))
            self.out.write("\n".join(lines) + "\n")
        self.out.flush()


class _LossReporter:
    """Says on stderr when the kernel dropped packets: at once for the first loss, then at
    most every ``every_ns`` (a sum of what came meanwhile), and a total at the end."""

    def __init__(self, err: TextIO, every_ns: int = 5 * 10**9) -> None:
        self.err = err
        self.every_ns = every_ns
        self.pending = 0
        self.total = 0
        self.last_ns: int | None = None

    def add(self, dropped: int, now_ns: int) -> None:
        self.pending += dropped
        self.total += dropped
        if self.last_ns is None or now_ns - self.last_ns >= self.every_ns:
            self._say(now_ns)

    def _say(self, now_ns: int) -> None:
        clock = time.strftime("%H:%M:%S", time.localtime(now_ns // 10**9))
        print(f"pcapsmtp live: {clock}: the kernel dropped {self.pending:,} packets "
              f"({self.total:,} since the start): the capture cannot keep up; conversations "
              "open then get a capture-loss finding and no blame from what follows the loss",
              file=self.err, flush=True)
        self.pending = 0
        self.last_ns = now_ns

    def done(self, total: int) -> None:
        if total:
            print(f"pcapsmtp live: the kernel dropped {total:,} packets of the capture in all",
                  file=self.err, flush=True)


# ---------------------------------------------------------------------------------------------
# the command


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``pcapsmtp live``. Exit status as for ``analyze``: 0 nothing lost TLS and no
    finding, 1 at least one did (under a selection: a selected one), 2 bad usage or the
    capture cannot be opened."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        return _run(args, out, err)
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except PcapSmtpError as exc:
        from pcapsmtp.commands.common import err_line
        from pcapsmtp.render.text import safe
        err_line(safe(str(exc).splitlines()[0] if str(exc) else type(exc).__name__), err)
        return 2


def _quiet_stdout() -> None:
    """The reader went away (``| head``): silence the interpreter's final flush."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pcapsmtp.capture.live import LiveSource

    if args.interface == "any":
        # Linux's "any" mixes the link layers of every interface; libpcap rewrites each packet
        # into a cooked (SLL) header, which this reader does not do.
        raise UsageError("pcapsmtp live: -i any is not supported; name one interface, or run "
                         "'tcpdump -i any -w FILE' and then 'pcapsmtp analyze FILE'")
    if args.rotate_mb and not args.write:
        raise UsageError("pcapsmtp live: --rotate-mb needs --write FILE.pcapng")
    if args.rotate_keep and not args.rotate_mb:
        raise UsageError("pcapsmtp live: --rotate-keep needs --rotate-mb")
    sel = selection(args)    # checked before the capture opens: a usage error comes first
    ports = frozenset(SMTP_PORTS | set(args.ports))
    if args.bpf is None:
        bpf = build_bpf(ports, tunnels=args.tunnels)
    elif args.tunnels:
        bpf = f"({args.bpf}) or {TUNNEL_BPF} or {_FRAGMENTS}"
    else:
        bpf = args.bpf

    source = LiveSource(args.interface, bpf, write=args.write, rotate_mb=args.rotate_mb,
                        rotate_keep=args.rotate_keep, snaplen=args.snaplen,
                        promisc=args.promisc, timeout=POLL_TIMEOUT,
                        rcvbuf=args.buffer_size * 1024)
    printer = _Printer(out, args.format)
    names = {1: "EN10MB (Ethernet)", 101: "RAW (raw IP)"}
    print(f"pcapsmtp live: listening on {args.interface}, link-type "
          f"{names.get(source.linktype, source.linktype)}, snapshot length {args.snaplen} bytes, "
          f"filter: {bpf}" + (f", writing {args.write}" if args.write else ""),
          file=err, flush=True)
    lost = False
    import signal   # here, not at the top: building its enums costs every other command's start
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        source.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, on_signal)
    try:
        # Imported once the capture is open, so that privilege and interface errors come fast.
        from pcapsmtp.capture.decode import Decoder
        from pcapsmtp.engine.analyzer import AnalysisConfig, Analyzer

        file_label = args.write or f"live:{args.interface}"
        analyzer = Analyzer(AnalysisConfig(ports=ports, early=True), file=file_label)
        decoder = Decoder()
        decoder.on_cut = analyzer.saw_cut
        writer = source.writer
        mapper = (FrameMapper(source.locate, writer.file_start)
                  if writer is not None and writer.limit is not None else None)
        # Under a selection: the conversations decided (selected or not) and the summary of the
        # selected ones. The selection filters the report only: the analyzer, the files written
        # and the capture's counters see every packet.
        seen = 0
        picked: Any = None
        if sel is not None:
            from pcapsmtp.analysis.summary import Summary
            picked = Summary()

        def emit(convs: list[dict[str, Any]]) -> None:
            nonlocal lost, seen
            if not convs:
                return
            source.flush()          # the frames a verdict names are on disk before it is shown
            for conv in convs:
                if mapper is not None:
                    conv = mapper.rewrite(conv)   # every conversation: frees the mapper's entry
                if sel is not None:
                    seen += 1
                    if not sel.matches(conv):
                        continue
                    picked.add(conv)
                lost = lost or needs_attention(conv)
                printer.conversation(conv)

        loss = _LossReporter(err)

        def note_losses() -> None:
            for after, until, dropped in source.take_losses():
                analyzer.note_loss(after, until, dropped)
                loss.add(dropped, until)

        deadline = (time.monotonic() + args.duration) if args.duration else None
        next_tick = time.time_ns() + TICK_EVERY_NS
        count = args.count
        packets = 0
        for frame in source.frames():
            if source.losses_pending:
                note_losses()
            if frame is not None:
                packets += 1
                seg = decoder.decode(frame)
                if seg is not None:
                    if mapper is not None:
                        mapper.note_segment(seg.frame, seg.src, seg.sport, seg.dst, seg.dport,
                                            seg.flags, seg.seq)
                    emit(analyzer.feed(seg))
                if count is not None and packets >= count:
                    source.stop()
            now = time.time_ns()
            if frame is None or now >= next_tick:
                emit(analyzer.tick(now))
                source.flush()
                next_tick = now + TICK_EVERY_NS
            if deadline is not None and time.monotonic() >= deadline:
                source.stop()
        source.poll_drops()
        note_losses()
        emit(analyzer.finish())
        source.close()
        capture = source.stats()
        loss.done(capture["dropped_by_kernel"])
        capture["undecodable"] = decoder.undecodable
        if decoder.notes:
            capture["notes"] = list(decoder.notes)
        analysis = analyzer.summary()
        if sel is not None:
            analysis = dict(selected_summary(analysis, picked.as_dict()), selected_from=seen)
        printer.summary(analysis, capture)
    finally:
        source.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if lost else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m pcapsmtp.commands.live -i lo``), same options as the
    ``live`` subcommand."""
    parser = argparse.ArgumentParser(prog="pcapsmtp live")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
