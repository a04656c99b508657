"""The captures of captures/scenarios_recut.py (handshake packets lost), cross-checked against
tshark: the conversation is tshark's ``tcp.stream``; the handshake packet left tells the start
of the side whose own packet was lost (tshark's raw ``tcp.ack`` of the SYN-ACK, or of the
client's handshake ACK, is that side's first sequence number); each frame we name carries, by
tshark's raw sequence numbers, the byte at the offset we say from that start; and the hole at
a known start has the length tshark's raw numbers give. The verdicts themselves are checked
against expected.json by tests/test_captures_expected.py."""
from __future__ import annotations

import shutil
import sys
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.engine.analyzer import analyze_path

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
MASK = 0xFFFFFFFF

pytestmark = pytest.mark.tshark


class Row:
    def __init__(self, f: list[str]) -> None:
        self.frame, self.stream, self.sport = int(f[0]), int(f[1]), int(f[2])
        self.flags = int(f[3], 16)
        self.seq, self.ack = int(f[4]), int(f[5])
        self.payload = bytes.fromhex(f[6].replace(":", ""))
        self.hs_types = {int(t) for t in f[7].split(",") if t}


def _tshark(path: Path) -> list[Row]:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    out = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-o", "tcp.desegment_tcp_streams:FALSE",
         "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,", "-e", "frame.number",
         "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.flags", "-e", "tcp.seq_raw",
         "-e", "tcp.ack_raw", "-e", "tcp.payload", "-e", "tls.handshake.type"],
        capture_output=True, text=True, check=True).stdout
    return [Row(line.split("\t")) for line in out.splitlines()]


def _start(rows: list[Row], port: int, other: int) -> int:
    """Where the side sending from ``port`` starts, from tshark's fields: its SYN (seq+1), else
    the other side's SYN-ACK or first ACK (the ack field)."""
    for r in rows:
        if r.sport == port and r.flags & 0x02:
            return (r.seq + 1) & MASK
    r = next(r for r in rows if r.sport == other and r.flags & 0x10)
    return r.ack


def _byte_frame(rows: list[Row], port: int, start: int, off: int) -> int:
    """The first frame (file order) from ``port`` carrying the byte at ``off`` from ``start``."""
    for r in rows:
        if r.sport == port and r.payload:
            k = (start + off - r.seq) & MASK
            if k < len(r.payload):
                return r.frame
    raise AssertionError(f"no frame carries offset {off}")


def _one(name: str) -> tuple[dict[str, Any], list[Row], int, int, int, int]:
    path = CAPTURES / name
    (conv,) = analyze_path(str(path))
    rows = _tshark(path)
    assert {r.stream for r in rows} == {conv["stream"]}
    cport, sport = conv["client"]["port"], conv["server"]["port"]
    return conv, rows, cport, sport, _start(rows, cport, sport), _start(rows, sport, cport)


@pytest.mark.parametrize("name", ["recut-not-offered-no-syn.pcap", "recut-tls-no-synack.pcap",
                                  "recut-content-10025-no-synack.pcap",
                                  "recut-seed-banner-first.pcap",
                                  "recut-content-10026-banner-first.pcap"])
def test_dialogue_frames_agree_with_tshark(name: str) -> None:
    conv, rows, cport, sport, cstart, sstart = _one(name)
    assert not any(r.flags & 0x12 == 0x12 for r in rows) or not any(
        r.flags & 0x12 == 0x02 for r in rows), "one handshake packet is lost"
    assert conv["greeting"]["frame"] == _byte_frame(rows, cport, cstart, 0)
    # the server's first byte, by tshark's numbers from the start the other side told, is
    # the banner's (also where its segments arrive swapped)
    banner = next(r for r in rows if r.frame == _byte_frame(rows, sport, sstart, 0))
    assert banner.payload[:1] == b"2" and banner.seq == sstart
    assert conv["banner"].startswith("220 ")
    banner_len = len(conv["banner"]) + 2
    assert conv["ehlo_reply"]["frames"][0] == _byte_frame(rows, sport, sstart, banner_len)
    if conv["starttls"]["requested"]:
        assert conv["starttls"]["frame"] == _byte_frame(rows, cport, cstart,
                                                        len(b"EHLO client.example.org\r\n"))
    if conv["tls"]["client_hello_frame"] is not None:
        assert conv["tls"]["client_hello_frame"] == next(r.frame for r in rows if 1 in r.hs_types)
        assert conv["tls"]["server_hello_frame"] == next(r.frame for r in rows if 2 in r.hs_types)


def test_implicit_tls_without_the_syn_starts_at_the_client_hello() -> None:
    conv, rows, cport, sport, cstart, sstart = _one("recut-implicit-465-no-syn.pcap")
    hello = next(r for r in rows if 1 in r.hs_types)
    assert hello.sport == cport and hello.seq == cstart          # the client's first byte
    assert conv["tls"]["client_hello_frame"] == hello.frame
    assert conv["tls"]["server_hello_frame"] == next(r.frame for r in rows if 2 in r.hs_types)
    assert conv["reason"] == "implicit-tls"


