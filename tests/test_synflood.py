"""A SYN flood of one million half-open connections is analysed with bounded memory.

The capture is written by the test (struct-packed Ethernet/IPv4/TCP SYNs to port 25 from
distinct source ports and addresses), then `pcapsmtp analyze` runs as a child process whose
peak RSS is read with os.wait4. Memory must stay flat: the million-SYN run may use only a few
MiB more than a run over a tenth of it, because the stream-numbering table is bounded.
"""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "captures"))
from generate_hostile import ip_checksum as _checksum  # noqa: E402  (the one RFC 1071 sum)


def write_syn_flood(path: Path, count: int) -> None:
    eth = bytes.fromhex("020000000002" "020000000001" "0800")
    dst = bytes([198, 51, 100, 25])
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        rec = struct.Struct("<IIII")
        for i in range(count):
            src = bytes([10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])
            sport = 1024 + (i % 60000)
            tcp = struct.pack("!HHIIBBHHH", sport, 25, (i * 2654435761) & 0xFFFFFFFF, 0,
                              5 << 4, 0x02, 64240, 0, 0)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, i & 0xFFFF, 0, 64, 6, 0, src, dst)
            ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
            frame = eth + ip + tcp
            ts = 1_767_261_600 + i // 100_000
            fh.write(rec.pack(ts, (i % 100_000) * 10, len(frame), len(frame)))
            fh.write(frame)


# A child's ru_maxrss counts the pages it shared with its parent when it was forked: measured
# straight from a big pytest process it would report pytest's size. A tiny Python wrapper
# forks pcapsmtp instead and reports its child's peak.
_WRAPPER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "sys.stderr.write(f'PEAK_RSS_KIB={usage.ru_maxrss}\\n')\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n")


def peak_rss_mib(args: list[str]) -> tuple[int, float, bytes]:
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, sys.executable, "-m", "pcapsmtp", *args],
                          cwd=ROOT, capture_output=True, timeout=600)
    err = proc.stderr
    assert b"Traceback" not in err, err
    kib = int(err.rsplit(b"PEAK_RSS_KIB=", 1)[1].split()[0])
    return proc.returncode, kib / 1024, proc.stdout


@pytest.mark.slow
def test_one_million_half_open_connections_bounded_memory(tmp_path: Path) -> None:
    small, big = tmp_path / "flood-100k.pcap", tmp_path / "flood-1m.pcap"
    write_syn_flood(small, 100_000)
    write_syn_flood(big, 1_000_000)
    rc_small, rss_small, out_small = peak_rss_mib(["analyze", "--format", "json", "--summary",
                                                  str(small)])
    rc_big, rss_big, out_big = peak_rss_mib(["analyze", "--format", "json", "--summary", str(big)])
    assert rc_small == 0 and rc_big == 0
    # Half-open connections carry no SMTP: nothing is reported, every SYN was numbered.
    import json
    summary = json.loads(out_big.splitlines()[-1])["summary"]
    assert summary["conversations"] == 0
    assert summary["reassembly"]["flows_seen"] == 1_000_000
    assert summary["reassembly"]["evicted"] > 0          # the table hit its bound
    assert rss_big <= 96, f"peak RSS {rss_big:.1f} MiB on a million SYNs"
    assert rss_big - rss_small <= 12, (rss_small, rss_big)
