"""The exchange of one conversation as lines for a person (for ``explain``), with each line's
frame and the findings that point at it. Bodies and credentials are never included."""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any

from pcapsmtp.analysis.verdict import Item, Overlap, Transcript
from pcapsmtp.smtp.events import (
    EOM_VERB, SASL_VERB, Anomaly, AuthExchange, Command, ImplicitTls, MessageBody, PlaintextAfterStartTls, Reply,
    StreamEnded, StreamGap, TlsInProgress,
)
from pcapsmtp.smtp.tls import (
    TlsAlert, TlsApplicationData, TlsCertificate, TlsChangeCipherSpec, TlsClientHello,
    TlsEncryptedHandshake, TlsEvent, TlsHandshakeOther, TlsNotTls, TlsServerHello, TlsServerKeyExchange,
    version_name,
)

__all__ = ["ExchangeLine", "build_exchange", "in_dialogue_order", "message_name"]

MAX_LINES = 400
_SIDE = {"C": "client", "S": "server", "!": "capture"}


@dataclass(slots=True)
class ExchangeLine:
    frame: int | None
    side: str            #: "C", "S" or "!" (the capture)
    text: str
    marks: list[str]     #: finding/verdict texts pointing at this line
    offset: int | None = None   #: the line's offset in its side's stream
    ts_ns: int | None = None    #: capture time of the event that carried the line (the HTML ladder)
    file: str | None = None     #: the file holding ``frame`` (rotated sets only)
    #: where the line stands in the dialogue (read by ``in_dialogue_order``): the event it comes
    #: from (its index in the transcript), the stream its bytes are in ("client"/"server") and
    #: their offset there; for a reply's lines, the event of the command the client paired it with
    event: int | None = None
    stream: str | None = None
    pos: int | None = None
    reply: bool = False
    answers: int | None = None
    #: a gap line's (``side`` "!"): the peer acknowledged the missing bytes (it received them and
    #: only the capture lost them); None for every other line
    acked: bool | None = None


#: handshake messages whose name in the RFCs' prose is not their enum identifier's words run together
_MESSAGE_NAME_EXCEPTIONS = {"certificate_url": "CertificateURL", "ekt_key": "EKTKey"}


def message_name(name: str) -> str:
    """A TLS handshake message as the RFCs' prose and Wireshark name it (``ServerKeyExchange``,
    ``ServerHelloDone``, ``NewSessionTicket``), from the enum identifier the TLS layer gives it
    (``server_key_exchange``), so that every record of the exchange is named in one style beside
    ``ClientHello`` and ``ServerHello``; a type no RFC names is ``handshake type N``. (Alerts keep
    their enum identifiers, ``handshake_failure``, as the RFCs and TLS libraries write them.)"""
    if name in _MESSAGE_NAME_EXCEPTIONS:
        return _MESSAGE_NAME_EXCEPTIONS[name]
    if name.startswith("unknown_") and name[8:].isdigit():
        return f"handshake type {name[8:]}"
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _tls_text(ev: TlsEvent) -> str:
    if isinstance(ev, TlsClientHello):
        vers = ", ".join(version_name(v) for v in ev.supported_versions) or version_name(ev.legacy_version)
        return f"[TLS ClientHello: versions {vers}" + (f", SNI {ev.sni}" if ev.sni else "") + "]"
    if isinstance(ev, TlsServerHello):
        return f"[TLS ServerHello: {version_name(ev.selected_version)}, cipher 0x{ev.cipher_suite:04x}]"
    if isinstance(ev, TlsCertificate):
        leaf = ev.certificates[0] if ev.certificates else None
        return ("[TLS Certificate: " + (f"{leaf.subject}, valid {leaf.not_before} to {leaf.not_after}"
                                        if leaf else "empty") + "]")
    if isinstance(ev, TlsAlert):
        if ev.encrypted:
            return "[TLS alert, encrypted (alert-sized record)]"
        return f"[TLS alert: {'fatal' if ev.level == 2 else 'warning'} {ev.name} ({ev.description})]"
    if isinstance(ev, TlsChangeCipherSpec):
        return "[TLS ChangeCipherSpec]"
    if isinstance(ev, TlsApplicationData):
        return f"[TLS encrypted record, {ev.length} bytes]"
    if isinstance(ev, TlsEncryptedHandshake):
        return f"[TLS encrypted handshake, {ev.length} bytes]"
    if isinstance(ev, TlsServerKeyExchange) and ev.dh_bits:
        return f"[TLS {message_name(ev.name)}: Diffie-Hellman group of {ev.dh_bits} bits]"
    if isinstance(ev, TlsHandshakeOther):
        return f"[TLS {message_name(ev.name)}]"
    if isinstance(ev, TlsNotTls):
        return f"[not TLS: {ev.preview[:40]!r}]"
    return f"[TLS {type(ev).__name__.removeprefix('Tls')}]"


