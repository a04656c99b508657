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
"""
from __future__ import annotations

from generate import Capture, Conv, Expect
from scenarios_hunt6 import _answer
from scenarios_quitcross import QuitAtOnce, _hello


def answer_and_quit_lost(cport: int) -> Conv:
    """``scenarios_quitcross.answer_lost_quit_at_once`` with the answer (its resends too) and the
    QUIT lost by the capture."""
    conv = _hello(QuitAtOnce(tag="flight", quit_ms=5.0, cport=cport, close=None), cport)
    conv.s(_answer(cport, "tls12"), tag="flight", resend_ms=(1000.0, 3000.0, 7000.0), lost=[0])
    conv.c(b"QUIT\r\n", tag="quit", lost=[0])
    conv.fin("C", tag="client_fin", delay_ms=30000.0)
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
    ]
