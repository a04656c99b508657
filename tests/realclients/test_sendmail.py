"""Sendmail 8.17 (Debian 12's sendmail-bin, its ``esmtp`` mailer with Sendmail's default STARTTLS
rules) against the byte-exact server, captured with tcpdump and judged by pcapsmtp, the way Exim
is in test_exim.py.

Sendmail runs from the unpacked Debian packages (see sendmail_rig.py: apt would remove Postfix),
one fresh private instance per delivery, delivering in the foreground (``-odi``).

1. every EHLO reply shape: Sendmail sends STARTTLS exactly when the client table predicts
   ``sees_starttls(client("sendmail"), reply) == "Y"``, and the verdict is ``expected_verdict``;
2. STARTTLS answered 454, or 502 (offered, then not implemented): Sendmail goes on in plaintext
   on the same connection (``plaintext / server / starttls-refused``);
3. the server breaks the handshake (``close``, ``alert``): Sendmail does not fall back to clear
   (no ``TLSFallbacktoClear``): it defers the message ("Deferred: 454 4.7.0 TLS handshake
   failed.") after one connection, ``aborted / server / tls-handshake-failed``, and its next
   queue run tries STARTTLS again, with the same verdict;
4. a clean STARTTLS delivery: ``tls / none / tls-established`` (Sendmail logs ``verify=OK``
   against the test certificate it was given as CA); with another CA the check fails
   (``verify=FAIL``) and, opportunistic, Sendmail delivers in TLS all the same.
5. the server hangs or resets around STARTTLS (the harness's ``silent``, ``stall``, ``rst``;
   ``confTO_STARTTLS`` 2 s): Sendmail defers each time after one connection, never in clear;
   the verdicts are the libraries' (``no-answer``, ``server-silent``, the RST).

Frame numbers (greeting, EHLO reply, STARTTLS, ClientHello, ServerHello, alert, 454, MAIL FROM
and the findings) are cross-checked against tshark decoding the test port as SMTP.

Needs root (tcpdump on lo, ``sendmail -C``, a mount namespace) and the unpacked packages;
otherwise every test is skipped with the reason.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import realclients_harness as h
import sendmail_rig as rig
from pcapsmtp.analysis.clients import After454, AfterTimeout, client, retrying_clients
from test_exim import EximDelivery, check_dialogue_frames, check_hung_attempt, check_reply_shape
from test_real_clients import HANG_MODES, HANG_WAIT, SHAPES, analyze, verdict

pytestmark = [pytest.mark.live, pytest.mark.slow]


@pytest.fixture(scope="module")
def sendmail() -> Iterator[Path]:
    why = rig.skip_reason()
    if why:
        pytest.skip(why)
    problem = rig.namespace_problem()    # CI must run these: fail, in one line, rather than skip
    if problem:
        pytest.fail(problem, pytrace=False)
    binary = rig.sendmail_binary()
    assert binary is not None
    yield binary


@pytest.fixture(scope="module")
def sendmail_version(sendmail: Path) -> str:
    return rig.version(sendmail)


# ------------------------------------------------------------------------------------ helpers

@dataclass
class SendmailDelivery(EximDelivery):
    """A delivery and its capture; ``log`` is Sendmail's syslog, ``deliveries`` its ``to=`` lines
    (``stat=Sent``, ``stat=Deferred``)."""

    def describe(self) -> str:
        return (f"sendmail exit {self.run.returncode}; server saw {[c.commands for c in self.conns]}; "
                f"verdicts {[verdict(c) for c in self.convs]}\n{self.run.output[-1500:]}\n"
                f"{self.log[-3000:]}")


def sendmail_deliver(binary: Path, behaviour: h.Behaviour, cert: tuple[Path, Path], tmp: Path,
                     *, queue_runs: int = 0, ca: Path | None = None,
                     mc_extra: str = "") -> tuple[SendmailDelivery, list[str]]:
    """One message through a fresh private Sendmail to a fresh ByteServer, captured on lo; then
    ``queue_runs`` runs of its queue (``ca``: another trust anchor than the server's certificate;
    ``mc_extra``: more lines for its ``.mc``). Also returns what is left in the queue."""
    tmp.mkdir(parents=True, exist_ok=True)
    srv = h.ByteServer(behaviour, *cert).start()
    pcap = tmp / "capture.pcap"
    inst: rig.SendmailInstance | None = None
    try:
        inst = rig.SendmailInstance(binary, srv.port, cert, ca, mc_extra)
        with h.Tcpdump(pcap, srv.port) as dump:
            run = inst.deliver()
            for _ in range(queue_runs):
                q = inst.queue_run()
                run = h.ClientRun(run.client, q.returncode, run.output + "\n--- queue run\n" + q.output)
        # a packet lost by the capture would be judged as a hole (tcp-gap), not Sendmail's doing
        assert dump.dropped in (0, None), f"tcpdump dropped {dump.dropped} packets"
        lines, queued = inst.log(), inst.queued()
    finally:
        srv.stop()
        if inst is not None:
            (tmp / "sendmail.log").write_text("\n".join(inst.log()))
            inst.remove()
    d = SendmailDelivery(run, list(srv.conns), analyze(pcap, srv.port), "\n".join(lines),
                         [ln for ln in lines if " to=" in ln and " stat=" in ln], pcap, srv.port,
                         h.tshark_wire(pcap, srv.port))
    return d, queued


def tls_lines(d: SendmailDelivery) -> list[str]:
    """Sendmail's summary of a finished client handshake: ``STARTTLS=client, relay=..., verify=``."""
    return [ln for ln in d.log.splitlines() if ln.startswith("STARTTLS=client, relay=")]


