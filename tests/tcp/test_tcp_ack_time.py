"""When the client's acknowledgement of the server's stream last advanced
(``FlowClosed.server_acked_ns``, ``HalfStream.acked_ts``): the capture time by which the bytes it
covers had reached the client. Only the server's half keeps it (``HalfStream.ack_timed``): the
server's acknowledgements of the client's bytes never move it. The verdict reads it to tell a
client that had the server's TLS answer long before the server gave up from one whose
acknowledgement of it comes only with its own late close (analysis/verdict.py,
``_server_gave_up_on_client_flight``).

- a duplicate acknowledgement (the same value again) does not move it;
- an advance over the side's captured FIN alone (the ACK of a FIN after all its bytes were
  acknowledged) does not move it: the bytes had arrived before;
- an advance over bytes and the FIN at once does (the late close that first acknowledges them);
- a reset's acknowledgement counts as any other;
- the server's acknowledgements (of the client's bytes and FIN) do not move it.
"""
from __future__ import annotations

from _tcp_builder import F, R, S, Conv, feed_all
from pcapsmtp.tcp.events import FlowClosed, FlowEvent
from pcapsmtp.tcp.reassembler import ReassemblyConfig, TcpReassembler

GREETING = b"220 mx.example.org ESMTP\r\n"
EHLO = b"EHLO client.example\r\n"
G, E = len(GREETING), len(EHLO)


def _closed(ev: list[FlowEvent]) -> FlowClosed:
    (closed,) = [e for e in ev if isinstance(e, FlowClosed)]
    return closed


def test_the_ack_of_the_fin_alone_keeps_the_time_of_the_bytes() -> None:
    c = Conv()
    segs = c.handshake() + [
        c.s(1, GREETING, ack=1),
        ack_greeting := c.c(1, ack=1 + G),
        c.c(1, ack=1 + G),                        # a duplicate ACK: no advance
        c.s(1 + G, flags=F, ack=1),
        c.c(1, flags=F, ack=2 + G),               # over the server's FIN alone
        c.s(2 + G, ack=2),
    ]
    closed = _closed(feed_all(TcpReassembler(), segs))
    assert (closed.server_acked, closed.server_acked_ns) == (G + 1, ack_greeting.ts_ns)


def test_bytes_first_acknowledged_with_the_fin_take_the_fins_time() -> None:
    """The client's first acknowledgement of the greeting comes with its FIN, after the server's
    FIN: it advances over bytes, not over the FIN alone."""
    c = Conv()
    segs = c.handshake() + [
        c.s(1, GREETING, ack=1),
        c.s(1 + G, flags=F, ack=1),
        late := c.c(1, flags=F, ack=2 + G),
        c.s(2 + G, ack=2),
    ]
    closed = _closed(feed_all(TcpReassembler(), segs))
    assert (closed.server_acked, closed.server_acked_ns) == (G + 1, late.ts_ns)


def test_the_later_of_two_advances_counts() -> None:
    c = Conv()
    reply = b"250 ok\r\n"
    segs = c.handshake() + [
        c.s(1, GREETING, ack=1),
        c.c(1, EHLO, ack=1 + G),
        c.s(1 + G, reply, ack=1 + E),
        second := c.c(1 + E, ack=1 + G + len(reply)),
    ]
    closed = _closed(feed_all(TcpReassembler(), segs))
    assert (closed.server_acked, closed.server_acked_ns) == (G + len(reply), second.ts_ns)
    # (and its frame: the analyzer maps the time across a capture clock's steps by it)
    assert closed.server_acked_frame == second.frame


def test_a_resets_acknowledgement_counts() -> None:
    c = Conv()
    segs = c.handshake() + [
        c.s(1, GREETING, ack=1),
        rst := c.c(1, flags=R, ack=1 + G),
    ]
    closed = _closed(feed_all(TcpReassembler(ReassemblyConfig(reset_watch_ns=0)), segs))
    assert (closed.server_acked, closed.server_acked_ns, closed.server_acked_frame) == \
        (G, rst.ts_ns, rst.frame)


