"""A server, or a firewall or DPI box in front of it, that hangs or resets around STARTTLS.

What admins meet most often, in the three shapes the real-client tests drive
(tests/realclients, ``Behaviour.on_starttls`` ``silent``, ``stall``, ``rst``):

- STARTTLS never answered: the client waits, then closes, sends QUIT, or (swaks
  --tls-optional) goes on with MAIL FROM in the clear on the same connection. The server caused
  it (``starttls-refused``, case ``no-answer``, finding ``no-answer`` at STARTTLS); bytes the
  client sends once it stopped waiting are commands, not a STARTTLS command injection.
- 220, the ClientHello, then nothing until the client gives up and closes: the server caused it
  (``tls-handshake-failed``, case ``server-silent``, finding ``no-answer`` at the ClientHello),
  not the client that sent the close.
- 220, then a reset once the ClientHello arrives: the server (``tls-handshake-failed``, at the
  RST).
- EHLO never answered, or its reply stopped before its last line, until the client gave up: the
  server (``ehlo-rejected``, case ``no-answer``, finding ``no-answer`` at the EHLO): a client
  reads the extension list only once the reply ends.
A later plaintext retry by the same client (Postfix does it after a failed handshake) is
``tls-fallback``, blamed on the server like the failure. Against each: a client that closes
without waiting (5 ms) is no timeout, and the server is not blamed for it.
"""
from __future__ import annotations

from generate import (
    BANNER, EHLO, READY, STARTTLS, Capture, Conv, Expect, alert, client_finish_tls12, client_hello, det,
    did_not_request_conv, lines, opening, record, server_finish_tls12, server_flight_tls12,
)
from scenarios_hunt import CCS, _server_hello13

#: how long the clients of these captures wait before they give up (the real clients' tests use
#: 2 s; Postfix's smtp_starttls_timeout is 300 s by default)
WAIT_MS = 5000.0

SILENT = Expect("aborted", "server", "starttls-refused", "valid", True, None,
                [("no-answer", "server", "starttls")])
STALL = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
               [("no-answer", "server", "client_hello")])
#: an EHLO never answered, or whose reply never ended, until the client gave up
EHLO_SILENT = Expect("aborted", "server", "ehlo-rejected", "unknown", False, None,
                     [("no-answer", "server", "greeting")])
RST = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220)
FALLBACK = Expect("plaintext", "server", "tls-fallback", "valid")


def ehlo_sent(cport: int, close: tuple[str, str]) -> Conv:
    """The banner and the client's EHLO, nothing of the server after it yet."""
    return Conv(cport=cport, close=close).s(BANNER, tag="banner").c(EHLO, tag="greeting")


def silent_conv(cport: int, wait_ms: float = WAIT_MS, only_side: str | None = None) -> Conv:
    """STARTTLS, no answer; the client closes ``wait_ms`` later, then the server."""
    conv = opening(Conv(cport=cport, close=("fin", "C"), only_side=only_side))
    conv.c(STARTTLS, tag="starttls")
    return conv.fin("C", tag="client_fin", delay_ms=wait_ms)


def stall_conv(cport: int, wait_ms: float = WAIT_MS, only_side: str | None = None) -> Conv:
    """220 to STARTTLS, the ClientHello, nothing; the client closes ``wait_ms`` later."""
    conv = opening(Conv(cport=cport, close=("fin", "C"), only_side=only_side))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hang stall {cport}", "mx.example.com"), tag="client_hello")
    return conv.fin("C", tag="client_fin", delay_ms=wait_ms)


def rst_conv(cport: int) -> Conv:
    """220 to STARTTLS, the ClientHello, and the server's RST."""
    conv = opening(Conv(cport=cport, close=("rst", "S")))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    return conv.c(client_hello(f"hang rst {cport}", "mx.example.com"), tag="client_hello")


def retry(cport: int) -> Conv:
    """The same client, 1 s later, skips the offered STARTTLS and sends the mail in clear."""
    return did_not_request_conv(cport=cport, isn=(0x0BADCAFE, 0x0DEFACED + cport), start_offset_ms=1000)


