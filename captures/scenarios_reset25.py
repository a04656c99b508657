"""Resets in the receiver's window that its stack answers with a challenge ACK and drops (RFC 5961
3.2; the twenty-fifth session).

A stack that follows RFC 5961 (Linux since 3.6, FreeBSD, Windows) ends a connection only for a
reset at exactly its next expected byte (RCV.NXT). A reset elsewhere in its window is answered by
a *challenge ACK*, a pure ACK at the receiver's own next byte acknowledging RCV.NXT (which the real
peer, had it sent the reset, answers with a reset at that byte), and dropped; the conversation goes
on, the side whose address the reset carries sending its next bytes at its real next byte, not past
the reset's. Blind reset injection puts such resets in captures (an attacker or a DPI box guessing
sequence numbers inside the window), and so does a box that resets with a stale sequence number.

pcapsmtp took a reset past its side's next byte (and under 2^24 past it) for the side's bytes sent
and lost (``HalfStream.reset_past``): a 1000-byte ``tcp-gap`` at the reset, the conversation ended
there (``incomplete``) though it went on to TLS. Now the reset waits as before (its side's bytes
sent before it may come late) and a segment after it drops it (counted in ``ignored_resets``): a
pure ACK of the receiver that acknowledges nothing new of the side, before the reset's sequence
number (the challenge ACK), or bytes of the side at its next byte that acknowledge more of the other
side than the reset did (sent after it). Captured at the client (the client's packets at TTL 64, the
server's at 52):

- ``reset25-in-window-server-reset-challenge-ack-then-tls.pcap``: after the EHLO reply and the
  client's ACK of it, a reset with the server's address and TTL 1000 bytes past the server's next
  byte, the client's challenge ACK 0.1 ms later (tshark: ``tcp.analysis.duplicate_ack``), then
  STARTTLS, the 220 at the server's real next byte (tshark: ``tcp.analysis.retransmission``, its
  sequence numbers behind the reset's) and the TLS session: ``tls``.
- ``reset25-in-window-client-reset-challenge-ack-then-tls.pcap``: the mirror, after the 220 a reset
  with the client's address 1000 bytes past the client's next byte, the server's challenge ACK,
  then the ClientHello and the session: ``tls``.

- ``reset25-in-window-server-reset-no-challenge-then-tls.pcap``: the server's reset as in the
  first, no challenge ACK (Linux rate-limits them, ``tcp_invalid_ratelimit``), then STARTTLS and
  the server's 220 at its real next byte, acknowledging the STARTTLS the reset did not: ``tls``.

Control, read as before (no challenge ACK: the reset took effect, or the receiver's answer is not in
the capture): ``reset25-in-window-server-reset-then-nothing.pcap``, the same server reset and
nothing after it: the server's 1000 bytes before it are missing from the capture (``incomplete``,
``tcp-gap`` at the reset).
"""
from __future__ import annotations

from generate import READY, STARTTLS, TLS_OK, Capture, Expect, opening
from scenarios_hunt14 import OffReset, reset_after_ehlo_reply, tls_after

#: how far past its side's next byte the in-window reset lies (in any window, not at the next byte)
IN_WINDOW = 1000


def client_reset_after_ready(cport: int) -> OffReset:
    """STARTTLS, its 220, a reset with the client's address and TTL 0.3 ms later ``IN_WINDOW``
    past the client's next byte, the server's challenge ACK 0.1 ms after it, then the
    ClientHello and the session."""
    conv = opening(OffReset(cport=cport, shift=IN_WINDOW, challenge=True))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.rst("C", label="off", delay_ms=0.3)
    tls_after(conv, f"reset25 {cport}")
    return conv


def server_reset_then_nothing(cport: int) -> OffReset:
    """The EHLO reply, the client's ACK, a reset with the server's address and TTL
    ``IN_WINDOW`` past its next byte, and nothing after it."""
    conv = opening(OffReset(cport=cport, shift=IN_WINDOW, close=None))
    conv.rst("S", label="off", delay_ms=0.3)
    return conv


def scenarios() -> list[Capture]:
    return [
        Capture("reset25-in-window-server-reset-challenge-ack-then-tls.pcap",
                "after the EHLO reply a reset with the server's address and TTL 1000 bytes past its next byte "
                "(in the window, not at it), the client's challenge ACK 0.1 ms later (RFC 5961 3.2: dropped), "
                "then STARTTLS and the session (tls)",
                [(reset_after_ehlo_reply(49501, IN_WINDOW, tls=True, challenge=True), TLS_OK)]),
        Capture("reset25-in-window-client-reset-challenge-ack-then-tls.pcap",
                "after the 220 a reset with the client's address and TTL 1000 bytes past its next byte, the "
                "server's challenge ACK 0.1 ms later (dropped), then the ClientHello and the session (tls)",
                [(client_reset_after_ready(49502), TLS_OK)]),
        Capture("reset25-in-window-server-reset-no-challenge-then-tls.pcap",
                "as reset25-in-window-server-reset-challenge-ack-then-tls.pcap without the challenge ACK: the "
                "server's 220 at its real next byte, acknowledging the STARTTLS the reset did not, shows the "
                "reset dropped (tls)",
                [(reset_after_ehlo_reply(49504, IN_WINDOW, tls=True), TLS_OK)]),
        Capture("reset25-in-window-server-reset-then-nothing.pcap",
                "the control: the server's reset 1000 bytes past its next byte after the EHLO reply and nothing "
                "after it, no challenge ACK: the 1000 bytes before it are missing (incomplete, tcp-gap at the "
                "reset)",
                [(server_reset_then_nothing(49503),
                  Expect("incomplete", "unknown", "incomplete", "valid",
                         findings=[("tcp-gap", "capture", "label:off")]))]),
    ]
