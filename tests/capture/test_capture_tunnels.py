"""pcapsmtp.capture.decode: TCP inside tunnels and encapsulations.

GRE (RFC 2784/2890, ERSPAN types I-III, Ethernet bridging, MPLS), VXLAN, Geneve, IP in IP
(4 and 41), MPLS label stacks, PPPoE and Linux NFLOG. Each synthetic frame is decoded by
``Decoder`` and, where it says so, by tshark: the inner TCP (addresses, ports, raw sequence
number, payload length) must be the same. The seed-* captures in captures/ cover the same
kinds through the whole analysis (tests/test_captures_expected.py); these frames cover the
header variants and the limits.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.erspan import ERSPAN_III
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from capture_synth import pcap_file
from pcapsmtp.capture.decode import FRAGMENT_TIMEOUT_NS, MAX_PENDING_DATAGRAMS, MAX_TUNNEL_DEPTH, Decoder
from pcapsmtp.capture.pcapfile import iter_segments
from pcapsmtp.model import TcpSegment

PAYLOAD = b"EHLO client.example.org\r\n"
INNER = IP(src="192.0.2.10", dst="198.51.100.25") / TCP(sport=40312, dport=25, flags="PA",
                                                         seq=1000, ack=2000) / Raw(PAYLOAD)
OUTER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="172.16.0.1",
                                                                     dst="172.16.0.2")
ETH = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02")
#: the outer Ethernet header, addresses given (scapy would look them up for an IPv6 packet)
OUTER_ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _decode(frame: Packet | bytes, linktype: int = 1) -> tuple[TcpSegment | None, Decoder]:
    data = bytes(frame)
    dec = Decoder()
    return dec.decode_raw(linktype, data, len(data), 1, 0), dec


def _inner_ok(seg: TcpSegment | None) -> None:
    assert seg is not None
    assert (seg.src, seg.sport, seg.dst, seg.dport, seg.seq, seg.ack) == (
        "192.0.2.10", 40312, "198.51.100.25", 25, 1000, 2000)
    assert seg.payload == PAYLOAD and seg.missing == 0


#: name -> frame: every one carries INNER, and tshark 4.0 finds it too
DECODED: dict[str, Packet] = {
    "gre": OUTER / GRE() / INNER,
    "gre-checksum-key-seq": OUTER / GRE(chksum_present=1, key_present=1, key=9, seqnum_present=1) / INNER,
    "gre-ethernet": OUTER / GRE(proto=0x6558) / ETH / INNER,
    "gre-mpls": OUTER / GRE(proto=0x8847) / MPLS(label=16, s=1) / INNER,
    "erspan1": OUTER / GRE(proto=0x88BE) / ETH / INNER,
    "erspan3-platform": OUTER / GRE(seqnum_present=1, proto=0x22EB)
    / ERSPAN_III(session_id=3, o=1) / (b"\x00" * 8) / ETH / INNER,
    "vxlan-vlan-inside": OUTER / UDP(sport=49999, dport=4789) / VXLAN(vni=7) / ETH
    / Dot1Q(vlan=30) / INNER,
    "vxlan-source-port": OUTER / UDP(sport=4789, dport=4789) / VXLAN(vni=7) / ETH / INNER,
    "geneve-options": OUTER / UDP(sport=49999, dport=6081)
    / GENEVE(vni=7, proto=0x6558, options=[GeneveOptions(classid=0x0103, type=1, data=b"\x00" * 4)])
    / ETH / INNER,
    "geneve-ip": OUTER / UDP(sport=49999, dport=6081) / GENEVE(vni=7, proto=0x0800) / INNER,
    "ipip-v6-outer": OUTER_ETH / IPv6(src="2001:db8::1", dst="2001:db8::2") / INNER,
    "mpls-3-labels": Ether(type=0x8847) / MPLS(label=1, s=0) / MPLS(label=2, s=0) / MPLS(label=3, s=1)
    / INNER,
    "vlan-pppoe": Ether() / Dot1Q(vlan=7) / PPPoE(sessionid=5) / PPP(proto=0x0021) / INNER,
    "gre-in-vxlan": OUTER / UDP(sport=49999, dport=4789) / VXLAN(vni=7) / ETH
    / IP(src="10.9.9.1", dst="10.9.9.2") / GRE() / INNER,
}


@pytest.mark.parametrize("name", sorted(DECODED))
def test_inner_tcp_is_decoded(name: str) -> None:
    seg, dec = _decode(DECODED[name])
    _inner_ok(seg)
    assert dec.notes == [] and dec.undecodable == 0


#: frames that carry no TCP the decoder may take: skipped silently (as any non-TCP packet)
NOT_DECODED: dict[str, Packet | bytes] = {
    "gre-routing-present": OUTER / GRE(routing_present=1) / INNER,
    # enhanced GRE of PPTP (version 1, key and sequence present) carrying PPP
    "gre-version-1": Ether() / IP(src="172.16.0.1", dst="172.16.0.2", proto=47)
    / Raw(b"\x30\x01\x88\x0b\x00\x1d\x00\x01\x00\x00\x00\x01" + bytes(PPP(proto=0x0021) / INNER)),
    "vxlan-no-vni-flag": OUTER / UDP(sport=49999, dport=4789) / VXLAN(flags=0) / ETH / INNER,
    "udp-other-port": OUTER / UDP(sport=49999, dport=4790) / VXLAN(vni=1) / ETH / INNER,
    "mpls-not-ip": Ether(type=0x8847) / MPLS(label=1, s=1) / (b"\x00" * 4) / ETH / INNER,
    "pppoe-lcp": Ether() / PPPoE(sessionid=5) / PPP(proto=0xC021) / b"\x01\x01\x00\x04",
    "geneve-version-1": OUTER / UDP(sport=49999, dport=6081) / (b"\x40\x00\x65\x58" + b"\0" * 4) / ETH / INNER,
}


@pytest.mark.parametrize("name", sorted(NOT_DECODED))
def test_not_a_tunnel_we_decode(name: str) -> None:
    seg, dec = _decode(NOT_DECODED[name])
    assert seg is None and dec.undecodable == 0 and dec.notes == []


def test_nesting_is_bounded() -> None:
    """A packet nested deeper than MAX_TUNNEL_DEPTH tunnels is skipped, with one note: a crafted
    capture cannot make the decoder recurse without end."""
    pkt: Packet = INNER
    for _ in range(MAX_TUNNEL_DEPTH):
        pkt = IP(src="172.16.0.1", dst="172.16.0.2") / GRE() / pkt
    seg, dec = _decode(Ether() / pkt)
    _inner_ok(seg)
    seg, dec = _decode(Ether() / IP(src="172.16.0.9", dst="172.16.0.8") / GRE() / pkt)
    assert seg is None and dec.undecodable == 1
    assert len(dec.notes) == 1 and f"more than {MAX_TUNNEL_DEPTH} tunnels" in dec.notes[0]


def test_snaplen_cut_inside_a_tunnel_counts_missing_bytes() -> None:
    """The inner IP length says how much TCP payload the snap length cut, as at the top."""
    data = bytes(DECODED["vxlan-vlan-inside"])
    dec = Decoder()
    cut = len(data) - 10
    seg = dec.decode_raw(1, data[:cut], len(data), 1, 0)
    assert seg is not None and seg.payload == PAYLOAD[:-10] and seg.missing == 10


def test_fragmented_gre_is_reassembled() -> None:
    """An outer IPv4 datagram in fragments (a GRE packet over a smaller MTU) is put together
    first, as tshark does by default."""
    whole = IP(src="172.16.0.1", dst="172.16.0.2", id=77) / GRE() / INNER
    frags = fragment(whole, fragsize=24)
    assert len(frags) >= 3
    dec = Decoder()
    got = [dec.decode_raw(1, bytes(Ether() / f), len(bytes(Ether() / f)), i + 1, i) for i, f in enumerate(frags)]
    assert got[:-1] == [None] * (len(frags) - 1)
    _inner_ok(got[-1])
    assert got[-1] is not None and got[-1].frame == len(frags)


def _outer_fragments(inner: Packet, *, v6: bool, size: int, ident: int,
                     dport: int = 4789) -> list[bytes]:
    """A VXLAN (or other UDP) packet carrying ``inner`` over an outer IPv4 or IPv6 packet, in
    fragments of ``size`` bytes of payload each, in order (Ethernet frames)."""
    udp = UDP(sport=49999, dport=dport) / (VXLAN(vni=7) / ETH / inner if dport == 4789 else inner)
    if v6:
        whole = IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(id=ident) / udp
        return [bytes(OUTER_ETH / f) for f in fragment6(whole, size + 48)]
    return [bytes(OUTER_ETH / f) for f in fragment(IP(src="172.16.0.1", dst="172.16.0.2", id=ident) / udp,
                                                   fragsize=size)]


def _feed(dec: Decoder, frames: list[bytes], first: int = 1, ts: int = 0) -> list[TcpSegment | None]:
    return [dec.decode_raw(1, f, len(f), first + i, ts + i) for i, f in enumerate(frames)]


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "last-first"])
def test_fragmented_udp_tunnel_is_reassembled(v6: bool, reverse: bool) -> None:
    """VXLAN whose outer IPv4 or IPv6 packet was fragmented (a full-size mirrored frame over an
    underlay of the same MTU) is put together first, in whatever order the fragments come; the
    segment carries the frame number of the fragment that completed it, as tshark shows it."""
    frames = _outer_fragments(INNER, v6=v6, size=32, ident=91)
    assert len(frames) >= 3
    if reverse:
        frames.reverse()
    dec = Decoder()
    got = _feed(dec, frames)
    assert got[:-1] == [None] * (len(frames) - 1)
    _inner_ok(got[-1])
    assert got[-1] is not None and got[-1].frame == len(frames)
    assert dec.notes == [] and dec.undecodable == 0


@settings(max_examples=200, deadline=None)
@given(v6=st.booleans(), size=st.integers(1, 11), data=st.data())     # 96 bytes: one packet
def test_fragments_in_any_order_give_the_segment_once(v6: bool, size: int, data: st.DataObject) -> None:
    """Any order of a fragmented VXLAN datagram's fragments, some sent twice before it is
    complete: exactly one segment, on the first frame by which every fragment has come."""
    frames = _outer_fragments(INNER, v6=v6, size=8 * size, ident=97)
    order = data.draw(st.lists(st.sampled_from(range(len(frames) - 1)), max_size=3))   # not the last
    order += data.draw(st.permutations(range(len(frames))))
    got = _feed(Decoder(), [frames[i] for i in order])
    complete = max(order.index(i) for i in range(len(frames)))
    assert [k for k, seg in enumerate(got) if seg is not None] == [complete]
    _inner_ok(got[complete])


def test_fragmented_geneve_is_reassembled() -> None:
    whole = IP(src="172.16.0.1", dst="172.16.0.2", id=93) / UDP(sport=49999, dport=6081) / GENEVE(
        vni=7, proto=0x0800) / INNER
    frames = [bytes(OUTER_ETH / f) for f in fragment(whole, fragsize=24)]
    _inner_ok(_feed(Decoder(), frames)[-1])


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_fragmented_udp_of_no_tunnel_is_forgotten(v6: bool) -> None:
    """Fragmented UDP on other ports (DNS, NFS, syslog) is not kept: its fragments are dropped
    as they come, in any order, without a note; once they all came the identification is free
    again, so a tunnel's datagram that reuses it is reassembled."""
    other = _outer_fragments(INNER, v6=v6, size=32, ident=95, dport=53)
    tunnel = _outer_fragments(INNER, v6=v6, size=32, ident=95)
    for order in (other, other[::-1], other[1:2] + other[:1] + other[2:]):
        dec = Decoder()
        assert _feed(dec, order) == [None] * len(order)
        assert not dec._frags                       # nothing left pending
        _inner_ok(_feed(dec, tunnel, first=10)[-1])
        assert dec.notes == [] and dec.undecodable == 0
    # a datagram of no tunnel whose last fragments never come expires without a note
    dec = Decoder()
    _feed(dec, other[:1])
    _feed(dec, tunnel[:1], ts=FRAGMENT_TIMEOUT_NS + 1)
    assert dec.notes == [] and len(dec._frags) == 1     # the tunnel's first fragment, pending


