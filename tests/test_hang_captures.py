"""The captures of captures/scenarios_hang.py: a server (or a box in front of it) that never
answers STARTTLS, that answers 220 and then never answers the ClientHello, or that resets the
connection after the ClientHello. The server is blamed in all three, at the frame nothing
answered (STARTTLS, the ClientHello) or at its RST, as tshark finds them; what the client sent
after it gave up is commands, never a STARTTLS injection; a plaintext retry is tls-fallback; and
a client that closes without waiting is not a timeout."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pcapsmtp.analysis.reasons import FINDINGS, REASON_CASES
from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
STARTTLS = 'smtp.req.command == "STAR" || smtp.req.command == "STARTTLS"'
CLIENT_FIN = "tcp.flags.fin == 1 && tcp.dstport == 25"


def _convs(name: str) -> list[dict[str, Any]]:
    return analyze_path(str(CAPTURES / name))


def _verdict(c: dict[str, Any]) -> tuple[str, str, str]:
    return c["outcome"], c["caused_by"], c["reason"]


def _no_answer(conv: dict[str, Any], frame: int, reason: str, case: str) -> dict[str, Any]:
    """The conversation names the unanswered frame as its evidence, with the no-answer finding
    there and the case's explanation."""
    assert conv["evidence_frame"] == frame
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("no-answer", "server", frame)]
    (finding,) = conv["findings"]
    assert finding["rfc"] == FINDINGS["no-answer"].rfc == "RFC 5321 4.5.3.2"
    info = REASON_CASES[(reason, case)]
    assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}
    assert info.caused_by == conv["caused_by"] == "server"
    return finding


def test_starttls_never_answered_is_the_servers_doing() -> None:
    name = "hang-starttls-silent.pcap"
    (conv,) = _convs(name)
    (starttls,) = frames_matching(CAPTURES / name, STARTTLS)
    (fin,) = frames_matching(CAPTURES / name, CLIENT_FIN)
    assert _verdict(conv) == ("aborted", "server", "starttls-refused")
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": None, "frame": starttls}
    finding = _no_answer(conv, starttls, "starttls-refused", "no-answer")
    assert finding["message"] == conv["detail"] == (
        f"the server sent nothing for 5.0 s after STARTTLS: the client gave up waiting and closed the "
        f"connection (frame {fin})")


def test_what_the_client_sends_after_giving_up_is_no_injection() -> None:
    name = "hang-starttls-silent-quit.pcap"
    (conv,) = _convs(name)
    (starttls,) = frames_matching(CAPTURES / name, STARTTLS)
    (quit_,) = frames_matching(CAPTURES / name, 'smtp.req.command == "QUIT"')
    assert _verdict(conv) == ("aborted", "server", "starttls-refused")
    finding = _no_answer(conv, starttls, "starttls-refused", "no-answer")
    assert finding["message"].endswith(f"the client gave up waiting and sent QUIT (frame {quit_})")


def test_plaintext_on_the_same_connection_after_the_wait() -> None:
    """swaks --tls-optional: MAIL FROM in the clear once it stopped waiting."""
    name = "hang-starttls-silent-plaintext.pcap"
    (conv,) = _convs(name)
    (starttls,) = frames_matching(CAPTURES / name, STARTTLS)
    (mail,) = frames_matching(CAPTURES / name, 'smtp.req.command == "MAIL"')
    assert _verdict(conv) == ("plaintext", "server", "starttls-refused")
    assert conv["mail"] is True and conv["delivered"] is False
    finding = _no_answer(conv, starttls, "starttls-refused", "no-answer")
    assert finding["message"].endswith(
        f"went on in plaintext on the same connection (MAIL, frame {mail})")


def test_a_client_that_does_not_wait_is_no_timeout() -> None:
    name = "hang-starttls-no-wait.pcap"
    (conv,) = _convs(name)
    (fin,) = frames_matching(CAPTURES / name, CLIENT_FIN)
    assert _verdict(conv) == ("aborted", "none", "no-mail-transaction")
    assert conv["findings"] == [] and conv["evidence_frame"] is None
    assert conv["detail"].startswith(f"6 ms after STARTTLS the client closed the connection (frame {fin})")


def test_clienthello_never_answered_is_the_servers_doing() -> None:
    name = "hang-tls-stall.pcap"
    (conv,) = _convs(name)
    (hello,) = frames_matching(CAPTURES / name, "tls.handshake.type == 1")
    (fin,) = frames_matching(CAPTURES / name, CLIENT_FIN)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed")
    assert conv["tls"]["client_hello_frame"] == hello and conv["tls"]["server_hello_frame"] is None
    finding = _no_answer(conv, hello, "tls-handshake-failed", "server-silent")
    assert finding["message"] == conv["detail"] == (
        f"the server sent nothing for 5.0 s after the ClientHello: the client gave up waiting and "
        f"closed the connection (frame {fin})")


