"""Verdicts that were wrong on misbehaving paths and captures (captures/scenarios_hunt5.py).

Each capture is checked for its verdict, its evidence frame and its findings, and the frames the
verdict rests on are cross-checked with tshark's reading of the same file.
"""
from __future__ import annotations

import pytest

from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from pcapsmtp.engine.analyzer import analyze_path
from pcapsmtp.tcp.halfstream import RESEND_MIN_NS


def _times(path: object, frames: list[int]) -> list[float]:
    flt = " || ".join(f"frame.number == {n}" for n in frames)
    return [float(t) for (t,) in tshark_fields(path, flt, "frame.time_relative")]


def test_a_copy_of_the_220_with_its_timestamp_is_no_resend() -> None:
    """The server's 220 to STARTTLS written twice with one timestamp (a SPAN port, two merged
    interfaces), the client's ACK not captured, the capture ending at the server's FIN 300 s
    later: the copy shows nothing of the server's acknowledgements, so nothing shows the 220 lost
    (it read middlebox, answer-lost, "the server sent it again")."""
    path = CAPTURES / "span-copy-ready-server-closes.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, 14)
    assert _findings(conv) == []
    assert (conv["starttls"]["frame"], conv["starttls"]["reply_code"]) == (10, 220)
    assert "cannot be told" in conv["detail"]
    # tshark: the 220 in 12, its copy in 13 (tshark flags it a retransmission) at the same time,
    # the server's FIN in 14 and nothing of the client after the STARTTLS
    assert frames_matching(path, "smtp.response.code == 220 && frame.number > 4") == [12]
    assert frames_matching(path, "tcp.srcport == 25 && tcp.len == 30") == [12, 13]
    assert frames_matching(path, "tcp.analysis.retransmission") == [13]
    assert _times(path, [12, 13]) == [_times(path, [12])[0]] * 2
    assert frames_matching(path, "tcp.flags.fin == 1") == [14]
    assert frames_matching(path, "tcp.srcport == 48501 && frame.number > 10") == []


def test_the_220_resent_20ms_later_is_still_lost_on_the_path() -> None:
    """The same with the copy 20 ms later (a tail-loss probe's time): the server's TCP resent it
    and nothing of the client came back: middlebox, answer-lost, as pathhole-ready-server-closes."""
    path = CAPTURES / "span-resent-20ms-ready-server-closes.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "middlebox", "tls-not-started", "answer-lost", 12)
    assert _findings(conv) == [("answer-not-received", "middlebox", 12)]
    assert conv["detail"].startswith(
        "the server's 220 to STARTTLS (frame 12) never reached the client: the server sent it again (a TCP "
        "retransmission) and no segment of the client came back; 300.0 s after it the server closed the connection "
        "(frame 14)")
    assert frames_matching(path, "tcp.analysis.retransmission") == [13]
    t12, t13 = _times(path, [12, 13])
    assert t13 - t12 == pytest.approx(0.020) and (t13 - t12) * 1e9 >= RESEND_MIN_NS
    assert frames_matching(path, "tcp.srcport == 48502 && frame.number > 10") == []


def test_a_copy_of_starttls_with_its_timestamp_is_no_resend() -> None:
    """The client's STARTTLS written twice with one timestamp, nothing of the server after it,
    the client closing 10 s later: as with one copy, the server sent nothing (it read
    middlebox, command-lost, "the client sent it again")."""
    path = CAPTURES / "span-copy-starttls-client-closes.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "starttls-refused", "no-answer", 10)
    assert _findings(conv) == [("no-answer", "server", 10)]
    assert conv["detail"] == ("the server sent nothing for 10.0 s after STARTTLS: the client gave up waiting and "
                              "closed the connection (frame 12)")
    assert frames_matching(path, 'tcp.dstport == 25 && tcp.payload contains "STARTTLS"') == [10, 11]
    assert frames_matching(path, "tcp.dstport == 25 && tcp.len == 10") == [10, 11]
    assert frames_matching(path, "tcp.analysis.retransmission") == [11]
    assert _times(path, [10, 11]) == [_times(path, [10])[0]] * 2
    assert frames_matching(path, "tcp.srcport == 25 && frame.number > 10") == []


def test_starttls_resent_20ms_later_is_still_lost_on_the_path() -> None:
    path = CAPTURES / "span-resent-20ms-starttls-client-closes.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "middlebox", "starttls-refused", "command-lost", 10)
    assert _findings(conv) == [("request-not-received", "middlebox", 10)]
    assert "the client sent it again (a TCP retransmission) and no segment of the server came back" in conv["detail"]
    t10, t11 = _times(path, [10, 11])
    assert t11 - t10 == pytest.approx(0.020)


