"""The verdict for one conversation: outcome, the side that caused it, a reason code, and
findings with their evidence frames.

``judge(t)`` reads a ``Transcript`` (the SMTP core's events in capture order, each with the
frames that carried it) and returns the conversation as the output contract's dict. It is a
pure function: no I/O, and nothing here knows how the frames were captured.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pcapsmtp.analysis.ehlo import EhloCheck, check_ehlo, is_masked_banner
from pcapsmtp.analysis.reasons import FINDINGS, REASON_CASES, REASONS, tlsrpt_result
from pcapsmtp.model import CLIENT as _CLIENT
from pcapsmtp.model import SERVER as _SERVER
from pcapsmtp.model import Endpoint, Item, Side
from pcapsmtp.smtp.events import (
    EOM_VERB, SASL_VERB, WAITED_NS, Anomaly, AnomalyCode, AuthExchange, Command, ImplicitTls, PlaintextAfterStartTls,
    Reply, StreamEnded, StreamGap, TlsInProgress,
)
from pcapsmtp.smtp.tls import (
    TlsAlert, TlsApplicationData, TlsCertificate, TlsChangeCipherSpec, TlsClientHello,
    TlsEncryptedHandshake, TlsEvent, TlsHandshakeOther, TlsHelloRetryRequest, TlsNotTls, TlsServerHello,
    TlsServerKeyExchange, cert_expired,
    cert_matches_host,
    looks_like_encrypted_alert, looks_like_finished, version_name,
)
from pcapsmtp.tcp.halfstream import RESET_TTL_SEGMENTS, RESET_TTL_SLACK, reset_ttl_foreign

__all__ = ["Transcript", "Item", "Overlap", "ResetTtl", "WentOn", "judge", "RESET_TTL_SLACK", "RESET_TTL_SEGMENTS",
           "GREETING_WAIT_NS", "IMPLICIT_TLS_PORTS", "both_sides_seen", "greeting_unanswered", "server_ended_first",
           "judged_without_payload"]



@dataclass(frozen=True, slots=True)
class Overlap:
    """A TCP retransmission whose bytes differ from the first copy (from the reassembler)."""

    side: Side
    offset: int
    length: int
    first_frame: int
    second_frame: int


# (no generated __eq__, __hash__ or __repr__: nothing compares, hashes or prints one, only
# its fields are read; each generated method costs its compilation at every start)
@dataclass(frozen=True, slots=True, eq=False, repr=False)
class WentOn:
    """The side went on sending on the connection after its reset (the TCP layer's
    ``SentAfterReset``): segments its stack cannot have sent had it sent the reset. ``kind``:
    what the first carried ("data", "FIN" or "ACK"); the first and last of their frames; how
    many they were."""

    kind: str
    first: int
    last: int
    segments: int


# (no generated __eq__, __hash__ or __repr__: nothing compares, hashes or prints one, only
# its fields are read; each generated method costs its compilation at every start)
@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ResetTtl:
    """A side's reset and what tells whether that side's own stack sent it (the TCP layer's
    ``StreamEnd`` and ``SentAfterReset``): its TTL (IPv4) or hop limit (IPv6), 0 when not known,
    and the range of the side's other segments after the handshake (None when none carried one),
    how many they were, and the first and last of their frames; ``went_on``: the side's
    segments after the reset, when it went on sending (None: it did not, as far as the capture
    shows)."""

    frame: int
    ttl: int
    side_ttl: tuple[int, int] | None
    segments: int
    frames: tuple[int, int] | None
    went_on: WentOn | None = None


@dataclass(slots=True)
class Transcript:
    file: str
    stream: int
    client: Endpoint
    server: Endpoint
    first_frame: int
    first_ts_ns: int
    midstream: bool = False     #: a late start: TCP does not tell where both streams start
    side_evidence: str = "syn"
    handshake_seen: bool = True
    #: a segment of each direction was in the capture when the conversation was decided
    #: (``FlowInfo.both_directions``)
    both_directions: bool = True
    items: list[Item] = field(default_factory=list)
    dropped_events: int = 0
    client_bytes: int = 0
    server_bytes: int = 0
    last_ts_ns: int = 0
    #: the capture's snap length (captured length of a frame it cut), when a gap of this
    #: conversation is the cut tail of a frame; 0 when not known
    snaplen: int = 0
    #: the offset in the server's stream up to which the client acknowledged it (its highest
    #: ACK in the capture), once the conversation ended; None when unknown
    server_acked: int | None = None
    #: the same for the client's stream, acknowledged by the server
    client_acked: int | None = None
    #: the capture time of the server's last segment (its acknowledgements until then are
    #: in ``client_acked``); None when unknown
    server_last_ns: int | None = None
    #: the same for the client's last segment (its acknowledgements until then are in
    #: ``server_acked``)
    client_last_ns: int | None = None
    #: the end offset of the furthest bytes the client sent again (TCP retransmission, not the
    #: capture's copy of a packet: ``tcp.halfstream.RESEND_MIN_NS``); 0: none
    client_resent: int = 0
    #: the same for the server's bytes
    server_resent: int = 0
    #: the capture time at which the client's acknowledgement of the server's stream last
    #: advanced (``tcp.events.FlowClosed.server_acked_ns``: the server's bytes it covers had
    #: reached the client by then); None when unknown
    server_acked_ns: int | None = None
    #: the client's acknowledgement that last advanced (``server_acked_ns``) also covered the
    #: server's captured FIN (``tcp.events.FlowClosed.server_acked_fin``): sent after the FIN
    server_acked_fin: bool = False
    #: the frame of that acknowledgement (``server_acked_ns``), 0 when unknown: the analyzer maps
    #: its time onto the continuous timeline of a capture clock that steps back
    #: (``analysis.clock``), as every other time here
    server_acked_frame: int = 0
    #: each side's reset, with its TTL and its side's (the first reset of the side)
    resets: dict[Side, ResetTtl] = field(default_factory=dict)


#: SASL mechanisms that send no secret: EXTERNAL (the identity comes from outside SASL, a TLS
#: client certificate; RFC 4422 appendix A) and ANONYMOUS (a trace string; RFC 4505)
_NO_SECRET = frozenset({"EXTERNAL", "ANONYMOUS"})


#: the longest client line of a SASL exchange (its line end included) that can carry nothing:
#: "*" (the client cancels, RFC 4954 4) or an empty line; base64 of one byte is four characters
_NO_SASL_SECRET_OCTETS = 4


def _credentials(items: list[Item]) -> Item | None:
    """The first AUTH whose credentials crossed: with an initial response, or followed by a
    client line of its SASL exchange (``AuthExchange``: answering a 334, or sent without waiting
    for one) before the client's next command, or by the server's verdict on them (235 accepted;
    535 refused, after its 334: RFC 4954 6), which shows the client answered though the capture
    lost that line. An AUTH alone (``AUTH LOGIN`` refused at once, or the capture ending before
    the client's answer) carried none, nor does a mechanism that sends no secret
    (``_NO_SECRET``)."""
    auth = None
    asked = False
    for it in items:
        ev = it.event
        if isinstance(ev, AuthExchange):
            # (a line of fewer than four characters holds no base64 of anything: the client's
            # "*" cancels the exchange, RFC 4954 4, and the server refuses it with 501; an
            # empty line is an empty response)
            if auth is not None and ev.span.end - ev.span.start > _NO_SASL_SECRET_OCTETS:
                return auth
        elif isinstance(ev, Reply) and auth is not None and ev.side is _SERVER:
            if ev.code == 334:
                asked = True
            elif ev.code == 235 or asked and ev.code == 535:
                # (a 535 straight after the AUTH can refuse the mechanism, as Postfix's "no
                # mechanism available" does: only after the 334 is it the credentials')
                return auth
        elif isinstance(ev, Command) and ev.verb != SASL_VERB:
            auth = None
            if ev.verb == "AUTH" and ev.argument.upper() not in _NO_SECRET:
                # (the session keeps only the mechanism: an initial response shows in the
                # line's length, beyond "AUTH", the mechanism and the line end; " =" is an
                # empty one)
                if ev.octets - len("AUTH ") - len(ev.argument) - (1 if ev.bare_lf else 2) > 2:
                    return it
                auth = it
                asked = False
    return None


def _frame(item: Item | None) -> int | None:
    return item.frames[0] if item is not None and item.frames else None


def _snap(t: Transcript) -> str:
    """The capture's snap length, for a text: " (N bytes)" when known."""
    return f" ({t.snaplen} bytes)" if t.snaplen else ""


def _went(hole: Item, t: Transcript) -> str:
    """How the bytes of a hole went missing, for a detail text: lost with their packets, or
    cut off the tail of their frame by the capture's snap length."""
    if hole.event.cut:
        return f"were cut off frame {_frame(hole)} by the capture's snap length{_snap(t)}"
    return f"were lost (frame {_frame(hole)})"


#: What ``_Facts`` files an event under, by its class: the first of these it is an instance of
#: (the order of the tests the pass made one by one). Filled per class on first sight
#: (``_kind_of``): one dictionary look-up per event instead of up to ten ``isinstance`` calls.
_KIND_ORDER: tuple[tuple[type, str], ...] = (
    (TlsEvent, "tls"), (Reply, "reply"), (Command, "command"), (StreamGap, "gap"),
    (Overlap, "overlap"), (Anomaly, "anomaly"), (PlaintextAfterStartTls, "after-tls"),
    (StreamEnded, "end"), (ImplicitTls, "implicit"), (TlsInProgress, "in-progress"))
_K_TLS, _K_REPLY, _K_COMMAND, _K_GAP, _K_OVERLAP, _K_ANOMALY, _K_AFTER_TLS, _K_END, _K_IMPLICIT, \
    _K_IN_PROGRESS = (k for _, k in _KIND_ORDER)
_K_OTHER = "other"
_KINDS: dict[type, str] = {}


def _kind_of(cls: type) -> str:
    kind = next((k for base, k in _KIND_ORDER if issubclass(cls, base)), _K_OTHER)
    _KINDS[cls] = kind
    return kind


def _scan(f: _Facts, items: list[Item], harmless: set[int]) -> None:
    """``_Facts``'s one pass over the items: each event filed under its kind, and the id of each
    hole a reply found harmless added to ``harmless``. (A module function, not part of
    ``__init__``: the compiled build types its locals, the items among them, verdict.pxd.)"""
    index = f.index
    tls, tls_pos = f.tls, f.tls_pos
    kinds = _KINDS
    replies = f.replies
    meant = f.meant
    for i, it in enumerate(items):
        ev = it.event
        index[id(ev)] = i
        kind = kinds.get(type(ev)) or _kind_of(type(ev))
        if kind is _K_TLS:
            # first: after STARTTLS, TLS records are most of a conversation's events
            tls.append(it)
            tls_pos.append(i)
        elif kind is _K_REPLY:
            if ev.greeting and f.greeting is None:
                f.greeting = it
            answers = ev.answers
            if answers is not None:
                replies.setdefault(id(answers), it)
                verb = answers.verb
                if (verb == EOM_VERB or (verb == "BDAT" and "LAST" in answers.argument.upper())) \
                        and 200 <= (ev.code or 0) < 300:
                    f.delivered = True
            if ev.harmless_hole is not None:
                harmless.add(id(ev.harmless_hole))
            if ev.tls_follows and f.ready is None:
                f.ready = it
            srv = ev.server_answers
            if srv is not None and not ev.stray:
                meant.setdefault(id(srv), it)
            elif ev.stray:
                # The rest of a reply that ended early: with the reply it continues. (Not a
                # 421: a server sends it on its own, when its timeout expires or it shuts
                # down, RFC 5321 3.8; it is a reply of its own, not more of the last one.)
                head = meant.get(id(srv)) if srv is not None else f.greeting
                if head is not None and ev.code != 421:
                    f.stray_after.setdefault(id(head.event), []).append(it)
                # (a 421 may come at any time before the server closes; a "command" of
                # binary junk says nothing of how a client pairs replies)
                if (f.out_of_step is None and ev.answers is not None
                        and ev.code != 421 and (ev.answers.verb.isascii()
                                                and ev.answers.verb.lstrip("*").isalpha())):
                    f.out_of_step = it
        elif kind is _K_COMMAND:
            f.commands.append(it)
            if (f.masked_command is None and len(ev.raw_verb) >= 4
                    and not ev.raw_verb.strip("X")):     # (X only)
                f.masked_command = it
            if ev.verb in ("EHLO", "HELO", "LHLO"):
                f.hellos.append(it)
            elif ev.verb == "STARTTLS" and f.starttls is None:
                f.starttls = it
            elif ev.verb == "MAIL" and f.mail is None:
                f.mail = it
            elif ev.verb == "AUTH" and f.auth_item is None:
                f.auth_item = it
            elif ev.verb == "QUIT" and f.quit is None:
                f.quit = it
        elif kind is _K_GAP:
            f.gaps.append((i, it))
        elif kind is _K_OVERLAP:
            f.overlaps.append(it)
        elif kind is _K_ANOMALY:
            f.anomalies.append(it)
        elif kind is _K_AFTER_TLS:
            f.after_tls.append(it)
        elif kind is _K_END:
            f.ends.setdefault(ev.side, it)
        elif kind is _K_IMPLICIT:
            f.implicit = it
        elif kind is _K_IN_PROGRESS:
            f.in_progress.setdefault(ev.side, it)


class _Facts:
    """What judge() extracts from the transcript in one pass."""

    def __init__(self, t: Transcript) -> None:
        self.t = t
        self.greeting: Item | None = None
        self.hellos: list[Item] = []                 # EHLO/HELO/LHLO commands
        self.replies: dict[int, Item] = {}           # id(command) -> reply item (client's pairing)
        self.stray_after: dict[int, list[Item]] = {}  # id(reply event) -> the stray replies after it
        self.out_of_step: Item | None = None         # the first stray reply a command read
        self.masked_command: Item | None = None      # a command overwritten with X (firewall)
        self.delivered = False                       # DATA got 354 and the end of data 2xx, for the client
        self.starttls: Item | None = None
        self.mail: Item | None = None                # first MAIL in the clear
        self.transaction: Item | None = None         # first MAIL, DATA or BDAT in the clear
        self.gaps: list[tuple[int, Item]] = []       # (index, item)
        self.overlaps: list[Item] = []
        self.anomalies: list[Item] = []
        self.tls: list[Item] = []
        self.tls_pos: list[int] = []                 # the positions of ``tls``, ascending
        self.after_tls: list[Item] = []              # PlaintextAfterStartTls
        self.ends: dict[Side, Item] = {}
        self.implicit: Item | None = None
        self.in_progress: dict[Side, Item] = {}      # TlsInProgress: capture starts inside TLS
        self.index: dict[int, int] = {}              # id(event) -> position
        self.auth_item: Item | None = None           # first AUTH (in the clear when a Command)
        self.quit: Item | None = None
        self.commands: list[Item] = []
        #: the 220 the session read the server's TLS after, with nothing of the client before it
        #: (``Reply.tls_follows``)
        self.ready: Item | None = None
        meant: dict[int, Item] = {}                  # id(command) -> the reply the server meant
        harmless: set[int] = set()                   # id(hole) of the holes found harmless
        self.meant = meant
        _scan(self, t.items, harmless)

        # A hole the session found harmless (``Reply.harmless_hole``: it fell between two
        # replies and held nothing the client read) is reported, but it spoils no verdict.
        # (The reply that says so must be among the items: past the event bound it may not be,
        # and the hole then counts as any other.)
        self.all_gaps = self.gaps
        self.harmless_gaps = [it for _, it in self.gaps if id(it.event) in harmless]
        self.gaps = [(i, it) for i, it in self.gaps if id(it.event) not in harmless]
        # A mail transaction in the clear: MAIL, BDAT (its chunk follows the command), or DATA
        # answered 354 (some clients send DATA without MAIL; a refused DATA carried nothing).
        # Not a MAIL the server refused with 530, "Must issue a STARTTLS command first" (RFC
        # 3207 4): no mail went, and the client's next step (STARTTLS, or leaving) decides.
        for it in self.commands:
            verb = it.event.verb
            if verb == "MAIL" and (r := self.replies.get(id(it.event))) is not None and r.event.code == 530:
                continue
            if verb in ("MAIL", "BDAT") or verb == "DATA" and (
                    (r := self.replies.get(id(it.event))) is not None and r.event.code == 354):
                self.transaction = it
                break
        #: The first event that put something worth protecting on the wire in the clear: a
        #: mail transaction (MAIL, or DATA/BDAT, which some clients send without MAIL) or an
        #: AUTH whose credentials crossed (``_credentials``), whichever came first.
        self.clear: Item | None = self.transaction
        # (only an AUTH command's credentials cross: without one, no second pass over the items)
        creds = _credentials(t.items) if self.auth_item is not None else None
        if creds is not None and (self.clear is None or self.pos(creds) < self.pos(self.clear)):
            self.clear = creds
        # A STARTTLS refused (503 before EHLO, a 454 the client tried again after) and a later
        # one before anything went in the clear, answered 220 or with no answer in the capture
        # (a hole may hold its 220): the later one is the request the verdict judges (TLS may
        # well have followed it); the refusal decided nothing.
        first = self.starttls
        first_reply = self.reply_to(first)
        if first is not None and (first_reply is None or first_reply.event.code != 220):
            for it in self.commands:
                if (it.event.verb == "STARTTLS" and self.pos(it) > self.pos(first)
                        and self.pos(it) < self.pos(self.clear)
                        and ((r := self.reply_to(it)) is None or r.event.code == 220)):
                    self.starttls = it
                    break

    @property
    def greeting_whole(self) -> bool:
        """A greeting was captured and no server hole came before it (a hole there could
        hide what the server really said first)."""
        return (self.greeting is not None
                and self.gap_between(-1, self.pos(self.greeting), _SERVER) is None)

    def present(self, side: Side) -> bool:
        """The side's packets are in the capture: it sent bytes, or a FIN or RST (a side that
        only closed was there; only a side with no packet at all is missing)."""
        sent = self.t.client_bytes if side is _CLIENT else self.t.server_bytes
        return bool(sent) or self.own_end(side) is not None

    def own_end(self, side: Side) -> Item | None:
        """The side's own end, its FIN or RST; None when the capture shows none (the end of the
        capture, a ``StreamEnded`` that is ``truncated``, is the capture's, not the side's)."""
        end = self.ends.get(side)
        return end if end is not None and not end.event.truncated else None

    def pos(self, it: Item | None) -> int:
        return self.index.get(id(it.event), 1 << 60) if it is not None else 1 << 60

    def reply_to(self, cmd_item: Item | None) -> Item | None:
        if cmd_item is None:
            return None
        return self.replies.get(id(cmd_item.event))

    def gap_before(self, pos: int) -> Item | None:
        """The first hole (of either side) before a position."""
        return self.gap_between(-1, pos)

    def gap_between(self, lo: int, hi: int, side: Side | None = None) -> Item | None:
        """The first hole (of ``side``, or of either side) strictly between two positions:
        bytes that could hide what decides a verdict placed after ``lo``."""
        for i, it in self.gaps:
            if lo < i < hi and (side is None or it.event.side is side):
                return it
        return None


def _acted_ehlo(f: _Facts) -> Item | None:
    """The EHLO (or LHLO) whose reply the client acted on: of those before its STARTTLS (the one
    the verdict judges, or the command a firewall masked) and before anything went in the clear
    (a later EHLO cannot change how that mail travelled, and the one inside TLS lists what TLS
    offers), the last that got a positive reply. EHLO again resets the session (RFC 5321 4.1.4)
    and the client knows the extensions of the last list it got (a refused EHLO leaves the
    server's state as it was, and sends no list); the first EHLO when none got one (refused,
    unanswered, or the reply not in the capture). None when the client sent no EHLO before them."""
    st = f.starttls
    if st is None and f.masked_command is not None and len(f.masked_command.event.raw_verb) == 8:
        st = f.masked_command
    cutoff = min(f.pos(st), f.pos(f.clear))
    ehlos = [h for h in f.hellos if h.event.verb in ("EHLO", "LHLO") and f.pos(h) < cutoff]
    for h in reversed(ehlos):
        r = f.reply_to(h)
        if r is not None and 200 <= (r.event.code or 0) < 300:
            return h
    return ehlos[0] if ehlos else None


#: the reasons that rest on what the EHLO reply offered (``_earlier_ehlo_words``)
_OFFER_REASONS = frozenset({"client-did-not-request", "starttls-not-offered", "starttls-misplaced", "starttls-masked"})


def _earlier_ehlo_words(f: _Facts, ehlo_item: Item | None, offered: str) -> str:
    """When the EHLO the verdict reads (``_acted_ehlo``) is not the client's first and the last
    positive reply before it offered STARTTLS otherwise: that earlier offer, for the detail (the
    server offered, then withdrew it, or the other way round); "" otherwise."""
    at = next((i for i, h in enumerate(f.hellos) if h is ehlo_item), 0)
    for h in reversed(f.hellos[:at]):
        r = f.reply_to(h)
        if h.event.verb not in ("EHLO", "LHLO") or r is None or not 200 <= (r.event.code or 0) < 300:
            continue
        if r.event.damaged:
            return ""
        before = check_ehlo(r.event.lines).offered
        if before == offered:
            return ""
        again = ehlo_item.event.verb if ehlo_item is not None else "EHLO"
        return (f"; an earlier {h.event.verb} reply (frame {_frame(r)}) {_OFFER_WORDS[before]}, but the client "
                f"sent {again} again (frame {_frame(ehlo_item)}), which resets the session (RFC 5321 4.1.4): the "
                "last list is the one it acted on")
    return ""


def _earlier_ehlo_replies(f: _Facts, ehlo_item: Item | None) -> list[tuple[Item, list[Item]]]:
    """The positive replies, whole and undamaged, to the EHLOs (LHLOs) the client sent before the
    one it acted on (``_acted_ehlo``), in order, each with the stray replies after it (a premature
    end): the lists a later EHLO replaced (RFC 5321 4.1.4), read as the acted one is read (no hole
    before the reply's end, not cut off by the end of the stream). Empty when there is none."""
    if ehlo_item is None:
        return []
    out: list[tuple[Item, list[Item]]] = []
    for h in f.hellos:
        if h is ehlo_item:
            return out
        r = f.reply_to(h)
        if (h.event.verb in ("EHLO", "LHLO") and r is not None and r.event.code is not None
                and 200 <= r.event.code < 300 and not r.event.damaged
                and f.gap_before(f.pos(r) + 1) is None and not _unended(r)):
            out.append((r, f.stray_after.get(id(r.event), [])))
    return out


def _earlier_ehlo_findings(f: _Facts, v: _Verdict, ehlo_item: Item | None, ehlo_reply: Item | None) -> None:
    """The findings of the EHLO replies before the one the client acted on, each at its own frame:
    a defect of the server that a later EHLO hid is still the server's to fix. The message says
    which reply it was (its own words read as those of the acted reply, ``ehlo_reply``, the one
    the verdict reads). Added after the acted reply's: at a frame both replies share, a finding of
    the same code is the acted reply's."""
    if ehlo_item is None or ehlo_reply is None:
        return
    verb = ehlo_item.event.verb
    for reply, strays in _earlier_ehlo_replies(f, ehlo_item):
        stray = tuple(ln for it in strays for ln in it.event.lines)
        for lf in check_ehlo(reply.event.lines, stray).findings:
            v.finding(lf.code, str(lf.side), _frame_of_line(reply, strays, lf.line),
                      f"{lf.message} (in an earlier {verb} reply: the client sent {verb} again and acted "
                      f"on the reply in frame {_frame(ehlo_reply)})", lf.rfc, lf.confidence,
                      at=("server", lf.line.span.start))


def _unprompted_ehlo_reply(f: _Facts) -> Item | None:
    """The EHLO reply of a capture that holds only the server's direction (one-sided: no byte,
    FIN or RST of the client), where no command pairs it: the server's first reply after its
    whole greeting answers the client's first command (RFC 5321 4.1.4: the greeting, EHLO or
    HELO, comes first), and a 250 of two lines or more is an EHLO reply (a HELO reply has one
    line; 250 is EHLO's only success, RFC 5321 4.3.2: a second 220 is a proxy's banner). None
    when the client's direction is there, the greeting is not a whole 220 (a capture that
    starts later takes the first reply it holds for the greeting), a hole of the server's
    direction lies before that reply, or it is not such a reply; None too when the reply has no
    STARTTLS line but a later reply of the server has one: the rest of a reply that ended early
    (a ``misplaced`` offer in a whole capture) and the answer to another command look alike
    without the client's commands, so where the offer stood is not known."""
    t = f.t
    if (f.present(_CLIENT) or f.greeting is None or f.greeting.event.code != 220
            or not f.greeting_whole):
        return None
    g = f.pos(f.greeting)
    for i in range(g + 1, len(t.items)):
        it = t.items[i]
        ev = it.event
        if type(ev) is not Reply:
            continue
        if (ev.code == 250 and len(ev.lines) >= 2 and not ev.damaged
                and f.gap_between(g, i, _SERVER) is None):
            if not _names_starttls(ev) and any(
                    type(later.event) is Reply and _names_starttls(later.event)
                    for later in t.items[i + 1:]):
                return None
            return it
        return None
    return None


def _unprompted_tls(f: _Facts) -> Item | None:
    """The 220 that the server's TLS follows with nothing of the client before it: the session
    read the server's bytes after a 220 that followed its greeting as TLS and marked the 220
    (``Reply.tls_follows``, ``SmtpSession._tls_after_lone_220``), so it answered a STARTTLS that
    is not in the capture. The session's decision, not made again here: what ``explain`` shows
    as TLS is what the verdict reads, also when the client's packets come later in the capture
    (its bytes the server acknowledged before them are then holes). None otherwise."""
    return f.ready


def _unprompted_tls_words(f: _Facts) -> str:
    """What the server's TLS after a 220 that nothing of the client came before
    (``_unprompted_tls``) shows, as the end of the detail; "" when there is none."""
    ready = _unprompted_tls(f)
    if ready is None:
        return ""
    ts = _tls_summary(f, f.pos(ready))
    shown = []
    if ts["server_hello"] is not None:
        version = version_name(ts["version"]) if ts["version"] else None
        shown.append(f"a ServerHello (frame {_frame(ts['server_hello'])}"
                     + (f", {version}" if version else "") + ")")
    if ts["certificate"] is not None:
        shown.append(f"its certificate (frame {_frame(ts['certificate'])})")
    alert = _clear_alert(ts, _SERVER)
    if alert is not None:
        shown.append(_alert_words(alert))
    what = (", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else
            shown[0] if shown else "TLS records")
    hidden = ("; TLS 1.3 encrypts the rest of its handshake, its certificate too"
              if ts["version"] == 0x0304 else "")
    # the client's side of it, when its packets are in the capture (a tap of its leg that
    # started late: from its acknowledgement of the 220, its ClientHello or a later record)
    client = []
    if ts["client_hello"] is not None:
        client.append(f"a ClientHello (frame {_frame(ts['client_hello'])})")
    alert = _clear_alert(ts, _CLIENT)
    if alert is not None:
        client.append(_alert_words(alert))
    theirs = ("; the client sent " + " and ".join(client)) if client else ""
    return f"; after its 220 (frame {_frame(ready)}) the server sent {what}{hidden}{theirs}"


def _alert_words(alert: Item) -> str:
    """A clear fatal alert as a detail names it, with its frame."""
    return f"the fatal TLS alert {alert.event.name} ({alert.event.description}) (frame {_frame(alert)})"


def _alert_named(ev: TlsAlert) -> str:
    """An alert as a detail names it: "an encrypted alert", or the clear one's name and number."""
    return "an encrypted alert" if ev.encrypted else f"the fatal TLS alert {ev.name} ({ev.description})"


def _clear_alert(ts: dict[str, Any], side: Side) -> Item | None:
    """``side``'s fatal alert in clear among the TLS records of ``_tls_summary`` after the
    server's 220 (``_unprompted_tls``; the client's is read where its packets come only later,
    a record that starts cleanly after its holes); None when there is none (an encrypted one
    may be a close_notify after a handshake that went on: not named)."""
    alert = ts["alert"]
    if alert is None or alert.event.encrypted or alert.event.side is not side:
        return None
    return alert


def _names_starttls(reply: Reply) -> bool:
    """A line of ``reply`` starts with the word STARTTLS (any case)."""
    return any(ln.text.split(" ", 1)[0].upper() == "STARTTLS" for ln in reply.lines)


class _Verdict:
    def __init__(self) -> None:
        self.outcome = "incomplete"
        self.caused_by = "unknown"
        self.reason = "incomplete"
        self.evidence: int | None = None
        self.detail = ""
        self.findings: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}
        self.marks: dict[tuple[str, int], list[str]] = {}   # (side, line offset) -> finding codes
        self.evidence_at: tuple[str, int] | None = None
        self.case = ""      # a case of the reason with its own explanation (REASON_CASES)
        #: the reset the verdict rests on, and what it ended ("before the ServerHello, ...")
        self.reset: tuple[Item, str] | None = None
        #: case ``server-closed``: the server's refusal of STARTTLS and its own end right after
        self.closed: tuple[Item, Item] | None = None

    def set(self, outcome: str, caused_by: str, reason: str, evidence: int | None,
            detail: str = "", item: Item | None = None) -> None:
        """The verdict; ``item`` is the evidence event (its frame, and its line for explain)."""
        self.outcome, self.caused_by, self.reason = outcome, caused_by, reason
        self.evidence, self.detail = evidence, detail
        self.evidence_at = _at(item)
        self.case = ""
        self.reset = None
        self.closed = None

    def by_reset(self, end: Item, what: str) -> None:
        """The verdict just set rests on ``end``, a side's end: when it is a reset, the side
        whose address it carries is blamed for what it ended (``what``), unless that side's
        stack did not send it (``_forged_reset``)."""
        if isinstance(end.event, StreamEnded) and end.event.reset:
            self.reset = (end, what)

    def finding(self, code: str, side: str, frame: int | None, message: str, rfc: str | None = None,
                confidence: str | None = None, at: tuple[str, int] | None = None) -> None:
        if any(x["code"] == code and x["frame"] == frame for x in self.findings):
            # (one finding of a code a frame: a second is dropped, and so is its line's mark, or
            # the first one's message would land on the second's line, earlier in the dialogue)
            return
        if at is not None:
            self.marks.setdefault(at, []).append(code)
        f: dict[str, Any] = {"code": code, "side": str(side), "frame": frame,
                             "rfc": rfc if rfc is not None else FINDINGS.get(code, ("", "", ""))[1],
                             "message": message}
        if confidence and confidence != "high":
            f["confidence"] = confidence
        self.findings.append(f)


def _at(item: Item | None) -> tuple[str, int] | None:
    """(side, offset) of an event, to find its line in the exchange."""
    if item is None or not hasattr(item.event, "span"):
        return None
    sp = item.event.span
    return (str(sp.side), sp.start)


def _lines_text(reply: Reply) -> list[str]:
    return [ln.text for ln in reply.lines]


def _tls_summary(f: _Facts, after: int) -> dict[str, Any]:
    """What the TLS records after position ``after`` show."""
    out: dict[str, Any] = {"client_hello": None, "server_hello": None, "alert": None,
                           "ccs": {_CLIENT: None, _SERVER: None},
                           "data": {_CLIENT: [], _SERVER: []},
                           "certificate": None, "version": None, "sni": None, "not_tls": None,
                           "key_exchange": None, "finished_unanswered": None, "hello_retry": None}
    data, ccs = out["data"], out["ccs"]
    # (``f.tls`` is in capture order: the records from ``after`` on are a tail of it; the
    # record classes tested are disjoint, the most frequent first)
    for it in f.tls[bisect_left(f.tls_pos, after):]:
        ev = it.event
        if isinstance(ev, (TlsApplicationData, TlsEncryptedHandshake)):
            data[ev.side].append(it)
        elif isinstance(ev, TlsChangeCipherSpec):
            ccs[ev.side] = ccs[ev.side] or it
        elif isinstance(ev, TlsClientHello) and out["client_hello"] is None:
            out["client_hello"] = it
            out["sni"] = ev.sni
        elif isinstance(ev, TlsServerHello) and out["server_hello"] is None:
            out["server_hello"] = it
            out["version"] = ev.selected_version
        elif isinstance(ev, TlsAlert) and out["alert"] is None and (ev.fatal or ev.encrypted):
            out["alert"] = it
        elif isinstance(ev, TlsCertificate) and out["certificate"] is None:
            out["certificate"] = it
        elif isinstance(ev, TlsServerKeyExchange) and out["key_exchange"] is None:
            out["key_exchange"] = it
        elif isinstance(ev, TlsNotTls) and out["not_tls"] is None:
            out["not_tls"] = it
        elif isinstance(ev, TlsHelloRetryRequest) and out["hello_retry"] is None:
            out["hello_retry"] = it
    # (the verdict and the "tls" object both ask: decided once)
    out["established"] = _established(out, f)
    return out


