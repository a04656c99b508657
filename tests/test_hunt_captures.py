"""Verdicts that were wrong on misbehaving peers nobody had captured (captures/scenarios_hunt.py).

Each capture is checked for its verdict, its evidence frame and its findings, and the frames are
cross-checked with tshark's reading of the same file: the bytes the verdict rests on (a plaintext
line where TLS belonged, a TLS alert, a reset, a FIN) are where tshark sees them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.analysis.fallback import FallbackTracker
from pcapsmtp.engine.analyzer import analyze_path
from pcapsmtp.model import Side
from pcapsmtp.smtp.tls import TlsChangeCipherSpec, TlsEncryptedHandshake, TlsHelloRetryRequest, TlsObserver, \
    TlsServerHello
from tsharkfilter import frames_matching, tshark_fields

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
SERVER = "tcp.srcport == 25"
CLIENT = "tcp.dstport == 25"
HRR_RANDOM = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"


def _convs(name: str) -> list[dict[str, Any]]:
    return list(analyze_path(str(CAPTURES / name)))


def _verdict(conv: dict[str, Any]) -> tuple[str, str, str]:
    return conv["outcome"], conv["caused_by"], conv["reason"]


def _findings(conv: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    return [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]


def _payload(path: Path, frame: int) -> bytes:
    ((hexed,),) = tshark_fields(path, f"frame.number == {frame}", "tcp.payload")
    return bytes.fromhex(hexed.replace(":", ""))


def test_clienthello_answered_in_plaintext_is_the_servers_failure() -> None:
    """The server answers the ClientHello with '500 ...' in plaintext; the client's protocol_version
    alert comes after it and answers it: the server ended the handshake, at its plaintext line. The
    alert is still reported (the client's, at its frame), and is ``tls.alert``."""
    path = CAPTURES / "hunt-hello-answered-plaintext.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed")
    assert conv["evidence_frame"] == 16
    assert conv["detail"] == ("the server answered the ClientHello in plaintext: it does not speak TLS on this "
                              "connection")
    assert _findings(conv) == [("tls-alert", "client", 18)]
    assert "after the server had answered its ClientHello in plaintext (frame 16)" in conv["findings"][0]["message"]
    assert conv["tls"]["alert"]["description"] == 70 and conv["tls"]["alert"]["frame"] == 18
    assert (conv["starttls"]["reply_code"], conv["tls"]["client_hello_frame"]) == (220, 14)
    # tshark: the ClientHello in frame 14, the server's next payload is the plaintext line in 16,
    # the client's fatal alert (protocol_version) in 18
    assert frames_matching(path, "tls.handshake.type == 1") == [14]
    assert frames_matching(path, f"{SERVER} && tcp.len > 0 && frame.number > 14")[0] == 16
    assert _payload(path, 16).startswith(b"500 5.5.2 ")
    assert _payload(path, 18) == bytes.fromhex("150303000202") + bytes([70])


def test_hello_retry_request_then_completed_handshake_is_tls() -> None:
    """TLS 1.3 with a HelloRetryRequest and the server's compatibility ChangeCipherSpec right after
    it: the ServerHello that follows the second ClientHello is in clear and is the ServerHello."""
    path = CAPTURES / "hunt-hrr-established.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("tls", "none", "tls-established")
    assert conv["findings"] == []
    assert conv["tls"]["established"] is True and conv["tls"]["version"] == "TLS 1.3"
    assert conv["detail"] == "STARTTLS answered 220 and the TLS handshake completed (TLS 1.3)"
    # tshark: two ServerHello-type messages, the first with the HelloRetryRequest random
    rows = tshark_fields(path, "tls.handshake.type == 2", "frame.number", "tls.handshake.random")
    assert [(int(n), r.replace(":", "") == HRR_RANDOM) for n, r in rows] == [(16, True), (20, False)]
    assert conv["tls"]["server_hello_frame"] == 20
    assert frames_matching(path, "tls.handshake.type == 1") == [14, 18]
    assert conv["tls"]["client_hello_frame"] == 14
    # the evidence: the client's first encrypted record after the ServerHello (its Finished)
    first = frames_matching(path, f"{CLIENT} && tls.record.opaque_type == 23")[0]
    assert conv["evidence_frame"] == first == 22


