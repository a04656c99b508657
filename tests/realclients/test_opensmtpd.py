"""OpenSMTPD's relay client (``mta``, Debian 12's opensmtpd 6.8.0p2) against the byte-exact server.

Each test relays one message through a fresh ``smtpd -d`` (see opensmtpd_rig.py: unpacked, never
installed, its own queue in a private mount namespace) to ``smtp://127.0.0.1:PORT``, which is
opportunistic STARTTLS, captures the relay port with tcpdump and checks:

- what OpenSMTPD did against the client table (``client("opensmtpd")``, from clients.md): whether
  it sent STARTTLS for each EHLO reply shape, plaintext on the same connection after 454 or 502, and an
  immediate plaintext reconnection after a handshake the server broke (a close, an alert, or a
  reset after the ClientHello, the harness's ``rst``; its ``silent`` and ``stall`` hangs cost
  the relay's wait for the server, 300 s compiled in (``rig.MTA_TIMEOUT``), so that test runs
  only with ``REALCLIENTS_SLOW_HANGS=1``);
- pcapsmtp's verdict on every captured conversation (outcome, caused_by, reason).

Needs root (tcpdump, privilege separation, the mount namespace): marked ``live``; ``slow`` too
(a fresh smtpd and tcpdump per test, about 0.5 s each: the rig sets ``mta limit session-keepalive
0``, so OpenSMTPD sends QUIT after its last message at once instead of holding the connection
10 s for more mail).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import opensmtpd_rig as rig
import realclients_harness as h
from pcapsmtp.analysis.clients import After454, AfterTimeout, client, retrying_clients, sees_starttls
from test_exim import check_hung_attempt, check_plaintext_retry
from test_real_clients import FINDING, OFFERED, SHAPES, analyze, expected_verdict, verdict

pytestmark = [pytest.mark.live, pytest.mark.slow]

RULE = client("opensmtpd")


@pytest.fixture(scope="module")
def smtpd() -> tuple[Path, str]:
    """The unpacked smtpd and its version; skips with what is missing."""
    why = rig.missing()
    if why:
        pytest.skip(why)
    problem = rig.namespace_problem()    # CI must run these: fail, in one line, rather than skip
    if problem:
        pytest.fail(problem, pytrace=False)
    binary = rig.smtpd_binary()
    assert binary is not None
    return binary, rig.version(binary)


def relay(smtpd: tuple[Path, str], behaviour: h.Behaviour, cert: tuple[Path, Path],
          tmp: Path, wait: float = 40) -> tuple[rig.Relayed, list[dict[str, Any]]]:
    run = rig.relay_once(smtpd[0], behaviour, cert, tmp, wait)
    convs = analyze(run.pcap, run.port)
    assert len(convs) == len(run.conns), f"OpenSMTPD {smtpd[1]}: " + run.describe()
    return run, convs


def results(run: rig.Relayed) -> list[str]:
    return [e.result for e in run.events if e.event == "delivery"]


# ------------------------------------------------------------- (1) the ten reply shapes + none

@pytest.mark.parametrize("shape", SHAPES)
def test_opensmtpd_reply_shape(smtpd: tuple[Path, str], shape: str, cert: tuple[Path, Path],
                               tmp_path: Path) -> None:
    reply = h.SHAPES[shape]
    run, convs = relay(smtpd, h.Behaviour(ehlo=reply, on_starttls="tls"), cert, tmp_path)
    why = f"OpenSMTPD {smtpd[1]}: " + run.describe()
    assert len(run.conns) == 1, why
    conn, conv = run.conns[0], convs[0]

    # the prediction, from the bytes and from the capture
    cell = sees_starttls(RULE, reply)
    assert cell in "YN", f"no X expected for OpenSMTPD on {shape}"
    assert conn.starttls is (cell == "Y"), f"predicted {cell}; " + why
    assert ("opensmtpd" in conv.get("clients", {}).get("see_starttls", [])) is (cell == "Y"), conv["clients"]

    # the verdict
    assert conv["starttls"]["offered"] == OFFERED[shape], why
    if shape in FINDING:
        assert FINDING[shape] in [f["code"] for f in conv["findings"]], conv["findings"]
    assert verdict(conv) == expected_verdict(shape, conn), why
    assert conv["starttls"]["requested"] is conn.starttls

    if cell == "Y":
        assert conn.tls and conn.mail_in_tls and results(run) == ["Ok"], why
    elif shape == "C4":
        # the stray lines came in the same segment as the one-line reply: OpenSMTPD finds them
        # in its input buffer, drops the session before any command and defers the message
        # (the client table's STRAY note); the capture shows EHLO only, so no mail transaction
        assert conn.commands == ["EHLO client.example.org"] and not conn.mail, why
        assert any(e.event == "error" and "Remote host sent too much data" in e.rest for e in run.events), why
        assert results(run) == ["TempFail"], why
        assert verdict(conv) == ("aborted", "server", "starttls-misplaced")
    else:
        assert conn.mail and not conn.mail_in_tls and results(run) == ["Ok"], why   # silent plaintext


# ----------------------------------------------------------------------- (2) STARTTLS 454, 502

@pytest.mark.parametrize("code", [454, 502])
def test_opensmtpd_refused_starttls_goes_on_in_plaintext(smtpd: tuple[Path, str], code: int,
                                                         cert: tuple[Path, Path], tmp_path: Path) -> None:
    """An opportunistic relay (no MTA_WANT_SECURE) takes any non-2xx answer to STARTTLS, the
    temporary 454 as the 502 of a server that offered STARTTLS and does not implement it, as "no
    TLS here" and goes on in plaintext on the same connection (no second EHLO)."""
    assert RULE.plaintext_after_454 is After454.SAME_CONNECTION
    run, convs = relay(smtpd, h.Behaviour(on_starttls=str(code)), cert, tmp_path)
    why = f"OpenSMTPD {smtpd[1]}: " + run.describe()
    assert len(run.conns) == 1, why
    conn, conv = run.conns[0], convs[0]
    assert conn.starttls and not conn.tls and conn.mail, why
    assert conn.commands[:3] == ["EHLO client.example.org", "STARTTLS", "MAIL FROM:<alice@example.org>"], why
    assert results(run) == ["Ok"], why
    assert verdict(conv) == ("plaintext", "server", "starttls-refused"), why
    assert conv["starttls"]["reply_code"] == code and conv["starttls"]["requested"] is True
    assert conv["delivered"] is True and conv["findings"] == []
    # the frames, as tshark finds them with the relay port decoded as SMTP
    wire, s = h.tshark_wire(run.pcap, run.port), conv["stream"]
    wire.check_dialogue_frames(conv)
    assert conv["starttls"]["frame"] == wire.frames(s, command="STAR")[0]
    assert conv["evidence_frame"] == wire.frames(s, response=code)[0]


