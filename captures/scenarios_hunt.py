"""Misbehaving servers and clients around STARTTLS that no capture pinned before (the fifteenth
session's hunt): each one a verdict that was wrong.

- ``hunt-hello-answered-plaintext.pcap``: the server (or a proxy in front of it that passed
  STARTTLS and its 220 through) answers the ClientHello with a plaintext SMTP line; the client's
  TLS stack sends a fatal ``protocol_version`` ("wrong version number") and closes (OpenSSL 3.0,
  GnuTLS and Go close without an alert there: tests/realclients/test_hunt_real.py). The alert
  answers the server's plaintext: the server ended the handshake (was: the client, for its alert).
- ``hunt-hrr-established.pcap``: a TLS 1.3 handshake with a HelloRetryRequest (the client's key
  share is not one the server accepts), as OpenSSL servers send it in middlebox compatibility
  mode: HelloRetryRequest and a ChangeCipherSpec, the client's ChangeCipherSpec and second
  ClientHello, then the ServerHello in clear and the encrypted flight. Completed (was: the
  ServerHello read as encrypted after the server's ChangeCipherSpec, and the session blamed for a
  close "before the ServerHello").
- ``hunt-client-plaintext-after-220.pcap``: after the 220 the client goes on with ``EHLO`` in
  plaintext (a client that does not really speak TLS) and the server answers with a TLS alert: the
  client did not start TLS (was: a decrypted capture, ``tls``).
- ``hunt-ehlo-reset-mid-reply.pcap`` and ``hunt-ehlo-closed-unanswered.pcap``: the server resets
  the connection in the middle of its EHLO reply, or closes it instead of answering EHLO: no
  extension list ever reached the client, so STARTTLS could not be negotiated, the server's doing
  (``ehlo-rejected``; was: a well-formed reply without STARTTLS, or the client leaving without mail).
- ``hunt-ehlo-421-server-closes.pcap``: EHLO refused with 421 and the server closes: the detail
  says the server closed (was: the client left, as a client that requires TLS does).
- ``hunt-tls-client-on-587.pcap`` and ``hunt-tls-client-on-25.pcap``: a client set to implicit
  TLS ("SSL/TLS") against a STARTTLS port; the server's plaintext greeting is right there, so the
  mismatch is the client's (was: the server's, as on the SMTPS port 465).
- ``hunt-starttls-before-ehlo.pcap`` and ``hunt-starttls-again-after-454.pcap``: a STARTTLS refused
  (503 before EHLO; 454), then another answered 220 and TLS with the mail inside: ``tls`` (was: the
  first refusal, ``starttls-refused``).
- ``hunt-client-quit-after-220.pcap``: after the 220 the client sends QUIT in plaintext and the server
  closes without a readable answer (OpenSSL sends no alert for a first record that is no TLS): the
  client did not start TLS (was: a decrypted capture, ``tls``).
- ``hunt-ehlo-again-after-4xx.pcap``: EHLO answered 451, EHLO again with a valid offer, mail in clear:
  the client's choice (was: ``ehlo-rejected``, "the HELO fallback has no extensions").
- ``hunt-double-220-client-refuses.pcap`` and ``hunt-double-220-hello-closed.pcap``: STARTTLS answered
  with the 220 twice; the client refuses the pipelined line (curl, msmtp) or its TLS chokes on it:
  the server's plaintext after its 220 broke the start (was: the client, for closing).
- ``hunt-fallback-after-success.pcap``: a failed handshake, a successful STARTTLS between the same
  hosts, then a plaintext conversation: no retry after the failure (the client showed it starts
  TLS there), so the client's ``client-did-not-request`` (was: ``tls-fallback`` blaming the server).
"""
from __future__ import annotations

from generate import (
    ALERT_SERVER_EXPECT, BANNER, DID_NOT_REQUEST, EHLO, EHLO_NO_TLS, EHLO_OK, MAIL_STEPS, QUIT_STEPS, READY,
    STARTTLS, TLS_OK, Capture, Conv, Expect, alert, client_hello, det, did_not_request_conv, ext, handshake,
    mail_in_clear, opening, record, starttls_ok, tls_alert_server_conv, u8, u16, x25519_pub,
)

#: RFC 8446 4.1.3: the random of a HelloRetryRequest
HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")
CCS = record(20, b"\x01")


