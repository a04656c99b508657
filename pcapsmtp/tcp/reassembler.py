"""TcpSegment in, FlowEvents out; every TCP conversation numbered as Wireshark's tcp.stream.

Two tables:

- the *light* table numbers every TCP conversation of the capture, SMTP or not: one entry per
  4-tuple (canonical order), bounded by ``max_tracked``. It keeps what Wireshark 4.0 uses to
  decide that a SYN starts a new conversation on a known 4-tuple: the base sequence number of
  each direction. Entries that are not (yet) SMTP candidates are one packed ``int`` each
  (layout below, ~200 bytes with the key and the dict slot, against ~420 for an object);
  a segment of such a conversation costs one dict lookup and a few bit tests.
  Candidates and the few tunnels being watched are ``_Conv`` objects.
  The bound is kept by two generations (plain dicts, no per-entry LRU links): lookups try the
  young one, then the old one (a hit there moves the entry to the young one); when the table
  is full a new entry evicts one of the old generation, and when the old one is empty the
  young one becomes old. So an entry touched at least once per ``max_tracked`` new
  conversations stays, as with an LRU; an entry that is evicted and comes back is a new
  conversation for us, with a new stream index (numbering then differs from Wireshark).
- closed conversations leave the light table: once a conversation has *closed* (an RST in
  either direction, or a FIN in each direction; for a candidate, its flow closed by FIN/RST,
  not by idleness, eviction or reuse) its entry is deleted ``closed_grace_ns`` of capture
  time later, if the entry has not *changed* since (its packed value is still the one it
  had when it closed). Segments that change nothing (ACKs, retransmitted FINs) do not
  extend the grace; a change (a SYN with a new ISN: a new conversation; a first payload
  deciding an undecided conversation; the first segment of a direction not seen yet) keeps
  the entry, and if it is still closed its grace starts again. A FIFO of (close time, key,
  value at close), in the order of the closes, is checked whenever a new conversation is
  created (amortised O(1), at most ``max_tracked`` items); time is the newest capture
  timestamp seen at closes and creations, so a capture slightly out of time order forgets
  nothing early. A segment of the 4-tuple without SYN after the grace starts a new
  conversation (new stream index; numbering then differs from Wireshark's, as after an
  eviction): the ``closed_grace_ns`` trade-off.
- the *flow* table holds the SMTP candidates (``Flow``: sides, two ``HalfStream``),
  LRU-bounded by ``max_flows`` and swept for idleness every ``idle_check_every`` segments.

Wireshark 4.0's tcp.stream rules, as read in packet-tcp.c and checked with tshark 4.0.17:

1. A segment belongs to the most recent conversation of its 4-tuple (either direction).
   Without one, a new conversation gets the next index, in order of first appearance.
2. The first segment of each direction sets that direction's base sequence number: its
   ``seq`` when it carries SYN, else ``seq - 1`` (mod 2**32).
3. A segment with SYN set and ACK clear whose direction already has a base sequence number
   different from its ``seq`` starts a new conversation (next index) on the same 4-tuple.
   Same ``seq``: a retransmission, same conversation — even after FIN or RST both ways.
4. A SYN-ACK never starts a conversation, whatever its seq; neither does a SYN whose
   direction had no segment yet in the conversation.

Tunnels (content detection on other ports): a conversation whose first payload is an HTTP
``CONNECT`` request or a SOCKS5 greeting stays undecided while the proxy handshake runs (at
most ``tunnel_limit`` bytes per side). It becomes a candidate when the proxy accepted (HTTP
``200``, SOCKS5 reply ``00``) and the server's first bytes after that are an SMTP greeting;
each side's stream then starts (offset 0) at its first byte after the proxy handshake.
"""
from __future__ import annotations

import dataclasses
import ipaddress
from collections import OrderedDict

from pcapsmtp.model import Endpoint, Side, TcpSegment
from pcapsmtp.tcp.config import ReassemblyConfig, ReassemblyStats
from pcapsmtp.tcp.detect import (
    HEAD_BYTES, START_CLIENT, START_MORE, START_OTHER, START_SERVER, START_TUNNEL,
    TUNNEL_FAILED, TUNNEL_OPEN, TUNNEL_PENDING, classify_start, is_smtp_start, may_matter,
    parse_tunnel,
)
from pcapsmtp.tcp.events import FlowClosed, FlowEvent, FlowInfo, FlowOpened, SentAfterReset
from pcapsmtp.tcp.halfstream import HalfStream
from pcapsmtp.tcp.partition import flow_bucket
from pcapsmtp.tcp.seq import SEQ_HALF, SEQ_MASK
from pcapsmtp.tcp.streams import (
    ACK, B0, B1, CLOSED, ENDED, F_SHIFT, FIN, FIN0, FIN1, FIN_RST, FLOW, HAS0, HAS1, IGNORED,
    KEEP_IGNORED, KNOWN_IGNORED, KNOWN_MASK, M40, M48, RST, S_SHIFT, SA0, SA1, ST, SYN,
    SYN0, SYN1, SYN_FIN_RST, SYNACK, T_SHIFT, TUNNEL, UNDECIDED, V6KEY, Key, KeyedSegment,
    StreamTable, first_payload_late, forget_ack_start, int_key, note_start, refutes_ack_start,
    stale_for_syn, start_awaits_ack, starts_anew, synack_awaited, text_key,
)
from pcapsmtp.tcp.streams import AK, AK_SHIFT, AKD

__all__ = ["ReassemblyConfig", "ReassemblyStats", "TcpReassembler", "Flow", "is_smtp_start",
           "parse_tunnel", "TUNNEL_PENDING", "TUNNEL_FAILED", "TUNNEL_OPEN", "KeyedSegment",
           "int_key", "V6KEY"]

_MASK = SEQ_MASK
_HALF = SEQ_HALF
_ACK_SANE = 1 << 30      #: an ACK further ahead than this is garbage (as in HalfStream)
# (the packed-entry layout and its names live in tcp/streams.py)
_FIN, _SYN, _RST, _ACK, _SYNACK = FIN, SYN, RST, ACK, SYNACK
_UNDECIDED, _FLOW, _IGNORED, _CLOSED, _TUNNEL = UNDECIDED, FLOW, IGNORED, CLOSED, TUNNEL
_PENDING = 5     # an object entry whose content does not decide yet (``_Pending``, tcp.detect)
_ST, _HAS0, _HAS1, _SYN0, _SYN1, _SA0, _SA1 = ST, HAS0, HAS1, SYN0, SYN1, SA0, SA1
_FIN0, _FIN1, _ENDED, _B0, _B1 = FIN0, FIN1, ENDED, B0, B1
_S_SHIFT, _F_SHIFT, _T_SHIFT, _M40, _M48 = S_SHIFT, F_SHIFT, T_SHIFT, M40, M48
_FAST_MASK, _FAST_IGNORED, _KEEP_IGNORED = KNOWN_MASK, KNOWN_IGNORED, KEEP_IGNORED
_FIN_RST, _SYN_FIN_RST = FIN_RST, SYN_FIN_RST

# --------------------------------------------------------------------------- keys

_Key = Key

class _Tunnel:
    """A proxy handshake being watched: its segments with payload (capture order, for the
    replay) and where each direction starts (its SYN, else the lowest sequence number seen);
    each side's first bytes are put together in sequence order, whatever the capture order."""

    __slots__ = ("cdir", "fixed", "nbytes", "segs", "start")

    def __init__(self, cdir: int, conv: _Conv) -> None:
        self.cdir = cdir
        self.start: list[int | None] = [None, None]     # seq of each direction's first byte
        self.fixed = [False, False]
        for d, sn in ((0, conv.syn0 if conv.syn0 is not None else conv.synack0),
                      (1, conv.syn1 if conv.syn1 is not None else conv.synack1)):
            if sn is not None:
                self.start[d] = (sn + 1) & _MASK
                self.fixed[d] = True
        self.segs: list[tuple[int, TcpSegment]] = []
        self.nbytes = 0

    def prefix(self, d: int) -> bytes:
        """Direction ``d``'s bytes from its start, as far as they are contiguous."""
        st = self.start[d]
        if st is None:
            return b""
        pieces = sorted(((s.seq - st) & _MASK, s.payload) for dd, s in self.segs
                        if dd == d and s.payload and ((s.seq - st) & _MASK) < _HALF)
        out = bytearray()
        for off, data in pieces:
            if off > len(out):
                break
            if off + len(data) > len(out):
                out += data[len(out) - off:]
        return bytes(out)


class _Pending:
    """A conversation on another port whose first bytes do not decide yet (``tcp.detect``), or
    any conversation whose server start its client's handshake ACK may still tell
    (``awaits``): its segments, held in capture order for the replay, and each direction's
    first ``HEAD_BYTES`` put together in sequence order. ``start[d]``: sequence number of
    direction ``d``'s first byte: fixed by its SYN (or the other side's acknowledgement of
    it), else the lowest seen so far (a segment up to 64 KiB before it moves it back: its
    bytes arrived late)."""

    __slots__ = ("segs", "nbytes", "start", "fixed", "head", "have", "cut", "late", "awaits",
                 "own", "low", "port")

    def __init__(self) -> None:
        self.segs: list[tuple[int, TcpSegment]] = []
        self.nbytes = 0
        self.start: list[int | None] = [None, None]
        self.fixed = [False, False]
        self.head = (bytearray(HEAD_BYTES), bytearray(HEAD_BYTES))
        self.have = [0, 0]              # bit i: head byte i known
        self.cut = False                # snaplen-cut bytes seen (no tunnel then)
        #: direction d has sent bytes not in ``head`` yet (some seen, or acknowledged by the
        #: other side): it may still decide
        self.late = [False, False]
        #: the direction whose start the other side's next segment may tell (its handshake
        #: ACK, ``tcp.streams.start_awaits_ack``): nothing decides before it comes; else None
        self.awaits: int | None = None
        #: ``awaits``'s start is told by its own next segment, its SYN-ACK if it is one
        #: (``tcp.streams.synack_awaited``), not by the other side's handshake ACK
        self.own = False
        #: the lowest sequence number of ``awaits``'s segments seen (a handshake ACK
        #: acknowledges none of them)
        self.low: int | None = None
        #: a conversation on an SMTP port, held only for ``awaits``: opened whatever its bytes
        self.port = False

    def move_start(self, d: int, seq: int) -> None:
        """Direction ``d`` starts at ``seq``, before (or at) its start so far: the head bytes
        known move up."""
        st = self.start[d]
        self.start[d] = seq
        if st is None:
            return
        back = (st - seq) & _MASK
        h = self.head[d]
        old = bytes(h)
        h[:] = bytes(HEAD_BYTES)
        have = self.have[d]
        self.have[d] = 0
        for i in range(max(0, HEAD_BYTES - back)):
            if have >> i & 1:
                h[i + back] = old[i]
                self.have[d] |= 1 << (i + back)

    def add(self, d: int, seq: int, payload: bytes) -> None:
        st = self.start[d]
        if st is None:
            self.start[d] = st = seq
        off = (seq - st) & _MASK
        if off >= _HALF:
            back = (st - seq) & _MASK
            if self.fixed[d] or back > 0xFFFF:
                return                  # before the SYN, or garbage
            self.move_start(d, seq)
            off = 0
        if off >= HEAD_BYTES:
            return
        h = self.head[d]
        for i, b in enumerate(payload[:HEAD_BYTES - off]):
            if not self.have[d] >> (off + i) & 1:          # first copy wins
                h[off + i] = b
                self.have[d] |= 1 << (off + i)

    def prefix(self, d: int) -> bytes:
        have = self.have[d]
        n = 0
        while n < HEAD_BYTES and have >> n & 1:
            n += 1
        return bytes(self.head[d][:n])


# --------------------------------------------------------------------------- entries

class _Conv:
    """Light entry held as an object: an SMTP candidate (``flow``) or a watched tunnel, of the
    4-tuple ``key = (a_ip, b_ip, a_port << 16 | b_port)``. Direction 0 is a -> b."""

    __slots__ = ("key", "stream", "base0", "base1", "state", "flow", "first_frame", "first_ts",
                 "syn0", "syn1", "synack0", "synack1", "acked", "tunnel", "fins", "pending")

    def __init__(self, key: _Key, v: int) -> None:
        """From a packed undecided entry."""
        self.key = key
        self.stream = (v >> _S_SHIFT) & _M40
        self.base0: int | None = (v >> _B0) & _MASK if v & _HAS0 else None
        self.base1: int | None = (v >> _B1) & _MASK if v & _HAS1 else None
        self.state = _UNDECIDED
        self.flow: Flow | None = None
        self.first_frame = (v >> _F_SHIFT) & _M48
        self.first_ts = v >> _T_SHIFT
        # handshake memory (seq of SYN / SYN-ACK per direction), until the flow opens
        self.syn0 = self.base0 if v & _SYN0 else None
        self.syn1 = self.base1 if v & _SYN1 else None
        self.synack0 = self.base0 if v & _SA0 else None
        self.synack1 = self.base1 if v & _SA1 else None
        #: (direction, sequence number of its first byte) known from the other direction's
        #: SYN-ACK or handshake ACK (``tcp.streams.note_start``), else None
        self.acked: tuple[int, int] | None = (
            (1 if v & AKD else 0, (v >> AK_SHIFT) & _MASK) if v & AK else None)
        self.tunnel: _Tunnel | None = None
        self.pending: _Pending | None = None
        self.fins = v & _ENDED          # FIN/RST bits, kept for a tunnel that gives up

    def starts(self) -> list[int | None]:
        """Where each direction's stream starts (its ISN+1), when TCP says it: its own SYN or
        SYN-ACK, else the other direction's acknowledgement of it (``acked``); None if not."""
        out: list[int | None] = [None, None]
        for d, syn, synack in ((0, self.syn0, self.synack0), (1, self.syn1, self.synack1)):
            sn = syn if syn is not None else synack
            if sn is not None:
                out[d] = (sn + 1) & _MASK
            elif self.acked is not None and self.acked[0] == d:
                out[d] = self.acked[1]
        return out

    def packed(self, state: int) -> int:
        v = state | (self.stream << _S_SHIFT)
        if self.base0 is not None:
            v |= _HAS0 | (self.base0 << _B0)
        if self.base1 is not None:
            v |= _HAS1 | (self.base1 << _B1)
        return v


