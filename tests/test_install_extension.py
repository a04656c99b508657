"""Installing pcapsmtp: the compiled file loop is optional.

A copy of the repository (its tracked files, no built extension) is installed into a fresh
virtual environment (system site packages visible, so no network is needed: setuptools,
Cython and the runtime dependencies come from the machine; no build isolation):

- with the C compiler replaced by /bin/false the install still succeeds, with a warning, and
  ``pcapsmtp --version`` says the pure-Python loop runs; ``analyze`` works;
- with the compiler, ``pip install -e .`` builds the extension in place (what tests/run.sh does)
  and ``--version`` says the compiled loop runs, unless PCAPSMTP_NO_EXTENSIONS=1.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CAPTURE = next(iter(sorted((REPO / "captures").glob("*.pcap"))))

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None,
                                 reason="no C compiler")]


def _copy_repo(dst: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in files:
        if not rel or rel.startswith("tests/") or rel.startswith("captures/"):
            continue
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    assert (dst / "pcapsmtp" / "engine" / "hotloop_c.pyx").is_file()
    assert not list((dst / "pcapsmtp").rglob("*.so"))
    return dst


def _venv(where: Path) -> Path:
    """A venv that sees the machine's packages (setuptools, Cython, the runtime dependencies),
    with its own pip and ``wheel`` (what pip needs to build without isolation)."""
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(where)
    py = where / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "wheel"], env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return py


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CC",
                                                             "PCAPSMTP_NO_EXTENSIONS")}
    env.update(extra)
    return env


def _pip(py: Path, *args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "--no-build-isolation", "--no-deps", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _version(py: Path, cwd: Path, **extra: str) -> str:
    return subprocess.run([str(py), "-m", "pcapsmtp", "--version"], cwd=cwd, env=_env(**extra),
                          capture_output=True, text=True, check=True).stdout


def test_install_without_a_compiler_falls_back(tmp_path: Path) -> None:
    src = _copy_repo(tmp_path / "src")
    py = _venv(tmp_path / "venv")
    r = _pip(py, str(src), env=_env(CC="/bin/false"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    site = subprocess.run([str(py), "-c", "import pcapsmtp, os; print(os.path.dirname("
                           "pcapsmtp.__file__))"], cwd=tmp_path, env=_env(), capture_output=True,
                          text=True, check=True).stdout.strip()
    assert str(tmp_path / "venv") in site and not list(Path(site).rglob("*.so"))
    assert "pure Python (the compiled extension is not built)" in _version(py, tmp_path)
    out = subprocess.run([str(py), "-m", "pcapsmtp", "analyze", "--format", "json",
                          str(CAPTURE)], cwd=tmp_path, env=_env(), capture_output=True)
    assert out.returncode in (0, 1) and out.stdout.startswith(b"{"), out.stderr


def test_editable_install_builds_in_place(tmp_path: Path) -> None:
    src = _copy_repo(tmp_path / "src")
    py = _venv(tmp_path / "venv")
    r = _pip(py, "-e", str(src), env=_env(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert list((src / "pcapsmtp" / "engine").glob("hotloop_c*.so")), r.stderr
    assert "file loop: compiled" in _version(py, tmp_path)
    assert "pure Python (PCAPSMTP_NO_EXTENSIONS is set)" in _version(
        py, tmp_path, PCAPSMTP_NO_EXTENSIONS="1")
