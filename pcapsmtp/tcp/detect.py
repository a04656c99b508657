"""Is a TCP conversation SMTP (or a proxy tunnel to SMTP)? Decided by content, from the first
bytes of each direction *in sequence order*, however they were cut into segments.

The public API is small, pure and sans-I/O, so that any loop (the reassembler, the fused file
loop, a compiled loop) can call it:

- ``classify_start(head, final=False)``: what the first bytes of one direction (``head``, at
  most ``HEAD_BYTES`` are read) start: ``START_SERVER`` (an SMTP greeting: a ``220``, ``421``
  or ``554`` line), ``START_CLIENT`` (``EHLO``/``HELO``/``LHLO``, any case), ``START_TUNNEL``
  (an HTTP ``CONNECT`` request or a SOCKS5 greeting, or the start of one), ``START_OTHER``
  (none of these), or ``START_MORE``: ``head`` is a proper prefix of an SMTP start (``2``,
  ``22``, ``EHL``, ``EHLO`` without the byte after it...), so more bytes are needed.
  ``final=True`` says no more bytes will come: ``START_MORE`` is then never returned
  (``EHLO`` alone is a client hello, ``22`` is nothing).
- ``may_matter(head)``: False only when ``head`` (a direction's first payload bytes) is
  decidedly none of the above: a caller may then forget the conversation as not SMTP.
- ``is_smtp_start(payload)``: the side whose first bytes these are, or None (a whole first
  segment: ``classify_start(payload, final=True)`` read as a side).
- ``parse_tunnel(client, server)``: where an HTTP CONNECT or SOCKS5 handshake ends, once the
  proxy accepted and the server greets in SMTP inside.

How the reassembler uses it (``tcp.reassembler``): a conversation on a port outside the SMTP
set is decided at its first payload when that payload is at the start of its direction and
decisive. Otherwise (a greeting cut into 1-byte segments, or a first payload that is not at the
start of its direction because earlier bytes arrive later) the conversation is *pending*: its
segments are held (bounded: ``ReassemblyConfig.detect_segments`` segments and
``detect_bytes`` payload bytes per conversation, ``max_pending`` conversations at once) and
each direction's first ``HEAD_BYTES`` are put together in sequence order until one direction
decides. Then the held segments are replayed, in capture order, as if the conversation had been
followed from its first segment.
"""
from __future__ import annotations

from pcapsmtp.model import Side

__all__ = ["HEAD_BYTES", "START_MORE", "START_OTHER", "START_SERVER", "START_CLIENT",
           "START_TUNNEL", "classify_start", "may_matter", "is_smtp_start", "tunnel_kind",
           "parse_tunnel", "TUNNEL_PENDING", "TUNNEL_FAILED", "TUNNEL_OPEN", "TUNNEL_HTTP",
           "TUNNEL_SOCKS5"]

#: the number of first bytes of a direction that decide (``CONNECT `` is the longest start)
HEAD_BYTES = 8

START_MORE = 0
START_OTHER = 1
START_SERVER = 2
START_CLIENT = 3
START_TUNNEL = 4

_SERVER_STARTS = frozenset({b"220 ", b"220-", b"421 ", b"421-", b"554 ", b"554-"})
_SERVER_PREFIXES = frozenset(s[:n] for s in _SERVER_STARTS for n in range(1, 4))
_CLIENT_VERBS = frozenset({b"EHLO", b"HELO", b"LHLO"})
_CLIENT_PREFIXES = frozenset(v[:n] for v in _CLIENT_VERBS for n in range(1, 4))
_VERB_ENDS = frozenset({b" ", b"\r", b"\n", b"\t", b""})


def is_smtp_start(payload: bytes) -> Side | None:
    """The side whose first payload this looks like, when no more bytes of it will be seen:
    a server greeting (220/421/554 line start) or a client hello (EHLO/HELO/LHLO, any case).
    None otherwise. ``classify_start(payload, final=True)`` read as a side."""
    cls = classify_start(payload[:HEAD_BYTES], True)
    return Side.SERVER if cls == START_SERVER else Side.CLIENT if cls == START_CLIENT else None


def classify_start(head: bytes, final: bool = False) -> int:
    """What the first bytes of one direction start (see the module's docstring)."""
    n = len(head)
    if n >= 4:
        h4 = head[:4]
        if h4 in _SERVER_STARTS:
            return START_SERVER
        if h4.upper() in _CLIENT_VERBS:
            if n >= 5:
                return START_CLIENT if head[4:5] in _VERB_ENDS else START_OTHER
            return START_CLIENT if final else START_MORE
    elif n == 0:
        return START_OTHER if final else START_MORE
    elif not final and (head in _SERVER_PREFIXES or head.upper() in _CLIENT_PREFIXES):
        return START_MORE
    if tunnel_kind(head):
        return START_TUNNEL
    return START_OTHER


def may_matter(head: bytes) -> bool:
    """False when a direction whose first payload bytes are ``head`` cannot be SMTP or a proxy
    handshake (however many bytes follow).

    The compiled file loop has a C twin of this rule (``engine/hotloop_c.pyx``, ``_may_matter``:
    the server starts, the client verbs, their ends and the proxy handshakes written out as
    bytes): a change here goes there too; ``tests/perf/test_compiled_classify.py`` compares the
    two on every prefix it draws."""
    return classify_start(head) != START_OTHER


# --------------------------------------------------------------------------- tunnels

#: ``parse_tunnel`` results
TUNNEL_PENDING = 0
TUNNEL_FAILED = 1
TUNNEL_OPEN = 2

#: ``tunnel_kind`` results (0: none)
TUNNEL_HTTP = 1
TUNNEL_SOCKS5 = 2


