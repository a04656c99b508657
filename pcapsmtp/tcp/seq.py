"""TCP sequence-number arithmetic, modulo 2**32 (RFC 793 §3.3, RFC 1982 serial numbers).

Sequence numbers wrap; comparing them as plain integers breaks at the wrap. Every function
here compares through the signed 32-bit difference, which is correct as long as the two
numbers are less than 2**31 apart (always true inside one TCP window).
"""
from __future__ import annotations

__all__ = ["SEQ_MOD", "SEQ_MASK", "SEQ_HALF", "seq_add", "seq_diff", "seq_lt", "seq_le", "seq_gt", "seq_ge"]

SEQ_MOD = 1 << 32
SEQ_MASK = SEQ_MOD - 1
#: half the sequence space: a difference (masked) below it means "ahead", at or above it "behind"
SEQ_HALF = 1 << 31


def seq_add(seq: int, n: int) -> int:
    """``seq + n`` modulo 2**32 (``n`` may be negative)."""
    return (seq + n) & SEQ_MASK


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in sequence space, in ``[-2**31, 2**31)``."""
    d = (a - b) & SEQ_MASK
    return d - SEQ_MOD if d >= SEQ_HALF else d


def seq_lt(a: int, b: int) -> bool:
    """``a`` comes before ``b``."""
    return seq_diff(a, b) < 0


def seq_le(a: int, b: int) -> bool:
    return seq_diff(a, b) <= 0


def seq_gt(a: int, b: int) -> bool:
    return seq_diff(a, b) > 0


def seq_ge(a: int, b: int) -> bool:
    return seq_diff(a, b) >= 0
