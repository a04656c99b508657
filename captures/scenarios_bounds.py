"""Long conversations past the bound on events kept per conversation (``AnalysisConfig.max_events``,
2000; ``pcapsmtp/analysis/transcript.py``), and behaviours tested one way only before (the eighteenth
session's bounds helper).

Past the bound:

- ``limit-noops-then-tls.pcap``: 1100 NOOPs, each answered, then STARTTLS and a TLS 1.2 handshake with
  the mail inside. The handshake's events were not kept past the bound, so it read
  ``aborted/client/tls-handshake-failed`` (the client's close_notify, kept as an alert, taken for its
  refusal); ``tls`` now, with ``limit-reached`` at the first event not kept (the reply to the 999th NOOP:
  the banner, EHLO and its reply are the first three events).
- ``limit-rsets-then-hello-unanswered.pcap``: 1100 RSETs, STARTTLS, 220, the ClientHello, and nothing
  from the server until the client closes 5 s later: the server's ``tls-handshake-failed``
  (``no-answer`` at the ClientHello), which the dropped ClientHello hid.
- ``limit-pipelined-noops-then-tls.pcap``: a pipelining client sends 5000 NOOP and RSET in groups of
  100, each group answered in one segment, then STARTTLS and TLS: ``tls``. Far past twice the bound:
  those commands and their replies are no event a verdict turns on.
- ``limit-pipelined-rcpts-delivered.pcap``: a valid offer the client skips; it pipelines MAIL, 1500
  RCPTs (in groups of 100) and DATA, the message goes and is accepted: ``client-did-not-request`` as
  before, and ``delivered`` true (the answer to the end of data was not kept).
- ``limit-mail-530-then-tls.pcap``: a client whose MAIL the server refuses 530 (STARTTLS first), 2100
  times, then STARTTLS and TLS. Past twice the bound the MAILs and their refusals, which a verdict
  may turn on, are no longer kept, nor the STARTTLS (``starttls.requested`` reads false, as kept):
  ``incomplete``, ``limit-reached`` at the first one dropped (the 530 to the 1999th MAIL).
- ``limit-many-messages-in-clear.pcap``: 600 messages in the clear on one connection after a
  skipped offer (MAIL, RCPT, DATA pipelined; the content; its 250), then QUIT. Past twice the
  bound, but the server had accepted a MAIL in the clear before: the verdict was settled and
  stands (``client-did-not-request``).

Behaviours that were tested one way only:

- ``retry-port-587-then-25-and-587.pcap``: the plaintext-retry rule (``tls-fallback``,
  pcapsmtp/analysis/fallback.py) is keyed by client, server and server port. A host whose TLS
  fails on the submission port 587 (the server's fatal alert), then delivers in the clear to port 25
  of the same server 2 s later, keeps that conversation's own verdict (``client-did-not-request``:
  another service, another program's choice); 2 s after that it comes back to 587 in the clear, and
  that is the failure's ``tls-fallback``.
- ``retry-port-unsure-587-and-25.pcap``: the unsure-retry rule: STARTTLS on port 25, 220, the
  ClientHello, and the server's answer lost from the capture (the client acknowledged it), then the
  client's fatal alert: ``incomplete``, and how the attempt ended is not known. A plaintext
  conversation to port 587 after it keeps its own verdict; one to port 25 may be the retry after a
  failure the capture does not show: ``incomplete`` too.
- ``silent-ehlo-then-mail.pcap``: EHLO never answered; 2 s later the client sends MAIL in the
  clear (it gave up waiting), nothing answers, and it closes 5 s later: the server's ``ehlo-rejected``
  (case ``no-answer``), ``plaintext`` (the MAIL crossed in the clear).
- ``silent-ehlo-mail-no-wait.pcap``: the same, the MAIL 100 ms after the EHLO (the client did
  not wait for the EHLO reply: no giving up) and the close 5 s after it: ``incomplete``, the detail
  saying that the client did not wait for the extension list, which the server had not sent.
- ``wild-server-silent-talked-first.pcap``: the server accepts the connection and sends nothing; the
  client sends EHLO at once (it talks first), then waits and closes 40 s later: the server never
  greeted (``greeting-refused``, case ``no-answer`` at the close), as when the client waits without a
  word (``wild-server-silent-greeting-timeout.pcap``). The EHLO sent before any greeting was taken for
  the client's giving up, sooner than 30 s: ``no-mail-transaction``.
- ``wild-server-silent-talked-first-mail.pcap``: the same with the client's MAIL in the clear 5 s
  after its EHLO (no greeting, no reply): the server never greeted (``greeting-refused``, case
  ``no-answer`` at the close, 40 s after the connection opened), ``plaintext`` (the MAIL crossed in
  the clear). Was ``incomplete``, "the EHLO reply is not in the capture": the greeting rule was
  asked only of a client that sent nothing in the clear.
"""
from __future__ import annotations

