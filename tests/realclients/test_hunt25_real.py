"""Real clients against servers no other real-client test had (the twenty-fifth session's hunt;
captures/scenarios_hunt25.py has the generated twins).

- An EHLO reply whose last line is the code alone (``250`` CRLF) or the code and one byte
  (``250X``): swaks reads on until a line ``DDD ``, counts EHLO as failed when its timeout comes
  and greets again with HELO, then sends the mail in the clear; curl ends the reply at ``250``
  CRLF (a line of 5 bytes, ``smtp_endofresp``) and starts TLS, but waits on ``250X`` until its
  timeout; CPython smtplib ends it at either and starts TLS. pcapsmtp's client prediction said
  swaks sees STARTTLS, curl fails on ``250`` and smtplib downgrades on ``250X``; no finding named
  the server's line.
- A client that offers only TLS 1.3 (smtplib with ``minimum_version = TLSv1_3``, ``curl
  --tlsv1.3``) against an OpenSSL server whose newest version is TLS 1.2: the server sends a fatal
  protocol_version. pcapsmtp blamed the server (the alert's sender); by RFC 9325 3.1.1 (TLS 1.2 is
  a MUST) the client's offer caused it, and it now reads so (case client-tls13-only). The
  mirror, a client whose newest version is TLS 1.2 against a TLS 1.3-only server, reads the
  server's, right.
- A server that writes its TLS flight (ServerHello to ServerHelloDone) in the same write as its
  ``220 Ready to start TLS``, before any ClientHello: smtplib drops the records with its line buffer,
  sends its ClientHello and times out; curl reads them as a reply pipelined after the 220 ("Weird
  server reply") and closes. pcapsmtp blamed the client (the flight read as the answer to its
  ClientHello, or "closed after the 220 without starting TLS"); the server's bytes answer no
  ClientHello, and it now reads the server's (captures/scenarios_smtp26.py has the twins).

Marked ``live`` (tcpdump on lo, root), like every real-client test.
"""
from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import realclients_harness as h
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
from pcapsmtp.model import SMTP_PORTS

pytestmark = pytest.mark.live

CODE_ALONE = b"250-mx.example.com\r\n250-STARTTLS\r\n250\r\n"
CODE_AND_BYTE = b"250-mx.example.com\r\n250-STARTTLS\r\n250X\r\n"
#: each client's own timeout here (s): swaks waits that long for the reply's end, then HELO
WAIT = 3.0


def _analyze(pcap: Path, port: int) -> list[dict[str, Any]]:
    res = analyze_file(str(pcap), AnalysisConfig(ports=SMTP_PORTS | {port}))
    assert res.error is None, res.error
    return res.conversations


def _verdict(conv: dict[str, Any]) -> tuple[str, str, str]:
    return conv["outcome"], conv["caused_by"], conv["reason"]


def _group(conv: dict[str, Any], rule: str) -> str:
    return next(k for k, names in conv["clients"].items() if rule in names)


def _curl_rule() -> str:
    return "curl-7.88" if h._run("curl", ["curl", "--version"]).output.startswith("curl 7.") else "curl"


@pytest.mark.parametrize("reply, curl_sees", [(CODE_ALONE, True), (CODE_AND_BYTE, False)],
                         ids=["code-alone", "code-and-byte"])
