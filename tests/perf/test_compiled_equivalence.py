"""The compiled file loop (pcapsmtp/engine/hotloop_c.pyx) gives exactly what its pure-Python twin
(pcapsmtp/engine/hotloop.py) gives: the same conversations (JSON, byte for byte), summary,
notes and error, on every capture of the repository and of the corpus, on generated files
(mixed traffic with IPv6, pcap and pcapng, small tables), on damaged and gzip-compressed
files, and through the command line.

Without the extension built these tests skip, unless PCAPSMTP_REQUIRE_EXTENSIONS=1 (what
tests/run.sh sets, so CI fails when its build did not produce the extension)."""
from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcapsmtp.engine import accel
from pcapsmtp.engine.analyzer import AnalysisConfig, FileResult, analyze_file

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus"

try:
    from pcapsmtp.engine import hotloop_c  # type: ignore[attr-defined]  # noqa: F401
    BUILT = True
except ImportError:
    BUILT = False

if not BUILT and os.environ.get("PCAPSMTP_REQUIRE_EXTENSIONS", "") not in ("", "0"):
    raise RuntimeError("PCAPSMTP_REQUIRE_EXTENSIONS is set but pcapsmtp.engine.hotloop_c is not "
                       "built (pip install -e . should build it in place)")
pytestmark = pytest.mark.skipif(not BUILT, reason="compiled file loop not built")


def _captures(root: Path) -> list[Path]:
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in (".pcap", ".pcapng", ".gz", ".cap"):
            with p.open("rb") as f:
                head = f.read(4)
            if head[:2] == b"\x1f\x8b" or head in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4",
                                                   b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
                                                   b"\x0a\x0d\x0d\x0a"):
                out.append(p)
    return out


CAPTURES = _captures(REPO / "captures") + (_captures(CORPUS) if CORPUS.is_dir() else [])


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    accel.select(None)


def _dump(res: FileResult) -> str:
    return json.dumps({"conversations": res.conversations, "summary": res.summary,
                       "notes": res.notes, "error": None if res.error is None else str(res.error)},
                      default=repr)


def _run(path: str, compiled: bool, config: AnalysisConfig | None = None,
         stream: bool = False) -> str:
    accel.select(compiled)
    assert accel.compiled() is compiled
    if not stream:
        return _dump(analyze_file(path, config))
    got: list[dict] = []
    res = analyze_file(path, config, emit=got.append)
    res.conversations = got
    return _dump(res)


def _same(path: str, config: AnalysisConfig | None = None) -> None:
    pure = _run(path, False, config)
    assert _run(path, True, config) == pure
    assert _run(path, True, config, stream=True) == _run(path, False, config, stream=True)


def test_there_are_captures() -> None:
    assert len(CAPTURES) >= 100


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: str(p.relative_to(REPO)))
def test_capture(path: Path) -> None:
    _same(str(path))


