"""The captures of captures/scenarios_path.py: taken on the server's side, the server's answer
to the ClientHello is resent and never acknowledged, and the client gives up: the answer was
lost on the path (a path MTU black hole, a box dropping the server's TLS), not refused by the
client. tshark finds the frames (the ServerHello, its retransmissions, the client's FIN and
its acknowledgement number) that the verdict names."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pcapsmtp.analysis.reasons import FINDINGS, REASON_CASES
from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching, tshark_fields

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
SERVER_HELLO = "tls.handshake.type == 2 && !tcp.analysis.retransmission"
CLIENT_FIN = "tcp.flags.fin == 1 && tcp.dstport == 25"


def _verdict(c: dict[str, Any]) -> tuple[str, str, str]:
    return c["outcome"], c["caused_by"], c["reason"]


def test_answer_lost_on_the_path_blames_the_path() -> None:
    name = "path-answer-lost.pcap"
    (conv,) = analyze_path(str(CAPTURES / name))
    (sh,) = frames_matching(CAPTURES / name, SERVER_HELLO)
    resent = frames_matching(CAPTURES / name, "tcp.analysis.retransmission && tcp.srcport == 25")
    (fin,) = frames_matching(CAPTURES / name, CLIENT_FIN)
    assert len(resent) == 2 and sh < resent[0] < resent[1] < fin
    # the client's FIN acknowledges nothing of the answer: its ACK is the ServerHello's sequence number
    ((fin_ack,),) = tshark_fields(CAPTURES / name, f"frame.number == {fin}", "tcp.ack_raw")
    ((sh_seq,),) = tshark_fields(CAPTURES / name, f"frame.number == {sh}", "tcp.seq_raw")
    assert fin_ack == sh_seq
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed")
    assert conv["evidence_frame"] == sh
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("answer-not-received", "middlebox", sh)]
    (finding,) = conv["findings"]
    assert finding["rfc"] == FINDINGS["answer-not-received"].rfc == "RFC 1191"
    assert finding["message"] == conv["detail"] == (
        f"the server answered the ClientHello (frame {sh}), but the client never acknowledged a byte of "
        f"that answer: 6.0 s later it closed the connection (frame {fin}); the answer was lost on the "
        "path (a path MTU black hole, a box that drops the server's TLS)")
    info = REASON_CASES[("tls-handshake-failed", "answer-lost")]
    assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}
    assert info.caused_by == "middlebox"
    assert conv["tls"]["server_hello_frame"] == sh


def test_the_retry_in_plaintext_follows_the_path_failure() -> None:
    first, retry = analyze_path(str(CAPTURES / "path-answer-lost-fallback.pcap"))
    assert _verdict(first) == ("aborted", "middlebox", "tls-handshake-failed")
    assert _verdict(retry) == ("plaintext", "middlebox", "tls-fallback")
    assert retry["fallback_of"]["stream"] == first["stream"]


def test_a_delivered_answer_makes_the_client_the_one_that_ended_it() -> None:
    """The control: the same flight acknowledged by the client (its ACK and its FIN cover the
    answer), then the client's close: the client ended the handshake."""
    name = "path-answer-received.pcap"
    (conv,) = analyze_path(str(CAPTURES / name))
    (sh,) = frames_matching(CAPTURES / name, SERVER_HELLO)
    (fin,) = frames_matching(CAPTURES / name, CLIENT_FIN)
    assert frames_matching(CAPTURES / name, "tcp.analysis.retransmission") == []
    ((fin_ack,),) = tshark_fields(CAPTURES / name, f"frame.number == {fin}", "tcp.ack_raw")
    ((sh_seq,),) = tshark_fields(CAPTURES / name, f"frame.number == {sh}", "tcp.seq_raw")
    assert int(fin_ack) > int(sh_seq)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed")
    assert conv["evidence_frame"] == fin and conv["findings"] == []


def test_a_black_hole_for_full_size_segments_only() -> None:
    """The classic path MTU black hole: the ServerHello's small segment gets through (the
    client acknowledges it), the certificate's full-size segments after it are resent and never
    acknowledged: the answer was still lost on the path."""
    name = "path-answer-partly-lost.pcap"
    (conv,) = analyze_path(str(CAPTURES / name))
    (sh,) = frames_matching(CAPTURES / name, SERVER_HELLO)
    (fin,) = frames_matching(CAPTURES / name, CLIENT_FIN)
    ((sh_seq, sh_len),) = tshark_fields(CAPTURES / name, f"frame.number == {sh}", "tcp.seq_raw", "tcp.len")
    acks = {int(a) for (a,) in tshark_fields(CAPTURES / name, f"tcp.dstport == 25 && frame.number > {sh}",
                                              "tcp.ack_raw")}
    assert acks == {int(sh_seq) + int(sh_len)}     # the ServerHello's segment, nothing after it
    assert len(frames_matching(CAPTURES / name, "tcp.analysis.retransmission && tcp.srcport == 25")) >= 2
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed")
    assert conv["evidence_frame"] == sh
    assert [(f["code"], f["frame"]) for f in conv["findings"]] == [("answer-not-received", sh)]
    assert conv["detail"] == (
        f"the server answered the ClientHello (frame {sh}), but the client acknowledged only {sh_len} of its "
        f"913 bytes: 6.0 s later it closed the connection (frame {fin}); the answer was lost on the path (a "
        "path MTU black hole, a box that drops the server's TLS)")


