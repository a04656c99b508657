"""The vocabulary every layer shares: sides, endpoints, spans and TCP segments.

Nothing here does I/O. The capture layer produces ``TcpSegment`` objects; the TCP layer
turns them into per-side byte streams whose positions are ``Span`` offsets; the SMTP core
and the analysis speak only in sides and spans; the pipeline maps spans back to frame
numbers (Wireshark's ``frame.number``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntFlag, StrEnum
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["Side", "CLIENT", "SERVER", "Endpoint", "Span", "Item", "TcpFlags", "TcpSegment", "SMTP_PORTS"]

#: Ports on which a TCP conversation is treated as SMTP without looking at its content.
SMTP_PORTS: frozenset[int] = frozenset({25, 465, 587, 2525})


class Side(StrEnum):
    """Which peer sent a byte, an event or is blamed by a finding."""

    CLIENT = "client"
    SERVER = "server"

    @property
    def other(self) -> Side:
        return Side.SERVER if self is Side.CLIENT else Side.CLIENT


#: The sides as plain module constants, for the code that reads them per line or per event: in
#: Python 3.11 every ``Side.CLIENT`` goes through the slow attribute path of a class whose
#: metaclass has ``__getattr__`` (``EnumType``), about ten times the cost of a global.
CLIENT = Side.CLIENT
SERVER = Side.SERVER


_T = TypeVar("_T")


@overload
def frozen(cls: type[_T], /) -> type[_T]: ...
@overload
def frozen(*, kw_only: bool = False) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True)
def frozen(cls: Any = None, /, *, kw_only: bool = False) -> Any:
    """``@dataclass(frozen=True, slots=True)`` for the values made per segment, line or TLS
    record (``Span`` and the events of ``tcp`` and ``smtp``): equal and hashable by value
    alike, and immutable to the type checker (mypy rejects any assignment to a field, as for a
    frozen dataclass). At run time the class is built without ``frozen``: a frozen dataclass's
    ``__init__`` stores each field through ``object.__setattr__``, three times the cost of a
    plain store, and these values are made tens of thousands of times per capture (about a
    tenth of the CPU time of a relay's capture, measured). What run time no longer does is
    raise ``FrozenInstanceError`` on an assignment the type checker already refuses."""
    def make(c: type[_T]) -> type[_T]:
        return dataclass(c, slots=True, kw_only=kw_only, unsafe_hash=True)
    return make if cls is None else make(cls)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One end of a TCP conversation. ``ip`` is the textual address (IPv6 compressed)."""

    ip: str
    port: int

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass(unsafe_hash=True)
class Span:
    """A half-open byte range ``[start, end)`` in one side's reassembled stream.

    ``@dataclass(unsafe_hash=True)``, not ``frozen``: the form Cython compiles (model.pxd makes it
    an extension type whose ``__init__``, equality, hash and repr are C and whose fields refuse
    assignment); here, the reference, a slotted dataclass whose fields no code assigns."""

    __slots__ = ("side", "start", "end")

    side: Side
    start: int
    end: int


@dataclass
class Item:
    """One observation of a conversation: an SMTP/TLS event or an overlap, with the frames that
    carried it (made by ``analysis.frames.make_item``, read by the verdict).

    Here rather than in ``analysis.verdict``, which reads it, because it is made for every event
    (tens of thousands per capture) and this module is compiled: model.pxd makes it an extension
    type whose ``__init__``, equality and repr are C (docs/performance.md, "Twenty-third
    session"). ``@dataclass`` (``eq``, no hash, not frozen), as before: the verdict sorts
    ``(position, item)`` pairs, and two equal items at one position are compared by value, not
    by identity (which would go on to ``<``, a ``TypeError``). Without ``slots``, the form Cython
    compiles (the compiled class has no ``__dict__``); its fields stay assignable."""

    event: Any
    frames: tuple[int, ...]
    ts_ns: int
    line_frames: dict[int, int] | None = None   #: for replies: line start offset -> frame


class TcpFlags(IntFlag):
    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


class TcpSegment:
    """One captured TCP segment, as every capture adapter hands it to the reassembler.

    A plain slotted class rather than a dataclass: it is built once per packet on the hot path.

    - ``frame``: 1-based number of the capture record, equal to Wireshark's ``frame.number``.
    - ``ts_ns``: capture timestamp in integer nanoseconds since the epoch.
    - ``src``/``dst``: textual IP addresses; ``sport``/``dport``: ports.
    - ``seq``/``ack``: raw 32-bit sequence and acknowledgement numbers.
    - ``flags``: the TCP flag byte (``TcpFlags`` values).
    - ``payload``: the captured TCP payload bytes.
    - ``missing``: payload bytes that were on the wire but not captured (snaplen cut);
      they follow ``payload`` in sequence space and must be reported as a gap.
    - ``ttl``: the IPv4 TTL or IPv6 hop limit of the innermost IP header that carried the
      segment (inside a tunnel: the tunnelled packet's), as captured; 0 when not known. A host
      sends every packet of a connection with one initial value over one path, so they arrive
      with one value: a reset with another was sent by something else on the path.
    """

    __slots__ = ("frame", "ts_ns", "src", "sport", "dst", "dport", "seq", "ack", "flags", "payload",
                 "missing", "ttl")

    def __init__(self, frame: int, ts_ns: int, src: str, sport: int, dst: str, dport: int,
                 seq: int, ack: int, flags: int, payload: bytes, missing: int = 0,
                 ttl: int = 0) -> None:
        self.frame = frame
        self.ts_ns = ts_ns
        self.src = src
        self.sport = sport
        self.dst = dst
        self.dport = dport
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.payload = payload
        self.missing = missing
        self.ttl = ttl

    def __repr__(self) -> str:
        return (f"TcpSegment(frame={self.frame}, {self.src}:{self.sport} > {self.dst}:{self.dport}, "
                f"seq={self.seq}, ack={self.ack}, flags={TcpFlags(self.flags)!r}, "
                f"len={len(self.payload)}, missing={self.missing}, ttl={self.ttl})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TcpSegment):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]