# ------------------------------------------------------------------- (1) every reply shape

@pytest.mark.parametrize("shape", SHAPES)
def test_sendmail_reply_shape(sendmail: Path, sendmail_version: str, shape: str, cert: tuple[Path, Path],
                              tmp_path: Path) -> None:
    reply = h.SHAPES[shape]
    d, queued = sendmail_deliver(sendmail, h.Behaviour(ehlo=reply, on_starttls="tls"), cert, tmp_path)
    conn, conv, cell, reply_frame = check_reply_shape("sendmail", sendmail_version, shape, d)
    if cell == "Y":
        assert conn.tls and conn.mail_in_tls, d.describe()
        assert conv["starttls"]["frame"] == d.frames(conv["stream"], command="STAR")[0]
        assert [ln for ln in d.deliveries if "stat=Sent" in ln] and queued == [], d.describe()
        assert len(tls_lines(d)) == 1 and "verify=OK" in tls_lines(d)[0], d.describe()
    elif shape == "C4":
        # like Exim, Sendmail ends the reply at line 1 ("250 mx.example.com"); the two stray lines
        # then answer MAIL FROM and RCPT TO, so DATA reads RCPT's own 250. Unlike Exim, which
        # defers, Sendmail fails the message for good ("SMTP DATA-1 protocol error: 250 2.1.5 Ok",
        # dsn=5.5.1, stat=Remote protocol error); -N never keeps its bounce off the wire
        assert not conn.mail and "DATA" in conn.commands, d.describe()
        assert "SMTP DATA-1 protocol error: 250 2.1.5 Ok" in d.log, d.describe()
        assert [ln for ln in d.deliveries if "dsn=5.5.1, stat=Remote protocol error" in ln], d.describe()
        assert queued == [], d.describe()
        assert "reply-out-of-step" in [f["code"] for f in conv["findings"]]
    else:
        assert conn.mail and not conn.mail_in_tls, d.describe()
        assert [ln for ln in d.deliveries if "stat=Sent" in ln] and queued == [], d.describe()
        assert tls_lines(d) == [], d.describe()
        if conv["reason"] == "client-did-not-request":
            # the evidence is the first command sent in clear after the valid offer
            assert conv["evidence_frame"] == d.frames(conv["stream"], command="MAIL")[0]


# ---------------------------------------------------------------------- (2) STARTTLS 454, 502

@pytest.mark.parametrize("code", [454, 502])
def test_sendmail_refused_starttls_goes_on_in_plaintext(sendmail: Path, code: int, cert: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    """454, and 502 (offered, then not implemented): Sendmail's default rules go on in plaintext on
    the same connection, MAIL FROM right after the refusal (no second EHLO)."""
    d, queued = sendmail_deliver(sendmail, h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls=str(code)), cert,
                                 tmp_path)
    assert client("sendmail").plaintext_after_454 is After454.SAME_CONNECTION
    assert len(d.conns) == 1 and len(d.convs) == 1, d.describe()
    conn, conv = d.conns[0], d.convs[0]
    assert conn.starttls and not conn.tls and conn.mail, d.describe()
    assert conn.commands[conn.commands.index("STARTTLS") + 1].startswith("MAIL From:"), conn.commands
    assert verdict(conv) == ("plaintext", "server", "starttls-refused"), d.describe()
    assert conv["starttls"]["reply_code"] == code and conv["starttls"]["requested"] is True
    assert conv["delivered"] is True
    s = conv["stream"]
    check_dialogue_frames(d, conv)
    assert conv["starttls"]["frame"] == d.frames(s, command="STAR")[0]
    assert conv["evidence_frame"] == d.frames(s, response=code)[0]
    assert [ln for ln in d.deliveries if "stat=Sent" in ln] and queued == [], d.describe()
    assert tls_lines(d) == []


