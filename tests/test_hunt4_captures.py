"""Verdicts that were wrong on misbehaving paths and peers (captures/scenarios_hunt4.py).

Each capture is checked for its verdict, its evidence frame and its findings, and the frames the
verdict rests on are cross-checked with tshark's reading of the same file.
"""
from __future__ import annotations


import pytest

from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict


@pytest.mark.parametrize("name, port, flight, copies, fins, shown", [
    ("pathhole-answer-server-closes.pcap", 48401, 16, [16, 17, 18], [19, 20],
     "but the client never acknowledged a byte of that answer: 60.0 s later the server closed the connection "
     "(frame 19)"),
    ("pathhole-answer-partly-server-closes.pcap", 48402, 16, [18, 19, 20], [21, 22],
     "but the client acknowledged only 96 of its 913 bytes: 60.0 s later the server closed the connection "
     "(frame 21)"),
    ("pathhole-answer-server-closes-end.pcap", 48403, 16, [16, 17, 18], [19],
     "but the server sent it again (a TCP retransmission) and no segment of the client came back: 60.0 s later "
     "the server closed the connection (frame 19)"),
])
def test_server_answer_lost_on_the_path_server_closing_first_is_the_paths(
        name: str, port: int, flight: int, copies: list[int], fins: list[int], shown: str) -> None:
    """The server's answer to the ClientHello, resent and never acknowledged by the client (a
    path MTU black hole), then the server's handshake timeout closing first: the client never had
    what it should have answered, so neither side ended the handshake; the path did (the server
    was blamed, "closed the connection after the ServerHello"). The same verdict as when the
    client gives up first (path-answer-lost.pcap)."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "answer-lost", flight)
    assert _findings(conv) == [("answer-not-received", "middlebox", flight)]
    assert (conv["starttls"]["requested"], conv["starttls"]["reply_code"]) == (True, 220)
    assert conv["tls"]["server_hello_frame"] == flight
    assert shown in conv["detail"]
    assert conv["detail"].endswith("never having had the client's next step; the answer was lost on the path (a "
                                   "path MTU black hole, a box that drops the server's TLS)")
    # tshark: the ServerHello in the flight's frame, the full-size segment and its two
    # retransmissions, the server's FIN first, and every acknowledgement of the client after the
    # ClientHello short of the full-size segment's end
    assert frames_matching(path, "tls.handshake.type == 2") == [flight]
    big = f"tcp.srcport == 25 && tcp.len > 500 && frame.number >= {flight}"
    assert frames_matching(path, big) == copies
    assert frames_matching(path, f"({big}) && tcp.analysis.retransmission") == copies[1:]
    assert frames_matching(path, "tcp.flags.fin == 1") == fins
    assert frames_matching(path, "tcp.flags.fin == 1 && tcp.srcport == 25") == fins[:1]
    ((seq, length),) = tshark_fields(path, f"frame.number == {copies[0]}", "tcp.seq", "tcp.len")
    acks = {int(a) for (a,) in tshark_fields(path, f"tcp.srcport == {port} && frame.number >= 14", "tcp.ack")}
    assert acks and max(acks) <= int(seq) < int(seq) + int(length)


def test_server_answer_lost_client_closing_first_reads_the_same() -> None:
    """The existing mirror: the client giving up first on the same black-holed answer."""
    assert _verdict(_conv("path-answer-lost.pcap")) == ("aborted", "middlebox", "tls-handshake-failed",
                                                       "answer-lost", 16)


def test_sasl_cancel_carries_no_credentials() -> None:
    """AUTH LOGIN, the server's 334, the client's "*" (RFC 4954 4: it cancels the exchange, the
    server refuses it with 501), then STARTTLS and TLS with the mail inside: no credentials
    crossed, "*" being no base64 of anything (it read plaintext, "its credentials crossed
    unprotected")."""
    path = CAPTURES / "hunt4-auth-cancel-then-starttls.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("tls", "none", "tls-established", None, 26)
    assert _findings(conv) == []
    assert conv["auth"] is True
    assert (conv["starttls"]["frame"], conv["starttls"]["reply_code"]) == (18, 220)
    # tshark: AUTH in 10, its 334 in 12, the client's one-character line in 14, the 501 in 16
    assert frames_matching(path, 'smtp.req.command == "AUTH"') == [10]
    assert frames_matching(path, "smtp.response.code == 334") == [12]
    assert frames_matching(path, "tcp.srcport == 48404 && tcp.len == 3") == [14]
    assert [p.replace(":", "") for (p,) in tshark_fields(path, "frame.number == 14", "tcp.payload")] == ["2a0d0a"]
    assert frames_matching(path, "smtp.response.code == 501") == [16]


def test_not_offered_auth_refused_says_the_client_tried_auth() -> None:
    """No STARTTLS offered; the client's AUTH LOGIN refused 503, then QUIT: the server's
    starttls-not-offered, and the detail names the AUTH tried in the clear (it said the client
    left "as a client that requires TLS does", which sends no AUTH without TLS)."""
    path = CAPTURES / "hunt4-not-offered-auth-refused.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "starttls-not-offered", None, 8)
    assert _findings(conv) == []
    assert conv["detail"] == ("the EHLO reply is well formed and does not offer STARTTLS; the client then sent AUTH "
                              "LOGIN in the clear (frame 10), answered 503 (frame 12), no credentials crossing, and "
                              "left without a mail transaction")
    assert frames_matching(path, 'smtp.req.command == "AUTH"') == [10]
    assert frames_matching(path, "smtp.response.code == 503") == [12]
    assert frames_matching(path, 'smtp.req.command == "QUIT"') == [14]


@pytest.mark.parametrize("name, port, outcome", [
    ("hunt4-ehlo-late-then-helo.pcap", 48406, "plaintext"),
    ("hunt4-ehlo-late-then-helo-quit.pcap", 48407, "aborted"),
])
def test_a_late_ehlo_reply_then_the_helo_reply_pair_in_order(name: str, port: int, outcome: str) -> None:
    """EHLO unanswered for 5 s, the client's HELO (PHPMailer's fallback), then the slow server's
    two one-line 250s: the first answers the EHLO (an EHLO reply without extensions), the second
    the HELO (the first was given to the HELO, "no reply to EHLO", and the second read as a
    reply-out-of-step)."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == (outcome, "server", "starttls-not-offered", None, 10)
    assert _findings(conv) == []
    assert conv["greeting"] == {"command": "EHLO", "argument": "client.example.org", "frame": 6}
    assert conv["ehlo_reply"] == {"code": 250, "frames": [10], "lines": ["mx.example.com"]}
    assert conv["starttls"]["offered"] == "absent"
    assert conv["mail"] is (outcome == "plaintext")
    if outcome == "aborted":
        # a client falling back to HELO gave up on TLS, not on the mail: the detail says so (it
        # said the client left "as a client that requires TLS does", which sends no HELO)
        assert conv["detail"] == ("the EHLO reply is well formed and does not offer STARTTLS; the client then fell "
                                  "back to HELO (frame 8) and left without a mail transaction")
    # tshark: EHLO in 6, HELO 5 s later in 8, the two 250s in 10 and 12
    assert frames_matching(path, 'smtp.req.command == "EHLO"') == [6]
    assert frames_matching(path, 'smtp.req.command == "HELO"') == [8]
    assert frames_matching(path, "smtp.response.code == 250 && frame.number <= 12") == [10, 12]
    ((ehlo_t,), (helo_t,)) = tshark_fields(path, "frame.number == 6 || frame.number == 8", "frame.time_relative")
    assert float(helo_t) - float(ehlo_t) >= 1.0


def test_an_idle_timeout_421_after_the_helo_reply_answers_nothing() -> None:
    """The same fallback, the HELO answered with one line 250 at once, then nothing of the client
    until the server's idle timeout, 300 s later, says 421 and closes: the 421 answers nothing (a
    server sends it unasked), so the 250 is the HELO's and the EHLO got no reply (the 421 was taken
    for the HELO's reply, the 250 for a late EHLO reply without STARTTLS: starttls-not-offered)."""
    path = CAPTURES / "hunt4-helo-250-then-idle-421.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "ehlo-rejected", "no-answer", 6)
    assert _findings(conv) == [("no-answer", "server", 6)]
    assert conv["ehlo_reply"] is None
    assert frames_matching(path, 'smtp.req.command == "EHLO"') == [6]
    assert frames_matching(path, 'smtp.req.command == "HELO"') == [8]
    assert frames_matching(path, "smtp.response.code == 250") == [10]
    (idle,) = frames_matching(path, "smtp.response.code == 421")
    ((reply_t,), (idle_t,)) = tshark_fields(path, f"frame.number == 10 || frame.number == {idle}",
                                            "frame.time_relative")
    assert float(idle_t) - float(reply_t) >= 300.0


