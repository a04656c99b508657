"""Real clients against a server stuck on TLS 1.0 or on a 1024-bit Diffie-Hellman group, and a
client stuck on TLS 1.0 against a current server: the verdict blames the side on the old TLS
(RFC 8996, RFC 7919), whichever side ended the handshake
(captures/scenarios_tlsversion.py has the generated twins of what is seen here).

What the clients of Debian 12 do against a TLS 1.0-only server (OpenSSL 3.0 with
``@SECLEVEL=0`` so that it can speak TLS 1.0 at all):

- most offer only TLS 1.2 and 1.3, so the server refuses the ClientHello (asyncio's TLS closes
  the connection; OpenSSL's own servers send ``protocol_version``): the server ended it, and is
  blamed for it;
- curl, swaks, Ruby and PHPMailer set their own minimum version, so their offer still reaches
  down to TLS 1.0; the server chooses TLS 1.0 and their OpenSSL, at its default security level,
  refuses the ServerHello (an ``internal_error`` alert): the client ended it, the server's old
  TLS caused it, and the verdict says so (``tls-version-mismatch``). Before this rule these four
  were blamed on the client;
- msmtp (GnuTLS) still accepts TLS 1.0 and delivers through it.

Against a server whose only key exchange is DHE over a 1024-bit group (RFC 2409's Oakley group
2, old servers' usual one), the OpenSSL clients refuse the group ("dh key too small") and send the
alert; the server's group caused it (``tls-weak-dh``). GnuTLS (msmtp) and Node.js accept it.

Needs root (tcpdump on lo): marked ``live``.
"""
from __future__ import annotations

import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import realclients_harness as h
import test_real_clients
from test_real_clients import CLIENTS, Delivery, PostfixRig, Runner, analyze, describe, postfix_deliver, verdict

runner = test_real_clients.runner    # the fixture that finds each client (or skips with its package)
postfix_rig = test_real_clients.postfix_rig    # a private Postfix relaying to the test server

pytestmark = pytest.mark.live

TLS10_ONLY = "tls1.0-only"


