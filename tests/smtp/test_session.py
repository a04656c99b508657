"""SmtpSession: table-driven conversations (h11 SIMPLE_CASES style), focused tests of spans,
body sizes, credentials and STARTTLS aftermath, and Hypothesis properties (chunking
invariance, never raising on arbitrary bytes, linear time and bounded memory)."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builders import (  # noqa: E402
    C, S, Dialogue, app_data, client_hello, normalise, server_hello,
)

from pcapsmtp.model import Side, Span  # noqa: E402
from pcapsmtp.smtp.events import (  # noqa: E402
    Anomaly, AnomalyCode, AuthExchange, Command, Event, ImplicitTls, MessageBody,
    PlaintextAfterStartTls, Reply, StreamEnded, StreamGap, TlsInProgress,
)
from pcapsmtp.smtp.session import SessionConfig, SmtpSession  # noqa: E402
from pcapsmtp.smtp.tls import TlsClientHello, TlsEvent, TlsServerHello  # noqa: E402


def summary(ev: Any) -> tuple[Any, ...]:
    """A compact, chunking-independent view of one event for the case table."""
    if isinstance(ev, Reply):
        return ("reply", ev.code, ev.answers.verb if ev.answers else None,
                tuple((ln.code, ln.sep, ln.text) for ln in ev.lines))
    if isinstance(ev, Command):
        return ("cmd", ev.verb, ev.argument)
    if isinstance(ev, Anomaly):
        return ("anomaly", ev.side.value, ev.code.value)
    if isinstance(ev, MessageBody):
        return ("body", ev.octets, ev.bdat, ev.complete)
    if isinstance(ev, AuthExchange):
        return ("auth", ev.lines)
    if isinstance(ev, StreamGap):
        return ("gap", ev.side.value, ev.length)
    if isinstance(ev, StreamEnded):
        return ("end", ev.side.value, ev.reset, ev.truncated)
    if isinstance(ev, PlaintextAfterStartTls):
        return ("plain", ev.side.value, ev.smtp_like)
    if isinstance(ev, ImplicitTls):
        return ("implicit",)
    if isinstance(ev, TlsEvent):
        return ("tls", ev.side.value, type(ev).__name__)
    return ("?", type(ev).__name__)


GREETING = ("reply", 220, None, ((220, " ", "mx.example.com ESMTP"),))
EHLO = ("cmd", "EHLO", "client.example.org")
EHLO_OK = ("reply", 250, "EHLO", ((250, "-", "mx.example.com"), (250, " ", "STARTTLS")))


def _hello(d: Dialogue | None = None) -> Dialogue:
    d = d or Dialogue()
    d.s("220 mx.example.com ESMTP")
    d.c("EHLO client.example.org")
    d.s("250-mx.example.com", "250 STARTTLS")
    return d


def _mail(d: Dialogue) -> Dialogue:
    d.c("MAIL FROM:<a@example.org>")
    d.s("250 ok")
    return d


CH = client_hello(sni="mx.example.com")
SH = server_hello()

# name -> (dialogue factory, expected event summaries)
Case = tuple[Callable[[], Dialogue], list[tuple[Any, ...]]]
CASES: dict[str, Case] = {
    "banner": (lambda: Dialogue().s("220 mx.example.com ESMTP"), [GREETING]),
    "ehlo-multiline": (lambda: Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")
                       .s("250-mx.example.com", "250-PIPELINING", "250-SIZE 1000", "250 STARTTLS"),
                       [GREETING, EHLO,
                        ("reply", 250, "EHLO", ((250, "-", "mx.example.com"), (250, "-", "PIPELINING"),
                                                (250, "-", "SIZE 1000"), (250, " ", "STARTTLS")))]),
    "premature-end": (lambda: _mail(Dialogue().s("220 mx.example.com ESMTP")
                                    .c("EHLO client.example.org")
                                    .s("250 mx.example.com", "250-STARTTLS", "250 SIZE 1000")),
                      # The client reads the stray lines as the answer to MAIL; MAIL's own
                      # 250 waits in its buffer for a next command.
                      [GREETING, EHLO, ("reply", 250, "EHLO", ((250, " ", "mx.example.com"),)),
                       ("cmd", "MAIL", "FROM:<a@example.org>"),
                       ("reply", 250, "MAIL", ((250, "-", "STARTTLS"), (250, " ", "SIZE 1000")))]),
    "mixed-codes": (lambda: Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")
                    .s("250-mx.example.com", "220-STARTTLS", "250 SIZE 1000"),
                    [GREETING, EHLO, ("anomaly", "server", "reply_code_mismatch"),
                     ("reply", 250, "EHLO", ((250, "-", "mx.example.com"), (220, "-", "STARTTLS"),
                                             (250, " ", "SIZE 1000")))]),
    "bare-lf": (lambda: Dialogue().s(b"220 mx.example.com ESMTP\n").c(b"EHLO client.example.org\n")
                .s(b"250-mx.example.com\n250 STARTTLS\n"),
                [("anomaly", "server", "bare_lf"), GREETING,
                 ("anomaly", "client", "bare_lf"), EHLO, EHLO_OK]),
    "pipelined-fifo": (lambda: _hello().c("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>",
                                          "RCPT TO:<c@example.com>", "DATA")
                       .s("250 2.1.0 ok", "550 no such user", "250 2.1.5 ok", "354 go ahead")
                       .c("Subject: hi", "", "body", ".").s("250 queued").c("QUIT").s("221 bye"),
                       [GREETING, EHLO, EHLO_OK,
                        ("cmd", "MAIL", "FROM:<a@example.org>"), ("cmd", "RCPT", "TO:<b@example.com>"),
                        ("cmd", "RCPT", "TO:<c@example.com>"), ("cmd", "DATA", ""),
                        ("reply", 250, "MAIL", ((250, " ", "2.1.0 ok"),)),
                        ("reply", 550, "RCPT", ((550, " ", "no such user"),)),
                        ("reply", 250, "RCPT", ((250, " ", "2.1.5 ok"),)),
                        ("reply", 354, "DATA", ((354, " ", "go ahead"),)),
                        ("body", len(b"Subject: hi\r\n\r\nbody\r\n.\r\n"), False, True),
                        ("reply", 250, "*EOM", ((250, " ", "queued"),)),
                        ("cmd", "QUIT", ""), ("reply", 221, "QUIT", ((221, " ", "bye"),))]),
    # Postfix with PIPELINING after an EHLO reply that ends early: the stray lines answer MAIL,
    # MAIL's 250 answers RCPT, RCPT's answers DATA; DATA did not get 354, so what the client
    # sends next is a command (QUIT), which reads the server's 354.
    "stray-pipelined": (lambda: Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")
                        .s("250-mx.example.com", "250-PIPELINING", "250 SIZE 1000", "250-STARTTLS",
                           "250 8BITMIME")
                        .c("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "DATA")
                        .s("250 2.1.0 ok", "250 2.1.5 ok", "354 go ahead").c("QUIT").eof(C),
                        [GREETING, EHLO,
                         ("reply", 250, "EHLO", ((250, "-", "mx.example.com"), (250, "-", "PIPELINING"),
                                                 (250, " ", "SIZE 1000"))),
                         ("cmd", "MAIL", "FROM:<a@example.org>"),
                         ("reply", 250, "MAIL", ((250, "-", "STARTTLS"), (250, " ", "8BITMIME"))),
                         ("cmd", "RCPT", "TO:<b@example.com>"), ("cmd", "DATA", ""),
                         ("reply", 250, "RCPT", ((250, " ", "2.1.0 ok"),)),
                         ("reply", 250, "DATA", ((250, " ", "2.1.5 ok"),)),
                         ("cmd", "QUIT", ""), ("reply", 354, "QUIT", ((354, " ", "go ahead"),)),
                         ("end", "client", False, False)]),
    "data-refused-quit": (lambda: _mail(_hello()).c("DATA").s("554 5.5.1 no valid recipients")
                          .c("QUIT").s("221 bye"),
                          [GREETING, EHLO, EHLO_OK, ("cmd", "MAIL", "FROM:<a@example.org>"),
                           ("reply", 250, "MAIL", ((250, " ", "ok"),)), ("cmd", "DATA", ""),
                           ("reply", 554, "DATA", ((554, " ", "5.5.1 no valid recipients"),)),
                           ("cmd", "QUIT", ""), ("reply", 221, "QUIT", ((221, " ", "bye"),))]),
    "data-refused": (lambda: _hello().c("DATA", "MAIL FROM:<a@example.org>")
                     .s("554 no valid recipients", "250 ok"),
                     [GREETING, EHLO, EHLO_OK, ("cmd", "DATA", ""),
                      ("reply", 554, "DATA", ((554, " ", "no valid recipients"),)),
                      ("cmd", "MAIL", "FROM:<a@example.org>"),
                      ("reply", 250, "MAIL", ((250, " ", "ok"),))]),
    "bdat-last": (lambda: _mail(_hello()).c(b"BDAT 14 LAST\r\n" + b"QUIT\r\n\r\n.\r\nx\r\n", "QUIT")
                  .s("250 2.0.0 queued", "221 bye"),
                  [GREETING, EHLO, EHLO_OK, ("cmd", "MAIL", "FROM:<a@example.org>"),
                   ("reply", 250, "MAIL", ((250, " ", "ok"),)), ("cmd", "BDAT", "14 LAST"),
                   ("body", 14, True, True), ("cmd", "QUIT", ""),
                   ("reply", 250, "BDAT", ((250, " ", "2.0.0 queued"),)),
                   ("reply", 221, "QUIT", ((221, " ", "bye"),))]),
    "auth-plain-initial-response": (lambda: _hello().c("AUTH PLAIN AGFsaWNlAHMzY3IzdA==")
                                    .s("235 2.7.0 ok"),
                                    [GREETING, EHLO, EHLO_OK, ("cmd", "AUTH", "PLAIN"),
                                     ("reply", 235, "AUTH", ((235, " ", "2.7.0 ok"),))]),
    "auth-login": (lambda: _mail(_hello().c("AUTH LOGIN").s("334 VXNlcm5hbWU6").c("YWxpY2U=")
                                 .s("334 UGFzc3dvcmQ6").c("czNjcjN0").s("235 ok")),
                   [GREETING, EHLO, EHLO_OK, ("cmd", "AUTH", "LOGIN"),
                    ("reply", 334, "AUTH", ((334, " ", "VXNlcm5hbWU6"),)), ("auth", 1),
                    ("reply", 334, "*SASL", ((334, " ", "UGFzc3dvcmQ6"),)), ("auth", 1),
                    ("reply", 235, "*SASL", ((235, " ", "ok"),)),
                    ("cmd", "MAIL", "FROM:<a@example.org>"), ("reply", 250, "MAIL", ((250, " ", "ok"),))]),
    "starttls-tls": (lambda: _hello().c("STARTTLS").s("220 2.0.0 go ahead").c(CH).s(SH),
                     [GREETING, EHLO, EHLO_OK, ("cmd", "STARTTLS", ""),
                      ("reply", 220, "STARTTLS", ((220, " ", "2.0.0 go ahead"),)),
                      ("tls", "client", "TlsClientHello"), ("tls", "server", "TlsServerHello")]),
    "starttls-hello-before-220": (lambda: _hello().c(b"STARTTLS\r\n" + CH).s("220 go").s(SH),
                                  [GREETING, EHLO, EHLO_OK, ("cmd", "STARTTLS", ""),
                                   ("reply", 220, "STARTTLS", ((220, " ", "go"),)),
                                   ("tls", "client", "TlsClientHello"),
                                   ("tls", "server", "TlsServerHello")]),
    "starttls-command-injection": (lambda: _hello().c("STARTTLS", "MAIL FROM:<evil@example.org>")
                                   .s("220 go").c(CH),
                                   [GREETING, EHLO, EHLO_OK, ("cmd", "STARTTLS", ""),
                                    ("reply", 220, "STARTTLS", ((220, " ", "go"),)),
                                    ("anomaly", "client", "starttls_command_injection"),
                                    ("tls", "client", "TlsClientHello")]),
    "starttls-response-injection": (lambda: _hello().c("STARTTLS").s("220 go", "250 injected").c(CH),
                                    [GREETING, EHLO, EHLO_OK, ("cmd", "STARTTLS", ""),
                                     ("reply", 220, "STARTTLS", ((220, " ", "go"),)),
                                     ("anomaly", "server", "starttls_response_injection"),
                                     ("tls", "client", "TlsClientHello")]),
    "starttls-454": (lambda: _mail(_hello().c("STARTTLS").s("454 4.7.0 TLS not available")),
                     [GREETING, EHLO, EHLO_OK, ("cmd", "STARTTLS", ""),
                      ("reply", 454, "STARTTLS", ((454, " ", "4.7.0 TLS not available"),)),
                      ("cmd", "MAIL", "FROM:<a@example.org>"), ("reply", 250, "MAIL", ((250, " ", "ok"),))]),
    "starttls-decrypted": (lambda: _mail(_hello().c("STARTTLS").s("220 go").c("EHLO client.example.org")
                                         .s("250-mx.example.com", "250 SIZE 1000")),
                           [GREETING, EHLO, EHLO_OK, ("cmd", "STARTTLS", ""),
                            ("reply", 220, "STARTTLS", ((220, " ", "go"),)),
                            ("plain", "client", True), EHLO,
                            ("reply", 250, "EHLO", ((250, "-", "mx.example.com"), (250, " ", "SIZE 1000"))),
                            ("cmd", "MAIL", "FROM:<a@example.org>"),
                            ("reply", 250, "MAIL", ((250, " ", "ok"),))]),
    "implicit-tls": (lambda: Dialogue().c(CH).s(SH).c(app_data(53)).s(app_data(200)),
                     [("implicit",), ("tls", "client", "TlsClientHello"),
                      ("tls", "server", "TlsServerHello"), ("tls", "client", "TlsApplicationData"),
                      ("tls", "server", "TlsApplicationData")]),
    "server-gap-in-ehlo-reply": (lambda: Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")
                                 .s("250-mx.example.com", b"250-PIPE").gap(S, 12)
                                 .s(b"NING\r\n250 STARTTLS\r\n"),
                                 [GREETING, EHLO, ("gap", "server", 12),
                                  ("reply", 250, "EHLO", ((250, "-", "mx.example.com"),
                                                          (250, " ", "STARTTLS")))]),
    "client-gap": (lambda: _hello().c(b"MAIL FROM:<a@exa").gap(C, 8).c(b".org>\r\nRCPT TO:<b@example.com>\r\n"),
                   [GREETING, EHLO, EHLO_OK, ("gap", "client", 8),
                    ("cmd", "RCPT", "TO:<b@example.com>")]),
    "eof-mid-line": (lambda: _hello().c("MAIL FROM:<a@example.org>", b"RCPT TO:<b@exa").s("250 ok", b"250 par")
                     .eof(C, truncated=True).eof(S, truncated=True),
                     [GREETING, EHLO, EHLO_OK, ("cmd", "MAIL", "FROM:<a@example.org>"),
                      ("reply", 250, "MAIL", ((250, " ", "ok"),)),
                      ("cmd", "RCPT", "TO:<b@exa"), ("end", "client", False, True),
                      ("reply", 250, "RCPT", ((250, " ", "par"),)), ("end", "server", False, True)]),
    "reset": (lambda: _hello().c("STARTTLS").s("220 go").c(CH).eof(S, reset=True),
              [GREETING, EHLO, EHLO_OK, ("cmd", "STARTTLS", ""),
               ("reply", 220, "STARTTLS", ((220, " ", "go"),)), ("tls", "client", "TlsClientHello"),
               ("end", "server", True, False)]),
    "eof-in-data": (lambda: _hello().c("DATA").s("354 go").c("Subject: x", b"partial")
                    .eof(C, truncated=True),
                    [GREETING, EHLO, EHLO_OK, ("cmd", "DATA", ""),
                     ("reply", 354, "DATA", ((354, " ", "go"),)),
                     ("body", len(b"Subject: x\r\npartial"), False, False), ("end", "client", False, True)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_case_table(name: str) -> None:
    make, expected = CASES[name]
    got = [summary(e) for e in make().events()]
    assert got == expected


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
def test_case_table_any_chunking(name: str, chunk: int) -> None:
    """Splitting every flight into pieces (down to single bytes) changes nothing but timing."""
    make, _ = CASES[name]
    d = make()
    assert normalise(d.events(chunk)) == normalise(d.events())


# ------------------------------------------------------------------------------------------
# Focused checks: spans, fields, sizes
# ------------------------------------------------------------------------------------------

def _of(events: list[Any], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def test_greeting_and_ehlo_lines_keep_their_own_code_separator_and_span() -> None:
    d = _hello()
    events = d.events()
    greet, ehlo = _of(events, Reply)
    assert greet.greeting and greet.answers is None and greet.code == 220
    assert greet.span == Span(S, 0, len(b"220 mx.example.com ESMTP\r\n"))
    first, last = ehlo.lines
    start = greet.span.end
    assert (first.code, first.sep, first.text, first.continued) == (250, "-", "mx.example.com", True)
    assert first.raw == b"250-mx.example.com\r\n" and first.span == Span(S, start, start + 20)
    assert (last.code, last.sep, last.text, last.continued) == (250, " ", "STARTTLS", False)
    assert last.span == Span(S, start + 20, start + 34) and last.octets == 14
    assert ehlo.span == Span(S, start, start + 34)
    cmd = _of(events, Command)[0]
    assert ehlo.answers == cmd and cmd.span == Span(C, 0, len(b"EHLO client.example.org\r\n"))
    assert cmd.raw_verb == "EHLO" and cmd.octets == 25


def test_lowercase_verb_is_upper_cased_and_raw_kept() -> None:
    d = Dialogue().s("220 mx").c("ehlo me").s("250 mx")
    cmd = _of(d.events(), Command)[0]
    assert (cmd.verb, cmd.raw_verb, cmd.argument) == ("EHLO", "ehlo", "me")


def test_bare_lf_flagged_on_line_and_reported_per_side() -> None:
    """Each side's first bare-LF line gives an anomaly of that side."""
    d = Dialogue().s(b"220 mx\n").c(b"EHLO me\n").s(b"250-mx\n250 STARTTLS\n")
    events = d.events()
    sides = {a.side for a in _of(events, Anomaly) if a.code is AnomalyCode.BARE_LF}
    assert sides == {S, C}
    ehlo = _of(events, Reply)[1]
    assert all(ln.bare_lf for ln in ehlo.lines) and ehlo.lines[1].octets == len(b"250 STARTTLS\n")
    assert _of(events, Command)[0].bare_lf