@pytest.mark.parametrize("lag_ns, resent", [(0, 0), (50_000, 0), (RESEND_MIN_NS - 1, 0), (RESEND_MIN_NS, 30),
                                             (200_000_000, 30)])
def test_halfstream_counts_a_resend_only_some_time_after_the_bytes(lag_ns: int, resent: int) -> None:
    """The model under the verdicts: a copy of delivered bytes raises ``resent_end`` (what the
    verdict reads as the sender's retransmission) only ``RESEND_MIN_NS`` or more after they were
    first captured; ``retransmitted_bytes`` counts every copy, as tshark flags each."""
    from pcapsmtp.model import Side
    from pcapsmtp.tcp.config import ReassemblyStats
    from pcapsmtp.tcp.halfstream import HalfStream

    stats = ReassemblyStats()
    h = HalfStream(0, Side.SERVER, stats, 1 << 20, 16 * 1024)
    h.syn(1000)
    out: list[object] = []
    h.data(1001, b"220 ready\r\n", 0, 5, 1_000_000_000, out)          # type: ignore[arg-type]
    h.data(1012, b"x" * 19, 0, 6, 1_000_000_000, out)                  # type: ignore[arg-type]
    h.data(1001, b"220 ready\r\n" + b"x" * 19, 0, 7, 1_000_000_000 + lag_ns, out)  # type: ignore[arg-type]
    assert h.resent_end == resent
    assert stats.retransmitted_bytes == 30
    # a partial copy (old bytes and new ones) reads the same way for its old part
    h.data(1021, b"x" * 10 + b"new", 0, 8, 1_000_000_000 + lag_ns, out)  # type: ignore[arg-type]
    assert h.resent_end == resent
    assert h.next_off == 33


@pytest.mark.parametrize("name, port, client_fin, shown", [
    ("pathhole-ehlo-reply-lost-server-closes.pcap", 48505, 12,
     "the client's acknowledgements after it never covered a byte of it; 10.0 s after it the server closed the "
     "connection (frame 11)"),
    ("pathhole-ehlo-reply-lost-server-421.pcap", 48506, 13,
     "the client's acknowledgements after it never covered a byte of it; 10.0 s after it the server sent 421 "
     "(frame 11) and closed the connection (frame 12)"),
    ("pathhole-ehlo-reply-lost-server-closes-end.pcap", 48507, None,
     "the server sent it again (a TCP retransmission) and no segment of the client came back; 10.0 s after it "
     "the server closed the connection (frame 11)"),
])
def test_an_ehlo_reply_lost_on_the_path_is_the_paths(name: str, port: int, client_fin: int | None,
                                                     shown: str) -> None:
    """The server's EHLO reply, resent and never acknowledged, then the server's command timeout
    ending the session: the client never saw the extension list (it read no-mail-transaction,
    blaming nobody)."""
    path = CAPTURES / name
    conv = _conv(name)
    assert _verdict(conv) == ("aborted", "middlebox", "ehlo-rejected", "answer-lost", 8)
    assert _findings(conv) == [("answer-not-received", "middlebox", 8)]
    assert conv["findings"][0]["rfc"] == "RFC 9293 3.4"
    assert conv["explanation"]["ask"].startswith("Ask the network team"), conv["explanation"]
    assert conv["ehlo_reply"]["frames"] == [8]
    assert conv["detail"] == (f"the server's EHLO reply (frame 8) never reached the client: {shown}, its command "
                              "timeout, never having had a command: the answer was lost on the path (a box that "
                              "drops it), so the client never saw its extension list, nor STARTTLS in it")
    # tshark: the reply in 8 and its two retransmissions, the server's FIN, and every
    # acknowledgement of the client after the EHLO still at the reply's first byte
    assert frames_matching(path, "smtp.response.code == 250") == [8]
    assert frames_matching(path, "tcp.srcport == 25 && tcp.analysis.retransmission") == [9, 10]
    server_fin = 12 if "421" in name else 11
    fins = frames_matching(path, "tcp.flags.fin == 1")
    assert fins == ([server_fin] if client_fin is None else [server_fin, client_fin])
    if "421" in name:
        assert frames_matching(path, "smtp.response.code == 421") == [11]
    ((seq,),) = tshark_fields(path, "frame.number == 8", "tcp.seq")
    acks = {int(a) for (a,) in tshark_fields(path, f"tcp.srcport == {port} && frame.number > 8", "tcp.ack")}
    assert acks == (set() if client_fin is None else {int(seq)})


