"""Conversations whose capture lost only handshake packets: judged by where TCP says each
side's stream starts, not as a late start.

A side's start (its ISN+1) is known from its own SYN / SYN-ACK, or from the other side's
acknowledgement of it: the SYN-ACK's ack tells the client's, the client's handshake ACK (its
first segment after the SYN with ACK, no payload, seq ISN+1, before any server segment, or
after server payload whose bytes it does not acknowledge: two taps merged out of order) tells
the server's. With both starts known, the conversation is judged whole even without the SYN
or the SYN-ACK (a tcpdump started mid-handshake, one packet lost).

- ``recut-not-offered-no-syn.pcap``: starttls-not-offered.pcap without the client's SYN: the
  SYN-ACK acknowledges the client's ISN+1 -> plaintext/server/starttls-not-offered, as whole.
- ``lost-starttls-command.pcap``: a STARTTLS session whose STARTTLS segment alone is lost: the
  server's 220 after the greeting can only answer STARTTLS (RFC 3207), so the session infers the
  command (``Command.inferred``, no frame) and the completed handshake gives tls-established.
- ``recut-tls-no-synack.pcap``: a STARTTLS session that completes TLS 1.2, without the
  SYN-ACK: the handshake ACK tells the server's start -> tls/none/tls-established.
- ``recut-seed-no-handshake.pcap``: seed-starttls-first-line.pcap (``250-STARTTLS`` as the
  EHLO reply's first line) without SYN and SYN-ACK, the handshake ACK kept: a late start.
  Without a SYN or SYN-ACK nothing tells where either stream starts (an ACK without payload
  looks the same at any point of a conversation), so the ``220`` seen first may answer a
  command before the capture: it is no proven greeting, and the misplaced STARTTLS is not
  blamed on the server -> incomplete/unknown/incomplete with the ``midstream`` finding
  (sides told apart by the port); the offer still reads ``misplaced``, and the first-line
  keyword is still reported (``ehlo-keyword-as-domain``, informational: no blame).
- ``recut-implicit-465-no-syn.pcap``: implicit-tls-465.pcap without the SYN: the client's
  ClientHello is its first byte -> tls/none/implicit-tls (not tls-start-not-captured).
- ``recut-content-10025-no-synack.pcap``: content-reordered-greeting-10025.pcap (port 10025,
  found by content, the greeting's segments swapped) without the SYN-ACK: the server's first
  segment seen is not at its known start, so content detection waits for the earlier bytes
  -> plaintext/client/client-did-not-request.
- ``recut-hole-at-client-start.pcap``: without the SYN, the client's handshake ACK and its
  EHLO: the client's start is known (the SYN-ACK) and its first captured byte is after it,
  so the EHLO's bytes are a hole at the start of the client's stream (``tcp-gap``, at the
  EHLO reply: the server's first payload acknowledging the lost bytes proves the loss), not
  a clean start: incomplete/unknown/incomplete (the EHLO reply after the hole cannot be tied to
  what asked for it, so the offer reads ``unknown``).
- ``recut-seed-banner-first.pcap``: seed-starttls-first-line.pcap without the SYN-ACK, and the
  banner written before the client's handshake ACK (captures merged from two taps): the ACK's
  acknowledgement number, the server's ISN+1, is the banner's sequence number, so the banner
  is the server's first byte whatever the order -> plaintext/server/starttls-misplaced, as the
  whole capture.
- ``recut-content-10026-banner-first.pcap``: the same on port 10026, found by content (the
  banner alone would decide; it waits for the handshake ACK to know it is the start).
- ``recut-seed-banner-acked.pcap``: seed-starttls-first-line.pcap without the SYN-ACK and the
  handshake ACK: the client's first segment after its SYN acknowledges the banner, so it
  tells nothing of the server's start: a late start -> incomplete/unknown/incomplete.
"""
from __future__ import annotations

from typing import Any

from generate import (
    BANNER,
    DID_NOT_REQUEST,
    EHLO,
    EHLO_NO_TLS,
    NOT_OFFERED,
    QUIT_STEPS,
    SEED_BANNER,
    SEED_EXPECT,
    SEED_REPLY,
    TLS_OK,
    Capture,
    Conv,
    Expect,
    Pkt,
    implicit_465,
    mail_in_clear,
    opening,
    starttls_ok,
)

SYN, SYNACK, HS_ACK = 0, 1, 2


