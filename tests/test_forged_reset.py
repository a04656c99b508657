"""Resets forged by a box on the path: the IPv4 TTL / IPv6 hop limit of a reset against the other
segments of its side (docs/output.md, "Forged resets").

First the carriage: every adapter hands the reassembler the TTL (or hop limit) of the innermost IP
header that carried the segment, as tshark shows it (``ip.ttl``, ``ipv6.hlim``): the general decoder,
both file loops (pure Python and compiled) and the tshark engine. Then the verdict on the generated
captures (captures/scenarios_forged.py: exact outcome, caused_by, reason, case and frames, the reset
frames and TTLs cross-checked with tshark), and the rule over any TTLs (hypothesis) through the
reassembler and the analysis. tests/test_forged_reset_real.py puts a real injector between real
Linux TCP stacks.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from pcapsmtp.analysis.reasons import REASON_CASES
from pcapsmtp.analysis.verdict import RESET_TTL_SEGMENTS, RESET_TTL_SLACK
from pcapsmtp.capture.decode import Decoder
from pcapsmtp.capture.pcapfile import iter_segments
from pcapsmtp.engine import accel
from pcapsmtp.engine.analyzer import AnalysisConfig, Analyzer, analyze_file
from pcapsmtp.engine.fileloop import FusedLoop
from pcapsmtp.model import TcpSegment
from pcapsmtp.tcp.events import StreamData, StreamEnd, StreamGap
from pcapsmtp.tcp.reassembler import TcpReassembler
from tsharkfilter import tshark_fields

ROOT = Path(__file__).resolve().parents[1]

try:
    from pcapsmtp.engine import hotloop_c  # type: ignore[attr-defined]  # noqa: F401
    COMPILED = True
except ImportError:
    COMPILED = False

_C4, _S4 = "192.0.2.10", "198.51.100.25"
_C6, _S6 = "2001:db8:0:1::10", "2001:db8:0:2::25"
_ETH = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:19")


def _tcp(seq: int, payload: bytes = b"", flags: str = "PA", sport: int = 25, dport: int = 40312) -> Any:
    return TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=1000) / Raw(payload)


def _ttl_capture(path: Path) -> dict[int, int]:
    """A capture whose TCP segments reach the reassembler by every way an adapter has (the file
    loops' fixed offsets, IPv4 and IPv6; the general decoder for a VLAN tag, IP options, a GRE
    tunnel, IP fragments), each with its own TTL. Returns frame -> the TTL written."""
    pkts: list[Any] = []
    want: dict[int, int] = {}

    def add(pkt: Any, ttl: int | None) -> None:
        pkts.append(pkt)
        if ttl is not None:
            want[len(pkts)] = ttl

    add(_ETH / IP(src=_S4, dst=_C4, ttl=52) / _tcp(100, b"220 mx ESMTP\r\n"), 52)
    add(_ETH / IP(src=_C4, dst=_S4, ttl=64) / _tcp(1000, b"EHLO c\r\n", sport=40312, dport=25), 64)
    add(_ETH / IP(src=_S4, dst=_C4, ttl=250) / _tcp(114, flags="RA"), 250)
    add(_ETH / IPv6(src=_S6, dst=_C6, hlim=61) / _tcp(100, b"220 mx6 ESMTP\r\n"), 61)
    add(_ETH / IPv6(src=_S6, dst=_C6, hlim=255) / _tcp(115, flags="RA"), 255)
    add(_ETH / Dot1Q(vlan=7) / IP(src=_S4, dst=_C4, ttl=119) / _tcp(200, b"220 v ESMTP\r\n",
                                                                     dport=40313), 119)
    add(_ETH / IP(src=_S4, dst=_C4, ttl=99, options=b"\x01\x01\x01\x00") / _tcp(300, b"220 o\r\n",
                                                                                 dport=40314), 99)
    # a GRE tunnel between two routers: the tunnelled packet's TTL, not the outer one's
    add(_ETH / IP(src="172.16.0.1", dst="172.16.0.2", ttl=63) / GRE()
        / IP(src=_S4, dst=_C4, ttl=128) / _tcp(400, b"220 g ESMTP\r\n", dport=40315), 128)
    # a segment in IPv4 fragments: the frame that completes it carries the segment
    frags = fragment(IP(src=_S4, dst=_C4, ttl=77, id=4242) / _tcp(500, b"220 " + b"f" * 60 + b"\r\n",
                                                                   dport=40316), fragsize=24)
    assert len(frags) > 2
    for k, fr in enumerate(frags):
        add(_ETH / fr, 77 if k == len(frags) - 1 else None)
    # a TTL of 0 is carried as 0: "not known"
    add(_ETH / IP(src=_S4, dst=_C4, ttl=0) / _tcp(600, b"220 z\r\n", dport=40317), 0)
    for k, p in enumerate(pkts):
        p.time = 1767261600 + k / 100
    wrpcap(str(path), pkts)
    return want


class _Recording(Analyzer):
    """A real analyzer that also notes the TTL of every segment a file loop feeds it."""

    def __init__(self) -> None:
        super().__init__()
        self.ttls: dict[int, int] = {}

    def feed(self, seg: TcpSegment) -> list[dict[str, Any]]:
        self.ttls[seg.frame] = seg.ttl
        return super().feed(seg)


def _loop_ttls(path: Path, compiled: bool) -> dict[int, int]:
    accel.select(compiled)
    try:
        an = _Recording()
        FusedLoop(an, Decoder(), []).run(str(path))
        return an.ttls
    finally:
        accel.select(None)


def test_the_decoder_carries_the_innermost_ttl(tmp_path: Path) -> None:
    path = tmp_path / "ttl.pcap"
    want = _ttl_capture(path)
    got = {seg.frame: seg.ttl for seg in iter_segments(str(path))}
    assert got == want


@pytest.mark.parametrize("compiled", [False, True], ids=["pure", "compiled"])
def test_both_file_loops_carry_it(tmp_path: Path, compiled: bool) -> None:
    if compiled and not COMPILED:
        pytest.skip("compiled file loop not built")
    path = tmp_path / "ttl.pcap"
    want = _ttl_capture(path)
    assert _loop_ttls(path, compiled) == want


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_shows_the_same_and_its_engine_carries_it(tmp_path: Path) -> None:
    from pcapsmtp.capture.tshark import TsharkSource
    path = tmp_path / "ttl.pcap"
    want = _ttl_capture(path)
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "tcp", "-T", "fields", "-e", "frame.number",
                          "-e", "ip.ttl", "-e", "ipv6.hlim"], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    shown = {}
    for line in out.splitlines():
        number, ttl4, hlim = (line.split("\t") + ["", ""])[:3]
        shown[int(number)] = int((hlim or ttl4).split(",")[-1])      # the innermost header's
    assert shown == want
    assert {seg.frame: seg.ttl for seg in TsharkSource(str(path)).segments()} == want


def test_a_segment_built_without_it_has_none() -> None:
    seg = TcpSegment(1, 0, _C4, 40312, _S4, 25, 1, 0, 0x02, b"")
    assert seg.ttl == 0
    assert seg != TcpSegment(1, 0, _C4, 40312, _S4, 25, 1, 0, 0x02, b"", 0, 64)


# ------------------------------------------------------------------------------------------------
# The verdict: a reset whose TTL lies outside its side's is the box's doing
# ------------------------------------------------------------------------------------------------

CAPTURES = ROOT / "captures"

#: (capture, stream) -> outcome, caused_by, reason, case, the reset's frame, its TTL, the TTLs of
#: the side whose address it carries (its segments after the handshake, lowest and highest)
VERDICTS: dict[tuple[str, int], tuple[str, str, str, str | None, int, int, tuple[int, int] | None]] = {
    ("tcp-reset-forged-starttls.pcap", 0):
        ("aborted", "middlebox", "starttls-refused", "reset-forged", 11, 250, (52, 52)),
    ("tcp-reset-forged-starttls-ipv6.pcap", 0):
        ("aborted", "middlebox", "starttls-refused", "reset-forged", 11, 62, (52, 52)),
    ("tcp-reset-forged-hello.pcap", 0):
        ("aborted", "middlebox", "tls-handshake-failed", "reset-forged", 15, 61, (52, 52)),
    ("tcp-reset-forged-hello-ipv6.pcap", 0):
        ("aborted", "middlebox", "tls-handshake-failed", "reset-forged", 15, 250, (52, 52)),
    ("tcp-reset-forged-hello-server-side.pcap", 0):
        ("aborted", "middlebox", "tls-not-started", "reset-forged", 14, 250, (49, 49)),
    ("tcp-reset-forged-hello-server-side-ipv6.pcap", 0):
        ("aborted", "middlebox", "tls-not-started", "reset-forged", 14, 58, (49, 49)),
    ("tcp-reset-forged-starttls-server-side.pcap", 0):
        ("aborted", "middlebox", "no-mail-transaction", "reset-forged", 10, 250, (49, 49)),
    ("tcp-reset-forged-ehlo.pcap", 0):
        ("aborted", "middlebox", "no-mail-transaction", "reset-forged", 8, 255, (52, 52)),
    ("tcp-reset-ttl-bounds.pcap", 0):
        ("aborted", "middlebox", "tls-handshake-failed", "reset-forged", 15, 54, (52, 52)),
    ("tcp-reset-ttl-bounds.pcap", 1):
        ("aborted", "middlebox", "tls-handshake-failed", "reset-forged", 30, 50, (52, 52)),
    ("tcp-reset-ttl-bounds.pcap", 2):
        ("aborted", "middlebox", "tls-handshake-failed", "reset-forged", 45, 55, (52, 53)),
    # controls: the side's own
    ("tcp-reset-own.pcap", 0): ("aborted", "server", "tls-handshake-failed", None, 15, 52, (52, 52)),
    ("tcp-reset-own.pcap", 1): ("aborted", "server", "tls-handshake-failed", None, 30, 53, (52, 53)),
    ("tcp-reset-own.pcap", 2): ("aborted", "server", "tls-handshake-failed", None, 45, 53, (52, 52)),
    ("tcp-reset-own.pcap", 3): ("aborted", "server", "tls-handshake-failed", None, 60, 51, (52, 52)),
    ("tcp-reset-ttl-unknown.pcap", 0): ("aborted", "server", "tls-handshake-failed", None, 15, 0, (52, 52)),
    ("tcp-reset-ttl-unknown.pcap", 1): ("aborted", "server", "tls-handshake-failed", None, 20, 250, None),
}


def _conv(name: str, stream: int) -> dict[str, Any]:
    res = analyze_file(str(CAPTURES / name), AnalysisConfig())
    assert res.error is None, res.error
    return next(c for c in res.conversations if c["stream"] == stream)


@pytest.mark.parametrize("name,stream", sorted(VERDICTS))
def test_the_verdict(name: str, stream: int) -> None:
    outcome, caused_by, reason, case, rst, ttl, side = VERDICTS[(name, stream)]
    conv = _conv(name, stream)
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case")) == (
        outcome, caused_by, reason, case)
    forged = [f for f in conv["findings"] if f["code"] == "reset-forged"]
    if case is None:
        assert forged == []
        return
    assert conv["evidence_frame"] == rst and side is not None
    lo, hi = side
    assert [(f["side"], f["frame"]) for f in forged] == [("middlebox", rst)]
    word = "hop limit" if ":" in conv["client"]["ip"] else "TTL"
    own = f"{word} {lo}" if lo == hi else f"{word}s {lo} to {hi}"
    assert f"came with {word} {ttl}, " in forged[0]["message"]
    assert f"came with {own} (" in forged[0]["message"]
    info = REASON_CASES[(reason, case)]
    assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}
    assert f"frame {rst}" in conv["detail"] and f"{word} {ttl}" in conv["detail"]


#: a forged reset right after a refusal of STARTTLS: the verdict is the refusal's (the server's own
#: 421, or a masked command's 502, the box's), the reset a finding -> outcome, caused_by, reason,
#: evidence frame, the refusal's frame and code, the reset's frame, its TTL, the server's TTL
AFTER_REFUSAL: dict[str, tuple[str, str, str, int, int, int, int, int, int]] = {
    "starttls-421-forged-reset.pcap": ("aborted", "server", "starttls-refused", 12, 12, 421, 14, 250, 52),
    "firewall-command-masked-reset-forged.pcap": ("aborted", "middlebox", "starttls-masked", 10, 12, 502, 14,
                                                  250, 52),
}


@pytest.mark.parametrize("name", sorted(AFTER_REFUSAL))
def test_a_forged_reset_after_a_refusal_is_a_finding(name: str) -> None:
    """The refusal ruled TLS out before the reset came: the verdict does not rest on the reset (no case,
    the evidence stays), the ``reset-forged`` finding names it, and the detail does not say the server reset
    the connection. Cross-checked with tshark: the reply's code at its frame, the reset's TTL against the
    server's other segments."""
    outcome, by, reason, evidence, reply, code, rst, ttl, own = AFTER_REFUSAL[name]
    conv = _conv(name, 0)
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case"), conv["evidence_frame"]) == (
        outcome, by, reason, None, evidence)
    forged = [f for f in conv["findings"] if f["code"] == "reset-forged"]
    assert [(f["side"], f["frame"]) for f in forged] == [("middlebox", rst)]
    assert f"came with TTL {ttl}, while the server's 5 segments after the handshake came with TTL {own}" \
        in forged[0]["message"]
    assert forged[0]["message"].endswith(
        f"it came after the {code} the client read as the answer to STARTTLS (frame {reply}), which had already "
        "ruled TLS out on this connection: the verdict rests on that answer, not on the reset")
    assert "then it reset the connection" not in conv["detail"]
    assert conv["detail"].endswith(
        f"; then a reset with the server's address that the server's stack did not send ended the connection "
        f"(frame {rst}: its TTL {ttl} is not the TTL {own} of the server's own segments)")
    assert not any(f["code"] == "server-closed" for f in conv["findings"])
    path = CAPTURES / name
    ((payload,),) = tshark_fields(path, f"frame.number == {reply}", "tcp.payload")
    assert bytes.fromhex(payload.replace(":", "")).startswith(f"{code} ".encode())
    rows = tshark_fields(path, "tcp.srcport == 25 && tcp.flags.syn == 0", "frame.number", "tcp.flags.reset",
                         "ip.ttl")
    assert [(int(n), int(t)) for n, r, t in rows if r in ("1", "True")] == [(rst, ttl)]
    assert {int(t) for n, r, t in rows if r not in ("1", "True")} == {own}


