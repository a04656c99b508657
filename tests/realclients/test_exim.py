"""Exim 4.96 (Debian 12, its ``smtp`` transport with the default TLS settings) against the
byte-exact server, captured with tcpdump and judged by pcapsmtp, the way Postfix is in
test_real_clients.py.

Exim runs from the unpacked Debian package (see exim_rig.py: apt would remove Postfix), one
fresh private instance per delivery, delivering in the foreground (``-odf``).

1. every EHLO reply shape: Exim sends STARTTLS exactly when the client table predicts
   ``sees_starttls(client("exim"), reply) == "Y"``, and the verdict is ``expected_verdict``;
2. STARTTLS answered 454 (or 502): Exim goes on in plaintext on the same connection
   (``plaintext / server / starttls-refused``);
3. the server breaks the handshake (``close``, ``alert``): Exim's ``tls_tempfail_tryclear``
   reconnects at once and delivers in clear; the broken conversation is
   ``aborted / server / tls-handshake-failed`` and the clear one ``plaintext / server / tls-fallback``;
4. a clean STARTTLS delivery: ``tls / none / tls-established``;
5. verification required (``tls_verify_hosts = *``) and a certificate of another CA: Exim ends
   the handshake with an encrypted alert (``aborted / client / tls-handshake-failed``) and
   retries in clear at once (``plaintext / client / tls-fallback``), or, with
   ``hosts_require_tls = *`` too, defers.
6. the server hangs or resets around STARTTLS (the harness's ``silent``, ``stall``, ``rst``;
   ``command_timeout = 2s``): an unanswered STARTTLS is deferred (``aborted / server /
   starttls-refused``, case ``no-answer``), an unanswered ClientHello or a reset is a failed
   handshake the server caused, followed at once by a retry in clear (``tls-fallback``).

Frame numbers (greeting, EHLO reply, STARTTLS, ClientHello, ServerHello, alert, the server's
FIN or RST, the refusal, MAIL FROM and the findings) are cross-checked against tshark decoding
the test port as SMTP (an encrypted alert by its record's type and length only).

Needs root (tcpdump on lo, ``exim -C`` with privileges) and the unpacked package; otherwise
every test is skipped with the reason.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import exim_rig as rig
import realclients_harness as h
from pcapsmtp.analysis.clients import After454, AfterTimeout, client, retrying_clients, sees_starttls
from pcapsmtp.analysis.reasons import REASON_CASES
from test_real_clients import FINDING, HANG_MODES, HANG_WAIT, OFFERED, SHAPES, analyze, expected_verdict, verdict

pytestmark = [pytest.mark.live, pytest.mark.slow]


@pytest.fixture(scope="module")
def exim() -> Iterator[Path]:
    why = rig.skip_reason()
    if why:
        pytest.skip(why)
    binary = rig.exim_binary()
    assert binary is not None
    yield binary


@pytest.fixture(scope="module")
def exim_version(exim: Path) -> str:
    return rig.version(exim)


# ------------------------------------------------------------------------------------ helpers

@dataclass
class EximDelivery:
    run: h.ClientRun
    conns: list[h.ConnRecord]
    convs: list[dict[str, Any]]
    log: str
    deliveries: list[str]
    pcap: Path
    port: int
    wire: h.Wire   #: tshark's frames of the capture

    def describe(self) -> str:
        return (f"exim exit {self.run.returncode}; server saw {[c.commands for c in self.conns]}; "
                f"verdicts {[verdict(c) for c in self.convs]}\n{self.run.output[-1000:]}\n"
                f"{self.log[-3000:]}")

    def frames(self, stream: int, **what: Any) -> list[int]:
        """tshark's frames of one stream (see :meth:`realclients_harness.Wire.frames`)."""
        return self.wire.frames(stream, **what)

    def server_close_frames(self, stream: int) -> list[int]:
        return self.wire.server_close_frames(stream)

    def ehlo_reply_frame(self, stream: int) -> int:
        return self.wire.ehlo_reply_frame(stream)


