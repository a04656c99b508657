"""captures/scenarios_holes4.py and the readings behind them (pcapsmtp/smtp/session.py,
pcapsmtp/analysis/verdict.py). Frames cross-checked with tshark."""
from __future__ import annotations

import pytest
from builders import C, S, server_hello
from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from pcapsmtp.smtp.events import Anomaly, Event, PlaintextAfterStartTls, Reply
from pcapsmtp.smtp.session import SmtpSession

READY = b"220 2.0.0 Ready to start TLS\r\n"
#: tshark's SMTP dissector keeps 4 characters of a command
STARTTLS = 'smtp.req.command == "STAR" || smtp.req.command == "STARTTLS"'


def _payload(path: object, frame: int) -> bytes:
    ((payload,),) = tshark_fields(path, f"frame.number == {frame}", "tcp.payload")
    return bytes.fromhex(payload.replace(":", ""))


# ------------------------------------ 1: server bytes that begin with 0x16 and are no TLS record

NOT_TLS = {
    "bad-version": b"\x16\x03\x09\x00\x23" + bytes(range(35)),
    "bad-length": b"\x16\x03\x03\xff\xf0" + bytes(range(35)),
    "bad-type": b"\x16\x03\x03\x00\x23\x63" + bytes(range(34)),
}


#: the first bytes of the server's 40 in each capture (captures/scenarios_holes4.py)
HEADS = {"bad-version": b"\x16\x03\x09\x00\x23", "bad-length": b"\x16\x03\x03\xff\xf0",
         "bad-type": b"\x16\x03\x03\x00\x23\x63"}


def _quit_after_holes_then(chunks: list[bytes], end: str = "eof") -> list[Event]:
    """STARTTLS; the 220 lost, 166 bytes of the client lost, its QUIT held, then the server's
    ``chunks`` (one segment each), then the ends of both sides (or a hole of the server's)."""
    s = SmtpSession()
    evs = s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n")
    evs += s.receive(S, b"250-mx\r\n250 STARTTLS\r\n") + s.receive(C, b"STARTTLS\r\n")
    evs += s.receive_gap(S, len(READY)) + s.receive_gap(C, 166) + s.receive(C, b"QUIT\r\n")
    for chunk in chunks:
        evs += s.receive(S, chunk)
    if end == "gap":
        evs += s.receive_gap(S, 80)
    return evs + s.receive_eof(S) + s.receive_eof(C)


@pytest.mark.parametrize("kind", sorted(NOT_TLS))
def test_bytes_that_begin_with_0x16_but_are_no_record_are_no_tls_at_any_split(kind: str) -> None:
    """Whatever the segments, bytes of a bad version, an impossible length or of no handshake
    type are no TLS of the server's (no TLS event, no plaintext owed after a 220), and the QUIT
    the client sent after the server's hole is no command injected before any reply."""
    data = NOT_TLS[kind]
    for k in range(1, len(data)):
        evs = _quit_after_holes_then([data[:k], data[k:]])
        assert not [e for e in evs if isinstance(e, (Anomaly, PlaintextAfterStartTls))], (kind, k)
        assert not [e for e in evs if type(e).__name__.startswith("Tls")], (kind, k)


def test_a_serverhello_after_the_holes_is_still_tls() -> None:
    """Control: a ServerHello there is the server's TLS, at any split (its type, 2, is read
    before anything is decided)."""
    hello = server_hello()
    for k in range(1, 12):
        evs = _quit_after_holes_then([hello[:k], hello[k:]])
        assert [type(e).__name__ for e in evs if type(e).__name__ == "TlsServerHello"] == ["TlsServerHello"], k
        assert not [e for e in evs if isinstance(e, (Anomaly, PlaintextAfterStartTls))], k


def test_a_lone_header_without_a_client_hole_is_still_the_servers_tls() -> None:
    """A handshake record header of the server's alone after a lost 220 (no bytes of the client
    lost), then a hole or the end: the session waits for the message type, which never comes,
    and settles it as TLS, as it read it before it waited."""
    for end in ("gap", "eof"):
        s = SmtpSession()
        evs = s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n")
        evs += s.receive(S, b"250-mx\r\n250 STARTTLS\r\n") + s.receive(C, b"STARTTLS\r\n")
        evs += s.receive_gap(S, len(READY)) + s.receive(S, server_hello()[:5])
        evs += s.receive_gap(S, 80) if end == "gap" else []
        evs += s.receive_eof(S) + s.receive_eof(C)
        assert s._s.mode == "tls" and s._starttls_accepted, end
        assert [type(e).__name__ for e in evs if type(e).__name__ == "TlsTruncated"] == (
            ["TlsTruncated"] if end == "eof" else []), end
        assert not [e for e in evs if isinstance(e, (Anomaly, PlaintextAfterStartTls))], end


