"""captures/scenarios_ehlo27.py: EHLO sent more than once before STARTTLS or any mail. The
findings of the replies before the one the client acted on (analysis/verdict.py
``_earlier_ehlo_findings``), and the clients' prediction for a client that keeps an earlier
reply's STARTTLS (analysis/clients.py ``starttls_kept_across_ehlo``, MailKit; the analyzer's
memo ``_predict`` keyed on the earlier replies too). And Go's reading of an EHLO reply whose last
line has no SP after its code (net/textproto ``ReadResponse`` reads on). Frames cross-checked
with tshark."""
from __future__ import annotations

from pathlib import Path

from builders import Dialogue
from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from pcapsmtp.analysis.clients import CLIENTS
from pcapsmtp.analysis.verdict import judge
from tsharkfilter import frames_matching, tshark_fields

NAMES = [r.name for r in CLIENTS]


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
    name = "ehlo27-first-reply-starttls-on-line-one-then-tls.pcap"
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
    name = "ehlo27-both-replies-bad-keyword-then-tls.pcap"
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
