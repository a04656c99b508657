"""Misbehaving servers and clients around STARTTLS that no capture pinned before (the seventeenth
session's hunt): each one a verdict that was wrong.

- ``pathhole-client-flight-head-lost.pcap``: ``pathhole-client-flight-tls12.pcap`` (a TLS 1.2
  client's certificate flight that a path MTU black hole drops; the client resends it and gives
  up 30 s later) with the flight's first segment missing from the capture too. The client's
  close is read only after the hole, which nobody acknowledged and which is declared when the
  flow closes, so it was read after the server's close that came later: the server was blamed
  for closing "after the ServerHello". The server's acknowledgements show it never received the
  flight, whatever the hole held: the path's, as in the whole capture (``middlebox``,
  ``request-not-received`` at the ChangeCipherSpec the capture does hold).
"""
from __future__ import annotations

from generate import (
    READY, STARTTLS, Capture, Conv, Expect, client_finish_tls12, client_hello, det, handshake, opening, record,
    server_flight_tls12, u24,
)
from scenarios_hunt import CCS


def client_flight_head_lost() -> Capture:
    label = "hunt3 blackhole"
    c = opening(Conv(cport=46301, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello(label, "mx.example.com"), tag="client_hello")
    c.s(server_flight_tls12(label, "mx.example.com")[0], tag="server_hello")
    chain = det(label + " client chain", 1500)
    flight = record(22, handshake(11, u24(len(chain) + 3) + u24(len(chain)) + chain)) + client_finish_tls12(label)
    # the flight as the path MTU cuts it: 1460 bytes, then the rest (with the ChangeCipherSpec);
    # the first is missing from the capture as well, every copy of it
    c.c([flight[:1460], flight[1460:]], tag="client_flight", lost=[0],
        marks={"after_hole": 1460, "client_ccs": CCS}, resend_ms=(1000, 3000, 7000))
    c.fin("C", delay_ms=30000)
    return Capture(
        "pathhole-client-flight-head-lost.pcap",
        "pathhole-client-flight-tls12 with the flight's first segment (and its resent copies) missing from the "
        "capture: the client's close is read after the hole, declared when the flow closes",
        [(c, Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                    findings=[("request-not-received", "middlebox", "client_ccs"),
                              ("tcp-gap", "capture", "after_hole")]))])



def scenarios() -> list[Capture]:
    return [client_flight_head_lost()]