def exim_deliver(binary: Path, behaviour: h.Behaviour, cert: tuple[Path, Path], tmp: Path, *,
                 ca: Path | None = None, transport_options: str = "") -> EximDelivery:
    """One message through a fresh private Exim to a fresh ByteServer, captured on lo (``ca``:
    another trust anchor than the server's certificate; ``transport_options``: more lines for
    the smtp transport)."""
    tmp.mkdir(parents=True, exist_ok=True)
    srv = h.ByteServer(behaviour, *cert).start()
    pcap = tmp / "capture.pcap"
    inst: rig.EximInstance | None = None
    try:
        inst = rig.EximInstance(binary, srv.port, ca or cert[0], transport_options)
        with h.Tcpdump(pcap, srv.port) as dump:
            run = inst.deliver()
        # a packet lost by the capture would be judged as a hole (tcp-gap), not Exim's doing
        assert dump.dropped in (0, None), f"tcpdump dropped {dump.dropped} packets"
        log, deliveries = inst.log(), inst.deliveries()
    finally:
        srv.stop()
        if inst is not None:
            (tmp / "exim.log").write_text(inst.log())
            inst.remove()
    return EximDelivery(run, list(srv.conns), analyze(pcap, srv.port), log, deliveries, pcap, srv.port,
                        h.tshark_wire(pcap, srv.port))


def check_dialogue_frames(d: EximDelivery, conv: dict[str, Any]) -> None:
    """The greeting and EHLO reply frames of one conversation are tshark's."""
    d.wire.check_dialogue_frames(conv)


# ------------------------------------------------------------------- (1) every reply shape

def check_reply_shape(name: str, version: str, shape: str,
                      d: EximDelivery) -> tuple[h.ConnRecord, dict[str, Any], str, int | None]:
    """What every MTA's reply-shape test checks (Exim's, Sendmail's): one connection and one
    conversation; whether the MTA sent STARTTLS is the client table's prediction for ``name``
    (from the bytes, and in the conversation's ``clients``); the verdict, the offer, the
    dialogue frames (tshark's), mail and delivered, the shape's finding at the EHLO reply's
    frame. -> (connection, conversation, the predicted cell, the EHLO reply's frame)."""
    assert len(d.conns) == 1 and len(d.convs) == 1, d.describe()
    conn, conv = d.conns[0], d.convs[0]
    reply = h.SHAPES[shape]

    # the prediction, from the bytes and from the capture
    cell = sees_starttls(client(name), reply)
    assert cell in "YN", f"no X expected for {name} on {shape}"
    assert conn.starttls is (cell == "Y"), f"{name} {version}: predicted {cell}; " + d.describe()
    assert (name in conv.get("clients", {}).get("see_starttls", [])) is (cell == "Y"), conv["clients"]

    # the verdict
    assert conv["starttls"]["offered"] == OFFERED[shape], d.describe()
    assert conv["starttls"]["requested"] is conn.starttls
    assert verdict(conv) == expected_verdict(shape, conn), d.describe()
    check_dialogue_frames(d, conv)
    # in clear, the capture's delivered (DATA 354, end of data 2xx, in the MTA's pairing of the
    # replies) is what the server recorded; inside TLS pcapsmtp sees no mail
    assert (conv["mail"], conv["delivered"]) == ((False, False) if conn.starttls else (True, conn.mail))
    reply_frame = d.ehlo_reply_frame(conv["stream"])
    if shape in FINDING:
        assert (FINDING[shape], reply_frame) in [(f["code"], f["frame"]) for f in conv["findings"]], conv["findings"]
    return conn, conv, cell, reply_frame


@pytest.mark.parametrize("shape", SHAPES)
def test_exim_reply_shape(exim: Path, exim_version: str, shape: str, cert: tuple[Path, Path],
                          tmp_path: Path) -> None:
    reply = h.SHAPES[shape]
    d = exim_deliver(exim, h.Behaviour(ehlo=reply, on_starttls="tls"), cert, tmp_path)
    conn, conv, cell, reply_frame = check_reply_shape("exim", exim_version, shape, d)
    if cell == "Y":
        assert conn.tls and conn.mail_in_tls, d.describe()
        assert conv["starttls"]["frame"] == d.frames(conv["stream"], command="STAR")[0]
        assert any(" => " in ln and " X=TLS" in ln for ln in d.deliveries), d.describe()
    elif shape == "C4":
        # Exim ends the reply at line 1; the stray lines answer MAIL FROM, so DATA reads RCPT's
        # 250: Exim defers ("SMTP error from remote mail server after DATA: 250 2.1.5 Ok")
        assert not conn.mail and "DATA" in conn.commands, d.describe()
        assert any(" == " in ln and "after DATA: 250" in ln for ln in d.deliveries), d.describe()
        assert "reply-out-of-step" in [f["code"] for f in conv["findings"]]
    else:
        assert conn.mail and not conn.mail_in_tls, d.describe()
        assert any(" => " in ln and " X=" not in ln for ln in d.deliveries), d.describe()
        if conv["reason"] == "client-did-not-request":
            # the evidence is the first command sent in clear after the valid offer
            assert conv["evidence_frame"] == d.frames(conv["stream"], command="MAIL")[0]


