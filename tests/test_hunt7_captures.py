"""What a capture that lost packets can still say about the server's answer to the ClientHello
(captures/scenarios_hunt7.py).

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


def _times(path: object, frames: list[int]) -> list[float]:
    flt = " || ".join(f"frame.number == {n}" for n in frames)
    return [float(t) for (t,) in tshark_fields(path, flt, "frame.time_relative")]


def _client_acks(path: object, port: int) -> list[int]:
    """tshark's tcp.ack of every segment of the client (source port ``port``)."""
    return [int(a) for (a,) in tshark_fields(path, f"tcp.srcport == {port}", "tcp.ack")]


def _end_of(path: object, frame: int) -> int:
    """tshark's relative sequence number after the bytes of ``frame``."""
    ((seq, length),) = tshark_fields(path, f"frame.number == {frame}", "tcp.seq", "tcp.len")
    return int(seq) + int(length)


def _unacked_detail(how: str, answer: str, covered: str) -> str:
    return (f"the server {how} the connection 60.0 s after {answer}, with nothing of the client since (its TLS "
            f"handshake timeout), but the client's acknowledgements in the capture {covered} and the server never "
            "sent it again: a TCP stack sends again what stays unacknowledged past its retransmission timeout "
            "(RFC 6298), so acknowledgements the capture lacks had reached the server, or the capture lacks its "
            "resends as well; whether the answer reached the client (which then never answered) or the path "
            "dropped it cannot be told")


@pytest.mark.parametrize("name, port, how, answer, flag, end", [
    ("hunt7-unacked-answer-capture-ends-at-server-fin.pcap", 48701, "closed",
     "the server's whole answer to its ClientHello (frame 16)", "tcp.flags.fin == 1", 17),
    ("hunt7-unacked-answer-tls13-server-resets.pcap", 48702, "reset",
     "the server's whole answer to its ClientHello (frame 16)", "tcp.flags.reset == 1", 17),
    ("hunt7-unacked-hrr-capture-ends-at-server-fin.pcap", 48703, "closed",
     "the server's HelloRetryRequest (frame 16), which asked for a second ClientHello", "tcp.flags.fin == 1", 17),
])
def test_a_servers_close_after_an_answer_no_captured_ack_covers_and_it_never_resent_is_incomplete(
        name: str, port: int, how: str, answer: str, flag: str, end: int) -> None:
    """The server's whole answer (TLS 1.2 to its ServerHelloDone, TLS 1.3 to its Finished, a
    HelloRetryRequest), no ACK of the client's after it, no retransmission of it; the server's
    handshake timeout closes or resets 60 s later and the capture ends there. It read the
    server's ("closed the connection after the ServerHello"): a stack that never resent its
    answer for 60 s had acknowledgements the capture lacks (or the capture lacks its resends):
    incomplete, as the capture that goes on to the client's late acknowledgement reads."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, end)
    assert _findings(conv) == []
    assert conv["detail"] == _unacked_detail(how, answer, "never covered a byte of it")
    # tshark: the answer in 16, the server's end in 17 and the last frame, 60 s later; no segment of
    # the client's after its ClientHello (14), none of whose ACKs reaches into the answer; no
    # retransmission anywhere
    hello = "tls.handshake.type == 2" if "hrr" not in name else "tls.handshake.random == " \
        "cf:21:ad:74:e5:9a:61:11:be:1d:8c:02:1e:65:b8:91:c2:a2:11:16:7a:bb:8c:5e:07:9e:09:e2:c8:a8:33:9c"
    assert frames_matching(path, hello) == [16]
    assert frames_matching(path, flag) == [17]
    assert frames_matching(path, "frame")[-1] == 17
    assert max(int(n) for (n,) in tshark_fields(path, f"tcp.srcport == {port}", "frame.number")) == 14
    ((start,),) = tshark_fields(path, "frame.number == 16", "tcp.seq")
    assert max(_client_acks(path, port)) <= int(start)
    assert frames_matching(path, "tcp.analysis.retransmission") == []
    t16, t17 = _times(path, [16, 17])
    assert t17 - t16 == pytest.approx(60.0, abs=0.01)
    if "tls13" in name:
        ((lengths,),) = tshark_fields(path, "frame.number == 16", "tls.record.length")
        assert lengths.endswith(",53")      # (the Finished: the flight is whole)
    elif "hrr" not in name:
        assert frames_matching(path, "tls.handshake.type == 14") == [16]


def test_a_half_acknowledged_answer_is_incomplete_too() -> None:
    """The client's ACK covers the ServerHello and the Certificate (their own segment), not the
    ServerKeyExchange and the ServerHelloDone; no resend; the server's FIN 60 s later ends the
    capture: the rest of the client's ACKs are missing the same way."""
    name = "hunt7-half-acked-answer-capture-ends-at-server-fin.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, 19)
    assert _findings(conv) == []
    assert conv["detail"] == _unacked_detail("closed", "the server's whole answer to its ClientHello (frames 16 to 18)",
                                             "covered only its first 791 of 913 bytes")
    # tshark: ServerHello and Certificate in 16, acknowledged whole in 17; the ServerHelloDone in
    # 18, never acknowledged; the FIN in 19, 60 s after it
    assert frames_matching(path, "tls.handshake.type == 11") == [16]
    assert frames_matching(path, "tls.handshake.type == 14") == [18]
    assert max(_client_acks(path, 48704)) == _end_of(path, 16)
    ((start,),) = tshark_fields(path, "frame.number == 16", "tcp.seq")
    assert _end_of(path, 16) - int(start) == 791 and _end_of(path, 18) - int(start) == 913
    assert frames_matching(path, "tcp.flags.fin == 1") == [19]
    assert frames_matching(path, "tcp.analysis.retransmission") == []
    t18, t19 = _times(path, [18, 19])
    assert t19 - t18 == pytest.approx(60.0, abs=0.01)


