"""The glue: capture segments -> reassembly -> SMTP core -> verdicts.

This is the only module that knows every layer. ``Analyzer`` is incremental (the live mode
feeds it packet by packet); ``analyze_file`` runs it over a file.
"""
from __future__ import annotations

import gc
import re
from contextlib import contextmanager
from functools import lru_cache
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator

from pcapsmtp.analysis.clients import predict, predict_banner
from pcapsmtp.analysis.clock import CaptureClock, any_reading, judge_clocked
from pcapsmtp.analysis.fallback import SKIPPED, FallbackTracker
from pcapsmtp.analysis.frames import FrameIndex, make_item
from pcapsmtp.analysis.loss import Loss, apply_losses
from pcapsmtp.engine.flowid import community_id
from pcapsmtp.render.wireshark import conversation_filter, frames_filter
from pcapsmtp.analysis.summary import Summary
from pcapsmtp.analysis.transcript import INERT, TLS_REASONS, EventBound, apply_limit, settled, settles
from pcapsmtp.analysis.verdict import (
    Item, Overlap, ResetTtl, Transcript, WentOn, judge, judged_without_payload)
from pcapsmtp.model import CLIENT as _CLIENT
from pcapsmtp.model import SERVER as _SERVER
from pcapsmtp.model import SMTP_PORTS, TcpSegment
from pcapsmtp.smtp.events import Command, ImplicitTls, Reply
from pcapsmtp.smtp.events import StreamGap as SmtpStreamGap
from pcapsmtp.smtp.session import SessionConfig, SmtpSession
from pcapsmtp.tcp.config import ReassemblyConfig
from pcapsmtp.tcp.events import (
    FlowClosed, FlowInfo, FlowOpened, GapCause, OverlapConflict, SentAfterReset, StreamData,
    StreamEnd, StreamGap,
)
from pcapsmtp.tcp.reassembler import TcpReassembler

__all__ = ["AnalysisConfig", "Analyzer", "FileResult", "analyze_file", "analyze_files",
           "analyze_path"]

_FIFTEEN_MINUTES = 15 * 60 * 10**9


@dataclass(frozen=True)
class AnalysisConfig:
    ports: frozenset[int] = SMTP_PORTS
    detect_by_content: bool = True
    fallback_window_ns: int = _FIFTEEN_MINUTES
    #: events kept per conversation; past it, up to twice as many that a verdict may turn on
    #: (``analysis.transcript``), the rest counted
    max_events: int = 2000
    max_flows: int = 100_000
    max_tracked: int = ReassemblyConfig.max_tracked   #: light entries for stream numbering
    #: closed conversations leave the numbering table after this much capture time (None: never)
    closed_grace_ns: int | None = ReassemblyConfig.closed_grace_ns
    idle_timeout_ns: int = 600 * 10**9
    early: bool = False               #: emit a verdict as soon as it is decided (live mode)
    keep_exchange: bool = False       #: keep the exchange lines for ``explain``
    session: SessionConfig = field(default_factory=SessionConfig)
    #: ``(bucket, buckets)``: a parallel worker's share of the conversations (by flow hash,
    #: ``tcp.partition.flow_bucket``); every conversation is still numbered. None: all.
    partition: tuple[int, int] | None = None


class _Conv:
    __slots__ = ("info", "session", "index", "transcript", "emitted", "open_tls", "bound")

    def __init__(self, info: FlowInfo, file: str, cfg: AnalysisConfig, first_ts_ns: int) -> None:
        self.info = info
        self.session = SmtpSession(cfg.session, late_start=info.midstream)
        self.index = {_CLIENT: FrameIndex(), _SERVER: FrameIndex()}
        self.transcript = Transcript(
            file=file, stream=info.stream, client=info.client, server=info.server,
            first_frame=info.first_frame, first_ts_ns=first_ts_ns, midstream=info.midstream,
            side_evidence=info.side_evidence, handshake_seen=info.handshake_seen,
            both_directions=info.both_directions,
            last_ts_ns=first_ts_ns)
        self.emitted = False
        #: live mode: the verdict of a TLS conversation judged before its flow closed, whose end
        #: the plaintext-retry rule still needs (``FallbackTracker.observe``, at its close)
        self.open_tls: dict[str, Any] | None = None
        #: what is kept past the per-conversation bound (``analysis.transcript``; None under it)
        self.bound: EventBound | None = None


#: commands no other line protocol on a 220-greeting port (FTP, ...) uses
_SMTP_ONLY_VERBS = frozenset({"EHLO", "HELO", "LHLO", "MAIL", "RCPT", "DATA", "STARTTLS", "BDAT"})


def _attempt_only(t: Transcript, clock: CaptureClock) -> bool:
    """The connection never carried a byte of payload either way (nor lost any in a hole), and
    the verdict has nothing to judge in it (``judged_without_payload``: a server's refusal
    without a greeting is judged, under any pause at a backward step of the capture's clock):
    a scan or a probe, counted in the summary."""
    if t.client_bytes or t.server_bytes or any(isinstance(it.event, SmtpStreamGap) for it in t.items):
        return False
    if clock.steps:
        return not any_reading(t, clock.within(t), judged_without_payload)
    return not judged_without_payload(t)


