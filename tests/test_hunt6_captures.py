"""Whose timer fires first around the server's answer to the ClientHello
(captures/scenarios_hunt6.py).

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

#: RFC 8446 4.1.3: the random of a HelloRetryRequest, as tshark prints it
HRR_RANDOM = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"


def _times(path: object, frames: list[int]) -> list[float]:
    flt = " || ".join(f"frame.number == {n}" for n in frames)
    return [float(t) for (t,) in tshark_fields(path, flt, "frame.time_relative")]


def _acked_whole(path: object, data: int, ack: int) -> None:
    """tshark: the client's segment ``ack`` acknowledges every byte of the server's ``data``."""
    ((seq, length),) = tshark_fields(path, f"frame.number == {data}", "tcp.seq", "tcp.len")
    ((got,),) = tshark_fields(path, f"frame.number == {ack}", "tcp.ack")
    assert int(got) == int(seq) + int(length)


@pytest.mark.parametrize("name, port, short, how, waited", [
    ("hunt6-server-stalls-mid-answer-client-closes.pcap", 48601, "its ServerHelloDone", "closed", "30.0 s"),
    ("hunt6-server-stalls-mid-answer-tls13-client-resets.pcap", 48602, "its Finished", "reset", "300.0 s"),
])
def test_a_server_stalled_mid_answer_is_the_servers_when_the_clients_timer_fires_first(
        name: str, port: int, short: str, how: str, waited: str) -> None:
    """The server's answer stops short of whole (no ServerHelloDone; TLS 1.3 without its Finished),
    the client acknowledges all of it and waits; its own timeout closes or resets first. It read
    the client's ("closed the connection after the ServerHello"), while the server's timeout
    closing first reads the server's: the client waited for the rest, so the server's
    (server-silent, as a ClientHello never answered)."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 16)
    assert _findings(conv) == [("no-answer", "server", 16)]
    assert conv["detail"] == (f"the server's answer to the ClientHello stopped short of {short} (frame 16, which the "
                              f"client acknowledged) and the server sent nothing more for {waited}: the client gave up "
                              f"waiting for the rest and {how} the connection (frame 18)")
    assert conv["explanation"]["ask"].startswith("Ask the receiving server's admin")
    # tshark: the answer in 16, all of it acknowledged in 17, the client's end in 18 and nothing
    # of the client's TLS after its ClientHello
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    _acked_whole(path, 16, 17)
    flag = "tcp.flags.reset == 1" if how == "reset" else "tcp.flags.fin == 1"
    assert frames_matching(path, flag) == [18]
    assert frames_matching(path, f"tcp.srcport == {port} && tls") == [14]
    t16, t18 = _times(path, [16, 18])
    assert t18 - t16 == pytest.approx(float(waited.split()[0]), abs=0.01)
    if "tls13" in name:
        ((lengths,),) = tshark_fields(path, "frame.number == 16", "tls.record.length")
        assert lengths == "122,1,27,700,89"      # (no 53-byte Finished)
    else:
        assert frames_matching(path, "tls.handshake.type == 12") == [16]
        assert frames_matching(path, "tls.handshake.type == 14") == []


def test_a_server_stalled_mid_answer_and_the_clients_timeout_alert() -> None:
    """The same stall, the client's timeout sending a fatal internal_error alert before it closes:
    the alert is the client's finding, the stall that caused it the server's (it read the
    client's, "sent the fatal TLS alert internal_error during the handshake")."""
    path = CAPTURES / "hunt6-server-stalls-mid-answer-client-alert.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 16)
    assert _findings(conv) == [("no-answer", "server", 16), ("tls-alert", "client", 18)]
    assert conv["detail"].endswith("the client gave up waiting for the rest and sent the fatal TLS alert "
                                   "internal_error (80) (frame 18)")
    assert conv["findings"][1]["message"] == ("the client sent the fatal TLS alert internal_error (80) 30.0 s after "
                                              "the server's last record (frame 16), having waited for the rest of its "
                                              "answer")
    assert frames_matching(path, "tls.alert_message.desc == 80") == [18]
    assert frames_matching(path, "tls.handshake.type == 14") == []
    _acked_whole(path, 16, 17)


