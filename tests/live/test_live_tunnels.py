"""``pcapsmtp live`` on a mirror session that arrives in a tunnel: ``tcpreplay`` sends the
ERSPAN, VXLAN and Geneve seed captures (captures/seed-*.pcap) over a veth pair between two
network namespaces made here, ``pcapsmtp live`` sniffs the other end with the filter
docs/live.md gives for such a feed, and must print the verdict ``analyze`` gives for the same
file: the inner conversation, its addresses, its evidence frame.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.live, pytest.mark.netns]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from vethns import replay_link, sniff_replay  # noqa: E402

ENV = dict(os.environ, PYTHONPATH=str(REPO))
TUNNEL_FILTER = "proto gre or udp port 4789 or udp port 6081"


def _analyze(pcap: Path) -> list[dict[str, object]]:
    r = subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", "--format", "json", str(pcap)],
                       capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode in (0, 1), r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


def _key(c: dict[str, object]) -> tuple[object, ...]:
    return (c["client"], c["server"], c["outcome"], c["caused_by"], c["reason"], c["evidence_frame"],
            [(f["code"], f["frame"]) for f in c["findings"]])  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["seed-erspan2.pcap", "seed-vxlan.pcap", "seed-geneve.pcap"])
def test_live_unwraps_a_mirror_session(name: str, tmp_path: Path) -> None:
    pcap = REPO / "captures" / name
    offline = _analyze(pcap)
    assert len(offline) == 1
    tag = f"{os.getpid() % 100000}"
    with replay_link((f"pcs-tcap-{tag}", f"pcs-trep-{tag}"), ("pcst0", "pcst1")) as link:
        out = tmp_path / "live.jsonl"
        _, err = sniff_replay(link, ("pcst0", "pcst1"), pcap, out,
                              ("-f", TUNNEL_FILTER, "--format", "json"), ("--pps=200",), drain_s=2.0)
    assert TUNNEL_FILTER in err.splitlines()[0]
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    got = [c for c in lines if "summary" not in c]
    (summary,) = [c["summary"] for c in lines if "summary" in c]
    assert summary["capture"]["dropped_by_kernel"] == 0
    assert [_key(c) for c in got] == [_key(c) for c in offline], err
    assert got[0]["client"] == {"ip": "192.0.2.10", "port": got[0]["client"]["port"]}  # the inner address
