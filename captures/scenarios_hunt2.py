"""Misbehaving servers and clients around STARTTLS that no capture pinned before (the sixteenth
session's hunt): each one a verdict that was wrong, or a behaviour worth keeping read right.

- ``hunt2-tls13-client-cert-required.pcap``: a TLS 1.3 server that requires a client certificate
  (Postfix ``smtpd_tls_req_ccert``, an Exchange receive connector with certificate
  authentication, a relay with mutual TLS) and a client that has none. TLS 1.3 encrypts the
  CertificateRequest; the client answers with an empty Certificate and its Finished and, done
  with its handshake, sends its EHLO at once. The server checks the client's side only then: it
  sends an encrypted alert (certificate_required, a 19-byte record) and closes. The server ended
  the handshake (was: ``tls-established``, for the client's records after its Finished).
- ``hunt2-tls13-server-closes-after-finished.pcap``: the same without the alert, as CPython's
  asyncio server closes (tests/realclients/test_hunt2_real.py): the server closes after the
  client's Finished and resets the client's EHLO (was: ``tls-established``).
- ``hunt2-tls13-server-resets-after-finished.pcap``: the other ending of that race: the client's
  EHLO reached the server before its close, unread, so the server's close is a reset alone.
- ``hunt2-tls13-client-cert-fallback.pcap``: that failure, then the client's plaintext retry to
  the same server (Postfix at ``may``, Exim's ``tls_tempfail_tryclear``): ``tls-fallback``
  caused by the server (was: ``tls`` and the retry ``client-did-not-request``).
- ``hunt2-tls13-resumed.pcap`` and ``hunt2-tls12-resumed.pcap`` (read right, kept): resumed
  sessions as Postfix's session cache gives them, TLS 1.3 PSK (no certificate, a short
  encrypted flight) and a TLS 1.2 abbreviated handshake (the server's ChangeCipherSpec and
  Finished before the client's): established.
- ``hunt2-ehlo-starttls-trailing-space.pcap``: the EHLO reply's last line is ``250 STARTTLS ``
  with a space after the keyword: OpenSMTPD, swaks and Haraka compare the whole line and do not
  see it; an ``ehlo-bad-keyword`` finding (was: nothing, exit status 0).
- ``hunt2-tls12-server-silent-after-finished.pcap`` and
  ``hunt2-tls13-server-silent-after-finished.pcap``: the client's side of the handshake is done
  (TLS 1.2: its ChangeCipherSpec and Finished; TLS 1.3: its Finished and its EHLO) and the server,
  which acknowledged it, sends nothing for 30 s until the client closes: the server never answered
  (``server-silent``; was: the client, for closing "after the ServerHello", and in TLS 1.3
  ``tls-established``).
- ``hunt2-tls13-reset-forged-after-finished.pcap``: TLS 1.3; after the client's Finished and its
  EHLO a reset with the server's address but another TTL (a DPI box or IPS that lets the
  handshake through and kills the session) ends the connection: the box's doing, case
  ``reset-forged`` (was: ``tls-established``, for the client's records after its Finished).
- ``hunt2-pipelined-ehlo-starttls.pcap`` (read right, kept): the client pipelines EHLO and
  STARTTLS in one segment (RFC 2920 wants STARTTLS, like EHLO, last in a group: a client that
  does not wait for the extension list), the server answers both in one segment, TLS 1.2 follows.
- ``hunt2-auth-plain-before-starttls.pcap``: a submission client sends ``AUTH PLAIN`` with its
  credentials (the initial response) before STARTTLS; the server answers 538 (RFC 4954:
  encryption required), the client then does STARTTLS and sends the mail inside TLS. The
  credentials crossed in the clear: ``plaintext``, ``client-did-not-request`` (was: ``tls``).
  ``hunt2-auth-login-refused-then-starttls.pcap`` (read right, kept): ``AUTH LOGIN`` without an
  initial response refused with 530 carries no credentials; TLS follows: ``tls``.
- ``hunt2-auth-line-lost-then-starttls.pcap``: AUTH PLAIN, 334, the client's SASL line lost by
  the capture, 235, then STARTTLS: the 235 shows the credentials crossed (``plaintext``).
- ``hunt2-auth-external-then-starttls.pcap`` (read right since 17th session's review): ``AUTH
  EXTERNAL =`` accepted before STARTTLS sends no secret: ``tls``.
- ``hunt2-mail-in-clear-then-starttls.pcap``: a message delivered in the clear, then STARTTLS and
  a second message inside TLS on the same connection: the first went in the clear
  (``plaintext``; was: ``tls``).
- ``pathhole-client-flight-tls12.pcap``: TLS 1.2 with a client certificate: the client's
  flight (a 1.8 KB Certificate, ClientKeyExchange, ChangeCipherSpec, Finished) never reaches the
  server (a path MTU black hole): the server's acknowledgements stay before it, the client sends
  it again three times and gives up 30 s later. The path's doing (``middlebox``, finding
  ``request-not-received``; was: the client, for closing "after the ServerHello").
"""
from __future__ import annotations

