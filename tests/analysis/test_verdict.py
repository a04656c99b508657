"""judge() on Dialogue transcripts: every reason code one conversation can produce (tls-fallback
needs several conversations and starttls-stripped two captures, so they are not here), with
outcome, caused_by, reason, evidence frame, findings (code, side, frame) and the starttls/tls
blocks. Frames are the Dialogue's: operation i (flight, gap or eof) is frame i + 1."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builders import (  # noqa: E402
    BASE_TS, C, S, Dialogue, alert, app_data, ccs, client_hello, hs, rec, server_hello,
    tls12_handshake, vec,
)

from pcapsmtp.analysis.reasons import FINDINGS, REASON_CASES, REASONS, TLSRPT_RESULT  # noqa: E402
from pcapsmtp.analysis.verdict import Item, Overlap, judge  # noqa: E402
from pcapsmtp.model import Endpoint, Side  # noqa: E402
from pcapsmtp.smtp.events import Reply  # noqa: E402
from pcapsmtp.smtp.session import SessionConfig  # noqa: E402

SINGLE_CONVERSATION_REASONS = set(REASONS) - {"tls-fallback", "starttls-stripped"}
_seen_reasons: set[str] = set()


def J(d: Dialogue, **kw: Any) -> dict[str, Any]:
    conv = judge(d.transcript(**kw))
    _seen_reasons.add(conv["reason"])
    return conv


def verdict(conv: dict[str, Any]) -> tuple[str, str, str, int | None]:
    return conv["outcome"], conv["caused_by"], conv["reason"], conv["evidence_frame"]


def findings(conv: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    return [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]


def hello(*ehlo: str | bytes, banner: str = "220 mx.example.com ESMTP") -> Dialogue:
    """Frames: 1 banner, 2 EHLO, 3 EHLO reply."""
    d = Dialogue().s(banner).c("EHLO client.example.org")
    d.s(*(ehlo or ("250-mx.example.com", "250-PIPELINING", "250 STARTTLS")))
    return d


def mail(d: Dialogue) -> int:
    """Client MAIL FROM, server 250, QUIT, 221, close; returns MAIL's frame."""
    d.c("MAIL FROM:<a@example.org>")
    frame = d.last_frame
    d.s("250 2.1.0 ok").c("QUIT").s("221 bye").close()
    return frame


def starttls(d: Dialogue, code: str = "220 2.0.0 Ready to start TLS") -> Dialogue:
    """Frames after hello(): 4 STARTTLS, 5 reply."""
    return d.c("STARTTLS").s(code)


# ------------------------------------------------------------------------------------------
# tls
# ------------------------------------------------------------------------------------------

def test_tls12_established() -> None:
    h = tls12_handshake()
    d = starttls(hello())
    d.c(h["client_hello"]).s(h["server_flight"]).c(h["client_finish"]).s(h["server_finish"])  # 6..9
    d.c(app_data()).s(app_data()).close()                                                       # 10, 11
    conv = J(d)
    assert verdict(conv) == ("tls", "none", "tls-established", 8)
    assert findings(conv) == []
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": 220, "frame": 4}
    assert conv["tls"] == {"client_hello_frame": 6, "server_hello_frame": 7, "alert": None,
                           "established": True, "version": "TLS 1.2", "sni": "mx.example.org"}
    assert "tlsrpt_result" not in conv and conv["mail"] is False


def test_tls13_established() -> None:
    d = starttls(hello())
    d.c(client_hello()).s(server_hello(selected=0x0304) + app_data(1500))   # 6, 7
    d.c(ccs() + app_data(53)).s(app_data(300)).c(app_data(900)).close()     # 8, 9, 10
    conv = J(d)
    assert verdict(conv)[:3] == ("tls", "none", "tls-established")
    assert conv["tls"]["established"] and conv["tls"]["version"] == "TLS 1.3"


