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


_REAL_MAKE = json.encoder.c_make_encoder


def _other_order(markers: Any, default: Any, encoder: Any, indent: Any, key_sep: str,
                 item_sep: str, sort_keys: bool, skipkeys: bool, allow_nan: bool) -> Any:
    # a C encoder whose last three arguments come in another order (allow_nan first): ours
    # lands False there, so NaN raises ValueError; the old one-case check ({"a": ["b", 1, None]})
    # did not see it
    return _REAL_MAKE(markers, default, encoder, indent, key_sep, item_sep, sort_keys, allow_nan,
                      skipkeys)


def _own_strings(markers: Any, default: Any, encoder: Any, indent: Any, key_sep: str,
                 item_sep: str, sort_keys: bool, skipkeys: bool, allow_nan: bool) -> Any:
    # a C encoder that escapes strings itself, without ensure_ascii (the string-encoder argument
    # not where we put it): "b" comes out alike, a non-ASCII, a control character does not
    return _REAL_MAKE(markers, default, json.encoder.encode_basestring, indent, key_sep, item_sep,
                      sort_keys, skipkeys, allow_nan)


def _own_floats(markers: Any, default: Any, encoder: Any, indent: Any, key_sep: str,
                item_sep: str, sort_keys: bool, skipkeys: bool, allow_nan: bool) -> Any:
    # a C encoder that writes floats otherwise (an exponent without its sign)
    real = _REAL_MAKE(markers, default, encoder, indent, key_sep, item_sep, sort_keys, skipkeys,
                      allow_nan)
    return lambda o, level: ["".join(real(o, level)).replace("e+", "e")]


def test_line_encoder_is_checked_on_escapes_floats_and_nan(monkeypatch: Any) -> None:
    # the C encoder made once is used only when it encodes a string that needs escaping, floats
    # and NaN as the json module does; otherwise each line is _JSONL.encode's
    # (each fake stands for another Python's c_make_encoder, called in CPython 3.11's order;
    # the json module itself would call it in its own order, so it is not patched there)
    assert text._line_encoder() is not None
    assert text._line_encoder(_REAL_MAKE) is not None
    for fake in (_other_order, _own_strings, _own_floats):
        assert text._line_encoder(fake) is None, fake.__name__
    conv = {"stream": 1, "reason": "r\u00e9\x01\"", "ratio": -1.5e300, "gap": float("nan")}
    monkeypatch.setattr(text, "_LINE", text._line_encoder(_own_floats))
    assert text.render_jsonl(conv) == _reference(conv)
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert text._line_encoder() is None
