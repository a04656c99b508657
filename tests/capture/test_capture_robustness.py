"""Damaged input never escapes as anything but CaptureError, and never hangs.

- Hypothesis: truncations and bit flips of small valid captures (pcap, pcapng, gzip);
- arbitrary bytes through the fuzz target's ``check_one``;
- the atheris target itself for a few thousand runs.
"""
from __future__ import annotations

import gzip
import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture_synth import epb, idb, pcap_file, shb, spb
from pcapsmtp.capture.decode import Decoder
from pcapsmtp.capture.pcapfile import open_frames
from pcapsmtp.errors import CaptureError

REPO = Path(__file__).resolve().parents[2]
FUZZ = REPO / "fuzz" / "fuzz_readers.py"

_IP_TCP = bytes.fromhex(
    "4500002d0007000040060000c0000201c6336402"      # IPv4 192.0.2.1 -> 198.51.100.2, TCP
    "040100190000" "03e8000007d0501820000000" "0000" "68656c6c6f")   # ports, seq, ack, "hello"
_ETH = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00" + _IP_TCP

SEEDS = {
    "pcap": pcap_file([(_ETH, 1, 2), (_ETH + b"\x00" * 6, 3, 4)]),
    "pcap-be-ns-raw": pcap_file([(_IP_TCP, 1, 2)] * 3, endian=">", nano=True, linktype=101),
    "pcapng": shb() + idb(1, tsresol=9) + idb(101, snaplen=40) + epb(0, 5, _ETH)
              + epb(1, 6, _IP_TCP) + spb(_ETH),
    "pcapng-be": shb(endian=">") + idb(113, endian=">") + epb(0, 5, b"\x00" * 14 + b"\x08\x00"
                                                             + _IP_TCP, endian=">"),
}
SEEDS["gzip"] = gzip.compress(SEEDS["pcapng"])


def _consume(data: bytes) -> int:
    dec = Decoder()
    n = 0
    try:
        for frame in open_frames("-", stdin=io.BytesIO(data)):
            dec.decode(frame)
            n += 1
    except CaptureError as exc:
        assert exc.message and "\n" not in exc.message
        assert exc.offset is None or 0 <= exc.offset <= max(len(data), 1 << 20)
    return n


def test_seeds_are_valid() -> None:
    counts = {k: _consume(v) for k, v in SEEDS.items()}
    assert counts == {"pcap": 2, "pcap-be-ns-raw": 3, "pcapng": 3, "pcapng-be": 1, "gzip": 3}
    dec = Decoder()
    segs = [dec.decode(f) for f in open_frames("-", stdin=io.BytesIO(SEEDS["pcap"]))]
    assert [s.payload for s in segs if s is not None] == [b"hello", b"hello"]


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(SEEDS)), cut=st.integers(min_value=0),
       flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 7)), max_size=6))
def test_truncation_and_bit_flips_only_raise_capture_error(name: str, cut: int,
                                                           flips: list[tuple[int, int]]) -> None:
    data = bytearray(SEEDS[name])
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    data = data[: cut % (len(data) + 1)]
    _consume(bytes(data))


@settings(max_examples=300, deadline=2000)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_through_the_fuzz_target(data: bytes) -> None:
    spec = importlib.util.spec_from_file_location("fuzz_readers", FUZZ)
    assert spec is not None and spec.loader is not None
    mod = sys.modules.get("fuzz_readers")
    if mod is None:
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.modules["fuzz_readers"] = mod
    mod.check_one(data)
    for prefix in SEEDS.values():
        mod.check_one(prefix[:40] + data)


def test_atheris_target_runs(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, data in SEEDS.items():
        (seeds / name).write_bytes(data)
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, str(FUZZ), "-atheris_runs=3000", str(work),
                           str(seeds)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 3000 in" in proc.stderr
