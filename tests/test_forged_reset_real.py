"""A real injector between real Linux TCP stacks: the resets it forges are the box's, the server's own reset
stays the server's (docs/output.md, "Forged resets").

Three network namespaces joined by veth pairs (tests/rstbox.py, the sibling of tests/finbox.py): the client's
(Linux's default TTL, 64), the box's (an AF_PACKET bridge) and the server's, whose default TTL is 128 (a
Windows-like server: ``net.ipv4.ip_default_ttl``). The box watches the client's source ports: on one it drops
the client's STARTTLS, on another its ClientHello, and sends a reset to each end with the other end's address
and its own TTL, 255 (an IPS "reset-both"). Real clients (CPython's smtplib, curl, swaks) talk to a real server
(OpenSSL through Python's ssl), tcpdump captures at the client and at the server. One conversation goes through
untouched, and the server resets it itself at STARTTLS (SO_LINGER 0): that reset is the server's. Both captures
are judged: at the client the resets with the server's address, at the server those with the client's.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from certs import self_signed
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file

REPO = Path(__file__).resolve().parents[1]
RSTBOX = str(REPO / "tests" / "rstbox.py")
CLIENT_IP, SERVER_IP = "10.9.71.1", "10.9.71.2"
BOX_TTL, SERVER_TTL, CLIENT_TTL = 255, 128, 64

#: source port -> (what the box resets at, the client, the verdict at the client, the verdict at the server)
PORTS: dict[int, tuple[str, str, tuple[str, str, str, str | None], tuple[str, str, str, str | None]]] = {
    40101: ("starttls", "smtplib", ("aborted", "middlebox", "starttls-refused", "reset-forged"),
            ("aborted", "middlebox", "no-mail-transaction", "reset-forged")),
    40102: ("hello", "smtplib", ("aborted", "middlebox", "tls-handshake-failed", "reset-forged"),
            ("aborted", "middlebox", "tls-not-started", "reset-forged")),
    40103: ("", "smtplib", ("aborted", "server", "starttls-refused", None),
            ("aborted", "server", "starttls-refused", None)),
    40104: ("hello", "curl", ("aborted", "middlebox", "tls-handshake-failed", "reset-forged"),
            ("aborted", "middlebox", "tls-not-started", "reset-forged")),
    40105: ("starttls", "swaks", ("aborted", "middlebox", "starttls-refused", "reset-forged"),
            ("aborted", "middlebox", "no-mail-transaction", "reset-forged")),
}
RESET_BY_SERVER = 40103


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _client_argv(kind: str, port: int) -> list[str] | None:
    if kind == "smtplib":
        return [sys.executable, RSTBOX, "client", SERVER_IP, str(port)]
    if kind == "curl":
        if shutil.which("curl") is None:
            return None
        return ["curl", "-sS", "--max-time", "5", "--ssl-reqd", "-k", f"smtp://{SERVER_IP}", "--local-port",
                str(port), "--mail-from", "alice@client.example.test", "--mail-rcpt", "bob@mx.example.test",
                "-T", "/dev/null"]
    if shutil.which("swaks") is None:
        return None
    return ["swaks", "--server", SERVER_IP, "--tls", "--local-port", str(port), "--timeout", "5",
            "--from", "alice@client.example.test", "--to", "bob@mx.example.test", "--helo", "client.example.test"]


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces and captures need root (CI runs as root)")
    if shutil.which("tcpdump") is None or shutil.which("ip") is None:
        pytest.skip("needs tcpdump and ip (apt-get install tcpdump iproute2)")
    tmp = tmp_path_factory.mktemp("rstbox")
    tag = f"frs{os.getpid() % 100000}"
    cli, box, srv = f"{tag}c", f"{tag}b", f"{tag}s"
    try:
        _ip("netns", "add", cli)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace here: {exc.stderr.strip()}")
    procs: list[subprocess.Popen[bytes]] = []
    at_client, at_server = tmp / "client.pcap", tmp / "server.pcap"
    cert, key = self_signed(tmp, cn="mx.example.test")
    c0, c1, s1, s0 = f"{tag}c0", f"{tag}c1", f"{tag}s1", f"{tag}s0"
    outputs: dict[int, str] = {}

    def start(ns: str, *argv: str, ready: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(p)
        stream = p.stderr if ready == "listening" else p.stdout
        assert stream is not None
        line = stream.readline().decode()
        assert ready in line, (line, p.stderr.read().decode() if ready != "listening" and p.stderr else "")
        return p

    started = time.monotonic()
    try:
        _ip("netns", "add", box)
        _ip("netns", "add", srv)
        _ip("link", "add", c0, "netns", cli, "type", "veth", "peer", "name", c1, "netns", box)
        _ip("link", "add", s1, "netns", box, "type", "veth", "peer", "name", s0, "netns", srv)
        _ip("-n", cli, "addr", "add", f"{CLIENT_IP}/24", "dev", c0)
        _ip("-n", srv, "addr", "add", f"{SERVER_IP}/24", "dev", s0)
        for ns, dev in ((cli, c0), (box, c1), (box, s1), (srv, s0), (cli, "lo"), (srv, "lo")):
            _ip("-n", ns, "link", "set", dev, "up")
        subprocess.run(["ip", "netns", "exec", srv, "sysctl", "-qw", f"net.ipv4.ip_default_ttl={SERVER_TTL}"],
                       check=True, timeout=30)
        for ns, dev, path in ((cli, c0, at_client), (srv, s0, at_server)):
            start(ns, "tcpdump", "-i", dev, "-U", "--immediate-mode", "-s", "0", "-w", str(path), "tcp port 25",
                  ready="listening")
        watch = [f"{port}:{what}" for port, (what, *_rest) in PORTS.items() if what]
        start(box, sys.executable, RSTBOX, "bridge", c1, s1, str(BOX_TTL), *watch, ready="ready")
        runs = {port: _client_argv(client, port) for port, (_w, client, *_r) in PORTS.items()}
        server = start(srv, sys.executable, RSTBOX, "server", SERVER_IP, str(cert), str(key),
                       str(sum(1 for argv in runs.values() if argv)), str(RESET_BY_SERVER), ready="ready")
        for port, argv in runs.items():
            if argv is None:
                continue
            res = subprocess.run(["ip", "netns", "exec", cli, *argv], capture_output=True, text=True, timeout=60)
            outputs[port] = f"{res.returncode} {res.stdout} {res.stderr}"
        server.wait(timeout=30)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT if p.args[4:5] == ["tcpdump"] else signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        for ns in (cli, box, srv):
            _ip("netns", "del", ns, check=False)
    by_port = {}
    for where, path in (("client", at_client), ("server", at_server)):
        res = analyze_file(str(path), AnalysisConfig())
        assert res.error is None, res.error
        by_port[where] = {c["client"]["port"]: c for c in res.conversations}
    return {"outputs": outputs, "convs": by_port, "seconds": time.monotonic() - started,
            "paths": {"client": at_client, "server": at_server}}


def _verdict(conv: dict[str, Any]) -> tuple[str, str, str, str | None]:
    return conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case")


@pytest.mark.live
@pytest.mark.parametrize("port", sorted(PORTS))
def test_the_client_got_a_reset(captured: dict[str, Any], port: int) -> None:
    if port not in captured["outputs"]:
        pytest.skip(f"{PORTS[port][1]} is not installed")
    out = captured["outputs"][port]
    client = PORTS[port][1]
    if client == "smtplib":
        assert "Connection reset by peer" in out, out
    else:
        assert not out.startswith("0 "), out          # curl and swaks failed


@pytest.mark.live
@pytest.mark.parametrize("where", ["client", "server"])
@pytest.mark.parametrize("port", sorted(PORTS))
def test_the_verdict(captured: dict[str, Any], port: int, where: str) -> None:
    if port not in captured["outputs"]:
        pytest.skip(f"{PORTS[port][1]} is not installed")
    conv = captured["convs"][where][port]
    want = PORTS[port][2] if where == "client" else PORTS[port][3]
    assert _verdict(conv) == want, (conv["detail"], [f["message"] for f in conv["findings"]])
    forged = [f for f in conv["findings"] if f["code"] == "reset-forged"]
    if want[3] is None:
        assert forged == []
        return
    (f,) = forged
    # the box's TTL on the reset; the other end's own, as the kernel of its namespace sends it
    other = SERVER_TTL if where == "client" else CLIENT_TTL
    assert f"came with TTL {BOX_TTL}, " in f["message"] and f"came with TTL {other} (" in f["message"], f["message"]
    assert conv["evidence_frame"] == f["frame"]


@pytest.mark.live
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("where", ["client", "server"])
def test_tshark_sees_the_same_resets(captured: dict[str, Any], where: str) -> None:
    path = captured["paths"][where]
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "tcp.flags.reset == 1", "-T", "fields", "-e",
                          "frame.number", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "ip.ttl"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    for port, conv in captured["convs"][where].items():
        mine = [r for r in rows if port in (int(r[1]), int(r[2]))]
        forged = [f for f in conv["findings"] if f["code"] == "reset-forged"]
        if forged:
            assert [(int(r[0]), int(r[3])) for r in mine][:1] == [(forged[0]["frame"], BOX_TTL)]
        elif port == RESET_BY_SERVER and where == "client":
            assert [int(r[3]) for r in mine] == [SERVER_TTL]


@pytest.mark.live
def test_it_stays_quick(captured: dict[str, Any]) -> None:
    assert captured["seconds"] < 20, captured["seconds"]
