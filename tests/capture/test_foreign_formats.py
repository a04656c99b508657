"""Capture files in formats other than pcap and pcapng (Solaris snoop, Microsoft Network Monitor,
Sniffer, HP-UX nettl, ...) and captures printed as text.

Each foreign file is written by Wireshark's own ``editcap -F`` from a generated capture, so the
magic numbers in ``capture.pcapfile.FOREIGN_MAGICS`` are checked against real files. What an
admin gets: the verdicts of the pcap it came from, read through tshark, with a note naming the
format; without tshark, one line naming the file, the offset and the format, exit 2. A text file
(``tcpdump -A``'s or tshark's printed output) is named as such.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pcapsmtp.capture.pcapfile import foreign_format, open_source
from pcapsmtp.errors import CaptureError, ForeignCapture

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "captures" / "seed-starttls-first-line.pcap"
# editcap's name of the format -> the name pcapsmtp gives it
FORMATS = {
    "snoop": "Solaris snoop",
    "netmon1": "Microsoft Network Monitor 1.x",
    "netmon2": "Microsoft Network Monitor 2.x",
    "ngsniffer": "Sniffer (DOS)",
    "ngwsniffer_1_1": "NetXRay / Windows Sniffer",
    "ngwsniffer_2_0": "NetXRay / Windows Sniffer",
    "nettl": "HP-UX nettl",
    "visual": "Visual Networks",
    "5views": "5Views",
    "modpcap": "modified (Kuznetsov) pcap",
    "observer": "Viavi Observer",
}
# tshark 4.0 cannot read back editcap's own Observer output ("bad record (time information
# TLV length 12 != 8)"): only its recognition is checked
UNREADABLE_BY_TSHARK = {"observer"}

needs_editcap = pytest.mark.skipif(shutil.which("editcap") is None,
                                   reason="editcap (wireshark-common) is not installed")


def _convert(tmp_path: Path, fmt: str) -> Path:
    out = tmp_path / f"capture.{fmt}"
    subprocess.run(["editcap", "-F", fmt, str(SOURCE), str(out)], check=True,
                   capture_output=True)
    return out


def _cli(*args: str, path: str | None = None, stdin: bytes | None = None
         ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "pcapsmtp", *args], capture_output=True,
                          env=env, cwd=str(REPO), timeout=120, check=False,
                          input=None if stdin is None else stdin.decode("latin-1"),
                          text=True, encoding="latin-1")


def _verdicts(stdout: str) -> list[tuple[object, ...]]:
    rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [(c["stream"], c["outcome"], c["caused_by"], c["reason"], c["evidence_frame"],
             [(f["code"], f["frame"]) for f in c["findings"]])
            for c in rows if "outcome" in c]


@needs_editcap
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_editcap_output_is_named(tmp_path: Path, fmt: str) -> None:
    head = _convert(tmp_path, fmt).read_bytes()[:64]
    assert foreign_format(head) == FORMATS[fmt]
    with pytest.raises(ForeignCapture) as info:
        src, _ = open_source(str(tmp_path / f"capture.{fmt}"))
        src.close()
    assert (info.value.offset, info.value.kind) == (0, FORMATS[fmt])


@needs_editcap
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("fmt", sorted(set(FORMATS) - UNREADABLE_BY_TSHARK))
def test_read_through_tshark_with_a_note(tmp_path: Path, fmt: str) -> None:
    want = _cli("analyze", "--format", "json", str(SOURCE))
    got = _cli("analyze", "--format", "json", str(_convert(tmp_path, fmt)))
    assert _verdicts(want.stdout) and _verdicts(got.stdout) == _verdicts(want.stdout)
    assert got.returncode == want.returncode
    assert f"a {FORMATS[fmt]} capture, not pcap or pcapng: read with tshark" in got.stderr
    assert "Traceback" not in got.stderr


@needs_editcap
def test_without_tshark_one_line_and_exit_2(tmp_path: Path) -> None:
    f = _convert(tmp_path, "netmon2")
    bare = tmp_path / "bin"
    bare.mkdir()           # a PATH without tshark (the interpreter is called by its full path)
    got = _cli("analyze", str(f), path=str(bare))
    assert got.returncode == 2
    assert got.stderr.splitlines() == [
        f"pcapsmtp: error: {f}: at byte offset 0: a Microsoft Network Monitor 2.x capture, not "
        "pcap or pcapng: read it with --engine tshark, or convert it with "
        "'editcap -F pcapng FILE OUT.pcapng'"]


@needs_editcap
def test_standard_input_is_not_read_twice(tmp_path: Path) -> None:
    data = _convert(tmp_path, "snoop").read_bytes()
    got = _cli("analyze", "-", stdin=data)
    assert got.returncode == 2
    assert got.stderr.splitlines() == [
        "pcapsmtp: error: -: at byte offset 0: a Solaris snoop capture, not pcap or pcapng: "
        "read it with --engine tshark, or convert it with 'editcap -F pcapng FILE OUT.pcapng'"]


@needs_editcap
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_annotate_asks_for_a_conversion(tmp_path: Path) -> None:
    f = _convert(tmp_path, "snoop")
    out = tmp_path / "out.pcapng"
    got = _cli("annotate", str(f), "-o", str(out))
    assert got.returncode == 2 and not out.exists()
    assert got.stderr.splitlines()[-1] == (
        f"pcapsmtp: error: {f}: a Solaris snoop capture: annotate copies the records of a pcap or "
        "pcapng file; convert it first ('editcap -F pcapng FILE OUT.pcapng')")


def _text_error(tmp_path: Path, text: bytes) -> CaptureError:
    f = tmp_path / "printed.txt"
    f.write_bytes(text)
    with pytest.raises(CaptureError) as info:
        src, _ = open_source(str(f))
        src.close()
    assert not isinstance(info.value, ForeignCapture)
    return info.value


def test_tcpdump_printed_output_is_a_text_file(tmp_path: Path) -> None:
    err = _text_error(tmp_path, b"10:00:00.000000 IP 192.0.2.10.40314 > 198.51.100.25.25: "
                                b"Flags [S], seq 1, win 64240, length 0\n")
    assert (err.offset, err.message) == (0, (
        "a text file, not a capture: it starts with '10:00:00.000000 IP 192.0.2.10.40314 > 19' "
        "(a capture printed as text cannot be read; write it with 'tcpdump -w FILE')"))


def test_tshark_summary_with_arrows_is_a_text_file(tmp_path: Path) -> None:
    line = "    1 0.000000   192.0.2.10 \u2192 198.51.100.25 TCP 74 40314 \u2192 25 [SYN]\n"
    err = _text_error(tmp_path, line.encode() * 20)     # the sample cuts an arrow in two
    assert err.message.startswith("a text file, not a capture: it starts with "
                                  "'1 0.000000   192.0.2.10 \u2192 198.51.100.25' ")


def test_binary_junk_keeps_the_magic_message(tmp_path: Path) -> None:
    err = _text_error(tmp_path, b"DPI \x00\x01" * 10)
    assert err.message == "not a pcap or pcapng file: it starts with bytes 44 50 49 20 ('DPI ')"


def test_aix_iptrace_header_is_named() -> None:
    # AIX iptrace files start with their version string (Wireshark's iptrace reader checks it)
    assert foreign_format(b"iptrace 2.0" + bytes(40)) == "AIX iptrace"
    assert foreign_format(b"iptrace 1.0" + bytes(40)) == "AIX iptrace"
    assert foreign_format(b"\xd4\xc3\xb2\xa1" + bytes(20)) is None
