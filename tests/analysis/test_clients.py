"""The client rules reproduce the matrix of docs/clients.md cell by cell, and never raise."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapsmtp.analysis import clients as mod
from pcapsmtp.analysis.clients import (
    CLIENTS, CLIENTS_WITHOUT_RULE, After454, AfterTimeout, ClientRule, Confidence, Match, client, explain,
    matrix, predict, retrying_clients, sees_starttls,
)


def reply(*lines: str, eol: bytes = b"\r\n") -> bytes:
    return b"".join(line.encode("latin-1") + eol for line in lines)


# The ten test replies, built from the definitions table of the shared clients.md.
CASES: dict[str, bytes] = {
    "C1": reply("250-mx.example.com", "250-8BITMIME", "250 STARTTLS"),
    "C2": reply("250-STARTTLS", "250-mx.example.com", "250 SIZE 1000"),
    "C3": reply("250 STARTTLS"),
    "C4": reply("250 mx.example.com", "250-STARTTLS", "250 SIZE 1000"),
    "C5": reply("250-mx.example.com", "250-8BITMIME", "250 STARTTLS", eol=b"\n"),
    "C6": reply("250-mx.example.com", "250 starttls"),
    "C7": reply("250-mx.example.com", "250 STARTTLS foo"),
    "C8": reply("250-mx.example.com", "250 XXXXXXXA"),
    "C9": reply("250-mx.example.com", "220-STARTTLS", "250 SIZE 1000"),
    "C10": reply("250-mx.example.com", "250- STARTTLS", "250 SIZE 1000"),
}

# The summary matrix of the shared clients.md, typed cell by cell (confidence tags dropped; Go C6 is
# the observed N, curl C6 the 8.22 code-reading Y, Ruby C5 the Y observed on net-smtp 0.3.1).
#                        C1 C2 C3 C4 C5 C6 C7 C8 C9 C10
EXPECTED_TEXT = """
postfix                  Y  N  N  N  Y  Y  Y  N  Y  Y
exim                     Y  N  N  N  Y  N  Y  N  N  N
sendmail                 Y  N  N  N  Y  Y  Y  N  Y  N
opensmtpd                Y  Y  Y  N  Y  N  N  N  Y  N
python-smtplib           Y  N  N  N  Y  Y  Y  N  Y  Y
go-net-smtp              Y  N  N  N  Y  N  Y  N  N  N
angus-mail               Y  N  N  N  Y  Y  Y  N  Y  N
mailkit                  Y  Y  Y  N  Y  Y  N  N  X  N
nodemailer               Y  Y  Y  N  Y  Y  Y  N  Y  Y
phpmailer                Y  N  N  N  Y  N  Y  N  Y  Y
swaks                    Y  Y  Y  N  Y  N  N  N  Y  N
curl                     Y  Y  Y  N  Y  Y  Y  N  Y  N
curl-7.88                Y  Y  Y  N  Y  N  Y  N  Y  N
msmtp                    Y  Y  Y  N  Y  Y  Y  N  Y  N
haraka                   Y  Y  Y  N  Y  Y  N  N  Y  N
ruby-net-smtp            Y  N  N  N  Y  N  Y  N  Y  Y
lettre                   Y  Y  Y  N  X  N  Y  N  X  Y
cisco-esa                Y  N  N  N  ?  ?  ?  N  ?  ?
"""
EXPECTED: dict[str, dict[str, str]] = {
    row.split()[0]: dict(zip(CASES, row.split()[1:], strict=True))
    for row in EXPECTED_TEXT.strip().splitlines()
}
KNOWN_CELLS = [(name, case, cell) for name, row in EXPECTED.items() for case, cell in row.items()
               if cell != "?"]


def test_matrix_covers_every_rule_and_only_those() -> None:
    assert [rule.name for rule in CLIENTS] == list(EXPECTED)
    # the shared doc's 16 clients, curl 7.88 as observed (tests/realclients), and 5 ESA cells
    assert len(KNOWN_CELLS) == 17 * 10 + 5


@pytest.mark.parametrize(("name", "case", "cell"), KNOWN_CELLS)
def test_shared_matrix_cell(name: str, case: str, cell: str) -> None:
    got, why = explain(client(name), CASES[case])
    assert got == cell, f"{name} {case}: {why}"


def test_matrix_rows_in_client_order_with_one_line_whys() -> None:
    rows = matrix(CASES["C2"])
    assert [r[0] for r in rows] == [rule.name for rule in CLIENTS]
    for name, cell, why in rows:
        assert cell == EXPECTED[name]["C2"]
        assert why and "\n" not in why


@pytest.mark.parametrize(("case", "name", "words"), [
    ("C2", "postfix", "server's domain"),
    ("C2", "opensmtpd", "domain slot"),
    ("C3", "go-net-smtp", "single-line"),
    ("C4", "postfix", "after the reply ended at line 1"),
    ("C4", "opensmtpd", "Remote host sent too much data"),
    ("C5", "lettre", "CRLF"),
    ("C6", "go-net-smtp", "1.19.8"),
    ("C6", "curl", "7.88"),
    ("C6", "exim", "case-sensitive"),
    ("C8", "swaks", "XXXXXXXA"),
    ("C9", "exim", "needs code 250"),
    ("C9", "go-net-smtp", "kept raw"),
    ("C9", "mailkit", "220 after 250"),
    ("C10", "sendmail", "whitespace after the separator"),
])
def test_why_names_the_cause(case: str, name: str, words: str) -> None:
    assert words in explain(client(name), CASES[case])[1]


def row(data: bytes) -> dict[str, str]:
    return {name: cell for name, cell, _ in matrix(data)}


def test_keyword_with_trailing_spaces() -> None:
    got = row(reply("250-mx.example.com", "250 STARTTLS  "))
    # exact comparisons without trimming miss it; token splitters, prefix matches and trimmers see it
    assert {n for n, c in got.items() if c == "N"} == {"opensmtpd", "swaks", "haraka"}
    assert {n for n, c in got.items() if c == "X"} == set()


def test_single_continuation_line_never_ends() -> None:
    # '250-STARTTLS' alone: a 1-line reply that announces more lines; every client keeps waiting,
    # and every one but swaks fails when its read times out; swaks then counts EHLO as failed and
    # greets with HELO (observed on 20201014.0, tests/realclients/test_hunt25_real.py)
    got = row(reply("250-STARTTLS"))
    assert {n for n, c in got.items() if c != "X"} == {"swaks"} and got["swaks"] == "N"
    assert "HELO" in explain(client("swaks"), reply("250-STARTTLS"))[1]


def test_unterminated_last_line_is_not_a_line_yet() -> None:
    got = row(b"250-mx.example.com\r\n250 STARTTLS")
    assert {n for n, c in got.items() if c != "X"} == {"swaks"} and got["swaks"] == "N"


# A last line that is the code alone or the code and one other byte (the twenty-fifth session's
# hunt, each cell observed on the real client: tests/realclients/test_hunt25_real.py).
BARE_CODE = reply("250-mx.example.com", "250-STARTTLS", "250")
CODE_AND_BYTE = reply("250-mx.example.com", "250-STARTTLS", "250X")
BARE_CODE_LF = reply("250-mx.example.com", "250-STARTTLS", "250", eol=b"\n")


@pytest.mark.parametrize(("data", "smtplib", "swaks", "curl"), [
    # smtplib ends the reply at any byte 3 other than '-' (or none); curl ends it at a line of 5
    # bytes with its LF (``250\r\n``), not at ``250X\r\n`` nor ``250\n``; swaks only at a line
    # ``DDD `` and, when none comes, falls back to HELO after its timeout
    (BARE_CODE, "Y", "N", "Y"),
    (CODE_AND_BYTE, "Y", "N", "X"),
    (BARE_CODE_LF, "Y", "N", "X"),
])
def test_a_last_line_without_separator(data: bytes, smtplib: str, swaks: str, curl: str) -> None:
    got = row(data)
    assert (got["python-smtplib"], got["swaks"], got["curl"], got["curl-7.88"]) == (smtplib, swaks, curl, curl)


def test_curl_ends_a_reply_at_a_five_byte_line_only() -> None:
    # curl's smtp_endofresp: ``line[3] == ' ' || len == 5`` (len counts the CR and the LF)
    ends = reply("250 mx.example.com", "250-STARTTLS", "250 SIZE 1")
    assert explain(client("curl"), reply("250") + b"250 STARTTLS\r\n")[0] == "N"    # ended at line 1
    assert explain(client("curl"), b"250-\n250 STARTTLS\n")[0] == "N"              # 5 bytes: ended
    assert explain(client("curl"), b"250-\r\n250 STARTTLS\r\n")[0] == "Y"        # 6 bytes: goes on
    assert explain(client("curl"), ends)[0] == "N"
    assert explain(client("curl"), reply("250-mx.example.com", "250-STARTTLS", "250 "))[0] == "Y"


def test_single_line_reply_then_stray_starttls_is_never_seen() -> None:
    data = reply("250 mx.example.com") + b"250-STARTTLS\r\n"
    assert set(row(data).values()) == {"N"}


def test_ehlo_refused_gives_no_extensions() -> None:
    got = row(reply("550-STARTTLS", "550 go away"))
    assert set(got.values()) == {"N"}
    assert "not accepted" in explain(client("curl"), reply("550-STARTTLS", "550 go away"))[1]


def test_nodemailer_substring_false_positives() -> None:
    for text in ("250-mx.example.com no STARTTLS here", "250-NO-STARTTLS", "250-X-STARTTLS-OFF"):
        got = row(reply("250-mx.example.com", text, "250 SIZE 1000"))
        assert got["nodemailer"] == "Y", text
        assert got["postfix"] == got["exim"] == got["opensmtpd"] == "N", text


def test_prefix_matchers_accept_glued_suffix() -> None:
    got = row(reply("250-mx.example.com", "250 STARTTLSX"))
    assert {n for n, c in got.items() if c == "Y"} == {"curl", "curl-7.88", "msmtp"}


def test_lone_cr_line_endings_only_java() -> None:
    got = row(b"250-mx.example.com\r250 STARTTLS\r\n")
    assert got["angus-mail"] == "Y"
    # LF clients see one line '250-mx...\r250 STARTTLS' that ends nothing: they wait
    assert got["postfix"] == "X" and got["nodemailer"] == "X"


def test_swaks_drops_every_cr() -> None:
    got = row(reply("250-mx.example.com", "250 START\rTLS"))
    assert got["swaks"] == "Y"
    assert got["opensmtpd"] == "N" and got["msmtp"] == "N"


def test_haraka_skips_enhanced_status_code() -> None:
    got = row(reply("250-mx.example.com", "250 2.0.0 STARTTLS"))
    assert got["haraka"] == "Y"
    assert got["postfix"] == "N" and got["curl"] == "N"


def test_malformed_line_handling() -> None:
    got = row(reply("250-mx.example.com", "hello world", "250 STARTTLS"))
    assert got["exim"] == got["msmtp"] == got["haraka"] == got["lettre"] == "X"  # read fails
    assert got["sendmail"] == got["curl"] == "Y"       # skipped, reading goes on
    assert got["postfix"] == got["swaks"] == "Y"       # kept as continuation
    assert got["python-smtplib"] == "N"                # code -1: EHLO failed, HELO fallback
    assert got["angus-mail"] == "N"                    # index 3 is not '-': reply ended there
    assert got["go-net-smtp"] == "Y"                   # kept raw, STARTTLS line parsed


def test_go_foreign_code_with_space_does_not_end_reply() -> None:
    data = reply("250-mx.example.com", "550 STARTTLS", "250 STARTTLS")
    got = row(data)
    assert got["go-net-smtp"] == "Y"   # line 2 raw, line 3 ends the reply and carries the keyword
    assert got["postfix"] == "N"       # line 2 ends the reply and its code 550 is the status
    assert got["mailkit"] == "X"


def test_predict_partitions_every_client() -> None:
    got = predict(CASES["C2"])
    assert set(got) == {"see_starttls", "downgrade", "error"}
    assert got["downgrade"] == ["postfix", "exim", "sendmail", "python-smtplib", "go-net-smtp",
                                "angus-mail", "phpmailer", "ruby-net-smtp", "cisco-esa"]
    assert got["error"] == []
    assert predict(CASES["C9"])["error"] == ["mailkit", "lettre"]
    assert predict(CASES["C5"])["error"] == ["lettre"]


def test_retrying_clients() -> None:
    assert retrying_clients() == ["postfix", "exim", "opensmtpd"]
    assert retrying_clients(include_opt_in=True) == ["postfix", "exim", "opensmtpd", "sendmail", "haraka"]


def test_454_behaviour_matches_shared_doc() -> None:
    same = [r.name for r in CLIENTS if r.plaintext_after_454 == "same-connection"]
    assert same == ["postfix", "exim", "sendmail", "opensmtpd", "curl", "curl-7.88"]
    assert client("haraka").plaintext_after_454 == After454.DEFER
    assert {r.name for r in CLIENTS if r.plaintext_after_454 == "config"} == {"nodemailer", "swaks"}


def test_rule_data_is_consistent() -> None:
    names = [r.name for r in CLIENTS]
    assert len(set(names)) == len(names)
    for rule in CLIENTS:
        assert isinstance(rule, ClientRule)
        assert rule.version and rule.source and rule.opportunistic_setting, rule.name
        assert bool(rule.token_end) == (rule.match is Match.TOKEN), rule.name
        assert bool(rule.regex) == (rule.match is Match.REGEX), rule.name
        for pattern in (rule.line_re, rule.token_end, rule.regex):
            re.compile(pattern.encode())
        assert set(re.compile(rule.line_re.encode()).groupindex) == {"code", "sep", "text"}
    assert [r.name for r in CLIENTS if r.confidence is Confidence.DOC] == ["cisco-esa"]
    assert client("go-net-smtp").confidence is Confidence.OBS and "1.19.8" in client("go-net-smtp").version
    assert client("curl").version.startswith("8.22")
    assert all("Exchange" not in r.title for r in CLIENTS)
    assert any("Exchange" in n for n in CLIENTS_WITHOUT_RULE)
    with pytest.raises(KeyError):
        client("exchange")


def test_families_match_shared_doc() -> None:
    fam = {r.name: r.family for r in CLIENTS}
    assert {n for n, f in fam.items() if f == 1} == {
        "postfix", "exim", "sendmail", "python-smtplib", "go-net-smtp", "angus-mail", "phpmailer",
        "ruby-net-smtp", "cisco-esa"}
    assert {n for n, f in fam.items() if f == 3} == {"nodemailer"}


def test_module_imports_only_stdlib() -> None:
    tree = ast.parse(Path(mod.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "functools", "re", "dataclasses", "enum"}


# ---- properties

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    rows = matrix(data)
    assert [r[0] for r in rows] == [rule.name for rule in CLIENTS]
    assert all(cell in ("Y", "N", "X") and why for _, cell, why in rows)
    groups = predict(data)
    assert sorted(sum(groups.values(), [])) == sorted(rule.name for rule in CLIENTS)


LINE_TEXT = st.text(alphabet=st.sampled_from(list("STARLstarl -=\t.0X")), max_size=14)
LINE = st.tuples(st.sampled_from(["250", "220", "550", "25x", ""]), st.sampled_from(["-", " ", ""]),
                 LINE_TEXT).map(lambda t: "".join(t))


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE, min_size=1, max_size=5), st.sampled_from([b"\r\n", b"\n", b"\r"]))
def test_no_keyword_no_yes(lines: list[str], eol: bytes) -> None:
    data = reply(*lines, eol=eol)
    if b"STARTTLS" not in data.replace(b"\r", b"").upper():
        assert "Y" not in row(data).values()


@settings(max_examples=200, deadline=None)
@given(st.lists(LINE_TEXT, max_size=4), LINE_TEXT, st.binary(max_size=40))
def test_bytes_after_a_complete_reply_never_change_the_cell(
        middle: list[str], last: str, junk: bytes) -> None:
    base = reply(*(["250-mx.example.com"] + [f"250-{t}" for t in middle] + [f"250 {last}"]))
    assert {n: c for n, c in row(base).items()} == row(base + junk)


@given(st.sampled_from(list(CASES.values())))
def test_sees_starttls_agrees_with_matrix(data: bytes) -> None:
    assert [sees_starttls(rule, data) for rule in CLIENTS] == [c for _, c, _ in matrix(data)]


def test_repo_doc_lists_every_rule() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "clients.md").read_text()
    for rule in CLIENTS:
        assert f"| {rule.name} |" in doc and rule.version in doc, rule.name
    assert "Exchange" in doc


# ------------------------------------------------------------------ after a timeout around STARTTLS

def _after_timeout_table() -> dict[str, tuple[str, str]]:
    """The last two columns of docs/clients.md's "After the STARTTLS decision" table."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "clients.md").read_text()
    section = text.split("### After the STARTTLS decision", 1)[1]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ")][1:]   # the header dropped
    out = {}
    for ln in rows:
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        out[cells[0]] = (cells[-2], cells[-1])
    return out


