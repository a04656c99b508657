"""Verdicts that were wrong on misbehaving peers nobody had captured (captures/scenarios_hunt3.py).

Each capture is checked for its verdict, its evidence frame and its findings, and the frames are
cross-checked with tshark's reading of the same file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


import cuts
from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching, tshark_fields

CAPTURES = Path(__file__).resolve().parents[1] / "captures"


def _conv(name: str) -> dict[str, Any]:
    (conv,) = analyze_path(str(CAPTURES / name))
    return conv


def _verdict(conv: dict[str, Any]) -> tuple[str, str, str, str | None, int | None]:
    return conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case"), conv["evidence_frame"]


def _findings(conv: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    return [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]


def test_client_flight_whose_head_the_capture_lost_too_is_the_paths() -> None:
    """The client's flight dropped on the path, its first segment missing from the capture too:
    the client's close (frame 22) came before the server's (24), though it is read only after
    the hole; the server's acknowledgements show it never received the flight, whatever the hole
    held: the path's, as in the whole capture (the server was blamed, for closing "after the
    ServerHello")."""
    path = CAPTURES / "pathhole-client-flight-head-lost.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", None, 18)
    assert _findings(conv) == [("request-not-received", "middlebox", 18), ("tcp-gap", "capture", 18)]
    assert conv["detail"].endswith("37.0 s after it the client gave up waiting and closed the connection (frame 22) "
                                   "(a path MTU black hole, a box that drops the client's TLS)")
    # tshark: the flight's second segment (148 bytes, with the ChangeCipherSpec) in 18 after the
    # hole, its resent copies, the client's FIN before the server's, whose acknowledgements stay
    # at the flight's start
    assert frames_matching(path, "tcp.analysis.lost_segment") == [18]
    assert frames_matching(path, "tcp.srcport == 46301 && tcp.len == 148") == [18, 19, 20, 21]
    assert frames_matching(path, "tcp.flags.fin == 1") == [22, 24]
    assert frames_matching(path, "tcp.flags.fin == 1 && tcp.srcport == 46301") == [22]
    assert "140303000101" in tshark_fields(path, "frame.number == 18", "tcp.payload")[0][0].replace(":", "")
    acks = {int(a) for (a,) in tshark_fields(path, "tcp.srcport == 25 && frame.number > 17", "tcp.ack")}
    flight_start = int(tshark_fields(path, "frame.number == 17", "tcp.seq")[0][0])
    assert acks == {flight_start}
    # the same loss cut out of the whole capture (every copy of its first segment) reads the same;
    # losing its second segment (the ChangeCipherSpec) leaves nothing to show the Finished: unknown
    whole = cuts.load(CAPTURES / "pathhole-client-flight-tls12.pcap")
    (cut,) = cuts.analyze(cuts.without(whole, 18), whole.name)
    assert _verdict(cut) == ("aborted", "middlebox", "tls-handshake-failed", None, 19)
    (cut,) = cuts.analyze(cuts.without(whole, 19), whole.name)
    assert _verdict(cut) == ("incomplete", "unknown", "incomplete", None, 26)
