"""captures/scenarios_holes3.py and the session's readings after holes behind them
(pcapsmtp/smtp/session.py). Frames cross-checked with tshark."""
from __future__ import annotations

from typing import Any

import cuts
from builders import C, S, alert, server_hello
from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from pcapsmtp.smtp.events import Anomaly, PlaintextAfterStartTls, Reply
from pcapsmtp.smtp.session import SmtpSession

UNSURE = ("incomplete", "unknown", "incomplete", None)
READY = b"220 2.0.0 Ready to start TLS\r\n"
#: tshark's SMTP dissector keeps 4 characters of a command
STARTTLS = 'smtp.req.command == "STAR" || smtp.req.command == "STARTTLS"'


def _payload_head(path: object, frame: int, n: int) -> bytes:
    ((payload,),) = tshark_fields(path, f"frame.number == {frame}", "tcp.payload")
    return bytes.fromhex(payload.replace(":", ""))[:n]


def _cut(name: str, *frames: int) -> dict[str, Any]:
    """The one conversation of ``captures/NAME`` without the data segments of ``frames``, as the
    two-loss sweep cuts it (tests/test_late_start_loss.py; frame numbers stay the capture's)."""
    (conv,) = cuts.analyze(cuts.without(cuts.load(CAPTURES / name), *frames))
    return conv


# ------------------------------------------------- e6: a ServerHello after the 220 and the hello lost

def _held_quit_then(answer: bytes, lost: int = 166) -> list[Any]:
    """STARTTLS; the 220 lost, ``lost`` bytes of the client lost, its QUIT held, then ``answer``."""
    s = SmtpSession()
    evs = s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n")
    evs += s.receive(S, b"250-mx\r\n250 STARTTLS\r\n") + s.receive(C, b"STARTTLS\r\n")
    evs += s.receive_gap(S, len(READY)) + s.receive_gap(C, lost) + s.receive(C, b"QUIT\r\n")
    return evs + s.receive(S, answer)


def test_a_serverhello_after_the_held_quit_leaves_it_the_clients_tls() -> None:
    """The QUIT came before the server's ServerHello (held while STARTTLS awaited its answer): the
    ServerHello shows the hole held a ClientHello, so the QUIT is no plaintext owed after a 220."""
    evs = _held_quit_then(server_hello())
    assert not any(isinstance(e, PlaintextAfterStartTls) for e in evs)
    assert any(type(e).__name__ == "TlsServerHello" for e in evs)


def test_an_alert_or_a_short_hole_leaves_the_held_quit_plaintext() -> None:
    """Controls: a fatal alert answers plaintext as well as a ClientHello; a hole of 30 bytes cannot
    hold a ClientHello, whatever the server answered: the QUIT is plaintext where TLS was due."""
    for answer, lost in ((alert(40), 166), (server_hello(), 30)):
        evs = _held_quit_then(answer, lost)
        assert [e.preview for e in evs if isinstance(e, PlaintextAfterStartTls)] == ["QUIT\r\n"], (answer, lost)


def _lost_220_and_hello(path: object, answer_frame: int) -> None:
    """tshark: the client's ACK in 12 acknowledges the 220 the capture lacks, the server's ACK in 13
    lies past it and acknowledges the ClientHello the capture lacks, the client's QUIT in 14 lies
    past that (tshark's lost segments); the server's answer in ``answer_frame``."""
    assert frames_matching(path, "tcp.analysis.ack_lost_segment")[:2] == [12, 13]
    assert frames_matching(path, "tcp.analysis.lost_segment") == [13, 14]
    assert frames_matching(path, STARTTLS) == [10]
    assert frames_matching(path, 'smtp.req.command == "QUIT"') == [14]
    assert frames_matching(path, "tcp.len > 0 && tcp.srcport == 25")[-1] == answer_frame


