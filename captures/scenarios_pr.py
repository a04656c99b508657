"""A reply the server began before the client's next visible command, after client bytes were lost.

The server answers a command only once it has read it, so a reply whose first bytes the
server sent before the client's next visible command (its bytes come before that command in
causal order) cannot answer it. When client bytes were lost before that command, the reply
answers a command lost in the hole: no visible command of the client read it, and the
client's next reply answers its next command. Each capture is such a hole followed by a
plaintext transaction: the reply paired with each command decides what the client's bytes
are (after DATA: a message body only after a 354).
"""
from __future__ import annotations

from generate import BANNER, EHLO_NO_TLS, Capture, Conv, Expect
from scenarios_explain import EHLO, REPLY_END, REPLY_HEAD     # an EHLO reply cut after line 3

MAIL = b"MAIL FROM:<alice@example.org>\r\n"
RCPT = b"RCPT TO:<bob@example.com>\r\n"
DATA = b"DATA\r\n"
BODY = b"Subject: test\r\n\r\nhello\r\n.\r\n"
QUIT = b"QUIT\r\n"
OK_MAIL = b"250 2.1.0 Ok\r\n"
OK_RCPT = b"250 2.1.5 Ok\r\n"
GO_AHEAD = b"354 End data with <CR><LF>.<CR><LF>\r\n"
QUEUED = b"250 2.0.0 Ok: queued as 4Xy1\r\n"
BYE = b"221 2.0.0 Bye\r\n"

NOT_OFFERED = ("plaintext", "server", "starttls-not-offered", "absent")


def _transaction(c: Conv) -> Conv:
    c.c(MAIL, tag="mail").s(OK_MAIL, tag="mail_reply")
    c.c(RCPT, tag="rcpt").s(OK_RCPT, tag="rcpt_reply")
    c.c(DATA, tag="data").s(GO_AHEAD, tag="go_ahead")
    c.c(BODY, tag="body").s(QUEUED, tag="queued")
    c.c(QUIT, tag="quit").s(BYE, tag="bye")
    return c


def lost_ehlo_then_mail() -> Capture:
    """The client's EHLO and the end of the EHLO reply are lost (both ACKed); the client goes
    on with MAIL. What is left of the EHLO reply began before MAIL: it answers the lost EHLO,
    MAIL gets its own 250 and DATA its 354 (the body is content, not commands). The lost end of
    the EHLO reply may have offered STARTTLS: nobody is blamed."""
    c = Conv(cport=40811)
    c.s(BANNER, tag="banner").c(EHLO, tag="greeting", lost=[0])
    c.s([REPLY_HEAD, REPLY_END], tag="reply_head", lost=[1])
    _transaction(c)
    return Capture(
        "pr-lost-ehlo-then-mail.pcap",
        "the client's EHLO and the end of the EHLO reply are missing from the capture (ACKed); "
        "the client sends MAIL: the rest of the EHLO reply answers the lost EHLO, not MAIL; MAIL, "
        "RCPT and DATA get their own replies and the message is queued; whether STARTTLS was "
        "offered is in the lost part",
        [(c, Expect("incomplete", "unknown", "incomplete", "unknown",
                    findings=[("tcp-gap", "capture", "reply_head"),
                              ("tcp-gap", "capture", "mail")]))])


def _after_ehlo(cport: int) -> Conv:
    c = Conv(cport=cport)
    c.s(BANNER, tag="banner").c(EHLO, tag="greeting").s(EHLO_NO_TLS, tag="ehlo_reply")
    return c


def lost_rcpt_whole_reply() -> Capture:
    """A pipelining client's RCPT is lost (ACKed); the server's 250 to it arrives, whole,
    before the client's DATA: it answers the lost RCPT, DATA gets its 354."""
    c = _after_ehlo(40812)
    c.c(MAIL, tag="mail").s(OK_MAIL, tag="mail_reply")
    c.c(RCPT, tag="rcpt", lost=[0]).s(OK_RCPT, tag="rcpt_reply")
    c.c(DATA, tag="data").s(GO_AHEAD, tag="go_ahead")
    c.c(BODY, tag="body").s(QUEUED, tag="queued")
    c.c(QUIT, tag="quit").s(BYE, tag="bye")
    return Capture(
        "pr-lost-rcpt-whole-reply.pcap",
        "STARTTLS not offered, MAIL in the clear; the client's RCPT is missing from the capture "
        "(ACKed) and its 250 comes before DATA: that 250 answers the lost RCPT, DATA gets its 354 "
        "and the message is content",
        [(c, Expect(*NOT_OFFERED, findings=[("tcp-gap", "capture", "rcpt_reply")]))])


def lost_rcpt_reply_split() -> Capture:
    """As above, but the server's 250 to the lost RCPT comes in two segments and the client's
    DATA between them: the reply began before DATA was sent, so it answers the lost RCPT
    although it ends after DATA; DATA gets its 354."""
    c = _after_ehlo(40813)
    c.c(MAIL, tag="mail").s(OK_MAIL, tag="mail_reply")
    c.c(RCPT, tag="rcpt", lost=[0]).s(OK_RCPT[:9], tag="rcpt_reply")
    c.c(DATA, tag="data").s(OK_RCPT[9:], tag="rcpt_reply_end")
    c.s(GO_AHEAD, tag="go_ahead")
    c.c(BODY, tag="body").s(QUEUED, tag="queued")
    c.c(QUIT, tag="quit").s(BYE, tag="bye")
    return Capture(
        "pr-lost-rcpt-reply-split.pcap",
        "STARTTLS not offered, MAIL in the clear; the client's RCPT is missing from the capture "
        "(ACKed); the 250 to it is sent in two segments with the client's DATA between them: the "
        "250 answers the lost RCPT, DATA gets its 354 and the message is content",
        [(c, Expect(*NOT_OFFERED, findings=[("tcp-gap", "capture", "rcpt_reply")]))])


def lost_mail_reply_split() -> Capture:
    """The client's MAIL is lost (ACKed); the server's 250 to it comes in two segments with the
    client's RCPT between them: it answers the lost MAIL, RCPT gets its own 250. The
    transaction began in the lost bytes: nobody is blamed."""
    c = _after_ehlo(40814)
    c.c(MAIL, tag="mail", lost=[0]).s(OK_MAIL[:9], tag="mail_reply")
    c.c(RCPT, tag="rcpt").s(OK_MAIL[9:], tag="mail_reply_end")
    c.s(OK_RCPT, tag="rcpt_reply")
    c.c(DATA, tag="data").s(GO_AHEAD, tag="go_ahead")
    c.c(BODY, tag="body").s(QUEUED, tag="queued")
    c.c(QUIT, tag="quit").s(BYE, tag="bye")
    return Capture(
        "pr-lost-mail-reply-split.pcap",
        "STARTTLS not offered; the client's MAIL is missing from the capture (ACKed); the 250 to "
        "it is sent in two segments with the client's RCPT between them: the 250 answers the lost "
        "MAIL, RCPT and DATA get their own replies",
        [(c, Expect("incomplete", "unknown", "incomplete", "absent",
                    findings=[("tcp-gap", "capture", "mail_reply")]))])


def scenarios() -> list[Capture]:
    return [lost_ehlo_then_mail(), lost_rcpt_whole_reply(), lost_rcpt_reply_split(),
            lost_mail_reply_split()]