def test_fragmented_udp_is_bounded_as_other_fragments() -> None:
    """Hostile input: first fragments of UDP datagrams whose rest never comes hold at most
    MAX_PENDING_DATAGRAMS entries (the oldest dropped, with the note fragments have), and a
    tunnel's datagram is still reassembled after them."""
    dec = Decoder()
    for i in range(MAX_PENDING_DATAGRAMS + 10):     # DNS (forgotten) and VXLAN (kept) alike
        frames = _outer_fragments(INNER, v6=False, size=32, ident=1000 + i, dport=(53, 4789)[i % 2])
        _feed(dec, frames[:1], first=i)
    assert len(dec._frags) == MAX_PENDING_DATAGRAMS
    assert len(dec.notes) == 1 and "fragmented IP datagrams pending" in dec.notes[0]
    _inner_ok(_feed(dec, _outer_fragments(INNER, v6=True, size=32, ident=7), first=999)[-1])


def _with_ports(frame: bytes, sport: int, dport: int) -> bytes:
    """``frame`` (Ethernet, IPv4 without options, UDP without checksum) with other UDP ports."""
    return frame[:34] + struct.pack("!HH", sport, dport) + frame[38:]


#: a VXLAN and a Geneve frame carrying INNER, UDP checksum 0 (so that only the ports change)
VXLAN_FRAME = bytes(OUTER / UDP(sport=49999, dport=4789, chksum=0) / VXLAN(vni=7) / ETH / INNER)
GENEVE_FRAME = bytes(OUTER / UDP(sport=49999, dport=6081, chksum=0) / GENEVE(vni=7, proto=0x6558) / ETH / INNER)