def _established(ts: dict[str, Any], f: _Facts) -> bool:
    """Do the records of ``_tls_summary`` show an established session (``ts["established"]``)?"""
    sh = ts["server_hello"]
    if sh is None:
        return False
    if ts["alert"] is not None and not ts["alert"].event.encrypted:
        return False
    cdata = ts["data"][_CLIENT]
    sdata = ts["data"][_SERVER]
    # Encrypted data must flow from the client after its Finished: a client that completes
    # the handshake and then closes (GnuTLS checks the certificate only afterwards) did not
    # establish a session that carried anything.
    capp = [it for it in cdata if isinstance(it.event, TlsApplicationData)
            and not looks_like_encrypted_alert(it.event.length)]
    if ts["version"] == 0x0304:
        # TLS 1.3: every record after the ServerHello is type 23; the client's first one is
        # its Finished (53/69 bytes, ``looks_like_finished``), so it needs a second. The client's Finished ends the
        # handshake for the client, not for the server, which checks it (and the client's
        # certificate, when it asked for one) only then: a session it accepted shows a record of
        # the server after the client's first (its tickets, its EHLO reply). The server's whole
        # flight came before the client's Finished; a server that refused the client's side
        # sends nothing after it but an encrypted alert and its close (OpenSSL's
        # certificate_required to a client without a certificate), while the client, done with
        # its handshake, already sent its EHLO.
        if capp:
            sdata = _before_client_gave_up(f, sdata, capp[0])
        if capp and sdata and f.pos(sdata[-1]) < f.pos(capp[0]):
            ts["finished_unanswered"] = capp[0]
            return False
        return len(capp) >= 2 and bool(sdata)
    return (ts["ccs"][_CLIENT] is not None and ts["ccs"][_SERVER] is not None
            and bool(capp) and bool(sdata))


def _before_client_gave_up(f: _Facts, records: list[Item], since: Item) -> list[Item]:
    """The server's ``records`` that may answer the client's record ``since``: without those
    after the close of a client that had waited a second or more since it (they answered
    nothing it still waited for)."""
    cend = f.own_end(_CLIENT)
    if cend is not None and f.pos(cend) > f.pos(since) and cend.ts_ns - since.ts_ns >= WAITED_NS:
        return [it for it in records if not _after(f, it, cend)]
    return records


def _client_side_done(f: _Facts, ts: dict[str, Any], before: Item) -> bool:
    """The client's side of the handshake was done before ``before``: its ChangeCipherSpec and
    Finished (TLS 1.2), or its Finished, its first record after the ServerHello (TLS 1.3)."""
    if ts["version"] == 0x0304:
        return any(f.pos(it) < f.pos(before) for it in ts["data"][_CLIENT])
    ccs = ts["ccs"][_CLIENT]
    return ccs is not None and f.pos(ccs) < f.pos(before)


def _hole_hides(f: _Facts, v: _Verdict, after: int, it: Item) -> bool:
    """Evidence before blame: a hole in either direction between the start of TLS and the
    event that would decide who ended the handshake could hide what really ended it (an
    alert, a reply, a close of the other side). Then the verdict is incomplete."""
    hole = f.gap_between(after, f.pos(it))
    if hole is None:
        return False
    v.set("incomplete", "unknown", "incomplete", _frame(hole),
          f"bytes of the {hole.event.side} direction {_went(hole, f.t)} during the "
          "TLS handshake, before what ended it: who ended it cannot be told")
    return True


def _tls_after_2xx(f: _Facts, st_reply: Item) -> bool:
    """STARTTLS was answered with a 2xx that is not 220 and the client's next step was a TLS
    ClientHello: the session read it as the start of TLS (``SmtpSession._tls_after_2xx``:
    Postfix, Exim and Mutt start TLS on any 2xx answer), so the TLS rules judge what follows."""
    nxt = next((it for it in f.t.items[f.pos(st_reply) + 1:] if it.event.side is _CLIENT), None)
    return nxt is not None and type(nxt.event) is TlsClientHello


def _handshake_failure(f: _Facts, v: _Verdict, ts: dict[str, Any], after: int,
                       implicit: bool) -> bool:
    """Attribute a TLS handshake that did not complete. Returns False if the capture cannot
    tell; True when it set the verdict (incomplete when a hole hides the cause)."""
    if _one_sided_handshake(f, v, ts):
        return True
    if _server_met_clear(f, v, ts, after, implicit):
        return True
    alert = ts["alert"]
    # Who closed or reset first, before the handshake completed.
    ends = sorted((f.pos(it), it) for it in (f.own_end(_CLIENT), f.own_end(_SERVER))
                  if it is not None and f.pos(it) > after)
    if alert is not None and ends and ends[0][0] < f.pos(alert) \
            and ends[0][1].event.side is not alert.event.side:
        # The other side closed first: the alert answers the close (OpenSSL's decode_error
        # after a FIN in the middle of its handshake), the close ended the handshake.
        ev = alert.event
        v.finding("tls-alert", str(ev.side), _frame(alert),
                  f"the {ev.side} sent the fatal TLS alert {ev.name} ({ev.description}) after the "
                  f"{ends[0][1].event.side} had closed the connection", at=_at(alert))
        alert = None
    answered = _plaintext_answer(f, ts, after, implicit)
    if alert is not None and answered is not None and f.pos(answered) < f.pos(alert) \
            and alert.event.side is _CLIENT:
        # The server answered the ClientHello in plaintext first: the client's alert answers
        # those bytes, which are no TLS record (OpenSSL's protocol_version, "wrong version
        # number"); the plaintext ended the handshake, as when the client just closes.
        ev = alert.event
        what = ("answered its ClientHello in plaintext"
                if ts["client_hello"] is None or f.pos(answered) > f.pos(ts["client_hello"])
                else "sent plaintext where TLS was due")
        v.finding("tls-alert", str(ev.side), _frame(alert),
                  f"the client sent the fatal TLS alert {ev.name} ({ev.description}) after the "
                  f"server had {what} (frame {_frame(answered)})",
                  at=_at(alert))
        alert = None
    if alert is not None:
        ev = alert.event
        side = str(ev.side)
        name = ev.name if not ev.encrypted else "an encrypted alert"
        done = ts["finished_unanswered"]
        stalled = _answer_stalled(f, ts, alert)
        if stalled is not None:
            last = stalled[-1]
            sent = (f"{name} (a record of alert size)" if ev.encrypted else
                    f"the fatal TLS alert {name} ({ev.description})")
            msg = (f"the client sent {sent} "
                   f"{_seconds(alert.ts_ns - last.ts_ns)} after the server's last record (frame {_frame(last)}), "
                   "having waited for the rest of its answer")
        elif ev.encrypted and ev.side is _SERVER and done is not None and f.pos(alert) > f.pos(done):
            msg = (f"the server answered the client's Finished (frame {_frame(done)}) with {name} (a "
                   f"{getattr(ev, 'content_type', 21)}-type record of alert size) and closed: it refused "
                   "the client's side of the TLS 1.3 handshake, typically the client's certificate (none "
                   "sent, or not trusted)")
        elif ev.encrypted and ev.side is _CLIENT and _client_side_done(f, ts, alert):
            # (a GnuTLS client, Exim's or msmtp's, checks the server's certificate only after
            # the handshake; a probe sends its close_notify there: the packets look the same)
            msg = (f"the client completed its side of the handshake, then sent {name} (a "
                   f"{getattr(ev, 'content_type', 21)}-type record of alert size) and closed without a "
                   "command: it refused the server's certificate after the handshake (GnuTLS clients such "
                   "as Exim and msmtp check it only then), or it was a probe that wanted only the "
                   "handshake (openssl s_client, a monitoring check)")
        elif ev.encrypted:
            msg = (f"the {side} answered the handshake with {name} (a {getattr(ev, 'content_type', 21)}"
                   f"-type record of alert size) and closed: it refused the handshake, typically "
                   "the certificate")
        else:
            msg = f"the {side} sent the fatal TLS alert {name} ({ev.description}) during the handshake"
        v.finding("tls-alert", side, _frame(alert), msg, at=_at(alert))
        if _outdated_tls(f, v, ts, after, alert):
            return True
        if not ev.encrypted and _gave_up_on_clienthello(
                f, v, ts, alert, f"sent the fatal TLS alert {name} ({ev.description}) (frame {_frame(alert)})"):
            return True
        if stalled is not None:
            _gave_up_mid_answer(f, v, ts, stalled, alert, f"sent {sent} (frame {_frame(alert)})")
            return True
        if not _hole_hides(f, v, after, alert):
            v.set("aborted", side, "tls-handshake-failed", _frame(alert), msg, alert)
        return True
    # Plaintext where the TLS answer should be.
    if answered is not None:
        it, ev = answered, answered.event
        if _hole_hides(f, v, after, it):
            return True
        msg = ("the server answered the ClientHello in plaintext: it does not speak TLS on "
               "this connection")
        if implicit and f.t.server.port in STARTTLS_PORTS:
            # (a plaintext answer is right on a STARTTLS port: the TLS client is misconfigured)
            v.finding("implicit-tls-on-starttls-port", "client", _frame(f.implicit),
                      f"the client opened with a TLS ClientHello on port {f.t.server.port}, a STARTTLS "
                      f"port; the server answered in plaintext SMTP: {ev.preview!r}", at=_at(f.implicit))
            v.set("aborted", "client", "implicit-tls-mismatch", _frame(f.implicit),
                  f"the client spoke TLS from its first byte on port {f.t.server.port}, where SMTP "
                  "starts in plaintext and TLS with STARTTLS (implicit TLS is port 465, RFC 8314 "
                  "3.3); the server's plaintext answer is right there", f.implicit)
            v.case = "client-tls-port"
        elif implicit:
            v.finding("implicit-tls-plaintext-reply", "server", _frame(it),
                      "the client opened with a TLS ClientHello, the server answered in "
                      f"plaintext SMTP: {ev.preview!r}")
            v.set("aborted", "server", "implicit-tls-mismatch", _frame(it), msg)
        else:
            ch = ts["client_hello"]
            if ch is not None and f.pos(it) < f.pos(ch):
                # (sent before the ClientHello: the server gave up on TLS first, a "421
                # timeout" while it waited; the ClientHello crossed it)
                msg = (f"the server sent plaintext {_seconds(it.ts_ns - f.t.items[after].ts_ns)} after "
                       f"its 220 to STARTTLS, before the client's ClientHello (frame {_frame(ch)}) came: "
                       f"{ev.preview.rstrip()[:80]!r}; it stopped waiting for TLS and the "
                       "ClientHello crossed it") if after >= 0 else msg
            v.set("aborted", "server", "tls-handshake-failed", _frame(it), msg)
        return True
    if ends:
        _, it = ends[0]
        # A hole the receiver never got hides nothing it could have answered: the bytes of the
        # client's ClientHello, or of the server's answer, lost on the path.
        if (not implicit and _hello_hole_lost(f, v, ts, after)) or _answer_hole_lost(f, v, ts):
            return True
        # ... nor does one of the client's when the server never received its side of the
        # handshake (its certificate flight lost on the path)
        if _gave_up_after_finished(f, v, ts, it, f"{'reset' if it.event.reset else 'closed'} the connection "
                                   f"(frame {_frame(it)})", lost_only=True):
            return True
        # ... nor one of the server's when the client never received its answer to the
        # ClientHello (the server's flight lost on the path, its handshake timeout ending it first)
        if it.event.side is _SERVER and _answer_not_received(
                f, v, ts, it, f"{'reset' if it.event.reset else 'closed'} the connection (frame {_frame(it)})"):
            return True
        if _hole_hides(f, v, after, it):
            return True
        ev = it.event
        other = _SERVER if ev.side is _CLIENT else _CLIENT
        lost = f.gap_between(after, 1 << 60, other)
        # The other side's TLS records in its stream before that hole (a record read only
        # after it, once the TLS reader resynchronised, says nothing of how its answer began).
        other_tls = [x for x in f.tls if x.event.side is other and f.pos(x) > after]
        before = [x for x in other_tls
                  if lost is not None and x.event.span.end <= lost.event.span.start]
        # How long the side that ended it had waited for the other's next step when it did: the
        # client since its ClientHello, the server since its 220.
        since = (ts["client_hello"] if ev.side is _CLIENT and ts["client_hello"] is not None
                 else f.t.items[after] if after >= 0 else None)
        waited = since is not None and it.ts_ns - since.ts_ns >= WAITED_NS
        # (the server closed a second or more after its ServerHello and bytes of the client's
        # answer to it were lost, none of its records after the ServerHello before the hole: what
        # the client's flight held, an alert among what it may be, and whether the server had it,
        # the capture cannot tell; the client's own close is read only after that hole, which is
        # declared when the flow closes, so it may well have come first)
        sh = ts["server_hello"]
        flight_hole = (lost is not None and ev.side is _SERVER and sh is not None
                       and ts["client_hello"] is not None
                       and lost.event.span.start >= ts["client_hello"].event.span.end
                       and it.ts_ns - sh.ts_ns >= WAITED_NS
                       and not any(f.pos(x) > f.pos(sh) and x.event.span.end <= lost.event.span.start
                                   for x in other_tls))
        if lost is not None and (not other_tls or not before and (waited or lost.event.acked)
                                 or ev.side is _CLIENT and ts["server_hello"] is not None or flight_hole):
            # Bytes of the other side were lost (proved only later, e.g. by its FIN) and none of
            # its TLS is in the capture: its answer, which may be what ended the handshake, is
            # among them. So too when its TLS is in the capture only after the hole (read once
            # the TLS reader found the record framing again), wherever the capture files the hole
            # (one nobody acknowledged is declared when the flow closes; two taps may file the
            # close first): the start of its TLS is in the hole, and the side that ended the
            # handshake had waited a second or more for it (it may have been dropped on the path,
            # or slow) or acknowledged those bytes (it had them: they may hold what it ended on).
            # A side that ended sooner, never having had them, did not wait: the general rule
            # below. Or the client ended after a ServerHello and bytes of the server's answer were
            # lost: whether they held an alert, or ever reached the client (a black hole on the
            # path), the capture cannot tell.
            how = "reset" if ev.reset else "closed"
            if not other_tls:
                msg = (f"bytes of the {other} direction {_went(lost, f.t)} and none of its TLS is in "
                       f"the capture: whether it answered before the {ev.side} {how} the connection "
                       "cannot be told")
            elif not before:
                msg = (f"bytes of the {other} direction {_went(lost, f.t)} before any of its TLS in "
                       f"the capture: what its TLS began with, and whether the {ev.side} had it when "
                       f"it {how} the connection, cannot be told")
            elif flight_hole:
                msg = (f"bytes of the client's answer to the ServerHello {_went(lost, f.t)}: what they "
                       f"held, and whether the server had them when it {how} the connection, cannot be told")
            else:
                msg = (f"bytes of the server's answer to the ClientHello {_went(lost, f.t)}: whether "
                       f"they held an alert, or reached the client before it {how} the connection, "
                       "cannot be told")
            v.set("incomplete", "unknown", "incomplete", _frame(lost), msg)
            return True
        side = str(ev.side)
        how = "reset" if ev.reset else "closed"
        done = ts["finished_unanswered"]
        if done is not None and (ev.side is not _SERVER or f.pos(it) < f.pos(done)):
            done = None
        hrr = ts["hello_retry"]
        stage = (f"after the HelloRetryRequest (frame {_frame(hrr)}), before the ServerHello"
                 if ts["server_hello"] is None and hrr is not None and f.pos(hrr) < f.pos(it) else
                 "before the ServerHello" if ts["server_hello"] is None else
                 f"after the client's Finished (frame {_frame(done)}) without answering it"
                 if done is not None else "after the ServerHello")
        injected = (_injected(f, after, it) if ev.side is _CLIENT and not implicit
                    and ts["server_hello"] is None else None)
        if injected is not None:
            # The server's plaintext right after its 220 is what the client met first: a client
            # that guards against response injection refuses it (curl: "Weird server reply",
            # msmtp: "command STARTTLS failed") and leaves; one that does not reads those bytes
            # as the server's first TLS record and fails. Either way the server broke the start.
            if ts["client_hello"] is None:
                tail = (f"the client then {how} the connection without starting TLS, as a client that "
                        "refuses bytes pipelined after the 220 does (curl, msmtp)")
            else:
                tail = (f"the client's TLS read those bytes as the server's first record and the client "
                        f"{how} the connection before any ServerHello")
            v.set("aborted", "server", "tls-not-started" if ts["client_hello"] is None else
                  "tls-handshake-failed", _frame(injected),
                  f"the server sent plaintext after its 220 (frame {_frame(injected)}), where only TLS "
                  f"may follow (RFC 3207 4.2); {tail}", injected)
            return True
        if ts["client_hello"] is None and ev.side is _CLIENT and not implicit:
            if _ready_not_received(f, v, after, it, f"the client gave up waiting and {how} the connection "
                                   f"(frame {_frame(it)})"):
                return True
            msg = f"the client {how} the connection after the 220 without starting TLS"
            v.set("aborted", "client", "tls-not-started", _frame(it), msg)
            v.by_reset(it, "after the 220, before the client's ClientHello")
            return True
        # (not implicit: ``after`` is the 220's position, or STARTTLS's when the 220 is not in
        # the capture; never -1)
        if (ts["client_hello"] is None and ev.side is _SERVER and not implicit
                and it.ts_ns - f.t.items[after].ts_ns >= WAITED_NS
                and not _data_between(f, _CLIENT, after, 1 << 60)):
            _server_gave_up_on_clienthello(f, v, after, it)
            return True
        if _gave_up_on_clienthello(f, v, ts, it, f"{how} the connection (frame {_frame(it)})"):
            return True
        if _gave_up_after_finished(f, v, ts, it, f"{how} the connection (frame {_frame(it)})"):
            return True
        if _answer_not_received(f, v, ts, it, f"{how} the connection (frame {_frame(it)})"):
            return True
        if _outdated_tls(f, v, ts, after, it):
            return True
        stalled = _answer_stalled(f, ts, it)
        if stalled is not None:
            _gave_up_mid_answer(f, v, ts, stalled, it, f"{how} the connection (frame {_frame(it)})")
            return True
        if _client_hung_after_answer(f, v, ts, it):
            return True
        if _server_gave_up_on_client_flight(f, v, ts, it):
            return True
        if _spoke_clear_at_once(f, v, ts, it, f"{how} the connection (frame {_frame(it)})"):
            return True
        if _client_end_after_clear(f, v, ts, it):
            return True
        msg = f"the {side} {how} the connection {stage}, before the handshake completed"
        if done is not None:
            msg += (": in TLS 1.3 a server checks the client's Finished (and the client's certificate, "
                    "when it asked for one) only then, and refused it")
        v.set("aborted", side, "tls-handshake-failed", _frame(it), msg)
        v.by_reset(it, f"{stage}, before the handshake completed")
        return True
    return False


def _reaction_words(it: Item) -> str:
    """The server's act that ended the connection after the client's plaintext (``_server_met_clear``),
    for a detail: its alert, named, its close or its reset, with its frame."""
    ev = it.event
    if type(ev) is TlsAlert:
        what = ("an encrypted alert (a record of alert size)" if ev.encrypted
                else f"the fatal TLS alert {ev.name} ({ev.description})")
        return f"{what} (frame {_frame(it)})"
    return f"{'reset' if ev.reset else 'closed'} the connection (frame {_frame(it)})"


def _server_met_clear(f: _Facts, v: _Verdict, ts: dict[str, Any], after: int, implicit: bool) -> bool:
    """The client sent plaintext (``TlsNotTls``: PHPMailer's QUIT, SMTP in the clear) after its
    ClientHello, in the middle of the handshake, and the server's alert, close or reset came only
    after it, the client's own end (if any) later still: the server answered bytes that are no TLS
    record (OpenSSL: "wrong version number", an unexpected_message or decode_error alert; or just a
    close or reset), and the plaintext, the client giving up on TLS, is what ended the handshake. So
    the wait that counts is the client's, up to its plaintext, as when the client closes after it
    (``_gave_up_on_clienthello``, ``_gave_up_mid_answer``, ``_spoke_clear_at_once``,
    ``_client_hung_after_answer``):

    - less than a second after the ClientHello with no answer of the server's yet, or after the
      server's last record before it (from the client's acknowledgement of it when later,
      ``_had_answer_ns``): the client gave up on TLS at once, its own decision (``client``, at its
      plaintext);
    - a second or more after the ClientHello, no byte of the server's since: the server never
      answered (``server-silent``, ``_gave_up_on_clienthello``);
    - a second or more after an answer that stopped short of whole (``_answer_short``): the server
      stalled in the middle of it (``server-silent``);
    - a second or more after the whole answer (``_answer_whole``): the client had all it needed and
      did not go on (``client-silent``);
    - a second or more after an answer the client's acknowledgements never covered: the path lost it
      (``_answer_not_received``, the plaintext no answer of the client's);
    - after the client's own records of the handshake since the ServerHello (its Finished; a TLS 1.3
      compatibility ChangeCipherSpec alone is none): whether the server answered those
      (``_gave_up_after_finished``), else the other rules;
    - a second or more after a TLS 1.3 answer in one or two encrypted records, whole or short cannot
      be told: the plaintext ended the handshake, the client's, no case, as when it closes instead;
      unless more of the server's answer came after the plaintext, before its reaction, and made the
      flight whole (its Finished among it, ``_answer_whole``): it was short when the client gave up,
      the server stalled (``server-silent``).

    The server's reaction is a finding only when it is an alert (``tls-alert``, naming the plaintext
    it answered). Left to the other rules (False): a hole in either direction since the ClientHello
    (what the server reacted to, or what the client had, cannot be told), a reset that a box on the
    path forged, and the server's plaintext where its TLS answer belongs. Returns True when it set
    the verdict."""
    ch = _hello_owed(f, ts)
    if ch is None or f.pos(ch) <= after:
        return False
    enders = [it for it in (f.own_end(_CLIENT), f.own_end(_SERVER), ts["alert"])
              if it is not None and f.pos(it) > f.pos(ch)]
    if not enders:
        return False
    react = min(enders, key=f.pos)
    ev = react.event
    if ev.side is not _SERVER or type(ev) is StreamEnded and ev.reset and _reset_forgery(f, react) is not None:
        return False
    clear = next((x for x in f.t.items[f.pos(ch) + 1:f.pos(react)]
                  if type(x.event) is TlsNotTls and x.event.side is _CLIENT), None)
    if clear is None or f.gap_between(f.pos(ch), f.pos(react)) is not None:
        return False
    if _plaintext_answer(f, ts, after, implicit) is not None:
        return False
    if any(x.event.side is _SERVER and type(x.event) is TlsNotTls and f.pos(ch) < f.pos(x) < f.pos(clear)
           for x in f.tls):
        return False
    said = _clear_words(clear)
    sent = "sent " if type(ev) is TlsAlert else ""
    spoke = _server_spoke(f, clear, react)
    tail = (f"; the server then {sent}{_reaction_words(react)}, answering those bytes, which are no TLS record"
            if spoke is None else f"; the server then {_spoke_words(said, spoke)}, and {sent}{_reaction_words(react)}")

    def reacted() -> bool:
        if type(ev) is TlsAlert:
            v.finding("tls-alert", "server", _frame(react),
                      f"the server sent {_reaction_words(react)} after the client had sent {said} in the clear "
                      f"(frame {_frame(clear)}) in the middle of the handshake", at=_at(react))
        return True

    if _client_stepped(f, ts, clear):
        # (the client went on with its side of the handshake before its plaintext: whether the
        # server answered that is the Finished rules' question, the plaintext the client's giving up
        # on that answer; a TLS 1.3 compatibility ChangeCipherSpec alone is no step of the handshake)
        return (_gave_up_after_finished(f, v, ts, clear, f"sent {said} in the clear (frame {_frame(clear)}){tail}")
                and reacted())
    return _gave_up_mid_handshake(f, v, ts, ch, clear, clear, tail, True) and reacted()


def _server_spoke(f: _Facts, clear: Item, end: Item) -> Item | None:
    """The server's own bytes that are no TLS record after the client's plaintext ``clear`` and
    before ``end`` (its 221 to the QUIT: it read those bytes as SMTP), if any."""
    return next((x for x in f.t.items[f.pos(clear) + 1:f.pos(end)]
                 if type(x.event) is TlsNotTls and x.event.side is _SERVER), None)


_REPLY_START = re.compile(rb"[2-5]\d\d(?:[ -]|\r?\n)")


def _spoke_words(said: str, spoke: Item) -> str:
    """What the server's bytes after the client's plaintext were (``_server_spoke``): an answer in
    the clear when they start with an SMTP reply code, else bytes that are no SMTP reply (binary
    bytes are no answer to the plaintext, whatever they are)."""
    if _REPLY_START.match(bytes(spoke.event.preview)):
        return f"answered {said} in the clear with {_clear_words(spoke)} (frame {_frame(spoke)})"
    return f"sent bytes that are no SMTP reply ({_clear_words(spoke)}) (frame {_frame(spoke)})"


def _client_stepped(f: _Facts, ts: dict[str, Any], act: Item) -> bool:
    """The client sent records of its side of the handshake since the ServerHello and before
    ``act`` (its Finished; a TLS 1.3 compatibility ChangeCipherSpec alone is none)."""
    sh = ts["server_hello"]
    return sh is not None and any(
        x.event.side is _CLIENT and f.pos(sh) < f.pos(x) < f.pos(act) and type(x.event) is not TlsNotTls
        and not (ts["version"] == 0x0304 and type(x.event) is TlsChangeCipherSpec) for x in f.tls)


def _gave_up_mid_handshake(f: _Facts, v: _Verdict, ts: dict[str, Any], ch: Item, clear: Item | None, act: Item,
                           tail: str, at_once: bool) -> bool:
    """The rules shared by ``_server_met_clear`` and ``_client_end_after_clear``: the client gave up
    on the handshake at ``act`` (its plaintext ``clear``, or its close when it sent none) after its
    ClientHello ``ch``; ``tail`` says what followed the plaintext (the server's reaction, or the
    client's close), and ``at_once`` whether a plaintext less than a second after what it had is
    judged here (the client's, where the server ends first) or left to the rules of a client's
    close (False). Which side ends first once the client gave up on TLS changes neither how long
    the client had waited nor what it had by then, so both read the same evidence the same way.
    Returns True when it set the verdict."""
    said = "" if clear is None else _clear_words(clear)
    gave = tail.removeprefix(", then ") if clear is None else f"sent {said} in the clear (frame {_frame(clear)}){tail}"
    answer = [x for x in f.tls if x.event.side is _SERVER and f.pos(ch) < f.pos(x) < f.pos(act)]
    if any(type(x.event) is TlsNotTls for x in answer):
        return False
    # (what of the answer the client had when it sent the plaintext, by its own segment's
    # acknowledgement, ``_plaintext_had``: the records after it crossed the plaintext on the way)
    crossed: list[Item] = []
    if clear is not None and answer and _plaintext_had(clear, answer[-1]) == -1:
        k = sum(1 for x in answer if _plaintext_had(clear, x) != -1)
        # (none of it, a second or more after the ClientHello: crossed, or lost on the path, which
        # the answer-lost rules read; crossed when it came late, ``_answer_came_late``)
        if k or clear.ts_ns - ch.ts_ns < WAITED_NS or _answer_came_late(f, ch, answer):
            answer, crossed = answer[:k], answer[k:]
    if not answer:
        if clear is None:
            return False
        waited_ns = clear.ts_ns - ch.ts_ns
        if waited_ns < WAITED_NS:
            never = not at_once and _never_had(f, crossed)
            if not at_once and not never:
                # (the rules of a client's close read it, ``_gave_up_on_clienthello``; and an answer
                # that crossed the plaintext and reached the client before its close, its
                # acknowledgements covering it, leaves the close with that answer in hand to the
                # general rule)
                return False
            before = ("before any answer of the server's" if not crossed else
                      f"before any answer of the server's had reached it (its segment acknowledged none of "
                      f"{_frames_words(crossed)}, which crossed it{', nor did any later one' if never else ''})")
            v.set("aborted", "client", "tls-handshake-failed", _frame(clear),
                  f"the client sent {said} in the clear (frame {_frame(clear)}) {max(0, waited_ns) / 1e6:.0f} ms "
                  f"after its ClientHello (frame {_frame(ch)}), {before}: it gave up "
                  f"on TLS at once, without waiting for the server's answer{tail}", clear)
            return True
        if _gave_up_on_clienthello(f, v, ts, clear, gave):
            return True
        # (it asks the clocks too, and a tap whose clock runs behind stamps a ServerHello that
        # acknowledged the plaintext, and so came after it, before it: the order of the bytes, the
        # answer filed after the plaintext, decides here)
        # (an answer that crossed the plaintext came after the client gave up: the silence that
        # counts ends where it begins)
        if not _server_silent(f, ch, crossed[0] if crossed else clear) or _not_received(f, ch) is not None:
            return False
        hello = ("the ClientHello" if ch is ts["client_hello"] else
                 f"the client's second ClientHello, which answered the server's HelloRetryRequest (frame "
                 f"{_frame(ts['hello_retry'])})")
        crossing = ("" if not crossed else
                    f"; the server's answer ({_frames_words(crossed)}) crossed the plaintext, whose segment "
                    "acknowledged none of it")
        _unanswered(v, ch, "no-answer", "server", "aborted", "tls-handshake-failed", "server-silent",
                    f"the server sent nothing for {_seconds(clear.ts_ns - ch.ts_ns)} after {hello}: the client gave "
                    f"up waiting and {gave}{crossing}")
        return True
    last = answer[-1]
    had = _had_answer_ns(f, last, act)
    if had is None:
        had = last.ts_ns
    waited_ns = act.ts_ns - had
    frames = _frames_words(answer)
    # (a second or more by the capture's clock, less since the client had it: a late answer; the
    # wait the decision used is then said, as ``_spoke_clear_at_once`` says it)
    late = (act.ts_ns - last.ts_ns >= WAITED_NS) != (waited_ns >= WAITED_NS) or act.ts_ns < last.ts_ns
    acked = (f"; {max(0, waited_ns) / 1e6:.0f} ms after the client had it, from its TCP's acknowledgements"
             if late else "")
    if waited_ns < WAITED_NS:
        if not at_once or clear is None:
            # (``_spoke_clear_at_once`` reads plaintext sent at once, and leaves to the generic rule
            # one the client's acknowledgement cannot place after the answer, which it may have
            # crossed; a close without plaintext at once is the generic rule's too)
            return False
        v.set("aborted", "client", "tls-handshake-failed", _frame(clear),
              f"the client sent {said} in the clear (frame {_frame(clear)}) "
              f"{max(0, clear.ts_ns - last.ts_ns) / 1e6:.0f} ms after the server's last record (frame "
              f"{_frame(last)}{acked}), in the middle of the TLS handshake: it gave up on TLS at once{tail}", clear)
        return True
    # (a second or more after the answer, which the client's acknowledgements never covered: it never
    # had it, the path lost it; its later plaintext is no answer)
    if _answer_not_received(f, v, ts, act, gave):
        return True
    version = ts["version"]
    short, whole = _answer_short(version, answer), _answer_whole(version, answer)
    shown = "" if at_once else acked
    if clear is not None and short:
        stop = ("its Finished" if version == 0x0304
                or any(isinstance(x.event, TlsChangeCipherSpec) for x in answer) else "its ServerHelloDone")
        msg = (f"the server's answer to the ClientHello stopped short of {stop} ({frames}{shown}) and the server "
               f"sent nothing more for {_seconds(waited_ns)}: the client gave up waiting for the rest and {gave}")
        _unanswered(v, last, "no-answer", "server", "aborted", "tls-handshake-failed", "server-silent", msg)
        return True
    if clear is not None and whole:
        since = " after it had it, from its TCP's acknowledgements" if late else ""
        ended = tail if at_once else tail.replace(', then ', ', and ', 1)
        if _plaintext_had(clear, last) == -1:
            # (the plaintext's own segment, a second or more after the answer, acknowledged none of
            # it: the answer was still on its way to the client on a path slower than a second; the
            # client gave up all the same a second or more after the server answered, its own
            # decision, but it did not have that answer, by its own acknowledgement)
            msg = (f"{_answer_words(answer, True)} came {max(0, answer[0].ts_ns - ch.ts_ns) / 1e6:.0f} ms after it "
                   f"(frame {_frame(ch)}), and the client sent nothing for {_seconds(waited_ns)} after that answer, no "
                   f"{_next_flight(answer)} and no alert: then it sent {said} in the clear (frame {_frame(clear)}), "
                   f"whose segment acknowledged none of the answer: it was still in flight to the client, which had "
                   f"not acknowledged any of it, when the client gave up on TLS, {_seconds(clear.ts_ns - ch.ts_ns)} "
                   f"after its ClientHello{ended}")
        else:
            msg = (f"the client had {_answer_words(answer, True)} and sent nothing for {_seconds(waited_ns)}{since}, "
                   f"no {_next_flight(answer)} and no alert: then it sent {said} in the clear (frame {_frame(clear)}), "
                   f"giving up on TLS{ended}")
        _unanswered(v, last, "client-silent", "client", "aborted", "tls-handshake-failed", "client-silent", msg,
                    clear)
        return True
    more = None if short or whole else _rest_after(f, ts, answer, act, crossed)
    if more is not None:
        # (the server's answer went on after the client gave up, up to its Finished: it was short
        # then, the server stalled)
        msg = (f"the server's answer to the ClientHello ({frames}{shown}) stopped short and the server sent nothing "
               f"more for {_seconds(waited_ns)}: the client gave up waiting for the rest and "
               f"{f'sent {said} in the clear (frame {_frame(clear)})' if at_once else gave}, and more of "
               f"the answer came only after it (frame {_frame(more)}"
               f"{', which its segment did not acknowledge: it crossed it' if more in crossed else ''})"
               f"{tail if at_once else ''}")
        _unanswered(v, last, "no-answer", "server", "aborted", "tls-handshake-failed", "server-silent", msg)
        return True
    if clear is None or short or whole:
        return False
    # (a TLS 1.3 flight in one or two encrypted records: whether it was whole, the client hung, or short,
    # the server stalled, cannot be told; the plaintext ended the handshake, the client's, no case)
    n = sum(1 for x in answer if isinstance(x.event, TlsApplicationData))
    v.set("aborted", "client", "tls-handshake-failed", _frame(clear),
          f"the client sent {said} in the clear (frame {_frame(clear)}) {_seconds(clear.ts_ns - last.ts_ns)} after "
          f"the server's last record ({frames}{acked}), giving up on TLS in the middle of the handshake"
          f"{'' if at_once else tail}; whether the server's answer was whole by then (a TLS 1.3 flight in {n} "
          f"encrypted record{'s' if n > 1 else ''}, which may hold all of it or stop short) cannot be told"
          f"{tail if at_once else ''}", clear)
    return True