def test_tls12_without_client_finish_is_not_established_and_capture_end_is_incomplete() -> None:
    h = tls12_handshake()
    d = starttls(hello()).c(h["client_hello"]).s(h["server_flight"])
    d.eof(C, truncated=True).eof(S, truncated=True)
    conv = J(d)
    assert verdict(conv) == ("incomplete", "unknown", "incomplete", 5)
    assert conv["tls"]["established"] is False and conv["tls"]["server_hello_frame"] == 7


def test_implicit_tls() -> None:
    d = Dialogue().c(client_hello(sni="smtp.example.com")).s(server_hello(selected=0x0304))
    d.c(app_data(53)).s(app_data(200)).c(app_data(300)).close()
    conv = J(d, server=Endpoint("198.51.100.25", 465))
    assert verdict(conv)[:3] == ("tls", "none", "implicit-tls")
    assert conv["tls"]["client_hello_frame"] == 1 and conv["tls"]["sni"] == "smtp.example.com"
    assert conv["starttls"]["requested"] is False and conv["banner"] is None


@pytest.mark.parametrize("chunk", [None, 1, 3])
def test_tls_decrypted_capture(chunk: int | None) -> None:
    """The verdict must not depend on how TCP cut the bytes after the 220 into segments."""
    d = starttls(hello()).c("EHLO client.example.org").s("250-mx.example.com", "250 SIZE 1000")  # 6, 7
    mail(d)
    conv = J(d, chunk=chunk)
    assert verdict(conv) == ("tls", "none", "tls-decrypted", 6)
    assert findings(conv) == [("plaintext-after-starttls", "capture", 6)]


# ------------------------------------------------------------------------------------------
# plaintext
# ------------------------------------------------------------------------------------------

def test_client_did_not_request() -> None:
    d = hello()
    frame = mail(d)
    conv = J(d)
    assert verdict(conv) == ("plaintext", "client", "client-did-not-request", frame)
    assert findings(conv) == []
    assert conv["starttls"] == {"offered": "valid", "requested": False, "reply_code": None, "frame": None}
    assert conv["greeting"] == {"command": "EHLO", "argument": "client.example.org", "frame": 2}
    assert conv["ehlo_reply"] == {"code": 250, "frames": [3],
                                  "lines": ["mx.example.com", "PIPELINING", "STARTTLS"]}
    assert conv["banner"] == "220 mx.example.com ESMTP" and conv["mail"] is True
    assert conv["server_name"] == "mx.example.com"


def test_client_used_helo() -> None:
    d = Dialogue().s("220 mx.example.com ESMTP").c("HELO client.example.org").s("250 mx.example.com")
    mail(d)
    conv = J(d)
    assert verdict(conv) == ("plaintext", "client", "client-used-helo", 2)
    assert conv["greeting"]["command"] == "HELO" and conv["ehlo_reply"] is None
    assert conv["starttls"]["offered"] == "unknown"


def test_starttls_not_offered() -> None:
    d = hello("250-mx.example.com", "250-PIPELINING", "250 SIZE 1000")
    mail(d)
    conv = J(d)
    assert verdict(conv) == ("plaintext", "server", "starttls-not-offered", 3)
    assert findings(conv) == [] and conv["starttls"]["offered"] == "absent"
    assert conv["tlsrpt_result"] == "starttls-not-supported"


def test_starttls_misplaced_seed_case_lines_in_two_frames() -> None:
    d = Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")
    d.s("250-STARTTLS").s("250-mx.example.com", "250 SIZE 1000")      # 3, 4
    mail(d)
    conv = J(d)
    assert verdict(conv) == ("plaintext", "server", "starttls-misplaced", 3)
    assert findings(conv) == [("ehlo-keyword-as-domain", "server", 3)]
    assert conv["ehlo_reply"]["frames"] == [3, 4]
    assert conv["ehlo_reply"]["lines"] == ["STARTTLS", "mx.example.com", "SIZE 1000"]
    assert conv["starttls"]["offered"] == "misplaced"
    assert conv["findings"][0]["rfc"] == "RFC 5321 4.1.1.1"


