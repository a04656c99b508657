"""The client-table cache keys a reply without the per-client greeting text; the prediction
must be the same as on the full reply."""
from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pcapsmtp.analysis.clients import predict
from pcapsmtp.engine.analyzer import _prediction_key

LINES = ["250-PIPELINING", "250-STARTTLS", "250-starttls", "250-8BITMIME", "250 SIZE 1000",
         "250 STARTTLS", "220-STARTTLS", "250- STARTTLS", "250 HELP", "250-XXXXXXXA",
         "250-AUTH PLAIN LOGIN", "250-AUTH  PLAIN", "250-STARTTLS foo", "250-X-STARTTLS",
         "250-2.0.0 STARTTLS", "250-2.0.0 SIZE", "250-#STARTTLS", "250\tSTARTTLS", "250 ",
         "250-SIZE\t1", "250-starttlsx", "250STARTTLS", "550-STARTTLS", "250-SIZE ", "junk",
         "250-size=1", "250-\x00STARTTLS", "250-mx.example.com", "250 mx.STARTTLS.example",
         "250-2.0.0.STARTTLS", "250-a.b.c SIZE", "250 .", "250-STARTTLS.example.com"]
PRINTABLE_LINE = st.builds(lambda code, sep, text: f"{code}{sep}{text}",
                           st.sampled_from(["250", "220", "550", "25"]),
                           st.sampled_from(["-", " ", ""]),
                           st.text(st.characters(min_codepoint=9, max_codepoint=126), max_size=20))
GREETING = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@settings(max_examples=1500, deadline=None)
@given(domain=st.one_of(st.sampled_from(["mx.example.com", "STARTTLS", "mail", "mx.STARTTLS.example",
                                         "[192.0.2.1]", "[IPv6:2001:db8::1]", "a.b.", "-.-",
                                         "mx.example.com\t", "mx\x00.example"]),
                        st.text(st.characters(min_codepoint=32, max_codepoint=126,
                                              blacklist_characters=" "), max_size=40),
                        st.from_regex(r"[A-Za-z0-9-]{1,10}(\.[A-Za-z0-9-]{1,10}){1,3}",
                                      fullmatch=True)),
       greet=GREETING,
       rest=st.lists(st.one_of(st.sampled_from(LINES), PRINTABLE_LINE), max_size=6),
       sep=st.sampled_from(["-", " "]),
       eol=st.sampled_from(["\r\n", "\n"]))
def test_key_predicts_like_the_reply(domain: str, greet: str, rest: list[str], sep: str,
                                     eol: str) -> None:
    first = f"250{sep}{domain}" + (f" {greet}" if greet else "")
    raw = (eol.join([first, *rest]) + eol).encode()
    assert predict(_prediction_key(raw)) == predict(raw)


@settings(max_examples=1500, deadline=None)
@given(rest=st.lists(st.tuples(st.one_of(st.sampled_from(LINES), PRINTABLE_LINE),
                               st.integers(min_value=1, max_value=4),
                               st.sampled_from(["\r\n", "\n", "\r"])), max_size=6),
       first=st.sampled_from(["250-mx.example.com Hello c.example", "250 mx.example.com",
                              "250-mx", "220-mx.example.com", "250-STARTTLS", "250 STARTTLS",
                              "250-mx.example.com STARTTLS"]),
       eol=st.sampled_from(["\r\n", "\n"]))
def test_repeated_lines_predict_like_the_reply(rest: list[tuple[str, int, str]], first: str,
                                               eol: str) -> None:
    """Runs of equal lines (the key keeps one copy of a run of equal plain keyword lines),
    each with its own line ending."""
    raw = (first + eol + "".join((line + end) * times for line, times, end in rest)).encode()
    assert predict(_prediction_key(raw)) == predict(raw)