def _never_had(f: _Facts, crossed: list[Item]) -> bool:
    """The server's records ``crossed`` (its answer to the ClientHello, none of which the segment of
    the client's plaintext acknowledged: they crossed it) were never acknowledged by the client at
    all: its highest acknowledgement in the capture (``Transcript.server_acked``, up to its close)
    stops at or before their first byte. The client then gave up with no answer at all, its
    plaintext its only act on the handshake, whatever became of the answer afterwards (the path
    lost it, ``quitcross-answer-lost-quit-at-once.pcap``); an answer it acknowledged after its
    plaintext reached it before its close, which then came with that answer in hand
    (``hunt9-quit-crossed-answer-rest-after-it.pcap``)."""
    acked = f.t.server_acked
    return bool(crossed) and acked is not None and acked <= crossed[0].event.span.start


def _rest_after(f: _Facts, ts: dict[str, Any], answer: list[Item], act: Item,
                crossed: list[Item] | None = None) -> Item | None:
    """The first of the server's records after the client's act of giving up (``act``: its
    plaintext or its close; ``crossed``: records before it that its segment did not acknowledge,
    which crossed it) and before the server's own end (its alert, close or reset) when,
    added to ``answer`` (its records before ``act``), they make the flight whole (its Finished
    among them, ``_answer_whole``): the answer was short when the client gave up. Records that end
    no flight (a late session ticket, an alert of a size not told as one) show nothing of the kind,
    nor do records read after a hole of the server's bytes (what it held, and where the records
    framed again began, cannot be told): None."""
    stop = f.own_end(_SERVER)
    rest = list(crossed or ())
    for x in f.tls:
        ev = x.event
        if ev.side is not _SERVER or f.pos(x) <= f.pos(act):
            continue
        if (type(ev) is TlsAlert or stop is not None and f.pos(x) > f.pos(stop)
                or f.gap_between(f.pos(act), f.pos(x), _SERVER) is not None):
            break
        if type(ev) is not TlsNotTls:
            rest.append(x)
    return rest[0] if rest and _answer_whole(ts["version"], answer + rest) else None


def _client_end_after_clear(f: _Facts, v: _Verdict, ts: dict[str, Any], end: Item) -> bool:
    """The client closed or reset the connection (``end``) in the middle of the handshake, before
    any alert, close or reset of the server's, and the rules that judge a client's close
    (``_gave_up_on_clienthello``, ``_answer_stalled``, ``_client_hung_after_answer``,
    ``_spoke_clear_at_once``...) left it to the generic one: the same evidence reads as when the
    server's end comes first (``_server_met_clear``), since which side sends the first FIN once the
    client gave up on TLS changes neither how long the client had waited nor what it had by then.
    The client gave up at its plaintext (``TlsNotTls``: PHPMailer's QUIT, Go net/smtp's or
    Nodemailer's QUIT once their TLS timeout expired), or at ``end`` when it sent none; the answer
    it had is the server's records before that act:

    - plaintext less than a second after the server's last record before it (from the client's
      acknowledgement of it when later, ``_had_answer_ns``), or after the ClientHello with no
      answer yet: it gave up on TLS at once, its own decision (``client``, at its plaintext), also
      when more of the server's answer came after the plaintext and the client's acknowledgement
      advanced with it (which ``_spoke_clear_at_once`` leaves alone); so too plaintext less than a
      second after the ClientHello whose segment acknowledged none of the answer (it crossed it) when
      no later segment of the client's acknowledged any of it either (``_never_had``: it gave up with no
      answer at all; one that acknowledged the answer before its close closed with it in hand, the
      general rule's);
    - plaintext a second or more after a ClientHello with no answer before it: the server never
      answered (``_gave_up_on_clienthello`` with the plaintext as the end of the wait: a ServerHello
      after it came too late; filed after it by its sequence numbers, also when a skewed tap's
      clock stamps it earlier; filed before it, when the plaintext's own segment acknowledged none
      of it and the client's later acknowledgements covered it all: it crossed the plaintext);
    - a second or more after an answer the client's acknowledgements never covered: the path's
      (``_answer_not_received``);
    - a second or more after an answer short of whole (``_answer_short``): the server stalled
      (``server-silent``), also when the rest of it came after the plaintext, before the close
      (``_answer_stalled`` measures the answer up to the close);
    - a second or more after the whole answer (``_answer_whole``): the client had all it needed and
      did not go on (``client-silent``);
    - a TLS 1.3 answer in one or two encrypted records (whole or short cannot be told) a second or
      more before the act: more of it after the act, before the server's own end, that makes the
      flight whole (``_rest_after``) shows it short when the client gave up, the server stalled
      (``server-silent``), with or without plaintext; else the plaintext ended the handshake, the
      client's, no case, at the plaintext (without plaintext the generic rule reads the same, at
      the close).

    Without plaintext only that last ``server-silent`` reading applies (the other rules read a bare
    close). Not after the client's own records of the handshake since the ServerHello (the
    Finished rules), nor when a hole since the ClientHello hides what either side had, nor for a
    reset a box forged. Returns True when it set the verdict."""
    ev = end.event
    ch = _hello_owed(f, ts)
    if (ev.side is not _CLIENT or ch is None or f.pos(ch) > f.pos(end)
            or type(ev) is StreamEnded and ev.reset and _reset_forgery(f, end) is not None
            or f.gap_between(f.pos(ch), f.pos(end)) is not None):
        return False
    server_end, alert = f.own_end(_SERVER), ts["alert"]
    if any(x is not None and f.pos(x) < f.pos(end) for x in (server_end, alert)):
        return False
    clear = next((x for x in f.t.items[f.pos(ch) + 1:f.pos(end)]
                  if type(x.event) is TlsNotTls and x.event.side is _CLIENT), None)
    if _client_stepped(f, ts, end if clear is None else clear):
        return False
    closed = f"{'reset' if ev.reset else 'closed'} the connection (frame {_frame(end)})"
    spoke = None if clear is None else _server_spoke(f, clear, end)
    tail = (f", then {closed}" if clear is None or spoke is None else
            f"; the server then {_spoke_words(_clear_words(clear), spoke)}, and the client {closed}")
    return _gave_up_mid_handshake(f, v, ts, ch, clear, end if clear is None else clear, tail, False)


def _frames_words(items: list[Item]) -> str:
    """``frame N`` or ``frames N to M`` of ``items``, for a detail."""
    first, last = _frame(items[0]), _frame(items[-1])
    return f"frame {first}" if first == last else f"frames {first} to {last}"


def _plaintext_answer(f: _Facts, ts: dict[str, Any], after: int, implicit: bool) -> Item | None:
    """The server's plaintext where its TLS answer to the ClientHello belongs (a server, or a
    proxy in front of it, that does not speak TLS on this connection), or None."""
    if ts["client_hello"] is None and not implicit:
        return None
    return next((it for it in f.after_tls
                 if f.pos(it) >= after and it.event.side is _SERVER), None)


def _tls_read_as_reply(f: _Facts, after: int) -> Item | None:
    """The server's first reply after position ``after`` when it is a TLS record (an alert or a
    handshake record: content type 21 or 22, major version 3) that the session, reading the
    client's plaintext after the 220 as a decrypted dialogue, took for a reply line; None when
    the server's next reply is text."""
    it = next((x for x in f.t.items[after + 1:] if type(x.event) is Reply), None)
    if it is None or not it.event.lines:
        return None
    raw = it.event.lines[0].raw
    return it if raw[:1] in (b"\x15", b"\x16") and raw[1:2] == b"\x03" else None


def _injected(f: _Facts, after: int, end: Item) -> Item | None:
    """The server's plaintext right after its 220 to STARTTLS (the session's response-injection
    anomaly), between the 220 (position ``after``) and the client's ``end``, with no hole of the
    server's before it; None otherwise."""
    for it in f.anomalies:
        if (it.event.code is AnomalyCode.STARTTLS_RESPONSE_INJECTION and after < f.pos(it) < f.pos(end)
                and f.gap_between(after, f.pos(it), _SERVER) is None):
            return it
    # (after a hole where STARTTLS went, the session reads a second line as a reply of its own:
    # the same plaintext, sooner than a second after the 220, as the anomaly's rule has it)
    ready = f.t.items[after] if after >= 0 else None
    if ready is not None and type(ready.event) is Reply and ready.event.code == 220:
        # ... or the 220 itself came right after another 220 of the server (a 220 sent twice, the
        # first read as the answer to a STARTTLS lost in a hole): the same repeated answer
        prev = next((x for x in reversed(f.t.items[:after]) if type(x.event) is Reply
                     or type(x.event) is Command and not x.event.inferred), None)
        if (prev is not None and type(prev.event) is Reply and prev.event.code == 220 and not prev.event.greeting
                and ready.ts_ns - prev.ts_ns < WAITED_NS):
            return ready
    for it in f.t.items[after + 1:f.pos(end)]:
        if (type(it.event) is Reply and ready is not None and type(ready.event) is Reply
                and it.ts_ns - ready.ts_ns < WAITED_NS
                and f.gap_between(after, f.pos(it), _SERVER) is None):
            return it
    return None


def _early_flight(f: _Facts, after: int) -> Item | None:
    """The server's first TLS record after its 220 (position ``after``) when the session found it
    came before any byte of the client since that 220 (its response-injection anomaly right
    before it, at the record's first byte: a handshake flight written with the 220), or None."""
    for it in f.anomalies:
        ev = it.event
        if ev.code is AnomalyCode.STARTTLS_RESPONSE_INJECTION and f.pos(it) > after:
            first = next((x for x in f.tls if x.event.side is _SERVER and f.pos(x) > f.pos(it)), None)
            if first is not None and first.event.span.start == ev.span.start:
                return first
            return None
    return None


def _flight_broke_start(f: _Facts, v: _Verdict, ts: dict[str, Any], after: int, early: Item) -> bool:
    """The server sent TLS records after its 220 before any byte of the client (``_early_flight``:
    its ServerHello, certificate and ServerHelloDone in the 220's own segment, a server or proxy
    that starts its TLS at once), and the handshake ended (a close, a reset or a fatal alert of
    either side) without completing, with no hole since the 220: those records answer no
    ClientHello (a TLS server speaks only after it, RFC 8446 2, RFC 5246 7.3) and the client met
    them where the answer to its own ClientHello belongs, or as bytes pipelined after the 220
    (curl: "Weird server reply"; CPython's smtplib drops them with its line buffer, sends its
    ClientHello and waits for an answer until its timeout). The server broke the start, as with
    plaintext there (``_injected``): ``server``, evidence frame the first record. False (the
    other rules read it) when the capture ends first, or bytes were lost before that end."""
    ends = [it for it in (f.own_end(_CLIENT), f.own_end(_SERVER), ts["alert"])
            if it is not None and f.pos(it) > f.pos(early)]
    if not ends:
        return False
    end = min(ends, key=f.pos)
    if f.gap_between(after, f.pos(end)) is not None:
        return False
    hello = ts["client_hello"]
    alert = ts["alert"]
    if alert is not None and f.pos(alert) > f.pos(early):
        v.finding("tls-alert", str(alert.event.side), _frame(alert),
                  f"the {alert.event.side} sent {_alert_named(alert.event)} after the server's TLS records that "
                  f"answered no ClientHello (frame {_frame(early)})", at=_at(alert))
    ev = end.event
    if type(ev) is TlsAlert:
        act = f"the {ev.side} sent {_alert_named(ev)} (frame {_frame(end)})"
    else:
        act = f"the {ev.side} {'reset' if ev.reset else 'closed'} the connection (frame {_frame(end)})"
    if hello is not None and f.pos(hello) < f.pos(end):
        waited = end.ts_ns - hello.ts_ns
        later = next((x for x in f.tls if x.event.side is _SERVER and f.pos(hello) < f.pos(x) < f.pos(end)), None)
        got = ("got no answer of its own" if later is None else
               f"the server's records after it (frame {_frame(later)}) came behind those the client had already")
        tail = (f"the client's ClientHello came after them (frame {_frame(hello)}) and {got}; {act}"
                + (f" {_seconds(waited)} after it" if waited >= WAITED_NS else ""))
    elif ev.side is _CLIENT:
        tail = (f"then {act} without starting TLS, as a client that refuses bytes pipelined after the 220 "
                "does (curl: \"Weird server reply\")")
    else:
        tail = f"then {act} before any ClientHello"
    v.set("aborted", "server", "tls-handshake-failed", _frame(early),
          f"the server sent TLS records after its 220 (frame {_frame(early)}), before any byte of the "
          f"client: they answer no ClientHello (a TLS server speaks only after it); {tail}", early)
    # a reset its side's stack did not send is the box's (_forged_reset), as wherever a reset ends it
    v.by_reset(end, "after the server's TLS records that answered no ClientHello, before the handshake completed")
    return True


def _absent(f: _Facts, side: Side) -> bool:
    """Not a packet of ``side`` after the TCP handshake is in the capture: no byte, FIN or RST
    (``_Facts.present``), and no segment at all, not even an acknowledgement (its last segment's
    time is unknown). Its SYN or SYN-ACK may be there (``Transcript.handshake_seen``: they open
    the flow and are no segment of it): ``_one_sided_detail`` says which. A side whose bytes were
    lost on the path still has segments (its acknowledgements, its FIN), and its holes speak for
    it; only a capture of one direction, or a tap that lost all of the side's packets after its
    handshake, has none."""
    last = f.t.server_last_ns if side is _SERVER else f.t.client_last_ns
    return not f.present(side) and last is None


def _one_sided(f: _Facts) -> Side | None:
    """The side of which the capture holds no packet (``_absent``) while it holds bytes of the
    other: a capture of one direction (or a tap that lost all of the side's packets); None when
    not. A side whose acknowledgements are in the capture was captured, even when it sent nothing
    else (a client that never spoke after the greeting): no one-sided capture."""
    t = f.t
    if bool(t.client_bytes) == bool(t.server_bytes):
        return None
    other = _SERVER if t.client_bytes else _CLIENT
    return other if _absent(f, other) else None


def _one_sided_detail(f: _Facts, other: Side) -> str:
    """The start of a one-sided detail: what of ``other`` (``_absent``) the capture lacks, in
    words true whether it holds one direction only or a tap lost the other side's packets, and
    whether or not the other side's part of the TCP handshake (its SYN-ACK or SYN) is in it."""
    if f.t.handshake_seen:
        first = "SYN-ACK" if other is _SERVER else "SYN"
        return f"no packet of the {other} after its {first} is in the capture"
    return (f"no packet of the {other} is in the capture (a capture of one direction, or a tap that "
            "lost them all)")


def _side_finished(f: _Facts, ts: dict[str, Any], side: Side, before: int) -> tuple[Item, list[Item]] | None:
    """The ``side``'s Finished and the encrypted records it sent after it, before position
    ``before``, when it sent application data after its Finished: TLS 1.2, its ChangeCipherSpec,
    its Finished (an encrypted handshake record) and application data; TLS 1.3 (every record
    after the ClientHello of outer type 23, its first the Finished), two or more. A TLS 1.2
    client sends application data only after the server's Finished, a TLS 1.3 client only after
    the server's flight: the handshake completed as far as one direction shows. None when not."""
    recs = [it for it in ts["data"][side] if f.pos(it) < before]
    fin = next((it for it in recs if isinstance(it.event, TlsEncryptedHandshake)), None)
    app = [it for it in recs if isinstance(it.event, TlsApplicationData)
           and not looks_like_encrypted_alert(it.event.length)]
    if fin is not None and ts["ccs"][side] is not None:
        after = [it for it in app if f.pos(it) > f.pos(fin)]
        return (fin, after) if after else None
    if fin is None and len(app) >= 2:
        return app[0], app[1:]
    return None


def _one_sided_handshake(f: _Facts, v: _Verdict, ts: dict[str, Any]) -> bool:
    """A handshake that did not complete in a capture of one direction only (``_absent``: the
    other side has no segment in it; on port 465 a ``dst port 465`` filter, a one-way tap, or
    asymmetric routing): what the captured side did is there (its hello, its alert, its close or
    reset), but not what it answered (the other side's hello, certificate, alert, or nothing
    at all), so whose fault it was cannot be told (primer section 4): ``incomplete``, the detail
    saying what the captured side did, in the style of ``_unanswered_clear``. False when both
    directions are in the capture, or the captured side neither alerted nor ended (the callers'
    own ``incomplete`` says the capture ends first), or what ended it is a reset the side's stack
    did not send (``_reset_forgery``): that reset is in the captured direction, positive evidence
    of a box on the path, judged as in a whole capture (``_forged_reset``).

    A client that finished its side of the handshake and sent application data after it had the
    server's Finished (or flight): TLS appears established, and an alert after that data (a
    close_notify) did not end a handshake. The verdict stays ``incomplete`` (the server's side,
    and so ``established``, is not in the capture); no ``tls-alert`` finding."""
    if _absent(f, _SERVER) and f.present(_CLIENT):
        side, other, hello, hello_name = _CLIENT, _SERVER, ts["client_hello"], "ClientHello"
    elif _absent(f, _CLIENT) and f.present(_SERVER):
        side, other, hello, hello_name = _SERVER, _CLIENT, ts["server_hello"], "ServerHello"
    else:
        return False
    alert = ts["alert"] if ts["alert"] is not None and ts["alert"].event.side is side else None
    end = f.own_end(side)
    if alert is None and end is None:
        return False
    forgery = _reset_forgery(f, end) if end is not None else None
    foreign = forgery is not None
    if foreign and alert is None:
        return False
    steps = [f"sent a {hello_name} (frame {_frame(hello)})"] if hello is not None else []
    st = f.starttls
    first_tls = next((it for it in f.tls if it.event.side is side), None)
    if (side is _CLIENT and first_tls is not None and st is not None and not st.event.inferred
            and f.pos(st) < f.pos(first_tls)):
        # (port 25: the ClientHello after its STARTTLS, which the session read as TLS with the
        # server's answer not in the capture, SmtpSession._client_tls_unanswered; or, its head
        # lost in a hole, the records after it)
        lost = f.gap_between(f.pos(st), f.pos(first_tls), _CLIENT) if hello is None else None
        steps = [f"sent STARTTLS (frame {_frame(st)})",
                 f"a ClientHello (frame {_frame(hello)})" if hello is not None else
                 f"TLS whose first bytes the capture lost (frame {_frame(lost)})" if lost is not None
                 else "TLS"]
    done = _side_finished(f, ts, side, f.pos(alert) if alert is not None else f.pos(end)) \
        if side is _CLIENT else None
    established = ""
    if done is not None:
        fin, app = done
        n = len(app)
        where = (f"frame {_frame(app[0])}" if n == 1 else
                 f"frames {_frame(app[0])} to {_frame(app[-1])}")
        steps.append(f"finished its side of the handshake (frame {_frame(fin)}) and sent {n} "
                     f"encrypted record{'s' if n != 1 else ''} after it ({where})")
        established = ("; a client sends application data only after the server's Finished, so "
                       "TLS appears established, but the server's side of it is not in the capture")
    if alert is not None:
        ev = alert.event
        name = _alert_named(ev)
        if done is None:
            # (what it sent, not why: a finding of its side, the verdict no blame)
            v.finding("tls-alert", str(side), _frame(alert),
                      f"the {side} sent {name}"
                      + (" (a record of alert size)" if ev.encrypted else "") + " during the handshake",
                      at=_at(alert))
        steps.append(f"{'sent ' if not steps else ''}{name} (frame {_frame(alert)})")
    if end is not None:
        if not foreign:
            steps.append(f"{'reset' if end.event.reset else 'closed'} the connection (frame {_frame(end)})")
    detail = f"{_one_sided_detail(f, other)}; the {side} {', then '.join(steps)}"
    if forgery is not None and end is not None:
        # (after its alert, which ended the handshake: the box's reset decides nothing here, but
        # it is reported as every forged reset is)
        _forged_finding(v, end, forgery, f"; it came after the {side}'s alert, which had already "
                        "ended the handshake")
        detail += (f", then came a reset with the {side}'s address (frame {_frame(end)}) that its "
                   "stack did not send")
    if done is not None:
        detail += established
    else:
        detail += (f", but the {other}'s side of the handshake, which would tell why, is not in the "
                   "capture")
    v.set("incomplete", "unknown", "incomplete", f.t.first_frame, detail)
    return True


def _server_before(t: Transcript, pos: int) -> bool:
    """Something of the server (a byte, a hole, its end) came before position ``pos``."""
    return any(getattr(it.event, "side", None) is _SERVER for it in t.items[:pos])


def _one_sided_hello(f: _Facts, ts: dict[str, Any], st_item: Item) -> str | None:
    """The detail of a capture of the client's direction only (``_absent`` server) whose
    ClientHello after STARTTLS (read as TLS, ``SmtpSession._client_tls_unanswered``) is the
    client's last step in it: no alert, no close (``_one_sided_handshake`` takes those). None
    when not such a capture."""
    hello = ts["client_hello"]
    if (hello is None or st_item.event.inferred or not _absent(f, _SERVER) or not f.present(_CLIENT)
            or ts["data"][_CLIENT]):
        return None
    return (f"{_one_sided_detail(f, _SERVER)}; the client sent STARTTLS (frame {_frame(st_item)}), then a "
            f"ClientHello (frame {_frame(hello)}), and nothing of it after that is in the capture; the "
            "server's side of the handshake, which would tell what became of it, is not in the capture either")


def _server_gave_up_on_clienthello(f: _Facts, v: _Verdict, after: int, end: Item) -> None:
    """The server closed or reset the connection a second or more after its 220 to STARTTLS (at
    position ``after``), with nothing of the client since and no hole of its: its TLS handshake
    timeout (Postfix's smtpd_starttls_timeout closes without a word), waiting for a ClientHello
    that, as far as the capture shows, never came. When the client's own close follows with
    nothing lost before it, the client never started TLS (``tls-not-started``, the client's).
    When the capture ends first, the client's next segment, which would show a ClientHello the
    path dropped (a hole the server never acknowledged: ``_hello_hole_lost``), is not in it:
    ``incomplete``. Either way not the server's: it waited."""
    waited = _seconds(end.ts_ns - f.t.items[after].ts_ns)
    how = "reset" if end.event.reset else "closed"
    if _ready_not_received(f, v, after, end, f"the server {how} the connection (frame {_frame(end)}), its TLS "
                           "handshake timeout, never having had a ClientHello"):
        return
    client_end = f.own_end(_CLIENT)
    if client_end is None:
        v.set("incomplete", "unknown", "incomplete", _frame(end),
              f"the server {how} the connection {waited} after its 220 with nothing of the client since "
              "(its TLS handshake timeout): whether the client never sent its ClientHello or the path "
              "dropped it cannot be told, the capture ends before the client's next segment", end)
        return
    v.set("aborted", "client", "tls-not-started", _frame(end),
          f"the client sent nothing for {waited} after the 220: the server gave up waiting for its "
          f"ClientHello and {how} the connection (frame {_frame(end)}), and the client closed without "
          f"having sent a byte (frame {_frame(client_end)})", end)


def _server_gave_up_on_client_flight(f: _Facts, v: _Verdict, ts: dict[str, Any], end: Item) -> bool:
    """The server closed or reset the connection (``end``) a second or more after the last record
    of its answer to the ClientHello (ServerHello onwards), which the client's acknowledgements
    covered whole, with nothing of the client since (no TLS, no byte, no hole): its TLS handshake
    timeout, waiting for a client that had all it needed to answer and never did. The mirror of a
    server that never answered the ClientHello (``server-silent``) and of a client silent after
    the 220 (``_server_gave_up_on_clienthello``): when the client's own close follows, the client's
    (``tls-handshake-failed``); when the capture ends first, the client's next segment, whose
    sequence number would show an answer the path dropped, is not in it: ``incomplete``. Not the
    server's: it waited. Only when the answer was whole (``_answer_whole``): a server stalled in
    the middle of it is still the server's. The client is blamed only when its TCP acknowledged
    the whole answer before its own close (``Transcript.server_acked_ns``: when its
    acknowledgement last advanced), not only with it: a stack acknowledges nothing it did not
    receive, and within its delayed-ACK timeout (at most 500 ms, RFC 1122 4.2.3.2). An
    acknowledgement riding on the client's close after the server's (its earlier ones lost, or
    the answer late on the path) does not show the client had the answer while the server
    waited: ``incomplete``; so too when the acknowledgement that first covered the answer also
    covered the server's FIN (``Transcript.server_acked_fin``: it was sent only once the FIN had
    arrived, as a stack acknowledges a FIN at once). Its time is not compared with the server's
    close: the two are of two directions, which two merged taps stamp with their clocks' skew
    (tests/transforms.py swap_directions, skew_client); the FIN it covers is a fact of sequence
    numbers. A HelloRetryRequest is a whole answer too: the client owes its second ClientHello
    (``_acked_answer``). Returns True when it set a verdict."""
    if end.event.side is not _SERVER or end.event.reset and _reset_forgery(f, end) is not None:
        return False
    # (the client silent to the capture's end: a TLS record of the client after the server's
    # close, its flight or an alert, is no hang either, the general rule judges it)
    answer = _answer_waited_on(f, ts, end, until_end=True)
    if answer is None:
        return False
    last = answer[-1]
    if end.ts_ns - last.ts_ns < WAITED_NS or not _answer_whole(ts["version"], answer):
        return False
    waited = _seconds(end.ts_ns - last.ts_ns)
    how = "reset" if end.event.reset else "closed"
    if not _answer_acked(f, answer):
        return _answer_unacked_unresent(f, v, answer, end, waited, how)
    client_end = f.own_end(_CLIENT)
    if client_end is None or f.pos(client_end) < f.pos(end):
        v.set("incomplete", "unknown", "incomplete", _frame(end),
              f"the server {how} the connection {waited} after {_answer_words(answer)}, which "
              "the client acknowledged whole, with nothing of the client since (its TLS handshake timeout): "
              "whether the client never answered or the path dropped its answer cannot be told, the capture "
              "ends before the client's next segment", end)
        return True
    since = _had_answer_ns(f, last, client_end)
    if since is None:
        acked_ns = f.t.server_acked_ns
        when = (f"only with its own close (frame {_frame(client_end)}), after the server's (frame {_frame(end)})"
                if acked_ns is None or acked_ns >= client_end.ts_ns else
                f"only with its acknowledgement of the server's close (frame {_frame(end)})")
        v.set("incomplete", "unknown", "incomplete", _frame(end),
              f"the server {how} the connection {waited} after {_answer_words(answer)}, with nothing of the "
              f"client since (its TLS handshake timeout), but the client's TCP acknowledged all of it {when}: "
              "whether the answer had reached the client while the server waited cannot be told (a stack "
              "acknowledges within 500 ms of receiving)", end)
        return True
    late = (f" (its TCP acknowledged it {_seconds(since - last.ts_ns)} after it)"
            if since - last.ts_ns >= WAITED_NS else "")
    msg = (f"the client acknowledged {_answer_words(answer, True)}{late} and sent nothing{_but_ccs(f, answer, end)} "
           f"for {waited}: the server gave up waiting for the client's {_next_flight(answer)} and {how} the "
           f"connection (frame {_frame(end)}); the client then "
           f"{'reset the connection' if client_end.event.reset else 'closed its side'} without having sent "
           f"anything (frame {_frame(client_end)})")
    _unanswered(v, last, "client-silent", "client", "aborted", "tls-handshake-failed", "client-silent", msg, end)
    return True


def _but_ccs(f: _Facts, answer: list[Item], end: Item) -> str:
    """" but its compatibility ChangeCipherSpec (frame N)" when the client sent that TLS 1.3
    record between the server's ``answer`` and ``end`` (``_client_waited`` lets it pass);
    "" otherwise."""
    ccs = next((x for x in f.tls if type(x.event) is TlsChangeCipherSpec and x.event.side is _CLIENT
                and f.pos(answer[0]) < f.pos(x) < f.pos(end)), None)
    return "" if ccs is None else f" but its compatibility ChangeCipherSpec (frame {_frame(ccs)})"


def _client_hung_after_answer(f: _Facts, v: _Verdict, ts: dict[str, Any], end: Item) -> bool:
    """The client closed or reset the connection (``end``, before any end of the server's) a second
    or more after the last record of the server's whole answer to its ClientHello
    (``_answer_whole``), which its TCP acknowledged, having sent nothing since: no TLS record, so
    no alert either. A client that refuses the certificate says so with an alert (encrypted in TLS
    1.3), as OpenSSL, GnuTLS, Go and Java do, and at once: the alert rules judge it. One that goes silent
    for a second or more and then leaves without a word had all it needed and stalled (a
    certificate check or CRL fetch that hangs, until its own timeout): ``client-silent``, as when
    the server's handshake timeout ends the wait (``_server_gave_up_on_client_flight``), with no
    RFC 8460 result (nothing says the receiving server's TLS failed). Sooner, the client decided
    at once (the general rule: its close ended the handshake). Returns True when it set a
    verdict."""
    if end.event.side is not _CLIENT or end.event.reset and _reset_forgery(f, end) is not None:
        return False
    answer = _acked_answer(f, ts, end)
    if answer is None:
        return False
    last = answer[-1]
    since = _had_answer_ns(f, last, end)
    if (since is None or end.ts_ns - since < WAITED_NS or not _answer_whole(ts["version"], answer)
            or not _server_silent(f, last, end)):
        return False
    how = "reset" if end.event.reset else "closed"
    check = "" if type(answer[0].event) is TlsHelloRetryRequest else " (its certificate check, say)"
    msg = (f"the client acknowledged {_answer_words(answer, True)} and sent nothing{_but_ccs(f, answer, end)} for "
           f"{_seconds(end.ts_ns - since)}, no {_next_flight(answer)} and no alert: then it {how} the "
           f"connection (frame {_frame(end)}) without a word, as a client whose TLS stalled{check} until its "
           "own timeout does")
    _unanswered(v, last, "client-silent", "client", "aborted", "tls-handshake-failed", "client-silent", msg, end)
    return True


def _had_answer_ns(f: _Facts, last: Item, before: Item) -> int | None:
    """Since when the client is shown to have had the server's answer ending with ``last``, before
    ``before``, an act of the client's (its close, reset, alert or plaintext); None when the capture
    does not show it had it before then. The one reading of the client's acknowledgement time
    (``Transcript.server_acked_ns``, when it last advanced; a stack acknowledges within 500 ms of
    receiving, RFC 1122 4.2.3.2) for the rules that measure a client's wait (``_client_hung_after_answer``,
    ``_answer_stalled``, ``_spoke_clear_at_once``) and the one that asks whether the client had the
    answer while the server waited (``_server_gave_up_on_client_flight``, ``before`` the client's
    close after the server's):

    - that time, not before ``last`` was captured: an answer that reached the client late (a long
      path seen from the server's side, a resend of a lost copy) shows so, and a client that acted
      at once after its acknowledgement did not wait; when the acknowledgement rode on ``before``
      itself, since ``before`` (no wait);
    - when it advanced only after ``before`` while the server was still open then, since ``last``:
      it covered the server's later bytes (the rest of a stalled answer after the client's close),
      the answer's own acknowledgement came earlier, when is not known;
    - not shown (None) when no acknowledgement time is known, or the server had closed before
      ``before`` and the acknowledgement came with ``before`` or after it (nothing of the server's
      but its FIN, which alone does not advance it, came since: it is the one that covered the
      answer), or it also covered that FIN (sent only once the FIN had arrived, as the usual stack
      acknowledges a FIN at once: a fact of sequence numbers, not of the two directions' capture
      times, which merged taps skew).

    The acknowledgement's time is compared only with the client's own acts (one direction, so
    merged taps' skew does not enter); when it covers ``last`` it is returned as it is, not raised to
    ``last``'s stamp, which is the server's direction.

    When ``before`` is the client's plaintext whose segment's own acknowledgement is known
    (``TlsNotTls.ack``, ``_plaintext_had``), that decides first, on the client's clock alone:
    it covers ``last`` and tells since when (``TlsNotTls.ack_age``), that time; it does not cover
    ``last``, None (the plaintext was sent before ``last`` arrived: it crossed it)."""
    had = _plaintext_had(before, last)
    if had is not None:
        return had if had >= 0 else None
    acked = f.t.server_acked_ns
    if acked is None:
        return None
    server_end = f.own_end(_SERVER)
    if server_end is not None and f.pos(server_end) < f.pos(before) and (
            f.t.server_acked_fin or acked >= before.ts_ns):
        return None
    if acked > before.ts_ns:
        return last.ts_ns
    if _answer_acked(f, [last]):
        # (it covers ``last``: sent after ``last`` arrived, on the client's clock as ``before``
        # is; where merged taps put it before ``last``'s stamp, the server's tap runs ahead)
        return acked
    return max(last.ts_ns, acked)


