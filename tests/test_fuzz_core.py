"""The core fuzz targets (``fuzz/fuzz_core.py``), short and CI-safe.

- every seed extracted from ``captures/`` and every regression input in
  ``fuzz/regressions/core/`` passes ``check_one``;
- Hypothesis drives each target with arbitrary bytes (a few hundred examples each);
- atheris itself runs ``fuzz_core.py`` for 2 000 iterations in a subprocess, seeded.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "fuzz"))

import fuzz_core  # noqa: E402

REGRESSIONS = REPO / "fuzz" / "regressions" / "core"
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("core-seeds")
    assert fuzz_core.write_seeds(out) >= 20
    return out


def test_seeds_from_captures_pass(seeds: Path) -> None:
    files = sorted(seeds.iterdir())
    assert files
    for p in files:
        fuzz_core.check_one(p.read_bytes())


def test_regressions_pass() -> None:
    for p in sorted(REGRESSIONS.glob("*")) if REGRESSIONS.is_dir() else []:
        fuzz_core.check_one(p.read_bytes())


@FAST
@given(st.binary(max_size=2000), st.integers(0, 255))
def test_decode_never_raises(body: bytes, lt: int) -> None:
    fuzz_core.check_decode(body, lt)


@FAST
@given(st.binary(max_size=3000))
def test_reassembler_never_raises(body: bytes) -> None:
    fuzz_core.check_reassemble(body)


@FAST
@given(st.binary(max_size=3000), st.integers(0, 255))
def test_session_never_raises(body: bytes, prefix: int) -> None:
    fuzz_core.check_session(body, prefix)


_SMTPISH = st.lists(st.sampled_from([b"220 mx\r\n", b"250-STARTTLS\r\n", b"250 ok\r\n", b"334 \r\n",
                                     b"EHLO x\r\n", b"AUTH PLAIN\r\n", b"STARTTLS\r\n", b"DATA\r\n",
                                     b"\x16\x03\x01\x00\x05", b"\x1b[31m", b"\r", b"\n", b"\x00",
                                     b".\r\n", b"354 go\r\n", b"MAIL FROM:<a@b>\r\n"]), max_size=40)


@FAST
@given(st.lists(st.tuples(st.integers(0, 255), _SMTPISH), max_size=30))
def test_session_with_smtp_like_chunks(ops: list[tuple[int, list[bytes]]]) -> None:
    body = b"".join(bytes([ctl | 0x04, len(b"".join(ch)[:255])]) + b"".join(ch)[:255] for ctl, ch in ops)
    fuzz_core.check_session(body, 2)
    fuzz_core.check_session(body, 4 | 0x80)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_pipeline_never_raises_and_renders_safely(body: bytes) -> None:
    fuzz_core.check_pipeline(body)


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed")
def test_atheris_short_run(seeds: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run([sys.executable, str(REPO / "fuzz" / "fuzz_core.py"), "-atheris_runs=2000",
                        "-rss_limit_mb=2048", "-timeout=30", str(work), str(seeds)],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Done 2000" in r.stderr or "Done" in r.stderr
