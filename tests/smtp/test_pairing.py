"""Replies paired as the client pairs them (issue 13, item 1): properties over generated
dialogues, against a reference written from clients.md ("a client takes the lines up to the
first final line as one reply and pairs it with its oldest unanswered command").

The reference knows, for every reply the server sends, which command the server meant it for
(``stray`` replies continue the server's previous reply) and derives the client's pairing as
nth reply <-> nth command. The session must give exactly that, however each side's bytes are
split into segments, and the client's pairing must not depend on how the two directions
interleave.
"""
from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pcapsmtp.model import Side
from pcapsmtp.smtp.events import Command, Reply
from pcapsmtp.smtp.session import SmtpSession

C, S = Side.CLIENT, Side.SERVER

# Commands that do not change what the next bytes of either side are (no DATA, STARTTLS, AUTH).
_VERBS = ["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "NOOP", "RSET", "VRFY bob",
          "HELP"]


@dataclass
class Sent:
    """One reply as the server sent it: for which command index (or -1: the greeting) and whether
    it is a stray (no command awaited it: the rest of the reply before it)."""

    meant: int
    stray: bool
    data: bytes


@st.composite
def dialogues(draw: st.DrawFn) -> tuple[list[bytes], list[list[int]], list[list[Sent]], bytes]:
    """Commands in batches (a batch is one pipelined flight; size 1 is lockstep), and per batch
    the server's replies: one per command, maybe stray replies after the batch's last reply."""
    n = draw(st.integers(min_value=1, max_value=8))
    cmds = [b"EHLO client.example.org\r\n"] + [
        draw(st.sampled_from(_VERBS)).encode() + b"\r\n" for _ in range(n)]
    batches: list[list[int]] = []
    i = 0
    while i < len(cmds):
        size = draw(st.integers(min_value=1, max_value=3))
        batches.append(list(range(i, min(i + size, len(cmds)))))
        i += size
    replies: list[list[Sent]] = []
    for batch in batches:
        out = [Sent(k, False, b"250 ok %d\r\n" % k if k else b"250-mx.example.com\r\n250 SIZE 1000\r\n")
               for k in batch]
        for j in range(draw(st.integers(min_value=0, max_value=2))):
            multi = draw(st.booleans())
            out.append(Sent(batch[-1], True,
                            (b"250-STARTTLS\r\n" if multi else b"") + b"250 stray %d.%d\r\n" % (batch[-1], j)))
        replies.append(out)
    greeting = b"220 mx.example.com ESMTP\r\n"
    return cmds, batches, replies, greeting


def _reference(cmds: list[bytes], replies: list[list[Sent]]) -> list[tuple[int | None, int, bool]]:
    """Per reply after the greeting, in server order: (client's command index or None, the
    server's, stray)."""
    flat = [r for batch in replies for r in batch]
    return [(k if k < len(cmds) else None, r.meant, r.stray) for k, r in enumerate(flat)]


def _split(data: bytes, rnd: random.Random) -> list[bytes]:
    cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randint(0, 4))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


def _run(ops: list[tuple[Side, bytes]], cmds: list[bytes]) -> list[tuple[int | None, int | None, bool]]:
    s = SmtpSession()
    evs = []
    for side, data in ops:
        evs += s.receive(side, data)
    evs += s.receive_eof(S) + s.receive_eof(C)
    index: dict[int, int] = {}
    out = []
    for ev in evs:
        if isinstance(ev, Command):
            index[id(ev)] = len(index)
        elif isinstance(ev, Reply) and not ev.greeting:
            def num(c: Command | None) -> int | None:
                return index[id(c)] if c is not None else None
            out.append((ev.span.start, num(ev.answers), num(ev.server_answers), ev.stray))
    out.sort()   # server order (replies a command read later are emitted after that command)
    return [x[1:] for x in out]