class _HotState:
    """The base of ``Analyzer``: the attributes ``_feed`` and ``_route`` read or set for every
    segment (the packet count, the configuration, the clock, the reassembler, the conversations
    and the live mode's held verdicts), and the three settings of the (frozen) configuration
    they read, copied once (``_ports``, ``_early``, ``_max_events``). The compiled build makes it
    an extension type whose slots are C fields (engine/analyzer.pxd) and types the analyzer those
    functions take as it, so that each is a C read, not a generic look-up in the instance's
    dictionary (or the configuration's); ``Analyzer`` stays a Python class (its other
    attributes, and methods the tests replace)."""

    __slots__ = ("packets", "config", "clock", "reassembler", "_convs", "_held", "_ports", "_early",
                 "_max_events")


def _feed(self: Analyzer, seg: TcpSegment) -> list[dict[str, Any]]:
    """``Analyzer.feed`` (the method is this function, ``feed = _feed``): a module function so
    that the compiled build types its segment and reassembler (engine/analyzer.pxd) and reads
    the segment's fields as C fields and calls ``TcpReassembler.feed`` in C, for every segment
    fed."""
    self.packets += 1
    # The capture's clock, read on the SMTP ports: the segments every loop feeds (the fused
    # loop feeds only those the TCP layer must see, the general path all of them).
    ports = self._ports
    if seg.dport in ports or seg.sport in ports:
        clock = self.clock
        # (each attribute read once: the compiled build reads each through a generic look-up)
        ts = seg.ts_ns
        t = ts + clock.offset
        latest = clock.latest
        if latest is None or t < latest:
            clock.see(seg.frame, ts)            # (the rare case: time did not go forward)
        else:
            clock.latest = t
    reasm = self.reassembler
    events = reasm.feed(seg)
    if not events:
        return []
    return _route(self, events)


def _route(self: Analyzer, events: Iterable[Any]) -> list[dict[str, Any]]:
    """``Analyzer._route`` (the method is this function, ``_route = _route``): the TCP layer's
    events to the conversations, and the verdicts of those that ended. A module function so
    that the compiled build types its locals (engine/analyzer.pxd: the conversations'
    dictionary, the conversation's fields read as C fields) and ``_feed`` calls it in C, once
    per segment that gave events."""
    done: list[dict[str, Any]] = []
    convs = self._convs
    early = self._early
    clock = self.clock
    stepped = bool(clock.steps)
    for ev in events:
        if type(ev) is StreamData:
            c = _data(self, convs, ev, clock, stepped)
            if c is None:
                continue
        elif isinstance(ev, FlowOpened):
            info = ev.flow
            convs[info.stream] = _Conv(info, self.file, self.config,
                                       clock.at(info.first_frame, info.first_ts_ns))
            continue
        elif isinstance(ev, StreamGap):
            c = convs.get(ev.stream)
            if c is None:
                continue
            c.index[ev.side].add(ev.offset + ev.length, ev.frame)
            cut = ev.cause is GapCause.SNAPLEN
            if cut and not c.transcript.snaplen:
                c.transcript.snaplen = self.snaplen
            ts = clock.at(ev.frame, ev.ts_ns) if stepped else ev.ts_ns
            self._record(c, c.session.receive_gap(ev.side, ev.length, ts, cut, ev.acked))
        elif isinstance(ev, StreamEnd):
            c = convs.get(ev.stream)
            if c is None:
                continue
            # (an end without a frame, the capture's end or an idle close: the latest time)
            ts = ev.ts_ns if not stepped else (clock.at(ev.frame, ev.ts_ns) if ev.frame
                                               else ev.ts_ns + clock.offset)
            if ev.frame:
                c.transcript.last_ts_ns = max(c.transcript.last_ts_ns, ts)
                c.index[ev.side].add(1 << 62, ev.frame)
            if ev.reset:
                c.transcript.resets.setdefault(ev.side, ResetTtl(
                    ev.frame, ev.ttl, ev.side_ttl, ev.side_ttl_segments, ev.side_ttl_frames))
            self._record(c, c.session.receive_eof(ev.side, reset=ev.reset,
                                                  truncated=ev.truncated, ts_ns=ts))
        elif isinstance(ev, OverlapConflict):
            c = convs.get(ev.stream)
            if c is None:
                continue
            ov = Overlap(ev.side, ev.offset, ev.length, ev.first_frame, ev.second_frame)
            item = Item(ov, (ev.second_frame,), clock.at(ev.second_frame, ev.ts_ns))
            if len(c.transcript.items) < self.config.max_events:
                c.transcript.items.append(item)
            else:
                self._bounded(c, ov, item.ts_ns, item)
        elif isinstance(ev, SentAfterReset):
            c = convs.get(ev.stream)
            if c is None:
                continue
            r = c.transcript.resets.get(ev.side)
            if r is not None and r.frame == ev.reset_frame:
                c.transcript.resets[ev.side] = replace(r, went_on=WentOn(
                    ev.kind, ev.frame, ev.last_frame, ev.segments))
            continue
        elif isinstance(ev, FlowClosed):
            c = convs.pop(ev.stream, None)
            if c is None:
                continue
            if c.emitted:
                if c.open_tls is not None:
                    # (its end is known now: the plaintext-retry rule reads it)
                    done_tls = dict(c.open_tls, ended_ns=c.transcript.last_ts_ns)
                    if ev.reason == "end":
                        done_tls["_open_at_end"] = True
                    self._fallback.observe(done_tls)
                continue
            _carry(c.transcript, ev)
            if stepped:
                self._continuous_ends(c.transcript)
            if _attempt_only(c.transcript, clock):
                # A scan or probe (SYN answered by RST, connect and close): no SMTP
                # conversation, only a connection attempt, counted in the summary.
                self._summary.add_attempt()
            elif self._is_smtp(c):
                self._emit(self._conclude(c, open_at_end=ev.reason == "end"), c, done)
            continue
        else:
            continue
        if early and not c.emitted and self._decided(c) and self._is_smtp(c):
            # Judged before its FlowClosed: which sides sent segments so far, as the close
            # will say, so that a side seen only by its acknowledgements is not taken for
            # absent, and their acknowledgements so far. A flow already closed (its
            # FlowClosed later in these events, or held by a reset watch) is judged at that
            # close, with what it carries.
            # (and how far each side acknowledged the other, when, and resent, so far, as the
            # close will say: the rules of answers lost on the path read them)
            so_far = self.reassembler.so_far(c.info.stream)
            if so_far is not None:
                _carry(c.transcript, so_far)
                if stepped:
                    self._continuous_ends(c.transcript)
                self._emit(self._conclude(c, closed=False), c, done)
    if self._held:
        self._release(done)
    return done


