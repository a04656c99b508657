"""The captures of captures/scenarios_jitter.py: a hole where a side's TLS begins, never
acknowledged, with that side's later records after the other side's close (where a capture files
the hole is the order of its taps, and a hole nobody acknowledged is declared only when the flow
closes). The verdict is the same however the frames are filed, and it is ``incomplete``: not the
side that closed, "before the ServerHello". tshark finds the frames: the segment after the hole
(its ``lost_segment``), the ClientHello, the closes."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching, tshark_fields

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
#: (by its bytes: tshark decodes TLS only after it saw the 220, which the two-tap capture files later)
CLIENT_HELLO = "tcp.dstport == 25 && tcp.payload[0:3] == 16:03:01 && tcp.payload[5] == 1"
READY = 'tcp.srcport == 25 && tcp.payload contains "Ready to start TLS"'
CLIENT_FIN = "tcp.flags.fin == 1 && tcp.dstport == 25"
SERVER_FIN = "tcp.flags.fin == 1 && tcp.srcport == 25"


def _hole(name: str, sender: str) -> tuple[dict[str, Any], int, int]:
    """The conversation of ``name``, the frame after its hole (tshark's lost_segment) in the
    direction from ``sender`` and the hole's length: that frame's sequence number minus the
    receiver's highest acknowledgement, which never reaches past the hole's start."""
    path = CAPTURES / name
    (conv,) = analyze_path(str(path))
    ((after, seq),) = tshark_fields(path, f"tcp.analysis.lost_segment && {sender}", "frame.number", "tcp.seq_raw")
    receiver = "tcp.dstport == 25" if sender == "tcp.srcport == 25" else "tcp.srcport == 25"
    top = max(int(a) for (a,) in tshark_fields(path, f"{receiver} && tcp.flags.ack == 1", "tcp.ack_raw"))
    return conv, int(after), (int(seq) - top) % (1 << 32)


@pytest.mark.parametrize("name,fin_first", [("jitter-answer-hole-one-tap.pcap", False),
                                            ("jitter-answer-hole-two-taps.pcap", True)])
def test_a_server_answer_with_a_hole_is_incomplete_however_the_taps_file_it(name: str, fin_first: bool) -> None:
    """The slow server's answer, its full-size segment never acknowledged and not in the capture, its small
    last segment (the ServerHelloDone) captured; the client, which waited 3 s since its ClientHello, closes 2 ms
    after it (one tap), or, with the client's tap 5 ms behind, its close is filed before the answer. The old
    rule saw the server's TLS (the ServerHelloDone read after the hole) and no ServerHello, and blamed the
    client in both."""
    conv, after, hole = _hole(name, "tcp.srcport == 25")
    assert hole == 853
    (fin,) = frames_matching(CAPTURES / name, CLIENT_FIN)
    (ch,) = frames_matching(CAPTURES / name, CLIENT_HELLO)
    assert (fin < after) is fin_first
    # after its 220, the server's only bytes in the capture are those after the hole
    (ready,) = frames_matching(CAPTURES / name, READY)
    assert frames_matching(CAPTURES / name, f"tcp.srcport == 25 && tcp.len > 0 && frame.number > {ready}") == [after]
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["evidence_frame"] == after
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("tcp-gap", "capture", after)]
    assert conv["detail"] == (
        f"bytes of the server direction were lost (frame {after}) before any of its TLS in the capture: what "
        "its TLS began with, and whether the client had it when it closed the connection, cannot be told")
    assert (conv["tls"]["client_hello_frame"], conv["tls"]["server_hello_frame"]) == (ch, None)
    assert conv["starttls"]["reply_code"] == 220


def test_both_filings_of_the_answer_hole_agree() -> None:
    """The two captures are one conversation filed in two orders: every fact of the verdict but the frame
    numbers is the same."""
    def facts(name: str) -> tuple[Any, ...]:
        (c,) = analyze_path(str(CAPTURES / name))
        return c["outcome"], c["caused_by"], c["reason"], c["starttls"]["offered"], c["ehlo_reply"]["lines"]
    assert facts("jitter-answer-hole-one-tap.pcap") == facts("jitter-answer-hole-two-taps.pcap")


def test_a_client_that_did_not_wait_is_still_the_one_that_ended_it() -> None:
    """The control: the same hole, the server answering 90 ms after the ClientHello and the client closing about
    0.1 s after it, never having had the missing bytes (its ACKs stay before them): it did not wait for an
    answer; the client ended the handshake, as without the hole."""
    name = "jitter-answer-hole-quick-close.pcap"
    conv, after, hole = _hole(name, "tcp.srcport == 25")
    assert hole == 853
    (fin,) = frames_matching(CAPTURES / name, CLIENT_FIN)
    (ch,) = frames_matching(CAPTURES / name, CLIENT_HELLO)
    ((t_ch,), (t_fin,)) = tshark_fields(CAPTURES / name, f"frame.number in {{{ch}, {fin}}}", "frame.time_epoch")
    assert round(float(t_fin) - float(t_ch), 1) == 0.1
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("aborted", "client", "tls-handshake-failed")
    assert conv["evidence_frame"] == fin
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("tcp-gap", "capture", after)]
    assert conv["detail"] == "the client closed the connection before the ServerHello, before the handshake completed"


@pytest.mark.parametrize("name,waited", [("jitter-hello-hole-server-waited.pcap", 2.2),
                                         ("jitter-hello-hole-server-quick.pcap", 0.2)])
def test_a_clienthello_with_a_hole_and_the_server_closing(name: str, waited: float) -> None:
    """The other direction: the ClientHello's full-size segment not in the capture and never acknowledged, its
    small last segment captured; the server closes 0.2 s later (too soon for its close to show the ClientHello
    never arrived). Having waited 2.2 s since its 220 for it, the server may have closed on a ClientHello dropped
    on the path or slow: incomplete (the old rule saw the client's TLS, a record read after the hole, and blamed
    the server for closing before the ServerHello). Closing 0.2 s after its 220, it did not wait: the server."""
    conv, after, hole = _hole(name, "tcp.dstport == 25")
    assert hole == 106
    (sfin,) = frames_matching(CAPTURES / name, SERVER_FIN)
    (ready,) = frames_matching(CAPTURES / name, READY)
    assert after < sfin
    rows = tshark_fields(CAPTURES / name, f"frame.number in {{{ready}, {after}, {sfin}}}", "frame.time_epoch")
    t_ready, t_after, t_fin = (float(t) for (t,) in rows)
    assert (round(t_fin - t_after, 1), round(t_fin - t_ready, 1)) == (0.2, waited)
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("tcp-gap", "capture", after)]
    assert conv["tls"]["client_hello_frame"] is None
    if waited > 1:
        assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
        assert conv["evidence_frame"] == after
        assert conv["detail"] == (
            f"bytes of the client direction were lost (frame {after}) before any of its TLS in the capture: what "
            "its TLS began with, and whether the server had it when it closed the connection, cannot be told")
    else:
        assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("aborted", "server", "tls-handshake-failed")
        assert conv["evidence_frame"] == sfin
        assert conv["detail"] == ("the server closed the connection before the ServerHello, before the handshake "
                                  "completed")