def test_other_settings() -> None:
    configs = [AnalysisConfig(ports=frozenset({80, 443})), AnalysisConfig(detect_by_content=False),
               AnalysisConfig(max_tracked=3, max_flows=2)]
    for path in CAPTURES[:: max(1, len(CAPTURES) // 30)]:
        for cfg in configs:
            _same(str(path), cfg)


def _generated(tmp_path: Path, packets: int, seed: int, *extra: str) -> Path:
    out = tmp_path / f"gen-{packets}-{seed}.pcap"
    subprocess.run([sys.executable, str(REPO / "bench" / "mixgen.py"), "--packets", str(packets),
                    "--seed", str(seed), "-o", str(out), *extra], check=True, capture_output=True)
    return out


def _to_pcapng(src: Path, dst: Path) -> None:
    from pcapsmtp.capture.pcapfile import iter_records
    from pcapsmtp.capture.pcapng import PcapngWriter
    w = PcapngWriter(str(dst), 1, 262144, "eth0")
    for _n, ts, _lt, data, wirelen, _off, _if in iter_records(str(src)):
        w.write(ts, data, wirelen)
    w.close()


def test_generated_files(tmp_path: Path) -> None:
    """Mixed traffic (IPv4 and IPv6, reordering, duplicates, split replies), as pcap, pcapng,
    gzip and cut short; and with tables small enough to evict."""
    src = _generated(tmp_path, 30000, 7)
    _same(str(src))
    _same(str(src), AnalysisConfig(max_tracked=500, max_flows=20, idle_timeout_ns=50_000_000))
    ng = tmp_path / "gen.pcapng"
    _to_pcapng(src, ng)
    _same(str(ng))
    gz = tmp_path / "gen.pcap.gz"
    data = src.read_bytes()
    gz.write_bytes(gzip.compress(data))
    _same(str(gz))
    for cut in (len(data) // 2 + 5, len(data) - 3):
        p = tmp_path / f"cut{cut}.pcap"
        p.write_bytes(data[:cut])
        _same(str(p))
    allsmtp = _generated(tmp_path, 20000, 3, "--all-smtp")
    _same(str(allsmtp))


def test_command_line_output_is_byte_identical(tmp_path: Path) -> None:
    """``analyze --format json`` through the command line, once with the extension and once
    with PCAPSMTP_NO_EXTENSIONS=1; ``--version`` says which loop ran."""
    src = _generated(tmp_path, 20000, 9)
    outs = {}
    for flag in ("0", "1"):
        env = dict(os.environ, PCAPSMTP_NO_EXTENSIONS=flag, PYTHONPATH=str(REPO))
        v = subprocess.run([sys.executable, "-m", "pcapsmtp", "--version"], env=env,
                           capture_output=True, text=True, check=True).stdout
        assert ("compiled" in v) == (flag == "0") and ("pure Python" in v) == (flag == "1"), v
        r = subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", "--format", "json",
                            str(src)], env=env, capture_output=True)
        assert r.returncode in (0, 1), r.stderr
        outs[flag] = r.stdout
    assert outs["0"] == outs["1"] and outs["0"].count(b"\n") > 10


def _rewrite_pcap(data: bytes, endian: str, nano: bool) -> bytes:
    """The same pcap file in another byte order and/or with nanosecond timestamps."""
    src_endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    src_nano = data[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    fields = struct.unpack_from(src_endian + "IHHiIII", data, 0)
    out = [struct.pack(endian + "IHHiIII", magic, *fields[1:])]
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, wirelen = struct.unpack_from(src_endian + "IIII", data, pos)
        if nano and not src_nano:
            frac *= 1000
        elif src_nano and not nano:
            frac //= 1000
        out.append(struct.pack(endian + "IIII", sec, frac, caplen, wirelen))
        out.append(data[pos + 16:pos + 16 + caplen])
        pos += 16 + caplen
    return b"".join(out)


def test_pcap_byte_orders_and_timestamp_units(tmp_path: Path) -> None:
    """The compiled loop reads the record headers of a pcap file itself: big- and
    little-endian files, microsecond and nanosecond magic give what the twin gives, and
    the same conversations as the original file."""
    src = _generated(tmp_path, 8000, 11)
    data = src.read_bytes()
    def convs(path: Path, compiled: bool) -> list[dict]:
        out = json.loads(_run(str(path), compiled))["conversations"]
        for c in out:
            c.pop("file", None)
        return out

    base = convs(src, False)
    assert len(base) > 5
    for endian in ("<", ">"):
        for nano in (False, True):
            p = tmp_path / f"conv-{endian == '>'}-{nano}.pcap"
            p.write_bytes(_rewrite_pcap(data, endian, nano))
            _same(str(p))
            assert convs(p, True) == base


def test_damaged_record_headers(tmp_path: Path) -> None:
    """A record header claiming more than the maximum captured length, a file cut inside a
    record header and inside a record body: the same conversations before the damage and
    the same error (file offset and message) from both loops."""
    src = _generated(tmp_path, 6000, 12)
    data = bytearray(src.read_bytes())
    # the record headers' offsets
    offs = []
    pos = 24
    while pos + 16 <= len(data):
        offs.append(pos)
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    mid = offs[len(offs) // 2]
    bad = bytearray(data)
    struct.pack_into("<I", bad, mid + 8, 262145)
    cases = {"caplen": bytes(bad), "in-header": bytes(data[:mid + 7]),
             "in-body": bytes(data[:mid + 16 + 20])}
    for name, blob in cases.items():
        p = tmp_path / f"damaged-{name}.pcap"
        p.write_bytes(blob)
        got = json.loads(_run(str(p), True))
        assert got["error"] and f"{p}" in got["error"], (name, got["error"])
        assert got["conversations"], name
        _same(str(p))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=1 << 20),
       flips=st.lists(st.tuples(st.integers(min_value=0, max_value=1 << 20),
                                st.integers(min_value=0, max_value=255)), max_size=6),
       seed=st.sampled_from(["captures/seed-1byte-segments.pcap",
                             "captures/implicit-tls-mismatch.pcap",
                             "captures/limit-reached.pcap"]))
def test_damaged_files_give_the_same_on_both_loops(cut: int, flips: list[tuple[int, int]],
                                                   seed: str) -> None:
    """Bytes flipped anywhere (record headers, frames) and the file cut anywhere: both loops
    read the same records, give the same conversations and stop with the same error."""
    data = bytearray((REPO / seed).read_bytes())
    for at, value in flips:
        if 24 <= at % len(data):            # (the file header stays a pcap header)
            data[at % len(data)] = value
    blob = bytes(data[:24 + cut % max(1, len(data) - 23)])
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "damaged.pcap")
        with open(p, "wb") as f:
            f.write(blob)
        _same(p)


def test_progress_sees_the_same_frames_and_offsets(tmp_path: Path) -> None:
    """``progress(frame, offset)`` every 65,536 records: the compiled pcap walker calls it at
    the same records, with the same file offsets, as the twin's record views."""
    src = _generated(tmp_path, 70000, 13)
    calls: dict[bool, list[tuple[int, int]]] = {True: [], False: []}
    for compiled in (True, False):
        accel.select(compiled)
        analyze_file(str(src), progress=lambda n, o, c=compiled: calls[c].append((n, o)))
    assert calls[True] == calls[False] and calls[True][0][0] == 65536
