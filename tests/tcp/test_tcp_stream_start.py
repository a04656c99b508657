"""Where each side's stream starts, by TCP facts (``FlowInfo.client_start``/``server_start``).

The client's start (ISN+1) is known from its SYN or from the server's SYN-ACK (its ack); the
server's from its SYN-ACK or, with the client's SYN captured and the SYN-ACK lost, from the
client's handshake ACK (first segment after the SYN with ACK, no payload, seq ISN+1, before
any segment of the server, or after server payload whose bytes it does not acknowledge: two
taps merged out of order; the conversation is held from the server's first payload until the
client's next segment tells). A conversation is a late start (``midstream``) only when a side's
start is not known. Bytes before a known start do not exist; a first captured byte after it
follows a hole.
"""
from __future__ import annotations

from _tcp_builder import Conv, F, S, feed_all, side_bytes
from pcapsmtp.model import Side
from pcapsmtp.tcp.events import FlowEvent, FlowInfo, FlowOpened, StreamData, StreamGap
from pcapsmtp.tcp.reassembler import ReassemblyConfig, TcpReassembler

GREETING = b"220 mx.example.org ESMTP\r\n"        # 26 bytes
EHLO = b"EHLO client.example\r\n"                 # 21 bytes
G, E = len(GREETING), len(EHLO)


def _info(ev: list[FlowEvent]) -> FlowInfo:
    (opened,) = [e for e in ev if isinstance(e, FlowOpened)]
    return opened.flow


def _gaps(ev: list[FlowEvent], side: Side) -> list[tuple[int, int, int]]:
    return [(e.offset, e.length, e.frame) for e in ev if isinstance(e, StreamGap)
            and e.side is side]


def _dialogue(c: Conv) -> list:  # type: ignore[type-arg]
    return [c.s(1, GREETING, ack=1), c.c(1, EHLO, ack=1 + G), c.s(1 + G, b"250 ok\r\n", ack=1 + E)]


def test_full_handshake_knows_both_starts() -> None:
    c = Conv()
    ev = feed_all(TcpReassembler(), c.handshake() + _dialogue(c))
    info = _info(ev)
    assert (info.client_start, info.server_start, info.midstream) == (1001, 5001, False)
    assert info.handshake_seen


def test_without_the_syn_the_synack_tells_the_client_start() -> None:
    c = Conv()
    hs = c.handshake()
    ev = feed_all(TcpReassembler(), hs[1:] + _dialogue(c))
    info = _info(ev)
    assert (info.client_start, info.server_start, info.midstream) == (1001, 5001, False)
    assert info.side_evidence == "syn" and not info.handshake_seen
    assert side_bytes(ev, Side.CLIENT) == EHLO and side_bytes(ev, Side.SERVER) == GREETING + b"250 ok\r\n"
    assert not _gaps(ev, Side.CLIENT) and not _gaps(ev, Side.SERVER)


def test_without_the_synack_the_handshake_ack_tells_the_server_start() -> None:
    c = Conv()
    hs = c.handshake()
    ev = feed_all(TcpReassembler(), [hs[0], hs[2]] + _dialogue(c))
    info = _info(ev)
    assert (info.client_start, info.server_start, info.midstream) == (1001, 5001, False)
    assert info.side_evidence == "syn"
    assert side_bytes(ev, Side.SERVER) == GREETING + b"250 ok\r\n"


def test_without_syn_and_synack_nothing_is_known() -> None:
    """The handshake ACK alone says nothing: its seq may be any byte of the client."""
    c = Conv()
    ev = feed_all(TcpReassembler(), [c.handshake()[2]] + _dialogue(c))
    info = _info(ev)
    assert (info.client_start, info.server_start, info.midstream) == (None, None, True)


def test_an_ack_after_a_server_segment_is_not_the_handshake_ack() -> None:
    """The server's banner before the client's first ACK: that ACK may acknowledge server
    bytes (accept() returned before the capture saw the handshake ACK), so it tells nothing."""
    c = Conv()
    ev = feed_all(TcpReassembler(), [c.c(0, flags=S), c.s(1, GREETING, ack=1),
                                     c.c(1, ack=1 + G), c.c(1, EHLO, ack=1 + G)])
    info = _info(ev)
    assert (info.client_start, info.server_start, info.midstream) == (1001, None, True)


def test_a_first_ack_with_payload_or_off_isn_is_not_the_handshake_ack() -> None:
    for first in (lambda c: c.c(1, EHLO, ack=1 + G), lambda c: c.c(5, ack=1)):
        c = Conv()
        ev = feed_all(TcpReassembler(), [c.c(0, flags=S), first(c), c.s(1 + G, b"250 ok\r\n",
                                                                         ack=1 + E)])
        info = _info(ev)
        assert info.server_start is None and info.midstream, first


def test_a_known_start_after_a_hole_is_a_gap_at_offset_0() -> None:
    """Without the SYN, the handshake ACK and the EHLO: the client's first captured byte (its
    QUIT) is after its known start, so the EHLO's bytes are a hole, not the stream's start."""
    c = Conv()
    hs = c.handshake()
    segs = [hs[1], c.s(1, GREETING, ack=1)]
    quit_ = c.c(1 + E, b"QUIT\r\n", ack=1 + G)
    ev = feed_all(TcpReassembler(), segs + [quit_])
    assert _info(ev).client_start == 1001 and not _info(ev).midstream
    assert _gaps(ev, Side.CLIENT) == [(0, E, quit_.frame)]
    data = [e for e in ev if isinstance(e, StreamData) and e.side is Side.CLIENT]
    assert [(d.offset, d.data) for d in data] == [(E, b"QUIT\r\n")]


