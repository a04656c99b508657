"""Replies a hole closes late, for the order of ``explain``'s dialogue.

A server reply that loses its end in a hole is over only when the server's next line shows it:
the session concludes it then, after the client's next command, read meanwhile. ``explain``
must still list the reply where the server sent it: after the command it answers, before the
client's next command. The lost segment is ACKed (the client got it; the capture did not), so
the client goes on as if it had read the whole reply.
"""
from __future__ import annotations

from generate import BANNER, Capture, Conv, Expect, lines, mail_in_clear, tls12_session

EHLO = b"EHLO client.example.org\r\n"
REPLY_HEAD = lines("250-mx.example.com", "250-PIPELINING", "250-SIZE 10240000")
REPLY_END = lines("250-STARTTLS", "250 8BITMIME")


def _opening(cport: int) -> Conv:
    c = Conv(cport=cport)
    c.s(BANNER, tag="banner").c(EHLO, tag="greeting")
    c.s([REPLY_HEAD, REPLY_END], tag="ehlo_reply", lost=[1])
    return c


def end_lost_then_mail() -> Capture:
    """The client goes on in clear with MAIL FROM; the 250 to it is the server's first line
    after the hole."""
    c = mail_in_clear(_opening(40701), first_tag="mail")
    return Capture(
        "hole-closes-reply-mail.pcap",
        "EHLO reply in 2 segments; the second (STARTTLS and the final line) is missing from the capture "
        "but ACKed; the client sends MAIL FROM: the EHLO reply is over only when the 250 to MAIL comes",
        [(c, Expect("incomplete", "unknown", "incomplete", "unknown",
                    findings=[("tcp-gap", "capture", "mail")]))])


def end_lost_then_starttls() -> Capture:
    """The client asks for STARTTLS (it read the lost line); the 220 is the server's first line
    after the hole; TLS 1.2 completes."""
    c = _opening(40702)
    c.c(b"STARTTLS\r\n", tag="starttls").s(b"220 2.0.0 Ready to start TLS\r\n", tag="starttls_reply")
    tls12_session(c, "explain-end-lost", "mx.example.com", "mx.example.com",
                  [("C", EHLO), ("S", REPLY_HEAD + REPLY_END), ("C", b"QUIT\r\n"),
                   ("S", b"221 2.0.0 Bye\r\n")])
    return Capture(
        "hole-closes-reply-starttls.pcap",
        "EHLO reply in 2 segments; the second (STARTTLS and the final line) is missing from the capture "
        "but ACKed; the client sends STARTTLS: the EHLO reply is over only when the 220 comes; TLS 1.2",
        [(c, Expect("tls", "none", "tls-established", "unknown", True, 220,
                    findings=[("tcp-gap", "capture", "starttls")]))])


def scenarios() -> list[Capture]:
    return [end_lost_then_mail(), end_lost_then_starttls()]
