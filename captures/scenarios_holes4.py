"""The session's reading after holes, leftovers of the twenty-second session's reviews
(pcapsmtp/smtp/session.py, pcapsmtp/analysis/verdict.py):

- Server bytes that begin with 0x16 (a TLS handshake record's first byte) after the 220 to
  STARTTLS and the client's ClientHello were lost: the session took any of them for the server's
  TLS, and the client's QUIT held after its hole came out as a command injected after STARTTLS
  ("before any reply") when they were no record at all. A server's first record after STARTTLS is a
  handshake message in the clear or an alert: bytes of a bad version, an impossible length or a
  message of no handshake type are no TLS, and the client's bytes that came after a hole of the
  server's that may hold its answer (the client acknowledged it before sending them) are not
  proven sent before any reply.

- A greeting that refused the session (421 or 554, RFC 5321 3.1 and 4.2), then, with no command
  served, the server's timeout 421 crossed by the client's STARTTLS: the verdict read the second
  421 as the answer the client got to STARTTLS (``starttls-refused``, case ``server-closed``, or
  past 5 minutes ``no-mail-transaction``), as after a 220 greeting. The greeting already refused
  the session: ``greeting-refused`` at the greeting, as a lone 421 or 554 greeting reads.

- Postfix answers HELO or EHLO with 554 under ``smtpd_delay_reject = no`` ("Client host
  rejected" at the hello), against the session's premise that 554 answers only the opening (RFC
  5321 4.3.2): with the whole greeting in the capture (no hole before the 554), or a late start
  after it, that 554 stays the hello's answer, ``ehlo-rejected``. With the greeting's start lost in
  a hole the client acknowledged before its hello, such a 554 and postscreen's pregreet 554 after a
  lost ``220-`` line cannot be told apart (the capture's sweeps showed it: a whole ``220`` greeting
  lost before the EHLO's 554 read as the pregreet), so the verdict stays ``incomplete`` there
  (holes3-pregreet-554-first-line-lost.pcap).

Captures (each missing segment's receiver acknowledges it: the holes are declared):

- ``holes4-quit-before-0x16-bad-version-220-hello-lost.pcap``,
  ``holes4-quit-before-0x16-bad-length-220-hello-lost.pcap``,
  ``holes4-quit-before-0x16-bad-type-220-hello-lost.pcap``: holes3-quit-before-answer-220-hello-lost
  with the server's answer replaced by 40 bytes that begin with 0x16 but are no TLS record (record
  version 3.9; a length over 2^14 + 2048; a valid header whose message type is 99): ``incomplete``
  (the answer to STARTTLS is not in the capture), no ``starttls-command-injection`` (the last was
  ``tls-not-started``, the client's: "the server answered in TLS").
- ``holes4-greeting-421-then-421-150-s-crosses-starttls.pcap``: a 421 greeting, the server's timeout
  421 150 s later, the client's STARTTLS crossing it: ``greeting-refused`` (was ``starttls-refused``,
  case ``server-closed``).
- ``holes4-greeting-554-then-421-400-s-crosses-starttls.pcap``: the same with a 554 greeting and the
  421 400 s later: ``greeting-refused`` (was ``no-mail-transaction``).
- ``holes4-greeting-554-starttls-554-quit-221.pcap``: a 554 greeting, STARTTLS at once answered
  554, the client's QUIT and the server's 221 (what Postfix's client does after a refusal):
  ``greeting-refused``; the 221 answers QUIT and accepts nothing (it read ``starttls-refused``).
- ``holes4-hello-refused-554-delay-reject.pcap``: the whole greeting, the client's EHLO and then its
  HELO refused with Postfix's 554 under ``smtpd_delay_reject = no``, QUIT and 221: ``ehlo-rejected``
  (each 554 the hello's answer, no greeting line).
- ``holes4-injection-then-0x16-garbage-220-lost.pcap`` (control): STARTTLS and QUIT in one segment,
  the 220 lost, then the same bad-version bytes: the QUIT was sent before any reply, a command
  injected after STARTTLS as before.
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, client_hello, det, opening

QUIT = b"QUIT\r\n"
TIMEOUT = b"421 4.4.2 mx.example timeout exceeded\r\n"
REFUSED_421 = b"421 4.3.2 mx.example.com Service not available, closing transmission channel\r\n"
REFUSED_554 = b"554 5.7.1 mx.example.com No SMTP service here\r\n"
#: Postfix's answer to a hello under smtpd_delay_reject = no, from a client its restrictions refuse
HELO_REFUSED = b"554 5.7.1 <client.example.org[192.0.2.10]>: Client host rejected: Access denied\r\n"

#: 40 bytes that begin like a handshake record and are none (each fails one test of a record)
NOT_TLS = {
    "bad-version": b"\x16\x03\x09\x00\x23" + det("holes4 bad version", 35),
    "bad-length": b"\x16\x03\x03\xff\xf0" + det("holes4 bad length", 35),
    "bad-type": b"\x16\x03\x03\x00\x23\x63" + det("holes4 bad type", 34),
}


def quit_before_garbage(cport: int, kind: str) -> Conv:
    """holes3's quit_before_answer: the 220 and the ClientHello lost (each acknowledged), the
    client's QUIT 5 ms later, then the server's ``NOT_TLS[kind]`` 40 ms after it, the client's
    close 30 s later."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply", lost=[0])
    conv.c(client_hello(f"holes4 {cport}", "mx.example.com"), tag="client_hello", lost=[0])
    conv.c(QUIT, tag="quit", delay_ms=5.0)
    conv.s(NOT_TLS[kind], tag="answer", delay_ms=40.0)
    return conv.fin("C", tag="client_fin", delay_ms=30000.0)