def test_starttls_misplaced_after_premature_end_second_line_in_its_own_frame() -> None:
    d = Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")
    d.s("250 mx.example.com", "250-STARTTLS").s("250 SIZE 1000")        # 3, 4
    mail(d)
    conv = J(d)
    assert verdict(conv) == ("plaintext", "server", "starttls-misplaced", 3)
    # the stray lines (frame 3) answer MAIL for the client: every later reply is one behind
    assert findings(conv) == [("ehlo-premature-end", "server", 3), ("reply-out-of-step", "server", 3)]
    assert conv["ehlo_reply"]["lines"] == ["mx.example.com", "STARTTLS", "SIZE 1000"]
    assert conv["ehlo_reply"]["frames"] == [3, 4]


def test_starttls_misplaced_under_another_code() -> None:
    d = hello("250-mx.example.com", "220-STARTTLS", "250 SIZE 1000")
    mail(d)
    conv = J(d)
    assert verdict(conv) == ("plaintext", "server", "starttls-misplaced", 3)
    assert findings(conv) == [("ehlo-mixed-codes", "server", 3)]


def test_starttls_masked_in_ehlo_reply() -> None:
    d = hello("250-mx.example.com", "250-XXXXXXXA", "250 8BITMIME",
              banner="220 ****************************2***0*0****")
    frame = mail(d)
    conv = J(d)
    assert verdict(conv) == ("plaintext", "middlebox", "starttls-masked", 3)
    assert findings(conv) == [("banner-masked", "middlebox", 1), ("starttls-masked", "middlebox", 3)]
    assert conv["starttls"]["offered"] == "masked" and frame == 4


def test_starttls_masked_command_refused_by_firewall() -> None:
    d = starttls(hello("250-mx.example.com", "250-XXXXXXXA", "250 8BITMIME"),
                 "500 #5.5.1 command not recognized")
    mail(d)
    conv = J(d)
    assert verdict(conv) == ("plaintext", "middlebox", "starttls-masked", 5)
    assert ("starttls-masked", "middlebox", 3) in findings(conv)
    assert conv["starttls"] == {"offered": "masked", "requested": True, "reply_code": 500, "frame": 4}


def test_starttls_refused_454_then_plaintext() -> None:
    d = starttls(hello(), "454 4.7.0 TLS not available due to local problem")
    mail(d)
    conv = J(d)
    assert verdict(conv) == ("plaintext", "server", "starttls-refused", 5)
    assert conv["starttls"]["reply_code"] == 454
    assert conv["tlsrpt_result"] == "validation-failure"


def test_starttls_refused_then_quit_is_aborted() -> None:
    d = starttls(hello(), "454 4.7.0 TLS not available").c("QUIT").s("221 bye").close()
    assert verdict(J(d)) == ("aborted", "server", "starttls-refused", 5)


def test_server_closes_instead_of_answering_starttls() -> None:
    d = hello().c("STARTTLS").eof(S).eof(C)                              # 4, 5, 6
    assert verdict(J(d)) == ("aborted", "server", "starttls-refused", 5)


def test_ehlo_rejected() -> None:
    d = Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")
    d.s("502 5.5.2 command not recognized").c("HELO client.example.org").s("250 mx.example.com")
    mail(d)
    conv = J(d)
    assert verdict(conv) == ("plaintext", "server", "ehlo-rejected", 3)
    assert conv["starttls"]["offered"] == "unknown"   # no extension list was sent


# ------------------------------------------------------------------------------------------
# aborted
# ------------------------------------------------------------------------------------------

def test_server_fatal_alert() -> None:
    d = starttls(hello()).c(client_hello()).s(alert(40)).eof(S).eof(C)     # 6, 7, 8, 9
    conv = J(d)
    assert verdict(conv) == ("aborted", "server", "tls-handshake-failed", 7)
    assert findings(conv) == [("tls-alert", "server", 7)]
    assert conv["tls"]["alert"] == {"side": "server", "level": 2, "description": 40,
                                    "name": "handshake_failure", "encrypted": False, "frame": 7}
    assert conv["tls"]["established"] is False and conv["tlsrpt_result"] == "validation-failure"


