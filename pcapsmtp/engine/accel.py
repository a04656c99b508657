"""Which file loop runs: the compiled one (``engine/hotloop_c.pyx``, built by ``pip install``
when a C compiler is there) or its pure-Python twin (``engine/hotloop.py``).

The compiled loop is optional: an install without a compiler, or a build that failed, has
only the pure-Python one, and gives the same results, more slowly. ``PCAPSMTP_NO_EXTENSIONS``
set to anything but "" or "0" forces the pure-Python loop (as aiohttp, yarl and multidict
do). ``pcapsmtp --version`` says which one is active (``describe``). The compiled loop reads the
compiled ``tcp.streams`` table's C fields (``StreamTable``, tcp/streams.pxd): where that module
runs its ``.py`` (its extension older than its source, or not built) the pure-Python loop runs.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
from collections.abc import Callable
from typing import Any

from pcapsmtp import compiled_core

__all__ = ["hot_loop", "compiled", "describe", "select"]

_chosen: tuple[Callable[..., None], str] | None = None


def _disabled() -> bool:
    return os.environ.get("PCAPSMTP_NO_EXTENSIONS", "") not in ("", "0")


def _table_pure() -> str:
    """Why the compiled loop cannot run beside this process's ``tcp.streams`` ("" if it can):
    it reads the compiled table's fields."""
    from pcapsmtp.tcp import streams
    loader = getattr(streams.__spec__, "loader", None)
    return "" if isinstance(loader, importlib.machinery.ExtensionFileLoader) else \
        "tcp.streams runs its .py"


def _choose() -> tuple[Callable[..., None], str]:
    global _chosen
    if _chosen is None:
        from pcapsmtp.engine import hotloop
        why = "PCAPSMTP_NO_EXTENSIONS is set"
        fn: Any = hotloop.loop
        if not _disabled():
            why = (_table_pure() if importlib.util.find_spec("pcapsmtp.engine.hotloop_c")
                   else "the compiled extension is not built")
        if not why:
            try:
                from pcapsmtp.engine import hotloop_c  # type: ignore[attr-defined]
            except ImportError as exc:
                why = f"the compiled extension cannot run here: {exc}"
            else:
                fn = hotloop_c.loop
                why = ""
        _chosen = (fn, why)
    return _chosen


def hot_loop() -> Callable[..., None]:
    """The loop function to run: ``loop(file_loop, views, progress)``."""
    return _choose()[0]


def compiled() -> bool:
    """Is the compiled loop active?"""
    return not _choose()[1]


def describe() -> str:
    """One line for ``--version``: the file loop, then the compiled core modules
    (``pcapsmtp.COMPILED_CORE``)."""
    why = _choose()[1]
    loop = "file loop: compiled (Cython)" if not why else f"file loop: pure Python ({why})"
    core = compiled_core()
    done = [name.removeprefix("pcapsmtp.") for name, why in core.items() if not why]
    pure: dict[str, list[str]] = {}
    for name, why in core.items():
        if why:
            pure.setdefault(why, []).append(name.removeprefix("pcapsmtp."))
    parts = [f"compiled (Cython): {' '.join(done)}"] if done else []
    parts += [f"pure Python ({why}): {' '.join(names)}" for why, names in pure.items()]
    return f"{loop}; core modules {'; '.join(parts)}"


def select(use_compiled: bool | None) -> None:
    """Choose the loop for this process: True the compiled one (``ImportError`` if it is not
    built), False the pure-Python one, None as at start (environment and what is built).
    For the equivalence tests and benchmarks."""
    global _chosen
    _chosen = None
    if use_compiled is None:
        return
    from pcapsmtp.engine import hotloop
    if use_compiled:
        if _table_pure():
            raise ImportError("the compiled file loop needs the compiled tcp.streams")
        from pcapsmtp.engine import hotloop_c  # type: ignore[attr-defined]
        _chosen = (hotloop_c.loop, "")
    else:
        _chosen = (hotloop.loop, "selected in-process")
