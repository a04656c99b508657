"""When the client acknowledged the server's TLS answer, on a capture clock that steps back (the
twenty-first session).

The rules for a client that had the server's whole answer and hung (analysis/verdict.py,
``_had_answer_ns``, ``_server_gave_up_on_client_flight``) compare the time the client's
acknowledgement of the server's bytes last advanced (``Transcript.server_acked_ns``) with the
times of the conversation's events. Those are continuous across a backward step of the capture's
clock (``analysis.clock``); the acknowledgement's time was the stamp as captured, so after a step
it lay an hour before the answer it acknowledged, and a client that closed as soon as the answer
reached it read as one that sat on it (``client-silent``). The analyzer now maps it by its frame
as every other time (``Analyzer._continuous_ends``, ``FlowClosed.server_acked_frame``).

- ``clockack-step-before-late-answer.pcap``: a mail in the clear; then the capture's clock steps
  back an hour, and a second conversation: STARTTLS, 220, ClientHello, the server's whole TLS 1.2
  answer, which the client acknowledges only 1.2 s later (a long path seen from the server's
  side), closing 5 ms after that acknowledgement: it closed as soon as it had the answer, the
  general rule (the client's, no case), as ``hunt6-client-closes-at-once-after-late-answer.pcap``
  (was: ``client-silent``, the wait counted from the answer).
- ``clockack-step-after-answer-acked.pcap``: STARTTLS, 220, ClientHello, the server's whole answer,
  acknowledged at once; the server's handshake timeout closes 60 s later, and the clock steps back
  an hour at the client's FIN 5 s after: the acknowledgement, before the step, came long before
  the client's close under any pause at the step: ``client-silent``, with the ``clock-step``
  finding (the time before a step is the one captured).
- ``clockack-step-at-late-ack.pcap``: STARTTLS, 220, ClientHello, the server's whole answer, which
  the client acknowledges 1.2 s later, where the capture's clock steps back an hour; the client
  closes 5 ms after: the acknowledgement moves with its frame in every reading of the pause at the
  step (``analysis.clock``), as the close after it does: the general rule (the client's, no case),
  with the ``clock-step`` finding (was: ``incomplete``, the readings with another pause kept the
  acknowledgement's time and read ``client-silent``; found by the review).
"""
from __future__ import annotations

from generate import (READY, STARTTLS, Capture, Conv, Expect, LateAck, Pkt, client_hello, mail_in_clear, opening,
                      server_flight_tls12)

#: how far the capture's clock steps back: an hour, as NTP (or a merge of two hosts' files) does
BACK_MS = 3_600_000
#: the server's TLS handshake timeout (it closes this long after its answer to the ClientHello)
SERVER_TLS_TIMEOUT_MS = 60000.0


class StepAtLateAck(LateAck):
    """As ``LateAck``, the capture's clock stepping back ``BACK_MS`` at the late ACK (it and
    every packet after it stamped that much earlier)."""

    def emit(self, conv_index: int, t_start_ns: int) -> tuple[list[Pkt], dict[str, tuple[str, int]]]:
        pkts, marks = super().emit(conv_index, t_start_ns)
        at = next(i for i, p in enumerate(pkts) if p.label == "late-ack")
        for p in pkts[at:]:
            p.ts_ns -= BACK_MS * 1_000_000
        return pkts, marks


def _hello(conv: Conv, cport: int) -> Conv:
    conv = opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"clockack {cport}", "mx.example.com"), tag="client_hello")
    return conv


def late_answer_after_step(cport: int) -> Conv:
    """STARTTLS, 220, ClientHello and the server's whole TLS 1.2 answer, which the client
    acknowledges 1.2 s later and closes 5 ms after that; the conversation starts an hour before
    the one before it ended, as stamped (the capture's clock stepped back between the two)."""
    conv = _hello(LateAck(cport=cport, close=None, tag="flight", ack_after_ms=1200.0,
                              start_offset_ms=-BACK_MS), cport)
    flight, _hello_len = server_flight_tls12(f"clockack {cport}", "mx.example.com")
    conv.s(flight, tag="flight", acked=False)
    conv.fin("C", tag="client_fin", delay_ms=1205.0)
    return conv


def late_ack_at_step(cport: int) -> Conv:
    """STARTTLS, 220, ClientHello and the server's whole TLS 1.2 answer, which the client
    acknowledges 1.2 s later, stamped an hour back (the clock steps there), and closes 5 ms after."""
    conv = _hello(StepAtLateAck(cport=cport, close=None, tag="flight", ack_after_ms=1200.0), cport)
    flight, _hello_len = server_flight_tls12(f"clockack {cport}", "mx.example.com")
    conv.s(flight, tag="flight", acked=False)
    conv.fin("C", tag="client_fin", delay_ms=1205.0)
    return conv


def step_at_client_close(cport: int) -> Conv:
    """STARTTLS, 220, ClientHello and the server's whole TLS 1.2 answer, acknowledged at once; the
    server's handshake timeout closes ``SERVER_TLS_TIMEOUT_MS`` later; the client's FIN 5 s after,
    stamped an hour back."""
    conv = _hello(Conv(cport=cport, close=None), cport)
    flight, _hello_len = server_flight_tls12(f"clockack {cport}", "mx.example.com")
    conv.s(flight, tag="flight")
    conv.fin("S", tag="server_fin", delay_ms=SERVER_TLS_TIMEOUT_MS, acked=False)
    conv.fin("C", tag="client_fin", delay_ms=5000.0 - BACK_MS)
    return conv


def scenarios() -> list[Capture]:
    return [
        Capture("clockack-step-before-late-answer.pcap",
                "a mail in the clear; the capture's clock steps back an hour; STARTTLS, 220, ClientHello, the "
                "server's whole answer, which the client acknowledges 1.2 s later and closes 5 ms after: it closed "
                "as soon as it had the answer (the general rule, no case)",
                [(mail_in_clear(opening(Conv(cport=48701))),
                  Expect("plaintext", "client", "client-did-not-request", "valid", False, None)),
                 (late_answer_after_step(48702),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220))]),
        Capture("clockack-step-after-answer-acked.pcap",
                "STARTTLS, 220, ClientHello, the server's whole answer acknowledged at once; the server's handshake "
                "timeout closes 60 s later; the capture's clock steps back an hour at the client's FIN 5 s after: "
                "the client had the answer long before its close whatever the pause at the step (client-silent)",
                [(step_at_client_close(48703),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                         [("client-silent", "client", "flight"), ("clock-step", "capture", "label:fin:C")]))]),
        Capture("clockack-step-at-late-ack.pcap",
                "STARTTLS, 220, ClientHello, the server's whole answer, acknowledged 1.2 s later where the capture's "
                "clock steps back an hour; the client closes 5 ms after: it closed as soon as it had the answer under "
                "every pause at the step (the general rule, no case, the clock-step finding)",
                [(late_ack_at_step(48704),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                         [("clock-step", "capture", "label:late-ack")]))]),
    ]
