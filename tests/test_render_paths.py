"""The short paths of the per-conversation output (issue 15): each gives what the full path
gives.

- ``safe`` returns an ASCII printable text as it is, without the regex: for every text it
  returns what the escaping regex alone returns;
- ``render_jsonl`` encodes a conversation without internal keys as it is (no copy) and without
  the encoder's cycle check: the line is the one ``json.dumps`` with the contract's options
  gives for the conversation without its "_" keys.
"""
from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pcapsmtp.render import text


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=st.characters(max_codepoint=0x2070)),
                 st.text(alphabet="ab \t\r\n\x1b\x7f\x85\u2028\u202e\u00e9")))
def test_safe_escapes_as_the_regex_alone(s: str) -> None:
    assert text.safe(s) == text._CONTROL.sub(text._escape_char, s)


def test_safe_of_the_usual_and_the_hostile() -> None:
    assert text.safe("220 mx.example.com ESMTP") == "220 mx.example.com ESMTP"
    assert text.safe("a\x1b[31mb\x7f") == "a\\x1b[31mb\\x7f"
    assert text.safe("x\u202ey") == "x\\u202ey"
    assert text.safe(None) == "" and text.safe(25) == "25"


def _reference(conv: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in conv.items() if not k.startswith("_")}, ensure_ascii=True,
                      separators=(", ", ": "), default=str)


_KEY = st.text(alphabet="_aAz0 -", min_size=0, max_size=4)
_VALUE = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                      lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=8)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_KEY, _VALUE, max_size=6))
def test_jsonl_line_is_the_reference_encoding(conv: dict[str, Any]) -> None:
    line = text.render_jsonl(conv)
    assert line == _reference(conv)
    assert not any(k.startswith("_") for k in json.loads(line))


def test_jsonl_leaves_out_internal_keys_and_keeps_the_dict() -> None:
    conv = {"stream": 1, "_line_marks": {("server", 0): ["x"]}, "outcome": "tls", "Zed": 2}
    assert text.render_jsonl(conv) == '{"stream": 1, "outcome": "tls", "Zed": 2}'
    assert "_line_marks" in conv
    assert text.render_jsonl({"stream": 1, "reason": "r\u00e9"}) == '{"stream": 1, "reason": "r\\u00e9"}'


def test_jsonl_strings_memo_is_used_bounded_and_gives_the_reference(monkeypatch: Any) -> None:
    # CPython's C encoder is there: each line is encoded by it, with the strings' JSON looked
    # up in a bounded memo (emptied when full, long strings not kept)
    assert text._LINE is not None
    monkeypatch.setattr(text, "_MEMO_MAX", 3)
    long = "x\u00e9" * (text._MEMO_CHARS + 1)
    convs = [{"stream": i, "reason": f"r{i % 5}\n", "detail": long, "e": ["\u2028", None, True]}
             for i in range(20)]
    for conv in convs:
        assert text.render_jsonl(conv) == _reference(conv)
    memo = text._LINE.encoder.__self__
    assert 0 < len(memo) <= 3 and long not in memo
