"""What the reassembler tells the pipeline. All events carry the conversation's ``stream``
(Wireshark's ``tcp.stream`` index), and are returned in capture order.

The events are values, never changed once made; they are plain ``@dataclass(unsafe_hash=True)``
classes, not ``model.frozen``, because that is the form Cython compiles: in the compiled build
(``events.pxd``) each is an extension type whose ``__init__``, equality, hash and repr are C and
whose fields refuse assignment; here, the reference, a dataclass (slotted where it has no
defaults: ``__slots__`` cannot hold a field whose default is a class attribute)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pcapsmtp.model import Endpoint, Side

__all__ = ["GapCause", "FlowInfo", "FlowOpened", "StreamData", "StreamGap", "OverlapConflict", "StreamEnd",
           "SentAfterReset", "FlowClosed", "FlowEvent"]


@dataclass(slots=True)
class FlowInfo:
    """A conversation the reassembler follows (an SMTP candidate)."""

    stream: int                #: Wireshark's tcp.stream index
    client: Endpoint
    server: Endpoint
    first_frame: int           #: first frame of the TCP conversation (SYN if captured)
    first_ts_ns: int
    side_evidence: str         #: "syn", "port" or "content": how client and server were told apart
    midstream: bool
    """A late start: the start of at least one side's stream is not known (``client_start``
    or ``server_start`` is None), so the conversation's beginning may not be in the capture."""
    handshake_seen: bool       #: SYN (and SYN-ACK) captured
    client_start: int | None = None
    """Sequence number of the client's first byte (its ISN+1) when TCP tells it: from the
    client's SYN, or from the server's SYN-ACK (its ack field) when the SYN was not captured.
    For a tunnelled conversation, its first byte after the proxy handshake. None: unknown."""
    server_start: int | None = None
    """Sequence number of the server's first byte (its ISN+1): from the SYN-ACK, or, when only
    the client's SYN was captured, from the client's handshake ACK (its first segment after
    the SYN that carries ACK, no payload and seq ISN+1, seen before any segment of the
    server). Bytes before a known start do not exist; a side whose first captured byte is
    after it has a hole at its start (a ``StreamGap`` at offset 0), except a side the capture
    holds no segment of (a one-sided capture), which claims no hole. None: unknown."""
    both_directions: bool = True
    """A segment of each direction (any: SYN, SYN-ACK, a pure ACK, a FIN) was captured by the
    time the reassembler decided the conversation; False when one direction had none by then."""


@dataclass(unsafe_hash=True)
class FlowOpened:
    __slots__ = ("flow",)
    flow: FlowInfo


@dataclass(unsafe_hash=True)
class StreamData:
    """New in-order bytes of one side. ``offset`` counts from 0 at the side's first payload
    byte (the byte after the SYN when the SYN was seen). ``frame`` carried these bytes."""

    __slots__ = ("stream", "side", "offset", "data", "frame", "ts_ns", "ack", "ack_age")
    stream: int
    side: Side
    offset: int
    data: bytes
    frame: int
    ts_ns: int
    ack: int
    """The acknowledgement number the segment of ``frame`` carried, as an offset in the other
    side's stream (counted as that side's ``offset``): how much of the other side's bytes this
    side had received when it sent these bytes. Bytes delivered later from the out-of-order
    buffer keep the acknowledgement of the segment that carried them (each ``StreamData`` is the
    bytes of one segment; its acknowledgement is what its sender had then, whenever the capture
    completes the stream before them). -1 when not known: the segment carried no ACK flag, the
    other side's start was not known when it was read (its SYN not seen and not told by an
    acknowledgement, or a late start's side whose start may still move back), or its
    acknowledgement lies below that start or beyond any sane distance (garbage)."""
    ack_age: int
    """How long before ``ts_ns`` (nanoseconds, two times of this side's own segments: one tap's
    clock) this side's acknowledgement of the other's stream first reached ``ack``: 0 when this
    segment advanced it; when an earlier segment (a pure ACK) did, this segment's time less that
    one's, so ``ts_ns - ack_age`` is when the sender had the other side's bytes up to ``ack``, by
    its own acknowledgement (``FlowClosed.server_acked_ns``'s rule: not an advance over the other
    side's FIN alone). Kept for the client's segments only (what the verdict reads of a client's
    plaintext in the middle of a TLS handshake); -1 when not known: the server's segments, ``ack``
    -1, or a segment whose acknowledgement lies below the highest one captured (reordered)."""


