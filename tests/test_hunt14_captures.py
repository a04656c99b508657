"""Resets the stacks ignore (captures/scenarios_hunt14.py): a reset whose sequence number lies far
outside the receiver's window is dropped (RFC 9293 3.10.7.4, RFC 5961 3.2) and the conversation
goes on after it. pcapsmtp ended every conversation at its first reset: the mail sent in the clear
after such a reset was not read (``aborted``, ``no-mail-transaction``), a TLS session read as
aborted at it.

Each capture is checked for its verdict, evidence frame, findings and detail; the frames are
cross-checked with tshark (its sequence analysis off: with it on, tshark takes the reset's
sequence number for the side's next byte and dissects the server's segments after it as
retransmissions, which the tests also check, so the two readings are not confused).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file

sys.path.insert(0, str(CAPTURES))
from generate import render  # noqa: E402
from scenarios_hunt14 import in_window_capture  # noqa: E402

FAR = 1 << 30


def _tshark(path: Path, flt: str, *fields: str) -> list[tuple[str, ...]]:
    """tshark's fields for the frames ``flt`` keeps, its TCP sequence analysis off."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    args = ["tshark", "-n", "-r", str(path), "-o", "tcp.analyze_sequence_numbers:FALSE", "-Y", flt, "-T", "fields"]
    for f in fields:
        args += ["-e", f]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [tuple(line.split("\t")) for line in proc.stdout.splitlines()]


def _frames(path: Path, flt: str) -> list[int]:
    return [int(n) for (n,) in _tshark(path, flt, "frame.number")]


def _reset(path: Path) -> tuple[int, int, str]:
    """tshark: the one reset's frame, how far its sequence number lies from its side's next byte
    (the side's next segment's sequence number; signed) and its source port."""
    ((frame, seq, sport),) = _tshark(path, "tcp.flags.reset == 1", "frame.number", "tcp.seq_raw", "tcp.srcport")
    after = _tshark(path, f"frame.number > {frame} && tcp.srcport == {sport}", "tcp.seq_raw")
    nxt = int(after[0][0])
    off = (int(seq) - nxt) % (1 << 32)
    return int(frame), off - (1 << 32) if off >= 1 << 31 else off, sport


def _ignored(name: str) -> int:
    res = analyze_file(str(CAPTURES / name), AnalysisConfig())
    assert res.error is None
    return res.summary["reassembly"]["ignored_resets"]


@pytest.mark.parametrize("name, shift, sport", [
    ("hunt14-reset-far-past-then-tls.pcap", FAR, "25"),
    ("hunt14-reset-far-behind-then-tls.pcap", -FAR, None),
])
def test_a_tls_session_after_a_reset_far_outside_the_window_is_established(
        name: str, shift: int, sport: str | None) -> None:
    """A reset 2^30 past the server's next byte after the EHLO reply (2^30 behind the client's
    after the 220): no stack takes it, STARTTLS and the TLS session went on. It read as aborted
    at the reset, without a side (no-mail-transaction) or the client's (tls-not-started)."""
    path = CAPTURES / name
    conv = _conv(name)
    rst, off, by = _reset(path)
    assert off == shift
    assert by == (sport or str(conv["client"]["port"]))
    (starttls,) = _frames(path, 'tcp.dstport == 25 && tcp.payload contains "STARTTLS"')
    (hello,) = _frames(path, "tls.handshake.type == 1")
    (finished,) = _frames(path, "tls.handshake.type == 16")
    assert rst < hello < finished
    assert _verdict(conv) == ("tls", "none", "tls-established", None, finished)
    assert _findings(conv) == []
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": 220, "frame": starttls}
    assert conv["tls"]["established"] is True
    assert conv["tls"]["client_hello_frame"] == hello
    assert conv["detail"] == "STARTTLS answered 220 and the TLS handshake completed (TLS 1.2)"
    assert _ignored(name) == 1


@pytest.mark.parametrize("name", [
    "hunt14-reset-far-past-then-plaintext.pcap",
    "hunt14-reset-far-past-foreign-ttl-then-plaintext.pcap",
])
def test_mail_in_the_clear_after_a_reset_far_outside_the_window_is_plaintext(name: str) -> None:
    """The same reset (with the server's TTL, or TTL 250: a box's), then the client skipped the
    valid offer and sent the mail in the clear. It read as aborted before any mail (the mail
    hidden; with TTL 250 a box's reset-forged): the client's, client-did-not-request."""
    path = CAPTURES / name
    conv = _conv(name)
    rst, off, by = _reset(path)
    assert (off, by) == (FAR, "25")
    (mail,) = _frames(path, 'smtp.req.command == "MAIL"')
    assert _frames(path, 'smtp.response.code == 250 && smtp.rsp.parameter contains "queued"')
    assert rst < mail
    assert _verdict(conv) == ("plaintext", "client", "client-did-not-request", None, mail)
    assert _findings(conv) == []
    assert conv["mail"] is True
    assert conv["starttls"]["requested"] is False
    assert conv["detail"] == "STARTTLS was validly offered; the client went on in plaintext"
    assert _ignored(name) == 1


