"""Everything the SMTP core observes, as data.

Each event carries the ``side`` that sent the bytes and the ``span`` of those bytes in that
side's reassembled stream; the pipeline maps spans to frame numbers. Events are values: equal
and hashable by value, never changed once made (a changed event is a ``dataclasses.replace``),
and never hold message bodies or credentials. They are plain ``@dataclass(kw_only=True,
unsafe_hash=True)`` classes, not ``model.frozen``, because that is the form Cython compiles: in
the compiled build (``events.pxd``) each is an extension type whose ``__init__``, equality, hash
and repr are C and whose fields refuse assignment; here, the reference, a dataclass without
slots (an assignment is not refused at run time, as with ``model.frozen``).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pcapsmtp.model import Side, Span

__all__ = ["Event", "ReplyLine", "Command", "Reply", "MessageBody", "AuthExchange",
           "PlaintextAfterStartTls", "StreamGap", "StreamEnded", "Anomaly", "AnomalyCode",
           "ImplicitTls", "TlsInProgress", "EOM_VERB", "SASL_VERB", "WAITED_NS"]

#: verb of the pseudo-command the reply after a message body (DATA content) answers
EOM_VERB = "*EOM"
#: verb of the pseudo-command the reply after a SASL response line answers
SASL_VERB = "*SASL"
#: Did the side that acted wait? An act (bytes, a close, a reset) of a side this long or longer
#: after what it was waiting for (its STARTTLS, its 220, its ClientHello...) is the side giving up
#: waiting, not part of the flight it sent without waiting: real peers wait seconds to minutes
#: (RFC 5321 4.5.3.2 suggests minutes), while a flight sent without waiting (pipelined or injected
#: commands, a close right after the last bytes) leaves within a round trip. Both the awaited
#: step and the act are in the capture, and the question is about the actor's own timing, so the
#: bound is a round trip's: a lower bound on a deliberate wait. Not the same question as
#: ``analysis.verdict.SLOWEST_PEER_NS`` (10 s): whether bytes missing from the capture could
#: still have come from a slow peer, which needs an upper bound on a working peer's delay.
WAITED_NS = 1_000_000_000


class AnomalyCode(StrEnum):
    """Closed catalogue of protocol deviations the core records (stable names)."""

    BARE_LF = "bare_lf"                          #: a line ended in LF without CR
    LINE_TOO_LONG = "line_too_long"              #: a line longer than the core keeps
    MALFORMED_REPLY_LINE = "malformed_reply_line"  #: a server line that is not `ddd[ -]text`
    REPLY_CODE_MISMATCH = "reply_code_mismatch"  #: a continuation line with another code
    REPLY_WITHOUT_COMMAND = "reply_without_command"  #: a reply no pending command can own
    TOO_MANY_PENDING = "too_many_pending_commands"  #: the pending-command queue hit its bound
    TOO_MANY_REPLY_LINES = "too_many_reply_lines"  #: a reply longer than the bound
    STARTTLS_COMMAND_INJECTION = "starttls_command_injection"  #: client plaintext after STARTTLS, before 220
    STARTTLS_RESPONSE_INJECTION = "starttls_response_injection"  #: server plaintext after its 220
    NUL_BYTE = "nul_byte"                        #: a NUL in a command or reply line


@dataclass(kw_only=True, unsafe_hash=True)
class Event:
    side: Side
    span: Span
    ts_ns: int = 0


@dataclass(kw_only=True, unsafe_hash=True)
class ReplyLine:
    """One server line as sent: its own code and separator are kept, not normalised."""

    code: int | None        #: the line's 3-digit code, None when the line has none
    sep: str                #: "-" (continues), " " (last), "" (code alone), or the odd character seen
    text: str               #: the text after code and separator, decoded for display
    raw: bytes              #: the line as sent, line ending included (bounded by the line limit)
    span: Span
    bare_lf: bool = False   #: ended in LF without CR
    octets: int = 0         #: length on the wire including the line ending
    truncated: bool = False  #: the line was longer than the core keeps

    @property
    def continued(self) -> bool:
        return self.sep == "-"


@dataclass(kw_only=True, unsafe_hash=True)
class Command(Event):
    """A client command line outside DATA/BDAT content and outside an AUTH exchange."""

    verb: str               #: upper-cased first word ("EHLO", "STARTTLS", ...)
    argument: str           #: the rest of the line (for AUTH: the mechanism only)
    raw_verb: str           #: the verb as sent (case kept)
    bare_lf: bool = False
    octets: int = 0
    #: not in the capture: lost in a hole of the client's bytes, known from the server's answer
    #: (a 220 after the greeting answers only STARTTLS); its span is empty, at the hole's end
    inferred: bool = False


@dataclass(kw_only=True, unsafe_hash=True)
class Reply(Event):
    """A complete server reply (one or more lines), matched to the command it answers.

    A client takes the lines up to the first final line as one reply and pairs it with its
    oldest unanswered command: ``answers`` is that pairing, the one the client acted on. The
    server meant the reply for ``server_answers``. The two differ after a ``stray`` reply (one
    the server sent with no command awaiting an answer, such as the rest of an EHLO reply that
    ended early): the client reads it as the answer to its next command, and every later reply
    one behind. A reply that waits in the client's buffer for that next command is emitted
    after the command, where the client reads it."""

    code: int | None                 #: the code of the last line (what clients act on)
    lines: tuple[ReplyLine, ...]
    answers: Command | None          #: the client's pairing; None for the greeting and unclaimed replies
    greeting: bool = False           #: the first reply of the conversation
    damaged: bool = False            #: bytes of this reply were lost (gap) or cut (limit)
    server_answers: Command | None = None  #: the command the server sent it for (for a stray: the
    #: command whose reply it continues; None for the greeting and its continuation)
    stray: bool = False              #: sent while no command awaited an answer (server's view)
    #: a server hole this reply shows harmless: the hole came right before it (no other reply
    #: between), was shorter than the shortest reply ("250\n"), and this reply, whole and with
    #: a code, starts where the hole ends; so the hole fell between two replies and held none
    #: of what the client read. Set by the session when it emits the reply (the hole's own
    #: event was out before the bytes after it were seen).
    harmless_hole: StreamGap | None = None
    #: it answers a command of the client lost in a hole: no visible command awaited it when
    #: the server began it (the client had sent none since the hole, or sent its next one
    #: after the reply began); ``answers`` and ``server_answers`` are then None
    lost_command: bool = False
    #: a 220 after the greeting that TLS follows with nothing of the client in the capture
    #: before it but holes (a capture of the server's direction, or one whose client packets come
    #: only later): the session read the server's next bytes, or the client's first bytes (its
    #: ClientHello), as TLS, so this 220 answers a STARTTLS the capture does not show. The
    #: session's decision, which the verdict reads (``SmtpSession._tls_after_lone_220``,
    #: ``SmtpSession._client_tls_after_lone_220``)
    tls_follows: bool = False

    @property
    def out_of_step(self) -> bool:
        """The client pairs this reply with another command than the server meant."""
        return not self.greeting and self.answers is not self.server_answers


@dataclass(kw_only=True, unsafe_hash=True)
class MessageBody(Event):
    """DATA or BDAT content: only its size is kept."""

    octets: int
    bdat: bool = False
    complete: bool = True


@dataclass(kw_only=True, unsafe_hash=True)
class AuthExchange(Event):
    """Client lines of a SASL exchange. Their content is credentials and is never kept."""

    lines: int


@dataclass(kw_only=True, unsafe_hash=True)
class ImplicitTls(Event):
    """The client's first bytes are a TLS record: TLS from the first byte (SMTPS)."""


