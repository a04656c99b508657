"""How long a client waited before its plaintext in the middle of the TLS handshake, on the
client's own evidence: the acknowledgement its plaintext's segment carried
(captures/scenarios_hunt12.py).

Each capture is checked for its verdict, its evidence frame, its findings and its detail, and the
frames, acknowledgement numbers and times the verdict rests on are cross-checked with tshark's
reading of the same file.
"""
from __future__ import annotations

import pytest

from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict

TAIL_ALERT = ("; the server then sent the fatal TLS alert unexpected_message (10) (frame {alert}), answering those "
              "bytes, which are no TLS record")


def _time(path: object, frame: int) -> float:
    ((t,),) = tshark_fields(path, f"frame.number == {frame}", "frame.time_relative")
    return float(t)


def _facts(path: object, port: int) -> dict[str, int]:
    """tshark: the frame of the server's answer (its one segment of more than 500 bytes: tshark does
    not dissect the TLS of the merged taps' captures, whose client segments come out of order), its
    sequence number and length, the QUIT's frame and its acknowledgement number, and the alert's
    frame (0 when none: tshark's dissection, or the alert's 7 bytes of the server's)."""
    (flight,) = frames_matching(path, "tcp.srcport == 25 && tcp.len > 500")
    ((seq, length),) = tshark_fields(path, f"frame.number == {flight}", "tcp.seq", "tcp.len")
    ((quit_frame, quit_ack, payload),) = tshark_fields(
        path, f"tcp.srcport == {port} && tcp.len == 6", "frame.number", "tcp.ack", "tcp.payload")
    assert bytes.fromhex(payload.replace(":", "")) == b"QUIT\r\n"
    alerts = frames_matching(path, "tls.alert_message.desc == 10") or frames_matching(
        path, "tcp.srcport == 25 && tcp.len == 7 && tcp.payload == 15:03:03:00:02:02:0a")
    return {"flight": flight, "seq": int(seq), "end": int(seq) + int(length), "quit": int(quit_frame),
            "quit_ack": int(quit_ack), "alert": alerts[0] if alerts else 0}


def _pure_ack(path: object, port: int, ack: int) -> int:
    """tshark: the client's first segment without payload acknowledging the server's stream up to
    ``ack``."""
    return min(int(n) for (n,) in tshark_fields(path, f"tcp.srcport == {port} && tcp.len == 0 && tcp.ack == {ack}",
                                                  "frame.number"))


def _alert_acked_after_quit(path: object, port: int, f: dict[str, int]) -> None:
    """tshark: the client's acknowledgement of the alert comes after the QUIT (what moved the
    client's last acknowledgement past it, ``Transcript.server_acked_ns``)."""
    ((seq, length),) = tshark_fields(path, f"frame.number == {f['alert']}", "tcp.seq", "tcp.len")
    acks = [int(n) for (n,) in tshark_fields(
        path, f"tcp.srcport == {port} && tcp.ack == {int(seq) + int(length)}", "frame.number")]
    assert acks and all(_time(path, n) > _time(path, f["quit"]) for n in acks)


def test_client_tap_behind_a_quit_1_2_s_after_a_stalled_answer_is_the_servers_stall() -> None:
    """Two taps merged, the client's clock 300 ms behind: the QUIT (18) 1.2 s after the client's pure
    ACK of the partial answer, stamped 0.9 s after the answer (17) by the server's tap. The QUIT's
    own segment acknowledges the answer whole: the client had it, since its pure ACK, and waited
    1.2 s for the rest: the server stalled (it read 0.9 s, 'at once', the client's)."""
    name = "hunt12-skew-client-behind-300-ms-stall-quit-1-2-s-alert.pcap"
    path = CAPTURES / name
    f = _facts(path, 49201)
    assert (f["flight"], f["quit"], f["alert"]) == (17, 18, 22)
    assert f["quit_ack"] == f["end"]
    pure = _pure_ack(path, 49201, f["end"])
    assert pure < f["flight"]                   # (the client's tap stamps its ACK before the answer)
    assert _time(path, f["quit"]) - _time(path, pure) == pytest.approx(1.199, abs=0.0005)
    assert _time(path, f["quit"]) - _time(path, f["flight"]) == pytest.approx(0.9, abs=0.0005)
    _alert_acked_after_quit(path, 49201, f)
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 17)
    assert _findings(conv) == [("no-answer", "server", 17), ("tls-alert", "server", 22)]
    assert conv["detail"] == (
        "the server's answer to the ClientHello stopped short of its ServerHelloDone (frame 17) and the server sent "
        "nothing more for 1.2 s: the client gave up waiting for the rest and sent 'QUIT' in the clear (frame 18)"
        + TAIL_ALERT.format(alert=22))