def test_nul_byte_reported_once_per_side_at_its_line() -> None:
    """A NUL byte in a command or reply line gives that side's anomaly, at the first such line
    only; lines without one (and other control bytes) give none."""
    d = (Dialogue().s("220 mx").c(b"EHLO m\x01e\r\n").s("250 mx").c(b"MAIL FROM:<a\x00b>\r\n")
         .s(b"250 o\x00k\r\n").c(b"RCPT TO:<\x00>\r\n").s(b"250 \x00\r\n"))
    events = d.events()
    nul = [a for a in _of(events, Anomaly) if a.code is AnomalyCode.NUL_BYTE]
    assert [a.side for a in nul] == [C, S]
    mail = _of(events, Command)[1]
    ok = _of(events, Reply)[2]
    assert (nul[0].span, nul[1].span) == (mail.span, ok.lines[0].span)


def test_over_long_reply_line_is_cut_flagged_and_damages_the_reply() -> None:
    cfg = SessionConfig(max_line_length=64)
    long_line = "250-" + "Y" * 300
    d = Dialogue(cfg).s("220 mx").c("EHLO me").s("250-mx", long_line, "250 STARTTLS")
    events = d.events()
    anomalies = [a for a in _of(events, Anomaly) if a.code is AnomalyCode.LINE_TOO_LONG]
    assert len(anomalies) == 1 and anomalies[0].side is S
    ehlo = _of(events, Reply)[1]
    cut = ehlo.lines[1]
    assert cut.truncated and len(cut.raw) <= 64 and cut.octets == len(long_line) + 2
    assert cut.span.end - cut.span.start == len(long_line) + 2
    assert ehlo.lines[2].text == "STARTTLS"     # framing survives the cut
    # events.py: Reply.damaged = "bytes of this reply were lost (gap) or cut (limit)"
    assert ehlo.damaged


