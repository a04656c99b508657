#!/usr/bin/env python3
"""Deterministic generator of capture PAIRS for ``pcapsmtp diff``: the same deliveries seen outside and inside a
middlebox, with the ground truth of which conversation pairs with which and what the box changed.

Run ``python captures/generate_pairs.py`` (or ``--out DIR``) to (re)write ``captures/pairs/*.pcap`` and
``captures/pairs/expected.json`` byte for byte identically. The dialogue builder (``Conv``), the SMTP and TLS
pieces and the pcap writer are those of ``captures/generate.py`` (imported, not copied); this file adds what a
pair needs: per-conversation addresses (NAT, a proxy's own upstream connection), conversations interleaved in
time, a clock offset between the two files, and the ground truth of the pairing.

Each scenario writes ``<name>.outside.pcap`` (between the client and the box) and ``<name>.inside.pcap`` (between
the box and the server). Besides the delivery under test, most files hold decoys: deliveries seen on one side
only (to another server, from an internal host), some with the same banner and EHLO name as the real pair, so a
pairing on anything but the whole content fails.

Frame numbers in expected.json follow generate.py's convention: a line's frame is the first record that carries
its first byte. For a line missing on one side (``removed``/``added``), that side's frame is the frame of the
next line in the same direction (where the line would have been).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import generate as gen  # noqa: E402  (captures/generate.py, the shared builder)
from scapy.layers.inet import IP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

OUT = HERE / "pairs"
SECOND = 1_000_000_000
MS = 1_000_000

# Addresses. Outside: the sending MTA and the box's public address; inside: the box's inside address (source
# NAT) and the real server. A "transparent" box (bridge mode) leaves every address and port as it is.
CLIENT = "203.0.113.5"
OTHER_CLIENT = "203.0.113.77"
PUBLIC_MX = "198.51.100.25"
OTHER_MX = "198.51.100.99"
BOX_INSIDE = "10.0.0.1"
SERVER = "10.0.0.25"
INTERNAL_APP = "10.0.0.50"

BANNER = b"220 mx.example.com ESMTP Postfix\r\n"
EHLO = b"EHLO client.example.org\r\n"
EHLO_OK = gen.EHLO_OK
EHLO_NO_TLS = gen.EHLO_NO_TLS
STARTTLS = gen.STARTTLS
lines = gen.lines


def mail(sender: str, rcpt: str, body: bytes) -> list[tuple[str, bytes]]:
    return [("C", f"MAIL FROM:<{sender}>\r\n".encode()), ("S", b"250 2.1.0 Ok\r\n"),
            ("C", f"RCPT TO:<{rcpt}>\r\n".encode()), ("S", b"250 2.1.5 Ok\r\n"),
            ("C", b"DATA\r\n"), ("S", b"354 End data with <CR><LF>.<CR><LF>\r\n"),
            ("C", body + b"\r\n.\r\n"), ("S", b"250 2.0.0 Ok: queued as 4F2A1C3B\r\n"),
            ("C", b"QUIT\r\n"), ("S", b"221 2.0.0 Bye\r\n")]


def body(label: str, n: int) -> bytes:
    text = f"Subject: {label}\r\n\r\n".encode()
    filler = (b"This line travels in the clear. " * (n // 32 + 1))[: max(0, n - len(text))]
    return text + filler


# --------------------------------------------------------------------------------------------------
# One file = conversations with their own addresses and start times, interleaved by time
# --------------------------------------------------------------------------------------------------

@dataclass
class Placed:
    key: str                     # name of the conversation in expected.json ("delivery", "decoy-out", ...)
    conv: gen.Conv
    client: str
    server: str
    start_ns: int


@dataclass
class Built:
    data: bytes
    streams: dict[str, int]                        # key -> tcp.stream (order of first packet)
    first_frames: dict[str, int]
    side_bytes: dict[tuple[str, str], bytes]       # (key, "C"/"S") -> the side's stream
    byte_frame: dict[tuple[str, str, int], int]    # (key, side, offset) -> first frame carrying it
    frame_count: int
    ends: dict[tuple[str, str, str], int] = field(default_factory=dict)   # (key, side, "FIN"/"RST") -> frame


def build_file(placed: Sequence[Placed]) -> Built:
    pkts: list[tuple[int, int, int, gen.Pkt]] = []
    for ci, pl in enumerate(placed):
        ps, _marks = pl.conv.emit(ci, pl.start_ns)
        pkts += [(p.ts_ns, ci, k, p) for k, p in enumerate(ps)]
    pkts.sort(key=lambda x: (x[0], x[1], x[2]))
    frames: list[gen.Frame] = []
    ip_id: dict[tuple[int, str], int] = {}
    byte_frame: dict[tuple[str, str, int], int] = {}
    order: list[int] = []
    first_frames: dict[str, int] = {}
    ends: dict[tuple[str, str, str], int] = {}
    for _ts, ci, _k, p in pkts:
        pl = placed[ci]
        if ci not in order:
            order.append(ci)
        src, dst = (pl.client, pl.server) if p.side == "C" else (pl.server, pl.client)
        ident = ip_id.setdefault((ci, p.side), (0x3000 if p.side == "C" else 0x7000) + 0x100 * ci)
        ip_id[(ci, p.side)] = ident + 1
        if not p.captured:      # sent, but not in this file (a box dropped it before this capture point)
            continue
        l3 = IP(src=src, dst=dst, ttl=64 if p.side == "C" else 52, id=ident & 0xFFFF, flags="DF") / gen._tcp(
            p, (pl.conv.cport, pl.conv.sport))
        smac, dmac = (gen.CLIENT_MAC, gen.SERVER_MAC) if p.side == "C" else (gen.SERVER_MAC, gen.CLIENT_MAC)
        data = bytes(Ether(src=smac, dst=dmac, type=0x0800) / l3)
        frames.append(gen.Frame(p.ts_ns, data, 0, 1, p, len(data) - len(p.payload)))
        num = len(frames)
        first_frames.setdefault(pl.key, num)
        for flag, name in (("F", "FIN"), ("R", "RST")):
            if flag in p.flags:
                ends.setdefault((pl.key, p.side, name), num)
        if p.payload and p.off is not None:
            for j in range(len(p.payload)):
                byte_frame.setdefault((pl.key, p.side, p.off + j), num)
    side_bytes: dict[tuple[str, str], bytes] = {}
    for pl in placed:
        for side in ("C", "S"):
            side_bytes[(pl.key, side)] = b"".join(st.data for st in pl.conv.steps if st.side == side)
    streams = {placed[ci].key: n for n, ci in enumerate(order)}
    return Built(gen.write_pcap(frames, 1, 262144), streams, first_frames, side_bytes, byte_frame, len(frames),
                 ends)


def line_frame(b: Built, key: str, side: str, text: str, nth: int = 0) -> int:
    """Frame of the first byte of line ``text`` (its ``nth`` occurrence) on ``side`` of conversation ``key``."""
    stream = b.side_bytes[(key, side)]
    needle = text.encode() + b"\r\n"
    pos = -1
    for _ in range(nth + 1):
        pos = stream.find(needle, pos + 1)
        while pos > 0 and stream[pos - 2:pos] != b"\r\n":    # only whole lines
            pos = stream.find(needle, pos + 1)
        assert pos >= 0, (key, side, text)
    return b.byte_frame[(key, side, pos)]


def ref_frame(b: Built, key: str, ref: tuple[str, bytes | str]) -> int:
    """Frame of a reference that is no SMTP line: ``(side, b"...")`` the first record carrying the first byte
    of those bytes (a TLS record) on that side, ``(side, "FIN")`` / ``(side, "RST")`` that side's close."""
    side, what = ref
    if isinstance(what, str):
        return b.ends[(key, side, what)]
    pos = b.side_bytes[(key, side)].find(what)
    assert pos >= 0, (key, side, what[:16])
    return b.byte_frame[(key, side, pos)]