def test_a_client_that_closes_right_after_its_clienthello_ended_the_handshake() -> None:
    name = "hang-tls-no-wait.pcap"
    (conv,) = _convs(name)
    (fin,) = frames_matching(CAPTURES / name, CLIENT_FIN)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed")
    assert conv["evidence_frame"] == fin and conv["findings"] == []


def test_server_reset_after_the_clienthello() -> None:
    name = "hang-tls-rst.pcap"
    convs = _convs(name)
    (rst,) = frames_matching(CAPTURES / name, "tcp.flags.reset == 1 && tcp.srcport == 25")
    assert _verdict(convs[0]) == ("aborted", "server", "tls-handshake-failed")
    assert convs[0]["evidence_frame"] == rst and convs[0]["findings"] == []
    assert convs[0]["detail"] == ("the server reset the connection before the ServerHello, before the "
                                  "handshake completed")


def test_plaintext_retry_after_each_hang_is_tls_fallback() -> None:
    """The retry is blamed on the server, like the failure it follows, with MAIL FROM as its
    evidence."""
    for name, reason in (("hang-starttls-silent-fallback.pcap", "starttls-refused"),
                         ("hang-tls-stall-fallback.pcap", "tls-handshake-failed"),
                         ("hang-tls-rst.pcap", "tls-handshake-failed")):
        first, retry = _convs(name)
        mails = frames_matching(CAPTURES / name, 'smtp.req.command == "MAIL"')
        assert _verdict(first) == ("aborted", "server", reason), name
        assert _verdict(retry) == ("plaintext", "server", "tls-fallback"), name
        assert retry["fallback_of"] == {"stream": 0, "reason": reason, "frame": first["evidence_frame"],
                                        "previous_reason": "client-did-not-request"}
        assert retry["starttls"]["offered"] == "valid" and retry["starttls"]["requested"] is False
        assert retry["evidence_frame"] == mails[0]


def test_a_clients_alert_at_the_end_of_its_wait_is_still_the_servers_silence() -> None:
    name = "hang-tls-stall-alert.pcap"
    (conv,) = _convs(name)
    (hello,) = frames_matching(CAPTURES / name, "tls.handshake.type == 1")
    (alert,) = frames_matching(CAPTURES / name, "tls.alert_message.desc == 80 && tcp.dstport == 25")
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed")
    assert conv["evidence_frame"] == hello and conv["tls"]["alert"]["frame"] == alert
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("no-answer", "server", hello), ("tls-alert", "client", alert)]
    assert conv["detail"] == ("the server sent nothing for 5.0 s after the ClientHello: the client gave up "
                              f"waiting and sent the fatal TLS alert internal_error (80) (frame {alert})")
    info = REASON_CASES[("tls-handshake-failed", "server-silent")]
    assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}


def test_no_silence_where_the_capture_cannot_show_one() -> None:
    """The server's answer lost from the capture (a hole the client's FIN acknowledges, and the
    server's ACK of it and its FIN prove: the gap at the client's FIN, which comes first and must
    not overtake the bytes, before tshark's lost_segment), or the server's direction not
    captured at all: no server is blamed for a silence, the conversation is incomplete, as it
    was before the no-answer rule."""
    name = "hang-starttls-answer-lost.pcap"
    (conv,) = _convs(name)
    (client_fin,) = frames_matching(CAPTURES / name, "tcp.flags.fin == 1 && tcp.dstport == 25")
    (lost,) = frames_matching(CAPTURES / name, "tcp.analysis.lost_segment && tcp.srcport == 25")
    assert client_fin < lost
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete")
    assert [(f["code"], f["frame"]) for f in conv["findings"]] == [("tcp-gap", client_fin)]
    for name in ("hang-starttls-silent-one-sided.pcap", "hang-tls-stall-one-sided.pcap"):
        (conv,) = _convs(name)
        assert _verdict(conv) == ("incomplete", "unknown", "incomplete"), name
        assert [f["code"] for f in conv["findings"]] == ["one-sided"], name
        assert frames_matching(CAPTURES / name, "tcp.srcport == 25") == [], name


EHLO_CMD = 'smtp.req.command == "EHLO"'


