"""The session after a hole where the 220 to STARTTLS, the ClientHello or the greeting go (the
twenty-first session).

Two cuts of the two-loss sweep (tests/test_late_start_loss.py) read a side's fault the whole
capture does not show:

- without the server's 220 to STARTTLS and the client's ClientHello, the server's TLS after the two
  holes was read as after a 220 lost in a hole (``_tls_without_220``), but the client's bytes from
  there as bytes owed after a 220: its QUIT in the clear once it gave up on the stalled handshake
  read as a client that never started TLS (``tls-not-started``, the client's). A ServerHello
  answers only a ClientHello, and an alert may answer one: the client's TLS may have begun in the
  hole of its bytes after STARTTLS, and what follows is read as after a 220 in the capture with
  that hole (``_tls_after_hole``).
- without the banner and the EHLO reply, the 220 to STARTTLS after the client's EHLO and STARTTLS
  was taken for the greeting (a late server greeting after a client that spoke first), so the
  client's ClientHello after it was no TLS. The client acknowledged the server's first bytes
  before its EHLO: the greeting was in that hole (the server's first bytes are its greeting,
  RFC 5321 3.1, and a client waits for it before its first command), and the 220 answers the
  STARTTLS (``_greeting_in_hole``).

Captures (each missing segment's receiver acknowledges it: the holes are declared):

- ``hole-hello-stall-quit-in-clear.pcap``: real20-stall-client-quit-in-clear.pcap without the 220
  and the ClientHello: the answer that stops short, the client's QUIT in the clear 30 s later. The
  ClientHello is not in the capture: who ended the handshake cannot be told (``incomplete``; was:
  ``tls-not-started``, the client's).
- ``hole-hello-alert-then-quit.pcap``: the same holes, the server's fatal alert (handshake_failure)
  as its answer, the client's QUIT in the clear at once: an alert can answer plaintext as well as a
  ClientHello, and the client's bytes are in the hole: ``incomplete`` (was: ``tls-not-started``).
- ``hole-hello-greeting-lost-tls.pcap``: without the banner and the EHLO reply, STARTTLS, 220 and a
  TLS 1.2 session: ``tls``, the 220 answering the STARTTLS (was: ``tls`` too, the 220 read as the
  greeting, the STARTTLS unanswered and the certificate checked against "2.0.0", the name in
  that "greeting").

The cuts themselves are checked in tests/test_hole_hello_captures.py (the two captures cut as the
sweep cuts them). Not here: the same greeting lost with the ClientHello unanswered, or with the
client's plaintext after the 220, whose late-start cuts (from the client's handshake ACK on) still
read the 220 as the EHLO's answer, as before this change (in a late start no hole of the server
before its first captured byte is declared); and the 220 and the ClientHello lost before a
handshake that completes, which reads ``tls`` as before and turns unsure with the client's tap
25 ms ahead (tests/test_transforms.py's skew).
"""
from __future__ import annotations

from generate import (BANNER, EHLO, EHLO_NO_TLS, EHLO_OK, READY, STARTTLS, Capture, Conv, Expect, alert, client_hello,
                      tls12_session)
from scenarios_hunt6 import CLIENT_TLS_TIMEOUT_MS, _answer

QUIT = b"QUIT\r\n"


def _lost_220_and_hello(cport: int) -> Conv:
    """The opening, STARTTLS; the server's 220 and the client's ClientHello not in the capture
    (each acknowledged by its receiver)."""
    conv = Conv(cport=cport, close=None)
    conv.s(BANNER, tag="banner").c(EHLO, tag="greeting").s(EHLO_OK, tag="ehlo_reply")
    conv.c(STARTTLS, tag="starttls")
    conv.s(READY, tag="starttls_reply", lost=[0])
    conv.c(client_hello(f"hole hello {cport}", "mx.example.com"), tag="client_hello", lost=[0])
    return conv


def stall_quit_in_clear(cport: int) -> Conv:
    """The answer without its ServerHelloDone, acknowledged; 30 s later the client's QUIT in the
    clear, its close 2 s after (PHPMailer, real20-stall-client-quit-in-clear.pcap)."""
    conv = _lost_220_and_hello(cport)
    conv.s(_answer(cport, "tls12-no-done"), tag="flight")
    conv.c(QUIT, tag="quit", delay_ms=CLIENT_TLS_TIMEOUT_MS)
    return conv.fin("C", tag="client_fin", delay_ms=2000.0)


def alert_then_quit(cport: int) -> Conv:
    """The server's fatal handshake_failure alert as its answer, its close; the client's QUIT in
    the clear 5 ms later and its close."""
    conv = _lost_220_and_hello(cport)
    conv.s(alert(40), tag="alert")
    conv.fin("S", tag="server_fin", delay_ms=1.0)
    conv.c(QUIT, tag="quit", delay_ms=5.0)
    return conv.fin("C", tag="client_fin", delay_ms=1.0)


#: the dialogue in the TLS session (as application data)
ENCRYPTED = [("C", EHLO), ("S", EHLO_NO_TLS), ("C", QUIT), ("S", b"221 2.0.0 Bye\r\n")]


def _greeting_lost(cport: int, close: tuple[str, str] | None = ("fin", "S")) -> Conv:
    """The banner and the EHLO reply not in the capture (the client acknowledges each); the
    client's STARTTLS and the server's 220."""
    conv = Conv(cport=cport, close=close)
    conv.s(BANNER, tag="banner", lost=[0]).c(EHLO, tag="greeting").s(EHLO_OK, tag="ehlo_reply", lost=[0])
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    return conv


def greeting_lost_tls(cport: int) -> Conv:
    """A TLS 1.2 session after the 220, closed with close_notify each way."""
    return tls12_session(_greeting_lost(cport), f"hole hello {cport}", "mx.example.com", "mx.example.com",
                         ENCRYPTED)


def scenarios() -> list[Capture]:
    # (the server's hole is reported at its ACK past it, tshark's lost segment; the client's, which
    # the server's ACK declares, at the server's next segment with bytes)
    def unsure(at: str, *more: tuple[str, str, str]) -> Expect:
        return Expect("incomplete", "unknown", "incomplete", "valid", True, None,
                      [("tcp-gap", "capture", "lost_segment:S"), ("tcp-gap", "capture", at), *more])
    # (each hole of the server's, which the client's ACK declares, at the client's next segment
    # with bytes: its EHLO, its STARTTLS)
    greeting_gaps = [("tcp-gap", "capture", "greeting"), ("tcp-gap", "capture", "starttls")]
    return [
        Capture("hole-hello-stall-quit-in-clear.pcap",
                "real20-stall-client-quit-in-clear.pcap without the server's 220 and the client's ClientHello "
                "(each acknowledged): the server's answer stops short of its ServerHelloDone, the client sends "
                "QUIT in the clear 30 s later: the ClientHello is not in the capture, who ended it cannot be told",
                [(stall_quit_in_clear(48801), unsure("flight"))]),
        Capture("hole-hello-alert-then-quit.pcap",
                "without the server's 220 and the client's ClientHello (each acknowledged), the server's fatal "
                "alert and close, the client's QUIT in the clear: what the alert answered is in the hole",
                [(alert_then_quit(48802), unsure("alert", ("tls-alert", "server", "alert")))]),
        Capture("hole-hello-greeting-lost-tls.pcap",
                "without the banner and the EHLO reply (each acknowledged): STARTTLS, 220, a TLS 1.2 session: TLS",
                [(greeting_lost_tls(48805), Expect("tls", "none", "tls-established", "unknown", True, 220,
                                                   greeting_gaps))]),
    ]
