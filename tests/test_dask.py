"""``analyze --dask``: a real ``dask scheduler`` and two ``dask worker`` processes on loopback
(random free ports, bounded time, always torn down) give the serial run's output byte for
byte, for one file and for a rotated set, also when a worker process is killed mid-run."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixedcap import make_mixed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dask_cmd() -> list[str]:
    # the interpreter running the tests, not a `dask` found on PATH: another environment's
    # dask would differ in its packages and the client warns of the mismatch
    return [sys.executable, "-m", "dask"]


class Cluster:
    """A scheduler and ``workers`` single-threaded worker processes (no nanny: killing a
    worker really loses it), on 127.0.0.1."""

    def __init__(self, tmp: Path, workers: int = 2) -> None:
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get(
            "PYTHONPATH", ""), DASK_DISTRIBUTED__WORKER__DAEMON="False")
        self.env = env
        self.log = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.client: Any = None
        try:
            self._up(workers)
        except BaseException:
            self.close()
            raise

    def _up(self, workers: int) -> None:
        self._start([*_dask_cmd(), "scheduler", "--host", "127.0.0.1", "--port",
                     str(self.port), "--no-dashboard"], "scheduler")
        for k in range(workers):
            self.workers.append(self._start(
                [*_dask_cmd(), "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
                 "--nworkers", "1", "--no-nanny", "--no-dashboard", "--memory-limit", "0",
                 "--name", f"w{k}"], f"worker{k}"))
        from distributed import Client
        self.client = Client(self.address, timeout=START_TIMEOUT, set_as_default=False)
        self.client.wait_for_workers(workers, timeout=START_TIMEOUT)

    def _start(self, cmd: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.log / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                             start_new_session=True)
        log.close()
        self.procs.append(p)
        return p

    def close(self) -> None:
        try:
            if self.client is not None:
                self.client.close()
        except Exception:  # noqa: BLE001 - tearing down whatever state it is in
            pass
        # the workers first, each while the scheduler is still there, then the scheduler: a
        # worker sent SIGTERM while the scheduler closes too can hang in its own close (its rpc
        # to the scheduler cancelled: CancelledError in Worker.close) and never exit, which cost
        # the 15 s below and a SIGKILL in about one teardown in three after a killed worker
        deadline = time.monotonic() + 15
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mixed(tmp_path_factory.mktemp("mixed"))


def _cli(*args: str, timeout: float = 300,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", *args], check=False,
                          capture_output=True, timeout=timeout,
                          env=None if env is None else dict(os.environ, **env))


def test_dask_output_is_byte_identical(cluster: Cluster, mixed: Path, tmp_path: Path) -> None:
    for args in (["--format", "json", "--summary", str(mixed)],
                 ["--format", "table", "--findings", "--summary", str(mixed)]):
        serial = _cli(*args)
        assert serial.returncode == 1, serial.stderr
        for extra in ([], ["-j", "5"]):
            par = _cli("--dask", cluster.address, *extra, *args)
            assert par.stderr == serial.stderr
            assert par.returncode == serial.returncode
            assert par.stdout == serial.stdout


def test_dask_selection_is_the_serial_selection(cluster: Cluster, mixed: Path) -> None:
    """A conversation selection (applied to what the workers send back) gives what the
    serial run gives, byte for byte: the same conversations, summary and exit status."""
    serial_all = _cli("--format", "json", str(mixed))
    everything = [json.loads(line) for line in serial_all.stdout.splitlines()]
    for sel in (["--outcome", "plaintext", "--caused-by", "server"],
                ["--reason", "tls-established"]):
        args = [*sel, "--format", "json", "--summary", str(mixed)]
        serial = _cli(*args)
        got = [json.loads(line) for line in serial.stdout.splitlines()]
        picked = [c for c in got if "stream" in c]
        assert picked and len(picked) < len(everything), sel
        par = _cli("--dask", cluster.address, "-j", "3", *args)
        assert (par.returncode, par.stdout, par.stderr) == \
            (serial.returncode, serial.stdout, serial.stderr), sel


def test_dask_rotated_set(cluster: Cluster, mixed: Path, tmp_path: Path) -> None:
    if shutil.which("editcap") is None:
        pytest.skip("editcap is not installed")
    subprocess.run(["editcap", "-c", "9000", str(mixed), str(tmp_path / "r.pcap")], check=True,
                   capture_output=True, timeout=60)
    pieces = sorted(str(p) for p in tmp_path.glob("r_*"))
    assert len(pieces) == 4
    serial = _cli("--rotated", "--format", "json", "--summary", *pieces)
    par = _cli("--rotated", "--format", "json", "--summary", "--dask", cluster.address,
               "-j", "3", *pieces)
    assert par.returncode == serial.returncode == 1, par.stderr
    assert par.stdout == serial.stdout


def test_progress_comes_from_the_futures(cluster: Cluster, mixed: Path) -> None:
    from pcapsmtp.engine.analyzer import AnalysisConfig
    from pcapsmtp.engine.distributed import dask_results
    seen: list[tuple[int, int]] = []
    res = list(dask_results([(str(mixed),), (str(mixed),)], AnalysisConfig(), cluster.client,
                            jobs=4, progress=lambda d, t: seen.append((d, t))))
    assert len(res) == 2
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


def test_worker_killed_mid_run(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Kill one worker process while it runs a task: the scheduler gives the task to the
    other worker and the output is still the serial run's."""
    big = make_mixed(tmp_path_factory.mktemp("big"), packets=150000, seed=11)
    serial = _cli("--format", "json", "--summary", str(big))
    c = Cluster(tmp_path / "cl")
    try:
        pids = c.client.run(os.getpid)          # worker address -> its process id
        assert set(pids.values()) == {w.pid for w in c.workers}   # no nanny in between
        assert len(pids) == 2
        run = subprocess.Popen([sys.executable, "-m", "pcapsmtp", "analyze", "--dask", c.address,
                                "-j", "6", "--format", "json", "--summary", str(big)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        killed = None
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and run.poll() is None:
            for addr, keys in c.client.processing().items():
                if keys and addr in pids:
                    time.sleep(0.3)                  # well inside the task (about 1 s)
                    os.kill(pids[addr], signal.SIGKILL)
                    killed = addr
                    break
            time.sleep(0.02)
        assert killed is not None, "no task was seen running"
        out, err = run.communicate(timeout=300)
        assert run.returncode == serial.returncode == 1, err
        assert out == serial.stdout
        # the killed worker is gone and the other did its work
        c.client.wait_for_workers(1, timeout=10)
        assert killed not in c.client.scheduler_info()["workers"]
    finally:
        c.close()


def test_unreachable_scheduler_is_one_line() -> None:
    """Nothing listens at the address: after Dask's connect timeout (its own setting, given
    here through Dask's environment variable as an operator would, 2 s instead of the default
    30 s) one line naming the scheduler and the address, exit status 2."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    proc = _cli("--dask", address, str(ROOT / "captures" / "tls-fallback.pcap"),
                env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert f"cannot reach the scheduler at {address}".encode() in proc.stderr
    assert b"after 2 s" in proc.stderr, proc.stderr      # Dask's setting is the one used
