"""Issue #8: broken files end to end, and hostile SMTP with bounded memory and linear time.

Broken files: ``python -m pcapsmtp analyze --format json BROKEN`` prints every conversation it
could decide (valid JSON Lines), exactly one line on stderr naming the file and the byte offset,
and exits 2. Hostile SMTP: huge lines, huge replies, pipelined floods; each run's peak RSS and
time are measured in a subprocess (``/usr/bin/time``-free: ``resource.getrusage`` of a child
that runs one analysis), with generous bounds, and the limits appear as findings.
"""
from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
HOSTILE = REPO / "captures" / "hostile"
sys.path.insert(0, str(REPO / "captures"))

from generate_hostile import (  # noqa: E402
    EHLO_OK, big_line_capture, endless_reply_capture, fast_pcap, pipelined_capture,
)

MAIL = [("C", b"MAIL FROM:<a@example.org>\r\n"), ("S", b"250 Ok\r\n"), ("C", b"RCPT TO:<b@example.com>\r\n"),
        ("S", b"250 Ok\r\n"), ("C", b"QUIT\r\n"), ("S", b"221 Bye\r\n")]
OPEN = [("S", b"220 mx.example.com ESMTP\r\n"), ("C", b"EHLO client.example.org\r\n"), ("S", EHLO_OK)]


def _records(pcap: bytes) -> list[bytes]:
    """The records (16-byte header + data) of a little-endian pcap."""
    out, pos = [], 24
    while pos < len(pcap):
        n = struct.unpack_from("<I", pcap, pos + 8)[0]
        out.append(pcap[pos:pos + 16 + n])
        pos += 16 + n
    return out


def _good_pcap() -> bytes:
    """Two complete conversations (plaintext, client did not request STARTTLS), then the
    opening of a third one."""
    a = fast_pcap(OPEN + MAIL, cport=45001)
    b = fast_pcap(OPEN + MAIL, cport=45002)
    c = fast_pcap(OPEN, cport=45003, close=False)
    return a + b"".join(_records(b)) + b"".join(_records(c))


def _to_pcapng(pcap: bytes) -> bytes:
    def block(t: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", t, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
           block(1, struct.pack("<HHI", 1, 0, 262144))]
    for r in _records(pcap):
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", r)
        ts = sec * 1_000_000 + usec
        out.append(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, caplen, wirelen) + r[16:]))
    return b"".join(out)


GOOD = _good_pcap()
GOOD_NG = _to_pcapng(GOOD)
LAST = _records(GOOD)[-1]

#: non-IP frames (ethertype 0x88b5, local experimental) after the conversations, so that a cut
#: near the end of a compressed file falls after every SMTP packet
_JUNK = b"".join(struct.pack("<IIII", 1, i, 60, 60) + b"\2" * 12 + b"\x88\xb5" + bytes(
    (i * 7 + k) % 251 for k in range(46)) for i in range(3000))

#: name -> (file bytes, byte offset of the damage or None when not exact (gzip))
BROKEN: dict[str, Callable[[], tuple[bytes, int | None]]] = {
    "pcap-record-header-cut": lambda: (GOOD + b"\x01" * 9, len(GOOD)),
    "pcap-record-cut-mid-packet": lambda: (GOOD + LAST[:16 + 20], len(GOOD)),
    "pcap-absurd-caplen": lambda: (GOOD + struct.pack("<IIII", 1, 1, 262145, 262145) + b"\0" * 64,
                                   len(GOOD)),
    "pcapng-block-cut": lambda: (GOOD_NG + _to_pcapng(GOOD)[-40:-10], len(GOOD_NG)),
    "pcapng-length-not-multiple-of-4": lambda: (GOOD_NG + struct.pack("<II", 6, 30) + b"\0" * 18
                                                + struct.pack("<I", 30), len(GOOD_NG)),
    "pcapng-trailing-length-differs": lambda: (GOOD_NG + struct.pack("<II", 6, 36) + b"\0" * 24
                                               + struct.pack("<I", 40), len(GOOD_NG)),
    "pcapng-undefined-interface": lambda: (GOOD_NG + struct.pack("<IIIIIII", 6, 32, 5, 0, 0, 0, 0)
                                           + struct.pack("<I", 32), len(GOOD_NG)),
    "pcapng-absurd-block-length": lambda: (GOOD_NG + struct.pack("<II", 6, 0x7FFFFFFC), len(GOOD_NG)),
    "gzip-truncated": lambda: (gzip.compress(GOOD + _JUNK, mtime=0)[:-200], None),
}


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pcapsmtp", *args], capture_output=True,
                          cwd=REPO, timeout=timeout)


