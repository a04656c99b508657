"""Replies paired as the client pairs them (issue 13, item 1).

A client takes the lines up to the first final line as one reply and pairs it with its oldest
unanswered command. A server that ends its EHLO reply early leaves the rest in the client's
buffer: the client reads it as the answer to its next command and every later reply one
behind. Each capture is a real client's behaviour from docs/clients.md (Postfix with
PIPELINING, CPython smtplib, Go net/smtp) meeting such a server, plus a client that QUITs
after a 5xx to DATA; the bytes each side sends follow what that side read.
"""
from __future__ import annotations

from generate import BANNER, Capture, Conv, Expect, lines

EHLO_POSTFIX = b"EHLO client.example.org\r\n"
MAIL = b"MAIL FROM:<alice@example.org>\r\n"
RCPT = b"RCPT TO:<bob@example.com>\r\n"
DATA = b"DATA\r\n"
QUIT = b"QUIT\r\n"
OK_MAIL = b"250 2.1.0 Ok\r\n"
OK_RCPT = b"250 2.1.5 Ok\r\n"
GO_AHEAD = b"354 End data with <CR><LF>.<CR><LF>\r\n"
READY = b"220 2.0.0 Ready to start TLS\r\n"

MISPLACED = ("plaintext", "server", "starttls-misplaced", "misplaced")


def postfix_pipelining() -> Capture:
    """Postfix sees PIPELINING (before the premature end), not STARTTLS (after it), and sends
    MAIL, RCPT and DATA in one flight. It reads the stray lines as MAIL's answer, MAIL's 250 as
    RCPT's and RCPT's 250 as DATA's: DATA did not get 354, so Postfix aborts the transaction and
    sends QUIT, which reads the server's 354. The server takes QUIT as message content and
    waits; Postfix closes."""
    c = Conv(cport=40601, close=("fin", "C"))
    c.s(BANNER, tag="banner").c(EHLO_POSTFIX, tag="greeting")
    c.s([lines("250-mx.example.com", "250-PIPELINING", "250 SIZE 10240000"),
         lines("250-STARTTLS", "250-ENHANCEDSTATUSCODES", "250 8BITMIME")],
        tag="ehlo_reply", marks={"premature": b"250 SIZE", "stray": b"250-STARTTLS"})
    c.c(MAIL + RCPT + DATA, tag="mail")
    c.s(OK_MAIL + OK_RCPT + GO_AHEAD, marks={"go_ahead": b"354 "})
    c.c(QUIT, tag="quit")
    return Capture(
        "pairing-postfix-pipelining.pcap",
        "Postfix with PIPELINING; the EHLO reply ends early after 250 SIZE, STARTTLS comes in a stray "
        "second segment. Client pairing: MAIL<-stray lines, RCPT<-MAIL's 250, DATA<-RCPT's 250 (not 354), "
        "so QUIT follows (read by the server as content); no message delivered",
        [(c, Expect(*MISPLACED, findings=[("ehlo-premature-end", "server", "premature"),
                                          ("reply-out-of-step", "server", "stray")]))])


def smtplib_lockstep() -> Capture:
    """CPython smtplib (lower-case commands, one at a time) facing clients.md's C4 reply. It sees
    no extensions; MAIL reads the stray lines, RCPT MAIL's 250, DATA RCPT's 250: ``data()``
    raises SMTPDataError and the ``with`` block's QUIT reads the 354."""
    c = Conv(cport=40602, close=("fin", "C"))
    c.s(BANNER, tag="banner").c(b"ehlo client.example.org\r\n", tag="greeting")
    c.s([lines("250 mx.example.com"), lines("250-STARTTLS", "250 SIZE 1000")], tag="ehlo_reply",
        marks={"premature": b"250 mx", "stray": b"250-STARTTLS"})
    c.c(b"mail FROM:<alice@example.org>\r\n", tag="mail").s(OK_MAIL)
    c.c(b"rcpt TO:<bob@example.com>\r\n").s(OK_RCPT)
    c.c(b"data\r\n", tag="data").s(GO_AHEAD, marks={"go_ahead": b"354 "})
    c.c(b"quit\r\n", tag="quit")
    return Capture(
        "pairing-smtplib.pcap",
        "CPython smtplib (lock-step, lower-case commands) against an EHLO reply that ends on line one "
        "(250 mx / 250-STARTTLS / 250 SIZE 1000, the stray lines in a second segment): DATA reads RCPT's "
        "250, smtplib raises SMTPDataError and QUITs; no message delivered",
        [(c, Expect(*MISPLACED, findings=[("ehlo-premature-end", "server", "premature"),
                                          ("reply-out-of-step", "server", "stray")]))])


