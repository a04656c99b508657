"""Test helpers: a tiny SMTP ``Dialogue`` builder and a minimal TLS record builder.

``Dialogue`` lists what each side sent, flight by flight (one flight = one ``receive()`` call),
runs an ``SmtpSession`` over it, and builds the ``Transcript`` that ``judge()`` reads, inventing
one frame per operation, so that the SMTP core and the verdict rules can be tested without any
capture::

    d = Dialogue()
    d.s("220 mx ESMTP")              # str: CRLF added; bytes: sent as given
    d.c("EHLO me")
    d.s("250-mx", "250 STARTTLS")    # one flight, two lines
    d.c("MAIL FROM:<a@b>")
    d.eof(C)
    events = d.events()              # or d.events(chunk=1), d.events(chunk=[3, 1, 7])
    conv = judge(d.transcript())

Frames: operation ``i`` (0-based: flight, gap or eof, in the order added) is frame
``first_frame + i`` with timestamp ``BASE_TS + i * STEP_NS``. As the pipeline does, each side
keeps an offset -> frame index; a reply's ``line_frames`` map each line's start offset to the
frame that carried its first byte, a gap's item gets the frame of the gap operation, and a
StreamEnded gets the frame of the eof operation (the FIN/RST packet).

Import from a test file with ``sys.path`` holding ``tests/`` (see the test modules).
"""
from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pcapsmtp.analysis.frames import FrameIndex, make_item
from pcapsmtp.analysis.verdict import Transcript
from pcapsmtp.model import Endpoint, Side
from pcapsmtp.smtp.events import Event, Reply
from pcapsmtp.smtp.session import SessionConfig, SmtpSession
from pcapsmtp.smtp.tls import TlsEvent

__all__ = ["C", "S", "Dialogue", "Op", "split", "normalise", "rec", "hs", "vec", "ext",
           "client_hello", "server_hello", "alert", "ccs", "app_data", "tls12_handshake",
           "BASE_TS", "STEP_NS"]

C, S = Side.CLIENT, Side.SERVER
BASE_TS = 1_700_000_000 * 10**9
STEP_NS = 1_000_000


@dataclass(frozen=True, slots=True)
class Op:
    kind: str            #: "data", "gap" or "eof"
    side: Side
    data: bytes = b""
    length: int = 0
    reset: bool = False
    truncated: bool = False


def _flight(parts: Sequence[str | bytes]) -> bytes:
    out = bytearray()
    for p in parts:
        out += p if isinstance(p, (bytes, bytearray)) else p.encode("utf-8") + b"\r\n"
    return bytes(out)


def split(data: bytes, chunk: int | Sequence[int] | None) -> list[bytes]:
    """Cut ``data`` into pieces: one piece (None), pieces of ``chunk`` bytes (int), or of the
    sizes in ``chunk`` used cyclically (sizes < 1 count as 1)."""
    if chunk is None or not data:
        return [data] if data else []
    sizes = [chunk] if isinstance(chunk, int) else list(chunk) or [len(data)]
    out: list[bytes] = []
    pos = 0
    i = 0
    while pos < len(data):
        n = max(1, sizes[i % len(sizes)])
        out.append(data[pos:pos + n])
        pos += n
        i += 1
    return out


