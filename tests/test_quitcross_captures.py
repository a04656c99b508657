"""captures/scenarios_quitcross.py: a client's plaintext in the middle of the TLS handshake where
the two directions' times do not tell the order on one clock (analysis/verdict.py,
``_had_answer_ns``, ``_spoke_clear_at_once``, ``_answer_not_received``). Frames cross-checked with
tshark."""
from __future__ import annotations

import pytest

from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict


def _times(path: object, frames: list[int]) -> list[float]:
    flt = " || ".join(f"frame.number == {n}" for n in frames)
    return [float(t) for (t,) in tshark_fields(path, flt, "frame.time_relative")]


def _quit_frames(path: object) -> list[int]:
    return frames_matching(path, 'tcp.payload == "QUIT\\r\\n"')


def test_a_client_tap_behind_does_not_shorten_the_clients_wait() -> None:
    """The QUIT 1.2 s after the client acknowledged the partial answer, on merged taps whose client
    side runs 300 ms behind: the wait is counted from the client's acknowledgement, on its own
    clock, so the client waited and the server that stalled is blamed (found by the review: the
    server's stamp of its record against the client's QUIT read "901 ms after", the client's)."""
    path = CAPTURES / "quitcross-stall-quit-1-2-s-client-tap-behind.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 17)
    assert _findings(conv) == [("no-answer", "server", 17)]
    # tshark (which takes the skewed server segments for spurious retransmissions and does not
    # dissect their TLS, so the record is matched by its bytes): the server's partial answer in 17
    # (a handshake record opening with a ServerHello, no ServerHelloDone anywhere), the QUIT in 18
    # only 0.9 s after it by the merged stamps, the client's ACK of the answer on it
    assert frames_matching(path, "tcp.payload[0] == 0x16 && tcp.payload[5] == 0x02") == [17]
    assert frames_matching(path, "tcp.payload contains 0e:00:00:00") == []
    assert _quit_frames(path) == [18]
    t17, t18 = _times(path, [17, 18])
    assert t18 - t17 == pytest.approx(0.901, abs=0.001)
    ((seq, length),) = tshark_fields(path, "frame.number == 17", "tcp.seq", "tcp.len")
    ((ack,),) = tshark_fields(path, "frame.number == 18", "tcp.ack")
    assert int(ack) == int(seq) + int(length)


def test_a_quit_that_crossed_a_late_answer_is_not_read_as_sent_with_it_in_hand() -> None:
    """The whole answer 30 s after the ClientHello, the client's QUIT 5 ms after it acknowledging
    none of it (sent before it arrived): no claim that the client had the answer in hand (found by
    the review: "with the server's whole answer to its ClientHello in hand"). The QUIT's own
    segment shows the client had nothing of the server's 30 s after its ClientHello, and its close
    acknowledged the whole answer (it crossed the QUIT, it was not lost): the client gave up waiting
    on a server that had sent nothing, the server's (server-silent), as a QUIT filed before the
    answer reads (the client's tap 25 ms behind, which the skew sweep found); it read the general
    rule's, the client's at its close, keeping the crossed answer as what the client had."""
    path = CAPTURES / "quitcross-late-answer-crossed-quit.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 14)
    assert _findings(conv) == [("no-answer", "server", 14)]
    assert conv["detail"] == (
        "the server sent nothing for 30.0 s after the ClientHello: the client gave up waiting and sent 'QUIT' in the "
        "clear (frame 17), then closed the connection (frame 18); the server's answer (frame 16) crossed the "
        "plaintext, whose segment acknowledged none of it")
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    # tshark: the answer in 16, 30 s after the ClientHello (14); the QUIT in 17 acknowledges only
    # up to the answer's first byte; the FIN in 18 acknowledges the answer
    assert frames_matching(path, "tls.handshake.type == 14") == [16]
    assert _quit_frames(path) == [17]
    t14, t16 = _times(path, [14, 16])
    assert t16 - t14 == pytest.approx(30.0, abs=0.01)
    ((seq, length),) = tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len")
    acks = {int(n): int(a) for n, a in tshark_fields(path, "frame.number == 17 || frame.number == 18",
                                                      "frame.number", "tcp.ack")}
    assert acks == {17: int(seq), 18: int(seq) + int(length)}


def test_a_quit_in_the_clear_does_not_hide_an_answer_the_path_dropped() -> None:
    """The whole answer resent three times and never acknowledged; the client's QUIT in the clear
    30 s later: the plaintext is no TLS of the client's, the path dropped the answer (found by the
    review: the QUIT counted as the client's answer, "closed the connection after the
    ServerHello")."""
    path = CAPTURES / "quitcross-answer-lost-quit-after-30s.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "answer-lost", 16)
    assert _findings(conv) == [("answer-not-received", "middlebox", 16)]
    # tshark: the answer in 16, resent in 17-19; the client's QUIT in 20 and its FIN in 22
    # acknowledge none of it, the server's ACKs of them (21, 23) carry the sequence number after it
    assert frames_matching(path, "tcp.analysis.retransmission") == [17, 18, 19]
    assert _quit_frames(path) == [20]
    ((seq, length),) = tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len")
    assert [int(a) for (a,) in tshark_fields(path, "tcp.srcport == 48803 && frame.number >= 20", "tcp.ack")] == [
        int(seq), int(seq)]
    assert [int(s) for (s,) in tshark_fields(path, "tcp.srcport == 25 && frame.number > 20", "tcp.seq")] == [
        int(seq) + int(length)] * 2


