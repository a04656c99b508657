"""Who closes first after a client gave up on TLS in the middle of the handshake (the
twenty-third session's "close" helper), and plaintext without a line end after the 220.

A client that gives up on TLS after its ClientHello speaks SMTP in the clear (PHPMailer's QUIT once
its handshake timeout expires) and closes, or just closes. When the server's alert, close or reset
came first, the wait up to the plaintext decided (``_server_met_clear``); when the client's own FIN
or RST came first, several readings fell to the generic "the client closed the connection after
the ServerHello", at the close. The same evidence now reads the same whichever side sends the first
FIN (``_client_end_after_clear``). Pairs, the client closing first (``-client-fin``/``-client-rst``)
and the server (``-server-fin``):

- ``hunt13-tls13-stall-quit-1-2-s-then-rest-client-{fin,rst}.pcap``: TLS 1.3, the answer up to its
  Certificate (two encrypted records: whole or short cannot be told from them), QUIT 1.2 s later,
  the CertificateVerify and Finished 1 ms after the QUIT, then the client's close or reset: the
  answer was short when the client gave up, the server stalled (``server-silent``), as
  ``hunt10-tls13-quit-1-2-s-then-rest-fin.pcap`` where the server closes first. It read the client's.
  ``hunt13-tls13-stall-fin-1-2-s-then-rest.pcap``: no QUIT, the client's FIN 1.2 s after the answer,
  the rest 1 ms after it: the same.
- ``hunt13-tls12-stall-quit-1-2-s-then-rest-{client,server}-fin.pcap``: TLS 1.2, the answer without
  its ServerHelloDone, QUIT 1.2 s later, the ServerHelloDone 1 ms after it: ``server-silent`` both
  (the client-first one read the client's: the stalled-server rule measured the answer up to the
  close, whole by then).
- ``hunt13-tls13-one-record-quit-1-2-s-then-rest-{client,server}-fin.pcap``: the answer in one
  record, QUIT 1.2 s later, then a CertificateVerify and Finished: ``server-silent`` both.
- ``hunt13-no-answer-quit-1-2-s-then-answer-{client,server}-fin.pcap``: no answer for 1.2 s after the
  ClientHello, QUIT, then the whole answer 1 ms after it: the server never answered in time
  (``server-silent``, at the ClientHello) both.
- ``hunt13-tls12-whole-quit-1-2-s-{client,server}-fin.pcap`` and
  ``hunt13-tls13-whole-quit-1-2-s-client-rst.pcap``: the whole answer, QUIT 1.2 s later: the client
  had all it needed and did not go on (``client-silent``, evidence frame the QUIT), as
  ``hunt10-whole-answer-quit-1-2-s-tls13-server-fin.pcap``. The client-first ones read the client's
  without a case, at the close.
- ``hunt13-tls13-upto-cert-quit-1-2-s-{client,server}-fin.pcap``: the answer up to its Certificate,
  QUIT 1.2 s later, nothing more: whether it was whole cannot be told, the client's at the QUIT
  both (the client-first one: at its close).
- ``hunt13-tls13-answer-lost-quit-1-2-s-{client,server}-fin.pcap``: the whole answer resent 300 ms
  later and never acknowledged, QUIT 1.2 s after the resend: the path's (``answer-lost``) both.
- Controls, at once: ``hunt13-quit-at-once-after-hello-then-answer-{client,server}-fin.pcap`` (QUIT
  5 ms after the ClientHello, the answer after it: the client's, at the QUIT, both) and
  ``hunt13-tls12-stall-quit-at-once-then-rest-{client,server}-fin.pcap`` (QUIT 5 ms after an answer
  without its ServerHelloDone, the ServerHelloDone after it: the client's both; the client-first
  one at its close, the general rule, since the client's acknowledgement advanced only after the
  QUIT and the analysis is not given the ACK the QUIT's own segment carried: the QUIT may have
  crossed the answer, ``hunt9-quit-crossed-answer-rest-after-it.pcap``).

Plaintext after the server's 220 to STARTTLS, before any TLS, without a line end
(``PlaintextAfterStartTls``) was stamped with the segment that completed it, the client's FIN at
the stream's end, not the one that carried its first byte:

- ``hunt13-220-lost-quit-no-crlf-at-once.pcap``: the 220 resent 300 ms later and never acknowledged
  (the path dropped it), ``QUIT`` without CRLF 5 ms after the resend (305 ms after the 220), the
  client's close 30 s later: read as ``QUIT`` 30.3 s after the 220, the client giving up on a 220 it
  never had (``middlebox``, ``answer-lost``); now as sent 305 ms after it, as
  ``hunt13-220-lost-quit-crlf-at-once.pcap`` with the CRLF (the control): no readable answer of the
  server's, ``incomplete``.
- ``hunt13-220-lost-quit-no-crlf-1-2-s.pcap``: the same, ``QUIT`` 1.2 s after the resend: the path's,
  the detail giving 1.5 s after the 220, not 31.5 s.
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, client_hello, det, opening, record
from scenarios_hunt6 import _answer

#: the answers ``gave_up`` builds: ``scenarios_hunt6._answer``'s kinds, and "tls13-upto-cert" (the
#: ServerHello, then the EncryptedExtensions and the Certificate in two encrypted records)
KINDS = ("tls12", "tls12-no-done", "tls13", "tls13-one-record", "tls13-upto-cert")


def _flight(cport: int, kind: str) -> bytes:
    if kind != "tls13-upto-cert":
        return _answer(cport, kind)
    hello = _answer(cport, "tls13-no-finished")
    head = hello[:5 + int.from_bytes(hello[3:5], "big")]          # the ServerHello record
    return head + record(23, det(f"hunt13 {cport} ee", 27)) + record(23, det(f"hunt13 {cport} cert", 700))


def _rest(cport: int, kind: str | None) -> bytes:
    """What completes the answer: the ServerHelloDone (TLS 1.2), the CertificateVerify and the
    53-byte Finished in two encrypted records (TLS 1.3), the whole answer when none came."""
    if kind is None:
        return _answer(cport, "tls13")
    if kind.startswith("tls12"):
        return _answer(cport, "tls12")[-9:]     # (the ServerHelloDone record: 5 + 4 bytes)
    return record(23, det(f"hunt13 {cport} cv", 89)) + record(23, det(f"hunt13 {cport} fin", 53))


def gave_up(cport: int, kind: str | None, wait_ms: float, *, quit: bool = True, rest: bool = False,
            first: str = "client", how: str = "fin", lost: bool = False) -> Conv:
    """STARTTLS, 220, the client's ClientHello (TLS 1.2 when ``kind`` starts with "tls12", else
    1.3), the server's answer (``KINDS``; None: none) acknowledged at once (``lost``: resent 300 ms
    later and never acknowledged, a black hole on the path). ``wait_ms`` after the answer (its
    resend; the ClientHello when none) the client's QUIT in the clear, or (not ``quit``) its close;
    ``rest``: the rest of the answer (``_rest``) 1 ms after that. Then 1 ms later the ``first``
    side's end, ``how`` "fin" or "rst" (nothing after a reset), and 1 ms after a FIN the other
    side's."""
    conv = Conv(cport=cport, close=None)
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    tls13 = kind is None or not kind.startswith("tls12")
    conv.c(client_hello(f"hunt13 {cport}", "mx.example.com", tls13=tls13), tag="client_hello")
    if kind is not None:
        conv.s(_flight(cport, kind), tag="flight", resend_ms=(300.0,) if lost else None)
    other = "server" if first == "client" else "client"
    if quit:
        conv.c(b"QUIT\r\n", tag="quit", delay_ms=wait_ms)
    else:
        assert first == "client"
    end_ms = 1.0 if quit else wait_ms
    if rest and quit:
        conv.s(_rest(cport, kind), tag="rest", delay_ms=1.0)
    if how == "rst":
        conv.rst(first[0].upper(), delay_ms=end_ms)
        return conv
    conv.fin(first[0].upper(), tag=f"{first}_fin", delay_ms=end_ms)
    if rest and not quit:
        conv.s(_rest(cport, kind), tag="rest", delay_ms=1.0)
    conv.fin(other[0].upper(), tag=f"{other}_fin", delay_ms=1.0)
    return conv