@pytest.mark.parametrize("name, port, how, waited", [
    ("hunt6-client-hangs-after-answer-client-closes.pcap", 48604, "closed", "30.0 s"),
    ("hunt6-client-hangs-after-answer-tls13-client-resets.pcap", 48605, "reset", "300.0 s"),
])
def test_a_client_that_had_the_whole_answer_and_timed_out_itself_is_client_silent(
        name: str, port: int, how: str, waited: str) -> None:
    """The mirror: the server's whole answer acknowledged, the client silent (no flight, no
    alert) until its own timeout closes or resets, before the server's. It read the client's
    with no case and an RFC 8460 validation-failure: the client stalled, nothing says the
    receiving server's TLS failed (client-silent, as when the server's timeout closes first)."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 18)
    assert _findings(conv) == [("client-silent", "client", 16)]
    assert conv["detail"] == (f"the client acknowledged the server's whole answer to its ClientHello (frame 16) and "
                              f"sent nothing for {waited}, no side of the handshake and no alert: then it {how} the "
                              "connection (frame 18) without a word, as a client whose TLS stalled (its certificate "
                              "check, say) until its own timeout does")
    assert "tlsrpt_result" not in conv
    assert conv["explanation"]["ask"].startswith("Ask the sending side's admin")
    _acked_whole(path, 16, 17)
    assert frames_matching(path, f"tcp.srcport == {port} && tls") == [14]
    assert frames_matching(path, "tcp.flags.fin == 1 || tcp.flags.reset == 1") == [18]
    t16, t18 = _times(path, [16, 18])
    assert t18 - t16 == pytest.approx(float(waited.split()[0]), abs=0.01)
    if "tls13" in name:
        ((lengths,),) = tshark_fields(path, "frame.number == 16", "tls.record.length")
        assert lengths.split(",")[-1] == "53"
    else:
        assert frames_matching(path, "tls.handshake.type == 14") == [16]


def test_a_client_that_closes_at_once_after_the_answer_is_still_the_one_that_ended_it() -> None:
    """The control: the client closes 5 ms after the whole answer, without an alert: it decided at
    once (no stall to speak of): the client's, with no case, as before."""
    path = CAPTURES / "hunt6-client-closes-at-once-after-answer.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
    assert _findings(conv) == []
    assert conv["detail"] == "the client closed the connection after the ServerHello, before the handshake completed"
    t16, t18 = _times(path, [16, 18])
    assert t18 - t16 == pytest.approx(0.006, abs=0.001)
    _acked_whole(path, 16, 17)


def test_a_client_silent_after_a_hello_retry_request_is_the_clients() -> None:
    """The server answers the ClientHello with a HelloRetryRequest (and the compatibility
    ChangeCipherSpec), the client acknowledges it and never sends its second ClientHello; the
    server's handshake timeout closes 60 s later, the client 5 s after. It read the server's
    ("closed the connection before the ServerHello"): the model did not see the
    HelloRetryRequest."""
    path = CAPTURES / "hunt6-client-silent-after-hrr.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 18)
    assert _findings(conv) == [("client-silent", "client", 16)]
    assert conv["detail"] == ("the client acknowledged the server's HelloRetryRequest (frame 16), which asked for a "
                              "second ClientHello, and sent nothing for 60.0 s: the server gave up waiting for the "
                              "client's second ClientHello and closed the connection (frame 18); the client then "
                              "closed its side without having sent anything (frame 19)")
    assert "tlsrpt_result" not in conv
    # tshark: one ServerHello-type message in 16, with the HelloRetryRequest's random, and the
    # CCS; the client's ACK of all of it in 17; the FINs in 18 and 19; one ClientHello
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    ((rnd, types),) = tshark_fields(path, "frame.number == 16", "tls.handshake.random", "tls.record.content_type")
    assert rnd == HRR_RANDOM and types == "22,20"
    _acked_whole(path, 16, 17)
    assert frames_matching(path, "tcp.flags.fin == 1") == [18, 19]
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    t16, t18 = _times(path, [16, 18])
    assert t18 - t16 == pytest.approx(60.0, abs=0.01)