def test_quit_before_a_serverhello_with_the_220_and_the_hello_lost_is_unsure() -> None:
    """Was tls-not-started, the client's; the whole capture (quitcross-quit-before-answer.pcap)
    reads the client giving up at once after its ClientHello, which the lost ClientHello leaves
    unsure."""
    path = CAPTURES / "holes3-quit-before-answer-220-hello-lost.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == (*UNSURE, 13)
    assert _findings(conv) == [("tcp-gap", "capture", 13), ("tcp-gap", "capture", 14)]
    assert conv["detail"] == ("bytes of the server direction were lost (frame 13) during the TLS handshake, "
                              "before what ended it: who ended it cannot be told")
    _lost_220_and_hello(path, 16)
    head = _payload_head(path, 16, 6)   # a handshake record whose first message is a ServerHello
    assert head[:3] == b"\x16\x03\x03" and head[5] == 2


def test_quit_before_an_alert_with_the_220_and_the_hello_lost_stays_the_clients() -> None:
    """Control: the server's fatal alert may answer the QUIT: plaintext after the 220, as before."""
    path = CAPTURES / "holes3-quit-before-alert-220-hello-lost.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-not-started", None, 14)
    assert _findings(conv) == [("tcp-gap", "capture", 13), ("plaintext-after-starttls", "client", 14),
                               ("tcp-gap", "capture", 14)]
    _lost_220_and_hello(path, 16)
    assert _payload_head(path, 16, 7) == bytes([0x15, 3, 3, 0, 2, 2, 40])


def test_the_quit_before_answer_sweep_cut_is_unsure() -> None:
    """quitcross-quit-before-answer.pcap without the 220 (12) and the ClientHello (14), the two-loss
    sweep's cut (its strict xfail, e6, removed): unsure, where it read tls-not-started, the client's."""
    conv = _cut("quitcross-quit-before-answer.pcap", 12, 14)
    assert _verdict(conv) == (*UNSURE, 15)
    path = CAPTURES / "quitcross-quit-before-answer.pcap"
    assert frames_matching(path, "smtp.response.code == 220")[1:] == [12]
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert frames_matching(path, 'smtp.req.command == "QUIT"') == [16]
    assert frames_matching(path, "tls.handshake.type == 2") == [18]


def test_the_serverhello_read_whatever_its_segments() -> None:
    """The ServerHello's record header alone in a segment: the session waits for the handshake
    message's type before it decides."""
    s = SmtpSession()
    evs = s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n")
    evs += s.receive(S, b"250-mx\r\n250 STARTTLS\r\n") + s.receive(C, b"STARTTLS\r\n")
    evs += s.receive_gap(S, len(READY)) + s.receive_gap(C, 166) + s.receive(C, b"QUIT\r\n")
    hello = server_hello()
    for k in range(len(hello)):
        evs += s.receive(S, hello[k:k + 1])
    assert not any(isinstance(e, PlaintextAfterStartTls) for e in evs)
    assert any(type(e).__name__ == "TlsServerHello" for e in evs)


def test_a_lone_record_header_of_the_server_is_its_tls_when_nothing_follows() -> None:
    """The ServerHello's record header (or its first bytes) alone, then a hole of the server's, its
    end, or the client's end first (the capture's end, the client's FIN): the message type never
    comes. A server's TLS begins with a handshake record only as its ServerHello: the held QUIT is
    the client's TLS after its hole, as after a whole ServerHello; never a reply line, which left
    the QUIT out as a command injected after STARTTLS, nor plaintext owed after the 220."""
    for end in ("gap", "eof", "client-eof"):
        for k in (1, 3, 5):
            s = SmtpSession()
            evs = s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n")
            evs += s.receive(S, b"250-mx\r\n250 STARTTLS\r\n") + s.receive(C, b"STARTTLS\r\n")
            evs += s.receive_gap(S, len(READY)) + s.receive_gap(C, 166) + s.receive(C, b"QUIT\r\n")
            evs += s.receive(S, server_hello()[:k])
            if end == "gap":
                evs += s.receive_gap(S, 80) + s.receive_eof(C)
            elif end == "eof":
                evs += s.receive_eof(S) + s.receive_eof(C)
            else:
                evs += s.receive_eof(C, truncated=True) + s.receive_eof(S, truncated=True)
            assert not [e for e in evs if isinstance(e, (PlaintextAfterStartTls, Anomaly))], (end, k)