@pytest.mark.parametrize(("frame", "port", "other", "tunnel"), [
    (VXLAN_FRAME, 4789, 53, False),       # DNS: Wireshark tries port 53 first, and DNS takes it
    (VXLAN_FRAME, 4789, 500, False),      # ISAKMP
    (VXLAN_FRAME, 4789, 3478, True),      # STUN's dissector rejects the bytes: VXLAN has them
    (VXLAN_FRAME, 4789, 1234, True),      # no dissector on the lower port
    (VXLAN_FRAME, 4789, 5353, True),      # mDNS, but higher than 4789: VXLAN is tried first
    (VXLAN_FRAME, 4789, 0, True),         # port 0 is never tried
    (GENEVE_FRAME, 6081, 5353, False),    # mDNS is lower than Geneve's port
    (GENEVE_FRAME, 6081, 49999, True),
])
def test_udp_tunnel_port_is_chosen_as_wireshark_does(frame: bytes, port: int, other: int, tunnel: bool) -> None:
    """Wireshark gives a UDP packet to the dissector of its lower port first: a VXLAN or Geneve
    packet whose other port is lower and claimed (a DNS reply to an ephemeral port 4789) is not
    a tunnel, on either side."""
    for sport, dport in ((other, port), (port, other)):
        seg, dec = _decode(_with_ports(frame, sport, dport))
        if tunnel:
            _inner_ok(seg)
        else:
            assert seg is None
        assert dec.notes == [] and dec.undecodable == 0


