"""Real clients against a server that stalls in the middle of its answer to the ClientHello.

The server (``ByteServer`` mode ``midanswer``) answers STARTTLS with 220, runs a real TLS server
(OpenSSL, through Python's ssl over a MemoryBIO) on the client's ClientHello and sends its answer
without the last message the client waits for: in TLS 1.2 every handshake message but the
ServerHelloDone, in TLS 1.3 the ServerHello, the ChangeCipherSpec and the encrypted records but
the last, the Finished. Then it sends nothing and keeps the connection open until the client
leaves: a server stalled on a slow signature, an OCSP fetch or a hung TLS stack.

The client's TCP acknowledges the partial answer and the client waits for the rest until its
own handshake timeout (2 s here) closes, resets or alerts. pcapsmtp blames the server
(``aborted / server / tls-handshake-failed``, case ``server-silent``), its ``no-answer`` finding
at the answer's last record (tshark's frame of it), whoever's timeout ended it: the hunt rules
of verdict.py (``_gave_up_mid_answer``), tested before only with generated captures
(captures/scenarios_hunt6.py).

The TLS version is pinned on the server, once per version (the server's minimum and maximum), so
every client has a TLS 1.2 and a TLS 1.3 conversation; all clients run at the same time, each
against a server of its own, under one tcpdump per version. Clients whose timeout does not
bound the TLS handshake (swaks, msmtp) are killed at three times it, and the kernel closes their
connection (a FIN) as any supervisor's timeout would: the server's too. The same capture cut
before the first of those kills (editcap), ending while they still wait, blames nobody: the
handshake had not ended (``incomplete``).

Marked ``live`` (tcpdump on lo, root), like every real-client test.
"""
from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

import realclients_harness as h
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
from pcapsmtp.model import SMTP_PORTS
from test_real_clients import (CLIENTS, HANDSHAKE_NOT_TIMED, HANG_LIMIT, STALL_KILL, client_runner, run_side_by_side,
                               verdict)

pytestmark = pytest.mark.live

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@dataclass
class MidRun:
    """One client's run against its own stalled server, in the capture shared by every client."""

    run: h.ClientRun
    conns: list[h.ConnRecord]
    convs: list[dict[str, Any]]
    wire: h.Wire
    #: the conversations of the capture cut before the first kill (killed clients only)
    cut_convs: list[dict[str, Any]] | None = None


@pytest.fixture(scope="module")
def mid_runs(cert: tuple[Path, Path], go_binary: Path | None, node_prefix: Path | None,
             tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict[str, MidRun | str]]:
    """Per TLS version, once: every available client against a ``midanswer`` server of its own
    pinned to that version, all at the same time under one tcpdump, one analysis and one tshark
    pass. A client that cannot run here maps to its skip reason."""
    done: dict[str, dict[str, MidRun | str]] = {}

    def get(version: str) -> dict[str, MidRun | str]:
        if version in done:
            return done[version]
        if os.geteuid() != 0 or shutil.which("tcpdump") is None:
            pytest.skip("tcpdump on lo needs root and tcpdump (CI runs these as root)")
        tmp = tmp_path_factory.mktemp(f"midanswer-{version}")
        runners = {n: client_runner(n, go_binary, node_prefix) for n in CLIENTS}
        out: dict[str, MidRun | str] = {n: r for n, r in runners.items() if isinstance(r, str)}
        names = [n for n in CLIENTS if n not in out]
        servers = {}
        for n in names:
            srv = h.ByteServer(h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="midanswer"), *cert)
            srv.ctx.minimum_version = srv.ctx.maximum_version = VERSIONS[version]
            servers[n] = srv.start()
        ports = [servers[n].port for n in names]
        runs, res, wire, pcap = run_side_by_side(
            tmp, cert[0], names, runners, servers,
            lambda n: STALL_KILL if n in HANDSHAKE_NOT_TIMED else HANG_LIMIT)
        cut = _cut_before_kills(pcap, wire, [servers[n].port for n in names if runs[n].killed], ports)
        for n in names:
            port = servers[n].port
            out[n] = MidRun(runs[n], list(servers[n].conns),
                            [c for c in res.conversations if c["server"]["port"] == port],
                            replace(wire, port=port),
                            [c for c in cut if c["server"]["port"] == port] if runs[n].killed else None)
        done[version] = out
        return out
    return get


