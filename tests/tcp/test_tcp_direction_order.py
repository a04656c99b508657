"""Each direction keeps its capture order through the causal hold (``Flow.held``): a capture
merged from two taps, one per direction, interleaves the two directions by two clocks that
differ, but each direction's packets come from one tap with one clock, so their order is
their true order. A held segment (one that acknowledges bytes of the other side not delivered
yet) holds the later segments of its side behind it, and of the held segments only the first
of each direction may go: a reset waits behind its side's earlier segments, and when the wait
is over a later segment of a side never goes before an earlier one (it would declare lost the
bytes the earlier one waits for, held in the other direction). A data segment whose sequence
numbers say it was sent before its side's held segments (its direction reordered on the way
to the tap) does not wait behind them."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _stream_events import events
from _tcp_builder import A, Conv, F, R, feed_all
from pcapsmtp.model import Side, TcpSegment
from pcapsmtp.tcp.events import FlowClosed
from pcapsmtp.tcp.reassembler import TcpReassembler

N = int(os.environ.get("TCP_PROPERTY_EXAMPLES", "150"))
C, S = Side.CLIENT, Side.SERVER



BANNER = b"220 mx\r\n"
EHLO = b"EHLO a\r\n"
R250 = b"250 mx\r\n"
MAIL = b"MAIL FROM:<a>\r\n"
OK = b"250 ok\r\n"
RCPT = b"RCPT TO:<b>\r\n"


def test_a_reset_waits_behind_its_sides_held_segments() -> None:
    """The client's tap ahead: its MAIL (acknowledging the EHLO reply) and its reset come
    before the server's EHLO reply. MAIL waits for the reply; the reset, whatever its flags,
    waits behind MAIL (no copy of it: its own frame ends the client's stream), then ends the
    conversation."""
    for flags in (R, R | A):
        c = Conv()
        hs = c.handshake()
        banner = c.s(1, BANNER, ack=1)                                        # 4
        ehlo = c.c(1, EHLO, ack=9)                                            # 5
        mail = c.c(9, MAIL, ack=9 + len(R250))                                # 6: waits
        end = 9 + len(MAIL)
        rst = c.c(end, flags=flags & ~A, ack=9 + len(R250) if flags & A else None)  # 7
        reply = c.s(9, R250, ack=9)                                           # 8
        r = TcpReassembler()
        ev = feed_all(r, hs + [banner, ehlo, mail, rst, reply])
        assert events(ev) == [
            ("data", S, 0, len(BANNER), 4), ("data", C, 0, len(EHLO), 5),
            ("data", S, 8, len(R250), 8), ("data", C, 8, len(MAIL), 6),
            ("end", C, 0, 1, 7), ("end", S, 0, 0, 8)], flags
        closed = ev[-1]
        assert isinstance(closed, FlowClosed) and closed.reason == "closed"
        assert r.stats.causal_held == 2 and r.stats.causal_late == 2


def test_a_later_segment_never_declares_lost_what_an_earlier_one_of_its_side_waits_for() -> None:
    """The client's EHLO is lost; its MAIL acknowledges the server's EHLO reply, its RCPT the
    reply to MAIL too, which is lost; the EHLO reply comes last (it waits for the EHLO, held
    nowhere). When the wait is over (the capture ends) the EHLO reply goes first (the EHLO is
    a gap, declared by its acknowledgement), then MAIL, then RCPT (the reply to MAIL is a
    gap). RCPT, which waits for bytes held nowhere, must not go before MAIL: its
    acknowledgement would declare lost the EHLO reply, which is held."""
    c = Conv()
    hs = c.handshake()
    banner = c.s(1, BANNER, ack=1)                                            # 4
    mail = c.c(9, MAIL, ack=9 + len(R250))                                    # 5: waits (reply)
    rcpt = c.c(9 + len(MAIL), RCPT, ack=9 + len(R250) + len(OK))              # 6: waits
    reply = c.s(9, R250, ack=9)                                               # 7: waits (EHLO lost)
    ev = feed_all(TcpReassembler(), hs + [banner, mail, rcpt, reply])
    assert [e for e in events(ev) if e[0] != "end"] == [
        ("data", S, 0, len(BANNER), 4),
        ("gap", C, 0, len(EHLO), 7), ("data", S, 8, len(R250), 7),
        ("data", C, 8, len(MAIL), 5),
        ("gap", S, 16, len(OK), 6), ("data", C, 8 + len(MAIL), len(RCPT), 6)]


def test_a_data_segment_sent_before_its_sides_held_ack_goes_before_it() -> None:
    """The client's direction reordered on the way to the tap (and the taps merged): the EHLO
    reply comes first (it waits for the EHLO), then the client's ACK of it (it waits for the
    reply), then the EHLO, whose bytes end at the ACK's sequence number: sent before the ACK,
    it goes at once instead of waiting behind it (the two waits would block each other until
    the window ends, and capture order would hand the reply to the session before the EHLO it
    answers). Then the reply, then the ACK; MAIL after them; no gap."""
    c = Conv()
    hs = c.handshake()
    banner = c.s(1, BANNER, ack=1)                                            # 4
    reply = c.s(9, R250, ack=9)                                               # 5: waits (EHLO)
    ack = c.c(9, ack=9 + len(R250))                                           # 6: waits (reply)
    ehlo = c.c(1, EHLO, ack=9)                                                # 7: sent before 6
    mail = c.c(9, MAIL, ack=9 + len(R250))                                    # 8
    r = TcpReassembler()
    ev = feed_all(r, hs + [banner, reply, ack, ehlo, mail])
    assert [e for e in events(ev) if e[0] != "end"] == [
        ("data", S, 0, len(BANNER), 4), ("data", C, 0, len(EHLO), 7),
        ("data", S, 8, len(R250), 5), ("data", C, 8, len(MAIL), 8)]
    assert r.stats.causal_held == 2 and r.stats.causal_late == 2


def test_a_data_segment_after_its_sides_held_ones_in_sequence_still_waits() -> None:
    """The control: a data segment whose bytes come after those of its side's held segment
    (MAIL after a held EHLO that waits for the banner) was sent after it and waits behind it."""
    c = Conv()
    hs = c.handshake()
    ehlo = c.c(1, EHLO, ack=9)                                                # 4: waits (banner)
    mail = c.c(9, MAIL, ack=9)                                                # 5: behind 4
    banner = c.s(1, BANNER, ack=1)                                            # 6
    r = TcpReassembler()
    ev = feed_all(r, hs + [ehlo, mail, banner])
    assert [e for e in events(ev) if e[0] != "end"] == [
        ("data", S, 0, len(BANNER), 6), ("data", C, 0, len(EHLO), 4),
        ("data", C, 8, len(MAIL), 5)]
    assert r.stats.causal_held == 2


# ----------------------------------------------------------------------------- the property

@st.composite
def dialogue(draw: st.DrawFn) -> tuple[list[TcpSegment], list[bool]]:
    """A dialogue in causal order (each command acknowledges the replies before it, each reply
    the command it answers), ended by one side's reset (with or without ACK), or by one side's
    FIN, data of the other side and the closed socket's answer, a reset without ACK: its
    segments in that order, and for each whether the client sent it."""
    c = Conv(cisn=draw(st.integers(0, 2**32 - 1)), sisn=draw(st.integers(0, 2**32 - 1)))
    segs = c.handshake()
    cpos = spos = 1
    segs.append(c.s(spos, BANNER, ack=cpos))
    spos += len(BANNER)
    for _ in range(draw(st.integers(1, 6))):
        for _ in range(draw(st.integers(1, 3))):          # a command in one or more segments
            data = draw(st.binary(min_size=1, max_size=30))
            segs.append(c.c(cpos, data, ack=spos))
            cpos += len(data)
        if draw(st.booleans()):
            segs.append(c.s(spos, ack=cpos))                # a pure ACK first
        for _ in range(draw(st.integers(1, 3))):
            data = draw(st.binary(min_size=1, max_size=30))
            segs.append(c.s(spos, data, ack=cpos))
            spos += len(data)
    client_ends = draw(st.booleans())
    with_ack = draw(st.booleans())
    if draw(st.booleans()):
        # the closer's FIN, the other side's data (sent after the FIN came, or before), which
        # reaches the closed socket: its kernel answers with a reset without ACK whose sequence
        # number is that data's ACK field
        mine, theirs = (c.c, c.s) if client_ends else (c.s, c.c)
        pos, other = (cpos, spos) if client_ends else (spos, cpos)
        segs.append(mine(pos, flags=F, ack=other))
        acked = pos + 1 if with_ack else pos
        if with_ack and draw(st.booleans()):
            segs.append(theirs(other, ack=acked))           # a pure ACK of the FIN first
        segs.append(theirs(other, draw(st.binary(min_size=1, max_size=30)), ack=acked))
        segs.append(mine(acked, flags=R))
    elif client_ends:
        segs.append(c.c(cpos, ack=spos))                    # the client acknowledges the last reply
        segs.append(c.c(cpos, flags=R, ack=spos if with_ack else None))
    else:
        segs.append(c.s(spos, flags=R, ack=cpos if with_ack else None))
    return segs, [s.sport != 25 for s in segs]


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dialogue(), st.data())
def test_any_merge_of_the_two_directions_gives_the_events_of_the_causal_order(
        sc: tuple[list[TcpSegment], list[bool]], data: st.DataObject) -> None:
    """Two taps merged with any clock offset: any interleaving of the two directions that keeps
    each direction's order, within the causal window, gives each side the stream events
    (offsets, lengths, frames, the reset last) of the dialogue in causal order: also when a
    closed socket's reset comes before the data it answers, which is read."""
    hs, segs, client = sc[0][:3], sc[0][3:], sc[1][3:]
    base = hs[-1].ts_ns
    reference = feed_all(TcpReassembler(), hs + segs)
    # a merge: draw, at each step, which direction's next segment comes
    ci = [s for s, k in zip(segs, client) if k]
    si = [s for s, k in zip(segs, client) if not k]
    merged: list[TcpSegment] = []
    while ci or si:
        take = ci if not si else si if not ci else (ci if data.draw(st.booleans()) else si)
        s = take.pop(0)
        # time order of the merged file (the frames keep their numbers: they name the packet)
        merged.append(TcpSegment(s.frame, base + (len(merged) + 1) * 1000, s.src, s.sport, s.dst,
                                 s.dport, s.seq, s.ack, s.flags, s.payload, s.missing))
    ev = feed_all(TcpReassembler(), hs + merged)
    got = events(ev)
    # each side's events as in causal order (across the sides, segments that crossed, neither
    # acknowledging the other, may come either way)
    for side in (C, S):
        assert [e for e in got if e[1] == side] == [e for e in events(reference) if e[1] == side]
    closed = ev[-1]
    assert isinstance(closed, FlowClosed) and closed.reason == "closed"
    last = segs[-2]
    if last.payload:            # the data a closed socket's reset answered is read
        (i,) = [i for i, e in enumerate(got) if e[0] == "data" and e[4] == last.frame]
        assert not [e for e in got[i + 1:] if e[0] != "end"]
    else:
        reset = ("end", C if client[-1] else S, 0, 1, segs[-1].frame)
        assert reset in got and not [e for e in got[got.index(reset):] if e[0] != "end"]
