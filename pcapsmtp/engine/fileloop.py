"""The fused file loop: read, decode and number every TCP segment of a capture, building a
``TcpSegment`` only for the segments the reassembler needs to see.

Most packets of a relay capture are not SMTP. For each of them the reassembler only keeps
Wireshark's ``tcp.stream`` numbering. This loop takes the records from the capture layer as
views into its read buffer (``capture.pcapfile.open_views``: one loop for pcap and pcapng; the
compiled loop walks a pcap stream's buffer itself, ``capture.pcapfile.PcapRecords``),
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
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from pcapsmtp.capture.decode import Decoder
from pcapsmtp.capture.pcapfile import RecordView, Records, open_views
from pcapsmtp.engine.accel import hot_loop
from pcapsmtp.errors import CaptureError
from pcapsmtp.engine.hotloop import keyed

__all__ = ["FusedLoop", "OrderedEmitter", "AddrInts", "keyed"]

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
        if len(done) < reasm.tracked >> 5:
            # the walk below visits every light entry: at most 32 visits per conclusion
            return
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
    (``capture.pcapfile.open_views``), the TCP layer classifies the raw fields
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
        #: text address -> int cache, for the segments the general decoder builds
        self.addrs = AddrInts()
        #: ``OrderedEmitter.check`` (None: no streaming), called after each new conclusion
        self.check = emitter.check if emitter is not None else None

    def run(self, path: str, *, stdin: BinaryIO | None = None,
            progress: Callable[[int, int], None] | None = None) -> None:
        # (Disabling the cyclic GC during the loop was measured: no difference beyond noise
        # on the 1 M-packet benchmark file, so the collector stays on.)
        self.frames = self.frame_base
        try:
            with open_views(path, stdin=stdin, number_base=self.frame_base) as records:
                self.loop(records, progress)
        except MemoryError:
            raise CaptureError(path, None, "out of memory while reading the capture") from None

    def loop(self, views: Iterable[RecordView] | Records,
             progress: Callable[[int, int], None] | None = None) -> None:
        """The loop itself, over any source of record views: the compiled one when it is
        built and allowed (``engine.accel``), else its pure-Python twin (``engine.hotloop``)."""
        hot_loop()(self, views, progress)
