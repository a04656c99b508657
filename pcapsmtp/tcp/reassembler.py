"""TcpSegment in, FlowEvents out; every TCP conversation numbered as Wireshark's tcp.stream.

Two tables:

- the *light* table numbers every TCP conversation of the capture, SMTP or not. One entry per
  4-tuple (canonical order), LRU-bounded by ``max_tracked``. It keeps what Wireshark 4.0
  uses to decide that a SYN starts a new conversation on a known 4-tuple: the base sequence
  number of each direction. A non-candidate segment costs one dict lookup and a few compares.
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
"""
from __future__ import annotations

from collections import OrderedDict

from pcapsmtp.model import Endpoint, Side, TcpSegment
from pcapsmtp.tcp.config import ReassemblyConfig, ReassemblyStats
from pcapsmtp.tcp.events import FlowClosed, FlowEvent, FlowInfo, FlowOpened
from pcapsmtp.tcp.halfstream import HalfStream

__all__ = ["ReassemblyConfig", "ReassemblyStats", "TcpReassembler", "Flow", "is_smtp_start"]

_MASK = 0xFFFFFFFF
_HALF = 1 << 31
_ACK_SANE = 1 << 30      #: an ACK further ahead than this is garbage (as in HalfStream)
_FIN = 0x01
_SYN = 0x02
_RST = 0x04
_ACK = 0x10

# light-entry states
_UNDECIDED = 0
_FLOW = 1
_IGNORED = 2
_CLOSED = 3

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


class _Conv:
    """Light entry: one TCP conversation (tcp.stream) of a 4-tuple ``key = (a_ip, a_port,
    b_ip, b_port)``. Direction 0 is a -> b, direction 1 is b -> a."""

    __slots__ = ("key", "stream", "base0", "base1", "state", "flow", "first_frame", "first_ts",
                 "port_cand", "syn0", "syn1", "synack0", "synack1")

    def __init__(self, key: tuple[str, int, str, int], stream: int, frame: int, ts: int,
                 port_cand: bool) -> None:
        self.key = key
        self.stream = stream
        self.base0: int | None = None
        self.base1: int | None = None
        self.state = _UNDECIDED
        self.flow: Flow | None = None
        self.first_frame = frame
        self.first_ts = ts
        self.port_cand = port_cand
        # pre-payload handshake memory (seq of SYN / SYN-ACK per direction)
        self.syn0: int | None = None
        self.syn1: int | None = None
        self.synack0: int | None = None
        self.synack1: int | None = None


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