def test_ehlo_never_answered_is_the_servers_doing() -> None:
    """No reply to EHLO (Postfix 'timed out while sending EHLO'), or a reply that stops before its
    last line: the client cannot see STARTTLS; the server's, at the EHLO."""
    for name, first, act in (("hang-ehlo-silent.pcap", "the server sent no reply to EHLO", "closed the connection"),
                             ("hang-ehlo-stall-quit.pcap", None, "sent QUIT")):
        (conv,) = _convs(name)
        (ehlo,) = frames_matching(CAPTURES / name, EHLO_CMD)
        assert _verdict(conv) == ("aborted", "server", "ehlo-rejected"), name
        assert conv["case"] == "no-answer" and conv["starttls"]["offered"] == "unknown"
        finding = _no_answer(conv, ehlo, "ehlo-rejected", "no-answer")
        if first is None:
            (reply,) = frames_matching(CAPTURES / name, "smtp.response.code == 250")
            first = f"the server began its EHLO reply (frame {reply}) and never sent its last line"
        step = frames_matching(CAPTURES / name, 'smtp.req.command == "QUIT"' if "QUIT" in act else CLIENT_FIN)[0]
        assert finding["message"] == conv["detail"] == (
            f"{first}: 5.0 s after the EHLO the client gave up waiting and {act} (frame {step}); a client "
            "reads the extension list only once the reply ends, so STARTTLS could not be negotiated")


def test_a_client_that_does_not_wait_for_the_ehlo_reply_is_no_timeout() -> None:
    """Sooner than a second after EHLO, or with EHLO sent before the server's greeting ended (a
    pregreeting client), the client gave up on nothing the server owed it."""
    for name in ("hang-ehlo-no-wait.pcap", "hang-ehlo-before-greeting.pcap"):
        (conv,) = _convs(name)
        assert _verdict(conv) == ("aborted", "none", "no-mail-transaction"), name
        assert conv["findings"] == [] and "case" not in conv


def test_the_221_to_quit_is_no_answer_to_the_command_before_it() -> None:
    """The client gave up waiting and sent QUIT, which the server answered 221: the 221 answers
    the QUIT, and what the client waited for (EHLO, STARTTLS) still got no answer."""
    for name, asked, reason in (("hang-ehlo-silent-quit-221.pcap", EHLO_CMD, "ehlo-rejected"),
                                ("hang-starttls-silent-quit-221.pcap", STARTTLS, "starttls-refused")):
        (conv,) = _convs(name)
        (frame,) = frames_matching(CAPTURES / name, asked)
        (quit_,) = frames_matching(CAPTURES / name, 'smtp.req.command == "QUIT"')
        assert _verdict(conv) == ("aborted", "server", reason), name
        assert conv["case"] == "no-answer" and conv["starttls"]["reply_code"] is None
        finding = _no_answer(conv, frame, reason, "no-answer")
        assert f"gave up waiting and sent QUIT (frame {quit_})" in finding["message"]
def test_a_server_step_after_the_client_gave_up_answers_nothing() -> None:
    """The client waited 30 s for the ServerHello, or (its side of the handshake done) for the
    server's Finished (TLS 1.2) or first record after its Finished (TLS 1.3), and closed; the
    server's step came 100 ms after that close: too late to count. The server never answered in
    time (case server-silent, at the ClientHello or the client's Finished), not the client that
    closed 'after the ServerHello', and no TLS 1.3 session was established."""
    for what, asked in (("hello", "tls.handshake.type == 1"),
                        ("tls12", "tls.record.content_type == 20 && tcp.dstport == 25"),
                        ("tls13", "tls.record.content_type == 20 && tcp.dstport == 25")):
        name = f"hang-tls-late-{what}.pcap"
        (conv,) = _convs(name)
        (frame,) = frames_matching(CAPTURES / name, asked)
        (fin,) = frames_matching(CAPTURES / name, CLIENT_FIN)
        assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed"), name
        assert conv["case"] == "server-silent" and conv["tls"]["established"] is False, name
        finding = _no_answer(conv, frame, "tls-handshake-failed", "server-silent")
        assert finding["message"].endswith(f"the client gave up waiting and closed the connection (frame {fin})")


def test_an_answer_after_the_client_gave_up_is_none() -> None:
    """STARTTLS, the client's QUIT two seconds later, then the server's 220 and 221: the client
    read no answer to STARTTLS (it had stopped waiting), so no TLS was due; the server's."""
    name = "hang-starttls-late-220.pcap"
    (conv,) = _convs(name)
    (starttls,) = frames_matching(CAPTURES / name, STARTTLS)
    (quit_,) = frames_matching(CAPTURES / name, 'smtp.req.command == "QUIT"')
    assert _verdict(conv) == ("aborted", "server", "starttls-refused") and conv["case"] == "no-answer"
    assert conv["starttls"]["reply_code"] is None and conv["tls"]["client_hello_frame"] is None
    finding = _no_answer(conv, starttls, "starttls-refused", "no-answer")
    assert finding["message"] == (f"the server sent nothing for 2.0 s after STARTTLS: the client gave up "
                                  f"waiting and sent QUIT (frame {quit_})")
