"""Captures of the server's direction only (asymmetric routing, a one-way tap, a `src port 25`
filter): what the server's EHLO reply shows.

Without the client's direction no command pairs the server's replies, and what the client did
is not in the capture: the verdict stays ``incomplete`` (docs/output.md, ``one-sided``). But
the server's first reply after its greeting answered the client's first command (its EHLO or
HELO), and a positive reply of two lines or more is an EHLO reply: its STARTTLS offer
(``starttls.offered``), its findings (a misplaced offer is the server's defect whoever the
client was) and the clients' prediction are read as in a whole capture. Controls: a one-line
250 (a HELO reply, or an EHLO reply without extensions: ``unknown``), a hole in the server's
direction before the reply (what the client read first is not known), a two-line 220 (a
proxy's second banner: 250 is EHLO's only success), and a reply that ends early with STARTTLS
in the next one (its rest and another command's answer look alike without the client's side).

Captures of the client's direction only on the SMTPS port 465 (a ``dst port 465`` filter): the
client's ClientHello, then its alert (in clear, or TLS 1.3's encrypted one, a record of alert
size) and its close. Whether the server answered with a certificate the client refused, with
plaintext SMTP, or not at all is not in the capture: ``incomplete``, the detail naming what the
client did and the frames (not ``aborted``/``client``: that it ended the handshake says nothing of
why).

Captures of the server's direction only where STARTTLS was answered 220 and the handshake began:
the server's bytes after the 220 are TLS (the session reads them so only when nothing of the
client is in the capture), so its certificate is read as in a whole capture, with its findings
(TLS 1.2); TLS 1.3 shows the ServerHello only; the server's fatal alert there is its ``tls-alert``
finding. The verdict stays ``incomplete``. The same reading when the client's packets come only
after the server's TLS (a late client tap): no one-sided capture, its holes make it ``incomplete``.
A client whose only packets are acknowledgements was captured: no ``one-sided`` finding.
The client's fatal alert after its holes, a record that starts cleanly, is read too (its
``tls-alert`` finding; still ``incomplete`` by the holes, its ClientHello among them). The tap of
the client's leg may start one packet earlier, with the client's acknowledgement of the 220 or
with its ClientHello, before the server's TLS: its ClientHello as its first bytes shows it read
the 220, so the TLS is read as TLS too, and the holes before it as in a capture that lost them in
its middle (the 220 answers the STARTTLS lost in them): the handshake after the 220 is whole, and
the client's alert ended it.

Captures of the client's direction only on port 25 after STARTTLS: its ClientHello is TLS also
when the server's SYN-ACK is in the capture (the client's acknowledgements then prove the server's
bytes lost: holes, its answer to STARTTLS among them; the detail says no packet of the server
after its SYN-ACK is there), when it rides in the segment of STARTTLS (sent without waiting for a
220), and when its head is lost in a hole (the bytes after the hole are the rest of the TLS the
client started, never plaintext injected after STARTTLS).
"""
from __future__ import annotations

from typing import Any

from generate import (
    BANNER, EHLO, EHLO_NO_TLS, EHLO_OK, READY, STARTTLS, lines, SEED_BANNER, SEED_REPLY, Capture, Conv, Expect, Pkt,
    alert, client_hello, det, ext, handshake, mail_in_clear, opening, record, server_flight_tls12, starttls_ok, u8,
    u16, x25519_pub,
)

ONE_SIDED = ("one-sided", "capture", "first_frame")


def server_only(cport: int) -> Conv:
    return Conv(cport=cport, only_side="S")


def unread(cport: int, reply: bytes | list[bytes], **reply_kw: Any) -> Conv:
    """A server-only opening whose reply after the greeting is not read as an EHLO reply (no
    ``ehlo_reply`` tag), then a mail transaction."""
    conv = server_only(cport).s(BANNER, tag="banner").c(EHLO, tag="greeting")
    return mail_in_clear(conv.s(reply, **reply_kw))