# --------------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------------

@dataclass
class Diff:
    direction: str               # "server->client" / "client->server"
    kind: str                    # rewritten / removed / added / masked
    outside_line: str | None
    inside_line: str | None
    outside_anchor: str | None = None    # for a line missing outside: the next line in that direction there
    inside_anchor: str | None = None
    #: instead of a line to look up, the frame of a TLS record's bytes or of a side's FIN/RST (see ref_frame)
    outside_ref: tuple[str, bytes | str] | None = None
    inside_ref: tuple[str, bytes | str] | None = None


@dataclass
class PairTruth:
    outside: str                 # conversation keys
    inside: str
    identical: bool
    caused_by: str
    reason: str
    outside_reason: str
    inside_reason: str
    diffs: list[Diff] = field(default_factory=list)
    #: the box changed the dialogue (a difference both captures vouch for); None: not identical
    tampered: bool | None = None
    #: the case of each single-side verdict (docs/verdicts.md), None when it names none
    outside_case: str | None = None
    inside_case: str | None = None

    @property
    def changed(self) -> bool:
        return not self.identical if self.tampered is None else self.tampered


@dataclass
class Scenario:
    name: str
    description: str
    outside: list[Placed]
    inside: list[Placed]
    pairs: list[PairTruth]
    clock_offset_s: float = 0.0


def isn(label: str) -> tuple[int, int]:
    raw = gen.det("isn " + label, 8)
    return int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:], "big")


def conv(label: str, cport: int, steps: Sequence[tuple[str, Any]], sport: int = 25,
         close: tuple[str, str] | None = ("fin", "S")) -> gen.Conv:
    c = gen.Conv(cport=cport, sport=sport, isn=isn(label), close=close)
    for item in steps:
        side, data = item[0], item[1]
        kw = item[2] if len(item) > 2 else {}
        c.step(side, data, **kw)
    return c


def t(seconds: float) -> int:
    return gen.T0_NS + int(seconds * SECOND)


def decoys(start_s: float, inside_offset_s: float = 0.0) -> tuple[list[Placed], list[Placed]]:
    """One-sided deliveries: outside, another client to another MX (the same client EHLO name and the same
    banner as the delivery under test); inside, an internal application delivering straight to the server."""
    out = [Placed("decoy-outside", conv("decoy-outside", 41999, [
        ("S", BANNER), ("C", EHLO), ("S", EHLO_NO_TLS),
        *mail("alerts@example.org", "noc@example.com", body("decoy outside", 300))]),
        OTHER_CLIENT, OTHER_MX, t(start_s))]
    inn = [Placed("decoy-inside", conv("decoy-inside", 52000, [
        ("S", BANNER), ("C", b"EHLO app.internal\r\n"), ("S", EHLO_OK),
        *mail("cron@app.internal", "bob@example.com", body("decoy inside", 300))]),
        INTERNAL_APP, SERVER, t(start_s + 1.5 + inside_offset_s))]
    return out, inn


