"""captures/scenarios_smtp26.py: the server's TLS flight sent after its 220 before any byte of the
client (smtp/session.py ``_tls_expected``, analysis/verdict.py ``_flight_broke_start``), and the
EHLO exchange the verdict reads when the client sent EHLO twice (``_acted_ehlo``). Frames
cross-checked with tshark."""
from __future__ import annotations

from pathlib import Path

from builders import Dialogue
from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from pcapsmtp.analysis.verdict import judge
from pcapsmtp.model import CLIENT, SERVER
from pcapsmtp.smtp.events import Anomaly, AnomalyCode
from pcapsmtp.smtp.session import SmtpSession
from tsharkfilter import frames_matching, tshark_fields

READY = b"220 2.0.0 Ready to start TLS\r\n"
INJECTED = "starttls-response-injection"


def _ints(path: Path, flt: str, *fields: str) -> list[tuple[int, ...]]:
    return [tuple(int(x) for x in row) for row in tshark_fields(path, flt, *fields)]


def _starttls(path: Path) -> tuple[int, int]:
    """The STARTTLS frame and the client's next sequence number after it (tshark's relative)."""
    ((frame, seq, length),) = _ints(path, 'smtp.req.command == "STAR"', "frame.number", "tcp.seq", "tcp.len")
    return frame, seq + length


def _client_fin(path: Path, cport: int) -> int:
    (fin,) = frames_matching(path, f"tcp.flags.fin == 1 && tcp.srcport == {cport}")
    return fin


# --- (A) the server's TLS flight before any ClientHello --------------------------------------------

def _flight_in_220_segment(path: Path) -> int:
    """tshark: the 220 to STARTTLS and, in its segment after the line, a TLS 1.2 handshake record
    holding a ServerHello (tshark reads the segment as SMTP, its TLS as more reply lines); the
    segment acknowledges the client's stream only up to the end of its STARTTLS."""
    starttls, next_seq = _starttls(path)
    ((ready, ack),) = _ints(path, f"smtp.response.code == 220 && frame.number > {starttls}", "frame.number", "tcp.ack")
    assert ack == next_seq
    ((payload,),) = tshark_fields(path, f"frame.number == {ready}", "tcp.payload")
    data = bytes.fromhex(payload.replace(":", ""))
    assert data.startswith(READY)
    assert data[len(READY):len(READY) + 3] == b"\x16\x03\x03" and data[len(READY) + 5] == 2   # ServerHello
    return ready


def test_a_flight_with_the_220_then_the_client_hello_and_its_close_is_the_servers() -> None:
    """The flight in the 220's segment (frame 12), the client's ClientHello after it (frame 14),
    its close 5 s later (CPython's smtplib, its ClientHello unanswered until its timeout): the
    server's, the evidence frame the flight. It read the client's ("closed the connection after
    the ServerHello"), the flight taken for the answer to the ClientHello."""
    name = "smtp26-flight-with-220-hello-then-close.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ready = _flight_in_220_segment(path)
    (hello,) = frames_matching(path, "tls.handshake.type == 1")
    fin = _client_fin(path, 49601)
    assert (ready, hello, fin) == (12, 14, 16)
    ((hello_ts,), (fin_ts,)) = tshark_fields(path, f"frame.number in {{{hello}, {fin}}}", "frame.time_epoch")
    assert round(float(fin_ts) - float(hello_ts), 1) == 5.0
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", None, ready)
    assert _findings(conv) == [("starttls-response-injection", "server", ready)]
    assert conv["tls"]["client_hello_frame"] == hello and conv["tls"]["server_hello_frame"] == ready
    assert conv["detail"] == (
        "the server sent TLS records after its 220 (frame 12), before any byte of the client: they answer no "
        "ClientHello (a TLS server speaks only after it); the client's ClientHello came after them (frame 14) and "
        "got no answer of its own; the client closed the connection (frame 16) 5.0 s after it")
    (finding,) = conv["findings"]
    assert finding["message"].startswith("server sent a TLS handshake record after its 220, before any client byte")