def test_key_keeps_one_copy_of_a_run_of_plain_keyword_lines() -> None:
    many = (b"250-mx.example.com Hello c\r\n250-SIZE 1\r\n250-PIPELINING\r\n250-STARTTLS\r\n"
            b"250-DSN\r\n250-8BITMIME\r\n250 CHUNKING\r\n")
    few = b"250-mx.example.com Hello c\r\n250-DSN\r\n250-STARTTLS\r\n250-ETRN\r\n250 HELP\r\n"
    assert _prediction_key(many) == _prediction_key(few) == (
        b"250-d.example x\r\n250-K\r\n250-STARTTLS\r\n250-K\r\n250 K\r\n")
    # lines that differ in code, separator or ending are not one run
    mixed = b"250-mx.example.com\r\n250-A\r\n251-B\r\n251-C\n251 D\n"
    assert _prediction_key(mixed) == b"250-d.example\r\n250-K\r\n251-K\r\n251-K\n251 K\n"
    # after a bare LF a CRLF-only client (lettre) reads the first copy as part of the line
    # before, and bare-LF copies as part of the line after: such runs are kept whole
    lf_first = b"250-mx.example.com\n250 SIZE 1\r\n250 SIZE 1\r\n"
    assert _prediction_key(lf_first) == b"250-d.example\n250 K\r\n250 K\r\n"
    lf_run = b"250-mx.example.com\r\n250-A\n250-B\n250 C\r\n"
    assert _prediction_key(lf_run) == b"250-d.example\r\n250-K\n250-K\n250 K\r\n"


def test_key_is_the_reply_itself_when_lines_are_not_plain() -> None:
    # a first line without a separator after its code (it was cut as if it had one), and a
    # lone CR (a line end for LF-or-CR clients only): the reply is its own key
    for raw in (b"250\r\n", b"255\r\n255\r\n250 SIZE 100\r\n",
                b"250-mx.example.com\r\n250-SIZE 1\r250 STARTTLS\r\n",
                b"25\tSIZE 100\r25\tSIZE 100\r"):
        assert _prediction_key(raw) == raw
        assert predict(_prediction_key(raw)) == predict(raw)


def test_key_drops_the_client_specific_greeting() -> None:
    a = b"250-mx.example.com Hello a.example [192.0.2.1]\r\n250 STARTTLS\r\n"
    b = b"250-mx.example.com Hello b.example [192.0.2.2]\r\n250 STARTTLS\r\n"
    assert _prediction_key(a) == _prediction_key(b) != a


def test_key_drops_the_server_name_and_plain_keywords_but_keeps_what_rules_read() -> None:
    a = b"250-mx1.example.com Hello a.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
    b = b"250-relay-7.example.net\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
    lit = b"250-[192.0.2.7]\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
    assert _prediction_key(a) == b"250-d.example x\r\n250-K\r\n250 STARTTLS\r\n"
    assert _prediction_key(b) == b"250-d.example\r\n250-K\r\n250 STARTTLS\r\n"
    # keyword lines other than STARTTLS keep only their code, separator and ending
    c = b"250-d.example\r\n250-SIZE 1000\r\n250-8BITMIME\n250 AUTH  PLAIN\r\n"
    assert _prediction_key(c) == b"250-d.example\r\n250-K\r\n250-K\n250 AUTH  PLAIN\r\n"
    assert _prediction_key(lit) == _prediction_key(b)
    # a word that is no plain name stays: a rule may quote or trip on it
    odd = b"250-mx_1\r\n250 STARTTLS\r\n"
    assert _prediction_key(odd) == odd
    # a first line that mentions STARTTLS is kept whole; the lines after it are reduced
    first_line_keyword = b"250-STARTTLS\r\n250-mx.example.com\r\n250-DSN\r\n250 SIZE 1\r\n"
    assert _prediction_key(first_line_keyword) == b"250-STARTTLS\r\n250-K\r\n250 K\r\n"


# The key's line reductions as first written: a regex for the whole line and a Python call per
# line that keeps a line holding STARTTLS. ``_prediction_key`` finds the same texts with a
# regex that looks at the code, separator and line ending without matching them, so that a
# literal replaces them; the key must stay the same, byte for byte.
_WHOLE_LINE = re.compile(rb"^([0-9]{3}[- ])([A-Za-z0-9][A-Za-z0-9.-]*(?: [\x21-\x7e]+)*)(\r?\n)",
                         re.MULTILINE)


