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

import ipaddress
from collections import OrderedDict

from pcapsmtp.model import Endpoint, Side, TcpSegment
from pcapsmtp.tcp.config import ReassemblyConfig, ReassemblyStats
from pcapsmtp.tcp.events import FlowClosed, FlowEvent, FlowInfo, FlowOpened
from pcapsmtp.tcp.halfstream import HalfStream
from pcapsmtp.tcp.partition import flow_bucket
from pcapsmtp.tcp.streams import (
    ACK, B0, B1, CLOSED, ENDED, F_SHIFT, FIN, FIN0, FIN1, FIN_RST, FLOW, HAS0, HAS1, IGNORED,
    KEEP_IGNORED, KNOWN_IGNORED, KNOWN_MASK, M40, M48, MASK32, RST, S_SHIFT, SA0, SA1, ST, SYN,
    SYN0, SYN1, SYN_FIN_RST, SYNACK, T_SHIFT, TUNNEL, UNDECIDED, V6KEY, Key, KeyedSegment,
    StreamTable, int_key, text_key,
)

__all__ = ["ReassemblyConfig", "ReassemblyStats", "TcpReassembler", "Flow", "is_smtp_start",
           "parse_tunnel", "TUNNEL_PENDING", "TUNNEL_FAILED", "TUNNEL_OPEN", "KeyedSegment",
           "int_key", "V6KEY"]

_MASK = MASK32
_HALF = 1 << 31
_ACK_SANE = 1 << 30      #: an ACK further ahead than this is garbage (as in HalfStream)
# (the packed-entry layout and its names live in tcp/streams.py)
_FIN, _SYN, _RST, _ACK, _SYNACK = FIN, SYN, RST, ACK, SYNACK
_UNDECIDED, _FLOW, _IGNORED, _CLOSED, _TUNNEL = UNDECIDED, FLOW, IGNORED, CLOSED, TUNNEL
_ST, _HAS0, _HAS1, _SYN0, _SYN1, _SA0, _SA1 = ST, HAS0, HAS1, SYN0, SYN1, SA0, SA1
_FIN0, _FIN1, _ENDED, _B0, _B1 = FIN0, FIN1, ENDED, B0, B1
_S_SHIFT, _F_SHIFT, _T_SHIFT, _M40, _M48 = S_SHIFT, F_SHIFT, T_SHIFT, M40, M48
_FAST_MASK, _FAST_IGNORED, _KEEP_IGNORED = KNOWN_MASK, KNOWN_IGNORED, KEEP_IGNORED
_FIN_RST, _SYN_FIN_RST = FIN_RST, SYN_FIN_RST

_SERVER_STARTS = frozenset({b"220 ", b"220-", b"421 ", b"421-", b"554 ", b"554-"})
_CLIENT_VERBS = frozenset({b"EHLO", b"HELO", b"LHLO"})
_VERB_ENDS = frozenset({b" ", b"\r", b"\n", b"\t", b""})


def is_smtp_start(payload: bytes) -> Side | None:
    """The side whose first payload this looks like: a server greeting (220/421/554 line
    start) or a client hello (EHLO/HELO/LHLO, case-insensitive). None otherwise."""
    if payload[:4] in _SERVER_STARTS:
        return Side.SERVER
    if payload[:4].upper() in _CLIENT_VERBS and payload[4:5] in _VERB_ENDS:
        return Side.CLIENT
    return None


# --------------------------------------------------------------------------- tunnels

#: ``parse_tunnel`` results
TUNNEL_PENDING = 0
TUNNEL_FAILED = 1
TUNNEL_OPEN = 2

_HTTP = 1
_SOCKS5 = 2


def _tunnel_kind(first: bytes) -> int:
    """The proxy protocol a conversation's first payload (client to proxy) starts, or 0."""
    if first and first[:8] == b"CONNECT "[:len(first)]:
        return _HTTP                # (or the start of it: a request cut into small segments)
    if first[:1] == b"\x05" and (len(first) < 2 or 1 <= first[1] <= 16):
        return _SOCKS5
    return 0


