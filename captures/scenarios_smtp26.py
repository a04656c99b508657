"""Two readings of the SMTP session and the verdict (the twenty-sixth session, ``smtp/session.py``
and ``analysis/verdict.py``; the cases are the twenty-fifth session's hunt, captures/scenarios_hunt25.py,
tests/realclients/test_hunt25_real.py).

A server that sends TLS records after its 220 to STARTTLS before any byte of the client (its
handshake flight, ServerHello to ServerHelloDone, written with the 220: a server or proxy that
starts its TLS at once). A TLS server speaks only after the ClientHello, so those records answer
nothing the client sent. Observed: CPython smtplib's line reader takes them into its buffer with
the 220 and drops them, sends its ClientHello and waits for an answer until its timeout; curl reads
them as a reply pipelined after the 220 ("Weird server reply") and closes. The session reports them
as response injection (the server's bytes after its 220 before any byte of the client, as its
plaintext there) and the verdict blames the server, the evidence frame the first record. They read
the client's: the flight taken for the answer to the ClientHello ("the client closed the connection
after the ServerHello"), or "the client closed the connection after the 220 without starting TLS":

- ``smtp26-flight-with-220-hello-then-close.pcap``: the flight in the 220's segment, the client's
  ClientHello after it, its close 5 s later (smtplib).
- ``smtp26-flight-with-220-close.pcap``: the flight in the 220's segment, the client's close at
  once, no ClientHello (curl).
- ``smtp26-flight-after-220-client-alert.pcap``: the flight in a segment of its own 2 ms after
  the 220, the client's ClientHello, then its fatal decrypt_error (the ServerKeyExchange was signed
  over another ClientHello's random) and its close: the server's all the same, the client's alert a
  finding.
- ``smtp26-flight-with-220-forged-reset.pcap`` (the review's case): the flight in the 220's segment,
  the client's ClientHello, then a reset with the server's address but TTL 128 (the server's own
  segments carry 52): a box on the path ended it, ``middlebox``, case ``reset-forged`` (the early
  flight's rule had read "the server reset the connection", the server's, and lost the finding),
  the response injection still a finding of the server.
- ``smtp26-flight-with-220-then-answer-client-alert.pcap`` (the review's case): the flight in the
  220's segment, the client's ClientHello, the server's flight again (an answer to it, behind the
  bytes the client already read as the answer), the client's fatal decrypt_error: the server's;
  the detail says the records after the ClientHello came behind the early ones (it said the
  ClientHello "got no answer of its own").

A second EHLO before STARTTLS or any mail (RFC 5321 4.1.4: EHLO again resets the session, and the
client acts on the list of the last reply it got). The verdict read the first EHLO before the first
mail transaction (it moved on to a later one only after a refused EHLO):

- ``smtp26-second-ehlo-offers-client-skips.pcap``: the first reply without STARTTLS, the second
  with it, the mail in the clear: ``client-did-not-request`` (it read ``starttls-not-offered``).
- ``smtp26-second-ehlo-offers-then-tls.pcap``: the same replies, STARTTLS and TLS: ``tls`` with no
  finding (it had a ``starttls-not-advertised-but-used`` of the client).
- ``smtp26-second-ehlo-drops-starttls.pcap``: the mirror, the first reply with STARTTLS, the second
  without, the mail in the clear: ``starttls-not-offered``, the server's (it read
  ``client-did-not-request``, the client's, for an offer the server withdrew).
- ``smtp26-second-ehlo-refused-client-skips.pcap`` (read right before, kept as the control): the
  first reply with STARTTLS, the second EHLO refused with 501 (RFC 5321 4.1.4: the server stays in
  the state it was in), the mail in the clear: ``client-did-not-request``, the first list.
"""
from __future__ import annotations

from generate import (
    BANNER, EHLO, EHLO_NO_TLS, EHLO_OK, READY, STARTTLS, Capture, Conv, Expect, alert, client_hello, mail_in_clear,
    opening, server_flight_tls12, starttls_ok,
)

INJECTED = "starttls-response-injection"


def flight_with_220(cport: int, *, hello: bool) -> Conv:
    """STARTTLS answered with the 220 and the server's TLS 1.2 flight in one segment; with
    ``hello``, the client's ClientHello after it and its close 5 s later, else its close at once."""
    label = f"smtp26 early flight {cport}"
    c = opening(Conv(cport=cport, close=None))
    flight, _ = server_flight_tls12(label, "mx.example.com")
    c.c(STARTTLS, tag="starttls").s(READY + flight, tag="starttls_reply")
    if hello:
        c.c(client_hello(label, "mx.example.com"), tag="client_hello")
    return c.fin("C", delay_ms=5000 if hello else 0.3).fin("S", delay_ms=0.2)


def flight_with_220_forged_reset(cport: int) -> Conv:
    """The flight in the 220's segment, the client's ClientHello, then 200 ms later a reset with
    the server's address and a TTL its own segments do not have (a box on the path)."""
    label = f"smtp26 early flight {cport}"
    c = opening(Conv(cport=cport, close=None))
    flight, _ = server_flight_tls12(label, "mx.example.com")
    c.c(STARTTLS, tag="starttls").s(READY + flight, tag="starttls_reply")
    c.c(client_hello(label, "mx.example.com"), tag="client_hello")
    return c.rst("S", ttl=128, delay_ms=200)


