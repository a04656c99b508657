"""captures/scenarios_ehlo27.py: EHLO sent more than once before STARTTLS or any mail. The
findings of the replies before the one the client acted on (analysis/verdict.py
``_earlier_ehlo_findings``), and the clients' prediction for a client that keeps an earlier
reply's STARTTLS (analysis/clients.py ``starttls_kept_across_ehlo``, MailKit; the analyzer's
memo ``_predict`` keyed on the earlier replies too). And Go's reading of an EHLO reply whose last
line has no SP after its code (net/textproto ``ReadResponse`` reads on). Frames cross-checked
with tshark."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from builders import Dialogue
from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from pcapsmtp.analysis.clients import CLIENTS, client, explain, matrix, predict, sees_starttls
from pcapsmtp.analysis.ehlo import check_ehlo
from pcapsmtp.analysis.verdict import judge
from pcapsmtp.engine import analyzer
from tsharkfilter import frames_matching, tshark_fields

EHLO_OK = (b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n"
           b"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
EHLO_NO_TLS = EHLO_OK.replace(b"250-STARTTLS\r\n", b"")
NAMES = [r.name for r in CLIENTS]
ALL_BUT_MAILKIT = [n for n in NAMES if n != "mailkit"]


def _ehlo_frames(path: Path) -> tuple[list[int], list[int]]:
    """tshark: the EHLO commands and, for each, the first 250 of the server after it."""
    ehlos = frames_matching(path, 'smtp.req.command == "EHLO" && tcp.dstport == 25')
    replies = frames_matching(path, "smtp.response.code == 250 && tcp.srcport == 25")
    return ehlos, [min(r for r in replies if r > e) for e in ehlos]


def _parameters(path: Path, frame: int) -> list[str]:
    """tshark's reply parameters (the text after code and separator) of a frame's lines."""
    return [p for (row,) in tshark_fields(path, f"frame.number == {frame}", "smtp.rsp.parameter")
            for p in row.split(",")]


def _starttls_and_finished(path: Path) -> tuple[int, int]:
    (starttls,) = frames_matching(path, 'smtp.req.command == "STAR"')
    (finished,) = frames_matching(path, "tls.record.content_type == 20 && tcp.dstport == 25")
    return starttls, finished


# --- the findings of the earlier replies ----------------------------------------------------------

def test_starttls_on_line_one_of_a_first_reply_is_a_finding_though_the_second_was_acted_on() -> None:
    """The first reply's STARTTLS on line one (the domain's place) is the server's defect; the client
    sent EHLO again, got a valid offer and started TLS: ``tls``, the finding at the first reply's
    frame. It had no finding (only the acted reply was checked)."""
    name = "reehlo27-first-reply-starttls-on-line-one-then-tls.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ehlos, (first, second) = _ehlo_frames(path)
    assert _parameters(path, first)[0] == "STARTTLS" and "STARTTLS" in _parameters(path, second)[1:]
    starttls, finished = _starttls_and_finished(path)
    assert ehlos[1] < second < starttls < finished
    assert _verdict(conv) == ("tls", "none", "tls-established", None, finished)
    assert _findings(conv) == [("ehlo-keyword-as-domain", "server", first)]
    assert conv["findings"][0]["message"] == (
        "first EHLO reply line carries STARTTLS where the server's domain belongs; strict clients read it as "
        f"the server's name and never see the extension (in an earlier EHLO reply: the client sent EHLO again "
        f"and acted on the reply in frame {second})")
    assert conv["ehlo_reply"]["frames"] == [second] and conv["starttls"]["offered"] == "valid"
    assert conv["detail"] == "STARTTLS answered 220 and the TLS handshake completed (TLS 1.2)"
    assert conv["clients"]["see_starttls"] == NAMES


def test_the_same_defect_in_both_replies_is_a_finding_at_each() -> None:
    """``250-#PIPELINING`` in both replies (the first without STARTTLS, the second with it): one
    ``ehlo-bad-keyword`` at each reply's frame, in frame order; the acted reply's message is the one
    a single EHLO gets, the earlier one's names the reply acted on. The other way round for the
    prediction: an earlier reply without STARTTLS takes no offer away, every client sees it."""
    name = "reehlo27-both-replies-bad-keyword-then-tls.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    _, (first, second) = _ehlo_frames(path)
    assert "#PIPELINING" in _parameters(path, first) and "#PIPELINING" in _parameters(path, second)
    assert "STARTTLS" not in _parameters(path, first) and "STARTTLS" in _parameters(path, second)
    _, finished = _starttls_and_finished(path)
    assert _verdict(conv) == ("tls", "none", "tls-established", None, finished)
    assert _findings(conv) == [("ehlo-bad-keyword", "server", first), ("ehlo-bad-keyword", "server", second)]
    said = "EHLO reply line 2 does not start with a valid keyword: '#PIPELINING'"
    assert [f["message"] for f in conv["findings"]] == [
        f"{said} (in an earlier EHLO reply: the client sent EHLO again and acted on the reply in frame {second})",
        said]
    assert conv["ehlo_reply"]["frames"] == [second]
    assert conv["clients"] == {"see_starttls": NAMES, "downgrade": [], "error": []}


def test_an_earlier_lhlo_reply_is_named_lhlo_and_a_refused_one_has_no_finding() -> None:
    """LMTP: the first LHLO reply's bad keyword is a finding named for LHLO; a refused LHLO between
    sent no list (no finding of its own), and the verdict stays that of the last positive reply."""
    bad = ("250-mx.example.com", "250-#PIPELINING", "250 8BITMIME")
    ok_tls = ("250-mx.example.com", "250-PIPELINING", "250 STARTTLS")
    d = (Dialogue().s("220 mx.example.com LMTP").c("LHLO client.example.org").s(*bad)
         .c("LHLO !").s("501 5.5.4 Syntax").c("LHLO client.example.org").s(*ok_tls)
         .c("MAIL FROM:<a@b>").s("250 ok").c("QUIT").s("221 bye").close())
    conv = judge(d.transcript())
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv["evidence_frame"]) == (
        "plaintext", "client", "client-did-not-request", 8)
    assert [(f["code"], f["frame"], f["message"]) for f in conv["findings"]] == [
        ("ehlo-bad-keyword", 3, "EHLO reply line 2 does not start with a valid keyword: '#PIPELINING' (in an "
                                "earlier LHLO reply: the client sent LHLO again and acted on the reply in frame 7)")]
    assert conv["ehlo_reply"]["frames"] == [7]


def test_a_reply_after_starttls_or_the_mail_adds_no_finding() -> None:
    """Only the replies before the acted one count: a defective reply to an EHLO after the mail in
    the clear is no list the mail went by (the acted reply is the first)."""
    d = (Dialogue().s("220 mx.example.com ESMTP").c("EHLO c").s("250-mx.example.com", "250 8BITMIME")
         .c("MAIL FROM:<a@b>").s("250 ok").c("RSET").s("250 ok")
         .c("EHLO c").s("250-mx.example.com", "250-#PIPELINING", "250 8BITMIME")
         .c("QUIT").s("221 bye").close())
    conv = judge(d.transcript())
    assert (conv["reason"], conv["findings"], conv["ehlo_reply"]["frames"]) == ("starttls-not-offered", [], [3])


# --- the prediction: MailKit keeps an earlier offer -----------------------------------------------

def test_three_ehlos_the_first_offering_mailkit_alone_keeps_the_offer() -> None:
    """Offer, then two replies without it, the mail in the clear: the server's (the last list);
    MailKit's ``UpdateCapabilities`` keeps the STARTTLS flag of the first reply, so it alone would
    still send STARTTLS. It was listed with the clients that downgrade."""
    name = "reehlo27-third-ehlo-withdraws-starttls.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ehlos, replies = _ehlo_frames(path)
    assert len(ehlos) == 3
    assert ["STARTTLS" in _parameters(path, r) for r in replies] == [True, False, False]
    (mail,) = frames_matching(path, 'smtp.req.command == "MAIL"')
    assert replies[2] < mail
    assert _verdict(conv) == ("plaintext", "server", "starttls-not-offered", None, replies[2])
    assert _findings(conv) == []
    assert conv["starttls"]["offered"] == "absent" and conv["ehlo_reply"]["frames"] == [replies[2]]
    assert conv["clients"] == {"see_starttls": ["mailkit"], "downgrade": ALL_BUT_MAILKIT, "error": []}


def test_an_earlier_offer_mailkit_did_not_see_is_no_flag_to_keep() -> None:
    """The first reply offers ``STARTTLS 1`` (MailKit compares the whole line: not the keyword), the
    second none: MailKit downgrades with the others; the parameter is the first reply's finding."""
    name = "reehlo27-second-ehlo-withdraws-unseen-offer.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    _, (first, second) = _ehlo_frames(path)
    assert "STARTTLS 1" in _parameters(path, first) and not any("STARTTLS" in p for p in _parameters(path, second))
    assert _verdict(conv) == ("plaintext", "server", "starttls-not-offered", None, second)
    assert _findings(conv) == [("ehlo-starttls-parameter", "server", first)]
    assert conv["clients"] == {"see_starttls": [], "downgrade": NAMES, "error": []}
    assert conv["detail"] == (
        f"the EHLO reply is well formed and does not offer STARTTLS; an earlier EHLO reply (frame {first}) offers "
        "STARTTLS, but the client sent EHLO again (frame 10), which resets the session (RFC 5321 4.1.4): the last "
        "list is the one it acted on")


