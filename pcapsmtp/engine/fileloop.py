"""The fused file loop: read, decode and number every TCP segment of a capture, building a
``TcpSegment`` only for the segments the reassembler needs to see.

Most packets of a relay capture are not SMTP. For each of them the reassembler only keeps
Wireshark's ``tcp.stream`` numbering, and once a conversation is known not to be SMTP (its
light-table entry is "ignored" with both directions' base sequence numbers set) a segment
without SYN changes nothing in it but a counter, unless it carries the FIN or RST that closes
the conversation (the reassembler must see that: a closed conversation is forgotten after a
grace, ``ReassemblyConfig.closed_grace_ns``). This loop reads pcap records in place (no
per-record tuple), unpacks the Ethernet/IPv4/TCP header fields of the common case with one
``struct`` call at fixed offsets, computes the light-table key from the raw address integers
(``tcp.reassembler.int_key``), and peeks at the table: an ignored (no FIN/RST, or closed
already), an undecided (no payload, no SYN/FIN/RST) or a closed candidate's segment is
counted and dropped there, after setting the closing bits of an ignored conversation's
FIN/RST in its entry as ``TcpReassembler.light`` would. Every other
segment, and every frame the fixed-offset unpack does not cover (VLAN, SLL, IPv6, IP options,
fragments, cut frames, other link types, pcapng), goes through ``Decoder.decode_raw`` and
``Analyzer.feed`` exactly as in the general path, as a ``KeyedSegment``.

What the general path keeps that this one keeps too: frame numbers (every record counts),
the reassembler's idle sweep every ``idle_check_every`` TCP segments (same segment, same
timestamp), ``stats.segments``, ``stats.after_close_segments``, ``Analyzer.packets``, the
reassembler's last timestamp and the decoder's counters and notes.
``tests/perf/test_fastpath_equivalence.py`` checks that both paths give the same events and
the same conversations on every capture of the repository and of the public corpus.
"""
from __future__ import annotations

import socket
import struct
from typing import Any, BinaryIO, Callable

from pcapsmtp.capture.decode import Decoder
from pcapsmtp.capture.pcapfile import (
    _PCAP_MAGICS, _open_source, _pcap_header, _pcap_short_body, _pcap_short_header,
    _read_pcapng,
)
from pcapsmtp.errors import CaptureError
from pcapsmtp.model import TcpSegment
from pcapsmtp.tcp.reassembler import (
    PEEK_CLOSED, PEEK_ENDED, PEEK_FIN0, PEEK_FIN1, PEEK_IGNORED, PEEK_MASK, PEEK_UNDECIDED, V6KEY,
    KeyedSegment, int_key,
)

__all__ = ["FusedLoop", "OrderedEmitter", "keyed"]

# Ethernet (from byte 12) + IPv4 without options + TCP: ethertype, version/IHL, total length,
# flags/fragment offset, protocol, src, dst (as integers), sport, dport, seq, ack, data
# offset, flags. Needs 54 bytes of frame.
_ETH4 = struct.Struct("!HBxH2xHxB2xIIHHIIBB").unpack_from

# Ethernet IPv6 without extension headers + TCP, from byte 14: version/traffic class, payload
# length, next header, src and dst (two 64-bit halves each), then TCP as above. Needs 74 bytes.
_ETH6 = struct.Struct("!B3xHBxQQQQHHIIBB").unpack_from

_SYN = 0x02
_FIN_RST = 0x05
_RST = 0x04
_NS = 1_000_000_000


class _AddrInts:
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


def keyed(seg: TcpSegment, addrs: _AddrInts) -> KeyedSegment:
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


def _rebase(records: Any, base: int) -> Any:
    """Records numbered from ``base + 1`` (a later piece of a rotated set)."""
    if not base:
        return records
    return ((number + base, *rest) for number, *rest in records)


