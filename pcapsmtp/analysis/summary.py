"""Per-server summary: conversations, protected, downgraded by reason, and servers that offer
STARTTLS on some connections and not on others (a path-dependent middlebox)."""
from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["Summary"]


class Summary:
    def __init__(self, max_servers: int = 10000) -> None:
        self.conversations = 0
        self.outcomes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.max_servers = max_servers
        self.servers: dict[str, dict[str, Any]] = {}

    def add(self, conv: dict[str, Any]) -> None:
        self.conversations += 1
        self.outcomes[conv["outcome"]] += 1
        self.reasons[conv["reason"]] += 1
        ip = conv["server"]["ip"]
        srv = self.servers.get(ip)
        if srv is None:
            if len(self.servers) >= self.max_servers:
                return
            srv = self.servers[ip] = {"ip": ip, "names": set(), "conversations": 0, "protected": 0,
                                      "downgraded": Counter(), "offered": Counter()}
        srv["conversations"] += 1
        if conv.get("server_name"):
            if len(srv["names"]) < 8:
                srv["names"].add(conv["server_name"])
        if conv["outcome"] == "tls":
            srv["protected"] += 1
        elif conv["outcome"] == "plaintext":
            srv["downgraded"][conv["reason"]] += 1
        offered = conv["starttls"]["offered"]
        if offered in ("valid", "absent", "misplaced", "masked"):
            srv["offered"][offered] += 1

    def as_dict(self) -> dict[str, Any]:
        servers = []
        for srv in self.servers.values():
            offered = srv["offered"]
            servers.append({
                "ip": srv["ip"], "names": sorted(srv["names"]),
                "conversations": srv["conversations"], "protected": srv["protected"],
                "downgraded": dict(srv["downgraded"]),
                "inconsistent_offer": offered["valid"] > 0 and offered["absent"] > 0,
            })
        return {"conversations": self.conversations, "outcomes": dict(self.outcomes),
                "reasons": dict(self.reasons), "servers": servers}
