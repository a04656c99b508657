"""Real clients against two servers no other real-client test had (the fifteenth session's hunt).

- A server whose TLS 1.3 accepts only the P-256 group (``SSLContext.set_ecdh_curve``): OpenSSL
  clients (CPython smtplib, curl) send an X25519 key share first, so the server answers their
  ClientHello with a HelloRetryRequest and, in middlebox compatibility mode, a ChangeCipherSpec
  right after it; the second ClientHello, the ServerHello and the rest follow and the mail goes
  inside TLS. pcapsmtp read the ServerHello after that ChangeCipherSpec as encrypted and blamed
  the client for a handshake "that did not complete" (``tls-handshake-failed``): it is
  ``tls-established``, with the ServerHello at tshark's frame (the second ServerHello-type message,
  not the HelloRetryRequest).
- A server (or a proxy in front of it) that answers 220 to STARTTLS and then answers the
  ClientHello with a plaintext SMTP line: OpenSSL 3 ("wrong version number") closes without an
  alert; the server ended the handshake, at that line (tshark's frame of the server's payload).

Marked ``live`` (tcpdump on lo, root), like every real-client test.
"""
from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import realclients_harness as h
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
from pcapsmtp.model import SMTP_PORTS
from runshared import LO_SMTP_PORTS, run_lock

pytestmark = pytest.mark.live

HRR_RANDOM = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"


def _analyze(pcap: Path, port: int) -> list[dict]:
    res = analyze_file(str(pcap), AnalysisConfig(ports=SMTP_PORTS | {port}))
    assert res.error is None, res.error
    return res.conversations


def test_hello_retry_request_then_tls(cert: tuple[Path, Path], tmp_path: Path) -> None:
    from tsharkfilter import tshark_fields
    srv = h.ByteServer(h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="tls"), *cert)
    srv.ctx.set_ecdh_curve("prime256v1")        # TLS 1.3 groups: P-256 only
    srv.start()
    pcap, runs = h.smtplib_and_curl(srv, cert[0], tmp_path)
    why = f"{[(r.client, r.returncode, r.output[-300:]) for r in runs]}"
    assert all(r.returncode == 0 for r in runs), why
    assert len(srv.conns) == len(runs) and all(c.tls and c.mail_in_tls for c in srv.conns), why
    convs = _analyze(pcap, srv.port)
    rows = tshark_fields(pcap, f"tcp.port == {srv.port} && tls.handshake.type == 2", "tcp.stream",
                         "frame.number", "tls.handshake.random")
    assert len(convs) == len(runs)
    for conv in convs:
        hellos = [(int(n), r.replace(":", "") == HRR_RANDOM) for s, n, r in rows if int(s) == conv["stream"]]
        assert [hrr for _, hrr in hellos] == [True, False], hellos        # the server did retry
        assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("tls", "none", "tls-established"), conv
        assert conv["tls"]["established"] is True and conv["tls"]["version"] == "TLS 1.3"
        assert conv["tls"]["server_hello_frame"] == hellos[1][0]


def _drain(s: socket.socket) -> None:
    """Read until the client leaves (10 s at most)."""
    s.settimeout(10)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass


