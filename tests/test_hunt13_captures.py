"""Who closes first after a client gave up on TLS in the middle of the handshake, and plaintext
without a line end after the 220 (captures/scenarios_hunt13.py).

Each capture is checked for its verdict, its evidence frame, its findings and its detail, and the
frames and times the verdict rests on (the ClientHello, the answer, the QUIT, the rest of the answer,
which side ended first) are cross-checked with tshark's reading of the same file. The pairs that
differ only in which side closes first must read the same outcome, side, reason, case and frames.
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


def _quit(path: object, port: int) -> int | None:
    """tshark: the one frame of the client's that carries QUIT, no TLS record in it (None: none)."""
    frames = frames_matching(path, f'tcp.srcport == {port} && tcp.payload contains "QUIT"')
    if not frames:
        return None
    (frame,) = frames
    assert frames_matching(path, f"frame.number == {frame} && tls") == []
    return frame


def _first_end(path: object, port: int) -> tuple[int, str, str]:
    """tshark: the first FIN or RST of the capture, whose it is ("client" or "server") and which."""
    first = frames_matching(path, "tcp.flags.fin == 1 || tcp.flags.reset == 1")[0]
    ((src, rst),) = tshark_fields(path, f"frame.number == {first}", "tcp.srcport", "tcp.flags.reset")
    return first, "client" if int(src) == port else "server", "rst" if rst in ("1", "True") else "fin"


def _server_records(path: object, frame: int) -> list[int]:
    """tshark: the lengths of the TLS records in the server's ``frame``."""
    ((lengths,),) = tshark_fields(path, f"frame.number == {frame}", "tls.record.length")
    return [int(n) for n in lengths.split(",")]


# (name, port, QUIT frame or None, first end (frame, side, kind), verdict, findings, detail)
STALLED = [
    ("hunt13-tls13-stall-quit-1-2-s-then-rest-client-fin.pcap", 49361, 18, (22, "client", "fin"),
     "the server's answer to the ClientHello (frame 16) stopped short and the server sent nothing more for 1.2 s: "
     "the client gave up waiting for the rest and sent 'QUIT' in the clear (frame 18), then closed the connection "
     "(frame 22), and more of the answer came only after it (frame 20)"),
    ("hunt13-tls13-stall-quit-1-2-s-then-rest-client-rst.pcap", 49362, 18, (22, "client", "rst"),
     "the server's answer to the ClientHello (frame 16) stopped short and the server sent nothing more for 1.2 s: "
     "the client gave up waiting for the rest and sent 'QUIT' in the clear (frame 18), then reset the connection "
     "(frame 22), and more of the answer came only after it (frame 20)"),
    ("hunt13-tls13-stall-fin-1-2-s-then-rest.pcap", 49363, None, (18, "client", "fin"),
     "the server's answer to the ClientHello (frame 16) stopped short and the server sent nothing more for 1.2 s: "
     "the client gave up waiting for the rest and closed the connection (frame 18), and more of the answer came "
     "only after it (frame 20)"),
    ("hunt13-tls12-stall-quit-1-2-s-then-rest-client-fin.pcap", 49364, 18, (22, "client", "fin"),
     "the server's answer to the ClientHello stopped short of its ServerHelloDone (frame 16) and the server sent "
     "nothing more for 1.2 s: the client gave up waiting for the rest and sent 'QUIT' in the clear (frame 18), then "
     "closed the connection (frame 22)"),
    ("hunt13-tls12-stall-quit-1-2-s-then-rest-server-fin.pcap", 49365, 18, (22, "server", "fin"),
     "the server's answer to the ClientHello stopped short of its ServerHelloDone (frame 16) and the server sent "
     "nothing more for 1.2 s: the client gave up waiting for the rest and sent 'QUIT' in the clear (frame 18); the "
     "server then closed the connection (frame 22), answering those bytes, which are no TLS record"),
    ("hunt13-tls13-one-record-quit-1-2-s-then-rest-client-fin.pcap", 49366, 18, (22, "client", "fin"),
     "the server's answer to the ClientHello (frame 16) stopped short and the server sent nothing more for 1.2 s: "
     "the client gave up waiting for the rest and sent 'QUIT' in the clear (frame 18), then closed the connection "
     "(frame 22), and more of the answer came only after it (frame 20)"),
    ("hunt13-tls13-one-record-quit-1-2-s-then-rest-server-fin.pcap", 49367, 18, (22, "server", "fin"),
     "the server's answer to the ClientHello (frame 16) stopped short and the server sent nothing more for 1.2 s: "
     "the client gave up waiting for the rest and sent 'QUIT' in the clear (frame 18), and more of the answer came "
     "only after it (frame 20); the server then closed the connection (frame 22), answering those bytes, which are "
     "no TLS record"),
]


