"""pcapsmtp.capture.decode: link layer -> IP -> TCP.

- every frame of the public corpus against scapy's dissection;
- synthetic frames for every link-type and IP variant, fragments and snaplen cuts;
- a tshark cross-check of frame numbers and TCP lengths on a synthetic capture.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import (IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, fragment6)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Ether
from scapy.packet import Raw
# the tunnel layers' bindings (MPLS on 0x8847, Geneve on UDP 6081, ERSPAN in GRE)
import scapy.contrib.erspan  # noqa: F401,E402
import scapy.contrib.geneve  # noqa: F401,E402
import scapy.contrib.mpls  # noqa: F401,E402
import scapy.layers.ppp  # noqa: F401,E402
import scapy.layers.vxlan  # noqa: F401,E402

from capture_synth import corpus_files, pcap_file
from pcapsmtp.capture.base import RawFrame
from pcapsmtp.capture.decode import Decoder
from pcapsmtp.capture.pcapfile import iter_segments, open_frames
from pcapsmtp.errors import CaptureError
from pcapsmtp.model import TcpSegment

FILES = corpus_files()


def _scapy_reads(path: Path) -> bool:
    """Does scapy have a dissector for the link type of the file's first frame? (Not for
    NFLOG, 239: tshark checks those captures, tests/test_captures_expected.py.)"""
    from scapy.config import conf
    try:
        first = next(iter(open_frames(str(path))), None)
    except CaptureError:
        return True
    return first is None or first.linktype in conf.l2types
MAC = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb"


def _key(seg: TcpSegment | None) -> tuple[object, ...] | None:
    if seg is None:
        return None
    return (seg.src, seg.sport, seg.dst, seg.dport, seg.seq, seg.ack, seg.flags, seg.payload)


# ----------------------------------------------------------------------------- corpus vs scapy

def _scapy_key(linktype: int, data: bytes) -> tuple[object, ...] | None:
    """What scapy dissects: the TCP fields, None for "not TCP", or ("fragment",) for a
    fragment of a fragmented IP datagram (scapy does not reassemble)."""
    from scapy.config import conf
    cls = conf.l2types.get(linktype)
    if cls is None:
        return ("no-scapy",)      # NFLOG (239): scapy has no dissector, tshark checks it
    pkt = cls(data)
    layer = pkt
    while layer and not isinstance(layer, (IP, IPv6)):
        layer = layer.payload
    if not layer:
        return None
    outer = layer
    if isinstance(outer, IP) and (outer.flags.MF or outer.frag):
        return ("fragment",)
    frag6 = outer.getlayer(IPv6ExtHdrFragment)
    if frag6 is not None and (frag6.m or frag6.offset):
        return ("fragment",)
    tcp = pkt.getlayer(TCP)
    # only a real TCP header (not TCPerror inside ICMP), over the innermost IP layer and its
    # IPv6 extension headers (the decoder unwraps GRE, ERSPAN, VXLAN, Geneve, IP in IP, MPLS
    # and PPPoE as scapy does once their layers are loaded, above)
    if tcp is None or type(tcp) is not TCP:
        return None
    ip = tcp.underlayer
    while ip is not None and not isinstance(ip, (IP, IPv6)):
        ip = ip.underlayer
    if ip is None:
        return None
    if ip is not outer and (isinstance(ip, IP) and (ip.flags.MF or ip.frag)):
        return ("fragment",)
    raw = tcp.getlayer(Raw)
    return (ip.src, tcp.sport, ip.dst, tcp.dport, tcp.seq, tcp.ack, int(tcp.flags) & 0xFF,
            raw.load if raw is not None else b"")


SCAPY_FILES = [p for p in FILES if _scapy_reads(p)]


@pytest.mark.parametrize("path", SCAPY_FILES, ids=[p.name for p in SCAPY_FILES])
def test_decoder_matches_scapy(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep scapy from dissecting TCP payloads as DNS/NetBIOS/...: the payload stays one Raw
    # layer and Ethernet padding goes into a separate Padding layer, as the IP length says.
    monkeypatch.setattr(TCP, "payload_guess", [])
    dec = Decoder()
    frames: list[RawFrame] = []
    try:
        for f in open_frames(str(path)):
            frames.append(f)
    except CaptureError:
        pass  # the corrupt corpus file: its good frames are compared
    assert frames
    compared = 0
    for f in frames:
        seg = dec.decode(f)
        exp = _scapy_key(f.linktype, f.data)
        if exp == ("fragment",) or exp == ("no-scapy",):
            continue      # scapy does not reassemble; the synthetic tests cover fragments
        assert _key(seg) == exp, f"frame {f.number}"
        if seg is not None:
            assert seg.frame == f.number and seg.ts_ns == f.ts_ns
            assert seg.missing == 0 or f.wirelen > len(f.data)
        compared += 1
    assert dec.frames == len(frames)
    assert compared > 0


# ----------------------------------------------------------------------------- synthetic frames

def _tcp(payload: bytes = b"hello", **kw: object) -> TCP:
    return TCP(sport=1025, dport=25, seq=1000, ack=2000, flags="PA", **kw) / Raw(payload)


V4 = IP(src="192.0.2.1", dst="198.51.100.2", id=7)
V6 = IPv6(src="2001:db8::1", dst="2001:db8:0:0:1::2")
EXP4 = ("192.0.2.1", 1025, "198.51.100.2", 25, 1000, 2000, 0x18, b"hello")
EXP6 = ("2001:db8::1", 1025, "2001:db8::1:0:0:2", 25, 1000, 2000, 0x18, b"hello")


def _dec(linktype: int, data: bytes, wirelen: int | None = None, number: int = 1,
         ts_ns: int = 5, dec: Decoder | None = None) -> TcpSegment | None:
    dec = dec or Decoder()
    return dec.decode(RawFrame(number, ts_ns, linktype, data,
                               len(data) if wirelen is None else wirelen))


def _eth(ethertype: int, payload: bytes, tags: tuple[tuple[int, int], ...] = ()) -> bytes:
    """Ethernet frame with VLAN tags given as (tag protocol id, vlan id), outermost first."""
    return (MAC + b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in tags)
            + struct.pack("!H", ethertype) + payload)


IP4_BYTES = bytes(V4 / _tcp())
IP6_BYTES = bytes(V6 / _tcp())


VARIANTS = [
    ("ethernet", 1, _eth(0x0800, IP4_BYTES), EXP4),
    ("ethernet-v6", 1, _eth(0x86DD, IP6_BYTES), EXP6),
    ("ethernet-padding", 1, _eth(0x0800, bytes(V4 / _tcp(b"")) + b"\x00" * 6),
     EXP4[:7] + (b"",)),
    ("ethernet-fcs", 1, _eth(0x0800, IP4_BYTES) + b"\xde\xad\xbe\xef", EXP4),
    ("vlan", 1, _eth(0x0800, IP4_BYTES, ((0x8100, 125),)), EXP4),
    ("qinq-88a8", 1, _eth(0x86DD, IP6_BYTES, ((0x88A8, 10), (0x8100, 20))), EXP6),
    ("qinq-9100-3-deep", 1, _eth(0x0800, IP4_BYTES, ((0x9100, 1), (0x88A8, 2), (0x8100, 3))),
     EXP4),
    ("sll", 113, bytes(CookedLinux(proto=0x0800)) + IP4_BYTES, EXP4),
    ("sll-v6", 113, bytes(CookedLinux(proto=0x86DD)) + IP6_BYTES, EXP6),
    ("sll-vlan", 113, bytes(CookedLinux(proto=0x8100)) + b"\x00\x05\x08\x00" + IP4_BYTES, EXP4),
    ("sll2", 276, bytes(CookedLinuxV2(proto=0x0800)) + IP4_BYTES, EXP4),
    ("raw-101-v4", 101, IP4_BYTES, EXP4),
    ("raw-101-v6", 101, IP6_BYTES, EXP6),
    ("raw-12", 12, IP4_BYTES, EXP4),
    ("raw-14", 14, IP6_BYTES, EXP6),
    ("ipv4-228", 228, IP4_BYTES, EXP4),
    ("ipv6-229", 229, IP6_BYTES, EXP6),
    ("null-le-v4", 0, struct.pack("<I", 2) + IP4_BYTES, EXP4),
    ("null-be-v4", 0, struct.pack(">I", 2) + IP4_BYTES, EXP4),
    ("null-v6-24", 0, struct.pack("<I", 24) + IP6_BYTES, EXP6),
    ("null-v6-28", 0, struct.pack("<I", 28) + IP6_BYTES, EXP6),
    ("null-v6-30-be", 0, struct.pack(">I", 30) + IP6_BYTES, EXP6),
    ("loop-v4", 108, struct.pack(">I", 2) + IP4_BYTES, EXP4),
    ("loop-v6", 108, struct.pack(">I", 24) + IP6_BYTES, EXP6),
    ("ipv4-options", 1, _eth(0x0800, bytes(IP(src="192.0.2.1", dst="198.51.100.2",
                                              options=b"\x01\x01\x01\x00") / _tcp())), EXP4),
    ("tcp-options", 101, bytes(V4 / _tcp(options=[("MSS", 1460), ("SAckOK", b""),
                                                  ("Timestamp", (1, 2))])), EXP4),
    ("v6-hbh-rt-dst-ah", 101, bytes(V6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting()
                                    / IPv6ExtHdrDestOpt() / AH(nh=6, payloadlen=4, icv=b"\x00" * 12)
                                    / _tcp()), EXP6),
    ("v6-atomic-fragment", 101, bytes(V6 / IPv6ExtHdrFragment(id=9) / _tcp()), EXP6),
]


@pytest.mark.parametrize("name,linktype,frame,expected", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_link_and_ip_variants(name: str, linktype: int, frame: bytes,
                              expected: tuple[object, ...]) -> None:
    dec = Decoder()
    seg = _dec(linktype, frame, dec=dec)
    assert _key(seg) == expected
    assert seg is not None and seg.missing == 0 and seg.frame == 1 and seg.ts_ns == 5
    assert (dec.frames, dec.tcp_segments, dec.undecodable, dec.notes) == (1, 1, 0, [])


def test_ah_really_is_parsed() -> None:
    # guard for the case above: scapy's AH with payloadlen=4 is 24 bytes long
    assert len(bytes(AH(nh=6, payloadlen=4, icv=b"\x00" * 12))) == 24


@pytest.mark.parametrize("linktype,frame", [
    (1, bytes(Ether() / ARP())),
    (1, _eth(0x0800, bytes(V4 / UDP(sport=53, dport=53) / Raw(b"x")))),
    (1, _eth(0x86DD, bytes(V6 / IPv6ExtHdrDestOpt() / UDP()))),
    (1, _eth(0x86DD, bytes(IPv6(nh=59)))),
    (1, MAC + b"\x00\x30" + b"\xaa" * 48),                 # 802.3 length field
    (0, struct.pack("<I", 7) + IP4_BYTES),                 # NULL, unknown family
    (228, IP6_BYTES),                                      # 228 must be IPv4
], ids=["arp", "udp", "udp-v6-ext", "v6-no-next-header", "802.3", "null-unknown-family",
        "228-with-v6"])
def test_not_tcp(linktype: int, frame: bytes) -> None:
    dec = Decoder()
    assert _dec(linktype, frame, dec=dec) is None
    assert (dec.frames, dec.tcp_segments, dec.undecodable) == (1, 0, 0)


def test_unknown_link_type_noted_once() -> None:
    dec = Decoder()
    for n in (17, 18, 19):
        assert _dec(147, IP4_BYTES, number=n, dec=dec) is None
    assert _dec(148, IP4_BYTES, number=20, dec=dec) is None
    tail = " (--engine tshark decodes every link type Wireshark knows)"
    assert dec.notes == ["frame 17: link type 147 not decoded; such frames are skipped" + tail,
                         "frame 20: link type 148 not decoded; such frames are skipped" + tail]
    assert dec.undecodable == 4


@pytest.mark.parametrize("linktype,frame", [
    (1, MAC),                                              # no ethertype
    (1, _eth(0x0800, IP4_BYTES[:19])),                     # IPv4 header cut
    (1, _eth(0x86DD, IP6_BYTES[:39])),                     # IPv6 header cut
    (1, MAC + b"\x81\x00\x00"),                            # VLAN tag cut
    (113, b"\x00" * 15),
    (276, b"\x00" * 19),
    (0, b"\x02\x00"),
    (1, _eth(0x0800, b"\x45\x00\x00\x10" + IP4_BYTES[4:])),  # total length < header length
    (1, _eth(0x0800, b"\x44" + IP4_BYTES[1:])),            # IHL 4
    (1, _eth(0x86DD, b"\x40" + IP6_BYTES[1:])),            # IPv6 version 4
    (101, IP4_BYTES[:20 + 12]),                            # TCP header cut
    (101, bytes(V4 / _tcp(b"", options=[("MSS", 1460)]))[:20 + 22]),  # TCP options cut
    (101, IP4_BYTES[:32] + b"\x40" + IP4_BYTES[33:]),      # TCP data offset 4 words
], ids=["eth-cut", "v4-hdr-cut", "v6-hdr-cut", "vlan-cut", "sll-cut", "sll2-cut", "null-cut",
        "v4-totlen-small", "v4-ihl-4", "v6-bad-version", "tcp-hdr-cut", "tcp-opts-cut",
        "tcp-doff-4"])
def test_undecodable(linktype: int, frame: bytes) -> None:
    dec = Decoder()
    assert _dec(linktype, frame, dec=dec) is None
    assert (dec.frames, dec.tcp_segments, dec.undecodable) == (1, 0, 1)
    assert len(dec.notes) == 1 and dec.notes[0].startswith("frame 1: ")


def test_snaplen_cut_payload_reports_missing() -> None:
    full = _eth(0x0800, bytes(V4 / _tcp(b"A" * 1000)))
    cut = full[:14 + 20 + 20 + 100]
    seg = _dec(1, cut, wirelen=len(full))
    assert seg is not None and seg.payload == b"A" * 100 and seg.missing == 900


def test_on_cut_gets_the_captured_length_of_cut_tcp_frames_only() -> None:
    """``on_cut`` learns the snap length from the frames: called with the captured length of
    each TCP frame whose payload was cut, not for whole frames."""
    seen: list[int] = []
    dec = Decoder()
    dec.on_cut = seen.append
    full = _eth(0x0800, bytes(V4 / _tcp(b"A" * 1000)))
    _dec(1, full[:96], wirelen=len(full), dec=dec)
    _dec(1, full, dec=dec)
    _dec(1, _eth(0x0800, bytes(V4 / _tcp(b"B" * 10)))[:96], dec=dec)   # shorter than 96: whole
    assert seen == [96]


def test_tcp_header_cut_by_the_snap_length_says_so() -> None:
    full = _eth(0x0800, bytes(V4 / _tcp(b"A" * 100)))
    dec = Decoder()
    assert _dec(1, full[:44], wirelen=len(full), dec=dec) is None
    assert dec.notes == [f"frame 1: TCP header not captured: the capture kept 44 of the frame's "
                         f"{len(full)} bytes (snap length 44; capture again with `tcpdump -s 0`); "
                         "such frames are skipped"]
    dec = Decoder()
    assert _dec(1, full[:44], dec=dec) is None         # a frame that really ends there
    assert dec.notes == ["frame 1: TCP header not captured (the frame ends inside it); such "
                         "frames are skipped"]


def test_snaplen_cut_missing_is_bounded_by_wire_length() -> None:
    full = bytes(V6 / _tcp(b"A" * 1000))
    seg = _dec(101, full[:40 + 20 + 10], wirelen=40 + 20 + 500)   # IP header overstates
    assert seg is not None and seg.payload == b"A" * 10 and seg.missing == 490


def test_tso_zero_total_length_uses_the_frame() -> None:
    pkt = bytearray(bytes(V4 / _tcp(b"B" * 3000)))
    pkt[2:4] = b"\x00\x00"
    seg = _dec(101, bytes(pkt))
    assert seg is not None and seg.payload == b"B" * 3000 and seg.missing == 0


# ----------------------------------------------------------------------------- fragments

def _frags4(payload_len: int = 3000, ident: int = 77) -> list[bytes]:
    pkt = IP(src="192.0.2.1", dst="198.51.100.2", id=ident) / _tcp(b"F" * payload_len)
    return [bytes(f) for f in fragment(pkt, fragsize=1000)]


def test_ipv4_fragments_in_order() -> None:
    dec = Decoder()
    parts = _frags4()
    assert len(parts) == 4
    out = [_dec(101, p, number=i, ts_ns=i, dec=dec) for i, p in enumerate(parts, 1)]
    assert out[:3] == [None, None, None]
    seg = out[3]
    assert seg is not None and (seg.frame, seg.ts_ns) == (4, 4)
    assert _key(seg) == EXP4[:7] + (b"F" * 3000,)
    assert (dec.tcp_segments, dec.undecodable, dec.notes) == (1, 0, [])


def test_ipv4_fragments_reversed_duplicated_interleaved() -> None:
    dec = Decoder()
    a = _frags4(ident=1)
    b = _frags4(ident=2, payload_len=1500)
    order = [a[3], b[1], a[2], a[2], a[1], b[0], a[0]]
    out = [_dec(1, _eth(0x0800, p), number=i, dec=dec) for i, p in enumerate(order, 1)]
    assert [s.frame for s in out if s is not None] == [6, 7]
    assert [len(s.payload) for s in out if s is not None] == [1500, 3000]


def test_ipv4_fragments_expire_after_60s_and_limit() -> None:
    dec = Decoder()
    parts = _frags4()
    assert _dec(101, parts[0], ts_ns=0, dec=dec) is None
    for i, p in enumerate(parts[1:], 2):
        assert _dec(101, p, number=i, ts_ns=61_000_000_000, dec=dec) is None
    assert any("dropped after 60 s" in n for n in dec.notes)
    dec = Decoder()
    for ident in range(300):
        _dec(101, _frags4(ident=ident)[1], number=ident + 1, dec=dec)
    assert len(dec._frags) == 256
    assert any("more than 256" in n for n in dec.notes)


def test_ipv4_fragment_cut_by_snaplen() -> None:
    dec = Decoder()
    parts = _frags4()
    _dec(101, parts[0][:100], wirelen=len(parts[0]), dec=dec)
    assert dec.undecodable == 1 and "cut by the snapshot length" in dec.notes[0]


def test_non_tcp_fragments_are_ignored() -> None:
    dec = Decoder()
    for f in fragment(V4 / UDP() / Raw(b"u" * 3000), fragsize=1000):
        assert _dec(101, bytes(f), dec=dec) is None
    assert (dec.undecodable, dec._frags) == (0, {})


def test_ipv6_fragments() -> None:
    pkt = V6 / IPv6ExtHdrDestOpt() / IPv6ExtHdrFragment(id=5) / _tcp(b"S" * 3000)
    parts = [bytes(f) for f in fragment6(pkt, 1280)]
    assert len(parts) == 3
    dec = Decoder()
    out = [_dec(229, p, number=i, dec=dec) for i, p in enumerate(reversed(parts), 1)]
    assert out[:2] == [None, None]
    assert out[2] is not None and out[2].frame == 3
    assert _key(out[2]) == EXP6[:7] + (b"S" * 3000,)


# ----------------------------------------------------------------------------- pipeline + tshark

def _mixed_capture() -> tuple[bytes, list[tuple[int, int, int]]]:
    """A pcap mixing padding, VLAN, QinQ, a snaplen cut and reversed fragments, and the
    expected (frame, sport, tcp length) of every TCP segment."""
    recs: list[tuple[bytes, int]] = []                       # (frame bytes, wire length)
    recs.append((_eth(0x0800, bytes(V4 / _tcp(b""))) + b"\x00" * 6, 0))
    recs.append((_eth(0x0800, IP4_BYTES, ((0x8100, 5),)), 0))
    recs.append((_eth(0x86DD, IP6_BYTES, ((0x88A8, 1), (0x8100, 2))), 0))
    big = _eth(0x0800, bytes(V4 / _tcp(b"C" * 1200)))
    recs.append((big[:200], len(big)))
    for p in reversed(_frags4()):
        recs.append((_eth(0x0800, p), 0))
    out = [pcap_file([])]
    for i, (data, wl) in enumerate(recs):
        out.append(struct.pack("<IIII", 1000, i, len(data), wl or len(data)) + data)
    expected = [(1, 1025, 0), (2, 1025, 5), (3, 1025, 5), (4, 1025, 1200), (8, 1025, 3000)]
    return b"".join(out), expected


def test_iter_segments_end_to_end(tmp_path: Path) -> None:
    data, expected = _mixed_capture()
    p = tmp_path / "mixed.pcap"
    p.write_bytes(data)
    dec = Decoder()
    segs = list(iter_segments(str(p), decoder=dec))
    assert [(s.frame, s.sport, len(s.payload) + s.missing) for s in segs] == expected
    assert segs[3].missing == 1200 - (200 - 54)
    assert (dec.frames, dec.tcp_segments) == (8, 5)


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_frame_numbers_and_lengths_agree_with_tshark(tmp_path: Path) -> None:
    data, expected = _mixed_capture()
    p = tmp_path / "mixed.pcap"
    p.write_bytes(data)
    out = subprocess.run(["tshark", "-r", str(p), "-o", "ip.defragment:TRUE", "-Y", "tcp",
                          "-T", "fields", "-e", "frame.number", "-e", "tcp.srcport",
                          "-e", "tcp.len"], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    rows = [tuple(int(x) for x in line.split("\t")) for line in out.splitlines() if line]
    assert rows == expected


def _has_fragments(path: Path) -> bool:
    dec = Decoder()
    try:
        for f in open_frames(str(path)):
            dec.decode(f)
            if dec._frags:
                return True
    except CaptureError:
        pass
    return False


FRAG_FILES = [p for p in FILES if _has_fragments(p)]


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("path", FRAG_FILES, ids=[p.name for p in FRAG_FILES])
def test_fragmented_captures_match_tshark(path: Path) -> None:
    """scapy does not reassemble IP fragments, so captures with fragments are checked
    against tshark: same TCP segments on the same frame numbers."""
    out = subprocess.run(["tshark", "-r", str(path), "-o", "ip.defragment:TRUE",
                          "-o", "ipv6.defragment:TRUE", "-Y", "tcp && !icmp && !icmpv6",
                          "-T", "fields", "-e", "frame.number", "-e", "tcp.srcport",
                          "-e", "tcp.dstport", "-e", "tcp.seq_raw", "-e", "tcp.len"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    rows = [tuple(int(x) for x in line.split("\t")) for line in out.splitlines() if line]
    ours = [(s.frame, s.sport, s.dport, s.seq, len(s.payload) + s.missing)
            for s in iter_segments(str(path))]
    assert rows == ours