def test_a_late_start_reads_the_same() -> None:
    """The capture joins at the client's STARTTLS (no SYN, no greeting, no EHLO reply): the same
    reading, with the late start's finding."""
    name = "hunt7-unacked-answer-late-start.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, 8)
    assert _findings(conv) == [("midstream", "capture", 1)]
    assert conv["starttls"]["offered"] == "unknown"
    assert conv["detail"] == _unacked_detail("closed", "the server's whole answer to its ClientHello (frame 7)",
                                             "never covered a byte of it")
    assert frames_matching(path, "tcp.flags.syn == 1") == []
    assert frames_matching(path, "smtp.req.command") == [1]
    assert frames_matching(path, "tls.handshake.type == 14") == [7]
    assert frames_matching(path, "tcp.flags.fin == 1") == [8]
    ((start,),) = tshark_fields(path, "frame.number == 7", "tcp.seq")
    assert max(_client_acks(path, 48705)) <= int(start)


def test_the_controls_read_as_before() -> None:
    """The same shape read otherwise when the capture says more: the server's resends, with no
    ACK ever, show the path dropped the answer (middlebox, answer-lost); an answer stopped before
    its ServerHelloDone is the server's stall whatever became of the ACKs; a close 10 ms after the
    answer is the server's, no wait."""
    name = "hunt7-unacked-answer-resent-capture-ends-at-server-fin.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "answer-lost", 16)
    assert _findings(conv) == [("answer-not-received", "middlebox", 16)]
    assert frames_matching(path, "tcp.analysis.retransmission") == [17, 18, 19, 20]
    assert frames_matching(path, "tcp.flags.fin == 1") == [21]
    assert max(_client_acks(path, 48706)) <= _end_of(path, 15)

    name = "hunt7-unacked-partial-answer-capture-ends-at-server-fin.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", None, 17)
    assert conv["detail"] == "the server closed the connection after the ServerHello, before the handshake completed"
    assert frames_matching(path, "tls.handshake.type == 12") == [16]
    assert frames_matching(path, "tls.handshake.type == 14") == []
    assert frames_matching(path, "tcp.flags.fin == 1") == [17]

    name = "hunt7-unacked-answer-server-closes-at-once.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", None, 17)
    t16, t17 = _times(path, [16, 17])
    assert t17 - t16 == pytest.approx(0.01, abs=0.001)
    assert frames_matching(path, "tls.handshake.type == 14") == [16]


def _quit_detail(ms: int, rest: str, tail: str, acked: str = "") -> str:
    return (f"the client sent 'QUIT' in the clear (frame 18) {ms} ms after the server's last record (frame 16{acked}), "
            f"in the middle of the TLS handshake{rest}, then closed the connection (frame 19): it gave up on TLS at "
            f"once{tail}")


