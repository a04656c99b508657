"""captures/scenarios_smtp25.py: a 220 after holes that hid the client's STARTTLS, and the detail of a
client that gave up while the server's answer was still in flight (smtp/session.py
``_replies_lost_with_starttls``, analysis/verdict.py ``_gave_up_mid_handshake``). Frames
cross-checked with tshark."""
from __future__ import annotations

from tsharkfilter import frames_matching, tshark_fields

import cuts
from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from pcapsmtp.model import CLIENT, SERVER
from pcapsmtp.smtp.events import Command, Reply
from pcapsmtp.smtp.session import SmtpSession

LIVE = cuts.REPO / "captures" / "live-mail-refused-then-starttls.pcap"


# --- (1) TLS after holes that hid the STARTTLS ----------------------------------------------------

def test_a_220_after_the_lost_530_and_starttls_answers_the_starttls_lost_in_the_hole() -> None:
    """MAIL FROM in the clear (frame 10), the server's 530 (47 bytes) and the client's STARTTLS (10
    bytes) lost by the capture, then the 220 (frame 14) and a whole TLS session: the 220 answers the
    STARTTLS in the client's hole, not the MAIL, and the TLS that follows proves the client asked
    (tls). It read client-did-not-request, the client's."""
    name = "smtp25-mail-530-starttls-lost-then-tls.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("tls", "none", "tls-established", None, 20)
    assert _findings(conv) == [("tcp-gap", "capture", 13), ("tcp-gap", "capture", 14)]
    assert conv["detail"] == ("the client's STARTTLS is not in the capture (bytes of the client were lost, frame "
                              "14), but the server answered 220 and the TLS handshake completed (TLS 1.2)")
    assert conv["starttls"]["requested"] is True
    assert conv["starttls"]["reply_code"] == 220
    assert conv["tls"]["client_hello_frame"] == 16
    assert conv["tls"]["server_hello_frame"] == 18
    assert conv["tls"]["established"] is True
    # tshark: the MAIL in 10; the server's ACK in 13 carries a sequence number 47 bytes past its last
    # byte before it (the 530) and acknowledges 10 bytes of the client past the MAIL (its STARTTLS);
    # the 220 in 14, the client's next segments past those 10 bytes
    assert frames_matching(path, 'smtp.req.command == "MAIL"') == [10]
    assert frames_matching(path, "tcp.analysis.lost_segment") == [13, 15]
    ((seq11, ack11),) = tshark_fields(path, "frame.number == 11", "tcp.seq", "tcp.ack")
    ((seq13, ack13),) = tshark_fields(path, "frame.number == 13", "tcp.seq", "tcp.ack")
    assert int(seq13) - int(seq11) == len(b"530 5.7.0 Must issue a STARTTLS command first\r\n")
    assert int(ack13) - int(ack11) == len(b"STARTTLS\r\n")
    assert frames_matching(path, "smtp.response.code == 220") == [4, 14]


def test_the_live_capture_without_its_530_and_starttls_reads_tls() -> None:
    """The same in the live capture without frames 12 (the 530) and 14 (the STARTTLS): tls, as the
    whole capture (it read client-did-not-request, test_late_start_loss.py's TWO_LOSS_FAILURES); the
    capture that ends right after the MAIL FROM still reads the client going on in plaintext, as every
    capture that stops there does (EARLY_END_FAILURES, unchanged)."""
    cap = cuts.load(LIVE)
    (whole,) = cuts.analyze(cap.segments, cap.name)
    assert cuts.verdict(whole) == ("tls", "none", "tls-established")
    (cut,) = cuts.analyze(cuts.without(cap, 12, 14), cap.name)
    assert cuts.verdict(cut) == ("tls", "none", "tls-established")
    assert cut["starttls"]["requested"] is True
    assert [(f["code"], f["frame"]) for f in cut["findings"]] == [("tcp-gap", 15), ("tcp-gap", 16)]
    (early,) = cuts.analyze(cuts.end_at(cap, 11), cap.name)
    assert cuts.verdict(early) == ("plaintext", "client", "client-did-not-request")


def _offer_then_mail(s: SmtpSession) -> None:
    s.receive(SERVER, b"220 mx.example.com ESMTP\r\n", 1)
    s.receive(CLIENT, b"EHLO c.example.org\r\n", 2)
    s.receive(SERVER, b"250-mx.example.com\r\n250 STARTTLS\r\n", 3)
    s.receive(CLIENT, b"MAIL FROM:<a@c.example.org>\r\n", 4)


