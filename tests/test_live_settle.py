"""Live mode's order of verdicts (docs/live.md, "When a verdict appears"), fed packet by packet
as ``pcapsmtp live`` feeds the analyzer: a plaintext conversation that may be a retry waits for
an earlier conversation between the same hosts, and no longer than that one takes to be judged
or forgotten."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "captures"))

import generate as gen  # noqa: E402
from pcapsmtp.capture.pcapfile import iter_segments  # noqa: E402
from pcapsmtp.engine.analyzer import AnalysisConfig, Analyzer  # noqa: E402


def _fed(path: Path) -> list[tuple[int, dict]]:
    """(the frame whose feed handed the verdict out, the verdict), in the order handed out."""
    an = Analyzer(AnalysisConfig(early=True), file=str(path))
    out: list[tuple[int, dict]] = []
    last = 0
    for seg in iter_segments(str(path)):
        last = seg.frame
        out += [(seg.frame, c) for c in an.feed(seg)]
    out += [(last + 1, c) for c in an.finish()]
    return out


def test_a_held_retry_is_released_when_the_earlier_connection_is_forgotten(tmp_path: Path) -> None:
    """Stream 0: a connection the client resets at once (a probe: an attempt, never judged),
    watched 3 s for the client's later segments; stream 1, 0.5 s later, a plaintext delivery
    between the same hosts, settled while stream 0 is still watched, so held; stream 2, 5 s
    later. Stream 0 is forgotten when stream 2's packets move the clock past its watch: stream 1
    comes out then, before stream 2's verdict, not at the end of the capture."""
    probe = gen.Conv(cport=45270, isn=(0x45270000, 0x95270000), close=("rst", "C"))
    plain = gen.did_not_request_conv(cport=45271, isn=(0x45271000, 0x95271000), start_offset_ms=500)
    later = gen.did_not_request_conv(cport=45272, isn=(0x45272000, 0x95272000), start_offset_ms=5000)
    cap = gen.Capture("held.pcap", "held", [(probe, gen.DID_NOT_REQUEST), (plain, gen.DID_NOT_REQUEST),
                                             (later, gen.DID_NOT_REQUEST)])
    path = tmp_path / "held.pcap"
    path.write_bytes(gen.render(cap)[0])
    fed = _fed(path)
    assert [c["stream"] for _, c in fed] == [1, 2]
    (at1, c1), (at2, _c2) = fed
    assert (c1["outcome"], c1["caused_by"], c1["reason"]) == ("plaintext", "client", "client-did-not-request")
    first_of_2 = min(s.frame for s in iter_segments(str(path)) if 45272 in (s.sport, s.dport))
    assert first_of_2 <= at1 <= at2          # released by stream 2's packets, not by the end
