"""A reset in the receiver's window whose only answer is a pure ACK of the receiver: a challenge ACK,
or a window update that crossed the reset (the twenty-seventh session).

A stack that follows RFC 5961 3.2 drops a reset in its window that is not at its next expected byte
and answers it with a *challenge ACK*: a pure ACK at its own next byte that acknowledges only what it
had (captures/scenarios_reset25.py). An ACK the receiver sent before the reset reached it, a window
update (the same acknowledgement number, another window) that crossed the reset on the way, is the
same in every field the TCP layer reads: it comes after the reset in the capture, from the side the
reset went to, and acknowledges nothing new. A reset at the receiver's real next byte (its side's
bytes before it sent and lost by the capture) followed by such a window update read as dropped: no
``tcp-gap`` for the bytes lost, the reset not read as the end of the conversation.

Now a reset that only such a pure ACK answers is dropped only once the conversation goes on: a
later segment of the receiver (any: bytes, its FIN, its reset, a keep-alive; a stack that took the
reset sends nothing more), bytes of the reset's side, or a segment of the reset's side before the
reset's sequence number (a reset at its side's next byte leaves nothing before it to send). If it
ends there (nothing after the pure ACK up to the end of the capture, or only a FIN or reset of the
reset's side at or past it), whether the reset was dropped is not told, and it reads as a reset
with nothing after it does (the side's bytes before it missing: a ``tcp-gap`` at the reset, the
conversation ended there). Captured on a tap between the two hosts
(the client's packets at TTL 64, the server's at 52):

- ``tcp27-server-reset-window-update-crossed.pcap``: after the EHLO reply, a reset of the server
  1000 bytes past its next byte in the capture (its 1000 bytes before it lost by the tap), then the
  client's window update 0.05 ms later (sent before the reset reached it: its acknowledgement
  number is its last ACK's, its window 1002 instead of 502; tshark: ``tcp.analysis.window_update``),
  and nothing more: ``incomplete``, a 1000-byte ``tcp-gap`` at the reset (it read ``incomplete``
  without the finding, the reset dropped).
- ``tcp27-client-reset-window-update-crossed.pcap``: the mirror, after the 220 to STARTTLS a reset
  of the client 1000 bytes past its next byte, the server's window update (1009 instead of 509)
  and nothing more: ``incomplete``, a ``tcp-gap`` of the client's 1000 bytes at the reset, as the
  same reset with nothing after it (it read ``incomplete`` at the 220, no finding).
- ``tcp27-server-reset-challenge-ack-then-nothing.pcap``: as the first with a true challenge ACK
  (the client's window unchanged, 0.1 ms after the reset; tshark: ``tcp.analysis.duplicate_ack``)
  and nothing after it: the same packets but for the window field, which the TCP layer does not
  read, read the same.
- ``tcp27-server-reset-challenge-ack-then-client-fin.pcap``: the challenge ACK, then only the
  client's FIN 2 s later (no bytes): the client's stack still had the connection, so the reset was
  dropped: ``aborted``, ``no-mail-transaction`` (the client left before any mail), as before this
  rule.

Controls, read as before (the conversation goes on: the reset was dropped): the reset25 captures
with a challenge ACK and the session right after it; and ``late_capture`` (not shipped: built by
tests/test_tcp27.py in a temporary folder), the challenge ACK, then 3 s later (past the 2 s causal
window) STARTTLS and the TLS session: ``tls``, the reset counted in ``ignored_resets``. It is not
shipped because two capture sweeps trip on it, on main as well (neither is this rule's: the
drop rests on the challenge ACK alone there): the client's tap 25 ms behind puts the challenge ACK
before the reset (tests/test_transforms.py, skew), and the server's direction alone has only the
220 at the server's real next byte, 3 s after the reset, past the reset's wait (the one-direction
cut); either way the reset is taken (``incomplete``, a ``tcp-gap`` at it).
"""
from __future__ import annotations

from typing import Any

from generate import READY, STARTTLS, TLS_OK, Capture, Expect, Pkt, opening
from scenarios_hunt14 import OffReset, tls_after

#: how far past its side's next byte (in the capture) the reset lies: the bytes the tap lost
LOST = 1000

#: the receiver's window in its window update (the generator's usual ones: client 502, server 509)
WINDOW_UPDATE = {"C": 1002, "S": 1009}


