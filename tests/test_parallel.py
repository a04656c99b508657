"""Parallel analysis by conversation (``engine.partition``): the workers' merged output is the
serial run's, byte for byte, on every capture of the repository and the corpus and on a
generated relay-sized mixed capture; each worker really follows only its bucket."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pcapsmtp.engine.analyzer import AnalysisConfig, FileResult, analyze_file
from pcapsmtp.engine.partition import buckets_for, merged, plan, run_task
from pcapsmtp.render.text import render_jsonl
from pcapsmtp.tcp.partition import flow_bucket

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixedcap import make_mixed

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = sorted((ROOT / "captures").glob("*.pcap")) + sorted(
    (ROOT / "tests" / "corpus").rglob("*.pcap*"))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mixed(tmp_path_factory.mktemp("mixed"))


def _render(res: FileResult) -> list[str]:
    return ([render_jsonl(c) for c in res.conversations]
            + [json.dumps(res.summary, default=str, sort_keys=True), repr(res.error),
               repr(res.notes)])


def _partitioned(paths: tuple[str, ...], buckets: int) -> tuple[FileResult, list[FileResult]]:
    tasks = plan([paths], AnalysisConfig(), buckets)
    assert [t.bucket for t in tasks] == list(range(buckets))
    parts = [run_task(t) for t in tasks]
    return next(merged(tasks, parts)), parts


def test_flow_bucket_is_stable_and_symmetric() -> None:
    a = flow_bucket("192.0.2.1", 40000, "198.51.100.2", 25, 7)
    assert a == flow_bucket("198.51.100.2", 25, "192.0.2.1", 40000, 7)
    # the same in another interpreter (Python's str hash is salted per process)
    code = ("from pcapsmtp.tcp.partition import flow_bucket;"
            "print(flow_bucket('192.0.2.1', 40000, '198.51.100.2', 25, 7))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert int(out) == a
    assert {flow_bucket("192.0.2.1", p, "198.51.100.2", 25, 4) for p in range(40000, 40064)} \
        == {0, 1, 2, 3}


def test_buckets_for() -> None:
    assert buckets_for(1, 1) == 1
    assert buckets_for(1, 4) == 4
    assert buckets_for(3, 4) == 2          # every worker busy
    assert buckets_for(8, 4) == 1          # whole files are enough


@pytest.mark.parametrize("buckets", [2, 3])
def test_every_capture_merges_to_the_serial_output(buckets: int) -> None:
    assert len(CAPTURES) > 100
    for path in CAPTURES:
        serial = analyze_file(str(path))
        par, _ = _partitioned((str(path),), buckets)
        assert _render(par) == _render(serial), path


def test_workers_follow_only_their_bucket(mixed: Path) -> None:
    serial = analyze_file(str(mixed))
    par, parts = _partitioned((str(mixed),), 3)
    assert _render(par) == _render(serial)
    sizes = [len(p.conversations) for p in parts]
    assert sum(sizes) == len(serial.conversations) > 50
    assert all(s > 0.15 * sum(sizes) for s in sizes), sizes
    for k, p in enumerate(parts):
        assert not p.posted
        for c in p.conversations:
            assert flow_bucket(c["client"]["ip"], c["client"]["port"], c["server"]["ip"],
                               c["server"]["port"], 3) == k
        # each numbered every conversation and counted every segment
        assert p.summary["reassembly"]["flows_seen"] == serial.summary["reassembly"]["flows_seen"]
        assert p.summary["reassembly"]["segments"] == serial.summary["reassembly"]["segments"]
        assert p.summary["reassembly"]["candidates"] < serial.summary["reassembly"]["candidates"]


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", *args],
                          check=False, capture_output=True, timeout=600)


@pytest.mark.parametrize("fmt", ["json", "table", "csv", "tlsrpt"])
def test_cli_jobs_output_is_byte_identical(mixed: Path, fmt: str) -> None:
    serial = _cli("--format", fmt, "--summary", "--findings", str(mixed))
    par = _cli("--format", fmt, "--summary", "--findings", "-j", "2", str(mixed))
    assert serial.returncode == par.returncode == 1, serial.stderr
    assert par.stdout == serial.stdout
    assert par.stderr == serial.stderr


def test_cli_jobs_on_several_files_and_a_damaged_one(tmp_path: Path) -> None:
    files = [str(p) for p in CAPTURES[:5]]
    damaged = tmp_path / "cut.pcap"
    damaged.write_bytes((ROOT / "captures" / "tls-fallback.pcap").read_bytes()[:-7])
    args = ["--format", "json", "--summary", *files, str(damaged)]
    serial = _cli(*args)
    for j in ("2", "3", "12"):
        par = _cli("-j", j, *args)
        assert par.returncode == serial.returncode == 2
        assert par.stdout == serial.stdout
        assert par.stderr == serial.stderr
