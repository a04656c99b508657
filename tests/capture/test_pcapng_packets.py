"""One decoder of pcapng packet blocks (``capture.pcapng.iter_packets``) for the reader and
for ``annotate``'s copier: the same damaged block gives the same one-line message, naming the
file and the offset, from ``analyze`` (exit 2, the conversations before the damage kept), from
``annotate`` (exit 2) and from the copier itself; and both number the frames as Wireshark does
(a systemd journal export block is a frame without a packet)."""
from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pcapsmtp.capture.pcapfile import iter_records, iter_views
from pcapsmtp.capture.pcapng import BLOCKS, SJEB, block, epb, idb, iter_packets, shb
from pcapsmtp.capture.pcapfile import open_source
from pcapsmtp.capture.rewrite import write_with_comments
from pcapsmtp.errors import CaptureError

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "captures" / "seed-starttls-first-line.pcap"

_HEAD = shb("t") + idb(1, 65535)
_SPB4 = block("<", 3, struct.pack("<I", 4) + b"abcd")
#: damaged blocks appended to a good pcapng file: (name, bytes, message)
DAMAGE = [
    ("truncated-epb", epb(0, 3, b"z" * 100, 100)[:60],
     "capture ends in the middle of packet {n} (block length says 132 bytes, 60 present)"),
    ("bad-block-length", struct.pack("<II", 6, 30) + b"\0" * 18 + struct.pack("<I", 30),
     "pcapng block of type 0x6 has an invalid length 30 (not a multiple of 4)"),
    ("caplen-over-block",
     struct.pack("<IIIIIII", 6, 36, 0, 0, 0, 100, 100) + b"\0" * 4 + struct.pack("<I", 36),
     "packet {n}: captured length 100 does not fit in its 36-byte block"),
    ("spb-without-section-interface", shb("t") + _SPB4,
     "packet {n} (simple packet block) refers to interface 0, but no interface is defined in "
     "this section"),
    ("epb-too-short", block("<", 6, b"\0" * 16), "enhanced packet block too short (28 bytes)"),
    ("pb-caplen-over-block", block("<", 2, struct.pack("<HHIIII", 0, 0, 0, 0, 100, 100) + b"\0" * 4),
     "packet {n}: captured length 100 does not fit in its 36-byte block"),
    ("epb-unknown-interface", epb(5, 3, b"z", 1),
     "packet {n} refers to interface 5, but 1 interface(s) are defined in this section"),
    ("idb-too-short", block("<", 1, b"\0" * 4), "interface description block too short (16 bytes)"),
]


@pytest.fixture(scope="module")
def seed_ng(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The seed capture as pcapng (the copier's own conversion of a pcap)."""
    out = tmp_path_factory.mktemp("ng") / "seed.pcapng"
    write_with_comments(str(SEED), str(out), {})
    return out.read_bytes()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pcapsmtp", *args], check=False,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name,blob,message", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_same_damage_same_message_everywhere(seed_ng: bytes, tmp_path: Path, name: str,
                                             blob: bytes, message: str) -> None:
    bad = tmp_path / f"{name}.pcapng"
    bad.write_bytes(seed_ng + blob)
    frames = len(list(iter_records(str(SEED))))
    offset = len(seed_ng) + (len(shb("t")) if name.startswith("spb-without") else 0)
    want = f"{bad}: at byte offset {offset}: {message.format(n=frames + 1)}"
    # the reader, records and views alike, after every packet before the damage
    got: list[int] = []
    with pytest.raises(CaptureError) as ei:
        for rec in iter_records(str(bad)):
            got.append(rec[0])
    assert str(ei.value) == want and got == list(range(1, frames + 1))
    with pytest.raises(CaptureError) as ev:
        for _v in iter_views(str(bad)):
            pass
    assert str(ev.value) == want
    # annotate's copier, every frame commented (an SPB would become an EPB)
    with pytest.raises(CaptureError) as ec:
        write_with_comments(str(bad), str(tmp_path / "out.pcapng"),
                            {n: [b"c"] for n in range(1, frames + 3)})
    assert str(ec.value) == want
    assert not (tmp_path / "out.pcapng").exists()
    # the commands: one line, exit 2; analyze keeps the conversation read before the damage
    a = _cli("analyze", "--format", "json", str(bad))
    assert a.returncode == 2 and a.stderr == f"pcapsmtp: error: {want}\n"
    convs = [json.loads(ln) for ln in a.stdout.splitlines()]
    assert [c["reason"] for c in convs] == ["starttls-misplaced"]
    n = _cli("annotate", str(bad), "-o", str(tmp_path / "ann.pcapng"))
    assert n.returncode == 2 and n.stderr == f"pcapsmtp: error: {want}\n"


def _sjeb() -> bytes:
    body = b"__CURSOR=s=abc;i=1\n__REALTIME_TIMESTAMP=1700000000000000\nMESSAGE=hello\n\n"
    return block("<", SJEB, body + b"\0" * (-len(body) % 4))


def test_journal_export_block_is_a_frame_for_reader_and_copier(tmp_path: Path) -> None:
    """Wireshark numbers a systemd journal export block as a frame: the reader counts it
    (a frame without a packet) and the copier puts frame 4's comment on the packet after it."""
    path = tmp_path / "j.pcapng"
    path.write_bytes(_HEAD + epb(0, 1, b"a" * 60, 60) + epb(0, 2, b"b" * 60, 60) + _sjeb()
                     + epb(0, 3, b"c" * 60, 60))
    recs = list(iter_records(str(path)))
    assert [(r[0], r[2], r[3][:1]) for r in recs] == [(1, 1, b"a"), (2, 1, b"b"), (3, -1, b""),
                                                       (4, 1, b"c")]
    out = tmp_path / "out.pcapng"
    assert write_with_comments(str(path), str(out), {3: [b"journal"], 4: [b"fourth"]}) == 1
    src, head = open_source(str(out))
    try:
        commented = [pkt.number for blk, pkt in iter_packets(src, head, str(out), BLOCKS)
                     if pkt is not None and b"fourth" in bytes(blk.buf[blk.pos:blk.end])]
    finally:
        src.close()
    assert commented == [4]
    if shutil.which("tshark"):
        r = subprocess.run(["tshark", "-r", str(out), "-Y", "frame.comment", "-T", "fields",
                            "-e", "frame.number", "-e", "frame.comment"], capture_output=True,
                           text=True, check=True, timeout=60)
        assert r.stdout.split() == ["4", "fourth"]