def test_over_long_command_line_is_cut_and_flagged() -> None:
    cfg = SessionConfig(max_line_length=64)
    d = Dialogue(cfg).s("220 mx").c("EHLO " + "x" * 500, "QUIT")
    events = d.events()
    assert [a.code for a in _of(events, Anomaly)] == [AnomalyCode.LINE_TOO_LONG]
    ehlo, quit_ = _of(events, Command)
    assert ehlo.verb == "EHLO" and len(ehlo.argument) < 64 and ehlo.octets == 507
    assert quit_.verb == "QUIT" and quit_.span.start == 507


def test_message_body_octets_and_spans_exact() -> None:
    body = b"Subject: x\r\n\r\n..leading dot stuffed\r\n.\r\n"
    d = _hello().c("DATA").s("354 go").c(body).s("250 queued").c("QUIT").s("221 bye")
    events = d.events()
    mb = _of(events, MessageBody)[0]
    data_cmd = [c for c in _of(events, Command) if c.verb == "DATA"][0]
    assert mb.octets == len(body) and mb.complete and not mb.bdat
    assert mb.span == Span(C, data_cmd.span.end, data_cmd.span.end + len(body))
    queued = [r for r in _of(events, Reply) if r.code == 250 and r.answers and r.answers.verb == "*EOM"][0]
    assert queued.answers.span == Span(C, mb.span.end - 3, mb.span.end)
    quit_ = [c for c in _of(events, Command) if c.verb == "QUIT"][0]
    assert quit_.span.start == mb.span.end


def test_message_body_lone_dot_first_line() -> None:
    d = _hello().c("DATA").s("354 go").c(".", "QUIT").s("250 empty message", "221 bye")
    events = d.events()
    assert _of(events, MessageBody)[0].octets == 3
    assert [c.verb for c in _of(events, Command)][-1] == "QUIT"


def test_dot_stuffed_lines_do_not_end_the_body() -> None:
    body = [".. not the end", "..", ". also not", ".x", "\t."]
    d = _hello().c("DATA").s("354 go").c(*body).c(".", "QUIT").s("250 ok", "221 bye")
    events = d.events()
    (mb,) = _of(events, MessageBody)
    assert mb.octets == sum(len(x) + 2 for x in body) + 3
    assert [c.verb for c in _of(events, Command)] == ["EHLO", "DATA", "QUIT"]


