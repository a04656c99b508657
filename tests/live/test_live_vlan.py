"""``pcapsmtp live`` on a mirror port that keeps VLAN tags: ``tcpreplay`` sends the 802.1Q and
the QinQ seed captures (captures/seed-vlan.pcap, seed-qinq.pcap: 802.1ad S-VLAN 200 over 802.1Q
VLAN 100) over a veth pair between two network namespaces made here, and ``pcapsmtp live`` with
its default filter must print the verdict ``analyze`` gives for the same file.

Linux hands a packet socket each frame with its outer tag taken out of the data (into the
packet's metadata), so ``tcp port 25`` matches a single tag but not a second one, which stays in
the data: the default filter adds ``vlan and (...)`` for it (libpcap's ``vlan`` reads the
metadata first, then the data).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.live, pytest.mark.netns]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from vethns import analyze_offline, replay_link, sniff_replay, verdict_key  # noqa: E402


def _live(pcap: Path, args: tuple[str, ...], out: Path) -> tuple[list[dict[str, object]], str]:
    """(conversations, stderr) of ``pcapsmtp live ARGS`` while ``pcap`` is replayed."""
    tag = f"{os.getpid() % 100000}"
    with replay_link((f"pcs-vcap-{tag}", f"pcs-vrep-{tag}"), ("pcsv0", "pcsv1")) as link:
        _, err = sniff_replay(link, ("pcsv0", "pcsv1"), pcap, out, (*args, "--format", "json"),
                              ("--pps=400",), drain_s=1.0)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    return [c for c in lines if "summary" not in c], err


@pytest.mark.parametrize("name", ["seed-vlan.pcap", "seed-qinq.pcap"])
def test_the_default_filter_takes_tagged_frames(name: str, tmp_path: Path) -> None:
    pcap = REPO / "captures" / name
    offline, _ = analyze_offline(pcap)
    assert len(offline) == 1
    got, err = _live(pcap, (), tmp_path / "live.jsonl")
    assert "vlan and (tcp port 25 " in err.splitlines()[0], err
    assert [verdict_key(c) for c in got] == [verdict_key(c) for c in offline], err


def test_a_plain_port_filter_misses_the_inner_tag(tmp_path: Path) -> None:
    """Why the default filter has its ``vlan`` part: with ``-f 'tcp port 25'`` a QinQ frame
    (its inner tag left in the data) is not taken, a single-tagged one is."""
    got, _ = _live(REPO / "captures" / "seed-qinq.pcap", ("-f", "tcp port 25"), tmp_path / "q.jsonl")
    assert got == []
    got, _ = _live(REPO / "captures" / "seed-vlan.pcap", ("-f", "tcp port 25"), tmp_path / "v.jsonl")
    assert len(got) == 1
