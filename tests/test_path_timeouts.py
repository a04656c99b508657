"""The captures of captures/scenarios_holes.py: bytes a box dropped (a hole the receiver never
acknowledged, as in the pathhole captures of scenarios_gapack.py), where the receiver gives up
first: the server's command timeout's 421 (Postfix, Exim) or its close after the 220 or on the
SMTPS port, the client's close on a server answer that never came. The sender's next segment (the
client's FIN after the 421) is what shows the hole, and no segment of the receiver comes a second
later: what shows the bytes never arrived is the receiver's giving up, ten seconds or more after they
were due, with acknowledgements that still stay before them.

tshark sees the same: the frame after the hole is its "previous segment not captured"
(``tcp.analysis.lost_segment``), the receiver's ``tcp.ack`` never reaches past the hole's first
byte, and the 421 is an SMTP reply (``smtp.response.code``) whose own ACK stays there too."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.analysis.reasons import REASON_CASES
from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching, tshark_fields

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
TO_SERVER = "tcp.dstport == 25 || tcp.dstport == 465"
FROM_SERVER = "tcp.srcport == 25 || tcp.srcport == 465"


def _verdict(c: dict[str, Any]) -> tuple[str, str, str, str | None]:
    return c["outcome"], c["caused_by"], c["reason"], c.get("case")


def _hole(name: str, sender: str) -> tuple[dict[str, Any], int, int, int]:
    """The conversation of ``name``; from tshark, the frame after the hole of the direction
    ``sender`` (a filter on its port), the hole's length (the sequence number there minus the
    receiver's highest acknowledgement: it never reaches past the hole's first byte) and that
    highest acknowledgement (raw)."""
    path = CAPTURES / name
    (conv,) = analyze_path(str(path))
    ((after, seq),) = tshark_fields(path, f"tcp.analysis.lost_segment && ({sender})", "frame.number",
                                    "tcp.seq_raw")
    receiver = FROM_SERVER if sender == TO_SERVER else TO_SERVER
    top = max(int(a) for (a,) in tshark_fields(path, f"({receiver}) && tcp.flags.ack == 1 && !tcp.flags.syn == 1",
                                                "tcp.ack_raw"))
    return conv, int(after), (int(seq) - top) % (1 << 32), top


def _frames(conv: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]


def _server_fin(name: str) -> int:
    (fin,) = frames_matching(CAPTURES / name, f"tcp.flags.fin == 1 && ({FROM_SERVER})")
    return fin


@pytest.mark.parametrize("name,text", [
    ("pathhole-starttls-postfix421.pcap", "421 4.4.2 mx.example.com Error: timeout exceeded"),
    ("pathhole-starttls-exim421.pcap", "421 mx.example.net: SMTP command timeout - closing connection")])
def test_a_starttls_dropped_until_the_servers_command_timeout_is_command_lost(name: str, text: str) -> None:
    """Postfix (IPv4) and Exim (IPv6) send their command timeout's 421 300 s after the EHLO reply and close;
    the client's FIN after them shows the 10-byte hole. The 421's own ACK stays at the hole's first byte: the
    server timed out waiting for a command its TCP never got."""
    conv, after, hole, top = _hole(name, TO_SERVER)
    assert hole == 10
    path = CAPTURES / name
    ((reply, reply_ack, t_reply),) = tshark_fields(path, "smtp.response.code == 421", "frame.number", "tcp.ack_raw",
                                                   "frame.time_epoch")
    ((ehlo_reply, t_ehlo),) = tshark_fields(path, 'smtp.response.code == 250 && smtp.rsp.parameter contains "STARTTLS"',
                                            "frame.number", "frame.time_epoch")
    assert int(reply_ack) == top and round(float(t_reply) - float(t_ehlo), 1) == 300.0
    (client_fin,) = frames_matching(path, f"tcp.flags.fin == 1 && ({TO_SERVER})")
    assert after == client_fin
    assert _verdict(conv) == ("aborted", "middlebox", "starttls-refused", "command-lost")
    assert conv["evidence_frame"] == after
    assert _frames(conv) == [("request-not-received", "middlebox", after), ("tcp-gap", "capture", after)]
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": None, "frame": None}
    assert conv["detail"] == conv["findings"][0]["message"] == (
        f"STARTTLS never reached the server: the client's next 10 bytes after the EHLO reply that offered it "
        f"(STARTTLS and its CRLF) are missing from the capture before frame {after}, and the server's "
        f"acknowledgements never covered a byte of them: 300.0 s after the EHLO reply the server gave up waiting "
        f"and sent 421 (frame {reply}: {text!r}) and closed the connection (frame {_server_fin(name)}) (a box that "
        "drops the command)")
    info = REASON_CASES[("starttls-refused", "command-lost")]
    assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}
    # the 421 is a reply of its own, not more of the EHLO reply
    assert conv["ehlo_reply"]["frames"] == [int(ehlo_reply)] and "421" not in " ".join(conv["ehlo_reply"]["lines"])


def test_a_starttls_the_server_acknowledged_before_its_421_is_the_servers() -> None:
    """The control: the same hole, timing and 421, but the server's ACK after STARTTLS, and the 421's, cover the
    10 bytes (only the capture lost them): the command reached the server, which ended the session itself."""
    name = "pathhole-starttls-421-acked.pcap"
    path = CAPTURES / name
    (conv,) = analyze_path(str(path))
    ((after, seq),) = tshark_fields(path, f"tcp.analysis.lost_segment && ({TO_SERVER})", "frame.number",
                                    "tcp.seq_raw")
    ((reply, reply_ack),) = tshark_fields(path, "smtp.response.code == 421", "frame.number", "tcp.ack_raw")
    assert int(reply_ack) == int(seq)           # the 421 acknowledges the hole's 10 bytes
    # (its 421 is its command timeout's, 300 s after the EHLO reply: no case server-closed, whose
    # explanation is a server that refuses and closes at once)
    assert _verdict(conv) == ("aborted", "server", "starttls-refused", None)
    assert conv["evidence_frame"] == int(reply)
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": 421, "frame": None}
    assert _frames(conv) == [("tcp-gap", "capture", int(reply))]
    assert conv["detail"] == (
        f"the client's next 10 bytes after the EHLO reply that offered STARTTLS (its length, with its CRLF) are "
        f"missing from the capture before frame {reply}, but the server acknowledged them: they reached it; 300.0 s "
        f"after the EHLO reply it answered 421 (frame {reply}: '421 4.4.2 mx.example.com Error: timeout exceeded') "
        f"and closed the connection (frame {_server_fin(name)})")
    assert int(after) > int(reply)


def test_a_421_sooner_than_a_second_after_the_offer_proves_nothing() -> None:
    """The control: the server shuts down 0.5 s after the EHLO reply; its 421's ACK stays before the hole, but
    STARTTLS may have crossed it on the path: incomplete."""
    conv, after, hole, _top = _hole("pathhole-starttls-421-soon.pcap", TO_SERVER)
    assert hole == 10
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None)
    assert _frames(conv) == [("tcp-gap", "capture", after)]


@pytest.mark.parametrize("name,seconds,act", [
    ("pathhole-hello-postfix-timeout.pcap", "300.0", ""),
    ("pathhole-hello-exim421.pcap", "600.0",
     " sent '421 mx.example.net: SMTP command timeout - closing connection' in plaintext (frame {reply}) and")])
def test_a_clienthello_dropped_until_the_servers_tls_timeout_is_hello_lost(name: str, seconds: str,
                                                                          act: str) -> None:
    """Postfix (IPv4) closes 300 s after its 220 without a word; Exim (IPv6) reads plaintext again after the failed
    handshake and sends its command timeout's 421 600 s after its 220, which is no response injection. The client's
    FIN shows the 166-byte hole, which no ACK of the server covers."""
    conv, after, hole, _top = _hole(name, TO_SERVER)
    assert hole == 166
    path = CAPTURES / name
    replies = frames_matching(path, "smtp.response.code == 421")
    act = act.format(reply=replies[0]) if act else ""
    assert len(replies) == (1 if act else 0)
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "hello-lost")
    assert _frames(conv) == [("request-not-received", "middlebox", after), ("tcp-gap", "capture", after)]
    assert conv["detail"] == (
        f"the ClientHello never reached the server: the client's 166 bytes after the 220, where its ClientHello "
        f"begins, are missing from the capture before frame {after}, and the server's acknowledgements never "
        f"covered a byte of them: {seconds} s after the 220 the server gave up waiting and{act} closed the "
        f"connection (frame {_server_fin(name)}) (a path MTU black hole, a box that drops the client's TLS)")
    assert conv["tls"]["client_hello_frame"] is None and conv["starttls"]["reply_code"] == 220


def test_a_clienthello_the_server_acknowledged_stays_incomplete() -> None:
    name = "pathhole-hello-timeout-acked.pcap"
    (conv,) = analyze_path(str(CAPTURES / name))
    ((after, seq),) = tshark_fields(CAPTURES / name, f"tcp.analysis.lost_segment && ({TO_SERVER})", "frame.number",
                                    "tcp.seq_raw")
    acks = [int(a) for (a,) in tshark_fields(CAPTURES / name, FROM_SERVER, "tcp.ack_raw")]
    assert max(acks) > int(seq)           # the server acknowledged the hole and the client's FIN after it
    # the hole at the server's FIN, which acknowledges it and comes before the client's (tshark's
    # lost_segment): the close does not overtake the bytes it acknowledges
    (server_fin,) = frames_matching(CAPTURES / name, f"tcp.flags.fin == 1 && ({FROM_SERVER})")
    assert server_fin < int(after)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None)
    assert _frames(conv) == [("tcp-gap", "capture", server_fin)]


def test_a_server_answer_dropped_until_the_clients_timeout_is_answer_lost() -> None:
    """Captured at the client: nothing of the server's answer is in the capture; the client closes 60 s after its
    ClientHello, and the server's FIN after that, past the answer, shows the 913-byte hole the client's ACKs
    never covered."""
    name = "pathhole-answer-client-timeout.pcap"
    conv, after, hole, _top = _hole(name, FROM_SERVER)
    assert hole == 913 and after == _server_fin(name)
    (client_fin,) = frames_matching(CAPTURES / name, f"tcp.flags.fin == 1 && ({TO_SERVER})")
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "answer-lost")
    assert _frames(conv) == [("answer-not-received", "middlebox", after), ("tcp-gap", "capture", after)]
    assert conv["detail"] == (
        f"the server's answer to the ClientHello never reached the client: the server's 913 bytes after it are "
        f"missing from the capture before frame {after}, and the client's acknowledgements never covered a byte "
        f"of them: 60.0 s after its ClientHello the client gave up waiting and closed the connection (frame "
        f"{client_fin}) (a path MTU black hole, a box that drops the server's TLS)")


# ------------------------------------------------------------------------------- SMTPS (port 465)

def test_an_smtps_clienthello_dropped_until_the_servers_timeout_is_hello_lost() -> None:
    """Port 465: the client's first bytes, its ClientHello, are a hole; the server waits 300 s and closes without a
    word (an SMTPS server sends nothing first), its FIN and its duplicate ACK of the client's FIN acknowledging
    nothing: the path's fault, not the server's."""
    name = "pathhole-smtps-hello.pcap"
    conv, after, hole, _top = _hole(name, TO_SERVER)
    assert hole == 166
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "hello-lost")
    assert _frames(conv) == [("request-not-received", "middlebox", after), ("tcp-gap", "capture", after)]
    assert conv["detail"] == (
        f"the ClientHello never reached the server: the client's first 166 bytes on the SMTPS port 465, where its "
        f"ClientHello begins (TLS from the first byte: the server sends nothing before it), are missing from the "
        f"capture before frame {after}, and the server's acknowledgements never covered a byte of them: 300.0 s "
        f"after the connection opened the server gave up waiting and closed the connection (frame "
        f"{_server_fin(name)}) (a path MTU black hole, a box that drops the client's TLS)")
    assert conv["starttls"] == {"offered": "unknown", "requested": False, "reply_code": None, "frame": None}
    assert conv["tls"]["client_hello_frame"] is None
    info = REASON_CASES[("tls-handshake-failed", "hello-lost")]
    assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}


def test_an_smtps_clienthello_dropped_over_ipv6_when_the_client_gives_up_first() -> None:
    """The client closes 60 s after its ClientHello (its FIN shows the hole); the server's duplicate ACK, and its
    own close 240 s later, still acknowledge nothing: the server's segment a second or more after the client's
    FIN proves it."""
    name = "pathhole-smtps-hello-v6.pcap"
    conv, after, hole, _top = _hole(name, TO_SERVER)
    assert hole == 166 and conv["client"]["ip"].count(":") > 1
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "hello-lost")
    assert _frames(conv) == [("request-not-received", "middlebox", after), ("tcp-gap", "capture", after)]
    assert ("the server's acknowledgements up to its last segment (240.0 s after frame "
            f"{after}) never covered a byte of them") in conv["detail"]


def test_an_smtps_answer_dropped_by_a_path_mtu_black_hole_is_answer_lost() -> None:
    name = "pathhole-smtps-answer-lost.pcap"
    conv, after, hole, _top = _hole(name, FROM_SERVER)
    assert hole == 853
    ((length,),) = tshark_fields(CAPTURES / name, f"frame.number == {after}", "tcp.len")
    assert length == "60"
    (ch,) = frames_matching(CAPTURES / name, "tls.handshake.type == 1")
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "answer-lost")
    assert _frames(conv) == [("answer-not-received", "middlebox", after), ("tcp-gap", "capture", after)]
    assert conv["tls"]["client_hello_frame"] == ch and conv["tls"]["server_hello_frame"] is None
    assert "60.0 s after its ClientHello the client closed the connection" in conv["detail"]


def test_an_smtps_clienthello_the_server_acknowledged_stays_incomplete() -> None:
    name = "pathhole-smtps-hello-acked.pcap"
    (conv,) = analyze_path(str(CAPTURES / name))
    ((after,),) = tshark_fields(CAPTURES / name, f"tcp.analysis.lost_segment && ({TO_SERVER})", "frame.number")
    assert frames_matching(CAPTURES / name, f"tcp.analysis.ack_lost_segment && ({FROM_SERVER})")
    (server_fin,) = frames_matching(CAPTURES / name, f"tcp.flags.fin == 1 && ({FROM_SERVER})")
    assert server_fin < int(after)      # (the hole at the server's FIN, as above)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None)
    assert _frames(conv) == [("tcp-gap", "capture", server_fin)]


def test_an_smtps_port_is_what_makes_a_silent_server_wait_for_the_client(tmp_path: Path) -> None:
    """The same bytes and timing on port 25, where a server greets first: its 300 s of silence is no SMTPS server
    waiting for a ClientHello, and the lost first bytes of the client may be anything: no hello-lost, only the
    client's missing bytes, at the frame where tshark sees them missing."""
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap, wrpcap

    pkts = list(rdpcap(str(CAPTURES / "pathhole-smtps-hello.pcap")))
    for p in pkts:
        tcp = p[TCP]
        if tcp.dport == 465:
            tcp.dport = 25
        if tcp.sport == 465:
            tcp.sport = 25
        del tcp.chksum
    moved = tmp_path / "port25.pcap"
    wrpcap(str(moved), pkts)
    (conv,) = analyze_path(str(moved))
    assert conv["server"]["port"] == 25
    ((after,),) = tshark_fields(moved, f"tcp.analysis.lost_segment && ({TO_SERVER})", "frame.number")
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None)
    assert _frames(conv) == [("tcp-gap", "capture", int(after))]


