"""Conversations whose verdict live mode must not give too early (docs/live.md, "When a verdict
appears"): live mode prints a conversation once its verdict is settled, and what it prints must
be what ``pcapsmtp analyze`` gives on the whole capture (tests/test_invariants.py holds that
over every shipped capture). Each capture here has a point where an earlier rule settled it
while the rest of the conversation still changed the verdict.
"""
from __future__ import annotations

from generate import (
    ALERT_SERVER_EXPECT,
    DID_NOT_REQUEST,
    MAIL_STEPS,
    TLS_OK,
    Capture,
    Conv,
    QUIT_STEPS,
    READY,
    STARTTLS,
    Expect,
    alert,
    app_data,
    client_hello,
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

    # The other order: a plaintext conversation that began first but is settled last (its
    # MAIL FROM 5 s after its EHLO), and a conversation between the same hosts that began
    # 0.5 s later and failed (STARTTLS refused, QUIT) before it. Live mode hears of the failure
    # first; the plaintext conversation, begun before it, is no retry after it.
    slow = opening(Conv(cport=45264, isn=(0x45264000, 0x95264000)))
    slow.c(b"MAIL FROM:<alice@client.example.org>\r\n", delay_ms=5000)
    slow.s(b"250 2.1.0 Ok\r\n")
    for side, data in MAIL_STEPS[2:]:
        slow.step(side, data)
    slow.extend(QUIT_STEPS)
    refused = opening(Conv(cport=45265, isn=(0x45265000, 0x95265000), start_offset_ms=-5000))
    refused.c(STARTTLS, tag="starttls").s(b"454 4.7.0 TLS not available due to temporary reason\r\n",
                                          tag="starttls_reply").extend(QUIT_STEPS)
    add(Capture("live-plaintext-settled-after-a-later-failure.pcap",
                "stream 0: valid offer, no STARTTLS, its MAIL FROM 5 s after the EHLO reply, mail in the "
                "clear; stream 1, between the same hosts, begins 0.5 s after stream 0 and ends first: "
                "STARTTLS answered 454, QUIT. Stream 0 began before the failure: no retry after it",
                [(slow, DID_NOT_REQUEST),
                 (refused, Expect("aborted", "server", "starttls-refused", "valid", True, 454))],
                merged=True))

    # A failed handshake that the client ends with a reset, and its plaintext retry 0.5 s later.
    # Live mode judges a conversation that ended with a reset only when the watch for the
    # resetting side's later segments ends (3 s: docs/live.md); the retry, settled before that,
    # waits for it and is printed as the tls-fallback the whole capture shows.
    failed = opening(Conv(cport=45266, isn=(0x45266000, 0x95266000), close=("rst", "C")))
    failed.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    failed.c(client_hello("live reset", "mx.example.com"), tag="client_hello")
    failed.s(alert(40), tag="alert")
    retry = did_not_request_conv(cport=45267, isn=(0x45267000, 0x95267000), start_offset_ms=500)
    add(Capture("live-retry-before-the-failure-is-judged.pcap",
                "stream 0: the server's handshake_failure alert, the client resets; stream 1, 0.5 s later: "
                "valid offer, no STARTTLS, mail in the clear (the retry)",
                [(failed, ALERT_SERVER_EXPECT), (retry, Expect("plaintext", "server", "tls-fallback", "valid"))]))
    return caps