def test_a_flight_with_the_220_then_the_clients_close_without_tls_is_the_servers() -> None:
    """The same flight, the client's close at once, no ClientHello (curl: "Weird server reply"): the
    server's, tls-handshake-failed (the server began its handshake; the client refused it). It read
    tls-not-started, the client's."""
    name = "smtp26-flight-with-220-close.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ready = _flight_in_220_segment(path)
    assert frames_matching(path, "tls.handshake.type == 1") == []
    fin = _client_fin(path, 49602)
    assert fin > ready
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", None, ready)
    assert _findings(conv) == [("starttls-response-injection", "server", ready)]
    assert conv["tls"]["client_hello_frame"] is None
    assert conv["detail"].endswith(f"then the client closed the connection (frame {fin}) without starting TLS, as "
                                   "a client that refuses bytes pipelined after the 220 does (curl: \"Weird server "
                                   "reply\")")


def test_a_flight_of_its_own_after_the_220_then_the_clients_alert_is_the_servers() -> None:
    """The flight in a segment of its own 2 ms after the 220, before any byte of the client; the
    client's ClientHello, then its fatal decrypt_error (the ServerKeyExchange was signed over
    another ClientHello's random): the server's, evidence frame the flight, the client's alert a
    finding. It read the client's, by its alert."""
    name = "smtp26-flight-after-220-client-alert.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    starttls, next_seq = _starttls(path)
    ((ready,),) = _ints(path, f"smtp.response.code == 220 && frame.number > {starttls}", "frame.number")
    ((flight, ack),) = _ints(path, "tls.handshake.type == 2", "frame.number", "tcp.ack")
    assert ack == next_seq and flight > ready           # nothing of the client acknowledged since STARTTLS
    (hello,) = frames_matching(path, "tls.handshake.type == 1")
    ((alert, level, desc),) = _ints(path, "tls.alert_message", "frame.number", "tls.alert_message.level",
                                    "tls.alert_message.desc")
    assert flight < hello < alert and (level, desc) == (2, 51)
    assert frames_matching(path, f"frame.number == {alert} && tcp.srcport == 49603") == [alert]
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", None, flight)
    assert _findings(conv) == [("starttls-response-injection", "server", flight), ("tls-alert", "client", alert)]
    assert conv["tls"]["alert"]["side"] == "client" and conv["tls"]["alert"]["frame"] == alert


def test_a_forged_reset_after_the_early_flight_is_the_boxs() -> None:
    """The flight in the 220's segment, the ClientHello, then a reset with the server's address
    whose TTL (tshark's ip.ttl) is not the server's: a box on the path ended it (case
    reset-forged), the early flight still the server's finding (the review found the early flight's
    rule read "the server reset the connection" and dropped the reset-forged finding)."""
    name = "smtp26-flight-with-220-forged-reset.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ready = _flight_in_220_segment(path)
    (hello,) = frames_matching(path, "tls.handshake.type == 1")
    ((rst, ttl),) = _ints(path, "tcp.flags.reset == 1", "frame.number", "ip.ttl")
    own = {t for (t,) in _ints(path, "tcp.srcport == 25 && tcp.flags.reset == 0", "ip.ttl")}
    assert ready < hello < rst and own == {52} and ttl == 128
    assert frames_matching(path, f"frame.number == {rst} && tcp.srcport == 25") == [rst]
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "reset-forged", rst)
    assert _findings(conv) == [(INJECTED, "server", ready), ("reset-forged", "middlebox", rst)]
    assert conv["detail"].startswith("a box on the path reset the connection after the server's TLS records "
                                     "that answered no ClientHello")


def test_the_servers_answer_after_the_early_flight_is_named_behind_it() -> None:
    """The flight in the 220's segment, the ClientHello, the flight again after it (tshark: two
    ServerHellos, the second after the ClientHello), the client's fatal decrypt_error: the
    server's, and the detail says the records after the ClientHello came behind the early ones
    (the review's finding: it said the ClientHello "got no answer of its own")."""
    name = "smtp26-flight-with-220-then-answer-client-alert.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ready = _flight_in_220_segment(path)
    (hello,) = frames_matching(path, "tls.handshake.type == 1")
    server_hellos = frames_matching(path, "tls.handshake.type == 2")
    ((alert, level, desc),) = _ints(path, "tls.alert_message", "frame.number", "tls.alert_message.level",
                                    "tls.alert_message.desc")
    answer = server_hellos[-1]
    assert ready < hello < answer < alert and (level, desc) == (2, 51)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", None, ready)
    assert _findings(conv) == [(INJECTED, "server", ready), ("tls-alert", "client", alert)]
    assert (f"the client's ClientHello came after them (frame {hello}) and the server's records after it "
            f"(frame {answer}) came behind those the client had already") in conv["detail"]


