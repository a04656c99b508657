"""Conversations whose verdict live mode must not give too early (docs/live.md, "When a verdict
appears"): live mode prints a conversation once its verdict is settled, and what it prints must
be what ``pcapsmtp analyze`` gives on the whole capture (tests/test_invariants.py holds that
over every shipped capture). Each capture here has a point where an earlier rule settled it
while the rest of the conversation still changed the verdict.
"""
from __future__ import annotations

from generate import (
    ALERT_SERVER_EXPECT,
    TLS_OK,
    Capture,
    Conv,
    Expect,
    app_data,
    did_not_request_conv,
    opening,
    starttls_ok,
    tls_alert_server_conv,
)


def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    add = caps.append

    # A server that wants TLS before mail: the client's MAIL FROM in the clear is refused
    # (530, RFC 3207 4), the client then asks for STARTTLS and delivers over TLS. A MAIL in the
    # clear settles nothing until the server accepts it.
    c = opening(Conv(cport=45260))
    c.c(b"MAIL FROM:<alice@client.example.org>\r\n")
    c.s(b"530 5.7.0 Must issue a STARTTLS command first\r\n")
    add(Capture("live-mail-refused-then-starttls.pcap",
                "the client's MAIL FROM in the clear is refused with 530 (STARTTLS first); the client "
                "then asks for STARTTLS and delivers over TLS",
                [(starttls_ok(c, "live 530"), TLS_OK)]))

    # A failed handshake, then a parallel delivery over TLS that is still open (its last
    # record 3 s after its handshake) when the client's plaintext retry starts: the retry is
    # still a tls-fallback (analysis/fallback.py: TLS cancels the failure only for
    # conversations that start after it ended). Live mode settles the TLS conversation at its
    # first data inside TLS, long before its end: the retry rule must wait for its close.
    tls_open = starttls_ok(opening(Conv(cport=45262, isn=(0x45262000, 0x95262000), start_offset_ms=500)),
                           "live parallel")
    tls_open.c(app_data("live parallel late", 40), delay_ms=3000)
    retry = did_not_request_conv(cport=45263, isn=(0x45263000, 0x95263000), start_offset_ms=-2500)
    add(Capture("live-fallback-during-tls-delivery.pcap",
                "stream 0: the server's handshake_failure alert; stream 1, 0.5 s later: a delivery over "
                "TLS whose last record comes 3 s after its handshake; stream 2 starts 0.5 s after that "
                "handshake, while stream 1 is still open: valid offer, no STARTTLS, mail in the clear "
                "(the retry after stream 0's failure)",
                [(tls_alert_server_conv(cport=45261, isn=(0x45261000, 0x95261000)), ALERT_SERVER_EXPECT),
                 (tls_open, TLS_OK),
                 (retry, Expect("plaintext", "server", "tls-fallback", "valid"))], merged=True))
    return caps
