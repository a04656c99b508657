"""What a capture that lost packets can still say about the server's answer to the ClientHello
(the twenty-first session's hunt).

A server's close after its whole answer, which no acknowledgement of the client's in the capture
covers, the server never having sent it again:

- ``hunt7-unacked-answer-capture-ends-at-server-fin.pcap``: STARTTLS, 220, the ClientHello, the
  server's whole TLS 1.2 answer (to its ServerHelloDone), no ACK of the client's after it; the
  server's handshake timeout closes 60 s later and the capture ends there (the shape of
  ``acktime-answer-acked-at-client-close.pcap`` cut at the server's FIN). It read the server's
  ("closed the connection after the ServerHello"). A TCP stack sends again what stays
  unacknowledged past its retransmission timeout (RFC 6298): a server that waited 60 s and never
  resent its answer had acknowledgements the capture lacks, or the capture lacks its resends too.
  Whether the answer reached the client (which then never answered) or the path dropped it cannot
  be told, and the server waited with its answer whole: ``incomplete``, as the whole capture reads.
  ``...-tls13-server-resets.pcap``: TLS 1.3 (the flight to its 53-byte Finished), the server
  resetting; ``hunt7-unacked-hrr-capture-ends-at-server-fin.pcap``: a HelloRetryRequest, which the
  client owes a second ClientHello; ``hunt7-half-acked-answer-capture-ends-at-server-fin.pcap``:
  the client's ACKs cover the ServerHello and Certificate, not the rest;
  ``hunt7-unacked-answer-late-start.pcap``: the capture joins at the STARTTLS (no SYN).
- Controls, read as before: ``hunt7-unacked-answer-resent-capture-ends-at-server-fin.pcap`` (the
  server sends its answer again four times, no ACK ever comes: the path dropped it, the middlebox's,
  case ``answer-lost``); ``hunt7-unacked-partial-answer-capture-ends-at-server-fin.pcap`` (the
  answer stops before its ServerHelloDone: the server stalled in the middle of it, whatever became
  of the client's ACKs, the server's); ``hunt7-unacked-answer-server-closes-at-once.pcap`` (the
  server closes 10 ms after its whole answer, before any answer of the client's could come: the
  server's).

A client that speaks plaintext in the middle of the handshake (``TlsNotTls``, now timed by the
segment that carried its first line, not by the stream's end):

- ``hunt7-stall-client-quit-in-clear-at-once.pcap``: TLS 1.2, the server's answer stopping before
  its ServerHelloDone, acknowledged at once; 5 ms later the client sends QUIT in the clear and
  closes 1.5 s after. It read the server's (``server-silent``: the wait was counted to the close):
  the client gave up on TLS at once, without waiting for the rest, its own decision (``client``,
  ``tls-handshake-failed``, no case, at the QUIT). ``...-tls13.pcap``: the same in TLS 1.3.
  ``hunt7-whole-answer-client-quit-in-clear-at-once.pcap``: the whole answer, QUIT 5 ms after it:
  the client's, the detail naming the QUIT (it read "closed the connection after the
  ServerHello").
- ``hunt7-stall-client-quit-in-clear-after-late-ack.pcap``: a capture on the server's side of a
  long path: the client's ACK of the partial answer comes 1.195 s after it, its QUIT 5 ms after
  that ACK (1.2 s after the answer by the capture's clock): the client had the answer 5 ms when it
  gave up, the client's.
- ``hunt7-stall-client-quit-in-clear-after-1-2-s.pcap``: the control, the QUIT 1.2 s after the
  acknowledged partial answer, the close 1.5 s after it: the client waited, the server's
  (``server-silent``), as ``real20-stall-client-quit-in-clear.pcap`` after 30 s.

The wording of a TLS 1.2 client's lone ChangeCipherSpec:

- ``hunt7-lone-ccs-before-server-hello-done.pcap``: TLS 1.2, the server's answer stopping before its
  ServerHelloDone, acknowledged; the client sends a ChangeCipherSpec alone 2 ms later (no key
  exchange, no Finished), which the server acknowledges; 30 s later the client closes. The verdict
  stays (``server``, ``server-silent``, finding ``no-answer`` at the ChangeCipherSpec); its detail
  said "after the client's Finished", a record the client never sent: it names the lone
  ChangeCipherSpec, sent before the server's ServerHelloDone.
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, LateAck, client_hello, opening
from scenarios_hunt import CCS
from scenarios_hunt6 import _answer
from scenarios_latestart import LateConv

#: the server's TLS handshake timeout (it closes this long after its answer to the ClientHello)
SERVER_TLS_TIMEOUT_MS = 60000.0
#: the server's TCP retransmissions of an answer the path dropped (ms after the first copy: an
#: initial retransmission timeout of a second, doubling)
RESENDS_MS = (1000.0, 3000.0, 7000.0, 15000.0)


def unacked(cport: int, kind: str, *, end: str = "fin", wait_ms: float = SERVER_TLS_TIMEOUT_MS,
            acked_bytes: int = 0, resend: bool = False, late: bool = False) -> Conv:
    """STARTTLS, 220, the ClientHello and the server's answer (``scenarios_hunt6._answer``'s
    ``kind``), which no ACK of the client's follows (``acked_bytes``: the client's ACK covers its
    first that many bytes, sent as a segment of their own; ``resend``: the server sends it again
    after ``RESENDS_MS``, the path dropping every copy); ``wait_ms`` after the answer (after its
    first copy with ``resend``) the server closes (``end`` "fin") or resets ("rst"), and the
    capture ends there. ``late``: the capture joins at the client's STARTTLS."""
    conv: Conv = (LateConv(start_tag="starttls", cport=cport, close=None, handshake=False) if late
                  else Conv(cport=cport, close=None))
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt6 {cport}", "mx.example.com", tls13=not kind.startswith("tls12")),
           tag="client_hello")
    answer = _answer(cport, kind)
    if acked_bytes:
        conv.s(answer[:acked_bytes], tag="flight")
        conv.s(answer[acked_bytes:], tag="rest", acked=False)
    elif resend:
        conv.s(answer, tag="flight", resend_ms=RESENDS_MS)
        wait_ms -= RESENDS_MS[-1]
    else:
        conv.s(answer, tag="flight", acked=False)
    if end == "rst":
        conv.rst("S", delay_ms=wait_ms)
    else:
        conv.fin("S", tag="server_fin", delay_ms=wait_ms, acked=False)
    return conv


