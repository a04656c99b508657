"""The record a capture reader yields before link-layer decoding."""
from __future__ import annotations

__all__ = ["RawFrame", "LINKTYPE"]

#: libpcap LINKTYPE_* values pcapsmtp decodes.
LINKTYPE = {
    "NULL": 0,            # BSD loopback, host-order 4-byte family
    "ETHERNET": 1,
    "RAW": 101,           # raw IPv4/IPv6
    "LOOP": 108,          # OpenBSD loopback, network-order family
    "LINUX_SLL": 113,
    "IPV4": 228,
    "IPV6": 229,
    "LINUX_SLL2": 276,
}


class RawFrame:
    """One capture record.

    - ``number``: 1-based record number (Wireshark's frame.number), counting every record.
    - ``ts_ns``: timestamp in nanoseconds since the epoch.
    - ``linktype``: the record's link type (per interface in pcapng).
    - ``data``: captured bytes; ``wirelen``: original length on the wire.
    - ``offset``: byte offset of the record in the (decompressed) file, for error messages.
    - ``interface``: pcapng interface id (0 for pcap and live).
    """

    __slots__ = ("number", "ts_ns", "linktype", "data", "wirelen", "offset", "interface")

    def __init__(self, number: int, ts_ns: int, linktype: int, data: bytes, wirelen: int,
                 offset: int = 0, interface: int = 0) -> None:
        self.number = number
        self.ts_ns = ts_ns
        self.linktype = linktype
        self.data = data
        self.wirelen = wirelen
        self.offset = offset
        self.interface = interface

    def __repr__(self) -> str:
        return (f"RawFrame(number={self.number}, ts_ns={self.ts_ns}, linktype={self.linktype}, "
                f"caplen={len(self.data)}, wirelen={self.wirelen}, offset={self.offset})")
