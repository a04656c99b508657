#!/usr/bin/env python3
"""Deterministic generator of the synthetic SMTP captures in this folder, with their ground truth.

Run ``python captures/generate.py`` (or ``--out DIR``) to (re)write every capture and ``expected.json``
byte for byte identically: fixed timestamps from 2026-01-01T10:00:00Z, fixed ISNs and ports, and every
"random" byte derived from SHAKE-256 of a fixed label.

Building blocks (dev-only; nothing in ``pcapsmtp`` imports this file):

- ``Conv``: one TCP conversation written as a dialogue, ``Conv(...).s(b"220 ...").c(b"EHLO ...")`` or
  ``Conv(..., steps=[("S", b"220 ..."), ("C", [b"seg1", b"seg2"])])``. A list of bytes is one flight split
  into several segments. Options per step: ``tag`` (names the step for ``frames``), ``marks`` (named byte
  positions: the evidence frame is the one carrying that byte), ``lost`` (segment indexes missing from the
  capture), ``conflict`` (a retransmission of one segment with other bytes), ``delay_ms``, ``ttl`` (the
  segments' IPv4 TTL / IPv6 hop limit). ``Conv.rst(side, ttl=...)``: a RST with the side's addresses (a box
  on the path forging it gives it another TTL).
  Options per conversation: ``handshake``, ``close``, ``isn``, ``one_byte``, ``reorder``, ``retransmit``,
  ``only_side``.
- ``Capture``: one file: conversations in time order, ``link`` (ether, vlan, qinq, sll, sll2, raw, null,
  multi), ``ipv`` (4 or 6), ``fmt`` (pcap, pcap-ns, pcap-be, pcapng, pcapng-multi, pcapng-spb; ``gz``),
  ``snaplen``, ``fragment`` (a step tag whose segment is sent as 3 IPv4 fragments), ``ttl`` (the client's
  and the server's TTL / hop limit as captured: 64 and 52 unless given).
- ``Expect``: the verdict of one conversation; frame numbers are computed from the records written.
  ``Expect(reason="no-payload")`` marks a TCP connection that carries no payload (a scan): it is a
  ``tcp.stream`` but no conversation (listed under ``no_payload_streams``).

Frame conventions (used for every number in expected.json):
- a byte's frame is the first record, in file order, whose captured TCP payload holds that byte (so the
  first copy of a retransmission, the frame that really carries it when segments are reordered);
- an IPv4-fragmented segment belongs to its last fragment (where Wireshark dissects TCP);
- a step's frame (``banner``, ``greeting``, ...) is the frame of its first byte; ``ehlo_reply`` lists
  the frames of all its bytes; a finding's frame is the frame of the first byte of the proving line or record;
- a ``tcp-gap`` is reported at the frame carrying the first byte after the hole, or at the side's first
  segment past it when that comes earlier (a pure ACK or FIN whose sequence number lies past the hole: ref
  ``lost_segment:S``, the frame tshark flags ``tcp.analysis.lost_segment``; ``lost_segment:S:2`` the
  second), or at the other side's FIN that acknowledges more than one byte past it when that comes
  earlier still (the close does not overtake bytes it acknowledges, as a reset does not: ref
  ``label:fin:C`` or ``label:fin:S``); frames cut by the snap
  length give one ``capture-truncated`` per conversation, at its first cut frame (ref ``first_cut``).
"""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import io
import json
import struct
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from scapy.layers.inet import IP, TCP, fragment as ip_fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III
from scapy.contrib.geneve import GENEVE
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import UDP
from scapy.layers.l2 import GRE, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback
from scapy.layers.pflog import PFLog
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

HERE = Path(__file__).resolve().parent
T0_NS = int(datetime(2026, 1, 1, 10, 0, 0, tzinfo=timezone.utc).timestamp()) * 1_000_000_000
MSS = 1460
MOD = 1 << 32

CLIENT_IP4, SERVER_IP4 = "192.0.2.10", "198.51.100.25"
CLIENT_IP6, SERVER_IP6 = "2001:db8:0:1::10", "2001:db8:0:2::25"
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:0a", "02:00:00:00:00:19"

LINKTYPES = {"ether": 1, "vlan": 1, "qinq": 1, "null": 0, "raw": 101, "sll": 113, "sll2": 276,
             "gre": 1, "gre-key": 1, "gre6": 1, "ipip": 1, "erspan2": 1, "erspan3": 1, "vxlan": 1,
             "vxlan6": 1, "geneve": 1, "mpls": 1, "pppoe": 1, "nflog": 239, "pflog": 117,
             "ppp": 9, "ppp-hdlc": 50, "chdlc": 104, "ppp-dir": 204, "enc": 109, "ipnet": 226,
             "pktap": 258, "erf": 197}
#: outer addresses of the tunnels: GRE and IP-in-IP run between two routers (each direction
#: its own way); ERSPAN, VXLAN and Geneve carry a mirror session from a switch to an analyzer
TUNNEL_A4, TUNNEL_B4 = "172.16.0.1", "172.16.0.2"
TUNNEL_A6, TUNNEL_B6 = "2001:db8:ffff::1", "2001:db8:ffff::2"
ANALYZER_MAC, SWITCH_MAC = "02:00:5e:00:00:aa", "02:00:5e:00:00:bb"


def det(label: str, n: int) -> bytes:
    """``n`` random-looking bytes that depend only on ``label``."""
    return hashlib.shake_256(label.encode()).digest(n)


# --------------------------------------------------------------------------------------------------
# Dialogue builder
# --------------------------------------------------------------------------------------------------

@dataclass
class Step:
    side: str                       # "C" or "S"
    segments: list[bytes]
    tag: str | None = None
    marks: dict[str, int] = field(default_factory=dict)   # name -> offset in the step's bytes
    lost: frozenset[int] = frozenset()
    conflict: tuple[int, bytes] | None = None              # (segment index, replacement bytes)
    delay_ms: float | None = None
    fin: bool = False               # no bytes: the side closes its direction (FIN) here
    acked: bool = True              # the receiver answers with a pure ACK (False: it does not)
    #: a black hole on the path: the receiver never gets these bytes (nor anything its side
    #: sends later), so its ACKs stay before them; the sender resends them after each delay
    resend_ms: tuple[float, ...] | None = None
    #: the IPv4 TTL (IPv6 hop limit) of this step's segments (None: the capture's for the side)
    ttl: int | None = None
    rst: bool = False               # no bytes: a RST with the side's addresses (``Conv.rst``)
    label: str | None = None        # the record label of that RST

    @property
    def data(self) -> bytes:
        return b"".join(self.segments)


@dataclass
class Pkt:
    """One TCP segment as sent (before link-layer framing)."""

    ts_ns: int
    conv: int
    side: str
    flags: str
    seq: int
    ack: int
    payload: bytes = b""
    off: int | None = None          # offset of payload[0] in the sender's byte stream
    label: str | None = None
    captured: bool = True
    syn_options: bool = False
    ttl: int | None = None          # the IPv4 TTL / IPv6 hop limit (None: the capture's for the side)
    window: int | None = None       # the TCP window field (None: the side's usual one)


