"""``analyze --dask tcp://SCHEDULER:8786``: the partitioned work of ``engine.partition`` on a
Dask distributed cluster.

The tasks are the same as for ``-j N`` (whole files, or buckets of conversations of a file
or a rotated set), submitted as futures; each worker opens the files by their paths, so they
must be on storage every worker reads at the same path (NFS, a shared volume, an object
store mounted with the same name). The results come back in task order and are merged as
for ``-j``, so the output is the serial run's. A worker lost mid-run (killed, out of memory,
its machine gone) costs only its tasks: the scheduler gives them to another worker
(``distributed.scheduler.allowed-failures``, 3 by default), and a task whose code raised is
retried twice.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from pcapsmtp.engine.analyzer import AnalysisConfig, FileResult
from pcapsmtp.engine.partition import merged, plan, run_task
from pcapsmtp.errors import BackendUnavailable

__all__ = ["dask_results", "run_dask"]


def _client(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise BackendUnavailable("--dask needs the Dask distributed package: "
                                 "pip install '.[dask]' in pcapsmtp's clone") from None
    try:
        # how long to wait for the scheduler is Dask's own setting, distributed.comm.timeouts.connect
        # (30 s unless set: DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s, or a dask YAML file), as
        # for every other Dask client of the same cluster
        return Client(address, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BackendUnavailable(f"--dask: cannot reach the scheduler at {address}: "
                                 f"{text}") from None


def dask_results(units: list[tuple[str, ...]], config: AnalysisConfig, client: Any, *,
                 jobs: int | None = None, engine: str = "scapy",
                 progress: Callable[[int, int], None] | None = None) -> Iterator[FileResult]:
    """The units' results (in order) computed on ``client``'s cluster. ``jobs``: tasks to
    aim for (default: the cluster's worker threads); ``progress(done, total)`` after each
    finished task."""
    from distributed import as_completed
    if jobs is None:
        jobs = max(1, sum(client.nthreads().values()))
    tasks = plan(units, config, jobs, engine)
    futures = client.map(run_task, tasks, pure=False, retries=2)
    if progress is not None:
        progress(0, len(futures))
        with client.as_current():
            for k, _ in enumerate(as_completed(futures), 1):
                progress(k, len(futures))
    results = client.gather(futures)
    yield from merged(tasks, results)


def run_dask(units: list[tuple[str, ...]], config: AnalysisConfig, address: str, *,
             jobs: int | None = None, engine: str = "scapy",
             err: TextIO | None = None) -> Iterator[FileResult]:
    """``dask_results`` on the scheduler at ``address``; progress on ``err`` (a terminal)."""
    client = _client(address)
    try:
        show = err is not None and err.isatty()
        start = time.monotonic()

        def progress(done: int, total: int) -> None:
            assert err is not None
            err.write(f"\rpcapsmtp: dask {address}: {done}/{total} tasks done, "
                      f"{time.monotonic() - start:.0f} s")
            if done == total:
                err.write("\r\x1b[K")
            err.flush()

        yield from dask_results(units, config, client, jobs=jobs, engine=engine,
                                progress=progress if show else None)
    finally:
        client.close()
