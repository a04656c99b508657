"""``SmtpSession``: the sans-I/O SMTP conversation parser.

Push each side's bytes in capture order with ``receive``; report holes with ``receive_gap``
and the end of a side with ``receive_eof``. Each call returns the events it completed. The
session never raises on traffic: whatever is odd becomes an ``Anomaly``.

How the sides are followed:
- Client bytes are command lines, except DATA content (from the 354 reply to the end-of-data
  line), BDAT chunks (by their announced size), SASL lines after a 334 (never kept), and TLS.
- After DATA or STARTTLS the client's further bytes are held (bounded) until the server's
  reply is seen in capture order: it decides whether they are a body, TLS, commands, or
  injected plaintext.
- Server bytes are reply lines grouped into replies (``ddd-`` continues, anything else ends)
  and paired as the client pairs them: each reply with the client's oldest unanswered
  command. A reply the server sends while no command awaits one (the rest of an EHLO reply
  that ended early, a second greeting line) waits in the client's buffer and answers the
  client's *next* command; every later reply is then one behind. Such a reply is emitted
  after that command, with ``answers`` (the client's pairing) and ``server_answers`` (what the
  server meant). The client's pairing decides what the client's next bytes are (a body after
  354, TLS after 220, commands otherwise); the server's decides what the server's are.
- After client bytes were lost, a reply the server began before the client's next visible
  command (its first byte before that command, in the causal order both sides arrive in)
  cannot answer it, however late the reply ends: it answers a command lost in the hole
  (``Reply.lost_command``; no visible command reads it), and the next command gets the reply
  after it.
- A conversation whose start is not in the capture (``late_start``) has no greeting: the
  first reply seen answers a command before the capture (unless it is a 220 after the
  client's captured commands, none a STARTTLS: a 220 answers no other, and that one is the
  last line of a greeting the client did not wait for; or its first line, of a greeting's
  code, came before the client's first captured command: the server answers only what it
  has read, and that reply is the greeting the client did not wait for). Each side's first bytes are TLS
  (``TlsInProgress``, then the TLS records), or SMTP text from the first line that looks
  like a reply or a command. The same holds after a hole: binary bytes never become a
  banner, a reply or a command, and a TLS record that starts cleanly where a line would begin
  after a hole is TLS from there on.
- What shows that a 220 answered STARTTLS and TLS began, when the capture lacks a side's part
  of it: the server's TLS right after a 220 that followed its greeting, or the client's
  ClientHello as its first bytes, with nothing of the client before but holes (a capture of the
  server's direction, a tap of the client's leg that started late); the client's ClientHello
  after its STARTTLS with the server's answer not in the capture (a capture of the client's
  direction, with or without the server's SYN-ACK); after a hole of the client's bytes that
  followed STARTTLS, bytes that are no text (the rest of the TLS it started, never plaintext
  injected after STARTTLS); with the server's 220 lost in a hole too, the server's TLS after it
  (``_tls_without_220``) leaves the client's bytes after its hole the TLS it may have begun
  there, not bytes owed after a 220 (text included, when that TLS is a ServerHello: it
  answers only a ClientHello). A 220 after the client's EHLO and STARTTLS is no greeting
  when the server's first bytes were lost in a hole the client acknowledged before its first
  command: the greeting was in it (``_greeting_in_hole``).
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, replace

from pcapsmtp.model import CLIENT as _CLIENT
from pcapsmtp.model import SERVER as _SERVER
from pcapsmtp.model import Side, Span
from pcapsmtp.smtp.events import (
    EOM_VERB, SASL_VERB, WAITED_NS, Anomaly, AnomalyCode, AuthExchange, Command, Event, ImplicitTls,
    MessageBody, PlaintextAfterStartTls, Reply, ReplyLine, StreamEnded, StreamGap,
    TlsInProgress,
)
from pcapsmtp.smtp.lines import Line, LineBuffer
from pcapsmtp.smtp.tls import HANDSHAKE_NAMES, TlsObserver, sniff_tls

__all__ = ["SmtpSession", "SessionConfig", "decode_text"]

_END_OF_DATA = re.compile(rb"\n\.\r?\n")
_VERB = re.compile(rb"[A-Za-z]{3,12}(?=[ \r\n]|$)")
_SMTP_COMMAND_START = re.compile(rb"(?i)(EHLO|HELO|LHLO|MAIL|RCPT|DATA|RSET|NOOP|QUIT|AUTH|VRFY|"
                                 rb"EXPN|HELP|STARTTLS|BDAT)\b")
_REPLY_START = re.compile(rb"[2-5][0-9][0-9](?:[ -]|\r?\n)")
_EOM = EOM_VERB    # the pseudo-command that the reply after a message body answers
_SASL = SASL_VERB  # the pseudo-command answered after a SASL line


@dataclass(frozen=True, slots=True)
class SessionConfig:
    max_line_length: int = 4096      #: longer lines are cut (RFC 5321 limits are 512/1000)
    max_pending_commands: int = 1000  #: pipelined commands awaiting a reply
    max_reply_lines: int = 1000      #: lines kept per reply (the rest are counted)
    max_held_bytes: int = 65536      #: client bytes held while a DATA/STARTTLS reply is due


# What a side's next bytes are (``_SideState.mode``). Plain string constants of the module,
# compared by identity, not an ``Enum`` nor a class's attributes: in Python 3.11 every lookup of
# an enum member (``EnumType.__getattr__``) costs about five times a class attribute's, and a
# class attribute (``type_getattro``) several times a module global's, and the session reads the
# mode several times per segment and per line (the compiled build reads them as C globals:
# session.pxd).
_LINES = "lines"                # command lines (client) or reply lines (server)
_HOLD = "hold"                  # client: waiting for the reply to DATA or STARTTLS
_BODY = "body"                  # client: DATA content
_BDAT = "bdat"                  # client: a BDAT chunk
_SASL_LINE = "sasl"             # client: next line is a SASL response
_TLS_EXPECTED = "tls-expected"  # TLS is due (after a 220 to STARTTLS): not judged yet
_TLS = "tls"                    # TLS records (``_SideState.tls``)
_STOPPED = "stopped"            # nothing more is read (bytes counted only)


def decode_text(raw: bytes) -> str:
    """Bytes from the wire as text for display: UTF-8 where valid, escapes elsewhere."""
    return raw.decode("utf-8", "backslashreplace")


#: the shortest possible reply: a code and a bare LF
_SHORTEST_REPLY = len(b"250\n")

#: the fewest bytes a TLS record carrying a ClientHello takes: a record header (5), a
#: handshake header (4), client_version (2), random (32), an empty session id (1), one cipher
#: suite (2 + 2) and the null compression method alone (1 + 1); extensions may be absent
#: (RFC 5246 7.4.1.2). Client bytes lost after STARTTLS that are fewer, with none of them
#: after the hole, cannot hold the ClientHello a server's TLS answers (``_tls_without_220``).
_MIN_CLIENT_HELLO_RECORD = 5 + 4 + 2 + 32 + 1 + 2 + 2 + 1 + 1

#: the fewest bytes a STARTTLS command takes ("STARTTLS" and a bare LF): a hole of the client's
#: with fewer cannot hold one (``_replies_lost_with_starttls``)
_MIN_STARTTLS_LINE = len(b"STARTTLS\n")
#: the longest a STARTTLS line without trailing spaces can be
_MAX_STARTTLS_LINE = len(b"STARTTLS\r\n")


class _SideState:
    __slots__ = ("side", "lines", "mode", "tls", "body_start", "body_octets",
                 "body_tail", "bdat_left", "ended", "first_seen",
                 "after_gap", "small_gap", "body_hole", "held_ns")

    def __init__(self, side: Side, max_line: int) -> None:
        self.side = side
        self.lines = LineBuffer(max_line)
        self.mode = _LINES
        self.tls: TlsObserver | None = None
        self.body_start = 0
        self.body_octets = 0
        self.body_tail = b""
        self.bdat_left = 0
        self.ended = False
        self.first_seen = False
        self.after_gap = False
        self.small_gap = False   #: the hole fell between replies and cannot hold one
        self.body_hole = False   #: message content was lost: its end-of-data marker may be in it
        #: where TLS is due (``_TLS_EXPECTED``): the capture time of the segment that carried
        #: the first byte held (0: none known), which stamps its ``PlaintextAfterStartTls``
        self.held_ns = 0


class SmtpSession:
    """One SMTP conversation seen from the outside. See the module docstring."""

    def __init__(self, config: SessionConfig | None = None, *, late_start: bool = False) -> None:
        """``late_start``: the capture does not show the start of the conversation (TCP does
        not tell where both streams start: ``FlowInfo.midstream``): see the module docstring."""
        self.config = config or SessionConfig()
        m = self.config.max_line_length
        self._c = _SideState(_CLIENT, m)
        self._s = _SideState(_SERVER, m)
        self._pending: deque[Command] = deque()       # the client's unanswered commands
        self._srv_pending: deque[Command] = deque()   # the server's unanswered commands
        self._unclaimed: deque[Reply] = deque()       # replies in the client's buffer, no command yet
        #: a one-line 250 after a HELO that followed an unanswered EHLO by a second or more,
        #: waiting for what comes next (``_helo_after_ehlo_timeout``): (lines, damaged, ts)
        self._helo_held: tuple | None = None  # type: ignore[type-arg]
        self._srv_last: Command | None = None         # the command the server answered last
        self._srv_in_data = False                     # the server reads the client's lines as content
        self._reply_lines: list[ReplyLine] = []
        self._reply_damaged = False
        self._reply_hole = False    # the open reply lost bytes in a hole after its first line
        self._greeted = False
        self._hold_for: Command | None = None
        self._starttls_accepted = False
        self._client_spoke_after_220 = False
        self._ready_ns = 0              # when the server's 220 to STARTTLS came
        self._decrypted = False
        self._ts = 0
        self._out: list[Event] = []
        self._warned: set[tuple[Side, AnomalyCode]] = set()
        self._injection_reported = False
        #: the acknowledgement of the segment whose bytes are being read (``receive``'s ``ack``)
        self._seg_ack = -1
        #: where the client's STARTTLS that the 220 answers ends in its stream (-1: not known, as
        #: for one inferred in a hole that could hold more than it: its ClientHello may follow)
        self._starttls_end = -1
        self._client_last_hole = 0      # the length of the client's last hole
        self._auth_open = False
        self._server_gap_unmatched = False
        #: server holes shorter than any reply whose next reply is not out yet: that reply
        #: tells whether they were harmless (``_judge_holes``)
        self._short_holes: list[StreamGap] = []
        self._commands_seen = 0
        self._first_command_ns = 0      # when the client's first command came (0: none yet)
        self._reply_began_at = 0
        self._late = late_start
        self._client_hole = False       # client bytes lost since its last command
        self._client_hole_bytes = 0     # how many (in holes declared while reading lines)
        #: the client's first visible command after a hole, and how many server bytes had been
        #: seen when it came: a reply that began before it cannot answer it (``_answers_lost``)
        self._hole_cmd: Command | None = None
        self._hole_cmd_server_at = 0
        self._lost = False              # bytes of either side lost in a hole so far
        self._starttls_sent = False     # the client sent STARTTLS (a visible command)
        #: the server's last reply was a 220 after its greeting, waiting in the client's buffer,
        #: and nothing of the client (a byte, a hole, its end) has come: a capture of the
        #: server's direction (or one whose client packets come only later), where a TLS record
        #: next answers the STARTTLS that is not in it (``_tls_after_lone_220``)
        self._lone_220 = False
        #: STARTTLS was answered with a 2xx that is not 220 and the client's next bytes are still
        #: to come: a TLS record there shows it took that answer as the go-ahead (Postfix, Exim
        #: and Mutt start TLS on any 2xx; RFC 3207 4 gives 220), anything else as a refusal
        self._starttls_2xx = False
        #: a byte of the client has come (its holes are no bytes: a capture whose client packets
        #: start late declares the client's bytes the server acknowledged before them as holes
        #: at its first segment, after the server's replies that acknowledged them)
        self._client_bytes = False
        #: bytes of the client after its STARTTLS were lost in a hole while it awaited the
        #: answer: what follows may be the rest of the TLS it started (``_tls_after_hold_hole``);
        #: how many (``_tls_without_220``), 0 once what follows was read as that TLS, or with no
        #: such hole (the TCP layer declares no empty hole)
        self._hold_lost = 0
        #: bytes of the server after the client's STARTTLS were lost in a hole, and no byte of
        #: the server came after it: its answer, if any, is in the hole (``_answer_unseen``)
        self._answer_in_hole = False
        #: that hole came before any byte the client sent after its STARTTLS (none held, none
        #: lost): the answer may be in it and the client may have read it, so what the client
        #: holds is not proven sent "before any reply" (``_held_without_reply``)
        self._hold_after_hole = False
        #: the server's first bytes (from the start of its stream) were lost in a hole that the
        #: client acknowledged before its first command, or with it: the client had them before
        #: it spoke, and the server's first bytes are its greeting (RFC 5321 3.1), which a client
        #: waits for to the end before its first command (4.3.1). A reply that begins after that
        #: command is no greeting (``_pair_reply``). (A hole is declared at the acknowledgement
        #: that proves it, or, when the server's first segment in the capture comes after the
        #: client's command, a SYN-ACK lost, in hindsight with that acknowledgement's time:
        #: ``HalfStream.seen``; both times are of the client's direction.)
        self._greeting_in_hole = False
        self._replied = False   # a whole reply of the server's was paired (``_pair_reply``)
        #: a side may hold bytes proven not TLS where TLS was due, their line not whole yet (its
        #: ``PlaintextAfterStartTls`` or ``TlsNotTls`` waits for the line end): anything of the
        #: other side emits it first (``_flush_text``), so that the events keep arrival order
        self._held_text = False
        if late_start:
            self._greeted = True            # the greeting, if any, was before the capture
            self._c.after_gap = self._s.after_gap = True   # may start inside a line

    # ------------------------------------------------------------------ public API

    def receive(self, side: Side, data: bytes, ts_ns: int = 0, ack: int = -1,
                ack_age: int = -1) -> list[Event]:
        """Feed in-order bytes of ``side``; returns the events they completed. ``ts_ns``: the
        capture time of the segment that carried them; ``ack``: its acknowledgement, an offset in
        the other side's stream, and ``ack_age``, how long before ``ts_ns`` it was reached
        (``tcp.events.StreamData``, -1: not known), which only a ``TlsNotTls`` whose first byte
        these bytes carry, in a side already speaking TLS, keeps (``TlsObserver.feed``)."""
        out: list[Event] = []
        self._out = out
        self._ts = ts_ns
        if not data:
            return out
        st = self._c if side is _CLIENT else self._s
        if self._held_text:
            self._flush_text(st)
        if self._helo_held is not None and side is _CLIENT:
            self._settle_helo(in_order=False)
        if side is _CLIENT:
            self._client_bytes = True
        else:
            self._answer_in_hole = False
        if st.ended or st.mode is _STOPPED:
            if not st.ended:
                st.lines.start += len(data)
            return out
        mode = st.mode
        if (mode is _TLS or mode is _BODY) and st.first_seen:
            # TLS records or message content: straight to the observer or the end-of-data
            # search, as ``_drain`` would hand them, without the round trip through the line
            # buffer (nothing is buffered in these modes between two calls)
            start = st.lines.advance(len(data))
            if start is not None:
                if mode is _BODY:
                    if self._body_data(st, data, start):
                        self._drain(st)         # the lines after the end-of-data marker
                elif st.tls is not None:
                    # (the segment's time and acknowledgement stamp plaintext whose first byte it
                    # carries, ``TlsNotTls``)
                    self._emit_all(st.tls.feed(data, start, ts_ns=ts_ns, ack=ack, ack_age=ack_age))
                    if st.tls.text_pending:
                        self._held_text = True
                return out
        if mode is _HOLD and not len(st.lines) and self._gave_up_on_starttls(data, ts_ns):
            st.mode = _LINES
        elif mode is _TLS_EXPECTED and not len(st.lines):
            st.held_ns = ts_ns      # (the first byte where TLS is due: ``_not_tls``'s time)
        self._seg_ack = ack
        st.lines.push(data)
        if not st.first_seen and self._late:
            if not self._late_first_bytes(st):
                return out
        elif not st.first_seen:
            if side is _CLIENT:
                head = sniff_tls(bytes(st.lines.buf[:5]))
                if head is None:
                    return out  # too few bytes to tell TLS from a command yet
                st.first_seen = True
                if head and not self._lone_220:
                    # (a TLS record after a 220 that followed the greeting is the TLS that 220
                    # let the client start, not SMTPS: ``_drain`` reads it so)
                    self._implicit_tls(st)
                    return out
            st.first_seen = True
        self._drain(st)
        return out

    def receive_gap(self, side: Side, length: int, ts_ns: int = 0, cut: bool = False,
                    acked: bool = False) -> list[Event]:
        """``length`` bytes of ``side`` were lost at the current position (``cut``: cut off
        their frame by the capture's snap length; ``acked``: the peer acknowledged them, see
        ``StreamGap.acked``)."""
        out: list[Event] = []
        self._out = out
        self._ts = ts_ns
        st = self._c if side is _CLIENT else self._s
        if self._held_text:
            self._flush_text(None)      # (this side's text ends at its hole too)
        if self._helo_held is not None:
            self._settle_helo(in_order=False)
        if side is _SERVER:
            self._lone_header_settled()
        start = st.lines.start + len(st.lines)
        gap = StreamGap(side=side, span=Span(side, start, start + length), length=length, cut=cut, acked=acked)
        self._lost = True
        if side is _SERVER:
            self._lone_220 = False  # what came right after the 220 is in the hole
            if (not start and not self._greeted and not self._late
                    and (not self._commands_seen or ts_ns and ts_ns <= self._first_command_ns)):
                self._greeting_in_hole = True
            if self._hold_for is not None and self._hold_for.verb == "STARTTLS":
                self._answer_in_hole = True
                if not len(self._c.lines) and not self._hold_lost:
                    self._hold_after_hole = True
        # (a hole of the client's leaves the 220 waiting: it cannot hide what the server sent
        # after it, and a capture whose client packets start late declares the client's bytes
        # the server had acknowledged as holes only at the client's first segment)
        self._emit(gap)
        if side is _SERVER and length < _SHORTEST_REPLY:
            self._short_holes.append(gap)
        st.first_seen = True
        if st.mode is _TLS and st.tls is not None:
            self._emit_all(st.tls.gap(length))
            st.lines.skip(length)
            return out
        if st.mode is _BODY:
            st.body_octets += len(st.lines) + length
            st.body_tail = b""
            st.lines.skip(length)
            st.body_hole = True
            return out
        if st.mode is _BDAT:
            used = min(length, st.bdat_left)
            st.bdat_left -= used
            st.lines.skip(length)
            if st.bdat_left == 0:
                st.mode = _LINES
            return out
        if st.mode is _HOLD:
            # The held bytes and the hole: the pending reply decides nothing reliable now.
            st.lines.skip(length)
            if self._hold_for is not None and self._hold_for.verb == "STARTTLS":
                self._hold_lost += length
            return out
        if st.mode is _TLS_EXPECTED:
            # TLS was due: what follows the hole is TLS whose record framing must be found
            # again, never plaintext to judge.
            if side is _CLIENT:
                self._client_spoke_after_220 = True
            st.lines.take_rest()
            st.lines.skip(length)
            st.mode = _TLS
            st.held_ns = 0
            st.tls = TlsObserver(side, framed=False)
            return out
        if side is _CLIENT:
            self._client_hole = True    # commands may be lost in it
            self._client_hole_bytes += length
            self._client_last_hole = length
            self._starttls_2xx = False  # its next bytes after the 2xx are in the hole
        # Reply or command lines: the partial line is lost; resynchronise at the next line.
        # A server hole between two replies (no line begun, no reply open) shorter than the
        # shortest reply ("250\n") cannot have held one: if a reply line starts right after
        # it, no reply was lost and the pairing goes on (``_server_line`` checks that). Whether
        # it held nothing the client read at all is for the next reply to show, whole, when it
        # is out (``_judge_holes``).
        small = (side is _SERVER and not len(st.lines) and not self._reply_lines
                 and length < _SHORTEST_REPLY)
        st.lines.skip(length)
        st.after_gap = True
        st.small_gap = small
        if side is _SERVER and not small:
            self._server_gap_unmatched = True
        if side is _SERVER and self._reply_lines:
            # The open reply lost its middle or its end. What follows the hole continues it
            # unless the client has sent a command since (then it answers that command).
            self._reply_damaged = True
            self._reply_hole = True
        return out

    def receive_eof(self, side: Side, *, reset: bool = False, truncated: bool = False,
                    ts_ns: int = 0) -> list[Event]:
        """``side`` ended: FIN (default), RST (``reset``), or the capture stopped (``truncated``)."""
        out: list[Event] = []
        self._out = out
        self._ts = ts_ns
        st = self._c if side is _CLIENT else self._s
        if self._held_text:
            self._flush_text(st)        # (this side's own text: below, before its end)
        if self._helo_held is not None and (side is _CLIENT or not self._reply_lines):
            self._settle_helo(in_order=False)
        if st.ended:
            return out
        self._lone_header_settled()
        if st.mode in (_LINES, _SASL_LINE):
            line = st.lines.flush()
            if line is not None and line.raw.strip():
                self._line(st, line)
        elif st.mode is _BODY:
            rest, _ = st.lines.take_rest()
            self._emit(MessageBody(side=side, span=Span(side, st.body_start,
                                                        st.body_start + st.body_octets + len(rest)),
                                   octets=st.body_octets + len(rest), complete=False))
        elif st.mode is _HOLD:
            data, start = st.lines.take_rest()
            if data:
                self._held_without_reply(data, start)
        elif st.mode is _TLS and st.tls is not None:
            self._emit_all(st.tls.end())
        elif st.mode is _TLS_EXPECTED and len(st.lines):
            pending = st.lines.buf
            if sniff_tls(bytes(pending[:5])) is False:
                self._not_tls(st, bytes(pending[:pending.find(b"\n", 0, 64) + 1 or 64]),
                              st.lines.start)
                if _mode_of(st) is _LINES:
                    self._drain(st)
                    line = st.lines.flush()
                    if line is not None and line.raw.strip():
                        self._line(st, line)
        if side is _SERVER and self._reply_lines:
            self._finish_reply()
        st.ended = True
        if side is _CLIENT or self._c.ended:
            self._flush_unclaimed()   # no command will ever read them
        pos = st.lines.start + len(st.lines)
        self._emit(StreamEnded(side=side, span=Span(side, pos, pos), reset=reset, truncated=truncated))
        return out

    def low_water(self, side: Side) -> int:
        """The lowest stream offset of ``side`` that a future event may still refer to."""
        st = self._c if side is _CLIENT else self._s
        low = st.lines.start
        if side is _SERVER and self._reply_lines:
            low = min(low, self._reply_lines[0].span.start)
        if side is _SERVER and self._unclaimed:
            low = min(low, self._unclaimed[0].span.start)
        if side is _SERVER and self._helo_held is not None:
            low = min(low, self._helo_held[0][0].span.start)
        return low

    @property
    def pending(self) -> tuple[Command, ...]:
        return tuple(self._pending)

    # ------------------------------------------------------------------ internals

    def _emit(self, ev: Event) -> None:
        if self._short_holes and isinstance(ev, Reply):
            ev = self._judge_holes(ev)
        if isinstance(ev, Event) and not ev.ts_ns:
            object.__setattr__(ev, "ts_ns", self._ts)
        self._out.append(ev)

    def _judge_holes(self, reply: Reply) -> Reply:
        """``reply`` is the first reply out since the short server holes waiting: a hole it
        starts right after, whole and with a code, fell between two replies (too short to
        hold one) and cannot have held anything the client read; the reply says so
        (``Reply.harmless_hole``). The others (a reply began before them, or lost its head or
        its end) may have. Every waiting hole is judged now, once."""
        holes = self._short_holes
        self._short_holes = []
        if reply.damaged or reply.code is None:
            return reply
        for gap in holes:
            if gap.span.end == reply.span.start:
                return replace(reply, harmless_hole=gap)
        return reply

    def _emit_all(self, evs: list) -> None:  # type: ignore[type-arg]
        for ev in evs:
            self._emit(ev)

    def _anomaly(self, side: Side, span: Span, code: AnomalyCode, detail: str = "",
                 once: bool = False) -> None:
        if once:
            if (side, code) in self._warned:
                return
            self._warned.add((side, code))
        self._emit(Anomaly(side=side, span=span, code=code, detail=detail))

    def _late_first_bytes(self, st: _SideState) -> bool:
        """The first bytes of a side whose start is not captured: TLS, binary, or text.
        Returns False while too few bytes are there to tell."""
        buf = st.lines.buf
        head = sniff_tls(bytes(buf[:5]))
        if head is None:
            return False
        st.first_seen = True
        if head and st.side is _SERVER and buf[:1] in _HANDSHAKE_ANSWER and not self._reply_lines \
                and self._hold_for is not None and self._hold_for.verb == "STARTTLS":
            # the capture shows the client's STARTTLS but not the 220: the server's handshake
            # (or its alert refusing the client's) answers it, as after a 220 lost in a hole
            # (_drain takes it from here), and the client's held bytes are its side of the
            # handshake, not lost
            return True
        if head:
            self._tls_in_progress(st, framed=True)
            return False
        nl = buf.find(b"\n", 0, 512)
        # the capture may start inside a UTF-8 character: its continuation bytes are text
        first = _lstrip_continuation(bytes(buf[:nl + 1 if nl >= 0 else 512]))
        if not _is_text(first.rstrip(b"\r\n")):
            if nl < 0 and len(buf) < 512 and _is_text(_lstrip_continuation(bytes(buf))):
                st.first_seen = False       # a text line still arriving: wait for its end
                return False
            self._tls_in_progress(st, framed=False)
            return False
        return True

    def _tls_in_progress(self, st: _SideState, *, framed: bool, after_hole: bool = False) -> None:
        """A late side whose bytes are TLS (or binary): TLS from here on, start unknown
        (``after_hole``: unsure after a hole, see ``TlsInProgress``)."""
        st.mode = _TLS
        st.tls = TlsObserver(st.side, framed=framed)
        start = st.lines.start
        self._emit(TlsInProgress(side=st.side, span=Span(st.side, start, start),
                                 after_hole=after_hole))
        self._drain(st)

    def _implicit_tls(self, st: _SideState) -> None:
        """SMTPS: a TLS record as the client's first bytes."""
        st.mode = _TLS
        st.tls = TlsObserver(_CLIENT)
        start = st.lines.start
        self._emit(ImplicitTls(side=_CLIENT, span=Span(_CLIENT, start, start)))
        srv = self._s
        if srv.mode is _LINES and not self._greeted and not self._reply_lines:
            srv.mode = _TLS_EXPECTED
            # (bytes the server sent before the client's first record, no line end yet, came
            # before it: judged now, whole, as ``_flush_text`` judges them when something else
            # comes, so that their event precedes the client's whatever the segmentation; left
            # to the server's next bytes, they followed every event of a ClientHello that came
            # in one segment and preceded the rest of one that came in several)
            if len(srv.lines) and sniff_tls(bytes(srv.lines.buf[:5])) is False \
                    and self._tls_expected(srv, whole=True):
                self._drain(srv)
        self._drain(st)

    def _drain(self, st: _SideState) -> None:
        while True:
            mode = st.mode
            if self._lone_220 and mode is _LINES and st.side is _SERVER and not self._reply_lines:
                head = (sniff_tls(bytes(st.lines.buf[:5])) if st.lines.buf[:1] in _HANDSHAKE_ANSWER
                        else False)
                if head is None:
                    return      # wait for a record header's 5 bytes
                if head and self._client_silent():
                    self._tls_after_lone_220()
                    continue
                if st.lines.buf[:1]:
                    self._lone_220 = False   # the server's next bytes after the 220 are no TLS
            if self._lone_220 and mode is _LINES and st.side is _CLIENT:
                # the client's first bytes in the capture (after holes only, if any) while the
                # 220 waits unread: its ClientHello shows it read that 220 and started TLS
                head = sniff_tls(bytes(st.lines.buf[:5])) if st.lines.buf[:1] == b"\x16" else False
                if head is None:
                    return      # wait for a record header's 5 bytes
                if head:
                    self._client_tls_after_lone_220()
                    continue
                if st.lines.buf[:1]:
                    self._lone_220 = False   # the client's first bytes are no TLS
            if self._starttls_2xx and mode is _LINES and st.side is _CLIENT:
                head = sniff_tls(bytes(st.lines.buf[:5])) if st.lines.buf[:1] else False
                if head is None:
                    return      # wait for a record header's 5 bytes
                if st.lines.buf[:1]:
                    self._starttls_2xx = False
                if head:
                    self._tls_after_2xx()
                    continue
            not_tls = False
            if (mode is _LINES and st.side is _SERVER and not self._reply_lines
                    and self._hold_for is not None and self._hold_for.verb == "STARTTLS"
                    and st.lines.buf[:1] in _HANDSHAKE_ANSWER and sniff_tls(bytes(st.lines.buf[:5]))):
                if st.lines.buf[:1] == b"\x16" and len(st.lines) < 6:
                    return      # wait for the handshake message's type (``_answers_hello``,
                    #             ``_lone_header_settled`` if it never comes)
                if st.lines.buf[:1] == b"\x15" or st.lines.buf[5] in HANDSHAKE_NAMES:
                    self._tls_without_220()
                    continue
                # a handshake record header whose message is of no handshake type: the
                # server's first bytes after STARTTLS are no TLS (its first record is a
                # handshake message in the clear, or an alert), whatever their first byte
                not_tls = True
            if mode is _LINES and not not_tls and (self._late or (self._lost and self._starttls_sent)
                                                        or st.after_gap) \
                    and st.lines.buf[:1] and 20 <= st.lines.buf[0] <= 24:
                head = sniff_tls(bytes(st.lines.buf[:5]))
                if head is None:
                    return      # wait for a record header's 5 bytes
                if head and (self._late or (self._lost and self._starttls_sent)
                             or _clean_record(st.lines.buf)):
                    # A late start, or a STARTTLS after bytes were lost (which reply the
                    # client read as its answer is then a guess), or a record that starts
                    # cleanly after a hole of this side (a header of a known type and version:
                    # the TLS that began in the hole): a TLS record where a line begins is TLS
                    # from here, never lines.
                    self._tls_in_progress(st, framed=True, after_hole=not self._late)
                    return
            if mode is _LINES or mode is _SASL_LINE:
                line = st.lines.next_line()
                if line is None:
                    return
                if st.side is _CLIENT:      # (``_line`` written out: once per line)
                    self._client_line(st, line)
                else:
                    self._server_line(st, line)
            elif mode is _BODY:
                if not self._body(st):
                    return
            elif mode is _BDAT:
                if not self._bdat(st):
                    return
            elif mode is _HOLD:
                if (self._hold_for is not None and self._hold_for.verb == "STARTTLS"
                        and st.lines.buf[:1] and self._answer_unseen()):
                    if self._hold_lost:
                        # bytes after a hole that followed STARTTLS: the rest of the TLS the
                        # client started (its ClientHello's head in the hole), unless text
                        head = _tls_after_hold_hole(bytes(st.lines.buf[:64]), at_end=False)
                    else:
                        head = sniff_tls(bytes(st.lines.buf[:5])) if st.lines.buf[:1] == b"\x16" else False
                    if head is None:
                        return      # wait for a record header's 5 bytes (or a line)
                    if head:
                        self._client_tls_unanswered()
                        continue
                if len(st.lines) > self.config.max_held_bytes:
                    self._release_hold_unanswered()
                    continue
                return
            elif mode is _TLS_EXPECTED:
                if not self._tls_expected(st):
                    return
            elif mode is _TLS:
                data, start = st.lines.take_rest()
                if data and st.tls is not None:
                    self._emit_all(st.tls.feed(data, start, ts_ns=self._ts))
                    if st.tls.text_pending:
                        self._held_text = True
                return
            else:  # STOPPED
                st.lines.take_rest()
                return

    # --- client ---------------------------------------------------------------

    def _line(self, st: _SideState, line: Line) -> None:
        if st.side is _CLIENT:
            self._client_line(st, line)
        else:
            self._server_line(st, line)

    def _client_line(self, st: _SideState, line: Line) -> None:
        span = Span(_CLIENT, line.start, line.end)
        if line.truncated:
            self._anomaly(_CLIENT, span, AnomalyCode.LINE_TOO_LONG,
                          f"command line of {line.end - line.start} octets")
        if st.mode is _SASL_LINE:
            st.mode = _LINES
            self._emit(AuthExchange(side=_CLIENT, span=span, lines=1))
            self._push_pending(Command(side=_CLIENT, span=span, verb=_SASL, argument="",
                                       raw_verb="", ts_ns=self._ts))
            self._claim()
            return
        content = line.content
        if st.after_gap:
            if not _VERB.match(content) or not _is_text(content):
                return  # the tail of a line cut by the hole, or binary: not a command
            st.after_gap = False
        if not content.strip():
            return
        if self._auth_open and _looks_like_sasl(content):
            # After AUTH and before its final reply, a line that is no command is a SASL
            # response, even if the server's 334 was not seen (lost, one-sided capture, or a
            # client that does not wait): never keep it.
            self._emit(AuthExchange(side=_CLIENT, span=span, lines=1))
            self._push_pending(Command(side=_CLIENT, span=span, verb=_SASL, argument="",
                                       raw_verb="", ts_ns=self._ts))
            self._claim()
            return
        if 0 in content:   # a NUL byte (``_server_line``)
            self._anomaly(_CLIENT, span, AnomalyCode.NUL_BYTE, once=True)
        if line.bare_lf:
            self._anomaly(_CLIENT, span, AnomalyCode.BARE_LF, "command line ended in bare LF",
                          once=True)
        raw_verb, _, arg = content.partition(b" ")
        if not raw_verb and arg:  # leading space
            raw_verb, _, arg = arg.lstrip(b" ").partition(b" ")
        raw_verb_s = decode_text(raw_verb[:32])
        verb = raw_verb_s.upper()
        argument = decode_text(arg.strip()[:1024])
        if verb == "AUTH":
            argument = argument.split(" ", 1)[0]  # the mechanism; never the initial response
            self._auth_open = True
        cmd = Command(side=_CLIENT, span=span, verb=verb, argument=argument, raw_verb=raw_verb_s,
                      bare_lf=line.bare_lf, octets=line.end - line.start, ts_ns=self._ts)
        self._emit(cmd)
        if not self._commands_seen:
            self._first_command_ns = self._ts
        self._commands_seen += 1
        if self._client_hole:
            srv = self._s.lines
            self._hole_cmd, self._hole_cmd_server_at = cmd, srv.start + len(srv)
        self._client_hole = False
        self._client_hole_bytes = 0
        self._push_pending(cmd)
        if verb == "DATA" or verb == "STARTTLS":
            st.mode = _HOLD
            self._hold_for = cmd
            self._hold_lost = 0
            self._answer_in_hole = False
            self._hold_after_hole = False
            if verb == "STARTTLS":
                self._starttls_sent = True
        elif verb == "BDAT":
            parts = argument.split()
            size = int(parts[0]) if parts and parts[0].isdigit() else -1
            if size > 0:
                st.mode = _BDAT
                st.bdat_left = size
                st.body_start = st.lines.start
                st.body_octets = 0
        self._claim()

    def _push_pending(self, cmd: Command) -> None:
        if len(self._pending) >= self.config.max_pending_commands:
            self._anomaly(_CLIENT, cmd.span, AnomalyCode.TOO_MANY_PENDING,
                          f"more than {self.config.max_pending_commands} commands await a reply",
                          once=True)
            self._pending.popleft()
        self._pending.append(cmd)
        self._srv_push(cmd)

    def _srv_push(self, cmd: Command) -> None:
        """A command as the server reads it: after its own 354 to DATA the server takes the
        client's lines as message content up to a lone dot, whatever the client meant."""
        if self._srv_in_data:
            if cmd.verb == _EOM or cmd.raw_verb == ".":
                self._srv_in_data = False
                if cmd.verb != _EOM:
                    cmd = Command(side=_CLIENT, span=cmd.span, verb=_EOM, argument="",
                                  raw_verb=".", ts_ns=cmd.ts_ns)
            else:
                return
        if len(self._srv_pending) >= self.config.max_pending_commands:
            self._srv_pending.popleft()
        self._srv_pending.append(cmd)

    def _claim(self) -> None:
        """Replies waiting in the client's buffer answer its oldest unanswered commands (the
        client reads them after sending those commands)."""
        while self._unclaimed and self._pending:
            held = self._unclaimed.popleft()
            cmd = self._pending.popleft()
            reply = Reply(side=_SERVER, span=held.span, code=held.code, lines=held.lines,
                          answers=cmd, damaged=held.damaged, server_answers=held.server_answers,
                          stray=held.stray, ts_ns=held.ts_ns)
            self._emit(reply)
            self._client_reads(reply, drain=False)

    def _flush_unclaimed(self) -> None:
        """Replies no command of the client will read: out unpaired."""
        while self._unclaimed:
            held = self._unclaimed.popleft()
            self._anomaly(_SERVER, held.span, AnomalyCode.REPLY_WITHOUT_COMMAND,
                          f"reply {held.code} arrived with no command pending")
            self._emit(held)

    def _body_ended_in_hole(self) -> None:
        """A server reply while the client's message content has lost bytes: the server answers
        only once it has read the end-of-data marker (or gives up on the message), so the
        marker was in the hole. The content ends there (incomplete), the end of data is the
        command this reply answers, and commands the client sent after it may be lost in the
        same hole."""
        st = self._c
        end = st.body_start + st.body_octets
        self._emit(MessageBody(side=_CLIENT, span=Span(_CLIENT, st.body_start, end),
                               octets=st.body_octets, complete=False))
        self._push_pending(Command(side=_CLIENT, span=Span(_CLIENT, end, end), verb=_EOM,
                                   argument="", raw_verb=".", ts_ns=self._ts))
        st.mode = _LINES
        st.body_tail = b""
        st.body_hole = False
        self._client_hole = True

    def _body(self, st: _SideState) -> bool:
        data, start = st.lines.take_rest()
        return self._body_data(st, data, start)

    def _body_data(self, st: _SideState, data: bytes, start: int) -> bool:
        """Message content at stream offset ``start``: counted, searched for the end-of-data
        marker (never split into lines). True when the marker was found (the bytes after it
        are buffered again as command lines)."""
        if not data:
            return False
        window = st.body_tail + data
        m = _END_OF_DATA.search(window)
        if m is None:
            st.body_octets += len(data)
            st.body_tail = window[-4:]
            return False
        used = m.end() - len(st.body_tail)
        st.body_octets += used
        end = start + used
        self._emit(MessageBody(side=_CLIENT, span=Span(_CLIENT, st.body_start, end),
                               octets=st.body_octets))
        self._push_pending(Command(side=_CLIENT, span=Span(_CLIENT, end - 3, end), verb=_EOM,
                                   argument="", raw_verb=".", ts_ns=self._ts))
        st.mode = _LINES
        self._claim()
        st.body_tail = b""
        rest = data[used:]
        st.lines.start = end
        if rest:
            st.lines.push(rest)
        return True

    def _bdat(self, st: _SideState) -> bool:
        data, start = st.lines.take_rest()
        if not data:
            return False
        used = min(len(data), st.bdat_left)
        st.bdat_left -= used
        st.body_octets += used
        if st.bdat_left == 0:
            self._emit(MessageBody(side=_CLIENT,
                                   span=Span(_CLIENT, st.body_start, start + used),
                                   octets=st.body_octets, bdat=True))
            st.mode = _LINES
        rest = data[used:]
        st.lines.start = start + used
        if rest:
            st.lines.push(rest)
        return True

    def _release_hold(self, reply: Reply, drain: bool = True) -> None:
        """The reply to the held DATA/STARTTLS arrived: decide what the held bytes were."""
        st = self._c
        cmd = self._hold_for
        self._hold_for = None
        if st.mode is not _HOLD or cmd is None:
            return
        code = reply.code
        if cmd.verb == "DATA":
            if code == 354:
                st.mode = _BODY
                st.body_start = st.lines.start
                st.body_octets = 0
                st.body_hole = False
                st.body_tail = b"\n"  # the first line may already be the lone dot
            else:
                st.mode = _LINES
        else:  # STARTTLS
            if code == 220:
                self._starttls_accepted = True
                data, start = st.lines.take_rest()
                st.mode = _TLS_EXPECTED
                if self._hold_lost and _tls_after_hold_hole(data, at_end=True) is not False:
                    # bytes after STARTTLS were lost in a hole: what follows it is the rest of
                    # the TLS the client started, never plaintext injected before the 220
                    self._hold_lost = 0
                    self._tls_after_hole(st)
                    if data:
                        st.lines.push(data)
                        st.lines.start = start
                elif data:
                    # (a reply the client had in its buffer before it sent STARTTLS was read
                    # before its next bytes: those cannot be injected ahead of the 220)
                    if sniff_tls(data) is False and drain:
                        self._anomaly(_CLIENT, Span(_CLIENT, start, start + len(data)),
                                      AnomalyCode.STARTTLS_COMMAND_INJECTION,
                                      "client sent " + repr(_preview(data)) + " after STARTTLS, "
                                      "before the server's 220")
                    else:
                        st.lines.push(data)
                        st.lines.start = start
            else:
                st.mode = _LINES
                # (``_drain`` reads the client's next bytes: TLS there starts TLS; not after bytes
                # were lost, where which reply the client read is a guess and TLS where a line
                # would begin is TLS in progress)
                self._starttls_2xx = code is not None and 200 <= code < 300 and not self._lost
        if st.ended or not drain:
            return
        self._drain(st)

    def _tls_after_2xx(self) -> None:
        """The client's first bytes after a 2xx answer to STARTTLS that is not 220 are a TLS
        record: it took that answer as the go-ahead and started TLS (Postfix, Exim and Mutt
        start TLS on any 2xx answer; RFC 3207 4 gives 220, and clients that want exactly 220,
        CPython's smtplib, curl, read any other code as a refusal). Both sides go on as after a
        220: the client's bytes are TLS, and the server's from here on must be (the TLS rules
        judge what it sent)."""
        self._starttls_accepted = True
        self._server_after_220(None)
        self._c.mode = _TLS_EXPECTED

    def _starttls_lost_in_hole(self) -> None:
        """A 220 after the greeting answers only STARTTLS (RFC 3207 4, RFC 5321 4.2.3): with
        client bytes lost since its last command and none awaiting a reply, the client's
        STARTTLS was in the hole. It enters the transcript as inferred (an empty span at the
        hole's end, no bytes of its own), the 220 answers it, and both sides go on as after any
        STARTTLS: what follows decides (a TLS handshake, or plaintext the verdict judges)."""
        st = self._c
        pos = st.lines.start
        cmd = Command(side=_CLIENT, span=Span(_CLIENT, pos, pos), verb="STARTTLS",
                      argument="", raw_verb="STARTTLS", inferred=True, ts_ns=self._ts)
        self._emit(cmd)
        self._push_pending(cmd)
        st.mode = _HOLD
        self._hold_for = cmd

    def _replies_lost_with_starttls(self) -> bool:
        """A 220 after the greeting comes while the client's commands before its last hole
        await replies, none of them a STARTTLS: the server lost bytes in a hole since its last
        reply (``_server_gap_unmatched``, too many for nothing but the bytes between two
        replies) and the client lost at least a STARTTLS line's worth since its last command
        (``_client_hole_bytes``). A 220 answers only STARTTLS (RFC 3207 4), the server answers
        in order, and its replies to the commands pending were in its hole: the STARTTLS was in
        the client's (as with nothing pending, ``_starttls_lost_in_hole``), and the 220 answers
        it, not the MAIL a server refused before it (a 530 "Must issue a STARTTLS command
        first" lost, then the client's STARTTLS)."""
        return (self._server_gap_unmatched and self._client_hole_bytes >= _MIN_STARTTLS_LINE
                and not self._starttls_pending())

    def _starttls_pending(self) -> bool:
        """A STARTTLS of the client awaits its reply."""
        return any(c.verb == "STARTTLS" for c in self._pending)

    def _tls_without_220(self, hello: bool = False) -> None:
        """The server speaks TLS while STARTTLS awaits its reply: the 220 was lost in a hole.
        Both sides go on as after a 220 (STARTTLS stays without a reply). When bytes of the
        client after its STARTTLS were lost in a hole too (``_hold_lost``), its TLS may have
        begun in that hole (a ServerHello answers only a ClientHello; an alert may answer one
        too): its bytes from there are read as after a 220 in the capture with that hole
        (``_release_hold``), the TLS it started, whose record framing must be found again,
        unless those held after the hole are text; never as bytes owed after the 220 (its
        plaintext after the server's answer is no proof that it did not start TLS). Text held
        after the hole is the client's TLS too when the server's answer is a ServerHello
        (``_answers_hello``, or ``hello`` when its record header came alone and nothing after it,
        ``_lone_header_settled``): the server read a ClientHello, so the hole held it, and the text
        came after it (a client giving up on the handshake in the clear); an alert proves no
        ClientHello (a server's TLS refuses plaintext after its 220 with one too). Not when
        the client's bytes since STARTTLS, lost and held, are too few for a ClientHello
        (``_MIN_CLIENT_HELLO_RECORD``): the server's TLS answers none of them, and they are
        what the client sent in the clear."""
        self._starttls_accepted = True
        self._s.mode = _TLS
        self._s.tls = TlsObserver(_SERVER)
        self._client_spoke_after_220 = True
        c = self._c
        self._hold_for = None
        if c.mode is _HOLD:
            held = bytes(c.lines.buf)
            if (self._hold_lost and self._hold_lost + len(held) >= _MIN_CLIENT_HELLO_RECORD
                    and (hello or _answers_hello(self._s.lines.buf)
                         or _tls_after_hold_hole(held, at_end=True) is not False)):
                self._hold_lost = 0
                self._tls_after_hole(c)
            else:
                c.mode = _TLS_EXPECTED
            if not c.ended:
                self._drain(c)

    def _lone_header_settled(self) -> None:
        """The server's bytes stop (a hole of its own, an end of either side) while ``_drain``
        waits for the sixth byte of its TLS after a lost 220 (a handshake record header, or its
        head, came alone): that record is the server's TLS all the same, and it answers a
        ClientHello, as a server's TLS begins with a handshake record only as its ServerHello
        (the sixth byte, the message's type, only confirms it: ``_answers_hello``). So the
        client's bytes since its hole are its TLS (``_tls_without_220``); never a reply line,
        which left the client's held QUIT out as a command injected after STARTTLS, nor
        plaintext owed after the 220."""
        s = self._s
        buf = s.lines.buf
        if (s.mode is _LINES and not self._reply_lines
                and self._hold_for is not None and self._hold_for.verb == "STARTTLS"
                and 0 < len(s.lines) < 6 and buf[:1] == b"\x16"
                and (self._hold_lost or len(s.lines) == 5)
                and sniff_tls(bytes(buf[:5])) is not False):
            self._tls_without_220(hello=True)
            self._drain(s)

    def _client_unseen(self) -> bool:
        """Nothing of the client has come: no byte, no hole, no end (``receive_eof``)."""
        c = self._c
        return not c.first_seen and not c.ended and not self._commands_seen

    def _client_silent(self) -> bool:
        """Nothing of the client has come but holes: no byte, no end. The holes of a client
        whose packets the capture holds only from a later point on (a tap of its leg that
        started late) are its bytes the server had read: they come out at its first segment,
        after the server's replies that acknowledged them (``HalfStream.seen``), and cannot
        hide what the server sent after its 220."""
        return not self._client_bytes and not self._c.ended and not self._commands_seen

    def _tls_after_lone_220(self) -> None:
        """A TLS handshake record (or an alert refusing the ClientHello) right after a 220 that
        followed the greeting, with nothing of the client in the capture (its direction is not
        in it so far): the 220 answers a STARTTLS the capture does not show (RFC 3207 4: after it
        the next bytes are TLS), so the server's bytes from here are TLS (its ServerHello, its
        certificate in TLS 1.2), not reply lines, and the 220 says so (``Reply.tls_follows``):
        the verdict reads that mark, never deciding again, so what ``explain`` shows as TLS is
        what the verdict uses. Client packets that come later (a late client tap, two taps
        merged with the client's stamped later) do not undo it: the server did answer 220 and
        start TLS; the client's bytes it acknowledged before them are holes. Never where the
        client's direction came first: its STARTTLS decides (``_release_hold``); nor in a late
        start (``_late_first_bytes``)."""
        self._lone_220 = False
        # The 220 waits last in the client's buffer (``_finish_reply``): it goes out marked, the
        # session's decision that the verdict reads (``Reply.tls_follows``), with the replies
        # before it (no command of the client will read them: before the TLS).
        if self._unclaimed:
            self._unclaimed[-1] = replace(self._unclaimed[-1], tls_follows=True)
        self._flush_unclaimed()
        self._s.mode = _TLS
        self._s.tls = TlsObserver(_SERVER)

    def _client_tls_after_lone_220(self) -> None:
        """The client's first bytes in the capture (after holes only, if any) are a TLS
        handshake record (its ClientHello) while the server's 220 after its greeting waits
        unread (``_lone_220``): the client read that 220 as the answer to its STARTTLS and
        started TLS (RFC 3207 4: a 220 after the greeting answers only STARTTLS). The client's
        bytes from here are TLS and the server's next bytes must be (``_tls_expected``): a tap of
        the client's leg that starts with its acknowledgement of the 220 or with its ClientHello
        reads the same TLS as one that starts after the server's answer.

        With holes of the client before (``_client_hole``: the bytes the server read before its
        replies, declared only at the client's first segment, ``HalfStream.seen``, so after the
        replies that acknowledged them), the replies waiting are read as if the holes had come
        in capture order (``_finish_reply``): each answers a command lost in them
        (``Reply.lost_command``), the 220 the client's STARTTLS lost in them
        (``_starttls_lost_in_hole``, inferred), and the handshake that follows is judged as
        after any STARTTLS whose command a hole took. Without holes (nothing of the client before
        its ClientHello) the 220 is marked as ``_tls_after_lone_220`` marks it
        (``Reply.tls_follows``)."""
        c = self._c
        if not self._client_hole:
            ready_ns = self._unclaimed[-1].ts_ns if self._unclaimed else self._ts
            self._tls_after_lone_220()
            self._starttls_accepted = True
            self._s.mode = _TLS_EXPECTED
            self._ready_ns = ready_ns
            self._client_spoke_after_220 = True
            c.mode = _TLS
            c.tls = TlsObserver(_CLIENT)
            c.after_gap = False
            return
        self._lone_220 = False
        waiting = list(self._unclaimed)
        self._unclaimed.clear()
        ready = waiting.pop()
        for held in waiting:
            lost = replace(held, lost_command=True, stray=False, server_answers=None)
            self._anomaly(_SERVER, lost.span, AnomalyCode.REPLY_WITHOUT_COMMAND,
                          f"reply {lost.code} answers a command lost in a hole of the client's bytes")
            self._emit(lost)
        c.after_gap = False
        self._starttls_lost_in_hole()
        cmd = self._pending.popleft()
        self._srv_pending.popleft()
        self._srv_last = cmd
        self._client_hole = False
        reply = replace(ready, answers=cmd, server_answers=cmd, stray=False)
        self._server_after_220(cmd)
        self._ready_ns = ready.ts_ns
        self._emit(reply)
        self._client_reads(reply, drain=False)

    def _server_unseen(self) -> bool:
        """Nothing of the server has come: no byte, no hole, no end."""
        srv = self._s
        return not srv.first_seen and not srv.ended

    def _answer_unseen(self) -> bool:
        """The server's answer to the client's STARTTLS is not in the capture so far: nothing of
        the server has come (``_server_unseen``), or only a hole of its bytes after the
        STARTTLS with no byte of the server after it (a capture of the client's direction that
        holds the server's SYN-ACK: the client's acknowledgements prove the server's bytes
        lost, its answer among them)."""
        return self._server_unseen() or (self._answer_in_hole and not self._s.ended)

    def _client_tls_unanswered(self) -> None:
        """A TLS handshake record (its ClientHello) right after the client's STARTTLS, with the
        server's answer not in the capture so far (``_answer_unseen``: a capture of the client's
        direction, with or without the server's SYN-ACK, or one whose server packets come only
        later): a client sends a ClientHello only to start the TLS its STARTTLS asked for (after
        a 220 the capture does not show, or in the same segment as STARTTLS, without waiting
        for one), so its bytes from here are TLS (its ClientHello's SNI and versions, its alert),
        not held plaintext. After a hole that followed STARTTLS (``_hold_lost``) the bytes are
        TLS whose record framing must be found again (the ClientHello's head is in the hole),
        unless they are text. STARTTLS stays without a reply (none is in the capture; a 220 that
        comes later still answers it, and the server's TLS after a hole of its answer is read as
        after a 220 lost in a hole, ``_tls_without_220``). Bytes after STARTTLS that are no TLS
        record stay held, as plaintext to judge."""
        if self._server_unseen():
            self._hold_for = None
        c = self._c
        if self._hold_lost:
            self._hold_lost = 0
            self._tls_after_hole(c)
        else:
            c.mode = _TLS_EXPECTED

    def _tls_after_hole(self, c: _SideState) -> None:
        """The client's bytes from here are TLS whose record framing must be found again:
        bytes of it after its STARTTLS were lost in a hole, the start of its TLS among them."""
        self._client_spoke_after_220 = True
        c.mode = _TLS
        c.tls = TlsObserver(_CLIENT, framed=False)

    def _release_hold_unanswered(self) -> None:
        """Too many bytes held and still no reply: assume the usual next step (body, TLS)."""
        st = self._c
        cmd = self._hold_for
        self._hold_for = None
        if cmd is not None and cmd.verb == "DATA":
            st.mode = _BODY
            st.body_start = st.lines.start
            st.body_octets = 0
            st.body_hole = False
            st.body_tail = b"\n"
        else:
            st.mode = _TLS_EXPECTED

    def _gave_up_on_starttls(self, data: bytes, ts_ns: int) -> bool:
        """The client's first bytes after STARTTLS, no answer seen: plaintext sent at least
        ``WAITED_NS`` after the command is no injection in its flight but what the client did
        once it stopped waiting (swaks --tls-optional goes on with MAIL FROM, others send QUIT):
        commands again. STARTTLS stays unanswered (a late answer would still pair with it)."""
        cmd = self._hold_for
        if (cmd is None or cmd.verb != "STARTTLS" or not ts_ns or not cmd.ts_ns
                or ts_ns - cmd.ts_ns < WAITED_NS or sniff_tls(data[:5]) is not False
                or (self._hold_lost and _tls_after_hold_hole(data, at_end=False) is not False)):
            return False
        self._hold_for = None
        return True

    def _held_without_reply(self, data: bytes, start: int) -> None:
        cmd = self._hold_for
        if self._hold_lost and _tls_after_hold_hole(data, at_end=True) is not False:
            return      # after a hole: the rest of the TLS the client started, not plaintext
        if self._hold_after_hole:
            return      # after a hole of the server's that may hold its answer, which the
            #             client may have read: not proven sent before any reply
        if cmd is not None and cmd.verb == "STARTTLS" and sniff_tls(data) is False:
            self._anomaly(_CLIENT, Span(_CLIENT, start, start + len(data)),
                          AnomalyCode.STARTTLS_COMMAND_INJECTION,
                          "client sent " + repr(_preview(data)) + " after STARTTLS, before any reply")

    # --- server ---------------------------------------------------------------

    def _server_line(self, st: _SideState, line: Line) -> None:
        span = Span(_SERVER, line.start, line.end)
        content = line.content
        if st.after_gap:
            if st.small_gap and _REPLY_START.match(line.raw) and _is_text(content):
                st.small_gap = False   # bytes between two replies: the reply is whole
                st.after_gap = False
            else:
                if st.small_gap:
                    self._server_gap_unmatched = True   # the hole took a line's head
                st.small_gap = False
                if self._reply_lines and self._commands_seen != self._reply_began_at:
                    self._finish_reply()
                self._reply_damaged = True
                if not _REPLY_START.match(line.raw) or not _is_text(content):
                    return  # the tail of a line cut by the hole, or binary: not a reply
                st.after_gap = False
        if not content and not self._reply_lines:
            return  # stray empty line between replies
        code: int | None = None
        sep = ""
        at = 0      # where the text after the code and separator begins in ``content``
        # (the code's three ASCII digits read as bytes, as ``content[:3].isdigit()`` and
        # ``int(content[:3])`` would: compiled, C comparisons and arithmetic, not two slices, a
        # method call and a parse per line)
        if (len(content) >= 3 and 0x30 <= content[0] <= 0x39 and 0x30 <= content[1] <= 0x39
                and 0x30 <= content[2] <= 0x39):
            code = (content[0] - 0x30) * 100 + (content[1] - 0x30) * 10 + content[2] - 0x30
            if len(content) > 3:
                sep = chr(content[3])
                at = 4
            else:
                at = 3
        if code is None or (sep not in ("-", " ", "")):
            self._anomaly(_SERVER, span, AnomalyCode.MALFORMED_REPLY_LINE,
                          repr(_preview(content)))
        if line.truncated:
            self._reply_damaged = True
            self._anomaly(_SERVER, span, AnomalyCode.LINE_TOO_LONG,
                          f"reply line of {line.end - line.start} octets")
        if line.bare_lf:
            self._anomaly(_SERVER, span, AnomalyCode.BARE_LF, "reply line ended in bare LF",
                          once=True)
        if 0 in content:   # (a NUL byte: an int is looked for with memchr; ``b"\x00" in``
            # first fails to read the bytes as an int, an exception raised and cleared per line)
            self._anomaly(_SERVER, span, AnomalyCode.NUL_BYTE, once=True)
        # (``decode_text(content[at:])`` written out: compiled, the text is decoded from its
        # offset in ``content``, not copied out of it first)
        rl = ReplyLine(code=code, sep=sep, text=content[at:].decode("utf-8", "backslashreplace"),
                       raw=line.raw, span=span, bare_lf=line.bare_lf, octets=line.end - line.start,
                       truncated=line.truncated)
        if self._reply_lines:
            first = self._reply_lines[0].code
            if code is not None and first is not None and code != first:
                self._anomaly(_SERVER, span, AnomalyCode.REPLY_CODE_MISMATCH,
                              f"line with code {code} inside a {first} reply")
        if (self._reply_lines and self._reply_hole and code is not None
                and self._reply_lines[0].code is not None and code != self._reply_lines[0].code):
            # A reply that lost bytes in a hole after its first line, then a line with another
            # code: that line starts the next reply (the damaged one lost its end). (A reply
            # whose head went in a hole, or before a late start, lost nothing after its first
            # line: another code there is the server's own mismatch, one reply, as with the head.)
            self._finish_reply()
        if not self._reply_lines:
            self._reply_began_at = self._commands_seen
        if len(self._reply_lines) < self.config.max_reply_lines:
            self._reply_lines.append(rl)
        else:
            self._anomaly(_SERVER, span, AnomalyCode.TOO_MANY_REPLY_LINES,
                          f"reply longer than {self.config.max_reply_lines} lines", once=True)
            self._reply_damaged = True
        # A line continues the reply only as `ddd-`; a line without a code continues an open
        # reply (as Postfix and Go read it) but cannot start one.
        if sep == "-" or (code is None and len(self._reply_lines) > 1 and line.eol):
            return
        self._finish_reply(last=rl)

    def _finish_reply(self, last: ReplyLine | None = None) -> None:
        lines = tuple(self._reply_lines)
        self._reply_lines = []
        damaged = self._reply_damaged
        self._reply_damaged = False
        self._reply_hole = False
        if not lines:
            return
        if self._helo_held is not None:
            # a second reply before anything else, right after the first and not a 421 (which a
            # server sends unasked, RFC 5321 3.8: its idle timeout): the server answered the
            # EHLO late, then the HELO, in the order the commands came
            self._settle_helo(in_order=lines[0].code != 421
                              and self._ts - self._helo_held[2] < WAITED_NS)  # type: ignore[index]
        elif (self._greeted and not damaged and not self._answers_lost(lines[0].span.start)
              and self._helo_after_ehlo_timeout(lines)):
            # whom it answers, the EHLO (late) or the HELO, the next step shows
            self._helo_held = (lines, damaged, self._ts)
            return
        self._pair_reply(lines, last or lines[-1], damaged, False)

    def _settle_helo(self, in_order: bool) -> None:
        """Pair the one-line 250 held by ``_finish_reply`` (``_helo_after_ehlo_timeout``): with
        the EHLO when a second reply came after it before anything else (``in_order``: a slow
        server answering both commands in turn), else with the HELO (the EHLO got none)."""
        lines, damaged, ts = self._helo_held  # type: ignore[misc]
        self._helo_held = None
        now = self._ts
        self._ts = ts
        self._pair_reply(lines, lines[-1], damaged, not in_order)
        self._ts = now

    def _pair_reply(self, lines: tuple[ReplyLine, ...], last: ReplyLine, damaged: bool,
                    helo_fallback: bool) -> None:
        """Pair a whole reply with the command it answers, for the client and for the server
        (``helo_fallback``: the HELO after an unanswered EHLO, which then got no reply)."""
        span = Span(_SERVER, lines[0].span.start, last.span.end)
        if self._c.mode is _BODY and self._c.body_hole and self._greeted:
            self._body_ended_in_hole()
        # The first reply is the greeting, unless the capture started late and the client's
        # command came first (then it is that command's answer), or the greeting was lost in a
        # hole the client had acknowledged before that command (``_greeting_in_hole``: a 220
        # after the client's EHLO and STARTTLS then answers the STARTTLS). A 220 answers only
        # STARTTLS (RFC 3207 4): with none pending it is still the greeting, its last line after
        # its first ones were lost (a client that spoke before the greeting's end, as one
        # caught in Postfix postscreen's pregreet trap, did not wait for it). So is a 554 after
        # the client's hello: RFC 5321 4.3.2 gives 554 to the connection's opening, not to EHLO
        # or HELO (504, 550, 502; and 421, which answers any command and stays its answer).
        # Postfix does answer a hello with 554 under smtpd_delay_reject = no ("Client host
        # rejected"): only a greeting not yet seen makes the 554 its line (the greeting whole in
        # the capture, or a late start after it, leaves it the hello's answer); with the
        # greeting's start in a hole the client acknowledged before its hello, a whole greeting
        # lost and that 554 cannot be told from postscreen's, whose reading this keeps.
        greeting = not self._greeted and (
            not self._pending or (last.code in (220, 421, 554)
                                  and self._pending[0].verb != "STARTTLS"
                                  and not (self._greeting_in_hole
                                           and (self._starttls_pending() or not (
                                               last.code == 220 or (last.code == 554 and self._pending[0].verb
                                                                    in _HELLO_VERBS))))))
        # (in a late start the greeting counts as seen, but the capture may begin inside it: the
        # first reply, a 220 after the client's first captured commands, none a STARTTLS, is
        # its last line, for a 220 answers none of them; so is the first reply whose first line,
        # of a greeting's code, came before the client's first captured command, its hello,
        # whatever its last line's: the server answers only what it has read, nothing comes
        # before a hello but the greeting, and a client that did not wait for the greeting's
        # end, as one caught in postscreen's pregreet trap, gets its 554 or 421 there)
        if self._late and not self._replied and self._pending and (
                (last.code == 220 and not self._starttls_pending())
                or (not self._reply_began_at and lines[0].code in (220, 421, 554)
                    and self._pending[0].verb in _HELLO_VERBS)):
            greeting = True
        self._replied = True
        if not self._greeted and not greeting:
            self._greeted = True
        if (not greeting and last.code == 220 and self._client_hole
                and (not self._pending or self._replies_lost_with_starttls())
                and not self._unclaimed and self._c.mode is _LINES
                and not self._starttls_accepted):
            self._starttls_lost_in_hole()
        answers: Command | None = None
        server_answers: Command | None = None
        stray = False
        for_lost = not greeting and self._answers_lost(span.start)
        if greeting:
            self._greeted = True
        elif for_lost and (not self._srv_pending or self._began_before_hole_cmd(
                self._srv_pending[0], span.start)):
            pass    # the server's answer to a command lost in the hole (none of those seen)
        elif self._srv_pending:
            if len(self._srv_pending) > 1:
                # Replies were lost in a hole: a code that only one pending command can get
                # (220 STARTTLS, 354 DATA, 221 QUIT, 334 AUTH) shows which one this answers;
                # the commands before it lost their replies. Without a hole, a 221 or a 354
                # with its command pending behind others answers that command too: the server
                # never answered the ones before it (a client that gave up waiting for the
                # answer to EHLO or STARTTLS sends QUIT, and the server's 221 answers the QUIT;
                # the client reads it so, its own wait for the other answer over).
                want = (_ONLY_ANSWERS if self._server_gap_unmatched else _LATER_ONLY).get(last.code or 0)
                if want is None and helo_fallback:
                    want = "HELO"
                if want is not None:
                    idx = 0     # (a loop, not next() of a generator: cpdef, session.pxd)
                    for i, c in enumerate(self._srv_pending):
                        if c.verb == want:
                            idx = i
                            break
                    for _ in range(idx):
                        lost = self._srv_pending.popleft()
                        if self._pending and self._pending[0] is lost and not self._unclaimed:
                            self._pending.popleft()
            server_answers = self._srv_pending.popleft()
        else:
            # Sent with no command awaiting an answer: to the server, the rest of its last reply.
            server_answers = self._srv_last
            stray = True
        if server_answers is not None and not stray:
            self._srv_last = server_answers
        if not greeting and not self._unclaimed and self._pending and not for_lost:
            answers = self._pending.popleft()
        gap_unmatched = self._server_gap_unmatched
        self._server_gap_unmatched = False
        # (a candidate only while it waits for the client's next command, below: one that goes
        # out at once, unpaired after a hole of the server, can no longer carry the mark)
        lone = (not greeting and last.code == 220 and not damaged and not self._late
                and self._client_unseen())
        self._lone_220 = False
        reply = Reply(side=_SERVER, span=span, code=last.code, lines=lines, answers=answers,
                      greeting=greeting, damaged=damaged, server_answers=server_answers,
                      stray=stray, lost_command=for_lost, ts_ns=self._ts)
        if (server_answers is not None and not stray and server_answers.verb == "STARTTLS"
                and reply.code == 220):
            self._server_after_220(server_answers)   # the server speaks TLS next, whatever the client read
        elif (server_answers is not None and not stray and server_answers.verb == "DATA"
              and reply.code == 354):
            # The server reads what follows DATA as content, whatever the client meant.
            self._srv_in_data = True
            rest = list(self._srv_pending)
            self._srv_pending.clear()
            for cmd in rest:
                self._srv_push(cmd)
        if greeting:
            self._emit(reply)
            return
        if answers is None:
            if for_lost or self._client_hole:
                self._sasl_lost(last.code)
            if for_lost:
                self._anomaly(_SERVER, span, AnomalyCode.REPLY_WITHOUT_COMMAND,
                              f"reply {last.code} answers a command lost in a hole of the "
                              "client's bytes")
                self._emit(reply)
                return
            if (self._c.ended or gap_unmatched or damaged or self._client_hole
                    or (self._late and not self._commands_seen)):
                # No command will read it (or a hole makes the pairing a guess: it may answer
                # a command lost in the client's hole, or one from before a late start):
                # unpaired.
                self._anomaly(_SERVER, span, AnomalyCode.REPLY_WITHOUT_COMMAND,
                              f"reply {last.code} arrived with no command pending")
                self._emit(reply)
                return
            if len(self._unclaimed) >= self.config.max_pending_commands:
                self._anomaly(_SERVER, span, AnomalyCode.TOO_MANY_PENDING,
                              f"more than {self.config.max_pending_commands} replies await a "
                              "command", once=True)
                self._flush_unclaimed()
            self._unclaimed.append(reply)   # in the client's buffer until its next command
            self._lone_220 = lone
            return
        self._emit(reply)
        self._client_reads(reply)

    def _helo_after_ehlo_timeout(self, lines: tuple[ReplyLine, ...]) -> bool:
        """A one-line 250 that began after a HELO the client sent a second or more after an
        EHLO still unanswered, nothing of the server between: the client gave up waiting for the
        EHLO reply and fell back to HELO (PHPMailer: its read gives up after ``Timelimit`` and
        ``hello()`` then sends HELO on the same connection), so the reply answers the HELO, for
        the client and the server alike (a HELO reply is one line; a late EHLO reply of several
        lines, the extension list, keeps the order it came in), and the EHLO got no reply;
        unless a second reply follows it before anything else, within a second and not a 421
        (``_settle_helo``): a slow server answered the EHLO late (a one-line EHLO reply, no
        extensions), then the HELO."""
        p = self._srv_pending
        if (len(lines) != 1 or lines[0].code != 250 or len(p) != 2 or p[0].verb != "EHLO"
                or p[1].verb != "HELO" or self._reply_began_at != self._commands_seen):
            return False
        return bool(p[0].ts_ns) and p[1].ts_ns - p[0].ts_ns >= WAITED_NS

    def _answers_lost(self, start: int) -> bool:
        """Does the reply that begins at server offset ``start`` answer a command lost in a
        hole of the client's bytes? It does when no visible command awaited it: the client
        lost bytes and has sent no command since (none is pending), or the oldest pending
        command is the first one after the hole and the reply began before it. The server
        answers only what it has read, so bytes it sent before the command (the session sees
        both sides in causal order) cannot answer it; after the hole, what they answer is the
        command lost in it (or the rest of an earlier reply: which, the hole does not tell)."""
        if self._unclaimed:
            return False        # replies wait for the client's next command: it reads them
        if not self._pending:
            return self._client_hole
        return self._began_before_hole_cmd(self._pending[0], start)

    def _began_before_hole_cmd(self, cmd: Command, start: int) -> bool:
        """``cmd`` is the client's first command after a hole and the reply at server offset
        ``start`` began before it."""
        return cmd is self._hole_cmd and start < self._hole_cmd_server_at

    def _sasl_lost(self, code: int | None) -> None:
        """A final reply (not 334) during a SASL exchange that answers a client line lost in a
        hole: the server's verdict on it (235, 535). The exchange is over, and the client's next
        line is a command, not another SASL line."""
        if code != 334 and (self._c.mode is _SASL_LINE or self._auth_open):
            self._c.mode = _LINES
            self._auth_open = False

    def _client_reads(self, reply: Reply, drain: bool = True) -> None:
        """The client acts on ``reply`` as the answer to ``reply.answers``."""
        answers = reply.answers
        if answers is None:
            return
        verb = answers.verb
        if verb == "AUTH" or verb == _SASL:
            if reply.code == 334:
                self._c.mode = _SASL_LINE
            else:
                self._auth_open = False
        elif answers is self._hold_for:
            self._release_hold(reply, drain)

    def _server_after_220(self, starttls: Command | None) -> None:
        """The server's bytes after its 220 (to ``starttls``; None: a 2xx the client's TLS took
        for it) must be TLS; ``_tls_expected`` judges them (those sent before any client byte
        are response injection)."""
        self._s.mode = _TLS_EXPECTED
        self._client_spoke_after_220 = False
        self._ready_ns = self._ts
        end = -1
        if starttls is not None:
            # (one inferred in a hole ends where the hole does, when the hole held nothing else:
            # no more bytes than a STARTTLS line; holes before it, an EHLO lost, held no TLS)
            if not starttls.inferred or self._client_last_hole <= _MAX_STARTTLS_LINE:
                end = starttls.span.end
        self._starttls_end = end

    # --- after STARTTLS ---------------------------------------------------------

    def _tls_expected(self, st: _SideState, whole: bool = False) -> bool:
        """Judge the bytes held where TLS is due (``whole``: what is held is the whole text,
        ``_flush_text``)."""
        buf = bytes(st.lines.buf[:5])
        if not buf:
            return False
        if st.side is _CLIENT:
            self._client_spoke_after_220 = True
        verdict = sniff_tls(buf)
        if verdict is None:
            return False
        if verdict:
            if (st.side is _SERVER and not self._client_spoke_after_220 and not self._decrypted
                    and self._starttls_accepted and not self._injection_reported
                    and 0 <= self._seg_ack <= self._starttls_end):
                # The server's TLS before any byte of the client after the 220 (its handshake
                # flight written with the 220, a server or proxy that starts TLS at once), from a
                # segment that acknowledges nothing of the client after its STARTTLS (not a
                # ClientHello the capture lost, sent with the STARTTLS or after it, nor bytes of a
                # hole that held the STARTTLS and could hold more): a TLS server speaks only after the ClientHello
                # (RFC 8446 2, RFC 5246 7.3), so these records answer nothing the client sent,
                # and a client meets bytes after the 220 that are not the answer to its TLS, as
                # with plaintext there. Read as TLS all the same (what they are), and reported.
                self._injection_reported = True
                start = st.lines.start
                name = _RECORD_NAMES.get(buf[0], "TLS")
                self._anomaly(_SERVER, Span(_SERVER, start, start + 5),
                              AnomalyCode.STARTTLS_RESPONSE_INJECTION,
                              f"server sent a TLS {name} record after its 220, before any client byte "
                              "(no ClientHello to answer)")
            st.mode = _TLS
            st.tls = TlsObserver(st.side)
            st.held_ns = 0
            return True
        # Judge a whole line (or 64 bytes), whatever the segmentation.
        held = st.lines.buf
        cut = held.find(b"\n", 0, 64) + 1 or (64 if len(held) >= 64 else (len(held) if whole else 0))
        if not cut:
            self._held_text = True      # (``_flush_text`` if something else comes first)
            return False
        first = bytes(held[:cut])
        start = st.lines.start
        # (Plaintext of the server a second or more after its 220, no client byte since, is no
        # injection in the 220's flight but a server that gave up waiting for the ClientHello:
        # its timeout's 421, RFC 5321 3.8.)
        if (st.side is _SERVER and not self._client_spoke_after_220 and not self._decrypted
                and self._starttls_accepted
                and not (self._ready_ns and self._ts - self._ready_ns >= WAITED_NS)):
            del held[:cut]
            st.lines.start = start + cut
            st.held_ns = self._ts       # (what follows came with the segment that ended that line)
            if not self._injection_reported:
                self._injection_reported = True
                self._anomaly(_SERVER, Span(_SERVER, start, start + cut),
                              AnomalyCode.STARTTLS_RESPONSE_INJECTION,
                              "server sent " + repr(_preview(first)) + " after its 220, before "
                              "any client byte")
            return True
        self._not_tls(st, first, start)
        return True

    def _flush_text(self, keep: _SideState | None) -> None:
        """Something of the conversation comes that is not more bytes of ``keep`` (None: of no
        side): emit the not-TLS text the other side holds now, with the bytes it has (at least
        one, proven not TLS), so that the events are in the order their bytes came (the verdict
        reads that order: a client's ``QUIT`` without its CRLF in the TLS handshake comes before
        the server's close, not at the client's end). The rest of that line, if it comes later,
        belongs to the same text only if nothing came between: after a flush a client's SMTP
        command goes on as lines (the command is read whole at its line end), any other text
        stops the side as before, and once TLS began (``TlsObserver.flush_text``) the rest is
        only counted."""
        held = False
        for st in (self._c, self._s):
            if st.ended:
                continue
            if st.mode is _TLS:
                tls = st.tls
                if tls is None or not tls.text_pending:
                    continue
                if st is keep:
                    held = True
                else:
                    self._emit_all(tls.flush_text())
            elif st.mode is _TLS_EXPECTED and len(st.lines) \
                    and sniff_tls(bytes(st.lines.buf[:5])) is False:
                if st is keep:
                    held = True
                elif self._tls_expected(st, whole=True):
                    self._drain(st)
        self._held_text = held

    def _not_tls(self, st: _SideState, data: bytes, start: int) -> None:
        """Bytes that are no TLS where TLS is due (``data``, their first line or 64 bytes, at
        ``start``): a ``PlaintextAfterStartTls`` stamped with the segment that carried their first
        byte (``_SideState.held_ns``), not the one that completed the line: a ``QUIT`` without its
        CRLF is judged only at the stream's end, and the verdict reads when the client sent it (as
        ``TlsNotTls`` once TLS began, ``smtp.tls``); the current segment's time when that is not
        known (bytes held before TLS was due)."""
        side = st.side
        if side is _CLIENT:
            self._client_spoke_after_220 = True
            smtp_like = _SMTP_COMMAND_START.match(data) is not None
        else:
            smtp_like = _REPLY_START.match(data) is not None
        held_ns, st.held_ns = st.held_ns, 0
        self._emit(PlaintextAfterStartTls(side=side, span=Span(side, start, start + len(data)),
                                          preview=decode_text(_preview(data)), smtp_like=smtp_like,
                                          ts_ns=held_ns or self._ts))
        if smtp_like and (side is _CLIENT or self._decrypted or not self._starttls_accepted):
            # A capture taken behind a TLS terminator (or an implicit-TLS port answered in
            # plaintext): the dialogue goes on readable. Parse it as SMTP again.
            if side is _CLIENT:
                self._decrypted = True
                self._pending.clear()
                self._srv_pending.clear()
                self._srv_in_data = False
                self._flush_unclaimed()
                if self._s.mode is _TLS_EXPECTED:
                    self._s.mode = _LINES
            st.mode = _LINES
        else:
            st.mode = _STOPPED
            st.lines.take_rest()