from generate import (
    BANNER, EHLO, EHLO_NO_TLS, EHLO_OK, MAIL_STEPS, QUIT_STEPS, READY, STARTTLS, Capture, Conv, Expect, app_data,
    certificate, client_hello, client_finish_tls12, det, did_not_request_conv, ext, handshake, lines, mail_in_clear,
    opening, record, server_flight_tls12, starttls_ok, u8, u16, u24,
)
from scenarios_hunt import CCS, _server_hello13

CERT_FAILED = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220)


def _enc(label: str, n: int) -> bytes:
    return record(23, det(label, n))


def _client_cert_refused(conv: Conv, label: str, *, alert: bool) -> Conv:
    """STARTTLS, 220, a TLS 1.3 handshake whose server asked (encrypted) for a client certificate:
    the client's empty Certificate and Finished, its EHLO right after, then the server's encrypted
    alert and its close, or (``alert=False``) its close at once, which the client's EHLO crosses
    (the server resets it)."""
    _tls13_certificate_flight(opening(conv), label)
    if alert:
        conv.c(_enc(label + " ehlo", len(EHLO) + 17), tag="client_ehlo", delay_ms=0.3)
        conv.s(_enc(label + " alert certificate_required", 19), tag="alert", delay_ms=0.4)
    else:
        # the server's FIN comes first, the client's EHLO crosses it and is reset
        conv.fin("S", delay_ms=0.3, acked=False)
        conv.c(_enc(label + " ehlo", len(EHLO) + 17), tag="client_ehlo", delay_ms=0.01, acked=False)
        conv.rst("S", delay_ms=0.02)
    return conv


def _tls13_certificate_flight(conv: Conv, label: str) -> Conv:
    """STARTTLS, 220, a TLS 1.3 ClientHello, the server's flight with an (encrypted)
    CertificateRequest, the client's empty Certificate and its Finished."""
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(label, "mx.example.com", tls13=True), tag="client_hello")
    # EncryptedExtensions, CertificateRequest, Certificate, CertificateVerify, Finished
    flight = b"".join(_enc(f"{label} server {k}", n) for k, n in enumerate([23, 62, 800, 95, 69]))
    conv.s(_server_hello13(label) + CCS + flight, tag="server_hello")
    # an empty Certificate (8 bytes + inner type + tag) and a SHA-384 Finished
    return conv.c(CCS + _enc(label + " client certificate", 25) + _enc(label + " client finished", 69),
                  tag="client_finished")


def client_cert_required() -> Capture:
    c = _client_cert_refused(Conv(cport=45101, close=("fin", "S")), "hunt2 ccert", alert=True)
    return Capture(
        "hunt2-tls13-client-cert-required.pcap",
        "STARTTLS, 220, TLS 1.3; the server asks for a client certificate, the client has none: its empty "
        "Certificate and Finished, its EHLO; the server answers with an encrypted alert and closes: the server "
        "ended the handshake",
        [(c, Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                    findings=[("tls-alert", "server", "alert")]))])


def server_closes_after_finished() -> Capture:
    c = _client_cert_refused(Conv(cport=45102, close=None), "hunt2 close", alert=False)
    return Capture(
        "hunt2-tls13-server-closes-after-finished.pcap",
        "STARTTLS, 220, TLS 1.3; the client's Certificate and Finished, then its EHLO; the server closes without "
        "an alert (CPython's asyncio server refusing a client without a certificate) and resets the EHLO: the "
        "server ended the handshake",
        [(c, CERT_FAILED)])


def server_resets_after_finished() -> Capture:
    """The race of the real test's other ending: the client's EHLO reached the server's socket
    before the server closed, unread (OpenSSL had stopped at the Finished), so the close is a RST
    (RFC 1122 4.2.2.13) with the server's own TTL, and no FIN."""
    label = "hunt2 reset"
    c = _tls13_certificate_flight(opening(Conv(cport=45114, close=None, isn=(0x45114000, 0x81045114))), label)
    c.c(_enc(label + " ehlo", len(EHLO) + 17), tag="client_ehlo", delay_ms=0.01)
    c.rst("S", delay_ms=0.3)
    return Capture(
        "hunt2-tls13-server-resets-after-finished.pcap",
        "STARTTLS, 220, TLS 1.3; the client's Certificate and Finished, then its EHLO, which the server acknowledged; "
        "the server resets (its own TTL) without answering the Finished: the server ended the handshake",
        [(c, CERT_FAILED)])