def _head_end(b: bytes) -> int:
    """Index after the blank line ending an HTTP head, or -1."""
    i = b.find(b"\r\n\r\n")
    if i >= 0:
        j = b.find(b"\n\n", 0, i)
        return j + 2 if j >= 0 else i + 4
    i = b.find(b"\n\n")
    return i + 2 if i >= 0 else -1


def _socks_addr_end(b: bytes, i: int) -> int:
    """End of the ATYP/address/port at ``b[i:]`` of a SOCKS5 request or reply; -1 when more
    bytes are needed, -2 for an unknown address type."""
    if len(b) <= i:
        return -1
    atyp = b[i]
    if atyp == 1:
        end = i + 1 + 4 + 2
    elif atyp == 4:
        end = i + 1 + 16 + 2
    elif atyp == 3:
        if len(b) <= i + 1:
            return -1
        end = i + 2 + b[i + 1] + 2
    else:
        return -2
    return end if len(b) >= end else -1


def _parse_socks5(c: bytes, s: bytes) -> tuple[int, int, int]:
    if len(c) < 2:
        return (TUNNEL_PENDING if c == b"\x05" else TUNNEL_FAILED), 0, 0
    if c[0] != 5 or not 1 <= c[1] <= 16:
        return TUNNEL_FAILED, 0, 0
    i = 2 + c[1]                                # client greeting: VER NMETHODS METHODS
    if len(c) < i or len(s) < 2:
        return TUNNEL_PENDING, 0, 0
    if s[0] != 5:
        return TUNNEL_FAILED, 0, 0
    j = 2                                       # server choice: VER METHOD
    if s[1] == 2:                               # username/password (RFC 1929)
        if len(c) < i + 2:
            return TUNNEL_PENDING, 0, 0
        if c[i] != 1:
            return TUNNEL_FAILED, 0, 0
        k = i + 2 + c[i + 1]
        if len(c) <= k:
            return TUNNEL_PENDING, 0, 0
        i = k + 1 + c[k]
        if len(c) < i or len(s) < 4:
            return TUNNEL_PENDING, 0, 0
        if s[2] != 1 or s[3] != 0:
            return TUNNEL_FAILED, 0, 0
        j = 4
    elif s[1] != 0:
        return TUNNEL_FAILED, 0, 0
    if len(c) < i + 3:                          # request: VER CMD=CONNECT RSV ATYP ADDR PORT
        return TUNNEL_PENDING, 0, 0
    if c[i] != 5 or c[i + 1] != 1:
        return TUNNEL_FAILED, 0, 0
    cend = _socks_addr_end(c, i + 3)
    if cend == -2:
        return TUNNEL_FAILED, 0, 0
    if cend < 0 or len(s) < j + 3:
        return TUNNEL_PENDING, 0, 0
    if s[j] != 5 or s[j + 1] != 0:              # reply: VER REP=succeeded RSV ATYP ADDR PORT
        return TUNNEL_FAILED, 0, 0
    send = _socks_addr_end(s, j + 3)
    if send == -2:
        return TUNNEL_FAILED, 0, 0
    if send < 0:
        return TUNNEL_PENDING, 0, 0
    return TUNNEL_OPEN, cend, send


def _parse_http(c: bytes, s: bytes) -> tuple[int, int, int]:
    if c[:8] != b"CONNECT ":
        return (TUNNEL_PENDING if b"CONNECT ".startswith(c) else TUNNEL_FAILED), 0, 0
    if len(s) < 12:
        if s[:7] != b"HTTP/1."[:len(s)]:
            return TUNNEL_FAILED, 0, 0
        return TUNNEL_PENDING, 0, 0
    if s[:7] != b"HTTP/1." or s[8:12] != b" 200":
        return TUNNEL_FAILED, 0, 0
    send = _head_end(s)
    cend = _head_end(c)
    if send < 0 or cend < 0:
        return TUNNEL_PENDING, 0, 0
    return TUNNEL_OPEN, cend, send