class Flow:
    """An SMTP candidate conversation being reassembled. ``halves[d]`` is the HalfStream of
    light-entry direction ``d``; ``sides[d]`` its Side."""

    __slots__ = ("info", "conv", "halves", "sides", "last_ts", "last_frame", "held", "held_bytes",
                 "nheld", "data_ack", "data_end", "first_for", "blind", "rst_held", "held_end",
                 "challenged")

    def __init__(self, info: FlowInfo, conv: _Conv, halves: tuple[HalfStream, HalfStream],
                 sides: tuple[Side, Side]) -> None:
        self.info = info
        self.conv = conv
        self.halves = halves
        self.sides = sides
        self.last_ts = info.first_ts_ns
        self.last_frame = info.first_frame
        #: segments waiting for the other side's bytes they acknowledge (causal order), and
        #: behind them the later segments of their own direction (each direction keeps its
        #: order): (direction, segment), in capture order
        self.held: list[tuple[int, TcpSegment]] = []
        self.held_bytes = 0             #: payload bytes in ``held``
        self.nheld = [0, 0]             #: segments of each direction in ``held``
        #: of each direction's segments with payload processed so far, the highest
        #: acknowledgement number and the highest sequence number after the payload (what a
        #: reset without ACK of the other side answers, ``_unanswered``)
        self.data_ack: list[int | None] = [None, None]
        self.data_end: list[int | None] = [None, None]
        #: the held segment (direction, segment) that waits for the other side's first segment
        #: (nothing of that side in the capture yet: ``_unseen``), else None
        self.first_for: tuple[int, TcpSegment] | None = None
        #: such a wait ran out (a capture of one direction): no segment waits for that again
        self.blind = False
        #: a reset was held (``held``) at some point: later segments are checked for what shows
        #: it dropped (``_dropped_reset``; not cleared, a flow rarely holds one)
        self.rst_held = False
        #: resets (direction, reset, frame of the pure ACK) that only a pure ACK of the receiver
        #: answered (``_drops``: a challenge ACK, or an ACK that crossed the reset), taken out of
        #: the hold as dropped; dropped only once the conversation goes on (a later segment of
        #: the receiver, bytes of the reset's side, or a segment of it before the reset's
        #: sequence number), taken when it ends first (``TcpReassembler._take_challenged``)
        self.challenged: list[tuple[int, TcpSegment, int]] = []
        #: of each direction's held segments, a sequence number no segment ends past (the
        #: highest end of those held since the direction last held none: ``_release`` skips
        #: looking for bytes held past a side's next byte when none can be)
        self.held_end: list[int] = [0, 0]


#: how far from where a side's (and its peer's) stream stood at its reset a later segment's
#: sequence (acknowledgement) number may lie and still be of the same connection
_WATCH_SPAN = 1 << 20


class _ResetWatch:
    """A candidate closed by a reset of direction ``d``: its ``FlowClosed`` waits (``closed``)
    while the resetting side's later segments are checked (``_went_on``), until ``deadline``."""

    __slots__ = ("stream", "d", "side", "first_frame", "reset_frame", "deadline", "closed",
                 "rst_seq", "rst_ack", "own", "own_off", "peer", "kind", "frame", "ts", "last", "n")

    def __init__(self, flow: Flow, d: int, rst: TcpSegment, deadline: int,
                 closed: FlowClosed) -> None:
        self.stream = flow.info.stream
        self.d = d
        self.side = flow.sides[d]
        self.first_frame = flow.info.first_frame
        self.reset_frame = rst.frame
        self.deadline = deadline
        self.closed = closed
        self.rst_seq = rst.seq
        #: how far the resetting side had received the peer's bytes (a reset with ACK), else None
        self.rst_ack = rst.ack if rst.flags & _ACK else None
        h, p = flow.halves[d], flow.halves[1 - d]
        self.own = h.next_seq if h.base is not None else None
        self.own_off = h.next_off
        self.peer = p.next_seq if p.base is not None else None
        self.kind = ""
        self.frame = self.ts = self.last = self.n = 0

    def check(self, seg: TcpSegment) -> None:
        """A segment of the resetting side after its reset."""
        kind = _went_on(self, seg)
        if kind is not None:
            if not self.n:
                self.kind, self.frame, self.ts = kind, seg.frame, seg.ts_ns
            self.n += 1
            self.last = seg.frame

    def acked(self, seg: TcpSegment) -> None:
        """A segment of the other side after the reset, in capture order. The other side sends
        nothing once a reset reached it: this one was sent before (two taps merged, their
        clocks apart, put it after the reset), and what it acknowledges of the resetting side's
        bytes, up to the reset's sequence number (past it: bytes sent after the reset, or
        never, ``_past_reset``), had arrived: the ``FlowClosed`` says so, as had it come before
        the reset (the bytes the capture lacks were sent; the verdict reads the acknowledgement,
        ``server_acked``/``client_acked``)."""
        own = self.own
        if own is None or seg.flags & (_SYN | _RST) or not seg.flags & _ACK:
            return
        k = (seg.ack - own) & _MASK
        if not 0 < k < _ACK_SANE or ((self.rst_seq - seg.ack) & _MASK) >= _ACK_SANE:
            return          # nothing new, or past the reset
        if self.peer is not None and not _near(seg.seq, self.peer):
            return          # not this connection's sequence space
        c = self.closed
        off = self.own_off + k
        if self.side is Side.SERVER:
            if c.server_acked is None or off > c.server_acked:
                self.closed = dataclasses.replace(c, server_acked=off, client_last_ns=seg.ts_ns)
        elif c.client_acked is None or off > c.client_acked:
            self.closed = dataclasses.replace(c, client_acked=off, server_last_ns=seg.ts_ns)

    def events(self, out: list[FlowEvent]) -> None:
        if self.n:
            out.append(SentAfterReset(self.stream, self.side, self.reset_frame, self.kind,
                                      self.frame, self.ts, self.last, self.n))
        out.append(self.closed)


def _near(x: int, anchor: int | None) -> bool:
    return anchor is None or ((x - anchor + _WATCH_SPAN) & _MASK) < 2 * _WATCH_SPAN


def _went_on(w: _ResetWatch, seg: TcpSegment) -> str | None:
    """What ``seg``, of the side that reset (after its reset), carries that the stack which sent
    that reset cannot have sent ("data", "FIN", "ACK"), or None (``SentAfterReset``)."""
    flags = seg.flags
    if flags & (_SYN | _RST):
        return None         # a new conversation; a reset answering the peer
    seq = seg.seq
    if not _near(seq, w.own) or (flags & _ACK and not _near(seg.ack, w.peer)):
        return None         # not this connection's sequence space
    rst = w.rst_seq
    n = len(seg.payload) + seg.missing
    if n and 0 < ((seq + n - rst) & _MASK) < _ACK_SANE:
        return "data"       # bytes beyond the reset's next sequence number
    if flags & _FIN and ((seq + n - rst) & _MASK) < _ACK_SANE:
        return "FIN"
    if (not n and flags & _ACK and w.rst_ack is not None and ((seq - rst) & _MASK) < _ACK_SANE
            and 0 < ((seg.ack - w.rst_ack) & _MASK) < _ACK_SANE):
        return "ACK"        # received more of the peer than the reset said
    return None


def _past_reset(s: TcpSegment, rst: TcpSegment) -> bool:
    """Whether ``s``, of the other side than ``rst``'s, acknowledges bytes of that side past the
    reset's sequence number: bytes it sent after its reset (or never), so ``s`` comes after the
    reset in causal order (a capture merged from two taps can put it before): it is not read
    as the conversation's, what it acknowledges is no loss."""
    return bool(s.flags & _ACK) and 0 < ((s.ack - rst.seq) & _MASK) < _ACK_SANE


def _after_reset(s: TcpSegment, rst: TcpSegment, nxt: int) -> bool:
    """Whether ``s``, of the other side than ``rst``'s, comes after that reset in causal order:
    it acknowledges bytes past it (``_past_reset``), and the reset does not acknowledge bytes
    ``s`` carries that were not delivered (``nxt``: that side's next sequence number to deliver):
    such a reset was sent after ``s`` arrived, whatever the capture order, and ``s`` is read
    before it (the two contradict each other; the reset's acknowledgement of bytes the capture
    holds is the evidence kept)."""
    if not _past_reset(s, rst):
        return False
    # what ``s`` takes of its side's sequence space: its bytes, the missing ones, its FIN
    n = len(s.payload) + s.missing + (1 if s.flags & _FIN else 0)
    if not n or not rst.flags & _ACK or not 0 < ((s.seq + n - nxt) & _MASK) < _ACK_SANE:
        return True
    # the reset must acknowledge some of what ``s`` brings that was not delivered: from its first
    # byte, or from ``nxt`` when ``s`` begins with bytes already delivered (a retransmission)
    first = s.seq if ((s.seq - nxt) & _MASK) < _ACK_SANE else nxt
    return not 0 < ((rst.ack - first) & _MASK) < _ACK_SANE


def _carrier(held: list[tuple[int, TcpSegment]], d: int, nxt: int, ack: int,
             end: int | None = None) -> int | None:
    """The index of a held segment of the other direction than ``d`` that carries that
    direction's sequence space from ``nxt`` (its next byte to deliver) on, when held segments
    of that direction together carry it up to ``ack`` (the bytes a segment of ``d``
    acknowledges are in the capture, held themselves, perhaps in several segments), else
    None. Offsets are taken relative to ``nxt`` (signed, within 2**31)."""
    want = (ack - nxt) & _MASK
    if not 0 < want < _HALF or end is not None and not want <= ((end - nxt) & _MASK) < _HALF:
        return None     # (``end``: no held segment of that direction ends past it, Flow.held_end)
    # first, without building or sorting anything: whether a held segment carries ``nxt`` and
    # the held segments reach ``ack`` at all (most often not: the bytes are held nowhere, and
    # this runs for each head each time a release finds the wait over)
    carried = False
    reach = 0
    for pd, ps in held:
        if pd != d:
            lo = (ps.seq - nxt) & _MASK
            if lo >= _HALF:
                lo -= 1 << 32
            hi = lo + len(ps.payload) + ps.missing + (ps.flags & _FIN) + ((ps.flags & _SYN) >> 1)
            if lo <= 0 < hi:
                carried = True
            if hi > reach:
                reach = hi
    if not carried or reach < want:
        return None
    spans = []
    for i, (pd, ps) in enumerate(held):
        if pd != d:
            lo = (ps.seq - nxt) & _MASK
            end = ps.seq + len(ps.payload) + ps.missing + (ps.flags & _FIN) + (
                (ps.flags & _SYN) >> 1)
            hi = (end - nxt) & _MASK
            spans.append((lo - (1 << 32) if lo >= _HALF else lo,
                          hi - (1 << 32) if hi >= _HALF else hi, i))
    spans.sort()
    first: int | None = None
    pos = 0
    k = 0
    while pos < want:
        reach, who = pos, None
        while k < len(spans) and spans[k][0] <= pos:
            if spans[k][1] > reach:
                reach, who = spans[k][1], spans[k][2]
            k += 1
        if who is None:
            return None
        if first is None:
            first = who
        pos = reach
    return first



def _first_held(held: list[tuple[int, TcpSegment]], d: int, nxt: int,
                ack: int) -> tuple[int, int]:
    """Where the bytes of the other direction than ``d`` that a segment of ``d`` acknowledging
    up to ``ack`` waits for (from ``nxt``, that direction's next byte to deliver) begin to be
    held: ``(n, i)``, the bytes from ``nxt`` before the first one a held segment of that
    direction carries (0: one carries ``nxt`` itself) and that segment's index; ``(ack - nxt,
    -1)`` when no held segment carries any of them (they are held nowhere: lost). Offsets are
    taken relative to ``nxt`` (signed, within 2**31), as in ``_carrier``."""
    want = (ack - nxt) & _MASK
    if not 0 < want < _HALF:
        return 0, -1
    first, who = want, -1
    for i, (pd, ps) in enumerate(held):
        if pd != d:
            n = len(ps.payload) + ps.missing + (ps.flags & _FIN) + ((ps.flags & _SYN) >> 1)
            if not n:
                continue                # (a pure ACK carries no byte)
            lo = (ps.seq - nxt) & _MASK
            if lo >= _HALF:
                if lo - (1 << 32) + n > 0:
                    return 0, i         # it begins before ``nxt`` and carries it
            elif lo < first:
                first, who = lo, i
                if not lo:
                    break
    return first, who