def client_only_465(cport: int, label: str, *, tls13: bool) -> Conv:
    """SMTPS, captured in the client's direction only: its ClientHello, the server's answer (not
    in the capture), the client's alert and its close. TLS 1.2: the server's flight with its
    certificate, the client's unknown_ca alert in clear; TLS 1.3: the ServerHello and the
    encrypted flight, the client's CCS and a 19-byte encrypted record (an alert by its size)."""
    conv = Conv(cport=cport, sport=465, close=("fin", "C"), only_side="C")
    conv.c(client_hello(label, "mx.example.com", tls13=tls13), tag="client_hello")
    if tls13:
        conv.s(record(22, det(label + " server hello", 118)) + record(20, b"\x01")
               + record(23, det(label + " server flight", 900)), tag="server_hello")
        conv.c(record(20, b"\x01") + record(23, det(label + " client alert", 19)), marks={"alert": 6})
    else:
        conv.s(server_flight_tls12(label, "mx.example.com")[0], tag="server_hello")
        conv.c(alert(48), tag="alert")
    return conv


def client_only_465_alert_reset(cport: int, label: str) -> Conv:
    """SMTPS in the client's direction only: its ClientHello, its fatal alert unknown_ca, then a
    reset with its address at TTL 250 (its own segments: 64): the alert ended the handshake,
    the box's reset came after it."""
    conv = Conv(cport=cport, sport=465, close=None, only_side="C")
    conv.c(client_hello(label, "mx.example.com", tls13=False), tag="client_hello")
    conv.c(alert(48), tag="alert", delay_ms=200)
    conv.rst("C", ttl=250, delay_ms=100)
    return conv


def client_only_465_reset(cport: int, label: str, *, ttl: int | None, goes_on: bool) -> Conv:
    """SMTPS in the client's direction only: its ClientHello, then half a second later a reset
    with its address, at TTL ``ttl`` (None: the client's own), and when ``goes_on`` the client's
    FIN after it (a stack that reset the connection sends nothing more on it): a box on the path
    forged the reset, positive evidence in the captured direction."""
    conv = Conv(cport=cport, sport=465, close=None, only_side="C")
    conv.c(client_hello(label, "mx.example.com", tls13=False), tag="client_hello")
    conv.rst("C", ttl=ttl, delay_ms=500)
    if goes_on:
        conv.fin("C", delay_ms=100, acked=False)
    return conv


def server_flight_tls13(label: str) -> bytes:
    """A TLS 1.3 ServerHello (supported_versions 0x0304), the compatibility CCS and the encrypted
    flight (EncryptedExtensions, Certificate, CertificateVerify, Finished: outer type 23)."""
    exts = ext(43, u16(0x0304)) + ext(51, u16(0x001D) + u16(32) + x25519_pub(label + " server share"))
    sh = record(22, handshake(2, u16(0x0303) + det(label + " server random", 32) + u8(32)
                              + det(label + " session id", 32) + u16(0x1301) + u8(0) + u16(len(exts)) + exts))
    enc = b"".join(record(23, det(f"{label} server enc {k}", n)) for k, n in enumerate([27, 700, 89, 53]))
    return sh + record(20, b"\x01") + enc


def server_only_handshake(cport: int, label: str, flight: bytes, client_end: bytes,
                          cert_at: int | None = None) -> Conv:
    """A server-only capture: a valid offer, STARTTLS answered 220, the server's TLS flight, and
    (not captured) the client's refusal; the server closes."""
    conv = opening(server_only(cport))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(label, "mx.example.com", tls13=True), tag="client_hello")
    conv.s(flight, tag="server_hello", marks={"certificate": cert_at} if cert_at is not None else None)
    conv.c(client_end)
    return conv