def test_plaintext_held_before_the_servers_hole_stays_an_injection() -> None:
    """Control: the QUIT came with STARTTLS, before the hole that holds the 220: sent before any
    reply, a command injected after STARTTLS."""
    s = SmtpSession()
    evs = s.receive(S, b"220 mx ESMTP\r\n") + s.receive(C, b"EHLO me\r\n")
    evs += s.receive(S, b"250-mx\r\n250 STARTTLS\r\n") + s.receive(C, b"STARTTLS\r\nQUIT\r\n")
    evs += s.receive_gap(S, len(READY)) + s.receive(S, NOT_TLS["bad-version"])
    evs += s.receive_eof(S) + s.receive_eof(C)
    assert [e.detail for e in evs if isinstance(e, Anomaly)] == [
        "client sent b'QUIT\\r\\n' after STARTTLS, before any reply"]


@pytest.mark.parametrize("kind", sorted(NOT_TLS))
def test_quit_before_0x16_garbage_with_the_220_and_the_hello_lost(kind: str) -> None:
    """The capture: unsure (the answer to STARTTLS is in the hole), no starttls-command-injection
    for the QUIT (frame 14), sent after the client acknowledged the lost 220 (frame 12); tshark
    sees no TLS in the server's bytes (frame 16)."""
    path = CAPTURES / f"holes4-quit-before-0x16-{kind}-220-hello-lost.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, 10)
    assert _findings(conv) == [("tcp-gap", "capture", 13), ("tcp-gap", "capture", 14)]
    assert conv["detail"] == "the capture does not show the answer to STARTTLS"
    assert conv["tls"] is None or not conv["tls"].get("server_hello")
    assert frames_matching(path, "tcp.analysis.ack_lost_segment")[:2] == [12, 13]
    assert frames_matching(path, "tcp.analysis.lost_segment") == [13, 14]
    assert frames_matching(path, STARTTLS) == [10]
    assert frames_matching(path, 'smtp.req.command == "QUIT"') == [14]
    assert frames_matching(path, "tls") == []
    head = _payload(path, 16)
    assert len(head) == 40 and head[:len(HEADS[kind])] == HEADS[kind]


def test_quit_with_starttls_then_0x16_garbage_stays_an_injection() -> None:
    """Control capture: STARTTLS and QUIT in one segment (frame 10), the 220 lost (the client's ACK
    in 12 acknowledges it), the server's bytes (13): the injection finding at frame 10."""
    path = CAPTURES / "holes4-injection-then-0x16-garbage-220-lost.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, 10)
    assert _findings(conv) == [("starttls-command-injection", "client", 10), ("tcp-gap", "capture", 13)]
    assert frames_matching(path, 'smtp.req.command == "QUIT"') == [10]
    assert frames_matching(path, "tcp.analysis.ack_lost_segment")[:1] == [12]
    assert frames_matching(path, "tcp.analysis.lost_segment") == [13]
    assert frames_matching(path, "tls") == []


# ------------------------------------------------- 3: a greeting that refused, then another 421

@pytest.mark.parametrize(("code", "idle", "name"), [
    (421, 150.0, "holes4-greeting-421-then-421-150-s-crosses-starttls.pcap"),
    (554, 400.0, "holes4-greeting-554-then-421-400-s-crosses-starttls.pcap")])