# ----------------------------------------------------------------- (2) STARTTLS 454 (and 502)

@pytest.mark.parametrize("code", [454, 502])
def test_exim_refused_starttls_goes_on_in_plaintext(exim: Path, code: int, cert: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    """454, and 502 (offered, not implemented): Exim goes on in clear on the same connection
    (clients.md: with tls_tempfail_tryclear a 4xx, and any 5xx, "continues in clear")."""
    d = exim_deliver(exim, h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls=str(code)), cert, tmp_path)
    assert client("exim").plaintext_after_454 is After454.SAME_CONNECTION
    assert len(d.conns) == 1 and len(d.convs) == 1, d.describe()
    conn, conv = d.conns[0], d.convs[0]
    assert conn.starttls and not conn.tls and conn.mail, d.describe()
    assert conn.commands[conn.commands.index("STARTTLS") + 1].startswith("MAIL FROM"), conn.commands
    assert verdict(conv) == ("plaintext", "server", "starttls-refused"), d.describe()
    assert conv["starttls"]["reply_code"] == code and conv["starttls"]["requested"] is True
    assert conv["delivered"] is True
    s = conv["stream"]
    check_dialogue_frames(d, conv)
    assert conv["starttls"]["frame"] == d.frames(s, command="STAR")[0]
    assert conv["evidence_frame"] == d.frames(s, response=code)[0]
    assert any(" => " in ln and " X=" not in ln for ln in d.deliveries), d.describe()


# ------------------------------------------------------- (3) the server breaks the handshake

@pytest.mark.parametrize("mode", ["close", "alert"])
def test_exim_retry_in_clear_is_tls_fallback(exim: Path, mode: str, cert: tuple[Path, Path],
                                             tmp_path: Path) -> None:
    """220, then the server closes or sends a fatal alert. With ``tls_tempfail_tryclear`` (the
    default) Exim logs "delivering unencrypted to H=... (not in hosts_require_tls)" and reconnects
    in clear within the same delivery attempt (Postfix waits for a second attempt)."""
    d = exim_deliver(exim, h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls=mode), cert, tmp_path)
    assert "exim" in retrying_clients() and client("exim").fallback_after_handshake_failure
    assert "delivering unencrypted to H=127.0.0.1" in d.log, d.describe()
    assert len(d.conns) == 2 and len(d.convs) == 2, d.describe()
    tried, clear = d.conns
    assert tried.starttls and not tried.tls and not tried.mail, d.describe()
    assert not clear.starttls and clear.mail, d.describe()

    broken, fallback = sorted(d.convs, key=lambda c: c["first_frame"])
    assert verdict(broken) == ("aborted", "server", "tls-handshake-failed"), d.describe()
    assert broken["starttls"]["reply_code"] == 220
    s = broken["stream"]
    check_dialogue_frames(d, broken)
    assert broken["starttls"]["frame"] == d.frames(s, command="STAR")[0]
    assert broken["tls"]["client_hello_frame"] == d.frames(s, handshake=1)[0]
    assert broken["tls"]["server_hello_frame"] is None and not d.frames(s, handshake=2)
    if mode == "alert":
        alert = d.frames(s, fatal_alert=True)
        assert len(alert) == 1
        assert [(f["code"], f["side"], f["frame"]) for f in broken["findings"]] == [("tls-alert", "server", alert[0])]
        assert broken["evidence_frame"] == alert[0]
    else:
        # the server's FIN, or its RST when the ClientHello was already in its unread buffer
        assert broken["evidence_frame"] == d.server_close_frames(s)[0], d.describe()
        assert broken["findings"] == []

    assert verdict(fallback) == ("plaintext", "server", "tls-fallback"), d.describe()
    assert fallback["starttls"]["offered"] == "valid" and fallback["starttls"]["requested"] is False
    assert (broken["delivered"], fallback["delivered"]) == (False, True)
    check_dialogue_frames(d, fallback)
    assert fallback["evidence_frame"] == d.frames(fallback["stream"], command="MAIL")[0]
    assert any(" => " in ln and " X=" not in ln for ln in d.deliveries), d.describe()


