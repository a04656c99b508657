"""Bytes dropped on the path (a hole the receiver never acknowledged, as in scenarios_gapack.py)
where the receiver, not the sender, gives up first: its timeout ends the conversation before the
sender's next segment shows the hole, so no segment of the receiver comes a second after that one.

A server waits ``smtpd_timeout`` (Postfix, 300 s) or ``smtp_receive_timeout`` (Exim, 5 min) for
the client's next command, then sends 421 (Postfix: ``421 4.4.2 <host> Error: timeout exceeded``;
Exim: ``421 <host>: SMTP command timeout - closing connection``) and closes. After its 220 to
STARTTLS, Postfix waits ``smtpd_starttls_timeout`` (300 s) for the handshake and closes without a
word; Exim reads plaintext commands again after a failed handshake and sends its command timeout's
421 a second ``smtp_receive_timeout`` later. On an SMTPS port (465) both close without a word when
no ClientHello comes. The client reads that 421, or the close, and closes too: its FIN, past the
bytes it sent and the box dropped, is what shows the hole, and the server's segments (its 421,
its FIN, its duplicate ACK of the client's FIN) acknowledge nothing of them. The server gave up
waiting for those bytes (their place shows they answer its last reply, the 220, or the
connection's start), ten seconds or more after they were due (verdict.SLOWEST_PEER_NS): they never arrived (case
``command-lost`` / ``hello-lost``, ``caused_by`` middlebox). The same on the client's side for the
server's answer to the ClientHello (``answer-lost``).

The captures last as long as the timeouts, by their timestamps only: a few frames each.
Controls: the same holes acknowledged by the receiver (the capture's loss: the server read
STARTTLS and ended the session itself, the server's; a ClientHello it got and never answered,
``incomplete``), and a 421 sooner than a second after the EHLO reply (the command may have
crossed it: ``incomplete``).
"""
from __future__ import annotations

from generate import (
    READY, STARTTLS, Capture, Conv, Expect, client_hello, lines, opening, server_flight_tls12,
)

#: Postfix's smtpd_timeout, smtpd_starttls_timeout; Exim's smtp_receive_timeout (5 min)
SERVER_TIMEOUT_MS = 300_000.0
#: how long an SMTPS submission client waits for the server's answer to its ClientHello
CLIENT_TIMEOUT_MS = 60_000.0
POSTFIX_421 = b"421 4.4.2 mx.example.com Error: timeout exceeded\r\n"
EXIM_421 = b"421 mx.example.net: SMTP command timeout - closing connection\r\n"
EXIM_BANNER = b"220 mx.example.net ESMTP Exim 4.96 Sat, 05 Dec 2026 10:00:00 +0000\r\n"
EXIM_EHLO_OK = lines("250-mx.example.net Hello client.example.org [192.0.2.10]", "250-SIZE 52428800",
                     "250-8BITMIME", "250-PIPELINING", "250-PIPECONNECT", "250-CHUNKING", "250-STARTTLS",
                     "250-PRDR", "250 HELP")
EXIM_READY = b"220 TLS go ahead\r\n"
SHUTDOWN_421 = b"421 4.3.2 mx.example.com Service shutting down, closing transmission channel\r\n"


def _timeout(conv: Conv, reply: bytes | None, after_ms: float) -> Conv:
    """The server's timeout ``after_ms`` after the step before: its ``reply`` (None: none) and
    its FIN; the client reads them and closes, its FIN carrying its ACK of both, which the
    server answers with a (duplicate) ACK."""
    if reply is not None:
        conv.s(reply, tag="timeout", delay_ms=after_ms, acked=False)
        conv.fin("S", tag="server_fin", delay_ms=0.05, acked=False)
    else:
        conv.fin("S", tag="server_fin", delay_ms=after_ms, acked=False)
    return conv.fin("C", tag="client_fin", delay_ms=0.4)


