"""Every shipped capture with the capturing host's clock stepped back mid-capture
(``transforms.clock_step``: NTP stepping the clock back an hour, or two hosts' captures put one after
the other), at the frame after the longest pause of an SMTP conversation, where the waits the
verdicts rest on lie: a duration across the step cannot be measured (``pcapsmtp.analysis.clock``),
so a verdict may become ``incomplete``/``unknown`` but never blames another side than the
unstepped capture does. A connection without payload may become a conversation (``incomplete``:
whether a client waited 30 s for a greeting is a duration across the step); no other conversation
appears or disappears.

Cheap: one analysis of each capture as written back and one with the step (the public corpus is
left out; ``tests/test_transforms.py`` covers it for the other transformations)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transforms as T  # noqa: E402

from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: how far the clock steps back: an hour (NTP, a merge of two hosts' files), and the pause it
#: falls in and three seconds more (a step barely longer than the wait it cuts: the file's time
#: goes back 3 s at the frame)
STEPS = ((3600 * 10**9, False), (3 * 10**9, True))
CAPTURES = sorted(p.relative_to(REPO).as_posix() for d in ("captures", "captures/pairs", "captures/hostile")
                  for p in (REPO / d).iterdir()
                  if p.is_file() and p.name.endswith((".pcap", ".pcapng", ".pcap.gz")))


def _convs(path: Path, ports: set[int]) -> dict[tuple[int, int], dict[str, Any]]:
    res = analyze_file(str(path), AnalysisConfig(ports=frozenset(ports)))
    assert res.error is None, res.error
    return {(c["client"]["port"], c["server"]["port"]): c for c in res.conversations}


def test_the_sweep_has_captures_with_waits() -> None:
    """(A guard: the sweep covers the captures whose verdicts rest on waits.)"""
    assert {"captures/hang-starttls-silent.pcap", "captures/wallclock-step-fallback.pcap",
            "captures/pathhole-hello-fin.pcap", "captures/wild-server-silent-greeting-quit.pcap"} <= set(CAPTURES)


@pytest.mark.parametrize("chunk", range(4))
def test_a_clock_stepped_back_blames_no_other_side(tmp_path: Path, chunk: int) -> None:
    failures: list[str] = []
    stepped = 0
    for name in CAPTURES[chunk::4]:
        base = T.load(REPO / name)
        if not any(isinstance(f, T.Seg) for f in base.frames):
            continue
        ref_path = T.save(base, tmp_path / "identity.pcap")
        found = analyze_file(str(ref_path)).conversations
        ports = set(T.DEFAULT_PORTS) | {c["server"]["port"] for c in found}
        reference = _convs(ref_path, ports)
        cap = T.apply(base, T.with_ports(ports))
        for back, behind in STEPS:
            out = T.apply(cap, T.clock_step(back, behind=behind))
            got = _convs(T.save(out, tmp_path / "stepped.pcap"), ports)
            what = f"{name} {out.notes[-1]}"
            stepped += any(f["code"] == "clock-step" for c in got.values() for f in c["findings"])
            for key, r in reference.items():
                g = got.get(key)
                if g is None:
                    failures.append(f"{what}: conversation {key} disappeared")
                elif g["caused_by"] not in (r["caused_by"], "unknown"):
                    failures.append(f"{what}: {key}: {r['reason']} ({r['caused_by']}) became "
                                    f"{g['reason']} ({g['caused_by']}): {g['detail']}")
            for key in set(got) - set(reference):
                if (got[key]["outcome"], got[key]["caused_by"]) != ("incomplete", "unknown"):
                    failures.append(f"{what}: a new conversation {key}: {got[key]['reason']}")
    assert stepped, "no conversation of this share saw the step (the transform does nothing)"
    assert not failures, "\n".join(failures)
