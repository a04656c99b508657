"""The session's reading of two client behaviours the seventeenth session's hunt pinned
(captures/scenarios_hunt3.py has them as captures): TLS started after a 2xx answer to STARTTLS
that is not 220, and a HELO sent after the client gave up waiting for the EHLO reply."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from builders import client_hello  # noqa: E402
from pcapsmtp.model import Side  # noqa: E402
from pcapsmtp.smtp.events import Command, Reply  # noqa: E402
from pcapsmtp.smtp.session import SmtpSession  # noqa: E402
from pcapsmtp.smtp.tls import TlsClientHello  # noqa: E402

C, S = Side.CLIENT, Side.SERVER
T0 = 1_767_261_600_000_000_000
SEC = 1_000_000_000


def _run(steps: list[tuple[Side, bytes, int]]) -> list[object]:
    session = SmtpSession()
    out: list[object] = []
    for side, data, ts in steps:
        out += session.receive(side, data, T0 + ts)
    return out


def _pairs(events: list[object]) -> list[tuple[int | None, str | None, str | None]]:
    """Each reply after the greeting: its code, the command the client read it for, and the one
    the server meant."""
    return [(ev.code, ev.answers.verb if ev.answers else None,
             ev.server_answers.verb if ev.server_answers else None)
            for ev in events if isinstance(ev, Reply) and not ev.greeting]


OPENING = [(S, b"220 mx.example.com ESMTP\r\n", 0), (C, b"EHLO client.example.org\r\n", SEC // 100)]
OFFER = [(S, b"250-mx.example.com\r\n250 STARTTLS\r\n", SEC // 50), (C, b"STARTTLS\r\n", SEC // 25)]


@pytest.mark.parametrize("code", [250, 200, 220])
def test_a_clienthello_after_a_2xx_answer_to_starttls_is_tls(code: int) -> None:
    events = _run(OPENING + OFFER + [(S, f"{code} go ahead\r\n".encode(), SEC // 20),
                                     (C, client_hello(), SEC // 10)])
    hello = [ev for ev in events if isinstance(ev, TlsClientHello)]
    assert len(hello) == 1 and hello[0].side is C
    assert not [ev for ev in events if isinstance(ev, Command) and ev.verb not in ("EHLO", "STARTTLS")]


@pytest.mark.parametrize("code", [250, 454])
def test_a_command_after_a_non_220_answer_to_starttls_is_a_command(code: int) -> None:
    events = _run(OPENING + OFFER + [(S, f"{code} whatever\r\n".encode(), SEC // 20),
                                     (C, b"QUIT\r\n", SEC // 10), (S, b"221 bye\r\n", SEC // 8)])
    assert _pairs(events)[-2:] == [(code, "STARTTLS", "STARTTLS"), (221, "QUIT", "QUIT")]
    assert not [ev for ev in events if isinstance(ev, TlsClientHello)]


def test_a_clienthello_after_a_4xx_answer_is_no_tls() -> None:
    events = _run(OPENING + OFFER + [(S, b"454 TLS not available\r\n", SEC // 20),
                                     (C, client_hello(), SEC // 10)])
    assert not [ev for ev in events if isinstance(ev, TlsClientHello)]


@pytest.mark.parametrize("wait, reply, pairs", [
    # the client gave up on the EHLO: the one-line 250 answers its HELO, the EHLO none
    (SEC, b"250 mx.example.com\r\n", [(250, "HELO", "HELO")]),
    # sooner than a second: no giving up shown, the reply answers the EHLO (the HELO waits)
    (SEC // 2, b"250 mx.example.com\r\n", [(250, "EHLO", "EHLO")]),
    # a reply of several lines is a late EHLO reply, in the order it came
    (SEC, b"250-mx.example.com\r\n250 STARTTLS\r\n", [(250, "EHLO", "EHLO")]),
])
def test_helo_after_an_unanswered_ehlo(wait: int, reply: bytes, pairs: list[tuple[int, str, str]]) -> None:
    # (the client's next command shows no second reply came: a one-line 250 waits for the next
    # step, test_hunt4_session.py)
    events = _run(OPENING + [(C, b"HELO client.example.org\r\n", SEC // 100 + wait),
                             (S, reply, SEC // 100 + wait + SEC // 100),
                             (C, b"MAIL FROM:<a@example.org>\r\n", SEC // 100 + wait + SEC // 50)])
    assert _pairs(events) == pairs