def _plaintext_had(clear: Item, last: Item) -> int | None:
    """By the acknowledgement the segment of the client's plaintext ``clear`` (a ``TlsNotTls``)
    carried itself (``TlsNotTls.ack``, an offset in the server's stream): since when the client had
    the server's record ``last`` when it sent that plaintext, on its own tap's clock (the time its
    acknowledgement first reached that far, ``ts_ns - ack_age``: that segment's own time when it
    advanced it, an earlier pure ACK's otherwise); -1 when it did not have it (the acknowledgement
    stops short of ``last``'s end: the plaintext was sent before ``last`` arrived, it crossed it);
    None when not known (no acknowledgement given, its time not known, or ``clear`` no plaintext
    of the client's), where the rules read the client's acknowledgement as last advanced instead
    (``Transcript.server_acked_ns``). Unlike that one, which a later acknowledgement (of the
    server's alert to the plaintext, of the rest of the answer) moves past the plaintext, this is
    what the client had at the plaintext, and its time is of the client's own segments only:
    merged taps' skew and the path's length do not enter."""
    ev = clear.event
    if type(ev) is not TlsNotTls or ev.side is not _CLIENT or ev.ack < 0:
        return None
    if ev.ack < last.event.span.end:
        return -1
    if ev.ack_age == 0 and clear.ts_ns - last.ts_ns >= WAITED_NS:
        # (the plaintext's own segment was the first to acknowledge ``last``, a second or more
        # after it: a stack acknowledges within 500 ms (RFC 9293 3.8.6.3), so the client's own
        # acknowledgement is missing from the capture (lost, or reordered after the plaintext):
        # when the client had it is not known)
        return None
    return clear.ts_ns - ev.ack_age if ev.ack_age >= 0 else None


def _gave_up_mid_answer(f: _Facts, v: _Verdict, ts: dict[str, Any], answer: list[Item], ender: Item,
                        what: str) -> None:
    """The verdict of a client that ended the handshake (``ender``: its close, reset or alert;
    ``what`` says which) a second or more after the last record of an ``answer`` to its
    ClientHello that stopped short of whole (``_answer_stalled``, which the caller asked: no
    ServerHelloDone; in TLS 1.3 no encrypted record at all, or three or more with none of a
    Finished's size), which its TCP acknowledged (the wait counted from that acknowledgement,
    ``_had_answer_ns``), with nothing of the server since and nothing of the client before
    ``ender``: the client waited for the rest (RFC 5246 7.3, RFC 8446 2: it has nothing to send
    before it) until its own timeout, and the server that stalled in the middle of its answer (a
    slow signature, an OCSP fetch, a hung TLS stack) caused it, as when the server's own handshake
    timeout closes first, and as a server that never answered the ClientHello (``server-silent``).
    A client that gave up on TLS by speaking SMTP in the clear before it closed (PHPMailer's QUIT)
    still waited when that plaintext came a second or more after it had the answer
    (``_gave_up_at``): the detail names what it sent."""
    last = answer[-1]
    clear = next((x for x in f.t.items[f.pos(last) + 1:f.pos(ender)]
                  if type(x.event) is TlsNotTls and x.event.side is _CLIENT), None)
    if clear is not None:
        what = f"sent {_clear_words(clear)} in the clear (frame {_frame(clear)}), then {what}"
    # (a resumption's answer, ServerHello and ChangeCipherSpec, stops short of its Finished)
    short = ("its Finished" if ts["version"] == 0x0304
             or any(isinstance(x.event, TlsChangeCipherSpec) for x in answer) else "its ServerHelloDone")
    frames = _frames_words(answer)
    msg = (f"the server's answer to the ClientHello stopped short of {short} ({frames}, which the client "
           f"acknowledged) and the server sent nothing more for {_seconds(ender.ts_ns - last.ts_ns)}: the client "
           f"gave up waiting for the rest and {what}")
    _unanswered(v, last, "no-answer", "server", "aborted", "tls-handshake-failed", "server-silent", msg)


#: the alerts a client sends when it gives up waiting rather than refusing something it got
#: (RFC 8446 6.1, 6.2; RFC 5246 7.2): close_notify, internal_error (a timeout inside the TLS
#: library), user_canceled. A certificate alert (bad_certificate, unknown_ca...) before the
#: ServerHelloDone is the client's decision on the Certificate message, which OpenSSL and Go
#: check as soon as it arrives, a slow revocation or AIA fetch making it late
_GAVE_UP_ALERTS = frozenset({0, 80, 90})


def _answer_stalled(f: _Facts, ts: dict[str, Any], ender: Item) -> list[Item] | None:
    """The server's answer to the ClientHello (``_acked_answer``) when it stopped short of whole
    and the client ended the handshake (``ender``: its close, reset or alert) a second or more
    after its last record, nothing of the server's since (``_gave_up_mid_answer``); None when
    not."""
    ev = ender.event
    if ev.side is not _CLIENT or (type(ev) is StreamEnded and ev.reset and _reset_forgery(f, ender) is not None):
        return None
    if type(ev) is TlsAlert and not ev.encrypted and ev.description not in _GAVE_UP_ALERTS:
        return None     # (a decision on what came: a certificate it refused, a parameter)
    answer = _acked_answer(f, ts, ender, plaintext=True)
    if answer is None:
        return None
    last = answer[-1]
    # (the wait ends at the client's first act of giving up: plaintext 5 ms after the answer,
    # then a close 1.5 s later, did not wait for the rest)
    act = _gave_up_at(f, last, ender)
    had = _had_answer_ns(f, last, act)
    if (had is None or act.ts_ns - had < WAITED_NS or not _answer_short(ts["version"], answer)
            or not _server_silent(f, last, ender)):
        return None
    return answer


def _clear_words(it: Item) -> str:
    """The start of the client's plaintext ``it`` (a ``TlsNotTls``), quoted, for a detail."""
    return repr(it.event.preview.decode("latin-1").rstrip()[:40])


def _gave_up_words(act: Item) -> str:
    """What the client did to give up (``_gave_up_at``'s ``act``), for a detail: its plaintext,
    quoted, or its cleartext alert of giving up, named."""
    ev = act.event
    if type(ev) is TlsNotTls:
        return f"sent {_clear_words(act)} in the clear (frame {_frame(act)})"
    return f"sent the TLS alert {ev.name} ({ev.description}) (frame {_frame(act)})"


def _gave_up_at(f: _Facts, last: Item, ender: Item) -> Item:
    """The client's first act of giving up on TLS after ``last`` (the server's last record, or the
    client's ClientHello never answered), up to
    ``ender`` (its close, reset or alert): its plaintext (``TlsNotTls``, PHPMailer's QUIT, timed by
    the segment that carried its first byte, with or without a line end: ``smtp.tls``), or a
    cleartext alert of giving up (``_GAVE_UP_ALERTS``), the two ``_client_waited`` lets pass;
    ``ender`` when it sent neither."""
    for it in f.t.items[f.pos(last) + 1:f.pos(ender)]:
        ev = it.event
        if getattr(ev, "side", None) is _CLIENT and (
                type(ev) is TlsNotTls
                or type(ev) is TlsAlert and not ev.encrypted and ev.description in _GAVE_UP_ALERTS):
            return it
    return ender


def _spoke_clear_at_once(f: _Facts, v: _Verdict, ts: dict[str, Any], end: Item, what: str) -> bool:
    """The client ended the handshake (``end``: its close or reset; ``what`` says which) after
    sending plaintext (``TlsNotTls``) in the middle of it, less than a second after the server's
    last record before it (counted from the client's acknowledgement of that record when later,
    ``_had_answer_ns``), with no hole since the ServerHello (or HelloRetryRequest): it gave up on
    TLS at once, without waiting for the rest of an answer that had stopped short of whole (a
    stalled server, ``_gave_up_mid_answer``, needs the client to have waited a second or more),
    or with the whole answer in hand: the client's own decision, ``tls-handshake-failed`` at its
    plaintext. Only when the plaintext's own segment acknowledged that last record
    (``_plaintext_had``: the client had it then, and since when, on its own clock); where that is
    not known, only when the client's acknowledgement last advanced by its plaintext: one that
    advanced later (with its close) leaves the plaintext maybe sent before the answer arrived
    (crossing it). A plaintext whose segment acknowledged less crossed the answer: the other rules
    judge it. Returns True when it set the verdict."""
    first = ts["server_hello"] if ts["server_hello"] is not None else ts["hello_retry"]
    if (end.event.side is not _CLIENT or first is None or f.pos(first) > f.pos(end)
            or end.event.reset and _reset_forgery(f, end) is not None
            or f.gap_between(f.pos(first), f.pos(end)) is not None):
        return False
    clear = next((x for x in f.t.items[f.pos(first) + 1:f.pos(end)]
                  if type(x.event) is TlsNotTls and x.event.side is _CLIENT), None)
    if clear is None:
        return False
    answer = [x for x in f.tls if x.event.side is _SERVER and f.pos(first) <= f.pos(x) < f.pos(clear)]
    last = answer[-1]
    acked_ns = f.t.server_acked_ns
    own = _plaintext_had(clear, last)
    if own is None and (acked_ns is None or acked_ns > clear.ts_ns):
        # (the client's acknowledgement last advanced after its plaintext, and the plaintext's own is
        # not known: the plaintext may have crossed the answer on the way, sent before any of it
        # arrived; the other rules judge it)
        return False
    if own is not None and own < 0:
        return False    # (its own segment did not acknowledge the answer: it crossed it)
    # (no acknowledgement time shown: the answer's own time, the earliest the client can have had it)
    had = _had_answer_ns(f, last, clear)
    if had is None:
        had = last.ts_ns
    if clear.ts_ns - had >= WAITED_NS:
        return False
    said = _clear_words(clear)
    # (a second or more by the capture's clock, less since the client had it: a late answer; or the
    # plaintext stamped before the record, two taps' clocks apart)
    acked = (f"; {(clear.ts_ns - had) / 1e6:.0f} ms after the client's TCP acknowledged it"
             if clear.ts_ns - last.ts_ns >= WAITED_NS or clear.ts_ns < last.ts_ns else "")
    if _answer_short(ts["version"], answer):
        missing = ("Finished" if ts["version"] == 0x0304
                   or any(isinstance(x.event, TlsChangeCipherSpec) for x in answer) else "ServerHelloDone")
        rest = (f", before the rest of the server's answer to its ClientHello (no {missing} so far) could come",
                ", without waiting for the rest")
    elif _answer_whole(ts["version"], answer) and _answer_acked(f, answer):
        rest = (", with the server's whole answer to its ClientHello in hand", "")
    elif _answer_whole(ts["version"], answer):
        rest = (", before its TCP acknowledged the server's whole answer to its ClientHello", "")
    else:
        rest = ("", "")
    msg = (f"the client sent {said} in the clear (frame {_frame(clear)}) "
           f"{max(0, clear.ts_ns - last.ts_ns) / 1e6:.0f} ms after the server's last record (frame {_frame(last)}"
           f"{acked}), in the middle of the TLS handshake{rest[0]}, then {what}: it gave up on TLS at once{rest[1]}")
    v.set("aborted", "client", "tls-handshake-failed", _frame(clear), msg, clear)
    return True


def _acked_answer(f: _Facts, ts: dict[str, Any], end: Item, plaintext: bool = False) -> list[Item] | None:
    """The server's answer to the ClientHello the client waited on before ``end``
    (``_answer_waited_on``) when the client's TCP acknowledged every byte of it
    (``_answer_acked``); None otherwise."""
    answer = _answer_waited_on(f, ts, end, plaintext)
    return answer if answer is not None and _answer_acked(f, answer) else None


def _answer_waited_on(f: _Facts, ts: dict[str, Any], end: Item, plaintext: bool = False,
                      until_end: bool = False) -> list[Item] | None:
    """The server's answer to the ClientHello before ``end``, its TLS records (in capture order)
    from its ServerHello on, or from its HelloRetryRequest when no ServerHello came (the answer
    that asks for a second ClientHello), when the client sent nothing of its handshake after the
    answer began before ``end`` (``_client_waited``; ``plaintext``: bytes that are no TLS allowed;
    ``until_end``: nor after ``end``, to the capture's end), and neither direction lost anything
    in a hole since (a hole in the answer may hide its end); None otherwise."""
    first = ts["server_hello"] if ts["server_hello"] is not None else ts["hello_retry"]
    if (first is None or f.pos(first) > f.pos(end)
            or not _client_waited(f, ts, first, None if until_end else end, plaintext)
            or f.gap_between(f.pos(first), 1 << 62, _SERVER) is not None):
        return None
    return [x for x in f.tls if x.event.side is _SERVER and f.pos(first) <= f.pos(x) < f.pos(end)]


def _answer_came_late(f: _Facts, ch: Item, answer: list[Item]) -> bool:
    """The server's ``answer`` to the ClientHello ``ch``, none of which the segment of the client's
    plaintext a second or more after ``ch`` acknowledged, crossed that plaintext because the server
    sent it late, not because the path lost it: its first record comes a second or more after the
    ClientHello, the server never sent any of it again, and the client's acknowledgements covered
    it whole afterwards (``quitcross-late-answer-crossed-quit.pcap``, the answer 30 s late). An
    answer sent at once whose first copy the path lost, resent after the plaintext, looks the same
    at the client; so does one sent at once on a path slower than a second: neither is the server's
    silence."""
    return (answer[0].ts_ns - ch.ts_ns >= WAITED_NS and f.t.server_resent <= answer[0].event.span.start
            and _answer_acked(f, answer))


def _answer_acked(f: _Facts, answer: list[Item]) -> bool:
    """Did the client's TCP acknowledge every byte of the server's ``answer`` (its highest
    acknowledgement in the capture, ``Transcript.server_acked``)?"""
    acked = f.t.server_acked
    return acked is not None and acked >= max(x.event.span.end for x in answer)


def _answer_unacked_unresent(f: _Facts, v: _Verdict, answer: list[Item], end: Item, waited: str,
                             how: str) -> bool:
    """The server closed or reset the connection (``end``, ``waited`` after the last record of its
    whole ``answer`` to the ClientHello, the client silent since: ``_server_gave_up_on_client_flight``)
    while no acknowledgement of the client's in the capture covers that answer whole, and the
    server never sent any of it again. A TCP stack sends again what stays unacknowledged once its
    retransmission timeout expires (RFC 6298: a second at first, doubling each time), so a sender
    that waited that long and never resent it had acknowledgements the capture lacks, or the
    capture lacks its resends as well: either way the capture lost packets where the answer's fate
    shows. Whether the answer reached the client (a client that had it and never answered) or the
    path dropped it (a client that never had it) cannot be told, and nothing shows the server
    failed (it waited with its answer whole): ``incomplete``, as the capture that goes on to the
    client's acknowledgement at its own close reads. A later segment of the client that stays
    short of the answer, or the server's resend, shows the answer lost on the path
    (``_answer_not_received``, asked first); here neither is in the capture. Returns True when it
    set the verdict (False: the server did send part of it again, for the other rules)."""
    start = answer[0].event.span.start
    if f.t.server_resent > start:
        return False
    acked = f.t.server_acked
    lost = _Unreceived(0 if acked is None else max(0, acked - start),
                       max(x.event.span.end for x in answer) - start)
    v.set("incomplete", "unknown", "incomplete", _frame(end),
          f"the server {how} the connection {waited} after {_answer_words(answer, True).rstrip(',')}, with nothing of "
          f"the client since (its TLS handshake timeout), but the client's acknowledgements in the capture "
          f"{lost.covered()} and the server never sent it again: a TCP stack sends again what stays "
          "unacknowledged past its retransmission timeout (RFC 6298), so acknowledgements the capture lacks "
          "had reached the server, or the capture lacks its resends as well; whether the answer reached the "
          "client (which then never answered) or the path dropped it cannot be told", end)
    return True


def _client_waited(f: _Facts, ts: dict[str, Any], first: Item, end: Item | None, plaintext: bool) -> bool:
    """As ``_silent`` for the client from ``first`` (the server's answer) to ``end`` (None: to the
    capture's end), but a TLS
    1.3 ChangeCipherSpec of the client does not count: middlebox compatibility's dummy record
    (RFC 8446 D.4) carries nothing of the handshake, and GnuTLS sends it as soon as the
    ServerHello comes, before the rest of the answer; nor, with ``plaintext``, bytes that are no
    TLS: a client that gave up waiting and spoke SMTP in the clear (PHPMailer sends QUIT after
    its handshake timeout, then closes), or a cleartext alert of giving up (``_GAVE_UP_ALERTS``:
    Java sends user_canceled and close_notify, warnings the verdict's alert rules never see).
    The plaintext's time is not known here (the TLS observer reports it once it has its
    preview, at the stream's end at the latest); ``end`` is after it."""
    if not f.present(_CLIENT) or f.gap_between(f.pos(first), 1 << 62, _CLIENT) is not None:
        return False
    for it in f.t.items[f.pos(first) + 1:f.pos(end) if end is not None else None]:
        ev = it.event
        if getattr(ev, "side", None) is not _CLIENT or isinstance(ev, StreamEnded):
            continue
        if type(ev) is TlsChangeCipherSpec and _tls13(ts) or plaintext and type(ev) is TlsNotTls:
            continue
        if plaintext and type(ev) is TlsAlert and not ev.encrypted and ev.description in _GAVE_UP_ALERTS:
            continue    # (a warning alert of a client that gives up, as Java's user_canceled, close_notify)
        return False
    return True


def _tls13(ts: dict[str, Any]) -> bool:
    """Is the handshake TLS 1.3: its ServerHello says so, or the server sent a HelloRetryRequest
    (only TLS 1.3 has one; ``ts["version"]`` comes from a ServerHello)?"""
    return ts["version"] == 0x0304 or ts["hello_retry"] is not None


def _answer_words(answer: list[Item], whole: bool = False) -> str:
    """The server's ``answer`` (``_acked_answer``) in a message: its HelloRetryRequest, or its
    (``whole``) answer to the ClientHello, and its frames."""
    first = answer[0]
    frames = _frames_words(answer)
    if type(first.event) is TlsHelloRetryRequest:
        return f"the server's HelloRetryRequest ({frames}), which asked for a second ClientHello,"
    return f"the server's {'whole ' if whole else ''}answer to its ClientHello ({frames})"


def _next_flight(answer: list[Item]) -> str:
    """What the client owed after the server's ``answer`` (``_acked_answer``)."""
    return "second ClientHello" if type(answer[0].event) is TlsHelloRetryRequest else "side of the handshake"


def _answer_whole(version: int | None, answer: list[Item]) -> bool:
    """Does the server's ``answer`` to the ClientHello (its records from the ServerHello on) end
    where the client has all it needs to go on? TLS 1.2 and before: a ServerHelloDone (RFC 5246
    7.3: only then does the client send its key exchange), or, resuming a session, the server's
    ChangeCipherSpec and its encrypted Finished. TLS 1.3: the server's Finished ends its flight
    (RFC 8446 2), encrypted like the rest of it; its record's size follows from the ServerHello's
    suite (``looks_like_finished``: 53 bytes, 69 under TLS_AES_256_GCM_SHA384, 45 under
    TLS_AES_128_CCM_8_SHA256), so a record of that size after the first encrypted one (the
    EncryptedExtensions) must be among them (a server that
    packs its whole flight into one record, whose end cannot be told, does not count). A server
    stalled in the middle of its answer (a slow signature for its CertificateVerify, an OCSP
    fetch) leaves the client waiting, rightly. A HelloRetryRequest is whole by itself."""
    if type(answer[0].event) is TlsHelloRetryRequest:
        return True     # (RFC 8446 4.1.4: the client answers it with a second ClientHello)
    if version == 0x0304:
        # (not the first encrypted record, the EncryptedExtensions, which may have that size
        # too; the server's session tickets may follow its Finished, as Go's crypto/tls sends)
        enc = [x for x in answer if isinstance(x.event, TlsApplicationData)]
        suite = answer[0].event.cipher_suite if type(answer[0].event) is TlsServerHello else None
        return any(looks_like_finished(x.event.length, suite) for x in enc[1:])
    if any(isinstance(x.event, TlsHandshakeOther) and x.event.handshake_type == 14 for x in answer):
        return True
    # (``answer`` is in capture order)
    ccs = next((i for i, x in enumerate(answer) if isinstance(x.event, TlsChangeCipherSpec)), None)
    return ccs is not None and any(isinstance(x.event, TlsEncryptedHandshake) for x in answer[ccs + 1:])


def _answer_short(version: int | None, answer: list[Item]) -> bool:
    """Does the server's ``answer`` to the ClientHello (``_answer_whole``'s) stop short of whole,
    as far as the capture shows? TLS 1.2: whenever it is not whole (its handshake messages are in
    clear). TLS 1.3, whose flight is encrypted, only on positive evidence: no encrypted record
    after the ServerHello at all, or three or more, none of a Finished's size (a stack that
    writes one handshake message per record, as OpenSSL and GnuTLS do, shows its Finished as the
    fourth: EncryptedExtensions, Certificate, CertificateVerify, Finished). One or two records
    cannot be told: a server that packs its whole encrypted flight into one record (BoringSSL),
    or its certificate, CertificateVerify and Finished into one after the EncryptedExtensions,
    sends its Finished in a record of another size, as does one that pads its records (RFC 8446
    5.4); those are left to the general rule."""
    if _answer_whole(version, answer):
        return False
    if version == 0x0304:
        records = sum(1 for x in answer if isinstance(x.event, TlsApplicationData))
        return records == 0 or records >= 3
    return True


def _server_stream_known(f: _Facts, before: Item) -> bool:
    """Is where the server's byte stream starts known before ``before``: the capture holds the
    connection's start, or bytes of the server came earlier? In a capture that starts later,
    with nothing of the server before ``before``, a lost answer leaves no hole: the server's
    next segment (its FIN) just starts its stream there."""
    return not f.t.midstream or _server_before(f.t, f.pos(before))


def _server_bytes_unseen(f: _Facts) -> int:
    """How many bytes of the server past the last one the capture holds (or lost in a hole) the
    client acknowledged (its highest ACK, ``Transcript.server_acked``): the server sent them,
    the capture lost them at the end of its direction, where no later segment of the server
    shows the hole (a reset a box forged proves nothing of the server's sequence numbers). 0
    when none, or one only (the server's FIN, whose acknowledgement counts one more, when the
    capture lost it)."""
    acked = f.t.server_acked
    if acked is None:
        return 0
    held = f.t.server_bytes + sum(it.event.length for _, it in f.all_gaps if it.event.side is _SERVER)
    unseen = acked - held
    return unseen if unseen > 1 else 0


def _server_silent(f: _Facts, asked: Item, until: Item) -> bool:
    """No byte of the server between ``asked`` and ``until`` in the capture, and none lost after
    ``asked`` (a hole of its direction anywhere later: the client's ACKs or the server's FIN
    may prove it only after ``until``, and the bytes lost may be the answer); its close or reset
    does not count. A capture without the server's direction (one-sided: no byte, FIN or RST of
    it) shows no silence, only that nothing of it was captured."""
    return _silent(f, _SERVER, asked, until) and _server_stream_known(f, asked)


def _silent(f: _Facts, side: Side, asked: Item, until: Item) -> bool:
    """No byte of ``side`` between ``asked`` and ``until`` in the capture (its close or reset
    does not count), none lost after ``asked``, and ``side``'s direction in the capture."""
    if not f.present(side) or f.gap_between(f.pos(asked), 1 << 62, side) is not None:
        return False
    return not any(getattr(it.event, "side", None) is side and not isinstance(it.event, StreamEnded)
                   for it in f.t.items[f.pos(asked) + 1:f.pos(until)])


def _gave_up_on_clienthello(f: _Facts, v: _Verdict, ts: dict[str, Any], ender: Item, what: str) -> bool:
    """The client ended the handshake (``ender``: its close, reset or alert; ``what`` says which)
    a second or more after its ClientHello, with no byte of the server since: it gave up waiting,
    and the server (or a box in front of it that drops TLS) that never answered caused it.
    Sooner, the client did not wait (False: the general rule blames the side that closed) when
    the server acknowledged the ClientHello; when the ClientHello never arrived at all (a segment
    of the server captured ``HOLE_PROOF_NS`` or more after it still acknowledges it only up to
    before it, or into it), the client's TCP goes on sending it after the close, so however
    long the client had waited, the server would not have got it: the path caused it, as when
    the bytes are a hole (``_hello_hole_lost``); and when the server had not acknowledged it
    but nothing of the server's comes that late, which of the two it was cannot be told:
    incomplete. After a HelloRetryRequest, the ClientHello waited on is the second one, which
    answered it (``_hello_owed``). The wait ends at the client's first act of giving up
    (``_gave_up_at``): SMTP in the clear before the close (PHPMailer's QUIT) a second or more
    after the ClientHello is that giving up, named in the detail; sooner, the client gave up on
    TLS at once, before any answer could come: the client's, at its plaintext, as
    ``_spoke_clear_at_once`` after an answer. Returns True when it set a verdict."""
    ch = _hello_owed(f, ts)
    sh = ts["server_hello"]
    if ch is None or ender.event.side is not _CLIENT:
        return False
    # (the wait ends at the client's first act of giving up: QUIT in the clear 5 ms after the
    # ClientHello, then a close 30 s later, did not wait for an answer)
    act = _gave_up_at(f, ch, ender)
    said = _gave_up_words(act) if act is not ender else ""
    if (act is not ender and act.ts_ns - ch.ts_ns < WAITED_NS and (sh is None or f.pos(act) < f.pos(sh))
            and _server_silent(f, ch, act)):
        # (whatever became of the ClientHello: no server answers within a few milliseconds, and a
        # client that gave up that soon never meant to wait; an answer that came after the
        # plaintext, before the close, changes nothing of that, and merged taps a few milliseconds
        # apart can put the plaintext before an answer that came first)
        v.set("aborted", "client", "tls-handshake-failed", _frame(act),
              f"the client {said} {max(0, act.ts_ns - ch.ts_ns) / 1e6:.0f} ms after its ClientHello (frame "
              f"{_frame(ch)}), before any answer of the server's, then {what}: it gave up on TLS at once, "
              "without waiting for the server's answer", act)
        return True
    # (a ServerHello after the client's end came too late to count: it answered nothing the
    # client still waited for)
    if (sh is not None and not _after(f, sh, ender)) or not _server_silent(f, ch, ender):
        return False
    if act is not ender:
        what = f"{said} {_seconds(act.ts_ns - ch.ts_ns)} after it, then {what}"
    if ender.ts_ns - ch.ts_ns < WAITED_NS:
        span = ch.event.span
        never = _unreceived(f, _CLIENT, span.start, span.end, ch.ts_ns + HOLE_PROOF_NS)
        if never is None:
            acked = f.t.client_acked
            if acked is not None and acked >= span.end:
                return False        # it arrived: the client ended the handshake without waiting
            # Not acknowledged, and nothing of the server's late enough to show it never
            # arrived: a drop on the path (its TCP resending it in vain) or a client that closed
            # before it could arrive cannot be told apart.
            v.set("incomplete", "unknown", "incomplete", _frame(ender),
                  f"the client {what} {_seconds(ender.ts_ns - ch.ts_ns)} after its ClientHello (frame "
                  f"{_frame(ch)}), which the server had not acknowledged: whether it ever reached the "
                  "server (a drop on the path) cannot be told", ender)
            return True
        last = f.t.server_last_ns or ch.ts_ns
        _hello_lost(v, ch, f"the server's acknowledgements up to its last segment "
                           f"({_seconds(last - ch.ts_ns)} after it) {never.covered()}; the client {what} "
                           f"{_seconds(ender.ts_ns - ch.ts_ns)} after it, but its TCP goes on sending "
                           "it after a close")
        return True
    lost = _not_received(f, ch)
    if lost is not None:
        # (the plaintext's time is in ``what`` already when the client gave up by sending it)
        when = "" if act is not ender else f"{_seconds(ender.ts_ns - ch.ts_ns)} after it "
        _hello_lost(v, ch, f"{lost}; {when}the client gave up waiting and {what}")
        return True
    hello = ("the ClientHello" if ch is ts["client_hello"] else
             f"the client's second ClientHello, which answered the server's HelloRetryRequest (frame "
             f"{_frame(ts['hello_retry'])})")
    msg = (f"the server sent nothing for {_seconds(ender.ts_ns - ch.ts_ns)} after {hello}: "
           f"the client gave up waiting and {what}")
    _unanswered(v, ch, "no-answer", "server", "aborted", "tls-handshake-failed", "server-silent", msg)
    return True


def _hello_owed(f: _Facts, ts: dict[str, Any]) -> Item | None:
    """The ClientHello the server owes an answer: the client's first, or, after the server's
    HelloRetryRequest, the second one the client answered it with (RFC 8446 4.1.4), when it sent
    one."""
    ch, hrr = ts["client_hello"], ts["hello_retry"]
    if ch is None or hrr is None:
        return ch
    return next((x for x in f.tls if type(x.event) is TlsClientHello and f.pos(x) > f.pos(hrr)), ch)


def _gave_up_after_finished(f: _Facts, v: _Verdict, ts: dict[str, Any], ender: Item, what: str,
                            lost_only: bool = False) -> bool:
    """The client ended the handshake (``ender``: its close or reset; ``what`` says which) a second
    or more after its side of the handshake was done (its ChangeCipherSpec and Finished in TLS 1.2,
    its Finished in TLS 1.3), which the server acknowledged, with no byte of the server since: the
    server never answered it (a server stuck checking the client, a box in front of it), as after
    a ClientHello never answered (``_gave_up_on_clienthello``). When the server's acknowledgements
    never covered that Finished (the client sent it again, or a segment of the server a second or
    more later shows it), it never arrived: the path's, also when the server's close is read
    first (its handshake timeout, waiting for the flight that never came; or the client's close
    read late, after a hole of its bytes nobody acknowledged, which is declared when the flow
    closes: the acknowledgements decide, not the order of the closes); ``lost_only``: that case
    alone (asked before the holes are: bytes the server never received hide nothing it could have
    answered), read from the client's first record after the ServerHello when its Finished is
    not in the capture (in a hole of the flight). Returns True when it set a verdict."""
    if ts["server_hello"] is None:
        return False
    sccs = ts["ccs"][_SERVER]
    # (the server's ChangeCipherSpec after the client's end came too late to count)
    done = (ts["finished_unanswered"] if ts["version"] == 0x0304 else
            ts["ccs"][_CLIENT] if sccs is None or _after(f, sccs, ender) else None)
    what_done = "Finished"
    if done is None and lost_only and (sccs is None or _after(f, sccs, ender)):
        sh = f.pos(ts["server_hello"])
        done = next((x for x in f.tls if x.event.side is _CLIENT and f.pos(x) > sh), None)
        what_done = "flight after the ServerHello"
    if (done is None or (_frame(done) or 0) > (_frame(ender) or 0) or ender.ts_ns - done.ts_ns < WAITED_NS
            or not _server_silent(f, done, ender)):
        return False
    done_words = f"the client's {what_done} (frame {_frame(done)})"
    if (what_done == "Finished" and type(done.event) is TlsChangeCipherSpec
            and not any(type(x.event) is TlsEncryptedHandshake and x.event.side is _CLIENT
                        and f.pos(x) > f.pos(done) for x in f.tls)):
        # (TLS 1.2: the client's ChangeCipherSpec stands for its Finished, which follows it; a
        # ChangeCipherSpec alone is no Finished, and one before the ServerHelloDone comes before
        # the client could have its key exchange)
        shd = any(isinstance(x.event, TlsHandshakeOther) and x.event.handshake_type == 14
                  and x.event.side is _SERVER and f.pos(x) < f.pos(done) for x in f.tls)
        early = "" if shd else ", sent before the server's ServerHelloDone"
        done_words = (f"the client's ChangeCipherSpec (frame {_frame(done)}), a lone record (no Finished after "
                      f"it{early})")
    acked = f.t.client_acked
    if acked is None or acked < done.event.span.end:
        lost = _not_received(f, done)
        if lost is None:
            return False
        # (a client certificate chain makes this flight large: a path MTU black hole drops it,
        # as it drops a large ClientHello)
        gave_up = (f"the client gave up waiting and {what}" if ender.event.side is _CLIENT
                   else f"the server {what}, never having acknowledged it")
        msg = (f"{done_words} never reached the server: {lost}; "
               f"{_seconds(ender.ts_ns - done.ts_ns)} after it {gave_up} (a path MTU black hole, a box "
               "that drops the client's TLS)")
        v.finding("request-not-received", "middlebox", _frame(done), msg, at=_at(done))
        v.set("aborted", "middlebox", "tls-handshake-failed", _frame(done), msg, done)
        return True
    if lost_only or ender.event.side is not _CLIENT:
        return False
    msg = (f"the server sent nothing for {_seconds(ender.ts_ns - done.ts_ns)} after {done_words}, which it had "
           f"acknowledged: the client gave up waiting and {what}")
    _unanswered(v, done, "no-answer", "server", "aborted", "tls-handshake-failed", "server-silent", msg)
    return True