def late_answer(what: str) -> Capture:
    """The client waits 30 s for the server's next TLS step, gives up and closes; 100 ms later the
    server's step comes (a server stuck on a CRL or OCSP fetch, an overloaded TLS stack): too late
    to answer anything the client waited for. ``what``: ``hello`` (the ServerHello), ``tls12``
    (the server's ChangeCipherSpec and Finished after the client's) or ``tls13`` (the server's
    ticket after the client's Finished and EHLO)."""
    label = f"hang late {what}"
    c = opening(Conv(cport={"hello": 47051, "tls12": 47052, "tls13": 47053}[what], close=("fin", "S")))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello(label, "mx.example.com", tls13=what == "tls13"), tag="client_hello")
    if what == "hello":
        c.fin("C", delay_ms=30000).s(server_flight_tls12(label, "mx.example.com")[0], delay_ms=100)
        waited = "client_hello"
    elif what == "tls12":
        c.s(server_flight_tls12(label, "mx.example.com")[0], tag="server_hello")
        c.c(client_finish_tls12(label), tag="client_finished")
        c.fin("C", delay_ms=30000).s(server_finish_tls12(label), delay_ms=100)
        waited = "client_finished"
    else:
        flight = b"".join(record(23, det(f"{label} server {k}", n)) for k, n in enumerate([23, 800, 95, 69]))
        c.s(_server_hello13(label) + CCS + flight, tag="server_hello")
        c.c(CCS + record(23, det(label + " client finished", 53)), tag="client_finished")
        c.c(record(23, det(label + " ehlo", len(EHLO) + 17)), delay_ms=0.3)
        c.fin("C", delay_ms=30000).s(record(23, det(label + " ticket", 200)), delay_ms=100)
        waited = "client_finished"
    step = {"hello": "the ServerHello", "tls12": "the server's ChangeCipherSpec and Finished",
            "tls13": "the server's first record after the client's Finished (a ticket)"}[what]
    return Capture(f"hang-tls-late-{what}.pcap",
                   f"STARTTLS, 220, the handshake; the client waits 30 s for the server's next step and closes; "
                   f"{step} comes 100 ms after the client's FIN: the server never answered in time",
                   [(c, Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                               [("no-answer", "server", waited)]))])


