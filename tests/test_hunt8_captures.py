"""A client that speaks plaintext after its ClientHello, before any answer of the server's
(captures/scenarios_hunt8.py).

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
    """tshark's time of each of ``frames``, in the order given."""
    flt = " || ".join(f"frame.number == {n}" for n in frames)
    at = {int(n): float(t) for n, t in tshark_fields(path, flt, "frame.number", "frame.time_relative")}
    return [at[n] for n in frames]


def _server_ack_frame(path: object) -> int:
    """The frame of the server's pure ACK that covers the whole ClientHello (frame 14), by tshark's
    relative numbers."""
    ((seq, length),) = tshark_fields(path, "frame.number == 14", "tcp.seq", "tcp.len")
    end = int(seq) + int(length)
    (frame,) = [int(n) for n, a in tshark_fields(path, "tcp.srcport == 25 && tcp.len == 0", "frame.number", "tcp.ack")
                if int(a) == end]
    return frame


def _common(path: object, port: int, quit_frame: int) -> None:
    """tshark: the ClientHello in 14, the client's only TLS record; no ServerHello, no byte of the
    server after its 220 (12); QUIT (no TLS) in ``quit_frame``, the client's FIN the last frame,
    30 s after it; the server's ACKs never cover the QUIT."""
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert frames_matching(path, f"tcp.srcport == {port} && tls") == [14]
    assert frames_matching(path, "tls.handshake.type == 2") == []
    assert max(int(n) for (n,) in tshark_fields(path, "tcp.srcport == 25 && tcp.len > 0", "frame.number")) == 12
    assert frames_matching(path, f'tcp.srcport == {port} && tcp.payload contains "QUIT"') == [quit_frame]
    assert frames_matching(path, "tcp.flags.fin == 1") == [17]
    assert frames_matching(path, "frame")[-1] == 17
    t_quit, t_fin = _times(path, [quit_frame, 17])
    assert t_fin - t_quit == pytest.approx(30.0, abs=0.001)
    ((qseq,),) = tshark_fields(path, f"frame.number == {quit_frame}", "tcp.seq")
    assert max(int(a) for (a,) in tshark_fields(path, "tcp.srcport == 25", "tcp.ack")) <= int(qseq)


@pytest.mark.parametrize("name, port, quit_frame, ms, ack_after", [
    ("hunt8-client-quit-in-clear-after-hello-at-once.pcap", 48801, 16, 6, 0.001),
    ("hunt8-client-quit-in-clear-after-hello-at-once-long-path.pcap", 48802, 15, 5, 1.195),
])
def test_plaintext_at_once_after_the_clienthello_is_the_clients(
        name: str, port: int, quit_frame: int, ms: int, ack_after: float) -> None:
    """QUIT in the clear a few milliseconds after the ClientHello, the close 30 s later, the server
    silent. It read the server's (server-silent, the wait counted to the close): the client never
    waited for an answer, it gave up on TLS at once, at its QUIT. On a long path (the server's ACK
    of the ClientHello 1.195 s after it, after the QUIT) the same."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, quit_frame)
    assert _findings(conv) == []
    assert conv["detail"] == (
        f"the client sent 'QUIT' in the clear (frame {quit_frame}) {ms} ms after its ClientHello (frame 14), before "
        "any answer of the server's, then closed the connection (frame 17): it gave up on TLS at once, without "
        "waiting for the server's answer")
    _common(path, port, quit_frame)
    ack = _server_ack_frame(path)
    t14, t_ack, t_quit = _times(path, [14, ack, quit_frame])
    assert t_quit - t14 == pytest.approx(ms / 1000, abs=0.0005)
    assert t_ack - t14 == pytest.approx(ack_after, abs=0.0005)


@pytest.mark.parametrize("name, port, quit_after, total, ack_after", [
    ("hunt8-client-quit-in-clear-after-hello-1-2-s.pcap", 48803, 1.2, 31.2, 0.001),
    ("hunt8-client-quit-in-clear-after-hello-10-s-long-path.pcap", 48804, 10.0, 40.0, 1.195),
])
def test_plaintext_a_second_or_more_after_the_clienthello_still_waited(
        name: str, port: int, quit_after: float, total: float, ack_after: float) -> None:
    """The controls: QUIT in the clear 1.2 s after the acknowledged ClientHello (10 s on a long
    path, the server's ACK 1.195 s after it), the close 30 s later: the client waited, the
    server never answered (server-silent), as PHPMailer's QUIT after its handshake timeout; the
    detail names the QUIT and when it came."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 14)
    assert _findings(conv) == [("no-answer", "server", 14)]
    assert conv["detail"] == (
        f"the server sent nothing for {total} s after the ClientHello: the client gave up waiting and sent 'QUIT' in "
        f"the clear (frame 16) {quit_after} s after it, then closed the connection (frame 17)")
    _common(path, port, 16)
    ack = _server_ack_frame(path)
    assert ack == 15
    t14, t15, t16 = _times(path, [14, 15, 16])
    assert t16 - t14 == pytest.approx(quit_after, abs=0.002)
    assert t15 - t14 == pytest.approx(ack_after, abs=0.0005)
