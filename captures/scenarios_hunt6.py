"""Whose timer fires first around the server's answer to the ClientHello (the twentieth session's
hunt).

- ``hunt6-server-stalls-mid-answer-client-closes.pcap``: STARTTLS, 220, the ClientHello and the
  server's answer stopping before its ServerHelloDone (a server stalled signing or fetching an
  OCSP response), which the client acknowledges; 30 s later the client's own timeout closes
  first. It read the client's ("closed the connection after the ServerHello"), while the same
  stall ended by the server's timeout reads the server's (``hunt5-server-stalls-mid-answer``):
  the client waited for an answer that never completed, so the server's, as a server that never
  answered the ClientHello (``server``, case ``server-silent``, finding ``no-answer`` at the
  answer's last record). ``...-tls13-client-resets.pcap``: the same in TLS 1.3 (the encrypted
  flight without its Finished), the client resetting 300 s later. ``...-client-alert.pcap``: the
  client's timeout sends a fatal internal_error alert before it closes: the alert is the
  client's, the stall that caused it the server's, as ``hang-tls-stall-alert``.
- ``hunt6-client-hangs-after-answer-client-closes.pcap``: the mirror: the server's whole answer
  (to its ServerHelloDone), which the client acknowledges and never answers; 30 s later the
  client's own timeout closes, before the server's (no alert: a client refusing the certificate
  says so at once). It read the client's with no case and an RFC 8460 validation-failure:
  nothing says the receiving server's TLS failed, the client stalled (case ``client-silent``,
  as when the server's timeout closes first). ``...-tls13-client-resets.pcap``: TLS 1.3, the
  client resetting 300 s later. ``hunt6-client-closes-at-once-after-answer.pcap``: the control,
  the client closing 5 ms after the whole answer without an alert: it decided at once, the
  client's as before, no case.
- ``hunt6-client-silent-after-hrr.pcap``: the client's ClientHello answered with a
  HelloRetryRequest (and the compatibility ChangeCipherSpec), which the client acknowledges and
  never answers with its second ClientHello; 60 s later the server's handshake timeout closes,
  the client 5 s after. It read the server's ("closed the connection before the ServerHello"):
  the model did not see the HelloRetryRequest. ``client-silent``, as after a whole answer.
  ``...-client-closes.pcap``: the client's own timeout closes 30 s after the HelloRetryRequest:
  the same. ``hunt6-server-closes-after-hrr.pcap``: the mirror, the server closing 10 ms after
  its HelloRetryRequest, before the client could answer: the server's, as before.
  ``hunt6-server-silent-after-second-hello.pcap``: the client answers the HelloRetryRequest at
  once with its second ClientHello, which the server acknowledges and never answers; the client's
  timeout closes 30 s later. It read the client's ("after the HelloRetryRequest, before the
  ServerHello"): the ClientHello waited on was taken to be the first. The server's
  (``server-silent``, finding ``no-answer`` at the second ClientHello).
- ``hunt6-one-record-flight-client-closes.pcap``: TLS 1.3, the server's encrypted flight packed
  into one record (BoringSSL), acknowledged; the client's timeout closes 30 s later. Whether the
  record held the whole flight or only its start cannot be told (its size depends on a
  certificate chain the capture cannot read): neither the stalled-server nor the hung-client
  rule claims it (the client's, by the general rule, as before).
"""
from __future__ import annotations

from generate import (
    READY, STARTTLS, Capture, Conv, Expect, alert, client_hello, det, opening, record, server_flight_tls12,
)
from scenarios_hunt import CCS, _hrr
from scenarios_oneside import server_flight_tls13

#: the client's TLS handshake timeout here (it closes this long after the server's last record)
CLIENT_TLS_TIMEOUT_MS = 30000.0
#: the server's TLS handshake timeout (it closes this long after its answer to the ClientHello)
SERVER_TLS_TIMEOUT_MS = 60000.0


