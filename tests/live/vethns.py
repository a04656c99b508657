"""Network namespaces joined by a veth pair, for the live tests that need a real Ethernet link
(test_netns.py, test_live_loss.py, test_live_select.py, test_live_tunnels.py, test_live_vlan.py),
the relay capture the replay tests send across it, and ``analyze``'s verdicts on a file: what
``live`` must print for the same packets."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import pytest


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


@contextlib.contextmanager
def veth_namespaces(names: tuple[str, str], devs: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """Namespaces ``names`` joined by a veth pair, ``devs[0]`` in the first and ``devs[1]`` in
    the second (both down, no address); both namespaces are deleted on exit. Skips the test,
    with the reason, where ``ip`` is missing or no namespace can be made; a later failure
    raises ``CalledProcessError``."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (ip) is not installed")
    a, b = names
    try:
        ip("netns", "add", a)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace here: {exc.stderr.strip()}")
    try:
        ip("netns", "add", b)
        ip("link", "add", devs[0], "netns", a, "type", "veth", "peer", "name", devs[1],
           "netns", b)
        yield a, b
    finally:
        ip("netns", "del", a, check=False)
        ip("netns", "del", b, check=False)


@contextlib.contextmanager
def replay_link(names: tuple[str, str], devs: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """(namespace of the capture, namespace of the replay) joined by ``devs``, both up with an
    MTU of 9000: a relay's IPv6 segments of 1460 bytes are 1534-byte frames, which veth's default
    MTU of 1500 drops without a word (tcpreplay still exits 0). Skips without ip, tcpreplay or
    tcpdump."""
    for tool in ("ip", "tcpreplay", "tcpdump"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    with veth_namespaces(names, devs) as (cap, rep):
        ip("-n", cap, "link", "set", devs[0], "mtu", "9000", "up")
        ip("-n", rep, "link", "set", devs[1], "mtu", "9000", "up")
        yield cap, rep


def queued_bytes(pid: int) -> int | None:
    """Bytes waiting in the receive queues of process ``pid``'s packet sockets: the ``Rmem``
    column of ``/proc/PID/net/packet`` (the packet sockets of the process's network namespace)
    for the sockets among its open files. None when there is none, or it cannot be read."""
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[len("socket:["):-1])
        rows = Path(f"/proc/{pid}/net/packet").read_text().splitlines()[1:]
    except OSError:
        return None
    queued = [int(f[6]) for f in (row.split() for row in rows) if len(f) >= 9 and f[8] in inodes]
    return sum(queued) if queued else None


def wait_drained(pid: int, limit: float, settle: float = 0.2) -> bool:
    """Waits until process ``pid`` has read everything its packet socket received: its queue
    empty for ``settle`` seconds running (what veth still had in flight has arrived by then).
    At most ``limit`` seconds; where the queue cannot be seen, the whole ``limit``."""
    deadline = time.monotonic() + limit
    empty_since: float | None = None
    while (now := time.monotonic()) < deadline:
        q = queued_bytes(pid)
        if q is None:
            time.sleep(max(0.0, deadline - now))
            return False
        if q:
            empty_since = None
        elif empty_since is None:
            empty_since = now
        elif now - empty_since >= settle:
            return True
        time.sleep(0.02)
    return False


def sniff_replay(link: tuple[str, str], devs: tuple[str, str], pcap: Path, out: Path,
                 live_args: tuple[str, ...] | list[str], replay_args: tuple[str, ...] | list[str] = ("--pps=1000",),
                 drain_s: float = 3.0) -> tuple[int, str]:
    """``tcpreplay`` sends ``pcap`` on ``devs[1]`` (in ``link[1]``) while ``pcapsmtp live -i devs[0]
    *live_args`` sniffs in ``link[0]``; live's stdout goes to ``out`` (a file, not a pipe: a full
    pipe would stall live). Once the replay ended and live has read every packet the kernel
    queued for it (:func:`wait_drained`, at most ``drain_s``: live stops reading at SIGINT, so
    what is still queued then is never seen), live is stopped with SIGINT, as an admin would.
    Returns live's (exit status, stderr)."""
    cap, rep = link
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo))
    with open(out, "w") as fh:
        live = subprocess.Popen(["ip", "netns", "exec", cap, sys.executable, "-m", "pcapsmtp",
                                 "live", "-i", devs[0], *live_args],
                                stdout=fh, stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert live.stderr is not None
            first = live.stderr.readline()
            assert f"listening on {devs[0]}" in first, first + live.stderr.read()
            r = subprocess.run(["ip", "netns", "exec", rep, "tcpreplay", "-i", devs[1], *replay_args,
                                str(pcap)], capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stderr
            wait_drained(live.pid, drain_s)     # `ip netns exec` execs: live.pid is live's
            live.send_signal(signal.SIGINT)
            _, err = live.communicate(timeout=120)
        finally:
            if live.poll() is None:
                live.kill()
                live.wait(10)
    return live.returncode, first + err


def analyze_offline(pcap: Path, *args: str) -> tuple[list[dict[str, Any]], int]:
    """``pcapsmtp analyze --format json ARGS pcap``: (its conversations, its exit status)."""
    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", "--format", "json", *args, str(pcap)],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(repo)))
    assert r.returncode in (0, 1), r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()], r.returncode


def verdict_key(c: dict[str, Any]) -> tuple[Any, ...]:
    """What a live run must agree on with ``analyze``: the ends, the verdict, the evidence frame
    and every finding's code and frame."""
    return (c["client"], c["server"], c["outcome"], c["caused_by"], c["reason"], c["evidence_frame"],
            [(f["code"], f["frame"]) for f in c["findings"]])


def relay_capture(directory: Path, packets: int, seed: int) -> Path:
    """A relay's view: the SMTP-port packets of a generated mixed capture (tests/mixedcap.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mixedcap import make_mixed
    mixed = make_mixed(directory, packets=packets, seed=seed)
    out = directory / "smtp.pcap"
    subprocess.run(["tcpdump", "-r", str(mixed), "-w", str(out),
                    "tcp port 25 or tcp port 465 or tcp port 587 or tcp port 2525"],
                   check=True, capture_output=True, timeout=120)
    return out
