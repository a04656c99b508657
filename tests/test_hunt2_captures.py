"""Verdicts that were wrong on misbehaving peers nobody had captured (captures/scenarios_hunt2.py).

Each capture is checked for its verdict, its evidence frame and its findings, and the frames are
cross-checked with tshark's reading of the same file: the records and lines the verdict rests on
(the client's Finished, the server's encrypted alert, its FIN, an EHLO reply line) are where tshark
sees them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching, tshark_fields

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
SERVER = "tcp.srcport == 25"
CLIENT = "tcp.dstport == 25"


def _convs(name: str) -> list[dict[str, Any]]:
    return list(analyze_path(str(CAPTURES / name)))


def _verdict(conv: dict[str, Any]) -> tuple[str, str, str]:
    return conv["outcome"], conv["caused_by"], conv["reason"]


def _findings(conv: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    return [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]


def _tls13_frames(path: Path, stream: int = 0) -> tuple[int, list[int], list[int], dict[int, tuple[str, str]]]:
    """From one tshark run over one stream: the ServerHello's frame, the frames of the client's and
    of the server's encrypted records (TLS 1.3's outer type 23), and each frame's TCP flags and
    record lengths."""
    rows = tshark_fields(path, f"tcp.stream == {stream}", "frame.number", "tcp.srcport", "tcp.flags.str",
                         "tls.handshake.type", "tls.record.opaque_type", "tls.record.length")
    (sh,) = [int(n) for n, _, _, hs, _, _ in rows if "2" in hs.split(",")]
    client = [int(n) for n, port, _, _, op, _ in rows if port != "25" and "23" in op.split(",")]
    server = [int(n) for n, port, _, _, op, _ in rows if port == "25" and "23" in op.split(",")]
    return sh, client, server, {int(n): (flags, length) for n, _, flags, _, _, length in rows}


def test_tls13_server_that_refuses_the_client_certificate_ended_the_handshake() -> None:
    """TLS 1.3: the server's CertificateRequest is encrypted; the client answers with an empty
    Certificate and its Finished and, done, sends its EHLO. The server answers with an encrypted
    alert (19 bytes) and closes: not established, the server ended it at that alert."""
    path = CAPTURES / "hunt2-tls13-client-cert-required.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed")
    assert conv.get("case") is None
    sh, client, server, flags = _tls13_frames(path)
    # tshark: the server's flight in the ServerHello's frame, the client's Certificate and Finished
    # in 18, its EHLO in 20, the server's 19-byte record in 22, its FIN after it
    assert (sh, client, server) == (16, [18, 20], [16, 22])
    assert flags[22][1] == "19" and "F" in flags[24][0]
    assert conv["tls"]["alert"]["frame"] == 22
    assert conv["evidence_frame"] == 22
    assert _findings(conv) == [("tls-alert", "server", 22)]
    assert conv["tls"]["established"] is False
    assert conv["tls"]["alert"]["side"] == "server" and conv["tls"]["alert"]["encrypted"] is True
    assert conv["detail"].startswith("the server answered the client's Finished (frame 18) with an encrypted alert")
    assert "typically the client's certificate" in conv["detail"]
    assert conv["tlsrpt_result"] == "validation-failure"


def test_tls13_server_that_closes_after_the_clients_finished_ended_the_handshake() -> None:
    """The same without an alert (CPython's asyncio server): the server's FIN after the client's
    Finished, the client's EHLO crossing it, the server's reset. Not established: the server
    never answered the client's Finished."""
    path = CAPTURES / "hunt2-tls13-server-closes-after-finished.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed")
    sh, client, server, flags = _tls13_frames(path)
    assert (sh, client, server) == (16, [18, 21], [16])
    assert [n for n, (f, _) in flags.items() if "F" in f] == [20]
    assert [n for n, (f, _) in flags.items() if "R" in f] == [22]
    assert conv["evidence_frame"] == 20
    assert _findings(conv) == []
    assert conv["tls"]["established"] is False and conv["tls"]["alert"] is None
    assert conv["detail"] == (
        "the server closed the connection after the client's Finished (frame 18) without answering it, "
        "before the handshake completed: in TLS 1.3 a server checks the client's Finished (and the "
        "client's certificate, when it asked for one) only then, and refused it")