class Conv:
    """One TCP conversation written as a dialogue."""

    def __init__(self, *, cport: int = 40312, sport: int = 25, isn: tuple[int, int] = (0x1A2B3C4D, 0x5E6F7081),
                 handshake: bool = True, close: tuple[str, str] | None = ("fin", "S"),
                 steps: Iterable[tuple[str, Any]] = (), one_byte: bool = False, reorder: bool = False,
                 retransmit: bool = False, only_side: str | None = None, start_offset_ms: float = 0.0) -> None:
        self.cport, self.sport, self.isn = cport, sport, isn
        self.handshake, self.close = handshake, close
        self.one_byte, self.reorder, self.retransmit = one_byte, reorder, retransmit
        self.only_side = only_side
        self.start_offset_ms = start_offset_ms
        self.steps: list[Step] = []
        for side, data in steps:
            self.step(side, data)

    # -- dialogue ----------------------------------------------------------------------------------
    def step(self, side: str, data: bytes | Sequence[bytes], *, tag: str | None = None,
             marks: dict[str, bytes | int] | None = None, split: int | Sequence[int] | None = None,
             lost: Iterable[int] = (), conflict: tuple[int, bytes] | None = None,
             delay_ms: float | None = None, acked: bool = True,
             resend_ms: tuple[float, ...] | None = None, ttl: int | None = None) -> Conv:
        assert side in ("C", "S")
        segs = [data] if isinstance(data, (bytes, bytearray)) else list(data)
        segs = [bytes(s) for s in segs]
        if split is not None:
            whole = b"".join(segs)
            sizes = [split] * (len(whole) // split + 1) if isinstance(split, int) else list(split)
            segs, pos = [], 0
            for size in sizes:
                if pos >= len(whole):
                    break
                segs.append(whole[pos:pos + size])
                pos += size
            if pos < len(whole):
                segs.append(whole[pos:])
        st = Step(side, segs, tag, {}, frozenset(lost), conflict, delay_ms, acked=acked and resend_ms is None,
                  resend_ms=resend_ms, ttl=ttl)
        whole = st.data
        for name, where in (marks or {}).items():
            if isinstance(where, int):
                st.marks[name] = where
            else:
                idx = whole.find(where)
                assert idx >= 0, (name, where)
                st.marks[name] = idx
        self.steps.append(st)
        return self

    def fin(self, side: str, *, tag: str | None = None, delay_ms: float | None = None,
            acked: bool = True) -> Conv:
        """``side`` closes its direction here, before the dialogue's end (the final close then
        sends only the other side's FIN); ``delay_ms`` after the step before (a client that
        gives up waiting closes seconds later). ``acked=False``: the other side sends no pure
        ACK of it (its acknowledgement rides on its own next segment, e.g. its FIN)."""
        assert side in ("C", "S")
        self.steps.append(Step(side, [], tag, delay_ms=delay_ms, fin=True, acked=acked))
        return self

    def rst(self, side: str, *, ttl: int | None = None, label: str = "rst",
            delay_ms: float | None = None) -> Conv:
        """A RST (with ACK) carrying ``side``'s addresses and sequence numbers here, with TTL (hop
        limit) ``ttl`` (None: the side's own; a box on the path that forges it gives it its own),
        recorded under ``label``; nothing answers it (the conversation's ``close`` is then None)."""
        assert side in ("C", "S")
        self.steps.append(Step(side, [], delay_ms=delay_ms, ttl=ttl, rst=True, label=label))
        return self

    def c(self, data: bytes | Sequence[bytes], **kw: Any) -> Conv:
        return self.step("C", data, **kw)

    def s(self, data: bytes | Sequence[bytes], **kw: Any) -> Conv:
        return self.step("S", data, **kw)

    def extend(self, steps: Iterable[tuple[str, Any] | tuple[str, Any, dict[str, Any]]]) -> Conv:
        for item in steps:
            self.step(item[0], item[1], **(item[2] if len(item) > 2 else {}))  # type: ignore[misc]
        return self

    # -- emission ----------------------------------------------------------------------------------
    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        """Return the packets and the named byte marks ``name -> (side, stream offset)``."""
        pkts: list[Pkt] = []
        marks: dict[str, tuple[str, int]] = {}
        isn = {"C": self.isn[0] % MOD, "S": self.isn[1] % MOD}
        nxt = {"C": isn["C"], "S": isn["S"]}
        sent = {"C": 0, "S": 0}     # stream offsets
        t = t_start_ns

        #: per side, where a black hole began in its stream (``Step.resend_ms``): the other side
        #: acknowledges nothing from there on
        hole: dict[str, int | None] = {"C": None, "S": None}

        def put(side: str, flags: str, payload: bytes = b"", off: int | None = None, **kw: Any) -> None:
            seq = (nxt[side] + (off - sent[side] if off is not None else 0)) % MOD
            other = "S" if side == "C" else "C"
            ack = nxt[other] if hole[other] is None else hole[other]
            pkts.append(Pkt(t, conv_index, side, flags, seq, ack if "A" in flags else 0,
                            payload, off, **kw))

        if self.handshake:
            put("C", "S", syn_options=True)
            nxt["C"] = (nxt["C"] + 1) % MOD
            t += 10_000_000
            put("S", "SA", syn_options=True)
            nxt["S"] = (nxt["S"] + 1) % MOD
            t += 150_000
            put("C", "A")
        else:
            nxt["C"] = (nxt["C"] + 1) % MOD
            nxt["S"] = (nxt["S"] + 1) % MOD

        prev_side = "C"
        rtx_count = 0
        finned: set[str] = set()
        for i, st in enumerate(self.steps):
            gap_ms = st.delay_ms if st.delay_ms is not None else (10.0 if st.side != prev_side else 1.0)
            t += int(gap_ms * 1_000_000)
            side = st.side
            base = sent[side]
            if st.tag:
                marks[st.tag] = (side, base)
            if st.rst:
                put(side, "RA", ttl=st.ttl, label=st.label)
                prev_side = side
                continue
            if st.fin:
                put(side, "FA")
                nxt[side] = (nxt[side] + 1) % MOD
                finned.add(side)
                t += 1_000_000
                if st.acked:
                    put("S" if side == "C" else "C", "A")
                prev_side = side
                continue
            for name, rel in st.marks.items():
                marks[name] = (side, base + rel)
            # segment list: (offset in step, bytes, captured, label)
            segs: list[tuple[int, bytes, bool, str | None]] = []
            pos = 0
            for k, seg in enumerate(st.segments):
                pieces = [seg[j:j + MSS] for j in range(0, len(seg), MSS)] or [b""]
                for piece in pieces:
                    segs.append((pos, piece, k not in st.lost, None))
                    pos += len(piece)
            if self.one_byte:
                segs = [(o + j, b[j:j + 1], cap, lab) for (o, b, cap, lab) in segs for j in range(len(b))]
            if self.reorder:
                for j in range(0, len(segs) - 1, 2):
                    segs[j], segs[j + 1] = segs[j + 1], segs[j]
            if self.retransmit:
                out = []
                for o, b, cap, lab in segs:
                    out.append((o, b, cap, lab))
                    rtx_count += 1
                    if rtx_count % 2 == 0 and len(b) > 1:   # partial overlap: the second half again
                        h = len(b) // 2
                        out.append((o + h, b[h:], cap, "retransmission"))
                    else:
                        out.append((o, b, cap, "retransmission"))
                segs = out
            if st.conflict is not None:
                k, repl = st.conflict
                o, b, cap, lab = segs[k]
                assert len(repl) == len(b)
                segs.insert(k + 1, (o, repl, cap, "conflict"))
            for j, (o, b, cap, lab) in enumerate(segs):
                if j:
                    t += 50_000
                put(side, "PA", b, base + o, label=lab, captured=cap, ttl=st.ttl)
            if st.resend_ms is not None:
                if hole[side] is None:
                    hole[side] = nxt[side]
                sent_at = t
                for wait in st.resend_ms:
                    t = sent_at + int(wait * 1_000_000)
                    for j, (o, b, cap, _lab) in enumerate(segs):
                        if j:
                            t += 50_000
                        put(side, "PA", b, base + o, label="retransmission", captured=cap, ttl=st.ttl)
            sent[side] += len(st.data)
            nxt[side] = (isn[side] + 1 + sent[side]) % MOD
            last = i == len(self.steps) - 1
            receiver = "S" if side == "C" else "C"
            if st.acked and not (last and self.close and self.close[0] == "rst" and self.close[1] == receiver):
                t += 1_000_000
                put(receiver, "A")
            prev_side = side

        if self.close:
            kind, closer = self.close
            other = "S" if closer == "C" else "C"
            t += 5_000_000
            if kind == "rst":
                put(closer, "RA")
            else:
                if closer not in finned:
                    put(closer, "FA")
                    nxt[closer] = (nxt[closer] + 1) % MOD
                    t += 10_000_000
                if other not in finned:
                    put(other, "FA")
                    nxt[other] = (nxt[other] + 1) % MOD
                    t += 150_000
                put(closer, "A")
        if self.only_side:
            pkts = [p for p in pkts if p.side == self.only_side]
        return pkts, marks


class LateAck(Conv):
    """A conversation whose step tagged ``tag``, not acknowledged at once (``acked=False``), is
    acknowledged by a pure ACK of the other side ``ack_after_ms`` after one of its segments
    (``segment``: -1 its last, 0 its first), labelled ``late-ack``: a capture on the sender's side
    of a long path. ``ack_after_ms`` None: no such ACK (the conversation as ``Conv`` builds it)."""

    def __init__(self, *, tag: str, ack_after_ms: float | None, segment: int = -1, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.tag, self.ack_after_ms, self.segment = tag, ack_after_ms, segment

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        if self.ack_after_ms is None:
            return pkts, marks
        side, off = marks[self.tag]
        by = "S" if side == "C" else "C"
        acked = [p for p in pkts if p.side == side and p.payload and p.off is not None and p.off >= off][self.segment]
        ts = acked.ts_ns + int(self.ack_after_ms * 1_000_000)
        prev = [p for p in pkts if p.side == by and p.ts_ns <= ts][-1]
        ack = Pkt(ts, conv_index, by, "A", (prev.seq + len(prev.payload)) % MOD,
                  (acked.seq + len(acked.payload)) % MOD, label="late-ack")
        at = max(i for i, p in enumerate(pkts) if p.ts_ns <= ts) + 1
        pkts.insert(at, ack)
        return pkts, marks


# --------------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------------

@dataclass
class Expect:
    outcome: str
    caused_by: str
    reason: str
    offered: str
    requested: bool = False
    reply_code: int | None = None
    # (code, side, ref): ref is a mark/tag name, "first_frame", "label:<record label>", or
    # "label:fin:C" / "label:fin:S" (that side's first FIN)
    findings: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class Capture:
    name: str
    description: str
    convs: list[tuple[Conv, Expect]]
    link: str = "ether"
    ipv: int = 4
    fmt: str = "pcap"
    gz: bool = False
    snaplen: int = 262144
    fragment: str | None = None       # tag of a step whose (single) segment is sent as 3 IPv4 fragments
    #: tunnel links: outer IP packets longer than this underlay MTU are sent as IP fragments,
    #: the last fragment first when ``underlay_reversed`` (0: none is fragmented)
    underlay_mtu: int = 0
    underlay_reversed: bool = False
    ns_jitter: bool = False
    #: two taps merged by time, one per direction: every client packet's timestamp moves by
    #: this much (positive: the client tap's clock runs that far ahead of the server tap's;
    #: negative: behind, so the client's packets are stamped earlier and come *ahead* of the
    #: server's in the file, the sense of the ``*-client-ahead`` captures),
    #: and the records are written in timestamp order (each tap keeps its own order), as
    #: ``mergecap`` merges them
    client_skew_ms: float = 0.0
    #: conversations that overlap in time (a later one's negative ``start_offset_ms`` starts it
    #: before the one before it ended), the records written in timestamp order, as a capture of
    #: a busy relay has them
    merged: bool = False
    #: the IPv4 TTL (IPv6 hop limit) of the client's and the server's packets as captured (a
    #: packet's own ``ttl`` overrides it)
    ttl: tuple[int, int] = (64, 52)


@dataclass
class Frame:
    ts_ns: int
    data: bytes          # full frame as on the wire
    iface: int
    linktype: int
    pkt: Pkt | None      # the TCP segment this record completes (None for leading fragments)
    hdr_len: int = 0     # bytes before the TCP payload


def _tcp(p: Pkt, ports: tuple[int, int]) -> Packet:
    cport, sport = ports
    src, dst = (cport, sport) if p.side == "C" else (sport, cport)
    opts = [("MSS", MSS), ("SAckOK", b""), ("NOP", None), ("WScale", 7)] if p.syn_options else []
    win = 64240 if p.syn_options else p.window if p.window is not None else (502 if p.side == "C" else 509)
    seg = TCP(sport=src, dport=dst, seq=p.seq, ack=p.ack, flags=p.flags, window=win, options=opts)
    if p.payload:
        seg = seg / Raw(p.payload)
    return seg


def _link(kind: str, side: str, l3: Packet, ipv: int) -> Packet | bytes:
    smac, dmac = (CLIENT_MAC, SERVER_MAC) if side == "C" else (SERVER_MAC, CLIENT_MAC)
    ethertype = 0x0800 if ipv == 4 else 0x86DD
    if kind == "ether":
        return Ether(src=smac, dst=dmac, type=ethertype) / l3
    if kind == "vlan":
        return Ether(src=smac, dst=dmac) / Dot1Q(vlan=100) / l3
    if kind == "qinq":
        return Ether(src=smac, dst=dmac) / Dot1AD(vlan=200) / Dot1Q(vlan=100) / l3
    if kind == "sll":    # captured on the client: its packets are outgoing (4), the server's to us (0)
        return CookedLinux(pkttype=4 if side == "C" else 0, lladdrtype=1, lladdrlen=6,
                           src=bytes.fromhex(smac.replace(":", "")) + b"\0\0", proto=ethertype) / l3
    if kind == "sll2":
        return CookedLinuxV2(proto=ethertype, ifindex=2, lladdrtype=1, pkttype=4 if side == "C" else 0,
                             lladdrlen=6, src=bytes.fromhex(smac.replace(":", "")) + b"\0\0") / l3
    if kind == "null":
        return Loopback(type=2 if ipv == 4 else 30) / l3
    inner_eth = Ether(src=smac, dst=dmac, type=ethertype)
    there, back = (TUNNEL_A4, TUNNEL_B4) if side == "C" else (TUNNEL_B4, TUNNEL_A4)
    mirror = Ether(src=SWITCH_MAC, dst=ANALYZER_MAC) / IP(src=TUNNEL_A4, dst=TUNNEL_B4, ttl=63)
    if kind == "gre":
        return Ether(src=smac, dst=dmac) / IP(src=there, dst=back, ttl=63) / GRE() / l3
    if kind == "gre-key":     # RFC 2890: checksum, key and sequence number present
        return (Ether(src=smac, dst=dmac) / IP(src=there, dst=back, ttl=63)
                / GRE(chksum_present=1, key_present=1, key=7, seqnum_present=1) / l3)
    if kind == "gre6":
        t6, b6 = (TUNNEL_A6, TUNNEL_B6) if side == "C" else (TUNNEL_B6, TUNNEL_A6)
        return Ether(src=smac, dst=dmac) / IPv6(src=t6, dst=b6, hlim=63) / GRE() / l3
    if kind == "ipip":        # IPv4 in IPv4 (protocol 4) or IPv6 in IPv4 (6in4, protocol 41)
        return Ether(src=smac, dst=dmac) / IP(src=there, dst=back, ttl=63) / l3
    if kind == "erspan2":
        return (mirror / GRE(seqnum_present=1, proto=0x88BE)
                / ERSPAN_II(session_id=7, vlan=100) / inner_eth / l3)
    if kind == "erspan3":
        return (mirror / GRE(seqnum_present=1, proto=0x22EB)
                / ERSPAN_III(session_id=7, vlan=100) / inner_eth / l3)
    if kind == "vxlan":
        return mirror / UDP(sport=51000, dport=4789) / VXLAN(vni=42) / inner_eth / l3
    if kind == "vxlan6":      # the mirror session's underlay is IPv6
        return (Ether(src=SWITCH_MAC, dst=ANALYZER_MAC) / IPv6(src=TUNNEL_A6, dst=TUNNEL_B6, hlim=63)
                / UDP(sport=51000, dport=4789) / VXLAN(vni=42) / inner_eth / l3)
    if kind == "geneve":
        return mirror / UDP(sport=51000, dport=6081) / GENEVE(vni=42, proto=0x6558) / inner_eth / l3
    if kind == "mpls":
        return (Ether(src=smac, dst=dmac, type=0x8847) / MPLS(label=1000, s=0, ttl=63)
                / MPLS(label=2000, s=1, ttl=63) / l3)
    if kind == "pppoe":
        return (Ether(src=smac, dst=dmac) / PPPoE(sessionid=0x1234)
                / PPP(proto=0x0021 if ipv == 4 else 0x0057) / l3)
    if kind == "pflog":       # pf's log device on OpenBSD: rule 3 passed it, logged on em0
        return PFLog(addrfamily=2 if ipv == 4 else 24, action=0, reason=0, iface="em0", ruleset="",
                     rulenumber=3, subrulenumber=0, direction=1 if side == "C" else 2) / l3
    if kind == "nflog":       # Linux NFLOG (linktype 239), TLVs little-endian as on x86
        pkt = bytes(l3)
        hdr = struct.pack("<HH", 8, 1) + struct.pack("!HBx", ethertype, 3)   # NFULA_PACKET_HDR
        prefix = b"smtp\0"
        tlv_prefix = struct.pack("<HH", 4 + len(prefix), 10) + prefix
        tlv_prefix += b"\0" * (-len(tlv_prefix) % 4)
        tlv_payload = struct.pack("<HH", 4 + len(pkt), 9) + pkt
        return bytes([2 if ipv == 4 else 10, 0]) + struct.pack("!H", 0) + hdr + tlv_prefix + tlv_payload
    if kind == "raw":
        return l3
    pkt = bytes(l3)
    ppp_proto = struct.pack("!H", 0x0021 if ipv == 4 else 0x0057)
    if kind in ("ppp", "ppp-hdlc"):        # a dial-up or serial link: RFC 1662 framing bytes
        return b"\xff\x03" + ppp_proto + pkt
    if kind == "ppp-dir":      # pppd's capture with the direction byte (1: sent by this host)
        return bytes([1 if side == "C" else 0]) + b"\xff\x03" + ppp_proto + pkt
    if kind == "chdlc":        # a Cisco serial interface: address (unicast), control, type
        return b"\x0f\x00" + struct.pack("!H", ethertype) + pkt
    if kind == "enc":          # OpenBSD enc0: the packets an IPsec SA carries, before encryption
        return struct.pack("<III", 2 if ipv == 4 else 24, 0x1000, 0x0400) + pkt
    if kind == "ipnet":        # Solaris 11 ipnet (snoop -I net0): 24-byte header, family 2/26
        return struct.pack("!BBHIIIII", 1, 2 if ipv == 4 else 26, 0, len(pkt), 2, 0, 0, 0) + pkt
    if kind == "pktap":        # macOS `tcpdump -i any`: a 108-byte PKTAP header, Ethernet inside
        hdr = struct.pack("<III24sIIIIi", 108, 1, 1, b"en0", 0, 2 if ipv == 4 else 30, 0, 0, 321)
        hdr += b"Postfix".ljust(20, b"\0")
        hdr += struct.pack("<HHi", 6, 0, 321).ljust(32, b"\0")
        return hdr[:108].ljust(108, b"\0") + bytes(Ether(src=smac, dst=dmac, type=ethertype) / l3)
    if kind == "erf":          # an Endace DAG card: ERF Ethernet record, 2 bytes of padding
        eth = bytes(Ether(src=smac, dst=dmac, type=ethertype) / l3)
        # timestamp (filled in by the caller), type 2, flags 0x04 (varying length), record
        # length, loss counter, wire length
        return bytes(8) + struct.pack("!BBHHH", 2, 0x04, 16 + 2 + len(eth), 0, len(eth)) + b"\0\0" + eth
    raise ValueError(kind)


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def underlay_fragments(frame: bytes, mtu: int, ident: int) -> list[bytes]:
    """An Ethernet frame whose IPv4 (without options) or IPv6 packet is longer than ``mtu``: its
    IP fragments, in order (IPv6: a fragment header with identification ``ident`` after the fixed
    header), as the tunnel endpoint sends them over an underlay of that MTU; else [frame]."""
    eth, et = frame[:14], frame[12:14]
    if et == b"\x08\x00":
        hdr, payload = frame[14:34], frame[34:]
        if 20 + len(payload) <= mtu:
            return [frame]
        size = (mtu - 20) // 8 * 8
        out = []
        for off in range(0, len(payload), size):
            chunk = payload[off:off + size]
            ff = off >> 3 | (0x2000 if off + size < len(payload) else 0)
            h = hdr[:2] + struct.pack("!HHH", 20 + len(chunk), ident & 0xFFFF, ff) + hdr[8:10] + b"\0\0" + hdr[12:]
            h = h[:10] + struct.pack("!H", _ip_checksum(h)) + h[12:]
            out.append(eth + h + chunk)
        return out
    assert et == b"\x86\xdd", et
    hdr, payload = frame[14:54], frame[54:]
    if 40 + len(payload) <= mtu:
        return [frame]
    size = (mtu - 48) // 8 * 8
    out = []
    for off in range(0, len(payload), size):
        chunk = payload[off:off + size]
        more = 1 if off + size < len(payload) else 0
        h = hdr[:4] + struct.pack("!HB", 8 + len(chunk), 44) + hdr[7:]
        out.append(eth + h + struct.pack("!BxHI", hdr[6], off | more, ident) + chunk)
    return out


def build_frames(cap: Capture, pkts: list[Pkt], frag_pkt: Pkt | None) -> list[Frame]:
    frames: list[Frame] = []
    ip_id = {"C": 0x3000, "S": 0x7000}
    for p in pkts:
        if not p.captured:
            ip_id[p.side] += 1
            continue
        conv = cap.convs[p.conv][0]
        seg = _tcp(p, (conv.cport, conv.sport))
        c_ip, s_ip = (CLIENT_IP4, SERVER_IP4) if cap.ipv == 4 else (CLIENT_IP6, SERVER_IP6)
        src, dst = (c_ip, s_ip) if p.side == "C" else (s_ip, c_ip)
        ttl = p.ttl if p.ttl is not None else cap.ttl[0 if p.side == "C" else 1]
        if cap.ipv == 4:
            l3: Packet = IP(src=src, dst=dst, ttl=ttl, id=ip_id[p.side] & 0xFFFF, flags="DF") / seg
        else:
            l3 = (IPv6(src=src, dst=dst, hlim=ttl, fl=0x12345 if p.side == "C" else 0x54321)
                  / IPv6ExtHdrHopByHop(options=[]) / IPv6ExtHdrDestOpt(options=[]) / seg)
        ip_id[p.side] += 1
        n = len(frames)
        kind = cap.link if cap.link != "multi" else ("ether" if n % 2 == 0 else "raw")
        iface = 0 if cap.link != "multi" else n % 2
        if p is frag_pkt:
            l3.flags = 0
            whole = bytes(l3)
            tcp_len = len(whole) - 20
            fsize = -(-tcp_len // 3 // 8) * 8 if tcp_len > 24 else 8
            frags = ip_fragment(IP(whole), fragsize=fsize)
            assert len(frags) == 3, len(frags)
            for k, fr in enumerate(frags):
                data = bytes(_link(kind, p.side, fr, cap.ipv))
                last = k == len(frags) - 1
                frames.append(Frame(p.ts_ns + k * 20_000, data, iface, LINKTYPES[kind],
                                    p if last else None, len(data) - len(p.payload) if last else 0))
            continue
        data = bytes(_link(kind, p.side, l3, cap.ipv))
        if kind == "erf":      # the record's own timestamp, which Wireshark shows: seconds in the
            # high 32 bits, a binary fraction in the low ones, little-endian
            sec, ns = divmod(p.ts_ns, 10**9)
            data = struct.pack("<Q", (sec << 32) | (ns << 32) // 10**9) + data[8:]
        parts = underlay_fragments(data, cap.underlay_mtu, 0x5000 + len(frames)) if cap.underlay_mtu else [data]
        if len(parts) > 1:
            if cap.underlay_reversed:
                parts.reverse()
            for k, part in enumerate(parts):
                last = k == len(parts) - 1
                frames.append(Frame(p.ts_ns + k * 20_000, part, iface, LINKTYPES[kind], p if last else None,
                                    len(part) - len(p.payload) if last else 0))
            continue
        frames.append(Frame(p.ts_ns, data, iface, LINKTYPES[kind], p, len(data) - len(p.payload)))
    if cap.ns_jitter:
        for k, fr in enumerate(frames):
            fr.ts_ns += (k * 7919 + 137) % 1000
    return frames


# --------------------------------------------------------------------------------------------------
# File formats (written by hand: exact control over byte order, resolution and pcapng blocks)
# --------------------------------------------------------------------------------------------------

def write_pcap(frames: list[Frame], linktype: int, snaplen: int, *, nano: bool = False, big: bool = False) -> bytes:
    e = ">" if big else "<"
    out = io.BytesIO()
    out.write(struct.pack(e + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))
    for fr in frames:
        sec, ns = divmod(fr.ts_ns, 1_000_000_000)
        frac = ns if nano else ns // 1000
        cap = fr.data[:snaplen]
        out.write(struct.pack(e + "IIII", sec, frac, len(cap), len(fr.data)))
        out.write(cap)
    return out.getvalue()


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _opt(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def write_pcapng(frames: list[Frame], ifaces: list[tuple[int, int]], snaplen: int, *, spb: bool = False) -> bytes:
    """``ifaces``: (linktype, tsresol exponent) per interface."""
    shb_opts = _opt(4, b"pcapsmtp captures/generate.py") + _opt(0, b"")
    out = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts)]
    for linktype, res in ifaces:
        opts = (_opt(9, bytes([res])) if res != 6 else b"") + _opt(0, b"")
        out.append(_block(1, struct.pack("<HHI", linktype, 0, snaplen) + opts))
    for fr in frames:
        cap = fr.data[:snaplen]
        if spb:
            out.append(_block(3, struct.pack("<I", len(fr.data)) + cap))
            continue
        res = ifaces[fr.iface][1]
        ticks = fr.ts_ns // (10 ** (9 - res))
        out.append(_block(6, struct.pack("<IIIII", fr.iface, ticks >> 32, ticks & 0xFFFFFFFF, len(cap),
                                         len(fr.data)) + cap))
    return b"".join(out)


def serialize(cap: Capture, frames: list[Frame]) -> bytes:
    linktype = LINKTYPES[cap.link] if cap.link != "multi" else 1
    if cap.fmt == "pcap":
        raw = write_pcap(frames, linktype, cap.snaplen)
    elif cap.fmt == "pcap-ns":
        raw = write_pcap(frames, linktype, cap.snaplen, nano=True)
    elif cap.fmt == "pcap-be":
        raw = write_pcap(frames, linktype, cap.snaplen, big=True)
    elif cap.fmt == "pcapng":
        raw = write_pcapng(frames, [(linktype, 6)], cap.snaplen)
    elif cap.fmt == "pcapng-multi":
        raw = write_pcapng(frames, [(1, 6), (101, 9)], cap.snaplen)
    elif cap.fmt == "pcapng-spb":
        raw = write_pcapng(frames, [(linktype, 6)], cap.snaplen, spb=True)
    else:
        raise ValueError(cap.fmt)
    if cap.gz:
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
            gz.write(raw)
        raw = buf.getvalue()
    return raw


# --------------------------------------------------------------------------------------------------
# Rendering one capture: packets -> frames -> file + expected entry
# --------------------------------------------------------------------------------------------------

FRAME_KEYS = ("banner", "greeting", "starttls", "starttls_reply", "client_hello", "server_hello", "alert")


def render(cap: Capture) -> tuple[bytes, dict[str, Any]]:
    pkts: list[Pkt] = []
    conv_marks: list[dict[str, tuple[str, int]]] = []
    tag_ranges: list[dict[str, tuple[str, int, int]]] = []
    t = T0_NS
    for ci, (conv, _exp) in enumerate(cap.convs):
        t += int(conv.start_offset_ms * 1_000_000)
        ps, marks = conv.emit(ci, t)
        pkts += ps
        conv_marks.append(marks)
        ranges: dict[str, tuple[str, int, int]] = {}
        off = {"C": 0, "S": 0}
        for st in conv.steps:
            if st.tag:
                ranges[st.tag] = (st.side, off[st.side], off[st.side] + len(st.data))
            off[st.side] += len(st.data)
        tag_ranges.append(ranges)
        t = (ps[-1].ts_ns if ps else t) + 1_000_000
    if cap.client_skew_ms or cap.merged:
        skew = int(cap.client_skew_ms * 1_000_000)
        pkts = sorted((dataclasses.replace(p, ts_ns=p.ts_ns + skew) if p.side == "C" else p
                       for p in pkts), key=lambda p: p.ts_ns)
    frag_pkt = None
    if cap.fragment:
        side, start = conv_marks[0][cap.fragment]
        frag_pkt = next(p for p in pkts if p.conv == 0 and p.side == side and p.off == start)
    frames = build_frames(cap, pkts, frag_pkt)

    # byte -> first frame; label -> frame; snaplen cuts
    first: dict[tuple[int, str, int], int] = {}
    labels: dict[tuple[int, str], list[int]] = {}
    cuts: dict[int, list[int]] = {}
    conv_frames: dict[int, list[int]] = {}
    for num, fr in enumerate(frames, 1):
        p = fr.pkt
        if p is None:
            continue
        conv_frames.setdefault(p.conv, []).append(num)
        if p.label:
            labels.setdefault((p.conv, p.label), []).append(num)
        if "F" in p.flags:
            labels.setdefault((p.conv, "fin:" + p.side), []).append(num)
        if p.payload:
            got = max(0, min(len(fr.data), cap.snaplen) - fr.hdr_len)
            if got < len(p.payload):
                cuts.setdefault(p.conv, []).append(num)
            assert p.off is not None
            for k in range(min(got, len(p.payload))):
                first.setdefault((p.conv, p.side, p.off + k), num)
    # tshark's tcp.analysis.lost_segment: a segment of a side (not a reset) whose sequence number
    # lies past that side's next sequence number as far as its earlier records in the file go
    lost_seg: dict[tuple[int, str], list[int]] = {}
    nxt_seq: dict[tuple[int, str], int] = {}
    for num, fr in enumerate(frames, 1):
        p = fr.pkt
        if p is None:
            continue
        k = (p.conv, p.side)
        if k in nxt_seq and "R" not in p.flags and 0 < (p.seq - nxt_seq[k]) % MOD < 1 << 31:
            lost_seg.setdefault(k, []).append(num)
        end = (p.seq + len(p.payload) + ("S" in p.flags) + ("F" in p.flags)) % MOD
        if k not in nxt_seq or 0 < (end - nxt_seq[k]) % MOD < 1 << 31:
            nxt_seq[k] = end
    # leading fragments belong to the same conversation as their last fragment
    for num, fr in enumerate(frames, 1):
        if fr.pkt is None:
            nxt = next(f.pkt for f in frames[num:] if f.pkt is not None)
            conv_frames.setdefault(nxt.conv, []).append(num)

    conversations = []
    no_payload: list[int] = []
    for ci, (conv, exp) in enumerate(cap.convs):
        if exp.reason == "no-payload":
            # a TCP connection without a byte of payload: a tcp.stream, but no SMTP conversation
            no_payload.append(ci)
            continue
        marks = conv_marks[ci]

        def frame_of(ref: str, ci: int = ci, marks: dict[str, tuple[str, int]] = marks) -> int | None:
            if ref == "first_frame":
                return min(conv_frames[ci])
            if ref.startswith("label:"):
                return labels[(ci, ref[6:])][0]
            if ref.startswith("lost_segment:"):         # lost_segment:S (the first), :S:2 ...
                parts = ref.split(":")
                return lost_seg[(ci, parts[1])][int(parts[2]) - 1 if len(parts) > 2 else 0]
            if ref not in marks:
                return None
            side, off = marks[ref]
            return first.get((ci, side, off))

        ehlo_frames: list[int] = []
        if "ehlo_reply" in tag_ranges[ci]:
            side, a, b = tag_ranges[ci]["ehlo_reply"]
            ehlo_frames = sorted({first[(ci, side, k)] for k in range(a, b) if (ci, side, k) in first})
        findings = []
        for code, side, ref in exp.findings:
            if ref == "cuts":
                findings += [{"code": code, "side": side, "frame": n} for n in cuts.get(ci, [])]
                continue
            if ref == "first_cut":
                findings.append({"code": code, "side": side, "frame": cuts[ci][0]})
                continue
            f = frame_of(ref)
            assert f is not None, (cap.name, code, ref)
            findings.append({"code": code, "side": side, "frame": f})
        frames_d: dict[str, Any] = {k: frame_of(k) for k in FRAME_KEYS}
        frames_d["ehlo_reply"] = ehlo_frames
        frames_d["first_frame"] = min(conv_frames[ci])
        frames_d = {k: frames_d[k] for k in ("banner", "greeting", "ehlo_reply", "starttls", "starttls_reply",
                                             "client_hello", "server_hello", "alert", "first_frame")}
        c_ip, s_ip = (CLIENT_IP4, SERVER_IP4) if cap.ipv == 4 else (CLIENT_IP6, SERVER_IP6)
        fmt_ep = (lambda ip, port: f"[{ip}]:{port}") if cap.ipv == 6 else (lambda ip, port: f"{ip}:{port}")
        conversations.append({
            "stream": ci,
            "client": fmt_ep(c_ip, conv.cport),
            "server": fmt_ep(s_ip, conv.sport),
            "outcome": exp.outcome,
            "caused_by": exp.caused_by,
            "reason": exp.reason,
            "starttls_offered": exp.offered,
            "starttls_requested": exp.requested,
            "starttls_reply_code": exp.reply_code,
            "findings": sorted(findings, key=lambda f: (f["frame"], f["code"])),
            "frames": frames_d,
        })
    entry = {"description": cap.description, "frame_count": len(frames), "conversations": conversations}
    if no_payload:
        entry["no_payload_streams"] = no_payload
    return serialize(cap, frames), entry


# --------------------------------------------------------------------------------------------------
# TLS records (bytes built by hand; the certificates are real, Ed25519 from fixed seeds)
# --------------------------------------------------------------------------------------------------

def u8(n: int) -> bytes:
    return n.to_bytes(1, "big")


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def u24(n: int) -> bytes:
    return n.to_bytes(3, "big")


def record(ctype: int, body: bytes, version: int = 0x0303) -> bytes:
    return u8(ctype) + u16(version) + u16(len(body)) + body


def handshake(htype: int, body: bytes) -> bytes:
    return u8(htype) + u24(len(body)) + body


def ext(etype: int, data: bytes) -> bytes:
    return u16(etype) + u16(len(data)) + data


def x25519_pub(label: str) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    key = X25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _ed_key(label: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


_CERTS: dict[tuple[str, bool], bytes] = {}


def certificate(name: str, *, self_signed: bool = False) -> bytes:
    """DER certificate for ``name``: issued by the fixed test CA, or self-signed; valid 2025-2030."""
    key = (name, self_signed)
    if key in _CERTS:
        return _CERTS[key]
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID
    leaf_key = _ed_key("pcapsmtp leaf " + name)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pcapsmtp test"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    if self_signed:
        issuer, signer = subject, leaf_key
    else:
        issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pcapsmtp test"),
                            x509.NameAttribute(NameOID.COMMON_NAME, "pcapsmtp Test CA")])
        signer = _ed_key("pcapsmtp test CA")
    serial = int.from_bytes(hashlib.sha256(("serial " + name + str(self_signed)).encode()).digest()[:16], "big") >> 1
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer)
            .public_key(leaf_key.public_key())
            .serial_number(serial)
            .not_valid_before(datetime(2025, 1, 1, tzinfo=timezone.utc))
            .not_valid_after(datetime(2030, 1, 1, tzinfo=timezone.utc))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(signer, None))
    _CERTS[key] = cert.public_bytes(Encoding.DER)
    return _CERTS[key]


