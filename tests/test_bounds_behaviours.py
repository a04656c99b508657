"""Behaviours that were tested one way only before (captures/scenarios_bounds.py): the
plaintext-retry rule's server port, for a failure and for an attempt the capture cannot judge, and
an EHLO never answered followed by the client's MAIL, after a wait and without one.

Each capture is checked for its verdicts, evidence frames and findings, cross-checked with tshark's
reading of the same file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching, tshark_fields

CAPTURES = Path(__file__).resolve().parents[1] / "captures"


def _convs(name: str) -> list[dict[str, Any]]:
    return sorted(analyze_path(str(CAPTURES / name)), key=lambda c: c["first_frame"])


def _verdict(conv: dict[str, Any]) -> tuple[Any, ...]:
    return (conv["server"]["port"], conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case"),
            conv["evidence_frame"])


def _findings(conv: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    return [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]


def _time(path: Path, frame: int) -> float:
    return float(tshark_fields(path, f"frame.number == {frame}", "frame.time_relative")[0][0])


def _streams(path: Path) -> dict[int, int]:
    """tcp.stream -> the server port, as tshark numbers the conversations."""
    return {int(s): int(p) for s, p in tshark_fields(path, "tcp.flags.syn == 1 && tcp.flags.ack == 0",
                                                      "tcp.stream", "tcp.dstport")}


def test_a_plaintext_delivery_to_another_port_is_no_retry_after_the_failure() -> None:
    """TLS fails on 587; the same host delivers in the clear to port 25 of the same server 2 s
    later (its own verdict: another service, another program's choice), then comes back to 587
    in the clear: that one is the failure's tls-fallback."""
    path = CAPTURES / "retry-port-587-then-25-and-587.pcap"
    failed, other, again = _convs(path.name)
    assert _verdict(failed) == (587, "aborted", "server", "tls-handshake-failed", None, 16)
    assert _findings(failed) == [("tls-alert", "server", 16)]
    assert _verdict(other) == (25, "plaintext", "client", "client-did-not-request", None, 30)
    assert "fallback_of" not in other and "earlier attempt" not in other["detail"]
    assert _findings(other) == []
    assert _verdict(again) == (587, "plaintext", "server", "tls-fallback", None, 62)
    assert again["fallback_of"] == {"stream": 0, "reason": "tls-handshake-failed", "frame": 16,
                                    "previous_reason": "client-did-not-request"}
    assert again["tlsrpt_result"] == "validation-failure"
    assert [c["client"]["ip"] for c in (failed, other, again)] == ["192.0.2.10"] * 3
    assert len({c["server"]["ip"] for c in (failed, other, again)}) == 1
    assert _streams(path) == {0: 587, 1: 25, 2: 587}
    assert frames_matching(path, "tls.alert_message.desc == 40") == [16]
    assert frames_matching(path, 'smtp.req.command == "MAIL"') == [30, 62]
    # (no STARTTLS in streams 1 and 2, though each EHLO reply offers it)
    assert frames_matching(path, 'smtp.req.command == "STAR"') == [10]
    assert len(frames_matching(path, 'smtp.rsp.parameter == "STARTTLS"')) == 3


def test_an_unsure_attempt_makes_unsure_only_a_plaintext_conversation_to_its_port() -> None:
    """STARTTLS on port 25 whose end the capture cannot judge (the server's answer to the
    ClientHello lost from the capture, then the client's alert): a plaintext conversation to 587
    keeps its verdict, one to 25 may be the retry after a failure the capture does not show."""
    path = CAPTURES / "retry-port-unsure-587-and-25.pcap"
    unsure, other, again = _convs(path.name)
    assert _verdict(unsure) == (25, "incomplete", "unknown", "incomplete", None, 17)
    assert unsure["starttls"]["requested"] is True and unsure["tls"]["client_hello_frame"] == 14
    assert _findings(unsure) == [("tcp-gap", "capture", 17), ("tls-alert", "client", 17)]
    assert _verdict(other) == (587, "plaintext", "client", "client-did-not-request", None, 31)
    assert "stream 0" not in other["detail"]
    assert _verdict(again) == (25, "incomplete", "unknown", "incomplete", None, 63)
    assert again["detail"] == ("stream 0 between the same hosts asked for STARTTLS and the capture does not show "
                               "how that ended: this conversation may be a retry in plaintext after a failure "
                               "(alone it reads as client-did-not-request)")
    assert "tlsrpt_result" not in again
    assert _streams(path) == {0: 25, 1: 587, 2: 25}
    # tshark: the client's pure ACK (16) and FIN (19) acknowledge the server's flight that is not
    # in the capture, as does its alert (bad_certificate, 42) in 17, the first of them to carry
    # payload (the gap's frame), before the server's next segment (18, after the hole)
    assert frames_matching(path, "tcp.analysis.ack_lost_segment") == [16, 19]
    assert frames_matching(path, "tcp.analysis.lost_segment") == [18]
    assert frames_matching(path, "tls.alert_message.desc == 42") == [17]
    assert frames_matching(path, 'smtp.req.command == "MAIL"') == [31, 63]


def test_ehlo_never_answered_then_mail_after_a_wait_is_the_servers() -> None:
    """EHLO, nothing; 2 s later the client sends MAIL in the clear (it gave up waiting): the
    server's ehlo-rejected, case no-answer, at the EHLO; plaintext (the MAIL crossed in the clear)."""
    path = CAPTURES / "silent-ehlo-then-mail.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == (25, "plaintext", "server", "ehlo-rejected", "no-answer", 6)
    assert _findings(conv) == [("no-answer", "server", 6)]
    assert conv["ehlo_reply"] is None and conv["mail"] is True
    assert conv["detail"].startswith("the server sent no reply to EHLO: 2.0 s after the EHLO the client gave up "
                                     "waiting and sent MAIL (frame 8)")
    assert frames_matching(path, 'smtp.req.command == "EHLO"') == [6]
    assert frames_matching(path, 'smtp.req.command == "MAIL"') == [8]
    assert frames_matching(path, "tcp.srcport == 25 && tcp.len > 0") == [4]     # the banner only
    assert 2.0 <= _time(path, 8) - _time(path, 6) < 2.01


def test_ehlo_never_answered_then_mail_without_a_wait_reads_incomplete() -> None:
    """The same with the MAIL 100 ms after the EHLO: the client did not wait, so its MAIL is no
    giving up: incomplete, the detail saying that the client did not wait for the extension list
    and the server had not sent it (the server's direction is in the capture and silent for the
    5 s until the client's close; it said "the EHLO reply is not in the capture", which it is not
    for want of a capture). The EHLO rule measures the wait to the client's next step only, the
    MAIL here, not to the close that ended it."""
    path = CAPTURES / "silent-ehlo-mail-no-wait.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == (25, "incomplete", "unknown", "incomplete", None, 8)
    assert conv["detail"] == ("the client sent MAIL (frame 8) 0.1 s after its EHLO (frame 6), before the server had "
                              "answered it: the client did not wait for the extension list, and the server had not "
                              "sent it")
    assert _findings(conv) == []
    assert frames_matching(path, 'smtp.req.command == "MAIL"') == [8]
    assert frames_matching(path, "tcp.srcport == 25 && tcp.len > 0") == [4]
    (fin,) = frames_matching(path, "tcp.flags.fin == 1 && tcp.dstport == 25")
    assert 0.1 <= _time(path, 8) - _time(path, 6) < 0.11
    assert _time(path, fin) - _time(path, 8) >= 5.0


def test_a_client_that_talked_first_and_sent_mail_then_waited_shows_a_server_that_never_greeted() -> None:
    """The same with the client's MAIL in the clear 5 s after its EHLO, no reply to either, and
    its close 40 s after the SYN: the server never greeted, and the MAIL crossed in the clear
    (plaintext). It read incomplete, "the EHLO reply is not in the capture": the greeting rule was
    asked only of a client that had sent nothing in the clear."""
    path = CAPTURES / "wild-server-silent-talked-first-mail.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == (25, "plaintext", "server", "greeting-refused", "no-answer", 8)
    assert _findings(conv) == [("no-answer", "server", 8)]
    assert conv["detail"] == ("the server sent no greeting: no byte of it for 40 s from the conversation's first "
                              "frame (1), until the client gave up waiting and closed the connection; the client "
                              "had sent EHLO (frame 4) before any greeting; the client sent MAIL in the clear "
                              "(frame 6) with no greeting")
    assert frames_matching(path, "tcp.srcport == 25 && tcp.len > 0") == []
    assert frames_matching(path, 'smtp.req.command == "MAIL"') == [6]
    (fin,) = frames_matching(path, "tcp.flags.fin == 1 && tcp.dstport == 25")
    assert fin == 8
    assert 40.0 <= _time(path, fin) - _time(path, 1) < 40.1


def test_a_client_that_talked_first_then_waited_shows_a_server_that_never_greeted() -> None:
    """The server accepts the connection and sends nothing; the client's EHLO at once, then 40 s
    of waiting and its close: the server never greeted, as when the client waits without a word
    (the EHLO was taken for the client's giving up, 11 ms after the SYN: no-mail-transaction)."""
    path = CAPTURES / "wild-server-silent-talked-first.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == (25, "aborted", "server", "greeting-refused", "no-answer", 6)
    assert _findings(conv) == [("no-answer", "server", 6)]
    assert conv["detail"] == ("the server sent no greeting: no byte of it for 40 s from the conversation's first "
                              "frame (1), until the client gave up waiting and closed the connection; the client "
                              "had sent EHLO (frame 4) before any greeting")
    assert conv["greeting"] == {"command": "EHLO", "argument": "client.example.org", "frame": 4}
    assert frames_matching(path, "tcp.srcport == 25 && tcp.len > 0") == []
    assert frames_matching(path, 'smtp.req.command == "EHLO"') == [4]
    assert frames_matching(path, "tcp.flags.fin == 1") == [6, 8]
    assert 40.0 <= _time(path, 6) - _time(path, 1) < 40.1
