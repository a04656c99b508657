"""The session's reading after holes (bytes lost from the capture), cases left open by the
twenty-first session and its second review (pcapsmtp/smtp/session.py):

- e6: the server's 220 to STARTTLS and the client's ClientHello both lost, the client's QUIT in the
  clear before the server's ServerHello. The session left the client's bytes after its hole the TLS
  it may have begun there only when they were no text (``_tls_without_220``), so the QUIT read as
  plaintext owed after the 220 (``tls-not-started``, the client's). A ServerHello answers only a
  ClientHello: the hole held one (it can, ``_MIN_CLIENT_HELLO_RECORD``), and what followed it is
  the client's TLS, plaintext or not. An alert proves no ClientHello (a TLS server answers the
  plaintext after a 220 with one too): after it the QUIT is still plaintext where TLS was due.
- A late start inside Postfix postscreen's pregreet wait (the greeting's ``220-`` line, the client's
  EHLO before the greeting's end, the 554 that ends it): the late start's first line was a reply of
  its own (a late start's first reply counts as damaged, and a damaged reply ended at a line of
  another code) and the 554 the EHLO's answer (``ehlo-rejected``, where the whole capture reads
  ``greeting-refused``). A reply splits at another code only after a hole inside it (a lost end),
  and a late start's first reply whose first line, of a greeting's code, came before the client's
  first captured command is the greeting: the server answers only what it has read.
- The same with the ``220-`` line lost in a hole the client acknowledged before its EHLO: the 554
  after the EHLO is the greeting's last line, not the EHLO's answer (RFC 5321 4.3.2 gives 554 to the
  opening, never to EHLO or HELO; a 421, which answers any command, stays the EHLO's answer). The
  verdict stays ``incomplete``: a hole before the greeting could hide what the server said first.

Captures (each missing segment's receiver acknowledges it: the holes are declared):

- ``holes3-quit-before-answer-220-hello-lost.pcap``: quitcross-quit-before-answer.pcap without its
  220 and its ClientHello: ``incomplete`` (bytes lost during the handshake, before what ended it;
  was ``tls-not-started``, the client's, where the whole capture reads the client giving up at once).
- ``holes3-quit-before-alert-220-hello-lost.pcap`` (control): the same, the server answering with a
  fatal alert instead of a ServerHello: ``tls-not-started``, the client's, as before.
- ``holes3-quit-before-header-220-hello-lost.pcap``: the same with only the first 5 bytes of the
  server's answer captured (its record header alone in a segment, the rest lost): ``incomplete``
  as with the whole ServerHello, and no ``starttls-command-injection`` (the session waited for the
  sixth byte, the handshake message's type, which never came, and read the header as a reply line:
  the QUIT came out as a command injected after STARTTLS). A server's TLS begins with a handshake
  record only as its ServerHello, so the header alone answers the lost ClientHello.
- ``holes3-pregreet-554.pcap``: the pregreet trap whole: ``greeting-refused``; its late starts at
  the client's handshake ACK and at the ``220-`` line the same (were ``ehlo-rejected``).
- ``holes3-pregreet-554-first-line-lost.pcap``: the same with the ``220-`` line lost: ``incomplete``
  (the session reads the 554 as the greeting; it read it as the EHLO's answer).
- ``holes3-ehlo-refused-554.pcap`` (control): the whole greeting, the EHLO refused with 554:
  ``ehlo-rejected``.
"""
from __future__ import annotations

from generate import EHLO, READY, STARTTLS, Capture, Conv, Expect, alert, client_hello, opening
from scenarios_hunt6 import _answer

QUIT = b"QUIT\r\n"
BYE = b"221 2.0.0 Bye\r\n"
#: postscreen's greeting head, and its answer to a client that spoke before the greeting's end
GREETING_HEAD = b"220-mx.example.com ESMTP\r\n"
PREGREET = b"554 5.5.1 Error: talking too soon\r\n"
EHLO_REFUSED = b"554 5.7.1 Client host rejected\r\n"


