"""A client's bytes lost by the capture after its ClientHello, where the path dropped the server's
answer (the twenty-fourth session, ``analysis/verdict.py`` ``_answer_hole_lost``).

- ``merged24-answer-lost-quit-lost-at-once.pcap``: ``quitcross-answer-lost-quit-at-once.pcap``
  with the server's answer (and its three resends) and the client's QUIT in the clear lost by the
  capture: the answer is a hole the client never acknowledged (its close, 37 s later, still
  acknowledges none of it), the QUIT a hole of 6 bytes the server acknowledged 1 ms after it. The
  whole capture reads the client giving up at once (its QUIT 16 ms after the ClientHello, before
  any answer reached it); without the QUIT, what the client sent there (its QUIT at once, a TLS 1.3
  compatibility ChangeCipherSpec, also 6 bytes, an alert) cannot be told: ``incomplete``. It read
  the path's (``answer-lost``), as a client that sent nothing after its ClientHello and closed 37 s
  later (``pathhole-answer-lost.pcap``), the 6 bytes the capture lost ignored.
- ``merged24-answer-resent-after-quit.pcap``: the server's answer 200 ms after the ClientHello,
  its first copy lost on the path and resent 1.0 s later; the client's QUIT in the clear 1.1 s
  after its ClientHello, before the resend reached it (its segment acknowledges none of the
  answer), its close later acknowledging the answer whole. The answer crossed the QUIT because the
  path lost its first copy, not because the server was silent (``verdict._answer_came_late``): the
  general rule, the client's, at its close. It read ``server-silent`` ("the server sent nothing for
  1.1 s") for a server that answered in 200 ms (the session's review).
"""
from __future__ import annotations

from typing import Any

from generate import Capture, Conv, Expect
from scenarios_hunt6 import _answer
from scenarios_quitcross import QuitAtOnce, _hello, quit_acks_before


def answer_and_quit_lost(cport: int) -> Conv:
    """``scenarios_quitcross.answer_lost_quit_at_once`` with the answer (its resends too) and the
    QUIT lost by the capture."""
    conv = _hello(QuitAtOnce(tag="flight", quit_ms=5.0, cport=cport, close=None), cport)
    conv.s(_answer(cport, "tls12"), tag="flight", resend_ms=(1000.0, 3000.0, 7000.0), lost=[0])
    conv.c(b"QUIT\r\n", tag="quit", lost=[0])
    conv.fin("C", tag="client_fin", delay_ms=30000.0)
    return conv


class QuitBeforeResend(Conv):
    """The client's QUIT 900 ms after the first copy of the server's answer (tag ``flight``), its
    acknowledgement from before that answer; the client's later segments acknowledge it whole."""

    def emit(self, ci: int, t0: int) -> tuple[list[Any], dict[str, Any]]:
        pkts, marks = super().emit(ci, t0)
        quit_ = quit_acks_before(pkts, marks, "flight")
        ans = [p for p in pkts if p.side == "S" and p.payload and p.off is not None
               and p.off >= marks["flight"][1]]
        end = max(p.seq + len(p.payload) for p in ans) & 0xFFFFFFFF
        quit_.ts_ns = ans[0].ts_ns + 900_000_000
        for p in pkts:
            if p.side == "C" and p.ts_ns > ans[-1].ts_ns and p is not quit_:
                p.ack = end
        pkts.sort(key=lambda p: p.ts_ns)
        return pkts, marks


def answer_resent_after_quit(cport: int) -> Conv:
    conv = _hello(QuitBeforeResend(cport=cport, close=None), cport)
    conv.s(_answer(cport, "tls12"), tag="flight", delay_ms=200.0, resend_ms=(1000.0,))
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=5.0)
    conv.fin("C", tag="client_fin", delay_ms=1500.0)
    return conv


def scenarios() -> list[Capture]:
    return [
        Capture("merged24-answer-lost-quit-lost-at-once.pcap",
                "the server's answer never acknowledged, lost by the capture with its three resends; the client's "
                "QUIT 5 ms after it lost by the capture too (the server acknowledged it), the client's close 37 s "
                "later: what the client sent after its ClientHello cannot be told (incomplete)",
                [(answer_and_quit_lost(48841),
                  Expect("incomplete", "unknown", "incomplete", "valid", True, 220,
                         [("tcp-gap", "capture", "lost_segment:S"), ("tcp-gap", "capture", "lost_segment:C")]))]),
        Capture("merged24-answer-resent-after-quit.pcap",
                "the server's answer 200 ms after the ClientHello, its first copy lost on the path and resent 1 s "
                "later; the client's QUIT in the clear before the resend reached it, its close acknowledging the "
                "answer: the client's, at its close (not the server's silence)",
                [(answer_resent_after_quit(48851),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220, []))]),
    ]
