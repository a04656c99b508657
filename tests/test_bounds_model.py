"""The per-conversation event bound as a model (pcapsmtp/analysis/transcript.py): whatever the
bound, a conversation's verdict is the one it has with every event kept, or ``incomplete`` with a
``limit-reached`` finding; and what is kept stays bounded whatever a hostile capture sends.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.analysis.transcript import BOUNDED_SLACK
from pcapsmtp.engine import analyzer as analyzer_mod
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_path

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"
sys.path.insert(0, str(CAPTURES))

from generate_hostile import BANNER, EHLO, EHLO_OK, fast_pcap  # noqa: E402

NAMES = sorted(p.name for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng", ".gz"))


def _key(conv: dict[str, Any]) -> tuple[Any, ...]:
    return conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case")


def _bound_reached(conv: dict[str, Any]) -> bool:
    return any(f["code"] == "limit-reached" and "per-conversation bound" in f["message"]
               for f in conv["findings"])


def test_a_smaller_bound_gives_the_same_verdict_or_incomplete() -> None:
    """Every capture, analysed with bounds of 3 to 20 events (the synthetic conversations are
    short: those bounds are what 2000 is to a long one): each conversation's verdict is the one
    it has with the default bound, or incomplete/unknown naming the bound. The model kept, past
    the bound, only some key events and dropped the TLS handshake: 199 conversations here read
    another verdict then (a TLS success read as the client's handshake failure, ...)."""
    reached = changed = 0
    wrong = []
    for name in NAMES:
        path = str(CAPTURES / name)
        whole = {c["stream"]: c for c in analyze_path(path)}
        for bound in (3, 6, 10, 20):
            for conv in analyze_path(path, AnalysisConfig(max_events=bound)):
                want = whole[conv["stream"]]
                reached += _bound_reached(conv)
                if _key(conv) == _key(want):
                    continue
                changed += 1
                if _key(conv)[:3] != ("incomplete", "unknown", "incomplete") or not _bound_reached(conv):
                    wrong.append((name, conv["stream"], bound, _key(want), _key(conv)))
    assert wrong == []
    # (not vacuous: the bounds are reached often, and a few verdicts rest on what was dropped)
    assert reached > 100 and changed >= 1


def _items_at_conclusion(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many events each conversation kept when it was judged."""
    seen: list[int] = []
    conclude = analyzer_mod.Analyzer._conclude

    def spy(self: Any, c: Any, **kw: Any) -> dict[str, Any]:
        seen.append(len(c.transcript.items))
        return conclude(self, c, **kw)

    monkeypatch.setattr(analyzer_mod.Analyzer, "_conclude", spy)
    return seen


def _flood(n: int, command: bytes, reply: bytes, group: int = 100) -> bytes:
    """EHLO, then ``n`` commands answered one by one in groups of ``group`` (pipelined), QUIT."""
    steps = [("S", BANNER), ("C", EHLO), ("S", EHLO_OK)]
    for _ in range(n // group):
        steps += [("C", command * group), ("S", reply * group)]
    return fast_pcap(steps + [("C", b"QUIT\r\n"), ("S", b"221 Bye\r\n")])


@pytest.mark.parametrize("command, reply", [
    (b"XYZZY\r\n", b"502 5.5.2 Error: command not recognized\r\n"),   # events a verdict may turn on
    (b"MAIL FROM:<a@example.org>\r\n", b"530 5.7.0 Must issue a STARTTLS command first\r\n"),
    (b"NOOP\r\n", b"250 2.0.0 Ok\r\n"),                                 # events no verdict reads
])
def test_kept_events_stay_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: bytes,
                                  reply: bytes) -> None:
    """50 000 commands and their replies on one connection: at most twice the bound plus the
    slack of the bounded events are kept, and a flood of events the verdict may turn on leaves it
    incomplete, one of events it cannot turn on does not."""
    p = tmp_path / "flood.pcap"
    p.write_bytes(_flood(50_000, command, reply))
    seen = _items_at_conclusion(monkeypatch)
    (conv,) = analyze_path(str(p), AnalysisConfig(max_events=500))
    assert seen and max(seen) <= 2 * 500 + BOUNDED_SLACK
    assert _bound_reached(conv)
    if command == b"NOOP\r\n":
        assert _key(conv) == ("aborted", "none", "no-mail-transaction", None)
        assert seen == [500 + 2 + 2]     # (the bound, the QUIT and its 221, each side's end)
    else:
        assert _key(conv)[:3] == ("incomplete", "unknown", "incomplete")
        assert seen == [2 * 500 + 2]     # (and each side's end, always kept)


from capturecheck import measure as _measure  # noqa: E402


def test_a_million_lines_the_verdict_may_turn_on_do_not_grow_memory(tmp_path: Path) -> None:
    """Half a million unknown commands and half a million refusals (every one an event a verdict
    may turn on, kept up to twice the bound): peak memory as for 10 000 of them."""
    small, big = tmp_path / "small.pcap", tmp_path / "big.pcap"
    small.write_bytes(_flood(5_000, b"XYZZY\r\n", b"502 5.5.2 Error\r\n"))
    big.write_bytes(_flood(500_000, b"XYZZY\r\n", b"502 5.5.2 Error\r\n"))
    base, res = _measure(small), _measure(big)
    (conv,) = res["convs"]
    assert _key(conv)[:3] == ("incomplete", "unknown", "incomplete") and _bound_reached(conv)
    assert res["maxrss_kb"] - base["maxrss_kb"] < 40 * 1024, (base["maxrss_kb"], res["maxrss_kb"])


def test_a_retry_after_an_attempt_the_bound_left_incomplete_blames_nobody(tmp_path: Path) -> None:
    """Stream 0: 30 MAILs refused 530, then STARTTLS, 220, the ClientHello and the server's
    alert; stream 1, 2 s later: the same client skips the offered STARTTLS. With a bound of 20
    events stream 0's STARTTLS is past twice the bound (incomplete, and as kept it asked for
    nothing): its failure may be in what was not kept, so stream 1 may be the plaintext retry
    after it, and blames nobody (it read client-did-not-request); with the default bound stream 0
    is the server's failure and stream 1 its tls-fallback."""
    import generate
    from generate import Capture, Conv, Expect, did_not_request_conv, opening

    c = opening(Conv(cport=48201, close=("fin", "S")))
    for _ in range(30):
        c.c(b"MAIL FROM:<a@example.org>\r\n", acked=False)
        c.s(b"530 5.7.0 Must issue a STARTTLS command first\r\n", acked=False)
    c.c(generate.STARTTLS).s(generate.READY)
    c.c(generate.client_hello("bounds retry", "mx.example.com")).s(generate.alert(40))
    retry = did_not_request_conv(cport=48202, start_offset_ms=2000, isn=(0x0BADCAFE, 0x0DEFACED))
    unused = Expect("aborted", "server", "tls-handshake-failed", "valid")
    data, _ = generate.render(Capture("retry.pcap", "", [(c, unused), (retry, unused)]))
    p = tmp_path / "retry.pcap"
    p.write_bytes(data)
    whole = sorted(analyze_path(str(p)), key=lambda conv: conv["stream"])
    assert [_key(conv) for conv in whole] == [("aborted", "server", "tls-handshake-failed", None),
                                             ("plaintext", "server", "tls-fallback", None)]
    first, second = sorted(analyze_path(str(p), AnalysisConfig(max_events=20)), key=lambda conv: conv["stream"])
    assert _key(first) == ("incomplete", "unknown", "incomplete", None) and _bound_reached(first)
    assert first["starttls"]["requested"] is False
    assert not _bound_reached(second)
    assert _key(second) == ("incomplete", "unknown", "incomplete", None)
    assert second["detail"].endswith("(alone it reads as client-did-not-request)")
