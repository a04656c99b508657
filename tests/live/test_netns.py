"""Relay-shaped: a sending relay and a receiving MX in two network namespaces joined by a veth
pair. ``pcapsmtp live`` runs in the relay's namespace on its Ethernet interface (real MAC
headers, the real SMTP ports 25 and 587, no ``--port``), as it would on a relay host.

Skipped, with the reason, where network namespaces cannot be created.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.live, pytest.mark.netns]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from vethns import ip, veth_namespaces  # noqa: E402

RELAY_IP, MX_IP = "10.231.7.1", "10.231.7.2"


@pytest.fixture
def namespaces(tmp_path: Path) -> Iterator[tuple[str, str]]:
    tag = f"{os.getpid() % 100000}"
    try:
        names = (f"pcs-relay-{tag}", f"pcs-mx-{tag}")
        with veth_namespaces(names, ("pcsr0", "pcsm0")) as (relay, mx):
            for ns, dev, addr in ((relay, "pcsr0", RELAY_IP), (mx, "pcsm0", MX_IP)):
                ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
                ip("-n", ns, "link", "set", dev, "up")
                ip("-n", ns, "link", "set", "lo", "up")
            yield relay, mx
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot build the veth pair: {exc.stderr.strip()}")


_SERVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {here!r})
    import conftest
    import ssl
    cert, key = conftest.make_cert(Path({tmp!r}))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    ctrls = []
    for port, cisco in ((25, True), (587, False)):
        c = conftest._controller_class(False)(
            conftest._Sink(cisco=cisco), hostname={mx!r}, port=port,
            server_hostname="mx.example.test", tls_context=ctx, require_starttls=False,
            auth_require_tls=False, ident="ESMTP test")
        c.start()
        ctrls.append(c)
    print("ready", flush=True)
    sys.stdin.read()
    for c in ctrls:
        c.stop()
""")

_CLIENT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {here!r})
    import conftest
    if sys.argv[1] == "swaks":
        print(conftest.deliver_swaks({mx!r}, int(sys.argv[2]), local={relay!r}))
    else:
        print(conftest.deliver_smtplib({mx!r}, int(sys.argv[2])))
""")


def test_relay_namespace_sees_its_deliveries(namespaces: tuple[str, str], start_live: Any,
                                             tmp_path: Path) -> None:
    relay, mx = namespaces
    env = dict(os.environ, PYTHONPATH=str(REPO))
    server = subprocess.Popen(
        ["ip", "netns", "exec", mx, sys.executable, "-c",
         _SERVER.format(here=str(HERE), tmp=str(tmp_path), mx=MX_IP)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        pcap = tmp_path / "relay.pcapng"
        live = start_live("-i", "pcsr0", "--format", "json", "--write", str(pcap),
                          prefix=["ip", "netns", "exec", relay])
        live.wait_ready()
        assert "EN10MB" in "\n".join(live.err)
        deliveries = {}
        for client, port in (("smtplib", 25), ("swaks", 25), ("smtplib", 587)):
            r = subprocess.run(["ip", "netns", "exec", relay, sys.executable, "-c",
                                _CLIENT.format(here=str(HERE), mx=MX_IP, relay=RELAY_IP), client, str(port)],
                               capture_output=True, text=True, env=env, timeout=120)
            assert r.returncode == 0, r.stderr
            deliveries[int(r.stdout.split()[-1])] = (client, port)
        assert live.wait_for(lambda cs: set(deliveries) <= {c["client"]["port"] for c in cs},
                             timeout=10), live.lines
        assert live.stop(signal.SIGINT) == 1
    finally:
        if server.stdin:
            server.stdin.close()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    convs = {c["client"]["port"]: c for c in live.conversations()}
    got = {deliveries[p]: (convs[p]["outcome"], convs[p]["reason"]) for p in deliveries}
    assert got == {
        ("smtplib", 25): ("plaintext", "starttls-misplaced"),
        ("swaks", 25): ("tls", "tls-established"),
        ("smtplib", 587): ("tls", "tls-established"),
    }
    for p in deliveries:
        assert convs[p]["client"]["ip"] == RELAY_IP and convs[p]["server"]["ip"] == MX_IP
        assert convs[p]["file"] == str(pcap)
    summary = live.summary()
    assert summary["capture"]["interface"] == "pcsr0"
    assert summary["capture"]["dropped_by_kernel"] == 0
    assert MX_IP in repr(summary.get("servers", summary))
    if shutil.which("tshark"):
        r = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "eth.src"],
                           capture_output=True, text=True, check=True)
        assert {m for m in r.stdout.split() if m != "00:00:00:00:00:00"}, "veth carries real MACs"
