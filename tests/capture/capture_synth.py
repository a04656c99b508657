"""Byte-exact writers for the synthetic captures of the capture tests (pcap, pcapng blocks)
and the path of the public corpus. Written by hand with ``struct`` on purpose: the tests
must control every field, including the broken ones."""
from __future__ import annotations

import struct
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1].parent / "tests" / "corpus"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz")


def corpus_files() -> list[Path]:
    """Every capture of the public corpus, plus ``captures/*.pcap*`` of the repo if present."""
    files: list[Path] = []
    if CORPUS.is_dir():
        files += sorted(p for p in CORPUS.rglob("*") if p.name.endswith(CAPTURE_SUFFIXES))
    own = Path(__file__).resolve().parents[2] / "captures"
    if own.is_dir():
        files += sorted(p for p in own.rglob("*") if p.name.endswith(CAPTURE_SUFFIXES))
    return files


# ----------------------------------------------------------------------------- pcap

def pcap_header(*, endian: str = "<", nano: bool = False, linktype: int = 1,
                snaplen: int = 262144) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    return struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(data: bytes, sec: int, frac: int, *, endian: str = "<",
                wirelen: int | None = None, caplen: int | None = None) -> bytes:
    return struct.pack(endian + "IIII", sec, frac, len(data) if caplen is None else caplen,
                       len(data) if wirelen is None else wirelen) + data


def pcap_file(packets: list[tuple[bytes, int, int]], *, endian: str = "<", nano: bool = False,
              linktype: int = 1, snaplen: int = 262144) -> bytes:
    out = [pcap_header(endian=endian, nano=nano, linktype=linktype, snaplen=snaplen)]
    out += [pcap_record(d, s, f, endian=endian) for d, s, f in packets]
    return b"".join(out)


# ----------------------------------------------------------------------------- pcapng

def _pad(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def block(btype: int, body: bytes, *, endian: str = "<") -> bytes:
    body = _pad(body)
    n = len(body) + 12
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def option(code: int, value: bytes, *, endian: str = "<") -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + _pad(value)


def shb(*, endian: str = "<", options: bytes = b"") -> bytes:
    body = struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options
    return block(0x0A0D0D0A, body, endian=endian)


def idb(linktype: int, *, snaplen: int = 0, tsresol: int | None = None,
        tsoffset: int | None = None, endian: str = "<") -> bytes:
    opts = b""
    if tsresol is not None:
        opts += option(9, bytes([tsresol]), endian=endian)
    if tsoffset is not None:
        opts += option(14, struct.pack(endian + "q", tsoffset), endian=endian)
    if opts:
        opts += struct.pack(endian + "HH", 0, 0)
    return block(1, struct.pack(endian + "HHI", linktype, 0, snaplen) + opts, endian=endian)


def epb(ifid: int, ts_raw: int, data: bytes, *, wirelen: int | None = None,
        endian: str = "<", options: bytes = b"") -> bytes:
    body = struct.pack(endian + "IIIII", ifid, ts_raw >> 32, ts_raw & 0xFFFFFFFF, len(data),
                       len(data) if wirelen is None else wirelen) + _pad(data) + options
    return block(6, body, endian=endian)


def spb(data: bytes, wirelen: int | None = None, *, endian: str = "<") -> bytes:
    return block(3, struct.pack(endian + "I", len(data) if wirelen is None else wirelen) + data,
                 endian=endian)


def pb(ifid: int, ts_raw: int, data: bytes, *, endian: str = "<") -> bytes:
    body = struct.pack(endian + "HHIIII", ifid, 0, ts_raw >> 32, ts_raw & 0xFFFFFFFF, len(data),
                       len(data)) + _pad(data)
    return block(2, body, endian=endian)
