"""The server answers STARTTLS with a refusal and then ends the connection itself (its FIN or
RST right after the reply; nothing of the client follows in the capture).

The client had no next step: the refusal ended the conversation (``aborted``, the server's,
``starttls-refused``, case and finding ``server-closed`` at the server's end), where before the
capture was read as ending "before the client's next step" (``incomplete``). A ``421`` always closes
(RFC 5321 3.8); a server that closes after a ``454`` is rarer. Control: a hole in the server's
direction between its reply and its FIN (what the server said there is not known: ``incomplete``).

A reset after the refusal is checked as every reset (docs/output.md, "Forged resets"), but the
verdict does not rest on it: the refusal alone ruled TLS out (a client whose STARTTLS got anything
but 220 cannot start TLS on that connection, and a 421 closes it anyway, RFC 5321 3.8). After the
server's 421 (at the server's TTL, 52) a reset with the server's address but TTL 250 (a box with
initial TTL 255 five hops from the client) was not sent by the server's stack: still the server's
``starttls-refused``, evidence the 421, no case (the server did not close: no ``server-closed``),
and a ``reset-forged`` finding at the reset.
"""
from __future__ import annotations

from generate import STARTTLS, Capture, Conv, Expect, opening

R421 = b"421 4.3.2 Service shutting down\r\n"
R454 = b"454 4.7.0 TLS not available due to local problem\r\n"


def refused_then(cport: int, reply: bytes, end: str, *, lost_after: bytes | None = None,
                 ttl: int | None = None, delay_ms: float = 5.0, reply_lost: bool = False) -> Conv:
    """STARTTLS answered ``reply``; then the server's ``end`` ("rst" or "fin") 5 ms later, the
    capture ending there (the client's answer to it, if any, not captured). ``lost_after``: one
    more server segment between, not in the capture. ``ttl``: the reset's TTL (None: the
    server's own). ``delay_ms``: how long after the reply the server ends. ``reply_lost``: the
    reply is not in the capture (the client's ACK of it is)."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls")
    conv.s(reply, tag="starttls_reply", lost=[0] if reply_lost else [])
    if lost_after is not None:
        conv.s(lost_after, lost=[0], acked=False)
    return (conv.rst("S", ttl=ttl, delay_ms=delay_ms) if end == "rst"
            else conv.fin("S", delay_ms=delay_ms, acked=False))


def refused_then_client_quits(cport: int) -> Conv:
    """STARTTLS answered 421, the server's FIN 5 ms later; then the client, which had not read
    it yet, sends QUIT and closes (its FIN answers the server's)."""
    conv = opening(Conv(cport=cport, close=("fin", "C")))
    conv.c(STARTTLS, tag="starttls")
    conv.s(R421, tag="starttls_reply")
    conv.fin("S", delay_ms=5, acked=False)
    return conv.c(b"QUIT\r\n", tag="quit", delay_ms=1)


def scenarios() -> list[Capture]:
    return [
        Capture("starttls-421-server-resets.pcap",
                "STARTTLS answered '421 4.3.2 Service shutting down', then the server resets the "
                "connection; the capture ends there: the server refused and ended the conversation",
                [(refused_then(47801, R421, "rst"),
                  Expect("aborted", "server", "starttls-refused", "valid", True, 421,
                         [("server-closed", "server", "label:rst")]))]),
        Capture("starttls-454-server-closes.pcap",
                "STARTTLS answered 454, then the server closes its direction (FIN); the capture ends "
                "before anything more of the client: the client had no next step",
                [(refused_then(47802, R454, "fin"),
                  Expect("aborted", "server", "starttls-refused", "valid", True, 454,
                         [("server-closed", "server", "label:fin:S")]))]),
        Capture("starttls-454-server-closes-after-hole.pcap",
                "control: as starttls-454-server-closes.pcap, but a segment of the server between its "
                "454 and its FIN is not in the capture (its FIN's sequence number lies past it): what "
                "the server said there is unknown",
                [(refused_then(47803, R454, "fin", lost_after=b"250 2.0.0 Ok\r\n"),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, 454,
                         [("tcp-gap", "capture", "label:fin:S")]))]),
        Capture("starttls-421-forged-reset.pcap",
                "as starttls-421-server-resets.pcap, but the reset after the 421 comes with TTL 250 where "
                "every segment of the server came with 52: the server's stack did not send it, a box on "
                "the path forged it; the server's 421 had already refused STARTTLS, so the verdict stays "
                "the server's refusal, the forged reset a finding",
                [(refused_then(47804, R421, "rst", ttl=250),
                  Expect("aborted", "server", "starttls-refused", "valid", True, 421,
                         [("reset-forged", "middlebox", "label:rst")]))]),
        Capture("starttls-421-lost-forged-reset.pcap",
                "control: as starttls-421-forged-reset.pcap, but the capture lost the 421 (the client's "
                "ACK after it acknowledges its 33 bytes): the forged reset is not 'instead of the "
                "answer', the answer is missing from the capture",
                [(refused_then(47807, R421, "rst", ttl=250, reply_lost=True),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, None))]),
        Capture("starttls-454-server-closes-late.pcap",
                "STARTTLS answered 454; the client sends nothing more and the server closes 300 s later "
                "(its idle timeout, which RFC 5321 4.5.3.2 allows): the server refused, but did not close "
                "at once (no case server-closed)",
                [(refused_then(47805, R454, "fin", delay_ms=300_000.0),
                  Expect("aborted", "server", "starttls-refused", "valid", True, 454))]),
        Capture("starttls-421-server-closes-client-quits.pcap",
                "STARTTLS answered 421 and the server closes at once; the client's QUIT and FIN come after "
                "the server's FIN: the server ended the conversation first (case server-closed)",
                [(refused_then_client_quits(47806),
                  Expect("aborted", "server", "starttls-refused", "valid", True, 421,
                         [("server-closed", "server", "label:fin:S")]))]),
    ]
