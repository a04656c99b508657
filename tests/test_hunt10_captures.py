"""The server's answer to a client's plaintext in the middle of the TLS handshake
(captures/scenarios_hunt10.py).

Each capture is checked for its verdict, its evidence frame, its findings and its detail, and the
frames the verdict rests on are cross-checked with tshark's reading of the same file.
"""
from __future__ import annotations

import re
import subprocess
import sys

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


def _quit(path: object, port: int) -> int:
    """tshark: the one frame of the client's that carries QUIT, no TLS record in it."""
    (frame,) = frames_matching(path, f'tcp.srcport == {port} && tcp.payload contains "QUIT"')
    assert frames_matching(path, f"frame.number == {frame} && tls") == []
    return frame


def _server_end(path: object) -> tuple[int, str]:
    """tshark: the server's first frame that ends the handshake after its 220: its alert record, or
    else its FIN or RST, and which it is."""
    alerts = frames_matching(path, "tcp.srcport == 25 && tls.record.content_type == 21")
    # (tshark names a TLS 1.3 record's outer type 23 opaque_type once it has seen the ServerHello)
    enc = [int(n) for n, ln in tshark_fields(path, "tcp.srcport == 25 && tls.record.opaque_type == 23",
                                                "frame.number", "tls.record.length") if ln == "19"]
    ends = frames_matching(path, "tcp.srcport == 25 && (tcp.flags.fin == 1 || tcp.flags.reset == 1)")
    first = min(alerts + enc + ends)
    kind = ("alert" if first in alerts else "encrypted" if first in enc else
            "rst" if frames_matching(path, f"frame.number == {first} && tcp.flags.reset == 1") else "fin")
    return first, kind


REACTIONS = {
    "alert": "sent the fatal TLS alert unexpected_message (10) (frame {f})",
    "encrypted": "sent an encrypted alert (a record of alert size) (frame {f})",
    "fin": "closed the connection (frame {f})",
    "rst": "reset the connection (frame {f})",
}


def _tail(kind: str, frame: int) -> str:
    return f"; the server then {REACTIONS[kind].format(f=frame)}, answering those bytes, which are no TLS record"


@pytest.mark.parametrize("name, port, kind, version", [
    ("hunt10-quit-at-once-tls12-server-alert.pcap", 49101, "alert", "1.2"),
    ("hunt10-quit-at-once-tls13-server-encrypted-alert.pcap", 49102, "encrypted", "1.3"),
    ("hunt10-quit-at-once-tls12-server-fin.pcap", 49103, "fin", "1.2"),
    ("hunt10-quit-at-once-tls13-server-rst.pcap", 49104, "rst", "1.3"),
])
def test_the_servers_answer_to_plaintext_at_once_after_its_answer_is_the_clients(
        name: str, port: int, kind: str, version: str) -> None:
    """QUIT in the clear 5 ms after the server's whole answer, the server's alert, close or reset
    1 ms after the server's ACK of the QUIT. It read the server's (its alert or close "during the handshake"): the
    server answered bytes that are no TLS record; the client gave up on TLS at once, at its QUIT."""
    path = CAPTURES / name
    conv = _conv(name)
    quit_frame = _quit(path, port)
    end, seen = _server_end(path)
    assert seen == kind
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    ((ver,),) = tshark_fields(path, "frame.number == 16", "tls.handshake.version")
    assert version == "1.2" and int(ver, 16) == 0x0303 or version == "1.3"
    assert quit_frame == 18 and end == 20
    t16, t18, t20 = _times(path, [16, 18, 20])
    assert t18 - t16 == pytest.approx(0.006, abs=0.0005)
    assert t20 - t18 == pytest.approx(0.002, abs=0.0005)   # (1 ms after the server's ACK of the QUIT)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
    alert_finding = [("tls-alert", "server", 20)] if kind in ("alert", "encrypted") else []
    assert _findings(conv) == alert_finding
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 18) 6 ms after the server's last record (frame 16), in the "
        "middle of the TLS handshake: it gave up on TLS at once" + _tail(kind, 20))
    if alert_finding:
        (finding,) = conv["findings"]
        assert finding["message"] == (
            f"the server sent {REACTIONS[kind].format(f=20).removeprefix('sent ')} after the client had sent "
            "'QUIT' in the clear (frame 18) in the middle of the handshake")


