"""Firewall fingerprints beyond ``XXXXXXXA`` (issue 13, item 3).

- A banner masked with asterisks except ``2`` and ``0`` (Cisco ``mask-banner``) makes Postfix switch
  on its PIX workarounds: it greets with HELO, not EHLO (docs/clients.md, "Masked banner").
- Seen from the server's side of such a box, a command the box does not allow arrives overwritten
  with ``X`` of the same length (STARTTLS becomes ``XXXXXXXX``) and the server answers 5xx.
"""
from __future__ import annotations

from generate import (
    BANNER, EHLO, EHLO_OK, MASK_BANNER_ORIG, QUIT_STEPS, Capture, Conv, Expect, mail_in_clear, mask_banner,
)

MASKED_CMD = b"XXXXXXXX\r\n"
UNRECOGNIZED = b"502 5.5.2 Error: command not recognized\r\n"


def masked_banner_helo() -> Capture:
    """Postfix 3.7 behind the box: the banner reaches it masked, Postfix logs "enabling PIX
    workarounds: disable_esmtp" and greets with HELO; the mail goes in clear."""
    c = Conv(cport=40701)
    c.s(mask_banner(MASK_BANNER_ORIG), tag="banner")
    c.c(b"HELO client.example.org\r\n", tag="greeting")
    c.s(b"250 mx1.example.net Hello client.example.org [192.0.2.10], pleased to meet you\r\n")
    return Capture(
        "firewall-masked-banner-helo.pcap",
        "Cisco mask-banner: the banner is asterisks except 2 and 0; Postfix (PIX workarounds, disable_esmtp) "
        "greets with HELO, not EHLO, and sends the mail in clear: the middlebox's doing",
        [(mail_in_clear(c), Expect("plaintext", "middlebox", "starttls-masked", "unknown",
                                   findings=[("banner-masked", "middlebox", "banner")]))])


def command_masked(quit: bool) -> Capture:
    """Captured between the box and the server: the banner and the EHLO reply pass unchanged
    (STARTTLS offered), the client's STARTTLS arrives as XXXXXXXX and the server refuses it;
    the client (which got the 502 through the box) goes on in clear, or gives up (a client
    that requires TLS, msmtp with ``tls on``)."""
    c = Conv(cport=40702 + quit, close=("fin", "C") if quit else ("fin", "S"))
    c.s(BANNER, tag="banner").c(EHLO, tag="greeting").s(EHLO_OK, tag="ehlo_reply")
    c.c(MASKED_CMD, tag="starttls").s(UNRECOGNIZED, tag="starttls_reply")
    if quit:
        c.extend(QUIT_STEPS)
        name, what, outcome = ("firewall-command-masked-quit.pcap", "the client QUITs", "aborted")
    else:
        mail_in_clear(c)
        name, what, outcome = ("firewall-command-masked.pcap", "the mail goes in clear", "plaintext")
    return Capture(
        name,
        "captured on the server's side of a Cisco ESMTP inspection: STARTTLS offered, the client's STARTTLS "
        f"arrives overwritten as XXXXXXXX (same length) and is answered 502; {what}",
        [(c, Expect(outcome, "middlebox", "starttls-masked", "valid", True, 502,
                    findings=[("starttls-masked", "middlebox", "starttls")]))])


def command_masked_forged_reset() -> Capture:
    """As ``command_masked``, but after the server's 502 a reset with the server's address ends the
    connection at TTL 250 where the server's segments come with 52: the box reset it too. The
    masked command already blames the box; the reset is reported (``reset-forged``), and the
    detail does not say the server reset the connection."""
    c = Conv(cport=40704, close=None)
    c.s(BANNER, tag="banner").c(EHLO, tag="greeting").s(EHLO_OK, tag="ehlo_reply")
    c.c(MASKED_CMD, tag="starttls").s(UNRECOGNIZED, tag="starttls_reply")
    c.rst("S", ttl=250, delay_ms=5)
    return Capture(
        "firewall-command-masked-reset-forged.pcap",
        "as firewall-command-masked.pcap, but after the server's 502 a reset with the server's address and "
        "TTL 250 (the server's segments: 52) ends the connection: the box forged it",
        [(c, Expect("aborted", "middlebox", "starttls-masked", "valid", True, 502,
                    findings=[("starttls-masked", "middlebox", "starttls"),
                              ("reset-forged", "middlebox", "label:rst")]))])


def scenarios() -> list[Capture]:
    return [masked_banner_helo(), command_masked(False), command_masked(True), command_masked_forged_reset()]
