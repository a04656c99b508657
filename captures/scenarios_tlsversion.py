"""A TLS handshake that ends on TLS current libraries refuse: a version RFC 8996 deprecates
(TLS 1.0 and 1.1), or a Diffie-Hellman group under 2048 bits.

Observed with real TLS stacks on Debian 12 (OpenSSL 3.0, Go, curl): a server limited to TLS 1.0
either refuses a modern ClientHello itself (a ``protocol_version`` alert: the server ended it and
is at fault, as before), or, when the client's offer still reaches down to TLS 1.0 (curl), it
chooses TLS 1.0 and the client refuses that ServerHello (``protocol_version``, or
``internal_error`` from OpenSSL's security level, or a plain close). A client limited to TLS 1.0
gets a ``protocol_version`` alert from a current server. In both cases the side that ended the
handshake is not the side stuck on the old version: the verdict blames the old version's side.

A server that sends a 1024-bit Diffie-Hellman group (old servers' default) is refused by OpenSSL
3 at its default security level ("dh key too small", a handshake_failure alert from the client):
the server's group caused it.

A close comes before the alert that answers it: the close ended the handshake.

The controls keep the rule narrow: a certificate alert on a TLS 1.0 session is the client's
refusal of the certificate, a client whose own offer stops at TLS 1.0 cannot blame the server
for choosing it, and a server that refuses a modern offer stays at fault.
"""
from __future__ import annotations

from generate import (
    EHLO, EHLO_NO_TLS, READY, STARTTLS, Capture, Conv, Expect, alert, app_data, certificate,
    client_hello, det, ext, handshake, opening, record, server_finish_tls12,
    u8, u16, u24,
)

TLS10, TLS11 = 0x0301, 0x0302


def old_client_hello(label: str, version: int = TLS10) -> bytes:
    """A ClientHello of a client whose newest version is ``version`` (no supported_versions
    extension: the legacy version field is the offer), with the CBC suites such clients send."""
    suites = [0xC013, 0xC014, 0x002F, 0x0035, 0x000A]
    exts = ext(10, u16(4) + u16(0x001D) + u16(0x0017)) + ext(11, u8(1) + u8(0)) + ext(0xFF01, u8(0))
    body = (u16(version) + det(label + " client random", 32) + u8(0) + u16(2 * len(suites))
            + b"".join(u16(s) for s in suites) + u8(1) + u8(0) + u16(len(exts)) + exts)
    return record(22, handshake(1, body), version=TLS10)


def old_server_flight(label: str, version: int = TLS10) -> bytes:
    """ServerHello choosing ``version`` (no supported_versions), Certificate, ServerHelloDone."""
    sh = record(22, handshake(2, u16(version) + det(label + " server random", 32) + u8(0)
                              + u16(0xC013) + u8(0) + u16(5) + ext(0xFF01, u8(0))), version=version)
    chain = b"".join(u24(len(c)) + c for c in (certificate("mx.example.com"),))
    cert = record(22, handshake(11, u24(len(chain)) + chain), version=version)
    return sh + cert + record(22, handshake(14, b""), version=version)


def dhe_server_flight(label: str, dh_bits: int) -> bytes:
    """ServerHello (TLS 1.2, TLS_DHE_RSA_WITH_AES_128_GCM_SHA256), Certificate, a
    ServerKeyExchange with a ``dh_bits`` prime (top bit set), generator 2 and a public value of
    the same size, and ServerHelloDone. Nothing checks the signature, so it is random bytes."""
    n = dh_bits // 8
    prime = bytes([0x80 | det(label + " p", 1)[0]]) + det(label + " p rest", n - 2) + b"\xff"
    sh = record(22, handshake(2, u16(0x0303) + det(label + " server random", 32) + u8(0)
                              + u16(0x009E) + u8(0) + u16(5) + ext(0xFF01, u8(0))))
    chain = u24(len(certificate("mx.example.com"))) + certificate("mx.example.com")
    cert = record(22, handshake(11, u24(len(chain)) + chain))
    params = u16(n) + prime + u16(1) + b"\x02" + u16(n) + det(label + " Ys", n)
    ske = record(22, handshake(12, params + u16(0x0401) + u16(256) + det(label + " signature", 256)))
    return sh + cert + ske + record(22, handshake(14, b""))


