"""Every byte of the server's direction lost from the capture (the client's ACKs and the server's
FIN show that the server did send them): the server did not stay silent, so nothing may be
read as "closed without a greeting" or as a client that gave up on a server that never
answered. Found by dropping two data segments at once from the corpus captures.
"""
from __future__ import annotations

from generate import BANNER, Capture, Conv, Expect, client_hello


def plaintext_server_lost() -> Capture:
    # tests__smtp-no-helo-quit__input.pcap of the corpus, with its two server segments lost
    c = Conv(cport=40913, close=("fin", "S"))
    c.s(BANNER, tag="banner", lost=[0]).c(b"QUIT\r\n", tag="quit")
    c.s(b"221 2.0.0 Bye\r\n", tag="bye", lost=[0])
    return Capture(
        "lost-server-direction.pcap",
        "the server's greeting and its 221 are both missing from the capture (the client ACKed "
        "them, the server's FIN comes after them); the client sent QUIT: the greeting was lost, "
        "not refused",
        [(c, Expect("incomplete", "unknown", "incomplete", "unknown",
                    findings=[("tcp-gap", "capture", "quit"), ("tcp-gap", "capture", "label:fin:S")]))])


def implicit_server_lost() -> Capture:
    # an SMTPS client whose server answered in plaintext, both server segments lost
    c = Conv(cport=40914, sport=465, close=("fin", "C"))
    c.s(BANNER, tag="banner", lost=[0])
    c.c(client_hello("lost-direction 465", "mx.example.com"), tag="client_hello")
    c.s(b"500 5.5.1 command unrecognized\r\n", tag="reply", lost=[0])
    return Capture(
        "lost-server-direction-465.pcap",
        "port 465: the server's two segments (a plaintext banner and an error) are missing from "
        "the capture; the client's ClientHello, then the client closes: what the server sent, "
        "and so who ended the handshake, is not in the capture",
        [(c, Expect("incomplete", "unknown", "incomplete", "unknown",
                    findings=[("tcp-gap", "capture", "client_hello"),
                              ("tcp-gap", "capture", "label:fin:C")]))])


def scenarios() -> list[Capture]:
    return [plaintext_server_lost(), implicit_server_lost()]