def test_an_ehlo_reply_lost_on_the_path_the_client_quitting_first_is_the_paths() -> None:
    """The same reply lost, the client giving up first with QUIT (the server's 221 and FIN lost
    too): the same verdict (it read no-mail-transaction)."""
    path = CAPTURES / "pathhole-ehlo-reply-lost-client-quits.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "middlebox", "ehlo-rejected", "answer-lost", 8)
    assert _findings(conv) == [("answer-not-received", "middlebox", 8)]
    assert conv["detail"] == ("the server's EHLO reply (frame 8) never reached the client: the client's "
                              "acknowledgements after it never covered a byte of it; 8.0 s after it the client gave "
                              "up waiting and sent QUIT (frame 11): the answer was lost on the path (a box that drops "
                              "it), so the client never saw its extension list, nor STARTTLS in it")
    assert frames_matching(path, 'smtp.req.command == "QUIT"') == [11]
    ((seq,),) = tshark_fields(path, "frame.number == 8", "tcp.seq")
    acks = {int(a) for (a,) in tshark_fields(path, "tcp.srcport == 48510 && frame.number > 8", "tcp.ack")}
    assert acks == {int(seq)}


def test_a_client_that_had_the_whole_answer_and_hung_is_the_clients() -> None:
    """The client acknowledges the server's whole answer to its ClientHello and sends nothing;
    the server's handshake timeout closes 60 s later, the client 5 s after: the client hung (the
    server was blamed, "closed the connection after the ServerHello")."""
    path = CAPTURES / "hunt5-client-hangs-after-answer.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 18)
    assert _findings(conv) == [("client-silent", "client", 16)]
    assert conv["tls"]["server_hello_frame"] == 16
    assert conv["detail"] == ("the client acknowledged the server's whole answer to its ClientHello (frame 16) and "
                              "sent nothing for 60.0 s: the server gave up waiting for the client's side of the "
                              "handshake and closed the connection (frame 18); the client then closed its side "
                              "without having sent anything (frame 19)")
    # the case's own explanation sends the admin to the client's side (the reason's says "ask the
    # side that ended the handshake", the server), and no RFC 8460 failure is held against the
    # receiving server, which answered right
    assert conv["explanation"]["ask"].startswith("Ask the sending side's admin")
    assert "tlsrpt_result" not in conv
    # tshark: the ServerHello flight in 16, the client's ACK of all of it in 17, the server's FIN
    # 60 s later in 18, the client's in 19 and nothing of the client's TLS after the ClientHello
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    assert frames_matching(path, "tls.handshake.type == 14") == [16]
    ((seq, length),) = tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len")
    ((ack,),) = tshark_fields(path, "frame.number == 17", "tcp.ack")
    assert int(ack) == int(seq) + int(length)
    assert frames_matching(path, "tcp.flags.fin == 1") == [18, 19]
    assert frames_matching(path, "tcp.srcport == 48508 && tls") == [14]
    t16, t18 = _times(path, [16, 18])
    assert t18 - t16 == pytest.approx(60.0, abs=0.01)


def test_a_tls13_client_that_had_the_servers_finished_and_hung_is_the_clients() -> None:
    """The same in TLS 1.3: the server's encrypted flight ends with a 53-byte record (its Finished
    under a SHA-256 suite), which the client acknowledges and never answers."""
    path = CAPTURES / "hunt5-client-hangs-after-answer-tls13.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 18)
    assert _findings(conv) == [("client-silent", "client", 16)]
    assert conv["tls"]["version"] == "TLS 1.3"
    # tshark: the ServerHello, the CCS and four encrypted records, the last of 53 bytes, in 16
    ((types, lengths),) = tshark_fields(path, "frame.number == 16", "tls.record.content_type",
                                        "tls.record.length")
    assert lengths.split(",")[-1] == "53" and types.split(",")[:2] == ["22", "20"]
    ((seq, length),) = tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len")
    ((ack,),) = tshark_fields(path, "frame.number == 17", "tcp.ack")
    assert int(ack) == int(seq) + int(length)
    assert frames_matching(path, "tcp.srcport == 48514 && tls") == [14]


def test_a_server_stalled_in_the_middle_of_its_answer_is_still_the_servers() -> None:
    """The server's answer stops before its ServerHelloDone (a slow signature or OCSP fetch): the
    client acknowledged all of it and rightly waits for the rest (RFC 5246 7.3: it sends its key
    exchange only after the ServerHelloDone); the server's timeout closes: the server's, as before
    the rule for a hung client (its first version blamed the client here)."""
    path = CAPTURES / "hunt5-server-stalls-mid-answer.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", None, 18)
    assert _findings(conv) == []
    assert frames_matching(path, "tls.handshake.type == 12") == [16]
    assert frames_matching(path, "tls.handshake.type == 14") == []
    ((seq, length),) = tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len")
    ((ack,),) = tshark_fields(path, "frame.number == 17", "tcp.ack")
    assert int(ack) == int(seq) + int(length)


