"""``--engine tshark``: TsharkSource (pyshark driving tshark) against the plain file path.

On every capture of the public corpus (and captures/*.pcap* of the repo) both engines must
yield the same TcpSegments for every frame both decode. Frames only one engine decodes are
allowed only where listed in ONLY_TSHARK / ONLY_PLAIN below, with the reason.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pcapsmtp.errors import BackendUnavailable, CaptureError
from pcapsmtp.model import TcpSegment

from ws_support import (CORPUS, corpus_captures, needs_tshark, pcap_bytes, plain_path_name,
                        plain_segments)

pytestmark = [pytest.mark.tshark, needs_tshark]

#: (file name, frame) -> why only tshark decodes it. On the public corpus today: none. The
#: plain reader decodes every link type, VLAN depth, TSO length, fragment and tunnel of the
#: corpus and of captures/ (GRE, ERSPAN, VXLAN, Geneve, IP-in-IP, MPLS, PPPoE, NFLOG: the
#: seed-* captures) the way tshark does.
ONLY_TSHARK: dict[tuple[str, int], str] = {}
#: (file name, frame) -> why only the plain path decodes it. None known.
ONLY_PLAIN: dict[tuple[str, int], str] = {}

_CAPTURES = corpus_captures()


def _collect(it: object) -> tuple[dict[int, TcpSegment], str | None]:
    """Segments by frame, and the CaptureError message if the file is damaged."""
    got: dict[int, TcpSegment] = {}
    try:
        for seg in it:  # type: ignore[attr-defined]
            got[seg.frame] = seg
    except CaptureError as exc:
        return got, str(exc)
    return got, None


def test_corpus_is_there() -> None:
    assert len(_CAPTURES) > 100


@pytest.mark.parametrize("path", _CAPTURES, ids=[p.name for p in _CAPTURES])
def test_same_segments_as_plain_path(path: Path) -> None:
    from pcapsmtp.capture.tshark import TsharkSource

    src = TsharkSource(str(path))
    ts, ts_err = _collect(src.segments())
    plain, plain_err = _collect(plain_segments(str(path)))
    # a damaged file is damaged for both; each yields the frames before the damage
    assert (ts_err is None) == (plain_err is None), (ts_err, plain_err)
    only_ts = {f for f in ts.keys() - plain.keys() if (path.name, f) not in ONLY_TSHARK}
    only_plain = {f for f in plain.keys() - ts.keys() if (path.name, f) not in ONLY_PLAIN}
    assert not only_ts, f"frames only tshark decodes: {sorted(only_ts)[:20]}"
    assert not only_plain, (f"frames only {plain_path_name()} decodes: {sorted(only_plain)[:20]}"
                            f"; tshark notes: {src.notes}")
    diff = [(ts[f], plain[f]) for f in sorted(ts.keys() & plain.keys()) if ts[f] != plain[f]]
    assert not diff, f"{len(diff)} frames differ, first: tshark {diff[0][0]!r} vs plain {diff[0][1]!r}"


def test_damaged_file_reports_capture_error() -> None:
    path = (CORPUS / "OISF__suricata-verify" /
            "tests__smtp-to-comma__10.7.29.101_49898-178.63.41.150_25.pcap")
    assert path.is_file(), f"corpus file missing: {path}"
    from pcapsmtp.capture.tshark import TsharkSource

    got, err = _collect(TsharkSource(str(path)).segments())
    assert err is not None and "tshark stopped reading" in err
    # the line names the damage; tshark's notice about running as root (CI runs as root) is
    # not an error and never stands in for one
    assert "bigger than maximum" in err and "Running as user" not in err, err
    assert max(got) == 18          # TRUTH.md: bad record length after packet 18


def _many_segments_pcap(path: Path, count: int) -> None:
    """A pcap of ``count`` copies of one IPv4/TCP data segment (raw bytes, no scapy: fast)."""
    import struct

    tcp = struct.pack("!HHIIBBHHH", 40000, 25, 1000, 5000, 0x50, 0x18, 65535, 0, 0) + b"x" * 64
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                     bytes([10, 1, 1, 1]), bytes([10, 2, 2, 2])) + tcp
    frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip
    rec = struct.pack("<IIII", 1_700_000_000, 0, len(frame), len(frame)) + frame
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        f.write(rec * count)


def _children() -> set[int]:
    """Child processes of this thread (Linux ``/proc``)."""
    text = Path(f"/proc/self/task/{os.getpid()}/children").read_text()
    return {int(pid) for pid in text.split()}


@pytest.mark.skipif(not Path(f"/proc/self/task/{os.getpid()}/children").exists(),
                    reason="needs /proc/PID/task/TID/children (Linux)")
def test_a_reader_that_stops_early_ends_tshark(tmp_path: Path) -> None:
    from pcapsmtp.capture.tshark import TsharkSource

    path = tmp_path / "many.pcap"
    _many_segments_pcap(path, 200_000)
    before = _children()
    segments = TsharkSource(str(path)).segments()
    first = next(segments)
    assert first.frame == 1 and first.payload == b"x" * 64
    running = _children() - before
    assert running, "tshark should still be reading 200,000 frames"
    segments.close()  # type: ignore[attr-defined]
    assert not (_children() & running), "tshark outlived the reader that stopped"


def test_tshark_runs_in_threads_beside_other_children(tmp_path: Path) -> None:
    """Each run waits for its own tshark: runs in several threads at once, beside other child
    processes started and reaped meanwhile (pyshark's asyncio runner, used before, lost an
    exit status now and then: a spurious 'tshark stopped reading')."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    from pcapsmtp.capture.tshark import TsharkSource

    paths = sorted(p for p in _CAPTURES if p.suffix == ".pcap")[:24]
    assert len(paths) == 24

    def read(p: Path) -> tuple[int, str | None]:
        got, err = _collect(TsharkSource(str(p)).segments())
        return len(got), err

    alone = [read(p) for p in paths[:4]]
    with ThreadPoolExecutor(4) as pool:
        runs = [pool.submit(read, p) for p in paths]
        for _ in range(20):
            subprocess.run(["true"], check=True)
        together = [r.result() for r in runs]
    assert together[:4] == alone
    assert all(err is None for _, err in together), together