@pytest.mark.parametrize("cut", [b"abc\r", b"abc\r\n", b"abc\r\n.", b"abc\r\n.\r"])
def test_end_of_data_split_across_receives(cut: bytes) -> None:
    whole = b"abc\r\n.\r\n"
    d = _hello().c("DATA").s("354 go").c(cut).c(whole[len(cut):] + b"QUIT\r\n").s("250 ok", "221 bye")
    events = d.events()
    assert _of(events, MessageBody)[0].octets == len(whole)
    assert [c.verb for c in _of(events, Command)] == ["EHLO", "DATA", "QUIT"]


def test_data_refused_held_bytes_are_commands() -> None:
    d = _hello().c("DATA", "RSET", "QUIT").s("503 need RCPT", "250 ok", "221 bye")
    events = d.events()
    assert not _of(events, MessageBody)
    assert [(r.code, r.answers.verb) for r in _of(events, Reply)[2:]] == [
        (503, "DATA"), (250, "RSET"), (221, "QUIT")]


def test_bdat_chunks_skipped_by_size_with_binary_content() -> None:
    chunk1 = b"\x00\xff\r\n.\r\nQUIT\r\n"
    chunk2 = b"MAIL FROM:<x>\r\n"
    d = _mail(_hello()).c(f"BDAT {len(chunk1)}".encode() + b"\r\n" + chunk1)
    d.c(f"BDAT {len(chunk2)} LAST".encode() + b"\r\n" + chunk2 + b"QUIT\r\n")
    d.s("250 1 ok", "250 2 ok", "221 bye")
    events = d.events()
    bodies = _of(events, MessageBody)
    assert [(b.octets, b.bdat) for b in bodies] == [(len(chunk1), True), (len(chunk2), True)]
    assert [c.verb for c in _of(events, Command)] == ["EHLO", "MAIL", "BDAT", "BDAT", "QUIT"]
    assert not _of(events, Anomaly)


SECRET_USER = "alice@example.org"
SECRET_PASS = "Tr0ub4dor&3-horse"


def _b64(s: str) -> str:
    import base64
    return base64.b64encode(s.encode()).decode()


@pytest.mark.parametrize("chunk", [None, 1])
def test_no_credential_bytes_in_any_event(chunk: int | None) -> None:
    plain = _b64(f"\0{SECRET_USER}\0{SECRET_PASS}")
    d = _hello().c(f"AUTH PLAIN {plain}").s("535 bad")
    d.c("AUTH LOGIN").s("334 VXNlcm5hbWU6").c(_b64(SECRET_USER)).s("334 UGFzc3dvcmQ6")
    d.c(_b64(SECRET_PASS)).s("235 ok")
    d.c("AUTH LOGIN " + _b64(SECRET_USER)).s("334 UGFzc3dvcmQ6").c(_b64(SECRET_PASS)).s("235 ok")
    d.c("AUTH PLAIN").s("334 ").c(plain).s("235 ok")
    d.c("AUTH CRAM-MD5").s("334 PDQxOTI5NDIzNDEuMTI4Mjg0NzJAc291cmNlZm91ci5hbmRyZXcuY211LmVkdT4=")
    d.c(_b64(f"{SECRET_USER} {SECRET_PASS}")).s("235 ok")
    d.c("AUTH LOGIN").s("334 VXNlcm5hbWU6").c("*").s("501 cancelled")
    _mail(d).close()
    events = d.events(chunk)
    text = repr(events)
    for secret in (SECRET_USER, SECRET_PASS, plain, _b64(SECRET_USER), _b64(SECRET_PASS),
                   _b64(f"{SECRET_USER} {SECRET_PASS}")):
        assert secret not in text
    assert [c.argument for c in _of(events, Command) if c.verb == "AUTH"] == [
        "PLAIN", "LOGIN", "LOGIN", "PLAIN", "CRAM-MD5", "LOGIN"]
    assert len(_of(events, AuthExchange)) == 6
    assert _of(events, Command)[-1].verb == "MAIL"


def test_starttls_client_hello_event_fields() -> None:
    d = _hello().c("STARTTLS").s("220 go").c(CH)
    events = d.events()
    (ch,) = _of(events, TlsClientHello)
    reply_220 = _of(events, Reply)[-1]
    starttls = _of(events, Command)[-1]
    assert ch.sni == "mx.example.com" and ch.max_version == 0x0304 and ch.error is None
    assert ch.span == Span(C, starttls.span.end, starttls.span.end + len(CH))
    assert reply_220.answers is starttls


def test_command_injection_anomaly_span_covers_the_injected_bytes() -> None:
    injected = b"MAIL FROM:<evil@example.org>\r\n"
    d = _hello().c(b"STARTTLS\r\n" + injected).s("220 go").c(CH)
    events = d.events()
    (a,) = _of(events, Anomaly)
    starttls = _of(events, Command)[-1]
    assert a.code is AnomalyCode.STARTTLS_COMMAND_INJECTION and a.side is C
    assert a.span == Span(C, starttls.span.end, starttls.span.end + len(injected))
    assert not [c for c in _of(events, Command) if c.verb == "MAIL"]
    assert _of(events, TlsClientHello)[0].span.start == a.span.end


def test_response_injection_anomaly_span() -> None:
    d = _hello().c("STARTTLS").s("220 go", "250 injected").c(CH).s(SH)
    events = d.events()
    (a,) = _of(events, Anomaly)
    reply_220 = _of(events, Reply)[-1]
    assert a.code is AnomalyCode.STARTTLS_RESPONSE_INJECTION and a.side is S
    assert a.span == Span(S, reply_220.span.end, reply_220.span.end + len(b"250 injected\r\n"))
    assert len(_of(events, Reply)) == 3


def test_starttls_refused_then_commands_continue() -> None:
    d = _mail(_hello().c("STARTTLS").s("454 4.7.0 TLS not available"))
    events = d.events()
    assert not _of(events, PlaintextAfterStartTls) and not _of(events, Anomaly)
    assert [c.verb for c in _of(events, Command)] == ["EHLO", "STARTTLS", "MAIL"]


def test_decrypted_capture_parses_commands_again() -> None:
    d = _mail(_hello().c("STARTTLS").s("220 go").c("EHLO client.example.org")
              .s("250-mx.example.com", "250 SIZE 1000"))
    events = d.events()
    (p,) = _of(events, PlaintextAfterStartTls)
    assert p.side is C and p.smtp_like and p.preview.startswith("EHLO client")
    assert [c.verb for c in _of(events, Command)] == ["EHLO", "STARTTLS", "EHLO", "MAIL"]
    assert [r.answers.verb for r in _of(events, Reply)[1:]] == ["EHLO", "STARTTLS", "EHLO", "MAIL"]


def test_garbage_after_220_stops_the_side() -> None:
    d = _hello().c("STARTTLS").s("220 go").c(b"\x01\x02\x03 garbage that is not TLS\r\n")
    d.c("MAIL FROM:<a@example.org>")
    events = d.events()
    (p,) = _of(events, PlaintextAfterStartTls)
    assert p.side is C and not p.smtp_like
    assert [c.verb for c in _of(events, Command)] == ["EHLO", "STARTTLS"]


def test_implicit_tls_first_bytes() -> None:
    events = Dialogue().c(CH).s(SH).events()
    assert isinstance(events[0], ImplicitTls) and events[0].span == Span(C, 0, 0)
    assert isinstance(events[1], TlsClientHello) and isinstance(events[2], TlsServerHello)
    assert not _of(events, Reply) and not _of(events, Command)


