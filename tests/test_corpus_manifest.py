"""tests/corpus is complete and accounted for: every file is in MANIFEST.tsv (source repository,
path, commit, licence) and every manifest row is a file; NOTICE sums the manifest up per source
with the right counts, commits and licences."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
OWN = {"MANIFEST.tsv", "TRUTH.md", "NOTICE"}


def _rows() -> list[dict[str, str]]:
    lines = (CORPUS / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    head = lines[0].split("\t")
    assert head[:5] == ["file", "source_repo", "source_path", "commit", "license_of_repo"], head
    return [dict(zip(head, ln.split("\t"))) for ln in lines[1:] if ln.strip()]


def test_every_file_is_in_the_manifest_and_every_row_is_a_file() -> None:
    listed = [r["file"] for r in _rows()]
    assert len(listed) == len(set(listed)), "a file is listed twice"
    present = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()} - OWN
    assert present - set(listed) == set(), "files without provenance"
    assert set(listed) - present == set(), "listed files missing"


def test_each_row_names_repository_path_commit_and_licence() -> None:
    for r in _rows():
        owner_repo = r["source_repo"]
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", owner_repo), r
        assert r["file"].startswith(owner_repo.replace("/", "__") + "/"), r
        assert r["file"].endswith(r["source_path"].replace("/", "__")), r
        assert re.fullmatch(r"[0-9a-f]{40}", r["commit"]), r
        assert r["license_of_repo"].strip(), r


def test_notice_sums_up_the_manifest_per_source() -> None:
    notice = (CORPUS / "NOTICE").read_text(encoding="utf-8")
    rows = _rows()
    for repo, count in Counter(r["source_repo"] for r in rows).items():
        mine = [r for r in rows if r["source_repo"] == repo]
        commits = {r["commit"] for r in mine}
        licences = {r["license_of_repo"] for r in mine}
        assert len(commits) == 1 and len(licences) == 1, (repo, commits, licences)
        line = next((ln for ln in notice.splitlines()
                     if ln.startswith(repo.replace("/", "__") + " ")), None)
        assert line, f"NOTICE has no row for {repo}"
        assert f"github.com/{repo} ({commits.pop()[:12]})" in line, line
        assert re.search(rf"\s{count}\s", line), (line, count)
        licence = licences.pop()
        first_word = licence.split()[0].rstrip(";")
        assert first_word.lower() in line.lower() or ("no licence" in line and "no LICENSE" in licence), \
            (line, licence)