def scenarios() -> list[Scenario]:
    sc: list[Scenario] = []
    env = mail("alice@example.org", "bob@example.com", body("quarterly report", 900))

    # 1 -- Cisco ASA ESMTP inspection: banner masked, STARTTLS -> XXXXXXXA. Static NAT of the server only.
    real_banner = gen.MASK_BANNER_ORIG
    real_reply = lines("250-mx1.example.net Hello client.example.org [203.0.113.5], pleased to meet you",
                       "250-ENHANCEDSTATUSCODES", "250-PIPELINING", "250-8BITMIME", "250-SIZE 10240000",
                       "250-DSN", "250-STARTTLS", "250 HELP")
    masked_reply = real_reply.replace(b"250-STARTTLS", b"250-XXXXXXXA")
    o = conv("asa out", 40100, [("S", gen.mask_banner(real_banner)), ("C", EHLO), ("S", masked_reply), *env])
    i = conv("asa in", 40100, [("S", real_banner), ("C", EHLO), ("S", [real_reply[:120], real_reply[120:]]), *env])
    d_out, d_in = decoys(4.0)
    mb = gen.mask_banner(real_banner).decode()[:-2]
    sc.append(Scenario(
        "asa-masked", "Cisco ASA ESMTP inspection (mask-banner, no allow-tls): outside sees a banner of "
        "asterisks and 250-XXXXXXXA, inside the server's real banner and 250-STARTTLS; static NAT of the "
        "server address, the client address and port unchanged; the inside EHLO reply in two segments",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, CLIENT, SERVER, t(0.002)), *d_in],
        [PairTruth("delivery", "delivery", False, "middlebox", "starttls-masked", "starttls-masked",
                   "client-did-not-request", [
                       Diff("server->client", "masked", mb, real_banner.decode()[:-2]),
                       Diff("server->client", "masked", "250-XXXXXXXA", "250-STARTTLS")])]))

    # 2 -- silent stripping: the 250-STARTTLS line removed, TCP lengths adjusted; NAT of both ends.
    o = conv("strip out", 40200, [("S", BANNER), ("C", EHLO), ("S", EHLO_OK.replace(b"250-STARTTLS\r\n", b"")),
                                   *env])
    i = conv("strip in", 61001, [("S", BANNER), ("C", EHLO), ("S", [EHLO_OK[:40], EHLO_OK[40:]]), *env])
    d_out, d_in = decoys(0.05)
    sc.append(Scenario(
        "silent-strip", "a box removes the 250-STARTTLS line from the EHLO reply and adjusts the TCP sequence "
        "numbers; no fingerprint. NAT: outside 203.0.113.5:40200 -> 198.51.100.25:25, inside "
        "10.0.0.1:61001 -> 10.0.0.25:25",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, BOX_INSIDE, SERVER, t(0.003)), *d_in],
        [PairTruth("delivery", "delivery", False, "middlebox", "starttls-stripped", "starttls-not-offered",
                   "client-did-not-request", [
                       Diff("server->client", "removed", None, "250-STARTTLS", outside_anchor="250-ENHANCEDSTATUSCODES")
                   ])]))

    # 3 -- the box answers STARTTLS with 454 itself; the server never sees the command.
    r454 = b"454 4.7.0 TLS not available due to local problem\r\n"
    o = conv("454 out", 40300, [("S", BANNER), ("C", EHLO), ("S", EHLO_OK), ("C", STARTTLS), ("S", r454), *env])
    i = conv("454 in", 61002, [("S", BANNER), ("C", EHLO), ("S", EHLO_OK), *env])
    d_out, d_in = decoys(2.0)
    sc.append(Scenario(
        "box-454", "the box intercepts STARTTLS and answers 454 itself; the client goes on in plaintext; the "
        "server never saw STARTTLS (it offered it) and sees a client that did not ask. NAT of both ends",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, BOX_INSIDE, SERVER, t(0.003)), *d_in],
        [PairTruth("delivery", "delivery", False, "middlebox", "starttls-refused", "starttls-refused",
                   "client-did-not-request", [
                       Diff("client->server", "removed", "STARTTLS", None,
                            inside_anchor="MAIL FROM:<alice@example.org>"),
                       Diff("server->client", "added", r454.decode()[:-2], None, inside_anchor="250 2.1.0 Ok"),
                   ])]))

    # 4 -- STARTTLS never arrived: a proxy with its own banner and its own upstream connection (its own EHLO
    # name) drops the command and answers 500 itself.
    r500 = b"500 5.5.1 command not recognized\r\n"
    proxy_banner = b"220 gw.example.net ESMTP ready\r\n"
    o = conv("500 out", 40400, [("S", proxy_banner), ("C", EHLO), ("S", EHLO_OK), ("C", STARTTLS), ("S", r500),
                                 *env])
    i = conv("500 in", 61003, [("S", BANNER), ("C", b"EHLO gw.example.net\r\n"), ("S", EHLO_OK), *env])
    d_out, d_in = decoys(2.5)
    sc.append(Scenario(
        "never-arrived", "a proxy answers the client with its own banner and opens its own upstream connection "
        "(its own EHLO name, NAT); the client's STARTTLS never reaches the server: the proxy answers 500 "
        "itself and the client goes on in plaintext",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, BOX_INSIDE, SERVER, t(0.300)), *d_in],
        [PairTruth("delivery", "delivery", False, "middlebox", "starttls-refused", "starttls-refused",
                   "client-did-not-request", [
                       Diff("server->client", "rewritten", proxy_banner.decode()[:-2], BANNER.decode()[:-2]),
                       Diff("client->server", "rewritten", EHLO.decode()[:-2], "EHLO gw.example.net"),
                       Diff("client->server", "removed", "STARTTLS", None,
                            inside_anchor="MAIL FROM:<alice@example.org>"),
                       Diff("server->client", "added", r500.decode()[:-2], None, inside_anchor="250 2.1.0 Ok"),
                   ])]))

    # 5 -- untampered: STARTTLS and a TLS 1.2 session spliced through a transparent box (same addresses).
    def tls_delivery(label: str, split: bool) -> gen.Conv:
        c = gen.Conv(cport=40500, isn=isn(label))
        c.s(BANNER).c(EHLO).s([EHLO_OK[:60], EHLO_OK[60:]] if split else EHLO_OK)
        return gen.starttls_ok(c, "pairs untampered")

    plain = [("S", BANNER), ("C", EHLO), ("S", EHLO_NO_TLS),
             *mail("carol@example.org", "dave@example.com", body("minutes", 500))]
    d_out, d_in = decoys(5.0)
    sc.append(Scenario(
        "untampered", "a transparent box passes two deliveries unchanged (same addresses and ports on both "
        "sides, other segment boundaries inside): one with STARTTLS and TLS 1.2, one in plaintext to a server "
        "that does not offer STARTTLS",
        [Placed("tls", tls_delivery("untampered out", False), CLIENT, PUBLIC_MX, t(0.0)),
         Placed("plain", conv("plain out", 40501, plain), CLIENT, PUBLIC_MX, t(2.0)), *d_out],
        [Placed("tls", tls_delivery("untampered in", True), CLIENT, PUBLIC_MX, t(0.001)),
         Placed("plain", conv("plain in", 40501, plain), CLIENT, PUBLIC_MX, t(2.001)), *d_in],
        [PairTruth("tls", "tls", True, "none", "tls-established", "tls-established", "tls-established"),
         PairTruth("plain", "plain", True, "server", "starttls-not-offered", "starttls-not-offered",
                   "starttls-not-offered")]))

    # 6 -- the same envelope twice, 20 s apart: the first stripped, the second to a server that never offers
    # it. The outside dialogues are identical; only the order in time tells which inside conversation is whose.
    same = mail("alice@example.org", "bob@example.com", body("retry", 700))
    o1 = conv("twice out 1", 40600, [("S", BANNER), ("C", EHLO), ("S", EHLO_NO_TLS), *same])
    o2 = conv("twice out 2", 40601, [("S", BANNER), ("C", EHLO), ("S", EHLO_NO_TLS), *same])
    i1 = conv("twice in 1", 61010, [("S", BANNER), ("C", EHLO), ("S", EHLO_OK), *same])
    i2 = conv("twice in 2", 61011, [("S", BANNER), ("C", EHLO), ("S", EHLO_NO_TLS), *same])
    sc.append(Scenario(
        "same-envelope", "two deliveries with the same envelope, banner, EHLO and size 20 s apart, NAT of both "
        "ends: the first had STARTTLS stripped, the second went to a server that does not offer it; the "
        "outside dialogues are identical, so only the order in time pairs them",
        [Placed("first", o1, CLIENT, PUBLIC_MX, t(0.0)), Placed("second", o2, CLIENT, PUBLIC_MX, t(20.0))],
        [Placed("first", i1, BOX_INSIDE, SERVER, t(0.004)), Placed("second", i2, BOX_INSIDE, SERVER, t(20.004))],
        [PairTruth("first", "first", False, "middlebox", "starttls-stripped", "starttls-not-offered",
                   "client-did-not-request", [
                       Diff("server->client", "removed", None, "250-STARTTLS",
                            outside_anchor="250-ENHANCEDSTATUSCODES")]),
         PairTruth("second", "second", True, "server", "starttls-not-offered", "starttls-not-offered",
                   "starttls-not-offered")]))

    # 7 -- the inside capture's clock runs 37 s ahead; deliveries 30 s apart with one envelope, so a pairing
    # that ignores the offset pairs the second outside delivery with the first inside one.
    off = 37.0
    a1 = conv("clock out 1", 40700, [("S", BANNER), ("C", EHLO), ("S", EHLO_OK.replace(b"250-STARTTLS\r\n", b"")),
                                      *same])
    a2 = conv("clock out 2", 40701, [("S", BANNER), ("C", EHLO), ("S", EHLO_NO_TLS), *same])
    a3 = conv("clock out 3", 40702, [("S", BANNER), ("C", EHLO), ("S", EHLO_NO_TLS), *env])
    b1 = conv("clock in 1", 61020, [("S", BANNER), ("C", EHLO), ("S", EHLO_OK), *same])
    b2 = conv("clock in 2", 61021, [("S", BANNER), ("C", EHLO), ("S", EHLO_NO_TLS), *same])
    b3 = conv("clock in 3", 61022, [("S", BANNER), ("C", EHLO), ("S", EHLO_NO_TLS), *env])
    d_out, d_in = decoys(45.0, off)
    sc.append(Scenario(
        "clock-offset", "the inside capture's clock is 37 s ahead of the outside one; three deliveries 30 s "
        "apart, all from one sender to one recipient (the first two also of one size; the first stripped), "
        "plus one-sided decoys; NAT of both ends",
        [Placed("first", a1, CLIENT, PUBLIC_MX, t(0.0)), Placed("second", a2, CLIENT, PUBLIC_MX, t(30.0)),
         Placed("third", a3, CLIENT, PUBLIC_MX, t(60.0)), *d_out],
        [Placed("first", b1, BOX_INSIDE, SERVER, t(off + 0.004)),
         Placed("second", b2, BOX_INSIDE, SERVER, t(off + 30.004)),
         Placed("third", b3, BOX_INSIDE, SERVER, t(off + 60.004)), *d_in],
        [PairTruth("first", "first", False, "middlebox", "starttls-stripped", "starttls-not-offered",
                   "client-did-not-request", [
                       Diff("server->client", "removed", None, "250-STARTTLS",
                            outside_anchor="250-ENHANCEDSTATUSCODES")]),
         PairTruth("second", "second", True, "server", "starttls-not-offered", "starttls-not-offered",
                   "starttls-not-offered"),
         PairTruth("third", "third", True, "server", "starttls-not-offered", "starttls-not-offered",
                   "starttls-not-offered")],
        clock_offset_s=off))

    # 8 -- a command rewritten on the way in (length-preserving): STARTTLS -> XXXXXXXX; the server does not
    # know the command and says so; the client reads that as a refusal.
    r502 = b"502 5.5.2 Error: command not recognized\r\n"
    o = conv("cmd out", 40800, [("S", BANNER), ("C", EHLO), ("S", EHLO_OK), ("C", STARTTLS), ("S", r502), *env])
    i = conv("cmd in", 61030, [("S", BANNER), ("C", EHLO), ("S", EHLO_OK), ("C", b"XXXXXXXX\r\n"), ("S", r502),
                               *env])
    d_out, d_in = decoys(2.0)
    sc.append(Scenario(
        "command-masked", "the box rewrites the client's STARTTLS to XXXXXXXX on the way in (same length); the "
        "server answers 502 and the client goes on in plaintext. NAT of both ends",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, BOX_INSIDE, SERVER, t(0.003)), *d_in],
        [PairTruth("delivery", "delivery", False, "middlebox", "starttls-masked", "starttls-refused",
                   "starttls-masked", [Diff("client->server", "masked", "STARTTLS", "XXXXXXXX")])]))

    # 9 -- tampered, yet TLS: the box strips 250-STARTTLS, but the client requires TLS and sends STARTTLS
    # anyway (swaks --tls, an MTA with a TLS-required policy); the server answers 220 and TLS 1.2 follows. The
    # joint verdict stays tls/none/tls-established (outcome tls implies caused_by none); the stripping is
    # reported beside it (tampered, differences). NAT of both ends.
    def forced_tls(label: str, reply: bytes, cport: int) -> gen.Conv:
        c = gen.Conv(cport=cport, isn=isn(label))
        c.s(BANNER).c(EHLO).s(reply)
        return gen.starttls_ok(c, "pairs strip but tls")

    d_out, d_in = decoys(3.0)
    sc.append(Scenario(
        "strip-but-tls", "a box removes the 250-STARTTLS line, but the client requires TLS and sends STARTTLS "
        "anyway; the server answers 220 and TLS 1.2 follows: tampered, not the cause. NAT of both ends",
        [Placed("delivery", forced_tls("strip tls out", EHLO_OK.replace(b"250-STARTTLS\r\n", b""), 40900),
                CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", forced_tls("strip tls in", EHLO_OK, 61009), BOX_INSIDE, SERVER, t(0.003)), *d_in],
        [PairTruth("delivery", "delivery", False, "none", "tls-established", "tls-established",
                   "tls-established", [
                       Diff("server->client", "removed", None, "250-STARTTLS",
                            outside_anchor="250-ENHANCEDSTATUSCODES")])]))
    sc += tls_box_scenarios()
    sc += hole_scenarios()
    return sc


# A firewall / IPS / DPI box that lets STARTTLS and its 220 through, then kills TLS. Each file alone blames an end
# (outside: the server that never answered or reset; inside: the client that never started TLS or reset); together
# they prove the box did it. The controls: TLS that works, a server that itself never answers the ClientHello
# (the ClientHello arrives inside too), and an inside capture that simply stops earlier (no evidence).
WAIT_MS = 5000.0
CH = gen.client_hello
CH_TEXT = "[TLS ClientHello: versions TLS 1.2, SNI mx.example.com]"


def _to_220(c: gen.Conv) -> gen.Conv:
    return c.s(BANNER).c(EHLO).s(EHLO_OK).c(STARTTLS).s(gen.READY)


def _flight_lines(label: str) -> tuple[bytes, list[bytes]]:
    """The server's TLS 1.2 answer to a ClientHello (ServerHello ... ServerHelloDone) and its records."""
    flight, _ = gen.server_flight_tls12(label, "mx.example.com")
    recs, pos = [], 0
    while pos < len(flight):
        n = 5 + int.from_bytes(flight[pos + 3:pos + 5], "big")
        recs.append(flight[pos:pos + n])
        pos += n
    return flight, recs


def tls_box_scenarios() -> list[Scenario]:
    sc: list[Scenario] = []
    fl_texts = ["[TLS ServerHello: TLS 1.2, cipher 0xc02b]", "[TLS Certificate: CN=mx.example.com,O=pcapsmtp "
                "test, valid 2025-01-01T00:00:00Z to 2030-01-01T00:00:00Z]", "[TLS ServerKeyExchange]",
                "[TLS ServerHelloDone]"]

    # 10 -- the box drops the ClientHello: outside the client waits 5 s for an answer and closes; inside the
    # server got the 220's STARTTLS and then nothing until the box passes the client's FIN on. NAT of both ends.
    hello = CH("dpi drop hello", "mx.example.com")
    o = _to_220(gen.Conv(cport=41000, isn=isn("dpi hello out"), close=("fin", "C")))
    o.c(hello).fin("C", delay_ms=WAIT_MS)
    i = _to_220(gen.Conv(cport=61040, isn=isn("dpi hello in"), close=("fin", "C")))
    i.fin("C", delay_ms=WAIT_MS + 1.0)
    d_out, d_in = decoys(2.0)
    sc.append(Scenario(
        "dpi-drop-clienthello", "a firewall / DPI box lets STARTTLS and the 220 through, then drops the "
        "client's ClientHello: outside the client waits 5 s for an answer and closes (alone: the server "
        "never answered), inside the server sees the 220 and then only the client's FIN (alone: the client "
        "never started TLS). NAT of both ends",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, BOX_INSIDE, SERVER, t(0.003)), *d_in],
        [PairTruth("delivery", "delivery", False, "middlebox", "tls-handshake-failed", "tls-handshake-failed",
                   "tls-not-started", [
                       Diff("client->server", "removed", CH_TEXT, None, outside_ref=("C", hello),
                            inside_ref=("C", "FIN"))], outside_case="server-silent")]))

    # 10b -- a black hole: after the 220 the box drops everything the client sends (the ClientHello, its FIN);
    # outside the client gives up after 5 s; inside nothing more of the client, and 300 s later the server's
    # own timeout closes (Postfix smtpd's default), which the box passes on. Only time shows the ClientHello
    # should have crossed by then. NAT of both ends.
    hello = CH("dpi black hole", "mx.example.com")
    o = _to_220(gen.Conv(cport=41050, isn=isn("dpi hole out"), close=("fin", "C")))
    o.c(hello).fin("C", delay_ms=WAIT_MS).fin("S", delay_ms=300_000.0 - WAIT_MS)
    i = _to_220(gen.Conv(cport=61046, isn=isn("dpi hole in"), close=None))
    i.fin("S", delay_ms=300_000.0)
    d_out, d_in = decoys(2.0)
    sc.append(Scenario(
        "dpi-blackhole", "after the 220 the box drops everything the client sends: outside the client waits 5 s "
        "for an answer to its ClientHello and closes (alone: the server never answered); inside nothing more "
        "comes from the client and the server's own timeout closes 300 s later (the box passes that FIN on). "
        "NAT of both ends",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, BOX_INSIDE, SERVER, t(0.003)), *d_in],
        [PairTruth("delivery", "delivery", False, "middlebox", "tls-handshake-failed", "tls-handshake-failed",
                   "incomplete", [
                       Diff("client->server", "removed", CH_TEXT, None, outside_ref=("C", hello),
                            inside_ref=("S", "FIN"))], outside_case="server-silent")]))

    # 11 -- the box drops the server's answer: inside the ServerHello flight goes out and the server waits;
    # outside the client never gets it, waits 5 s and closes (the box passes the FIN on both ways). NAT.
    hello = CH("dpi drop answer", "mx.example.com")
    flight, recs = _flight_lines("dpi drop answer")
    o = _to_220(gen.Conv(cport=41100, isn=isn("dpi answer out"), close=("fin", "C")))
    o.c(hello).fin("C", delay_ms=WAIT_MS)
    i = _to_220(gen.Conv(cport=61041, isn=isn("dpi answer in"), close=("fin", "C")))
    i.c(hello).s(flight).fin("C", delay_ms=WAIT_MS)
    d_out, d_in = decoys(2.5)
    sc.append(Scenario(
        "dpi-drop-answer", "the box passes the ClientHello but drops the server's answer (ServerHello, "
        "Certificate, ServerKeyExchange, ServerHelloDone): outside the client waits 5 s and closes (alone: "
        "the server never answered), inside the server answered, the box acknowledged it for the client, and "
        "the client closed 5 s later without a word (alone: the client stalled after the whole answer, "
        "client-silent). NAT of both ends",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, BOX_INSIDE, SERVER, t(0.003)), *d_in],
        [PairTruth("delivery", "delivery", False, "middlebox", "tls-handshake-failed", "tls-handshake-failed",
                   "tls-handshake-failed", [
                       Diff("server->client", "removed", None, text, outside_ref=("S", "FIN"),
                            inside_ref=("S", rec)) for text, rec in zip(fl_texts, recs)],
                   outside_case="server-silent", inside_case="client-silent")]))

    # 12 -- the box resets the connection itself (an IPS in bridge mode: the same addresses on both sides):
    # outside a RST "from the server" 5 ms after the ClientHello; inside the ClientHello arrived, the server
    # answered, and the box reset the server's side instead.
    hello = CH("dpi reset", "mx.example.com")
    flight, recs = _flight_lines("dpi reset")
    o = _to_220(gen.Conv(cport=41200, isn=isn("dpi reset out"), close=("rst", "S")))
    o.c(hello)
    i = _to_220(gen.Conv(cport=41200, isn=isn("dpi reset in"), close=("rst", "C")))
    i.c(hello).s(flight)
    d_out, d_in = decoys(3.0)
    sc.append(Scenario(
        "dpi-reset", "an IPS in bridge mode (same addresses and ports on both sides) lets STARTTLS and the 220 "
        "through, then resets the connection once the ClientHello passes: outside a RST 'from the server' "
        "(alone: the server reset), inside the server's answer to the ClientHello and the box's RST to the "
        "server (alone: the client reset)",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, CLIENT, PUBLIC_MX, t(0.001)), *d_in],
        [PairTruth("delivery", "delivery", False, "middlebox", "tls-handshake-failed", "tls-handshake-failed",
                   "tls-handshake-failed", [
                       *[Diff("server->client", "removed", None, text, outside_ref=("S", "RST"),
                              inside_ref=("S", rec)) for text, rec in zip(fl_texts, recs)],
                       Diff("client->server", "added", None, "[RST]", outside_ref=("S", "RST"),
                            inside_ref=("C", "RST")),
                       Diff("server->client", "added", "[RST]", None, outside_ref=("S", "RST"),
                            inside_ref=("C", "RST"))])]))

    # 12b -- the box resets both ends as soon as it sees the ClientHello, without passing it on (a firewall with
    # NAT): outside a RST "from the server" after the ClientHello; inside the 220 and then the box's RST to the
    # server, no ClientHello.
    hello = CH("dpi reset early", "mx.example.com")
    o = _to_220(gen.Conv(cport=41250, isn=isn("dpi reset early out"), close=("rst", "S")))
    o.c(hello)
    i = _to_220(gen.Conv(cport=61045, isn=isn("dpi reset early in"), close=("rst", "C")))
    d_out, d_in = decoys(3.0)
    sc.append(Scenario(
        "dpi-reset-early", "a firewall (NAT of both ends) lets STARTTLS and the 220 through and resets both ends "
        "as soon as it sees the ClientHello, which it never passes on: outside a RST 'from the server' after the "
        "ClientHello (alone: the server reset), inside the 220 and then the box's RST to the server (alone: the "
        "client reset without starting TLS)",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, BOX_INSIDE, SERVER, t(0.003)), *d_in],
        [PairTruth("delivery", "delivery", False, "middlebox", "tls-handshake-failed", "tls-handshake-failed",
                   "tls-not-started", [
                       Diff("client->server", "removed", CH_TEXT, None, outside_ref=("C", hello),
                            inside_ref=("C", "RST")),
                       Diff("client->server", "added", None, "[RST]", outside_ref=("S", "RST"),
                            inside_ref=("C", "RST")),
                       Diff("server->client", "added", "[RST]", None, outside_ref=("S", "RST"),
                            inside_ref=("C", "RST"))])]))

    # 13 -- controls. (a) The server itself never answers the ClientHello: it arrives inside too, nothing
    # comes back, the client gives up: identical on both sides, the server is blamed. (b) STARTTLS and TLS 1.2
    # through the same box. NAT of both ends.
    hello = CH("server silent", "mx.example.com")
    o = _to_220(gen.Conv(cport=41300, isn=isn("silent out"), close=("fin", "C")))
    o.c(hello).fin("C", delay_ms=WAIT_MS)
    i = _to_220(gen.Conv(cport=61042, isn=isn("silent in"), close=("fin", "C")))
    i.c(hello).fin("C", delay_ms=WAIT_MS)
    ok_o = gen.starttls_ok(gen.Conv(cport=41301, isn=isn("tls ok out")).s(BANNER).c(EHLO).s(EHLO_OK), "pairs tls ok")
    ok_i = gen.starttls_ok(gen.Conv(cport=61043, isn=isn("tls ok in")).s(BANNER).c(EHLO).s(EHLO_OK), "pairs tls ok")
    d_out, d_in = decoys(12.0)
    sc.append(Scenario(
        "server-silent", "controls for a box that kills TLS: a server that itself never answers the ClientHello "
        "(it arrives inside too; the client waits 5 s and closes): identical, the server is blamed; then a "
        "delivery whose STARTTLS and TLS 1.2 pass untouched. NAT of both ends",
        [Placed("silent", o, CLIENT, PUBLIC_MX, t(0.0)), Placed("tls", ok_o, CLIENT, PUBLIC_MX, t(8.0)), *d_out],
        [Placed("silent", i, BOX_INSIDE, SERVER, t(0.003)), Placed("tls", ok_i, BOX_INSIDE, SERVER, t(8.003)),
         *d_in],
        [PairTruth("silent", "silent", True, "server", "tls-handshake-failed", "tls-handshake-failed",
                   "tls-handshake-failed", outside_case="server-silent", inside_case="server-silent"),
         PairTruth("tls", "tls", True, "none", "tls-established", "tls-established", "tls-established")]))

    # 14 -- control: the inside capture simply stops after the 220 (no FIN, no RST: tcpdump was ended there).
    # Nothing inside shows the client's direction after the 220, so the ClientHello missing there proves
    # nothing (its frame inside is null) and the box is not blamed.
    hello = CH("inside ends", "mx.example.com")
    o = _to_220(gen.Conv(cport=41400, isn=isn("ends out"), close=("fin", "C")))
    o.c(hello).fin("C", delay_ms=WAIT_MS)
    i = _to_220(gen.Conv(cport=61044, isn=isn("ends in"), close=None))
    d_out, d_in = decoys(2.0)
    sc.append(Scenario(
        "inside-ends-early", "control: outside as dpi-drop-clienthello, but the inside capture simply ends "
        "after the 220 (no FIN or RST of the client's direction): the missing ClientHello is no evidence "
        "against the box; the outside verdict stands. NAT of both ends",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, BOX_INSIDE, SERVER, t(0.003)), *d_in],
        [PairTruth("delivery", "delivery", False, "server", "tls-handshake-failed", "tls-handshake-failed",
                   "incomplete", [
                       Diff("client->server", "removed", CH_TEXT, None, outside_ref=("C", hello))],
                   tampered=False, outside_case="server-silent")]))
    return sc


