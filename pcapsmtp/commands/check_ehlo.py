"""``pcapsmtp check-ehlo``: the EHLO checks and the client table for a reply pasted as text
(from a log, a telnet or swaks session), no capture needed."""
from __future__ import annotations

import argparse
import re
import sys
from typing import Any, TextIO

from pcapsmtp.analysis.clients import matrix
from pcapsmtp.analysis.ehlo import check_ehlo
from pcapsmtp.errors import CaptureError, UsageError, os_message
from pcapsmtp.commands.status import INFORMATIONAL
from pcapsmtp.model import Side
from pcapsmtp.render.fit import output_width, wrap_text
from pcapsmtp.render.text import safe
from pcapsmtp.smtp.events import Reply
from pcapsmtp.smtp.session import SmtpSession

__all__ = ["check_pasted_reply", "normalise_paste"]

# What logs and tools put before a line: swaks "<-  " / " -> " (and "<~ " / " ~> " inside TLS,
# "<** " / "*** " for its own errors), Postfix "<<< " / ">>> ", "S: " / "C: ", "< " / "> ", and a
# time stamp.
_PREFIX = re.compile(rb"^\s*(?:\[?\d\d:\d\d:\d\d[^\]\s]*\]?\s+)?"
                     rb"(?:<-+|->|<~|~>|<<<|>>>|<\*\*|\*\*\*|[SC]:|<|>)?[ \t]*")
_REPLY = re.compile(rb"\d{3}(?:[ -]|$)")
_GREETING = re.compile(rb"(?i)(?:EHLO|HELO|LHLO)(?:\s|$)")


class NoReplyFound(UsageError):
    """The text holds no EHLO reply line (empty, garbage, or only commands)."""


def normalise_paste(data: bytes) -> bytes:
    """The EHLO reply in a pasted session, one reply line per input line, every line ending in
    CRLF (a paste cannot show bare LFs, so none is assumed; CRLF and LF input read the same).

    Log and tool prefixes are removed. When the paste shows the typed EHLO (a telnet or swaks
    session), the reply is the run of reply lines after it: the banner and the command are not
    part of it. Without a command, a leading 220 banner is skipped when reply lines follow it.
    Lines after the reply that do not look like reply lines (QUIT, chatter) end it."""
    lines = [_PREFIX.sub(b"", raw.rstrip(b"\r")) for raw in data.replace(b"\r\n", b"\n").split(b"\n")]
    lines = [ln.rstrip() for ln in lines]
    hello = next((i for i, ln in enumerate(lines) if _GREETING.match(ln)), None)
    if hello is not None:
        lines = lines[hello + 1:]
    out: list[bytes] = []
    for line in lines:
        if not line.strip():
            continue
        if _REPLY.match(line) is None:
            if not out:
                continue  # chatter before the reply ("Trying ...", "Connected to ...")
            break
        out.append(line + b"\r\n")
    if hello is None and len(out) > 1 and out[0].startswith(b"220"):
        # a banner first: its lines up to the one that ends it ("220 " with a space)
        end = next((i for i, ln in enumerate(out) if ln.startswith(b"220 ") or ln == b"220\r\n"), None)
        if end is not None and end + 1 < len(out):
            out = out[end + 1:]
    return b"".join(out)


def check_pasted_reply(data: bytes, width: int | None = None) -> tuple[str, bool]:
    """The report text and whether a strict client would miss STARTTLS or the RFC is broken."""
    reply_bytes = normalise_paste(data)
    if not reply_bytes:
        raise NoReplyFound("no EHLO reply found: paste the lines the server sent after EHLO, "
                           "each starting with its code (250-..., 250 ...)")
    s = SmtpSession()
    s.receive(Side.SERVER, b"220 pasted ESMTP\r\n")
    s.receive(Side.CLIENT, b"EHLO pcapsmtp.invalid\r\n")
    events = s.receive(Side.SERVER, reply_bytes)
    # the session hands out lines after a premature end of the reply when the client reads
    # them, that is with its next command
    events += s.receive(Side.CLIENT, b"QUIT\r\n")
    events += s.receive_eof(Side.SERVER, truncated=True)
    replies = [e for e in events if isinstance(e, Reply)]
    if not replies:
        raise NoReplyFound("no complete EHLO reply in the pasted text")
    reply = replies[0]
    stray = tuple(ln for r in replies[1:] for ln in r.lines)
    out: list[str] = []
    if reply.code is None or not 200 <= reply.code < 300:
        out.append(wrap_text(f"The reply is not a positive EHLO answer (code {reply.code}): the "
                             "client falls back to HELO, which has no extensions.", width, "  "))
        return "\n".join(out), True
    chk = check_ehlo(reply.lines, stray)
    where = {"domain": "in the domain slot of line 1", "code": "on a line with another code",
             "stray": "after the premature end of the reply"}.get(chk.starttls_where, "")
    out.append(f"STARTTLS offered: {chk.offered}" + (f" ({where})" if chk.offered == "misplaced" else ""))
    out.append(wrap_text(f"server domain (line 1): {safe(chk.domain)}", width, "  "))
    for f in chk.findings:
        idx = next((i for i, ln in enumerate(reply.lines + stray) if ln is f.line), 0)
        out.append(wrap_text(f"line {idx + 1}: {f.code} ({f.side}; {f.rfc}): {safe(f.message)}",
                             width, "  "))
    if not chk.findings:
        out.append("no RFC 5321 finding")
    out.append("")
    out.append("Known clients facing this reply:")
    from pcapsmtp.render.explain import render_clients   # not imported by the other commands
    out.append(render_clients(None, matrix(reply_bytes), width=width))
    bad = chk.offered != "valid" or any(f.confidence != "low" and f.code not in INFORMATIONAL
                                        for f in chk.findings)
    return "\n".join(out), bad


def add_parser(sub: Any) -> argparse.ArgumentParser:
    c = sub.add_parser("check-ehlo", help="check an EHLO reply pasted as text (from a log or a "
                       "telnet or swaks session); no capture needed",
                       description="Check an EHLO reply pasted as text: where STARTTLS stands, "
                       "the RFC 5321 findings, and which known clients would see it. A whole "
                       "telnet or swaks session may be pasted (banner, the typed EHLO, the 250 "
                       "lines, with swaks' <- and -> prefixes); CRLF or LF line ends.")
    c.add_argument("file", nargs="?", default="-", metavar="FILE",
                   help="a text file with the reply lines ('-' or nothing: standard input)")
    c.set_defaults(func=run)
    return c


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    name = "standard input" if args.file == "-" else args.file
    if args.file == "-":
        data = sys.stdin.buffer.read(1 << 20)
    else:
        try:
            with open(args.file, "rb") as fh:
                data = fh.read(1 << 20)
        except OSError as exc:
            raise CaptureError(args.file, None, os_message(exc, "a text file")) from None
    try:
        report, bad = check_pasted_reply(data, output_width(out))
    except NoReplyFound as exc:
        raise NoReplyFound(f"{name}: {exc}") from None
    out.write(report + "\n")
    return 1 if bad else 0
