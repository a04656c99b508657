"""The compiled file loop builds each ``KeyedSegment`` by its type's ``__new__`` and C stores into
its fields (engine/hotloop_c.pyx, ``_keyed_segment``; an extension type, tcp/streams.pxd): the
object must be the one the class builds, field for field, and behave as one (equality, repr, no
other attribute, collected)."""
from __future__ import annotations

import gc
import importlib.machinery
import sys
import weakref

import pytest

from pcapsmtp.model import TcpSegment
from pcapsmtp.tcp.streams import KeyedSegment

hotloop_c = pytest.importorskip("pcapsmtp.engine.hotloop_c")

FIELDS = ("frame", "ts_ns", "src", "sport", "dst", "dport", "seq", "ack", "flags", "payload",
          "missing", "key", "d", "ttl")


def _args(i: int) -> tuple[object, ...]:
    return (i, 10**18 + i, f"10.0.0.{i % 250}", 25000 + i, "2001:db8::1", 25, (i * 7919) & 0xFFFFFFFF,
            2**32 - 1 - i, 0x18, bytes([i % 256]) * (i % 5), i % 3, (1 << 100) + i, i & 1, 64)


def test_the_loop_runs_beside_the_compiled_segment_types() -> None:
    # it stores the C fields of tcp.streams' and model's extension types: it loads only where
    # both run compiled (engine.accel, pcapsmtp._NEEDS), never beside their .py classes
    from pcapsmtp import model
    from pcapsmtp.tcp import streams
    for mod in (model, streams):
        assert isinstance(mod.__spec__.loader, importlib.machinery.ExtensionFileLoader), mod


@pytest.mark.parametrize("i", [0, 1, 7, 300])
def test_a_segment_built_in_its_slots_is_the_one_the_class_builds(i: int) -> None:
    args = _args(i)
    got = hotloop_c.keyed_segment(*args)
    want = KeyedSegment(*args)
    assert type(got) is KeyedSegment and isinstance(got, TcpSegment)
    for name, value in zip(FIELDS, args):
        assert getattr(got, name) is value, name
    assert got == want and repr(got) == repr(want)
    with pytest.raises(AttributeError):
        got.other = 1           # type: ignore[attr-defined]


def test_the_fields_are_owned_and_freed() -> None:
    payload = b"EHLO x\r\n" * 3
    before = sys.getrefcount(payload)
    seg = hotloop_c.keyed_segment(*(_args(5)[:9] + (payload,) + _args(5)[10:]))
    assert sys.getrefcount(payload) == before + 1
    assert payload in gc.get_referents(seg) and gc.is_tracked(seg)
    ref = weakref.ref(type(seg))
    del seg
    gc.collect()
    assert sys.getrefcount(payload) == before and ref() is KeyedSegment
