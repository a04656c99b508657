"""Verdicts that were wrong on misbehaving peers nobody had captured (captures/scenarios_hunt3.py).

Each capture is checked for its verdict, its evidence frame and its findings, and the frames are
cross-checked with tshark's reading of the same file (decoding the client's bytes after a 250 to
STARTTLS as TLS where tshark's SMTP dissector, which switches to TLS only after a 220, would not).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import cuts
from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict


def _tls_handshakes(path: Path, port: int) -> dict[int, str]:
    """frame -> ``tls.handshake.type`` with the conversation's port decoded as TLS throughout."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    proc = subprocess.run(["tshark", "-n", "-r", str(path), "-d", f"tcp.port=={port},tls", "-Y",
                           "tls.handshake.type", "-T", "fields", "-e", "frame.number", "-e",
                           "tls.handshake.type"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {int(n): types for n, types in (line.split("\t") for line in proc.stdout.splitlines())}


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
    # (the client's close, frame 22, is read only after its hole, declared when the flow closes:
    # the server's is read first; the acknowledgements decide)
    assert conv["detail"].endswith("37.0 s after it the server closed the connection (frame 24), never having "
                                   "acknowledged it (a path MTU black hole, a box that drops the client's TLS)")
    # tshark: the flight's second segment (445 bytes, with the ChangeCipherSpec) in 18 after the
    # hole, its resent copies, the client's FIN before the server's, whose acknowledgements stay
    # at the flight's start
    assert frames_matching(path, "tcp.analysis.lost_segment") == [18]
    assert frames_matching(path, "tcp.srcport == 46301 && tcp.len == 445") == [18, 19, 20, 21]
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


def test_starttls_answered_250_then_tls_is_tls_with_the_servers_finding() -> None:
    """STARTTLS answered 250 (RFC 3207 4 gives 220), the client's ClientHello, a completed TLS
    1.2 handshake with the mail inside: ``tls`` (was ``starttls-refused``)."""
    path = CAPTURES / "hunt3-starttls-250-then-tls.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("tls", "none", "tls-established", None, 18)
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": 250, "frame": 10}
    assert conv["tls"]["client_hello_frame"] == 14 and conv["tls"]["server_hello_frame"] == 16
    assert conv["tls"]["established"] is True and conv["mail"] is False
    assert _findings(conv) == [("starttls-reply-not-220", "server", 12)]
    assert conv["findings"][0]["rfc"] == "RFC 3207 4"
    assert conv["detail"] == "STARTTLS answered 250 and the TLS handshake completed (TLS 1.2)"
    rows = {int(n): (cmd, code) for n, cmd, code in tshark_fields(
        path, "smtp.req.command || smtp.response.code", "frame.number", "smtp.req.command", "smtp.response.code")}
    assert rows[10][0] == "STAR" and rows[12][1] == "250"   # (tshark names a command by its first 4 letters)
    hs = _tls_handshakes(path, 46302)
    assert hs[14] == "1" and hs[16].split(",")[0] == "2" and hs[18] == "16"


def test_starttls_answered_250_then_a_plaintext_answer_to_the_clienthello_is_the_servers() -> None:
    path = CAPTURES / "hunt3-starttls-250-hello-answered-plaintext.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", None, 16)
    assert conv["starttls"]["reply_code"] == 250 and conv["tls"]["client_hello_frame"] == 14
    assert _findings(conv) == [("starttls-reply-not-220", "server", 12)]
    assert _tls_handshakes(path, 46303) == {14: "1"}
    assert frames_matching(path, "smtp.response.code == 500") == [16]


def test_starttls_answered_250_and_the_client_quits_is_a_refusal() -> None:
    """A client that wants 220 (CPython's smtplib raises) reads 250 as a refusal and quits."""
    path = CAPTURES / "hunt3-starttls-250-client-quits.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "starttls-refused", None, 12)
    assert conv["starttls"]["reply_code"] == 250 and conv["tls"]["client_hello_frame"] is None
    assert _findings(conv) == [("starttls-reply-not-220", "server", 12)]
    assert "the client read it as a refusal" in conv["findings"][0]["message"]
    assert frames_matching(path, "smtp.response.code == 250 && tcp.srcport == 25") == [8, 12]
    assert frames_matching(path, 'smtp.req.command == "QUIT"') == [14]


@pytest.mark.parametrize("name, outcome", [("hunt3-ehlo-silent-then-helo.pcap", "plaintext"),
                                           ("hunt3-ehlo-silent-then-helo-quit.pcap", "aborted")])
def test_helo_after_an_unanswered_ehlo_gets_the_one_line_250(name: str, outcome: str) -> None:
    """EHLO never answered; 5 s later the client falls back to HELO (PHPMailer's ``hello()``),
    answered with one line: the 250 answers the HELO, the EHLO got nothing (was: the 250 read as
    an EHLO reply without extensions, ``starttls-not-offered``)."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == (outcome, "server", "ehlo-rejected", "no-answer", 6)
    assert _findings(conv) == [("no-answer", "server", 6)]
    assert conv["ehlo_reply"] is None and conv["starttls"]["offered"] == "unknown"
    assert conv["greeting"] == {"command": "EHLO", "argument": "client.example.org", "frame": 6}
    assert conv["detail"].startswith("the server sent no reply to EHLO: 5.0 s after the EHLO the client gave up "
                                     "waiting and sent HELO (frame 8)")
    assert conv["mail"] is (outcome == "plaintext")
    # tshark: EHLO in 6, HELO in 8 five seconds later, the one-line 250 in 10, nothing between
    rows = tshark_fields(path, "smtp", "frame.number", "frame.time_relative", "smtp.req.command",
                         "smtp.response.code")
    assert [(int(n), cmd, code) for n, _, cmd, code in rows[:4]] == [
        (4, "", "220"), (6, "EHLO", ""), (8, "HELO", ""), (10, "", "250")]
    assert float(rows[2][1]) - float(rows[1][1]) == pytest.approx(5.001)


def test_starttls_answered_250_then_a_tls_alert_claims_no_lost_bytes() -> None:
    """The client's first TLS after the 250 is an alert, not a ClientHello, and nothing was lost:
    the session starts no TLS, the client read a refusal; the verdict said "bytes were lost
    before" (incomplete), a guess kept for captures with a hole."""
    path = CAPTURES / "hunt3-starttls-250-then-alert.pcap"
    conv = _conv(path.name)
    (reply,) = frames_matching(path, "smtp.response.code == 250 && tcp.srcport == 25 && frame.number > 8")
    assert _verdict(conv) == ("aborted", "server", "starttls-refused", None, reply)
    assert _findings(conv) == [("starttls-reply-not-220", "server", reply)]
    assert "lost" not in conv["detail"] and not any(f["code"] == "tcp-gap" for f in conv["findings"])