# ------------------------------------------------------------------ (4) a clean STARTTLS delivery

def test_exim_starttls_delivery(exim: Path, exim_version: str, cert: tuple[Path, Path], tmp_path: Path) -> None:
    d = exim_deliver(exim, h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="tls"), cert, tmp_path)
    assert len(d.conns) == 1 and len(d.convs) == 1, d.describe()
    conn, conv = d.conns[0], d.convs[0]
    assert conn.starttls and conn.tls and conn.mail_in_tls, d.describe()
    assert conn.commands[:3] == ["EHLO client.example.org", "STARTTLS", "EHLO client.example.org"]
    # verified against the copy of the test certificate given as tls_verify_certificates
    assert any(" => " in ln and " X=TLS" in ln and " CV=yes" in ln for ln in d.deliveries), d.describe()
    assert verdict(conv) == ("tls", "none", "tls-established"), d.describe()
    assert conv["findings"] == []
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": 220,
                                "frame": d.frames(conv["stream"], command="STAR")[0]}
    assert conv["tls"]["established"] is True
    s = conv["stream"]
    check_dialogue_frames(d, conv)
    assert conv["tls"]["client_hello_frame"] == d.frames(s, handshake=1)[0]
    assert conv["tls"]["server_hello_frame"] == d.frames(s, handshake=2)[0]
    assert exim_version.startswith("4."), exim_version



# --------------------------------------------- (5) verification required: the certificate rejected

#: the smtp transport's options that make Exim reject a certificate it cannot verify (by default
#: it only tries: tls_try_verify_hosts = *, and delivers in TLS with CV=no); with
#: hosts_require_tls as well, TLS itself is required, so no delivery in clear either
REQUIRE_VERIFY = {"verify": "tls_verify_hosts = *", "verify+tls": "tls_verify_hosts = *\nhosts_require_tls = *"}


@pytest.mark.parametrize("require", REQUIRE_VERIFY)
def test_exim_rejects_untrusted_certificate(exim: Path, require: str, cert: tuple[Path, Path],
                                            tmp_path: Path) -> None:
    """The server's certificate is not signed by the CA Exim is given, and the transport requires
    verification (``tls_verify_hosts = *``). Exim (GnuTLS) completes the TLS 1.3 handshake (its
    Finished is sent), checks the certificate, sends an encrypted alert and closes: the client
    ended the handshake, ``aborted / client / tls-handshake-failed`` with ``tls-alert`` (client)
    at the alert's frame. Then, as for a handshake the server broke, ``tls_tempfail_tryclear``
    (the default) reconnects at once in clear, "(not in hosts_require_tls)": ``plaintext /
    client / tls-fallback``, the side of the earlier failure. With ``hosts_require_tls = *`` too,
    the message is deferred after the one connection."""
    other_ca, _ = h.make_cert(tmp_path / "other-ca")
    d = exim_deliver(exim, h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="tls"), cert, tmp_path,
                     ca=other_ca, transport_options=REQUIRE_VERIFY[require])
    clear_retry = require == "verify"
    assert client("exim").fallback_after_handshake_failure
    assert "TLS session: (certificate verification failed): certificate invalid" in d.log, d.describe()
    assert len(d.conns) == len(d.convs) == (2 if clear_retry else 1), d.describe()
    tried = d.conns[0]
    assert tried.commands == ["EHLO client.example.org", "STARTTLS"] and not tried.mail, d.describe()

    rejected = sorted(d.convs, key=lambda c: c["first_frame"])[0]
    s = rejected["stream"]
    assert verdict(rejected) == ("aborted", "client", "tls-handshake-failed"), d.describe()
    assert rejected["starttls"] == {"offered": "valid", "requested": True, "reply_code": 220,
                                    "frame": d.frames(s, command="STAR")[0]}
    check_dialogue_frames(d, rejected)
    assert rejected["tls"]["client_hello_frame"] == d.frames(s, handshake=1)[0]
    assert rejected["tls"]["server_hello_frame"] == d.frames(s, handshake=2)[0]
    assert rejected["tls"]["established"] is False
    [alert] = d.wire.encrypted_alert_frames(s, "client")
    assert [(f["code"], f["side"], f["frame"]) for f in rejected["findings"]] == [("tls-alert", "client", alert)]
    assert rejected["evidence_frame"] == alert
    assert (rejected["mail"], rejected["delivered"]) == (False, False)

    if clear_retry:
        assert "delivering unencrypted to H=127.0.0.1" in d.log, d.describe()
        clear = d.conns[1]
        assert not clear.starttls and clear.mail, d.describe()
        fallback = sorted(d.convs, key=lambda c: c["first_frame"])[1]
        assert verdict(fallback) == ("plaintext", "client", "tls-fallback"), d.describe()
        assert fallback["starttls"]["offered"] == "valid" and fallback["starttls"]["requested"] is False
        assert fallback["delivered"] is True
        check_dialogue_frames(d, fallback)
        assert fallback["evidence_frame"] == d.frames(fallback["stream"], command="MAIL")[0]
        assert any(" => " in ln and " X=" not in ln for ln in d.deliveries), d.describe()
    else:
        assert [ln for ln in d.deliveries if " == " in ln and "certificate verification failed" in ln] \
            == d.deliveries and len(d.deliveries) == 1, d.describe()


