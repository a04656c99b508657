"""A reply the server began before the client's next visible command, after client bytes were
lost, answers a command lost in the hole, never that command (captures/scenarios_pr.py and
captures/scenarios_lostpairing.py, and the session directly for every split of the reply).
Their verdicts are checked against expected.json by tests/test_captures_expected.py.

The server answers only what it has read, and the session sees both sides in causal order, so
a reply whose first bytes came before the command cannot answer it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
from pcapsmtp.model import Side
from pcapsmtp.smtp.events import (
    EOM_VERB, Anomaly, AnomalyCode, Command, MessageBody, Reply,
)
from pcapsmtp.smtp.session import SmtpSession

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"
LOST = "pairing: the server began it before the client's next command, after bytes of the " \
       "client were lost: it answers a command lost there; no command of the client in the " \
       "capture read it"

#: per capture: (first line of each reply after the greeting, the command the client paired
#: it with; None: it answers a command lost in the hole)
PAIRINGS: dict[str, list[tuple[str, str | None]]] = {
    "pr-lost-ehlo-then-mail.pcap": [
        ("250-mx.example.com", None), ("250 2.1.0 Ok", "MAIL FROM:<alice@example.org>"),
        ("250 2.1.5 Ok", "RCPT TO:<bob@example.com>"), ("354 End data with <CR><LF>.<CR><LF>", "DATA"),
        ("250 2.0.0 Ok: queued as 4Xy1", None), ("221 2.0.0 Bye", "QUIT")],
    "pr-lost-rcpt-whole-reply.pcap": [
        ("250-mx.example.com", "EHLO client.example.org"), ("250 2.1.0 Ok", "MAIL FROM:<alice@example.org>"),
        ("250 2.1.5 Ok", None), ("354 End data with <CR><LF>.<CR><LF>", "DATA"),
        ("250 2.0.0 Ok: queued as 4Xy1", None), ("221 2.0.0 Bye", "QUIT")],
    "pr-lost-mail-reply-split.pcap": [
        ("250-mx.example.com", "EHLO client.example.org"), ("250 2.1.0 Ok", None),
        ("250 2.1.5 Ok", "RCPT TO:<bob@example.com>"), ("354 End data with <CR><LF>.<CR><LF>", "DATA"),
        ("250 2.0.0 Ok: queued as 4Xy1", None), ("221 2.0.0 Bye", "QUIT")],
    "lost-ehlo-starttls-tls.pcap": [("250-mx.example.com", None),
                                    ("220 2.0.0 Ready to start TLS", "STARTTLS")],
    "lost-ehlo-starttls-alert.pcap": [("250-mx.example.com", None),
                                      ("220 2.0.0 Ready to start TLS", "STARTTLS")],
}
PAIRINGS["pr-lost-rcpt-reply-split.pcap"] = PAIRINGS["pr-lost-rcpt-whole-reply.pcap"]


def _analyze(name: str) -> dict[str, Any]:
    convs = analyze_file(str(CAPTURES / name), AnalysisConfig(keep_exchange=True)).conversations
    assert len(convs) == 1
    return convs[0]


@pytest.mark.parametrize("name", sorted(PAIRINGS))
def test_each_reply_is_paired_with_the_command_the_client_read_it_for(name: str) -> None:
    """(the end of data is no line of explain: the reply to it is listed with None)"""
    lines = _analyze(name)["_exchange"]
    text_of = {ln.event: ln.text for ln in lines if ln.side == "C" and ln.event is not None}
    got, seen = [], set()
    for ln in lines:
        if ln.reply and ln.event not in seen and ln.side == "S":
            seen.add(ln.event)
            got.append((ln.text, text_of.get(ln.answers) if ln.answers is not None else None))
    assert got[1:] == PAIRINGS[name]          # (the first is the greeting)
    lost = [ln.text for ln in lines if LOST in ln.marks]
    assert lost == [text for text, cmd in PAIRINGS[name] if cmd is None and "queued" not in text]


@pytest.mark.parametrize("name", sorted(PAIRINGS))
def test_the_reply_answering_the_lost_command_is_listed_before_the_next_command(name: str) -> None:
    """explain lists it where it was sent, never as an answer to the command after it."""
    lines = _analyze(name)["_exchange"]
    first_lost = next(k for k, ln in enumerate(lines) if LOST in ln.marks)
    after_hole = next(k for k, ln in enumerate(lines) if k > first_lost and ln.side == "C")
    assert all(ln.side != "C" for ln in lines[first_lost:after_hole])
    hole = next(k for k, ln in enumerate(lines) if ln.side == "!" and "from the client" in ln.text)
    assert hole < first_lost


@pytest.mark.parametrize("name", ["pr-lost-rcpt-whole-reply.pcap", "pr-lost-rcpt-reply-split.pcap",
                                  "pr-lost-mail-reply-split.pcap", "pr-lost-ehlo-then-mail.pcap"])
def test_a_message_after_the_lost_command_is_content_not_commands(name: str) -> None:
    """DATA got its 354 (not the 250 to the lost command): the body is message content, and
    the message was delivered (the client read the 250 after its end of data)."""
    conv = _analyze(name)
    texts = [ln.text for ln in conv["_exchange"] if ln.side == "C"]
    assert "[message content: 27 octets, not shown]" in texts, texts
    assert not any(t.startswith(("Subject:", "hello")) for t in texts), texts
    assert conv["delivered"] is True


# ---- the session alone: every split of the reply around the client's next command ----------

BANNER = b"220 mx.example.com ESMTP\r\n"
EHLO_REPLY = b"250-mx.example.com\r\n250 PIPELINING\r\n"
RCPT_OK = b"250 2.1.5 Ok\r\n"


def _session(split: int, *, hole: bool) -> list[Any]:
    """EHLO, MAIL answered; then (``hole``) the client's RCPT lost; the server's 250 to it, of
    which ``split`` bytes come before the client's DATA; then the 354 and a message."""
    s = SmtpSession()
    evs: list[Any] = []
    evs += s.receive(Side.SERVER, BANNER)
    evs += s.receive(Side.CLIENT, b"EHLO c.example.org\r\n")
    evs += s.receive(Side.SERVER, EHLO_REPLY)
    evs += s.receive(Side.CLIENT, b"MAIL FROM:<a@example.org>\r\n")
    evs += s.receive(Side.SERVER, b"250 2.1.0 Ok\r\n")
    if hole:
        evs += s.receive_gap(Side.CLIENT, len(b"RCPT TO:<b@example.com>\r\n"))
    evs += s.receive(Side.SERVER, RCPT_OK[:split])
    evs += s.receive(Side.CLIENT, b"DATA\r\n")
    evs += s.receive(Side.SERVER, RCPT_OK[split:])
    evs += s.receive(Side.SERVER, b"354 go ahead\r\n")
    evs += s.receive(Side.CLIENT, b"Subject: x\r\n\r\nhi\r\n.\r\n")
    evs += s.receive(Side.SERVER, b"250 queued\r\n")
    return evs


