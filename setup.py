"""The optional compiled parts (issue 15): everything else is in setup.cfg.

Built with Cython (a build requirement only, see pyproject.toml) when a C compiler is there:

- ``pcapsmtp/engine/hotloop_c.pyx``, the compiled file loop, whose pure-Python twin is
  ``pcapsmtp/engine/hotloop.py``;
- the core modules in ``COMPILED_CORE`` (pcapsmtp/__init__.py), compiled from their own ``.py``
  source as it is, under the same module name: the extension sits beside the ``.py`` and is
  imported in its place. The ``.py`` stays the reference, and the one read without the build.
  An augmenting ``.pxd`` beside a module (Cython's pure-Python mode) makes some of its classes
  extension types whose attributes are C fields; the ``.py`` does not change.

All of it is optional: when Cython is missing, the compiler is missing or a build fails for any
other reason, the install goes on without that extension (with a warning) and pcapsmtp runs the
pure Python. ``PCAPSMTP_NO_EXTENSIONS=1`` at install time skips the build; at run time it makes
pcapsmtp ignore what was built. ``pcapsmtp --version`` says what is compiled.
"""
from __future__ import annotations

import ast
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _warn(what: str, exc: BaseException) -> None:
    print(f"pcapsmtp: {what} ({type(exc).__name__}: {exc}); installing without it: the pure "
          "Python gives the same results, more slowly", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext whose failures are warnings, not errors, building its extensions in parallel
    (one per core: the six extensions take about a minute of CPU)."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:
            # the cores this process may use (a container's CPU set), not the machine's
            self.parallel = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                else (os.cpu_count() or 1)

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - no compiler, no Python headers, ...
            _warn("the C extension could not be built", exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            _warn(f"building {ext.name} failed", exc)


def _core_modules() -> tuple[str, ...]:
    """COMPILED_CORE from pcapsmtp/__init__.py, read without importing the package."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pcapsmtp", "__init__.py"),
              encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "COMPILED_CORE" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise RuntimeError("pcapsmtp/__init__.py has no COMPILED_CORE")


def _extensions() -> list[Extension]:
    if os.environ.get("PCAPSMTP_NO_EXTENSIONS", "") not in ("", "0"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        _warn("Cython is not available", exc)
        return []
    exts = []
    try:
        exts += cythonize([Extension("pcapsmtp.engine.hotloop_c",
                                     ["pcapsmtp/engine/hotloop_c.pyx"])],
                          compiler_directives={"language_level": 3}, quiet=True)
    except Exception as exc:  # noqa: BLE001
        _warn("Cython could not translate the file loop", exc)
    # The core modules are compiled as the Python they are: annotations are not C types
    # (annotation_typing off: with it, a ``float`` argument would become a C double and a
    # ``list`` one would refuse None), so the compiled module behaves as its source does.
    for name in _core_modules():
        try:
            exts += cythonize([Extension(name, [name.replace(".", "/") + ".py"])],
                              compiler_directives={"language_level": 3, "annotation_typing": False},
                              quiet=True)
        except Exception as exc:  # noqa: BLE001
            _warn(f"Cython could not translate {name}", exc)
    return exts


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
