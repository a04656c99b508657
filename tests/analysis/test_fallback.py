"""FallbackTracker (issue 13, item 4): a later plaintext conversation becomes ``tls-fallback``
only when its client chose to skip STARTTLS (a valid offer, or HELO) after an earlier failure
between the same hosts; one whose server offered nothing keeps its own verdict and names the
earlier failure in ``detail``. Plus the generated captures through the pipeline."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.analysis.fallback import FallbackTracker
from pcapsmtp.engine.analyzer import analyze_path

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
SECOND = 10**9


def conv(stream: int, outcome: str, caused_by: str, reason: str, t: int,
         client: str = "192.0.2.10", server: str = "198.51.100.25", port: int = 25) -> dict[str, Any]:
    return {"file": "f.pcap", "stream": stream, "client": {"ip": client}, "server": {"ip": server, "port": port},
            "outcome": outcome, "caused_by": caused_by, "reason": reason, "detail": "why",
            "started_ns": t * SECOND, "ended_ns": t * SECOND + SECOND, "evidence_frame": 7 + stream}


FAILED = [("aborted", "server", "tls-handshake-failed"), ("aborted", "client", "tls-handshake-failed"),
          ("aborted", "server", "starttls-refused"), ("plaintext", "server", "starttls-refused"),
          ("aborted", "client", "tls-not-started")]


@pytest.mark.parametrize("failure", FAILED)
@pytest.mark.parametrize("later", [("client", "client-did-not-request"), ("client", "client-used-helo")])
def test_the_clients_choice_after_a_failure_is_a_fallback(failure: tuple[str, str, str],
                                                          later: tuple[str, str]) -> None:
    tr = FallbackTracker(window_ns=900 * SECOND)
    tr.observe(conv(0, *failure, t=0))
    c = conv(1, "plaintext", *later, t=5)
    tr.observe(c)
    assert (c["outcome"], c["caused_by"], c["reason"]) == ("plaintext", failure[1], "tls-fallback")
    assert c["fallback_of"] == {"stream": 0, "reason": failure[2], "frame": 7, "previous_reason": later[1]}


@pytest.mark.parametrize("later", [("server", "starttls-not-offered"), ("server", "starttls-misplaced"),
                                   ("middlebox", "starttls-masked"), ("server", "ehlo-rejected")])
def test_a_server_that_offered_nothing_keeps_its_verdict_and_the_failure_is_named(
        later: tuple[str, str]) -> None:
    tr = FallbackTracker(window_ns=900 * SECOND)
    tr.observe(conv(0, "aborted", "server", "tls-handshake-failed", t=0))
    c = conv(1, "plaintext", *later, t=5)
    tr.observe(c)
    assert (c["outcome"], c["caused_by"], c["reason"]) == ("plaintext", *later)
    assert "fallback_of" not in c
    assert c["detail"] == "why; an earlier attempt (stream 0) failed with tls-handshake-failed"


def test_outside_the_window_other_hosts_or_without_a_failure_nothing_changes() -> None:
    tr = FallbackTracker(window_ns=60 * SECOND)
    tr.observe(conv(0, "aborted", "server", "tls-handshake-failed", t=0))
    late = conv(1, "plaintext", "client", "client-did-not-request", t=120)
    other = conv(2, "plaintext", "client", "client-did-not-request", t=5, client="192.0.2.99")
    for c in (late, other):
        tr.observe(c)
        assert c["reason"] == "client-did-not-request" and c["detail"] == "why"
    tls = conv(3, "tls", "none", "tls-established", t=6)
    tr.observe(tls)
    assert (tls["outcome"], tls["caused_by"], tls["reason"]) == ("tls", "none", "tls-established")


def test_a_retry_comes_to_the_port_that_failed() -> None:
    """A failure on the submission port (a mail program's, 587) and a plaintext delivery to the
    server's port 25 (the host's MTA): not a retry; a failure on 465 neither. The same port is."""
    tr = FallbackTracker(window_ns=900 * SECOND)
    tr.observe(conv(0, "aborted", "server", "tls-handshake-failed", t=0, port=587))
    tr.observe(conv(1, "aborted", "client", "tls-not-started", t=1, port=465))
    other = conv(2, "plaintext", "client", "client-did-not-request", t=5)
    tr.observe(other)
    assert (other["reason"], other["detail"]) == ("client-did-not-request", "why")
    same = conv(3, "plaintext", "client", "client-did-not-request", t=6, port=587)
    tr.observe(same)
    assert (same["caused_by"], same["reason"], same["fallback_of"]["stream"]) == ("server", "tls-fallback", 0)


def test_an_unsure_attempt_makes_unsure_only_a_retry_to_its_port() -> None:
    """An attempt on 587 the capture cannot judge (it asked for STARTTLS; how that ended is not
    in the capture): a plaintext conversation to 25 keeps its reading, one to 587 may be the
    retry and reads ``incomplete``."""
    for port, want in ((25, "client-did-not-request"), (587, "incomplete")):
        tr = FallbackTracker(window_ns=900 * SECOND)
        unsure = conv(0, "incomplete", "unknown", "incomplete", t=0, port=587)
        unsure.update(starttls={"requested": True}, findings=[])
        tr.observe(unsure)
        later = conv(1, "plaintext", "client", "client-did-not-request", t=5, port=port)
        tr.observe(later)
        assert later["reason"] == want, port


@pytest.mark.parametrize("name", ["tls-fallback.pcap", "fallback-helo.pcap", "fallback-server-offered-nothing.pcap"])
def test_generated_fallback_captures(name: str) -> None:
    got = analyze_path(str(CAPTURES / name))
    want = json.loads((CAPTURES / "expected.json").read_text())[name]["conversations"]
    assert [(c["outcome"], c["caused_by"], c["reason"]) for c in got] == [
        (w["outcome"], w["caused_by"], w["reason"]) for w in want]
    later = got[1]
    if later["reason"] == "tls-fallback":
        assert later["fallback_of"]["stream"] == 0
        assert later["fallback_of"]["frame"] == got[0]["evidence_frame"]
    else:
        assert "fallback_of" not in later
        assert later["detail"].endswith(f"an earlier attempt (stream 0) failed with {got[0]['reason']}")
        assert later["evidence_frame"] == want[1]["frames"]["ehlo_reply"][0]