class GapCause(StrEnum):
    """Why the bytes of a ``StreamGap`` are not in the capture."""

    LOST = "lost"
    """Never seen: the capture dropped the packets that carried them (or gave up waiting)."""
    SNAPLEN = "snaplen"
    """Seen on the wire but cut: the frame that carried them is longer than what the capture
    kept of it (its snap length); the TCP segment is known, only its tail was not stored."""


@dataclass(unsafe_hash=True)
class StreamGap:
    """``length`` bytes at ``offset`` were never captured. ``frame`` is the frame whose
    bytes follow the hole (or the last frame of the side when the gap is at the end); for a
    ``GapCause.SNAPLEN`` gap it is the cut frame itself, whose tail the bytes are."""

    stream: int
    side: Side
    offset: int
    length: int
    frame: int
    ts_ns: int
    cause: GapCause = GapCause.LOST
    acked: bool = False
    """The peer acknowledged all of these bytes: its highest ACK captured by the time the gap
    was declared covers them, so the peer received them and only the capture lost them. False:
    no captured ACK covered them then. A hole below an ACK is declared when that ACK comes
    (True); a hole before the side's FIN that no ACK covers waits until the flow closes or the
    side resets, so its False is final; a hole given up at the out-of-order buffer's bound may be
    acknowledged by an ACK captured after it was declared, and a ``GapCause.SNAPLEN`` cut is
    declared as its frame comes, before any ACK of it."""


@dataclass(unsafe_hash=True)
class OverlapConflict:
    """A later copy of ``length`` bytes at ``offset`` differs from what was already
    delivered. The first copy (``first_frame``) wins; ``second_frame`` carried the other."""

    __slots__ = ("stream", "side", "offset", "length", "first_frame", "second_frame", "ts_ns")
    stream: int
    side: Side
    offset: int
    length: int
    first_frame: int
    second_frame: int
    ts_ns: int


@dataclass(unsafe_hash=True)
class StreamEnd:
    """One side ended: FIN (``reset`` False) or RST (``reset`` True), or the capture/flow
    ended without either (``truncated`` True, ``frame`` is the side's last frame or 0).

    For a reset, what tells whether the side's own stack sent it: a host sends every packet of a
    connection with one initial TTL (IPv4) or hop limit (IPv6) over one path, so they arrive with
    one value, and a box on the path that forges a reset with the side's address gives it its
    own. The TCP layer reports the facts; the analysis decides."""

    stream: int
    side: Side
    reset: bool
    truncated: bool
    frame: int
    ts_ns: int
    ttl: int = 0
    """The reset's TTL (IPv4) or hop limit (IPv6); 0 when not known, and for a FIN or a
    truncated end."""
    side_ttl: tuple[int, int] | None = None
    """For a reset: the lowest and highest TTL of this side's segments captured before it after
    the handshake (not its SYN or SYN-ACK, and not a pure ACK before the other side sent a byte,
    such as the handshake's ACK: a SYN proxy or a DDoS scrubber answers the handshake with its
    own); None when none of them carried one."""
    side_ttl_segments: int = 0
    """How many segments ``side_ttl`` was taken from."""
    side_ttl_frames: tuple[int, int] | None = None
    """The first and the last of those segments' frames."""


