"""``StreamGap.acked``: whether the peer acknowledged the bytes a gap stands for.

A hole the peer acknowledged was received by the peer: the capture lost it. A hole before the
sender's FIN that the peer never acknowledged (a stateful firewall that drops a segment and
passes the later FIN, whose sequence number is past it) was not received by the peer, as far as
its captured ACKs tell. ``pcapsmtp diff`` reads the difference (analysis/vantage.py); nothing
else of the reassembly depends on the field."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tcp_builder import Conv, F, feed_all
from pcapsmtp.model import Side
from pcapsmtp.tcp.events import GapCause, StreamGap
from pcapsmtp.tcp.reassembler import TcpReassembler

N = int(os.environ.get("TCP_PROPERTY_EXAMPLES", "150"))

GREETING = b"220 mx.example.com ESMTP\r\n"
EHLO = b"EHLO c.example.org\r\n"
R1 = b"250-mx.example.com\r\n250-PIPELINING\r\n"
R2 = b"250-STARTTLS\r\n"
R3 = b"250 SMTPUTF8\r\n"
HELLO = bytes(range(22, 22 + 166))     # stands for a ClientHello: only its length matters here


def gaps(ev: list) -> list[tuple[Side, int, int, int, bool, GapCause]]:
    return [(e.side, e.offset, e.length, e.frame, e.acked, e.cause) for e in ev if isinstance(e, StreamGap)]


def test_a_hole_the_peer_acknowledged_is_acked() -> None:
    """The capture lost R2 in the middle of the EHLO reply; the client acknowledged it (it got it)."""
    c = Conv()
    a, b = len(R1), len(R2)
    segs = c.handshake() + [
        c.c(1, EHLO, ack=1),                                  # 4
        c.s(1, R1, ack=1 + len(EHLO)),                        # 5
        c.s(1 + a + b, R3, ack=1 + len(EHLO)),                # 6 (R2 not captured)
        c.c(1 + len(EHLO), ack=1 + a + b + len(R3)),          # 7: the client ACKs the whole reply
    ]
    assert gaps(feed_all(TcpReassembler(), segs)) == [(Side.SERVER, a, b, 6, True, GapCause.LOST)]


def test_a_hole_before_a_forwarded_fin_the_peer_never_acknowledged_is_not_acked() -> None:
    """A firewall drops the client's ClientHello (and its resends) and passes the client's FIN, whose sequence
    number is past it: the server acknowledges only up to the hole (a duplicate ACK), and its own FIN later
    still does. The hole is declared when the flow closes, not acknowledged."""
    c = Conv()
    n = len(EHLO)
    segs = c.handshake() + [
        c.c(1, EHLO, ack=1),                                  # 4
        c.s(1, GREETING, ack=1 + n),                          # 5
        c.c(1 + n, ack=1 + len(GREETING)),                    # 6
        c.c(1 + n + len(HELLO), flags=F, ack=1 + len(GREETING)),      # 7: FIN past the dropped ClientHello
        c.s(1 + len(GREETING), ack=1 + n),                    # 8: duplicate ACK, before the hole
        c.s(1 + len(GREETING), flags=F, ack=1 + n),           # 9: the server's own FIN, still before it
        c.c(2 + n + len(HELLO), ack=2 + len(GREETING)),       # 10
    ]
    assert gaps(feed_all(TcpReassembler(), segs)) == [(Side.CLIENT, n, len(HELLO), 7, False, GapCause.LOST)]


def test_the_acknowledged_part_of_a_hole_and_the_rest() -> None:
    """The peer acknowledged the first 40 bytes of a 166-byte hole before the FIN: two gaps, the first acked."""
    c = Conv()
    n = len(EHLO)
    segs = c.handshake() + [
        c.c(1, EHLO, ack=1),                                  # 4
        c.c(1 + n + len(HELLO), flags=F, ack=1),              # 5: FIN past the hole
        c.s(1, ack=1 + n + 40),                               # 6: the server got the hole's first 40 bytes
        c.s(1, flags=F, ack=1 + n + 40),                      # 7
    ]
    assert gaps(feed_all(TcpReassembler(), segs)) == [
        (Side.CLIENT, n, 40, 6, True, GapCause.LOST), (Side.CLIENT, n + 40, len(HELLO) - 40, 5, False, GapCause.LOST)]


def test_a_snaplen_cut_is_declared_before_any_ack_of_it() -> None:
    """A cut tail is declared as its frame comes, before the peer's ACK of it: not acked, although the client
    acknowledged it next (the bytes were on the wire where the capture was taken; only the capture cut them)."""
    c = Conv()
    segs = c.handshake() + [c.s(1, GREETING[:10], missing=len(GREETING) - 10, ack=1),     # 4: cut
                            c.c(1, ack=1 + len(GREETING)),                                   # 5: the client got it
                            c.s(1 + len(GREETING), R3, ack=1)]                               # 6
    assert gaps(feed_all(TcpReassembler(), segs)) == [(Side.SERVER, 10, len(GREETING) - 10, 4, False,
                                                       GapCause.SNAPLEN)]


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 60), min_size=2, max_size=10), st.data())
def test_acked_is_whether_a_captured_ack_covers_the_hole(sizes: list[int], data: st.DataObject) -> None:
    """The client sends segments, some lost from the capture, then its FIN; the server acknowledges up to a
    random point (a lost segment may stop it: what it never got it cannot acknowledge) and closes. Every byte
    missing is in exactly one gap; a gap is acked exactly when the server's highest ACK covers its end."""
    lost = data.draw(st.sets(st.integers(0, len(sizes) - 1), min_size=1))
    total = sum(sizes)
    acked_to = data.draw(st.integers(0, total))
    c = Conv()
    segs = c.handshake()
    off = 0
    for k, n in enumerate(sizes):
        seg = c.c(1 + off, bytes((off + i) & 0xFF for i in range(n)), ack=1)
        if k not in lost:
            segs.append(seg)
        off += n
    segs.append(c.c(1 + total, flags=F, ack=1))
    segs.append(c.s(1, ack=1 + acked_to))
    segs.append(c.s(1, flags=F, ack=1 + acked_to))
    got = gaps(feed_all(TcpReassembler(), segs))
    missing = {o for k in lost for o in range(sum(sizes[:k]), sum(sizes[:k + 1]))}
    assert {g[1] + i for g in got for i in range(g[2])} == missing
    assert sum(g[2] for g in got) == len(missing)
    for side, goff, length, _frame, acked, cause in got:
        assert (side, cause) == (Side.CLIENT, GapCause.LOST)
        assert acked is (goff + length <= acked_to), (goff, length, acked_to)


