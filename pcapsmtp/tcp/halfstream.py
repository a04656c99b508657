"""One direction of a TCP conversation: sequence numbers in, ordered bytes and gaps out.

Offsets count from 0 at the side's first payload byte: the byte after the SYN when the SYN
was seen, else the first payload byte captured. Offsets are unbounded Python ints; sequence
numbers are unwrapped against the next expected sequence number, so a wrap past 2**32 inside
the conversation is invisible to the caller.

Policy:
- in-order bytes are delivered at once (no copy), never accumulated;
- out-of-order pieces wait in a sorted buffer bounded by ``max_ooo_bytes``; past the bound
  the first hole is declared a ``StreamGap`` and delivery goes on;
- overlaps: the first copy wins. Where a later copy disagrees on the overlapping bytes an
  ``OverlapConflict`` names both frames. Delivered bytes are compared against a bounded
  history (``retain_bytes``);
- a copy of delivered bytes, or of bytes buffered (out of order, or in a late start's soft
  buffer: each piece keeps the capture time of its first copy), is a retransmission of the
  side's (``resent_end``, which the verdict reads as the sender's having had no
  acknowledgement) only ``RESEND_MIN_NS`` or more after they were first captured: sooner it is
  the capture's duplicate of one packet (a SPAN port, two interfaces merged).
  ``retransmitted_bytes`` counts every copy, as tshark's ``tcp.analysis.retransmission`` flags
  one;
- keep-alives (0 or 1 byte at next-1) are neither data nor conflicts;
- bytes past the FIN, or after the side ended, are ignored (counted);
- ``missing`` bytes (snaplen cut) become a ``StreamGap`` at their offset with cause
  ``GapCause.SNAPLEN`` (named at the cut frame); nothing is zero-filled. Every other hole
  (never seen: acknowledged, given up at the buffer bound, or left at the end) is
  ``GapCause.LOST``. A cut tail and a hole next to it stay two gaps;
- a hole the peer has acknowledged is a gap (Zeek's "ACK above hole"): the peer received
  those bytes, so they were sent and only the capture lost them. ``catch_up`` declares it and
  delivers what became contiguous, before the peer's own payload is processed. The
  reassembler calls it only once the acknowledging segment's causal wait is over (the bytes
  did not arrive late within the window, see ``TcpReassembler._flow_segment``). The last
  acknowledged byte may be a FIN rather than data: while nothing proves otherwise (buffered
  data beyond it, the FIN itself, the peer sending payload of its own, or the peer's FIN
  acknowledging more than one byte past the data: a close does not overtake what it
  acknowledges, as a reset does not) that last hole waits;
- a hole the side's own later sequence number lies past is a gap too (tshark's
  ``tcp.analysis.lost_segment``, "previous segment not captured"): its stack had sent the bytes
  between. A pure ACK (``sent``: the reassembler's one comparison with ``next_seq``, made only
  on the pure-ACK path) buffers a zero-length *proof* piece at its offset, behind what is
  buffered: the hole before it is declared as any hole before buffered data (``flush``,
  ``catch_up``, the buffer bound), at the proof's frame, and a data segment that arrives later
  (its direction reordered on the way) still fills it. A FIN past a hole reports it at the FIN.
  A reset past the side's bytes (``reset_past``) is held by the reassembler as a segment
  acknowledging bytes not delivered, then declares what is still missing at its frame
  (``reset``). Neither counts one past the next byte (the ACK or reset after an uncaptured FIN,
  as for an acknowledgement), at or before it (keep-alives, window probes), beyond
  ``_SENT_SANE`` (garbage), nor a reset whose TTL lies more than a hop outside the side's
  range (forged: ``reset_ttl_foreign``, the rule the verdict's ``reset-forged`` uses too);
- a side whose start TCP does not tell (no SYN, no ``start_at``: a late start) starts at the
  lowest sequence number of its first segments, whatever order they arrive in: its bytes are
  buffered, not delivered, while it is *soft*, and a segment before them (up to 64 KiB) moves
  the start back. The reassembler
  settles it (``settle``) at the other side's first payload, FIN or RST (from there the two
  sides keep the capture's order; a pure ACK of these bytes waits for them as any segment
  that acknowledges bytes not delivered yet); this side settles it at its own FIN or RST, at
  ``late_segments`` segments or ``late_bytes`` bytes buffered, at a segment
  ``late_window_ns`` of capture time after its first one (``tick`` in live capture), when
  the other side's acknowledgement declares a hole (``catch_up``), and at the end. Until its
  first byte, its pure ACKs tell its next byte (``hint``), which the reassembler's causal wait
  reads where ``next_seq`` is not known yet;
- a side the capture holds no segment of claims no hole (a capture of the other direction
  only looks so) until its first segment comes: then the holes the peer's acknowledgements
  proved before it, as far as that segment's sequence number reaches, are declared at their
  frames (``seen``).
"""
from __future__ import annotations