class Analyzer(_HotState):
    """Feed TCP segments in capture order; get the conversations' verdicts (contract dicts)."""

    def __init__(self, config: AnalysisConfig | None = None, *, file: str = "") -> None:
        self.config = cfg = config or AnalysisConfig()
        self.file = file
        self.reassembler = TcpReassembler(ReassemblyConfig(
            smtp_ports=cfg.ports, detect_by_content=cfg.detect_by_content, max_flows=cfg.max_flows,
            max_tracked=cfg.max_tracked, idle_timeout_ns=cfg.idle_timeout_ns,
            closed_grace_ns=cfg.closed_grace_ns, partition=cfg.partition))
        # (the settings read for every segment or event: ``_HotState``)
        self._ports = cfg.ports
        self._early = cfg.early
        self._max_events = cfg.max_events
        self._convs: dict[int, _Conv] = {}
        self._fallback = FallbackTracker(cfg.fallback_window_ns)
        #: live mode: settled plaintext conversations that may be the retry after an earlier
        #: conversation between the same hosts not judged yet (``_waits``), in order
        self._held: list[tuple[_Conv, dict[str, Any]]] = []
        self._summary = Summary()
        self.packets = 0
        #: what the capture lost (live: the kernel's drop counters), newest last, bounded
        self.losses: list[Loss] = []
        #: the capture's snap length as its frames show it: the captured length of the first
        #: frame found cut (``saw_cut``, called by the decoder); 0 while none was
        self.snaplen = 0
        #: the capture's timestamps made continuous across a clock that steps back
        #: (``analysis.clock``): the TCP layer keeps the captured times, the SMTP core and the
        #: verdicts read the continuous ones, the output the captured ones
        self.clock = CaptureClock()

    # ------------------------------------------------------------------ feeding

    feed = _feed

    def tick(self, now_ns: int) -> list[dict[str, Any]]:
        """Close flows idle since before ``now_ns - idle_timeout`` (live mode)."""
        out = self.reassembler.tick(now_ns)
        return self._route(out) if out else []

    def finish(self) -> list[dict[str, Any]]:
        return self._route(self.reassembler.finish())

    def saw_cut(self, caplen: int) -> None:
        """A frame of the capture was cut by the snap length after ``caplen`` bytes (the
        decoder's ``on_cut``; called before the frame's segment is fed)."""
        if not self.snaplen:
            self.snaplen = caplen

    def note_loss(self, after_ns: int, until_ns: int, dropped: int) -> None:
        """The capture lost ``dropped`` packets between these capture times (live mode):
        conversations open then get a ``capture-loss`` finding and are not blamed on bytes
        after it (``analysis.loss``)."""
        off = self.clock.offset
        self.losses.append(Loss(after_ns + off, until_ns + off, dropped))
        if len(self.losses) > 4096:          # merge the oldest half into one window
            old = self.losses[:2048]
            self.losses[:2048] = [Loss(old[0].after_ns, old[-1].until_ns,
                                       sum(x.dropped for x in old))]

    def summary(self) -> dict[str, Any]:
        s = self._summary.as_dict()
        s["packets"] = self.packets
        s["reassembly"] = stats = self.reassembler.stats.as_dict()
        s["snaplen_cut_frames"] = stats["snaplen_cut_segments"]
        if self.snaplen and stats["snaplen_cut_segments"]:
            s["snaplen"] = self.snaplen
        return s

    # ------------------------------------------------------------------ routing

    _route = _route

    def _emit(self, conv: dict[str, Any], c: _Conv, done: list[dict[str, Any]]) -> None:
        """Hand out a verdict. Live mode posts it (the retry rule, the summary) as it is settled,
        except a plaintext conversation whose client skipped STARTTLS while an earlier
        conversation between the same hosts is still to be judged: that one's failure would
        make it a tls-fallback, as the whole capture reads it, so it waits for it. Each verdict
        handed out may release those waiting."""
        if not self.config.early:
            done.append(conv)
            return
        if self._waits(c, conv):
            self._held.append((c, conv))
            return
        self._post_now(c, conv)
        done.append(conv)
        self._release(done)

    def _release(self, done: list[dict[str, Any]]) -> None:
        """Hand out the held verdicts nothing earlier waits for any more (a verdict handed out,
        or a conversation forgotten unjudged: an attempt, not SMTP)."""
        while self._held:
            ready = [(h, v) for h, v in self._held if not self._waits(h, v)]
            if not ready:
                break
            for h, v in ready:
                self._held.remove((h, v))
                self._post_now(h, v)
                done.append(v)

    def _post_now(self, c: _Conv, conv: dict[str, Any]) -> None:
        if c.open_tls is not None:
            self._summary.add(conv)     # (the retry rule hears of it at its close)
            _captured_times(conv)
        else:
            self.post(conv)

    def _waits(self, c: _Conv, conv: dict[str, Any]) -> bool:
        if conv["outcome"] != "plaintext" or conv["reason"] not in SKIPPED:
            return False
        ci, si, t0 = c.info.client.ip, c.info.server.ip, c.info.first_ts_ns
        return any(o is not c and not o.emitted and o.info.client.ip == ci and o.info.server.ip == si
                   and o.info.first_ts_ns < t0 for o in self._convs.values())

    def _record(self, c: _Conv, evs: list[Any]) -> None:
        if evs:
            _record_events(self, c, evs)

    def _bounded(self, c: _Conv, ev: Any, ts: int, ready: Item | None = None) -> None:
        """Past the per-conversation bound: keep ``item`` (of ``ev``) or count it
        (``analysis.transcript``: what a verdict may still turn on is kept up to twice the
        bound, what it cannot is dropped, and the first event that may decide it dropped past
        twice the bound, unless the verdict was settled before it, leaves it incomplete).
        ``ready``: the item, when it is not one of the SMTP core's events."""
        t = c.transcript

        def item() -> Item:
            return ready if ready is not None else make_item(ev, c.index[ev.span.side], ts)

        b = c.bound
        if b is None:
            b = c.bound = EventBound(self.config.max_events, t.items)
        kind = b.classify(ev)
        if b.keep(kind, len(t.items)):
            t.items.append(item())
            return
        t.dropped_events += 1
        if t.dropped_events == 1:
            frames = item().frames
            b.dropped_frame = frames[0] if frames else None
        if kind is not INERT and b.lost is None and not b.settled:
            if settled(t, self._judge):
                b.settled = True
            else:
                frames = item().frames
                b.lost, b.lost_frame = ev, frames[0] if frames else None

    def _is_smtp(self, c: _Conv) -> bool:
        """A conversation found by its content (not by port) must show SMTP itself: a 220
        greeting is also FTP's, so the client must use an SMTP-only command, or, if it sent
        nothing, the greeting must speak of (E)SMTP or mail."""
        info = c.info
        ports = self.config.ports
        if info.server.port in ports or info.client.port in ports:
            return True
        greeting = None
        for it in c.transcript.items:
            ev = it.event
            if isinstance(ev, Command):
                if ev.verb in _SMTP_ONLY_VERBS:
                    return True
            elif isinstance(ev, Reply) and ev.greeting and greeting is None:
                greeting = " ".join(ln.text for ln in ev.lines).upper()
            elif isinstance(ev, ImplicitTls):
                return False
        has_commands = any(isinstance(it.event, Command) for it in c.transcript.items)
        return not has_commands and greeting is not None and (
            "SMTP" in greeting or "MAIL" in greeting)

    def _decided(self, c: _Conv) -> bool:
        """Live mode: is the verdict already settled: TLS up (the client's application data), or
        the server's acceptance of the client's MAIL or its answer to QUIT read (no STARTTLS, or
        STARTTLS refused or unanswered, then mail in the clear or the client leaving)?"""
        items = c.transcript.items
        if not items:
            return False
        ev = items[-1].event
        # A refused STARTTLS is settled by the client's next step, MAIL (plaintext) or QUIT,
        # once the server has answered it: until then the server's stream may still show a
        # hole before that answer (its answer to STARTTLS lost by the capture, which only its
        # later bytes reveal) or the end of a reply the client did not wait for (a MAIL sent
        # while the EHLO reply was still coming), and the verdict offline reads from them.
        s = settles(ev)
        if s is not None:
            return s
        return self._judge(c.transcript)["reason"] in TLS_REASONS

    def _conclude(self, c: _Conv, *, closed: bool = True, open_at_end: bool = False) -> dict[str, Any]:
        """The verdict of ``c``; ``closed`` False when live mode judges it before its flow
        closed (its end not known yet), ``open_at_end`` when the capture ended with it open
        (its end, and ``ended_ns``, are the capture's)."""
        c.emitted = True
        conv = self._judge(c.transcript)
        if open_at_end and conv["outcome"] == "tls":
            # (for the plaintext-retry rule: a TLS delivery the capture ends inside cancels no
            # earlier failure; analysis/fallback.py; not in the output: a private key)
            conv["_open_at_end"] = True
        apply_limit(conv, c.transcript, c.bound)
        if self.losses:
            apply_losses(conv, c.transcript, self.losses)
        raw = conv.pop("_raw_ehlo_reply", b"")
        # (the lists of EHLOs sent before the acted one: a client may keep an offer of one, so
        # they are part of the memo's key)
        earlier = conv.pop("_raw_earlier_ehlo_replies", ())
        if raw:
            conv["clients"] = {k: list(v) for k, v in _predict(
                _prediction_key(raw), tuple([_prediction_key(e) for e in earlier])).items()}
        elif conv.get("_masked_banner_helo"):
            conv["clients"] = predict_banner()
        _add_references(conv)
        if self.config.keep_exchange:
            # (imported here: only explain and the HTML report keep the exchange)
            from pcapsmtp.analysis.exchange import build_exchange
            conv["_exchange"] = build_exchange(c.transcript, conv)
            conv["_raw_ehlo_reply_kept"] = raw
            conv["_raw_earlier_ehlo_replies_kept"] = earlier
        else:
            conv.pop("_line_marks", None)
            conv.pop("_evidence_at", None)
            conv.pop("_masked_banner_helo", None)   # (read above, and by explain, which keeps them)
        if self.config.early:
            if not closed and conv["outcome"] == "tls":
                # a TLS conversation's end decides whether a later plaintext one is a retry
                # (analysis/fallback.py): the tracker hears of it when its flow closes
                c.open_tls = {k: conv[k] for k in ("client", "server", "reason", "outcome", "stream",
                                                    "started_ns", "file", "findings", "starttls")
                              if k in conv}
        return conv

    def post(self, conv: dict[str, Any]) -> None:
        """Cross-conversation steps, in order of first frame (offline) or of decision (live):
        the plaintext retry after a failure, and the per-server summary. They read the
        conversation's times on the continuous timeline (``analysis.clock``); the output then
        gets the captured ones back."""
        self._fallback.observe(conv)
        self._summary.add(conv)
        _captured_times(conv)

    def _judge(self, t: Transcript) -> dict[str, Any]:
        """``judge(t)``; across a backward step of the capture's clock, ``judge_clocked``."""
        clock = self.clock
        if not clock.steps:
            return judge(t)
        conv = judge_clocked(t, clock.within(t))
        # (the times the capture shows: continuous ones moved forward after each step)
        started, ended = conv.get("started_ns"), conv.get("ended_ns")
        if started is not None and ended is not None:
            conv["_captured_ns"] = (started - clock.offset_before(started),
                                    ended - clock.offset_before(ended))
        return conv

    def _continuous_ends(self, t: Transcript) -> None:
        """Each side's last segment time on the continuous timeline (its frame is not known), and
        the time of the client's acknowledgement that last advanced (its frame is)."""
        low = {_CLIENT: t.first_ts_ns, _SERVER: t.first_ts_ns}
        for it in t.items:
            if it.ts_ns and it.frames:
                side = getattr(it.event, "side", None)
                if side in low:
                    low[side] = max(low[side], it.ts_ns)
        t.client_last_ns = self.clock.last_of(t.client_last_ns, low[_CLIENT])
        t.server_last_ns = self.clock.last_of(t.server_last_ns, low[_SERVER])
        if t.server_acked_ns is not None and t.server_acked_frame:
            t.server_acked_ns = self.clock.at(t.server_acked_frame, t.server_acked_ns)