def _first_past(held: list[tuple[int, TcpSegment]], d: int, nxt: int) -> TcpSegment | None:
    """The first captured of the held segments of the other direction than ``d`` whose sequence
    number lies past ``nxt`` (that direction's next byte), or None: where a hole before them
    is reported, as a hole is at its side's first segment past it (a pure ACK or FIN) when that
    comes before the bytes after it."""
    first: TcpSegment | None = None
    for hd, hs in held:
        if hd != d and 0 < ((hs.seq - nxt) & _MASK) < _HALF and (first is None or hs.frame < first.frame):
            first = hs
    return first


def _hole_frame(held: list[tuple[int, TcpSegment]], d: int, peer: HalfStream, nxt: int) -> int | None:
    """The frame of the first segment captured past the hole of ``peer`` (the other side than
    ``d``) from ``nxt``, its next byte, on: the first of its side's held segments past it
    (``_first_past``) or of its bytes buffered past it (the frame the hole is reported at when
    declared, ``HalfStream.catch_up``); tshark's ``lost_segment``. None: nothing of that side
    was captured past it."""
    js = _first_past(held, d, nxt)
    f = None if js is None else js.frame
    ooo = peer.ooo
    if ooo and (f is None or ooo[0][3] < f):
        f = ooo[0][3]
    return f


def _acked_first(halves: tuple[HalfStream, HalfStream], x: int) -> bool:
    """Whether the hole of side ``x`` from its next byte on came before any hole of the other
    side from that side's next byte: some of it is acknowledged (``ack_seq``) by segments of
    the other side processed while none of that side's had gone past its next byte (nothing
    buffered, no FIN): the other side had those bytes before it sent the bytes of its own
    hole."""
    hx = halves[x]
    hy = halves[1 - x]
    a = hx.ack_seq
    return (a is not None and hx.base is not None and 0 < ((a - hx.next_seq) & _MASK) < _ACK_SANE
            and not hy.ooo and hy.fin_off is None)


def _lose_before(peer: HalfStream, seq: int, frame: int, ts: int, out: list[FlowEvent]) -> None:
    """Declare lost ``peer``'s bytes from its next one up to ``seq`` (a waiting segment of the
    other side acknowledges them, and the bytes from ``seq`` on are held: they come later, in
    their side's order), at ``frame``/``ts`` (``_first_past``): ``HalfStream.catch_up`` up to
    ``seq`` alone, the side's highest acknowledgement left as it was."""
    a = peer.ack_seq
    peer.ack_seq = seq
    peer.catch_up(True, frame, ts, out)
    peer.ack_seq = a


#: how far from its side's next byte a reset's sequence number lies outside any window the
#: receiver could have (as HalfStream's ``_SENT_SANE``: more than a scaled TCP window in flight)
_RESET_FAR = 1 << 24


def _reset_out_of_window(half: HalfStream, seq: int) -> bool:
    """Whether a reset of ``half``'s side at ``seq`` lies far outside the receiver's window: at
    least ``_RESET_FAR`` past the side's next byte or behind it, or behind the receiver's
    highest acknowledgement of the side (its ``ack_seq``). A stack drops such a reset
    without a word (RFC 9293 3.10.7.4, RFC 5961 3.2: only a reset in the window counts) and the
    conversation goes on: a blind injection's wrong guess, a NAT's or balancer's reset for an
    older connection on the 4-tuple. It neither ends the conversation nor proves bytes sent."""
    if half.base is None or half.ended:
        return False
    k = (seq - half.next_seq) & _MASK
    if _RESET_FAR <= k <= _MASK + 1 - _RESET_FAR:
        return True
    # behind what the receiver acknowledged of the side: its RCV.NXT is at least its highest
    # ACK, so a sequence number below it is never in its window and the stack drops the reset
    # (RFC 9293 3.10.7.4, RFC 5961 3.2), however near. Not behind the captured next byte alone:
    # from the receiver's ACK on, bytes in flight it had not acknowledged may be in its window.
    a = half.ack_seq
    return a is not None and 0 < ((a - seq) & _MASK) < _RESET_FAR


def _drops(flow: Flow, d: int, rst: TcpSegment, sd: int, seg: TcpSegment) -> bool:
    """Whether segment ``seg`` of direction ``sd``, captured after reset ``rst`` of direction
    ``d``, shows that reset was not taken. The reset waits for bytes of its side
    (``HalfStream.reset_past``: past its next byte, in the window). A stack that follows RFC 5961
    3.2 (Linux since 3.6, FreeBSD, Windows) ends the connection only for a reset at exactly its
    next expected byte; one elsewhere in its window it drops, answering with a *challenge ACK*.
    What shows the reset was not at that byte, so dropped:

    - ``seg`` is the receiver's challenge ACK: a pure ACK that acknowledges nothing new of the
      reset's side (the highest acknowledgement of it so far, or its next byte when none was
      read: the receiver's RCV.NXT), which lies before the reset's sequence number (a stack that
      took the reset sends nothing more). An ACK of the receiver sent before the reset reached
      it, crossing it, looks the same when it is a duplicate too (a window update: the window
      field is all that differs): such a drop holds only once the conversation goes on
      (``Flow.challenged``: any later segment of the receiver, its FIN, reset or keep-alive
      included, since a stack that took the reset sends nothing more; bytes of the reset's side,
      or a segment of it before the reset's sequence number, since a reset at its side's next
      byte leaves its stack nothing to send), and when it ends first (nothing more, or only the
      reset's side at or past the reset) the reset is taken (``TcpReassembler._take_challenged``);
    - ``seg`` brings bytes of the reset's side at that side's next byte (what was delivered, not
      past a hole) and acknowledges more of the other side than the reset did: its stack sent
      them after the reset (a stack acknowledges no less later; one that resets sends nothing
      more), so those bytes, which lie before the reset's sequence number, had not reached the
      receiver when the reset did, and its next expected byte was not the reset's (bytes of the
      side after the reset that start past its next byte prove nothing: the hole before them
      may be bytes sent before the reset, as a box's reset at the right byte leaves it)."""
    if seg.flags & (_SYN_FIN_RST | _ACK) != _ACK:
        return False
    half = flow.halves[d]
    n = len(seg.payload) + seg.missing
    if sd == d:
        if not n or half.base is None or seg.seq != half.next_seq or not rst.flags & _ACK \
                or not 0 < ((seg.ack - rst.ack) & _MASK) < _ACK_SANE:
            return False
    else:
        a = half.ack_seq
        ack = seg.ack
        if n or half.base is None or ack != (half.next_seq if a is None else a) \
                or not 0 < ((rst.seq - ack) & _MASK) < _RESET_FAR:
            return False
    return half.reset_past(rst.seq, rst.ttl)


def _dropped_reset(flow: Flow, d: int, seg: TcpSegment) -> int:
    """The index in the hold of a reset that ``seg`` of direction ``d``, captured after it,
    shows was not taken (``_drops``), or -1."""
    for j, h in enumerate(flow.held):
        s = h[1]
        if s.flags & _RST and _drops(flow, h[0], s, d, seg):
            return j
    return -1


def _unanswered(flow: Flow, d: int, seq: int) -> bool:
    """Whether a reset without ACK of direction ``d`` at ``seq`` answers a segment of the other
    side not read yet. A socket that was closed (its FIN sent) answers a segment bringing data
    it did not acknowledge with a reset without ACK whose sequence number is that segment's
    ACK field (RFC 9293 3.10.7); such a reset from a side whose FIN was read, at a sequence
    number up to that FIN's end, answers a segment with payload beyond what that side
    acknowledged, acknowledging up to ``seq``. If the other side's segments read so far hold
    none (no payload acknowledging up to ``seq``, or none beyond the resetting side's last
    acknowledgement), that segment is late (captures merged from two taps whose clocks
    differ), unless the other side ended (no payload can come). A capture of both directions
    at one point sees the segment before the reset that answers it: nothing waits there
    (unless the capture lost the segment: the wait then ends with the causal window)."""
    half = flow.halves[d]
    fin = half.fin_off
    other = flow.halves[1 - d]
    if fin is None or half.base is None or other.ended:
        return False
    if ((half.base + fin + 1 - seq) & _MASK) >= _HALF:
        return False                    # past its FIN: it answers nothing of this conversation
    a, end = flow.data_ack[1 - d], flow.data_end[1 - d]
    if a is None or end is None or 0 < ((seq - a) & _MASK) < _ACK_SANE:
        return True
    acked = other.ack_seq
    return acked is not None and not 0 < ((end - acked) & _MASK) < _ACK_SANE


def _answers(seq: int, acked: int | None, d: int, hd: int, hs: TcpSegment) -> bool:
    """Whether segment ``hs`` of direction ``hd`` may be the one a reset without ACK of
    direction ``d`` at ``seq`` answers (``_unanswered``): the other direction's, with payload
    beyond ``acked`` (what the resetting side acknowledged), acknowledging up to ``seq``."""
    if hd == d or not (hs.payload or hs.missing) or not hs.flags & _ACK \
            or 0 < ((seq - hs.ack) & _MASK) < _ACK_SANE:
        return False
    end = hs.seq + len(hs.payload) + hs.missing
    return acked is None or 0 < ((end - acked) & _MASK) < _ACK_SANE


def _answered(held: list[tuple[int, TcpSegment]], seq: int, acked: int | None, d: int) -> bool:
    """Whether a held segment is the one a reset without ACK of direction ``d`` at ``seq``
    answers (``_answers``; ``acked``: how far the other side's bytes were acknowledged)."""
    for hd, hs in held:
        if _answers(seq, acked, d, hd, hs):
            return True
    return False


def _after_held_reset(held: list[tuple[int, TcpSegment]], d: int, seg: TcpSegment,
                      nxt: int) -> bool:
    """Whether segment ``seg`` of direction ``d`` comes after a held reset of the other side
    (``_after_reset``; ``nxt``: the next byte of ``d`` to deliver)."""
    for hd, hs in held:
        if hd != d and hs.flags & _RST and _after_reset(seg, hs, nxt):
            return True
    return False


def _fin_held(held: list[tuple[int, TcpSegment]], d: int, ack: int) -> int:
    """1 when a FIN of direction ``d`` that ``ack`` acknowledges (the FIN's own sequence number
    is the last one acknowledged) waits in ``held``: the last byte ``ack`` covers is that FIN,
    not data; else 0."""
    for h in held:
        s = h[1]
        if h[0] == d and s.flags & _FIN and (
                (s.seq + len(s.payload) + s.missing + 1 - ack) & _MASK) == 0:
            return 1
    return 0


def _first_of(held: list[tuple[int, TcpSegment]], d: int) -> int:
    """The position of the first held segment of direction ``d`` (one is held)."""
    for j, h in enumerate(held):
        if h[0] == d:
            return j
    raise ValueError(d)


def _data_end(seg: TcpSegment) -> int | None:
    """The sequence number after a data segment's bytes (the captured and the missing ones);
    None for a SYN, FIN or reset, which keep their place in the hold, and for a segment without
    bytes."""
    if seg.flags & (_SYN | _FIN | _RST):
        return None
    n = len(seg.payload) + seg.missing
    return (seg.seq + n) & _MASK if n else None


def _sent_before(held: list[tuple[int, TcpSegment]], d: int, seg: TcpSegment) -> bool:
    """Whether data segment ``seg`` of direction ``d``, captured after held segments of its own
    direction, was sent before all of them: its bytes end at or below each one's sequence
    number (a pure ACK or data sent after those bytes). Its direction was reordered on the way
    to the capture (a network path, a tap aggregating links): it need not wait behind them,
    and when it acknowledges nothing not delivered it declares no gap. A SYN, FIN or reset
    keeps its place."""
    end = _data_end(seg)
    if end is None:
        return False
    return all(((hs.seq - end) & _MASK) < _ACK_SANE for hd, hs in held if hd == d)


def _before_own_end(held: list[tuple[int, TcpSegment]], d: int, seg: TcpSegment) -> int | None:
    """Where data segment ``seg`` of direction ``d``, which must wait behind its side's held
    segments (``_sent_before`` is false: some were sent before it), goes in the hold when a
    reset or FIN of its side held after those was sent after it: before that end (the first
    of the trailing run of its side's held segments whose sequence numbers are at or past its
    bytes' end), so the end does not close the conversation ahead of bytes sent before it (a
    reset that overtook its side's last reply on the way to the capture, while the hold waits
    for the other side). None: it goes last."""
    end = _data_end(seg)
    if end is None:
        return None
    pos = None
    for j in range(len(held) - 1, -1, -1):
        hd, hs = held[j]
        if hd != d:
            continue
        if ((hs.seq - end) & _MASK) >= _ACK_SANE:
            break
        if hs.flags & (_FIN | _RST):
            pos = j
    return pos


