"""What a conversation keeps past the bound on events kept per conversation, and what its
verdict may claim then.

A hostile capture (millions of commands on one connection) must not grow memory, so a
conversation keeps its first ``bound`` events (``AnalysisConfig.max_events``) of every kind.
Past that, every event falls in one of three classes:

- *bounded* events are always kept: the TLS events (``TlsObserver`` emits at most 64 per side,
  and a side that starts TLS never leaves it, so one observer per side), each side's end and
  the start of TLS (``ImplicitTls``, ``TlsInProgress``). They are few by construction; a
  slack of ``BOUNDED_SLACK`` items past twice the bound caps them all the same.
- *inert* events, which no verdict reads, are counted and not kept: the commands NOOP, RSET,
  RCPT, VRFY, EXPN and HELP, unless the client's last command before it was one the verdict
  reads (its next move after that command is what the rules of giving up and of not waiting
  measure), and the server's in-step replies to them (not stray, not a 421, not the reply
  the session read the server's TLS after); TCP retransmissions with other bytes and the
  core's format anomalies (bare LF, a line too long...), which give findings only.
- every other event may decide the verdict (STARTTLS, EHLO, MAIL, DATA, QUIT, any unknown
  command, their replies, holes, AUTH exchanges, plaintext after STARTTLS, injections) and is
  kept up to twice the bound.

One of those that comes past twice the bound is dropped too, and then the verdict may rest on
what it did not keep: unless it was settled before that event (``settled``), it is
``incomplete``/``unknown`` at that event's frame (``apply_limit``), with the ``limit-reached``
finding. The bound itself is reported whenever an event was not kept.
"""
from __future__ import annotations

from typing import Any, Callable

from pcapsmtp.analysis.reasons import REASONS
from pcapsmtp.analysis.verdict import Item, Overlap, Transcript
from pcapsmtp.model import CLIENT as _CLIENT
from pcapsmtp.smtp.events import (
    Anomaly, AnomalyCode, Command, ImplicitTls, Reply, StreamEnded, StreamGap, TlsInProgress,
)
from pcapsmtp.smtp.tls import TlsApplicationData, TlsEvent

__all__ = ["BOUNDED", "BOUNDED_SLACK", "DECIDING", "INERT", "INERT_VERBS", "EventBound", "apply_limit",
           "settled", "settles", "TLS_REASONS"]

#: commands no verdict reads (a mail transaction is MAIL, DATA or BDAT; RCPT adds nothing to it)
INERT_VERBS = frozenset({"NOOP", "RSET", "RCPT", "VRFY", "EXPN", "HELP"})
#: items past twice the bound that the bounded events may take (2 x 64 TLS events, two ends,
#: the start of TLS: far fewer)
BOUNDED_SLACK = 256
#: anomalies the verdict reads beyond their findings
_DECIDING_ANOMALIES = frozenset({AnomalyCode.STARTTLS_COMMAND_INJECTION,
                                 AnomalyCode.STARTTLS_RESPONSE_INJECTION})
#: reasons of a TLS verdict that the client's application data settles
TLS_REASONS = frozenset({"tls-established", "implicit-tls", "tls-start-not-captured"})

_BOUNDED = (TlsEvent, StreamEnded, ImplicitTls, TlsInProgress)


def settles(ev: object) -> bool | None:
    """Does ``ev`` settle the verdict, so that nothing after it can change it? The one rule of
    live mode's early verdicts (``Analyzer._decided``) and of the event bound (``settled``):
    True for the server's answer to QUIT (the client left) or its acceptance of a MAIL in the
    clear (plaintext, whatever follows); None for the client's application data, which settles
    it only when the verdict reads an established handshake (``TLS_REASONS``: the caller
    judges); False for anything else. MAIL only when accepted: a server that refuses mail
    before STARTTLS ("530 Must issue a STARTTLS command first") may see the client ask for
    TLS next."""
    if isinstance(ev, Reply):
        asked = ev.answers
        return isinstance(asked, Command) and (
            asked.verb == "QUIT"
            or asked.verb == "MAIL" and ev.code is not None and 200 <= ev.code < 300)
    if isinstance(ev, TlsApplicationData) and ev.side is _CLIENT:
        return None
    return False


def settled(t: Transcript, judge: Callable[[Transcript], dict[str, Any]]) -> bool:
    """Nothing that comes after the kept events can change the verdict: one of them settles it
    (``settles``), or the client sent application data and the verdict reads an established
    handshake."""
    app_data = False
    for it in t.items:
        s = settles(it.event)
        if s:
            return True
        if s is None:
            app_data = True
    return app_data and judge(t)["reason"] in TLS_REASONS


#: the classes of ``EventBound.classify``
BOUNDED, INERT, DECIDING = "bounded", "inert", "deciding"