def test_the_session_reads_the_servers_tls_after_the_clients_hello_as_the_answer() -> None:
    """The control: the ClientHello first, then the server's flight (from a segment that acknowledges
    it), no anomaly; the same flight before any client byte, from a segment that acknowledges only the
    STARTTLS, the response-injection anomaly at its first byte; from a segment that acknowledges more
    of the client than the session has (its ClientHello still on the way: two taps merged), none."""
    hello = b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"
    flight = b"\x16\x03\x03\x00\x06\x02\x00\x00\x02\x03\x03"

    def run(order: str, ack: int) -> list[Anomaly]:
        s = SmtpSession()
        evs = s.receive(SERVER, b"220 mx ESMTP\r\n") + s.receive(CLIENT, b"EHLO c\r\n")
        evs += s.receive(SERVER, b"250-mx\r\n250 STARTTLS\r\n") + s.receive(CLIENT, b"STARTTLS\r\n")
        evs += s.receive(SERVER, READY)
        for side in order:
            evs += (s.receive(CLIENT, hello) if side == "C" else s.receive(SERVER, flight, ack=ack))
        return [e for e in evs if isinstance(e, Anomaly)]

    after = len(b"EHLO c\r\nSTARTTLS\r\n")
    assert run("CS", after + len(hello)) == []
    (early,) = run("SC", after)
    assert early.code is AnomalyCode.STARTTLS_RESPONSE_INJECTION and early.side is SERVER
    start = len(b"220 mx ESMTP\r\n250-mx\r\n250 STARTTLS\r\n") + len(READY)
    assert (early.span.start, early.span.end) == (start, start + 5)
    assert run("SC", after + len(hello)) == []



def test_a_starttls_lost_in_a_hole_with_more_bytes_proves_no_early_flight() -> None:
    """The review's case: the client's STARTTLS and ClientHello sent together and both lost by the
    capture (one hole), the server's 220 and flight acknowledging all of it: the flight may answer
    the ClientHello in the hole, no anomaly. A hole of a STARTTLS line alone, the flight from a
    segment that acknowledges only it: the anomaly; an acknowledgement not known: none."""
    hello = b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"
    flight = b"\x16\x03\x03\x00\x06\x02\x00\x00\x02\x03\x03"

    def run(lost: int, ack: int) -> list[Anomaly]:
        s = SmtpSession()
        evs = s.receive(SERVER, b"220 mx ESMTP\r\n") + s.receive(CLIENT, b"EHLO c\r\n")
        evs += s.receive(SERVER, b"250-mx\r\n250 STARTTLS\r\n") + s.receive_gap(CLIENT, lost)
        evs += s.receive(SERVER, READY + flight, ack=ack)
        return [e for e in evs if isinstance(e, Anomaly)]

    ehlo, starttls = len(b"EHLO c\r\n"), len(b"STARTTLS\r\n")
    assert run(starttls + len(hello), ehlo + starttls + len(hello)) == []
    (early,) = run(starttls, ehlo + starttls)
    assert early.code is AnomalyCode.STARTTLS_RESPONSE_INJECTION and early.side is SERVER
    assert run(starttls, -1) == []


# --- (B) a second EHLO before STARTTLS or any mail ----------------------------------------------------

def _ehlo_replies(path: Path) -> tuple[int, int]:
    """tshark: the two EHLO commands and the 250 replies right after each."""
    ehlos = frames_matching(path, 'smtp.req.command == "EHLO" && tcp.dstport == 25')
    assert len(ehlos) == 2
    replies = frames_matching(path, "smtp.response.code == 250 && tcp.srcport == 25")
    return (min(r for r in replies if r > ehlos[0]), min(r for r in replies if r > ehlos[1]))


def _starttls_lines(path: Path, frame: int) -> list[str]:
    return [p for (p,) in tshark_fields(path, f"frame.number == {frame}", "smtp.rsp.parameter")
            for p in p.split(",") if p.upper() == "STARTTLS"]


