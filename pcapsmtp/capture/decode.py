"""Link layer -> IPv4/IPv6 -> TCP: the one place that turns a captured frame into a
``TcpSegment``.

Public API
----------
``Decoder()`` keeps the state decoding needs across frames (IP fragment reassembly,
notes, counters):

- ``decode_raw(linktype, data, wirelen, number, ts_ns) -> TcpSegment | None``: the hot
  path. **The pipeline should call this one** (with the fields of ``iter_records``
  tuples, or let ``pcapfile.iter_segments`` do it): it avoids building a ``RawFrame``.
- ``decode(frame: RawFrame) -> TcpSegment | None``: the same for a ``RawFrame``.
- ``notes: list[str]``: one-line notes, each kind of problem noted once (first frame).
- counters ``frames`` (frames seen), ``tcp_segments`` (segments returned) and
  ``undecodable`` (frames that could not be decoded as far as needed: unknown link type,
  cut or bogus link/IP/TCP headers, fragments that cannot be reassembled).

Non-IP and non-TCP frames simply return ``None`` (they are not "undecodable").

Link types: Ethernet (1) with any depth of 802.1Q / 802.1ad (0x88a8) / 0x9100 tags, Linux
cooked v1 (113) and v2 (276), raw IP (101, 12, 14), IPv4 (228), IPv6 (229), BSD NULL (0,
host byte order family), LOOP (108, network order), OpenBSD/FreeBSD pflog (117: `tcpdump -i
pflog0`, the packets a pf rule logs), Linux NFLOG (239, the NFULA_PAYLOAD attribute), PPP (9,
with or without HDLC address/control bytes; 204 after a direction byte), PPP in HDLC framing
and Cisco HDLC (50, 104), OpenBSD enc (109), Solaris ipnet (226), Apple PKTAP (258: macOS
`tcpdump -i any`, Ethernet/NULL/raw inside) and Endace ERF records (197: Ethernet and IP types,
extension headers skipped).

Encapsulations (the TCP inside is the segment, with the inner addresses, as Wireshark's
``tcp.stream`` counts it): MPLS label stacks (0x8847/0x8848, an IPv4 or IPv6 packet after the
bottom label), PPPoE sessions (0x8864, PPP protocols 0x0021 and 0x0057), and inside IPv4 or
IPv6: IP in IP (protocols 4 and 41), GRE version 0 (protocol 47, RFC 2784/2890: checksum,
key and sequence fields; IPv4, IPv6, MPLS, Ethernet 0x6558, ERSPAN type I/II 0x88BE and
type III 0x22EB with its platform subheader), VXLAN (UDP port 4789) and Geneve (UDP 6081,
with options), on either UDP port unless the other one is lower and Wireshark's dissector for
it takes the packet first (``_WIRESHARK_BEFORE_VXLAN``: a DNS reply to port 4789 is DNS). At
most ``MAX_TUNNEL_DEPTH`` tunnels inside each other; deeper is skipped with a note. An outer
IPv4 or IPv6 datagram of a tunnel in fragments (an IP tunnel, or VXLAN/Geneve whose
full-size inner frame did not fit the underlay's MTU) is reassembled first, as tshark does;
fragmented UDP of other ports is forgotten fragment by fragment as it comes (the first
fragment's ports tell). Headers of tunnels that make no sense (GRE routing or version 1,
VXLAN without its VNI flag, Geneve version 1) are not decoded further, silently, as any
packet that is not TCP.

Lengths: the IP total length (IPv6 payload length) is trusted over the frame length, so
Ethernet padding, trailers and FCS never become payload. When the frame was cut by the
snapshot length, ``payload`` is what was captured and ``missing`` counts the TCP payload
bytes the IP header announces beyond it (bounded by the frame's wire length), and
``on_cut(captured length)`` is called when set. An IP
total length of 0 (TSO on the capturing host) means "up to the end of the frame".

IP fragments (of TCP and of tunnels): IPv4 and IPv6 datagrams are reassembled (at most
``MAX_PENDING_DATAGRAMS`` pending, ignored UDP ones included, ``MAX_DATAGRAM`` bytes each,
dropped after ``FRAGMENT_TIMEOUT_NS`` of capture time; IPv4 keyed by addresses, protocol and
identification as RFC 791 says); the segment carries the frame number and
timestamp of the fragment that completed it, as Wireshark shows the reassembled packet.
"""
from __future__ import annotations

import socket
import struct
from collections.abc import Callable

from pcapsmtp.capture.base import RawFrame
from pcapsmtp.model import TcpSegment

__all__ = ["Decoder", "MAX_PENDING_DATAGRAMS", "MAX_DATAGRAM", "FRAGMENT_TIMEOUT_NS", "MAX_TUNNEL_DEPTH",
           "TUNNEL_IP_PROTOCOLS", "TUNNEL_UDP_PORTS"]

MAX_PENDING_DATAGRAMS = 256
MAX_DATAGRAM = 65535 + 8       # largest IPv4 datagram; IPv6 fragmentable part is bounded the same
FRAGMENT_TIMEOUT_NS = 60 * 1_000_000_000

