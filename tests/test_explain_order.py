"""``explain`` lists the dialogue in the order it happened: a reply a hole closed late stands
where the server sent it, after the command it answers and before the client's next command
(captures/scenarios_explain.py), a hole in the middle of a reply between its lines, and a reply
the client read late (the rest of a reply that ended early) where the client read it.

The session concludes a reply that lost its end in a hole only when the server's next line
shows it over, after the client's next command was read; ``explain`` used to list it there.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

import cuts
from pcapsmtp.analysis.exchange import ExchangeLine, in_dialogue_order
from pcapsmtp.commands.main import main
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_path
from tsharkfilter import frames_matching

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"
EXPECTED: dict[str, Any] = json.loads((CAPTURES / "expected.json").read_text())

_ROW = re.compile(r"^  +(\d*)  (C:|S:|  ) (.*?)(?:   <--- .*)?$")


def _explain(path: Path) -> str:
    out, err = io.StringIO(), io.StringIO()
    rc = main(["explain", str(path)], out=out, err=err)
    assert rc in (0, 1), err.getvalue()
    return out.getvalue()


def _rows(text: str) -> list[tuple[int | None, str, str]]:
    """The dialogue rows of one conversation's listing: (frame, "C"/"S"/"!", text)."""
    rows = []
    for line in text.split("\n\n", 1)[0].splitlines()[1:]:
        m = _ROW.match(line)
        if m is None or m.group(3).startswith("<---"):
            continue        # a mark's continuation line
        frame, side, what = m.groups()
        rows.append((int(frame) if frame else None, side[0] if side.strip() else "!", what))
    return rows


def _frames(name: str) -> dict[str, Any]:
    return EXPECTED[name]["conversations"][0]["frames"]


def test_reply_closed_late_by_a_hole_is_listed_before_the_next_command() -> None:
    name = "hole-closes-reply-mail.pcap"
    fr = _frames(name)
    (gap,) = EXPECTED[name]["conversations"][0]["findings"]
    (ehlo_reply,) = fr["ehlo_reply"]
    assert _rows(_explain(CAPTURES / name))[:8] == [
        (fr["banner"], "S", "220 mx.example.com ESMTP Postfix"),
        (fr["greeting"], "C", "EHLO client.example.org"),
        (ehlo_reply, "S", "250-mx.example.com"),
        (ehlo_reply, "S", "250-PIPELINING"),
        (ehlo_reply, "S", "250-SIZE 10240000"),
        (gap["frame"], "!", "[28 bytes from the server missing in the capture]"),
        (gap["frame"], "C", "MAIL FROM:<alice@example.org>"),
        (gap["frame"] + 2, "S", "250 2.1.0 Ok"),
    ]
    # the frames are the packets tshark shows carrying those lines
    assert frames_matching(CAPTURES / name, 'smtp.req.command == "MAIL"') == [gap["frame"]]
    assert frames_matching(CAPTURES / name, 'smtp.rsp.parameter == "PIPELINING"') == [ehlo_reply]
    assert frames_matching(CAPTURES / name, 'smtp.rsp.parameter == "2.1.0 Ok"') == [gap["frame"] + 2]


def test_reply_closed_late_by_a_hole_is_listed_before_starttls() -> None:
    name = "hole-closes-reply-starttls.pcap"
    fr = _frames(name)
    (ehlo_reply,) = fr["ehlo_reply"]
    rows = _explain(CAPTURES / name)
    assert _rows(rows)[:8] == [
        (fr["banner"], "S", "220 mx.example.com ESMTP Postfix"),
        (fr["greeting"], "C", "EHLO client.example.org"),
        (ehlo_reply, "S", "250-mx.example.com"),
        (ehlo_reply, "S", "250-PIPELINING"),
        (ehlo_reply, "S", "250-SIZE 10240000"),
        (fr["starttls"], "!", "[28 bytes from the server missing in the capture]"),
        (fr["starttls"], "C", "STARTTLS"),
        (fr["starttls_reply"], "S", "220 2.0.0 Ready to start TLS"),
    ]
    assert frames_matching(CAPTURES / name, 'smtp.req.command == "STAR"') == [fr["starttls"]]


