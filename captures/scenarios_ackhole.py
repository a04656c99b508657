"""A hole proven by the sender's own later sequence number (tshark's ``tcp.analysis.lost_segment``,
"previous segment not captured").

A pure ACK or a reset of a side whose sequence number lies past that side's next byte shows that
its stack had sent the bytes between: the capture lost them. Here the lost bytes are the side's
last ones, with nothing of its data after them and nothing of the other side acknowledging them
(a capture of the server's direction only, or one that lost the client's ACKs too): without that
evidence the server looked silent ("never answered"); with it the hole is a ``tcp-gap`` at the
proving segment (tshark's lost_segment frame, ref ``lost_segment:S``) and what the server said is
not known.

Controls, where nothing was lost: a keep-alive (sequence number one before the next byte), a
zero-window probe (a byte at the next sequence number, the ACKs after it staying at it), the
server's data overtaken by its own later pure ACK on the way to the capture (one direction
reordered: the data arrives later and fills what the ACK pointed past), the same with a reset.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from generate import (
    BANNER, EHLO, EHLO_OK, READY, STARTTLS, TLS_OK, Capture, Conv, Expect, Pkt, client_hello, opening, starttls_ok,
)

QUIT = b"QUIT\r\n"
#: EHLO reply in two segments: the STARTTLS line is in the second
EHLO_HEAD = b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
EHLO_TAIL = b"250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"


class Edited(Conv):
    """A conversation whose packets are edited after emission: ``swap`` (the server packet
    carrying these bytes trades places and timestamps with the server's next pure ACK: the
    ACK overtook it on the way to the capture), ``keepalive_after`` (the server sends a
    keep-alive, 0 bytes at its next sequence number minus one, after the packet carrying these
    bytes), ``probe`` (the client's packet carrying these bytes is sent first as a 1-byte
    zero-window probe, the server's ACK not acknowledging it, then the client's own pure ACK
    at the probe's sequence number)."""

    def __init__(self, *, swap: bytes | None = None, keepalive_after: bytes | None = None,
                 probe: bytes | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.swap, self.keepalive_after, self.probe = swap, keepalive_after, probe

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        if self.swap is not None:
            i = next(k for k, p in enumerate(pkts) if p.side == "S" and p.payload == self.swap)
            j = next(k for k in range(i + 1, len(pkts))
                     if pkts[k].side == "S" and not pkts[k].payload and pkts[k].flags == "A")
            a, b = pkts[i], pkts[j]
            pkts[i], pkts[j] = replace(b, ts_ns=a.ts_ns), replace(a, ts_ns=b.ts_ns)
        if self.keepalive_after is not None:
            i = next(k for k, p in enumerate(pkts) if p.side == "S" and p.payload == self.keepalive_after)
            p = pkts[i]
            ka = replace(p, ts_ns=p.ts_ns + 500_000, seq=(p.seq + len(p.payload) - 1) % (1 << 32),
                         payload=b"", off=None, label="keepalive", flags="A")
            pkts.insert(i + 1, ka)
        if self.probe is not None:
            i = next(k for k, p in enumerate(pkts) if p.side == "C" and p.payload == self.probe)
            p = pkts[i]
            probe = replace(p, ts_ns=p.ts_ns - 3_000_000, payload=p.payload[:1], label="probe")
            held = replace(p, ts_ns=p.ts_ns - 2_000_000, side="S", flags="A", payload=b"", off=None,
                           label=None, seq=next(q.seq for q in pkts[i:] if q.side == "S"),
                           ack=p.seq)
            own = replace(p, ts_ns=p.ts_ns - 1_000_000, payload=b"", off=None, flags="A",
                          label="probe_ack")
            pkts[i:i] = [probe, held, own]
        return pkts, marks


def ready_lost(cport: int, *, only_server: bool) -> Conv:
    """STARTTLS, the server's 220 not in the capture (nor the client's ACK of it, nor its
    ClientHello, or nothing of the client at all with ``only_server``); the server's ACK of the
    ClientHello lies past the 220; the capture ends there."""
    if only_server:
        # (without the client's EHLO in the capture, the server's first reply after its
        # greeting, of several lines, is read as the EHLO reply: scenarios_oneside.py)
        conv = Conv(cport=cport, close=None, only_side="S")
        conv.s(BANNER, tag="banner").c(EHLO).s(EHLO_OK, tag="ehlo_reply")
    else:
        conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls")
    conv.s(READY, tag="starttls_reply", lost=[0], acked=False)
    conv.c(client_hello(f"ackhole {cport}", "mx.example.com"), tag="client_hello", lost=[0])
    return conv


def ready_blackholed(cport: int, *, server_closes: bool = True) -> Conv:
    """Captured at the client: the server's 220 to STARTTLS never arrives (a black hole on the
    path; neither it nor its retransmissions reach the client or the capture); 5 s later the
    client sends QUIT, which the server acknowledges with a pure ACK whose sequence number lies
    past the 220; the client closes, then the server (``server_closes``; else the capture ends
    after the server's ACK of the client's FIN, whose sequence number lies past the 220 too)."""
    conv = opening(Conv(cport=cport, close=("fin", "C") if server_closes else None))
    conv.c(STARTTLS, tag="starttls")
    conv.s(READY, tag="starttls_reply", lost=[0], resend_ms=())
    conv.c(QUIT, tag="quit", delay_ms=5000.0)
    if not server_closes:
        conv.fin("C", tag="client_fin")
    return conv


def ehlo_tail_lost(cport: int) -> Conv:
    """The EHLO reply's second segment (with the STARTTLS line and the final line) not in the
    capture, nor the client's ACK of it and its STARTTLS; the server's ACK of STARTTLS lies
    past the reply; the capture ends there."""
    conv = Conv(cport=cport, close=None)
    conv.s(b"220 mx.example.com ESMTP Postfix\r\n", tag="banner")
    conv.c(b"EHLO client.example.org\r\n", tag="greeting")
    conv.s([EHLO_HEAD, EHLO_TAIL], tag="ehlo_reply", lost=[1], acked=False)
    conv.c(STARTTLS, tag="starttls", lost=[0])
    return conv


def reset_past(cport: int) -> Conv:
    """STARTTLS; the server's 220 not in the capture, nor the client's ACK of it; then the
    server's reset, its sequence number past the 220 (the server's own: its TTL)."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls")
    conv.s(READY, tag="starttls_reply", lost=[0], acked=False)
    return conv.rst("S", delay_ms=20.0)


def reset_overtakes(cport: int) -> Conv:
    """Control: the server answers STARTTLS with 454 and resets; its direction reordered on the
    way to the capture puts the reset first, the 454 (below the reset's sequence number) 0.1 ms
    later."""

    class Overtaken(Conv):
        def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
            pkts, marks = super().emit(conv_index, t_start_ns)
            i = next(k for k, p in enumerate(pkts) if p.label == "rst")
            j = max(k for k in range(i) if pkts[k].side == "S" and pkts[k].payload)
            a, b = pkts[j], pkts[i]
            pkts[j], pkts[i] = replace(b, ts_ns=a.ts_ns), replace(a, ts_ns=b.ts_ns)
            return pkts, marks

    conv = opening(Overtaken(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls", acked=False)
    conv.s(b"454 4.7.0 TLS not available due to local problem\r\n", tag="starttls_reply", acked=False)
    return conv.rst("S", delay_ms=0.1)


class StaleReset(Conv):
    """A conversation whose reset (label ``rst``) carries a sequence number ``back`` bytes before
    its side's next byte (the end of the segment of that side a box on the path saw last) and an
    acknowledgement ``ack_back`` bytes before the other side's next byte."""

    def __init__(self, *, back: int, ack_back: int = 0, **kw: Any) -> None:
        super().__init__(**kw)
        self.back, self.ack_back = back, ack_back

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        i = next(k for k, p in enumerate(pkts) if p.label == "rst")
        p = pkts[i]
        pkts[i] = replace(p, seq=(p.seq - self.back) % (1 << 32), ack=(p.ack - self.ack_back) % (1 << 32))
        return pkts, marks


def reset_past_acked_beyond(cport: int, *, acks_quit: bool = False) -> Conv:
    """Captured at the client (the server's segments at TTL 52): banner, EHLO; the server's EHLO
    reply (its head, then its tail with the STARTTLS line) not in the capture; the client's QUIT
    acknowledges all of it; then a reset with the server's address at TTL 53 (one hop off: the
    server's own by its TTL) whose sequence number is the end of the reply's head, acknowledging
    the client's bytes up to the EHLO (``acks_quit``: up to the QUIT)."""
    conv = StaleReset(back=len(EHLO_TAIL), ack_back=0 if acks_quit else len(QUIT), cport=cport, close=None)
    conv.s(BANNER, tag="banner").c(EHLO, tag="greeting")
    conv.s([EHLO_HEAD, EHLO_TAIL], tag="ehlo_reply", lost=[0, 1], acked=False)
    conv.c(QUIT, tag="quit", acked=False)
    return conv.rst("S", ttl=53, delay_ms=0.5)


def scenarios() -> list[Capture]:
    # (the ClientHello the server's ACK acknowledges is a hole of the client's too, reported as a
    # hole at the end of a side: at the client's last segment, its STARTTLS)
    unknown_ready = Expect("incomplete", "unknown", "incomplete", "valid", True, None,
                           [("tcp-gap", "capture", "starttls"), ("tcp-gap", "capture", "lost_segment:S")])
    return [
        Capture("lost-segment-ready-one-direction.pcap",
                "only the server's direction captured: its 220 to STARTTLS is missing, its later ACK of "
                "the ClientHello carries a sequence number past it (tshark: previous segment not "
                "captured): the server answered, what is not in the capture; its EHLO reply offered STARTTLS",
                [(ready_lost(47701, only_server=True),
                  Expect("incomplete", "unknown", "incomplete", "valid", False, None,
                         [("one-sided", "capture", "first_frame"),
                          ("tcp-gap", "capture", "lost_segment:S")]))]),
        Capture("lost-segment-ready-acks-lost.pcap",
                "both directions, but the capture lost the server's 220 to STARTTLS, the client's ACK of it "
                "and its ClientHello; the server's ACK of the ClientHello lies past the 220 and the capture "
                "ends: the server answered, what is not in the capture",
                [(ready_lost(47702, only_server=False), unknown_ready)]),
        Capture("lost-segment-ehlo-tail-lost.pcap",
                "the EHLO reply's second segment (the STARTTLS line and the last line) is missing, and the "
                "client's ACK of it and its STARTTLS; the server's ACK of STARTTLS lies past the reply: the "
                "reply was longer than the capture shows, whether STARTTLS was offered is not known",
                [(ehlo_tail_lost(47703),
                  Expect("incomplete", "unknown", "incomplete", "unknown", False, None,
                         [("tcp-gap", "capture", "greeting"), ("tcp-gap", "capture", "lost_segment:S")]))]),
        Capture("lost-segment-reset-past.pcap",
                "STARTTLS; the server's 220 and the client's ACK of it are missing, then the server's own "
                "reset whose sequence number lies past the 220: it answered before it reset, what is not "
                "in the capture (tshark does not flag resets)",
                [(reset_past(47704),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, None,
                         [("tcp-gap", "capture", "label:rst")]))]),
        Capture("lost-segment-ready-blackholed.pcap",
                "captured at the client: the server's 220 to STARTTLS never arrives (a black hole on the "
                "path); 5 s later the client sends QUIT and the server's ACK of it lies past the 220: the "
                "server answered, the client never got the answer",
                [(ready_blackholed(47709), Expect("incomplete", "unknown", "incomplete", "valid", True, None,
                                                  [("tcp-gap", "capture", "lost_segment:S")]))]),
        Capture("lost-segment-ready-blackholed-cut.pcap",
                "as lost-segment-ready-blackholed.pcap, but the capture ends after the server's ACKs of the "
                "client's QUIT and FIN (no FIN of the server): only their sequence numbers show that the "
                "server answered STARTTLS; it is not blamed for a silence",
                [(ready_blackholed(47710, server_closes=False),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, None,
                         [("tcp-gap", "capture", "lost_segment:S")]))]),
        Capture("lost-segment-reset-past-acked-beyond.pcap",
                "captured at the client: the server's EHLO reply is missing, in two segments; the client's "
                "QUIT acknowledges all of it, then comes a reset with the server's address one hop off its "
                "TTL (53 where its segments came with 52: its own), its sequence number at the end of the "
                "reply's first segment: it proves those bytes sent (a gap at the reset), and the QUIT, "
                "acknowledging bytes past the reset, comes after it in causal order (bytes sent after the "
                "reset, or never): it is not read, and proves no loss past the reset",
                [(reset_past_acked_beyond(47711),
                  Expect("incomplete", "unknown", "incomplete", "unknown", False, None,
                         [("tcp-gap", "capture", "label:rst")]))]),
        Capture("lost-segment-reset-past-acks-quit.pcap",
                "as lost-segment-reset-past-acked-beyond.pcap, but the reset acknowledges the client's QUIT: "
                "it was sent after the QUIT arrived, which contradicts the QUIT's acknowledgement past it; "
                "capture order decides: the QUIT is read, its acknowledgement proves the whole reply lost "
                "(a gap at the QUIT, tshark's ACKed segment that wasn't captured)",
                [(reset_past_acked_beyond(47712, acks_quit=True),
                  Expect("incomplete", "unknown", "incomplete", "unknown", False, None,
                         [("tcp-gap", "capture", "quit")]))]),
        # controls
        Capture("lost-segment-keepalive.pcap",
                "control: the server sends a keep-alive (0 bytes at its next sequence number minus one) "
                "after its EHLO reply; nothing is lost: TLS",
                [(starttls_ok(opening(Edited(cport=47705, keepalive_after=EHLO_OK)),
                              "ackhole keepalive"), TLS_OK)]),
        Capture("lost-segment-window-probe.pcap",
                "control: the client's STARTTLS is first sent as a 1-byte zero-window probe that the "
                "server does not acknowledge, the client's ACK after it stays at the probe's sequence "
                "number; then STARTTLS whole: nothing is lost: TLS",
                [(starttls_ok(opening(Edited(cport=47706, probe=STARTTLS)), "ackhole probe"), TLS_OK)]),
        Capture("lost-segment-reordered.pcap",
                "control: the server's 220 to STARTTLS overtaken by its own next pure ACK (one direction "
                "reordered on the way to the capture): the ACK's sequence number lies past the 220 that "
                "comes right after it; nothing is lost: TLS",
                [(starttls_ok(opening(Edited(cport=47707, swap=READY)), "ackhole reordered"), TLS_OK)]),
        Capture("lost-segment-reset-overtakes.pcap",
                "control: the server's 454 to STARTTLS and its reset, the reset captured first (its "
                "sequence number past the 454 that comes right after it): the reset waits for it, the 454 "
                "is read and no byte is lost; the verdict is the one of the same packets in capture order "
                "(the server refused and reset: starttls-refused)",
                [(reset_overtakes(47708),
                  Expect("aborted", "server", "starttls-refused", "valid", True, 454,
                         [("server-closed", "server", "label:rst")]))]),
    ]

