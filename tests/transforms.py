"""Capture transformations for the robustness tests (issue #3): re-cut, reorder, duplicate,
overlap, drop and shift TCP segments of SMTP conversations, re-wrap the frames (Ethernet,
802.1Q, QinQ, Linux cooked v2), move IPv4 to IPv6, save as pcap, pcapng or gzip.

Tests only: reading uses scapy's ``rdpcap`` (pcap, pcapng, the link types scapy decodes) and,
for the frames scapy gives no TCP segment of (other link types, tunnels, IPv6 extension headers,
IP fragments), pcapsmtp's own decoder (``load``); writing is done here with ``struct`` so that
every field is under control.

Model
-----
``load(path)`` gives a :class:`Capture`: a tuple of frames, each a :class:`Seg` (one TCP
segment over IPv4/IPv6, with its options and payload; a tunnelled one with its inner addresses)
or a :class:`RawL3` (any other IP packet, kept byte for byte). Frames that are not IP (ARP,
...) are not kept. A *step* is a function ``Capture -> Capture``; the factories below build
steps, and ``transform(src, dst, *steps)`` loads, applies and saves::

    transform(src, out, resegment(1), reorder(), duplicate(2), vlan((100,)), to_pcapng(), gzip())

TCP steps touch only conversations with a port in ``Capture.ports`` (25, 465, 587, 2525 by
default); other traffic passes unchanged. Checksums (IPv4, TCP) are recomputed on writing;
timestamps are made monotonic (non-decreasing) on writing, in capture order (except after
``clock_step``, whose backward step is the point).

Saving writes Ethernet frames (MAC addresses derived from the IP addresses) unless a link
step chose 802.1Q/QinQ tags, Linux cooked v1 or v2 (linktypes 113, 276), raw IP (101), BSD
loopback (0, host order; 108, network order); pcap with microsecond timestamps unless
``nanosecond()`` or ``to_pcapng()`` (``two_interfaces()``: every other frame on a second
interface, Ethernet, the first one of the capture's link type); gzip-compressed if ``gzip()``.
"""
from __future__ import annotations

import dataclasses
import gzip as _gzip
import hashlib
import ipaddress
import struct
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Union

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "captures"))
from generate_hostile import ip_checksum as _checksum  # noqa: E402  (the one RFC 1071 sum)

__all__ = [
    "Seg", "RawL3", "Frame", "Capture", "SegmentView", "Step",
    "load", "save", "transform", "apply",
    "identity", "resegment", "reorder", "swap_directions", "skew_client", "jitter", "clock_step", "written_late",
    "longest_pause", "monotonic", "duplicate",
    "partial_overlap",
    "drop_segment", "with_ports", "one_direction",
    "shift_seq", "vlan", "qinq", "sll2", "sll", "raw_ip", "null", "loop", "ethernet", "to_ipv6",
    "to_pcapng", "nanosecond", "two_interfaces", "gzip", "second_tap", "merged_with",
    "ehlo_reply_line", "message_body", "conversations", "data_segments",
    "FIN", "SYN", "RST", "PSH", "ACK",
]

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
MOD = 1 << 32
DEFAULT_PORTS: frozenset[int] = frozenset({25, 465, 587, 2525})


# ============================================================================== model

@dataclass(frozen=True, slots=True)
class Seg:
    """One TCP segment. ``src``/``dst`` are textual IP addresses (IPv4 or IPv6)."""

    ts_ns: int
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int = 65535
    options: bytes = b""
    payload: bytes = b""
    ttl: int = 64

    @property
    def version(self) -> int:
        return 6 if ":" in self.src else 4

    @property
    def seq_len(self) -> int:
        """Sequence space the segment occupies (payload, SYN and FIN count one each)."""
        return len(self.payload) + bool(self.flags & SYN) + bool(self.flags & FIN)


@dataclass(frozen=True, slots=True)
class RawL3:
    """Any other IP packet (UDP, ICMP, an IP fragment, ...), kept as captured."""

    ts_ns: int
    data: bytes


Frame = Union[Seg, RawL3]


@dataclass(frozen=True)
class Capture:
    frames: tuple[Frame, ...]
    ports: frozenset[int] = DEFAULT_PORTS
    link: str = "ether"                    #: "ether", "sll", "sll2", "raw", "null" or "loop"
    vlan_ids: tuple[int, ...] = ()         #: outermost first
    qinq: bool = False                     #: outermost tag uses 802.1ad (0x88a8)
    fmt: str = "pcap"                      #: "pcap", "pcap-ns", "pcapng" or "pcapng-2if"
    compress: bool = False
    notes: tuple[str, ...] = ()            #: what the steps did (for test messages)
    #: saving makes the timestamps non-decreasing (False after ``clock_step``: its times are kept)
    monotonic: bool = True

    def with_frames(self, frames: Iterable[Frame], note: str | None = None) -> Capture:
        notes = self.notes + ((note,) if note else ())
        return dataclasses.replace(self, frames=tuple(frames), notes=notes)


Step = Callable[[Capture], Capture]

_EndPt = tuple[str, int]
ConvKey = tuple[_EndPt, _EndPt]            #: (client, server)


# ============================================================================== reading

#: the repository, whose shipped captures ``load`` reads once per session
_REPO = Path(__file__).resolve().parents[1]
#: (resolved path, SHA-256 of its bytes, ports) -> the capture read from it
_LOADED: dict[tuple[str, str, frozenset[int]], Capture] = {}


def load(path: str | Path, *, ports: Iterable[int] = DEFAULT_PORTS) -> Capture:
    """Read a pcap/pcapng (gzip too) into a :class:`Capture` (see ``_read``).

    A file of the repository (a shipped capture: many sweeps read each one, and scapy takes
    half a second for one of thousands of frames) is read once per session for the same bytes
    and ports: the :class:`Capture` is immutable (frozen, its frames a tuple of frozen frames),
    so the sweeps can share it; a changed file has another hash and is read again. Files
    elsewhere (the tests' own, in temporary folders) are read every time."""
    where = Path(path).resolve()
    ports = frozenset(ports)
    if not where.is_relative_to(_REPO):
        return _read(where, ports)
    key = (str(where), hashlib.sha256(where.read_bytes()).hexdigest(), ports)
    cap = _LOADED.get(key)
    if cap is None:
        cap = _LOADED[key] = _read(where, ports)
    return cap