def injection_then_garbage(cport: int) -> Conv:
    """STARTTLS and QUIT in one segment, the 220 lost (acknowledged), the bad-version bytes."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS + QUIT, tag="starttls", marks={"quit": len(STARTTLS)})
    conv.s(READY, tag="starttls_reply", lost=[0])
    conv.s(NOT_TLS["bad-version"], tag="answer", delay_ms=40.0)
    return conv.fin("C", tag="client_fin", delay_ms=30000.0)


def refused_then_421(cport: int, greeting: bytes, idle_s: float) -> Conv:
    """hunt11's greeting_then_421 with a greeting that refused the session: the server's timeout 421
    ``idle_s`` after it, the client's STARTTLS 0.1 ms after the 421 (sent before it arrived), the
    server's close 1 ms later, the client's 1 ms after that."""
    conv = Conv(cport=cport, close=None)
    conv.s(greeting, tag="banner")
    conv.s(TIMEOUT, tag="timeout", delay_ms=idle_s * 1000.0, acked=False)
    conv.c(STARTTLS, tag="starttls", delay_ms=0.1)
    conv.fin("S", tag="server_fin", delay_ms=1.0)
    conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def hello_refused(cport: int) -> Conv:
    """The greeting, the client's EHLO refused with 554 (Postfix, smtpd_delay_reject = no), its HELO
    refused the same, QUIT and 221."""
    conv = Conv(cport=cport, close=("fin", "S"))
    conv.s(b"220 mx.example.com ESMTP Postfix\r\n", tag="banner").c(b"EHLO client.example.org\r\n", tag="greeting")
    conv.s(HELO_REFUSED, tag="ehlo_reply", delay_ms=2.0).c(b"HELO client.example.org\r\n", tag="helo")
    conv.s(HELO_REFUSED, tag="helo_reply", delay_ms=2.0).c(QUIT, tag="quit")
    return conv.s(b"221 2.0.0 Bye\r\n")


def refused_starttls_quit(cport: int) -> Conv:
    """A 554 greeting, the client's STARTTLS at once, answered 554 (a server that refuses every
    command after a refusing greeting, RFC 5321 3.1), the client's QUIT, the server's 221 and close:
    the 221 answers the QUIT, it accepts nothing."""
    conv = Conv(cport=cport, close=None)
    conv.s(REFUSED_554, tag="banner")
    conv.c(STARTTLS, tag="starttls", delay_ms=2.0)
    conv.s(b"554 5.5.1 Error: no SMTP service here\r\n", tag="starttls_reply", delay_ms=1.0)
    conv.c(QUIT, tag="quit", delay_ms=1.0)
    conv.s(b"221 2.0.0 Bye\r\n", tag="bye", delay_ms=1.0)
    conv.fin("S", tag="server_fin", delay_ms=1.0)
    conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def scenarios() -> list[Capture]:
    gaps = [("tcp-gap", "capture", "lost_segment:S"), ("tcp-gap", "capture", "quit")]
    unsure = Expect("incomplete", "unknown", "incomplete", "valid", True, None, gaps)
    caps = [
        Capture(f"holes4-quit-before-0x16-{kind}-220-hello-lost.pcap",
                f"STARTTLS; the 220 and the ClientHello lost (each acknowledged); the client's QUIT in the clear, then "
                f"40 bytes of the server that begin with 0x16 but are no TLS record ({what}): no TLS, and the QUIT, "
                "sent after a hole that may hold the 220, is no command injected before any reply",
                [(quit_before_garbage(49201 + k, kind), unsure)])
        for k, (kind, what) in enumerate((("bad-version", "record version 3.9"),
                                          ("bad-length", "a length over 2^14 + 2048"),
                                          ("bad-type", "a handshake record of message type 99")))
    ]
    caps.append(Capture(
        "holes4-injection-then-0x16-garbage-220-lost.pcap",
        "control: STARTTLS and QUIT in one segment, the 220 lost (acknowledged), then the server's bytes that begin "
        "with 0x16 but are no TLS record: the QUIT was sent before any reply, a command injected after STARTTLS",
        [(injection_then_garbage(49204),
          Expect("incomplete", "unknown", "incomplete", "valid", True, None,
                 [("tcp-gap", "capture", "answer"), ("starttls-command-injection", "client", "quit")]))]))
    caps += [
        Capture("holes4-greeting-421-then-421-150-s-crosses-starttls.pcap",
                "a 421 greeting, the server's timeout 421 150 s later, the client's STARTTLS crossing it: the greeting "
                "refused the session, as a lone 421 greeting does",
                [(refused_then_421(49211, REFUSED_421, 150.0),
                  Expect("aborted", "server", "greeting-refused", "unknown", True, 421))]),
        Capture("holes4-greeting-554-then-421-400-s-crosses-starttls.pcap",
                "a 554 greeting, the server's timeout 421 400 s later, the client's STARTTLS crossing it: the greeting "
                "refused the session, as a lone 554 greeting does",
                [(refused_then_421(49212, REFUSED_554, 400.0),
                  Expect("aborted", "server", "greeting-refused", "unknown", True, 421))]),
        Capture("holes4-greeting-554-starttls-554-quit-221.pcap",
                "a 554 greeting, the client's STARTTLS refused with 554, its QUIT answered 221: the greeting refused "
                "the session; the 221 to QUIT accepts nothing",
                [(refused_starttls_quit(49213),
                  Expect("aborted", "server", "greeting-refused", "unknown", True, 554))]),
        Capture("holes4-hello-refused-554-delay-reject.pcap",
                "the whole greeting, the client's EHLO and then its HELO refused with 554 (Postfix, smtpd_delay_reject "
                "= no), QUIT and 221: each 554 the hello's answer, no greeting line",
                [(hello_refused(49222), Expect("aborted", "server", "ehlo-rejected", "unknown"))]),
    ]
    return caps
