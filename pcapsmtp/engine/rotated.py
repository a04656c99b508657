"""Rotated captures as one: the consecutive files of ``tcpdump -C/-G`` or a dumpcap ring buffer.

``order_pieces`` checks the files and puts them in capture order (by first timestamp);
``analyzer.analyze_files`` reads them with one analyzer, so conversations are reassembled
across the boundaries and ``tls-fallback`` and the summary cover the whole set. Inside, a
frame is numbered through the set (the k-th record of the second file is
``frames of the first + k``) and ``tcp.stream`` counts the conversations of the whole set (as
Wireshark numbers the files merged with ``mergecap -a``). ``localiser`` turns every frame
reference of a verdict back into the file that holds the frame and its ``frame.number``
there, so each one opens in Wireshark as it is (docs/output.md, "Rotated captures").
"""
from __future__ import annotations

import os
import struct
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pcapsmtp.errors import CaptureError, UsageError
from pcapsmtp.render.wireshark import frames_filter

__all__ = ["Piece", "localiser", "order_pieces", "scan_piece"]


@dataclass(frozen=True)
class Piece:
    """One file of a rotated set: its first and last timestamps (ns; None if it holds no
    packet), its link types, and how many records it has."""

    path: str
    first_ts: int | None
    last_ts: int | None
    linktypes: frozenset[int]
    frames: int


def scan_piece(path: str) -> Piece:
    """Read ``path``'s record headers once (a damaged file stops at the damage: its error
    comes again, with the results before it, when the set is analysed). An uncompressed pcap
    is walked header to header without reading the packets."""
    quick = _scan_pcap(path)
    if quick is not None:
        return quick
    from pcapsmtp.capture.pcapfile import iter_records
    first = last = None
    links: set[int] = set()
    n = 0
    records = iter_records(path)
    try:
        for rec in records:
            n = rec[0]
            ts = rec[1]
            if first is None:
                first = ts
            if last is None or ts > last:
                last = ts
            if rec[2] >= 0:
                links.add(rec[2])
    except CaptureError:
        if n == 0:
            raise
    return Piece(path, first, last, frozenset(links), n)


_MAGICS = {b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\xa1\xb2\xc3\xd4": (">", 1000),
           b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1)}


