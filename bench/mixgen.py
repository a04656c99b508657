#!/usr/bin/env python3
"""Seeded generator of a realistic capture for the pcapsmtp benchmark, with its ground truth.

    python bench/mixgen.py --packets 1000000 --seed 1 -o bench/out/mixed-1000000.pcap
    python bench/mixgen.py --packets 250000 --seed 1 --all-smtp -o bench/out/allsmtp-250000.pcap

Writes a classic pcap (Ethernet, microsecond timestamps) and ``<name>.truth.json`` next to it.

The mixed file is HTTP on 80, TLS on 443 and DNS over UDP with SMTP conversations of every kind the output
contract names (see ``SMTP_KINDS``) making up 5-10 % of the packets. The ``--all-smtp`` file holds only SMTP
conversations, and their messages are 100 kB to 2 MB. Every TCP conversation has its SYN/FIN handshakes and ACKs;
some SMTP replies are split mid-line across segments, some segments are retransmitted (exact duplicates) and some
segment pairs arrive swapped. A few conversations run over IPv6.

Frames are packed with ``struct`` (no per-packet scapy objects), so a million packets take seconds, not minutes.
The output depends only on the arguments: the same seed gives the same bytes.

``--packets N`` is a floor: conversations are generated whole until at least N packets exist, so the file holds
N plus at most one conversation's worth.

Truth: one entry per SMTP conversation, in order of first frame, with Wireshark's ``tcp.stream`` index (every TCP
conversation counts, in order of first packet; UDP does not), the 1-based ``first_frame``, client and server,
and the expected ``outcome``, ``caused_by`` and ``reason``.
"""
from __future__ import annotations

import argparse
import base64
import heapq
import ipaddress
import json
import random
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------------- scenario table

#: kind -> (outcome, caused_by, reason); the vocabulary of docs/output-contract.md
SMTP_KINDS: dict[str, tuple[str, str, str]] = {
    "tls-established": ("tls", "none", "tls-established"),
    "implicit-tls": ("tls", "none", "implicit-tls"),
    "client-did-not-request": ("plaintext", "client", "client-did-not-request"),
    "client-used-helo": ("plaintext", "client", "client-used-helo"),
    "starttls-not-offered": ("plaintext", "server", "starttls-not-offered"),
    "starttls-misplaced": ("plaintext", "server", "starttls-misplaced"),
    "ehlo-rejected": ("plaintext", "server", "ehlo-rejected"),
    "starttls-refused": ("plaintext", "server", "starttls-refused"),
    "starttls-masked": ("plaintext", "middlebox", "starttls-masked"),
    "tls-handshake-failed": ("aborted", "server", "tls-handshake-failed"),
}
KIND_WEIGHTS: dict[str, int] = {
    "tls-established": 30, "implicit-tls": 8, "client-did-not-request": 8, "client-used-helo": 6,
    "starttls-not-offered": 12, "starttls-misplaced": 6, "ehlo-rejected": 6, "starttls-refused": 6,
    "starttls-masked": 6, "tls-handshake-failed": 6,
}
KIND_INDEX = {k: i for i, k in enumerate(SMTP_KINDS)}

MSS = 1460
SMTP_TARGET_SHARE = 0.075  # of packets, in the mixed file
IPV6_SHARE = 0.03

# ------------------------------------------------------------------------------------------------ packing

_PCAP_HDR = struct.Struct("<IHHiIII")
_REC = struct.Struct("<IIII")
_TCP = struct.Struct("!HHIIBBHHH")
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
SYN_OPTS = b"\x02\x04\x05\xb4\x01\x01\x04\x02"  # MSS 1460, NOP, NOP, SACK permitted


def _osum(data: bytes) -> int:
    """Ones-complement sum of 16-bit big-endian words, modulo 0xffff (2**16 == 1 mod 0xffff)."""
    if len(data) & 1:
        return (int.from_bytes(data, "big") << 8) % 0xFFFF
    return int.from_bytes(data, "big") % 0xFFFF


