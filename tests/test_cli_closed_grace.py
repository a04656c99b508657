"""``--closed-grace``: a closed conversation leaves the stream-numbering table after the grace
(default 20 s of capture time); ``never`` keeps numbering equal to Wireshark's even when a
stray segment of that conversation comes back much later."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw
from scapy.utils import wrpcap

from pcapsmtp.commands.main import main

C, S = "192.0.2.10", "198.51.100.25"


def _conv(sport: int, dport: int, t0: float, client: list[bytes], server: list[bytes]) -> list:
    """A whole TCP conversation: handshake, alternating payloads, FIN both ways."""
    pkts = []
    cs, ss = 1000, 5000
    t = t0

    def add(src: str, dst: str, sp: int, dp: int, flags: str, seq: int, ack: int,
            data: bytes = b"") -> None:
        nonlocal t
        p = IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack)
        if data:
            p = p / Raw(data)
        p.time = t
        t += 0.01
        pkts.append(p)

    add(C, S, sport, dport, "S", cs, 0)
    add(S, C, dport, sport, "SA", ss, cs + 1)
    cs += 1
    ss += 1
    add(C, S, sport, dport, "A", cs, ss)
    for i in range(max(len(client), len(server))):
        if i < len(server):
            add(S, C, dport, sport, "PA", ss, cs, server[i])
            ss += len(server[i])
        if i < len(client):
            add(C, S, sport, dport, "PA", cs, ss, client[i])
            cs += len(client[i])
    add(C, S, sport, dport, "FA", cs, ss)
    add(S, C, dport, sport, "FA", ss, cs + 1)
    add(C, S, sport, dport, "A", cs + 1, ss + 1)
    return pkts


@pytest.fixture()
def capture(tmp_path: Path) -> Path:
    web = _conv(40000, 80, 0.0, [b"GET / HTTP/1.0\r\n\r\n"], [b"HTTP/1.0 200 OK\r\n\r\n"])
    # another conversation starting after the grace: forgetting happens when one is created
    other = _conv(40002, 443, 50.0, [b"\x16\x03\x01\x00\x01\x01"], [b"\x16\x03\x03\x00\x01\x02"])
    late = IP(src=C, dst=S) / TCP(sport=40000, dport=80, flags="A", seq=1019, ack=5020)
    late.time = 100.0                      # a stray ACK of the web conversation, 100 s later
    smtp = _conv(40001, 25, 101.0, [b"EHLO c.example\r\n", b"QUIT\r\n"],
                 [b"220 mx.example.com ESMTP\r\n", b"250-mx.example.com\r\n250 STARTTLS\r\n",
                  b"221 bye\r\n"])
    path = tmp_path / "late.pcap"
    wrpcap(str(path), web + other + [late] + smtp)
    return path


def _stream(path: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> int:
    main(["analyze", "--format", "json", "-q", *extra, str(path)])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["server"]["port"] for r in rows] == [25]
    return rows[0]["stream"]


def test_default_grace_forgets_the_closed_conversation(capture: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # the stray ACK comes 99 s after the close: a new conversation for us (documented)
    assert _stream(capture, capsys=capsys) == 3
    assert _stream(capture, "--closed-grace", "120", capsys=capsys) == 2


def test_never_keeps_wireshark_numbering(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _stream(capture, "--closed-grace", "never", capsys=capsys) == 2


@pytest.mark.tshark
def test_wireshark_numbers_it_as_never_does(capture: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    out = subprocess.run(["tshark", "-n", "-r", str(capture), "-Y", "tcp.port == 25",
                          "-T", "fields", "-e", "tcp.stream"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert set(out) == {"2"}