def _data(self: Analyzer, convs: dict[int, _Conv], ev: StreamData, clock: CaptureClock,
          stepped: bool) -> _Conv | None:
    """``Analyzer._route``'s work for a ``StreamData`` (once per segment with new bytes): for a
    conversation followed (in ``convs``, returned; None if not), its frame indexed, the
    transcript's byte count and time moved on, the bytes to the session and its events recorded.
    Part of ``_route``, out of the class so that the compiled build types its locals
    (analyzer.pxd: the conversations' dictionary, the event's, the conversation's, the index's and
    the session's fields read as C fields, ``receive`` a C call)."""
    c = convs.get(ev.stream)
    if c is None:
        return None
    side = ev.side
    idx = c.index[side]
    # (``idx.add(ev.offset, ev.frame)`` written out: once per segment)
    frame = ev.frame
    offset = ev.offset
    offs = idx.offs
    frames = idx.frames
    if not (frames and frames[-1] == frame and offs[-1] <= offset):
        offs.append(offset)
        frames.append(frame)
    t = c.transcript
    data = ev.data
    if side is _CLIENT:
        t.client_bytes += len(data)
    else:
        t.server_bytes += len(data)
    ts = ev.ts_ns
    if stepped:
        ts = clock.at(frame, ts)
    t.last_ts_ns = ts
    session = c.session
    evs = session.receive(side, data, ts, ev.ack, ev.ack_age)
    if evs:
        _record_events(self, c, evs)
    if len(offs) > 256:
        idx.trim(session.low_water(side))
    return c