def both_sides_seen(t: Transcript) -> bool:
    """A segment of each side is in the capture: when the conversation was decided
    (``Transcript.both_directions``), or since (each side's last segment time, known once it
    closed)."""
    return t.both_directions or (t.client_last_ns is not None and t.server_last_ns is not None)


def judged_without_payload(t: Transcript) -> bool:
    """Is a connection that carried no byte either way (and lost none in a hole) a conversation
    the verdict judges, not a connection attempt (the analyzer counts those)? It is when the
    server refused the client unheard: it accepted the connection (TCP tells where both
    streams start, from the SYN, the SYN-ACK or the handshake ACK, and both sides were
    captured) and then closed or reset it first, before the client's end and before the
    capture's (``greeting-refused``; Postfix and Exim send nothing, not even QUIT, when
    dropped so), except on an implicit-TLS port, where the server waits for the client's
    ClientHello and may close when none comes; or when it never greeted a client that waited
    long for it (``greeting_unanswered``). A scan's half-open connection ends with the
    scanner's reset, a flood's with none, a probe closes at once: attempts."""
    if (both_sides_seen(t) and not t.midstream and server_ended_first(t) is not None
            and t.server.port not in IMPLICIT_TLS_PORTS):
        return True
    return greeting_unanswered(t) is not None


def server_ended_first(t: Transcript) -> Item | None:
    """The server's own end (its FIN or RST) when it is the conversation's first end, before
    any of the client and before the capture's; None otherwise. With no greeting and no byte
    of the server, it is the refusal of ``greeting-refused`` (``_judge_plaintext``), and it
    makes a connection without payload one the verdict judges (``judged_without_payload``):
    both ask this one function, so that a connection is never judged a refusal by one and
    not by the other."""
    for it in t.items:
        ev = it.event
        if isinstance(ev, StreamEnded):
            return it if ev.side is _SERVER and not ev.truncated else None
    return None


def greeting_unanswered(t: Transcript) -> Item | None:
    """The client's giving up on a greeting that never came: its first command or its own end
    (FIN or RST) ``GREETING_WAIT_NS`` or more after the conversation's first frame (the
    client's first SYN; the capture keeps no time of the SYN-ACK; a command sooner, from a
    client that talks first, is no giving up when the client then goes on waiting), when TCP tells where both
    streams start (not ``midstream``: a SYN or SYN-ACK lost alone does not matter) and a
    segment of each side was captured (``both_sides_seen``), the port is not an
    implicit-TLS one, and nothing of the server came before it (no byte, no hole of its
    direction, no end of its own). None otherwise. (The analyzer asks it too: such a
    connection may carry no payload at all.)"""
    if not both_sides_seen(t) or t.midstream or t.server.port in IMPLICIT_TLS_PORTS:
        return None     # (on an implicit-TLS port the client speaks first: no greeting is due)
    for it in t.items:
        ev = it.event
        side = getattr(ev, "side", None)
        if side is _SERVER or isinstance(ev, StreamGap):
            return None
        if side is _CLIENT and (isinstance(ev, Command) or
                                (isinstance(ev, StreamEnded) and not ev.truncated)):
            if it.ts_ns - t.first_ts_ns >= GREETING_WAIT_NS:
                return it
            if isinstance(ev, StreamEnded):
                return None
    return None


def _unanswered(v: _Verdict, it: Item, code: str, side: str, outcome: str, reason: str, case: str,
                msg: str, evidence: Item | None = None) -> None:
    """The verdict of a side that gave up waiting: one finding (``code``) at ``it``, what went
    unanswered or undelivered, and the verdict, with its ``case``, resting on it, or on
    ``evidence`` when given (the act that ended the wait, when the finding names what went
    unanswered: the server's close after the answer its client never answered)."""
    v.finding(code, side, _frame(it), msg, at=_at(it))
    ev = it if evidence is None else evidence
    v.set(outcome, side, reason, _frame(ev), msg, ev)
    v.case = case


def _hello_lost(v: _Verdict, it: Item, why: str) -> None:
    """The ClientHello (at ``it``, or the hole where it begins) never reached the server: the
    path's (``hello-lost``), for the reason ``why`` gives."""
    _unanswered(v, it, "request-not-received", "middlebox", "aborted", "tls-handshake-failed",
                "hello-lost", f"the ClientHello never reached the server: {why} (a path MTU black "
                "hole, a box that drops the client's TLS)")


# (no generated __eq__, __hash__ or __repr__: nothing compares, hashes or prints one, only
# its fields are read; each generated method costs its compilation at every start)
@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Unreceived:
    """Bytes of one side that never reached the other whole (``_unreceived``): the receiver
    acknowledged only the first ``got`` of ``total``; ``resent``: what shows it is the sender's
    retransmission of them, no segment of the receiver having come back."""

    got: int
    total: int
    resent: bool = False
    #: the receiver's act that shows it (``_gave_up_waiting``): it ended the conversation while
    #: it waited for the bytes (its timeout reply, its close); None when a segment of its own a
    #: second or more after the sender's next one shows it
    gave_up: Item | None = None
    #: then how long after the bytes were due it acted (ns)
    waited: int = 0

    def covered(self, them: str = "it", their: str = "its") -> str:
        """What the receiver's acknowledgements did with the bytes, for a message ("never
        covered a byte of it", "covered only its first 512 of 1500 bytes")."""
        if not self.got:
            return f"never covered a byte of {them}"
        return f"covered only {their} first {self.got} of {self.total} bytes"


def _unreceived(f: _Facts, sender: Side, start: int, end: int, since_ns: int | None,
                resend: bool = False) -> _Unreceived | None:
    """Did the bytes ``start``..``end`` of ``sender``'s stream never reach the receiver whole,
    as the receiver's acknowledgements after ``since_ns`` show? TCP acknowledges every byte that
    arrives, whatever the application does with it (a server whose TLS or SMTP hangs still
    acknowledges), cumulatively: the receiver's highest acknowledgement in the capture
    (``client_acked`` / ``server_acked``) is what it had received by its last segment. So they did
    not arrive when that acknowledgement stays short of their end while a segment of the receiver
    was captured after ``since_ns`` (None: the caller knows one was, e.g. the receiver's own
    close after them), or, with ``resend``, when no such segment came at all while the client
    sent them again (a TCP retransmission: no acknowledgement had come back to it). None when
    the capture does not show it: their acknowledgement covers them (they arrived), or nothing
    of the receiver came after ``since_ns`` (nothing tells)."""
    t = f.t
    acked, last = ((t.client_acked, t.server_last_ns) if sender is _CLIENT
                   else (t.server_acked, t.client_last_ns))
    if acked is not None and acked >= end:
        return None
    if acked is not None and (since_ns is None or last is not None and last > since_ns):
        return _Unreceived(max(0, acked - start), end - start)
    if resend and (t.client_resent if sender is _CLIENT else t.server_resent) > start:
        return _Unreceived(0 if acked is None else max(0, acked - start), end - start, resent=True)
    return None


#: how long after the sender's segment that follows a hole a segment of the receiver must be
#: captured for its acknowledgement to show that the hole's bytes never arrived: sooner they may
#: still have been on their way (a segment sent after them can overtake them on the path). A
#: question about the path's reordering, not about how long a side waited (``WAITED_NS``), though
#: the value is the same
HOLE_PROOF_NS = 1_000_000_000
#: Could bytes missing from the capture have come from a slow peer? How long a receiver must have
#: waited for bytes due at once (STARTTLS after a valid offer, the ClientHello after the 220, the
#: server's answer to it), which the capture lost, before its giving up, with its
#: acknowledgements still before them, shows they never arrived (``_gave_up_waiting``): a sender
#: that is merely slow (a loaded TLS stack, a client that takes its time) sends within seconds, and
#: its bytes, lost by the capture, may have crossed the receiver's act; one silent for longer would
#: have been broken itself (RFC 5321 4.5.3.2 gives a peer minutes; Postfix and Exim wait 300 s).
#: An upper bound on a working peer's delay, whose bytes the capture does not show; not derived
#: from ``WAITED_NS`` (1 s), which asks only whether the side that acted had waited rather than
#: sent in one flight (the act and what it waited for both in the capture), a lower bound a round
#: trip sets. Every other "a second or more" of the verdict is that question, except
#: ``HOLE_PROOF_NS`` (the path's reordering).
SLOWEST_PEER_NS = 10_000_000_000
#: How long a client must have waited for the server's greeting, with nothing of the server since
#: it accepted the connection, for its giving up to show a server that never sent one rather than
#: an impatient client (``greeting_unanswered``). Servers delay the 220 on purpose by seconds
#: (Sendmail's greet_pause, an Exim connect ACL ``delay``) to catch clients that talk first, and
#: RFC 5321 4.5.3.2.1 asks a client to wait five minutes for it (Postfix's smtp_helo_timeout and
#: Exim's default are 300 s); Nodemailer's greetingTimeout, the shortest default among the
#: clients of docs/realclients.md, is 30 s. Less, and the client's own hurry may be why.
GREETING_WAIT_NS = 30_000_000_000
#: How long RFC 5321 4.5.3.2.7 asks a server to wait for the client's next command before its
#: command timeout ends the session (its 421, RFC 5321 3.8, and its close): at least 5 minutes
#: (Postfix's smtpd_timeout and Exim's default are 300 s; Postfix cuts it to 10 s under stress,
#: its own choice). A server that gave up sooner on a client that had sent nothing since its reply
#: did not wait as it should; a client that idled that long let the session time out.
COMMAND_WAIT_NS = 300_000_000_000


def _hole_unreceived(f: _Facts, hole: Item, due: tuple[int, int]) -> _Unreceived | None:
    """Did the bytes of ``hole`` (a ``StreamGap``: they are not in the capture) never reach the
    receiver? Wherever the capture was taken, bytes the receiver never acknowledged, while a
    segment of its own captured ``HOLE_PROOF_NS`` or more after the sender's segment that
    follows the hole (its duplicate ACK of a later segment, its close, anything carrying its
    ACK) stays short of their end, never reached it: the path dropped them (a capture that lost
    them too changes nothing: the receiver still never got them). So too, when the bytes are the
    sender's answer to what the receiver sent at ``due`` (its position and capture time: the
    reply that offered STARTTLS, the 220, the ClientHello, an SMTPS connection's start), when
    the receiver ended the conversation while it waited for them (``_gave_up_waiting``: its
    timeout reply, its close, ``SLOWEST_PEER_NS`` or more after ``due``) and its acknowledgements
    never covered them. None when the capture cannot tell: bytes cut by the snap length, a hole
    the receiver acknowledged (the capture's own loss), or no segment of the receiver that late
    (the capture ends first, or it is one-sided)."""
    ev = hole.event
    if ev.cut or ev.acked:
        return None
    lost = _unreceived(f, ev.side, ev.span.start, ev.span.end, _hole_sent_by(f, hole)[0] + HOLE_PROOF_NS)
    if lost is not None:
        return lost
    act = _gave_up_waiting(f, hole, *due)
    if act is None:
        return None
    # (the act is a segment of the receiver after the bytes were due: its highest acknowledgement)
    lost = _unreceived(f, ev.side, ev.span.start, ev.span.end, None)
    return None if lost is None else _Unreceived(lost.got, lost.total, gave_up=act,
                                                  waited=act.ts_ns - due[1])


def _gave_up_waiting(f: _Facts, hole: Item, due_pos: int, due_ns: int) -> Item | None:
    """The receiver of the bytes of ``hole`` ended the conversation while it waited for them.
    They are the sender's answer to what the receiver sent at position ``due_pos`` (captured at
    ``due_ns``), which a sender sends as soon as that arrives (STARTTLS after a valid offer, the
    ClientHello after the 220 or at an SMTPS connection's start, the server's answer to the
    ClientHello), and the last bytes it sent (nothing of it after them but its close: what shows
    the hole is its reaction to the receiver's act); the receiver's first act after ``due_pos``,
    ``SLOWEST_PEER_NS`` or more later, is its
    close, or a reply no command awaited before its close (RFC 5321 3.8: a server sends 421 on
    its own when its command or TLS timeout expires, or when it shuts down), and it sent nothing
    else: no command, no TLS. Its segments then carry its acknowledgement of what it got: one
    that still stays before the bytes shows they never arrived, so long after they were
    due (a reply to a later command would show they were read: TCP delivers in order). Returns
    the act (None: the receiver did not end the conversation, did something else, or acted
    sooner)."""
    sender = hole.event.side
    receiver = _SERVER if sender is _CLIENT else _CLIENT
    end = f.own_end(receiver)
    if end is None or f.pos(end) <= due_pos:
        return None
    # The hole must be the last of the sender's bytes (only its close, or nothing, after it): more
    # of its flight after the hole (a path MTU black hole's small last segment) shows when it sent
    # them, maybe late (a slow server, a client that took its time), and then only a segment of the
    # receiver a second after that one tells (``_hole_unreceived``).
    if any(getattr(it.event, "side", None) is sender
           and not isinstance(it.event, (StreamGap, StreamEnded, Anomaly))
           and getattr(it.event, "span", None) is not None and it.event.span.start >= hole.event.span.end
           for it in f.t.items):
        return None
    acts = []
    for it in f.t.items[due_pos + 1:]:
        ev = it.event
        if getattr(ev, "side", None) is not receiver or isinstance(ev, (StreamGap, Anomaly)):
            continue
        if isinstance(ev, Reply) and ev.answers is None and not ev.greeting:
            acts.append(it)
        elif isinstance(ev, PlaintextAfterStartTls) and ev.smtp_like or it is end:
            acts.append(it)
        else:
            return None         # a command, TLS, a reply the client read as an answer
    # (a reply no command read may be held until the client's next move: the first act by frame)
    act = min(acts, key=lambda it: (_frame(it) or 0, f.pos(it)))
    return act if act.ts_ns - due_ns >= SLOWEST_PEER_NS else None


def _hole_sent_by(f: _Facts, hole: Item) -> tuple[int, int | None]:
    """The capture time by which the bytes of ``hole`` had been sent, and its frame: that of the
    segment after it (the gap's own), or of the sender's next event after it (its next bytes,
    its FIN), whichever is earlier (a hole found only when the flow closed carries the time of
    the sender's last segment, which may be a pure ACK long after its FIN)."""
    side, when, frame = hole.event.side, hole.ts_ns, _frame(hole)
    for it in f.t.items[f.pos(hole) + 1:]:
        ev = it.event
        if getattr(ev, "side", None) is side and not isinstance(ev, StreamGap):
            if not (isinstance(ev, StreamEnded) and ev.truncated) and it.ts_ns and it.ts_ns < when:
                when, frame = it.ts_ns, _frame(it)
            break
    return when, frame


def _not_received(f: _Facts, asked: Item) -> str | None:
    """Whether the client's bytes of ``asked`` (its STARTTLS or its ClientHello) never reached
    the server, and how that shows (``_unreceived``: a segment of the server captured
    ``HOLE_PROOF_NS`` or more after them acknowledges the client's stream only up to before them
    or into them, or none came back that late while the client sent them again; sooner, the
    server's segment may have crossed them, and two taps merged with clocks apart may file it
    after them though the server sent it before). None when the capture does not show it: their
    acknowledgement covers them (they arrived: the server kept silent), or the server sent
    nothing after them and the client did not resend them (nothing tells)."""
    span = asked.event.span
    lost = _unreceived(f, _CLIENT, span.start, span.end, asked.ts_ns + HOLE_PROOF_NS, resend=True)
    if lost is None:
        return None
    if lost.resent:
        return ("the client sent it again (a TCP retransmission) and no segment of the "
                "server came back")
    if not lost.got:
        return f"the server's acknowledgements after it {lost.covered()}"
    return f"the server acknowledged only its first {lost.got} of {lost.total} bytes"


def _hole_words(f: _Facts, hole: Item, lost: _Unreceived, due: str) -> str:
    """How the capture shows that the bytes of ``hole`` never reached the receiver (``due``: what
    they answer, for a receiver that gave up waiting for them: "the EHLO reply")."""
    receiver = "server" if hole.event.side is _CLIENT else "client"
    if lost.gave_up is not None:
        act = lost.gave_up
        end = f.ends[Side(receiver)]
        how = "reset" if end.event.reset else "closed"
        ev = act.event
        if isinstance(ev, Reply):
            did = (f"sent {ev.code} (frame {_frame(act)}: {_show_line(ev.lines[0], 80)}) and {how} the "
                   f"connection (frame {_frame(end)})")
        elif isinstance(ev, PlaintextAfterStartTls):
            did = (f"sent {ev.preview.rstrip()[:80]!r} in plaintext (frame {_frame(act)}) and {how} the connection "
                   f"(frame {_frame(end)})")
        else:
            did = f"{how} the connection (frame {_frame(end)})"
        return (f"the {receiver}'s acknowledgements {lost.covered('them', 'their')}: "
                f"{_seconds(lost.waited)} after {due} the {receiver} gave up waiting "
                f"and {did}")
    last = f.t.server_last_ns if receiver == "server" else f.t.client_last_ns
    sent_by, frame = _hole_sent_by(f, hole)
    later = f" ({_seconds(last - sent_by)} after frame {frame})" if last is not None else ""
    return (f"the {receiver}'s acknowledgements up to its last segment{later} "
            f"{lost.covered('them', 'their')}")


def _answer_not_received(f: _Facts, v: _Verdict, ts: dict[str, Any], ender: Item, what: str) -> bool:
    """The client ended the handshake (``ender``: its close or reset; ``what`` says which) a
    second or more after the server's answer to its ClientHello, sending nothing of TLS since (its
    plaintext a second or more after the answer, PHPMailer's QUIT once it gave up, is none; sooner,
    the client gave up at once, before the answer could reach it, ``_spoke_clear_at_once``), and
    its acknowledgements never covered
    that answer (none of it, or only its first small segments: a path MTU black hole drops the
    full-size ones): the answer never arrived whole
    at the client (a path MTU black hole, a box that drops the server's TLS). The path, not the
    client and not the server, caused it. So too when the server ended it first (its handshake
    timeout, a second or more after its answer, the client silent since): a segment of the client
    captured a second or more after the answer's last record (its close, later) still stays
    before it, or the server sent it again (a TCP retransmission: no acknowledgement came back),
    so the client never had what it should have answered (``_lost_answer``). Returns True when it
    set that verdict."""
    sh = ts["server_hello"]
    if (sh is None or f.pos(sh) > f.pos(ender)
            or ender.ts_ns - sh.ts_ns < WAITED_NS
            or any(x.event.side is _CLIENT and f.pos(x) > f.pos(sh)
                   and (type(x.event) is not TlsNotTls or x.ts_ns - sh.ts_ns < WAITED_NS) for x in f.tls)
            or ender.event.side is _SERVER and not _silent(f, _CLIENT, sh, ender)):
        return False
    # the server's answer: its TLS records from the ServerHello to the client's end
    answer = [x for x in f.tls if x.event.side is _SERVER and f.pos(sh) <= f.pos(x) < f.pos(ender)]
    start, end = sh.event.span.start, max(x.event.span.end for x in answer)
    # (the client's end is a segment of its own after the answer: None, no other one needed; and
    # then no resend counts, the client's own segment telling what it had)
    since = None if ender.event.side is _CLIENT else max(x.ts_ns for x in answer) + HOLE_PROOF_NS

    def words(lost: _Unreceived) -> str:
        got = ("never acknowledged a byte of that answer" if not lost.got else
               f"acknowledged only {lost.got} of its {lost.total} bytes")
        if ender.event.side is _CLIENT:
            return (f"the server answered the ClientHello (frame {_frame(sh)}), but the client {got}: "
                    f"{_seconds(ender.ts_ns - sh.ts_ns)} later it {what}; the answer was lost on the path "
                    "(a path MTU black hole, a box that drops the server's TLS)")
        shown = ("the server sent it again (a TCP retransmission) and no segment of the client came back"
                 if lost.resent and not lost.got else
                 f"the server sent it again (a TCP retransmission), the client having {got}"
                 if lost.resent else f"the client {got}")
        return (f"the server answered the ClientHello (frame {_frame(sh)}), but {shown}: "
                f"{_seconds(ender.ts_ns - sh.ts_ns)} later the server {what}, never having had the client's "
                "next step; the answer was lost on the path (a path MTU black hole, a box that drops the "
                "server's TLS)")
    # (the client got all of it, or nothing tells: it ended the handshake itself)
    return _lost_answer(f, v, sh, start, end, since, "tls-handshake-failed", None, words)


def _ready_not_received(f: _Facts, v: _Verdict, after: int, ender: Item, what: str) -> bool:
    """The server's 2xx to STARTTLS (at position ``after``) never reached the client
    (``_reply_not_received``); the conversation ended (``ender``: the server's close after its TLS
    handshake timeout, the client's close, or its plaintext once it gave up waiting; ``what``
    says which) a second or more after it. The client never knew it could start TLS: the path
    dropped the answer (a box that drops it), not the client. Returns True when it set that
    verdict (``middlebox``, ``tls-not-started``, finding ``answer-not-received`` at the reply)."""
    ready = f.t.items[after] if after >= 0 else None
    if ready is None or not isinstance(ready.event, Reply) or ready.event.side is not _SERVER:
        return False
    return _reply_not_received(f, v, ready, ender, what, f"{ready.event.code} to STARTTLS", "tls-not-started",
                               "so the client never knew it could start TLS")


def _reply_not_received(f: _Facts, v: _Verdict, reply: Item, ender: Item, what: str, name: str, reason: str,
                        tail: str) -> bool:
    """The server's ``reply`` (``name`` says which: "220 to STARTTLS", "EHLO reply") never reached the
    client: a segment of the client captured a second or more after it acknowledges the server's
    stream only up to before it (or into it), or the server sent it again (a TCP retransmission)
    with no segment of the client after it; and the conversation ended (``ender``; ``what`` says
    how) a second or more after it. The path dropped the reply (a box that drops it), not the
    client that never answered it nor the server that gave up waiting (``_lost_answer``, with
    ``reason``; the finding's RFC TCP's acknowledgement: no path MTU black hole drops a reply
    this small); ``tail`` ends the detail. Returns True when it set that verdict."""
    if ender.ts_ns - reply.ts_ns < WAITED_NS:
        return False
    span = reply.event.span

    def words(lost: _Unreceived) -> str:
        shown = ("the server sent it again (a TCP retransmission) and no segment of the client came back"
                 if lost.resent and not lost.got else f"the client's acknowledgements after it {lost.covered()}")
        return (f"the server's {name} (frame {_frame(reply)}) never reached the client: "
                f"{shown}; {_seconds(ender.ts_ns - reply.ts_ns)} after it {what}: the answer was lost on the path "
                f"(a box that drops it), {tail}")
    return _lost_answer(f, v, reply, span.start, span.end, reply.ts_ns + HOLE_PROOF_NS, reason, "RFC 9293 3.4",
                        words)


def _lost_answer(f: _Facts, v: _Verdict, answer: Item, start: int, end: int, since_ns: int | None, reason: str,
                 rfc: str | None, words: Callable[[_Unreceived], str]) -> bool:
    """The one verdict of a server's answer that never reached the client (the answer to the
    ClientHello, the 220 to STARTTLS, the EHLO reply), at ``answer``, its bytes ``start``..``end``
    of the server's stream: ``_unreceived`` shows it from the client's acknowledgements after
    ``since_ns``, or, with ``since_ns``, from the server's retransmission with nothing of the client
    after (None: the caller knows a segment of the client came after them, its end). Then the path
    dropped it: ``middlebox``, ``reason``, case ``answer-lost``, finding ``answer-not-received`` at
    ``answer`` (its ``rfc``; None: the finding's own), ``words`` telling how from what
    ``_unreceived`` found. Returns True when it set that verdict."""
    lost = _unreceived(f, _SERVER, start, end, since_ns, resend=since_ns is not None)
    if lost is None:
        return False
    msg = words(lost)
    v.finding("answer-not-received", "middlebox", _frame(answer), msg, rfc=rfc, at=_at(answer))
    v.set("aborted", "middlebox", reason, _frame(answer), msg, answer)
    v.case = "answer-lost"
    return True


def _ehlo_reply_not_received(f: _Facts, v: _Verdict, ehlo_item: Item | None, ehlo_reply: Item | None) -> bool:
    """The server's whole EHLO reply never reached the client (``_reply_not_received``), and the
    conversation ended a second or more after it with nothing of the client between but its
    close or QUIT: the server's command timeout closing first (Postfix's smtpd_timeout, 300 s, or
    10 s under stress; with or without its 421, which the client never had either: TCP delivers in
    order), or the client giving up on the reply. Neither the server, which answered, nor the
    client, which never had the extension list, ended it: ``middlebox``, ``ehlo-rejected`` (an EHLO
    whose reply never came, as when none was sent), case ``answer-lost``. Returns True when it set
    that verdict."""
    if (ehlo_item is None or ehlo_reply is None or _unended(ehlo_reply) or ehlo_reply.event.side is not _SERVER
            or f.reply_to(ehlo_item) is not ehlo_reply or f.gap_between(f.pos(ehlo_item), 1 << 62) is not None):
        return False
    ender: Item | None = None
    for it in f.t.items[f.pos(ehlo_reply) + 1:]:
        ev = it.event
        side = getattr(ev, "side", None)
        if isinstance(ev, StreamEnded) and not ev.truncated and side is not None:
            ender = it
            break
        if side is _CLIENT and isinstance(ev, Command) and ev.verb == "QUIT":
            ender = it
            break
        if isinstance(ev, Anomaly):
            continue
        if side is _CLIENT or side is _SERVER and not (isinstance(ev, Reply) and ev.answers is None
                                                       and not ev.greeting):
            return False        # a command (the client had the reply), a reply that answers one
    if ender is None:
        return False
    ev = ender.event
    if isinstance(ev, Command):
        what = f"the client gave up waiting and sent QUIT (frame {_frame(ender)})"
    elif ev.side is _CLIENT:
        what = (f"the client gave up waiting and {'reset' if ev.reset else 'closed'} the connection "
                f"(frame {_frame(ender)})")
    else:
        # (its timeout reply, which the session may read only once the server's stream ended)
        said = next((it for it in f.t.items[f.pos(ehlo_reply) + 1:]
                     if isinstance(it.event, Reply) and it.event.side is _SERVER and it.event.answers is None
                     and (_frame(it) or 0) < (_frame(ender) or 0)), None)
        sent = "" if said is None else f"sent {said.event.code} (frame {_frame(said)}) and "
        what = (f"the server {sent}{'reset' if ev.reset else 'closed'} the connection (frame {_frame(ender)}), its "
                "command timeout, never having had a command")
    return _reply_not_received(f, v, ehlo_reply, ender, what, "EHLO reply", "ehlo-rejected",
                               "so the client never saw its extension list, nor STARTTLS in it")


# (no generated __eq__, __hash__ or __repr__: nothing compares, hashes or prints one, only
# its fields are read; each generated method costs its compilation at every start)
@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Forgery:
    """Why a side's reset was not sent by the side's stack (``_reset_forgery``)."""

    reset: ResetTtl
    side: Side
    why: str        #: the evidence, for the ``reset-forged`` finding
    detail: str     #: the same in short, for a verdict's detail


def _reset_forgery(f: _Facts, end: Item) -> _Forgery | None:
    """The evidence that ``end``, a side's reset, was not sent by the side's stack, or None:

    - its TTL (hop limit) is known and lies more than ``RESET_TTL_SLACK`` outside the range of
      the side's own segments after the handshake (at least ``RESET_TTL_SEGMENTS`` of them;
      ``tcp.halfstream.reset_ttl_foreign``, the rule by which the TCP layer reads no bytes
      sent in such a reset, ``HalfStream.reset_past``): a
      host sends every packet of a connection with one initial TTL over one path, so they arrive
      with one value, and a box elsewhere on the path (an IPS or DPI box, a firewall) that forges
      a reset with the side's address gives it its own (Weaver, Sommer, Paxson, NDSS 2009);
    - or the side went on sending after it (``ResetTtl.went_on``, the TCP layer's
      ``SentAfterReset``): a stack that resets a connection sends nothing more on it, while the
      real end behind a forged reset goes on (its reply or retransmission racing the reset, its
      acknowledgements, its FIN), also when the box copied the side's TTL."""
    if not (isinstance(end.event, StreamEnded) and end.event.reset):
        return None
    side = end.event.side
    r = f.t.resets.get(side)
    if r is None:
        return None
    word = "hop limit" if ":" in f.t.client.ip else "TTL"
    ttl_msg = ttl_detail = ""
    if r.side_ttl is not None:
        lo, hi = r.side_ttl
        if reset_ttl_foreign(r.ttl, lo, hi, r.segments):
            own = f"{word} {lo}" if lo == hi else f"{word}s {lo} to {hi}"
            assert r.frames is not None
            first, last = r.frames
            where = f"frame {first}" if first == last else f"frames {first} to {last}"
            ttl_msg = (f"came with {word} {r.ttl}, while the {side}'s {r.segments} segments after the "
                       f"handshake came with {own} ({where})")
            ttl_detail = f"its {word} {r.ttl} is not the {own} of the {side}'s own segments"
    went = r.went_on
    went_msg = went_detail = ""
    if went is not None:
        what_went = {"data": "bytes", "FIN": "FIN", "ACK": "acknowledgement"}.get(went.kind, went.kind)
        more = ("" if went.segments == 1 else
                f", {went.segments} segments to frame {went.last}")
        went_msg = (f"the {side} went on sending after it (its {what_went} in frame {went.first}{more}, "
                    "at the reset's sequence number or beyond), which a stack that reset the connection "
                    "does not do")
        went_detail = f"the {side} went on sending after it (frame {went.first})"
    if not ttl_msg and not went_msg:
        return None
    if ttl_msg and went_msg:
        why, detail = f"{ttl_msg}, and {went_msg}", f"{ttl_detail}, and {went_detail}"
    elif ttl_msg:
        why, detail = ttl_msg, ttl_detail
    else:
        why, detail = went_msg, went_detail
    return _Forgery(r, side, why, detail)


def _forged_finding(v: _Verdict, end: Item, forgery: _Forgery, tail: str = "") -> None:
    """The ``reset-forged`` finding at the reset ``forgery`` is about (``end``); ``tail``: more
    of what it means for the verdict."""
    r, side = forgery.reset, forgery.side
    v.finding("reset-forged", "middlebox", r.frame,
              f"the reset (frame {r.frame}) carries the {side}'s address but {forgery.why}: the {side}'s "
              f"stack did not send it; a box on the path (a firewall, IPS or DPI box) forged it{tail}",
              at=_at(end))


def _forged_reset(f: _Facts, v: _Verdict) -> None:
    """The verdict rests on a side's reset (``_Verdict.by_reset``) that the side's stack did not
    send (``_reset_forgery``): the box is blamed for what the reset ended (``reset-forged``, case
    ``reset-forged`` where the reason has it); the reason and the outcome stay."""
    if v.reset is None:
        return
    end, what = v.reset
    forgery = _reset_forgery(f, end)
    if forgery is None:
        return
    r, side = forgery.reset, forgery.side
    _forged_finding(v, end, forgery)
    v.caused_by = "middlebox"
    v.evidence, v.evidence_at = r.frame, _at(end)
    v.detail = (f"a box on the path reset the connection {what}: the reset (frame {r.frame}) carries "
                f"the {side}'s address, but {forgery.detail}")
    if (v.reason, "reset-forged") in REASON_CASES:
        v.case = "reset-forged"


#: the size of one TLS alert record (5 bytes of header, 2 of alert): a hole of the server's no
#: longer than this, where its answer to a ClientHello goes, may hold a refusal rather than the
#: ServerHello
_ALERT_RECORD = 7


def _data_between(f: _Facts, side: Side, lo: int, hi: int) -> bool:
    """Did ``side`` send anything captured (a line, a TLS record, other bytes) strictly between
    two positions? Its holes and its end do not count."""
    return any(getattr(it.event, "side", None) is side
               and not isinstance(it.event, (StreamGap, StreamEnded))
               for it in f.t.items[lo + 1:hi])