def _scan_pcap(path: str) -> Piece | None:
    """``scan_piece`` of an uncompressed pcap file; None for anything else (pcapng, gzip,
    damage: the general reader then says what is wrong)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return None
    with fh:
        head = fh.read(24)
        kind = _MAGICS.get(head[:4])
        if kind is None or len(head) < 24:
            return None
        endian, mult = kind
        linktype = struct.unpack(endian + "I", head[20:24])[0] & 0x03FFFFFF
        unpack = struct.Struct(endian + "IIII").unpack
        size = os.fstat(fh.fileno()).st_size
        pos = 24
        n = 0
        first = last = None
        read, seek = fh.read, fh.seek
        while pos < size:
            rec = read(16)
            if len(rec) < 16:
                return None
            sec, frac, caplen, _wire = unpack(rec)
            pos += 16 + caplen
            if pos > size or caplen > 262144:
                return None
            ts = sec * 1_000_000_000 + frac * mult
            if first is None:
                first = ts
            if last is None or ts > last:
                last = ts
            n += 1
            seek(pos)
    return Piece(path, first, last, frozenset({linktype}) if n else frozenset(), n)


def _name(linktype: int) -> str:
    names = {1: "Ethernet", 101: "raw IP", 113: "Linux cooked", 276: "Linux cooked v2",
             0: "BSD loopback", 228: "raw IPv4", 229: "raw IPv6"}
    return f"{linktype} ({names[linktype]})" if linktype in names else str(linktype)


def order_pieces(paths: list[str], *, allow_overlap: bool = False,
                 allow_mixed_links: bool = False,
                 scan: Callable[[str], Piece] = scan_piece) -> list[Piece]:
    """The files of a rotated set in capture order (first timestamp, then the order given).
    Raises ``UsageError`` (one line) when two files overlap in time or the set mixes link
    types, unless allowed; files without packets are kept where they were given."""
    if "-" in paths:
        raise UsageError("--rotated reads files, not standard input ('-')")
    if len(set(paths)) != len(paths):
        dup = next(p for p in paths if paths.count(p) > 1)
        raise UsageError(f"--rotated: {dup} is given twice")
    pieces = [scan(p) for p in paths]
    order = sorted(range(len(pieces)), key=lambda i: (
        pieces[i].first_ts if pieces[i].first_ts is not None else -1, i))
    ordered = [pieces[i] for i in order]
    if not allow_mixed_links:
        seen: dict[int, str] = {}
        for pc in ordered:
            for lt in sorted(pc.linktypes):
                seen.setdefault(lt, pc.path)
        if len(seen) > 1:
            (a, pa), (b, pb) = sorted(seen.items(), key=lambda kv: order.index(
                paths.index(kv[1])))[:2]
            raise UsageError(f"--rotated: {pb} has link type {_name(b)}, {pa} {_name(a)}: "
                             "not pieces of one capture (--allow-mixed-links to analyse them "
                             "as one anyway)")
    if not allow_overlap:
        prev: Piece | None = None
        for pc in ordered:
            if pc.first_ts is None:
                continue
            if prev is not None and prev.last_ts is not None and pc.first_ts < prev.last_ts:
                raise UsageError(
                    f"--rotated: {pc.path} starts before {prev.path} ends "
                    f"({(prev.last_ts - pc.first_ts) / 1e9:.6f} s of overlap): not consecutive "
                    "pieces of one capture (--allow-overlap to read them in order of first "
                    "packet anyway)")
            prev = pc
    return ordered


def localiser(pieces: list[tuple[int, str]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """``conv -> conv`` with the set's frame numbers turned into (file, number in it), for
    ``pieces`` = ``[(set number of the file's first frame, path), ...]`` in order."""
    starts = [s for s, _ in pieces]
    paths = [p for _, p in pieces]

    def where(frame: int) -> tuple[str, int]:
        i = max(0, bisect_right(starts, frame) - 1)
        return paths[i], frame - starts[i] + 1

    def one(d: dict[str, Any], key: str, file_key: str) -> None:
        v = d.get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            d[file_key], d[key] = where(v)

    def localise(conv: dict[str, Any]) -> dict[str, Any]:
        evidence = [f["frame"] for f in conv.get("findings", ()) if f.get("frame")]
        if conv.get("evidence_frame"):
            evidence.append(conv["evidence_frame"])
        conv["file"], conv["first_frame"] = where(conv["first_frame"])
        one(conv, "evidence_frame", "evidence_file")
        for key in ("greeting", "starttls", "fallback_of"):
            if isinstance(conv.get(key), dict):
                one(conv[key], "frame", "file")
        ehlo = conv.get("ehlo_reply")
        if isinstance(ehlo, dict) and ehlo.get("frames"):
            located = [where(f) for f in ehlo["frames"]]
            ehlo["frames"] = [n for _, n in located]
            ehlo["files"] = [p for p, _ in located]
        tls = conv.get("tls")
        if isinstance(tls, dict):
            one(tls, "client_hello_frame", "client_hello_file")
            one(tls, "server_hello_frame", "server_hello_file")
            if isinstance(tls.get("alert"), dict):
                one(tls["alert"], "frame", "file")
        for f in conv.get("findings", ()):
            one(f, "frame", "file")
            if f.get("frame"):
                f["wireshark_filter"] = f"frame.number == {f['frame']}"
        if evidence:
            # one display filter opens in one file: the evidence frames in the file of the
            # deciding frame (or of the first finding)
            home = where(evidence[-1] if conv.get("evidence_frame") else evidence[0])[0]
            conv["evidence_filter"] = frames_filter(
                n for p, n in (where(f) for f in evidence) if p == home)
        for ex in conv.get("_exchange") or ():      # explain's and the report's lines
            if ex.frame:
                ex.file, ex.frame = where(ex.frame)
        return conv

    return localise