def test_a_client_hole_too_short_for_a_starttls_infers_none() -> None:
    """The rule in the session alone: after the MAIL, a hole of the server's (its answer) and one of the
    client's, then a 220. A client hole of 10 bytes holds a STARTTLS: inferred, the 220 answers it
    (the MAIL's answer lost in the server's hole). One of 8 bytes cannot hold "STARTTLS\\n": nothing
    inferred, the 220 left as it was read before (paired with the MAIL)."""
    for lost, inferred in ((10, True), (8, False)):
        s = SmtpSession()
        _offer_then_mail(s)
        s.receive_gap(SERVER, 47, 5)
        s.receive_gap(CLIENT, lost, 6)
        evs = s.receive(SERVER, b"220 2.0.0 Ready to start TLS\r\n", 7)
        cmds = [e for e in evs if type(e) is Command]
        (reply,) = [e for e in evs if type(e) is Reply]
        if inferred:
            assert [(c.verb, c.inferred) for c in cmds] == [("STARTTLS", True)]
            assert reply.answers is cmds[0]
        else:
            assert cmds == []
            assert reply.answers is not None and reply.answers.verb == "MAIL"


def test_no_server_hole_infers_no_starttls() -> None:
    """Without a hole of the server's since its last reply, the MAIL's answer cannot be in a hole: a 220
    after a client hole is not read past the MAIL pending (nothing inferred)."""
    s = SmtpSession()
    _offer_then_mail(s)
    s.receive_gap(CLIENT, 10, 6)
    evs = s.receive(SERVER, b"220 2.0.0 Ready to start TLS\r\n", 7)
    assert [e for e in evs if type(e) is Command] == []


# --- (2) the answer in flight when the client gave up ---------------------------------------------

def test_a_quit_that_acknowledged_none_of_the_answer_says_the_answer_was_in_flight() -> None:
    """The server's whole TLS 1.2 answer (frame 16) 200 ms after the ClientHello (frame 14), the
    client's QUIT in the clear (frame 17) 1.2 s after it, acknowledging none of it (the client's ACK of
    the answer, frame 18, comes 1.5 s after it: a path slower than a second). The client's, case
    client-silent, as before; the detail no longer says the client had the whole answer."""
    name = "smtp25-answer-in-flight-quit-1-2-s.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 17)
    assert _findings(conv) == [("client-silent", "client", 16)]
    detail = conv["detail"]
    assert "the client had" not in detail
    assert detail.startswith("the server's whole answer to its ClientHello (frame 16) came 201 ms after it (frame 14)")
    assert "sent nothing for 1.2 s after that answer" in detail
    assert "'QUIT' in the clear (frame 17), whose segment acknowledged none of the answer" in detail
    assert "still in flight to the client" in detail
    assert "1.4 s after its ClientHello" in detail
    assert detail.endswith("and closed the connection (frame 19)")
    assert conv["findings"][0]["message"] == detail
    # tshark: the ClientHello in 14, the answer in 16 (913 bytes, 200 ms later); the QUIT in 17, 1.2 s
    # after it, acknowledging up to the answer's first byte; the client's ACK of it whole in 18, 1.5 s
    # after it; its FIN in 19
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    ((seq16, len16, t16),) = tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len", "frame.time_relative")
    ((ack17, t17),) = tshark_fields(path, "frame.number == 17", "tcp.ack", "frame.time_relative")
    ((ack18, t18),) = tshark_fields(path, "frame.number == 18", "tcp.ack", "frame.time_relative")
    ((t14,),) = tshark_fields(path, "frame.number == 14", "frame.time_relative")
    assert int(ack17) == int(seq16) and int(ack18) == int(seq16) + int(len16) == int(seq16) + 913
    assert abs(float(t16) - float(t14) - 0.201) < 1e-6
    assert abs(float(t17) - float(t16) - 1.2) < 1e-6
    assert abs(float(t18) - float(t16) - 1.5) < 1e-6
    assert frames_matching(path, 'smtp.req.command == "QUIT"') == [17]
    assert frames_matching(path, "tcp.flags.fin == 1") == [19]