def _record_events(self: Analyzer, c: _Conv, evs: list[Any]) -> None:
    """``Analyzer._record``: the session's events ``evs`` (not empty) as ``c``'s transcript items,
    each with its frames (``make_item``), past the per-conversation bound through
    ``Analyzer._bounded``. Out of the class so that the compiled build types its locals
    (analyzer.pxd: the conversation's fields and each event's ``Span`` read as C fields)."""
    t = c.transcript
    items = t.items
    bound = self._max_events
    index = c.index
    ts = t.last_ts_ns
    if len(items) + len(evs) <= bound:
        # the common case: under the bound, every event is kept
        for ev in evs:
            sp = ev.span
            items.append(make_item(ev, index[sp.side], ts))
        return
    for ev in evs:
        if len(items) < bound:
            sp = ev.span
            items.append(make_item(ev, index[sp.side], ts))
        else:
            self._bounded(c, ev, ts)


def _carry(t: Transcript, ev: FlowClosed) -> None:
    """What a conversation's ``FlowClosed`` tells its transcript (at the close, or what it would
    tell so far, ``TcpReassembler.so_far``, for an early verdict): each side's last segment time,
    how far each side acknowledged the other and when the client's acknowledgement last advanced,
    and how far each side sent bytes again."""
    t.client_last_ns, t.server_last_ns = ev.client_last_ns, ev.server_last_ns
    t.client_acked, t.server_acked = ev.client_acked, ev.server_acked
    t.server_acked_ns, t.server_acked_fin = ev.server_acked_ns, ev.server_acked_fin
    t.server_acked_frame = ev.server_acked_frame
    t.client_resent, t.server_resent = ev.client_resent, ev.server_resent


