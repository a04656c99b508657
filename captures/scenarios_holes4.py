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

Captures (each missing segment's receiver acknowledges it: the holes are declared):

- ``holes4-quit-before-0x16-bad-version-220-hello-lost.pcap``,
  ``holes4-quit-before-0x16-bad-length-220-hello-lost.pcap``,
  ``holes4-quit-before-0x16-bad-type-220-hello-lost.pcap``: holes3-quit-before-answer-220-hello-lost
  with the server's answer replaced by 40 bytes that begin with 0x16 but are no TLS record (record
  version 3.9; a length over 2^14 + 2048; a valid header whose message type is 99): ``incomplete``
  (the answer to STARTTLS is not in the capture), no ``starttls-command-injection`` (the last was
  ``tls-not-started``, the client's: "the server answered in TLS").
- ``holes4-injection-then-0x16-garbage-220-lost.pcap`` (control): STARTTLS and QUIT in one segment,
  the 220 lost, then the same bad-version bytes: the QUIT was sent before any reply, a command
  injected after STARTTLS as before.
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, client_hello, det, opening

QUIT = b"QUIT\r\n"

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
    return caps
