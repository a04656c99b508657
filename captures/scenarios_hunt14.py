"""Resets that the stacks ignore, and a post-quantum ClientHello split in two segments (the twenty-third
session's hunt).

A TCP stack accepts a reset only when its sequence number lies in its receive window (RFC 793
3.4, RFC 9293 3.10.7.4); since RFC 5961 3.2 (Linux, FreeBSD, Windows) only a reset at exactly the
next expected byte ends the connection, one elsewhere in the window is answered by a "challenge
ACK" (the receiver's pure ACK at its own next byte, which the real peer, had it sent the reset,
would answer with a reset at that byte), and one outside the window is dropped without a word.
Blind reset injection (an attacker or a DPI box guessing sequence numbers; censors send several
resets at several guesses), a NAT or load balancer that resets a 4-tuple it keeps for an older
connection, and resets crossing a reordered path all put such resets in captures, and the
conversation goes on after them as if they had not come: Wireshark flags the segments after them
only as retransmissions of the jump.

pcapsmtp ended the conversation at any reset: the mail sent in the clear after it was not read
(``mail`` false: "a box on the path reset the connection before any mail transaction"), a TLS
session established after it read as aborted at the reset. Captured at the client (the client's
packets at TTL 64, the server's at 52):

- ``hunt14-reset-far-past-then-tls.pcap``: after the EHLO reply, a reset with the server's address
  and TTL, its sequence number 2^30 past the server's next byte (far outside any window); the
  client's STARTTLS, the 220, the TLS 1.2 session and the mail in it go on: ``tls``.
- ``hunt14-reset-far-past-then-plaintext.pcap``: the same reset, then the client skips the offer
  and sends the mail in the clear: ``plaintext``, the client's (``client-did-not-request``).
- ``hunt14-reset-far-past-foreign-ttl-then-plaintext.pcap``: as the last one, the reset at TTL 250
  (a box on the path; the rule that reads it as forged, ``reset-forged``, must not end the
  conversation either): ``plaintext``, the client's.
- ``hunt14-reset-far-behind-then-tls.pcap``: after the 220, a reset with the client's address and
  TTL 2^30 behind the client's next byte; the ClientHello and the session go on: ``tls``.
- ``hunt14-reset-in-window-challenge-ack-then-tls.pcap`` (``in_window_capture``, not shipped: the
  capture sweeps would trip on its misreading): after the EHLO reply, a reset with the server's
  address 1000 bytes past its next byte (in the window, not at it), the client's challenge ACK
  0.1 ms later, then STARTTLS and the session: ``tls`` (RFC 5961 3.2). It still reads
  ``incomplete`` (the reset taken for the server's bytes sent and lost): a strict xfail.

A ClientHello with a post-quantum key share (X25519MLKEM768, 1216 bytes, as Chrome, Firefox,
Go 1.24 and OpenSSL 3.5 send by default) is 1851 bytes here: two TCP segments. A box that reads only
the first (a DPI box that expects the ClientHello in one packet, the "tldr.fail" breakage) or a
path that drops the second leaves the server with half a record; the client's capture shows the
server's ACK of the first segment and the second resent until the client gives up. Controls that
read right (the box's, ``hello-lost``, as a black hole of the whole ClientHello):

- ``hunt14-pq-hello-second-segment-lost-close.pcap``: the client closes 10 s after its last resend;
  ``...-quit.pcap``: it sends QUIT in the clear and closes.
- ``hunt14-pq-hello-split-tls12.pcap``: the same ClientHello whole, answered by a TLS 1.2 server:
  ``tls`` (the record put together from its two segments).

Controls: ``hunt14-reset-exact-after-ehlo-reply.pcap``, the server's own reset at its next byte
after the EHLO reply and nothing more (the connection ended there: ``aborted``,
``no-mail-transaction``); ``hunt14-reset-far-past-then-client-close.pcap``, the far reset and then
only the client's close 2 s later (the reset did not end the connection, the client's close did,
before any mail: ``aborted``, ``no-mail-transaction``, as the same capture without the reset).
"""
from __future__ import annotations