def test_the_hole_at_the_client_start_has_tsharks_length() -> None:
    conv, rows, cport, sport, cstart, sstart = _one("recut-hole-at-client-start.pcap")
    first = next(r for r in rows if r.sport == cport and r.payload)
    hole = (first.seq - cstart) & MASK
    assert hole == len(b"EHLO client.example.org\r\n")
    # reported at the server's first payload that acknowledges the lost bytes
    proof = next(r for r in rows if r.sport == sport and r.payload
                 and 0 < (r.ack - cstart) & MASK <= hole)
    gaps = [f for f in conv["findings"] if f["code"] == "tcp-gap"]
    assert [f["frame"] for f in gaps] == [proof.frame] and proof.frame < first.frame
    assert conv["greeting"] is None or conv["greeting"]["frame"] is None


def test_without_syn_and_synack_it_stays_a_late_start() -> None:
    conv, rows, cport, sport, _c, _s = _one("recut-seed-no-handshake.pcap")
    assert not any(r.flags & 0x02 for r in rows)                 # no SYN, no SYN-ACK
    first = rows[0]
    assert first.sport == cport and first.flags == 0x10 and not first.payload
    assert {(f["code"], f["frame"]) for f in conv["findings"]} >= {("midstream", first.frame)}
    assert (conv["outcome"], conv["caused_by"]) == ("incomplete", "unknown")


@pytest.mark.parametrize("name", ["recut-seed-banner-first.pcap",
                                  "recut-content-10026-banner-first.pcap"])
def test_a_banner_before_the_handshake_ack_is_the_servers_first_byte(name: str) -> None:
    """No SYN-ACK, and the banner in the file before the client's handshake ACK (two taps
    merged out of order): the ACK's acknowledgement number is the banner's sequence number,
    so the banner starts the server's stream and the seed's misplaced STARTTLS is blamed on
    the server, with the frames of the whole capture (by tshark's raw numbers)."""
    conv, rows, cport, sport, cstart, sstart = _one(name)
    syn = next(r for r in rows if r.flags & 0x12 == 0x02)
    assert not any(r.flags & 0x12 == 0x12 for r in rows)                 # no SYN-ACK
    assert syn.sport == cport
    hs_ack = next(r for r in rows if r.sport == cport and r.frame > syn.frame)
    assert hs_ack.flags == 0x10 and not hs_ack.payload and hs_ack.seq == cstart
    banner = next(r for r in rows if r.sport == sport and r.payload)
    assert banner.frame < hs_ack.frame and banner.seq == hs_ack.ack == sstart
    reply_start = len(conv["banner"]) + 2
    lines = conv["ehlo_reply"]["lines"]
    reply_len = sum(len(b"250-\r\n") + len(line) for line in lines)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == (
        "plaintext", "server", "starttls-misplaced")
    assert conv["banner"] == "220 mail.domain1.com ESMTP Service ready"
    assert conv["greeting"]["frame"] == _byte_frame(rows, cport, cstart, 0)
    first_reply = _byte_frame(rows, sport, sstart, reply_start)
    assert conv["ehlo_reply"]["frames"] == sorted(
        {_byte_frame(rows, sport, sstart, reply_start + k) for k in range(reply_len)})
    assert lines[0] == "STARTTLS"
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("ehlo-keyword-as-domain", "server", first_reply)]
    assert conv["first_frame"] == syn.frame


def test_an_ack_of_the_banner_tells_no_start() -> None:
    """No SYN-ACK and no handshake ACK: the client's first segment after its SYN acknowledges
    the whole banner (tshark's raw numbers), so it is no handshake ACK and the server's start
    is not known: a late start, nobody blamed, no banner read."""
    path = CAPTURES / "recut-seed-banner-acked.pcap"
    (conv,) = analyze_path(str(path))
    rows = _tshark(path)
    cport, sport = conv["client"]["port"], conv["server"]["port"]
    syn = next(r for r in rows if r.flags & 0x12 == 0x02)
    assert syn.sport == cport and not any(r.flags & 0x12 == 0x12 for r in rows)
    banner = next(r for r in rows if r.sport == sport and r.payload)
    first = next(r for r in rows if r.sport == cport and r.frame > syn.frame)
    assert banner.frame < first.frame and first.ack == (banner.seq + len(banner.payload)) & MASK
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == (
        "incomplete", "unknown", "incomplete")
    assert conv["banner"] is None
    assert [(f["code"], f["side"]) for f in conv["findings"]] == [
        ("ehlo-keyword-as-domain", "server")]