def test_a_close_filed_before_the_answer_it_followed_is_no_crash(tmp_path: Path) -> None:
    """A merged capture may file a frame before frames it came after: here the client's FIN,
    6 s after the ServerHello by its timestamp, is filed before it. The answer-lost rule found
    no server record between the two and crashed on an empty list (a traceback instead of a
    verdict); it now leaves such a conversation to the general rule."""
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap, wrpcap

    src = CAPTURES / "path-answer-lost.pcap"
    (sh,) = frames_matching(src, SERVER_HELLO)
    (fin,) = frames_matching(src, CLIENT_FIN)
    pkts = list(rdpcap(str(src)))
    order = [i for i in range(len(pkts)) if i != fin - 1]
    order.insert(sh - 1, fin - 1)
    moved = tmp_path / "fin-filed-early.pcap"
    wrpcap(str(moved), [pkts[i] for i in order])
    assert frames_matching(moved, CLIENT_FIN) == [sh] and pkts[fin - 1][TCP].flags & 1
    (conv,) = analyze_path(str(moved))
    assert conv["reason"] == "tls-handshake-failed" and conv["caused_by"] != "server"


# ------------------------------------------------------------------- the client's request lost

CLIENT_HELLO = "tls.handshake.type == 1 && !tcp.analysis.retransmission"
STARTTLS = 'tcp.payload contains "STARTTLS" && tcp.dstport == 25 && !tcp.analysis.retransmission'


def _lost_request(name: str, first: str) -> tuple[dict[str, Any], int, int, int]:
    """The conversation of ``name``, the frame of its (first copy of the) request, the client's
    FIN, and the server's last acknowledgement number minus the request's first sequence number
    (tshark's raw numbers)."""
    (conv,) = analyze_path(str(CAPTURES / name))
    (req,) = frames_matching(CAPTURES / name, first)
    (fin,) = frames_matching(CAPTURES / name, CLIENT_FIN)
    resent = frames_matching(CAPTURES / name, "tcp.analysis.retransmission && tcp.dstport == 25")
    assert len(resent) == 2 and req < resent[0] < resent[1] < fin
    ((req_seq,),) = tshark_fields(CAPTURES / name, f"frame.number == {req}", "tcp.seq_raw")
    last_ack = tshark_fields(CAPTURES / name, "tcp.srcport == 25", "tcp.ack_raw")[-1][0]
    return conv, req, fin, (int(last_ack) - int(req_seq)) % (1 << 32)


def test_a_clienthello_that_never_reached_the_server_blames_the_path() -> None:
    """Captured at the client: the server's last ACK (its duplicate ACK after the client's FIN)
    is still the ClientHello's first sequence number: TCP never got it to the server, so the
    server's TLS did not hang; the path dropped it."""
    conv, ch, fin, acked = _lost_request("path-hello-lost.pcap", CLIENT_HELLO)
    assert acked == 0
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed")
    assert conv["case"] == "hello-lost" and conv["evidence_frame"] == ch
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("request-not-received", "middlebox", ch)]
    assert conv["detail"] == (
        "the ClientHello never reached the server: the server's acknowledgements after it never "
        f"covered a byte of it; 6.0 s after it the client gave up waiting and closed the connection "
        f"(frame {fin}) (a path MTU black hole, a box that drops the client's TLS)")
    info = REASON_CASES[("tls-handshake-failed", "hello-lost")]
    assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}
    assert FINDINGS["request-not-received"].side == "middlebox"


def test_a_clienthello_acknowledged_in_part_is_a_black_hole_for_full_size_segments() -> None:
    # tshark names the ClientHello at its second segment, where the record completes: the
    # first, acknowledged one is the 60-byte segment before it
    conv, rest, _fin, acked = _lost_request("path-hello-partly-lost.pcap", CLIENT_HELLO)
    (ch,) = frames_matching(CAPTURES / "path-hello-partly-lost.pcap", "tcp.dstport == 25 && tcp.len == 60")
    assert ch < rest and acked == 0
    assert (_verdict(conv), conv["case"]) == (("aborted", "middlebox", "tls-handshake-failed"), "hello-lost")
    assert "the server acknowledged only its first 60 of 166 bytes" in conv["detail"]
    assert [(f["code"], f["frame"]) for f in conv["findings"]] == [("request-not-received", ch)]


def test_a_starttls_that_never_reached_the_server_blames_the_path() -> None:
    conv, st, _fin, acked = _lost_request("path-starttls-lost.pcap", STARTTLS)
    assert acked == 0
    assert _verdict(conv) == ("aborted", "middlebox", "starttls-refused")
    assert conv["case"] == "command-lost" and conv["starttls"]["requested"] is True
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("request-not-received", "middlebox", st)]


def test_an_acknowledged_request_left_unanswered_is_the_servers_silence() -> None:
    """The control: the same wait where the server's TCP acknowledged the ClientHello (and
    STARTTLS): it arrived, and the server kept silent."""
    for name, reason, case in (("hang-tls-stall-alert.pcap", "tls-handshake-failed", "server-silent"),
                               ("hang-starttls-silent-fallback.pcap", "starttls-refused", "no-answer")):
        conv = analyze_path(str(CAPTURES / name))[0]
        assert (conv["caused_by"], conv["reason"], conv["case"]) == ("server", reason, case), name
        codes = [f["code"] for f in conv["findings"]]
        assert "no-answer" in codes and "request-not-received" not in codes, name
