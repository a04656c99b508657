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
from pcapsmtp.smtp.events import PlaintextAfterStartTls
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
