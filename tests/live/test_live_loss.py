"""``pcapsmtp live`` under a replayed relay's traffic: ``tcpreplay`` on one end of a veth pair
between two network namespaces made here, ``pcapsmtp live`` on the other.

- at a rate it sustains (4000 packets/s, 15,000 packets: docs/performance.md measured 10,000
  sustained under heavy contention, and with the default 16 MiB buffer this file got through
  even at tcpreplay --topspeed on the shared 2-core machine), live gives the offline verdict of
  the same file for every conversation, and reports no drop;
- with a receive buffer too small to keep up (``-B 128``: 128 KiB); without the
  capture-loss rule this run blames sides offline analysis does not (implicit-tls-mismatch,
  tls-handshake-failed, client-used-helo from a lost greeting or EHLO exchange), the kernel drops packets: live says
  so on stderr and in the JSON summary, the conversations it touched carry a
  ``capture-loss`` finding, and no conversation is blamed on a side where the offline
  analysis of the same file does not blame it so.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.live, pytest.mark.netns]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from vethns import relay_capture, replay_link, sniff_replay  # noqa: E402

BLAME = {"client", "server", "middlebox"}


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """(namespace of the capture, namespace of the replay), joined by pcsl0 <-> pcsl1."""
    tag = f"{os.getpid() % 100000}"
    with replay_link((f"pcs-lcap-{tag}", f"pcs-lrep-{tag}"), ("pcsl0", "pcsl1")) as link:
        yield link


@pytest.fixture(scope="module")
def relay_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A relay's view: the SMTP packets of a generated mixed capture."""
    return relay_capture(tmp_path_factory.mktemp("relay"), 200000, 17)


def _verdicts(lines: list[str]) -> tuple[dict[tuple[Any, ...], list[dict[str, Any]]],
                                         dict[str, Any]]:
    convs: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    summary: dict[str, Any] = {}
    for ln in lines:
        d = json.loads(ln)
        if "summary" in d:
            summary = d["summary"]
            continue
        k = (d["client"]["ip"], d["client"]["port"], d["server"]["ip"], d["server"]["port"])
        convs.setdefault(k, []).append(d)
    return convs, summary


def _key(c: dict[str, Any]) -> tuple[str, str, str]:
    return c["outcome"], c["caused_by"], c["reason"]


def _replay(veth: tuple[str, str], pcap: Path, tmp: Path, speed: list[str],
            *live_args: str) -> tuple[list[str], str]:
    out = tmp / "live.json"
    _, err = sniff_replay(veth, ("pcsl0", "pcsl1"), pcap, out, ("--format", "json", *live_args), speed)
    return out.read_text().splitlines(), err


@pytest.fixture(scope="module")
def offline(relay_pcap: Path) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """``analyze``'s verdicts of the relay capture (once for both tests)."""
    r = subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", "--format", "json",
                        str(relay_pcap)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode in (0, 1), r.stderr
    return _verdicts(r.stdout.splitlines())[0]


def test_sustained_rate_gives_the_offline_verdicts(
        veth: tuple[str, str], relay_pcap: Path, offline: dict[tuple[Any, ...], list[dict[str, Any]]],
        tmp_path: Path) -> None:
    assert len(offline) > 50
    lines, err = _replay(veth, relay_pcap, tmp_path, ["--pps=4000"])
    live, summary = _verdicts(lines)
    assert summary["capture"]["dropped_by_kernel"] == 0, err
    assert "dropped" not in err
    assert {k: [_key(c) for c in v] for k, v in live.items()} == \
        {k: [_key(c) for c in v] for k, v in offline.items()}


def test_drops_are_reported_and_blame_nobody(
        veth: tuple[str, str], relay_pcap: Path, offline: dict[tuple[Any, ...], list[dict[str, Any]]],
        tmp_path: Path) -> None:
    lines, err = _replay(veth, relay_pcap, tmp_path, ["--topspeed"], "-B", "128")
    live, summary = _verdicts(lines)
    dropped = summary["capture"]["dropped_by_kernel"]
    assert dropped > 0, "the tiny buffer should have overflowed"
    assert "the kernel dropped" in err and f"{dropped:,} packets of the capture in all" in err
    touched = 0
    for k, convs in live.items():
        want = [_key(c) for c in offline.get(k, [])]
        for c in convs:
            lost = any(f["code"] == "capture-loss" for f in c["findings"])
            touched += lost
            if c["caused_by"] in BLAME:
                # blamed: exactly as offline blames it
                assert _key(c) in want, (k, _key(c), want)
            if _key(c) not in want:
                assert lost or c["outcome"] == "incomplete", (k, _key(c), want)
    assert touched > 0, (dropped, len(live), err)
