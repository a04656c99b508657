"""``analyze --rotated``: the pieces of a capture cut by ``editcap -c`` (packet count) or
``editcap -i`` (time) give the verdicts of the file they were cut from, with every frame
reference naming the piece that holds the frame and its number there (the same packet's
bytes); conversations cross the boundaries; overlaps and mixed link types are refused."""
from __future__ import annotations

import csv
import io
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.capture.pcapfile import iter_records
from pcapsmtp.engine.analyzer import analyze_file, analyze_files
from pcapsmtp.engine.rotated import _scan_pcap, order_pieces
from pcapsmtp.render.text import CSV_FIELDS, ROTATED_CSV_FIELDS, render_jsonl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixedcap import make_mixed

ROOT = Path(__file__).resolve().parents[1]

def _steps_back(path: Path) -> bool:
    """Does the capture's clock step back by a second or more between two records (a classic
    pcap, either byte order, micro- or nanosecond stamps)?"""
    data = path.read_bytes()
    magic = data[:4]
    order = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",
             b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}.get(magic)
    if order is None:
        return False
    pos, last = 24, None
    while pos + 16 <= len(data):
        sec, _frac, incl, _orig = struct.unpack_from(order + "IIII", data, pos)
        if last is not None and sec + 1 <= last:
            return True
        last = sec if last is None else max(last, sec)
        pos += 16 + incl
    return False


#: (not the captures whose clock steps back mid-capture, wallclock-step-* and clockack-*: cut in
#: pieces, the pieces' first timestamps are out of order, and a rotated set is ordered by them:
#: such pieces are one capture only put together in the order given, docs/output.md "A clock
#: that steps back")
CAPTURES = sorted(p for p in (ROOT / "captures").glob("*.pcap") if not _steps_back(p))

pytestmark = pytest.mark.skipif(shutil.which("editcap") is None,
                                reason="editcap (tshark's package) is not installed")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mixed(tmp_path_factory.mktemp("mixed"))


