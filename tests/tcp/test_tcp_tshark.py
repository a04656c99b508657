"""The reassembler against real tshark (4.0) on every capture of the public corpus and of
``captures/``: tcp.stream of every TCP frame, and each candidate flow's client and server
bytes (up to the first TLS record) against ``follow,tcp,raw``."""
from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from capturecheck import MAX_FOLLOW, TSHARK_FIELDS, tshark_frames
from _tcp_corpus import (FALLBACK_LIMITS, REPO, capture_files, segments, tshark_follow,
                         using_fallback)
from pcapsmtp.model import Side, TcpSegment
from pcapsmtp.tcp.events import FlowEvent, FlowInfo, FlowOpened, StreamData, StreamEnd, StreamGap
from pcapsmtp.tcp.reassembler import TUNNEL_OPEN, TcpReassembler, parse_tunnel

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
]

#: Files where tshark and pcapsmtp cannot agree, and why. Empty today: every TCP frame of the
#: corpus is numbered as tshark 4.0.17 numbers it, and every flow's bytes match. Notes that
#: are NOT failures, handled by the test itself:
#: - frames tshark gives a tcp.stream but that are no TCP segment for us: ICMP errors quoting
#:   a TCP header (zeek testing/btest/Traces/smtp.pcap and suricata bug-3616-smtp, frames
#:   26, 28-30, "fragmentation needed"). They must be ICMP, and numbering stays aligned.
#: - tests__smtp-to-comma__...pcap is corrupt after packet 18; both tools stop there.
#: - tshark's follow output marks a hole as "[N bytes missing in capture file]\0"; we insert
#:   the same marker at each StreamGap, which checks gap offsets and lengths too. A side of
#:   which the capture holds no byte at all (every data segment lost, its start known from
#:   the handshake, its holes proved by the other side's ACKs and its FIN) has no follow
#:   output in tshark: there, ours must be those markers only.
EXPECTED_NUMBERING_FAILURES: dict[str, str] = {}
EXPECTED_BYTES_FAILURES: dict[str, str] = {}

#: captures whose SMTP runs inside an HTTP CONNECT or SOCKS5 tunnel on a non-SMTP port
TUNNELLED = {"testing__btest__Traces__http__connect-with-smtp.pcap",
             "tests__pcap__socks5-smtp-503.pcap"}

TLS_RECORD = re.compile(rb"[\x14-\x17]\x03")
MISSING = re.compile(rb"\[\d+ bytes missing in capture file\]\x00")
#: holes at the very end of a side: tshark's follow marks a hole only before bytes it has, so a
#: side whose last bytes were lost (before its FIN, or before nothing) ends without a marker
TRAILING_MISSING = re.compile(rb"(?:\[\d+ bytes missing in capture file\]\x00)+$")
#: tshark's follow puts out the bytes after a hole once the receiver's acknowledgement passes it;
#: after a hole the receiver never acknowledged (``StreamGap.acked`` False: bytes a box dropped,
#: the ``pathhole-*`` captures) it shows nothing more of that side

FILES = capture_files()


def _id(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(REPO.resolve()))
    except ValueError:
        return p.name


def _merged_holes(b: bytes) -> bytes:
    """``b`` with each run of adjacent hole markers as one marker of their summed size: tshark's
    follow marks the bytes missing between two it has as one hole, where the TCP layer declares
    two when a segment of that side without payload (a pure ACK) shows a sequence number inside
    them (hole-hello-greeting-lost-tls.pcap: the greeting and the EHLO reply, 34 and 122 bytes)."""
    def one(m: re.Match[bytes]) -> bytes:
        total = sum(int(n) for n in re.findall(rb"\[(\d+) bytes missing", m.group(0)))
        return b"[%d bytes missing in capture file]\x00" % total
    return re.sub(rb"(?:\[\d+ bytes missing in capture file\]\x00){2,}", one, b)


def _until_tls(b: bytes) -> bytes:
    m = TLS_RECORD.search(b)
    return b if m is None else b[:m.start()]


def _tshark_frames(path: Path, follow: list[int]) -> dict[int, tuple[int, str]]:
    """frame.number -> (tcp.stream, frame.protocols) per tshark, for the frames with a stream
    (the first value when a frame has several). The same tshark run follows the streams
    ``follow`` (our flows) for ``test_flow_bytes_equal_tshark_follow`` (``tshark_follow``)."""
    out: dict[int, tuple[int, str]] = {}
    for row in tshark_frames(path, follow if len(follow) <= MAX_FOLLOW else ()).rows:
        f = dict(zip(TSHARK_FIELDS, row))
        if f.get("tcp.stream"):
            out[int(f["frame.number"])] = (int(f["tcp.stream"].split(",")[0]), f["frame.protocols"])
    return out


