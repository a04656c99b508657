"""``python -m pcapsmtp analyze`` ends without the interpreter's last search for cyclic garbage
(``commands.main.leave``): what it wrote, its exit status, the ``atexit`` functions and the
threads still running are as a normal exit leaves them."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pcapsmtp.commands.main import main

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"
#: the children's environment, their standard output block-buffered as usual (not when the
#: caller's environment asks for it unbuffered)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def _leave(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child (the package from this tree) and then ``leave`` as after
    ``analyze``."""
    prog = ("import pcapsmtp.commands.main as m\n" + code + "\nm._skip_collection = True\nm.leave(1)\n")
    return subprocess.run([sys.executable, "-c", prog], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=ENV)


def test_analyze_output_and_status_are_the_in_process_run_s() -> None:
    for name, status in (("client-did-not-request.pcap", 1), ("seed-compliant-twin.pcap", 0)):
        path = str(CAPTURES / name)
        for fmt in ("json", "table", "csv"):
            out, err = io.StringIO(), io.StringIO()
            assert main(["analyze", "--format", fmt, "--summary", path], out=out, err=err) == status
            p = subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", "--format", fmt,
                                "--summary", path], cwd=ROOT, capture_output=True, text=True,
                               timeout=120, env=ENV)
            assert p.returncode == status, p.stderr
            assert p.stdout == out.getvalue() and p.stderr == err.getvalue()


def test_buffered_output_is_flushed_and_atexit_functions_run() -> None:
    p = _leave("import atexit, sys\n"
               "atexit.register(lambda: print('atexit ran', file=sys.stderr))\n"
               "sys.stdout.write('x' * 100000)")
    assert p.returncode == 1
    assert p.stdout == "x" * 100000
    assert p.stderr == "atexit ran\n"


def test_a_thread_still_running_is_waited_for() -> None:
    p = _leave("import threading, time\n"
               "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done'))).start()")
    assert p.returncode == 1
    assert p.stdout == "thread done\n"


def test_other_commands_and_no_command_end_as_before() -> None:
    p = subprocess.run([sys.executable, "-c", "import pcapsmtp.commands.main as m\n"
                        "import atexit\natexit.register(lambda: print('normal'))\n"
                        "m.leave(3)"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=ENV)
    assert (p.returncode, p.stdout) == (3, "normal\n")


def test_a_failed_flush_ends_the_usual_way() -> None:
    """Standard output that cannot be flushed (a pipe whose reader is gone, as after ``| head``):
    the usual exit reports it, with its status, as without ``leave``."""
    code = "import os, sys\nsys.stdout.write('x')\nr, w = os.pipe()\nos.close(r)\nos.dup2(w, 1)"
    p = _leave(code)
    usual = subprocess.run([sys.executable, "-c", code + "\nsys.exit(1)"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60, env=ENV)
    assert usual.returncode == 120 and "Exception ignored" in usual.stderr
    assert (p.returncode, p.stderr) == (usual.returncode, usual.stderr)


def test_the_last_collection_is_skipped_after_analyze_only() -> None:
    """What ``leave`` is for: a cycle left at the end is not searched for and freed (its
    ``__del__`` does not run), where any other command's end frees it."""
    code = ("import sys\nclass D:\n    def __del__(self):\n        sys.__stderr__.write('freed')\n"
            "d = D()\nd.me = d\ndel d")
    assert _leave(code).stderr == ""
    p = subprocess.run([sys.executable, "-c", "import pcapsmtp.commands.main as m\n" + code
                        + "\nm.leave(1)"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env=ENV)
    assert (p.returncode, p.stderr) == (1, "freed")



def test_the_console_script_ends_through_leave_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed ``pcapsmtp`` script (setup.cfg's entry point) is ``run``, as ``python -m
    pcapsmtp`` is: ``main`` on the command line, its status handed to ``leave``."""
    from importlib.metadata import entry_points

    import pcapsmtp.commands.main as m

    (ep,) = entry_points(group="console_scripts", name="pcapsmtp")
    assert ep.value == "pcapsmtp.commands.main:run"
    left: list[int] = []
    monkeypatch.setattr(m, "leave", left.append)
    monkeypatch.setattr(sys, "argv", ["pcapsmtp", "analyze", "--format", "json",
                                      str(CAPTURES / "client-did-not-request.pcap")])
    ep.load()()
    assert left == [1] and m._skip_collection
