"""The fused file loop: read, decode and number every TCP segment of a capture, building a
``TcpSegment`` only for the segments the reassembler needs to see.

Most packets of a relay capture are not SMTP. For each of them the reassembler only keeps
Wireshark's ``tcp.stream`` numbering. This loop takes the records from the capture layer as
views into its read buffer (``capture.pcapfile.iter_views``: one loop for pcap and pcapng),
unpacks the Ethernet/IPv4 or IPv6/TCP header fields of the common case with one ``struct``
call at fixed offsets, computes the table key from the raw address integers, and asks the TCP
layer (``tcp.streams.StreamTable.classify``) whether the segment is numbering work only. If
it is, the table has done it and the segment is only counted; otherwise (an SMTP port, a
payload that could start SMTP, a candidate's segment) it becomes a ``KeyedSegment`` fed to
``Analyzer.feed``. Every frame the fixed-offset unpack does not cover (VLAN, SLL, IP
options, fragments, cut frames, other link types) goes through ``Decoder.decode_raw``.

What the general path keeps that this one keeps too: frame numbers (every record counts),
the reassembler's idle sweep every ``idle_check_every`` TCP segments (same segment, same
timestamp: ``TcpReassembler.countdown``), ``stats.segments``, ``stats.after_close_segments``,
``Analyzer.packets``, the reassembler's last timestamp (``TcpReassembler.skipped``) and the
decoder's counters (``Decoder.count``) and notes.
``tests/perf/test_fastpath_equivalence.py`` checks that both paths give the same events and
the same conversations on every capture of the repository and of the public corpus.
"""
from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from pcapsmtp.capture.decode import Decoder
from pcapsmtp.capture.pcapfile import RecordView, iter_views
from pcapsmtp.errors import CaptureError
from pcapsmtp.model import TcpSegment
from pcapsmtp.tcp.streams import V6KEY, KeyedSegment, int_key

__all__ = ["FusedLoop", "OrderedEmitter", "AddrInts", "keyed"]

# Ethernet (from byte 12) + IPv4 without options + TCP: ethertype, version/IHL, total length,
# flags/fragment offset, protocol, src, dst (as integers), sport, dport, seq, ack, data
# offset, flags. Needs 54 bytes of frame.
_ETH4 = struct.Struct("!HBxH2xHxB2xIIHHIIBB").unpack_from

# Ethernet IPv6 without extension headers + TCP, from byte 14: version/traffic class, payload
# length, next header, src and dst (two 64-bit halves each), then TCP as above. Needs 74 bytes.
_ETH6 = struct.Struct("!B3xHBxQQQQHHIIBB").unpack_from