#: a TLS record's content type, named (``_tls_expected``'s anomaly)
_RECORD_NAMES = {20: "ChangeCipherSpec", 21: "alert", 22: "handshake", 23: "application data", 24: "heartbeat"}
#: the first byte of a TLS record that answers a ClientHello: a handshake record (ServerHello)
#: or an alert refusing it
_HANDSHAKE_ANSWER = (b"\x15", b"\x16")
#: the commands that open a session (RFC 5321 4.1.1.1, RFC 2033 4.1)
_HELLO_VERBS = ("EHLO", "HELO", "LHLO")
#: reply codes that only one command can get (to re-pair replies after a hole)
_ONLY_ANSWERS = {220: "STARTTLS", 354: "DATA", 221: "QUIT", 334: "AUTH"}
#: the codes of ``_ONLY_ANSWERS`` that pair past unanswered commands with no hole (a 220 after
#: the greeting is read by the hole and lone-220 rules instead)
_LATER_ONLY = {354: "DATA", 221: "QUIT"}

_BARE_VERBS = frozenset({b"QUIT", b"RSET", b"NOOP", b"DATA", b"HELP", b"STARTTLS", b"EHLO",
                         b"HELO", b"TURN", b"ETRN"})


_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _is_text(content: bytes) -> bool:
    """Could this be an SMTP command or reply line (printable, UTF-8)? Used where the
    position in the stream is unsure (a late start, after a hole), so that binary, TLS
    records above all, never becomes SMTP."""
    if _CONTROL.search(content):
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _clean_record(buf: bytes | bytearray) -> bool:
    """``buf`` starts with a TLS record header of a known content type (ChangeCipherSpec,
    Alert, Handshake, ApplicationData) and record version (SSL 3.0 to TLS 1.3), of a length a
    record can have: where a line would begin after a hole, such a record starts TLS that
    began in the hole (binary of no record stays skipped)."""
    if len(buf) < 5:
        return False
    length = (buf[3] << 8) | buf[4]
    return 20 <= buf[0] <= 23 and buf[1] == 3 and buf[2] <= 4 and 0 < length <= 16384 + 2048