def test_tls13_server_that_resets_after_the_clients_finished_ended_the_handshake() -> None:
    """The other ending of that race (the real test met both): the client's EHLO reached the
    server before its close, unread, so the close is the server's reset alone (its own TTL)."""
    path = CAPTURES / "hunt2-tls13-server-resets-after-finished.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed")
    sh, client, server, flags = _tls13_frames(path)
    assert (sh, client, server) == (16, [18, 20], [16])
    assert [n for n, (f, _) in flags.items() if "F" in f] == []
    assert [n for n, (f, _) in flags.items() if "R" in f] == [22]
    assert conv["evidence_frame"] == 22 and _findings(conv) == []
    assert conv["tls"]["established"] is False and conv["tls"]["alert"] is None
    assert conv["detail"].startswith(
        "the server reset the connection after the client's Finished (frame 18) without answering it")


def test_plaintext_retry_after_a_refused_client_certificate_is_a_fallback() -> None:
    """Postfix at ``may`` (Exim's ``tls_tempfail_tryclear``) retries in plaintext after the failed
    handshake: the retry is the server's ``tls-fallback``, not the client's choice."""
    path = CAPTURES / "hunt2-tls13-client-cert-fallback.pcap"
    failed, retry = _convs(path.name)
    assert _verdict(failed) == ("aborted", "server", "tls-handshake-failed")
    assert failed["evidence_frame"] == 22 and _findings(failed) == [("tls-alert", "server", 22)]
    assert _verdict(retry) == ("plaintext", "server", "tls-fallback")
    assert retry["fallback_of"]["stream"] == 0 and retry["fallback_of"]["reason"] == "tls-handshake-failed"
    assert retry["fallback_of"]["previous_reason"] == "client-did-not-request"
    # tshark: the retry's MAIL FROM, in clear, is its evidence
    (mail,) = frames_matching(path, "tcp.stream == 1 && smtp.req.command == \"MAIL\"")
    assert retry["evidence_frame"] == mail


@pytest.mark.parametrize("name, version", [("hunt2-tls13-resumed.pcap", "TLS 1.3"),
                                           ("hunt2-tls12-resumed.pcap", "TLS 1.2")])
def test_resumed_sessions_are_established(name: str, version: str) -> None:
    """A resumed session (TLS 1.3 PSK without a certificate; the TLS 1.2 abbreviated handshake
    with the server's ChangeCipherSpec and Finished first) is established like a full one."""
    path = CAPTURES / name
    (conv,) = _convs(name)
    assert _verdict(conv) == ("tls", "none", "tls-established")
    assert conv["tls"]["established"] is True and conv["tls"]["version"] == version
    assert conv["findings"] == [] and "certificate" not in conv
    types = {int(n): hs.split(",") for n, hs in tshark_fields(path, "tls.handshake.type", "frame.number",
                                                                 "tls.handshake.type")}
    assert not any("11" in hs for hs in types.values())                  # no certificate in clear
    (sh,) = [n for n, hs in types.items() if "2" in hs]
    assert conv["tls"]["server_hello_frame"] == sh == 16


def test_starttls_with_a_trailing_space_is_a_bad_keyword_line() -> None:
    """``250 STARTTLS `` is no ehlo-line (a space comes only before a parameter): most clients see
    the offer (valid), OpenSMTPD, swaks and Haraka do not; the server's line gets a finding."""
    path = CAPTURES / "hunt2-ehlo-starttls-trailing-space.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("plaintext", "client", "client-did-not-request")
    assert conv["starttls"]["offered"] == "valid"
    assert _findings(conv) == [("ehlo-bad-keyword", "server", 8)]
    assert "ends in white space after STARTTLS" in conv["findings"][0]["message"]
    assert conv["clients"]["downgrade"] == ["opensmtpd", "swaks", "haraka"]
    rows = tshark_fields(path, f"{SERVER} && smtp.response.code == 250 && frame.number == 8", "smtp.rsp.parameter")
    assert rows and rows[0][0].split(",")[-1] == "STARTTLS "


@pytest.mark.parametrize("name, fin", [("hunt2-tls12-server-silent-after-finished.pcap", 20),
                                       ("hunt2-tls13-server-silent-after-finished.pcap", 22)])