def hello_answered_plaintext() -> Capture:
    c = opening(Conv(cport=43101, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello("hunt plaintext", "mx.example.com", tls13=True), tag="client_hello")
    c.s(b"500 5.5.2 Error: bad syntax\r\n", tag="plaintext")
    c.c(alert(70), tag="alert")
    return Capture(
        "hunt-hello-answered-plaintext.pcap",
        "STARTTLS, 220, ClientHello; the server answers the ClientHello with a plaintext '500 5.5.2 Error: bad "
        "syntax' (it does not speak TLS there), the client sends a fatal protocol_version alert and closes: the "
        "server ended the handshake",
        [(c, Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                    findings=[("tls-alert", "client", "alert")]))])


def _hrr(label: str) -> bytes:
    exts = ext(43, u16(0x0304)) + ext(51, u16(0x0017))          # supported_versions, key_share: secp256r1
    return record(22, handshake(2, u16(0x0303) + HRR_RANDOM + u8(32) + det(label + " session id", 32)
                                + u16(0x1302) + u8(0) + u16(len(exts)) + exts))


def _server_hello13(label: str) -> bytes:
    share = x25519_pub(label + " server share")
    exts = ext(43, u16(0x0304)) + ext(51, u16(0x0017) + u16(len(share)) + share)
    return record(22, handshake(2, u16(0x0303) + det(label + " server random", 32) + u8(32)
                                + det(label + " session id", 32) + u16(0x1302) + u8(0) + u16(len(exts)) + exts))


def hrr_established() -> Capture:
    label = "hunt hrr"
    c = opening(Conv(cport=43102))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello(label, "mx.example.com", tls13=True), tag="client_hello")
    c.s(_hrr(label) + CCS, tag="hrr")
    c.c(CCS + client_hello(label + " 2", "mx.example.com", tls13=True), tag="client_hello2")
    flight = b"".join(record(23, det(f"{label} server enc {k}", n)) for k, n in enumerate([23, 700, 95, 69]))
    c.s(_server_hello13(label) + flight, tag="server_hello")
    c.c(record(23, det(label + " client finished", 69)))
    for k, (side, text) in enumerate([("S", det(label + " tickets", 233))] + [("C", EHLO), ("S", EHLO_NO_TLS)]
                                     + MAIL_STEPS + QUIT_STEPS):
        c.step(side, record(23, det(f"{label} data {k}", len(text) + 17)))
    return Capture(
        "hunt-hrr-established.pcap",
        "TLS 1.3 with a HelloRetryRequest, as an OpenSSL server sends it (HelloRetryRequest and a compatibility "
        "ChangeCipherSpec; the client's ChangeCipherSpec and second ClientHello; the ServerHello in clear and "
        "the encrypted flight); the handshake completes and the mail goes inside TLS",
        [(c, Expect("tls", "none", "tls-established", "valid", True, 220))])


def client_plaintext_after_220() -> Capture:
    c = opening(Conv(cport=43103, close=("fin", "S")))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(EHLO, tag="plaintext").s(alert(70), tag="alert")
    return Capture(
        "hunt-client-plaintext-after-220.pcap",
        "STARTTLS answered 220; the client goes on with EHLO in plaintext instead of a ClientHello, and the "
        "server answers with a fatal protocol_version alert and closes: the client did not start TLS",
        [(c, Expect("aborted", "client", "tls-not-started", "valid", True, 220,
                    findings=[("plaintext-after-starttls", "client", "plaintext")]))])


def ehlo_reset_mid_reply() -> Capture:
    c = Conv(cport=43104, close=None)
    c.s(BANNER, tag="banner").c(EHLO, tag="greeting")
    c.s(EHLO_OK[:EHLO_OK.index(b"250-STARTTLS") + 8], tag="ehlo_reply")
    c.rst("S", delay_ms=2)
    return Capture(
        "hunt-ehlo-reset-mid-reply.pcap",
        "the server resets the connection in the middle of its EHLO reply, right after the first 8 bytes of its "
        "'250-STARTTLS' line: the reply never ended, no client read its extension list",
        [(c, Expect("aborted", "server", "ehlo-rejected", "unknown"))])


def ehlo_closed_unanswered() -> Capture:
    c = Conv(cport=43105, close=None)
    c.s(BANNER, tag="banner").c(EHLO, tag="greeting")
    c.fin("S", delay_ms=3, acked=False).fin("C", delay_ms=1)
    return Capture(
        "hunt-ehlo-closed-unanswered.pcap",
        "the server closes the connection instead of answering EHLO (a crashed or overloaded smtpd); the "
        "client closes too",
        [(c, Expect("aborted", "server", "ehlo-rejected", "unknown"))])


