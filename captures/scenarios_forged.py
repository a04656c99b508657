"""Resets forged by a box on the path. Firewalls, IPSs and DPI boxes kill STARTTLS or TLS by
injecting TCP resets, to both ends, each with the address of the other end: an IPS "reset-both"
action on the STARTTLS command or on the ClientHello's server name, an ESMTP inspection that resets
the session. A host sends every packet of a connection with one initial TTL (IPv4) or hop limit
(IPv6) over one path, so they arrive with one value; the box, at another distance or with another
initial TTL (64, 128, 255), gives its reset another. So a reset whose TTL lies outside its side's
(by more than one hop; one segment of the side after the handshake is enough) was not sent by that side:
``caused_by`` is ``middlebox``, finding ``reset-forged`` at the reset, case ``reset-forged``.

Captured on the client's side (the client's packets at TTL 64, the server's at 52): the box
resets at STARTTLS (TTL 250, a box with initial TTL 255 five hops out) or after the ClientHello
(TTL 61: initial 64, three hops from the client), over IPv4 and IPv6. Captured on the server's
side (the server's packets at 64, the client's at 49): the reset with the client's address comes
instead of the ClientHello, or after the EHLO reply (the box ate STARTTLS).

Controls that stay the side's: the server's own reset (its TTL), a server whose TTL moves by one
hop during the conversation (a route change), a reset one hop off, a reset whose TTL is not known
(0), and an SMTPS ClientHello reset before the server sent anything after the handshake (nothing to
compare with: its SYN-ACK does not count, a SYN proxy may have sent it).

A box that copies the side's TTL (or sits where its reset arrives with the same one) leaves the TTL
alone; what gives it away is the side it impersonates going on (``tcp-reset-race-*``): a stack that
resets a connection sends nothing more on it, but the real end behind a forged reset does, at the
reset's sequence number or beyond (tcp/events.py ``SentAfterReset``). Captured at the client, the box
resets both ends at STARTTLS (it forwarded STARTTLS: the server's 220 comes after "its" reset) or at
the ClientHello (the ServerHello comes after it), and the client's stack answers that late segment
with a reset of its own. Captured at the server, the box resets the server in the client's name and
drops the client's segment: the client's retransmission of STARTTLS or of its ClientHello comes
after "its" reset, and the server's stack answers it with a reset. Controls that stay the side's:
its reset and then silence; its reset, the peer's segment that crossed it, and a second reset of the
side answering that (a stack's answer for a connection it no longer has); the side's last bytes
sent before its reset but captured after it (a reordered capture: they lie below the reset's
sequence number); and a new connection on the same 4-tuple (a new SYN) right after the reset.
"""
from __future__ import annotations

from typing import Any

from generate import (
    READY, STARTTLS, Capture, Conv, Expect, Pkt, client_hello, did_not_request_conv, opening,
    server_flight_tls12,
)

FORGED = ("reset-forged", "middlebox", "label:rst")


def at_starttls(cport: int, ttl: int | None, *, seen_at_server: bool = False) -> Conv:
    """STARTTLS, and instead of its answer a reset: with the server's address to the client
    (``seen_at_server`` False: the capture shows STARTTLS, which the server never acknowledges),
    or with the client's address to the server (True: the box ate STARTTLS, the capture shows
    the EHLO reply and the client's ACK, then the reset)."""
    conv = opening(Conv(cport=cport, close=None))
    if seen_at_server:
        return conv.rst("C", ttl=ttl, delay_ms=12.0)
    conv.c(STARTTLS, tag="starttls", acked=False)
    return conv.rst("S", ttl=ttl, delay_ms=0.4)


