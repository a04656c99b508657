"""Misbehaving paths and captures around STARTTLS whose verdicts were wrong (the nineteenth
session's hunt).

- ``span-copy-ready-server-closes.pcap``: captured where a SPAN port (or a capture merged from
  two interfaces) writes the server's 220 to STARTTLS twice, the copy with the same timestamp; the
  client's acknowledgement of it is not in the capture, and the capture ends with the server's
  FIN 300 s later (its TLS handshake timeout). The copy was read as the server's retransmission
  (no acknowledgement had come back to it), so the 220 as lost on the path (``middlebox``,
  ``answer-lost``); nothing shows a resend, nor anything of the client after the 220:
  ``incomplete``.
- ``span-resent-20ms-ready-server-closes.pcap``: the same with the second copy 20 ms after the
  first (a tail-loss probe's time; Linux resends no sooner than 10 ms): the server's
  retransmission, nothing of the client after it: the 220 never reached the client, as in
  ``pathhole-ready-server-closes.pcap`` (``middlebox``, ``answer-lost``).
- ``span-copy-starttls-client-closes.pcap`` and ``span-resent-20ms-starttls-client-closes.pcap``:
  the mirror on the client's side: its STARTTLS written twice (the same timestamp, or 20 ms
  later), no segment of the server after it, the client closing 10 s later. The copy was read as
  the client's retransmission, "STARTTLS never reached the server" (``middlebox``,
  ``command-lost``); nothing shows it did not arrive, so the server that sent nothing is blamed,
  as when the capture holds one copy (``no-answer``). The resend 20 ms later still reads
  ``command-lost``.
- ``pathhole-ehlo-reply-lost-server-closes.pcap``, ``pathhole-ehlo-reply-lost-server-421.pcap`` and
  ``pathhole-ehlo-reply-lost-server-closes-end.pcap``: captured at the server; its EHLO reply is
  resent at 1 and 3 s and never acknowledged (a box drops it); 10 s after it the server's command
  timeout (Postfix's smtpd_timeout under stress) ends the session: its FIN (the client's 5 s
  later, its ACK still before the reply), its 421 and FIN, or its FIN with the capture ending
  there (only the retransmissions show it); or (``-client-quits``) the client gives up first and
  sends QUIT. It read ``no-mail-transaction``, blaming nobody: the
  client never saw the extension list, so the path caused it, as for the 220 to STARTTLS
  (``pathhole-ready-*``): ``middlebox``, ``ehlo-rejected`` (an EHLO whose reply never came, as
  when none was sent), case ``answer-lost``, finding ``answer-not-received`` at the reply.
- ``hunt5-client-hangs-after-answer.pcap``: STARTTLS, 220, the ClientHello and the server's
  answer (ServerHello to ServerHelloDone), which the client acknowledges whole and never answers;
  60 s later the server's handshake timeout closes, the client 5 s after. The server was blamed
  ("closed the connection after the ServerHello"): the client had everything and went silent,
  the mirror of ``server-silent``, as after the 220 (the client's ``tls-not-started``):
  ``client``, ``tls-handshake-failed``. ``hunt5-client-hangs-after-answer-end.pcap``: the same,
  the capture ending with the server's FIN: the client's next segment, whose sequence number
  would show an answer the path dropped, is not in it: ``incomplete``.
  ``hunt5-client-hangs-after-answer-tls13.pcap``: the same in TLS 1.3 (the flight ends with the
  server's Finished): the client's (case ``client-silent``). ``hunt5-server-stalls-mid-answer.pcap``:
  the server's answer stops before its ServerHelloDone: the client rightly waits, the server is
  to blame as before (the review of the first version of this rule found it blamed the client).
- ``pathhole-answer-partly-client-side.pcap``: ``pathhole-answer-partly-server-closes.pcap``
  captured at the client: the ServerHello, alone in a small segment, arrives; the rest of the
  answer is missing (black-holed, its retransmissions too); the server's FIN 60 s later, past the
  missing bytes, and the client's 5 s after, still acknowledging only the ServerHello. It read
  ``incomplete`` ("whether they held an alert, or reached the client ... cannot be told") while
  the server's side reads the path's: the client's acknowledgements a second or more after the
  server's FIN never covered the missing bytes, so they never arrived: ``middlebox``, case
  ``answer-lost``, finding ``answer-not-received`` at the frame after the hole (the server's FIN),
  as for a whole answer missing (``pathhole-answer-lost.pcap``).
"""
from __future__ import annotations