def _reference_rest(rest: bytes, crlf: bool) -> bytes:
    rest = _WHOLE_LINE.sub(lambda m: m.group(0) if b"STARTTLS" in m.group(2).upper()
                           else m.group(1) + b"K" + m.group(3), rest)
    return re.sub(rb"(?:^|(?<=\r\n))([0-9]{3}[- ]K\r\n)\1+", rb"\1", rest) if crlf else rest


_TEXT = st.one_of(st.sampled_from(["SIZE 1", "STARTTLS", "sTaRtTlS x", "x STARTTLS", "XSTARTTLSX",
                                   "a.b-c", "AUTH  PLAIN", "AUTH PLAIN", "K", "-x", ".x", "",
                                   " SIZE", "SIZE ", "START TLS", "STARTTL", "\x00STARTTLS",
                                   "S\xe9ZE", "SIZE\t1"]),
                  st.text(st.characters(min_codepoint=0, max_codepoint=0xff), max_size=12))


@settings(max_examples=2000, deadline=None)
@given(lines=st.lists(st.tuples(st.sampled_from(["250", "251", "220", "25", "2500", ""]),
                                st.sampled_from(["-", " ", "", "\t"]), _TEXT,
                                st.sampled_from(["\r\n", "\n", "\r\n", ""])), max_size=7),
       crlf=st.booleans())
def test_key_reduces_lines_as_first_written(lines: list[tuple[str, str, str, str]],
                                            crlf: bool) -> None:
    first = b"250-mx.example.com\r\n" if crlf else b"250-mx.example.com\n"
    rest = b"".join((c + s + t + e).encode("latin-1") for c, s, t, e in lines)
    raw = first + rest
    if raw.count(b"\r") != raw.count(b"\r\n"):
        assert _prediction_key(raw) == raw
    else:
        assert _prediction_key(raw) == b"250-d.example" + first[-2 if crlf else -1:] + \
            _reference_rest(rest, crlf)


def _regex_key(raw: bytes) -> bytes:
    """The key as two substitutions over the whole rest of the reply computed it before the
    line-by-line reduction (``_plain_line``, ``_one_copy_of_runs``): the reference."""
    from pcapsmtp.engine.analyzer import _PLAIN_TEXT
    nl = raw.find(b"\n")
    if nl < 0 or len(raw[:nl + 1]) < 5 or raw[3:4] not in (b"-", b" ") \
            or raw.count(b"\r") != raw.count(b"\r\n"):
        return _prediction_key(raw)          # (line one alone: unchanged code)
    first, rest = raw[:nl + 1], raw[nl + 1:]
    rest = _PLAIN_TEXT.sub(b"K", rest)
    if first.endswith(b"\r\n"):
        rest = re.sub(rb"(?:^|(?<=\r\n))([0-9]{3}[- ]K\r\n)\1+", lambda m: m.group(1), rest)
    return _prediction_key(first) + rest


@settings(max_examples=3000, deadline=None)
@given(rest=st.lists(st.tuples(st.one_of(st.sampled_from(LINES + ["250-K", "250 K", "251-K", ""]),
                                         PRINTABLE_LINE),
                               st.integers(min_value=1, max_value=3),
                               st.sampled_from(["\r\n", "\n"])), max_size=8),
       tail=st.sampled_from(["", "250 SIZE", "250-K\r", "x"]),
       first=st.sampled_from(["250-mx.example.com Hello c.example", "250 mx.example.com",
                              "250-STARTTLS", "250-mx.example.com STARTTLS"]),
       eol=st.sampled_from(["\r\n", "\n"]))
def test_line_by_line_key_is_the_regex_key(rest: list[tuple[str, int, str]], tail: str,
                                           first: str, eol: str) -> None:
    """The key, reduced line by line with its lines looked up, is byte for byte the one two
    regex substitutions over the whole reply gave (runs, lines without their end, repeats)."""
    raw = (first + eol + "".join((line + end) * times for line, times, end in rest)
           + tail).encode()
    assert _prediction_key(raw) == _regex_key(raw)
    assert _prediction_key(raw) == _regex_key(raw)       # (the second time from the memo)
