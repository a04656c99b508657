"""Which file a compiled core module is imported from (pcapsmtp/__init__.py, issue 15): its
extension where one was built, its .py when PCAPSMTP_NO_EXTENSIONS is set or the extension is
older than the .py (an edit or a checkout after the build). Fake extensions in a temporary
directory: no build needed."""
from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pcapsmtp
from pcapsmtp import _why_pure

REPO = Path(__file__).resolve().parents[2]
CAPTURE = REPO / "captures" / "client-did-not-request.pcap"
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _spec(tmp_path: Path, py_age: float | None, so_age: float = 100.0) -> importlib.machinery.ModuleSpec:
    """A spec for pcapsmtp.fake's extension, so_age seconds old, beside a .py py_age seconds
    old (None: no .py)."""
    so = tmp_path / f"fake{SUFFIX}"
    so.write_bytes(b"")
    now = so.stat().st_mtime
    os.utime(so, (now - so_age, now - so_age))
    if py_age is not None:
        py = tmp_path / "fake.py"
        py.write_text("")
        os.utime(py, (now - py_age, now - py_age))
    return importlib.machinery.ModuleSpec(
        "pcapsmtp.fake", importlib.machinery.ExtensionFileLoader("pcapsmtp.fake", str(so)),
        origin=str(so))


@pytest.fixture(autouse=True)
def _switch_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PCAPSMTP_NO_EXTENSIONS", raising=False)


def test_a_fresh_extension_is_imported(tmp_path: Path) -> None:
    assert _why_pure(_spec(tmp_path, py_age=200)) == ("", "")
    # written one after the other by an installer, in either order
    assert _why_pure(_spec(tmp_path, py_age=99)) == ("", "")


def test_an_extension_older_than_its_source_is_not(tmp_path: Path) -> None:
    assert _why_pure(_spec(tmp_path, py_age=10)) == (
        str(tmp_path / "fake.py"), "the extension is older than its .py: rebuild it")


@pytest.mark.parametrize("value,pure", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_the_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, pure: bool) -> None:
    monkeypatch.setenv("PCAPSMTP_NO_EXTENSIONS", value)
    got = _why_pure(_spec(tmp_path, py_age=200))
    assert got == ((str(tmp_path / "fake.py"), "PCAPSMTP_NO_EXTENSIONS is set") if pure else ("", ""))


def test_an_extension_without_source_is_all_there_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCAPSMTP_NO_EXTENSIONS", "1")
    assert _why_pure(_spec(tmp_path, py_age=None)) == ("", "")


def test_a_source_module_is_left_alone(tmp_path: Path) -> None:
    py = tmp_path / "fake.py"
    py.write_text("")
    spec = importlib.machinery.ModuleSpec(
        "pcapsmtp.fake", importlib.machinery.SourceFileLoader("pcapsmtp.fake", str(py)), origin=str(py))
    assert _why_pure(spec) == ("", "")


def test_with_the_switch_every_core_module_is_its_py() -> None:
    code = ("import sys, pcapsmtp\n"
            "for n in pcapsmtp.COMPILED_CORE: __import__(n)\n"
            "print(all(sys.modules[n].__file__.endswith('.py') for n in pcapsmtp.COMPILED_CORE),"
            " set(pcapsmtp.compiled_core().values()))\n")
    env = dict(os.environ, PCAPSMTP_NO_EXTENSIONS="1", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=REPO).stdout.strip()
    assert out == "True {'PCAPSMTP_NO_EXTENSIONS is set'}", out


def test_only_core_modules_are_redirected() -> None:
    assert pcapsmtp._CoreFinder.find_spec("pcapsmtp.engine.hotloop_c") is None
    assert pcapsmtp._CoreFinder.find_spec("json") is None
    assert all(n.startswith("pcapsmtp.") for n in pcapsmtp.COMPILED_CORE)


@pytest.mark.parametrize("name,need", sorted((n, x) for n, xs in pcapsmtp._NEEDS.items() for x in xs))
def test_a_module_that_reads_another_extension_type_runs_its_py_beside_that_ones_py(name: str, need: str) -> None:
    """A compiled core module whose .pxd cimports another's extension type reads its C fields
    (the reassembler HalfStream's, reassembler.pxd cimports halfstream.pxd; the session
    LineBuffer's and Line's, session.pxd cimports lines.pxd; the analyzer the TCP events', the
    frame index's and the session's): with that module imported from its .py (as when its
    extension is older than its source), this one is imported from its .py too, and says why.
    (The needed module is made to run its .py as a stale extension would, through
    ``_why_pure``: loading its .py by hand before its package does not work for the session,
    whose package imports it at once.)"""
    assert need in pcapsmtp.COMPILED_CORE and name in pcapsmtp.COMPILED_CORE
    path = "/".join(need.split(".")[1:]) + ".py"
    code = ("import sys, pcapsmtp\n"
            f"n = {need!r}\n"
            "why_pure = pcapsmtp._why_pure\n"
            "def stale(spec):\n"
            f"    return ((pcapsmtp.__path__[0] + '/{path}', 'stale') if spec.name == n\n"
            "            else why_pure(spec))\n"
            "pcapsmtp._why_pure = stale\n"
            f"import {name} as r\n"
            "print(sys.modules[n].__file__.endswith('.py'), "
            f"r.__file__.endswith('.py'), pcapsmtp.compiled_core()[{name!r}])\n"
            "from pcapsmtp.engine.analyzer import analyze_file\n"
            f"print(len(analyze_file({str(CAPTURE)!r}).conversations) > 0)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=REPO).stdout.split("\n")
    built = pcapsmtp.compiled_core()[name] != "not built"
    short = need.removeprefix("pcapsmtp.")
    assert out[0] == (f"True True {short} runs its .py" if built else "True True not built"), out
    assert out[1] == "True", out


def test_the_compiled_file_loop_runs_only_beside_the_compiled_table() -> None:
    """The compiled file loop reads the compiled ``StreamTable``'s C fields (hotloop_c.pyx
    cimports tcp/streams.pxd): with ``tcp.streams`` imported from its .py (as when its extension
    is older than its source), the pure-Python file loop runs, ``--version`` says why, and the
    analysis gives its answer; imported anyway, the compiled loop refuses to load."""
    code = ("import importlib.util, sys, pcapsmtp\n"
            "n = 'pcapsmtp.tcp.streams'\n"
            "spec = importlib.util.spec_from_file_location(n, pcapsmtp.__path__[0] + '/tcp/streams.py')\n"
            "m = importlib.util.module_from_spec(spec); sys.modules[n] = m; spec.loader.exec_module(m)\n"
            "from pcapsmtp.engine import accel\n"
            "print(accel.compiled(), accel.describe().split(';')[0])\n"
            "from pcapsmtp.engine.analyzer import analyze_file\n"
            f"print(len(analyze_file({str(CAPTURE)!r}).conversations) > 0)\n"
            "try:\n"
            "    from pcapsmtp.engine import hotloop_c\n"
            "except ImportError as e:\n"
            "    print('ImportError', 'not the extension built from it' in str(e))\n"
            "else:\n"
            "    print('imported')\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=REPO).stdout.split("\n")
    assert out[0] == "False file loop: pure Python (tcp.streams runs its .py)", out
    assert out[1] == "True", out
    # imported directly, the compiled loop refuses a table of another layout (this one's
    # instances are the same size as the extension's, which Cython's type import accepts)
    if pcapsmtp.compiled_core()["pcapsmtp.tcp.streams"] != "not built":
        assert out[2] == "ImportError True", out
