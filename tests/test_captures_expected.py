"""The synthetic captures in ``captures/``: reproducible, readable by tshark, and analysed as expected.json says.

(a) ``captures/generate.py --out TMP`` rewrites every file byte for byte (determinism);
(b) tshark reads every capture without complaint, with the frame count and ``tcp.stream`` count of expected.json;
(c) ``pcapsmtp.engine.analyzer.analyze_path`` gives, per conversation in order of first frame, the expected verdict,
    findings and evidence frames.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from capturecheck import TSHARK_FIELDS, tshark_frames

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"
EXPECTED: dict[str, Any] = json.loads((CAPTURES / "expected.json").read_text())
NAMES = sorted(EXPECTED)

# The "(running as root) This could be dangerous" notice is tshark talking about us, not about the file.
_BENIGN_STDERR = ("Running as user \"root\"",)


# ------------------------------------------------------------------------------------------------- (a)

@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("captures")
    proc = subprocess.run([sys.executable, str(CAPTURES / "generate.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


def test_generator_writes_exactly_the_committed_set(regenerated: Path) -> None:
    written = {p.name for p in regenerated.iterdir()}
    assert written == set(NAMES) | {"expected.json"}
    committed = {p.name for p in CAPTURES.iterdir()
                 if p.suffix in (".pcap", ".pcapng", ".gz")}
    assert committed == set(NAMES), "captures/ holds files that expected.json does not describe (or misses some)"


@pytest.mark.parametrize("name", NAMES + ["expected.json"])
def test_generator_is_deterministic(regenerated: Path, name: str) -> None:
    assert (regenerated / name).read_bytes() == (CAPTURES / name).read_bytes(), (
        f"{name} differs from a fresh `python captures/generate.py`: regenerate and commit, or fix the "
        "non-determinism")


def test_expected_frames_are_well_formed() -> None:
    for name, entry in EXPECTED.items():
        total = entry["frame_count"]
        firsts = [c["frames"]["first_frame"] for c in entry["conversations"]]
        assert firsts == sorted(firsts), name
        streams = [c["stream"] for c in entry["conversations"]] + entry.get("no_payload_streams", [])
        assert sorted(streams) == list(range(len(streams))), name
        for conv in entry["conversations"]:
            frames = conv["frames"]
            numbers = [n for k, n in frames.items() if k != "ehlo_reply" and n is not None]
            numbers += frames["ehlo_reply"] + [f["frame"] for f in conv["findings"]]
            assert all(1 <= n <= total for n in numbers), (name, conv)
            assert all(n >= frames["first_frame"] for n in numbers), (name, conv)


# ------------------------------------------------------------------------------------------------- (b)

def _tshark(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tshark", *args], capture_output=True, text=True, timeout=120)


_EXPERT_ERROR = 0x00800000   # Wireshark's PI_ERROR severity (malformed packets among them)


@pytest.mark.tshark
@pytest.mark.parametrize("name", NAMES)
def test_tshark_reads_capture(name: str) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    read = tshark_frames(CAPTURES / name)
    complaints = [ln for ln in read.stderr.splitlines() if ln.strip() and not ln.startswith(_BENIGN_STDERR)]
    assert read.returncode == 0 and not complaints, read.stderr
    rows = [dict(zip(TSHARK_FIELDS, r)) for r in read.rows]
    assert len(rows) == EXPECTED[name]["frame_count"]
    streams = sorted({int(r["tcp.stream"]) for r in rows if r["tcp.stream"]})
    assert streams == sorted([c["stream"] for c in EXPECTED[name]["conversations"]]
                             + EXPECTED[name].get("no_payload_streams", []))
    errors = [r["frame.number"] for r in rows
              if any(int(v) >= _EXPERT_ERROR for v in r["_ws.expert.severity"].split(",") if v)]
    assert errors == [], f"tshark reports errors (malformed?) in frames {errors}"


@pytest.mark.tshark
def test_tshark_sees_the_seed_exchange() -> None:
    """The seed capture carries the Cisco note's exchange, the misplaced line in the expected frame."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    name = "seed-starttls-first-line.pcap"
    proc = _tshark("-n", "-r", str(CAPTURES / name), "-Y", "smtp.response.code == 250 && smtp.rsp.parameter",
                   "-T", "fields", "-e", "frame.number", "-e", "smtp.rsp.parameter")
    assert proc.returncode == 0
    first = proc.stdout.splitlines()[0].split("\t")
    conv = EXPECTED[name]["conversations"][0]
    assert int(first[0]) == conv["findings"][0]["frame"] == conv["frames"]["ehlo_reply"][0]
    assert first[1].split(",")[0] == "STARTTLS"
    follow = _tshark("-n", "-r", str(CAPTURES / name), "-q", "-z", "follow,tcp,ascii,0").stdout
    assert "220 mail.domain1.com ESMTP Service ready" in follow
    assert "250-STARTTLS\n250-mail.domain1.com" in follow.replace("\r", "")


# ------------------------------------------------------------------------------------------------- (c)

def _analyze() -> Any:
    from pcapsmtp.engine.analyzer import analyze_path
    return analyze_path


@pytest.mark.parametrize("name", NAMES)
def test_analysis_matches_expected(name: str) -> None:
    analyze_path = _analyze()
    got = sorted(analyze_path(str(CAPTURES / name)), key=lambda c: c["first_frame"])
    want = EXPECTED[name]["conversations"]
    assert len(got) == len(want), [(c.get("stream"), c.get("reason")) for c in got]
    for g, w in zip(got, want):
        where = f"{name} stream {w['stream']}"
        assert g["stream"] == w["stream"], where
        assert (g["outcome"], g["caused_by"], g["reason"]) == (w["outcome"], w["caused_by"], w["reason"]), where
        st = g["starttls"]
        assert (st["offered"], st["requested"], st["reply_code"]) == (
            w["starttls_offered"], w["starttls_requested"], w["starttls_reply_code"]), where
        assert {(f["code"], f["side"], f["frame"]) for f in g["findings"]} == {
            (f["code"], f["side"], f["frame"]) for f in w["findings"]}, where
        ehlo = g.get("ehlo_reply") or {}
        assert list(ehlo.get("frames") or []) == w["frames"]["ehlo_reply"], where
        greeting = g.get("greeting") or {}
        assert greeting.get("frame") == w["frames"]["greeting"], where
        assert g["first_frame"] == w["frames"]["first_frame"], where