def test_a_quit_at_once_after_an_answer_the_path_dropped_is_the_clients() -> None:
    """The answer resent three times and never acknowledged, the client's QUIT 5 ms after its first
    copy: the client gave up at once, before the answer could reach it, as after a ClientHello
    never answered (hunt8); the detail does not say it had the answer in hand (found by the second
    review: the path's, once the plaintext stopped counting as the client's answer). The QUIT's own
    segment acknowledges none of the answer (it crossed it, ``_plaintext_had``), 16 ms after the
    ClientHello, and no later segment of the client's acknowledges any of it (``_never_had``): the
    client gave up with no answer at all, at its QUIT, not at its close 37 s later (the general rule
    read it so, "closed the connection after the ServerHello", a ServerHello the client never had;
    hunt9-quit-crossed-answer-rest-after-it.pcap, whose client acknowledged the answer after its
    QUIT and closed with it in hand, keeps the general rule)."""
    path = CAPTURES / "quitcross-answer-lost-quit-at-once.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 17)
    assert _findings(conv) == []
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 17) 16 ms after its ClientHello (frame 14), before any answer "
        "of the server's had reached it (its segment acknowledged none of frame 16, which crossed it, nor did any "
        "later one): it gave up on TLS at once, without waiting for the server's answer, then closed the "
        "connection (frame 22)")
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    t14, t17 = _times(path, [14, 17])
    assert t17 - t14 == pytest.approx(0.016, abs=0.0001)
    # tshark: the answer in 16, resent in 19-21; the QUIT in 17, 5 ms after the first copy,
    # acknowledging none of it; the client's FIN in 22
    assert frames_matching(path, "tcp.analysis.retransmission") == [19, 20, 21]
    assert _quit_frames(path) == [17]
    t16, t17 = _times(path, [16, 17])
    assert t17 - t16 == pytest.approx(0.005, abs=0.0001)
    ((seq,),) = tshark_fields(path, "frame.number == 16", "tcp.seq")
    assert [int(a) for (a,) in tshark_fields(path, "tcp.srcport == 48804 && frame.number >= 17", "tcp.ack")] == [
        int(seq), int(seq)]


def test_a_quit_after_a_lost_clienthello_is_timed_once_in_the_detail() -> None:
    """The ClientHello resent twice and never acknowledged, the client's QUIT 5 ms after the last
    copy, its close 30 s later: the path's (hello-lost), the detail giving the QUIT's time once
    (found by the second review: "33.0 s after it the client gave up waiting and sent 'QUIT' ...
    3.0 s after it")."""
    path = CAPTURES / "quitcross-hello-resent-quit-after-last-resend.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "hello-lost", 14)
    assert _findings(conv) == [("request-not-received", "middlebox", 14)]
    assert conv["detail"] == (
        "the ClientHello never reached the server: the client sent it again (a TCP retransmission) and no "
        "segment of the server came back; the client gave up waiting and sent 'QUIT' in the clear (frame 17) "
        "3.0 s after it, then closed the connection (frame 18) (a path MTU black hole, a box that drops the "
        "client's TLS)")
    # tshark: the ClientHello in 14, resent in 15 and 16; the QUIT in 17, 3.005 s after it
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert frames_matching(path, "tcp.analysis.retransmission") == [15, 16]
    assert _quit_frames(path) == [17]
    t14, t17 = _times(path, [14, 17])
    assert t17 - t14 == pytest.approx(3.005, abs=0.0001)


def test_a_quit_before_the_answer_is_giving_up_at_once_whatever_came_after() -> None:
    """The client's QUIT 6 ms after its ClientHello, the server's whole answer 40 ms after it,
    the close 30 s later: the client gave up at once, before any answer (found by the second
    review: client-silent, "without a word", the rule for plaintext soon after a ClientHello
    stopping at the ServerHello before the close)."""
    path = CAPTURES / "quitcross-quit-before-answer.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 16)
    assert _findings(conv) == []
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 16) 6 ms after its ClientHello (frame 14), before any answer "
        "of the server's, then closed the connection (frame 20): it gave up on TLS at once, without waiting for "
        "the server's answer")
    # tshark: the ClientHello in 14, the QUIT in 16, the server's answer in 18, 41 ms after the
    # QUIT, the client's FIN in 20, 30 s after the answer
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert _quit_frames(path) == [16]
    assert frames_matching(path, "tls.handshake.type == 2") == [18]
    assert frames_matching(path, "tcp.flags.fin == 1") == [20]
    t14, t16, t18 = _times(path, [14, 16, 18])
    assert t16 - t14 == pytest.approx(0.006, abs=0.0001)
    assert t18 - t16 == pytest.approx(0.041, abs=0.0001)
