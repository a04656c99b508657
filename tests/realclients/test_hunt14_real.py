"""Resets a real stack ignores, with real clients (the twenty-third session's hunt,
captures/scenarios_hunt14.py).

The harness's server, before its banner, injects a reset with its own address and port towards the
client (a raw IPv4 socket), its sequence number 2^30 past the server's next byte (read from the
SYN-ACK in tcpdump's file), as a blind injection or a NAT's reset of an older connection on the
4-tuple puts one on the wire. Linux drops it without a word (RFC 5961 3.2: outside the window) and
the conversation goes on: Python's smtplib and curl deliver, in TLS after STARTTLS, or in the clear
when the server does not offer it. pcapsmtp ended the conversation at the reset (``aborted``); now
it reads the conversation that went on. A reset 1000 bytes past the next byte (in the window, not
at it) gets Linux's challenge ACK and is dropped too: pcapsmtp read the server's bytes lost there
(``incomplete``); the challenge ACK now drops it (the twenty-fifth session).

Marked ``live`` (tcpdump on lo, root), like every real-client test. Ports come from the kernel.
"""
from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

import realclients_harness as h
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
from pcapsmtp.model import SMTP_PORTS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "captures"))
from generate_hostile import ip_checksum as _checksum  # noqa: E402  (the one RFC 1071 sum)

pytestmark = pytest.mark.live

FAR = 1 << 30
MASK = (1 << 32) - 1


def _syn_ack(pcap: Path, sport: int, cport: int) -> tuple[int, int] | None:
    """The server's ISN and the client's (the SYN-ACK's sequence and acknowledgement numbers, less
    one) from the complete records of tcpdump's file so far (Ethernet on lo), or None."""
    try:
        data = pcap.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < 24:
        return None
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[pos + 8:pos + 12])[0]
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        if len(frame) < incl or len(frame) < 14 + 20 + 20 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        tcp = ip[(ip[0] & 0x0F) * 4:]
        src, dst, seq, ack = struct.unpack("!HHII", tcp[:12])
        if (src, dst) == (sport, cport) and tcp[13] & 0x12 == 0x12:
            return seq, (ack - 1) & MASK
    return None


def inject_reset(sport: int, cport: int, seq: int, ack: int) -> None:
    """A RST+ACK from 127.0.0.1:``sport`` to 127.0.0.1:``cport`` at ``seq``, acknowledging
    ``ack``, sent through a raw socket (the kernel fills the IP checksum and length)."""
    lo = socket.inet_aton("127.0.0.1")
    tcp = struct.pack("!HHIIBBHHH", sport, cport, seq & MASK, ack & MASK, 5 << 4, 0x14, 65535, 0, 0)
    csum = _checksum(lo + lo + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0x4242, 0, 64, socket.IPPROTO_TCP, 0, lo, lo)
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        s.sendto(ip + tcp, ("127.0.0.1", 0))


