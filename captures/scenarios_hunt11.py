"""A client that idles after the EHLO reply, whose STARTTLS then crosses the server's command
timeout 421 (the twenty-second session's second hunt).

RFC 5321 4.5.3.2.7: a server SHOULD wait at least 5 minutes for the next command before it gives
up (Postfix's smtpd_timeout and Exim's default are 300 s). Its 421 "timeout exceeded" that the
client's STARTTLS crossed read as a stray line of the EHLO reply (case ``stray-answer``, the
server's: "the replies are one behind"), though it is a reply of its own (RFC 5321 3.8) and the
client had idled. Now the client's idle decides: sooner than those 5 minutes the server did not
wait as long as it should (``server-closed``, as for the 421 of a server shutting down,
captures/scenarios_hunt10.py), 5 minutes or more it timed out as allowed and the conversation reads
as the same capture without STARTTLS (``no-mail-transaction``):

- ``hunt11-idle-30-s-421-crosses-starttls.pcap``: the 421 30 s after the EHLO reply, the client's
  STARTTLS 0.1 ms after it (crossing it), the server's close 1 ms later: the server's
  (``server-closed``). ``...-299-s-...`` the same one second short of 5 minutes.
- ``hunt11-idle-300-s-421-crosses-starttls.pcap``: 300 s: the server timed out as allowed, the
  client idled (``no-mail-transaction``); ``...-600-s-...`` the same after 10 minutes.
- ``hunt11-idle-300-s-421-no-starttls.pcap``: the control, no STARTTLS: the client sent nothing,
  the 421 and the close end it (``no-mail-transaction``).

A client's QUIT in the clear 5 ms after the server's whole TLS 1.2 answer, which the server answers
in the clear (221) before its close: the client gave up on TLS at once (the client's, as
captures/scenarios_hunt10.py), and the detail named only the server's close, "answering those
bytes, which are no TLS record", not its 221 (it read them as SMTP):

- ``hunt11-quit-at-once-server-221-then-fin.pcap``.
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, client_hello, opening
from scenarios_hunt6 import _answer

TIMEOUT = b"421 4.4.2 mx.example timeout exceeded\r\n"


def idle_421(cport: int, idle_s: float, *, starttls: bool = True, noop_s: float | None = None) -> Conv:
    """The EHLO reply offering STARTTLS (then, with ``noop_s``, the client's NOOP that long after
    it and its 250 1 ms later, which starts the server's wait again), the server's command timeout
    421 ``idle_s`` after its last reply, the client's STARTTLS 0.1 ms after the 421 (sent before it
    arrived; none when not ``starttls``), the server's close 1 ms later, the client's 1 ms after
    that."""
    conv = opening(Conv(cport=cport, close=None))
    if noop_s is not None:
        conv.c(b"NOOP\r\n", tag="noop", delay_ms=noop_s * 1000.0).s(b"250 2.0.0 Ok\r\n", tag="noop_reply",
                                                                     delay_ms=1.0)
    conv.s(TIMEOUT, tag="timeout", delay_ms=idle_s * 1000.0, acked=False)
    if starttls:
        conv.c(STARTTLS, tag="starttls", delay_ms=0.1)
    conv.fin("S", tag="server_fin", delay_ms=1.0)
    conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def greeting_then_421(cport: int, idle_s: float) -> Conv:
    """The server's greeting, no EHLO, the server's command timeout 421 ``idle_s`` after the
    greeting, the client's STARTTLS 0.1 ms after it, the server's close 1 ms later, the client's 1 ms
    after that."""
    conv = Conv(cport=cport, close=None)
    conv.s(b"220 mx.example.com ESMTP\r\n", tag="banner")
    conv.s(TIMEOUT, tag="timeout", delay_ms=idle_s * 1000.0, acked=False)
    conv.c(STARTTLS, tag="starttls", delay_ms=0.1)
    conv.fin("S", tag="server_fin", delay_ms=1.0)
    conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def quit_answered_221(cport: int) -> Conv:
    """STARTTLS, 220, the client's TLS 1.2 ClientHello, the server's whole answer; the client's QUIT
    in the clear 5 ms after it, the server's 221 1 ms after the QUIT, its close 0.1 ms later, the
    client's close 1 ms after that."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt11 {cport}", "mx.example.com", tls13=False), tag="client_hello")
    conv.s(_answer(cport, "tls12"), tag="flight")
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=5.0)
    conv.s(b"221 2.0.0 Bye\r\n", tag="bye", delay_ms=1.0)
    conv.fin("S", tag="server_fin", delay_ms=0.1)
    conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def scenarios() -> list[Capture]:
    impatient = Expect("aborted", "server", "starttls-refused", "valid", True, 421,
                       [("server-closed", "server", "label:fin:S")])
    idled = Expect("aborted", "none", "no-mail-transaction", "valid", True, 421)
    return [
        Capture("hunt11-idle-30-s-421-crosses-starttls.pcap",
                "the server's timeout 421 30 s after its EHLO reply, the client's STARTTLS crossing it, the server's "
                "close 1 ms later: the server did not wait the 5 minutes RFC 5321 4.5.3.2.7 asks (server-closed)",
                [(idle_421(49121, 30.0), impatient)]),
        Capture("hunt11-idle-299-s-421-crosses-starttls.pcap",
                "as hunt11-idle-30-s-421-crosses-starttls.pcap, 299 s after the EHLO reply: the server's "
                "(server-closed)",
                [(idle_421(49122, 299.0), impatient)]),
        Capture("hunt11-idle-299-97-s-421-crosses-starttls.pcap",
                "as hunt11-idle-30-s-421-crosses-starttls.pcap, 299.97 s after the EHLO reply: the server's "
                "(server-closed), the wait said rounded down (299.9 s, not 300.0 s 'sooner than the 5 minutes')",
                [(idle_421(49129, 299.97), impatient)]),
        Capture("hunt11-idle-300-s-421-crosses-starttls.pcap",
                "as hunt11-idle-30-s-421-crosses-starttls.pcap, 300 s after the EHLO reply: the server timed out as "
                "allowed, the client idled (no-mail-transaction)",
                [(idle_421(49123, 300.0), idled)]),
        Capture("hunt11-idle-600-s-421-crosses-starttls.pcap",
                "as hunt11-idle-300-s-421-crosses-starttls.pcap, 600 s after the EHLO reply (no-mail-transaction)",
                [(idle_421(49124, 600.0), idled)]),
        Capture("hunt11-idle-300-s-421-no-starttls.pcap",
                "the control: the timeout 421 300 s after the EHLO reply, no STARTTLS, the server's close 1 ms "
                "later (no-mail-transaction)",
                [(idle_421(49125, 300.0, starttls=False), Expect("aborted", "none", "no-mail-transaction", "valid"))]),
        Capture("hunt11-noop-200-s-idle-150-s-421-crosses-starttls.pcap",
                "the client's NOOP 200 s after the EHLO reply, answered; the server's timeout 421 150 s after that "
                "250, the client's STARTTLS crossing it: the wait counts from the server's last reply, so the server "
                "did not wait the 5 minutes (server-closed), though 350 s passed since the EHLO reply",
                [(idle_421(49127, 150.0, noop_s=200.0), impatient)]),
        Capture("hunt11-noop-10-s-idle-301-s-421-crosses-starttls.pcap",
                "the client's NOOP 10 s after the EHLO reply, answered; the timeout 421 301 s after that 250, "
                "STARTTLS crossing it: the server timed out as allowed (no-mail-transaction), the wait named from "
                "the reply to NOOP",
                [(idle_421(49128, 301.0, noop_s=10.0), idled)]),
        Capture("hunt11-greeting-then-421-150-s-crosses-starttls.pcap",
                "the greeting, no EHLO, the timeout 421 150 s after it, STARTTLS crossing it: the server's "
                "(server-closed), the wait named from the greeting",
                [(greeting_then_421(49130, 150.0),
                  Expect("aborted", "server", "starttls-refused", "unknown", True, 421,
                         [("server-closed", "server", "label:fin:S")]))]),
        Capture("hunt11-quit-at-once-server-221-then-fin.pcap",
                "TLS 1.2, the server's whole answer, QUIT in the clear 5 ms after it, the server's 221 1 ms after "
                "the QUIT and its close: the client gave up on TLS at once, the client's",
                [(quit_answered_221(49126),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220))]),
    ]
