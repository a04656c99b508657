from __future__ import annotations

from pcapsmtp.tcp.seq import SEQ_MASK, seq_add, seq_diff, seq_ge, seq_gt, seq_le, seq_lt


def test_diff_across_wrap() -> None:
    assert seq_diff(5, SEQ_MASK - 4) == 10
    assert seq_diff(SEQ_MASK - 4, 5) == -10
    assert seq_diff(100, 100) == 0


def test_add_wraps() -> None:
    assert seq_add(SEQ_MASK, 1) == 0
    assert seq_add(0, -1) == SEQ_MASK
    assert seq_add(10, 5) == 15


def test_order_across_wrap() -> None:
    lo, hi = SEQ_MASK - 1, 3
    assert seq_lt(lo, hi) and seq_le(lo, hi)
    assert seq_gt(hi, lo) and seq_ge(hi, lo)
    assert not seq_lt(hi, lo)
    assert seq_le(7, 7) and seq_ge(7, 7) and not seq_lt(7, 7)
