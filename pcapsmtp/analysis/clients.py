"""Which known SMTP clients would see STARTTLS in a given EHLO reply.

Each client's EHLO parser, as read in its own source code (``docs/clients.md``: the matrix, sources), is
written down as DATA: one frozen :class:`ClientRule` per client in :data:`CLIENTS`. A single
interpreter, :func:`sees_starttls`, applies any rule to the raw bytes of a reply. Adding or
correcting a client means editing a row, never the interpreter.

The interpreter runs the same five steps for every client; the switches select the variant:

1. split the bytes into lines (``line_ending``);
2. read lines until the reply ends: a well-formed line (``line_re``) whose separator is not ``-``
   ends it; malformed lines and lines under a foreign code are handled by ``malformed`` and
   ``mixed_codes``; lines after the end are stray and never count;
3. an EHLO reply whose status (``status_from``) is not 2xx gives no extensions;
4. a single-line reply records none either when ``single_line_keywords`` is False;
5. the keyword test: a regex over the joined reply (``match=REGEX``), or a per-line test on the
   text after code and separator (``match`` TOKEN / EXACT / PREFIX, ``token_end``,
   ``trim_leading``, ``trim_trailing``, ``case_fold``), skipping line one unless
   ``scan_first_line``.

Results: ``"Y"`` the client records STARTTLS as offered, ``"N"`` it does not (an opportunistic
client silently stays in plaintext), ``"X"`` it errors out or aborts (no mail on this
connection). Bad bytes never raise; they give one of the three.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "LineEnding", "Malformed", "MixedCodes", "StatusFrom", "Match", "After454", "AfterTimeout",
    "Confidence", "Note",
    "ClientRule", "CLIENTS", "CLIENTS_WITHOUT_RULE", "client", "sees_starttls", "explain",
    "predict", "matrix", "retrying_clients", "banner_matrix", "predict_banner", "BANNER_IGNORED",
]

KEYWORD = b"STARTTLS"
MASKED_KEYWORD = b"XXXXXXXA"


class LineEnding(StrEnum):
    """Where a line ends, and what is removed from its end."""

    LF = "lf"                #: at LF; one CR before it is dropped
    LF_DROP_CR = "lf-drop-cr"  #: at LF; every CR anywhere in the line is dropped (swaks)
    LF_OR_CR = "lf-or-cr"    #: at LF, CRLF or a lone CR (Java LineInputStream)
    CRLF = "crlf"            #: only at CRLF; a bare LF is line content (lettre)
    LF_KEEP_CR = "lf-keep-cr"  #: at LF; a CR before it stays in the line (curl counts it)


class Malformed(StrEnum):
    """What the client does with a line that does not match its ``line_re``."""

    ERROR = "error"          #: the read fails: X
    SKIP = "skip"            #: ignored, reading goes on, never scanned
    CONTINUE = "continue"    #: kept as a continuation line (text after 4 bytes), never ends the reply
    INDEX3 = "index3"        #: no validation: kept, and ends the reply unless byte 3 is '-'
    RAW = "raw"              #: kept raw, code included, never ends; on line one EHLO fails (Go)
    EHLO_FAILS = "ehlo-fails"  #: the reply gets status -1: EHLO failed, HELO fallback, no extensions


class MixedCodes(StrEnum):
    """What the client does with a well-formed line whose code differs from line one's."""

    IGNORE = "ignore"        #: codes are not compared
    RAW = "raw"              #: the line is kept raw, code included, and never ends the reply (Go)
    ERROR = "error"          #: protocol error: X (MailKit, lettre)


class StatusFrom(StrEnum):
    """Which line's code is the reply's status."""

    FIRST = "first"
    LAST = "last"


class Match(StrEnum):
    """How STARTTLS is recognised."""

    TOKEN = "token"          #: first token of the line text (ends at ``token_end``) equals STARTTLS
    EXACT = "exact"          #: the whole line text equals STARTTLS
    PREFIX = "prefix"        #: the line text starts with STARTTLS
    REGEX = "regex"          #: ``regex`` searched in the reply lines joined by LF, codes included


class After454(StrEnum):
    """What the client does, in its opportunistic mode, when STARTTLS is answered 454."""

    SAME_CONNECTION = "same-connection"  #: goes on in plaintext on the same connection
    ERROR = "error"                      #: fails the delivery/session
    DEFER = "defer"                      #: temp-fails and retries later
    CONFIG = "config"                    #: a setting decides between plaintext and error
    UNKNOWN = "unknown"


class AfterTimeout(StrEnum):
    """What the client does, in its opportunistic mode, when the server stops answering around
    STARTTLS: no reply to STARTTLS, or a 220 and then no answer to its ClientHello. Observed in
    tests/realclients (docs/realclients.md), each client with a 2 s timeout of its own (OpenSMTPD
    with its relay's 300 s, compiled in); rows never observed say ``unknown``."""

    GIVES_UP = "gives-up"                #: its timeout ends the session; no mail, no retry
    SAME_CONNECTION = "same-connection"  #: goes on in plaintext on the same connection
    DEFER = "defer"                      #: defers the message; its next attempt tries STARTTLS again
    RETRY_PLAINTEXT = "retry-plaintext"  #: reconnects at once in plaintext (same delivery attempt)
    RETRY_NEXT_ATTEMPT = "retry-next-attempt"  #: defers; its next attempt goes in plaintext
    NO_TIMEOUT = "no-timeout"            #: no timeout of its own covers it: it waits until killed
    UNKNOWN = "unknown"


class Confidence(StrEnum):
    CR = "cr"    #: read in the client's code path
    OBS = "obs"  #: code reading confirmed or overruled by observing the named version
    DOC = "doc"  #: from vendor documentation only