def _answer(cport: int, kind: str) -> bytes:
    """The server's answer to the ClientHello: "tls12" (ServerHello to ServerHelloDone),
    "tls12-no-done" (without its ServerHelloDone), "tls13" (to its 53-byte Finished),
    "tls13-no-finished" (the encrypted flight without its Finished), "hrr" (a HelloRetryRequest
    and the compatibility ChangeCipherSpec)."""
    label = f"hunt6 {cport}"
    if kind == "hrr":
        return _hrr(label) + CCS
    if kind == "tls13-one-record":
        # (BoringSSL: the ServerHello, the compatibility CCS and the whole encrypted flight packed
        # into one record: EncryptedExtensions, Certificate, CertificateVerify and Finished)
        flight = server_flight_tls13(label)
        return flight[:5 + 122 + 6] + record(23, det(f"{label} server flight", 27 + 700 + 89 + 53 - 3 * 17))
    if kind == "tls13-two-records":
        # (the EncryptedExtensions alone, then Certificate, CertificateVerify and Finished packed
        # into one record: whether that record ends the flight cannot be told either)
        flight = server_flight_tls13(label)
        return (flight[:5 + 122 + 6] + record(23, det(f"{label} extensions", 27))
                + record(23, det(f"{label} server flight", 700 + 89 + 53 - 2 * 17)))
    if kind.startswith("tls13"):
        flight = server_flight_tls13(label)
        return flight[:-(5 + 53)] if kind == "tls13-no-finished" else flight
    flight, hello_len = server_flight_tls12(label, "mx.example.com")
    if kind == "tls12-certificate-only":
        # (the ServerHello and the Certificate: the records before the ServerKeyExchange)
        cert_len = int.from_bytes(flight[hello_len + 3:hello_len + 5], "big")
        return flight[:hello_len + 5 + cert_len]
    return flight[:-9] if kind == "tls12-no-done" else flight   # (the ServerHelloDone record: 5 + 4 bytes)