def parse_tunnel(client: bytes, server: bytes) -> tuple[int, int, int]:
    """Where an HTTP CONNECT or SOCKS5 proxy handshake ends and the tunnelled bytes start.

    ``client``/``server``: the first bytes of each side, in order. Returns ``(status,
    client_start, server_start)``: ``TUNNEL_OPEN`` with the offsets of each side's first
    tunnelled byte, once the proxy accepted and the server's first tunnelled bytes are an SMTP
    greeting; ``TUNNEL_PENDING`` while more bytes are needed; ``TUNNEL_FAILED`` otherwise
    (not a proxy handshake, refused, or something other than SMTP inside)."""
    kind = _tunnel_kind(client)
    if kind == _HTTP:
        st, cend, send = _parse_http(client, server)
    elif kind == _SOCKS5:
        st, cend, send = _parse_socks5(client, server)
    else:
        return TUNNEL_FAILED, 0, 0
    if st != TUNNEL_OPEN:
        return st, 0, 0
    rest = server[send:send + 4]
    if len(rest) < 4:
        return TUNNEL_PENDING, 0, 0
    if is_smtp_start(rest) is not Side.SERVER:
        return TUNNEL_FAILED, 0, 0
    return TUNNEL_OPEN, cend, send


def _could_start(head: bytes) -> bool:
    """Could a conversation whose first payload starts with ``head`` (up to 8 bytes) become
    a candidate by its content (SMTP, or a proxy handshake to watch)?"""
    return is_smtp_start(head) is not None or bool(_tunnel_kind(head))


# --------------------------------------------------------------------------- keys

_Key = Key

class _Tunnel:
    """A proxy handshake being watched: each side's first bytes in sequence order, and the
    pieces they came in (direction, sequence number, bytes, frame, ts) for the replay."""

    __slots__ = ("cdir", "data", "start", "nxt", "pieces")

    def __init__(self, cdir: int) -> None:
        self.cdir = cdir
        self.data = (bytearray(), bytearray())
        self.start: list[int | None] = [None, None]     # seq of each direction's first byte
        self.nxt: list[int] = [0, 0]
        self.pieces: list[tuple[int, int, bytes, int, int]] = []


# --------------------------------------------------------------------------- entries

class _Conv:
    """Light entry held as an object: an SMTP candidate (``flow``) or a watched tunnel, of the
    4-tuple ``key = (a_ip, b_ip, a_port << 16 | b_port)``. Direction 0 is a -> b."""

    __slots__ = ("key", "stream", "base0", "base1", "state", "flow", "first_frame", "first_ts",
                 "syn0", "syn1", "synack0", "synack1", "tunnel", "fins")

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
        self.tunnel: _Tunnel | None = None
        self.fins = v & _ENDED          # FIN/RST bits, kept for a tunnel that gives up

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

    __slots__ = ("info", "conv", "halves", "sides", "last_ts", "last_frame")

    def __init__(self, info: FlowInfo, conv: _Conv, halves: tuple[HalfStream, HalfStream],
                 sides: tuple[Side, Side]) -> None:
        self.info = info
        self.conv = conv
        self.halves = halves
        self.sides = sides
        self.last_ts = info.first_ts_ns
        self.last_frame = info.first_frame