def test_the_servers_alert_at_once_after_plaintext_before_any_answer_is_the_clients() -> None:
    """No answer yet: QUIT 5 ms after the ClientHello, the server's cleartext alert 1 ms after it:
    the client gave up on TLS at once (it read the server's alert)."""
    name = "hunt10-quit-after-hello-at-once-server-alert.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _quit(path, 49105) == 16
    assert _server_end(path) == (18, "alert")
    assert frames_matching(path, "tls.handshake.type == 2") == []
    ((desc,),) = tshark_fields(path, "frame.number == 18", "tls.alert_message.desc")
    assert desc == "10"
    t14, t16 = _times(path, [14, 16])
    assert t16 - t14 == pytest.approx(0.006, abs=0.0005)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 16)
    assert _findings(conv) == [("tls-alert", "server", 18)]
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 16) 6 ms after its ClientHello (frame 14), before any answer "
        "of the server's: it gave up on TLS at once, without waiting for the server's answer" + _tail("alert", 18))


def test_plaintext_a_second_after_an_unanswered_hello_is_still_the_servers_silence() -> None:
    """The control: QUIT 1.2 s after the ClientHello, never answered, the server's reset after it:
    the server never answered (server-silent), the reset named as its answer to the QUIT."""
    name = "hunt10-quit-after-hello-1-2-s-server-rst.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _quit(path, 49106) == 16
    assert _server_end(path) == (18, "rst")
    assert max(int(n) for (n,) in tshark_fields(path, "tcp.srcport == 25 && tcp.len > 0", "frame.number")) == 12
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 14)
    assert _findings(conv) == [("no-answer", "server", 14)]
    assert conv["detail"] == (
        "the server sent nothing for 1.2 s after the ClientHello: the client gave up waiting and sent 'QUIT' in the "
        "clear (frame 16)" + _tail("rst", 18))


def test_plaintext_a_second_after_a_stalled_answer_is_still_the_servers_stall() -> None:
    """The control: TLS 1.2, the answer without its ServerHelloDone, QUIT 1.2 s later, the server's
    alert after it: the server stalled in the middle of its answer (server-silent)."""
    name = "hunt10-stall-quit-1-2-s-server-alert.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _quit(path, 49107) == 18
    assert _server_end(path) == (20, "alert")
    assert frames_matching(path, "tls.handshake.type == 14") == []
    assert frames_matching(path, "tls.handshake.type == 12") == [16]
    t16, t18 = _times(path, [16, 18])
    assert t18 - t16 == pytest.approx(1.2, abs=0.002)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 16)
    assert _findings(conv) == [("no-answer", "server", 16), ("tls-alert", "server", 20)]
    assert conv["detail"] == (
        "the server's answer to the ClientHello stopped short of its ServerHelloDone (frame 16) and the server sent "
        "nothing more for 1.2 s: the client gave up waiting for the rest and sent 'QUIT' in the clear (frame 18)"
        + _tail("alert", 20))


def test_plaintext_a_second_after_the_whole_answer_is_the_clients_silence() -> None:
    """The control: TLS 1.3, the whole answer (its 53-byte Finished), QUIT 1.2 s later, the
    server's close 1 ms after it: the client had all it needed and did not go on (client-silent)."""
    name = "hunt10-whole-answer-quit-1-2-s-tls13-server-fin.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _quit(path, 49108) == 18
    assert _server_end(path) == (20, "fin")
    ((lengths,),) = tshark_fields(path, "frame.number == 16", "tls.record.length")
    assert lengths.split(",")[-1] == "53"
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 18)
    assert _findings(conv) == [("client-silent", "client", 16)]
    assert conv["detail"] == (
        "the client had the server's whole answer to its ClientHello (frame 16) and sent nothing for 1.2 s, no side "
        "of the handshake and no alert: then it sent 'QUIT' in the clear (frame 18), giving up on TLS"
        + _tail("fin", 20))