@pytest.mark.parametrize("split", range(1, len(RCPT_OK) + 1))
def test_a_reply_begun_before_the_next_command_after_a_client_hole_answers_the_lost_one(
        split: int) -> None:
    evs = _session(split, hole=True)
    data = next(e for e in evs if isinstance(e, Command) and e.verb == "DATA")
    ok = next(e for e in evs if isinstance(e, Reply) and e.lines[0].raw == RCPT_OK)
    assert (ok.answers, ok.server_answers, ok.stray, ok.lost_command) == (None, None, False, True)
    assert [a.code for a in evs if isinstance(a, Anomaly)] == [AnomalyCode.REPLY_WITHOUT_COMMAND]
    go = next(e for e in evs if isinstance(e, Reply) and e.code == 354)
    assert go.answers is data and go.server_answers is data and not go.lost_command
    body = [e for e in evs if isinstance(e, MessageBody)]
    assert len(body) == 1 and body[0].complete
    assert [e.verb for e in evs if isinstance(e, Command)] == ["EHLO", "MAIL", "DATA"]
    queued = next(e for e in evs if isinstance(e, Reply) and e.lines[0].raw == b"250 queued\r\n")
    assert queued.answers is not None and queued.answers.verb == EOM_VERB


@pytest.mark.parametrize("split", range(1, len(RCPT_OK)))
def test_without_a_client_hole_the_client_reads_it_as_its_next_commands_answer(split: int) -> None:
    """No bytes of the client lost: a reply sent with no command awaiting waits in the client's
    buffer and the client reads it as the answer to its next command (the one-behind model)."""
    evs = _session(split, hole=False)
    data = next(e for e in evs if isinstance(e, Command) and e.verb == "DATA")
    ok = next(e for e in evs if isinstance(e, Reply) and e.lines[0].raw == RCPT_OK)
    assert ok.answers is data and not ok.lost_command