def _tls_after_hold_hole(data: bytes, *, at_end: bool) -> bool | None:
    """The client's bytes after a hole that followed its STARTTLS (``_hold_lost``): can they
    be the TLS it started, the rest of a record whose head is in the hole? True when they start
    a TLS record, or their first line (64 bytes at most) is no text; False when it is text (a
    command line: plaintext, judged as such); None while too few bytes are there to tell
    (``at_end``: decide on what is there)."""
    if not data:
        return None
    head = sniff_tls(data[:5])
    if head:
        return True
    nl = data.find(b"\n", 0, 64)
    if nl < 0 and len(data) < 64 and not at_end:
        return None
    first = data[:nl + 1] if nl >= 0 else data[:64]
    return not _is_text(_lstrip_continuation(first).rstrip(b"\r\n"))


def _answers_hello(buf: bytes | bytearray) -> bool:
    """``buf`` starts with a handshake record whose first message is a ServerHello (type 2; a
    HelloRetryRequest is one too): the server answers with it only a ClientHello it read."""
    return buf[:1] == b"\x16" and buf[5:6] == b"\x02"


def _lstrip_continuation(data: bytes) -> bytes:
    """``data`` without up to 3 leading UTF-8 continuation bytes (a cut character)."""
    k = 0
    while k < 3 and k < len(data) and 0x80 <= data[k] < 0xC0:
        k += 1
    return data[k:]


def _looks_like_sasl(content: bytes) -> bool:
    """A client line during an AUTH exchange that is not a command: base64, '*' or '='."""
    if b" " in content or b":" in content:
        return False
    return content.upper() not in _BARE_VERBS


def _mode_of(st: _SideState) -> str:
    """The side's mode now (a call, so that type checkers do not narrow it across calls that
    change it)."""
    return st.mode


def _preview(data: bytes, n: int = 64) -> bytes:
    return bytes(data[:n])
