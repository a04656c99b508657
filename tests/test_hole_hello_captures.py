"""captures/scenarios_hole_hello.py and the session's two readings of holes behind them
(pcapsmtp/smtp/session.py): the server's TLS after a hole where its 220 goes, with the client's
bytes after STARTTLS lost too, leaves the client's bytes from there the TLS it may have begun in
that hole (``_tls_without_220``, ``_tls_after_hole``), never bytes owed after a 220; and a server
hole from the start of its stream that the client acknowledged before its first command holds the
greeting, so a 220 after the client's EHLO and STARTTLS answers the STARTTLS
(``_greeting_in_hole``). Frames cross-checked with tshark."""
from __future__ import annotations

from typing import Any

import cuts
from builders import C, S, alert, client_hello, server_hello
from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from pcapsmtp.smtp.events import Command, PlaintextAfterStartTls, Reply
from pcapsmtp.smtp.session import SmtpSession
from pcapsmtp.smtp.tls import TlsEvent

UNSURE = ("incomplete", "unknown", "incomplete", None)
READY = b"220 2.0.0 Ready to start TLS\r\n"
#: tshark's SMTP dissector keeps 4 characters of a command
STARTTLS = 'smtp.req.command == "STAR" || smtp.req.command == "STARTTLS"'


def _replies(evs: list[Any]) -> list[tuple[int | None, bool, str | None]]:
    return [(e.code, e.greeting, e.answers.verb if e.answers else None) for e in evs if isinstance(e, Reply)]


# --------------------------------------------------------------------------------- the session

def _after_starttls(s: SmtpSession) -> list[Any]:
    evs = s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n")
    return evs + s.receive(S, b"250-mx\r\n250 STARTTLS\r\n") + s.receive(C, b"STARTTLS\r\n")


def test_the_clients_bytes_after_both_holes_are_its_tls_not_plaintext_owed() -> None:
    """STARTTLS; the 220 and the client's next bytes lost; the server's ServerHello: the client's
    QUIT in the clear later is no proof that it never started TLS."""
    s = SmtpSession()
    evs = _after_starttls(s)
    evs += s.receive_gap(S, len(READY)) + s.receive_gap(C, 166)
    evs += s.receive(S, server_hello()) + s.receive(C, b"QUIT\r\n")
    assert not any(isinstance(e, PlaintextAfterStartTls) for e in evs)
    assert any(type(e).__name__ == "TlsServerHello" for e in evs if isinstance(e, TlsEvent))
    # (an alert from the server may answer a ClientHello too)
    s = SmtpSession()
    evs = _after_starttls(s)
    evs += s.receive_gap(S, len(READY)) + s.receive_gap(C, 166)
    evs += s.receive(S, alert(40)) + s.receive(C, b"QUIT\r\n")
    assert not any(isinstance(e, PlaintextAfterStartTls) for e in evs)


def test_without_a_hole_of_the_client_its_plaintext_after_the_servers_tls_is_still_judged() -> None:
    """Control: only the 220 lost; the client's QUIT is its next bytes after STARTTLS, none lost:
    plaintext where its TLS was due, as before."""
    s = SmtpSession()
    evs = _after_starttls(s)
    evs += s.receive_gap(S, len(READY)) + s.receive(S, server_hello()) + s.receive(C, b"QUIT\r\n")
    assert [e.preview for e in evs if isinstance(e, PlaintextAfterStartTls)] == ["QUIT\r\n"]


def test_a_220_after_the_greeting_in_a_hole_answers_starttls() -> None:
    """The client acknowledged the server's first bytes before its EHLO (the hole declared before
    it), then the EHLO reply lost: the 220 after STARTTLS answers it, and the ClientHello is TLS."""
    s = SmtpSession()
    evs = s.receive_gap(S, 34) + s.receive(C, b"EHLO me\r\n") + s.receive_gap(S, 122)
    evs += s.receive(C, b"STARTTLS\r\n") + s.receive(S, READY) + s.receive(C, client_hello())
    assert _replies(evs) == [(220, False, "STARTTLS")]
    assert any(type(e).__name__ == "TlsClientHello" for e in evs if isinstance(e, TlsEvent))