def test_a_client_that_sends_nothing_after_the_220_until_the_servers_timeout_is_the_clients() -> None:
    """The control of the ClientHello hole: nothing is lost (tshark finds no lost segment), the client sends
    nothing after the 220 and the server's TLS handshake timeout closes 300 s later: the client never started
    TLS; the server, which waited, is not blamed for its close."""
    name = "pathhole-hello-client-silent.pcap"
    path = CAPTURES / name
    (conv,) = analyze_path(str(path))
    assert frames_matching(path, "tcp.analysis.lost_segment") == []
    (client_fin,) = frames_matching(path, f"tcp.flags.fin == 1 && ({TO_SERVER})")
    server_fin = _server_fin(name)
    assert _verdict(conv) == ("aborted", "client", "tls-not-started", None)
    assert conv["evidence_frame"] == server_fin and conv["findings"] == []
    assert conv["detail"] == (
        f"the client sent nothing for 300.0 s after the 220: the server gave up waiting for its ClientHello and "
        f"closed the connection (frame {server_fin}), and the client closed without having sent a byte (frame "
        f"{client_fin})")


def test_the_servers_fin_alone_after_a_long_wait_blames_nobody(tmp_path: Path) -> None:
    """pathhole-hello-postfix-timeout.pcap cut at the server's FIN: the client's FIN, which shows the hole, is
    not in it; the server waited 300 s after its 220: incomplete, not the server's."""
    from scapy.utils import rdpcap, wrpcap

    name = "pathhole-hello-postfix-timeout.pcap"
    fin = _server_fin(name)
    cut = tmp_path / "cut.pcap"
    wrpcap(str(cut), list(rdpcap(str(CAPTURES / name)))[:fin])
    (conv,) = analyze_path(str(cut))
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None)
    assert conv["evidence_frame"] == fin
    assert conv["detail"] == (
        "the server closed the connection 300.0 s after its 220 with nothing of the client since (its TLS "
        "handshake timeout): whether the client never sent its ClientHello or the path dropped it cannot be "
        "told, the capture ends before the client's next segment")