@pytest.mark.parametrize("name, port, quit_frame, first, detail", STALLED)
def test_a_stall_whose_rest_came_after_the_client_gave_up_is_the_servers_whoever_closes_first(
        name: str, port: int, quit_frame: int | None, first: tuple[int, str, str], detail: str) -> None:
    """The server's answer short (TLS 1.2: no ServerHelloDone) or of unknown end (TLS 1.3 in one or
    two encrypted records) when the client gave up 1.2 s after it (its QUIT in the clear, or its
    close), the rest of the answer (the ServerHelloDone; a CertificateVerify and a 53-byte Finished)
    1 ms after that: the answer was short when the client gave up, the server stalled
    (``server-silent``), also when the client's FIN or RST comes before the server's. The
    client-first captures read the client's ("closed the connection after the ServerHello")."""
    path = CAPTURES / name
    conv = _conv(name)
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    assert _quit(path, port) == quit_frame
    gave_up = quit_frame if quit_frame is not None else first[0]
    (answer_end,) = {int(q) + int(n) for q, n in tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len")}
    # the client acknowledged the answer at once (17), and its giving up 1.2 s after it
    assert frames_matching(path, f"tcp.srcport == {port} && tcp.len == 0 && tcp.ack == {answer_end} "
                                 "&& frame.number == 17") == [17]
    t16, t_gave = _times(path, [16, gave_up])
    assert t_gave - t16 == pytest.approx(1.201, abs=0.0005)
    # the rest of the answer, in the server's frame 20, after the giving up: a ServerHelloDone, or
    # two encrypted records, the second of a Finished's size
    if "tls12" in name:
        assert frames_matching(path, "tls.handshake.type == 14") == [20]
    else:
        assert _server_records(path, 20) == [89, 53]
    assert _first_end(path, port) == first
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 16)
    assert _findings(conv) == [("no-answer", "server", 16)]
    assert conv["detail"] == detail


def test_an_answer_that_came_only_after_a_quit_a_second_late_is_the_servers_whoever_closes_first() -> None:
    """No answer for 1.2 s after the ClientHello, the client's QUIT, then the server's whole answer
    1 ms after it: the server never answered in time (``server-silent``, at the ClientHello), when
    the client closes first too (it read the client's, "after the ServerHello")."""
    details = {}
    for first, port in (("client", 49368), ("server", 49369)):
        name = f"hunt13-no-answer-quit-1-2-s-then-answer-{first}-fin.pcap"
        path = CAPTURES / name
        conv = _conv(name)
        assert frames_matching(path, "tls.handshake.type == 1") == [14]
        assert frames_matching(path, "tls.handshake.type == 2") == [18]
        assert _quit(path, port) == 16
        t14, t16, t18 = _times(path, [14, 16, 18])
        assert t16 - t14 == pytest.approx(1.201, abs=0.0005) and t18 > t16
        assert _first_end(path, port) == (20, first, "fin")
        assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 14)
        assert _findings(conv) == [("no-answer", "server", 14)]
        details[first] = conv["detail"]
    head = ("the server sent nothing for 1.2 s after the ClientHello: the client gave up waiting and sent 'QUIT' in "
            "the clear (frame 16)")
    assert details == {"client": head + ", then closed the connection (frame 20)",
                       "server": head + "; the server then closed the connection (frame 20), answering those bytes, "
                       "which are no TLS record"}


@pytest.mark.parametrize("name, port, first, detail", [
    ("hunt13-tls12-whole-quit-1-2-s-client-fin.pcap", 49370, (20, "client", "fin"),
     "the client had the server's whole answer to its ClientHello (frame 16) and sent nothing for 1.2 s, no side of "
     "the handshake and no alert: then it sent 'QUIT' in the clear (frame 18), giving up on TLS, and closed the "
     "connection (frame 20)"),
    ("hunt13-tls12-whole-quit-1-2-s-server-fin.pcap", 49371, (20, "server", "fin"),
     "the client had the server's whole answer to its ClientHello (frame 16) and sent nothing for 1.2 s, no side of "
     "the handshake and no alert: then it sent 'QUIT' in the clear (frame 18), giving up on TLS; the server then "
     "closed the connection (frame 20), answering those bytes, which are no TLS record"),
    ("hunt13-tls13-whole-quit-1-2-s-client-rst.pcap", 49372, (20, "client", "rst"),
     "the client had the server's whole answer to its ClientHello (frame 16) and sent nothing for 1.2 s, no side of "
     "the handshake and no alert: then it sent 'QUIT' in the clear (frame 18), giving up on TLS, and reset the "
     "connection (frame 20)"),
])
def test_plaintext_a_second_after_the_whole_answer_is_a_hung_client_whoever_closes_first(
        name: str, port: int, first: tuple[int, str, str], detail: str) -> None:
    """The whole answer (TLS 1.2 to its ServerHelloDone; TLS 1.3 to its 53-byte Finished),
    acknowledged, the client's QUIT 1.2 s later: it had all it needed and did not go on
    (``client-silent``, evidence frame the QUIT), as when the server closes first; the client-first
    ones read the client's without a case, at the close."""
    path = CAPTURES / name
    conv = _conv(name)
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    if "tls12" in name:
        assert frames_matching(path, "tls.handshake.type == 14") == [16]
    else:
        assert _server_records(path, 16)[-1] == 53
    assert _quit(path, port) == 18
    t16, t18 = _times(path, [16, 18])
    assert t18 - t16 == pytest.approx(1.201, abs=0.0005)
    assert _first_end(path, port) == first
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 18)
    assert _findings(conv) == [("client-silent", "client", 16)]
    assert conv["detail"] == detail