def _cut_before_kills(pcap: Path, wire: h.Wire, killed: list[int], ports: list[int]) -> list[dict[str, Any]]:
    """The conversations of ``pcap`` cut (editcap) before the first FIN or RST of the killed
    clients' conversations (servers on ``killed``): a capture that ends while they wait."""
    if not killed:
        return []
    if shutil.which("editcap") is None:
        pytest.skip("editcap is not installed (apt-get install wireshark-common)")
    streams = {row.stream for row in wire.rows if row.src_port in killed}
    first = min(row.frame for row in wire.rows if row.stream in streams and row.fin_or_rst)
    out = pcap.with_name("before-kill.pcap")
    subprocess.run(["editcap", "-r", str(pcap), str(out), f"1-{first - 1}"], check=True, capture_output=True,
                   timeout=60)
    res = analyze_file(str(out), AnalysisConfig(ports=SMTP_PORTS | set(ports)))
    assert res.error is None, res.error
    return res.conversations


def mid_describe(r: MidRun) -> str:
    conv = r.convs[0] if r.convs else {}
    return (f"client exit {r.run.returncode} after {r.run.seconds:.1f} s; server saw "
            f"{[c.commands for c in r.conns]}; verdicts {[verdict(c) for c in r.convs]} case {conv.get('case')} "
            f"findings {[(f['code'], f['side'], f['frame']) for f in conv.get('findings', [])]}; "
            f"detail {conv.get('detail')}\n{r.run.output[-1500:]}")


def last_server_record_frame(r: MidRun, stream: int) -> int:
    """tshark's frame of the server's last TLS record in ``stream``."""
    return max(row.frame for row in r.wire.rows if row.stream == stream and row.src_port == r.wire.port
               and row.record_lengths)


@pytest.mark.parametrize("version", list(VERSIONS))
@pytest.mark.parametrize("name", CLIENTS)
def test_server_stalls_mid_answer(name: str, version: str,
                                  mid_runs: Callable[[str], dict[str, MidRun | str]]) -> None:
    """The client acknowledged the partial answer and waited for the rest until its own timeout
    (or its kill): the server's, case ``server-silent``, at the answer's last record."""
    got = mid_runs(version)[name]
    if isinstance(got, str):
        pytest.skip(got)
    r = got
    assert len(r.conns) == 1 and r.conns[0].starttls and not r.conns[0].mail, mid_describe(r)
    assert len(r.convs) == 1 and r.run.returncode != 0, mid_describe(r)     # no retry, no mail
    assert r.run.killed is (name in HANDSHAKE_NOT_TIMED), mid_describe(r)
    conv, s = r.convs[0], r.convs[0]["stream"]
    r.wire.check_dialogue_frames(conv)
    (hello,) = r.wire.frames(s, handshake=1)
    (server_hello,) = r.wire.frames(s, handshake=2)
    last = last_server_record_frame(r, s)
    # what the server sent, as tshark reads it: no ServerHelloDone (14) in TLS 1.2; in TLS 1.3
    # three encrypted records (EE, Certificate, CertificateVerify), not the fourth (Finished)
    server_rows = [row for row in r.wire.rows if row.stream == s and row.src_port == r.wire.port]
    assert not any(14 in row.handshake for row in server_rows)
    if version == "1.3":
        assert sum(row.opaque_types.count(23) for row in server_rows) == 3, mid_describe(r)
    else:
        assert any(12 in row.handshake for row in server_rows), mid_describe(r)    # ServerKeyExchange
    assert conv["tls"]["client_hello_frame"] == hello and conv["tls"]["server_hello_frame"] == server_hello
    assert conv["tls"]["version"] == f"TLS {version}", mid_describe(r)
    assert conv["tls"]["established"] is False
    assert verdict(conv) == ("aborted", "server", "tls-handshake-failed"), mid_describe(r)
    assert conv["case"] == "server-silent", mid_describe(r)
    codes = [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]
    assert ("no-answer", "server", last) in codes, mid_describe(r)
    assert conv["evidence_frame"] == last, mid_describe(r)
    if r.run.killed:
        # the capture cut before the kill's FIN: it ends while the client still waits, and the
        # verdict says the handshake had not ended, not whose fault it was
        assert r.cut_convs is not None and len(r.cut_convs) == 1, mid_describe(r)
        cut = r.cut_convs[0]
        assert verdict(cut) == ("incomplete", "unknown", "incomplete"), (verdict(cut), cut["detail"])
        assert cut["tls"]["server_hello_frame"] == server_hello and "no-answer" not in [
            f["code"] for f in cut["findings"]], cut["findings"]