def _waits(flow: Flow, d: int, s: TcpSegment) -> bool:
    """Whether held segment ``s`` of direction ``d`` still waits: for bytes of the other side
    it acknowledges and that were not delivered, or (a reset without ACK) for the segment it
    answers (``_unanswered``), or (a reset past its side's bytes) for bytes of its own side
    (``HalfStream.reset_past``)."""
    if s.flags & _RST and flow.halves[d].reset_past(s.seq, s.ttl):
        return True
    if s.flags & _ACK:
        first = flow.first_for
        if first is not None and first[1] is s:
            return True
        peer = flow.halves[1 - d]
        nxt = peer.next_known()
        return nxt is not None and 0 < ((s.ack - nxt) & _MASK) < _ACK_SANE and not peer.ended
    return bool(s.flags & _RST) and _unanswered(flow, d, s.seq)


def _unseen(h: HalfStream) -> bool:
    """Whether nothing of side ``h`` is in the capture so far (no SYN, byte, FIN, RST or pure
    ACK, neither before the conversation was known to be SMTP): a segment of the other side
    with ACK then waits for its first segment (``TcpReassembler._flow_segment``), which says
    which of the two came first (a capture that starts late, or two taps merged whose clocks
    differ, can show a segment before the bytes of the other side it acknowledges: nothing
    else tells where that side's bytes start)."""
    return (h.base is None and h.hint is None and not h.captured and not h.syn_seen
            and not h.last_frame)


def _awaited(held: list[tuple[int, TcpSegment]], halves: tuple[HalfStream, HalfStream],
             d: int, s: TcpSegment, end: int | None = None) -> int | None:
    """The index of a held segment of the other direction that held segment ``s`` (direction
    ``d``, waiting) waits for: one that carries the bytes it acknowledges (``_carrier``), or,
    for a reset without ACK, the segment it answers (``_answers``); None when what it waits
    for is held nowhere. ``end``: ``Flow.held_end`` of the other direction, when known."""
    if s.flags & _ACK:
        nxt = halves[1 - d].next_known()
        return None if nxt is None else _carrier(held, d, nxt, s.ack, end)
    seq, acked = s.seq, halves[1 - d].ack_seq
    return next((j for j, (hd, hs) in enumerate(held) if _answers(seq, acked, d, hd, hs)), None)


_key = text_key


def _flow_closed(flow: Flow, reason: str, ts: int) -> FlowClosed:
    """The ``FlowClosed`` of ``flow`` as its two sides stand now: at its close
    (``TcpReassembler._close``), or while it is open (``TcpReassembler.so_far``, the same
    values)."""
    h0, h1 = flow.halves
    client, server = (h0, h1) if flow.sides[0] is Side.CLIENT else (h1, h0)
    return FlowClosed(flow.info.stream, reason, ts, client.acked_offset(), server.acked_offset(),
                      client.last_ts or None, server.last_ts or None,
                      client.resent_end, server.resent_end, server.acked_ts or None,
                      server.acked_fin, server.acked_frame)


