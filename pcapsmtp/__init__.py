"""pcapsmtp: why did STARTTLS not happen, and whose fault was it? Answered from packets alone.

Layers, left to right (dependencies only point rightwards, through ``pipeline``):

    capture/   files (pcap, pcapng, gzip, stdin), live sniffing (scapy), tshark (pyshark)
               -> ``TcpSegment``
    tcp/       reassembly per direction, Wireshark stream numbering -> flow events
    smtp/      sans-I/O SMTP conversation parser: bytes -> typed events
    analysis/  RFC 1869/5321/3207 checks and the verdict per conversation
    render/    table, JSON Lines, CSV, explain, annotated pcapng

``tcp``, ``smtp`` and ``analysis`` import only the standard library and ``pcapsmtp.model``.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TypeVar

__version__ = "0.1.0"
_T = TypeVar("_T")
__all__ = ["__version__", "COMPILED_CORE", "compiled_core"]

# Core modules that setup.py also compiles with Cython, from this same source, under the same
# name (issue 15): where the build worked, ``streams.cpython-311-x86_64-linux-gnu.so`` sits beside
# ``streams.py`` and Python imports it first. The ``.py`` is the reference and what runs without
# a compiler; both give the same output (tests/perf/test_compiled_equivalence.py).
COMPILED_CORE = (
    "pcapsmtp.tcp.streams",
    "pcapsmtp.tcp.halfstream",
    "pcapsmtp.tcp.reassembler",
    "pcapsmtp.tcp.events",
    "pcapsmtp.smtp.lines",
    "pcapsmtp.smtp.events",
    "pcapsmtp.smtp.tls",
    "pcapsmtp.smtp.session",
    "pcapsmtp.model",
    # (no .pxd: compiled as the Python they are, for the interpreter's work they save on the
    # per-segment routing and the per-event items; docs/performance.md, "Twenty-first session")
    "pcapsmtp.analysis.frames",
    "pcapsmtp.engine.analyzer",
    # (the verdict, once per conversation, the largest interpreted part left: compiled as the
    # Python it is; docs/performance.md, "Twenty-sixth session")
    "pcapsmtp.analysis.ehlo",
    "pcapsmtp.analysis.verdict",
)

# An extension is "older than its source" when its .py was written more than this after it: an
# edit or a checkout after the build. The margin is for installers that write the .py and the
# extension one after the other, in either order.
_STALE_AFTER_S = 2.0


def _no_extensions() -> bool:
    return os.environ.get("PCAPSMTP_NO_EXTENSIONS", "") not in ("", "0")


def _why_pure(spec: importlib.machinery.ModuleSpec) -> tuple[str, str]:
    """For a core module's spec: ("", "") to import it as found, else (the .py to import
    instead, why)."""
    if not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader) or not spec.origin:
        return "", ""
    source = os.path.join(os.path.dirname(spec.origin), spec.name.rpartition(".")[2] + ".py")
    try:
        stale = os.stat(source).st_mtime > os.stat(spec.origin).st_mtime + _STALE_AFTER_S
    except OSError:
        return "", ""                       # no .py beside it: the extension is all there is
    if _no_extensions():
        return source, "PCAPSMTP_NO_EXTENSIONS is set"
    if stale:
        return source, "the extension is older than its .py: rebuild it"
    return "", ""


# A compiled core module whose ``.pxd`` cimports an extension type of another core module reads
# that type's C fields directly: it runs only beside that module's extension. When that module
# runs its .py (the switch, or its extension older than its source), so does this one (a typed
# read of the pure-Python class's object would read the wrong memory).
# (A module may need several: the compiled analyzer cimports the TCP events, the frame index and
# the session.)
_NEEDS: dict[str, tuple[str, ...]] = {
    # (the segment: model's TcpSegment, streams' KeyedSegment)
    "pcapsmtp.tcp.streams": ("pcapsmtp.model",),
    "pcapsmtp.tcp.reassembler": ("pcapsmtp.tcp.halfstream", "pcapsmtp.model", "pcapsmtp.tcp.streams"),
    "pcapsmtp.smtp.session": ("pcapsmtp.smtp.lines",),
    "pcapsmtp.analysis.frames": ("pcapsmtp.model",),
    "pcapsmtp.analysis.ehlo": ("pcapsmtp.smtp.events",),
    "pcapsmtp.analysis.verdict": ("pcapsmtp.model",),
    # (in order: the first that runs its .py is the one named; model before frames, which needs it)
    "pcapsmtp.engine.analyzer": ("pcapsmtp.tcp.events", "pcapsmtp.model", "pcapsmtp.analysis.frames",
                                 "pcapsmtp.smtp.session", "pcapsmtp.tcp.reassembler"),
}


def _pure_source(name: str, spec: importlib.machinery.ModuleSpec) -> tuple[str, str]:
    """``_why_pure`` for core module ``name``, with the rule of ``_NEEDS``."""
    source, why = _why_pure(spec)
    needs = _NEEDS.get(name, ())
    if source or not needs or not spec.origin \
            or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
        return source, why
    for need in needs:
        mod = sys.modules.get(need)
        if mod is not None:
            need_pure = not isinstance(getattr(mod.__spec__, "loader", None),
                                       importlib.machinery.ExtensionFileLoader)
        else:
            package = importlib.import_module(need.rpartition(".")[0])
            found = importlib.machinery.PathFinder.find_spec(need, package.__path__)
            need_pure = (found is None
                         or not isinstance(found.loader, importlib.machinery.ExtensionFileLoader)
                         or bool(_pure_source(need, found)[0]))
        if need_pure:
            source = os.path.join(os.path.dirname(spec.origin), name.rpartition(".")[2] + ".py")
            if not os.path.exists(source):
                return "", ""
            return source, f"{need.removeprefix('pcapsmtp.')} runs its .py"
    return "", ""


#: ``inspect.getfullargspec`` of the callables a compiled module's dataclasses hand it
#: (``_ArgspecOnce``), computed once per process
_ARGSPECS: dict[object, object] = {}


class _ArgspecOnce(importlib.machinery.ExtensionFileLoader):
    """Loads a compiled core module with ``inspect.getfullargspec`` answered once per callable.
    Cython's dataclasses (the events' ``@dataclass`` in a ``.pxd``) build each field by asking
    ``inspect.getfullargspec(dataclasses.field)`` which arguments this Python's ``field`` and
    ``_DataclassParams`` take (its ``__Pyx_DataclassesCallHelper``): 242 times at every start
    for the same two callables, 44 M instructions, as much as a sixth of a one-conversation
    run. The answer cannot change while the module runs its initialisation, so the loader
    memoises it for that time and puts the standard library's function back after."""

    def _memoised(self, run: Callable[[], _T]) -> _T:
        import inspect
        original = inspect.getfullargspec

        def once(func: object) -> inspect.FullArgSpec:
            try:
                return _ARGSPECS[func]          # type: ignore[return-value]
            except KeyError:
                spec = _ARGSPECS[func] = original(func)
                return spec
            except TypeError:                   # an unhashable callable: not remembered
                return original(func)

        inspect.getfullargspec = once
        try:
            return run()
        finally:
            inspect.getfullargspec = original

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self._memoised(lambda: super(_ArgspecOnce, self).create_module(spec))

    def exec_module(self, module: ModuleType) -> None:
        self._memoised(lambda: super(_ArgspecOnce, self).exec_module(module))