def test_implicit_tls_answered_in_plaintext() -> None:
    events = Dialogue().c(CH).s("220 mx.example.com ESMTP").events()
    (p,) = _of(events, PlaintextAfterStartTls)
    assert p.side is S and p.smtp_like


def test_gap_in_reply_marks_it_damaged_and_gap_span() -> None:
    make, _ = CASES["server-gap-in-ehlo-reply"]
    events = make().events()
    (g,) = _of(events, StreamGap)
    ehlo = _of(events, Reply)[1]
    assert ehlo.damaged and not _of(events, Reply)[0].damaged
    before = len(b"220 mx.example.com ESMTP\r\n250-mx.example.com\r\n250-PIPE")
    assert g.span == Span(S, before, before + 12)
    assert ehlo.lines[-1].span.start == before + 12 + len(b"NING\r\n")


def test_gap_on_client_drops_the_cut_line_only() -> None:
    make, _ = CASES["client-gap"]
    events = make().events()
    (g,) = _of(events, StreamGap)
    rcpt = _of(events, Command)[-1]
    assert g.side is C and g.length == 8
    assert rcpt.span.start == g.span.end + len(b".org>\r\n")


def test_gap_in_body_counts_the_lost_octets() -> None:
    d = _hello().c("DATA").s("354 go").c(b"abc\r\n").gap(C, 100).c(b"def\r\n.\r\nQUIT\r\n")
    d.s("250 ok", "221 bye")
    events = d.events()
    (mb,) = _of(events, MessageBody)
    assert mb.octets == 5 + 100 + 8
    assert _of(events, Command)[-1].verb == "QUIT"


def test_a_reply_after_a_hole_in_the_content_answers_the_end_of_data_lost_in_it() -> None:
    """The content lost its end (snap length, a drop): the server's 250 can only answer the
    end-of-data marker, which was in the hole. The content ends there, the 250 answers the
    end of data (the mail went through), and QUIT after it is read as a command again."""
    d = _hello().c("DATA").s("354 go").c(b"abc\r\n").gap(C, 100)
    d.s("250 2.0.0 queued").c("QUIT").s("221 bye")
    events = d.events()
    (mb,) = _of(events, MessageBody)
    assert (mb.octets, mb.complete, mb.span.end) == (5 + 100, False, mb.span.start + 105)
    assert _of(events, Command)[-1].verb == "QUIT"
    replies = _of(events, Reply)
    assert [(r.code, r.answers.verb if r.answers else None) for r in replies[-2:]] == [
        (250, "*EOM"), (221, "QUIT")]
    eom = replies[-2].answers
    assert eom is not None and eom.span.start == eom.span.end == mb.span.end


def test_a_reply_during_content_without_a_hole_does_not_end_it() -> None:
    """Nothing lost: a reply in the middle of the content (a server giving up early) does not
    end it; the content ends at the client's own marker, which the reply then answers (the
    client reads it after sending the dot)."""
    d = _hello().c("DATA").s("354 go").c(b"abc\r\n").s("451 local error").c(b"def\r\n.\r\n")
    events = d.events()
    (mb,) = _of(events, MessageBody)
    assert (mb.octets, mb.complete) == (5 + 8, True)
    (late,) = [r for r in _of(events, Reply) if r.code == 451]
    assert late.answers is not None and late.answers.verb == "*EOM"
    assert late.answers.span.end == mb.span.end


def test_a_220_after_a_client_hole_answers_a_starttls_lost_in_it() -> None:
    """The client's STARTTLS is lost (a hole), the server's 220 is not: after the greeting a
    220 answers only STARTTLS, so the session infers the command (no bytes of its own, at the
    hole's end), pairs the 220 with it, and reads the client's next bytes as TLS."""
    d = _hello().gap(C, len(b"STARTTLS\r\n")).s("220 2.0.0 Ready").c(CH)
    events = d.events()
    cmd = _of(events, Command)[-1]
    assert (cmd.verb, cmd.inferred) == ("STARTTLS", True)
    assert cmd.span.start == cmd.span.end == len(b"EHLO client.example.org\r\nSTARTTLS\r\n")
    ready = _of(events, Reply)[-1]
    assert ready.code == 220 and ready.answers is cmd
    assert any(isinstance(e, TlsClientHello) for e in events)


def test_a_220_without_a_client_hole_infers_nothing() -> None:
    """No client bytes lost: a 220 after the greeting with no command pending is a stray
    reply, and no STARTTLS is made up for it."""
    events = _hello().s("220 2.0.0 Ready").c("QUIT").events()
    assert not any(isinstance(e, Command) and e.inferred for e in events)
    assert [c.verb for c in _of(events, Command)] == ["EHLO", "QUIT"]


def test_eof_mid_line_flushes_the_partial_line_with_its_span() -> None:
    make, _ = CASES["eof-mid-line"]
    events = make().events()
    rcpt = _of(events, Command)[-1]
    end_c = [e for e in _of(events, StreamEnded) if e.side is C][0]
    assert rcpt.span.end == end_c.span.start == rcpt.span.start + len(b"RCPT TO:<b@exa")


def test_reset_and_eof_once_per_side_and_bytes_after_eof_ignored() -> None:
    s = SmtpSession()
    s.receive(S, b"220 mx\r\n")
    assert [type(e) for e in s.receive_eof(C, reset=True)] == [StreamEnded]
    assert s.receive_eof(C) == []
    assert s.receive(C, b"EHLO me\r\n") == []
    (end,) = s.receive_eof(S)
    assert end.side is S and not end.reset and end.span == Span(S, 8, 8)


# ------------------------------------------------------------------------------------------
# Hypothesis properties
# ------------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(CASES)),
       sizes=st.lists(st.integers(min_value=1, max_value=24), min_size=1, max_size=8))
def test_property_rechunking_gives_the_same_events(name: str, sizes: list[int]) -> None:
    make, _ = CASES[name]
    d = make()
    assert normalise(d.events(sizes)) == normalise(d.events())


VOCAB = [b"220 mx ESMTP\r\n", b"EHLO me\r\n", b"250-mx\r\n", b"250 STARTTLS\r\n", b"STARTTLS\r\n",
         b"220 go\r\n", b"DATA\r\n", b"354 go\r\n", b"\r\n.\r\n", b"BDAT 7 LAST\r\n", b"AUTH LOGIN\r\n",
         b"334 x\r\n", b"MAIL FROM:<a>\r\n", b"454 no\r\n", b"\n", b"\r", b"250-", b"\x16\x03\x01",
         CH, SH, app_data(19), b"QUIT\r\n", b"221 bye\r\n", b"5" * 600, b"\x00"]

_data = st.one_of(st.binary(max_size=200), st.sampled_from(VOCAB),
                  st.lists(st.sampled_from(VOCAB), max_size=4).map(b"".join))
_op = st.one_of(
    st.tuples(st.just("data"), st.sampled_from([C, S]), _data),
    st.tuples(st.just("gap"), st.sampled_from([C, S]), st.integers(min_value=1, max_value=3000)),
    st.tuples(st.just("eof"), st.sampled_from([C, S]), st.sampled_from([(False, False), (True, False),
                                                                        (False, True)])),
)