from typing import Any

from generate import (
    EHLO, EHLO_NO_TLS, MAIL_STEPS, MOD, MSS, QUIT_STEPS, READY, STARTTLS, TLS_OK, Capture, Conv, Expect, Pkt,
    app_data, client_finish_tls12, close_notify, det, ext, handshake, mail_in_clear, opening, record,
    server_finish_tls12, server_flight_tls12, tls12_session, u8, u16, x25519_pub,
)

#: how far a far reset lies from its side's next byte (beyond any window: RFC 7323 caps one at 2^30)
FAR = 1 << 30


class OffReset(Conv):
    """A conversation whose reset labelled ``off`` carries the sequence number ``shift`` past (or,
    negative, behind) its side's next byte; with ``challenge``, the other side's pure ACK at its
    own next byte follows it 0.1 ms later (RFC 5961 3.2's challenge ACK)."""

    def __init__(self, *, shift: int, challenge: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.shift, self.challenge = shift, challenge

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        out: list[Pkt] = []
        for p in pkts:
            if p.label != "off":
                out.append(p)
                continue
            out.append(Pkt(**{**p.__dict__, "seq": (p.seq + self.shift) % MOD}))
            if self.challenge:
                out.append(self.answer(p, conv_index, "S" if p.side == "C" else "C"))
        return out, marks

    def answer(self, p: Pkt, conv_index: int, other: str) -> Pkt:
        """The other side's pure ACK after the reset ``p``: its next byte is what the reset
        acknowledged, its acknowledgement the reset's own (unshifted) sequence number."""
        return Pkt(p.ts_ns + 100_000, conv_index, other, "A", p.ack, p.seq, label="challenge-ack")


def tls_after(conv: Conv, label: str) -> Conv:
    """The TLS 1.2 session after the 220: EHLO, the mail and QUIT inside it."""
    return tls12_session(conv, label, "mx.example.com", "mx.example.com",
                         [("C", EHLO), ("S", EHLO_NO_TLS)] + MAIL_STEPS + QUIT_STEPS)


def reset_after_ehlo_reply(cport: int, shift: int, *, tls: bool, ttl: int | None = None,
                           challenge: bool = False) -> Conv:
    """The EHLO reply offering STARTTLS, the client's ACK, a reset with the server's address
    0.3 ms later ``shift`` from the server's next byte (TTL ``ttl``, None: the server's), then
    STARTTLS and the TLS session (``tls``) or the mail in the clear."""
    conv = opening(OffReset(cport=cport, shift=shift, challenge=challenge))
    conv.rst("S", ttl=ttl, label="off", delay_ms=0.3)
    if not tls:
        return mail_in_clear(conv, first_tag="mail")
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    return tls_after(conv, f"hunt14 {cport}")


def reset_after_ready(cport: int, shift: int) -> Conv:
    """STARTTLS, its 220, a reset with the client's address 0.3 ms later ``shift`` from the
    client's next byte, then the ClientHello and the session."""
    conv = opening(OffReset(cport=cport, shift=shift))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.rst("C", label="off", delay_ms=0.3)
    return tls_after(conv, f"hunt14 {cport}")


def reset_then_close(cport: int, shift: int) -> Conv:
    """The EHLO reply, a reset with the server's address ``shift`` from its next byte, nothing
    more but the client's close 2 s later (``shift`` 0: the server's own reset, nothing after)."""
    conv = opening(OffReset(cport=cport, shift=shift, close=None))
    conv.rst("S", label="off", delay_ms=0.3)
    if shift:
        conv.fin("C", tag="client_fin", delay_ms=2000.0, acked=False)
    return conv


def in_window_capture() -> Capture:
    """Not shipped (tests/test_hunt14_captures.py builds it in a temporary folder): a reset in the
    window that pcapsmtp still misreads (a strict xfail), which the capture sweeps would trip on."""
    return Capture("hunt14-reset-in-window-challenge-ack-then-tls.pcap",
                   "after the EHLO reply a reset with the server's address 1000 bytes past its next byte (in the "
                   "window, not at it), the client's challenge ACK 0.1 ms later (RFC 5961 3.2), then STARTTLS and "
                   "the session (tls)",
                   [(reset_after_ehlo_reply(49405, 1000, tls=True, challenge=True), TLS_OK)])


def pq_client_hello(label: str, sni: str) -> bytes:
    """A TLS 1.3 ClientHello offering X25519MLKEM768 (0x11EC, a 1216-byte share) and X25519, with a
    400-byte padding extension: 1851 bytes, more than one segment."""
    suites = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8]
    name = sni.encode()
    exts = ext(0, u16(len(name) + 3) + u8(0) + u16(len(name)) + name)
    exts += ext(10, u16(6) + u16(0x11EC) + u16(0x001D) + u16(0x0017))
    exts += ext(11, u8(1) + u8(0))
    algs = [0x0807, 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501]
    exts += ext(13, u16(2 * len(algs)) + b"".join(u16(a) for a in algs))
    exts += ext(23, b"") + ext(0xFF01, u8(0))
    exts += ext(43, u8(4) + u16(0x0304) + u16(0x0303)) + ext(45, u8(1) + u8(1))
    shares = (u16(0x11EC) + u16(1216) + det(label + " mlkem share", 1216)
              + u16(0x001D) + u16(32) + x25519_pub(label + " client share"))
    exts += ext(51, u16(len(shares)) + shares) + ext(21, bytes(400))
    body = (u16(0x0303) + det(label + " client random", 32) + u8(32) + det(label + " session id", 32)
            + u16(2 * len(suites)) + b"".join(u16(x) for x in suites) + u8(1) + u8(0) + u16(len(exts)) + exts)
    return record(22, handshake(1, body), version=0x0301)


