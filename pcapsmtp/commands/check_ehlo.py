"""``pcapsmtp check-ehlo``: the EHLO checks and the client table for a reply pasted as text
(from a log, a telnet or swaks session), no capture needed."""
from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

import re

from pcapsmtp.analysis.clients import matrix
from pcapsmtp.analysis.ehlo import check_ehlo
from pcapsmtp.errors import CaptureError
from pcapsmtp.model import Side
from pcapsmtp.render.explain import render_clients
from pcapsmtp.render.text import safe
from pcapsmtp.smtp.events import Reply
from pcapsmtp.smtp.session import SmtpSession

__all__ = ["check_pasted_reply", "normalise_paste"]

# Prefixes that logs and tools put before server lines: swaks "<-  ", "<~ ", telnet-style
# "S: ", "< ", Postfix's "<<< ".
_PREFIX = re.compile(rb"^\s*(?:<-+\s*|<~\s*|<<<\s*|<\s+|S:\s*|\[?\d\d:\d\d:\d\d[^\]]*\]?\s+)")


def normalise_paste(data: bytes) -> bytes:
    """One reply line per input line, log prefixes removed, every line ending in CRLF (a paste
    cannot show bare LFs, so none is assumed). Lines before the first reply line are dropped."""
    out: list[bytes] = []
    for raw in data.splitlines():
        line = _PREFIX.sub(b"", raw).rstrip(b"\r\n")
        if not line.strip():
            continue
        if re.match(rb"\d{3}", line) is None:
            if not out:
                continue  # commands or chatter before the reply
            break
        out.append(line + b"\r\n")
    return b"".join(out)


def check_pasted_reply(data: bytes) -> tuple[str, bool]:
    """The report text and whether a strict client would miss STARTTLS or the RFC is broken."""
    reply_bytes = normalise_paste(data)
    if not reply_bytes:
        return ("no EHLO reply found: paste the lines the server sent after EHLO, "
                "each starting with its code (250-..., 250 ...)", True)
    s = SmtpSession()
    s.receive(Side.SERVER, b"220 pasted ESMTP\r\n")
    s.receive(Side.CLIENT, b"EHLO pcapsmtp.invalid\r\n")
    events = s.receive(Side.SERVER, reply_bytes)
    events += s.receive_eof(Side.SERVER, truncated=True)
    replies = [e for e in events if isinstance(e, Reply)]
    if not replies:
        return "no complete reply in the pasted text", True
    reply = replies[0]
    stray = tuple(ln for r in replies[1:] for ln in r.lines)
    out: list[str] = []
    if reply.code is None or not 200 <= reply.code < 300:
        out.append(f"The reply is not a positive EHLO answer (code {reply.code}): the client falls "
                   "back to HELO, which has no extensions.")
        return "\n".join(out), True
    chk = check_ehlo(reply.lines, stray)
    where = {"domain": "in the domain slot of line 1", "code": "on a line with another code",
             "stray": "after the premature end of the reply"}.get(chk.starttls_where, "")
    out.append(f"STARTTLS offered: {chk.offered}" + (f" ({where})" if chk.offered == "misplaced" else ""))
    out.append(f"server domain (line 1): {safe(chk.domain)}")
    for f in chk.findings:
        idx = next((i for i, ln in enumerate(reply.lines + stray) if ln is f.line), 0)
        out.append(f"line {idx + 1}: {f.code} ({f.side}; {f.rfc}): {safe(f.message)}")
    if not chk.findings:
        out.append("no RFC 5321 finding")
    out.append("")
    out.append("Known clients facing this reply:")
    out.append(render_clients(None, matrix(reply_bytes)))
    bad = chk.offered != "valid" or any(f.confidence != "low" for f in chk.findings)
    return "\n".join(out), bad


def add_parser(sub: Any) -> argparse.ArgumentParser:
    c = sub.add_parser("check-ehlo", help="check an EHLO reply pasted as text (from a log or a "
                       "telnet session); no capture needed")
    c.add_argument("file", nargs="?", default="-", metavar="FILE",
                   help="a text file with the reply lines ('-' or nothing: standard input)")
    c.set_defaults(func=run)
    return c


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
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
