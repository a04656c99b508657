"""Capture files -> TcpSegments for the reassembler's tshark tests.

Uses ``pcapsmtp.capture.pcapfile.iter_segments`` when it exists, else a small scapy-based
fallback adapter kept here so that the TCP tests run either way.
"""
from __future__ import annotations

import gzip
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from capturecheck import MAX_FOLLOW, take_follow
from pcapsmtp.model import TcpSegment

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus"
GENERATED = REPO / "captures"

_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
           b"\x0a\x0d\x0d\x0a", b"\x1f\x8b")


def capture_files() -> list[Path]:
    """Every capture (by magic number) in the public corpus and in ``captures/``."""
    found: list[Path] = []
    for root in (CORPUS, GENERATED):
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*")):
            if not p.is_file():
                continue
            with p.open("rb") as fh:
                head = fh.read(4)
            if head.startswith(_MAGICS) or head[:2] == b"\x1f\x8b":
                found.append(p)
    return found


#: What the scapy fallback cannot do that the project's reader does (file name -> reason).
FALLBACK_LIMITS = {
    "seed-ipv4-fragments.pcap": "the scapy fallback adapter does not reassemble IP fragments",
}


def using_fallback() -> bool:
    if os.environ.get("PCAPSMTP_TCP_TESTS_SCAPY") == "1":
        return True
    try:
        import pcapsmtp.capture.pcapfile  # noqa: F401
    except ImportError:
        return True
    return False


def scapy_segments(path: Path) -> Iterator[TcpSegment]:
    """Fallback adapter: scapy's readers, the first TCP layer of each frame, frames from 1."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import PcapReader

    fobj = gzip.open(path, "rb") if path.read_bytes()[:2] == b"\x1f\x8b" else path.open("rb")
    with fobj:
        try:
            reader = PcapReader(fobj)  # type: ignore[no-untyped-call]
        except Exception:  # noqa: BLE001 - unreadable file: no segments
            return
        frame = 0
        while True:
            try:
                pkt = reader.read_packet()
            except EOFError:
                break
            except Exception:  # noqa: BLE001 - corrupt record ends the file, as for tshark
                break
            frame += 1
            if pkt is None:
                continue
            tcp = pkt.getlayer(TCP)
            if tcp is None or type(tcp) is not TCP:
                continue
            ip = tcp.underlayer
            while ip is not None and not isinstance(ip, (IP, IPv6)):
                ip = ip.underlayer            # IPv6 extension headers
            raw = bytes(tcp)
            hdr = (tcp.dataofs or 5) * 4
            if isinstance(ip, IP):
                if ip.flags.MF or ip.frag:
                    continue
                plen = (ip.len or 0) - ip.ihl * 4 - hdr
                src, dst = ip.src, ip.dst
            elif isinstance(ip, IPv6):
                ext = len(bytes(ip.payload)) - len(raw)
                plen = (ip.plen or 0) - ext - hdr
                src, dst = ip.src, ip.dst
            else:
                continue
            if plen < 0:
                plen = max(0, len(raw) - hdr)
            payload = raw[hdr:hdr + plen]
            ts_ns = int(round(float(pkt.time) * 1e9))
            yield TcpSegment(frame, ts_ns, src, tcp.sport, dst, tcp.dport, tcp.seq, tcp.ack,
                             int(tcp.flags), payload, plen - len(payload),
                             ip.ttl if isinstance(ip, IP) else ip.hlim)


def segments(path: Path, *, fallback: bool = False) -> Iterator[TcpSegment]:
    """The project's reader when it exists (``fallback=False``), else the scapy adapter
    (forced with PCAPSMTP_TCP_TESTS_SCAPY=1).
    A capture that turns out corrupt ends where the damage starts (as in tshark)."""
    if os.environ.get("PCAPSMTP_TCP_TESTS_SCAPY") == "1":
        fallback = True
    try:
        from pcapsmtp.capture.pcapfile import iter_segments
    except ImportError:
        fallback = True
    if fallback:
        yield from scapy_segments(path)
        return
    from pcapsmtp.errors import CaptureError
    try:
        yield from iter_segments(path)
    except CaptureError:
        return


def tshark_streams(path: Path) -> dict[int, int]:
    """frame.number -> tcp.stream per tshark (first value when a frame has several)."""
    res = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number",
                          "-e", "tcp.stream"], capture_output=True, text=True, timeout=300)
    out: dict[int, int] = {}
    for line in res.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[1]:
            out[int(parts[0])] = int(parts[1].split(",")[0])
    return out


def tshark_follow(path: Path, streams: list[int]) -> dict[int, dict[str, bytes]]:
    """tcp.stream -> {"ip:port" of each node: the bytes it sent}, from ``follow,tcp,raw``
    (up to ``MAX_FOLLOW`` streams: the output of the session's one tshark read of the capture,
    ``capturecheck.take_follow``, else tshark runs of that many each)."""
    result: dict[int, dict[str, bytes]] = {}
    if len(streams) <= MAX_FOLLOW:
        outputs = [take_follow(path, streams)]
    else:
        outputs = []
        for i in range(0, len(streams), MAX_FOLLOW):
            args = ["tshark", "-r", str(path), "-q"]
            for s in streams[i:i + MAX_FOLLOW]:
                args += ["-z", f"follow,tcp,raw,{s}"]
            outputs.append(subprocess.run(args, capture_output=True, text=True, timeout=300).stdout)
    for out in outputs:
        cur: int | None = None
        nodes: list[str] = []
        data: dict[str, bytearray] = {}
        for line in out.splitlines():
            if line.startswith("Filter: tcp.stream eq "):
                cur = int(line.rsplit(" ", 1)[1])
                nodes = []
                data = {}
            elif line.startswith("Node ") and cur is not None:
                ep = line.split(": ", 1)[1]
                nodes.append(ep)
                data[ep] = bytearray()
                result[cur] = data  # type: ignore[assignment]
            elif line.startswith(("=====", "Follow:")):
                continue
            elif cur is not None and len(nodes) == 2 and line.strip():
                node = nodes[1] if line.startswith("\t") else nodes[0]
                try:
                    data[node] += bytes.fromhex(line.strip())
                except ValueError:
                    raise ValueError(f"{path}: {line!r}") from None
    return {k: {n: bytes(b) for n, b in v.items()} for k, v in result.items()}
