"""captures/scenarios_clockack.py: the time the client's acknowledgement of the server's bytes last
advanced (``Transcript.server_acked_ns``) is on the continuous timeline of a capture clock that
steps back, as every other time the hung-client rules compare it with (``Analyzer._continuous_ends``
maps it by its frame, ``FlowClosed.server_acked_frame``). Frames and times cross-checked with
tshark."""
from __future__ import annotations

import pytest

from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from pcapsmtp.engine.analyzer import analyze_path


def _times(path: object, frames: list[int]) -> list[float]:
    flt = " || ".join(f"frame.number == {n}" for n in frames)
    return [float(t) for (t,) in tshark_fields(path, flt, "frame.time_epoch")]


def _answer_end(path: object, frame: int) -> int:
    """The relative sequence number after the server's answer in ``frame`` (ServerHello to
    ServerHelloDone), as tshark reads it."""
    assert frames_matching(path, "tls.handshake.type == 2") == [frame]
    assert frames_matching(path, "tls.handshake.type == 14") == [frame]
    ((seq, length),) = tshark_fields(path, f"frame.number == {frame}", "tcp.seq", "tcp.len")
    return int(seq) + int(length)


def _client_acks_of_answer(path: object, port: int, frame: int) -> list[int]:
    """The client's frames whose ACK covers the whole answer in ``frame``."""
    end = _answer_end(path, frame)
    return [int(n) for n, a in tshark_fields(path, f"tcp.srcport == {port}", "frame.number", "tcp.ack")
            if int(a) >= end]


def test_an_acknowledgement_after_a_step_is_on_the_continuous_timeline() -> None:
    """The clock stepped back an hour before the second conversation; its client acknowledges the
    server's whole answer 1.2 s after it and closes 5 ms later: it closed as soon as it had the
    answer (was: client-silent, the acknowledgement's stamp an hour before the answer, the wait
    counted from the answer)."""
    path = CAPTURES / "clockack-step-before-late-answer.pcap"
    first, second = analyze_path(str(path))
    assert _verdict(first) == ("plaintext", "client", "client-did-not-request", None, 10)
    assert _verdict(second) == ("aborted", "client", "tls-handshake-failed", None, 50)
    assert _findings(second) == []
    assert second["detail"] == ("the client closed the connection after the ServerHello, before the handshake "
                                "completed")
    # tshark: the second conversation's SYN (frame 33) is stamped an hour before the first's last
    # frame (32); the answer in 48, the client's first ACK of it in 49, 1.2 s later, its FIN in
    # 50, 5 ms after that
    assert frames_matching(path, "tcp.flags.syn == 1 && tcp.flags.ack == 0") == [1, 33]
    t32, t33 = _times(path, [32, 33])
    assert t32 - t33 == pytest.approx(3600.0, abs=0.01)
    assert _client_acks_of_answer(path, 48702, 48) == [49, 50]
    assert frames_matching(path, "tcp.srcport == 48702 && tcp.flags.fin == 1") == [50]
    t48, t49, t50 = _times(path, [48, 49, 50])
    assert t49 - t48 == pytest.approx(1.2, abs=0.001)
    assert t50 - t49 == pytest.approx(0.005, abs=0.0001)


def test_an_acknowledgement_before_the_step_keeps_its_time() -> None:
    """The answer acknowledged at once, the server's timeout 60 s later, the clock stepping back
    an hour at the client's FIN 5 s after: the acknowledgement came before the client's close
    under any pause at the step, the client's (client-silent), with the clock-step finding."""
    path = CAPTURES / "clockack-step-after-answer-acked.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 18)
    assert _findings(conv) == [("client-silent", "client", 16), ("clock-step", "capture", 19)]
    assert conv["detail"] == (
        "the client acknowledged the server's whole answer to its ClientHello (frame 16) and sent nothing for "
        "60.0 s: the server gave up waiting for the client's side of the handshake and closed the connection "
        "(frame 18); the client then closed its side without having sent anything (frame 19)")
    # tshark: the answer in 16, the client's ACK of it in 17, the server's FIN in 18, 60 s later,
    # the client's FIN in 19, stamped an hour (less 5 s) before it
    assert _client_acks_of_answer(path, 48703, 16) == [17, 19]
    assert frames_matching(path, "tcp.flags.fin == 1") == [18, 19]
    t16, t17, t18, t19 = _times(path, [16, 17, 18, 19])
    assert t17 - t16 == pytest.approx(0.001, abs=0.0001)
    assert t18 - t16 == pytest.approx(60.0, abs=0.01)
    assert t18 - t19 == pytest.approx(3600.0 - 5.0, abs=0.01)


def test_an_acknowledgement_at_the_step_moves_with_its_frame_in_every_reading() -> None:
    """The answer acknowledged 1.2 s after it, where the capture's clock steps back an hour, the
    client's FIN 5 ms later: every reading of the pause at the step moves the acknowledgement with
    its frame, as it moves the close, so every one reads the client closing as soon as it had the
    answer (the general rule, no case), with the clock-step finding at the acknowledgement (found by
    the review: the readings with another pause than the default kept the acknowledgement's time,
    read client-silent, and the verdict was incomplete)."""
    path = CAPTURES / "clockack-step-at-late-ack.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
    assert _findings(conv) == [("clock-step", "capture", 17)]
    assert conv["detail"] == ("the client closed the connection after the ServerHello, before the handshake "
                              "completed")
    # tshark: the answer in 16, the client's first ACK of it in 17 stamped an hour (less 1.2 s)
    # before it, the client's FIN in 18, 5 ms after the ACK
    assert _client_acks_of_answer(path, 48704, 16) == [17, 18]
    assert frames_matching(path, "tcp.flags.fin == 1") == [18]
    t16, t17, t18 = _times(path, [16, 17, 18])
    assert t16 - t17 == pytest.approx(3600.0 - 1.2, abs=0.001)
    assert t18 - t17 == pytest.approx(0.005, abs=0.0001)
