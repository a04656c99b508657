"""Captures whose bytes arrive cut small or out of order (issue 13, items 6 and 7).

- SMTP on a port outside the SMTP set is found by content from the first bytes of each
  direction *in sequence order*: a greeting cut into 1-byte segments (port 2600), a greeting
  whose segments arrive out of order (port 10025).
- Captures merged from two taps (or ``-i any`` on a multi-queue NIC) can show a server segment
  before the client segment it answers: the two directions are handed to the SMTP session in
  causal order (a segment that acknowledges the other side's bytes comes after them), so the
  pairing of replies and the verdict do not depend on that order, and a segment seen after the
  ACK that covers it is late, not lost (no gap).

Frames follow generate.py's conventions: a byte's frame is the record that carries it, whatever
the order of the records.
"""
from __future__ import annotations

from generate import (
    DID_NOT_REQUEST, EHLO, TLS_OK, Capture, Conv, Expect, Pkt, mail_in_clear, opening,
    starttls_ok,
)

BANNER_2600 = b"220 relay.example.net ESMTP Exim 4.96\r\n"

class SwappedConv(Conv):
    """A conversation as a capture merged out of order across directions shows it: the server
    packets that follow a client data segment (its ACK, its reply) come *before* it in the
    file. The timestamps stay with the positions, as a merge by time of two skewed taps
    writes them."""

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        out = list(pkts)
        i = 0
        while i < len(out):
            if out[i].side == "C" and out[i].payload:
                k = i + 1
                while k < len(out) and out[k].side == "S" and not set(out[k].flags) & {"S", "F", "R"}:
                    k += 1
                if k > i + 1:
                    ts = [q.ts_ns for q in out[i:k]]
                    moved = out[i + 1:k] + [out[i]]
                    out[i:k] = [_at(q, t) for q, t in zip(moved, ts)]
                    i = k
                    continue
            i += 1
        return out, marks

class AckOvertakesDataConv(SwappedConv):
    """``SwappedConv`` whose client direction is reordered too: each client data segment comes
    after the client's next pure ACK (an ACK of the server's reply, sent after the data, that
    overtook it on the way to the tap). The data's sequence numbers end where the ACK's start:
    it was sent first."""

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        out, marks = super().emit(conv_index, t_start_ns)
        i = 0
        while i < len(out):
            p = out[i]
            if p.side == "C" and p.payload and not set(p.flags) & {"S", "F", "R"}:
                j = next((k for k in range(i + 1, len(out)) if out[k].side == "C"), None)
                if j is not None and not out[j].payload and set(out[j].flags) == {"A"}:
                    out[i], out[j] = _at(out[j], p.ts_ns), _at(p, out[j].ts_ns)
                    i = j
            i += 1
        return out, marks


def _at(p: Pkt, ts_ns: int) -> Pkt:
    return Pkt(ts_ns, p.conv, p.side, p.flags, p.seq, p.ack, p.payload, p.off, p.label, p.captured,
               p.syn_options)

class ReplyFirstConv(Conv):
    """Each server data segment that answers a client command is moved before that command's
    segment (the pure ACKs stay where they are): whole command/reply pairs appear swapped."""

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        out = list(pkts)
        i = 0
        while i < len(out):
            p = out[i]
            if p.side == "S" and p.payload:
                # the last client data segment before it (its command)
                j = i - 1
                while j >= 0 and not (out[j].side == "C" and out[j].payload):
                    if out[j].side == "S" and out[j].payload:
                        j = -1
                        break
                    j -= 1
                if j >= 0:
                    ts = [q.ts_ns for q in out[j:i + 1]]
                    moved = [p] + out[j:i]
                    out[j:i + 1] = [_at(q, t) for q, t in zip(moved, ts)]
            i += 1
        return out, marks

def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    add = caps.append

    # item 6: the greeting in 1-byte segments on port 2600 (not an SMTP port): found by content
    c = Conv(cport=40380, sport=2600)
    opening(c, banner=[BANNER_2600[k:k + 1] for k in range(len(BANNER_2600))])
    add(Capture("content-1byte-greeting-2600.pcap",
                "server port 2600: the greeting arrives in 1-byte segments ('2', '2', '0', ' ', ...); "
                "found by content without --port; STARTTLS offered, the client does not request it",
                [(mail_in_clear(c), DID_NOT_REQUEST)]))

    # item 6: the greeting's segments out of order on port 10025
    c = Conv(cport=40381, sport=10025, reorder=True)
    opening(c, banner=[b"22", b"0 mx.exa", b"mple.com ESMTP Postfix\r\n"])
    add(Capture("content-reordered-greeting-10025.pcap",
                "server port 10025: the greeting's first segment ('22') arrives after the second "
                "('0 mx.exa'), and every later flight's segments are swapped in pairs too; found by "
                "content without --port; the client does not request STARTTLS",
                [(mail_in_clear(c), DID_NOT_REQUEST)]))

    # item 7: every server segment before the client segment it answers (two taps merged)
    c = SwappedConv(cport=40382)
    opening(c)
    starttls_ok(c, "swapped-dialogue")
    add(Capture("merged-swapped-directions.pcap",
                "two tap directions merged out of order: every server segment that acknowledges a client "
                "segment appears before it (the STARTTLS reply 220 before STARTTLS, the EHLO reply "
                "before EHLO); in causal order it is a plain STARTTLS and TLS 1.2",
                [(c, TLS_OK)]))

    # the same, and the client's own direction reordered: its ACK of a reply before its command
    c = AckOvertakesDataConv(cport=40384)
    opening(c)
    starttls_ok(c, "ack-overtakes-data")
    add(Capture("merged-ack-overtakes-data.pcap",
                "merged-swapped-directions.pcap with the client's direction reordered too: each "
                "client command comes after the client's ACK of the reply it gets (sent after it, "
                "its sequence number where the command ends); the command is read before that "
                "ACK, which waits for the reply: a plain STARTTLS and TLS 1.2",
                [(c, TLS_OK)]))

    # item 7: whole command/reply pairs swapped; a refusal that must stay paired with STARTTLS
    c = ReplyFirstConv(cport=40383)
    opening(c)
    c.c(b"STARTTLS\r\n", tag="starttls").s(b"454 4.7.0 TLS not available due to local problem\r\n",
                                           tag="starttls_reply")
    c.c(EHLO).s(b"250-mx.example.com\r\n250 PIPELINING\r\n")
    mail_in_clear(c)
    add(Capture("merged-reply-before-command.pcap",
                "each server reply appears before the client command it answers (STARTTLS refused "
                "with 454, then the mail in clear); paired in causal order it is starttls-refused",
                [(c, Expect("plaintext", "server", "starttls-refused", "valid", True, 454))]))
    return caps
