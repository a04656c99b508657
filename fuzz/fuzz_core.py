"""atheris fuzz targets for the core: link decoding, TCP reassembly, the SMTP session, and the
whole pipeline behind them.

Invariant: traffic never raises. Whatever the bytes, ``Decoder.decode_raw``,
``TcpReassembler.feed/finish``, ``SmtpSession.receive/receive_gap/receive_eof`` and
``Analyzer.feed/finish`` return data, and every conversation they give renders as JSON, table
and explain text without raw control characters.

``check_one(data)`` runs all four targets on one input (the first byte picks the layout):

- ``decode``: the rest as frames split on ``b"\\xff\\xfe"`` for one ``Decoder`` and a link type;
- ``reassemble``: the rest as 12-byte segment headers + payload for ``TcpReassembler``
  (direction, flags, sequence deltas, lengths all from the fuzz bytes, wrap-around included);
- ``session``: the rest as an interleaving of (side, gap/eof/data, chunk) for ``SmtpSession``,
  starting from a plausible SMTP prefix so that deep states are reachable;
- ``pipeline``: the segments of ``reassemble`` through ``Analyzer`` and the renderers.

Run from the repository root, seeded from the captures (the SMTP payloads of ``captures/`` make
good session seeds; ``--seeds DIR`` writes them)::

    python fuzz/fuzz_core.py --seeds /tmp/core-seeds           # extract seeds from captures/
    python fuzz/fuzz_core.py -atheris_runs=500000 /tmp/core-work /tmp/core-seeds
    python fuzz/fuzz_core.py -max_total_time=3600 -rss_limit_mb=2048 /tmp/core-work
    python fuzz/fuzz_core.py crash-<hash>                      # replay one crashing input

Every crash found becomes a file in ``fuzz/regressions/core/`` (replayed by
``tests/test_fuzz_core.py``).
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if __name__ == "__main__" and "--seeds" not in sys.argv:
    import atheris  # type: ignore[import-untyped]

    with atheris.instrument_imports(include=["pcapsmtp"]):
        from pcapsmtp.capture.decode import Decoder
        from pcapsmtp.model import Side, TcpSegment
        from pcapsmtp.engine.analyzer import AnalysisConfig, Analyzer
        from pcapsmtp.render.explain import render_explain
        from pcapsmtp.render.text import render_csv, render_jsonl, render_table
        from pcapsmtp.smtp.session import SessionConfig, SmtpSession
        from pcapsmtp.tcp.config import ReassemblyConfig
        from pcapsmtp.tcp.reassembler import TcpReassembler
else:
    from pcapsmtp.capture.decode import Decoder
    from pcapsmtp.model import Side, TcpSegment
    from pcapsmtp.engine.analyzer import AnalysisConfig, Analyzer
    from pcapsmtp.render.explain import render_explain
    from pcapsmtp.render.text import render_csv, render_jsonl, render_table
    from pcapsmtp.smtp.session import SessionConfig, SmtpSession
    from pcapsmtp.tcp.config import ReassemblyConfig
    from pcapsmtp.tcp.reassembler import TcpReassembler

LINKTYPES = (1, 0, 101, 108, 113, 228, 229, 276, 12, 14, 147)
PREFIXES = (b"", b"220 mx ESMTP\r\n", b"220 mx\r\n|EHLO c\r\n|250-mx\r\n250 STARTTLS\r\n",
            b"220 mx\r\n|EHLO c\r\n|250-mx\r\n250 STARTTLS\r\n|STARTTLS\r\n|220 go\r\n",
            b"220 mx\r\n|EHLO c\r\n|250 AUTH PLAIN\r\n|AUTH PLAIN\r\n|334 \r\n",
            b"220 mx\r\n|EHLO c\r\n|250 mx\r\n|MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n|250 ok\r\n|"
            b"250 ok\r\n|354 go\r\n")
_SMALL = SessionConfig(max_line_length=64, max_pending_commands=8, max_reply_lines=8,
                       max_held_bytes=256)
_CONTROL = set(range(0x20)) - {0x0A} | {0x7F}


def _segments(body: bytes, *, smtp_port: int = 25) -> list[TcpSegment]:
    """12-byte headers: side|flags, seq delta (i32), ack delta (i16), payload length (u8),
    ts delta (u8), port-reuse bit... then the payload."""
    segs: list[TcpSegment] = []
    seq = {0: 0xFFFFFF00, 1: 0x7FFFFFF0}   # near the wrap on purpose
    pos, n, ts = 0, 1, 1_000_000_000
    while pos + 12 <= len(body) and n < 400:
        side_flags, dseq, dack, length, dts, extra = struct.unpack_from(">BiHBBH", body, pos)
        pos += 12
        payload = body[pos:pos + length]
        pos += len(payload)
        side = side_flags & 1
        flags = (side_flags >> 1) & 0x3F | (0x10 if side_flags & 0x80 else 0)
        seq[side] = (seq[side] + dseq) % (1 << 32)
        ts += dts * 1_000_000 * (1000 if extra & 1 else 1)
        cport = 40000 + (extra >> 14)
        src, sport, dst, dport = ("192.0.2.10", cport, "198.51.100.25", smtp_port)
        if side:
            src, sport, dst, dport = dst, dport, src, sport
        missing = (extra >> 1) & 0x7 if extra & 0x10 else 0
        segs.append(TcpSegment(n, ts, src, sport, dst, dport, seq[side],
                               (seq[1 - side] + dack) % (1 << 32), flags, payload, missing))
        if not dseq:
            seq[side] = (seq[side] + len(payload) + (1 if flags & 0x03 else 0)) % (1 << 32)
        n += 1
    return segs


def check_decode(body: bytes, linktype_byte: int) -> None:
    dec = Decoder()
    linktype = LINKTYPES[linktype_byte % len(LINKTYPES)]
    for number, frame in enumerate(body.split(b"\xff\xfe"), 1):
        seg = dec.decode_raw(linktype, frame, len(frame) + (linktype_byte >> 4) * 64, number,
                             number * 1_000_000_000)
        if seg is not None:
            assert seg.frame == number and seg.missing >= 0
            assert 0 <= seg.sport < 65536 and 0 <= seg.dport < 65536


def check_reassemble(body: bytes) -> None:
    ra = TcpReassembler(ReassemblyConfig(max_flows=4, max_tracked=16, max_ooo_bytes=512,
                                         retain_bytes=128, idle_timeout_ns=5 * 10**9))
    for seg in _segments(body):
        for ev in ra.feed(seg):
            _check_flow_event(ev)
    for ev in ra.finish():
        _check_flow_event(ev)


def _check_flow_event(ev: Any) -> None:
    for attr in ("offset", "length"):
        v = getattr(ev, attr, 0)
        assert isinstance(v, int) and v >= 0, (type(ev).__name__, attr, v)


def check_session(body: bytes, prefix_byte: int) -> None:
    """Feed a plausible prefix, then (side, op, length) triples with chunks from ``body``."""
    s = SmtpSession(_SMALL if prefix_byte & 0x80 else None)
    for k, chunk in enumerate(PREFIXES[prefix_byte % len(PREFIXES)].split(b"|")):
        if chunk:
            s.receive(Side.SERVER if k % 2 == 0 else Side.CLIENT, chunk, k)
    pos, ts = 0, 100
    while pos + 2 <= len(body):
        ctl, length = body[pos], body[pos + 1]
        pos += 2
        side = Side.CLIENT if ctl & 1 else Side.SERVER
        op = (ctl >> 1) & 0x0F
        ts += 1
        if op == 0:
            evs = s.receive_gap(side, length + 1, ts)
        elif op == 1:
            evs = s.receive_eof(side, reset=bool(ctl & 0x40), truncated=bool(ctl & 0x20), ts_ns=ts)
        else:
            chunk = body[pos:pos + length]
            pos += len(chunk)
            evs = s.receive(side, chunk, ts)
        for ev in evs:
            assert ev.span.start <= ev.span.end, ev
        s.low_water(Side.CLIENT)
        s.low_water(Side.SERVER)
    s.receive_eof(Side.CLIENT)
    s.receive_eof(Side.SERVER)


def check_pipeline(body: bytes) -> None:
    an = Analyzer(AnalysisConfig(keep_exchange=True, max_events=64,
                                 session=_SMALL), file="fuzz")
    convs = []
    for seg in _segments(body, smtp_port=25):
        convs += an.feed(seg)
    convs += an.finish()
    for conv in convs:
        an.post(conv)
        for text in (render_jsonl(conv), render_table([conv]), render_csv([conv]),
                     render_explain(conv, path="fuzz")):
            bad = {ord(c) for c in text if ord(c) in _CONTROL or 0x80 <= ord(c) <= 0x9F}
            assert not bad, f"raw control characters {sorted(bad)} in output"
    an.summary()


def check_one(data: bytes) -> None:
    """All core targets on one input; raises only on a real bug."""
    if not data:
        return
    head, body = data[0], data[1:]
    check_decode(body, head)
    check_reassemble(body)
    check_session(body, head)
    check_pipeline(body)


def write_seeds(out: Path) -> int:
    """Seed inputs from the SMTP payloads of the captures in ``captures/`` (session layout)."""
    from pcapsmtp.capture.pcapfile import iter_records
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    root = Path(__file__).resolve().parents[1] / "captures"
    for path in sorted(root.rglob("*.pcap*")):
        if path.stat().st_size > 200_000:
            continue
        dec = Decoder()
        seed = bytearray([n & 0x7F])
        for number, ts, lt, data, wl, _o, _i in iter_records(str(path)):
            seg = dec.decode_raw(lt, data, wl, number, ts)
            if seg is None or not seg.payload:
                continue
            side = 1 if seg.dport in (25, 465, 587, 2525) else 0
            for i in range(0, len(seg.payload), 255):
                chunk = seg.payload[i:i + 255]
                seed += bytes([(side | 0x10), len(chunk)]) + chunk
        (out / f"{path.name}.seed").write_bytes(bytes(seed[:65536]))
        n += 1
    return n


def main(argv: list[str]) -> None:
    if "--seeds" in argv:
        print(write_seeds(Path(argv[argv.index("--seeds") + 1])), "seeds written")
        return
    import atheris

    atheris.Setup(argv, check_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