def _captured_times(conv: dict[str, Any]) -> None:
    """The output's ``started_ns`` and ``ended_ns``: the times the capture stamps, put back once
    the cross-conversation steps have read the continuous ones (``Analyzer._judge``)."""
    captured = conv.pop("_captured_ns", None)
    if captured is not None:
        conv["started_ns"], conv["ended_ns"] = captured


# The same server sends the same EHLO reply to every client: predict once per distinct reply.
_predict = lru_cache(maxsize=4096)(predict)


def _prediction_key(raw: bytes) -> bytes:
    """The reply as the clients' rules decide on it (``predict`` returns only which clients
    see STARTTLS, miss it or fail, not why), without what varies per client or per server
    name: the greeting text after the domain on line one ("Hello client.example
    [192.0.2.1]") is reduced to a placeholder, and so is the domain itself when it is a
    plain name or address literal (no rule reads it: it is only ever quoted when line one
    is malformed or mentions STARTTLS). Line one is kept whole when it mentions STARTTLS (a
    whole-reply matcher such as Nodemailer's could see it there; the lines after it are
    reduced all the same). Keyword lines other than STARTTLS keep only their code, separator
    and line ending, so servers that differ only in SIZE limits or extension sets share a
    cache entry."""
    nl = raw.find(b"\n")
    first, rest = (raw, b"") if nl < 0 else (raw[:nl + 1], raw[nl + 1:])
    if len(first) < 5 or first[3:4] not in (b"-", b" ") or raw.count(b"\r") != raw.count(b"\r\n"):
        # No reduction: a first line without a separator after its code, and a lone CR, which
        # ends a line for some clients (Java's LineInputStream) and not for others, would make
        # the line-by-line reductions below wrong.
        return raw
    end = b"\r\n" if first.endswith(b"\r\n") else (b"\n" if first.endswith(b"\n") else b"")
    if b"STARTTLS" not in first.upper():
        body = first[4:len(first) - len(end)]
        word, _, more = body.partition(b" ")
        if _PLAIN_DOMAIN.fullmatch(word):
            word = b"d.example"
        first = first[:4] + word + (b" x" if more else b"") + end
    if rest:
        # Line by line (``_PLAIN_TEXT`` never reaches past a line's LF), each line's reduction
        # looked up (``_plain_line``): servers send the same keyword lines to every client, in
        # whatever order, and a regex over the whole reply cost more than all the rest of it.
        lines = rest.split(b"\n")
        last = lines.pop()              # (after the last LF: b"" or a line without its end)
        if lines:
            memo = _PLAIN_LINES
            red = []
            for ln in lines:
                r = memo.get(ln)
                if r is None:
                    r = _plain_line(ln)
                red.append(r)
            if end == b"\r\n":
                red = _one_copy_of_runs(red)
            rest = b"\n".join(red) + b"\n" + last
    return first + rest


#: ``_plain_line``'s results, by line (bounded: emptied when full; long lines not kept)
_PLAIN_LINES: dict[bytes, bytes] = {}


def _plain_line(ln: bytes) -> bytes:
    """``ln`` (a line of the reply after line one, without its LF) with ``_PLAIN_TEXT``'s
    reduction, kept in ``_PLAIN_LINES``."""
    r = _PLAIN_TEXT.sub(b"K", ln + b"\n")[:-1]
    if len(ln) <= 256:
        if len(_PLAIN_LINES) >= 4096:
            _PLAIN_LINES.clear()
        _PLAIN_LINES[ln] = r
    return r


def _one_copy_of_runs(red: list[bytes]) -> list[bytes]:
    """The reduced lines (each ended by an LF, not included) with each run of identical
    ``_K_LINE``s that starts the reply's rest or follows a line ended by CRLF kept once
    (the run as it was: the line before a later run is the last copy of an earlier one).
    Line by line, what ``re.sub(rb"(?:^|(?<=\\r\\n))([0-9]{3}[- ]K\\r\\n)\\1+", rb"\\1", rest)``
    does (tests/test_prediction_key.py compares them)."""
    out = []
    n = len(red)
    i = 0
    while i < n:
        r = red[i]
        out.append(r)
        j = i + 1
        if j < n and red[j] == r and (i == 0 or red[i - 1].endswith(b"\r")) \
                and _K_LINE.fullmatch(r):
            j += 1
            while j < n and red[j] == r:
                j += 1
        i = j
    return out


#: A keyword line as servers write it ("250-SIZE 52428800"), or a server name where a
#: keyword would be (the line after a first line that holds STARTTLS): code, separator, a
#: word of letters, digits, '-' and '.', and single-space separated printable parameters,
#: LF or CRLF. Every rule accepts such a line, and none reads its text unless it contains
#: STARTTLS. ``_PLAIN_TEXT`` finds the text of such a line (after its code and separator,
#: before its line ending) that does not contain STARTTLS in any case: what the key reduces to
#: "K". The code, separator and line ending are looked at, not matched, so that a literal
#: replaces the text (no Python call per line).
_PLAIN_TEXT = re.compile(rb"(?<=^[0-9]{3}[- ])(?![\x20-\x7e]*?(?i:STARTTLS))"
                         rb"[A-Za-z0-9][A-Za-z0-9.-]*(?: [\x21-\x7e]+)*(?=\r?\n)", re.MULTILINE)
#: A domain or address literal as servers write it on line one: nothing a rule could read
#: as a keyword (a keyword has no dot) and nothing a malformed-line check could trip on.
_PLAIN_DOMAIN = re.compile(rb"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\.?|\[[0-9A-Fa-f:.]+\]|"
                           rb"\[IPv6:[0-9A-Fa-f:.]+\]")
