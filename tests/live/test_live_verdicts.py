"""``pcapsmtp live -i lo`` against real SMTP peers: each delivery's verdict appears while the
process runs, SIGINT/SIGTERM end it with a summary, frame numbers refer to the written pcapng.

Servers (aiosmtpd, see conftest): ``compliant`` (real STARTTLS), ``cisco`` (``250-STARTTLS``
first, the domain second), ``refuse`` (454 to STARTTLS). Clients: smtplib (opportunistic) and
swaks (``--tls-optional``). smtplib never looks for keywords on the first EHLO line, swaks
does (see docs/clients.md, column C2).
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
from runshared import LO_SMTP_PORTS, run_lock

pytestmark = pytest.mark.live

HOST = "127.0.0.1"

#: (server, client) -> (outcome, caused_by, reason)
EXPECTED = {
    ("compliant", "smtplib"): ("tls", "none", "tls-established"),
    ("compliant", "swaks"): ("tls", "none", "tls-established"),
    ("cisco", "smtplib"): ("plaintext", "server", "starttls-misplaced"),
    ("cisco", "swaks"): ("tls", "none", "tls-established"),
    ("refuse", "smtplib"): ("plaintext", "server", "starttls-refused"),
    ("refuse", "swaks"): ("plaintext", "server", "starttls-refused"),
}
OFFERED = {"compliant": "valid", "cisco": "misplaced", "refuse": "valid"}

#: Seconds a verdict may take to appear after its delivery ended (target: 1 s; the margin is
#: for a loaded CI machine).
LATENCY = 4.0


def _tshark_frames(pcap: Path) -> dict[int, dict[str, str]]:
    r = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-E", "separator=|",
                        "-e", "frame.number", "-e", "tcp.stream", "-e", "tcp.srcport",
                        "-e", "tcp.dstport", "-e", "tcp.len"],
                       capture_output=True, text=True, check=True)
    out = {}
    for line in r.stdout.splitlines():
        num, stream, sport, dport, tlen = line.split("|")
        out[int(num)] = {"stream": stream, "sport": sport, "dport": dport, "len": tlen}
    return out


def _frames_in(value: Any, key: str = "") -> list[int]:
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _frames_in(v, k)]
    if isinstance(value, list):
        return [n for v in value for n in _frames_in(v, key)]
    if isinstance(value, int) and not isinstance(value, bool) and (
            key in ("frame", "frames", "first_frame") or key.endswith("_frame")):
        return [value]
    return []


def _deliver_all(servers: Any, clients: Any, live: Any,
                 check_latency: bool = True) -> dict[int, tuple[str, str]]:
    deliveries: dict[int, tuple[str, str]] = {}
    for server, port in servers.ports.items():
        for client in ("smtplib", "swaks"):
            cport = getattr(clients, client)(HOST, port)
            deliveries[cport] = (server, client)
            if check_latency:
                t0 = time.monotonic()
                seen = live.wait_for(
                    lambda convs, p=cport: any(c["client"]["port"] == p for c in convs),
                    timeout=LATENCY)
                assert seen, (f"no verdict for {server}/{client} (client port {cport}) within "
                              f"{LATENCY}s of the end of the delivery: {live.lines[-3:]}")
                assert time.monotonic() - t0 <= LATENCY
    return deliveries


def _check_verdicts(convs: list[dict[str, Any]], deliveries: dict[int, tuple[str, str]],
                    ports: dict[str, int]) -> dict[int, dict[str, Any]]:
    mine = {c["client"]["port"]: c for c in convs if c["client"]["port"] in deliveries}
    assert set(mine) == set(deliveries), "a delivery has no verdict"
    assert len([c for c in convs if c["client"]["port"] in deliveries]) == len(deliveries), \
        "a delivery got more than one verdict"
    wrong = {(s, cl): (mine[p]["outcome"], mine[p]["caused_by"], mine[p]["reason"])
             for p, (s, cl) in deliveries.items()}
    wrong = {k: v for k, v in wrong.items() if v != EXPECTED[k]}
    assert not wrong, f"verdicts differ from the expected ones: {wrong}"
    for cport, (server, client) in deliveries.items():
        c = mine[cport]
        assert c["server"] == {"ip": HOST, "port": ports[server]}
        assert c["client"]["ip"] == HOST
        assert c["starttls"]["offered"] == OFFERED[server], f"{server}/{client}"
        codes = {f["code"] for f in c.get("findings", [])}
        if server == "cisco":
            assert "ehlo-keyword-as-domain" in codes
            assert c["ehlo_reply"]["lines"][:2] == ["STARTTLS", "mx.example.test"]
        if server == "refuse":
            assert c["starttls"]["requested"] is True
            assert c["starttls"]["reply_code"] == 454
        if (server, client) == ("cisco", "smtplib"):
            assert c["starttls"]["requested"] is False
        if EXPECTED[(server, client)][0] == "tls":
            assert c["tls"]["established"] is True
    return mine


def _check_frames_against_tshark(pcap: Path, convs: dict[int, dict[str, Any]]) -> None:
    if shutil.which("tshark") is None:
        return
    frames = _tshark_frames(pcap)
    for cport, c in convs.items():
        assert c["file"] == str(pcap)
        ports = {str(cport), str(c["server"]["port"])}
        first = frames[c["first_frame"]]
        assert {first["sport"], first["dport"]} == ports
        assert int(first["stream"]) == c["stream"], "stream must equal tshark's tcp.stream"
        for n in _frames_in(c):
            f = frames[n]
            assert {f["sport"], f["dport"]} == ports, f"frame {n} is not in this conversation"
        for n in c["ehlo_reply"]["frames"]:
            assert frames[n]["sport"] == str(c["server"]["port"]) and int(frames[n]["len"]) > 0


def _check_summary(summary: dict[str, Any], pcap: Path | None, n: int) -> None:
    cap = summary["capture"]
    assert cap["interface"] == "lo"
    assert cap["received"] > 10 * n
    assert cap["dropped_by_kernel"] == 0
    if pcap is not None and shutil.which("tshark"):
        assert cap["received"] == len(_tshark_frames(pcap))
    text = repr(summary)
    for reason in ("tls-established", "starttls-misplaced", "starttls-refused"):
        assert reason in text, f"summary lacks {reason}: {summary}"


def test_verdicts_as_they_happen_then_summary_on_sigint(smtp_servers: Any, smtp_clients: Any,
                                                        start_live: Any, tmp_path: Path) -> None:
    pcap = tmp_path / "live.pcapng"
    live = start_live("-i", "lo", "--format", "json", "--write", str(pcap),
                      *[f"--port={p}" for p in smtp_servers.ports.values()])
    live.wait_ready()
    deliveries = _deliver_all(smtp_servers, smtp_clients, live)
    rc = live.stop(signal.SIGINT)
    assert rc == 1, "downgrades were seen: exit status 1"
    assert not [e for e in live.err if "Traceback" in e], "\n".join(live.err)
    convs = _check_verdicts(live.conversations(), deliveries, smtp_servers.ports)
    _check_frames_against_tshark(pcap, convs)
    summary = live.summary()
    _check_summary(summary, pcap, len(deliveries))
    # the live verdicts are those of the file path over the packets it wrote
    from pcapsmtp.engine.analyzer import analyze_path

    offline = {c["client"]["port"]: c for c in analyze_path(str(pcap))}
    for cport, c in convs.items():
        keys = ("stream", "first_frame", "outcome", "caused_by", "reason", "file")
        assert {k: c[k] for k in keys} == {k: offline[cport][k] for k in keys}, cport
    # every line of stdout is JSON: conversations, then the summary last
    assert all(x.startswith("{") for x in live.lines)
    assert '"summary"' in live.lines[-1]


def test_sigterm_also_prints_the_summary(smtp_servers: Any, smtp_clients: Any,
                                         start_live: Any) -> None:
    live = start_live("-i", "lo", "--format", "json",
                      *[f"--port={p}" for p in smtp_servers.ports.values()])
    live.wait_ready()
    cport = smtp_clients.smtplib(HOST, smtp_servers.ports["refuse"])
    assert live.wait_for(lambda convs: any(c["client"]["port"] == cport for c in convs), LATENCY)
    assert live.stop(signal.SIGTERM) == 1
    [c] = [c for c in live.conversations() if c["client"]["port"] == cport]
    assert c["file"] == "live:lo"
    assert c["reason"] == "starttls-refused"
    assert live.summary()["capture"]["received"] > 0


def test_table_format_streams_rows_and_a_summary(smtp_servers: Any, smtp_clients: Any,
                                                 start_live: Any) -> None:
    live = start_live("-i", "lo", *[f"--port={p}" for p in smtp_servers.ports.values()])
    live.wait_ready()
    cport = smtp_clients.smtplib(HOST, smtp_servers.ports["cisco"])
    end = time.monotonic() + LATENCY
    while time.monotonic() < end and not any(str(cport) in x for x in live.lines):
        time.sleep(0.05)
        live._drain()
    assert any(str(cport) in x for x in live.lines), live.lines
    assert live.stop(signal.SIGINT) == 1
    text = "\n".join(live.lines)
    assert "starttls-misplaced" in text
    assert "dropped by the kernel" in text


def test_count_and_duration_end_the_capture(smtp_servers: Any, smtp_clients: Any, start_live: Any,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    live = start_live("-i", "lo", "--format", "json", "-c", "5",
                      *[f"--port={p}" for p in smtp_servers.ports.values()])
    live.wait_ready()
    smtp_clients.smtplib(HOST, smtp_servers.ports["compliant"])
    assert live.proc.wait(timeout=20) in (0, 1)
    live.stop()
    assert live.summary()["capture"]["received"] == 5

    # nothing on lo's SMTP ports meanwhile: a test of another pytest-xdist worker may put some
    # there (tests/realclients/test_hunt_real.py's port 587) and holds the same lock while it does
    with run_lock(tmp_path_factory, LO_SMTP_PORTS):
        t0 = time.monotonic()
        live = start_live("-i", "lo", "--format", "json", "--duration", "1.5")
        live.wait_ready()
        assert live.proc.wait(timeout=20) == 0
        live.stop()
        assert 1.0 <= time.monotonic() - t0 < 15
        assert live.summary()["capture"]["received"] == 0


def test_sigpipe_ends_quietly(smtp_servers: Any, smtp_clients: Any, live_argv: list[str],
                             tmp_path: Path) -> None:
    err = tmp_path / "err.txt"
    ports = " ".join(f"--port={p}" for p in smtp_servers.ports.values())
    cmd = " ".join(live_argv)
    script = (f"{cmd} -i lo --format json {ports} 2>{err} | head -n 1; "
              "echo \"rc=${PIPESTATUS[0]}\"")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    p = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "listening on" not in (
            err.read_text() if err.exists() else ""):
        time.sleep(0.05)
    for _ in range(3):                      # the second verdict meets a closed pipe
        smtp_clients.smtplib(HOST, smtp_servers.ports["refuse"])
        if p.poll() is not None:
            break
        time.sleep(0.5)
    out, _ = p.communicate(timeout=30)
    lines = out.splitlines()
    assert lines[0].startswith("{") and lines[-1] == "rc=0", out
    assert err.read_text().strip().splitlines()[-1].startswith("pcapsmtp live: listening"), \
        err.read_text()


def test_rotated_files_frame_numbers_and_streams_match_tshark(
        smtp_servers: Any, start_live: Any, tmp_path: Path) -> None:
    """Deliveries with large messages, files rotated every 1 MB: each verdict's ``file``,
    frames and ``stream`` are those Wireshark shows when it opens that file."""
    import smtplib
    import ssl

    if shutil.which("tshark") is None:
        pytest.skip("tshark is needed to check frame numbers in the rotated files")
    pcap = tmp_path / "rot.pcapng"
    live = start_live("-i", "lo", "--format", "json", "--write", str(pcap), "--rotate-mb", "1",
                      *[f"--port={p}" for p in smtp_servers.ports.values()])
    live.wait_ready()
    body = "x" * 76 + "\r\n"
    deliveries: dict[int, tuple[str, str]] = {}
    for i in range(8):
        server = ("refuse", "cisco")[i % 2]     # plaintext: the bytes are on the wire
        with smtplib.SMTP(HOST, smtp_servers.ports[server], local_hostname="c.example.test") as s:
            deliveries[int(s.sock.getsockname()[1])] = (server, "smtplib")
            s.ehlo()
            if s.has_extn("starttls"):
                try:
                    s.starttls(context=ssl.create_default_context())
                except smtplib.SMTPResponseException:
                    pass
            s.sendmail("a@c.example.test", ["b@mx.example.test"], body * 4000)   # ~310 kB
    assert live.wait_for(lambda cs: set(deliveries) <= {c["client"]["port"] for c in cs}, 10)
    live.stop(signal.SIGINT)
    convs = {c["client"]["port"]: c for c in live.conversations()
             if c["client"]["port"] in deliveries}
    files = live.summary()["capture"]["files"]
    assert len(files) >= 2, files
    assert {c["file"] for c in convs.values()} - {str(pcap)}, "some verdict in a later file"
    for cport, c in convs.items():
        frames = _tshark_frames(Path(c["file"]))
        first = frames[c["first_frame"]]
        assert {first["sport"], first["dport"]} == {str(cport), str(c["server"]["port"])}
        assert int(first["stream"]) == c["stream"], (c["file"], c["first_frame"])
        if "continued_in" not in c:
            for n in _frames_in(c):
                assert {frames[n]["sport"], frames[n]["dport"]} == {
                    str(cport), str(c["server"]["port"])}


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
