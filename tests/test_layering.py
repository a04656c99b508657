"""The layering rule: pcapsmtp/tcp, pcapsmtp/smtp and pcapsmtp/analysis import only the standard
library and pcapsmtp's own core (no scapy, pyshark, tabulate, sockets, files or clocks).

Two checks: a subprocess that imports the core with the forbidden modules blocked in
``sys.modules`` (and runs a little traffic through it), and an AST scan of every module in the
three packages."""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "pcapsmtp"
CORE_DIRS = ("smtp", "tcp", "analysis")
BLOCKED = ("scapy", "pyshark", "socket", "tabulate")

#: pcapsmtp modules the core may import: the shared model and the core packages themselves.
ALLOWED_OWN = ("pcapsmtp.model", "pcapsmtp.smtp", "pcapsmtp.tcp", "pcapsmtp.analysis")
#: Standard-library modules that mean I/O, clocks or processes: not in the core.
FORBIDDEN_STDLIB = frozenset({
    "socket", "socketserver", "ssl", "select", "selectors", "asyncio", "subprocess", "time",
    "os", "io", "pathlib", "shutil", "tempfile", "glob", "mmap", "signal", "threading",
    "multiprocessing", "logging", "urllib", "http", "ftplib", "smtplib", "gzip", "bz2", "lzma",
    "zipfile", "tarfile", "pickle", "shelve", "sqlite3", "fcntl", "random",
})
#: (relative path, module): third-party imports tolerated inside a function only.
LAZY_ALLOWED = {("smtp/certificates.py", "cryptography")}
#: Calls that read files, open sockets or read the clock.
FORBIDDEN_CALLS = {"open", "now", "utcnow", "today", "time", "time_ns", "perf_counter",
                   "monotonic", "socket", "create_connection", "urlopen", "read_bytes",
                   "read_text", "write_bytes", "write_text", "fromtimestamp_now"}


def core_modules() -> list[Path]:
    files = sorted(p for d in CORE_DIRS for p in (PKG / d).rglob("*.py"))
    assert len(files) >= 10, files
    return files


