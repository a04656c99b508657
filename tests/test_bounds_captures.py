"""Conversations past the bound on events kept per conversation (captures/scenarios_bounds.py,
pcapsmtp/analysis/transcript.py): what a verdict can still turn on is kept, and a verdict that may
rest on an event not kept is incomplete at that event's frame.

Each capture is checked for its verdict, its evidence frame and its findings; the frames are
cross-checked with tshark's reading of the same file (its SMTP dissector numbers the same commands
and replies, and with the port decoded as TLS after the 220 it finds the same handshake).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tsharkfilter import frames_matching

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict


def _limit(conv: dict[str, Any]) -> str:
    (f,) = [f for f in conv["findings"] if f["code"] == "limit-reached"]
    return str(f["message"])


def _tshark() -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")


def _server_250s(path: Path) -> list[int]:
    return frames_matching(path, "tcp.srcport == 25 && smtp.response.code == 250")


def test_noops_then_tls_is_tls() -> None:
    """1100 NOOPs, then STARTTLS and TLS 1.2: the handshake past the bound is kept (it read
    aborted/client/tls-handshake-failed at the client's close_notify, the only TLS event kept).
    (tshark names a command by its first four letters: STARTTLS is "STAR".)"""
    path = CAPTURES / "limit-noops-then-tls.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("tls", "none", "tls-established", None, 2218)
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": 220, "frame": 2210}
    assert conv["tls"]["client_hello_frame"] == 2214 and conv["tls"]["server_hello_frame"] == 2216
    assert conv["tls"]["established"] is True
    # (the client's close_notify at the end, encrypted: as in any TLS conversation's record)
    assert conv["tls"]["alert"]["encrypted"] is True and conv["tls"]["alert"]["frame"] == 2246
    assert _findings(conv) == [("limit-reached", "capture", 2007)]
    # (the NOOPs from the 1000th and the replies from the 999th's: 101 and 102)
    assert _limit(conv).startswith(f"{2 * 1100 - 2 * 998 - 1} later events of this conversation were not "
                                   "kept (per-conversation bound: 2000 events")
    _tshark()
    assert len(frames_matching(path, 'smtp.req.command == "NOOP"')) == 1100
    # the first event not kept: the reply to the 999th NOOP (the banner, EHLO and its reply, then
    # 998 NOOPs and their replies and the 999th NOOP make the 2000 kept)
    assert _server_250s(path)[1 + 998] == 2007
    assert frames_matching(path, 'smtp.req.command == "STAR"') == [2210]
    assert frames_matching(path, "tls.handshake.type == 1") == [2214]
    assert frames_matching(path, "tls.handshake.type == 2") == [2216]


def test_rsets_then_an_unanswered_clienthello_is_the_servers() -> None:
    """1100 RSETs, STARTTLS, 220, the ClientHello and the server's silence until the client
    closes 5 s later: the server's (it read the client's tls-not-started: the ClientHello was not
    kept)."""
    path = CAPTURES / "limit-rsets-then-hello-unanswered.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed", "server-silent", 2214)
    assert conv["tls"]["client_hello_frame"] == 2214 and conv["tls"]["server_hello_frame"] is None
    assert _findings(conv) == [("limit-reached", "capture", 2007), ("no-answer", "server", 2214)]
    _tshark()
    assert len(frames_matching(path, 'smtp.req.command == "RSET"')) == 1100
    assert _server_250s(path)[1 + 998] == 2007
    assert frames_matching(path, "tls.handshake.type == 1") == [2214]
    assert frames_matching(path, "tcp.flags.fin == 1") == [2216, 2218]
    assert frames_matching(path, "tcp.flags.fin == 1 && tcp.srcport == 48002") == [2216]


def test_pipelined_noops_far_past_twice_the_bound_then_tls_is_tls() -> None:
    """5000 pipelined NOOP and RSET (groups of 100): none is an event a verdict turns on, so
    none counts against twice the bound, and TLS after them is read."""
    path = CAPTURES / "limit-pipelined-noops-then-tls.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("tls", "none", "tls-established", None, 118)
    assert _findings(conv) == [("limit-reached", "capture", 29)]
    # 5000 commands and 5000 replies, less the 998 of each kept (and the 999th command)
    assert _limit(conv).startswith(f"{2 * 5000 - 2 * 998 - 1} later events")
    _tshark()
    assert frames_matching(path, 'smtp.req.command == "STAR"') == [110]
    assert frames_matching(path, "tls.handshake.type == 1") == [114]
    # the group of replies the bound is reached in: the tenth
    assert frames_matching(path, "tcp.srcport == 25 && tcp.len == 1400")[9] == 29


def test_pipelined_rcpts_are_delivered() -> None:
    """MAIL, 1500 RCPTs and DATA pipelined after a skipped offer: the verdict is as it was, and
    the message is delivered (the answer to its end was not kept before)."""
    path = CAPTURES / "limit-pipelined-rcpts-delivered.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("plaintext", "client", "client-did-not-request", None, 10)
    assert conv["mail"] is True and conv["delivered"] is True
    assert _findings(conv) == [("limit-reached", "capture", 39)]
    _tshark()
    # (tshark's SMTP dissector does not put together a command cut across two segments: the
    # groups of RCPTs are not counted here)
    assert frames_matching(path, 'smtp.req.command == "MAIL"') == [10]
    assert frames_matching(path, 'smtp.req.command == "DATA"') == [55]
    assert frames_matching(path, "smtp.response.code == 354") == [56]
    assert frames_matching(path, 'smtp.rsp.parameter contains "queued"') == [58]
    assert frames_matching(path, "tcp.srcport == 25 && tcp.len == 1400")[9] == 39


def test_mail_refused_past_twice_the_bound_is_incomplete() -> None:
    """2100 MAILs refused 530, then STARTTLS and TLS: past twice the bound the MAILs and their
    refusals are dropped, and what the verdict would turn on with them (the STARTTLS among them)
    is not known: incomplete at the first dropped (it read the client's plaintext: a MAIL whose
    refusal was not kept counted as mail in the clear)."""
    path = CAPTURES / "limit-mail-530-then-tls.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("incomplete", "unknown", "incomplete", None, 4007)
    assert _findings(conv) == [("limit-reached", "capture", 4007)]
    assert "from frame 4007 on, the server's reply 530 to MAIL and more the verdict may turn on" in _limit(conv)
    assert conv["detail"].endswith("so no side is blamed; as kept it would read as client-did-not-request "
                                   "(client)")
    assert "tlsrpt_result" not in conv and "case" not in conv
    assert conv["evidence_filter"] == "frame.number in {4007}"
    _tshark()
    refusals = frames_matching(path, "smtp.response.code == 530")
    assert len(refusals) == 2100 and refusals[1998] == 4007
    assert frames_matching(path, 'smtp.req.command == "STAR"') == [4210]


def test_many_messages_in_clear_past_twice_the_bound_stand() -> None:
    """600 messages in the clear: past twice the bound, but the server had accepted a MAIL in the
    clear before the first event a verdict may turn on was dropped: the verdict was settled."""
    path = CAPTURES / "limit-many-messages-in-clear.pcap"
    conv = _conv(path.name)
    assert _verdict(conv) == ("plaintext", "client", "client-did-not-request", None, 10)
    assert conv["delivered"] is True
    assert _findings(conv) == [("limit-reached", "capture", 1011)]
    assert "from frame" not in _limit(conv)
    _tshark()
    assert len(frames_matching(path, 'smtp.req.command == "MAIL"')) == 600
    # the 251st message's replies to MAIL, RCPT and DATA (the reply to its RCPT the first dropped)
    assert frames_matching(path, "smtp.response.code == 354")[250] == 1011
