"""The twenty-fifth session's hunt (captures/scenarios_hunt25.py): an EHLO reply whose last line is
the code alone (``250``) or the code and one byte (``250X``), which real clients read apart
(tests/realclients/test_hunt25_real.py), a client that offers only TLS 1.3 to a server whose newest
version is TLS 1.2, its mirror, and a server's warning-level unrecognized_name before its
ServerHello.

Each capture is checked for its verdict, evidence frame, findings and the client prediction; the
frames are cross-checked with tshark.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
from tsharkfilter import tshark_fields as _tshark

sys.path.insert(0, str(CAPTURES))
from generate import render  # noqa: E402
from scenarios_hunt25 import flight_with_220, second_ehlo_offers  # noqa: E402


def _frames(path: Path, flt: str) -> list[int]:
    return [int(n) for (n, *_rest) in _tshark(path, flt, "frame.number")]


def _client_finished(path: Path) -> int:
    """The client's ChangeCipherSpec and Finished (the evidence of an established TLS 1.2)."""
    return _frames(path, "tls.record.content_type == 20 && tcp.dstport == 25")[0]


def _ehlo_reply_frame(path: Path) -> int:
    (ehlo,) = _frames(path, 'smtp.req.command == "EHLO"')
    return min(f for f in _frames(path, "smtp.response.code == 250") if f > ehlo)


@pytest.mark.parametrize("name, last", [
    ("hunt25-ehlo-last-line-code-alone-helo.pcap", b"250\r\n"),
    ("hunt25-ehlo-last-line-code-and-byte-helo.pcap", b"250X\r\n"),
])
def test_helo_after_a_reply_whose_last_line_has_no_keyword_is_plaintext_and_the_servers(
        name: str, last: bytes) -> None:
    """swaks's HELO 20 s after the reply (its read never saw the reply end), the mail in the clear:
    the client waited on past the line, so the server's line caused it (``ehlo-rejected``, case
    ``no-answer``, evidence the reply; it read ``client-did-not-request`` until the twenty-sixth
    session); the offer itself stays valid, and the server's line is named."""
    path = CAPTURES / name
    conv = _conv(name)
    (mail,) = _frames(path, 'smtp.req.command == "MAIL"')
    (helo,) = _frames(path, 'smtp.req.command == "HELO"')
    reply = _ehlo_reply_frame(path)
    assert reply < helo < mail
    ((t_reply,),) = _tshark(path, f"frame.number == {reply}", "frame.time_epoch")
    ((t_helo,),) = _tshark(path, f"frame.number == {helo}", "frame.time_epoch")
    assert float(t_helo) - float(t_reply) >= 1.0
    assert _verdict(conv) == ("plaintext", "server", "ehlo-rejected", "no-answer", reply)
    assert conv["starttls"]["offered"] == "valid"
    assert _findings(conv) == [("ehlo-bad-keyword", "server", reply)]
    (finding,) = conv["findings"]
    escaped = repr(last.decode())[1:-1]
    assert escaped in finding["message"] and "HELO" in finding["message"]
    assert escaped in conv["detail"] and f"sent HELO (frame {helo})" in conv["detail"]
    assert f"went on in the clear (frame {mail})" in conv["detail"]
    # the client prediction: swaks downgrades (HELO after its timeout), Go and msmtp fail; curl
    # ends the reply at "250" with CRLF (sees STARTTLS) and waits on "250X" (fails); smtplib ends it
    # at either
    clients = conv["clients"]
    assert "swaks" in clients["downgrade"]
    assert {"go-net-smtp", "msmtp"} <= set(clients["error"])
    assert "python-smtplib" in clients["see_starttls"]
    curl = "see_starttls" if last == b"250\r\n" else "error"
    assert {"curl", "curl-7.88"} <= set(clients[curl])


def test_starttls_after_a_reply_whose_last_line_is_the_code_alone_is_tls_with_the_finding() -> None:
    name = "hunt25-ehlo-last-line-code-alone-tls.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    (starttls,) = _frames(path, 'smtp.req.command == "STAR"')    # (tshark's command: 4 letters)
    (hello,) = _frames(path, "tls.handshake.type == 1")
    (server_hello,) = _frames(path, "tls.handshake.type == 2")
    assert starttls < hello < server_hello < _client_finished(path)
    assert _verdict(conv) == ("tls", "none", "tls-established", None, _client_finished(path))
    assert conv["tls"]["established"] is True
    assert _findings(conv) == [("ehlo-bad-keyword", "server", _ehlo_reply_frame(path))]
    assert {"curl", "curl-7.88", "python-smtplib"} <= set(conv["clients"]["see_starttls"])


def test_a_tls12_client_refused_by_a_tls13_only_server_is_the_servers() -> None:
    """The mirror of the TLS 1.3-only client below, read right: a client whose newest version is TLS 1.2
    (RFC 9325 3.1.1: a MUST) refused with protocol_version by a server that accepts only TLS 1.3."""
    name = "hunt25-client-tls12-server-tls13-only-protocol-version.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ((hello, versions),) = _tshark(path, "tls.handshake.type == 1", "frame.number",
                                    "tls.handshake.extensions.supported_version")
    assert versions == ""            # no supported_versions: the legacy version, TLS 1.2, is the offer
    ((alert, level, desc),) = _tshark(path, "tls.alert_message", "frame.number", "tls.alert_message.level",
                                      "tls.alert_message.desc")
    assert (level, desc) == ("2", "70") and int(alert) > int(hello)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", None, int(alert))
    assert _findings(conv) == [("tls-alert", "server", int(alert))]