@dataclass(kw_only=True, unsafe_hash=True)
class TlsInProgress(Event):
    """The capture starts inside TLS on this side: its first captured bytes are TLS (or
    binary that is not SMTP), and how TLS began (STARTTLS or TLS from the first byte) is not
    in the capture. Not an event of the conversation: a fact about the capture.

    ``after_hole``: not the capture's start but a hole before it: the client sent STARTTLS,
    bytes were lost before its answer (so which reply the client read as that answer is a
    guess), and this side's next bytes are a TLS record where a line would begin; or a record
    that starts cleanly (a header of a known type and version) right where a line would begin
    after a hole of this side: the TLS began in the hole."""

    after_hole: bool = False


@dataclass(kw_only=True, unsafe_hash=True)
class PlaintextAfterStartTls(Event):
    """Bytes that are not TLS where TLS was expected (after a 220 to STARTTLS)."""

    preview: str            #: at most 64 bytes, decoded for display
    smtp_like: bool         #: the bytes read as an SMTP command (client) or reply (server)


@dataclass(kw_only=True, unsafe_hash=True)
class StreamGap(Event):
    """``length`` bytes of this side were never captured. ``cut``: they were on the wire in a
    frame the capture's snap length cut (its tail), not lost with a whole packet. ``acked``: the
    peer acknowledged all of them, so it received them and only the capture lost them (the TCP
    layer's ``StreamGap.acked``)."""

    length: int
    cut: bool = False
    acked: bool = False


@dataclass(kw_only=True, unsafe_hash=True)
class StreamEnded(Event):
    reset: bool = False
    truncated: bool = False  #: the capture (or flow tracking) ended, no FIN or RST seen


@dataclass(kw_only=True, unsafe_hash=True)
class Anomaly(Event):
    code: AnomalyCode
    detail: str = ""
