"""Where a stream starts when the capture shows its first packets out of order.

A side whose start TCP does not tell (no SYN or SYN-ACK of it, no handshake ACK of the other
side: a late start) starts at the lowest sequence number of its first segments, whatever order
they arrive in (``tcp.halfstream``: its bytes wait until the other side sends more than a pure
ACK of none of them); and an ACK that the capture shows before the bytes it acknowledges is no
handshake ACK (``tcp.streams.refutes_ack_start``).

- ``latestart-first-segments-swapped.pcap``: recut-seed-no-handshake.pcap (no SYN, no SYN-ACK:
  a late start of both sides) with the banner and the EHLO each sent in two segments, the
  second of each written first. Each stream still starts at its lowest sequence number: the
  EHLO is read whole (its frame: the first in the file that carries any of its bytes, the one
  with its second half, as for any event that spans frames) and
  the verdict is the one of the capture in order -> incomplete/unknown/incomplete, the offer
  ``misplaced``, with the ``midstream`` finding and the first-line keyword
  (``ehlo-keyword-as-domain``).
- ``latestart-banner-acked-swapped.pcap``: recut-seed-banner-acked.pcap (no SYN-ACK, no
  handshake ACK: a late start of the server's side) with the banner in two segments, the
  second written first -> incomplete/unknown/incomplete as in order.
- ``recut-seed-ack-before-banner.pcap``: recut-seed-banner-acked.pcap with the client's ACK of
  the banner written before the banner (two taps merged out of order). That ACK is the
  client's first segment after its SYN, a pure ACK at its ISN+1, so while nothing of the
  server is seen it looks like the handshake ACK; the banner then lies before the start it
  would give, which proves it acknowledged bytes: no handshake ACK, the server's start is not
  known, as when the ACK comes after the banner -> incomplete/unknown/incomplete, the dialogue
  read (not the banner dropped as bytes before a start).
"""
from __future__ import annotations

from typing import Any

from generate import SEED_BANNER, SEED_REPLY, Capture, Expect, Pkt, mail_in_clear, opening
from scenarios_recut import HS_ACK, SYN, SYNACK, HandshakeLost

LATE = Expect("incomplete", "unknown", "incomplete", "misplaced",
              findings=[("ehlo-keyword-as-domain", "server", "ehlo_reply")])
LATE_MIDSTREAM = Expect("incomplete", "unknown", "incomplete", "misplaced",
                        findings=[("midstream", "capture", "first_frame"),
                                  ("ehlo-keyword-as-domain", "server", "ehlo_reply")])


def _swap(pkts: list[Pkt], i: int, j: int) -> None:
    """Packets ``i`` and ``j`` change places in the file, each place keeping its timestamp."""
    pkts[i].ts_ns, pkts[j].ts_ns = pkts[j].ts_ns, pkts[i].ts_ns
    pkts[i], pkts[j] = pkts[j], pkts[i]


class Rearranged(HandshakeLost):
    """``HandshakeLost`` whose first two payload segments of each side in ``swap_first`` are
    written in the other order, and (``ack_first``) whose client ACK of the banner is written
    before the banner."""

    def __init__(self, *, swap_first: tuple[str, ...] = (), ack_first: bool = False,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.swap_first = swap_first
        self.ack_first = ack_first

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        for side in self.swap_first:
            i, j = [k for k, p in enumerate(pkts) if p.side == side and p.payload][:2]
            assert j == i + 1, "the two segments are consecutive"
            first, second = pkts[i].off, pkts[j].off
            _swap(pkts, i, j)
            # an event's frame is the first frame in the file carrying any of its bytes:
            # for a step that starts in the first segment, the second one's (now written first)
            for name, (sd, off) in list(marks.items()):
                if sd == side and off == first and second is not None:
                    marks[name] = (sd, second)
        if self.ack_first:
            k = next(k for k, p in enumerate(pkts) if p.side == "S" and p.payload)
            ack = pkts[k + 1]
            assert ack.side == "C" and ack.flags == "A" and not ack.payload
            _swap(pkts, k, k + 1)
        return pkts, marks


def _seed(c: Rearranged, banner: Any = SEED_BANNER, ehlo: Any = b"EHLO ESA.com\r\n") -> Rearranged:
    opening(c, SEED_REPLY, banner=banner, ehlo=ehlo)
    mail_in_clear(c)
    return c


def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    add = caps.append
    banner2 = [SEED_BANNER[:9], SEED_BANNER[9:]]            # "220 mail." / "domain1.com ..."

    c = _seed(Rearranged(lost=(SYN, SYNACK), swap_first=("S", "C"), cport=40600),
              banner=banner2, ehlo=[b"EHLO ", b"ESA.com\r\n"])
    add(Capture("latestart-first-segments-swapped.pcap",
                "recut-seed-no-handshake.pcap (a late start: no SYN, no SYN-ACK) with the banner and "
                "the EHLO each in two segments, the second of each written first: each stream starts "
                "at its lowest sequence number, so the EHLO is read whole and the verdict is the one "
                "of the capture in order",
                [(c, LATE_MIDSTREAM)]))

    c = _seed(Rearranged(lost=(SYNACK, HS_ACK), swap_first=("S",), cport=40601), banner=banner2)
    add(Capture("latestart-banner-acked-swapped.pcap",
                "recut-seed-banner-acked.pcap (a late start of the server's side) with the banner in "
                "two segments, the second written first: the server's stream starts at the lowest "
                "sequence number, the verdict is the one of the capture in order",
                [(c, LATE)]))

    c = _seed(Rearranged(lost=(SYNACK, HS_ACK), ack_first=True, cport=40602))
    add(Capture("recut-seed-ack-before-banner.pcap",
                "recut-seed-banner-acked.pcap with the client's ACK of the banner written before the "
                "banner (two taps merged out of order): the banner lies before the start that ACK "
                "would give as a handshake ACK, so it acknowledged bytes and tells no start; the "
                "server's side is a late start as when the ACK comes after the banner, and the "
                "dialogue is read",
                [(c, LATE)]))
    return caps
