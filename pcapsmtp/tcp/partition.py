"""Which worker follows a conversation: a stable flow hash, split into buckets.

Parallel analysis (``analyze -j N``, ``--dask``) runs N workers over the same capture; each
numbers every TCP conversation (so ``tcp.stream`` stays Wireshark's) but reassembles and
analyses only the conversations whose flow hash falls in its bucket, the way Suricata's and
Zeek's workers balance flows. The hash must be the same in every process and on every
machine (Python's ``hash`` of a string is salted per process), and the same for both
directions of a conversation.
"""
from __future__ import annotations

from zlib import crc32

__all__ = ["flow_bucket"]


def flow_bucket(src: str, sport: int, dst: str, dport: int, buckets: int) -> int:
    """The bucket (0 .. buckets-1) of the conversation between two endpoints, whichever
    direction is given."""
    a, b = (src, sport), (dst, dport)
    if b < a:
        a, b = b, a
    return crc32(f"{a[0]} {a[1]} {b[0]} {b[1]}".encode()) % buckets
