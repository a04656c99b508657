"""pcapng blocks: the one reader and the one writer of the program.

The file reader (``capture.pcapfile``, packet records), ``annotate`` (``render.pcapng``: every
block copied, comments added) and the live tee (``capture.live``: a pcapng copy of what was
captured) all read and write blocks here.

Reading: ``iter_blocks(src, head, path)`` yields every block of a pcapng stream (several
sections of either byte order) as a ``Block``: its type, the byte order of its section, and
where its bytes are (``buf[pos:end]``, the whole block with both length fields; ``buf`` is
valid until the next block is asked for). Lengths are validated (at least 12, a multiple of
4, at most ``MAX_BLOCK``, the trailing length equal to the leading one) and a bad or
truncated block raises ``CaptureError(path, offset, message)``, offset in the
(decompressed) stream. The block bodies are the caller's: ``parse_idb`` reads an interface
description, ``split_options`` a packet block's options.

Packets: ``iter_packets(src, head, path, shape)`` is the one decoder of packet blocks (EPB,
SPB, the obsolete PB, and the blocks Wireshark numbers as frames without a packet: custom
blocks and systemd journal export blocks), with the interfaces of each section, their
timestamp units and every check of a packet block (one message for one fault, whoever
reads): the file reader takes its records as views or tuples, ``annotate``'s copier every
block with its packet.

Writing: ``option``, ``block``, ``shb``, ``idb`` and ``epb`` build blocks; ``PcapngWriter``
writes a one-interface file (the live tee).
"""
from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

from pcapsmtp.errors import CaptureError

__all__ = ["Block", "Interface", "Packet", "PcapngWriter", "iter_blocks", "iter_packets",
           "parse_idb", "split_options", "option", "block", "shb", "idb", "epb", "MAGIC", "SHB",
           "IDB", "PB", "SPB", "EPB", "SJEB", "CB_COPY", "CB_NO_COPY", "MAX_BLOCK",
           "LINKTYPE_NO_PACKET", "VIEWS", "RECORDS", "BLOCKS"]

MAGIC = b"\x0a\x0d\x0d\x0a"
SHB = 0x0A0D0D0A
IDB = 1
PB = 2          #: the obsolete packet block
SPB = 3
EPB = 6
SJEB = 9        #: systemd journal export block
CB_COPY = 0x00000BAD
CB_NO_COPY = 0x40000BAD
BOM = 0x1A2B3C4D
#: Largest block accepted (Wireshark's MAX_BLOCK_SIZE is 16 MiB as well).
MAX_BLOCK = 16 * 1024 * 1024

_BOM_LE = b"\x4d\x3c\x2b\x1a"
_BOM_BE = b"\x1a\x2b\x3c\x4d"
_BLOCK_NAMES = {1: "an interface description block", 2: "a packet block",
                3: "a simple packet block", 4: "a name resolution block",
                5: "an interface statistics block", 6: "an enhanced packet block",
                10: "a decryption secrets block", 0x0A0D0D0A: "a section header block"}


# ----------------------------------------------------------------------------- writing

def option(e: str, code: int, value: bytes) -> bytes:
    """One option (code, length, value padded to 4 bytes) in byte order ``e``."""
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def end_of_options(e: str = "<") -> bytes:
    return option(e, 0, b"")


def block(e: str, btype: int, body: bytes) -> bytes:
    """A whole block: type, length, ``body``, length."""
    total = 12 + len(body)
    return struct.pack(e + "II", btype, total) + body + struct.pack(e + "I", total)


def shb(userappl: str, e: str = "<") -> bytes:
    """A section header block of unknown section length with ``shb_userappl``."""
    opts = option(e, 4, userappl.encode("utf-8", "replace")) + end_of_options(e)
    return block(e, SHB, struct.pack(e + "IHHq", BOM, 1, 0, -1) + opts)


def idb(linktype: int, snaplen: int, options: bytes = b"", e: str = "<") -> bytes:
    """An interface description block; ``options`` already encoded, without the end marker
    (added when there are options)."""
    if options:
        options += end_of_options(e)
    return block(e, IDB, struct.pack(e + "HHI", linktype, 0, snaplen) + options)


def epb(ifid: int, ticks: int, data: bytes, wirelen: int, options: bytes = b"",
        e: str = "<") -> bytes:
    """An enhanced packet block; ``ticks``: the timestamp in its interface's resolution;
    ``options``: encoded, with their end marker when not empty."""
    caplen = len(data)
    body = (struct.pack(e + "IIIII", ifid, (ticks >> 32) & 0xFFFFFFFF, ticks & 0xFFFFFFFF,
                        caplen, wirelen)
            + data + b"\0" * (-caplen % 4) + options)
    return block(e, EPB, body)


