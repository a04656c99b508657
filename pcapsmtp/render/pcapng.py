"""``pcapsmtp annotate IN -o OUT.pcapng``: the capture written back with packet comments.

``write_annotated(in_path, out_path, comments)`` writes every record of ``in_path``
unchanged as pcapng and adds one packet comment (``opt_comment``, option code 1) per text
to the frames named in ``comments`` (1-based, Wireshark's ``frame.number``). Wireshark and
tshark show them as ``frame.comment`` (tshark 4.0: ``-e frame.comment``; display filter
``frame.comment contains "pcapsmtp"``).

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

Frame numbers count enhanced, simple and obsolete packet blocks, systemd journal export
blocks and custom blocks (0x00000BAD, 0x40000BAD), as Wireshark 4.0 does (custom blocks
show as frames of protocol "data"; they cannot carry our comments, since their options
cannot be told from their data); comments for frame numbers the file does not have are ignored
(``write_annotated`` returns how many frames were commented).

Comment texts are written as UTF-8 with control characters escaped (``\\r``, ``\\n``,
``\\t``, ``\\xNN``): they quote captured bytes. One option holds at most 65 535 bytes;
longer texts are cut at a character boundary and end with ``...``.
"""
from __future__ import annotations

import gzip
import os
import struct
import tempfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, BinaryIO, Protocol

from pcapsmtp.errors import CaptureError, UsageError

__all__ = ["write_annotated", "comments_from_conversations", "escape_comment",
           "COMMENT_PREFIX"]

COMMENT_PREFIX = "pcapsmtp: "

_SHB = 0x0A0D0D0A
_IDB = 1
_PB = 2
_SPB = 3
_EPB = 6
_SJEB = 9
_CB_COPY = 0x00000BAD
_CB_NO_COPY = 0x40000BAD
#: Blocks Wireshark 4.0 shows as frames (checked with tshark 4.0.17: custom blocks are
#: frames of protocol "data"; ISB, NRB and DSB are not).
_PACKET_BLOCKS = frozenset({_PB, _SPB, _EPB, _SJEB, _CB_COPY, _CB_NO_COPY})
_BOM = 0x1A2B3C4D
_MAX_BLOCK = 64 * 1024 * 1024
_MAX_CAPLEN = 262144
_MAX_OPT = 65535

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}

_ESCAPES = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def escape_comment(text: str) -> str:
    """Make ``text`` safe for a packet comment: no control characters (C0, DEL, C1)."""
    out: list[str] = []
    for ch in text:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o <= 0x9F:
            out.append(_ESCAPES.get(ch, f"\\x{o:02x}"))
        elif 0xD800 <= o <= 0xDFFF:       # lone surrogates (from surrogateescape) cannot be UTF-8
            out.append(f"\\x{o & 0xFF:02x}")
        else:
            out.append(ch)
    return "".join(out)


def _comment_bytes(text: str) -> bytes:
    data = escape_comment(text).encode("utf-8")
    if len(data) > _MAX_OPT:
        cut = data[:_MAX_OPT - 3]
        data = cut.decode("utf-8", "ignore").encode("utf-8") + b"..."
    return data


def _option(e: str, code: int, value: bytes) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


# ----------------------------------------------------------------------------- input


class _Readable(Protocol):
    def read(self, n: int, /) -> bytes: ...


class _Reader:
    """Exact reads with the current offset in the (decompressed) input."""

    def __init__(self, path: str, fh: _Readable) -> None:
        self.path = path
        self.fh = fh
        self.offset = 0

    def read(self, n: int) -> bytes:
        try:
            data = self.fh.read(n)
        except (OSError, EOFError, zlib.error) as exc:
            raise CaptureError(self.path, self.offset, f"cannot read: {exc}") from exc
        self.offset += len(data)
        return data

    def exact(self, n: int, what: str) -> bytes:
        start = self.offset
        data = self.read(n)
        if len(data) != n:
            raise CaptureError(self.path, start,
                               f"file ends inside {what} ({len(data)} of {n} bytes)")
        return data

    def fail(self, offset: int, message: str) -> CaptureError:
        return CaptureError(self.path, offset, message)


def _open_input(path: str) -> tuple[BinaryIO, BinaryIO | gzip.GzipFile]:
    try:
        raw: BinaryIO = open(path, "rb")
    except OSError as exc:
        raise CaptureError(path, None, f"cannot open: {exc.strerror or exc}") from exc
    try:
        head = raw.read(2)
        raw.seek(0)
    except OSError as exc:
        raw.close()
        raise CaptureError(path, None, f"cannot read: {exc}") from exc
    if head == b"\x1f\x8b":
        return raw, gzip.GzipFile(fileobj=raw, mode="rb")
    return raw, raw


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


