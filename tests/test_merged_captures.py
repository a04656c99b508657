"""Captures merged into one file keep every conversation's verdict, frame for frame.

A relay's capture holds many conversations at once; the repository's captures hold one
scenario each. Here groups of them are merged as ``mergecap`` merges taps (each input's
frames keep their order, the earliest head frame goes first), after moving each capture's
addresses into a range of its own (so no two captures share a 4-tuple) and its clock so that
all of them overlap in time. Every conversation of the merged file must get the verdict it
gets alone: outcome, side, reason, delivery, and every finding's code, side and frame, the
frame numbers translated from the capture alone to the merged file. Only the stream numbers
and the order of conversations may differ.

The reference is each capture as ``tests/transforms.py`` writes it back unchanged (loading
keeps only IP frames), so that frame numbers correspond one to one. Captures with frames
other than TCP segments (IP fragments, UDP, ICMP) are left out: their addresses are not
rewritten here.
"""
from __future__ import annotations

import dataclasses
import glob
import heapq
import ipaddress
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transforms as T  # noqa: E402

from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "corpus"
CAPTURES = sorted(glob.glob(str(REPO / "captures" / "*.pcap")))
#: the public corpus's captures (real clients and servers; small ones: scapy reads them)
WILD = sorted(str(p) for p in CORPUS.rglob("*")
              if p.suffix in (".pcap", ".pcapng", ".cap") and p.stat().st_size < 1_000_000)
GROUPS = 8
WILD_GROUPS = 3
#: every capture starts within this much of the merged file's first frame
SPREAD_NS = 2_000_000


def _renamed(cap: T.Capture, index: int) -> T.Capture:
    """``cap`` with each address moved into a range of its own (one to one, order kept)."""
    mapping: dict[str, str] = {}

    def new(addr: str) -> str:
        got = mapping.get(addr)
        if got is None:
            k = len(mapping) + 1
            if ":" in addr:
                got = str(ipaddress.IPv6Address(f"2001:db8:{index:x}::{k:x}"))
            else:
                got = str(ipaddress.IPv4Address(f"10.{index // 250}.{index % 250}.{k}"))
            mapping[addr] = got
        return got

    frames = [dataclasses.replace(f, src=new(f.src), dst=new(f.dst))
              for f in cap.frames if isinstance(f, T.Seg)]
    return cap.with_frames(frames)


def _merged(caps: list[T.Capture]) -> tuple[T.Capture, list[list[int]]]:
    """The captures merged as taps are (each one's frames in order, the earliest head
    first), each moved in time to start near the first one. -> (merged capture, for each
    input its frames' numbers in the merged file)."""
    t0 = min(c.frames[0].ts_ns for c in caps)
    tagged = []
    for i, c in enumerate(caps):
        shift = t0 + i * SPREAD_NS // len(caps) - c.frames[0].ts_ns
        tagged.append([(f.ts_ns + shift, i, j, f) for j, f in enumerate(c.frames)])
    where: list[list[int]] = [[0] * len(c.frames) for c in caps]
    frames = []
    for n, (ts, i, j, f) in enumerate(heapq.merge(*tagged, key=lambda x: (x[0], x[1])), 1):
        where[i][j] = n
        frames.append(dataclasses.replace(f, ts_ns=ts))
    return caps[0].with_frames(frames), where


def _key(c: dict[str, Any]) -> tuple[Any, ...]:
    return (c["client"]["ip"], c["client"]["port"], c["server"]["ip"], c["server"]["port"])


def _verdict(c: dict[str, Any], frame: Any = lambda n: n) -> dict[str, Any]:
    return {
        "outcome": c["outcome"], "caused_by": c["caused_by"], "reason": c["reason"],
        "delivered": c.get("delivered"), "first_frame": frame(c["first_frame"]),
        "findings": sorted((f["code"], f["side"], None if f["frame"] is None else frame(f["frame"]))
                           for f in c["findings"]),
    }


def _usable(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        try:
            cap = T.load(p)
        except Exception:  # noqa: BLE001 - a link type scapy does not read
            continue
        if cap.frames and all(isinstance(f, T.Seg) for f in cap.frames):
            out.append(p)
    return out


@pytest.fixture(scope="module")
def usable() -> dict[str, list[str]]:
    return {"repo": _usable(CAPTURES), "wild": _usable(WILD)}


@pytest.mark.parametrize("kind, group", [("repo", g) for g in range(GROUPS)]
                         + [("wild", g) for g in range(WILD_GROUPS)])
def test_merged_captures_keep_every_verdict(tmp_path: Path, usable: dict[str, list[str]],
                                            kind: str, group: int) -> None:
    if kind == "wild" and not CORPUS.is_dir():
        pytest.fail("the public capture corpus (tests/corpus) is missing")
    names = usable[kind][group::GROUPS if kind == "repo" else WILD_GROUPS]
    assert len(names) >= 10, "too few captures to merge"
    caps, alone = [], []
    ports: set[int] = set()
    for i, name in enumerate(names):
        cap = _renamed(T.load(name), group * 1000 + i)
        found = analyze_file(str(T.save(cap, tmp_path / f"alone-{i}.pcap"))).conversations
        ports |= {c["server"]["port"] for c in found}
        caps.append(cap)
        alone.append(found)
    merged, where = _merged(caps)
    config = AnalysisConfig(ports=frozenset(ports) | T.DEFAULT_PORTS)
    # the reference again with the merged run's port set (content-found conversations on
    # other ports are then found by port, as in the merged run)
    alone = [analyze_file(str(tmp_path / f"alone-{i}.pcap"), config).conversations
             for i in range(len(caps))]
    got = analyze_file(str(T.save(merged, tmp_path / "merged.pcap")), config).conversations
    assert sum(map(len, alone)) >= len(names) // 2       # (some wild files hold no SMTP)
    want: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for i, convs in enumerate(alone):
        for c in convs:
            want.setdefault(_key(c), []).append(
                _verdict(c, lambda n, i=i: where[i][n - 1]))
    have: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for c in got:
        have.setdefault(_key(c), []).append(_verdict(c))
    assert sorted(have) == sorted(want), "conversations found differ"
    wrong = {k: (want[k], have[k]) for k in want if want[k] != have[k]}
    assert not wrong, "\n".join(f"{k}:\n  alone  {w}\n  merged {h}" for k, (w, h) in wrong.items())
