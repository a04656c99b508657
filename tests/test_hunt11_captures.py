"""A client that idles after the EHLO reply, whose STARTTLS then crosses the server's command
timeout 421 (captures/scenarios_hunt11.py).

Each capture is checked for its verdict, its evidence frame, its findings and its detail, and the
frames and times the verdict rests on are cross-checked with tshark's reading of the same file.
"""
from __future__ import annotations

import cuts
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
    ("hunt11-idle-299-97-s-421-crosses-starttls.pcap", 49129, 299.97),
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
        f"the server sent 421 ({TEXT}) on its own {int(idle * 10) / 10:.1f} s after its EHLO reply (frame "
        f"{ehlo_reply}), sooner "
        "than the 5 minutes "
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


def _noop_frames(path: object, port: int) -> tuple[int, int, int, int, int]:
    """tshark: the client's NOOP, the server's 250 to it (its last 250), the 421, the client's
    STARTTLS and the server's FIN."""
    (noop,) = frames_matching(path, 'smtp.req.command == "NOOP"')
    ehlo_or_noop, reply, starttls, fin = _frames(path, port)
    assert starttls is not None
    return noop, ehlo_or_noop, reply, starttls, fin


def test_the_wait_before_a_timeout_421_counts_from_the_servers_last_reply() -> None:
    """The client's NOOP 200 s after the EHLO reply, the server's 250 to it, the timeout 421 150 s
    after that 250, STARTTLS crossing it: the NOOP started the server's wait again (RFC 5321
    4.5.3.2.7 times the wait for the next command), so the server waited 150 s, not 350 s: the
    server's, server-closed (it read no-mail-transaction, timed from the EHLO reply)."""
    name = "hunt11-noop-200-s-idle-150-s-421-crosses-starttls.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    noop, noop_reply, reply, starttls, fin = _noop_frames(path, 49127)
    assert (noop, noop_reply, reply, starttls, fin) == (10, 12, 14, 15, 17)
    assert _idle(path, noop_reply, reply) == pytest.approx(150.0, abs=0.002)
    assert _verdict(conv) == ("aborted", "server", "starttls-refused", "server-closed", reply)
    assert _findings(conv) == [("server-closed", "server", fin)]
    assert conv["detail"] == (
        f"the server sent 421 ({TEXT}) on its own 150.0 s after its reply to NOOP (frame {noop_reply}), sooner "
        "than the 5 minutes RFC 5321 4.5.3.2.7 asks a server to wait for the next command, before the client's "
        f"STARTTLS (frame {starttls}) could be answered: a server closing the session (RFC 5321 3.8), which the "
        "client read as the answer to STARTTLS; then it closed the connection")


def test_a_timeout_421_five_minutes_after_a_noops_reply_is_the_clients_idling() -> None:
    """The NOOP 10 s after the EHLO reply, the 421 301 s after its 250: the server waited as
    allowed; the detail times the wait from the reply to NOOP (it said 311 s after the EHLO
    reply)."""
    name = "hunt11-noop-10-s-idle-301-s-421-crosses-starttls.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    noop, noop_reply, reply, starttls, fin = _noop_frames(path, 49128)
    assert (noop, noop_reply, reply, starttls, fin) == (10, 12, 14, 15, 17)
    assert _idle(path, noop_reply, reply) == pytest.approx(301.0, abs=0.002)
    assert _verdict(conv) == ("aborted", "none", "no-mail-transaction", None, None)
    assert _findings(conv) == []
    assert conv["detail"] == (
        f"the client sent nothing for 301.0 s after the server's reply to NOOP (frame {noop_reply}), until the "
        f"server's command timeout ended the session with 421 ({TEXT}) (frame {reply}), as RFC 5321 4.5.3.2.7 "
        f"allows after 5 minutes; the client's STARTTLS (frame {starttls}) crossed it; then it closed the "
        "connection; the conversation ended without a mail transaction")


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


@pytest.mark.parametrize("name, start, verdict", [
    ("hunt11-idle-30-s-421-crosses-starttls.pcap", 7, ("aborted", "server", "starttls-refused", "server-closed", 10)),
    ("hunt11-idle-30-s-421-crosses-starttls.pcap", 8, ("aborted", "server", "starttls-refused", "server-closed", 10)),
    ("hunt11-noop-200-s-idle-150-s-421-crosses-starttls.pcap", 11,
     ("aborted", "server", "starttls-refused", "server-closed", 14)),
    ("hunt11-noop-10-s-idle-301-s-421-crosses-starttls.pcap", 9,
     ("aborted", "none", "no-mail-transaction", None, None)),
])
def test_a_late_start_after_the_ehlo_reads_the_timeout_as_the_whole_capture(
        name: str, start: int, verdict: tuple[object, ...]) -> None:
    """The capture from frame ``start`` on (after the EHLO, the NOOP kept or not): the 421 pairs with
    STARTTLS or with no command, and the wait still counts from the server's last reply the capture
    holds, as in the whole capture (a late start under 5 minutes read the generic close)."""
    (conv,) = cuts.analyze(cuts.start_at(cuts.load(CAPTURES / name), start))
    assert _verdict(conv) == verdict


def test_a_timeout_421_after_the_greeting_is_timed_from_the_greeting() -> None:
    """No EHLO: the 421 150 s after the greeting, STARTTLS crossing it: server-closed, and the detail
    names the greeting (it said "its last reply")."""
    name = "hunt11-greeting-then-421-150-s-crosses-starttls.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    (greeting,) = frames_matching(path, "smtp.response.code == 220")
    (reply,) = frames_matching(path, "smtp.response.code == 421")
    (starttls,) = frames_matching(path, 'tcp.srcport == 49130 && tcp.payload contains "STARTTLS"')
    assert (greeting, reply, starttls) == (4, 6, 7)
    assert _idle(path, greeting, reply) == pytest.approx(150.0, abs=0.002)
    assert _verdict(conv) == ("aborted", "server", "starttls-refused", "server-closed", reply)
    assert conv["detail"] == (
        f"the server sent 421 ({TEXT}) on its own 150.0 s after its greeting (frame {greeting}), sooner than the 5 "
        "minutes RFC 5321 4.5.3.2.7 asks a server to wait for the next command, before the client's STARTTLS "
        f"(frame {starttls}) could be answered: a server closing the session (RFC 5321 3.8), which the client read "
        "as the answer to STARTTLS; then it closed the connection")
