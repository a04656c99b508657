"""The fused file loop (pcapsmtp.engine.fileloop) must give exactly what the general path gives:
the same conversations (as JSON, byte for byte), the same summary (reassembly counters,
packets, frames), the same decoder notes and the same error, on every capture of the
repository and of the public corpus, and on the same files cut short or gzip-compressed.
No timing here: the benchmark is bench/run."""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from _emit_probe import EmitProbe
from pcapsmtp.capture.decode import Decoder
from pcapsmtp.capture.pcapfile import iter_segments
from pcapsmtp.engine.fileloop import AddrInts, keyed
from pcapsmtp.engine.analyzer import AnalysisConfig, FileResult, analyze_file
from pcapsmtp.tcp.reassembler import KeyedSegment, TcpReassembler, int_key

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus"
_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
           b"\x0a\x0d\x0d\x0a", b"\x1f\x8b\x08\x00"[:2])


def _captures(root: Path) -> list[Path]:
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            with p.open("rb") as f:
                head = f.read(4)
            if head[:4] in _MAGICS or head[:2] == b"\x1f\x8b":
                out.append(p)
    return out


REPO_CAPTURES = _captures(REPO / "captures")
CORPUS_CAPTURES = _captures(CORPUS) if CORPUS.is_dir() else []


def _dump(res: FileResult) -> str:
    return json.dumps({"conversations": res.conversations, "summary": res.summary,
                       "notes": res.notes, "error": None if res.error is None else str(res.error)},
                      default=repr)


def _same(path: str, config: AnalysisConfig | None = None) -> None:
    general = _dump(analyze_file(path, config, fast=False))
    fast = _dump(analyze_file(path, config, fast=True))
    assert fast == general
    # streamed: the same conversations in the same order, none left in the result
    got: list[dict[str, Any]] = []
    res = analyze_file(path, config, emit=got.append)
    assert res.conversations == []
    res.conversations = got
    assert _dump(res) == general


def test_there_are_captures_to_compare() -> None:
    assert len(REPO_CAPTURES) >= 50
    assert any(p.suffix == ".pcapng" for p in REPO_CAPTURES)


@pytest.mark.parametrize("path", REPO_CAPTURES, ids=lambda p: str(p.relative_to(REPO)))
def test_repository_capture(path: Path) -> None:
    _same(str(path))