class Note(StrEnum):
    """When a rule's extra remark is appended to the one-line why."""

    FOLDED = "folded"        #: STARTTLS was seen only thanks to case folding
    CASE_MISS = "case-miss"  #: STARTTLS was missed only because of case
    STRAY = "stray"          #: lines followed the end of the reply
    NOT_SEEN = "not-seen"    #: the answer is N


# Well-formed line shapes (bytes regexes, fullmatch, DOTALL). Groups: code, sep, text.
LINE_DEFAULT = r"(?P<code>[0-9]{3})(?:(?P<sep>[ -])(?P<text>.*))?"
LINE_SEP_REQUIRED = r"(?P<code>[0-9]{3})(?P<sep>[ -])(?P<text>.*)"
LINE_GO = r"(?P<code>[1-9][0-9]{2})(?P<sep>[ -])(?P<text>.*)"
LINE_OPENSMTPD = r"(?P<code>[2-5][0-9]{2})(?:(?P<sep>.)(?P<text>.*))?"
LINE_HARAKA = r"(?P<code>[2-5][0-9]{2})(?P<sep>[ -])#?(?:[0-9]\.[0-9]\.[0-9]\s)?(?P<text>[^\r\n]*)(?:[\r\n].*)?"
LINE_LETTRE = r"(?P<code>[2-5][0-5][0-9])(?:(?P<sep>[ -])(?P<text>.*))?"
#: curl's ``smtp_endofresp`` on the line with its CR (``lf-keep-cr``): three digits, then SP or
#: ``-`` and text (a CR before the LF is not text), or, when the line with its LF is 5 bytes
#: long, any fourth byte: the reply's end (``250\r\n``, "servers that only send the response
#: code"; so too ``250-\n``); shorter lines, and ``250\n``, are no reply line
LINE_CURL = r"(?P<code>[0-9]{3})(?:(?P<sep>[ -])(?P<text>.+?)\r?|.)"
#: CPython smtplib's ``getreply``: a three-digit code (``int(line[:3])``), then anything; only a
#: ``-`` as byte 3 continues the reply, and the text starts after byte 4 (``250X`` ends it)
LINE_SMTPLIB = r"(?P<code>[0-9]{3})(?:(?P<sep>.)(?P<text>.*))?"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class ClientRule:
    """How one client decides, from the EHLO reply bytes, that STARTTLS is offered."""

    name: str
    """Stable short name used in pcapsmtp's output."""
    title: str
    """Human name of the client and component."""
    version: str
    """Version or commit the rule was read from (or observed on)."""
    source: str
    """File:lines the switches come from."""
    confidence: Confidence
    line_ending: LineEnding
    line_re: str
    """What a well-formed reply line looks like to this client (bytes regex, fullmatch)."""
    malformed: Malformed
    mixed_codes: MixedCodes
    status_from: StatusFrom
    single_line_keywords: bool
    """False: a one-line reply records no extensions at all (Go; Ruby needs a continuation line one)."""
    scan_first_line: bool
    """False: line one is the server's domain and never compared with keywords (family 1)."""
    match: Match
    regex: str = ""
    """For ``Match.REGEX``: pattern (bytes, may carry inline flags) over the LF-joined reply lines."""
    token_end: str = ""
    """For ``Match.TOKEN``: bytes regex of one byte that ends the keyword token."""
    case_fold: bool
    trim_leading: bool
    """Leading whitespace after the separator is skipped (``250- STARTTLS`` seen, case C10)."""
    trim_trailing: bool
    """Trailing whitespace of the line is removed before the test."""
    fallback_after_handshake_failure: bool
    """By default, retries the same server in plaintext on a new connection after a failed handshake."""
    fallback_setting: str
    """The setting that governs that retry (or makes it possible when the default is False)."""
    plaintext_after_454: After454
    opportunistic_setting: str
    """The setting under which a missing STARTTLS means silent plaintext."""
    after_starttls_timeout: AfterTimeout = AfterTimeout.UNKNOWN
    """What it does when STARTTLS goes unanswered until its timeout (observed)."""
    after_handshake_timeout: AfterTimeout = AfterTimeout.UNKNOWN
    """What it does when, after the server's 220, its ClientHello goes unanswered (observed). Not
    the same as after a failed handshake (``fallback_after_handshake_failure``): OpenSMTPD
    reconnects in plaintext after a reset, a close or an alert, but defers after a timeout."""
    notes: tuple[tuple[Note, str], ...] = ()
    helo_after_unended_reply: bool = False
    """True: when the reply never ends (no line ends it), the client's read times out, it counts
    EHLO as failed and greets again with HELO, which has no extensions: ``N`` (it goes on in
    plaintext), not ``X`` (swaks, observed 20240103.0)."""
    starttls_kept_across_ehlo: str = ""
    """Non-empty: the client keeps the STARTTLS flag of an earlier EHLO reply on the session when
    a later EHLO's reply lacks it (the other extensions go), so it still sends STARTTLS; the text
    says where that is read. Empty: the last reply alone decides (RFC 5321 4.1.4)."""
    masked_banner_helo: str = ""
    """Non-empty: after a banner masked with asterisks (Cisco mask-banner) the client takes the
    server for a PIX firewall and greets with HELO, not EHLO; the text says where that is set."""

    @property
    def family(self) -> int:
        """1: line one never scanned; 2: every line scanned; 3: regex over the whole reply."""
        if self.match is Match.REGEX:
            return 1 if self.regex.startswith(r"\n") else 3
        return 2 if self.scan_first_line else 1

    def note(self, when: Note) -> str:
        return "; ".join(text for key, text in self.notes if key is when)


_T = Confidence.CR
_SC, _ERR, _DEF, _CFG = (After454.SAME_CONNECTION, After454.ERROR, After454.DEFER, After454.CONFIG)
_GU = AfterTimeout.GIVES_UP