def quit_before_answer(cport: int, *, answer: str) -> Conv:
    """quitcross-quit-before-answer.pcap with its 220 and ClientHello lost (each acknowledged): the
    client's QUIT in the clear 5 ms after the ClientHello, the server's answer (its TLS 1.2 flight,
    or a fatal alert) 40 ms later, the client's close 30 s after."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply", lost=[0])
    conv.c(client_hello(f"holes3 {cport}", "mx.example.com"), tag="client_hello", lost=[0])
    conv.c(QUIT, tag="quit", delay_ms=5.0)
    if answer == "header":      # the ServerHello's record header alone, the rest of the flight lost
        flight = _answer(cport, "tls12")
        conv.s([flight[:5], flight[5:]], tag="answer", delay_ms=40.0, lost=[1])
    else:
        conv.s(_answer(cport, "tls12") if answer == "hello" else alert(40), tag="answer", delay_ms=40.0)
    return conv.fin("C", tag="client_fin", delay_ms=30000.0)


def pregreet(cport: int, *, lost: bool) -> Conv:
    """Postfix postscreen's pregreet trap: the greeting's ``220-`` line (lost in a hole the client
    acknowledged, when ``lost``), the client's EHLO 100 ms later, before the greeting's end, the
    server's 554 6 s later (the greeting's last line) and its close."""
    conv = Conv(cport=cport, close=("fin", "S"))
    conv.s(GREETING_HEAD, tag="banner", lost=[0] if lost else []).c(EHLO, tag="greeting", delay_ms=100.0)
    return conv.s(PREGREET, tag="banner_tail", delay_ms=6000.0)


def ehlo_refused(cport: int) -> Conv:
    """The greeting, the client's EHLO refused with 554, QUIT and 221."""
    conv = Conv(cport=cport, close=("fin", "S"))
    conv.s(b"220 mx.example.com ESMTP\r\n", tag="banner").c(EHLO, tag="greeting")
    return conv.s(EHLO_REFUSED, tag="ehlo_reply").c(QUIT, tag="quit").s(BYE)


def scenarios() -> list[Capture]:
    gaps = [("tcp-gap", "capture", "lost_segment:S"), ("tcp-gap", "capture", "quit")]
    return [
        Capture("holes3-quit-before-answer-220-hello-lost.pcap",
                "STARTTLS; the 220 and the ClientHello lost (each acknowledged); the client's QUIT in the clear, then "
                "the server's ServerHello, which answers only a ClientHello: the hole held one, and who ended the "
                "handshake the capture cannot tell",
                [(quit_before_answer(49001, answer="hello"),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, None, gaps))]),
        Capture("holes3-quit-before-alert-220-hello-lost.pcap",
                "STARTTLS; the 220 and the ClientHello lost (each acknowledged); the client's QUIT in the clear, then "
                "the server's fatal alert, which may answer that plaintext: the client did not start TLS",
                [(quit_before_answer(49002, answer="alert"),
                  Expect("aborted", "client", "tls-not-started", "valid", True, None,
                         gaps + [("plaintext-after-starttls", "client", "quit")]))]),
        Capture("holes3-quit-before-header-220-hello-lost.pcap",
                "the same with only the 5-byte record header of the server's answer captured, the rest of its flight "
                "lost: that record is the server's TLS all the same (the QUIT is no command injected after "
                "STARTTLS), and who ended the handshake the capture cannot tell",
                [(quit_before_answer(49003, answer="header"),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, None,
                         gaps + [("tcp-gap", "capture", "label:fin:C")]))]),
        Capture("holes3-pregreet-554.pcap",
                "Postfix postscreen's pregreet trap: the greeting's 220- line, the client's EHLO before its end, the "
                "server's 554 6 s later, the greeting's last line (its late starts from the 220- line on: the same)",
                [(pregreet(49011, lost=False), Expect("aborted", "server", "greeting-refused", "unknown"))]),
        Capture("holes3-pregreet-554-first-line-lost.pcap",
                "the same with the 220- line lost (acknowledged before the EHLO): the 554 is still the greeting's "
                "last line (RFC 5321 4.3.2 gives 554 to the opening, never to EHLO), but what the lost head said "
                "first the capture cannot show",
                [(pregreet(49012, lost=True), Expect("incomplete", "unknown", "incomplete", "unknown",
                                                     findings=[("tcp-gap", "capture", "greeting")]))]),
        Capture("holes3-ehlo-refused-554.pcap",
                "control: the whole greeting, then the client's EHLO refused with 554: the EHLO's answer (its late "
                "starts after the greeting: the same)",
                [(ehlo_refused(49013), Expect("aborted", "server", "ehlo-rejected", "unknown"))]),
    ]