def _block(e: str, btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack(e + "II", btype, total) + body + struct.pack(e + "I", total)


def _shb_le() -> bytes:
    from pcapsmtp import __version__
    opts = _option("<", 4, f"pcapsmtp {__version__}".encode()) + _option("<", 0, b"")
    return _block("<", _SHB, struct.pack("<IHHq", _BOM, 1, 0, -1) + opts)


def _convert_pcap(rd: _Reader, out: _Writer, e: str, nano: bool,
                  comments: Mapping[int, list[bytes]]) -> int:
    hdr = rd.exact(20, "the pcap file header")
    _vmaj, _vmin, _zone, _sigfigs, snaplen, network = struct.unpack(e + "HHiIII", hdr)
    linktype = network & 0xFFFF
    opts = b""
    if nano:
        opts += _option("<", 9, b"\x09")
    if network & 0x04000000:                     # FCS length present (bits 28..31)
        opts += _option("<", 13, bytes([(network >> 28) & 0x0F]))
    if opts:
        opts += _option("<", 0, b"")
    out.write(_shb_le())
    out.write(_block("<", _IDB, struct.pack("<HHI", linktype, 0, snaplen) + opts))
    number = 0
    commented = 0
    while True:
        at = rd.offset
        rec = rd.read(16)
        if not rec:
            return commented
        if len(rec) < 16:
            raise rd.fail(at, f"file ends inside a record header ({len(rec)} of 16 bytes)")
        sec, frac, caplen, wirelen = struct.unpack(e + "IIII", rec)
        if caplen > _MAX_CAPLEN:
            raise rd.fail(at, f"record of {caplen} bytes, larger than the maximum {_MAX_CAPLEN}")
        data = rd.exact(caplen, "a record")
        number += 1
        ts = sec * (1_000_000_000 if nano else 1_000_000) + frac
        body = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, caplen, wirelen)
        body += data + b"\0" * (-caplen % 4)
        texts = comments.get(number)
        if texts:
            commented += 1
            body += b"".join(_option("<", 1, t) for t in texts) + _option("<", 0, b"")
        out.write(_block("<", _EPB, body))


def _split_options(rd: _Reader, at: int, e: str, opts: bytes) -> bytes:
    """The options of a block without their end-of-options marker (validated)."""
    pos = 0
    while pos + 4 <= len(opts):
        code, length = struct.unpack_from(e + "HH", opts, pos)
        if code == 0:
            return opts[:pos]
        nxt = pos + 4 + length + (-length % 4)
        if nxt > len(opts):
            raise rd.fail(at, f"option {code} runs past the end of its block")
        pos = nxt
    if pos != len(opts):
        raise rd.fail(at, "block options end in a partial option header")
    return opts


class _Iface:
    __slots__ = ("snaplen", "units", "offset_s")

    def __init__(self, snaplen: int, units: int, offset_s: int) -> None:
        self.snaplen = snaplen
        self.units = units        # ticks per second
        self.offset_s = offset_s  # if_tsoffset, seconds


def _parse_idb(rd: _Reader, at: int, e: str, body: bytes) -> _Iface:
    if len(body) < 8:
        raise rd.fail(at, "interface description block too short")
    _lt, _res, snaplen = struct.unpack_from(e + "HHI", body, 0)
    units, offset_s = 1_000_000, 0
    opts = body[8:]
    pos = 0
    while pos + 4 <= len(opts):
        code, length = struct.unpack_from(e + "HH", opts, pos)
        if code == 0:
            break
        val = opts[pos + 4:pos + 4 + length]
        if code == 9 and length >= 1:
            r = val[0]
            units = 2 ** (r & 0x7F) if r & 0x80 else 10 ** r
        elif code == 14 and length >= 8:
            (offset_s,) = struct.unpack(e + "q", val[:8])
        pos += 4 + length + (-length % 4)
    return _Iface(snaplen, units, offset_s)


