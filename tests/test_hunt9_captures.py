"""A client's plaintext in the middle of the TLS handshake that has no line end, and a QUIT that
crossed the rest of a partial answer (captures/scenarios_hunt9.py).

Each capture is checked for its verdict, its evidence frame, its findings and its detail, and the
frames and times the verdict rests on are cross-checked with tshark's reading of the same file.
"""
from __future__ import annotations

import pytest

from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict


def _times(path: object, frames: list[int]) -> list[float]:
    """tshark's time of each of ``frames``, in the order given."""
    flt = " || ".join(f"frame.number == {n}" for n in frames)
    at = {int(n): float(t) for n, t in tshark_fields(path, flt, "frame.number", "frame.time_relative")}
    return [at[n] for n in frames]


def _payloads(path: object, port: int, after: int) -> list[tuple[int, bytes]]:
    """tshark: (frame, payload) of every segment of the client (source port ``port``) with bytes
    after frame ``after``."""
    return [(int(n), bytes.fromhex(p.replace(":", "")))
            for n, p in tshark_fields(path, f"tcp.srcport == {port} && tcp.len > 0 && frame.number > {after}",
                                      "frame.number", "tcp.payload")]


def _after_hello(path: object, port: int, fin: int) -> None:
    """tshark: the ClientHello in 14, the client's only TLS record, acknowledged whole by the
    server's pure ACK in 15; no ServerHello, no byte of the server after its 220 (12); the client's
    FIN in ``fin``, the last frame; the server's ACKs never cover a byte after the ClientHello."""
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert frames_matching(path, "tls.handshake.type == 2") == []
    assert max(int(n) for (n,) in tshark_fields(path, "tcp.srcport == 25 && tcp.len > 0", "frame.number")) == 12
    ((seq, length),) = tshark_fields(path, "frame.number == 14", "tcp.seq", "tcp.len")
    ((ack,),) = tshark_fields(path, "frame.number == 15", "tcp.ack")
    assert int(ack) == int(seq) + int(length)
    assert max(int(a) for (a,) in tshark_fields(path, "tcp.srcport == 25", "tcp.ack")) == int(ack)
    assert frames_matching(path, "tcp.flags.fin == 1") == [fin]
    assert frames_matching(path, "frame")[-1] == fin


# -- 1. plaintext without a line end, timed by the segment of its first byte ----------------------

_AT_ONCE = ("the client sent {said} in the clear (frame 16) 6 ms after its ClientHello (frame 14), before any "
            "answer of the server's, then closed the connection (frame {fin}): it gave up on TLS at once, without "
            "waiting for the server's answer")


