"""The stream-numbering ("light") table: every TCP conversation of a capture, SMTP or not,
numbered as Wireshark's ``tcp.stream``, in bounded memory.

One entry per 4-tuple (canonical order, ``int_key``). An entry that is not (yet) an SMTP
candidate is one packed ``int`` (layout below, ~200 bytes with its key and dict slot); the
reassembler stores its own objects for candidates and watched tunnels (``TcpReassembler``'s
``_Conv``) and reads their state from them.

Bounded by two generations (plain dicts, no per-entry LRU links): lookups try ``young``, then
``old`` (the reassembler moves a hit there to ``young``); when the table is full a new entry
evicts one of ``old``, and when ``old`` is empty ``young`` becomes old. Closed conversations
(an RST, or a FIN each way) are forgotten ``closed_grace_ns`` of capture time after they
closed if their entry did not change since (``ended``, ``forget``): see
``ReassemblyConfig.closed_grace_ns`` and ``docs/performance.md``.

Public operations for a caller that has the raw header fields and has not built a segment
(the file loop of ``pcapsmtp.engine``, compiled or not): ``int_key`` (the key and direction),
``StreamTable.classify`` (is this segment only numbering work? then it is done here, and the
caller just counts it) and ``KeyedSegment`` (a segment that carries its key, for the ones the
reassembler must see). The compiled file loop has a C twin of ``classify`` working on the
packed layout below (``engine/hotloop_c.pyx``, ``TableClassifier``; it imports the layout's
constants): a change to ``classify``, its helpers or the layout is made there too, and
``tests/perf/test_compiled_classify.py`` compares the two on random segments.

Packed entry (a Python int):
  bits 0-1   state (``UNDECIDED``, ``IGNORED``, ``CLOSED``)
  bit  2/3   base sequence number of direction 0/1 known
  bit  4/5   SYN (ACK clear) seen in direction 0/1 (its seq is that direction's base)
  bit  6/7   SYN-ACK seen in direction 0/1 with seq equal to that direction's base
  bit  8/9   FIN seen in direction 0/1 (an RST in either direction sets both); both set:
             the conversation has closed (``ENDED``)
  bits 10-41  base of direction 0;  bits 42-73  base of direction 1
  bits 74-113  stream index (tcp.stream)
  undecided only: bits 114-161 first frame number,
             bit 162 (``AK``) the start of one direction is known from the other's
             acknowledgement (``note_start``), bit 163 (``AKD``) that direction is 1, bits
             164-195 the sequence number of its first byte,
             bits 196-  first timestamp (ns, signed)
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Union

from pcapsmtp.model import TcpSegment
from pcapsmtp.tcp.config import ReassemblyConfig, ReassemblyStats
from pcapsmtp.tcp.detect import HEAD_BYTES
from pcapsmtp.tcp.seq import SEQ_MASK as MASK32  # the packed fields hold 32-bit sequence numbers

__all__ = [
    "FEED",
    "SKIPPED",
    "V6KEY",
    "Key",
    "KeyedSegment",
    "StreamTable",
    "int_key",
    "late_for_acked",
    "first_payload_late",
    "forget_ack_start",
    "note_start",
    "refutes_ack_start",
    "start_awaits_ack",
    "synack_awaited",
    "stale_for_syn",
    "starts_anew",
    "stream_index",
    "text_key",
]

FIN = 0x01
SYN = 0x02
RST = 0x04
ACK = 0x10
SYNACK = SYN | ACK
FIN_RST = FIN | RST
SYN_FIN_RST = SYN | FIN | RST

# Entry states. Packed ints hold UNDECIDED, IGNORED or CLOSED; the reassembler's objects
# FLOW, TUNNEL or CLOSED.
UNDECIDED = 0
FLOW = 1
IGNORED = 2
CLOSED = 3
TUNNEL = 4

ST = 3
HAS0 = 0x04
HAS1 = 0x08
SYN0 = 0x10
SYN1 = 0x20
SA0 = 0x40
SA1 = 0x80
FIN0 = 0x100
FIN1 = 0x200
ENDED = FIN0 | FIN1
B0 = 10
B1 = 42
S_SHIFT = 74
F_SHIFT = 114
AK = 1 << 162
AKD = 1 << 163
AK_SHIFT = 164
T_SHIFT = 196
M40 = (1 << 40) - 1
M48 = (1 << 48) - 1
#: state and "both bases known": the bits that tell whether a segment is numbering work only
KNOWN_MASK = ST | HAS0 | HAS1
KNOWN_IGNORED = IGNORED | HAS0 | HAS1
KNOWN_UNDECIDED = UNDECIDED | HAS0 | HAS1
KNOWN_CLOSED = CLOSED | HAS0 | HAS1
#: what outlives the decision "not SMTP" (+ the stream index)
KEEP_IGNORED = HAS0 | HAS1 | ENDED | (MASK32 << B0) | (MASK32 << B1)
NEVER = -(1 << 62)       #: "no timestamp yet" for the newest-timestamp clock
V6KEY = 1 << 290         #: set in every IPv6 key of ``int_key``

#: ``StreamTable.classify`` results
FEED = 0        #: the reassembler must see the segment (build and feed it)
SKIPPED = 1     #: numbering work only, done; count it (``TcpReassembler.skipped``)

#: a table key: ``(a_ip, b_ip, a_port << 16 | b_port)`` for plain segments, an ``int``
#: (``int_key``) for ``KeyedSegment``s
Key = Union[tuple[str, str, int], int]  # noqa: UP007 (a runtime alias)


def int_key(src: int, sport: int, dst: int, dport: int, v6: bool = False) -> tuple[int, int]:
    """The table key of a 4-tuple given as integer addresses (what ``struct`` gives for the
    raw header bytes), and the direction of ``src -> dst`` in it. Canonical order: lower port
    first, then lower address (any total order works: the two directions are alike). IPv4
    keys are below 2**96, IPv6 keys have bit 290 set."""
    if sport < dport or (sport == dport and src < dst):
        k = src << 64 | dst << 32 | sport << 16 | dport if not v6 else (
            V6KEY | src << 160 | dst << 32 | sport << 16 | dport)
        return k, 0
    k = dst << 64 | src << 32 | dport << 16 | sport if not v6 else (
        V6KEY | dst << 160 | src << 32 | dport << 16 | sport)
    return k, 1


def text_key(src: str, sport: int, dst: str, dport: int) -> tuple[Key, int]:
    """The table key of a 4-tuple given as text addresses (plain ``TcpSegment``s)."""
    if sport < dport or (sport == dport and src < dst):
        return (src, dst, sport << 16 | dport), 0
    return (dst, src, dport << 16 | sport), 1


def note_start(v: int, d: int, flags: int, seq: int, ack: int, payload: bool) -> int:
    """The packed undecided entry ``v`` after a segment of direction ``d`` (its SYN/SYN-ACK
    bits already noted): where the *other* direction's stream starts, when this segment tells
    it by TCP facts and nothing told it yet (``AK``):

    - a SYN-ACK (its seq the direction's base) acknowledges the client's ISN+1, the sequence
      number of the client's first byte, also when the client's SYN is not in the capture;
    - the handshake ACK: the client's first segment after its SYN that carries ACK, without
      payload, at ISN+1, while no segment of the server was seen (no SYN-ACK, no payload: a
      server's first byte cannot come before it, accept() returns only after it) acknowledges
      the server's ISN+1, when its SYN-ACK is not in the capture. (A server payload seen
      first, two taps merged out of order, makes the reassembler hold the conversation as an
      object, ``start_awaits_ack``: it reads the handshake ACK there, not in the entry.)

    Anything else changes nothing (a SYN-ACK and a SYN of both sides decide by themselves)."""
    if v & AK or not flags & ACK or flags & (FIN | RST):
        return v
    if d == 0:
        mine_syn, mine_sa, other_syn, other_has, sh, known = SYN0, SA0, SYN1, HAS1, B0, AKD
    else:
        mine_syn, mine_sa, other_syn, other_has, sh, known = SYN1, SA1, SYN0, HAS0, B1, 0
    if flags & SYN:
        if v & mine_sa and not v & other_syn:
            return v | AK | known | ((ack & MASK32) << AK_SHIFT)
        return v
    if (not payload and v & mine_syn and not v & other_has
            and seq == ((v >> sh) + 1) & MASK32):
        return v | AK | known | ((ack & MASK32) << AK_SHIFT)
    return v


def refutes_ack_start(v: int, d: int, flags: int, seq: int) -> bool:
    """Whether a payload of direction ``d`` (not a SYN) at ``seq`` proves that the start of
    ``d`` the packed undecided entry ``v`` took from the other side's *handshake ACK*
    (``note_start``: a pure ACK at its ISN+1 before any segment of ``d``) was no handshake
    ACK: the payload lies before that start (up to 64 KiB before: further is garbage), so the
    ACK acknowledged bytes of ``d`` sent after its SYN-ACK; the capture showed that ACK
    before the bytes it acknowledges (two taps merged out of order). A handshake ACK
    acknowledges ISN+1, before which ``d`` has no byte. Where ``d`` starts is then unknown,
    as when the ACK came after the bytes. A start from a SYN-ACK's ack is not refuted (the
    SYN-ACK answers the SYN itself)."""
    if not v & AK or flags & SYN or (1 if v & AKD else 0) != d:
        return False
    acker_syn, acker_sa = (SYN1, SA1) if d == 0 else (SYN0, SA0)
    if not v & acker_syn or v & acker_sa:
        return False
    return 0 < (((v >> AK_SHIFT) - seq) & MASK32) <= 0xFFFF


def forget_ack_start(v: int) -> int:
    """``v`` without the start known from an acknowledgement (``refutes_ack_start``)."""
    return v & ~(AK | AKD | (MASK32 << AK_SHIFT))


def start_awaits_ack(v: int, d: int, flags: int) -> bool:
    """Whether the start of direction ``d``, whose first segment (with payload, no SYN: flags
    ``flags``) comes now, may
    still be told by the other side's handshake ACK: ``v`` is the packed undecided entry
    before this segment, with the other direction's SYN (ACK clear) and nothing of this one
    (no SYN-ACK, no segment) and no start known from an acknowledgement (``AK``).

    The server's first byte is sent after its accept() returned, so after the client's
    handshake ACK; a capture merged from two taps (or ``-i any`` on a multi-queue NIC) can still
    show it first. The client's next segment tells (each direction keeps its own order): its
    handshake ACK when it is one (``TcpReassembler`` holds the conversation until then)."""
    other_syn, mine = (SYN1, HAS0) if d == 0 else (SYN0, HAS1)
    return bool(v & other_syn) and not v & (mine | AK) and not flags & SYN


def starts_anew(v: int, flags: int, base: int, seq: int) -> bool:
    """Whether a SYN of a direction whose base (ISN) in the packed entry ``v`` is ``base``, at
    sequence number ``seq``, starts a new conversation on the 4-tuple: a SYN with another
    ISN; a SYN-ACK with another ISN too once the conversation ended (FIN both ways or RST) or
    was closed (a capture merged from two taps can show the server's SYN-ACK of the new
    conversation before the client's SYN)."""
    return bool(flags & SYN) and base != seq and (
        not flags & ACK or v & ENDED == ENDED or v & ST == CLOSED)


def stale_for_syn(v: int, d: int, flags: int, ack: int) -> bool:
    """Whether a segment of direction ``d`` (with ACK, no SYN; ``ack`` its acknowledgement
    number) belongs to an *earlier* conversation of the 4-tuple, not to the one the packed
    undecided entry ``v`` holds: ``v`` has the other direction's SYN (ACK clear) and nothing
    of ``d``, and ``ack`` is not within 2**30 after that SYN's ISN+1. Every segment with ACK
    of the new connection acknowledges at least its SYN; a last ACK or FIN of the old one,
    which a capture merged from two taps shows after the SYN that reused the 4-tuple,
    acknowledges the old sequence numbers. It must not give ``d`` its start."""
    if flags & (SYN | ACK) != ACK:
        return False
    other_syn, mine, osh = (SYN1, HAS0, B1) if d == 0 else (SYN0, HAS1, B0)
    if not v & other_syn or v & mine:
        return False
    return ((ack - (v >> osh) - 1) & MASK32) >= 1 << 30


def synack_awaited(v: int, d: int, flags: int) -> bool:
    """Whether the other direction's start, and this one's, may still be told by the other
    side's SYN-ACK: ``v`` (the packed undecided entry with this segment's bits) has nothing
    of the other direction and no start known from an acknowledgement, and this segment of
    ``d`` (a payload, no SYN) carries ACK.

    A segment with ACK acknowledges at least the other side's SYN, so that side's SYN-ACK (if
    this is the client) was sent before it; a capture merged from two taps (the client's tap
    ahead of the server's) can still show the client's first bytes first, and without the
    client's SYN in the capture nothing else tells where it starts. The other side's next
    segment tells (each direction keeps its own order): its SYN-ACK if it is one, which says
    where both start (``TcpReassembler`` holds the conversation until then). A capture that
    starts late shows the other side's next segment soon. One that holds a single direction
    and no handshake ACK (that ACK tells the other side's start by itself) waits until its own
    segments span the causal window (``tick``, in live capture: the clock), the segment or
    byte bound, or the end of the capture: its own FIN or RST does not end the wait."""
    other = HAS1 if d == 0 else HAS0
    return not v & (other | AK) and flags & (ACK | SYN) == ACK


def first_payload_late(v: int, d: int, flags: int, seq: int, ack: int | None) -> bool:
    """Whether a first payload of direction ``d`` of the undecided entry ``v`` (bases set) is
    not known to start its direction: this direction's SYN (or SYN-ACK) puts the start before
    it; it acknowledges bytes of the other direction past that one's start from its SYN (or
    SYN-ACK); or a start known from an acknowledgement says so (``late_for_acked``). Earlier
    bytes are late then, and the content decides once they come. ``ack`` None: not at hand
    (counts as late). The one test for ``StreamTable.classify`` and the reassembler."""
    if d == 0:
        mine, other, sh, osh = SYN0 | SA0, SYN1 | SA1, B0, B1
    else:
        mine, other, sh, osh = SYN1 | SA1, SYN0 | SA0, B1, B0
    if v & mine and not flags & SYN and seq != ((v >> sh) + 1) & MASK32:
        return True
    if flags & ACK and v & other and (ack is None or ack != ((v >> osh) + 1) & MASK32):
        return True
    return bool(v & AK) and (ack is None or late_for_acked(v, d, flags, seq, ack))


def late_for_acked(v: int, d: int, flags: int, seq: int, ack: int) -> bool:
    """Whether a first payload of direction ``d`` of the undecided entry ``v`` (which has
    ``AK``) is not the start of what it should be: this direction's start known from an ACK
    and the payload is not at it, or it acknowledges bytes of the other direction past that
    one's known start (earlier bytes are late, content decides later)."""
    known = (v >> AK_SHIFT) & MASK32
    if (1 if v & AKD else 0) == d:
        return not flags & SYN and seq != known
    return bool(flags & ACK) and ack != known


class KeyedSegment(TcpSegment):
    """A ``TcpSegment`` that carries its table key (from ``int_key``) and direction, computed
    by a caller that has the raw address bytes: the reassembler then skips building the text
    key. One reassembler must be fed either only keyed or only plain segments."""

    __slots__ = ("d", "key")

    def __init__(self, frame: int, ts_ns: int, src: str, sport: int, dst: str, dport: int,
                 seq: int, ack: int, flags: int, payload: bytes, missing: int, key: int,
                 d: int, ttl: int = 0) -> None:
        # (the fields stored here rather than through ``TcpSegment.__init__``: one call less
        # for each segment the reassembler is fed)
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
        self.key = key
        self.d = d

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TcpSegment):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in TcpSegment.__slots__)

    __hash__ = None  # type: ignore[assignment]


