"""The example captures of captures/scenarios_findings.py: each finding that had no example
(starttls-offered-again, ehlo-masked-keyword, limit-reached) comes out with the verdict and
frames of expected.json, and its frame is where tshark sees the same line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"
EXPECTED: dict[str, Any] = json.loads((CAPTURES / "expected.json").read_text())
NAMES = ["starttls-offered-again.pcap", "ehlo-masked-keyword.pcap", "limit-reached.pcap"]


def _conv(name: str) -> dict[str, Any]:
    convs = analyze_path(str(CAPTURES / name))
    assert len(convs) == 1
    return convs[0]


def _tshark_frames(name: str, display_filter: str) -> list[int]:
    return frames_matching(CAPTURES / name, display_filter)


def _finding(conv: dict[str, Any], code: str) -> dict[str, Any]:
    got = [f for f in conv["findings"] if f["code"] == code]
    assert len(got) == 1, conv["findings"]
    return got[0]


@pytest.mark.parametrize("name", NAMES)
def test_verdict_and_findings_as_expected(name: str) -> None:
    want = EXPECTED[name]["conversations"][0]
    got = _conv(name)
    assert (got["outcome"], got["caused_by"], got["reason"]) == (want["outcome"], want["caused_by"], want["reason"])
    assert [(f["code"], f["side"], f["frame"]) for f in got["findings"]] == [
        (f["code"], f["side"], f["frame"]) for f in want["findings"]]


def test_starttls_offered_again_is_the_second_starttls_line_tshark_sees() -> None:
    name = "starttls-offered-again.pcap"
    conv = _conv(name)
    first, again = _tshark_frames(name, 'smtp.rsp.parameter == "STARTTLS"')
    assert conv["ehlo_reply"]["frames"] == [first]
    f = _finding(conv, "starttls-offered-again")
    assert (f["side"], f["frame"], f["rfc"]) == ("server", again, "RFC 3207 4.2")
    # tshark sees the second EHLO after the 220, in the clear, where the finding's evidence starts
    assert _tshark_frames(name, 'smtp.req.command == "EHLO"')[1] == _finding(conv, "plaintext-after-starttls")["frame"]


def test_offered_again_needs_the_offer_after_tls() -> None:
    """The decrypted capture whose later EHLO reply has no STARTTLS has no such finding."""
    conv = _conv("tls-decrypted-capture.pcap")
    assert conv["reason"] == "tls-decrypted"
    assert "starttls-offered-again" not in {f["code"] for f in conv["findings"]}


def test_masked_keyword_frame_is_where_tshark_sees_it_and_is_low_confidence() -> None:
    name = "ehlo-masked-keyword.pcap"
    conv = _conv(name)
    f = _finding(conv, "ehlo-masked-keyword")
    assert [f["frame"]] == _tshark_frames(name, 'smtp.rsp.parameter == "XXXXXXXB"')
    assert (f["side"], f.get("confidence")) == ("middlebox", "low")
    assert conv["starttls"]["offered"] == "valid"


def test_limit_reached_is_the_first_frame_of_the_long_line() -> None:
    name = "limit-reached.pcap"
    conv = _conv(name)
    f = _finding(conv, "limit-reached")
    # tshark dissects the MAIL command where its line ends; the finding names where it starts
    assert [f["frame"]] == _tshark_frames(name, 'tcp.payload contains "MAIL FROM:<aaaa"')
    assert f["frame"] < _tshark_frames(name, 'smtp.req.command == "MAIL"')[0]
    assert "5026 octets" in f["message"] and f["side"] == "capture"
    assert conv["mail"] is True