def test_an_ack_seen_before_the_banner_it_acknowledges_is_no_handshake_ack() -> None:
    """No SYN-ACK, no handshake ACK, and the client's ACK of the banner in the file before the
    banner (two taps merged out of order): by tshark's raw numbers that ACK is the client's
    first segment after its SYN, a pure ACK at its ISN+1, and acknowledges exactly the
    banner's bytes. It is no handshake ACK (the banner lies before the start it would give):
    the server's side is a late start as when the ACK comes after the banner (the same
    verdict as recut-seed-banner-acked.pcap), and the banner is read at its frame, not
    dropped as bytes before a start."""
    name = "recut-seed-ack-before-banner.pcap"
    conv, rows, cport, sport, cstart, _s = _one(name)
    syn = next(r for r in rows if r.flags & 0x12 == 0x02)
    assert syn.sport == cport and not any(r.flags & 0x12 == 0x12 for r in rows)
    first = next(r for r in rows if r.sport == cport and r.frame > syn.frame)
    banner = next(r for r in rows if r.sport == sport and r.payload)
    assert first.flags == 0x10 and not first.payload and first.seq == cstart
    assert first.frame < banner.frame
    assert first.ack == (banner.seq + len(banner.payload)) & MASK
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == (
        "incomplete", "unknown", "incomplete")
    (twin,) = analyze_path(str(CAPTURES / "recut-seed-banner-acked.pcap"))
    assert conv["starttls"] == twin["starttls"] and conv["banner"] is twin["banner"] is None
    reply = [r for r in rows if r.sport == sport and r.payload and r.frame > banner.frame]
    assert conv["ehlo_reply"]["frames"] == [reply[0].frame, reply[1].frame]
    assert conv["ehlo_reply"]["lines"] == twin["ehlo_reply"]["lines"]
    assert conv["greeting"]["frame"] == _byte_frame(rows, cport, cstart, 0)
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("ehlo-keyword-as-domain", "server", reply[0].frame)]
    out = subprocess.run([sys.executable, "-m", "pcapsmtp", "explain", str(CAPTURES / name)],
                         capture_output=True, text=True).stdout
    text = banner.payload.decode().rstrip("\r\n")
    assert f"{banner.frame:>4}  S: {text}" in out.splitlines()


@pytest.mark.parametrize("name,twin", [
    ("latestart-first-segments-swapped.pcap", "recut-seed-no-handshake.pcap"),
    ("latestart-banner-acked-swapped.pcap", "recut-seed-banner-acked.pcap")])
def test_a_late_starts_first_segments_out_of_order(name: str, twin: str) -> None:
    """A late start whose first segments are in the file out of order (by tshark's raw
    numbers, the segment at a side's lowest sequence number comes after the next one): each
    side starts at its lowest sequence number, so the dialogue read and the verdict are the
    ones of the capture in order (``twin``); the frames are tshark's."""
    (conv,) = analyze_path(str(CAPTURES / name))
    (ref,) = analyze_path(str(CAPTURES / twin))
    rows = _tshark(CAPTURES / name)
    cport, sport = conv["client"]["port"], conv["server"]["port"]
    swapped = 0
    for port in (cport, sport):
        data = [r for r in rows if r.sport == port and r.payload]
        low = min(data, key=lambda r: (r.seq - data[0].seq + (1 << 31)) & MASK)
        if low is not data[0]:
            swapped += 1
            assert data[0].seq == (low.seq + len(low.payload)) & MASK    # the next one
    assert swapped == (2 if "no-handshake" in twin else 1)
    for k in ("outcome", "caused_by", "reason", "starttls", "banner"):
        assert conv[k] == ref[k], k
    assert conv["greeting"]["command"] == ref["greeting"]["command"] == "EHLO"
    assert conv["greeting"]["argument"] == ref["greeting"]["argument"]
    assert conv["ehlo_reply"]["lines"] == ref["ehlo_reply"]["lines"]
    assert [f["code"] for f in conv["findings"]] == [f["code"] for f in ref["findings"]]
    # frames, by tshark's raw numbers from each side's lowest sequence number: the EHLO's
    # frame is the first in the file carrying any of its bytes, the reply's every frame
    # carrying its bytes
    def lowest(port: int) -> int:
        data = [r for r in rows if r.sport == port and r.payload]
        return min(r.seq for r in data if all((r.seq - o.seq) & MASK == 0
                                             or (o.seq - r.seq) & MASK < (1 << 31)
                                             for o in data))

    def frames(port: int, a: int, b: int) -> list[int]:
        st = lowest(port)
        return sorted({r.frame for r in rows if r.sport == port and r.payload
                       for k in range(a, b) if (st + k - r.seq) & MASK < len(r.payload)})

    ehlo = b"EHLO ESA.com\r\n"
    assert conv["greeting"]["frame"] == frames(cport, 0, len(ehlo))[0]
    banner_len = len(b"220 mail.domain1.com ESMTP Service ready\r\n")
    reply_len = sum(len(b"250-\r\n") + len(line) for line in conv["ehlo_reply"]["lines"])
    reply = frames(sport, banner_len, banner_len + reply_len)
    assert conv["ehlo_reply"]["frames"] == reply
    assert {(f["code"], f["frame"]) for f in conv["findings"]} >= {
        ("ehlo-keyword-as-domain", reply[0])}
    if "no-handshake" in twin:
        assert ("midstream", rows[0].frame) in {(f["code"], f["frame"]) for f in conv["findings"]}