# ------------------------------------------------------------------ synthetic tunnels


def _exchange() -> list[object]:
    """A short SMTP exchange as scapy IP/TCP packets (client 10.1.1.1, server 10.2.2.2)."""
    from scapy.layers.inet import IP, TCP

    c, s = ("10.1.1.1", 40000), ("10.2.2.2", 25)
    cs, ss = 1000, 5000
    pkts = []

    def pkt(frm: tuple[str, int], to: tuple[str, int], seq: int, ack: int, flags: str,
            data: bytes = b"") -> None:
        p = IP(src=frm[0], dst=to[0]) / TCP(sport=frm[1], dport=to[1], seq=seq, ack=ack,
                                             flags=flags)
        if data:
            p = p / data
        pkts.append(p)

    pkt(c, s, cs, 0, "S")
    pkt(s, c, ss, cs + 1, "SA")
    pkt(c, s, cs + 1, ss + 1, "A")
    banner = b"220 mx.example.net ESMTP\r\n"
    pkt(s, c, ss + 1, cs + 1, "PA", banner)
    ehlo = b"EHLO client.example.org\r\n"
    pkt(c, s, cs + 1, ss + 1 + len(banner), "PA", ehlo)
    reply = b"250-mx.example.net\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
    pkt(s, c, ss + 1 + len(banner), cs + 1 + len(ehlo), "PA", reply)
    return pkts