# ---------------------------------------------- (6) a server that hangs or resets around STARTTLS

def check_hung_attempt(wire: h.Wire, conv: dict[str, Any], mode: str, *, client_alert: bool = False) -> None:
    """What every MTA's hang test checks on the conversation that met the hang (``silent``,
    ``stall`` or ``rst``, :data:`test_real_clients.HANG_MODES`), the way the libraries' test
    does: STARTTLS requested after a valid offer, no mail; ``silent``: ``aborted / server /
    starttls-refused``, case ``no-answer``, finding ``no-answer`` at STARTTLS (the evidence
    frame); ``stall``: ``aborted / server / tls-handshake-failed``, case ``server-silent``,
    finding ``no-answer`` at the ClientHello (the evidence frame), plus the client's own fatal
    alert as ``tls-alert`` when it sent one on giving up (``client_alert``: Exim's GnuTLS);
    ``rst``: ``aborted / server / tls-handshake-failed`` at the server's RST, no finding. Every
    frame is tshark's."""
    s = conv["stream"]
    wire.check_dialogue_frames(conv)
    (starttls,) = wire.frames(s, command="STAR")
    assert conv["starttls"]["frame"] == starttls, conv["starttls"]
    assert conv["starttls"]["offered"] == "valid" and conv["starttls"]["requested"] is True
    assert (conv["mail"], conv["delivered"]) == (False, False), conv
    codes = [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]
    if mode == "silent":
        assert verdict(conv) == ("aborted", "server", "starttls-refused"), conv
        assert conv["starttls"]["reply_code"] is None
        assert codes == [("no-answer", "server", starttls)] and conv["evidence_frame"] == starttls, codes
        assert conv["explanation"]["client_does"] == REASON_CASES[("starttls-refused", "no-answer")].client_does
        return
    (hello,) = wire.frames(s, handshake=1)
    assert verdict(conv) == ("aborted", "server", "tls-handshake-failed"), conv
    assert conv["starttls"]["reply_code"] == 220 and conv["tls"]["client_hello_frame"] == hello
    assert conv["tls"]["server_hello_frame"] is None and not wire.frames(s, handshake=2)
    if mode == "rst":
        assert conv["evidence_frame"] == wire.server_close_frames(s)[0] and codes == [], conv
        return
    # stall: the server sent nothing after its 220; what the client sent on giving up
    alerts = [r.frame for r in wire.rows if r.stream == s and r.src_port != wire.port and 2 in r.alert_levels]
    assert len(alerts) == (1 if client_alert else 0), alerts
    assert codes == [("no-answer", "server", hello)] + [("tls-alert", "client", a) for a in alerts], codes
    assert conv["evidence_frame"] == hello
    assert conv["explanation"]["client_does"] == REASON_CASES[("tls-handshake-failed", "server-silent")].client_does