class Dialogue:
    """What each side sent, in capture order. See the module docstring."""

    def __init__(self, config: SessionConfig | None = None, *, late_start: bool = False) -> None:
        """``late_start``: the capture joins the conversation late (no SYN): the session is
        told so, and the transcript says ``midstream``."""
        self.ops: list[Op] = []
        self.config = config
        self.late_start = late_start
        self.session: SmtpSession | None = None

    # ------------------------------------------------------------------ building

    def c(self, *parts: str | bytes) -> Dialogue:
        """One client flight."""
        self.ops.append(Op("data", C, _flight(parts)))
        return self

    def s(self, *parts: str | bytes) -> Dialogue:
        """One server flight."""
        self.ops.append(Op("data", S, _flight(parts)))
        return self

    def send(self, side: Side, *parts: str | bytes) -> Dialogue:
        self.ops.append(Op("data", side, _flight(parts)))
        return self

    def gap(self, side: Side, length: int) -> Dialogue:
        """``length`` bytes of ``side`` were lost here."""
        self.ops.append(Op("gap", side, length=length))
        return self

    def eof(self, side: Side, *, reset: bool = False, truncated: bool = False) -> Dialogue:
        self.ops.append(Op("eof", side, reset=reset, truncated=truncated))
        return self

    def close(self, first: Side = C) -> Dialogue:
        """Both sides close with FIN, ``first`` first."""
        return self.eof(first).eof(first.other)

    @property
    def last_frame(self) -> int:
        """The frame of the last operation added so far (with ``first_frame`` 1)."""
        return len(self.ops)

    # ------------------------------------------------------------------ running

    def run(self, chunk: int | Sequence[int] | None = None
            ) -> list[tuple[int, list[Event | TlsEvent]]]:
        """Run a fresh session; per operation, the events it returned."""
        sess = SmtpSession(self.config, late_start=self.late_start)
        self.session = sess
        out: list[tuple[int, list[Event | TlsEvent]]] = []
        for i, op in enumerate(self.ops):
            ts = BASE_TS + i * STEP_NS
            evs: list[Any] = []
            if op.kind == "data":
                for piece in split(op.data, chunk):
                    evs += sess.receive(op.side, piece, ts)
            elif op.kind == "gap":
                evs += sess.receive_gap(op.side, op.length, ts)
            else:
                evs += sess.receive_eof(op.side, reset=op.reset, truncated=op.truncated, ts_ns=ts)
            out.append((i, evs))
        return out

    def events(self, chunk: int | Sequence[int] | None = None) -> list[Event | TlsEvent]:
        return [ev for _, evs in self.run(chunk) for ev in evs]

    def transcript(self, chunk: int | Sequence[int] | None = None, *, first_frame: int = 1,
                   **overrides: Any) -> Transcript:
        """The ``Transcript`` the pipeline would build, frames invented one per operation."""
        client_bytes = sum(len(op.data) for op in self.ops if op.side is C)
        server_bytes = sum(len(op.data) for op in self.ops if op.side is S)
        kw: dict[str, Any] = dict(
            file="dialogue.pcap", stream=0, client=Endpoint("192.0.2.10", 40312),
            server=Endpoint("198.51.100.25", 25), first_frame=first_frame, first_ts_ns=BASE_TS,
            client_bytes=client_bytes, server_bytes=server_bytes,
            last_ts_ns=BASE_TS + max(len(self.ops) - 1, 0) * STEP_NS)
        if self.late_start:
            kw.update(midstream=True, side_evidence="port", handshake_seen=False)
        kw.update(overrides)
        t = Transcript(**kw)
        sess = SmtpSession(self.config, late_start=self.late_start)
        self.session = sess
        index = {C: FrameIndex(), S: FrameIndex()}
        pos = {C: 0, S: 0}
        for i, op in enumerate(self.ops):
            frame = first_frame + i
            ts = BASE_TS + i * STEP_NS
            evs: list[Any] = []
            if op.kind == "data":
                index[op.side].add(pos[op.side], frame)
                pos[op.side] += len(op.data)
                for piece in split(op.data, chunk):
                    evs += sess.receive(op.side, piece, ts)
            elif op.kind == "gap":
                pos[op.side] += op.length
                index[op.side].add(pos[op.side], frame)
                evs += sess.receive_gap(op.side, op.length, ts)
            else:
                index[op.side].add(1 << 62, frame)
                evs += sess.receive_eof(op.side, reset=op.reset, truncated=op.truncated, ts_ns=ts)
            _record(t, index, evs, ts)
        return t