def client_hello(label: str, sni: str | None, *, tls13: bool = False) -> bytes:
    rnd = det(label + " client random", 32)
    sid = det(label + " session id", 32)
    suites = ([0x1301, 0x1302, 0x1303] if tls13 else []) + [0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8,
                                                           0x009C, 0x002F]
    exts = b""
    if sni:
        name = sni.encode()
        exts += ext(0, u16(len(name) + 3) + u8(0) + u16(len(name)) + name)
    exts += ext(10, u16(4) + u16(0x001D) + u16(0x0017))
    exts += ext(11, u8(1) + u8(0))
    algs = [0x0807, 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501]
    exts += ext(13, u16(2 * len(algs)) + b"".join(u16(a) for a in algs))
    exts += ext(23, b"") + ext(0xFF01, u8(0))
    if tls13:
        exts += ext(43, u8(4) + u16(0x0304) + u16(0x0303))
        exts += ext(45, u8(1) + u8(1))
        share = x25519_pub(label + " client share")
        exts += ext(51, u16(36) + u16(0x001D) + u16(32) + share)
    body = (u16(0x0303) + rnd + u8(32) + sid + u16(2 * len(suites)) + b"".join(u16(s) for s in suites)
            + u8(1) + u8(0) + u16(len(exts)) + exts)
    return record(22, handshake(1, body), version=0x0301)