def _tshark_fields(path: Path) -> list[tuple[str, ...]]:
    return tshark_fields(path, "tcp", "frame.number", "tcp.stream", "tcp.srcport", "tcp.flags.syn",
                         "tcp.flags.reset", "ip.ttl", "ipv6.hlim")


@pytest.mark.parametrize("name", sorted({n for n, _ in VERDICTS}))
def test_tshark_shows_the_resets_and_the_ttls(name: str) -> None:
    """The reset frames and TTLs, and the TTLs of the segments of the side whose address each
    reset carries (not its SYN), are those tshark shows."""
    rows = _tshark_fields(CAPTURES / name)
    for (n, stream), (_o, _c, _r, _case, rst, ttl, side) in VERDICTS.items():
        if n != name:
            continue
        mine = [r for r in rows if int(r[1]) == stream]
        resets = [r for r in mine if r[4] in ("1", "True")]
        assert [int(r[0]) for r in resets] == [rst]
        value = lambda r: int(r[6] or r[5])  # noqa: E731
        assert value(resets[0]) == ttl
        port = resets[0][2]
        own = [value(r) for r in mine if r[2] == port and r[3] not in ("1", "True")
               and r[4] not in ("1", "True")]
        assert ((min(own), max(own)) if own else None) == side


def test_the_json_names_the_case_and_the_evidence() -> None:
    proc = subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", "--format", "json",
                           str(CAPTURES / "tcp-reset-forged-starttls.pcap")], capture_output=True, text=True,
                          timeout=120)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["stream"], r["caused_by"], r["reason"], r.get("case"), r["evidence_frame"]) for r in rows] == [
        (0, "middlebox", "starttls-refused", "reset-forged", 11), (1, "middlebox", "tls-fallback", None, 21)]
    assert rows[1]["fallback_of"]["stream"] == 0
    assert proc.returncode == 1