class LateClientTap(Conv):
    """A conversation whose client direction the capture holds only from the client step tagged
    ``from_tag`` on (a tap of the client's leg that started late): the server's packets are all
    there, the client's before that step are not (its SYN and its bytes the server acknowledged
    before: holes)."""

    def __init__(self, from_tag: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.from_tag = from_tag

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        side, start = marks[self.from_tag]
        assert side == "C"
        first = next(i for i, p in enumerate(pkts) if p.side == "C" and p.off == start)
        return [p for i, p in enumerate(pkts) if p.side == "S" or i >= first], marks


def server_tls_client_later(cport: int, label: str) -> Conv:
    """STARTTLS answered 220 and the server's TLS 1.2 flight, where the client's packets are in
    the capture only from its fatal alert on (after the server's flight): when the server's TLS
    came, nothing of the client had."""
    # (the EHLO reply untagged as such: its command is in a hole, so it is not read as one)
    return _tls_refused_by_client(LateClientTap("client_alert", cport=cport), label)


def _tls_refused_by_client(conv: Conv, label: str) -> Conv:
    """The dialogue of the late-client-tap captures: STARTTLS answered 220, the server's TLS 1.2
    flight, the client's fatal bad_certificate alert (the EHLO reply untagged as such: in the
    tap's cuts its command is in a hole, so it is not read as one)."""
    conv.s(BANNER, tag="banner").c(EHLO, tag="greeting")
    conv.s(EHLO_OK, tag="reply_after_greeting")
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(label, "mx.example.com", tls13=False), tag="client_hello")
    conv.s(server_flight_tls12(label, "mx.example.com")[0], tag="server_hello")
    conv.c(alert(42), tag="client_alert")
    return conv


class TapFrom(Conv):
    """A conversation whose client direction the capture holds only from the client packet that
    ``first`` picks (given the packets and the marks) on: the server's packets are all there."""

    def __init__(self, first: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.first = first

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        first = self.first(pkts, marks)
        return [p for i, p in enumerate(pkts) if p.side == "S" or i >= first], marks


def _ack_of(tag: str) -> Any:
    """The client's first packet after the server's step ``tag`` (its acknowledgement of it)."""
    def first(pkts: list[Pkt], marks: dict[str, tuple[str, int]]) -> int:
        side, start = marks[tag]
        i = next(i for i, p in enumerate(pkts) if p.side == side and p.off == start)
        return next(j for j in range(i, len(pkts)) if pkts[j].side == "C")
    return first


def _bytes_of(tag: str) -> Any:
    """The client's packet carrying the first byte of its step ``tag``."""
    def first(pkts: list[Pkt], marks: dict[str, tuple[str, int]]) -> int:
        side, start = marks[tag]
        return next(i for i, p in enumerate(pkts) if p.side == "C" and p.off == start)
    return first


def server_tls_client_from(cport: int, label: str, first: Any) -> Conv:
    """server_tls_client_later's conversation with the client's packets in the capture from an
    earlier packet on (``first``: its acknowledgement of the 220, or its ClientHello), before the
    server's TLS."""
    return _tls_refused_by_client(TapFrom(first, cport=cport), label)


class ClientAndSynAck(Conv):
    """A capture of the client's direction that holds the server's SYN-ACK too (a filter or tap
    that let the handshake through, or lost every later packet of the server)."""

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        return [p for p in pkts if p.side == "C" or p.flags == "SA"], marks


def client_starttls_variant(conv: Conv, label: str, *, one_segment: bool = False,
                            hello_head_lost: bool = False) -> Conv:
    """client_only_starttls's dialogue on ``conv``: STARTTLS and its ClientHello in one segment
    (``one_segment``, the 220 after both), or the ClientHello in two segments of which the first
    is not captured (``hello_head_lost``)."""
    conv = opening(conv)
    hello = client_hello(label, "mx.example.com", tls13=False)
    if one_segment:
        conv.c(STARTTLS + hello, tag="starttls", marks={"client_hello": len(STARTTLS)})
        conv.s(READY, tag="starttls_reply")
    else:
        conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
        if hello_head_lost:
            conv.c([hello[:60], hello[60:]], tag="client_hello", lost=[0], marks={"after_hole": 60})
        else:
            conv.c(hello, tag="client_hello")
    conv.s(server_flight_tls12(label, "mx.example.com")[0], tag="server_hello")
    conv.c(alert(48), tag="alert")
    return conv


def server_only_alert(cport: int, label: str) -> Conv:
    """A server-only capture: a valid offer, STARTTLS answered 220, and the server's fatal alert
    handshake_failure answering the client's ClientHello (not captured); the server closes."""
    conv = opening(server_only(cport))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(label, "mx.example.com", tls13=False), tag="client_hello")
    conv.s(alert(40), tag="server_alert")
    return conv