def test_a_greeting_hole_declared_after_the_ehlo_with_an_earlier_acknowledgement_counts() -> None:
    """The SYN-ACK lost: the server's first segment comes after the client's EHLO, and the hole
    of its greeting is declared then, in hindsight, with the time of the client's acknowledgement
    that proves it (before the EHLO, or the EHLO's own): the 220 after STARTTLS answers it. An
    acknowledgement after the EHLO (a client that spoke first) proves nothing of the kind."""
    for acked_ns in (90, 100):
        s = SmtpSession()
        evs = s.receive(C, b"EHLO me\r\n", 100) + s.receive_gap(S, 34, acked_ns)
        evs += s.receive_gap(S, 122, 110) + s.receive(C, b"STARTTLS\r\n", 120)
        evs += s.receive(S, READY, 130) + s.receive(C, client_hello(), 140)
        assert _replies(evs) == [(220, False, "STARTTLS")], acked_ns
    s = SmtpSession()
    evs = s.receive(C, b"EHLO me\r\n", 100) + s.receive_gap(S, 34, 101) + s.receive(S, b"220 mx ESMTP\r\n", 102)
    assert _replies(evs) == [(220, True, None)]


def test_a_greeting_whose_head_is_in_a_hole_is_still_the_greeting() -> None:
    """Control: the first line of a greeting of two lost; its last line before the client's
    first command is the greeting."""
    s = SmtpSession()
    evs = s.receive_gap(S, 20) + s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n")
    evs += s.receive(S, b"250 mx\r\n")
    assert _replies(evs) == [(220, True, None), (250, False, "EHLO")]


def test_a_client_that_spoke_first_still_gets_its_greeting_after_a_hole() -> None:
    """Control: the client's EHLO before any byte of the server, whose first bytes are lost
    after it (its acknowledgement of them comes after its command): a 220 after them may be the
    greeting it did not wait for, as before."""
    s = SmtpSession()
    evs = s.receive(C, b"EHLO me\r\n") + s.receive_gap(S, 10) + s.receive(S, b"220 mx ESMTP\r\n")
    assert _replies(evs) == [(220, True, None)]
    assert [e.verb for e in evs if isinstance(e, Command)] == ["EHLO"]


# --------------------------------------------------------------------------------- the captures

def _payload_head(path: object, frame: int, n: int) -> bytes:
    ((payload,),) = tshark_fields(path, f"frame.number == {frame}", "tcp.payload")
    return bytes.fromhex(payload.replace(":", ""))[:n]


def _lost_220_and_hello(path: object) -> None:
    """tshark: the client's ACK in 12 acknowledges the 220 the capture lacks, the server's ACK in 13
    lies past it and acknowledges the ClientHello the capture lacks, the client's ACK in 15 lies
    past that (tshark's lost segments); the server's answer in 14."""
    assert frames_matching(path, "tcp.analysis.ack_lost_segment")[:2] == [12, 13]
    assert frames_matching(path, "tcp.analysis.lost_segment")[:2] == [13, 15]
    assert frames_matching(path, STARTTLS) == [10]


def test_a_stalled_answer_after_the_220_and_the_hello_lost_is_unsure() -> None:
    """real20-stall-client-quit-in-clear.pcap without the 220 and the ClientHello: was
    tls-not-started, the client's (its QUIT in the clear read as plaintext owed after the 220).
    The evidence is the first of the two holes, the 220's (the server's, at 13): the client's ACK
    of it in 12 lies at the sequence number its lost ClientHello begins at, so the reassembler
    declares it first (the twenty-sixth session's release; it was the ClientHello's, 14)."""
    path = CAPTURES / "hole-hello-stall-quit-in-clear.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == (*UNSURE, 13)
    assert _findings(conv) == [("tcp-gap", "capture", 13), ("tcp-gap", "capture", 14)]
    assert conv["detail"] == ("bytes of the server direction were lost (frame 13) during the TLS handshake, "
                              "before what ended it: who ended it cannot be told")
    _lost_220_and_hello(path)
    # the answer: a handshake record whose first message is a ServerHello (type 2); the QUIT in 16
    head = _payload_head(path, 14, 6)
    assert head[:3] == b"\x16\x03\x03" and head[5] == 2
    assert frames_matching(path, 'smtp.req.command == "QUIT"') == [16]


