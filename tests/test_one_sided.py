"""Captures of one direction only. The server's (captures/scenarios_oneside.py): the verdict stays
``incomplete`` (what the client did is not in the capture), but the server's first reply after
its greeting, a positive reply of two lines or more, is read as its EHLO reply: the STARTTLS
offer, the findings on it and a 220 right after it (STARTTLS answered).

Cross-checked against tshark, which dissects the server's replies without the client's
commands too: the EHLO reply's frames are those of tshark's second SMTP response (up to the
frame of its last line), the misplaced keyword stands on the line tshark shows first, the 220
is tshark's third response, and tshark sees the control's hole (``tcp.analysis.lost_segment``).

The client's (captures/one-sided-client.pcap): ``incomplete`` too, and the detail names what the
client sent in the clear, at the frame of tshark's ``MAIL`` request.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching, tshark_fields

CAPTURES = Path(__file__).resolve().parents[1] / "captures"

#: capture -> (offered, requested, reply code, the detail's words on the offer)
READ = {
    "one-sided-server-misplaced.pcap": ("misplaced", False, None,
                                        "puts STARTTLS where a client that follows RFC 5321 does not read it"),
    "one-sided-server-valid.pcap": ("valid", True, 220, "offers STARTTLS"),
    "one-sided-server-absent.pcap": ("absent", False, None, "does not offer STARTTLS"),
}


def _conv(name: str) -> dict[str, Any]:
    (conv,) = analyze_path(str(CAPTURES / name))
    return conv


def _responses(name: str) -> list[tuple[int, list[str]]]:
    """The lines of every frame tshark dissects as an SMTP response, in frame order (from the
    frame's TCP payload: tshark's own ``smtp.response`` field holds a frame's first line only)."""
    rows = tshark_fields(CAPTURES / name, "smtp.response", "frame.number", "tcp.payload")
    return [(int(frame), bytes.fromhex(payload.replace(":", "")).decode("latin-1").splitlines())
            for frame, payload in rows]


def _ehlo_reply_frames(name: str) -> list[int]:
    """The frames of the second response (the first after the banner), as tshark reads it: from
    its first frame to the one whose last line ends the reply (``250 `` not ``250-``)."""
    frames = []
    for frame, lines in _responses(name)[1:]:
        frames.append(frame)
        if lines[-1][3:4] != "-":
            return frames
    raise AssertionError(f"{name}: no end of the reply after the banner")


@pytest.mark.parametrize("name", sorted(READ))
def test_the_reply_after_the_greeting_is_read_as_the_ehlo_reply(name: str) -> None:
    conv = _conv(name)
    offered, requested, code, words = READ[name]
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"] == {"offered": offered, "requested": requested, "reply_code": code, "frame": None}
    assert conv["greeting"] is None
    frames = _ehlo_reply_frames(name)
    assert conv["ehlo_reply"]["frames"] == frames
    assert conv["detail"] == (f"only one direction was captured; the server's reply after its greeting "
                              f"(frame {frames[0]}) is an EHLO reply that {words}, but what the client did "
                              "is not in the capture")
    assert conv["evidence_frame"] == conv["first_frame"] == 1
    assert "clients" in conv
    findings = [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]
    assert findings[0] == ("one-sided", "capture", 1)
    # only the server's packets: tshark sees none to the server's port
    assert frames_matching(CAPTURES / name, "tcp.dstport == 25") == []


def test_a_misplaced_offer_is_the_servers_finding_at_the_line_tshark_shows_first() -> None:
    name = "one-sided-server-misplaced.pcap"
    conv = _conv(name)
    (first_frame, first_lines), *_ = _responses(name)[1:]
    assert first_lines[0] == "250-STARTTLS"
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("one-sided", "capture", 1), ("ehlo-keyword-as-domain", "server", first_frame)]
    assert conv["server_name"] != "STARTTLS"
    assert "postfix" in conv["clients"]["downgrade"] and "curl" in conv["clients"]["see_starttls"]


def test_the_220_after_the_offer_is_the_answer_to_starttls() -> None:
    name = "one-sided-server-valid.pcap"
    responses = _responses(name)
    frame, lines = responses[2]
    assert lines[0].startswith("220 ") and frame > _ehlo_reply_frames(name)[-1]
    assert _conv(name)["starttls"]["reply_code"] == 220


@pytest.mark.parametrize("name", ["one-sided-server-one-line.pcap", "one-sided-server-hole.pcap",
                                  "one-sided-server-second-banner.pcap", "one-sided-server-early-end.pcap"])
def test_no_ehlo_reply_is_named_when_the_reply_may_be_another(name: str) -> None:
    """A one-line 250 may answer HELO; after a hole of the server's direction, the first reply
    after the greeting is not known; a 220 of two lines is no EHLO reply; a reply without
    STARTTLS followed by one with it may have ended early: the offer stays unknown."""
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"]["offered"] == "unknown" and conv["ehlo_reply"] is None
    assert "clients" not in conv
    findings = [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]
    if name == "one-sided-server-hole.pcap":
        (lost,) = frames_matching(CAPTURES / name, "tcp.analysis.lost_segment")
        assert findings == [("one-sided", "capture", 1), ("tcp-gap", "capture", lost)]
        assert conv["detail"] == "bytes of the decisive exchange were lost"
    else:
        assert findings == [("one-sided", "capture", 1)]
        assert conv["detail"] == "only one direction was captured"


def test_a_client_only_capture_names_what_the_client_sent_in_the_clear() -> None:
    name = "one-sided-client.pcap"
    conv = _conv(name)
    ((mail,),) = tshark_fields(CAPTURES / name, 'smtp.req.command == "MAIL"', "frame.number")
    assert frames_matching(CAPTURES / name, "tcp.srcport == 25") == []
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"] == {"offered": "unknown", "requested": False, "reply_code": None, "frame": None}
    assert conv["mail"] is True and conv["ehlo_reply"] is None
    assert conv["detail"] == (f"only one direction was captured; the client sent MAIL FROM in the clear (frame "
                              f"{mail}), but the server's replies, which would tell why, are not in the capture")
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("one-sided", "capture", 1)]