def test_the_mail_in_the_clear_after_a_second_reply_that_offers_starttls_is_the_clients() -> None:
    name = "smtp26-second-ehlo-offers-client-skips.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    first, second = _ehlo_replies(path)
    assert not _starttls_lines(path, first) and _starttls_lines(path, second)
    (mail,) = frames_matching(path, 'smtp.req.command == "MAIL"')
    assert _verdict(conv) == ("plaintext", "client", "client-did-not-request", None, mail)
    assert _findings(conv) == []
    assert conv["starttls"]["offered"] == "valid"
    assert conv["ehlo_reply"]["frames"] == [second] and "STARTTLS" in conv["ehlo_reply"]["lines"]
    assert conv["greeting"]["frame"] == 6              # (the first EHLO: the greeting)
    assert conv["clients"]["downgrade"] == [] and "postfix" in conv["clients"]["see_starttls"]
    assert conv["detail"].endswith(f"an earlier EHLO reply (frame {first}) does not offer STARTTLS, but the client "
                                   "sent EHLO again (frame 10), which resets the session (RFC 5321 4.1.4): the "
                                   "last list is the one it acted on")


def test_starttls_after_a_second_reply_that_offers_it_has_no_finding() -> None:
    name = "smtp26-second-ehlo-offers-then-tls.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    first, second = _ehlo_replies(path)
    (starttls,) = frames_matching(path, 'smtp.req.command == "STAR"')
    (finished,) = frames_matching(path, "tls.record.content_type == 20 && tcp.dstport == 25")
    assert second < starttls < finished
    assert _verdict(conv) == ("tls", "none", "tls-established", None, finished)
    assert _findings(conv) == []
    assert conv["ehlo_reply"]["frames"] == [second]
    assert conv["detail"] == "STARTTLS answered 220 and the TLS handshake completed (TLS 1.2)"


def test_the_mail_in_the_clear_after_a_second_reply_without_starttls_is_the_servers() -> None:
    """The mirror: the first reply offers STARTTLS, the second does not (the server withdrew it):
    the server's. It read client-did-not-request, the client's. (MailKit keeps a STARTTLS flag of an
    earlier EHLO through a later one, docs clients.md: the prediction's, tests/test_ehlo27.py.)"""
    name = "smtp26-second-ehlo-drops-starttls.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    first, second = _ehlo_replies(path)
    assert _starttls_lines(path, first) and not _starttls_lines(path, second)
    assert _verdict(conv) == ("plaintext", "server", "starttls-not-offered", None, second)
    assert _findings(conv) == []
    assert conv["starttls"]["offered"] == "absent"
    assert conv["ehlo_reply"]["frames"] == [second]
    assert conv["detail"] == (
        "the EHLO reply is well formed and does not offer STARTTLS; an earlier EHLO reply (frame 8) offers "
        "STARTTLS, but the client sent EHLO again (frame 10), which resets the session (RFC 5321 4.1.4): the last "
        "list is the one it acted on")


def test_a_refused_second_ehlo_leaves_the_first_list() -> None:
    """RFC 5321 4.1.4: a refused EHLO leaves the server in the state it was in; the first list
    stands and the mail in the clear is the client's, as before."""
    name = "smtp26-second-ehlo-refused-client-skips.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ehlos = frames_matching(path, 'smtp.req.command == "EHLO" && tcp.dstport == 25')
    (refused,) = frames_matching(path, "smtp.response.code == 501")
    assert ehlos[1] < refused
    (mail,) = frames_matching(path, 'smtp.req.command == "MAIL"')
    assert _verdict(conv) == ("plaintext", "client", "client-did-not-request", None, mail)
    assert conv["ehlo_reply"]["frames"] == [8]
    assert conv["detail"] == "STARTTLS was validly offered; the client went on in plaintext"


def test_an_lhlo_sent_again_is_named_lhlo_in_the_detail() -> None:
    """LMTP's LHLO twice, the first reply without STARTTLS, the second with it, the mail in the
    clear: the detail names the LHLO (it said "EHLO", the review's finding)."""
    no_tls = ("250-mx.example.com", "250-PIPELINING", "250 8BITMIME")
    ok_tls = ("250-mx.example.com", "250-PIPELINING", "250 STARTTLS")
    d = (Dialogue().s("220 mx.example.com LMTP").c("LHLO client.example.org").s(*no_tls)
         .c("LHLO client.example.org").s(*ok_tls).c("MAIL FROM:<a@b>").s("250 ok")
         .c("QUIT").s("221 bye").close())
    conv = judge(d.transcript())
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv["evidence_frame"]) == (
        "plaintext", "client", "client-did-not-request", 6)
    assert conv["detail"].endswith(
        "an earlier LHLO reply (frame 3) does not offer STARTTLS, but the client sent LHLO again (frame 4), "
        "which resets the session (RFC 5321 4.1.4): the last list is the one it acted on")