def client_cert_fallback() -> Capture:
    failed = _client_cert_refused(Conv(cport=45103, close=("fin", "S")), "hunt2 retry", alert=True)
    retry = did_not_request_conv(cport=45104, isn=(0x45104000, 0x91045000), start_offset_ms=50)
    return Capture(
        "hunt2-tls13-client-cert-fallback.pcap",
        "hunt2-tls13-client-cert-required.pcap's failure, then 50 ms later the client's retry to the same server: "
        "valid offer, no STARTTLS, mail in clear (Postfix at may, Exim's tls_tempfail_tryclear)",
        [(failed, Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         findings=[("tls-alert", "server", "alert")])),
         (retry, Expect("plaintext", "server", "tls-fallback", "valid"))])


def _inside(conv: Conv, label: str, overhead: int) -> Conv:
    for k, (side, text) in enumerate([("C", EHLO), ("S", EHLO_NO_TLS)] + MAIL_STEPS + QUIT_STEPS):
        conv.step(side, record(23, det(f"{label} data {k}", len(text) + overhead)))
    return conv


def tls13_resumed() -> Capture:
    label = "hunt2 psk"
    c = opening(Conv(cport=45105))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello(label, "mx.example.com", tls13=True), tag="client_hello")
    # a PSK handshake: EncryptedExtensions and Finished only, no certificate
    c.s(_server_hello13(label) + CCS + _enc(label + " ee", 23) + _enc(label + " finished", 53), tag="server_hello")
    c.c(CCS + _enc(label + " client finished", 53))
    _inside(c, label, 17)
    return Capture(
        "hunt2-tls13-resumed.pcap",
        "STARTTLS, 220, a resumed TLS 1.3 session (PSK: the server's flight is EncryptedExtensions and Finished, "
        "no certificate); the mail goes inside TLS",
        [(c, Expect("tls", "none", "tls-established", "valid", True, 220))])


def tls12_resumed() -> Capture:
    label = "hunt2 abbreviated"
    c = opening(Conv(cport=45106))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello(label, "mx.example.com"), tag="client_hello")
    exts = ext(0xFF01, u8(0)) + ext(23, b"")
    sh = record(22, handshake(2, u16(0x0303) + det(label + " server random", 32) + u8(32)
                              + det(label + " session", 32) + u16(0xC02B) + u8(0) + u16(len(exts)) + exts))
    # the abbreviated handshake: the server's ChangeCipherSpec and Finished come first
    c.s(sh + CCS + record(22, det(label + " server finished", 40)), tag="server_hello")
    c.c(CCS + record(22, det(label + " client finished", 40)))
    for k, (side, text) in enumerate([("C", EHLO), ("S", EHLO_NO_TLS)] + MAIL_STEPS + QUIT_STEPS):
        c.step(side, app_data(f"{label} data {k}", len(text)))
    return Capture(
        "hunt2-tls12-resumed.pcap",
        "STARTTLS, 220, a resumed TLS 1.2 session (the abbreviated handshake: ServerHello, the server's "
        "ChangeCipherSpec and Finished, then the client's); the mail goes inside TLS",
        [(c, Expect("tls", "none", "tls-established", "valid", True, 220))])


def trailing_space() -> Capture:
    reply = lines("250-mx.example.com", "250-PIPELINING", "250-SIZE 10240000", "250-8BITMIME", "250 STARTTLS ")
    c = mail_in_clear(opening(Conv(cport=45107), reply))
    return Capture(
        "hunt2-ehlo-starttls-trailing-space.pcap",
        "EHLO reply's last line '250 STARTTLS ' (a space after the keyword: OpenSMTPD, swaks and Haraka miss it); "
        "the client does not request it, mail in clear",
        [(c, Expect("plaintext", "client", "client-did-not-request", "valid",
                    findings=[("ehlo-bad-keyword", "server", "ehlo_reply")]))])


