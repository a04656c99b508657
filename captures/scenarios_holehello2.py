"""Two readings of holes that commit 39bb5a2 (scenarios_hole_hello.py) made too wide, found by its
review (the twenty-first session):

- a server hole from the start of its stream that the client acknowledged before its first command
  was taken to hold the whole greeting (``_greeting_in_hole``), so a 220 after the EHLO answered
  it. A client caught in Postfix postscreen's pregreet trap does not wait for the greeting's end:
  postscreen sends ``220-`` and waits 6 s for a client that speaks too soon; the client's EHLO
  comes before the final ``220 `` line. A 220 answers only STARTTLS (RFC 3207 4): with none
  pending, a 220 after a hole where the greeting's first lines went is the greeting's last line.
  The same holds for a late start inside the pregreet wait (the sweep's cuts after the ACK of the
  ``220-`` line): the first reply, that 220, is the greeting's last line, not the EHLO's answer.
- the server's TLS after its 220 lost, with the client's bytes after STARTTLS lost too, was read as
  TLS the client may have begun in its hole (``_tls_without_220``), however few bytes that hole
  held. A record carrying a ClientHello takes at least 50 bytes (``_MIN_CLIENT_HELLO_RECORD``): a
  hole of 27, with nothing of the client after it before the server's alert, held plaintext, and
  the client's next command in the clear is plaintext where TLS was due.

Captures (each missing segment's receiver acknowledges it: the holes are declared):

- ``holehello2-pregreet-first-line-lost.pcap``: the greeting's ``220-`` line lost, the client's
  EHLO 100 ms later, the final ``220 `` line 6 s later, the EHLO reply, STARTTLS, 220 and a TLS
  1.2 session: ``tls`` (after 39bb5a2: ``incomplete``, the final greeting line read as the EHLO's
  answer, a spurious reply-out-of-step).
- ``holehello2-short-hole-rcpt-after-alert.pcap``: STARTTLS; the 220 and the client's 27-byte
  ``MAIL FROM`` lost; the server's fatal alert (unexpected_message) and close; the client's
  ``RCPT TO`` in the clear 5 ms later: ``tls-not-started``, the client's (after 39bb5a2:
  ``incomplete``).
"""
from __future__ import annotations

from generate import BANNER, EHLO, EHLO_NO_TLS, EHLO_OK, READY, STARTTLS, Capture, Conv, Expect, alert, tls12_session

QUIT = b"QUIT\r\n"
#: the dialogue in the TLS session (as application data)
ENCRYPTED = [("C", EHLO), ("S", EHLO_NO_TLS), ("C", QUIT), ("S", b"221 2.0.0 Bye\r\n")]
#: postscreen's greeting: its first line, then (after the pregreet wait) its last
GREETING_HEAD = b"220-mx.example.com ESMTP\r\n"
GREETING_TAIL = b"220 mx.example.com ready\r\n"
MAIL = b"MAIL FROM:<a@example.org>\r\n"     # 27 bytes: too few for a ClientHello
RCPT = b"RCPT TO:<b@example.net>\r\n"


def pregreet_first_line_lost(cport: int) -> Conv:
    conv = Conv(cport=cport, close=("fin", "S"))
    conv.s(GREETING_HEAD, tag="banner", lost=[0]).c(EHLO, tag="greeting", delay_ms=100.0)
    conv.s(GREETING_TAIL, tag="banner_tail", delay_ms=6000.0).s(EHLO_OK, tag="ehlo_reply")
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    return tls12_session(conv, f"holehello2 {cport}", "mx.example.com", "mx.example.com", ENCRYPTED)


def short_hole_rcpt_after_alert(cport: int) -> Conv:
    conv = Conv(cport=cport, close=None)
    conv.s(BANNER, tag="banner").c(EHLO, tag="greeting").s(EHLO_OK, tag="ehlo_reply")
    conv.c(STARTTLS, tag="starttls")
    conv.s(READY, tag="starttls_reply", lost=[0])
    conv.c(MAIL, tag="mail", lost=[0])
    conv.s(alert(10), tag="alert")
    conv.fin("S", tag="server_fin", delay_ms=1.0)
    conv.c(RCPT, tag="rcpt", delay_ms=50.0)
    return conv.fin("C", tag="client_fin", delay_ms=1.0)


def scenarios() -> list[Capture]:
    return [
        Capture("holehello2-pregreet-first-line-lost.pcap",
                "Postfix postscreen's pregreet trap with the greeting's 220- line lost (acknowledged): the client's "
                "EHLO before the final 220 line, which is the greeting's end, not the EHLO's answer; STARTTLS, 220, "
                "TLS 1.2: TLS",
                [(pregreet_first_line_lost(48901),
                  Expect("tls", "none", "tls-established", "unknown", True, 220,
                         [("tcp-gap", "capture", "greeting")]))]),
        Capture("holehello2-short-hole-rcpt-after-alert.pcap",
                "STARTTLS; the 220 and the client's 27-byte MAIL FROM lost (each acknowledged), too few bytes for a "
                "ClientHello; the server's alert and close; the client's RCPT TO in the clear: it never started TLS",
                [(short_hole_rcpt_after_alert(48902),
                  Expect("aborted", "client", "tls-not-started", "valid", True, None,
                         [("tcp-gap", "capture", "lost_segment:S"), ("tcp-gap", "capture", "alert"),
                          ("plaintext-after-starttls", "client", "rcpt")]))]),
    ]
