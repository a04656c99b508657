"""A client's plaintext without a line end in the TLS handshake, or after the server's 220 before
any TLS, comes before what the other side sent after it (captures/scenarios_mend23b.py).

The not-TLS text (``TlsNotTls``, ``PlaintextAfterStartTls``) waits for its line end; something else
of the conversation (the other side's bytes or close, a hole) now emits it first, with the bytes
come so far, so that the event list is in arrival order and the verdict, which orders by it, reads
a ``QUIT`` without its CRLF as the same ``QUIT`` with it. Each capture is checked for its verdict,
case, evidence frame, findings and detail, cross-checked with tshark (the QUIT's frame and its four
bytes, which side closed first), and against its twin with the CRLF where one is shipped.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from builders import client_hello  # noqa: E402

from pcapsmtp.model import Side  # noqa: E402
from pcapsmtp.smtp.events import PlaintextAfterStartTls, StreamEnded  # noqa: E402
from pcapsmtp.smtp.session import SmtpSession  # noqa: E402
from pcapsmtp.smtp.tls import TlsClientHello, TlsNotTls  # noqa: E402

C, S = Side.CLIENT, Side.SERVER


def _quit(path: object, port: int) -> int:
    """tshark: the one frame of the client's that carries QUIT, no TLS record in it: its frame
    without the CRLF (four bytes), minus it with."""
    (frame,) = frames_matching(path, f'tcp.srcport == {port} && tcp.payload contains "QUIT"')
    # (tshark hands the bytes after the 220 to its TLS dissector, which finds no record in them)
    assert frames_matching(path, f"frame.number == {frame} && tls.record") == []
    ((payload,),) = tshark_fields(path, f"frame.number == {frame}", "tcp.payload")
    payload = payload.replace(":", "").lower()
    assert payload in ("51554954", "515549540d0a")
    return frame if payload == "51554954" else -frame


def _first_fin(path: object, port: int) -> tuple[int, str]:
    first = frames_matching(path, "tcp.flags.fin == 1")[0]
    ((src,),) = tshark_fields(path, f"frame.number == {first}", "tcp.srcport")
    return first, "client" if int(src) == port else "server"


AT_ONCE = ("the client sent 'QUIT' in the clear (frame 16) 6 ms after its ClientHello (frame 14), before any answer "
           "of the server's")
ANSWERING = "; the server then closed the connection ({}), answering those bytes, which are no TLS record"
WHOLE = ("the client had the server's whole answer to its ClientHello (frame 16) and sent nothing for 1.2 s, no side "
         "of the handshake and no alert: then it sent 'QUIT' in the clear (frame 18), giving up on TLS")
STALL = ("the server's answer to the ClientHello stopped short of its ServerHelloDone (frame 16) and the server sent "
         "nothing more for 1.2 s: the client gave up waiting for the rest and sent 'QUIT' in the clear (frame 18)")
NOT_STARTED = "the client did not start the TLS handshake after the 220"
NO_ANSWER = ("after the 220 the client went on in plaintext SMTP and the capture ends before any readable answer of "
             "the server: whether it answered in TLS (the client did not start TLS) or readably (a capture behind a "
             "TLS terminator) cannot be told")

# (name, port, QUIT frame, first FIN (frame, side), verdict, findings, detail, twin with the CRLF)
CASES: list[tuple[str, int, int, tuple[int, str], tuple[Any, ...], list[Any], str, str | None]] = [
    ("mend23b-no-answer-quit-no-crlf-at-once-server-fin.pcap", 49601, 16, (18, "server"),
     ("aborted", "client", "tls-handshake-failed", None, 16), [],
     AT_ONCE + ": it gave up on TLS at once, without waiting for the server's answer" + ANSWERING.format("frame 18"),
     "mend23b-no-answer-quit-crlf-at-once-server-fin.pcap"),
    ("mend23b-no-answer-quit-no-crlf-at-once-client-fin.pcap", 49602, 16, (18, "client"),
     ("aborted", "client", "tls-handshake-failed", None, 16), [],
     AT_ONCE + ", then closed the connection (frame 18): it gave up on TLS at once, without waiting for the "
     "server's answer", None),
    ("mend23b-tls12-whole-quit-no-crlf-1-2-s-server-fin.pcap", 49604, 18, (20, "server"),
     ("aborted", "client", "tls-handshake-failed", "client-silent", 18), [("client-silent", "client", 16)],
     WHOLE + ANSWERING.format("frame 20"), "hunt13-tls12-whole-quit-1-2-s-server-fin.pcap"),
    ("mend23b-tls12-whole-quit-no-crlf-1-2-s-client-fin.pcap", 49605, 18, (20, "client"),
     ("aborted", "client", "tls-handshake-failed", "client-silent", 18), [("client-silent", "client", 16)],
     WHOLE + ", and closed the connection (frame 20)", "hunt13-tls12-whole-quit-1-2-s-client-fin.pcap"),
    ("mend23b-tls12-stall-quit-no-crlf-1-2-s-then-rest-server-fin.pcap", 49606, 18, (22, "server"),
     ("aborted", "server", "tls-handshake-failed", "server-silent", 16), [("no-answer", "server", 16)],
     STALL + ANSWERING.format("frame 22"), "hunt13-tls12-stall-quit-1-2-s-then-rest-server-fin.pcap"),
    ("mend23b-tls12-stall-quit-no-crlf-1-2-s-then-rest-client-fin.pcap", 49607, 18, (22, "client"),
     ("aborted", "server", "tls-handshake-failed", "server-silent", 16), [("no-answer", "server", 16)],
     STALL + ", then closed the connection (frame 22)", "hunt13-tls12-stall-quit-1-2-s-then-rest-client-fin.pcap"),
    ("mend23b-after-220-quit-no-crlf-server-first.pcap", 49608, 14, (16, "server"),
     ("aborted", "client", "tls-not-started", None, 14), [("plaintext-after-starttls", "client", 14)],
     NOT_STARTED, "mend23b-after-220-quit-crlf-server-first.pcap"),
    ("mend23b-after-220-quit-no-crlf-client-first.pcap", 49609, 14, (16, "client"),
     ("incomplete", "unknown", "incomplete", None, 14), [], NO_ANSWER, None),
]


@pytest.mark.parametrize("name, port, quit_frame, first, verdict, findings, detail, twin", CASES)
def test_a_quit_without_crlf_reads_as_the_quit_with_it(
        name: str, port: int, quit_frame: int, first: tuple[int, str], verdict: tuple[Any, ...],
        findings: list[Any], detail: str, twin: str | None) -> None:
    """The QUIT without its CRLF (tshark: four bytes, no TLS) before the other side's close: the
    verdict, case, evidence frame, findings and detail of the same capture with the CRLF. Before
    the fix the server-first ones read the server's (no case, "closed ... before/after the
    ServerHello", or ``incomplete`` after the 220) and the client-first stall the client's."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _quit(path, port) == quit_frame
    assert _first_fin(path, port) == first
    assert first[0] > quit_frame
    if "after-220" not in name:
        assert frames_matching(path, "tls.handshake.type == 1") == [14]
    else:
        assert frames_matching(path, "tls.record") == []
    assert _verdict(conv) == verdict
    assert _findings(conv) == findings
    assert conv["detail"] == detail
    if twin is not None:
        other = _conv(twin)
        assert _quit(CAPTURES / twin, other["client"]["port"]) == -quit_frame    # (its QUIT with the CRLF)
        assert (_verdict(other), _findings(other), other["detail"]) == (verdict, findings, detail)