def _server_context(cert: tuple[Path, Path], limit: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    if limit == TLS10_ONLY:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1
    return ctx


def deliver_with(run: Runner, cert: tuple[Path, Path], tmp: Path, limit: str | None,
                 ctx: ssl.SSLContext | None = None) -> Delivery:
    tmp.mkdir(parents=True, exist_ok=True)
    srv = h.ByteServer(h.Behaviour(ehlo=h.SHAPES["C1"]), *cert)
    srv.ctx = ctx or _server_context(cert, limit)
    srv.start()
    pcap = tmp / "capture.pcap"
    try:
        with h.Tcpdump(pcap, srv.port):
            result = run(srv.port, cert[0], tmp)
    finally:
        srv.stop()
    return Delivery(result, list(srv.conns), analyze(pcap, srv.port), srv.port)


def _tls_frames(conv: dict[str, Any]) -> dict[str, Any]:
    return {f["code"]: f for f in conv["findings"]}


def _failed_for_the_server(d: Delivery, conv: dict[str, Any], accepts: bool, code: str) -> bool:
    """A client that ``accepts`` what the server offers: TLS, without the finding ``code``
    (returns False). Otherwise the handshake failed and the server is blamed (returns True)."""
    if accepts:
        assert d.conns[0].tls and verdict(conv) == ("tls", "none", "tls-established"), describe(d)
        assert code not in _tls_frames(conv), describe(d)
        return False
    assert not d.conns[0].tls and d.run.returncode != 0, describe(d)
    assert verdict(conv) == ("aborted", "server", "tls-handshake-failed"), describe(d)
    return True


#: what each client does against the TLS 1.0-only server, as observed on Debian 12:
#: "refuses-serverhello": its offer reaches down to TLS 1.0 (OpenSSL clients that set their own
#: minimum version), the server chooses TLS 1.0 and OpenSSL's security level refuses the
#: ServerHello (internal_error); "offer-refused": it offers only TLS 1.2 and 1.3 (the system's
#: OpenSSL minimum, Go, Node.js) and the server closes at the ClientHello; "accepts": msmtp
#: (GnuTLS 3.7.9's default priority still enables TLS 1.0) delivers through TLS 1.0
AGAINST_TLS10 = {"python-smtplib": "offer-refused", "swaks": "refuses-serverhello", "curl": "refuses-serverhello",
                 "msmtp": "accepts", "go-net-smtp": "offer-refused", "nodemailer": "offer-refused",
                 "ruby-net-smtp": "refuses-serverhello", "phpmailer": "refuses-serverhello"}


@pytest.mark.parametrize("name", CLIENTS)
def test_server_stuck_on_tls10_is_blamed(name: str, runner: Callable[[str], Runner], cert: tuple[Path, Path],
                                         tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning):      # ssl.TLSVersion.TLSv1: the point of the test
        d = deliver_with(runner(name), cert, tmp_path, TLS10_ONLY)
    assert d.conns and d.conns[0].starttls, describe(d)
    first = d.convs[0]
    found = _tls_frames(first)
    if not _failed_for_the_server(d, first, AGAINST_TLS10[name] == "accepts", "tls-version-mismatch"):
        assert first["detail"].endswith("(TLS 1.0)"), describe(d)
        return
    if AGAINST_TLS10[name] == "refuses-serverhello":
        # The client ended the handshake; the server's choice of TLS 1.0 caused it: the
        # ServerHello is the evidence, the client's alert a finding of its own.
        mismatch = found["tls-version-mismatch"]
        assert mismatch["side"] == "server" and first["evidence_frame"] == mismatch["frame"], describe(d)
        assert mismatch["message"].startswith("the server chose TLS 1.0"), describe(d)
        assert found["tls-alert"]["side"] == "client" and found["tls-alert"]["frame"] > mismatch["frame"]
        assert first["explanation"]["ask"].startswith("Ask the receiving server's admin to enable TLS 1.2")
    else:
        # The server closed at the ClientHello (asyncio's TLS sends no alert; an OpenSSL client
        # answers the close with decode_error, which is not what ended the handshake).
        assert first["detail"].startswith("the server closed the connection before the ServerHello"), describe(d)
        assert "tls-version-mismatch" not in found, describe(d)
        alert = found.get("tls-alert")
        assert alert is None or (alert["side"] == "client" and "after the server had closed" in alert["message"])
    assert len(d.convs) == 1, describe(d)     # no library retries in plaintext


OLD_CLIENT_SCRIPT = r"""
import smtplib, ssl, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.example.org", timeout=20) as s:
    s.ehlo()
    s.starttls(context=ctx)
"""


def test_client_stuck_on_tls10_is_blamed(cert: tuple[Path, Path], tmp_path: Path) -> None:
    """CPython's smtplib with an OpenSSL context limited to TLS 1.0 against a current server
    (TLS 1.2 and later): the server refuses the ClientHello (it closes, and the client answers
    the close with an alert), the client's offer caused it."""
    def run(port: int, ca: Path | None, tmp: Path) -> h.ClientRun:
        return h._run("python-smtplib-tls1.0", [sys.executable, "-c", OLD_CLIENT_SCRIPT, str(port), str(ca)])
    d = deliver_with(run, cert, tmp_path, None)
    assert d.run.returncode != 0 and "SSL" in d.run.output, describe(d)
    (conv,) = d.convs
    assert verdict(conv) == ("aborted", "client", "tls-handshake-failed"), describe(d)
    found = _tls_frames(conv)
    assert found["tls-version-mismatch"]["side"] == "client", describe(d)
    assert conv["evidence_frame"] == found["tls-version-mismatch"]["frame"], describe(d)
    assert "nothing newer than TLS 1.0" in found["tls-version-mismatch"]["message"], describe(d)
    assert conv["explanation"]["ask"].startswith("Ask the sending side's admin to enable TLS 1.2")


@pytest.mark.slow
def test_postfix_delivers_over_a_tls10_server(postfix_rig: PostfixRig, cert: tuple[Path, Path]) -> None:
    """Postfix (smtp_tls_security_level = may) against the TLS 1.0-only server: its own cipher
    and protocol settings (smtp_tls_protocols allows TLS 1.0, smtp_tls_ciphers = medium) accept
    TLS 1.0, so it delivers over it, one connection, and the verdict is TLS (with the version)."""
    usual = postfix_rig.server.ctx
    with pytest.warns(DeprecationWarning):
        postfix_rig.server.ctx = _server_context(cert, TLS10_ONLY)
    try:
        conns, convs, statuses = postfix_deliver(postfix_rig, h.Behaviour(), "tls10-only", want="status=sent")
    finally:
        postfix_rig.server.ctx = usual
    log = postfix_rig.postfix.log()
    assert any("status=sent" in st for st in statuses), log[-3000:]
    assert len(conns) == 1 and conns[0].tls and conns[0].mail_in_tls, [c.commands for c in conns]
    (conv,) = convs
    assert verdict(conv) == ("tls", "none", "tls-established") and conv["detail"].endswith("(TLS 1.0)"), conv


# ------------------------------------------------------------------ a 1024-bit Diffie-Hellman group

#: RFC 2409 6.2, the 1024-bit MODP group (Oakley group 2): old servers' usual DHE group
OAKLEY_GROUP_2 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF", 16)


def _dh_params_pem(p: int, g: int) -> bytes:
    """PKCS#3 DHParameter (SEQUENCE of the two INTEGERs) as PEM, written by hand: the
    cryptography package deprecates finite-field Diffie-Hellman, which is the point here."""
    import base64

    def der(tag: int, body: bytes) -> bytes:
        n, k = len(body), (len(body).bit_length() + 7) // 8
        size = bytes([n]) if n < 128 else bytes([0x80 | k]) + n.to_bytes(k, "big")
        return bytes([tag]) + size + body

    def integer(v: int) -> bytes:
        return der(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))     # a leading 0: positive

    b64 = base64.encodebytes(der(0x30, integer(p) + integer(g))).replace(b"\n", b"")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return b"-----BEGIN DH PARAMETERS-----\n" + b"\n".join(lines) + b"\n-----END DH PARAMETERS-----\n"


