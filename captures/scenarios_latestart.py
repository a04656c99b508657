"""Captures that start late or lose bytes (issue 18): a late start is not an event, and a hole
spoils only what it touches.

- ``latestart-in-starttls.pcap``: a STARTTLS session captured from the client's first record
  after the handshake: TLS in both directions, the start not in the capture ->
  tls/none/tls-start-not-captured (never implicit TLS, never a failed handshake).
- ``latestart-in-starttls-next-frame.pcap``: the same capture one frame later (it starts with
  the server's ACK of that record): the same verdict.
- ``latestart-at-starttls-reply.pcap``: the same session captured from the server's 220 to the
  STARTTLS the capture missed: the 220 is no banner, the TLS after it is never read as lines.
- ``latestart-plaintext-mid-dialogue.pcap``: a plaintext delivery captured from the client's
  RCPT: without the greeting and the EHLO exchange nothing decides who is to blame ->
  incomplete/unknown.
- ``latestart-hole-before-ehlo-reply.pcap``: the client's EHLO is lost (acknowledged, never
  seen); the EHLO reply that follows cannot be tied to what asked for it -> incomplete.
"""
from __future__ import annotations

from typing import Any

from generate import (
    EHLO,
    EHLO_NO_TLS,
    MAIL_STEPS,
    QUIT_STEPS,
    READY,
    STARTTLS,
    Capture,
    Conv,
    Expect,
    Pkt,
    app_data,
    client_finish_tls12,
    client_hello,
    close_notify,
    mail_in_clear,
    opening,
    server_finish_tls12,
    server_flight_tls12,
)

MIDSTREAM = [("midstream", "capture", "first_frame")]


class LateConv(Conv):
    """A conversation the capture joins late: every packet before the first byte of the step
    tagged ``start_tag`` is not captured (SYN included), plus ``later`` more packets."""

    def __init__(self, *, start_tag: str, later: int = 0, **kw: Any) -> None:
        super().__init__(**kw)
        self.start_tag = start_tag
        self.later = later

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        side, off = marks[self.start_tag]
        first = next(i for i, p in enumerate(pkts) if p.side == side and p.off == off and p.payload)
        for p in pkts[:first + self.later]:
            p.captured = False
        return pkts, marks


def starttls_session(conv: Conv, label: str) -> Conv:
    """Banner, EHLO, STARTTLS answered 220, a TLS 1.2 handshake, then the mail inside TLS; the
    client's first record after the handshake is tagged ``inside``."""
    opening(conv)
    conv.c(STARTTLS, tag="starttls")
    conv.s(READY, tag="starttls_reply")
    flight, _ = server_flight_tls12(label, "mx.example.com")
    conv.c(client_hello(label, "mx.example.com"), tag="client_hello")
    conv.s(flight, tag="server_hello")
    conv.c(client_finish_tls12(label))
    conv.s(server_finish_tls12(label))
    encrypted = [("C", EHLO), ("S", EHLO_NO_TLS)] + MAIL_STEPS + QUIT_STEPS
    for k, (side, text) in enumerate(encrypted):
        conv.step(side, app_data(f"{label} appdata {k}", len(text)), tag="inside" if k == 0 else None)
    conv.c(close_notify(label + " client close"))
    conv.s(close_notify(label + " server close"))
    return conv


TLS_LATE = Expect("tls", "none", "tls-start-not-captured", "unknown", findings=MIDSTREAM)


def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    caps.append(Capture(
        "latestart-in-starttls.pcap",
        "a STARTTLS session captured from the client's first TLS record after the handshake: "
        "TLS both ways, its start not captured",
        [(starttls_session(LateConv(cport=40350, start_tag="inside"), "latestart"), TLS_LATE)]))
    caps.append(Capture(
        "latestart-in-starttls-next-frame.pcap",
        "the same STARTTLS session captured one frame later (from the server's ACK)",
        [(starttls_session(LateConv(cport=40350, start_tag="inside", later=1), "latestart"),
          TLS_LATE)]))
    caps.append(Capture(
        "latestart-at-starttls-reply.pcap",
        "a STARTTLS session captured from the server's 220 to a STARTTLS the capture missed: "
        "no banner, and the TLS after it is never read as SMTP lines",
        [(starttls_session(LateConv(cport=40351, start_tag="starttls_reply"), "latestart 220"),
          TLS_LATE)]))
    c = LateConv(cport=40352, start_tag="rcpt")
    opening(c)
    for k, (side, data) in enumerate(MAIL_STEPS):
        c.step(side, data, tag="rcpt" if k == 2 else None)
    c.extend(QUIT_STEPS)
    caps.append(Capture(
        "latestart-plaintext-mid-dialogue.pcap",
        "a plaintext delivery captured from the client's RCPT TO: the greeting and the EHLO "
        "exchange are not in the capture, so nobody is blamed",
        [(c, Expect("incomplete", "unknown", "incomplete", "unknown", findings=MIDSTREAM))]))
    c = Conv(cport=40353)
    c.s(b"220 mx.example.com ESMTP Postfix\r\n", tag="banner")
    c.c(EHLO, lost=[0])
    c.s(b"250-mx.example.com\r\n250-STARTTLS\r\n250 8BITMIME\r\n", tag="reply")
    mail_in_clear(c, first_tag="mail")
    caps.append(Capture(
        "latestart-hole-before-ehlo-reply.pcap",
        "the client's EHLO is lost (the server acknowledges it, the capture never saw it): the "
        "EHLO reply cannot be tied to what asked for it, so nobody is blamed",
        [(c, Expect("incomplete", "unknown", "incomplete", "unknown",
                    findings=[("tcp-gap", "capture", "reply")]))]))
    return caps
