"""An EHLO reply whose last line has no SP after its code (``250``, ``250X``), read by what the
client did next (captures/scenarios_lastline26.py): a client that waited on a second or more past
the line (QUIT, its close or reset) never took it for the reply's end, so the server's line caused
it (``ehlo-rejected``, case ``no-answer``, the evidence frame the reply); a client that acted sooner,
or sent STARTTLS, took it for the end and the reading stays the offer's.

Frames and timings are cross-checked with tshark.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from capturecheck import CAPTURES
from capturecheck import findings_of as _findings
from capturecheck import one_conv as _conv
from capturecheck import verdict_of as _verdict
from tsharkfilter import tshark_fields as _tshark


def _frames(path: Path, flt: str) -> list[int]:
    return [int(n) for (n, *_rest) in _tshark(path, flt, "frame.number")]


def _time(path: Path, frame: int) -> float:
    ((t,),) = _tshark(path, f"frame.number == {frame}", "frame.time_epoch")
    return float(t)


def _ehlo_reply_frame(path: Path) -> int:
    (ehlo,) = _frames(path, 'smtp.req.command == "EHLO"')
    return min(f for f in _frames(path, "smtp.response.code == 250") if f > ehlo)


def _client_step(path: Path, after: int) -> int:
    """The client's first segment after ``after`` with a payload, a FIN or a RST."""
    return min(f for f in _frames(path, "tcp.dstport == 25 && (tcp.len > 0 || tcp.flags.fin == 1 "
                                        "|| tcp.flags.reset == 1)") if f > after)


@pytest.mark.parametrize("name, last, act, wait", [
    ("lastline26-ehlo-last-line-code-alone-quit.pcap", b"250\r\n", "sent QUIT", 15.0),
    ("lastline26-ehlo-last-line-code-and-byte-close.pcap", b"250X\r\n", "closed the connection", 10.0),
    ("lastline26-ehlo-last-line-code-alone-rst.pcap", b"250\r\n", "reset the connection", 5.0),
])
def test_a_client_that_waited_on_past_a_bare_last_line_is_the_servers(
        name: str, last: bytes, act: str, wait: float) -> None:
    path = CAPTURES / name
    conv = _conv(name)
    reply = _ehlo_reply_frame(path)
    step = _client_step(path, reply)
    assert abs(_time(path, step) - _time(path, reply) - wait) < 0.01
    # nothing of the server between the reply and the client's step
    assert not [f for f in _frames(path, "tcp.srcport == 25 && tcp.len > 0") if reply < f < step]
    assert _verdict(conv) == ("aborted", "server", "ehlo-rejected", "no-answer", reply)
    assert _findings(conv) == [("ehlo-bad-keyword", "server", reply)]
    assert conv["starttls"]["offered"] == "valid" and conv["starttls"]["requested"] is False
    assert conv["ehlo_reply"]["frames"] == [reply]
    escaped = repr(last.decode())[1:-1]
    assert escaped in conv["findings"][0]["message"]
    assert f"ended in a line with no space after its code ('{escaped}')" in conv["detail"]
    assert f"{wait:.1f} s after it the client gave up waiting and {act} (frame {step})" in conv["detail"]
    # the prediction: swaks downgrades, Go and msmtp fail (they wait on, as this client did)
    assert "swaks" in conv["clients"]["downgrade"]
    assert {"go-net-smtp", "msmtp"} <= set(conv["clients"]["error"])


def test_quit_at_once_after_a_bare_last_line_stays_no_mail_transaction() -> None:
    name = "lastline26-ehlo-last-line-code-alone-quit-at-once.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    reply = _ehlo_reply_frame(path)
    (quit_,) = _frames(path, 'smtp.req.command == "QUIT"')
    assert _time(path, quit_) - _time(path, reply) < 1.0
    assert _verdict(conv) == ("aborted", "none", "no-mail-transaction", None, None)
    assert _findings(conv) == [("ehlo-bad-keyword", "server", reply)]


def test_helo_at_once_after_a_bare_last_line_stays_the_clients() -> None:
    name = "lastline26-ehlo-last-line-code-alone-helo-at-once.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    reply = _ehlo_reply_frame(path)
    (helo,) = _frames(path, 'smtp.req.command == "HELO"')
    (mail,) = _frames(path, 'smtp.req.command == "MAIL"')
    assert reply < helo < mail and _time(path, helo) - _time(path, reply) < 1.0
    assert _verdict(conv) == ("plaintext", "client", "client-did-not-request", None, mail)
    assert _findings(conv) == [("ehlo-bad-keyword", "server", reply)]
    assert conv["starttls"]["offered"] == "valid"


def test_starttls_seconds_after_a_bare_last_line_is_tls() -> None:
    """STARTTLS shows the client read the list, so it ended the reply, however long it took."""
    name = "lastline26-ehlo-last-line-code-alone-slow-starttls.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    reply = _ehlo_reply_frame(path)
    (starttls,) = _frames(path, 'smtp.req.command == "STAR"')    # (tshark's command: 4 letters)
    assert _time(path, starttls) - _time(path, reply) >= 1.0
    finished = _frames(path, "tls.record.content_type == 20 && tcp.dstport == 25")[0]
    assert _verdict(conv) == ("tls", "none", "tls-established", None, finished)
    assert _findings(conv) == [("ehlo-bad-keyword", "server", reply)]