CLIENTS: tuple[ClientRule, ...] = (
    ClientRule(
        name="postfix", title="Postfix smtp(8)", version="snapshot 20260821 (17830e5c13c1)",
        source="postfix/src/smtp/smtp_proto.c:550-626; postfix/src/smtp/smtp_chat.c:241-421 (join "
               "329-333, code 414); postfix/src/util/mystrtok.c; postfix/src/global/smtp_stream.c (smtp_get)",
        confidence=_T, line_ending=LineEnding.LF, line_re=LINE_DEFAULT, malformed=Malformed.CONTINUE,
        mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.LAST, single_line_keywords=True,
        scan_first_line=False, match=Match.TOKEN, token_end=r"[ \t=]", case_fold=True,
        trim_leading=True, trim_trailing=False,
        fallback_after_handshake_failure=True,
        fallback_setting="smtp_tls_security_level=may, no REQUIRETLS, no SASL (smtp.h:594-607, "
                         "smtp_proto.c:1248-1277)",
        plaintext_after_454=_SC, opportunistic_setting="smtp_tls_security_level=may",
        masked_banner_helo="smtp_pix_workarounds (default disable_esmtp, delay_dotcrlf); "
                           "observed with Postfix 3.7",
        after_starttls_timeout=AfterTimeout.DEFER,
        after_handshake_timeout=AfterTimeout.RETRY_NEXT_ATTEMPT,
    ),
    ClientRule(
        name="exim", title="Exim smtp transport", version="git 13835a3c1e05 (2025-12-29) (4.96 observed)",
        source="src/src/transports/smtp.c:266-284 (regex L273), 1969-1984, 2789; "
               "src/src/smtp_out.c:740-806, 836-916",
        confidence=_T, line_ending=LineEnding.LF, line_re=LINE_DEFAULT, malformed=Malformed.ERROR,
        mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.FIRST, single_line_keywords=True,
        scan_first_line=False, match=Match.REGEX, regex=r"\n250[\s\-]STARTTLS(\s|\n|$)",
        case_fold=False, trim_leading=False, trim_trailing=True,
        fallback_after_handshake_failure=True,
        fallback_setting="tls_tempfail_tryclear (default true), host not in hosts_require_tls "
                         "(smtp.c:6185-6210)",
        plaintext_after_454=_SC, opportunistic_setting="default (hosts_try_tls)",
        after_starttls_timeout=AfterTimeout.DEFER, after_handshake_timeout=AfterTimeout.RETRY_PLAINTEXT,
    ),
    ClientRule(
        name="sendmail", title="Sendmail", version="8.18.0.2 (8.17.1.9 observed)",
        source="sendmail/usersmtp.c:449-519 (helo_options, STARTTLS 515-518), 3177-3486 (reply); "
               "sendmail/sendmail.h:2803-2807; sendmail/util.c:1113 (fixcrlf)",
        confidence=_T, line_ending=LineEnding.LF, line_re=LINE_DEFAULT, malformed=Malformed.SKIP,
        mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.FIRST, single_line_keywords=True,
        scan_first_line=False, match=Match.TOKEN, token_end=r"[ =]", case_fold=True,
        trim_leading=False, trim_trailing=False,
        fallback_after_handshake_failure=False,
        fallback_setting="only with TLSFallbacktoClear or a per-host FB2CLR flag (deliver.c:3919-3942, "
                         "3989-4000)",
        plaintext_after_454=_SC, opportunistic_setting="default tls_server ruleset",
        after_starttls_timeout=AfterTimeout.DEFER, after_handshake_timeout=AfterTimeout.DEFER,
    ),
    ClientRule(
        name="opensmtpd", title="OpenSMTPD mta",
        version="portable 3153385b02a0 (2026-03-26) (6.8.0p2 observed)",
        source="usr.sbin/smtpd/mta_session.c:1245-1347 (keywords 1269-1290); "
               "usr.sbin/smtpd/util.c:714-737 (parse_smtp_response); usr.sbin/smtpd/iobuf.c:160",
        confidence=_T, line_ending=LineEnding.LF, line_re=LINE_OPENSMTPD, malformed=Malformed.ERROR,
        mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.FIRST, single_line_keywords=True,
        scan_first_line=True, match=Match.EXACT, case_fold=False, trim_leading=False,
        trim_trailing=False,
        fallback_after_handshake_failure=True,
        fallback_setting="opportunistic relay (MTA_DOWNGRADE_PLAIN, mta_session.c:1376-1384)",
        plaintext_after_454=_SC, opportunistic_setting="relay without tls/smtps in the URL",
        notes=((Note.STRAY, "if the stray lines arrive with the reply, OpenSMTPD drops the session "
                            "('Remote host sent too much data')"),),
        after_starttls_timeout=AfterTimeout.DEFER, after_handshake_timeout=AfterTimeout.DEFER,
    ),
    ClientRule(
        name="python-smtplib", title="CPython smtplib", version="3.11.7 / main",
        source="Lib/smtplib.py:380-427 (getreply), 445-494 (ehlo; del resp[0] L466, regex L485), 496",
        confidence=_T, line_ending=LineEnding.LF, line_re=LINE_SMTPLIB,
        malformed=Malformed.EHLO_FAILS, mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.LAST,
        single_line_keywords=True, scan_first_line=False, match=Match.TOKEN,
        token_end=r"[^A-Za-z0-9\-]", case_fold=True, trim_leading=True, trim_trailing=True,
        fallback_after_handshake_failure=False, fallback_setting="none in the library",
        plaintext_after_454=_ERR,
        opportunistic_setting="application code that calls starttls() only if has_extn('starttls')",
        notes=((Note.NOT_SEEN, "smtplib leaves it to the app: has_extn() first means plaintext, "
                               "starttls() anyway means SMTPNotSupportedError"),),
        after_starttls_timeout=_GU, after_handshake_timeout=_GU,
    ),
    ClientRule(
        name="go-net-smtp", title="Go net/smtp", version="1.19.8 (observed; same logic at 07858f11a8fc)",
        source="src/net/smtp/smtp.go:131-151 (ehlo), 321-345 (SendMail), 382-392 (Extension); "
               "src/net/textproto/reader.go:199-217, 270-292",
        confidence=Confidence.OBS, line_ending=LineEnding.LF, line_re=LINE_GO, malformed=Malformed.RAW,
        mixed_codes=MixedCodes.RAW, status_from=StatusFrom.FIRST, single_line_keywords=False,
        scan_first_line=False, match=Match.TOKEN, token_end=r" ", case_fold=False,
        trim_leading=False, trim_trailing=False,
        fallback_after_handshake_failure=False, fallback_setting="none",
        plaintext_after_454=_ERR, opportunistic_setting="smtp.SendMail (STARTTLS only if advertised)",
        notes=((Note.CASE_MISS, "keys are stored as sent and looked up upper-cased; observed on Go "
                                "1.19.8 smtp.SendMail"),),
        after_starttls_timeout=_GU, after_handshake_timeout=_GU,
    ),
    ClientRule(
        name="angus-mail", title="Jakarta/Angus Mail SMTPTransport", version="eca8e08baa56 (2025-09-19)",
        source="providers/smtp/src/main/java/org/eclipse/angus/mail/smtp/SMTPTransport.java:1680-1718 "
               "(ehlo; skip L1697, substring(4) L1703), 2488-2546, 2565-2567, 2588-2591, 734-754",
        confidence=_T, line_ending=LineEnding.LF_OR_CR, line_re=LINE_DEFAULT, malformed=Malformed.INDEX3,
        mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.FIRST, single_line_keywords=True,
        scan_first_line=False, match=Match.TOKEN, token_end=r" ", case_fold=True, trim_leading=False,
        trim_trailing=False,
        fallback_after_handshake_failure=False, fallback_setting="none",
        plaintext_after_454=_ERR,
        opportunistic_setting="mail.smtp.starttls.enable=true, starttls.required=false",
    ),
    ClientRule(
        name="mailkit", title="MailKit SmtpClient", version="d1f7aa7655d5 (2026-08-19)",
        source="MailKit/Net/Smtp/SmtpClient.cs:803-826, 828-850 (IsCapability), 890-935, 976-991; "
               "MailKit/Net/Smtp/SmtpStream.cs:480-531 (code mismatch 495-499)",
        confidence=_T, line_ending=LineEnding.LF, line_re=LINE_DEFAULT, malformed=Malformed.ERROR,
        mixed_codes=MixedCodes.ERROR, status_from=StatusFrom.FIRST, single_line_keywords=True,
        scan_first_line=True, match=Match.EXACT, case_fold=True, trim_leading=False, trim_trailing=True,
        fallback_after_handshake_failure=False, fallback_setting="none",
        plaintext_after_454=_ERR,
        opportunistic_setting="SecureSocketOptions.Auto / StartTlsWhenAvailable (port 25/587)",
        starttls_kept_across_ehlo="UpdateCapabilities (SmtpClient.cs:890-935) clears every capability "
                                  "except StartTLS before it reads a reply's lines",
    ),
    ClientRule(
        name="nodemailer", title="Nodemailer smtp-connection", version="9.0.5",
        source="lib/smtp-connection/index.js:869-898 (_onData), 1115-1153, 1474-1588 "
               "(_actionEHLO, regex L1506)",
        confidence=_T, line_ending=LineEnding.LF, line_re=LINE_DEFAULT, malformed=Malformed.INDEX3,
        mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.FIRST, single_line_keywords=True,
        scan_first_line=True, match=Match.REGEX, regex=r"(?im)[ -]STARTTLS\b", case_fold=True,
        trim_leading=False, trim_trailing=False,
        fallback_after_handshake_failure=False, fallback_setting="none",
        plaintext_after_454=_CFG, opportunistic_setting="default (no requireTLS); 454 goes on only "
                                                         "with opportunisticTLS: true",
        notes=((Note.STRAY, "with no command pending, Nodemailer fails with EPROTOCOL "
                            "'Unexpected Response'"),),
        after_starttls_timeout=_GU, after_handshake_timeout=_GU,
    ),
    ClientRule(
        name="phpmailer", title="PHPMailer (SMTPAutoTLS)",
        version="4a489474e7ef (2026-07-21) (6.6.3 observed)",
        source="src/SMTP.php:944-977 (parseHelloFields), 1298-1318 (getServerExt), 1340-1420 "
               "(get_lines); src/PHPMailer.php:2410-2437",
        confidence=_T, line_ending=LineEnding.LF, line_re=LINE_DEFAULT, malformed=Malformed.INDEX3,
        mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.FIRST, single_line_keywords=True,
        scan_first_line=False, match=Match.TOKEN, token_end=r" ", case_fold=False, trim_leading=True,
        trim_trailing=True,
        fallback_after_handshake_failure=False, fallback_setting="none (next host is tried)",
        plaintext_after_454=_ERR, opportunistic_setting="SMTPAutoTLS=true, SMTPSecure=''",
        notes=((Note.NOT_SEEN, "with SMTPSecure='tls' PHPMailer sends STARTTLS anyway"),),
        after_starttls_timeout=_GU, after_handshake_timeout=_GU,
    ),
    ClientRule(
        name="swaks", title="swaks", version="20240103.0",
        source="RELEASE/swaks:1202-1233 (do_smtp_helo, regex L1220), 1457-1535 (recv_line), "
               "1549-1620 (transact: reads until a line /^\\d\\d\\d /; a timeout fails EHLO, then HELO, "
               "observed on 20201014.0)",
        confidence=_T, line_ending=LineEnding.LF_DROP_CR, line_re=LINE_SEP_REQUIRED,
        malformed=Malformed.CONTINUE, mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.FIRST,
        single_line_keywords=True, scan_first_line=True, match=Match.EXACT, case_fold=False,
        trim_leading=False, trim_trailing=False,
        fallback_after_handshake_failure=False, fallback_setting="none",
        plaintext_after_454=_CFG, opportunistic_setting="--tls-optional (454: plaintext; "
                                                         "--tls-optional-strict: error)",
        after_starttls_timeout=AfterTimeout.SAME_CONNECTION,
        after_handshake_timeout=AfterTimeout.NO_TIMEOUT,
        helo_after_unended_reply=True,
    ),
    ClientRule(
        name="curl", title="curl / libcurl smtp", version="8.22.0-DEV (5c61e168698a)",
        source="lib/smtp.c:493-534 (smtp_endofresp: line[3] == ' ' || len == 5, len with CR and LF), "
               "1200-1290 (smtp_state_ehlo_resp, STARTTLS 1224-1226); lib/pingpong.c:~289",
        confidence=_T, line_ending=LineEnding.LF_KEEP_CR, line_re=LINE_CURL, malformed=Malformed.SKIP,
        mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.LAST, single_line_keywords=True,
        scan_first_line=True, match=Match.PREFIX, case_fold=True, trim_leading=False,
        trim_trailing=False,
        fallback_after_handshake_failure=False, fallback_setting="none",
        plaintext_after_454=_SC, opportunistic_setting="--ssl (CURLUSESSL_TRY)",
        notes=((Note.FOLDED, "curl 7.88.1 was observed comparing case-sensitively: N there"),),
    ),
    ClientRule(
        name="curl-7.88", title="curl / libcurl smtp 7.88 (Debian 12)", version="7.88.1 (observed)",
        source="lib/smtp.c:493-534 (smtp_endofresp: line[3] == ' ' || len == 5, len with CR and LF), "
               "1200-1290 (smtp_state_ehlo_resp, STARTTLS 1224-1226); lib/pingpong.c:~289",
        confidence=Confidence.OBS, line_ending=LineEnding.LF_KEEP_CR, line_re=LINE_CURL, malformed=Malformed.SKIP,
        mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.LAST, single_line_keywords=True,
        scan_first_line=True, match=Match.PREFIX, case_fold=False, trim_leading=False,
        trim_trailing=False,
        fallback_after_handshake_failure=False, fallback_setting="none",
        plaintext_after_454=_SC, opportunistic_setting="--ssl (CURLUSESSL_TRY)",
        notes=((Note.CASE_MISS, "curl 7.88.1 was observed comparing the keyword case-sensitively "
                                 "(by pcapsmtp's real-client tests); the 8.22 source folds case"),),
        after_starttls_timeout=_GU, after_handshake_timeout=_GU,
    ),
    ClientRule(
        name="msmtp", title="msmtp", version="git 933d35be8ab6 (2026-07-19)",
        source="src/smtp.c:157-240 (smtp_get_msg), 376-470 (smtp_init, STARTTLS 458-460); "
               "src/msmtp.c:226-240, 404-419",
        confidence=_T, line_ending=LineEnding.LF, line_re=LINE_SEP_REQUIRED, malformed=Malformed.ERROR,
        mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.FIRST, single_line_keywords=True,
        scan_first_line=True, match=Match.PREFIX, case_fold=True, trim_leading=False,
        trim_trailing=False,
        fallback_after_handshake_failure=False, fallback_setting="none",
        plaintext_after_454=_ERR, opportunistic_setting="none (tls on requires it, tls off never asks)",
        notes=((Note.NOT_SEEN, "msmtp has no opportunistic mode: with 'tls on' this is a hard error"),),
        after_starttls_timeout=AfterTimeout.GIVES_UP, after_handshake_timeout=AfterTimeout.NO_TIMEOUT,
    ),
    ClientRule(
        name="haraka", title="Haraka outbound", version="3.1.6",
        source="outbound/hmail.js:666-700, 1506 (smtp_regexp), 452-475 (set_ehlo_props), 549-612; "
               "outbound/tls.js:93-120",
        confidence=_T, line_ending=LineEnding.LF, line_re=LINE_HARAKA, malformed=Malformed.ERROR,
        mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.LAST, single_line_keywords=True,
        scan_first_line=True, match=Match.EXACT, case_fold=True, trim_leading=False, trim_trailing=False,
        fallback_after_handshake_failure=False,
        fallback_setting="only with redis.disable_for_failed_hosts=true (then no TLS to that host "
                         "for 7 days)",
        plaintext_after_454=_DEF, opportunistic_setting="enable_tls (default on)",
    ),
    ClientRule(
        name="ruby-net-smtp", title="Ruby net-smtp (ActionMailer)",
        version="0.5.1 (0.3.1 observed)",
        source="lib/net/smtp.rb:1014-1022 (recv_response), 1102-1111 (capabilities), 296-303, 719-729",
        confidence=_T, line_ending=LineEnding.LF, line_re=LINE_DEFAULT, malformed=Malformed.INDEX3,
        mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.FIRST, single_line_keywords=False,
        scan_first_line=False, match=Match.TOKEN, token_end=r"\s", case_fold=False, trim_leading=True,
        trim_trailing=True,
        fallback_after_handshake_failure=False, fallback_setting="none",
        plaintext_after_454=_ERR, opportunistic_setting="starttls: :auto (default)",
        after_starttls_timeout=_GU, after_handshake_timeout=_GU,
    ),
    ClientRule(
        name="lettre", title="Rust lettre", version="0.11.21",
        source="src/transport/smtp/response.rs:256-285 (parse_response); "
               "src/transport/smtp/extension.rs:131-179; src/transport/smtp/client/connection.rs:283-310",
        confidence=_T, line_ending=LineEnding.CRLF, line_re=LINE_LETTRE, malformed=Malformed.ERROR,
        mixed_codes=MixedCodes.ERROR, status_from=StatusFrom.LAST, single_line_keywords=True,
        scan_first_line=True, match=Match.TOKEN, token_end=r"\s", case_fold=False, trim_leading=True,
        trim_trailing=True,
        fallback_after_handshake_failure=False, fallback_setting="none",
        plaintext_after_454=_ERR, opportunistic_setting="Tls::Opportunistic",
    ),
    ClientRule(
        name="cisco-esa", title="Cisco ESA (AsyncOS)", version="AsyncOS (support article 212587)",
        source="Cisco support article 212587 'STARTTLS available but TLS negotiation fails' "
               "(documentation; no public source)",
        confidence=Confidence.DOC, line_ending=LineEnding.LF, line_re=LINE_DEFAULT,
        malformed=Malformed.INDEX3, mixed_codes=MixedCodes.IGNORE, status_from=StatusFrom.FIRST,
        single_line_keywords=True, scan_first_line=False, match=Match.TOKEN, token_end=r"\s",
        case_fold=True, trim_leading=False, trim_trailing=False,
        fallback_after_handshake_failure=False, fallback_setting="unknown",
        plaintext_after_454=After454.UNKNOWN,
        opportunistic_setting="destination controls TLS 'Preferred'",
        notes=((Note.NOT_SEEN, "logs 'STARTTLS command not supported'"),),
    ),
)

