"""Real clients against a server no other real-client test had (the sixteenth session's hunt).

- A server whose TLS 1.3 requires a client certificate (``verify_mode = CERT_REQUIRED``) and
  clients that have none (CPython smtplib, curl): TLS 1.3 encrypts the CertificateRequest, the
  clients answer with an empty Certificate and their Finished and send their EHLO at once; the
  server (CPython's asyncio over OpenSSL: "peer did not return a certificate") closes without
  answering the Finished. pcapsmtp read the clients' records after their Finished as a completed
  handshake (``tls-established``); the server ended it, at its FIN.

Marked ``live`` (tcpdump on lo, root), like every real-client test.
"""
from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import pytest

import realclients_harness as h
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
from pcapsmtp.model import SMTP_PORTS

pytestmark = pytest.mark.live


def test_tls13_server_requiring_a_client_certificate_ended_the_handshake(cert: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    from tsharkfilter import frames_matching
    srv = h.ByteServer(h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="tls"), *cert)
    srv.ctx.verify_mode = ssl.CERT_REQUIRED
    srv.ctx.load_verify_locations(str(cert[0]))
    srv.start()
    pcap, runs = h.smtplib_and_curl(srv, cert[0], tmp_path)
    why = f"{[(r.client, r.returncode, r.output[-300:]) for r in runs]} {srv.conns}"
    assert all(r.returncode != 0 for r in runs), why
    assert len(srv.conns) == len(runs) and all(c.starttls and not c.tls and not c.mail for c in srv.conns), why
    assert all("CERTIFICATE" in c.tls_error for c in srv.conns), why
    res = analyze_file(str(pcap), AnalysisConfig(ports=SMTP_PORTS | {srv.port}))
    assert res.error is None, res.error
    assert len(res.conversations) == len(runs)
    sport = f"tcp.srcport == {srv.port}"
    for conv in res.conversations:
        s = f"tcp.stream == {conv['stream']}"
        verdict = conv["outcome"], conv["caused_by"], conv["reason"]
        assert verdict == ("aborted", "server", "tls-handshake-failed"), conv
        assert conv["tls"]["established"] is False and conv["tls"]["version"] == "TLS 1.3"
        # tshark: the client's first encrypted record (its Certificate and Finished), then the
        # server's end; the server sent no encrypted record between them. The end is a FIN, or a
        # RST when the client's EHLO reached the server's socket after OpenSSL's last read (a
        # close with unread bytes resets: RFC 1122 4.2.2.13); which one is a race on loopback.
        finished = frames_matching(pcap, f"{s} && tcp.dstport == {srv.port} && tls.record.opaque_type == 23")[0]
        end = frames_matching(pcap, f"{s} && {sport} && (tcp.flags.fin == 1 || tcp.flags.reset == 1)")[0]
        later = frames_matching(pcap, f"{s} && {sport} && tls.record.opaque_type == 23 && frame.number > {finished}")
        assert end > finished and later == [], (finished, end, later)
        assert conv["evidence_frame"] == end, conv
        assert f"after the client's Finished (frame {finished}) without answering it" in conv["detail"], conv


def test_starttls_with_a_trailing_space_is_missed_by_swaks_alone(cert: tuple[Path, Path], tmp_path: Path) -> None:
    """``250 STARTTLS `` (a space after the keyword): swaks compares the whole rest of the line with
    the keyword and stays in plaintext, curl takes the prefix and starts TLS; pcapsmtp reports the
    server's line (``ehlo-bad-keyword``) and predicts exactly that."""
    if shutil.which("swaks") is None or shutil.which("curl") is None:
        pytest.skip("swaks and curl are needed (apt-get install swaks curl)")
    srv = h.ByteServer(h.Behaviour(ehlo=b"250-mx.example.com\r\n250-8BITMIME\r\n250 STARTTLS \r\n"), *cert)
    srv.start()
    pcap = tmp_path / "capture.pcap"
    try:
        with h.Tcpdump(pcap, srv.port):
            runs = [h.run_swaks(srv.port, cert[0], tmp_path, wait=10, limit=20),
                    h.run_curl(srv.port, cert[0], tmp_path, wait=10, limit=20)]
    finally:
        srv.stop()
    why = f"{[(r.client, r.returncode, r.output[-300:]) for r in runs]} {srv.conns}"
    assert all(r.returncode == 0 for r in runs), why
    assert [c.starttls for c in srv.conns] == [False, True], why
    res = analyze_file(str(pcap), AnalysisConfig(ports=SMTP_PORTS | {srv.port}))
    assert res.error is None, res.error
    swaks, curl = res.conversations
    assert (swaks["outcome"], swaks["reason"]) == ("plaintext", "client-did-not-request"), swaks
    assert (curl["outcome"], curl["reason"]) == ("tls", "tls-established"), curl
    for conv in (swaks, curl):
        assert conv["starttls"]["offered"] == "valid"
        reply_frame = conv["ehlo_reply"]["frames"][0]
        assert [(f["code"], f["frame"]) for f in conv["findings"]] == [("ehlo-bad-keyword", reply_frame)]
        assert "swaks" in conv["clients"]["downgrade"] and "curl" in conv["clients"]["see_starttls"]