def test_an_alert_after_the_220_and_the_hello_lost_is_unsure() -> None:
    """The server's fatal handshake_failure alert after the two holes, the client's QUIT in the
    clear: what the alert answered (a ClientHello or plaintext) is in the hole. Was
    tls-not-started, the client's. The evidence the 220's hole, the first (as above)."""
    path = CAPTURES / "hole-hello-alert-then-quit.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == (*UNSURE, 13)
    assert _findings(conv) == [("tcp-gap", "capture", 13), ("tcp-gap", "capture", 14),
                               ("tls-alert", "server", 14)]
    _lost_220_and_hello(path)
    assert _payload_head(path, 14, 7) == bytes([0x15, 3, 3, 0, 2, 2, 40])
    assert frames_matching(path, 'smtp.req.command == "QUIT"') == [18]


def _greeting_lost(path: object) -> None:
    """tshark: the client's ACKs in 4 and 7 acknowledge the banner and the EHLO reply the capture
    lacks, before its EHLO (5) and its STARTTLS (8); the 220 in 10, the first reply in the capture."""
    assert frames_matching(path, "tcp.analysis.ack_lost_segment")[:2] == [4, 7]
    assert frames_matching(path, 'smtp.req.command == "EHLO"') == [5]
    assert frames_matching(path, STARTTLS) == [8]
    assert frames_matching(path, "smtp.response.code")[:1] == [10]
    ((code, text),) = tshark_fields(path, "frame.number == 10", "smtp.response.code", "smtp.rsp.parameter")
    assert (code, text) == ("220", "2.0.0 Ready to start TLS")


def test_a_session_after_the_greeting_was_lost_is_tls_answered_220() -> None:
    """The 220 answers STARTTLS (was: the greeting, STARTTLS unanswered, and the certificate checked
    against "2.0.0", the name in that greeting)."""
    path = CAPTURES / "hole-hello-greeting-lost-tls.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("tls", "none", "tls-established", None, 16)
    assert _findings(conv) == [("tcp-gap", "capture", 5), ("tcp-gap", "capture", 8)]
    assert conv["detail"] == "STARTTLS answered 220 and the TLS handshake completed (TLS 1.2)"
    assert conv["banner"] is None
    assert conv["starttls"] == {"offered": "unknown", "requested": True, "reply_code": 220, "frame": 8}
    _greeting_lost(path)
    assert frames_matching(path, "tls.handshake.type == 1") == [12]
    assert frames_matching(path, "tls.handshake.type == 2") == [14]


# ------------------------------------------------------------------------- the sweep's two cuts

def _cut(name: str, *frames: int) -> dict[str, Any]:
    """The one conversation of ``captures/NAME`` without the data segments of ``frames``, as the
    two-loss sweep cuts it (tests/test_late_start_loss.py; frame numbers stay the capture's)."""
    (conv,) = cuts.analyze(cuts.without(cuts.load(CAPTURES / name), *frames))
    return conv


def test_the_stall_without_the_220_and_the_hello_is_unsure() -> None:
    """real20-stall-client-quit-in-clear.pcap without the 220 (12) and the ClientHello (14): was
    tls-not-started, the client's; the whole capture reads server-silent (the server's answer
    stopped short), which the lost ClientHello leaves unsure; the evidence the 220's hole, the
    first (as above)."""
    conv = _cut("real20-stall-client-quit-in-clear.pcap", 12, 14)
    assert _verdict(conv) == (*UNSURE, 15)
    assert _findings(conv) == [("tcp-gap", "capture", 15), ("tcp-gap", "capture", 16)]
    path = CAPTURES / "real20-stall-client-quit-in-clear.pcap"
    # tshark on the whole capture: the 220 in 12, the ClientHello in 14, the answer in 16 (its
    # client's ACK in 17), the QUIT in the clear in 18
    assert frames_matching(path, "smtp.response.code == 220")[1:] == [12]
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    assert frames_matching(path, 'smtp.req.command == "QUIT"') == [18]
    assert _verdict(_conv(path.name)) == ("aborted", "server", "tls-handshake-failed", "server-silent", 16)


