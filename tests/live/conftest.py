"""Real peers on loopback for the ``pcapsmtp live`` tests.

- three aiosmtpd servers on 127.0.0.1 high ports: ``compliant`` (a well-formed EHLO reply and
  real STARTTLS with a certificate generated here), ``cisco`` (``250-STARTTLS`` as the first
  EHLO line and the domain second, STARTTLS works for a client that finds it) and ``refuse``
  (advertises STARTTLS, answers it with 454);
- clients: Python smtplib in the usual opportunistic pattern, and swaks;
- ``LiveProc``: ``pcapsmtp live`` as a subprocess whose stdout lines are collected by a thread.

Live tests need root (or CAP_NET_RAW): they are skipped, with the reason, elsewhere. CI runs as
root, so they run there.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/: the shared helpers
from certs import self_signed  # noqa: E402
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "live: sniffs a real interface; needs root or CAP_NET_RAW")
    config.addinivalue_line("markers", "slow: runs for minutes (soak tests)")
    config.addinivalue_line("markers", "netns: needs ip netns and veth (root)")


def can_sniff() -> bool:
    if os.geteuid() == 0:
        return True
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)).close()
    except OSError:
        return False
    return True


@pytest.fixture(autouse=True)
def _live_needs_privileges(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("live") and not can_sniff():
        pytest.skip("live capture needs root or CAP_NET_RAW (CI runs these as root)")


# ---------------------------------------------------------------------------------------------
# certificate


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("tls"))


def make_cert(d: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for mx.example.test (EC P-256) in ``d``."""
    return self_signed(d, cn="mx.example.test", dns=("mx.example.test",))


# ---------------------------------------------------------------------------------------------
# servers


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class _Sink:
    """aiosmtpd handler: accepts every message; for ``cisco`` rewrites the EHLO reply."""

    def __init__(self, cisco: bool = False) -> None:
        self.cisco = cisco
        self.messages = 0

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        if not self.cisco:
            return responses
        # The Cisco-note reply: STARTTLS where the domain belongs, the domain second.
        rest = [r[4:] for r in responses[1:] if r[4:] != "STARTTLS"]
        lines = ["STARTTLS", responses[0][4:], *rest]
        return [f"250-{x}" for x in lines[:-1]] + [f"250 {lines[-1]}"]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        return "250 2.0.0 Ok: queued"


def _controller_class(refuse_starttls: bool) -> Any:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    class Refuse454(SMTP):  # type: ignore[misc]
        async def smtp_STARTTLS(self, arg: str) -> None:
            await self.push("454 4.7.0 TLS not available due to temporary reason")

    class C(Controller):  # type: ignore[misc]
        def factory(self) -> Any:
            cls = Refuse454 if refuse_starttls else SMTP
            return cls(self.handler, **self.SMTP_kwargs)

    return C


class SmtpServers:
    """The three loopback servers; ``ports[name]``."""

    NAMES = ("compliant", "cisco", "refuse")

    def __init__(self, tls: tuple[Path, Path], host: str = "127.0.0.1") -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        self.host = host
        self.ports: dict[str, int] = {}
        self.handlers: dict[str, _Sink] = {}
        self._controllers: list[Any] = []
        for name in self.NAMES:
            port = free_port(host)
            handler = _Sink(cisco=name == "cisco")
            cls = _controller_class(refuse_starttls=name == "refuse")
            c = cls(handler, hostname=host, port=port, server_hostname="mx.example.test",
                    tls_context=ctx, require_starttls=False, auth_require_tls=False,
                    ident="ESMTP test")
            c.start()
            self._controllers.append(c)
            self.ports[name] = port
            self.handlers[name] = handler

    def stop(self) -> None:
        for c in self._controllers:
            c.stop()


@pytest.fixture(scope="module")
def smtp_servers(tls_files: tuple[Path, Path]) -> Iterator[SmtpServers]:
    servers = SmtpServers(tls_files)
    try:
        yield servers
    finally:
        servers.stop()


# ---------------------------------------------------------------------------------------------
# clients


def _message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "sender@client.example.test"
    msg["To"] = "rcpt@mx.example.test"
    msg["Subject"] = "pcapsmtp live test"
    msg.set_content("hello\n")
    return msg