def cut(src: Path, out: Path, *how: str) -> list[Path]:
    """editcap's pieces of ``src`` (named <out>_NNNNN_<time>.pcap), in name order."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["editcap", *how, str(src), str(out)], check=True, capture_output=True,
                   timeout=120)
    return sorted(out.parent.glob(out.stem + "_*"))


def records(path: Path) -> list[bytes]:
    return [r[3] for r in iter_records(str(path))]


_FRAME_FIELDS = [  # (where the frame is, where its file is) in a rotated verdict
    (("first_frame",), ("file",)),
    (("evidence_frame",), ("evidence_file",)),
    (("greeting", "frame"), ("greeting", "file")),
    (("starttls", "frame"), ("starttls", "file")),
    (("fallback_of", "frame"), ("fallback_of", "file")),
    (("tls", "client_hello_frame"), ("tls", "client_hello_file")),
    (("tls", "server_hello_frame"), ("tls", "server_hello_file")),
    (("tls", "alert", "frame"), ("tls", "alert", "file")),
]


def _get(d: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def frame_refs(conv: dict[str, Any], rotated: bool) -> list[tuple[str | None, int]]:
    refs: list[tuple[str | None, int]] = []
    for fpath, filepath in _FRAME_FIELDS:
        n = _get(conv, fpath)
        if isinstance(n, int):
            refs.append((_get(conv, filepath) if rotated else None, n))
    ehlo = conv.get("ehlo_reply") or {}
    for i, n in enumerate(ehlo.get("frames") or ()):
        refs.append((ehlo["files"][i] if rotated else None, n))
    for f in conv["findings"]:
        if f.get("frame"):
            refs.append((f["file"] if rotated else None, f["frame"]))
            assert f["wireshark_filter"] == f"frame.number == {f['frame']}"
    return refs


def check_same(whole: Path, pieces: list[Path], *, min_crossing: int = 0) -> None:
    """The rotated analysis of ``pieces`` equals that of ``whole``, reference by reference."""
    one = analyze_file(str(whole))
    ordered = [pc.path for pc in order_pieces([str(p) for p in reversed(pieces)])]
    assert ordered == [str(p) for p in pieces]
    rot = analyze_files(ordered)
    assert rot.error is None and one.error is None
    assert len(rot.conversations) == len(one.conversations)
    whole_records = records(whole)
    piece_records = {str(p): records(p) for p in pieces}
    assert sum(len(r) for r in piece_records.values()) == len(whole_records)
    crossing = 0
    for a, b in zip(one.conversations, rot.conversations):
        for k in ("stream", "outcome", "caused_by", "reason", "client", "server", "banner",
                  "started_ns", "ended_ns", "detail"):
            assert a[k] == b[k], (whole, k, a, b)
        assert [f["code"] for f in a["findings"]] == [f["code"] for f in b["findings"]]
        ra, rb = frame_refs(a, False), frame_refs(b, True)
        assert len(ra) == len(rb)
        for (_, n), (file, local) in zip(ra, rb):
            assert file in piece_records, file
            # the same packet: the bytes of frame n of the whole file
            assert piece_records[file][local - 1] == whole_records[n - 1]
        if len({f for f, _ in rb}) > 1:
            crossing += 1
    assert crossing >= min_crossing
    # the summary covers the whole set as it covers the whole file
    for k in ("conversations", "outcomes", "reasons", "servers", "packets", "reassembly",
              "frames"):
        assert rot.summary[k] == one.summary[k], k


def test_repository_captures_cut_in_pieces(tmp_path: Path) -> None:
    """Every capture cut every 3 packets (handshakes, replies and TLS attempts split over
    files; tls-fallback.pcap's two conversations in different files)."""
    for cap in CAPTURES:
        pieces = cut(cap, tmp_path / cap.stem / "p.pcap", "-c", "3")
        if len(pieces) > 1:
            check_same(cap, pieces)
    fb = analyze_files([str(p) for p in sorted((tmp_path / "tls-fallback").glob("p_*"))])
    assert [c["reason"] for c in fb.conversations][-1] == "tls-fallback"
    assert fb.conversations[-1]["fallback_of"]["file"] != fb.conversations[-1]["file"]


def test_mixed_capture_cut_by_count(mixed: Path, tmp_path: Path) -> None:
    """pcap pieces (editcap writes pcapng unless told): the header walk of scan_piece."""
    pieces = cut(mixed, tmp_path / "c" / "c.pcap", "-F", "pcap", "-c", "4000")
    check_same(mixed, pieces, min_crossing=10)
    for p in pieces:
        quick = _scan_pcap(str(p))
        assert quick is not None
        recs = list(iter_records(str(p)))
        assert quick.frames == len(recs) and quick.linktypes == {1}
        assert quick.first_ts == recs[0][1] and quick.last_ts == max(r[1] for r in recs)


def test_mixed_capture_cut_by_time(mixed: Path, tmp_path: Path) -> None:
    check_same(mixed, cut(mixed, tmp_path / "t" / "t.pcap", "-i", "1"), min_crossing=10)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", *args],
                          check=False, capture_output=True, text=True, timeout=600)


def test_cli_rotated_jobs_identical_and_in_capture_order(mixed: Path, tmp_path: Path) -> None:
    pieces = [str(p) for p in cut(mixed, tmp_path / "c" / "c.pcap", "-c", "7000")]
    serial = _cli("--rotated", "--format", "json", "--summary", *reversed(pieces))
    assert serial.returncode == 1, serial.stderr
    par = _cli("--rotated", "--format", "json", "--summary", "-j", "2", *pieces)
    assert par.stdout == serial.stdout and par.stderr == serial.stderr
    convs = [json.loads(ln) for ln in serial.stdout.splitlines()[:-1]]
    assert {c["file"] for c in convs} == set(pieces)
    # without --rotated every file is its own capture: conversations cut in two
    alone = _cli("--format", "json", *pieces)
    assert len(alone.stdout.splitlines()) > len(convs)