def after_hello(cport: int, ttl: int | None, *, seen_at_server: bool = False,
                ready_ttl: int | None = None) -> Conv:
    """STARTTLS, 220 (its segment at ``ready_ttl``), then the ClientHello and a reset with the
    server's address instead of the ServerHello (captured at the client), or a reset with the
    client's address instead of the ClientHello (captured at the server)."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply", ttl=ready_ttl)
    if seen_at_server:
        return conv.rst("C", ttl=ttl, delay_ms=2.0)
    conv.c(client_hello(f"forged {cport}", "mx.example.com"), tag="client_hello", acked=False)
    return conv.rst("S", ttl=ttl, delay_ms=0.6)


def at_ehlo(cport: int, ttl: int | None) -> Conv:
    """Captured at the client: the banner, EHLO (the server acknowledges it: an ESMTP inspection
    that lets it through and resets when the server's EHLO reply offers STARTTLS), and a reset
    with the server's address instead of the EHLO reply."""
    conv = Conv(cport=cport, close=None)
    conv.s(b"220 mx.example.com ESMTP Postfix\r\n", tag="banner")
    conv.c(b"EHLO client.example.org\r\n", tag="greeting")
    return conv.rst("S", ttl=ttl, delay_ms=0.5)


def smtps_hello(cport: int, ttl: int | None) -> Conv:
    """Captured at the client, SMTPS (port 465): the ClientHello first, which the box drops, and a
    reset with the server's address: nothing of the server after the handshake to compare with."""
    conv = Conv(cport=cport, sport=465, close=None)
    conv.c(client_hello(f"forged {cport}", "mx.example.com"), tag="client_hello", acked=False)
    return conv.rst("S", ttl=ttl, delay_ms=0.6)


def race_starttls(cport: int, *, own: bool = False) -> Conv:
    """Captured at the client: STARTTLS, a reset with the server's address and TTL (the box
    copies it), and then the server's real 220 at the reset's sequence number (it got STARTTLS
    before its own reset), which the client's stack answers with a reset (``own``: the server's
    reset and then silence)."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls", acked=False)
    conv.rst("S", delay_ms=0.4)
    if own:
        return conv
    conv.s(READY, acked=False, delay_ms=0.3)
    return conv.rst("C", label="answer", delay_ms=0.05)


def race_hello(cport: int) -> Conv:
    """Captured at the client: STARTTLS, 220, the ClientHello, a reset with the server's address
    and TTL, then the server's real ServerHello flight at the reset's sequence number; the
    client's stack answers it with a reset."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"race {cport}", "mx.example.com"), tag="client_hello", acked=False)
    conv.rst("S", delay_ms=0.6)
    flight, _ = server_flight_tls12(f"race {cport}", "mx.example.com")
    conv.s(flight, acked=False, delay_ms=0.5)
    return conv.rst("C", label="answer", delay_ms=0.05)


def race_at_server(cport: int, *, hello: bool) -> Conv:
    """Captured at the server: a reset with the client's address and TTL instead of STARTTLS
    (``hello`` False: after the EHLO reply) or of the ClientHello (True: after the 220), which
    the box dropped; the client, which got no reset, sends it again 300 ms later at the reset's
    sequence number, and the server's stack answers with a reset."""
    conv = opening(Conv(cport=cport, close=None))
    if hello:
        conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.rst("C", delay_ms=2.0)
    again = client_hello(f"race {cport}", "mx.example.com") if hello else STARTTLS
    conv.c(again, acked=False, delay_ms=300.0)
    return conv.rst("S", label="answer", delay_ms=0.2)


def crossed(cport: int) -> Conv:
    """Captured at the server: the server resets after its EHLO reply (its own stack, its TTL);
    the client's STARTTLS, sent before the reset reached it and lost on the way, comes again
    200 ms later (its retransmission), and the server's stack answers it with a second reset (no
    connection any more)."""
    conv = opening(Conv(cport=cport, close=None))
    conv.rst("S", delay_ms=5.0)
    conv.c(STARTTLS, acked=False, delay_ms=200.0)
    return conv.rst("S", label="answer", delay_ms=0.1)


class Overtaken(Conv):
    """A conversation whose reset is captured before the last data segment of its side that
    was sent before it (a capture that reorders one direction: ``-i any`` on a multi-queue
    NIC): the two packets swap places and timestamps."""

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, Any]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        i = next(k for k, p in enumerate(pkts) if p.label == "rst")
        j = max(k for k in range(i) if pkts[k].side == pkts[i].side and pkts[k].payload)
        a, b = pkts[j], pkts[i]
        pkts[j], pkts[i] = Pkt(**{**b.__dict__, "ts_ns": a.ts_ns}), Pkt(**{**a.__dict__, "ts_ns": b.ts_ns})
        return pkts, marks


