"""The file loop's body in pure Python: the readable reference of the compiled twin
(``engine/hotloop_c.pyx``), which must give the same result on every input
(``tests/perf/test_compiled_equivalence.py``). ``FusedLoop.loop`` (``engine.fileloop``) picks
one of the two (``engine.accel``); see ``engine.fileloop`` for what the loop does.
"""
from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

from pcapsmtp.capture.decode import TUNNEL_IP_PROTOCOLS, TUNNEL_UDP_PORTS
from pcapsmtp.capture.pcapfile import RecordView
from pcapsmtp.model import TcpSegment
from pcapsmtp.tcp.streams import V6KEY, KeyedSegment, int_key

__all__ = ["loop"]

# Ethernet (from byte 12) + IPv4 without options + TCP: ethertype, version/IHL, total length,
# flags/fragment offset, protocol, src, dst (as integers), sport, dport, seq, ack, data
# offset, flags. Needs 54 bytes of frame.
_ETH4 = struct.Struct("!HBxH2xHxB2xIIHHIIBB").unpack_from

# Ethernet IPv6 without extension headers + TCP, from byte 14: version/traffic class, payload
# length, next header, src and dst (two 64-bit halves each), then TCP as above. Needs 74 bytes.
_ETH6 = struct.Struct("!B3xHBxQQQQHHIIBB").unpack_from


def keyed(seg: TcpSegment, addrs: Any) -> KeyedSegment:
    """``seg`` with its integer table key (the decoder's text addresses are always valid
    ``inet_ntop`` output; ``addrs``: an ``AddrInts`` cache)."""
    key, d = int_key(addrs.get(seg.src), seg.sport, addrs.get(seg.dst), seg.dport,
                     ":" in seg.src)
    return KeyedSegment(seg.frame, seg.ts_ns, seg.src, seg.sport, seg.dst, seg.dport, seg.seq,
                        seg.ack, seg.flags, seg.payload, seg.missing, key, d, seg.ttl)


def loop(fl: Any, views: Iterable[RecordView],
         progress: Callable[[int, int], None] | None = None) -> None:
    """Feed the records ``views`` through ``fl`` (a ``FusedLoop``)."""
    an = fl.an
    an_feed = an.feed
    reasm = an.reassembler
    classify = reasm.table.classify
    dec = fl.dec
    decode_raw = dec.decode_raw
    addresses = dec.addresses
    addrs = fl.addrs
    done = fl.done
    check = fl.check
    eth4 = _ETH4
    eth6 = _ETH6
    # IPv4 packets the general decoder unwraps: tunnel protocols, UDP on a tunnel port, and
    # every UDP fragment (the decoder reassembles those of a tunnel, forgets the others)
    tunnel_protocols = TUNNEL_IP_PROTOCOLS
    tunnel_ports = TUNNEL_UDP_PORTS
    number = fl.frame_base
    # counts not yet handed to their owners (flushed before every call that reads them)
    skipped = 0          # TCP segments done by classify: Analyzer.packets, stats.segments
    fast_frames = 0      # frames decoded here: Decoder.frames
    fast_tcp = 0         # TCP segments decoded here: Decoder.tcp_segments
    last_ts: int | None = None      # timestamp of the last segment skipped here
    cd = reasm.countdown            # the reassembler's idle-sweep countdown
    try:
        for number, ts_ns, lt, buf, hend, end, wirelen, off in views:
            if progress is not None and not number & 0xFFFF:
                progress(number, off)
            if lt == 1 and end - hend >= 54:
                (et, vihl, tot, ff, proto, sa, da, sport, dport, seq, ack, doff,
                 flags) = eth4(buf, hend + 12)
                ok = False
                if et == 0x0800 and vihl == 0x45:
                    if proto != 6:
                        if (proto not in tunnel_protocols and (
                                proto != 17 or (not ff & 0x3FFF and sport not in tunnel_ports
                                                and dport not in tunnel_ports))):
                            fast_frames += 1     # not TCP, no tunnel: nothing to decode
                            continue
                        # a tunnel: the general decoder
                    else:
                        ip_end = hend + 14 + tot
                        pstart = hend + 34 + ((doff >> 4) << 2)
                    if (proto == 6 and not ff & 0x3FFF and ip_end <= end
                            and hend + 54 <= pstart <= ip_end):
                        ok = True
                        if sport < dport or (sport == dport and sa < da):
                            key = sa << 64 | da << 32 | sport << 16 | dport
                            d = 0
                        else:
                            key = da << 64 | sa << 32 | dport << 16 | sport
                            d = 1
                        a0 = hend + 26
                        a1 = hend + 34
                elif et == 0x86DD and end - hend >= 74:
                    (vtc, plen, nh, s1, s2, d1, d2, sport, dport, seq, ack, doff,
                     flags) = eth6(buf, hend + 14)
                    if nh == 6 and vtc >> 4 == 6 and plen:
                        ip_end = hend + 54 + plen
                        pstart = hend + 54 + ((doff >> 4) << 2)
                        if ip_end <= end and hend + 74 <= pstart <= ip_end:
                            ok = True
                            sa = s1 << 64 | s2
                            da = d1 << 64 | d2
                            if sport < dport or (sport == dport and sa < da):
                                key = V6KEY | sa << 160 | da << 32 | sport << 16 | dport
                                d = 0
                            else:
                                key = V6KEY | da << 160 | sa << 32 | dport << 16 | sport
                                d = 1
                            a0 = hend + 22
                            a1 = hend + 54
                if ok:
                    fast_frames += 1
                    fast_tcp += 1
                    cd -= 1
                    if cd > 0 and classify(key, d, seq, flags, buf, pstart, ip_end, number,
                                           ts_ns, ack):
                        skipped += 1
                        last_ts = ts_ns
                        continue
                    # the reassembler must see it (with the TTL, IPv4, or the hop limit, IPv6,
                    # just before the addresses)
                    pair = addresses(bytes(buf[a0:a1]))
                    seg: TcpSegment = KeyedSegment(
                        number, ts_ns, pair[0], sport, pair[1], dport, seq, ack, flags,
                        bytes(buf[pstart:ip_end]), 0, key, d,
                        buf[a0 - 4] if a1 - a0 == 8 else buf[a0 - 1])
                else:
                    seg2 = decode_raw(1, bytes(buf[hend:end]), wirelen, number, ts_ns)
                    if seg2 is None:
                        continue
                    cd -= 1
                    seg = keyed(seg2, addrs)
            else:
                seg2 = decode_raw(lt, bytes(buf[hend:end]), wirelen, number, ts_ns)
                if seg2 is None:
                    continue
                cd -= 1
                seg = keyed(seg2, addrs)
            if skipped:
                an.packets += skipped
                reasm.skipped(skipped, None)
                skipped = 0
            last_ts = None
            reasm.countdown = cd + 1        # feed counts it
            r = an_feed(seg)
            cd = reasm.countdown
            if r:
                done.extend(r)
                if check is not None:
                    check(done)
    finally:
        fl.frames = number
        an.packets += skipped
        reasm.skipped(skipped, last_ts)
        dec.count(fast_frames, fast_tcp)
        reasm.countdown = cd
