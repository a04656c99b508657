"""The exit-status rule every command shares: 1 when a conversation lost TLS or shows an RFC
violation by a peer or a middlebox (capture problems do not count), else 0."""
from __future__ import annotations

from typing import Any

from pcapsmtp.analysis.reasons import BLAMED

__all__ = ["lost_tls", "violations", "needs_attention", "INFORMATIONAL"]

_FAILED_ABORTS = frozenset({"starttls-refused", "tls-handshake-failed", "tls-not-started",
                            "implicit-tls-mismatch", "ehlo-rejected", "starttls-masked",
                            # a client that requires TLS gave up on a defective offer
                            "starttls-not-offered", "starttls-misplaced"})
#: findings that are notes, not violations (they never set exit status 1)
INFORMATIONAL = frozenset({"ehlo-legacy-keyword"})


def lost_tls(conv: dict[str, Any]) -> bool:
    """The conversation lost TLS: mail in the clear, or a TLS attempt that failed."""
    return conv["outcome"] == "plaintext" or (conv["outcome"] == "aborted"
                                              and conv["reason"] in _FAILED_ABORTS)


def violations(conv: dict[str, Any]) -> bool:
    """An RFC violation by a peer or a middlebox (capture problems do not count)."""
    return any(f["side"] in BLAMED and f.get("confidence") != "low"
               and f["code"] not in ("tls-alert", "tls-certificate") and f["code"] not in INFORMATIONAL
               for f in conv["findings"])


def needs_attention(conv: dict[str, Any]) -> bool:
    """Exit status 1 material."""
    return lost_tls(conv) or violations(conv)