def test_the_servers_alert_before_the_plaintext_stays_the_servers() -> None:
    """The control: the server's alert 2 ms after its whole answer, the client's QUIT 5 ms after the
    alert: the alert ended the handshake first, the server's, as before."""
    name = "hunt10-server-alert-before-quit.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _quit(path, 49109) == 20
    assert _server_end(path) == (18, "alert")
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", None, 18)
    assert _findings(conv) == [("tls-alert", "server", 18)]
    assert conv["detail"] == "the server sent the fatal TLS alert unexpected_message (10) during the handshake"


@pytest.mark.parametrize("name, port, reply, starttls, fin", [
    ("hunt10-421-crosses-starttls.pcap", 49111, 10, 11, 13),
    ("hunt10-421-answers-starttls.pcap", 49112, 12, 10, 14),
])
def test_a_421_the_starttls_crossed_is_the_servers_close_not_a_stray_line(
        name: str, port: int, reply: int, starttls: int, fin: int) -> None:
    """The server's 421 0.5 ms after its EHLO reply, the client's STARTTLS crossing it, the server's
    close 1 ms later. It read as a stray line of the EHLO reply (case stray-answer: "the replies are
    one behind", the remedy one reply per command): a 421 is a reply of its own (RFC 5321 3.8), the
    server closing the session; the server's, case server-closed, as when the 421 answers STARTTLS
    (the control)."""
    path = CAPTURES / name
    conv = _conv(name)
    assert frames_matching(path, "smtp.response.code == 421") == [reply]
    assert frames_matching(path, f'tcp.srcport == {port} && tcp.payload contains "STARTTLS"') == [starttls]
    assert frames_matching(path, "tcp.srcport == 25 && tcp.flags.fin == 1") == [fin]
    assert frames_matching(path, "tls") == []
    ehlo_reply = max(int(n) for (n,) in tshark_fields(path, "smtp.response.code == 250", "frame.number"))
    t_ehlo, t_st = _times(path, [ehlo_reply, starttls])
    assert t_st - t_ehlo < 0.02      # (not a command timeout's 421 after a client that idled)
    assert _verdict(conv) == ("aborted", "server", "starttls-refused", "server-closed", reply)
    assert _findings(conv) == [("server-closed", "server", fin)]
    text = "421 4.3.2 Service shutting down, closing transmission channel"
    (finding,) = conv["findings"]
    if reply < starttls:
        # explain and the finding say what the verdict says: the 421 was sent on its own, no rest of
        # the EHLO reply and no answer to STARTTLS
        assert finding["message"] == (
            f"the server closed the connection (frame {fin}) after its 421 (frame {reply}), sent on its own, as a "
            "421 announces (RFC 5321 3.8: the server is closing the transmission channel): the client can go on "
            "only on a new connection")
        shown = subprocess.run([sys.executable, "-m", "pcapsmtp", "explain", str(path)], capture_output=True,
                               text=True, timeout=120)
        (row,) = [ln for ln in shown.stdout.splitlines() if re.match(rf"\s+{reply}\s+S: 421 ", ln)]
        assert row.endswith("pairing: the client reads this as the answer to STARTTLS; it is a 421 the server sent "
                            "on its own after its reply to EHLO, closing the session (RFC 5321 3.8)")
        assert "rest of the server's reply" not in shown.stdout
    else:
        assert finding["message"].startswith(
            f"the server closed the connection (frame {fin}) after its 421 to STARTTLS (frame {reply}), ")
    if reply < starttls:
        assert conv["detail"] == (
            f"the server sent 421 (4.3.2 Service shutting down, closing transmission channel) on its own after its "
            f"EHLO reply, before the client's STARTTLS (frame {starttls}) could be answered: a server closing the "
            "session (RFC 5321 3.8), which the client read as the answer to STARTTLS; then it closed the connection")
    else:
        assert conv["detail"] == f"the server answered STARTTLS with {text}; then it closed the connection"