def pq_hello_second_lost(cport: int, *, quit: bool) -> Conv:
    """STARTTLS, 220, the post-quantum ClientHello's first segment (acknowledged), its second
    0.05 ms later never acknowledged, resent 0.2, 0.6, 1.4, 3 and 6.2 s after it (a box drops
    it); 10 s after the last resend the client closes (``quit``: sends QUIT in the clear first)."""
    hello = pq_client_hello(f"hunt14 {cport}", "mx.example.com")
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(hello[:MSS], tag="client_hello")
    conv.c(hello[MSS:], tag="hello_rest", delay_ms=0.05, resend_ms=(200.0, 600.0, 1400.0, 3000.0, 6200.0))
    if quit:
        conv.c(b"QUIT\r\n", tag="quit", delay_ms=10000.0, acked=False)
    conv.fin("C", tag="client_fin", delay_ms=1.0 if quit else 10000.0, acked=False)
    return conv


def pq_hello_split_tls12(cport: int) -> Conv:
    """The post-quantum ClientHello whole (two segments), a TLS 1.2 server's answer, both
    Finished, EHLO and QUIT inside, the close_notify both ways."""
    label = f"hunt14 {cport}"
    conv = opening(Conv(cport=cport))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(pq_client_hello(label, "mx.example.com"), tag="client_hello")
    conv.s(server_flight_tls12(label, "mx.example.com")[0], tag="server_hello")
    conv.c(client_finish_tls12(label)).s(server_finish_tls12(label))
    for k, (side, text) in enumerate([("C", EHLO), ("S", EHLO_NO_TLS)] + QUIT_STEPS):
        conv.step(side, app_data(f"{label} appdata {k}", len(text)))
    return conv.c(close_notify(label + " client close")).s(close_notify(label + " server close"))