def _starttls(cport: int, close: tuple[str, str] | None) -> Conv:
    c = opening(Conv(cport=cport, close=close))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    return c


def _server_chose_old(cport: int, how: str) -> tuple[Conv, Expect]:
    """A modern ClientHello; the server chooses TLS 1.0; the client ends it by ``how``."""
    c = _starttls(cport, ("rst", "C") if how == "reset" else ("fin", "C"))
    c.c(client_hello(f"old-server {cport}", "mx.example.com", tls13=True), tag="client_hello")
    c.s(old_server_flight(f"old-server {cport}"), tag="server_hello")
    findings = [("tls-version-mismatch", "server", "server_hello")]
    if how != "reset":
        c.c(alert({"protocol_version": 70, "internal_error": 80}[how]), tag="alert")
        findings.append(("tls-alert", "client", "alert"))
    return c, Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220, findings)


def server_old() -> Capture:
    return Capture(
        "tls-server-old-version.pcap",
        "three STARTTLS attempts: the client offers TLS 1.3 and 1.2 (and still TLS 1.0 in the "
        "legacy field), the server chooses TLS 1.0, and the client ends the handshake with a "
        "protocol_version alert, an internal_error alert (OpenSSL 3's security level refusing "
        "TLS 1.0's signatures, as curl does) and a reset: the server's old TLS is the cause",
        [_server_chose_old(40901, "protocol_version"), _server_chose_old(40902, "internal_error"),
         _server_chose_old(40903, "reset")])


def client_old() -> Capture:
    c = _starttls(40904, ("fin", "S"))
    c.c(old_client_hello("old-client 40904"), tag="client_hello")
    c.s(alert(70), tag="alert")
    return Capture(
        "tls-client-old-version.pcap",
        "STARTTLS, 220; the client offers nothing newer than TLS 1.0 and the server answers the "
        "ClientHello with a protocol_version alert: the client's old TLS is the cause",
        [(c, Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                    [("tls-version-mismatch", "client", "client_hello"),
                     ("tls-alert", "server", "alert")]))])


def controls() -> Capture:
    # A certificate alert on a TLS 1.0 session: the client refused the certificate.
    cert = _starttls(40905, ("fin", "C"))
    cert.c(client_hello("old-cert 40905", "mx.example.com", tls13=True), tag="client_hello")
    cert.s(old_server_flight("old-cert 40905"), tag="server_hello")
    cert.c(alert(48), tag="alert")
    # The client itself offered only TLS 1.1 and refused the TLS 1.0 the server chose.
    both = _starttls(40906, ("fin", "C"))
    both.c(old_client_hello("old-both 40906", TLS11), tag="client_hello")
    both.s(old_server_flight("old-both 40906"), tag="server_hello")
    both.c(alert(70), tag="alert")
    # A modern offer refused by the server: the server's doing, no version finding.
    modern = _starttls(40907, ("fin", "S"))
    modern.c(client_hello("old-modern 40907", "mx.example.com", tls13=True), tag="client_hello")
    modern.s(alert(70), tag="alert")
    return Capture(
        "tls-version-controls.pcap",
        "three failed handshakes the version rule leaves to whoever ended them: an unknown_ca "
        "alert from the client on a TLS 1.0 session (a certificate refusal), a client that offered "
        "only TLS 1.1 refusing the server's TLS 1.0, and a server refusing a TLS 1.3/1.2 offer "
        "with protocol_version",
        [(cert, Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                       [("tls-alert", "client", "alert")])),
         (both, Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                       [("tls-alert", "client", "alert")])),
         (modern, Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         [("tls-alert", "server", "alert")]))])


def close_then_alert() -> Capture:
    """What ended the handshake is what came first: the server's close, not the alert the
    client sent in answer to it (OpenSSL's decode_error on a FIN in the middle of its
    handshake), as seen with CPython's smtplib against a server that closes at the ClientHello."""
    c = _starttls(40908, ("rst", "S"))
    c.c(client_hello("close-alert 40908", "mx.example.com", tls13=True), tag="client_hello")
    c.fin("S", tag="server_fin")
    c.c(alert(50), tag="alert")
    return Capture(
        "tls-close-then-alert.pcap",
        "STARTTLS, 220, ClientHello; the server closes (FIN) without a ServerHello, the client "
        "answers the close with a decode_error alert and the server resets: the server ended "
        "the handshake",
        [(c, Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                    [("tls-alert", "client", "alert")]))])