def server_silent_after_finished(tls13: bool) -> Capture:
    v = "13" if tls13 else "12"
    label = f"hunt2 silent {v}"
    c = opening(Conv(cport=45111 if tls13 else 45112, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello(label, "mx.example.com", tls13=tls13), tag="client_hello")
    if tls13:
        flight = b"".join(_enc(f"{label} server {k}", n) for k, n in enumerate([23, 800, 95, 69]))
        c.s(_server_hello13(label) + CCS + flight, tag="server_hello")
        c.c(CCS + _enc(label + " client finished", 69), tag="client_finished")
        c.c(_enc(label + " ehlo", len(EHLO) + 17), delay_ms=0.3)
    else:
        c.s(server_flight_tls12(label, "mx.example.com")[0], tag="server_hello")
        c.c(client_finish_tls12(label), tag="client_finished")
    c.fin("C", delay_ms=30000)
    return Capture(
        f"hunt2-tls{v}-server-silent-after-finished.pcap",
        f"STARTTLS, 220, TLS 1.{v[1]}: the client's side of the handshake is done (its Finished"
        + (" and its EHLO" if tls13 else "") + "), the server acknowledges it and sends nothing for 30 s; the "
        "client closes: the server never answered",
        [(c, Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                    findings=[("no-answer", "server", "client_finished")]))])


def reset_forged_after_finished() -> Capture:
    label = "hunt2 forged"
    c = opening(Conv(cport=45113, close=None, isn=(0x45113000, 0x81045113)))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello(label, "mx.example.com", tls13=True), tag="client_hello")
    flight = b"".join(_enc(f"{label} server {k}", n) for k, n in enumerate([23, 800, 95, 69]))
    c.s(_server_hello13(label) + CCS + flight, tag="server_hello")
    c.c(CCS + _enc(label + " client finished", 69), tag="client_finished")
    c.c(_enc(label + " ehlo", len(EHLO) + 17), delay_ms=0.3, acked=False)
    c.rst("S", ttl=250, label="forged", delay_ms=0.5)
    return Capture(
        "hunt2-tls13-reset-forged-after-finished.pcap",
        "STARTTLS, 220, TLS 1.3: the client's Finished and its EHLO, then a reset with the server's address and "
        "TTL 250 (the server's segments: 52): a box on the path ended it",
        [(c, Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                    findings=[("reset-forged", "middlebox", "label:forged")]))])


def pipelined_ehlo_starttls() -> Capture:
    label = "hunt2 pipelined"
    c = Conv(cport=45114)
    c.s(BANNER, tag="banner").c(EHLO + STARTTLS, tag="greeting", marks={"starttls": STARTTLS})
    c.s(EHLO_OK + READY, tag="ehlo_reply", marks={"starttls_reply": READY})
    c.c(client_hello(label, "mx.example.com"), tag="client_hello")
    c.s(server_flight_tls12(label, "mx.example.com")[0], tag="server_hello")
    c.c(client_finish_tls12(label)).s(CCS + record(22, det(label + " server finished", 40)))
    for k, (side, text) in enumerate([("C", EHLO), ("S", EHLO_NO_TLS)] + MAIL_STEPS + QUIT_STEPS):
        c.step(side, app_data(f"{label} data {k}", len(text)))
    return Capture(
        "hunt2-pipelined-ehlo-starttls.pcap",
        "EHLO and STARTTLS pipelined in one segment; the EHLO reply (valid offer) and the 220 in one segment; "
        "TLS 1.2 with the mail inside",
        [(c, Expect("tls", "none", "tls-established", "valid", True, 220))])


AUTH_REPLY = lines("250-mx.example.com", "250-PIPELINING", "250-AUTH PLAIN LOGIN", "250-STARTTLS", "250 8BITMIME")


def auth_before_starttls(initial: bool) -> Capture:
    c = opening(Conv(cport=45108 if initial else 45109), AUTH_REPLY)
    if initial:
        c.c(b"AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\n", tag="auth")
        c.s(b"538 5.7.11 Encryption required for requested authentication mechanism\r\n")
    else:
        c.c(b"AUTH LOGIN\r\n", tag="auth").s(b"530 5.7.0 Must issue a STARTTLS command first\r\n")
    starttls_ok(c, f"hunt2 auth {initial}")
    if initial:
        return Capture(
            "hunt2-auth-plain-before-starttls.pcap",
            "valid offer; AUTH PLAIN with its initial response (credentials) in the clear, 538; then STARTTLS, 220, "
            "TLS 1.2 with the mail inside: the credentials crossed unprotected",
            [(c, Expect("plaintext", "client", "client-did-not-request", "valid", True, 220))])
    return Capture(
        "hunt2-auth-login-refused-then-starttls.pcap",
        "valid offer; AUTH LOGIN without an initial response, refused with 530 (no credentials sent); then "
        "STARTTLS, 220, TLS 1.2 with the mail inside",
        [(c, Expect("tls", "none", "tls-established", "valid", True, 220))])


