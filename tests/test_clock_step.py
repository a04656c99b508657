"""A capture clock that steps back mid-capture (``pcapsmtp.analysis.clock``, docs/output.md "A clock
that steps back"): the generated captures ``captures/wallclock-step-*.pcap`` (captures/scenarios_clock.py),
each stepping back an hour at one frame, read exactly; tshark sees the same frames go back in time."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.analysis.clock import STEP_PAUSE_NS, CaptureClock
from pcapsmtp.engine.analyzer import analyze_file

REPO = Path(__file__).resolve().parents[1]
SILENT = REPO / "captures" / "wallclock-step-starttls-silent.pcap"
PLAIN = REPO / "captures" / "wallclock-step-plaintext.pcap"
FALLBACK = REPO / "captures" / "wallclock-step-fallback.pcap"
T0 = 1767261600 * 10**9           # the generated captures' first frame, 2026-01-01T10:00:00Z


def _convs(path: Path) -> list[dict[str, Any]]:
    res = analyze_file(str(path))
    assert res.error is None, res.error
    return res.conversations


def _verdict(c: dict[str, Any]) -> tuple[Any, ...]:
    return (c["outcome"], c["caused_by"], c["reason"], c.get("case"), c["evidence_frame"],
            [(f["code"], f["side"], f["frame"]) for f in c["findings"]])


def test_a_wait_across_the_step_is_not_measured() -> None:
    """STARTTLS (frame 10) never answered; the client's FIN (frame 12) 5 s later, stamped 3595 s
    before it. Read as stamped the client did not wait (nobody to blame); with a pause of a second
    or more at the step the server never answered: the verdict turns on the pause, so it is
    incomplete, and the server's ``no-answer`` (a duration across the step) is not kept."""
    (c,) = _convs(SILENT)
    assert _verdict(c) == ("incomplete", "unknown", "incomplete", None, 12,
                           [("clock-step", "capture", 12)])
    assert c["detail"] == (
        "the capture's clock went back 3595 s at frame 12: how long a side waited across it is not "
        "known, and the verdict turns on it: it reads as starttls-refused (server) with a pause of 1 s, "
        "12 s, 45 s or 3600 s, as no-mail-transaction (none) with no pause at the step; no side is blamed")
    assert c["findings"][0]["message"].startswith("the capture's clock went back 3595 s at frame 12, ")
    assert (c["starttls"]["requested"], c["starttls"]["reply_code"], c["starttls"]["frame"]) == (True, None, 10)
    assert "tlsrpt_result" not in c and "case" not in c
    # the times as the file stamps them: the end before the start
    assert c["started_ns"] == T0 and c["ended_ns"] < c["started_ns"]


def test_a_verdict_that_measures_no_duration_stands() -> None:
    """The mail in the clear after a valid offer (MAIL FROM at frame 10, where the clock goes back
    an hour) is the client's, whatever the pause."""
    (c,) = _convs(PLAIN)
    assert _verdict(c) == ("plaintext", "client", "client-did-not-request", None, 10,
                           [("clock-step", "capture", 10)])
    assert c["detail"] == "STARTTLS was validly offered; the client went on in plaintext"


def test_the_retry_after_the_step_is_still_a_fallback() -> None:
    """STARTTLS refused (frame 12), the QUIT (frame 14) stamped an hour earlier, and the retry 1 s
    later: on the continuous timeline it comes after the failure (``tls-fallback``, the server's),
    though its stamped start is an hour before the failure's."""
    first, retry = _convs(FALLBACK)
    assert _verdict(first) == ("aborted", "server", "starttls-refused", None, 12,
                               [("clock-step", "capture", 14)])
    assert _verdict(retry) == ("plaintext", "server", "tls-fallback", None, 30, [])
    assert retry["fallback_of"] == {"stream": 0, "reason": "starttls-refused", "frame": 12,
                                    "previous_reason": "client-did-not-request"}
    assert retry["started_ns"] < first["started_ns"] == T0