def _hello_hole_lost(f: _Facts, v: _Verdict, ts: dict[str, Any], after: int) -> bool:
    """After the 220 to STARTTLS (at position ``after``) the client's next bytes are its
    ClientHello: a hole of the client's direction right there (nothing of the client captured
    between the 220 and it) holds it, or its first part. When the server never acknowledged
    those bytes (``_hole_unreceived``), the ClientHello never reached the server, wherever the
    capture was taken: the path dropped it (case ``hello-lost``), whoever closed afterwards.
    (A client that sent something else than TLS there is not told apart: its bytes are not in
    the capture; nor did they arrive.) Returns True when it set that verdict. Only after a
    STARTTLS (``_handshake_failure`` calls it when not ``implicit``), so ``after`` is a position,
    never the -1 of an SMTPS connection (``_smtps_hello_hole_lost``)."""
    assert after >= 0
    hole = f.gap_between(after, 1 << 60, _CLIENT)
    if (hole is None or ts["server_hello"] is not None
            or _data_between(f, _CLIENT, after, f.pos(hole))):
        return False
    lost = _hole_unreceived(f, hole, (after, f.t.items[after].ts_ns))
    if lost is None:
        return False
    _hello_lost(v, hole, f"the client's {hole.event.length} bytes after the 220, where its ClientHello "
                         f"begins, are missing from the capture before frame {_frame(hole)}, and "
                         f"{_hole_words(f, hole, lost, 'the 220')}")
    return True


def _answer_hole_lost(f: _Facts, v: _Verdict, ts: dict[str, Any]) -> bool:
    """The server's next bytes after the client's ClientHello are its answer: a hole of the
    server's direction right there (nothing of the server captured between the ClientHello and
    it), longer than one alert record (a refusal alone), holds its ServerHello. When the client
    never acknowledged those bytes (``_hole_unreceived``), sent nothing of TLS after its
    ClientHello (nor bytes the capture lost before its end: its QUIT at once, or a record of its
    TLS, cannot be told from what it sent later; ``quitcross-answer-lost-quit-at-once.pcap``
    without its answer and its QUIT) and closed or reset a second or more after it, the answer
    never reached the
    client, wherever the capture was taken: the path dropped it (case ``answer-lost``). So too for
    the rest of that answer when its first records arrived (the ServerHello in a small segment of
    its own, the full-size ones after it black-holed: the client's side of
    ``pathhole-answer-partly-server-closes.pcap``): a hole right after them, nothing of the server
    captured between the ClientHello and the hole but those records, and none after it.
    Returns True when it set that verdict."""
    ch, end, sh = ts["client_hello"], f.own_end(_CLIENT), ts["server_hello"]
    if ch is None or end is None:
        return False
    hole = f.gap_between(f.pos(ch), 1 << 60, _SERVER)
    if (hole is None or hole.event.length <= _ALERT_RECORD or end.ts_ns - ch.ts_ns < WAITED_NS
            or any(x.event.side is _CLIENT and f.pos(x) > f.pos(ch) for x in f.tls)
            or f.gap_between(f.pos(ch), f.pos(end), _CLIENT) is not None):
        return False
    got: list[Item] = []
    if sh is not None:
        # (the answer's first records before the hole, their bytes right up to it; none after it)
        got = [x for x in f.tls if x.event.side is _SERVER and f.pos(x) > f.pos(ch)]
        if (not got or got[0] is not sh or f.pos(got[-1]) > f.pos(hole)
                or got[-1].event.span.end != hole.event.span.start
                or any(getattr(it.event, "side", None) is _SERVER and it not in got
                       and not isinstance(it.event, (StreamGap, StreamEnded, Anomaly))
                       for it in f.t.items[f.pos(ch) + 1:f.pos(hole)])):
            return False
    elif _data_between(f, _SERVER, f.pos(ch), f.pos(hole)):
        return False
    lost = _hole_unreceived(f, hole, (f.pos(ch), ch.ts_ns))
    if lost is None:
        return False
    how = "reset" if end.event.reset else "closed"
    then = ("" if lost.gave_up is not None else
            f"; {_seconds(end.ts_ns - ch.ts_ns)} after its ClientHello the client {how} the connection "
            f"(frame {_frame(end)})")
    what = ("the server's answer to the ClientHello never reached the client: the server's "
            f"{hole.event.length} bytes after it" if not got else
            "the server's answer to the ClientHello never reached the client whole: its first "
            f"{hole.event.span.start - sh.event.span.start} bytes (the ServerHello, frame {_frame(sh)}) did, but "
            f"the server's {hole.event.length} bytes after them")
    msg = (f"{what} are missing from the capture before frame {_frame(hole)}, and "
           f"{_hole_words(f, hole, lost, 'its ClientHello')}{then} (a path MTU black hole, a box that drops the "
           "server's TLS)")
    _unanswered(v, hole, "answer-not-received", "middlebox", "aborted", "tls-handshake-failed",
                "answer-lost", msg)
    return True


#: the ports of implicit TLS, where the client speaks first, with its ClientHello, and the server
#: waits for it (RFC 8314 3.3: 465, SMTP submission over TLS; MTAs relay there too)
IMPLICIT_TLS_PORTS = frozenset({465})
#: the ports where SMTP starts in plaintext and TLS comes with STARTTLS (25: relay, 587:
#: submission, RFC 6409; 2525: the usual alternative to 25): a plaintext greeting is right there
STARTTLS_PORTS = frozenset({25, 587, 2525})


def _smtps_hello_hole_lost(f: _Facts, v: _Verdict) -> bool:
    """On an implicit-TLS port (``IMPLICIT_TLS_PORTS``) the client's first bytes are its
    ClientHello, and the server sends nothing before it (a plaintext SMTP server greets first,
    RFC 5321 3.1; an SMTPS server waits). A hole at the very start of the client's stream, in a
    capture that holds the connection's start, with no byte of the server (and none lost), holds
    that ClientHello, or its first part. When the server never acknowledged those bytes
    (``_hole_unreceived``: a segment of the server a second or more after the client's next one,
    or the server's close ``SLOWEST_PEER_NS`` or more after the connection's start, its handshake timeout,
    still acknowledging nothing of them), the ClientHello never reached the server, wherever the
    capture was taken: the path dropped it (``tls-handshake-failed``, case ``hello-lost``), not
    the server, whose silence and close are what an SMTPS server does without one. Returns True
    when it set that verdict."""
    t = f.t
    if (f.implicit is not None or t.midstream or t.server.port not in IMPLICIT_TLS_PORTS
            or t.server_bytes or f.greeting is not None or f.commands):
        return False
    hole = f.gap_between(-1, 1 << 60, _CLIENT)
    if (hole is None or hole.event.span.start != 0 or f.gap_between(-1, 1 << 60, _SERVER) is not None
            or _data_between(f, _CLIENT, -1, f.pos(hole))):
        return False
    lost = _hole_unreceived(f, hole, (-1, t.first_ts_ns))
    if lost is None:
        return False
    _hello_lost(v, hole, f"the client's first {hole.event.length} bytes on the SMTPS port "
                         f"{t.server.port}, where its ClientHello begins (TLS from the first byte: the "
                         f"server sends nothing before it), are missing from the capture before frame "
                         f"{_frame(hole)}, and {_hole_words(f, hole, lost, 'the connection opened')}")
    _attach_tls(v, _tls_summary(f, 0))
    return True


#: the client's STARTTLS command as it goes on the wire
_STARTTLS_LEN = len(b"STARTTLS\r\n")


def _starttls_hole_lost(f: _Facts, v: _Verdict, offered: str, ehlo_reply: Item | None,
                        clear: Item | None) -> Item | None:
    """A client that saw STARTTLS validly offered sends it as its next command: a hole of the
    client's direction right after the EHLO reply (no command of the client captured between),
    of exactly the length of ``STARTTLS<CRLF>``, holds it. When the server never acknowledged
    it (``_hole_unreceived``), STARTTLS never reached the server: the path dropped it (case
    ``command-lost``). That shows in two ways. The server sent nothing after the EHLO reply and
    the client made its next move (a command, its close or reset) a second or more after the
    EHLO reply (it had sent STARTTLS when the reply came, and gave up waiting), a segment of the
    server a second or more after the client's still before the hole. Or the server gave up
    waiting first (``_gave_up_waiting``): its command timeout's 421 (Postfix's ``timeout
    exceeded``, Exim's ``SMTP command timeout``), or its close, ``SLOWEST_PEER_NS`` or more after the EHLO
    reply, acknowledging nothing of the hole: that reply answers no command, the client's next
    move answers it. A reply to anything sent after the hole would show its bytes were read.
    When the server did acknowledge the hole (only the capture lost it) and answered it with
    421 and its close, the server ended the session itself (``_starttls_hole_answered``).
    Returns the hole when it set a verdict."""
    if offered != "valid" or ehlo_reply is None:
        return None
    at = f.pos(ehlo_reply)
    hole = f.gap_between(at, 1 << 60, _CLIENT)
    if (hole is None or hole.event.length != _STARTTLS_LEN
            or _data_between(f, _CLIENT, at, f.pos(hole))
            or f.gap_between(at, 1 << 60, _SERVER) is not None
            or f.gap_between(at, f.pos(hole)) is not None):
        return None
    step = _next_client_step(f, hole)
    if step is None:
        return None
    if hole.event.acked:
        return _starttls_hole_answered(f, v, hole, ehlo_reply, clear)
    if step.ts_ns - ehlo_reply.ts_ns < WAITED_NS:
        return None
    lost = _hole_unreceived(f, hole, (at, ehlo_reply.ts_ns))
    if lost is None or lost.gave_up is None and _data_between(f, _SERVER, at, 1 << 60):
        return None     # (server bytes after the EHLO reply: only its giving up tells)
    ev = step.event
    mail_after = clear is not None and f.pos(clear) >= f.pos(step)
    if isinstance(ev, Command):
        what = (f"went on in plaintext on the same connection ({_verb(ev)}, frame {_frame(step)})"
                if mail_after else f"sent {_verb(ev)} (frame {_frame(step)})")
    else:
        what = f"{'reset' if ev.reset else 'closed'} the connection (frame {_frame(step)})"
    then = ("" if lost.gave_up is not None else
            f"; {_seconds(step.ts_ns - ehlo_reply.ts_ns)} after the EHLO reply the client gave up waiting "
            f"and {what}")
    msg = (f"STARTTLS never reached the server: the client's next {hole.event.length} bytes after "
           f"the EHLO reply that offered it (STARTTLS and its CRLF) are missing from the capture "
           f"before frame {_frame(hole)}, and {_hole_words(f, hole, lost, 'the EHLO reply')}{then} (a box "
           "that drops the command)")
    _unanswered(v, hole, "request-not-received", "middlebox", "plaintext" if mail_after else "aborted",
                "starttls-refused", "command-lost", msg)
    return hole


def _starttls_hole_answered(f: _Facts, v: _Verdict, hole: Item, ehlo_reply: Item,
                            clear: Item | None) -> Item | None:
    """The counterpart of ``_starttls_hole_lost``: the server acknowledged the hole where STARTTLS
    goes (only the capture lost it), and its only bytes after the EHLO reply are a 421 that
    answers the command lost in the hole (the session's pairing), then it closed or reset the
    connection, with no mail before: the command reached the server, which answered it by
    ending the session (RFC 5321 3.8: 421, closing, whatever the command was; another code
    would depend on what the hole held, a STARTTLS a box masked for one): ``starttls-refused``,
    the server's."""
    at = f.pos(ehlo_reply)
    end = f.own_end(_SERVER)
    if end is None or clear is not None:
        return None
    replies = [it for it in f.t.items[at + 1:]
               if getattr(it.event, "side", None) is _SERVER
               and not isinstance(it.event, (StreamGap, StreamEnded, Anomaly))]
    if len(replies) != 1:
        return None
    reply = replies[0]
    ev = reply.event
    if not isinstance(ev, Reply) or not ev.lost_command or ev.code != 421:
        return None
    then = (f"; then {_server_end_words(f, end)}" if _reset_forgery(f, end) is not None
            else f" and {'reset' if end.event.reset else 'closed'} the connection (frame {_frame(end)})")
    v.set("aborted", "server", "starttls-refused", _frame(reply),
          f"the client's next {hole.event.length} bytes after the EHLO reply that offered STARTTLS (its "
          f"length, with its CRLF) are missing from the capture before frame {_frame(hole)}, but the "
          f"server acknowledged them: they reached it; {_seconds(reply.ts_ns - ehlo_reply.ts_ns)} after the "
          f"EHLO reply it answered {ev.code} (frame {_frame(reply)}: {_show_line(ev.lines[0], 80)}){then}",
          reply)
    _left_after_refusal(f, v, end, reply, asked_ns=ehlo_reply.ts_ns)
    v.extra["starttls_reply_code"] = ev.code
    return hole


def _server_end_words(f: _Facts, end: Item) -> str:
    """The server's end after its refusal of STARTTLS, as a clause of a verdict's detail: "it
    reset the connection", "it closed the connection", or, for a reset its stack did not send
    (``_reset_forgery``), that a box's reset ended it, with the reset's frame and the evidence
    (never that the server reset it)."""
    forgery = _reset_forgery(f, end)
    if forgery is not None:
        return (f"a reset with the server's address that the server's stack did not send ended the "
                f"connection (frame {forgery.reset.frame}: {forgery.detail})")
    return f"it {'reset' if end.event.reset else 'closed'} the connection"


def _left_after_refusal(f: _Facts, v: _Verdict, end: Item | None, reply: Item, *,
                        asked_ns: int | None = None) -> None:
    """The refusal of STARTTLS (``reply``, what the client read as its answer: the server's own
    refusal, a stray line, a 421 after an answered hole, or a masked command's refusal) was
    followed by the server's end, ``end`` (``_server_left``, or ``_Facts.own_end`` after an
    answered hole; None: the verdict does not rest on one). The refusal alone ruled TLS out: a
    client whose STARTTLS got anything but 220 cannot start TLS on this connection (RFC 3207 4:
    it may go on without TLS or leave), whatever comes after it, and after a 421 the server is
    closing the channel anyway (RFC 5321 3.8). So the verdict rests on the refusal, never on
    that end (no ``_Verdict.by_reset``): a reset there that the server's stack did not send
    (``_reset_forgery``) is reported, a ``reset-forged`` finding at it, but blames no one for
    STARTTLS (a box that forged the refusal too is caught by the refusal's own TTL,
    ``_injected_refusal``); the masked paths go through here too, for that finding.

    ``asked_ns``: the refusal is the server's own answer to the command sent then (not a stray
    line the client read as one, whose case is ``stray-answer``). When it came within
    ``SLOWEST_PEER_NS`` of the command (not a command timeout's 421) and the server's own end
    (not a forged reset) right after it (within ``WAITED_NS``, nothing of the server between:
    not the close of a timeout after the client went idle), the server refused and closed at
    once: case ``server-closed``, whose finding ``_server_closed`` writes."""
    if end is None:
        return
    ev = reply.event
    forgery = _reset_forgery(f, end)
    if forgery is not None:
        _forged_finding(v, end, forgery,
                        f"; it came after the {ev.code} the client read as the answer to STARTTLS (frame "
                        f"{_frame(reply)}), which had already ruled TLS out on this connection: the "
                        "verdict rests on that answer, not on the reset")
        return
    if (asked_ns is not None and reply.ts_ns - asked_ns < SLOWEST_PEER_NS
            and end.ts_ns - reply.ts_ns < WAITED_NS
            and not _data_between(f, _SERVER, f.pos(reply), f.pos(end))):
        v.case = "server-closed"
        v.closed = (reply, end)


def _server_closed(v: _Verdict) -> None:
    """Case ``server-closed`` (``_left_after_refusal``: the server's own end, not a forged
    reset): the ``server-closed`` finding at the server's FIN or RST. A 421 announces that
    close (RFC 5321 3.8: the server is closing the transmission channel); after another code
    RFC 5321 3.8 does not let a server close (only after its 221 to QUIT, a 421 or a timeout),
    and the finding names that section as broken."""
    if v.case != "server-closed" or v.closed is None:
        return
    reply, end = v.closed
    code = reply.event.code
    how = "reset" if end.event.reset else "closed"
    # (a 421 sent on its own, which the client's STARTTLS crossed, answered no STARTTLS)
    lead = (f"the server {how} the connection (frame {_frame(end)}) after its {code} (frame {_frame(reply)}), "
            "sent on its own" if reply.event.stray else
            f"the server {how} the connection (frame {_frame(end)}) after its {code} to STARTTLS "
            f"(frame {_frame(reply)})")
    if code == 421:
        msg = (f"{lead}, as a 421 announces (RFC 5321 3.8: the server is closing the transmission "
               "channel): the client can go on only on a new connection")
        rfc = ""
    else:
        msg = (f"{lead}, a reply that announces no close (RFC 5321 3.8 lets a server close the "
               "connection only after its 221 to QUIT, a 421 or a timeout): the client can go on only "
               "on a new connection")
        rfc = FINDINGS["server-closed"].rfc
    v.finding("server-closed", "server", _frame(end), msg, rfc=rfc, at=_at(end))


def _seconds(ns: int) -> str:
    return f"{ns / 1e9:.1f} s"


def _too_late(f: _Facts, asked: Item, reply: Item) -> bool:
    """The answer to ``asked`` (STARTTLS) came only after the client had given up waiting for it:
    its next command or its close, a second or more after ``asked`` with nothing of the server
    between, came first. The client read no answer (the one that came answers nothing it still
    waited for: a 220 then is no invitation to TLS it took up), as a server's TLS step after the
    client's close counts for nothing."""
    step = _next_client_step(f, asked)
    return (step is not None and _after(f, reply, step) and step.ts_ns - asked.ts_ns >= WAITED_NS
            and _server_silent(f, asked, step))


def _after(f: _Facts, it: Item, end: Item) -> bool:
    """``it`` came after ``end``, in the capture's order and by its clock both (a merged capture
    may file a frame before one it came after: then which came first is not known, and the
    rules that ask count ``it`` as it stands)."""
    return f.pos(it) > f.pos(end) and it.ts_ns > end.ts_ns


def _next_client_step(f: _Facts, after: Item) -> Item | None:
    """What the client did first after ``after``: a command, or its close or reset."""
    pos = f.pos(after)
    cmd = next((it for it in f.commands if f.pos(it) > pos), None)
    end = f.own_end(_CLIENT)
    if end is None or f.pos(end) < pos:
        end = None
    steps = [x for x in (cmd, end) if x is not None]
    return min(steps, key=f.pos) if steps else None


def _starttls_unanswered(f: _Facts, v: _Verdict, st_item: Item, step: Item, clear: Item | None) -> None:
    """STARTTLS got no answer and the client made the next move (a command, its close or its
    reset) with nothing of the server in between. After ``WAITED_NS`` or more that is a client
    that gave up waiting: the server (or a firewall or DPI box in front of it that swallows
    STARTTLS) caused it. Sooner, the client did not wait for an answer at all."""
    ev = step.event
    if isinstance(ev, Command):
        what = (f"went on in plaintext on the same connection ({_verb(ev)}, frame {_frame(step)})"
                if clear is not None and f.pos(clear) >= f.pos(step) else
                f"sent {_verb(ev)} (frame {_frame(step)})")
    else:
        what = f"{'reset' if ev.reset else 'closed'} the connection (frame {_frame(step)})"
    waited = step.ts_ns - st_item.ts_ns
    if waited < WAITED_NS:
        v.set("aborted", "none", "no-mail-transaction", None,
              f"{waited / 1e6:.0f} ms after STARTTLS the client {what}, without waiting for the "
              "answer; the conversation ended without a mail transaction")
        v.by_reset(step, "right after STARTTLS")
        return
    mail_after = clear is not None and f.pos(clear) > f.pos(st_item)
    lost = _not_received(f, st_item)
    if lost is not None:
        msg = (f"STARTTLS never reached the server: {lost}; {_seconds(waited)} after it the "
               f"client gave up waiting and {what} (a box that drops the command)")
        _unanswered(v, st_item, "request-not-received", "middlebox",
                    "plaintext" if mail_after else "aborted", "starttls-refused", "command-lost", msg)
        return
    msg = (f"the server sent nothing for {_seconds(waited)} after STARTTLS: the client gave up "
           f"waiting and {what}")
    _unanswered(v, st_item, "no-answer", "server", "plaintext" if mail_after else "aborted",
                "starttls-refused", "no-answer", msg)


#: TLS 1.2: RFC 8996 deprecates every version before it (TLS 1.0 and 1.1, SSL 3.0 before them)
_TLS12 = 0x0303
_PROTOCOL_VERSION = 70      #: the alert of a server that shares no version with the offer (RFC 8446 6.2)
#: the smallest finite-field Diffie-Hellman group current TLS libraries accept by default
#: (OpenSSL 3 at security level 2, as Debian 12 and RHEL 9 ship it; RFC 7919's smallest group)
_MIN_DH_BITS = 2048
#: alerts about the certificate (bad_certificate .. certificate_unknown, unknown_ca,
#: certificate_required): a refusal of the certificate, whatever the version
_CERTIFICATE_ALERTS = frozenset({42, 43, 44, 45, 46, 48, 116})


def _outdated_tls(f: _Facts, v: _Verdict, ts: dict[str, Any], after: int, ender: Item) -> bool:
    """A handshake ended (by ``ender``: a fatal alert, a close or a reset) on TLS that current
    libraries refuse by default: the side stuck on it caused the failure, not the side that
    ended it.

    - The server chose TLS 1.1 or older (RFC 8996 deprecates them) for a client that offered
      TLS 1.2 or later, or sent a Diffie-Hellman group under 2048 bits, and the client ended the
      handshake there (before its own next flight, and not with a certificate alert): OpenSSL 3
      at its default security level refuses both, so the server is at fault.
    - The client offered nothing newer than TLS 1.1 and the server ended the handshake before
      choosing (a protocol_version alert, or a close): the client is at fault.
    - The client's ``supported_versions`` left TLS 1.2 out (TLS 1.3 alone) and the server refused
      it with a fatal protocol_version before choosing: the client is at fault too, as RFC 9325
      3.1.1 requires every implementation to support TLS 1.2 and only recommends TLS 1.3 (a server
      whose newest version is TLS 1.2 is compliant; what older versions it has the capture cannot
      tell). Any other alert, or a close, is the server's own reason (no shared cipher, an
      internal error, its load): this rule does not apply.
    - A server that refuses a ClientHello offering TLS 1.2 or later stays at fault, as the
      alert says (this rule does not apply).

    Returns True when it set the verdict (incomplete when a hole hides the cause)."""
    ch, sh = ts["client_hello"], ts["server_hello"]
    ev = ender.event
    if isinstance(ev, TlsAlert) and (ev.encrypted or ev.description in _CERTIFICATE_ALERTS):
        return False
    offered = ch.event.max_version if ch is not None and ch.event.error is None else None
    if sh is not None and ev.side is _CLIENT:
        ccs = ts["ccs"][_CLIENT]
        if sh.event.error is not None or (ccs is not None and f.pos(ccs) < f.pos(ender)):
            return False
        chosen = sh.event.selected_version
        kx = ts["key_exchange"]
        if 0 < chosen < _TLS12 and not (offered is not None and offered < _TLS12):
            offer = f", although it offered up to {version_name(offered)}" if offered is not None else ""
            item, case = sh, "server-old-tls"
            msg = (f"the server chose {version_name(chosen)}, which RFC 8996 deprecates, and the "
                   f"client refused it{offer}")
            v.finding("tls-version-mismatch", "server", _frame(item), msg, at=_at(item))
        elif kx is not None and 0 < kx.event.dh_bits < _MIN_DH_BITS:
            item, case = kx, "server-weak-dh"
            msg = (f"the server's Diffie-Hellman group has {kx.event.dh_bits} bits, under the "
                   f"{_MIN_DH_BITS} current TLS libraries accept by default, and the client ended "
                   "the handshake")
            v.finding("tls-weak-dh", "server", _frame(item), msg, at=_at(item))
        else:
            return False
        if not _hole_hides(f, v, after, ender):
            v.set("aborted", "server", "tls-handshake-failed", _frame(item), msg, item)
            v.case = case
        return True
    if sh is None and ev.side is _SERVER and offered is not None and 0 < offered < _TLS12:
        msg = (f"the client offered nothing newer than {version_name(offered)}, which RFC 8996 "
               "deprecates, and the server refused it")
        case = "client-old-tls"
    elif (sh is None and ev.side is _SERVER and offered is not None
          and isinstance(ev, TlsAlert) and ev.description == _PROTOCOL_VERSION
          and ch.event.supported_versions and min(ch.event.supported_versions) > _TLS12):
        names = ", ".join(version_name(x) for x in sorted(ch.event.supported_versions))
        msg = (f"the client offered only {names}, leaving out TLS 1.2, which RFC 9325 requires every "
               "implementation to support, and the server refused it")
        case = "client-tls13-only"
    else:
        return False
    v.finding("tls-version-mismatch", "client", _frame(ch), msg, at=_at(ch))
    if not _hole_hides(f, v, after, ender):
        v.set("aborted", "client", "tls-handshake-failed", _frame(ch), msg, ch)
        v.case = case
    return True


def _check_certificates(f: _Facts, v: _Verdict, ts: dict[str, Any], names: list[str]) -> None:
    it = ts["certificate"]
    if it is None or not it.event.certificates:
        return
    leaf = it.event.certificates[0]
    when = it.ts_ns or f.t.first_ts_ns
    info: dict[str, Any] = {"subject": leaf.subject, "issuer": leaf.issuer, "sans": list(leaf.sans),
                            "not_before": leaf.not_before, "not_after": leaf.not_after,
                            "self_signed": leaf.self_signed, "sha256": leaf.sha256}
    problems = []
    if leaf.error:
        info["error"] = leaf.error
    else:
        if cert_expired(leaf, when):
            problems.append(("certificate-expired", f"the server's certificate expired on {leaf.not_after}"))
        host = next((n for n in names if n and "." in n), None)
        if host and not cert_matches_host(leaf, host):
            problems.append(("certificate-host-mismatch",
                             f"the server's certificate does not name {host} (it names "
                             f"{', '.join(leaf.sans[:3]) or leaf.common_name})"))
        if leaf.self_signed:
            problems.append(("certificate-not-trusted", "the server's certificate is self-signed"))
    info["problems"] = [p for p, _ in problems]
    v.extra["certificate"] = info
    for code, msg in problems:
        v.finding("tls-certificate", "server", _frame(it), msg + f" ({code})", at=_at(it))
        v.extra.setdefault("tlsrpt_result", code)


def _cut_finding(v: _Verdict, t: Transcript, cut: list[Item]) -> None:
    """One finding for the frames of this conversation the snap length cut, at the first."""
    frames: list[int] = []
    for it in cut:
        fr = _frame(it)
        if fr is not None and fr not in frames:
            frames.append(fr)
    by_side = {side: sum(it.event.length for it in cut if it.event.side is side)
               for side in (_CLIENT, _SERVER)}
    lost = " and ".join(f"{n} byte(s) of the {side} direction" for side, n in by_side.items() if n)
    keeps = (f"the capture keeps only the first {t.snaplen} bytes of each frame (snap length "
             f"{t.snaplen})" if t.snaplen else "the capture's snap length cut frames short")
    if len(frames) == 1:
        which = f"frame {frames[0]} was cut"
    else:
        which = ("frames " + ", ".join(str(x) for x in frames[:6])
                 + (f" and {len(frames) - 6} more" if len(frames) > 6 else "") + " were cut")
    v.finding("capture-truncated", "capture", frames[0] if frames else None,
              f"{keeps}: {which}; {lost} were on the wire but are not in the capture "
              "(capture again with `tcpdump -s 0`)")