class Path1:
    """One direction of one IP conversation: precomputed headers and checksum parts."""

    __slots__ = ("eth", "src", "dst", "v6", "ipsum", "psum", "ipid", "ttl")

    def __init__(self, src_mac: bytes, dst_mac: bytes, src: bytes, dst: bytes, ttl: int, ipid: int) -> None:
        self.v6 = len(src) == 16
        self.eth = dst_mac + src_mac + (b"\x86\xdd" if self.v6 else b"\x08\x00")
        self.src, self.dst, self.ttl, self.ipid = src, dst, ttl, ipid
        self.psum = _osum(src + dst)
        if not self.v6:
            self.ipsum = _osum(_IP4.pack(0x45, 0, 0, 0, 0x4000, ttl, 0, 0, src, dst))  # proto added per packet

    def ip(self, proto: int, l4: bytes) -> bytes:
        n = len(l4)
        if self.v6:
            return self.eth + _IP6.pack(0x60000000, n, proto, self.ttl, self.src, self.dst) + l4
        self.ipid = (self.ipid + 1) & 0xFFFF
        tot = n + 20
        ck = (-(self.ipsum + tot + self.ipid + proto)) % 0xFFFF
        return self.eth + _IP4.pack(0x45, 0, tot, self.ipid, 0x4000, self.ttl, proto, ck, self.src, self.dst) + l4

    def tcp(self, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes,
            opts: bytes = b"") -> bytes:
        thl = 20 + len(opts)
        n = thl + len(payload)
        hdr = _TCP.pack(sport, dport, seq, ack, (thl >> 2) << 4, flags, 64240 if flags & SYN else 4096, 0, 0)
        s = self.psum + 6 + n + _osum(hdr) + (_osum(opts) if opts else 0) + (_osum(payload) if payload else 0)
        ck = (-s) % 0xFFFF
        hdr = _TCP.pack(sport, dport, seq, ack, (thl >> 2) << 4, flags, 64240 if flags & SYN else 4096, ck, 0)
        return self.ip(6, hdr + opts + payload)

    def udp(self, sport: int, dport: int, payload: bytes) -> bytes:
        n = 8 + len(payload)
        s = self.psum + 17 + n + _osum(_UDP.pack(sport, dport, n, 0)) + _osum(payload)
        ck = (-s) % 0xFFFF or 0xFFFF
        return self.ip(17, _UDP.pack(sport, dport, n, ck) + payload)


# ------------------------------------------------------------------------------------------- conversations

@dataclass
class Conv:
    """A generated conversation: its frames with timestamps (µs), in emission order, and its metadata."""

    frames: list[tuple[int, bytes]] = field(default_factory=list)
    tcp: bool = True
    kind: str = ""
    truth: dict[str, Any] | None = None