def test_client_tap_ahead_a_quit_1_2_s_after_a_stalled_answer_is_the_servers_stall() -> None:
    """The client's clock 300 ms ahead: the QUIT (21) stamped 1.5 s after the answer (8), 1.2 s after
    the client's pure ACK of it (17): the server stalled, the wait said as 1.2 s."""
    name = "hunt12-skew-client-ahead-300-ms-stall-quit-1-2-s-alert.pcap"
    path = CAPTURES / name
    f = _facts(path, 49202)
    assert (f["flight"], f["quit"], f["alert"]) == (8, 21, 18)
    assert f["quit_ack"] == f["end"]
    pure = _pure_ack(path, 49202, f["end"])
    assert pure == 17
    assert _time(path, f["quit"]) - _time(path, pure) == pytest.approx(1.199, abs=0.0005)
    assert _time(path, f["quit"]) - _time(path, f["flight"]) == pytest.approx(1.5, abs=0.0005)
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 8)
    assert _findings(conv) == [("no-answer", "server", 8), ("tls-alert", "server", 18)]
    assert conv["detail"] == (
        "the server's answer to the ClientHello stopped short of its ServerHelloDone (frame 8) and the server sent "
        "nothing more for 1.2 s: the client gave up waiting for the rest and sent 'QUIT' in the clear (frame 21)"
        + TAIL_ALERT.format(alert=18))


def test_client_tap_behind_a_quit_100_ms_after_the_answer_is_the_clients_giving_up_at_once() -> None:
    """The client's clock 300 ms behind, the QUIT (10) 100 ms after the client's pure ACK of the
    answer, stamped 200 ms before the answer (21): the client's at once, the detail saying how long
    after it had the answer (99 ms, from its acknowledgements)."""
    name = "hunt12-skew-client-behind-300-ms-stall-quit-100-ms-alert.pcap"
    path = CAPTURES / name
    f = _facts(path, 49203)
    assert (f["flight"], f["quit"], f["alert"]) == (21, 10, 22)
    assert f["quit_ack"] == f["end"]
    pure = _pure_ack(path, 49203, f["end"])
    assert _time(path, f["quit"]) - _time(path, pure) == pytest.approx(0.099, abs=0.0005)
    assert _time(path, f["flight"]) - _time(path, f["quit"]) == pytest.approx(0.2, abs=0.0005)
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 10)
    assert _findings(conv) == [("tls-alert", "server", 22)]
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 10) 0 ms after the server's last record (frame 21; 99 ms after "
        "the client had it, from its TCP's acknowledgements), in the middle of the TLS handshake: it gave up on TLS "
        "at once" + TAIL_ALERT.format(alert=22))


