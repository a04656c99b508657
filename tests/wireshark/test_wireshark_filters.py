"""The display filters pcapsmtp prints, run through real tshark on captures."""
from __future__ import annotations

import random
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from pcapsmtp.render.wireshark import conversation_filter, frames_filter, tshark_command

from ws_support import CAPTURES, CORPUS, needs_tshark, pcap_bytes, tshark

NDPI = CORPUS / "ntop__nDPI" / "tests__cfgs__default__pcap__smtp-starttls.pcap"


def _streams(path: Path) -> dict[int, tuple[tuple[str, int, str, int], list[int]]]:
    """tshark's own conversations: stream -> ((a, pa, b, pb), frames), a/pa = first sender."""
    text = tshark("-r", str(path), "-Y", "tcp", "-T", "fields", "-e", "frame.number",
                  "-e", "tcp.stream", "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport",
                  "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport",
                  "-E", "occurrence=l")
    out: dict[int, tuple[tuple[str, int, str, int], list[int]]] = {}
    frames: dict[int, list[int]] = defaultdict(list)
    for line in text.splitlines():
        num, stream, s4, s6, sp, d4, d6, dp = line.split("\t")
        st = int(stream)
        frames[st].append(int(num))
        if st not in out:
            out[st] = ((s4 or s6, int(sp), d4 or d6, int(dp)), [])
    return {st: (key, frames[st]) for st, (key, _) in out.items()}


def _selected(path: Path, flt: str) -> list[int]:
    return [int(x) for x in tshark("-r", str(path), "-Y", flt, "-T", "fields",
                                   "-e", "frame.number").split()]


def _two_conversations(tmp_path: Path) -> Path:
    """Two SMTP conversations between the same hosts (different client ports) plus noise."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether

    c, s = "192.0.2.10", "198.51.100.25"
    pkts = []
    for i, (sp, dp, src, dst) in enumerate([(40312, 25, c, s), (25, 40312, s, c),
                                            (40313, 25, c, s), (25, 40313, s, c),
                                            (40312, 25, c, s), (53, 53, c, s),
                                            (40312, 25, c, "198.51.100.26"),
                                            (25, 40313, s, c)]):
        l4 = UDP(sport=sp, dport=dp) if sp == 53 else TCP(sport=sp, dport=dp, seq=i, flags="A")
        pkts.append(bytes(Ether() / IP(src=src, dst=dst) / l4))
    path = tmp_path / "two.pcap"
    path.write_bytes(pcap_bytes([(1_700_000_000_000_000_000 + i, p, len(p))
                                 for i, p in enumerate(pkts)]))
    return path


@needs_tshark
@pytest.mark.tshark
def test_conversation_filter_selects_exactly_the_conversation(tmp_path: Path) -> None:
    path = _two_conversations(tmp_path)
    assert _selected(path, conversation_filter("192.0.2.10", 40312, "198.51.100.25", 25)) == [1, 2, 5]
    assert _selected(path, conversation_filter("192.0.2.10", 40313, "198.51.100.25", 25)) == [3, 4, 8]
    assert _selected(path, conversation_filter("192.0.2.10", 40312, "198.51.100.26", 25)) == [7]


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("name", ["ndpi-ipv4-ipv6-vlan", "seed-ipv6.pcap", "seed-qinq.pcap",
                                  "seed-starttls-first-line.pcap", "port-reuse.pcap"])
def test_conversation_filter_matches_tshark_streams(name: str) -> None:
    path = NDPI if name.startswith("ndpi") else CAPTURES / name
    assert path.is_file(), f"capture missing: {path}"
    streams = _streams(path)
    assert streams
    by_key: dict[frozenset[tuple[str, int]], list[int]] = defaultdict(list)
    for (a, pa, b, pb), frames in streams.values():
        by_key[frozenset({(a, pa), (b, pb)})] += frames    # port reuse: several streams, one key
    for (a, pa, b, pb), _frames in streams.values():
        flt = conversation_filter(a, pa, b, pb)
        assert ("ipv6.addr" in flt) == (":" in a)
        assert _selected(path, flt) == sorted(by_key[frozenset({(a, pa), (b, pb)})])
        assert _selected(path, conversation_filter(b, pb, a, pa)) == _selected(path, flt)


def test_conversation_filter_shape() -> None:
    assert conversation_filter("192.0.2.10", 40312, "198.51.100.25", 25) == (
        "ip.addr == 192.0.2.10 && tcp.port == 40312 && ip.addr == 198.51.100.25 && tcp.port == 25")
    assert conversation_filter("2001:DB8:0:0::1", 1, "[2001:db8::2]", 25) == (
        "ipv6.addr == 2001:db8::1 && tcp.port == 1 && ipv6.addr == 2001:db8::2 && tcp.port == 25")
    for bad in [("x", 1, "192.0.2.1", 25), ("192.0.2.1", 70000, "192.0.2.2", 25),
                ("192.0.2.1 || 1", 1, "192.0.2.2", 25)]:
        with pytest.raises(ValueError):
            conversation_filter(*bad)  # type: ignore[arg-type]


def test_frames_filter_shape() -> None:
    assert frames_filter([3, 1, 2, 2]) == "frame.number in {1..3}"
    assert frames_filter([1, 2, 4, 7, 8, 9, 10]) == "frame.number in {1, 2, 4, 7..10}"
    assert frames_filter([5]) == "frame.number in {5}"
    assert frames_filter([]) == "frame.number == 0"


@needs_tshark
@pytest.mark.tshark
def test_frames_filter_selects_exactly_the_frames(tmp_path: Path) -> None:
    path = CAPTURES / "seed-1byte-segments.pcap"
    if not path.is_file():
        path = _two_conversations(tmp_path)
    n = len(_selected(path, "frame"))
    assert n >= 8
    rng = random.Random(5321)
    picks = [[1], [n], list(range(1, n + 1)), [1, 2, 3, n], []]
    picks += [sorted(rng.sample(range(1, n + 1), k)) for k in (2, 3, n // 2)]
    for frames in picks:
        assert _selected(path, frames_filter(frames)) == sorted(set(frames)), frames_filter(frames)


@needs_tshark
@pytest.mark.tshark
def test_tshark_command_runs_in_a_shell(tmp_path: Path) -> None:
    src = _two_conversations(tmp_path)
    odd = tmp_path / "it's a \"capture\" $(x).pcap"
    odd.write_bytes(src.read_bytes())
    cmd = tshark_command(str(odd), frames_filter([2, 3]) + " && tcp")
    assert cmd.startswith("tshark -r ")
    proc = subprocess.run(cmd + " -T fields -e frame.number", shell=True, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2", "3"]
