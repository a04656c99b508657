"""docs/output.md is the output contract: every key the JSON output carries, every reason and
finding code, every CSV column and every summary counter must be on it. The keys are collected
from real output (every capture in captures/ and tests/corpus, one file at a time and all files
at once), so a key another change adds fails here until it is documented."""
from __future__ import annotations

import ast
import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.analysis.reasons import FINDINGS, REASONS
from pcapsmtp.analysis.summary import merge_summaries
from pcapsmtp.engine.analyzer import analyze_file
from pcapsmtp.render.text import CSV_FIELDS, ROTATED_CSV_FIELDS, render_jsonl
from pcapsmtp.tcp.config import ReassemblyStats

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "output.md").read_text(encoding="utf-8")
CAPTURES = sorted(p for p in (ROOT / "captures").glob("*.pcap*") if p.is_file()) + sorted(
    p for p in (ROOT / "tests" / "corpus").rglob("*") if p.name.endswith((".pcap", ".pcapng")))

#: Objects whose keys are data (an outcome, a reason, an offer), not names: documented as a map.
MAPS = {"summary.outcomes", "summary.reasons", "summary.servers[].downgraded",
        "summary.servers[].offered", "summary.reassembly"}


def _paths(value: Any, prefix: str, out: set[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else k
            out.add(path)
            if path not in MAPS:
                _paths(v, path, out)
    elif isinstance(value, list):
        for v in value:
            _paths(v, prefix + "[]", out)


@pytest.fixture(scope="module")
def emitted() -> set[str]:
    keys: set[str] = set()
    summaries = []
    for path in CAPTURES:
        res = analyze_file(str(path))
        for conv in res.conversations:
            _paths(json.loads(render_jsonl(conv)), "", keys)
        _paths({"summary": json.loads(json.dumps(res.summary, default=str))}, "", keys)
        summaries.append(res.summary)
    _paths({"summary": json.loads(json.dumps(merge_summaries(summaries), default=str))}, "", keys)
    assert len(keys) > 80
    return keys


def _documented(name: str) -> bool:
    return f"`{name}`" in DOC


def test_every_emitted_key_is_documented(emitted: set[str]) -> None:
    missing = sorted(k for k in emitted if not _documented(k))
    assert not missing, f"keys written by pcapsmtp but not in docs/output.md: {missing}"


def _section(title: str) -> str:
    start = DOC.index(f"\n## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:end if end > 0 else None]


def _rows(title: str) -> list[str]:
    return re.findall(r"^\| `([a-z0-9-]+)` \|", _section(title), re.M)


def test_every_reason_and_finding_code_has_its_row() -> None:
    assert sorted(REASONS) == sorted(_rows("Reason codes")), "docs/output.md: Reason codes"
    assert sorted(FINDINGS) == sorted(_rows("Finding codes")), "docs/output.md: Finding codes"


def test_csv_columns_and_reassembly_counters_are_documented() -> None:
    csv_doc = _section("CSV (`--format csv`)")
    listed = re.findall(r"`([a-z_]+)`", csv_doc[:csv_doc.index("\n\n", 40)])
    assert listed[:len(CSV_FIELDS)] == CSV_FIELDS, "docs/output.md: the CSV columns, in order"
    extra = [c for c in ROTATED_CSV_FIELDS if c not in CSV_FIELDS]
    assert extra and all(f"`{c}`" in csv_doc for c in extra), "docs/output.md: rotated CSV columns"
    counters = [f.name for f in fields(ReassemblyStats)]
    assert all(_documented(c) for c in counters), [c for c in counters if not _documented(c)]


def test_live_capture_summary_keys_are_documented() -> None:
    """``summary.capture`` of ``live`` (not produced without root): its keys read from the code
    that builds it."""
    src = (ROOT / "pcapsmtp" / "capture" / "live.py").read_text()
    tree = ast.parse(src)
    stats = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "stats")
    keys = {k.value for n in ast.walk(stats) if isinstance(n, ast.Dict)
            for k in n.keys if isinstance(k, ast.Constant)}
    keys |= {n.slice.value for n in ast.walk(stats) if isinstance(n, ast.Subscript)
             and isinstance(n.slice, ast.Constant) and isinstance(n.ctx, ast.Store)}
    live = (ROOT / "pcapsmtp" / "commands" / "live.py").read_text()
    keys |= set(re.findall(r'capture\["(\w+)"\]\s*=', live))
    assert {"interface", "received", "dropped_by_kernel", "undecodable"} <= keys, keys
    missing = sorted(k for k in keys if not _documented(k))
    assert not missing, f"live summary.capture keys not in docs/output.md: {missing}"