# ------------------------------------------------------------------ (3) failed TLS handshakes

@pytest.mark.parametrize("mode", ["close", "alert", "rst"])
def test_opensmtpd_plaintext_retry_is_tls_fallback(smtpd: tuple[Path, str], mode: str,
                                                   cert: tuple[Path, Path], tmp_path: Path) -> None:
    """220, then the server closes (``close``), sends a fatal alert (``alert``) or resets the
    connection after the ClientHello (``rst``, one of the harness's hangs). OpenSMTPD logs
    "opportunistic TLS failed, downgrading to plain" and at once reconnects with smtp+notls in the
    same mta session, without STARTTLS, and delivers: the first conversation is the server's
    broken handshake, the second the fallback it caused. (The other two hangs, ``silent`` and
    ``stall``, cost OpenSMTPD's compiled-in 300 s wait: test_opensmtpd_waits_out_a_hang, opt-in.)"""
    assert RULE.fallback_after_handshake_failure and "opensmtpd" in retrying_clients()
    run, convs = relay(smtpd, h.Behaviour(on_starttls=mode), cert, tmp_path)
    why = f"OpenSMTPD {smtpd[1]}: " + run.describe()
    assert len(run.conns) == 2, why
    tried, plain = run.conns
    assert tried.starttls and not tried.tls and not tried.mail, why
    assert tried.commands == ["EHLO client.example.org", "STARTTLS"], why
    assert not plain.starttls and plain.mail, why
    assert "opportunistic TLS failed, downgrading to plain" in run.log, why
    assert [e.rest.split()[0] for e in run.events if e.event == "connecting"] == [
        f"address=smtp://127.0.0.1:{run.port}", f"address=smtp+notls://127.0.0.1:{run.port}"], why
    assert results(run) == ["Ok"], why

    first, second = convs
    assert verdict(first) == ("aborted", "server", "tls-handshake-failed"), why
    assert first["starttls"]["reply_code"] == 220 and first["tls"]["established"] is False
    assert ("tls-alert" in [f["code"] for f in first["findings"]]) is (mode == "alert"), first["findings"]
    assert verdict(second) == ("plaintext", "server", "tls-fallback"), why
    assert second["starttls"]["offered"] == "valid" and second["starttls"]["requested"] is False
    if mode == "rst":
        # the frames, tshark's: the failure at the server's RST, the retry at its MAIL FROM
        wire = h.tshark_wire(run.pcap, run.port)
        check_hung_attempt(wire, first, mode)
        check_plaintext_retry(wire, first, second)


