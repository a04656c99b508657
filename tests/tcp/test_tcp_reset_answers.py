"""A reset without ACK waits for the segment it answers (``tcp.reassembler._unanswered``).

A socket that was closed (its FIN sent) answers a segment bringing data with a reset without ACK
whose sequence number is that segment's ACK field (RFC 9293 3.10.7). Two taps merged with
skewed clocks can show the reset first: it waits (bounded by the causal window) until a segment
of the other side with payload acknowledging up to it is read, so that segment's bytes are read
before the conversation ends. A capture at one point sees the segment first: nothing waits."""
from __future__ import annotations

from _stream_events import events
from _tcp_builder import Conv, F, R, feed_all
from pcapsmtp.model import Side, TcpSegment
from pcapsmtp.tcp.events import FlowClosed, FlowEvent
from pcapsmtp.tcp.reassembler import ReassemblyConfig, TcpReassembler

C, S = Side.CLIENT, Side.SERVER
BANNER = b"220 mx\r\n"                  # server bytes 0..8
STARTTLS = b"STARTTLS\r\n"               # client bytes 0..10
READY = b"220 go\r\n"                    # server bytes 8..16; its FIN at 16
HELLO = b"\x16\x03\x01\x00\x05hello"     # client bytes 10..20
FIN_END = 1 + len(BANNER) + len(READY) + 1      # the server's sequence space after its FIN



def _close() -> tuple[list[TcpSegment], dict[str, TcpSegment]]:
    """The server answers STARTTLS and closes; the client acknowledges the FIN and sends its
    ClientHello; the server's kernel answers it with a reset without ACK: the handshake, and
    the segments after it by name, created in the order one capture point sees them."""
    c = Conv()
    hs = c.handshake()
    seg = {"banner": c.s(1, BANNER, ack=1), "starttls": c.c(1, STARTTLS, ack=9),
           "ready": c.s(9, READY, ack=11), "fin": c.s(17, flags=F, ack=11),
           "ack_fin": c.c(11, ack=FIN_END), "hello": c.c(11, HELLO, ack=FIN_END),
           "rst": c.s(FIN_END, flags=R)}
    return hs, seg


def _feed(hs: list[TcpSegment], segs: list[TcpSegment]) -> tuple[TcpReassembler, list[FlowEvent]]:
    r = TcpReassembler()
    return r, feed_all(r, hs + segs)


#: what the conversation gives, in causal order: the ClientHello read, then the end
READ = [("data", S, 0, len(BANNER), 4), ("data", C, 0, len(STARTTLS), 5),
        ("data", S, 8, len(READY), 6), ("end", S, 0, 0, 7), ("data", C, 10, len(HELLO), 9),
        ("end", C, 0, 0, 9)]


def test_at_one_capture_point_nothing_waits() -> None:
    hs, g = _close()
    r, ev = _feed(hs, list(g.values()))
    assert events(ev) == READ
    assert r.stats.causal_held == 0
    assert isinstance(ev[-1], FlowClosed) and ev[-1].reason == "closed"


def test_a_reset_without_ack_before_the_segment_it_answers_waits_for_it() -> None:
    """The client's tap late: the server's packets first, its reset before every client
    segment. The reset waits behind the READY (which waits for STARTTLS) and then for a client
    segment with payload acknowledging the FIN: the ClientHello is read, then the reset ends
    the conversation. The client's pure ACK of the FIN acknowledges as much but is no cause (a
    closed socket resets data, not an ACK)."""
    hs, g = _close()
    order = [g[k] for k in ("banner", "ready", "fin", "rst", "starttls", "ack_fin", "hello")]
    r, ev = _feed(hs, order)
    assert events(ev) == READ
    assert isinstance(ev[-1], FlowClosed) and ev[-1].reason == "closed"
    # what waited: READY, the FIN and the reset (READY and the FIN for STARTTLS), then the
    # reset alone for the ClientHello
    assert r.stats.causal_held == 3 and r.stats.causal_late == 3


def test_the_wait_ends_when_the_segment_it_answers_arrives() -> None:
    """The reset is handed on with the ClientHello's events (the feed of the ClientHello), not
    at the end of the capture."""
    hs, g = _close()
    r = TcpReassembler(ReassemblyConfig(reset_watch_ns=0))    # (its FlowClosed with the reset)
    for s in hs + [g[k] for k in ("banner", "starttls", "ready", "fin", "rst", "ack_fin")]:
        r.feed(s)
    out = r.feed(g["hello"])
    assert events(out) == READ[-2:]
    assert isinstance(out[-1], FlowClosed) and out[-1].reason == "closed"


def test_a_reset_whose_cause_never_comes_waits_no_longer_than_the_causal_window() -> None:
    """Live: the ClientHello was lost; the reset goes when the window has passed (``tick``),
    and the conversation closes then."""
    hs, g = _close()
    window = 2 * 10**9
    r = TcpReassembler(ReassemblyConfig(causal_window_ns=window, reset_watch_ns=0))
    for s in hs + [g[k] for k in ("banner", "starttls", "ready", "fin", "ack_fin", "rst")]:
        r.feed(s)
    assert r.tick(g["rst"].ts_ns + window) == []
    out = r.tick(g["rst"].ts_ns + window + 1)
    assert events(out) == [("end", C, 0, 0, 8)]        # the client's stream ends truncated
    assert isinstance(out[-1], FlowClosed) and out[-1].reason == "closed"