def check_plaintext_retry(wire: h.Wire, failed: dict[str, Any], retry: dict[str, Any]) -> None:
    """A reconnection in clear right after a failed handshake (Exim, OpenSMTPD): ``plaintext /
    server / tls-fallback``, the failure's, with ``fallback_of`` naming the failed stream, no
    STARTTLS although offered, delivered, MAIL FROM (tshark's) as the evidence."""
    assert verdict(retry) == ("plaintext", "server", "tls-fallback"), retry
    assert retry["fallback_of"]["stream"] == failed["stream"], retry["fallback_of"]
    assert retry["fallback_of"]["reason"] == "tls-handshake-failed"
    assert retry["starttls"]["offered"] == "valid" and retry["starttls"]["requested"] is False
    assert retry["delivered"] is True
    wire.check_dialogue_frames(retry)
    assert retry["evidence_frame"] == wire.frames(retry["stream"], command="MAIL")[0]


@pytest.mark.parametrize("mode", HANG_MODES)
def test_exim_against_a_server_that_hangs_or_resets(exim: Path, mode: str, cert: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    """``command_timeout = 2s`` (rig.short_timeout), Exim's other defaults. ``silent``: Exim gives
    up after command_timeout ("SMTP timeout after STARTTLS"), closes without QUIT and defers:
    ``tls_tempfail_tryclear`` follows a failed handshake, not an unanswered command, so no
    retry in clear. ``stall``: the GnuTLS handshake times out under the same timeout, Exim sends
    a fatal alert (user_canceled) and closes, then, as after ``rst`` (at once) or a close,
    "delivering unencrypted ... (not in hosts_require_tls)": a new connection in clear within
    the same delivery attempt, which delivers."""
    d = exim_deliver(exim, h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls=mode), cert, tmp_path,
                     transport_options=rig.short_timeout(HANG_WAIT))
    tried = d.conns[0]
    assert tried.commands == ["EHLO client.example.org", "STARTTLS"] and not tried.mail, d.describe()
    convs = sorted(d.convs, key=lambda c: c["first_frame"])
    check_hung_attempt(d.wire, convs[0], mode, client_alert=mode == "stall")
    if mode != "rst":
        assert d.run.seconds >= HANG_WAIT - 0.1, d.describe()      # it waited its timeout
    if mode == "silent":
        assert client("exim").after_starttls_timeout is AfterTimeout.DEFER
        assert len(d.conns) == len(d.convs) == 1, d.describe()
        assert not d.wire.frames(convs[0]["stream"], command="QUIT"), d.describe()
        [line] = d.deliveries
        assert " == " in line and "SMTP timeout after STARTTLS" in line, d.describe()
        return
    if mode == "stall":
        assert client("exim").after_handshake_timeout is AfterTimeout.RETRY_PLAINTEXT
    assert "exim" in retrying_clients() and client("exim").fallback_after_handshake_failure
    want = "(gnutls_handshake): timed out" if mode == "stall" else "(gnutls_handshake): Error in the pull function."
    assert f"{want}: delivering unencrypted to H=127.0.0.1" in d.log, d.describe()
    assert len(d.conns) == len(d.convs) == 2, d.describe()
    assert not d.conns[1].starttls and d.conns[1].mail, d.describe()
    check_plaintext_retry(d.wire, convs[0], convs[1])
    assert any(" => " in ln and " X=" not in ln for ln in d.deliveries), d.describe()


# ------------------------------------------- (7) the server drops Exim before its greeting

@pytest.mark.parametrize("mode", ["close", "rst"])
def test_exim_against_a_server_that_refuses_without_greeting(exim: Path, mode: str,
                                                             cert: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    """The server closes or resets the accepted connection before its banner: Exim defers
    ("Remote host closed connection in response to initial connection", or a reset) without a
    byte sent, no QUIT. No payload either way, yet each attempt is the server's refusal, at its
    FIN or RST as tshark numbers it, not a connection attempt left uncounted."""
    d = exim_deliver(exim, h.Behaviour(on_connect=mode), cert, tmp_path)
    assert d.conns and not any(c.commands for c in d.conns), d.describe()
    assert not any(" => " in ln for ln in d.deliveries), d.describe()
    assert len(d.convs) == len(d.conns), d.describe()
    for conv in d.convs:
        assert verdict(conv) == ("aborted", "server", "greeting-refused"), d.describe()
        assert conv["evidence_frame"] == d.wire.server_close_frames(conv["stream"])[0], d.describe()
