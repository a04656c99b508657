"""captures/scenarios_merged24.py: the client's bytes the capture lost after its ClientHello, where
the path dropped the server's answer (analysis/verdict.py ``_answer_hole_lost``). Frames
cross-checked with tshark."""
from __future__ import annotations

from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict


def test_a_lost_byte_of_the_client_after_its_clienthello_leaves_the_lost_answer_unsure() -> None:
    """quitcross-answer-lost-quit-at-once.pcap without its answer (and its three resends) and its
    QUIT: the server's 913 bytes after the ClientHello are a hole the client never acknowledged, its
    close 37 s later; and 6 bytes of the client after its ClientHello, which the server acknowledged
    1 ms after its answer's place, are a hole too. Whether those were the client giving up at once (its
    QUIT 16 ms after the ClientHello, the whole capture: the client's) or anything else (a TLS 1.3
    compatibility ChangeCipherSpec is 6 bytes too) cannot be told: incomplete, not the path's
    (answer-lost, which it read, as a client that sent nothing after its ClientHello)."""
    name = "merged24-answer-lost-quit-lost-at-once.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, 17)
    assert _findings(conv) == [("tcp-gap", "capture", 16), ("tcp-gap", "capture", 17)]
    assert conv["detail"] == ("bytes of the client direction were lost (frame 17) during the TLS handshake, "
                              "before what ended it: who ended it cannot be told")
    assert conv["starttls"]["reply_code"] == 220
    assert conv["tls"]["client_hello_frame"] == 14
    assert conv["tls"]["server_hello_frame"] is None
    assert "tlsrpt_result" not in conv
    # tshark: the ClientHello in 14; the server's ACK in 16 carries a sequence number 913 bytes past
    # its last captured byte and acknowledges 6 bytes of the client past the ClientHello; the
    # client's FIN in 17, 37 s later, past those 6 bytes and acknowledging none of the server's 913
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert frames_matching(path, "tcp.analysis.lost_segment") == [16, 17]
    assert frames_matching(path, "tcp.analysis.ack_lost_segment") == [16, 18]
    ((seq15, ack15),) = tshark_fields(path, "frame.number == 15", "tcp.seq", "tcp.ack")
    ((seq16, ack16),) = tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.ack")
    assert int(seq16) - int(seq15) == 913
    assert int(ack16) - int(ack15) == 6
    ((ack17, t17),) = tshark_fields(path, "frame.number == 17", "tcp.ack", "frame.time_relative")
    assert int(ack17) == int(seq15)
    assert frames_matching(path, "tcp.flags.fin == 1") == [17]
    ((t14,),) = tshark_fields(path, "frame.number == 14", "frame.time_relative")
    assert 37.0 < float(t17) - float(t14) < 37.1


def test_the_capture_with_its_quit_still_reads_the_client_giving_up_at_once() -> None:
    """The control: the same conversation whole (its answer resent in vain, its QUIT 16 ms after the
    ClientHello, crossing the answer, no segment of the client's ever acknowledging any of it): the
    client gave up at once with no answer at all, at its QUIT (``_never_had``)."""
    conv = _conv("quitcross-answer-lost-quit-at-once.pcap")
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 17)
    assert _findings(conv) == []


def test_an_answer_resent_after_the_quit_is_not_the_servers_silence() -> None:
    """The server's answer 200 ms after the ClientHello (frame 16), its first copy lost on the path
    and sent again (frame 18, tshark's retransmission) after the client's QUIT in the clear (frame 17,
    1.1 s after the ClientHello, acknowledging none of the answer); the client's close (frame 20)
    acknowledges it whole. The answer crossed the QUIT because its first copy was lost, not because
    the server was silent (``verdict._answer_came_late``): the general rule, the client's, at its
    close. It read server-silent ("the server sent nothing for 1.1 s") before the session's review."""
    name = "merged24-answer-resent-after-quit.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 20)
    assert _findings(conv) == []
    assert conv["detail"] == "the client closed the connection after the ServerHello, before the handshake completed"
    assert conv["tls"]["client_hello_frame"] == 14
    assert conv["tls"]["server_hello_frame"] == 16
    # tshark: the ClientHello in 14, the answer in 16 (200 ms later) and again in 18; the QUIT in 17
    # acknowledges the server's stream short of the answer, the client's FIN in 20 past it
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert frames_matching(path, "tcp.analysis.retransmission") == [18]
    ((t14,),) = tshark_fields(path, "frame.number == 14", "frame.time_relative")
    ((seq16, t16),) = tshark_fields(path, "frame.number == 16", "tcp.seq", "frame.time_relative")
    assert 0.19 < float(t16) - float(t14) < 0.21
    ((ack17,),) = tshark_fields(path, "frame.number == 17", "tcp.ack")
    ((ack20,),) = tshark_fields(path, "frame.number == 20 && tcp.flags.fin == 1", "tcp.ack")
    assert int(ack17) <= int(seq16) < int(seq16) + 913 <= int(ack20)