def _record(t: Transcript, index: dict[Side, FrameIndex], evs: Iterable[Any], ts: int) -> None:
    """What pcapsmtp.engine.analyzer.Analyzer._record does, with the same helper."""
    for ev in evs:
        idx = index[ev.span.side] if hasattr(ev, "span") else FrameIndex()
        t.items.append(make_item(ev, idx, ts))


def normalise(events: Iterable[Any]) -> list[Any]:
    """Events with the chunking-dependent fields zeroed (``ts_ns``; a TLS event's ``frame``),
    nested commands included, so that two runs can be compared with ``==``."""
    out = []
    for ev in events:
        out.append(_norm(ev))
    return out


def _norm(ev: Any) -> Any:
    if isinstance(ev, Event):
        changes: dict[str, Any] = {"ts_ns": 0}
        if isinstance(ev, Reply) and ev.answers is not None:
            changes["answers"] = _norm(ev.answers)
        return dataclasses.replace(ev, **changes)
    if isinstance(ev, TlsEvent):
        return dataclasses.replace(ev, frame=None)
    return ev


# ------------------------------------------------------------------------------------------
# TLS records (RFC 8446 / RFC 5246 wire format), just enough for the observer
# ------------------------------------------------------------------------------------------

def rec(ctype: int, body: bytes, version: int = 0x0303) -> bytes:
    """One record: content type, record-layer version, 16-bit length, body."""
    return struct.pack("!BHH", ctype, version, len(body)) + body


def hs(htype: int, body: bytes) -> bytes:
    """One handshake message: type, 24-bit length, body."""
    return bytes([htype]) + len(body).to_bytes(3, "big") + body


def vec(n: int, body: bytes) -> bytes:
    return len(body).to_bytes(n, "big") + body


def ext(etype: int, data: bytes) -> bytes:
    return struct.pack("!H", etype) + vec(2, data)


def client_hello(*, sni: str | None = "mx.example.org",
                 versions: Sequence[int] = (0x0304, 0x0303), legacy: int = 0x0303,
                 suites: Sequence[int] = (0x1301, 0xC02F), record_version: int = 0x0301) -> bytes:
    """A minimal valid ClientHello record (SNI and supported_versions extensions)."""
    exts = b""
    if sni is not None:
        exts += ext(0, vec(2, b"\x00" + vec(2, sni.encode())))
    if versions:
        exts += ext(43, vec(1, b"".join(struct.pack("!H", v) for v in versions)))
    body = (struct.pack("!H", legacy) + b"\x11" * 32 + vec(1, b"\x22" * 32)
            + vec(2, b"".join(struct.pack("!H", s) for s in suites)) + vec(1, b"\x00")
            + vec(2, exts))
    return rec(22, hs(1, body), record_version)


def server_hello(*, selected: int | None = None, legacy: int = 0x0303,
                 suite: int = 0xC02F) -> bytes:
    """A ServerHello record; ``selected`` adds a supported_versions extension (TLS 1.3)."""
    exts = ext(43, struct.pack("!H", selected)) if selected is not None else b""
    body = (struct.pack("!H", legacy) + b"\x33" * 32 + vec(1, b"\x22" * 32)
            + struct.pack("!H", suite) + b"\x00" + (vec(2, exts) if exts else b""))
    return rec(22, hs(2, body))


def alert(description: int, level: int = 2) -> bytes:
    """A clear alert record (level 2 = fatal)."""
    return rec(21, bytes([level, description]))


def ccs() -> bytes:
    return rec(20, b"\x01")


def app_data(length: int = 40) -> bytes:
    return rec(23, b"\xa5" * length)


def tls12_handshake() -> dict[str, bytes]:
    """The flights of a TLS 1.2 full handshake as a passive observer sees them."""
    return {
        "client_hello": client_hello(versions=()),
        "server_flight": server_hello() + rec(22, hs(14, b"")),
        "client_finish": rec(22, hs(16, vec(1, b"\x44" * 32))) + ccs() + rec(22, b"\x55" * 40),
        "server_finish": ccs() + rec(22, b"\x66" * 40),
    }