from bisect import bisect_right
from collections import deque
from operator import itemgetter

from pcapsmtp.model import Side
from pcapsmtp.tcp.config import ReassemblyStats
from pcapsmtp.tcp.events import (
    FlowEvent, GapCause, OverlapConflict, StreamData, StreamEnd, StreamGap,
)
from pcapsmtp.tcp.seq import SEQ_HALF as _HALF
from pcapsmtp.tcp.seq import SEQ_MASK as _MASK
from pcapsmtp.tcp.seq import SEQ_MOD as _MOD

__all__ = ["HalfStream", "RESEND_MIN_NS", "RESET_TTL_SEGMENTS", "RESET_TTL_SLACK", "reset_ttl_foreign"]

_key0 = itemgetter(0)
#: an acknowledgement further than this beyond the delivered data is taken for garbage
_ACK_SANE = 1 << 30
#: a side's own sequence number (a pure ACK, a reset) further than this past its next byte is
#: taken for garbage, not for bytes it sent (more than a scaled TCP window in flight)
_SENT_SANE = 1 << 24

#: how many hops a reset's TTL (hop limit) may lie outside the range of its side's other
#: segments and still be that side's own: a route that changes by a hop during the
#: conversation (a reset further out was sent by something else on the path)
RESET_TTL_SLACK = 1
#: how many segments of the side after the handshake must carry a TTL for its range to count: one
#: (a host sends them all with one value; a count of more would turn on how the side's bytes were
#: cut into segments, not on what they show); a reset before any stays the side's
RESET_TTL_SEGMENTS = 1


def reset_ttl_foreign(ttl: int, lo: int, hi: int, segments: int) -> bool:
    """Whether a reset with TTL (hop limit) ``ttl`` was not sent by the stack of the side whose
    address it carries, by its TTL: ``ttl`` is known (not 0), the side's own segments after the
    handshake (``HalfStream.note_ttl``: not its SYN or SYN-ACK, nor a pure ACK before the other
    side's first byte) carried one, ``segments`` of them (at least ``RESET_TTL_SEGMENTS``), in
    ``lo..hi``, and ``ttl`` lies more than ``RESET_TTL_SLACK`` hops outside that range. The one
    rule for the TCP layer (such a reset proves no bytes sent, ``HalfStream.reset_past``) and
    for the verdict (the reset is a box's, ``reset-forged``)."""
    return (ttl != 0 and segments >= RESET_TTL_SEGMENTS
            and not lo - RESET_TTL_SLACK <= ttl <= hi + RESET_TTL_SLACK)


#: how long after bytes were first captured a copy of them must come to be read as the sender's
#: TCP retransmission (``resent_end``): sooner it is a copy of the same packet, which a SPAN port
#: or a capture merged from two interfaces of one host writes twice (microseconds apart), and
#: which shows nothing of the sender's acknowledgements. A stack resends a lone segment in flight
#: (a command, a 220, a short reply: what the verdict's rules read) no sooner than about 200 ms:
#: Linux's tail-loss probe waits 2 * SRTT plus its minimum RTO (200 ms) then (RFC 8985 7.2; with
#: two or more segments in flight only 2 * SRTT plus a few ms, since Linux 4.13, so on a LAN a
#: real probe of a large TLS flight may come sooner than this and is then read as a copy: the
#: later retransmissions still count), its retransmission timeout after 200 ms at the least
#: (RFC 6298 asks 1 s), Windows' after 300 ms. A fast retransmit (after three duplicate ACKs) can
#: come sooner, but only once the receiver's acknowledgements came back, which the verdict's rules
#: read themselves (a resend is their proof only when nothing of the receiver came). Not covered:
#: two taps on different hosts merged, where the same packet is captured once per tap, the
#: copies apart by the path's delay and the clocks' skew, which can pass 10 ms.
RESEND_MIN_NS = 10_000_000


def _resent(first: int | None, ts: int) -> bool:
    """Whether bytes captured at ``first`` (``HalfStream._compare_old``), captured again at
    ``ts``, were sent again by the side's TCP: ``RESEND_MIN_NS`` or more later (sooner: a copy of
    the same packet, a SPAN port's or two merged interfaces'). Without the time (no history kept,
    ``retain`` 0) it counts, as every copy did before the time was kept."""
    return first is None or ts - first >= RESEND_MIN_NS


#: how many of the peer's acknowledgements a side not in the capture yet keeps (``unproven``)
_UNPROVEN = 16

# A buffered piece: (offset, end, data or None for known-missing bytes, frame, ts_ns, ack: the
# acknowledgement the segment of ``frame`` carried, an offset in the other side's stream, -1 when
# not known, ``StreamData.ack``; age: ``StreamData.ack_age``)
_Piece = tuple[int, int, "bytes | None", int, int, int, int]


