"""What captures from the wild show (issue 13, item 8): spam bots, brute-force tools, scanners
and sandboxes.

- credentials in the clear: AUTH outside TLS is a plaintext outcome even without mail, blamed
  like a plaintext mail;
- a side that sent only FIN or RST was there (not ``one-sided``): a client that closes before
  the banner left without mail; a server that closes without a greeting refused the client;
- a TCP connection that never carries a byte of payload (a half-open or connect scan) is no
  SMTP conversation: it is counted in the summary, not reported, unless the server accepted it
  and ended it first (a refusal without a greeting, whether or not the client says QUIT);
- a hole that cannot change the verdict (1 byte between the banner and a complete EHLO reply)
  does not make it ``incomplete``;
- the legacy ``AUTH=LOGIN PLAIN`` keyword form is an informational note, not a violation.
"""
from __future__ import annotations

from generate import (
    BANNER,
    EHLO,
    EHLO_NO_TLS,
    EHLO_OK,
    QUIT_STEPS,
    Capture,
    Conv,
    Expect,
    Pkt,
    lines,
    mail_in_clear,
    opening,
)


class SynRst(Conv):
    """A half-open scan answered by a closed port: SYN, then RST from the server."""

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        isn = self.isn[0] % (1 << 32)
        return [Pkt(t_start_ns, conv_index, "C", "S", isn, 0, syn_options=True),
                Pkt(t_start_ns + 200_000, conv_index, "S", "RA", 0, (isn + 1) % (1 << 32))], {}


class CloseFirst(Conv):
    """A conversation whose ``close`` side sends its FIN or RST right after the handshake
    (``wait_ms`` after it: 2 ms), before any payload of the other side (the scanner that
    connects and leaves before the banner, the server that drops a client without a greeting,
    the client that gives up waiting for a greeting that never comes)."""

    wait_ms: float = 2.0

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        assert self.handshake and self.close is not None
        closer = self.close[1]
        k = next(i for i, p in enumerate(pkts) if i >= 3 and p.side == closer
                 and ("F" in p.flags or "R" in p.flags))
        fin = pkts.pop(k)
        fin.ack = pkts[1].seq + 1 if closer == "C" else pkts[0].seq + 1
        fin.ts_ns = pkts[2].ts_ns + int(self.wait_ms * 1_000_000)
        pkts.insert(3, fin)
        if "F" in fin.flags:
            # the closer's later segments (ACKs, and data such a side may still send) follow its FIN
            for p in pkts[4:]:
                if p.side == closer and p.seq == fin.seq:
                    p.seq = (p.seq + 1) % (1 << 32)
        last = fin.ts_ns
        for p in pkts[4:]:
            p.ts_ns = max(p.ts_ns, last + 1_000_000)
            last = p.ts_ns
        return pkts, marks


AUTH_REPLY = lines("250-mx.example.com", "250-PIPELINING", "250-SIZE 10240000", "250-AUTH LOGIN PLAIN",
                   "250 8BITMIME")
AUTH_REPLY_TLS = lines("250-mx.example.com", "250-PIPELINING", "250-STARTTLS", "250-AUTH PLAIN LOGIN",
                       "250 8BITMIME")


