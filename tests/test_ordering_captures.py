"""The captures of captures/scenarios_ordering.py (issue 13, items 6 and 7), cross-checked
against tshark: the conversation is found without ``--port`` (by content), its ``stream`` is
tshark's ``tcp.stream``, and each frame we name carries the bytes we say it does (tshark's own
``tcp.seq`` and ``tcp.payload`` of that frame). The verdicts themselves are checked against
expected.json by tests/test_captures_expected.py."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_path

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
NAMES = ["content-1byte-greeting-2600.pcap", "content-reordered-greeting-10025.pcap",
         "merged-swapped-directions.pcap", "merged-reply-before-command.pcap",
         "merged-ack-overtakes-data.pcap"]


def _tshark(path: Path) -> dict[int, tuple[int, int, int, bytes]]:
    """frame -> (tcp.stream, tcp.srcport, relative tcp.seq, payload)."""
    out = subprocess.run(
        ["tshark", "-r", str(path), "-o", "tcp.desegment_tcp_streams:FALSE", "-T", "fields",
         "-e", "frame.number", "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.seq",
         "-e", "tcp.payload"], capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        f = line.split("\t")
        rows[int(f[0])] = (int(f[1]), int(f[2]), int(f[3]), bytes.fromhex(f[4].replace(":", "")))
    return rows


def _byte_frames(rows: dict[int, tuple[int, int, int, bytes]], port: int) -> dict[int, int]:
    """Stream offset -> the first frame (in file order) carrying that byte, from ``port``."""
    first: dict[int, int] = {}
    for frame in sorted(rows):
        _stream, src, seq, payload = rows[frame]
        if src == port:
            for k in range(len(payload)):
                first.setdefault(seq - 1 + k, frame)
    return first


@pytest.mark.tshark
@pytest.mark.parametrize("name", NAMES)
def test_frames_and_stream_agree_with_tshark(name: str) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    path = CAPTURES / name
    (conv,) = analyze_path(str(path))
    rows = _tshark(path)
    cport, sport = conv["client"]["port"], conv["server"]["port"]
    assert {r[0] for r in rows.values()} == {conv["stream"]}
    server = _byte_frames(rows, sport)
    client = _byte_frames(rows, cport)
    # the banner's first byte, the EHLO's, the EHLO reply's
    assert conv["greeting"]["frame"] == client[0]
    banner_len = len(conv["banner"]) + 2
    assert conv["ehlo_reply"]["frames"][0] == server[banner_len]
    assert rows[server[0]][3][:1] == b"2"
    if conv["starttls"]["requested"]:
        assert conv["starttls"]["frame"] == client[len(b"EHLO client.example.org\r\n")]


def _no_port_config() -> AnalysisConfig:
    return AnalysisConfig(ports=frozenset())


@pytest.mark.parametrize("name", NAMES)
def test_found_by_content_alone(name: str) -> None:
    """Even with no port counted as SMTP, the conversation is found from its bytes."""
    got: list[dict[str, Any]] = analyze_path(str(CAPTURES / name), _no_port_config())
    assert len(got) == 1
    assert got[0]["client"]["port"] in range(40380, 40390)