def _inert_reply(ev: Reply) -> bool:
    asked = ev.answers
    return (asked is not None and asked.verb in INERT_VERBS and not ev.stray
            and ev.server_answers is asked and not ev.lost_command and not ev.damaged
            and ev.harmless_hole is None and not ev.tls_follows and not ev.greeting
            and ev.code != 421)


class EventBound:
    """The keeping of one conversation's events once it has ``bound`` of them (made at the
    first event past it)."""

    __slots__ = ("bound", "after_deciding", "dropped_frame", "lost", "lost_frame", "settled")

    def __init__(self, bound: int, items: list[Item]) -> None:
        self.bound = bound
        #: the client's last command is one the verdict reads: its next one is kept
        last = next((it.event for it in reversed(items) if isinstance(it.event, Command)), None)
        self.after_deciding = last is not None and last.verb not in INERT_VERBS
        #: the frame of the first event not kept (None: no frame, or none dropped yet)
        self.dropped_frame: int | None = None
        #: the first event that may decide the verdict and was not kept, and its frame, when
        #: the verdict was not settled before it
        self.lost: Any = None
        self.lost_frame: int | None = None
        #: the verdict was settled before the first such event (``settled``)
        self.settled = False

    def classify(self, ev: Any) -> str:
        """``BOUNDED``, ``INERT`` or ``DECIDING`` (module docstring). Called once per event
        past the bound, in order: a command's class depends on the command before it."""
        if isinstance(ev, Command):
            if ev.verb in INERT_VERBS:
                after = self.after_deciding
                self.after_deciding = False
                return DECIDING if after else INERT
            self.after_deciding = True
            return DECIDING
        if isinstance(ev, Reply):
            return INERT if _inert_reply(ev) else DECIDING
        if isinstance(ev, _BOUNDED):
            return BOUNDED
        if isinstance(ev, Overlap) or isinstance(ev, Anomaly) and ev.code not in _DECIDING_ANOMALIES:
            return INERT
        return DECIDING

    def keep(self, kind: str, kept: int) -> bool:
        """Whether an event of class ``kind`` is kept when ``kept`` events are."""
        if kind is INERT:
            return False
        if kind is BOUNDED:
            return kept < 2 * self.bound + BOUNDED_SLACK
        return kept < 2 * self.bound


def _what(ev: Any) -> str:
    if isinstance(ev, Command):
        return f"the client's {ev.raw_verb[:16]}" if ev.verb[:1] != "*" else "a client line"
    if isinstance(ev, Reply):
        code = f" {ev.code}" if ev.code is not None else ""
        return f"the server's reply{code}" + (f" to {ev.answers.raw_verb[:16]}"
                                              if ev.answers is not None and ev.answers.verb[:1] != "*"
                                              else "")
    if isinstance(ev, StreamGap):
        return f"a hole of the {ev.side}'s bytes"
    if isinstance(ev, TlsEvent):
        return "TLS records"
    return f"an event of the {getattr(ev, 'side', 'capture')}"


def apply_limit(conv: dict[str, Any], t: Transcript, b: EventBound | None) -> None:
    """The ``limit-reached`` finding of a conversation that did not keep all its events, and
    its verdict made ``incomplete``/``unknown`` when it may rest on an event not kept
    (module docstring)."""
    if not t.dropped_events:
        return
    lost = b.lost if b is not None else None
    frame = b.lost_frame if b is not None and lost is not None else (
        b.dropped_frame if b is not None else None)
    bound = b.bound if b is not None else 0
    message = (f"{t.dropped_events} later events of this conversation were not kept "
               f"(per-conversation bound: {bound} events, then up to {2 * bound} of those a "
               "verdict may turn on)")
    if lost is not None:
        message += f"; from frame {frame} on, {_what(lost)} and more the verdict may turn on"
    findings = conv["findings"]
    # (in frame order, as the findings are: before the first later one or one without a frame)
    at = next((i for i, f in enumerate(findings) if frame is not None
               and (f.get("frame") is None or f["frame"] > frame)), len(findings))
    findings.insert(at, {"code": "limit-reached", "side": "capture", "frame": frame, "rfc": "",
                         "message": message})
    if lost is None:
        return
    was = f"{conv['reason']} ({conv['caused_by']})"
    conv["outcome"], conv["caused_by"], conv["reason"] = "incomplete", "unknown", "incomplete"
    conv["evidence_frame"] = frame
    conv["detail"] = (f"the conversation passed the bound on events kept per conversation, and "
                      f"from frame {frame} on events the verdict may turn on were not kept "
                      f"({_what(lost)} the first), so no side is blamed; as kept it would "
                      f"read as {was}")
    conv.pop("case", None)
    conv.pop("tlsrpt_result", None)
    conv.pop("_evidence_at", None)
    # (for the plaintext-retry rule: the events not kept may hide a STARTTLS and its failure,
    # analysis/fallback.py; not in the output: a private key)
    conv["_limit_lost"] = frame
    info = REASONS["incomplete"]
    conv["explanation"] = {"client_does": info.client_does, "ask": info.remedy}