def _read(path: Path, ports: frozenset[int]) -> Capture:
    """Read a pcap/pcapng (gzip too) into a :class:`Capture`.

    scapy reads the frames of the link types it knows (Ethernet, Linux cooked, raw IP, ...):
    an IPv4 or IPv6 packet carrying TCP directly, not a fragment, is a :class:`Seg`. Every other
    frame (a link type scapy does not know, such as Cisco HDLC 104, OpenBSD enc 109, ERF 197,
    ipnet 226, NFLOG 239 or PKTAP 258, which it hands over as raw bytes; an IPv6 packet with
    extension headers; a tunnel: IP in IP, GRE, ERSPAN, VXLAN, Geneve; IP fragments) goes to
    pcapsmtp's own decoder (``pcapsmtp.capture.decode``, what the analysis reads), and the TCP
    segment it finds there (the tunnelled one, the reassembled datagram at its last fragment)
    is the :class:`Seg`, written back as plain IP (its TCP options and window are not known:
    none and 65535, which the analysis does not read). Other IP packets (UDP, ICMP) are kept
    as :class:`RawL3` byte for byte, fragments but of a TCP datagram the decoder completed are
    dropped, and frames that are not IP (ARP, ...) are not kept."""
    import logging

    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import rdpcap

    from pcapsmtp.capture.decode import Decoder
    from pcapsmtp.errors import CaptureError
    from pcapsmtp.capture.pcapfile import RecordTuple, iter_records

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)   # "unknown LL type": decoded below
    decoder = Decoder()
    frames: list[Frame] = []
    packets = rdpcap(str(path))
    records: list[RecordTuple] = []
    try:
        records.extend(iter_records(str(path)))
    except CaptureError:
        # a damaged file: scapy may read records past the damage that pcapsmtp stops at (as
        # the analysis does); those are read as scapy reads them
        assert len(records) <= len(packets), path
    else:
        assert len(records) == len(packets), f"{path}: scapy reads {len(packets)} records, pcapsmtp {len(records)}"
    for k, pkt in enumerate(packets):
        ts_ns = _ts_ns(pkt.time)
        raw_l3: RawL3 | None = None
        fragment = False
        if IP in pkt:
            ip = pkt[IP]
            raw = bytes(ip)
            total = ip.len if ip.len else len(raw)
            raw = raw[:total]
            ihl = (raw[0] & 0x0F) * 4
            frag = struct.unpack_from("!H", raw, 6)[0]
            if raw[9] == 6 and not frag & 0x3FFF:
                src = str(ipaddress.IPv4Address(raw[12:16]))
                dst = str(ipaddress.IPv4Address(raw[16:20]))
                frames.append(_seg_from_tcp(ts_ns, src, dst, raw[ihl:], ttl=raw[8]))
                continue
            raw_l3, fragment = RawL3(ts_ns, raw), bool(frag & 0x3FFF)
        elif IPv6 in pkt:
            ip6 = pkt[IPv6]
            raw = bytes(ip6)
            raw = raw[:40 + ip6.plen] if ip6.plen else raw
            if TCP in ip6 and raw[6] == 6:
                src = str(ipaddress.IPv6Address(raw[8:24]))
                dst = str(ipaddress.IPv6Address(raw[24:40]))
                frames.append(_seg_from_tcp(ts_ns, src, dst, raw[40:], ttl=raw[7]))
                continue
            raw_l3, fragment = RawL3(ts_ns, raw), 44 in _ip6_headers(raw)
        seg = None
        if k < len(records):
            number, rec_ts, linktype, data, wirelen, _off, _iface = records[k]
            seg = decoder.decode_raw(linktype, data, wirelen, number, rec_ts)
        if seg is not None:
            frames.append(Seg(ts_ns=ts_ns, src=seg.src, dst=seg.dst, sport=seg.sport, dport=seg.dport,
                              seq=seg.seq, ack=seg.ack, flags=seg.flags, payload=bytes(seg.payload),
                              ttl=seg.ttl))
        elif raw_l3 is not None and not fragment:
            frames.append(raw_l3)
    return Capture(frames=tuple(frames), ports=ports)


def _ip6_headers(raw: bytes) -> list[int]:
    """The next-header values of an IPv6 packet's extension header chain (fragment: 44)."""
    out, nh, pos = [], raw[6], 40
    while nh in (0, 43, 44, 60) and pos + 8 <= len(raw):
        out.append(nh)
        nh, pos = raw[pos], pos + (8 if nh == 44 else (raw[pos + 1] + 1) * 8)
    return out + [nh]


def _ts_ns(t: object) -> int:
    from decimal import Decimal
    return int(Decimal(str(t)) * 1_000_000_000)


def _seg_from_tcp(ts_ns: int, src: str, dst: str, tcp: bytes, *, ttl: int) -> Seg:
    sport, dport, seq, ack, off, flags, window = struct.unpack_from("!HHIIBBH", tcp)
    hl = (off >> 4) * 4
    return Seg(ts_ns=ts_ns, src=src, dst=dst, sport=sport, dport=dport, seq=seq, ack=ack,
               flags=flags, window=window, options=bytes(tcp[20:hl]), payload=bytes(tcp[hl:]),
               ttl=ttl)


# ============================================================================== writing

def save(cap: Capture, path: str | Path) -> Path:
    """Write ``cap`` as its link/format/compression settings say; returns the path."""
    linktype = _LINKTYPES[cap.link]
    records: list[tuple[int, bytes]] = []
    last = 0
    ip_id = 0
    for fr in cap.frames:
        ts = max(fr.ts_ns, last) if cap.monotonic else fr.ts_ns
        last = ts
        if isinstance(fr, Seg):
            ip_id = (ip_id + 1) & 0xFFFF
            l3 = _build_ip_tcp(fr, ip_id)
            src, dst = fr.src, fr.dst
        else:
            l3 = fr.data
            src, dst = _raw_addrs(l3)
        if cap.fmt == "pcapng-2if" and len(records) % 2:
            # every other frame on the second interface, Ethernet
            records.append((ts, _link_header(dataclasses.replace(cap, link="ether"), l3, src, dst) + l3))
        else:
            records.append((ts, _link_header(cap, l3, src, dst) + l3))
    if cap.fmt == "pcapng":
        data = _pcapng(records, linktype)
    elif cap.fmt == "pcapng-2if":
        data = _pcapng(records, linktype, second=1)
    else:
        data = _pcap(records, linktype, nano=cap.fmt == "pcap-ns")
    if cap.compress:
        data = _gzip.compress(data, mtime=0)
    out = Path(path)
    out.write_bytes(data)
    return out