@pytest.mark.tshark
def test_tshark_takes_the_tunnel_on_the_same_ports(tmp_path: Path) -> None:
    """Every port below VXLAN's and Geneve's (and a few above) as the other port: tshark finds
    the inner TCP exactly on the frames where the decoder does (the port table of
    capture.decode, measured with tshark 4.0.17, is still what tshark does)."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    # (not Geneve from port 4789: Wireshark's VXLAN dissector, tried first, takes any bytes; the
    # decoder wants VXLAN's I flag, as RFC 7348 and Linux do: docs/wireshark.md, section 5)
    frames = [_with_ports(frame, other, port) for frame, port in ((VXLAN_FRAME, 4789), (GENEVE_FRAME, 6081))
              for other in [*range(1, port), port + 1, port + 2, 49999, 65535] if other != 4789]
    path = tmp_path / "ports.pcap"
    path.write_bytes(pcap_file([(f, 1_700_000_000, i) for i, f in enumerate(frames)]))
    proc = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "tcp.srcport", "-e", "udp.srcport"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    theirs = [row.split("\t") for row in proc.stdout.splitlines()]
    dec = Decoder()
    ours = [dec.decode_raw(1, f, len(f), i + 1, 0) is not None for i, f in enumerate(frames)]
    differ = [(int(row[1].split(",")[0]), bool(row[0])) for row, mine in zip(theirs, ours) if bool(row[0]) != mine]
    assert len(theirs) == len(frames) and differ == [], "(other port, tshark decodes the tunnel)"


def _nflog(fam: int, packet: bytes, *, big: bool = False) -> bytes:
    e = ">" if big else "<"
    tlvs = struct.pack(e + "HH", 8, 1) + struct.pack("!HBx", 0x0800, 3)
    tlvs += struct.pack(e + "HH", 4 + len(packet), 9) + packet
    return bytes([fam, 0]) + b"\x00\x00" + tlvs


@pytest.mark.parametrize("big", [False, True])
def test_nflog(big: bool) -> None:
    seg, dec = _decode(_nflog(2, bytes(INNER), big=big), linktype=239)
    _inner_ok(seg)
    seg, dec = _decode(_nflog(2, b"")[:-4], linktype=239)         # no payload TLV
    assert seg is None


# ---------------------------------------------------------------------------- against tshark

def _tshark_rows(path: Path) -> list[list[str]]:
    proc = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-o", "tcp.desegment_tcp_streams:FALSE", "-T", "fields",
         "-E", "occurrence=l", "-e", "frame.number", "-e", "ip.src", "-e", "ip.dst", "-e", "tcp.srcport",
         "-e", "tcp.dstport", "-e", "tcp.seq_raw", "-e", "tcp.len"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [ln.split("\t") for ln in proc.stdout.splitlines()]


@pytest.mark.tshark
def test_tshark_sees_the_same_inner_tcp(tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    names = sorted(DECODED)
    path = tmp_path / "tunnels.pcap"
    path.write_bytes(pcap_file([(bytes(DECODED[n]), 1_700_000_000 + i, 0) for i, n in enumerate(names)]))
    rows = _tshark_rows(path)
    segs = list(iter_segments(str(path)))
    assert len(rows) == len(names) and len(segs) == len(names)
    for name, row, seg in zip(names, rows, segs):
        assert row == [str(seg.frame), seg.src, seg.dst, str(seg.sport), str(seg.dport), str(seg.seq),
                       str(len(seg.payload))], name
    nf = tmp_path / "nflog.pcap"
    nf.write_bytes(pcap_file([(_nflog(2, bytes(INNER)), 1_700_000_000, 0)], linktype=239))
    (seg,) = list(iter_segments(str(nf)))
    assert _tshark_rows(nf) == [["1", seg.src, seg.dst, str(seg.sport), str(seg.dport), str(seg.seq),
                                 str(len(seg.payload))]]


@pytest.mark.tshark
def test_tshark_sees_the_same_inner_tcp_in_fragmented_tunnels(tmp_path: Path) -> None:
    """VXLAN over fragmented IPv4 and IPv6, fragments in order and last first, mixed with a
    fragmented DNS datagram: tshark (which reassembles by default) finds the inner TCP on the
    same frames, with the same addresses, ports, raw sequence numbers and lengths."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    frames: list[bytes] = []
    for ident, v6, reverse in ((301, False, False), (302, False, True), (303, True, False), (304, True, True)):
        part = _outer_fragments(INNER, v6=v6, size=200 if ident % 2 else 24, ident=ident)
        frames += part[::-1] if reverse else part
        frames += _outer_fragments(INNER, v6=v6, size=24, ident=ident, dport=53)[::-1]
    path = tmp_path / "fragments.pcap"
    path.write_bytes(pcap_file([(f, 1_700_000_000, i) for i, f in enumerate(frames)]))
    rows = [r for r in _tshark_rows(path) if r[3]]
    segs = list(iter_segments(str(path)))
    assert len(segs) == 4
    assert rows == [[str(s.frame), s.src, s.dst, str(s.sport), str(s.dport), str(s.seq), str(len(s.payload))]
                    for s in segs]