def build_exchange(t: Transcript, conv: dict[str, Any]) -> list[ExchangeLine]:
    out: list[ExchangeLine] = []
    index: dict[int, int] = {}      # id(command) -> its event's index
    for k, it in enumerate(t.items):
        if len(out) >= MAX_LINES:
            out.append(ExchangeLine(None, "!", f"[... {len(t.items)} events, the rest not shown]", []))
            break
        if isinstance(it.event, Command):
            index[id(it.event)] = k
        _lines(it, out, k, index)
    # Mark the lines the findings and the verdict point at.
    marks: list[tuple[int | None, str, str]] = []
    for f in conv["findings"]:
        side = {"client": "C", "server": "S"}.get(f["side"], "")
        marks.append((f["frame"], side, f"{f['code']}: {f['message']}"))
    line_marks: dict[tuple[str, int], list[str]] = conv.get("_line_marks") or {}
    for frame, side, text in marks:
        if frame is None:
            continue
        code = text.split(":", 1)[0]
        # the line the finding marked, in its own frame first: two replies may have a finding of
        # the same code (an EHLO sent again), each marked on its own line
        target = next((ln for ln in out if ln.offset is not None and ln.frame == frame
                       and code in line_marks.get((_SIDE[ln.side], ln.offset), ())), None)
        target = target or next((ln for ln in out if ln.offset is not None
                                 and code in line_marks.get((_SIDE[ln.side], ln.offset), ())), None)
        target = target or next((ln for ln in out if ln.frame == frame and (not side or ln.side == side)), None)
        target = target or next((ln for ln in out if ln.frame == frame), None)
        if target is not None and text not in target.marks:
            target.marks.append(text)
    # every reader (explain, the HTML ladder, diff) gets the dialogue's order; the marks were
    # placed on the lines in the order the events were concluded
    return in_dialogue_order(out)


def _lines(it: Item, out: list[ExchangeLine], k: int, index: dict[int, int]) -> None:
    start = len(out)
    _event_lines(it, out)
    ev = it.event
    stream: str | None = None
    pos: int | None = None
    # (an overlap is listed where the retransmission came, not where its bytes are: by frame)
    if not isinstance(ev, Overlap) and getattr(ev, "span", None) is not None:
        stream, pos = ev.span.side.value, ev.span.start
    reply = isinstance(ev, Reply)
    answers = index.get(id(ev.answers)) if reply and ev.answers is not None else None
    for ln in out[start:]:
        ln.ts_ns = it.ts_ns or None
        ln.event, ln.stream, ln.reply, ln.answers = k, stream, reply, answers
        # a reply's lines each at its own offset
        ln.pos = ln.offset if reply and ln.offset is not None else pos


