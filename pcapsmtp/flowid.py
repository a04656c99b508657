"""Community ID v1 flow hash (as Zeek and Suricata log it), for TCP."""
from __future__ import annotations

import base64
import hashlib
import ipaddress
import struct

__all__ = ["community_id"]


def community_id(src_ip: str, sport: int, dst_ip: str, dport: int, *, seed: int = 0,
                 proto: int = 6) -> str:
    """``1:<base64 sha1>`` of the ordered endpoint pair (spec: github.com/corelight/community-id-spec)."""
    a = ipaddress.ip_address(src_ip).packed
    b = ipaddress.ip_address(dst_ip).packed
    if (a, sport) > (b, dport):
        a, b, sport, dport = b, a, dport, sport
    data = struct.pack("!H", seed) + a + b + struct.pack("!BBHH", proto, 0, sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()