def test_a_last_line_without_separator_is_read_apart_by_swaks_curl_and_smtplib(
        reply: bytes, curl_sees: bool, cert: tuple[Path, Path], tmp_path: Path) -> None:
    if shutil.which("swaks") is None or shutil.which("curl") is None:
        pytest.skip("swaks and curl are needed (apt-get install swaks curl)")
    srv = h.ByteServer(h.Behaviour(ehlo=reply), *cert)
    srv.start()
    pcap = tmp_path / "capture.pcap"
    try:
        with h.Tcpdump(pcap, srv.port):
            runs = [h.run_swaks(srv.port, cert[0], tmp_path, wait=WAIT, limit=20),
                    h.run_curl(srv.port, cert[0], tmp_path, wait=WAIT, limit=20),
                    h.run_smtplib(srv.port, cert[0], tmp_path, wait=WAIT, limit=20)]
    finally:
        srv.stop()
    why = f"{[(r.client, r.returncode, r.output[-300:]) for r in runs]} {srv.conns}"
    swaks, curl, smtplib = srv.conns
    # swaks: HELO after its timeout, the mail in the clear; smtplib: TLS; curl: TLS or its timeout
    assert [c.split(" ")[0].upper() for c in swaks.commands[:2]] == ["EHLO", "HELO"], why
    assert swaks.mail and not swaks.starttls and runs[0].returncode == 0, why
    assert smtplib.starttls and smtplib.mail_in_tls and runs[2].returncode == 0, why
    if curl_sees:
        assert curl.starttls and curl.mail_in_tls and runs[1].returncode == 0, why
    else:
        assert curl.commands == ["EHLO client.example.org"] and runs[1].returncode != 0, why
    convs = _analyze(pcap, srv.port)
    assert len(convs) == 3, why
    sw, cu, py = convs
    wire = h.tshark_wire(pcap, srv.port)
    for conv in convs:
        reply_frame = wire.ehlo_reply_frame(conv["stream"])
        assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]
                if f["code"] == "ehlo-bad-keyword"] == [("ehlo-bad-keyword", "server", reply_frame)], conv
        assert conv["starttls"]["offered"] == "valid"
    # the verdicts
    (mail,) = wire.frames(sw["stream"], command="MAIL")
    (helo,) = wire.frames(sw["stream"], command="HELO")
    assert wire.ehlo_reply_frame(sw["stream"]) < helo < mail
    # swaks (and curl on ``250X``) waited on past the line, a second or more: the server's line
    # (ehlo-rejected, case no-answer, the evidence frame the reply); smtplib and curl on ``250``
    # acted at once, taking it for the end
    assert _verdict(sw) == ("plaintext", "server", "ehlo-rejected"), sw
    assert (sw.get("case"), sw["evidence_frame"]) == ("no-answer", wire.ehlo_reply_frame(sw["stream"])), sw
    assert _verdict(py) == ("tls", "none", "tls-established"), py
    assert _verdict(cu) == (("tls", "none", "tls-established") if curl_sees
                            else ("aborted", "server", "ehlo-rejected")), cu
    if not curl_sees:
        assert (cu.get("case"), cu["evidence_frame"]) == ("no-answer", wire.ehlo_reply_frame(cu["stream"])), cu
    # the prediction, from the capture, is what each client did
    assert _group(sw, "swaks") == "downgrade"
    assert _group(py, "python-smtplib") == "see_starttls"
    assert _group(cu, _curl_rule()) == ("see_starttls" if curl_sees else "error")


# ------------------------------------------------------------------ TLS versions both refuse