def test_a_long_path_quit_700_ms_after_the_clients_ack_is_the_clients_giving_up_at_once() -> None:
    """Captured at the server, a 400 ms round trip: the client's pure ACK of the answer (17) 400 ms
    after it (16), the QUIT (18) 700 ms after that, the server's alert (19), which the client
    acknowledges after the QUIT: the client gave up 0.7 s after it had the answer, at once (it read
    1.1 s after the answer, the server's stall)."""
    name = "hunt12-long-path-400-ms-stall-quit-700-ms-alert.pcap"
    path = CAPTURES / name
    f = _facts(path, 49204)
    assert (f["flight"], f["quit"], f["alert"]) == (16, 18, 19)
    assert f["quit_ack"] == f["end"]
    assert _pure_ack(path, 49204, f["end"]) == 17
    assert _time(path, 17) - _time(path, 16) == pytest.approx(0.4, abs=0.0005)
    assert _time(path, 18) - _time(path, 17) == pytest.approx(0.7, abs=0.0005)
    _alert_acked_after_quit(path, 49204, f)
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
    assert _findings(conv) == [("tls-alert", "server", 19)]
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 18) 1100 ms after the server's last record (frame 16; 700 ms "
        "after the client had it, from its TCP's acknowledgements), in the middle of the TLS handshake: it gave up "
        "on TLS at once" + TAIL_ALERT.format(alert=19))


def test_a_long_path_quit_700_ms_after_the_clients_ack_then_the_servers_close_reads_the_same() -> None:
    """The same path, the server closing (19) instead of its alert: the same reading, the client's
    at once 700 ms after its acknowledgement (a FIN's acknowledgement alone moved nothing before
    either)."""
    name = "hunt12-long-path-400-ms-stall-quit-700-ms-fin.pcap"
    path = CAPTURES / name
    f = _facts(path, 49205)
    assert (f["flight"], f["quit"], f["alert"]) == (16, 18, 0)
    assert f["quit_ack"] == f["end"]
    assert _pure_ack(path, 49205, f["end"]) == 17
    assert frames_matching(path, "tcp.flags.fin == 1 && tcp.srcport == 25") == [19]
    assert _time(path, 18) - _time(path, 17) == pytest.approx(0.7, abs=0.0005)
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
    assert _findings(conv) == []
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 18) 1100 ms after the server's last record (frame 16; 700 ms "
        "after the client had it, from its TCP's acknowledgements), in the middle of the TLS handshake: it gave up "
        "on TLS at once; the server then closed the connection (frame 19), answering those bytes, which are no TLS "
        "record")


def test_a_quit_that_crossed_the_answer_gave_up_before_any_answer_reached_the_client() -> None:
    """The QUIT (17) 5 ms after the answer (16) acknowledges none of it (its ack is the answer's first
    sequence number): it was sent before the answer arrived. The client's at once, 16 ms after its
    ClientHello (14), the detail saying no answer had reached it."""
    name = "hunt12-stall-quit-crossed-alert.pcap"
    path = CAPTURES / name
    f = _facts(path, 49206)
    assert (f["flight"], f["quit"], f["alert"]) == (16, 17, 18)
    assert f["quit_ack"] == f["seq"]
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert _time(path, 17) - _time(path, 14) == pytest.approx(0.016, abs=0.0005)
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 17)
    assert _findings(conv) == [("tls-alert", "server", 18)]
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 17) 16 ms after its ClientHello (frame 14), before any answer of "
        "the server's had reached it (its segment acknowledged none of frame 16, which crossed it): it gave up on TLS "
        "at once, without waiting for the server's answer" + TAIL_ALERT.format(alert=18))


def test_a_quit_sent_after_the_answer_arrived_is_the_clients_giving_up_at_once() -> None:
    """The control: the QUIT (17) 5 ms after the answer (16), no pure ACK before it, acknowledges the
    answer whole: the client's at once, the detail as before."""
    name = "hunt12-stall-quit-after-answer-alert.pcap"
    path = CAPTURES / name
    f = _facts(path, 49207)
    assert (f["flight"], f["quit"], f["alert"]) == (16, 17, 18)
    assert f["quit_ack"] == f["end"]
    assert frames_matching(path, f"tcp.srcport == 49207 && tcp.len == 0 && tcp.ack == {f['end']}") == []
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 17)
    assert _findings(conv) == [("tls-alert", "server", 18)]
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 17) 5 ms after the server's last record (frame 16), in the "
        "middle of the TLS handshake: it gave up on TLS at once" + TAIL_ALERT.format(alert=18))