# ---------------------------------------------------------------------------- hostile bytes

#: every frame of DECODED and an NFLOG one as (link type, bytes), built once
FRAMES: dict[str, tuple[int, bytes]] = {
    **{name: (1, bytes(pkt)) for name, pkt in DECODED.items()}, "nflog": (239, _nflog(2, bytes(INNER)))}
#: VXLAN over fragmented IPv4 and IPv6: fragments of 32 bytes, in order
FRAGMENTED: dict[str, list[bytes]] = {
    f"vxlan-ipv{v}-fragments": _outer_fragments(INNER, v6=v == 6, size=32, ident=99) for v in (4, 6)}


def _decode_or_skip(linktype: int, frames: list[bytes], wirelen: int = 0) -> None:
    """Damaged frames give a segment or None, never an exception; a segment's payload lies
    inside a frame (of the fragments: inside their concatenation), its missing bytes within
    the wire length."""
    dec = Decoder()
    for i, data in enumerate(frames):
        seg = dec.decode_raw(linktype, data, wirelen or len(data), i + 1, i)
        if seg is not None:
            assert bytes(seg.payload) in b"".join(frames) and seg.missing <= (wirelen or len(data))


def _header_variants(data: bytes) -> list[bytes]:
    """``data`` with one byte of its headers (everything before the inner TCP payload) changed
    in every way that matters to a length, a type or a flag: each single bit flipped, 0x00, 0xFF
    and the byte +-1; and ``data`` cut at every length."""
    out = [data[:cut] for cut in range(len(data))]
    for pos in range(len(data) - len(PAYLOAD)):
        b = data[pos]
        for v in {b ^ (1 << bit) for bit in range(8)} | {0, 0xFF, (b + 1) & 0xFF, (b - 1) & 0xFF}:
            if v != b:
                out.append(data[:pos] + bytes([v]) + data[pos + 1:])
    return out


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_damaged_tunnel_headers_decode_or_skip(name: str) -> None:
    """Every frame above cut at every length, and with every byte of its headers changed (each
    bit flipped, 0x00, 0xFF, +-1): derived from the headers, all of them, instead of random
    bytes. A cut frame keeps its wire length (the snap length's doing)."""
    linktype, data = FRAMES[name]
    for variant in _header_variants(data):
        _decode_or_skip(linktype, [variant], len(data))