def test_the_late_hello_without_the_banner_and_the_ehlo_reply_is_the_servers() -> None:
    """hang-tls-late-hello.pcap without the banner (4) and the EHLO reply (8): the 220 (12) answers
    the STARTTLS, the ClientHello (14) goes unanswered 30 s, the server's (server-silent), as the
    whole capture. Was tls-not-started, the client's (the 220 taken for the greeting)."""
    conv = _cut("hang-tls-late-hello.pcap", 4, 8)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 14)
    assert _findings(conv) == [("tcp-gap", "capture", 6), ("tcp-gap", "capture", 10), ("no-answer", "server", 14)]
    assert conv["detail"] == ("the server sent nothing for 30.0 s after the ClientHello: the client gave up "
                              "waiting and closed the connection (frame 16)")
    assert conv["banner"] is None
    assert conv["starttls"] == {"offered": "unknown", "requested": True, "reply_code": 220, "frame": 10}
    path = CAPTURES / "hang-tls-late-hello.pcap"
    # tshark on the whole capture: the banner in 4 (the client's ACK of it in 5, before its EHLO in
    # 6), the EHLO reply in 8 (acknowledged in 9, before STARTTLS in 10), the 220 in 12, the
    # ClientHello in 14, the client's FIN 30 s later in 16, the ServerHello after it in 18
    assert frames_matching(path, "smtp.response.code") == [4, 8, 12]
    assert [a for _n, a in tshark_fields(path, "frame.number == 5 || frame.number == 9", "frame.number",
                                         "tcp.ack")] == ["35", "157"]
    assert frames_matching(path, 'smtp.req.command == "EHLO"') == [6]
    assert frames_matching(path, STARTTLS) == [10]
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert frames_matching(path, "tcp.flags.fin == 1 && tcp.srcport == 47051") == [16]
    assert frames_matching(path, "tls.handshake.type == 2") == [18]
    assert _verdict(_conv(path.name)) == ("aborted", "server", "tls-handshake-failed", "server-silent", 14)


# ---------------------------------------------- the review of 39bb5a2 (captures/scenarios_holehello2.py)

def test_a_220_after_the_greetings_first_line_lost_and_a_pregreeting_ehlo_is_the_greeting() -> None:
    """Postfix postscreen's pregreet trap: its 220- line lost (acknowledged before the EHLO), the
    client's EHLO before the final 220 line: a 220 answers only STARTTLS, none is pending, so it is
    the greeting's end, and the 250 after it answers the EHLO."""
    s = SmtpSession()
    evs = s.receive_gap(S, 26, 90) + s.receive(C, b"EHLO me\r\n", 100)
    evs += s.receive(S, b"220 mx ready\r\n", 6100) + s.receive(S, b"250-mx\r\n250 STARTTLS\r\n", 6101)
    evs += s.receive(C, b"STARTTLS\r\n", 6102) + s.receive(S, READY, 6103)
    assert _replies(evs) == [(220, True, None), (250, False, "EHLO"), (220, False, "STARTTLS")]
    # (a 421 there may answer the EHLO, as it answers any command; a 554 is no answer to EHLO, RFC
    # 5321 4.3.2, and ends the greeting too: tests/test_holes3_captures.py)
    s = SmtpSession()
    evs = s.receive_gap(S, 26, 90) + s.receive(C, b"EHLO me\r\n", 100) + s.receive(S, b"421 no\r\n", 6100)
    assert _replies(evs) == [(421, False, "EHLO")]
    s = SmtpSession()
    evs = s.receive_gap(S, 26, 90) + s.receive(C, b"EHLO me\r\n", 100) + s.receive(S, b"554 no\r\n", 6100)
    assert _replies(evs) == [(554, True, None)]


def test_a_client_hole_too_short_for_a_client_hello_leaves_its_plaintext_judged() -> None:
    """STARTTLS; the 220 and 27 client bytes lost (a ClientHello record takes at least 50), the
    server's alert: the client's RCPT TO after it is plaintext where TLS was due. With a hole as
    long as the shortest ClientHello record, it may be the TLS the client began (the control)."""
    from pcapsmtp.smtp.session import _MIN_CLIENT_HELLO_RECORD
    assert _MIN_CLIENT_HELLO_RECORD == 50
    assert len(client_hello()) >= _MIN_CLIENT_HELLO_RECORD
    for lost, judged in ((27, True), (_MIN_CLIENT_HELLO_RECORD - 1, True), (_MIN_CLIENT_HELLO_RECORD, False)):
        s = SmtpSession()
        evs = _after_starttls(s)
        evs += s.receive_gap(S, len(READY)) + s.receive_gap(C, lost)
        evs += s.receive(S, alert(10)) + s.receive(C, b"RCPT TO:<b@example.net>\r\n")
        plain = [e.preview for e in evs if isinstance(e, PlaintextAfterStartTls)]
        assert plain == (["RCPT TO:<b@example.net>\r\n"] if judged else []), lost


