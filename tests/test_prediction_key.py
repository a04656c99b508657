"""The client-table cache keys a reply without the per-client greeting text; the prediction
must be the same as on the full reply."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pcapsmtp.analysis.clients import predict
from pcapsmtp.pipeline import _prediction_key

LINES = ["250-PIPELINING", "250-STARTTLS", "250-starttls", "250-8BITMIME", "250 SIZE 1000",
         "250 STARTTLS", "220-STARTTLS", "250- STARTTLS", "250 HELP", "250-XXXXXXXA"]
GREETING = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@settings(max_examples=300, deadline=None)
@given(domain=st.sampled_from(["mx.example.com", "STARTTLS", "mail"]), greet=GREETING,
       rest=st.lists(st.sampled_from(LINES), max_size=5), sep=st.sampled_from(["-", " "]),
       eol=st.sampled_from(["\r\n", "\n"]))
def test_key_predicts_like_the_reply(domain: str, greet: str, rest: list[str], sep: str,
                                     eol: str) -> None:
    first = f"250{sep}{domain}" + (f" {greet}" if greet else "")
    raw = (eol.join([first, *rest]) + eol).encode()
    assert predict(_prediction_key(raw)) == predict(raw)


def test_key_drops_the_client_specific_greeting() -> None:
    a = b"250-mx.example.com Hello a.example [192.0.2.1]\r\n250 STARTTLS\r\n"
    b = b"250-mx.example.com Hello b.example [192.0.2.2]\r\n250 STARTTLS\r\n"
    assert _prediction_key(a) == _prediction_key(b) != a
