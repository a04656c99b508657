"""The shapes real clients gave the stalled-server rule (the twentieth session's real-client tests,
tests/realclients/test_midanswer_real.py, a server that stops its answer to the ClientHello
short of its ServerHelloDone or its Finished).

- ``real20-tls13-stall-client-ccs-client-closes.pcap``: TLS 1.3, the server's encrypted flight
  without its Finished, acknowledged; the client sends its compatibility ChangeCipherSpec at once
  (GnuTLS, msmtp's library, sends it as soon as the ServerHello comes, RFC 8446 D.4) and its
  timeout closes 30 s later. The CCS carries nothing of the handshake, yet it was taken as the
  client's answer, so the stall read the client's ("closed the connection after the
  ServerHello"): the server's, case ``server-silent``, as without the CCS
  (hunt6-server-stalls-mid-answer-tls13-client-resets.pcap).
- ``real20-stall-client-quit-in-clear.pcap``: TLS 1.2, the answer without its ServerHelloDone,
  acknowledged; 30 s later the client's handshake timeout gives up on TLS and sends QUIT in the
  clear, and closes 2 s later (PHPMailer). It read the client's: the server's, the detail
  naming the QUIT.
- ``real20-tls13-client-ccs-then-hangs.pcap``: the mirror, TLS 1.3, the server's whole flight
  (to its Finished), the client's compatibility CCS at once and nothing more; its timeout closes
  30 s later: the client's, ``client-silent``, as without the CCS
  (hunt6-client-hangs-after-answer-tls13-client-resets.pcap).
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, client_hello, opening
from scenarios_hunt import CCS
from scenarios_hunt6 import CLIENT_TLS_TIMEOUT_MS, _answer


def _conv(cport: int, kind: str, end: str) -> Conv:
    """STARTTLS, 220, the ClientHello and the server's answer (``scenarios_hunt6._answer``'s
    ``kind``), acknowledged; then ``end``: "ccs-fin" (the client's CCS 1 ms later, its close
    ``CLIENT_TLS_TIMEOUT_MS`` after that) or "quit-fin" (QUIT in the clear
    ``CLIENT_TLS_TIMEOUT_MS`` later, the close 2 s after it)."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"real20 {cport}", "mx.example.com", tls13=kind.startswith("tls13")), tag="client_hello")
    conv.s(_answer(cport, kind), tag="flight")
    if end == "ccs-fin":
        conv.c(CCS, tag="ccs", delay_ms=1.0)
        conv.fin("C", tag="client_fin", delay_ms=CLIENT_TLS_TIMEOUT_MS)
    else:
        assert end == "quit-fin"
        conv.c(b"QUIT\r\n", tag="quit", delay_ms=CLIENT_TLS_TIMEOUT_MS)
        conv.fin("C", tag="client_fin", delay_ms=2000.0)
    return conv


def scenarios() -> list[Capture]:
    stalled = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                     [("no-answer", "server", "flight")])
    return [
        Capture("real20-tls13-stall-client-ccs-client-closes.pcap",
                "TLS 1.3, the server's flight without its Finished, acknowledged; the client's compatibility "
                "ChangeCipherSpec at once (GnuTLS), its timeout closing 30 s later: the server's",
                [(_conv(48701, "tls13-no-finished", "ccs-fin"), stalled)]),
        Capture("real20-stall-client-quit-in-clear.pcap",
                "TLS 1.2, the server's answer without its ServerHelloDone, acknowledged; 30 s later the client "
                "sends QUIT in the clear and closes 2 s after (PHPMailer): the server's",
                [(_conv(48702, "tls12-no-done", "quit-fin"), stalled)]),
        Capture("real20-tls13-client-ccs-then-hangs.pcap",
                "TLS 1.3, the server's whole flight, acknowledged; the client's compatibility ChangeCipherSpec "
                "at once and nothing more, its timeout closing 30 s later: the client's, client-silent",
                [(_conv(48703, "tls13", "ccs-fin"),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                         [("client-silent", "client", "flight")]))]),
    ]