def tunnel_kind(first: bytes) -> int:
    """The proxy protocol a conversation's first payload (client to proxy) starts, or 0."""
    if first and first[:8] == b"CONNECT "[:len(first)]:
        return TUNNEL_HTTP          # (or the start of it: a request cut into small segments)
    if first[:1] == b"\x05" and (len(first) < 2 or 1 <= first[1] <= 16):
        return TUNNEL_SOCKS5
    return 0


def _head_end(b: bytes) -> int:
    """Index after the blank line ending an HTTP head, or -1."""
    i = b.find(b"\r\n\r\n")
    if i >= 0:
        j = b.find(b"\n\n", 0, i)
        return j + 2 if j >= 0 else i + 4
    i = b.find(b"\n\n")
    return i + 2 if i >= 0 else -1


def _socks_addr_end(b: bytes, i: int) -> int:
    """End of the ATYP/address/port at ``b[i:]`` of a SOCKS5 request or reply; -1 when more
    bytes are needed, -2 for an unknown address type."""
    if len(b) <= i:
        return -1
    atyp = b[i]
    if atyp == 1:
        end = i + 1 + 4 + 2
    elif atyp == 4:
        end = i + 1 + 16 + 2
    elif atyp == 3:
        if len(b) <= i + 1:
            return -1
        end = i + 2 + b[i + 1] + 2
    else:
        return -2
    return end if len(b) >= end else -1


def _parse_socks5(c: bytes, s: bytes) -> tuple[int, int, int]:
    if len(c) < 2:
        return (TUNNEL_PENDING if c == b"\x05" else TUNNEL_FAILED), 0, 0
    if c[0] != 5 or not 1 <= c[1] <= 16:
        return TUNNEL_FAILED, 0, 0
    i = 2 + c[1]                                # client greeting: VER NMETHODS METHODS
    if len(c) < i or len(s) < 2:
        return TUNNEL_PENDING, 0, 0
    if s[0] != 5:
        return TUNNEL_FAILED, 0, 0
    j = 2                                       # server choice: VER METHOD
    if s[1] == 2:                               # username/password (RFC 1929)
        if len(c) < i + 2:
            return TUNNEL_PENDING, 0, 0
        if c[i] != 1:
            return TUNNEL_FAILED, 0, 0
        k = i + 2 + c[i + 1]
        if len(c) <= k:
            return TUNNEL_PENDING, 0, 0
        i = k + 1 + c[k]
        if len(c) < i or len(s) < 4:
            return TUNNEL_PENDING, 0, 0
        if s[2] != 1 or s[3] != 0:
            return TUNNEL_FAILED, 0, 0
        j = 4
    elif s[1] != 0:
        return TUNNEL_FAILED, 0, 0
    if len(c) < i + 3:                          # request: VER CMD=CONNECT RSV ATYP ADDR PORT
        return TUNNEL_PENDING, 0, 0
    if c[i] != 5 or c[i + 1] != 1:
        return TUNNEL_FAILED, 0, 0
    cend = _socks_addr_end(c, i + 3)
    if cend == -2:
        return TUNNEL_FAILED, 0, 0
    if cend < 0 or len(s) < j + 3:
        return TUNNEL_PENDING, 0, 0
    if s[j] != 5 or s[j + 1] != 0:              # reply: VER REP=succeeded RSV ATYP ADDR PORT
        return TUNNEL_FAILED, 0, 0
    send = _socks_addr_end(s, j + 3)
    if send == -2:
        return TUNNEL_FAILED, 0, 0
    if send < 0:
        return TUNNEL_PENDING, 0, 0
    return TUNNEL_OPEN, cend, send


def _parse_http(c: bytes, s: bytes) -> tuple[int, int, int]:
    if c[:8] != b"CONNECT ":
        return (TUNNEL_PENDING if b"CONNECT ".startswith(c) else TUNNEL_FAILED), 0, 0
    if len(s) < 12:
        if s[:7] != b"HTTP/1."[:len(s)]:
            return TUNNEL_FAILED, 0, 0
        return TUNNEL_PENDING, 0, 0
    if s[:7] != b"HTTP/1." or s[8:12] != b" 200":
        return TUNNEL_FAILED, 0, 0
    send = _head_end(s)
    cend = _head_end(c)
    if send < 0 or cend < 0:
        return TUNNEL_PENDING, 0, 0
    return TUNNEL_OPEN, cend, send


def parse_tunnel(client: bytes, server: bytes) -> tuple[int, int, int]:
    """Where an HTTP CONNECT or SOCKS5 proxy handshake ends and the tunnelled bytes start.

    ``client``/``server``: the first bytes of each side, in order. Returns ``(status,
    client_start, server_start)``: ``TUNNEL_OPEN`` with the offsets of each side's first
    tunnelled byte, once the proxy accepted and the server's first tunnelled bytes are an SMTP
    greeting; ``TUNNEL_PENDING`` while more bytes are needed; ``TUNNEL_FAILED`` otherwise
    (not a proxy handshake, refused, or something other than SMTP inside)."""
    kind = tunnel_kind(client)
    if kind == TUNNEL_HTTP:
        st, cend, send = _parse_http(client, server)
    elif kind == TUNNEL_SOCKS5:
        st, cend, send = _parse_socks5(client, server)
    else:
        return TUNNEL_FAILED, 0, 0
    if st != TUNNEL_OPEN:
        return st, 0, 0
    rest = server[send:send + 4]
    if len(rest) < 4:
        return TUNNEL_PENDING, 0, 0
    if is_smtp_start(rest) is not Side.SERVER:
        return TUNNEL_FAILED, 0, 0
    return TUNNEL_OPEN, cend, send
