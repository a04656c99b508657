"""Captures merged by time from two taps, one per direction, whose clocks differ
(``Capture.client_skew_ms``): a tap pair in front of a mail relay, or a SPAN session per
direction, written into one file by ``mergecap``. Each tap keeps its own order; across the two,
a packet can come tens of milliseconds before the packet that caused it.

- The client's tap ahead: the client's first bytes come before the server's SYN-ACK, which
  they acknowledge. Where the client's handshake ACK is not in the capture (its first data
  segment carries the ACK), nothing tells where the server's stream starts until its SYN-ACK
  comes: the conversation waits for the server's next segment (``tcp.streams.synack_awaited``)
  instead of taking the capture for a late start ("TLS already under way").
- The client's tap behind: a client's reset can come before the server's bytes that its
  earlier segments acknowledge; it waits behind them (each direction keeps its order).
- A 4-tuple reused at once: the old conversation's last ACK comes after the new SYN; it
  acknowledges the old sequence numbers and must not give the new conversation's server its
  start (``tcp.streams.stale_for_syn``).
"""
from __future__ import annotations

import dataclasses

from generate import (
    DID_NOT_REQUEST, NOT_OFFERED, SEED_EXPECT, Capture, Conv, Expect, Pkt, client_hello,
    did_not_request_conv, implicit_465, mail_in_clear, not_offered_conv, opening, seed_conv,
)


class PiggybackConv(Conv):
    """A conversation whose client sends no separate handshake ACK: its first data segment
    carries the ACK of the server's SYN (or the capture lost the pure ACK)."""

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        i = next(i for i, p in enumerate(pkts) if p.side == "C" and p.flags == "A" and not p.payload)
        return pkts[:i] + pkts[i + 1:], marks


class BareResetConv(Conv):
    """A conversation the client ends by acknowledging the server's last reply, then a reset
    without ACK 1 ms later (a socket aborted with SO_LINGER 0)."""

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        last = pkts[-1]
        assert last.side == "C" and last.flags == "RA"
        return pkts[:-1] + [dataclasses.replace(last, flags="A"),
                            dataclasses.replace(last, flags="R", ack=0,
                                                ts_ns=last.ts_ns + 1_000_000)], marks


def _mismatch(cport: int) -> Conv:
    c = PiggybackConv(cport=cport, sport=465, close=("rst", "C"))
    c.c(client_hello("skew mismatch", "mx.example.com"), tag="client_hello")
    c.s(b"220 mail.example.com ESMTP\r\n", tag="banner")
    return c


def scenarios() -> list[Capture]:
    implicit = Expect("tls", "none", "implicit-tls", "unknown")
    mismatch = Expect("aborted", "server", "implicit-tls-mismatch", "unknown",
                      findings=[("implicit-tls-plaintext-reply", "server", "banner")])
    return [
        Capture("skew-implicit-tls-client-ahead.pcap",
                "port 465, TLS from the first byte; the client sends no separate handshake ACK, and "
                "its tap's clock is 15 ms ahead: its ClientHello comes before the server's SYN-ACK",
                [(implicit_465(PiggybackConv(cport=40920, sport=465)), implicit)],
                client_skew_ms=-15.0),
        Capture("skew-implicit-tls-mismatch-client-ahead.pcap",
                "port 465: the client's ClientHello (no separate handshake ACK, its tap 15 ms ahead) "
                "comes before the server's SYN-ACK; the server answers a plaintext 220; the client resets",
                [(_mismatch(40921), mismatch)], client_skew_ms=-15.0),
        Capture("skew-seed-client-ahead.pcap",
                "the seed dialogue (STARTTLS in the domain slot), the client's tap 25 ms ahead: "
                "each command comes before the reply it follows",
                [(seed_conv(cport=40922), SEED_EXPECT)], client_skew_ms=-25.0),
        Capture("skew-seed-client-behind.pcap",
                "the seed dialogue, the client's tap 25 ms behind: each reply comes before the "
                "command it answers",
                [(seed_conv(cport=40923), SEED_EXPECT)], client_skew_ms=25.0),
        Capture("skew-reset-client-ahead.pcap",
                "client-did-not-request's dialogue ended by the client's ACK of the 221 and a reset "
                "without ACK; its tap 60 ms ahead: the reset comes before the server's last replies, "
                "which the client's segments before it acknowledge",
                [(mail_in_clear(opening(BareResetConv(cport=40924, close=("rst", "C")))),
                  DID_NOT_REQUEST)],
                client_skew_ms=-60.0),
        Capture("skew-port-reuse.pcap",
                "two conversations on one 4-tuple, the second opened 1 ms after the first closed, "
                "the client's tap 3 ms ahead: the server's last ACK of the first comes after the "
                "second's SYN",
                [(did_not_request_conv(cport=40925), DID_NOT_REQUEST),
                 (not_offered_conv(cport=40925, isn=(0x71717171, 0x13131313)), NOT_OFFERED)],
                client_skew_ms=-3.0),
    ]