def test_a_tls13_only_client_refused_by_a_tls12_server_is_the_clients() -> None:
    """A ClientHello offering TLS 1.3 alone (supported_versions 0x0304 only) refused by a TLS 1.2
    server with protocol_version: TLS 1.2 is a MUST (RFC 9325 3.1.1) and the client's offer left it
    out, so the client's, tls-version-mismatch at the ClientHello (it read the alert's sender's)."""
    name = "hunt25-client-tls13-only-server-protocol-version.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ((hello, versions),) = _tshark(path, "tls.handshake.type == 1", "frame.number",
                                    "tls.handshake.extensions.supported_version")
    assert versions == "0x0304"
    ((alert, desc),) = _tshark(path, "tls.alert_message", "frame.number", "tls.alert_message.desc")
    assert desc == "70"
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-tls13-only", int(hello))
    assert _findings(conv) == [("tls-version-mismatch", "client", int(hello)), ("tls-alert", "server", int(alert))]
    assert "offered only TLS 1.3, leaving out TLS 1.2" in conv["detail"]


@pytest.mark.parametrize("desc", [40, 80, 112], ids=["handshake_failure", "internal_error", "unrecognized_name"])
def test_a_tls13_only_client_refused_for_another_reason_is_the_servers(desc: int, tmp_path: Path) -> None:
    """The same capture with the server's fatal alert rewritten to another description (no shared
    cipher, an internal error, a refused name): the server's own reason, not the offer's, so the
    alert's sender as before client-tls13-only (the session's review)."""
    data = (CAPTURES / "hunt25-client-tls13-only-server-protocol-version.pcap").read_bytes()
    record = b"\x15\x03\x03\x00\x02\x02\x46"
    assert data.count(record) == 1
    path = tmp_path / "rewritten.pcap"
    path.write_bytes(data.replace(record, record[:-1] + bytes([desc])))
    (alert,) = _frames(path, f"tls.alert_message.desc == {desc}")
    res = analyze_file(str(path), AnalysisConfig())
    (conv,) = res.conversations
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", None, alert)
    assert "tls-version-mismatch" not in [f[0] for f in _findings(conv)]


def test_a_warning_unrecognized_name_before_the_server_hello_does_not_end_the_handshake() -> None:
    name = "hunt25-sni-warning-then-tls.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ((alert, level, desc),) = _tshark(path, "tls.alert_message", "frame.number", "tls.alert_message.level",
                                      "tls.alert_message.desc")
    (server_hello,) = _frames(path, "tls.handshake.type == 2")
    assert (level, desc) == ("1", "112") and int(alert) == server_hello    # one segment
    assert _verdict(conv) == ("tls", "none", "tls-established", None, _client_finished(path))
    assert conv["tls"]["alert"] is None and conv["tls"]["established"] is True
    assert _findings(conv) == []


@pytest.mark.parametrize("hello", [True, False], ids=["hello-then-close", "close"])
def test_a_server_flight_sent_with_the_220_before_any_client_hello_is_the_servers(
        hello: bool, tmp_path: Path) -> None:
    """The server's TLS flight in the 220's own segment, before any ClientHello, answers nothing
    the client sent: the server's (it read the client's, the flight taken for the answer to the
    ClientHello, or "closed after the 220 without starting TLS"); captures/scenarios_smtp26.py
    ships the same two, tests/test_smtp26.py."""
    cap = flight_with_220(hello=hello)
    path = tmp_path / cap.name
    path.write_bytes(render(cap)[0])
    res = analyze_file(str(path), AnalysisConfig())
    assert res.error is None
    (conv,) = res.conversations
    (ready,) = _frames(path, "smtp.response.code == 220 && tcp.srcport == 25 && frame.number > 6")
    assert _frames(path, "tls.handshake.type == 1") == ([ready + 2] if hello else [])
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", None, ready)
    assert _findings(conv) == [("starttls-response-injection", "server", ready)]
    assert conv["tls"]["server_hello_frame"] == ready


def _second_ehlo(starttls: bool, tmp_path: Path) -> tuple[Path, dict[str, object]]:
    cap = second_ehlo_offers(starttls=starttls)
    path = tmp_path / cap.name
    path.write_bytes(render(cap)[0])
    (conv,) = analyze_file(str(path), AnalysisConfig()).conversations
    ehlos = _frames(path, 'smtp.req.command == "EHLO" && tcp.dstport == 25')
    assert len(ehlos) == 2          # (with STARTTLS, a third inside TLS, which tshark does not read)
    return path, conv


def test_mail_in_the_clear_after_a_second_ehlo_that_offers_starttls_is_the_clients(tmp_path: Path) -> None:
    """A second EHLO resets the session (RFC 5321 4.1.4): its reply is the list the client acted on
    (it read the first reply's starttls-not-offered)."""
    path, conv = _second_ehlo(False, tmp_path)
    (mail,) = _frames(path, 'smtp.req.command == "MAIL"')
    assert _verdict(conv) == ("plaintext", "client", "client-did-not-request", None, mail)
    assert conv["ehlo_reply"]["frames"] == [_frames(path, "smtp.response.code == 250 && frame.number > 10")[0]]


def test_starttls_after_a_second_ehlo_that_offers_it_has_no_finding(tmp_path: Path) -> None:
    """(It had a starttls-not-advertised-but-used finding of the client: the first reply's.)"""
    path, conv = _second_ehlo(True, tmp_path)
    assert _verdict(conv)[:3] == ("tls", "none", "tls-established")
    assert _findings(conv) == []
