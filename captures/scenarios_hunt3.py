"""Misbehaving servers and clients around STARTTLS that no capture pinned before (the seventeenth
session's hunt): each one a verdict that was wrong.

- ``pathhole-client-flight-head-lost.pcap``: ``pathhole-client-flight-tls12.pcap`` (a TLS 1.2
  client's certificate flight that a path MTU black hole drops; the client resends it and gives
  up 30 s later) with the flight's first segment missing from the capture too. The client's
  close is read only after the hole, which nobody acknowledged and which is declared when the
  flow closes, so it was read after the server's close that came later: the server was blamed
  for closing "after the ServerHello". The server's acknowledgements show it never received the
  flight, whatever the hole held: the path's, as in the whole capture (``middlebox``,
  ``request-not-received`` at the ChangeCipherSpec the capture does hold).
- ``hunt3-starttls-250-then-tls.pcap``: STARTTLS answered ``250`` instead of ``220``; the client
  (Postfix, Exim and Mutt start TLS on any 2xx) sends its ClientHello and TLS 1.2 completes, the
  mail inside. ``tls`` with a ``starttls-reply-not-220`` finding (was: ``starttls-refused``,
  "then it closed").
- ``hunt3-starttls-250-hello-answered-plaintext.pcap``: the same 250, the client's ClientHello,
  and the server answers it in plaintext (a server that answers every command 250 and speaks no
  TLS): the TLS rules judge it, the server's (``tls-handshake-failed``).
- ``hunt3-starttls-250-client-quits.pcap``: the same 250, and the client reads it as a refusal
  (CPython's smtplib raises, the program sends QUIT): ``starttls-refused``, the server's, with
  the finding.
- ``hunt3-ehlo-silent-then-helo.pcap`` and ``hunt3-ehlo-silent-then-helo-quit.pcap``: EHLO never
  answered; after its timeout the client sends HELO on the same connection (PHPMailer's
  ``hello()`` does: its read gives up after ``Timelimit``, 300 s by default, and it falls back to
  HELO; Postfix, Exim and Sendmail close instead), the server answers the HELO with one line,
  then mail in the clear (or QUIT). The 250 answers the HELO, the EHLO got no answer: the
  server's ``ehlo-rejected``, case ``no-answer`` (was: the 250 read as the EHLO reply,
  ``starttls-not-offered``).
"""
from __future__ import annotations

from generate import (
    EHLO_OK, MAIL_STEPS, QUIT_STEPS, READY, STARTTLS, Capture, Conv, Expect, alert, client_hello, mail_in_clear,
    opening,
    server_flight_tls12, tls12_session,
)
from scenarios_hang import EHLO_SILENT, WAIT_MS, ehlo_sent
from scenarios_hunt import CCS
from scenarios_hunt2 import client_certificate_flight

#: a 2xx answer to STARTTLS that is not 220 (RFC 3207 4)
GO_AHEAD_250 = b"250 2.0.0 Ready to start TLS\r\n"
HELO = b"HELO client.example.org\r\n"
HELO_REPLY = b"250 mx.example.com\r\n"


def client_flight_head_lost() -> Capture:
    label = "hunt3 blackhole"
    c = opening(Conv(cport=46301, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello(label, "mx.example.com"), tag="client_hello")
    c.s(server_flight_tls12(label, "mx.example.com")[0], tag="server_hello")
    flight = client_certificate_flight(label)
    # the flight as the path MTU cuts it: 1460 bytes, then the rest (with the ChangeCipherSpec);
    # the first is missing from the capture as well, every copy of it
    c.c([flight[:1460], flight[1460:]], tag="client_flight", lost=[0],
        marks={"after_hole": 1460, "client_ccs": CCS}, resend_ms=(1000, 3000, 7000))
    c.fin("C", delay_ms=30000)
    return Capture(
        "pathhole-client-flight-head-lost.pcap",
        "pathhole-client-flight-tls12 with the flight's first segment (and its resent copies) missing from the "
        "capture: the client's close is read after the hole, declared when the flow closes",
        [(c, Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                    findings=[("request-not-received", "middlebox", "client_ccs"),
                              ("tcp-gap", "capture", "after_hole")]))])