def test_observer_reads_the_serverhello_after_hrr_and_ccs() -> None:
    """The TLS observer alone: HelloRetryRequest + ChangeCipherSpec, then a clear ServerHello (which
    switches the side to encrypted) and an encrypted handshake record."""
    import importlib.util
    import sys
    spec = importlib.util.spec_from_file_location("scenarios_hunt", CAPTURES / "scenarios_hunt.py")
    assert spec is not None and spec.loader is not None
    sys.path.insert(0, str(CAPTURES))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    obs = TlsObserver(Side.SERVER)
    data = mod._hrr("unit") + mod.CCS
    events = obs.feed(data, 0)
    sh = mod._server_hello13("unit") + bytes.fromhex("1603030005") + b"\x08\x00\x00\x01\x00"
    events += obs.feed(sh, len(data))
    kinds = [type(e) for e in events]
    assert kinds == [TlsHelloRetryRequest, TlsChangeCipherSpec, TlsServerHello, TlsEncryptedHandshake], kinds
    assert events[2].selected_version == 0x0304


def test_client_plaintext_after_220_answered_in_tls_is_not_a_decrypted_capture() -> None:
    """The client sends EHLO in plaintext after the 220 and the server answers with a TLS alert: no
    TLS terminator read that EHLO (the server still expected TLS). The client did not start TLS."""
    path = CAPTURES / "hunt-client-plaintext-after-220.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-not-started")
    assert conv["evidence_frame"] == 14
    assert _findings(conv) == [("plaintext-after-starttls", "client", 14)]
    assert "the server answered in TLS (frame 16)" in conv["findings"][0]["message"]
    assert _payload(path, 14) == b"EHLO client.example.org\r\n"
    assert _payload(path, 16) == bytes.fromhex("15030300020246")
    assert frames_matching(path, f"{SERVER} && tcp.flags.fin == 1") == [18]


@pytest.mark.parametrize("name, end, flag, words", [
    ("hunt-ehlo-reset-mid-reply.pcap", 10, "reset",
     "the server reset the connection in the middle of its EHLO reply (frame 8), before its last line"),
    ("hunt-ehlo-closed-unanswered.pcap", 8, "fin", "the server closed the connection instead of answering EHLO"),
])
def test_server_that_ends_the_ehlo_exchange_refused_ehlo(name: str, end: int, flag: str, words: str) -> None:
    """No extension list ever reached the client: the offer is unknown, and the server, which ended
    the connection before its reply ended, is blamed (``ehlo-rejected``), at its RST or FIN."""
    path = CAPTURES / name
    (conv,) = _convs(name)
    assert _verdict(conv) == ("aborted", "server", "ehlo-rejected")
    assert conv["starttls"]["offered"] == "unknown" and conv["findings"] == []
    assert conv["evidence_frame"] == end and conv.get("case") is None
    assert conv["detail"] == words + (", so STARTTLS could not be negotiated" if flag == "fin" else
                                      ": a client reads the extension list only once the reply ends, so STARTTLS "
                                      "could not be negotiated")
    assert "clients" not in conv or not conv["clients"].get("see_starttls")
    assert frames_matching(path, f"{SERVER} && tcp.flags.{flag} == 1")[0] == end
    payloads = [_payload(path, n) for n in frames_matching(path, f"{SERVER} && tcp.len > 0")]
    assert payloads[0].startswith(b"220 ")
    if flag == "reset":
        (reply,) = payloads[1:]
        assert reply.endswith(b"250-STARTTLS"[:8]) and b"\r\n250 " not in reply
    else:
        assert payloads[1:] == []