@dataclass(unsafe_hash=True)
class SentAfterReset:
    """The side whose reset ended the conversation (its ``StreamEnd``, frame ``reset_frame``)
    went on sending on it afterwards: segments of that side captured after the reset, within
    ``ReassemblyConfig.reset_watch_ns`` of capture time, that its own stack cannot have sent if
    it had sent the reset. A stack that resets a connection forgets it: it sends nothing more on
    that 4-tuple but a reset answering a segment of the peer (a second reset: not counted) or a
    new SYN (a new conversation); and the reset carries its next sequence number, so every byte
    it sent before lies below it. Counted are, of the side's sequence space (within 1 MiB of
    where its stream stood and, with an acknowledgement, of where the peer's stood):

    - payload ending beyond the reset's sequence number (new data, or data the reset claims was
      never sent: the real stack's reply or retransmission racing a reset a box forged);
    - a FIN at or beyond it;
    - an acknowledgement at or beyond it acknowledging more of the peer than the reset did (a
      reset with ACK: it told how far its sender had received).

    Not counted, as the side's stack may have sent them before its reset (captures merged from
    two taps, ``-i any`` reorder a direction): payload that ends at or below the reset's sequence
    number, a FIN or an acknowledgement below it, and any acknowledgement after a reset
    without ACK. Emitted once, when the watch ends (its time is up, a SYN reuses the 4-tuple,
    or the capture ends), just before the conversation's ``FlowClosed``."""

    __slots__ = ("stream", "side", "reset_frame", "kind", "frame", "ts_ns", "last_frame", "segments")
    stream: int
    side: Side
    reset_frame: int
    kind: str
    """What the first such segment carried: "data", "FIN" or "ACK"."""
    frame: int                  #: the first such segment's frame
    ts_ns: int                  #: its capture time
    last_frame: int             #: the last such segment's frame
    segments: int               #: how many there were


@dataclass(unsafe_hash=True)
class FlowClosed:
    """The reassembler forgets the conversation: ``reason`` is "closed" (both sides ended; after
    a reset this comes when the watch for the resetting side's later segments ends,
    ``SentAfterReset``, with the values of the reset's time),
    "idle" (idle timeout in capture time), "evicted" (flow table full), "reused" (a new SYN
    took the 4-tuple) or "end" (end of capture); "open" only from ``TcpReassembler.so_far``
    (never emitted: what the close would carry so far). ``client_acked`` / ``server_acked``: the
    offset in the client's / server's stream up to which the other side acknowledged it (the
    highest ACK captured), None when no ACK of the other side was captured or it made no
    sense. ``client_last_ns`` / ``server_last_ns``: the capture time of that side's last
    segment (an acknowledgement after a time proves what had arrived by then), None when the
    capture holds none. ``client_resent`` / ``server_resent``: the end offset of the furthest
    bytes that side sent again, delivered or still buffered (a TCP retransmission: at least
    ``halfstream.RESEND_MIN_NS`` after the piece it overlaps, not the capture's copy of the same
    packet), 0 when none. ``server_acked_ns``: the capture time of the client's segment at
    which its acknowledgement of the server's stream last advanced (over the server's captured
    FIN alone does not count; the first acknowledgement captured sets it, even one that covers
    no byte yet), None when no acknowledgement was captured: the bytes it covers had reached the
    client by then, and not much before (a stack acknowledges within its delayed-ACK timeout, at
    most 500 ms). ``server_acked_fin``: that last advance also covered the server's captured FIN
    (the acknowledgement was sent only once the FIN had arrived: a time after it whatever the
    clocks of the taps say). ``server_acked_frame``: the frame of that segment (its time on a
    capture clock that steps back, ``analysis.clock``), 0 with ``server_acked_ns`` None. The same
    for the server's acknowledgement of the client's stream is not kept: nothing reads it
    (``halfstream.HalfStream.ack_timed``)."""

    stream: int
    reason: str
    ts_ns: int
    client_acked: int | None = None
    server_acked: int | None = None
    client_last_ns: int | None = None
    server_last_ns: int | None = None
    client_resent: int = 0
    server_resent: int = 0
    server_acked_ns: int | None = None
    server_acked_fin: bool = False
    server_acked_frame: int = 0


FlowEvent = (FlowOpened | StreamData | StreamGap | OverlapConflict | StreamEnd | SentAfterReset
             | FlowClosed)