@pytest.mark.parametrize("wait_s,lost", [(3.0, False), (9.5, False), (10.5, True), (60.0, True)])
def test_the_servers_giving_up_proves_the_drop_only_after_a_wait_no_working_client_needs(
        tmp_path: Path, wait_s: float, lost: bool) -> None:
    """pathhole-starttls-postfix421.pcap with the 421, and all after it, moved to ``wait_s`` after the EHLO reply:
    sooner than verdict.SLOWEST_PEER_NS (10 s) a client merely slow to send STARTTLS, its bytes lost by the
    capture, may have crossed the 421 (incomplete); later it would have been broken itself (command-lost)."""
    from scapy.utils import rdpcap, wrpcap

    from pcapsmtp.analysis.verdict import SLOWEST_PEER_NS
    assert SLOWEST_PEER_NS == 10_000_000_000
    name = "pathhole-starttls-postfix421.pcap"
    ((ehlo_reply,),) = tshark_fields(CAPTURES / name, 'smtp.rsp.parameter contains "STARTTLS"', "frame.number")
    ((reply,),) = tshark_fields(CAPTURES / name, "smtp.response.code == 421", "frame.number")
    pkts = list(rdpcap(str(CAPTURES / name)))
    shift = pkts[int(reply) - 1].time - pkts[int(ehlo_reply) - 1].time - wait_s
    for p in pkts[int(reply) - 1:]:
        p.time -= shift
    moved = tmp_path / "moved.pcap"
    wrpcap(str(moved), pkts)
    (conv,) = analyze_path(str(moved))
    if lost:
        assert _verdict(conv) == ("aborted", "middlebox", "starttls-refused", "command-lost")
        assert f"{wait_s:.1f} s after the EHLO reply the server gave up waiting" in conv["detail"]
    else:
        assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None)


def test_an_smtps_clienthello_whose_full_size_segment_was_dropped_is_hello_lost() -> None:
    """A path MTU black hole at an SMTPS server: the ClientHello's full-size first segment never arrives, its
    60-byte tail does (the server's ACKs stay at the hole); the client closes 60 s later, the server 240 s after."""
    name = "pathhole-smtps-hello-mtu.pcap"
    conv, after, hole, _top = _hole(name, TO_SERVER)
    assert hole == 106
    ((length,),) = tshark_fields(CAPTURES / name, f"frame.number == {after}", "tcp.len")
    assert length == "60"
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "hello-lost")
    assert _frames(conv) == [("request-not-received", "middlebox", after), ("tcp-gap", "capture", after)]
    assert conv["detail"].startswith(
        "the ClientHello never reached the server: the client's first 106 bytes on the SMTPS port 465, where its "
        f"ClientHello begins (TLS from the first byte: the server sends nothing before it), are missing from the "
        f"capture before frame {after}, and the server's acknowledgements up to its last segment (300.0 s after "
        f"frame {after}) never covered a byte of them")
