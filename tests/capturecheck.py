"""Helpers the capture tests share: one conversation of a generated capture and the facts its
verdict is checked by, and a run of ``pcapsmtp analyze`` in a fresh interpreter (its time and
peak resident size, for the tests of bounded resources)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from pcapsmtp.engine.analyzer import analyze_path

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"


def one_conv(name: str) -> dict[str, Any]:
    """The one conversation of ``captures/NAME``."""
    (conv,) = analyze_path(str(CAPTURES / name))
    return conv


def verdict_of(conv: dict[str, Any]) -> tuple[str, str, str, str | None, int | None]:
    """(outcome, caused_by, reason, case, evidence frame)."""
    return conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case"), conv["evidence_frame"]


def findings_of(conv: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    """(code, side, frame) of every finding, in order."""
    return [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]


_MEASURE = r"""
import io, json, resource, sys, time
from pcapsmtp.commands.main import main
t = time.perf_counter()
out = io.StringIO()
rc = main(["analyze", "--format", "json", "-q", sys.argv[1]], out=out, err=sys.stderr)
dt = time.perf_counter() - t
print(json.dumps({"rc": rc, "seconds": dt, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "out": out.getvalue()}))
"""


def measure(path: Path) -> dict[str, Any]:
    """Analyse ``path`` in a fresh interpreter: its exit status (``rc``), time (``seconds``),
    peak RSS (``maxrss_kb``) and conversations (``convs``)."""
    r = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True, cwd=REPO,
                       timeout=600)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    res = json.loads(r.stdout)
    res["convs"] = [json.loads(x) for x in res.pop("out").splitlines()]
    return res
