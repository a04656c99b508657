"""A compiled core module is loaded with ``inspect.getfullargspec`` answered once per callable
(pcapsmtp/__init__.py, ``_ArgspecOnce``): Cython's dataclasses ask it for every field. The
standard library's function is back once the module is loaded, whatever happened."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import pcapsmtp
from pcapsmtp import _ArgspecOnce

REPO = Path(__file__).resolve().parents[2]


def _sample(a: int, *, b: int = 0) -> int:
    return a + b


def _loader() -> _ArgspecOnce:
    return _ArgspecOnce("pcapsmtp.fake", str(REPO / "fake.so"))


def test_answered_once_and_put_back() -> None:
    original = inspect.getfullargspec
    pcapsmtp._ARGSPECS.pop(_sample, None)
    seen = []

    def run() -> str:
        seen.append(inspect.getfullargspec(_sample))
        seen.append(inspect.getfullargspec(_sample))
        return "done"

    assert _loader()._memoised(run) == "done"
    assert inspect.getfullargspec is original
    assert seen[0] is seen[1] and seen[0] == original(_sample)
    assert pcapsmtp._ARGSPECS.pop(_sample) is seen[0]


def test_put_back_after_a_failure() -> None:
    original = inspect.getfullargspec

    def run() -> None:
        raise ImportError("broken extension")

    with pytest.raises(ImportError):
        _loader()._memoised(run)
    assert inspect.getfullargspec is original


def test_the_compiled_modules_load_through_it() -> None:
    """In a fresh interpreter: where the extensions are built, they were loaded by the loader
    and its answers are the standard library's; either way the function is the library's."""
    code = (
        "import inspect, pcapsmtp\n"
        "import pcapsmtp.model, pcapsmtp.smtp.events, pcapsmtp.tcp.events, pcapsmtp.smtp.session\n"
        "built = not any(pcapsmtp.compiled_core().values())\n"
        "loaders = {type(sys.modules[m].__spec__.loader).__name__ for m in pcapsmtp.COMPILED_CORE "
        "if m in sys.modules}\n"
        "assert inspect.getfullargspec.__module__ == 'inspect'\n"
        "assert all(v == inspect.getfullargspec(k) for k, v in pcapsmtp._ARGSPECS.items())\n"
        "print(json.dumps([built, sorted(loaders), len(pcapsmtp._ARGSPECS)]))\n")
    p = subprocess.run([sys.executable, "-c", "import json, sys\n" + code], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    built, loaders, n = json.loads(p.stdout)
    if built:
        assert loaders == ["_ArgspecOnce"]
        assert n >= 1     # dataclasses.field and _DataclassParams, asked 242 times at each start
    else:
        assert n == 0