def stream_index(v: int) -> int:
    """The stream index of a packed entry."""
    return (v >> S_SHIFT) & M40


class StreamTable:
    """The light table (see the module docstring). ``young``/``old``: the two generations,
    key -> packed int or the reassembler's object. ``could_start(head)``: whether a first
    payload could make a conversation on another port an SMTP candidate (content
    detection); None when content detection is off."""

    __slots__ = (
        "_closed",
        "_closed_cap",
        "_quantum",
        "_stamp",
        "could_start",
        "grace",
        "max_tracked",
        "newest",
        "next_stream",
        "old",
        "ports",
        "stats",
        "watched",
        "young",
    )

    def __init__(self, config: ReassemblyConfig, stats: ReassemblyStats,
                 could_start: Callable[[bytes], bool] | None) -> None:
        self.young: dict[Key, Any] = {}
        self.old: dict[Key, Any] = {}
        self.stats = stats
        self.max_tracked = max(1, config.max_tracked)
        self.next_stream = 0
        self.ports = config.smtp_ports
        self.could_start = could_start
        # closed entries waiting for their grace: flat FIFO of (close time, key, packed value
        # at close) triples, close times non-decreasing; at most max_tracked triples
        self.grace = config.closed_grace_ns
        self._closed: deque[Any] = deque()
        self._closed_cap = 3 * self.max_tracked
        self.newest = NEVER          # newest capture timestamp seen at a close or a creation
        self._stamp = NEVER          # the close time recorded last (rounded up)
        self._quantum = max(1, (self.grace or 0) >> 6)
        #: the 4-tuples the reassembler watches after a reset closed them (its
        #: ``TcpReassembler._watch``, shared): their segments are fed, not skipped
        self.watched: dict[Key, Any] = {}

    def __len__(self) -> int:
        return len(self.young) + len(self.old)

    @property
    def pending_closes(self) -> int:
        """Closed conversations waiting for their grace (at most ``max_tracked``)."""
        return len(self._closed) // 3

    def get(self, key: Key) -> Any:
        """The entry of ``key`` (young generation first), or None."""
        v = self.young.get(key)
        if v is None:
            v = self.old.get(key)
        return v

    @property
    def clock_ns(self) -> int | None:
        """The newest capture timestamp seen at a conversation's creation or close (None
        before the first)."""
        return None if self.newest == NEVER else self.newest

    def values(self) -> list[Any]:
        """Every entry, both generations."""
        return [*self.young.values(), *self.old.values()]

    # -- creating entries ---------------------------------------------------------------
    def new_stream(self, frame: int, ts_ns: int) -> int:
        """The next stream index, as a packed undecided entry (not inserted)."""
        stream = self.next_stream
        self.next_stream = stream + 1
        self.stats.flows_seen += 1
        return (stream << S_SHIFT) | ((frame & M48) << F_SHIFT) | (ts_ns << T_SHIFT)

    def creation_time(self, ts_ns: int) -> None:
        """A conversation is being created at ``ts_ns``: move the clock, forget the closed
        entries past their grace."""
        self.newest = max(self.newest, ts_ns)
        if self._closed:
            self.forget()

    def make_room(self) -> Any:
        """If the table is full, evict one entry of the old generation (turning the young one
        old first if needed) and return it (None if nothing was evicted)."""
        if len(self.young) + len(self.old) < self.max_tracked:
            return None
        if not self.old:
            self.old = self.young
            self.young = {}
        if self.old:
            _, victim = self.old.popitem()
            self.stats.evicted += 1
            return victim
        return None

    def replace(self, key: Key, entry: Any, value: Any) -> bool:
        """Replace ``entry`` (an object) as ``key``'s entry by ``value``, in whichever
        generation holds it; False if it is no longer there."""
        if self.young.get(key) is entry:
            self.young[key] = value
        elif self.old.get(key) is entry:
            self.old[key] = value
        else:
            return False
        return True

    # -- closing and forgetting ---------------------------------------------------------
    def ended(self, key: Key, v: int, ts: int) -> None:
        """The entry of ``key`` is now ``v``, closed (both FIN bits): forget it once
        ``closed_grace_ns`` has passed, if it is still ``v`` then."""
        if self.grace is None:
            return
        t = self.newest
        if ts > t:
            self.newest = t = ts
        if t >= self._stamp:
            # the close time, rounded up to a multiple of grace/64: one int object for the
            # many closes of a tick (memory), forgotten at most grace/64 late
            q = self._quantum
            self._stamp = t - t % q + q
        fifo = self._closed
        if len(fifo) >= self._closed_cap:   # more closures than the table holds: the oldest
            fifo.popleft()                  # is left to the LRU bound
            fifo.popleft()
            fifo.popleft()
        fifo.append(self._stamp)
        fifo.append(key)
        fifo.append(v)

    def forget(self) -> None:
        """Delete the closed entries whose grace has passed by the newest timestamp seen and
        that have not changed since they closed."""
        assert self.grace is not None
        limit = self.newest - self.grace
        fifo = self._closed
        young = self.young
        old = self.old
        n = 0
        while fifo and fifo[0] <= limit:
            fifo.popleft()
            key = fifo.popleft()
            v = fifo.popleft()
            if young.get(key) == v:         # (an object entry never equals an int)
                del young[key]
                n += 1
            elif old.get(key) == v:
                del old[key]
                n += 1
        self.stats.forgotten += n

    # -- the raw-field classification ---------------------------------------------------
    def classify(self, key: int, d: int, seq: int, flags: int, buf: Any, pstart: int,
                 pend: int, frame: int, ts_ns: int, ack: int | None = None) -> int:
        """The table's part of a segment given as raw fields (``key``/``d`` from ``int_key``;
        its payload is ``buf[pstart:pend]``), for a caller that has not built a segment.

        Returns ``FEED`` when the segment may concern a candidate (an SMTP port, a payload
        that could start SMTP or a tunnel, an entry held as an object or in the old
        generation, a full table): the caller then feeds it as a ``KeyedSegment``. Nothing
        has changed then, except that closed entries past their grace may have been
        forgotten, as feeding it does too. Otherwise the segment was numbering work only and
        is done (``SKIPPED``; a closed candidate's segment counted in
        ``stats.after_close_segments``), and the caller still counts it
        (``TcpReassembler.skipped``) as ``feed`` would.

        Cheapest first: a known conversation that is not SMTP (both bases known) and a
        segment without SYN changes nothing but, with FIN or RST, its closing bits; an
        undecided one with neither payload nor SYN/FIN/RST changes nothing. Only for
        reassemblers fed with ``KeyedSegment``s. ``ack``: the acknowledgement number (None:
        not at hand, and a first payload of a conversation whose other side's SYN was seen
        is then fed: it may answer bytes of that side that come late, see tcp/detect.py)."""
        young = self.young
        v = young.get(key)
        if v.__class__ is int and not flags & SYN:
            m = v & KNOWN_MASK
            if m == KNOWN_IGNORED:
                if flags & FIN_RST:
                    e = v | (ENDED if flags & RST else FIN1 if d else FIN0)
                    if e != v:
                        young[key] = e
                        if e & ENDED == ENDED:
                            self.ended(key, e, ts_ns)
                return SKIPPED
            if m == KNOWN_UNDECIDED and pstart == pend and not flags & FIN_RST:
                return SKIPPED
            if m == KNOWN_CLOSED:
                if self.watched and key in self.watched:
                    return FEED     # after a reset: the reassembler watches the 4-tuple
                self.stats.after_close_segments += 1
                return SKIPPED
        pp = key & 0xFFFFFFFF
        ports = self.ports
        if (pp >> 16) in ports or (pp & 0xFFFF) in ports:
            return FEED
        head = bytes(buf[pstart:min(pend, pstart + HEAD_BYTES)]) if pstart < pend else b""
        if head and self.could_start is not None and self.could_start(head):
            return FEED
        if v is None:
            if key in self.old or (self.watched and key in self.watched):
                return FEED
            self.creation_time(ts_ns)
            if len(young) + len(self.old) >= self.max_tracked:
                return FEED
            v = self.new_stream(frame, ts_ns)
            v0 = -1
        elif v.__class__ is not int or (self.watched and key in self.watched):
            return FEED
        else:
            v0 = v
        if d == 0:
            has, sh = HAS0, B0
        else:
            has, sh = HAS1, B1
        if (ack is not None and not v & has and v & ST == UNDECIDED
                and stale_for_syn(v, d, flags, ack)):
            return SKIPPED      # the old conversation's, after the reuse: numbering work only
        if head and v & ST == UNDECIDED and self.could_start is not None:
            # earlier bytes are late (content decides once they come), or the other side's
            # handshake ACK may still tell where this one starts
            if first_payload_late(v, d, flags, seq, ack) or start_awaits_ack(v, d, flags):
                return FEED
        if v & has:
            if starts_anew(v, flags, (v >> sh) & MASK32, seq):
                self.stats.reused += 1
                young.pop(key, None)
                v = self.new_stream(frame, ts_ns) | has | (seq << sh)
        else:
            v |= has | ((seq if flags & SYN else (seq - 1) & MASK32) << sh)
        state = v & ST
        if state == CLOSED:
            self.stats.after_close_segments += 1
        else:
            if state == UNDECIDED:
                if flags & SYN:
                    if flags & ACK:
                        if (v >> sh) & MASK32 == seq:
                            v |= SA0 if d == 0 else SA1
                    else:
                        v |= SYN0 if d == 0 else SYN1
                if ack is not None and flags & ACK:
                    v = note_start(v, d, flags, seq, ack, pstart < pend)
                if head:
                    v = (v & KEEP_IGNORED) | IGNORED | (((v >> S_SHIFT) & M40) << S_SHIFT)
            if flags & FIN_RST:
                v |= ENDED if flags & RST else (FIN0 if d == 0 else FIN1)
        if v != v0:
            young[key] = v
            if v & ENDED == ENDED:
                self.ended(key, v, ts_ns)
        return SKIPPED
