"""Suite-wide checks before any test runs.

The public capture corpus (tests/corpus) is part of the repository: a file listed in its
MANIFEST.tsv that is missing is an error of the checkout, so the run stops with that error
instead of skipping or quietly shrinking the parametrised tests."""
from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "corpus"


def missing_corpus_files(corpus: Path = CORPUS) -> list[str]:
    """Files named in MANIFEST.tsv (first column) that are not in the corpus folder."""
    manifest = corpus / "MANIFEST.tsv"
    if not manifest.is_file():
        return [str(manifest)]
    rows = manifest.read_text(encoding="utf-8").splitlines()[1:]
    names = [row.split("\t", 1)[0] for row in rows if row.strip()]
    return [n for n in names + ["TRUTH.md"] if not (corpus / n).is_file()]


def pytest_configure(config: pytest.Config) -> None:
    missing = missing_corpus_files()
    if missing:
        raise pytest.UsageError(
            f"tests/corpus is incomplete: {len(missing)} file(s) of MANIFEST.tsv missing, first "
            f"{missing[0]} (the corpus is part of the repository: restore it with git checkout)")