@pytest.mark.parametrize("name, port, rest, tail, quit_at, acked", [
    ("hunt7-stall-client-quit-in-clear-at-once.pcap", 48711,
     ", before the rest of the server's answer to its ClientHello (no ServerHelloDone so far) could come",
     ", without waiting for the rest", 0.006, ""),
    ("hunt7-stall-client-quit-in-clear-at-once-tls13.pcap", 48712,
     ", before the rest of the server's answer to its ClientHello (no Finished so far) could come",
     ", without waiting for the rest", 0.006, ""),
    ("hunt7-whole-answer-client-quit-in-clear-at-once.pcap", 48713,
     ", with the server's whole answer to its ClientHello in hand", "", 0.006, ""),
    ("hunt7-stall-client-quit-in-clear-after-late-ack.pcap", 48714,
     ", before the rest of the server's answer to its ClientHello (no ServerHelloDone so far) could come",
     ", without waiting for the rest", 1.2, "; 5 ms after the client's TCP acknowledged it"),
])
def test_a_client_that_speaks_plaintext_at_once_in_the_handshake_gave_up_itself(
        name: str, port: int, rest: str, tail: str, quit_at: float, acked: str) -> None:
    """QUIT in the clear 5 ms after the client had the server's answer (its ACK), the close 1.5 s
    later. With the answer stopped short of whole it read the server's (server-silent: the wait
    was counted to the close, the plaintext's time not known): the client did not wait for the
    rest, its own decision, at its QUIT. With the answer whole it read "closed the connection
    after the ServerHello", the QUIT unnamed. On a long path (the ACK 1.195 s after the answer)
    the QUIT 1.2 s after the answer by the capture's clock is still at once."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
    assert _findings(conv) == []
    assert conv["detail"] == _quit_detail(round(quit_at * 1000), rest, tail, acked)
    # tshark: the answer in 16, the client's ACK of all of it in 17, QUIT in 18 (no TLS), the
    # client's FIN in 19, 1.5 s later; the server sends nothing after 16
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    ((seq, length),) = tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len")
    ((ack,),) = tshark_fields(path, "frame.number == 17", "tcp.ack")
    assert int(ack) == int(seq) + int(length)
    assert frames_matching(path, f'tcp.srcport == {port} && tcp.payload contains "QUIT"') == [18]
    assert frames_matching(path, f"tcp.srcport == {port} && tls") == [14]
    assert frames_matching(path, "tcp.flags.fin == 1") == [19]
    assert max(int(n) for (n,) in tshark_fields(path, "tcp.srcport == 25 && tcp.len > 0", "frame.number")) == 16
    t16, t17, t18, t19 = _times(path, [16, 17, 18, 19])
    assert t18 - t16 == pytest.approx(quit_at, abs=0.001)
    assert t18 - t17 == pytest.approx(0.005, abs=0.0005)
    assert t19 - t18 == pytest.approx(1.5, abs=0.001)
    if "whole" in name:
        assert frames_matching(path, "tls.handshake.type == 14") == [16]
    elif "tls13" not in name:
        assert frames_matching(path, "tls.handshake.type == 12") == [16]
        assert frames_matching(path, "tls.handshake.type == 14") == []


def test_a_client_that_waited_before_its_plaintext_still_waited_for_a_stalled_server() -> None:
    """The control: QUIT in the clear 1.2 s after the acknowledged partial answer (a second or
    more), the close 1.5 s after: the server's stall, as real20-stall-client-quit-in-clear.pcap
    after 30 s."""
    name = "hunt7-stall-client-quit-in-clear-after-1-2-s.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 16)
    assert _findings(conv) == [("no-answer", "server", 16)]
    assert conv["detail"] == ("the server's answer to the ClientHello stopped short of its ServerHelloDone (frame 16, "
                              "which the client acknowledged) and the server sent nothing more for 2.7 s: the client "
                              "gave up waiting for the rest and sent 'QUIT' in the clear (frame 18), then closed the "
                              "connection (frame 19)")
    assert frames_matching(path, 'tcp.srcport == 48715 && tcp.payload contains "QUIT"') == [18]
    t16, t18 = _times(path, [16, 18])
    assert t18 - t16 == pytest.approx(1.201, abs=0.001)


def test_a_lone_change_cipher_spec_is_named_as_what_it_is() -> None:
    """TLS 1.2: the client's ChangeCipherSpec alone (no key exchange, no Finished), before the
    server's ServerHelloDone, acknowledged; the client's close 30 s later. The verdict stays the
    server's (server-silent); its detail said "after the client's Finished (frame 18)", a record the
    client never sent."""
    name = "hunt7-lone-ccs-before-server-hello-done.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 18)
    assert _findings(conv) == [("no-answer", "server", 18)]
    assert conv["detail"] == ("the server sent nothing for 30.0 s after the client's ChangeCipherSpec (frame 18), a "
                              "lone record (no Finished after it, sent before the server's ServerHelloDone), which it "
                              "had acknowledged: the client gave up waiting and closed the connection (frame 20)")
    assert "Finished (frame" not in conv["findings"][0]["message"]
    # tshark: the answer in 16 without a ServerHelloDone, the client's CCS in 18 and no other TLS
    # record of the client after its ClientHello, the server's ACK of it in 19, the FIN in 20
    assert frames_matching(path, "tls.handshake.type == 12") == [16]
    assert frames_matching(path, "tls.handshake.type == 14") == []
    assert frames_matching(path, "tcp.srcport == 48716 && tls") == [14, 18]
    assert frames_matching(path, "tls.record.content_type == 20") == [18]
    assert _end_of(path, 18) == _client_acks_of(path, 19)
    assert frames_matching(path, "tcp.flags.fin == 1") == [20]
    t18, t20 = _times(path, [18, 20])
    assert t20 - t18 == pytest.approx(30.0, abs=0.01)


def _client_acks_of(path: object, frame: int) -> int:
    ((ack,),) = tshark_fields(path, f"frame.number == {frame}", "tcp.ack")
    return int(ack)