def test_server_silent_after_the_clients_finished_is_the_servers(name: str, fin: int) -> None:
    """The client's side of the handshake is done and acknowledged (frame 19); the server sends
    nothing for 30 s until the client closes: the server never answered (``server-silent``), not
    the client for closing."""
    path = CAPTURES / name
    (conv,) = _convs(name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed")
    assert conv["case"] == "server-silent" and conv["evidence_frame"] == 18
    assert _findings(conv) == [("no-answer", "server", 18)]
    assert conv["tls"]["established"] is False
    rows = tshark_fields(path, "tcp.stream == 0 && frame.number >= 18", "frame.number", "tcp.srcport",
                         "tcp.flags.str", "tcp.len", "frame.time_relative")
    server = [(int(n), flags, int(ln)) for n, port, flags, ln, _ in rows if port == "25"]
    # tshark: after the client's Finished (18) the server sends only ACKs (19 acknowledges it)
    # until its FIN after the client's (frame ``fin``) 30 s later
    assert server[0][:2] == (19, "·······A····") and all(ln == 0 for _, _, ln in server)
    times = {int(n): float(t) for n, _, _, _, t in rows}
    assert "F" in dict((int(n), f) for n, _, f, _, _ in rows)[fin] and times[fin] - times[18] >= 30
    assert conv["detail"] == ("the server sent nothing for 30.0 s after the client's Finished (frame 18), which it "
                              f"had acknowledged: the client gave up waiting and closed the connection (frame {fin})")


def test_reset_forged_after_the_clients_finished_is_the_boxs() -> None:
    """TLS 1.3: after the client's Finished and its EHLO, a reset with the server's address and a
    TTL none of the server's segments has: a box ended the session (was: tls-established)."""
    path = CAPTURES / "hunt2-tls13-reset-forged-after-finished.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed")
    assert conv["case"] == "reset-forged" and conv["evidence_frame"] == 21
    assert _findings(conv) == [("reset-forged", "middlebox", 21)]
    rows = tshark_fields(path, "tcp.srcport == 25", "frame.number", "tcp.flags.str", "ip.ttl")
    assert {int(n): int(ttl) for n, flags, ttl in rows if "R" in flags} == {21: 250}
    assert {int(ttl) for _, flags, ttl in rows if "R" not in flags} == {52}
    assert conv["detail"].startswith("a box on the path reset the connection after the client's Finished (frame 18)")


def test_pipelined_ehlo_and_starttls_then_tls() -> None:
    """EHLO and STARTTLS in one segment, the EHLO reply and the 220 in one segment: the offer is
    read from that reply and the STARTTLS it carried is answered by the 220 after it."""
    path = CAPTURES / "hunt2-pipelined-ehlo-starttls.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("tls", "none", "tls-established")
    assert conv["greeting"]["frame"] == conv["starttls"]["frame"] == 6
    assert conv["ehlo_reply"]["frames"] == [8] and conv["starttls"]["reply_code"] == 220
    # tshark: both commands in frame 6, both replies (250 and 220) in frame 8
    rows = {int(n): (cmd, code) for n, cmd, code in tshark_fields(
        path, "smtp", "frame.number", "smtp.req.command", "smtp.response.code")}
    assert rows[6][0].split(",") == ["EHLO", "STAR"] and rows[8][1].split(",") == ["250", "220"]
@pytest.mark.parametrize("name, clear_verb, starttls", [
    ("hunt2-auth-plain-before-starttls.pcap", "AUTH", 14),
    ("hunt2-mail-in-clear-then-starttls.pcap", "MAIL", 26),
])
def test_what_went_in_the_clear_before_a_successful_starttls_is_plaintext(name: str, clear_verb: str,
                                                                         starttls: int) -> None:
    """Credentials (AUTH PLAIN's initial response) or a message sent before the client asked for
    STARTTLS crossed unprotected, whatever TLS did afterwards: plaintext, the client's; the TLS
    that followed is still reported."""
    path = CAPTURES / name
    (conv,) = _convs(name)
    assert _verdict(conv) == ("plaintext", "client", "client-did-not-request")
    rows = tshark_fields(path, "smtp.req.command", "frame.number", "smtp.req.command")
    commands = {cmd: int(n) for n, cmd in reversed(rows)}          # each command's first frame
    assert conv["evidence_frame"] == commands[clear_verb] == 10
    assert conv["starttls"]["frame"] == starttls and conv["starttls"]["reply_code"] == 220
    assert conv["tls"]["established"] is True
    assert conv["detail"].endswith(f"the client sent STARTTLS only after that (frame {starttls}), and STARTTLS "
                                   "answered 220 and the TLS handshake completed (TLS 1.2)")
    assert conv["auth"] is (clear_verb == "AUTH") and conv["mail"] is (clear_verb == "MAIL")