def test_a_refusing_greeting_then_a_timeout_421_crossed_by_starttls_is_greeting_refused(
        code: int, idle: float, name: str) -> None:
    """The greeting (frame 4) refused the session; the server's timeout 421 (6) that the client's
    STARTTLS (7) crossed answered nothing the verdict rests on: greeting-refused at the greeting, as
    a lone refusing greeting reads (was starttls-refused, case server-closed, at 150 s;
    no-mail-transaction past 5 minutes)."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "server", "greeting-refused", None, 4)
    assert _findings(conv) == []
    assert conv["detail"] == (f"the server's greeting refused the connection ({code}); the client still sent "
                              "STARTTLS (frame 7)")
    assert frames_matching(path, f"smtp.response.code == {code}")[:1] == [4]
    assert frames_matching(path, "smtp.response.code == 421")[-1:] == [6]
    assert frames_matching(path, STARTTLS) == [7]
    assert frames_matching(path, "tcp.flags.fin == 1 && tcp.srcport == 25") == [9]
    ((t4,), (t6,)) = tshark_fields(path, "frame.number == 4 || frame.number == 6", "frame.time_epoch")
    assert abs(float(t6) - float(t4) - idle) < 0.01


def test_a_221_to_quit_after_a_refusing_greeting_accepts_nothing() -> None:
    """A 554 greeting (frame 4), STARTTLS (6) answered 554 (8), QUIT (10) answered 221 (12): the
    221 answers the QUIT a client sends after a refusal and accepts nothing, so the greeting
    decides (it read starttls-refused, the 221 taken for a reply that accepted a command)."""
    path = CAPTURES / "holes4-greeting-554-starttls-554-quit-221.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "greeting-refused", None, 4)
    assert _findings(conv) == []
    assert conv["detail"] == ("the server's greeting refused the connection (554); the client still sent "
                              "STARTTLS (frame 6)")
    assert frames_matching(path, "smtp.response.code == 554") == [4, 8]
    assert frames_matching(path, STARTTLS) == [6]
    assert frames_matching(path, 'smtp.req.command == "QUIT"') == [10]
    assert frames_matching(path, "smtp.response.code == 221") == [12]


# ------------------------------- 4: Postfix's 554 to a hello (smtpd_delay_reject = no) is no greeting

HOST_REJECTED = b"554 5.7.1 <c.example>: Client host rejected: Access denied\r\n"


def _replies(evs: list[Event]) -> list[tuple[int | None, bool, str | None]]:
    return [(e.code, e.greeting, e.answers.verb if e.answers else None) for e in evs if isinstance(e, Reply)]


def test_a_554_to_a_hello_with_no_greeting_hole_before_it_is_the_hellos_answer() -> None:
    """Postfix answers EHLO and HELO with 554 under smtpd_delay_reject = no: with the greeting in the
    capture (whole, of several lines, or followed by a hole), or a late start after it, that 554 is
    the hello's answer, never a greeting line."""
    s = SmtpSession()
    evs = s.receive(S, b"220 mx ESMTP\r\n", 1) + s.receive(C, b"EHLO c\r\n", 2) + s.receive(S, HOST_REJECTED, 3)
    evs += s.receive(C, b"HELO c\r\n", 4) + s.receive(S, HOST_REJECTED, 5)
    assert _replies(evs) == [(220, True, None), (554, False, "EHLO"), (554, False, "HELO")]
    s = SmtpSession()
    evs = s.receive(S, b"220-mx ESMTP\r\n220 hi\r\n", 1) + s.receive(C, b"HELO c\r\n", 2)
    assert _replies(evs + s.receive(S, HOST_REJECTED, 3)) == [(220, True, None), (554, False, "HELO")]
    s = SmtpSession()
    evs = s.receive(S, b"220 mx ESMTP\r\n", 1) + s.receive_gap(S, 20, ts_ns=2) + s.receive(C, b"EHLO c\r\n", 3)
    assert _replies(evs + s.receive(S, HOST_REJECTED, 4)) == [(220, True, None), (554, False, "EHLO")]
    s = SmtpSession(late_start=True)
    assert _replies(s.receive(C, b"EHLO c\r\n", 2) + s.receive(S, HOST_REJECTED, 3)) == [(554, False, "EHLO")]


def test_postfix_554_to_ehlo_and_helo_under_delay_reject_no_stays_the_hellos() -> None:
    """The whole greeting (4), the EHLO (6) refused with 554 (8), the HELO (10) refused the same (12),
    QUIT and 221: ehlo-rejected at the EHLO's 554, no greeting line."""
    path = CAPTURES / "holes4-hello-refused-554-delay-reject.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "ehlo-rejected", None, 8)
    assert _findings(conv) == []
    assert conv["detail"] == ("the server refused EHLO with 554, so STARTTLS could not be negotiated; the client "
                              "then fell back to HELO (frame 10) and left without a mail transaction")
    assert frames_matching(path, "smtp.response.code == 220") == [4]
    assert frames_matching(path, "smtp.response.code == 554") == [8, 12]
    assert frames_matching(path, 'smtp.req.command == "EHLO"') == [6]
    assert frames_matching(path, 'smtp.req.command == "HELO"') == [10]