class PcapngWriter:
    """A minimal pcapng writer: one section header block, one interface description block
    (nanosecond timestamps, ``if_tsresol`` = 9) and one enhanced packet block per frame."""

    def __init__(self, path: str, linktype: int, snaplen: int, iface: str,
                 userappl: str = "pcapsmtp live") -> None:
        self.path = path
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.frames = 0
        opts = (option("<", 2, iface.encode("utf-8", "replace"))       # if_name
                + option("<", 9, b"\x09"))                             # if_tsresol: 10^-9
        head = shb(userappl) + idb(linktype, snaplen, opts)
        self._fh.write(head)
        self.size = len(head)

    def write(self, ts_ns: int, data: bytes, wirelen: int) -> int:
        """Append one frame; returns its frame number in this file (from 1)."""
        blk = epb(0, ts_ns, data, wirelen)
        self._fh.write(blk)
        self.size += len(blk)
        self.frames += 1
        return self.frames

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


# ----------------------------------------------------------------------------- reading

class Interface(NamedTuple):
    """An interface description: link type, snapshot length, and its timestamp units, both
    as ``ts_ns = ((ticks * mul) >> shift) // div + off_ns`` and as ``units`` ticks per second
    with ``offset_s`` (``if_tsoffset``) seconds."""
    linktype: int
    snaplen: int
    mul: int
    div: int
    shift: int
    off_ns: int
    units: int
    offset_s: int

    def ts_ns(self, ticks: int) -> int:
        if self.shift == 0 and self.div == 1:
            return ticks * self.mul + self.off_ns
        return ((ticks * self.mul) >> self.shift) // self.div + self.off_ns


def parse_idb(body: Any, e: str) -> Interface:
    """An interface description block's body (after type and length, before the trailing
    length; at least 8 bytes)."""
    linktype, _res, snaplen = struct.unpack_from(e + "HHI", body, 0)
    mul, div, shift, units, off_s = 1000, 1, 0, 1_000_000, 0    # default: microseconds
    o = 8
    n = len(body)
    while o + 4 <= n:
        code, olen = struct.unpack_from(e + "HH", body, o)
        o += 4
        if code == 0:
            break
        val = bytes(body[o:o + olen])
        if code == 9 and len(val) >= 1:
            r = val[0]
            if r & 0x80:
                mul, div, shift = 1_000_000_000, 1, r & 0x7F
                units = 2 ** (r & 0x7F)
            else:
                units = 10 ** r
                if r <= 9:
                    mul, div, shift = 10 ** (9 - r), 1, 0
                else:
                    mul, div, shift = 1, 10 ** (r - 9), 0
        elif code == 14 and len(val) >= 8:
            off_s = struct.unpack_from(e + "q", val, 0)[0]
        o += (olen + 3) & ~3
    return Interface(linktype, snaplen, mul, div, shift, off_s * 1_000_000_000, units, off_s)


def split_options(opts: bytes, e: str) -> bytes:
    """A block's options without their end-of-options marker. Raises ``ValueError`` (with
    the message) for an option that runs past the block or a partial option header."""
    pos = 0
    while pos + 4 <= len(opts):
        code, length = struct.unpack_from(e + "HH", opts, pos)
        if code == 0:
            return opts[:pos]
        nxt = pos + 4 + length + (-length % 4)
        if nxt > len(opts):
            raise ValueError(f"option {code} runs past the end of its block")
        pos = nxt
    if pos != len(opts):
        raise ValueError("block options end in a partial option header")
    return opts


class Block(NamedTuple):
    """One block: its type, the byte order of its section, ``buf[pos:end]`` (the whole
    block, valid until the next block is read) and its offset in the stream."""
    btype: int
    e: str
    buf: Any
    pos: int
    end: int
    offset: int


def fill(src: Any, buf: Any, pos: int, need: int) -> bytes:
    """Return ``buf[pos:]`` extended by reads until it holds ``need`` bytes or the input ends."""
    parts = [bytes(buf[pos:])]
    have = len(parts[0])
    while have < need:
        data = src.raw_read(max(1 << 20, need - have))
        if not data:
            break
        parts.append(data)
        have += len(data)
    return b"".join(parts)