@pytest.fixture(scope="module")
def good_verdicts(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    p = tmp_path_factory.mktemp("good") / "good.pcap"
    p.write_bytes(GOOD)
    r = _cli("analyze", "--format", "json", str(p))
    assert r.returncode == 1, r.stderr   # the client did not request STARTTLS: exit 1
    convs = [json.loads(x) for x in r.stdout.splitlines()]
    assert [c["reason"] for c in convs[:2]] == ["client-did-not-request"] * 2
    return convs


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_file_end_to_end(kind: str, tmp_path: Path, good_verdicts: list[dict[str, Any]]) -> None:
    data, offset = BROKEN[kind]()
    path = tmp_path / f"{kind}.cap"
    path.write_bytes(data)
    r = _cli("analyze", "--format", "json", str(path))
    assert r.returncode == 2, (r.returncode, r.stderr)
    err = r.stderr.decode()
    assert err.endswith("\n") and err.count("\n") == 1, f"want exactly one stderr line: {err!r}"
    assert str(path) in err and "byte offset" in err, err
    if offset is not None:
        assert f"at byte offset {offset}:" in err, err
    lines = r.stdout.decode().splitlines()
    convs = [json.loads(x) for x in lines]          # valid JSON Lines, every line
    decided = {c["client"]["port"]: c for c in convs}
    for want in good_verdicts[:2]:                  # both complete conversations, unchanged
        got = decided.get(want["client"]["port"])
        assert got is not None, f"conversation {want['client']['port']} lost"
        for k in ("outcome", "caused_by", "reason", "first_frame", "evidence_frame", "findings"):
            assert got[k] == want[k], k


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_broken_file_other_formats_still_one_error_line(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(GOOD + b"\x01" * 9)
    r = _cli("analyze", "--format", fmt, str(path))
    assert r.returncode == 2
    assert r.stderr.decode().count("\n") == 1
    assert b"45001" in r.stdout and b"45002" in r.stdout


# ----------------------------------------------------------------------------- bounded resources

from capturecheck import measure as _measure  # noqa: E402


@pytest.fixture(scope="module")
def baseline_rss(tmp_path_factory: pytest.TempPathFactory) -> int:
    p = tmp_path_factory.mktemp("base") / "small.pcap"
    p.write_bytes(fast_pcap(OPEN + MAIL))
    return int(_measure(p)["maxrss_kb"])


def _codes(conv: dict[str, Any]) -> list[str]:
    return [f["code"] for f in conv["findings"]]


def _limit_reported(conv: dict[str, Any]) -> bool:
    return any(c == "limit-reached" or "too-long" in c for c in _codes(conv))


MB = 1024


@pytest.mark.slow
def test_10mb_line_without_crlf(tmp_path: Path, baseline_rss: int) -> None:
    p = tmp_path / "big.pcap"
    p.write_bytes(big_line_capture(10 * 1024 * 1024))
    res = _measure(p)
    assert res["rc"] in (0, 1)
    assert res["maxrss_kb"] - baseline_rss < 60 * MB, res["maxrss_kb"]
    assert res["seconds"] < 30
    (conv,) = res["convs"]
    assert len(conv["greeting"]["argument"]) <= 4096
    assert _limit_reported(conv), f"the cut line is not reported: {_codes(conv)}"


def test_committed_2mb_line(baseline_rss: int) -> None:
    res = _measure(HOSTILE / "line-2mb-no-crlf.pcap")
    (conv,) = res["convs"]
    assert res["maxrss_kb"] - baseline_rss < 40 * MB
    assert len(json.dumps(conv)) < 20_000
    assert _limit_reported(conv), f"the cut line is not reported: {_codes(conv)}"


def test_100k_line_ehlo_reply(baseline_rss: int) -> None:
    res = _measure(HOSTILE / "ehlo-100k-lines.pcap")
    (conv,) = res["convs"]
    assert res["maxrss_kb"] - baseline_rss < 60 * MB
    assert res["seconds"] < 30
    assert len(conv["ehlo_reply"]["lines"]) <= 1000
    assert "limit-reached" in _codes(conv)


def test_reply_that_never_ends(tmp_path: Path, baseline_rss: int) -> None:
    p = tmp_path / "endless.pcap"
    p.write_bytes(endless_reply_capture(300_000))
    res = _measure(p)
    (conv,) = res["convs"]
    assert res["maxrss_kb"] - baseline_rss < 60 * MB
    assert "limit-reached" in _codes(conv)


@pytest.mark.slow
def test_200k_pipelined_commands_bounded_memory(tmp_path: Path, baseline_rss: int) -> None:
    p = tmp_path / "pipe.pcap"
    p.write_bytes(pipelined_capture(200_000))
    res = _measure(p)
    (conv,) = res["convs"]
    assert "limit-reached" in _codes(conv)
    assert res["seconds"] < 60
    assert res["maxrss_kb"] - baseline_rss < 80 * MB, \
        f"peak RSS grew by {(res['maxrss_kb'] - baseline_rss) // MB} MB for 200 000 pipelined commands"


@pytest.mark.slow
def test_time_is_linear_in_pipelined_commands(tmp_path: Path) -> None:
    small, big = tmp_path / "s.pcap", tmp_path / "b.pcap"
    small.write_bytes(pipelined_capture(20_000))
    big.write_bytes(pipelined_capture(80_000))
    t_small = min(_measure(small)["seconds"] for _ in range(2))
    t_big = _measure(big)["seconds"]
    assert t_big < 4 * t_small * 2.0 + 1.0, (t_small, t_big)   # 4x the input: well under 8x time


def test_nul_and_8bit_bytes_are_data() -> None:
    r = _cli("analyze", "--format", "json", str(HOSTILE / "nul-8bit.pcap"))
    assert r.returncode in (0, 1), r.stderr
    (conv,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert conv["outcome"] == "plaintext"
    assert "\\x00" in conv["banner"] or "\x00" in conv["banner"]