def test_a_reply_begun_after_the_next_command_still_answers_it() -> None:
    """The reply's first byte after the command: the server may have read the command; the
    client pairs it with it (which command it answers is then the hole's guess, as before)."""
    evs = _session(0, hole=True)
    data = next(e for e in evs if isinstance(e, Command) and e.verb == "DATA")
    ok = next(e for e in evs if isinstance(e, Reply) and e.lines[0].raw == RCPT_OK)
    assert ok.answers is data and not ok.lost_command


@pytest.mark.parametrize("name", ["lost-ehlo-starttls-tls.pcap", "lost-ehlo-starttls-alert.pcap"])
def test_starttls_after_the_hole_gets_the_220_and_tls_follows_it(name: str) -> None:
    """The rest of the EHLO reply answers the lost EHLO, so STARTTLS reads the 220 and both
    sides' next bytes are TLS by the ordinary path (no TLS found again after a hole)."""
    conv = _analyze(name)
    rows = [(ln.frame, ln.side, ln.text) for ln in conv["_exchange"]]
    assert not any(t.startswith("[TLS from here: ") for _f, _s, t in rows), rows
    assert conv["starttls"]["reply_code"] == 220 and conv["starttls"]["frame"] == 9
    starttls = rows.index((9, "C", "STARTTLS"))
    assert rows[starttls + 1] == (11, "S", "220 2.0.0 Ready to start TLS")
    assert rows[starttls + 2][1:] == ("C", "[TLS ClientHello: versions TLS 1.2, SNI mx.example.com]")
    ready = next(ln for ln in conv["_exchange"] if ln.text == "220 2.0.0 Ready to start TLS")
    assert not [m for m in ready.marks if m.startswith("pairing: ")]



def test_tls_after_a_guessed_starttls_pairing_is_still_tls() -> None:
    """The guard the pairing above no longer needs for the captures, still there for what no
    timing settles: the client's EHLO is lost and its STARTTLS comes before the server began the
    EHLO reply (a client that did not wait), so STARTTLS reads the 250 and the 220 is left over.
    Which reply the client read is a guess; its TLS records, and the server's, are TLS from
    where a line would begin (``TlsInProgress(after_hole=True)``), never commands or replies."""
    from builders import client_hello, server_hello

    from pcapsmtp.smtp.events import TlsInProgress

    s = SmtpSession()
    evs: list[Any] = s.receive(Side.SERVER, BANNER)
    evs += s.receive_gap(Side.CLIENT, len(b"EHLO c.example.org\r\n"))
    evs += s.receive(Side.CLIENT, b"STARTTLS\r\n")
    evs += s.receive(Side.SERVER, EHLO_REPLY)
    evs += s.receive(Side.SERVER, b"220 2.0.0 Ready to start TLS\r\n")
    evs += s.receive(Side.CLIENT, client_hello())
    evs += s.receive(Side.SERVER, server_hello())
    evs += s.receive_eof(Side.CLIENT) + s.receive_eof(Side.SERVER)
    starttls = next(e for e in evs if isinstance(e, Command))
    replies = [e for e in evs if isinstance(e, Reply)]
    # (the 220 waits for a command of the client to read it; none comes: unpaired at the end)
    assert [(r.code, r.answers is starttls, r.lost_command) for r in replies] == [
        (220, False, False), (250, True, False), (220, False, False)]
    assert [e.verb for e in evs if isinstance(e, Command)] == ["STARTTLS"]
    assert sorted((e.side.value, e.after_hole) for e in evs if isinstance(e, TlsInProgress)) == [
        ("client", True), ("server", True)]
