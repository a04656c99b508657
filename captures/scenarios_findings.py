"""Example captures for findings that had none (docs/verdicts.md names one per finding).

- ``starttls-offered-again``: a capture that shows the dialogue inside TLS (taken behind a TLS
  terminator, or decrypted) where the EHLO reply after the 220 offers STARTTLS once more
  (RFC 3207 4.2 forbids it);
- ``ehlo-masked-keyword``: an ESMTP-inspecting firewall that lets STARTTLS through but masks
  another extension (CHUNKING written as ``XXXXXXXB``): a low-confidence middlebox finding, the
  verdict is that of the valid offer;
- ``limit-reached``: a client line longer than the parser keeps (4096 octets): its head is kept,
  the rest skipped, and the finding says so; the verdict stands on what was kept.
"""
from __future__ import annotations

from generate import (
    EHLO,
    EHLO_OK,
    READY,
    STARTTLS,
    Capture,
    Conv,
    Expect,
    lines,
    mail_in_clear,
    opening,
    starttls_ok,
)


def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    add = caps.append

    # Behind a TLS terminator: STARTTLS, 220, then the dialogue goes on readable, and the EHLO
    # reply inside TLS offers STARTTLS again.
    c = opening(Conv(cport=44101))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(EHLO, tag="ehlo_after_tls").s(EHLO_OK, marks={"again": b"250-STARTTLS"})
    add(Capture("starttls-offered-again.pcap",
                "STARTTLS, 220, then readable SMTP (a capture behind a TLS terminator): the EHLO reply after "
                "the start of TLS offers STARTTLS again (RFC 3207 4.2); mail follows",
                [(mail_in_clear(c), Expect("tls", "none", "tls-decrypted", "valid", True, 220,
                                           [("plaintext-after-starttls", "capture", "ehlo_after_tls"),
                                            ("starttls-offered-again", "server", "again")]))]))

    # A Cisco ESMTP inspection with STARTTLS allowed masks an extension it does not know.
    reply = lines("250-mx.example.com", "250-PIPELINING", "250-SIZE 10240000", "250-XXXXXXXB",
                  "250-STARTTLS", "250-ENHANCEDSTATUSCODES", "250 8BITMIME")
    c = opening(Conv(cport=44102), reply, marks={"masked": b"250-XXXXXXXB"})
    starttls_ok(c, "masked-keyword")
    add(Capture("ehlo-masked-keyword.pcap",
                "EHLO reply with a valid STARTTLS and CHUNKING masked as XXXXXXXB (an ESMTP-inspecting "
                "firewall that allows TLS); the client uses STARTTLS, TLS 1.2 completes",
                [(c, Expect("tls", "none", "tls-established", "valid", True, 220,
                            [("ehlo-masked-keyword", "middlebox", "masked")]))]))

    # A client line over the parser's 4096-octet bound: the MAIL command's head is kept.
    c = opening(Conv(cport=44103))
    long_mail = b"MAIL FROM:<" + b"a" * 5000 + b"@example.org>\r\n"
    c.c(long_mail, tag="long").s(b"250 2.1.0 Ok\r\n")
    c.c(b"RCPT TO:<bob@example.com>\r\n").s(b"250 2.1.5 Ok\r\n")
    c.c(b"QUIT\r\n").s(b"221 2.0.0 Bye\r\n")
    add(Capture("limit-reached.pcap",
                "a valid STARTTLS offer the client ignores; its MAIL FROM line is 5026 octets, over the "
                "parser's 4096-octet line bound: the head is kept, the finding says so",
                [(c, Expect("plaintext", "client", "client-did-not-request", "valid",
                            findings=[("limit-reached", "capture", "long")]))]))
    return caps