def test_quit_before_a_lone_header_with_the_rest_lost_is_unsure_and_no_injection() -> None:
    """The capture with only the answer's record header (frame 16, its 5 bytes): unsure as with the
    whole ServerHello, and no starttls-command-injection finding for the client's QUIT."""
    path = CAPTURES / "holes3-quit-before-header-220-hello-lost.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == (*UNSURE, 13)
    assert conv["detail"] == ("bytes of the server direction were lost (frame 13) during the TLS handshake, "
                              "before what ended it: who ended it cannot be told")
    assert _findings(conv) == [("tcp-gap", "capture", 13), ("tcp-gap", "capture", 14), ("tcp-gap", "capture", 18)]
    assert frames_matching(path, "tcp.analysis.lost_segment") == [13, 14, 19]
    assert frames_matching(path, 'smtp.req.command == "QUIT"') == [14]
    head = _payload_head(path, 16, 6)   # the record header alone in its segment
    assert head[:3] == b"\x16\x03\x03" and len(head) == 5


# ------------------------------------- a late start's first reply begun before the first command

def _replies(evs: list[Any]) -> list[tuple[int | None, bool, str | None]]:
    return [(e.code, e.greeting, e.answers.verb if e.answers else None) for e in evs if isinstance(e, Reply)]


def test_a_late_starts_first_reply_begun_before_the_ehlo_is_the_greeting() -> None:
    """A late start inside postscreen's pregreet wait: the greeting's 220- line, the client's EHLO,
    the 554 that ends the greeting: one reply (the code mismatch inside it flagged), the greeting,
    not the EHLO's answer (was: the 220- line a reply of its own, the 554 the EHLO's answer)."""
    s = SmtpSession(late_start=True)
    evs = s.receive(S, b"220-mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n") + s.receive(S, b"554 go away\r\n")
    assert _replies(evs) == [(554, True, None)]
    for code in (b"421", b"554"):
        s = SmtpSession(late_start=True)
        evs = s.receive(S, code + b"-mx\r\n") + s.receive(C, b"EHLO me\r\n") + s.receive(S, code + b" bye\r\n")
        assert _replies(evs) == [(int(code), True, None)], code


def test_a_late_starts_reply_begun_after_the_ehlo_still_answers_it() -> None:
    """Controls: the reply's first line after the EHLO, or a whole reply before it: the 554 answers
    the EHLO, as before."""
    s = SmtpSession(late_start=True)
    evs = s.receive(C, b"EHLO me\r\n") + s.receive(S, b"554 go away\r\n")
    assert _replies(evs) == [(554, False, "EHLO")]
    s = SmtpSession(late_start=True)
    evs = s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n") + s.receive(S, b"554 go away\r\n")
    assert _replies(evs)[-1] == (554, False, "EHLO")


def test_a_reply_splits_at_another_code_only_after_a_hole_inside_it() -> None:
    """A hole after a reply's first line, then a line of another code: that line starts the next
    reply (the first lost its end), as before; a hole before the reply's first line took nothing
    after it: another code is one reply."""
    s = SmtpSession()
    evs = s.receive(S, b"220 mx\r\n") + s.receive(C, b"EHLO me\r\n") + s.receive(S, b"250-mx\r\n")
    evs += s.receive_gap(S, 30) + s.receive(S, b"554 no\r\n")
    assert [(e.code, len(e.lines)) for e in evs if isinstance(e, Reply)][:2] == [(220, 1), (250, 1)]
    s = SmtpSession()
    evs = s.receive(S, b"220 mx\r\n") + s.receive(C, b"EHLO me\r\n") + s.receive_gap(S, 30)
    evs += s.receive(S, b"250-mx\r\n554 no\r\n")
    assert [(e.code, len(e.lines)) for e in evs if isinstance(e, Reply)] == [(220, 1), (554, 2)]