@pytest.mark.parametrize("path", CORPUS_CAPTURES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_corpus_capture(path: Path) -> None:
    _same(str(path))


def test_corpus_other_settings() -> None:
    """Other ports, no content detection, a tiny light table (evictions, generations) and
    a tiny flow table: the fused loop's peeks must follow every setting."""
    configs = [AnalysisConfig(ports=frozenset({80, 443})),
               AnalysisConfig(detect_by_content=False),
               AnalysisConfig(max_tracked=3, max_flows=2)]
    for path in CORPUS_CAPTURES[:: max(1, len(CORPUS_CAPTURES) // 40)]:
        for cfg in configs:
            _same(str(path), cfg)


def test_cut_and_gzipped(tmp_path: Path) -> None:
    """Damaged files stop at the same frame with the same error; gzip takes the same path."""
    src = next(p for p in REPO_CAPTURES if p.suffix == ".pcap" and p.stat().st_size > 4000)
    data = src.read_bytes()
    for cut in (len(data) // 3, len(data) // 2 + 7, len(data) - 1, 30, 24):
        p = tmp_path / f"cut{cut}.pcap"
        p.write_bytes(data[:cut])
        _same(str(p))
        r = analyze_file(str(p))
        assert (r.error is None) == (cut == 24)     # 24: the file header alone, no packet
    gz = tmp_path / "whole.pcap.gz"
    gz.write_bytes(gzip.compress(data))
    _same(str(gz))
    assert _dump(analyze_file(str(gz))).replace(str(gz), "X") == \
        _dump(analyze_file(str(src))).replace(str(src), "X")


def test_progress_sees_the_same_frames(tmp_path: Path) -> None:
    src = max((p for p in REPO_CAPTURES + CORPUS_CAPTURES if p.suffix == ".pcap"),
              key=lambda p: p.stat().st_size)
    calls: dict[bool, list[tuple[int, int]]] = {True: [], False: []}
    for fast in (True, False):
        analyze_file(str(src), fast=fast, progress=lambda n, o, f=fast: calls[f].append((n, o)))
    assert calls[True] == calls[False]


@pytest.mark.parametrize("path", REPO_CAPTURES[:20], ids=lambda p: p.name)
def test_keyed_segments_give_the_same_events(path: Path) -> None:
    """The reassembler fed KeyedSegments (integer keys) emits exactly the events it emits
    for plain segments (text keys), and numbers the same streams."""
    plain, keyd = TcpReassembler(), TcpReassembler()
    addrs = AddrInts()
    for seg in iter_segments(str(path), decoder=Decoder()):
        k = keyed(seg, addrs)
        assert isinstance(k, KeyedSegment) and k == seg
        assert [repr(e) for e in plain.feed(seg)] == [repr(e) for e in keyd.feed(k)]
        assert plain.stream_of(seg.src, seg.sport, seg.dst, seg.dport) == \
            keyd.stream_of(seg.src, seg.sport, seg.dst, seg.dport)
    assert [repr(e) for e in plain.finish()] == [repr(e) for e in keyd.finish()]
    assert plain.stats == keyd.stats


def test_int_key_is_symmetric() -> None:
    a, b = 0x0A000001, 0xC0A80001
    assert int_key(a, 1000, b, 25) == (int_key(b, 25, a, 1000)[0], 1 - int_key(b, 25, a, 1000)[1])
    assert int_key(a, 25, b, 25)[0] == int_key(b, 25, a, 25)[0]
    assert int_key(a, 25, b, 25)[1] != int_key(b, 25, a, 25)[1]
    assert int_key(1, 1, 2, 2, v6=True)[0] != int_key(1, 1, 2, 2)[0]


@pytest.mark.parametrize("args", [["--packets", "30000", "--seed", "3"],
                                  ["--packets", "8000", "--seed", "4", "--all-smtp"]],
                         ids=["mixed", "all-smtp"])
def test_generated_benchmark_file(tmp_path: Path, args: list[str]) -> None:
    """A file long enough for several idle sweeps (every 4096 segments) and thousands of
    ignored conversations, from the benchmark's generator."""
    import subprocess
    import sys
    out = tmp_path / "gen.pcap"
    subprocess.run([sys.executable, str(REPO / "bench" / "mixgen.py"), *args, "-o", str(out)],
                   check=True, capture_output=True)
    _same(str(out))
    _same(str(out), AnalysisConfig(max_tracked=500, max_flows=20))
    _same(str(out), AnalysisConfig(idle_timeout_ns=50_000_000))     # sweeps close flows


def _to_pcapng(src: Path, dst: Path) -> None:
    """Rewrite a pcap as pcapng (SHB, one IDB, one EPB per record, microsecond stamps)."""
    import struct
    from pcapsmtp.capture.pcapfile import iter_records
    recs = list(iter_records(str(src)))
    with dst.open("wb") as f:
        f.write(struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))
        f.write(struct.pack("<IIHHII", 1, 20, recs[0][2] if recs else 1, 0, 262144, 20))
        for _n, ts, _lt, data, wirelen, _o, _i in recs:
            us = ts // 1000
            pad = b"\0" * (-len(data) % 4)
            blen = 32 + len(data) + len(pad)
            f.write(struct.pack("<IIIIIII", 6, blen, 0, us >> 32, us & 0xFFFFFFFF, len(data),
                                wirelen) + data + pad + struct.pack("<I", blen))


def test_generated_file_as_pcapng(tmp_path: Path) -> None:
    """The record-based fused loop (pcapng) on a long file, against the general path and
    against the same packets read from pcap."""
    import subprocess
    import sys
    src = tmp_path / "gen.pcap"
    subprocess.run([sys.executable, str(REPO / "bench" / "mixgen.py"), "--packets", "30000",
                    "--seed", "6", "-o", str(src)], check=True, capture_output=True)
    ng = tmp_path / "gen.pcapng"
    _to_pcapng(src, ng)
    _same(str(ng))
    _same(str(ng), AnalysisConfig(max_tracked=500, max_flows=20, idle_timeout_ns=50_000_000))
    a = _dump(analyze_file(str(ng))).replace(str(ng), "X")
    b = _dump(analyze_file(str(src))).replace(str(src), "X")
    assert a == b


def test_streaming_emits_before_the_end(tmp_path: Path) -> None:
    """On a long file most conversations are handed out while the file is still read."""
    import subprocess
    import sys
    out = tmp_path / "gen.pcap"
    subprocess.run([sys.executable, str(REPO / "bench" / "mixgen.py"), "--packets", "40000",
                    "--seed", "5", "-o", str(out)], check=True, capture_output=True)
    probe = EmitProbe()
    res = analyze_file(str(out), emit=probe)
    seen_at = probe.first_frames
    assert res.conversations == [] and len(seen_at) > 100
    assert probe.during_read > len(seen_at) // 2
    assert seen_at == sorted(seen_at)
    batch = analyze_file(str(out))
    assert [c["first_frame"] for c in batch.conversations] == seen_at


def test_earliest_pending_frame() -> None:
    from pcapsmtp.model import TcpSegment
    r = TcpReassembler()
    assert r.earliest_pending_frame() is None
    r.feed(TcpSegment(1, 0, "10.0.0.1", 40000, "10.0.0.2", 80, 100, 0, 0x02, b""))  # SYN: undecided
    r.feed(TcpSegment(2, 0, "10.0.0.3", 40001, "10.0.0.2", 25, 7, 0, 0x02, b""))
    assert r.earliest_pending_frame() == 1
    r.feed(TcpSegment(3, 0, "10.0.0.2", 80, "10.0.0.1", 40000, 900, 101, 0x12, b""))
    r.feed(TcpSegment(4, 0, "10.0.0.1", 40000, "10.0.0.2", 80, 101, 901, 0x18,
                      b"GET / HTTP/1.1\r\n"))
    assert r.earliest_pending_frame() == 2            # the HTTP one is decided: not SMTP