def test_client_fatal_alert_after_server_hello() -> None:
    h = tls12_handshake()
    d = starttls(hello()).c(h["client_hello"]).s(h["server_flight"]).c(alert(48)).close()   # 6, 7, 8
    conv = J(d)
    assert verdict(conv) == ("aborted", "client", "tls-handshake-failed", 8)
    assert findings(conv) == [("tls-alert", "client", 8)]
    assert conv["tls"]["alert"]["name"] == "unknown_ca"


def test_client_reset_after_server_hello() -> None:
    h = tls12_handshake()
    d = starttls(hello()).c(h["client_hello"]).s(h["server_flight"]).eof(C, reset=True)  # 6, 7, 8
    conv = J(d)
    assert verdict(conv) == ("aborted", "client", "tls-handshake-failed", 8)
    assert "reset" in conv["detail"] and "after the ServerHello" in conv["detail"]
    assert conv["tls"]["server_hello_frame"] == 7 and conv["tls"]["alert"] is None


def test_server_closes_before_server_hello() -> None:
    d = starttls(hello()).c(client_hello()).eof(S).eof(C)                  # 6, 7, 8
    conv = J(d)
    assert verdict(conv) == ("aborted", "server", "tls-handshake-failed", 7)
    assert "before the ServerHello" in conv["detail"]


def test_tls13_client_refuses_with_encrypted_alert() -> None:
    d = starttls(hello()).c(client_hello()).s(server_hello(selected=0x0304) + app_data(1500))
    d.c(ccs() + app_data(19)).close()                                     # 8, 9, 10
    conv = J(d)
    assert verdict(conv) == ("aborted", "client", "tls-handshake-failed", 8)
    assert findings(conv) == [("tls-alert", "client", 8)]
    assert conv["tls"]["alert"]["encrypted"] is True and not conv["tls"]["established"]


def test_tls_not_started_client_closes_after_220() -> None:
    d = starttls(hello()).close()                                          # 6, 7
    conv = J(d)
    assert verdict(conv) == ("aborted", "client", "tls-not-started", 6)
    assert conv["tlsrpt_result"] == "validation-failure"


def test_tls_not_started_client_sends_garbage() -> None:
    d = starttls(hello()).c(b"\x01\x02 not tls at all\r\n").close()      # 6, 7, 8
    conv = J(d)
    assert verdict(conv) == ("aborted", "client", "tls-not-started", 6)
    assert findings(conv) == [("plaintext-after-starttls", "client", 6)]


def test_implicit_tls_mismatch() -> None:
    # on the SMTPS port the server's plaintext greeting is its mistake (RFC 8314 3.3)
    d = Dialogue().c(client_hello()).s("220 mx.example.com ESMTP").close()  # 1, 2, 3, 4
    conv = J(d, server=Endpoint("198.51.100.25", 465))
    assert verdict(conv) == ("aborted", "server", "implicit-tls-mismatch", 2)
    assert findings(conv) == [("implicit-tls-plaintext-reply", "server", 2)]
    # on port 25 (SMTP starts in plaintext there) the client's ClientHello is (case client-tls-port)
    d = Dialogue().c(client_hello()).s("220 mx.example.com ESMTP").close()
    conv = J(d)
    assert verdict(conv) == ("aborted", "client", "implicit-tls-mismatch", 1)
    assert conv["case"] == "client-tls-port"
    assert findings(conv) == [("implicit-tls-on-starttls-port", "client", 1)]


def test_greeting_refused() -> None:
    d = Dialogue().s("554 5.7.1 no thanks").c("QUIT").s("221 bye").close()
    conv = J(d)
    assert verdict(conv) == ("aborted", "server", "greeting-refused", 1)
    assert conv["banner"] == "554 5.7.1 no thanks"


def test_no_mail_transaction() -> None:
    d = hello().c("QUIT").s("221 bye").close()
    conv = J(d)
    assert verdict(conv) == ("aborted", "none", "no-mail-transaction", None)
    assert findings(conv) == []


# ------------------------------------------------------------------------------------------
# incomplete and capture findings
# ------------------------------------------------------------------------------------------

