"""A capture clock that steps back in the middle of a conversation (NTP stepping the capturing
host's clock back an hour, a virtual machine's clock set after a pause, two hosts' captures put
one after the other): durations across the step cannot be measured (``pcapsmtp.analysis.clock``).

- ``wallclock-step-starttls-silent.pcap``: hang-starttls-silent.pcap whose clock steps back an hour
  at the client's FIN, 5 s after its unanswered STARTTLS: read as stamped, the client closed
  3595 s *before* it asked, a client that "did not wait" (``no-mail-transaction``). Whether the
  server was given a second to answer is not known: ``incomplete``, a ``clock-step`` finding at
  the FIN (was: nobody to blame, for a server that never answered).
- ``wallclock-step-plaintext.pcap``: a client that skips a valid offer and sends its mail in the
  clear, the clock stepping back an hour at its MAIL FROM: nothing in the verdict is a duration,
  it stands (``client-did-not-request``), with the ``clock-step`` finding.
- ``wallclock-step-fallback.pcap``: STARTTLS refused (454), the client quits; the clock steps back an
  hour at its QUIT; 1 s later its retry skips the offered STARTTLS. Read as stamped, the retry
  began an hour before the failure: no retry (``client-did-not-request``). On the continuous
  timeline it comes after the failure: ``tls-fallback``, the server's (the conversation that
  failed is judged as without the step, the finding aside).
"""
from __future__ import annotations

from generate import QUIT_STEPS, STARTTLS, Capture, Conv, Expect, mail_in_clear, opening

#: how far the capture's clock steps back: an hour, as NTP (or a merge of two hosts' files) does
BACK_MS = 3_600_000
REFUSED = b"454 4.7.0 TLS not available due to local problem\r\n"


def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    add = caps.append

    c = opening(Conv(cport=47901, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls")
    c.fin("C", tag="client_fin", delay_ms=5000 - BACK_MS)
    add(Capture("wallclock-step-starttls-silent.pcap",
                "STARTTLS never answered; 5 s later the client closes, but the capture's clock stepped "
                "back an hour at its FIN: how long the client waited is not known",
                [(c, Expect("incomplete", "unknown", "incomplete", "valid", True, None,
                            [("clock-step", "capture", "label:fin:C")]))]))

    c = opening(Conv(cport=47902))
    c.c(b"MAIL FROM:<alice@example.org>\r\n", tag="mail", delay_ms=40 - BACK_MS)
    c.s(b"250 2.1.0 Ok\r\n").c(b"RCPT TO:<bob@example.com>\r\n").s(b"250 2.1.5 Ok\r\n")
    c.c(b"DATA\r\n").s(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    c.c(b"Subject: t\r\n\r\nhello\r\n.\r\n").s(b"250 2.0.0 Ok: queued\r\n")
    c.extend(QUIT_STEPS)
    add(Capture("wallclock-step-plaintext.pcap",
                "a valid STARTTLS offer skipped, the mail sent in the clear; the capture's clock stepped "
                "back an hour at the MAIL FROM: the verdict measures no duration, it stands",
                [(c, Expect("plaintext", "client", "client-did-not-request", "valid", False, None,
                            [("clock-step", "capture", "mail")]))]))

    c = opening(Conv(cport=47903, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls").s(REFUSED, tag="starttls_reply")
    c.c(b"QUIT\r\n", tag="quit", delay_ms=20 - BACK_MS).s(b"221 2.0.0 Bye\r\n")
    retry = mail_in_clear(opening(Conv(cport=47904, start_offset_ms=1000)))
    add(Capture("wallclock-step-fallback.pcap",
                "STARTTLS refused (454), the client quits, the capture's clock stepping back an hour at "
                "its QUIT; 1 s later the client comes back and skips the offered STARTTLS: still the "
                "retry after the failure, on the capture's continuous timeline",
                [(c, Expect("aborted", "server", "starttls-refused", "valid", True, 454,
                            [("clock-step", "capture", "quit")])),
                 (retry, Expect("plaintext", "server", "tls-fallback", "valid", False, None))]))
    return caps