def starttls_timeout_conv(cport: int, reply: bytes, *, exim: bool = False, dropped: bool = True,
                          after_ms: float = SERVER_TIMEOUT_MS) -> Conv:
    """After a valid offer the client's STARTTLS is missing from the capture (``dropped``: a box
    dropped it, the server never acknowledges it; else only the capture lost it); ``after_ms``
    later the server sends ``reply`` and closes."""
    conv = Conv(cport=cport, close=None)
    if exim:
        opening(conv, EXIM_EHLO_OK, banner=EXIM_BANNER)
    else:
        opening(conv)
    conv.c(STARTTLS, tag="starttls", lost={0}, resend_ms=() if dropped else None)
    return _timeout(conv, reply, after_ms - 10.0)


def silent_after_220_conv(cport: int) -> Conv:
    """The client sends nothing after the 220 to STARTTLS (no hole: its FIN comes right after the
    220's bytes); Postfix closes 300 s later, then the client."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    return _timeout(conv, None, SERVER_TIMEOUT_MS)


def hello_timeout_conv(cport: int, *, exim: bool = False, dropped: bool = True) -> Conv:
    """After the 220 to STARTTLS the client's ClientHello is missing from the capture (``dropped``:
    never acknowledged); Postfix closes 300 s later without a word (its TLS handshake timeout),
    Exim sends its command timeout's 421 in plaintext 600 s later (the handshake's timeout,
    then the command timeout of the plaintext it reads again) and closes."""
    conv = Conv(cport=cport, close=None)
    if exim:
        opening(conv, EXIM_EHLO_OK, banner=EXIM_BANNER)
    else:
        opening(conv)
    conv.c(STARTTLS, tag="starttls").s(EXIM_READY if exim else READY, tag="starttls_reply")
    conv.c(client_hello(f"holes hello {cport}", "mx.example.com"), tag="client_hello", lost={0},
           resend_ms=() if dropped else None)
    if exim:
        return _timeout(conv, EXIM_421, 2 * SERVER_TIMEOUT_MS - 10.0)
    return _timeout(conv, None, SERVER_TIMEOUT_MS - 10.0)


def answer_timeout_conv(cport: int, *, sport: int = 25) -> Conv:
    """Captured at the client: the server's whole answer to the ClientHello is dropped (nothing
    of it in the capture, the client's ACKs stay before it); the client gives up 60 s after its
    ClientHello and closes, and the server, reading that close in its handshake, closes too: its
    FIN, past the answer, shows the hole. On port 465 the ClientHello opens the connection."""
    conv = Conv(cport=cport, sport=sport, close=None)
    if sport == 25:
        opening(conv)
        conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"holes answer {cport}", "mx.example.com"), tag="client_hello")
    flight, _ = server_flight_tls12(f"holes answer {cport}", "mx.example.com")
    conv.s(flight, tag="flight", lost={0}, resend_ms=())
    conv.fin("C", tag="client_fin", delay_ms=CLIENT_TIMEOUT_MS, acked=False)
    return conv.fin("S", tag="server_fin", delay_ms=0.3)


def smtps_hello_conv(cport: int, *, dropped: bool = True, client_first: bool = False) -> Conv:
    """Port 465: the client's ClientHello, its first bytes, is missing from the capture
    (``dropped``: never acknowledged). The server (Postfix smtpd_tls_wrappermode, Exim
    tls_on_connect_ports) waits 300 s for it and closes without a word; with ``client_first``
    the client gives up after 60 s, closes (its FIN shows the hole, the server's duplicate ACK
    stays before it) and the server's own timeout closes 240 s later."""
    conv = Conv(cport=cport, sport=465, close=None)
    conv.c(client_hello(f"holes smtps {cport}", "mx.example.com"), tag="client_hello", lost={0},
           resend_ms=() if dropped else None)
    if client_first:
        conv.fin("C", tag="client_fin", delay_ms=CLIENT_TIMEOUT_MS)
        return conv.fin("S", tag="server_fin", delay_ms=SERVER_TIMEOUT_MS - CLIENT_TIMEOUT_MS)
    return _timeout(conv, None, SERVER_TIMEOUT_MS)