def test_hole_in_the_middle_of_a_reply_is_listed_between_its_lines() -> None:
    name = "gap-in-ehlo-reply.pcap"
    (gap,) = EXPECTED[name]["conversations"][0]["findings"]
    head, tail = EXPECTED[name]["conversations"][0]["frames"]["ehlo_reply"]
    assert _rows(_explain(CAPTURES / name))[1:9] == [
        (_frames(name)["greeting"], "C", "EHLO client.example.org"),
        (head, "S", "250-mx.example.com"),
        (head, "S", "250-PIPELINING"),
        (gap["frame"], "!", "[33 bytes from the server missing in the capture]"),
        (tail, "S", "250-ENHANCEDSTATUSCODES"),
        (tail, "S", "250-8BITMIME"),
        (tail, "S", "250 SMTPUTF8"),
        (tail + 2, "C", "MAIL FROM:<alice@example.org>"),
    ]


def test_a_reply_the_client_read_late_stays_after_the_command_that_read_it() -> None:
    """The rest of an EHLO reply that ended early is read by the client with MAIL: listed after
    MAIL although the server sent it before (the pairing note says so)."""
    rows = _rows(_explain(CAPTURES / "pairing-postfix-pipelining.pcap"))
    texts = [t for _, _, t in rows]
    i_mail, i_stray = texts.index("MAIL FROM:<alice@example.org>"), texts.index("250-STARTTLS")
    assert i_stray == i_mail + 1 and rows[i_stray][0] < rows[i_mail][0]


# --- any one segment lost: the session's order, each reply moved back as far as it may go -----

#: every generated capture with a conversation (those whose connections carry no payload, only
#: counted as attempts, have no exchange)
NAMES = sorted(n for n, e in EXPECTED.items() if e["conversations"])


def _stops(x: ExchangeLine, reply: ExchangeLine) -> bool:
    """May ``reply`` stand after ``x``: x is the command the client paired it with, or comes
    before the reply in the server's stream, or (off that stream) in the capture?"""
    if reply.answers is not None and x.event == reply.answers:
        return True
    if x.stream == "server":
        return x.pos is None or reply.pos is None or x.pos <= reply.pos
    return x.frame is None or reply.frame is None or x.file != reply.file or x.frame <= reply.frame


def _check(lines: list[ExchangeLine], what: str) -> None:
    listed = in_dialogue_order(lines)
    where = {id(ln): k for k, ln in enumerate(listed)}
    assert sorted(where.values()) == list(range(len(lines))), what       # every line, once
    assert [ln for ln in listed if not ln.reply] == [ln for ln in lines if not ln.reply], what
    first: dict[int | None, int] = {}
    last: dict[int | None, int] = {}
    for k, ln in enumerate(listed):
        if ln.reply and ln.event in last:
            # a reply's lines in order; between two of them only lines passed by the reply,
            # among them a hole of the server's stream between the two (a hole in its middle)
            between = listed[last[ln.event] + 1:k]
            before = listed[last[ln.event]]
            assert before.pos is not None and ln.pos is not None and before.pos < ln.pos, what
            assert not between or (not any(x.reply for x in between) and any(
                x.stream == "server" and x.pos is not None and before.pos < x.pos < ln.pos
                for x in between)), (what, ln.text, [x.text for x in between])
        first.setdefault(ln.event, k)
        last[ln.event] = k
    for k, ln in enumerate(listed):
        if not ln.reply or first[ln.event] != k:
            continue
        if ln.answers is not None and ln.answers in first:   # after the command it was paired with
            assert first[ln.answers] < k, (what, ln.text)
        if k:
            # as far back as it may go: what stands before it stops it (a reply concluded
            # late went back past the hole and the client's next command)
            assert _stops(listed[k - 1], ln), (what, ln.text, listed[k - 1].text)