def test_core_imports_with_io_libraries_blocked() -> None:
    code = textwrap.dedent(f"""
        import sys
        for name in {BLOCKED!r}:
            sys.modules[name] = None
        import pcapsmtp.smtp
        import pcapsmtp.tcp.reassembler
        import pcapsmtp.analysis.verdict
        import pcapsmtp.analysis.ehlo
        import pcapsmtp.analysis.clients
        from pcapsmtp.model import Side
        from pcapsmtp.smtp import SmtpSession
        from pcapsmtp.analysis.ehlo import check_ehlo
        s = SmtpSession()
        evs = s.receive(Side.SERVER, b"220 mx ESMTP\\r\\n")
        evs += s.receive(Side.CLIENT, b"EHLO me\\r\\n")
        evs += s.receive(Side.SERVER, b"250-STARTTLS\\r\\n250 mx\\r\\n")
        assert check_ehlo(evs[-1].lines).offered == "misplaced", evs
        for name in {BLOCKED!r}:
            assert sys.modules[name] is None, name
        assert "cryptography" not in sys.modules, "cryptography imported at module level"
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def _inside_function(tree: ast.AST) -> set[int]:
    """ids of import nodes that sit inside a function body."""
    inner: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    inner.add(id(sub))
    return inner


def _imports(src: str, rel: str) -> list[tuple[str, int, bool]]:
    """(absolute module name, line, inside a function) for every import of the module at
    ``pcapsmtp/<rel>`` whose source is ``src``."""
    tree = ast.parse(src, filename=rel)
    inner = _inside_function(tree)
    pkg_parts = ["pcapsmtp", *Path(rel).parts[:-1]]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in inner) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[:len(pkg_parts) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((name, node.lineno, id(node) in inner))
    return out


def import_violations(src: str, rel: str) -> list[str]:
    bad = []
    for name, line, lazy in _imports(src, rel):
        top = name.split(".")[0]
        if top == "__future__":
            continue
        if top == "pcapsmtp":
            if not any(name == a or name.startswith(a + ".") for a in ALLOWED_OWN):
                bad.append(f"{rel}:{line}: imports {name} (outside the core)")
            continue
        if top in sys.stdlib_module_names:
            if top in FORBIDDEN_STDLIB:
                bad.append(f"{rel}:{line}: imports {name} (I/O, clock or process)")
            continue
        if lazy and (rel, top) in LAZY_ALLOWED:
            continue
        bad.append(f"{rel}:{line}: imports third-party {name}"
                   + (" at module level" if (rel, top) in LAZY_ALLOWED else ""))
    return bad


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_core_module_imports_only_stdlib_and_core(path: Path) -> None:
    rel = str(path.relative_to(PKG))
    assert import_violations(path.read_text(encoding="utf-8"), rel) == []


def test_import_scan_can_fail() -> None:
    src = textwrap.dedent("""
        from __future__ import annotations
        import re
        import socket
        from time import monotonic
        from . import lines
        from ..model import Side
        from ..capture import pcapfile
        from pcapsmtp.render import text
        import cryptography
        def f() -> None:
            from cryptography import x509
            import scapy.all
    """)
    bad = import_violations(src, "smtp/certificates.py")
    assert [b.split(": ", 1)[1] for b in bad] == [
        "imports socket (I/O, clock or process)",
        "imports time (I/O, clock or process)",
        "imports pcapsmtp.capture (outside the core)",
        "imports pcapsmtp.render (outside the core)",
        "imports third-party cryptography at module level",
        "imports third-party scapy.all",
    ]
    assert import_violations("def f():\n    import cryptography\n", "smtp/session.py") == [
        "smtp/session.py:2: imports third-party cryptography"]


def call_violations(src: str, rel: str) -> list[str]:
    bad = []
    tree = ast.parse(src)
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
            if name in FORBIDDEN_CALLS:
                bad.append(f"{rel}:{node.lineno}: calls {name}()")
        elif isinstance(node, ast.Name) and node.id in ("socket", "open") and \
                isinstance(node.ctx, ast.Load) and id(node) not in called:
            bad.append(f"{rel}:{node.lineno}: refers to {node.id}")
    return sorted(bad, key=lambda b: int(b.split(":")[1]))


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_core_module_has_no_io_calls(path: Path) -> None:
    rel = str(path.relative_to(PKG))
    assert call_violations(path.read_text(encoding="utf-8"), rel) == []


def test_call_scan_can_fail() -> None:
    src = "x = open('f').read()\ny = datetime.now()\nz = self._open(1)\nf = open\n"
    assert call_violations(src, "m.py") == [
        "m.py:1: calls open()", "m.py:2: calls now()", "m.py:4: refers to open"]


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_core_module_starts_with_future_annotations(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if not body:
        return  # an empty __init__.py
    first = body[0]
    assert isinstance(first, ast.ImportFrom) and first.module == "__future__" and \
        [a.name for a in first.names] == ["annotations"], path


# ---------------------------------------------------------------------------------------------
# Public seams: no module reaches into another module's private names (issue 15). A layer
# offers what others need as public functions, methods and attributes (the capture layer's
# record views, the TCP layer's StreamTable.classify, the decoder's addresses()).

def private_reaches(src: str, rel: str) -> list[str]:
    """``from pcapsmtp.X import _name`` and ``obj._name`` on anything but ``self``/``cls``."""
    out = []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pcapsmtp"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    out.append(f"{rel}:{node.lineno}: imports private {node.module}.{alias.name}")
        elif (isinstance(node, ast.Attribute) and node.attr.startswith("_")
              and not node.attr.startswith("__")
              and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            out.append(f"{rel}:{node.lineno}: touches private {ast.unparse(node)}")
    return out


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_no_private_reaches(path: Path) -> None:
    assert private_reaches(path.read_text(), str(path.relative_to(PKG))) == []


def test_private_reach_scan_can_fail() -> None:
    src = textwrap.dedent("""
        from pcapsmtp.capture.pcapfile import _open_source, iter_views
        def f(reasm, self):
            reasm._countdown -= 1
            self._ok = reasm.table.young
    """)
    assert private_reaches(src, "engine/x.py") == [
        "engine/x.py:2: imports private pcapsmtp.capture.pcapfile._open_source",
        "engine/x.py:4: touches private reasm._countdown",
    ]