@pytest.mark.parametrize("name, port, sent, said, fin", [
    ("hunt9-quit-crlf-after-hello-at-once.pcap", 48901, [(16, b"QUIT\r\n")], "'QUIT'", 17),
    ("hunt9-quit-no-crlf-after-hello-at-once.pcap", 48902, [(16, b"QUIT")], "'QUIT'", 17),
    ("hunt9-garbage-after-hello-at-once.pcap", 48904, [(16, bytes.fromhex("802e0103010015000000100100800200"))],
     repr(bytes.fromhex("802e0103010015000000100100800200").decode("latin-1")), 17),
    ("hunt9-quit-no-crlf-split-after-hello-at-once.pcap", 48905, [(16, b"QU"), (17, b"IT")], "'QUIT'", 18),
])
def test_plaintext_at_once_after_the_clienthello_is_the_clients_with_or_without_a_line_end(
        name: str, port: int, sent: list[tuple[int, bytes]], said: str, fin: int) -> None:
    """Plaintext 6 ms after the ClientHello, the close 30 s after it, the server silent: the client
    gave up on TLS at once, its own decision, at the plaintext. ``QUIT\\r\\n`` read so; ``QUIT``
    without its CRLF, 16 bytes that are neither TLS nor a line (an SSLv2 header after the first
    record), and ``QU`` at once with ``IT`` 500 ms later read the server's (``server-silent``, "the
    client gave up waiting and sent 'QUIT' ... 30.0 s after it"): their ``TlsNotTls`` came only at
    the stream's end and took the close's time. It is now stamped with the segment of its first
    byte."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 16)
    assert _findings(conv) == []
    assert conv["detail"] == _AT_ONCE.format(said=said, fin=fin)
    _after_hello(path, port, fin)
    # tshark: the plaintext's segments, none a TLS record; its first 6 ms after the ClientHello, the
    # close 30 s after the last
    assert _payloads(path, port, 14) == sent
    assert frames_matching(path, "tls.record") == [14]
    t14, t16, t_last, t_fin = _times(path, [14, 16, fin - 1, fin])
    assert t16 - t14 == pytest.approx(0.006, abs=0.0005)
    assert t_fin - t_last == pytest.approx(30.0, abs=0.001)
    assert t_last - t16 == pytest.approx(0.0 if len(sent) == 1 else 0.5, abs=0.001)


def test_plaintext_without_a_line_end_a_second_or_more_after_the_clienthello_still_waited() -> None:
    """The control: ``QUIT`` without its CRLF 1.2 s after the acknowledged ClientHello, the close 30
    s after it: the client waited, the server never answered (``server-silent``), as with the CRLF
    (``hunt8-client-quit-in-clear-after-hello-1-2-s.pcap``); the detail dates the QUIT 1.2 s after
    the ClientHello (it said 31.2 s, the close's time)."""
    name = "hunt9-quit-no-crlf-after-hello-1-2-s.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 14)
    assert _findings(conv) == [("no-answer", "server", 14)]
    assert conv["detail"] == (
        "the server sent nothing for 31.2 s after the ClientHello: the client gave up waiting and sent 'QUIT' in "
        "the clear (frame 16) 1.2 s after it, then closed the connection (frame 17)")
    _after_hello(path, 48903, 17)
    assert _payloads(path, 48903, 14) == [(16, b"QUIT")]
    t14, t16, t17 = _times(path, [14, 16, 17])
    assert t16 - t14 == pytest.approx(1.2, abs=0.001)
    assert t17 - t16 == pytest.approx(30.0, abs=0.001)


def test_quit_without_a_line_end_at_once_after_a_partial_answer_is_the_clients() -> None:
    """TLS 1.2, the server's answer without its ServerHelloDone (16), acknowledged whole (17);
    ``QUIT`` without its CRLF 5 ms later (18), the close 1.5 s after (19). It read the server's
    (``server-silent``: the QUIT dated at the close, 1.5 s after the answer): the client gave up on
    TLS at once, without waiting for the rest, as with the CRLF
    (``hunt7-stall-client-quit-in-clear-at-once.pcap``)."""
    name = "hunt9-stall-quit-no-crlf-at-once.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
    assert _findings(conv) == []
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 18) 6 ms after the server's last record (frame 16), in the middle "
        "of the TLS handshake, before the rest of the server's answer to its ClientHello (no ServerHelloDone so far) "
        "could come, then closed the connection (frame 19): it gave up on TLS at once, without waiting for the rest")
    # tshark: ServerHello, Certificate and ServerKeyExchange in 16, no ServerHelloDone anywhere; the
    # client's ACK of all of 16 in 17; QUIT with no CRLF in 18, 6 ms after 16; the FIN in 19, the last
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    assert frames_matching(path, "tls.handshake.type == 12") == [16]
    assert frames_matching(path, "tls.handshake.type == 14") == []
    ((seq, length),) = tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len")
    ((ack,),) = tshark_fields(path, "frame.number == 17", "tcp.ack")
    assert int(ack) == int(seq) + int(length)
    assert _payloads(path, 48906, 16) == [(18, b"QUIT")]
    assert frames_matching(path, "tcp.flags.fin == 1") == [19]
    assert frames_matching(path, "frame")[-1] == 19
    assert max(int(n) for (n,) in tshark_fields(path, "tcp.srcport == 25 && tcp.len > 0", "frame.number")) == 16
    t16, t18, t19 = _times(path, [16, 18, 19])
    assert t18 - t16 == pytest.approx(0.006, abs=0.0005)
    assert t19 - t18 == pytest.approx(1.5, abs=0.001)


