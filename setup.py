"""The optional compiled file loop (issue 15): everything else is in setup.cfg.

``pcapsmtp/engine/hotloop_c.pyx`` is compiled with Cython (a build requirement only, see
pyproject.toml) when a C compiler is there. It is optional: when Cython is missing, the
compiler is missing or the build fails for any other reason, the install goes on without it
(with a warning) and pcapsmtp runs its pure-Python twin, ``pcapsmtp/engine/hotloop.py``.
``PCAPSMTP_NO_EXTENSIONS=1`` at install time skips the build; at run time it makes pcapsmtp
ignore an extension that was built. ``pcapsmtp --version`` says which loop is active.
"""
from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _warn(what: str, exc: BaseException) -> None:
    print(f"pcapsmtp: {what} ({type(exc).__name__}: {exc}); installing without the compiled "
          "file loop: the pure-Python one gives the same results, more slowly", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext whose failures are warnings, not errors."""

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


def _extensions() -> list[Extension]:
    if os.environ.get("PCAPSMTP_NO_EXTENSIONS", "") not in ("", "0"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        _warn("Cython is not available", exc)
        return []
    try:
        return cythonize([Extension("pcapsmtp.engine.hotloop_c",
                                    ["pcapsmtp/engine/hotloop_c.pyx"])],
                         compiler_directives={"language_level": 3}, quiet=True)
    except Exception as exc:  # noqa: BLE001
        _warn("Cython could not translate the file loop", exc)
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
