"""The compiled path gives exactly what the pure-Python one gives: the same conversations (JSON,
byte for byte), summary, notes and error, on every capture of the repository and of the corpus,
on generated files (mixed traffic with IPv6, pcap and pcapng, small tables), on damaged and
gzip-compressed files, and through the command line.

Two things are compiled (issue 15, setup.py): the file loop (pcapsmtp/engine/hotloop_c.pyx,
whose pure-Python twin is pcapsmtp/engine/hotloop.py), which ``accel.select`` switches in this
process; and the core modules of ``pcapsmtp.COMPILED_CORE``, compiled from their own .py, which
replace it at import and cannot be switched in a process. So ``_same`` compares, in this
process, the two file loops (over the compiled core, where it is built), and where the core is
compiled, everything compiled here with everything pure in another process started with
PCAPSMTP_NO_EXTENSIONS=1 (tests/perf/_pure_outputs.py): one such process for all captures.

Without the extensions built these tests skip, unless PCAPSMTP_REQUIRE_EXTENSIONS=1 (what
tests/run.sh sets, so CI fails when its build did not produce them)."""
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
from _pure_outputs import output
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcapsmtp
from pcapsmtp.engine import accel
from pcapsmtp.engine.analyzer import analyze_file

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus"

try:
    from pcapsmtp.engine import hotloop_c  # type: ignore[attr-defined]  # noqa: F401
    BUILT = True
except ImportError:
    BUILT = False

# the core modules this process runs compiled (all or none: the extensions are built together)
CORE = {name: why for name, why in pcapsmtp.compiled_core().items()}
CORE_COMPILED = not any(CORE.values())

if os.environ.get("PCAPSMTP_REQUIRE_EXTENSIONS", "") not in ("", "0"):
    if not BUILT:
        raise RuntimeError("PCAPSMTP_REQUIRE_EXTENSIONS is set but pcapsmtp.engine.hotloop_c is "
                           "not built (pip install -e . should build it in place)")
    if not CORE_COMPILED and "PCAPSMTP_NO_EXTENSIONS is set" not in CORE.values():
        raise RuntimeError(f"PCAPSMTP_REQUIRE_EXTENSIONS is set but core modules run pure: {CORE}")
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


def _run(path: str, compiled: bool, config: str = "default", stream: bool = False) -> str:
    accel.select(compiled)
    assert accel.compiled() is compiled
    return output(path, config, stream)


def _pure_outputs(jobs: list[tuple[str, str, bool]]) -> list[str]:
    """The jobs' outputs with nothing compiled, from a process with PCAPSMTP_NO_EXTENSIONS=1."""
    env = dict(os.environ, PCAPSMTP_NO_EXTENSIONS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("_pure_outputs.py"))],
                          input=json.dumps(jobs), env=env, capture_output=True, text=True,
                          check=False, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    assert len(got) == len(jobs)
    return got


def _same(path: str, config: str = "default", pure: str | None = None) -> None:
    """Both file loops in this process give the same, streaming or not; and where the core is
    compiled here, the same as ``pure``, everything pure from another process (when given)."""
    here = _run(path, False, config)
    assert _run(path, True, config) == here
    assert _run(path, True, config, stream=True) == _run(path, False, config, stream=True)
    if pure is not None and CORE_COMPILED:
        assert here == pure, "compiled core and pure-Python core differ"


def _same_all(jobs: list[tuple[str, str]]) -> None:
    """``_same`` for each (path, config), the pure side in one other process."""
    pures = _pure_outputs([(p, c, False) for p, c in jobs]) if CORE_COMPILED else [None] * len(jobs)
    for (path, config), pure in zip(jobs, pures):
        _same(path, config, pure)


@pytest.fixture(scope="module")
def pure_captures() -> dict[str, str]:
    """Every capture's output with nothing compiled (one process for all of them)."""
    if not CORE_COMPILED:
        return {}
    return dict(zip(map(str, CAPTURES), _pure_outputs([(str(p), "default", False) for p in CAPTURES])))


def test_there_are_captures() -> None:
    assert len(CAPTURES) >= 100


def test_core_modules_are_compiled_or_all_pure() -> None:
    """The process runs every core module compiled or none, and the pure side of this test
    really is the .py source."""
    assert len(set(CORE.values())) == 1, (
        f"core modules partly compiled: {CORE}; rebuild: python3 setup.py build_ext --inplace")
    for name in pcapsmtp.COMPILED_CORE:
        __import__(name)
        assert sys.modules[name].__file__.endswith(".py") is not CORE_COMPILED, (name, CORE)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: str(p.relative_to(REPO)))
def test_capture(path: Path, pure_captures: dict[str, str]) -> None:
    _same(str(path), pure=pure_captures.get(str(path)))


def test_other_settings() -> None:
    _same_all([(str(path), cfg) for path in CAPTURES[:: max(1, len(CAPTURES) // 30)]
               for cfg in ("ports", "no-content", "tiny-tables")])


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
    jobs = [(str(src), "default"), (str(src), "evicting")]
    ng = tmp_path / "gen.pcapng"
    _to_pcapng(src, ng)
    jobs.append((str(ng), "default"))
    gz = tmp_path / "gen.pcap.gz"
    data = src.read_bytes()
    gz.write_bytes(gzip.compress(data))
    jobs.append((str(gz), "default"))
    for cut in (len(data) // 2 + 5, len(data) - 3):
        p = tmp_path / f"cut{cut}.pcap"
        p.write_bytes(data[:cut])
        jobs.append((str(p), "default"))
    jobs.append((str(_generated(tmp_path, 20000, 3, "--all-smtp")), "default"))
    jobs.append((str(_generated(tmp_path, 20000, 4, "--relay")), "default"))
    _same_all(jobs)


def test_command_line_output_is_byte_identical(tmp_path: Path) -> None:
    """``analyze --format json`` through the command line, once with the extensions and once
    with PCAPSMTP_NO_EXTENSIONS=1; ``--version`` says which loop ran and which core modules
    are compiled."""
    src = _generated(tmp_path, 20000, 9)
    outs = {}
    for flag in ("0", "1"):
        env = dict(os.environ, PCAPSMTP_NO_EXTENSIONS=flag, PYTHONPATH=str(REPO))
        v = subprocess.run([sys.executable, "-m", "pcapsmtp", "--version"], env=env,
                           capture_output=True, text=True, check=True).stdout
        v = " ".join(v.split())
        assert v.startswith("pcapsmtp ") and (
            "file loop: compiled" in v) == (flag == "0") and ("file loop: pure Python" in v) == (flag == "1"), v
        cores = " ".join(n.removeprefix("pcapsmtp.") for n in pcapsmtp.COMPILED_CORE)
        if flag == "1":
            assert f"core modules pure Python (PCAPSMTP_NO_EXTENSIONS is set): {cores}" in v, v
        elif CORE_COMPILED:
            assert f"core modules compiled (Cython): {cores})" in v, v
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
    jobs = []
    for name, blob in cases.items():
        p = tmp_path / f"damaged-{name}.pcap"
        p.write_bytes(blob)
        got = json.loads(_run(str(p), True))
        assert got["error"] and f"{p}" in got["error"], (name, got["error"])
        assert got["conversations"], name
        jobs.append((str(p), "default"))
    _same_all(jobs)


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