def server_flight_tls12(label: str, name: str, *, self_signed: bool = False) -> tuple[bytes, int]:
    """ServerHello, Certificate, ServerKeyExchange (really signed), ServerHelloDone; and the SH length."""
    srnd = det(label + " server random", 32)
    exts = ext(0xFF01, u8(0)) + ext(11, u8(1) + u8(0)) + ext(23, b"")
    sh = record(22, handshake(2, u16(0x0303) + srnd + u8(32) + det(label + " server session", 32)
                              + u16(0xC02B) + u8(0) + u16(len(exts)) + exts))
    certs = [certificate(name, self_signed=self_signed)]
    if not self_signed:
        certs.append(certificate("pcapsmtp Test CA", self_signed=True))
    chain = b"".join(u24(len(c)) + c for c in certs)
    cert = record(22, handshake(11, u24(len(chain)) + chain))
    params = u8(3) + u16(0x001D) + u8(32) + x25519_pub(label + " server share")
    crnd = det(label + " client random", 32)
    sig = _ed_key("pcapsmtp leaf " + name).sign(crnd + srnd + params)
    ske = record(22, handshake(12, params + u16(0x0807) + u16(len(sig)) + sig))
    shd = record(22, handshake(14, b""))
    return sh + cert + ske + shd, len(sh)