@pytest.mark.parametrize("name, port, flag, how", [
    ("hunt10-server-resets-instead-of-starttls-answer.pcap", 49113, "reset", "reset"),
    ("hunt10-server-closes-instead-of-starttls-answer.pcap", 49114, "fin", "closed"),
])
def test_a_server_that_resets_instead_of_answering_starttls_is_said_to_reset(
        name: str, port: int, flag: str, how: str) -> None:
    """The server's reset 2 ms after STARTTLS, no answer: the server's (starttls-refused, at the
    reset), and the detail says it reset the connection (it said "closed"); the control, its FIN."""
    path = CAPTURES / name
    conv = _conv(name)
    assert frames_matching(path, f'tcp.srcport == {port} && tcp.payload contains "STARTTLS"') == [10]
    assert frames_matching(path, f"tcp.srcport == 25 && tcp.flags.{flag} == 1") == [12]
    assert max(int(n) for (n,) in tshark_fields(path, "tcp.srcport == 25 && tcp.len > 0", "frame.number")) == 8
    assert _verdict(conv) == ("aborted", "server", "starttls-refused", None, 12)
    assert _findings(conv) == []
    assert conv["detail"] == f"the server {how} the connection instead of answering STARTTLS"


@pytest.mark.parametrize("name, port, react", [
    ("hunt10-answer-lost-quit-1-2-s-alert.pcap", 49115, "alert"),
    ("hunt10-answer-lost-quit-1-2-s-fin.pcap", 49116, "fin"),
    ("hunt10-answer-lost-quit-1-2-s-client.pcap", 49117, "client"),
])
def test_plaintext_after_an_answer_the_client_never_had_leaves_the_loss_the_paths(
        name: str, port: int, react: str) -> None:
    """TLS 1.2, the server's whole answer dropped on the path (the server resends it 300 ms later;
    the client's ACKs never cover a byte of it), QUIT 1.2 s after the resend, then the server's
    alert or close. It read client-silent ("the client had the server's whole answer"): the QUIT is
    no answer of the client's to bytes it never had, the loss is the path's, as when the client
    closes itself (the control)."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _quit(path, port) == 18
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    assert frames_matching(path, "tcp.analysis.retransmission") == [17]
    (answer_end,) = {int(s) + int(n) for s, n in tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len")}
    client_acks = {int(a) for (a,) in tshark_fields(path, f"tcp.srcport == {port} && frame.number > 16", "tcp.ack")}
    assert client_acks and max(client_acks) < answer_end - 900
    t16, t17, t18 = _times(path, [16, 17, 18])
    assert t17 - t16 == pytest.approx(0.3, abs=0.0005) and t18 - t17 == pytest.approx(1.2, abs=0.0005)
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "answer-lost", 16)
    head = ("the server answered the ClientHello (frame 16), but the client never acknowledged a byte of that "
            "answer: 1.5 s later it ")
    lost = "; the answer was lost on the path (a path MTU black hole, a box that drops the server's TLS)"
    if react == "client":
        assert frames_matching(path, f"tcp.srcport == {port} && tcp.flags.fin == 1") == [20]
        assert _findings(conv) == [("answer-not-received", "middlebox", 16)]
        assert conv["detail"] == head + "closed the connection (frame 20)" + lost
        return
    assert _server_end(path) == (20, react)
    assert _findings(conv) == ([("answer-not-received", "middlebox", 16)]
                               + ([("tls-alert", "server", 20)] if react == "alert" else []))
    assert conv["detail"] == head + "sent 'QUIT' in the clear (frame 18)" + _tail(react, 20) + lost


@pytest.mark.parametrize("name, port, react", [
    ("hunt10-client-finished-quit-1-2-s-alert.pcap", 49118, "alert"),
    ("hunt10-client-finished-quit-1-2-s-fin.pcap", 49119, "fin"),
    ("hunt10-client-finished-quit-1-2-s-client.pcap", 49120, "client"),
])
def test_plaintext_after_the_clients_unanswered_finished_is_the_servers_silence(
        name: str, port: int, react: str) -> None:
    """TLS 1.2, the whole answer, the client's ChangeCipherSpec and Finished, which the server
    acknowledged and never answered, QUIT 1.2 s later, then the server's alert or close. It read
    client-silent ("no side of the handshake", the client's Finished in the capture): the server
    never answered the client's Finished (server-silent), as when the client closes itself (the
    control)."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _quit(path, port) == 20
    assert frames_matching(path, "tls.handshake.type == 14") == [16]
    assert frames_matching(path, "tls.record.content_type == 20") == [18]
    assert frames_matching(path, "tcp.srcport == 25 && tcp.ack == 295 && tcp.len == 0") == [19]
    assert max(int(n) for (n,) in tshark_fields(path, "tcp.srcport == 25 && tcp.len > 0 && tls.handshake",
                                                  "frame.number")) == 16
    t18, t20 = _times(path, [18, 20])
    assert t20 - t18 == pytest.approx(1.201, abs=0.0005)    # (1.2 s after the server's ACK of the Finished)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 18)
    head = ("the server sent nothing for 1.2 s after the client's Finished (frame 18), which it had acknowledged: "
            "the client gave up waiting and ")
    if react == "client":
        assert frames_matching(path, f"tcp.srcport == {port} && tcp.flags.fin == 1") == [22]
        assert _findings(conv) == [("no-answer", "server", 18)]
        assert conv["detail"] == head + "closed the connection (frame 22)"
        return
    assert _server_end(path) == (22, react)
    assert _findings(conv) == ([("no-answer", "server", 18)]
                               + ([("tls-alert", "server", 22)] if react == "alert" else []))
    assert conv["detail"] == head + "sent 'QUIT' in the clear (frame 20)" + _tail(react, 22)