def _wrap(kind: str, inner: object) -> object:
    from scapy.contrib.mpls import MPLS
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import GRE, Ether
    from scapy.layers.vxlan import VXLAN

    outer = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if kind == "gre":
        return outer / IP(src="172.16.0.1", dst="172.16.0.2") / GRE() / inner
    if kind == "vxlan":
        return (outer / IP(src="172.16.0.1", dst="172.16.0.2") / UDP(sport=50000, dport=4789)
                / VXLAN(vni=42) / Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02")
                / inner)
    if kind == "ipip":
        return outer / IP(src="172.16.0.1", dst="172.16.0.2") / inner
    if kind == "mpls":
        return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x8847) \
            / MPLS(label=100, s=1, ttl=64) / inner
    if kind == "6in4-gre":
        return outer / IPv6(src="2001:db8::a", dst="2001:db8::b") / GRE() / inner
    raise AssertionError(kind)


def _write(path: Path, pkts: list[object]) -> None:
    from scapy.utils import wrpcap
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i / 10  # type: ignore[attr-defined]
    wrpcap(str(path), pkts)


@pytest.mark.parametrize("kind", ["gre", "vxlan", "ipip", "mpls", "6in4-gre"])
def test_tunnelled_smtp_both_engines(tmp_path: Path, kind: str) -> None:
    """scapy's own tunnel layers (not the generator's): both engines find the inner TCP."""
    from scapy.layers.inet import TCP

    from pcapsmtp.capture.tshark import TsharkSource

    inner = _exchange()
    path = tmp_path / f"{kind}.pcap"
    _write(path, [_wrap(kind, p) for p in inner])
    segs = list(TsharkSource(str(path)).segments())
    assert [s.frame for s in segs] == list(range(1, len(inner) + 1))
    for seg, p in zip(segs, inner):
        tcp = p[TCP]  # type: ignore[index]
        assert (seg.src, seg.sport, seg.dst, seg.dport) == (p.src, tcp.sport, p.dst, tcp.dport)  # type: ignore[attr-defined]
        assert (seg.seq, seg.ack, seg.flags) == (tcp.seq, tcp.ack, int(tcp.flags))
        assert seg.payload == bytes(tcp.payload) and seg.missing == 0
    assert b"".join(s.payload for s in segs if s.sport == 25).startswith(b"220 mx.example.net")
    assert list(plain_segments(str(path))) == segs, f"{plain_path_name()} differs from tshark"


def test_icmp_quoted_tcp_is_skipped_and_noted(tmp_path: Path) -> None:
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.layers.l2 import Ether

    from pcapsmtp.capture.tshark import TsharkSource

    quoted = IP(src="10.1.1.1", dst="10.2.2.2") / TCP(sport=40000, dport=25, seq=7, flags="S")
    pkts = [Ether() / IP(src="10.9.9.9", dst="10.1.1.1") / ICMP(type=3, code=1) / quoted,
            Ether() / IP(src="10.1.1.1", dst="10.2.2.2") / TCP(sport=40001, dport=25, seq=9,
                                                                ack=12345, flags="S")]
    path = tmp_path / "icmp.pcap"
    _write(path, pkts)
    src = TsharkSource(str(path))
    segs = list(src.segments())
    assert [s.frame for s in segs] == [2]
    assert segs[0].ack == 12345           # the raw field, even without the ACK flag
    assert src.skipped == 1 and any("ICMP" in n and "1" in n for n in src.notes)


def test_snaplen_cut_reports_missing_bytes(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    from pcapsmtp.capture.tshark import TsharkSource

    data = b"250-" + b"x" * 300 + b"\r\n"
    pkt = Ether() / IP(src="10.2.2.2", dst="10.1.1.1") / TCP(sport=25, dport=40000, seq=1,
                                                              ack=1, flags="PA") / data
    raw = bytes(pkt)
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap_bytes([(1_700_000_000_000_005_000, raw[:100], len(raw))], snaplen=100))
    (seg,) = list(TsharkSource(str(path)).segments())
    assert seg.payload == raw[54:100] and seg.missing == len(data) - 46
    (ref,) = list(plain_segments(str(path)))
    assert seg == ref