def _check_event(ev: Any) -> None:
    assert isinstance(ev, (Event, TlsEvent))
    assert isinstance(ev.side, Side) and ev.span.side is ev.side
    assert 0 <= ev.span.start <= ev.span.end


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_op, max_size=25), small=st.booleans())
def test_property_arbitrary_bytes_never_raise(ops: list[tuple[Any, ...]], small: bool) -> None:
    cfg = SessionConfig(max_line_length=64, max_pending_commands=4, max_reply_lines=3,
                        max_held_bytes=128) if small else None
    s = SmtpSession(cfg)
    for kind, side, arg in ops:
        if kind == "data":
            evs = s.receive(side, arg)
        elif kind == "gap":
            evs = s.receive_gap(side, arg)
        else:
            evs = s.receive_eof(side, reset=arg[0], truncated=arg[1])
        for ev in evs:
            _check_event(ev)
            if isinstance(ev, Reply):
                assert len(ev.lines) <= s.config.max_reply_lines
        assert len(s.pending) <= s.config.max_pending_commands
    for side in (C, S):
        for ev in s.receive_eof(side, truncated=True):
            _check_event(ev)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flights=st.lists(st.tuples(st.sampled_from([C, S]), st.lists(st.sampled_from(VOCAB), min_size=1,
                                                                     max_size=3).map(b"".join)),
                        max_size=12),
       sizes=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=5))
def test_property_rechunking_random_dialogues(flights: list[tuple[Side, bytes]], sizes: list[int]) -> None:
    d = Dialogue()
    for side, data in flights:
        d.send(side, data)
    d.eof(C, truncated=True).eof(S, truncated=True)
    assert normalise(d.events(sizes)) == normalise(d.events())


@pytest.mark.parametrize("sizes", [[1], [2], [5], [7, 3]])
def test_server_text_before_an_implicit_tls_client_hello_keeps_its_place(sizes: list[int]) -> None:
    """The example the property above found: 600 bytes of the server without a line end, then the
    client's first bytes a ClientHello (SMTPS) and a line after it. The server's bytes came first:
    judged where TLS is due as soon as the ClientHello begins, their event comes before the
    ClientHello's, fed whole or a few bytes at a time (fed whole, it used to come only at the
    server's end, after the client's ``TlsNotTls``)."""
    d = Dialogue().s(b"5" * 600).c(CH + b"220 mx ESMTP\r\n")
    d.eof(C, truncated=True).eof(S, truncated=True)
    whole = normalise(d.events())
    assert [type(e).__name__ for e in whole[:4]] == ["ImplicitTls", "PlaintextAfterStartTls", "TlsClientHello",
                                                      "TlsNotTls"]
    assert whole[1].side is S and whole[1].span.start == 0
    assert normalise(d.events(sizes)) == whole


# ------------------------------------------------------------------------------------------
# Linear time, bounded memory
# ------------------------------------------------------------------------------------------

