"""A conversation's ``case``: the case of its reason that the verdict names (docs/verdicts.md), in the
JSON of ``analyze`` and in each side of a ``diff`` pair, so that a script can tell a server that never
answered the ClientHello (``server-silent``) from one that refused it, without matching texts."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.analysis.reasons import REASON_CASES, REASONS
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"

#: (capture, stream) -> (reason, case): every case of REASON_CASES, each at least twice
CASES = {
    ("wild-server-silent-greeting-timeout.pcap", 0): ("greeting-refused", "no-answer"),
    ("wild-server-silent-greeting-quit.pcap", 0): ("greeting-refused", "no-answer"),
    ("hang-ehlo-silent.pcap", 0): ("ehlo-rejected", "no-answer"),
    ("hang-ehlo-stall-quit.pcap", 0): ("ehlo-rejected", "no-answer"),
    ("hang-ehlo-silent-quit-221.pcap", 0): ("ehlo-rejected", "no-answer"),
    ("hang-starttls-silent.pcap", 0): ("starttls-refused", "no-answer"),
    ("hang-starttls-silent-quit-221.pcap", 0): ("starttls-refused", "no-answer"),
    ("hang-starttls-silent-quit.pcap", 0): ("starttls-refused", "no-answer"),
    ("pairing-postfix-starttls-stray.pcap", 0): ("starttls-refused", "stray-answer"),
    ("pairing-go-starttls-stray.pcap", 0): ("starttls-refused", "stray-answer"),
    ("starttls-421-server-resets.pcap", 0): ("starttls-refused", "server-closed"),
    ("starttls-454-server-closes.pcap", 0): ("starttls-refused", "server-closed"),
    ("tcp-reset-race-controls.pcap", 1): ("starttls-refused", "server-closed"),
    ("hang-tls-stall.pcap", 0): ("tls-handshake-failed", "server-silent"),
    ("hang-tls-stall-alert.pcap", 0): ("tls-handshake-failed", "server-silent"),
    ("path-answer-lost.pcap", 0): ("tls-handshake-failed", "answer-lost"),
    ("path-hello-lost.pcap", 0): ("tls-handshake-failed", "hello-lost"),
    ("path-hello-partly-lost.pcap", 0): ("tls-handshake-failed", "hello-lost"),
    ("path-starttls-lost.pcap", 0): ("starttls-refused", "command-lost"),
    ("path-starttls-lost-fallback.pcap", 0): ("starttls-refused", "command-lost"),
    ("path-answer-partly-lost.pcap", 0): ("tls-handshake-failed", "answer-lost"),
    ("pathhole-hello-fin.pcap", 0): ("tls-handshake-failed", "hello-lost"),
    ("pathhole-hello-mtu.pcap", 0): ("tls-handshake-failed", "hello-lost"),
    ("pathhole-starttls-quit.pcap", 0): ("starttls-refused", "command-lost"),
    ("pathhole-answer-lost.pcap", 0): ("tls-handshake-failed", "answer-lost"),
    ("pathhole-starttls-postfix421.pcap", 0): ("starttls-refused", "command-lost"),
    ("pathhole-starttls-exim421.pcap", 0): ("starttls-refused", "command-lost"),
    ("pathhole-hello-postfix-timeout.pcap", 0): ("tls-handshake-failed", "hello-lost"),
    ("pathhole-hello-exim421.pcap", 0): ("tls-handshake-failed", "hello-lost"),
    ("pathhole-answer-client-timeout.pcap", 0): ("tls-handshake-failed", "answer-lost"),
    ("pathhole-smtps-hello.pcap", 0): ("tls-handshake-failed", "hello-lost"),
    ("pathhole-smtps-hello-v6.pcap", 0): ("tls-handshake-failed", "hello-lost"),
    ("pathhole-smtps-hello-mtu.pcap", 0): ("tls-handshake-failed", "hello-lost"),
    ("pathhole-smtps-answer-lost.pcap", 0): ("tls-handshake-failed", "answer-lost"),
    ("pairs/dpi-drop-clienthello-fin.inside.pcap", 0): ("tls-handshake-failed", "hello-lost"),
    ("tls-server-old-version.pcap", 0): ("tls-handshake-failed", "server-old-tls"),
    ("tls-server-old-version.pcap", 2): ("tls-handshake-failed", "server-old-tls"),
    ("tls-server-weak-dh.pcap", 0): ("tls-handshake-failed", "server-weak-dh"),
    ("tls-server-weak-dh.pcap", 1): ("tls-handshake-failed", "server-weak-dh"),
    ("tls-client-old-version.pcap", 0): ("tls-handshake-failed", "client-old-tls"),
    ("tls-late-alert-answers-starttls.pcap", 0): ("tls-handshake-failed", "client-old-tls"),
    ("hunt25-client-tls13-only-server-protocol-version.pcap", 0): ("tls-handshake-failed", "client-tls13-only"),
    ("tcp-reset-forged-starttls.pcap", 0): ("starttls-refused", "reset-forged"),
    ("hunt-tls-client-on-587.pcap", 0): ("implicit-tls-mismatch", "client-tls-port"),
    ("hunt-tls-client-on-25.pcap", 0): ("implicit-tls-mismatch", "client-tls-port"),
    ("tcp-reset-forged-starttls-ipv6.pcap", 0): ("starttls-refused", "reset-forged"),
    ("tcp-reset-forged-hello.pcap", 0): ("tls-handshake-failed", "reset-forged"),
    ("tcp-reset-forged-hello-ipv6.pcap", 0): ("tls-handshake-failed", "reset-forged"),
    ("tcp-reset-forged-hello-server-side.pcap", 0): ("tls-not-started", "reset-forged"),
    ("tcp-reset-forged-hello-server-side-ipv6.pcap", 0): ("tls-not-started", "reset-forged"),
    ("pathhole-ready-server-closes.pcap", 0): ("tls-not-started", "answer-lost"),
    ("pathhole-ready-client-quits.pcap", 0): ("tls-not-started", "answer-lost"),
    ("span-resent-20ms-ready-server-closes.pcap", 0): ("tls-not-started", "answer-lost"),
    ("pathhole-ehlo-reply-lost-server-421.pcap", 0): ("ehlo-rejected", "answer-lost"),
    ("pathhole-ehlo-reply-lost-client-quits.pcap", 0): ("ehlo-rejected", "answer-lost"),
    ("pathhole-answer-partly-client-side.pcap", 0): ("tls-handshake-failed", "answer-lost"),
    ("hunt5-client-hangs-after-answer.pcap", 0): ("tls-handshake-failed", "client-silent"),
    ("hunt5-client-hangs-after-answer-tls13.pcap", 0): ("tls-handshake-failed", "client-silent"),
    ("hunt6-client-silent-after-hrr.pcap", 0): ("tls-handshake-failed", "client-silent"),
    ("hunt6-server-stalls-mid-answer-tls13-client-resets.pcap", 0): ("tls-handshake-failed", "server-silent"),
    ("tcp-reset-forged-starttls-server-side.pcap", 0): ("no-mail-transaction", "reset-forged"),
    ("tcp-reset-forged-ehlo.pcap", 0): ("no-mail-transaction", "reset-forged"),
}


def _convs(name: str) -> list[dict[str, Any]]:
    res = analyze_file(str(CAPTURES / name), AnalysisConfig())
    assert res.error is None, res.error
    return res.conversations


def test_every_case_is_named_somewhere() -> None:
    assert {v for v in CASES.values()} == set(REASON_CASES)


@pytest.mark.parametrize("name,stream", sorted(CASES))
def test_the_case_and_its_explanation(name: str, stream: int) -> None:
    conv = next(c for c in _convs(name) if c["stream"] == stream)
    reason, case = CASES[(name, stream)]
    assert (conv["reason"], conv["case"]) == (reason, case)
    info = REASON_CASES[(reason, case)]
    assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}
    assert conv["caused_by"] == info.caused_by
    assert any(f["code"] == info.finding for f in conv["findings"])


@pytest.mark.parametrize("name", ["seed-starttls-first-line.pcap", "tls-fallback.pcap", "hang-tls-stall.pcap",
                                  "starttls-masked.pcap", "seed-compliant-twin.pcap",
                                  # a forged reset after the server's 421: the refusal's verdict, no case
                                  "starttls-421-forged-reset.pcap"])
def test_no_case_means_the_reasons_own_explanation(name: str) -> None:
    """A verdict that names no case has no ``case`` key; its explanation is the reason's own (and with a case,
    the case's): the key and the texts never disagree."""
    for conv in _convs(name):
        if "case" in conv:
            info = REASON_CASES[(conv["reason"], conv["case"])]
            assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}
        elif conv["reason"] in REASONS:
            info = REASONS[conv["reason"]]
            assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}


def test_the_json_of_analyze_carries_it() -> None:
    proc = subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", "--format", "json",
                           str(CAPTURES / "tls-server-old-version.pcap"), str(CAPTURES / "seed-compliant-twin.pcap")],
                          capture_output=True, text=True, timeout=120)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["file"].rsplit("/", 1)[-1], r["stream"], r.get("case")) for r in rows] == [
        ("tls-server-old-version.pcap", 0, "server-old-tls"), ("tls-server-old-version.pcap", 1, "server-old-tls"),
        ("tls-server-old-version.pcap", 2, "server-old-tls"), ("seed-compliant-twin.pcap", 0, None)]
    assert "case" not in rows[-1]


def test_output_md_lists_the_cases() -> None:
    """docs/output.md names every case the key can take, and only those."""
    text = (ROOT / "docs" / "output.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `case` |"))
    named = set(re.findall(r"`([a-z][a-z0-9-]*)`", row)) - {"case", "explanation", *REASONS}
    assert named == {case for _reason, case in REASON_CASES}