def test_overlap_and_link_types_are_one_line_errors(tmp_path: Path) -> None:
    a = str(ROOT / "captures" / "tls-fallback.pcap")
    b = str(ROOT / "captures" / "client-did-not-request.pcap")
    bad = _cli("--rotated", a, b)
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.splitlines()) == 1
    assert "overlap" in bad.stderr and "--allow-overlap" in bad.stderr
    ok = _cli("--rotated", "--allow-overlap", "--format", "json", a, b)
    assert ok.returncode in (0, 1), ok.stderr
    # a raw-IP copy of one capture next to the Ethernet original
    raw = tmp_path / "raw.pcap"
    subprocess.run(["editcap", "-T", "rawip", "-C", "14", a, str(raw)], check=True,
                   capture_output=True, timeout=60)
    mixed_links = _cli("--rotated", "--allow-overlap", a, str(raw))
    assert mixed_links.returncode == 2 and len(mixed_links.stderr.splitlines()) == 1
    assert "link type" in mixed_links.stderr and "--allow-mixed-links" in mixed_links.stderr
    assert _cli("--rotated", "--allow-overlap", "--allow-mixed-links", a,
                str(raw)).returncode in (0, 1)
    assert _cli("--rotated", a, a).returncode == 2
    assert _cli("--allow-overlap", a).returncode == 2


def test_rotated_keys_are_documented(tmp_path: Path) -> None:
    """Every key path of rotated output is in docs/output.md (the output contract)."""
    doc = (ROOT / "docs" / "output.md").read_text(encoding="utf-8")
    keys: set[str] = set()

    def walk(v: Any, prefix: str) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                path = f"{prefix}.{k}" if prefix else k
                keys.add(path)
                walk(x, path)
        elif isinstance(v, list):
            for x in v:
                walk(x, prefix + "[]")

    for name in ("tls-fallback", "starttls-refused-454", "implicit-tls-465", "ehlo-bad-keyword",
                 "tls-alert-server", "seed-starttls-first-line"):
        cap = ROOT / "captures" / f"{name}.pcap"
        pieces = cut(cap, tmp_path / name / "p.pcap", "-c", "4")
        for c in analyze_files([str(p) for p in pieces]).conversations:
            walk(json.loads(render_jsonl(c)), "")
    assert {"evidence_file", "greeting.file", "findings[].file", "ehlo_reply.files"} <= keys
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert not missing, f"not in docs/output.md: {missing}"


def _cmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pcapsmtp", *args], check=False,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def fallback_pieces(tmp_path: Path) -> list[str]:
    """tls-fallback.pcap cut every 4 packets: the failed attempt and the plaintext retry, and
    inside each the EHLO exchange, STARTTLS and the alert, in different files."""
    return [str(p) for p in cut(ROOT / "captures" / "tls-fallback.pcap",
                                tmp_path / "fb" / "p.pcap", "-c", "4")]


def test_explain_rotated_names_the_file_of_each_line(fallback_pieces: list[str]) -> None:
    p = _cmd("explain", "--rotated", *reversed(fallback_pieces))
    assert p.returncode == 1, p.stderr
    name = Path(fallback_pieces[1]).name
    assert f"{name}:2  C: EHLO client.example.org" in p.stdout
    assert "verdict tls-fallback" in p.stdout and "verdict tls-handshake-failed" in p.stdout
    one = _cmd("explain", *fallback_pieces[:2])
    assert one.returncode == 2 and "--rotated" in one.stderr and len(one.stderr.splitlines()) == 1