#: A reduced keyword line ending in CRLF (without its LF). A run of identical ones, after a
#: line ending in CRLF, is kept once (``_one_copy_of_runs``): every
#: rule reads each copy as a line of its own (CRLF ends a line for all of them; a copy after a
#: bare LF would be part of the line before for a CRLF-only client) and treats a line equal to
#: the one before it as it treated that one: kept again (only its line number differs, which
#: only the why text shows), stray after the end, or never reached because the first copy
#: decided. So one copy predicts the same. Servers differ mostly in how many extensions they
#: list: without this, each count before and after STARTTLS was its own cache entry (282
#: entries for the 4,015 conversations of the relay benchmark file, 6 with it).
_K_LINE = re.compile(rb"[0-9]{3}[- ]K\r")


def _add_references(conv: dict[str, Any]) -> None:
    """Community ID and Wireshark display filters for the conversation and each finding."""
    cl, sv = conv["client"], conv["server"]
    conv["community_id"] = community_id(cl["ip"], cl["port"], sv["ip"], sv["port"])
    conv["wireshark_filter"] = conversation_filter(cl["ip"], cl["port"], sv["ip"], sv["port"])
    frames = set()
    for f in conv["findings"]:
        if f.get("frame"):
            f["wireshark_filter"] = f"frame.number == {f['frame']}"
            frames.add(f["frame"])
    if conv.get("evidence_frame"):
        frames.add(conv["evidence_frame"])
    conv["evidence_filter"] = frames_filter(frames) if frames else None


def analyze_path(path: str, config: AnalysisConfig | None = None) -> list[dict[str, Any]]:
    """Every SMTP conversation of a capture file, as the output contract's dicts. Unlike
    ``analyze_file`` it raises the ``CaptureError`` of a damaged file."""
    res = analyze_file(path, config)
    if res.error is not None:
        raise res.error
    return res.conversations


def snaplen_note(summary: dict[str, Any]) -> str | None:
    """The one note for a capture (file or rotated set) whose snap length cut frames of SMTP
    conversations, from its summary (so that a merged parallel run says the same)."""
    k = summary.get("snaplen_cut_frames", 0)
    if not k:
        return None
    snap = summary.get("snaplen")
    how = (f"keeps only the first {snap} bytes of each frame (snap length {snap})" if snap
           else "cuts frames short (its snap length)")
    return (f"the capture {how}: {k} frame(s) of SMTP conversations were cut, and no verdict "
            "rests on the bytes cut off; capture again with `tcpdump -s 0`")


@dataclass
class FileResult:
    """What one capture file (or one rotated set) gave: its conversations (in order of first
    frame), the summary, notes from decoding, and the error that stopped reading early, if
    any. ``pieces``: for a rotated set, ``(number of its first frame in the set, path)`` of
    each file, in order (frame numbers are the set's until ``engine.rotated.localise``);
    ``posted``: the cross-conversation steps (tls-fallback, summary) have run."""

    path: str
    conversations: list[dict[str, Any]]
    summary: dict[str, Any]
    notes: list[str]
    error: Exception | None = None
    pieces: list[tuple[int, str]] = field(default_factory=list)
    posted: bool = True


def analyze_file(path: str, config: AnalysisConfig | None = None, *, engine: str = "scapy",
                 stdin: Any = None, progress: Any = None, fast: bool = True,
                 emit: Any = None, post: bool = True) -> FileResult:
    """Analyse one capture. A damaged file still gives every conversation decided before the
    damage (the reassembler is flushed); the error is returned, not raised.

    ``fast`` (file engine): the fused loop of ``pcapsmtp.engine.fileloop``, which builds a segment
    only for what the reassembler needs; ``False`` decodes every frame into a ``TcpSegment``
    (the reference the fused loop is tested against; both give the same result).

    ``emit(conv)``: called for each conversation, in the same order and with the same dict
    as ``FileResult.conversations`` would hold, as soon as no earlier conversation can still
    come; the result's list is then empty. Memory then stays flat with the file's length
    (as long as conversations end: a conversation still undecided holds back the later
    ones).

    ``post=False`` (a parallel worker): the conversations are sorted but the
    cross-conversation steps are left to ``engine.partition.merge``."""
    return analyze_files([path], config, engine=engine, stdin=stdin, progress=progress,
                         fast=fast, emit=emit, post=post)


def analyze_files(paths: list[str], config: AnalysisConfig | None = None, *,
                  engine: str = "scapy", stdin: Any = None, progress: Any = None,
                  fast: bool = True, emit: Any = None, post: bool = True) -> FileResult:
    """``analyze_file`` over one file, or over the consecutive pieces of one rotated capture
    (``paths`` in capture order, checked by ``engine.rotated.order_pieces``): one analyzer
    reads them in turn, numbering frames through the whole set; with ``post`` the result's
    frame references are then translated back to (file, frame number in it).

    One file in a capture format pcapsmtp's reader does not read but Wireshark does (Solaris
    snoop, Microsoft Network Monitor, ...: ``ForeignCapture``, found before any record) is read
    again with tshark when tshark is installed, with a note saying so."""
    import shutil
    from pcapsmtp.errors import ForeignCapture

    with _collector_for_the_run():
        res = _analyze_files(paths, config, engine=engine, stdin=stdin, progress=progress,
                             fast=fast, emit=emit, post=post)
        exc = res.error
        if isinstance(exc, ForeignCapture) and engine != "tshark" and len(paths) == 1 \
                and paths[0] != "-" and not res.conversations \
                and shutil.which("tshark") is not None:
            res = _analyze_files(paths, config, engine="tshark", progress=progress, fast=fast,
                                 emit=emit, post=post)
            res.notes.insert(0, f"a {exc.kind} capture, not pcap or pcapng: read with tshark "
                                "(--engine tshark)")
    return res