def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    add = caps.append

    add(Capture("hang-starttls-silent.pcap",
                "STARTTLS never answered; 5 s later the client closes, then the server",
                [(silent_conv(47001), SILENT)]))
    c = opening(Conv(cport=47002, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls").c(b"QUIT\r\n", tag="quit", delay_ms=2000)
    c.fin("C", tag="client_fin", delay_ms=2000)
    add(Capture("hang-starttls-silent-quit.pcap",
                "STARTTLS never answered; 2 s later the client sends QUIT (no answer either), 2 s later "
                "it closes: the QUIT is what it did after giving up, no command injection",
                [(c, SILENT)]))
    c = opening(Conv(cport=47003, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls").c(b"MAIL FROM:<alice@example.org>\r\n", tag="mail", delay_ms=2000)
    c.c(b"QUIT\r\n", delay_ms=2000).fin("C", tag="client_fin", delay_ms=2000)
    add(Capture("hang-starttls-silent-plaintext.pcap",
                "STARTTLS never answered; 2 s later the client goes on in the clear on the same connection "
                "(MAIL FROM, as swaks --tls-optional does), then QUIT and a close: plaintext, the server's doing",
                [(c, Expect("plaintext", "server", "starttls-refused", "valid", True, None,
                            [("no-answer", "server", "starttls")]))]))
    add(Capture("hang-starttls-silent-fallback.pcap",
                "stream 0 as hang-starttls-silent.pcap; 1 s later stream 1: the same client skips the offered "
                "STARTTLS and sends the mail in clear (a retry in plaintext)",
                [(silent_conv(47004), SILENT), (retry(47005), FALLBACK)]))
    add(Capture("hang-starttls-no-wait.pcap",
                "STARTTLS, and the client closes 5 ms later without waiting for the answer (a probe): "
                "nobody is blamed, nothing went in clear",
                [(silent_conv(47006, wait_ms=5), Expect("aborted", "none", "no-mail-transaction", "valid",
                                                        True, None))]))

    add(Capture("hang-tls-stall.pcap",
                "STARTTLS, 220, the ClientHello, then nothing from the server; 5 s later the client closes "
                "(a DPI box that black-holes TLS, or a hung TLS stack)",
                [(stall_conv(47011), STALL)]))
    add(Capture("hang-tls-stall-fallback.pcap",
                "stream 0 as hang-tls-stall.pcap; 1 s later stream 1: the client retries in plaintext "
                "(Postfix after a failed handshake)",
                [(stall_conv(47012), STALL), (retry(47013), FALLBACK)]))
    c = opening(Conv(cport=47015, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    c.c(client_hello("hang stall alert", "mx.example.com"), tag="client_hello")
    c.c(alert(80), tag="alert", delay_ms=WAIT_MS)
    add(Capture("hang-tls-stall-alert.pcap",
                "as hang-tls-stall.pcap, but the client ends its wait with a fatal internal_error(80) alert "
                "before it closes: the alert is the client's, the silence that caused it the server's",
                [(c, Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                            [("no-answer", "server", "client_hello"), ("tls-alert", "client", "alert")]))]))
    add(Capture("hang-tls-no-wait.pcap",
                "STARTTLS, 220, the ClientHello, and the client closes 5 ms later, before the server could "
                "answer: the client ended the handshake",
                [(stall_conv(47014, wait_ms=5), Expect("aborted", "client", "tls-handshake-failed", "valid",
                                                       True, 220))]))

    # What is not silence: the answer lost from the capture, or the server's direction not captured
    c = opening(Conv(cport=47031, close=("fin", "C")))
    c.c(STARTTLS, tag="starttls").s(b"454 4.7.0 TLS not available due to temporary reason\r\n", lost=[0])
    c.fin("C", tag="client_fin", delay_ms=WAIT_MS)
    add(Capture("hang-starttls-answer-lost.pcap",
                "STARTTLS answered 454, but that segment is not in the capture; 5 s later the client closes "
                "(its FIN acknowledges the lost bytes: the hole is declared there, before the close), then the "
                "server: the answer may be in the hole, nobody is blamed for a silence the capture cannot show",
                [(c, Expect("incomplete", "unknown", "incomplete", "valid", True, None,
                            [("tcp-gap", "capture", "label:fin:C")]))]))
    add(Capture("hang-starttls-silent-one-sided.pcap",
                "hang-starttls-silent.pcap with only the client->server packets (asymmetric routing, a "
                "one-way tap): the server's answer is not in the capture, which shows no silence",
                [(silent_conv(47032, only_side="C"), Expect("incomplete", "unknown", "incomplete", "unknown",
                                                             True, None, [("one-sided", "capture", "first_frame")]))]))
    add(Capture("hang-tls-stall-one-sided.pcap",
                "hang-tls-stall.pcap with only the client->server packets: the ClientHello's answer is not in the "
                "capture either",
                [(stall_conv(47033, only_side="C"), Expect("incomplete", "unknown", "incomplete", "unknown",
                                                            True, None, [("one-sided", "capture", "first_frame")]))]))

    # The EHLO reply that never comes, or never ends (a server whose reply waits on a DNS lookup
    # or a policy service): a client reads the extension list only once the reply ends
    c = ehlo_sent(47041, ("fin", "C")).fin("C", tag="client_fin", delay_ms=WAIT_MS)
    add(Capture("hang-ehlo-silent.pcap",
                "the banner, EHLO, then nothing from the server; 5 s later the client closes (Postfix 'timed "
                "out while sending EHLO'): the server's, at the EHLO",
                [(c, EHLO_SILENT)]))
    c = ehlo_sent(47042, ("fin", "S"))
    c.s(lines("250-mx.example.com", "250-PIPELINING"), tag="ehlo_reply")
    c.c(b"QUIT\r\n", tag="quit", delay_ms=WAIT_MS)
    add(Capture("hang-ehlo-stall-quit.pcap",
                "the banner, EHLO, the first two lines of the EHLO reply (not its last), then nothing; 5 s "
                "later the client sends QUIT and the server closes: the server's, at the EHLO",
                [(c, EHLO_SILENT)]))
    c = ehlo_sent(47044, ("fin", "S"))
    c.c(b"QUIT\r\n", tag="quit", delay_ms=WAIT_MS).s(b"221 2.0.0 Bye\r\n", tag="bye")
    add(Capture("hang-ehlo-silent-quit-221.pcap",
                "the banner, EHLO, then nothing; 5 s later the client sends QUIT, which the server answers "
                "221 and closes: the 221 answers the QUIT (221 answers nothing else), not the EHLO",
                [(c, EHLO_SILENT)]))
    c = opening(Conv(cport=47045, close=("fin", "S")))
    c.c(STARTTLS, tag="starttls").c(b"QUIT\r\n", tag="quit", delay_ms=2000).s(b"221 2.0.0 Bye\r\n")
    add(Capture("hang-starttls-silent-quit-221.pcap",
                "STARTTLS never answered; 2 s later the client sends QUIT, answered 221 (a box that swallowed "
                "STARTTLS, a server that ignores it): the 221 answers the QUIT, STARTTLS got no answer",
                [(c, SILENT)]))
    c = opening(Conv(cport=47047, close=("fin", "S")))
    c.c(STARTTLS, tag="starttls").c(b"QUIT\r\n", tag="quit", delay_ms=2000)
    c.s(READY, delay_ms=100).s(b"221 2.0.0 Bye\r\n")
    add(Capture("hang-starttls-late-220.pcap",
                "STARTTLS; 2 s later the client gives up and sends QUIT; 100 ms after it the server's 220 comes, "
                "then its 221: the 220 came too late to be read as the answer, STARTTLS went unanswered",
                [(c, SILENT)]))
    c = Conv(cport=47046, close=("fin", "C"))
    c.s(b"220-mx.example.com ESMTP\r\n", tag="banner").c(EHLO, tag="greeting", delay_ms=50)
    c.fin("C", tag="client_fin", delay_ms=WAIT_MS)
    add(Capture("hang-ehlo-before-greeting.pcap",
                "the first line of a multi-line greeting (Postfix postscreen's '220-', which waits to see "
                "whether the client talks first), then the client's EHLO before the greeting's last line; 5 s "
                "later the client closes: no EHLO was owed an answer, nobody is blamed",
                [(c, Expect("aborted", "none", "no-mail-transaction", "unknown", False, None))]))
    c = ehlo_sent(47043, ("fin", "C"))
    c.s(lines("250-mx.example.com"), tag="ehlo_reply")
    c.fin("C", tag="client_fin", delay_ms=5)
    add(Capture("hang-ehlo-no-wait.pcap",
                "the banner, EHLO, the EHLO reply's first line, and the client closes 5 ms later without "
                "waiting for the rest (a probe): nobody is blamed",
                [(c, Expect("aborted", "none", "no-mail-transaction", "unknown", False, None))]))
    for what in ("hello", "tls12", "tls13"):
        add(late_answer(what))

    add(Capture("hang-tls-rst.pcap",
                "STARTTLS, 220, the ClientHello, and the server resets the connection, with its own TTL, and "
                "sends nothing after (a box that resets TLS with the server's TTL, whose server then stays "
                "silent, looks the same; one whose reset has another TTL, or after whose reset the server "
                "goes on sending, is reset-forged: tcp-reset-forged-hello.pcap, tcp-reset-race-hello.pcap); "
                "1 s later the client retries in plaintext",
                [(rst_conv(47021), RST), (retry(47022), Expect("plaintext", "server", "tls-fallback", "valid"))]))
    return caps