def test_tshark_reads_the_segments_after_the_far_reset_as_retransmissions() -> None:
    """tshark with its sequence analysis on takes the far reset's sequence number for the
    server's next byte: every data segment of the server after it is flagged a retransmission
    (so it does not dissect the 220 as SMTP). pcapsmtp reads them as the server's bytes."""
    path = CAPTURES / "hunt14-reset-far-past-then-tls.pcap"
    rst, _, _ = _reset(path)
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    proc = subprocess.run(["tshark", "-n", "-r", str(path), "-Y",
                           "tcp.srcport == 25 && tcp.len > 0 && tcp.analysis.retransmission", "-T", "fields",
                           "-e", "frame.number"], capture_output=True, text=True, timeout=120)
    flagged = [int(x) for x in proc.stdout.split()]
    server_data = _frames(path, f"frame.number > {rst} && tcp.srcport == 25 && tcp.len > 0")
    assert flagged == server_data and len(flagged) >= 5


def test_a_reset_in_the_window_answered_by_a_challenge_ack_does_not_end_the_conversation(tmp_path: Path) -> None:
    """A reset 1000 bytes past the server's next byte (in the window, not at it), the client's
    challenge ACK right after it (RFC 5961 3.2: a pure ACK acknowledging only the server's real
    next byte), then the server's next bytes at that byte: the client's stack dropped the reset
    and the conversation went on to TLS. It read ``incomplete`` (a 1000-byte ``tcp-gap`` at the
    reset, ``HalfStream.reset_past``); the reset now waits, and the challenge ACK drops it
    (``ignored_resets``)."""
    cap = in_window_capture()
    path = tmp_path / cap.name
    path.write_bytes(render(cap)[0])
    res = analyze_file(str(path), AnalysisConfig())
    assert res.error is None
    (conv,) = res.conversations
    rst, off, by = _reset(path)
    assert (off, by) == (1000, "25")
    (challenge,) = _frames(path, f"frame.number == {rst + 1} && tcp.len == 0 && tcp.flags.ack == 1")
    (finished,) = _frames(path, "tls.handshake.type == 16")
    assert challenge < finished
    assert _verdict(conv) == ("tls", "none", "tls-established", None, finished)
    assert _findings(conv) == []
    assert res.summary["reassembly"]["ignored_resets"] == 1


def test_the_servers_own_reset_at_its_next_byte_still_ends_the_conversation() -> None:
    """The control: the server's reset at exactly its next byte after the EHLO reply, nothing
    after: the connection ended there (no-mail-transaction), no reset ignored."""
    name = "hunt14-reset-exact-after-ehlo-reply.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ((rst, seq),) = _tshark(path, "tcp.flags.reset == 1", "frame.number", "tcp.seq_raw")
    ((ehlo_seq, ehlo_len),) = _tshark(path, "smtp.response.code == 250", "tcp.seq_raw", "tcp.len")
    assert int(seq) == int(ehlo_seq) + int(ehlo_len)
    assert int(rst) == 10
    assert _verdict(conv) == ("aborted", "none", "no-mail-transaction", None, None)
    assert _findings(conv) == []
    assert conv["detail"] == "the conversation ended without a mail transaction"
    assert _ignored(name) == 0


def test_a_far_reset_followed_only_by_the_clients_close_ends_at_the_close() -> None:
    """The control: the far reset, then only the client's close 2 s later. The reset did not end
    the connection (the conversation ends at the client's FIN, not at the reset), the client left
    before any mail: no-mail-transaction, as without the reset."""
    name = "hunt14-reset-far-past-then-client-close.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ((rst, seq),) = _tshark(path, "tcp.flags.reset == 1", "frame.number", "tcp.seq_raw")
    ((ehlo_seq, ehlo_len),) = _tshark(path, "smtp.response.code == 250", "tcp.seq_raw", "tcp.len")
    assert (int(seq) - int(ehlo_seq) - int(ehlo_len)) % (1 << 32) == FAR
    ((fin, fin_epoch),) = _tshark(path, "tcp.flags.fin == 1", "frame.number", "frame.time_epoch")
    assert (int(rst), int(fin)) == (10, 11)
    assert _verdict(conv) == ("aborted", "none", "no-mail-transaction", None, None)
    assert _findings(conv) == []
    assert conv["ended_ns"] == pytest.approx(float(fin_epoch) * 1e9, abs=1e3)
    assert _ignored(name) == 1