def test_gap_in_ehlo_reply_is_incomplete() -> None:
    d = Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")
    d.s("250-mx.example.com", b"250-STA").gap(S, 10).s("250 SIZE 1000")    # 3, 4, 5
    mail(d)
    conv = J(d)
    assert verdict(conv) == ("incomplete", "unknown", "incomplete", 4)
    assert findings(conv) == [("tcp-gap", "capture", 4)]
    assert conv["starttls"]["offered"] == "unknown"


def test_capture_starts_after_ehlo() -> None:
    d = Dialogue().c("MAIL FROM:<a@example.org>").s("250 ok").c("QUIT").s("221 bye").close()
    conv = J(d, midstream=True, side_evidence="ports", handshake_seen=False)
    assert verdict(conv)[:3] == ("incomplete", "unknown", "incomplete")
    assert ("midstream", "capture", 1) in findings(conv)


def test_capture_ends_after_valid_offer() -> None:
    d = hello().eof(C, truncated=True).eof(S, truncated=True)
    assert verdict(J(d))[:3] == ("incomplete", "unknown", "incomplete")


def test_capture_ends_before_starttls_reply() -> None:
    d = hello().c("STARTTLS").eof(C, truncated=True).eof(S, truncated=True)
    assert verdict(J(d)) == ("incomplete", "unknown", "incomplete", 4)


def test_one_sided_capture() -> None:
    d = Dialogue().s("220 mx.example.com ESMTP", "250-mx.example.com", "250 STARTTLS", "250 ok")
    d.eof(S, truncated=True)
    conv = J(d)
    assert verdict(conv)[:3] == ("incomplete", "unknown", "incomplete")
    assert ("one-sided", "capture", 1) in findings(conv)


def test_overlap_conflict_finding() -> None:
    d = hello()
    mail(d)
    t = d.transcript()
    t.items.insert(1, Item(Overlap(Side.CLIENT, 0, 4, 2, 3), (3,), BASE_TS))
    conv = judge(t)
    assert ("tcp-overlap-conflict", "capture", 3) in findings(conv)
    assert conv["reason"] == "client-did-not-request"


def test_reply_line_limit_is_a_capture_finding() -> None:
    d = Dialogue(SessionConfig(max_reply_lines=2))
    d.s("220 mx.example.com ESMTP").c("EHLO client.example.org")
    d.s("250-mx.example.com", "250-A", "250-B", "250 STARTTLS")
    mail(d)
    conv = J(d)
    assert ("limit-reached", "capture", 3) in findings(conv)


# ------------------------------------------------------------------------------------------
# findings on the STARTTLS exchange
# ------------------------------------------------------------------------------------------

def test_starttls_with_parameter_and_not_advertised() -> None:
    d = hello("250-mx.example.com", "250 SIZE 1000").c("STARTTLS now").s("501 5.5.4 syntax")
    mail(d)
    conv = J(d)
    assert verdict(conv) == ("plaintext", "server", "starttls-refused", 5)
    assert findings(conv)[:2] == [("starttls-not-advertised-but-used", "client", 4),
                                  ("starttls-with-parameter", "client", 4)]


def test_command_injection_finding() -> None:
    d = hello().c("STARTTLS", "MAIL FROM:<evil@example.org>").s("220 go")     # 4, 5
    d.c(client_hello()).s(alert(40)).close()                                  # 6, 7
    conv = J(d)
    assert ("starttls-command-injection", "client", 4) in findings(conv)
    assert conv["reason"] == "tls-handshake-failed"


def test_response_injection_finding() -> None:
    d = hello().c("STARTTLS").s("220 go", "250 injected").c(client_hello()).s(alert(40)).close()
    conv = J(d)
    assert ("starttls-response-injection", "server", 5) in findings(conv)


# ------------------------------------------------------------------------------------------
# certificates (TLS 1.2: the Certificate message is in clear)
# ------------------------------------------------------------------------------------------