def overtaken(cport: int) -> Conv:
    """Captured at the client: after STARTTLS the server sends a 421 and resets; the capture has
    the reset first, then the 421 (below the reset's sequence number: sent before it)."""
    conv = opening(Overtaken(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls", acked=False)
    conv.s(b"421 4.3.2 Service shutting down\r\n", acked=False)
    return conv.rst("S", delay_ms=0.1)


def scenarios() -> list[Capture]:
    refused = Expect("aborted", "middlebox", "starttls-refused", "valid", True, None, [FORGED])
    handshake = Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220, [FORGED])
    not_started = Expect("aborted", "middlebox", "tls-not-started", "valid", True, 220, [FORGED])
    no_mail = Expect("aborted", "middlebox", "no-mail-transaction", "valid", False, None, [FORGED])
    own_handshake = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220)
    at_server = (49, 64)            # the capture on the server's side: the client 15 hops out
    return race(refused, handshake, not_started, no_mail, at_server) + [
        Capture("tcp-reset-forged-starttls.pcap",
                "captured at the client: an IPS resets at STARTTLS, the reset with the server's address "
                "comes with TTL 250 where every segment of the server came with 52 (stream 0); 1 s later "
                "the client retries in plaintext (stream 1: the fallback the box caused)",
                [(at_starttls(47601, 250), refused),
                 (did_not_request_conv(cport=47602, isn=(0x0BADCAFE, 0x0DEFACED), start_offset_ms=1000),
                  Expect("plaintext", "middlebox", "tls-fallback", "valid"))]),
        Capture("tcp-reset-forged-starttls-ipv6.pcap",
                "as tcp-reset-forged-starttls.pcap stream 0 over IPv6: the reset's hop limit 62 (a box "
                "two hops from the client), the server's 52",
                [(at_starttls(47603, 62), refused)], ipv=6),
        Capture("tcp-reset-forged-hello.pcap",
                "captured at the client: a DPI box resets after the ClientHello (to both ends); the client "
                "gets a reset with the server's address and TTL 61, the server's segments came with 52",
                [(after_hello(47604, 61), handshake)]),
        Capture("tcp-reset-forged-hello-ipv6.pcap",
                "as tcp-reset-forged-hello.pcap over IPv6: the reset's hop limit 250, the server's 52",
                [(after_hello(47605, 250), handshake)], ipv=6),
        Capture("tcp-reset-forged-hello-server-side.pcap",
                "the same box seen from the server's side: after the 220 the ClientHello never comes, a "
                "reset with the client's address does, TTL 250 where the client's segments came with 49",
                [(after_hello(47606, 250, seen_at_server=True), not_started)], ttl=at_server),
        Capture("tcp-reset-forged-hello-server-side-ipv6.pcap",
                "as tcp-reset-forged-hello-server-side.pcap over IPv6: the reset's hop limit 58, the "
                "client's 49",
                [(after_hello(47607, 58, seen_at_server=True), not_started)], ipv=6, ttl=at_server),
        Capture("tcp-reset-forged-starttls-server-side.pcap",
                "the IPS at STARTTLS seen from the server's side: after the EHLO reply a reset with the "
                "client's address, TTL 250 where the client's segments came with 49 (STARTTLS never "
                "arrives)",
                [(at_starttls(47608, 250, seen_at_server=True), no_mail)], ttl=at_server),
        Capture("tcp-reset-forged-ehlo.pcap",
                "captured at the client: an ESMTP inspection resets the session at the EHLO reply; the "
                "server's banner and its ACK of EHLO came with TTL 52, the reset with its address with 255",
                [(at_ehlo(47609, 255), Expect("aborted", "middlebox", "no-mail-transaction", "unknown",
                                              findings=[FORGED]))]),
        Capture("tcp-reset-own.pcap",
                "controls captured at the client, each stays the server's: its own reset after the "
                "ClientHello with its TTL 52 (stream 0); its 220 and its reset at 53 after 52 before "
                "(a route change, stream 1); everything at 52, the reset at 53 (one hop, stream 2) and at "
                "51 (stream 3)",
                [(after_hello(47611, None), own_handshake),
                 (after_hello(47612, 53, ready_ttl=53), own_handshake),
                 (after_hello(47613, 53), own_handshake),
                 (after_hello(47614, 51), own_handshake)]),
        Capture("tcp-reset-ttl-bounds.pcap",
                "captured at the client: the server's segments at 52, the reset two hops off, 54 (stream "
                "0) and 50 (stream 1): forged; after a route change (the 220 at 53) the reset at 55 "
                "(stream 2): forged",
                [(after_hello(47615, 54), handshake),
                 (after_hello(47616, 50), handshake),
                 (after_hello(47617, 55, ready_ttl=53), handshake)]),
        Capture("tcp-reset-ttl-unknown.pcap",
                "controls captured at the client, each stays the server's: the reset's TTL is 0, not "
                "known (stream 0); SMTPS, a box resets at the ClientHello (TTL 250) before the server sent "
                "anything after its SYN-ACK (stream 1: nothing to compare with)",
                [(after_hello(47618, 0), own_handshake),
                 (smtps_hello(47619, 250), Expect("aborted", "server", "tls-handshake-failed", "unknown"))]),
    ]