def test_a_reset_from_a_side_that_did_not_close_does_not_wait() -> None:
    """No FIN of the server before its reset: it is no closed socket's answer (an abort, a box's
    forged reset), so it ends the conversation where it comes, as at one capture point; the
    ClientHello after it is not read."""
    c = Conv()
    hs = c.handshake()
    segs = [c.s(1, BANNER, ack=1), c.c(1, STARTTLS, ack=9), c.s(9, READY, ack=11),
            c.s(17, flags=R)]                                         # 7: no FIN before
    hello = c.c(11, HELLO, ack=17)
    r, ev = _feed(hs, segs + [hello])
    assert ("data", C, 10, len(HELLO), 8) not in events(ev)
    assert ("end", S, 0, 1, 7) in events(ev)
    assert r.stats.after_close_segments == 1


def test_a_reset_after_the_other_side_ended_does_not_wait() -> None:
    """The client's FIN was read: no payload of the client can come, the reset does not wait
    for the client. It waits for its own side's bytes below its sequence number (READY, sent
    before it, captured after it: ``HalfStream.reset_past``) and then ends the conversation;
    the server's FIN behind it in the capture is not read."""
    c = Conv()
    hs = c.handshake()
    segs = [c.s(1, BANNER, ack=1), c.c(1, STARTTLS, ack=9),
            c.c(11, flags=F, ack=9),                                  # 6: the client closes
            c.s(9, READY, ack=12), c.s(17, flags=F, ack=12)]          # 7, 8: both FINs: closed
    r, ev = _feed(hs, segs[:3] + [c.s(18, flags=R)] + segs[3:])
    assert r.stats.causal_held == 1             # the reset (READY releases it)
    assert events(ev)[-2:] == [("data", S, 8, len(READY), 7), ("end", S, 0, 1, 9)]
    assert r.stats.gaps == 0

    # the same reset in capture order: nothing of either side to wait for
    c = Conv()
    hs = c.handshake()
    segs = [c.s(1, BANNER, ack=1), c.c(1, STARTTLS, ack=9), c.c(11, flags=F, ack=9),
            c.s(9, READY, ack=12), c.s(17, flags=R)]
    r, ev = _feed(hs, segs)
    assert r.stats.causal_held == 0
    assert events(ev)[-1] == ("end", S, 0, 1, 8)


def test_a_reset_without_ack_whose_cause_is_held_already_does_not_wait() -> None:
    """The segment the reset answers is in the capture already, held (it acknowledges bytes of
    the resetting side the capture lost): the reset ends the conversation at once, as any
    reset with nothing of its side held, after the held segments (their acknowledgement
    declares the lost bytes)."""
    c = Conv()
    hs = c.handshake()
    banner = c.s(1, BANNER, ack=1)
    c.s(9, READY, ack=11)                                             # 5: lost
    fin = c.s(17, flags=F, ack=11)                                    # 6
    starttls = c.c(1, STARTTLS, ack=9)                                # 7
    hello = c.c(11, HELLO, ack=FIN_END)                               # 8: waits for READY
    rst = c.s(FIN_END, flags=R)                                       # 9
    r, ev = _feed(hs, [banner, fin, starttls, hello, rst])
    assert events(ev) == [
        ("data", S, 0, len(BANNER), 4), ("data", C, 0, len(STARTTLS), 7),
        ("gap", S, 8, len(READY), 6), ("end", S, 0, 0, 6), ("data", C, 10, len(HELLO), 8),
        ("end", C, 0, 0, 8)]
    assert isinstance(ev[-1], FlowClosed) and ev[-1].reason == "closed"
    assert r.feed(c.c(21, ack=FIN_END)) == []       # after the close


def test_held_segments_left_at_the_close_are_processed_once() -> None:
    """Two resets, each the closed socket's answer to one client segment, both before them: the
    first goes with the QUIT it answers and ends the conversation; the second, still held, is
    a segment of the reset's side after it: the close counts it after the close, once (the
    release under way stops), and the data it answers comes after the close too."""
    c = Conv()
    hs = c.handshake()
    banner, fin = c.s(1, BANNER, ack=1), c.s(9, flags=F, ack=1)                # 4, 5
    quit_, more = c.c(1, b"QUIT\r\n", ack=10), c.c(7, b"more\r\n", ack=10)   # 6, 7
    resets = [c.s(10, flags=R), c.s(10, flags=R)]                            # 8, 9
    r, ev = _feed(hs, [banner, fin, *resets, quit_, more])
    assert events(ev) == [("data", S, 0, len(BANNER), 4), ("end", S, 0, 0, 5),
                          ("data", C, 0, 6, 6), ("end", C, 0, 0, 6)]
    assert (r.stats.causal_held, r.stats.causal_late, r.stats.after_close_segments) == (2, 1, 2)
