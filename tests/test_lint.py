"""ruff and mypy, configured in pyproject.toml, run with the tests: a finding fails the suite with
the tool's own output. Both come with the ``test`` extra (``pip install -e '.[test]'``, which
``tests/run.sh`` does), so a missing tool is a failure here, not a skip."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_ruff_check_is_clean() -> None:
    """pyflakes, pycodestyle, bugbear and the sans-I/O banned imports over the whole repository."""
    r = _run("ruff", "check", "--no-cache", ".")
    assert r.returncode == 0, f"ruff check found problems:\n{r.stdout}{r.stderr}"


def test_mypy_is_clean() -> None:
    """``mypy`` with the repository's configuration (pyproject.toml: the pcapsmtp package, typed defs)."""
    r = _run("mypy")
    assert r.returncode == 0, f"mypy found problems:\n{r.stdout}{r.stderr}"