class _OpenSslServer:
    """A blocking STARTTLS server: the greeting, a valid offer, 220 to STARTTLS, then OpenSSL's
    own handshake (``SSLContext.wrap_socket``), which sends its alerts (asyncio's TLS closes
    without one)."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.errors: list[str] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(15)
                try:
                    self._dialogue(conn)
                except (OSError, ssl.SSLError) as exc:
                    self.errors.append(repr(exc))

    def _dialogue(self, conn: socket.socket) -> None:
        conn.sendall(h.BANNER)
        f = conn.makefile("rb")
        while line := f.readline():
            verb = line.split(b" ")[0].strip().upper()
            if verb == b"EHLO":
                conn.sendall(h.SHAPES["C1"])
            elif verb == b"STARTTLS":
                conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                self.ctx.wrap_socket(conn, server_side=True).close()
                return
            elif verb == b"QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                conn.sendall(b"502 5.5.2 Error: command not recognized\r\n")

    def stop(self) -> None:
        self.sock.close()
        self._thread.join(5)


_SMTPLIB_VERSION = h.SMTPLIB_SCRIPT.replace(
    "import smtplib, ssl, sys",
    "import smtplib, ssl, sys\nCTX = ssl.create_default_context(cafile=sys.argv[2])\n"
    "CTX.{bound}_version = ssl.TLSVersion.{version}").replace(
    "ssl.create_default_context(cafile=ca or None)", "CTX")


def _versions_refused(cert: tuple[Path, Path], tmp: Path, server_max12: bool) -> tuple[Path, int, list[Any]]:
    """smtplib and curl against an OpenSSL server; ``server_max12``: the server's newest version
    is TLS 1.2 and the clients offer only TLS 1.3; else the server takes only TLS 1.3 and the
    clients' newest is TLS 1.2."""
    if shutil.which("curl") is None:
        pytest.skip("curl is needed (apt-get install curl)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    if server_max12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        script = _SMTPLIB_VERSION.format(bound="minimum", version="TLSv1_3")
        curl_opt = ["--tlsv1.3"]
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        script = _SMTPLIB_VERSION.format(bound="maximum", version="TLSv1_2")
        curl_opt = ["--tls-max", "1.2"]
    srv = _OpenSslServer(ctx)
    pcap = tmp / "capture.pcap"
    msg = tmp / "message.eml"
    msg.write_text(h.MESSAGE)
    try:
        with h.Tcpdump(pcap, srv.port):
            runs = [h._run("python-smtplib", [sys.executable, "-c", script, str(srv.port), str(cert[0]), h.MAIL_FROM,
                                              h.RCPT_TO, "10"], stdin=h.MESSAGE, timeout=20),
                    h._run("curl", ["curl", "-sS", "-v", "--ssl", "--cacert", str(cert[0]), *curl_opt,
                                    "--max-time", "10", f"smtp://127.0.0.1:{srv.port}/client.example.org",
                                    "--mail-from", h.MAIL_FROM, "--mail-rcpt", h.RCPT_TO, "-T", str(msg)],
                           timeout=20)]
    finally:
        srv.stop()
    why = f"{[(r.client, r.returncode, r.output[-300:]) for r in runs]} {srv.errors}"
    assert all(r.returncode != 0 for r in runs), why
    assert all("protocol version" in r.output.lower().replace("_", " ") for r in runs), why
    assert len(srv.errors) == 2 and all("UNSUPPORTED_PROTOCOL" in e for e in srv.errors), why
    return pcap, srv.port, runs


def _fields(pcap: Path, port: int, flt: str, *fields: str) -> list[tuple[str, ...]]:
    """tshark's ``fields`` of the frames ``flt`` keeps, the test port decoded as SMTP."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (apt-get install tshark)")
    args = ["tshark", "-n", "-r", str(pcap), "-d", f"tcp.port=={port},smtp", "-Y", flt, "-T", "fields"]
    for f in fields:
        args += ["-e", f]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [tuple(line.split("\t")) for line in p.stdout.splitlines()]


def _check_alert(pcap: Path, port: int, conv: dict[str, Any], offered: str) -> tuple[int, int]:
    """tshark: the ClientHello offers ``offered`` (its supported_versions, "" when absent) and the
    server's fatal protocol_version follows it; (ClientHello frame, alert frame)."""
    s = f"tcp.stream == {conv['stream']}"
    ((hello, versions),) = _fields(pcap, port, f"{s} && tls.handshake.type == 1", "frame.number",
                                   "tls.handshake.extensions.supported_version")
    ((alert,),) = _fields(pcap, port, f"{s} && tcp.srcport == {port} && tls.alert_message.desc == 70 "
                                      "&& tls.alert_message.level == 2", "frame.number")
    assert int(hello) < int(alert)
    assert versions == offered, versions
    return int(hello), int(alert)


def test_a_tls12_client_refused_by_a_tls13_only_server_is_the_servers(cert: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    pcap, port, runs = _versions_refused(cert, tmp_path, server_max12=False)
    convs = _analyze(pcap, port)
    assert len(convs) == 2
    for conv in convs:
        # (a client whose newest version is TLS 1.2 sends no supported_versions: the legacy
        # version is its offer)
        _hello, alert = _check_alert(pcap, port, conv, "")
        assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed"), conv
        assert conv["evidence_frame"] == alert
        assert ("tls-alert", "server", alert) in [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]


def test_a_tls13_only_client_refused_by_a_tls12_server_is_the_clients(cert: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    pcap, port, runs = _versions_refused(cert, tmp_path, server_max12=True)
    convs = _analyze(pcap, port)
    assert len(convs) == 2
    for conv in convs:
        hello, _alert = _check_alert(pcap, port, conv, "0x0304")
        assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed"), conv
        assert conv["evidence_frame"] == hello
        assert ("tls-version-mismatch", "client", hello) in [(f["code"], f["side"], f["frame"])
                                                              for f in conv["findings"]]


# ------------------------------------------------------------------ a TLS flight with the 220

def _canned_flight(ctx: ssl.SSLContext) -> bytes:
    """The server's first flight (TLS 1.2: ServerHello to ServerHelloDone) for a ClientHello of
    another, in-memory client: bytes that answer no ClientHello of the real client."""
    cctx = ssl.create_default_context()
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = cctx.wrap_bio(c_in, c_out, server_hostname="mx.example.com")
    server = ctx.wrap_bio(s_in, s_out, server_side=True)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    s_in.write(c_out.read())
    with pytest.raises(ssl.SSLWantReadError):
        server.do_handshake()
    return s_out.read()


class _EarlyFlightServer(_OpenSslServer):
    """Answers STARTTLS with the 220 and, in the same write, a TLS flight (a server or proxy
    that starts its TLS at once), then reads until the client leaves."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.flight = _canned_flight(ctx)
        super().__init__(ctx)

    def _dialogue(self, conn: socket.socket) -> None:
        conn.sendall(h.BANNER)
        f = conn.makefile("rb")
        while line := f.readline():
            verb = line.split(b" ")[0].strip().upper()
            if verb == b"EHLO":
                conn.sendall(h.SHAPES["C1"])
            elif verb == b"STARTTLS":
                conn.sendall(b"220 2.0.0 Ready to start TLS\r\n" + self.flight)
                while conn.recv(4096):
                    pass
                return
            else:
                conn.sendall(b"502 5.5.2 Error: command not recognized\r\n")


def test_a_tls_flight_sent_with_the_220_is_the_servers(cert: tuple[Path, Path], tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is needed (apt-get install curl)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    srv = _EarlyFlightServer(ctx)
    pcap = tmp_path / "capture.pcap"
    try:
        with h.Tcpdump(pcap, srv.port):
            runs = [h.run_smtplib(srv.port, cert[0], tmp_path, wait=WAIT, limit=20),
                    h.run_curl(srv.port, cert[0], tmp_path, wait=WAIT, limit=20)]
    finally:
        srv.stop()
    why = f"{[(r.client, r.returncode, r.output[-300:]) for r in runs]} {srv.errors}"
    assert runs[0].returncode != 0 and "timed out" in runs[0].output, why     # its ClientHello unanswered
    assert runs[1].returncode != 0 and "Weird server reply" in runs[1].output, why
    convs = _analyze(pcap, srv.port)
    assert len(convs) == 2, why
    wire = h.tshark_wire(pcap, srv.port)
    for conv in convs:
        (ready,) = [f for f in wire.frames(conv["stream"], response=220) if f > wire.ehlo_reply_frame(conv["stream"])]
        assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed"), conv
        assert conv["evidence_frame"] == ready, conv
        assert ("starttls-response-injection", "server", ready) in [(f["code"], f["side"], f["frame"])
                                                                   for f in conv["findings"]], conv
