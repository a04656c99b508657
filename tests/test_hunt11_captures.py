"""A client that idles after the EHLO reply, whose STARTTLS then crosses the server's command
timeout 421 (captures/scenarios_hunt11.py).

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

TEXT = "4.4.2 mx.example timeout exceeded"


def _frames(path: object, port: int) -> tuple[int, int, int | None, int]:
    """tshark: the EHLO reply (the server's last 250), the 421, the client's STARTTLS (None:
    none) and the server's FIN."""
    ehlo_reply = max(int(n) for (n,) in tshark_fields(path, "smtp.response.code == 250", "frame.number"))
    (reply,) = frames_matching(path, "smtp.response.code == 421")
    starttls = frames_matching(path, f'tcp.srcport == {port} && tcp.payload contains "STARTTLS"')
    (fin,) = frames_matching(path, "tcp.srcport == 25 && tcp.flags.fin == 1")
    assert frames_matching(path, "tls") == []
    return ehlo_reply, reply, (starttls[0] if starttls else None), fin


def _idle(path: object, ehlo_reply: int, reply: int) -> float:
    """tshark: how long after the EHLO reply the 421 came."""
    flt = f"frame.number == {ehlo_reply} || frame.number == {reply}"
    at = {int(n): float(t) for n, t in tshark_fields(path, flt, "frame.number", "frame.time_relative")}
    return at[reply] - at[ehlo_reply]


@pytest.mark.parametrize("name, port, idle", [
    ("hunt11-idle-30-s-421-crosses-starttls.pcap", 49121, 30.0),
    ("hunt11-idle-299-s-421-crosses-starttls.pcap", 49122, 299.0),
])
def test_a_timeout_421_sooner_than_5_minutes_that_starttls_crossed_is_the_servers_close(
        name: str, port: int, idle: float) -> None:
    """The server's timeout 421 30 s (299 s) after its EHLO reply, the client's STARTTLS 0.1 ms
    after it, the server's close 1 ms later. It read as a stray line of the EHLO reply (case
    stray-answer: "the replies are one behind"): a 421 is a reply of its own (RFC 5321 3.8), and
    a server that gives up on a command sooner than the 5 minutes RFC 5321 4.5.3.2.7 asks did
    not wait as it should: the server's, case server-closed."""
    path = CAPTURES / name
    conv = _conv(name)
    ehlo_reply, reply, starttls, fin = _frames(path, port)
    assert (ehlo_reply, reply, starttls, fin) == (8, 10, 11, 13)
    assert _idle(path, ehlo_reply, reply) == pytest.approx(idle, abs=0.002)
    assert _verdict(conv) == ("aborted", "server", "starttls-refused", "server-closed", reply)
    assert _findings(conv) == [("server-closed", "server", fin)]
    assert conv["starttls"]["reply_code"] == 421
    assert conv["detail"] == (
        f"the server sent 421 ({TEXT}) on its own {idle:.1f} s after its EHLO reply, sooner than the 5 minutes "
        f"RFC 5321 4.5.3.2.7 asks a server to wait for the next command, before the client's STARTTLS (frame "
        f"{starttls}) could be answered: a server closing the session (RFC 5321 3.8), which the client read as "
        "the answer to STARTTLS; then it closed the connection")


@pytest.mark.parametrize("name, port, idle", [
    ("hunt11-idle-300-s-421-crosses-starttls.pcap", 49123, 300.0),
    ("hunt11-idle-600-s-421-crosses-starttls.pcap", 49124, 600.0),
])
def test_a_timeout_421_after_5_minutes_that_starttls_crossed_is_the_clients_idling(
        name: str, port: int, idle: float) -> None:
    """The same 300 s (600 s) after the EHLO reply: the server waited as RFC 5321 4.5.3.2.7 asks
    and timed out as allowed; the client idled. It read as the server's stray line; now as the
    same capture without STARTTLS (the control): no mail transaction, no side to blame."""
    path = CAPTURES / name
    conv = _conv(name)
    ehlo_reply, reply, starttls, fin = _frames(path, port)
    assert (ehlo_reply, reply, starttls, fin) == (8, 10, 11, 13)
    assert _idle(path, ehlo_reply, reply) == pytest.approx(idle, abs=0.002)
    assert _verdict(conv) == ("aborted", "none", "no-mail-transaction", None, None)
    assert _findings(conv) == []
    assert conv["starttls"]["requested"] is True and conv["starttls"]["reply_code"] == 421
    assert conv["detail"] == (
        f"the client sent nothing for {idle:.1f} s after the EHLO reply (frame {ehlo_reply}), until the server's "
        f"command timeout ended the session with 421 ({TEXT}) (frame {reply}), as RFC 5321 4.5.3.2.7 allows "
        f"after 5 minutes; the client's STARTTLS (frame {starttls}) crossed it; then it closed the connection; "
        "the conversation ended without a mail transaction")


def test_the_timeout_421_without_starttls_is_no_mail_transaction() -> None:
    """The control: the 421 300 s after the EHLO reply, no STARTTLS, the server's close."""
    name = "hunt11-idle-300-s-421-no-starttls.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ehlo_reply, reply, starttls, fin = _frames(path, 49125)
    assert (ehlo_reply, reply, starttls, fin) == (8, 10, None, 11)
    assert _idle(path, ehlo_reply, reply) == pytest.approx(300.0, abs=0.002)
    assert _verdict(conv) == ("aborted", "none", "no-mail-transaction", None, None)
    assert _findings(conv) == []
    assert conv["starttls"]["requested"] is False
    assert conv["detail"] == "the conversation ended without a mail transaction"


def test_the_servers_221_to_a_quit_at_once_is_named_in_the_detail() -> None:
    """TLS 1.2, the server's whole answer, QUIT in the clear 5 ms after it, the server's 221 1 ms
    after the QUIT, then its close: the client gave up on TLS at once (the client's, as
    hunt10-quit-at-once-tls12-server-fin.pcap). The detail named only the close, "answering those
    bytes, which are no TLS record", where the server answered them in the clear, as SMTP."""
    name = "hunt11-quit-at-once-server-221-then-fin.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    (quit_frame,) = frames_matching(path, 'tcp.srcport == 49126 && tcp.payload contains "QUIT"')
    (bye,) = frames_matching(path, 'tcp.srcport == 25 && tcp.payload contains "221 2.0.0 Bye"')
    (fin,) = frames_matching(path, "tcp.srcport == 25 && tcp.flags.fin == 1")
    assert frames_matching(path, "tls.handshake.type == 14") == [16]
    assert (quit_frame, bye, fin) == (18, 20, 22)
    assert frames_matching(path, f"frame.number == {bye} && tls") == []
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, quit_frame)
    assert _findings(conv) == []
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 18) 6 ms after the server's last record (frame 16), in the "
        "middle of the TLS handshake: it gave up on TLS at once; the server then answered 'QUIT' in the clear "
        "with '221 2.0.0 Bye' (frame 20), and closed the connection (frame 22)")