def _huge_ehlo(lines: int, block: int = 1000) -> tuple[float, SmtpSession, list[Any], int]:
    s = SmtpSession()
    t0 = time.process_time()
    s.receive(S, b"220 mx\r\n")
    s.receive(C, b"EHLO me\r\n")
    flight = b"250-KEYWORD PARAM\r\n" * block
    events: list[Any] = []
    peak = 0
    for _ in range(lines // block):
        events += s.receive(S, flight)
        peak = max(peak, len(s._s.lines), len(s._reply_lines))  # noqa: SLF001
    events += s.receive(S, b"250 LAST\r\n")
    return time.process_time() - t0, s, events, peak


def test_huge_ehlo_reply_linear_time_bounded_memory() -> None:
    cfg = SessionConfig()
    # CPU time, the best of three runs of each size: a loaded machine (other test workers, a busy
    # CI host) stretches single wall-clock runs by more than the margin between linear and quadratic
    small_t = min(_huge_ehlo(25_000)[0] for _ in range(3))
    big_t, s, events, peak = _huge_ehlo(200_000)
    big_t = min([big_t] + [_huge_ehlo(200_000)[0] for _ in range(2)])
    replies = _of(events, Reply)
    assert len(replies) == 1
    (reply,) = replies
    assert len(reply.lines) == cfg.max_reply_lines and reply.damaged
    assert peak <= cfg.max_reply_lines and len(s._s.lines) == 0  # noqa: SLF001
    limit = [a for a in _of(events, Anomaly) if a.code is AnomalyCode.TOO_MANY_REPLY_LINES]
    assert len(limit) == 1
    # 8x the input: linear is ~8x the time; quadratic would be ~64x.
    assert big_t < max(small_t, 0.01) * 24, (small_t, big_t)


@pytest.mark.parametrize("side", [S, C])
def test_ten_megabyte_line_without_crlf_bounded(side: Side) -> None:
    cfg = SessionConfig()
    s = SmtpSession()
    s.receive(S, b"220 mx\r\n")
    s.receive(C, b"EHLO me\r\n")
    s.receive(S, b"250 mx\r\n")
    st_ = s._s if side is S else s._c  # noqa: SLF001
    block = (b"5" if side is S else b"X") * 65536
    t0 = time.perf_counter()
    peak = 0
    for _ in range(160):
        s.receive(side, block)
        peak = max(peak, len(st_.lines.buf))
    events = s.receive(side, b"\r\n")
    assert time.perf_counter() - t0 < 10
    assert peak <= cfg.max_line_length + len(block)
    assert len(st_.lines.buf) == 0
    too_long = [a for a in events if isinstance(a, Anomaly) and a.code is AnomalyCode.LINE_TOO_LONG]
    assert len(too_long) == 1 and too_long[0].span.end - too_long[0].span.start == 160 * 65536 + 2
    held = [e for e in events if isinstance(e, (Reply, Command))]
    assert held and all(len(getattr(e, "raw", b"") or b"") <= cfg.max_line_length for e in held)
    for e in held:
        if isinstance(e, Reply):
            assert all(len(ln.raw) <= cfg.max_line_length for ln in e.lines)


# ---- after a hole in the server's bytes (found by dropping segments of real captures) -------

def _replies(events: list[Any]) -> list[tuple[int | None, str | None]]:
    return [(e.code, e.answers.verb if e.answers else None) for e in events if isinstance(e, Reply)]


def test_a_lost_ehlo_reply_does_not_pair_220_with_ehlo() -> None:
    s = SmtpSession()
    evs = s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n")
    evs += s.receive_gap(S, 40)                                  # the whole EHLO reply
    evs += s.receive(C, b"STARTTLS\r\n") + s.receive(S, b"220 go ahead\r\n")
    evs += s.receive(C, client_hello())
    assert _replies(evs) == [(220, None), (220, "STARTTLS")]
    assert any(isinstance(e, TlsClientHello) for e in evs)


def test_tls_from_the_server_while_starttls_waits_means_the_220_was_lost() -> None:
    s = SmtpSession()
    evs = s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n")
    evs += s.receive(S, b"250-mx\r\n250 STARTTLS\r\n") + s.receive(C, b"STARTTLS\r\n")
    evs += s.receive_gap(S, 30)                                  # "220 2.0.0 Ready..."
    evs += s.receive(C, client_hello()) + s.receive(S, server_hello())
    assert not any(isinstance(e, Reply) and e.answers is not None and e.answers.verb == "STARTTLS"
                   for e in evs)
    kinds = [type(e).__name__ for e in evs if isinstance(e, TlsEvent)]
    assert "TlsClientHello" in kinds and "TlsServerHello" in kinds


def test_a_damaged_reply_ends_at_a_line_with_another_code() -> None:
    s = SmtpSession()
    evs = s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n")
    evs += s.receive(S, b"250-mx\r\n250 STAR") + s.receive_gap(S, 1)
    evs += s.receive(S, b"TLS\r\n") + s.receive(C, b"STARTTLS\r\n")
    evs += s.receive(S, b"220 2.0.0 Ready\r\n")
    assert _replies(evs) == [(220, None), (250, "EHLO"), (220, "STARTTLS")]
    ehlo = [e for e in evs if isinstance(e, Reply) and e.code == 250][0]
    assert ehlo.damaged


def _harmless_holes(evs: list[Any]) -> list[StreamGap]:
    return [e.harmless_hole for e in evs if isinstance(e, Reply) and e.harmless_hole is not None]


def test_a_short_hole_between_two_replies_is_marked_harmless_by_the_reply_after_it() -> None:
    # one byte lost between the greeting and the EHLO reply (wild-harmless-hole.pcap): the
    # reply starts right where the hole ends and is whole, so the hole held nothing
    s = SmtpSession()
    evs = s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n")
    evs += s.receive_gap(S, 1)
    evs += s.receive(S, b"250-mx\r\n250 STARTTLS\r\n") + s.receive(C, b"MAIL FROM:<a@b>\r\n")
    gap = next(e for e in evs if isinstance(e, StreamGap))
    ehlo = next(e for e in evs if isinstance(e, Reply) and e.code == 250)
    assert ehlo.harmless_hole is gap and gap.span == Span(S, 14, 15)
    assert not ehlo.damaged and ehlo.answers is not None and ehlo.answers.verb == "EHLO"
    assert _harmless_holes(evs) == [gap]


@pytest.mark.parametrize("case", ["inside-a-line", "long-enough-for-a-reply",
                                  "reply-loses-its-end", "reply-open"])
def test_a_hole_that_may_have_held_what_the_client_read_is_not_marked(case: str) -> None:
    s = SmtpSession()
    evs = s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n")
    if case == "inside-a-line":          # one byte of "STARTTLS" lost: the reply is damaged
        evs += s.receive(S, b"250-mx\r\n250 STAR") + s.receive_gap(S, 1) + s.receive(S, b"TLS\r\n")
    elif case == "long-enough-for-a-reply":   # four bytes may be a whole "250\n"
        evs += s.receive_gap(S, 4) + s.receive(S, b"250-mx\r\n250 STARTTLS\r\n")
    elif case == "reply-loses-its-end":  # short hole before the reply, a second hole inside it
        evs += s.receive_gap(S, 1) + s.receive(S, b"250-mx\r\n250-PIPE")
        evs += s.receive_gap(S, 3) + s.receive(S, b"LINING\r\n250 STARTTLS\r\n")
    else:                                # the hole falls inside an open multi-line reply
        evs += s.receive(S, b"250-mx\r\n") + s.receive_gap(S, 2)
        evs += s.receive(S, b"250 STARTTLS\r\n")
    evs += s.receive(C, b"MAIL FROM:<a@b>\r\n") + s.receive(S, b"250 2.1.0 ok\r\n")
    assert any(isinstance(e, StreamGap) for e in evs)
    assert any(isinstance(e, Reply) and e.code == 250 for e in evs)
    assert _harmless_holes(evs) == []


# ----------------------------------------------------------------- late start and holes (issue 18)

def _replies_and_commands(evs: list[Any]) -> list[Any]:
    return [ev for ev in evs if isinstance(ev, (Reply, Command))]


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_late_start_tls_first_is_tls_in_progress_never_a_banner(chunk: int | None) -> None:
    from pcapsmtp.smtp.events import TlsInProgress
    d = Dialogue(late_start=True).s(app_data(130)).c(app_data(50)).s(app_data(30)).close()
    evs = d.events(chunk)
    assert _replies_and_commands(evs) == []
    assert {ev.side for ev in evs if isinstance(ev, TlsInProgress)} == {Side.CLIENT, Side.SERVER}
    assert not any(isinstance(ev, ImplicitTls) for ev in evs)


@pytest.mark.parametrize("chunk", [None, 1])
def test_binary_after_a_hole_never_becomes_a_reply_or_command(chunk: int | None) -> None:
    noise = bytes(range(256)) * 3 + b"\r\n250 fake\x01\r\n"
    d = Dialogue().s("220 mx ESMTP").c("EHLO a").gap(S, 10).s(noise).gap(C, 5).c(noise)
    d.s("250 2.0.0 real\r\n").close()
    got = [(type(ev).__name__, getattr(ev, "code", None) or getattr(ev, "verb", None))
           for ev in _replies_and_commands(d.events(chunk))]
    assert got == [("Reply", 220), ("Command", "EHLO"), ("Reply", 250)]


def test_a_hole_where_tls_is_due_is_tls_not_plaintext() -> None:
    d = Dialogue().s("220 mx ESMTP").c("EHLO a").s("250 STARTTLS").c("STARTTLS")
    d.s("220 go ahead").gap(S, 7).s(b"\x99" * 3 + app_data(40)).close()
    evs = d.events()
    assert not any(isinstance(ev, PlaintextAfterStartTls) for ev in evs)


def test_a_late_start_inside_a_utf8_character_is_still_text() -> None:
    d = Dialogue(late_start=True).c("\u00e9t\u00e9 body line".encode()[1:] + b"\r\nQUIT\r\n")
    d.s("221 bye").close()
    got = [(type(ev).__name__, getattr(ev, "verb", None)) for ev in d.events()
           if isinstance(ev, Command)]
    assert got == [("Command", "QUIT")]


def test_late_start_at_starttls_keeps_the_clients_handshake() -> None:
    """A capture that starts at the client's STARTTLS, without the server's 220: the server's
    handshake answers the STARTTLS, and the client's bytes held for that answer are its side of
    the handshake (they were dropped, and the server's closing alert then read as a refusal)."""
    s = SmtpSession(late_start=True)
    evs = s.receive(Side.CLIENT, b"STARTTLS\r\n")
    evs += s.receive(Side.CLIENT, client_hello())
    evs += s.receive(Side.SERVER, server_hello())
    evs += s.receive(Side.CLIENT, app_data())
    client_tls = [e for e in evs if isinstance(e, TlsEvent) and e.side is Side.CLIENT]
    assert any(isinstance(e, TlsClientHello) for e in client_tls), evs
    assert any(isinstance(e, TlsServerHello) for e in evs), evs


@pytest.mark.parametrize("chunk", [None, 1, 5, 1000])
def test_tls_and_body_bytes_bypass_the_line_buffer_with_the_same_offsets(chunk: int | None) -> None:
    """TLS records after STARTTLS's 220 and message content after 354 go straight to the
    TLS observer and the end-of-data search (nothing is buffered in those modes): the events,
    their spans and what the session still refers to (``low_water``) are those of any other
    chunking, also with the end-of-data marker and a record header cut across chunks."""
    body = b"Subject: x\r\n\r\n" + b"line of text\r\n" * 300 + b".\r\n"
    d = _mail(_hello()).c("RCPT TO:<b@example.net>").s("250 ok").c("DATA").s("354 go")
    d.c(body).s("250 queued").c("STARTTLS").s("220 ready").c(CH)
    d.s(server_hello(selected=0x0303, suite=0xC02F), app_data(40) * 3).c(app_data(30) * 5)
    d.close()
    evs = d.events(chunk)
    assert normalise(evs) == normalise(d.events())
    bodies = [ev for ev in evs if isinstance(ev, MessageBody)]
    assert [(b.octets, b.complete) for b in bodies] == [(len(body), True)]
    client_bytes = sum(len(op.data) for op in d.ops if op.side is C and op.data)
    assert d.session is not None and d.session.low_water(C) == client_bytes
    ends = [ev for ev in evs if isinstance(ev, StreamEnded) and ev.side is C]
    assert ends and ends[0].span.start == client_bytes


# --------------------------------------------- bytes after an unanswered STARTTLS, by when they came

def _after_unanswered_starttls(later: bytes, wait_ns: int) -> list[Event]:
    """Greeting, EHLO and its reply, STARTTLS at t = 1 s, no answer; ``later`` from the client
    ``wait_ns`` after STARTTLS, then the client's FIN."""
    s = SmtpSession()
    t = 1_000_000_000
    evs: list[Event] = []
    evs += s.receive(Side.SERVER, b"220 mx.example.com ESMTP\r\n", t - 3_000_000)
    evs += s.receive(Side.CLIENT, b"EHLO c.example.org\r\n", t - 2_000_000)
    evs += s.receive(Side.SERVER, b"250-mx.example.com\r\n250 STARTTLS\r\n", t - 1_000_000)
    evs += s.receive(Side.CLIENT, b"STARTTLS\r\n", t)
    evs += s.receive(Side.CLIENT, later, t + wait_ns)
    evs += s.receive_eof(Side.CLIENT, ts_ns=t + wait_ns + 1_000_000)
    return evs


@settings(max_examples=60, deadline=None)
@given(wait_ns=st.integers(min_value=0, max_value=10_000_000_000),
       later=st.sampled_from([b"QUIT\r\n", b"MAIL FROM:<a@example.org>\r\n", b"RSET\r\nQUIT\r\n"]))
def test_plaintext_after_a_wait_for_starttls_is_commands_sooner_an_injection(wait_ns: int, later: bytes) -> None:
    """A client that sent plaintext a second or more after an unanswered STARTTLS gave up waiting
    (swaks --tls-optional goes on with MAIL FROM, others QUIT): its bytes are commands. Sooner,
    they belong to the STARTTLS flight: a command injection, never commands."""
    from pcapsmtp.smtp.events import WAITED_NS
    evs = _after_unanswered_starttls(later, wait_ns)
    verbs = [e.verb for e in evs if isinstance(e, Command)]
    injections = [e for e in evs if isinstance(e, Anomaly) and e.code is AnomalyCode.STARTTLS_COMMAND_INJECTION]
    sent = [ln.split(b" ")[0].rstrip(b"\r\n").decode() for ln in later.splitlines()]
    if wait_ns >= WAITED_NS:
        assert verbs == ["EHLO", "STARTTLS", *sent] and not injections
        assert all(e.ts_ns == 1_000_000_000 + wait_ns for e in evs if isinstance(e, Command) and e.verb in sent)
    else:
        assert verbs == ["EHLO", "STARTTLS"] and len(injections) == 1


def test_tls_after_a_wait_for_starttls_stays_held_for_the_answer() -> None:
    """A ClientHello sent long after an unanswered STARTTLS is still the client's side of the
    handshake, never a command."""
    evs = _after_unanswered_starttls(client_hello(), 5_000_000_000)
    assert [e.verb for e in evs if isinstance(e, Command)] == ["EHLO", "STARTTLS"]
    assert not [e for e in evs if isinstance(e, Anomaly)]


# ------------------------------------ the server's plaintext after its 220, by when it came

@settings(max_examples=60, deadline=None)
@given(wait_ns=st.integers(min_value=0, max_value=700_000_000_000))
def test_server_plaintext_after_its_220_is_an_injection_only_in_its_flight(wait_ns: int) -> None:
    """A server's plaintext after its 220 to STARTTLS, no client byte since: sooner than a second
    after the 220 it rode the 220's flight (a response injection); later it is a server that gave up
    waiting for the ClientHello (Exim's command timeout sends its 421 in plaintext): plaintext
    after STARTTLS, never an injection."""
    from pcapsmtp.smtp.events import WAITED_NS
    s = SmtpSession()
    t = 1_000_000_000
    evs: list[Event] = []
    evs += s.receive(Side.SERVER, b"220 mx.example.net ESMTP Exim 4.96\r\n", t)
    evs += s.receive(Side.CLIENT, b"EHLO c.example.org\r\n", t + 1_000_000)
    evs += s.receive(Side.SERVER, b"250-mx.example.net\r\n250 STARTTLS\r\n", t + 2_000_000)
    evs += s.receive(Side.CLIENT, b"STARTTLS\r\n", t + 3_000_000)
    evs += s.receive(Side.SERVER, b"220 TLS go ahead\r\n", t + 4_000_000)
    late = b"421 mx.example.net: SMTP command timeout - closing connection\r\n"
    evs += s.receive(Side.SERVER, late, t + 4_000_000 + wait_ns)
    evs += s.receive_eof(Side.SERVER, ts_ns=t + 5_000_000 + wait_ns)
    injections = [e for e in evs if isinstance(e, Anomaly) and e.code is AnomalyCode.STARTTLS_RESPONSE_INJECTION]
    plain = [e for e in evs if isinstance(e, PlaintextAfterStartTls)]
    if wait_ns >= WAITED_NS:
        assert not injections and [(p.side, p.smtp_like) for p in plain] == [(Side.SERVER, True)]
        assert plain[0].preview.startswith("421 mx.example.net: SMTP command timeout")
    else:
        assert len(injections) == 1 and not plain


_ONE_SIDED_SERVER = [b"220 mx.example.org ESMTP\r\n", b"250-mx.example.org\r\n250 STARTTLS\r\n",
                     b"220 2.0.0 Ready to start TLS\r\n"]


@pytest.mark.parametrize("chunk", [None, 1, 3, 7])
def test_a_server_only_capture_reads_tls_after_a_220(chunk: int | None) -> None:
    """Nothing of the client at all (a capture of the server's direction only): a TLS record
    right after a 220 that followed the greeting answers a STARTTLS the capture does not show,
    so the server's next bytes are TLS (its ServerHello), not reply lines; the replies before
    it come out first, unpaired."""
    data = b"".join(_ONE_SIDED_SERVER) + server_hello() + app_data()
    s = SmtpSession()
    evs: list[Event] = []
    step = chunk or len(data)
    for i in range(0, len(data), step):
        evs += s.receive(Side.SERVER, data[i:i + step])
    evs += s.receive_eof(Side.SERVER)
    replies = [e.code for e in evs if isinstance(e, Reply)]
    assert replies == [220, 250, 220]
    hello = next(i for i, e in enumerate(evs) if isinstance(e, TlsServerHello))
    assert max(i for i, e in enumerate(evs) if isinstance(e, Reply)) < hello
    assert evs[hello].span.start == sum(len(x) for x in _ONE_SIDED_SERVER)


@pytest.mark.parametrize("case", ["client-seen", "greeting-only", "not-tls", "late"])
def test_no_tls_is_sniffed_after_a_220_unless_only_the_server_is_there(case: str) -> None:
    """The client's direction decides when it is there (its STARTTLS, ``_release_hold``): a
    client byte, even an unanswered one, stops the sniffing; so do a 220 that is the greeting,
    bytes after the 220 that are no TLS record, and a late start (its own rule)."""
    s = SmtpSession(late_start=case == "late")
    evs: list[Event] = []
    if case == "client-seen":
        evs += s.receive(Side.SERVER, _ONE_SIDED_SERVER[0])
        evs += s.receive(Side.CLIENT, b"NOOP\r\n")
        evs += s.receive(Side.SERVER, b"220 2.0.0 Ok\r\n" + server_hello())
    elif case == "greeting-only":
        evs += s.receive(Side.SERVER, _ONE_SIDED_SERVER[0] + server_hello())
    elif case == "not-tls":
        evs += s.receive(Side.SERVER, b"".join(_ONE_SIDED_SERVER) + b"250 2.0.0 Ok\r\n" + server_hello())
    else:
        evs += s.receive(Side.SERVER, b"250 mx.example.org\r\n220 2.0.0 Ready\r\n" + server_hello())
    evs += s.receive_eof(Side.SERVER)
    assert not any(isinstance(e, TlsServerHello) for e in evs) or case == "late"
    if case == "late":
        # (a late start reads a record where a line begins as TLS in progress, as before)
        assert any(isinstance(e, TlsInProgress) for e in evs)