def client_only_starttls(cport: int, label: str) -> Conv:
    """Port 25 in the client's direction only: EHLO, STARTTLS, its ClientHello after the 220 (not
    in the capture), the server's flight (not either), the client's fatal alert unknown_ca and its
    close."""
    conv = opening(Conv(cport=cport, close=("fin", "C"), only_side="C"))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(label, "mx.example.com", tls13=False), tag="client_hello")
    conv.s(server_flight_tls12(label, "mx.example.com")[0], tag="server_hello")
    conv.c(alert(48), tag="alert")
    return conv


def client_only_starttls_plaintext(cport: int) -> Conv:
    """Port 25 in the client's direction only: EHLO, STARTTLS, and 2 s later QUIT in plaintext
    (what the server answered, if anything, is not in the capture)."""
    conv = opening(Conv(cport=cport, close=("fin", "C"), only_side="C"))
    conv.c(STARTTLS, tag="starttls")
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=2000)
    return conv


def two_banners_tls(cport: int, label: str, only_side: str | None) -> Conv:
    """A proxy's banner, the client's STARTTLS right after it (no EHLO), the server's 220 to it,
    the ClientHello and the server's TLS 1.2 flight; the client's alert and close. Captured in the
    server's direction only (``only_side="S"``) the server sent two 220s, then TLS."""
    conv = Conv(cport=cport, close=("fin", "C"), only_side=only_side)
    conv.s(b"220 relay.example.net ESMTP proxy\r\n", tag="banner")
    conv.c(STARTTLS, tag="starttls").s(b"220 2.0.0 mx.example.com ready\r\n", tag="starttls_reply")
    conv.c(client_hello(label, "mx.example.com", tls13=False), tag="client_hello")
    conv.s(server_flight_tls12(label, "mx.example.com")[0], tag="server_hello")
    conv.c(alert(48), tag="alert")
    return conv


