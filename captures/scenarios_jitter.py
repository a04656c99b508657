"""A verdict must not move when the same conversation's frames are filed in another order (two taps
merged, each tap's clock and buffering off by a few milliseconds).

- ``jitter-answer-hole-one-tap.pcap``: STARTTLS answered 220, the client's ClientHello; the server
  answers it only 2.99 s later (a slow TLS stack), and the answer's full-size first segment is not
  in the capture (neither acknowledged by the client: lost before the tap) but for its small last
  segment (60 bytes, its ServerHelloDone); 2 ms after that segment the client, which gave up
  3 s after its ClientHello, closes. Nothing of the client's comes a second after the hole, so
  nothing shows whether the answer's first segment was dropped on the path (sent long before its
  last) or was still on its way: whether the server or the path kept the client waiting cannot be
  told: incomplete (not the client, which waited 3 s).
- ``jitter-answer-hole-two-taps.pcap``: the same conversation merged from two taps, the client's
  5 ms behind: the client's FIN is filed before the server's answer, the hole and its small last
  segment. Where the capture files the hole is the order of the taps, not of the wire: the
  verdict is the same, incomplete (not "the client closed before the ServerHello": the server's
  TLS records in the capture all come after bytes of its answer that are missing, so nothing
  shows what its answer began with, nor that it had not begun before the client's close).
  The hole, never acknowledged, is declared only when the flow closes, so even the one-tap capture
  files it after the client's close.
- ``jitter-answer-hole-quick-close.pcap`` (control): the server answers 90 ms after the
  ClientHello, the same hole, and the client closes 0.1 s after its ClientHello: it did not wait
  for an answer, and never had the missing bytes (it never acknowledged them): the client ended
  the handshake, as without the hole.
- ``jitter-hello-hole-server-waited.pcap``: the other direction: the client sends its ClientHello
  2 s after the 220, its full-size first segment not in the capture (never acknowledged by the
  server), its small last segment captured, and the server closes 0.2 s later, 2.2 s after its
  220: what the client's TLS began with, and whether the server had it when it closed, cannot be
  told: incomplete (not the server closing before the ServerHello).
- ``jitter-hello-hole-server-quick.pcap`` (control): the ClientHello 10 ms after the 220 and the
  server's close 0.2 s after its 220: it did not wait: the server ended the handshake.
"""
from __future__ import annotations

from generate import (
    READY, STARTTLS, Capture, Conv, Expect, client_hello, opening, server_flight_tls12,
)

#: how long the slow server takes to answer the ClientHello, and how long the client waits
ANSWER_MS = 2990.0
#: the client's close after the server's last segment (within the 5 ms the taps are off)
CLOSE_AFTER_MS = 2.0
#: the server's close after the ClientHello's last segment (sooner than a hole's proof, 1 s)
SERVER_CLOSE_MS = 200.0
#: the controls: a server that answers the ClientHello at once, a client slow to send it
QUICK_ANSWER_MS = 90.0
SLOW_HELLO_MS = 2000.0
#: the client's tap behind the server's
SKEW_MS = -5.0


def answer_hole_conv(cport: int, answer_ms: float = ANSWER_MS) -> Conv:
    """The server's answer to the ClientHello ``answer_ms`` after it, its full-size segment missing
    (never acknowledged) and its small last segment captured, then the client's close right after."""
    conv = opening(Conv(cport=cport, close=("fin", "C")))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"jitter answer {cport}", "mx.example.com"), tag="client_hello")
    flight, _ = server_flight_tls12(f"jitter answer {cport}", "mx.example.com")
    conv.s([flight[:-60], flight[-60:]], tag="flight", lost={0}, resend_ms=(), delay_ms=answer_ms,
           marks={"after_hole": len(flight) - 60})
    return conv.fin("C", tag="client_fin", delay_ms=CLOSE_AFTER_MS)


def hello_hole_conv(cport: int, hello_ms: float) -> Conv:
    """The client's ClientHello ``hello_ms`` after the 220, its full-size first segment missing
    (never acknowledged by the server) and its small last segment captured; the server closes
    0.2 s later, the client 2 ms after that."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    hello = client_hello(f"jitter hello {cport}", "mx.example.com")
    conv.c([hello[:-60], hello[-60:]], tag="client_hello", lost={0}, resend_ms=(), delay_ms=hello_ms,
           marks={"after_hole": len(hello) - 60})
    conv.fin("S", tag="server_fin", delay_ms=SERVER_CLOSE_MS)
    return conv.fin("C", tag="client_fin", delay_ms=CLOSE_AFTER_MS)


def scenarios() -> list[Capture]:
    unknown = Expect("incomplete", "unknown", "incomplete", "valid", True, 220,
                     [("tcp-gap", "capture", "after_hole")])
    return [
        Capture("jitter-answer-hole-one-tap.pcap",
                "the server answers the ClientHello 2.99 s late; the answer's full-size segment is not in the "
                "capture and not acknowledged, its small last segment is; the client closes 2 ms later: "
                "whether the answer held an alert or reached the client cannot be told (incomplete)",
                [(answer_hole_conv(47420), unknown)]),
        Capture("jitter-answer-hole-two-taps.pcap",
                "jitter-answer-hole-one-tap.pcap merged from two taps, the client's 5 ms behind: the client's "
                "FIN is filed before the server's answer with its hole; the same verdict (incomplete), not the "
                "client closing before the ServerHello",
                [(answer_hole_conv(47421), unknown)], client_skew_ms=SKEW_MS),
        Capture("jitter-answer-hole-quick-close.pcap",
                "control: as jitter-answer-hole-one-tap.pcap, but the server answers 90 ms after the ClientHello "
                "and the client closes 0.1 s after it: it did not wait, and never had the missing bytes (it "
                "never acknowledged them): the client ended the handshake",
                [(answer_hole_conv(47423, answer_ms=QUICK_ANSWER_MS),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                         [("tcp-gap", "capture", "after_hole")]))]),
        Capture("jitter-hello-hole-server-waited.pcap",
                "the client sends its ClientHello 2 s after the 220; its full-size segment is not in the capture "
                "and not acknowledged, its small last segment is; the server, which waited 2.2 s, closes 0.2 s "
                "after that: what the client's TLS began with, and whether the server had it when it closed, "
                "cannot be told (incomplete, not the server closing before the ServerHello)",
                [(hello_hole_conv(47422, SLOW_HELLO_MS), unknown)]),
        Capture("jitter-hello-hole-server-quick.pcap",
                "control: as jitter-hello-hole-server-waited.pcap, but the ClientHello comes 10 ms after the 220 "
                "and the server closes 0.2 s after its 220: it did not wait, and never had the missing bytes: "
                "the server ended the handshake",
                [(hello_hole_conv(47424, 10.0),
                  Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         [("tcp-gap", "capture", "after_hole")]))]),
    ]
