"""A capture copied as pcapng with packet comments added (what ``annotate`` writes; the
comments themselves are made in ``render.pcapng``).

Input pcap (either byte order, microsecond or nanosecond magic): one little-endian section
header, one interface description (the file's link type, snapshot length, ``if_tsresol`` 9
for nanosecond files, ``if_fcslen`` when the link-type field carries an FCS length) and one
enhanced packet block per record, with the record's timestamp, captured and original
lengths and bytes as they are.

Input pcapng: every block is copied byte for byte, in its section's byte order, except:

- an enhanced packet block (or an obsolete packet block) that gets comments keeps its
  existing options and has the comments appended before the end-of-options marker;
- a simple packet block that gets comments becomes an enhanced packet block on interface
  0, with the original length and bytes of the SPB. An SPB has no timestamp; Wireshark
  shows it with the previous packet's time (0 for the first), so the EPB gets that time,
  expressed in interface 0's resolution (``if_tsresol``, minus its ``if_tsoffset``);
- a section header whose section length is given (not -1) gets the new length of its
  section, as the added options make sections longer.

Gzip-compressed input is read decompressed; the output is never compressed. The output is
written to a temporary file in the output's directory and moved into place with
``os.replace``: a damaged input (``CaptureError(path, offset, message)``, offset in the
decompressed bytes) leaves no output file behind, and an existing ``OUT`` is never half
overwritten. ``OUT`` naming the same file as ``IN`` raises ``UsageError``.

The packet blocks are decoded by ``capture.pcapng.iter_packets``, the reader's own decoder, so
the frame numbers are the analysis's and a damaged block gets the reader's message. Frame
numbers count enhanced, simple and obsolete packet blocks, systemd journal export
blocks and custom blocks (0x00000BAD, 0x40000BAD), as Wireshark 4.0 does (custom blocks
show as frames of protocol "data"; they cannot carry our comments, since their options
cannot be told from their data); comments for frame numbers the file does not have are ignored
(``write_annotated`` returns how many frames were commented).
"""
from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Mapping
from typing import BinaryIO

from pcapsmtp.capture.pcapfile import Source, is_pcap, open_source, read_pcap
from pcapsmtp.capture.pcapng import (
    BLOCKS, EPB, PB, SHB, SPB, block, epb, idb, iter_packets, option, shb, split_options,
)
from pcapsmtp.errors import CaptureError, UsageError

__all__ = ["write_with_comments"]


# ----------------------------------------------------------------------------- output


class _Writer:
    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.pos = 0

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.pos += len(data)

    def patch(self, pos: int, data: bytes) -> None:
        self.fh.seek(pos)
        self.fh.write(data)
        self.fh.seek(self.pos)


def _convert_pcap(src: Source, head: bytes, path: str, out: _Writer,
                  comments: Mapping[int, list[bytes]]) -> int:
    h, views = read_pcap(src, head, path, inplace=True)
    nano = h.mult == 1
    opts = b""
    if nano:
        opts += option("<", 9, b"\x09")
    if h.network & 0x04000000:                   # FCS length present (bits 28..31)
        opts += option("<", 13, bytes([(h.network >> 28) & 0x0F]))
    from pcapsmtp import __version__
    out.write(shb(f"pcapsmtp {__version__}"))
    out.write(idb(h.network & 0xFFFF, h.snaplen, opts))
    commented = 0
    for number, ts_ns, _lt, buf, start, end, wirelen, _off in views:
        texts = comments.get(number)
        opt = b""
        if texts:
            commented += 1
            opt = b"".join(option("<", 1, t) for t in texts) + option("<", 0, b"")
        out.write(epb(0, ts_ns if nano else ts_ns // 1000, bytes(buf[start:end]), wirelen, opt))
    return commented


def _copy_pcapng(src: Source, head: bytes, path: str, out: _Writer,
                 comments: Mapping[int, list[bytes]]) -> int:
    """Every block copied; the packets (``capture.pcapng.iter_packets``, the reader's own
    decoder: the same frame numbers and the same checks) that get comments rewritten."""
    commented = 0
    shb_len_pos: int | None = None      # where the current section's length field was written
    section_start = 0
    e = "<"

    def close_section() -> None:
        if shb_len_pos is not None:
            out.patch(shb_len_pos, struct.pack(e + "q", out.pos - section_start))

    for (btype, be, buf, pos, end, at), pkt in iter_packets(src, head, path, BLOCKS):
        if btype == SHB:
            close_section()
            e = be
            (sec_len,) = struct.unpack_from(e + "q", buf, pos + 16)
            shb_len_pos = out.pos + 16 if sec_len != -1 else None
            out.write(bytes(buf[pos:end]))
            section_start = out.pos
            continue
        texts = comments.get(pkt.number) if pkt is not None else None
        if not texts or btype not in (EPB, PB, SPB):
            # uncommented, not a packet, or a frame that cannot take a comment (systemd
            # journal export and custom blocks: their options cannot be told from their data)
            out.write(bytes(buf[pos:end]))
            continue
        assert pkt is not None and pkt.iface is not None
        opt = b"".join(option(e, 1, t) for t in texts) + option(e, 0, b"")
        if btype == SPB:
            # no timestamp of its own: the previous packet's, in interface 0's units
            ifc = pkt.iface
            rel_ns = pkt.ts_ns - ifc.offset_s * 1_000_000_000
            ticks = max(0, rel_ns * ifc.units // 1_000_000_000)
            out.write(epb(0, ticks, bytes(buf[pkt.start:pkt.end]), pkt.wirelen, opt, e))
        else:
            data_end = pkt.end + (-(pkt.end - pkt.start) % 4)      # the data, padded
            try:
                opts = split_options(bytes(buf[data_end:end - 4]), e)
            except ValueError as exc:
                raise CaptureError(path, at, f"packet {pkt.number}: {exc}") from None
            out.write(block(e, btype, bytes(buf[pos + 8:data_end]) + opts + opt))
        commented += 1
    close_section()
    return commented


# ----------------------------------------------------------------------------- public


def _same_file(a: str, b: str) -> bool:
    try:
        if os.path.exists(b) and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def write_with_comments(in_path: str, out_path: str, comments: Mapping[int, list[bytes]]) -> int:
    """Copy ``in_path`` to ``out_path`` as pcapng with the packet comments ``comments``
    (frame number -> option values, UTF-8, already made safe) added; return the number of
    frames that got at least one comment."""
    if _same_file(in_path, out_path):
        raise UsageError(f"{out_path}: the output would overwrite the input {in_path}; "
                         "choose another output file")
    src, head = open_source(in_path)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    tmp_name: str | None = None
    try:
        try:
            tmp = tempfile.NamedTemporaryFile(prefix=".pcapsmtp-", suffix=".pcapng.tmp",
                                              dir=out_dir, delete=False)
        except OSError as exc:
            raise UsageError(f"{out_path}: cannot write here: {exc.strerror or exc}") from exc
        tmp_name = tmp.name
        with tmp:
            out = _Writer(tmp)  # type: ignore[arg-type]
            if is_pcap(head):
                commented = _convert_pcap(src, head, in_path, out, comments)
            else:
                commented = _copy_pcapng(src, head, in_path, out, comments)
        os.replace(tmp_name, out_path)
        tmp_name = None
        return commented
    except MemoryError:
        raise CaptureError(in_path, None, "out of memory while reading the capture") from None
    finally:
        src.close()
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