def test_ehlo_421_then_the_servers_close_says_the_server_closed() -> None:
    path = CAPTURES / "hunt-ehlo-421-server-closes.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("aborted", "server", "ehlo-rejected") and conv["evidence_frame"] == 8
    assert conv["detail"] == ("the server refused EHLO with 421, so STARTTLS could not be negotiated; then the "
                              "server closed the connection")
    assert _payload(path, 8).startswith(b"421 ")
    assert frames_matching(path, "tcp.flags.fin == 1")[0] == frames_matching(path, f"{SERVER} && tcp.flags.fin == 1")[0]


def test_plaintext_after_a_later_success_is_no_fallback() -> None:
    convs = _convs("hunt-fallback-after-success.pcap")
    assert [_verdict(c) for c in convs] == [("aborted", "server", "tls-handshake-failed"),
                                            ("tls", "none", "tls-established"),
                                            ("plaintext", "client", "client-did-not-request")]
    assert "fallback_of" not in convs[2] and convs[2]["detail"] == ("STARTTLS was validly offered; the client "
                                                                    "went on in plaintext")


def _conv(stream: int, outcome: str, reason: str, started: int, ended: int) -> dict[str, Any]:
    return {"client": {"ip": "192.0.2.10"}, "server": {"ip": "198.51.100.25"}, "stream": stream,
            "outcome": outcome, "caused_by": {"tls": "none", "plaintext": "client"}.get(outcome, "server"),
            "reason": reason, "starttls": {"requested": reason != "client-did-not-request"}, "findings": [],
            "started_ns": started, "ended_ns": ended, "file": "f", "evidence_frame": 1, "detail": ""}


@pytest.mark.parametrize("tls_start, tls_end, retry_start, fallback", [
    (2, 9, 10, False),    # a success over before the plaintext conversation began: no retry
    (2, 9, 5, True),      # the retry began while a parallel delivery succeeded: still the retry
    (0, 9, 10, True),     # the success began before the failure ended: it says nothing of after
])
def test_fallback_tracker_and_a_success_between(tls_start: int, tls_end: int, retry_start: int,
                                                fallback: bool) -> None:
    tr = FallbackTracker(window_ns=10**12)
    tr.observe(_conv(0, "aborted", "tls-handshake-failed", 0, 1))
    tr.observe(_conv(1, "tls", "tls-established", tls_start, tls_end))
    later = _conv(2, "plaintext", "client-did-not-request", retry_start, retry_start + 1)
    tr.observe(later)
    assert (later["reason"] == "tls-fallback") is fallback
    assert later["caused_by"] == ("server" if fallback else "client")


@pytest.mark.parametrize("port", [587, 25])
def test_tls_client_on_a_starttls_port_is_the_clients_mistake(port: int) -> None:
    """The client opens with a ClientHello on a port where SMTP starts with the server's plaintext
    greeting: the greeting is right there, the client is misconfigured (was: the server's
    ``implicit-tls-plaintext-reply``, as on port 465). tshark: the client's first payload is a TLS
    handshake record holding a ClientHello (tshark dissects the port as SMTP, so by its bytes), the
    server's first payload the 220 banner."""
    path = CAPTURES / f"hunt-tls-client-on-{port}.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("aborted", "client", "implicit-tls-mismatch") and conv["case"] == "client-tls-port"
    assert conv["evidence_frame"] == conv["tls"]["client_hello_frame"] == 4
    assert _findings(conv) == [("implicit-tls-on-starttls-port", "client", 4)]
    # the receiving server answered right: no RFC 8460 failure to report against it (was
    # validation-failure)
    assert "tlsrpt_result" not in conv
    assert conv["detail"].startswith(f"the client spoke TLS from its first byte on port {port}, where SMTP starts "
                                     "in plaintext")
    hello = frames_matching(path, f"tcp.dstport == {port} && tcp.len > 0")
    assert hello[0] == 4 and _payload(path, 4)[:1] == b"\x16" and _payload(path, 4)[5:6] == b"\x01"
    (banner, *_) = frames_matching(path, f"tcp.srcport == {port} && tcp.len > 0")
    assert banner == 6 and _payload(path, 6).startswith(b"220 mx.example.com")


