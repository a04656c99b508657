"""Community ID v1 flow hash (as Zeek and Suricata log it), for TCP."""
from __future__ import annotations

import base64
import hashlib
import ipaddress
import socket
import struct
from functools import lru_cache

__all__ = ["community_id"]


def community_id(src_ip: str, sport: int, dst_ip: str, dport: int, *, seed: int = 0,
                 proto: int = 6) -> str:
    """``1:<base64 sha1>`` of the ordered endpoint pair (spec: github.com/corelight/community-id-spec)."""
    a = _packed(src_ip)
    b = _packed(dst_ip)
    if (a, sport) > (b, dport):
        a, b, sport, dport = b, a, dport, sport
    data = struct.pack("!H", seed) + a + b + struct.pack("!BBHH", proto, 0, sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


# The conversations of a capture share few addresses: each is packed once (bounded).
@lru_cache(maxsize=1024)
def _packed(ip: str) -> bytes:
    """The address's network-order bytes (``inet_pton`` for the decoders' canonical text,
    ``ipaddress`` for anything else, e.g. a scoped IPv6 address)."""
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    except OSError:
        return ipaddress.ip_address(ip).packed