class AnsweredReset(OffReset):
    """A conversation whose reset labelled ``off`` carries the sequence number ``LOST`` past its
    side's next byte, followed by the other side's pure ACK at its own next byte acknowledging
    the reset side's next byte (what it had): with ``window_update``, 50 us later, a window
    update that crossed the reset (another window), else 0.1 ms later a challenge ACK (RFC 5961
    3.2; ``scenarios_hunt14.OffReset``'s)."""

    def __init__(self, *, window_update: bool, **kw: Any) -> None:
        super().__init__(shift=LOST, challenge=True, **kw)
        self.window_update = window_update

    def answer(self, p: Pkt, conv_index: int, other: str) -> Pkt:
        if self.window_update:
            return Pkt(p.ts_ns + 50_000, conv_index, other, "A", p.ack, p.seq, label="window-update",
                       window=WINDOW_UPDATE[other])
        return super().answer(p, conv_index, other)


#: the reading of a reset with nothing after it: its side's bytes before it missing
RESET_TAKEN = Expect("incomplete", "unknown", "incomplete", "valid", findings=[("tcp-gap", "capture", "label:off")])


def server_reset(cport: int, *, window_update: bool) -> AnsweredReset:
    """The EHLO reply, the client's ACK, the server's reset 0.3 ms later and its answer."""
    conv = opening(AnsweredReset(cport=cport, window_update=window_update, close=None))
    conv.rst("S", label="off", delay_ms=0.3)
    return conv


def client_reset_after_ready(cport: int) -> AnsweredReset:
    """STARTTLS, its 220, the client's reset 0.3 ms later and the server's window update."""
    conv = opening(AnsweredReset(cport=cport, window_update=True, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.rst("C", label="off", delay_ms=0.3)
    return conv


def challenge_then_client_fin(cport: int) -> AnsweredReset:
    """The server's reset, the client's challenge ACK, the client's FIN 2 s later (no bytes)."""
    conv = server_reset(cport, window_update=False)
    conv.fin("C", tag="client_fin", delay_ms=2000.0, acked=False)
    return conv


def challenge_pause_then_tls(cport: int) -> AnsweredReset:
    """The server's reset, the client's challenge ACK, STARTTLS 3 s later and the session."""
    conv = opening(AnsweredReset(cport=cport, window_update=False))
    conv.rst("S", label="off", delay_ms=0.3)
    conv.c(STARTTLS, tag="starttls", delay_ms=3000.0).s(READY, tag="starttls_reply")
    return tls_after(conv, f"tcp27 {cport}")


def scenarios() -> list[Capture]:
    return [
        Capture("tcp27-server-reset-window-update-crossed.pcap",
                "after the EHLO reply the server's reset 1000 bytes past its next byte in the capture (the tap lost "
                "its bytes before it), the client's window update that crossed it (same ACK, window 1002) and "
                "nothing more: the reset ends the conversation, the 1000 bytes missing (incomplete, tcp-gap at the "
                "reset)",
                [(server_reset(49701, window_update=True), RESET_TAKEN)]),
        Capture("tcp27-client-reset-window-update-crossed.pcap",
                "after the 220 to STARTTLS the client's reset 1000 bytes past its next byte in the capture, the "
                "server's window update that crossed it (same ACK, window 1009) and nothing more: the client's "
                "reset ends the conversation, its 1000 bytes missing (tcp-gap at the reset)",
                [(client_reset_after_ready(49702),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, 220,
                         findings=[("tcp-gap", "capture", "label:off")]))]),
        Capture("tcp27-server-reset-challenge-ack-then-nothing.pcap",
                "the server's reset 1000 bytes past its next byte, the client's challenge ACK 0.1 ms later (window "
                "unchanged) and nothing more: not told from a window update that crossed the reset, the "
                "conversation did not go on (incomplete, tcp-gap at the reset)",
                [(server_reset(49703, window_update=False), RESET_TAKEN)]),
        Capture("tcp27-server-reset-challenge-ack-then-client-fin.pcap",
                "the server's reset 1000 bytes past its next byte, the client's challenge ACK, then only the "
                "client's FIN 2 s later: a stack that took the reset sends nothing more, so the client's FIN shows "
                "its connection still open, the reset dropped; the client left before any mail (aborted, "
                "no-mail-transaction)",
                [(challenge_then_client_fin(49704), Expect("aborted", "none", "no-mail-transaction", "valid"))]),
    ]


def late_capture() -> Capture:
    """Not shipped (tests/test_tcp27.py builds it in a temporary folder; the module docstring says
    which capture sweeps would trip on it, on main as well): the conversation goes on 3 s after the
    challenge ACK."""
    return Capture("tcp27-server-reset-challenge-ack-pause-then-tls.pcap",
                   "the server's reset 1000 bytes past its next byte, the client's challenge ACK, then 3 s later "
                   "(past the causal window) STARTTLS and the session: the conversation went on, the reset was "
                   "dropped (tls)",
                   [(challenge_pause_then_tls(49705), TLS_OK)])