def race(refused: Expect, handshake: Expect, not_started: Expect, no_mail: Expect,
         at_server: tuple[int, int]) -> list[Capture]:
    """The box that copies the TTL: the side it impersonates goes on after "its" reset."""
    own_refused = Expect("aborted", "server", "starttls-refused", "valid", True, None)
    return [
        Capture("tcp-reset-race-starttls.pcap",
                "captured at the client: a box with the server's TTL (52) resets both ends at STARTTLS; "
                "the server got STARTTLS before its reset and its 220 comes after the reset with its "
                "address, at the reset's sequence number (the client's stack answers it with a reset)",
                [(race_starttls(47620), refused)]),
        Capture("tcp-reset-race-starttls-ipv6.pcap",
                "as tcp-reset-race-starttls.pcap over IPv6 (the reset at the server's hop limit 52)",
                [(race_starttls(47621), refused)], ipv=6),
        Capture("tcp-reset-race-hello.pcap",
                "captured at the client: a box with the server's TTL resets at the ClientHello; the "
                "server's ServerHello flight comes after the reset with its address, at its sequence "
                "number (the client's stack answers with a reset)",
                [(race_hello(47622), handshake)]),
        Capture("tcp-reset-race-hello-ipv6.pcap",
                "as tcp-reset-race-hello.pcap over IPv6",
                [(race_hello(47623), handshake)], ipv=6),
        Capture("tcp-reset-race-server-side.pcap",
                "captured at the server: a box with the client's TTL (49) drops STARTTLS and resets the "
                "server in the client's name (stream 0), or drops the ClientHello (stream 1); the client "
                "sends it again 300 ms later at the reset's sequence number and the server's stack "
                "answers with a reset",
                [(race_at_server(47624, hello=False), no_mail),
                 (race_at_server(47625, hello=True), not_started)], ttl=at_server),
        Capture("tcp-reset-race-server-side-ipv6.pcap",
                "as tcp-reset-race-server-side.pcap over IPv6",
                [(race_at_server(47626, hello=False), no_mail),
                 (race_at_server(47627, hello=True), not_started)], ipv=6, ttl=at_server),
        Capture("tcp-reset-race-controls.pcap",
                "controls, never a box's: captured at the client, its reset at STARTTLS and "
                "then silence (stream 0); the 421 it sent before its reset captured after it, below the "
                "reset's sequence number (stream 1: the reset waits for it, the 421 is read, as in capture "
                "order: the server refused STARTTLS and reset)",
                [(race_starttls(47628, own=True), own_refused),
                 (overtaken(47629), Expect("aborted", "server", "starttls-refused", "valid", True, 421,
                                           [("server-closed", "server", "label:rst")]))]),
        Capture("tcp-reset-race-crossed.pcap",
                "control captured at the server, no box blamed: the server resets after its EHLO reply; "
                "the client's STARTTLS that crossed the reset (lost on the way) comes again 200 ms later "
                "and the server's stack answers it with a second reset",
                [(crossed(47630), Expect("aborted", "none", "no-mail-transaction", "valid"))],
                ttl=at_server),
        Capture("tcp-reset-race-reuse.pcap",
                "control captured at the client: the server resets at STARTTLS (stream 0); 500 ms later "
                "the client connects again from the same port (a new SYN on the same 4-tuple, stream 1) "
                "and the server's greeting and replies there are another connection's",
                [(race_starttls(47631, own=True), own_refused),
                 (did_not_request_conv(cport=47631, isn=(0x0C0FFEE0, 0x0FACADE0), start_offset_ms=500),
                  Expect("plaintext", "server", "tls-fallback", "valid"))]),
    ]
