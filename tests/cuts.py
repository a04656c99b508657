"""Captures cut short, started late or missing one segment, analysed in memory (issue 18).

A capture is decoded once into its TCP segments (``load``); a *cut* is a subset of those
segments fed to a fresh ``Analyzer`` exactly as ``analyze_file`` feeds a file (reference
path, then ``finish`` and the cross-conversation ``post`` in order of first frame). Frame
numbers stay those of the full capture: a capture that starts at frame k reads as one whose
first k-1 records were not TCP, so every frame in a cut's verdict names the same packet as in
the full capture's.

Conversations of a cut are matched to the full capture's by their two endpoints and first
frame (the full conversation on the same address pair that started last at or before the
cut's first frame). A verdict is compared by *who* it blames, as an endpoint: a cut that
starts without the SYN may see the roles the other way round, and blaming "client" then
names the other host.

Tests only: nothing in ``pcapsmtp`` imports this.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcapsmtp.capture.decode import Decoder
from pcapsmtp.capture.pcapfile import iter_records
from pcapsmtp.engine.analyzer import AnalysisConfig, Analyzer
from pcapsmtp.errors import CaptureError
from pcapsmtp.model import TcpSegment
from pcapsmtp.tcp.config import ReassemblyConfig
from pcapsmtp.tcp.events import StreamData, StreamEnd, StreamGap
from pcapsmtp.tcp.reassembler import TcpReassembler

REPO = Path(__file__).resolve().parents[1]
SUFFIXES = (".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz")

BLAMES = ("client", "server", "middlebox")
#: reason -> the role it blames, where that is fixed (for a tls-fallback read alone)
REASON_SIDE = {"client-did-not-request": "client", "client-used-helo": "client",
               "starttls-not-offered": "server", "starttls-misplaced": "server",
               "ehlo-rejected": "server"}


def capture_paths() -> list[Path]:
    """Every capture of ``captures/`` (pairs/ and hostile/ included) and of the corpus."""
    found = [p for root in (REPO / "captures", REPO / "tests" / "corpus")
             for p in root.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES)]
    return sorted(found, key=lambda p: p.relative_to(REPO).as_posix())


@dataclass
class Loaded:
    path: Path
    frames: int                       #: records read (up to damage, if any)
    segments: list[TcpSegment]        #: the TCP segments, in capture order

    @property
    def name(self) -> str:
        return self.path.relative_to(REPO).as_posix()

    def data_frames(self) -> list[int]:
        """Frames whose TCP segment carries payload."""
        return [s.frame for s in self.segments if s.payload]


def load(path: Path) -> Loaded:
    dec = Decoder()
    segs: list[TcpSegment] = []
    number = 0
    try:
        for number, ts_ns, linktype, data, wirelen, _off, _if in iter_records(str(path)):
            seg = dec.decode_raw(linktype, data, wirelen, number, ts_ns)
            if seg is not None:
                segs.append(seg)
    except CaptureError:
        pass  # a damaged file: the records before the damage are the capture
    return Loaded(path, number, segs)


def analyze(segments: Iterable[TcpSegment], file: str = "",
            config: AnalysisConfig | None = None) -> list[dict[str, Any]]:
    """The conversations of these segments, as ``analyze_file`` gives them."""
    an = Analyzer(config, file=file)
    done: list[dict[str, Any]] = []
    for seg in segments:
        r = an.feed(seg)
        if r:
            done.extend(r)
    done.extend(an.finish())
    done.sort(key=lambda c: (c["first_frame"], c["stream"]))
    for conv in done:
        an.post(conv)
    return done


def position_kind(cap: Loaded) -> dict[int, tuple[object, ...]]:
    """frame -> the kind of position its data segment holds in its direction's bytes: the sender,
    whether it starts a line (the sender's previous segment in the capture ended one), what it
    starts with (the first word of the line: a command or a reply code; "cont" inside a line),
    whether it ends a line, and how many lines it ends (0, 1, more); or, for a segment that
    starts a TLS record, the record's content type. A capture past the event bound repeats a
    handful of kinds thousands of times."""
    ended: dict[tuple[str, int], bool] = {}
    kinds: dict[int, tuple[object, ...]] = {}
    for s in cap.segments:
        if not s.payload:
            continue
        who = (s.src, s.sport)
        data = bytes(s.payload)
        if data[:1] in (b"\x14", b"\x15", b"\x16", b"\x17") and data[1:2] == b"\x03":
            kinds[s.frame] = (who, "tls", data[0])       # a TLS record: no lines in it
            ended[who] = True
            continue
        at_start = ended.get(who, True)
        if not at_start:
            head = "cont"
        else:
            head = data.split(b"\n", 1)[0].split(b" ", 1)[0][:12].rstrip(b"\r").upper().decode("latin-1")
            head = head[:3] if head[:3].isdigit() else head
        lines = data.count(b"\n")
        kinds[s.frame] = (who, at_start, head, data.endswith(b"\n"), min(lines, 2))
        ended[who] = data.endswith(b"\n")
    return kinds


def sample_positions(cap: Loaded, frames: Sequence[int], n: int, seed: str) -> list[int]:
    """At least ``n`` of ``frames`` (data frames), the same every run (``seed``), covering every
    kind of position (``position_kind``): the first and the last frame of each kind, then a
    fixed-seed random fill up to ``n``."""
    kinds = position_kind(cap)
    first: dict[tuple[object, ...], int] = {}
    last: dict[tuple[object, ...], int] = {}
    for f in frames:
        first.setdefault(kinds[f], f)
        last[kinds[f]] = f
    chosen = set(first.values()) | set(last.values())
    rest = sorted(set(frames) - chosen)
    chosen.update(random.Random(seed).sample(rest, max(0, min(len(rest), n - len(chosen)))))
    return sorted(chosen)


def start_at(cap: Loaded, k: int) -> list[TcpSegment]:
    return [s for s in cap.segments if s.frame >= k]


def end_at(cap: Loaded, k: int) -> list[TcpSegment]:
    return [s for s in cap.segments if s.frame <= k]


def without(cap: Loaded, *frames: int) -> list[TcpSegment]:
    """The capture without the data segments of ``frames`` and their copies (retransmissions of
    the same bytes: same direction, sequence number and length): the segments are lost, not
    one copy of them."""
    keys = {(s.src, s.sport, s.dst, s.dport, s.seq, len(s.payload))
            for s in cap.segments if s.frame in frames}
    return [s for s in cap.segments
            if (s.src, s.sport, s.dst, s.dport, s.seq, len(s.payload)) not in keys]


def _pair(conv: dict[str, Any]) -> frozenset[tuple[str, int]]:
    return frozenset({(conv["client"]["ip"], conv["client"]["port"]),
                      (conv["server"]["ip"], conv["server"]["port"])})


def stream_of_frames(segments: Iterable[TcpSegment]) -> dict[int, int]:
    """frame -> tcp.stream of the full capture, for every frame the reassembler delivered
    bytes, a hole or an end from."""
    r = TcpReassembler(ReassemblyConfig())
    out: dict[int, int] = {}
    for seg in segments:
        for ev in r.feed(seg):
            if isinstance(ev, (StreamData, StreamGap, StreamEnd)) and ev.frame:
                out.setdefault(ev.frame, ev.stream)
    for ev in r.finish():
        if isinstance(ev, (StreamData, StreamGap, StreamEnd)) and ev.frame:
            out.setdefault(ev.frame, ev.stream)
    return out


def _frames_named(conv: dict[str, Any]) -> set[int]:
    """Every frame a verdict names (evidence, findings, greeting, EHLO reply, STARTTLS, TLS)."""
    frames = {conv.get("evidence_frame"), (conv.get("greeting") or {}).get("frame"),
              conv["starttls"].get("frame"), conv["tls"].get("client_hello_frame"),
              conv["tls"].get("server_hello_frame")}
    frames.update((conv.get("ehlo_reply") or {}).get("frames", ()))
    frames.update(f.get("frame") for f in conv["findings"])
    return {f for f in frames if isinstance(f, int) and f > 0}


def match(full: Sequence[dict[str, Any]], conv: dict[str, Any],
          streams: dict[int, int] | None = None) -> dict[str, Any] | None:
    """The full capture's conversation that ``conv`` (from a cut) is part of: the one whose
    stream carried the frames the cut's verdict names (``streams`` from
    ``stream_of_frames``), else the last one on the same address pair that started at or
    before the cut's first frame."""
    pair = _pair(conv)
    if streams:
        named = {streams[f] for f in _frames_named(conv) if f in streams}
        if len(named) == 1:
            s = named.pop()
            hit = [f for f in full if f["stream"] == s and _pair(f) == pair]
            if hit:
                return hit[0]
    best = None
    for f in full:
        if _pair(f) == pair and f["first_frame"] <= conv["first_frame"] \
                and (best is None or f["first_frame"] >= best["first_frame"]):
            best = f
    return best


def blamed(conv: dict[str, Any]) -> Any:
    """Whom a verdict blames: an endpoint (ip, port), "middlebox", or its caused_by when it
    blames nobody ("none", "unknown")."""
    who = conv["caused_by"]
    if who in ("client", "server"):
        ep = conv[who]
        return (ep["ip"], ep["port"])
    return who


def verdict(conv: dict[str, Any]) -> tuple[str, str, str]:
    return (conv["outcome"], conv["caused_by"], conv["reason"])


def unsure(conv: dict[str, Any]) -> bool:
    return conv["outcome"] == "incomplete" and conv["caused_by"] == "unknown"


def same_verdict(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Same outcome and reason, blaming the same endpoint (or none)."""
    return (a["outcome"], a["reason"], blamed(a)) == (b["outcome"], b["reason"], blamed(b))


def describe(conv: dict[str, Any]) -> str:
    return (f"stream {conv['stream']} first frame {conv['first_frame']}: "
            f"{conv['outcome']}/{conv['caused_by']}/{conv['reason']} ({conv.get('detail', '')})")
