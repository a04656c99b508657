"""Clients that require TLS and give up after a defective EHLO exchange (issue 13, item 2).

msmtp with ``tls on``, dma, s-nail with ``smtp-use-starttls``, an MTA with a TLS-required
policy for the destination and Cisco ESA with "TLS Required" do not deliver when STARTTLS is
unusable: they leave without a mail transaction, by QUIT, by a reset or by a bare close. When
the EHLO exchange had a defect, that defect is why the conversation was aborted, and the side
whose defect it was is blamed with the defect's reason. After a *valid* offer a client that
leaves without mail is still ``no-mail-transaction`` (see ``no-mail.pcap``).
"""
from __future__ import annotations

from generate import (
    EHLO_NO_TLS,
    MASKED_REPLY,
    QUIT_STEPS,
    SEED_BANNER,
    SEED_REPLY,
    Capture,
    Conv,
    Expect,
    lines,
    opening,
)


def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    add = caps.append

    # msmtp (tls on): "the server does not support TLS via the STARTTLS command"; it QUITs.
    c = opening(Conv(cport=44001), EHLO_NO_TLS, ehlo=b"EHLO laptop.example.org\r\n")
    c.extend(QUIT_STEPS)
    add(Capture("giveup-not-offered-quit.pcap",
                "msmtp with tls on: a well-formed EHLO reply without STARTTLS; the client QUITs without "
                "a mail transaction", [(c, Expect("aborted", "server", "starttls-not-offered", "absent"))]))

    # dma: the Cisco note's reply (STARTTLS in the domain slot); dma requires TLS and QUITs.
    c = opening(Conv(cport=44002), SEED_REPLY, banner=SEED_BANNER, ehlo=b"EHLO dma.example.org\r\n")
    c.extend(QUIT_STEPS)
    add(Capture("giveup-misplaced-quit.pcap",
                "dma (TLS required): STARTTLS only on the first EHLO line, where the domain belongs; the "
                "client QUITs without a mail transaction",
                [(c, Expect("aborted", "server", "starttls-misplaced", "misplaced",
                            findings=[("ehlo-keyword-as-domain", "server", "ehlo_reply")]))]))

    # Cisco ESA "TLS Required" behind an ASA that rewrites STARTTLS to XXXXXXXA; it resets.
    c = opening(Conv(cport=44003, close=("rst", "C")), MASKED_REPLY,
                marks={"masked_line": b"250-XXXXXXXA"})
    add(Capture("giveup-masked-rst.pcap",
                "Cisco ESA with TLS Required: a middlebox masked STARTTLS as XXXXXXXA; the client resets "
                "the connection without a mail transaction",
                [(c, Expect("aborted", "middlebox", "starttls-masked", "masked",
                            findings=[("starttls-masked", "middlebox", "masked_line")]))]))

    # s-nail (smtp-use-starttls): EHLO refused; it does not fall back to HELO, it closes.
    c = opening(Conv(cport=44004, close=("fin", "C")), b"502 5.5.2 Error: command not recognized\r\n")
    add(Capture("giveup-ehlo-rejected-close.pcap",
                "s-nail with smtp-use-starttls: EHLO answered 502; the client closes without HELO and "
                "without a mail transaction",
                [(c, Expect("aborted", "server", "ehlo-rejected", "unknown"))]))

    # An MTA with a TLS-required policy: EHLO refused, HELO accepted, then QUIT (no mail).
    c = opening(Conv(cport=44005), b"500 5.5.1 Command unrecognized\r\n")
    c.c(b"HELO mta.example.org\r\n").s(b"250 mx.example.com\r\n").extend(QUIT_STEPS)
    add(Capture("giveup-ehlo-rejected-helo-quit.pcap",
                "an MTA with a TLS-required policy: EHLO answered 500, HELO accepted, the client QUITs "
                "without a mail transaction", [(c, Expect("aborted", "server", "ehlo-rejected", "unknown"))]))

    # The same client after a valid offer that it did not take: nothing defective, nothing sent.
    c = opening(Conv(cport=44006, close=("fin", "C")),
                lines("250-mx.example.com", "250-PIPELINING", "250-STARTTLS", "250 8BITMIME"))
    add(Capture("giveup-valid-offer-close.pcap",
                "a valid STARTTLS offer; the client closes without asking for it and without mail (a "
                "monitoring probe looks the same)",
                [(c, Expect("aborted", "none", "no-mail-transaction", "valid"))]))
    return caps
