"""Pseudonyms for sharing a report: ``--redact-addresses``.

``Redactor(secret).redact(conv)`` returns a deep copy of a conversation dict (the JSON contract,
plus the internal ``_exchange`` lines of ``explain``) in which

- envelope addresses (``MAIL FROM:<...>``, ``RCPT TO:<...>``, and any ``local@domain`` in any text)
  become ``user-XXXXXX@domain-YYYYYY.example``; ``<>`` stays ``<>``;
- the EHLO/HELO argument, the host name of the banner (the word after ``220``), the host name of the
  first EHLO reply line and ``server_name`` become ``host-ZZZZZZ.example``, and every other
  occurrence of those names (findings, ``detail``, explanation, exchange lines) is replaced too;
- in the texts that are quoted from the capture (banner, EHLO reply lines, exchange lines of the
  peers) every other word shaped like a domain name (``label.label.tld``) is replaced as well;
- IP addresses are kept (they are what the reader needs to find the packets in the capture),
  unless ``ips=True``: then every IP address becomes a pseudonym in ``10.0.0.0/8`` or ``fd00::/8``,
  in the endpoints, the Wireshark filters and every text, and ``community_id`` is recomputed
  from the pseudonyms.

Pseudonyms are ``HMAC-SHA256(key, kind + ":" + lower-cased value)``, truncated to 6 hex digits
(24 bits; collisions are possible in reports with thousands of names and only merge two names).
The key is random per ``Redactor`` (so per run) unless given: with the same key
(``--redact-key``) two reports name the same host or address the same way and can be compared.
Without the key a pseudonym cannot be reversed except by guessing the name and trying it against
a report that used the same key: keep the key private.

Pure: no I/O, no global state.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import hmac
import ipaddress
import os
import re
from typing import Any, Callable

__all__ = ["Redactor"]

_PATH = re.compile(r"(?i)((?:MAIL\s*FROM|RCPT\s*TO)\s*:\s*<)([^<>]{1,512})(>)")
_ADDRESS = re.compile(r"(?<![^\s<>(\[,;:\"'])([^\s<>@,;:\"()\[\]]{1,128}|\"[^\"]{1,128}\")@"
                      r"([A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*|\[[^\]]{1,64}\])")
_DOMAIN = re.compile(r"(?<![\w.@-])((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                     r"[A-Za-z][A-Za-z0-9-]{0,62}[A-Za-z0-9])(?![\w-])\.?", re.ASCII)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|(?:\d{1,3}\.){3}\d{1,3})"
                   r"(?![\w:.])")
_REPLY_CODE = re.compile(r"^\d{3}[ -]?")
_PSEUDO = re.compile(r"^(?:host|domain)-[0-9a-f]{6}\.example$")
#: Keys whose values are produced by pcapsmtp itself, never quoted from a capture.
_SKIP_KEYS = frozenset({"file", "community_id", "outcome", "caused_by", "reason", "code", "side",
                        "rfc", "offered", "tlsrpt_result", "clients", "_line_marks"})
#: Keys whose text is quoted from the capture: every domain-shaped word in them is replaced.
_QUOTED_KEYS = frozenset({"banner", "lines", "argument", "server_name", "names"})


class Redactor:
    """Stable pseudonyms for host names, envelope addresses and (optionally) IP addresses."""

    def __init__(self, secret: bytes | None = None, *, ips: bool = False) -> None:
        self._key = secret if secret is not None else os.urandom(32)
        self.ips = ips

    # ------------------------------------------------------------------ pseudonyms

    def _tag(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}:{value.lower()}".encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()[:6]

    def host(self, name: str) -> str:
        """The pseudonym of a host name (``host-1a2b3c.example``)."""
        if _PSEUDO.match(name):
            return name
        return f"host-{self._tag('host', name.rstrip('.'))}.example"

    def address(self, addr: str) -> str:
        """The pseudonym of an envelope address (``user-9f8e7d@domain-77aa01.example``)."""
        if not addr or "@" not in addr:
            return addr if not addr else f"user-{self._tag('user', addr)}"
        local, _, domain = addr.rpartition("@")
        if local.startswith("user-") and _PSEUDO.match(domain):
            return addr
        return f"user-{self._tag('user', addr)}@domain-{self._tag('domain', domain.rstrip('.'))}.example"

    def ip(self, text: str) -> str:
        """The pseudonym of an IP address (the same family); other text is returned as is."""
        try:
            a = ipaddress.ip_address(text)
        except ValueError:
            return text
        digest = hmac.new(self._key, f"ip:{a.compressed}".encode(), hashlib.sha256).digest()
        if a.version == 4:
            return str(ipaddress.IPv4Address(b"\x0a" + digest[:3]))
        return str(ipaddress.IPv6Address(b"\xfd" + digest[:15]))

    # ------------------------------------------------------------------ conversations

    def redact(self, conv: dict[str, Any]) -> dict[str, Any]:
        """A deep copy of ``conv`` with addresses and host names (and IPs if asked) replaced."""
        out = copy.deepcopy(conv)
        names = self._names(out)
        ip_map = self._ip_map(out) if self.ips else {}
        sub = self._substituter(names, ip_map)
        out = dict(self._walk(out, sub, quoted=False, key=""))   # endpoints' "ip" included
        if self.ips:
            cl, sv = out.get("client"), out.get("server")
            if isinstance(cl, dict) and isinstance(sv, dict) and "community_id" in out:
                from pcapsmtp.engine.flowid import community_id
                out["community_id"] = community_id(cl["ip"], cl["port"], sv["ip"], sv["port"])
        raw = out.get("_raw_ehlo_reply_kept")
        if isinstance(raw, (bytes, bytearray)) and raw:
            out["_raw_ehlo_reply_kept"] = self._redact_bytes(bytes(raw), names, ip_map)
        earlier = out.get("_raw_earlier_ehlo_replies_kept")
        if earlier:
            out["_raw_earlier_ehlo_replies_kept"] = tuple(self._redact_bytes(bytes(e), names, ip_map)
                                                          for e in earlier)
        return out

    def redact_summary(self, summary: dict[str, Any]) -> dict[str, Any]:
        """The per-server summary with the servers' names (and IPs if asked) replaced."""
        out = copy.deepcopy(summary)
        for s in out.get("servers") or ():
            if isinstance(s, dict):
                s["names"] = [self.host(n) if _DOMAIN.fullmatch(n) else n
                              for n in s.get("names") or ()]
                if self.ips and isinstance(s.get("ip"), str):
                    s["ip"] = self.ip(s["ip"])
        return out

    # ------------------------------------------------------------------ internals

    def _names(self, conv: dict[str, Any]) -> dict[str, str]:
        """Host names quoted in the conversation -> pseudonym (longest first for replacement)."""
        found: set[str] = set()

        def add(text: Any, any_shape: bool = False) -> None:
            if isinstance(text, str) and text.strip():
                t = text.split()[0].strip("[]<>").rstrip(".")
                if t and len(t) <= 255 and not _is_ip(t) and (any_shape or _hostish(t)):
                    found.add(t)

        g = conv.get("greeting")
        if isinstance(g, dict):
            add(g.get("argument"), any_shape=True)   # the client names itself: any word
        add(conv.get("server_name"))
        banner = conv.get("banner")
        if isinstance(banner, str):
            add(banner[4:] if banner[:3].isdigit() else banner)
        er = conv.get("ehlo_reply")
        if isinstance(er, dict) and er.get("lines") and isinstance(er["lines"][0], str):
            add(er["lines"][0])
        return {n: self.host(n) for n in sorted(found, key=len, reverse=True)}

    def _ip_map(self, conv: dict[str, Any]) -> dict[str, str]:
        ips: dict[str, str] = {}
        for k in ("client", "server"):
            ep = conv.get(k)
            if isinstance(ep, dict) and isinstance(ep.get("ip"), str):
                ips[ep["ip"]] = self.ip(ep["ip"])
        return ips

    def _substituter(self, names: dict[str, str], ip_map: dict[str, str]
                     ) -> Callable[[str, bool], str]:
        name_re = (re.compile(r"(?<![\w.-])(" + "|".join(re.escape(n) for n in names) + r")(?![\w-])",
                              re.IGNORECASE) if names else None)
        lower = {n.lower(): p for n, p in names.items()}
        ip_re = (re.compile(r"(?<![\w:.])(" + "|".join(re.escape(i) for i in ip_map) + r")(?![\w:.])")
                 if ip_map else None)

        def sub(text: str, quoted: bool) -> str:
            text = _PATH.sub(lambda m: m.group(1) + self.address(m.group(2)) + m.group(3), text)
            text = _ADDRESS.sub(lambda m: self.address(m.group(0)), text)
            if name_re is not None:
                text = name_re.sub(lambda m: lower.get(m.group(1).lower(), m.group(1)), text)
            if quoted:
                text = _DOMAIN.sub(lambda m: self.host(m.group(1)) + m.group(0)[len(m.group(1)):],
                                   text)
            if self.ips:
                if quoted:   # any address quoted from the capture
                    text = _IPV4.sub(lambda m: self.ip(m.group(0)), text)
                    text = _IPV6.sub(lambda m: self.ip(m.group(0)), text)
                elif ip_re is not None:   # pcapsmtp's own text: only the endpoints' addresses
                    text = ip_re.sub(lambda m: ip_map[m.group(0)], text)
            return text

        return sub

    def _walk(self, obj: Any, sub: Callable[[str, bool], str], *, quoted: bool, key: str) -> Any:
        if isinstance(obj, str):
            return sub(obj, quoted)
        if isinstance(obj, dict):
            return {k: (v if k in _SKIP_KEYS else
                        self._walk(v, sub, quoted=quoted or k in _QUOTED_KEYS, key=k))
                    for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._walk(v, sub, quoted=quoted, key=key) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self._walk(v, sub, quoted=quoted, key=key) for v in obj)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            # explain's ExchangeLine: a peer's line is quoted text; "!" lines are pcapsmtp's own.
            changes: dict[str, Any] = {}
            peer = getattr(obj, "side", "") in ("C", "S")
            for f in dataclasses.fields(obj):
                v = getattr(obj, f.name)
                if f.name == "text" and isinstance(v, str):
                    m = _REPLY_CODE.match(v) if getattr(obj, "side", "") == "S" else None
                    head = m.group(0) if m else ""
                    changes[f.name] = head + sub(v[len(head):], peer)
                elif f.name == "marks" and isinstance(v, list):
                    changes[f.name] = [sub(m, False) if isinstance(m, str) else m for m in v]
            if changes:
                try:
                    return dataclasses.replace(obj, **changes)
                except (TypeError, ValueError):
                    for k, v in changes.items():
                        object.__setattr__(obj, k, v)
            return obj
        return obj

    def _redact_bytes(self, raw: bytes, names: dict[str, str], ip_map: dict[str, str]) -> bytes:
        """A kept EHLO reply's bytes with names (and IPs if asked) replaced, line by line, each
        line's reply code left as it is: ``250-mx.example.com`` is a domain-shaped word to the
        domain pattern (``250-mx`` is a valid label), and the clients' table read from the
        redacted bytes must see the code the server sent."""
        sub = self._substituter(names, ip_map)
        out = []
        for line in raw.decode("latin-1").splitlines(keepends=True):
            m = _REPLY_CODE.match(line)
            head = m.group(0) if m else ""
            out.append(head + sub(line[len(head):], True))
        return "".join(out).encode("latin-1", "replace")


def _is_ip(text: str) -> bool:
    t = text.removeprefix("IPv6:").removeprefix("ipv6:")
    try:
        ipaddress.ip_address(t)
    except ValueError:
        return False
    return True


def _hostish(word: str) -> bool:
    """A word that names a host: domain-shaped, or a single label that is not an upper-case
    keyword (``ESMTP``, ``STARTTLS``) nor a number (``mx1``, ``mail-gw`` are names)."""
    if _DOMAIN.fullmatch(word) is not None:
        return True
    return (re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", word) is not None
            and not word.isupper() and not word.isdigit())
