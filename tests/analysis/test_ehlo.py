"""check_ehlo on the ten reply shapes of docs/clients.md (C1..C10) and more: where
STARTTLS is offered (valid / misplaced / masked / absent) and the exact findings with the line
that is their evidence. Reply lines come from the SMTP core, as in the pipeline."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builders import Dialogue  # noqa: E402

from pcapsmtp.analysis.ehlo import (  # noqa: E402
    RFC_EHLO, RFC_REPLY, check_ehlo, is_masked_banner, masked_keyword,
)
from pcapsmtp.model import Side, Span  # noqa: E402
from pcapsmtp.smtp.events import Reply, ReplyLine  # noqa: E402


def ehlo(*lines: str, eol: bytes = b"\r\n") -> tuple[tuple[ReplyLine, ...], tuple[ReplyLine, ...]]:
    """The EHLO reply's lines and the stray lines after a premature end, as the core reads them."""
    d = Dialogue().s("220 mx.example.com ESMTP").c("EHLO client.example.org")
    d.s(b"".join(x.encode("latin-1") + eol for x in lines))
    d.eof(Side.CLIENT)   # stray lines wait for a next command; with none they come out unpaired
    replies = [e for e in d.events() if isinstance(e, Reply)]
    assert replies[1].answers is not None and replies[1].answers.verb == "EHLO"
    stray = replies[2].lines if len(replies) > 2 else ()
    assert len(replies) <= 3
    return replies[1].lines, stray


def codes(chk: object) -> list[tuple[str, str]]:
    return [(f.code, str(f.side)) for f in chk.findings]  # type: ignore[attr-defined]


# The ten shapes, from the definitions table of clients.md.
SHAPES: dict[str, tuple[tuple[str, ...], bytes]] = {
    "C1": (("250-mx.example.com", "250-8BITMIME", "250 STARTTLS"), b"\r\n"),
    "C2": (("250-STARTTLS", "250-mx.example.com", "250 SIZE 1000"), b"\r\n"),
    "C3": (("250 STARTTLS",), b"\r\n"),
    "C4": (("250 mx.example.com", "250-STARTTLS", "250 SIZE 1000"), b"\r\n"),
    "C5": (("250-mx.example.com", "250-8BITMIME", "250 STARTTLS"), b"\n"),
    "C6": (("250-mx.example.com", "250 starttls"), b"\r\n"),
    "C7": (("250-mx.example.com", "250 STARTTLS foo"), b"\r\n"),
    "C8": (("250-mx.example.com", "250 XXXXXXXA"), b"\r\n"),
    "C9": (("250-mx.example.com", "220-STARTTLS", "250 SIZE 1000"), b"\r\n"),
    "C10": (("250-mx.example.com", "250- STARTTLS", "250 SIZE 1000"), b"\r\n"),
}