class Tcp:
    """Builds one TCP conversation frame by frame; side 0 is the client, side 1 the server."""

    def __init__(self, g: "Generator", cli: bytes, cport: int, srv: bytes, sport: int, t0: int,
                 rtt: int) -> None:
        rng = g.rng
        self.g, self.rng = g, rng
        cmac = b"\x02\x00" + cli[-4:]
        gw = b"\x00\x1b\x21\x3a\x4f\x01"
        self.p = (Path1(cmac, gw, cli, srv, 64, rng.getrandbits(16)),
                  Path1(gw, cmac, srv, cli, 52, rng.getrandbits(16)))
        self.ports = ((cport, sport), (sport, cport))
        self.nxt = [rng.getrandbits(32), rng.getrandbits(32)]
        self.t = t0
        self.rtt = rtt
        self.conv = Conv()
        self.retrans = 0
        self.reordered = 0
        self.splits = 0

    # -- low level
    def emit(self, side: int, flags: int, payload: bytes = b"", seq: int | None = None, ack: int | None = None,
             opts: bytes = b"") -> bytes:
        sp, dp = self.ports[side]
        s = self.nxt[side] if seq is None else seq
        a = self.nxt[1 - side] if ack is None else ack
        fr = self.p[side].tcp(sp, dp, s & 0xFFFFFFFF, (a & 0xFFFFFFFF) if flags & ACK else 0, flags, payload, opts)
        self.conv.frames.append((self.t, fr))
        return fr

    def wait(self, us: int) -> None:
        self.t += max(1, us)

    def half(self) -> int:
        return self.rtt // 2 + self.rng.randint(0, 200)

    # -- phases
    def handshake(self) -> None:
        self.emit(0, SYN, opts=SYN_OPTS)
        self.nxt[0] += 1
        self.wait(self.half())
        self.emit(1, SYN | ACK, opts=SYN_OPTS)
        self.nxt[1] += 1
        self.wait(self.half())
        self.emit(0, ACK)

    def send(self, side: int, data: bytes, *, delay: int | None = None, cuts: list[int] | None = None,
             reorder: bool = False, retrans: bool = False, bulk: bool = False) -> None:
        """Send ``data`` from ``side`` after ``delay`` µs: MSS segments (or at ``cuts``), PSH on the last one.

        ``bulk``: the receiver ACKs every second segment (data flows); otherwise the next data the other side
        sends carries the ACK.
        """
        self.wait(self.half() if delay is None else delay)
        bounds = sorted(set([0, len(data)] + [c for c in (cuts or []) if 0 < c < len(data)]))
        pieces: list[tuple[int, int]] = []
        for a, b in zip(bounds, bounds[1:]):
            while b - a > MSS:
                pieces.append((a, a + MSS))
                a += MSS
            pieces.append((a, b))
        if len(pieces) > 1 and cuts:
            self.splits += 1
        order = list(range(len(pieces)))
        if reorder and len(pieces) >= 2:
            i = self.rng.randrange(len(pieces) - 1)
            order[i], order[i + 1] = order[i + 1], order[i]
            self.reordered += 1
        dup = self.rng.randrange(len(pieces)) if retrans else -1
        base = self.nxt[side]
        win = 10
        sent = 0
        got = [False] * len(pieces)
        upto = 0  # pieces received contiguously from the start
        for k, idx in enumerate(order):
            a, b = pieces[idx]
            last = b == len(data)
            fr = self.emit(side, ACK | (PSH if last else 0), data[a:b], seq=base + a)
            if k == dup:
                self.wait(200_000 + self.rng.randint(0, 30_000))  # RTO: the exact same frame again
                self.conv.frames.append((self.t, fr))
                self.retrans += 1
            sent += 1
            got[idx] = True
            while upto < len(pieces) and got[upto]:
                upto += 1
            self.wait(12 + (b - a) // 128)  # about 1 Gb/s serialisation
            if bulk and (sent % 2 == 0 or k == len(order) - 1):
                self.wait(30)
                self.emit(1 - side, ACK, ack=base + (pieces[upto - 1][1] if upto else 0))
            if bulk and sent % win == 0:
                self.wait(self.rtt)
                win = min(win * 2, 64)
        self.nxt[side] = base + len(data)

    def ack(self, side: int, delay: int | None = None) -> None:
        self.wait(self.half() if delay is None else delay)
        self.emit(side, ACK)

    def close(self, first: int) -> None:
        self.wait(self.half())
        self.emit(first, FIN | ACK)
        self.nxt[first] += 1
        self.wait(self.half())
        self.emit(1 - first, FIN | ACK)
        self.nxt[1 - first] += 1
        self.wait(self.half())
        self.emit(first, ACK)


# ------------------------------------------------------------------------------------------------- TLS bytes

def _rec(ctype: int, body: bytes, ver: int = 0x0303) -> bytes:
    return struct.pack("!BHH", ctype, ver, len(body)) + body


def _hs(htype: int, body: bytes) -> bytes:
    return struct.pack("!B", htype) + len(body).to_bytes(3, "big") + body


def _ext(etype: int, body: bytes) -> bytes:
    return struct.pack("!HH", etype, len(body)) + body


def _vec(body: bytes, n: int) -> bytes:
    return len(body).to_bytes(n, "big") + body


class TlsBytes:
    """Plausible TLS 1.2 and 1.3 records (real framing, random key material)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cert = _make_cert(rng)

    def rand(self, n: int) -> bytes:
        return self.rng.randbytes(n)

    def client_hello(self, sni: str) -> bytes:
        suites = bytes.fromhex("130213031301c02cc030c02bc02fcca9cca8009f009e")
        host = sni.encode()
        exts = b"".join([
            _ext(0, _vec(b"\x00" + _vec(host, 2), 2)),
            _ext(0x000B, b"\x03\x00\x01\x02"),
            _ext(0x000A, _vec(bytes.fromhex("001d00170018"), 2)),
            _ext(0x0023, b""),
            _ext(0x0016, b""),
            _ext(0x0017, b""),
            _ext(0x000D, _vec(bytes.fromhex("0403050306030804080508060401050106010201"), 2)),
            _ext(0x002B, _vec(bytes.fromhex("03040303"), 1)),
            _ext(0x002D, b"\x01\x01"),
            _ext(0x0033, _vec(b"\x00\x1d\x00\x20" + self.rand(32), 2)),
        ])
        body = b"\x03\x03" + self.rand(32) + _vec(self.rand(32), 1) + _vec(suites, 2) + b"\x01\x00" + _vec(exts, 2)
        return _rec(22, _hs(1, body), 0x0301)

    def server_flight(self, v13: bool) -> bytes:
        if v13:
            exts = _ext(0x002B, b"\x03\x04") + _ext(0x0033, b"\x00\x1d\x00\x20" + self.rand(32))
            sh = b"\x03\x03" + self.rand(32) + _vec(self.rand(32), 1) + b"\x13\x02\x00" + _vec(exts, 2)
            enc = len(self.cert) + 400 + self.rng.randint(0, 300)
            return _rec(22, _hs(2, sh)) + _rec(20, b"\x01") + _rec(23, self.rand(enc))
        exts = _ext(0xFF01, b"\x00") + _ext(0x000B, b"\x01\x00") + _ext(0x0017, b"")
        sh = b"\x03\x03" + self.rand(32) + _vec(self.rand(32), 1) + b"\xc0\x2f\x00" + _vec(exts, 2)
        certs = _vec(_vec(self.cert, 3), 3)
        ske = b"\x03\x00\x1d\x20" + self.rand(32) + b"\x04\x03" + _vec(self.rand(71), 2)
        return _rec(22, _hs(2, sh) + _hs(11, certs) + _hs(12, ske) + _hs(14, b""))

    def client_finish(self, v13: bool) -> bytes:
        if v13:
            return _rec(20, b"\x01") + _rec(23, self.rand(53))
        return _rec(22, _hs(16, b"\x20" + self.rand(32))) + _rec(20, b"\x01") + _rec(22, self.rand(40))

    def server_finish(self, v13: bool) -> bytes:
        if v13:
            return _rec(23, self.rand(250 + self.rng.randint(0, 40)))  # NewSessionTicket, encrypted
        return _rec(20, b"\x01") + _rec(22, self.rand(40))

    def app(self, n: int) -> bytes:
        """``n`` plaintext bytes as application-data records of at most 16 kB each (AEAD overhead 17/24)."""
        out = []
        while n > 0:
            k = min(n, 16384)
            out.append(_rec(23, self.rand(k + 17)))
            n -= k
        return b"".join(out)

    def close_notify(self) -> bytes:
        return _rec(21, self.rand(26))

    @staticmethod
    def alert(desc: int) -> bytes:
        return _rec(21, bytes([2, desc]))


def _make_cert(rng: random.Random) -> bytes:
    """A real DER certificate (Ed25519, deterministic); a random blob of the same size without ``cryptography``."""
    try:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding
        from cryptography.x509.oid import NameOID

        key = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.example.net")])
        start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(rng.getrandbits(64) | 1).not_valid_before(start)
                .not_valid_after(start + datetime.timedelta(days=365))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("mx.example.net")]), critical=False)
                .sign(key, None))
        return cert.public_bytes(Encoding.DER) + b""  # ~ 300 bytes; padded by a chain below
    except Exception:  # pragma: no cover - cryptography is an install requirement
        return rng.randbytes(320)


# --------------------------------------------------------------------------------------------- the generator

BANNERS = ["ESMTP Postfix", "ESMTP Exim 4.96", "Microsoft ESMTP MAIL Service ready", "ESMTP Sendmail 8.17.1",
           "ESMTP OpenSMTPD", "ESMTP Haraka ready"]
EXTS = ["PIPELINING", "SIZE 52428800", "ETRN", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING",
        "AUTH PLAIN LOGIN"]


class Generator:
    def __init__(self, seed: int, all_smtp: bool, relay: bool = False) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.all_smtp = all_smtp or relay
        self.big = all_smtp and not relay      # 100 kB - 2 MB messages (else ordinary mail)
        self.tls = TlsBytes(random.Random(seed ^ 0x5A5A))
        self.pool = self.rng.randbytes(1 << 21)  # HTTP body bytes
        text = base64.encodebytes(self.rng.randbytes(3 << 20))  # 76-char lines, LF
        self.text = text.replace(b"\n", b"\r\n")  # message body lines (no leading '.')
        self.ports: dict[bytes, int] = {}
        self.unique_clients = 0
        self.smtp_packets = 0
        self.total_packets = 0
        self.counts: dict[str, int] = {}
        self.smtp_seen: set[str] = set()
        self.order = list(SMTP_KINDS)
        self.rng.shuffle(self.order)

    # -- addresses
    def v6(self) -> bool:
        return self.rng.random() < IPV6_SHARE

    def client(self, pool: int, v6: bool, unique: bool = False) -> bytes:
        if unique:
            self.unique_clients += 1
            n = self.unique_clients
            if v6:
                return ipaddress.IPv6Address(f"2001:db8:99::{n:x}").packed
            return bytes([10, 99, (n >> 8) & 255, n & 255])
        n = self.rng.randrange(1, 4000)
        if v6:
            return ipaddress.IPv6Address(f"2001:db8:{pool:x}::{n:x}").packed
        return bytes([10, pool, n >> 8, n & 255 or 1])

    def server(self, net: int, host: int, v6: bool) -> bytes:
        if v6:
            return ipaddress.IPv6Address(f"2001:db8:f{net:x}::{host:x}").packed
        nets = {1: (198, 51, 100), 2: (203, 0, 113), 3: (192, 0, 2)}
        if net in nets:
            return bytes(nets[net]) + bytes([host])
        return bytes([100, 64 + net, host >> 8, host & 255])

    def port(self, ip: bytes) -> int:
        p = self.ports.get(ip)
        p = self.rng.randrange(32768, 50000) if p is None else p + self.rng.randint(1, 7)
        if p > 65000:
            raise RuntimeError("client port space exhausted; widen the client pool")
        self.ports[ip] = p
        return p

    def rtt(self) -> int:
        return int(self.rng.lognormvariate(9.6, 0.8))  # median ~15 ms

    # -- choice of the next conversation
    def next_conv(self, t0: int) -> Conv:
        if self.all_smtp:
            return self.smtp(t0)
        share = self.smtp_packets / self.total_packets if self.total_packets else 0.0
        r = self.rng.random()
        if r < (0.25 if share < SMTP_TARGET_SHARE else 0.01):
            return self.smtp(t0)
        if r < 0.6:
            return self.dns(t0)
        if r < 0.8:
            return self.http(t0)
        return self.https(t0)

    def account(self, c: Conv, smtp: bool) -> Conv:
        n = len(c.frames)
        self.total_packets += n
        if smtp:
            self.smtp_packets += n
        key = "smtp" if smtp else c.kind
        self.counts[key] = self.counts.get(key, 0) + n
        return c

    # -- background
    def dns(self, t0: int) -> Conv:
        rng = self.rng
        v6 = self.v6()
        cli = self.client(1, v6)
        res = self.server(9, 53, v6)
        cmac = b"\x02\x00" + cli[-4:]
        gw = b"\x00\x1b\x21\x3a\x4f\x01"
        up, down = Path1(cmac, gw, cli, res, 64, rng.getrandbits(16)), Path1(gw, cmac, res, cli, 60, 0)
        host = rng.choice(['www', 'api', 'cdn', 'mail', 'static'])
        name = f"{host}{rng.randrange(1000)}.example{rng.randrange(50)}.com"
        qname = b"".join(_vec(label.encode(), 1) for label in name.split(".")) + b"\x00"
        qtype = 28 if v6 else 1
        qid = rng.getrandbits(16)
        q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)
        rdata = rng.randbytes(16) if v6 else rng.randbytes(4)
        ans = b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 300, len(rdata)) + rdata
        r = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + qname + struct.pack("!HH", qtype, 1) + ans
        sp = rng.randrange(1024, 65535)
        c = Conv(tcp=False, kind="dns")
        c.frames.append((t0, up.udp(sp, 53, q)))
        c.frames.append((t0 + rng.randint(300, 40_000), down.udp(53, sp, r)))
        return self.account(c, False)

    def body_size(self, median: float, sigma: float, cap: int) -> int:
        return max(0, min(cap, int(self.rng.lognormvariate(median, sigma))))

    def http(self, t0: int) -> Conv:
        rng = self.rng
        v6 = self.v6()
        cli = self.client(2, v6)
        srv = self.server(2, rng.randrange(1, 250), v6)
        c = Tcp(self, cli, self.port(cli), srv, 80, t0, self.rtt())
        c.handshake()
        for i in range(rng.choice([1, 1, 1, 2, 3])):
            top = rng.choice(['index.html', 'img', 'static/app.js', 'api/v1/items', 'style.css'])
            path = f"/{top}/{rng.randrange(10**6)}"
            req = (f"GET {path} HTTP/1.1\r\nHost: www{rng.randrange(100)}.example.com\r\n"
                   f"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
                   f"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n").encode()
            c.send(0, req, delay=c.half() if i == 0 else rng.randint(200, 50_000))
            n = self.body_size(6.6, 1.6, 300_000)
            off = rng.randrange(len(self.pool) - n)
            hdr = (f"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/octet-stream\r\n"
                   f"Content-Length: {n}\r\nConnection: keep-alive\r\n\r\n").encode()
            c.send(1, hdr + self.pool[off:off + n], delay=c.rtt + rng.randint(100, 20_000), bulk=True)
        c.close(rng.randrange(2))
        c.conv.kind = "http"
        return self.account(c.conv, False)

    def https(self, t0: int) -> Conv:
        rng = self.rng
        v6 = self.v6()
        cli = self.client(3, v6)
        srv = self.server(3, rng.randrange(1, 250), v6)
        c = Tcp(self, cli, self.port(cli), srv, 443, t0, self.rtt())
        c.handshake()
        self.tls_session(c, f"www{rng.randrange(100)}.example.org", rng.random() < 0.7,
                         [(rng.randint(200, 900), self.body_size(6.8, 1.6, 300_000))
                          for _ in range(rng.choice([1, 1, 2, 3]))])
        c.close(rng.randrange(2))
        c.conv.kind = "https"
        return self.account(c.conv, False)

    def tls_session(self, c: Tcp, sni: str, v13: bool, exchanges: list[tuple[int, int]]) -> None:
        """Handshake then ``(client bytes, server bytes)`` exchanges of application data, then close_notify."""
        t = self.tls
        c.send(0, t.client_hello(sni))
        c.send(1, t.server_flight(v13), delay=c.rtt // 2 + self.rng.randint(200, 3000), bulk=True)
        c.send(0, t.client_finish(v13), delay=c.rtt // 2 + self.rng.randint(100, 1000))
        c.send(1, t.server_finish(v13))
        for up, down in exchanges:
            c.send(0, t.app(up), delay=self.rng.randint(50, 2000), bulk=up > 4 * MSS)
            c.send(1, t.app(down), delay=c.rtt + self.rng.randint(100, 5000), bulk=True)
        c.send(0, t.close_notify(), delay=self.rng.randint(100, 3000))

    # -- SMTP
    def smtp_kind(self) -> str:
        for k in self.order:
            if k not in self.smtp_seen:
                self.smtp_seen.add(k)
                return k
        return self.rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]

    def message(self, size: int, sender: str, rcpt: str) -> bytes:
        rng = self.rng
        hdr = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: report {rng.randrange(10**6)}\r\n"
               f"Message-ID: <{rng.getrandbits(64):x}@example.org>\r\nMIME-Version: 1.0\r\n"
               f"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode()
        n = max(78, size - len(hdr))
        start = rng.randrange((len(self.text) - n) // 78) * 78
        body = self.text[start:start + n]
        body = body[: body.rfind(b"\r\n") + 2]
        return hdr + body + b".\r\n"

    def smtp(self, t0: int) -> Conv:
        rng = self.rng
        kind = self.smtp_kind()
        outcome, caused_by, reason = SMTP_KINDS[kind]
        v6 = self.v6()
        ki = KIND_INDEX[kind]
        cli = self.client(20 + ki, v6, unique=(kind == "tls-handshake-failed"))
        srv_host = ki * 20 + 1 + rng.randrange(20)
        srv = self.server(1, srv_host, v6)
        sport = 465 if kind == "implicit-tls" else rng.choice([25, 25, 25, 587])
        c = Tcp(self, cli, self.port(cli), srv, sport, t0, self.rtt())
        c.handshake()
        domain = f"mx{srv_host}.mail{ki}.example.net"
        helo_name = f"out{rng.randrange(100)}.sender{rng.randrange(1000)}.example.org"
        sender, rcpt = f"alerts@sender{rng.randrange(1000)}.example.org", f"ops{rng.randrange(1000)}@{domain[5:]}"
        size = rng.randint(100_000, 2_000_000) if self.big else self.body_size(8.0, 0.9, 30_000)
        trouble = rng.random()
        split_ehlo = trouble < 0.35
        reorder_ehlo = split_ehlo and trouble < 0.12
        retrans_at = rng.randrange(6) if rng.random() < 0.12 else -1
        step = [0]

        def srv_send(data: bytes, cuts: list[int] | None = None, reorder: bool = False, bulk: bool = False) -> None:
            c.send(1, data, delay=rng.randint(100, 3000) + c.rtt // 2, cuts=cuts, reorder=reorder,
                   retrans=step[0] == retrans_at, bulk=bulk)
            step[0] += 1

        def cli_send(data: bytes, bulk: bool = False, reorder: bool = False) -> None:
            c.send(0, data, delay=rng.randint(50, 1500) + c.rtt // 2, bulk=bulk, reorder=reorder,
                   retrans=step[0] == retrans_at)
            step[0] += 1

        def cuts_for(data: bytes) -> list[int]:
            n = rng.choice([1, 1, 2])
            return sorted(rng.sample(range(3, len(data) - 2), n)) if split_ehlo else []

        if kind == "implicit-tls":
            v13 = rng.random() < 0.6
            self.tls_session(c, domain, v13, [(200, 60), (150, 40), (size + 400, 80), (10, 60)])
            c.close(1)
        else:
            text = f"{domain} {rng.choice(BANNERS)}"
            if kind == "starttls-masked":
                text = "".join(ch if ch in "20" else "*" for ch in text)
            banner = f"220 {text}\r\n".encode()
            srv_send(banner, cuts=cuts_for(banner) if rng.random() < 0.3 else None)
            exts = rng.sample(EXTS, rng.randint(3, 7))
            greet = "HELO" if kind == "client-used-helo" else "EHLO"
            cli_send(f"{greet} {helo_name}\r\n".encode())
            if greet == "HELO":
                srv_send(f"250 {domain}\r\n".encode())
            elif kind == "ehlo-rejected":
                srv_send(rng.choice([b"502 5.5.2 Error: command not recognized\r\n",
                                     b"500 5.5.1 Command unrecognized: \"EHLO\"\r\n"]))
                cli_send(f"HELO {helo_name}\r\n".encode())
                srv_send(f"250 {domain}\r\n".encode())
            else:
                if kind == "starttls-misplaced":
                    lines = ["STARTTLS", domain] + exts
                else:
                    lines = [f"{domain} Hello {helo_name}"] + exts
                    if kind != "starttls-not-offered":
                        kw = "XXXXXXXA" if kind == "starttls-masked" else "STARTTLS"
                        lines.insert(rng.randint(1, len(lines)), kw)
                reply = "".join(f"250{'-' if i < len(lines) - 1 else ' '}{ln}\r\n"
                                for i, ln in enumerate(lines)).encode()
                srv_send(reply, cuts=cuts_for(reply), reorder=reorder_ehlo)
            if kind in ("tls-established", "tls-handshake-failed", "starttls-refused"):
                cli_send(b"STARTTLS\r\n")
                if kind == "starttls-refused":
                    srv_send(b"454 4.7.0 TLS not available due to local problem\r\n")
                else:
                    srv_send(b"220 2.0.0 Ready to start TLS\r\n")
            if kind == "tls-established":
                v13 = rng.random() < 0.6
                self.tls_session(c, domain, v13, [(60, 900), (200, 60), (150, 40), (8, 60), (size + 400, 80),
                                                  (10, 60)])
                c.close(1)
            elif kind == "tls-handshake-failed":
                c.send(0, self.tls.client_hello(domain), delay=rng.randint(100, 2000))
                c.send(1, TlsBytes.alert(rng.choice([40, 70, 71])), delay=c.rtt // 2 + rng.randint(200, 2000))
                c.close(1)
            else:
                cli_send(f"MAIL FROM:<{sender}>\r\n".encode())
                srv_send(b"250 2.1.0 Ok\r\n")
                cli_send(f"RCPT TO:<{rcpt}>\r\n".encode())
                srv_send(b"250 2.1.5 Ok\r\n")
                cli_send(b"DATA\r\n")
                srv_send(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                cli_send(self.message(size, sender, rcpt), bulk=True, reorder=rng.random() < 0.1)
                srv_send(f"250 2.0.0 Ok: queued as {rng.getrandbits(40):010X}\r\n".encode())
                cli_send(b"QUIT\r\n")
                srv_send(b"221 2.0.0 Bye\r\n")
                c.close(1)
        conv = c.conv
        conv.kind = kind
        conv.truth = {
            "kind": kind,
            "client": {"ip": str(ipaddress.ip_address(cli)), "port": c.ports[0][0]},
            "server": {"ip": str(ipaddress.ip_address(srv)), "port": sport},
            "outcome": outcome, "caused_by": caused_by, "reason": reason,
            "split_reply": c.splits > 0, "retransmissions": c.retrans, "reordered_pairs": c.reordered,
        }
        return self.account(conv, True)


def generate(out: Path, packets: int, seed: int, all_smtp: bool = False,
             relay: bool = False) -> dict[str, Any]:
    """Write ``out`` (pcap) and ``out.with_suffix('.truth.json')``; return the truth document.
    ``relay``: SMTP only with ordinary messages (a relay's port-25 capture: ~40 packets per
    conversation)."""
    g = Generator(seed, all_smtp, relay)
    t_start = 1_717_000_000_000_000 + (seed % 1000) * 86_400_000_000  # µs; mid-2024
    mean_gap = 14_000.0 if all_smtp else 1_400.0 if relay else 700.0  # µs between conversation starts
    heap: list[tuple[int, int, int, Conv | None]] = [(t_start, 0, 0, None)]  # (ts, order, index, conv); None = spawner
    order = 1
    frame_no = 0
    stream = 0
    truths: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    buf: list[bytes] = []
    pack = _REC.pack
    with open(out, "wb") as f:
        f.write(_PCAP_HDR.pack(0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        while heap:
            ts, o, i, conv = heapq.heappop(heap)
            if conv is None:
                if g.total_packets < packets:
                    conv = g.next_conv(ts)
                    heapq.heappush(heap, (conv.frames[0][0], order, 0, conv))
                    order += 1
                    nxt = ts + max(1, int(g.rng.expovariate(1.0 / mean_gap)))
                    heapq.heappush(heap, (nxt, 0, 0, None))
                continue
            t, fr = conv.frames[i]
            frame_no += 1
            if i == 0 and conv.tcp:
                if conv.truth is not None:
                    truths.append({"stream": stream, "first_frame": frame_no, **conv.truth})
                stream += 1
            n = len(fr)
            buf.append(pack(t // 1_000_000, t % 1_000_000, n, n))
            buf.append(fr)
            if len(buf) >= 8192:
                f.write(b"".join(buf))
                buf.clear()
            if i + 1 < len(conv.frames):
                heapq.heappush(heap, (conv.frames[i + 1][0], o, i + 1, conv))
            else:
                conv.frames = []
        f.write(b"".join(buf))
    doc: dict[str, Any] = {
        "generator": "bench/mixgen.py",
        "seed": seed,
        "requested_packets": packets,
        "packets": frame_no,
        "tcp_streams": stream,
        "all_smtp": all_smtp,
        "packets_by_kind": dict(sorted(g.counts.items())),
        "smtp_share": round(g.counts.get("smtp", 0) / frame_no, 4) if frame_no else 0.0,
        "conversations": truths,
    }
    truth_path(out).write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def truth_path(pcap: Path) -> Path:
    return pcap.with_suffix(".truth.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=10_000, help="at least this many packets (default 10000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--all-smtp", action="store_true", help="SMTP only, with 100 kB - 2 MB messages")
    ap.add_argument("--relay", action="store_true",
                    help="SMTP only, ordinary messages (a relay's port-25 capture, ~40 packets a conversation)")
    ap.add_argument("-o", "--output", type=Path, required=True, help="the pcap to write")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    doc = generate(a.output, a.packets, a.seed, a.all_smtp, a.relay)
    dt = time.perf_counter() - t0
    print(f"{a.output}: {doc['packets']} packets, {a.output.stat().st_size / 1e6:.1f} MB, "
          f"{doc['tcp_streams']} TCP streams, {len(doc['conversations'])} SMTP conversations, "
          f"SMTP {doc['smtp_share'] * 100:.1f}% of packets, {dt:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
