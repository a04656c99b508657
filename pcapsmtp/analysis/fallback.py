"""``tls-fallback``: a later conversation between the same client and server, to the same
server port, whose client skips an offered STARTTLS (or greets with HELO) after a failed
handshake or a refusal (Postfix, Exim and OpenSMTPD retry like this). Where the server offered nothing, the client
chose nothing: that verdict stands and its ``detail`` names the earlier failure."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from pcapsmtp.analysis.reasons import REASONS, TLSRPT_RESULT, tlsrpt_result

__all__ = ["FallbackTracker", "FAILURES", "SKIPPED"]

#: reasons of a conversation whose TLS attempt failed
FAILURES = frozenset({"tls-handshake-failed", "tls-not-started", "starttls-refused"})
#: reasons of a later plaintext conversation whose client *chose* to skip STARTTLS: the server
#: offered it validly (or the client greeted with HELO, so it never asked): only these become
#: ``tls-fallback``. A later conversation whose server offered nothing (or hid the offer) keeps
#: its own reason; the earlier failure is mentioned in its ``detail``.
SKIPPED = frozenset({"client-did-not-request", "client-used-helo"})


class FallbackTracker:
    """Remembers the last TLS failure per (client IP, server IP, server port), bounded, within a
    window of capture time; ``observe`` rewrites a later plaintext conversation's verdict in
    place. A retry comes to the port that failed (Postfix, Exim and OpenSMTPD retry the same MX
    host's SMTP port): a plaintext conversation to another service of the server (587 after a
    failure on 25, 25 after one on 465) is another client's or another program's choice."""

    def __init__(self, window_ns: int, max_pairs: int = 65536) -> None:
        self.window_ns = window_ns
        self.max_pairs = max_pairs
        self._last: OrderedDict[tuple[str, str, int | None], dict[str, Any]] = OrderedDict()

    def observe(self, conv: dict[str, Any]) -> None:
        key = (conv["client"]["ip"], conv["server"]["ip"], conv["server"].get("port"))
        reason = conv["reason"]
        if reason in FAILURES or _unsure_attempt(conv):
            self._last[key] = {"stream": conv["stream"], "caused_by": conv["caused_by"],
                               "reason": reason, "ended_ns": conv.get("ended_ns") or 0,
                               "started_ns": conv.get("started_ns") or 0,
                               "file": conv.get("file"), "frame": conv.get("evidence_frame"),
                               "case": conv.get("case")}
            self._last.move_to_end(key)
            while len(self._last) > self.max_pairs:
                self._last.popitem(last=False)
            return
        if conv["outcome"] == "tls":
            # TLS worked between the two hosts after the failure: a plaintext conversation
            # that starts once this one is over is no retry after that failure (a retry comes
            # at once, or from a client that remembers the failure and no longer asks). One
            # that starts sooner may still be (a parallel delivery succeeded meanwhile).
            if conv.get("_open_at_end"):
                return      # still open when the capture ended: its end is not known
            prev = self._last.get(key)
            if prev is not None and (conv.get("started_ns") or 0) >= prev["ended_ns"]:
                # (keyed by the failure's port: TLS on another service of the server, 465 or
                # 587, says nothing of the port-25 retry)
                ended = conv.get("ended_ns") or 0
                prev["tls_since_ns"] = min(prev.get("tls_since_ns", ended), ended)
            return
        if conv["outcome"] != "plaintext":
            return
        prev = self._last.get(key)
        if prev is None or prev.get("file") != conv.get("file"):
            return
        started = conv.get("started_ns") or 0
        if started - prev["ended_ns"] > self.window_ns or prev["stream"] == conv["stream"]:
            return
        if started < prev["started_ns"]:
            # begun before the failed conversation began: no retry after it (live mode hears
            # of conversations in the order they are decided, not the order they began)
            return
        if started >= prev.get("tls_since_ns", started + 1):
            return
        if prev["reason"] == "incomplete":
            if reason in SKIPPED:
                _unsure_fallback(conv, prev)
            return
        if reason not in SKIPPED:
            # Not the client's choice: the server did not offer STARTTLS this time (or its
            # offer could not be seen). The verdict stands; the earlier failure is context.
            conv["detail"] = (f"{conv.get('detail') or ''}; an earlier attempt (stream "
                              f"{prev['stream']}) failed with {prev['reason']}").lstrip("; ")
            return
        conv["fallback_of"] = {"stream": prev["stream"], "reason": prev["reason"],
                               "frame": prev["frame"], "previous_reason": reason}
        conv["reason"] = "tls-fallback"
        conv["caused_by"] = prev["caused_by"]
        info = REASONS["tls-fallback"]
        conv["explanation"] = {"client_does": info.client_does, "ask": info.remedy}
        # (no RFC 8460 failure when the earlier one was none of the receiving server's TLS:
        # a client that stalled after its whole answer, TLSRPT_CASE_RESULT)
        if tlsrpt_result(prev["reason"], prev["case"]) is not None:
            conv["tlsrpt_result"] = TLSRPT_RESULT["tls-fallback"]
        conv["detail"] = (f"the sender came back without STARTTLS after the {prev['reason']} of "
                          f"stream {prev['stream']} (this conversation alone reads as {reason})")


def _unsure_attempt(conv: dict[str, Any]) -> bool:
    """A conversation whose TLS attempt, if any, the capture cannot judge: it asked for
    STARTTLS and the capture does not show how that ended, or a hole (or packets the capture
    dropped, live, or events past the per-conversation bound: ``analysis.transcript``) left it
    incomplete: they may hide a STARTTLS and its failure."""
    return conv["reason"] == "incomplete" and (
        bool(conv["starttls"].get("requested")) or conv.get("_limit_lost") is not None
        or any(f["code"] in ("tcp-gap", "capture-truncated", "capture-loss")
               for f in conv["findings"]))


def _unsure_fallback(conv: dict[str, Any], prev: dict[str, Any]) -> None:
    """Evidence before blame: a later plaintext conversation between the same hosts may be the
    retry after a failure the capture does not show; then its own reason cannot blame anyone."""
    conv["detail"] = (f"stream {prev['stream']} between the same hosts asked for STARTTLS and the "
                      "capture does not show how that ended: this conversation may be a retry in "
                      f"plaintext after a failure (alone it reads as {conv['reason']})")
    conv["outcome"], conv["caused_by"], conv["reason"] = "incomplete", "unknown", "incomplete"
    info = REASONS["incomplete"]
    conv["explanation"] = {"client_does": info.client_does, "ask": info.remedy}
    conv.pop("tlsrpt_result", None)