_H = struct.Struct("!H").unpack_from
_TCP = struct.Struct("!HHIIBB").unpack_from
_V4 = struct.Struct("!BxHHHBB").unpack_from    # ver_ihl, total_len, id, flags_frag, ttl, proto
_V6 = struct.Struct("!HB").unpack_from         # payload_len, next_header (at +4)
# IPv4 without options + TCP in one call: ver_ihl, total_len, flags_frag, proto,
# src+dst (8 bytes), sport, dport, seq, ack, data offset, flags
_V4TCP = struct.Struct("!BxH2xHxB2x8sHHIIBB").unpack_from
# IPv6 without extension headers + TCP: payload_len, src+dst (32 bytes), then TCP as above
_V6TCP = struct.Struct("!4xH2x32sHHIIBB").unpack_from

_VLAN_TYPES = frozenset((0x8100, 0x88A8, 0x9100))
_IPV6_EXT = frozenset((0, 43, 60, 51, 44))
_RAW_LINKTYPES = frozenset((101, 12, 14))
#: PPP protocol numbers -> Ethernet types (RFC 1332 IPv4, RFC 5072 IPv6)
_PPP_TYPES = {0x0021: 0x0800, 0x0057: 0x86DD}
#: ERF record types carrying Ethernet (ETH, COLOR_ETH, DSM_COLOR_ETH, COLOR_HASH_ETH) or IP
_ERF_ETHERNET = frozenset((2, 10, 16, 20))
_ERF_IP = {22: 0x0800, 23: 0x86DD}
_NULL_V6 = frozenset((24, 28, 30))

#: IP protocols that carry a packet decoded further: IPv4 in IP (4), IPv6 in IP (41, 6in4),
#: GRE (47, with ERSPAN types I-III, Ethernet, IP and MPLS inside)
TUNNEL_IP_PROTOCOLS = frozenset((4, 41, 47))
#: UDP ports (either side) of tunnels decoded further: VXLAN (4789), Geneve (6081)
TUNNEL_UDP_PORTS = frozenset((4789, 6081))
#: at most this many tunnels inside each other are decoded (a packet nested deeper is
#: skipped, with a note): the bound a crafted capture meets
MAX_TUNNEL_DEPTH = 4
_GRE_INNER = {0x0800: 0x0800, 0x86DD: 0x86DD, 0x8847: 0x8847, 0x8848: 0x8848}
#: UDP ports lower than VXLAN's (4789) and Geneve's (6081) whose Wireshark dissector takes a
#: VXLAN or Geneve packet first: Wireshark tries the lower port of a UDP packet first, then the
#: higher (packet-udp.c, decode_udp_ports), and these dissectors accept the tunnel's bytes (a
#: dissector that rejects them, e.g. STUN's, lets VXLAN have the packet). Such a packet, e.g. a
#: DNS reply from port 53 to a client whose ephemeral port happened to be 4789, is not a tunnel
#: here either: the inner TCP and its tcp.stream numbers stay those of Wireshark. Measured with
#: tshark 4.0.17 on every lower port (tests/capture/test_capture_tunnels.py checks it).
_WIRESHARK_BEFORE_VXLAN = frozenset((
    7, 13, 19, 37, 49, 53, 67, 68, 69, 111, 123, 137, 138, 173, 213, 319, 320, 389, 427,
    434, 464, 496, 500, 513, 514, 520, 521, 524, 525, 546, 547, 631, 664, 701, 853, 854,
    910, 921, 925, 1001, 1113, 1153, 1194, 1293, 1628, 1629, 1718, 1719, 1745, 1900, 2099,
    2157, 2221, 2222, 2246, 2268, 2269, 2313, 2345, 2887, 2944, 2945, 2948, 2949, 3000,
    3130, 3250, 3343, 3357, 3389, 3452, 3455, 3544, 3567, 3671, 3784, 3785, 3804, 3863,
    3956, 4305, 4306, 4307, 4341, 4342, 4500, 4551, 4555, 4569, 4729, 4754, 4784))
_WIRESHARK_BEFORE_GENEVE = frozenset((
    7, 13, 19, 37, 49, 53, 67, 68, 69, 111, 123, 137, 138, 173, 213, 269, 319, 320, 389,
    427, 434, 464, 496, 500, 513, 514, 520, 521, 524, 525, 546, 547, 631, 664, 698, 701,
    853, 854, 910, 921, 925, 1001, 1113, 1153, 1194, 1293, 1628, 1629, 1718, 1719, 1745,
    1900, 2099, 2157, 2221, 2222, 2246, 2268, 2269, 2313, 2345, 2887, 2944, 2945, 2948,
    2949, 3000, 3130, 3250, 3343, 3357, 3389, 3452, 3455, 3544, 3567, 3671, 3784, 3785,
    3804, 3863, 4305, 4306, 4307, 4341, 4342, 4500, 4551, 4555, 4569, 4729, 4754, 4784,
    4790, 4791, 4991, 5031, 5072, 5246, 5247, 5350, 5351, 5353, 5355, 5404, 5405, 5436,
    5567, 5683, 5684, 5868, 6073))

