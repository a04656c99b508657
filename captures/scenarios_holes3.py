"""The session's reading after holes (bytes lost from the capture), cases left open by the
twenty-first session and its second review (pcapsmtp/smtp/session.py):

- e6: the server's 220 to STARTTLS and the client's ClientHello both lost, the client's QUIT in the
  clear before the server's ServerHello. The session left the client's bytes after its hole the TLS
  it may have begun there only when they were no text (``_tls_without_220``), so the QUIT read as
  plaintext owed after the 220 (``tls-not-started``, the client's). A ServerHello answers only a
  ClientHello: the hole held one (it can, ``_MIN_CLIENT_HELLO_RECORD``), and what followed it is
  the client's TLS, plaintext or not. An alert proves no ClientHello (a TLS server answers the
  plaintext after a 220 with one too): after it the QUIT is still plaintext where TLS was due.

Captures (each missing segment's receiver acknowledges it: the holes are declared):

- ``holes3-quit-before-answer-220-hello-lost.pcap``: quitcross-quit-before-answer.pcap without its
  220 and its ClientHello: ``incomplete`` (bytes lost during the handshake, before what ended it;
  was ``tls-not-started``, the client's, where the whole capture reads the client giving up at once).
- ``holes3-quit-before-alert-220-hello-lost.pcap`` (control): the same, the server answering with a
  fatal alert instead of a ServerHello: ``tls-not-started``, the client's, as before.
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, alert, client_hello, opening
from scenarios_hunt6 import _answer

QUIT = b"QUIT\r\n"


def quit_before_answer(cport: int, *, answer: str) -> Conv:
    """quitcross-quit-before-answer.pcap with its 220 and ClientHello lost (each acknowledged): the
    client's QUIT in the clear 5 ms after the ClientHello, the server's answer (its TLS 1.2 flight,
    or a fatal alert) 40 ms later, the client's close 30 s after."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply", lost=[0])
    conv.c(client_hello(f"holes3 {cport}", "mx.example.com"), tag="client_hello", lost=[0])
    conv.c(QUIT, tag="quit", delay_ms=5.0)
    conv.s(_answer(cport, "tls12") if answer == "hello" else alert(40), tag="answer", delay_ms=40.0)
    return conv.fin("C", tag="client_fin", delay_ms=30000.0)


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
    ]