# ------------------------------------------------------- (3) the server breaks the handshake

@pytest.mark.parametrize("mode", ["close", "alert"])
def test_sendmail_broken_handshake_defers(sendmail: Path, mode: str, cert: tuple[Path, Path],
                                          tmp_path: Path) -> None:
    """220, then the server closes or sends a fatal alert. Without ``TLSFallbacktoClear`` Sendmail
    neither goes on in clear nor reconnects without STARTTLS: it defers ("Deferred: 454 4.7.0 TLS
    handshake failed."), and the next queue run (``-qf``) tries STARTTLS again and defers again:
    Sendmail keeps no memory of the failure (no HostStatusDirectory), unlike Postfix, whose
    second attempt is in clear."""
    d, queued = sendmail_deliver(sendmail, h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls=mode), cert, tmp_path,
                                 queue_runs=1)
    assert "sendmail" not in retrying_clients() and not client("sendmail").fallback_after_handshake_failure
    assert len(d.conns) == 2 and len(d.convs) == 2, d.describe()
    for conn in d.conns:
        assert conn.commands == ["EHLO client.example.org", "STARTTLS"] and not conn.tls, d.describe()
    deferred = [ln for ln in d.deliveries if "stat=Deferred: 454 4.7.0 TLS handshake failed." in ln]
    assert len(deferred) == 2 and len(d.deliveries) == 2, d.describe()
    assert len(queued) == 1, d.describe()

    for conv in sorted(d.convs, key=lambda c: c["first_frame"]):
        assert verdict(conv) == ("aborted", "server", "tls-handshake-failed"), d.describe()
        assert conv["starttls"]["offered"] == "valid" and conv["starttls"]["reply_code"] == 220
        assert (conv["mail"], conv["delivered"]) == (False, False)
        s = conv["stream"]
        check_dialogue_frames(d, conv)
        assert conv["starttls"]["frame"] == d.frames(s, command="STAR")[0]
        assert conv["tls"]["client_hello_frame"] == d.frames(s, handshake=1)[0]
        assert conv["tls"]["server_hello_frame"] is None and not d.frames(s, handshake=2)
        if mode == "alert":
            alert = d.frames(s, fatal_alert=True)
            assert len(alert) == 1
            assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("tls-alert", "server", alert[0])]
            assert conv["evidence_frame"] == alert[0]
        else:
            assert "tls-alert" not in [f["code"] for f in conv["findings"]]


# ------------------------------------------------------------------ (4) a clean STARTTLS delivery

def test_sendmail_starttls_delivery(sendmail: Path, sendmail_version: str, cert: tuple[Path, Path],
                                    tmp_path: Path) -> None:
    d, queued = sendmail_deliver(sendmail, h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="tls"), cert, tmp_path)
    assert len(d.conns) == 1 and len(d.convs) == 1, d.describe()
    conn, conv = d.conns[0], d.convs[0]
    assert conn.starttls and conn.tls and conn.mail_in_tls, d.describe()
    assert conn.commands[:3] == ["EHLO client.example.org", "STARTTLS", "EHLO client.example.org"]
    # verified against the copy of the test certificate given as confCACERT
    [line] = tls_lines(d)
    assert "relay=[127.0.0.1]" in line and "verify=OK" in line, d.describe()
    assert [ln for ln in d.deliveries if "stat=Sent" in ln] and queued == [], d.describe()
    assert verdict(conv) == ("tls", "none", "tls-established"), d.describe()
    assert conv["findings"] == []
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": 220,
                                "frame": d.frames(conv["stream"], command="STAR")[0]}
    assert conv["tls"]["established"] is True
    s = conv["stream"]
    check_dialogue_frames(d, conv)
    assert conv["tls"]["client_hello_frame"] == d.frames(s, handshake=1)[0]
    assert conv["tls"]["server_hello_frame"] == d.frames(s, handshake=2)[0]
    assert sendmail_version.startswith("8."), sendmail_version