#: Clients the research (docs/clients.md) names but for which no parsing rule is known.
CLIENTS_WITHOUT_RULE: tuple[str, ...] = ("Microsoft Exchange / Exchange Online",)


def client(name: str) -> ClientRule:
    """The rule named ``name`` (KeyError if unknown)."""
    for rule in CLIENTS:
        if rule.name == name:
            return rule
    raise KeyError(name)


# --------------------------------------------------------------------------------------------
# The interpreter


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Line:
    number: int           # 1-based among the input's lines
    raw: bytes            # the line as the client holds it (terminator removed)
    code: bytes | None    # None for a malformed line
    text: bytes           # what follows code and separator (the whole raw line when kept raw)
    kept_raw: bool


@functools.lru_cache(maxsize=None)
def _re(pattern: str) -> re.Pattern[bytes]:
    return re.compile(pattern.encode("ascii"), re.DOTALL)


def _show(data: bytes, limit: int = 40) -> str:
    text = data[:limit].decode("latin-1")
    shown = repr(text)
    return shown[:-1] + "...'" if len(data) > limit else shown


def _split(rule: ClientRule, reply: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (terminators removed) and the unterminated rest."""
    if rule.line_ending is LineEnding.CRLF:
        parts = reply.split(b"\r\n")
        return parts[:-1], parts[-1]
    if rule.line_ending is LineEnding.LF_OR_CR:
        lines: list[bytes] = []
        start = 0
        for m in re.finditer(rb"\r\n|\n|\r(?=[^\n])", reply):
            lines.append(reply[start:m.start()])
            start = m.end()
        return lines, reply[start:]
    parts = reply.split(b"\n")
    done = parts[:-1]
    if rule.line_ending is LineEnding.LF_KEEP_CR:
        return done, parts[-1]
    if rule.line_ending is LineEnding.LF_DROP_CR:
        done = [p.replace(b"\r", b"") for p in done]
    else:
        done = [p[:-1] if p.endswith(b"\r") else p for p in done]
    return done, parts[-1]


def _decide(rule: ClientRule, reply: bytes) -> tuple[str, str]:
    lines, rest = _split(rule, reply)
    line_re = _re(rule.line_re)
    got: list[_Line] = []
    first_code: bytes | None = None
    end_index: int | None = None
    for index, raw in enumerate(lines):
        number = index + 1
        m = line_re.fullmatch(raw)
        if m is None:
            if rule.malformed is Malformed.ERROR:
                return "X", f"line {number} {_show(raw)} is not a reply line: the read fails"
            if rule.malformed is Malformed.SKIP:
                continue
            if rule.malformed is Malformed.EHLO_FAILS:
                return "N", (f"line {number} {_show(raw)} has no numeric code: EHLO counts as failed, "
                             "HELO has no extensions")
            if rule.malformed is Malformed.RAW:
                if not got:
                    return "N", (f"line {number} {_show(raw)} does not parse: EHLO fails, HELO has "
                                 "no extensions")
                got.append(_Line(number, raw, None, raw, True))
                continue
            got.append(_Line(number, raw, None, raw[4:], False))
            if rule.malformed is Malformed.INDEX3 and raw[3:4] != b"-":
                end_index = index
                break
            continue
        code, sep, text = m.group("code"), m.group("sep") or b"", m.group("text") or b""
        if first_code is None:
            first_code = code
        elif code != first_code and rule.mixed_codes is not MixedCodes.IGNORE:
            if rule.mixed_codes is MixedCodes.ERROR:
                return "X", (f"line {number} has code {code.decode()} after {first_code.decode()}: "
                             "protocol error, the connection fails")
            got.append(_Line(number, raw, code, raw, True))
            continue
        got.append(_Line(number, raw, code, text, False))
        if sep != b"-":
            end_index = index
            break

    if end_index is None:
        if rule.line_ending is LineEnding.CRLF and b"\n" in reply:
            return "X", "a line ends without CRLF: the parser waits for CRLF, then fails (incomplete response)"
        if rule.helo_after_unended_reply:
            return "N", ("the reply never ends: the client's read times out, EHLO counts as failed and "
                         "HELO, which has no extensions, follows")
        return "X", "the reply never ends: the client waits for more, then times out"
    stray_bytes = b"\n".join([*lines[end_index + 1:], rest])
    cell, why = _scan(rule, got, stray_bytes, end_index + 1)
    extras = [why]
    if stray_bytes.strip() and rule.note(Note.STRAY):
        extras.append(rule.note(Note.STRAY))
    if cell == "N" and rule.note(Note.NOT_SEEN):
        extras.append(rule.note(Note.NOT_SEEN))
    return cell, "; ".join(extras)


def _status(rule: ClientRule, got: list[_Line]) -> bytes | None:
    line = got[0] if rule.status_from is StatusFrom.FIRST else got[-1]
    return line.code


def _scan(rule: ClientRule, got: list[_Line], stray: bytes, end: int) -> tuple[str, str]:
    status = _status(rule, got)
    if status is None or not status.startswith(b"2"):
        shown = status.decode() if status else "none"
        return "N", f"EHLO not accepted (status {shown}): no extensions"
    if len(got) == 1 and not rule.single_line_keywords:
        return "N", "single-line reply: no extensions are recorded"

    if rule.match is Match.REGEX:
        return _scan_regex(rule, got, stray, end)

    candidates = got if rule.scan_first_line else got[1:]
    for line in candidates:
        ok, key = _line_has_keyword(rule, line.text)
        if ok:
            where = " (the domain slot)" if line is got[0] else ""
            why = f"line {line.number}{where}: {_show(key)} is STARTTLS"
            if not key.startswith(KEYWORD):
                why += " after case folding"
                if rule.note(Note.FOLDED):
                    why += f" ({rule.note(Note.FOLDED)})"
            return "Y", why
    return "N", _miss(rule, got, stray, end)


def _keyword_text(rule: ClientRule, text: bytes) -> bytes:
    if rule.trim_leading:
        text = text.lstrip(b" \t")
    if rule.trim_trailing:
        text = text.rstrip(b" \t\r\n\x0b\x0c\x00")
    return text


def _line_has_keyword(rule: ClientRule, text: bytes) -> tuple[bool, bytes]:
    """Whether one line's text carries the keyword, and the key the client compared."""
    text = _keyword_text(rule, text)
    if rule.match is Match.TOKEN:
        end = _re(rule.token_end).search(text)
        key = text if end is None else text[:end.start()]
    elif rule.match is Match.PREFIX:
        key = text[:len(KEYWORD)]
    else:
        key = text
    if rule.case_fold:
        return key.upper() == KEYWORD, key
    return key == KEYWORD, key


def _scan_regex(rule: ClientRule, got: list[_Line], stray: bytes, end: int) -> tuple[str, str]:
    held = [line.raw.rstrip(b" \t\r\n\x0b\x0c") if rule.trim_trailing else line.raw for line in got]
    joined = b"\n".join(held)
    m = _re(rule.regex).search(joined)
    shown = "/" + rule.regex + "/"
    if m is not None:
        number = got[joined.count(b"\n", 0, m.start() + 1)].number
        return "Y", f"{shown} matches {_show(m.group(0).strip())} on line {number}"
    return "N", f"{shown} finds nothing; " + _miss(rule, got, stray, end)


def _miss(rule: ClientRule, got: list[_Line], stray: bytes, end: int) -> str:
    """Why no STARTTLS was seen, pointing at the nearest miss."""
    for line in got:
        if KEYWORD not in line.raw.upper():
            continue
        if line is got[0] and not rule.scan_first_line:
            return f"STARTTLS is on line {line.number}, read as the server's domain, never as a keyword"
        if line.kept_raw:
            return (f"line {line.number} {_show(line.raw)} is kept raw (foreign code or bad syntax), "
                    "so the keyword is never split out")
        if rule.match is Match.REGEX:
            return f"line {line.number} {_show(line.raw)}: {_regex_miss(rule, line)}"
        text = _keyword_text(rule, line.text)
        ok, key = _line_has_keyword(rule, line.text)
        if key.upper() == KEYWORD and not rule.case_fold:
            note = rule.note(Note.CASE_MISS)
            return (f"line {line.number}: {_show(key)} is compared case-sensitively"
                    + (f" ({note})" if note else ""))
        if text[:1] in (b" ", b"\t"):
            shown = key if rule.match is Match.TOKEN else text
            return (f"line {line.number}: whitespace after the separator is not skipped, "
                    f"so the key is {_show(shown)}")
        if rule.match is Match.EXACT:
            return f"line {line.number}: the whole text {_show(text)} must be exactly STARTTLS"
        return f"line {line.number}: the key read is {_show(key)}, not STARTTLS"
    if KEYWORD in stray.upper():
        return (f"STARTTLS comes only after the reply ended at line {end} (a line without '-'): "
                "stray lines, read as the next command's reply")
    if any(MASKED_KEYWORD in line.raw for line in got):
        return "the keyword is masked as XXXXXXXA (firewall ESMTP inspection)"
    return "no STARTTLS in the reply"


def _regex_miss(rule: ClientRule, line: _Line) -> str:
    """Which constraint of a regex rule the line breaks, found by repairing one thing at a time."""
    pattern = _re(rule.regex)
    raw = line.raw.rstrip(b" \t\r\n\x0b\x0c") if rule.trim_trailing else line.raw
    if pattern.search(b"\n" + raw.upper()) and not pattern.search(b"\n" + raw):
        return "the regex is case-sensitive"
    if line.code is not None and pattern.search(b"\n250" + raw[3:]) and not pattern.search(b"\n" + raw):
        return f"the regex needs code 250, the line has {line.code.decode()}"
    if re.match(rb"[0-9]{3}[ -][ \t]+STARTTLS", raw, re.IGNORECASE):
        return "the regex allows one separator after the code, the line has extra whitespace"
    return "STARTTLS is not in the position or shape the regex requires"


def _decide_session(rule: ClientRule, reply: bytes, earlier: tuple[bytes, ...]) -> tuple[str, str]:
    """``_decide`` on the reply the client acted on, then, for a client that keeps an earlier
    reply's STARTTLS (``starttls_kept_across_ehlo``), ``"Y"`` instead of ``"N"`` when one of the
    ``earlier`` positive replies of the session (EHLO sent again) gives it ``"Y"`` and none gives
    it ``"X"`` (it would have failed there). An error (``"X"``) on the last reply stands: the
    client does not get as far as STARTTLS."""
    cell, why = _decide(rule, reply)
    if cell == "N" and rule.starttls_kept_across_ehlo:
        cells = [_decide(rule, raw) for raw in earlier]
        if any(seen == "X" for seen, _how in cells):
            # the client fails on one of them (the prediction reads one session): it would
            # not have got as far as a later list, and no flag of it is claimed
            return cell, why
        for seen, how in cells:
            if seen == "Y":
                return "Y", (f"the last EHLO reply: {why}; but an earlier one offered it ({how}), and "
                             f"that flag outlives a later EHLO ({rule.starttls_kept_across_ehlo})")
    return cell, why


def sees_starttls(rule: ClientRule, reply: bytes, earlier: tuple[bytes, ...] = ()) -> str:
    """``"Y"``, ``"N"`` or ``"X"``: what ``rule``'s client makes of the EHLO reply bytes.

    ``reply`` starts at the reply's first byte and runs up to where the client would send its next
    command; anything after the reply's end (stray lines) is ignored. ``earlier``: the positive
    replies to the EHLOs of the same session before the one that got ``reply``, oldest first
    (only a rule with ``starttls_kept_across_ehlo`` reads them).
    """
    return _decide_session(rule, reply, earlier)[0]


def explain(rule: ClientRule, reply: bytes, earlier: tuple[bytes, ...] = ()) -> tuple[str, str]:
    """The cell and a one-line reason for it."""
    return _decide_session(rule, reply, earlier)


def matrix(reply: bytes, earlier: tuple[bytes, ...] = ()) -> list[tuple[str, str, str]]:
    """``(client name, Y/N/X, one-line why)`` for every rule in :data:`CLIENTS`, in order;
    ``earlier`` as for :func:`sees_starttls`."""
    return [(rule.name, *_decide_session(rule, reply, earlier)) for rule in CLIENTS]


def predict(reply: bytes, earlier: tuple[bytes, ...] = ()) -> dict[str, list[str]]:
    """Client names grouped: ``see_starttls`` (Y), ``downgrade`` (N), ``error`` (X); ``earlier``
    as for :func:`sees_starttls`."""
    out: dict[str, list[str]] = {"see_starttls": [], "downgrade": [], "error": []}
    key = {"Y": "see_starttls", "N": "downgrade", "X": "error"}
    for name, cell, _why in matrix(reply, earlier):
        out[key[cell]].append(name)
    return out


#: Clients observed to ignore a masked banner and send EHLO (docs/clients.md, "Masked banner").
BANNER_IGNORED = frozenset({"exim", "opensmtpd", "python-smtplib", "go-net-smtp", "swaks", "curl",
                            "curl-7.88", "msmtp", "ruby-net-smtp", "nodemailer"})


def banner_matrix() -> list[tuple[str, str, str]]:
    """``(client name, cell, why)`` for a conversation greeted by a banner masked with asterisks
    (Cisco mask-banner) and answered with HELO, so without an EHLO reply to read: a client with
    PIX workarounds greets with HELO and cannot learn of STARTTLS (``"N"``); the others ignore
    the banner and send EHLO, and what they would see depends on an EHLO reply this
    conversation does not have (``"?"``)."""
    out: list[tuple[str, str, str]] = []
    for rule in CLIENTS:
        if rule.name not in BANNER_IGNORED and not rule.masked_banner_helo:
            out.append((rule.name, "?", "not observed after a masked banner; if it sends EHLO, it "
                        "depends on the EHLO reply, which this conversation does not show"))
        elif rule.masked_banner_helo:
            why = ("takes the masked banner for a PIX firewall and greets with "
                   f"HELO ({rule.masked_banner_helo}): no extensions, no STARTTLS")
            out.append((rule.name, "N", why))
        else:
            why = ("ignores the banner and sends EHLO: it depends on the EHLO reply, which this "
                   "conversation does not show")
            out.append((rule.name, "?", why))
    return out


def predict_banner() -> dict[str, list[str]]:
    """:func:`banner_matrix` grouped like :func:`predict`, with ``unknown`` for the ``"?"`` cells."""
    out: dict[str, list[str]] = {"see_starttls": [], "downgrade": [], "error": [], "unknown": []}
    key = {"Y": "see_starttls", "N": "downgrade", "X": "error", "?": "unknown"}
    for name, cell, _why in banner_matrix():
        out[key[cell]].append(name)
    return out


def retrying_clients(include_opt_in: bool = False) -> list[str]:
    """Clients that, by default, retry in plaintext on a new connection after a failed handshake.

    With ``include_opt_in`` also those that do so only under a non-default setting (Sendmail's
    TLSFallbacktoClear, Haraka's disable_for_failed_hosts).
    """
    names = [r.name for r in CLIENTS if r.fallback_after_handshake_failure]
    if include_opt_in:
        names += [r.name for r in CLIENTS if not r.fallback_after_handshake_failure
                  and r.fallback_setting.startswith("only with")]
    return names