# A stateful firewall that is no proxy drops a segment and passes the later ones as they are: a FIN that follows
# has a sequence number past the dropped bytes, so the capture behind the box holds a hole where they were. Whether
# the receiver acknowledged the hole tells a capture's loss (acknowledged: the receiver got the bytes) from the box's
# drop (never acknowledged, while the receiver's own later segments carry its ACK). A real TCP sends such a FIN
# only before its first retransmission timeout (about 200 ms on Linux): once that fired, its congestion window of
# one segment holds the FIN back, and the FIN rides on the resent record, which the box drops too
# (tests/test_diff.py's live test shows it with real Linux stacks). So here the end that gives up does so 0.1 s
# after its record, and resends it, with the FIN, afterwards. The controls: a hole the receiver acknowledged (the
# capture lost the line, the box did not), and holes nothing of the receiver's shows after.
FL_TEXTS = ["[TLS ServerHello: TLS 1.2, cipher 0xc02b]", "[TLS Certificate: CN=mx.example.com,O=pcapsmtp test, "
            "valid 2025-01-01T00:00:00Z to 2030-01-01T00:00:00Z]", "[TLS ServerKeyExchange]",
            "[TLS ServerHelloDone]"]
RTO_MS = (200.0, 600.0, 1400.0)     # a TCP sender's resends of unacknowledged bytes (exponential backoff)
GIVE_UP_MS = 100.0                  # before the first retransmission timeout


