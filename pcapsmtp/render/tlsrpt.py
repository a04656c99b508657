"""``--format tlsrpt``: an RFC 8460-shaped JSON report of the failed sessions seen."""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Iterable

__all__ = ["render_tlsrpt"]


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_tlsrpt(convs: Iterable[dict[str, Any]]) -> str:
    """One report, one policy block per receiving server (policy-type no-policy-found: a
    capture cannot see MTA-STS or DANE policies), failure-details grouped per
    (result type, sending IP, receiving IP, HELO name, reason)."""
    convs = list(convs)
    starts = [c["started_ns"] for c in convs if c.get("started_ns")]
    ends = [int(c.get("ended_ns") or c["started_ns"]) for c in convs if c.get("started_ns")]
    per_server: dict[str, dict[str, Any]] = {}
    fails: dict[tuple[str, ...], int] = defaultdict(int)
    for c in convs:
        srv = c["server"]["ip"]
        name = c.get("server_name") or srv
        pol = per_server.setdefault(srv, {"name": name, "ok": 0, "fail": 0})
        if c["outcome"] == "tls":
            pol["ok"] += 1
        elif c.get("tlsrpt_result"):
            pol["fail"] += 1
            fails[(srv, c["tlsrpt_result"], c["client"]["ip"], c["server"]["ip"], name,
                   c["reason"])] += 1
    policies = []
    for srv, pol in per_server.items():
        details = [{"result-type": k[1], "sending-mta-ip": k[2], "receiving-ip": k[3],
                    "receiving-mx-helo": k[4], "failed-session-count": n,
                    "failure-reason-code": k[5]}
                   for k, n in sorted(fails.items()) if k[0] == srv]
        policies.append({
            "policy": {"policy-type": "no-policy-found", "policy-domain": pol["name"]},
            "summary": {"total-successful-session-count": pol["ok"],
                        "total-failure-session-count": pol["fail"]},
            "failure-details": details,
        })
    report = {
        "organization-name": "pcapsmtp (passive capture analysis)",
        "date-range": {"start-datetime": _iso(min(starts)) if starts else None,
                       "end-datetime": _iso(max(ends)) if ends else None},
        "contact-info": "",
        "report-id": "pcapsmtp-" + (str(min(starts)) if starts else "empty"),
        "policies": policies,
    }
    return json.dumps(report, indent=2)
