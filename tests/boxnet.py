"""Three network namespaces for tests with a real box between real Linux TCP stacks: a client, a box and a
server, joined by two veth pairs (client ``c0`` - ``c1`` box ``s1`` - ``s0`` server; device names carry a tag
so that runs do not collide). The box namespace runs whatever the test starts there (tests/finbox.py's
dropping bridge, tests/rstbox.py's resetting one); processes started in a namespace are stopped, and the
namespaces deleted, when the ``with`` block ends. Needs root (CI runs as root); the caller skips otherwise.
"""
from __future__ import annotations

import signal
import subprocess
from types import TracebackType

import pytest


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


class BoxNet:
    """``with BoxNet(tag, client_ip, server_ip) as net:`` the three namespaces ``net.cli``, ``net.box``,
    ``net.srv`` with their devices up (``net.c0`` ... ``net.s0``) and the two addresses on a /24."""

    def __init__(self, tag: str, client_ip: str, server_ip: str) -> None:
        self.cli, self.box, self.srv = f"{tag}c", f"{tag}b", f"{tag}s"
        self.c0, self.c1, self.s1, self.s0 = f"{tag}c0", f"{tag}c1", f"{tag}s1", f"{tag}s0"
        self.client_ip, self.server_ip = client_ip, server_ip
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> BoxNet:
        try:
            ip("netns", "add", self.cli)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot create a network namespace here: {exc.stderr.strip()}")
        try:
            ip("netns", "add", self.box)
            ip("netns", "add", self.srv)
            ip("link", "add", self.c0, "netns", self.cli, "type", "veth", "peer", "name", self.c1, "netns", self.box)
            ip("link", "add", self.s1, "netns", self.box, "type", "veth", "peer", "name", self.s0, "netns", self.srv)
            ip("-n", self.cli, "addr", "add", f"{self.client_ip}/24", "dev", self.c0)
            ip("-n", self.srv, "addr", "add", f"{self.server_ip}/24", "dev", self.s0)
            for ns, dev in ((self.cli, self.c0), (self.box, self.c1), (self.box, self.s1), (self.srv, self.s0),
                            (self.cli, "lo"), (self.srv, "lo")):
                ip("-n", ns, "link", "set", dev, "up")
        except BaseException:
            self.close()
            raise
        return self

    def start(self, ns: str, *argv: str, ready: str | None = None) -> subprocess.Popen[bytes]:
        """Start ``argv`` in namespace ``ns``; with ``ready``, wait for the first line that says it is (on
        standard error for ``listening``, tcpdump's, else on standard output)."""
        p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(p)
        if ready is not None:
            stream = p.stderr if ready == "listening" else p.stdout
            assert stream is not None
            line = stream.readline().decode()
            assert ready in line, (line, p.stderr.read().decode() if ready != "listening" and p.stderr else "")
        return p

    def run(self, ns: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout)

    def close(self) -> None:
        """Stop what was started (tcpdump with SIGINT, so that it writes its last packets), then delete the
        namespaces."""
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT if p.args[4:5] == ["tcpdump"] else signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        for ns in (self.cli, self.box, self.srv):
            ip("netns", "del", ns, check=False)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