def starttls_250(how: str) -> Capture:
    """STARTTLS answered 250; ``how`` the client goes on: ``tls`` (a ClientHello, TLS 1.2, the
    mail inside), ``plaintext-answer`` (a ClientHello the server answers in plaintext, then the
    client's close), ``quit`` (QUIT: a client that wants 220) or ``alert`` (a TLS alert record
    instead of a ClientHello, then its close)."""
    port = {"tls": 46302, "plaintext-answer": 46303, "quit": 46304, "alert": 46307}[how]
    close = ("fin", "S") if how not in ("plaintext-answer", "alert") else ("fin", "C")
    c = opening(Conv(cport=port, close=close))
    c.c(STARTTLS, tag="starttls").s(GO_AHEAD_250, tag="starttls_reply")
    not_220 = ("starttls-reply-not-220", "server", "starttls_reply")
    if how == "tls":
        tls12_session(c, "hunt3 250", "mx.example.com", "mx.example.com",
                      [("C", b"EHLO client.example.org\r\n"), ("S", EHLO_OK)] + MAIL_STEPS + QUIT_STEPS)
        return Capture("hunt3-starttls-250-then-tls.pcap",
                       "valid offer; STARTTLS answered 250 (RFC 3207 4 gives 220); the client starts TLS all "
                       "the same, TLS 1.2 completes with the mail inside",
                       [(c, Expect("tls", "none", "tls-established", "valid", True, 250, findings=[not_220]))])
    if how == "plaintext-answer":
        c.c(client_hello("hunt3 250 plain", "mx.example.com"), tag="client_hello")
        c.s(b"500 5.5.2 Error: command not recognized\r\n", tag="plaintext")
        c.fin("C", delay_ms=5.0)
        return Capture("hunt3-starttls-250-hello-answered-plaintext.pcap",
                       "valid offer; STARTTLS answered 250; the client's ClientHello, answered in plaintext "
                       "(a server that answers every command 250 and speaks no TLS); the client closes",
                       [(c, Expect("aborted", "server", "tls-handshake-failed", "valid", True, 250,
                                   findings=[not_220]))])
    if how == "alert":
        # no hole anywhere: the client's TLS is no ClientHello, so the session starts no TLS;
        # nothing says bytes were lost
        c.c(alert(40), tag="alert")
        c.fin("C", delay_ms=5.0)
        return Capture("hunt3-starttls-250-then-alert.pcap",
                       "valid offer; STARTTLS answered 250; the client answers with a fatal TLS alert record "
                       "(handshake_failure) instead of a ClientHello and closes",
                       [(c, Expect("aborted", "server", "starttls-refused", "valid", True, 250, findings=[not_220]))])
    c.extend(QUIT_STEPS)
    return Capture("hunt3-starttls-250-client-quits.pcap",
                   "valid offer; STARTTLS answered 250; the client wants 220 (CPython's smtplib raises) and "
                   "sends QUIT",
                   [(c, Expect("aborted", "server", "starttls-refused", "valid", True, 250, findings=[not_220]))])


def ehlo_silent_then_helo(mail: bool) -> Capture:
    c = ehlo_sent(46305 if mail else 46306, ("fin", "S"))
    c.c(HELO, tag="helo", delay_ms=WAIT_MS).s(HELO_REPLY, tag="helo_reply")
    if mail:
        mail_in_clear(c)
    else:
        c.extend(QUIT_STEPS)
    name = "hunt3-ehlo-silent-then-helo" + ("" if mail else "-quit") + ".pcap"
    what = "mail in the clear" if mail else "QUIT"
    expect = (Expect("plaintext", "server", "ehlo-rejected", "unknown", False, None, EHLO_SILENT.findings)
              if mail else EHLO_SILENT)
    return Capture(name,
                   f"banner, EHLO, no answer; {WAIT_MS / 1000:.0f} s later the client falls back to HELO, answered "
                   f"with one line 250; {what}",
                   [(c, expect)])


def scenarios() -> list[Capture]:
    return [client_flight_head_lost(), starttls_250("tls"), starttls_250("plaintext-answer"), starttls_250("quit"),
            starttls_250("alert"), ehlo_silent_then_helo(True), ehlo_silent_then_helo(False)]
