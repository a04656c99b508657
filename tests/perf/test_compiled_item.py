"""``model.Item``, the verdict's observation (one per event), is an extension type in the compiled
build (model.pxd): it must behave as the ``@dataclass`` of model.py does, in everything the
verdict and the other readers use: built by position or by keyword, equal by value (the verdict
sorts ``(position, item)`` pairs, and two equal items at one position must compare equal, not go
on to ``<``), unhashable, unordered, assignable fields, the same repr, ``dataclasses.fields`` and
``dataclasses.replace``, and pickled whole (``-j`` hands transcripts between processes)."""
from __future__ import annotations

import dataclasses
import importlib.util
import pickle
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import pcapsmtp.model as model
from pcapsmtp.analysis import verdict


def _pure_model() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_pure_model_for_item", Path(model.__file__).with_name("model.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod    # (dataclasses reads the class's module)
    spec.loader.exec_module(mod)
    return mod


PURE = _pure_model()
BUILDS = [pytest.param(PURE.Item, id="pure")]
if not model.__file__.endswith(".py"):
    BUILDS.append(pytest.param(model.Item, id="compiled"))


def test_the_verdict_reads_the_model_s_item() -> None:
    assert verdict.Item is model.Item


@pytest.mark.parametrize("cls", BUILDS)
def test_built_by_position_or_keyword(cls: Any) -> None:
    a = cls("ev", (3, 4), 7)
    b = cls(event="ev", frames=(3, 4), ts_ns=7, line_frames=None)
    assert (a.event, a.frames, a.ts_ns, a.line_frames) == ("ev", (3, 4), 7, None)
    assert a == b and not a != b
    lf = {10: 3}
    c = cls("ev", (3,), 7, lf)
    assert c.line_frames is lf
    with pytest.raises(TypeError):
        cls("ev", (3,))
    with pytest.raises(TypeError):
        cls("ev", (3,), 7, None, 1)


@pytest.mark.parametrize("cls", BUILDS)
def test_equal_by_value_unhashable_unordered(cls: Any) -> None:
    ev = object()
    a, b = cls(ev, (1,), 5), cls(ev, (1,), 5)
    assert a == b and a is not b
    assert a != cls(ev, (2,), 5) and a != cls(object(), (1,), 5) and a != cls(ev, (1,), 5, {})
    assert a.__eq__(("x",)) is NotImplemented and a != (ev, (1,), 5, None)
    assert cls.__hash__ is None
    with pytest.raises(TypeError):
        hash(a)
    # two equal items at one position: sorted as the verdict sorts them, no ``<`` asked
    assert sorted([(2, a), (1, b), (2, b)]) == [(1, b), (2, a), (2, b)]
    with pytest.raises(TypeError):
        sorted([(1, a), (1, cls(ev, (2,), 5))])
    with pytest.raises(TypeError):
        _ = a < b  # type: ignore[operator]


@pytest.mark.parametrize("cls", BUILDS)
def test_fields_assignable_and_the_dataclass_tools(cls: Any) -> None:
    a = cls("ev", (1,), 5)
    a.ts_ns = 9
    a.line_frames = {0: 1}
    assert a.ts_ns == 9 and a.line_frames == {0: 1}
    assert [f.name for f in dataclasses.fields(a)] == ["event", "frames", "ts_ns", "line_frames"]
    r = dataclasses.replace(a, frames=(2,))
    assert type(r) is cls and r.frames == (2,) and r.ts_ns == 9 and r.event == "ev"
    assert pickle.loads(pickle.dumps(a)) == a
    assert cls.__match_args__ == ("event", "frames", "ts_ns", "line_frames")


def test_both_builds_print_alike() -> None:
    lf = {12: 4}
    for args in (("ev", (), 0), ("ev", (1, 2), 10**18, lf), (None, (7,), -1, {})):
        reprs = {repr(p.values[0](*args)) for p in BUILDS}
        assert reprs == {f"Item(event={args[0]!r}, frames={args[1]!r}, ts_ns={args[2]!r}, "
                         f"line_frames={args[3] if len(args) > 3 else None!r})"}