def ehlo_421_server_closes() -> Capture:
    c = Conv(cport=43106, close=("fin", "S"))
    c.s(BANNER, tag="banner").c(EHLO, tag="greeting")
    c.s(b"421 4.7.0 mx.example.com Error: too many connections\r\n", tag="ehlo_reply")
    return Capture(
        "hunt-ehlo-421-server-closes.pcap",
        "EHLO answered 421 and the server closes the connection (RFC 5321 3.8)",
        [(c, Expect("aborted", "server", "ehlo-rejected", "unknown"))])


def fallback_after_success() -> Capture:
    ok = starttls_ok(opening(Conv(cport=43108, isn=(0x43108000, 0x81034000), start_offset_ms=1000)), "hunt ok")
    later = did_not_request_conv(cport=43109, isn=(0x43109000, 0x91034000), start_offset_ms=1000)
    return Capture(
        "hunt-fallback-after-success.pcap",
        "stream 0 as tls-alert-server.pcap; 1 s later stream 1 between the same hosts: STARTTLS and TLS 1.2 "
        "complete; 1 s after it stream 2: valid offer, no STARTTLS, mail in clear (no retry after stream 0's "
        "failure: the client's choice)",
        [(tls_alert_server_conv(cport=43107), ALERT_SERVER_EXPECT), (ok, TLS_OK), (later, DID_NOT_REQUEST)])


def tls_client_on_starttls_port(sport: int, cport: int) -> Capture:
    """A client set to implicit TLS ("SSL/TLS") against a STARTTLS port: its ClientHello goes out
    right after the TCP handshake and crosses the server's plaintext banner; its TLS library gives
    up on the banner ("wrong version number") and closes, then the server closes."""
    c = Conv(cport=cport, sport=sport, close=("fin", "C"))
    c.c(client_hello(f"hunt tls on {sport}", "mx.example.com"), tag="client_hello", delay_ms=1)
    c.s(BANNER, tag="banner", delay_ms=0.2)
    return Capture(
        f"hunt-tls-client-on-{sport}.pcap",
        f"port {sport} (STARTTLS): the client opens with a TLS ClientHello (implicit TLS), the server greets in "
        "plaintext, as it should there; the client closes: the client's mistake",
        [(c, Expect("aborted", "client", "implicit-tls-mismatch", "unknown",
                    findings=[("implicit-tls-on-starttls-port", "client", "client_hello")]))])


def starttls_again_then_tls(first_before_ehlo: bool) -> Capture:
    """A STARTTLS refused, then another answered 220 and TLS with the mail inside: the refusal
    decided nothing (the later request is the one judged)."""
    if first_before_ehlo:
        c = Conv(cport=43112)
        c.s(BANNER, tag="banner").c(STARTTLS).s(b"503 5.5.1 Error: send HELO/EHLO first\r\n")
        c.c(EHLO, tag="greeting").s(EHLO_OK, tag="ehlo_reply")
        name, what = ("hunt-starttls-before-ehlo.pcap", "the client sends STARTTLS before EHLO and gets 503 (send "
                      "HELO/EHLO first); then EHLO, a valid offer")
    else:
        c = opening(Conv(cport=43113))
        c.c(STARTTLS).s(b"454 4.7.0 TLS not available due to local problem\r\n")
        name, what = ("hunt-starttls-again-after-454.pcap", "STARTTLS answered 454; the client asks again")
    starttls_ok(c, name)
    return Capture(name, f"{what}, STARTTLS answered 220, TLS 1.2 completes and the mail goes inside TLS",
                   [(c, Expect("tls", "none", "tls-established", "valid", True, 220))])


def client_quit_after_220() -> Capture:
    """After the 220 the client sends QUIT in plaintext; the server (OpenSSL: no alert for a first
    record that is no TLS) closes without a readable answer."""
    c = opening(Conv(cport=43114, close=("fin", "S")))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(b"QUIT\r\n", tag="plaintext")
    return Capture(
        "hunt-client-quit-after-220.pcap",
        "STARTTLS answered 220; the client sends QUIT in plaintext instead of a ClientHello and the server closes "
        "without a readable answer (a TLS server that read no TLS record): the client did not start TLS",
        [(c, Expect("aborted", "client", "tls-not-started", "valid", True, 220,
                    findings=[("plaintext-after-starttls", "client", "plaintext")]))])