def _xfail(request: pytest.FixtureRequest, table: dict[str, str], path: Path) -> None:
    reason = table.get(path.name)
    if not reason and using_fallback():
        reason = FALLBACK_LIMITS.get(path.name)
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_stream_numbers_equal_tshark(path: Path, request: pytest.FixtureRequest) -> None:
    _xfail(request, EXPECTED_NUMBERING_FAILURES, path)
    r = TcpReassembler()
    ours: dict[int, int | None] = {}
    events: list[FlowEvent] = []
    for seg in segments(path):
        events += r.feed(seg)
        ours[seg.frame] = r.stream_of(seg.src, seg.sport, seg.dst, seg.dport)
    events += r.finish()
    theirs = _tshark_frames(path, sorted({e.flow.stream for e in events if isinstance(e, FlowOpened)}))
    wrong = [(f, s, theirs.get(f, (None, ""))[0]) for f, s in ours.items()
             if s != theirs.get(f, (None, ""))[0]]
    assert not wrong[:20], f"(frame, ours, tshark): {wrong[:20]}"
    not_ours = {f: protos for f, (_, protos) in theirs.items() if f not in ours}
    assert all(":icmp" in p for p in not_ours.values()), not_ours


def _per_side(events: list[FlowEvent], cut_frames: set[int]
              ) -> tuple[dict[int, FlowInfo], dict[tuple[int, Side], bytearray]]:
    """Each side's bytes, with tshark's follow marker where a hole was. A snaplen cut
    (the gap right after the captured part of a cut frame) has no marker in tshark."""
    flows: dict[int, FlowInfo] = {}
    data: dict[tuple[int, Side], bytearray] = {}
    last_frame: dict[tuple[int, Side], int] = {}
    for e in events:
        if isinstance(e, FlowOpened):
            flows[e.flow.stream] = e.flow
            data[(e.flow.stream, Side.CLIENT)] = bytearray()
            data[(e.flow.stream, Side.SERVER)] = bytearray()
        elif isinstance(e, StreamData):
            data[(e.stream, e.side)] += e.data
            last_frame[(e.stream, e.side)] = e.frame
        elif isinstance(e, StreamGap):
            if e.frame in cut_frames and last_frame.get((e.stream, e.side)) == e.frame:
                continue
            data[(e.stream, e.side)] += b"[%d bytes missing in capture file]\x00" % e.length
    return flows, data


def _from_tshark_base(events: list[FlowEvent], segs: list[TcpSegment]) -> list[FlowEvent]:
    """tshark starts a direction at its first captured segment (its SYN's seq+1, else that
    segment's seq). Where we know a side's start from the other side's acknowledgement
    (``FlowInfo.client_start``/``server_start``, no SYN of its own captured) and its first
    captured segment comes later in sequence space (a hole at its start, or its first bytes
    arriving after later ones), tshark's follow lacks the bytes before that segment: our
    events of that side are cut to start where tshark's do. So where a side's start is not
    known (a late start) and its first captured segment is not at the lowest sequence number
    of its first bytes (they arrived out of order): we start at the lowest (up to 64 KiB
    before), tshark at that segment."""
    cut: dict[tuple[int, Side], int] = {}
    for e in events:
        if not isinstance(e, FlowOpened):
            continue
        info = e.flow
        for side, ep, start in ((Side.CLIENT, info.client, info.client_start),
                                (Side.SERVER, info.server, info.server_start)):
            peer = info.server if side is Side.CLIENT else info.client
            own = [x for x in segs if (x.src, x.sport) == (ep.ip, ep.port)
                   and (x.dst, x.dport) == (peer.ip, peer.port)]
            if not own or any(x.flags & 0x02 for x in own):
                continue
            if start is None:
                back = [(own[0].seq - x.seq) & 0xFFFFFFFF for x in own if x.payload]
                back = [b for b in back if 0 < b <= 0xFFFF]
                if back:
                    cut[(info.stream, side)] = max(back)
                continue
            k = (own[0].seq - start) & 0xFFFFFFFF
            if 0 < k < 1 << 31:
                cut[(info.stream, side)] = k
    if not cut:
        return events
    out: list[FlowEvent] = []
    for e in events:
        if isinstance(e, (StreamData, StreamGap)) and (e.stream, e.side) in cut:
            k = cut[(e.stream, e.side)]
            n = len(e.data) if isinstance(e, StreamData) else e.length
            if e.offset + n <= k:
                continue
            if e.offset < k:
                d = k - e.offset
                e = (dataclasses.replace(e, offset=k, data=e.data[d:])
                     if isinstance(e, StreamData) else
                     dataclasses.replace(e, offset=k, length=e.length - d))
        out.append(e)
    return out