def _starttls_server(on_starttls: Callable[[socket.socket], None]) -> tuple[socket.socket, int]:
    """A line server on 127.0.0.1 for any number of connections: the banner, the C1 EHLO reply,
    502 to anything else, and ``on_starttls`` for STARTTLS; after it the server reads until the
    client leaves (10 s at most) and closes."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)

    def one(s: socket.socket) -> None:
        with s, s.makefile("rb") as f:
            s.sendall(h.BANNER)
            for line in f:
                verb = line.split(b" ", 1)[0].strip().upper()
                if verb == b"EHLO":
                    s.sendall(h.SHAPES["C1"])
                elif verb == b"STARTTLS":
                    on_starttls(s)
                    _drain(s)
                    return
                else:
                    s.sendall(b"502 5.5.2 Error: command not recognized\r\n")

    def serve() -> None:
        while True:
            try:
                s, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(s,), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return ls, ls.getsockname()[1]


def _answer_hello_in_plaintext(s: socket.socket) -> None:
    s.sendall(b"220 2.0.0 Ready to start TLS\r\n")
    s.recv(5)
    s.sendall(b"500 5.5.2 Error: bad syntax\r\n")


def _plaintext_after_220_server() -> tuple[socket.socket, int]:
    """STARTTLS answered 220, then the ClientHello answered with '500 5.5.2 Error: bad syntax'."""
    return _starttls_server(_answer_hello_in_plaintext)


def test_clienthello_answered_in_plaintext(cert: tuple[Path, Path], tmp_path: Path) -> None:
    from tsharkfilter import frames_matching
    ls, port = _plaintext_after_220_server()
    pcap = tmp_path / "capture.pcap"
    try:
        with h.Tcpdump(pcap, port):
            run = h.run_smtplib(port, cert[0], tmp_path, wait=5, limit=15)
    finally:
        ls.close()
    assert run.returncode != 0 and "WRONG_VERSION_NUMBER" in run.output, run.output[-500:]
    (conv,) = _analyze(pcap, port)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("aborted", "server", "tls-handshake-failed")
    assert conv["detail"].startswith("the server answered the ClientHello in plaintext")
    (hello,) = frames_matching(pcap, "tls.handshake.type == 1")
    assert conv["tls"]["client_hello_frame"] == hello
    after = frames_matching(pcap, f"tcp.srcport == {port} && tcp.len > 0 && frame.number > {hello}")
    assert conv["evidence_frame"] == after[0]



SMTPS_SCRIPT = r"""
import smtplib, ssl, sys
try:
    smtplib.SMTP_SSL(sys.argv[1], 587, timeout=5, context=ssl.create_default_context()).quit()
except (ssl.SSLError, OSError, smtplib.SMTPException) as exc:
    print("error:", exc)
    sys.exit(1)