class HalfStream:
    """Reassembly state of one side (the bytes that side sent)."""

    __slots__ = ("stream", "side", "stats", "max_ooo", "retain", "base", "next_off", "next_seq",
                 "ooo", "ooo_bytes", "history", "history_bytes", "fin_off", "fin_frame",
                 "fin_ts", "fin_seq", "ended", "ack_seq", "ack_timed", "acked_ts", "acked_frame", "acked_fin",
                 "last_frame", "last_ts",
                 "syn_seen", "captured", "soft",
                 "soft_segs", "soft_ts", "soft_fixed", "late_segments", "late_bytes",
                 "late_window_ns", "resent_end", "ttl_lo", "ttl_hi", "ttl_n", "ttl_first",
                 "ttl_last", "hint", "unproven")

    def __init__(self, stream: int, side: Side, stats: ReassemblyStats, max_ooo: int,
                 retain: int, late_segments: int = 64, late_bytes: int = 4096,
                 late_window_ns: int = 2 * 10**9) -> None:
        self.stream = stream
        self.side = side
        self.stats = stats
        self.max_ooo = max_ooo
        self.retain = retain
        self.base: int | None = None       #: sequence number of offset 0
        self.next_off = 0                  #: next offset to deliver
        self.next_seq = 0                  #: (base + next_off) mod 2**32
        self.ooo: list[_Piece] = []
        self.ooo_bytes = 0
        #: the delivered bytes last captured (offset, bytes, frame, capture time), ``retain``
        #: bytes of them and at least the last segment's
        self.history: deque[tuple[int, bytes, int, int]] = deque()
        self.history_bytes = 0
        self.fin_off: int | None = None
        self.fin_frame = 0
        self.fin_ts = 0
        self.fin_seq = 0                   #: the FIN's sequence number (``fin``), with ``fin_off``
        self.ended = False
        self.ack_seq: int | None = None    #: highest sequence number the peer acknowledged
        #: the reassembler keeps ``acked_ts`` and ``acked_fin`` for this side: the server's only
        #: (the verdict reads when the client's acknowledgement of the server's bytes last
        #: advanced, ``FlowClosed.server_acked_ns``; nothing reads the server's of the client's,
        #: the side of most acknowledgements in a mail's transfer)
        self.ack_timed = side is Side.SERVER
        #: the capture time of the peer's segment whose acknowledgement last advanced
        #: (``ack_seq``), except from this side's captured FIN (``fin_seq``) to one past it (an
        #: advance over the FIN alone); 0: none. By when this side's bytes had arrived: a stack
        #: acknowledges within its delayed-ACK timeout (at most 500 ms, RFC 1122 4.2.3.2).
        #: The reassembler sets it, when ``ack_timed``
        self.acked_ts = 0
        #: the frame of that segment (for the continuous time of a capture whose clock steps
        #: back, ``analysis.clock``); 0: none. The reassembler sets it, with ``acked_ts``
        self.acked_frame = 0
        #: that advance also covered this side's captured FIN (it was sent after the FIN
        #: arrived). The reassembler sets it, when ``ack_timed``
        self.acked_fin = False
        self.last_frame = 0
        self.last_ts = 0
        #: the end offset of the furthest bytes this side sent again ``RESEND_MIN_NS`` or more
        #: after they were first captured (a TCP retransmission: no acknowledgement had come back
        #: in time; a copy sooner is the capture's duplicate, ``_resent``), delivered or buffered
        #: (``_insert``); 0: none
        self.resent_end = 0
        self.syn_seen = False
        #: a segment of this side is in the capture, also one the reassembler saw before this
        #: object existed (a pure ACK before the conversation was known to be SMTP); the
        #: side's own SYN, payload, FIN or RST (``syn_seen``, ``last_frame``) say it too
        self.captured = False
        #: the start is the lowest sequence number seen so far (no SYN told it): bytes are
        #: buffered until ``settle``
        self.soft = False
        self.soft_segs = 0                 #: segments buffered while soft
        self.soft_ts = 0                   #: capture time of the first of them
        self.soft_fixed = False            #: an event named an offset: the start moves no more
        self.late_segments = late_segments
        self.late_bytes = late_bytes
        self.late_window_ns = late_window_ns
        #: the TTL (hop limit) range of this side's segments after the handshake (``note_ttl``),
        #: how many carried one, the first and last of their frames
        self.ttl_lo = 0
        self.ttl_hi = 0
        self.ttl_n = 0
        self.ttl_first = 0
        self.ttl_last = 0
        #: while no byte, SYN or FIN of this side told where it starts (``base`` None): the
        #: furthest sequence number of its pure ACKs, its next byte when each was sent
        #: (``note_ack``), else None
        self.hint: int | None = None
        #: while no segment of this side is in the capture: the peer's acknowledgements that
        #: would have declared holes (ack, strict, frame, ts), the first ``_UNPROVEN`` of them
        #: (``catch_up``; declared in hindsight at its first segment, ``seen``)
        self.unproven: list[tuple[int, bool, int, int]] = []

    # -- sequence space -------------------------------------------------------------------
    def _off(self, seq: int) -> int:
        d = (seq - self.next_seq) & _MASK
        if d >= _HALF:
            d -= _MOD
        return self.next_off + d

    def _set_base(self, seq: int) -> None:
        self.base = seq & _MASK
        self.next_seq = self.base
        self.next_off = 0

    def syn(self, seq: int) -> None:
        """A SYN (or SYN-ACK) of this side: offset 0 is the byte after it."""
        self.syn_seen = True
        if self.base is None:
            self._set_base(seq + 1)

    def note_ttl(self, ttl: int, frame: int) -> None:
        """A segment of this side after the handshake (not a SYN, not a reset) came with TTL or
        hop limit ``ttl`` (not 0): the range a reset of this side's own stack lies in, give or
        take ``RESET_TTL_SLACK`` (``reset_ttl_foreign``)."""
        if self.ttl_n:
            if ttl < self.ttl_lo:
                self.ttl_lo = ttl
            elif ttl > self.ttl_hi:
                self.ttl_hi = ttl
        else:
            self.ttl_lo = self.ttl_hi = ttl
            self.ttl_first = frame
        self.ttl_n += 1
        self.ttl_last = frame

    def note_ack(self, seq: int) -> None:
        """A pure ACK of this side at ``seq`` (no payload, SYN, FIN or RST) while its start is
        not known: its next byte then (``hint``). Only the reassembler's causal wait reads it
        (what the other side's acknowledgement lies ahead of); it is no start (a keep-alive's
        sequence number is one before the next byte)."""
        h = self.hint
        if h is None or 0 < ((seq - h) & _MASK) < _HALF:
            self.hint = seq & _MASK

    def next_known(self) -> int | None:
        """The sequence number of this side's next byte to deliver, or, its start not known, its
        next byte as its pure ACKs said (``hint``), or None."""
        return self.next_seq if self.base is not None else self.hint

    def start_at(self, seq: int) -> None:
        """Offset 0 is the byte at ``seq`` (a stream that starts inside the conversation, e.g.
        after a proxy handshake). Only before any byte of this side was seen."""
        if self.base is None:
            self._set_base(seq)

    def sent(self, seq: int, frame: int, ts: int) -> None:
        """A segment of this side without payload, FIN or SYN (a pure ACK) whose sequence number
        ``seq`` is not the next one expected (the caller's one comparison). Past it (tshark's
        "previous segment not captured"), the side's stack had sent the bytes between: a
        zero-length *proof* piece at its offset is buffered behind what is buffered, so the
        hole before it is declared as any hole before buffered data (``flush``, ``catch_up``,
        the buffer bound), at this frame, while a data segment that arrives late (reordered on
        the way) still fills it. One past the next byte is most likely the ACK after an
        uncaptured FIN (as for an acknowledgement); at or before it (a keep-alive, a window
        probe's) or too far past (``_SENT_SANE``) it proves nothing; nor does it within or one past
        the bytes buffered already (they prove the holes before them themselves)."""
        if self.base is None or self.ended or self.fin_off is not None:
            return
        k = (seq - self.next_seq) & _MASK
        if k <= 1 or k >= _SENT_SANE:
            return
        off = self.next_off + k
        ooo = self.ooo
        if not ooo or off - ooo[-1][1] > 1:     # past what is buffered too (k > 1 past the next)
            ooo.append((off, off, b"", frame, ts, -1, -1))

    def reset_past(self, seq: int, ttl: int) -> bool:
        """Whether a reset of this side at ``seq`` with TTL ``ttl`` proves bytes sent that were
        not delivered: it lies more than one past the next byte (one past: an uncaptured
        FIN's), within ``_SENT_SANE``, the side ended neither by FIN nor otherwise, a segment of
        its own is in the capture, and its TTL is not foreign to the side's other segments
        (``reset_ttl_foreign``: within a hop of their range; a reset forged by a box on the
        path knows no more of the side's stack than the capture). Bytes buffered below it count
        as not delivered: a hole before them may still be filled. The reassembler holds such a
        reset as long as a segment acknowledging bytes not delivered (a data segment reordered
        behind it still comes first)."""
        return self._reset_gap(seq, ttl) > 0

    def _reset_gap(self, seq: int, ttl: int) -> int:
        """How many bytes a reset at ``seq`` proves sent and not delivered (``reset_past``), or 0."""
        if (self.base is None or self.ended or self.fin_off is not None
                or not (self.syn_seen or self.captured or self.next_off or self.ooo)
                or reset_ttl_foreign(ttl, self.ttl_lo, self.ttl_hi, self.ttl_n)):
            return 0
        k = (seq - self.next_seq) & _MASK
        return k if 1 < k < _SENT_SANE else 0

    def seen(self, seq: int, out: list[FlowEvent]) -> None:
        """The first segment of this side in the capture, at sequence number ``seq`` (before
        the reassembler reads it): the peer's acknowledgements before it that ``seq`` reaches
        declare the holes they would have declared had the side been in the capture
        (``catch_up`` at their frames), in hindsight: the capture is of both directions, and
        the side's own segment lies past those bytes (its stack sent them before it). Bytes
        past ``seq`` may still come (a SYN-ACK or early bytes of a direction captured late,
        two taps merged whose clocks differ): their acknowledgements prove nothing yet."""
        self.captured = True
        rec, self.unproven = self.unproven, []
        cur = self.ack_seq
        for a, strict, frame, ts in rec:
            if ((seq - a) & _MASK) >= _ACK_SANE:
                break                   # (the acknowledgements only grow)
            self.ack_seq = a
            self.catch_up(strict, frame, ts, out)
        self.ack_seq = cur

    def catch_up(self, strict: bool, frame: int, ts: int, out: list[FlowEvent],
                 spare: int = 0) -> None:
        """Declare as gaps the holes below what the peer acknowledged (``ack_seq``) and deliver
        the buffered data that becomes contiguous. ``frame``/``ts`` name the segment that proved
        the loss; a hole followed by buffered bytes is reported at their frame instead.

        Without data known beyond the acknowledged range and without the FIN, the last
        acknowledged byte could be an uncaptured FIN: then the hole waits unless ``strict``
        (the peer is sending payload, or closing, now, which must not overtake this side's
        bytes); ``spare`` 1: the last byte acknowledged is this side's FIN, which the reassembler
        holds (it comes later in causal order): only the bytes before it are declared."""
        if self.soft:
            self.settle(out)
        a = self.ack_seq
        if a is None or self.base is None or self.ended:
            return
        if not (self.syn_seen or self.last_frame or self.captured):
            # a side the capture holds no segment of claims no hole (one-sided) until its first
            # segment comes (``seen``)
            u = self.unproven
            if len(u) < _UNPROVEN and (not u or u[-1][0] != a or strict and not u[-1][1]):
                u.append((a, strict, frame, ts))
            return
        k = (a - self.next_seq) & _MASK
        if k == 0 or k >= _ACK_SANE:
            return                  # nothing new, an old ACK, or garbage
        limit = self.next_off + k
        fin_off = self.fin_off
        if fin_off is not None and limit > fin_off:
            limit = fin_off
        ooo = self.ooo
        while self.next_off < limit and not self.ended:
            nxt = self.next_off
            if ooo:
                p = ooo[0]
                if p[0] <= limit:
                    end, gframe, gts = p[0], p[3], p[4]
                else:
                    end, gframe, gts = limit, frame, ts
            elif fin_off is not None and limit >= fin_off:
                # the hole ends at the FIN: reported at the FIN's frame, the one after it
                end, gframe, gts = limit, self.fin_frame, self.fin_ts
            elif fin_off is not None or strict and not spare:
                end, gframe, gts = limit, frame, ts
            elif strict and limit - spare > nxt:
                end, gframe, gts = limit - spare, frame, ts
            else:
                return
            self.stats.acked_gap_bytes += end - nxt
            self._gap(nxt, end - nxt, gframe, gts, out)
            self._advance(end)
            self._drain(out)
            if fin_off is not None:
                self._check_fin(out)

    def acked_offset(self) -> int | None:
        """The offset up to which the peer acknowledged this side's bytes (its highest ACK
        captured); None without one, or for an ACK wildly beyond the data (garbage)."""
        return self._max_ack_off()

    def _max_ack_off(self) -> int | None:
        if self.ack_seq is None or self.base is None:
            return None
        off = self._off(self.ack_seq)
        # an ACK wildly beyond what we delivered is more likely garbage than loss
        if off - self.next_off >= _ACK_SANE:
            return None
        return off

    # -- data -------------------------------------------------------------------------------
    def data(self, seq: int, payload: bytes, missing: int, frame: int, ts: int,
             out: list[FlowEvent], ack: int = -1, age: int = -1) -> None:
        """Payload bytes of this side at ``seq`` (``missing`` uncaptured bytes follow); ``ack``:
        the acknowledgement the segment carried, an offset in the other side's stream, -1 when not
        known, and ``age``, how long before it that acknowledgement was reached (the
        reassembler's, ``StreamData.ack`` and ``ack_age``): stored with the bytes, nothing more."""
        n = len(payload)
        total = n + missing
        self.last_frame = frame
        self.last_ts = ts
        if self.base is None:
            self._set_base(seq)
            self.soft = True
            self.soft_ts = ts
        if self.soft:
            if ts - self.soft_ts < self.late_window_ns:
                self._soft_data(seq, payload, missing, frame, ts, out, ack, age)
                return
            self.settle(out)
        if self.ended:
            self.stats.after_fin_bytes += total
            return
        nxt = self.next_off
        d = (seq - self.next_seq) & _MASK
        if d >= _HALF:
            d -= _MOD
        off = nxt + d
        end = off + total
        fin_off = self.fin_off
        if fin_off is not None and end > fin_off:
            if off >= fin_off:
                self.stats.after_fin_bytes += total
                return
            cut = end - fin_off
            self.stats.after_fin_bytes += cut
            if cut <= missing:
                missing -= cut
            else:
                payload = payload[:n - (cut - missing)]
                missing = 0
                n = len(payload)
            total = n + missing
            end = fin_off
        # fast path: the next bytes, nothing waiting
        if off == nxt and not self.ooo:
            self._deliver(off, payload, missing, frame, ts, out, ack, age)
            return
        if end <= nxt:
            if total <= 1 and off == nxt - 1:
                self.stats.keepalives += 1
                return
            first = self._compare_old(off, payload, frame, ts, out)
            self.stats.retransmitted_bytes += total
            if end > self.resent_end and _resent(first, ts):
                self.resent_end = end
            return
        if off < nxt:
            k = nxt - off
            if k <= n:
                first = self._compare_old(off, payload[:k], frame, ts, out)
                payload = payload[k:]
            else:
                first = self._compare_old(off, payload, frame, ts, out)
                missing -= k - n
                payload = b""
            self.stats.retransmitted_bytes += k
            if nxt > self.resent_end and _resent(first, ts):
                self.resent_end = nxt
            off = nxt
            n = len(payload)
        if off == nxt and not self.ooo:
            self._deliver(off, payload, missing, frame, ts, out, ack, age)
            return
        if n:
            self._insert(off, off + n, payload, frame, ts, out, ack, age)
        if missing:
            self._insert(off + n, off + n + missing, None, frame, ts, out, ack, age)
        self._drain(out)
        if self.ack_seq is not None and self.ooo:
            self.catch_up(False, frame, ts, out)      # bytes the peer already acknowledged
        while self.ooo_bytes > self.max_ooo and self.ooo:
            p = self.ooo[0]
            hole = p[0] - self.next_off
            self.stats.ooo_dropped_bytes += hole
            self._gap(self.next_off, hole, p[3], p[4], out)
            self._advance(p[0])
            self._drain(out)

    def _soft_data(self, seq: int, payload: bytes, missing: int, frame: int, ts: int,
                   out: list[FlowEvent], ack: int = -1, age: int = -1) -> None:
        """Bytes of a side whose start is not known yet (``soft``): buffered. A segment before
        the lowest so far (up to 64 KiB before) moves the start back to its sequence number:
        its bytes came late (a hole it leaves before the lowest waits as any hole does; an
        acknowledgement of the other side that covers it says nothing: merged taps show ACKs
        before the bytes they acknowledge); unless an event already named an offset (the
        start moves no more: its bytes from the lowest count)."""
        n = len(payload)
        total = n + missing
        base = self.base
        assert base is not None
        back = (base - seq) & _MASK
        if 0 < back < _HALF:
            if back > 0xFFFF or self.soft_fixed:
                self.stats.retransmitted_bytes += min(total, back)
                if back >= total:
                    return
                if back <= n:       # its bytes from the lowest on still count
                    payload = payload[back:]
                else:
                    missing -= back - n
                    payload = b""
                seq = base
                n = len(payload)
            else:
                self._set_base(seq)
                self.ooo = [(o + back, e + back, d, f, t, a, g) for o, e, d, f, t, a, g in self.ooo]
                if self.resent_end:
                    self.resent_end += back
        off = self._off(seq)
        conflicts = self.stats.conflicts
        if n:
            self._insert(off, off + n, payload, frame, ts, out, ack, age)
        if missing:
            self._insert(off + n, off + n + missing, None, frame, ts, out, ack, age)
        if self.stats.conflicts != conflicts:
            self.soft_fixed = True
        self.soft_segs += 1
        if self.soft_segs >= self.late_segments or self.ooo_bytes >= self.late_bytes:
            self.settle(out)

    def settle(self, out: list[FlowEvent]) -> None:
        """The start of a soft side is where it is now (the lowest sequence number seen):
        deliver the bytes buffered from there, as far as they are contiguous (a later hole
        waits as any out-of-order piece does)."""
        if not self.soft:
            return
        self.soft = False
        if self.ooo:
            self._drain(out)

    def fin(self, seq_after: int, frame: int, ts: int, out: list[FlowEvent]) -> None:
        """A FIN whose sequence number (after any payload) is ``seq_after``."""
        if self.soft:
            self.settle(out)
        self.last_frame = frame
        self.last_ts = ts
        if self.ended:
            return
        if self.base is None:
            self._set_base(seq_after)
        if self.fin_off is None:
            off = self._off(seq_after)
            if off < self.next_off:
                off = self.next_off       # a FIN below what we delivered: end here
            self.fin_off = off
            self.fin_seq = seq_after
            self.fin_frame = frame
            self.fin_ts = ts
            # anything buffered beyond the FIN is not data
            while self.ooo and self.ooo[-1][1] > off:
                p = self.ooo.pop()
                self.ooo_bytes -= p[1] - p[0]
                if p[0] < off:
                    self.ooo.append((p[0], off, None if p[2] is None else p[2][:off - p[0]],
                                     p[3], p[4], p[5], p[6]))
                    self.ooo_bytes += off - p[0]
                    self.stats.after_fin_bytes += p[1] - off
                else:
                    self.stats.after_fin_bytes += p[1] - p[0]
            if self.ack_seq is not None:
                self.catch_up(False, frame, ts, out)  # the peer acknowledged up to the FIN
        self._check_fin(out)

    def _check_fin(self, out: list[FlowEvent]) -> None:
        if self.fin_off is not None and self.next_off >= self.fin_off and not self.ended:
            self.ended = True
            self._release()
            out.append(StreamEnd(self.stream, self.side, False, False, self.fin_frame,
                                 self.fin_ts))

    def reset(self, frame: int, ts: int, out: list[FlowEvent], ttl: int, seq: int) -> None:
        """A RST from this side (its TTL or hop limit ``ttl``, 0: unknown; its sequence number
        ``seq``): deliver what is buffered (holes become gaps) and end. A reset whose sequence
        number lies past what was delivered (more than one past: an uncaptured FIN's, and
        within ``_SENT_SANE``) proves the bytes between sent: a gap at the reset's frame,
        unless its TTL is foreign to the side's other segments (``reset_ttl_foreign``: a reset
        forged by a box on the path knows no more of the side's stack than the capture). The
        ``StreamEnd`` carries the reset's TTL and the range of this side's other segments
        (``note_ttl``)."""
        self.soft = False
        self.last_frame = frame
        self.last_ts = ts
        if self.ended:
            return
        self._flush_buffer(out)
        if self.ended:              # the buffer completed the stream up to its FIN
            return
        if self.fin_off is not None:
            if self.next_off < self.fin_off:
                self._gap(self.next_off, self.fin_off - self.next_off, frame, ts, out)
                self._advance(self.fin_off)
        else:
            k = self._reset_gap(seq, ttl)
            if k:
                self._gap(self.next_off, k, frame, ts, out)
                self._advance(self.next_off + k)
        self.ended = True
        self._release()
        n = self.ttl_n
        out.append(StreamEnd(self.stream, self.side, True, False, frame, ts, ttl,
                             (self.ttl_lo, self.ttl_hi) if n else None, n,
                             (self.ttl_first, self.ttl_last) if n else None))

    def flush(self, out: list[FlowEvent]) -> None:
        """The flow is being closed: holes before received data (or before the FIN, or
        before what the peer acknowledged) become gaps, then the side ends."""
        self.soft = False
        if self.ended:
            return
        self._flush_buffer(out)
        if self.ended:
            return
        limit = self.fin_off
        if limit is None and (self.syn_seen or self.last_frame or self.captured):
            acked = self._max_ack_off()
            # an ACK one past the data is most likely the ACK of an uncaptured FIN
            if acked is not None and acked - self.next_off > 1:
                limit = acked
        if limit is not None and limit > self.next_off:
            # at the FIN, the side's first segment past the hole; else its last segment
            at = ((self.fin_frame, self.fin_ts) if limit == self.fin_off
                  else (self.last_frame, self.last_ts))
            self._gap(self.next_off, limit - self.next_off, at[0], at[1], out)
            self._advance(limit)
        self.ended = True
        self._release()
        if self.fin_off is not None:
            out.append(StreamEnd(self.stream, self.side, False, False, self.fin_frame,
                                 self.fin_ts))
        else:
            out.append(StreamEnd(self.stream, self.side, False, True, self.last_frame,
                                 self.last_ts))

    # -- internals ----------------------------------------------------------------------------
    def _release(self) -> None:
        self.ooo.clear()
        self.ooo_bytes = 0
        self.history.clear()
        self.history_bytes = 0

    def _advance(self, off: int) -> None:
        self.next_seq = (self.next_seq + off - self.next_off) & _MASK
        self.next_off = off

    def _gap(self, off: int, length: int, frame: int, ts: int, out: list[FlowEvent],
             cause: GapCause = GapCause.LOST) -> None:
        if length <= 0:
            return
        self.stats.gaps += 1
        self.stats.gap_bytes += length
        if cause is GapCause.SNAPLEN:
            self.stats.snaplen_gap_bytes += length
        acked = self._max_ack_off()
        out.append(StreamGap(self.stream, self.side, off, length, frame, ts, cause,
                             acked is not None and acked >= off + length))

    def _deliver(self, off: int, payload: bytes, missing: int, frame: int, ts: int,
                 out: list[FlowEvent], ack: int, age: int) -> None:
        n = len(payload)
        if n:
            out.append(StreamData(self.stream, self.side, off, payload, frame, ts, ack, age))
            if self.retain:
                h = self.history
                h.append((off, payload, frame, ts))
                self.history_bytes += n
                while self.history_bytes - len(h[0][1]) >= self.retain:
                    self.history_bytes -= len(h.popleft()[1])
        if missing:
            self._gap(off + n, missing, frame, ts, out, GapCause.SNAPLEN)
        self.next_off = off + n + missing
        self.next_seq = (self.next_seq + n + missing) & _MASK
        if self.fin_off is not None:
            self._check_fin(out)

    def _compare_old(self, off: int, payload: bytes, frame: int, ts: int,
                     out: list[FlowEvent]) -> int | None:
        """Compare a retransmitted copy with the delivered bytes still in the history. Returns
        when the latest of the delivered bytes it overlaps were captured; without one in the
        history (they are older, or it carries no captured byte), the capture time of the oldest
        kept, which they were captured no later than; None with no history (``retain`` 0)."""
        n = len(payload)
        h = self.history
        if not h:
            return None
        first = h[0][3]
        if not n:
            return first
        end = off + n
        found = -1
        for hoff, hdata, hframe, hts in reversed(h):
            hend = hoff + len(hdata)
            if hend <= off:
                break
            if hoff >= end:
                continue
            if hts > found:
                found = hts
            s = max(off, hoff)
            e = min(end, hend)
            if payload[s - off:e - off] != hdata[s - hoff:e - hoff]:
                self.stats.conflicts += 1
                out.append(OverlapConflict(self.stream, self.side, s, e - s, hframe, frame, ts))
        return found if found >= 0 else first


    def _insert(self, s: int, e: int, data: bytes | None, frame: int, ts: int,
                out: list[FlowEvent], ack: int, age: int) -> None:
        """Buffer ``[s, e)`` except where earlier pieces already cover it (first copy wins)."""
        ooo = self.ooo
        i = bisect_right(ooo, s, key=_key0)
        if i > 0 and ooo[i - 1][1] > s:
            i -= 1
        cur = s
        new: list[_Piece] = []
        while cur < e:
            if i < len(ooo) and ooo[i][0] < e:
                p = ooo[i]
                if p[0] == p[1]:        # a proof (``sent``): no bytes, nothing to split at
                    i += 1
                    continue
                if p[0] > cur:
                    new.append((cur, p[0], None if data is None else data[cur - s:p[0] - s],
                                frame, ts, ack, age))
                    cur = p[0]
                oe = min(e, p[1])
                if oe > cur:
                    if data is not None and p[2] is not None:
                        if data[cur - s:oe - s] != p[2][cur - p[0]:oe - p[0]]:
                            self.stats.conflicts += 1
                            out.append(OverlapConflict(self.stream, self.side, cur, oe - cur, p[3],
                                                       frame, ts))
                    self.stats.retransmitted_bytes += oe - cur
                    # the piece keeps its first capture time: the copy rule, as for delivered
                    # bytes (``_resent``)
                    if oe > self.resent_end and ts - p[4] >= RESEND_MIN_NS:
                        self.resent_end = oe
                cur = oe
                i += 1
            else:
                if cur == s:
                    new.append((s, e, data, frame, ts, ack, age))
                else:
                    new.append((cur, e, None if data is None else data[cur - s:], frame, ts, ack, age))
                cur = e
        for p in new:
            j = bisect_right(ooo, p[0], key=_key0)
            ooo.insert(j, p)
            self.ooo_bytes += p[1] - p[0]

    def _drain(self, out: list[FlowEvent]) -> None:
        ooo = self.ooo
        while ooo and ooo[0][0] <= self.next_off and not self.ended:
            p = ooo.pop(0)
            self.ooo_bytes -= p[1] - p[0]
            if p[1] <= self.next_off:
                continue
            if p[2] is None:        # the cut tail of frame p[3]
                self._gap(self.next_off, p[1] - self.next_off, p[3], p[4], out, GapCause.SNAPLEN)
                self._advance(p[1])
                if self.fin_off is not None:
                    self._check_fin(out)
            else:
                data = p[2]
                if p[0] < self.next_off:
                    data = data[self.next_off - p[0]:]
                self._deliver(self.next_off, data, 0, p[3], p[4], out, p[5], p[6])

    def _flush_buffer(self, out: list[FlowEvent]) -> None:
        """Deliver everything buffered, declaring each hole before it a gap."""
        while self.ooo:
            p = self.ooo[0]
            if p[0] > self.next_off:
                self._gap(self.next_off, p[0] - self.next_off, p[3], p[4], out)
                self._advance(p[0])
            self._drain(out)