import dataclasses

from generate import (
    BANNER, EHLO, EHLO_OK, READY, STARTTLS, Capture, Conv, Expect, Pkt, client_hello, det, did_not_request_conv,
    opening, record, server_flight_tls12,
)
from scenarios_oneside import server_flight_tls13
from scenarios_path import RESEND_MS

#: the server's command timeout under stress (Postfix's smtpd_timeout = ${stress?10}{300}s): it
#: closes this long after its EHLO reply when no command came
SERVER_COMMAND_TIMEOUT_MS = 10000.0
TIMEOUT_421 = b"421 4.4.2 mx.example.com Error: timeout exceeded\r\n"


class CopyConv(Conv):
    """A conversation in which the first segment of some steps is written twice (``copies``:
    step tag -> how long after the segment its copy is stamped, in ms; 0: the same timestamp),
    as a SPAN port or two merged interfaces write one packet twice (or, later, as the sender's
    TCP resends it), the copy labelled ``copy:<tag>``."""

    def __init__(self, *, copies: dict[str, float], **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.copies = copies

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        for tag, lag_ms in self.copies.items():
            side, off = marks[tag]
            orig = next(p for p in pkts if p.side == side and p.off == off and p.payload)
            copy = dataclasses.replace(orig, ts_ns=orig.ts_ns + int(lag_ms * 1_000_000), label=f"copy:{tag}")
            at = max(i for i, p in enumerate(pkts) if p.ts_ns <= copy.ts_ns) + 1
            pkts.insert(at, copy)
        return pkts, marks


def ready_copied(cport: int, lag_ms: float) -> Conv:
    """STARTTLS, the server's 220 (its copy ``lag_ms`` later), no acknowledgement of the client's
    in the capture; the server's FIN 300 s later (its TLS handshake timeout), nothing after it."""
    conv = opening(CopyConv(cport=cport, close=None, copies={"starttls_reply": lag_ms}))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply", acked=False)
    conv.fin("S", tag="server_fin", delay_ms=300000.0, acked=False)
    return conv


def starttls_copied(cport: int, lag_ms: float) -> Conv:
    """STARTTLS (its copy ``lag_ms`` later), nothing of the server after it; the client gives up
    10 s later and closes, nothing after its FIN."""
    conv = opening(CopyConv(cport=cport, close=None, copies={"starttls": lag_ms}))
    conv.c(STARTTLS, tag="starttls", acked=False)
    conv.fin("C", tag="client_fin", delay_ms=10000.0, acked=False)
    return conv


def ehlo_reply_lost(cport: int, how: str) -> Conv:
    """Banner, EHLO, the EHLO reply resent at 1 and 3 s and never acknowledged (a box drops it);
    the server's command timeout ``SERVER_COMMAND_TIMEOUT_MS`` after it ends the session: its FIN
    (``how`` "close", "421": its 421 first) and the client's close 5 s later, or the capture ending
    with the server's FIN ("end"); or the client gives up first and sends QUIT ("quit")."""
    conv = Conv(cport=cport, close=None)
    conv.s(BANNER, tag="banner").c(EHLO, tag="greeting").s(EHLO_OK, tag="ehlo_reply", resend_ms=RESEND_MS)
    wait = SERVER_COMMAND_TIMEOUT_MS - RESEND_MS[-1]
    if how == "quit":
        # (the client gives up 5 s after the last copy; its QUIT reaches the server, whose 221 and
        # FIN the box drops too)
        conv.c(b"QUIT\r\n", tag="quit", delay_ms=5000.0)
        conv.s(b"221 2.0.0 Bye\r\n", tag="bye", acked=False)
        conv.fin("S", tag="server_fin", delay_ms=0.1, acked=False)
        conv.fin("C", tag="client_fin", delay_ms=1000.0)
        return conv
    if how == "421":
        conv.s(TIMEOUT_421, tag="timeout_421", delay_ms=wait, acked=False)
        conv.fin("S", tag="server_fin", delay_ms=0.1, acked=False)
    else:
        conv.fin("S", tag="server_fin", delay_ms=wait, acked=False)
    if how != "end":
        conv.fin("C", tag="client_fin", delay_ms=5000.0)
    return conv


#: the server's TLS handshake timeout (it closes this long after its answer to the ClientHello)
SERVER_TLS_TIMEOUT_MS = 60000.0


def client_hangs_after_answer(cport: int, client_close: bool, flight_kind: str = "tls12") -> Conv:
    """STARTTLS, 220, the ClientHello and the server's answer (ServerHello to ServerHelloDone),
    which the client acknowledges whole and then answers with nothing; the server's handshake
    timeout closes ``SERVER_TLS_TIMEOUT_MS`` later, and the client closes 5 s after
    (``client_close``; else the capture ends with the server's FIN). ``flight_kind``: "tls12"
    (the whole TLS 1.2 answer), "tls12-no-done" (its ServerHelloDone never sent: a server
    stalled in the middle of its answer, the client rightly waiting) or "tls13" (a TLS 1.3
    answer to its Finished)."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt5 {cport}", "mx.example.com", tls13=flight_kind.startswith("tls13")),
           tag="client_hello")
    if flight_kind.startswith("tls13"):
        flight = server_flight_tls13(f"hunt5 {cport}")
        if flight_kind == "tls13-ticket":
            flight += record(23, det(f"hunt5 {cport} ticket", 200))   # (a NewSessionTicket after the Finished)
    else:
        flight, _hello_len = server_flight_tls12(f"hunt5 {cport}", "mx.example.com")
        if flight_kind == "tls12-no-done":
            flight = flight[:-9]        # (the ServerHelloDone record: 5 + 4 bytes)
    conv.s(flight, tag="flight")
    conv.fin("S", tag="server_fin", delay_ms=SERVER_TLS_TIMEOUT_MS, acked=False)
    if client_close:
        conv.fin("C", tag="client_fin", delay_ms=5000.0)
    return conv


def answer_partly_lost_client_side(cport: int) -> Conv:
    """pathhole-answer-partly-server-closes.pcap captured at the client: the ServerHello in a small
    segment of its own gets through, the full-size rest of the flight is dropped on the path (its
    retransmissions too: none is in the capture); the server's handshake timeout closes
    ``SERVER_TLS_TIMEOUT_MS`` later (its FIN, past the missing bytes, gets through), and the client,
    its ACK still at the end of the ServerHello, closes 5 s after."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt5 {cport}", "mx.example.com"), tag="client_hello")
    flight, hello_len = server_flight_tls12(f"hunt5 {cport}", "mx.example.com")
    conv.s(flight[:hello_len], tag="flight")
    conv.s(flight[hello_len:], tag="flight_rest", lost={0}, resend_ms=(), delay_ms=0.1)
    conv.fin("S", tag="server_fin", delay_ms=SERVER_TLS_TIMEOUT_MS, acked=False)
    conv.fin("C", tag="client_fin", delay_ms=5000.0)
    return conv