def test_bytes_before_a_known_start_do_not_exist() -> None:
    """A client segment reaching before the ISN+1 the SYN-ACK acknowledges: only its bytes
    from the start are the client's stream."""
    c = Conv()
    hs = c.handshake()
    ev = feed_all(TcpReassembler(), [hs[1], c.c(-2, b"xyz" + EHLO, ack=1)])
    assert side_bytes(ev, Side.CLIENT) == EHLO
    assert [e.offset for e in ev if isinstance(e, StreamData)] == [0]


def test_a_side_never_captured_declares_no_hole() -> None:
    """A one-sided capture (the server's direction not captured at all): the server's start
    is known, but no segment of it is in the capture: no hole is claimed for it."""
    c = Conv()
    ev = feed_all(TcpReassembler(), [c.c(0, flags=S), c.c(1, ack=1), c.c(1, EHLO, ack=1 + G)])
    assert _info(ev).server_start == 5001 and not _gaps(ev, Side.SERVER)


def test_content_detected_conversation_without_the_synack() -> None:
    """Another port, found by content: the server's greeting arrives in two segments, the
    second first. Its start, known from the handshake ACK, says the first segment seen is not
    the start: the conversation waits for the earlier bytes (as with a SYN-ACK) and opens with
    the whole greeting."""
    c = Conv(sport=2600)
    hs = c.handshake()
    segs = [hs[0], hs[2], c.s(3, GREETING[2:], ack=1), c.s(1, GREETING[:2], ack=1),
            c.c(1, EHLO, ack=1 + G)]
    ev = feed_all(TcpReassembler(ReassemblyConfig(detect_by_content=True)), segs)
    info = _info(ev)
    assert (info.server_start, info.midstream) == (5001, False)
    assert side_bytes(ev, Side.SERVER) == GREETING


def test_a_banner_before_the_handshake_ack_is_held_until_it_comes() -> None:
    """Two taps merged out of order: the banner is seen before the handshake ACK. The ACK's
    acknowledgement number (the server's ISN+1) is the banner's sequence number: the banner
    starts the server's stream. Nothing opens before the ACK tells."""
    for port in (25, 2600):
        c = Conv(sport=port)
        r = TcpReassembler(ReassemblyConfig(detect_by_content=True))
        syn, banner, hs_ack = c.c(0, flags=S), c.s(1, GREETING, ack=1), c.c(1, ack=1)
        assert r.feed(syn) == [] and r.feed(banner) == []
        ev = r.feed(hs_ack) + feed_all(r, _dialogue(c)[1:])
        info = _info(ev)
        assert (info.client_start, info.server_start, info.midstream) == (1001, 5001, False), port
        assert side_bytes(ev, Side.SERVER) == GREETING + b"250 ok\r\n"
        assert not _gaps(ev, Side.SERVER) and not _gaps(ev, Side.CLIENT)
        first = next(e for e in ev if isinstance(e, StreamData) and e.side is Side.SERVER)
        assert (first.offset, first.frame) == (0, banner.frame)


def test_a_greeting_segment_before_the_handshake_ack_and_its_first_bytes_after() -> None:
    """Another port, found by content: the greeting's second segment, then the handshake ACK,
    then its first segment. The ACK places the start before the segment seen first, so
    detection waits for the first bytes and opens with the whole greeting."""
    c = Conv(sport=2600)
    segs = [c.c(0, flags=S), c.s(3, GREETING[2:], ack=1), c.c(1, ack=1),
            c.s(1, GREETING[:2], ack=1), c.c(1, EHLO, ack=1 + G)]
    ev = feed_all(TcpReassembler(ReassemblyConfig(detect_by_content=True)), segs)
    info = _info(ev)
    assert (info.server_start, info.midstream) == (5001, False)
    assert side_bytes(ev, Side.SERVER) == GREETING and not _gaps(ev, Side.SERVER)


def test_a_handshake_ack_below_the_banner_leaves_a_hole_at_the_start() -> None:
    """The banner's first segment lost, its second seen before the handshake ACK: the ACK
    says where the server starts, so the bytes before the segment seen are a hole."""
    c = Conv()
    tail = c.s(11, GREETING[10:], ack=1)
    ev = feed_all(TcpReassembler(), [c.c(0, flags=S), tail, c.c(1, ack=1),
                                     c.c(1, EHLO, ack=1 + G)])
    info = _info(ev)
    assert (info.server_start, info.midstream) == (5001, False)
    assert _gaps(ev, Side.SERVER) == [(0, 10, tail.frame)]


def test_a_client_segment_that_is_no_handshake_ack_ends_the_wait() -> None:
    """The banner first, then a client segment that is no handshake ACK (it carries the EHLO,
    or it acknowledges the banner, or is a FIN): nothing will tell the server's start, a late
    start as when the banner came after it; so does the server's FIN, and the end of the
    capture."""
    for nxt in (lambda c: [c.c(1, EHLO, ack=1 + G)], lambda c: [c.c(1, ack=1 + G)],
                lambda c: [c.c(1, flags=F, ack=1)], lambda c: [c.s(1 + G, flags=F, ack=1)],
                lambda c: []):
        c = Conv()
        ev = feed_all(TcpReassembler(), [c.c(0, flags=S), c.s(1, GREETING, ack=1)] + nxt(c))
        info = _info(ev)
        assert (info.client_start, info.server_start, info.midstream) == (1001, None, True)
        assert side_bytes(ev, Side.SERVER) == GREETING