def _event_lines(it: Item, out: list[ExchangeLine]) -> None:
    ev = it.event
    fr = it.frames[0] if it.frames else None
    if isinstance(ev, Reply):
        for k, ln in enumerate(ev.lines):
            lf = (it.line_frames or {}).get(ln.span.start, fr)
            code = "" if ln.code is None else str(ln.code)
            marks = [_pairing_note(ev)] if k == 0 and (ev.out_of_step or ev.lost_command) else []
            out.append(ExchangeLine(lf, "S", f"{code}{ln.sep}{ln.text}", marks, ln.span.start))
    elif isinstance(ev, Command):
        if ev.verb == EOM_VERB:
            return
        text = ev.raw_verb + (" " + ev.argument if ev.argument else "")
        if ev.verb == "AUTH":
            text += " [credentials not shown]"
        if ev.inferred:
            out.append(ExchangeLine(None, "C", f"[{text}: lost in the hole above, known from the "
                                    "server's 220]", [], ev.span.start))
            return
        out.append(ExchangeLine(fr, "C", text, [], ev.span.start))
    elif isinstance(ev, MessageBody):
        out.append(ExchangeLine(fr, "C", f"[message content: {ev.octets} octets, not shown]", []))
    elif isinstance(ev, AuthExchange):
        out.append(ExchangeLine(fr, "C", "[SASL response: not shown]", []))
    elif isinstance(ev, StreamGap):
        how = " cut by the snap length," if ev.cut else ""
        out.append(ExchangeLine(fr, "!", f"[{ev.length} bytes from the {ev.side}{how} missing in the capture]",
                                [], acked=ev.acked))
    elif isinstance(ev, StreamEnded):
        how = "RST" if ev.reset else ("capture ends" if ev.truncated else "FIN")
        out.append(ExchangeLine(fr, "C" if ev.side.value == "client" else "S", f"[{how}]", []))
    elif isinstance(ev, ImplicitTls):
        out.append(ExchangeLine(fr, "C", "[TLS from the first byte]", []))
    elif isinstance(ev, TlsInProgress):
        out.append(ExchangeLine(fr, "C" if ev.side.value == "client" else "S",
                                "[TLS from here: a TLS record where a line would begin, after "
                                "bytes lost in a hole]" if ev.after_hole else
                                "[TLS already under way: the capture starts inside it, how TLS "
                                "began is not in the capture]", [], ev.span.start))
    elif isinstance(ev, PlaintextAfterStartTls):
        out.append(ExchangeLine(fr, "C" if ev.side.value == "client" else "S",
                                f"[readable where TLS was expected: {ev.preview[:60]!r}]", [],
                                ev.span.start))
    elif isinstance(ev, Overlap):
        out.append(ExchangeLine(ev.second_frame, "!",
                                f"[frame {ev.second_frame} resends {ev.length} bytes of frame "
                                f"{ev.first_frame} with other content]", []))
    elif isinstance(ev, Anomaly):
        return
    elif isinstance(ev, TlsEvent):
        out.append(ExchangeLine(fr, "C" if ev.side.value == "client" else "S", _tls_text(ev), [],
                                ev.span.start))


def in_dialogue_order(lines: Sequence[ExchangeLine]) -> list[ExchangeLine]:
    """The exchange in the order of the dialogue, for a person reading who said what when.

    The lines come in the order the session concluded their events. A reply is concluded by its
    final line, at once, except when the capture shows it over only later: a reply that lost
    its end in a hole is over when the server's next line comes (after the hole and after the
    client's next command, read meanwhile), a reply no command read when the conversation ends
    (after the server's FIN). Such a reply goes back to where it starts: before each line that
    comes later in the server's stream (by offset: the hole, the FIN) and before each other line
    from a later frame (the client's next command), but never before the command the client
    paired it with. So a reply the client read late, after its next command (the rest of a
    reply that ended early), stays where the client read it (its pairing note says so). A hole
    or other server-stream line the reply passes that lies within the reply's own bytes (a
    hole in its middle) goes between its lines. The other lines keep their order."""
    out: list[ExchangeLine] = []
    i, n = 0, len(lines)
    while i < n:
        first = lines[i]
        if not first.reply:
            out.append(first)
            i += 1
            continue
        j = i + 1
        while j < n and lines[j].event == first.event:
            j += 1
        block = list(lines[i:j])
        i = j
        k = len(out)
        while k and _belongs_after(out[k - 1], first):
            k -= 1
        passed = out[k:]
        del out[k:]
        # A passed line of the server's stream inside the reply's bytes (a hole in its middle)
        # goes between its lines: the lines before it ahead of it, the lines after it right
        # after it.
        end = block[-1].pos
        inside = [x for x in passed if x.stream == "server" and x.pos is not None
                  and end is not None and x.pos < end]
        b = _count_before(block, inside[0].pos if inside else None)
        out.extend(block[:b])
        for x in passed:
            out.append(x)
            if inside and x is inside[0]:
                inside.pop(0)
                e = b + _count_before(block[b:], inside[0].pos if inside else None)
                out.extend(block[b:e])
                b = e
        out.extend(block[b:])
    return out