def ehlo_again_after_4xx() -> Capture:
    """EHLO answered 451; the client sends EHLO again and gets a valid offer, then sends the mail in
    clear: the offer it ignored is the second reply's."""
    c = Conv(cport=43115)
    c.s(BANNER, tag="banner").c(EHLO, tag="greeting").s(b"451 4.3.0 Temporary lookup failure, try again\r\n")
    c.c(EHLO).s(EHLO_OK, tag="ehlo_reply")          # (the reply the client saw an extension list in)
    return Capture(
        "hunt-ehlo-again-after-4xx.pcap",
        "EHLO answered 451; the client sends EHLO again, the reply offers STARTTLS validly, and the client sends "
        "the mail in clear: the client's choice",
        [(mail_in_clear(c), Expect("plaintext", "client", "client-did-not-request", "valid"))])


def double_220(hello: bool) -> Capture:
    """The server answers STARTTLS with its 220 twice in one segment (a proxy that repeats it): the
    second one is plaintext after the 220. curl ("Weird server reply") and msmtp refuse it and
    close without a ClientHello; a client whose TLS reads those bytes as the server's first record
    sends its ClientHello and closes."""
    c = opening(Conv(cport=43116 + hello, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls").s(READY + READY, tag="starttls_reply")
    if hello:
        c.c(client_hello("hunt double 220", "mx.example.com"), tag="client_hello")
        name, what, reason = ("hunt-double-220-hello-closed.pcap", "the client sends its ClientHello and closes "
                              "before any ServerHello", "tls-handshake-failed")
    else:
        name, what, reason = ("hunt-double-220-client-refuses.pcap", "the client closes without a ClientHello, as "
                              "curl and msmtp do", "tls-not-started")
    return Capture(name, f"STARTTLS answered '220 2.0.0 Ready to start TLS' twice in one segment; {what}: the "
                         "server's plaintext after its 220 broke the start of TLS",
                   [(c, Expect("aborted", "server", reason, "valid", True, 220,
                               findings=[("starttls-response-injection", "server", "starttls_reply")]))])


def server_timeout_before_hello(with_alert: bool) -> Capture:
    """The server's "421 timeout exceeded" 12 s after its 220 to STARTTLS, while it waited for
    the client's TLS; the client's ClientHello crosses it (and, with ``with_alert``, the client's
    TLS answers those plaintext bytes with protocol_version). The server stopped waiting for TLS
    before the ClientHello came: the plaintext answers no ClientHello (found in review: the
    detail said "answered the ClientHello in plaintext")."""
    c = opening(Conv(cport=43118 + with_alert, close=("fin", "S")))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.s(b"421 4.4.2 mx.example.com Error: timeout exceeded\r\n", tag="plaintext", delay_ms=12000)
    c.c(client_hello("hunt late hello", "mx.example.com"), tag="client_hello", delay_ms=0.3)
    findings = []
    if with_alert:
        c.c(alert(70), tag="alert", delay_ms=0.2)
        findings = [("tls-alert", "client", "alert")]
    name = "hunt-server-timeout-before-hello" + ("-alert" if with_alert else "") + ".pcap"
    return Capture(name, "STARTTLS, 220; 12 s later the server sends '421 4.4.2 ... timeout exceeded' in "
                         "plaintext and closes; the client's ClientHello crosses it" +
                   (" and its protocol_version alert answers those bytes" if with_alert else "") +
                   ": the server stopped waiting for TLS",
                   [(c, Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                               findings=findings))])


def ehlo_never_received() -> Capture:
    """The client's EHLO never reaches the server (a box drops it: the client sends it four times
    and nothing comes back); the server closes at its idle timeout 300 s later, acknowledging
    nothing of it. Its close answers no EHLO: no ehlo-rejected (found in review)."""
    c = Conv(cport=43120, close=None)
    c.s(BANNER, tag="banner").c(EHLO, tag="greeting", resend_ms=(200, 600, 1400))
    c.fin("S", delay_ms=300000, acked=False).fin("C", delay_ms=1)
    return Capture("hunt-ehlo-never-received.pcap",
                   "the banner; the client's EHLO, sent four times, never acknowledged; the server closes 300 s "
                   "later (its idle timeout) and the client closes: the server refused no EHLO",
                   [(c, Expect("aborted", "none", "no-mail-transaction", "unknown"))])


def scenarios() -> list[Capture]:
    return [server_timeout_before_hello(False), server_timeout_before_hello(True), ehlo_never_received(),
            hello_answered_plaintext(), hrr_established(), client_plaintext_after_220(), ehlo_reset_mid_reply(),
            ehlo_closed_unanswered(), ehlo_421_server_closes(), fallback_after_success(),
            tls_client_on_starttls_port(587, 43110), tls_client_on_starttls_port(25, 43111),
            starttls_again_then_tls(True), starttls_again_then_tls(False), client_quit_after_220(),
            ehlo_again_after_4xx(), double_220(False), double_220(True)]