def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    add = caps.append

    # A brute-force bot (Emotet-like) against a submission port that offers no STARTTLS.
    c = opening(Conv(cport=45001, sport=587), AUTH_REPLY, ehlo=b"EHLO [10.0.0.5]\r\n")
    c.c(b"AUTH LOGIN\r\n", tag="auth").s(b"334 VXNlcm5hbWU6\r\n")
    c.c(b"YWxpY2VAZXhhbXBsZS5vcmc=\r\n").s(b"334 UGFzc3dvcmQ6\r\n")
    c.c(b"c2VjcmV0MTIz\r\n").s(b"535 5.7.8 Error: authentication failed\r\n").extend(QUIT_STEPS)
    add(Capture("wild-auth-login-not-offered.pcap",
                "a brute-force bot on port 587: no STARTTLS offered, AUTH LOGIN with a user name and a "
                "password in the clear (535), QUIT without mail",
                [(c, Expect("plaintext", "server", "starttls-not-offered", "absent"))]))

    # A mail client that logs in without STARTTLS although the server offers it.
    c = opening(Conv(cport=45002, sport=587), AUTH_REPLY_TLS)
    c.c(b"AUTH PLAIN AGFsaWNlAHNlY3JldDEyMw==\r\n", tag="auth").s(b"235 2.7.0 Authentication successful\r\n")
    c.extend(QUIT_STEPS)
    add(Capture("wild-auth-plain-valid-offer.pcap",
                "STARTTLS validly offered; the client sends AUTH PLAIN with its credentials in the clear "
                "(235) and QUITs without mail",
                [(c, Expect("plaintext", "client", "client-did-not-request", "valid"))]))

    # An old script: HELO, then AUTH CRAM-MD5 (the challenge-response still crosses in clear).
    c = Conv(cport=45003)
    c.s(BANNER, tag="banner").c(b"HELO bot\r\n", tag="greeting").s(b"250 mx.example.com\r\n")
    c.c(b"AUTH CRAM-MD5\r\n", tag="auth").s(b"334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n")
    c.c(b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n").s(b"535 5.7.8 Error: authentication failed\r\n")
    c.extend(QUIT_STEPS)
    add(Capture("wild-auth-cram-md5-helo.pcap",
                "HELO then AUTH CRAM-MD5 in the clear (535), QUIT without mail",
                [(c, Expect("plaintext", "client", "client-used-helo", "unknown"))]))

    # A connect scan (nmap -sT): handshake, then the client closes before the server's banner;
    # the banner still arrives, the client says nothing.
    c = CloseFirst(cport=45004, close=("fin", "C")).s(BANNER, tag="banner")
    add(Capture("wild-client-closes-before-banner.pcap",
                "the client closes right after the handshake, before the banner; the server still sends "
                "its banner: the client sent only a FIN (not one-sided) and left without mail",
                [(c, Expect("aborted", "none", "no-mail-transaction", "unknown"))]))

    # A server that drops a blocklisted client without a greeting; the client QUITs into the void.
    c = CloseFirst(cport=45005, close=("fin", "S")).c(b"QUIT\r\n", tag="quit")
    add(Capture("wild-server-closes-without-greeting.pcap",
                "the server closes right after the handshake without a greeting; the client sends QUIT: "
                "the server sent only a FIN (not one-sided) and refused the client",
                [(c, Expect("aborted", "server", "greeting-refused", "unknown"))]))

    # The same server refusal, and the client says nothing at all (Postfix and Exim close when the
    # server closes before its greeting; they send no QUIT): no payload either way, yet the
    # server accepted the connection and ended it first, so it is a conversation, not a probe.
    c = CloseFirst(cport=45010, close=("fin", "S"))
    add(Capture("wild-server-closes-without-greeting-silent-client.pcap",
                "the server closes right after the handshake without a greeting; the client closes too "
                "without a word (no payload either way): the server refused the client",
                [(c, Expect("aborted", "server", "greeting-refused", "unknown"))]))
    c = CloseFirst(cport=45011, close=("rst", "S"))
    add(Capture("wild-server-resets-without-greeting.pcap",
                "the server resets the connection right after the handshake, before any byte either way: "
                "the server refused the client",
                [(c, Expect("aborted", "server", "greeting-refused", "unknown"))]))

    # A server that accepts and never greets (too loaded, a load balancer whose back end never
    # takes the connection, a tarpit): Postfix gives up after smtp_helo_timeout (300 s) and
    # closes without a word; another client sends QUIT after half a minute. The server's
    # silence, as long as the client waited GREETING_WAIT_NS (30 s) or more: a server may delay
    # its greeting on purpose by seconds, so a client that gave up after 5 s left on its own.
    c = CloseFirst(cport=45012, close=("fin", "C"))
    c.wait_ms = 300_000.0
    add(Capture("wild-server-silent-greeting-timeout.pcap",
                "the server accepts the connection and sends nothing; after 300 s the client closes "
                "without a word: the server never greeted",
                [(c, Expect("aborted", "server", "greeting-refused", "unknown",
                            findings=[("no-answer", "server", "label:fin:C")]))]))
    c = Conv(cport=45013, close=("fin", "C")).c(b"QUIT\r\n", tag="quit", delay_ms=31_000.0)
    add(Capture("wild-server-silent-greeting-quit.pcap",
                "the server accepts the connection and sends nothing; after 31 s the client sends QUIT, "
                "unanswered, and closes: the server never greeted",
                [(c, Expect("aborted", "server", "greeting-refused", "unknown",
                            findings=[("no-answer", "server", "quit")]))]))
    c = CloseFirst(cport=45014, close=("fin", "C"))
    c.wait_ms = 5_000.0
    add(Capture("wild-client-impatient-greeting.pcap",
                "the server sends nothing for 5 s, then the client closes without a word: servers "
                "delay their greeting on purpose that long, so this is a connection attempt without "
                "payload (counted, not judged), not the server's silence",
                [(c, Expect("none", "none", "no-payload", "unknown"))]))

    # A box that resets the connection in the server's name right after the handshake, with the
    # server's TTL: the real server's banner comes after "its" reset (the client's stack answers
    # it with a reset). Not the server's refusal: the box's (reset-forged).
    c = Conv(cport=45015, close=None).rst("S", delay_ms=2.0)
    c.s(BANNER, acked=False, delay_ms=0.3).rst("C", label="answer", delay_ms=0.05)
    add(Capture("wild-forged-reset-before-greeting.pcap",
                "a reset with the server's address right after the handshake, then the server's real "
                "banner at the reset's sequence number: a box on the path forged the reset",
                [(c, Expect("aborted", "middlebox", "greeting-refused", "unknown",
                            findings=[("reset-forged", "middlebox", "label:rst")]))]))

    # SMTPS (465): the client speaks first (its ClientHello) and the server greets nobody. A server
    # that closes an accepted connection before any byte, or a client that waits 60 s without
    # sending its ClientHello (Postfix pointed at 465 without smtp_tls_wrappermode, waiting for a
    # greeting), is no refusal of the server: both stay attempts without payload.
    srv_close = CloseFirst(cport=45016, sport=465, close=("fin", "S"))
    srv_close.wait_ms = 10_000.0
    cli_wait = CloseFirst(cport=45017, sport=465, close=("fin", "C"))
    cli_wait.wait_ms = 60_000.0
    add(Capture("wild-smtps-no-payload.pcap",
                "port 465, no byte either way: the server closes 10 s after the handshake (no "
                "ClientHello came), then another client closes after waiting 60 s for a greeting an "
                "SMTPS server never sends: attempts, not refusals",
                [(srv_close, Expect("none", "none", "no-payload", "unknown")),
                 (cli_wait, Expect("none", "none", "no-payload", "unknown"))]))

    # Half-open (SYN scan) and connect-and-reset probes next to one real conversation: only the
    # conversation is SMTP; the probes are counted as attempts without payload.
    syn_scan = SynRst(cport=45006)
    probe = Conv(cport=45007, close=("rst", "C"))
    real = mail_in_clear(opening(Conv(cport=45008), EHLO_NO_TLS))
    add(Capture("wild-scan-probes.pcap",
                "a relay's capture: a SYN answered by RST (half-open scan), a connect-and-reset probe "
                "without payload, then one real conversation without STARTTLS",
                [(syn_scan, Expect("none", "none", "no-payload", "unknown")),
                 (probe, Expect("none", "none", "no-payload", "unknown")),
                 (real, Expect("plaintext", "server", "starttls-not-offered", "absent"))]))

    # A 1-byte hole between the banner and a complete, well-formed EHLO reply.
    c = Conv(cport=45009)
    c.s(BANNER, tag="banner").c(EHLO, tag="greeting")
    c.s(b"\n", lost=[0])
    c.s(EHLO_OK, tag="ehlo_reply", delay_ms=1.0, marks={"after_hole": 0})
    mail_in_clear(c)
    add(Capture("wild-harmless-hole.pcap",
                "one byte of the server's direction is missing between the banner and a complete, "
                "well-formed EHLO reply that offers STARTTLS; the client sends the mail in clear",
                [(c, Expect("plaintext", "client", "client-did-not-request", "valid",
                            findings=[("tcp-gap", "capture", "after_hole")]))]))

    # An old server that still sends the pre-RFC 2554 AUTH=LOGIN form for old Outlook clients.
    reply = lines("250-mx.example.com", "250-AUTH LOGIN PLAIN", "250-AUTH=LOGIN PLAIN", "250-STARTTLS",
                  "250 8BITMIME")
    c = opening(Conv(cport=45010), reply, marks={"legacy": b"250-AUTH=LOGIN PLAIN"})
    add(Capture("wild-auth-equals-legacy.pcap",
                "EHLO reply with the legacy 250-AUTH=LOGIN PLAIN line beside 250-AUTH LOGIN PLAIN; STARTTLS "
                "valid; the client sends the mail in clear",
                [(mail_in_clear(c), Expect("plaintext", "client", "client-did-not-request", "valid",
                                           findings=[("ehlo-legacy-keyword", "server", "legacy")]))]))
    return caps
