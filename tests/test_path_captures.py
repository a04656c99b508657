"""The captures of captures/scenarios_path.py: taken on the server's side, the server's answer
to the ClientHello is resent and never acknowledged, and the client gives up: the answer was
lost on the path (a path MTU black hole, a box dropping the server's TLS), not refused by the
client. tshark finds the frames (the ServerHello, its retransmissions, the client's FIN and
its acknowledgement number) that the verdict names. Then those of captures/scenarios_gapack.py:
the same requests and answers missing from the capture too (a hole) and never acknowledged."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
    answer), then the client's close 3 s later, no alert: the client ended the handshake, having
    stalled with the whole answer (``client-silent``, its finding at the answer)."""
    name = "path-answer-received.pcap"
    (conv,) = analyze_path(str(CAPTURES / name))
    (sh,) = frames_matching(CAPTURES / name, SERVER_HELLO)
    (fin,) = frames_matching(CAPTURES / name, CLIENT_FIN)
    assert frames_matching(CAPTURES / name, "tcp.analysis.retransmission") == []
    ((fin_ack,),) = tshark_fields(CAPTURES / name, f"frame.number == {fin}", "tcp.ack_raw")
    ((sh_seq,),) = tshark_fields(CAPTURES / name, f"frame.number == {sh}", "tcp.seq_raw")
    assert int(fin_ack) > int(sh_seq)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed")
    assert conv["evidence_frame"] == fin and conv.get("case") == "client-silent"
    assert [(x["code"], x["side"], x["frame"]) for x in conv["findings"]] == [("client-silent", "client", sh)]


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
    verdict). Since the seventeenth session the file's clock going back 6 s at the frame after
    that FIN is read as it shows (analysis/clock.py): nothing in the file tells a FIN filed early
    from a clock stepped back, how long the client waited is not known, and the readings under
    the pauses at the step disagree, so no side is blamed (and never the server alone)."""
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
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["evidence_frame"] == sh + 1
    assert [(f["code"], f["frame"]) for f in conv["findings"]] == [("clock-step", sh + 1)]
    assert "as tls-handshake-failed (client) with no pause at the step" in conv["detail"]


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


# ------------------------------------------- holes: bytes the capture lost that never arrived
#
# captures/scenarios_gapack.py: the bytes are not in the capture (a hole), and the receiver never
# acknowledged them while a segment of its own a second or more after the sender's next segment
# stays before them. tshark shows the same: the frame after the hole is its "previous segment not
# captured" (tcp.analysis.lost_segment), and no acknowledgement of the receiver reaches past the
# hole's first byte.

HOLE_TEXT = {
    "client": "the server's acknowledgements up to its last segment ({s} s after frame {f}) never covered a byte "
              "of them",
    "server": "the client's acknowledgements up to its last segment ({s} s after frame {f}) never covered a byte "
              "of them",
}


def _hole(name: str, sender_port: str) -> tuple[dict[str, Any], int, int, float]:
    """The conversation of ``name``, the frame after its hole (tshark's lost_segment) in the direction from
    ``sender_port`` ("tcp.srcport == 25" or "tcp.dstport == 25"), the hole's length (its first sequence number:
    the highest acknowledgement of the receiver, which never reaches past it) and how long after that frame the
    receiver's last segment came."""
    path = CAPTURES / name
    (conv,) = analyze_path(str(path))
    ((after, seq),) = tshark_fields(path, f"tcp.analysis.lost_segment && {sender_port}", "frame.number",
                                    "tcp.seq_raw")
    receiver = "tcp.dstport == 25" if sender_port == "tcp.srcport == 25" else "tcp.srcport == 25"
    acks = [(int(a), float(t)) for a, t in tshark_fields(path, f"{receiver} && tcp.flags.ack == 1", "tcp.ack_raw",
                                                          "frame.time_epoch")]
    ((t_after,),) = tshark_fields(path, f"frame.number == {after}", "frame.time_epoch")
    top = max(a for a, _ in acks)
    hole = (int(seq) - top) % (1 << 32)
    assert 0 < hole < 2000
    return conv, int(after), hole, round(acks[-1][1] - float(t_after), 1)


def test_a_clienthello_dropped_before_the_capture_point_is_hello_lost() -> None:
    """Captured behind the box: the ClientHello is a hole before the client's FIN; the server's duplicate ACK and
    its FIN 10 s later acknowledge nothing of it (as in captures/pairs/dpi-drop-clienthello-fin.inside.pcap)."""
    conv, after, hole, later = _hole("pathhole-hello-fin.pcap", "tcp.dstport == 25")
    assert (later, hole) == (10.0, 166)
    (fin,) = frames_matching(CAPTURES / "pathhole-hello-fin.pcap", CLIENT_FIN)
    assert after == fin
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed")
    assert (conv["case"], conv["evidence_frame"]) == ("hello-lost", fin)
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("request-not-received", "middlebox", fin), ("tcp-gap", "capture", fin)]
    assert conv["detail"] == conv["findings"][0]["message"] == (
        f"the ClientHello never reached the server: the client's 166 bytes after the 220, where its ClientHello "
        f"begins, are missing from the capture before frame {fin}, and "
        + HOLE_TEXT["client"].format(s="10.0", f=fin)
        + " (a path MTU black hole, a box that drops the client's TLS)")
    info = REASON_CASES[("tls-handshake-failed", "hello-lost")]
    assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}
    assert conv["starttls"]["requested"] is True and conv["tls"]["client_hello_frame"] is None