def test_after_timeout_is_what_was_observed() -> None:
    """The two timeout fields are observations (tests/realclients checks each against the client
    it ran): every MTA defers after an unanswered STARTTLS; after an unanswered ClientHello
    Exim reconnects in clear at once, Postfix at its next attempt, Sendmail and OpenSMTPD defer;
    the libraries give up, except swaks (plaintext on the same connection after STARTTLS) and
    swaks and msmtp, whose timeout does not bound the handshake. Docs and code agree."""
    got = {r.name: (r.after_starttls_timeout, r.after_handshake_timeout) for r in CLIENTS}
    assert {n: (a.value, b.value) for n, (a, b) in got.items()} == _after_timeout_table()
    T = AfterTimeout
    assert got["postfix"] == (T.DEFER, T.RETRY_NEXT_ATTEMPT)
    assert got["exim"] == (T.DEFER, T.RETRY_PLAINTEXT)
    assert got["sendmail"] == got["opensmtpd"] == (T.DEFER, T.DEFER)
    assert got["swaks"] == (T.SAME_CONNECTION, T.NO_TIMEOUT)
    assert got["msmtp"] == (T.GIVES_UP, T.NO_TIMEOUT)
    for name in ("python-smtplib", "go-net-smtp", "nodemailer", "phpmailer", "curl-7.88", "ruby-net-smtp"):
        assert got[name] == (T.GIVES_UP, T.GIVES_UP), name
    # never observed: unknown, never guessed
    for name in ("angus-mail", "mailkit", "curl", "haraka", "lettre", "cisco-esa"):
        assert got[name] == (T.UNKNOWN, T.UNKNOWN), name


def test_a_timeout_is_not_a_failed_handshake_to_opensmtpd() -> None:
    """OpenSMTPD retries in clear after a failed handshake but not after a timeout; no client
    retries in clear after an unanswered STARTTLS; and a retry in clear after a handshake
    timeout comes only from a client that also retries after a failed handshake."""
    osmtpd = client("opensmtpd")
    assert osmtpd.fallback_after_handshake_failure and "opensmtpd" in retrying_clients()
    assert osmtpd.after_handshake_timeout is AfterTimeout.DEFER
    retry = {AfterTimeout.RETRY_PLAINTEXT, AfterTimeout.RETRY_NEXT_ATTEMPT}
    for r in CLIENTS:
        assert r.after_starttls_timeout not in retry, r.name
        if r.after_handshake_timeout in retry:
            assert r.fallback_after_handshake_failure, r.name
    assert [r.name for r in CLIENTS if r.after_handshake_timeout in retry] == ["postfix", "exim"]
