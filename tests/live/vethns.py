"""Network namespaces joined by a veth pair, for the live tests that need a real Ethernet link
(test_netns.py, test_live_loss.py)."""
from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator

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