def auth_line_lost_then_starttls() -> Capture:
    """AUTH PLAIN without an initial response, the server's 334, the client's SASL line, which
    the server acknowledged and the capture lost, the server's 235; then STARTTLS and TLS. The
    235 after the 334 shows the credentials crossed (RFC 4954 6), though their line is not in
    the capture."""
    c = opening(Conv(cport=45115, isn=(0x45115000, 0x81045115)), AUTH_REPLY)
    c.c(b"AUTH PLAIN\r\n", tag="auth").s(b"334 \r\n")
    c.c(b"AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\n", lost=[0])
    c.s(b"235 2.7.0 Authentication successful\r\n", tag="accepted")
    starttls_ok(c, "hunt2 auth line lost")
    return Capture(
        "hunt2-auth-line-lost-then-starttls.pcap",
        "valid offer; AUTH PLAIN, 334, the client's SASL line lost by the capture (acknowledged), 235; then "
        "STARTTLS, 220, TLS 1.2 with the mail inside: the 235 shows the credentials crossed in the clear",
        [(c, Expect("plaintext", "client", "client-did-not-request", "valid", True, 220,
                    findings=[("tcp-gap", "capture", "accepted")]))])


def auth_external_then_starttls() -> Capture:
    """``AUTH EXTERNAL =`` accepted with 235, then STARTTLS and TLS: EXTERNAL sends no secret
    (RFC 4422 appendix A), so no credentials crossed in the clear."""
    c = opening(Conv(cport=45116, isn=(0x45116000, 0x81045116)), AUTH_REPLY)
    c.c(b"AUTH EXTERNAL =\r\n", tag="auth").s(b"235 2.7.0 Authentication successful\r\n")
    starttls_ok(c, "hunt2 auth external")
    return Capture(
        "hunt2-auth-external-then-starttls.pcap",
        "valid offer; AUTH EXTERNAL with an empty initial response, 235; then STARTTLS, 220, TLS 1.2 with the mail "
        "inside: EXTERNAL carries no secret",
        [(c, Expect("tls", "none", "tls-established", "valid", True, 220))])


def mail_in_clear_then_starttls() -> Capture:
    c = opening(Conv(cport=45110))
    mail_in_clear(c, quit=False, first_tag="mail")
    starttls_ok(c, "hunt2 mail first")
    return Capture(
        "hunt2-mail-in-clear-then-starttls.pcap",
        "valid offer; a message in the clear (MAIL, RCPT, DATA, 250), then STARTTLS, 220, TLS 1.2 with a second "
        "message inside: the first went in the clear",
        [(c, Expect("plaintext", "client", "client-did-not-request", "valid", True, 220))])


def client_certificate_flight(label: str) -> bytes:
    """A TLS 1.2 client's flight after the ServerHello with a client certificate chain of five
    (a leaf and four CAs: 1.8 KB, more than one full-size segment): Certificate,
    ClientKeyExchange, ChangeCipherSpec, Finished."""
    certs = [certificate(f"{label} client {k}") for k in range(5)]
    chain = b"".join(u24(len(cert)) + cert for cert in certs)
    return record(22, handshake(11, u24(len(chain)) + chain)) + client_finish_tls12(label)


def client_flight_blackholed() -> Capture:
    label = "hunt2 blackhole"
    c = opening(Conv(cport=45115, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello(label, "mx.example.com"), tag="client_hello")
    c.s(server_flight_tls12(label, "mx.example.com")[0], tag="server_hello")
    c.c(client_certificate_flight(label), tag="client_flight", marks={"client_ccs": CCS},
        resend_ms=(1000, 3000, 7000))
    c.fin("C", delay_ms=30000)
    return Capture(
        "pathhole-client-flight-tls12.pcap",
        "STARTTLS, 220, TLS 1.2: the client's flight with a 1.8 KB client certificate chain never reaches the server "
        "(its acknowledgements stay before it); the client resends it at 1, 3 and 7 s and closes 30 s later",
        [(c, Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                    findings=[("request-not-received", "middlebox", "client_ccs")]))])


def scenarios() -> list[Capture]:
    return [client_cert_required(), server_closes_after_finished(), server_resets_after_finished(),
            client_cert_fallback(), tls13_resumed(),
            tls12_resumed(), trailing_space(), server_silent_after_finished(False), server_silent_after_finished(True),
            reset_forged_after_finished(), pipelined_ehlo_starttls(), auth_before_starttls(True),
            auth_before_starttls(False), mail_in_clear_then_starttls(), auth_line_lost_then_starttls(),
            client_flight_blackholed(), auth_external_then_starttls()]