"""
#: a loopback address of its own, so that port 587 is free there whatever listens on 127.0.0.1
SUBMISSION_HOST = "127.0.0.87"


def test_tls_client_on_port_587_is_the_clients_mistake(tmp_path: Path,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    """CPython's ``SMTP_SSL`` (implicit TLS) pointed at port 587, as a client set to "SSL/TLS" with
    the submission port is: its ClientHello meets the server's plaintext banner, which is right on
    a STARTTLS port. The client's mistake (``implicit-tls-mismatch``, case ``client-tls-port``, at
    tshark's ClientHello), never the server's."""
    import sys
    from tsharkfilter import frames_matching
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        ls.bind((SUBMISSION_HOST, 587))
    except OSError as exc:
        ls.close()
        pytest.skip(f"cannot listen on {SUBMISSION_HOST}:587: {exc}")
    ls.listen(2)

    def serve() -> None:
        try:
            s, _ = ls.accept()
        except OSError:
            return
        with s:
            s.sendall(h.BANNER)
            _drain(s)
    threading.Thread(target=serve, daemon=True).start()
    pcap = tmp_path / "capture.pcap"
    try:
        # port 587 on lo: no test of another pytest-xdist worker counts on its quiet meanwhile
        with run_lock(tmp_path_factory, LO_SMTP_PORTS), h.Tcpdump(pcap, 587):
            run = h._run("python-smtplib-ssl", [sys.executable, "-c", SMTPS_SCRIPT, SUBMISSION_HOST], timeout=15)
    finally:
        ls.close()
    assert run.returncode == 1 and "WRONG_VERSION_NUMBER" in run.output, run.output[-500:]
    convs = [c for c in _analyze(pcap, 587) if c["server"]["ip"] == SUBMISSION_HOST]
    (conv,) = convs
    # (tshark dissects port 587 as SMTP: the ClientHello is the client's first payload, a handshake
    # record whose first message is of type 1)
    (hello,) = frames_matching(pcap, "tcp.dstport == 587 && tcp.payload[0] == 0x16 && tcp.payload[5] == 0x01")
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case")) == (
        "aborted", "client", "implicit-tls-mismatch", "client-tls-port"), conv["detail"]
    assert conv["evidence_frame"] == conv["tls"]["client_hello_frame"] == hello
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("implicit-tls-on-starttls-port", "client", hello)]


def test_plaintext_after_220_against_a_real_tls_server(cert: tuple[Path, Path], tmp_path: Path) -> None:
    """The harness's server starts TLS for real (CPython's ssl, OpenSSL) after its 220; a scripted
    client sends QUIT in plaintext instead of a ClientHello. OpenSSL reads no TLS record ("wrong
    version number"), sends no alert and the server closes: the client did not start TLS, never a
    capture behind a TLS terminator (``tls-decrypted``)."""
    srv = h.ByteServer(h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="tls"), *cert).start()
    pcap = tmp_path / "capture.pcap"
    try:
        with h.Tcpdump(pcap, srv.port):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s, s.makefile("rb") as f:
                f.readline()
                s.sendall(b"EHLO client.example.org\r\n")
                while f.readline()[3:4] == b"-":
                    pass
                s.sendall(b"STARTTLS\r\n")
                assert f.readline().startswith(b"220 ")
                s.sendall(b"QUIT\r\n")
                assert s.recv(100) == b""          # the server closed without a byte
    finally:
        srv.stop()
    assert "WRONG_VERSION_NUMBER" in srv.conns[0].tls_error, srv.conns[0].tls_error
    (conv,) = _analyze(pcap, srv.port)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("aborted", "client", "tls-not-started"), conv
    from tsharkfilter import frames_matching
    (quit_,) = frames_matching(pcap, f"tcp.dstport == {srv.port} && tcp.payload == 51:55:49:54:0d:0a")
    (fin,) = frames_matching(pcap, f"tcp.srcport == {srv.port} && tcp.flags.fin == 1")
    assert conv["evidence_frame"] == quit_ and fin > quit_
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("plaintext-after-starttls", "client",
                                                                             quit_)]


def _double_220_server() -> tuple[socket.socket, int]:
    """STARTTLS answered '220 ...' twice in one write (a proxy that repeats the answer)."""
    return _starttls_server(lambda s: s.sendall(b"220 2.0.0 Ready to start TLS\r\n" * 2))


def test_clients_that_refuse_a_reply_pipelined_after_the_220(cert: tuple[Path, Path], tmp_path: Path) -> None:
    """curl ("Weird server reply") and msmtp ("command STARTTLS failed") refuse the second 220, a
    reply pipelined after the 220 (the STARTTLS response-injection guard), and close without a
    ClientHello: the server's doing (``tls-not-started``, ``server``), at tshark's frame of the
    two 220s, never the client that guarded itself."""
    from tsharkfilter import frames_matching
    runs = [(n, r) for n, r in (("curl", h.run_curl), ("msmtp", h.run_msmtp)) if shutil.which(n)]
    if not runs:
        pytest.skip("neither curl nor msmtp is installed (apt-get install curl msmtp)")
    ls, port = _double_220_server()
    pcap = tmp_path / "capture.pcap"
    try:
        with h.Tcpdump(pcap, port):
            done = [run(port, cert[0], tmp_path, wait=5, limit=15) for _, run in runs]
    finally:
        ls.close()
    assert all(r.returncode != 0 for r in done), [(r.client, r.output[-300:]) for r in done]
    convs = _analyze(pcap, port)
    assert len(convs) == len(runs)
    for conv in convs:
        assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("aborted", "server", "tls-not-started"), conv
        (both,) = frames_matching(pcap, f"tcp.stream == {conv['stream']} && tcp.srcport == {port} && "
                                        "tcp.payload contains \"TLS\\x0d\\x0a220 \"")
        assert conv["evidence_frame"] == both
        assert [(f["code"], f["frame"]) for f in conv["findings"]] == [("starttls-response-injection", both)]
        assert frames_matching(pcap, f"tcp.stream == {conv['stream']} && tcp.dstport == {port} && "
                                     "tcp.payload[0] == 0x16") == []        # no ClientHello