def test_explain_shows_the_evidence() -> None:
    out = subprocess.run([sys.executable, "-m", "pcapsmtp", "explain", str(CAPTURES / "tcp-reset-forged-hello.pcap")],
                         capture_output=True, text=True, timeout=120).stdout
    rst_line = next(line for line in out.splitlines() if "[RST]" in line)
    assert rst_line.split()[0] == "15" and "reset-forged:" in rst_line
    assert "came with TTL 61" in rst_line and "came with TTL 52 (frames 4 to 12)" in rst_line
    assert "Verdict: aborted, caused by the middlebox (tls-handshake-failed)" in out


# ---- the rule over any TTLs, through the reassembler and the analysis (no capture file)

_CIP, _SIP = "192.0.2.10", "198.51.100.25"


def _segments(server_ttls: list[int], rst_ttl: int, synack_ttl: int, ready: str = "") -> list[TcpSegment]:
    """Captured at the client: handshake (the SYN-ACK at ``synack_ttl``), then the server's
    banner, EHLO reply and the ACK of STARTTLS one after the other at ``server_ttls`` (the
    banner and the EHLO reply first; more server segments are ACKs of STARTTLS), and the server's
    reset at ``rst_ttl`` instead of the answer to STARTTLS. With ``ready``, the server answered
    STARTTLS (``220 go``, at ``server_ttls[0]``) before the reset, whose sequence number lies past
    that answer: ``"lost"``, the capture does not hold the answer; ``"late"``, it holds it right
    after the reset (reordered on the way to the capture)."""
    cisn, sisn = 1000, 5000
    segs: list[TcpSegment] = []
    ts = 1_767_261_600 * 10**9

    def seg(client: bool, seq: int, ack: int, flags: int, data: bytes = b"", ttl: int = 64) -> None:
        nonlocal ts
        src, sp, dst, dp = (_CIP, 40000, _SIP, 25) if client else (_SIP, 25, _CIP, 40000)
        segs.append(TcpSegment(len(segs) + 1, ts, src, sp, dst, dp, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                               flags, data, 0, ttl))
        ts += 1_000_000

    banner, ehlo = b"220 mx ESMTP\r\n", b"EHLO c\r\n"
    reply, starttls = b"250-mx\r\n250 STARTTLS\r\n", b"STARTTLS\r\n"
    seg(True, cisn, 0, 0x02)
    seg(False, sisn, cisn + 1, 0x12, ttl=synack_ttl)
    seg(True, cisn + 1, sisn + 1, 0x10)
    c, s = cisn + 1, sisn + 1
    seg(False, s, c, 0x18, banner, server_ttls[0])
    s += len(banner)
    seg(True, c, s, 0x18, ehlo)
    c += len(ehlo)
    seg(False, s, c, 0x18, reply, server_ttls[1])
    s += len(reply)
    seg(True, c, s, 0x18, starttls)
    c += len(starttls)
    for ttl in server_ttls[2:]:
        seg(False, s, c, 0x10, ttl=ttl)
    if not ready:
        seg(False, s, c, 0x14, ttl=rst_ttl)
        return segs
    seg(False, s + len(_READY), c, 0x14, ttl=rst_ttl)
    if ready == "late":
        seg(False, s, c, 0x18, _READY, server_ttls[0])
    return segs


