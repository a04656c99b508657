"""Bytes dropped on the path that the capture does not hold either: a hole (``StreamGap``) the
receiver never acknowledged.

TCP acknowledges every byte that reaches the receiver, whatever its application does. So bytes
missing from a capture that the receiver never acknowledged, while a segment of its own captured a
second or more after the sender's next segment (its duplicate ACK, its close) still stays before
them, never reached it, wherever the capture was taken: the path dropped them (a capture that lost
them too changes nothing). The verdict is the one the same bytes get when they are captured and
never acknowledged (scenarios_path.py): the ClientHello (case ``hello-lost``), STARTTLS (case
``command-lost``, finding ``request-not-received``), the server's answer to the ClientHello (case
``answer-lost``, finding ``answer-not-received``), with the finding at the frame after the hole.

Each is built with ``lost`` (not in the capture) and ``resend_ms=()`` (a black hole: the receiver
never gets them, its ACKs stay before them). Controls that stay ``incomplete``: the same holes
acknowledged by the receiver (the capture's own loss), and a capture that ends right after the
receiver's duplicate ACK (nothing of the receiver's a while later: the bytes may have been late).
"""
from __future__ import annotations

from generate import (
    READY, STARTTLS, Capture, Conv, Expect, client_hello, opening, server_flight_tls12,
)

#: how long the clients wait before they give up
WAIT_MS = 3000.0
#: the server's own timeout after which it closes a connection that sends nothing (Postfix's
#: smtpd_timeout is 300 s; shorter here)
SERVER_TIMEOUT_MS = 10_000.0
#: a TCP sends a FIN past bytes it has not resent yet only before its first retransmission timeout
GIVE_UP_MS = 100.0
QUIT = b"QUIT\r\n"


def hello_hole_conv(cport: int, *, dropped: bool = True, server_closes: bool = True) -> Conv:
    """Captured behind a box that drops the ClientHello (``dropped``; else only the capture lost
    it and the server acknowledges it): the 220 to STARTTLS, the ClientHello missing, the
    client's FIN 0.1 s later (past the hole), the server's duplicate ACK; with ``server_closes``
    the server's own timeout closes the connection 10 s later, its FIN still acknowledging
    nothing of the ClientHello."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    hello = client_hello(f"gapack hello {cport}", "mx.example.com")
    conv.c(hello, tag="client_hello", lost={0}, resend_ms=() if dropped else None)
    conv.fin("C", tag="client_fin", delay_ms=GIVE_UP_MS)
    if server_closes:
        conv.fin("S", tag="server_fin", delay_ms=SERVER_TIMEOUT_MS)
    return conv


def hello_mtu_conv(cport: int) -> Conv:
    """A path MTU black hole, captured at the server: the ClientHello's full-size first segment is
    dropped, its small last segment (60 bytes) gets through and the server answers it with a
    duplicate ACK; 3 s later the client gives up and closes, and the server's ACK of that FIN
    still stays before the hole."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    hello = client_hello(f"gapack mtu {cport}", "mx.example.com")
    conv.c([hello[:-60], hello[-60:]], tag="client_hello", lost={0}, resend_ms=(),
           marks={"after_hole": len(hello) - 60})
    return conv.fin("C", tag="client_fin", delay_ms=WAIT_MS)


