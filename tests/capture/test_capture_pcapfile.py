"""pcapsmtp.capture.pcapfile: the streaming pcap/pcapng reader.

- every capture of the public corpus against scapy's raw readers (record count, bytes,
  timestamps, wire length, link type);
- synthetic files for every format variant;
- every broken-file case, with the exact message and offset, after the good records.
"""
from __future__ import annotations

import gzip
import io
import os
import struct
from pathlib import Path

import pytest

from capture_synth import (CORPUS, corpus_files, epb, idb, option, pb, pcap_file, pcap_header,
                           pcap_record, shb, spb, block)
from pcapsmtp.capture.base import RawFrame
from pcapsmtp.capture.pcapfile import iter_records, open_frames
from pcapsmtp.errors import CaptureError

FILES = corpus_files()
CORRUPT = "tests__smtp-to-comma__10.7.29.101_49898-178.63.41.150_25.pcap"

#: Files where scapy's reader legitimately differs from ours: name -> (our frame count, why).
SCAPY_DIFFERS = {
    CORRUPT: (18, "scapy yields a 19th record cut from the bogus 3925868813-byte header; "
                  "Wireshark and we stop after 18"),
}


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def _frames(path: str, **kw: object) -> list[RawFrame]:
    return list(open_frames(path, **kw))  # type: ignore[arg-type]


def _frames_until_error(path: str, **kw: object) -> tuple[list[RawFrame], CaptureError]:
    got: list[RawFrame] = []
    with pytest.raises(CaptureError) as ei:
        for f in open_frames(path, **kw):  # type: ignore[arg-type]
            got.append(f)
    return got, ei.value


# ----------------------------------------------------------------------------- corpus

def _scapy_records(path: Path) -> list[tuple[bytes, int, int, int]]:
    """(data, ts_ns, wirelen, linktype) per record, from scapy's raw readers."""
    from scapy.utils import RawPcapNgReader, RawPcapReader
    out = []
    last_ts = 0
    reader = RawPcapReader(str(path))   # dispatches to RawPcapNgReader on pcapng magic
    try:
        for data, meta in reader:
            if isinstance(reader, RawPcapNgReader):
                if meta.tshigh is None:   # SPB: no timestamp; we repeat the previous one
                    ts = last_ts
                else:
                    ts = (((meta.tshigh << 32) | meta.tslow) * 1_000_000_000) // meta.tsresol
                last_ts = ts
                out.append((data, ts, meta.wirelen, meta.linktype))
            else:
                mult = 1 if reader.nano else 1000
                out.append((data, meta.sec * 1_000_000_000 + meta.usec * mult, meta.wirelen,
                            reader.linktype))
    finally:
        reader.close()
    return out


def test_corpus_is_present() -> None:
    assert len(FILES) >= 120, "expected the ~131 captures of the public corpus"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_reader_matches_scapy(path: Path) -> None:
    expected = _scapy_records(path)
    if path.name in SCAPY_DIFFERS:
        count, _why = SCAPY_DIFFERS[path.name]
        got, err = _frames_until_error(str(path))
        assert len(got) == count
        expected = expected[:count]
        assert err.offset is not None
    else:
        got = _frames(str(path))
    assert len(got) == len(expected)
    for n, (frame, (data, ts, wirelen, lt)) in enumerate(zip(got, expected), 1):
        assert frame.number == n
        assert frame.data == data, f"frame {n} bytes differ"
        assert frame.ts_ns == ts, f"frame {n} timestamp differs"
        assert frame.wirelen == wirelen
        assert frame.linktype == lt


def test_corrupt_corpus_file_yields_18_frames_then_error() -> None:
    got, err = _frames_until_error(str(CORPUS / "OISF__suricata-verify" / CORRUPT))
    assert [f.number for f in got] == list(range(1, 19))
    assert err.offset == 3695
    assert err.message == ("packet 19: record header says 3925868813 captured bytes, more than "
                           "the maximum of 262144 (corrupt file)")


# ----------------------------------------------------------------------------- synthetic

