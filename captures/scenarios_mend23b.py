"""A client's plaintext without a line end in the TLS handshake, or after the server's 220 to
STARTTLS before any TLS, and the other side's close that came after it (the twenty-third
session's mendB helper; review item 1).

The ``TlsNotTls`` (once TLS began) or ``PlaintextAfterStartTls`` (before it) of bytes that are no
TLS waits for its preview's line end (or 64 bytes): a ``QUIT`` without its CRLF was emitted only at
the client's own end, after the server's close in the event list, and the verdict, which orders by
that place, blamed the server. The session now emits it first when something else of the
conversation comes (``SmtpSession._flush_text``), so each capture reads as its twin with the CRLF
(``hunt13-*`` and the controls here).

- ``mend23b-no-answer-quit-no-crlf-at-once-{server,client}-fin.pcap``: TLS 1.3 ClientHello, no
  answer, ``QUIT`` without CRLF 5 ms later, then the named side's close 10 s later: the client gave
  up on TLS at once (the client's, at the QUIT). It read the server's ("closed ... before the
  ServerHello") with the server closing first. Control: ``...-crlf-...-server-fin.pcap``.
- ``mend23b-tls12-whole-quit-no-crlf-1-2-s-{server,client}-fin.pcap``: the whole TLS 1.2 answer,
  ``QUIT`` without CRLF 1.2 s later: the client had all it needed (``client-silent``), as
  ``hunt13-tls12-whole-quit-1-2-s-{client,server}-fin.pcap``.
- ``mend23b-tls12-stall-quit-no-crlf-1-2-s-then-rest-{server,client}-fin.pcap``: the answer without
  its ServerHelloDone, ``QUIT`` without CRLF 1.2 s later, the ServerHelloDone 1 ms after it: the
  server stalled (``server-silent``), as ``hunt13-tls12-stall-quit-1-2-s-then-rest-*``. They read the
  client's / the server's without a case.
- ``mend23b-after-220-quit-no-crlf-{server,client}-first.pcap``: the 220 to STARTTLS, ``QUIT``
  without CRLF 5 ms later, the named side's close 10 s later: the client did not start TLS
  (``tls-not-started``) when the server closes first; it read ``incomplete`` (the plaintext after the
  server's close, which then was no answer to it). Control: ``...-crlf-server-first.pcap``. With the
  client closing first the server gave no readable answer before it: ``incomplete``, as with the
  CRLF, unchanged.
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, client_hello, opening
from scenarios_hunt13 import _flight, _rest


def gave_up(cport: int, kind: str | None, wait_ms: float, quit: bytes, *, rest: bool = False,
            first: str = "server", end_ms: float = 1.0) -> Conv:
    """STARTTLS, 220, the client's ClientHello (TLS 1.2 when ``kind`` starts with "tls12", else
    1.3), the server's answer (``scenarios_hunt13.KINDS``; None: none), ``wait_ms`` after it (the
    ClientHello when none) the client's ``quit`` in the clear, the rest of the answer 1 ms after it
    (``rest``), then ``end_ms`` later the ``first`` side's FIN and 1 ms after it the other's."""
    conv = Conv(cport=cport, close=None)
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    tls13 = kind is None or not kind.startswith("tls12")
    conv.c(client_hello(f"mend23b {cport}", "mx.example.com", tls13=tls13), tag="client_hello")
    if kind is not None:
        conv.s(_flight(cport, kind), tag="flight")
    conv.c(quit, tag="quit", delay_ms=wait_ms)
    if rest:
        conv.s(_rest(cport, kind), tag="rest", delay_ms=1.0)
    other = "client" if first == "server" else "server"
    conv.fin(first[0].upper(), tag=f"{first}_fin", delay_ms=end_ms)
    conv.fin(other[0].upper(), tag=f"{other}_fin", delay_ms=1.0)
    return conv


def after_220(cport: int, plain: bytes, first: str) -> Conv:
    """STARTTLS, the 220, the client's ``plain`` 5 ms later, the ``first`` side's FIN 10 s later and
    the other's 1 ms after it."""
    conv = Conv(cport=cport, close=None)
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(plain, tag="plain", delay_ms=5.0)
    other = "client" if first == "server" else "server"
    conv.fin(first[0].upper(), tag=f"{first}_fin", delay_ms=10000.0)
    conv.fin(other[0].upper(), tag=f"{other}_fin", delay_ms=1.0)
    return conv


def scenarios() -> list[Capture]:
    clients = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220)
    hung = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                  [("client-silent", "client", "flight")])
    stalled = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                     [("no-answer", "server", "flight")])
    not_started = Expect("aborted", "client", "tls-not-started", "valid", True, 220,
                         [("plaintext-after-starttls", "client", "plain")])
    return [
        *[Capture(f"mend23b-no-answer-quit-{crlf}-at-once-{first}-fin.pcap",
                  f"TLS 1.3 ClientHello, no answer, QUIT {text} 5 ms later, the {first}'s close 10 s later: the "
                  "client gave up on TLS at once (the client's)",
                  [(gave_up(port, None, 5.0, quit, first=first, end_ms=10000.0), clients)])
          for port, crlf, text, quit, first in [
              (49601, "no-crlf", "without CRLF", b"QUIT", "server"),
              (49602, "no-crlf", "without CRLF", b"QUIT", "client"),
              (49603, "crlf", "with CRLF (the control)", b"QUIT\r\n", "server")]],
        *[Capture(f"mend23b-tls12-whole-quit-no-crlf-1-2-s-{first}-fin.pcap",
                  f"TLS 1.2, the whole answer, QUIT without CRLF 1.2 s later, the {first}'s close 1 ms after it: "
                  "the client had all it needed and did not go on (client-silent)",
                  [(gave_up(port, "tls12", 1200.0, b"QUIT", first=first), hung)])
          for port, first in [(49604, "server"), (49605, "client")]],
        *[Capture(f"mend23b-tls12-stall-quit-no-crlf-1-2-s-then-rest-{first}-fin.pcap",
                  "TLS 1.2, the answer without its ServerHelloDone, QUIT without CRLF 1.2 s later, the "
                  f"ServerHelloDone 1 ms after it, the {first}'s close 1 ms later: the server stalled "
                  "(server-silent)",
                  [(gave_up(port, "tls12-no-done", 1200.0, b"QUIT", rest=True, first=first), stalled)])
          for port, first in [(49606, "server"), (49607, "client")]],
        *[Capture(f"mend23b-after-220-quit-{crlf}-{first}-first.pcap",
                  f"the 220 to STARTTLS, QUIT {text} 5 ms later, the {first}'s close 10 s later: {verdict}",
                  [(after_220(port, plain, first), expect)])
          for port, crlf, text, plain, first, verdict, expect in [
              (49608, "no-crlf", "without CRLF", b"QUIT", "server", "the client did not start TLS", not_started),
              (49609, "no-crlf", "without CRLF", b"QUIT", "client",
               "no readable answer of the server's before the client's close (incomplete), as with the CRLF",
               Expect("incomplete", "unknown", "incomplete", "valid", True, 220)),
              (49610, "crlf", "with CRLF (the control)", b"QUIT\r\n", "server", "the client did not start TLS",
               not_started)]],
    ]
