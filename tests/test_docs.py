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


def test_every_catalogued_finding_is_emitted_somewhere() -> None:
    """No dead codes: a finding listed in reasons.py (and so documented) is written by the
    code, in the analysis (v.finding, LineFinding) or as a finding dict elsewhere."""
    src = "\n".join(p.read_text() for p in (ROOT / "pcapsmtp").rglob("*.py")
                    if p.name != "reasons.py")
    emitted = set(re.findall(r'(?:v\.finding\(|LineFinding\(|_unanswered\(v,\s*\w+,)\s*"([a-z0-9-]+)"',
                             src))
    emitted |= set(re.findall(r'"code":\s*"([a-z0-9-]+)"', src))
    assert set(FINDINGS) - emitted == set()


def test_every_finding_has_an_action_and_an_example_or_a_reason_for_none() -> None:
    """docs/verdicts.md tells the admin what to do about every finding, and names an example
    capture for each, or says why no capture can show it and how it is tested instead."""
    gen = _gen()
    _, by_finding = gen.examples()
    text = (ROOT / "docs" / "verdicts.md").read_text()
    for code, info in FINDINGS.items():
        assert info.action.strip() and info.action.rstrip().endswith((".", ")")), code
        assert f"- `{code}`: {info.action}" in text, code
        assert (code in by_finding) != (code in gen.NO_CAPTURE), code
    for code, (_, how) in gen.NO_CAPTURE.items():
        assert "tests/" in how, code


def test_every_reason_case_is_documented_with_an_example() -> None:
    from pcapsmtp.analysis.reasons import REASON_CASES
    text = (ROOT / "docs" / "verdicts.md").read_text()
    for (reason, case), info in REASON_CASES.items():
        assert reason in REASONS and info.finding in FINDINGS, (reason, case)
        assert f"Case `{case}`: {info.title}" in text and info.remedy in text, (reason, case)
        assert f"case:{reason}:{case}" in _gen().examples()[0], (reason, case)


def test_every_case_example_reads_as_that_case() -> None:
    """docs/gen_verdicts.py picks a case's example from the generators' truth by reason, blame
    and finding (the truth names no case): the conversation it picks must read as that case when
    analyzed, or the reference would show another case's capture as the example."""
    from pcapsmtp.engine.analyzer import analyze_path
    examples = _gen().examples()[0]
    for key, where in examples.items():
        if not key.startswith("case:"):
            continue
        _, reason, case = key.split(":")
        m = re.fullmatch(r"(captures/\S+) \(stream (\d+)\)", where)
        assert m is not None, where
        (conv,) = [c for c in analyze_path(str(ROOT / m.group(1))) if c["stream"] == int(m.group(2))]
        assert (conv["reason"], conv.get("case")) == (reason, case), where


def test_readme_names_the_two_quick_start_commands() -> None:
    """The quick start works on a fresh Debian: a virtual environment (Debian's Python refuses a
    bare ``pip install``), the main job on a shipped capture, and the test script CI runs."""
    text = (ROOT / "README.md").read_text()
    first = next(ln.strip() for ln in text.splitlines() if "python3 -m venv .venv" in ln)
    assert "python3-venv" in first and ".venv/bin/pip install ." in first
    shipped = re.search(r"\.venv/bin/pcapsmtp \w+ (captures/\S+)", first)
    assert shipped and (ROOT / shipped.group(1)).is_file(), first
    assert "    bash tests/run.sh\n" in text
    assert "tests/run.sh" in (ROOT / ".ci" / "run").read_text()


def test_no_doc_tells_users_to_install_an_unpublished_package() -> None:
    """pcapsmtp is not on PyPI: ``pip install pcapsmtp`` (or ``'pcapsmtp[extra]'``) would fetch
    nothing, or someone else's package. Docs, help texts and messages say to install the clone."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
                 *sorted((ROOT / "pcapsmtp").rglob("*.py"))]:
        assert not re.search(r"pip\S* install\s+(-\S+\s+)*['\"]?pcapsmtp\b", path.read_text()), path


def _markdown_links(md: Path) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", md.read_text())


def test_relative_links_resolve_inside_the_repository() -> None:
    """Every relative link of README.md, docs/, captures/ and tests/corpus points at a file of the
    repository (not at a sibling folder of the clone, not at a machine path)."""
    mds = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
           *sorted((ROOT / "captures").glob("*.md")), *sorted((ROOT / "tests" / "corpus").glob("*.md"))]
    bad = []
    for md in mds:
        for link in _markdown_links(md):
            if re.match(r"[a-z]+:", link) or link.startswith("#"):
                continue
            target = (md.parent / link.split("#", 1)[0]).resolve()
            if not target.exists() or ROOT.resolve() not in target.parents:
                bad.append(f"{md.relative_to(ROOT)}: {link}")
    assert not bad, bad


#: spelled in two pieces so that this file does not match itself
MACHINE_PATHS = (".." + "/shared", "/wo" + "rk/")


def test_no_file_refers_to_the_machine_it_was_written_on() -> None:
    """No test, doc, comment or script points at the sibling folder of the old layout (dot-dot
    slash shared) or at an absolute path of the machine it was written on: a clone must be the
    whole project."""
    import subprocess
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    bad = []
    for name in files.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file() or name.startswith("tests/corpus/"):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if any(m in line for m in MACHINE_PATHS):
                bad.append(f"{name}:{n}: {line.strip()}")
    assert not bad, "\n".join(bad)