PKTS = [(bytes(range(60)), 1_600_000_000, 1), (b"\xab" * 100, 1_600_000_001, 999_999),
        (b"", 1_600_000_002, 0), (b"z" * 1514, 1_600_000_003, 500)]


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_variants(tmp_path: Path, endian: str, nano: bool) -> None:
    path = _write(tmp_path, "a.pcap", pcap_file(PKTS, endian=endian, nano=nano, linktype=113))
    got = _frames(path)
    assert [f.data for f in got] == [p[0] for p in PKTS]
    mult = 1 if nano else 1000
    assert [f.ts_ns for f in got] == [s * 1_000_000_000 + fr * mult for _, s, fr in PKTS]
    assert [f.number for f in got] == [1, 2, 3, 4]
    assert {f.linktype for f in got} == {113}
    offsets = [24]
    for d, _s, _f in PKTS[:-1]:
        offsets.append(offsets[-1] + 16 + len(d))
    assert [f.offset for f in got] == offsets


def test_pcap_fcs_bits_in_linktype_are_masked(tmp_path: Path) -> None:
    path = _write(tmp_path, "fcs.pcap", pcap_file(PKTS[:1], linktype=0x14000001))
    assert _frames(path)[0].linktype == 1


def test_empty_pcap_has_no_frames(tmp_path: Path) -> None:
    assert _frames(_write(tmp_path, "e.pcap", pcap_header())) == []


