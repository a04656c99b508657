"""Wireshark references: display filters and the tshark command that applies them.

All filters use only syntax Wireshark/tshark 4.0 parses (checked against tshark 4.0.17 in
``tests/wireshark``):

- ``conversation_filter``: ``ip.addr == A && tcp.port == P && ip.addr == B && tcp.port == Q``
  (``ipv6.addr`` for IPv6 addresses), the contract's ``wireshark_filter``. It matches both
  directions of the conversation. Like Wireshark's own "Conversation Filter" it does not
  tie each port to its address, so a second conversation that swaps the two ports between
  the same hosts would match too (SMTP never does that in practice);
- ``frames_filter``: ``frame.number in {1, 2, 3}``. Wireshark 4.0 requires the commas:
  the older whitespace-separated form ``{1 2 3}`` is a syntax error in tshark 4.0.17
  ("\"2\" was unexpected in this context"). Runs of three or more consecutive frames become
  ranges ``a..b`` (also 4.0 syntax), which keeps long selections short.
"""
from __future__ import annotations

import ipaddress
import shlex
import socket
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["conversation_filter", "frames_filter", "tshark_command"]


# The conversations of a capture share few addresses (a relay's own, its peers'): each is
# parsed once, not twice per conversation. Bounded; a bad address raises and is not cached.
@lru_cache(maxsize=1024)
def _addr_field(ip: str) -> tuple[str, str]:
    """(field, normalized address) for a textual IPv4/IPv6 address."""
    if ":" not in ip:
        # the decoders' dotted quad (``inet_ntop``) is already ``ipaddress``'s form: an
        # address that comes back unchanged needs no parse (a relay's clients each have
        # their own address, so the cache rarely helps them)
        try:
            if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, ip)) == ip:
                return "ip.addr", ip
        except OSError:
            pass
    try:
        addr = ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError as exc:
        raise ValueError(f"not an IP address: {ip!r}") from exc
    if isinstance(addr, ipaddress.IPv6Address):
        return "ipv6.addr", addr.compressed
    return "ip.addr", str(addr)


def conversation_filter(client_ip: str, client_port: int, server_ip: str, server_port: int) -> str:
    """The display filter selecting one TCP conversation by addresses and ports."""
    cf, ca = _addr_field(client_ip)
    sf, sa = _addr_field(server_ip)
    for port in (client_port, server_port):
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"not a TCP port: {port!r}")
    return (f"{cf} == {ca} && tcp.port == {client_port} && "
            f"{sf} == {sa} && tcp.port == {server_port}")


def frames_filter(frames: Iterable[int]) -> str:
    """``frame.number in {1, 2, 5..9}`` for the given frame numbers (sorted, duplicates
    dropped). ``frame.number in {}`` is a syntax error, so an empty selection gives
    ``frame.number == 0``: a valid filter that matches nothing."""
    nums = sorted({int(f) for f in frames if int(f) >= 1})
    if not nums:
        return "frame.number == 0"
    parts: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{nums[i]}..{nums[j]}")
        else:
            parts.extend(map(str, nums[i:j + 1]))
        i = j + 1
    return "frame.number in {" + ", ".join(parts) + "}"


def tshark_command(path: str, filter: str) -> str:  # noqa: A002  (the contract's name)
    """A shell command line that shows the frames ``filter`` selects in ``path``."""
    return shlex.join(["tshark", "-r", path, "-Y", filter])