class TcpReassembler:
    """Feed TcpSegments in capture order; get FlowEvents in capture order.

    For each candidate flow the events start with ``FlowOpened`` and end with ``FlowClosed``.
    Malformed traffic never raises."""

    def __init__(self, config: ReassemblyConfig = ReassemblyConfig()) -> None:
        self.config = config
        self.stats = ReassemblyStats()
        #: the stream-numbering table (tcp/streams.py): public for a caller that classifies
        #: raw segments itself (``StreamTable.classify``) before building a segment
        self.table = StreamTable(config, self.stats,
                                 may_matter if config.detect_by_content else None)
        self._flows: OrderedDict[int, Flow] = OrderedDict()   # by stream index, LRU order
        self._pending: dict[_Key, _Conv] = {}       # undecided by content, oldest first
        self._ports = config.smtp_ports
        #: segments until the next idle sweep; a caller that counts segments itself
        #: (``skipped``) decrements it too
        self.countdown = config.idle_check_every
        self._last_ts = 0
        self._partition = config.partition
        #: conversations closed by a reset whose resetting side is watched (``_ResetWatch``), by
        #: 4-tuple, in the order of their resets; shared with the table (``StreamTable.watched``)
        self._watch: dict[_Key, _ResetWatch] = self.table.watched

    def _mine(self, seg: TcpSegment) -> bool:
        """The partition hook: is this conversation followed by this reassembler? Asked once
        per conversation, where an undecided one would become a candidate (or a watched
        tunnel); a conversation of another bucket is treated from then on as not SMTP."""
        part = self._partition
        return part is None or flow_bucket(seg.src, seg.sport, seg.dst, seg.dport,
                                           part[1]) == part[0]

    # -- public ---------------------------------------------------------------------------
    @property
    def tracked(self) -> int:
        """Light entries held now (<= max_tracked)."""
        return len(self.table)

    @property
    def active_flows(self) -> int:
        """Candidate flows open now (<= max_flows)."""
        return len(self._flows)

    def so_far(self, stream: int) -> FlowClosed | None:
        """For a flow still open: the ``FlowClosed`` its close would carry now (``reason``
        "open", ``ts_ns`` the time of its last segment): each side's last segment time, how far
        each side acknowledged the other and when that last advanced, and how far each side
        sent bytes again; None when ``stream`` has no open flow. (An early verdict, in live mode,
        is judged before that close.)"""
        flow = self._flows.get(stream)
        if flow is None:
            return None
        return _flow_closed(flow, "open", flow.last_ts)

    def stream_of(self, src: str, sport: int, dst: str, dport: int) -> int | None:
        """The tcp.stream index the 4-tuple maps to now (None if unknown or evicted)."""
        key: _Key = _key(src, sport, dst, dport)[0]
        v = self.table.get(key)
        if v is None:               # a table fed with KeyedSegments
            try:
                a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
            except ValueError:
                return None
            v = self.table.get(int_key(int(a), sport, int(b), dport, a.version == 6)[0])
            if v is None:
                return None
        if isinstance(v, int):
            return (v >> _S_SHIFT) & _M40
        return v.stream

    def feed(self, seg: TcpSegment) -> list[FlowEvent]:
        """Process one segment; returns the events it caused (often none)."""
        self.stats.segments += 1
        self._last_ts = seg.ts_ns
        self.countdown -= 1
        out: list[FlowEvent] = []
        if self.countdown <= 0:
            self.countdown = self.config.idle_check_every
            if self._flows:
                self._sweep_idle(seg.ts_ns, out)
            if self._watch:
                self._watch_until(seg.ts_ns, out)
        self._segment(seg, out)
        return out

    def skipped(self, n: int, last_ts: int | None) -> None:
        """``n`` segments were handled by ``table.classify`` alone (``SKIPPED``), the last at
        ``last_ts`` (None: no change): count them as ``feed`` would. The caller keeps
        ``countdown`` itself (one less per segment, fed or not)."""
        self.stats.segments += n
        if last_ts is not None:
            self._last_ts = last_ts

    @property
    def clock_ns(self) -> int | None:
        """The newest capture timestamp seen at a conversation's creation or close (None
        before the first)."""
        return self.table.clock_ns

    def earliest_pending_frame(self, stale_before_ns: int | None = None) -> int | None:
        """The first frame of the earliest conversation that may still become (or is) an SMTP
        candidate: open flows, watched tunnels and undecided light entries. None if there is
        none. A conversation numbered later starts at a later frame. O(light entries).

        With ``stale_before_ns``, undecided conversations (no payload yet) that began before
        it are left out: one that stays silent (a stray ACK, the ACK-only direction of an
        asymmetric route, a keepalive) would otherwise hold back every later conversation.
        If such a one does turn into SMTP later, its result comes after later ones."""
        best: int | None = None
        stale = stale_before_ns
        for table in (self.table.young, self.table.old):
            for v in table.values():
                if isinstance(v, int):
                    if v & _ST != _UNDECIDED:
                        continue
                    if stale is not None and v >> _T_SHIFT < stale:
                        continue
                    f = (v >> _F_SHIFT) & _M48
                elif v.state == _UNDECIDED or v.state == _TUNNEL or v.state == _PENDING:
                    if stale is not None and v.state == _UNDECIDED and v.first_ts < stale:
                        continue
                    f = v.first_frame
                elif v.state == _FLOW and v.flow is not None:
                    f = v.flow.info.first_frame
                else:
                    continue
                if best is None or f < best:
                    best = f
        for flow in self._flows.values():       # (an evicted light entry's flow is closed)
            f = flow.info.first_frame
            if best is None or f < best:
                best = f
        for w in self._watch.values():          # closed by a reset, not concluded yet
            f = w.first_frame
            if best is None or f < best:
                best = f
        return best

    def tick(self, now_ns: int) -> list[FlowEvent]:
        """Close the flows idle since before ``now_ns - idle_timeout_ns``, and hand on the
        segments that waited for the other side's bytes past the causal window (for live
        capture, where time passes without segments); a conversation held for the client's
        handshake ACK (``_Pending.awaits``) waits no longer than the causal window either; the
        watches after a reset whose time is up end (``SentAfterReset``, ``FlowClosed``)."""
        out: list[FlowEvent] = []
        if self._watch:
            self._watch_until(now_ns, out)
        if self._pending:
            late = now_ns - self.config.causal_window_ns
            for key, conv in [kv for kv in self._pending.items()
                              if kv[1].pending is not None and kv[1].pending.awaits is not None]:
                p = conv.pending
                if p is not None and p.segs and p.segs[0][1].ts_ns <= late:
                    p.awaits = None
                    self._pending_decide(key, conv, False, out)
        if self._flows:
            self._sweep_idle(now_ns, out)
            late = now_ns - self.config.causal_window_ns
            for flow in self._flows.values():
                for h in flow.halves:
                    if h.soft and h.soft_ts <= late:
                        h.settle(out)       # a late start's first bytes waited long enough
            for flow in [f for f in self._flows.values() if f.held]:
                if self._flows.get(flow.info.stream) is flow:
                    self._release(flow, now_ns, out)
                    # (what went may have made a side soft whose first segment waited as long)
                    if self._flows.get(flow.info.stream) is flow and any(
                            h.soft and h.soft_ts <= late for h in flow.halves):
                        for h in flow.halves:
                            if h.soft and h.soft_ts <= late:
                                h.settle(out)
                        if flow.held:
                            self._release(flow, now_ns, out)
        return out

    def number(self, seg: TcpSegment) -> int:
        """Feed ``seg`` and return its tcp.stream index, dropping the events (for callers
        that only want the numbering)."""
        self.feed(seg)
        s = self.stream_of(seg.src, seg.sport, seg.dst, seg.dport)
        return -1 if s is None else s

    def finish(self) -> list[FlowEvent]:
        """End of capture: every open flow is flushed (holes before known data become gaps,
        sides without FIN/RST end truncated) and closed with reason "end"; every watch after a
        reset ends (its conversation's ``FlowClosed`` comes)."""
        out: list[FlowEvent] = []
        for key, conv in list(self._pending.items()):
            self._pending_decide(key, conv, True, out)
        for flow in list(self._flows.values()):
            if flow.held:       # (may close it: FIN both ways)
                self._release(flow, self._last_ts, out, force=True)
            if self._flows.get(flow.info.stream) is flow:
                self._close(flow, "end", self._last_ts, out)
        watch = self._watch
        while watch:
            watch.pop(next(iter(watch))).events(out)
        return out

    # -- the per-segment path ---------------------------------------------------------------
    def _segment(self, seg: TcpSegment, out: list[FlowEvent]) -> None:
        key: _Key
        if seg.__class__ is KeyedSegment:
            ks: KeyedSegment = seg      # type: ignore[assignment]
            key = ks.key
            d = ks.d
        else:
            src = seg.src
            sport = seg.sport
            dst = seg.dst
            dport = seg.dport
            if sport < dport or (sport == dport and src < dst):
                key = (src, dst, sport << 16 | dport)
                d = 0
            else:
                key = (dst, src, dport << 16 | sport)
                d = 1
        young = self.table.young
        v = young.get(key)
        if v is None:
            table = self.table
            v = table.old.pop(key, None)
            if v is None:
                v = self._new_entry(key, seg, out)     # (may turn the young generation old)
            table.young[key] = v
        flags = seg.flags
        if v.__class__ is int:
            # packed: undecided, ignored or closed
            if v & _FAST_MASK == _FAST_IGNORED and not flags & _SYN_FIN_RST:
                return          # the common case: not SMTP, both directions known, no SYN
            v0 = v
            if d == 0:
                has, sh = _HAS0, _B0
            else:
                has, sh = _HAS1, _B1
            if v & has:
                if flags & _SYN and starts_anew(v, flags, (v >> sh) & _MASK, seg.seq):
                    v = self._reuse(key, seg, None, out) | has | (seg.seq << sh)
            elif v & _ST == _UNDECIDED and stale_for_syn(v, d, flags, seg.ack):
                return      # the old conversation's, after the reuse: numbering work only
            else:
                v |= has | ((seg.seq if flags & _SYN else (seg.seq - 1) & _MASK) << sh)
            state = v & _ST
            if state == _UNDECIDED:
                self._undecided(key, v, v0, d, seg, out)
                return
            if state == _CLOSED:
                self.stats.after_close_segments += 1
                if self._watch:
                    w = self._watch.get(key)
                    if w is not None:
                        if seg.ts_ns > w.deadline:
                            self._end_watch(key, seg.ts_ns, out)
                        elif d == w.d:
                            w.check(seg)
                        else:
                            w.acked(seg)
            elif flags & _FIN_RST:
                v |= _ENDED if flags & _RST else (_FIN0 if d == 0 else _FIN1)
            if v != v0:
                table = self.table
                table.young[key] = v
                if v & _ENDED == _ENDED:
                    table.ended(key, v, seg.ts_ns)
            return
        conv: _Conv = v     # type: ignore[assignment]
        if flags & _SYNACK == _SYN:
            base = conv.base0 if d == 0 else conv.base1
            if base is not None and base != seg.seq:
                v = self._reuse(key, seg, conv, out) | (_HAS0 | (seg.seq << _B0) if d == 0
                                                         else _HAS1 | (seg.seq << _B1))
                self._undecided(key, v, -1, d, seg, out)
                return
        if d == 0:
            if conv.base0 is None:
                conv.base0 = seg.seq if flags & _SYN else (seg.seq - 1) & _MASK
        elif conv.base1 is None:
            conv.base1 = seg.seq if flags & _SYN else (seg.seq - 1) & _MASK
        if conv.state == _FLOW:
            flow = conv.flow
            assert flow is not None
            self._flow_segment(flow, d, seg, out)
        elif conv.state == _TUNNEL:
            self._tunnel_segment(key, conv, d, seg, out)
        elif conv.state == _PENDING:
            self._pending_segment(key, conv, d, seg, out)
        else:
            self.stats.after_close_segments += 1

    def _new_entry(self, key: _Key, seg: TcpSegment,
                   out: list[FlowEvent]) -> int:
        """A new conversation: the next stream index, as a packed undecided entry (not yet
        inserted). First forgets the closed entries past their grace, then evicts an
        old-generation entry if the table is still full."""
        table = self.table
        if self._watch and key in self._watch:
            # the 4-tuple's closed entry was forgotten: its watch ends too
            self._end_watch(key, seg.ts_ns, out)
        table.creation_time(seg.ts_ns)
        victim = table.make_room()
        if victim is not None and not isinstance(victim, int) and victim.state == _PENDING:
            self._pending.pop(victim.key, None)
        if victim is not None and not isinstance(victim, int) and victim.flow is not None:
            self.stats.flows_evicted += 1
            self._close(victim.flow, "evicted", seg.ts_ns, out)
        return table.new_stream(seg.frame, seg.ts_ns)

    def _reuse(self, key: _Key, seg: TcpSegment, conv: _Conv | None,
               out: list[FlowEvent]) -> int:
        """A SYN with a new ISN took the 4-tuple: the old conversation ends (its flow closes
        "reused"), a new one starts. Returns the new packed entry (the caller stores it)."""
        self.stats.reused += 1
        if self._watch and key in self._watch:
            self._end_watch(key, seg.ts_ns, out)    # the old conversation's watch ends with it
        if conv is not None and conv.state == _PENDING:
            self._pending.pop(key, None)
        if conv is not None and conv.flow is not None:
            self._close(conv.flow, "reused", seg.ts_ns, out)
        self.table.young.pop(key, None)     # the key stays where it was: re-inserted by caller
        return self.table.new_stream(seg.frame, seg.ts_ns)

    def _undecided(self, key: _Key, v: int, v0: int, d: int, seg: TcpSegment,
                   out: list[FlowEvent]) -> None:
        """A segment of a conversation not decided yet: remember the handshake, decide at the
        first payload. ``v``: the packed entry with the bases set, ``v0``: the one in the
        table (-1 if none): ``v`` is stored only if it differs."""
        flags = seg.flags
        if flags & _SYN:
            if flags & _ACK:
                if (v >> (_B0 if d == 0 else _B1)) & _MASK == seg.seq:
                    v |= _SA0 if d == 0 else _SA1
            else:
                v |= _SYN0 if d == 0 else _SYN1
        payload = seg.payload
        if flags & _ACK:
            v = note_start(v, d, flags, seg.seq, seg.ack, bool(payload or seg.missing))
        if (payload or seg.missing) and refutes_ack_start(v, d, flags, seg.seq):
            v = forget_ack_start(v)     # that "handshake ACK" acknowledged these bytes
        ports = self._ports
        port_cand = seg.sport in ports or seg.dport in ports
        if payload or seg.missing:
            detect = self.config.detect_by_content
            mine = self._partition is None or self._mine(seg)
            # the other side's handshake ACK, still to come, may tell where this side starts;
            # or the other side's SYN-ACK, which this segment acknowledges, where that one does
            awaits = v0 != -1 and start_awaits_ack(v0, d, flags)
            peer = not awaits and synack_awaited(v, d, flags)
            if port_cand and mine and (awaits or peer):
                self._hold(key, v, d, seg, out, True, port=True, peer=peer)
                return
            if port_cand and mine:
                conv = _Conv(key, v)
                self.table.young[key] = conv
                flow = self._open(conv, d, seg, is_smtp_start(payload) if detect else None, out)
                self._flow_segment(flow, d, seg, out)
                return
            if detect and mine:
                # decided now when this payload is the start of its direction and says enough
                if first_payload_late(v, d, flags, seg.seq, seg.ack):
                    cls = START_MORE                # earlier bytes are late
                elif awaits:
                    cls = START_MORE                # where it starts is still to be told
                else:
                    cls = classify_start(payload[:HEAD_BYTES])
                    if peer and (cls == START_SERVER or cls == START_CLIENT):
                        # SMTP: where the other side starts is still to be told (its SYN-ACK);
                        # anything else is decided now (``classify`` feeds only bytes that
                        # could start SMTP, so it agrees)
                        cls = START_MORE
                if cls == START_SERVER or cls == START_CLIENT:
                    conv = _Conv(key, v)
                    self.table.young[key] = conv
                    flow = self._open(conv, d, seg,
                                      Side.SERVER if cls == START_SERVER else Side.CLIENT, out)
                    self._flow_segment(flow, d, seg, out)
                    return
                if cls == START_TUNNEL and not seg.missing:
                    conv = _Conv(key, v)
                    conv.state = _TUNNEL
                    conv.tunnel = _Tunnel(d, conv)
                    self.table.young[key] = conv
                    self._tunnel_segment(key, conv, d, seg, out)
                    return
                if cls == START_MORE or (cls == START_TUNNEL and seg.missing):
                    self._hold(key, v, d, seg, out, awaits or peer, peer=peer)
                    return
            v = (v & _KEEP_IGNORED) | _IGNORED | (((v >> _S_SHIFT) & _M40) << _S_SHIFT)
        elif port_cand and flags & _FIN_RST and (self._partition is None or self._mine(seg)):
            conv = _Conv(key, v)
            self.table.young[key] = conv
            flow = self._open(conv, d, seg, None, out)
            self._flow_segment(flow, d, seg, out)
            return
        if flags & _FIN_RST:
            v |= _ENDED if flags & _RST else (_FIN0 if d == 0 else _FIN1)
        if v != v0:
            self.table.young[key] = v
            if v & _ENDED == _ENDED:
                self.table.ended(key, v, seg.ts_ns)

    def _hold(self, key: _Key, v: int, d: int, seg: TcpSegment, out: list[FlowEvent],
              awaits: bool, port: bool = False, peer: bool = False) -> None:
        """Hold the conversation (packed entry ``v``, with ``seg``'s bits) until its first
        bytes decide (``_Pending``), ``seg`` first. ``awaits``: nothing decides before the
        other side's next segment, which may be its handshake ACK (``start_awaits_ack``), or
        with ``peer`` its SYN-ACK, which tells where that side starts (``synack_awaited``);
        ``port``: an SMTP port's conversation held only for that."""
        conv = _Conv(key, v)
        conv.state = _PENDING
        conv.pending = p = _Pending()
        for dd, st in enumerate(conv.starts()):
            if st is not None:
                p.start[dd] = st
                p.fixed[dd] = True
        p.port = port
        if peer:
            p.awaits = 1 - d
            p.own = True
        elif awaits:
            p.awaits = d
        self.table.young[key] = conv
        pend = self._pending
        if len(pend) >= self.config.max_pending:
            okey = next(iter(pend))
            self._pending_decide(okey, pend[okey], True, out)
        pend[key] = conv
        if not port:
            self.stats.pending += 1
        self._pending_segment(key, conv, d, seg, out)

    def _set(self, key: _Key, conv: _Conv, value: int | _Conv) -> bool:
        """Replace ``conv``'s table entry (if it still has one) by ``value``; False if it had
        none."""
        return self.table.replace(key, conv, value)

    # -- tunnels ------------------------------------------------------------------------------
    def _tunnel_segment(self, key: _Key, conv: _Conv, d: int, seg: TcpSegment,
                        out: list[FlowEvent]) -> None:
        t = conv.tunnel
        assert t is not None
        flags = seg.flags
        if flags & _FIN_RST:
            conv.fins |= _ENDED if flags & _RST else (_FIN0 if d == 0 else _FIN1)
        payload = seg.payload
        if flags & _SYN:
            if flags & _ACK:
                if d == 0:
                    if conv.synack0 is None:
                        conv.synack0 = seg.seq
                elif conv.synack1 is None:
                    conv.synack1 = seg.seq
            elif d == 0:
                if conv.syn0 is None:
                    conv.syn0 = seg.seq
            elif conv.syn1 is None:
                conv.syn1 = seg.seq
            return
        if payload:
            if seg.missing or t.nbytes + len(payload) > 2 * self.config.tunnel_limit:
                self._tunnel_give_up(key, conv, seg.ts_ns)
                return
            seq = seg.seq
            st = t.start[d]
            if st is None:
                t.start[d] = seq
            elif not t.fixed[d] and 0 < ((st - seq) & _MASK) <= 0xFFFF:
                t.start[d] = seq                # earlier bytes of this side came late
            t.segs.append((d, seg))
            t.nbytes += len(payload)
            c = t.prefix(t.cdir)
            if not c:
                return                          # the request's first bytes are late
            status, cend, send = parse_tunnel(c, t.prefix(1 - t.cdir))
            if status == TUNNEL_FAILED:
                self._tunnel_give_up(key, conv, seg.ts_ns)
                return
            if status == TUNNEL_OPEN:
                self._tunnel_open(conv, t, cend, send, d, seg, out)
                return
        if flags & (_FIN | _RST):
            self._tunnel_give_up(key, conv, seg.ts_ns)

    def _pending_segment(self, key: _Key, conv: _Conv, d: int, seg: TcpSegment,
                         out: list[FlowEvent]) -> None:
        p = conv.pending
        assert p is not None
        flags = seg.flags
        seq = seg.seq
        told = False
        if flags & _FIN_RST:
            conv.fins |= _ENDED if flags & _RST else (_FIN0 if d == 0 else _FIN1)
        if flags & _SYN:
            if flags & _ACK:
                if d == 0:
                    if conv.synack0 is None:
                        conv.synack0 = seq
                elif conv.synack1 is None:
                    conv.synack1 = seq
            elif d == 0:
                if conv.syn0 is None:
                    conv.syn0 = seq
            elif conv.syn1 is None:
                conv.syn1 = seq
            if not p.fixed[d] and p.start[d] is None:
                p.start[d] = (seq + 1) & _MASK
                p.fixed[d] = True
            seq = (seq + 1) & _MASK
            if flags & _ACK and p.awaits == d:
                p.awaits = None                 # its SYN-ACK: no ACK needed to tell
                told = p.own
                if told and not p.fixed[1 - d]:
                    # it acknowledges the other side's ISN+1, where that side starts, also
                    # when its SYN is not in the capture (``tcp.streams.note_start``)
                    conv.acked = (1 - d, seg.ack)
                    p.move_start(1 - d, seg.ack)
                    p.fixed[1 - d] = True
        acked = conv.acked
        if (acked is not None and acked[0] == d and (seg.payload or seg.missing)
                and not flags & _SYN and (conv.syn1 if d == 0 else conv.syn0) is not None
                and (conv.synack1 if d == 0 else conv.synack0) is None
                and 0 < ((acked[1] - seq) & _MASK) <= 0xFFFF):
            # bytes before the start the other side's handshake ACK gave: that ACK
            # acknowledged them, it was no handshake ACK (``tcp.streams.refutes_ack_start``)
            conv.acked = None
            p.fixed[d] = False
        if (p.awaits is not None and p.segs
                and seg.ts_ns - p.segs[0][1].ts_ns >= self.config.causal_window_ns):
            # the handshake ACK is awaited as long as any late segment of the other tap (the
            # causal window, as ``tick`` does in live capture): past it, nothing tells
            p.awaits = None
            told = True
        aw = p.awaits
        if aw is not None and p.own:
            if aw == d:
                # its first segment is no SYN-ACK (that one is not in the capture): nothing
                # will tell where it starts
                p.awaits = None
                told = True
        elif aw == d:
            if p.low is None or ((seq - p.low) & _MASK) >= _HALF:
                p.low = seq
        elif aw is not None and not flags & _SYN:
            # the other side's first segment since its SYN (each direction keeps its order):
            # its handshake ACK if it is one (``tcp.streams.note_start``, and acknowledging
            # none of the bytes seen of this side), else nothing will tell
            isn = conv.syn0 if d == 0 else conv.syn1
            if (flags & (_ACK | _FIN_RST) == _ACK and not seg.payload and not seg.missing
                    and isn is not None and seq == (isn + 1) & _MASK
                    and (p.low is None or ((p.low - seg.ack) & _MASK) < _ACK_SANE)):
                conv.acked = (aw, seg.ack)
                p.move_start(aw, seg.ack)
                p.fixed[aw] = True
            p.awaits = None
            told = True
        p.segs.append((d, seg))
        payload = seg.payload
        p.nbytes += len(payload)
        pst = p.start[1 - d]
        if flags & _ACK and pst is not None and 0 < ((seg.ack - pst) & _MASK) < _ACK_SANE:
            p.late[1 - d] = True                # the other side sent bytes before this ACK
        if payload:
            p.late[d] = True
        if seg.missing:
            p.cut = True
        if payload:
            p.add(d, seq, payload)
        cfg = self.config
        if p.port:
            # held only until the other side's next segment tells where a side starts: a
            # causal wait, bounded in segments as a flow's (``_flow_segment``; a first flight
            # cut in 1-byte segments), in bytes by a quarter of its (a one-sided capture holds
            # every conversation that long)
            full = (len(p.segs) >= cfg.max_held_segments
                    or p.nbytes >= cfg.max_ooo_bytes // 4)
        else:
            full = len(p.segs) >= cfg.detect_segments or p.nbytes >= cfg.detect_bytes
        final = full or bool(flags & _FIN_RST)
        if final and not full and p.own and p.awaits is not None and d != p.awaits:
            # this side's close does not end the wait for the other side's first segment (the
            # other tap's, late): only the window and the bounds do
            final = False
        if payload or final or told:
            self._pending_decide(key, conv, final, out)

    def _pending_decide(self, key: _Key, conv: _Conv, final: bool,
                        out: list[FlowEvent]) -> None:
        """Decide a pending conversation if a direction's first bytes say enough (``final``:
        no more bytes will be waited for): open it (SMTP), watch it (tunnel) or ignore it,
        replaying the held segments in capture order. Nothing decides while the other side's
        handshake ACK may still come (``_Pending.awaits``), unless ``final``; a conversation
        on an SMTP port held only for that then opens, as it would have at its first payload
        had that ACK been seen first."""
        p = conv.pending
        assert p is not None
        if p.awaits is not None and not final:
            return
        if p.port:
            self._pending.pop(key, None)
            conv.pending = None
            fd, first = p.segs[0]
            detect = self.config.detect_by_content
            self._open(conv, fd, first, is_smtp_start(first.payload) if detect else None, out)
            for sd, s in p.segs:
                if conv.state != _FLOW or conv.flow is None:
                    break
                self._flow_segment(conv.flow, sd, s, out)
            return
        classes = [classify_start(p.prefix(dd), final) if p.start[dd] is not None
                   else START_MORE if not final else START_OTHER for dd in (0, 1)]
        smtp = [dd for dd in (0, 1) if classes[dd] in (START_SERVER, START_CLIENT)]
        # a side whose first bytes are still to come (late, or cut small) may decide yet
        waiting = any(classes[dd] == START_MORE and p.late[dd] for dd in (0, 1))
        if smtp:
            dd = smtp[0]
            content = Side.SERVER if classes[dd] == START_SERVER else Side.CLIENT
        elif START_TUNNEL in classes and not p.cut:
            dd = classes.index(START_TUNNEL)
            content = None
        elif final or (START_OTHER in classes and not waiting):
            self._pending.pop(key, None)
            conv.pending = None
            self._give_up(key, conv, p.segs[-1][1].ts_ns if p.segs else self._last_ts)
            return
        else:
            return
        self._pending.pop(key, None)
        conv.pending = None
        segs = p.segs
        if not segs:
            return
        ld, last = segs[-1]
        if content is not None:
            if ld != dd:                    # _open reads ``content`` for ``last``'s direction
                content = Side.CLIENT if content is Side.SERVER else Side.SERVER
            starts = [None if p.fixed[k] else p.start[k] for k in (0, 1)]
            self._open(conv, ld, last, content, out, starts=(starts[0], starts[1]))
        else:
            conv.state = _TUNNEL
            conv.tunnel = _Tunnel(dd, conv)
        for sd, s in segs:                    # the replay, as if followed from the start
            if conv.state == _FLOW and conv.flow is not None:
                self._flow_segment(conv.flow, sd, s, out)
            elif conv.state == _TUNNEL:
                self._tunnel_segment(key, conv, sd, s, out)
            else:
                break

    def _tunnel_give_up(self, key: _Key, conv: _Conv, ts: int) -> None:
        self._give_up(key, conv, ts)

    def _give_up(self, key: _Key, conv: _Conv, ts: int) -> None:
        """Not SMTP after all: the entry is packed again, ignored (closed if it was)."""
        conv.tunnel = None
        conv.state = _IGNORED
        v = conv.packed(_IGNORED) | conv.fins
        if self._set(key, conv, v) and v & _ENDED == _ENDED:
            self.table.ended(key, v, ts)

    def _tunnel_open(self, conv: _Conv, t: _Tunnel, cend: int, send: int, d: int,
                     seg: TcpSegment, out: list[FlowEvent]) -> None:
        """The proxy handshake is over and the server greets in SMTP: open the flow with each
        side starting at its first tunnelled byte, then replay the segments held, cut to the
        bytes past the handshake, in capture order (the causal order applies to them)."""
        cdir = t.cdir
        starts: list[int | None] = [None, None]
        for dd, end in ((cdir, cend), (1 - cdir, send)):
            st = t.start[dd]
            starts[dd] = None if st is None else (st + end) & _MASK
        conv.tunnel = None
        flow = self._open(conv, d, seg, Side.CLIENT if d == cdir else Side.SERVER, out,
                          tunnel=(cdir, starts[0], starts[1]))
        for dd, s in t.segs:
            st = starts[dd]
            if st is not None and s.payload:
                k = (st - s.seq) & _MASK
                if k < _HALF:                   # it starts in the handshake
                    if k >= len(s.payload):
                        continue
                    s = TcpSegment(s.frame, s.ts_ns, s.src, s.sport, s.dst, s.dport,
                                   (s.seq + k) & _MASK, s.ack, s.flags & ~_SYN, s.payload[k:],
                                   s.missing, s.ttl)
            if conv.flow is not flow:
                break
            self._flow_segment(flow, dd, s, out)

    # -- candidates ---------------------------------------------------------------------------
    def _open(self, conv: _Conv, d: int, seg: TcpSegment, content: Side | None,
              out: list[FlowEvent], tunnel: tuple[int, int | None, int | None] | None = None,
              starts: tuple[int | None, int | None] = (None, None)) -> Flow:
        """Promote an undecided conversation to a candidate flow; ``seg`` (direction ``d``)
        is the segment that decided it. ``tunnel``: (client direction, start sequence number
        of direction 0 and 1) of a proxied conversation. ``starts``: sequence number of the
        first byte of direction 0 and 1 where no SYN says it (found by content detection)."""
        flows = self._flows
        if len(flows) >= self.config.max_flows:
            self.stats.flows_evicted += 1
            self._close(next(iter(flows.values())), "evicted", seg.ts_ns, out)
        ports = self._ports
        # endpoint a is the source of direction 0 (the text addresses come from the segment)
        if d == 0:
            a_ip, a_port, b_ip, b_port = seg.src, seg.sport, seg.dst, seg.dport
        else:
            a_ip, a_port, b_ip, b_port = seg.dst, seg.dport, seg.src, seg.sport
        # client direction: 0 means a -> b is client -> server
        if tunnel is not None:
            cdir, evidence = tunnel[0], "content"
        elif conv.syn0 is not None and conv.syn1 is None:
            cdir, evidence = 0, "syn"
        elif conv.syn1 is not None and conv.syn0 is None:
            cdir, evidence = 1, "syn"
        elif conv.synack1 is not None and conv.synack0 is None:
            cdir, evidence = 0, "syn"
        elif conv.synack0 is not None and conv.synack1 is None:
            cdir, evidence = 1, "syn"
        elif (b_port in ports) != (a_port in ports):
            cdir, evidence = (0 if b_port in ports else 1), "port"
        elif content is not None:
            cdir = d if content is Side.CLIENT else 1 - d
            evidence = "content"
        else:
            cdir, evidence = d, "port"      # both or no port known: the sender is the client
        sdir = 1 - cdir
        client_syn = conv.syn0 if cdir == 0 else conv.syn1
        server_syn = conv.synack0 if sdir == 0 else conv.synack1
        if server_syn is None:
            server_syn = conv.syn0 if sdir == 0 else conv.syn1
        # where each side's stream starts, when TCP says it (``tcp.streams.note_start``)
        begins = conv.starts()
        if tunnel is not None:
            client_start = tunnel[1 + cdir]
            server_start = tunnel[1 + sdir]
        else:
            client_start, server_start = begins[cdir], begins[sdir]
        if cdir == 0:
            client = Endpoint(a_ip, a_port)
            server = Endpoint(b_ip, b_port)
        else:
            client = Endpoint(b_ip, b_port)
            server = Endpoint(a_ip, a_port)
        info = FlowInfo(stream=conv.stream, client=client, server=server,
                        first_frame=conv.first_frame, first_ts_ns=conv.first_ts,
                        side_evidence=evidence,
                        midstream=tunnel is None and (client_start is None
                                                      or server_start is None),
                        handshake_seen=client_syn is not None and server_syn is not None,
                        client_start=client_start, server_start=server_start,
                        both_directions=conv.base0 is not None and conv.base1 is not None)
        cfg = self.config
        sides = (Side.CLIENT, Side.SERVER) if cdir == 0 else (Side.SERVER, Side.CLIENT)
        h0 = HalfStream(conv.stream, sides[0], self.stats, cfg.max_ooo_bytes, cfg.retain_bytes,
                        cfg.detect_segments, cfg.detect_bytes, cfg.causal_window_ns)
        h1 = HalfStream(conv.stream, sides[1], self.stats, cfg.max_ooo_bytes, cfg.retain_bytes,
                        cfg.detect_segments, cfg.detect_bytes, cfg.causal_window_ns)
        if tunnel is not None:
            if tunnel[1] is not None:
                h0.start_at(tunnel[1])
            if tunnel[2] is not None:
                h1.start_at(tunnel[2])
        else:
            s0 = conv.syn0 if conv.syn0 is not None else conv.synack0
            s1 = conv.syn1 if conv.syn1 is not None else conv.synack1
            if s0 is not None:
                h0.syn(s0)
            elif begins[0] is not None:
                h0.start_at(begins[0])      # bytes before it do not exist
            if s1 is not None:
                h1.syn(s1)
            elif begins[1] is not None:
                h1.start_at(begins[1])
            if starts[0] is not None:
                h0.start_at(starts[0])
            if starts[1] is not None:
                h1.start_at(starts[1])
        # a segment of each direction before this one (a pure ACK, say) puts it in the capture
        h0.captured = conv.base0 is not None
        h1.captured = conv.base1 is not None
        # (its next byte as its first segment said, for the causal wait: ``HalfStream.hint``)
        if h0.base is None and conv.base0 is not None:
            h0.note_ack(conv.base0 + 1)
        if h1.base is None and conv.base1 is not None:
            h1.note_ack(conv.base1 + 1)
        flow = Flow(info, conv, (h0, h1), sides)
        conv.flow = flow
        conv.state = _FLOW
        conv.syn0 = conv.syn1 = conv.synack0 = conv.synack1 = None
        conv.acked = None
        flows[conv.stream] = flow
        self.stats.candidates += 1
        out.append(FlowOpened(info))
        return flow

    def _flow_segment(self, flow: Flow, d: int, seg: TcpSegment, out: list[FlowEvent]) -> None:
        """A segment of a candidate, in causal order between the two directions: a segment
        that acknowledges bytes of the other side not seen yet waits for them (they are late:
        captures merged from two taps, ``-i any`` on a multi-queue NIC), at most
        ``causal_window_ns`` of capture time, or until the segments held are more than
        ``max_held_segments`` or hold more than ``max_ooo_bytes``; then the bytes still missing
        are a gap. The later segments
        of its side wait behind it (``_release``: each direction keeps its order)."""
        self._flows.move_to_end(flow.info.stream)
        flow.last_ts = seg.ts_ns
        flow.last_frame = seg.frame
        flags = seg.flags
        if flags & _RST and _reset_out_of_window(flow.halves[d], seg.seq):
            self.stats.ignored_resets += 1
            return          # dropped by the receiver's stack: the conversation goes on
        if flow.rst_held and flow.held and flags & (_SYN_FIN_RST | _ACK) == _ACK:
            j = _dropped_reset(flow, d, seg)
            if j >= 0:
                # a reset past its side's bytes that its side's next bytes sent after it or the
                # receiver's challenge ACK show was dropped (RFC 5961 3.2): it ends nothing and
                # proves no bytes sent; the segments held behind it go on, before this one
                e, dropped = flow.held.pop(j)[:2]
                flow.nheld[e] -= 1
                flow.held_bytes -= len(dropped.payload)     # (a reset may carry text)
                if e != d:
                    # the receiver's pure ACK alone: dropped once the conversation goes on
                    flow.challenged.append((e, dropped, seg.frame))
                else:
                    self.stats.ignored_resets += 1
                self._release(flow, seg.ts_ns, out)
                if self._flows.get(flow.info.stream) is not flow:
                    return
        peer = flow.halves[1 - d]
        if peer.soft and (seg.payload or seg.missing or flags & _FIN_RST):
            # the other side's start was the lowest of its segments seen so far (a late
            # start): it starts there, its bytes before this one's (HalfStream.soft). (A pure
            # ACK of its bytes waits for them, as any segment acknowledging bytes not
            # delivered: earlier ones may still come, the ACK does not say where they begin)
            peer.settle(out)
            if flow.held:
                # the held segments' wait may be over (they go before this one, which may
                # be behind them)
                self._release(flow, seg.ts_ns, out)
                if self._flows.get(flow.info.stream) is not flow:
                    return
        first = flow.first_for
        if first is not None and first[0] != d:
            # the first segment of a side a segment of the other waits for (``_unseen``): it
            # goes before that one when that one acknowledges bytes from its sequence number
            # on (it was acknowledged, or was sent before bytes that were), unless it
            # acknowledges bytes of that one itself (the two contradict each other: capture
            # order); else after it
            flow.first_for = None
            h = first[1]
            hn = len(h.payload) + h.missing
            if not (0 < ((h.ack - seg.seq) & _MASK) < _ACK_SANE) or (
                    hn and flags & _ACK and 0 < ((seg.ack - h.seq) & _MASK) < _ACK_SANE):
                self._release(flow, seg.ts_ns, out)
                if self._flows.get(flow.info.stream) is not flow:
                    return
        held = flow.held
        if flags & _ACK:
            # ahead of the other side: wait for its bytes
            nxt = peer.next_seq if peer.base is not None else peer.hint     # (next_known)
            if nxt is not None:
                wait = 0 < ((seg.ack - nxt) & _MASK) < _ACK_SANE and not peer.ended
            else:
                # nothing of the other side in the capture yet: the first segment of this side
                # with ACK waits for the other's first one (``_unseen``)
                wait = (flow.first_for is None and not flow.blind and not flow.nheld[1 - d]
                        and _unseen(peer))
                if wait:
                    flow.first_for = (d, seg)
        else:
            # a reset without ACK before the segment it answers: wait for it (one held
            # already is in the capture: the reset follows it, as below)
            wait = bool(flags & _RST) and _unanswered(flow, d, seg.seq) and not _answered(
                held, seg.seq, peer.ack_seq, d)
        if flags & _RST and not wait and flow.halves[d].reset_past(seg.seq, seg.ttl):
            # a reset past its side's bytes: those may be late (a data segment of its side sent
            # before it, reordered behind it on the way to the capture): it waits for them as
            # a segment acknowledging bytes not delivered; when the wait is over the bytes
            # still missing are a gap (HalfStream.reset)
            wait = True
        if wait or flow.nheld[d] and not _sent_before(held, d, seg):
            # (each direction keeps its order: a segment behind its side's held ones waits too,
            # unless its sequence numbers say it was sent before them)
            if flags & _RST:
                flow.rst_held = True
            if flow.nheld[1 - d]:
                if flags & _RST:
                    # a reset that waits ends the conversation when it goes: the other side's
                    # held segments past it come after it, whatever goes before it
                    self._take_past_reset(flow, d, seg)
                elif flags & _ACK and flow.rst_held and _after_held_reset(held, d, seg, flow.halves[d].next_seq):
                    # past a reset of the other side that waits: after the close it comes to
                    self.stats.after_close_segments += 1
                    return
            if wait and flow.nheld[d] and _sent_before(held, d, seg):
                # it waits itself, but was sent before its side's held segments: it goes
                # before them (a reset waiting for its side's bytes must not wait behind it)
                held.insert(_first_of(held, d), (d, seg))
            elif flow.nheld[d] and (pos := _before_own_end(held, d, seg)) is not None:
                # sent before its side's held reset or FIN: it goes before that end
                held.insert(pos, (d, seg))
            else:
                held.append((d, seg))
            flow.nheld[d] += 1
            flow.held_bytes += len(seg.payload)
            self.stats.causal_held += 1
            end = (seg.seq + len(seg.payload) + seg.missing + (flags & _FIN) + ((flags & _SYN) >> 1)) & _MASK
            if flow.nheld[d] == 1 or ((end - flow.held_end[d]) & _MASK) < _HALF:
                flow.held_end[d] = end
            if len(held) > self.config.max_held_segments or (
                    seg.ts_ns - held[0][1].ts_ns > self.config.causal_window_ns
                    or flow.held_bytes > self.config.max_ooo_bytes):
                self._release(flow, seg.ts_ns, out)
            return
        if held and flags & _RST:
            # a reset with nothing of its side held ends the conversation: the other side's
            # held segments that acknowledge bytes past it come after it (``_close`` leaves them
            # after the close, as here whatever else was held); what the others acknowledge and
            # is still missing is lost
            self._take_past_reset(flow, d, seg)
            if held:
                self._release(flow, seg.ts_ns, out, force=True)
                if self._flows.get(flow.info.stream) is not flow:
                    return
        self._process(flow, d, seg, out)
        if flow.held:
            self._release(flow, seg.ts_ns, out)

    def _take_past_reset(self, flow: Flow, d: int, rst: TcpSegment) -> None:
        """Take the held segments of the other side than reset ``rst`` (direction ``d``) that
        come after it (``_after_reset``: they acknowledge bytes past it) out of the hold: the
        reset ends the conversation when it is processed (now, or once its own wait is over),
        so they are after the close, and what they acknowledge is no loss. The reset's own
        side's held segments stay: they are before it or after it by their place."""
        held = flow.held
        nxt = flow.halves[1 - d].next_seq
        keep = []
        for h in held:
            if h[0] != d and _after_reset(h[1], rst, nxt):
                flow.nheld[h[0]] -= 1
                flow.held_bytes -= len(h[1].payload)
                self.stats.after_close_segments += 1
            else:
                keep.append(h)
        if len(keep) != len(held):
            held[:] = keep

    def _release(self, flow: Flow, now: int, out: list[FlowEvent], force: bool = False) -> None:
        """Process the held segments whose wait is over, each direction in its capture order
        (a direction's segments come from one tap with one clock: a held segment goes only
        after every earlier held segment of its side, so only the first held segment of each
        direction, its *head*, may go); the oldest head past the window (every one with
        ``force``) goes anyway: what it acknowledges and is still missing is a gap.

        Declared lost are only the bytes held nowhere: a head whose acknowledged bytes begin
        with a hole before bytes held behind the other head declares that hole alone
        (``_first_held``, ``_lose_before``) and waits on for the held bytes, and of two heads
        whose wait is over the one whose bytes are held nowhere goes first.

        O(len(held)) per segment processed (finding the heads, and when two heads wait past the
        window ``_awaited`` and ``_first_held`` on them), held segments bounded by
        ``max_held_segments``."""
        held = flow.held
        halves = flow.halves
        nheld = flow.nheld
        cfg = self.config
        while held:
            d0 = held[0][0]
            if nheld[1 - d0]:
                # the other direction's head: the first segment not of ``d0`` (a plain loop, not
                # a generator: it runs for every segment a flood of held segments brings)
                j1 = 1
                while held[j1][0] == d0:
                    j1 += 1
                heads: tuple[int, ...] = (0, j1)
            else:
                heads = (0,)
            for i in heads:
                d, s = held[i]
                if not _waits(flow, d, s):
                    del held[i]
                    nheld[d] -= 1
                    flow.held_bytes -= len(s.payload)
                    self.stats.causal_late += 1
                    break
            else:
                d, s = held[0]
                aw0 = aw1 = None
                if len(heads) == 2:
                    aw0 = _awaited(held, halves, d, s, flow.held_end[1 - d])
                    if aw0 is not None:
                        hd, hs = held[heads[1]]
                        aw1 = _awaited(held, halves, hd, hs, flow.held_end[1 - hd])
                        if aw1 is not None:
                            # the two heads each wait for bytes held behind the other (FINs
                            # that cross, each acknowledging the other): capture order breaks
                            # the tie, and its acknowledgement declares no gap (the bytes are
                            # there)
                            del held[0]
                            nheld[d] -= 1
                            flow.held_bytes -= len(s.payload)
                            self._process(flow, d, s, out, gaps=False)
                            continue
                first = flow.first_for
                if not (force or len(held) > cfg.max_held_segments
                        or now - s.ts_ns > cfg.causal_window_ns
                        or flow.held_bytes > cfg.max_ooo_bytes
                        or first is not None and first[1] is s
                        and now - s.ts_ns >= cfg.causal_window_ns):
                    # (the wait for an unseen side's first segment ends at the window, as a
                    # side's soft start does, HalfStream.settle: the two are one wait)
                    return
                # the wait is over: only the bytes held nowhere are lost (one head: nothing of
                # the other side is held, its acknowledgement declares the gap)
                k = 0
                if len(heads) == 2:
                    k = lost = part = -1
                    lost_nxt: int | None = None
                    cut: list[tuple[int, int, int]] = []
                    for i in heads:
                        hd, hs = held[i]
                        if i == 0 and aw0 is not None or i and aw1 is not None:
                            continue        # every byte it waits for is held
                        peer = halves[1 - hd]
                        nxt = peer.next_known() if hs.flags & _ACK else None
                        if nxt is not None:
                            if 0 < ((flow.held_end[1 - hd] - nxt) & _MASK) < _HALF:
                                n, j = _first_held(held, hd, nxt, hs.ack)
                            else:
                                j = -1      # nothing of the other side held ends past ``nxt``
                            if j >= 0 and n and peer.base is not None and not peer.soft:
                                cut.append((i, n, nxt))     # a hole before bytes held
                            if j >= 0:
                                if n or i == 0 or aw0 is not None or _carrier(
                                        held, hd, nxt, hs.ack, flow.held_end[1 - hd]) is None:
                                    if part < 0:
                                        part = i    # some of its bytes held, not all
                                continue
                        elif (i == 0 or aw0 is not None
                              or _awaited(held, halves, hd, hs, flow.held_end[1 - hd]) is None):
                            if lost < 0:
                                lost = i
                            continue
                        else:
                            continue                # (a reset: what it answers is held)
                        if lost < 0:
                            lost = i                # none of them held
                            lost_nxt = nxt
                    if cut and lost >= 0:
                        # one head's bytes begin with a hole before bytes held (behind the
                        # other head), the other's are held nowhere: the holes go in the order
                        # they came, the one acknowledged from before the other
                        # (``_acked_first``), else the one that showed first in the capture
                        # (its first segment captured past it, tshark's lost_segment; the
                        # held-nowhere one's by its acknowledgement when none was)
                        i, n, nxt = cut[0]
                        hd, hs = held[lost]
                        first_l = _acked_first(halves, 1 - hd)
                        if first_l == _acked_first(halves, hd):
                            lf = _hole_frame(held, hd, halves[1 - hd], lost_nxt) if (
                                lost_nxt is not None) else None
                            hf = _hole_frame(held, held[i][0], halves[hd], nxt)
                            first_l = hf is not None and (lf if lf is not None else hs.frame) < hf
                        if first_l:
                            cut.clear()     # it goes first (below)
                    for i, n, nxt in cut:
                        # its bytes begin with a hole before bytes held: that hole alone is
                        # lost, and it waits on for the held ones
                        hd = held[i][0]
                        peer = halves[1 - hd]
                        was = peer.next_seq
                        js = _first_past(held, hd, nxt)
                        assert js is not None       # (bytes held past the hole)
                        _lose_before(peer, (nxt + n) & _MASK, js.frame, js.ts_ns, out)
                        if peer.next_seq != was:
                            k = i
                            break
                    if k >= 0:
                        continue
                    # then the oldest head that waits only for bytes held nowhere (its
                    # acknowledgement declares them lost), else the oldest whose bytes begin
                    # with bytes held behind the other head and go on past a hole; a head whose
                    # bytes are all held behind the other head follows them instead of
                    # declaring them lost
                    k = lost if lost >= 0 else part if part >= 0 else 0
                d, s = held.pop(k)
                nheld[d] -= 1
                flow.held_bytes -= len(s.payload)
                first = flow.first_for
                if first is not None and first[1] is s:
                    # nothing of the other side came within the window (a capture of one
                    # direction): no segment waits for its first one again
                    flow.first_for = None
                    flow.blind = True
            self._process(flow, d, s, out)

    def _process(self, flow: Flow, d: int, seg: TcpSegment, out: list[FlowEvent],
                 gaps: bool = True) -> None:
        ts = seg.ts_ns
        flags = seg.flags
        # (the two halves and the segment's fields read once: each attribute read of these
        # objects is a generic look-up, also compiled)
        halves = flow.halves
        half = halves[d]
        peer = halves[1 - d]
        frame = seg.frame
        if half.unproven:
            half.seen(seg.seq, out)     # its first segment: holes proven before it, in hindsight
        if flow.rst_held and flow.challenged:
            # a reset that only the receiver's pure ACK answered (``Flow.challenged``): a later
            # segment of the receiver (a stack that took the reset sends nothing more: not its
            # FIN, reset or keep-alive either), bytes of the reset's side or a segment of it
            # before the reset's sequence number show the conversation went on, it was dropped;
            # a FIN or a reset of the reset's side at or past it, without bytes: it ended first,
            # the reset was taken and this segment comes after its close
            e, rst, answered = flow.challenged[0]
            if (d != e and frame > answered) or (d == e and (
                    ((seg.seq - rst.seq) & _MASK) >= _HALF
                    or (not flags & _RST and (seg.payload or seg.missing)))):
                self.stats.ignored_resets += len(flow.challenged)
                flow.challenged = []
            elif d == e and flags & _FIN_RST:
                self._take_challenged(flow, out, "closed", ts)
                if self._flows.get(flow.info.stream) is not flow:
                    self.stats.after_close_segments += 1
                    w = self._watch.get(flow.conv.key)
                    if w is not None:
                        if d == w.d:
                            w.check(seg)
                        else:
                            w.acked(seg)
                    return
        if flags & _RST:
            if flow.held:
                for h in flow.held:
                    if h[1].frame > frame and _drops(flow, d, seg, h[0], h[1]):
                        # its wait is over, and a segment captured after it (held behind it)
                        # shows it was dropped (RFC 5961 3.2): it ends nothing (the receiver's
                        # pure ACK alone: once the conversation goes on, ``Flow.challenged``)
                        if h[0] != d:
                            flow.challenged.append((d, seg, h[1].frame))
                        else:
                            self.stats.ignored_resets += 1
                        return
            self._reset_close(flow, d, seg, out)
            return
        seq = seg.seq
        payload = seg.payload
        missing = seg.missing
        ttl = seg.ttl
        if ttl and not flags & _SYN and (payload or missing or flags & _FIN or peer.next_off):
            # the TTL a reset of this side's own stack would carry (not the handshake's: a SYN
            # proxy answers it with its own, nor a pure ACK before the other side's first byte)
            half.note_ttl(ttl, frame)
        if missing:
            self.stats.snaplen_cut_segments += 1
        #: the acknowledgement this segment carried, as an offset in the peer's stream
        #: (``StreamData.ack``): -1 without ACK, with the peer's start not known or still able
        #: to move back (a late start's soft side), or beyond any sane distance; and how long
        #: before this segment it was reached (``StreamData.ack_age``, the client's only)
        aoff = age = -1
        if flags & _ACK:
            ack = seg.ack
            a = peer.ack_seq
            if a is None or 0 < ((ack - a) & _MASK) < _HALF:
                # (when it advanced: what the peer's bytes had arrived by; not an advance from
                # the peer's FIN, over the FIN alone: HalfStream.acked_ts; only of the server's
                # bytes, HalfStream.ack_timed)
                if peer.ack_timed and (peer.fin_off is None or a != peer.fin_seq):
                    peer.acked_ts = ts
                    peer.acked_frame = frame
                    peer.acked_fin = peer.fin_off is not None and 0 < ((ack - peer.fin_seq) & _MASK) < _HALF
                peer.ack_seq = a = ack
            if payload or missing:
                data_ack = flow.data_ack
                da = data_ack[d]
                if da is None or ((ack - da) & _MASK) < _HALF:
                    data_ack[d] = ack
                end = (seq + (flags & _SYN) // _SYN + len(payload) + missing) & _MASK
                data_end = flow.data_end
                de = data_end[d]
                if de is None or ((end - de) & _MASK) < _HALF:
                    data_end[d] = end
                if peer.base is not None and not peer.soft:
                    k = (ack - peer.next_seq) & _MASK
                    if k < _ACK_SANE:
                        aoff = peer.next_off + k
                    elif k >= _HALF and peer.next_off + k - _MASK > 0:
                        aoff = peer.next_off + k - _MASK - 1    # (an old one: below what was delivered)
                    if aoff >= 0 and ack == a and peer.acked_ts:
                        age = ts - peer.acked_ts    # (0: this segment advanced it; the server's: -1)
            # the peer's bytes this ACK covers were received: a hole there is a capture loss,
            # declared now, before this segment's own bytes (capture order between the sides);
            # before its FIN too, as before a reset, when it acknowledges more than one byte past
            # them: the close must not overtake them (one byte past: most likely the peer's FIN
            # the capture lacks, which waits as after an ACK; more: the last one counts as a byte,
            # as at the end, HalfStream.flush, unless the peer's FIN it is waits held)
            if peer.base is not None and gaps:
                k = (a - peer.next_seq) & _MASK
                if 0 < k < _ACK_SANE:
                    if payload or missing:
                        peer.catch_up(True, frame, ts, out)
                    elif flags & _FIN and k > 1:
                        peer.catch_up(True, frame, ts, out, _fin_held(flow.held, 1 - d, a))
                    else:
                        peer.catch_up(False, frame, ts, out)
        if flags & _SYN:
            half.syn(seq)
            seq = (seq + 1) & _MASK
        if payload or missing:
            half.data(seq, payload, missing, frame, ts, out, aoff, age)
        else:
            if frame >= half.last_frame:  # (a data segment sent before it may have passed it)
                half.last_frame = frame
                half.last_ts = ts
            if half.base is None and not flags & (_SYN | _FIN):
                half.note_ack(seq)          # its next byte, for the causal wait
            if seq != half.next_seq and not flags & (_SYN | _FIN):
                # a pure ACK (not a keep-alive) past the side's next byte: its stack had sent
                # the bytes between (HalfStream.sent)
                half.sent(seq, frame, ts)
        if flags & _FIN:
            half.fin((seq + len(payload) + missing) & _MASK, frame, ts, out)
        other = peer
        if (half.ended or half.fin_off is not None) and (other.ended or other.fin_off is not None):
            # both sides sent FIN: holes left now are gaps (no retransmission expected)
            self._close(flow, "closed", ts, out)

    def _reset_close(self, flow: Flow, d: int, seg: TcpSegment, out: list[FlowEvent]) -> None:
        """Reset ``seg`` of direction ``d`` (taken: neither out of the window nor shown dropped)
        ends the conversation (``_reset_ends``), which it closes."""
        self._reset_ends(flow, d, seg, out)
        self._close(flow, "closed", seg.ts_ns, out, (d, seg))

    def _reset_ends(self, flow: Flow, d: int, seg: TcpSegment, out: list[FlowEvent]) -> None:
        """Reset ``seg`` of direction ``d`` ends its side: what it acknowledges of the other side
        was received, the bytes of its side before it that the capture lacks were sent
        (``HalfStream.reset``)."""
        half = flow.halves[d]
        peer = flow.halves[1 - d]
        ts = seg.ts_ns
        frame = seg.frame
        if seg.flags & _ACK:
            # The peer's bytes an RST acknowledges were received: a hole there is a
            # capture loss, declared before the reset (the last byte may be a FIN).
            a = peer.ack_seq
            if a is None or 0 < ((seg.ack - a) & _MASK) < _HALF:
                if peer.ack_timed and (peer.fin_off is None or a != peer.fin_seq):
                    peer.acked_ts = ts
                    peer.acked_frame = frame
                    peer.acked_fin = peer.fin_off is not None and 0 < ((seg.ack - peer.fin_seq) & _MASK) < _HALF
                peer.ack_seq = a = seg.ack
            if peer.base is not None:
                k = (a - peer.next_seq) & _MASK
                if 0 < k < _ACK_SANE:
                    peer.catch_up(k > 1, frame, ts, out)
        half.reset(frame, ts, out, seg.ttl, seg.seq)

    def _take_challenged(self, flow: Flow, out: list[FlowEvent], reason: str, ts: int) -> None:
        """The conversation ends (a FIN or a reset of the reset's side at or past it, the end of
        the capture, the flow's idle close, eviction or reuse) before anything showed the resets
        that only the receiver's pure ACK answered (``Flow.challenged``) dropped: that ACK may
        have crossed the reset (a window update sent before it arrived) as well as answered it,
        and a reset taken is followed by nothing else. The first is read as taken, where it came
        (RFC 5961 3.2 or not, a reset at the receiver's next byte ends the connection): its
        side's bytes before it that the capture lacks were sent, and it closes the
        conversation; the later ones come after that close. ``reason``: why the flow ends
        (``_close``'s): at the end of the capture too the reset closes it; idle, evicted or
        reused, the flow closes for that, at ``ts``, with no watch of the reset's side (a later
        segment of its key is another conversation's, or none comes)."""
        (d, rst, _answered), *rest = flow.challenged
        flow.challenged = []
        self.stats.after_close_segments += len(rest)
        half = flow.halves[d]
        if half.unproven:
            half.seen(rst.seq, out)
        self._reset_ends(flow, d, rst, out)
        if reason == "closed" or reason == "end":
            self._close(flow, "closed", rst.ts_ns, out, (d, rst))
        else:
            self._close(flow, reason, ts, out)

    def _close(self, flow: Flow, reason: str, ts: int, out: list[FlowEvent],
               reset: tuple[int, TcpSegment] | None = None) -> None:
        """Flush both sides and forget the flow. ``reset``: the reset (its direction) that
        closes it: its ``FlowClosed`` waits while that side's later segments are watched
        (``_ResetWatch``). A reset that only the receiver's pure ACK answered, with nothing
        after it to show it dropped, closes it first (``_take_challenged``)."""
        if flow.challenged and reset is None and self._flows.get(flow.info.stream) is flow:
            self._take_challenged(flow, out, reason, ts)
            return
        if self._flows.pop(flow.info.stream, None) is None:
            return
        held: list[tuple[int, TcpSegment]] = []
        if flow.held:           # what they acknowledge and is still missing is lost
            held = flow.held[:]
            flow.held.clear()   # (emptied in place: a ``_release`` under way stops with it)
            flow.held_bytes = 0
            flow.nheld = [0, 0]
            for d, s in held:
                if reset is not None and (d == reset[0] or _past_reset(s, reset[1])):
                    # after the reset: its side's later segments (each direction keeps its
                    # order), the other side's that wait for its bytes past the reset
                    self.stats.after_close_segments += 1
                    continue
                self._process(flow, d, s, out)
        h0, h1 = flow.halves
        # client side first, for a stable order
        first, second = (h0, h1) if flow.sides[0] is Side.CLIENT else (h1, h0)
        first.flush(out)
        second.flush(out)
        conv = flow.conv
        conv.flow = None
        conv.state = _CLOSED
        if reason == "closed":          # by FIN both ways or RST: forgotten after the grace
            v = conv.packed(_CLOSED) | _ENDED
            if self._set(conv.key, conv, v):
                self.table.ended(conv.key, v, ts)
        else:
            self._set(conv.key, conv, conv.packed(_CLOSED))     # compact again
        if reason == "idle":
            self.stats.idle_closed += 1
        closed = _flow_closed(flow, reason, ts)
        if reset is None or self.config.reset_watch_ns <= 0:
            out.append(closed)
            return
        rd, rst = reset
        w = _ResetWatch(flow, rd, rst, ts + self.config.reset_watch_ns, closed)
        for d, s in held:
            if d == rd:     # (its segments held behind the reset came after it)
                w.check(s)
        if conv.key in self._watch:
            self._end_watch(conv.key, ts, out)
        self._watch[conv.key] = w

    def _end_watch(self, key: _Key, now: int, out: list[FlowEvent]) -> None:
        """A segment at capture time ``now`` ends the watch of 4-tuple ``key`` (a segment after
        its time, a new SYN, the 4-tuple's closed entry forgotten, a reset closing another
        conversation on it that is watched in turn): first every watch whose time
        was up by ``now`` ends, in the order of their resets, as a sweep would have ended them
        (``_watch_until``: its events do not come before those of watches that expired
        earlier), then this one if it is still on (its time not up, or a watch before it in the
        order of the resets still on: capture time out of order)."""
        self._watch_until(now, out)
        w = self._watch.pop(key, None)
        if w is not None:
            w.events(out)

    def _watch_until(self, now: int, out: list[FlowEvent]) -> None:
        """End the watches whose time is up by ``now`` (in the order of their resets)."""
        watch = self._watch
        while watch:
            key = next(iter(watch))
            w = watch[key]
            if w.deadline >= now:
                return
            del watch[key]
            w.events(out)

    def _sweep_idle(self, now: int, out: list[FlowEvent]) -> None:
        cutoff = now - self.config.idle_timeout_ns
        flows = self._flows
        while flows:
            flow = next(iter(flows.values()))
            if flow.last_ts >= cutoff:
                break
            self._close(flow, "idle", now, out)