def flight_with_220_then_answer(cport: int) -> Conv:
    """The flight in the 220's segment, the client's ClientHello, the server's flight again 20 ms
    later, the client's fatal decrypt_error 30 ms after that and both closes."""
    label = f"smtp26 early flight {cport}"
    c = opening(Conv(cport=cport, close=None))
    flight, _ = server_flight_tls12(label, "mx.example.com")
    c.c(STARTTLS, tag="starttls").s(READY + flight, tag="starttls_reply")
    c.c(client_hello(label, "mx.example.com"), tag="client_hello")
    c.s(flight, tag="answer", delay_ms=20)
    c.c(alert(51), tag="alert", delay_ms=30)
    return c.fin("C", delay_ms=0.2).fin("S", delay_ms=0.2)


def flight_after_220_alert(cport: int) -> Conv:
    """The 220, the server's TLS 1.2 flight 2 ms later in a segment of its own, the client's
    ClientHello, its fatal decrypt_error 30 ms later and its close."""
    label = f"smtp26 early flight {cport}"
    c = opening(Conv(cport=cport, close=None))
    flight, _ = server_flight_tls12(label, "mx.example.com")
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.s(flight, tag="flight", delay_ms=2)
    c.c(client_hello(label, "mx.example.com"), tag="client_hello")
    c.c(alert(51), tag="alert", delay_ms=30)
    return c.fin("C", delay_ms=0.2).fin("S", delay_ms=0.2)


def second_ehlo(cport: int, first: bytes, second: bytes, *, starttls: bool) -> Conv:
    """EHLO answered ``first``, EHLO again answered ``second``, then STARTTLS and the mail inside
    TLS (``starttls``) or the mail in the clear. The reply the client acts on (``ehlo_reply``, the
    frames expected.json gives) is the second, unless it refused EHLO."""
    second_acted = second.startswith(b"250")
    c = Conv(cport=cport).s(BANNER, tag="banner").c(EHLO, tag="greeting")
    c.s(first, tag="first_reply" if second_acted else "ehlo_reply")
    c.c(EHLO, tag="second_ehlo").s(second, tag="ehlo_reply" if second_acted else "second_reply")
    if starttls:
        return starttls_ok(c, f"smtp26 second ehlo {cport}")
    return mail_in_clear(c, first_tag="mail")


def scenarios() -> list[Capture]:
    early = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                   [(INJECTED, "server", "starttls_reply")])
    return [
        Capture("smtp26-flight-with-220-hello-then-close.pcap",
                "STARTTLS answered 220 and, in the same segment, the server's TLS 1.2 flight; the client's "
                "ClientHello after it, its close 5 s later: the server's bytes before any ClientHello broke "
                "the start",
                [(flight_with_220(49601, hello=True), early)]),
        Capture("smtp26-flight-with-220-close.pcap",
                "STARTTLS answered 220 and, in the same segment, the server's TLS 1.2 flight; the client's "
                "close at once, no ClientHello: the server's",
                [(flight_with_220(49602, hello=False), early)]),
        Capture("smtp26-flight-after-220-client-alert.pcap",
                "the 220, the server's TLS 1.2 flight 2 ms later before any ClientHello, then the client's "
                "ClientHello and its fatal decrypt_error: the server's",
                [(flight_after_220_alert(49603),
                  Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         [(INJECTED, "server", "flight"), ("tls-alert", "client", "alert")]))]),
        Capture("smtp26-flight-with-220-forged-reset.pcap",
                "STARTTLS answered 220 and, in the same segment, the server's TLS 1.2 flight; the client's "
                "ClientHello, then a reset with the server's address and another TTL: a box on the path",
                [(flight_with_220_forged_reset(49608),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                         [(INJECTED, "server", "starttls_reply"), ("reset-forged", "middlebox", "label:rst")]))]),
        Capture("smtp26-flight-with-220-then-answer-client-alert.pcap",
                "STARTTLS answered 220 and, in the same segment, the server's TLS 1.2 flight; the client's "
                "ClientHello, the flight again after it, the client's fatal decrypt_error: the server's",
                [(flight_with_220_then_answer(49609),
                  Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         [(INJECTED, "server", "starttls_reply"), ("tls-alert", "client", "alert")]))]),
        Capture("smtp26-second-ehlo-offers-client-skips.pcap",
                "EHLO answered without STARTTLS, EHLO again answered with it, then the mail in the clear: the "
                "client skipped the offer of the list it acted on",
                [(second_ehlo(49604, EHLO_NO_TLS, EHLO_OK, starttls=False),
                  Expect("plaintext", "client", "client-did-not-request", "valid"))]),
        Capture("smtp26-second-ehlo-offers-then-tls.pcap",
                "EHLO answered without STARTTLS, EHLO again answered with it, then STARTTLS and the mail "
                "inside TLS",
                [(second_ehlo(49605, EHLO_NO_TLS, EHLO_OK, starttls=True),
                  Expect("tls", "none", "tls-established", "valid", True, 220))]),
        Capture("smtp26-second-ehlo-drops-starttls.pcap",
                "EHLO answered with STARTTLS, EHLO again answered without it, then the mail in the clear: "
                "the server withdrew the offer",
                [(second_ehlo(49606, EHLO_OK, EHLO_NO_TLS, starttls=False),
                  Expect("plaintext", "server", "starttls-not-offered", "absent"))]),
        Capture("smtp26-second-ehlo-refused-client-skips.pcap",
                "EHLO answered with STARTTLS, EHLO again refused with 501, then the mail in the clear: the "
                "first list stands",
                [(second_ehlo(49607, EHLO_OK, b"501 5.5.4 Syntax: EHLO hostname\r\n", starttls=False),
                  Expect("plaintext", "client", "client-did-not-request", "valid"))]),
    ]