# shape -> (offered, starttls_where, domain, [(finding code, side)], index of STARTTLS's line
#           counted over reply lines then stray lines, or None)
EXPECTED: dict[str, tuple[str, str, str, list[tuple[str, str]], int | None]] = {
    "C1": ("valid", "", "mx.example.com", [], 2),
    "C2": ("misplaced", "domain", "STARTTLS", [("ehlo-keyword-as-domain", "server")], 0),
    "C3": ("misplaced", "domain", "STARTTLS", [("ehlo-keyword-as-domain", "server")], 0),
    "C4": ("misplaced", "stray", "mx.example.com", [("ehlo-premature-end", "server")], 1),
    "C5": ("valid", "", "mx.example.com", [("ehlo-bare-lf", "server")], 2),
    "C6": ("valid", "", "mx.example.com", [], 1),
    # `250 STARTTLS foo`: offered, but the keyword takes no parameter (swaks, OpenSMTPD,
    # MailKit and Haraka do not see it).
    "C7": ("valid", "", "mx.example.com", [("ehlo-starttls-parameter", "server")], 1),
    "C8": ("masked", "", "mx.example.com", [("starttls-masked", "middlebox")], 1),
    "C9": ("misplaced", "code", "mx.example.com", [("ehlo-mixed-codes", "server")], 1),
    # `250- STARTTLS` is not an ehlo-line by the grammar, and most clients (Exim, Sendmail, Go,
    # OpenSMTPD, MailKit, swaks, curl, msmtp, Haraka, Angus) do not see the keyword: misplaced.
    "C10": ("misplaced", "space", "mx.example.com", [("ehlo-bad-keyword", "server")], 1),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_clients_md_shapes(shape: str) -> None:
    lines, eol = SHAPES[shape]
    reply, stray = ehlo(*lines, eol=eol)
    assert len(reply) + len(stray) == len(lines)
    chk = check_ehlo(reply, stray)
    offered, where, domain, findings, at = EXPECTED[shape]
    assert chk.offered == offered
    assert chk.starttls_where == where
    assert chk.domain == domain
    assert codes(chk) == findings
    every = reply + stray
    if at is None:
        assert chk.starttls_line is None
    else:
        assert chk.starttls_line is every[at]


def test_c2_finding_points_at_line_one_with_rfc() -> None:
    reply, _ = ehlo(*SHAPES["C2"][0])
    (f,) = check_ehlo(reply).findings
    assert f.line is reply[0] and f.rfc == RFC_EHLO and f.side is Side.SERVER
    assert "STARTTLS" in f.message and f.confidence == "high"


def test_c4_premature_end_finding_points_at_the_ending_line() -> None:
    reply, stray = ehlo(*SHAPES["C4"][0])
    assert len(reply) == 1 and len(stray) == 2
    (f,) = check_ehlo(reply, stray).findings
    assert f.line is reply[-1] and f.rfc == RFC_REPLY
    assert "2 further" in f.message


def test_c9_mixed_codes_finding_points_at_the_foreign_line() -> None:
    reply, _ = ehlo(*SHAPES["C9"][0])
    (f,) = check_ehlo(reply).findings
    assert f.line is reply[1] and f.rfc == RFC_REPLY


def test_c1_keywords_as_a_strict_client_reads_them() -> None:
    reply, _ = ehlo("250-mx.example.com Hello client", "250-SIZE 35882577", "250-8BITMIME",
                    "250-PIPELINING", "250 STARTTLS")
    chk = check_ehlo(reply)
    assert chk.offered == "valid" and chk.domain == "mx.example.com" and not chk.findings
    assert chk.keywords == ["SIZE 35882577", "8BITMIME", "PIPELINING", "STARTTLS"]


def test_absent() -> None:
    reply, _ = ehlo("250-mx.example.com", "250-PIPELINING", "250 SIZE 1000")
    chk = check_ehlo(reply)
    assert (chk.offered, chk.starttls_line, chk.findings) == ("absent", None, [])


def test_single_line_reply_without_keywords_is_absent() -> None:
    chk = check_ehlo(ehlo("250 mx.example.com")[0])
    assert (chk.offered, chk.domain, chk.findings) == ("absent", "mx.example.com", [])


def test_premature_end_after_a_valid_offer_stays_valid_with_finding() -> None:
    reply, stray = ehlo("250-mx.example.com", "250 STARTTLS", "250-SIZE 1000", "250 8BITMIME")
    chk = check_ehlo(reply, stray)
    assert chk.offered == "valid" and codes(chk) == [("ehlo-premature-end", "server")]


def test_other_keyword_in_domain_slot_with_valid_starttls() -> None:
    reply, _ = ehlo("250-PIPELINING", "250 STARTTLS")
    chk = check_ehlo(reply)
    assert chk.offered == "valid" and codes(chk) == [("ehlo-keyword-as-domain", "server")]
    assert chk.starttls_line is reply[1]


def test_masked_other_length_is_medium_confidence() -> None:
    reply, _ = ehlo("250-mx.example.com", "250-XXXXXXXX", "250 SIZE 1000")
    chk = check_ehlo(reply)
    assert chk.offered == "masked" and chk.masked_keywords == ["XXXXXXXX"]
    (f,) = chk.findings
    assert (f.code, f.side, f.confidence, f.line) == ("starttls-masked", "middlebox", "medium", reply[1])


def test_masked_xxxxxxxa_is_high_confidence() -> None:
    reply, _ = ehlo("250-mx.example.com", "250-XXXXXXXA", "250-8BITMIME", "250 SIZE 1000")
    (f,) = check_ehlo(reply).findings
    assert (f.code, f.confidence, f.line) == ("starttls-masked", "high", reply[1])
    assert "XXXXXXXA" in f.message


def test_masked_keyword_beside_a_valid_starttls_is_low_confidence() -> None:
    reply, _ = ehlo("250-mx.example.com", "250-XXXXXXXXXXXX", "250 STARTTLS")
    chk = check_ehlo(reply)
    assert chk.offered == "valid"
    (f,) = chk.findings
    assert (f.code, f.side, f.confidence, f.line) == ("ehlo-masked-keyword", "middlebox", "low", reply[1])


def test_line_too_long() -> None:
    reply, _ = ehlo("250-mx.example.com", "250-X-LONG " + "p" * 600, "250 STARTTLS")
    chk = check_ehlo(reply)
    assert chk.offered == "valid"
    assert codes(chk) == [("ehlo-line-too-long", "server")]
    assert chk.findings[0].line is reply[1]


def test_line_of_exactly_512_octets_is_fine() -> None:
    text = "250-X-PAD " + "p" * (512 - 2 - 10)
    reply, _ = ehlo("250-mx.example.com", text, "250 STARTTLS")
    assert reply[1].octets == 512 and check_ehlo(reply).findings == []


def test_bad_keyword() -> None:
    reply, _ = ehlo("250-mx.example.com", "250-!BAD", "250 STARTTLS")
    chk = check_ehlo(reply)
    assert codes(chk) == [("ehlo-bad-keyword", "server")] and chk.findings[0].line is reply[1]


def test_bare_lf_reported_once() -> None:
    reply, _ = ehlo("250-mx.example.com", "250-8BITMIME", "250 STARTTLS", eol=b"\n")
    assert [f.code for f in check_ehlo(reply).findings] == ["ehlo-bare-lf"]


def test_mixed_codes_without_starttls_is_absent_with_finding() -> None:
    reply, _ = ehlo("250-mx.example.com", "251-PIPELINING", "250 SIZE 1000")
    chk = check_ehlo(reply)
    assert chk.offered == "absent" and codes(chk) == [("ehlo-mixed-codes", "server")]


@pytest.mark.parametrize(("text", "masked"), [
    ("**************************2********0**0*******", True),
    ("****** ***** *****", True),
    ("mx.example.com ESMTP", False),
    ("***", False),
])
def test_is_masked_banner(text: str, masked: bool) -> None:
    assert is_masked_banner(text) is masked


@pytest.mark.parametrize(("word", "masked"), [
    ("XXXXXXXA", True), ("XXXXXXXX", True), ("XX", True), ("****", True), ("X", False),
    ("STARTTLS", False), ("8BITMIME", False), ("XCLIENT", False), ("***", False),
])
def test_masked_keyword(word: str, masked: bool) -> None:
    assert masked_keyword(word) is masked


# ``check_ehlo`` takes a keyword line with nothing to report ("250-SIZE 52428800") on a short
# path (``_PLAIN_KEYWORD``). The short path must decide every line exactly as the full checks
# do: the same result with it as without it (a pattern that never matches), on lines built from
# the pieces the checks turn on (STARTTLS in any case, masks, legacy keywords, leading spaces,
# tabs, look-alike letters, other codes).
_WORDS = ["SIZE", "8BITMIME", "STARTTLS", "starttls", "StartTLS", "STARTTLSX", "XXXXXXXA",
          "XXXXXXXX", "XX", "X", "XCLIENT", "****", "AUTH=LOGIN", "AUTH", "-DASH", "ſIZE", "K",
          "a-b", "=", "", "mx.example.com", "250"]
_TAILS = ["", " ", "  ", " 52428800", " PLAIN LOGIN", "\t", "\tx", " STARTTLS", "=x"]
_LINE = st.tuples(st.sampled_from([250, 250, 250, 220, None]), st.sampled_from(["", " ", "  ", "\t"]),
                  st.sampled_from(_WORDS), st.sampled_from(_TAILS))


def _reply_line(i: int, code: int | None, text: str) -> ReplyLine:
    raw = f"{code if code is not None else ''}-{text}\r\n".encode("utf-8")
    return ReplyLine(code=code, sep="-", text=text, raw=raw, span=Span(Side.SERVER, 100 * i, 100 * i + len(raw)),
                     octets=len(raw))


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINE, min_size=1, max_size=6), st.lists(_LINE, max_size=2))
def test_short_path_for_plain_keyword_lines_decides_as_the_full_checks(
        lines: list[tuple[int | None, str, str, str]], stray: list[tuple[int | None, str, str, str]]) -> None:
    import pcapsmtp.analysis.ehlo as ehlo_mod
    reply = tuple(_reply_line(i, c, lead + w + tail) for i, (c, lead, w, tail) in enumerate(lines))
    more = tuple(_reply_line(10 + i, c, lead + w + tail) for i, (c, lead, w, tail) in enumerate(stray))
    fast = check_ehlo(reply, more)
    saved = ehlo_mod._PLAIN_KEYWORD
    ehlo_mod._PLAIN_KEYWORD = re.compile(r"(?!)")     # never matches: every line takes the full checks
    try:
        full = check_ehlo(reply, more)
    finally:
        ehlo_mod._PLAIN_KEYWORD = saved
    assert fast == full
    assert (fast.starttls_line is None) == (full.starttls_line is None)
    if fast.starttls_line is not None:
        assert fast.starttls_line is full.starttls_line


def test_short_path_takes_the_plain_lines_only() -> None:
    from pcapsmtp.analysis.ehlo import _PLAIN_KEYWORD
    for text in ("SIZE 52428800", "8BITMIME", "AUTH PLAIN LOGIN", "X", "XCLIENT ADDR", "a-b"):
        assert _PLAIN_KEYWORD.match(text), text
    for text in ("STARTTLS", "starttls", "StartTls x", "XXXXXXXA", "XX", " SIZE", "AUTH=LOGIN",
                 "ſIZE", "SIZE\t1", "-SIZE", "", "SIZE=1"):
        assert not _PLAIN_KEYWORD.match(text), text