def iter_blocks(src: Any, buf: bytes, path: str,
                frames: list[int] | None = None) -> Iterator[Block]:
    """Every block of the pcapng stream ``src`` (``raw_read(n)`` as from
    ``capture.pcapfile.open_source``; ``buf``: the bytes already read from it, at least
    the magic). ``frames``: a one-item list holding the number of packet records read so
    far, kept by the caller, for the messages about a truncated packet."""
    base = 0
    pos = 0
    e = "<"
    u2 = struct.Struct("<II").unpack_from
    blen = len(buf)
    while True:
        # ---- block header
        if pos + 8 > blen:
            buf = fill(src, buf, pos, 12)
            base += pos
            pos = 0
            blen = len(buf)
            if blen == 0:
                return
            if blen < 8:
                raise CaptureError(path, base, f"capture ends in the middle of a block header "
                                               f"({blen} of 8 bytes present)")
        btype, blocklen = u2(buf, pos)
        if btype == SHB:        # the same value in both byte orders
            # Section Header Block: the byte-order magic decides how to read its length.
            if pos + 12 > blen:
                buf = fill(src, buf, pos, 12)
                base += pos
                pos = 0
                blen = len(buf)
                if blen < 12:
                    raise CaptureError(path, base, f"truncated pcapng section header block "
                                                   f"({blen} of at least 28 bytes)")
            bom = buf[pos + 8:pos + 12]
            if bom == _BOM_LE:
                e = "<"
            elif bom == _BOM_BE:
                e = ">"
            else:
                raise CaptureError(path, base + pos, f"pcapng section header block has a bad "
                                                     f"byte-order magic {bytes(bom).hex(' ')}")
            u2 = struct.Struct(e + "II").unpack_from
            blocklen = u2(buf, pos)[1]
            if blocklen < 28:
                raise CaptureError(path, base + pos, f"pcapng section header block length "
                                                     f"{blocklen} is less than 28")
        # ---- validate length
        if blocklen < 12 or blocklen & 3:
            raise CaptureError(path, base + pos,
                               f"pcapng block of type {btype:#x} has an invalid length {blocklen}"
                               + (" (less than 12)" if blocklen < 12 else
                                  " (not a multiple of 4)"))
        if blocklen > MAX_BLOCK:
            raise CaptureError(path, base + pos,
                               f"pcapng block of type {btype:#x} claims {blocklen} bytes, more "
                               f"than the maximum of {MAX_BLOCK} (corrupt file)")
        end = pos + blocklen
        if end > blen:
            buf = fill(src, buf, pos, blocklen)
            base += pos
            pos = 0
            end = blocklen
            blen = len(buf)
            if end > blen:
                if btype in (EPB, SPB, PB):
                    n = frames[0] if frames else 0
                    raise CaptureError(path, base, f"capture ends in the middle of packet "
                                                   f"{n + 1} (block length says {blocklen} "
                                                   f"bytes, {blen} present)")
                name = _BLOCK_NAMES.get(btype, f"a block of type {btype:#x}")
                raise CaptureError(path, base, f"capture ends in the middle of {name} "
                                               f"(block length says {blocklen} bytes, {blen} "
                                               f"present)")
        trail = u2(buf, end - 8)[1]
        if trail != blocklen:
            raise CaptureError(path, base + pos,
                               f"pcapng block of type {btype:#x}: trailing length {trail} differs "
                               f"from leading length {blocklen}")
        yield Block(btype, e, buf, pos, end, base + pos)
        pos = end


# ----------------------------------------------------------------------------- packets

#: Link type of a frame without a packet (a custom block, a systemd journal export block):
#: Wireshark numbers it, so it is counted, and nothing in it is decoded.
LINKTYPE_NO_PACKET = -1

#: What ``iter_packets`` yields. VIEWS: ``(number, ts_ns, linktype, buf, start, end, wirelen,
#: offset)`` per packet, its bytes ``buf[start:end]`` (``buf`` valid until the next one is
#: asked for). RECORDS: ``(number, ts_ns, linktype, bytes, wirelen, offset, interface)`` per
#: packet. BLOCKS: ``(Block, Packet or None)`` for every block.
VIEWS, RECORDS, BLOCKS = 0, 1, 2

_NO_FRAME_BLOCKS = frozenset({CB_COPY, CB_NO_COPY, SJEB})


class Packet(NamedTuple):
    """The packet of a packet block (``iter_packets(..., BLOCKS)``): its frame number, time
    (an SPB's is the previous packet's, as Wireshark shows it), interface (None for a frame
    without a packet), interface id, where its captured bytes are in the block's buffer,
    and its original length."""
    number: int
    ts_ns: int
    iface: Interface | None
    ifid: int
    start: int
    end: int
    wirelen: int


