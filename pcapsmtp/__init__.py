"""pcapsmtp: why did STARTTLS not happen, and whose fault was it? Answered from packets alone.

Layers, left to right (dependencies only point rightwards, through ``pipeline``):

    capture/   files (pcap, pcapng, gzip, stdin), live sniffing (scapy), tshark (pyshark)
               -> ``TcpSegment``
    tcp/       reassembly per direction, Wireshark stream numbering -> flow events
    smtp/      sans-I/O SMTP conversation parser: bytes -> typed events
    analysis/  RFC 1869/5321/3207 checks and the verdict per conversation
    render/    table, JSON Lines, CSV, explain, annotated pcapng

``tcp``, ``smtp`` and ``analysis`` import only the standard library and ``pcapsmtp.model``.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