_READY = b"220 go\r\n"


_TTL = st.integers(min_value=1, max_value=255)


@settings(max_examples=150, deadline=None)
@given(st.lists(_TTL, min_size=2, max_size=6), st.integers(min_value=0, max_value=255), _TTL)
def test_the_rule_over_any_ttls(server_ttls: list[int], rst_ttl: int, synack_ttl: int) -> None:
    segs = _segments(server_ttls, rst_ttl, synack_ttl)
    # the TCP layer: the reset's TTL and the range of the server's segments (not its SYN-ACK)
    reasm = TcpReassembler()
    ends = [ev for s in segs for ev in reasm.feed(s) if isinstance(ev, StreamEnd) and ev.reset]
    own = [s.frame for s in segs if s.src == _SIP and not s.flags & 0x06]
    assert [(e.frame, e.ttl, e.side_ttl, e.side_ttl_segments, e.side_ttl_frames) for e in ends] == [
        (len(segs), rst_ttl, (min(server_ttls), max(server_ttls)), len(server_ttls), (own[0], own[-1]))]
    # the analysis: the box is blamed exactly when the reset lies outside, by more than the slack
    an = Analyzer()
    done = [conv for s in segs for conv in an.feed(s)] + an.finish()
    (conv,) = done
    assert conv["reason"] == "starttls-refused"
    lo, hi = min(server_ttls), max(server_ttls)
    forged = rst_ttl != 0 and not lo - RESET_TTL_SLACK <= rst_ttl <= hi + RESET_TTL_SLACK
    assert len(server_ttls) >= RESET_TTL_SEGMENTS
    assert (conv["caused_by"], conv.get("case")) == (("middlebox", "reset-forged") if forged else ("server", None))