def test_a_pregreeting_client_after_the_greetings_first_line_lost_is_tls() -> None:
    """holehello2-pregreet-first-line-lost.pcap: was incomplete after 39bb5a2 (the final greeting
    line read as the EHLO's answer, a spurious reply-out-of-step at the EHLO reply in 9)."""
    path = CAPTURES / "holehello2-pregreet-first-line-lost.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("tls", "none", "tls-established", None, 19)
    assert _findings(conv) == [("tcp-gap", "capture", 5)]
    assert conv["detail"] == "STARTTLS answered 220 and the TLS handshake completed (TLS 1.2)"
    assert conv["banner"] == "220 mx.example.com ready"
    assert conv["ehlo_reply"]["code"] == 250 and conv["ehlo_reply"]["frames"] == [9]
    assert conv["starttls"] == {"offered": "unknown", "requested": True, "reply_code": 220, "frame": 11}
    # tshark: the client's ACK in 4 acknowledges the 220- line the capture lacks, before its EHLO
    # in 5; the final 220 line in 7 (6 s later), the EHLO reply in 9, STARTTLS in 11, its 220 in
    # 13, the ClientHello in 15, the ServerHello in 17, the client's Finished flight in 19
    assert frames_matching(path, "tcp.analysis.ack_lost_segment") == [4, 8]
    assert frames_matching(path, 'smtp.req.command == "EHLO"') == [5]
    assert frames_matching(path, "smtp.response.code") == [7, 9, 13]
    ((t5,),) = tshark_fields(path, "frame.number == 5", "frame.time_relative")
    ((t7, code, text),) = tshark_fields(path, "frame.number == 7", "frame.time_relative", "smtp.response.code",
                                        "smtp.rsp.parameter")
    assert (code, text) == ("220", "mx.example.com ready") and float(t7) - float(t5) >= 6.0
    assert frames_matching(path, STARTTLS) == [11]
    assert frames_matching(path, "tls.handshake.type == 1") == [15]
    assert frames_matching(path, "tls.handshake.type == 2") == [17]
    assert frames_matching(path, "tls.handshake.type == 16") == [19]


def test_a_short_client_hole_then_plaintext_after_the_alert_is_the_clients() -> None:
    """holehello2-short-hole-rcpt-after-alert.pcap: was incomplete after 39bb5a2 (the 27-byte hole
    taken for the ClientHello the alert answered)."""
    path = CAPTURES / "holehello2-short-hole-rcpt-after-alert.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-not-started", None, 18)
    assert _findings(conv) == [("tcp-gap", "capture", 13), ("tcp-gap", "capture", 14),
                               ("plaintext-after-starttls", "client", 18)]
    assert conv["detail"] == "the client did not start the TLS handshake after the 220"
    _lost_220_and_hello(path)
    # the server's ACK in 13 acknowledges 27 client bytes past the client's last (STARTTLS in 10)
    ((seq, length),) = tshark_fields(path, "frame.number == 10", "tcp.seq", "tcp.len")
    ((ack,),) = tshark_fields(path, "frame.number == 13", "tcp.ack")
    assert int(ack) - int(seq) - int(length) == 27
    # the alert (fatal unexpected_message) in 14, the server's FIN in 16, the RCPT TO in the clear in 18
    assert _payload_head(path, 14, 7) == bytes([0x15, 3, 3, 0, 2, 2, 10])
    assert frames_matching(path, "tcp.flags.fin == 1 && tcp.srcport == 25") == [16]
    assert frames_matching(path, 'smtp.req.command == "RCPT"') == [18]


def test_in_a_late_start_a_first_220_after_the_ehlo_is_the_greetings_end() -> None:
    """A capture that begins inside the pregreet wait (after the 220- line): the first reply, a
    220 after the client's EHLO, answers nothing pending and is the greeting's last line; a 220
    after a captured STARTTLS still answers it."""
    s = SmtpSession(late_start=True)
    evs = s.receive(C, b"EHLO me\r\n", 100) + s.receive(S, b"220 mx ready\r\n", 6100)
    evs += s.receive(S, b"250-mx\r\n250 STARTTLS\r\n", 6101) + s.receive(C, b"STARTTLS\r\n", 6102)
    evs += s.receive(S, READY, 6103)
    assert _replies(evs) == [(220, True, None), (250, False, "EHLO"), (220, False, "STARTTLS")]
    s = SmtpSession(late_start=True)
    evs = s.receive(C, b"STARTTLS\r\n", 100) + s.receive(S, READY, 101)
    assert _replies(evs) == [(220, False, "STARTTLS")]