@pytest.fixture(scope="module")
def weak_dh_server(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[Path, Path], Path]:
    """An RSA certificate (DHE_RSA suites need one) and the 1024-bit group as PKCS#3 PEM."""
    from certs import self_signed

    d = tmp_path_factory.mktemp("realclients-weak-dh")
    cert = self_signed(d, cn="localhost", dns=("localhost",), ips=("127.0.0.1",), ca=True, rsa=True)
    (d / "dh1024.pem").write_bytes(_dh_params_pem(OAKLEY_GROUP_2, 2))
    return cert, d / "dh1024.pem"


def _weak_dh_context(cert: tuple[Path, Path], params: Path) -> ssl.SSLContext:
    """TLS 1.2 with DHE_RSA suites only, over the 1024-bit group (``@SECLEVEL=0`` lets the
    server use it at all)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-SHA:@SECLEVEL=0")
    ctx.load_dh_params(str(params))
    return ctx


#: what each client does against the DHE-only server with the 1024-bit group, as observed on
#: Debian 12: "refuses-group": OpenSSL 3 at its default security level ("dh key too small", a
#: handshake_failure alert); "accepts": GnuTLS (msmtp) and Node.js's own OpenSSL settings
#: (Nodemailer) take the 1024-bit group; "no-dhe": Go offers no DHE suite, so the server finds
#: no shared cipher and ends the handshake itself
AGAINST_DH1024 = {"python-smtplib": "refuses-group", "swaks": "refuses-group", "curl": "refuses-group",
                  "msmtp": "accepts", "go-net-smtp": "no-dhe", "nodemailer": "accepts",
                  "ruby-net-smtp": "refuses-group", "phpmailer": "refuses-group"}


@pytest.mark.parametrize("name", CLIENTS)
def test_server_with_a_1024_bit_group_is_blamed(name: str, runner: Callable[[str], Runner],
                                                weak_dh_server: tuple[tuple[Path, Path], Path],
                                                tmp_path: Path) -> None:
    cert, params = weak_dh_server
    d = deliver_with(runner(name), cert, tmp_path, None, _weak_dh_context(cert, params))
    assert d.conns and d.conns[0].starttls and len(d.convs) == 1, describe(d)
    (conv,) = d.convs
    found = _tls_frames(conv)
    if not _failed_for_the_server(d, conv, AGAINST_DH1024[name] == "accepts", "tls-weak-dh"):
        return
    if AGAINST_DH1024[name] == "refuses-group":
        # The client ended the handshake at the ServerKeyExchange; its 1024-bit group caused it.
        weak = found["tls-weak-dh"]
        assert weak["side"] == "server" and conv["evidence_frame"] == weak["frame"], describe(d)
        assert weak["message"].startswith("the server's Diffie-Hellman group has 1024 bits"), describe(d)
        assert found["tls-alert"]["side"] == "client" and "handshake_failure" in found["tls-alert"]["message"]
        assert conv["explanation"]["ask"].startswith("Ask the receiving server's admin for Diffie-Hellman")
    else:
        assert "tls-weak-dh" not in found, describe(d)


@pytest.mark.slow
def test_postfix_accepts_a_1024_bit_group(postfix_rig: PostfixRig,
                                          weak_dh_server: tuple[tuple[Path, Path], Path]) -> None:
    """Postfix 3.7 (its own cipher settings, smtp_tls_ciphers = medium) takes the 1024-bit group
    and delivers in TLS: nothing to blame, and no finding."""
    cert, params = weak_dh_server
    usual = postfix_rig.server.ctx
    postfix_rig.server.ctx = _weak_dh_context(cert, params)
    try:
        conns, convs, statuses = postfix_deliver(postfix_rig, h.Behaviour(), "dh1024", want="status=sent")
    finally:
        postfix_rig.server.ctx = usual
    assert any("status=sent" in st for st in statuses), postfix_rig.postfix.log()[-3000:]
    assert len(conns) == 1 and conns[0].mail_in_tls, [c.commands for c in conns]
    (conv,) = convs
    assert verdict(conv) == ("tls", "none", "tls-established"), conv
    assert "tls-weak-dh" not in _tls_frames(conv), conv