from generate import (
    EHLO, MAIL_STEPS, READY, STARTTLS, Capture, Conv, Expect, alert, client_hello, did_not_request_conv, opening,
    server_flight_tls12, starttls_ok, tls_alert_server_conv,
)
from scenarios_hang import EHLO_SILENT, WAIT_MS, ehlo_sent

#: the bound of ``AnalysisConfig.max_events``, and the events before the first NOOP (the banner,
#: EHLO and its reply)
MAX_EVENTS = 2000
OPENING_EVENTS = 3
OK = b"250 2.0.0 Ok\r\n"
MAIL = b"MAIL FROM:<alice@example.org>\r\n"
RCPT = b"RCPT TO:<bob@example.com>\r\n"
BODY = b"Subject: test\r\n\r\nThis line travels in the clear.\r\n.\r\n"


def _first_dropped() -> int:
    """The command (from 0) whose reply is the first event not kept, in a run of commands each
    answered before the next: the command before it is the bound's last event."""
    return (MAX_EVENTS - OPENING_EVENTS) // 2


def _group_at_bound(group: int) -> int:
    """The group (from 0) of ``group`` pipelined commands, then their ``group`` replies, during
    whose replies the bound is reached."""
    return (MAX_EVENTS - OPENING_EVENTS) // (2 * group)


def one_by_one(conv: Conv, command: bytes, reply: bytes, n: int, *, tag_at: int | None = None) -> Conv:
    """``n`` times ``command`` and its ``reply``, one segment each (no pure ACKs: a reply or the next
    command acknowledges); ``tag_at``: the reply of that command is tagged ``first_dropped``."""
    for k in range(n):
        conv.c(command, acked=False)
        conv.s(reply, acked=False, tag="first_dropped" if k == tag_at else None)
    return conv


def noops_then_tls() -> Capture:
    c = one_by_one(opening(Conv(cport=48001)), b"NOOP\r\n", OK, 1100, tag_at=_first_dropped())
    starttls_ok(c, "bounds noops")
    return Capture(
        "limit-noops-then-tls.pcap",
        "1100 NOOPs, each answered, then STARTTLS and a TLS 1.2 handshake with the mail inside: past the "
        "bound on events kept per conversation, the TLS events are still kept",
        [(c, Expect("tls", "none", "tls-established", "valid", True, 220,
                    findings=[("limit-reached", "capture", "first_dropped")]))])


def rsets_then_hello_unanswered() -> Capture:
    c = opening(Conv(cport=48002, close=("fin", "C")))
    one_by_one(c, b"RSET\r\n", OK, 1100, tag_at=_first_dropped())
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello("bounds rsets", "mx.example.com"), tag="client_hello")
    c.fin("C", tag="client_fin", delay_ms=WAIT_MS)
    return Capture(
        "limit-rsets-then-hello-unanswered.pcap",
        "1100 RSETs, each answered, STARTTLS, 220, the ClientHello, then nothing from the server; 5 s later "
        "the client closes: the server's silence, past the bound",
        [(c, Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                    findings=[("limit-reached", "capture", "first_dropped"),
                              ("no-answer", "server", "client_hello")]))])


