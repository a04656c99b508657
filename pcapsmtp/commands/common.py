"""Options and helpers shared by the commands that read captures."""
from __future__ import annotations

import argparse
from typing import Any, TextIO

from pcapsmtp.commands.args import grace_ns, minutes_ns, port
from pcapsmtp.errors import UsageError
from pcapsmtp.tcp.config import ReassemblyConfig


def add_redaction(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redact-addresses", action="store_true",
                   help="replace envelope addresses, EHLO names and host names with stable "
                   "pseudonyms, for sharing a report")
    p.add_argument("--redact-key", metavar="KEY", default=None,
                   help="with --redact-addresses: the key of the pseudonyms, so that two reports "
                   "can be compared (default: a random key per run)")
    p.add_argument("--redact-ips", action="store_true",
                   help="with --redact-addresses: replace IP addresses too")


def make_redactor(args: argparse.Namespace) -> Any:
    if not getattr(args, "redact_addresses", False):
        if getattr(args, "redact_key", None) or getattr(args, "redact_ips", False):
            raise UsageError("--redact-key and --redact-ips go with --redact-addresses")
        return None
    from pcapsmtp.render.redact import Redactor
    return Redactor(args.redact_key.encode() if args.redact_key else None, ips=args.redact_ips)


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", dest="ports", type=port, action="append", default=[],
                   metavar="N", help="also treat TCP port N as SMTP (repeatable; 25, 465, 587 "
                   "and 2525 always are, and any port whose server speaks first with 220)")
    p.add_argument("--no-content-detection", action="store_true",
                   help="only follow the SMTP ports, not conversations recognised by content")
    p.add_argument("--engine", choices=("scapy", "tshark"), default="scapy",
                   help="how packets are decoded: pcapsmtp's own reader (default; it unwraps "
                   "GRE, ERSPAN, VXLAN, Geneve, IP-in-IP, MPLS and PPPoE) or tshark's "
                   "dissection through pyshark (whatever else Wireshark decodes)")
    p.add_argument("--fallback-window", type=minutes_ns, default=15 * 60 * 10**9, metavar="MIN",
                   help="a plaintext retry within MIN minutes (capture time) of a failed TLS "
                   "attempt between the same hosts is reported as tls-fallback (default 15)")
    p.add_argument("--closed-grace", type=grace_ns, default=ReassemblyConfig.closed_grace_ns,
                   metavar="SEC|never",
                   help="forget a closed TCP conversation (FIN both ways, or RST) SEC seconds of "
                   "capture time after it closed, so memory stays flat on long captures "
                   f"(default {(ReassemblyConfig.closed_grace_ns or 0) // 10**9}); 'never' keeps tcp.stream "
                   "equal to Wireshark's even for packets that come later, at the cost of memory")


def config(args: argparse.Namespace, **kw: Any) -> Any:
    from pcapsmtp.model import SMTP_PORTS
    from pcapsmtp.engine.analyzer import AnalysisConfig
    return AnalysisConfig(ports=frozenset(SMTP_PORTS | set(args.ports)),
                          detect_by_content=not args.no_content_detection,
                          fallback_window_ns=args.fallback_window,
                          closed_grace_ns=args.closed_grace, **kw)


def err_line(msg: str, err: TextIO) -> None:
    print(f"pcapsmtp: error: {msg}", file=err, flush=True)


def add_rotation(p: argparse.ArgumentParser) -> None:
    """--rotated and its two escapes (analyze, explain, annotate, report)."""
    p.add_argument("--rotated", action="store_true",
                   help="the files are consecutive pieces of one capture (tcpdump -C/-G, a "
                   "dumpcap ring buffer): read in order of first packet as one, conversations "
                   "followed across the boundaries; every frame reference names its file")
    p.add_argument("--allow-overlap", action="store_true",
                   help="with --rotated: accept files that overlap in time (read in order of "
                   "first packet)")
    p.add_argument("--allow-mixed-links", action="store_true",
                   help="with --rotated: accept files of different link types")


def rotated_set(args: argparse.Namespace, files: list[str]) -> list[str]:
    """The files of a rotated set in capture order (checked: one-line UsageError), or the
    files as given without --rotated."""
    if not args.rotated:
        if args.allow_overlap or args.allow_mixed_links:
            raise UsageError("--allow-overlap and --allow-mixed-links go with --rotated")
        return list(files)
    from pcapsmtp.engine.rotated import order_pieces
    return [pc.path for pc in order_pieces(list(files), allow_overlap=args.allow_overlap,
                                           allow_mixed_links=args.allow_mixed_links)]