class Resending(gen.Conv):
    """A conversation whose ``side`` resends ``data`` (already sent, never acknowledged) together with its FIN,
    ``after_ms`` after each first sending, as a TCP does after its retransmission timeout once it has closed: the
    FIN joined to the resent bytes. ``captured``: whether this capture point sees the resends (a box before it
    drops them)."""

    def __init__(self, *, resend: tuple[str, bytes, tuple[float, ...], bool], **kw: Any) -> None:
        super().__init__(**kw)
        self.resend = resend

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[gen.Pkt], dict[str, tuple[str, int]]]:
        import dataclasses

        pkts, marks = super().emit(conv_index, t_start_ns)
        side, data, after_ms, captured = self.resend
        first = next(p for p in pkts if p.side == side and p.payload == data)
        for ms in after_ms:
            ts = first.ts_ns + int(ms * MS)
            ack = max((p for p in pkts if p.side == side and p.ts_ns <= ts), key=lambda p: p.ts_ns).ack
            pkts.append(dataclasses.replace(first, ts_ns=ts, flags="FPA", ack=ack, label="retransmission",
                                            captured=captured))
        pkts.sort(key=lambda p: p.ts_ns)
        return pkts, marks


def hole_scenarios() -> list[Scenario]:
    sc: list[Scenario] = []

    # 15 -- the box drops the ClientHello and forwards the client's FIN as it is. The client gives up 0.1 s after
    # its ClientHello: the FIN leaves before any resend, its sequence number past the ClientHello, and crosses the
    # box; the resends that follow carry the ClientHello (and the FIN), and the box drops them. Inside: a hole of
    # the ClientHello's length before the client's FIN, which the server never acknowledges (a duplicate ACK, then
    # its own FIN 300 s later, Postfix's timeout, still before the hole). NAT of both ends.
    hello = CH("dpi drop hello fin", "mx.example.com")
    o = _to_220(Resending(cport=41060, isn=isn("dpi hello fin out"), close=None, resend=("C", hello, RTO_MS, True)))
    o.c(hello, resend_ms=()).fin("C", delay_ms=GIVE_UP_MS).fin("S", delay_ms=300_000.0)
    i = _to_220(gen.Conv(cport=61047, isn=isn("dpi hello fin in"), close=None))
    i.c(hello, lost={0}, resend_ms=()).fin("C", delay_ms=GIVE_UP_MS).fin("S", delay_ms=300_000.0)
    d_out, d_in = decoys(2.0)
    sc.append(Scenario(
        "dpi-drop-clienthello-fin", "a stateful firewall (no proxy) lets STARTTLS and the 220 through, drops the "
        "client's ClientHello and its resends, and forwards the client's FIN as it is; the client gives up 0.1 s "
        "after its ClientHello, before its first resend, so its FIN crosses: inside a hole the server never "
        "acknowledges before that FIN (its duplicate ACK and its own FIN 300 s later stay before it; alone: "
        "the path dropped the ClientHello, case hello-lost: the server's FIN 300 s later still acknowledges "
        "nothing of it); outside the client closed 0.1 s after its ClientHello, "
        "but the server's FIN 300 s later still acknowledges nothing of it (alone: hello-lost too: the client's TCP "
        "resent it after the close and it never arrived). NAT of both ends",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, BOX_INSIDE, SERVER, t(0.003)), *d_in],
        [PairTruth("delivery", "delivery", False, "middlebox", "tls-handshake-failed", "tls-handshake-failed",
                   "tls-handshake-failed", [
                       Diff("client->server", "removed", CH_TEXT, None, outside_ref=("C", hello),
                            inside_ref=("C", "FIN"))], outside_case="hello-lost", inside_case="hello-lost")]))

    # 16 -- the box drops the server's answer to the ClientHello and forwards the server's FIN as it is. The client
    # gives up 0.1 s after the answer was sent, the server closes at once, before its first resend, and its FIN
    # crosses: outside a hole before it that the client never acknowledges. But the client's only segment after
    # the answer was sent is its FIN 0.1 s later (too soon: the answer may still have been on its way) and then
    # pure ACKs, which are not part of the dialogue: no evidence against the box. The outside alone is incomplete, the
    # inside alone decided (the client closed 0.1 s after the answer, too soon to have waited for it); the pair stays
    # incomplete (the answer may never have reached the client). Inside, the server resends its answer with its
    # FIN. NAT of both ends.
    hello = CH("dpi drop answer fin", "mx.example.com")
    flight, recs = _flight_lines("dpi drop answer fin")
    o = _to_220(gen.Conv(cport=41110, isn=isn("dpi answer fin out"), close=("fin", "C")))
    o.c(hello).s(flight, lost={0}, resend_ms=()).fin("C", delay_ms=GIVE_UP_MS)
    i = _to_220(Resending(cport=61048, isn=isn("dpi answer fin in"), close=("fin", "C"),
                          resend=("S", flight, RTO_MS, True)))
    i.c(hello).s(flight, resend_ms=()).fin("C", delay_ms=GIVE_UP_MS)
    d_out, d_in = decoys(2.5)
    sc.append(Scenario(
        "dpi-drop-answer-fin", "control: a stateful firewall (no proxy) passes the ClientHello, drops the server's "
        "answer (ServerHello ... ServerHelloDone) and its resends, and forwards the server's FIN as it is, which "
        "crosses because the client gave up 0.1 s after the answer was sent and the server closed before its first "
        "resend: outside a hole before that FIN, never acknowledged, but nothing of the client's but its FIN 0.1 s "
        "after the answer and pure ACKs follows it: no evidence (alone: incomplete); inside the client closed 0.1 s "
        "after the answer (alone: the client ended the handshake). The pair stays incomplete: the answer the "
        "inside shows lies, outside, in bytes nothing shows reached the client, so the inside's verdict may rest "
        "on what the client never got. NAT of both ends",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, BOX_INSIDE, SERVER, t(0.003)), *d_in],
        [PairTruth("delivery", "delivery", False, "unknown", "incomplete", "incomplete",
                   "tls-handshake-failed", [
                       Diff("server->client", "removed", None, text, inside_ref=("S", rec))
                       for text, rec in zip(FL_TEXTS, recs)], tampered=False)]))

    # 17 -- control: the outside capture lost the segment that carried 250-STARTTLS (the middle of the EHLO reply),
    # which the client acknowledged: it reached the client, the box did not remove it. No evidence against the box;
    # the outside verdict is incomplete, the inside's decided (the client did not ask): the pair takes the inside's.
    # NAT of both ends.
    cut = EHLO_OK.index(b"250-STARTTLS")
    reply = [EHLO_OK[:cut], EHLO_OK[cut:cut + 14], EHLO_OK[cut + 14:]]
    env = mail("erin@example.org", "frank@example.com", body("lost segment", 400))
    o = conv("capture lost out", 41500, [("S", BANNER), ("C", EHLO), ("S", reply, {"lost": {1}}), *env])
    i = conv("capture lost in", 61049, [("S", BANNER), ("C", EHLO), ("S", reply), *env])
    d_out, d_in = decoys(1.0)
    sc.append(Scenario(
        "capture-lost-offer", "control: the outside capture lost the segment that carried 250-STARTTLS, which the "
        "client acknowledged (it got it, and did not ask for STARTTLS); the box changed nothing. The line missing "
        "outside is no evidence against the box; the outside verdict is incomplete, so the pair takes the inside's "
        "(the client did not request STARTTLS). NAT of both ends",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, BOX_INSIDE, SERVER, t(0.003)), *d_in],
        [PairTruth("delivery", "delivery", False, "client", "client-did-not-request", "incomplete",
                   "client-did-not-request",
                   [Diff("server->client", "removed", None, "250-STARTTLS")], tampered=False)]))

    # 18 -- control: as dpi-drop-clienthello-fin, but both captures end 10 s later, before the server's own
    # timeout: nothing of the server's after the hole but a pure ACK (not part of the dialogue), so nothing shows
    # that the ClientHello did not reach it. No evidence; the pair keeps the outside verdict.
    hello = CH("fin hole silent", "mx.example.com")
    o = _to_220(Resending(cport=41070, isn=isn("fin hole silent out"), close=None, resend=("C", hello, RTO_MS, True)))
    o.c(hello, resend_ms=()).fin("C", delay_ms=GIVE_UP_MS)
    i = _to_220(gen.Conv(cport=61050, isn=isn("fin hole silent in"), close=None))
    i.c(hello, lost={0}, resend_ms=()).fin("C", delay_ms=GIVE_UP_MS)
    d_out, d_in = decoys(2.0)
    sc.append(Scenario(
        "fin-hole-unproven", "control: the box of dpi-drop-clienthello-fin, but both captures end before the "
        "server's own timeout: inside the hole before the client's FIN is never acknowledged, but nothing of the "
        "server's but a pure ACK follows it, so nothing shows what the server had. No evidence against the box; the "
        "outside verdict stands: incomplete too (the client closed 0.1 s after a ClientHello the server had not "
        "acknowledged, and nothing of the server's later shows whether it ever arrived). NAT of both ends",
        [Placed("delivery", o, CLIENT, PUBLIC_MX, t(0.0)), *d_out],
        [Placed("delivery", i, BOX_INSIDE, SERVER, t(0.003)), *d_in],
        [PairTruth("delivery", "delivery", False, "unknown", "incomplete", "incomplete",
                   "incomplete", [Diff("client->server", "removed", CH_TEXT, None, outside_ref=("C", hello))],
                   tampered=False)]))
    return sc


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------