def pipelined_noops_then_tls() -> Capture:
    c = opening(Conv(cport=48003))
    group = 100
    for g in range(5000 // group):
        cmds = b"".join(b"NOOP\r\n" if k % 2 else b"RSET\r\n" for k in range(group))
        c.c(cmds, acked=False)
        # (one segment: 100 replies of 14 bytes fit the MSS; the first event not kept is a reply
        # of the group during which the bound is reached)
        c.s(OK * group, acked=False, tag="first_dropped" if g == _group_at_bound(group) else None)
    starttls_ok(c, "bounds pipelined")
    return Capture(
        "limit-pipelined-noops-then-tls.pcap",
        "a pipelining client: 5000 NOOP and RSET in groups of 100, each group answered in one segment, "
        "then STARTTLS and TLS 1.2 with the mail inside: far past twice the bound, nothing a verdict "
        "turns on was dropped",
        [(c, Expect("tls", "none", "tls-established", "valid", True, 220,
                    findings=[("limit-reached", "capture", "first_dropped")]))])


def pipelined_rcpts_delivered() -> Capture:
    c = opening(Conv(cport=48004, close=("fin", "S")))
    group = 100
    for g in range(1500 // group):
        c.c((MAIL + RCPT * (group - 1)) if g == 0 else RCPT * group, acked=False)
        c.s(OK * group, acked=False, tag="first_dropped" if g == _group_at_bound(group) else None)
    c.c(RCPT + b"DATA\r\n", acked=False)
    c.s(OK + b"354 End data with <CR><LF>.<CR><LF>\r\n", acked=False)
    c.c(BODY, acked=False).s(b"250 2.0.0 Ok: queued as 4F2A1C3B\r\n", acked=False)
    c.c(b"QUIT\r\n", acked=False).s(b"221 2.0.0 Bye\r\n", acked=False)
    return Capture(
        "limit-pipelined-rcpts-delivered.pcap",
        "a valid offer the client skips: MAIL, 1500 RCPTs and DATA pipelined in groups of 100, the message "
        "accepted, QUIT: client-did-not-request, delivered",
        [(c, Expect("plaintext", "client", "client-did-not-request", "valid",
                    findings=[("limit-reached", "capture", "first_dropped")]))])


def mail_530_then_tls() -> Capture:
    c = opening(Conv(cport=48005))
    refused = b"530 5.7.0 Must issue a STARTTLS command first\r\n"
    # (kept: 2000 events, then the MAILs and 530s up to twice the bound: the 1999th MAIL is the
    # 4000th event, its 530 the first dropped)
    one_by_one(c, MAIL, refused, 2100, tag_at=(2 * MAX_EVENTS - OPENING_EVENTS) // 2)
    starttls_ok(c, "bounds 530")
    return Capture(
        "limit-mail-530-then-tls.pcap",
        "2100 MAILs refused 530 (STARTTLS first), then STARTTLS and TLS: past twice the bound the MAILs and "
        "their refusals, events a verdict may turn on, are no longer kept: incomplete",
        [(c, Expect("incomplete", "unknown", "incomplete", "valid", False, None,
                    findings=[("limit-reached", "capture", "first_dropped")]))])


def many_messages_in_clear() -> Capture:
    c = opening(Conv(cport=48006, close=("fin", "S")))
    # Eight events a message (MAIL, RCPT, DATA, their three replies, the content and the answer
    # to its end): the bound is reached in the 250th message, and the first event not kept is the
    # reply to the next message's RCPT (no verdict reads it; that message's MAIL, RCPT and DATA
    # are kept: the RCPT as the command right after MAIL)
    first = (MAX_EVENTS - OPENING_EVENTS) // 8 + 1
    for m in range(600):
        c.c(MAIL + RCPT + b"DATA\r\n", acked=False)
        c.s(OK + OK + b"354 End data with <CR><LF>.<CR><LF>\r\n", acked=False,
            tag="first_dropped" if m == first else None)
        c.c(BODY, acked=False).s(b"250 2.0.0 Ok: queued\r\n", acked=False)
    c.c(b"QUIT\r\n", acked=False).s(b"221 2.0.0 Bye\r\n", acked=False)
    return Capture(
        "limit-many-messages-in-clear.pcap",
        "600 messages in the clear on one connection after a skipped offer, then QUIT: past twice the bound, "
        "but settled by the first MAIL the server accepted",
        [(c, Expect("plaintext", "client", "client-did-not-request", "valid",
                    findings=[("limit-reached", "capture", "first_dropped")]))])


def fallback_by_port() -> Capture:
    failed = tls_alert_server_conv(cport=48101, sport=587)
    other = did_not_request_conv(cport=48102, start_offset_ms=2000, isn=(0x0BADCAFE, 0x0DEFACED + 48102))
    again = did_not_request_conv(cport=48103, sport=587, start_offset_ms=2000,
                                 isn=(0x0BADCAFE, 0x0DEFACED + 48103))
    return Capture(
        "retry-port-587-then-25-and-587.pcap",
        "stream 0: TLS on port 587 fails (the server's handshake_failure alert); 2 s later stream 1 to port 25 "
        "of the same server skips the offered STARTTLS (another service: its own verdict); 2 s later stream 2 "
        "to port 587 does the same (the retry: tls-fallback)",
        [(failed, Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         [("tls-alert", "server", "alert")])),
         (other, Expect("plaintext", "client", "client-did-not-request", "valid")),
         (again, Expect("plaintext", "server", "tls-fallback", "valid"))])


def unsure_by_port() -> Capture:
    label = "bounds unsure"
    unsure = opening(Conv(cport=48111, close=("fin", "C")))
    unsure.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    unsure.c(client_hello(label, "mx.example.com"), tag="client_hello")
    # the server's flight, missing from the capture (the client's next segment acknowledges it)
    unsure.s(server_flight_tls12(label, "mx.example.com")[0], lost=[0], tag="server_hello")
    unsure.c(alert(42), tag="alert")
    other = did_not_request_conv(cport=48112, sport=587, start_offset_ms=2000,
                                 isn=(0x0BADCAFE, 0x0DEFACED + 48112))
    again = did_not_request_conv(cport=48113, start_offset_ms=2000, isn=(0x0BADCAFE, 0x0DEFACED + 48113))
    return Capture(
        "retry-port-unsure-587-and-25.pcap",
        "stream 0: STARTTLS on port 25, 220, the ClientHello, the server's answer lost from the capture, the "
        "client's fatal alert: incomplete; 2 s later stream 1 to port 587 skips the offered STARTTLS (its own "
        "verdict); 2 s later stream 2 to port 25 does the same (maybe the retry after a failure the capture "
        "does not show: incomplete)",
        [(unsure, Expect("incomplete", "unknown", "incomplete", "valid", True, 220,
                         [("tcp-gap", "capture", "alert"), ("tls-alert", "client", "alert")])),
         (other, Expect("plaintext", "client", "client-did-not-request", "valid")),
         (again, Expect("incomplete", "unknown", "incomplete", "valid"))])


def ehlo_silent_then_mail(wait_ms: float) -> Capture:
    waited = wait_ms >= 1000
    c = ehlo_sent(48121 if waited else 48122, ("fin", "C"))
    c.c(MAIL_STEPS[0][1], tag="mail", delay_ms=wait_ms)
    c.fin("C", tag="client_fin", delay_ms=WAIT_MS)
    if waited:
        return Capture(
            "silent-ehlo-then-mail.pcap",
            "the banner, EHLO, then nothing from the server; 2 s later the client sends MAIL in the clear (it gave "
            "up waiting), nothing answers, and 5 s later it closes: the server's, at the EHLO; plaintext",
            [(c, Expect("plaintext", "server", "ehlo-rejected", "unknown", False, None,
                        EHLO_SILENT.findings))])
    return Capture(
        "silent-ehlo-mail-no-wait.pcap",
        "the banner, EHLO, and 100 ms later MAIL (the client did not wait for the EHLO reply), then nothing from "
        "the server; 5 s later the client closes",
        [(c, Expect("incomplete", "unknown", "incomplete", "unknown", False, None))])


def talked_first_then_silence() -> Capture:
    c = Conv(cport=48131, close=("fin", "C"))
    c.c(EHLO, tag="greeting")
    c.fin("C", tag="client_fin", delay_ms=40_000)
    return Capture(
        "wild-server-silent-talked-first.pcap",
        "the server accepts the connection and sends nothing; the client sends EHLO at once, then waits and "
        "closes 40 s later: the server never greeted",
        [(c, Expect("aborted", "server", "greeting-refused", "unknown", False, None,
                    [("no-answer", "server", "label:fin:C")]))])


def talked_first_mail_then_silence() -> Capture:
    c = Conv(cport=48132, close=("fin", "C"))
    c.c(EHLO, tag="greeting")
    c.c(MAIL_STEPS[0][1], tag="mail", delay_ms=5_000)
    c.fin("C", tag="client_fin", delay_ms=35_000)
    return Capture(
        "wild-server-silent-talked-first-mail.pcap",
        "the server accepts the connection and sends nothing; the client sends EHLO at once, MAIL in the clear 5 s "
        "later, then waits and closes 40 s after the connection opened: the server never greeted; plaintext",
        [(c, Expect("plaintext", "server", "greeting-refused", "unknown", False, None,
                    [("no-answer", "server", "label:fin:C")]))])


def scenarios() -> list[Capture]:
    return [noops_then_tls(), rsets_then_hello_unanswered(), pipelined_noops_then_tls(),
            pipelined_rcpts_delivered(), mail_530_then_tls(), many_messages_in_clear(),
            fallback_by_port(), unsure_by_port(), ehlo_silent_then_mail(2000), ehlo_silent_then_mail(100),
            talked_first_then_silence(), talked_first_mail_then_silence()]