def judge(t: Transcript) -> dict[str, Any]:
    """The verdict for one conversation, as the output contract's dict."""
    f = _Facts(t)
    v = _Verdict()
    greeting_ev: Reply | None = f.greeting.event if f.greeting else None

    # ---- capture quality findings
    if t.midstream and t.side_evidence != "syn":
        v.finding("midstream", "capture", t.first_frame,
                  "the capture starts in the middle of this conversation (no SYN)")
    uncaptured = _one_sided(f)
    if uncaptured is not None:
        # (the words of the one-sided details: no more than the capture shows)
        v.finding("one-sided", "capture", t.first_frame, _one_sided_detail(f, uncaptured))
    cut = [it for _, it in f.all_gaps if it.event.cut]
    if cut:
        _cut_finding(v, t, cut)
    for _, it in f.all_gaps:
        ev = it.event
        if ev.cut:
            continue        # not lost: the capture-truncated finding names it
        v.finding("tcp-gap", "capture", _frame(it),
                  f"{ev.length} byte(s) of the {ev.side} direction are missing from the capture"
                  + ("; they fell between two whole replies and are too few to hold one, so they "
                     "cannot change the verdict" if it in f.harmless_gaps else ""))
    for it in f.overlaps:
        ev = it.event
        v.finding("tcp-overlap-conflict", "capture", ev.second_frame,
                  f"frame {ev.second_frame} retransmits {ev.length} byte(s) of the {ev.side} "
                  f"direction first sent in frame {ev.first_frame} with different content; the "
                  "first copy was used")
    for it in f.anomalies:
        ev = it.event
        if ev.code is AnomalyCode.STARTTLS_COMMAND_INJECTION:
            v.finding("starttls-command-injection", "client", _frame(it),
                      f"{ev.detail}: a vulnerable server runs such commands inside TLS "
                      "(CVE-2011-0411 class)")
        elif ev.code is AnomalyCode.STARTTLS_RESPONSE_INJECTION:
            v.finding("starttls-response-injection", "server", _frame(it),
                      f"{ev.detail}: a client reads those records as the answer to its own ClientHello, "
                      "which they are not" if _early_flight(f, f.pos(it) - 1) is not None else
                      f"{ev.detail}: a vulnerable client reads it as a reply inside TLS")
        elif ev.code in (AnomalyCode.TOO_MANY_PENDING, AnomalyCode.TOO_MANY_REPLY_LINES):
            v.finding("limit-reached", "capture", _frame(it), ev.detail)
        elif ev.code is AnomalyCode.LINE_TOO_LONG and not any(
                x["code"] == "limit-reached" and x["side"] == "capture"
                and str(ev.side) in x["message"] for x in v.findings):
            v.finding("limit-reached", "capture", _frame(it),
                      f"a {ev.side} line too long to keep ({ev.detail}); its head was kept, the "
                      "rest skipped")
    if greeting_ev is not None and greeting_ev.lines and is_masked_banner(greeting_ev.lines[0].text):
        v.finding("banner-masked", "middlebox", _frame(f.greeting),
                  "the banner's characters are asterisks except '2' and '0': Cisco ESMTP "
                  "inspection (mask-banner) rewrites this conversation")
    if f.out_of_step is not None:
        oos = f.out_of_step.event
        meant = oos.server_answers.verb if oos.server_answers is not None else "the greeting"
        first_line = oos.lines[0]
        v.finding("reply-out-of-step", "server", _frame_of_line(f.out_of_step, None, first_line),
                  f"the server sent {_show_line(first_line)} after its reply to {meant} had "
                  f"ended, with no command awaiting it; the client reads it as the answer to its "
                  f"next command, {_verb(oos.answers)}, and every later reply as the answer to the "
                  "command after the one the server meant",
                  at=("server", first_line.span.start))

    # ---- the EHLO exchange
    clear = f.clear
    ehlo_item = _acted_ehlo(f)
    first_hello = f.hellos[0] if f.hellos else None
    ehlo_reply = f.reply_to(ehlo_item) if ehlo_item is not None else _unprompted_ehlo_reply(f)
    chk: EhloCheck | None = None
    offered = "unknown"
    strays: list[Item] = []
    if ehlo_reply is not None and ehlo_reply.event.code is not None and 200 <= ehlo_reply.event.code < 300 \
            and not ehlo_reply.event.damaged and f.gap_before(f.pos(ehlo_reply) + 1) is None \
            and not _unended(ehlo_reply):
        strays = f.stray_after.get(id(ehlo_reply.event), [])
        stray = tuple(ln for it in strays for ln in it.event.lines)
        chk = check_ehlo(ehlo_reply.event.lines, stray)
        offered = chk.offered
        for lf in chk.findings:
            frame = _frame_of_line(ehlo_reply, strays, lf.line)
            v.finding(lf.code, str(lf.side), frame, lf.message, lf.rfc, lf.confidence,
                      at=("server", lf.line.span.start))
    _earlier_ehlo_findings(f, v, ehlo_item, ehlo_reply)
    if chk is not None and ehlo_item is not None and ehlo_reply is not None \
            and ehlo_reply.event.out_of_step and offered != "valid":
        # The client read another reply as the answer to EHLO (a stray line before it): the
        # server's own EHLO reply reached it as the answer to its next command.
        real = f.meant.get(id(ehlo_item.event))
        if real is not None and real is not ehlo_reply and not real.event.damaged \
                and check_ehlo(real.event.lines).offered == "valid":
            offered = chk.offered = "misplaced"
            chk.starttls_where = "shifted"
    if ehlo_item is None and ehlo_reply is not None and chk is not None and offered == "valid":
        # one-sided (the server's direction only): a 220 right after the EHLO reply that offered
        # STARTTLS answers STARTTLS (no other command gets 220 there)
        nxt = next((it for it in t.items[f.pos(ehlo_reply) + 1:] if type(it.event) is Reply), None)
        if (nxt is not None and nxt.event.code == 220 and not nxt.event.damaged
                and f.gap_between(f.pos(ehlo_reply), f.pos(nxt), _SERVER) is None):
            v.extra["starttls_reply_code"] = 220
            v.extra["starttls_requested"] = True
    # one-sided too: TLS of the server right after a 220 (the session read it as TLS) shows the
    # 220 answered STARTTLS, whatever the reply before it was
    ready = _unprompted_tls(f)
    if ready is not None:
        v.extra["starttls_reply_code"] = 220
        v.extra["starttls_requested"] = True
    ehlo_refused = (ehlo_reply is not None and ehlo_reply.event.code is not None
                    and ehlo_reply.event.code >= 400)
    # A refused EHLO sent no extension list: whether STARTTLS would have been offered is not
    # known (``unknown``, not ``absent``).

    st_item = f.starttls
    masked_cmd = False
    if st_item is None and f.masked_command is not None and len(f.masked_command.event.raw_verb) == 8:
        # Seen on the server's side of a Cisco ESMTP inspection: the client's STARTTLS arrives
        # overwritten with X of the same length, and the server refuses the unknown command.
        st_item = f.masked_command
        masked_cmd = True
    st_reply = f.reply_to(st_item)
    if st_item is not None and st_reply is not None and not masked_cmd and _too_late(f, st_item, st_reply):
        st_reply = None
    st_code = st_reply.event.code if st_reply is not None else None
    if st_item is not None:
        if st_item.event.argument:
            v.finding("starttls-with-parameter", "client", _frame(st_item),
                      f"STARTTLS takes no parameter, the client sent {st_item.event.argument[:40]!r}")
        if masked_cmd:
            v.finding("starttls-masked", "middlebox", _frame(st_item),
                      f"the client's command arrived as {st_item.event.raw_verb}: a firewall's ESMTP "
                      "inspection overwrote STARTTLS with X of the same length"
                      + (f" and the server answered {st_code}" if st_code is not None else ""),
                      at=_at(st_item))
        elif offered == "absent" and not ehlo_refused and chk is not None:
            v.finding("starttls-not-advertised-but-used", "client", _frame(st_item),
                      "the client sent STARTTLS although the EHLO reply did not offer it")
    st_2xx_tls = decided_2xx = False
    if (st_reply is not None and st_code is not None and 200 <= st_code < 300 and st_code != 220
            and not st_reply.event.out_of_step):
        # (a stray line the client read as the answer is the reply framing's defect: case
        # stray-answer; the server's own answer to STARTTLS came later)
        st_2xx_tls = _tls_after_2xx(f, st_reply)
        # (after lost bytes the session reads no TLS start from the pairing, a guess: TLS of the
        # client after the reply then leaves open which reply it read)
        st_2xx_unsure = not st_2xx_tls and any(
            isinstance(it.event, StreamGap) for it in f.t.items) and any(
            it.event.side is _CLIENT and f.pos(it) > f.pos(st_reply) for it in [*f.tls, *f.in_progress.values()])
        text = " / ".join(_lines_text(st_reply.event))[:80]
        v.finding("starttls-reply-not-220", "server", _frame(st_reply),
                  f"the server answered STARTTLS with {st_code} ({text}), where RFC 3207 4 gives 220: "
                  + ("the client took it as the go-ahead and started TLS (Postfix, Exim and Mutt start TLS "
                     "on any 2xx), a client that wants 220 (CPython's smtplib, curl) reads it as a refusal"
                     if st_2xx_tls else
                     "Postfix, Exim and Mutt start TLS on any 2xx, a client that wants 220 (CPython's smtplib, "
                     "curl) reads it as a refusal" if st_2xx_unsure else
                     "the client read it as a refusal and did not start TLS, as a client that wants 220 "
                     "(CPython's smtplib, curl) does (Postfix, Exim and Mutt start TLS on any 2xx)"),
                  at=_at(st_reply))
        if st_2xx_unsure:
            v.set("incomplete", "unknown", "incomplete", _frame(st_reply),
                  f"the server answered STARTTLS with {st_code} and the client sent TLS after it, but bytes "
                  "were lost before: whether the client read that answer as the go-ahead cannot be told")
            decided_2xx = True
    names = [greeting_ev.lines[0].text.split(" ", 1)[0] if greeting_ev and greeting_ev.lines else "",
             chk.domain if chk else ""]

    # ---- deciding
    decided = decided_2xx
    implicit = f.implicit is not None
    if implicit:
        ts = _tls_summary(f, 0)
        server_tls = any(it.event.side is _SERVER for it in f.tls)
        if f.greeting is not None and f.greeting_whole and ts["server_hello"] is None \
                and t.server.port in STARTTLS_PORTS:
            # A plaintext greeting is right where SMTP starts in plaintext (25, 587, 2525: STARTTLS
            # there); the client that opened with a ClientHello is misconfigured (an "SSL/TLS"
            # setting with port 587, say): its doing, not the server's.
            port = t.server.port
            msg = (f"the client spoke TLS from its first byte on port {port}, where SMTP starts in "
                   "plaintext and TLS with STARTTLS (implicit TLS is port 465, RFC 8314 3.3); the "
                   "server's plaintext greeting is right there")
            v.finding("implicit-tls-on-starttls-port", "client", _frame(f.implicit),
                      f"the client opened with a TLS ClientHello on port {port}, a STARTTLS port; the "
                      f"server greeted in plaintext SMTP: {' '.join(_lines_text(f.greeting.event))[:80]!r}",
                      at=_at(f.implicit))
            v.set("aborted", "client", "implicit-tls-mismatch", _frame(f.implicit), msg, f.implicit)
            v.case = "client-tls-port"
        elif f.greeting is not None and f.greeting_whole and ts["server_hello"] is None:
            # The server spoke plaintext SMTP (before or after the ClientHello): SMTPS client,
            # plaintext server.
            v.finding("implicit-tls-plaintext-reply", "server", _frame(f.greeting),
                      "the client spoke TLS from its first byte, the server answered in "
                      f"plaintext SMTP: {' '.join(_lines_text(f.greeting.event))[:80]!r}")
            v.set("aborted", "server", "implicit-tls-mismatch", _frame(f.greeting),
                  "the server speaks plaintext SMTP on this connection, the client TLS")
        elif ts["established"]:
            v.set("tls", "none", "implicit-tls", _frame(f.implicit) or t.first_frame,
                  "TLS from the first byte")
        elif _handshake_failure(f, v, ts, -1, True):     # (-1: a hole before the first event counts)
            pass
        elif server_tls and not f.gaps:
            # (a hole may hold what ended the handshake: the server's answer lost on the path)
            v.set("tls", "none", "implicit-tls", _frame(f.implicit) or t.first_frame,
                  "TLS from the first byte")
        elif server_tls:
            first_hole = f.gaps[0][1]
            v.set("incomplete", "unknown", "incomplete", _frame(first_hole),
                  f"bytes of the {first_hole.event.side} direction {_went(first_hole, t)} during the TLS handshake, "
                  "which the capture does not show completed or ended")
        else:
            # Neither established nor ended, and the server showed no TLS: its answer (TLS
            # or a plaintext SMTP banner) is not in the capture.
            v.set("incomplete", "unknown", "incomplete", _frame(f.implicit) or t.first_frame,
                  "the client spoke TLS from its first byte; the server's answer is not in the "
                  "capture")
        _check_certificates(f, v, ts, names)
        _attach_tls(v, ts)
        decided = True
    if not decided and len(f.in_progress) == 2 and st_item is None:
        _judge_in_progress(f, v)
        decided = True
    # A 220 lost in a hole still shows in what follows: TLS records after STARTTLS, the
    # server's any. (The client's TLS the session read with the server's answer not in the
    # capture, SmtpSession._client_tls_unanswered: its ClientHello, or the records after a
    # hole that took its head, shows no 220 when the server's packets do come later, none of
    # them TLS: then the server's answer is what the capture lacks.)
    tls_after_starttls = st_item is not None and st_reply is None and any(
        it.event.side is _SERVER or _absent(f, _SERVER) or _server_before(t, f.pos(it))
        for it in f.tls if f.pos(it) > f.pos(st_item))
    st_unclear = st_reply is not None and (
        st_code is None or st_reply.event.damaged
        or f.gap_between(-1, f.pos(st_reply), _SERVER) is not None)

    def pairing_unsure() -> bool:
        # Which reply the client read as the answer to STARTTLS rests on every reply before
        # it: a hole before it (either side), a reply cut by a hole, or a late start without
        # the whole EHLO reply, leaves that pairing unsure (the rest of a reply that ended
        # early may be what the client read). (A function: only a handshake that did not
        # complete asks, and it walks every event.)
        return st_reply is not None and (
            f.gap_before(f.pos(st_reply)) is not None
            or (t.midstream and (ehlo_reply is None or ehlo_reply.event.damaged))
            or any(isinstance(it.event, Reply) and f.pos(it) < f.pos(st_reply)
                   and (it.event.damaged or (it.event.answers is None and not it.event.greeting))
                   for it in t.items))

    if not decided and not implicit and f.clear is None and _refused_in_greeting(f, st_item):
        # (before the reply to STARTTLS is read: whatever it was, a 421 the server sent on its own
        # or none at all, the session was refused before the client asked)
        _judge_plaintext(f, v, offered, chk, ehlo_item, ehlo_reply, first_hello, ehlo_refused,
                         greeting_ev)
        v.detail += f"; the client still sent STARTTLS (frame {_frame(st_item)})"
        decided = True
    if not decided and st_item is not None and (st_code == 220 or tls_after_starttls or st_2xx_tls):
        after = f.pos(st_reply) if st_reply is not None else f.pos(st_item)
        ts = _tls_summary(f, after)
        decrypted = next((it for it in f.after_tls if it.event.side is _CLIENT
                          and it.event.smtp_like and f.pos(it) > after), None)
        garbage = next((it for it in f.after_tls if it.event.side is _CLIENT
                        and not it.event.smtp_like and f.pos(it) > after), None)
        # (the client's first plaintext SMTP after the 220, however the server's answer to it reads)
        plain = decrypted
        answer_tls = next((it for it in f.tls if it.event.side is _SERVER and f.pos(it) > after), None)
        if decrypted is not None and answer_tls is None:
            answer_tls = _tls_read_as_reply(f, f.pos(decrypted))
        answer_words = f"the server answered in TLS (frame {_frame(answer_tls)})"
        if decrypted is not None and answer_tls is None:
            # Behind a TLS terminator the server answers the client's readable commands readably.
            # A server that closed instead, with no readable reply since the 220 and nothing of
            # its direction lost, was still waiting for a ClientHello (OpenSSL sends no alert for
            # a first record that is no TLS: "wrong version number").
            end = f.own_end(_SERVER)
            if (end is not None and f.pos(end) > f.pos(decrypted) and f.pos(f.own_end(_CLIENT)) > f.pos(end)
                    and f.gap_between(after, f.pos(end), _SERVER) is None
                    and not any(type(x.event) is Reply and x.event.side is _SERVER
                                for x in f.t.items[after + 1:f.pos(end)])):
                answer_tls = end
                how = "reset" if end.event.reset else "closed"
                answer_words = (f"the server {how} the connection without a readable answer (frame "
                                f"{_frame(end)}), as a TLS server does")
        lost_answer = (f.gap_between(f.pos(decrypted), 1 << 60, _SERVER)
                       if decrypted is not None and answer_tls is None else None)
        if decrypted is not None and answer_tls is not None and garbage is None:
            # The server answered in TLS (an alert, a handshake record): nothing in front of it
            # read the client's SMTP as decrypted text; the client went on in plaintext where
            # its ClientHello belonged (a client that does not really speak TLS).
            garbage, decrypted = decrypted, None
        if ts["established"]:
            if st_reply is not None and st_item.event.inferred:
                # The client's STARTTLS is not in the capture: say what is.
                hole = f.gap_between(-1, f.pos(st_reply), _CLIENT)
                how = ("the client's STARTTLS is not in the capture"
                       + (f" (bytes of the client were lost, frame {_frame(hole)})" if hole else "")
                       + ", but the server answered 220 and the TLS handshake completed")
            elif st_reply is not None:
                how = f"STARTTLS answered {st_code} and the TLS handshake completed"
            else:
                # The 220 itself is not in the capture: say what is.
                hole = f.gap_between(f.pos(st_item), 1 << 60, _SERVER)
                how = ("the server's answer to STARTTLS is not in the capture"
                       + (f" (bytes of the server were lost, frame {_frame(hole)})" if hole else "")
                       + ", but the TLS handshake that followed STARTTLS completed")
            v.set("tls", "none", "tls-established", _frame(ts["data"][_CLIENT][0]
                                                            if ts["data"][_CLIENT] else st_reply),
                  how + (f" ({version_name(ts['version'])})" if ts["version"] else ""))
            decided = True
        elif pairing_unsure() and ts["client_hello"] is None:
            # (A ClientHello after the 220 shows the client read an answer that let it start
            # TLS: who ended the handshake no longer rests on the replies before the 220.)
            v.set("incomplete", "unknown", "incomplete", _frame(st_reply),
                  "replies before the 220 to STARTTLS are not all in the capture (a hole or a "
                  "late start): which reply the client read as its answer is unsure")
            decided = True
        elif plain is not None and _ready_not_received(
                f, v, after, plain, f"the client gave up waiting and went on in plaintext SMTP "
                f"({plain.event.preview[:40]!r}, frame {_frame(plain)})"):
            # (the client never had the 220: its plaintext is what it sends when no answer came)
            decided = True
        elif decrypted is not None and not any(
                type(x.event) is Reply for x in f.t.items[f.pos(decrypted):f.pos(lost_answer)]):
            # No readable answer of the server to the client's plaintext in the capture (it ends
            # first, or bytes of the server were lost before one): a TLS server's answer (the
            # client did not start TLS) and a readable reply (a capture behind a TLS terminator)
            # look alike until it comes.
            why = (f"bytes of the server {_went(lost_answer, t)}" if lost_answer is not None
                   else "the capture ends")
            v.set("incomplete", "unknown", "incomplete", _frame(lost_answer) or _frame(decrypted),
                  f"after the 220 the client went on in plaintext SMTP and {why} before any readable "
                  "answer of the server: whether it answered in TLS (the client did not start TLS) or "
                  "readably (a capture behind a TLS terminator) cannot be told")
            decided = True
        elif decrypted is not None:
            v.finding("plaintext-after-starttls", "capture", _frame(decrypted),
                      "after the 220 the client goes on in readable SMTP: this capture was "
                      "taken behind a TLS terminator (or the dialogue was decrypted)")
            v.set("tls", "none", "tls-decrypted", _frame(decrypted),
                  "the conversation continues readable after the 220: a decrypted capture")
            _offered_again(f, v, after)
            decided = True
        elif (early := _early_flight(f, after)) is not None and _flight_broke_start(f, v, ts, after, early):
            decided = True
        elif garbage is not None:
            if garbage.event.smtp_like:
                v.finding("plaintext-after-starttls", "client", _frame(garbage),
                          f"after the 220 the client went on in plaintext SMTP "
                          f"({garbage.event.preview[:40]!r}) and {answer_words}: the client did not "
                          "start TLS")
            else:
                v.finding("plaintext-after-starttls", "client", _frame(garbage),
                          f"after the 220 the client sent bytes that are neither TLS nor SMTP: "
                          f"{garbage.event.preview[:40]!r}")
            v.set("aborted", "client", "tls-not-started", _frame(garbage),
                  "the client did not start the TLS handshake after the 220")
            decided = True
        elif _handshake_failure(f, v, ts, after, False):
            decided = True
        elif (hello_only := _one_sided_hello(f, ts, st_item)) is not None:
            v.set("incomplete", "unknown", "incomplete", t.first_frame, hello_only)
            decided = True
        else:
            v.set("incomplete", "unknown", "incomplete", _frame(st_reply),
                  "the capture ends before the TLS handshake completes")
            decided = True
        _check_certificates(f, v, ts, names)
        _attach_tls(v, ts)
    if not decided and st_unclear:
        hole = f.gap_between(-1, f.pos(st_reply), _SERVER)
        v.set("incomplete", "unknown", "incomplete", _frame(st_reply),
              (f"bytes before the answer to STARTTLS {_went(hole, t)}" if hole is not None
               and hole.event.cut else "bytes before the answer to STARTTLS were lost")
              + ": which reply answers it is unsure")
        decided = True
    if not decided and st_item is not None and st_reply is not None and st_code != 220:
        mail_after = clear is not None and f.pos(clear) > f.pos(st_reply)
        outcome = "plaintext" if mail_after else "aborted"
        text = " / ".join(_lines_text(st_reply.event))[:120]
        at = f.pos(st_reply)
        left, unseen = (None, None) if mail_after else _client_left(f, at)
        # the server ended the connection after its answer, before any leaving of the client (a
        # client's FIN or QUIT after it answers that end): the client had no next step
        gone = None if mail_after else _server_left(f, at)
        if gone is not None and left is not None and f.pos(left) < f.pos(gone):
            gone = None
        if gone is not None:
            left = None
        then = "" if gone is None else f"; then {_server_end_words(f, gone)}"
        if not mail_after and left is None and gone is None:
            v.set("incomplete", "unknown", "incomplete", _frame(st_reply),
                  f"the server answered STARTTLS with {st_code} {text}; {_client_step_unseen(f, unseen)}")
        elif masked_cmd:
            v.set(outcome, "middlebox", "starttls-masked", _frame(st_item),
                  f"the client's STARTTLS reached the server as {st_item.event.raw_verb} (a "
                  f"firewall's ESMTP inspection masks commands it does not allow) and the server "
                  f"answered {st_code} ({text}){then}", st_item)
            _left_after_refusal(f, v, gone, st_reply)
        elif offered == "masked" or (st_code == 500 and "#5.5.1" in text):
            v.set(outcome, "middlebox", "starttls-masked", _frame(st_reply),
                  f"STARTTLS answered {st_code} ({text}) after a masked offer: the ESMTP "
                  "inspection of a firewall refuses the command" + then)
            _left_after_refusal(f, v, gone, st_reply)
        elif (st_reply.event.out_of_step and st_reply.event.stray and st_code == 421
              and f.t.dropped_events and (_reply_before(f, st_reply) or ehlo_reply) is not None):
            _wait_not_kept(v, st_reply, st_item)
        elif (st_reply.event.out_of_step and st_reply.event.stray and st_code == 421
              and (since := _reply_before(f, st_reply) or ehlo_reply) is not None and not mail_after
              and st_reply.ts_ns - since.ts_ns >= COMMAND_WAIT_NS):
            # The server's command timeout after a client that idled as long as RFC 5321
            # 4.5.3.2.7 lets a server wait, whose STARTTLS crossed its 421: the server timed out
            # as allowed and the conversation reads as it would without that STARTTLS
            _idled_into_timeout(f, v, since, st_reply, st_item, gone)
        elif (st_reply.event.out_of_step and st_reply.event.stray and st_code == 421
              and (since := _reply_before(f, st_reply) or ehlo_reply) is not None):
            # A 421 is a reply of its own, not more of the EHLO reply (RFC 5321 3.8: a server
            # that shuts down, or refuses the session, sends it whatever the command and closes),
            # which the client's STARTTLS crossed; a command timeout's 421 too when the server
            # waited less than RFC 5321 4.5.3.2.7 asks (the rule above: 5 minutes or more)
            _closed_too_soon(f, v, outcome, since, st_reply, st_item, then)
            _left_after_refusal(f, v, gone, st_reply, asked_ns=st_item.ts_ns)
        elif st_reply.event.out_of_step:
            meant = st_reply.event.server_answers
            sent_for = _verb(meant) if meant is not None else "the greeting"
            sent_as = (f"as more of its reply to {sent_for}, after that reply had ended"
                       if st_reply.event.stray else f"as its reply to {sent_for}")
            own = f.meant.get(id(st_item.event))
            own_text = ("the server's own answer to STARTTLS is not in the capture" if own is None
                        else f"the server's 220 came too late to be read as the answer (frame "
                             f"{_frame(own)})" if own.event.code == 220
                        else f"the server's own answer, {own.event.code} (frame {_frame(own)}), "
                             "came one reply late")
            v.set(outcome, "server", "starttls-refused", _frame(st_reply),
                  f"the client read {st_code} ({text}) as the answer to STARTTLS; the server sent "
                  f"it {sent_as}: the replies are one behind, {own_text}{then}", st_reply)
            v.case = "stray-answer"
            _left_after_refusal(f, v, gone, st_reply)
        else:
            v.set(outcome, "server", "starttls-refused", _frame(st_reply),
                  f"the server answered STARTTLS with {st_code} {text}{then}")
            _left_after_refusal(f, v, gone, st_reply, asked_ns=st_item.ts_ns)
        decided = True
    if not decided and st_item is not None and st_reply is None:
        end = f.own_end(_SERVER)
        step = None if masked_cmd else _next_client_step(f, st_item)
        crossed = _timeout_crossed(f, st_item)
        if crossed is not None and crossed[0] is None:
            # (the capture starts after the server's last reply before its 421)
            v.set("incomplete", "unknown", "incomplete", _frame(crossed[1]),
                  f"the server sent {crossed[1].event.code} (frame {_frame(crossed[1])}) on its own before the "
                  f"client's STARTTLS (frame {_frame(st_item)}), which crossed it, but the capture starts too late "
                  "to show how long the server had waited for a command (RFC 5321 4.5.3.2.7: a command timeout "
                  "after 5 minutes or more is allowed)")
        elif crossed is not None and crossed[0] is not None and f.t.dropped_events:
            _wait_not_kept(v, crossed[1], st_item)
        elif crossed is not None and crossed[0] is not None and crossed[1].ts_ns - crossed[0].ts_ns >= COMMAND_WAIT_NS:
            # (a capture that starts after the EHLO: the 421 answers no command it holds)
            _idled_into_timeout(f, v, crossed[0], crossed[1], st_item, _server_left(f, f.pos(crossed[1])))
        elif crossed is not None and crossed[0] is not None:
            # (the same, the server having waited less than 5 minutes: as the whole capture reads)
            gone = _server_left(f, f.pos(crossed[1]))
            _closed_too_soon(f, v, "aborted", crossed[0], crossed[1], st_item,
                             "" if gone is None else f"; then {_server_end_words(f, gone)}")
            _left_after_refusal(f, v, gone, crossed[1], asked_ns=st_item.ts_ns)
        elif (step is not None and (end is None or f.pos(step) < f.pos(end))
                and f.gap_before(f.pos(step)) is None and _server_silent(f, st_item, step)):
            _starttls_unanswered(f, v, st_item, step, clear)
        elif (end is not None and f.gap_before(f.pos(end)) is None
              and _server_stream_known(f, st_item) and not _server_bytes_unseen(f)):
            v.set("aborted", "server", "starttls-refused", _frame(end),
                  f"the server {'reset' if end.event.reset else 'closed'} the connection instead of answering STARTTLS")
            v.by_reset(end, "instead of the server's answer to STARTTLS")
        else:
            hole = f.gap_between(f.pos(st_item), 1 << 60, _SERVER)
            lacking = _server_bytes_unseen(f)
            v.set("incomplete", "unknown", "incomplete", _frame(st_item),
                  "the capture does not show the answer to STARTTLS"
                  + (f": bytes of the server {_went(hole, t)}"
                     if hole is not None and hole.event.cut else
                     f": the client acknowledged {lacking} bytes of the server that the capture does not "
                     "hold (its answer may be among them)" if lacking else ""))
        decided = True

    starttls_hole = None
    if not decided and st_item is None:
        starttls_hole = _starttls_hole_lost(f, v, offered, ehlo_reply, clear)
        decided = starttls_hole is not None or _smtps_hello_hole_lost(f, v)
    if not decided:
        _judge_plaintext(f, v, offered, chk, ehlo_item, ehlo_reply, first_hello, ehlo_refused,
                         greeting_ev)
    early = _clear_before(f, st_item)
    if decided and early is not None and v.outcome in ("tls", "aborted"):
        # A mail transaction or credentials went in the clear before the client asked for
        # STARTTLS on this connection: whatever TLS did after it, they crossed unprotected (the
        # contract's plaintext); the client went on in plaintext as it would without STARTTLS.
        then = v.detail
        _judge_plaintext(f, v, offered, chk, ehlo_item, ehlo_reply, first_hello, ehlo_refused,
                         greeting_ev)
        if v.outcome == "plaintext":
            v.detail += (f"; the client sent STARTTLS only after that (frame {_frame(st_item)}), and "
                         + (then if then[1:2].isupper() else then[:1].lower() + then[1:]))
    if ready is not None and "tls" not in v.extra:
        ready_ts = _tls_summary(f, f.pos(ready))
        _check_certificates(f, v, ready_ts, names)
        _attach_tls(v, ready_ts)
        alert = _clear_alert(ready_ts, _SERVER) or _clear_alert(ready_ts, _CLIENT)
        if alert is not None:
            # (what the side sent, as in a capture of both directions; why, the ClientHello or
            # the exchange before it would tell, and they are not all in the capture: the
            # verdict blames no one)
            ev = alert.event
            v.finding("tls-alert", str(ev.side), _frame(alert),
                      f"the {ev.side} sent the fatal TLS alert {ev.name} ({ev.description}) during the "
                      "handshake", at=_at(alert))
    if v.reason in _OFFER_REASONS:
        v.detail += _earlier_ehlo_words(f, ehlo_item, offered)
    _forged_reset(f, v)
    _server_closed(v)

    # ---- the contract's dict
    hello_item = first_hello
    hello_ev: Command | None = hello_item.event if hello_item is not None else None
    ehlo_lines = _lines_text(ehlo_reply.event) if ehlo_reply is not None else []
    for it in strays:
        ehlo_lines += _lines_text(it.event)
    tls = v.extra["tls"] if "tls" in v.extra else {
        "client_hello_frame": None, "server_hello_frame": None, "alert": None, "established": False}
    conv: dict[str, Any] = {
        "file": t.file,
        "stream": t.stream,
        "client": {"ip": t.client.ip, "port": t.client.port},
        "server": {"ip": t.server.ip, "port": t.server.port},
        "first_frame": t.first_frame,
        "banner": (f"{greeting_ev.code} " + greeting_ev.lines[0].text) if greeting_ev and
        greeting_ev.lines and greeting_ev.code is not None else
        (greeting_ev.lines[0].text if greeting_ev and greeting_ev.lines else None),
        "greeting": ({"command": hello_ev.verb, "argument": hello_ev.argument,
                      "frame": _frame(hello_item)} if hello_ev is not None else None),
        "ehlo_reply": ({"code": ehlo_reply.event.code, "frames": list(_frames_of(ehlo_reply, strays)),
                        "lines": ehlo_lines} if ehlo_reply is not None else None),
        "starttls": {"offered": offered, "requested": (st_item is not None or starttls_hole is not None
                                                       or v.extra.get("starttls_requested", False)),
                     "reply_code": st_code if st_code is not None else v.extra.get("starttls_reply_code"),
                     "frame": None if st_item is not None and st_item.event.inferred
                     else _frame(st_item)},
        "tls": tls,
        "outcome": v.outcome,
        "caused_by": v.caused_by,
        "reason": v.reason,
        "findings": sorted(v.findings, key=lambda x: (x["frame"] or 0, x["code"])),
        "evidence_frame": v.evidence,
        "detail": v.detail,
        "server_name": (chk.domain if chk and chk.offered != "misplaced" else None) or
        (names[0] or None),
        "mail": _frame(f.mail) is not None,
        "delivered": f.delivered,
        "auth": f.auth_item is not None,
        "started_ns": t.first_ts_ns,
        "ended_ns": t.last_ts_ns,
    }
    if v.extra.get("certificate"):
        conv["certificate"] = v.extra["certificate"]
    res = tlsrpt_result(v.reason, v.case, v.extra.get("tlsrpt_result"))
    # (RFC 8460 counts sessions that failed: an incomplete one's result is not known, whatever
    # its certificate shows, which ``certificate`` and the findings still report; some cases
    # have their own result or none, ``TLSRPT_CASE_RESULT``)
    if res and v.outcome not in ("tls", "incomplete"):
        conv["tlsrpt_result"] = res
    if v.case:
        conv["case"] = v.case
    info = REASON_CASES.get((v.reason, v.case)) or REASONS.get(v.reason)
    if info is not None:
        conv["explanation"] = {"client_does": info.client_does, "ask": info.remedy}
    # The clients' prediction reads an extension list: a refused EHLO sent none.
    raw_reply = b""
    if chk is not None and ehlo_reply is not None:
        raw_reply = b"".join([ln.raw for ln in ehlo_reply.event.lines])
        for it in strays:
            raw_reply += b"".join([ln.raw for ln in it.event.lines])
    conv["_raw_ehlo_reply"] = raw_reply
    # (and the lists an EHLO sent again replaced, oldest first: a client may keep an offer of one)
    conv["_raw_earlier_ehlo_replies"] = tuple(
        b"".join([ln.raw for it in (reply, *strays_of) for ln in it.event.lines])
        for reply, strays_of in _earlier_ehlo_replies(f, ehlo_item)) if raw_reply else ()
    conv["_masked_banner_helo"] = (ehlo_reply is None and hello_ev is not None and hello_ev.verb == "HELO"
                                   and greeting_ev is not None and bool(greeting_ev.lines)
                                   and is_masked_banner(greeting_ev.lines[0].text))
    conv["_line_marks"] = v.marks
    conv["_evidence_at"] = v.evidence_at
    return conv


#: what an EHLO reply shows of STARTTLS (``EhloCheck.offered``), for a one-sided capture's detail
_OFFER_WORDS = {
    "valid": "offers STARTTLS",
    "misplaced": "puts STARTTLS where a client that follows RFC 5321 does not read it",
    "masked": "shows STARTTLS masked (a box on the path overwrote it)",
    "absent": "does not offer STARTTLS",
}


def _unprompted_offer(chk: EhloCheck | None, ehlo_item: Item | None, ehlo_reply: Item | None) -> str:
    """For a capture of the server's direction only: what its EHLO reply (``_unprompted_ehlo_reply``)
    shows, as the end of the detail; "" when no such reply was read."""
    if chk is None or ehlo_item is not None or ehlo_reply is None:
        return ""
    return (f"; the server's reply after its greeting (frame {_frame(ehlo_reply)}) is an EHLO reply "
            f"that {_OFFER_WORDS[chk.offered]}, but what the client did is not in the capture")


def _unanswered_clear(f: _Facts, clear: Item | None) -> str:
    """For a capture of the client's direction only: what it sent in the clear (``_Facts.clear``),
    as the end of the detail; "" when the server's direction is there or nothing was."""
    if clear is None or f.present(_SERVER):
        return ""
    verb = clear.event.verb
    what = {"MAIL": "MAIL FROM", "AUTH": "AUTH (its credentials)"}.get(verb, verb)
    return (f"; the client sent {what} in the clear (frame {_frame(clear)}), but the server's replies, "
            "which would tell why, are not in the capture")


def _refused_in_greeting(f: _Facts, st_item: Item | None) -> bool:
    """The whole greeting, before the client's STARTTLS (``st_item``), refused the session (421
    or 554: RFC 5321 3.1, 4.2.2 and 4.3.2), and no reply of the server since accepted anything
    (no 2xx): the server served no command, so a later 421 (its timeout, crossed by STARTTLS) or
    none answered nothing the verdict rests on; the greeting decides, as a lone one does. A 221
    (RFC 5321 4.2.2: closing, the answer to QUIT, which clients such as Postfix send after a
    refusal) accepts nothing."""
    g = f.greeting
    if (g is None or st_item is None or g.event.code not in (421, 554) or not f.greeting_whole
            or f.pos(g) > f.pos(st_item)):
        return False
    return not any(type(it.event) is Reply and it.event.code is not None and 200 <= it.event.code < 300
                   and it.event.code != 221 and f.pos(it) > f.pos(g) for it in f.t.items)