def answered(cport: int, kind: str, end: str) -> Conv:
    """STARTTLS, 220, the ClientHello and the server's answer (``_answer``'s ``kind``), which the
    client acknowledges; then ``end``: "client-fin" / "client-rst" (the client's timeout closes or
    resets ``CLIENT_TLS_TIMEOUT_MS`` later, "-300" in the name: 300 s), "client-alert" (its timeout
    sends a fatal internal_error alert, then closes), "client-at-once" (it closes 5 ms later),
    "server-fin" (the server's timeout closes ``SERVER_TLS_TIMEOUT_MS`` later, the client 5 s after)
    or "server-at-once" (the server closes 10 ms later)."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt6 {cport}", "mx.example.com", tls13=not kind.startswith("tls12")),
           tag="client_hello")
    if kind.endswith("-gnutls"):
        # (GnuTLS sends its compatibility ChangeCipherSpec as soon as it has read the
        # ServerHello, before the rest of the server's flight when that comes later: RFC 8446 D.4)
        answer = _answer(cport, kind.removesuffix("-gnutls"))
        conv.s(answer[:5 + 122 + 6], tag="server_hello").c(CCS, tag="client_ccs")
        conv.s(answer[5 + 122 + 6:], tag="flight")
    else:
        # ("ack-with-client-fin": the client's first acknowledgement of the answer is its FIN)
        conv.s(_answer(cport, kind), tag="flight", acked=end != "ack-with-client-fin")
    if end.startswith("second-hello"):
        # (the client answers the HelloRetryRequest at once: its compatibility ChangeCipherSpec
        # and second ClientHello, which the server acknowledges and never answers)
        conv.c(CCS + client_hello(f"hunt6 {cport} 2", "mx.example.com", tls13=True), tag="client_hello2")
        end = end[len("second-hello-"):]
    wait = 300000.0 if end.endswith("-300") else CLIENT_TLS_TIMEOUT_MS
    if end.startswith("client-fin"):
        conv.fin("C", tag="client_fin", delay_ms=wait)
    elif end.startswith("client-rst"):
        conv.rst("C", delay_ms=wait)
    elif end == "client-alert":
        conv.c(alert(80), tag="alert", delay_ms=wait)
        conv.fin("C", tag="client_fin", delay_ms=0.1)
    elif end == "client-user-canceled":
        # (Java's JSSE ending a handshake: warning user_canceled, then close_notify)
        conv.c(alert(90, level=1) + alert(0, level=1), tag="alert", delay_ms=wait)
        conv.fin("C", tag="client_fin", delay_ms=0.1)
    elif end == "ccs-client-fin":
        conv.c(CCS, tag="client_ccs", delay_ms=1.0)
        conv.fin("C", tag="client_fin", delay_ms=wait)
    elif end == "client-bad-certificate":
        conv.c(alert(42), tag="alert", delay_ms=1500.0)
        conv.fin("C", tag="client_fin", delay_ms=0.1)
    elif end == "ack-with-client-fin":
        conv.fin("C", tag="client_fin", delay_ms=1205.0)
    elif end == "client-at-once":
        conv.fin("C", tag="client_fin", delay_ms=5.0)
    elif end == "server-fin":
        conv.fin("S", tag="server_fin", delay_ms=SERVER_TLS_TIMEOUT_MS, acked=False)
        conv.fin("C", tag="client_fin", delay_ms=5000.0)
    else:
        assert end == "server-at-once"
        conv.fin("S", tag="server_fin", delay_ms=10.0, acked=False)
        conv.fin("C", tag="client_fin", delay_ms=5000.0)
    return conv


def scenarios() -> list[Capture]:
    stalled = Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                     [("no-answer", "server", "flight")])
    hung = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                  [("client-silent", "client", "flight")])
    return [
        Capture("hunt6-server-stalls-mid-answer-client-closes.pcap",
                "STARTTLS, 220, ClientHello; the server's answer stops before its ServerHelloDone (a server "
                "stalled signing or fetching), the client acknowledges it; 30 s later the client's timeout "
                "closes first: the server's",
                [(answered(48601, "tls12-no-done", "client-fin"), stalled)]),
        Capture("hunt6-server-stalls-mid-answer-tls13-client-resets.pcap",
                "as hunt6-server-stalls-mid-answer-client-closes.pcap in TLS 1.3 (the encrypted flight without "
                "its Finished), the client resetting 300 s later",
                [(answered(48602, "tls13-no-finished", "client-rst-300"), stalled)]),
        Capture("hunt6-server-stalls-mid-answer-client-alert.pcap",
                "as hunt6-server-stalls-mid-answer-client-closes.pcap, the client's timeout sending a fatal "
                "internal_error(80) alert before it closes: the alert is the client's, the stall the server's",
                [(answered(48603, "tls12-no-done", "client-alert"),
                  Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         [("no-answer", "server", "flight"), ("tls-alert", "client", "alert")]))]),
        Capture("hunt6-client-hangs-after-answer-client-closes.pcap",
                "STARTTLS, 220, ClientHello; the client acknowledges the server's whole answer (to its "
                "ServerHelloDone) and sends nothing, no alert; 30 s later its own timeout closes, before the "
                "server's: the client's, client-silent",
                [(answered(48604, "tls12", "client-fin"), hung)]),
        Capture("hunt6-client-hangs-after-answer-tls13-client-resets.pcap",
                "as hunt6-client-hangs-after-answer-client-closes.pcap in TLS 1.3 (the flight to its 53-byte "
                "Finished), the client resetting 300 s later",
                [(answered(48605, "tls13", "client-rst-300"), hung)]),
        Capture("hunt6-client-closes-at-once-after-answer.pcap",
                "the control: the client closes 5 ms after the server's whole answer, without an alert: it "
                "decided at once, the client's with no case",
                [(answered(48606, "tls12", "client-at-once"),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220))]),
        Capture("hunt6-client-silent-after-hrr.pcap",
                "STARTTLS, 220, ClientHello; the server answers with a HelloRetryRequest and the compatibility "
                "ChangeCipherSpec, which the client acknowledges and never answers with a second ClientHello; "
                "60 s later the server's handshake timeout closes, the client 5 s after: the client's",
                [(answered(48607, "hrr", "server-fin"), hung)]),
        Capture("hunt6-client-silent-after-hrr-client-closes.pcap",
                "as hunt6-client-silent-after-hrr.pcap, the client's own timeout closing 30 s after the "
                "HelloRetryRequest: the client's",
                [(answered(48608, "hrr", "client-fin"), hung)]),
        Capture("hunt6-one-record-flight-client-closes.pcap",
                "TLS 1.3, the server's encrypted flight packed into one record (as BoringSSL sends it), which the "
                "client acknowledges; 30 s later the client's timeout closes: whether the record held the whole "
                "flight (a hung client) or its start (a stalled server) cannot be told, so neither rule claims it "
                "(the general rule: the client ended the handshake)",
                [(answered(48611, "tls13-one-record", "client-fin"),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220))]),
        Capture("hunt6-two-record-flight-client-closes.pcap",
                "as hunt6-one-record-flight-client-closes.pcap, the EncryptedExtensions in a record of their own "
                "and the rest of the flight packed into a second: whether that one ends the flight cannot be told "
                "either (the general rule: the client's)",
                [(answered(48612, "tls13-two-records", "client-fin"),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220))]),
        Capture("hunt6-client-refuses-certificate-mid-answer.pcap",
                "TLS 1.2: the server's ServerHello and Certificate, which the client acknowledges; 1.5 s later "
                "(a slow revocation check) the client sends bad_certificate(42) and closes, before the "
                "ServerKeyExchange came: the client refused the certificate as soon as it had it, its decision, "
                "no stall of the server's",
                [(answered(48613, "tls12-certificate-only", "client-bad-certificate"),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                         [("tls-alert", "client", "alert")]))]),
        Capture("hunt6-client-closes-at-once-after-late-answer.pcap",
                "a capture on the server's side of a long path (1.2 s round trip): the client's FIN 1.2 s after "
                "the server's whole answer is its first acknowledgement of it: the client closed as soon as it had "
                "the answer, no stall (the general rule: the client's, no case)",
                [(answered(48616, "tls12", "ack-with-client-fin"),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220))]),
        Capture("hunt6-server-stalls-mid-answer-client-user-canceled.pcap",
                "as hunt6-server-stalls-mid-answer-client-closes.pcap, the client's timeout sending the warning "
                "alerts user_canceled(90) and close_notify(0) before it closes, as Java's JSSE does: giving up, "
                "the stall the server's",
                [(answered(48617, "tls12-no-done", "client-user-canceled"), stalled)]),
        Capture("hunt6-client-silent-after-hrr-with-ccs.pcap",
                "as hunt6-client-silent-after-hrr-client-closes.pcap, the client sending its compatibility "
                "ChangeCipherSpec right after the HelloRetryRequest and nothing more: no second ClientHello, the "
                "client's, client-silent",
                [(answered(48618, "hrr", "ccs-client-fin"), hung)]),
        Capture("hunt6-server-stalls-mid-answer-gnutls-client.pcap",
                "as hunt6-server-stalls-mid-answer-tls13-client-resets.pcap, the ServerHello in a segment of its "
                "own and a GnuTLS client, which sends its compatibility ChangeCipherSpec right after it, before "
                "the rest of the flight, and closes 30 s later: the CCS is no answer of the client's, the stall "
                "the server's",
                [(answered(48614, "tls13-no-finished-gnutls", "client-fin"), stalled)]),
        Capture("hunt6-client-silent-after-answer-gnutls-client.pcap",
                "as hunt6-client-hangs-after-answer-tls13-client-resets.pcap with a GnuTLS client's early "
                "ChangeCipherSpec and nothing more: 60 s after the whole answer the server's handshake timeout "
                "closes, the client 5 s after: client-silent",
                [(answered(48615, "tls13-gnutls", "server-fin"), hung)]),
        Capture("hunt6-server-silent-after-second-hello.pcap",
                "STARTTLS, 220, ClientHello, the server's HelloRetryRequest; the client's second ClientHello "
                "at once, which the server acknowledges and never answers; 30 s later the client's timeout "
                "closes: the server's, as a ClientHello never answered",
                [(answered(48610, "hrr", "second-hello-client-fin"),
                  Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         [("no-answer", "server", "client_hello2")]))]),
        Capture("hunt6-server-closes-after-hrr.pcap",
                "the mirror: the server closes 10 ms after its HelloRetryRequest, before the client could "
                "answer: the server's",
                [(answered(48609, "hrr", "server-at-once"),
                  Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220))]),
    ]