class HandshakeLost(Conv):
    """A conversation whose capture lost some of its handshake packets (``lost``: indexes into
    SYN, SYN-ACK, handshake ACK), and optionally the packets of the steps tagged ``lost_tags``.
    ``banner_first``: the server's first payload segment is written before the handshake ACK
    (two taps merged out of order), the two swapping their timestamps."""

    def __init__(self, *, lost: tuple[int, ...], lost_tags: tuple[str, ...] = (),
                 banner_first: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.lost = lost
        self.lost_tags = lost_tags
        self.banner_first = banner_first

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        for k in self.lost:
            pkts[k].captured = False
        for tag in self.lost_tags:
            side, off = marks[tag]
            for p in pkts:
                if p.side == side and p.off == off and p.payload:
                    p.captured = False
        if self.banner_first:
            ack = pkts[HS_ACK]
            k = next(i for i, p in enumerate(pkts) if p.side == "S" and p.payload)
            banner = pkts.pop(k)
            ack.ts_ns, banner.ts_ns = banner.ts_ns, ack.ts_ns
            pkts.insert(HS_ACK, banner)
        return pkts, marks


def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    add = caps.append

    c = HandshakeLost(lost=(SYN,), cport=40390)
    add(Capture("recut-not-offered-no-syn.pcap",
                "starttls-not-offered.pcap without the client's SYN: the SYN-ACK acknowledges the "
                "client's ISN+1, so both streams' starts are known and the dialogue is judged whole",
                [(mail_in_clear(opening(c, EHLO_NO_TLS)), NOT_OFFERED)]))

    c = HandshakeLost(lost=(SYNACK,), cport=40391)
    starttls_ok(opening(c), "recut synack")
    add(Capture("recut-tls-no-synack.pcap",
                "STARTTLS and a completed TLS 1.2 handshake, without the SYN-ACK: the client's "
                "handshake ACK acknowledges the server's ISN+1",
                [(c, TLS_OK)]))

    c = HandshakeLost(lost=(), lost_tags=("starttls",), cport=40396)
    starttls_ok(opening(c), "recut lost starttls")
    add(Capture("lost-starttls-command.pcap",
                "a STARTTLS session whose STARTTLS segment is not in the capture: the server's 220 "
                "after the greeting answers only STARTTLS, and the TLS 1.2 handshake completes "
                "(the hole is declared by the 220's acknowledgement of the client's bytes)",
                [(c, Expect("tls", "none", "tls-established", "valid", True, 220,
                            findings=[("tcp-gap", "capture", "starttls_reply")]))]))

    c = HandshakeLost(lost=(SYN, SYNACK), cport=40392)
    opening(c, SEED_REPLY, banner=SEED_BANNER, ehlo=b"EHLO ESA.com\r\n")
    add(Capture("recut-seed-no-handshake.pcap",
                "seed-starttls-first-line.pcap without SYN and SYN-ACK (the handshake ACK kept): no "
                "TCP fact tells where either stream starts, so it stays a late start and nobody "
                "is blamed",
                [(mail_in_clear(c), Expect("incomplete", "unknown", "incomplete", "misplaced",
                                           findings=[("midstream", "capture", "first_frame"),
                                                     ("ehlo-keyword-as-domain", "server",
                                                      "ehlo_reply")]))]))

    c = HandshakeLost(lost=(SYN,), cport=40393, sport=465)
    add(Capture("recut-implicit-465-no-syn.pcap",
                "implicit-tls-465.pcap without the SYN: the ClientHello is the client's first byte "
                "(the SYN-ACK says where it starts), so it is implicit TLS, not a start not captured",
                [(implicit_465(c), Expect("tls", "none", "implicit-tls", "unknown"))]))

    c = HandshakeLost(lost=(SYNACK,), cport=40394, sport=10025, reorder=True)
    opening(c, banner=[b"22", b"0 mx.exa", b"mple.com ESMTP Postfix\r\n"])
    add(Capture("recut-content-10025-no-synack.pcap",
                "content-reordered-greeting-10025.pcap without the SYN-ACK: the greeting's second "
                "segment, seen first, is not at the server's start (known from the handshake ACK): "
                "content detection waits for the first one",
                [(mail_in_clear(c), DID_NOT_REQUEST)]))

    c = HandshakeLost(lost=(SYN, HS_ACK), lost_tags=("lost_ehlo",), cport=40395)
    c.s(BANNER, tag="banner").c(EHLO, tag="lost_ehlo").s(EHLO_NO_TLS, tag="reply")
    c.c(b"MAIL FROM:<alice@client.example.org>\r\n")
    c.s(b"250 2.1.0 Ok\r\n").extend(QUIT_STEPS)
    add(Capture("recut-hole-at-client-start.pcap",
                "without the SYN, the handshake ACK and the client's EHLO: the client's start is "
                "known from the SYN-ACK, its first captured byte (MAIL FROM) is after it: a hole at "
                "the start of its stream",
                [(c, Expect("incomplete", "unknown", "incomplete", "unknown",
                            findings=[("tcp-gap", "capture", "reply")]))]))

    for sport, name, how in ((25, "recut-seed-banner-first.pcap", "on port 25"),
                             (10026, "recut-content-10026-banner-first.pcap",
                              "on port 10026 (found by content)")):
        c = HandshakeLost(lost=(SYNACK,), banner_first=True, cport=40397 if sport == 25 else 40398,
                          sport=sport)
        opening(c, SEED_REPLY, banner=SEED_BANNER, ehlo=b"EHLO ESA.com\r\n")
        add(Capture(name,
                    f"seed-starttls-first-line.pcap {how} without the SYN-ACK, the banner written "
                    "before the client's handshake ACK (two taps merged out of order): the ACK's "
                    "acknowledgement number (the server's ISN+1) is the banner's sequence number, so "
                    "the banner is the server's first byte and the misplaced STARTTLS is blamed as "
                    "in the whole capture",
                    [(mail_in_clear(c), SEED_EXPECT)]))

    c = HandshakeLost(lost=(SYNACK, HS_ACK), cport=40399)
    opening(c, SEED_REPLY, banner=SEED_BANNER, ehlo=b"EHLO ESA.com\r\n")
    add(Capture("recut-seed-banner-acked.pcap",
                "seed-starttls-first-line.pcap without the SYN-ACK and the handshake ACK: the "
                "client's first segment after its SYN acknowledges the banner, so it tells nothing "
                "of where the server's stream starts: a late start (the client's SYN seen, so no "
                "midstream finding), nobody blamed",
                [(mail_in_clear(c), Expect("incomplete", "unknown", "incomplete", "misplaced",
                                           findings=[("ehlo-keyword-as-domain", "server",
                                                      "ehlo_reply")]))]))
    return caps
