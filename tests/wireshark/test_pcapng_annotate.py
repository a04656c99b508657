"""``pcapsmtp annotate``: write_annotated checked with real tshark, and comments built from
JSON-contract conversations."""
from __future__ import annotations

import gzip
import json
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from pcapsmtp.errors import CaptureError, UsageError
from pcapsmtp.render.pcapng import comments_from_conversations, escape_comment, write_annotated

from ws_support import (ng_block, ng_epb, ng_idb, ng_option, ng_shb, ng_spb, needs_tshark,
                        pcap_bytes, tshark)

T0 = 1_700_000_000_123_456_789       # ns; not a whole microsecond, on purpose


def _frames() -> list[bytes]:
    """Ethernet frames of a short SMTP exchange (and one ARP, not TCP)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import ARP, Ether

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    c, s = "192.0.2.10", "198.51.100.25"
    return [bytes(p) for p in (
        eth / IP(src=c, dst=s) / TCP(sport=40312, dport=25, seq=100, flags="S"),
        eth / IP(src=s, dst=c) / TCP(sport=25, dport=40312, seq=900, ack=101, flags="SA"),
        eth / IP(src=c, dst=s) / TCP(sport=40312, dport=25, seq=101, ack=901, flags="A"),
        Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=c, pdst=s),
        eth / IP(src=s, dst=c) / TCP(sport=25, dport=40312, seq=901, ack=101, flags="PA")
        / b"220 mail.domain1.com ESMTP Service ready\r\n",
        eth / IP(src=c, dst=s) / TCP(sport=40312, dport=25, seq=101, ack=943, flags="PA")
        / b"EHLO esa.example.com\r\n",
        eth / IP(src=s, dst=c) / TCP(sport=25, dport=40312, seq=943, ack=123, flags="PA")
        / b"250-STARTTLS\r\n250-mail.domain1.com\r\n250 8BITMIME\r\n",
    )]


def _raw_ip(frame: bytes) -> bytes:
    return frame[14:]


def _comments_by_frame(path: Path) -> dict[int, list[str]]:
    out = json.loads(tshark("-r", str(path), "-T", "json", "-e", "frame.number",
                            "-e", "frame.comment") or "[]")
    got: dict[int, list[str]] = {}
    for pkt in out:
        layers = pkt["_source"]["layers"]
        if "frame.comment" in layers:
            got[int(layers["frame.number"][0])] = list(layers["frame.comment"])
    return got


_FIELDS = ("frame.number", "frame.time_epoch", "frame.len", "frame.cap_len", "frame.interface_id",
           "frame.encap_type", "frame.protocols")


def _fields(path: Path) -> list[list[str]]:
    text = tshark("-r", str(path), "-T", "fields", *[a for f in _FIELDS for a in ("-e", f)])
    return [line.split("\t") for line in text.splitlines()]


def _hexdump(path: Path) -> str:
    return tshark("-r", str(path), "-x")


def _check_round_trip(inp: Path, out: Path, comments: Mapping[int, Sequence[str]],
                      existing: Mapping[int, Sequence[str]] = {},
                      spb_converted: Sequence[int] = ()) -> None:
    """OUT shows exactly the comments (after any existing ones) on exactly the frames, the
    filter finds exactly them, and every other field and byte is as in IN."""
    n_frames = len(_fields(inp))
    expected = {f: list(existing.get(f, [])) + [escape_comment(t) for t in comments.get(f, [])]
                for f in set(existing) | set(comments) if f <= n_frames}
    expected = {f: v for f, v in expected.items() if v}
    assert _comments_by_frame(out) == expected
    listed = tshark("-r", str(out), "-Y", 'frame.comment contains "pcapsmtp"',
                    "-T", "fields", "-e", "frame.number").split()
    assert [int(x) for x in listed] == sorted(f for f in comments if f <= n_frames
                                              and any("pcapsmtp" in t for t in comments[f]))
    before, after = _fields(inp), _fields(out)
    assert len(before) == len(after) == n_frames
    iface = _FIELDS.index("frame.interface_id")
    for b, a in zip(before, after):
        if b[iface] == "" and inp.suffix != ".pcapng":
            b = b[:iface] + ["0"] + b[iface + 1:]        # pcap has no interfaces; pcapng has 0
        if int(b[0]) in spb_converted:
            assert b[1] == "" and a[1] != ""      # an SPB has no time; the EPB gets one
            b, a = b[:1] + b[2:], a[:1] + a[2:]
        assert b == a
    if not spb_converted:
        assert _hexdump(inp) == _hexdump(out)


# ----------------------------------------------------------------------------- pcap input

COMMENTS = {
    5: ["pcapsmtp: banner seen"],
    7: ["pcapsmtp: starttls-misplaced (server): first EHLO reply line carries STARTTLS where "
        "the server's domain belongs [RFC 5321 4.1.1.1]",
        "pcapsmtp: second comment, with a comma | and a bar"],
    99: ["pcapsmtp: no such frame, ignored"],
}


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_input(tmp_path: Path, endian: str, nano: bool) -> None:
    frames = _frames()
    recs = [(T0 + i * 1_000_001_001, f, len(f) + 4 * (i == 2)) for i, f in enumerate(frames)]
    inp = tmp_path / "in.pcap"
    inp.write_bytes(pcap_bytes(recs, endian=endian, nano=nano, snaplen=65535))
    out = tmp_path / "out.pcapng"
    assert write_annotated(str(inp), str(out), COMMENTS) == 2
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    _check_round_trip(inp, out, COMMENTS)
    times = [r[1] for r in _fields(out)]
    assert times[0] == ("1700000000.123456789" if nano else "1700000000.123456000")


@needs_tshark
@pytest.mark.tshark
def test_gzip_pcap_input_is_read_decompressed(tmp_path: Path) -> None:
    frames = _frames()
    data = pcap_bytes([(T0 + i, f, len(f)) for i, f in enumerate(frames)], nano=True)
    plain, gz = tmp_path / "in.pcap", tmp_path / "in.pcap.gz"
    plain.write_bytes(data)
    gz.write_bytes(gzip.compress(data))
    out1, out2 = tmp_path / "a.pcapng", tmp_path / "b.pcapng"
    assert write_annotated(str(plain), str(out1), COMMENTS) == 2
    assert write_annotated(str(gz), str(out2), COMMENTS) == 2
    assert out1.read_bytes() == out2.read_bytes()
    _check_round_trip(plain, out2, COMMENTS)


# ----------------------------------------------------------------------------- pcapng input


def _nrb(e: str) -> bytes:
    return ng_block(e, 4, ng_option(e, 1, b"\xc0\x00\x02\x0amx.example\0") + b"\0" * 4)


def _custom(e: str) -> bytes:
    return ng_block(e, 0x00000BAD, struct.pack(e + "I", 32473) + b"opaque data!")


def _pcapng(e: str, *, section_length: bool = False, second_section: bool = False) -> bytes:
    """Two interfaces (Ethernet, microseconds; raw IPv4, nanoseconds with an offset), an
    existing comment, a name resolution block, a custom block and two SPBs."""
    fr = _frames()
    blocks = [
        ng_idb(e, 1, 0),
        ng_idb(e, 101, 65535, tsresol=9, options=ng_option(e, 14, struct.pack(e + "q", 10))),
        ng_epb(e, 0, T0 // 1000, fr[0]),                                          # 1
        ng_epb(e, 1, T0 - 10_000_000_000 + 7, _raw_ip(fr[1])),                    # 2
        _nrb(e),                                                                   # not a frame
        ng_epb(e, 0, T0 // 1000 + 2, fr[2],
               options=ng_option(e, 1, b"captured by hand") + ng_option(e, 0, b"")),  # 3
        ng_spb(e, fr[3]),                                                          # 4
        _custom(e),                                             # 5: Wireshark shows it as a frame
        ng_epb(e, 1, T0 - 10_000_000_000 + 9, _raw_ip(fr[4]),
               options=ng_option(e, 2, struct.pack(e + "I", 1))),               # 6, flags, no end
        ng_spb(e, fr[5]),                                                          # 7
        ng_epb(e, 0, T0 // 1000 + 5, fr[6], wirelen=len(fr[6]) + 100),           # 8
    ]
    body = b"".join(blocks)
    shb = ng_shb(e, ng_option(e, 4, b"hand-made") + ng_option(e, 0, b""),
                 len(body) if section_length else -1)
    data = shb + body
    if second_section:
        o = ">" if e == "<" else "<"
        data += (ng_shb(o) + ng_idb(o, 1, 0, tsresol=9)
                 + ng_epb(o, 0, T0 + 5_000_000_000, fr[4])                       # 9
                 + ng_epb(o, 0, T0 + 6_000_000_000, fr[6]))                      # 10
    return data


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_input(tmp_path: Path, endian: str) -> None:
    inp = tmp_path / "in.pcapng"
    inp.write_bytes(_pcapng(endian, second_section=True))
    comments = {2: ["pcapsmtp: on the raw-IP interface"], 3: ["pcapsmtp: after an old one"],
                5: ["pcapsmtp: a custom block cannot take it"],
                6: ["pcapsmtp: keeps its flags option"], 8: ["pcapsmtp: cut frame"],
                10: ["pcapsmtp: other section, other byte order"]}
    out = tmp_path / "out.pcapng"
    assert write_annotated(str(inp), str(out), comments) == 5
    _check_round_trip(inp, out, {k: v for k, v in comments.items() if k != 5},
                      existing={3: ["captured by hand"]})
    # the NRB, the custom block and every uncommented packet block are there byte for byte
    data = out.read_bytes()
    assert _nrb(endian) in data and _custom(endian) in data
    assert data.startswith(_pcapng(endian)[:120])     # SHB and both IDBs as they were
    flags = tshark("-r", str(out), "-Y", "frame.number == 6", "-T", "fields",
                   "-e", "frame.interface_id", "-e", "frame.len")
    assert flags.split() == ["1", str(len(_frames()[4]) - 14)]


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_spb_gets_previous_time(tmp_path: Path, endian: str) -> None:
    inp = tmp_path / "in.pcapng"
    inp.write_bytes(_pcapng(endian))
    comments = {4: ["pcapsmtp: was a simple packet block"], 7: ["pcapsmtp: also"]}
    out = tmp_path / "out.pcapng"
    assert write_annotated(str(inp), str(out), comments) == 2
    _check_round_trip(inp, out, comments, existing={3: ["captured by hand"]},
                      spb_converted=(4, 7))
    times = {int(r[0]): r[1] for r in _fields(out)}
    assert times[4] == times[3]
    # frame 5, a custom block, has no time; frame 6 is on the nanosecond interface and SPBs
    # belong to interface 0 (microseconds): its time, cut to the microsecond
    assert times[6] == "1700000000.123456798" and times[7] == "1700000000.123456000"
    # the bytes of the converted frames are the SPBs' bytes
    for n in (4, 7):
        got = tshark("-r", str(out), "-Y", f"frame.number == {n}", "-T", "fields", "-e", "eth.src")
        assert got.strip() == "02:00:00:00:00:01"


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_without_comments_is_byte_identical(tmp_path: Path, endian: str) -> None:
    for section_length in (False, True):
        data = _pcapng(endian, section_length=section_length, second_section=True)
        inp, out = tmp_path / "in.pcapng", tmp_path / "out.pcapng"
        inp.write_bytes(data)
        assert write_annotated(str(inp), str(out), {}) == 0
        assert out.read_bytes() == data


@needs_tshark
@pytest.mark.tshark
def test_section_length_is_updated(tmp_path: Path) -> None:
    data = _pcapng("<", section_length=True)
    inp, out = tmp_path / "in.pcapng", tmp_path / "out.pcapng"
    inp.write_bytes(data)
    assert write_annotated(str(inp), str(out), {1: ["pcapsmtp: x"]}) == 1
    got = out.read_bytes()
    shb_len = struct.unpack_from("<I", got, 4)[0]
    assert struct.unpack_from("<q", got, 16)[0] == len(got) - shb_len
    assert _comments_by_frame(out) == {1: ["pcapsmtp: x"], 3: ["captured by hand"]}


# ----------------------------------------------------------------------------- text


@needs_tshark
@pytest.mark.tshark
def test_control_characters_escaped_and_utf8_kept(tmp_path: Path) -> None:
    fr = _frames()
    inp, out = tmp_path / "in.pcap", tmp_path / "out.pcapng"
    inp.write_bytes(pcap_bytes([(T0, f, len(f)) for f in fr]))
    text = "pcapsmtp: banner \"220 mx\r\n\x00\x1b[31m\x7f\x85\" \u00e9\u00df\u4e2d"
    assert write_annotated(str(inp), str(out), {1: [text]}) == 1
    shown = _comments_by_frame(out)[1][0]
    assert shown == "pcapsmtp: banner \"220 mx\\r\\n\\x00\\x1b[31m\\x7f\\x85\" \u00e9\u00df\u4e2d"
    assert not any(ord(c) < 0x20 for c in shown)


def test_escape_comment() -> None:
    assert escape_comment("a\tb\nc\x01\x9f\u00e9") == "a\\tb\\nc\\x01\\x9f\u00e9"
    assert escape_comment("\udcff") == "\\xff"
    assert escape_comment(escape_comment("x\r\n")) == "x\\r\\n"


def test_comments_from_conversations() -> None:
    conv = {
        "client": {"ip": "192.0.2.10", "port": 40312},
        "server": {"ip": "198.51.100.25", "port": 25},
        "outcome": "plaintext", "caused_by": "server", "reason": "starttls-misplaced",
        "evidence_frame": 8, "detail": "the server offered STARTTLS only in the domain slot",
        "findings": [
            {"code": "ehlo-keyword-as-domain", "side": "server", "frame": 8,
             "rfc": "RFC 5321 4.1.1.1",
             "message": "first EHLO reply line carries STARTTLS where the server's domain belongs"},
            {"code": "tcp-gap", "side": "capture", "frame": 3, "rfc": None,
             "message": "12 bytes\r\nmissing"},
            {"code": "midstream", "side": "capture", "frame": None, "message": "no frame"},
        ],
    }
    other = {"findings": [{"code": "tcp-gap", "side": "capture", "frame": 3, "rfc": None,
                           "message": "12 bytes\r\nmissing"}]}   # same text again: once
    got = comments_from_conversations([conv, other, {"findings": []}])
    assert list(got) == [3, 8]
    assert got[3] == ["pcapsmtp: tcp-gap (capture): 12 bytes\\r\\nmissing"]
    assert got[8] == [
        "pcapsmtp: ehlo-keyword-as-domain (server): first EHLO reply line carries STARTTLS "
        "where the server's domain belongs [RFC 5321 4.1.1.1]",
        "pcapsmtp: verdict starttls-misplaced (server): outcome plaintext, "
        "192.0.2.10:40312 -> 198.51.100.25:25: the server offered STARTTLS only in the domain slot",
    ]
    assert all(t.startswith("pcapsmtp: ") for ts in got.values() for t in ts)
    assert comments_from_conversations([{k: v for k, v in conv.items()
                                         if k != "evidence_frame"}])[8] == got[8][:1]


# ----------------------------------------------------------------------------- refusals


def test_refuses_to_overwrite_input(tmp_path: Path) -> None:
    fr = _frames()
    inp = tmp_path / "in.pcap"
    data = pcap_bytes([(T0, f, len(f)) for f in fr])
    inp.write_bytes(data)
    link = tmp_path / "link.pcap"
    link.symlink_to(inp)
    for target in (str(inp), str(tmp_path / "." / "in.pcap"), str(link)):
        with pytest.raises(UsageError):
            write_annotated(str(inp), target, {1: ["pcapsmtp: x"]})
    os.link(inp, tmp_path / "hard.pcap")
    with pytest.raises(UsageError):
        write_annotated(str(tmp_path / "hard.pcap"), str(inp), {1: ["pcapsmtp: x"]})
    assert inp.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.pcap", "in.pcap", "link.pcap"]


@pytest.mark.parametrize("damage", ["cut-record", "cut-header", "huge-record", "not-capture",
                                    "ng-bad-trailer", "ng-cut", "ng-bad-option", "gzip-cut",
                                    "empty"])
def test_damaged_input_leaves_no_output(tmp_path: Path, damage: str) -> None:
    fr = _frames()
    good = pcap_bytes([(T0, f, len(f)) for f in fr])
    ng = _pcapng("<")
    data = {
        "cut-record": good[:-10],
        "cut-header": good[:-len(fr[-1]) - 5],
        "huge-record": good + struct.pack("<IIII", 1, 0, 10_000_000, 10_000_000),
        "not-capture": b"GIF89a" + b"\0" * 40,
        "ng-bad-trailer": ng[:-4] + b"\xff\xff\xff\xff",
        "ng-cut": ng[:-30],
        "ng-bad-option": ng + ng_epb("<", 0, 1, fr[0], options=struct.pack("<HH", 1, 200)
                                     + b"abcd"),
        "gzip-cut": gzip.compress(good)[:-20],
        "empty": b"",
    }[damage]
    inp = tmp_path / "in.pcap"
    inp.write_bytes(data)
    out = tmp_path / "out.pcapng"
    comments = {n: ["pcapsmtp: x"] for n in range(1, 10)}
    with pytest.raises(CaptureError) as info:
        write_annotated(str(inp), str(out), comments)
    assert info.value.path == str(inp)
    assert [p.name for p in tmp_path.iterdir()] == ["in.pcap"]
    # an existing output stays as it was
    out.write_bytes(b"previous")
    with pytest.raises(CaptureError):
        write_annotated(str(inp), str(out), comments)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pcap", "out.pcapng"]


# ----------------------------------------------------------------------------- real captures

from ws_support import corpus_captures  # noqa: E402

_REAL = [p for p in corpus_captures() if p.suffix in (".pcapng", ".gz")
         or p.name in ("tests__smtp-startssl__input.pcap", "tests__cfgs__default__pcap__smtp-starttls.pcap")]


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("path", _REAL, ids=[p.name for p in _REAL])
def test_corpus_capture_round_trip(tmp_path: Path, path: Path) -> None:
    if path.suffix == ".gz":
        inp = tmp_path / path.name[:-3]
        inp.write_bytes(gzip.decompress(path.read_bytes()))
    else:
        inp = path
    n = len(_fields(inp))
    comments = {1: ["pcapsmtp: first"], n: ["pcapsmtp: last", "pcapsmtp: really"],
                (n + 1) // 2: ["pcapsmtp: middle"]}
    out = tmp_path / "out.pcapng"
    assert write_annotated(str(path), str(out), comments) == len(comments)
    existing = {f: c for f, c in _comments_by_frame(inp).items()}
    no_time = {int(r[0]) for r in _fields(inp) if r[1] == ""}     # SPBs: converted to EPBs
    _check_round_trip(inp, out, comments, existing=existing,
                      spb_converted=sorted(no_time & set(comments)))


def test_corpus_found() -> None:
    assert len(_REAL) >= 9
