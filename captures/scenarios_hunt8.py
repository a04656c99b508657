"""A client that speaks plaintext after its ClientHello, before any answer of the server's (the
twenty-first session's second hunt).

``TlsNotTls`` (the client's plaintext in the middle of the handshake) ends the client's wait when
it comes, as after a partial answer (``scenarios_hunt7``): the wait on a ClientHello never answered
was counted to the client's close.

- ``hunt8-client-quit-in-clear-after-hello-at-once.pcap``: STARTTLS, 220, the ClientHello (the
  server's ACK at once); 5 ms after that ACK (6 ms after the ClientHello) the client sends QUIT
  in the clear, and closes 30 s after it, the server silent throughout. It read the server's
  (``server-silent``, "the client gave up waiting"): the client did not wait for an answer, it
  gave up on TLS at once, its own decision (``client``, ``tls-handshake-failed``, no case, at the
  QUIT), as ``_spoke_clear_at_once`` after an answer.
- ``hunt8-client-quit-in-clear-after-hello-at-once-long-path.pcap``: the same on the client's side
  of a long path: the server's ACK of the ClientHello comes 1.195 s after it, after the QUIT: the
  client's.
- ``hunt8-client-quit-in-clear-after-hello-1-2-s.pcap``: the control, the QUIT 1.2 s after the
  acknowledged ClientHello, the close 30 s after it: the client waited, the server's
  (``server-silent``), as PHPMailer's QUIT after its handshake timeout; the detail names the QUIT.
- ``hunt8-client-quit-in-clear-after-hello-10-s-long-path.pcap``: the control on a long path: the
  server's ACK 1.195 s after the ClientHello, the QUIT 10 s after it: the server's.
"""
from __future__ import annotations

from generate import READY, STARTTLS, Capture, Conv, Expect, LateAck, client_hello, opening


def quit_after_hello(cport: int, quit_after_ms: float, *, ack_after_ms: float | None = None) -> Conv:
    """STARTTLS, 220, the client's TLS 1.3 ClientHello, acknowledged by the server at once
    (``ack_after_ms``: only that long after it, a long path), no answer; the client's QUIT in the
    clear ``quit_after_ms`` after the ClientHello and its close 30 s after that, the server silent."""
    conv: Conv = (LateAck(tag="client_hello", ack_after_ms=ack_after_ms, segment=0, cport=cport, close=None)
                  if ack_after_ms is not None else Conv(cport=cport, close=None))
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt8 {cport}", "mx.example.com"), tag="client_hello", acked=ack_after_ms is None)
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=quit_after_ms, acked=False)
    conv.fin("C", tag="client_fin", delay_ms=30000.0, acked=False)
    return conv


def scenarios() -> list[Capture]:
    gave_up = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220)
    silent = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                    [("no-answer", "server", "client_hello")])
    return [
        Capture("hunt8-client-quit-in-clear-after-hello-at-once.pcap",
                "STARTTLS, 220, the ClientHello (acknowledged); 5 ms later the client sends QUIT in the clear and "
                "closes 30 s after, the server silent: it gave up on TLS at once, the client's",
                [(quit_after_hello(48801, 5.0), gave_up)]),
        Capture("hunt8-client-quit-in-clear-after-hello-at-once-long-path.pcap",
                "as hunt8-client-quit-in-clear-after-hello-at-once.pcap on the client's side of a long path: the "
                "server's ACK of the ClientHello 1.195 s after it, after the QUIT: the client's",
                [(quit_after_hello(48802, 5.0, ack_after_ms=1195.0), gave_up)]),
        Capture("hunt8-client-quit-in-clear-after-hello-1-2-s.pcap",
                "the control: the QUIT 1.2 s after the acknowledged ClientHello, the close 30 s after it: the client "
                "waited, the server's (server-silent)",
                [(quit_after_hello(48803, 1200.0), silent)]),
        Capture("hunt8-client-quit-in-clear-after-hello-10-s-long-path.pcap",
                "the control on a long path: the server's ACK of the ClientHello 1.195 s after it, the QUIT 10 s "
                "after it, the close 30 s after that: the server's (server-silent)",
                [(quit_after_hello(48804, 10000.0, ack_after_ms=1195.0), silent)]),
    ]
