"""Installing pcapsmtp: the compiled file loop and the compiled core modules are optional.

A copy of the repository (its tracked files, no built extension) is installed into a fresh
virtual environment (system site packages visible, so no network is needed: setuptools,
Cython and the runtime dependencies come from the machine; no build isolation):

- with the C compiler replaced by /bin/false the install still succeeds, with a warning, and
  ``pcapsmtp --version`` says the pure-Python loop and core run; ``analyze`` works;
- with the compiler, ``pip install -e .`` builds the extensions in place (what tests/run.sh does)
  and ``--version`` says the compiled loop and core run, unless PCAPSMTP_NO_EXTENSIONS=1; a core
  module edited after the build runs from its .py (the extension is older than its source);
- with the compiler, ``pip install .`` (the README's install) installs the extensions beside the
  .py files and runs them (the .py written after the extension does not make it look stale).

The extensions are compiled once for this file (the fixture ``editable``: the editable install's
build), and without optimisation (``CFLAGS=-O0 -g0``, about a seventh of gcc's time at the
interpreter's default ``-O3 -g``): these tests check what an install builds, where it puts it and
that it runs, not how fast; the suite itself runs on tests/run.sh's optimised build. ``pip install
.`` then reuses that compilation the way a second ``pip install .`` in one checkout reuses the
first's: the built extensions sit in the build directory setuptools' ``build_ext`` writes to,
newer than their sources, so it skips them ("up-to-date") and the wheel carries them; all but one
(``_COMPILED_BY_PIP``), which ``pip install .`` compiles from the checkout itself.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from pcapsmtp import COMPILED_CORE

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
    """A venv that sees the machine's packages (setuptools, the runtime dependencies), with its
    own pip, ``wheel`` and Cython 3: what pip needs to build without isolation (the base
    interpreter's packages are the system's, not the test run's venv's, and Debian 12's
    python3-cython is 0.29, older than pyproject.toml's ``Cython>=3.0``)."""
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(where)
    py = where / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "wheel", "Cython>=3.0"], env=_env(), capture_output=True, text=True, timeout=300)
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


_CORES = " ".join(n.removeprefix("pcapsmtp.") for n in COMPILED_CORE)


def _version(py: Path, cwd: Path, **extra: str) -> str:
    return subprocess.run([str(py), "-m", "pcapsmtp", "--version"], cwd=cwd, env=_env(**extra),
                          capture_output=True, text=True, check=True).stdout


# the compiled builds of this file: unoptimised (see the module's docstring)
_QUICK_BUILD = {"CFLAGS": "-O0 -g0"}
#: the extension ``pip install .`` compiles itself in test_install_builds_and_runs_the_extensions
#: (the smallest: the others come from the editable install's build)
_COMPILED_BY_PIP = "pcapsmtp.model"