#: entries per address cache (text of an address, of an address pair); a full cache is
#: cleared. 65,536 held ~4 MiB on the 4 M-packet benchmark file; a miss costs ~0.3 us.
_CACHE_MAX = 4096

_inet_ntoa = socket.inet_ntoa
_inet_ntop = socket.inet_ntop
_AF_INET6 = socket.AF_INET6


class _Datagram:
    """Fragments of one IP datagram being reassembled."""

    __slots__ = ("first_ts", "parts", "total", "next_header", "have", "ignored")

    def __init__(self, first_ts: int) -> None:
        self.first_ts = first_ts
        self.parts: dict[int, bytes] = {}
        self.total = -1            # known once the last fragment (MF=0) arrived
        self.next_header = -1      # IPv6: next header after the fragment header of offset 0
        self.have = 0              # bytes of distinct fragments seen (of an ignored datagram)
        #: UDP on ports of no tunnel (the first fragment said so): its fragments are counted
        #: (``parts`` keeps their offsets, not their bytes) until all arrived, then forgotten
        self.ignored = False


def _short_tcp(n: int, wirelen: int) -> str:
    """The note for a frame that ends inside its TCP header."""
    if wirelen > n:
        return (f"TCP header not captured: the capture kept {n} of the frame's {wirelen} bytes "
                f"(snap length {n}; capture again with `tcpdump -s 0`)")
    return "TCP header not captured (the frame ends inside it)"


def _ppp(data: bytes, off: int, n: int) -> tuple[int, int] | None:
    """PPP from ``off`` (RFC 1661, with or without the RFC 1662 address and control bytes
    0xFF 0x03, protocol field of two bytes or compressed to one): (Ethernet type of IPv4/IPv6,
    or -1; offset of the network header)."""
    if off + 2 <= n and data[off] == 0xFF and data[off + 1] == 0x03:
        off += 2
    if off < n and data[off] & 1:                      # compressed protocol field
        return _PPP_TYPES.get(data[off], -1), off + 1
    if off + 2 > n:
        return None
    return _PPP_TYPES.get((data[off] << 8) | data[off + 1], -1), off + 2


def _other_link(linktype: int, data: bytes, n: int) -> tuple[int, int] | None:
    """The less common link types (``_OTHER_LINKS``): (Ethernet type of what follows, or -1
    for a packet that is not IP; offset of the network header), None for a frame too short
    for its header. Layouts from tcpdump.org's link-layer header types."""
    if linktype == 9:                                   # PPP
        return _ppp(data, 0, n)
    if linktype == 204:                                 # PPP after a direction byte
        return _ppp(data, 1, n) if n >= 1 else None
    if linktype == 50 or linktype == 104:               # PPP in HDLC framing, Cisco HDLC
        if n < 4:
            return None
        if data[0] == 0xFF:
            return _ppp(data, 0, n)
        return (data[2] << 8) | data[3], 4              # Cisco: address, control, Ethernet type
    if linktype == 226:                                 # Solaris ipnet: 24-byte header
        if n < 24:
            return None
        fam = data[1]
        return (0x0800 if fam == 2 else 0x86DD if fam == 26 else -1), 24
    if linktype == 109:                                 # OpenBSD enc(4): 12-byte header
        if n < 13:
            return None
        v = data[12] >> 4
        return (0x0800 if v == 4 else 0x86DD if v == 6 else -1), 12
    if linktype == 258:                                 # Apple PKTAP (macOS tcpdump -i any/pktap)
        if n < 12:
            return None
        hlen, dlt = struct.unpack_from("<I4xI", data, 0)
        if hlen < 12 or hlen > n:
            return None
        if dlt == 1:
            if hlen + 14 > n:
                return None
            return (data[hlen + 12] << 8) | data[hlen + 13], hlen + 14
        if dlt == 0:
            if hlen + 4 > n:
                return None
            fam = struct.unpack_from("<I", data, hlen)[0]
            return (0x0800 if fam == 2 else 0x86DD if fam in _NULL_V6 else -1), hlen + 4
        if dlt == 12 or dlt == 14:
            if hlen >= n:
                return None
            v = data[hlen] >> 4
            return (0x0800 if v == 4 else 0x86DD if v == 6 else -1), hlen
        return -1, hlen
    if linktype == 197:                                 # Endace ERF record
        if n < 16:
            return None
        rtype = data[8]
        off = 16
        if rtype & 0x80:                                # extension headers, 8 bytes each
            while True:
                if off + 8 > n:
                    return None
                more = data[off] & 0x80
                off += 8
                if not more:
                    break
        rtype &= 0x7F
        if rtype in _ERF_ETHERNET:                      # 2 bytes of padding, then Ethernet
            if off + 16 > n:
                return None
            return (data[off + 14] << 8) | data[off + 15], off + 16
        return _ERF_IP.get(rtype, -1), off
    return -1, 0