def _self_signed_expired_der(name: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_certificate_problems_are_findings_of_the_server() -> None:
    der = _self_signed_expired_der("other.example.net")
    cert_msg = rec(22, hs(11, vec(3, vec(3, der))))
    d = starttls(hello()).c(client_hello(versions=())).s(server_hello() + cert_msg + rec(22, hs(14, b"")))
    d.c(alert(42)).close()                                                    # 6, 7, 8
    conv = J(d)
    assert verdict(conv) == ("aborted", "client", "tls-handshake-failed", 8)
    certs = [f for f in conv["findings"] if f["code"] == "tls-certificate"]
    assert {f["side"] for f in certs} == {"server"} and {f["frame"] for f in certs} == {7}
    assert set(conv["certificate"]["problems"]) == {
        "certificate-expired", "certificate-host-mismatch", "certificate-not-trusted"}
    assert conv["certificate"]["sans"] == ["other.example.net"]


# ------------------------------------------------------------------------------------------
# late start and holes (issue 18): evidence before blame
# ------------------------------------------------------------------------------------------

def test_late_start_inside_tls_both_ways_is_tls_start_not_captured() -> None:
    d = Dialogue(late_start=True)
    d.c(app_data(60)).s(app_data(130)).c(app_data(50)).s(app_data(30)).c(app_data(70))  # 1..5
    d.close()
    conv = J(d)
    assert verdict(conv) == ("tls", "none", "tls-start-not-captured", 1)
    assert conv["banner"] is None and conv["greeting"] is None
    assert conv["starttls"] == {"offered": "unknown", "requested": False, "reply_code": None,
                                "frame": None}
    assert conv["tls"]["established"] is True and conv["tls"]["client_hello_frame"] is None
    assert findings(conv) == [("midstream", "capture", 1)]


def test_late_start_with_the_server_record_first_is_the_same() -> None:
    """The issue's "one frame later": the server's record first; never a handshake failure."""
    d = Dialogue(late_start=True)
    d.s(app_data(130)).c(app_data(50)).s(app_data(30)).c(app_data(70)).close()   # 1..4
    assert verdict(J(d)) == ("tls", "none", "tls-start-not-captured", 2)


def test_late_start_at_the_220_to_starttls_makes_no_banner_and_no_lines_of_tls() -> None:
    h = tls12_handshake()
    d = Dialogue(late_start=True).s("220 2.0.0 Ready to start TLS")                # 1
    d.c(h["client_hello"]).s(h["server_flight"]).c(h["client_finish"]).s(h["server_finish"])
    d.c(app_data()).s(app_data()).c(app_data()).close()                            # 6, 7, 8
    conv = J(d)
    assert verdict(conv)[:3] == ("tls", "none", "tls-start-not-captured")
    assert conv["banner"] is None and conv["tls"]["client_hello_frame"] == 2
    assert all(not isinstance(it.event, Reply) or it.frames == (1,)
               for it in d.transcript().items)


def test_late_start_inside_tls_that_shows_too_little_is_incomplete() -> None:
    """A server flight and one Finished-sized client record, then a close: a TLS 1.3 client
    refusing the certificate looks like this; no side is blamed without the handshake."""
    d = Dialogue(late_start=True).s(app_data(1200)).c(app_data(53)).close()
    assert verdict(J(d))[:3] == ("incomplete", "unknown", "incomplete")


def test_late_start_in_plaintext_has_no_greeting_and_blames_nobody() -> None:
    d = Dialogue(late_start=True).s("554 5.7.1 rejected").c("QUIT").s("221 bye").close()
    conv = J(d)
    assert verdict(conv)[:3] == ("incomplete", "unknown", "incomplete")
    assert conv["banner"] is None


def test_implicit_tls_without_the_servers_answer_is_incomplete() -> None:
    d = Dialogue().c(client_hello()).eof(C, truncated=True).eof(S, truncated=True)
    conv = J(d, server=Endpoint("198.51.100.25", 465))
    assert verdict(conv) == ("incomplete", "unknown", "incomplete", 1)


def test_hole_in_the_handshake_before_a_close_blames_nobody() -> None:
    h = tls12_handshake()
    d = starttls(hello()).c(h["client_hello"]).gap(S, 900)                     # 6, 7
    d.eof(C, reset=True)                                                       # 8
    conv = J(d)
    assert verdict(conv) == ("incomplete", "unknown", "incomplete", 7)
    assert ("tcp-gap", "capture", 7) in findings(conv)


def test_hole_of_the_other_side_before_an_alert_blames_nobody() -> None:
    h = tls12_handshake()
    d = starttls(hello()).c(h["client_hello"]).gap(C, 30).s(alert(40)).close()  # 6, 7, 8
    conv = J(d)
    assert verdict(conv) == ("incomplete", "unknown", "incomplete", 7)
    assert ("tls-alert", "server", 8) in findings(conv)


def test_refused_starttls_then_the_capture_ends_is_incomplete() -> None:
    d = starttls(hello(), "454 4.7.0 TLS not available").eof(C, truncated=True)
    d.eof(S, truncated=True)
    conv = J(d)
    assert verdict(conv) == ("incomplete", "unknown", "incomplete", 5)
    assert "next step" in conv["detail"]


def test_refused_starttls_then_quit_is_aborted_by_the_server() -> None:
    d = starttls(hello(), "454 4.7.0 TLS not available").c("QUIT").eof(C, truncated=True)
    assert verdict(J(d)) == ("aborted", "server", "starttls-refused", 5)


def test_a_hole_after_the_deciding_bytes_spoils_nothing() -> None:
    """A hole in the message body, after MAIL in the clear, cannot change who skipped STARTTLS."""
    d = hello().c("MAIL FROM:<a@example.org>").s("250 ok").c("RCPT TO:<b@example.com>")  # 4..6
    d.s("250 ok").c("DATA").s("354 go").c("Subject: x\r\n\r\nbody")                     # 7..10
    d.gap(C, 400).c("more body\r\n.\r\n").s("250 queued").c("QUIT").s("221 bye").close()
    conv = J(d)
    assert verdict(conv) == ("plaintext", "client", "client-did-not-request", 4)
    assert ("tcp-gap", "capture", 11) in findings(conv)


def test_a_hole_in_tls_after_it_was_established_spoils_nothing() -> None:
    h = tls12_handshake()
    d = starttls(hello())
    d.c(h["client_hello"]).s(h["server_flight"]).c(h["client_finish"]).s(h["server_finish"])  # 6..9
    d.c(app_data()).s(app_data()).gap(C, 300).c(app_data()).close()                           # 10..13
    assert verdict(J(d))[:3] == ("tls", "none", "tls-established")


def test_refused_starttls_then_a_client_hole_is_incomplete() -> None:
    d = starttls(hello(), "454 4.7.0 TLS not available").gap(C, 28).close()
    assert verdict(J(d))[:3] == ("incomplete", "unknown", "incomplete")


def test_a_220_lost_in_a_hole_is_not_claimed_in_the_detail() -> None:
    """The handshake after STARTTLS proves the 220, but the capture does not hold it: the
    detail says what the capture shows, not that STARTTLS was answered 220."""
    h = tls12_handshake()
    d = hello().c("STARTTLS").gap(S, 30)                                                       # 4, 5
    d.c(h["client_hello"]).s(h["server_flight"]).c(h["client_finish"]).s(h["server_finish"])  # 6..9
    d.c(app_data()).s(app_data()).close()
    conv = J(d)
    assert verdict(conv) == ("tls", "none", "tls-established", 8)
    assert conv["starttls"]["reply_code"] is None
    assert "answered 220" not in conv["detail"]
    assert conv["detail"] == ("the server's answer to STARTTLS is not in the capture (bytes of the server "
                              "were lost, frame 5), but the TLS handshake that followed STARTTLS "
                              "completed (TLS 1.2)")


@pytest.mark.parametrize("own", ["220 2.0.0 Ready to start TLS", "454 4.7.0 TLS not available"])
def test_starttls_answered_by_a_stray_line_says_what_the_server_meant(own: str) -> None:
    """The stray line is the server's doing, not its TLS setup: the detail names the server's
    own answer (frame 6) and the explanation is the stray-answer case's, not 'fix its TLS'."""
    d = Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")
    d.s("250-mx.example.com", "250 STARTTLS").s("250 SIZE 1000")         # 3, 4 (the stray line)
    d.c("STARTTLS").s(own).c("QUIT").s("221 bye").close()                # 5, 6, 7, 8
    conv = J(d)
    assert verdict(conv) == ("aborted", "server", "starttls-refused", 4)
    assert findings(conv) == [("ehlo-premature-end", "server", 3), ("reply-out-of-step", "server", 4)]
    assert conv["detail"].startswith("the client read 250 (SIZE 1000) as the answer to STARTTLS; the "
                                     "server sent it as more of its reply to EHLO, after that reply had ended")
    assert conv["detail"].endswith("(frame 6)" if own.startswith("220") else
                                   "the server's own answer, 454 (frame 6), came one reply late")
    case = REASON_CASES[("starttls-refused", "stray-answer")]
    assert conv["explanation"] == {"client_does": case.client_does, "ask": case.remedy}
    assert "TLS setup" not in conv["explanation"]["ask"].split(".")[0]


# ------------------------------------------------------------------------------------------
# catalogue coverage
# ------------------------------------------------------------------------------------------

def test_every_single_conversation_reason_is_covered() -> None:
    """Runs last in this module (pytest keeps file order): every reason was produced above."""
    if len(_seen_reasons) < 5:
        pytest.skip("run the whole module to check coverage")
    assert SINGLE_CONVERSATION_REASONS - _seen_reasons == set()


def test_catalogue_consistency() -> None:
    assert set(TLSRPT_RESULT) <= set(REASONS)
    for code in ("ehlo-keyword-as-domain", "ehlo-premature-end", "ehlo-mixed-codes", "ehlo-bare-lf",
                 "ehlo-line-too-long", "ehlo-bad-keyword", "starttls-with-parameter",
                 "starttls-not-advertised-but-used", "starttls-masked", "banner-masked",
                 "starttls-command-injection", "starttls-response-injection", "tcp-gap",
                 "tcp-overlap-conflict", "midstream"):
        assert code in FINDINGS
    for info in REASONS.values():
        assert info.outcome in ("tls", "plaintext", "aborted", "incomplete")
        assert info.caused_by in ("none", "client", "server", "middlebox", "unknown")


def test_implicit_tls_client_after_a_plaintext_banner_is_a_mismatch() -> None:
    # smtperr stream 3 in the corpus: the server greets in plaintext on 465, then the client
    # sends a ClientHello and the server answers "command not recognized".
    d = Dialogue().s("220 mx.example.com ESMTP Postfix").c(client_hello())
    d.s("502 5.5.2 Error: command not recognized").close()
    conv = J(d, server=Endpoint("198.51.100.25", 465))
    assert verdict(conv) == ("aborted", "server", "implicit-tls-mismatch", 1)
    assert findings(conv) == [("implicit-tls-plaintext-reply", "server", 1)]


def test_junk_before_the_banner_then_close_is_no_mail_not_incomplete() -> None:
    # smtperr stream 0: binary junk from the client, the server greets and refuses each line.
    d = Dialogue().c(b"\x8f\x01junk\x02\r\n").s("220 mx.example.com ESMTP")
    d.s("500 5.5.1 Command unrecognized").close()
    conv = J(d)
    assert verdict(conv)[:3] == ("aborted", "none", "no-mail-transaction")
    assert conv["banner"] == "220 mx.example.com ESMTP"


def test_tls13_client_finished_then_close_is_a_refusal_not_established() -> None:
    # msmtp 1.8.23 (GnuTLS) in tests/realclients: it completes the TLS 1.3 handshake, checks the
    # certificate only then, and closes without an alert and without a byte of SMTP inside TLS.
    d = starttls(hello())
    d.c(client_hello()).s(server_hello(selected=0x0304) + app_data(1500))   # 6, 7
    d.c(ccs() + app_data(53)).s(app_data(300)).close()                      # 8, 9, 10 (client FIN)
    conv = J(d)
    assert verdict(conv) == ("aborted", "client", "tls-handshake-failed", 10)
    assert conv["tls"]["established"] is False and conv["tls"]["server_hello_frame"] == 7
