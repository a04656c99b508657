"""A conversation on another port that never carries payload (here one stray ACK) must not
hold back the streamed output for the rest of the file: after 5 minutes of capture time it
no longer counts as a possible SMTP start (pcapsmtp.engine.fileloop.GREETING_WAIT_NS)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.packet import Raw
from scapy.utils import wrpcap

from _emit_probe import EmitProbe
from pcapsmtp.engine.fileloop import GREETING_WAIT_NS
from pcapsmtp.model import TcpSegment
from pcapsmtp.engine.analyzer import analyze_file
from pcapsmtp.tcp.reassembler import TcpReassembler

C, S = "192.0.2.10", "198.51.100.25"


def _smtp(sport: int, t: float) -> list[Any]:
    out: list[Any] = []
    cs, ss = 1000, 5000
    lines = [(S, b"220 mx.example.com ESMTP\r\n"), (C, b"EHLO c.example\r\n"),
             (S, b"250-mx.example.com\r\n250 STARTTLS\r\n"), (C, b"QUIT\r\n"), (S, b"221 bye\r\n")]

    def pkt(src: str, flags: str, data: bytes = b"") -> None:
        nonlocal t, cs, ss
        if src == C:
            p = IP(src=C, dst=S) / TCP(sport=sport, dport=25, flags=flags, seq=cs, ack=ss)
            cs += len(data) + (1 if "S" in flags or "F" in flags else 0)
        else:
            p = IP(src=S, dst=C) / TCP(sport=25, dport=sport, flags=flags, seq=ss, ack=cs)
            ss += len(data) + (1 if "S" in flags or "F" in flags else 0)
        if data:
            p = p / Raw(data)
        p.time = t
        t += 0.01
        out.append(p)

    pkt(C, "S")
    pkt(S, "SA")
    pkt(C, "A")
    for src, data in lines:
        pkt(src, "PA", data)
    pkt(C, "FA")
    pkt(S, "FA")
    pkt(C, "A")
    return out


def test_a_silent_conversation_does_not_hold_back_the_output(tmp_path: Path) -> None:
    stray = IP(src="203.0.113.5", dst=S) / TCP(sport=50000, dport=8080, flags="A", seq=1, ack=1)
    stray.time = 0.0
    pkts = [stray]
    for i in range(150):                        # one conversation every 3 s: 450 s in all
        pkts += _smtp(40000 + i, 1.0 + 3 * i)
    path = tmp_path / "stray.pcap"
    wrpcap(str(path), pkts)

    probe = EmitProbe()
    res = analyze_file(str(path), emit=probe)
    seen = probe.first_frames
    assert res.conversations == [] and len(seen) == 150
    # everything older than 300 s before the last conversations is out before the end
    assert probe.during_read >= 150 - 300 // 3 - 64 and probe.during_read > 0
    assert seen == sorted(seen)
    assert [c["first_frame"] for c in analyze_file(str(path)).conversations] == seen


def test_stale_undecided_entries_are_left_out_on_request() -> None:
    r = TcpReassembler()
    t0 = 10**12
    r.feed(TcpSegment(1, t0, "10.0.0.1", 40000, "10.0.0.2", 8080, 7, 9, 0x10, b""))
    r.feed(TcpSegment(2, t0 + 400 * 10**9, "10.0.0.3", 40001, "10.0.0.2", 8081, 7, 0, 0x02, b""))
    assert r.earliest_pending_frame() == 1
    assert r.clock_ns == t0 + 400 * 10**9
    assert r.earliest_pending_frame(r.clock_ns - GREETING_WAIT_NS) == 2
