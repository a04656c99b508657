"""Which conversations ``analyze``, ``explain``, ``report`` and ``live`` show: ``--server``, ``--client``,
``--outcome``, ``--caused-by``, ``--reason``, ``--server-name``. AND across options, OR within
one (a repeated option matches when any of its values does). Addresses are addresses only: a
name is a usage error, never resolved.

The selection is applied to final conversations (after the cross-conversation steps such as
tls-fallback), before redaction, in the process that writes the output: a ``-j N``, ``--dask``
or ``--rotated`` run selects exactly what its serial run selects. ``live`` selects each
conversation as its verdict comes; what it writes to disk (``--write``) stays the whole capture."""
from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass
from typing import Any

from pcapsmtp.analysis.reasons import BLAMED, REASONS
from pcapsmtp.errors import UsageError

__all__ = ["OUTCOMES", "SIDES", "Endpoint", "Selection", "parse_endpoint", "add_selection",
           "selection", "selected_summary", "SELECTION_HELP",
           "LIVE_SELECTION_HELP"]

#: the outcomes and the sides a verdict can blame, from the catalogue of reasons (one list)
OUTCOMES: tuple[str, ...] = tuple(dict.fromkeys(r.outcome for r in REASONS.values()))
SIDES: tuple[str, ...] = tuple(dict.fromkeys(
    [r.caused_by for r in REASONS.values()] + sorted(BLAMED)))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SELECTION_HELP = ("With a selection, only the selected conversations are printed (every format), "
                  "and the exit status, --summary (its per-server table included) and the TLS-RPT "
                  "report describe the selected conversations only; the capture's counters "
                  "(packets, frames, reassembly, no-payload attempts) stay the whole capture's.")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An address (or a network) with an optional port."""
    net: Network
    port: int | None

    def matches(self, ep: dict[str, Any]) -> bool:
        if self.port is not None and ep.get("port") != self.port:
            return False
        ip = _ip(ep.get("ip"))
        return ip is not None and ip.version == self.net.version and ip in self.net


_IP_CACHE: dict[str, Any] = {}


def _ip(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return _IP_CACHE[text]
    except KeyError:
        pass
    try:
        ip: Any = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        ip = None
    if len(_IP_CACHE) < 100_000:
        _IP_CACHE[text] = ip
    return ip


def parse_endpoint(opt: str, text: str) -> Endpoint:
    """``ADDR``, ``ADDR:PORT``, ``[IPv6]``, ``[IPv6]:PORT``, a bare IPv6 address, and networks
    (``203.0.113.0/24``, ``[2001:db8::/32]:25``). A name is refused: it is never resolved."""
    s = text.strip()
    addr, port_text = s, None
    if s.startswith("["):
        end = s.find("]")
        if end < 0 or (s[end + 1:] and not s[end + 1:].startswith(":")):
            raise UsageError(f"{opt}: not ADDR[:PORT]: {text!r} (IPv6 with a port: [2001:db8::1]:25)")
        addr, rest = s[1:end], s[end + 1:]
        port_text = rest[1:] if rest else None
    elif s.count(":") == 1:
        addr, port_text = s.split(":")
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise UsageError(f"{opt}: not a TCP port in {text!r}")
        port = int(port_text)
    try:
        net = ipaddress.ip_network(addr, strict=False)
    except ValueError:
        raise UsageError(f"{opt}: not an IP address: {text!r} (addresses only: pcapsmtp never "
                         "resolves a name; IPv6 with a port: [2001:db8::1]:25)") from None
    return Endpoint(net, port)


@dataclass(frozen=True, slots=True)
class Selection:
    servers: tuple[Endpoint, ...] = ()
    clients: tuple[Endpoint, ...] = ()
    outcomes: frozenset[str] = frozenset()
    sides: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()
    names: tuple[str, ...] = ()     #: casefolded substrings of the server's name

    def matches(self, conv: dict[str, Any]) -> bool:
        if self.outcomes and conv.get("outcome") not in self.outcomes:
            return False
        if self.sides and conv.get("caused_by") not in self.sides:
            return False
        if self.reasons and conv.get("reason") not in self.reasons:
            return False
        if self.servers and not any(e.matches(conv.get("server") or {}) for e in self.servers):
            return False
        if self.clients and not any(e.matches(conv.get("client") or {}) for e in self.clients):
            return False
        if self.names:
            name = (conv.get("server_name") or "").casefold()
            if not name or not any(n in name for n in self.names):
                return False
        return True


LIVE_SELECTION_HELP = ("With a selection, only the selected conversations are printed (table rows "
                       "and JSON lines as their verdicts come), the exit status and the summary "
                       "on exit describe the selected conversations only; the capture stays "
                       "whole: --write/--rotate-mb files hold every packet, and the capture's "
                       "counters (packets received, dropped by the kernel, reassembly) and the "
                       "drop reports on stderr are the whole capture's.")


def add_selection(p: argparse.ArgumentParser, scope: str = SELECTION_HELP) -> None:
    """The selection options on ``p``; ``scope`` says what the selection covers for this
    command (``SELECTION_HELP`` for the file commands, ``LIVE_SELECTION_HELP`` for ``live``)."""
    g = p.add_argument_group(
        "selection", "only the conversations that match every option given (a repeated option: "
        "any of its values). " + scope)
    g.add_argument("--server", action="append", default=[], metavar="ADDR[:PORT]",
                   help="the server's address (IPv4, IPv6; [IPv6]:PORT with a port; a network "
                   "such as 203.0.113.0/24 too); an address alone matches any port; never a name")
    g.add_argument("--client", action="append", default=[], metavar="ADDR[:PORT]",
                   help="the client's address, as for --server")
    g.add_argument("--outcome", action="append", default=[], choices=OUTCOMES,
                   help="the conversation's outcome")
    g.add_argument("--caused-by", dest="caused_by", action="append", default=[], choices=SIDES,
                   metavar="SIDE", help="the side the verdict blames: " + ", ".join(SIDES))
    g.add_argument("--reason", action="append", default=[], metavar="CODE",
                   help="the verdict's reason code (docs/verdicts.md)")
    g.add_argument("--server-name", dest="server_name", action="append", default=[],
                   metavar="TEXT", help="the server's name (from its EHLO reply or banner) "
                   "contains TEXT, case-insensitively" + (
                       " (matched before --redact-addresses)" if scope == SELECTION_HELP else ""))


def selected_summary(whole: dict[str, Any], picked: dict[str, Any]) -> dict[str, Any]:
    """A summary under a selection: the conversation counts and the per-server table are the
    selected conversations' (``picked``, a ``Summary.as_dict()`` of them); the capture's own
    counters (packets, frames, reassembly, snap length, connection attempts without payload,
    ``live``'s capture and drop counters) stay the whole capture's (``whole``)."""
    out = dict(whole)
    for key in ("conversations", "outcomes", "reasons", "servers"):
        out[key] = picked[key]
    return out


def selection(args: argparse.Namespace) -> Selection | None:
    """The selection the options ask for (checked: one-line UsageError), or None: everything."""
    reasons = list(getattr(args, "reason", None) or [])
    unknown = [r for r in reasons if r not in REASONS]
    if unknown:
        raise UsageError(f"--reason: unknown reason code {unknown[0]!r} (valid: "
                         f"{', '.join(sorted(REASONS))})")
    sel = Selection(
        servers=tuple(parse_endpoint("--server", t) for t in getattr(args, "server", None) or []),
        clients=tuple(parse_endpoint("--client", t) for t in getattr(args, "client", None) or []),
        outcomes=frozenset(getattr(args, "outcome", None) or ()),
        sides=frozenset(getattr(args, "caused_by", None) or ()),
        reasons=frozenset(reasons),
        names=tuple(n.casefold() for n in getattr(args, "server_name", None) or [] if n))
    if sel == Selection():
        return None
    return sel