def test_a_clienthello_whose_full_size_segment_was_dropped_is_hello_lost() -> None:
    """A path MTU black hole seen at the server: the ClientHello's small last segment arrives (a hole before it,
    a duplicate ACK), the client's FIN 3 s later is acknowledged only up to the hole."""
    conv, after, hole, later = _hole("pathhole-hello-mtu.pcap", "tcp.dstport == 25")
    assert (later, hole) == (3.0, 106)
    ((length,),) = tshark_fields(CAPTURES / "pathhole-hello-mtu.pcap", f"frame.number == {after}", "tcp.len")
    assert length == "60"
    assert (_verdict(conv), conv["case"], conv["evidence_frame"]) == (
        ("aborted", "middlebox", "tls-handshake-failed"), "hello-lost", after)
    assert [(f["code"], f["frame"]) for f in conv["findings"]] == [("request-not-received", after),
                                                                   ("tcp-gap", after)]
    assert HOLE_TEXT["client"].format(s="3.0", f=after) in conv["detail"]


def test_a_starttls_dropped_before_the_capture_point_is_command_lost() -> None:
    """The client's next 10 bytes after a valid offer (STARTTLS and its CRLF) are a hole; 3 s later its QUIT and
    FIN, the server's duplicate ACKs and its FIN 10 s later stay before them."""
    conv, after, hole, later = _hole("pathhole-starttls-quit.pcap", "tcp.dstport == 25")
    assert (later, hole) == (10.0, 10)
    (quit_,) = frames_matching(CAPTURES / "pathhole-starttls-quit.pcap", 'tcp.payload contains "QUIT"')
    assert after == quit_
    assert _verdict(conv) == ("aborted", "middlebox", "starttls-refused")
    assert (conv["case"], conv["evidence_frame"]) == ("command-lost", quit_)
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": None, "frame": None}
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("request-not-received", "middlebox", quit_), ("tcp-gap", "capture", quit_)]
    assert conv["detail"] == (
        f"STARTTLS never reached the server: the client's next 10 bytes after the EHLO reply that offered it "
        f"(STARTTLS and its CRLF) are missing from the capture before frame {quit_}, and "
        + HOLE_TEXT["client"].format(s="10.0", f=quit_)
        + f"; 3.0 s after the EHLO reply the client gave up waiting and sent QUIT (frame {quit_}) (a box that "
        "drops the command)")


def test_a_server_answer_dropped_before_the_capture_point_is_answer_lost() -> None:
    """Captured at the client behind a path MTU black hole: the server's answer is a hole but for its small last
    segment; the client's ACKs stay before it and it closes 3 s after its ClientHello."""
    name = "pathhole-answer-lost.pcap"
    conv, after, hole, later = _hole(name, "tcp.srcport == 25")
    assert (later, hole) == (3.0, 853)
    (fin,) = frames_matching(CAPTURES / name, CLIENT_FIN)
    (ch,) = frames_matching(CAPTURES / name, CLIENT_HELLO)
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed")
    assert (conv["case"], conv["evidence_frame"]) == ("answer-lost", after)
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("answer-not-received", "middlebox", after), ("tcp-gap", "capture", after)]
    assert conv["detail"] == (
        f"the server's answer to the ClientHello never reached the client: the server's 853 bytes after it are "
        f"missing from the capture before frame {after}, and " + HOLE_TEXT["server"].format(s="3.0", f=after)
        + f"; 3.0 s after its ClientHello the client closed the connection (frame {fin}) (a path MTU black hole, "
        "a box that drops the server's TLS)")
    assert conv["tls"]["client_hello_frame"] == ch and conv["tls"]["server_hello_frame"] is None
    info = REASON_CASES[("tls-handshake-failed", "answer-lost")]
    assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}


@pytest.mark.parametrize("name,sender", [
    ("pathhole-hello-acked.pcap", "tcp.dstport == 25"), ("pathhole-starttls-acked.pcap", "tcp.dstport == 25"),
    ("pathhole-answer-acked.pcap", "tcp.srcport == 25")])
def test_a_hole_the_receiver_acknowledged_is_the_captures_loss(name: str, sender: str) -> None:
    """The controls: the same holes, acknowledged by the receiver (tshark sees its ACK past them): the capture
    lost the bytes, the path did not; what they held may decide, so the verdict stays incomplete."""
    path = CAPTURES / name
    (conv,) = analyze_path(str(path))
    ((after, seq),) = tshark_fields(path, f"tcp.analysis.lost_segment && {sender}", "frame.number", "tcp.seq_raw")
    receiver = "tcp.dstport == 25" if sender == "tcp.srcport == 25" else "tcp.srcport == 25"
    top = max(int(a) for (a,) in tshark_fields(path, f"{receiver} && tcp.flags.ack == 1", "tcp.ack_raw"))
    assert (top - int(seq)) % (1 << 32) < 1 << 31        # the receiver's ACK reaches the bytes after the hole
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete") and "case" not in conv
    assert [(f["code"], f["frame"]) for f in conv["findings"]] == [("tcp-gap", int(after))]


@pytest.mark.parametrize("name", ["pathhole-hello-ends.pcap", "pathhole-starttls-ends.pcap"])
def test_a_hole_with_only_an_immediate_duplicate_ack_after_it_proves_nothing(name: str) -> None:
    """The capture ends right after the receiver's duplicate ACK: the bytes were not there yet, but a segment sent
    before the one after the hole may still have been on its way. No evidence: incomplete."""
    conv, after, _hole_len, later = _hole(name, "tcp.dstport == 25")
    assert later < 1.0
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete") and "case" not in conv
    assert [(f["code"], f["frame"]) for f in conv["findings"]] == [("tcp-gap", after)]