def client_finish_tls12(label: str) -> bytes:
    cke = record(22, handshake(16, u8(32) + x25519_pub(label + " client share")))
    return cke + record(20, b"\x01") + record(22, det(label + " client finished", 40))


def server_finish_tls12(label: str) -> bytes:
    return record(20, b"\x01") + record(22, det(label + " server finished", 40))


def app_data(label: str, plaintext_len: int) -> bytes:
    """An AES-GCM TLS 1.2 record of that plaintext: 8 explicit nonce bytes + ciphertext + 16 tag bytes."""
    return record(23, det(label, plaintext_len + 24))


def close_notify(label: str) -> bytes:
    return record(21, det(label, 26))


def implicit_465(conv: Conv) -> Conv:
    """implicit-tls-465.pcap's dialogue: TLS 1.2 from the first byte, SMTP inside."""
    flight, _ = server_flight_tls12("implicit", "mx.example.com")
    conv.c(client_hello("implicit", "mx.example.com"), tag="client_hello").s(flight, tag="server_hello")
    conv.c(client_finish_tls12("implicit")).s(server_finish_tls12("implicit"))
    for k, (side, text) in enumerate([("S", BANNER), ("C", EHLO), ("S", EHLO_NO_TLS)] + MAIL_STEPS
                                     + QUIT_STEPS):
        conv.step(side, app_data(f"implicit appdata {k}", len(text)))
    conv.c(close_notify("implicit client close")).s(close_notify("implicit server close"))
    return conv


def alert(desc: int, level: int = 2) -> bytes:
    return record(21, bytes([level, desc]))


def tls12_session(conv: Conv, label: str, sni: str | None, name: str,
                  plaintext: Sequence[tuple[str, bytes]] = ()) -> Conv:
    """ClientHello ... Finished both ways, then ``plaintext`` steps as application data, then close_notify."""
    flight, sh_len = server_flight_tls12(label, name)
    conv.c(client_hello(label, sni), tag="client_hello")
    conv.s(flight, tag="server_hello")
    conv.c(client_finish_tls12(label))
    conv.s(server_finish_tls12(label))
    for k, (side, text) in enumerate(plaintext):
        conv.step(side, app_data(f"{label} appdata {k}", len(text)))
    conv.c(close_notify(label + " client close"))
    conv.s(close_notify(label + " server close"))
    return conv


# --------------------------------------------------------------------------------------------------
# SMTP dialogue pieces
# --------------------------------------------------------------------------------------------------

def lines(*ls: str, eol: bytes = b"\r\n") -> bytes:
    return b"".join(x.encode() + eol for x in ls)


MAIL_STEPS: list[tuple[str, bytes]] = [
    ("C", b"MAIL FROM:<alice@example.org>\r\n"),
    ("S", b"250 2.1.0 Ok\r\n"),
    ("C", b"RCPT TO:<bob@example.com>\r\n"),
    ("S", b"250 2.1.5 Ok\r\n"),
    ("C", b"DATA\r\n"),
    ("S", b"354 End data with <CR><LF>.<CR><LF>\r\n"),
    ("C", b"Subject: test\r\n\r\nThis line travels in the clear.\r\n.\r\n"),
    ("S", b"250 2.0.0 Ok: queued as 4F2A1C3B\r\n"),
]
QUIT_STEPS: list[tuple[str, bytes]] = [("C", b"QUIT\r\n"), ("S", b"221 2.0.0 Bye\r\n")]


def mail_in_clear(conv: Conv, *, quit: bool = True, first_tag: str | None = None) -> Conv:
    for k, (side, data) in enumerate(MAIL_STEPS):
        conv.step(side, data, tag=first_tag if k == 0 else None)
    if quit:
        conv.extend(QUIT_STEPS)
    return conv


BANNER = b"220 mx.example.com ESMTP Postfix\r\n"
EHLO = b"EHLO client.example.org\r\n"
EHLO_OK = lines("250-mx.example.com", "250-PIPELINING", "250-SIZE 10240000", "250-STARTTLS",
                "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250 SMTPUTF8")
EHLO_NO_TLS = lines("250-mx.example.com", "250-PIPELINING", "250-SIZE 10240000",
                    "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250 SMTPUTF8")