def _raw_addrs(l3: bytes) -> tuple[str, str]:
    if l3 and l3[0] >> 4 == 6:
        return str(ipaddress.IPv6Address(l3[8:24])), str(ipaddress.IPv6Address(l3[24:40]))
    return str(ipaddress.IPv4Address(l3[12:16])), str(ipaddress.IPv4Address(l3[16:20]))


def _mac(ip: str) -> bytes:
    return b"\x02" + hashlib.sha1(ip.encode()).digest()[:5]


#: the pcap linktype of each ``Capture.link``
_LINKTYPES = {"ether": 1, "sll": 113, "sll2": 276, "raw": 101, "null": 0, "loop": 108}


def _link_header(cap: Capture, l3: bytes, src: str, dst: str) -> bytes:
    ethertype = 0x86DD if l3[0] >> 4 == 6 else 0x0800
    if cap.link == "raw":
        return b""
    if cap.link in ("null", "loop"):
        # the address family: AF_INET 2; AF_INET6 30 (macOS, host order: little-endian here),
        # 24 (OpenBSD, network order)
        if cap.link == "null":
            return struct.pack("<I", 2 if ethertype == 0x0800 else 30)
        return struct.pack("!I", 2 if ethertype == 0x0800 else 24)
    if cap.link == "sll":
        # packet type (0 to us, 4 outgoing), ARPHRD_ETHER, address length, address, protocol
        return struct.pack("!HHH8sH", 4 if src < dst else 0, 1, 6, _mac(src) + b"\0\0", ethertype)
    if cap.link == "sll2":
        # protocol, reserved, ifindex, ARPHRD_ETHER, packet type (0 host / 4 outgoing), addr len, addr
        pkttype = 4 if src < dst else 0
        return struct.pack("!HHIHBB8s", ethertype, 0, 1, 1, pkttype, 6, _mac(src) + b"\0\0")
    tags = b""
    for i, vid in enumerate(cap.vlan_ids):
        tpid = 0x88A8 if (cap.qinq and i == 0 and len(cap.vlan_ids) > 1) else 0x8100
        tags += struct.pack("!HH", tpid, vid & 0x0FFF)
    return _mac(dst) + _mac(src) + tags + struct.pack("!H", ethertype)