def deliver_smtplib(host: str, port: int) -> int:
    """The usual opportunistic client: EHLO; if STARTTLS is advertised, STARTTLS + EHLO
    (on a refusal carry on in plaintext, as an MTA at TLS level "may" does); send; QUIT.
    Returns the client's source port."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(host, port, local_hostname="client.example.test", timeout=10) as s:
        cport = int(s.sock.getsockname()[1])
        s.ehlo()
        if s.has_extn("starttls"):
            try:
                s.starttls(context=ctx)
                s.ehlo()
            except smtplib.SMTPResponseException:
                pass
        s.send_message(_message())
    return cport


def deliver_swaks(host: str, port: int, local: str | None = None) -> int:
    """swaks with opportunistic TLS (``--tls-optional``), from address ``local`` (default:
    ``host``). Returns the client's source port."""
    local = local or host
    swaks = shutil.which("swaks")
    assert swaks, "swaks is not installed (apt-get install swaks)"
    last = ""
    for _ in range(5):
        lport = free_port(local)
        r = subprocess.run(
            [swaks, "--server", host, "--port", str(port), "--local-interface", local,
             "--local-port", str(lport), "--from", "sender@client.example.test",
             "--to", "rcpt@mx.example.test", "--helo", "client.example.test",
             "--tls-optional", "--timeout", "10"],
            capture_output=True, text=True, timeout=60)
        if r.returncode == 0:
            return lport
        last = r.stdout[-2000:] + r.stderr[-2000:]
        if "Address already in use" not in last:
            break
    raise AssertionError(f"swaks failed (exit {r.returncode}):\n{last}")


# ---------------------------------------------------------------------------------------------
# the live process


def live_command() -> list[str]:
    """How to start ``pcapsmtp live``: through the package CLI."""
    return [sys.executable, "-m", "pcapsmtp", "live"]


@pytest.fixture
def live_argv() -> list[str]:
    """The argv prefix that starts ``pcapsmtp live``."""
    return live_command()


class LiveProc:
    """``pcapsmtp live`` as a child process; stdout lines land in ``lines``."""

    def __init__(self, args: list[str], *, env: dict[str, str] | None = None,
                 prefix: list[str] | None = None) -> None:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env["PYTHONUNBUFFERED"] = "1"
        if env:
            full_env.update(env)
        self.argv = [*(prefix or []), *live_command(), *args]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=str(REPO), env=full_env)
        self.lines: list[str] = []
        self.err: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        self._eq: queue.Queue[str | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._q), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._eq), daemon=True)]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream: Any, q: queue.Queue[str | None]) -> None:
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)

    def _drain(self) -> None:
        for q, into in ((self._q, self.lines), (self._eq, self.err)):
            while True:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    into.append(item)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait for the "listening on" line on stderr."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self._drain()
            if any("listening on" in e for e in self.err):
                return
            if self.proc.poll() is not None:
                time.sleep(0.2)
                self._drain()
                raise AssertionError(f"pcapsmtp live exited {self.proc.returncode}: "
                                     + "\n".join(self.err[-20:]))
            time.sleep(0.05)
        raise AssertionError("pcapsmtp live did not start: " + "\n".join(self.err[-20:]))

    def json_lines(self) -> list[dict[str, Any]]:
        self._drain()
        return [json.loads(x) for x in self.lines if x.startswith("{")]

    def conversations(self) -> list[dict[str, Any]]:
        return [x for x in self.json_lines() if "summary" not in x]

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate(self.conversations()):
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        return bool(predicate(self.conversations()))

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("pcapsmtp live did not stop on " + signal.Signals(sig).name) from exc
        for t in self._threads:        # the pumps end with the pipes
            t.join(timeout=10)
        self._drain()
        return rc

    def summary(self) -> dict[str, Any]:
        found = [x["summary"] for x in self.json_lines() if "summary" in x]
        assert len(found) == 1, f"expected one summary line, got {len(found)}: {self.lines[-5:]}"
        return found[0]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start_live() -> Iterator[Any]:
    procs: list[LiveProc] = []

    def start(*args: str, env: dict[str, str] | None = None,
              prefix: list[str] | None = None) -> LiveProc:
        p = LiveProc(list(args), env=env, prefix=prefix)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()


@pytest.fixture
def smtp_clients() -> Any:
    """``smtp_clients.smtplib(host, port)`` / ``smtp_clients.swaks(host, port)``: one
    delivery each, returning the client's source port."""
    import types
    return types.SimpleNamespace(smtplib=deliver_smtplib, swaks=deliver_swaks)
