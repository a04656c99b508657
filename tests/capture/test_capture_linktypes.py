"""pcapsmtp.capture.decode: the less common link types.

PPP (9, 204 with a direction byte; 50 PPP in HDLC framing, which also carries Cisco HDLC), Cisco
HDLC (104), OpenBSD enc (109), Solaris ipnet (226), Apple PKTAP (258) and Endace ERF (197). Each
frame carries one TCP segment over IPv4 or IPv6; the decoder and tshark must find the same
segment (frame, addresses, ports, raw sequence number, length). The seed-* captures of these
link types go through the whole analysis in tests/test_captures_expected.py.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from capture_synth import pcap_file
from pcapsmtp.capture.decode import Decoder
from pcapsmtp.capture.pcapfile import iter_segments
from pcapsmtp.model import TcpSegment

PAYLOAD = b"EHLO client.example.org\r\n"
TCP4 = TCP(sport=40312, dport=25, flags="PA", seq=1000, ack=2000) / Raw(PAYLOAD)
V4 = bytes(IP(src="192.0.2.10", dst="198.51.100.25") / TCP4)
V6 = bytes(IPv6(src="2001:db8::10", dst="2001:db8::25") / TCP4)
ETH4 = bytes(Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:19", type=0x0800)) + V4
ETH6 = bytes(Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:19", type=0x86DD)) + V6


def _pktap(dlt: int, inner: bytes) -> bytes:
    return struct.pack("<III", 108, 1, dlt) + b"en0".ljust(96, b"\0") + inner


def _erf(rtype: int, inner: bytes, extensions: int = 0) -> bytes:
    ext = b"".join(bytes([0x80 if k < extensions - 1 else 0x00]) + bytes(7) for k in range(extensions))
    pad = b"\0\0" if rtype in (2, 10, 16, 20) else b""
    t = rtype | (0x80 if extensions else 0)
    return bytes(8) + struct.pack("!BBHHH", t, 4, 16 + len(ext) + len(pad) + len(inner), 0,
                                  len(inner)) + ext + pad + inner


#: name -> (link type, frame, IP version inside)
FRAMES: dict[str, tuple[int, bytes, int]] = {
    "ppp": (9, b"\xff\x03\x00\x21" + V4, 4),
    "ppp-ipv6": (9, b"\xff\x03\x00\x57" + V6, 6),
    "ppp-no-address-control": (9, b"\x00\x21" + V4, 4),
    "ppp-compressed-protocol": (9, b"\x21" + V4, 4),
    "ppp-dir-sent": (204, b"\x01\xff\x03\x00\x21" + V4, 4),
    "ppp-dir-received-ipv6": (204, b"\x00\xff\x03\x00\x57" + V6, 6),
    "ppp-hdlc": (50, b"\xff\x03\x00\x21" + V4, 4),
    "ppp-hdlc-cisco": (50, b"\x0f\x00\x08\x00" + V4, 4),
    "chdlc": (104, b"\x0f\x00\x08\x00" + V4, 4),
    "chdlc-multicast-ipv6": (104, b"\x8f\x00\x86\xdd" + V6, 6),
    "enc": (109, struct.pack("<III", 2, 0x1000, 0x400) + V4, 4),
    "enc-ipv6": (109, struct.pack("<III", 24, 0x1000, 0x400) + V6, 6),
    "ipnet": (226, struct.pack("!BBHIIIII", 1, 2, 0, len(V4), 2, 0, 0, 0) + V4, 4),
    "ipnet-ipv6": (226, struct.pack("!BBHIIIII", 1, 26, 0, len(V6), 2, 0, 0, 0) + V6, 6),
    "pktap-ethernet": (258, _pktap(1, ETH4), 4),
    "pktap-ethernet-ipv6": (258, _pktap(1, ETH6), 6),
    "pktap-null": (258, _pktap(0, struct.pack("<I", 2) + V4), 4),
    "pktap-raw": (258, _pktap(12, V6), 6),
    "erf-ethernet": (197, _erf(2, ETH4), 4),
    "erf-ethernet-extensions": (197, _erf(2, ETH6, extensions=2), 6),
    "erf-ipv4": (197, _erf(22, V4), 4),
}


def _decode(linktype: int, data: bytes) -> tuple[TcpSegment | None, Decoder]:
    dec = Decoder()
    return dec.decode_raw(linktype, data, len(data), 1, 0), dec


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_inner_tcp_is_decoded(name: str) -> None:
    linktype, frame, v = FRAMES[name]
    seg, dec = _decode(linktype, frame)
    assert seg is not None, dec.notes
    want = ("192.0.2.10", "198.51.100.25") if v == 4 else ("2001:db8::10", "2001:db8::25")
    assert (seg.src, seg.dst, seg.sport, seg.dport, seg.seq, seg.ack) == (*want, 40312, 25, 1000, 2000)
    assert seg.payload == PAYLOAD and seg.missing == 0
    assert dec.notes == [] and dec.undecodable == 0


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_cut_inside_the_link_header_is_one_note(name: str) -> None:
    linktype, frame, _ = FRAMES[name]
    head = len(frame) - (len(V4) if FRAMES[name][2] == 4 else len(V6))
    for cut in range(head):
        seg, dec = _decode(linktype, frame[:cut])
        assert seg is None
        assert dec.undecodable <= 1 and len(dec.notes) <= 1


@pytest.mark.parametrize("linktype, frame", [
    (9, b"\xff\x03\xc0\x21\x01\x01\x00\x04"),          # LCP configure-request
    (104, b"\x8f\x00\x80\x35" + bytes(28)),              # Cisco SLARP
    (226, struct.pack("!BBHIIIII", 1, 99, 0, 0, 0, 0, 0, 0) + V4),   # unknown family
    (258, _pktap(105, bytes(40))),                       # 802.11 inside PKTAP
    (197, _erf(1, bytes(40))),                           # ERF HDLC/POS record
])
def test_not_ip_is_skipped_silently(linktype: int, frame: bytes) -> None:
    seg, dec = _decode(linktype, frame)
    assert seg is None and dec.notes == [] and dec.undecodable == 0


@settings(max_examples=300, deadline=None)
@given(linktype=st.sampled_from(sorted({lt for lt, _, _ in FRAMES.values()})),
       data=st.binary(max_size=200))
def test_any_bytes_decode_or_skip(linktype: int, data: bytes) -> None:
    dec = Decoder()
    seg = dec.decode_raw(linktype, data, len(data) + 10, 1, 0)
    assert seg is None or isinstance(seg, TcpSegment)


def _tshark_rows(path: Path) -> list[list[str]]:
    proc = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-o", "tcp.desegment_tcp_streams:FALSE", "-T", "fields",
         "-E", "occurrence=l", "-e", "frame.number", "-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst",
         "-e", "ipv6.dst", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.seq_raw", "-e", "tcp.len"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [[c for c in ln.split("\t") if c] for ln in proc.stdout.splitlines()]


@pytest.mark.tshark
@pytest.mark.parametrize("linktype", sorted({lt for lt, _, _ in FRAMES.values()}))
def test_tshark_sees_the_same_tcp(tmp_path: Path, linktype: int) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    names = sorted(n for n, (lt, _, _) in FRAMES.items() if lt == linktype)
    path = tmp_path / f"link{linktype}.pcap"
    path.write_bytes(pcap_file([(FRAMES[n][1], 1_700_000_000 + i, 0) for i, n in enumerate(names)],
                               linktype=linktype))
    segs = list(iter_segments(str(path)))
    assert len(segs) == len(names)
    assert _tshark_rows(path) == [[str(s.frame), s.src, s.dst, str(s.sport), str(s.dport), str(s.seq),
                                   str(len(s.payload))] for s in segs], names