class AddrInts:
    """Text address -> integer, cached (for segments decoded by ``Decoder.decode_raw``)."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def get(self, text: str) -> int:
        v = self._cache.get(text)
        if v is None:
            if len(self._cache) > 65536:
                self._cache.clear()
            fam = socket.AF_INET6 if ":" in text else socket.AF_INET
            v = self._cache[text] = int.from_bytes(socket.inet_pton(fam, text), "big")
        return v


def keyed(seg: TcpSegment, addrs: AddrInts) -> KeyedSegment:
    """``seg`` with its integer light-table key (the decoder's text addresses are always
    valid ``inet_ntop`` output)."""
    key, d = int_key(addrs.get(seg.src), seg.sport, addrs.get(seg.dst), seg.dport,
                     ":" in seg.src)
    return KeyedSegment(seg.frame, seg.ts_ns, seg.src, seg.sport, seg.dst, seg.dport, seg.seq,
                        seg.ack, seg.flags, seg.payload, seg.missing, key, d)


#: A conversation on another port that has carried no payload for this long (capture time)
#: no longer holds back the output: an SMTP client waits 5 minutes for the greeting
#: (RFC 5321 4.5.3.2.1), so it is very unlikely to turn into SMTP.
GREETING_WAIT_NS = 300 * 10**9


def _order(conv: dict[str, Any]) -> tuple[int, int]:
    return conv["first_frame"], conv["stream"]


class OrderedEmitter:
    """Hands conversations to ``emit`` in the pipeline's output order (first frame, then
    stream) as soon as no conversation that could still be reported can come before them,
    so a run need not hold every conversation of a big file. ``check(done)`` takes the
    concluded conversations out of ``done`` when it is safe (the analyzer's ``post`` runs on
    each, in order, as in the batch path); ``finish(done)`` the rest, at the end.
    A conversation on another port still without payload after ``GREETING_WAIT_NS`` no
    longer holds the others back; in the unlikely case it then turns into SMTP, its result
    comes after later ones (the batch formats still sort it into place)."""

    def __init__(self, analyzer: Any, emit: Callable[[dict[str, Any]], None]) -> None:
        self.an = analyzer
        self.emit = emit
        self.threshold = 64

    def check(self, done: list[dict[str, Any]]) -> None:
        if len(done) < self.threshold:
            return
        reasm = self.an.reassembler
        now = reasm.clock_ns
        bound = reasm.earliest_pending_frame(None if now is None else now - GREETING_WAIT_NS)
        done.sort(key=_order)
        k = len(done)
        if bound is not None:
            k = 0
            while k < len(done) and done[k]["first_frame"] < bound:
                k += 1
        post = self.an.post
        for conv in done[:k]:
            post(conv)
            self.emit(conv)
        del done[:k]
        # a long-undecided conversation holds the rest back: look again when twice as many
        # wait (the walk over the light table is amortised)
        self.threshold = max(64, 2 * len(done))

    def finish(self, done: list[dict[str, Any]]) -> None:
        done.sort(key=_order)
        post = self.an.post
        for conv in done:
            post(conv)
            self.emit(conv)
        done.clear()


class FusedLoop:
    """Feed every TCP segment of one capture file into ``analyzer`` (a fresh
    ``engine.analyzer.Analyzer``), appending the conversations it returns to ``done``.

    ``frames`` is the number of the last record read, also after a ``CaptureError`` (which
    ``run`` lets through once every record before the damage has been fed).

    One loop for every format: the capture layer hands out record views
    (``capture.pcapfile.iter_views``), the TCP layer classifies the raw fields
    (``tcp.streams.StreamTable.classify``); only what the reassembler must see becomes a
    ``KeyedSegment``."""

    def __init__(self, analyzer: Any, decoder: Decoder, done: list[dict[str, Any]],
                 emitter: OrderedEmitter | None = None) -> None:
        self.an = analyzer
        self.dec = decoder
        self.done = done
        self.frames = 0
        #: frames of the earlier pieces of a rotated set: this file's record n is frame
        #: ``frame_base + n`` for the analyzer (``engine.rotated`` translates back)
        self.frame_base = 0
        self._addrs = AddrInts()
        self._check = emitter.check if emitter is not None else None

    def run(self, path: str, *, stdin: BinaryIO | None = None,
            progress: Callable[[int, int], None] | None = None) -> None:
        # (Disabling the cyclic GC during the loop was measured: no difference beyond noise
        # on the 1 M-packet benchmark file, so the collector stays on.)
        try:
            self.loop(iter_views(path, stdin=stdin, number_base=self.frame_base), progress)
        except MemoryError:
            raise CaptureError(path, None, "out of memory while reading the capture") from None

    def loop(self, views: Iterator[RecordView],
             progress: Callable[[int, int], None] | None = None) -> None:
        """The loop itself, over any source of record views."""
        an = self.an
        an_feed = an.feed
        reasm = an.reassembler
        classify = reasm.table.classify
        dec = self.dec
        decode_raw = dec.decode_raw
        addresses = dec.addresses
        addrs = self._addrs
        done = self.done
        check = self._check
        eth4 = _ETH4
        eth6 = _ETH6
        number = self.frame_base
        # counts not yet handed to their owners (flushed before every call that reads them)
        skipped = 0          # TCP segments done by classify: Analyzer.packets, stats.segments
        fast_frames = 0      # frames decoded here: Decoder.frames
        fast_tcp = 0         # TCP segments decoded here: Decoder.tcp_segments
        last_ts: int | None = None      # timestamp of the last segment skipped here
        cd = reasm.countdown            # the reassembler's idle-sweep countdown
        try:
            for number, ts_ns, lt, buf, hend, end, wirelen, off in views:
                if progress is not None and not number & 0xFFFF:
                    progress(number, off)
                if lt == 1 and end - hend >= 54:
                    (et, vihl, tot, ff, proto, sa, da, sport, dport, seq, ack, doff,
                     flags) = eth4(buf, hend + 12)
                    ok = False
                    if et == 0x0800 and vihl == 0x45:
                        if proto != 6:
                            fast_frames += 1     # not TCP: nothing to decode
                            continue
                        ip_end = hend + 14 + tot
                        pstart = hend + 34 + ((doff >> 4) << 2)
                        if not ff & 0x3FFF and ip_end <= end and hend + 54 <= pstart <= ip_end:
                            ok = True
                            if sport < dport or (sport == dport and sa < da):
                                key = sa << 64 | da << 32 | sport << 16 | dport
                                d = 0
                            else:
                                key = da << 64 | sa << 32 | dport << 16 | sport
                                d = 1
                            a0 = hend + 26
                            a1 = hend + 34
                    elif et == 0x86DD and end - hend >= 74:
                        (vtc, plen, nh, s1, s2, d1, d2, sport, dport, seq, ack, doff,
                         flags) = eth6(buf, hend + 14)
                        if nh == 6 and vtc >> 4 == 6 and plen:
                            ip_end = hend + 54 + plen
                            pstart = hend + 54 + ((doff >> 4) << 2)
                            if ip_end <= end and hend + 74 <= pstart <= ip_end:
                                ok = True
                                sa = s1 << 64 | s2
                                da = d1 << 64 | d2
                                if sport < dport or (sport == dport and sa < da):
                                    key = V6KEY | sa << 160 | da << 32 | sport << 16 | dport
                                    d = 0
                                else:
                                    key = V6KEY | da << 160 | sa << 32 | dport << 16 | sport
                                    d = 1
                                a0 = hend + 22
                                a1 = hend + 54
                    if ok:
                        fast_frames += 1
                        fast_tcp += 1
                        cd -= 1
                        if cd > 0 and classify(key, d, seq, flags, buf, pstart, ip_end, number,
                                               ts_ns):
                            skipped += 1
                            last_ts = ts_ns
                            continue
                        # the reassembler must see it
                        pair = addresses(bytes(buf[a0:a1]))
                        seg: TcpSegment = KeyedSegment(
                            number, ts_ns, pair[0], sport, pair[1], dport, seq, ack, flags,
                            bytes(buf[pstart:ip_end]), 0, key, d)
                    else:
                        seg2 = decode_raw(1, bytes(buf[hend:end]), wirelen, number, ts_ns)
                        if seg2 is None:
                            continue
                        cd -= 1
                        seg = keyed(seg2, addrs)
                else:
                    seg2 = decode_raw(lt, bytes(buf[hend:end]), wirelen, number, ts_ns)
                    if seg2 is None:
                        continue
                    cd -= 1
                    seg = keyed(seg2, addrs)
                if skipped:
                    an.packets += skipped
                    reasm.skipped(skipped, None)
                    skipped = 0
                last_ts = None
                reasm.countdown = cd + 1        # feed counts it
                r = an_feed(seg)
                cd = reasm.countdown
                if r:
                    done.extend(r)
                    if check is not None:
                        check(done)
        finally:
            self.frames = number
            an.packets += skipped
            reasm.skipped(skipped, last_ts)
            dec.count(fast_frames, fast_tcp)
            reasm.countdown = cd