def test_the_clock_tolerates_reordering_and_moves_past_a_step() -> None:
    clock = CaptureClock()
    for frame, ts in ((1, 10_000_000_000), (2, 10_500_000_000), (3, 10_450_000_000)):
        clock.see(frame, ts)            # 50 ms back: a reordering, no step
    assert clock.steps == [] and clock.at(3, 10_450_000_000) == 10_450_000_000
    clock.see(4, 7_000_000_000)         # 3.5 s back: a step
    (step,) = clock.steps
    assert (step.frame, step.back_ns) == (4, 3_500_000_000)
    # from frame 4 on, times run on from the latest with the step's own pause
    assert clock.at(4, 7_000_000_000) == 10_500_000_000 + STEP_PAUSE_NS
    assert clock.at(3, 10_450_000_000) == 10_450_000_000
    assert clock.offset_before(clock.at(5, 7_200_000_000)) == 3_500_000_000 + STEP_PAUSE_NS


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("path, frame", [(SILENT, 12), (PLAIN, 10), (FALLBACK, 14)])
def test_tshark_sees_the_clock_go_back_at_the_same_frame(path: Path, frame: int) -> None:
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "frame.time_delta < 0", "-T", "fields",
                          "-e", "frame.number"], capture_output=True, text=True, check=True).stdout
    assert [int(x) for x in out.split()] == [frame]


def test_one_direction_behind_the_other_is_no_step() -> None:
    """A file written as read from two interfaces files one direction's segments behind the
    other's, each direction's times going forward: the file's clock goes back, no clock stepped.
    Less than ``STEP_NS`` back is no step, whichever direction (a step that short is read as
    stamped: confirming it later by a direction seen before would put a pause on a connection
    opened in between, which runs on the new clock); 2 s or more is one at once."""
    clock = CaptureClock()
    for frame, ts in ((1, 10_000_000_000), (2, 11_000_000_000), (3, 10_650_000_000),
                      (4, 10_700_000_000), (5, 11_100_000_000), (6, 9_600_000_000), (7, 9_200_000_000)):
        clock.see(frame, ts)
    assert clock.steps == [] and clock.at(7, 9_200_000_000) == 9_200_000_000
    clock.see(8, 9_000_000_000)             # 2.1 s behind the latest: a step
    assert [(s.frame, s.back_ns) for s in clock.steps] == [(8, 2_100_000_000)]


@pytest.mark.parametrize("side, delay_ns", [("S", 350_000_000), ("S", 1_500_000_000), ("C", 800_000_000)])
def test_a_file_written_as_read_from_two_interfaces_keeps_its_verdicts(side: str, delay_ns: int,
                                                                      tmp_path: Path) -> None:
    """The review's case: hunt-fallback-after-success (a failure, a TLS success, a plaintext
    conversation after it) with one direction filed late. Read as a clock step, the times after
    it moved forward an hour or more, the success's end fell after the plaintext conversation's
    start and the latter read as the failure's retry (tls-fallback, the server's)."""
    import transforms as T
    src = REPO / "captures" / "hunt-fallback-after-success.pcap"
    out = T.transform(src, tmp_path / "late.pcap", T.written_late(side, delay_ns))
    got, want = _convs(out), _convs(src)
    assert [_verdict(c)[:4] for c in got] == [_verdict(c)[:4] for c in want]
    assert not any(f["code"] == "clock-step" for c in got for f in c["findings"])
    # (the output's times are the file's stamps: a conversation starts at its first frame filed)
    assert all(abs(c["started_ns"] - w["started_ns"]) <= delay_ns for c, w in zip(got, want))


def test_a_verdict_given_early_keeps_the_stamped_times(tmp_path: Path) -> None:
    """Live mode gives a TLS conversation's verdict before its close (``early``); across a step
    its ``started_ns`` and ``ended_ns`` are the file's stamps, as offline (they were the
    continuous ones, an hour and a second later)."""
    import cuts
    import transforms as T
    from pcapsmtp.engine.analyzer import AnalysisConfig, Analyzer
    src = REPO / "captures" / "hunt2-auth-login-refused-then-starttls.pcap"
    path = T.transform(src, tmp_path / "step.pcap", T.clock_step(3600 * 10**9, at=4))
    segments = cuts.load(path).segments
    times = {}
    for early in (False, True):
        an = Analyzer(AnalysisConfig(early=early), file=str(path))
        done = [c for seg in segments for c in an.feed(seg)] + an.finish()
        if not early:
            for c in done:
                an.post(c)
        (conv,) = done
        assert conv["reason"] == "tls-established" and "_captured_ns" not in conv
        times[early] = conv["started_ns"], conv["ended_ns"]
    # (stamped an hour back from frame 5 on, the end is before the start; live's end is where it
    # gave the verdict, before the close)
    for started, ended in times.values():
        assert started == segments[0].ts_ns and ended < started - 3590 * 10**9
        assert any(s.ts_ns == ended for s in segments)