# --- the session's event order, sans I/O -------------------------------------------------------------

def _after_220() -> SmtpSession:
    s = SmtpSession()
    s.receive(S, b"220 mx.example.com ESMTP\r\n", 1)
    s.receive(C, b"EHLO client.example.org\r\n", 2)
    s.receive(S, b"250-mx.example.com\r\n250 STARTTLS\r\n", 3)
    s.receive(C, b"STARTTLS\r\n", 4)
    s.receive(S, b"220 go ahead\r\n", 5)
    return s


def _names(evs: list[Any]) -> list[str]:
    return [type(e).__name__ for e in evs]


@pytest.mark.parametrize("other", ["fin", "bytes", "gap"])
def test_plaintext_after_the_220_comes_before_what_the_server_sent_after_it(other: str) -> None:
    """After the 220, the client's ``QUIT`` without CRLF, then the server's close, bytes or hole:
    the ``PlaintextAfterStartTls`` (at the QUIT's time) comes first, before the server's event (its
    bytes then read as a reply, which waits for the QUIT's line)."""
    s = _after_220()
    assert s.receive(C, b"QUIT", 6) == []
    if other == "fin":
        evs = s.receive_eof(S, ts_ns=7)
    elif other == "bytes":
        evs = s.receive(S, b"421 bye\r\n", 7)
    else:
        evs = s.receive_gap(S, 100, 7)
    assert isinstance(evs[0], PlaintextAfterStartTls)
    assert evs[0].side is C and evs[0].preview == "QUIT" and evs[0].smtp_like and evs[0].ts_ns == 6
    assert all(e.side is S for e in evs[1:])
    if other == "fin":
        assert isinstance(evs[1], StreamEnded)
    # the rest of the command's line, after the flush: the QUIT is read whole as a command
    rest = s.receive(C, b"\r\n", 8) + s.receive_eof(C, ts_ns=9)
    assert "PlaintextAfterStartTls" not in _names(rest)
    assert "Command" in _names(rest)


def test_text_in_the_handshake_comes_before_the_servers_close_and_its_rest_is_no_new_text() -> None:
    """After the ClientHello, ``QU`` then the server's close, then ``IT\\r\\n``: one ``TlsNotTls``
    with the bytes come before the close (b"QU"), stamped with its segment's time, before the
    server's ``StreamEnded``; the rest of the line is no second text."""
    s = _after_220()
    evs = s.receive(C, client_hello(), 6)
    assert _names(evs) == ["TlsClientHello"] and isinstance(evs[0], TlsClientHello)
    assert s.receive(C, b"QU", 7) == []
    evs = s.receive_eof(S, ts_ns=8)
    assert _names(evs) == ["TlsNotTls", "StreamEnded"]
    assert isinstance(evs[0], TlsNotTls) and evs[0].preview == b"QU" and evs[0].ts_ns == 7 and evs[0].side is C
    rest = s.receive(C, b"IT\r\n", 9) + s.receive_eof(C, ts_ns=10)
    assert _names(rest) == ["StreamEnded"]


def test_text_in_the_handshake_with_nothing_between_waits_for_its_line() -> None:
    """With nothing of the other side between, the segmentation changes nothing: ``QU``, ``IT\\r\\n``
    give one ``TlsNotTls`` of the whole line, at the line end (the first segment's time)."""
    s = _after_220()
    s.receive(C, client_hello(), 6)
    assert s.receive(C, b"QU", 7) == []
    evs = s.receive(C, b"IT\r\n", 8)
    assert _names(evs) == ["TlsNotTls"] and evs[0].preview == b"QUIT\r\n" and evs[0].ts_ns == 7