_key = text_key


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
                                 _could_start if config.detect_by_content else None)
        self._flows: OrderedDict[int, Flow] = OrderedDict()   # by stream index, LRU order
        self._ports = config.smtp_ports
        #: segments until the next idle sweep; a caller that counts segments itself
        #: (``skipped``) decrements it too
        self.countdown = config.idle_check_every
        self._last_ts = 0
        self._partition = config.partition

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
                elif v.state == _UNDECIDED or v.state == _TUNNEL:
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
        return best

    def tick(self, now_ns: int) -> list[FlowEvent]:
        """Close the flows idle since before ``now_ns - idle_timeout_ns`` (for live capture,
        where time passes without segments)."""
        out: list[FlowEvent] = []
        if self._flows:
            self._sweep_idle(now_ns, out)
        return out

    def number(self, seg: TcpSegment) -> int:
        """Feed ``seg`` and return its tcp.stream index, dropping the events (for callers
        that only want the numbering)."""
        self.feed(seg)
        s = self.stream_of(seg.src, seg.sport, seg.dst, seg.dport)
        return -1 if s is None else s

    def finish(self) -> list[FlowEvent]:
        """End of capture: every open flow is flushed (holes before known data become gaps,
        sides without FIN/RST end truncated) and closed with reason "end"."""
        out: list[FlowEvent] = []
        for flow in list(self._flows.values()):
            self._close(flow, "end", self._last_ts, out)
        return out

    # -- the per-segment path ---------------------------------------------------------------
    def _segment(self, seg: TcpSegment, out: list[FlowEvent]) -> None:
        key: _Key
        if seg.__class__ is KeyedSegment:
            key = seg.key      # type: ignore[attr-defined]
            d = seg.d          # type: ignore[attr-defined]
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
        table = self.table
        v = table.young.get(key)
        if v is None:
            v = table.old.pop(key, None)
            if v is None:
                v = self._new_entry(key, seg, out)
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
                if flags & _SYNACK == _SYN and (v >> sh) & _MASK != seg.seq:
                    v = self._reuse(key, seg, None, out) | has | (seg.seq << sh)
            else:
                v |= has | ((seg.seq if flags & _SYN else (seg.seq - 1) & _MASK) << sh)
            state = v & _ST
            if state == _UNDECIDED:
                self._undecided(key, v, v0, d, seg, out)
                return
            if state == _CLOSED:
                self.stats.after_close_segments += 1
            elif flags & _FIN_RST:
                v |= _ENDED if flags & _RST else (_FIN0 if d == 0 else _FIN1)
            if v != v0:
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
        else:
            self.stats.after_close_segments += 1

    def _new_entry(self, key: _Key, seg: TcpSegment,
                   out: list[FlowEvent]) -> int:
        """A new conversation: the next stream index, as a packed undecided entry (not yet
        inserted). First forgets the closed entries past their grace, then evicts an
        old-generation entry if the table is still full."""
        table = self.table
        table.creation_time(seg.ts_ns)
        victim = table.make_room()
        if victim is not None and not isinstance(victim, int) and victim.flow is not None:
            self.stats.flows_evicted += 1
            self._close(victim.flow, "evicted", seg.ts_ns, out)
        return table.new_stream(seg.frame, seg.ts_ns)

    def _reuse(self, key: _Key, seg: TcpSegment, conv: _Conv | None,
               out: list[FlowEvent]) -> int:
        """A SYN with a new ISN took the 4-tuple: the old conversation ends (its flow closes
        "reused"), a new one starts. Returns the new packed entry (the caller stores it)."""
        self.stats.reused += 1
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
        ports = self._ports
        port_cand = seg.sport in ports or seg.dport in ports
        young = self.table.young
        if payload or seg.missing:
            detect = self.config.detect_by_content
            content = is_smtp_start(payload) if detect else None
            mine = self._partition is None or self._mine(seg)
            if (port_cand or content is not None) and mine:
                conv = _Conv(key, v)
                young[key] = conv
                flow = self._open(conv, d, seg, content, out)
                self._flow_segment(flow, d, seg, out)
                return
            if detect and not seg.missing and mine and _tunnel_kind(payload):
                conv = _Conv(key, v)
                conv.state = _TUNNEL
                conv.tunnel = _Tunnel(d)
                young[key] = conv
                self._tunnel_segment(key, conv, d, seg, out)
                return
            v = (v & _KEEP_IGNORED) | _IGNORED | (((v >> _S_SHIFT) & _M40) << _S_SHIFT)
        elif port_cand and flags & _FIN_RST and (self._partition is None or self._mine(seg)):
            conv = _Conv(key, v)
            young[key] = conv
            flow = self._open(conv, d, seg, None, out)
            self._flow_segment(flow, d, seg, out)
            return
        if flags & _FIN_RST:
            v |= _ENDED if flags & _RST else (_FIN0 if d == 0 else _FIN1)
        if v != v0:
            young[key] = v
            if v & _ENDED == _ENDED:
                self.table.ended(key, v, seg.ts_ns)

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
            if seg.missing:
                self._tunnel_give_up(key, conv, seg.ts_ns)
                return
            seq = seg.seq
            buf = t.data[d]
            if t.start[d] is None:
                t.start[d] = seq
                t.nxt[d] = seq
            k = (t.nxt[d] - seq) & _MASK        # bytes of this segment already held
            if k >= _HALF:
                # a hole in the handshake: cannot follow it
                self._tunnel_give_up(key, conv, seg.ts_ns)
                return
            if k < len(payload):
                new = payload[k:]
                if len(buf) + len(new) > self.config.tunnel_limit:
                    self._tunnel_give_up(key, conv, seg.ts_ns)
                    return
                t.pieces.append((d, (seq + k) & _MASK, bytes(new), seg.frame, seg.ts_ns))
                buf += new
                t.nxt[d] = (seq + len(payload)) & _MASK
                c, s = t.data[t.cdir], t.data[1 - t.cdir]
                status, cend, send = parse_tunnel(bytes(c), bytes(s))
                if status == TUNNEL_FAILED:
                    self._tunnel_give_up(key, conv, seg.ts_ns)
                    return
                if status == TUNNEL_OPEN:
                    self._tunnel_open(conv, t, cend, send, d, seg, out)
                    return
        if flags & (_FIN | _RST):
            self._tunnel_give_up(key, conv, seg.ts_ns)

    def _tunnel_give_up(self, key: _Key, conv: _Conv, ts: int) -> None:
        conv.tunnel = None
        conv.state = _IGNORED
        v = conv.packed(_IGNORED) | conv.fins
        if self._set(key, conv, v) and v & _ENDED == _ENDED:
            self.table.ended(key, v, ts)

    def _tunnel_open(self, conv: _Conv, t: _Tunnel, cend: int, send: int, d: int,
                     seg: TcpSegment, out: list[FlowEvent]) -> None:
        """The proxy handshake is over and the server greets in SMTP: open the flow with each
        side starting at its first tunnelled byte, then replay the bytes held past it."""
        cdir = t.cdir
        starts = [0, 0]
        for dd, end in ((cdir, cend), (1 - cdir, send)):
            st = t.start[dd]
            starts[dd] = 0 if st is None else (st + end) & _MASK
        conv.tunnel = None
        flow = self._open(conv, d, seg, Side.CLIENT if d == cdir else Side.SERVER, out,
                          tunnel=(cdir, starts[0] if t.start[0] is not None else None,
                                  starts[1] if t.start[1] is not None else None))
        for dd, seq, data, frame, ts in t.pieces:
            if frame == seg.frame:
                continue
            k = (starts[dd] - seq) & _MASK
            if k < _HALF and k < len(data):
                flow.halves[dd].data((seq + k) & _MASK, data[k:], 0, frame, ts, out)
            elif k >= _HALF:
                flow.halves[dd].data(seq, data, 0, frame, ts, out)
        k = (starts[d] - seg.seq) & _MASK
        if k >= _HALF or k > len(seg.payload):
            k = 0
        cut = TcpSegment(seg.frame, seg.ts_ns, seg.src, seg.sport, seg.dst, seg.dport,
                         (seg.seq + k) & _MASK, seg.ack, seg.flags & ~_SYN, seg.payload[k:],
                         seg.missing)
        self._flow_segment(flow, d, cut, out)

    # -- candidates ---------------------------------------------------------------------------
    def _open(self, conv: _Conv, d: int, seg: TcpSegment, content: Side | None,
              out: list[FlowEvent], tunnel: tuple[int, int | None, int | None] | None = None
              ) -> Flow:
        """Promote an undecided conversation to a candidate flow; ``seg`` (direction ``d``)
        is the segment that decided it. ``tunnel``: (client direction, start sequence number
        of direction 0 and 1) of a proxied conversation."""
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
        if cdir == 0:
            client = Endpoint(a_ip, a_port)
            server = Endpoint(b_ip, b_port)
        else:
            client = Endpoint(b_ip, b_port)
            server = Endpoint(a_ip, a_port)
        info = FlowInfo(stream=conv.stream, client=client, server=server,
                        first_frame=conv.first_frame, first_ts_ns=conv.first_ts,
                        side_evidence=evidence,
                        midstream=tunnel is None and (client_syn is None or server_syn is None),
                        handshake_seen=client_syn is not None and server_syn is not None)
        cfg = self.config
        sides = (Side.CLIENT, Side.SERVER) if cdir == 0 else (Side.SERVER, Side.CLIENT)
        h0 = HalfStream(conv.stream, sides[0], self.stats, cfg.max_ooo_bytes, cfg.retain_bytes)
        h1 = HalfStream(conv.stream, sides[1], self.stats, cfg.max_ooo_bytes, cfg.retain_bytes)
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
            if s1 is not None:
                h1.syn(s1)
        flow = Flow(info, conv, (h0, h1), sides)
        conv.flow = flow
        conv.state = _FLOW
        conv.syn0 = conv.syn1 = conv.synack0 = conv.synack1 = None
        flows[conv.stream] = flow
        self.stats.candidates += 1
        out.append(FlowOpened(info))
        return flow

    def _flow_segment(self, flow: Flow, d: int, seg: TcpSegment, out: list[FlowEvent]) -> None:
        self._flows.move_to_end(flow.info.stream)
        ts = seg.ts_ns
        flow.last_ts = ts
        flow.last_frame = seg.frame
        flags = seg.flags
        half = flow.halves[d]
        if flags & _RST:
            if flags & _ACK:
                # The peer's bytes an RST acknowledges were received: a hole there is a
                # capture loss, declared before the reset (the last byte may be a FIN).
                peer = flow.halves[1 - d]
                a = peer.ack_seq
                if a is None or ((seg.ack - a) & _MASK) < _HALF:
                    peer.ack_seq = a = seg.ack
                if peer.base is not None:
                    k = (a - peer.next_seq) & _MASK
                    if 0 < k < _ACK_SANE:
                        peer.catch_up(k > 1, seg.frame, ts, out)
            half.reset(seg.frame, ts, out)
            self._close(flow, "closed", ts, out)
            return
        seq = seg.seq
        payload = seg.payload
        missing = seg.missing
        if flags & _ACK:
            peer = flow.halves[1 - d]
            a = peer.ack_seq
            if a is None or ((seg.ack - a) & _MASK) < _HALF:
                peer.ack_seq = a = seg.ack
            # the peer's bytes this ACK covers were received: a hole there is a capture loss,
            # declared now, before this segment's own bytes (capture order between the sides)
            if 0 < ((a - peer.next_seq) & _MASK) < _ACK_SANE and peer.base is not None:
                peer.catch_up(bool(payload or missing), seg.frame, ts, out)
        if flags & _SYN:
            half.syn(seq)
            seq = (seq + 1) & _MASK
        if payload or missing:
            half.data(seq, payload, missing, seg.frame, ts, out)
        else:
            half.last_frame = seg.frame
            half.last_ts = ts
        if flags & _FIN:
            half.fin((seq + len(payload) + missing) & _MASK, seg.frame, ts, out)
        other = flow.halves[1 - d]
        if (half.ended or half.fin_off is not None) and (other.ended or other.fin_off is not None):
            # both sides sent FIN: holes left now are gaps (no retransmission expected)
            self._close(flow, "closed", ts, out)

    def _close(self, flow: Flow, reason: str, ts: int, out: list[FlowEvent]) -> None:
        """Flush both sides and forget the flow."""
        if self._flows.pop(flow.info.stream, None) is None:
            return
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
        out.append(FlowClosed(flow.info.stream, reason, ts))

    def _sweep_idle(self, now: int, out: list[FlowEvent]) -> None:
        cutoff = now - self.config.idle_timeout_ns
        flows = self._flows
        while flows:
            flow = next(iter(flows.values()))
            if flow.last_ts >= cutoff:
                break
            self._close(flow, "idle", now, out)
