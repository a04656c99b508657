"""Captures of the twenty-third session's mend of the plaintext-in-the-handshake rules (mendA).

- ``mend23a-tls12-whole-quit-221-client-fin.pcap``: the server's whole TLS 1.2 answer, the client's
  QUIT in the clear 1.2 s later, the server's 221 to it in the clear, then the client's FIN first:
  client-silent, and the detail names the server's 221 as the server-first twin's does.
- ``mend23a-tls12-whole-quit-binary-server-fin.pcap``: the same, but the server's bytes after the
  QUIT are binary (no reply code), then the server's FIN first: client-silent, the detail saying the
  server sent bytes that are no SMTP reply, not that it answered the QUIT with them.
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, client_hello, opening
from scenarios_hunt13 import _flight


def _quit_then(cport: int, server_bytes: bytes, first: str) -> Conv:
    conv = Conv(cport=cport, close=None)
    opening(conv)
    conv.c(STARTTLS).s(READY)
    conv.c(client_hello(f"mend23a {cport}", "mx.example.com", tls13=False))
    conv.s(_flight(cport, "tls12"), tag="flight")
    conv.c(b"QUIT\r\n", delay_ms=1200.0)
    conv.s(server_bytes, delay_ms=1.0)
    f, o = ("C", "S") if first == "client" else ("S", "C")
    conv.fin(f, delay_ms=1.0)
    conv.fin(o, delay_ms=1.0)
    return conv


def scenarios() -> list[Capture]:
    hung = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                  findings=[("client-silent", "client", "flight")])
    return [
        Capture("mend23a-tls12-whole-quit-221-client-fin.pcap",
                "the whole TLS 1.2 answer, the client's QUIT 1.2 s later, the server's 221 in the clear, the "
                "client's FIN first: client-silent, the 221 named",
                [(_quit_then(49601, b"221 2.0.0 Bye\r\n", "client"), hung)]),
        Capture("mend23a-tls12-whole-quit-binary-server-fin.pcap",
                "the whole TLS 1.2 answer, the client's QUIT 1.2 s later, binary bytes of the server's, its FIN "
                "first: client-silent, the bytes no SMTP reply",
                [(_quit_then(49602, b"\x00\x01\x02\x03binary\r\n", "server"), hung)]),
    ]