# -------------------------------------------------------------------------- (4) clean STARTTLS

def test_opensmtpd_starttls_delivery(smtpd: tuple[Path, str], cert: tuple[Path, Path], tmp_path: Path) -> None:
    """A working upgrade: the certificate is self-signed and not given to OpenSMTPD, which logs the
    failed check and, being opportunistic, delivers inside TLS all the same."""
    run, convs = relay(smtpd, h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="tls"), cert, tmp_path)
    why = f"OpenSMTPD {smtpd[1]}: " + run.describe()
    assert len(run.conns) == 1, why
    conn, conv = run.conns[0], convs[0]
    assert conn.starttls and conn.tls and conn.mail_in_tls, why
    assert conn.commands[-1] == "QUIT", why
    # at once: the rig's session-keepalive 0 took (by default "hanging on for 10s" first)
    assert "hanging on" not in run.log, why
    assert any(e.event == "server-cert-check" and 'result="failure"' in e.rest for e in run.events), why
    assert results(run) == ["Ok"], why
    assert verdict(conv) == ("tls", "none", "tls-established"), why
    assert conv["starttls"]["reply_code"] == 220 and conv["tls"]["established"] is True


# ------------------------------------------------- (5) a server that hangs, waited out (opt-in)

@pytest.mark.skipif(not os.environ.get("REALCLIENTS_SLOW_HANGS"),
                    reason="5 min each: OpenSMTPD's relay waits 300 s for the server, compiled in (no option); "
                           "REALCLIENTS_SLOW_HANGS=1 runs it")
@pytest.mark.parametrize("mode", ["silent", "stall"])
def test_opensmtpd_waits_out_a_hang(smtpd: tuple[Path, str], mode: str, cert: tuple[Path, Path],
                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``silent`` and ``stall`` (the ``rst`` hang is in the fallback test above). OpenSMTPD waits
    its 300 s, logs "error reason=Connection timeout", closes (no QUIT, no alert) and defers the
    message ("TempFail", "Network error on destination MXs"). A timeout is not a failed TLS
    handshake to it: no ``smtp+notls`` retry, whether the server hung on STARTTLS or on the
    ClientHello. The verdicts are the libraries': ``no-answer`` at STARTTLS, ``server-silent``
    with ``no-answer`` at the ClientHello."""
    monkeypatch.setattr(h, "HANG_LIMIT", rig.MTA_TIMEOUT + 60)   # the server outwaits OpenSMTPD
    run, convs = relay(smtpd, h.Behaviour(on_starttls=mode), cert, tmp_path, wait=rig.MTA_TIMEOUT + 40)
    why = f"OpenSMTPD {smtpd[1]}: " + run.describe()
    assert len(run.conns) == len(convs) == 1, why
    assert run.conns[0].commands == ["EHLO client.example.org", "STARTTLS"] and not run.conns[0].mail, why
    assert [e.rest.strip() for e in run.events if e.event == "error"] == ["reason=Connection timeout"], why
    assert results(run) == ["TempFail"] and "Network error on destination MXs" in run.log, why
    assert "downgrading to plain" not in run.log, why
    # the client table: a timeout is no failed handshake to it (which it would retry in clear)
    assert (RULE.after_starttls_timeout if mode == "silent" else RULE.after_handshake_timeout) \
        is AfterTimeout.DEFER and RULE.fallback_after_handshake_failure
    wire = h.tshark_wire(run.pcap, run.port)
    check_hung_attempt(wire, convs[0], mode)
    assert not wire.frames(convs[0]["stream"], command="QUIT"), why
