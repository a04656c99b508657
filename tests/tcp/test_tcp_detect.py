"""Content detection (``pcapsmtp.tcp.detect``) from the first bytes of each direction in
sequence order, however they are cut or ordered: the pure functions, then the reassembler
holding an undecided conversation (bounded) until its first bytes decide."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tcp_builder import MASK, Conv, F, feed_all, side_bytes
from pcapsmtp.model import Side, TcpSegment
from pcapsmtp.tcp.detect import (
    HEAD_BYTES, START_CLIENT, START_MORE, START_OTHER, START_SERVER, START_TUNNEL,
    classify_start, is_smtp_start, may_matter,
)
from pcapsmtp.tcp.events import FlowOpened, StreamData, StreamGap
from pcapsmtp.tcp.reassembler import ReassemblyConfig, TcpReassembler

N = int(os.environ.get("TCP_PROPERTY_EXAMPLES", "150"))

GREETING = b"220 relay.example.net ESMTP\r\n"
EHLO = b"EHLO client.example.org\r\n"
REPLY = b"250-relay.example.net\r\n250 STARTTLS\r\n"


@pytest.mark.parametrize("head,final,want", [
    (b"220 mx", False, START_SERVER), (b"421-", False, START_SERVER), (b"554 x", True, START_SERVER),
    (b"2", False, START_MORE), (b"22", False, START_MORE), (b"220", False, START_MORE),
    (b"55", False, START_MORE), (b"2", True, START_OTHER), (b"220", True, START_OTHER),
    (b"", False, START_MORE), (b"", True, START_OTHER),
    (b"e", False, START_MORE), (b"EhL", False, START_MORE), (b"HELO", False, START_MORE),
    (b"HELO", True, START_CLIENT), (b"ehlo ", False, START_CLIENT), (b"LHLO\r", False, START_CLIENT),
    (b"EHLOX", False, START_OTHER), (b"230 ", False, START_OTHER), (b"GET / HT", False, START_OTHER),
    (b"\x16\x03\x01", False, START_OTHER), (b"SSH-2.0-", False, START_OTHER),
    (b"C", False, START_TUNNEL), (b"CONNECT ", False, START_TUNNEL), (b"\x05\x01\x00", False, START_TUNNEL),
    (b"CONNECX", False, START_OTHER),
])
def test_classify_start(head: bytes, final: bool, want: int) -> None:
    assert classify_start(head, final) == want
    assert may_matter(head) == (classify_start(head) != START_OTHER)


@given(st.binary(max_size=HEAD_BYTES))
def test_more_only_for_proper_prefixes(head: bytes) -> None:
    """START_MORE never for bytes that no continuation could make a start, and never final."""
    assert classify_start(head, True) != START_MORE
    if classify_start(head) == START_MORE:
        starts = [b"220 ", b"421 ", b"554 ", b"EHLO ", b"HELO ", b"LHLO "]
        assert any(s.startswith(head.upper()) and classify_start(s) in (START_SERVER, START_CLIENT)
                   for s in starts)


@given(st.one_of(st.binary(max_size=12),
                 st.sampled_from([b"220", b"220 ", b"421-", b"554", b"EHLO", b"ehlo", b"HeLo\t",
                                  b"LHLO\n", b"EHLOX", b"CONNECT", b"\x05\x01"]).flatmap(
                     lambda p: st.binary(max_size=6).map(lambda tail: p + tail))))
def test_is_smtp_start_is_the_final_classification(payload: bytes) -> None:
    """A whole first segment (nothing will follow) gives the side ``classify_start`` gives when
    told so: the two never disagree, however short the payload (``EHLO`` alone is a hello,
    ``220`` alone is nothing)."""
    cls = classify_start(payload[:HEAD_BYTES], True)
    want = {START_SERVER: Side.SERVER, START_CLIENT: Side.CLIENT}.get(cls)
    assert is_smtp_start(payload) is want
    if payload[:4] in (b"220 ", b"220-", b"421 ", b"421-", b"554 ", b"554-"):
        assert want is Side.SERVER
    elif payload[:4].upper() in (b"EHLO", b"HELO", b"LHLO") and payload[4:5] in (
            b"", b" ", b"\r", b"\n", b"\t"):
        assert want is Side.CLIENT
    else:
        assert want is None


# ---------------------------------------------------------------------------- reassembler

def dialogue(c: Conv, server_cuts: list[bytes], order: list[int] | None = None,
             handshake: bool = True) -> list[TcpSegment]:
    """Greeting cut as ``server_cuts`` (sent in ``order``), EHLO, reply, FINs."""
    segs = c.handshake() if handshake else []
    offs = []
    pos = 0
    for piece in server_cuts:
        offs.append(pos)
        pos += len(piece)
    for k in (order or list(range(len(server_cuts)))):
        segs.append(c.s(1 + offs[k], server_cuts[k], ack=1))
    g = len(GREETING)
    segs.append(c.c(1, EHLO, ack=1 + g))
    segs.append(c.s(1 + g, REPLY, ack=1 + len(EHLO)))
    segs.append(c.c(1 + len(EHLO), flags=F, ack=1 + g + len(REPLY)))
    segs.append(c.s(1 + g + len(REPLY), flags=F, ack=2 + len(EHLO)))
    return segs


def check_found(segs: list[TcpSegment], r: TcpReassembler | None = None) -> list:
    r = r or TcpReassembler()
    ev = feed_all(r, segs)
    opened = [e for e in ev if isinstance(e, FlowOpened)]
    assert len(opened) == 1, ev
    info = opened[0].flow
    assert (info.client.port, info.server.port, info.stream, info.first_frame) == (40000, 2600, 0, 1)
    assert side_bytes(ev, Side.SERVER) == GREETING + REPLY
    assert side_bytes(ev, Side.CLIENT) == EHLO
    assert not [e for e in ev if isinstance(e, StreamGap)]
    return ev


def test_greeting_in_one_byte_segments_on_another_port() -> None:
    c = Conv(sport=2600)
    ev = check_found(dialogue(c, [GREETING[k:k + 1] for k in range(len(GREETING))]))
    first = next(e for e in ev if isinstance(e, StreamData))
    assert (first.side, first.offset, first.data, first.frame) == (Side.SERVER, 0, b"2", 4)


def test_greeting_out_of_order_on_another_port() -> None:
    c = Conv(sport=2600)
    cuts = [b"22", b"0 relay.", GREETING[10:]]
    ev = check_found(dialogue(c, cuts, order=[1, 2, 0]))
    data = [(e.side, e.offset, e.frame) for e in ev if isinstance(e, StreamData)][:3]
    assert data == [(Side.SERVER, 0, 6), (Side.SERVER, 2, 4), (Side.SERVER, 10, 5)]


def test_greeting_out_of_order_without_the_handshake() -> None:
    """No SYN: a direction starts at the lowest sequence number seen; a segment up to 64 KiB
    before it moves the start back (while the bytes seen do not decide: a first payload that
    is decidedly not a start, such as '20 relay', is taken as the start of a non-SMTP
    conversation, since without the SYN nothing tells that bytes came before it)."""
    c = Conv(sport=2600)
    segs = dialogue(c, [b"2", b"2", b"0 relay.example.net", GREETING[21:]], order=[1, 0, 2, 3],
                    handshake=False)
    r = TcpReassembler()
    ev = feed_all(r, segs)
    assert [e for e in ev if isinstance(e, FlowOpened)][0].flow.midstream
    assert side_bytes(ev, Side.SERVER) == GREETING + REPLY


def test_client_hello_decides_when_the_greeting_is_late() -> None:
    c = Conv(sport=2600)
    g = len(GREETING)
    hs = c.handshake()
    ehlo = [c.c(1 + k, EHLO[k:k + 1], ack=1 + g) for k in range(5)]
    segs = hs + ehlo + [c.s(1, GREETING, ack=1), c.c(6, EHLO[5:], ack=1 + g)]
    ev = feed_all(TcpReassembler(), segs)
    assert len([e for e in ev if isinstance(e, FlowOpened)]) == 1
    assert side_bytes(ev, Side.CLIENT) == EHLO
    assert side_bytes(ev, Side.SERVER) == GREETING
    # causal order: the EHLO acknowledges the greeting, so the greeting comes first
    data = [e for e in ev if isinstance(e, StreamData)]
    assert data[0].side is Side.SERVER


@pytest.mark.parametrize("first", [b"G", b"2", b"\x16"])
def test_not_smtp_is_forgotten_and_numbering_kept(first: bytes) -> None:
    c = Conv(sport=8080)
    body = first + b"ET / HTTP/1.1\r\n\r\n" if first == b"G" else first + b"30 nope\r\n"
    segs = c.handshake() + [c.c(1, body[:1], ack=1), c.c(2, body[1:], ack=1),
                            c.s(1, b"HTTP/1.1 200 OK\r\n\r\n", ack=1 + len(body))]
    d = Conv(cport=40001, sport=8080, frame=len(segs) + 1)
    segs += d.handshake()
    r = TcpReassembler()
    assert not [e for e in feed_all(r, segs) if isinstance(e, FlowOpened)]
    assert r.stream_of("10.0.0.1", 40001, "10.0.0.2", 8080) == 1
    assert not r._pending                               # noqa: SLF001


def test_pending_is_bounded_by_segments() -> None:
    """A first byte '2' then only keep-alive ACKs: given up after ``detect_segments``."""
    c = Conv(sport=2600)
    segs = c.handshake() + [c.s(1, b"2", ack=1)] + [c.c(1, ack=2) for _ in range(10)]
    r = TcpReassembler(ReassemblyConfig(detect_segments=5))
    ev = feed_all(r, segs)
    assert not [e for e in ev if isinstance(e, FlowOpened)]
    assert not r._pending                               # noqa: SLF001


def test_pending_conversations_are_bounded() -> None:
    r = TcpReassembler(ReassemblyConfig(max_pending=3))
    for k in range(10):
        c = Conv(cport=41000 + k, sport=2600, frame=1 + 10 * k)
        for s in c.handshake() + [c.s(1, b"2", ack=1)]:
            r.feed(s)
        assert len(r._pending) <= 3                     # noqa: SLF001


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 12), min_size=1, max_size=8), st.randoms(use_true_random=False),
       st.integers(0, MASK))
def test_any_cut_and_order_of_the_greeting_is_found(sizes: list[int], rnd, isn: int) -> None:
    cuts, pos = [], 0
    for n in sizes:
        if pos >= len(GREETING):
            break
        cuts.append(GREETING[pos:pos + n])
        pos += n
    if pos < len(GREETING):
        cuts.append(GREETING[pos:])
    order = list(range(len(cuts)))
    rnd.shuffle(order)
    check_found(dialogue(Conv(sport=2600, sisn=isn), cuts, order))