# ---- the TCP layer reads a reset by the same rule: one it takes for the side's own proves the bytes
# before its sequence number sent (a gap where the capture lost them, a wait where they come late);
# one the verdict takes for a box's proves nothing (HalfStream.reset_past, reset_ttl_foreign)

def _judged(segs: list[TcpSegment]) -> tuple[list[Any], dict[str, Any]]:
    reasm = TcpReassembler()
    events = [ev for s in segs for ev in reasm.feed(s)] + reasm.finish()
    an = Analyzer()
    (conv,) = [conv for s in segs for conv in an.feed(s)] + an.finish()
    return events, conv


#: (the reset's TTL, the answer to STARTTLS lost or late) -> outcome, caused_by, reason, case,
#: evidence frame, findings (code, frame); the server's segments come with TTL 52 (frames 4, 6, 8),
#: the reset is frame 9, the late answer frame 10
ONE_HOP: dict[tuple[int, str], tuple[str, str, str, str | None, int, list[tuple[str, int]]]] = {
    # within a hop: the server's own reset; the answer before it was lost (a gap at the reset)...
    (53, "lost"): ("incomplete", "unknown", "incomplete", None, 7, [("tcp-gap", 9)]),
    (51, "lost"): ("incomplete", "unknown", "incomplete", None, 7, [("tcp-gap", 9)]),
    # ... or is read before the reset, which then ends the TLS handshake
    (53, "late"): ("aborted", "server", "tls-handshake-failed", None, 9, []),
    (51, "late"): ("aborted", "server", "tls-handshake-failed", None, 9, []),
    # two hops out: a box's reset, instead of the answer (which comes after the close)
    (54, "lost"): ("aborted", "middlebox", "starttls-refused", "reset-forged", 9, [("reset-forged", 9)]),
    (50, "late"): ("aborted", "middlebox", "starttls-refused", "reset-forged", 9, [("reset-forged", 9)]),
}


