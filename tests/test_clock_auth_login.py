"""Credentials cross in the clear only with an AUTH's initial response or a client line of its
SASL exchange (docs/output.md, "Values": ``outcome``): ``AUTH LOGIN`` alone carries none, so a
capture that ends right after it (or after the server's refusal) is ``incomplete``, not the
client going on in plaintext; the first SASL line after it is the credentials crossing."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cuts  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REFUSED = REPO / "captures" / "hunt2-auth-login-refused-then-starttls.pcap"
BOT = REPO / "captures" / "wild-auth-login-not-offered.pcap"


def _ended_at(path: Path, k: int) -> dict[str, Any]:
    convs = cuts.analyze(cuts.end_at(cuts.load(path), k), file=str(path))
    assert len(convs) == 1
    return convs[0]


def _verdict(c: dict[str, Any]) -> tuple[Any, ...]:
    return c["outcome"], c["caused_by"], c["reason"], c["evidence_frame"], c["auth"]


@pytest.mark.parametrize("k", [10, 11, 12, 13])
def test_auth_login_alone_carries_no_credentials(k: int) -> None:
    """Frame 10 is the client's ``AUTH LOGIN`` (no initial response), 12 the server's 530: a
    capture ending there does not show the client's next step (STARTTLS, as the whole capture
    shows, or its credentials)."""
    c = _ended_at(REFUSED, k)
    assert _verdict(c) == ("incomplete", "unknown", "incomplete", 8, True)
    assert c["detail"] == "the capture ends before the client's next step"


def test_the_whole_refused_capture_is_tls() -> None:
    c = _ended_at(REFUSED, 1 << 30)
    assert _verdict(c) == ("tls", "none", "tls-established", 22, True)


@pytest.mark.parametrize("k, verdict", [
    (13, ("incomplete", "unknown", "incomplete", 8, True)),
    # frame 14: the user name answering the server's 334 (frame 12): the credentials crossed
    (14, ("plaintext", "server", "starttls-not-offered", 8, True)),
])
def test_the_first_sasl_line_is_the_credentials_crossing(k: int, verdict: tuple[Any, ...]) -> None:
    c = _ended_at(BOT, k)
    assert _verdict(c) == verdict
    if verdict[0] == "plaintext":
        assert c["detail"] == ("the EHLO reply is well formed and does not offer STARTTLS; the client "
                               "sent AUTH LOGIN in the clear (frame 10): its credentials crossed "
                               "unprotected")


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_sees_the_auth_and_the_sasl_line_in_those_frames() -> None:
    """tshark's SMTP dissector: the AUTH command at frame 10 in both captures, the client's
    first line after the 334 (its SASL response) at frame 14 of the bot's."""
    def frames(path: Path, flt: str) -> list[int]:
        out = subprocess.run(["tshark", "-r", str(path), "-Y", flt, "-T", "fields", "-e", "frame.number"],
                             capture_output=True, text=True, check=True).stdout
        return [int(x) for x in out.split()]
    assert frames(REFUSED, 'smtp.req.command == "AUTH"') == [10]
    assert frames(BOT, 'smtp.req.command == "AUTH"') == [10]
    assert frames(BOT, "smtp.auth.username") == [14]