class FusedLoop:
    """Feed every TCP segment of one capture file into ``analyzer`` (a fresh
    ``pipeline.Analyzer``), appending the conversations it returns to ``done``.

    ``frames`` is the number of the last record read, also after a ``CaptureError`` (which
    ``run`` lets through once every record before the damage has been fed)."""

    def __init__(self, analyzer: Any, decoder: Decoder, done: list[dict[str, Any]],
                 emitter: OrderedEmitter | None = None) -> None:
        self.an = analyzer
        self.dec = decoder
        self.done = done
        self.frames = 0
        #: frames of the earlier pieces of a rotated set: this file's record n is frame
        #: ``frame_base + n`` for the analyzer (``engine.rotated`` translates back)
        self.frame_base = 0
        self._addrs = _AddrInts()
        self._check = emitter.check if emitter is not None else None

    def run(self, path: str, *, stdin: BinaryIO | None = None,
            progress: Callable[[int, int], None] | None = None) -> None:
        # (Disabling the cyclic GC during the loop was measured: no difference beyond noise
        # on the 1 M-packet benchmark file, so the collector stays on.)
        try:
            src, head = _open_source(path, stdin)
        except MemoryError:
            raise CaptureError(path, None, "out of memory while reading the capture") from None
        try:
            if head[:4] in _PCAP_MAGICS:
                self._pcap(src, head, path, progress)
            else:
                self._records(_rebase(_read_pcapng(src, head, path), self.frame_base),
                              progress)
        except MemoryError:
            raise CaptureError(path, None, "out of memory while reading the capture") from None
        finally:
            src.close()

    # ------------------------------------------------------------------ any record source
    def _records(self, records: Any, progress: Callable[[int, int], None] | None) -> None:
        """Record tuples (pcapng, pcap of another link type): the same peek as ``_pcap`` for
        Ethernet records (the link type is per record in pcapng), ``decode_raw`` for the
        rest. Kept in step with ``_pcap`` by hand; both are tested against the general path."""
        an = self.an
        an_feed = an.feed
        reasm = an.reassembler
        stats = reasm.stats
        light = reasm.light
        ended = reasm._ended                     # noqa: SLF001
        dec = self.dec
        decode_raw = dec.decode_raw
        pairs = dec._pairs                       # noqa: SLF001
        pair4 = dec._pair4                       # noqa: SLF001
        addrs = self._addrs
        done = self.done
        check = self._check
        eth4 = _ETH4
        skipped = after_close = fast_frames = fast_tcp = 0
        last_ts: int | None = None
        number = self.frame_base
        cd = reasm._countdown                    # noqa: SLF001
        try:
            for number, ts_ns, linktype, data, wirelen, off, _if in records:
                if progress is not None and not number & 0xFFFF:
                    progress(number, off)
                n = len(data)
                if linktype == 1 and n >= 54:
                    (et, vihl, tot, ff, proto, sa, da, sport, dport, seq, ack, doff,
                     flags) = eth4(data, 12)
                    if et == 0x0800 and vihl == 0x45:
                        if proto != 6:
                            fast_frames += 1
                            continue
                        ip_end = 14 + tot
                        pstart = 34 + ((doff >> 4) << 2)
                        if not ff & 0x3FFF and ip_end <= n and 54 <= pstart <= ip_end:
                            fast_frames += 1
                            fast_tcp += 1
                            if sport < dport or (sport == dport and sa < da):
                                key = sa << 64 | da << 32 | sport << 16 | dport
                                d = 0
                            else:
                                key = da << 64 | sa << 32 | dport << 16 | sport
                                d = 1
                            cd -= 1
                            if cd > 0 and not flags & _SYN:
                                young = reasm._young         # noqa: SLF001
                                v = young.get(key)
                                if v.__class__ is int:
                                    m = v & PEEK_MASK
                                    if m == PEEK_IGNORED:
                                        if flags & _FIN_RST:    # as light() would do
                                            e = v | (PEEK_ENDED if flags & _RST else
                                                     PEEK_FIN1 if d else PEEK_FIN0)
                                            if e != v:
                                                young[key] = e
                                                if e & PEEK_ENDED == PEEK_ENDED:
                                                    ended(key, e, ts_ns)
                                        skipped += 1
                                        last_ts = ts_ns
                                        continue
                                    if (m == PEEK_UNDECIDED and pstart == ip_end
                                            and not flags & _FIN_RST):
                                        skipped += 1
                                        last_ts = ts_ns
                                        continue
                                    if m == PEEK_CLOSED:
                                        skipped += 1
                                        after_close += 1
                                        last_ts = ts_ns
                                        continue
                            if cd > 0 and light(key, d, seq, flags, data[pstart:pstart + 8]
                                                if pstart < ip_end else b"", number, ts_ns):
                                skipped += 1
                                last_ts = ts_ns
                                continue
                            a8 = data[26:34]
                            pair = pairs.get(a8)
                            if pair is None:
                                pair = pair4(a8)
                            seg: TcpSegment = KeyedSegment(
                                number, ts_ns, pair[0], sport, pair[1], dport, seq, ack, flags,
                                data[pstart:ip_end], 0, key, d)
                            if skipped:
                                an.packets += skipped
                                stats.segments += skipped
                                stats.after_close_segments += after_close
                                skipped = after_close = 0
                            last_ts = None
                            reasm._countdown = cd + 1       # noqa: SLF001
                            r = an_feed(seg)
                            cd = reasm._countdown           # noqa: SLF001
                            if r:
                                done.extend(r)
                                if check is not None:
                                    check(done)
                            continue
                seg2 = decode_raw(linktype, data, wirelen, number, ts_ns)
                if seg2 is not None:
                    if skipped:
                        an.packets += skipped
                        stats.segments += skipped
                        stats.after_close_segments += after_close
                        skipped = after_close = 0
                    last_ts = None
                    cd -= 1
                    reasm._countdown = cd + 1               # noqa: SLF001
                    r = an_feed(keyed(seg2, addrs))
                    cd = reasm._countdown                   # noqa: SLF001
                    if r:
                        done.extend(r)
                        if check is not None:
                            check(done)
        finally:
            self.frames = number
            an.packets += skipped
            stats.segments += skipped
            stats.after_close_segments += after_close
            dec.frames += fast_frames
            dec.tcp_segments += fast_tcp
            reasm._countdown = cd                           # noqa: SLF001
            if last_ts is not None:
                reasm._last_ts = last_ts                    # noqa: SLF001

    # ------------------------------------------------------------------ pcap, fused
    def _pcap(self, src: Any, buf: bytes | bytearray, path: str,
              progress: Callable[[int, int], None] | None) -> None:
        head, unpack, mult, linktype = _pcap_header(src, bytes(buf), path)
        if linktype != 1:
            from pcapsmtp.capture.pcapfile import _read_pcap
            self._records(_rebase(_read_pcap(src, head, path), self.frame_base), progress)
            return
        buf = head
        an = self.an
        an_feed = an.feed
        reasm = an.reassembler
        stats = reasm.stats
        light = reasm.light
        ended = reasm._ended                     # noqa: SLF001
        dec = self.dec
        decode_raw = dec.decode_raw
        pairs = dec._pairs                       # noqa: SLF001 - bytes -> (src, dst) text
        pair4 = dec._pair4                       # noqa: SLF001
        pair6 = dec._pair6                       # noqa: SLF001
        addrs = self._addrs
        done = self.done
        check = self._check
        eth4 = _ETH4
        eth6 = _ETH6
        maxcap = 262144
        base = 0
        pos = 24
        blen = len(buf)
        number = self.frame_base
        # counts not yet handed to their owners (flushed before every call that reads them)
        skipped = 0          # TCP segments dropped here: Analyzer.packets, stats.segments
        after_close = 0      # ... of closed candidates: stats.after_close_segments
        fast_frames = 0      # frames decoded here: Decoder.frames
        fast_tcp = 0         # TCP segments decoded here: Decoder.tcp_segments
        last_sec = last_frac = -1   # timestamp of the last segment dropped here
        cd = reasm._countdown    # noqa: SLF001 - the reassembler's idle-sweep countdown
        try:
            while True:
                hend = pos + 16
                if hend > blen:
                    buf, base, blen = _pcap_short_header(src, buf, pos, blen, base, number,
                                                         path, True)
                    pos = 0
                    hend = 16
                    if blen == 0:
                        return
                sec, frac, caplen, wirelen = unpack(buf, pos)
                end = hend + caplen
                if end > blen or caplen > maxcap:
                    buf, base, blen = _pcap_short_body(src, buf, pos, blen, base, number,
                                                       caplen, path, True)
                    pos = 0
                    hend = 16
                    end = 16 + caplen
                number += 1
                if progress is not None and not number & 0xFFFF:
                    progress(number, base + pos)
                pos = end
                if caplen >= 54:
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
                            pairf = pair4
                    elif et == 0x86DD and caplen >= 74:
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
                                pairf = pair6
                    if ok:
                        fast_frames += 1
                        fast_tcp += 1
                        cd -= 1
                        if cd > 0 and not flags & _SYN:
                            young = reasm._young         # noqa: SLF001
                            v = young.get(key)
                            if v.__class__ is int:
                                m = v & PEEK_MASK
                                if m == PEEK_IGNORED:
                                    if flags & _FIN_RST:    # its closing bits, as light() would
                                        e = v | (PEEK_ENDED if flags & _RST else
                                                 PEEK_FIN1 if d else PEEK_FIN0)
                                        if e != v:
                                            young[key] = e
                                            if e & PEEK_ENDED == PEEK_ENDED:
                                                ended(key, e, sec * _NS + frac * mult)
                                    skipped += 1
                                    last_sec = sec
                                    last_frac = frac
                                    continue
                                if (m == PEEK_UNDECIDED and pstart == ip_end
                                        and not flags & _FIN_RST):
                                    skipped += 1
                                    last_sec = sec
                                    last_frac = frac
                                    continue
                                if m == PEEK_CLOSED:
                                    skipped += 1
                                    after_close += 1
                                    last_sec = sec
                                    last_frac = frac
                                    continue
                        if cd > 0 and light(key, d, seq, flags,
                                            bytes(buf[pstart:pstart + 8])
                                            if pstart < ip_end else b"", number,
                                            sec * _NS + frac * mult):
                            skipped += 1
                            last_sec = sec
                            last_frac = frac
                            continue
                        # the reassembler must see it
                        aa = bytes(buf[a0:a1])          # the addresses' bytes
                        pair = pairs.get(aa)
                        if pair is None:
                            pair = pairf(aa)
                        seg: TcpSegment = KeyedSegment(
                            number, sec * _NS + frac * mult, pair[0], sport, pair[1], dport,
                            seq, ack, flags, bytes(buf[pstart:ip_end]), 0, key, d)
                        if skipped:
                            an.packets += skipped
                            stats.segments += skipped
                            stats.after_close_segments += after_close
                            skipped = after_close = 0
                        last_sec = -1
                        reasm._countdown = cd + 1       # noqa: SLF001 - feed counts it
                        r = an_feed(seg)
                        cd = reasm._countdown           # noqa: SLF001
                        if r:
                            done.extend(r)
                            if check is not None:
                                check(done)
                        continue
                # everything else: the general decoder
                seg2 = decode_raw(1, bytes(buf[hend:end]), wirelen, number,
                                  sec * _NS + frac * mult)
                if seg2 is not None:
                    if skipped:
                        an.packets += skipped
                        stats.segments += skipped
                        stats.after_close_segments += after_close
                        skipped = after_close = 0
                    last_sec = -1
                    cd -= 1
                    reasm._countdown = cd + 1               # noqa: SLF001
                    r = an_feed(keyed(seg2, addrs))
                    cd = reasm._countdown                   # noqa: SLF001
                    if r:
                        done.extend(r)
                        if check is not None:
                            check(done)
        finally:
            self.frames = number
            an.packets += skipped
            stats.segments += skipped
            stats.after_close_segments += after_close
            dec.frames += fast_frames
            dec.tcp_segments += fast_tcp
            reasm._countdown = cd                           # noqa: SLF001
            if last_sec >= 0:
                reasm._last_ts = last_sec * _NS + last_frac * mult   # noqa: SLF001
