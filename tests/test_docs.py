"""The generated verdict reference is current, and every code the tool can emit is documented."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from pcapsmtp.analysis.reasons import FINDINGS, REASONS

ROOT = Path(__file__).resolve().parents[1]


def _gen():
    spec = importlib.util.spec_from_file_location("gen_verdicts", ROOT / "docs" / "gen_verdicts.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def test_verdicts_md_is_generated_from_the_reason_table() -> None:
    assert (ROOT / "docs" / "verdicts.md").read_text() == _gen().render(), \
        "docs/verdicts.md is stale: run python docs/gen_verdicts.py"


def test_every_code_the_code_emits_is_in_the_table() -> None:
    """Reason and finding codes written anywhere in the analysis must be catalogued."""
    src = "\n".join(p.read_text() for p in (ROOT / "pcapsmtp" / "analysis").glob("*.py"))
    reasons = set(re.findall(r'v\.set\(\s*"[a-z]+",\s*(?:"[a-z]+"|side),\s*"([a-z0-9-]+)"', src))
    findings = set(re.findall(r'(?:v\.finding|LineFinding)\(\s*"([a-z0-9-]+)"', src))
    assert reasons and findings
    assert reasons <= set(REASONS), reasons - set(REASONS)
    assert findings <= set(FINDINGS), findings - set(FINDINGS)


def test_readme_names_the_two_quick_start_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "pip install . && pcapsmtp explain captures/seed-starttls-first-line.pcap" in text
    assert "bash tests/run.sh" in text
    assert "tests/run.sh" in (ROOT / ".ci" / "run").read_text()