def after_220(cport: int, plain: bytes, after_ms: float) -> Conv:
    """STARTTLS, the server's 220 resent 300 ms later and never acknowledged (the path dropped it),
    the client's ``plain`` ``after_ms`` after the resend, its close 30 s later and the server's 1 ms
    after."""
    conv = Conv(cport=cport, close=None)
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply", resend_ms=(300.0,))
    conv.c(plain, tag="plain", delay_ms=after_ms)
    conv.fin("C", tag="client_fin", delay_ms=30000.0)
    conv.fin("S", tag="server_fin", delay_ms=1.0)
    return conv


def scenarios() -> list[Capture]:
    stalled = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                     [("no-answer", "server", "flight")])
    unanswered = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                        [("no-answer", "server", "client_hello")])
    hung = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                  [("client-silent", "client", "flight")])
    clients = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220)
    lost = Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                  [("answer-not-received", "middlebox", "flight")])
    caps = [
        *[Capture(f"hunt13-tls13-stall-quit-1-2-s-then-rest-client-{how}.pcap",
                  "TLS 1.3, the answer up to its Certificate (whole or short cannot be told), QUIT 1.2 s later, the "
                  f"CertificateVerify and Finished 1 ms after it, then the client's {what} first: the answer was short "
                  "when the client gave up, the server stalled (server-silent), as when the server closes first",
                  [(gave_up(port, "tls13-upto-cert", 1200.0, rest=True, how=how), stalled)])
          for port, how, what in [(49361, "fin", "close"), (49362, "rst", "reset")]],
        Capture("hunt13-tls13-stall-fin-1-2-s-then-rest.pcap",
                "TLS 1.3, the answer up to its Certificate, no QUIT: the client's close 1.2 s later, the "
                "CertificateVerify and Finished 1 ms after it: the server stalled (server-silent)",
                [(gave_up(49363, "tls13-upto-cert", 1200.0, quit=False, rest=True), stalled)]),
        *[Capture(f"hunt13-{name}-quit-1-2-s-then-rest-{first}-fin.pcap",
                  f"{what}, QUIT 1.2 s later, {rest} 1 ms after it, then the {first}'s close first: the server "
                  "stalled (server-silent)",
                  [(gave_up(port, kind, 1200.0, rest=True, first=first), stalled)])
          for name, kind, what, rest in [
              ("tls12-stall", "tls12-no-done", "TLS 1.2, the answer without its ServerHelloDone",
               "the ServerHelloDone"),
              ("tls13-one-record", "tls13-one-record", "TLS 1.3, the answer in one record",
               "a CertificateVerify and a Finished")]
          for port, first in [(49364 + 2 * (name != "tls12-stall"), "client"),
                              (49365 + 2 * (name != "tls12-stall"), "server")]],
        *[Capture(f"hunt13-no-answer-quit-1-2-s-then-answer-{first}-fin.pcap",
                  "no answer 1.2 s after the ClientHello, QUIT, the whole TLS 1.3 answer 1 ms after it, then the "
                  f"{first}'s close first: the server never answered in time (server-silent)",
                  [(gave_up(port, None, 1200.0, rest=True, first=first), unanswered)])
          for port, first in [(49368, "client"), (49369, "server")]],
        *[Capture(f"hunt13-{kind}-whole-quit-1-2-s-{first}-{how}.pcap",
                  f"TLS {kind[-2]}.{kind[-1]}, the whole answer, QUIT 1.2 s later, then the {first}'s "
                  f"{'reset' if how == 'rst' else 'close'} first: the client had all it needed and did not go on "
                  "(client-silent)",
                  [(gave_up(port, kind, 1200.0, first=first, how=how), hung)])
          for port, kind, first, how in [(49370, "tls12", "client", "fin"), (49371, "tls12", "server", "fin"),
                                         (49372, "tls13", "client", "rst")]],
        *[Capture(f"hunt13-tls13-upto-cert-quit-1-2-s-{first}-fin.pcap",
                  f"TLS 1.3, the answer up to its Certificate, QUIT 1.2 s later, nothing more, the {first}'s close "
                  "first: whether the answer was whole cannot be told, the client's, at the QUIT",
                  [(gave_up(port, "tls13-upto-cert", 1200.0, first=first), clients)])
          for port, first in [(49373, "client"), (49374, "server")]],
        *[Capture(f"hunt13-tls13-answer-lost-quit-1-2-s-{first}-fin.pcap",
                  "TLS 1.3, the whole answer resent 300 ms later and never acknowledged, QUIT 1.2 s after the resend, "
                  f"the {first}'s close first: the path's (answer-lost)",
                  [(gave_up(port, "tls13", 1200.0, first=first, lost=True), lost)])
          for port, first in [(49375, "client"), (49376, "server")]],
        *[Capture(f"hunt13-quit-at-once-after-hello-then-answer-{first}-fin.pcap",
                  "the control: QUIT 5 ms after the ClientHello, the whole TLS 1.3 answer 1 ms after it, the "
                  f"{first}'s close first: the client gave up on TLS at once, the client's",
                  [(gave_up(port, None, 5.0, rest=True, first=first), clients)])
          for port, first in [(49377, "client"), (49378, "server")]],
        *[Capture(f"hunt13-tls12-stall-quit-at-once-then-rest-{first}-fin.pcap",
                  "the control: TLS 1.2, the answer without its ServerHelloDone, QUIT 5 ms later, the ServerHelloDone "
                  f"1 ms after it, the {first}'s close first: the client's",
                  [(gave_up(port, "tls12-no-done", 5.0, rest=True, first=first), clients)])
          for port, first in [(49379, "client"), (49380, "server")]],
        *[Capture(f"hunt13-220-lost-quit-{crlf}-{when}.pcap",
                  f"the 220 to STARTTLS dropped on the path (resent 300 ms later, never acknowledged), QUIT {text} "
                  f"{after_ms:g} ms after the resend, the client's close 30 s later: {verdict}",
                  [(after_220(port, plain, after_ms), expect)])
          for port, crlf, when, text, plain, after_ms, verdict, expect in [
              (49381, "no-crlf", "at-once", "without CRLF", b"QUIT", 5.0,
               "read as sent 5 ms after the 220, no readable answer (incomplete)",
               Expect("incomplete", "unknown", "incomplete", "valid", True, 220)),
              (49382, "crlf", "at-once", "with CRLF", b"QUIT\r\n", 5.0, "the control (incomplete)",
               Expect("incomplete", "unknown", "incomplete", "valid", True, 220)),
              (49383, "no-crlf", "1-2-s", "without CRLF", b"QUIT", 1200.0,
               "the client gave up on a 220 it never had, the path's (answer-lost), 1.5 s after it",
               Expect("aborted", "middlebox", "tls-not-started", "valid", True, 220,
                      [("answer-not-received", "middlebox", "starttls_reply")]))]],
    ]
    return caps
