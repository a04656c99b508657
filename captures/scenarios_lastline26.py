"""An EHLO reply whose last line has no SP after its code (``250`` alone, ``250X``), read by the
client's next step (the twenty-sixth session, ``analysis/verdict.py`` ``_bare_end_waited``; the
captures of the twenty-fifth session's hunt are ``hunt25-ehlo-last-line-*``, captures/scenarios_hunt25.py).

The session ends the reply at such a line (RFC 5321 4.2 lets a reply line end so) and the server
gets an ``ehlo-bad-keyword`` finding for it, but an EHLO reply's last line is ``"250" SP ehlo-line``
(RFC 5321 4.1.1.1): a client that follows that grammar reads on for the reply's end (swaks until its
timeout, then HELO; Go until its read times out, then QUIT or its close; msmtp fails at once). When
the client's next step came a second or more after that line, nothing of the server between, the
client did not take the line for the end and the server's line caused what followed:
``ehlo-rejected``, the server's, case ``no-answer``, the evidence frame the line (``plaintext`` when
the client falls back to HELO and sends its mail in the clear). They read ``no-mail-transaction``
(``none``), or ``client-did-not-request`` for swaks's HELO:

- ``lastline26-ehlo-last-line-code-alone-quit.pcap``: ``250`` as the last line; 15 s later QUIT,
  221 and the server's close: ``aborted``, the server's.
- ``lastline26-ehlo-last-line-code-and-byte-close.pcap``: ``250X``; 10 s later the client's close
  (FIN) without QUIT: ``aborted``, the server's.
- ``lastline26-ehlo-last-line-code-alone-rst.pcap``: ``250``; 5 s later the client's reset:
  ``aborted``, the server's.

The controls, a client that acted sooner than a second after the line (it took the line for the
end, as curl does after ``250`` with CRLF and smtplib after either), read as before:

- ``lastline26-ehlo-last-line-code-alone-quit-at-once.pcap``: QUIT 5 ms after the line:
  ``no-mail-transaction``, ``none``.
- ``lastline26-ehlo-last-line-code-alone-helo-at-once.pcap``: HELO 300 ms after the line, the mail
  in the clear: ``client-did-not-request``, the client's (the offer is ``valid``).
- ``lastline26-ehlo-last-line-code-alone-slow-starttls.pcap``: STARTTLS 3 s after the line, TLS and
  the mail inside: ``tls`` (STARTTLS shows the client read the list, so ended the reply, however
  long it took).
"""
from __future__ import annotations

from generate import (
    EHLO, EHLO_NO_TLS, MAIL_STEPS, QUIT_STEPS, READY, STARTTLS, Capture, Conv, Expect, mail_in_clear, opening,
    tls12_session,
)
from scenarios_hunt25 import BAD_LINE, CODE_ALONE, CODE_AND_BYTE, HELO, HELO_REPLY

QUIT = b"QUIT\r\n"
BYE = b"221 2.0.0 Bye\r\n"


def _quit(cport: int, reply: bytes, delay_ms: float) -> Conv:
    c = opening(Conv(cport=cport), reply)
    return c.c(QUIT, tag="quit", delay_ms=delay_ms).s(BYE)


def _helo(cport: int, reply: bytes, delay_ms: float) -> Conv:
    c = opening(Conv(cport=cport), reply)
    c.c(HELO, tag="helo", delay_ms=delay_ms).s(HELO_REPLY)
    return mail_in_clear(c, first_tag="mail")


def scenarios() -> list[Capture]:
    waited = Expect("aborted", "server", "ehlo-rejected", "valid", findings=BAD_LINE)
    close = opening(Conv(cport=49651, close=None), CODE_AND_BYTE).fin("C", tag="close", delay_ms=10_000)
    close.fin("S")
    rst = opening(Conv(cport=49652, close=None), CODE_ALONE).rst("C", delay_ms=5_000)
    slow = opening(Conv(cport=49655), CODE_ALONE)
    slow.c(STARTTLS, tag="starttls", delay_ms=3_000).s(READY, tag="starttls_reply")
    slow = tls12_session(slow, "lastline26 slow starttls", "mx.example.com", "mx.example.com",
                         [("C", EHLO), ("S", EHLO_NO_TLS), *MAIL_STEPS, *QUIT_STEPS])
    return [
        Capture("lastline26-ehlo-last-line-code-alone-quit.pcap",
                "EHLO reply ending in a line '250' (the code alone); 15 s later QUIT (Go after its read "
                "timeout), 221 and the server's close: the server's line",
                [(_quit(49650, CODE_ALONE, 15_000), waited)]),
        Capture("lastline26-ehlo-last-line-code-and-byte-close.pcap",
                "EHLO reply ending in a line '250X'; 10 s later the client's close without QUIT: the server's "
                "line",
                [(close, waited)]),
        Capture("lastline26-ehlo-last-line-code-alone-rst.pcap",
                "EHLO reply ending in a line '250'; 5 s later the client's reset: the server's line",
                [(rst, waited)]),
        Capture("lastline26-ehlo-last-line-code-alone-quit-at-once.pcap",
                "EHLO reply ending in a line '250'; QUIT 5 ms later (the client took the line for the end): "
                "no mail transaction, as before",
                [(_quit(49653, CODE_ALONE, 5), Expect("aborted", "none", "no-mail-transaction", "valid",
                                                      findings=BAD_LINE))]),
        Capture("lastline26-ehlo-last-line-code-alone-helo-at-once.pcap",
                "EHLO reply ending in a line '250'; HELO 300 ms later and the mail in the clear: the client "
                "skipped a valid offer, as before",
                [(_helo(49654, CODE_ALONE, 300), Expect("plaintext", "client", "client-did-not-request", "valid",
                                                        findings=BAD_LINE))]),
        Capture("lastline26-ehlo-last-line-code-alone-slow-starttls.pcap",
                "EHLO reply ending in a line '250'; STARTTLS 3 s later, TLS 1.2 and the mail inside: the "
                "client read the list",
                [(slow,
                  Expect("tls", "none", "tls-established", "valid", True, 220, findings=BAD_LINE))]),
    ]
