"""``tls-fallback`` only where the client chose it (issue 13, item 4).

A later plaintext conversation between the same hosts is a fallback when the client skipped a
STARTTLS it could have used after an earlier failure: the server offered it validly (see
``tls-fallback.pcap``) or the client greeted with HELO and so never asked. When the server
offered nothing on the later connection, nothing was skipped: the verdict stays
``server``/``starttls-not-offered`` and its ``detail`` mentions the earlier failure.
"""
from __future__ import annotations

from generate import (
    ALERT_SERVER_EXPECT, BANNER, QUIT_STEPS, STARTTLS, Capture, Conv, Expect, mail_in_clear,
    not_offered_conv, opening, tls_alert_server_conv,
)


def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    add = caps.append

    later = not_offered_conv(cport=46002, isn=(0x24682468, 0x13571357), start_offset_ms=2000)
    add(Capture("fallback-server-offered-nothing.pcap",
                "stream 0 as tls-alert-server.pcap; 2 s later stream 1: the EHLO reply offers no STARTTLS "
                "and the mail goes in clear (the server's doing, not a fallback the client chose)",
                [(tls_alert_server_conv(cport=46001), ALERT_SERVER_EXPECT),
                 (later, Expect("plaintext", "server", "starttls-not-offered", "absent"))]))

    first = opening(Conv(cport=46003))
    first.c(STARTTLS, tag="starttls").s(b"454 4.7.0 TLS not available due to local problem\r\n",
                                        tag="starttls_reply").extend(QUIT_STEPS)
    later = Conv(cport=46004, isn=(0x35793579, 0x46804680), start_offset_ms=2000)
    later.s(BANNER, tag="banner").c(b"HELO client.example.org\r\n", tag="greeting")
    later.s(b"250 mx.example.com\r\n")
    add(Capture("fallback-helo.pcap",
                "stream 0: STARTTLS answered 454, the client QUITs; 2 s later stream 1 greets with HELO "
                "(which cannot ask for TLS) and sends the mail in clear: the client chose the fallback",
                [(first, Expect("aborted", "server", "starttls-refused", "valid", True, 454)),
                 (mail_in_clear(later), Expect("plaintext", "server", "tls-fallback", "unknown"))]))
    return caps