def test_a_client_silent_after_a_hello_retry_request_its_own_timeout_first() -> None:
    path = CAPTURES / "hunt6-client-silent-after-hrr-client-closes.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 18)
    assert _findings(conv) == [("client-silent", "client", 16)]
    assert conv["detail"] == ("the client acknowledged the server's HelloRetryRequest (frame 16), which asked for a "
                              "second ClientHello, and sent nothing for 30.0 s, no second ClientHello and no alert: "
                              "then it closed the connection (frame 18) without a word, as a client whose TLS stalled "
                              "until its own timeout does")
    ((rnd,),) = tshark_fields(path, "frame.number == 16", "tls.handshake.random")
    assert rnd == HRR_RANDOM
    assert frames_matching(path, "tcp.flags.fin == 1") == [18]
    _acked_whole(path, 16, 17)


def test_a_server_that_closes_right_after_its_hello_retry_request_is_the_servers() -> None:
    """The mirror: the server closes 10 ms after its HelloRetryRequest, before the client could
    answer: the server's, as before; the detail names the HelloRetryRequest."""
    path = CAPTURES / "hunt6-server-closes-after-hrr.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", None, 18)
    assert _findings(conv) == []
    assert conv["detail"] == ("the server closed the connection after the HelloRetryRequest (frame 16), before the "
                              "ServerHello, before the handshake completed")
    t16, t18 = _times(path, [16, 18])
    assert t18 - t16 == pytest.approx(0.010, abs=0.001)
    assert frames_matching(path, "tcp.flags.fin == 1") == [18, 19]


def test_a_second_client_hello_never_answered_is_the_servers() -> None:
    """After the server's HelloRetryRequest the client sends its second ClientHello at once; the
    server acknowledges it and never answers; the client's timeout closes 30 s later. It read the
    client's ("closed the connection after the HelloRetryRequest, before the ServerHello"): the
    ClientHello waited on was taken to be the first, which the HelloRetryRequest had answered.
    The server's, as a ClientHello never answered (server-silent, at the second ClientHello)."""
    path = CAPTURES / "hunt6-server-silent-after-second-hello.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 18)
    assert _findings(conv) == [("no-answer", "server", 18)]
    assert conv["detail"] == ("the server sent nothing for 30.0 s after the client's second ClientHello, which "
                              "answered the server's HelloRetryRequest (frame 16): the client gave up waiting and "
                              "closed the connection (frame 20)")
    # tshark: the ClientHellos in 14 and 18, the HelloRetryRequest in 16, the server's ACK of the
    # second ClientHello in 19, the client's FIN in 20 and nothing of the server's TLS after 16
    assert frames_matching(path, "tls.handshake.type == 1") == [14, 18]
    ((rnd,),) = tshark_fields(path, "frame.number == 16", "tls.handshake.random")
    assert rnd == HRR_RANDOM
    _acked_whole(path, 18, 19)
    assert frames_matching(path, "tcp.srcport == 25 && tls") == [16]
    assert frames_matching(path, "tcp.flags.fin == 1") == [20]
    t18, t20 = _times(path, [18, 20])
    assert t20 - t18 == pytest.approx(30.0, abs=0.01)


def test_a_flight_packed_into_one_record_is_claimed_by_neither_rule() -> None:
    """TLS 1.3, the server's encrypted flight packed into one record (BoringSSL), acknowledged,
    the client's timeout closing 30 s later: the record may hold the whole flight (the client
    hung) or only its start (the server stalled), its size depending on a certificate chain the
    capture cannot read, so neither server-silent nor client-silent is claimed: the general rule
    (the client ended the handshake), as before these rules."""
    path = CAPTURES / "hunt6-one-record-flight-client-closes.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
    assert _findings(conv) == []
    assert conv["detail"] == "the client closed the connection after the ServerHello, before the handshake completed"
    # tshark: the ServerHello, the CCS and one encrypted record of 818 bytes in 16, acknowledged
    # whole in 17, the client's FIN 30 s later
    ((types, lengths),) = tshark_fields(path, "frame.number == 16", "tls.record.content_type", "tls.record.length")
    assert (types, lengths) == ("22,20", "122,1,818")      # (tshark names no type for the encrypted record)
    _acked_whole(path, 16, 17)
    assert frames_matching(path, "tcp.flags.fin == 1") == [18]


