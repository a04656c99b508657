"""Captures cut by their snap length say so (captures/scenarios_snaplen.py).

Bytes cut off the end of a frame by the capture's snap length were on the wire: the TCP layer
names their gap ``GapCause.SNAPLEN``, the verdict gives one ``capture-truncated`` finding at
the conversation's first cut frame (no ``tcp-gap`` for them) and, where they decide, an
``incomplete`` detail that names the snap length; the summary counts the cut frames and
``analyze`` prints one note per file. The cut frames are cross-checked against tshark
(``frame.cap_len < frame.len``), and every capture of captures/ re-cut with ``editcap -s``
keeps every blame it had or loses it to ``incomplete``: never another side.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.capture.decode import Decoder
from pcapsmtp.capture.pcapfile import open_frames
from pcapsmtp.engine.analyzer import AnalysisConfig, Analyzer, analyze_file
from pcapsmtp.engine.partition import merged, plan, run_task
from pcapsmtp.render.text import render_jsonl

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"
EXPECTED: dict[str, Any] = json.loads((CAPTURES / "expected.json").read_text())
SNAP = {"snaplen-starttls-not-offered.pcap": 96, "snaplen-tls-appdata.pcap": 200,
        "snaplen-body-idb.pcapng": 200, "seed-snaplen.pcap": 96}
_ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _tshark_cut(path: Path) -> list[tuple[int, int]]:
    """(frame, captured length) of every frame tshark reads as cut."""
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "frame.cap_len < frame.len", "-T", "fields",
                          "-e", "frame.number", "-e", "frame.cap_len"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return [(int(a), int(b)) for a, b in (ln.split("\t") for ln in out.split("\n") if ln)]


def _codes(conv: dict[str, Any]) -> list[str]:
    return [f["code"] for f in conv["findings"]]


@pytest.mark.parametrize("name", sorted(SNAP))
def test_cut_frames_give_one_capture_truncated_finding(name: str) -> None:
    res = analyze_file(str(CAPTURES / name))
    (conv,) = res.conversations
    snap = SNAP[name]
    exp = EXPECTED[name]["conversations"][0]
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == (
        exp["outcome"], exp["caused_by"], exp["reason"])
    assert "tcp-gap" not in _codes(conv)
    (f,) = [f for f in conv["findings"] if f["code"] == "capture-truncated"]
    assert f["side"] == "capture"
    assert f["message"].startswith(f"the capture keeps only the first {snap} bytes of each frame "
                                   f"(snap length {snap}): ")
    assert "tcpdump -s 0" in f["message"]
    if shutil.which("tshark"):
        cut = _tshark_cut(CAPTURES / name)
        # every cut frame of these captures is an SMTP frame: the first is the finding's, each
        # is named, all at the snap length; the summary counts them
        assert f["frame"] == cut[0][0]
        assert {c for _, c in cut} == {snap}
        frames = [n for n, _ in cut]
        which = (f"frame {frames[0]} was cut" if len(frames) == 1 else
                 "frames " + ", ".join(map(str, frames[:6]))
                 + (f" and {len(frames) - 6} more" if len(frames) > 6 else "") + " were cut")
        assert f"(snap length {snap}): {which}; " in f["message"]
        assert res.summary["snaplen_cut_frames"] == len(cut)
    assert res.summary["snaplen"] == snap
    assert res.summary["reassembly"]["snaplen_cut_segments"] == res.summary["snaplen_cut_frames"]


def test_decisive_exchange_cut_says_so_in_the_detail() -> None:
    (conv,) = analyze_file(str(CAPTURES / "snaplen-starttls-not-offered.pcap")).conversations
    assert conv["detail"] == ("the capture's snap length (96 bytes) cut the decisive exchange: "
                              "frame 8 is not in the capture whole")
    assert conv["evidence_frame"] == 8


def test_cut_that_decides_nothing_keeps_the_verdict() -> None:
    """Only TLS application data (after an established handshake) or only a message body cut:
    the verdict is the one of the whole capture, its detail unchanged."""
    (tls,) = analyze_file(str(CAPTURES / "snaplen-tls-appdata.pcap")).conversations
    assert tls["detail"] == "STARTTLS answered 220 and the TLS handshake completed (TLS 1.2)"
    (body,) = analyze_file(str(CAPTURES / "snaplen-body-idb.pcapng")).conversations
    assert body["detail"] == "the EHLO reply is well formed and does not offer STARTTLS"
    # the end-of-data marker was cut with the content: the server's 250 still says the mail
    # went through (in clear)
    assert (body["mail"], body["delivered"]) == (True, True)


def test_a_lost_segment_stays_a_tcp_gap() -> None:
    (conv,) = analyze_file(str(CAPTURES / "gap-in-ehlo-reply.pcap")).conversations
    assert "tcp-gap" in _codes(conv) and "capture-truncated" not in _codes(conv)
    assert "snap length" not in conv["detail"]
    assert analyze_file(str(CAPTURES / "gap-in-ehlo-reply.pcap")).summary["snaplen_cut_frames"] == 0


def test_cli_note_once_per_file_and_summary() -> None:
    files = [str(CAPTURES / "snaplen-tls-appdata.pcap"), str(CAPTURES / "snaplen-starttls-not-offered.pcap"),
             str(CAPTURES / "starttls-not-offered.pcap")]
    p = subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", "--format", "json", "--summary", *files],
                       capture_output=True, text=True, timeout=120, env=_ENV)
    notes = [ln for ln in p.stderr.splitlines() if "snap length" in ln]
    assert notes == [
        f"pcapsmtp: note: {files[0]}: the capture keeps only the first 200 bytes of each frame (snap "
        "length 200): 12 frame(s) of SMTP conversations were cut, and no verdict rests "
        "on the bytes cut off; capture again with `tcpdump -s 0`",
        f"pcapsmtp: note: {files[1]}: the capture keeps only the first 96 bytes of each frame (snap "
        "length 96): 2 frame(s) of SMTP conversations were cut, and no verdict rests "
        "on the bytes cut off; capture again with `tcpdump -s 0`"]
    summary = json.loads(p.stdout.splitlines()[-1])["summary"]
    assert (summary["snaplen_cut_frames"], summary["snaplen"]) == (14, 96)
    q = subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", "-q", "--summary", *files],
                       capture_output=True, text=True, timeout=120, env=_ENV)
    assert q.stderr == ""
    assert ("14 frame(s) of SMTP conversations cut by the capture's snap length (snap length 96): "
            "capture again with `tcpdump -s 0`") in " ".join(q.stdout.split())
    whole = subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", "--format", "json", "--summary",
                            files[2]], capture_output=True, text=True, timeout=120, env=_ENV)
    s = json.loads(whole.stdout.splitlines()[-1])["summary"]
    assert s["snaplen_cut_frames"] == 0 and "snaplen" not in s
    assert "snap length" not in whole.stderr


def test_live_loop_decoder_reports_the_snap_length() -> None:
    """``live`` decodes each frame with ``Decoder.decode`` (its ``on_cut`` wired to the
    analyzer) and feeds the segment: the same verdict as the file loop, naming the snap length."""
    path = CAPTURES / "snaplen-starttls-not-offered.pcap"
    an = Analyzer(file=str(path))
    dec = Decoder()
    dec.on_cut = an.saw_cut
    done = []
    for frame in open_frames(str(path)):
        seg = dec.decode(frame)
        if seg is not None:
            done += an.feed(seg)
    done += an.finish()
    (conv,) = done
    assert an.snaplen == 96
    assert [(f["code"], f["frame"]) for f in conv["findings"]] == [("capture-truncated", 8)]
    assert "(96 bytes)" in conv["detail"]


@pytest.mark.parametrize("buckets", [2, 3])
def test_parallel_run_counts_and_notes_as_the_serial_one(buckets: int) -> None:
    """Workers follow only their share of the conversations: the merged summary adds their cut
    frames up and the unit gets one note, as in the serial run."""
    for name in sorted(SNAP):
        path = str(CAPTURES / name)
        serial = analyze_file(path)
        tasks = plan([(path,)], AnalysisConfig(), buckets)
        par = next(merged(tasks, [run_task(t) for t in tasks]))
        assert [render_jsonl(c) for c in par.conversations] == [
            render_jsonl(c) for c in serial.conversations], name
        assert json.dumps(par.summary, default=str) == json.dumps(serial.summary, default=str), name
        assert par.notes == serial.notes and sum("snap length" in n for n in par.notes) == 1, name


@pytest.mark.skipif(not shutil.which("editcap"), reason="editcap not installed")
@pytest.mark.parametrize("snap", [80, 120, 200])
def test_recut_captures_never_move_blame(tmp_path: Path, snap: int) -> None:
    """Every capture of captures/ cut with ``editcap -s``: a verdict either stays or becomes
    incomplete/unknown; a conversation with cut frames has one capture-truncated finding, and
    a tcp-gap only where the whole capture had one (real loss). A conversation whose frames
    lost their TCP header (IPv6 at 80 bytes) is skipped: it gets no verdict, so no blame."""
    names = [n for n in sorted(EXPECTED) if n.endswith(".pcap") and n not in SNAP][:60]
    for name in names:
        cut = tmp_path / name
        subprocess.run(["editcap", "-s", str(snap), str(CAPTURES / name), str(cut)], check=True,
                       capture_output=True, timeout=60)
        before = analyze_file(str(CAPTURES / name)).conversations
        after = analyze_file(str(cut)).conversations
        # (frames cut inside their TCP header are skipped: a conversation may vanish, unblamed)
        was = {c["stream"]: c for c in before}
        assert {c["stream"] for c in after} <= set(was), name
        for a in after:
            b = was[a["stream"]]
            what = f"{name} stream {a['stream']} at -s {snap}"
            if (a["outcome"], a["caused_by"], a["reason"]) != (b["outcome"], b["caused_by"], b["reason"]):
                assert (a["outcome"], a["caused_by"], a["reason"]) == ("incomplete", "unknown", "incomplete"), what
            assert _codes(a).count("capture-truncated") <= 1, what
            if "tcp-gap" in _codes(a):
                assert "tcp-gap" in _codes(b), what


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark not installed")
@pytest.mark.parametrize("name", sorted(SNAP))
def test_tshark_engine_names_the_same_snap_length(name: str) -> None:
    """``--engine tshark`` learns the snap length from ``frame.cap_len``: the same findings,
    detail, count and snap length as pcapsmtp's own reader."""
    own = analyze_file(str(CAPTURES / name))
    ts = analyze_file(str(CAPTURES / name), engine="tshark")
    assert [(c["detail"], c["findings"]) for c in ts.conversations] == [
        (c["detail"], c["findings"]) for c in own.conversations]
    assert (ts.summary["snaplen_cut_frames"], ts.summary["snaplen"]) == (
        own.summary["snaplen_cut_frames"], own.summary["snaplen"])