#: the cyclic collector's first threshold during a run (Python's default is 700)
RUN_GC_THRESHOLD = 50_000


@contextmanager
def _collector_for_the_run() -> Iterator[None]:
    """The cyclic garbage collector, tuned for the run and put back as it was after it.

    A conversation's objects (segments' events, replies, transcript items) live for the
    conversation, a few hundred milliseconds of capture time: with the default threshold
    (a young collection every 700 net allocations) most of them survive a young collection
    and one or two of the middle generation, traversed each time, before they die, and the
    objects of the imports (about 18,000) are traversed by every collection of the oldest
    one. The analysis makes almost no cyclic garbage (a few hundred objects on the benchmark
    files), so a young collection every ``RUN_GC_THRESHOLD`` net allocations frees the same
    objects, later, at a small fraction of the cost, and the objects alive before the run are
    frozen (``gc.freeze``) for it: about 3 % of the instructions on the relay benchmark file
    (docs/performance.md). Nothing is changed when the collector is off or a threshold is
    already higher; when the caller froze objects itself, nothing is frozen or unfrozen (the
    threshold is still raised)."""
    old = gc.get_threshold()
    if not gc.isenabled() or old[0] == 0 or old[0] >= RUN_GC_THRESHOLD:
        yield
        return
    freeze = gc.get_freeze_count() == 0
    try:
        if freeze:
            gc.freeze()
        gc.set_threshold(RUN_GC_THRESHOLD, *old[1:])
        yield
    finally:
        gc.set_threshold(*old)
        if freeze:
            gc.unfreeze()


def _analyze_files(paths: list[str], config: AnalysisConfig | None = None, *,
                   engine: str = "scapy", stdin: Any = None, progress: Any = None,
                   fast: bool = True, emit: Any = None, post: bool = True) -> FileResult:
    from pcapsmtp.errors import CaptureError
    from pcapsmtp.engine.fileloop import OrderedEmitter

    rotated = len(paths) > 1
    path = paths[0]
    an = Analyzer(config, file=path)
    notes: list[str] = []
    done: list[dict[str, Any]] = []
    error: Exception | None = None
    frames = 0
    pieces: list[tuple[int, str]] = []
    locate: Any = None
    if rotated:
        from pcapsmtp.engine.rotated import localiser
        if engine == "tshark":
            from pcapsmtp.errors import UsageError
            raise UsageError("--rotated reads the files with pcapsmtp's own reader; "
                             "--engine tshark is not supported with it")
    if emit is not None and post and rotated:
        user_emit = emit

        def emit(conv: dict[str, Any]) -> None:
            user_emit(locate(conv))
    emitter = OrderedEmitter(an, emit) if emit is not None and post else None
    if engine == "tshark":
        from pcapsmtp.capture.tshark import TsharkSource
        src = TsharkSource(path)
        src.on_cut = an.saw_cut
        segments: Iterable[TcpSegment] = src.segments()
    elif fast:
        from pcapsmtp.capture.decode import Decoder
        from pcapsmtp.engine.fileloop import FusedLoop
        dec = Decoder()
        dec.on_cut = an.saw_cut
        loop = FusedLoop(an, dec, done, emitter)
        for p in paths:
            pieces.append((frames + 1, p))
            if rotated:
                locate = localiser(pieces)
            loop.frame_base = frames
            try:
                loop.run(p, stdin=stdin, progress=progress)
            except CaptureError as exc:
                error = exc
            frames = loop.frames
            if error is not None:
                break
        segments = ()
    else:
        from pcapsmtp.capture.decode import Decoder
        from pcapsmtp.capture.pcapfile import iter_records
        dec = Decoder()
        dec.on_cut = an.saw_cut
        decode_raw = dec.decode_raw

        def _segs() -> Iterator[TcpSegment]:
            nonlocal frames, locate
            for p in paths:
                base = frames
                pieces.append((base + 1, p))
                if rotated:
                    locate = localiser(pieces)
                number = 0
                try:
                    for number, ts_ns, linktype, data, wirelen, off, _if in iter_records(
                            p, stdin=stdin):
                        if progress is not None and not number & 0xFFFF:
                            progress(number, off)
                        seg = decode_raw(linktype, data, wirelen, base + number, ts_ns)
                        if seg is not None:
                            yield seg
                finally:
                    frames = base + number
        segments = _segs()
    feed = an.feed
    try:
        for seg in segments:
            r = feed(seg)
            if r:
                done.extend(r)
                if emitter is not None:
                    emitter.check(done)
    except CaptureError as exc:
        error = exc
    done.extend(an.finish())
    if emitter is not None:
        emitter.finish(done)
    else:
        done.sort(key=lambda c: (c["first_frame"], c["stream"]))
        if post and not an.config.early:
            # (live mode's analyzer posted each verdict as it was settled: Analyzer._emit)
            for conv in done:
                an.post(conv)
            if rotated:
                done[:] = [locate(conv) for conv in done]
    summary = an.summary()
    if engine != "tshark":
        summary["frames"] = frames
        notes.extend(dec.notes)
    else:
        notes.extend(getattr(src, "notes", []))
    cut = snaplen_note(summary)
    if cut is not None:
        notes.append(cut)
    return FileResult(path, done, summary, notes, error, pieces if rotated else [], post)