def test_a_two_record_tls13_flight_is_claimed_by_neither_rule() -> None:
    """The EncryptedExtensions in a record of their own, the Certificate, CertificateVerify and
    Finished packed into a second (no record of a Finished's size), the client closing 30 s later:
    whether the second record ends the flight cannot be told, so neither the stalled-server nor the
    hung-client rule claims it (found by the review: it read server-silent, "stopped short of its
    Finished", blaming the server for what may be a client that hung)."""
    path = CAPTURES / "hunt6-two-record-flight-client-closes.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
    assert _findings(conv) == []
    assert conv["detail"] == "the client closed the connection after the ServerHello, before the handshake completed"
    ((lengths,),) = tshark_fields(path, "frame.number == 16", "tls.record.length")
    assert lengths == "122,1,27,808"
    _acked_whole(path, 16, 17)
    t16, t18 = _times(path, [16, 18])
    assert t18 - t16 == pytest.approx(30.0, abs=0.01)


def test_a_certificate_alert_before_the_server_hello_done_is_the_clients_decision() -> None:
    """TLS 1.2: the ServerHello and Certificate, acknowledged; 1.5 s later (a slow revocation
    check) the client sends bad_certificate and closes, before the ServerKeyExchange came. The
    client checks the certificate as soon as it has it (OpenSSL, Go): its refusal, not a stall of
    the server's (found by the review: it read server-silent, "having waited for the rest")."""
    path = CAPTURES / "hunt6-client-refuses-certificate-mid-answer.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 18)
    assert _findings(conv) == [("tls-alert", "client", 18)]
    assert conv["detail"] == "the client sent the fatal TLS alert bad_certificate (42) during the handshake"
    assert frames_matching(path, "tls.handshake.type == 11") == [16]
    assert frames_matching(path, "tls.handshake.type == 12 || tls.handshake.type == 14") == []
    assert frames_matching(path, "tls.alert_message.desc == 42") == [18]
    _acked_whole(path, 16, 17)
    t16, t18 = _times(path, [16, 18])
    assert t18 - t16 == pytest.approx(1.5, abs=0.01)


