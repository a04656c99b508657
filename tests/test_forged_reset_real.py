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

On three more ports the box copies the TTL of the end it imitates, so that the TTL tells nothing: it resets only
the client and lets the segment through (the server's real answer reaches the client after "its" reset, and the
client's kernel answers it with a reset), or drops the segment and resets only the server (the client, which got
no reset, sends it again 200 ms later, and the server's kernel answers with a reset). The side that went on after
its reset gives the box away where the capture sees it; the other capture shows a real end's reset.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from boxnet import BoxNet
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
    # (at the server: the client's kernel answered the server's 220 or ServerHello with a reset, its own)
    40106: ("starttls", "smtplib", ("aborted", "middlebox", "starttls-refused", "reset-forged"),
            ("aborted", "client", "tls-not-started", None)),
    40107: ("hello", "curl", ("aborted", "middlebox", "tls-handshake-failed", "reset-forged"),
            ("aborted", "client", "tls-handshake-failed", None)),
    # (at the client: the server's kernel answered the client's STARTTLS, sent again, with a reset, its own)
    40108: ("starttls", "smtplib", ("aborted", "server", "starttls-refused", None),
            ("aborted", "middlebox", "no-mail-transaction", "reset-forged")),
}
#: the ports whose box copies the TTL of the end it imitates, and the end it resets: ``client`` (the segment
#: goes through) or ``server`` (it is dropped)
COPYING: dict[int, str] = {40106: "client", 40107: "client", 40108: "server"}
RESET_BY_SERVER = 40103


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
    at_client, at_server = tmp / "client.pcap", tmp / "server.pcap"
    cert, key = self_signed(tmp, cn="mx.example.test")
    outputs: dict[int, str] = {}
    started = time.monotonic()
    with BoxNet(f"frs{os.getpid() % 100000}", CLIENT_IP, SERVER_IP) as net:
        r = net.run(net.srv, "sysctl", "-qw", f"net.ipv4.ip_default_ttl={SERVER_TTL}", timeout=30)
        assert r.returncode == 0, r.stderr
        for ns, dev, path in ((net.cli, net.c0, at_client), (net.srv, net.s0, at_server)):
            net.start(ns, "tcpdump", "-i", dev, "-U", "--immediate-mode", "-s", "0", "-w", str(path),
                      "tcp port 25", ready="listening")
        watch = [f"{port}:{what}" + (f":{COPYING[port]}:copy" if port in COPYING else "")
                 for port, (what, *_rest) in PORTS.items() if what]
        net.start(net.box, sys.executable, RSTBOX, "bridge", net.c1, net.s1, str(BOX_TTL), *watch, ready="ready")
        runs = {port: _client_argv(client, port) for port, (_w, client, *_r) in PORTS.items()}
        server = net.start(net.srv, sys.executable, RSTBOX, "server", SERVER_IP, str(cert), str(key),
                           str(sum(1 for argv in runs.values() if argv)), str(RESET_BY_SERVER), ready="ready")
        for port, argv in runs.items():
            if argv is None:
                continue
            res = net.run(net.cli, *argv)
            outputs[port] = f"{res.returncode} {res.stdout} {res.stderr}"
        server.wait(timeout=30)
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
    assert conv["evidence_frame"] == f["frame"]
    other = SERVER_TTL if where == "client" else CLIENT_TTL
    if port in COPYING:
        # the TTL is the imitated end's: what gives the box away is that end going on after "its" reset
        assert "came with" not in f["message"], f["message"]
        assert f"the {'server' if where == 'client' else 'client'} went on sending after it (its bytes in frame " \
            in f["message"], f["message"]
        return
    # the box's TTL on the reset; the other end's own, as the kernel of its namespace sends it
    assert f"came with TTL {BOX_TTL}, " in f["message"] and f"came with TTL {other} (" in f["message"], f["message"]


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
            ttl = BOX_TTL if port not in COPYING else SERVER_TTL if where == "client" else CLIENT_TTL
            assert [(int(r[0]), int(r[3])) for r in mine][:1] == [(forged[0]["frame"], ttl)]
        elif port == RESET_BY_SERVER and where == "client":
            assert [int(r[3]) for r in mine] == [SERVER_TTL]


@pytest.mark.live
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("where", ["client", "server"])
def test_tshark_sees_the_side_go_on(captured: dict[str, Any], where: str) -> None:
    """Where the box copied the TTL, the frame the finding names after the reset is, as tshark shows it, a
    segment of the side whose address the reset carries, with bytes beyond the reset's sequence number."""
    path = captured["paths"][where]
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "tcp.srcport",
                          "-e", "tcp.seq_raw", "-e", "tcp.len", "-e", "tcp.flags.reset"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    rows = {int(r[0]): r for r in (line.split("\t") for line in out.splitlines())}
    checked = 0
    for port, conv in captured["convs"][where].items():
        forged = [f for f in conv["findings"] if f["code"] == "reset-forged"]
        if port not in COPYING or not forged:
            continue
        m = re.search(r"its bytes in frame (\d+)", forged[0]["message"])
        assert m is not None, forged[0]["message"]
        rst, went = rows[forged[0]["frame"]], rows[int(m.group(1))]
        assert rst[4] in ("1", "True") and went[1] == rst[1] and int(went[0]) > int(rst[0])
        assert 0 < (int(went[2]) + int(went[3]) - int(rst[2])) % (1 << 32) < 1 << 30
        checked += 1
    assert checked == sum(1 for p in COPYING if p in captured["outputs"]
                          and PORTS[p][2 if where == "client" else 3][3] is not None)


@pytest.mark.live
def test_it_stays_quick(captured: dict[str, Any]) -> None:
    assert captured["seconds"] < 20, captured["seconds"]