@pytest.mark.parametrize("name, port, records, react", [
    ("hunt10-tls13-one-record-quit-1-2-s-alert.pcap", 49141, 1, "encrypted"),
    ("hunt10-tls13-one-record-quit-1-2-s-fin.pcap", 49142, 1, "fin"),
    ("hunt10-tls13-two-records-quit-1-2-s-rst.pcap", 49143, 2, "rst"),
    ("hunt10-tls13-one-record-quit-1-2-s-client.pcap", 49144, 1, "client"),
])
def test_plaintext_after_a_tls13_answer_of_unknown_end_is_the_clients_and_no_certificate_refusal(
        name: str, port: int, records: int, react: str) -> None:
    """TLS 1.3, the server's answer in one record (BoringSSL) or two, whose end (whole or short) the
    capture cannot tell, QUIT 1.2 s later, then the server's encrypted alert, close or reset. It
    read the server's ("refused the handshake, typically the certificate", "closed after the
    ServerHello") and never named the QUIT: the plaintext ended the handshake, the client's without
    a case, as when the client closes itself (the control), and the server refused nothing."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _quit(path, port) == 18
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    (answer_end,) = {int(q) + int(n) for q, n in tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len")}
    assert frames_matching(
        path, f"tcp.srcport == {port} && tcp.len == 0 && tcp.flags.fin == 0 && tcp.ack == {answer_end}") == [17]
    # (tshark names a TLS 1.3 record's outer type 23 opaque_type once it has seen the ServerHello)
    ((types,),) = tshark_fields(path, "frame.number == 16", "tls.record.opaque_type")
    assert types.split(",").count("23") == records
    t16, t18 = _times(path, [16, 18])
    assert t18 - t16 == pytest.approx(1.201, abs=0.0005)
    if react == "client":
        assert frames_matching(path, f"tcp.srcport == {port} && tcp.flags.fin == 1") == [20]
        # (the QUIT is where the client gave up, whichever side closes first: hunt13)
        assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
        assert _findings(conv) == []
        assert conv["detail"] == (
            "the client sent 'QUIT' in the clear (frame 18) 1.2 s after the server's last record (frame 16), giving "
            "up on TLS in the middle of the handshake, then closed the connection (frame 20); whether the server's "
            "answer was whole by then (a TLS 1.3 flight in 1 encrypted record, which may hold all of it or stop "
            "short) cannot be told")
        return
    assert _server_end(path) == (20, react)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
    assert _findings(conv) == ([("tls-alert", "server", 20)] if react == "encrypted" else [])
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 18) 1.2 s after the server's last record (frame 16), giving up "
        "on TLS in the middle of the handshake; whether the server's answer was whole by then (a TLS 1.3 flight in "
        f"{records} encrypted record{'s' if records > 1 else ''}, which may hold all of it or stop short) cannot be "
        "told" + _tail(react, 20))
    assert "certificate" not in conv["detail"]


def test_the_at_once_detail_names_the_wait_the_decision_used() -> None:
    """A long path seen from the server's side: the client's ACK of the answer (no ServerHelloDone)
    300 ms after it, its QUIT 1.1 s after the answer, the server's close. The decision counts the
    wait from the ACK (800 ms: at once) and the detail printed only the 1100 ms since the record."""
    name = "hunt10-late-ack-quit-0-8-s-server-fin.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    assert _quit(path, 49147) == 18
    assert _server_end(path) == (20, "fin")
    assert frames_matching(path, "tls.handshake.type == 14") == []
    (ack,) = frames_matching(path, "tcp.srcport == 49147 && tcp.len == 0 && tcp.ack > 1000")[:1]
    t16, t_ack, t18 = _times(path, [16, ack, 18])
    assert (t_ack - t16, t18 - t_ack) == (pytest.approx(0.3, abs=0.0005), pytest.approx(0.8, abs=0.0005))
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 18) 1100 ms after the server's last record (frame 16; 800 ms "
        "after the client had it, from its TCP's acknowledgements), in the middle of the TLS handshake: it gave up "
        "on TLS at once" + _tail("fin", 20))


@pytest.mark.parametrize("name, port, react", [
    ("hunt10-tls13-quit-1-2-s-then-rest-fin.pcap", 49148, "fin"),
    ("hunt10-tls13-quit-1-2-s-then-rest-alert.pcap", 49149, "encrypted"),
])
def test_plaintext_before_the_rest_of_a_tls13_answer_is_the_servers_stall(name: str, port: int, react: str) -> None:
    """TLS 1.3, the server's answer up to its Certificate (the ServerHello and two encrypted records,
    whole or short cannot be told from them), QUIT 1.2 s later, then the rest of the answer (two
    records) and the server's close or encrypted alert. It read the client's ("cannot be told",
    the third review): the rest coming after the QUIT shows the answer was short when the client
    gave up, the server's stall (server-silent, no-answer at the answer)."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _quit(path, port) == 18
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    ((types,),) = tshark_fields(path, "frame.number == 16", "tls.record.opaque_type")
    assert types.split(",").count("23") == 2
    ((rest,),) = tshark_fields(path, "frame.number == 20 && tcp.srcport == 25", "tls.record.opaque_type")
    assert rest.split(",") == ["23", "23"]
    t16, t18, t20 = _times(path, [16, 18, 20])
    assert t18 - t16 == pytest.approx(1.201, abs=0.0005) and t20 > t18
    assert _server_end(path) == (22, react)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 16)
    assert _findings(conv) == ([("no-answer", "server", 16)]
                               + ([("tls-alert", "server", 22)] if react == "encrypted" else []))
    assert conv["detail"] == (
        "the server's answer to the ClientHello (frame 16) stopped short and the server sent nothing more for "
        "1.2 s: the client gave up waiting for the rest and sent 'QUIT' in the clear (frame 18), and more of the "
        "answer came only after it (frame 20)" + _tail(react, 22))


@pytest.mark.parametrize("name, port, length", [
    ("hunt10-tls13-one-record-quit-1-2-s-then-250-byte-record.pcap", 49150, 250),
    ("hunt10-tls13-one-record-quit-1-2-s-then-35-byte-record.pcap", 49151, 35),
])
def test_a_record_after_the_plaintext_that_ends_no_flight_tells_nothing(name: str, port: int, length: int) -> None:
    """The controls (the fourth review): a TLS 1.3 answer in one record, QUIT 1.2 s later, then one
    more record (a late session ticket; an alert padded past the size told as one) and the close:
    no Finished among them, so the answer's end still cannot be told: the client's, no case."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _quit(path, port) == 18
    ((lengths,),) = tshark_fields(path, "frame.number == 20 && tcp.srcport == 25", "tls.record.length")
    assert lengths == str(length)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
    assert _findings(conv) == []
    assert conv["detail"] == (
        "the client sent 'QUIT' in the clear (frame 18) 1.2 s after the server's last record (frame 16), giving up "
        "on TLS in the middle of the handshake; whether the server's answer was whole by then (a TLS 1.3 flight in "
        "1 encrypted record, which may hold all of it or stop short) cannot be told" + _tail("fin", 22))
