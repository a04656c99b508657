"""Issue 13, items 2 and 8: clients that give up after a defective EHLO exchange, and what
captures from the wild show (credentials in the clear, sides that only closed, harmless holes,
refused EHLO, legacy X=Y keywords). Each case on a Dialogue transcript with exact outcome,
caused_by, reason, evidence frame and findings (frame i + 1 is the Dialogue's operation i)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builders import C, Dialogue, S

from pcapsmtp.analysis.verdict import judge
from pcapsmtp.commands.status import needs_attention, violations

OK_TLS = ("250-mx.example.com", "250-PIPELINING", "250 STARTTLS")
NO_TLS = ("250-mx.example.com", "250-PIPELINING", "250 8BITMIME")
MISPLACED = ("250-STARTTLS", "250-mx.example.com", "250 8BITMIME")
MASKED = ("250-mx.example.com", "250-XXXXXXXA", "250 8BITMIME")


def J(d: Dialogue, **kw: Any) -> dict[str, Any]:
    return judge(d.transcript(**kw))


def verdict(conv: dict[str, Any]) -> tuple[str, str, str, int | None]:
    return conv["outcome"], conv["caused_by"], conv["reason"], conv["evidence_frame"]


def findings(conv: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    return [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]


def hello(*reply: str) -> Dialogue:
    """Frames: 1 banner, 2 EHLO, 3 EHLO reply."""
    return Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org").s(*reply)


def leave(d: Dialogue, how: str) -> Dialogue:
    if how == "quit":
        return d.c("QUIT").s("221 bye").close()
    if how == "rst":
        return d.eof(C, reset=True)
    return d.eof(C).eof(S)


# ------------------------------------------------------------------------------- item 2: give-up

@pytest.mark.parametrize("how", ["quit", "rst", "close"])
@pytest.mark.parametrize("reply, want, offered", [
    (NO_TLS, ("server", "starttls-not-offered"), "absent"),
    (MISPLACED, ("server", "starttls-misplaced"), "misplaced"),
    (MASKED, ("middlebox", "starttls-masked"), "masked"),
])
def test_client_that_requires_tls_gives_up_on_the_defect(reply: tuple[str, ...], want: tuple[str, str],
                                                         offered: str, how: str) -> None:
    conv = J(leave(hello(*reply), how))
    assert verdict(conv) == ("aborted", *want, 3)
    assert conv["starttls"]["offered"] == offered
    assert "left without a mail transaction" in conv["detail"]
    assert needs_attention(conv)


@pytest.mark.parametrize("how", ["quit", "rst", "close"])
def test_give_up_after_refused_ehlo(how: str) -> None:
    conv = J(leave(hello("502 5.5.2 Error: command not recognized"), how))
    assert verdict(conv) == ("aborted", "server", "ehlo-rejected", 3)
    assert conv["starttls"]["offered"] == "unknown"


def test_give_up_after_refused_ehlo_and_helo() -> None:
    d = hello("500 5.5.1 Command unrecognized").c("HELO client.example.org").s("250 mx.example.com")
    conv = J(leave(d, "quit"))
    assert verdict(conv) == ("aborted", "server", "ehlo-rejected", 3)


@pytest.mark.parametrize("how", ["quit", "rst", "close"])
def test_leaving_after_a_valid_offer_stays_no_mail_transaction(how: str) -> None:
    conv = J(leave(hello(*OK_TLS), how))
    assert verdict(conv) == ("aborted", "none", "no-mail-transaction", None)
    assert not needs_attention(conv)


def test_give_up_after_helo_that_a_masked_banner_caused() -> None:
    """Postfix greets a banner of asterisks with HELO (PIX workarounds): the box's defect; a
    client that requires TLS then leaves."""
    d = Dialogue().s("220 ****************************2***0*****").c("HELO client.example.org")
    d.s("250 mx.example.com")
    conv = J(leave(d, "quit"))
    assert verdict(conv) == ("aborted", "middlebox", "starttls-masked", 1)
    assert "left without a mail transaction" in conv["detail"]


def test_capture_that_ends_before_the_clients_next_step_is_incomplete_whatever_the_offer() -> None:
    for reply in (OK_TLS, NO_TLS, MISPLACED, ("502 no",)):
        d = hello(*reply).eof(C, truncated=True).eof(S, truncated=True)
        assert verdict(J(d)) == ("incomplete", "unknown", "incomplete", 3), reply


# ---------------------------------------------------------------------- item 8: credentials

@pytest.mark.parametrize("reply, blame", [
    (NO_TLS, ("server", "starttls-not-offered")),
    (MISPLACED, ("server", "starttls-misplaced")),
    (MASKED, ("middlebox", "starttls-masked")),
    (OK_TLS, ("client", "client-did-not-request")),
])
def test_auth_in_the_clear_is_plaintext_without_mail(reply: tuple[str, ...], blame: tuple[str, str]) -> None:
    d = hello(*reply).c("AUTH PLAIN AGFsaWNlAHNlY3JldA==").s("535 5.7.8 no")   # 4, 5
    conv = J(leave(d, "quit"))
    evidence = 4 if blame[1] == "client-did-not-request" else 3
    assert verdict(conv) == ("plaintext", *blame, evidence)
    assert "AUTH PLAIN in the clear (frame 4)" in conv["detail"]
    assert "AGFsaWNl" not in conv["detail"]          # never the credentials
    assert conv["auth"] is True and conv["mail"] is False


def test_auth_login_after_helo_is_client_used_helo() -> None:
    d = Dialogue().s("220 mx.example.com ESMTP").c("HELO bot").s("250 mx.example.com")
    d.c("AUTH LOGIN").s("334 VXNlcm5hbWU6").c("YWxpY2U=").s("334 UGFzc3dvcmQ6").c("c2VjcmV0").s("535 no")
    conv = J(leave(d, "quit"))
    assert verdict(conv) == ("plaintext", "client", "client-used-helo", 2)


def test_auth_after_refused_starttls_is_plaintext() -> None:
    d = hello(*OK_TLS).c("STARTTLS").s("454 4.7.0 TLS not available").c("AUTH LOGIN").s("334 VXNlcm5hbWU6")
    conv = J(leave(d, "quit"))
    assert verdict(conv) == ("plaintext", "server", "starttls-refused", 5)


def test_an_ehlo_after_what_went_in_the_clear_does_not_move_the_verdict() -> None:
    """The EHLO that decides is one before what went in the clear: a second EHLO after the AUTH
    whose reply offers STARTTLS does not move it."""
    d = hello(*NO_TLS).c("AUTH PLAIN AGFsaWNl").s("235 ok").c("EHLO client.example.org").s(*OK_TLS)
    conv = J(leave(d, "quit"))
    assert verdict(conv) == ("plaintext", "server", "starttls-not-offered", 3)


def test_auth_after_a_second_ehlo_that_offers_starttls_is_the_clients() -> None:
    """A second EHLO before the AUTH resets the session (RFC 5321 4.1.4): its reply, which offers
    STARTTLS, is the list the client acted on (this read starttls-not-offered, the first reply's,
    until the twenty-sixth session; tests/test_smtp26.py has the capture)."""
    d = hello(*NO_TLS).c("EHLO client.example.org").s(*OK_TLS).c("AUTH PLAIN AGFsaWNl").s("235 ok")
    conv = J(leave(d, "quit"))
    assert verdict(conv) == ("plaintext", "client", "client-did-not-request", 6)


def test_data_without_mail_answered_354_is_a_transaction_a_refused_one_is_not() -> None:
    d = hello(*NO_TLS).c("DATA").s("354 go").c("Subject: x\r\n\r\nbody\r\n.").s("250 queued")
    assert verdict(J(leave(d, "quit"))) == ("plaintext", "server", "starttls-not-offered", 3)
    d = hello(*NO_TLS).c("DATA").s("503 5.5.1 need MAIL")
    assert verdict(J(leave(d, "quit"))) == ("aborted", "server", "starttls-not-offered", 3)


# ------------------------------------------------------------------ item 8: FIN- or RST-only sides

def test_client_that_closes_before_the_banner_left_without_mail() -> None:
    d = Dialogue().eof(C).s("220 mx.example.com ESMTP").eof(S)       # 1 FIN, 2 banner, 3 FIN
    conv = J(d)
    assert verdict(conv) == ("aborted", "none", "no-mail-transaction", None)
    assert not any(f[0] == "one-sided" for f in findings(conv))


def test_client_reset_before_the_banner() -> None:
    d = Dialogue().eof(C, reset=True).s("220 mx.example.com ESMTP")
    conv = J(d)
    assert verdict(conv) == ("aborted", "none", "no-mail-transaction", None)
    assert findings(conv) == []


def test_server_that_closes_without_a_greeting_refused_the_client() -> None:
    d = Dialogue().eof(S).c("QUIT").eof(S, reset=True)                # 1 FIN, 2 QUIT
    conv = J(d)
    assert verdict(conv) == ("aborted", "server", "greeting-refused", 1)
    assert findings(conv) == []


def test_a_side_with_no_packet_at_all_is_still_one_sided() -> None:
    d = Dialogue().s("220 mx.example.com ESMTP", "250-mx.example.com", "250 STARTTLS").eof(S)
    conv = J(d)
    assert verdict(conv)[:3] == ("incomplete", "unknown", "incomplete")
    assert ("one-sided", "capture", 1) in findings(conv)


# --------------------------------------------------------------------------- item 8: holes

def test_one_byte_hole_between_banner_and_whole_ehlo_reply_does_not_spoil_the_verdict() -> None:
    d = Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")   # 1, 2
    d.gap(S, 1).s(*OK_TLS)                                                      # 3, 4
    d.c("MAIL FROM:<a@example.org>").s("250 ok").c("QUIT").s("221 bye").close()  # 5...
    conv = J(d)
    assert verdict(conv) == ("plaintext", "client", "client-did-not-request", 5)
    assert findings(conv) == [("tcp-gap", "capture", 3)]
    assert "cannot change the verdict" in conv["findings"][0]["message"]
    assert conv["starttls"]["offered"] == "valid"


def test_hole_that_could_hold_a_reply_still_makes_it_incomplete() -> None:
    d = Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")
    d.gap(S, 4).s(*OK_TLS)
    d.c("MAIL FROM:<a@example.org>").s("250 ok").c("QUIT").s("221 bye").close()
    assert verdict(J(d))[:3] == ("incomplete", "unknown", "incomplete")


def test_one_byte_hole_that_took_a_lines_head_still_makes_it_incomplete() -> None:
    """The hole took the '2' of '250-...': what follows is no reply line, the reply is damaged."""
    d = Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")
    d.gap(S, 1).s("50-mx.example.com", "250-PIPELINING", "250 STARTTLS")
    d.c("MAIL FROM:<a@example.org>").s("250 ok").c("QUIT").s("221 bye").close()
    assert verdict(J(d))[:3] == ("incomplete", "unknown", "incomplete")


def test_one_byte_hole_inside_a_reply_still_makes_it_incomplete() -> None:
    d = Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")
    d.s("250-mx.example.com", b"250-STA").gap(S, 1).s("LS", "250 SIZE 1000")
    d.c("MAIL FROM:<a@example.org>").s("250 ok").c("QUIT").s("221 bye").close()
    assert verdict(J(d))[:3] == ("incomplete", "unknown", "incomplete")


# ----------------------------------------------------------------- item 8: refused EHLO, X=Y

def test_refused_ehlo_offers_unknown_and_predicts_no_clients() -> None:
    d = hello("550 5.7.1 go away").c("HELO client.example.org").s("250 mx.example.com")
    d.c("MAIL FROM:<a@example.org>").s("250 ok").c("QUIT").s("221 bye").close()
    conv = J(d)
    assert verdict(conv) == ("plaintext", "server", "ehlo-rejected", 3)
    assert conv["starttls"]["offered"] == "unknown"
    assert conv["_raw_ehlo_reply"] == b""      # no extension list: no clients' prediction


def test_legacy_auth_equals_line_is_a_note_not_a_violation() -> None:
    d = hello("250-mx.example.com", "250-AUTH LOGIN PLAIN", "250-AUTH=LOGIN PLAIN", "250 STARTTLS")
    d = d.c("STARTTLS").s("220 go")
    conv = J(leave(d, "rst"))
    assert [f[0] for f in findings(conv)] == ["ehlo-legacy-keyword"]
    assert conv["starttls"]["offered"] == "valid"
    assert not violations(conv)


def test_other_bad_keywords_are_still_violations() -> None:
    conv = J(leave(hello("250-mx.example.com", "250-_X!BAD", "250 STARTTLS"), "quit"))
    assert [f[0] for f in findings(conv)] == ["ehlo-bad-keyword"]
    assert violations(conv)