def scenarios() -> list[Capture]:
    plaintext = Expect("plaintext", "client", "client-did-not-request", "valid")
    lost = Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                  [("request-not-received", "middlebox", "client_hello")])
    return [
        Capture("hunt14-reset-far-past-then-tls.pcap",
                "a reset with the server's address and TTL after the EHLO reply, its sequence number 2^30 past "
                "the server's next byte: outside any window, dropped by the client's stack (RFC 5961 3.2); "
                "STARTTLS, the TLS session and the mail in it go on (tls)",
                [(reset_after_ehlo_reply(49401, FAR, tls=True), TLS_OK)]),
        Capture("hunt14-reset-far-past-then-plaintext.pcap",
                "the same reset, then the client skips the offer and sends the mail in the clear: the client's "
                "(client-did-not-request)",
                [(reset_after_ehlo_reply(49402, FAR, tls=False), plaintext)]),
        Capture("hunt14-reset-far-past-foreign-ttl-then-plaintext.pcap",
                "as hunt14-reset-far-past-then-plaintext.pcap, the reset at TTL 250 (a box on the path): still "
                "outside the window, dropped; the mail in the clear is the client's (client-did-not-request)",
                [(reset_after_ehlo_reply(49403, FAR, tls=False, ttl=250), plaintext)]),
        Capture("hunt14-reset-far-behind-then-tls.pcap",
                "after the 220 a reset with the client's address and TTL 2^30 behind the client's next byte: "
                "dropped by the server's stack; the ClientHello and the session go on (tls)",
                [(reset_after_ready(49404, -FAR), TLS_OK)]),
        Capture("hunt14-reset-far-past-then-client-close.pcap",
                "the control: the far reset after the EHLO reply, then only the client's close 2 s later: the "
                "client left before any mail (aborted, no-mail-transaction)",
                [(reset_then_close(49407, FAR), Expect("aborted", "none", "no-mail-transaction", "valid"))]),
        Capture("hunt14-pq-hello-second-segment-lost-close.pcap",
                "a post-quantum ClientHello in two segments, the second never acknowledged (resent five times: a "
                "box drops it), the client's close 10 s after the last resend: the box's (hello-lost)",
                [(pq_hello_second_lost(49411, quit=False), lost)]),
        Capture("hunt14-pq-hello-second-segment-lost-quit.pcap",
                "as hunt14-pq-hello-second-segment-lost-close.pcap, the client sending QUIT in the clear before "
                "its close: the box's (hello-lost)",
                [(pq_hello_second_lost(49412, quit=True), lost)]),
        Capture("hunt14-pq-hello-split-tls12.pcap",
                "the post-quantum ClientHello whole in two segments, a TLS 1.2 server's answer, the session: tls",
                [(pq_hello_split_tls12(49413), TLS_OK)]),
        Capture("hunt14-reset-behind-ack-then-plaintext.pcap",
                "after the EHLO reply and the client's ACK of it a reset with the server's address and TTL 1000 "
                "bytes behind the server's next byte, behind what the client acknowledged: never in the client's "
                "window (RFC 9293 3.10.7.4), dropped; the mail in the clear is the client's (client-did-not-request)",
                [(reset_after_ehlo_reply(49414, -1000, tls=False), plaintext)]),
        Capture("hunt14-reset-behind-ack-client-then-tls.pcap",
                "after the 220 (acknowledging STARTTLS) a reset with the client's address and TTL 1000 bytes "
                "behind the client's next byte, behind what the server acknowledged: dropped by the server's "
                "stack; the ClientHello and the session go on (tls)",
                [(reset_after_ready(49415, -1000), TLS_OK)]),
        Capture("hunt14-reset-exact-after-ehlo-reply.pcap",
                "the control: the server's own reset at its next byte after the EHLO reply, nothing after "
                "(aborted, no-mail-transaction: the connection ended before any mail)",
                [(reset_then_close(49406, 0), Expect("aborted", "none", "no-mail-transaction", "valid"))]),
    ]