def test_the_smtp26_second_ehlo_captures_predict_mailkit_from_the_earlier_list() -> None:
    """smtp26: the first reply offers, the second withdraws it: MailKit sees STARTTLS (it was in
    ``downgrade``); the mirror (the second offers) and the refused second EHLO: every client."""
    drops = _conv("smtp26-second-ehlo-drops-starttls.pcap")
    assert drops["clients"] == {"see_starttls": ["mailkit"], "downgrade": ALL_BUT_MAILKIT, "error": []}
    for name in ("smtp26-second-ehlo-offers-client-skips.pcap", "smtp26-second-ehlo-offers-then-tls.pcap",
                 "smtp26-second-ehlo-refused-client-skips.pcap"):
        assert _conv(name)["clients"] == {"see_starttls": NAMES, "downgrade": [], "error": []}, name


def test_the_prediction_memo_is_keyed_on_the_earlier_replies_too() -> None:
    """Two conversations with the same last reply (no STARTTLS), one with an earlier reply that
    offered it, in one process in both orders: the memo (``_predict``) gives each its own answer."""
    withdrawn = "smtp26-second-ehlo-drops-starttls.pcap"
    single = "starttls-not-offered.pcap"
    for order in ((withdrawn, single), (single, withdrawn)):
        analyzer._predict.cache_clear()
        got = {name: _conv(name)["clients"]["see_starttls"] for name in order}
        assert got == {withdrawn: ["mailkit"], single: []}, order
        assert _conv(single)["ehlo_reply"]["lines"] == _conv(withdrawn)["ehlo_reply"]["lines"]