# -- 2. a QUIT at once after a partial answer whose rest came after it -----------------------------

def _rest_after_quit(path: object, port: int) -> int:
    """tshark: the partial answer (ServerHello, Certificate, ServerKeyExchange) in 16, QUIT in 17
    (5 ms after 16), the ServerHelloDone in 18 (100 ms after the QUIT), the client's pure ACK
    of all of it in 19, its FIN in 20 (1.5 s after), the last frame. Returns the ACK the QUIT's own
    segment carries."""
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    assert frames_matching(path, "tls.handshake.type == 14") == [18]
    assert frames_matching(path, f'tcp.srcport == {port} && tcp.payload == "QUIT\\r\\n"') == [17]
    ((seq, length),) = tshark_fields(path, "frame.number == 18", "tcp.seq", "tcp.len")
    assert [int(a) for (a,) in tshark_fields(path, "frame.number == 19 || frame.number == 20", "tcp.ack")] == [
        int(seq) + int(length)] * 2
    assert frames_matching(path, "tcp.flags.fin == 1") == [20]
    assert frames_matching(path, "frame")[-1] == 20
    t16, t17, t18, t20 = _times(path, [16, 17, 18, 20])
    assert t17 - t16 == pytest.approx(0.005, abs=0.0005)
    assert t18 - t17 == pytest.approx(0.1, abs=0.0005)
    assert t20 - t18 == pytest.approx(1.501, abs=0.001)
    ((ack,),) = tshark_fields(path, "frame.number == 17", "tcp.ack")
    return int(ack)


def test_a_quit_that_crossed_the_answer_is_left_to_the_general_rule() -> None:
    """TLS 1.2, the server's answer without its ServerHelloDone (16); the client's QUIT 5 ms later
    (17), whose ACK covers none of the answer (sent before any of it arrived: it crossed it); the
    ServerHelloDone 100 ms after the QUIT (18), acknowledged (19), the close 1.5 s later (20). The
    client's acknowledgement of the answer advanced only after its QUIT: nothing shows the client
    had any of the answer when it gave up, the general rule reads it (the client ended it, at its
    close), not the rule of a client that gave up at once with part of the answer in hand."""
    name = "hunt9-quit-crossed-answer-rest-after-it.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 20)
    assert _findings(conv) == []
    assert conv["detail"] == "the client closed the connection after the ServerHello, before the handshake completed"
    ack = _rest_after_quit(path, 48907)
    ((start,),) = tshark_fields(path, "frame.number == 16", "tcp.seq")
    assert ack == int(start)


def test_a_quit_sent_after_the_partial_answer_arrived_keeps_the_clients_blame() -> None:
    """As the crossing capture, but the QUIT's own ACK covers the partial answer whole (sent after
    it arrived): the client's, as when it crossed (the test below holds the detail and the evidence
    frame, which differ)."""
    name = "hunt9-quit-after-answer-rest-after-it.pcap"
    path = CAPTURES / name
    ack = _rest_after_quit(path, 48908)
    ((seq, length),) = tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len")
    assert ack == int(seq) + int(length)
    conv = _conv(name)
    assert _verdict(conv)[:4] == ("aborted", "client", "tls-handshake-failed", None)
    assert _findings(conv) == []


def test_a_quit_sent_after_the_partial_answer_arrived_is_the_clients_giving_up_at_once() -> None:
    """The QUIT's own ACK covers the partial answer whole (sent after it arrived): the client gave
    up on TLS at once, before the rest could come, the client's at its QUIT with
    ``_spoke_clear_at_once``'s detail. The client's acknowledgement last advanced after the QUIT,
    with the ServerHelloDone; the QUIT's own (``tcp.events.StreamData.ack``,
    ``smtp.tls.TlsNotTls.ack``) tells it had the answer then."""
    conv = _conv("hunt9-quit-after-answer-rest-after-it.pcap")
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 17) 5 ms after the server's last record (frame 16), in the middle "
        "of the TLS handshake, before the rest of the server's answer to its ClientHello (no ServerHelloDone so far) "
        "could come, then closed the connection (frame 20): it gave up on TLS at once, without waiting for the rest")
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 17)