def scenarios() -> list[Capture]:
    ehlo_lost = Expect("aborted", "middlebox", "ehlo-rejected", "valid",
                       findings=[("answer-not-received", "middlebox", "ehlo_reply")])
    return [
        Capture("pathhole-answer-partly-client-side.pcap",
                "pathhole-answer-partly-server-closes.pcap captured at the client: the ServerHello alone arrives, "
                "the rest of the server's answer is missing (dropped on the path); 60 s later the server's FIN, "
                "past the missing bytes, and the client's 5 s after, its ACK still at the ServerHello's end",
                [(answer_partly_lost_client_side(48511),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                         [("answer-not-received", "middlebox", "label:fin:S"),
                          ("tcp-gap", "capture", "label:fin:S")]))]),
        Capture("hunt5-client-hangs-after-answer.pcap",
                "STARTTLS, 220, ClientHello; the client acknowledges the server's whole answer (ServerHello to "
                "ServerHelloDone) and sends nothing; 60 s later the server's handshake timeout closes, the client "
                "closes 5 s after",
                [(client_hangs_after_answer(48508, True),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                         [("client-silent", "client", "flight")]))]),
        Capture("hunt5-client-hangs-after-answer-tls13.pcap",
                "as hunt5-client-hangs-after-answer.pcap in TLS 1.3: the server's flight ends with its "
                "Finished (a 53-byte record), which the client acknowledges and never answers",
                [(client_hangs_after_answer(48514, True, "tls13"),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                         [("client-silent", "client", "flight")]))]),
        Capture("hunt5-client-hangs-after-ticket-then-retry.pcap",
                "as hunt5-client-hangs-after-answer-tls13.pcap, the server sending a session ticket right after "
                "its Finished (as Go's crypto/tls does); 70 s after it began, the client comes back on another "
                "port and delivers in plaintext without STARTTLS (the retry of an opportunistic MTA)",
                [(client_hangs_after_answer(48516, True, "tls13-ticket"),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                         [("client-silent", "client", "flight")])),
                 (did_not_request_conv(cport=48517, isn=(0x22334455, 0x66778899), start_offset_ms=70000),
                  Expect("plaintext", "client", "tls-fallback", "valid"))]),
        Capture("hunt5-server-stalls-mid-answer.pcap",
                "as hunt5-client-hangs-after-answer.pcap, the server's answer stopping before its "
                "ServerHelloDone (a server stalled signing or fetching): the client rightly waits, "
                "the server's timeout closes: the server's",
                [(client_hangs_after_answer(48515, True, "tls12-no-done"),
                  Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220))]),
        Capture("hunt5-client-hangs-after-answer-end.pcap",
                "as hunt5-client-hangs-after-answer.pcap, the capture ending with the server's FIN: whether the "
                "client answered and the path dropped it cannot be told",
                [(client_hangs_after_answer(48509, False),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, 220))]),
        Capture("pathhole-ehlo-reply-lost-server-closes.pcap",
                "captured at the server: its EHLO reply is resent at 1 and 3 s and never acknowledged (a box drops "
                "it); 10 s after it the server's command timeout closes the connection, the client 5 s later (its "
                "ACK still before the reply)",
                [(ehlo_reply_lost(48505, "close"), ehlo_lost)]),
        Capture("pathhole-ehlo-reply-lost-server-421.pcap",
                "as pathhole-ehlo-reply-lost-server-closes.pcap, the server's timeout sending 421 before its FIN",
                [(ehlo_reply_lost(48506, "421"), ehlo_lost)]),
        Capture("pathhole-ehlo-reply-lost-server-closes-end.pcap",
                "as pathhole-ehlo-reply-lost-server-closes.pcap, the capture ending with the server's FIN: only the "
                "server's retransmissions show the reply was never acknowledged",
                [(ehlo_reply_lost(48507, "end"), ehlo_lost)]),
        Capture("pathhole-ehlo-reply-lost-client-quits.pcap",
                "as pathhole-ehlo-reply-lost-server-closes.pcap, but the client gives up first, 5 s after the last "
                "copy, and sends QUIT; the server's 221 and FIN are dropped too",
                [(ehlo_reply_lost(48510, "quit"), ehlo_lost)]),
        Capture("span-copy-ready-server-closes.pcap",
                "the server's 220 to STARTTLS written twice with one timestamp (a SPAN port's copy), the client's "
                "ACK of it not captured; the capture ends with the server's FIN 300 s later: nothing shows a resend",
                [(ready_copied(48501, 0.0),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, 220))]),
        Capture("span-resent-20ms-ready-server-closes.pcap",
                "as span-copy-ready-server-closes.pcap, the second copy 20 ms after the first: the server's TCP "
                "resent it, no segment of the client came back",
                [(ready_copied(48502, 20.0),
                  Expect("aborted", "middlebox", "tls-not-started", "valid", True, 220,
                         [("answer-not-received", "middlebox", "starttls_reply")]))]),
        Capture("span-copy-starttls-client-closes.pcap",
                "the client's STARTTLS written twice with one timestamp (a SPAN port's copy), nothing of the server "
                "after it; the client closes 10 s later: nothing shows a resend",
                [(starttls_copied(48503, 0.0),
                  Expect("aborted", "server", "starttls-refused", "valid", True,
                         findings=[("no-answer", "server", "starttls")]))]),
        Capture("span-resent-20ms-starttls-client-closes.pcap",
                "as span-copy-starttls-client-closes.pcap, the second copy 20 ms after the first: the client's "
                "TCP resent it, no segment of the server came back",
                [(starttls_copied(48504, 20.0),
                  Expect("aborted", "middlebox", "starttls-refused", "valid", True,
                         findings=[("request-not-received", "middlebox", "starttls")]))]),
    ]