def test_the_kept_offer_is_the_rules_attribute_not_a_name() -> None:
    """``starttls_kept_across_ehlo`` decides: MailKit has it; another rule given it keeps an earlier
    offer too, and MailKit without it reads the last list alone. An error on the last reply stands
    (the client fails before STARTTLS), and an earlier offer never takes a ``Y`` away."""
    mailkit = client("mailkit")
    assert mailkit.starttls_kept_across_ehlo and not any(r.starttls_kept_across_ehlo for r in CLIENTS
                                                         if r is not mailkit)
    assert sees_starttls(mailkit, EHLO_NO_TLS, (EHLO_OK,)) == "Y"
    assert sees_starttls(mailkit, EHLO_NO_TLS) == "N"
    assert sees_starttls(mailkit, EHLO_NO_TLS, (EHLO_NO_TLS, EHLO_NO_TLS)) == "N"
    assert sees_starttls(dataclasses.replace(mailkit, starttls_kept_across_ehlo=""), EHLO_NO_TLS, (EHLO_OK,)) == "N"
    postfix = dataclasses.replace(client("postfix"), starttls_kept_across_ehlo="as a test")
    assert sees_starttls(postfix, EHLO_NO_TLS, (EHLO_OK,)) == "Y"
    assert sees_starttls(client("postfix"), EHLO_NO_TLS, (EHLO_OK,)) == "N"
    mixed = b"250-mx.example.com\r\n251-PIPELINING\r\n250 8BITMIME\r\n"   # MailKit: protocol error
    assert sees_starttls(mailkit, mixed, (EHLO_OK,)) == "X"
    assert sees_starttls(mailkit, EHLO_OK, (EHLO_NO_TLS,)) == "Y"
    cell, why = explain(mailkit, EHLO_NO_TLS, (EHLO_NO_TLS, EHLO_OK))
    assert (cell, why) == ("Y", "the last EHLO reply: no STARTTLS in the reply; but an earlier one offered it "
                                "(line 4: 'STARTTLS' is STARTTLS), and that flag outlives a later EHLO "
                                "(UpdateCapabilities (SmtpClient.cs:890-935) clears every capability except "
                                "StartTLS before it reads a reply's lines)")
    assert [c for c in matrix(EHLO_NO_TLS, (EHLO_OK,)) if c[1] == "Y"] == [("mailkit", cell, why)]
    assert predict(EHLO_NO_TLS, (EHLO_OK,))["see_starttls"] == ["mailkit"]


# --- Go and a last line without SP ------------------------------------------------------------------

def test_go_reads_on_after_a_last_line_without_sp() -> None:
    """Go's net/textproto ``ReadResponse``: a continuation line that fails ``parseCodeLine`` (under 4
    bytes, ``250``, or byte 4 neither SP nor '-', ``250X``) is appended and ``continued`` stays
    true, so Go reads on: it waits after such a last line (``X``: no mail once its read ends),
    and a later ``250 `` line ends the reply, the bare line kept as a keyword of its own."""
    go = client("go-net-smtp")
    for last in (b"250\r\n", b"250X\r\n"):
        reply = b"250-mx.example.com\r\n250-STARTTLS\r\n" + last
        assert explain(go, reply) == ("X", "the reply never ends: the client waits for more, then times out")
        assert explain(go, reply + b"250 8BITMIME\r\n") == ("Y", "line 2: 'STARTTLS' is STARTTLS")
    # (on line one a line that does not parse fails the read at once: EHLO fails, HELO follows)
    assert sees_starttls(go, b"250\r\n250 STARTTLS\r\n") == "N"
    # the server's finding on such a line says so (it said "Go and msmtp fail on it")
    (finding,) = check_ehlo(Dialogue().s("250-mx.example.com", "250-STARTTLS", "250").transcript()
                            .items[0].event.lines).findings
    assert finding.message.endswith("swaks then waits for the reply's end and falls back to HELO, Go reads on "
                                    "for it and fails when none comes, msmtp fails on it")