def test_nanosecond_timestamps_exact(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    from pcapsmtp.capture.tshark import TsharkSource

    pkt = bytes(Ether() / IP(src="10.2.2.2", dst="10.1.1.1") / TCP(sport=25, dport=4, flags="A"))
    path = tmp_path / "ns.pcap"
    path.write_bytes(pcap_bytes([(1_999_999_999_123_456_789, pkt, len(pkt))], nano=True,
                                endian=">"))
    (seg,) = list(TsharkSource(str(path)).segments())
    assert seg.ts_ns == 1_999_999_999_123_456_789


def test_missing_tshark_is_backend_unavailable(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    from pcapsmtp.capture.tshark import TsharkSource

    monkeypatch.setenv("PATH", str(tmp_path))     # an empty directory: no tshark on PATH
    assert shutil.which("tshark") is None
    with pytest.raises(BackendUnavailable, match="apt-get install tshark"):
        TsharkSource(os.devnull)


def test_parse_epoch_ns() -> None:
    from pcapsmtp.capture.tshark import parse_epoch_ns

    assert parse_epoch_ns("1636654421.702930000") == 1636654421702930000
    assert parse_epoch_ns("1.5") == 1_500_000_000
    assert parse_epoch_ns("0.000000001") == 1
    assert parse_epoch_ns("1999999999.123456789") == 1999999999123456789


def test_custom_block_counts_as_a_frame(tmp_path: Path) -> None:
    import struct

    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    from pcapsmtp.capture.tshark import TsharkSource
    from ws_support import ng_block, ng_epb, ng_idb, ng_shb

    pkt = bytes(Ether() / IP(src="10.1.1.1", dst="10.2.2.2") / TCP(sport=4, dport=25, flags="S"))
    custom = ng_block("<", 0x40000BAD, struct.pack("<I", 32473) + b"opaque!!")
    path = tmp_path / "custom.pcapng"
    path.write_bytes(ng_shb("<") + ng_idb("<") + ng_epb("<", 0, 1, pkt) + custom
                     + ng_epb("<", 0, 2, pkt))
    assert [s.frame for s in TsharkSource(str(path)).segments()] == [1, 3]
    assert [s.frame for s in plain_segments(str(path))] == [1, 3]


@pytest.mark.parametrize("status", [0, 2])
def test_a_line_cut_short_is_one_capture_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              status: int) -> None:
    """A process in tshark's place that writes one packet, then half a line (as a tshark killed
    while writing would): the packet is yielded, then one CaptureError, never a traceback; with
    an error status, its last error line is the message."""
    import sys

    from pcapsmtp.capture.tshark import TsharkSource

    real = CORPUS.parent.parent / "captures" / "seed-vlan.pcap"
    first = next(iter(_layers_of(real)))
    script = tmp_path / "fake_tshark.py"
    script.write_text(
        "import json, sys\n"
        f"print(json.dumps({{'index': {{}}}}))\nprint(json.dumps({{'layers': {first!r}}}))\n"
        "sys.stdout.write('{\"layers\": {\"frame_nu'); sys.stdout.flush()\n"
        f"sys.stderr.write('tshark: disk on fire\\n'); sys.exit({status})\n")
    monkeypatch.setattr(TsharkSource, "command", lambda self: [sys.executable, str(script)])
    got, err = _collect(TsharkSource(str(real)).segments())
    assert list(got) == [1]
    assert err is not None and err.startswith(str(real))
    assert ("disk on fire" in err) if status else ("not EK JSON" in err and "frame_nu" in err), err


def _layers_of(path: Path) -> list[dict[str, object]]:
    from pcapsmtp.capture.tshark import TsharkSource

    return list(TsharkSource(str(path))._layers())