def test_plaintext_after_an_answer_of_unknown_end_is_the_clients_at_the_quit_whoever_closes_first() -> None:
    """TLS 1.3, the answer up to its Certificate in two encrypted records (whole or short cannot be
    told), QUIT 1.2 s later, nothing more of the server's: the plaintext ended the handshake, the
    client's without a case, at the QUIT, also when the client closes first (it read the generic
    detail at the close)."""
    details = {}
    for first, port in (("client", 49373), ("server", 49374)):
        name = f"hunt13-tls13-upto-cert-quit-1-2-s-{first}-fin.pcap"
        path = CAPTURES / name
        conv = _conv(name)
        assert frames_matching(path, "tls.handshake.type == 2") == [16]
        assert _server_records(path, 16)[1:] == [27, 700]
        assert _quit(path, port) == 18
        assert _first_end(path, port) == (20, first, "fin")
        assert frames_matching(path, "tcp.srcport == 25 && tcp.len > 0 && frame.number > 16") == []
        assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
        assert _findings(conv) == []
        details[first] = conv["detail"]
    head = ("the client sent 'QUIT' in the clear (frame 18) 1.2 s after the server's last record (frame 16), giving "
            "up on TLS in the middle of the handshake")
    told = ("; whether the server's answer was whole by then (a TLS 1.3 flight in 2 encrypted records, which may "
            "hold all of it or stop short) cannot be told")
    assert details == {"client": head + ", then closed the connection (frame 20)" + told,
                       "server": head + told + "; the server then closed the connection (frame 20), answering those "
                       "bytes, which are no TLS record"}


def test_plaintext_after_an_answer_the_path_dropped_is_the_paths_whoever_closes_first() -> None:
    """TLS 1.3, the whole answer (16) resent 300 ms later (17) and never acknowledged, QUIT 1.2 s
    after the resend: the path's (``answer-lost``) whichever side closes first."""
    for first, port in (("client", 49375), ("server", 49376)):
        name = f"hunt13-tls13-answer-lost-quit-1-2-s-{first}-fin.pcap"
        path = CAPTURES / name
        conv = _conv(name)
        assert frames_matching(path, "tcp.analysis.retransmission") == [17]
        assert _quit(path, port) == 18
        ((seq,),) = tshark_fields(path, "frame.number == 16", "tcp.seq")
        assert {int(a) for (a,) in tshark_fields(path, f"tcp.srcport == {port} && frame.number > 16",
                                                 "tcp.ack")} == {int(seq)}
        assert _first_end(path, port) == (20, first, "fin")
        assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "answer-lost", 16)
        assert _findings(conv) == [("answer-not-received", "middlebox", 16)]


def test_a_quit_at_once_after_the_hello_is_the_clients_whoever_closes_first() -> None:
    """The control: QUIT 5 ms after the ClientHello, the whole answer 1 ms after it: the client
    gave up on TLS at once, the client's at the QUIT, whichever side closes first."""
    for first, port in (("client", 49377), ("server", 49378)):
        name = f"hunt13-quit-at-once-after-hello-then-answer-{first}-fin.pcap"
        path = CAPTURES / name
        conv = _conv(name)
        assert _quit(path, port) == 16
        assert frames_matching(path, "tls.handshake.type == 2") == [18]
        t14, t16 = _times(path, [14, 16])
        assert t16 - t14 == pytest.approx(0.006, abs=0.0005)
        assert _first_end(path, port) == (20, first, "fin")
        assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 16)
        assert _findings(conv) == []
        assert conv["detail"].startswith(
            "the client sent 'QUIT' in the clear (frame 16) 6 ms after its ClientHello (frame 14), before any answer "
            "of the server's")