def smtps_mtu_conv(cport: int) -> Conv:
    """Port 465, a path MTU black hole captured at the server: the ClientHello's full-size first
    segment is dropped, its small last segment (60 bytes) arrives; the client gives up 60 s later and
    closes, the server's own timeout closes 240 s after that, its ACKs still at the hole."""
    conv = Conv(cport=cport, sport=465, close=None)
    hello = client_hello(f"holes smtps mtu {cport}", "mx.example.com")
    conv.c([hello[:-60], hello[-60:]], tag="client_hello", lost={0}, resend_ms=(),
           marks={"after_hole": len(hello) - 60})
    conv.fin("C", tag="client_fin", delay_ms=CLIENT_TIMEOUT_MS)
    return conv.fin("S", tag="server_fin", delay_ms=SERVER_TIMEOUT_MS - CLIENT_TIMEOUT_MS)


def smtps_answer_conv(cport: int) -> Conv:
    """Port 465, captured at the client behind a path MTU black hole: the ClientHello gets
    through, the server's answer is dropped but for its small last segment (60 bytes), which the
    client answers with a duplicate ACK; 60 s later it gives up and closes, the server too."""
    conv = Conv(cport=cport, sport=465, close=("fin", "C"))
    conv.c(client_hello(f"holes smtps answer {cport}", "mx.example.com"), tag="client_hello")
    flight, _ = server_flight_tls12(f"holes smtps answer {cport}", "mx.example.com")
    conv.s([flight[:-60], flight[-60:]], tag="flight", lost={0}, resend_ms=(),
           marks={"after_hole": len(flight) - 60})
    return conv.fin("C", tag="client_fin", delay_ms=CLIENT_TIMEOUT_MS)