def test_annotate_rotated_comments_each_piece(fallback_pieces: list[str], tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    out = tmp_path / "ann"
    out.mkdir()
    p = _cmd("annotate", "--rotated", *fallback_pieces, "-o", str(out))
    assert p.returncode == 0, p.stderr
    want: set[tuple[str, int]] = set()
    for c in analyze_files(fallback_pieces).conversations:
        want |= {(f["file"], f["frame"]) for f in c["findings"] if f.get("frame")}
        if c.get("evidence_frame"):
            want.add((c["evidence_file"], c["evidence_frame"]))
    got: set[tuple[str, int]] = set()
    for piece in fallback_pieces:
        ann = out / (Path(piece).stem + ".pcapng")
        assert ann.exists()
        r = subprocess.run(["tshark", "-r", str(ann), "-Y", "frame.comment", "-T", "fields",
                            "-e", "frame.number"], capture_output=True, text=True, check=True,
                           timeout=60)
        got |= {(piece, int(n)) for n in r.stdout.split()}
        assert records(ann) == records(Path(piece))      # the same packets, commented
    assert got == want and len(want) >= 2
    assert _cmd("annotate", "--rotated", *fallback_pieces, "-o",
                str(tmp_path / "x.pcapng")).returncode == 2


def test_report_rotated_lists_every_piece(fallback_pieces: list[str], tmp_path: Path) -> None:
    html = tmp_path / "r.html"
    p = _cmd("report", "--rotated", *fallback_pieces, "-o", str(html))
    assert p.returncode == 1, p.stderr
    page = html.read_text(encoding="utf-8")
    for piece in fallback_pieces:
        assert Path(piece).name in page
    assert "tls-fallback" in page


def _csv(*args: str) -> tuple[list[str], list[dict[str, str]]]:
    p = _cli("--format", "csv", *args)
    assert p.returncode in (0, 1), p.stderr
    rows = list(csv.reader(io.StringIO(p.stdout)))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


def test_csv_rotated_names_the_file_of_every_frame(fallback_pieces: list[str]) -> None:
    """The CSV of a rotated set: ``evidence_file`` next to ``evidence_frame`` and
    ``code@FILE:frame`` findings, each naming the piece that holds the same packet as the
    whole file's frame; one file under --rotated keeps the plain columns."""
    whole = ROOT / "captures" / "tls-fallback.pcap"
    head1, plain = _csv(str(whole))
    assert head1 == CSV_FIELDS
    head, rot = _csv("--rotated", *reversed(fallback_pieces))
    assert head == ROTATED_CSV_FIELDS and head.index("evidence_file") == head.index("evidence_frame") + 1
    assert _csv("--rotated", "-j", "2", *fallback_pieces) == (head, rot)
    whole_records = records(whole)
    piece_records = {p: records(Path(p)) for p in fallback_pieces}
    assert len(rot) == len(plain) == 2
    files_named = set()
    for a, b in zip(plain, rot):
        assert piece_records[b["file"]][int(b["first_frame"]) - 1] == \
            whole_records[int(a["first_frame"]) - 1]
        assert b["evidence_file"] in piece_records and b["evidence_file"] != b["file"]
        assert piece_records[b["evidence_file"]][int(b["evidence_frame"]) - 1] == \
            whole_records[int(a["evidence_frame"]) - 1]
        files_named.add(b["evidence_file"])
        fa = [x.split("@") for x in a["findings"].split(";") if x]
        fb = [x.split("@", 1) for x in b["findings"].split(";") if x]
        assert [c for c, _ in fa] == [c for c, _ in fb]
        for (_, n), (_, ref) in zip(fa, fb):
            file, _, local = ref.rpartition(":")
            assert piece_records[file][int(local) - 1] == whole_records[int(n) - 1]
            files_named.add(file)
        assert {k: v for k, v in a.items() if k not in ("file", "first_frame", "evidence_frame",
                                                           "findings")} == \
            {k: v for k, v in b.items() if k in a and k not in (
                "file", "first_frame", "evidence_frame", "findings")}
    assert len(files_named) >= 2 and any(r["findings"] for r in rot)
    assert _csv("--rotated", str(whole)) == (head1, plain)


def test_findings_table_rotated_names_the_file_of_each_frame(fallback_pieces: list[str]) -> None:
    """``--findings``: a finding's row names the piece holding its frame (where its display
    filter applies), and the evidence filter says which piece it opens in."""
    p = _cli("--rotated", "--findings", *fallback_pieces)
    assert p.returncode == 1, p.stderr
    convs = analyze_files(fallback_pieces).conversations
    found = [(f["file"], f["code"], f["frame"]) for c in convs for f in c["findings"]]
    assert found and any(file != c["file"] for c in convs for file, _, _ in found)
    for file, code, frame in found:
        assert any(ln.startswith(file) and f" {code} " in ln and f"frame.number == {frame}" in ln
                   for ln in p.stdout.splitlines())
    for c in convs:
        if c["evidence_file"] != c["file"]:
            assert f"{c['evidence_filter']} (in {c['evidence_file']})" in p.stdout
