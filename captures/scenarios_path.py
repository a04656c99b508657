"""The server's answer lost on the path: captured on the server's side, the server answers the
ClientHello (ServerHello, certificate), resends it, and the client never acknowledges a byte of
it until it gives up and closes: a path MTU black hole (the certificate needs full-size
packets, a smaller link drops them and a firewall blocks the ICMP that would say so) or a box
that drops the server's TLS. The client saw a silent server; the server did its part; the
path caused it (``tls-handshake-failed``, ``middlebox``, case ``answer-lost``, finding
``answer-not-received`` at the ServerHello). Against it, the same flight delivered (the client
acknowledges it) and a client that then closes: that client ended the handshake.
"""
from __future__ import annotations

from generate import (
    READY, STARTTLS, Capture, Conv, Expect, client_hello, did_not_request_conv, opening,
    server_flight_tls12,
)

#: the server's retransmission timeouts after its flight (as Linux's doubling RTO would send them)
RESEND_MS = (1000.0, 3000.0)


def answer_lost_conv(cport: int, *, resend: bool = True, wait_ms: float = 3000.0,
                     hello_through: bool = False) -> Conv:
    """STARTTLS, 220, the ClientHello, the server's flight (black-holed when ``resend``: resent,
    never acknowledged; with ``hello_through`` its ServerHello record goes first in a small
    segment of its own and gets through), and the client's close ``wait_ms`` after the last
    copy."""
    conv = opening(Conv(cport=cport, close=("fin", "C")))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"path {cport}", "mx.example.com"), tag="client_hello")
    flight, hello_len = server_flight_tls12(f"path {cport}", "mx.example.com")
    if hello_through:
        conv.s(flight[:hello_len], tag="flight")
        conv.s(flight[hello_len:], tag="flight_rest", resend_ms=RESEND_MS if resend else None, delay_ms=0.1)
    else:
        conv.s(flight, tag="flight", resend_ms=RESEND_MS if resend else None)
    return conv.fin("C", tag="client_fin", delay_ms=wait_ms)


def request_lost_conv(cport: int, *, what: str, through: bool = False,
                      wait_ms: float = 3000.0) -> Conv:
    """Captured on the client's side: ``what`` ("starttls" or "hello") is sent, resent and
    never acknowledged by the server (its ACKs after it stay before it; with ``through`` the
    ClientHello's first 60 bytes go in a segment of their own and get through), and the client
    closes ``wait_ms`` after the last copy; the server acknowledges the FIN's arrival with its
    duplicate ACK (it cannot take the FIN after the bytes it lacks, so it does not close)."""
    conv = opening(Conv(cport=cport, close=None))
    if what == "starttls":
        conv.c(STARTTLS, tag="starttls", resend_ms=RESEND_MS)
        return conv.fin("C", tag="client_fin", delay_ms=wait_ms)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    hello = client_hello(f"path {cport}", "mx.example.com")
    if through:
        conv.c(hello[:60], tag="client_hello")
        conv.c(hello[60:], tag="hello_rest", resend_ms=RESEND_MS, delay_ms=0.1)
    else:
        conv.c(hello, tag="client_hello", resend_ms=RESEND_MS)
    return conv.fin("C", tag="client_fin", delay_ms=wait_ms)


def scenarios() -> list[Capture]:
    lost = Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                  [("answer-not-received", "middlebox", "flight")])
    return [
        Capture("path-answer-lost.pcap",
                "captured at the server: its ServerHello and certificate are resent twice and never "
                "acknowledged; 3 s after the last copy the client closes (a path MTU black hole, or a box "
                "dropping the server's TLS)",
                [(answer_lost_conv(47301), lost)]),
        Capture("path-answer-lost-fallback.pcap",
                "stream 0 as path-answer-lost.pcap; 1 s later stream 1: the client retries in plaintext "
                "(Postfix after a failed handshake)",
                [(answer_lost_conv(47302), lost),
                 (did_not_request_conv(cport=47303, isn=(0x0BADCAFE, 0x0DEFACED), start_offset_ms=9000),
                  Expect("plaintext", "middlebox", "tls-fallback", "valid"))]),
        Capture("path-answer-partly-lost.pcap",
                "as path-answer-lost.pcap, but the ServerHello goes in a small segment of its own and gets "
                "through (the client acknowledges it); the full-size segments of the certificate after it are "
                "resent and never acknowledged: the classic path MTU black hole",
                [(answer_lost_conv(47305, hello_through=True), lost)]),
        Capture("path-hello-lost.pcap",
                "captured at the client: after the 220 to STARTTLS its ClientHello is resent twice and "
                "never acknowledged (the server's duplicate ACK after the client's FIN stays before "
                "it); 3 s after the last copy the client closes: the ClientHello never reached the "
                "server (a path MTU black hole, a box dropping TLS), no server hang",
                [(request_lost_conv(47306, what="hello"),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                         [("request-not-received", "middlebox", "client_hello")]))]),
        Capture("path-hello-partly-lost.pcap",
                "as path-hello-lost.pcap, but the ClientHello's first 60 bytes go in a small segment "
                "of their own and are acknowledged; the rest is resent and never acknowledged",
                [(request_lost_conv(47307, what="hello", through=True),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                         [("request-not-received", "middlebox", "client_hello")]))]),
        Capture("path-starttls-lost.pcap",
                "captured at the client: STARTTLS is resent twice and never acknowledged; 3 s after "
                "the last copy the client closes: the command never reached the server",
                [(request_lost_conv(47308, what="starttls"),
                  Expect("aborted", "middlebox", "starttls-refused", "valid", True, None,
                         [("request-not-received", "middlebox", "starttls")]))]),
        Capture("path-starttls-lost-fallback.pcap",
                "stream 0 as path-starttls-lost.pcap; 1 s later stream 1: the client retries in plaintext "
                "(an opportunistic MTA after a STARTTLS that timed out)",
                [(request_lost_conv(47309, what="starttls"),
                  Expect("aborted", "middlebox", "starttls-refused", "valid", True, None,
                         [("request-not-received", "middlebox", "starttls")])),
                 (did_not_request_conv(cport=47310, isn=(0x0BADCAFE, 0x0DEFACED), start_offset_ms=1000),
                  Expect("plaintext", "middlebox", "tls-fallback", "valid"))]),
        Capture("path-answer-received.pcap",
                "the same flight, delivered: the client acknowledges it, sends nothing and closes 3 s "
                "later: the client ended the handshake",
                [(answer_lost_conv(47304, resend=False),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                         [("client-silent", "client", "flight")]))]),
    ]
