"""Resets forged by a box on the path: the IPv4 TTL / IPv6 hop limit of a reset against the other
segments of its side.

First the carriage: every adapter hands the reassembler the TTL (or hop limit) of the innermost IP
header that carried the segment, as tshark shows it (``ip.ttl``, ``ipv6.hlim``): the general decoder,
both file loops (pure Python and compiled) and the tshark engine.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from pcapsmtp.capture.decode import Decoder
from pcapsmtp.capture.pcapfile import iter_segments
from pcapsmtp.engine import accel
from pcapsmtp.engine.analyzer import Analyzer
from pcapsmtp.engine.fileloop import FusedLoop
from pcapsmtp.model import TcpSegment

ROOT = Path(__file__).resolve().parents[1]

try:
    from pcapsmtp.engine import hotloop_c  # type: ignore[attr-defined]  # noqa: F401
    COMPILED = True
except ImportError:
    COMPILED = False

_C4, _S4 = "192.0.2.10", "198.51.100.25"
_C6, _S6 = "2001:db8:0:1::10", "2001:db8:0:2::25"
_ETH = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:19")


def _tcp(seq: int, payload: bytes = b"", flags: str = "PA", sport: int = 25, dport: int = 40312) -> Any:
    return TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=1000) / Raw(payload)


def _ttl_capture(path: Path) -> dict[int, int]:
    """A capture whose TCP segments reach the reassembler by every way an adapter has (the file
    loops' fixed offsets, IPv4 and IPv6; the general decoder for a VLAN tag, IP options, a GRE
    tunnel, IP fragments), each with its own TTL. Returns frame -> the TTL written."""
    pkts: list[Any] = []
    want: dict[int, int] = {}

    def add(pkt: Any, ttl: int | None) -> None:
        pkts.append(pkt)
        if ttl is not None:
            want[len(pkts)] = ttl

    add(_ETH / IP(src=_S4, dst=_C4, ttl=52) / _tcp(100, b"220 mx ESMTP\r\n"), 52)
    add(_ETH / IP(src=_C4, dst=_S4, ttl=64) / _tcp(1000, b"EHLO c\r\n", sport=40312, dport=25), 64)
    add(_ETH / IP(src=_S4, dst=_C4, ttl=250) / _tcp(114, flags="RA"), 250)
    add(_ETH / IPv6(src=_S6, dst=_C6, hlim=61) / _tcp(100, b"220 mx6 ESMTP\r\n"), 61)
    add(_ETH / IPv6(src=_S6, dst=_C6, hlim=255) / _tcp(115, flags="RA"), 255)
    add(_ETH / Dot1Q(vlan=7) / IP(src=_S4, dst=_C4, ttl=119) / _tcp(200, b"220 v ESMTP\r\n",
                                                                     dport=40313), 119)
    add(_ETH / IP(src=_S4, dst=_C4, ttl=99, options=b"\x01\x01\x01\x00") / _tcp(300, b"220 o\r\n",
                                                                                 dport=40314), 99)
    # a GRE tunnel between two routers: the tunnelled packet's TTL, not the outer one's
    add(_ETH / IP(src="172.16.0.1", dst="172.16.0.2", ttl=63) / GRE()
        / IP(src=_S4, dst=_C4, ttl=128) / _tcp(400, b"220 g ESMTP\r\n", dport=40315), 128)
    # a segment in IPv4 fragments: the frame that completes it carries the segment
    frags = fragment(IP(src=_S4, dst=_C4, ttl=77, id=4242) / _tcp(500, b"220 " + b"f" * 60 + b"\r\n",
                                                                   dport=40316), fragsize=24)
    assert len(frags) > 2
    for k, fr in enumerate(frags):
        add(_ETH / fr, 77 if k == len(frags) - 1 else None)
    # a TTL of 0 is carried as 0: "not known"
    add(_ETH / IP(src=_S4, dst=_C4, ttl=0) / _tcp(600, b"220 z\r\n", dport=40317), 0)
    for k, p in enumerate(pkts):
        p.time = 1767261600 + k / 100
    wrpcap(str(path), pkts)
    return want


class _Recording(Analyzer):
    """A real analyzer that also notes the TTL of every segment a file loop feeds it."""

    def __init__(self) -> None:
        super().__init__()
        self.ttls: dict[int, int] = {}

    def feed(self, seg: TcpSegment) -> list[dict[str, Any]]:
        self.ttls[seg.frame] = seg.ttl
        return super().feed(seg)


def _loop_ttls(path: Path, compiled: bool) -> dict[int, int]:
    accel.select(compiled)
    try:
        an = _Recording()
        FusedLoop(an, Decoder(), []).run(str(path))
        return an.ttls
    finally:
        accel.select(None)


def test_the_decoder_carries_the_innermost_ttl(tmp_path: Path) -> None:
    path = tmp_path / "ttl.pcap"
    want = _ttl_capture(path)
    got = {seg.frame: seg.ttl for seg in iter_segments(str(path))}
    assert got == want


@pytest.mark.parametrize("compiled", [False, True], ids=["pure", "compiled"])
def test_both_file_loops_carry_it(tmp_path: Path, compiled: bool) -> None:
    if compiled and not COMPILED:
        pytest.skip("compiled file loop not built")
    path = tmp_path / "ttl.pcap"
    want = _ttl_capture(path)
    assert _loop_ttls(path, compiled) == want


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_shows_the_same_and_its_engine_carries_it(tmp_path: Path) -> None:
    from pcapsmtp.capture.tshark import TsharkSource
    path = tmp_path / "ttl.pcap"
    want = _ttl_capture(path)
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "tcp", "-T", "fields", "-e", "frame.number",
                          "-e", "ip.ttl", "-e", "ipv6.hlim"], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    shown = {}
    for line in out.splitlines():
        number, ttl4, hlim = (line.split("\t") + ["", ""])[:3]
        shown[int(number)] = int((hlim or ttl4).split(",")[-1])      # the innermost header's
    assert shown == want
    assert {seg.frame: seg.ttl for seg in TsharkSource(str(path)).segments()} == want


def test_a_segment_built_without_it_has_none() -> None:
    seg = TcpSegment(1, 0, _C4, 40312, _S4, 25, 1, 0, 0x02, b"")
    assert seg.ttl == 0
    assert seg != TcpSegment(1, 0, _C4, 40312, _S4, 25, 1, 0, 0x02, b"", 0, 64)
