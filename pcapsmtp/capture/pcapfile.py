"""Streaming pcap / pcapng reader: the offline input path.

Hand-written with ``struct`` (no scapy on this path: importing scapy costs ~0.8 s and
40 MB). The reader never seeks and never reads the whole input first, so
``tcpdump -w - | pcapsmtp analyze -`` streams.

Public API
----------
- ``open_frames(path, *, stdin=None) -> Iterator[RawFrame]``: one ``RawFrame`` per packet
  record.
- ``iter_records(path, *, stdin=None) -> Iterator[RecordTuple]``: the same records as plain
  tuples ``(number, ts_ns, linktype, data, wirelen, offset, interface)`` (the positional
  order of ``RawFrame.__init__``); about 25 % faster, used by ``iter_segments``.
- ``iter_views(path, *, stdin=None) -> Iterator[RecordView]``: the same records without a
  copy of their bytes: ``(number, ts_ns, linktype, buf, start, end, wirelen, offset)``, the
  record's captured bytes being ``buf[start:end]``. ``buf`` is only valid until the next
  record is asked for (a pcap file is read into one reused buffer): copy what you keep. What
  the file loops of ``pcapsmtp.engine`` read.
- ``open_views(path, *, stdin=None, number_base=0) -> Records``: the same, opened at once, as
  a context manager; for a pcap stream its ``pcap`` attribute is the ``PcapRecords`` (read
  buffer, position, ``more`` to refill), for a loop that walks the records itself (the
  compiled file loop of ``pcapsmtp.engine``).
- ``iter_segments(path, *, stdin=None, decoder=None) -> Iterator[TcpSegment]``: reader and
  ``Decoder`` chained.
- ``open_source(path, stdin) -> (source, head)``: the input opened (gzip detected), for a
  caller that reads blocks itself (``capture.pcapng.BlockReader``, ``annotate``).

Formats: pcap (both byte orders, microsecond and nanosecond magic), pcapng (several
sections of either byte order, several interfaces with their own link type,
``if_tsresol`` and ``if_tsoffset``; EPB, SPB and the obsolete PB, decoded by
``capture.pcapng.iter_packets``, which ``annotate`` uses too; custom and systemd journal
export blocks are frames without a packet, link type ``LINKTYPE_NO_PACKET``, as Wireshark
numbers them; every other block type is skipped by its length), and either of them
gzip-compressed (detected by magic, also on
standard input).

Frame numbers count every packet record from 1, as Wireshark's ``frame.number``. SPBs
carry no timestamp: they get the timestamp of the previous packet record (0 if none).

Errors: every problem (unreadable path, unknown format, damaged record, broken gzip)
raises ``CaptureError(path, offset, message)`` *after* every good record before the
damage has been yielded. ``offset`` is a byte offset in the decompressed stream. No other
exception escapes. All errors, including "no such file", surface on the first ``next()``:
the functions are generators.

Deliberate leniency (as Wireshark and libpcap): a pcap record whose captured length is
larger than the file's snapshot length is accepted (Wireshark shows it, so frame numbers
stay aligned with Wireshark); only a captured length above ``MAX_CAPLEN`` (262144,
Wireshark's maximum) stops the reader.
"""
from __future__ import annotations

import os
import struct
import sys
import zlib
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple, Union

from pcapsmtp.capture.base import RawFrame
from pcapsmtp.capture.decode import Decoder
from pcapsmtp.capture.pcapng import LINKTYPE_NO_PACKET, RECORDS, VIEWS, fill, iter_packets
from pcapsmtp.errors import CaptureError, ForeignCapture
from pcapsmtp.model import TcpSegment

__all__ = ["open_frames", "iter_records", "iter_views", "open_views", "Records", "PcapRecords",
           "iter_segments", "open_source",
           "pcap_header", "read_pcap", "is_pcap", "RecordTuple", "RecordView", "PcapHeader", "MAX_CAPLEN",
           "CHUNK_SIZE", "Source", "LINKTYPE_NO_PACKET"]

