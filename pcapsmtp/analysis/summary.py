"""Per-server summary: conversations, protected, downgraded by reason, and servers that offer
STARTTLS on some connections and not on others (a path-dependent middlebox)."""
from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["Summary", "merge_summaries"]


class Summary:
    def __init__(self, max_servers: int = 10000) -> None:
        self.conversations = 0
        #: TCP connections to an SMTP port that never carried a byte of payload (half-open and
        #: connect scans, probes): not conversations, counted here instead
        self.no_payload_attempts = 0
        self.outcomes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.max_servers = max_servers
        self.servers: dict[str, dict[str, Any]] = {}

    def add_attempt(self) -> None:
        """A connection attempt without payload (it gets no verdict)."""
        self.no_payload_attempts += 1

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
                "offered": dict(offered),
                "inconsistent_offer": offered["valid"] > 0 and offered["absent"] > 0,
            })
        return {"conversations": self.conversations, "outcomes": dict(self.outcomes),
                "reasons": dict(self.reasons), "servers": servers,
                "no_payload_attempts": self.no_payload_attempts}


def merge_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The summaries of several capture files as one. Counts add up; a server (by IP) seen in
    several files is one entry, its names united, and its STARTTLS offer is inconsistent when
    it was valid on some connection and absent on another, in whichever files. Other numeric
    keys (``packets``, ``frames``, ``snaplen_cut_frames``) and the counters of ``reassembly`` add
    up too; ``snaplen`` is the smallest of the files' (each file's is the one its frames show)."""
    if len(summaries) == 1:
        return summaries[0]
    merged: dict[str, Any] = {"conversations": 0, "no_payload_attempts": 0}
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    reassembly: Counter[str] = Counter()
    servers: dict[str, dict[str, Any]] = {}
    for s in summaries:
        merged["conversations"] += s.get("conversations", 0)
        merged["no_payload_attempts"] += s.get("no_payload_attempts", 0)
        outcomes.update(s.get("outcomes", {}))
        reasons.update(s.get("reasons", {}))
        reassembly.update(s.get("reassembly", {}))
        for key in ("packets", "frames"):
            if key in s:
                merged[key] = merged.get(key, 0) + s[key]
        if "snaplen_cut_frames" in s:
            merged["snaplen_cut_frames"] = (merged.get("snaplen_cut_frames", 0)
                                            + s["snaplen_cut_frames"])
        if s.get("snaplen"):
            merged["snaplen"] = min(merged.get("snaplen") or s["snaplen"], s["snaplen"])
        for srv in s.get("servers", []):
            m = servers.get(srv["ip"])
            if m is None:
                m = servers[srv["ip"]] = {"ip": srv["ip"], "names": set(), "conversations": 0,
                                          "protected": 0, "downgraded": Counter(),
                                          "offered": Counter()}
            m["names"].update(srv.get("names", ()))
            m["conversations"] += srv.get("conversations", 0)
            m["protected"] += srv.get("protected", 0)
            m["downgraded"].update(srv.get("downgraded", {}))
            m["offered"].update(srv.get("offered", {}))
            if srv.get("inconsistent_offer"):
                m["inconsistent"] = True
    out: dict[str, Any] = {"conversations": merged["conversations"], "outcomes": dict(outcomes),
                           "reasons": dict(reasons),
                           "no_payload_attempts": merged["no_payload_attempts"]}
    out["servers"] = [{
        "ip": m["ip"], "names": sorted(m["names"]), "conversations": m["conversations"],
        "protected": m["protected"], "downgraded": dict(m["downgraded"]),
        "offered": dict(m["offered"]),
        "inconsistent_offer": bool(m.get("inconsistent")) or (
            m["offered"]["valid"] > 0 and m["offered"]["absent"] > 0),
    } for m in servers.values()]
    if "packets" in merged:
        out["packets"] = merged["packets"]
    if reassembly:
        out["reassembly"] = dict(reassembly)
    if "frames" in merged:
        out["frames"] = merged["frames"]
    for key in ("snaplen_cut_frames", "snaplen"):
        if key in merged:
            out[key] = merged[key]
    return out
