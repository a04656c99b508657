"""SMTP inside an HTTP CONNECT or SOCKS5 tunnel on a port that is not an SMTP port: the flow
becomes a candidate at the server's greeting, each side starting after the proxy handshake."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tcp_builder import Conv, F, R, assert_bracketed, feed_all, side_bytes
from pcapsmtp.model import Side, TcpSegment
from pcapsmtp.tcp.events import FlowEvent, FlowOpened, StreamData, StreamGap
from pcapsmtp.tcp.reassembler import (TUNNEL_FAILED, TUNNEL_OPEN, TUNNEL_PENDING, ReassemblyConfig,
                                      TcpReassembler, parse_tunnel)

N = int(os.environ.get("TCP_PROPERTY_EXAMPLES", "150"))

CONNECT = b"CONNECT mx.example.org:25 HTTP/1.0\r\nUser-Agent: x\r\n\r\n"
OK200 = b"HTTP/1.0 200 Connection established\r\n\r\n"
GREETING = b"220 mx.example.org ESMTP\r\n"
EHLO = b"EHLO client.example\r\n"
S5_HELLO = b"\x05\x01\x00"
S5_CHOICE = b"\x05\x00"
S5_REQ = b"\x05\x01\x00\x03\x0emx.example.org\x00\x19"
S5_REP = b"\x05\x00\x00\x01\x0a\x00\x00\x01\xd1\xcd"


# ------------------------------------------------------------------------------ parse_tunnel

@pytest.mark.parametrize("client, server, want", [
    (CONNECT, OK200 + GREETING, (TUNNEL_OPEN, len(CONNECT), len(OK200))),
    (CONNECT + EHLO, OK200 + GREETING, (TUNNEL_OPEN, len(CONNECT), len(OK200))),
    (CONNECT, b"HTTP/1.1 200 OK\nVia: p\n\n554 go away\r\n",
     (TUNNEL_OPEN, len(CONNECT), len(b"HTTP/1.1 200 OK\nVia: p\n\n"))),
    (CONNECT, b"", (TUNNEL_PENDING, 0, 0)),
    (CONNECT, b"HTTP/1.0 2", (TUNNEL_PENDING, 0, 0)),
    (CONNECT, OK200, (TUNNEL_PENDING, 0, 0)),
    (CONNECT, OK200 + b"22", (TUNNEL_PENDING, 0, 0)),
    (CONNECT[:20], OK200 + GREETING, (TUNNEL_PENDING, 0, 0)),
    (CONNECT, b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n", (TUNNEL_FAILED, 0, 0)),
    (CONNECT, b"SSH-2.0-x\r\n", (TUNNEL_FAILED, 0, 0)),
    (CONNECT, OK200 + b"\x16\x03\x01\x02\x00", (TUNNEL_FAILED, 0, 0)),      # TLS inside
    (b"GET / HTTP/1.1\r\n\r\n", OK200 + GREETING, (TUNNEL_FAILED, 0, 0)),
    (S5_HELLO + S5_REQ, S5_CHOICE + S5_REP + GREETING,
     (TUNNEL_OPEN, len(S5_HELLO + S5_REQ), len(S5_CHOICE + S5_REP))),
    (b"\x05\x02\x00\x02" + b"\x01\x01u\x01p" + b"\x05\x01\x00\x01\x01\x02\x03\x04\x00\x19",
     b"\x05\x02" + b"\x01\x00" + S5_REP + GREETING, (TUNNEL_OPEN, 19, 14)),
    (b"\x05\x01\x00" + b"\x05\x01\x00\x04" + bytes(16) + b"\x00\x19",
     S5_CHOICE + b"\x05\x00\x00\x04" + bytes(18) + GREETING, (TUNNEL_OPEN, 25, 24)),
    (S5_HELLO, b"", (TUNNEL_PENDING, 0, 0)),
    (S5_HELLO, S5_CHOICE, (TUNNEL_PENDING, 0, 0)),
    (S5_HELLO + S5_REQ, S5_CHOICE + S5_REP[:5], (TUNNEL_PENDING, 0, 0)),
    (S5_HELLO + S5_REQ, S5_CHOICE + b"\x05\x05\x00\x01" + bytes(6), (TUNNEL_FAILED, 0, 0)),
    (S5_HELLO, b"\x05\xff", (TUNNEL_FAILED, 0, 0)),                            # no method
    (S5_HELLO + b"\x05\x02\x00\x01" + bytes(6), S5_CHOICE, (TUNNEL_FAILED, 0, 0)),  # BIND
    (S5_HELLO + b"\x05\x01\x00\x09", S5_CHOICE, (TUNNEL_FAILED, 0, 0)),       # bad ATYP
    (S5_HELLO + S5_REQ, S5_CHOICE + S5_REP + b"HTTP/1.1 200 OK\r\n", (TUNNEL_FAILED, 0, 0)),
])
def test_parse_tunnel(client: bytes, server: bytes, want: tuple[int, int, int]) -> None:
    assert parse_tunnel(client, server) == want


# ------------------------------------------------------------------------------ reassembler

def http_tunnel(c: Conv, *, together: bool = False) -> list[TcpSegment]:
    a, b = len(CONNECT), len(OK200)
    segs = c.handshake() + [c.c(1, CONNECT, ack=1)]
    if together:
        segs.append(c.s(1, OK200 + GREETING, ack=1 + a))
    else:
        segs += [c.s(1, OK200, ack=1 + a), c.s(1 + b, GREETING, ack=1 + a)]
    g = 1 + b + len(GREETING)
    segs += [c.c(1 + a, EHLO, ack=g), c.s(g, b"250 ok\r\n", ack=1 + a + len(EHLO))]
    return segs


def test_http_connect_tunnel_becomes_a_candidate_at_the_greeting() -> None:
    c = Conv(sport=8240)
    r = TcpReassembler()
    ev = feed_all(r, http_tunnel(c))
    assert isinstance(ev[0], FlowOpened)
    info = ev[0].flow
    assert (info.side_evidence, info.midstream, info.handshake_seen) == ("content", False, True)
    assert (info.client.port, info.server.port, info.first_frame, info.stream) == (40000, 8240, 1, 0)
    assert side_bytes(ev, Side.SERVER) == GREETING + b"250 ok\r\n"
    assert side_bytes(ev, Side.CLIENT) == EHLO
    data = [e for e in ev if isinstance(e, StreamData)]
    assert [(d.side, d.offset, d.frame) for d in data] == \
        [(Side.SERVER, 0, 6), (Side.CLIENT, 0, 7), (Side.SERVER, len(GREETING), 8)]
    assert not [e for e in ev if isinstance(e, StreamGap)]
    assert r.stats.candidates == 1


def test_reply_and_greeting_in_one_segment() -> None:
    ev = feed_all(TcpReassembler(), http_tunnel(Conv(sport=3128), together=True))
    data = [e for e in ev if isinstance(e, StreamData)]
    assert (data[0].side, data[0].offset, data[0].data, data[0].frame) == \
        (Side.SERVER, 0, GREETING, 5)
    assert side_bytes(ev, Side.CLIENT) == EHLO


def test_split_and_retransmitted_connect_request() -> None:
    c = Conv(sport=8080)
    a = len(CONNECT)
    segs = c.handshake() + [c.c(1, CONNECT[:10], ack=1), c.c(1, CONNECT[:10], ack=1),
                            c.c(11, CONNECT[10:], ack=1), c.s(1, OK200 + GREETING, ack=1 + a),
                            c.c(1 + a, EHLO, ack=1 + len(OK200 + GREETING))]
    ev = feed_all(TcpReassembler(), segs)
    assert side_bytes(ev, Side.SERVER) == GREETING
    assert side_bytes(ev, Side.CLIENT) == EHLO


def test_client_bytes_sent_before_the_greeting_are_replayed() -> None:
    c = Conv(sport=8080)
    a = len(CONNECT)
    segs = c.handshake() + [c.c(1, CONNECT, ack=1), c.c(1 + a, EHLO, ack=1),
                            c.s(1, OK200, ack=1 + a + len(EHLO)),
                            c.s(1 + len(OK200), GREETING, ack=1 + a + len(EHLO))]
    ev = feed_all(TcpReassembler(), segs)
    data = [e for e in ev if isinstance(e, StreamData)]
    assert [(d.side, d.offset, d.data, d.frame) for d in data] == \
        [(Side.CLIENT, 0, EHLO, 5), (Side.SERVER, 0, GREETING, 7)]


@pytest.mark.parametrize("reply", [b"HTTP/1.0 403 Forbidden\r\n\r\n",
                                   OK200 + b"\x16\x03\x01\x00\x05hello",
                                   OK200 + b"SSH-2.0-OpenSSH\r\n"])
def test_refused_or_not_smtp_inside_is_ignored(reply: bytes) -> None:
    c = Conv(sport=8080)
    r = TcpReassembler()
    segs = c.handshake() + [c.c(1, CONNECT, ack=1), c.s(1, reply, ack=1 + len(CONNECT)),
                            c.s(1 + len(reply), GREETING, ack=1 + len(CONNECT))]
    assert feed_all(r, segs) == []
    assert r.stats.candidates == 0 and r.stream_of(c.cip, c.cport, c.sip, c.sport) == 0


def test_the_watch_is_bounded() -> None:
    c = Conv(sport=8080)
    r = TcpReassembler(ReassemblyConfig(tunnel_limit=100))
    long_req = b"CONNECT mx:25 HTTP/1.0\r\nX: " + b"a" * 200 + b"\r\n\r\n"
    segs = c.handshake() + [c.c(1, long_req, ack=1),
                            c.s(1, OK200 + GREETING, ack=1 + len(long_req))]
    assert feed_all(r, segs) == [] and r.stats.candidates == 0


def test_fin_or_reset_during_the_handshake_ends_the_watch() -> None:
    for flag in (F, R):
        c = Conv(sport=8080)
        r = TcpReassembler()
        segs = c.handshake() + [c.c(1, CONNECT, ack=1), c.s(1, flags=flag, ack=1 + len(CONNECT)),
                                c.s(1, OK200 + GREETING, ack=1 + len(CONNECT))]
        assert feed_all(r, segs) == []


def test_no_tunnel_watch_without_content_detection() -> None:
    r = TcpReassembler(ReassemblyConfig(detect_by_content=False))
    assert feed_all(r, http_tunnel(Conv(sport=8240))) == []


def test_socks5_tunnel() -> None:
    c = Conv(sport=1080)
    h, q = len(S5_HELLO), len(S5_REQ)
    ch, rp = len(S5_CHOICE), len(S5_REP)
    segs = c.handshake() + [
        c.c(1, S5_HELLO, ack=1), c.s(1, S5_CHOICE, ack=1 + h),
        c.c(1 + h, S5_REQ, ack=1 + ch), c.s(1 + ch, S5_REP, ack=1 + h + q),
        c.s(1 + ch + rp, GREETING, ack=1 + h + q),
        c.c(1 + h + q, EHLO, ack=1 + ch + rp + len(GREETING)),
    ]
    ev = feed_all(TcpReassembler(), segs)
    info = ev[0].flow
    assert (info.side_evidence, info.midstream, info.server.port) == ("content", False, 1080)
    assert side_bytes(ev, Side.SERVER) == GREETING
    assert side_bytes(ev, Side.CLIENT) == EHLO


def test_a_hole_in_the_handshake_gives_up() -> None:
    c = Conv(sport=8080)
    segs = c.handshake() + [c.c(11, CONNECT[10:], ack=1), c.s(1, OK200 + GREETING, ack=1)]
    assert feed_all(TcpReassembler(), segs) == []


def test_smtp_port_keeps_deciding_at_the_first_payload() -> None:
    """A CONNECT sent to port 25 is the client talking HTTP to an SMTP server: a candidate at
    once, as before, with all its bytes."""
    c = Conv(sport=25)
    ev = feed_all(TcpReassembler(), c.handshake() + [c.c(1, CONNECT, ack=1)])
    assert isinstance(ev[0], FlowOpened) and side_bytes(ev, Side.CLIENT) == CONNECT


# ------------------------------------------------------------------------------ properties

@st.composite
def _pieces(draw: st.DrawFn, data: bytes) -> list[tuple[int, bytes]]:
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=6))))
    bounds = [0] + [c for c in cuts if 0 < c < len(data)] + [len(data)]
    return [(a, data[a:b]) for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.data())
def test_any_segmentation_of_the_proxy_handshake(socks: bool, data: st.DataObject) -> None:
    c = Conv(sport=1080 if socks else 8080, cisn=data.draw(st.integers(0, 0xFFFFFFFF)),
             sisn=data.draw(st.integers(0, 0xFFFFFFFF)))
    phases = ([(True, S5_HELLO), (False, S5_CHOICE), (True, S5_REQ), (False, S5_REP + GREETING)]
              if socks else [(True, CONNECT), (False, OK200 + GREETING)])
    phases += [(True, EHLO), (False, b"250 ok\r\n")]
    sent = {True: 0, False: 0}
    segs = c.handshake()
    for is_client, chunk in phases:
        for off, piece in data.draw(_pieces(chunk)):
            mk = c.c if is_client else c.s
            segs.append(mk(1 + sent[is_client] + off, piece, ack=1 + sent[not is_client]))
            if data.draw(st.booleans()):      # a retransmission now and then
                segs.append(mk(1 + sent[is_client] + off, piece, ack=1 + sent[not is_client]))
        sent[is_client] += len(chunk)
    ev = feed_all(TcpReassembler(), segs)
    opened = [e for e in ev if isinstance(e, FlowOpened)]
    assert len(opened) == 1 and opened[0].flow.side_evidence == "content"
    assert side_bytes(ev, Side.SERVER) == GREETING + b"250 ok\r\n"
    assert side_bytes(ev, Side.CLIENT) == EHLO
    assert not [e for e in ev if isinstance(e, StreamGap)]


@settings(max_examples=N, deadline=None)
@given(st.binary(max_size=64), st.binary(max_size=64), st.booleans())
def test_parse_tunnel_never_raises(client: bytes, server: bytes, socks: bool) -> None:
    head = S5_HELLO if socks else b"CONNECT "
    st_, cs, ss = parse_tunnel(head + client, server)
    assert st_ in (TUNNEL_PENDING, TUNNEL_FAILED, TUNNEL_OPEN)
    if st_ == TUNNEL_OPEN:
        assert 0 < cs <= len(head + client) and 0 < ss < len(server)


@settings(max_examples=N, deadline=None)
@given(st.lists(st.tuples(st.booleans(),
                          st.sampled_from([CONNECT, OK200, GREETING, EHLO, S5_HELLO, S5_CHOICE,
                                           S5_REQ, S5_REP, b"", b"\x05", b"C", b"HTTP/1.1 200 "]),
                          st.integers(0, 200), st.sampled_from([0, 0x10, 0x11, 0x12, 0x02, 0x14])),
                max_size=30), st.sampled_from([1080, 8080]))
def test_tunnel_soup_never_raises_and_frames_flows(pieces: list, port: int) -> None:
    c = Conv(sport=port)
    r = TcpReassembler(ReassemblyConfig(tunnel_limit=200, max_tracked=4))
    ev: list[FlowEvent] = []
    for is_client, payload, rel, flags in pieces:
        seg = (c.c if is_client else c.s)(rel, payload, flags=flags & ~0x10,
                                          ack=rel if flags & 0x10 else None)
        ev += r.feed(seg)
    ev += r.finish()
    assert_bracketed(ev)


# ------------------------------------------------------------------------------ arrival order

def test_connect_request_cut_and_reordered() -> None:
    """The request's second segment comes first: the handshake is read in sequence order."""
    c = Conv(sport=8080)
    a = len(CONNECT)
    hs = c.handshake()
    late_half = c.c(11, CONNECT[10:], ack=1)
    segs = hs + [late_half, c.c(1, CONNECT[:10], ack=1), c.s(1, OK200 + GREETING, ack=1 + a),
                 c.c(1 + a, EHLO, ack=1 + len(OK200 + GREETING))]
    ev = feed_all(TcpReassembler(), segs)
    assert side_bytes(ev, Side.SERVER) == GREETING
    assert side_bytes(ev, Side.CLIENT) == EHLO
    assert not [e for e in ev if isinstance(e, StreamGap)]


def test_proxy_reply_captured_before_the_request() -> None:
    """Two taps merged out of order: the proxy's 200 and the greeting (they acknowledge the
    CONNECT) come before the CONNECT. The reply is not taken for the start of a non-SMTP
    conversation: the request's bytes are late."""
    c = Conv(sport=8080)
    a = len(CONNECT)
    hs = c.handshake()
    reply = c.s(1, OK200 + GREETING, ack=1 + a)                       # 4
    req = c.c(1, CONNECT, ack=1)                                      # 5
    segs = hs + [reply, req, c.c(1 + a, EHLO, ack=1 + len(OK200 + GREETING))]
    ev = feed_all(TcpReassembler(), segs)
    assert [e for e in ev if isinstance(e, FlowOpened)][0].flow.client.port == 40000
    data = [(e.side, e.offset, e.frame) for e in ev if isinstance(e, StreamData)]
    assert data == [(Side.SERVER, 0, 4), (Side.CLIENT, 0, 6)]
    assert not [e for e in ev if isinstance(e, StreamGap)]