#: (number, ts_ns, linktype, data, wirelen, offset, interface): ``RawFrame``'s argument order.
RecordTuple = tuple[int, int, int, bytes, int, int, int]
#: (number, ts_ns, linktype, buf, start, end, wirelen, offset): the record is buf[start:end]
RecordView = tuple[int, int, int, "bytes | bytearray", int, int, int, int]

#: Largest captured length of one record accepted (Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD).
MAX_CAPLEN = 262144
#: Read size.
CHUNK_SIZE = 1 << 20

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),   # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1000),   # big-endian, microseconds
    b"\x4d\x3c\xb2\xa1": ("<", 1),      # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),      # big-endian, nanoseconds
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_GZIP_MAGIC = b"\x1f\x8b"

#: Other capture formats, by the bytes they start with (checked against files written by
#: ``editcap -F`` of Wireshark 4.0, except iptrace, whose header is from Wireshark's reader):
#: pcapsmtp's reader does not read them, tshark does (``--engine tshark``).
FOREIGN_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"snoop\0\0\0", "Solaris snoop"),
    (b"RTSS", "Microsoft Network Monitor 1.x"),
    (b"GMBU", "Microsoft Network Monitor 2.x"),
    (b"TRSNIFF data    \x1a", "Sniffer (DOS)"),
    (b"XCP\0", "NetXRay / Windows Sniffer"),
    (b"ObserverPktBufferVersion", "Viavi Observer"),
    (b"TR\0d", "HP-UX nettl"),
    (b"iptrace 1.0", "AIX iptrace"),
    (b"iptrace 2.0", "AIX iptrace"),
    (b"\x05VNF", "Visual Networks"),
    (b"\xaa\xaa\xaa\xaa", "5Views"),
    (b"\x34\xcd\xb2\xa1", "modified (Kuznetsov) pcap"),
    (b"\xa1\xb2\xcd\x34", "modified (Kuznetsov) pcap"),
)


def foreign_format(head: bytes) -> str | None:
    """The name of the capture format ``head`` (a file's first bytes) starts, when it is one
    of ``FOREIGN_MAGICS``, else None."""
    for magic, name in FOREIGN_MAGICS:
        if head.startswith(magic):
            return name
    return None