def _weak_dh(cport: int, bits: int, how: str) -> Conv:
    c = _starttls(cport, ("rst", "C") if how == "reset" else ("fin", "C"))
    c.c(client_hello(f"dh {cport}", "mx.example.com", tls13=True), tag="client_hello")
    c.s(dhe_server_flight(f"dh {cport}", bits), tag="server_hello",
        marks={"key_exchange": b"\x16\x03\x03" + u16(4 + 2 + bits // 8 + 3 + 2 + bits // 8 + 4 + 256)})
    if how == "alert":
        c.c(alert(40), tag="alert")
    return c


def server_weak_dh() -> Capture:
    return Capture(
        "tls-server-weak-dh.pcap",
        "two STARTTLS attempts: the server chooses a DHE suite and sends a 1024-bit Diffie-Hellman "
        "group; the client ends the handshake with a handshake_failure alert (OpenSSL 3's 'dh key "
        "too small'), then with a reset: the server's small group is the cause",
        [(_weak_dh(40909, 1024, "alert"),
          Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                 [("tls-weak-dh", "server", "key_exchange"), ("tls-alert", "client", "alert")])),
         (_weak_dh(40910, 1024, "reset"),
          Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                 [("tls-weak-dh", "server", "key_exchange")]))])


def weak_dh_controls() -> Capture:
    big = _weak_dh(40911, 2048, "alert")
    accepted = _starttls(40912, ("fin", "C"))
    accepted.c(client_hello("dh 40912", "mx.example.com", tls13=True), tag="client_hello")
    accepted.s(dhe_server_flight("dh 40912", 1024), tag="server_hello")
    cke = record(22, handshake(16, u16(128) + det("dh 40912 Yc", 128)))      # DHE: a 2-byte length
    accepted.c(cke + record(20, b"\x01") + record(22, det("dh 40912 client finished", 40)))
    accepted.s(server_finish_tls12("dh 40912"))
    for k, (side, text) in enumerate([("C", EHLO), ("S", EHLO_NO_TLS), ("C", b"QUIT\r\n"),
                                      ("S", b"221 2.0.0 Bye\r\n")]):
        accepted.step(side, app_data(f"dh 40912 appdata {k}", len(text)))
    return Capture(
        "tls-weak-dh-controls.pcap",
        "two DHE handshakes the Diffie-Hellman rule leaves alone: a 2048-bit group the client "
        "still refuses (handshake_failure: the client ended it, as the alert says), and a 1024-bit "
        "group a client accepts (the handshake completes: TLS)",
        [(big, Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                      [("tls-alert", "client", "alert")])),
         (accepted, Expect("tls", "none", "tls-established", "valid", True, 220))])


def late_alert_answers_starttls() -> Capture:
    """A capture that starts at the client's STARTTLS and misses the server's 220 (the server's
    side starts late, at its first payload, the alert): the alert answers the client's
    ClientHello as its handshake would, so the ClientHello held behind STARTTLS is read, and
    the TLS 1.0 offer is the cause (it was read as a STARTTLS the server closed on)."""
    c = Conv(cport=40915, handshake=False, close=("fin", "S"))
    c.c(STARTTLS, tag="starttls", acked=False).s(READY, tag="starttls_reply", lost=[0])
    c.c(old_client_hello("late-alert 40915"), tag="client_hello", acked=False)
    c.s(alert(70), tag="alert")
    return Capture(
        "tls-late-alert-answers-starttls.pcap",
        "the capture starts at the client's STARTTLS and misses the server's 220; the client "
        "offers nothing newer than TLS 1.0 and the server's first bytes in the capture are a "
        "protocol_version alert: TLS began, and the client's old offer caused the failure",
        [(c, Expect("aborted", "client", "tls-handshake-failed", "unknown", True, None,
                    [("midstream", "capture", "first_frame"),
                     ("tls-version-mismatch", "client", "client_hello"),
                     ("tls-alert", "server", "alert")]))])


def scenarios() -> list[Capture]:
    return [server_old(), client_old(), controls(), close_then_alert(), server_weak_dh(), weak_dh_controls(),
            late_alert_answers_starttls()]