def test_caplen_above_snaplen_is_accepted_like_wireshark(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.pcap", pcap_file(PKTS, snaplen=64))
    assert [len(f.data) for f in _frames(path)] == [60, 100, 0, 1514]


def test_large_records_across_chunk_boundaries(tmp_path: Path) -> None:
    pkts = [(bytes([i % 251]) * (i * 997 % 60000), 1, i) for i in range(100)]
    path = _write(tmp_path, "big.pcap", pcap_file(pkts))
    got = _frames(path)
    assert [f.data for f in got] == [p[0] for p in pkts]


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_two_interfaces_tsresol_tsoffset(tmp_path: Path, endian: str) -> None:
    data = (shb(endian=endian)
            + idb(1, tsresol=6, endian=endian)                       # microseconds
            + idb(101, tsresol=9, tsoffset=100, endian=endian)       # ns, +100 s
            + idb(113, tsresol=0x80 | 20, endian=endian)             # 2^-20 s
            + idb(276, tsresol=12, endian=endian)                    # picoseconds
            + idb(0, endian=endian)                                  # default: microseconds
            + epb(0, 1_600_000_000_123_456, b"A" * 61, endian=endian)
            + block(4, b"\x00" * 8, endian=endian)                   # NRB: skipped
            + epb(1, 5_000_000_007, b"B" * 40, wirelen=1500, endian=endian)
            + block(5, b"\x00" * 12, endian=endian)                  # ISB: skipped
            + epb(2, 3 << 20 | 1 << 19, b"C" * 3, endian=endian)
            + block(0x40000BAD, b"custom", endian=endian)            # custom: a frame, no packet
            + epb(3, 7_000_000_000_123_999, b"D", endian=endian)
            + epb(4, 42, b"E", endian=endian,
                  options=option(1, b"a comment", endian=endian) + b"\x00" * 4))
    path = _write(tmp_path, "a.pcapng", data)
    got = _frames(path)
    # Wireshark 4.0 numbers a custom block as a frame (frame 4 here): so do we.
    custom = got.pop(3)
    assert (custom.number, custom.linktype, custom.data) == (4, -1, b"")
    assert [f.number for f in got] == [1, 2, 3, 5, 6]
    assert [f.linktype for f in got] == [1, 101, 113, 276, 0]
    assert [f.interface for f in got] == [0, 1, 2, 3, 4]
    assert [f.data for f in got] == [b"A" * 61, b"B" * 40, b"C" * 3, b"D", b"E"]
    assert [f.wirelen for f in got] == [61, 1500, 3, 1, 1]
    assert [f.ts_ns for f in got] == [1_600_000_000_123_456_000, 105_000_000_007,
                                      3_500_000_000, 7_000_000_000_123, 42_000]
    # offsets: SHB 28, five IDBs; the first EPB follows them
    assert got[0].offset == len(shb() + idb(1, tsresol=6) + idb(101, tsresol=9, tsoffset=100)
                                + idb(113, tsresol=0x80 | 20) + idb(276, tsresol=12) + idb(0))


def test_pcapng_several_sections_of_both_byte_orders(tmp_path: Path) -> None:
    data = (shb(endian="<") + idb(1) + epb(0, 1, b"one")
            + shb(endian=">") + idb(101, tsresol=9, endian=">") + epb(0, 2, b"two", endian=">")
            + shb(endian="<") + idb(113) + idb(1) + epb(1, 3, b"three"))
    got = _frames(_write(tmp_path, "s.pcapng", data))
    assert [(f.number, f.linktype, f.ts_ns, f.data) for f in got] == [
        (1, 1, 1000, b"one"), (2, 101, 2, b"two"), (3, 1, 3000, b"three")]


def test_pcapng_spb_pb_and_numbering(tmp_path: Path) -> None:
    data = (shb() + idb(1, snaplen=8) + epb(0, 5_000_000, b"first")
            + spb(b"0123456789AB", wirelen=100)        # caplen = min(100, snaplen 8)
            + spb(b"xy")                                # caplen = min(2, 8)
            + pb(0, 7_000_000, b"old-style"))
    got = _frames(_write(tmp_path, "spb.pcapng", data))
    assert [(f.number, f.data, f.wirelen, f.ts_ns) for f in got] == [
        (1, b"first", 5, 5_000_000_000), (2, b"01234567", 100, 5_000_000_000),
        (3, b"xy", 2, 5_000_000_000), (4, b"old-style", 9, 7_000_000_000)]


def test_spb_without_snaplen_is_bounded_by_its_block(tmp_path: Path) -> None:
    data = shb() + idb(1) + spb(b"abcd", wirelen=1000)
    got = _frames(_write(tmp_path, "spb0.pcapng", data))
    assert got[0].data == b"abcd" and got[0].ts_ns == 0 and got[0].wirelen == 1000


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_gzip_file_and_stdin(tmp_path: Path, kind: str) -> None:
    raw = pcap_file(PKTS) if kind == "pcap" else shb() + idb(1) + b"".join(
        epb(0, i, d) for i, (d, _s, _f) in enumerate(PKTS))
    plain = _frames(_write(tmp_path, "p", raw))
    gz = gzip.compress(raw)
    for frames in (_frames(_write(tmp_path, "p.gz", gz)),
                   _frames("-", stdin=io.BytesIO(gz)),
                   _frames("-", stdin=io.BytesIO(raw))):
        assert [(f.number, f.data, f.ts_ns, f.offset) for f in frames] == \
               [(f.number, f.data, f.ts_ns, f.offset) for f in plain]


def test_gzip_multi_member_and_zero_padding(tmp_path: Path) -> None:
    raw = pcap_file(PKTS)
    gz = gzip.compress(raw[:100]) + gzip.compress(raw[100:]) + b"\x00" * 1024
    assert [f.data for f in _frames(_write(tmp_path, "m.gz", gz))] == [p[0] for p in PKTS]


class _Trickle(io.RawIOBase):
    """A pipe that hands out at most 7 bytes per read and counts how much was read."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = min(7, len(b), len(self._data) - self.pos)
        b[:n] = self._data[self.pos:self.pos + n]
        self.pos += n
        return n


def test_stdin_streams_without_reading_everything_first() -> None:
    pkts = [(b"p" * 100, 1, i) for i in range(20000)]
    src = _Trickle(pcap_file(pkts))
    it = open_frames("-", stdin=src)  # type: ignore[arg-type]
    first = next(it)
    assert first.number == 1 and first.data == b"p" * 100
    assert src.pos < len(src._data) // 10, "the reader consumed the whole input before yielding"
    assert sum(1 for _ in it) == 19999


def test_records_and_frames_agree(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.pcap", pcap_file(PKTS))
    assert [RawFrame(*r).__repr__() for r in iter_records(path)] == \
           [f.__repr__() for f in open_frames(path)]


# ----------------------------------------------------------------------------- broken files

GOOD = pcap_file(PKTS[:2])           # 24 + 76 + 116 = 216 bytes
GOOD_NG = shb() + idb(1) + epb(0, 1, b"x" * 10) + epb(0, 2, b"y" * 10)


def _case(tmp_path: Path, data: bytes) -> tuple[list[RawFrame], CaptureError]:
    return _frames_until_error(_write(tmp_path, "broken", data))


def test_empty_file(tmp_path: Path) -> None:
    got, err = _case(tmp_path, b"")
    assert (got, err.offset, err.message) == ([], 0, "empty file: no capture header")
    assert str(err).endswith("broken: at byte offset 0: empty file: no capture header")


def test_unknown_magic(tmp_path: Path) -> None:
    got, err = _case(tmp_path, b"DPI \x00\x01" * 10)
    assert err.offset == 0
    assert err.message == "not a pcap or pcapng file: it starts with bytes 44 50 49 20 ('DPI ')"


def test_too_short_for_magic(tmp_path: Path) -> None:
    got, err = _case(tmp_path, b"\xd4\xc3")
    assert err.message == "file too short for a capture header (2 bytes)"


def test_truncated_pcap_header(tmp_path: Path) -> None:
    got, err = _case(tmp_path, GOOD[:20])
    assert (err.offset, err.message) == (0, "truncated pcap file header (20 of 24 bytes)")


def test_truncated_shb(tmp_path: Path) -> None:
    got, err = _case(tmp_path, shb()[:10])
    assert (err.offset, err.message) == (0, "truncated pcapng section header block "
                                            "(10 of at least 28 bytes)")
    got, err = _case(tmp_path, shb()[:20])
    assert (err.offset, err.message) == (0, "capture ends in the middle of a section header "
                                            "block (block length says 28 bytes, 20 present)")


def test_bad_byte_order_magic(tmp_path: Path) -> None:
    got, err = _case(tmp_path, shb()[:8] + b"\x01\x02\x03\x04" + shb()[12:])
    assert (err.offset, err.message) == (0, "pcapng section header block has a bad byte-order "
                                            "magic 01 02 03 04")


def test_pcap_record_cut_mid_packet(tmp_path: Path) -> None:
    got, err = _case(tmp_path, GOOD + pcap_record(b"q" * 200, 5, 5)[:16 + 50])
    assert [f.number for f in got] == [1, 2]
    assert (err.offset, err.message) == (216, "capture ends in the middle of packet 3 (record "
                                              "header says 200 bytes, 50 present)")


def test_pcap_record_header_cut(tmp_path: Path) -> None:
    got, err = _case(tmp_path, GOOD + b"\x01" * 9)
    assert len(got) == 2
    assert (err.offset, err.message) == (216, "capture ends in the middle of the header of "
                                              "packet 3 (9 of 16 bytes present)")


def test_pcap_absurd_caplen(tmp_path: Path) -> None:
    got, err = _case(tmp_path, GOOD + pcap_record(b"", 1, 1, caplen=262145) + b"\x00" * 300000)
    assert len(got) == 2
    assert (err.offset, err.message) == (216, "packet 3: record header says 262145 captured "
                                              "bytes, more than the maximum of 262144 (corrupt "
                                              "file)")


def _bad_len_block(n_lead: int, n_trail: int, body: bytes) -> bytes:
    return struct.pack("<II", 6, n_lead) + body + struct.pack("<I", n_trail)


@pytest.mark.parametrize("blob,message", [
    (_bad_len_block(30, 30, b"\x00" * 18),
     "pcapng block of type 0x6 has an invalid length 30 (not a multiple of 4)"),
    (_bad_len_block(8, 8, b""), "pcapng block of type 0x6 has an invalid length 8 (less than 12)"),
    (_bad_len_block(36, 40, b"\x00" * 24),
     "pcapng block of type 0x6: trailing length 40 differs from leading length 36"),
    (_bad_len_block(0x7FFFFFFC, 0, b""),
     "pcapng block of type 0x6 claims 2147483644 bytes, more than the maximum of 16777216 "
     "(corrupt file)"),
    (epb(0, 3, b"z" * 100)[:60],
     "capture ends in the middle of packet 3 (block length says 132 bytes, 60 present)"),
    (idb(1, tsresol=9)[:20],
     "capture ends in the middle of an interface description block (block length says 32 "
     "bytes, 20 present)"),
    (epb(5, 3, b"z"), "packet 3 refers to interface 5, but 1 interface(s) are defined in this "
                      "section"),
    (b"\x06\x00\x00", "capture ends in the middle of a block header (3 of 8 bytes present)"),
    (struct.pack("<IIIIIII", 6, 36, 0, 0, 0, 100, 100) + b"\x00" * 4 + struct.pack("<I", 36),
     "packet 3: captured length 100 does not fit in its 36-byte block"),
], ids=["len-not-multiple-of-4", "len-below-12", "trailing-len-differs", "absurd-len",
        "epb-cut", "idb-cut", "undefined-interface", "block-header-cut", "caplen-beyond-block"])
def test_pcapng_damage(tmp_path: Path, blob: bytes, message: str) -> None:
    got, err = _case(tmp_path, GOOD_NG + blob)
    assert [f.data for f in got] == [b"x" * 10, b"y" * 10]
    assert (err.offset, err.message) == (len(GOOD_NG), message)


def test_epb_before_any_idb(tmp_path: Path) -> None:
    got, err = _case(tmp_path, shb() + epb(0, 1, b"x"))
    assert (got, err.offset) == ([], 28)
    assert err.message == ("packet 1 refers to interface 0, but 0 interface(s) are defined in "
                           "this section")


def test_new_section_forgets_interfaces(tmp_path: Path) -> None:
    got, err = _case(tmp_path, GOOD_NG + shb() + epb(0, 1, b"x"))
    assert len(got) == 2 and "0 interface(s)" in err.message


def test_truncated_gzip(tmp_path: Path) -> None:
    gz = gzip.compress(pcap_file([(b"a" * 5000, 1, 1)] * 50))
    got, err = _case(tmp_path, gz[: len(gz) // 2])
    assert err.message.startswith("broken gzip data: compressed stream ends before its end "
                                  "marker (after ")
    assert err.offset is not None and err.offset > 0
    assert len(got) < 50
    assert err.message.endswith(f"(after {err.offset} decompressed bytes)")


def test_corrupt_gzip(tmp_path: Path) -> None:
    gz = bytearray(gzip.compress(pcap_file([(bytes(range(256)) * 20, 1, 1)] * 50)))
    gz[len(gz) // 2: len(gz) // 2 + 40] = b"\xff" * 40
    got, err = _case(tmp_path, bytes(gz))
    assert err.message.startswith("broken gzip data: Error -3 while decompressing data")
    assert "\n" not in err.message


def test_gzip_from_stdin_truncated() -> None:
    gz = gzip.compress(GOOD)
    with pytest.raises(CaptureError) as ei:
        list(open_frames("-", stdin=io.BytesIO(gz[:-6])))
    assert ei.value.path == "-"
    assert ei.value.message.startswith("broken gzip data: compressed stream ends")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as ei:
        list(open_frames(str(tmp_path / "nope.pcap")))
    assert (ei.value.offset, ei.value.message) == (None, "no such file")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as ei:
        list(open_frames(str(tmp_path)))
    assert ei.value.message == "is a directory, not a capture file"


def test_unreadable_file(tmp_path: Path) -> None:
    p = tmp_path / "secret.pcap"
    p.write_bytes(GOOD)
    p.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(CaptureError) as ei:
            list(open_frames(str(p)))
        assert ei.value.message == "permission denied"
        return
    # root reads any file: check in a process without the capabilities that allow it (as CI
    # runs as root; capsh comes with libcap2-bin, which tests/run.sh installs)
    import shutil
    import subprocess
    import sys
    capsh = shutil.which("capsh")
    assert capsh, "capsh (libcap2-bin) is needed to test an unreadable file as root"
    code = ("import sys\nfrom pcapsmtp.capture.pcapfile import open_frames\n"
            "from pcapsmtp.errors import CaptureError\n"
            "try:\n    list(open_frames(sys.argv[1]))\nexcept CaptureError as e:\n"
            "    print(e.message)\n")
    r = subprocess.run([capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c",
                        'exec "$@"', "sh", sys.executable, "-c", code, str(p)],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "permission denied", r.stdout + r.stderr


def test_read_error_midway_is_converted() -> None:
    class Failing(io.RawIOBase):
        def __init__(self) -> None:
            self.sent = False

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            if self.sent:
                raise OSError(5, "Input/output error")
            self.sent = True
            b[:len(GOOD)] = GOOD
            return len(GOOD)

    got: list[RawFrame] = []
    with pytest.raises(CaptureError) as ei:
        for f in open_frames("-", stdin=Failing()):  # type: ignore[arg-type]
            got.append(f)
    assert len(got) == 2
    assert ei.value.message == "cannot read: Input/output error"