#: a capture with more data frames than ``EXHAUSTIVE``, or whose data frames times its payload
#: bytes pass ``BUDGET``, is cut at a sample of them (the same every run) that holds every kind
#: of position (``cuts.sample_positions``: each kind's first and last frame, then others up to
#: ``SAMPLE``): the captures past the per-conversation event bound (limit-*.pcap, thousands of
#: frames, or a hundred segments of a hundred pipelined commands each) would make the cut of
#: every frame quadratic (each cut is a whole analysis of them). The budget leaves every other
#: capture exhaustive (the largest, seed-vxlan-fragments.pcap: 28 data frames, 9 kB)
EXHAUSTIVE = 500
BUDGET = 2 << 20
SAMPLE = 30


def _cut_frames(cap: cuts.Loaded, name: str) -> list[int]:
    frames = cap.data_frames()
    size = sum(len(s.payload) for s in cap.segments)
    if len(frames) <= EXHAUSTIVE and len(frames) * size <= BUDGET:
        return frames
    return cuts.sample_positions(cap, frames, SAMPLE, name)


@pytest.mark.parametrize("name", NAMES)
def test_every_lost_segment_gives_an_order_by_stream_and_pairing(name: str) -> None:
    cap = cuts.load(CAPTURES / name)
    cfg = AnalysisConfig(keep_exchange=True)
    _check(analyze_path(str(CAPTURES / name), cfg)[0]["_exchange"], name)
    for frame in _cut_frames(cap, name):
        for conv in cuts.analyze(cuts.without(cap, frame), name, cfg):
            _check(conv["_exchange"], f"{name} without frame {frame}")


@pytest.mark.parametrize("path", cuts.capture_paths(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_shipped_capture_gives_an_order_by_stream_and_pairing(path: Path) -> None:
    cap = cuts.load(path)
    for conv in cuts.analyze(cap.segments, cap.name, AnalysisConfig(keep_exchange=True)):
        _check(conv["_exchange"], f"{cap.name} stream {conv['stream']}")


def test_the_html_ladder_lists_the_dialogue_order_too() -> None:
    """The report's ladder reads the same exchange as explain: the EHLO reply a hole closed
    late (frame 8) comes before the hole and before the client's MAIL FROM (frame 10)."""
    from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
    from pcapsmtp.render.html.data import conversation_data

    path = REPO / "captures" / "hole-closes-reply-mail.pcap"
    conv = analyze_file(str(path), AnalysisConfig(keep_exchange=True)).conversations[0]
    ladder = [(row[0], row[1], row[2]) for row in conversation_data(conv, 0, 0, 0)["L"]]
    reply = [i for i, (frame, side, _t) in enumerate(ladder) if frame == 8 and side == "S"]
    mail = next(i for i, (_f, side, text) in enumerate(ladder)
                if side == "C" and text.startswith("MAIL FROM"))
    hole = next(i for i, (_f, _s, text) in enumerate(ladder) if "missing in the capture" in text)
    assert len(reply) == 3 and max(reply) < hole < mail, ladder


@pytest.mark.parametrize("name", ["lost-ehlo-starttls-tls.pcap", "lost-ehlo-starttls-alert.pcap"])
def test_tls_after_a_hole_is_never_read_as_lines(name: str) -> None:
    """STARTTLS after a hole that took the EHLO and the end of its reply: the rest of the EHLO
    reply began before STARTTLS, so it answers the lost EHLO (listed before STARTTLS); the 220
    answers STARTTLS and the TLS records of both sides are TLS, never command or reply lines."""
    from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file

    conv = analyze_file(str(REPO / "captures" / name),
                        AnalysisConfig(keep_exchange=True)).conversations[0]
    rows = [(ln.frame, ln.side, ln.text) for ln in conv["_exchange"]]
    starttls = next(i for i, (_f, s, t) in enumerate(rows) if s == "C" and t == "STARTTLS")
    before = [t for _f, s, t in rows[:starttls] if s == "S"]
    assert before[-3:] == ["250-mx.example.com", "250-PIPELINING", "250-SIZE 10240000"], rows
    after = [t for _f, s, t in rows[starttls + 1:] if s in ("C", "S")]
    assert after[0] == "220 2.0.0 Ready to start TLS", rows
    assert after[1].startswith("[TLS ClientHello: ") and all(t.startswith("[") for t in after[1:]), rows
    assert conv["starttls"]["reply_code"] == 220
    assert conv["starttls"]["frame"] == 9
