"""RFC 1869 §4.3 / RFC 5321 §4.1.1.1 and §4.2.1 checks of one EHLO reply.

``check_ehlo(reply, stray)`` looks at the reply's lines as sent (each with its own code and
separator) and at the stray lines that followed a premature end, and says whether STARTTLS
was offered where a strict client sees it (``valid``), only where it cannot (``misplaced``),
rewritten by a middlebox (``masked``), or not at all (``absent``), with findings whose
evidence is a line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from pcapsmtp.model import Side
from pcapsmtp.smtp.events import ReplyLine

__all__ = ["EhloCheck", "LineFinding", "check_ehlo", "KNOWN_KEYWORDS", "is_masked_banner",
           "masked_keyword", "RFC_EHLO", "RFC_REPLY"]

RFC_EHLO = "RFC 5321 4.1.1.1"
RFC_REPLY = "RFC 5321 4.2.1"
RFC_LINE_LENGTH = "RFC 5321 4.5.3.1.5"
RFC_CRLF = "RFC 5321 2.3.8"

#: EHLO keywords registered with IANA or widely sent (upper case).
KNOWN_KEYWORDS = frozenset({
    "STARTTLS", "8BITMIME", "SIZE", "PIPELINING", "AUTH", "DSN", "ENHANCEDSTATUSCODES", "CHUNKING",
    "BINARYMIME", "SMTPUTF8", "HELP", "ETRN", "VRFY", "EXPN", "DELIVERBY", "REQUIRETLS", "MTRK",
    "LIMITS", "ATRN", "NO-SOLICITING", "FUTURERELEASE", "CONPERM", "CONNEG", "MT-PRIORITY", "RRVS",
    "SUBMITTER", "BURL", "CHECKPOINT", "VERB", "ONEX", "XEXCH50", "X-EXPS", "X-LINK2STATE",
    "XCLIENT", "XFORWARD", "TURN", "SEND", "SOML", "SAML", "UTF8SMTP", "X-ANONYMOUSTLS", "XSHADOW",
    "XRDST", "XUSR", "XOORG", "CLIENTID",
})

_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
_MASKED = re.compile(r"X{2,}[A-Z]?\Z")
#: ``AUTH=LOGIN PLAIN``: the keyword form of drafts before RFC 2554 that old servers still send
#: beside ``AUTH`` for old clients (Outlook Express, Netscape); harmless, not a violation
_LEGACY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*=[\x21-\x7e]*\Z")
#: A keyword line with nothing to report, as nearly every server writes every line after the
#: first ("SIZE 52428800"): a valid keyword at the start, then a space or the end, that is
#: neither STARTTLS (any case) nor a masked keyword (``XX...``). ``check_ehlo`` only records
#: such a line (when its code is the reply's); every other line takes the full checks.
_PLAIN_KEYWORD = re.compile(r"(?!XX)(?![Ss][Tt][Aa][Rr][Tt][Tt][Ll][Ss](?: |\Z))"
                            r"[A-Za-z0-9][A-Za-z0-9-]*(?: |\Z)")


@dataclass(frozen=True, slots=True)
class LineFinding:
    code: str
    side: Side | str
    line: ReplyLine
    rfc: str
    message: str
    confidence: str = "high"


@dataclass(slots=True)
class EhloCheck:
    offered: str                               #: valid | misplaced | masked | absent
    domain: str
    keywords: list[str] = field(default_factory=list)   #: keyword lines as a strict client reads them
    findings: list[LineFinding] = field(default_factory=list)
    starttls_line: ReplyLine | None = None     #: where STARTTLS (or its mask) stands
    masked_keywords: list[str] = field(default_factory=list)
    starttls_where: str = ""                   #: for misplaced: "domain", "code" or "stray"


def _first_word(text: str) -> str:
    return text.strip().split(" ", 1)[0] if text.strip() else ""


def masked_keyword(word: str) -> bool:
    """A keyword made of filler characters, as Cisco ESMTP inspection writes it (``XXXXXXXA``)."""
    return bool(_MASKED.match(word)) or (len(word) >= 4 and set(word) <= {"*"})


def is_masked_banner(text: str) -> bool:
    """A banner whose characters are asterisks except '2' and '0' (Cisco ``mask-banner``)."""
    body = text.replace(" ", "")
    return body.count("*") >= 5 and set(body) <= {"*", "2", "0"}


def check_ehlo(lines: tuple[ReplyLine, ...], stray: tuple[ReplyLine, ...] = ()) -> EhloCheck:
    """Check a 2xx EHLO reply. ``stray`` are lines that followed a premature end of it."""
    first = lines[0]
    code = first.code
    domain = _first_word(first.text)
    chk = EhloCheck(offered="absent", domain=domain)
    starttls_valid = False
    starttls_elsewhere: ReplyLine | None = None
    where = ""

    if domain.upper() in KNOWN_KEYWORDS:
        chk.findings.append(LineFinding(
            "ehlo-keyword-as-domain", Side.SERVER, first, RFC_EHLO,
            f"first EHLO reply line carries {domain} where the server's domain belongs"
            + ("; strict clients read it as the server's name and never see the extension"
               if domain.upper() == "STARTTLS" else "")))
        if domain.upper() == "STARTTLS":
            starttls_elsewhere = first
            where = "domain"
    for ln in lines:
        if ln.bare_lf:
            chk.findings.append(LineFinding(
                "ehlo-bare-lf", Side.SERVER, ln, RFC_CRLF,
                "EHLO reply line ends in a bare LF instead of CRLF; strict clients (lettre) hang "
                "or fail on it"))
            break
    for ln in lines:
        if ln.octets > 512:
            chk.findings.append(LineFinding(
                "ehlo-line-too-long", Side.SERVER, ln, RFC_LINE_LENGTH,
                f"EHLO reply line is {ln.octets} octets, over the 512 a client must accept"))
            break
    for i, ln in enumerate(lines[1:], start=1):
        if ln.sep != "-" and ln.sep != " " and ln.code == code:
            # `250` alone or `250X`: a reply line may end so (RFC 5321 4.2), an EHLO reply's may
            # not (its last line is the code, SP and a keyword); clients read it apart
            # (tests/realclients/test_hunt25_real.py): swaks reads on until a line `250 ` and,
            # when none comes, counts EHLO as failed after its timeout and greets with HELO;
            # Go reads on too (net/textproto ReadResponse appends a line that does not parse and
            # reads the next) and fails when its read ends; msmtp fails on it at once; curl ends
            # the reply at `250` with CRLF only
            chk.findings.append(LineFinding(
                "ehlo-bad-keyword", Side.SERVER, ln, RFC_EHLO,
                f"EHLO reply line {i + 1} has no space or '-' after its code and no keyword "
                f"({ln.raw[:12].decode('latin-1')!r}); swaks then waits for the reply's end and falls back "
                "to HELO, Go reads on for it and fails when none comes, msmtp fails on it"))
        if ln.code == code and _PLAIN_KEYWORD.match(ln.text):
            chk.keywords.append(ln.text.strip())
            continue
        word = _first_word(ln.text)
        if ln.code != code:
            chk.findings.append(LineFinding(
                "ehlo-mixed-codes", Side.SERVER, ln, RFC_REPLY,
                f"EHLO reply line {i + 1} has code {ln.code} inside a {code} reply"
                + ("; clients that check codes (Exim, Go, MailKit, lettre) do not take its "
                   "STARTTLS" if word.upper() == "STARTTLS" else "")))
            if word.upper() == "STARTTLS" and starttls_elsewhere is None:
                starttls_elsewhere = ln
                where = "code"
            continue
        if ln.text.startswith(" ") and word:
            # `250- STARTTLS`: not an ehlo-line by the grammar; Exim, Go, Sendmail, OpenSMTPD,
            # MailKit, swaks, curl, msmtp, Haraka and Angus read an empty or odd keyword.
            chk.findings.append(LineFinding(
                "ehlo-bad-keyword", Side.SERVER, ln, RFC_EHLO,
                f"EHLO reply line {i + 1} has a space after the separator"
                + ("; most clients then do not see STARTTLS" if word.upper() == "STARTTLS" else "")))
            if word.upper() == "STARTTLS":
                if starttls_elsewhere is None:
                    starttls_elsewhere = ln
                    where = "space"
                continue
        if masked_keyword(word):
            chk.masked_keywords.append(word)
            if word == "XXXXXXXA" or (len(word) == 8 and chk.starttls_line is None):
                chk.starttls_line = chk.starttls_line or ln
            continue
        if word.upper() == "STARTTLS":
            chk.keywords.append(word)
            if ln.text.strip() == word and ln.text != ln.text.rstrip():
                # `250 STARTTLS ` (the grammar allows a space only before a parameter): OpenSMTPD,
                # swaks and Haraka compare the whole rest of the line with the keyword
                chk.findings.append(LineFinding(
                    "ehlo-bad-keyword", Side.SERVER, ln, RFC_EHLO,
                    f"EHLO reply line {i + 1} ends in white space after STARTTLS; OpenSMTPD, swaks and "
                    "Haraka compare the whole line with the keyword and then do not see it"))
            if ln.text.strip() != word:
                chk.findings.append(LineFinding(
                    "ehlo-starttls-parameter", Side.SERVER, ln, "RFC 3207 4",
                    f"the STARTTLS keyword carries a parameter ({ln.text.strip()[:40]!r}) though "
                    "it takes none; OpenSMTPD, MailKit, swaks and Haraka then do not see it"))
            if not starttls_valid:
                starttls_valid = True
                chk.starttls_line = ln
            continue
        if word:
            chk.keywords.append(ln.text.strip())
        if word and _LEGACY.match(word):
            chk.findings.append(LineFinding(
                "ehlo-legacy-keyword", Side.SERVER, ln, RFC_EHLO,
                f"EHLO reply line {i + 1} uses the legacy X=Y keyword form ({word[:40]!r}) that old "
                "servers send for old clients; clients ignore a line they do not know (a note, not a "
                "violation)"))
            continue
        if word and not _KEYWORD.match(word) and not (i == 1 and starttls_elsewhere is first):
            # (the domain pushed to line 2 by a keyword on line 1 is the same fault, not another)
            chk.findings.append(LineFinding(
                "ehlo-bad-keyword", Side.SERVER, ln, RFC_EHLO,
                f"EHLO reply line {i + 1} does not start with a valid keyword: {word[:40]!r}"))
    if stray:
        chk.findings.append(LineFinding(
            "ehlo-premature-end", Side.SERVER, lines[-1], RFC_REPLY,
            f"EHLO reply ends early (a `{code} ` line before the last); {len(stray)} further "
            "line(s) reach the client as the reply to its next command"))
        for ln in stray:
            if _first_word(ln.text).upper() == "STARTTLS" and starttls_elsewhere is None:
                starttls_elsewhere = ln
                where = "stray"

    if starttls_valid:
        chk.offered = "valid"
    elif chk.starttls_line is not None and chk.masked_keywords:
        chk.offered = "masked"
        exact = "XXXXXXXA" in chk.masked_keywords
        chk.findings.append(LineFinding(
            "starttls-masked", "middlebox", chk.starttls_line, "RFC 3207 4",
            ("STARTTLS rewritten to XXXXXXXA (Cisco ESMTP inspection fingerprint); "
             "no client can see the extension" if exact else
             f"keyword {_first_word(chk.starttls_line.text)} is masked and has STARTTLS's length: "
             "a middlebox rewrote the EHLO reply (it may also hide CHUNKING or 8BITMIME)"),
            "high" if exact else "medium"))
    elif starttls_elsewhere is not None:
        chk.offered = "misplaced"
        chk.starttls_line = starttls_elsewhere
    if chk.masked_keywords and chk.offered != "masked":
        for ln in lines:    # (the first line of one: the masked keywords are words of these lines)
            if _first_word(ln.text) in chk.masked_keywords:
                break
        chk.findings.append(LineFinding(
            "ehlo-masked-keyword", "middlebox", ln, RFC_EHLO,
            f"masked keyword(s) {', '.join(chk.masked_keywords[:4])}: a middlebox rewrites this "
            "EHLO reply", "low"))
    chk.starttls_where = where
    return chk