def _causal_ops(cmds: list[bytes], batches: list[list[int]], replies: list[list[Sent]], greeting: bytes,
                rnd: random.Random) -> list[tuple[Side, bytes]]:
    ops: list[tuple[Side, bytes]] = [(S, seg) for seg in _split(greeting, rnd)]
    for batch, reps in zip(batches, replies):
        ops += [(C, seg) for seg in _split(b"".join(cmds[k] for k in batch), rnd)]
        ops += [(S, seg) for seg in _split(b"".join(r.data for r in reps), rnd)]
    return ops


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=dialogues(), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_pairing_matches_reference_however_segmented(
        d: tuple[list[bytes], list[list[int]], list[list[Sent]], bytes], seed: int) -> None:
    cmds, batches, replies, greeting = d
    got = _run(_causal_ops(cmds, batches, replies, greeting, random.Random(seed)), cmds)
    assert got == _reference(cmds, replies)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=dialogues(), seeds=st.lists(st.integers(min_value=0, max_value=2**32 - 1), min_size=2, max_size=2))
def test_splitting_the_server_stream_never_changes_the_pairing(
        d: tuple[list[bytes], list[list[int]], list[list[Sent]], bytes], seeds: list[int]) -> None:
    """The same capture order of flights, the server's bytes cut at other places."""
    cmds, batches, replies, greeting = d
    a = _run(_causal_ops(cmds, batches, replies, greeting, random.Random(seeds[0])), cmds)
    b = _run(_causal_ops(cmds, batches, replies, greeting, random.Random(seeds[1])), cmds)
    assert a == b


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=dialogues(), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_client_pairing_does_not_depend_on_cross_direction_order(
        d: tuple[list[bytes], list[list[int]], list[list[Sent]], bytes], seed: int) -> None:
    """Any merge of the two directions (the greeting first) gives the client's pairing: nth
    reply, nth command. (The server's pairing needs causal order: it is not checked here.)"""
    cmds, _, replies, greeting = d
    rnd = random.Random(seed)
    client = [seg for seg in _split(b"".join(cmds), rnd)]
    server = [seg for seg in _split(b"".join(r.data for reps in replies for r in reps), rnd)]
    ops: list[tuple[Side, bytes]] = [(S, greeting)]
    while client or server:
        src = client if (client and (not server or rnd.random() < 0.5)) else server
        ops.append((C if src is client else S, src.pop(0)))
    got = [g[0] for g in _run(ops, cmds)]
    assert got == [r[0] for r in _reference(cmds, replies)]


def test_after_its_354_the_server_reads_the_client_s_commands_as_content() -> None:
    """A lock-step client one reply behind: DATA reads RCPT's 250, so its next lines are
    commands; the server, which answered DATA 354, takes them as content up to the lone dot
    and answers the end of data. Each reply carries both pairings."""
    s = SmtpSession()
    evs = []
    for side, data in [(S, b"220 mx ESMTP\r\n"), (C, b"EHLO c\r\n"), (S, b"250 mx\r\n250 SIZE 1\r\n"),
                       (C, b"MAIL FROM:<a@b>\r\n"), (S, b"250 mail ok\r\n"), (C, b"RCPT TO:<c@d>\r\n"),
                       (S, b"250 rcpt ok\r\n"), (C, b"DATA\r\n"), (S, b"354 go\r\n"),
                       (C, b"Subject: x\r\n\r\nhello\r\n.\r\n"), (S, b"250 queued\r\n"),
                       (C, b"QUIT\r\n"), (S, b"221 bye\r\n")]:
        evs += s.receive(side, data)
    evs += s.receive_eof(C) + s.receive_eof(S)
    pairs = [(r.lines[0].text, r.answers.raw_verb if r.answers else None,
              r.server_answers.verb if r.server_answers else None, r.stray)
             for r in evs if isinstance(r, Reply) and not r.greeting]
    assert pairs == [("mx", "EHLO", "EHLO", False),
                     ("SIZE 1", "MAIL", "EHLO", True),
                     ("mail ok", "RCPT", "MAIL", False),
                     ("rcpt ok", "DATA", "RCPT", False),
                     ("go", "Subject:", "DATA", False),
                     ("queued", "hello", "*EOM", False),
                     ("bye", ".", "QUIT", False)]
    assert not any(type(e).__name__ == "MessageBody" for e in evs)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strays=st.integers(min_value=0, max_value=2), data_code=st.sampled_from([354, 250, 451, 503, 554]),
       seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_data_is_a_message_only_if_the_client_read_354(strays: int, data_code: int, seed: int) -> None:
    """A lock-step client after an EHLO reply with ``strays`` stray replies: its DATA reads the
    reply ``strays`` behind. Only when that reply is 354 do its next lines form a message;
    otherwise they are commands (QUIT), however the bytes are cut."""
    rnd = random.Random(seed)
    replies = [b"250 mail ok\r\n", b"250 rcpt ok\r\n", b"%d data\r\n" % data_code]
    ehlo = b"250 mx\r\n" + b"".join(b"250 stray %d\r\n" % k for k in range(strays))
    flights = [(S, b"220 mx ESMTP\r\n"), (C, b"EHLO c\r\n"), (S, ehlo), (C, b"MAIL FROM:<a@b>\r\n"),
               (S, replies[0]), (C, b"RCPT TO:<c@d>\r\n"), (S, replies[1]), (C, b"DATA\r\n"), (S, replies[2])]
    # What the client read as DATA's answer decides what it sends next.
    read = replies[2 - strays]
    client_got_354 = read.startswith(b"354")
    flights.append((C, b"Subject: x\r\n\r\nhi\r\n.\r\n" if client_got_354 else b"QUIT\r\n"))
    s = SmtpSession()
    evs = []
    for side, data in flights:
        for seg in _split(data, rnd):
            evs += s.receive(side, seg)
    evs += s.receive_eof(C) + s.receive_eof(S)
    data_reply = next(e for e in evs if isinstance(e, Reply) and e.answers is not None
                      and e.answers.verb == "DATA")
    assert data_reply.lines[0].raw == read
    bodies = [e for e in evs if type(e).__name__ == "MessageBody"]
    cmds = [e.verb for e in evs if isinstance(e, Command)]
    if client_got_354:
        assert len(bodies) == 1 and cmds == ["EHLO", "MAIL", "RCPT", "DATA"]
    else:
        assert bodies == [] and cmds == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]