def test_a_client_that_had_the_whole_answer_the_capture_ending_at_the_servers_close_is_incomplete() -> None:
    path = CAPTURES / "hunt5-client-hangs-after-answer-end.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, 18)
    assert _findings(conv) == []
    assert "cannot be told, the capture ends before the client's next segment" in conv["detail"]
    assert frames_matching(path, "tcp.flags.fin == 1") == [18]
    assert frames_matching(path, "frame.number > 18") == []


def test_the_client_side_of_a_partly_lost_answer_reads_as_the_server_side() -> None:
    """pathhole-answer-partly-server-closes.pcap captured at the client: the ServerHello arrives,
    the rest of the answer is missing, the server's FIN 60 s later, the client's FIN 5 s after still
    acknowledging only the ServerHello: the path's, as the server's side reads it (it read
    incomplete, "whether they held an alert, or reached the client ... cannot be told")."""
    path = CAPTURES / "pathhole-answer-partly-client-side.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "answer-lost", 18)
    assert _findings(conv) == [("answer-not-received", "middlebox", 18), ("tcp-gap", "capture", 18)]
    assert conv["tls"]["server_hello_frame"] == 16
    assert conv["detail"] == ("the server's answer to the ClientHello never reached the client whole: its first 96 "
                              "bytes (the ServerHello, frame 16) did, but the server's 817 bytes after them are "
                              "missing from the capture before frame 18, and the client's acknowledgements up to its "
                              "last segment (5.0 s after frame 18) never covered a byte of them; 65.0 s after its "
                              "ClientHello the client closed the connection (frame 19) (a path MTU black hole, a box "
                              "that drops the server's TLS)")
    server_side = _conv("pathhole-answer-partly-server-closes.pcap")
    assert _verdict(server_side)[:4] == _verdict(conv)[:4]
    # tshark: the ServerHello alone in 16, the server's FIN in 18 past missing bytes, the client's
    # acknowledgements after 16 all at the ServerHello's end
    assert frames_matching(path, "tls.handshake.type == 2") == [16]
    assert frames_matching(path, "tls.handshake.type == 11") == []
    assert frames_matching(path, "tcp.analysis.lost_segment") == [18]
    ((seq, length),) = tshark_fields(path, "frame.number == 16", "tcp.seq", "tcp.len")
    acks = {int(a) for (a,) in tshark_fields(path, "tcp.srcport == 48511 && frame.number > 16", "tcp.ack")}
    assert acks == {int(seq) + int(length)}
    ((fin_seq,),) = tshark_fields(path, "frame.number == 18", "tcp.seq")
    assert int(fin_seq) - (int(seq) + int(length)) == 817


def test_a_ticket_after_the_finished_keeps_the_answer_whole_and_its_retry_reports_no_tlsrpt_failure() -> None:
    """The TLS 1.3 hung client, the server sending a session ticket right after its Finished (Go's
    crypto/tls): the Finished-sized record is not the last one, the answer is still whole (the
    first version took only the last record and blamed the server). The client's plaintext retry
    70 s later is its tls-fallback, with no RFC 8460 failure either: the failure it retries after
    was none of the receiving server's TLS (it read validation-failure)."""
    path = CAPTURES / "hunt5-client-hangs-after-ticket-then-retry.pcap"
    first, retry = (c for c in analyze_path(str(path)))
    assert (first["outcome"], first["caused_by"], first["reason"], first.get("case")) == (
        "aborted", "client", "tls-handshake-failed", "client-silent")
    assert "tlsrpt_result" not in first
    assert (retry["outcome"], retry["caused_by"], retry["reason"]) == ("plaintext", "client", "tls-fallback")
    assert retry["fallback_of"]["stream"] == first["stream"]
    assert "tlsrpt_result" not in retry
    # tshark: the server's records in frame 16 end with the 53-byte Finished and a 200-byte ticket
    ((lengths,),) = tshark_fields(path, "frame.number == 16", "tls.record.length")
    assert lengths.split(",")[-2:] == ["53", "200"]
    assert frames_matching(path, "tcp.srcport == 48516 && tls") == [14]
    assert frames_matching(path, 'smtp.req.command == "STARTTLS" && tcp.srcport == 48517') == []