def quit_after_data_5xx() -> Capture:
    """Postfix with PIPELINING: the only recipient is refused, DATA is answered 554, and the
    next line is QUIT: a command, never message content."""
    c = Conv(cport=40603)
    c.s(BANNER, tag="banner").c(EHLO_POSTFIX, tag="greeting")
    c.s(lines("250-mx.example.com", "250-PIPELINING", "250-SIZE 10240000", "250 8BITMIME"), tag="ehlo_reply")
    c.c(MAIL + RCPT + DATA, tag="mail")
    c.s(OK_MAIL + b"550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown\r\n"
        + b"554 5.5.1 Error: no valid recipients\r\n", marks={"refused": b"554 "})
    c.c(QUIT, tag="quit").s(b"221 2.0.0 Bye\r\n")
    return Capture(
        "pairing-quit-after-data-5xx.pcap",
        "Postfix pipelines MAIL/RCPT/DATA; RCPT 550, DATA 554; the client's next line is QUIT (a command, "
        "not content), answered 221; no STARTTLS offered, no message delivered",
        [(c, Expect("plaintext", "server", "starttls-not-offered", "absent"))])


def go_starttls_stray() -> Capture:
    """Go net/smtp: the reply ends at `250 STARTTLS` (valid), then two stray lines. ``StartTLS``
    expects 220 and reads `250 8BITMIME`: an error; ``SendMail`` returns it and ``Close`` drops the
    connection without QUIT. The server's 220 came one reply behind."""
    c = Conv(cport=40604, close=("fin", "C"))
    c.s(BANNER, tag="banner").c(b"EHLO localhost\r\n", tag="greeting")
    c.s([lines("250-mx.example.com", "250-PIPELINING", "250 STARTTLS"),
         lines("250-SIZE 10240000", "250 8BITMIME")], tag="ehlo_reply",
        marks={"premature": b"250 STARTTLS", "stray": b"250-SIZE"})
    c.c(b"STARTTLS\r\n", tag="starttls").s(READY, tag="server_220")
    return Capture(
        "pairing-go-starttls-stray.pcap",
        "Go net/smtp: EHLO reply ends at 250 STARTTLS, two stray lines follow in another segment; STARTTLS "
        "reads the stray 250 instead of the 220, Go gives up and closes without QUIT: the server's doing",
        [(c, Expect("aborted", "server", "starttls-refused", "valid", True, 250,
                    findings=[("ehlo-premature-end", "server", "premature"),
                              ("reply-out-of-step", "server", "stray")]))])


def postfix_starttls_stray() -> Capture:
    """Postfix (smtp_tls_security_level = may) reads the stray line as the answer to STARTTLS,
    drops TLS and pipelines the mail in plaintext on the same connection; the server, which
    sent 220, expects a ClientHello, fails on the plaintext and closes."""
    c = Conv(cport=40605, close=("fin", "S"))
    c.s(BANNER, tag="banner").c(EHLO_POSTFIX, tag="greeting")
    c.s([lines("250-mx.example.com", "250-PIPELINING", "250 STARTTLS"),
         lines("250 SIZE 10240000")], tag="ehlo_reply",
        marks={"premature": b"250 STARTTLS", "stray": b"250 SIZE"})
    c.c(b"STARTTLS\r\n", tag="starttls").s(READY, tag="server_220")
    c.c(MAIL + RCPT + DATA, tag="mail")
    return Capture(
        "pairing-postfix-starttls-stray.pcap",
        "Postfix (may): STARTTLS reads the stray 250 SIZE line, so Postfix goes on in plaintext and "
        "pipelines MAIL/RCPT/DATA; the server had answered 220, fails on plaintext where it expects TLS and "
        "closes: the envelope crossed in the clear because of the server",
        [(c, Expect("plaintext", "server", "starttls-refused", "valid", True, 250,
                    findings=[("ehlo-premature-end", "server", "premature"),
                              ("reply-out-of-step", "server", "stray")]))])


def double_greeting() -> Capture:
    """A TCP load balancer greets on its own, then passes the server's greeting through: two
    final 220 lines. Postfix reads the second as the answer to EHLO (2xx, no extensions: no
    STARTTLS, no PIPELINING), the real EHLO reply as MAIL's answer, and so on: DATA reads RCPT's
    250, Postfix QUITs."""
    c = Conv(cport=40606, close=("fin", "C"))
    c.s(b"220 lb.example.net ESMTP ready\r\n", tag="banner")
    # the server's greeting: what the client reads as its EHLO reply
    c.s(BANNER, tag="ehlo_reply", marks={"second": 0})
    c.c(EHLO_POSTFIX, tag="greeting")
    c.s(lines("250-mx.example.com", "250-PIPELINING", "250-STARTTLS", "250 8BITMIME"), tag="server_ehlo")
    c.c(MAIL).s(OK_MAIL).c(RCPT).s(OK_RCPT).c(DATA).s(GO_AHEAD).c(QUIT)
    return Capture(
        "pairing-double-greeting.pcap",
        "a load balancer's own 220 greeting, then the server's 220 in another segment: Postfix reads the "
        "second greeting as the answer to EHLO (no extensions), the server's EHLO reply (with STARTTLS) as "
        "MAIL's; DATA reads RCPT's 250 and Postfix QUITs: STARTTLS offered where the client cannot see it",
        [(c, Expect(*MISPLACED, findings=[("reply-out-of-step", "server", "second")]))])


def scenarios() -> list[Capture]:
    return [postfix_pipelining(), smtplib_lockstep(), quit_after_data_5xx(), go_starttls_stray(),
            postfix_starttls_stray(), double_greeting()]