@pytest.mark.parametrize("name", sorted(FRAGMENTED))
def test_damaged_fragments_of_a_tunnel_decode_or_skip(name: str) -> None:
    """The same for each fragment of a fragmented tunnel in turn, the others intact, fed in
    order and last first."""
    frames = FRAGMENTED[name]
    for k, frame in enumerate(frames):
        for variant in _header_variants(frame):
            damaged = frames[:k] + [variant] + frames[k + 1:]
            _decode_or_skip(1, damaged)
            _decode_or_skip(1, damaged[::-1])


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(sorted(FRAMES) + sorted(FRAGMENTED)), cut=st.integers(min_value=0),
       flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 7)), min_size=2, max_size=6))
def test_damaged_tunnels_decode_or_skip(name: str, cut: int, flips: list[tuple[int, int]]) -> None:
    """Several bits flipped at once anywhere (payload too), then cut: the combinations the
    one-change cases above do not reach."""
    linktype, frames = (1, list(FRAGMENTED[name])) if name in FRAGMENTED else (FRAMES[name][0], [FRAMES[name][1]])
    k = cut % len(frames)
    data = bytearray(frames[k])
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    wirelen = len(data) if len(frames) == 1 else 0
    frames[k] = bytes(data[: cut // len(frames) % (len(data) + 1)])
    _decode_or_skip(linktype, frames, wirelen)