def render(s: Scenario) -> tuple[bytes, bytes, dict[str, Any]]:
    bo, bi = build_file(s.outside), build_file(s.inside)

    def frame(b: Built, key: str, direction: str, side_is_outside: bool, text: str) -> int:
        # The line is the sender's on the sending side of the direction: S lines for server->client.
        side = "S" if direction == "server->client" else "C"
        return line_frame(b, key, side, text)

    pairs = []
    for p in s.pairs:
        diffs = []
        for d in p.diffs:
            o_text = d.outside_line if d.outside_line is not None else d.outside_anchor
            i_text = d.inside_line if d.inside_line is not None else d.inside_anchor
            # neither a line, an anchor nor a ref: that capture shows nothing of the direction there (null)
            diffs.append({"direction": d.direction, "kind": d.kind,
                          "outside_frame": (ref_frame(bo, p.outside, d.outside_ref) if d.outside_ref
                                            else None if o_text is None
                                            else frame(bo, p.outside, d.direction, True, o_text)),
                          "inside_frame": (ref_frame(bi, p.inside, d.inside_ref) if d.inside_ref
                                           else None if i_text is None
                                           else frame(bi, p.inside, d.direction, False, i_text)),
                          "outside_line": d.outside_line, "inside_line": d.inside_line})
        pairs.append({"outside_stream": bo.streams[p.outside], "inside_stream": bi.streams[p.inside],
                      "outside_first_frame": bo.first_frames[p.outside],
                      "inside_first_frame": bi.first_frames[p.inside],
                      "identical": p.identical, "tampered": p.changed, "caused_by": p.caused_by,
                      "reason": p.reason,
                      "outside_reason": p.outside_reason, "inside_reason": p.inside_reason,
                      "outside_case": p.outside_case, "inside_case": p.inside_case,
                      "differences": diffs})
    paired_o = {p.outside for p in s.pairs}
    paired_i = {p.inside for p in s.pairs}
    entry = {
        "description": s.description,
        "outside": f"{s.name}.outside.pcap", "inside": f"{s.name}.inside.pcap",
        "outside_frame_count": bo.frame_count, "inside_frame_count": bi.frame_count,
        "clock_offset_s": s.clock_offset_s,
        "pairs": pairs,
        "unpaired_outside": sorted(bo.streams[k] for k in bo.streams if k not in paired_o),
        "unpaired_inside": sorted(bi.streams[k] for k in bi.streams if k not in paired_i),
        "tampered": any(p.changed for p in s.pairs),
    }
    return bo.data, bi.data, entry


def generate(out: Path = OUT) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    expected: dict[str, Any] = {}
    for s in scenarios():
        o, i, entry = render(s)
        (out / entry["outside"]).write_bytes(o)
        (out / entry["inside"]).write_bytes(i)
        expected[s.name] = entry
    (out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    return expected


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default: captures/pairs)")
    ap.add_argument("--list", action="store_true", help="print the scenario names and exit")
    args = ap.parse_args(argv)
    if args.list:
        for s in scenarios():
            print(s.name)
        return 0
    generate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