def _judge_plaintext(f: _Facts, v: _Verdict, offered: str, chk: EhloCheck | None,
                     ehlo_item: Item | None, ehlo_reply: Item | None, first_hello: Item | None,
                     ehlo_refused: bool, greeting_ev: Reply | None) -> None:
    t = f.t
    # What went in the clear: a mail transaction, or credentials (AUTH outside TLS), whichever
    # came first. Either makes the conversation plaintext.
    clear = f.clear
    end_pos = 1 << 60
    if greeting_ev is not None and greeting_ev.code in (421, 554) and clear is None \
            and f.greeting_whole:
        v.set("aborted", "server", "greeting-refused", _frame(f.greeting),
              f"the server's greeting refused the connection ({greeting_ev.code})")
        return
    decisive = f.pos(clear) if clear is not None else end_pos
    gap = f.gap_before(decisive)
    started_late = (f.greeting is None or first_hello is None or
                    (first_hello is not None and f.pos(first_hello) > f.pos(f.commands[0])
                     if f.commands else False))
    if first_hello is None and f.greeting is not None and not t.midstream:
        started_late = False  # the whole start is there: the client just never greeted
    # The server sent nothing: no byte of it in the capture, and none lost (a hole of its
    # direction, known from the client's ACKs or the server's FIN, means it did send).
    server_silent = not t.server_bytes and f.gap_between(-1, end_pos, _SERVER) is None
    if f.greeting is None and server_silent and f.present(_SERVER) and not t.midstream:
        started_late = False  # the server closed or reset without a greeting: nothing is missing
    unseen = _one_sided(f)
    one_sided = unseen is not None
    server_end = server_ended_first(t)
    if (f.greeting is None and server_silent and clear is None and not t.midstream and gap is None
            and server_end is not None):
        how = "reset" if server_end.event.reset else "closed"
        v.set("aborted", "server", "greeting-refused", _frame(server_end),
              f"the server {how} the connection without a greeting", server_end)
        v.by_reset(server_end, "before the server's greeting")
        return
    # (also when the client went on in the clear before any greeting: a client that talks
    # first and then waits, sending MAIL as it goes, gave up on the greeting all the same)
    gave_up = greeting_unanswered(t) if f.greeting is None and gap is None else None
    if gave_up is not None:
        waited = (gave_up.ts_ns - t.first_ts_ns) / 1e9
        act = ("reset the connection" if isinstance(gave_up.event, StreamEnded) and gave_up.event.reset
               else "closed the connection" if isinstance(gave_up.event, StreamEnded)
               else f"sent {gave_up.event.verb}")
        first = f.commands[0] if f.commands else None
        early = (f"; the client had sent {first.event.verb} (frame {_frame(first)}) before any greeting"
                 if first is not None and first is not gave_up else "")
        sent = ("" if clear is None else
                f"; the client sent {_verb(clear.event)} in the clear (frame {_frame(clear)}) with "
                "no greeting")
        _unanswered(v, gave_up, "no-answer", "server", "aborted" if clear is None else "plaintext",
                    "greeting-refused", "no-answer",
                    f"the server sent no greeting: no byte of it for {waited:.0f} s from the "
                    f"conversation's first frame ({t.first_frame}), until the client gave up "
                    f"waiting and {act}{early}{sent}")
        return
    if gap is not None or started_late or one_sided:
        why = (f"the capture's snap length{_snap(t)} cut the decisive exchange: frame "
               f"{_frame(gap)} is not in the capture whole" if gap is not None and gap.event.cut else
               "bytes of the decisive exchange were lost" if gap is not None else
               # (a one-sided capture from the SYN on shows no greeting because it lacks the
               # server's direction, not because it started late)
               _one_sided_detail(f, unseen) + _unprompted_offer(chk, ehlo_item, ehlo_reply)
               + _unanswered_clear(f, clear) if unseen is not None and not t.midstream else
               "the capture does not show the greeting and the EHLO exchange")
        # (the server's TLS after a 220 that nothing of the client came before: also when the
        # client's packets come later, their holes saying why the verdict is incomplete)
        why += _unprompted_tls_words(f)
        v.set("incomplete", "unknown", "incomplete", _frame(gap) or t.first_frame, why)
        return
    hello = first_hello.event if first_hello is not None else None
    # Postfix takes a banner masked with asterisks for a PIX firewall and greets with HELO: the
    # box's doing (issue 13 item 3), a defect of the EHLO exchange like a masked keyword.
    masked_helo = (hello is not None and hello.verb == "HELO" and ehlo_item is None
                   and greeting_ev is not None and bool(greeting_ev.lines)
                   and is_masked_banner(greeting_ev.lines[0].text))
    if clear is None:
        # No mail and no credentials went anywhere. Did the client leave (QUIT, FIN, RST), or
        # does the capture end before its next step?
        left = (f.quit is not None or f.own_end(_CLIENT) is not None
                or f.own_end(_SERVER) is not None)
        if not left:
            v.set("incomplete", "unknown", "incomplete", _frame(ehlo_reply) or t.first_frame,
                  "the capture ends before the client's next step")
            return
        if masked_helo:
            v.set("aborted", "middlebox", "starttls-masked", _frame(f.greeting),
                  "the banner was masked with asterisks (Cisco ESMTP inspection, mask-banner) and "
                  f"the client greeted with HELO (frame {_frame(first_hello)}), which cannot "
                  "negotiate STARTTLS" + _GIVE_UP, f.greeting)
            return
        _judge_give_up(f, v, offered, chk, ehlo_item, ehlo_reply, ehlo_refused)
        return
    frame = _frame(clear)
    what = ("" if clear.event.verb != "AUTH" else
            f"; the client sent AUTH {_mechanism(clear)} in the clear (frame {frame}): its "
            "credentials crossed unprotected")
    if ehlo_refused:
        v.set("plaintext", "server", "ehlo-rejected", _frame(ehlo_reply),
              f"the server refused EHLO with {ehlo_reply.event.code if ehlo_reply else '?'}; "
              "the HELO fallback has no extensions" + what)
        return
    if _ehlo_unanswered(f, v, ehlo_item, ehlo_reply, "plaintext",
                        f"; the client then went on in the clear (frame {frame})" + what):
        return
    if masked_helo:
        v.set("plaintext", "middlebox", "starttls-masked", _frame(f.greeting),
              f"the banner was masked with asterisks (Cisco ESMTP inspection, mask-banner); a client "
              f"that takes that for a PIX firewall (Postfix: smtp_pix_workarounds disable_esmtp) "
              f"greets with HELO (frame {_frame(first_hello)}), which cannot negotiate STARTTLS"
              + what, f.greeting)
        return
    if hello is not None and hello.verb == "HELO" and ehlo_item is None:
        v.set("plaintext", "client", "client-used-helo", _frame(first_hello),
              "the client greeted with HELO, which cannot negotiate STARTTLS" + what)
        return
    if offered == "valid":
        v.set("plaintext", "client", "client-did-not-request", frame,
              "STARTTLS was validly offered; the client went on in plaintext" + what)
    elif offered in ("misplaced", "masked", "absent"):
        assert chk is not None
        _set_defect(v, "plaintext", offered, chk, ehlo_reply, what)
    else:
        v.set("incomplete", "unknown", "incomplete", frame, _no_ehlo_reply_words(f, ehlo_item, clear))


def _no_ehlo_reply_words(f: _Facts, ehlo_item: Item | None, clear: Item) -> str:
    """Why no EHLO reply decides a conversation that went on in the clear (``clear``): the
    capture lacks it, or the client did not wait for one the server had not sent (the server's
    direction whole and silent from the EHLO to the client's next step, sooner than the wait
    ``_ehlo_unanswered`` takes for giving up)."""
    if ehlo_item is None:
        return "the capture shows no EHLO or HELO before the client went on in the clear"
    step = _next_client_step(f, ehlo_item)
    if (step is not None and isinstance(step.event, Command) and f.present(_SERVER)
            and f.gap_before(f.pos(step)) is None and _server_silent(f, ehlo_item, step)):
        return (f"the client sent {_verb(step.event)} (frame {_frame(step)}) "
                f"{_seconds(step.ts_ns - ehlo_item.ts_ns)} after its EHLO (frame {_frame(ehlo_item)}), "
                "before the server had answered it"
                + ("" if step is clear else f", and went on in the clear (frame {_frame(clear)})")
                + ": the client did not wait for the extension list, and the server had not sent it")
    return "the EHLO reply is not in the capture"


def _offered_again(f: _Facts, v: _Verdict, after: int) -> None:
    """In a capture that shows the dialogue inside TLS (decrypted, or behind a terminator), an
    EHLO reply after the 220 to STARTTLS that offers STARTTLS again breaks RFC 3207 4.2: the
    first such reply, at the frame of its STARTTLS line."""
    for it in f.hellos:
        if f.pos(it) <= after or it.event.verb not in ("EHLO", "LHLO"):
            continue
        reply = f.reply_to(it)
        if reply is None or reply.event.damaged or not 200 <= (reply.event.code or 0) < 300:
            continue
        chk = check_ehlo(reply.event.lines)
        line = chk.starttls_line
        if chk.offered in ("valid", "misplaced") and line is not None:
            v.finding("starttls-offered-again", "server", _frame_of_line(reply, None, line),
                      f"the EHLO reply after the start of TLS offers STARTTLS again "
                      f"({_show_line(line)}), which a server must not do once TLS is under way: a "
                      "client may send STARTTLS a second time inside TLS", at=("server", line.span.start))
        return


def _clear_before(f: _Facts, st_item: Item | None) -> Item | None:
    """What went in the clear before the client's STARTTLS (``_Facts.clear``: a mail transaction,
    or an AUTH whose credentials crossed: an initial response, or a 334 challenge the client then
    answered; an AUTH refused at once carried none), or None."""
    clear = f.clear
    if st_item is None or clear is None or f.pos(clear) > f.pos(st_item):
        return None
    if clear.event.verb != "AUTH" and f.reply_to(clear) is None:
        # (an AUTH is here only when its credentials crossed, ``_credentials``; a MAIL whose
        # answer the capture lost may have been refused, 530 "Must issue a STARTTLS command
        # first": no mail went, and the TLS after it is the verdict)
        return None
    return clear


def _mechanism(it: Item) -> str:
    """The SASL mechanism of an AUTH command (never its initial response: credentials)."""
    word = str(getattr(it.event, "argument", "") or "").split(" ", 1)[0].upper()
    return "".join(ch for ch in word if ch.isalnum() or ch in "-_")[:20] or "(no mechanism)"


def _set_defect(v: _Verdict, outcome: str, offered: str, chk: EhloCheck, ehlo_reply: Item | None,
                tail: str = "") -> None:
    """The verdict of an EHLO reply whose STARTTLS offer no strict client can use."""
    if offered == "misplaced":
        where = {"domain": "in the domain slot of the first EHLO line",
                 "code": "on a line with another reply code",
                 "stray": "after the premature end of the EHLO reply",
                 "space": "after a space that follows the line's separator",
                 "shifted": "in its reply to EHLO, which the client read as the answer to its next "
                            "command (a stray reply before it put the replies one behind)"}.get(
                     chk.starttls_where, "")
        v.set(outcome, "server", "starttls-misplaced", _frame(ehlo_reply),
              f"the server offered STARTTLS only {where}, where a strict client cannot see it" + tail)
    elif offered == "masked":
        v.set(outcome, "middlebox", "starttls-masked", _frame(ehlo_reply),
              "a middlebox masked the STARTTLS keyword in the EHLO reply" + tail)
    else:
        v.set(outcome, "server", "starttls-not-offered", _frame(ehlo_reply),
              "the EHLO reply is well formed and does not offer STARTTLS" + tail)


_GIVE_UP = ("; the client then left without a mail transaction, as a client that requires TLS "
            "(msmtp tls on, dma, s-nail smtp-use-starttls, an MTA with a TLS-required policy) does")


def _give_up_tail(f: _Facts) -> str:
    """How the client left after a defective EHLO exchange: as a client that requires TLS does
    (``_GIVE_UP``), unless it fell back to HELO (which cannot negotiate STARTTLS: such a client
    gave up on TLS, not on the mail) or tried AUTH in the clear first (none of its credentials
    crossed, or the conversation would be plaintext), which a client that requires TLS never
    does."""
    mine = [it for it in f.t.items if isinstance(it.event, Command) and it.event.side is _CLIENT]
    helo = next((it for it in mine if it.event.verb == "HELO"), None)
    auth = next((it for it in mine if it.event.verb == "AUTH"), None)
    if helo is None and auth is None:
        return _GIVE_UP
    tail = "; the client then" + (f" fell back to HELO (frame {_frame(helo)})" if helo is not None else "")
    if auth is not None:
        tail += "," if helo is not None else ""
        reply = next((it for it in f.t.items if isinstance(it.event, Reply) and it.event.answers is auth.event),
                     None)
        answered = "" if reply is None else f", answered {reply.event.code} (frame {_frame(reply)})"
        mech = auth.event.argument.split(" ")[0].upper()
        tail += f" sent AUTH {mech} in the clear (frame {_frame(auth)}){answered}, no credentials crossing,"
    return tail + " and left without a mail transaction"


def _judge_give_up(f: _Facts, v: _Verdict, offered: str, chk: EhloCheck | None,
                   ehlo_item: Item | None, ehlo_reply: Item | None, ehlo_refused: bool) -> None:
    """The client left without mail or credentials. After a defective EHLO exchange (EHLO
    refused, STARTTLS not offered, misplaced or masked) that defect is why: a client that
    requires TLS gives up exactly there. After a valid offer (or none asked for) the client
    simply had nothing to send: a probe, a monitoring check, a sender that changed its mind."""
    ended = _server_ended_ehlo(f, ehlo_item, ehlo_reply)
    if ended is not None:
        how = "reset" if ended.event.reset else "closed"
        if ehlo_reply is None:
            what = f"the server {how} the connection instead of answering EHLO"
        else:
            what = (f"the server {how} the connection in the middle of its EHLO reply (frame "
                    f"{_frame(ehlo_reply)}), before its last line: a client reads the extension "
                    "list only once the reply ends")
        v.set("aborted", "server", "ehlo-rejected", _frame(ended),
              what + ", so STARTTLS could not be negotiated", ended)
        v.by_reset(ended, "instead of the answer to EHLO")
        return
    if _ehlo_unanswered(f, v, ehlo_item, ehlo_reply):
        return
    if _ehlo_reply_not_received(f, v, ehlo_item, ehlo_reply):
        return
    if ehlo_refused and ehlo_reply is not None:
        end = _server_left(f, f.pos(ehlo_reply))
        tail = _give_up_tail(f)
        if end is not None and not _client_left_before(f, end):
            tail = f"; then the server {'reset' if end.event.reset else 'closed'} the connection"
        v.set("aborted", "server", "ehlo-rejected", _frame(ehlo_reply),
              f"the server refused EHLO with {ehlo_reply.event.code}, so STARTTLS could not be "
              "negotiated" + tail, ehlo_reply)
        return
    if chk is not None and offered in ("misplaced", "masked", "absent"):
        _set_defect(v, "aborted", offered, chk, ehlo_reply, _give_up_tail(f))
        return
    v.set("aborted", "none", "no-mail-transaction", None,
          "the conversation ended without a mail transaction")
    ends = [e for e in (f.own_end(_CLIENT), f.own_end(_SERVER)) if e is not None]
    if ends and f.quit is None:
        v.by_reset(min(ends, key=f.pos), "before any mail transaction")


def _unended(reply: Item) -> bool:
    """A reply whose last line continues (``250-``): the server's stream ended before the reply
    did (its close, or the capture's end), so no client read it as a reply, nor its lines."""
    lines = reply.event.lines
    return bool(lines) and lines[-1].continued and not reply.event.damaged


def _bare_last_line(reply: Item) -> Any:
    """The last line of a multi-line reply when it has no SP (nor ``-``) after its code (``250``
    alone, ``250X``): the session ends the reply there (RFC 5321 4.2 lets a reply line end so)
    and ``check_ehlo`` names it (``ehlo-bad-keyword``), but an EHLO reply's last line is the code,
    SP and a keyword (RFC 5321 4.1.1.1): a client that follows that grammar (swaks, Go, msmtp)
    reads on for the last line. None otherwise (and for a reply ``_unended`` or damaged)."""
    lines = reply.event.lines
    if len(lines) < 2 or reply.event.damaged:
        return None
    last = lines[-1]
    return last if last.sep not in (" ", "-") and last.code == lines[0].code else None


def _bare_end_waited(f: _Facts, ehlo_item: Item | None, ehlo_reply: Item | None) -> Item | None:
    """The client did not take the EHLO reply's bare last line (``_bare_last_line``) for its end:
    its next step (HELO, QUIT or another command but STARTTLS, which shows it read the list, its
    close or reset) came ``WAITED_NS`` or more after the reply, with nothing of the server between
    and no hole before it (a hole of the server's found later counts only when no reply of the
    server after the step comes before it). That step, or None: a client that acted sooner (curl's
    STARTTLS after ``250``, smtplib) took the line for the end, and the reading stays the offer's."""
    if ehlo_item is None or ehlo_reply is None or _bare_last_line(ehlo_reply) is None \
            or f.reply_to(ehlo_item) is not ehlo_reply:
        return None
    step = _next_client_step(f, ehlo_reply)
    end = f.own_end(_SERVER)
    if (step is None or (end is not None and f.pos(end) < f.pos(step))
            or (isinstance(step.event, Command) and step.event.verb == "STARTTLS")
            or f.gap_between(f.pos(ehlo_item), f.pos(step)) is not None
            or not f.present(_SERVER) or step.ts_ns - ehlo_reply.ts_ns < WAITED_NS
            or any(getattr(it.event, "side", None) is _SERVER and not isinstance(it.event, StreamEnded)
                   for it in f.t.items[f.pos(ehlo_reply) + 1:f.pos(step)])):
        return None
    gap = f.gap_between(f.pos(ehlo_reply), 1 << 62, _SERVER)
    if gap is not None and not any(type(it.event) is Reply and it.event.side is _SERVER
                                   and f.pos(step) < f.pos(it) < f.pos(gap) for it in f.t.items):
        # server bytes lost before any reply of its after the step: they may end the EHLO reply
        # (a hole after such a reply lies later in the server's stream, past the EHLO reply's end)
        return None
    return step


def _client_left_before(f: _Facts, end: Item) -> bool:
    """The client left (its QUIT, FIN or RST) before the server's ``end``."""
    return any(it is not None and f.pos(it) < f.pos(end) for it in (f.quit, f.own_end(_CLIENT)))


def _ehlo_unanswered(f: _Facts, v: _Verdict, ehlo_item: Item | None, ehlo_reply: Item | None,
                     outcome: str = "aborted", tail: str = "") -> bool:
    """The client gave up waiting for the answer to EHLO: none came, or the server stopped in the
    middle of it (its last line never came), and the client's next step (QUIT or another
    command, its close or reset) came ``WAITED_NS`` or more after the EHLO, with nothing of the
    server between and no hole: the server (or a box
    in front of it) caused it, as a STARTTLS never answered (Postfix "timed out while sending
    EHLO", Exim's command timeout). Only after the server's whole greeting (a 2xx); not when
    the EHLO never reached the server (its close then answers nothing); sooner than a second,
    the client did not wait. ``outcome``: ``plaintext`` when the client went on in the clear after
    it (a HELO fallback, PHPMailer's), ``tail`` ends the detail. Sets the verdict (True)."""
    if ehlo_item is None:
        return False
    if ehlo_reply is not None and not _unended(ehlo_reply):
        return _bare_end_unanswered(f, v, ehlo_item, ehlo_reply, outcome, tail)
    if (f.greeting is None or not f.greeting_whole or f.pos(f.greeting) > f.pos(ehlo_item)
            or not 200 <= (f.greeting.event.code or 0) < 300):
        # EHLO before the server's whole greeting (a client that talks first, a server that
        # delays its greeting on purpose, postscreen's "220-"): the server owed no reply yet
        return False
    # (an unended reply is an item only once the server's stream ends, after the client's step:
    # the wait counts from the EHLO, and its frames tell whether part of it came before the step)
    step = _next_client_step(f, ehlo_item)
    end = f.own_end(_SERVER)
    if (step is None or (end is not None and f.pos(end) < f.pos(step))
            or f.gap_before(f.pos(step)) is not None or not _server_silent(f, ehlo_item, step)
            or step.ts_ns - ehlo_item.ts_ns < WAITED_NS or _not_received(f, ehlo_item) is not None):
        return False
    ev = step.event
    act = (f"sent {_verb(ev)}" if isinstance(ev, Command) else
           f"{'reset' if ev.reset else 'closed'} the connection")
    part = ehlo_reply is not None and (_frame(ehlo_reply) or 0) < (_frame(step) or 0)
    what = (f"the server began its EHLO reply (frame {_frame(ehlo_reply)}) and never sent its last "
            "line" if part else "the server sent no reply to EHLO")
    _unanswered(v, ehlo_item, "no-answer", "server", outcome, "ehlo-rejected", "no-answer",
                f"{what}: {_seconds(step.ts_ns - ehlo_item.ts_ns)} after the EHLO the client gave "
                f"up waiting and {act} (frame {_frame(step)}); a client reads the extension list "
                "only once the reply ends, so STARTTLS could not be negotiated" + tail)
    return True


def _bare_end_unanswered(f: _Facts, v: _Verdict, ehlo_item: Item, ehlo_reply: Item, outcome: str,
                         tail: str) -> bool:
    """``_ehlo_unanswered`` for a reply whose last line has no SP after its code: the client
    waited on past it (``_bare_end_waited``), so for it the server never ended its reply, and
    the server's line caused what followed (same reason and case; no ``no-answer`` finding: the
    ``ehlo-bad-keyword`` finding at that line names the cause, and is the evidence frame)."""
    step = _bare_end_waited(f, ehlo_item, ehlo_reply)
    if step is None:
        return False
    last = _bare_last_line(ehlo_reply)
    frame = _frame_of_line(ehlo_reply, None, last)
    ev = step.event
    act = (f"sent {_verb(ev)}" if isinstance(ev, Command) else
           f"{'reset' if ev.reset else 'closed'} the connection")
    msg = (f"the server's EHLO reply (frame {_frame(ehlo_reply)}) ended in a line with no space after "
           f"its code ({last.raw[:12].decode('latin-1')!r}), not the code, SP and a keyword an EHLO "
           f"reply's last line is (RFC 5321 4.1.1.1): the client read on for the reply's end; "
           f"{_seconds(step.ts_ns - ehlo_reply.ts_ns)} after it the client gave up waiting and {act} "
           f"(frame {_frame(step)}); a client reads the extension list only once the reply ends, so "
           "STARTTLS could not be negotiated" + tail)
    v.set(outcome, "server", "ehlo-rejected", frame, msg, ehlo_reply)
    v.case = "no-answer"
    return True


def _server_ended_ehlo(f: _Facts, ehlo_item: Item | None, ehlo_reply: Item | None) -> Item | None:
    """The server's own close or reset that ended the EHLO exchange: instead of any reply to
    EHLO, or in the middle of the reply (its last line never came), before the client left and
    with no hole in either direction since EHLO. None otherwise."""
    if ehlo_item is None or (ehlo_reply is not None and not _unended(ehlo_reply)):
        return None
    end = _server_left(f, f.pos(ehlo_item))
    if end is None or _client_left_before(f, end) or f.gap_between(f.pos(ehlo_item), f.pos(end)) is not None:
        return None
    if ehlo_reply is None and _not_received(f, ehlo_item) is not None:
        # the server never got the EHLO (its acknowledgements stop before it, or the client
        # sent it again and nothing came back): its close answers nothing (an idle timeout, a
        # box that drops the command), it refused no EHLO
        return None
    if ehlo_reply is None and any(type(it.event) is Reply and f.pos(it) > f.pos(ehlo_item)
                                  for it in f.t.items[:f.pos(end)]):
        return None
    if end.event.reset and _reset_forgery(f, end) is not None:
        return None      # a box's reset: the server refused nothing (no-mail-transaction, reset-forged)
    return end


def _timeout_crossed(f: _Facts, st_item: Item) -> tuple[Item | None, Item] | None:
    """The server's 421 sent on its own right before the client's STARTTLS, which crossed it,
    as read when no command of the capture is its cue (a capture that starts after the EHLO),
    and the server's reply before it, since which neither side sent a command or lost bytes:
    (that reply, the 421); (None, the 421) when the capture holds no reply before it (it starts
    later). None otherwise."""
    timeout = None
    for it in reversed(f.t.items[:f.pos(st_item)]):
        ev = it.event
        if isinstance(ev, (StreamGap, Command)):
            return None
        if isinstance(ev, Reply) and ev.side is _SERVER:
            if timeout is not None:
                return it, timeout
            if ev.code != 421 or ev.answers is not None or ev.greeting:
                return None
            timeout = it
    return None if timeout is None else (None, timeout)


def _reply_before(f: _Facts, it: Item) -> Item | None:
    """The server's last reply before ``it`` (its 421), with no hole of the server's between
    them: from that reply on the server waited for the client's next command (RFC 5321
    4.5.3.2.7 times that wait). None when the capture holds none, or a hole may hide a later one."""
    for x in reversed(f.t.items[:f.pos(it)]):
        ev = x.event
        if type(ev) is StreamGap and ev.side is _SERVER:
            return None
        if type(ev) is Reply and ev.side is _SERVER:
            return x
    return None


def _wait_not_kept(v: _Verdict, timeout: Item, st_item: Item) -> None:
    """The server's 421 on its own, crossed by STARTTLS, in a conversation that passed the bound
    on events kept (``analysis.transcript``): the server's replies to NOOP, RSET... are not kept
    past it, and each starts the server's wait for a command again, so how long it waited before
    its 421 cannot be told (RFC 5321 4.5.3.2.7): ``incomplete``."""
    v.set("incomplete", "unknown", "incomplete", _frame(timeout),
          f"the server sent {timeout.event.code} (frame {_frame(timeout)}) on its own before the client's STARTTLS "
          f"(frame {_frame(st_item)}), which crossed it, but the conversation passed the bound on events kept, so "
          "how long the server had waited for a command (RFC 5321 4.5.3.2.7: 5 minutes) cannot be told")


def _since_words(reply: Item) -> str:
    """``reply`` named as the server's last reply before its 421: its reply to EHLO, to NOOP..."""
    cmd = reply.event.answers
    if reply.event.greeting:
        return "its greeting"
    if cmd is not None and cmd.verb == "EHLO":
        return "its EHLO reply"
    return f"its reply to {_verb(cmd)}" if cmd is not None else "its last reply"


def _closed_too_soon(f: _Facts, v: _Verdict, outcome: str, since: Item, timeout: Item, st_item: Item,
                     then: str) -> None:
    """The server's 421 (``timeout``) sent on its own, less than the 5 minutes RFC 5321
    4.5.3.2.7 asks a server to wait for a command after its last reply (``since``), which the
    client's STARTTLS crossed: a server closing the session (RFC 5321 3.8), the server's
    (``server-closed``); at once after that reply (under a second), no wait is named."""
    ev = timeout.event
    text = " / ".join(_lines_text(ev))[:120]
    waited = timeout.ts_ns - since.ts_ns     # (said rounded down: 299.97 s is no "300.0 s, sooner")
    when = (f" after {_since_words(since)}," if waited < WAITED_NS else
            f" {waited // 100_000_000 / 10:.1f} s after {_since_words(since)} (frame {_frame(since)}), sooner than "
            "the 5 minutes "
            "RFC 5321 4.5.3.2.7 asks a server to wait for the next command,")
    v.set(outcome, "server", "starttls-refused", _frame(timeout),
          f"the server sent {ev.code} ({text}) on its own{when} before the client's "
          f"STARTTLS (frame {_frame(st_item)}) could be answered: a server closing the session (RFC 5321 "
          f"3.8), which the client read as the answer to STARTTLS{then}", timeout)


def _idled_into_timeout(f: _Facts, v: _Verdict, since: Item, timeout: Item, st_item: Item,
                        gone: Item | None) -> None:
    """The server's command timeout 421 (``timeout``) came ``COMMAND_WAIT_NS`` or more after
    its last reply before it (``since``: its EHLO reply, or a later one such as its reply to a
    NOOP, which started the wait again), as long as RFC 5321 4.5.3.2.7 asks a server to wait for the next command,
    and the client's STARTTLS crossed it: the server timed out as allowed after a client that
    idled, and the conversation reads as it would without that STARTTLS (no mail transaction,
    no side blamed). ``gone``: the server's end after the 421, if the conversation ended so."""
    ev = timeout.event
    text = " / ".join(_lines_text(ev))[:120]
    then = "" if gone is None else f"; then {_server_end_words(f, gone)}"
    cmd = since.event.answers
    words = ("the server's greeting" if since.event.greeting else
             "the EHLO reply" if cmd is not None and cmd.verb == "EHLO" else
             f"the server's reply to {_verb(cmd)}" if cmd is not None else "the server's reply")
    v.set("aborted", "none", "no-mail-transaction", None,
          f"the client sent nothing for {_seconds(timeout.ts_ns - since.ts_ns)} after "
          f"{words} "
          f"(frame {_frame(since)}), until the server's command timeout ended the session with "
          f"{ev.code} ({text}) (frame {_frame(timeout)}), as RFC 5321 4.5.3.2.7 allows after 5 minutes; "
          f"the client's STARTTLS (frame {_frame(st_item)}) crossed it{then}; the conversation ended "
          "without a mail transaction")
    if gone is not None:
        v.by_reset(gone, "before any mail transaction")


def _server_left(f: _Facts, after: int) -> Item | None:
    """The server's leaving after position ``after``: its own end (its FIN or RST, not the
    capture's), with no hole in its direction between and none in the client's after ``after``:
    from there the server took no further command and the client sent none the capture lost, so
    the conversation ended whatever the client would have done next. None otherwise (the same
    convention as ``_client_left``)."""
    end = f.own_end(_SERVER)
    if (end is None or f.pos(end) < after
            or f.gap_between(after, 1 << 60, _CLIENT) is not None):
        return None
    return end if f.gap_between(after, f.pos(end), _SERVER) is None else None


def _client_left(f: _Facts, after: int) -> tuple[Item | None, Item | None]:
    """The client's leaving after position ``after`` without mail: its QUIT after it, or else
    its own end (its FIN or RST, not the capture's; one before ``after`` too: a client that
    closed its direction sends nothing more), with no hole in its direction between; and, when
    there is such a hole, that hole instead (the leaving then does not count: what the client
    sent before it is lost). (None, None): no leaving in the capture (the same convention as
    ``_server_left``; ``_client_step_unseen`` says why, from the hole)."""
    quit_ = next((it for it in f.commands if it.event.verb == "QUIT" and f.pos(it) > after), None)
    left = quit_ or f.own_end(_CLIENT)
    hole = None if left is None else f.gap_between(after, f.pos(left), _CLIENT)
    return (left, None) if hole is None else (None, hole)


def _client_step_unseen(f: _Facts, hole: Item | None) -> str:
    """Why ``_client_left`` found no leaving, so the capture cannot tell that no mail followed:
    the capture ends before the client's next step (``hole`` None), or bytes the client sent
    before it are lost (``hole``, the hole ``_client_left`` found before its leaving)."""
    if hole is None:
        return "the capture ends before the client's next step"
    return f"bytes the client sent next {_went(hole, f.t)}: whether mail followed cannot be told"


def _judge_in_progress(f: _Facts, v: _Verdict) -> None:
    """The capture starts inside TLS in both directions: the start (STARTTLS or TLS from the
    first byte) is not in the capture. TLS is known when the records show an established
    session; nothing else is (not an implicit-TLS mismatch, not a failed handshake)."""
    ts = _tls_summary(f, 0)
    if ts["server_hello"] is not None:
        ok = ts["established"]
    else:
        capp = [it for it in ts["data"][_CLIENT] if isinstance(it.event, TlsApplicationData)
                and not looks_like_encrypted_alert(it.event.length)]
        sapp = [it for it in ts["data"][_SERVER]
                if not looks_like_encrypted_alert(it.event.length)]
        if capp:
            sapp = _before_client_gave_up(f, sapp, capp[-1])
        clear_alert = ts["alert"] is not None and not ts["alert"].event.encrypted
        # Two client records beyond alert size: a TLS 1.3 client's Finished alone (then a
        # close) is a refused handshake, not a session.
        ok = len(capp) >= 2 and bool(sapp) and not clear_alert
    if ok:
        first = ts["data"][_CLIENT][0] if ts["data"][_CLIENT] else None
        v.set("tls", "none", "tls-start-not-captured", _frame(first),
              "the capture starts inside an established TLS session in both directions; how "
              "TLS began (STARTTLS or TLS from the first byte) is not in the capture")
        _attach_tls(v, ts)
        v.extra["tls"]["established"] = True
        return
    v.set("incomplete", "unknown", "incomplete", _frame(f.in_progress.get(_CLIENT)),
          "the capture starts inside TLS and does not show enough of it to tell whether a "
          "session was established")
    _attach_tls(v, ts)


def _attach_tls(v: _Verdict, ts: dict[str, Any]) -> None:
    alert = ts["alert"]
    v.extra["tls"] = {
        "client_hello_frame": _frame(ts["client_hello"]),
        "server_hello_frame": _frame(ts["server_hello"]),
        "alert": ({"side": str(alert.event.side), "level": alert.event.level,
                   "description": alert.event.description, "name": alert.event.name,
                   "encrypted": alert.event.encrypted, "frame": _frame(alert)} if alert else None),
        "established": ts["established"],
        "version": version_name(ts["version"]) if ts["version"] else None,
        "sni": ts["sni"],
    }


def _frames_of(reply: Item, strays: list[Item]) -> tuple[int, ...]:
    frames = list(reply.frames)
    for it in strays:
        frames += [x for x in it.frames if x not in frames]
    return tuple(frames)


def _frame_of_line(reply: Item, strays: list[Item] | None, line: Any) -> int | None:
    """The frame carrying the first byte of ``line``."""
    for it in (reply, *(strays or ())):
        if it.line_frames and line.span.start in it.line_frames \
                and any(ln is line for ln in it.event.lines):
            return it.line_frames[line.span.start]
    return _frame(reply)


def _verb(cmd: Command | None) -> str:
    if cmd is None:
        return "none"
    return {EOM_VERB: "the end of data", SASL_VERB: "a SASL line"}.get(cmd.verb, cmd.verb)


def _show_line(line: Any, width: int = 60) -> str:
    code = "" if line.code is None else str(line.code)
    return repr(f"{code}{line.sep}{line.text}"[:width])
