"""Command line: ``pcapsmtp analyze|explain|annotate|check-ehlo|diff|live|report``.

Each command is a module of ``pcapsmtp.commands`` with ``add_parser(sub)``, which sets
``func``; this module builds the parser and turns errors into one line and exit status 2.

Exit status: 0 no conversation lost TLS and no RFC violation was found; 1 at least one did
or was; 2 bad usage or unreadable input (one line on stderr naming the file and offset).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, Sequence, TextIO

from pcapsmtp import __version__
from pcapsmtp.commands import analyze, annotate, check_ehlo, diff, explain, live, report
from pcapsmtp.commands.common import err_line
from pcapsmtp.commands.status import lost_tls, violations
from pcapsmtp.errors import BackendUnavailable, CaptureError, PcapSmtpError, UsageError

__all__ = ["main", "leave", "run", "lost_tls", "violations"]

#: whether the command ``main`` ran last lets ``leave`` skip the last cyclic collections
#: (``_may_skip_collection``)
_skip_collection = False


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="pcapsmtp",
        description="Why did STARTTLS not happen, and whose fault was it? Answered from packet "
                    "captures alone: pcapsmtp never connects to a server or resolves a name.")
    from pcapsmtp.engine.accel import describe
    ap.add_argument("--version", action="version",
                    version=f"pcapsmtp {__version__} ({describe()})")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    for mod in (analyze, explain, annotate, check_ehlo, live, diff, report):
        mod.add_parser(sub)
    return ap


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
    global _skip_collection
    _skip_collection = _may_skip_collection(args)
    try:
        if args.command in ("live", "diff"):
            return int(args.func(args))
        return int(args.func(args, out, err))
    except (CaptureError, UsageError, BackendUnavailable, PcapSmtpError) as exc:
        from pcapsmtp.render.text import safe
        err_line(safe(str(exc)), err)
        return 2
    except BrokenPipeError:
        _quiet_pipe()
        return 0
    except KeyboardInterrupt:
        return 130


def _may_skip_collection(args: argparse.Namespace) -> bool:
    """Whether the interpreter's last collections of cyclic garbage may be skipped after this
    command: ``analyze`` writes only to standard output and error, which the interpreter
    flushes at its end whatever the collector does; its captures it only reads."""
    return args.command == "analyze"


def leave(status: int) -> NoReturn:
    """End ``python -m pcapsmtp`` with ``status``, as ``sys.exit`` does. After ``analyze``
    (``_may_skip_collection``) every object is moved to the collector's permanent generation
    first (``gc.freeze``), so the interpreter's finalisation does not search the whole heap for
    cycles once more (about 1.7 % of a run's instructions: 39 M of the relay cut's 2.25 G,
    docs/performance.md); a cycle left at the end is then not freed, which a process about to
    end does not need. Everything else of a normal end is unchanged: standard output and error
    flushed (a ``BrokenPipeError`` reported as before), the ``atexit`` functions run, threads
    waited for, modules cleared. ``main()`` called in-process is not concerned."""
    if _skip_collection:
        import gc
        gc.freeze()
    sys.exit(status)


def run() -> NoReturn:
    """The ``pcapsmtp`` console script and ``python -m pcapsmtp``: ``main`` on the command line,
    ended by ``leave``."""
    leave(main())


def _quiet_pipe() -> None:
    """`pcapsmtp ... | head`: stop quietly when the reader goes away."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