def _copy_pcapng(rd: _Reader, out: _Writer, comments: Mapping[int, list[bytes]]) -> int:
    e = "<"
    ifaces: list[_Iface] = []
    number = 0
    commented = 0
    prev_ts_ns = 0
    shb_len_pos: int | None = None      # where the current section's length field was written
    section_start = 0
    first = True

    def close_section() -> None:
        if shb_len_pos is not None:
            out.patch(shb_len_pos, struct.pack(e + "q", out.pos - section_start))

    while True:
        at = rd.offset
        head = rd.read(8)
        if not head:
            if first:
                raise rd.fail(0, "empty file")
            close_section()
            return commented
        if len(head) < 8:
            raise rd.fail(at, f"file ends inside a block header ({len(head)} of 8 bytes)")
        if head[:4] == b"\x0a\x0d\x0d\x0a":
            bom = rd.exact(4, "a section header block")
            if bom == b"\x4d\x3c\x2b\x1a":
                new_e = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                new_e = ">"
            else:
                raise rd.fail(at + 8, "section header block with an unknown byte-order magic")
            (total,) = struct.unpack(new_e + "I", head[4:])
            if total < 28 or total % 4 or total > _MAX_BLOCK:
                raise rd.fail(at, f"section header block of impossible length {total}")
            rest = rd.exact(total - 12, "a section header block")
            (trail,) = struct.unpack(new_e + "I", rest[-4:])
            if trail != total:
                raise rd.fail(at, f"section header block lengths differ ({total} and {trail})")
            close_section()
            e = new_e
            ifaces = []
            (sec_len,) = struct.unpack_from(e + "q", rest, 4)
            shb_len_pos = out.pos + 16 if sec_len != -1 else None
            out.write(head + bom + rest)
            section_start = out.pos
            first = False
            continue
        if first:
            raise rd.fail(0, "not a pcap or pcapng file")
        btype, total = struct.unpack(e + "II", head)
        if total < 12 or total % 4 or total > _MAX_BLOCK:
            raise rd.fail(at, f"block of type 0x{btype:x} with impossible length {total}")
        rest = rd.exact(total - 8, f"a block of type 0x{btype:x}")
        (trail,) = struct.unpack(e + "I", rest[-4:])
        if trail != total:
            raise rd.fail(at, f"block of type 0x{btype:x}: lengths differ ({total} and {trail})")
        body = rest[:-4]
        if btype == _IDB:
            ifaces.append(_parse_idb(rd, at, e, body))
            out.write(head + rest)
            continue
        if btype not in _PACKET_BLOCKS:
            out.write(head + rest)
            continue
        number += 1
        texts = comments.get(number)
        if btype in (_EPB, _PB):
            if len(body) < 20:
                raise rd.fail(at, "packet block too short")
            if btype == _EPB:
                iface, ts_hi, ts_lo, caplen, _wl = struct.unpack_from(e + "IIIII", body, 0)
            else:
                iface, _drops, ts_hi, ts_lo, caplen, _wl = struct.unpack_from(e + "HHIIII", body, 0)
            data_end = 20 + caplen + (-caplen % 4)
            if data_end > len(body):
                raise rd.fail(at, f"packet data ({caplen} bytes) runs past the end of its block")
            if iface >= len(ifaces):
                raise rd.fail(at, f"packet on interface {iface}, which is not described")
            ifc = ifaces[iface]
            ticks = (ts_hi << 32) | ts_lo
            prev_ts_ns = ticks * 1_000_000_000 // ifc.units + ifc.offset_s * 1_000_000_000
            if not texts:
                out.write(head + rest)
                continue
            opts = _split_options(rd, at, e, body[data_end:])
            new_body = body[:data_end] + opts + b"".join(_option(e, 1, t) for t in texts) \
                + _option(e, 0, b"")
            out.write(_block(e, btype, new_body))
            commented += 1
            continue
        if btype == _SPB and texts:
            if len(body) < 4:
                raise rd.fail(at, "simple packet block too short")
            if not ifaces:
                raise rd.fail(at, "simple packet block before any interface description")
            (wirelen,) = struct.unpack_from(e + "I", body, 0)
            ifc = ifaces[0]
            caplen = min(wirelen, ifc.snaplen) if ifc.snaplen else wirelen
            caplen = min(caplen, len(body) - 4)
            data = body[4:4 + caplen]
            rel_ns = prev_ts_ns - ifc.offset_s * 1_000_000_000
            ticks = max(0, rel_ns * ifc.units // 1_000_000_000)
            new_body = struct.pack(e + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, caplen,
                                   wirelen) + data + b"\0" * (-caplen % 4)
            new_body += b"".join(_option(e, 1, t) for t in texts) + _option(e, 0, b"")
            out.write(_block(e, _EPB, new_body))
            commented += 1
            continue
        # SPB without comment; systemd journal export and custom blocks (Wireshark frames
        # too, but their options cannot be told from their data: never commented)
        out.write(head + rest)


# ----------------------------------------------------------------------------- public


def _same_file(a: str, b: str) -> bool:
    try:
        if os.path.exists(b) and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def write_annotated(in_path: str, out_path: str, comments: Mapping[int, Sequence[str]]) -> int:
    """Copy ``in_path`` to ``out_path`` as pcapng with packet comments added to the frames in
    ``comments``; return the number of frames that got at least one comment."""
    if _same_file(in_path, out_path):
        raise UsageError(f"{out_path}: the output would overwrite the input {in_path}; "
                         "choose another output file")
    encoded: dict[int, list[bytes]] = {}
    for frame, texts in comments.items():
        if isinstance(texts, str):
            texts = [texts]
        enc = [_comment_bytes(t) for t in texts]
        if enc:
            encoded[int(frame)] = enc
    raw, fh = _open_input(in_path)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    tmp_name: str | None = None
    try:
        rd = _Reader(in_path, fh)
        magic = rd.read(4)
        try:
            tmp = tempfile.NamedTemporaryFile(prefix=".pcapsmtp-", suffix=".pcapng.tmp",
                                              dir=out_dir, delete=False)
        except OSError as exc:
            raise UsageError(f"{out_path}: cannot write here: {exc.strerror or exc}") from exc
        tmp_name = tmp.name
        with tmp:
            out = _Writer(tmp)  # type: ignore[arg-type]
            if magic in _PCAP_MAGICS:
                e, nano = _PCAP_MAGICS[magic]
                commented = _convert_pcap(rd, out, e, nano, encoded)
            elif magic == b"\x0a\x0d\x0d\x0a":
                rd = _Reader(in_path, _Prepend(magic, fh))
                commented = _copy_pcapng(rd, out, encoded)
            elif len(magic) < 4:
                raise CaptureError(in_path, 0, "file too short to be a capture")
            else:
                raise CaptureError(in_path, 0, "not a pcap or pcapng file "
                                   f"(starts with {magic.hex()})")
        os.replace(tmp_name, out_path)
        tmp_name = None
        return commented
    finally:
        if fh is not raw:
            fh.close()
        raw.close()
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


class _Prepend:
    """A read() over ``head`` followed by ``fh`` (to re-read the bytes of a sniffed magic)."""

    def __init__(self, head: bytes, fh: _Readable) -> None:
        self.head = head
        self.fh = fh

    def read(self, n: int) -> bytes:
        if self.head:
            part, self.head = self.head[:n], self.head[n:]
            if len(part) < n:
                part += self.fh.read(n - len(part))
            return bytes(part)
        return self.fh.read(n)


def _finding_text(f: Mapping[str, Any]) -> str:
    code = f.get("code") or "finding"
    side = f.get("side")
    text = f"{COMMENT_PREFIX}{code}"
    if side:
        text += f" ({side})"
    msg = f.get("message")
    if msg:
        text += f": {msg}"
    rfc = f.get("rfc")
    if rfc:
        text += f" [{rfc}]"
    return escape_comment(text)


def _verdict_text(conv: Mapping[str, Any]) -> str:
    text = f"{COMMENT_PREFIX}verdict {conv.get('reason') or 'unknown'}"
    caused = conv.get("caused_by")
    if caused and caused != "none":
        text += f" ({caused})"
    outcome = conv.get("outcome")
    if outcome:
        text += f": outcome {outcome}"
    client, server = conv.get("client"), conv.get("server")
    if isinstance(client, Mapping) and isinstance(server, Mapping):
        text += (f", {client.get('ip')}:{client.get('port')} -> "
                 f"{server.get('ip')}:{server.get('port')}")
    detail = conv.get("detail")
    if detail:
        text += f": {detail}"
    return escape_comment(text)


def comments_from_conversations(convs: Iterable[Mapping[str, Any]]) -> dict[int, list[str]]:
    """Packet comments from JSON-contract conversation dicts: one per finding on its
    ``frame`` (``pcapsmtp: CODE (SIDE): MESSAGE [RFC]``), and one for the verdict on
    ``evidence_frame`` when the conversation has it (``pcapsmtp: verdict REASON (CAUSED_BY):
    outcome OUTCOME, CLIENT -> SERVER: DETAIL``, parts left out when the keys are missing). Frames
    are sorted; a frame never gets the same text twice; findings without an integer frame are
    left out."""
    out: dict[int, list[str]] = {}

    def add(frame: Any, text: str) -> None:
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 1:
            return
        texts = out.setdefault(frame, [])
        if text not in texts:
            texts.append(text)

    for conv in convs:
        for f in conv.get("findings") or ():
            if isinstance(f, Mapping):
                add(f.get("frame"), _finding_text(f))
        if "evidence_frame" in conv:
            add(conv.get("evidence_frame"), _verdict_text(conv))
    return {k: out[k] for k in sorted(out)}