def iter_packets(src: Any, head: bytes, path: str, shape: int = VIEWS,
                 number_base: int = 0) -> Iterator[Any]:
    """The packets of the pcapng stream ``src`` (``head``: its bytes already read, from
    ``capture.pcapfile.open_source``), numbered from ``number_base + 1`` as Wireshark's
    ``frame.number`` (every EPB, SPB, PB, custom and systemd journal export block), in the
    form ``shape`` says (VIEWS, RECORDS, BLOCKS above). A damaged block raises
    ``CaptureError(path, offset, message)`` after every packet before it (the messages name
    the packet by its number in this stream)."""
    number = [0]                # shared with iter_blocks for its messages
    # per interface of the section: (link type, ns per tick or 0 for the general formula,
    # offset ns, snapshot length, Interface)
    ifaces: list[tuple[int, int, int, int, Interface]] = []
    last_ts = 0
    u5 = struct.Struct("<IIIII").unpack_from
    mk = Block
    for btype, e, b, pos, end, off in iter_blocks(src, head, path, number):
        if btype == EPB:
            blocklen = end - pos
            if blocklen < 32:
                raise CaptureError(path, off, f"enhanced packet block too short ({blocklen} bytes)")
            ifid, tsh, tsl, caplen, wirelen = u5(b, pos + 8)
            if caplen > blocklen - 32:
                raise CaptureError(path, off, f"packet {number[0] + 1}: captured length {caplen} "
                                              f"does not fit in its {blocklen}-byte block")
            try:
                lt, mul, off_ns, _snap, ifc = ifaces[ifid]
            except IndexError:
                raise CaptureError(path, off, _no_iface(number[0] + 1, ifid, len(ifaces))) from None
            last_ts = ((tsh << 32) | tsl) * mul + off_ns if mul else ifc.ts_ns((tsh << 32) | tsl)
            start = pos + 28
        elif btype == SPB:
            blocklen = end - pos
            if blocklen < 16:
                raise CaptureError(path, off, f"simple packet block too short ({blocklen} bytes)")
            if not ifaces:
                raise CaptureError(path, off,
                                   f"packet {number[0] + 1} (simple packet block) refers to "
                                   f"interface 0, but no interface is defined in this section")
            lt, _mul, _off, snap, ifc = ifaces[0]
            ifid = 0
            wirelen = struct.unpack_from(e + "I", b, pos + 8)[0]
            caplen = min(wirelen, blocklen - 16)
            if snap:
                caplen = min(caplen, snap)
            start = pos + 12
        elif btype == PB:
            blocklen = end - pos
            if blocklen < 32:
                raise CaptureError(path, off, f"packet block too short ({blocklen} bytes)")
            ifid, _drops, tsh, tsl, caplen, wirelen = struct.unpack_from(e + "HHIIII", b, pos + 8)
            if caplen > blocklen - 32:
                raise CaptureError(path, off, f"packet {number[0] + 1}: captured length {caplen} "
                                              f"does not fit in its {blocklen}-byte block")
            if ifid >= len(ifaces):
                raise CaptureError(path, off, _no_iface(number[0] + 1, ifid, len(ifaces)))
            lt, _mul, _off, _snap, ifc = ifaces[ifid]
            last_ts = ifc.ts_ns((tsh << 32) | tsl)
            start = pos + 28
        elif btype in _NO_FRAME_BLOCKS:
            # Wireshark 4.0 shows these as frames: count them so numbers stay equal
            lt, ifid, caplen, wirelen, start, ifc = LINKTYPE_NO_PACKET, 0, 0, 0, pos, None
        else:
            if btype == IDB:
                if end - pos < 20:
                    raise CaptureError(path, off, f"interface description block too short "
                                                  f"({end - pos} bytes)")
                i = parse_idb(b[pos + 8:end - 4], e)
                fast = i.mul if i.shift == 0 and i.div == 1 else 0
                ifaces.append((i.linktype, fast, i.off_ns, i.snaplen, i))
            elif btype == SHB:
                ifaces = []
                u5 = struct.Struct(e + "IIIII").unpack_from
            # every other block type (NRB, ISB, DSB, ...) carries no frame
            if shape == BLOCKS:
                yield mk(btype, e, b, pos, end, off), None
            continue
        number[0] += 1
        if shape == VIEWS:
            yield number[0] + number_base, last_ts, lt, b, start, start + caplen, wirelen, off
        elif shape == RECORDS:
            yield (number[0] + number_base, last_ts, lt, bytes(b[start:start + caplen]), wirelen,
                   off, ifid)
        else:
            yield (mk(btype, e, b, pos, end, off),
                   Packet(number[0] + number_base, last_ts, ifc, ifid, start, start + caplen,
                          wirelen))


def _no_iface(n: int, ifid: int, defined: int) -> str:
    return (f"packet {n} refers to interface {ifid}, but {defined} interface(s) are defined in "
            f"this section")
