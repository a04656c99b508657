"""Packets the capture lost (live: the kernel's drop counters, ``Analyzer.note_loss``): a
conversation open during a loss gets a ``capture-loss`` finding; a verdict that blames a side
on bytes at or after the loss becomes incomplete/unknown; one decided before it stands."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pcapsmtp.capture.pcapfile import iter_records, iter_segments
from pcapsmtp.engine.analyzer import Analyzer

ROOT = Path(__file__).resolve().parents[2]


def run(name: str, losses: list[tuple[int, int, int]]) -> list[dict[str, Any]]:
    an = Analyzer(file=name)
    for loss in losses:
        an.note_loss(*loss)
    done = []
    for seg in iter_segments(str(ROOT / "captures" / name)):
        done.extend(an.feed(seg))
    done.extend(an.finish())
    return done


def ts(name: str) -> dict[int, int]:
    return {r[0]: r[1] for r in iter_records(str(ROOT / "captures" / name))}


def loss_codes(conv: dict[str, Any]) -> list[str]:
    return [f["code"] for f in conv["findings"] if f["code"] == "capture-loss"]


def test_loss_before_the_deciding_bytes_takes_the_blame_back() -> None:
    name = "client-did-not-request.pcap"
    (plain,) = run(name, [])
    assert (plain["outcome"], plain["caused_by"], plain["reason"]) == \
        ("plaintext", "client", "client-did-not-request")
    t = ts(name)
    ev = plain["evidence_frame"]
    # packets lost between the EHLO reply and the MAIL that decides: a STARTTLS may be in them
    (conv,) = run(name, [(t[ev] - 2, t[ev] - 1, 3)])
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == \
        ("incomplete", "unknown", "incomplete")
    assert loss_codes(conv) == ["capture-loss"]
    f = next(f for f in conv["findings"] if f["code"] == "capture-loss")
    assert f["side"] == "capture" and f["frame"] is None and "3 packets" in f["message"]
    assert "client-did-not-request (client)" in conv["detail"]
    assert "tlsrpt_result" not in conv


def test_loss_after_the_deciding_bytes_keeps_the_verdict() -> None:
    name = "starttls-refused-454.pcap"
    (plain,) = run(name, [])
    assert plain["caused_by"] == "server"
    t = ts(name)
    last = max(t.values())
    (conv,) = run(name, [(t[plain["evidence_frame"]], last - 1, 1)])
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == \
        (plain["outcome"], plain["caused_by"], plain["reason"])
    assert loss_codes(conv) == ["capture-loss"]


def test_loss_outside_the_conversation_changes_nothing() -> None:
    name = "tls-alert-server.pcap"
    (plain,) = run(name, [])
    t = ts(name)
    first, last = min(t.values()), max(t.values())
    before = run(name, [(first - 10**9, first - 1, 5)])
    after = run(name, [(last + 1, last + 10**9, 5)])
    assert before == [plain] and after == [plain]


def test_no_blame_means_finding_only() -> None:
    name = "implicit-tls-465.pcap"
    (plain,) = run(name, [])
    assert plain["caused_by"] == "none"
    t = ts(name)
    (conv,) = run(name, [(min(t.values()), max(t.values()), 2)])
    assert (conv["outcome"], conv["reason"]) == (plain["outcome"], plain["reason"])
    assert loss_codes(conv) == ["capture-loss"]


def test_late_start_counts_as_open_before_its_first_packet() -> None:
    """A conversation whose start was not captured may have begun before its first packet:
    a loss just before that packet touches it."""
    name = "midstream-after-ehlo.pcap"
    (plain,) = run(name, [])
    t = ts(name)
    first = min(t.values())
    (conv,) = run(name, [(first - 10**9, first - 1, 4)])
    assert loss_codes(conv) == ["capture-loss"]
    assert conv["caused_by"] not in ("client", "server", "middlebox") or \
        conv["caused_by"] == plain["caused_by"] == "unknown"