def _build_ip_tcp(s: Seg, ip_id: int) -> bytes:
    opts = s.options + b"\0" * (-len(s.options) % 4)
    hl = 20 + len(opts)
    tcp = struct.pack("!HHIIBBHHH", s.sport, s.dport, s.seq % MOD, s.ack % MOD, (hl // 4) << 4,
                      s.flags & 0xFF, s.window, 0, 0) + opts + s.payload
    if ":" in s.src:
        sa = ipaddress.IPv6Address(s.src).packed
        da = ipaddress.IPv6Address(s.dst).packed
        pseudo = sa + da + struct.pack("!IxxxB", len(tcp), 6)
        csum = _checksum(pseudo + tcp)
        tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
        return struct.pack("!IHBB", 6 << 28, len(tcp), 6, s.ttl) + sa + da + tcp
    sa = ipaddress.IPv4Address(s.src).packed
    da = ipaddress.IPv4Address(s.dst).packed
    pseudo = sa + da + struct.pack("!xBH", 6, len(tcp))
    csum = _checksum(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id, 0x4000, s.ttl, 6, 0, sa, da)
    hdr = hdr[:10] + struct.pack("!H", _checksum(hdr)) + hdr[12:]
    return hdr + tcp


def _pcap(records: list[tuple[int, bytes]], linktype: int, nano: bool = False) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)]
    for ts, data in records:
        sec, frac = divmod(ts, 10**9) if nano else divmod(ts // 1000, 1_000_000)
        out.append(struct.pack("<IIII", sec, frac, len(data), len(data)))
        out.append(data)
    return b"".join(out)


def _pcapng_block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _pcapng(records: list[tuple[int, bytes]], linktype: int, second: int = 0) -> bytes:
    """One interface of ``linktype``; with ``second`` a second one, Ethernet, microsecond
    timestamps (the default resolution), carrying every other record."""
    shb = _pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    # if_tsresol = 9 (nanoseconds), then opt_endofopt
    idb_opts = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
    idb = _pcapng_block(1, struct.pack("<HHI", linktype, 0, 0) + idb_opts)
    out = [shb, idb]
    if second:
        out.append(_pcapng_block(1, struct.pack("<HHI", 1, 0, 0)))
    for i, (ts, data) in enumerate(records):
        iface = i % 2 if second else 0
        t = ts // 1000 if iface else ts
        out.append(_pcapng_block(6, struct.pack("<IIIII", iface, t >> 32, t & 0xFFFFFFFF,
                                                len(data), len(data)) + data))
    return b"".join(out)


# ============================================================================== composing

def apply(cap: Capture, *steps: Step) -> Capture:
    for step in steps:
        cap = step(cap)
    return cap


def transform(src: str | Path | Capture, dst: str | Path, *steps: Step) -> Path:
    """Load ``src`` (a path or an already loaded capture), apply ``steps``, save to ``dst``."""
    cap = src if isinstance(src, Capture) else load(src)
    return save(apply(cap, *steps), dst)


def identity() -> Step:
    """No change: loading and saving alone (the writer's own round trip)."""
    return lambda cap: cap


# ============================================================================== conversations

def _is_smtp(s: Seg, ports: frozenset[int]) -> bool:
    return s.sport in ports or s.dport in ports


def conversations(cap: Capture) -> dict[frozenset[_EndPt], ConvKey]:
    """Each SMTP-port conversation: its endpoint pair -> (client, server). The client is the
    sender of a bare SYN when one is captured, else the side whose port is not an SMTP port."""
    out: dict[frozenset[_EndPt], ConvKey] = {}
    for s in cap.frames:
        if not isinstance(s, Seg) or not _is_smtp(s, cap.ports):
            continue
        a, b = (s.src, s.sport), (s.dst, s.dport)
        key = frozenset((a, b))
        if s.flags & SYN and not s.flags & ACK:
            out[key] = (a, b)
        elif key not in out:
            out[key] = (a, b) if s.dport in cap.ports and s.sport not in cap.ports else (b, a)
    return out


def _conv_key(s: Seg) -> frozenset[_EndPt]:
    return frozenset(((s.src, s.sport), (s.dst, s.dport)))


def _direction(s: Seg) -> tuple[_EndPt, _EndPt]:
    return (s.src, s.sport), (s.dst, s.dport)


def _sdiff(a: int, b: int) -> int:
    """Signed difference a - b in 32-bit sequence space."""
    d = (a - b) % MOD
    return d - MOD if d >= MOD // 2 else d


_FAR = 1 << 26     #: stream offsets beyond this are not kept (64 MiB)


@dataclass
class _Dir:
    """One direction of one conversation: its base sequence number and reassembled bytes."""

    base: int | None = None
    data: bytearray = field(default_factory=bytearray)
    have: bytearray = field(default_factory=bytearray)   # 1 where data[i] is known

    def offset(self, seq: int) -> int:
        assert self.base is not None
        return _sdiff(seq, self.base)

    def put(self, off: int, payload: bytes) -> None:
        end = off + len(payload)
        if off < 0 or off > _FAR:
            return                  # (another conversation on the same 4-tuple, another ISN)
        if end > len(self.data):
            grow = end - len(self.data)
            self.data.extend(b"\0" * grow)
            self.have.extend(b"\0" * grow)
        for i, byte in enumerate(payload):           # first copy wins
            if not self.have[off + i]:
                self.data[off + i] = byte
                self.have[off + i] = 1

    def get(self, off: int, n: int) -> bytes | None:
        if off < 0 or off + n > len(self.data) or not all(self.have[off:off + n]):
            return None
        return bytes(self.data[off:off + n])


def _directions(frames: Iterable[Frame], ports: frozenset[int]) -> dict[tuple[_EndPt, _EndPt], _Dir]:
    """Per direction: base = ISN+1 if the SYN is captured, else the lowest data sequence number
    (in sequence space, so a wrap is fine); and the reassembled payload (first copy wins)."""
    dirs: dict[tuple[_EndPt, _EndPt], _Dir] = {}
    segs = [f for f in frames if isinstance(f, Seg) and _is_smtp(f, ports)]
    with_syn = set()
    for s in segs:
        d = dirs.setdefault(_direction(s), _Dir())
        if s.flags & SYN and _direction(s) not in with_syn:
            d.base = (s.seq + 1) % MOD
            with_syn.add(_direction(s))
    for s in segs:
        key = _direction(s)
        if s.payload and key not in with_syn:
            d = dirs[key]
            if d.base is None or _sdiff(s.seq, d.base) < 0:
                d.base = s.seq
    for s in segs:
        if s.payload:
            d = dirs[_direction(s)]
            d.put(d.offset(_data_start(s)), s.payload)
    return dirs


def _data_start(s: Seg) -> int:
    return (s.seq + 1) % MOD if s.flags & SYN else s.seq


@dataclass(frozen=True)
class SegmentView:
    """What a ``drop_segment`` predicate sees of one data segment."""

    index: int                 #: position in ``Capture.frames``
    seg: Seg
    client: _EndPt
    server: _EndPt
    side: str                  #: "client" or "server": who sent it
    offset: int                #: stream offset of its first payload byte in its direction
    stream: bytes              #: that direction's reassembled bytes (unknown bytes as NUL)
    peer: bytes                #: the other direction's reassembled bytes

    @property
    def end(self) -> int:
        return self.offset + len(self.seg.payload)


def data_segments(cap: Capture) -> Iterator[SegmentView]:
    """Every SMTP-port segment that carries payload, with its stream context."""
    convs = conversations(cap)
    dirs = _directions(cap.frames, cap.ports)
    streams = {k: bytes(d.data) for k, d in dirs.items()}
    for i, s in enumerate(cap.frames):
        if not isinstance(s, Seg) or not s.payload or not _is_smtp(s, cap.ports):
            continue
        client, server = convs[_conv_key(s)]
        key = _direction(s)
        yield SegmentView(i, s, client, server, "client" if key[0] == client else "server",
                          dirs[key].offset(_data_start(s)), streams[key],
                          streams.get(key[::-1], b""))


# ============================================================================== TCP steps

def resegment(size: int = 1, *, max_bytes: int | None = None) -> Step:
    """Split every SMTP-port payload into segments of ``size`` bytes, each its own frame with the
    right sequence number (same ACK, window and options). SYN stays on the first piece, FIN,
    RST and PSH go to the last one. ``max_bytes``: only segments starting in the first
    ``max_bytes`` of their direction's stream are re-cut (keeps 1-byte cuts of big bodies fast)."""
    if size < 1:
        raise ValueError("size must be >= 1")

    def step(cap: Capture) -> Capture:
        dirs = _directions(cap.frames, cap.ports) if max_bytes is not None else {}
        out: list[Frame] = []
        for f in cap.frames:
            if (not isinstance(f, Seg) or len(f.payload) <= size or not _is_smtp(f, cap.ports)
                    or f.flags & SYN):
                out.append(f)
                continue
            if max_bytes is not None and dirs[_direction(f)].offset(f.seq) >= max_bytes:
                out.append(f)
                continue
            n = len(f.payload)
            for pos in range(0, n, size):
                last = pos + size >= n
                flags = f.flags if last else f.flags & ~(FIN | RST | PSH | URG)
                out.append(replace(f, seq=(f.seq + pos) % MOD, flags=flags,
                                   payload=f.payload[pos:pos + size]))
        return cap.with_frames(out, f"resegment({size})")
    return step


def _adjacent_pairs(frames: tuple[Frame, ...], ports: frozenset[int]) -> list[int]:
    """Indices i where frames i and i+1 are data segments of the same direction of an SMTP
    conversation, in sequence order and contiguous (i+1 starts where i ends), and neither
    carries SYN/FIN/RST."""
    out = []
    for i in range(len(frames) - 1):
        a, b = frames[i], frames[i + 1]
        if not (isinstance(a, Seg) and isinstance(b, Seg)) or not a.payload or not b.payload:
            continue
        if not _is_smtp(a, ports) or _direction(a) != _direction(b):
            continue
        if (a.flags | b.flags) & (SYN | FIN | RST):
            continue
        if (a.seq + len(a.payload)) % MOD == b.seq % MOD:
            out.append(i)
    return out


def reorder(pairs: int | Iterable[int] | None = None) -> Step:
    """Swap adjacent data segments of the same direction (consecutive frames, so no ACK of the
    peer ever acknowledges bytes not yet seen). ``pairs``: ``None`` swaps every eligible pair
    (non-overlapping, left to right); an int ``n`` swaps every n-th eligible pair; a collection
    of ints swaps those eligible pairs (0-based). Frame timestamps stay with the positions."""
    def step(cap: Capture) -> Capture:
        frames = list(cap.frames)
        cand = _adjacent_pairs(cap.frames, cap.ports)
        chosen: list[int] = []
        if isinstance(pairs, int):
            picks = set(range(0, len(cand), pairs))
        elif pairs is None:
            picks = set(range(len(cand)))
        else:
            picks = set(pairs)
        used = -2
        for k, i in enumerate(cand):
            if k in picks and i > used + 1:
                chosen.append(i)
                used = i
        for i in chosen:
            a, b = frames[i], frames[i + 1]
            frames[i] = replace(b, ts_ns=a.ts_ns)
            frames[i + 1] = replace(a, ts_ns=b.ts_ns)
        return cap.with_frames(frames, f"reorder({len(chosen)} swaps)")
    return step


def swap_directions(window: int = 3, max_skew_ns: int | None = None) -> Step:
    """What a capture merged from two taps (or taken with ``-i any`` on a multi-queue NIC) shows:
    a segment of one direction of an SMTP conversation comes before a segment of the other
    direction that preceded it by at most ``window`` frames (a server reply before the command
    it answers, a client command before the reply it follows), each direction keeping its own
    order (each tap's). Left to right, each segment other than a SYN or RST jumps ahead of the
    nearest earlier segment of its conversation within the window if that one is of the other
    direction, no SYN or RST, and not moved already (the frames in between, of other
    conversations or not TCP, move back by one, keeping their order). So a segment never passes
    one of its own direction, moved or not, and a moved frame is not moved again. Each frame
    keeps its timestamp; saving makes them non-decreasing, so the frames that fall behind take
    the time of the one that jumped ahead (as when one tap's clock runs ahead of the other's:
    the early segment is at most that skew early). With ``max_skew_ns``, a segment does not
    jump ahead of one more than that much earlier: further apart than two taps' clocks disagree,
    the two cannot come in the other order, and the swap would move a time by that much."""
    if window < 1:
        raise ValueError("window must be >= 1")

    def step(cap: Capture) -> Capture:
        frames = list(cap.frames)
        fixed = [False] * len(frames)
        swaps = 0
        for i in range(1, len(frames)):
            b = frames[i]
            if (fixed[i] or not isinstance(b, Seg) or not _is_smtp(b, cap.ports)
                    or b.flags & (SYN | RST)):
                continue
            for j in range(i - 1, max(-1, i - 1 - window), -1):
                a = frames[j]
                if not isinstance(a, Seg) or _conv_key(a) != _conv_key(b):
                    continue        # another conversation's frame (moved or not) just moves back
                if fixed[j] or _direction(a) == _direction(b) or a.flags & (SYN | RST):
                    break           # each tap keeps its own direction's order; a moved frame stays
                if max_skew_ns is not None and b.ts_ns - a.ts_ns > max_skew_ns:
                    break           # further apart than two taps' clocks can disagree
                frames[j:i + 1] = [b] + frames[j:i]
                fixed[j:i + 1] = [True] * (i + 1 - j)
                swaps += 1
                break
        return cap.with_frames(frames, f"swap_directions({swaps} swaps, window {window})")
    return step


def skew_client(ns: int) -> Step:
    """Two taps merged by time, one per direction, whose clocks differ (``mergecap`` of a tap
    pair, or of one SPAN session per direction): every client-to-server segment of an SMTP
    conversation is ``ns`` nanoseconds later (negative: earlier) than captured, and the frames
    are sorted by time, stably (each tap keeps its own order). Across the two directions a
    segment can then come many frames before the segment that caused it, a SYN-ACK after the
    client's first bytes, a reset before the other side's last bytes. Other frames keep their
    time."""
    def step(cap: Capture) -> Capture:
        convs = conversations(cap)
        out: list[Frame] = []
        moved = 0
        for f in cap.frames:
            if isinstance(f, Seg) and _is_smtp(f, cap.ports):
                key = convs.get(_conv_key(f))
                if key is not None and (f.src, f.sport) == key[0]:
                    f = replace(f, ts_ns=f.ts_ns + ns)
                    moved += 1
            out.append(f)
        out.sort(key=lambda f: f.ts_ns)
        return cap.with_frames(out, f"skew_client({ns} ns, {moved} segments)")
    return step


def jitter(max_ns: int, seed: int = 0) -> Step:
    """Two taps merged by time, one per direction, each stamping its packets a random delay of up
    to ``max_ns`` late (buffering in the tap, the NIC, the capturing host), in its own order:
    every segment of an SMTP conversation is stamped later by a delay drawn from ``seed``, no
    earlier than the segment of its direction before it (each tap keeps its order), and the frames
    are sorted by time, stably. Segments of the two directions less than ``max_ns`` apart come
    in either order; no timestamp moves by more than ``max_ns``. Other frames keep their time."""
    import random

    def step(cap: Capture) -> Capture:
        rnd = random.Random(seed)
        last: dict[tuple[str, int, str, int], int] = {}
        out: list[Frame] = []
        for f in cap.frames:
            if isinstance(f, Seg) and _is_smtp(f, cap.ports):
                d = (f.src, f.sport, f.dst, f.dport)
                ts = max(f.ts_ns + rnd.randrange(max_ns + 1), last.get(d, 0))
                last[d] = ts
                f = replace(f, ts_ns=ts)
            out.append(f)
        out.sort(key=lambda f: f.ts_ns)
        return cap.with_frames(out, f"jitter({max_ns} ns, seed {seed})")
    return step


def monotonic() -> Step:
    """The timestamps made non-decreasing in capture order, as saving makes them (a frame
    stamped before the one before it takes its time): the capture the time steps (``jitter``,
    ``skew_client``) can sort by time without moving what came after a backward step of the clock
    (``clock_step``) an hour ahead of what came before it."""
    def step(cap: Capture) -> Capture:
        out: list[Frame] = []
        last = 0
        for f in cap.frames:
            if f.ts_ns < last:
                f = replace(f, ts_ns=last)
            last = f.ts_ns
            out.append(f)
        return dataclasses.replace(cap.with_frames(out), monotonic=True)
    return step


def longest_pause(cap: Capture) -> int | None:
    """The index of the frame after the longest pause between two consecutive segments of one
    SMTP conversation (where the waits a verdict rests on lie), or None when no conversation has
    two segments."""
    last: dict[frozenset[_EndPt], int] = {}
    best, at = -1, None
    for i, f in enumerate(cap.frames):
        if not isinstance(f, Seg) or not _is_smtp(f, cap.ports):
            continue
        key = _conv_key(f)
        if key in last and f.ts_ns - last[key] > best:
            best, at = f.ts_ns - last[key], i
        last[key] = f.ts_ns
    return at


def clock_step(back_ns: int = 3600 * 10**9, at: int | None = None, *, behind: bool = False) -> Step:
    """The capturing host's clock stepped back ``back_ns`` mid-capture (NTP stepping it back, a
    virtual machine's clock set after a pause), or a file made of two hosts' captures put one
    after the other: every frame from index ``at`` on (None: ``longest_pause``, the frame after
    the longest pause of an SMTP conversation) is stamped ``back_ns`` earlier, in the same order;
    with ``behind``, that much before the latest frame before it (the clock went back by the
    pause before the frame and ``back_ns`` more: a step back shorter than the pause it falls in
    leaves the file's times going forward, no capture can show it). Saving keeps these times
    (``Capture.monotonic`` False): the file's clock goes back at that frame."""
    def step(cap: Capture) -> Capture:
        k = longest_pause(cap) if at is None else at
        if k is None:
            return dataclasses.replace(cap, monotonic=False, notes=cap.notes + ("clock_step(none)",))
        back = back_ns
        if behind and k:
            back += cap.frames[k].ts_ns - max(f.ts_ns for f in cap.frames[:k])
        frames = list(cap.frames[:k]) + [replace(f, ts_ns=f.ts_ns - back) for f in cap.frames[k:]]
        out = cap.with_frames(frames, f"clock_step({back} ns back at frame {k + 1})")
        return dataclasses.replace(out, monotonic=False)
    return step


def written_late(side: str, delay_ns: int) -> Step:
    """A file written as read from two interfaces, one per direction (dumpcap ``-i a -i b``, or
    files merged without sorting): the segments of every SMTP conversation's ``side`` ("C" or
    "S") are filed ``delay_ns`` later than they were stamped (a buffer flushed late), their
    stamps kept, so each direction's times go forward and the file's go back where the two
    interleave. Saving keeps these times (``Capture.monotonic`` False)."""
    assert side in ("C", "S")

    def step(cap: Capture) -> Capture:
        convs = conversations(cap)
        keyed = []
        for i, f in enumerate(cap.frames):
            k = f.ts_ns
            if isinstance(f, Seg) and _is_smtp(f, cap.ports):
                conv = convs.get(_conv_key(f))
                if conv is not None and ((f.src, f.sport) == conv[1]) == (side == "S"):
                    k += delay_ns
            keyed.append((k, i, f))
        keyed.sort(key=lambda x: (x[0], x[1]))
        out = cap.with_frames([f for _, _, f in keyed], f"written_late({side}, {delay_ns} ns)")
        return dataclasses.replace(out, monotonic=False)
    return step


def with_ports(ports: Iterable[int]) -> Step:
    """Also treat these ports as SMTP ports (for conversations pcapsmtp finds by content)."""
    extra = frozenset(ports)
    return lambda cap: dataclasses.replace(cap, ports=cap.ports | extra)


def one_direction(side: str) -> Step:
    """Keep only what ``side`` ("client" or "server") of each SMTP conversation sent: a one-way
    tap, asymmetric routing, a ``src port 25`` filter. Frames of other conversations stay."""
    if side not in ("client", "server"):
        raise ValueError(side)

    def step(cap: Capture) -> Capture:
        convs = conversations(cap)
        kept = []
        for f in cap.frames:
            if isinstance(f, Seg) and _is_smtp(f, cap.ports):
                client, _server = convs[_conv_key(f)]
                if ((f.src, f.sport) == client) != (side == "client"):
                    continue
            kept.append(f)
        return cap.with_frames(kept, f"one_direction({side})")
    return step


def _close_index(frames: list[Frame]) -> dict[frozenset[_EndPt], int]:
    """Per conversation, the index of its first FIN or RST frame."""
    out: dict[frozenset[_EndPt], int] = {}
    for i, f in enumerate(frames):
        if isinstance(f, Seg) and f.flags & (FIN | RST):
            out.setdefault(_conv_key(f), i)
    return out


def duplicate(every: int = 2, *, lag: int = 3) -> Step:
    """Retransmit every ``every``-th SMTP data segment as an exact copy: alternately right after
    the original and ``lag`` frames later (never after the conversation's first FIN/RST, so a
    late copy cannot open a new conversation)."""
    def step(cap: Capture) -> Capture:
        frames = list(cap.frames)
        closes = _close_index(frames)
        inserts: dict[int, list[Seg]] = {}     # insert after position -> copies
        k = 0
        n_data = 0
        for i, f in enumerate(frames):
            if not isinstance(f, Seg) or not f.payload or not _is_smtp(f, cap.ports):
                continue
            n_data += 1
            if (n_data - 1) % every:
                continue
            later = k % 2 == 1
            k += 1
            pos = i
            if later:
                limit = closes.get(_conv_key(f), len(frames)) - 1
                pos = max(i, min(i + lag, limit))
            inserts.setdefault(pos, []).append(f)
        out: list[Frame] = []
        for i, f in enumerate(frames):
            out.append(f)
            for copy in inserts.get(i, ()):
                out.append(replace(copy, ts_ns=f.ts_ns))
        return cap.with_frames(out, f"duplicate({k} copies)")
    return step


def partial_overlap(overlap: int = 3, every: int = 2) -> Step:
    """Every ``every``-th SMTP data segment that follows earlier bytes of its direction is
    replaced by one that starts ``overlap`` bytes earlier (the overlapped bytes identical to the
    ones already sent), as a retransmission that re-packetised the data would."""
    def step(cap: Capture) -> Capture:
        dirs = _directions(cap.frames, cap.ports)
        out: list[Frame] = []
        n_data = 0
        changed = 0
        for f in cap.frames:
            if (isinstance(f, Seg) and f.payload and _is_smtp(f, cap.ports)
                    and not f.flags & SYN):
                n_data += 1
                if (n_data - 1) % every == 0:
                    d = dirs[_direction(f)]
                    off = d.offset(f.seq)
                    prev = d.get(off - overlap, overlap)
                    if prev is not None:
                        f = replace(f, seq=(f.seq - overlap) % MOD, payload=prev + f.payload)
                        changed += 1
            out.append(f)
        return cap.with_frames(out, f"partial_overlap({changed} segments)")
    return step


def drop_segment(predicate: Callable[[SegmentView], bool], *, with_copies: bool = True) -> Step:
    """Remove the first SMTP data segment for which ``predicate`` is true. With ``with_copies``
    (default) every other segment of the same direction that carries any of its bytes
    (retransmissions) goes too, so the bytes are really missing from the capture. Raises
    ``LookupError`` if nothing matches (a test asking for an impossible drop must say so)."""
    def step(cap: Capture) -> Capture:
        victim: SegmentView | None = None
        views = list(data_segments(cap))
        for v in views:
            if predicate(v):
                victim = v
                break
        if victim is None:
            raise LookupError("drop_segment: no data segment matches the predicate")
        gone = {victim.index}
        if with_copies:
            for v in views:
                if (_direction(v.seg) == _direction(victim.seg) and v.offset < victim.end
                        and victim.offset < v.end):
                    gone.add(v.index)
        frames = [f for i, f in enumerate(cap.frames) if i not in gone]
        note = (f"drop_segment({victim.side} bytes {victim.offset}..{victim.end} of "
                f"{victim.client[1]}->{victim.server[1]}, {len(gone)} frame(s))")
        return cap.with_frames(frames, note)
    return step


def shift_seq(delta: int | None = None, *, wrap_after: int = 40) -> Step:
    """Move sequence numbers (and the peer's ACKs and SACK blocks with them). ``delta``: add
    this to every SMTP direction. ``None``: per direction, put the first payload byte
    ``wrap_after`` bytes below 2^32 so that the sequence numbers wrap inside the exchange."""
    def step(cap: Capture) -> Capture:
        dirs = _directions(cap.frames, cap.ports)
        deltas: dict[tuple[_EndPt, _EndPt], int] = {}
        for key, d in dirs.items():
            if delta is not None:
                deltas[key] = delta
            elif d.base is not None:
                deltas[key] = (MOD - wrap_after - d.base) % MOD
            else:
                deltas[key] = 0
        out: list[Frame] = []
        for f in cap.frames:
            if isinstance(f, Seg) and _is_smtp(f, cap.ports):
                fwd = deltas.get(_direction(f), 0)
                back = deltas.get(_direction(f)[::-1], 0)
                ack = (f.ack + back) % MOD if f.flags & ACK else f.ack
                f = replace(f, seq=(f.seq + fwd) % MOD, ack=ack, options=_shift_sack(f.options, back))
            out.append(f)
        return cap.with_frames(out, "shift_seq")
    return step


def _shift_sack(options: bytes, delta: int) -> bytes:
    if not delta or not options:
        return options
    out = bytearray(options)
    i = 0
    while i < len(out):
        kind = out[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(out) or out[i + 1] < 2:
            break
        length = out[i + 1]
        if kind == 5:
            for j in range(i + 2, min(i + length, len(out)) - 3, 4):
                v = struct.unpack_from("!I", out, j)[0]
                struct.pack_into("!I", out, j, (v + delta) % MOD)
        i += length
    return bytes(out)


# ============================================================================== link, IP, format

def ethernet() -> Step:
    return lambda cap: dataclasses.replace(cap, link="ether", vlan_ids=(), qinq=False)


def vlan(ids: tuple[int, ...] = (100,)) -> Step:
    """802.1Q tags (outermost first) on every frame."""
    return lambda cap: dataclasses.replace(cap, link="ether", vlan_ids=tuple(ids), qinq=False,
                                           notes=cap.notes + (f"vlan{tuple(ids)}",))


def qinq(outer: int = 200, inner: int = 100) -> Step:
    """802.1ad outer tag (0x88a8) and 802.1Q inner tag on every frame."""
    return lambda cap: dataclasses.replace(cap, link="ether", vlan_ids=(outer, inner), qinq=True,
                                           notes=cap.notes + ("qinq",))


def sll2() -> Step:
    """Linux cooked capture v2 (linktype 276) instead of Ethernet."""
    return lambda cap: dataclasses.replace(cap, link="sll2", vlan_ids=(), qinq=False,
                                           notes=cap.notes + ("sll2",))


def _link(name: str) -> Step:
    return lambda cap: dataclasses.replace(cap, link=name, vlan_ids=(), qinq=False,
                                           notes=cap.notes + (name,))


def sll() -> Step:
    """Linux cooked capture v1 (linktype 113): ``tcpdump -i any`` before libpcap 1.10."""
    return _link("sll")


def raw_ip() -> Step:
    """Raw IP (linktype 101): no link header (a tun device, ``-i any`` of some systems)."""
    return _link("raw")


def null() -> Step:
    """BSD loopback (linktype 0): a 4-byte address family in host order (macOS ``lo0``)."""
    return _link("null")


def loop() -> Step:
    """OpenBSD loopback (linktype 108): the 4-byte address family in network order."""
    return _link("loop")


def to_pcapng() -> Step:
    return lambda cap: dataclasses.replace(cap, fmt="pcapng", notes=cap.notes + ("pcapng",))


def nanosecond() -> Step:
    """pcap with nanosecond timestamps (magic 0xa1b23c4d)."""
    return lambda cap: dataclasses.replace(cap, fmt="pcap-ns", notes=cap.notes + ("pcap-ns",))


def two_interfaces() -> Step:
    """pcapng with two interfaces (``dumpcap -i eth0 -i any``): every other frame on the second
    one, Ethernet with microsecond timestamps, the others on the first, of the capture's link
    type with nanosecond ones."""
    return lambda cap: dataclasses.replace(cap, fmt="pcapng-2if", notes=cap.notes + ("pcapng-2if",))


def second_tap(lag_ns: int = 300_000, hops: int = 3) -> Step:
    """The same conversations captured at a second tap too, merged by time (a capture on the
    client's host and one on the server's, ``mergecap``): every TCP segment of an SMTP
    conversation twice, the second copy ``lag_ns`` later with a TTL (hop limit) ``hops``
    lower, as further along the path. Other frames once."""
    def step(cap: Capture) -> Capture:
        out: list[Frame] = []
        for f in cap.frames:
            out.append(f)
            if isinstance(f, Seg) and _is_smtp(f, cap.ports):
                out.append(replace(f, ts_ns=f.ts_ns + lag_ns, ttl=max(1, f.ttl - hops)))
        out.sort(key=lambda f: f.ts_ns)
        return cap.with_frames(out, f"second_tap({lag_ns} ns, -{hops} hops)")
    return step


def merged_with(other: Capture, net: str = "10.") -> Step:
    """Another capture merged in by time (``mergecap``), its clock moved so that it starts 1 ms
    after this one, its IPv4 addresses moved to ``net`` (a.b.c.d becomes 10.b.c.d: its hosts
    are others) and its ports added to this one's."""
    def move(a: str) -> str:
        return net + a.split(".", 1)[1] if "." in a else a

    def step(cap: Capture) -> Capture:
        if not other.frames or not cap.frames:
            return cap
        shift = cap.frames[0].ts_ns + 1_000_000 - other.frames[0].ts_ns
        frames = list(cap.frames)
        for f in other.frames:
            if isinstance(f, Seg):
                frames.append(replace(f, ts_ns=f.ts_ns + shift, src=move(f.src), dst=move(f.dst)))
            else:
                frames.append(replace(f, ts_ns=f.ts_ns + shift))
        frames.sort(key=lambda f: f.ts_ns)
        out = cap.with_frames(frames, f"merged_with({len(other.frames)} frames)")
        return dataclasses.replace(out, ports=cap.ports | other.ports)
    return step


def gzip() -> Step:
    return lambda cap: dataclasses.replace(cap, compress=True, notes=cap.notes + ("gzip",))


def to_ipv6(prefix: str = "2001:db8::") -> Step:
    """Carry every IPv4 TCP segment over IPv6: a.b.c.d becomes ``prefix`` + a.b.c.d (a
    one-to-one map, so hosts stay distinct). Ports, sequence numbers and payloads are kept;
    other IPv4 packets (UDP, ICMP, fragments) stay as they are."""
    base = int(ipaddress.IPv6Address(prefix))

    def conv(a: str) -> str:
        if ":" in a:
            return a
        return str(ipaddress.IPv6Address(base | int(ipaddress.IPv4Address(a))))

    def step(cap: Capture) -> Capture:
        out = [replace(f, src=conv(f.src), dst=conv(f.dst)) if isinstance(f, Seg) else f
               for f in cap.frames]
        return cap.with_frames(out, "to_ipv6")
    return step


# ============================================================================== predicates

def _lines(data: bytes, start: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each LF-terminated line from ``start`` (end excludes CR LF)."""
    out = []
    pos = start
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        end = nl - 1 if nl > pos and data[nl - 1] == 13 else nl
        out.append((pos, end))
        pos = nl + 1
    return out


def _replies(server: bytes) -> list[list[tuple[int, int]]]:
    """Server stream -> replies, each a list of line ranges (``ddd-`` continues a reply)."""
    replies: list[list[tuple[int, int]]] = []
    cur: list[tuple[int, int]] = []
    for a, b in _lines(server):
        cur.append((a, b))
        line = server[a:b]
        if not (len(line) >= 4 and line[:3].isdigit() and line[3:4] == b"-"):
            replies.append(cur)
            cur = []
    return replies


def _ehlo_reply(client: bytes, server: bytes) -> list[tuple[int, int]] | None:
    """The line ranges of the reply to the first EHLO: reply number 1 + the number of client
    command lines before that EHLO (the greeting is reply 0; no client pipelines before EHLO)."""
    k = None
    for n, (a, _b) in enumerate(_lines(client)):
        if client[a:a + 4].upper() == b"EHLO":
            k = n + 1
            break
    if k is None:
        return None
    replies = _replies(server)
    if k >= len(replies) or not server[replies[k][0][0]:].startswith(b"250"):
        return None
    return replies[k]


def ehlo_reply_line(index: int | None = None, *, keyword: bytes | None = None,
                    client_port: int | None = None) -> Callable[[SegmentView], bool]:
    """Predicate: the server segment that carries the middle byte of one line of the EHLO
    reply: line ``index`` (0 = the domain line) or the first line whose text after the code
    starts with ``keyword``. ``client_port`` restricts it to one conversation."""
    cache: dict[tuple[_EndPt, _EndPt], int | None] = {}

    def target(v: SegmentView, client_stream: bytes) -> int | None:
        reply = _ehlo_reply(client_stream, v.stream)
        if reply is None:
            return None
        for n, (a, b) in enumerate(reply):
            text = v.stream[a + 4:b]
            if (index is not None and n == index) or (
                    keyword is not None and text.upper().startswith(keyword.upper())):
                return (a + b) // 2
        return None

    def pred(v: SegmentView) -> bool:
        if v.side != "server" or (client_port is not None and v.client[1] != client_port):
            return False
        key = (v.client, v.server)
        if key not in cache:
            cache[key] = target(v, v.peer)
        t = cache[key]
        return t is not None and v.offset <= t < v.end
    return pred


def message_body(client_port: int | None = None, *, where: float = 0.5,
                 min_body: int = 16) -> Callable[[SegmentView], bool]:
    """Predicate: the client segment that carries the byte at fraction ``where`` of the first
    DATA message body (between the DATA line and CRLF.CRLF), if the body has at least
    ``min_body`` bytes."""
    cache: dict[tuple[_EndPt, _EndPt], int | None] = {}

    def target(stream: bytes) -> int | None:
        for a, b in _lines(stream):
            if stream[a:b].strip().upper() == b"DATA":
                start = stream.find(b"\n", b) + 1
                end = stream.find(b"\r\n.\r\n", start - 2)
                if end < 0 or end - start < min_body:
                    return None
                return start + int((end - start) * where)
        return None

    def pred(v: SegmentView) -> bool:
        if v.side != "client" or (client_port is not None and v.client[1] != client_port):
            return False
        key = (v.client, v.server)
        if key not in cache:
            cache[key] = target(v.stream)
        t = cache[key]
        return t is not None and v.offset <= t < v.end
    return pred