def _looks_like_text(head: bytes) -> bool:
    """Printable UTF-8 text and line breaks only, in the first 256 bytes (at least 16 of
    them): a capture printed as text (``tcpdump -A``, tshark's summary lines with their arrows)
    rather than written with ``-w``."""
    sample = head[:256]
    if len(sample) < 16:
        return False
    for cut in range(4):                # a character cut at the sample's end
        try:
            text = sample[:len(sample) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return all(c.isprintable() or c in "\t\r\n" for c in text)
    return False


def _os_message(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a capture file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot read: {exc.strerror or exc}"


class _Input:
    """A byte source: ``read(n)`` returns up to ``n`` bytes (``b""`` at the end), converting
    OS and gzip errors into ``CaptureError``. ``prefix`` holds bytes already read (the magic
    sniffing) that must be returned first."""

    __slots__ = ("path", "_read", "_prefix", "_close", "readinto")

    def __init__(self, path: str, stdin: BinaryIO | None) -> None:
        self.path = path
        self._prefix = b""
        self._close: BinaryIO | None = None
        if path == "-":
            stream: BinaryIO = stdin if stdin is not None else sys.stdin.buffer
            # read1 returns what is available instead of waiting for a full chunk,
            # so frames of a live pipe come out as they arrive.
            self._read = getattr(stream, "read1", None) or stream.read
        else:
            try:
                if os.path.isdir(path):
                    raise IsADirectoryError(21, "Is a directory", path)
                f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise CaptureError(path, None, _os_message(exc)) from None
            self._close = f
            self._read = f.read
            self.readinto = self._readinto      # (not for pipes: read1 streams, this waits)

    def _readinto(self, buf: memoryview) -> int:
        try:
            return self._close.readinto(buf) or 0    # type: ignore[union-attr]
        except OSError as exc:
            raise CaptureError(self.path, None, _os_message(exc)) from None

    def raw_read(self, n: int) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            return data
        try:
            return self._read(n) or b""
        except OSError as exc:
            raise CaptureError(self.path, None, _os_message(exc)) from None

    def unread(self, data: bytes) -> None:
        self._prefix = data + self._prefix

    def close(self) -> None:
        if self._close is not None:
            try:
                self._close.close()
            except OSError:
                pass
            self._close = None


class _GzipInput:
    """Streaming gzip decompression over an ``_Input`` (multi-member files and zero
    padding after the last member are accepted, as gzip(1) does)."""

    __slots__ = ("path", "_src", "_d", "_out", "_eof", "_pending", "_between")

    def __init__(self, src: _Input) -> None:
        self.path = src.path
        self._src = src
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._out = 0          # decompressed bytes handed out so far
        self._eof = False
        self._pending = b""    # compressed bytes not yet given to a decompressor
        self._between = False  # True after a member ended: the next byte starts a new one

    def _fail(self, what: str) -> CaptureError:
        return CaptureError(self.path, self._out, f"broken gzip data: {what} (after "
                                                  f"{self._out} decompressed bytes)")

    def raw_read(self, n: int) -> bytes:
        while not self._eof:
            d = self._d
            if d.unconsumed_tail:
                data = d.unconsumed_tail
            else:
                if self._pending:
                    data, self._pending = self._pending, b""
                else:
                    data = self._src.raw_read(CHUNK_SIZE)
                if not data:
                    self._eof = True
                    if not self._between:
                        raise self._fail("compressed stream ends before its end marker")
                    break
                if self._between:
                    data = data.lstrip(b"\x00")
                    if not data:
                        continue
                    self._d = d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    self._between = False
            try:
                out = d.decompress(data, n)
            except zlib.error as exc:
                raise self._fail(" ".join(str(exc).split())) from None
            if d.eof:
                self._between = True
                self._pending = d.unused_data
            if out:
                self._out += len(out)
                return out
        return b""

    def close(self) -> None:
        self._src.close()


#: an opened input: ``raw_read(n)`` returns up to ``n`` bytes, ``b""`` at the end
Source = Union[_Input, _GzipInput]


def is_pcap(head: bytes) -> bool:
    """Do these first bytes (from ``open_source``) start a pcap file (else pcapng)?"""
    return head[:4] in _PCAP_MAGICS


def open_source(path: str, stdin: BinaryIO | None = None) -> tuple[Source, bytes]:
    """Open ``path`` (gzip detected by magic); -> (source, first bytes: at least the 4-byte
    magic of a pcap or pcapng file). Raises ``CaptureError`` for anything else; the source
    is closed then."""
    plain = _Input(path, stdin)
    src: _Input | _GzipInput = plain
    try:
        head = fill(src, b"", 0, 4)
        if head[:2] == _GZIP_MAGIC:
            plain.unread(head)
            src = _GzipInput(plain)
            head = fill(src, b"", 0, 4)
        if not head:
            raise CaptureError(path, 0, "empty file: no capture header")
        magic = head[:4]
        if magic in _PCAP_MAGICS or magic == _PCAPNG_MAGIC:
            return src, head
        if len(head) < 4:
            raise CaptureError(path, 0, f"file too short for a capture header "
                                        f"({len(head)} bytes)")
        kind = foreign_format(head)
        if kind is not None:
            raise ForeignCapture(path, 0, f"a {kind} capture, not pcap or pcapng: read it with "
                                          "--engine tshark, or convert it with "
                                          "'editcap -F pcapng FILE OUT.pcapng'", kind)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in magic)
        if _looks_like_text(head):
            line = head[:256].split(b"\n", 1)[0].decode("utf-8", "replace").strip()[:40].rstrip()
            raise CaptureError(path, 0, f"a text file, not a capture: it starts with {line!r} "
                                        "(a capture printed as text cannot be read; write it "
                                        "with 'tcpdump -w FILE')")
        raise CaptureError(path, 0, f"not a pcap or pcapng file: it starts with bytes "
                                    f"{magic.hex(' ')} ({text!r})")
    except BaseException:
        src.close()
        raise


def iter_records(path: str, *, stdin: BinaryIO | None = None) -> Iterator[RecordTuple]:
    """Yield every packet record of a pcap/pcapng file (optionally gzip-compressed) as a
    ``RecordTuple``. ``path == "-"`` reads ``stdin`` (default ``sys.stdin.buffer``)."""
    try:
        src, head = open_source(path, stdin)
    except MemoryError:
        raise CaptureError(path, None, "out of memory while reading the capture") from None
    try:
        if head[:4] in _PCAP_MAGICS:
            yield from _read_pcap(src, head, path)
        else:
            yield from _read_pcapng(src, head, path)
    except MemoryError:
        raise CaptureError(path, None, "out of memory while reading the capture") from None
    finally:
        src.close()


def iter_views(path: str, *, stdin: BinaryIO | None = None,
               number_base: int = 0) -> Iterator[RecordView]:
    """Yield every packet record as a ``RecordView``; see the module docstring. A pcap file
    (not gzip, not a pipe) is read into one reused buffer. ``number_base``: the records are
    numbered from ``number_base + 1`` (a later piece of a rotated set)."""
    try:
        with open_views(path, stdin=stdin, number_base=number_base) as records:
            yield from records
    except MemoryError:
        raise CaptureError(path, None, "out of memory while reading the capture") from None


class Records:
    """An opened capture's records (``open_views``): iterating gives ``RecordView``s. Use it
    as a context manager (it closes the input). ``pcap`` is the ``PcapRecords`` of a pcap
    stream, for a loop that walks its read buffer itself (the compiled file loop); None for
    pcapng."""

    __slots__ = ("src", "pcap", "_views")

    def __init__(self, src: Source, pcap: PcapRecords | None,
                 views: Iterator[RecordView]) -> None:
        self.src = src
        self.pcap = pcap
        self._views = views

    def __iter__(self) -> Iterator[RecordView]:
        return self._views

    def __enter__(self) -> Records:
        return self

    def __exit__(self, *exc: object) -> None:
        self.src.close()


def open_views(path: str, *, stdin: BinaryIO | None = None, number_base: int = 0) -> Records:
    """Open ``path`` for its records as views (what ``iter_views`` yields), numbered from
    ``number_base + 1``. Raises ``CaptureError`` when the input cannot be opened or its
    header is bad (``iter_views`` raises the same on the first ``next()``)."""
    src, head = open_source(path, stdin)
    try:
        if head[:4] in _PCAP_MAGICS:
            pcap = PcapRecords(src, head, path, True, number_base)
            return Records(src, pcap, pcap.views())
        return Records(src, None, iter_packets(src, head, path, VIEWS, number_base))
    except BaseException:
        src.close()
        raise


def open_frames(path: str, *, stdin: BinaryIO | None = None) -> Iterator[RawFrame]:
    """Yield one ``RawFrame`` per packet record; see the module docstring."""
    for rec in iter_records(path, stdin=stdin):
        yield RawFrame(*rec)


def iter_segments(path: str, *, stdin: BinaryIO | None = None,
                  decoder: Decoder | None = None) -> Iterator[TcpSegment]:
    """Read ``path`` and decode every frame; yield the TCP segments. Pass your own
    ``Decoder`` to read its ``notes`` and counters afterwards."""
    decode_raw = (decoder if decoder is not None else Decoder()).decode_raw
    for number, ts_ns, linktype, data, wirelen, _off, _if in iter_records(path, stdin=stdin):
        seg = decode_raw(linktype, data, wirelen, number, ts_ns)
        if seg is not None:
            yield seg


# --------------------------------------------------------------------------- pcap

class PcapHeader(NamedTuple):
    """A pcap file header: ``endian`` ("<" or ">"), nanoseconds per fraction unit (1000 for
    a microsecond file, 1 for a nanosecond one), snapshot length, the link-type field as
    written (upper 6 bits: FCS flag and length) and the link type."""
    endian: str
    mult: int
    snaplen: int
    network: int
    linktype: int


def pcap_header(src: Source, head: bytes, path: str) -> tuple[bytes, PcapHeader]:
    """Read the pcap file header (``head`` from ``open_source``); -> (buffer holding at least
    the 24-byte header, the header)."""
    endian, mult = _PCAP_MAGICS[head[:4]]
    buf = fill(src, head, 0, 24)
    if len(buf) < 24:
        raise CaptureError(path, 0, f"truncated pcap file header ({len(buf)} of 24 bytes)")
    _maj, _min, _zone, _sig, snaplen, network = struct.unpack_from(endian + "HHiIII", buf, 4)
    return buf, PcapHeader(endian, mult, snaplen, network, network & 0x03FFFFFF)


def _refill(src: _Input | _GzipInput, buf: bytes | bytearray, pos: int, blen: int, need: int,
            inplace: bool) -> tuple[bytes | bytearray, int]:
    """``buf[pos:blen]`` followed by more input until it holds ``need`` bytes or the input
    ends; -> (buffer, number of valid bytes at its start). ``inplace`` (a plain file only):
    read into a reused ``bytearray`` instead of allocating a new chunk each time (which costs
    a page fault per 4 KiB); the caller must then copy what it keeps (``bytes(...)``)."""
    readinto = getattr(src, "readinto", None) if inplace else None
    if readinto is None:
        b = fill(src, buf[:blen] if blen < len(buf) else buf, pos, need)
        return b, len(b)
    k = blen - pos
    size = max(CHUNK_SIZE, need)
    if isinstance(buf, bytearray) and len(buf) >= size:
        ba = buf
        if k:
            ba[:k] = ba[pos:blen]
    else:
        ba = bytearray(size)
        ba[:k] = buf[pos:blen]
    with memoryview(ba) as mv:
        while k < need:
            n = readinto(mv[k:])
            if not n:
                break
            k += n
    return ba, k


class PcapRecords:
    """The records of a pcap stream, read chunk by chunk into one buffer: the part of the
    reader a loop walking the records itself uses (the compiled file loop), and what
    ``views`` (the readable reference) walks.

    The records not handed out yet start at ``buf[pos]`` and the valid bytes end at
    ``blen``; ``buf[0]`` is at offset ``base`` of the (decompressed) stream; ``number``
    records were handed out before ``pos``. Each record is a 16-byte header (seconds,
    fraction, captured length, wire length; 32-bit integers in ``header.endian``) and its
    captured bytes. A walker that finds the record at ``pos`` not whole in the buffer, or
    claiming more than ``MAX_CAPLEN`` bytes, calls ``more``, which refills (the record
    then starts at ``pos`` 0) or raises ``CaptureError`` as the reader does. ``buf`` stays
    valid until the next ``more``."""

    __slots__ = ("src", "path", "inplace", "header", "buf", "pos", "blen", "base", "number")

    def __init__(self, src: Source, head: bytes, path: str, inplace: bool,
                 number_base: int = 0, h: PcapHeader | None = None) -> None:
        self.src = src
        self.path = path
        self.inplace = inplace
        buf: bytes | bytearray = head
        if h is None:
            buf, h = pcap_header(src, head, path)
        self.header = h
        self.buf = buf
        self.pos = 24
        self.blen = len(buf)
        self.base = 0
        self.number = number_base

    def more(self, caplen: int) -> int:
        """The record at ``pos`` is not whole in ``buf`` (``caplen`` -1: not even its
        header), or its header claims ``caplen`` > ``MAX_CAPLEN`` bytes: refill, so that
        ``buf`` starts with it (``pos`` 0), or raise ``CaptureError``. -> ``blen``: 0 at
        the clean end of the input (no byte after the last whole record)."""
        pos = self.pos
        if caplen > MAX_CAPLEN:
            raise CaptureError(self.path, self.base + pos,
                               f"packet {self.number + 1}: record header says {caplen} "
                               f"captured bytes, more than the maximum of {MAX_CAPLEN} "
                               "(corrupt file)")
        need = 16 if caplen < 0 else 16 + caplen
        self.buf, blen = _refill(self.src, self.buf, pos, self.blen, need, self.inplace)
        self.base += pos
        self.pos = 0
        self.blen = blen
        if caplen < 0:
            if 0 < blen < 16:
                raise CaptureError(self.path, self.base,
                                   f"capture ends in the middle of the header of packet "
                                   f"{self.number + 1} ({blen} of 16 bytes present)")
        elif need > blen:
            raise CaptureError(self.path, self.base,
                               f"capture ends in the middle of packet {self.number + 1} "
                               f"(record header says {caplen} bytes, {blen - 16} present)")
        return blen

    def views(self) -> Iterator[RecordView]:
        """The records as views into the read buffer (``buf`` is reused when ``inplace``
        and the source allows it, else fresh ``bytes`` chunks)."""
        h = self.header
        unpack = struct.Struct(h.endian + "IIII").unpack_from
        mult = h.mult
        linktype = h.linktype
        maxcap = MAX_CAPLEN
        ns = 1_000_000_000
        last_sec = -1
        sec_ns = 0          # last_sec in nanoseconds (the seconds change rarely)
        buf = self.buf
        pos = self.pos
        blen = self.blen
        base = self.base
        number = self.number
        while True:
            hend = pos + 16
            if hend > blen:
                self.pos = pos
                self.number = number
                blen = self.more(-1)
                if blen == 0:
                    return
                buf = self.buf
                base = self.base
                pos = 0
                hend = 16
            sec, frac, caplen, wirelen = unpack(buf, pos)
            end = hend + caplen
            if end > blen or caplen > maxcap:
                self.pos = pos
                self.number = number
                blen = self.more(caplen)
                buf = self.buf
                base = self.base
                pos = 0
                hend = 16
                end = 16 + caplen
            number += 1
            if sec != last_sec:
                last_sec = sec
                sec_ns = sec * ns
            yield number, sec_ns + frac * mult, linktype, buf, hend, end, wirelen, base + pos
            pos = end


def _read_pcap(src: Source, buf: bytes, path: str) -> Iterator[RecordTuple]:
    for number, ts, lt, b, start, end, wirelen, off in PcapRecords(src, buf, path,
                                                                   False).views():
        yield number, ts, lt, bytes(b[start:end]), wirelen, off, 0


def read_pcap(src: Source, head: bytes, path: str, *, inplace: bool = False
              ) -> tuple[PcapHeader, Iterator[RecordView]]:
    """A pcap file opened by ``open_source``: its header, and its records as views
    (``inplace``: into one reused buffer where the source allows it)."""
    r = PcapRecords(src, head, path, inplace)
    return r.header, r.views()


# --------------------------------------------------------------------------- pcapng

def _read_pcapng(src: Source, buf: bytes, path: str) -> Iterator[RecordTuple]:
    """The records of a pcapng stream (``capture.pcapng.iter_packets``, the one decoder of
    packet blocks)."""
    return iter_packets(src, buf, path, RECORDS)
