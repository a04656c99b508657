"""What the worker processes of a parallel run share (tests/run.sh runs pytest-xdist).

- :func:`built_once`: a session-scoped fixture runs once per worker process under pytest-xdist,
  so a fixture that compiles something would compile it in every worker, each paying the time on
  a machine whose cores the other workers are using: this makes it once for the whole run;
- :func:`run_lock`: a lock held across the workers of the run, for the few tests that must not
  overlap each other (serially, tests never overlap: it is taken at once)."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str,
               build: Callable[[Path], Path | None]) -> Path | None:
    """``build(DIR)``: a build into the new empty folder DIR returning what it made (None when it
    cannot be made here), done once per run. Serially, in a folder of the session's temporary
    root. Under pytest-xdist, by the first worker that needs it, in a folder of the run's shared
    temporary root (each worker's is a folder in it), the others waiting on a lock, then reading
    its result: the same path, or None."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return build(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent          # <the run's basetemp>/popen-gwN
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)                  # released when the file is closed
        done = root / f"{name}.json"
        if done.is_file():
            made = json.loads(done.read_text())
            return None if made is None else Path(made)
        where = root / name
        shutil.rmtree(where, ignore_errors=True)          # what a worker whose build raised left
        where.mkdir()
        result = build(where)
        done.write_text(json.dumps(None if result is None else str(result)))
        return result


#: :func:`run_lock` of the tests that put packets on the loopback's default SMTP ports (25, 465,
#: 587, 2525: what ``pcapsmtp live`` captures without ``--port``) and of those that sniff them
#: there and count on seeing nothing
LO_SMTP_PORTS = "lo-smtp-ports"


@contextlib.contextmanager
def run_lock(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[None]:
    """Holds the lock ``name`` of this run while the block runs: under pytest-xdist no other worker
    is inside a block of the same name meanwhile (it waits); serially, nothing to wait for."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        yield
        return
    root = tmp_path_factory.getbasetemp().parent          # <the run's basetemp>/popen-gwN
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield                                             # released when the file is closed