def scenarios() -> list[Capture]:
    misplaced = mail_in_clear(opening(server_only(47901), SEED_REPLY, banner=SEED_BANNER))
    valid = starttls_ok(opening(server_only(47902)), "one-sided valid")
    absent = mail_in_clear(opening(server_only(47903), EHLO_NO_TLS))
    helo = unread(47904, b"250 mx.example.com\r\n")
    split = EHLO_OK.split(b"250-STARTTLS\r\n")
    hole = unread(47905, [split[0], b"250-STARTTLS\r\n" + split[1]], lost=[0])
    banner2 = unread(47906, b"220-relay.example.net ESMTP\r\n220 mx.example.com ready\r\n")
    tls12_cert = server_flight_tls12("one-sided tls12 cert", "mail.example.net")
    early = unread(47907, [lines("250-mx.example.com", "250-PIPELINING", "250 SIZE 10240000"),
                           lines("250-STARTTLS", "250-ENHANCEDSTATUSCODES", "250 8BITMIME")])
    return [
        Capture("one-sided-server-misplaced.pcap",
                "seed-starttls-first-line.pcap with only the server->client packets: its EHLO reply puts "
                "STARTTLS on the first line (the server's defect); what the client did is not in the capture",
                [(misplaced, Expect("incomplete", "unknown", "incomplete", "misplaced", False, None,
                                    [ONE_SIDED, ("ehlo-keyword-as-domain", "server", "ehlo_reply")]))]),
        Capture("one-sided-server-valid.pcap",
                "STARTTLS offered, accepted (the 220 after the EHLO reply answers it) and TLS set up, with only "
                "the server->client packets: the offer is valid and STARTTLS was requested; the client's side "
                "of it is not in the capture",
                [(valid, Expect("incomplete", "unknown", "incomplete", "valid", True, 220, [ONE_SIDED]))]),
        Capture("one-sided-server-absent.pcap",
                "an EHLO reply without STARTTLS and a mail transaction, with only the server->client "
                "packets: STARTTLS is not offered",
                [(absent, Expect("incomplete", "unknown", "incomplete", "absent", False, None, [ONE_SIDED]))]),
        Capture("one-sided-server-one-line.pcap",
                "control: with only the server->client packets, the reply after the greeting is one line "
                "('250 mx.example.com'): a HELO reply as well as an EHLO reply, so the offer is unknown",
                [(helo, Expect("incomplete", "unknown", "incomplete", "unknown", False, None, [ONE_SIDED]))]),
        Capture("one-sided-server-hole.pcap",
                "control: with only the server->client packets, the first segment of the EHLO reply is not "
                "in the capture: what came first after the greeting is unknown, so the offer is too",
                [(hole, Expect("incomplete", "unknown", "incomplete", "unknown", False, None,
                               [ONE_SIDED, ("tcp-gap", "capture", "lost_segment:S")]))]),
        Capture("one-sided-server-second-banner.pcap",
                "control: with only the server->client packets, the reply after the greeting is a 220 of "
                "two lines (a proxy's second banner), not an EHLO reply (250 is EHLO's only success): the "
                "offer is unknown",
                [(banner2, Expect("incomplete", "unknown", "incomplete", "unknown", False, None, [ONE_SIDED]))]),
        Capture("one-sided-server-early-end.pcap",
                "control: pairing-postfix-pipelining.pcap's server with only the server->client packets: the "
                "reply after the greeting ends early ('250 SIZE'), STARTTLS follows in the next reply; "
                "without the client's commands that rest and an answer to another command look alike, so "
                "the offer is unknown (not absent; misplaced in the whole capture)",
                [(early, Expect("incomplete", "unknown", "incomplete", "unknown", False, None, [ONE_SIDED]))]),
        Capture("one-sided-client-465-alert.pcap",
                "port 465 with only the client->server packets: the client's ClientHello, its fatal alert "
                "unknown_ca in clear and its close; the server's answer (its certificate) is not in the "
                "capture, so why the client refused it cannot be told",
                [(client_only_465(47908, "one-sided 465 tls12", tls13=False),
                  Expect("incomplete", "unknown", "incomplete", "unknown", False, None,
                         [ONE_SIDED, ("tls-alert", "client", "alert")]))]),
        Capture("one-sided-client-465-tls13.pcap",
                "port 465 with only the client->server packets, TLS 1.3: the client's ClientHello, then its "
                "CCS and a 19-byte encrypted record (an alert by its size) and its close; the server's "
                "answer is not in the capture",
                [(client_only_465(47909, "one-sided 465 tls13", tls13=True),
                  Expect("incomplete", "unknown", "incomplete", "unknown", False, None,
                         [ONE_SIDED, ("tls-alert", "client", "alert")]))]),
        Capture("one-sided-client-465-forged-rst.pcap",
                "port 465 with only the client->server packets: the client's ClientHello, then a reset with "
                "its address at TTL 250 where its own segments came with 64: a box on the path forged it "
                "(in the captured direction), so the box is blamed as in a whole capture",
                [(client_only_465_reset(47912, "one-sided 465 forged", ttl=250, goes_on=False),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "unknown", False, None,
                         [ONE_SIDED, ("reset-forged", "middlebox", "label:rst")]))]),
        Capture("one-sided-client-465-forged-rst-goes-on.pcap",
                "port 465 with only the client->server packets: the client's ClientHello, a reset with its "
                "address and TTL, then the client's FIN: it went on after the reset, so its stack did not "
                "send it; a box on the path forged it",
                [(client_only_465_reset(47913, "one-sided 465 goes on", ttl=None, goes_on=True),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "unknown", False, None,
                         [ONE_SIDED, ("reset-forged", "middlebox", "label:rst")]))]),
        Capture("one-sided-client-465-alert-forged-rst.pcap",
                "port 465 with only the client->server packets: the client's ClientHello, its fatal alert "
                "unknown_ca, then a reset with its address at TTL 250 (its own segments: 64): the alert ended "
                "the handshake (why is in the server's answer, not captured), the reset is not the client's",
                [(client_only_465_alert_reset(47914, "one-sided 465 alert forged"),
                  Expect("incomplete", "unknown", "incomplete", "unknown", False, None,
                         [ONE_SIDED, ("tls-alert", "client", "alert"),
                          ("reset-forged", "middlebox", "label:rst")]))]),
        Capture("one-sided-server-tls12-cert.pcap",
                "STARTTLS answered 220, then a TLS 1.2 handshake, with only the server->client packets: the "
                "server's certificate names mail.example.net, not mx.example.com (its banner's name); the "
                "client's refusal is not in the capture",
                [(server_only_handshake(47910, "one-sided tls12 cert", tls12_cert[0], alert(42),
                                        cert_at=tls12_cert[1]),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, 220,
                         [ONE_SIDED, ("tls-certificate", "server", "certificate")]))]),
        Capture("one-sided-server-tls13.pcap",
                "STARTTLS answered 220, then a TLS 1.3 handshake, with only the server->client packets: the "
                "ServerHello is in clear, the certificate encrypted",
                [(server_only_handshake(47911, "one-sided tls13", server_flight_tls13("one-sided tls13"),
                                        record(20, b"\x01") + record(23, det("one-sided tls13 alert", 19))),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, 220, [ONE_SIDED]))]),
        Capture("one-sided-server-alert.pcap",
                "STARTTLS answered 220, then the server's fatal alert handshake_failure, with only the "
                "server->client packets: the alert is the server's tls-alert finding as in a whole capture; "
                "why it refused (the client's ClientHello) is not in the capture, so no one is blamed",
                [(server_only_alert(47917, "one-sided server alert"),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, 220,
                         [ONE_SIDED, ("tls-alert", "server", "server_alert")]))]),
        Capture("silent-client-acks-only.pcap",
                "control: the server's banner and the client's acknowledgement of it, then the capture "
                "ends: the client's direction is in the capture (its acknowledgements), it sent nothing "
                "else; no one-sided capture, the capture ends before the client's next step",
                [(Conv(cport=47918, close=None).s(BANNER, tag="banner"),
                  Expect("incomplete", "unknown", "incomplete", "unknown"))]),
        Capture("one-sided-client-starttls-alert.pcap",
                "port 25 with only the client->server packets: EHLO, STARTTLS, then a TLS ClientHello (the "
                "client read a 220 that is not in the capture), its fatal alert unknown_ca and its close: the "
                "client's bytes after STARTTLS are read as TLS (its ClientHello's SNI, its alert); why it "
                "refused is in the server's answer, not in the capture",
                [(client_only_starttls(47919, "one-sided client starttls"),
                  Expect("incomplete", "unknown", "incomplete", "unknown", True, None,
                         [ONE_SIDED, ("tls-alert", "client", "alert")]))]),
        Capture("one-sided-client-starttls-plaintext.pcap",
                "control: port 25 with only the client->server packets: EHLO, STARTTLS and 2 s later QUIT: no "
                "TLS record after STARTTLS, the client's bytes stay plaintext (QUIT a command)",
                [(client_only_starttls_plaintext(47920),
                  Expect("incomplete", "unknown", "incomplete", "unknown", True, None, [ONE_SIDED]))]),
        Capture("one-sided-server-two-220.pcap",
                "only the server->client packets: a 220 banner, a second 220, then the server's TLS: a server "
                "starts TLS only after its 220 to STARTTLS, so the second 220 answered STARTTLS (requested), as "
                "the two-direction capture of the same conversation (server-two-220-whole) reads it",
                [(two_banners_tls(47923, "two 220", "S"),
                  Expect("incomplete", "unknown", "incomplete", "unknown", True, 220,
                         [ONE_SIDED, ("tls-certificate", "server", "server_hello")]))]),
        Capture("server-two-220-whole.pcap",
                "one-sided-server-two-220.pcap with both directions: the client's STARTTLS right after the "
                "banner gets the second 220, then its ClientHello, the server's flight and the client's alert",
                [(two_banners_tls(47923, "two 220", None),
                  Expect("aborted", "client", "tls-handshake-failed", "unknown", True, 220,
                         [("tls-certificate", "server", "server_hello"), ("tls-alert", "client", "alert")]))]),
        Capture("server-tls-client-tap-later.pcap",
                "STARTTLS answered 220 and the server's TLS 1.2 flight, with the client's packets only from "
                "its alert on (its tap started late): when the server's TLS came nothing of the client was in "
                "the capture, so it is read as TLS (the 220 answers STARTTLS) as in a capture of the server's "
                "direction; the client's bytes the server acknowledged before (EHLO, STARTTLS, ClientHello) "
                "are holes, so the verdict is incomplete, and no one-sided finding",
                [(server_tls_client_later(47915, "client tap later"),
                  Expect("incomplete", "unknown", "incomplete", "unknown", True, 220,
                         [("tcp-gap", "capture", "reply_after_greeting"), ("tcp-gap", "capture", "starttls_reply"),
                          ("tcp-gap", "capture", "server_hello"), ("tls-alert", "client", "client_alert")]))]),
        Capture("server-tls-client-tap-ack.pcap",
                "server-tls-client-tap-later.pcap with the client's packets from its acknowledgement of the 220 "
                "on (before the server's TLS): its ClientHello as its first bytes shows it read the 220, so the "
                "TLS after the 220 is read as TLS as when the tap starts later; its EHLO and STARTTLS are holes "
                "the 220 answers the STARTTLS of (as in a capture that lost them in its middle), and the "
                "handshake after the 220 is whole: the client's fatal alert bad_certificate ended it",
                [(server_tls_client_from(47924, "client tap ack", _ack_of("starttls_reply")),
                  Expect("aborted", "client", "tls-handshake-failed", "unknown", True, 220,
                         [("tcp-gap", "capture", "reply_after_greeting"), ("tcp-gap", "capture", "starttls_reply"),
                          ("tls-alert", "client", "client_alert")]))]),
        Capture("server-tls-client-tap-hello.pcap",
                "server-tls-client-tap-later.pcap with the client's packets from its ClientHello on (before the "
                "server's TLS): the same reading as server-tls-client-tap-ack.pcap",
                [(server_tls_client_from(47925, "client tap hello", _bytes_of("client_hello")),
                  Expect("aborted", "client", "tls-handshake-failed", "unknown", True, 220,
                         [("tcp-gap", "capture", "reply_after_greeting"), ("tcp-gap", "capture", "starttls_reply"),
                          ("tls-alert", "client", "client_alert")]))]),
        Capture("one-sided-client-starttls-synack.pcap",
                "one-sided-client-starttls-alert.pcap with the server's SYN-ACK kept: the client's "
                "acknowledgements prove the server's bytes lost (holes, its answer to STARTTLS among them); "
                "the client's bytes after STARTTLS are read as TLS all the same, and the detail begins with "
                "'no packet of the server after its SYN-ACK is in the capture'",
                [(client_starttls_variant(ClientAndSynAck(cport=47926, close=("fin", "C")),
                                          "one-sided client synack"),
                  Expect("incomplete", "unknown", "incomplete", "unknown", True, None,
                         [ONE_SIDED, ("tcp-gap", "capture", "greeting"), ("tcp-gap", "capture", "starttls"),
                          ("tcp-gap", "capture", "client_hello"), ("tcp-gap", "capture", "alert"),
                          ("tls-alert", "client", "alert")]))]),
        Capture("one-sided-client-starttls-one-segment.pcap",
                "port 25 with only the client->server packets: STARTTLS and the ClientHello in one segment (the "
                "client did not wait for the 220), its fatal alert and its close: the ClientHello is read as TLS",
                [(client_starttls_variant(Conv(cport=47927, close=("fin", "C"), only_side="C"),
                                          "one-sided client one segment", one_segment=True),
                  Expect("incomplete", "unknown", "incomplete", "unknown", True, None,
                         [ONE_SIDED, ("tls-alert", "client", "alert")]))]),
        Capture("one-sided-client-starttls-hello-hole.pcap",
                "port 25 with only the client->server packets: STARTTLS, then a ClientHello whose first segment is "
                "not in the capture, its fatal alert and its close: the bytes after the hole are the rest of the "
                "TLS the client started (its alert read once the record framing is found again), no "
                "starttls-command-injection",
                [(client_starttls_variant(Conv(cport=47928, close=("fin", "C"), only_side="C"),
                                          "one-sided client hello hole", hello_head_lost=True),
                  Expect("incomplete", "unknown", "incomplete", "unknown", True, None,
                         [ONE_SIDED, ("tcp-gap", "capture", "after_hole"), ("tls-alert", "client", "alert")]))]),
    ]
