"""A reset without ACK merged before the segment it answers (two taps whose clocks differ).

A socket that was closed (its FIN sent) answers a segment bringing data with a reset that has no
ACK and takes its sequence number from that segment's ACK field (RFC 9293 3.10.7). In a file
merged from two taps, one per direction (``mergecap``), whose clocks differ, that reset can come
before the segment it answers; the reassembler holds it until a segment of the other side with
data the closed side did not acknowledge, acknowledging up to the reset, is read (its cause), at
most the causal window (``tcp.reassembler._unanswered``), so the facts the segment carries are
read.

- ``order-close-reset-before-clienthello.pcap``: the server answers STARTTLS with 220 and closes
  (FIN); the client acknowledges the FIN, then sends its ClientHello, which the server's kernel
  answers with a reset without ACK. The client's tap is 20 ms late, so the reset comes before the
  client's STARTTLS, its ACK of the FIN and its ClientHello. The ClientHello is read (its frame
  is ``tls.client_hello_frame``), then the reset; the client's pure ACK of the FIN, which
  acknowledges up to the reset too, is no cause (a closed socket resets data, not an ACK).
- ``order-close-reset-after-clienthello.pcap``: the same conversation captured at one point (no
  skew): the reset comes after the ClientHello; the same verdict and facts.
"""
from __future__ import annotations

import dataclasses

from generate import READY, STARTTLS, Capture, Conv, Expect, Pkt, client_hello, opening


class ResetAnswersConv(Conv):
    """A conversation whose last packet, the other side's, reaches a closed socket of
    ``resetter``: 0.3 ms later that side's kernel answers with a reset without ACK, whose
    sequence number is the packet's ACK field."""

    def __init__(self, resetter: str, **kw: object) -> None:
        super().__init__(close=None, **kw)  # type: ignore[arg-type]
        self.resetter = resetter

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        cause = pkts[-1]
        assert cause.side != self.resetter and cause.payload and "A" in cause.flags
        return pkts + [dataclasses.replace(cause, ts_ns=cause.ts_ns + 300_000, side=self.resetter,
                                           flags="R", seq=cause.ack, ack=0, payload=b"", off=None,
                                           label=None)], marks


def _close_after_ready(cport: int) -> Conv:
    conv = opening(ResetAnswersConv("S", cport=cport))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.fin("S")
    conv.c(client_hello(f"order close {cport}", "mx.example.com"), tag="client_hello", acked=False)
    return conv


CLOSED_AFTER_READY = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220)


def scenarios() -> list[Capture]:
    return [
        Capture("order-close-reset-before-clienthello.pcap",
                "STARTTLS answered 220, then the server closes; the client's ClientHello gets a "
                "reset without ACK from the server's kernel; the client's tap 20 ms late: the "
                "reset comes before the ClientHello it answers, which is still read",
                [(_close_after_ready(40930), CLOSED_AFTER_READY)], client_skew_ms=20.0),
        Capture("order-close-reset-after-clienthello.pcap",
                "order-close-reset-before-clienthello.pcap captured at one point: the reset "
                "after the ClientHello it answers",
                [(_close_after_ready(40931), CLOSED_AFTER_READY)]),
    ]
