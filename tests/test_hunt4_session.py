"""The session's pairing of a one-line 250 after a HELO that followed an unanswered EHLO by a
second or more (captures/scenarios_hunt4.py has the captures): it answers the HELO (the client
gave up on the EHLO, PHPMailer's fallback) unless a second reply follows it before anything
else, when a slow server answered the EHLO late and then the HELO, in order."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pcapsmtp.model import Side  # noqa: E402
from pcapsmtp.smtp.events import Anomaly, Reply  # noqa: E402
from pcapsmtp.smtp.session import SmtpSession  # noqa: E402

C, S = Side.CLIENT, Side.SERVER
T0 = 1_767_261_600_000_000_000
SEC = 1_000_000_000
OPENING = [(S, b"220 mx.example.com ESMTP\r\n", 0), (C, b"EHLO client.example.org\r\n", SEC // 100),
           (C, b"HELO client.example.org\r\n", 6 * SEC), (S, b"250 mx.example.com\r\n", 6 * SEC + SEC // 2)]


def _run(steps: list[tuple[Side, bytes, int]], eof: Side | None = None) -> list[object]:
    session = SmtpSession()
    out: list[object] = []
    for side, data, ts in steps:
        out += session.receive(side, data, T0 + ts)
    if eof is not None:
        out += session.receive_eof(eof, ts_ns=T0 + 20 * SEC)
    return out


def _pairs(events: list[object]) -> list[tuple[int | None, str | None, str | None, int]]:
    """Each reply after the greeting: its code, the command the client read it for, the one the
    server meant, and its capture time (seconds after the start)."""
    return [(ev.code, ev.answers.verb if ev.answers else None,
             ev.server_answers.verb if ev.server_answers else None, (ev.ts_ns - T0) // (SEC // 10))
            for ev in events if isinstance(ev, Reply) and not ev.greeting]


@pytest.mark.parametrize("second", [b"250 mx.example.com\r\n", b"503 5.5.1 Error: duplicate HELO\r\n"])
def test_a_second_reply_pairs_both_in_order(second: bytes) -> None:
    events = _run(OPENING + [(S, second, 6 * SEC + SEC // 2 + SEC // 10),
                             (C, b"QUIT\r\n", 7 * SEC), (S, b"221 bye\r\n", 7 * SEC + SEC // 10)])
    code = int(second[:3])
    assert _pairs(events) == [(250, "EHLO", "EHLO", 65), (code, "HELO", "HELO", 66), (221, "QUIT", "QUIT", 71)]
    assert not [ev for ev in events if isinstance(ev, Anomaly)]


@pytest.mark.parametrize("then, eof", [
    ([(C, b"MAIL FROM:<a@example.org>\r\n", 7 * SEC)], None),   # the client's next command
    ([], C),                                                     # the client's close
    ([], S),                                                     # the server's close
])
def test_without_a_second_reply_the_250_answers_the_helo(then: list[tuple[Side, bytes, int]],
                                                          eof: Side | None) -> None:
    events = _run(OPENING + then, eof)
    assert _pairs(events) == [(250, "HELO", "HELO", 65)]


def test_the_held_reply_keeps_its_bytes() -> None:
    """While it waits, the reply's bytes stay below the server's low-water mark (the analyzer
    keeps the frames of what an event may still name)."""
    session = SmtpSession()
    for side, data, ts in OPENING:
        session.receive(side, data, T0 + ts)
    assert session.low_water(S) == len(b"220 mx.example.com ESMTP\r\n")