@pytest.fixture(scope="module")
def editable(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """``pip install -e`` of a copy of the repository into a fresh venv, with the compiler: the
    one build of the extensions (in place, in the copy) that this file's tests share. Returns the
    copy, the venv's python and pip's result."""
    root = tmp_path_factory.mktemp("editable")
    src = _copy_repo(root / "src")
    py = _venv(root / "venv")
    return src, py, _pip(py, "-e", str(src), env=_env(**_QUICK_BUILD), cwd=root)


def _built_extensions(src: Path) -> dict[str, Path]:
    """Each extension built in place in src (the file loop and every core module), by module name."""
    found = {}
    for name in ("pcapsmtp.engine.hotloop_c", *COMPILED_CORE):
        where = src / Path(*name.split("."))
        so = list(where.parent.glob(where.name + ".*.so"))
        assert len(so) == 1, (name, so)
        found[name] = so[0]
    return found


def test_install_without_a_compiler_falls_back(tmp_path: Path) -> None:
    src = _copy_repo(tmp_path / "src")
    py = _venv(tmp_path / "venv")
    r = _pip(py, str(src), env=_env(CC="/bin/false"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    site = subprocess.run([str(py), "-c", "import pcapsmtp, os; print(os.path.dirname("
                           "pcapsmtp.__file__))"], cwd=tmp_path, env=_env(), capture_output=True,
                          text=True, check=True).stdout.strip()
    assert str(tmp_path / "venv") in site and not list(Path(site).rglob("*.so"))
    v = " ".join(_version(py, tmp_path).split())
    assert "file loop: pure Python (the compiled extension is not built)" in v
    assert f"core modules pure Python (not built): {_CORES}" in v, v
    out = subprocess.run([str(py), "-m", "pcapsmtp", "analyze", "--format", "json",
                          str(CAPTURE)], cwd=tmp_path, env=_env(), capture_output=True)
    assert out.returncode in (0, 1) and out.stdout.startswith(b"{"), out.stderr


def test_editable_install_builds_in_place(editable: tuple[Path, Path, subprocess.CompletedProcess],
                                          tmp_path: Path) -> None:
    src, py, r = editable
    assert r.returncode == 0, r.stderr
    _built_extensions(src)
    v = " ".join(_version(py, tmp_path).split())
    assert "file loop: compiled" in v and f"core modules compiled (Cython): {_CORES})" in v, v
    v = " ".join(_version(py, tmp_path, PCAPSMTP_NO_EXTENSIONS="1").split())
    assert "file loop: pure Python (PCAPSMTP_NO_EXTENSIONS is set)" in v, v
    assert f"core modules pure Python (PCAPSMTP_NO_EXTENSIONS is set): {_CORES})" in v, v
    # an edit after the build: that module runs from its .py until it is rebuilt
    edited = src / Path(*COMPILED_CORE[0].split(".")).with_suffix(".py")
    built = next(edited.parent.glob(edited.stem + ".*.so"))
    before = edited.stat()
    later = built.stat().st_mtime + 60          # (the copy kept the checkout's older mtimes)
    os.utime(edited, (later, later))
    try:
        v = " ".join(_version(py, tmp_path).split())
        assert f"pure Python (the extension is older than its .py: rebuild it): {_CORES.split()[0]}" in v, v
        probe = subprocess.run([str(py), "-c", f"import {COMPILED_CORE[0]} as m, {COMPILED_CORE[1]} as n; "
                                "print(m.__file__, n.__file__)"], cwd=tmp_path, env=_env(),
                               capture_output=True, text=True, check=True).stdout.split()
        assert probe[0] == str(edited) and probe[1].endswith(".so"), probe
    finally:                                    # the next test reuses this build
        os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_install_builds_and_runs_the_extensions(editable: tuple[Path, Path, subprocess.CompletedProcess],
                                                tmp_path: Path) -> None:
    built_src, _, built = editable
    assert built.returncode == 0, built.stderr
    # a checkout (the editable one's sources and generated C, their mtimes kept) whose build
    # directory holds the extensions compiled there
    src = tmp_path / "src"
    shutil.copytree(built_src, src, copy_function=shutil.copy2,
                    ignore=shutil.ignore_patterns("*.so", "*.egg-info", "build"))
    py = _venv(tmp_path / "venv")
    build_lib = Path(subprocess.run(
        [str(py), "-c", "from setuptools.dist import Distribution; b = Distribution().get_command_obj('build'); "
         "b.ensure_finalized(); print(b.build_platlib)"],
        cwd=src, env=_env(), capture_output=True, text=True, check=True).stdout.strip())
    # one extension left to compile: pip install . must build it from the checkout (setup.py's
    # optional build turns a failed compile into a warning, so only its .so in site-packages,
    # asserted below, shows that an install from a clean checkout compiles)
    for name, so in _built_extensions(built_src).items():
        if name == _COMPILED_BY_PIP:
            continue
        target = src / build_lib / so.relative_to(built_src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(so, target)                 # written now: newer than its sources
    r = _pip(py, str(src), env=_env(**_QUICK_BUILD), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    site = Path(subprocess.run([str(py), "-c", "import pcapsmtp, os; print(os.path.dirname(pcapsmtp.__file__))"],
                               cwd=tmp_path, env=_env(), capture_output=True, text=True, check=True).stdout.strip())
    assert site.is_relative_to(tmp_path / "venv"), site
    for name in ("pcapsmtp.engine.hotloop_c", *COMPILED_CORE):
        assert list((site.parent / Path(*name.split("."))).parent.glob(name.rpartition(".")[2] + ".*.so")), name
    v = " ".join(_version(py, tmp_path).split())
    assert "file loop: compiled" in v and f"core modules compiled (Cython): {_CORES})" in v, v
    out = subprocess.run([str(py), "-m", "pcapsmtp", "analyze", "--format", "json",
                          str(CAPTURE)], cwd=tmp_path, env=_env(), capture_output=True)
    pure = subprocess.run([str(py), "-m", "pcapsmtp", "analyze", "--format", "json",
                           str(CAPTURE)], cwd=tmp_path, env=_env(PCAPSMTP_NO_EXTENSIONS="1"),
                          capture_output=True)
    assert out.returncode in (0, 1) and out.stdout.startswith(b"{"), out.stderr
    assert out.stdout == pure.stdout
