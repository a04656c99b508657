"""Helpers the capture tests share: one conversation of a generated capture and the facts its
verdict is checked by, a run of ``pcapsmtp analyze`` in a fresh interpreter (its time and
peak resident size, for the tests of bounded resources), and tshark's fields of every frame of
a shipped capture, read once per session for the sweeps that check them."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

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


#: the fields of every frame that ``tshark_frames`` reads: frame number, TCP stream, the
#: severities of tshark's expert infos (``tests/test_captures_expected.py``: no errors) and the
#: protocol stack (``tests/tcp/test_tcp_tshark.py``: frames with a stream that are not TCP are ICMP)
TSHARK_FIELDS = ("frame.number", "tcp.stream", "_ws.expert.severity", "frame.protocols")
#: the most ``follow,tcp,raw`` streams one read asks tshark for (``tests/tcp/_tcp_corpus.py``)
MAX_FOLLOW = 50


@dataclass(frozen=True)
class TsharkFrames:
    """One ``tshark -T fields`` read of a capture."""

    returncode: int
    stderr: str
    #: one row per frame: the values of ``TSHARK_FIELDS`` (several occurrences joined by ",")
    rows: tuple[tuple[str, ...], ...]
    #: the streams whose ``follow,tcp,raw`` the same run printed after the rows (``take_follow``)
    followed: frozenset[int] = frozenset()
    follow: str = ""


#: (resolved path, SHA-256 of its bytes) -> tshark's read of the file
_TSHARK: dict[tuple[str, str], TsharkFrames] = {}


def _key(path: Path) -> tuple[str, str]:
    where = path.resolve()
    return str(where), hashlib.sha256(where.read_bytes()).hexdigest()


def tshark_frames(path: Path, follow: Iterable[int] = ()) -> TsharkFrames:
    """``TSHARK_FIELDS`` of every frame of ``path`` as tshark dissects it (no name resolution),
    and in the same run the ``follow,tcp,raw`` output of the streams ``follow`` (at most
    ``MAX_FOLLOW``), which ``take_follow`` hands out once. Three sweeps run tshark over every
    shipped capture for these (tests/test_captures_expected.py, both tests of
    tests/tcp/test_tcp_tshark.py), and tshark takes a fifth of a second to start: a read of the
    same bytes is made once per session (the result is immutable) and a changed file is read
    again. tshark prints the follow output after the rows, each as it would alone."""
    key = _key(path)
    want = frozenset(follow)
    assert len(want) <= MAX_FOLLOW, len(want)
    got = _TSHARK.get(key)
    if got is None or not want <= got.followed:
        fields = [a for f in TSHARK_FIELDS for a in ("-e", f)]
        streams = [a for s in sorted(want) for a in ("-z", f"follow,tcp,raw,{s}")]
        proc = subprocess.run(["tshark", "-n", "-r", key[0], "-T", "fields", "-E", "occurrence=a",
                               "-E", "aggregator=,", *fields, *streams],
                              capture_output=True, text=True, timeout=300)
        lines = proc.stdout.splitlines()
        # the rows (each starts with its frame number), then an empty line and the follow output
        n = next((i for i, ln in enumerate(lines) if not ln[:1].isdigit()), len(lines))
        rows = tuple(tuple(ln.split("\t")) for ln in lines[:n])
        got = _TSHARK[key] = TsharkFrames(proc.returncode, proc.stderr, rows, want,
                                          "\n".join(lines[n:]) if want else "")
    return got


def take_follow(path: Path, streams: Iterable[int]) -> str:
    """tshark's ``follow,tcp,raw`` output for ``streams`` of ``path``: the one a ``tshark_frames``
    read made with them, dropped from the session's store once taken (only one sweep reads it),
    else a new read's."""
    got = tshark_frames(path, streams)
    key = _key(path)
    _TSHARK[key] = dataclasses.replace(got, followed=frozenset(), follow="")
    return got.follow
