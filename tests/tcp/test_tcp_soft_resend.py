"""The copy rule (``halfstream.RESEND_MIN_NS``) for bytes not delivered yet.

A copy of bytes counts as the sender's retransmission (``HalfStream.resent_end``) only when it
is captured ``RESEND_MIN_NS`` or more after the bytes were first captured; sooner it is the
capture's own duplicate of one packet (a SPAN port, two interfaces merged). The delivered
history keeps each piece's capture time; so do the buffered pieces: the soft buffer of a late
start (a side whose start TCP does not tell) and the out-of-order buffer behind a hole. Before
this, a copy merged in either buffer was never a resend, so a late start of a capture whose
client resent its STARTTLS read as one copy of it
(captures/span-resent-20ms-starttls-client-closes.pcap, tests/test_late_start_loss.py).
"""
from __future__ import annotations

import pytest

from pcapsmtp.model import Side
from pcapsmtp.tcp.config import ReassemblyStats
from pcapsmtp.tcp.events import FlowEvent, StreamData
from pcapsmtp.tcp.halfstream import RESEND_MIN_NS, HalfStream

T0 = 1_000_000_000
LAGS = [(0, 0), (50_000, 0), (RESEND_MIN_NS - 1, 0), (RESEND_MIN_NS, 10), (200_000_000, 10)]


def _half() -> tuple[HalfStream, ReassemblyStats]:
    stats = ReassemblyStats()
    return HalfStream(0, Side.CLIENT, stats, 1 << 20, 16 * 1024), stats


def _delivered(out: list[FlowEvent]) -> bytes:
    return b"".join(e.data for e in out if isinstance(e, StreamData))


@pytest.mark.parametrize("lag_ns, resent", LAGS)
def test_a_copy_in_the_soft_buffer_is_a_resend_only_some_time_after(lag_ns: int, resent: int) -> None:
    h, stats = _half()
    out: list[FlowEvent] = []
    h.data(5000, b"EHLO a\r\n", 0, 1, T0, out)
    h.data(5008, b"STARTTLS\r\n", 0, 2, T0 + 1000, out)
    assert h.soft
    h.data(5008, b"STARTTLS\r\n", 0, 3, T0 + 1000 + lag_ns, out)
    assert h.soft and not out
    assert h.resent_end == (8 + resent if resent else 0)
    assert stats.retransmitted_bytes == 10
    h.settle(out)
    assert _delivered(out) == b"EHLO a\r\nSTARTTLS\r\n"
    assert h.resent_end == (8 + resent if resent else 0)


def test_a_partial_copy_in_the_soft_buffer_counts_its_old_part() -> None:
    h, _ = _half()
    out: list[FlowEvent] = []
    h.data(5000, b"STARTTLS\r\n", 0, 1, T0, out)
    h.data(5005, b"TLS\r\nQUIT\r\n", 0, 2, T0 + RESEND_MIN_NS, out)
    assert h.resent_end == 10
    h.settle(out)
    assert _delivered(out) == b"STARTTLS\r\nQUIT\r\n"


def test_the_resend_moves_with_the_start_of_the_soft_side() -> None:
    """A segment before the lowest moves a soft side's start back: the resent bytes' offset moves
    with the buffered pieces."""
    h, _ = _half()
    out: list[FlowEvent] = []
    h.data(5008, b"STARTTLS\r\n", 0, 2, T0, out)
    h.data(5008, b"STARTTLS\r\n", 0, 3, T0 + RESEND_MIN_NS, out)
    assert h.resent_end == 10
    h.data(5000, b"EHLO a\r\n", 0, 1, T0 + RESEND_MIN_NS + 1, out)
    assert h.resent_end == 18
    h.settle(out)
    assert _delivered(out) == b"EHLO a\r\nSTARTTLS\r\n"


@pytest.mark.parametrize("lag_ns, resent", LAGS)
def test_a_copy_behind_a_hole_is_a_resend_only_some_time_after(lag_ns: int, resent: int) -> None:
    """Not a late start: the bytes wait behind a hole in the out-of-order buffer."""
    h, stats = _half()
    h.syn(4999)
    out: list[FlowEvent] = []
    h.data(5008, b"STARTTLS\r\n", 0, 2, T0, out)
    h.data(5008, b"STARTTLS\r\n", 0, 3, T0 + lag_ns, out)
    assert not out and stats.retransmitted_bytes == 10
    assert h.resent_end == (8 + resent if resent else 0)
    h.data(5000, b"EHLO a\r\n", 0, 1, T0 + lag_ns + 1, out)
    assert _delivered(out) == b"EHLO a\r\nSTARTTLS\r\n"
