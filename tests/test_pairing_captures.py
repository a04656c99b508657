"""Issue 13, items 1 and 3, on the generated captures of captures/scenarios_pairing.py and
captures/scenarios_firewall.py: the verdict (outcome, caused_by, reason, frames) as
expected.json says, what the client received decides (``delivered``, commands after a refused
DATA, a STARTTLS answered by a stray line), explain shows the client's pairing and marks where
the server's differs, and the frames agree with tshark where tshark sees the same thing.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.analysis.reasons import REASON_CASES
from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"
EXPECTED: dict[str, Any] = json.loads((CAPTURES / "expected.json").read_text())

PAIRING = ["pairing-postfix-pipelining.pcap", "pairing-smtplib.pcap", "pairing-quit-after-data-5xx.pcap",
           "pairing-go-starttls-stray.pcap", "pairing-postfix-starttls-stray.pcap", "pairing-double-greeting.pcap"]
FIREWALL = ["firewall-masked-banner-helo.pcap", "firewall-command-masked.pcap",
            "firewall-command-masked-quit.pcap"]


def _conv(name: str) -> dict[str, Any]:
    convs = analyze_path(str(CAPTURES / name))
    assert len(convs) == 1
    return convs[0]


def _explain(name: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "pcapsmtp", "explain", str(CAPTURES / name)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout


def _tshark_frames(name: str, display_filter: str) -> list[int]:
    return frames_matching(CAPTURES / name, display_filter)


def _finding(conv: dict[str, Any], code: str) -> int:
    frames = [f["frame"] for f in conv["findings"] if f["code"] == code]
    assert len(frames) == 1, conv["findings"]
    return frames[0]


@pytest.mark.parametrize("name", PAIRING + FIREWALL)
def test_verdict_and_frames_as_expected(name: str) -> None:
    want = EXPECTED[name]["conversations"][0]
    got = _conv(name)
    assert (got["outcome"], got["caused_by"], got["reason"]) == (want["outcome"], want["caused_by"], want["reason"])
    assert (got["starttls"]["offered"], got["starttls"]["requested"], got["starttls"]["reply_code"]) == (
        want["starttls_offered"], want["starttls_requested"], want["starttls_reply_code"])
    assert sorted((f["code"], f["side"], f["frame"]) for f in got["findings"]) == sorted(
        (f["code"], f["side"], f["frame"]) for f in want["findings"])
    assert (got["greeting"] or {}).get("frame") == want["frames"]["greeting"]
    assert list((got["ehlo_reply"] or {}).get("frames") or []) == want["frames"]["ehlo_reply"]


@pytest.mark.parametrize("name,delivered", [
    ("pairing-postfix-pipelining.pcap", False),   # DATA read RCPT's 250, not 354
    ("pairing-smtplib.pcap", False),
    ("pairing-quit-after-data-5xx.pcap", False),  # DATA answered 554
    ("pairing-go-starttls-stray.pcap", False),
    ("pairing-postfix-starttls-stray.pcap", False),
    ("firewall-command-masked.pcap", True),       # 354, then 250 after the end of data
    ("firewall-masked-banner-helo.pcap", True),
    ("ehlo-premature-end.pcap", False),           # the lock-step client's body lines are commands
    ("pairing-double-greeting.pcap", False),
    ("client-did-not-request.pcap", True),
])
def test_delivered_follows_the_client_pairing(name: str, delivered: bool) -> None:
    conv = _conv(name)
    assert conv["mail"] is (name != "pairing-go-starttls-stray.pcap")
    assert conv["delivered"] is delivered


def test_stray_line_frame_is_where_tshark_sees_the_stray_reply() -> None:
    """tshark dissects the second EHLO segment as a reply of its own: the frame of
    reply-out-of-step; the first segment (ending in `250 SIZE`) carries ehlo-premature-end."""
    name = "pairing-postfix-pipelining.pcap"
    conv = _conv(name)
    stray = _tshark_frames(name, 'smtp.rsp.parameter == "STARTTLS"')
    assert stray == [_finding(conv, "reply-out-of-step")]
    first = _tshark_frames(name, 'smtp.rsp.parameter == "PIPELINING"')
    assert first == [_finding(conv, "ehlo-premature-end")] == [conv["ehlo_reply"]["frames"][0]]
    assert conv["ehlo_reply"]["frames"] == first + stray


def test_explain_shows_each_reply_after_the_command_the_client_paired_it_with() -> None:
    name = "pairing-postfix-pipelining.pcap"
    text = _explain(name)
    mail_frame = _tshark_frames(name, 'smtp.req.command == "MAIL"')[0]
    stray_frame = _tshark_frames(name, 'smtp.rsp.parameter == "STARTTLS"')[0]
    go_frame = _tshark_frames(name, "smtp.response.code == 354")[0]
    quit_frame = _tshark_frames(name, 'frame contains "QUIT"')[0]
    rows = [ln for ln in text.splitlines() if re.match(r"\s+\d+\s+[CS]:", ln)]
    order = [(int(r.split()[0]), r.split()[1], " ".join(r.split()[2:])) for r in rows]
    texts = [t for _, _, t in order]
    i_mail = next(i for i, t in enumerate(texts) if t.startswith("MAIL FROM"))
    i_stray = next(i for i, t in enumerate(texts) if t.startswith("250-STARTTLS"))
    i_quit = next(i for i, t in enumerate(texts) if t == "QUIT")
    i_354 = next(i for i, t in enumerate(texts) if t.startswith("354"))
    # The client read the stray lines after sending MAIL, the 354 after sending QUIT.
    assert i_mail < i_stray and i_quit < i_354
    assert order[i_mail][0] == mail_frame and order[i_stray][0] == stray_frame
    assert order[i_quit][:2] == (quit_frame, "C:") and order[i_354][0] == go_frame
    # Where the two pairings part, the reply is marked with both.
    assert "pairing: the client reads this as the answer to MAIL; it is the rest of the server's reply to EHLO" \
        in rows[i_stray]
    assert "pairing: the client reads this as the answer to QUIT; it is the server's answer to DATA" in rows[i_354]
    assert "reply-out-of-step" in text
    assert "message content" not in text   # QUIT is a command, not a message


def test_quit_after_refused_data_is_a_command() -> None:
    """tshark (which follows the DATA command, not its answer) shows the QUIT line as message
    data; the client's pairing says DATA was refused 554, so the line is the command QUIT, which
    the server answers 221."""
    name = "pairing-quit-after-data-5xx.pcap"
    text = _explain(name)
    quit_frame = _tshark_frames(name, 'frame contains "QUIT"')[0]
    bye_frame = _tshark_frames(name, "smtp.response.code == 221")[0]
    assert re.search(rf"^\s+{quit_frame}\s+C: QUIT$", text, re.M)
    assert re.search(rf"^\s+{bye_frame}\s+S: 221 2.0.0 Bye$", text, re.M)
    assert "message content" not in text and "pairing:" not in text


def test_starttls_answered_by_a_stray_line_is_the_server_s_doing() -> None:
    for name, outcome in (("pairing-go-starttls-stray.pcap", "aborted"),
                          ("pairing-postfix-starttls-stray.pcap", "plaintext")):
        conv = _conv(name)
        assert (conv["outcome"], conv["caused_by"], conv["reason"]) == (outcome, "server", "starttls-refused")
        stray = _finding(conv, "reply-out-of-step")
        assert conv["evidence_frame"] == stray
        # the server's payload frames: banner, EHLO reply, its stray second segment, the 220
        assert stray == _tshark_frames(name, "tcp.srcport == 25 && tcp.len > 0")[2]
        starttls = _tshark_frames(name, 'tcp.dstport == 25 && tcp.payload == "STARTTLS\\r\\n"')
        assert conv["starttls"]["frame"] == starttls[0]
        assert conv["tls"]["client_hello_frame"] is None
        server_220 = _tshark_frames(name, "smtp.response.code == 220")[1]   # [0] is the banner
        assert conv["detail"].endswith(f"the server's 220 came too late to be read as the answer "
                                       f"(frame {server_220})")
        # what to ask is the stray line's fix, not the TLS setup's
        case = REASON_CASES[("starttls-refused", "stray-answer")]
        assert conv["explanation"] == {"client_does": case.client_does, "ask": case.remedy}


def test_masked_command_frame_agrees_with_tshark() -> None:
    for name in ("firewall-command-masked.pcap", "firewall-command-masked-quit.pcap"):
        conv = _conv(name)
        frame = _tshark_frames(name, 'tcp.payload == "XXXXXXXX\\r\\n"')
        assert frame == [_finding(conv, "starttls-masked")] == [conv["starttls"]["frame"]] \
            == [conv["evidence_frame"]]
        assert conv["starttls"]["reply_code"] == 502
        assert _tshark_frames(name, "smtp.response.code == 502")[0] > frame[0]


def test_helo_after_masked_banner() -> None:
    name = "firewall-masked-banner-helo.pcap"
    conv = _conv(name)
    banner = _tshark_frames(name, "smtp.response.code == 220")[0]
    helo = _tshark_frames(name, 'smtp.req.command == "HELO"')[0]
    assert _finding(conv, "banner-masked") == banner == conv["evidence_frame"]
    assert conv["greeting"] == {"command": "HELO", "argument": "client.example.org", "frame": helo}
    assert conv["ehlo_reply"] is None
    # The prediction comes from the banner: Postfix greets with HELO (downgrade); the others send
    # EHLO whatever the banner, and this conversation has no EHLO reply to judge them by.
    clients = conv["clients"]
    assert clients["downgrade"] == ["postfix"]
    assert clients["see_starttls"] == [] and clients["error"] == []
    assert "exim" in clients["unknown"] and "postfix" not in clients["unknown"]
    text = _explain(name)
    assert "Known clients facing this banner:" in text
    assert re.search(r"postfix\s+downgrades\s+takes the masked banner for a PIX firewall", text)


def test_helo_after_a_plain_banner_stays_the_client_s_choice() -> None:
    conv = _conv("client-used-helo.pcap")
    assert (conv["caused_by"], conv["reason"]) == ("client", "client-used-helo")
    assert "clients" not in conv


def test_second_greeting_is_read_as_the_ehlo_reply() -> None:
    """tshark sees two 220 replies; the second is the reply-out-of-step and, for the client,
    the answer to EHLO; the server's real EHLO reply (with STARTTLS) answers MAIL for it."""
    name = "pairing-double-greeting.pcap"
    conv = _conv(name)
    greetings = _tshark_frames(name, "smtp.response.code == 220")
    assert len(greetings) == 2
    assert _finding(conv, "reply-out-of-step") == greetings[1] == conv["evidence_frame"]
    assert conv["ehlo_reply"] == {"code": 220, "frames": [greetings[1]],
                                  "lines": ["mx.example.com ESMTP Postfix"]}
    assert (conv["starttls"]["offered"], conv["reason"]) == ("misplaced", "starttls-misplaced")
    assert "which the client read as the answer to its next command" in conv["detail"]


@pytest.mark.parametrize("name", ["pairing-smtplib.pcap", "pairing-double-greeting.pcap"])
def test_live_decides_at_the_command_that_reads_a_buffered_reply(name: str) -> None:
    """Live mode settles a plaintext verdict at MAIL. Here MAIL reads a reply that waited in
    the client's buffer (emitted right after it): the verdict still comes at MAIL, not at the
    end of the connection, and it is the offline one."""
    from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
    offline = _conv(name)
    early = analyze_file(str(CAPTURES / name), AnalysisConfig(early=True)).conversations
    assert len(early) == 1
    assert (early[0]["outcome"], early[0]["caused_by"], early[0]["reason"]) == (
        offline["outcome"], offline["caused_by"], offline["reason"])
    assert early[0]["ended_ns"] < offline["ended_ns"]