def test_a_221_or_354_answers_its_own_command_past_unanswered_ones() -> None:
    """A client that gave up waiting for the answer to EHLO or STARTTLS sends QUIT: the server's
    221 answers the QUIT (221 answers nothing else, RFC 5321 4.3.2), for the client and the server
    alike; the command before it got no reply. A server that answers only DATA of a pipelined
    MAIL, RCPT, DATA does the same with its 354. A 250 still answers the oldest command."""
    for waited, code in ((b"EHLO c\r\n", b"221 bye\r\n"), (b"STARTTLS\r\n", b"221 bye\r\n"),
                         (b"EHLO c\r\n", b"250 mx\r\n")):
        s = SmtpSession()
        evs = []
        flights = [(S, b"220 mx ESMTP\r\n")]
        if waited != b"EHLO c\r\n":
            flights += [(C, b"EHLO c\r\n"), (S, b"250-mx\r\n250 STARTTLS\r\n")]
        flights += [(C, waited), (C, b"QUIT\r\n"), (S, code)]
        for k, (side, data) in enumerate(flights):
            # (QUIT two seconds after the command it stopped waiting for)
            evs += s.receive(side, data, ts_ns=k * 2_000_000_000)
        evs += s.receive_eof(S) + s.receive_eof(C)
        last = [e for e in evs if isinstance(e, Reply)][-1]
        want = "QUIT" if code.startswith(b"221") else waited.split()[0].decode()
        assert (last.answers.verb, last.server_answers.verb) == (want, want), (waited, code)
    s = SmtpSession()
    evs = []
    for side, data in [(S, b"220 mx ESMTP\r\n"), (C, b"EHLO c\r\n"), (S, b"250-mx\r\n250 PIPELINING\r\n"),
                       (C, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"), (S, b"354 go\r\n"),
                       (C, b"Subject: x\r\n\r\nhi\r\n.\r\n"), (S, b"250 queued\r\n")]:
        evs += s.receive(side, data)
    evs += s.receive_eof(S) + s.receive_eof(C)
    pairs = [(r.code, r.answers.verb if r.answers else None) for r in evs if isinstance(r, Reply) and not r.greeting]
    assert pairs == [(250, "EHLO"), (354, "DATA"), (250, "*EOM")]
    assert any(type(e).__name__ == "MessageBody" for e in evs)
