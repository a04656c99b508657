"""The twenty-third session's mend of the plaintext-in-the-handshake rules (mendA): one judge for
both sides' ends (``_gave_up_mid_handshake``), the server's bytes after the QUIT named in both, and
bytes with no reply code not worded as an answer. Captures from ``captures/scenarios_mend23a.py``;
the skewed ones are shipped captures rewritten with ``T.skew_client``."""
from __future__ import annotations

from pathlib import Path

import pytest
import transforms as T
from tsharkfilter import frames_matching, tshark_fields

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from pcapsmtp.engine.analyzer import analyze_path


def test_the_servers_221_is_named_when_the_client_closes_first() -> None:
    """The whole answer, the QUIT 1.2 s later, the server's 221 in the clear, the client's FIN first:
    client-silent as before, and the 221 is in the detail as where the server closes first."""
    path = CAPTURES / "mend23a-tls12-whole-quit-221-client-fin.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 18)
    assert _findings(conv) == [("client-silent", "client", 16)]
    assert conv["detail"] == (
        "the client had the server's whole answer to its ClientHello (frame 16) and sent nothing for 1.2 s, no "
        "side of the handshake and no alert: then it sent 'QUIT' in the clear (frame 18), giving up on TLS; the "
        "server then answered 'QUIT' in the clear with '221 2.0.0 Bye' (frame 20), and the client closed the "
        "connection (frame 22)")
    # tshark: the ServerHelloDone in 16, the QUIT in 18, the 221 in 20, the client's FIN first (22)
    assert frames_matching(path, "tls.handshake.type == 14") == [16]
    assert frames_matching(path, "smtp.req.command == \"QUIT\"") == [18]
    assert frames_matching(path, "smtp.response.code == 221") == [20]
    assert frames_matching(path, "tcp.flags.fin == 1") == [22, 24]
    assert [int(p) for (p,) in tshark_fields(path, "frame.number == 22", "tcp.srcport")] == [49601]


def test_binary_server_bytes_after_the_quit_are_no_answer() -> None:
    """The server's bytes after the QUIT start with no reply code: they are said to be no SMTP reply,
    not an answer to the QUIT."""
    path = CAPTURES / "mend23a-tls12-whole-quit-binary-server-fin.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed", "client-silent", 18)
    assert _findings(conv) == [("client-silent", "client", 16)]
    assert conv["detail"] == (
        "the client had the server's whole answer to its ClientHello (frame 16) and sent nothing for 1.2 s, no "
        "side of the handshake and no alert: then it sent 'QUIT' in the clear (frame 18), giving up on TLS; the "
        "server then sent bytes that are no SMTP reply ('\\x00\\x01\\x02\\x03binary') (frame 20), and closed the "
        "connection (frame 22)")
    assert "answered" not in conv["detail"]
    # tshark: 12 bytes of the server's in 20, its FIN first (22)
    assert [int(n) for (n,) in tshark_fields(path, "frame.number == 20", "tcp.len")] == [12]
    assert frames_matching(path, "tcp.flags.fin == 1") == [22, 24]
    assert [int(p) for (p,) in tshark_fields(path, "frame.number == 22", "tcp.srcport")] == [25]


def _skewed(tmp_path: Path, name: str, ns: int) -> dict:
    out = T.transform(CAPTURES / name, tmp_path / f"skew{ns}-{name}", T.skew_client(ns))
    (conv,) = analyze_path(str(out))
    return conv


@pytest.mark.parametrize("ns", [25_000_000, 300_000_000])
def test_a_skewed_no_answer_quit_keeps_the_servers_silence_when_the_server_closes_first(
        tmp_path: Path, ns: int) -> None:
    """Review item 3: the client's tap ahead stamps the ServerHello that came after the QUIT (it
    acknowledged it) before it; the order of the bytes decides where the server closes first too, as
    it did only where the client closed first: server-silent at the ClientHello, not the generic
    'closed after the ServerHello'."""
    conv = _skewed(tmp_path, "hunt13-no-answer-quit-1-2-s-then-answer-server-fin.pcap", ns)
    assert _verdict(conv)[:4] == ("aborted", "server", "tls-handshake-failed", "server-silent")
    assert _findings(conv) == [("no-answer", "server", 15)]
    assert conv["detail"].startswith("the server sent nothing for 1.2 s after the ClientHello: the client gave up "
                                     "waiting and sent 'QUIT' in the clear")


@pytest.mark.parametrize("name", ["hunt13-tls13-whole-quit-1-2-s-client-rst.pcap",
                                  "hunt13-tls12-whole-quit-1-2-s-client-fin.pcap"])
def test_a_skewed_whole_answer_detail_reads_as_one_sentence(tmp_path: Path, name: str) -> None:
    """Review item 5: with the client's tap 300 ms behind, the wait since the client had the answer
    (its acknowledgement) is said inside the sentence, not cutting it."""
    conv = _skewed(tmp_path, name, -300_000_000)
    assert _verdict(conv)[:4] == ("aborted", "client", "tls-handshake-failed", "client-silent")
    assert "; 1200 ms after the client had it" not in conv["detail"]
    assert ("and sent nothing for 1.2 s after it had it, from its TCP's acknowledgements, no "
            in conv["detail"])