def scenarios() -> list[Capture]:
    command_lost = Expect("aborted", "middlebox", "starttls-refused", "valid", True, None,
                          [("request-not-received", "middlebox", "label:fin:C"),
                           ("tcp-gap", "capture", "label:fin:C")])
    hello_lost = Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                        [("request-not-received", "middlebox", "label:fin:C"),
                         ("tcp-gap", "capture", "label:fin:C")])
    smtps_lost = Expect("aborted", "middlebox", "tls-handshake-failed", "unknown", False, None,
                        [("request-not-received", "middlebox", "label:fin:C"),
                         ("tcp-gap", "capture", "label:fin:C")])
    return [
        Capture("pathhole-starttls-postfix421.pcap",
                "captured behind a box that drops STARTTLS: 300 s after the EHLO reply Postfix's smtpd_timeout "
                "sends '421 4.4.2 mx.example.com Error: timeout exceeded' and closes, acknowledging nothing of the "
                "command; the client's FIN after it shows the 10-byte hole (command-lost)",
                [(starttls_timeout_conv(47501, POSTFIX_421), command_lost)]),
        Capture("pathhole-starttls-exim421.pcap",
                "as pathhole-starttls-postfix421.pcap over IPv6, with Exim: its smtp_receive_timeout's '421 "
                "mx.example.net: SMTP command timeout - closing connection' (command-lost)",
                [(starttls_timeout_conv(47502, EXIM_421, exim=True), command_lost)], ipv=6),
        Capture("pathhole-hello-postfix-timeout.pcap",
                "captured behind a box that drops the ClientHello: 300 s after its 220 Postfix's "
                "smtpd_starttls_timeout closes the connection without a word, acknowledging nothing of it; "
                "the client's FIN shows the hole (hello-lost)",
                [(hello_timeout_conv(47503), hello_lost)]),
        Capture("pathhole-hello-exim421.pcap",
                "as pathhole-hello-postfix-timeout.pcap over IPv6, with Exim: after the failed handshake it reads "
                "plaintext again and its command timeout sends its 421 in plaintext 600 s after its 220, no "
                "response injection (hello-lost)",
                [(hello_timeout_conv(47504, exim=True),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                         [("request-not-received", "middlebox", "label:fin:C"),
                          ("tcp-gap", "capture", "label:fin:C")]))], ipv=6),
        Capture("pathhole-answer-client-timeout.pcap",
                "captured at the client behind a box that drops the server's TLS: nothing of the server's "
                "answer to the ClientHello is in the capture; the client gives up 60 s after its ClientHello, "
                "and the server's FIN that follows shows the hole its ACKs never covered (answer-lost)",
                [(answer_timeout_conv(47505),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                         [("answer-not-received", "middlebox", "label:fin:S"),
                          ("tcp-gap", "capture", "label:fin:S")]))]),
        Capture("pathhole-smtps-hello.pcap",
                "SMTPS (port 465) behind a box that drops the ClientHello, the client's first bytes: the server "
                "waits 300 s for it and closes without a word, acknowledging nothing of it (hello-lost)",
                [(smtps_hello_conv(47506), smtps_lost)]),
        Capture("pathhole-smtps-hello-v6.pcap",
                "as pathhole-smtps-hello.pcap over IPv6, but the client gives up first (60 s): its FIN shows the "
                "hole, the server's duplicate ACK and its own close 240 s later stay before it (hello-lost)",
                [(smtps_hello_conv(47507, client_first=True),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "unknown", False, None,
                         [("request-not-received", "middlebox", "label:fin:C"),
                          ("tcp-gap", "capture", "label:fin:C")]))], ipv=6),
        Capture("pathhole-smtps-hello-mtu.pcap",
                "SMTPS (port 465), a path MTU black hole captured at the server: the ClientHello's full-size "
                "segment never arrives, its 60-byte tail does; the client closes 60 s later and the server's ACKs, "
                "and its close 240 s after, stay before the hole (hello-lost)",
                [(smtps_mtu_conv(47509),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "unknown", False, None,
                         [("request-not-received", "middlebox", "after_hole"),
                          ("tcp-gap", "capture", "after_hole")]))]),
        Capture("pathhole-smtps-answer-lost.pcap",
                "SMTPS (port 465) over IPv6, captured at the client behind a path MTU black hole: the server's "
                "answer to the ClientHello is not in the capture but for its small last segment, which the "
                "client's duplicate ACK answers; it closes 60 s later (answer-lost)",
                [(smtps_answer_conv(47508),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "unknown", False, None,
                         [("answer-not-received", "middlebox", "after_hole"),
                          ("tcp-gap", "capture", "after_hole")]))], ipv=6),
        # controls
        Capture("pathhole-starttls-421-acked.pcap",
                "control: as pathhole-starttls-postfix421.pcap, but the server acknowledged the 10 bytes where "
                "STARTTLS goes (only the capture lost them): it read the command, and its 421 300 s later and "
                "its close are its own (starttls-refused, the server's)",
                [(starttls_timeout_conv(47511, POSTFIX_421, dropped=False),
                  Expect("aborted", "server", "starttls-refused", "valid", True, 421,
                         [("tcp-gap", "capture", "timeout")]))]),
        Capture("pathhole-starttls-421-soon.pcap",
                "control: as pathhole-starttls-postfix421.pcap, but the server's 421 (shutting down) comes 0.5 s "
                "after the EHLO reply: STARTTLS may have crossed it on the path, nothing shows it never "
                "arrived: incomplete",
                [(starttls_timeout_conv(47512, SHUTDOWN_421, after_ms=500.0),
                  Expect("incomplete", "unknown", "incomplete", "valid", False, None,
                         [("tcp-gap", "capture", "label:fin:C")]))]),
        Capture("pathhole-hello-timeout-acked.pcap",
                "control: as pathhole-hello-postfix-timeout.pcap, but the server acknowledged the ClientHello "
                "(only the capture lost it): what it did with it may be in the hole's shadow: incomplete",
                [(hello_timeout_conv(47513, dropped=False),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, 220,
                         [("tcp-gap", "capture", "label:fin:S")]))]),
        Capture("pathhole-hello-client-silent.pcap",
                "control: as pathhole-hello-postfix-timeout.pcap, but nothing is lost: the client sends nothing "
                "after the 220, Postfix closes 300 s later and the client's FIN shows no hole: the client never "
                "started TLS (tls-not-started, the client's)",
                [(silent_after_220_conv(47515),
                  Expect("aborted", "client", "tls-not-started", "valid", True, 220))]),
        Capture("pathhole-smtps-hello-acked.pcap",
                "control: as pathhole-smtps-hello.pcap, but the server acknowledged the ClientHello (only the "
                "capture lost it) and closed 300 s later: incomplete",
                [(smtps_hello_conv(47514, dropped=False),
                  Expect("incomplete", "unknown", "incomplete", "unknown", False, None,
                         [("tcp-gap", "capture", "label:fin:S")]))]),
    ]
