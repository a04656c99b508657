"""Shared helpers of the Wireshark-side tests: corpus discovery, a tshark runner and a
reference decoder for plain (unencapsulated) TCP frames."""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pcapsmtp.model import TcpSegment

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus"
CAPTURES = REPO / "captures"

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None,
                                  reason="tshark is not installed (apt-get install tshark)")


def corpus_captures() -> list[Path]:
    """Every capture of the public corpus, then captures/*.pcap* of the repo."""
    found: list[Path] = []
    if CORPUS.is_dir():
        found += sorted(p for p in CORPUS.rglob("*") if p.is_file()
                        and (p.name.endswith((".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz"))))
    if CAPTURES.is_dir():
        found += sorted(p for p in CAPTURES.glob("*.pcap*")
                        if p.is_file() and not p.name.endswith((".json", ".md")))
    return found


def tshark(*args: str, check: bool = True) -> str:
    """Run tshark with ``args`` and return its standard output."""
    proc = subprocess.run(["tshark", "-n", *args], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"tshark {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def plain_segments(path: str) -> Iterator[TcpSegment]:
    """The scapy-free file path when it is there (``pcapfile.iter_segments``), else the
    scapy reference below (which decodes only TCP directly over the link's IP layer, where the
    file path also unwraps tunnels)."""
    try:
        from pcapsmtp.capture.pcapfile import iter_segments
        import pcapsmtp.capture.decode  # noqa: F401  (iter_segments needs it)
    except ImportError:
        return scapy_segments(path)
    return iter_segments(path)


def plain_path_name() -> str:
    try:
        import pcapsmtp.capture.decode  # noqa: F401
        from pcapsmtp.capture.pcapfile import iter_segments  # noqa: F401
    except ImportError:
        return "scapy reference"
    return "pcapfile.iter_segments"


def scapy_segments(path: str) -> Iterator[TcpSegment]:
    """Reference decoder on scapy: link layer, 802.1Q tags, one IPv4/IPv6 header (not a
    fragment), TCP. Anything deeper (tunnels) yields nothing."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import PcapReader

    with PcapReader(path) as reader:  # type: ignore[no-untyped-call]
        for number, pkt in enumerate(reader, 1):
            ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
            if ip is None:
                continue
            if isinstance(ip, IP):
                if ip.flags.MF or ip.frag:
                    continue
                tcp = ip.payload
                if not isinstance(tcp, TCP):
                    continue
                # total length 0: TCP segmentation offload; the frame's length counts
                l4_len = ip.len - ip.ihl * 4 if ip.len else len(bytes(ip.payload))
                src, dst = ip.src, ip.dst
            else:
                tcp = ip.payload
                ext = 0
                while not isinstance(tcp, TCP) and hasattr(tcp, "nh") and tcp.name != "Raw":
                    ext += len(bytes(tcp)) - len(bytes(tcp.payload))
                    tcp = tcp.payload
                if not isinstance(tcp, TCP):
                    continue
                l4_len = ip.plen - ext
                import ipaddress
                src = ipaddress.ip_address(ip.src).compressed
                dst = ipaddress.ip_address(ip.dst).compressed
            raw = bytes(tcp)
            hdr = tcp.dataofs * 4
            tcp_len = max(0, l4_len - hdr)
            payload = raw[hdr:hdr + tcp_len]
            yield TcpSegment(number, int(pkt.time * 1_000_000_000), src, tcp.sport, dst,
                             tcp.dport, tcp.seq, tcp.ack, int(tcp.flags) & 0xFF, payload,
                             tcp_len - len(payload), ip.ttl if isinstance(ip, IP) else ip.hlim)


# --------------------------------------------------------------------------- capture builders
# Hand-made with struct so that byte order, resolution, interfaces and options are exactly
# what a test asks for (scapy's writers choose some of these themselves).

import struct  # noqa: E402


def pcap_bytes(records: list[tuple[int, bytes, int]], *, endian: str = "<", nano: bool = False,
               linktype: int = 1, snaplen: int = 262144) -> bytes:
    """A pcap file; each record is (timestamp in ns, captured bytes, wire length)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for ts_ns, data, wirelen in records:
        sec, frac = divmod(ts_ns, 1_000_000_000)
        if not nano:
            frac //= 1000
        out.append(struct.pack(endian + "IIII", sec, frac, len(data), wirelen) + data)
    return b"".join(out)


def _pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def ng_option(e: str, code: int, value: bytes) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + _pad(value)


def ng_block(e: str, btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack(e + "II", btype, total) + body + struct.pack(e + "I", total)


def ng_shb(e: str, options: bytes = b"", section_length: int = -1) -> bytes:
    return ng_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, section_length)
                    + options)


def ng_idb(e: str, linktype: int = 1, snaplen: int = 0, tsresol: int | None = None,
           options: bytes = b"") -> bytes:
    opts = options
    if tsresol is not None:
        opts += ng_option(e, 9, bytes([tsresol]))
    if opts:
        opts += ng_option(e, 0, b"")
    return ng_block(e, 1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts)


def ng_epb(e: str, iface: int, ticks: int, data: bytes, wirelen: int | None = None,
           options: bytes = b"") -> bytes:
    body = struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                       len(data) if wirelen is None else wirelen) + _pad(data)
    return ng_block(e, 6, body + options)


def ng_spb(e: str, data: bytes, wirelen: int | None = None) -> bytes:
    return ng_block(e, 3, struct.pack(e + "I", len(data) if wirelen is None else wirelen)
                    + _pad(data))
