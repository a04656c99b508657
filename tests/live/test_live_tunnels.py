"""``pcapsmtp live`` on a mirror session that arrives in a tunnel: ``tcpreplay`` sends the
ERSPAN, VXLAN and Geneve seed captures (captures/seed-*.pcap, VXLAN in outer IPv4 and IPv6
fragments among them) over a veth pair between two network namespaces made here, ``pcapsmtp
live --tunnels`` sniffs the other end, and must print the verdict ``analyze`` gives for the
same file: the inner conversation, its addresses, its evidence frame. Without ``--tunnels``
the default filter lets none of it through; with ``-f`` the tunnels are added to that filter.
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

TUNNEL_FILTER = "proto 4 or proto 41 or proto 47 or udp port 4789 or udp port 6081"


def _live(pcap: Path, args: tuple[str, ...], out: Path) -> tuple[list[dict[str, object]], dict[str, object], str]:
    """(conversations, summary, stderr) of ``pcapsmtp live ARGS`` while ``pcap`` is replayed."""
    tag = f"{os.getpid() % 100000}"
    with replay_link((f"pcs-tcap-{tag}", f"pcs-trep-{tag}"), ("pcst0", "pcst1")) as link:
        _, err = sniff_replay(link, ("pcst0", "pcst1"), pcap, out, (*args, "--format", "json"),
                              ("--pps=400",), drain_s=1.0)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    (summary,) = [c["summary"] for c in lines if "summary" in c]
    return [c for c in lines if "summary" not in c], summary, err


@pytest.mark.parametrize("name", ["seed-erspan2.pcap", "seed-vxlan.pcap", "seed-geneve.pcap",
                                  "seed-vxlan-fragments.pcap", "seed-vxlan6-fragments.pcap"])
def test_live_unwraps_a_mirror_session(name: str, tmp_path: Path) -> None:
    pcap = REPO / "captures" / name
    offline, _ = analyze_offline(pcap)
    assert len(offline) == 1
    got, summary, err = _live(pcap, ("--tunnels",), tmp_path / "live.jsonl")
    assert TUNNEL_FILTER in err.splitlines()[0] and "tcp port 25" in err.splitlines()[0]
    assert summary["capture"]["dropped_by_kernel"] == 0  # type: ignore[index]
    assert [verdict_key(c) for c in got] == [verdict_key(c) for c in offline], err
    assert got[0]["client"] == {"ip": "192.0.2.10", "port": got[0]["client"]["port"]}  # type: ignore[index]


def test_without_tunnels_the_default_filter_lets_none_through_and_f_gets_them_added(tmp_path: Path) -> None:
    """The default filter (SMTP ports, fragments) takes no packet of a VXLAN mirror session but
    its non-first outer fragments, so no conversation; ``-f 'udp port 4789' --tunnels`` adds the
    tunnels (and fragments) to the filter given."""
    pcap = REPO / "captures" / "seed-vxlan-fragments.pcap"
    got, summary, err = _live(pcap, (), tmp_path / "default.jsonl")
    assert got == [] and TUNNEL_FILTER not in err.splitlines()[0]
    got, summary, err = _live(pcap, ("-f", "udp port 9", "--tunnels"), tmp_path / "f.jsonl")
    assert err.splitlines()[0].endswith(f"filter: (udp port 9) or {TUNNEL_FILTER} or (ip[6:2] & 0x1fff != 0) "
                                        f"or (ip6 and ip6[6] == 44)")
    assert [verdict_key(c) for c in got] == [verdict_key(c) for c in analyze_offline(pcap)[0]]