def test_a_quit_at_once_after_a_partial_answer_is_the_clients_whoever_closes_first() -> None:
    """The control: TLS 1.2, the answer without its ServerHelloDone, QUIT 5 ms later, the
    ServerHelloDone 1 ms after the QUIT: the client's either way, at the QUIT. Client first: the
    client's acknowledgement advanced only after the QUIT (with the ServerHelloDone), but the ACK
    the QUIT's own segment carried covers the partial answer (``tcp.events.StreamData.ack``): it
    did not cross it, the client gave up at once (``_spoke_clear_at_once``; before that ACK was
    read, the general rule at the close, frame 22)."""
    frames = {}
    for first, port in (("client", 49379), ("server", 49380)):
        name = f"hunt13-tls12-stall-quit-at-once-then-rest-{first}-fin.pcap"
        path = CAPTURES / name
        conv = _conv(name)
        assert _quit(path, port) == 18
        assert frames_matching(path, "tls.handshake.type == 14") == [20]
        assert _first_end(path, port) == (22, first, "fin")
        assert _verdict(conv)[:4] == ("aborted", "client", "tls-handshake-failed", None)
        assert _findings(conv) == []
        frames[first] = conv["evidence_frame"]
    assert frames == {"client": 18, "server": 18}


def _plaintext_after_220(path: object, port: int) -> tuple[int, float]:
    """tshark: the 220 in 12, resent in 13 (300 ms later), the client's plaintext in 14, whose ACK
    covers nothing of the 220, the client's FIN in 16, 30 s after it. Returns the plaintext's
    frame and its time after the 220's first copy."""
    assert frames_matching(path, 'tcp.srcport == 25 && tcp.payload contains "220 2.0.0"') == [12, 13]
    assert frames_matching(path, "tcp.analysis.retransmission") == [13]
    ((seq,),) = tshark_fields(path, "frame.number == 12", "tcp.seq")
    ((ack,),) = tshark_fields(path, "frame.number == 14", "tcp.ack")
    assert int(ack) == int(seq)
    assert frames_matching(path, f"tcp.srcport == {port} && tcp.flags.fin == 1") == [16]
    t12, t14, t16 = _times(path, [12, 14, 16])
    assert t16 - t14 == pytest.approx(30.0, abs=0.001)
    return 14, t14 - t12


@pytest.mark.parametrize("name, port, payload", [
    ("hunt13-220-lost-quit-no-crlf-at-once.pcap", 49381, "QUIT"),
    ("hunt13-220-lost-quit-crlf-at-once.pcap", 49382, "QUIT\\r\\n"),
])
def test_plaintext_without_a_line_end_after_the_220_is_timed_by_its_first_byte(
        name: str, port: int, payload: str) -> None:
    """The 220 dropped on the path (resent, never acknowledged), ``QUIT`` 305 ms after it, the
    client's close 30 s later. Without its CRLF the plaintext was stamped with the close (30.3 s
    after the 220) and read as a client that gave up waiting for a 220 it never had (``middlebox``,
    ``answer-lost``); it reads as the one with its CRLF (the control): sent 305 ms after the 220,
    no giving up, and no readable answer of the server's, ``incomplete``."""
    path = CAPTURES / name
    conv = _conv(name)
    frame, after = _plaintext_after_220(path, port)
    assert after == pytest.approx(0.305, abs=0.0005)
    assert frames_matching(path, f'tcp.srcport == {port} && tcp.payload == "{payload}"') == [frame]
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, 14)
    assert _findings(conv) == []
    assert conv["detail"] == (
        "after the 220 the client went on in plaintext SMTP and the capture ends before any readable answer of the "
        "server: whether it answered in TLS (the client did not start TLS) or readably (a capture behind a TLS "
        "terminator) cannot be told")


def test_plaintext_without_a_line_end_a_second_after_a_lost_220_gives_its_own_wait() -> None:
    """``QUIT`` without CRLF 1.2 s after the resent 220 (1.5 s after its first copy), the close 30 s
    later: the path's (``answer-lost``), and the detail gives the 1.5 s the client waited, not the
    31.5 s to its close."""
    name = "hunt13-220-lost-quit-no-crlf-1-2-s.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    frame, after = _plaintext_after_220(path, 49383)
    assert after == pytest.approx(1.5, abs=0.0005)
    assert frames_matching(path, 'tcp.srcport == 49383 && tcp.payload == "QUIT"') == [frame]
    assert _verdict(conv) == ("aborted", "middlebox", "tls-not-started", "answer-lost", 12)
    assert _findings(conv) == [("answer-not-received", "middlebox", 12)]
    assert conv["detail"] == (
        "the server's 220 to STARTTLS (frame 12) never reached the client: the client's acknowledgements after it "
        "never covered a byte of it; 1.5 s after it the client gave up waiting and went on in plaintext SMTP "
        "('QUIT', frame 14): the answer was lost on the path (a box that drops it), so the client never knew it "
        "could start TLS")