def test_auth_refused_without_credentials_then_tls_is_tls() -> None:
    """``AUTH LOGIN`` without an initial response, refused with 530 before any challenge: no
    credentials crossed; the STARTTLS and TLS that follow protect the mail."""
    (conv,) = _convs("hunt2-auth-login-refused-then-starttls.pcap")
    assert _verdict(conv) == ("tls", "none", "tls-established")
    assert conv["auth"] is True and conv["findings"] == []


def test_a_235_after_the_334_shows_the_credentials_crossed_though_their_line_was_lost() -> None:
    """AUTH PLAIN, 334, the client's SASL line lost by the capture (the server acknowledged it),
    235, then STARTTLS and TLS: the server's 235 answers credentials the client sent in the clear
    (RFC 4954 6), so the conversation is plaintext at the AUTH; without the 235 (a cut right
    after the 334) it would not be."""
    path = CAPTURES / "hunt2-auth-line-lost-then-starttls.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("plaintext", "client", "client-did-not-request")
    auth = frames_matching(path, "smtp.req.command == \"AUTH\"")
    accepted = frames_matching(path, "smtp.response.code == 235")
    assert (auth, accepted) == ([10], [15])
    assert conv["evidence_frame"] == 10
    assert _findings(conv) == [("tcp-gap", "capture", 15)]
    assert "the client sent AUTH PLAIN in the clear (frame 10): its credentials crossed unprotected" in conv["detail"]
    assert conv["detail"].endswith("the client sent STARTTLS only after that (frame 17), and STARTTLS answered 220 "
                                   "and the TLS handshake completed (TLS 1.2)")
    # the session ends the SASL exchange at the 235 that answers the lost line: the client's
    # next line is its STARTTLS, not another SASL line (it read as one, and TLS was never seen)
    (starttls,) = frames_matching(path, "tcp.dstport == 25 && tcp.payload contains \"STARTTLS\"")
    assert conv["starttls"]["requested"] is True and conv["starttls"]["frame"] == starttls == 17
    assert conv["tls"]["established"] is True


def test_client_flight_that_never_arrives_is_the_paths() -> None:
    """TLS 1.2 with a client certificate: the client's flight (two segments) never reaches the
    server, whose acknowledgements stay before it; the client resends it and gives up: the path
    dropped it (``request-not-received``), not the client."""
    path = CAPTURES / "pathhole-client-flight-tls12.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed")
    assert conv.get("case") is None and conv["evidence_frame"] == 19
    assert _findings(conv) == [("request-not-received", "middlebox", 19)]
    rows = tshark_fields(path, "tcp.stream == 0 && frame.number > 16", "frame.number", "tcp.srcport", "tcp.len",
                         "tcp.ack", "tcp.analysis.retransmission", "tcp.payload", "tcp.seq")
    client = [(int(n), int(ln), bool(rtx)) for n, port, ln, _, rtx, _, _ in rows if port != "25" and int(ln)]
    # tshark: the flight in 18 and 19 (the ChangeCipherSpec in 19), sent again three times
    assert client == [(18, 1460, False), (19, 445, False)] + [(n, ln, True) for n, ln in
                                                              [(20, 1460), (21, 445), (22, 1460), (23, 445),
                                                               (24, 1460), (25, 445)]]
    assert "140303000101" in next(p for n, _, _, _, _, p, _ in rows if n == "19").replace(":", "")
    # the server's acknowledgements after it never pass the flight's start
    server_acks = {int(ack) for _, port, _, ack, _, _, _ in rows if port == "25"}
    assert server_acks == {next(int(seq) for n, _, _, _, _, _, seq in rows if n == "18")}
    assert ("never reached the server: the server's acknowledgements after it never covered a byte of it"
            in conv["detail"])


def test_auth_external_before_starttls_sends_no_credentials() -> None:
    """``AUTH EXTERNAL =`` and its 235 before STARTTLS: EXTERNAL sends no secret, so the TLS that
    follows is the verdict (it read plaintext, "its credentials crossed unprotected")."""
    path = CAPTURES / "hunt2-auth-external-then-starttls.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("tls", "none", "tls-established")
    assert frames_matching(path, "smtp.req.command == \"AUTH\"") == [10] and conv["auth"] is True
    assert conv["findings"] == [] and conv["tls"]["established"] is True