def test_the_servers_acknowledgements_do_not_move_it() -> None:
    """The server acknowledges the client's EHLO and FIN after the client's last advance (and the
    client's own FIN repeats its acknowledgement): the time stays the client's ACK of the 250,
    and that advance did not cover the server's FIN."""
    c = Conv()
    reply = b"250 ok\r\n"
    segs = c.handshake() + [
        c.s(1, GREETING, ack=1),
        c.c(1, EHLO, ack=1 + G),
        c.s(1 + G, reply, ack=1 + E),
        acked := c.c(1 + E, ack=1 + G + len(reply)),
        c.c(1 + E, flags=F, ack=1 + G + len(reply)),
        c.s(1 + G + len(reply), ack=2 + E),       # the server's ACK of the client's FIN
        c.s(1 + G + len(reply), flags=F, ack=2 + E),
    ]
    closed = _closed(feed_all(TcpReassembler(), segs))
    assert (closed.client_acked, closed.server_acked) == (E + 1, G + len(reply))
    assert (closed.server_acked_ns, closed.server_acked_fin) == (acked.ts_ns, False)


def test_an_advance_over_bytes_and_the_fin_says_so() -> None:
    """``server_acked_fin``: the client's first acknowledgement of the 250 also covers the
    server's FIN captured before it."""
    c = Conv()
    reply = b"250 ok\r\n"
    segs = c.handshake() + [
        c.s(1, GREETING, ack=1),
        c.c(1, EHLO, ack=1 + G),
        c.s(1 + G, reply, ack=1 + E),
        c.s(1 + G + len(reply), flags=F, ack=1 + E),
        late := c.c(1 + E, flags=F, ack=2 + G + len(reply)),
        c.s(2 + G + len(reply), ack=2 + E),
    ]
    closed = _closed(feed_all(TcpReassembler(), segs))
    assert (closed.server_acked_ns, closed.server_acked_fin) == (late.ts_ns, True)


def test_no_acknowledgement_no_time() -> None:
    c = Conv()
    segs = [c.c(0, flags=S), c.c(1, EHLO)]
    closed = _closed(feed_all(TcpReassembler(ReassemblyConfig(detect_by_content=True)), segs))
    assert (closed.server_acked_ns, closed.server_acked_frame) == (None, 0)


def test_so_far_is_what_the_close_will_carry() -> None:
    """``TcpReassembler.so_far``, which live mode's early verdict reads before the close: the
    values the flow's ``FlowClosed`` carries (an end of capture with nothing more), None for a
    flow not open."""
    c = Conv()
    reply = b"250 ok\r\n"
    segs = c.handshake() + [
        c.s(1, GREETING, ack=1),
        c.c(1, EHLO, ack=1 + G),
        c.s(1 + G, reply, ack=1 + E),
        c.c(1 + E, ack=1 + G + len(reply)),
    ]
    r = TcpReassembler()
    for s in segs:
        r.feed(s)
    now = r.so_far(0)
    assert now is not None and now.reason == "open" and now.ts_ns == segs[-1].ts_ns
    assert (now.client_acked, now.server_acked) == (E, G + len(reply))
    assert now.server_acked_ns == segs[6].ts_ns
    assert (now.client_last_ns, now.server_last_ns) == (segs[6].ts_ns, segs[5].ts_ns)
    assert r.so_far(1) is None
    closed = _closed(r.finish())
    assert closed.reason == "end"
    fields = ("client_acked", "server_acked", "client_last_ns", "server_last_ns", "client_resent",
              "server_resent", "server_acked_ns", "server_acked_fin", "server_acked_frame")
    assert [getattr(closed, k) for k in fields] == [getattr(now, k) for k in fields]
    assert r.so_far(0) is None