def test_the_smtps_port_keeps_blaming_the_server() -> None:
    """The control: the same mismatch on port 465 is the server's (it must speak TLS there)."""
    (conv,) = _convs("implicit-tls-mismatch.pcap")
    assert _verdict(conv) == ("aborted", "server", "implicit-tls-mismatch") and "case" not in conv
    assert [f["code"] for f in conv["findings"]] == ["implicit-tls-plaintext-reply"]
    assert conv["tlsrpt_result"] == "validation-failure"


@pytest.mark.parametrize("name, refused, starttls", [
    ("hunt-starttls-before-ehlo.pcap", (8, b"503 5.5.1 "), 14),
    ("hunt-starttls-again-after-454.pcap", (12, b"454 4.7.0 "), 14),
])
def test_a_refused_starttls_then_one_answered_220_is_tls(name: str, refused: tuple[int, bytes], starttls: int) -> None:
    """A STARTTLS refused (before EHLO: 503; a 454 the client asked again after), then another
    answered 220 and TLS with the mail inside: the later request is the one judged (was: the first
    refusal, ``aborted``/``server``/``starttls-refused``)."""
    path = CAPTURES / name
    (conv,) = _convs(name)
    assert _verdict(conv) == ("tls", "none", "tls-established") and conv["findings"] == []
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": 220, "frame": starttls}
    assert conv["tls"]["established"] is True
    # tshark: two STARTTLS commands, the first answered by the refusal, the second by 220
    assert frames_matching(path, 'smtp.req.command == "STARTTLS" || smtp.req.command == "STAR"')[-1] == starttls
    frame, code = refused
    assert _payload(path, frame).startswith(code)
    assert _payload(path, starttls + 2).startswith(b"220 2.0.0 Ready")
    assert frames_matching(path, "tls.handshake.type == 1") == [starttls + 4]


def test_client_quit_after_220_and_a_silent_close_is_not_a_decrypted_capture() -> None:
    """The client sends QUIT in plaintext after the 220; the server (a TLS server that read no TLS
    record: OpenSSL sends no alert then) closes with no readable answer. Behind a TLS terminator it
    would have answered readably: the client did not start TLS (was: ``tls-decrypted``, exit 0)."""
    path = CAPTURES / "hunt-client-quit-after-220.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-not-started") and conv["evidence_frame"] == 14
    assert _findings(conv) == [("plaintext-after-starttls", "client", 14)]
    assert ("and the server closed the connection without a readable answer (frame 16), as a TLS server does"
            in conv["findings"][0]["message"])
    assert _payload(path, 14) == b"QUIT\r\n"
    fins = frames_matching(path, "tcp.flags.fin == 1")
    assert fins[0] == 16 == frames_matching(path, f"{SERVER} && tcp.flags.fin == 1")[0]
    assert frames_matching(path, f"{SERVER} && tcp.len > 0 && frame.number > 14") == []


def test_ehlo_again_after_a_4xx_offers_starttls() -> None:
    """EHLO answered 451, EHLO again answered with a valid offer, mail in clear: the client saw the
    offer and skipped it (was: ``ehlo-rejected``, the server's, "the HELO fallback has no
    extensions"). ``ehlo_reply`` is the reply that carried the extension list."""
    path = CAPTURES / "hunt-ehlo-again-after-4xx.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("plaintext", "client", "client-did-not-request")
    assert conv["greeting"]["frame"] == 6 and conv["ehlo_reply"]["frames"] == [12]
    assert conv["starttls"]["offered"] == "valid" and conv["findings"] == []
    assert frames_matching(path, 'smtp.req.command == "EHLO"') == [6, 10]
    assert [int(c) for (c,) in tshark_fields(path, f"{SERVER} && smtp.response.code", "smtp.response.code")][:3] \
        == [220, 451, 250]