STARTTLS = b"STARTTLS\r\n"
READY = b"220 2.0.0 Ready to start TLS\r\n"


def opening(conv: Conv, ehlo_reply: bytes | Sequence[bytes] = EHLO_OK, *, banner: bytes = BANNER,
            ehlo: bytes = EHLO, **reply_kw: Any) -> Conv:
    conv.s(banner, tag="banner")
    conv.c(ehlo, tag="greeting")
    conv.s(ehlo_reply, tag="ehlo_reply", **reply_kw)
    return conv


def starttls_ok(conv: Conv, label: str, sni: str | None = "mx.example.com", name: str = "mx.example.com",
                *, command: bytes = STARTTLS, reply: bytes = READY, cmd_marks: dict[str, bytes] | None = None,
                reply_marks: dict[str, bytes] | None = None) -> Conv:
    conv.c(command, tag="starttls", marks=cmd_marks)
    conv.s(reply, tag="starttls_reply", marks=reply_marks)
    encrypted = [("C", EHLO), ("S", EHLO_NO_TLS)] + MAIL_STEPS + QUIT_STEPS
    return tls12_session(conv, label, sni, name, encrypted)


# --------------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------------

SEED_BANNER = b"220 mail.domain1.com ESMTP Service ready\r\n"
SEED_REPLY = [lines("250-STARTTLS", "250-mail.domain1.com"),
              lines("250-8BITMIME", "250-PIPELINING", "250-HELP", "250-DELIVERBY 300", "250 SIZE 30000000")]
SEED_EXPECT = Expect("plaintext", "server", "starttls-misplaced", "misplaced",
                     findings=[("ehlo-keyword-as-domain", "server", "ehlo_reply")])
DID_NOT_REQUEST = Expect("plaintext", "client", "client-did-not-request", "valid")
NOT_OFFERED = Expect("plaintext", "server", "starttls-not-offered", "absent")
ALERT_SERVER_EXPECT = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                             [("tls-alert", "server", "alert")])
TLS_OK = Expect("tls", "none", "tls-established", "valid", True, 220)


def seed_conv(**kw: Any) -> Conv:
    conv = Conv(**kw)
    opening(conv, SEED_REPLY, banner=SEED_BANNER, ehlo=b"EHLO ESA.com\r\n")
    return mail_in_clear(conv)


def did_not_request_conv(**kw: Any) -> Conv:
    return mail_in_clear(opening(Conv(**kw)))


def not_offered_conv(**kw: Any) -> Conv:
    return mail_in_clear(opening(Conv(**kw), EHLO_NO_TLS))


def tls_alert_server_conv(**kw: Any) -> Conv:
    conv = opening(Conv(close=("fin", "S"), **kw))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"alert-server {kw.get('cport')}", "mx.example.com"), tag="client_hello")
    conv.s(alert(40), tag="alert")
    return conv


def mask_banner(banner: bytes) -> bytes:
    text = banner[4:-2]
    return banner[:4] + bytes(ch if ch in b"20" else ord("*") for ch in text) + b"\r\n"


MASK_BANNER_ORIG = b"220 mx1.example.net ESMTP Sendmail 8.14.4/8.14.4; Thu, 1 Jan 2026 10:00:00 GMT\r\n"
MASKED_REPLY = lines("250-mx1.example.net Hello client.example.org [192.0.2.10], pleased to meet you",
                     "250-ENHANCEDSTATUSCODES", "250-PIPELINING", "250-8BITMIME", "250-SIZE 10240000",
                     "250-DSN", "250-XXXXXXXA", "250 HELP")
MASKED_EXPECT = Expect("plaintext", "middlebox", "starttls-masked", "masked",
                       findings=[("banner-masked", "middlebox", "banner"),
                                 ("starttls-masked", "middlebox", "masked_line")])