def test_sendmail_unverified_certificate_still_tls(sendmail: Path, cert: tuple[Path, Path], tmp_path: Path) -> None:
    """The server's certificate is not signed by Sendmail's CA: Sendmail's default rules (no
    ``tls_server`` requirement) log the failed check and deliver inside TLS."""
    other_ca, _ = h.make_cert(tmp_path / "other-ca")
    d, queued = sendmail_deliver(sendmail, h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="tls"), cert,
                                 tmp_path, ca=other_ca)
    assert len(d.conns) == 1 and len(d.convs) == 1, d.describe()
    conn, conv = d.conns[0], d.convs[0]
    assert conn.tls and conn.mail_in_tls, d.describe()
    [line] = tls_lines(d)
    assert "verify=FAIL" in line, d.describe()
    assert [ln for ln in d.deliveries if "stat=Sent" in ln] and queued == [], d.describe()
    assert verdict(conv) == ("tls", "none", "tls-established"), d.describe()
    assert conv["findings"] == []


# ---------------------------------------------- (5) a server that hangs or resets around STARTTLS

@pytest.mark.parametrize("mode", HANG_MODES)
def test_sendmail_against_a_server_that_hangs_or_resets(sendmail: Path, mode: str, cert: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    """``confTO_STARTTLS`` 2 s (rig.short_starttls_timeout; Timeout.starttls, default 1h, bounds
    the answer to STARTTLS and the handshake), Sendmail's default rules otherwise. Each time it
    closes without QUIT, defers and keeps the message; it never goes on in clear, on this
    connection or a new one (no ``TLSFallbacktoClear``), as after a close or an alert.
    ``silent``: "timeout waiting for input from [127.0.0.1]" (logged "during client EHLO"),
    ``stat=Deferred`` (dsn 4.0.0). ``stall``: the handshake times out ("SSL_error=2, errno=11"),
    then Sendmail waits another confTO_QUIT (3 s, "timeout waiting for input ... during
    Draining Input") before it closes, sending no alert; ``rst``: at once ("SSL_error=5,
    errno=104"). Both: "Deferred: 454 4.7.0 TLS handshake failed." """
    d, queued = sendmail_deliver(sendmail, h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls=mode), cert, tmp_path,
                                 mc_extra=rig.short_starttls_timeout(HANG_WAIT))
    assert "sendmail" not in retrying_clients() and not client("sendmail").fallback_after_handshake_failure
    assert len(d.conns) == len(d.convs) == 1, d.describe()
    conn, conv = d.conns[0], d.convs[0]
    assert conn.commands == ["EHLO client.example.org", "STARTTLS"] and not conn.mail, d.describe()
    check_hung_attempt(d.wire, conv, mode)
    assert not d.wire.frames(conv["stream"], command="QUIT"), d.describe()
    assert len(queued) == 1 and len(d.deliveries) == 1, d.describe()
    if mode != "rst":
        rule = client("sendmail")
        assert (rule.after_starttls_timeout if mode == "silent" else rule.after_handshake_timeout) \
            is AfterTimeout.DEFER
    if mode == "silent":
        assert "timeout waiting for input from [127.0.0.1]" in d.log, d.describe()
        assert "dsn=4.0.0, stat=Deferred" in d.deliveries[0], d.describe()
    else:
        errno = "SSL_error=2, errno=11" if mode == "stall" else "SSL_error=5, errno=104"
        assert f"STARTTLS=client, error: connect failed=-1, reason=unknown, {errno}" in d.log, d.describe()
        assert "stat=Deferred: 454 4.7.0 TLS handshake failed." in d.deliveries[0], d.describe()
    if mode != "rst":
        assert d.run.seconds >= HANG_WAIT - 0.1, d.describe()      # it waited its timeout


# ---------------------------------------- (7) the server drops Sendmail before its greeting

@pytest.mark.parametrize("mode", ["close", "rst"])
def test_sendmail_against_a_server_that_refuses_without_greeting(sendmail: Path, mode: str,
                                                                 cert: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    """The server closes or resets the accepted connection before its banner: Sendmail queues
    the message without a byte sent, no QUIT. Each attempt is the server's refusal, at its FIN
    or RST as tshark numbers it."""
    d, _queued = sendmail_deliver(sendmail, h.Behaviour(on_connect=mode), cert, tmp_path)
    assert d.conns and not any(c.commands for c in d.conns), d.describe()
    assert not [ln for ln in d.deliveries if "stat=Sent" in ln], d.describe()
    assert len(d.convs) == len(d.conns), d.describe()
    for conv in d.convs:
        assert verdict(conv) == ("aborted", "server", "greeting-refused"), d.describe()
        assert conv["evidence_frame"] == d.wire.server_close_frames(conv["stream"])[0], d.describe()