@pytest.mark.parametrize("name, reason, words", [
    ("hunt-double-220-client-refuses.pcap", "tls-not-started",
     "the client then closed the connection without starting TLS, as a client that refuses bytes pipelined "
     "after the 220 does (curl, msmtp)"),
    ("hunt-double-220-hello-closed.pcap", "tls-handshake-failed",
     "the client's TLS read those bytes as the server's first record and the client closed the connection "
     "before any ServerHello"),
])
def test_plaintext_after_the_220_that_broke_the_start_is_the_servers(name: str, reason: str, words: str) -> None:
    """The 220 sent twice (a second line of plaintext after the 220, RFC 3207 4.2): a client that
    refuses it, or whose TLS chokes on it, is not to blame (was: ``client``, "closed ... without
    starting TLS" / "before the ServerHello")."""
    path = CAPTURES / name
    (conv,) = _convs(name)
    assert _verdict(conv) == ("aborted", "server", reason) and conv["evidence_frame"] == 12
    assert _findings(conv) == [("starttls-response-injection", "server", 12)]
    assert conv["detail"] == ("the server sent plaintext after its 220 (frame 12), where only TLS may follow (RFC "
                              "3207 4.2); " + words)
    assert _payload(path, 12) == b"220 2.0.0 Ready to start TLS\r\n" * 2
    assert frames_matching(path, f"{SERVER} && tcp.len > 0 && frame.number > 12") == []
    assert frames_matching(path, "tls.handshake.type == 1") == ([14] if "hello" in name else [])


@pytest.mark.parametrize("alert", [False, True])
def test_server_plaintext_before_the_clienthello_is_its_timeout(alert: bool) -> None:
    """The server's '421 ... timeout exceeded' 12 s after its 220 came before the ClientHello
    (tshark: the 421 in frame 14, the ClientHello in 16): the server stopped waiting for TLS, and
    the detail says so, not that it answered the ClientHello. With the client's protocol_version
    alert after it (frame 18) the alert answers those bytes and stays the client's finding."""
    path = CAPTURES / ("hunt-server-timeout-before-hello" + ("-alert" if alert else "") + ".pcap")
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed")
    assert conv["evidence_frame"] == 14
    assert conv["detail"] == ("the server sent plaintext 12.0 s after its 220 to STARTTLS, before the client's "
                              "ClientHello (frame 16) came: '421 4.4.2 mx.example.com Error: timeout exceeded'; it "
                              "stopped waiting for TLS and the ClientHello crossed it")
    assert _findings(conv) == ([("tls-alert", "client", 18)] if alert else [])
    if alert:
        assert "after the server had sent plaintext where TLS was due (frame 14)" in conv["findings"][0]["message"]
        assert frames_matching(path, "tls.alert_message.desc == 70") == [18]
    assert frames_matching(path, "tls.handshake.type == 1") == [16]
    assert _payload(path, 14).startswith(b"421 4.4.2")


def test_a_close_after_an_ehlo_the_server_never_got_refuses_nothing() -> None:
    """The client's EHLO (frame 6) is sent four times and never acknowledged; the server's FIN 300 s
    later acknowledges none of it (nor does its last ACK): its close is an idle timeout (or a box
    dropped the command), not a refused EHLO."""
    path = CAPTURES / "hunt-ehlo-never-received.pcap"
    (conv,) = _convs(path.name)
    assert _verdict(conv) == ("aborted", "none", "no-mail-transaction")
    assert conv["starttls"]["offered"] == "unknown"
    assert _findings(conv) == []
    # tshark: the EHLO and its three retransmissions; the server's FIN acknowledges none of it
    assert frames_matching(path, "tcp.analysis.retransmission") == [7, 8, 9]
    ((ack,),) = tshark_fields(path, f"{SERVER} && tcp.flags.fin == 1", "tcp.ack")
    assert int(ack) == 1