def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    add = caps.append

    # 1 -- the Cisco ESA note, verbatim
    add(Capture("seed-starttls-first-line.pcap",
                "Cisco ESA note 212587: 250-STARTTLS on the first EHLO reply line (the domain slot), reply in "
                "2 segments; the client sends the mail in clear", [(seed_conv(), SEED_EXPECT)]))

    # 2 -- the same server, compliant, with a full TLS 1.2 handshake
    c = Conv(cport=40313)
    opening(c, [lines("250-mail.domain1.com", "250-8BITMIME", "250-PIPELINING"),
                lines("250-HELP", "250-DELIVERBY 300", "250-SIZE 30000000", "250 STARTTLS")],
            banner=SEED_BANNER, ehlo=b"EHLO ESA.com\r\n")
    starttls_ok(c, "compliant-twin", "mail.domain1.com", "mail.domain1.com")
    add(Capture("seed-compliant-twin.pcap",
                "the seed's server with the domain line first and STARTTLS last; STARTTLS, 220, TLS 1.2 "
                "handshake (real Ed25519 certificate for mail.domain1.com), application data, close_notify",
                [(c, TLS_OK)]))

    add(Capture("client-did-not-request.pcap", "STARTTLS validly offered; the client sends the mail in clear",
                [(did_not_request_conv(cport=40314), DID_NOT_REQUEST)]))

    c = Conv(cport=40315)
    c.s(BANNER, tag="banner").c(b"HELO client.example.org\r\n", tag="greeting")
    c.s(b"250 mx.example.com\r\n", tag="helo_reply")
    add(Capture("client-used-helo.pcap", "the client greets with HELO (no extensions); mail in clear",
                [(mail_in_clear(c), Expect("plaintext", "client", "client-used-helo", "unknown"))]))

    add(Capture("starttls-not-offered.pcap", "well-formed EHLO reply without STARTTLS; mail in clear",
                [(not_offered_conv(cport=40316), NOT_OFFERED)]))

    c = opening(Conv(cport=40317), b"500 5.5.1 Command unrecognized\r\n")
    c.c(b"HELO client.example.org\r\n").s(b"250 mx.example.com\r\n")
    add(Capture("ehlo-rejected.pcap", "EHLO answered 500, HELO fallback (no extensions); mail in clear",
                [(mail_in_clear(c), Expect("plaintext", "server", "ehlo-rejected", "unknown"))]))

    refused = b"454 4.7.0 TLS not available due to temporary reason\r\n"
    c = opening(Conv(cport=40318))
    c.c(STARTTLS, tag="starttls").s(refused, tag="starttls_reply")
    add(Capture("starttls-refused-454.pcap", "STARTTLS answered 454; the client goes on in clear",
                [(mail_in_clear(c), Expect("plaintext", "server", "starttls-refused", "valid", True, 454))]))

    c = opening(Conv(cport=40319))
    c.c(STARTTLS, tag="starttls").s(refused, tag="starttls_reply").extend(QUIT_STEPS)
    add(Capture("starttls-refused-quit.pcap", "STARTTLS answered 454; the client QUITs",
                [(c, Expect("aborted", "server", "starttls-refused", "valid", True, 454))]))

    c = Conv(cport=40320)
    opening(c, MASKED_REPLY, banner=mask_banner(MASK_BANNER_ORIG), marks={"masked_line": b"250-XXXXXXXA"})
    add(Capture("starttls-masked.pcap",
                "Cisco PIX/ASA ESMTP inspection: banner masked with '*' (except 2 and 0), STARTTLS rewritten to "
                "XXXXXXXA; mail in clear", [(mail_in_clear(c), MASKED_EXPECT)]))

    c = Conv(cport=40321)
    opening(c, MASKED_REPLY, banner=mask_banner(MASK_BANNER_ORIG), marks={"masked_line": b"250-XXXXXXXA"})
    c.c(STARTTLS, tag="starttls").s(b"500 #5.5.1 command not recognized\r\n", tag="starttls_reply")
    add(Capture("starttls-masked-500.pcap",
                "masked as starttls-masked.pcap; the client sends STARTTLS anyway and the box answers "
                "500 #5.5.1; mail in clear",
                [(mail_in_clear(c), Expect("plaintext", "middlebox", "starttls-masked", "masked", True, 500,
                                           MASKED_EXPECT.findings))]))

    c = opening(Conv(cport=40322), lines("250 mx.example.com", "250-STARTTLS", "250 SIZE 1000"),
                marks={"stray": b"250-STARTTLS"})
    add(Capture("ehlo-premature-end.pcap",
                "EHLO reply ends on its first line ('250 '); the stray lines 250-STARTTLS / 250 SIZE 1000 sit "
                "in the client's buffer and answer its MAIL FROM; the mail goes through in clear",
                [(mail_in_clear(c), Expect("plaintext", "server", "starttls-misplaced", "misplaced",
                                           findings=[("ehlo-premature-end", "server", "ehlo_reply"),
                                                     ("reply-out-of-step", "server", "stray")]))]))

    c = opening(Conv(cport=40323), lines("250-mx.example.com", "220-STARTTLS", "250 SIZE 1000"),
                marks={"mixed": b"220-STARTTLS"})
    add(Capture("ehlo-mixed-codes.pcap", "EHLO reply line 220-STARTTLS among 250 lines; mail in clear",
                [(mail_in_clear(c), Expect("plaintext", "server", "starttls-misplaced", "misplaced",
                                           findings=[("ehlo-mixed-codes", "server", "mixed")]))]))

    c = opening(Conv(cport=40324), b"250 STARTTLS\r\n")
    add(Capture("ehlo-single-line-starttls.pcap", "EHLO reply is the single line '250 STARTTLS'; mail in clear",
                [(mail_in_clear(c), Expect("plaintext", "server", "starttls-misplaced", "misplaced",
                                           findings=[("ehlo-keyword-as-domain", "server", "ehlo_reply")]))]))

    add(Capture("tls-alert-server.pcap",
                "STARTTLS, 220, ClientHello; the server answers a fatal handshake_failure(40) alert and closes",
                [(tls_alert_server_conv(cport=40325), ALERT_SERVER_EXPECT)]))

    c = opening(Conv(cport=40326, close=("rst", "C")))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello("alert-client", "mx.example.com"), tag="client_hello")
    flight, sh_len = server_flight_tls12("alert-client", "other.example.net", self_signed=True)
    c.s(flight, tag="server_hello", marks={"certificate": sh_len})
    c.c(alert(48), tag="alert")
    add(Capture("tls-alert-client.pcap",
                "TLS 1.2: the server presents a self-signed certificate for other.example.net; the client sends "
                "a fatal unknown_ca(48) alert and resets",
                [(c, Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                            [("tls-certificate", "server", "certificate"), ("tls-alert", "client", "alert")]))]))

    c = opening(Conv(cport=40327, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello("tls13", "mx.example.com", tls13=True), tag="client_hello")
    sh13_exts = ext(43, u16(0x0304)) + ext(51, u16(0x001D) + u16(32) + x25519_pub("tls13 server share"))
    sh13 = record(22, handshake(2, u16(0x0303) + det("tls13 server random", 32) + u8(32)
                                + det("tls13 session id", 32) + u16(0x1301) + u8(0) + u16(len(sh13_exts))
                                + sh13_exts))
    cert_len = len(certificate("mx.example.com")) + len(certificate("pcapsmtp Test CA", self_signed=True))
    sizes = [10 + 17, cert_len + 4 + 3 + 2 * 5 + 4 + 17, 4 + 4 + 64 + 17, 36 + 17]
    enc = b"".join(record(23, det(f"tls13 server enc {k}", n)) for k, n in enumerate(sizes))
    c.s(sh13 + record(20, b"\x01") + enc, tag="server_hello")
    c.c(record(20, b"\x01") + record(23, det("tls13 client alert", 19)), marks={"alert": 6})
    add(Capture("tls13-client-refuses.pcap",
                "TLS 1.3: ServerHello (supported_versions 0x0304), CCS and the encrypted flight; the client "
                "answers CCS and one 19-byte encrypted record (an alert by its size) and closes",
                [(c, Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                            [("tls-alert", "client", "alert")]))]))

    c2 = did_not_request_conv(cport=40329, isn=(0x22334455, 0x66778899), start_offset_ms=2000)
    add(Capture("tls-fallback.pcap",
                "stream 0 as tls-alert-server.pcap; 2 s later stream 1 from another port: valid offer, no "
                "STARTTLS, mail in clear (the MTA's plaintext retry)",
                [(tls_alert_server_conv(cport=40328), ALERT_SERVER_EXPECT),
                 (c2, Expect("plaintext", "server", "tls-fallback", "valid"))]))

    c = implicit_465(Conv(cport=40330, sport=465))
    add(Capture("implicit-tls-465.pcap", "port 465: TLS 1.2 from the first byte, SMTP inside",
                [(c, Expect("tls", "none", "implicit-tls", "unknown"))]))

    c = Conv(cport=40331, sport=465, close=("rst", "C"))
    c.c(client_hello("mismatch", "mx.example.com"), tag="client_hello")
    c.s(b"220 mail.example.com ESMTP\r\n", tag="banner")
    add(Capture("implicit-tls-mismatch.pcap",
                "port 465: the client sends a ClientHello, the server answers a plaintext 220; the client resets",
                [(c, Expect("aborted", "server", "implicit-tls-mismatch", "unknown",
                            findings=[("implicit-tls-plaintext-reply", "server", "banner")]))]))

    c = Conv(cport=40332, handshake=False, isn=(0x0BADF00D, 0x0C0FFEE0))
    add(Capture("midstream-after-ehlo.pcap",
                "the capture starts after the EHLO exchange: first packet is MAIL FROM (no SYN)",
                [(mail_in_clear(c), Expect("incomplete", "unknown", "incomplete", "unknown",
                                           findings=[("midstream", "capture", "first_frame")]))]))

    gap_reply = [lines("250-mx.example.com", "250-PIPELINING"), lines("250-SIZE 10240000", "250-STARTTLS"),
                 lines("250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250 SMTPUTF8")]
    c = opening(Conv(cport=40333), gap_reply, lost=[1], marks={"after_hole": len(gap_reply[0] + gap_reply[1])})
    add(Capture("gap-in-ehlo-reply.pcap",
                "EHLO reply in 3 segments; the middle one (with STARTTLS) is missing from the capture but ACKed; "
                "mail in clear", [(mail_in_clear(c), Expect("incomplete", "unknown", "incomplete", "unknown",
                                                            findings=[("tcp-gap", "capture", "after_hole")]))]))

    c = opening(Conv(cport=40334))
    starttls_ok(c, "cmd-injection", command=b"STARTTLS\r\nRSET\r\n", cmd_marks={"injected": b"RSET"})
    add(Capture("starttls-command-injection.pcap",
                "the client sends STARTTLS\\r\\nRSET\\r\\n in one segment; 220; TLS 1.2 completes",
                [(c, Expect("tls", "none", "tls-established", "valid", True, 220,
                            [("starttls-command-injection", "client", "injected")]))]))

    c = opening(Conv(cport=40335))
    starttls_ok(c, "resp-injection", reply=b"220 2.0.0 Ready\r\n250 injected\r\n", reply_marks={"injected": b"250 inj"})
    add(Capture("starttls-response-injection.pcap",
                "the server answers 220 2.0.0 Ready\\r\\n250 injected\\r\\n in one segment; TLS 1.2 completes",
                [(c, Expect("tls", "none", "tls-established", "valid", True, 220,
                            [("starttls-response-injection", "server", "injected")]))]))

    c = opening(Conv(cport=40336))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(EHLO, tag="ehlo_after_tls").s(EHLO_NO_TLS)
    add(Capture("tls-decrypted-capture.pcap",
                "STARTTLS, 220, then readable SMTP (EHLO again, reply without STARTTLS, mail): a capture taken "
                "behind a TLS terminator",
                [(mail_in_clear(c), Expect("tls", "none", "tls-decrypted", "valid", True, 220,
                                           [("plaintext-after-starttls", "capture", "ehlo_after_tls")]))]))

    c = opening(Conv(cport=40337, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    garbage = b"\x00\x07" + bytes((b % 0x70) + 0x01 if b in (0x0A, 0x0D) else b for b in det("garbage", 38))
    c.c(garbage, tag="garbage")
    add(Capture("starttls-garbage-after-220.pcap",
                "STARTTLS, 220, then 40 client bytes that are neither TLS nor SMTP, and the client closes",
                [(c, Expect("aborted", "client", "tls-not-started", "valid", True, 220,
                            [("plaintext-after-starttls", "client", "garbage")]))]))

    c = opening(Conv(cport=40338), EHLO_NO_TLS)
    starttls_ok(c, "not-advertised")
    add(Capture("starttls-not-advertised-but-used.pcap",
                "EHLO reply without STARTTLS; the client sends STARTTLS anyway; 220; TLS 1.2 completes",
                [(c, Expect("tls", "none", "tls-established", "absent", True, 220,
                            [("starttls-not-advertised-but-used", "client", "starttls")]))]))

    c = opening(Conv(cport=40339))
    starttls_ok(c, "with-param", command=b"STARTTLS now\r\n")
    add(Capture("starttls-with-parameter.pcap", "the client sends 'STARTTLS now'; 220; TLS 1.2 completes",
                [(c, Expect("tls", "none", "tls-established", "valid", True, 220,
                            [("starttls-with-parameter", "client", "starttls")]))]))

    c = opening(Conv(cport=40340), EHLO_OK.replace(b"\r\n", b"\n"))
    starttls_ok(c, "bare-lf")
    add(Capture("ehlo-bare-lf.pcap", "EHLO reply lines end in bare LF; STARTTLS offered and used; TLS 1.2",
                [(c, Expect("tls", "none", "tls-established", "valid", True, 220,
                            [("ehlo-bare-lf", "server", "ehlo_reply")]))]))

    long_line = b"250-XLONGPARAM " + b"A" * (600 - 17) + b"\r\n"
    assert len(long_line) == 600
    reply = EHLO_OK.replace(b"250-8BITMIME\r\n", b"250-8BITMIME\r\n" + long_line)
    c = opening(Conv(cport=40341), reply, marks={"long": long_line[:20]})
    add(Capture("ehlo-line-too-long.pcap", "a 600-octet EHLO reply line; STARTTLS valid; the client does not "
                "request it", [(mail_in_clear(c), Expect("plaintext", "client", "client-did-not-request", "valid",
                                                          findings=[("ehlo-line-too-long", "server", "long")]))]))

    reply = EHLO_OK.replace(b"250-8BITMIME\r\n", b"250-8BITMIME\r\n250-_X!BAD\r\n")
    c = opening(Conv(cport=40342), reply, marks={"bad": b"250-_X!BAD"})
    add(Capture("ehlo-bad-keyword.pcap", "EHLO reply line 250-_X!BAD; STARTTLS valid; the client does not "
                "request it", [(mail_in_clear(c), Expect("plaintext", "client", "client-did-not-request", "valid",
                                                          findings=[("ehlo-bad-keyword", "server", "bad")]))]))

    c = opening(Conv(cport=40343)).extend(QUIT_STEPS)
    add(Capture("no-mail.pcap", "EHLO, valid offer, the client QUITs without a mail transaction",
                [(c, Expect("aborted", "none", "no-mail-transaction", "valid"))]))

    c = Conv(cport=40344).s(b"554 5.7.1 No service\r\n", tag="banner").extend(QUIT_STEPS)
    add(Capture("greeting-refused.pcap", "the server greets with 554 5.7.1 No service; the client QUITs",
                [(c, Expect("aborted", "server", "greeting-refused", "unknown"))]))

    add(Capture("smtp-odd-port.pcap", "as client-did-not-request.pcap on server port 10025 (found by content)",
                [(did_not_request_conv(cport=40345, sport=10025), DID_NOT_REQUEST)]))

    # 34 -- found by real clients and the capture transformations (added after the first set)
    reply = EHLO_OK.replace(b"250-STARTTLS\r\n", b"250-STARTTLS now\r\n")
    c = opening(Conv(cport=40360), reply, marks={"param": b"250-STARTTLS now"})
    add(Capture("ehlo-starttls-parameter.pcap", "EHLO reply line 250-STARTTLS now (the keyword takes no "
                "parameter: swaks, OpenSMTPD, MailKit and Haraka miss it); the client does not request it",
                [(mail_in_clear(c), Expect("plaintext", "client", "client-did-not-request", "valid",
                                           findings=[("ehlo-starttls-parameter", "server", "param")]))]))

    c = Conv(cport=40361, sport=465)
    c.s(b"220 mx.example.com ESMTP Postfix\r\n", tag="banner")
    c.c(client_hello("after-banner", "mx.example.com"), tag="client_hello")
    c.s(b"502 5.5.2 Error: command not recognized\r\n")
    add(Capture("implicit-tls-after-banner.pcap",
                "port 465: the server greets in plaintext first, then the client sends a ClientHello and "
                "gets 'command not recognized'",
                [(c, Expect("aborted", "server", "implicit-tls-mismatch", "unknown",
                            findings=[("implicit-tls-plaintext-reply", "server", "banner")]))]))

    # 33 -- transport and format variants of the seed
    seed_variants: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
        ("seed-1byte-segments.pcap", "every payload byte in its own segment", {"one_byte": True}, {}),
        ("seed-reordered.pcap", "the data segments of each flight swapped in pairs", {"reorder": True}, {}),
        ("seed-retransmissions.pcap", "every data segment sent twice, every other one as a partial overlap",
         {"retransmit": True}, {}),
        ("seed-vlan.pcap", "802.1Q VLAN 100", {}, {"link": "vlan"}),
        ("seed-qinq.pcap", "802.1ad S-VLAN 200 over 802.1Q VLAN 100", {}, {"link": "qinq"}),
        ("seed-sll.pcap", "Linux cooked capture v1 (linktype 113)", {}, {"link": "sll"}),
        ("seed-sll2.pcap", "Linux cooked capture v2 (linktype 276)", {}, {"link": "sll2"}),
        ("seed-raw.pcap", "raw IP (linktype 101)", {}, {"link": "raw"}),
        ("seed-null.pcap", "BSD loopback (linktype 0, little-endian family)", {}, {"link": "null"}),
        ("seed-ipv6.pcap", "IPv6 with hop-by-hop and destination-options extension headers", {}, {"ipv": 6}),
        ("seed-nanosecond.pcap", "nanosecond-resolution pcap", {}, {"fmt": "pcap-ns", "ns_jitter": True}),
        ("seed-bigendian.pcap", "big-endian pcap", {}, {"fmt": "pcap-be"}),
        ("seed.pcapng", "pcapng, one interface", {}, {"fmt": "pcapng"}),
        ("seed.pcap.gz", "gzip-compressed pcap", {}, {"gz": True}),
        ("seed-multi-interface.pcapng", "pcapng with two interfaces (Ethernet, tsresol 6; raw IP, tsresol 9); "
         "the packets alternate between them", {}, {"fmt": "pcapng-multi", "link": "multi", "ns_jitter": True}),
        ("seed-spb.pcapng", "pcapng with Simple Packet Blocks (no timestamps)", {}, {"fmt": "pcapng-spb"}),
        ("seed-ipv4-fragments.pcap", "the first EHLO reply segment sent as 3 IPv4 fragments", {},
         {"fragment": "ehlo_reply"}),
        # tunnels and encapsulations (the TCP inside is what counts, as Wireshark numbers it)
        ("seed-gre.pcap", "GRE (RFC 2784) between two routers, IPv4 inside IPv4", {}, {"link": "gre"}),
        ("seed-gre-key.pcap", "GRE with checksum, key and sequence number (RFC 2890)", {}, {"link": "gre-key"}),
        ("seed-gre6.pcap", "GRE over IPv6 carrying IPv4", {}, {"link": "gre6"}),
        ("seed-ipip.pcap", "IPv4 in IPv4 (IP protocol 4)", {}, {"link": "ipip"}),
        ("seed-6in4.pcap", "IPv6 in IPv4 (6in4, IP protocol 41)", {}, {"link": "ipip", "ipv": 6}),
        ("seed-erspan2.pcap", "a switch's mirror session as ERSPAN type II (GRE 0x88BE) to an analyzer", {},
         {"link": "erspan2"}),
        ("seed-erspan3.pcap", "a switch's mirror session as ERSPAN type III (GRE 0x22EB)", {}, {"link": "erspan3"}),
        ("seed-vxlan.pcap", "a mirror session in VXLAN (UDP 4789), as cloud traffic mirroring sends it", {},
         {"link": "vxlan"}),
        ("seed-geneve.pcap", "a mirror session in Geneve (UDP 6081)", {}, {"link": "geneve"}),
        ("seed-mpls.pcap", "two MPLS labels (Ethernet type 0x8847)", {}, {"link": "mpls"}),
        ("seed-pppoe.pcap", "PPPoE session (Ethernet type 0x8864, PPP protocol 0x0021)", {}, {"link": "pppoe"}),
        ("seed-pflog.pcap", "OpenBSD pflog (linktype 117: `tcpdump -i pflog0 -w`, the packets a pf `log` rule "
         "passed)", {}, {"link": "pflog"}),
        ("seed-pflog-ipv6.pcap", "OpenBSD pflog over IPv6 (address family 24)", {}, {"link": "pflog", "ipv": 6}),
        ("seed-nflog.pcap", "Linux NFLOG (linktype 239: `tcpdump -i nflog:N` behind an iptables NFLOG rule)", {},
         {"link": "nflog"}),
        ("seed-ppp.pcap", "PPP (linktype 9) with RFC 1662 address and control bytes: a dial-up or serial "
         "link, pppd", {}, {"link": "ppp"}),
        ("seed-ppp-ipv6.pcap", "PPP (linktype 9) carrying IPv6 (protocol 0x0057)", {}, {"link": "ppp", "ipv": 6}),
        ("seed-ppp-hdlc.pcap", "PPP in HDLC-like framing (linktype 50)", {}, {"link": "ppp-hdlc"}),
        ("seed-ppp-dir.pcap", "PPP with a direction byte (linktype 204)", {}, {"link": "ppp-dir"}),
        ("seed-chdlc.pcap", "Cisco HDLC (linktype 104): a router's serial interface", {}, {"link": "chdlc"}),
        ("seed-enc.pcap", "OpenBSD enc0 (linktype 109): SMTP inside an IPsec tunnel, before encryption", {},
         {"link": "enc"}),
        ("seed-ipnet.pcap", "Solaris 11 ipnet (linktype 226: `snoop -I net0`)", {}, {"link": "ipnet"}),
        ("seed-ipnet-ipv6.pcap", "Solaris 11 ipnet carrying IPv6 (family 26)", {}, {"link": "ipnet", "ipv": 6}),
        ("seed-pktap.pcap", "Apple PKTAP (linktype 258: macOS `tcpdump -i any`), Ethernet inside", {},
         {"link": "pktap"}),
        ("seed-erf.pcap", "Endace ERF Ethernet records (linktype 197: a DAG capture card)", {}, {"link": "erf"}),
    ]
    for name, what, conv_kw, cap_kw in seed_variants:
        add(Capture(name, "seed-starttls-first-line dialogue; " + what, [(seed_conv(**conv_kw), SEED_EXPECT)],
                    **cap_kw))

    # sequence numbers wrap 20 bytes into the EHLO reply (server) and 5 bytes into the EHLO (client)
    c_isn = (-1 - 5) % MOD
    s_isn = (-(1 + len(SEED_BANNER)) - 20) % MOD
    add(Capture("seed-wrap.pcap", "seed dialogue with ISNs near 2^32: both sequence spaces wrap (the server's "
                "20 bytes into the EHLO reply)", [(seed_conv(isn=(c_isn, s_isn)), SEED_EXPECT)]))

    add(Capture("seed-snaplen.pcap", "seed dialogue captured with snaplen 96: every payload beyond 42 bytes is "
                "cut, the end of the EHLO reply among them (no verdict on a reply seen in part)",
                [(seed_conv(), Expect("incomplete", "unknown", "incomplete", "unknown",
                                      findings=[("capture-truncated", "capture", "first_cut")]))],
                snaplen=96))

    add(Capture("port-reuse.pcap", "two complete conversations on the same 4-tuple, one after the other, with "
                "different ISNs: first client-did-not-request, then starttls-not-offered",
                [(did_not_request_conv(cport=40350), DID_NOT_REQUEST),
                 (not_offered_conv(cport=40350, isn=(0x71717171, 0x13131313), start_offset_ms=1000),
                  NOT_OFFERED)]))

    add(Capture("one-sided-client.pcap", "client-did-not-request.pcap with only the client->server packets",
                [(did_not_request_conv(cport=40351, only_side="C"),
                  Expect("incomplete", "unknown", "incomplete", "unknown",
                         findings=[("one-sided", "capture", "first_frame")]))]))

    c = Conv(cport=40352)
    opening(c, EHLO_OK, conflict=(0, EHLO_OK.replace(b"STARTTLS", b"XXXXXXXA")))
    add(Capture("overlap-conflict.pcap", "client-did-not-request.pcap where a retransmission of the EHLO reply "
                "carries XXXXXXXA instead of STARTTLS; the first copy wins",
                [(mail_in_clear(c), Expect("plaintext", "client", "client-did-not-request", "valid",
                                           findings=[("tcp-overlap-conflict", "capture", "label:conflict")]))]))
    caps.extend(topic_scenarios())
    return caps


def topic_scenarios() -> list[Capture]:
    """Scenarios kept in ``captures/scenarios_<topic>.py`` (one module per theme, each with a
    ``scenarios()`` that returns Captures built with this module's helpers), in name order."""
    import importlib
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    caps: list[Capture] = []
    for path in sorted(HERE.glob("scenarios_*.py")):
        caps.extend(importlib.import_module(path.stem).scenarios())
    return caps


def generate(out: Path, only: Sequence[str] = ()) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    expected: dict[str, Any] = {}
    for cap in scenarios():
        data, entry = render(cap)
        expected[cap.name] = entry
        if not only or cap.name in only:
            (out / cap.name).write_bytes(data)
    if not only:
        (out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    return expected


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: this folder)")
    ap.add_argument("--only", nargs="*", default=(), help="write only these capture files")
    ap.add_argument("--list", action="store_true", help="print the capture names and exit")
    args = ap.parse_args(argv)
    if args.list:
        for cap in scenarios():
            print(cap.name)
        return 0
    generate(args.out, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