def _after_reset(events: list[FlowEvent], segs: list[TcpSegment]) -> dict[tuple[int, Side], bytes]:
    """tshark's follow goes on after a reset, our streams end there: per conversation that a
    reset ended, each side's bytes that its segments captured after the reset and not delivered
    by us (causal order may put some before it) add in sequence
    (up to a new SYN on the 4-tuple: a new conversation), which tshark's follow shows and ours
    does not (a side going on after its reset: ``SentAfterReset``); so do the other side's bytes
    captured before the reset that we did not deliver because they acknowledge bytes past the
    reset's sequence number (after it in causal order: ``TcpReassembler._take_past_reset``)."""
    resets: dict[int, int] = {}
    delivered: set[tuple[int, int]] = set()     # (stream, frame): bytes we delivered
    for e in events:
        if isinstance(e, StreamEnd) and e.reset:
            resets.setdefault(e.stream, e.frame)
        elif isinstance(e, StreamData):
            delivered.add((e.stream, e.frame))
    extra: dict[tuple[int, Side], bytes] = {}
    for e in events:
        if not isinstance(e, FlowOpened) or e.flow.stream not in resets:
            continue
        info, rst = e.flow, resets[e.flow.stream]
        rseg = next(x for x in segs if x.frame == rst)
        tup = {(info.client.ip, info.client.port, info.server.ip, info.server.port): Side.CLIENT,
               (info.server.ip, info.server.port, info.client.ip, info.client.port): Side.SERVER}
        end: dict[Side, int] = {}
        for x in segs:
            side = tup.get((x.src, x.sport, x.dst, x.dport))
            if side is None or x.frame < info.first_frame:
                continue
            if x.frame > rst and x.flags & 0x02:
                break
            n = len(x.payload) + (x.flags & 0x03 and 1)
            late = bool(x.frame < rst and x.payload and (info.stream, x.frame) not in delivered
                        and (x.src, x.sport) != (rseg.src, rseg.sport) and x.flags & 0x10
                        and 0 < (x.ack - rseg.seq) & 0xFFFFFFFF < 1 << 30)
            if not late and (x.frame < rst or (info.stream, x.frame) in delivered):
                # (a segment after the reset in the capture may come before it in causal order)
                e2 = (x.seq + n) & 0xFFFFFFFF
                if side not in end or 0 < (e2 - end[side]) & 0xFFFFFFFF < 1 << 31:
                    end[side] = e2
            elif (late or x.frame > rst) and x.payload and end.get(side) == x.seq:
                extra[(info.stream, side)] = extra.get((info.stream, side), b"") + x.payload
                end[side] = (x.seq + len(x.payload)) & 0xFFFFFFFF
    return extra


#: The corpus's negative controls: STARTTLS in other protocols (TRUTH.md). No SMTP candidate
#: flow may come out of them; every other capture has at least one.
NOT_SMTP = frozenset(f"testing__btest__Traces__{n}.pcap" for n in (
    "ldap__ldap-starttls", "tls__imap-starttls", "tls__irc-starttls", "tls__pop3-starttls",
    "tls__xmpp-dialback-starttls", "tls__xmpp-starttls"))


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_flow_bytes_equal_tshark_follow(path: Path, request: pytest.FixtureRequest) -> None:
    _xfail(request, EXPECTED_BYTES_FAILURES, path)
    r = TcpReassembler()
    events: list[FlowEvent] = []
    cut_frames: set[int] = set()
    for seg in segments(path):
        if seg.missing:
            cut_frames.add(seg.frame)
        events += r.feed(seg)
    events += r.finish()
    events = _from_tshark_base(events, list(segments(path)))
    flows, data = _per_side(events, cut_frames)
    for k, more in _after_reset(events, list(segments(path))).items():
        data[k] += more
    unacked = {(e.stream, e.side) for e in events if isinstance(e, StreamGap) and e.acked is False}
    if path.name in NOT_SMTP or not flows:
        assert path.name in NOT_SMTP and not flows, f"SMTP candidate flows: {sorted(flows)}"
        return
    follow = tshark_follow(path, sorted(flows))
    bad = []
    tunnels: list[int] = []
    for stream, info in flows.items():
        nodes = follow.get(stream, {})
        full = {Side.CLIENT: nodes.get(str(info.client), b""),
                Side.SERVER: nodes.get(str(info.server), b"")}
        status, cstart, sstart = parse_tunnel(full[Side.CLIENT], full[Side.SERVER])
        if status == TUNNEL_OPEN and info.side_evidence == "content":
            # SMTP inside an HTTP CONNECT / SOCKS5 tunnel: our streams start after the proxy
            # handshake, tshark's at the first byte of the conversation
            full = {Side.CLIENT: full[Side.CLIENT][cstart:], Side.SERVER: full[Side.SERVER][sstart:]}
            tunnels.append(stream)
        for side in (Side.CLIENT, Side.SERVER):
            ours = _merged_holes(_until_tls(bytes(data[(stream, side)])))
            theirs = _until_tls(full[side])
            if not theirs and not MISSING.sub(b"", ours):
                continue            # nothing of this side captured: holes only
            if ours != theirs and TRAILING_MISSING.sub(b"", ours) != theirs and not (
                    (stream, side) in unacked and ours.startswith(theirs)
                    and MISSING.match(ours, len(theirs))):
                bad.append((stream, side.value, len(ours), len(theirs)))
    assert not bad, f"(stream, side, our length, tshark length): {bad}"
    if path.name in TUNNELLED:
        assert tunnels, "the SMTP inside the proxy tunnel was not found"