@pytest.mark.parametrize("name, port, shown", [
    ("pathhole-ready-server-closes.pcap", 48408,
     "300.0 s after it the server closed the connection (frame 15), its TLS handshake timeout, never having had a "
     "ClientHello"),
    ("pathhole-ready-client-closes.pcap", 48409, "8.0 s after it the client gave up waiting and closed the "
     "connection (frame 15)"),
    ("pathhole-ready-client-quits.pcap", 48410, "8.0 s after it the client gave up waiting and went on in "
     "plaintext SMTP ('QUIT\\r\\n', frame 15)"),
])
def test_a_220_the_client_never_acknowledged_is_the_paths(name: str, port: int, shown: str) -> None:
    """The server's 220 to STARTTLS, resent and never acknowledged: whoever ended the
    conversation, the client never knew it could start TLS (it was blamed, tls-not-started)."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "middlebox", "tls-not-started", "answer-lost", 12)
    assert _findings(conv) == [("answer-not-received", "middlebox", 12)]
    # (its own explanation: the generic one asks "the side that broke off", whom this clears)
    assert conv["findings"][0]["rfc"] == "RFC 9293 3.4"
    assert conv["explanation"]["ask"].startswith("Ask the network team"), conv["explanation"]
    assert (conv["starttls"]["frame"], conv["starttls"]["reply_code"]) == (10, 220)
    assert conv["detail"] == ("the server's 220 to STARTTLS (frame 12) never reached the client: the client's "
                              f"acknowledgements after it never covered a byte of it; {shown}: the answer was lost "
                              "on the path (a box that drops it), so the client never knew it could start TLS")
    # tshark: the 220 in 12 and its two retransmissions, every acknowledgement of the client
    # after it still at the 220's first byte
    assert frames_matching(path, "smtp.response.code == 220 && frame.number > 4") == [12]
    assert frames_matching(path, "tcp.srcport == 25 && tcp.analysis.retransmission") == [13, 14]
    ((seq,),) = tshark_fields(path, "frame.number == 12", "tcp.seq")
    acks = {int(a) for (a,) in tshark_fields(path, f"tcp.srcport == {port} && frame.number > 12", "tcp.ack")}
    assert acks == {int(seq)}
