"""bench/: the generator is deterministic and its truth agrees with Wireshark; bench/run runs and prints its table.

Not a timed test: nothing here asserts anything about speed.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
sys.path.insert(0, str(BENCH))
import mixgen as generate  # noqa: E402  (bench/mixgen.py)


def test_generator_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "c.pcap"
    generate.generate(a, 3000, seed=7)
    generate.generate(b, 3000, seed=7)
    generate.generate(c, 3000, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert generate.truth_path(a).read_text() == generate.truth_path(b).read_text()
    assert a.read_bytes() != c.read_bytes()


def test_mixed_file_shape(tmp_path: Path) -> None:
    doc = generate.generate(tmp_path / "m.pcap", 20_000, seed=3)
    assert doc["packets"] >= 20_000
    assert 0.05 <= doc["smtp_share"] <= 0.10
    convs = doc["conversations"]
    kinds = [c["kind"] for c in convs]
    assert set(kinds) == set(generate.SMTP_KINDS)  # every scenario appears
    assert len(set(kinds[: len(generate.SMTP_KINDS)])) == len(generate.SMTP_KINDS)
    streams = [c["stream"] for c in convs]
    assert streams == sorted(streams) and len(set(streams)) == len(streams)
    for c in convs:
        assert (c["outcome"], c["caused_by"], c["reason"]) == generate.SMTP_KINDS[c["kind"]]
    assert any(c["split_reply"] for c in convs)
    assert any(c["reordered_pairs"] for c in convs)
    assert json.loads(generate.truth_path(tmp_path / "m.pcap").read_text()) == doc


def test_all_smtp_file_has_large_bodies(tmp_path: Path) -> None:
    doc = generate.generate(tmp_path / "a.pcap", 3000, seed=1, all_smtp=True)
    assert doc["smtp_share"] == 1.0
    assert (tmp_path / "a.pcap").stat().st_size > 100_000 * len(doc["conversations"]) * 0.5


@pytest.mark.tshark
def test_truth_streams_and_frames_agree_with_tshark(tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    pcap = tmp_path / "m.pcap"
    doc = generate.generate(pcap, 8000, seed=5)
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
         "-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 0", "-T", "fields", "-e", "frame.number",
         "-e", "tcp.stream", "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport"],
        capture_output=True, text=True, check=True).stdout
    syn: dict[tuple[str, int], tuple[int, int]] = {}
    for line in out.splitlines():
        frame, stream, ip4, ip6, port = line.split("\t")
        syn[(ip4 or ip6, int(port))] = (int(frame), int(stream))
    assert len(syn) == doc["tcp_streams"]
    for c in doc["conversations"]:
        assert syn[(c["client"]["ip"], c["client"]["port"])] == (c["first_frame"], c["stream"]), c
    bad = subprocess.run(
        ["tshark", "-r", str(pcap), "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
         "-o", "udp.check_checksum:TRUE", "-Y",
         "ip.checksum.status == 2 || tcp.checksum.status == 2 || udp.checksum.status == 2 || _ws.malformed",
         "-T", "fields", "-e", "frame.number"], capture_output=True, text=True, check=True).stdout.split()
    assert bad == []
    v6 = subprocess.run(["tshark", "-r", str(pcap), "-Y", "ipv6 && tcp.flags.syn == 1", "-T", "fields",
                         "-e", "frame.number"], capture_output=True, text=True, check=True).stdout.split()
    assert v6, "a few conversations run over IPv6"


def test_bench_run_quick_prints_the_table(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, str(BENCH / "run"), "--quick", "--packets", "2000", "--smtp-packets", "1000",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout
    assert "== mixed: mixed-2000-s1.pcap" in out
    assert "== all-SMTP: relay-1000-s1.pcap" in out
    for col in ("tool", "median s", "CPU s", "peak RSS MiB", "tool time / pcapsmtp", "CPU / pcapsmtp", "target",
                "result"):
        assert col in out
    for label in ("pcapsmtp", "pcapsmtp (pure Py)", "tshark -Y smtp", "tcpflow", "tcpdump floor"):
        assert label in out
    assert "pcapsmtp under test: pcapsmtp" in out and "load average" in out
    assert "pcapsmtp answers vs generator truth" in out
    assert "targets:" in out
    assert "== -j N" in out and "same output" in out and "OUTPUT DIFFERS" not in out
    assert "critical path: -j 1:" in out
    res = json.loads((tmp_path / "results-2000.json").read_text())
    assert set(res["files"]) == {"mixed", "allsmtp", "small"}