class ResetFirst(h.ByteServer):
    """A :class:`ByteServer` that, on each connection, injects a reset in its own name ``shift``
    past its next byte, then waits 0.3 s and goes on as configured (banner first)."""

    pcap: Path
    shift: int = FAR
    injected: list[tuple[int, int]]

    async def _dialogue(self, rec: h.ConnRecord, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        cport = writer.get_extra_info("peername")[1]
        deadline = time.monotonic() + 10
        isns = None
        while isns is None and time.monotonic() < deadline:
            isns = _syn_ack(self.pcap, self.port, cport)
            if isns is None:
                await asyncio.sleep(0.02)
        assert isns is not None, "the SYN-ACK is not in tcpdump's file"
        seq = isns[0] + 1 + self.shift
        inject_reset(self.port, cport, seq, isns[1] + 1)
        self.injected.append((cport, seq & MASK))
        await asyncio.sleep(0.3)
        await super()._dialogue(rec, reader, writer)


def _deliver(tmp: Path, cert: tuple[Path, Path], behaviour: h.Behaviour, shift: int,
             client: str) -> tuple[Path, int, ResetFirst, h.ClientRun]:
    srv = ResetFirst(behaviour, *cert)
    srv.pcap, srv.shift, srv.injected = tmp / "capture.pcap", shift, []
    srv.start()
    run = h.run_curl if client == "curl" else h.run_smtplib
    try:
        with h.Tcpdump(srv.pcap, srv.port):
            r = run(srv.port, cert[0], tmp, wait=20, limit=40)
    finally:
        srv.stop()
    return srv.pcap, srv.port, srv, r


def _analyze(pcap: Path, port: int) -> tuple[list[dict], dict]:
    res = analyze_file(str(pcap), AnalysisConfig(ports=SMTP_PORTS | {port}))
    assert res.error is None, res.error
    return res.conversations, res.summary["reassembly"]


def _resets(pcap: Path, port: int) -> list[tuple[int, int]]:
    """tshark: (frame, raw sequence number) of every reset from the server's port."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    p = subprocess.run(["tshark", "-n", "-r", str(pcap), "-Y", f"tcp.flags.reset == 1 && tcp.srcport == {port}",
                        "-T", "fields", "-e", "frame.number", "-e", "tcp.seq_raw"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [(int(a), int(b)) for a, b in (ln.split("\t") for ln in p.stdout.splitlines())]


def _clients() -> list[str]:
    return ["python-smtplib"] + (["curl"] if shutil.which("curl") else [])


@pytest.mark.parametrize("client", _clients())
def test_a_real_tls_delivery_after_a_reset_far_outside_the_window_reads_tls(
        client: str, cert: tuple[Path, Path], tmp_path: Path) -> None:
    """The kernel drops the far reset: the client delivers in TLS after STARTTLS; pcapsmtp reads
    it as tls (it read aborted at the reset)."""
    pcap, port, srv, run = _deliver(tmp_path, cert, h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="tls"), FAR, client)
    assert run.returncode == 0, run.output
    assert len(srv.conns) == 1 and srv.conns[0].tls and srv.conns[0].mail_in_tls, srv.conns
    ((cport, seq),) = srv.injected
    ((rst, rst_seq),) = _resets(pcap, port)
    assert rst_seq == seq
    convs, stats = _analyze(pcap, port)
    (conv,) = convs
    assert conv["client"]["port"] == cport
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("tls", "none", "tls-established")
    assert conv["tls"]["established"] is True
    assert conv["tls"]["client_hello_frame"] > rst
    assert conv["findings"] == []
    assert stats["ignored_resets"] == 1


@pytest.mark.parametrize("client", _clients())
def test_a_real_plaintext_delivery_after_a_reset_far_outside_the_window_reads_plaintext(
        client: str, cert: tuple[Path, Path], tmp_path: Path) -> None:
    """The same reset, a server that does not offer STARTTLS: the client delivers in the clear;
    pcapsmtp reads plaintext, the server's (it read aborted at the reset, the mail hidden)."""
    pcap, port, srv, run = _deliver(tmp_path, cert, h.Behaviour(ehlo=h.SHAPES["none"]), FAR, client)
    assert run.returncode == 0, run.output
    assert len(srv.conns) == 1 and srv.conns[0].mail and not srv.conns[0].tls, srv.conns
    ((rst, _),) = _resets(pcap, port)
    convs, stats = _analyze(pcap, port)
    (conv,) = convs
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("plaintext", "server", "starttls-not-offered")
    assert conv["mail"] is True
    assert conv["evidence_frame"] > rst
    assert stats["ignored_resets"] == 1


def test_a_real_tls_delivery_after_an_in_window_reset_reads_tls(cert: tuple[Path, Path], tmp_path: Path) -> None:
    """The reset 1000 bytes past the server's next byte (in the window, not at it): Linux answers
    it with a challenge ACK (a pure ACK at the client's next byte acknowledging only the server's
    real next byte, RFC 5961 3.2) and drops it; the client delivers in TLS. pcapsmtp read the
    server's bytes sent and lost (``incomplete``); the challenge ACK now drops the reset."""
    pcap, port, srv, run = _deliver(tmp_path, cert, h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="tls"), 1000,
                                    "python-smtplib")
    assert run.returncode == 0, run.output
    assert srv.conns[0].tls and srv.conns[0].mail_in_tls, srv.conns
    ((cport, seq),) = srv.injected
    ((rst, rst_seq),) = _resets(pcap, port)
    assert rst_seq == seq
    # the kernel's challenge ACK: the client's next segment, a pure ACK, a duplicate of its last
    p = subprocess.run(["tshark", "-n", "-r", str(pcap), "-Y", f"frame.number > {rst} && tcp.srcport == {cport}",
                        "-T", "fields", "-e", "frame.number", "-e", "tcp.len",
                        "-e", "tcp.analysis.duplicate_ack_frame"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    challenge, n, dup_of = p.stdout.splitlines()[0].split("\t")
    assert n == "0" and int(dup_of) < rst < int(challenge)
    convs, stats = _analyze(pcap, port)
    (conv,) = convs
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("tls", "none", "tls-established")
    assert conv["tls"]["client_hello_frame"] > rst
    assert conv["findings"] == []
    assert stats["ignored_resets"] == 1
