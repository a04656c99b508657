"""The shapes real clients gave the stalled-server rule (captures/scenarios_real20.py; the real
clients themselves: tests/realclients/test_midanswer_real.py).

Each capture is checked for its verdict, its evidence frame, its findings and its detail, and the
frames the verdict rests on are cross-checked with tshark's reading of the same file.
"""
from __future__ import annotations

from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict


def _acked_whole(path: object, data: int, ack: int) -> None:
    """tshark: the client's segment ``ack`` acknowledges every byte of the server's ``data``."""
    ((seq, length),) = tshark_fields(path, f"frame.number == {data}", "tcp.seq", "tcp.len")
    ((got,),) = tshark_fields(path, f"frame.number == {ack}", "tcp.ack")
    assert int(got) == int(seq) + int(length)


def test_a_tls13_clients_compatibility_ccs_is_no_answer_to_a_stalled_server() -> None:
    """GnuTLS sends its compatibility ChangeCipherSpec as soon as the ServerHello comes; the
    server's flight stops short of its Finished and the client's timeout closes 30 s later. The
    CCS was taken as the client's answer and the stall read the client's ("closed the connection
    after the ServerHello"): the server's, server-silent."""
    path = CAPTURES / "real20-tls13-stall-client-ccs-client-closes.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 16)
    assert _findings(conv) == [("no-answer", "server", 16)]
    assert conv["detail"] == ("the server's answer to the ClientHello stopped short of its Finished (frame 16, which "
                              "the client acknowledged) and the server sent nothing more for 30.0 s: the client gave "
                              "up waiting for the rest and closed the connection (frame 20)")
    # tshark: the flight without its 53-byte Finished in 16, acknowledged in 17, the client's
    # CCS in 18, its FIN in 20
    ((lengths,),) = tshark_fields(path, "frame.number == 16", "tls.record.length")
    assert lengths == "122,1,27,700,89"
    _acked_whole(path, 16, 17)
    assert frames_matching(path, "tls.record.content_type == 20 && tcp.srcport == 48701") == [18]
    assert frames_matching(path, "tcp.flags.fin == 1 || tcp.flags.reset == 1") == [20]


def test_a_client_that_gives_up_with_quit_in_the_clear_waited_for_a_stalled_server() -> None:
    """PHPMailer: its handshake timeout gives up on TLS and sends QUIT in the clear, then closes;
    the server's answer had stopped short of its ServerHelloDone. It read the client's: the
    server's, the detail naming the QUIT."""
    path = CAPTURES / "real20-stall-client-quit-in-clear.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 16)
    assert _findings(conv) == [("no-answer", "server", 16)]
    assert conv["detail"] == ("the server's answer to the ClientHello stopped short of its ServerHelloDone (frame 16, "
                              "which the client acknowledged) and the server sent nothing more for 32.0 s: the client "
                              "gave up waiting for the rest and sent 'QUIT' in the clear (frame 18), then closed the "
                              "connection (frame 20)")
    assert frames_matching(path, "tls.handshake.type == 12") == [16]
    assert frames_matching(path, "tls.handshake.type == 14") == []
    _acked_whole(path, 16, 17)
    assert frames_matching(path, 'tcp.srcport == 48702 && tcp.payload contains "QUIT"') == [18]
    assert frames_matching(path, "tcp.flags.fin == 1 || tcp.flags.reset == 1") == [20]


def test_a_tls13_client_that_sent_only_its_compatibility_ccs_after_a_whole_answer_is_client_silent() -> None:
    """The mirror: the server's whole flight, the client's CCS and nothing more until its timeout
    closes: client-silent, as without the CCS (it read the client's with no case)."""
    path = CAPTURES / "real20-tls13-client-ccs-then-hangs.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 20)
    assert _findings(conv) == [("client-silent", "client", 16)]
    assert conv["detail"] == ("the client acknowledged the server's whole answer to its ClientHello (frame 16) and "
                              "sent nothing but its compatibility ChangeCipherSpec (frame 18) for 30.0 s, no side of "
                              "the handshake and no alert: then it closed the connection (frame 20) without a word, "
                              "as a client whose TLS stalled (its certificate check, say) until its own timeout does")
    ((lengths,),) = tshark_fields(path, "frame.number == 16", "tls.record.length")
    assert lengths.endswith(",53")          # the Finished is there
    _acked_whole(path, 16, 17)
    assert frames_matching(path, "tls.record.content_type == 20 && tcp.srcport == 48703") == [18]