def test_holes_proven_before_the_sides_first_segment_are_declared_at_their_frames() -> None:
    """The SYN-ACK and every byte of the server lost (the client's handshake ACK tells where the
    server starts): the client's ACKs prove the greeting and the EHLO reply lost while nothing of
    the server is in the capture, which a capture of the client's direction alone looks like
    too. The server's first segment, a pure ACK, shows the capture is of both directions: the
    holes are then declared where the ACKs proved them, as with the SYN-ACK in the capture."""
    g, r = len(GREETING), len(R1)

    def run(synack: bool) -> list[tuple[Side, int, int, int, bool, GapCause]]:
        c = Conv()
        segs = c.handshake()                                          # 1-3
        segs += [c.c(1, ack=1 + g),                                   # 4: ACK of the greeting
                 c.c(1, EHLO, ack=1 + g),                             # 5
                 c.c(1 + len(EHLO), ack=1 + g + r),                   # 6: ACK of the reply
                 c.s(1 + g + r, ack=1 + len(EHLO)),                   # 7: the server's ACK
                 c.c(1 + len(EHLO), F, ack=1 + g + r),                # 8
                 c.s(1 + g + r, F, ack=2 + len(EHLO))]                # 9
        if not synack:
            del segs[1]
        return gaps(feed_all(TcpReassembler(), segs))

    want = [(Side.SERVER, 0, g, 5, True, GapCause.LOST), (Side.SERVER, g, r, 7, True, GapCause.LOST)]
    assert run(True) == want
    assert run(False) == want
