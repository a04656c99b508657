"""``pcapsmtp annotate IN -o OUT.pcapng``: the capture written back with packet comments.

``write_annotated(in_path, out_path, comments)`` writes every record of ``in_path``
unchanged as pcapng and adds one packet comment (``opt_comment``, option code 1) per text
to the frames named in ``comments`` (1-based, Wireshark's ``frame.number``). Wireshark and
tshark show them as ``frame.comment`` (tshark 4.0: ``-e frame.comment``; display filter
``frame.comment contains "pcapsmtp"``).

How the capture is copied (pcap converted, pcapng blocks kept byte for byte, the output
written to a temporary file and moved into place) is ``capture.rewrite``; this module makes
the comments.

Comment texts are written as UTF-8 with control characters escaped (``\\r``, ``\\n``,
``\\t``, ``\\xNN``): they quote captured bytes. One option holds at most 65 535 bytes;
longer texts are cut at a character boundary and end with ``...``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pcapsmtp.capture.rewrite import write_with_comments

__all__ = ["write_annotated", "comments_from_conversations", "escape_comment",
           "COMMENT_PREFIX"]

COMMENT_PREFIX = "pcapsmtp: "

_MAX_OPT = 65535

_ESCAPES = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def escape_comment(text: str) -> str:
    """Make ``text`` safe for a packet comment: no control characters (C0, DEL, C1)."""
    out: list[str] = []
    for ch in text:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o <= 0x9F:
            out.append(_ESCAPES.get(ch, f"\\x{o:02x}"))
        elif 0xD800 <= o <= 0xDFFF:       # lone surrogates (from surrogateescape) cannot be UTF-8
            out.append(f"\\x{o & 0xFF:02x}")
        else:
            out.append(ch)
    return "".join(out)


def _comment_bytes(text: str) -> bytes:
    data = escape_comment(text).encode("utf-8")
    if len(data) > _MAX_OPT:
        cut = data[:_MAX_OPT - 3]
        data = cut.decode("utf-8", "ignore").encode("utf-8") + b"..."
    return data


def write_annotated(in_path: str, out_path: str, comments: Mapping[int, Sequence[str]]) -> int:
    """Copy ``in_path`` to ``out_path`` as pcapng with packet comments added to the frames in
    ``comments``; return the number of frames that got at least one comment. The copying is
    ``capture.rewrite.write_with_comments``; here the texts are made safe."""
    encoded: dict[int, list[bytes]] = {}
    for frame, texts in comments.items():
        if isinstance(texts, str):
            texts = [texts]
        enc = [_comment_bytes(t) for t in texts]
        if enc:
            encoded[int(frame)] = enc
    return write_with_comments(in_path, out_path, encoded)


def _finding_text(f: Mapping[str, Any]) -> str:
    code = f.get("code") or "finding"
    side = f.get("side")
    text = f"{COMMENT_PREFIX}{code}"
    if side:
        text += f" ({side})"
    msg = f.get("message")
    if msg:
        text += f": {msg}"
    rfc = f.get("rfc")
    if rfc:
        text += f" [{rfc}]"
    return escape_comment(text)


def _verdict_text(conv: Mapping[str, Any]) -> str:
    text = f"{COMMENT_PREFIX}verdict {conv.get('reason') or 'unknown'}"
    caused = conv.get("caused_by")
    if caused and caused != "none":
        text += f" ({caused})"
    outcome = conv.get("outcome")
    if outcome:
        text += f": outcome {outcome}"
    client, server = conv.get("client"), conv.get("server")
    if isinstance(client, Mapping) and isinstance(server, Mapping):
        text += (f", {client.get('ip')}:{client.get('port')} -> "
                 f"{server.get('ip')}:{server.get('port')}")
    detail = conv.get("detail")
    if detail:
        text += f": {detail}"
    return escape_comment(text)


def comments_from_conversations(convs: Iterable[Mapping[str, Any]]) -> dict[int, list[str]]:
    """Packet comments from JSON-contract conversation dicts: one per finding on its
    ``frame`` (``pcapsmtp: CODE (SIDE): MESSAGE [RFC]``), and one for the verdict on
    ``evidence_frame`` when the conversation has it (``pcapsmtp: verdict REASON (CAUSED_BY):
    outcome OUTCOME, CLIENT -> SERVER: DETAIL``, parts left out when the keys are missing). Frames
    are sorted; a frame never gets the same text twice; findings without an integer frame are
    left out."""
    out: dict[int, list[str]] = {}

    def add(frame: Any, text: str) -> None:
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 1:
            return
        texts = out.setdefault(frame, [])
        if text not in texts:
            texts.append(text)

    for conv in convs:
        for f in conv.get("findings") or ():
            if isinstance(f, Mapping):
                add(f.get("frame"), _finding_text(f))
        if "evidence_frame" in conv:
            add(conv.get("evidence_frame"), _verdict_text(conv))
    return {k: out[k] for k in sorted(out)}
