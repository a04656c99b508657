"""The cyclic collector during a run (``engine.analyzer._collector_for_the_run``): tuned while
``analyze_file`` runs, put back exactly as it was afterwards (thresholds, frozen objects), left
alone when the caller turned it off or raised it, no freeze of its own when the caller froze
objects (the threshold still raised); the answers are the same with and without the tuning."""
from __future__ import annotations

import gc
from pathlib import Path
from typing import Any, Iterator

import pytest

from pcapsmtp.engine import analyzer as analyzer_mod
from pcapsmtp.engine.analyzer import RUN_GC_THRESHOLD, analyze_file

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
SAMPLE = CAPTURES / "client-did-not-request.pcap"


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    old = gc.get_threshold()
    enabled = gc.isenabled()
    frozen = gc.get_freeze_count()
    yield
    gc.set_threshold(*old)
    if enabled:
        gc.enable()
    else:
        gc.disable()
    if gc.get_freeze_count() and not frozen:
        gc.unfreeze()


def _seen_during_run(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Record (threshold, frozen count) from inside the run (at each conclusion)."""
    seen: list[tuple[Any, ...]] = []
    orig = analyzer_mod.Analyzer._conclude

    def conclude(self: Any, c: Any, **kw: Any) -> Any:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return orig(self, c, **kw)

    monkeypatch.setattr(analyzer_mod.Analyzer, "_conclude", conclude)
    return seen


def test_tuned_during_the_run_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SAMPLE.exists()
    gc.set_threshold(700, 10, 10)
    seen = _seen_during_run(monkeypatch)
    res = analyze_file(str(SAMPLE))
    assert res.conversations and seen
    assert all(th == (RUN_GC_THRESHOLD, 10, 10) and frozen > 0 for th, frozen in seen)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()


def test_restored_after_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.set_threshold(700, 10, 10)

    def boom(*_a: Any, **_k: Any) -> Any:
        assert gc.get_threshold()[0] == RUN_GC_THRESHOLD
        raise RuntimeError("boom")

    monkeypatch.setattr(analyzer_mod, "_analyze_files", boom)
    with pytest.raises(RuntimeError):
        analyze_file(str(SAMPLE))
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("setup", ["disabled", "higher", "frozen"])
def test_left_alone_when_the_caller_chose(setup: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gc.set_threshold(700, 10, 10)
    if setup == "disabled":
        gc.disable()
    elif setup == "higher":
        gc.set_threshold(RUN_GC_THRESHOLD * 2, 5, 5)
    else:
        gc.freeze()
    before = (gc.get_threshold(), gc.isenabled())
    frozen = gc.get_freeze_count()
    seen = _seen_during_run(monkeypatch)
    analyze_file(str(SAMPLE))
    if setup == "frozen":
        # the caller's frozen objects stay frozen (none unfrozen by the run); the threshold is
        # still raised for the run
        assert all(th[0] == RUN_GC_THRESHOLD for th, _ in seen)
        assert frozen > 0 and gc.get_freeze_count() == frozen
        assert all(f == frozen for _, f in seen)
    else:
        assert all(th == before[0] for th, _ in seen)
    assert (gc.get_threshold(), gc.isenabled()) == before


def test_same_answers_with_the_default_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted(CAPTURES.glob("*.pcap"))[:40]
    tuned = [analyze_file(str(f)).conversations for f in files]
    monkeypatch.setattr(analyzer_mod, "RUN_GC_THRESHOLD", 1)   # "already higher": untouched
    gc.set_threshold(50, 1, 1)                                  # collect very often
    plain = [analyze_file(str(f)).conversations for f in files]
    assert tuned == plain