#: link types ``_other_link`` decodes: PPP (9), PPP in HDLC framing (50), OpenBSD enc (109),
#: Cisco HDLC (104), Endace ERF (197), PPP with direction (204), Solaris ipnet (226), Apple
#: PKTAP (258)
_OTHER_LINKS = frozenset((9, 50, 104, 109, 197, 204, 226, 258))


class Decoder:
    """Stateful frame decoder; see the module docstring."""

    __slots__ = ("notes", "frames", "tcp_segments", "undecodable", "on_cut", "_noted", "_frags",
                 "_addr4", "_addr6", "_pairs")

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.frames = 0
        self.tcp_segments = 0
        self.undecodable = 0
        #: called with the captured length of each TCP frame the snap length cut (its segment
        #: has ``missing`` bytes): what the capture's snap length was, as the frames show it
        self.on_cut: Callable[[int], None] | None = None
        self._noted: set[object] = set()
        self._frags: dict[tuple[object, ...], _Datagram] = {}
        self._addr4: dict[bytes, str] = {}
        self._addr6: dict[bytes, str] = {}
        self._pairs: dict[bytes, tuple[str, str]] = {}

    # ------------------------------------------------------------------ helpers
    def _note(self, key: object, text: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self.notes.append(text)

    def _bad(self, number: int, kind: str, text: str) -> None:
        self.undecodable += 1
        self._note(kind, f"frame {number}: {text}; such frames are skipped")

    def _a4(self, b: bytes) -> str:
        cache = self._addr4
        s = cache.get(b)
        if s is None:
            if len(cache) > _CACHE_MAX:
                cache.clear()
            s = cache[b] = _inet_ntoa(b)
        return s

    def _a6(self, b: bytes) -> str:
        cache = self._addr6
        s = cache.get(b)
        if s is None:
            if len(cache) > _CACHE_MAX:
                cache.clear()
            s = cache[b] = _inet_ntop(_AF_INET6, b)
        return s

    # ------------------------------------------------------------------ entry points
    def decode(self, frame: RawFrame) -> TcpSegment | None:
        """Decode one ``RawFrame``."""
        return self.decode_raw(frame.linktype, frame.data, frame.wirelen, frame.number,
                               frame.ts_ns)

    def decode_raw(self, linktype: int, data: bytes, wirelen: int, number: int,
                   ts_ns: int) -> TcpSegment | None:
        """Decode one frame given as its parts (the fast path)."""
        self.frames += 1
        n = len(data)
        # Fast path: Ethernet, IPv4 without options, not a fragment, TCP, not cut.
        if linktype == 1 and n >= 54 and data[12] == 8 and data[13] == 0 and data[14] == 0x45:
            _vihl, tot, ff, proto, addrs, sport, dport, seq, ack, doff, flags = _V4TCP(data, 14)
            ip_end = 14 + tot
            pstart = 34 + ((doff >> 4) << 2)
            if proto == 6 and not ff & 0x3FFF and ip_end <= n and 54 <= pstart <= ip_end:
                pair = self._pairs.get(addrs)
                if pair is None:
                    pair = self._pair4(addrs)
                self.tcp_segments += 1
                return TcpSegment(number, ts_ns, pair[0], sport, pair[1], dport, seq, ack, flags,
                                  data[pstart:ip_end], 0, data[22])
        elif (linktype == 1 and n >= 74 and data[12] == 0x86 and data[13] == 0xDD
              and data[20] == 6 and data[14] >> 4 == 6):
            plen, addrs, sport, dport, seq, ack, doff, flags = _V6TCP(data, 14)
            ip_end = 54 + plen
            pstart = 54 + ((doff >> 4) << 2)
            if plen and ip_end <= n and 74 <= pstart <= ip_end:
                pair = self._pairs.get(addrs)
                if pair is None:
                    pair = self._pair6(addrs)
                self.tcp_segments += 1
                return TcpSegment(number, ts_ns, pair[0], sport, pair[1], dport, seq, ack, flags,
                                  data[pstart:ip_end], 0, data[21])
        return self._decode(linktype, data, n, wirelen, number, ts_ns)

    def addresses(self, addrs: bytes) -> tuple[str, str]:
        """(source, destination) as text from the raw address bytes of an IPv4 (8 bytes) or
        IPv6 (32 bytes) header, cached (for a caller that parsed the header itself)."""
        pair = self._pairs.get(addrs)
        if pair is None:
            pair = self._pair4(addrs) if len(addrs) == 8 else self._pair6(addrs)
        return pair

    def count(self, frames: int, tcp_segments: int) -> None:
        """``frames`` frames, ``tcp_segments`` of them TCP, were decoded by a caller that
        parsed their headers itself: count them as ``decode_raw`` would."""
        self.frames += frames
        self.tcp_segments += tcp_segments

    def _pair4(self, addrs: bytes) -> tuple[str, str]:
        pairs = self._pairs
        if len(pairs) > _CACHE_MAX:
            pairs.clear()
        pair = pairs[addrs] = (self._a4(addrs[:4]), self._a4(addrs[4:]))
        return pair

    def _pair6(self, addrs: bytes) -> tuple[str, str]:
        pairs = self._pairs
        if len(pairs) > _CACHE_MAX:
            pairs.clear()
        pair = pairs[addrs] = (self._a6(addrs[:16]), self._a6(addrs[16:]))
        return pair

    def _decode(self, linktype: int, data: bytes, n: int, wirelen: int, number: int,
                ts_ns: int) -> TcpSegment | None:
        """Every case the fast path does not take."""
        if linktype < 0:
            return None  # a frame without a packet (pcapng custom block)
        # ---- link layer: find (ethertype-like value, offset of the network header)
        if linktype == 1:
            if n < 14:
                self._bad(number, "short-link", "frame too short for its link-layer header")
                return None
            et = (data[12] << 8) | data[13]
            off = 14
        elif linktype == 113:
            if n < 16:
                self._bad(number, "short-link", "frame too short for its link-layer header")
                return None
            et = (data[14] << 8) | data[15]
            off = 16
        elif linktype == 276:
            if n < 20:
                self._bad(number, "short-link", "frame too short for its link-layer header")
                return None
            et = (data[0] << 8) | data[1]
            off = 20
        elif linktype in _RAW_LINKTYPES or linktype == 228 or linktype == 229:
            if n < 1:
                self._bad(number, "short-link", "frame too short for its link-layer header")
                return None
            v = data[0] >> 4
            et = 0x0800 if v == 4 else 0x86DD if v == 6 else -1
            if (linktype == 228 and v != 4) or (linktype == 229 and v != 6):
                et = -1
            off = 0
        elif linktype == 0 or linktype == 108:
            if n < 4:
                self._bad(number, "short-link", "frame too short for its link-layer header")
                return None
            if linktype == 108:
                fam = struct.unpack_from("!I", data, 0)[0]
            else:
                fam = struct.unpack_from("<I", data, 0)[0]
                if fam > 0xFFFF:    # written by a big-endian host
                    fam = struct.unpack_from(">I", data, 0)[0]
            et = 0x0800 if fam == 2 else 0x86DD if fam in _NULL_V6 else -1
            off = 4
        elif linktype == 117:               # pflog: header of data[0] bytes, word-aligned
            if n < 4 or data[0] < 4:
                self._bad(number, "short-link", "frame too short for its link-layer header")
                return None
            fam = data[1]
            et = 0x0800 if fam == 2 else 0x86DD if fam in _NULL_V6 else -1
            off = (data[0] + 3) & ~3
        elif linktype == 239:
            found = self._nflog(data, n, number)
            if found is None:
                return None
            et, off = found
        elif linktype in _OTHER_LINKS:
            found = _other_link(linktype, data, n)
            if found is None:
                self._bad(number, "short-link", "frame too short for its link-layer header")
                return None
            et, off = found
        else:
            self.undecodable += 1
            self._note(("linktype", linktype),
                       f"frame {number}: link type {linktype} not decoded; such frames are "
                       f"skipped (--engine tshark decodes every link type Wireshark knows)")
            return None
        return self._network(et, data, off, n, wirelen, number, ts_ns, 0)

    def _network(self, et: int, data: bytes, off: int, n: int, wirelen: int, number: int,
                 ts_ns: int, depth: int) -> TcpSegment | None:
        """From the link layer's type (an Ethernet type; -1: none) at ``off``: tags, labels and
        PPPoE, then IPv4/IPv6 (and the tunnels they carry, ``depth`` deep so far), then TCP.
        Offsets stay those of ``data``, the whole frame, so that a snaplen cut is measured
        against the frame's wire length at any depth."""
        if et in _VLAN_TYPES:
            while et in _VLAN_TYPES:
                if off + 4 > n:
                    self._bad(number, "short-vlan", "frame cut inside a VLAN tag")
                    return None
                et = (data[off + 2] << 8) | data[off + 3]
                off += 4
        if et == 0x8864:                       # PPPoE session: 6-byte header, PPP protocol
            if off + 8 > n:
                self._bad(number, "short-link", "frame cut inside a PPPoE header")
                return None
            ppp = (data[off + 6] << 8) | data[off + 7]
            et = 0x0800 if ppp == 0x0021 else 0x86DD if ppp == 0x0057 else -1
            off += 8
        if et == 0x8847 or et == 0x8848:       # MPLS: labels down to the bottom of the stack
            while True:
                if off + 4 > n:
                    self._bad(number, "short-link", "frame cut inside an MPLS label stack")
                    return None
                bottom = data[off + 2] & 1
                off += 4
                if bottom:
                    break
            v = data[off] >> 4 if off < n else 0
            et = 0x0800 if v == 4 else 0x86DD if v == 6 else -1
        # ---- network layer
        if et == 0x0800:
            if off + 20 > n:
                self._bad(number, "short-ip", "frame cut inside the IPv4 header")
                return None
            vihl, tot, ident, ff, ttl, proto = _V4(data, off)
            if proto != 6:
                if proto in TUNNEL_IP_PROTOCOLS or proto == 17:
                    return self._ip4_tunnel(data, off, vihl, tot, ident, ff, proto, n, wirelen,
                                            number, ts_ns, depth)
                return None
            ihl = (vihl & 0x0F) << 2
            if vihl >> 4 != 4 or ihl < 20:
                self._bad(number, "bad-ip", "bogus IPv4 header (version or header length)")
                return None
            hend = off + ihl
            if hend > n:
                self._bad(number, "short-ip", "frame cut inside the IPv4 header")
                return None
            if tot == 0:                       # TSO: length not filled in
                ip_end = max(n, wirelen)
            else:
                if tot < ihl:
                    self._bad(number, "bad-ip", "bogus IPv4 header (total length too small)")
                    return None
                ip_end = off + tot
            src = self._a4(data[off + 12:off + 16])
            dst = self._a4(data[off + 16:off + 20])
            if ff & 0x3FFF:                    # MF set or offset != 0: a fragment
                return self._fragment((4, src, dst, ident, 6), ff & 0x2000, (ff & 0x1FFF) << 3,
                                      data, hend, ip_end, wirelen, 6, src, dst, number, ts_ns,
                                      0, ttl)
            o = hend
        elif et == 0x86DD:
            if off + 40 > n:
                self._bad(number, "short-ip", "frame cut inside the IPv6 header")
                return None
            if data[off] >> 4 != 6:
                self._bad(number, "bad-ip", "bogus IPv6 header (version)")
                return None
            plen, nh = _V6(data, off + 4)
            ttl = data[off + 7]
            o = off + 40
            ip_end = o + plen if plen else max(n, wirelen)
            src = self._a6(data[off + 8:off + 24])
            dst = self._a6(data[off + 24:off + 40])
            while nh != 6:
                if nh not in _IPV6_EXT:
                    if nh in TUNNEL_IP_PROTOCOLS or nh == 17:
                        return self._tunnel(nh, data, o, ip_end, n, wirelen, number, ts_ns, depth)
                    return None
                if o + 8 > n:
                    self._bad(number, "short-ip", "frame cut inside an IPv6 extension header")
                    return None
                if nh == 44:
                    fo = _H(data, o + 2)[0]
                    if fo & 0xFFF9:            # offset != 0 or M set: a real fragment
                        ident = struct.unpack_from("!I", data, o + 4)[0]
                        return self._fragment((6, src, dst, ident), fo & 1, fo & 0xFFF8,
                                              data, o + 8, ip_end, wirelen, data[o], src, dst,
                                              number, ts_ns, depth, ttl)
                    nh = data[o]
                    o += 8
                elif nh == 51:
                    nh, hl = data[o], (data[o + 1] + 2) << 2
                    o += hl
                else:
                    nh, hl = data[o], (data[o + 1] + 1) << 3
                    o += hl
                if o > ip_end:
                    self._bad(number, "bad-ip", "bogus IPv6 extension header length")
                    return None
        else:
            return None
        # ---- TCP
        if o + 20 > n:
            self._bad(number, "short-tcp", _short_tcp(n, wirelen))
            return None
        sport, dport, seq, ack, doff, flags = _TCP(data, o)
        doff = (doff >> 4) << 2
        pstart = o + doff
        if doff < 20 or pstart > ip_end:
            self._bad(number, "bad-tcp", "bogus TCP header length")
            return None
        if pstart > n:
            self._bad(number, "short-tcp", _short_tcp(n, wirelen))
            return None
        if ip_end <= n:
            self.tcp_segments += 1
            return TcpSegment(number, ts_ns, src, sport, dst, dport, seq, ack, flags,
                              data[pstart:ip_end], 0, ttl)
        # snaplen cut: what was on the wire is bounded by the frame's wire length
        wire_end = ip_end if ip_end <= wirelen else max(wirelen, n)
        self.tcp_segments += 1
        if self.on_cut is not None and wire_end > n:
            self.on_cut(n)
        return TcpSegment(number, ts_ns, src, sport, dst, dport, seq, ack, flags, data[pstart:n],
                          wire_end - n, ttl)

    # ------------------------------------------------------------------ tunnels
    def _ip4_tunnel(self, data: bytes, off: int, vihl: int, tot: int, ident: int, ff: int,
                    proto: int, n: int, wirelen: int, number: int,
                    ts_ns: int, depth: int) -> TcpSegment | None:
        """An IPv4 packet of a tunnel protocol (or UDP, which may carry one). A header that
        makes no sense is skipped without a note, as any non-TCP packet is."""
        ihl = (vihl & 0x0F) << 2
        hend = off + ihl
        if vihl >> 4 != 4 or ihl < 20 or hend > n or (tot and tot < ihl):
            return None
        ip_end = off + tot if tot else max(n, wirelen)
        if ff & 0x3FFF:
            src = self._a4(data[off + 12:off + 16])
            dst = self._a4(data[off + 16:off + 20])
            return self._fragment((4, src, dst, ident, proto), ff & 0x2000, (ff & 0x1FFF) << 3,
                                  data, hend, ip_end, wirelen, proto, src, dst, number, ts_ns,
                                  depth)
        return self._tunnel(proto, data, hend, ip_end, n, wirelen, number, ts_ns, depth)

    def _tunnel(self, proto: int, data: bytes, o: int, ip_end: int, n: int, wirelen: int,
                number: int, ts_ns: int, depth: int) -> TcpSegment | None:
        """The packet inside an IP packet of protocol ``proto`` whose payload is
        ``data[o:ip_end]``: decoded as the outer packet was (``_network``), one level deeper.
        Not TCP and not a tunnel: None."""
        end = ip_end if ip_end < n else n
        if proto == 4:
            et, inner = 0x0800, o
        elif proto == 41:
            et, inner = 0x86DD, o
        elif proto == 47:
            found = self._gre(data, o, end)
            if found is None:
                return None
            et, inner = found
        elif proto == 17:
            if o + 8 > end:
                return None
            sport = (data[o] << 8) | data[o + 1]
            dport = (data[o + 2] << 8) | data[o + 3]
            if dport == 4789 or sport == 4789:          # VXLAN: 8 bytes, then Ethernet
                if (o + 16 > end or not data[o + 8] & 0x08
                        or (sport if dport == 4789 else dport) in _WIRESHARK_BEFORE_VXLAN):
                    return None
                et, inner = -2, o + 16
            elif dport == 6081 or sport == 6081:        # Geneve: 8 bytes + options
                if (o + 16 > end or data[o + 8] >> 6
                        or (sport if dport == 6081 else dport) in _WIRESHARK_BEFORE_GENEVE):
                    return None
                gtype = (data[o + 10] << 8) | data[o + 11]
                inner = o + 16 + ((data[o + 8] & 0x3F) << 2)
                et = -2 if gtype == 0x6558 else _GRE_INNER.get(gtype, -1)
            else:
                return None
        else:
            return None
        if et == -1:
            return None
        if depth + 1 > MAX_TUNNEL_DEPTH:
            self.undecodable += 1
            self._note("tunnel-depth", f"frame {number}: more than {MAX_TUNNEL_DEPTH} tunnels "
                                       f"inside each other; such frames are skipped")
            return None
        if et == -2:                                    # an Ethernet frame inside
            if inner + 14 > end:
                return None
            et = (data[inner + 12] << 8) | data[inner + 13]
            inner += 14
        return self._network(et, data, inner, n, wirelen, number, ts_ns, depth + 1)

    def _gre(self, data: bytes, o: int, end: int) -> tuple[int, int] | None:
        """GRE (RFC 2784/2890, version 0): (type inside, its offset); -2 for Ethernet."""
        if o + 4 > end:
            return None
        flags = (data[o] << 8) | data[o + 1]
        if flags & 0x4007:                  # routing present (RFC 1701) or version != 0
            return None
        ptype = (data[o + 2] << 8) | data[o + 3]
        o += 4 + (4 if flags & 0x8000 else 0) + (4 if flags & 0x2000 else 0)
        seq = flags & 0x1000
        if seq:
            o += 4
        if ptype == 0x6558:                 # transparent Ethernet bridging
            return -2, o
        if ptype == 0x88BE:                 # ERSPAN type II (sequence number set), else type I
            return -2, o + 8 if seq else o
        if ptype == 0x22EB:                 # ERSPAN type III, its optional platform subheader
            if o + 12 > end:
                return None
            return -2, o + 12 + (8 if data[o + 11] & 1 else 0)
        inner = _GRE_INNER.get(ptype)
        return None if inner is None else (inner, o)

    def _nflog(self, data: bytes, n: int, number: int) -> tuple[int, int] | None:
        """Linux NFLOG (link type 239): the packet is the NFULA_PAYLOAD (type 9) TLV. TLV
        lengths and types are in the capturing host's byte order (little-endian hosts: the
        common case; a length that overruns the frame is read big-endian)."""
        if n < 4:
            self._bad(number, "short-link", "frame too short for its link-layer header")
            return None
        fam = data[0]
        o = 4
        while o + 4 <= n:
            tlen = data[o] | (data[o + 1] << 8)
            ttype = data[o + 2] | (data[o + 3] << 8)
            if tlen < 4 or o + tlen > n:
                tlen = (data[o] << 8) | data[o + 1]
                ttype = (data[o + 2] << 8) | data[o + 3]
            if tlen < 4:
                break
            if ttype & 0x7FFF == 9:
                return (0x0800 if fam == 2 else 0x86DD if fam == 10 else -1), o + 4
            o += (tlen + 3) & ~3
        return None

    # ------------------------------------------------------------------ fragments
    def _fragment(self, key: tuple[object, ...], more: int, foff: int, data: bytes, start: int,
                  ip_end: int, wirelen: int, next_header: int, src: str, dst: str,
                  number: int, ts_ns: int, depth: int = 0, ttl: int = 0) -> TcpSegment | None:
        """Store one fragment (its fragmentable part is ``data[start:ip_end]``); return the
        segment when the datagram is complete (with ``ttl``, the TTL or hop limit of the
        fragment that completed it, as Wireshark shows the reassembled packet's)."""
        frags = self._frags
        # expire old datagrams (fragments are rare: a scan is cheap)
        if frags:
            limit = ts_ns - FRAGMENT_TIMEOUT_NS
            for k in [k for k, d in frags.items() if d.first_ts < limit]:
                if not frags.pop(k).ignored:
                    self._note("frag-timeout", f"frame {number}: an incomplete fragmented IP "
                                               f"datagram was dropped after 60 s")
        dg = frags.get(key)
        if next_header == 17:
            # UDP: only a tunnel's matters. The first fragment's ports tell; the datagram of
            # another UDP is forgotten (its other fragments too, as they come), silently.
            if dg is not None and dg.ignored:
                self._ignored_part(key, dg, more, foff, max(0, ip_end - start))
                return None
            if (foff == 0 and start + 4 <= len(data)
                    and ((data[start] << 8) | data[start + 1]) not in TUNNEL_UDP_PORTS
                    and ((data[start + 2] << 8) | data[start + 3]) not in TUNNEL_UDP_PORTS):
                if dg is None:
                    dg = self._new_datagram(key, ts_ns, number)
                dg.ignored = True
                dg.have = sum(len(p) for p in dg.parts.values())
                dg.parts = dict.fromkeys(dg.parts, b"")
                self._ignored_part(key, dg, more, foff, max(0, ip_end - start))
                return None
        if ip_end > len(data):
            self.undecodable += 1
            frags.pop(key, None)
            self._note("frag-cut", f"frame {number}: IP fragment cut by the snapshot length; "
                                   f"its datagram cannot be reassembled and is skipped")
            return None
        chunk = data[start:ip_end]
        end = foff + len(chunk)
        if end > MAX_DATAGRAM or (more and len(chunk) & 7):
            self.undecodable += 1
            frags.pop(key, None)
            self._note("frag-bad", f"frame {number}: bogus IP fragment (too large or misaligned);"
                                   f" its datagram is skipped")
            return None
        if dg is None:
            dg = self._new_datagram(key, ts_ns, number)
        if foff not in dg.parts:               # first copy wins
            dg.parts[foff] = chunk
        if foff == 0:
            dg.next_header = next_header
        if not more:
            dg.total = end
        if dg.total < 0 or dg.next_header < 0:
            return None
        # complete? walk the parts in offset order
        pos = 0
        pieces = []
        for fo in sorted(dg.parts):
            part = dg.parts[fo]
            if fo > pos:
                return None                    # a hole
            if fo + len(part) > pos:
                pieces.append(part[pos - fo:])
                pos = fo + len(part)
        if pos < dg.total:
            return None
        del frags[key]
        payload = b"".join(pieces)[:dg.total]
        return self._reassembled(key[0] == 6, dg.next_header, payload, src, dst, number, ts_ns,
                                 depth, ttl)

    def _new_datagram(self, key: tuple[object, ...], ts_ns: int, number: int) -> _Datagram:
        frags = self._frags
        if len(frags) >= MAX_PENDING_DATAGRAMS:
            del frags[next(iter(frags))]
            self._note("frag-limit", f"frame {number}: more than {MAX_PENDING_DATAGRAMS} "
                                     f"fragmented IP datagrams pending; the oldest was dropped")
        dg = frags[key] = _Datagram(ts_ns)
        return dg

    def _ignored_part(self, key: tuple[object, ...], dg: _Datagram, more: int, foff: int,
                      size: int) -> None:
        """One fragment of an ignored datagram: counted; all of them seen, it is forgotten
        (so that a later datagram with the same IP identification is not ignored)."""
        if foff not in dg.parts:
            dg.parts[foff] = b""
            dg.have += size
        if not more:
            dg.total = foff + size
        if 0 <= dg.total <= dg.have:
            del self._frags[key]

    def _reassembled(self, v6: bool, nh: int, p: bytes, src: str, dst: str, number: int,
                     ts_ns: int, depth: int, ttl: int = 0) -> TcpSegment | None:
        o = 0
        n = len(p)
        if v6:
            while nh != 6:
                if nh in TUNNEL_IP_PROTOCOLS or nh == 17:
                    return self._tunnel(nh, p, o, n, n, n, number, ts_ns, depth)
                if nh not in (0, 43, 60, 51) or o + 8 > n:
                    return None
                hl = (p[o + 1] + 2) << 2 if nh == 51 else (p[o + 1] + 1) << 3
                nh = p[o]
                o += hl
        elif nh != 6:
            if nh in TUNNEL_IP_PROTOCOLS or nh == 17:
                return self._tunnel(nh, p, 0, n, n, n, number, ts_ns, depth)
            return None
        if o + 20 > n:
            self._bad(number, "bad-tcp", "reassembled datagram too short for a TCP header")
            return None
        sport, dport, seq, ack, doff, flags = _TCP(p, o)
        doff = (doff >> 4) << 2
        if doff < 20 or o + doff > n:
            self._bad(number, "bad-tcp", "bogus TCP header length")
            return None
        self.tcp_segments += 1
        return TcpSegment(number, ts_ns, src, sport, dst, dport, seq, ack, flags, p[o + doff:], 0,
                          ttl)