@pytest.mark.parametrize("name, verdict, finding, detail, end", [
    ("hunt6-server-stalls-mid-answer-gnutls-client.pcap",
     ("aborted", "server", "tls-handshake-failed", "server-silent", 20), ("no-answer", "server", 20),
     "the server's answer to the ClientHello stopped short of its Finished (frames 16 to 20, which the client "
     "acknowledged) and the server sent nothing more for 30.0 s: the client gave up waiting for the rest and "
     "closed the connection (frame 22)", [22]),
    ("hunt6-client-silent-after-answer-gnutls-client.pcap",
     ("aborted", "client", "tls-handshake-failed", "client-silent", 22), ("client-silent", "client", 20),
     "the client acknowledged the server's whole answer to its ClientHello (frames 16 to 20) and sent nothing but "
     "its compatibility ChangeCipherSpec (frame 18) for 60.0 s: the server gave up waiting for the client's side of "
     "the handshake and closed the connection (frame 22); the client then closed its side without having sent "
     "anything (frame 23)", [22, 23]),
])
def test_a_gnutls_clients_early_change_cipher_spec_is_no_answer(
        name: str, verdict: tuple[object, ...], finding: tuple[str, str, int], detail: str, end: list[int]) -> None:
    """GnuTLS sends its compatibility ChangeCipherSpec as soon as it has read the ServerHello,
    before the rest of the server's flight when that comes in a later segment (RFC 8446 D.4): that
    record is no step of the client's handshake, so the stalled-server rule and the hung-client
    rule (here on the server's timeout) still judge (found by the review: both read the client's or
    the server's with no case)."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == verdict
    assert _findings(conv) == [finding]
    assert conv["detail"] == detail
    # tshark: the ServerHello in 16, the client's only TLS after its ClientHello a CCS in 18, the
    # rest of the flight in 20, acknowledged whole in 21, then the FINs
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    assert frames_matching(path, "tcp.dstport == 25 && tls") == [14, 18]
    assert frames_matching(path, "tls.record.content_type == 20 && tcp.dstport == 25") == [18]
    _acked_whole(path, 20, 21)
    assert frames_matching(path, "tcp.flags.fin == 1") == end
    t20, t22 = _times(path, [20, 22])
    assert t22 - t20 == pytest.approx(30.0 if len(end) == 1 else 60.0, abs=0.01)


def test_a_client_whose_first_ack_of_the_answer_is_its_close_did_not_wait() -> None:
    """Seen from the server's side of a long path (1.2 s round trip): the client's FIN 1.2 s after
    the server's whole answer is its first acknowledgement of it, so the client closed as soon as
    the answer reached it. The wait counts from the client's acknowledgement (both of the client's
    direction), not from the server's record: the client's by the general rule, no client-silent
    (found by the review: it read client-silent, "sent nothing for 1.2 s", with no TLS-RPT
    result)."""
    path = CAPTURES / "hunt6-client-closes-at-once-after-late-answer.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", None, 17)
    assert _findings(conv) == []
    assert conv["tlsrpt_result"] == "validation-failure"
    # tshark: the answer in 16, no segment of the client between, its FIN in 17 acknowledging it
    assert frames_matching(path, "tcp.flags.fin == 1") == [17]
    _acked_whole(path, 16, 17)
    t16, t17 = _times(path, [16, 17])
    assert t17 - t16 == pytest.approx(1.205, abs=0.001)


def test_a_clients_warning_alerts_of_giving_up_count_as_giving_up() -> None:
    """The stalled answer, the client's timeout sending the warning alerts user_canceled and
    close_notify before its close, as Java's JSSE does: the client gave up waiting, the stall is
    the server's (found by the review: warning alerts are not the verdict's alerts, and the
    record read as the client's answer: "closed the connection after the ServerHello")."""
    path = CAPTURES / "hunt6-server-stalls-mid-answer-client-user-canceled.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 16)
    assert _findings(conv) == [("no-answer", "server", 16)]
    assert conv["detail"].endswith("the client gave up waiting for the rest and closed the connection (frame 20)")
    # tshark: both warning alerts (level 1) in 18, no ServerHelloDone, the client's FIN in 20
    ((levels, descs),) = tshark_fields(path, "frame.number == 18", "tls.alert_message.level",
                                       "tls.alert_message.desc")
    assert (levels, descs) == ("1,1", "90,0")
    assert frames_matching(path, "tls.handshake.type == 14") == []
    assert frames_matching(path, "tcp.flags.fin == 1") == [20]
    _acked_whole(path, 16, 17)


def test_a_client_ccs_after_a_hello_retry_request_is_no_second_client_hello() -> None:
    """After the HelloRetryRequest the client sends its compatibility ChangeCipherSpec and nothing
    more until its timeout closes: the CCS is no answer (a TLS 1.3 record the ServerHello's
    version cannot vouch for here: no ServerHello came), so client-silent (found by the review:
    the client's with no case)."""
    path = CAPTURES / "hunt6-client-silent-after-hrr-with-ccs.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 20)
    assert _findings(conv) == [("client-silent", "client", 16)]
    assert "sent nothing but its compatibility ChangeCipherSpec (frame 18) for 30.0 s" in conv["detail"]
    ((rnd,),) = tshark_fields(path, "frame.number == 16", "tls.handshake.random")
    assert rnd == HRR_RANDOM
    assert frames_matching(path, "tcp.dstport == 25 && tls") == [14, 18]
    assert frames_matching(path, "tls.record.content_type == 20 && tcp.dstport == 25") == [18]
    assert frames_matching(path, "tcp.flags.fin == 1") == [20]