def starttls_hole_conv(cport: int, *, dropped: bool = True, server_closes: bool = True) -> Conv:
    """STARTTLS missing from the capture (``dropped``: never acknowledged; else acknowledged, the
    capture's loss, and the server hangs); 3 s later the client gives up: QUIT and its FIN, which
    the server answers with duplicate ACKs; with ``server_closes`` its timeout closes 10 s later."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls", lost={0}, resend_ms=() if dropped else None)
    conv.c(QUIT, tag="quit", delay_ms=WAIT_MS)
    conv.fin("C", tag="client_fin")
    if server_closes:
        conv.fin("S", tag="server_fin", delay_ms=SERVER_TIMEOUT_MS)
    return conv


def answer_hole_conv(cport: int, *, dropped: bool = True) -> Conv:
    """Captured at the client, behind a path MTU black hole: the ClientHello gets through, the
    server's answer (ServerHello, certificate...) is dropped but for its small last segment (60
    bytes), which the client answers with a duplicate ACK (``dropped``; else the client
    acknowledges the whole answer: only the capture lost it); 3 s later the client gives up and
    closes, the server closes too."""
    conv = opening(Conv(cport=cport, close=("fin", "C")))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"gapack answer {cport}", "mx.example.com"), tag="client_hello")
    flight, _ = server_flight_tls12(f"gapack answer {cport}", "mx.example.com")
    conv.s([flight[:-60], flight[-60:]], tag="flight", lost={0}, resend_ms=() if dropped else None,
           marks={"after_hole": len(flight) - 60})
    return conv.fin("C", tag="client_fin", delay_ms=WAIT_MS)


def scenarios() -> list[Capture]:
    hello_lost = Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                        [("request-not-received", "middlebox", "label:fin:C"),
                         ("tcp-gap", "capture", "label:fin:C")])
    return [
        Capture("pathhole-hello-fin.pcap",
                "captured behind a box that drops the ClientHello (not in the capture) and passes the client's "
                "FIN sent 0.1 s later; the server's duplicate ACK, and its FIN 10 s later (its own timeout), "
                "acknowledge nothing of the ClientHello: it never reached the server (hello-lost)",
                [(hello_hole_conv(47401), hello_lost)]),
        Capture("pathhole-hello-mtu.pcap",
                "a path MTU black hole captured at the server: the ClientHello's full-size segment never "
                "arrives, its small last segment does (a duplicate ACK); the client closes 3 s later and the "
                "server's ACK of that FIN still stays before the hole (hello-lost)",
                [(hello_mtu_conv(47402),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                         [("request-not-received", "middlebox", "after_hole"),
                          ("tcp-gap", "capture", "after_hole")]))]),
        Capture("pathhole-starttls-quit.pcap",
                "STARTTLS is not in the capture and the server never acknowledges it: 3 s later the client "
                "sends QUIT and closes (duplicate ACKs), and the server's FIN 10 s later still stays before "
                "STARTTLS: the command never reached the server (command-lost)",
                [(starttls_hole_conv(47403),
                  Expect("aborted", "middlebox", "starttls-refused", "valid", True, None,
                         [("request-not-received", "middlebox", "quit"),
                          ("tcp-gap", "capture", "quit")]))]),
        Capture("pathhole-answer-lost.pcap",
                "a path MTU black hole captured at the client: the server's answer to the ClientHello is "
                "not in the capture but for its small last segment, and the client's ACKs stay before it; "
                "3 s later the client gives up and closes (answer-lost)",
                [(answer_hole_conv(47404),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                         [("answer-not-received", "middlebox", "after_hole"),
                          ("tcp-gap", "capture", "after_hole")]))]),
        # controls
        Capture("pathhole-hello-acked.pcap",
                "control: as pathhole-hello-fin.pcap, but the server acknowledged the ClientHello: only the "
                "capture lost it, and what the server did with it may be in the hole's shadow: incomplete",
                [(hello_hole_conv(47405, dropped=False),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, 220,
                         [("tcp-gap", "capture", "label:fin:C")]))]),
        Capture("pathhole-hello-ends.pcap",
                "control: as pathhole-hello-fin.pcap, but the capture ends right after the server's duplicate "
                "ACK: nothing of the server's a while after the hole shows the ClientHello was not merely "
                "late: incomplete",
                [(hello_hole_conv(47406, server_closes=False),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, 220,
                         [("tcp-gap", "capture", "label:fin:C")]))]),
        Capture("pathhole-starttls-acked.pcap",
                "control: as pathhole-starttls-quit.pcap, but the server acknowledged the client's next "
                "command (only the capture lost it) and answered nothing: what it was is not known: incomplete",
                [(starttls_hole_conv(47407, dropped=False),
                  Expect("incomplete", "unknown", "incomplete", "valid", False, None,
                         [("tcp-gap", "capture", "quit")]))]),
        Capture("pathhole-starttls-ends.pcap",
                "control: as pathhole-starttls-quit.pcap, but the capture ends right after the client's QUIT "
                "and FIN (the server's duplicate ACKs): incomplete",
                [(starttls_hole_conv(47408, server_closes=False),
                  Expect("incomplete", "unknown", "incomplete", "valid", False, None,
                         [("tcp-gap", "capture", "quit")]))]),
        Capture("pathhole-answer-acked.pcap",
                "control: as pathhole-answer-lost.pcap, but the client acknowledged the server's answer (only "
                "the capture lost it) and closed 3 s later: whether the answer held an alert cannot be told: "
                "incomplete",
                [(answer_hole_conv(47409, dropped=False),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, 220,
                         [("tcp-gap", "capture", "after_hole")]))]),
    ]