def test_the_pregreet_554_is_the_greeting() -> None:
    """The whole capture: greeting-refused at the 220- line; tshark: the 220- line in 4, the EHLO in
    6, the 554 in 8."""
    path = CAPTURES / "holes3-pregreet-554.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "greeting-refused", None, 4)
    assert _findings(conv) == []
    assert conv["detail"] == "the server's greeting refused the connection (554)"
    assert frames_matching(path, "smtp.response.code == 220") == [4]
    assert frames_matching(path, "smtp.response.code == 554") == [8]
    assert frames_matching(path, 'smtp.req.command == "EHLO"') == [6]
    ((cont,),) = tshark_fields(path, "frame.number == 4", "smtp.response.code")
    assert _payload_head(path, 4, 4) == b"220-" and cont == "220"


def test_the_pregreet_554_started_late_is_still_the_greeting() -> None:
    """The capture started at the client's handshake ACK (3) or at the 220- line (4): the same
    verdict as the whole capture (was ehlo-rejected: the 554 read as the EHLO's answer)."""
    cap = cuts.load(CAPTURES / "holes3-pregreet-554.pcap")
    for k in (3, 4):
        (conv,) = cuts.analyze(cuts.start_at(cap, k))
        assert _verdict(conv) == ("aborted", "server", "greeting-refused", None, 4), k
        assert [f["code"] for f in conv["findings"]] == ["midstream"], k


def test_the_ehlo_refused_with_554_stays_the_ehlos() -> None:
    """Control: after the whole greeting the 554 answers the EHLO, whole or started at the greeting."""
    path = CAPTURES / "holes3-ehlo-refused-554.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "ehlo-rejected", None, 8)
    assert frames_matching(path, "smtp.response.code == 554") == [8]
    assert frames_matching(path, 'smtp.req.command == "EHLO"') == [6]
    (cut,) = cuts.analyze(cuts.start_at(cuts.load(path), 4))
    assert (cut["outcome"], cut["reason"]) == ("incomplete", "incomplete")


def test_the_pregreet_554_after_a_lost_220_line_is_the_greeting() -> None:
    """The 220- line lost (the client's ACK in 4 covers it, before its EHLO in 5): the 554 after
    the EHLO is the greeting's last line, not the EHLO's answer (RFC 5321 4.3.2: 554 is no answer
    to EHLO). The verdict stays unsure: a hole before the greeting could hide what the server said
    first (analysis/verdict.py, greeting_whole)."""
    s = SmtpSession()
    evs = s.receive_gap(S, 26) + s.receive(C, b"EHLO me\r\n") + s.receive(S, b"554 go away\r\n")
    assert _replies(evs) == [(554, True, None)]
    for code in (b"421", b"250"):   # controls: answers to any command, or to EHLO
        s = SmtpSession()
        evs = s.receive_gap(S, 26) + s.receive(C, b"EHLO me\r\n") + s.receive(S, code + b" x\r\n")
        assert _replies(evs) == [(int(code), False, "EHLO")], code
    path = CAPTURES / "holes3-pregreet-554-first-line-lost.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == (*UNSURE, 5)
    assert _findings(conv) == [("tcp-gap", "capture", 5)]
    assert frames_matching(path, "tcp.analysis.ack_lost_segment")[:1] == [4]
    assert frames_matching(path, 'smtp.req.command == "EHLO"') == [5]
    assert frames_matching(path, "smtp.response.code == 554") == [7]


def test_a_late_starts_reply_begun_before_a_command_other_than_a_hello_is_no_greeting() -> None:
    """Control: a reply begun before a pipelined RCPT the capture starts with answers a command
    before the capture (nothing but the greeting comes before a hello, and this is no hello)."""
    s = SmtpSession(late_start=True)
    evs = s.receive(S, b"554-no\r\n") + s.receive(C, b"RCPT TO:<a@b>\r\n") + s.receive(S, b"554 no\r\n")
    assert not any(r[1] for r in _replies(evs))