class _CoreFinder:
    """Imports a compiled core module's ``.py`` instead of its extension when
    ``PCAPSMTP_NO_EXTENSIONS`` is set (anything but "" or "0"), the extension was built
    before the source's last change, or a module it needs (``_NEEDS``) runs its ``.py``. Finds
    only the modules of ``COMPILED_CORE``."""

    @staticmethod
    def find_spec(name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name not in COMPILED_CORE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        source, _why = _pure_source(name, spec)
        if source:
            return importlib.util.spec_from_file_location(name, source)
        if type(spec.loader) is importlib.machinery.ExtensionFileLoader and spec.origin:
            spec.loader = _ArgspecOnce(name, spec.origin)
        return spec


def compiled_core() -> dict[str, str]:
    """Each module of ``COMPILED_CORE``: "" when this process runs (or would import) its
    compiled extension, else why it runs the pure Python. Does not import the modules."""
    out = {}
    for name in COMPILED_CORE:
        mod = sys.modules.get(name)
        if mod is not None and isinstance(getattr(mod.__spec__, "loader", None),
                                          importlib.machinery.ExtensionFileLoader):
            out[name] = ""
            continue
        if _no_extensions():
            out[name] = "PCAPSMTP_NO_EXTENSIONS is set"
            continue
        package = importlib.import_module(name.rpartition(".")[0])
        built = importlib.machinery.PathFinder.find_spec(name, package.__path__)
        if built is None or not isinstance(built.loader, importlib.machinery.ExtensionFileLoader):
            out[name] = "not built"
        else:
            out[name] = _pure_source(name, built)[1] or ("" if mod is None else "imported before it was built")
    return out


if not any(f is _CoreFinder for f in sys.meta_path):
    sys.meta_path.insert(0, _CoreFinder)
