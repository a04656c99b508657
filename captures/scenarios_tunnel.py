"""Tunnels whose outer packets were fragmented on the way to the analyzer.

A mirror session in VXLAN adds 50 bytes (outer IPv4, UDP, VXLAN, inner Ethernet header) to each
mirrored frame: a full-size 1514-byte frame of the mirrored link no longer fits an underlay of
MTU 1500, so the switch sends the outer IP packet in two fragments (the underlay of cloud traffic
mirroring and of many collectors is such a network). Here every full-size segment of a STARTTLS
conversation is in fragments, the last fragment first (as parallel paths and some senders deliver
them): the server's first TLS flight segment among them, so the verdict depends on putting them
back together.
"""
from __future__ import annotations

from generate import (
    MSS, STARTTLS, READY, TLS_OK, Capture, Conv, EHLO, EHLO_NO_TLS, MAIL_STEPS, QUIT_STEPS, _ed_key, app_data,
    certificate, client_finish_tls12, client_hello, close_notify, det, ext, handshake, opening, record,
    server_finish_tls12, u8, u16, u24, x25519_pub,
)


def _long_chain_flight(label: str, name: str) -> bytes:
    """ServerHello, Certificate with a leaf and four CA certificates (a chain of about 2 KB, as
    a real RSA chain is), ServerKeyExchange, ServerHelloDone."""
    srnd = det(label + " server random", 32)
    exts = ext(0xFF01, u8(0)) + ext(11, u8(1) + u8(0)) + ext(23, b"")
    sh = record(22, handshake(2, u16(0x0303) + srnd + u8(32) + det(label + " server session", 32)
                              + u16(0xC02B) + u8(0) + u16(len(exts)) + exts))
    certs = [certificate(name)] + [certificate(f"pcapsmtp Test CA {k}", self_signed=True) for k in range(4)]
    chain = b"".join(u24(len(c)) + c for c in certs)
    cert = record(22, handshake(11, u24(len(chain)) + chain))
    params = u8(3) + u16(0x001D) + u8(32) + x25519_pub(label + " server share")
    sig = _ed_key("pcapsmtp leaf " + name).sign(det(label + " client random", 32) + srnd + params)
    ske = record(22, handshake(12, params + u16(0x0807) + u16(len(sig)) + sig))
    return sh + cert + ske + record(22, handshake(14, b""))


def _full_size_starttls(label: str, cport: int) -> Conv:
    """STARTTLS accepted; the server's flight and the message (a 6 KB body) in full-size segments."""
    c = opening(Conv(cport=cport))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello(label, "mx.example.com"), tag="client_hello")
    c.s(_long_chain_flight(label, "mx.example.com"), tag="server_hello", split=MSS)
    c.c(client_finish_tls12(label))
    c.s(server_finish_tls12(label))
    encrypted = [("C", EHLO), ("S", EHLO_NO_TLS)] + MAIL_STEPS + QUIT_STEPS
    for k, (side, text) in enumerate(encrypted):
        size = 6000 if text.startswith(b"Subject:") else len(text)
        c.step(side, app_data(f"{label} appdata {k}", size), split=MSS)
    c.c(close_notify(label + " client close"))
    c.s(close_notify(label + " server close"))
    return c


def scenarios() -> list[Capture]:
    return [
        Capture("seed-vxlan-fragments.pcap",
                "a VXLAN mirror session over an IPv4 underlay of MTU 1500: each full-size mirrored frame (the "
                "server's first TLS flight segment, the message) arrives as two outer IP fragments, the last one "
                "first; reassembled, the STARTTLS conversation inside is complete (tls-established)",
                [(_full_size_starttls("vxlan fragments", 46200), TLS_OK)],
                link="vxlan", underlay_mtu=1500, underlay_reversed=True),
        Capture("seed-vxlan6-fragments.pcap",
                "the same over an IPv6 underlay of MTU 1500: outer IPv6 fragments (fragment header), the last "
                "one first",
                [(_full_size_starttls("vxlan6 fragments", 46201), TLS_OK)],
                link="vxlan6", underlay_mtu=1500, underlay_reversed=True),
    ]
