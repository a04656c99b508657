"""captures/scenarios_acktime.py: the client is blamed for hanging after the server's whole TLS
answer only when its TCP acknowledged that answer a second or more before the server's handshake
timeout closed (``FlowClosed.server_acked_ns``; analysis/verdict.py,
``_server_gave_up_on_client_flight``). Frames cross-checked with tshark."""
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


def _answer_end(path: object) -> int:
    """The relative sequence number after the server's answer (frame 16: ServerHello to
    ServerHelloDone), as tshark reads it."""
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    assert frames_matching(path, "tls.handshake.type == 14") == [16]
    ((seq, length),) = tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len")
    return int(seq) + int(length)


def _client_acks_of_answer(path: object, port: int) -> list[int]:
    """The client's frames whose ACK covers the whole answer."""
    end = _answer_end(path)
    return [int(n) for n, a in tshark_fields(path, f"tcp.srcport == {port}", "frame.number", "tcp.ack")
            if int(a) >= end]


def test_a_client_whose_first_ack_of_the_answer_rides_on_its_late_close_is_not_blamed() -> None:
    """No ACK of the answer until the client's FIN, 5 s after the server's: nothing shows the
    client had the answer while the server waited (it was the client's, client-silent)."""
    path = CAPTURES / "acktime-answer-acked-at-client-close.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, 17)
    assert _findings(conv) == []
    assert conv["detail"] == (
        "the server closed the connection 60.0 s after the server's answer to its ClientHello (frame 16), with "
        "nothing of the client since (its TLS handshake timeout), but the client's TCP acknowledged all of it "
        "only with its own close (frame 18), after the server's (frame 17): whether the answer had reached the "
        "client while the server waited cannot be told (a stack acknowledges within 500 ms of receiving)")
    # tshark: the server's FIN in 17, the client's first ACK of the answer is its FIN in 18, 5 s later
    assert frames_matching(path, "tcp.flags.fin == 1") == [17, 18]
    assert _client_acks_of_answer(path, 48601) == [18]
    t17, t18 = _times(path, [17, 18])
    assert t18 - t17 == pytest.approx(5.0, abs=0.01)


def test_a_client_whose_first_ack_of_the_answer_also_acks_the_servers_fin_is_not_blamed() -> None:
    """The usual stack's shape: no ACK of the answer until the client acknowledges the server's
    FIN at once, an ACK covering the answer and the FIN, sent only once the FIN had arrived; the
    client's own FIN 5 s later. Nothing shows the client had the answer while the server waited
    (found by the review: client-silent, "its TCP acknowledged it 60.0 s after it")."""
    path = CAPTURES / "acktime-first-ack-covers-server-fin.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, 17)
    assert _findings(conv) == []
    assert conv["detail"] == (
        "the server closed the connection 60.0 s after the server's answer to its ClientHello (frame 16), with "
        "nothing of the client since (its TLS handshake timeout), but the client's TCP acknowledged all of it "
        "only with its acknowledgement of the server's close (frame 17): whether the answer had reached the client "
        "while the server waited cannot be told (a stack acknowledges within 500 ms of receiving)")
    # tshark: the server's FIN in 17, the client's first ACK of the answer in 18 also acknowledges
    # that FIN (its ACK is one past the answer), the client's FIN in 19
    assert frames_matching(path, "tcp.flags.fin == 1") == [17, 19]
    assert _client_acks_of_answer(path, 48604) == [18, 19]
    ((ack,),) = tshark_fields(path, "frame.number == 18", "tcp.ack")
    assert int(ack) == _answer_end(path) + 1


def test_an_ack_of_the_answer_seconds_before_the_servers_close_is_the_clients() -> None:
    """The client's first ACK of the answer 2 s before the server's FIN (58 s after the answer):
    it had the whole answer and sent nothing: the client's, as when it acknowledges at once
    (hunt5-client-hangs-after-answer.pcap), the detail saying when it acknowledged."""
    path = CAPTURES / "acktime-answer-acked-2s-before-server-close.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 18)
    assert _findings(conv) == [("client-silent", "client", 16)]
    assert conv["detail"] == (
        "the client acknowledged the server's whole answer to its ClientHello (frame 16) (its TCP acknowledged "
        "it 58.0 s after it) and sent nothing for 60.0 s: the server gave up waiting for the client's side of "
        "the handshake and closed the connection (frame 18); the client then closed its side without having "
        "sent anything (frame 19)")
    assert frames_matching(path, "tcp.flags.fin == 1") == [18, 19]
    assert _client_acks_of_answer(path, 48603) == [17, 19]
    t16, t17, t18 = _times(path, [16, 17, 18])
    assert t18 - t17 == pytest.approx(2.0, abs=0.001)
    assert t17 - t16 == pytest.approx(58.0, abs=0.01)