def quit_in_clear(cport: int, kind: str, quit_after_ms: float, *, ack_after_ms: float | None = None) -> Conv:
    """STARTTLS, 220, the ClientHello and the server's answer (``scenarios_hunt6._answer``'s
    ``kind``), acknowledged at once (``ack_after_ms``: only that long after it, a long path); the
    client's QUIT in the clear ``quit_after_ms`` after the answer and its close 1.5 s after that,
    the server silent (PHPMailer giving up on TLS)."""
    conv: Conv = (LateAck(tag="flight", ack_after_ms=ack_after_ms, cport=cport, close=None)
                  if ack_after_ms is not None else Conv(cport=cport, close=None))
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt6 {cport}", "mx.example.com", tls13=not kind.startswith("tls12")),
           tag="client_hello")
    conv.s(_answer(cport, kind), tag="flight", acked=ack_after_ms is None)
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=quit_after_ms, acked=False)
    conv.fin("C", tag="client_fin", delay_ms=1500.0, acked=False)
    return conv


def lone_ccs(cport: int) -> Conv:
    """STARTTLS, 220, the ClientHello, the server's TLS 1.2 answer without its ServerHelloDone
    (acknowledged), the client's ChangeCipherSpec alone 2 ms later (acknowledged), its close 30 s
    after."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt6 {cport}", "mx.example.com"), tag="client_hello")
    conv.s(_answer(cport, "tls12-no-done"), tag="flight")
    conv.c(CCS, tag="ccs", delay_ms=2.0)
    conv.fin("C", tag="client_fin", delay_ms=30000.0, acked=False)
    return conv


def scenarios() -> list[Capture]:
    gave_up = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220)
    unsure = Expect("incomplete", "unknown", "incomplete", "valid", True, 220)
    server = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220)
    return [
        Capture("hunt7-unacked-answer-capture-ends-at-server-fin.pcap",
                "STARTTLS, 220, ClientHello; the server's whole answer (ServerHello to ServerHelloDone), which no "
                "ACK of the client's follows and the server never sends again; its handshake timeout closes 60 s "
                "later, where the capture ends: acknowledgements (or resends) the capture lacks, incomplete",
                [(unacked(48701, "tls12"), unsure)]),
        Capture("hunt7-unacked-answer-tls13-server-resets.pcap",
                "as hunt7-unacked-answer-capture-ends-at-server-fin.pcap in TLS 1.3 (the flight to its 53-byte "
                "Finished), the server resetting 60 s later: incomplete",
                [(unacked(48702, "tls13", end="rst"), unsure)]),
        Capture("hunt7-unacked-hrr-capture-ends-at-server-fin.pcap",
                "as hunt7-unacked-answer-capture-ends-at-server-fin.pcap, the answer a HelloRetryRequest (and the "
                "compatibility ChangeCipherSpec), which asks for a second ClientHello: incomplete",
                [(unacked(48703, "hrr"), unsure)]),
        Capture("hunt7-half-acked-answer-capture-ends-at-server-fin.pcap",
                "as hunt7-unacked-answer-capture-ends-at-server-fin.pcap, the client's ACK covering the ServerHello "
                "and the Certificate, sent as a segment of their own, and nothing of the rest: incomplete",
                [(unacked(48704, "tls12", acked_bytes=len(_answer(48704, "tls12-certificate-only"))), unsure)]),
        Capture("hunt7-unacked-answer-late-start.pcap",
                "as hunt7-unacked-answer-capture-ends-at-server-fin.pcap, the capture joining at the client's "
                "STARTTLS (no SYN, no greeting): incomplete",
                [(unacked(48705, "tls12", late=True), Expect(
                    "incomplete", "unknown", "incomplete", "unknown", True, 220,
                    [("midstream", "capture", "first_frame")]))]),
        Capture("hunt7-unacked-answer-resent-capture-ends-at-server-fin.pcap",
                "the control: the server sends its whole answer again 1, 3, 7 and 15 s after it, no ACK of the "
                "client's ever comes, its handshake timeout closes 60 s after the first copy, where the capture "
                "ends: the path dropped the answer (middlebox, answer-lost), as before",
                [(unacked(48706, "tls12", resend=True),
                  Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                         [("answer-not-received", "middlebox", "flight")]))]),
        Capture("hunt7-unacked-partial-answer-capture-ends-at-server-fin.pcap",
                "the control: the server's answer stops before its ServerHelloDone, no ACK of the client's, no "
                "resend; the server closes 60 s later, where the capture ends: the server stalled in the middle "
                "of its answer, whatever became of the client's ACKs (the server's, as before)",
                [(unacked(48707, "tls12-no-done"), server)]),
        Capture("hunt7-unacked-answer-server-closes-at-once.pcap",
                "the control: the server closes 10 ms after its whole answer, no ACK of the client's, where the "
                "capture ends: no wait, the server ended the handshake (the server's, as before)",
                [(unacked(48708, "tls12", wait_ms=10.0), server)]),
        Capture("hunt7-stall-client-quit-in-clear-at-once.pcap",
                "TLS 1.2, the server's answer without its ServerHelloDone, acknowledged; 5 ms later the client sends "
                "QUIT in the clear and closes 1.5 s after: it gave up on TLS at once, the client's",
                [(quit_in_clear(48711, "tls12-no-done", 5.0), gave_up)]),
        Capture("hunt7-stall-client-quit-in-clear-at-once-tls13.pcap",
                "as hunt7-stall-client-quit-in-clear-at-once.pcap in TLS 1.3 (the encrypted flight without its "
                "Finished): the client's",
                [(quit_in_clear(48712, "tls13-no-finished", 5.0), gave_up)]),
        Capture("hunt7-whole-answer-client-quit-in-clear-at-once.pcap",
                "TLS 1.2, the server's whole answer (to its ServerHelloDone), acknowledged; 5 ms later the client "
                "sends QUIT in the clear and closes 1.5 s after: the client's",
                [(quit_in_clear(48713, "tls12", 5.0), gave_up)]),
        Capture("hunt7-stall-client-quit-in-clear-after-late-ack.pcap",
                "as hunt7-stall-client-quit-in-clear-at-once.pcap on the server's side of a long path: the client's "
                "ACK of the answer 1.195 s after it, its QUIT 5 ms after that ACK: the client's",
                [(quit_in_clear(48714, "tls12-no-done", 1200.0, ack_after_ms=1195.0), gave_up)]),
        Capture("hunt7-stall-client-quit-in-clear-after-1-2-s.pcap",
                "the control: the QUIT 1.2 s after the acknowledged partial answer, the close 1.5 s after it: the "
                "client waited for the rest, the server's (server-silent)",
                [(quit_in_clear(48715, "tls12-no-done", 1200.0),
                  Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         [("no-answer", "server", "flight")]))]),
        Capture("hunt7-lone-ccs-before-server-hello-done.pcap",
                "TLS 1.2, the server's answer without its ServerHelloDone, acknowledged; the client's ChangeCipherSpec "
                "alone 2 ms later, acknowledged; its close 30 s after: server-silent at the ChangeCipherSpec, the "
                "detail naming it (not a Finished)",
                [(lone_ccs(48716), Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                                          [("no-answer", "server", "ccs")]))]),
    ]