def _count_before(block: Sequence[ExchangeLine], limit: int | None) -> int:
    """How many of ``block``'s first lines start before offset ``limit`` (None: all)."""
    if limit is None:
        return len(block)
    for n, ln in enumerate(block):
        if ln.pos is None or ln.pos >= limit:
            return n
    return len(block)


def _belongs_after(x: ExchangeLine, reply: ExchangeLine) -> bool:
    """Does line ``x``, listed before ``reply``'s first line, come after it in the dialogue?"""
    if reply.answers is not None and x.event == reply.answers:
        return False        # the command the client paired the reply with comes first
    if x.stream == "server" and reply.stream == "server":
        return x.pos is not None and reply.pos is not None and x.pos > reply.pos
    return (x.frame is not None and reply.frame is not None and x.file == reply.file
            and x.frame > reply.frame)


def _name(cmd: Command | None) -> str:
    if cmd is None:
        return "the greeting"
    return {EOM_VERB: "the end of data", SASL_VERB: "a SASL line"}.get(cmd.verb, cmd.raw_verb)


def _pairing_note(ev: Reply) -> str:
    """Where the client's pairing and the server's part (the reply is shown where the client
    read it: after the command it answered for the client)."""
    if ev.lost_command:
        return ("pairing: the server began it before the client's next command, after bytes of "
                "the client were lost: it answers a command lost there; no command of the client "
                "in the capture read it")
    # (a 421 is a reply of its own, sent at any time by a server closing the session, RFC 5321 3.8:
    # never the rest of the reply before it, which the verdict says too)
    meant = (f"a 421 the server sent on its own after its reply to {_name(ev.server_answers)}, closing the "
             "session (RFC 5321 3.8)" if ev.stray and ev.code == 421
             else f"the rest of the server's reply to {_name(ev.server_answers)}" if ev.stray
             else f"the server's answer to {_name(ev.server_answers)}")
    if ev.answers is None:
        return f"pairing: {meant}; no command of the client read it"
    return f"pairing: the client reads this as the answer to {_name(ev.answers)}; it is {meant}"


def verdict_line(conv: dict[str, Any], lines: Sequence[ExchangeLine]) -> ExchangeLine | None:
    """The exchange line the verdict points at, for every renderer: the exact line the verdict
    names; else, in the evidence frame, the line marked with the reason's own finding, then a
    line marked with another finding of that frame; else the frame's first line."""
    at = conv.get("_evidence_at")
    side = {"client": "C", "server": "S"}.get(at[0], "") if at else ""
    ev = conv.get("evidence_frame")
    hit = next((ln for ln in lines if at and ln.offset == at[1] and ln.side == side
                and ln.frame == ev), None)
    if hit is not None or ev is None:
        return hit
    on_frame = [ln for ln in lines if ln.frame == ev]
    codes = {f.get("code") for f in conv.get("findings") or () if f.get("frame") == ev}

    def marked(ln: ExchangeLine, wanted: set[Any]) -> bool:
        return any(m.split(":", 1)[0] in wanted for m in ln.marks)

    return (next((ln for ln in on_frame if marked(ln, {conv.get("reason")} & codes)), None)
            or next((ln for ln in on_frame if marked(ln, codes)), None)
            or next(iter(on_frame), None))


def middlebox_role(conv: dict[str, Any]) -> str | None:
    """What the verdict says of a middlebox, as one fact for every renderer (the HTML ladder
    draws its lifeline from it): ``"blamed"`` when the verdict blames one, ``"named"`` when
    only a finding names one (the verdict blames another side or no one), else None."""
    if conv.get("caused_by") == "middlebox":
        return "blamed"
    if any(f.get("side") == "middlebox" for f in conv.get("findings") or ()):
        return "named"
    return None