@pytest.mark.parametrize("rst_ttl,ready", sorted(ONE_HOP))
def test_a_reset_within_the_slack_is_the_sides_own_for_the_tcp_layer_too(rst_ttl: int, ready: str) -> None:
    segs = _segments([52, 52, 52], rst_ttl, 60, ready)
    assert [s.frame for s in segs if s.flags & 0x04] == [9]
    events, conv = _judged(segs)
    outcome, caused_by, reason, case, evidence, findings = ONE_HOP[(rst_ttl, ready)]
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case"), conv["evidence_frame"]) == (
        outcome, caused_by, reason, case, evidence)
    assert [(f["code"], f["frame"]) for f in conv["findings"]] == findings
    gaps = [(ev.side, ev.length, ev.frame) for ev in events if isinstance(ev, StreamGap)]
    own = case is None
    assert gaps == ([("server", len(_READY), 9)] if own and ready == "lost" else [])
    read = [ev.frame for ev in events if isinstance(ev, StreamData) and ev.data == _READY]
    assert read == ([10] if own and ready == "late" else [])


#: the reset's TTL: any, or a few hops from the lowest or the highest of its side's
_RST_TTL = st.one_of(st.tuples(st.just("any"), st.integers(min_value=0, max_value=255)),
                     st.tuples(st.sampled_from(["lo", "hi"]), st.integers(min_value=-3, max_value=3)))


@settings(max_examples=150, deadline=None)
@given(st.lists(_TTL, min_size=2, max_size=6), _RST_TTL, st.sampled_from(["lost", "late"]))
def test_the_tcp_layer_and_the_verdict_agree_over_any_ttls(server_ttls: list[int], rst: tuple[str, int],
                                                          ready: str) -> None:
    """The reset the verdict blames on a box is the one the TCP layer reads no bytes in, and the
    other way round."""
    how, v = rst
    rst_ttl = v if how == "any" else min(255, max(1, (min if how == "lo" else max)(server_ttls) + v))
    segs = _segments(server_ttls, rst_ttl, 60, ready)
    events, conv = _judged(segs)
    lo, hi = min(server_ttls), max(server_ttls)
    forged = rst_ttl != 0 and not lo - RESET_TTL_SLACK <= rst_ttl <= hi + RESET_TTL_SLACK
    assert (conv.get("case") == "reset-forged") is forged
    proved = [ev for ev in events if isinstance(ev, StreamGap)] if ready == "lost" else [
        ev for ev in events if isinstance(ev, StreamData) and ev.data == _READY]
    assert len(proved) == (0 if forged else 1)
