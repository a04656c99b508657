"""The captures of captures/scenarios_order.py: a closed socket's reset without ACK merged before the
segment it answers (two taps whose clocks differ) is held until that segment is read, so the
facts it carries are there, as in the capture of both directions at one point. Every frame is
cross-checked with tshark: the client's ClientHello (a TLS handshake record, found by its bytes
where tshark no longer dissects TLS, after the reset) and the server's reset, whose sequence
number is the ClientHello's acknowledgement number (RFC 9293 3.10.7)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching, tshark_fields

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
EXPECTED = json.loads((CAPTURES / "expected.json").read_text())
SKEWED = "order-close-reset-before-clienthello.pcap"
ONE_POINT = "order-close-reset-after-clienthello.pcap"
#: the client's TLS handshake record (the ClientHello), found by its first bytes
HELLO = "tcp.dstport == 25 && tcp.payload[0:2] == 16:03"
RESET = "tcp.flags.reset == 1"


def _conv(name: str) -> dict[str, Any]:
    (conv,) = analyze_path(str(CAPTURES / name))
    return conv


@pytest.mark.parametrize("name", [SKEWED, ONE_POINT])
def test_the_clienthello_a_reset_answers_is_read(name: str) -> None:
    """Verdict, STARTTLS and TLS facts with their frames, as tshark finds them: the server
    closed after its 220 (its FIN is the evidence), the ClientHello is named with its SNI."""
    conv = _conv(name)
    (want,) = EXPECTED[name]["conversations"]
    path = CAPTURES / name
    (hello,) = frames_matching(path, HELLO)
    (reset,) = frames_matching(path, RESET)
    (fin,) = frames_matching(path, "tcp.flags.fin == 1 && tcp.srcport == 25")
    (starttls,) = frames_matching(path, 'tcp.dstport == 25 && tcp.payload == "STARTTLS\\r\\n"')
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == (
        "aborted", "server", "tls-handshake-failed") == (want["outcome"], want["caused_by"], want["reason"])
    assert conv["findings"] == want["findings"] == []
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": 220, "frame": starttls}
    assert starttls == want["frames"]["starttls"]
    assert conv["tls"] == {"client_hello_frame": hello, "server_hello_frame": None, "alert": None,
                           "established": False, "version": None, "sni": "mx.example.com"}
    assert hello == want["frames"]["client_hello"]
    assert conv["evidence_frame"] == fin
    assert conv["detail"] == "the server closed the connection before the ServerHello, before the handshake completed"
    # the reset answers the ClientHello: its sequence number is the ClientHello's ACK field
    assert tshark_fields(path, f"frame.number == {reset}", "tcp.seq_raw", "tcp.flags.ack") == [
        (tshark_fields(path, f"frame.number == {hello}", "tcp.ack_raw")[0][0], "0")]
    # in the merged file the reset comes first, at one capture point after
    assert (reset < hello) is (name == SKEWED)


def test_the_merged_file_says_what_the_capture_at_one_point_says() -> None:
    """Apart from frame numbers, the two conversations give the same output."""
    def strip(conv: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in conv.items() if k not in (
            "file", "client", "community_id", "wireshark_filter", "started_ns", "ended_ns", "stream",
            "first_frame", "evidence_frame", "evidence_filter", "greeting", "ehlo_reply", "starttls",
            "tls")}
    a, b = _conv(SKEWED), _conv(ONE_POINT)
    assert strip(a) == strip(b)
    assert {k: v for k, v in a["tls"].items() if k != "client_hello_frame"} == \
        {k: v for k, v in b["tls"].items() if k != "client_hello_frame"}