class TcpReassembler:
    """Feed TcpSegments in capture order; get FlowEvents in capture order.

    For each candidate flow the events start with ``FlowOpened`` and end with ``FlowClosed``.
    Malformed traffic never raises."""

    def __init__(self, config: ReassemblyConfig = ReassemblyConfig()) -> None:
        self.config = config
        self.stats = ReassemblyStats()
        self._table: OrderedDict[tuple[str, int, str, int], _Conv] = OrderedDict()
        self._flows: OrderedDict[int, Flow] = OrderedDict()   # by stream index, LRU order
        self._next_stream = 0
        self._ports = config.smtp_ports
        self._countdown = config.idle_check_every
        self._last_ts = 0

    # -- public ---------------------------------------------------------------------------
    @property
    def tracked(self) -> int:
        """Light entries held now (<= max_tracked)."""
        return len(self._table)

    @property
    def active_flows(self) -> int:
        """Candidate flows open now (<= max_flows)."""
        return len(self._flows)

    def stream_of(self, src: str, sport: int, dst: str, dport: int) -> int | None:
        """The tcp.stream index the 4-tuple maps to now (None if unknown or evicted)."""
        if sport < dport or (sport == dport and src < dst):
            conv = self._table.get((src, sport, dst, dport))
        else:
            conv = self._table.get((dst, dport, src, sport))
        return None if conv is None else conv.stream

    def feed(self, seg: TcpSegment) -> list[FlowEvent]:
        """Process one segment; returns the events it caused (often none)."""
        self.stats.segments += 1
        self._last_ts = seg.ts_ns
        self._countdown -= 1
        out: list[FlowEvent] = []
        if self._countdown <= 0:
            self._countdown = self.config.idle_check_every
            if self._flows:
                self._sweep_idle(seg.ts_ns, out)
        self._segment(seg, out)
        return out

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
        src = seg.src
        sport = seg.sport
        dst = seg.dst
        dport = seg.dport
        if sport < dport or (sport == dport and src < dst):
            key = (src, sport, dst, dport)
            d = 0
        else:
            key = (dst, dport, src, sport)
            d = 1
        table = self._table
        flags = seg.flags
        conv = table.get(key)
        if conv is None:
            conv = self._new_conv(key, seg, out)
        else:
            table.move_to_end(key)
            if flags & (_SYN | _ACK) == _SYN:
                base = conv.base0 if d == 0 else conv.base1
                if base is not None and base != seg.seq:
                    self.stats.reused += 1
                    if conv.flow is not None:
                        self._close(conv.flow, "reused", seg.ts_ns, out)
                    conv = self._new_conv(key, seg, out)
        if d == 0:
            if conv.base0 is None:
                conv.base0 = seg.seq if flags & _SYN else (seg.seq - 1) & _MASK
        elif conv.base1 is None:
            conv.base1 = seg.seq if flags & _SYN else (seg.seq - 1) & _MASK
        state = conv.state
        if state == _IGNORED:
            return
        if state == _FLOW:
            flow = conv.flow
            assert flow is not None
            self._flow_segment(flow, d, seg, out)
            return
        if state == _CLOSED:
            self.stats.after_close_segments += 1
            return
        # undecided: remember the handshake, decide at the first payload
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
        payload = seg.payload
        if payload or seg.missing:
            content = is_smtp_start(payload) if self.config.detect_by_content else None
            if conv.port_cand or content is not None:
                flow = self._open(conv, d, seg, content, out)
                self._flow_segment(flow, d, seg, out)
            else:
                conv.state = _IGNORED
                conv.syn0 = conv.syn1 = conv.synack0 = conv.synack1 = None
        elif conv.port_cand and flags & (_FIN | _RST):
            flow = self._open(conv, d, seg, None, out)
            self._flow_segment(flow, d, seg, out)

    def _new_conv(self, key: tuple[str, int, str, int], seg: TcpSegment,
                  out: list[FlowEvent]) -> _Conv:
        table = self._table
        if key in table:
            del table[key]
        elif len(table) >= self.config.max_tracked:
            _, old = table.popitem(last=False)
            self.stats.evicted += 1
            if old.flow is not None:
                self.stats.flows_evicted += 1
                self._close(old.flow, "evicted", seg.ts_ns, out)
        ports = self._ports
        conv = _Conv(key, self._next_stream, seg.frame, seg.ts_ns,
                     key[1] in ports or key[3] in ports)
        self._next_stream += 1
        self.stats.flows_seen += 1
        table[key] = conv
        return conv

    def _open(self, conv: _Conv, d: int, seg: TcpSegment, content: Side | None,
              out: list[FlowEvent]) -> Flow:
        """Promote an undecided conversation to a candidate flow; ``seg`` (direction ``d``)
        is the segment that decided it."""
        flows = self._flows
        if len(flows) >= self.config.max_flows:
            self.stats.flows_evicted += 1
            self._close(next(iter(flows.values())), "evicted", seg.ts_ns, out)
        ports = self._ports
        key = conv.key
        # client direction: 0 means a -> b is client -> server
        if conv.syn0 is not None and conv.syn1 is None:
            cdir, evidence = 0, "syn"
        elif conv.syn1 is not None and conv.syn0 is None:
            cdir, evidence = 1, "syn"
        elif conv.synack1 is not None and conv.synack0 is None:
            cdir, evidence = 0, "syn"
        elif conv.synack0 is not None and conv.synack1 is None:
            cdir, evidence = 1, "syn"
        elif (key[3] in ports) != (key[1] in ports):
            cdir, evidence = (0 if key[3] in ports else 1), "port"
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
            client = Endpoint(key[0], key[1])
            server = Endpoint(key[2], key[3])
        else:
            client = Endpoint(key[2], key[3])
            server = Endpoint(key[0], key[1])
        info = FlowInfo(stream=conv.stream, client=client, server=server,
                        first_frame=conv.first_frame, first_ts_ns=conv.first_ts,
                        side_evidence=evidence,
                        midstream=client_syn is None or server_syn is None,
                        handshake_seen=client_syn is not None and server_syn is not None)
        cfg = self.config
        sides = (Side.CLIENT, Side.SERVER) if cdir == 0 else (Side.SERVER, Side.CLIENT)
        h0 = HalfStream(conv.stream, sides[0], self.stats, cfg.max_ooo_bytes, cfg.retain_bytes)
        h1 = HalfStream(conv.stream, sides[1], self.stats, cfg.max_ooo_bytes, cfg.retain_bytes)
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