@pytest.mark.parametrize("name, quit", [
    ("hunt14-pq-hello-second-segment-lost-close.pcap", False),
    ("hunt14-pq-hello-second-segment-lost-quit.pcap", True),
])
def test_a_post_quantum_client_hello_whose_second_segment_is_dropped_is_the_boxs(name: str, quit: bool) -> None:
    """A 1851-byte ClientHello (an X25519MLKEM768 key share): the server acknowledged its first
    segment, never its second, which the client resent five times before it gave up: a box that
    drops the rest of a split ClientHello (or a path that loses it). The control reads right: the
    box's, hello-lost, at the ClientHello's first segment."""
    path = CAPTURES / name
    conv = _conv(name)
    ((first, first_seq, first_len),) = _tshark(path, "tcp.srcport != 25 && tcp.len == 1460",
                                               "frame.number", "tcp.seq_raw", "tcp.len")
    acks = [int(a) for (a,) in _tshark(path, "tcp.srcport == 25", "tcp.ack_raw")]
    rest_seq = int(first_seq) + int(first_len)
    assert max(acks) == rest_seq                 # the first segment acknowledged, nothing past it
    rest = _frames(path, f"tcp.srcport != 25 && tcp.seq_raw == {rest_seq} && tcp.len == 391")
    assert len(rest) == 6                        # sent, then resent five times
    (record_len,) = {int(n) for (n,) in _tshark(path, "tls.handshake.type == 1", "tls.record.length")}
    assert record_len == 1851 - 5
    assert _frames(path, "tls.handshake.extensions_key_share_group == 0x11ec")
    (fin,) = _frames(path, "tcp.flags.fin == 1")
    assert _verdict(conv) == ("aborted", "middlebox", "tls-handshake-failed", "hello-lost", int(first))
    assert _findings(conv) == [("request-not-received", "middlebox", int(first))]
    assert conv["tls"]["client_hello_frame"] == int(first)
    assert conv["detail"].startswith("the ClientHello never reached the server: the client sent it again")
    assert conv["detail"].endswith(f"(frame {fin}) (a path MTU black hole, a box that drops the client's TLS)")
    if quit:
        (q,) = _frames(path, 'tcp.payload == "QUIT\\r\\n"')
        assert f"sent 'QUIT' in the clear (frame {q})" in conv["detail"]


def test_a_post_quantum_client_hello_in_two_segments_answered_reads_tls() -> None:
    """The control: the same 1851-byte ClientHello whole in two segments, a TLS 1.2 server's
    answer and the session: tls, the ClientHello at its first segment."""
    name = "hunt14-pq-hello-split-tls12.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ((first,),) = _tshark(path, "tcp.srcport != 25 && tcp.len == 1460", "frame.number")
    (finished,) = _frames(path, "tls.handshake.type == 16")
    assert _frames(path, "tls.handshake.type == 2")
    assert _verdict(conv) == ("tls", "none", "tls-established", None, finished)
    assert _findings(conv) == []
    assert conv["tls"]["client_hello_frame"] == int(first)
    assert conv["tls"]["established"] is True


@pytest.mark.parametrize("name, shift, sport", [
    ("hunt14-reset-behind-ack-then-plaintext.pcap", -1000, "25"),
    ("hunt14-reset-behind-ack-client-then-tls.pcap", -1000, None),
])
def test_a_reset_behind_what_the_receiver_acknowledged_does_not_end_the_conversation(
        name: str, shift: int, sport: str | None) -> None:
    """A reset near its side's next byte but behind what the other side had acknowledged of it
    (1000 bytes behind the server's after the client's ACK of the EHLO reply, or the
    client's after the 220 acknowledged STARTTLS): the receiver's RCV.NXT is at least its highest
    ACK, so the sequence number is never in its window (RFC 9293 3.10.7.4) and the stack drops
    the reset. The conversation went on. It read as a box's reset before any mail (reset-forged,
    the mail in the clear not read) or before the ClientHello."""
    path = CAPTURES / name
    conv = _conv(name)
    rst, off, by = _reset(path)
    assert off == shift
    assert by == (sport or str(conv["client"]["port"]))
    ((rst_seq,),) = _tshark(path, "tcp.flags.reset == 1", "tcp.seq_raw")
    # the receiver's last acknowledgement before the reset lies past the reset's sequence number
    acks = _tshark(path, f"frame.number < {rst} && tcp.srcport != {by} && tcp.flags.ack == 1", "tcp.ack_raw")
    assert 0 < (int(acks[-1][0]) - int(rst_seq)) % (1 << 32) <= -shift
    assert _findings(conv) == []
    assert _ignored(name) == 1
    if sport == "25":
        (mail,) = _frames(path, 'smtp.req.command == "MAIL"')
        assert rst < mail
        assert _verdict(conv) == ("plaintext", "client", "client-did-not-request", None, mail)
        assert conv["mail"] is True
        assert conv["detail"] == "STARTTLS was validly offered; the client went on in plaintext"
    else:
        (hello,) = _frames(path, "tls.handshake.type == 1")
        (finished,) = _frames(path, "tls.handshake.type == 16")
        assert rst < hello < finished
        assert _verdict(conv) == ("tls", "none", "tls-established", None, finished)
        assert conv["tls"]["client_hello_frame"] == hello
