"""Soak: a steady stream of SMTP sessions for minutes; the live process's memory must not grow.

Marked ``slow``: run it with ``pytest -m slow tests/live/test_soak.py``. The length comes from
``PCAPSMTP_SOAK_SECONDS`` (default 180), the rate is kept modest (the machine is shared).
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.live, pytest.mark.slow]

HOST = "127.0.0.1"


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_memory_stays_flat_under_a_steady_stream_of_sessions(
        smtp_servers: Any, smtp_clients: Any, start_live: Any, tmp_path: Path) -> None:
    seconds = float(os.environ.get("PCAPSMTP_SOAK_SECONDS", "180"))
    rate = float(os.environ.get("PCAPSMTP_SOAK_RATE", "15"))      # sessions per second
    live = start_live("-i", "lo", "--format", "json",
                      "--write", str(tmp_path / "soak.pcapng"), "--rotate-mb", "5",
                      "--rotate-keep", "2",
                      *[f"--port={p}" for p in smtp_servers.ports.values()])
    live.wait_ready()
    pid = live.proc.pid
    stop = threading.Event()
    sent: list[int] = []
    errors: list[str] = []

    def drive() -> None:
        names = ("compliant", "cisco", "refuse")
        i = 0
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                sent.append(smtp_clients.smtplib(HOST, smtp_servers.ports[names[i % 3]]))
            except Exception as exc:  # noqa: BLE001 - counted, reported below
                errors.append(repr(exc))
            i += 1
            stop.wait(max(0.0, 1.0 / rate - (time.monotonic() - t0)))

    driver = threading.Thread(target=drive)
    driver.start()
    samples: list[tuple[float, int]] = []
    start = time.monotonic()
    try:
        while time.monotonic() - start < seconds:
            time.sleep(2.0)
            samples.append((time.monotonic() - start, _rss_kb(pid)))
            live._drain()                      # keep our side of the pipe empty
            assert live.proc.poll() is None, "\n".join(live.err[-10:])
    finally:
        stop.set()
        driver.join(timeout=30)
    time.sleep(1.5)
    live.stop(signal.SIGINT)
    assert len(errors) <= len(sent) // 100, errors[:5]
    assert len(sent) >= seconds * rate * 0.3, f"only {len(sent)} sessions were driven"
    ports = {c["client"]["port"] for c in live.conversations()}
    assert len(set(sent) - ports) <= len(sent) // 200, "verdicts went missing"
    assert live.summary()["capture"]["dropped_by_kernel"] == 0

    # after warm-up (the first third), RSS may wobble but must not trend upwards
    warm = [kb for t, kb in samples if t >= seconds / 3]
    assert len(warm) >= 5
    baseline = warm[0]
    tail = warm[-max(3, len(warm) // 4):]
    growth = max(tail) - baseline
    assert growth <= max(8 * 1024, baseline // 10), (
        f"RSS grew from {baseline} kB to {max(tail)} kB over the soak: {samples}")
