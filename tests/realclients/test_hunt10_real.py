"""A real TLS server's answer to a client's plaintext in the middle of the handshake (the
twenty-second session's hunt, captures/scenarios_hunt10.py).

The harness's server starts TLS for real after its 220 (CPython's ssl, OpenSSL). A scripted
client sends a real ClientHello (OpenSSL's, through ``ssl.SSLObject``), reads the server's answer
(until 0.3 s pass with nothing more), then sends QUIT in the clear, as PHPMailer does when it
gives up on TLS. OpenSSL reads those bytes as a record header ("wrong version number" or the
like) and ends the connection. pcapsmtp blamed the server for that end ("closed the connection
after the ServerHello"); the QUIT is what ended the handshake, the client gave up on TLS at once:
the client's, at the QUIT. TLS 1.3 and TLS 1.2 (the client capped at 1.2).

Marked ``live`` (tcpdump on lo, root), like every real-client test.
"""
from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest

import realclients_harness as h
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
from pcapsmtp.model import SMTP_PORTS

pytestmark = pytest.mark.live


def _analyze(pcap: Path, port: int) -> list[dict]:
    res = analyze_file(str(pcap), AnalysisConfig(ports=SMTP_PORTS | {port}))
    assert res.error is None, res.error
    return res.conversations


def _quit_mid_handshake(port: int, ca: Path, top: ssl.TLSVersion) -> bytes:
    """EHLO, STARTTLS, a real ClientHello; the server's answer read (2 s for its first bytes, then
    until 0.3 s pass with nothing more); QUIT in the clear 5 ms later; then read until the server
    leaves. Returns what the
    server sent after the QUIT."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.maximum_version = top
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s, s.makefile("rb") as f:
        f.readline()
        s.sendall(b"EHLO client.example.org\r\n")
        while f.readline()[3:4] == b"-":
            pass
        s.sendall(b"STARTTLS\r\n")
        assert f.readline().startswith(b"220 ")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        s.sendall(out.read())
        s.settimeout(2)
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
                s.settimeout(0.3)
        except TimeoutError:
            pass
        assert got[:1] == b"\x16", got[:16]       # the server's answer: a handshake record
        time.sleep(0.005)
        s.sendall(b"QUIT\r\n")
        s.settimeout(10)
        after = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                after += chunk
        except OSError:
            pass
        return after


@pytest.mark.parametrize("top, version", [(ssl.TLSVersion.TLSv1_3, "TLS 1.3"), (ssl.TLSVersion.TLSv1_2, "TLS 1.2")])
def test_a_real_tls_server_ending_on_a_quit_mid_handshake_is_the_clients(
        cert: tuple[Path, Path], tmp_path: Path, top: ssl.TLSVersion, version: str) -> None:
    from tsharkfilter import frames_matching
    srv = h.ByteServer(h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="tls"), *cert).start()
    pcap = tmp_path / "capture.pcap"
    try:
        with h.Tcpdump(pcap, srv.port):
            after = _quit_mid_handshake(srv.port, cert[0], top)
    finally:
        srv.stop()
    assert srv.conns[0].tls_error, "the server's TLS did not fail"
    (conv,) = _analyze(pcap, srv.port)
    (quit_,) = frames_matching(pcap, f"tcp.dstport == {srv.port} && tcp.payload == 51:55:49:54:0d:0a")
    ends = frames_matching(pcap, f"tcp.srcport == {srv.port} && (tcp.flags.fin == 1 || tcp.flags.reset == 1)")
    assert ends and min(ends) > quit_
    # (whatever the server sent after the QUIT, an alert or nothing, came after it)
    server_tls = frames_matching(pcap, f"tcp.srcport == {srv.port} && tls")
    assert server_tls and min(server_tls) < quit_
    assert conv["tls"]["version"] == version
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case"), conv["evidence_frame"]) == (
        "aborted", "client", "tls-handshake-failed", None, quit_), conv
    assert "'QUIT' in the clear" in conv["detail"] and "gave up on TLS at once" in conv["detail"], conv["detail"]
    alerts = [f for f in conv["findings"] if f["code"] == "tls-alert"]
    assert all(f["side"] == "server" and f["frame"] > quit_ for f in alerts), conv["findings"]
    assert bool(alerts) == (after != b""), (after[:16], conv["findings"])
