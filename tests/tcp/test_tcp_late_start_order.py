"""Where a stream starts when the capture shows its first packets out of order.

- An ACK that would be the handshake ACK (the client's first segment after its SYN, a pure ACK
  at ISN+1, nothing of the server seen) is not one when server bytes before the start it would
  give show up: it acknowledged them (``tcp.streams.refutes_ack_start``).
"""
from __future__ import annotations

from _tcp_builder import Conv, S, feed_all, side_bytes
from pcapsmtp.model import Side
from pcapsmtp.tcp.events import FlowEvent, FlowInfo, FlowOpened, StreamData, StreamGap
from pcapsmtp.tcp.reassembler import ReassemblyConfig, TcpReassembler

GREETING = b"220 mx.example.org ESMTP\r\n"        # 26 bytes
EHLO = b"EHLO client.example\r\n"                 # 21 bytes
REPLY = b"250 ok\r\n"
G, E = len(GREETING), len(EHLO)


def _info(ev: list[FlowEvent]) -> FlowInfo:
    (opened,) = [e for e in ev if isinstance(e, FlowOpened)]
    return opened.flow


def _data(ev: list[FlowEvent], side: Side) -> list[tuple[int, bytes, int]]:
    return [(e.offset, e.data, e.frame) for e in ev if isinstance(e, StreamData) and e.side is side]


def _gaps(ev: list[FlowEvent]) -> list[StreamGap]:
    return [e for e in ev if isinstance(e, StreamGap)]


# ------------------------------------------------------------------ an ACK before the bytes it acks

def test_an_ack_seen_before_the_bytes_it_acknowledges_is_no_handshake_ack() -> None:
    """No SYN-ACK, no handshake ACK; the client's ACK of the banner is in the file before the
    banner. While nothing of the server is seen it looks like the handshake ACK; the banner
    then lies before the start it would give: it acknowledged the banner, so the server's
    start is not known (as when the ACK comes after the banner), and the banner is the
    server's first byte seen instead of bytes dropped before a start."""
    for port in (25, 2600):
        c = Conv(sport=port)
        syn, ack, banner = c.c(0, flags=S), c.c(1, ack=1 + G), c.s(1, GREETING, ack=1)
        ev = feed_all(TcpReassembler(ReassemblyConfig(detect_by_content=True)),
                      [syn, ack, banner, c.c(1, EHLO, ack=1 + G), c.s(1 + G, REPLY, ack=1 + E)])
        info = _info(ev)
        assert (info.client_start, info.server_start, info.midstream) == (1001, None, True), port
        assert side_bytes(ev, Side.SERVER) == GREETING + REPLY, port
        assert _data(ev, Side.SERVER)[0] == (0, GREETING, banner.frame), port
        assert not _gaps(ev), port


def test_an_ack_of_the_banners_first_byte_while_the_next_is_held() -> None:
    """Another port (found by content): the banner's second byte first (held: the client's
    handshake ACK may still tell its start, and ``2`` does not decide), then the client's ACK
    of the first byte (taken for the handshake ACK: it acknowledges none of the bytes seen),
    then the first byte, before that start: the ACK acknowledged it, no start is known, and
    the banner is read whole once its bytes decide. (A known limit: on an SMTP port the
    conversation opens at that ACK, before the first byte comes, so the start it gave stays
    and that byte is before it.)"""
    c = Conv(sport=2600)
    segs = [c.c(0, flags=S), c.s(2, GREETING[1:2], ack=1), c.c(1, ack=2),
            c.s(1, GREETING[:1], ack=1), c.s(3, GREETING[2:], ack=1), c.c(1, EHLO, ack=1 + G),
            c.s(1 + G, REPLY, ack=1 + E)]
    ev = feed_all(TcpReassembler(ReassemblyConfig(detect_by_content=True)), segs)
    info = _info(ev)
    assert (info.server_start, info.midstream) == (None, True)
    assert side_bytes(ev, Side.SERVER) == GREETING + REPLY
    assert not _gaps(ev)


def test_a_start_from_the_synack_is_not_refuted() -> None:
    """The SYN-ACK's ack tells the client's start: a client segment before it is still bytes
    before the start (the SYN-ACK answers the SYN itself, it acknowledges no data)."""
    c = Conv()
    hs = c.handshake()
    ev = feed_all(TcpReassembler(), [hs[1], c.c(-2, b"xyz" + EHLO, ack=1)])
    assert _info(ev).client_start == 1001
    assert side_bytes(ev, Side.CLIENT) == EHLO
