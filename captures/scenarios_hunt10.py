"""The server's answer to a client's plaintext in the middle of the TLS handshake (the
twenty-second session's hunt).

A client that gives up on TLS by speaking SMTP in the clear after its ClientHello (PHPMailer's
QUIT after its handshake timeout, or at once) sends bytes that are no TLS record; the server's TLS
stack answers them with an alert (OpenSSL: "wrong version number", unexpected_message; in TLS 1.3,
past its ServerHello, an encrypted alert), or just closes or resets. That answer came after the
plaintext, which ended the handshake: it read the server's (its alert, close or reset "during the
handshake"). Now the wait that counts is the client's, up to its plaintext, as when the client
closes after it:

- ``hunt10-quit-at-once-tls12-server-alert.pcap``: TLS 1.2, the server's whole answer, the client's
  QUIT in the clear 5 ms after it, the server's unexpected_message alert 1 ms after the QUIT, then
  both close: the client gave up on TLS at once (``client``, no case, at the QUIT).
  ``...-tls13-server-encrypted-alert.pcap`` the same in TLS 1.3 (a 19-byte encrypted alert);
  ``...-tls12-server-fin.pcap`` the server closing instead; ``...-tls13-server-rst.pcap``
  resetting.
- ``hunt10-quit-after-hello-at-once-server-alert.pcap``: no answer yet, QUIT 5 ms after the
  ClientHello, the server's cleartext alert: the client's, at once.
- Controls: ``hunt10-quit-after-hello-1-2-s-server-rst.pcap`` (QUIT 1.2 s after the unanswered
  ClientHello, the server's reset after it: the server never answered, ``server-silent``);
  ``hunt10-stall-quit-1-2-s-server-alert.pcap`` (TLS 1.2, the answer stopping before its
  ServerHelloDone, QUIT 1.2 s later, the server's alert: the server stalled, ``server-silent``);
  ``hunt10-whole-answer-quit-1-2-s-tls13-server-fin.pcap`` (TLS 1.3, the whole answer, QUIT 1.2 s
  later, the server's close: the client had all it needed and did not go on, ``client-silent``);
  ``hunt10-server-alert-before-quit.pcap`` (the server's alert 2 ms after its answer, the client's
  QUIT 5 ms after that: the alert came first, the server's, as before).

A 421 the server sends on its own right after its EHLO reply (shutting down, refusing the
session), which the client's STARTTLS crosses: the client reads it as the answer to STARTTLS. It
read as a stray line of the EHLO reply (case ``stray-answer``, "the replies are one behind", the
remedy one reply per command); a 421 is a reply of its own, announcing the close (RFC 5321 3.8):

- ``hunt10-421-crosses-starttls.pcap``: the 421 0.5 ms after the EHLO reply, the STARTTLS 0.1 ms
  after it, the server's close 1 ms later: the server's, case ``server-closed`` (finding at its
  FIN), as ``hunt10-421-answers-starttls.pcap``, the control, where the 421 answers STARTTLS.

A server that resets the connection instead of answering STARTTLS:

- ``hunt10-server-resets-instead-of-starttls-answer.pcap``: the server's reset 2 ms after STARTTLS:
  the server's (``starttls-refused``, at the reset); the detail said it "closed" the connection.
  ``hunt10-server-closes-instead-of-starttls-answer.pcap``: the control, its FIN.
"""
from __future__ import annotations

from generate import (READY, STARTTLS, Capture, Conv, Expect, LateAck, alert, client_finish_tls12, client_hello, det,
                      opening, record)
from scenarios_hunt6 import _answer

#: unexpected_message: OpenSSL's answer to a record whose header is no TLS
UNEXPECTED_MESSAGE = 10


def quit_then(cport: int, kind: str | None, quit_after_ms: float, react: str, *, react_first: bool = False) -> Conv:
    """STARTTLS, 220, the client's ClientHello (TLS 1.3 unless ``kind`` starts with "tls12"), the
    server's answer to it (``scenarios_hunt6._answer``'s ``kind``; None: no answer), all
    acknowledged at once; the client's QUIT in the clear ``quit_after_ms`` after the answer (after
    the ClientHello when none), and 1 ms after it the server's ``react``: "alert" (cleartext
    unexpected_message before a ServerHello or in TLS 1.2, a 19-byte encrypted record in TLS 1.3
    after one) and its close 0.1 ms later, "fin" or "rst"; the client closes 1 ms after the
    server's close (nothing after a reset). ``react_first``: the server's alert (and close) comes
    2 ms after its answer, the QUIT ``quit_after_ms`` after that."""
    conv = Conv(cport=cport, close=None)
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    tls13 = kind is None or not kind.startswith("tls12")
    conv.c(client_hello(f"hunt10 {cport}", "mx.example.com", tls13=tls13), tag="client_hello")
    if kind is not None:
        conv.s(_answer(cport, kind), tag="flight")
    encrypted = tls13 and kind is not None
    warn = record(23, det(f"hunt10 {cport} alert", 19)) if encrypted else alert(UNEXPECTED_MESSAGE)
    if react_first:
        conv.s(warn, tag="alert", delay_ms=2.0)
        conv.c(b"QUIT\r\n", tag="quit", delay_ms=quit_after_ms)
        conv.fin("S", tag="server_fin", delay_ms=0.5)
        conv.fin("C", tag="client_fin", delay_ms=1.0)
        return conv
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=quit_after_ms)
    if react == "client":
        conv.fin("C", tag="client_fin", delay_ms=1.0)
        conv.fin("S", tag="server_fin", delay_ms=1.0)
        return conv
    if react == "alert":
        conv.s(warn, tag="alert", delay_ms=1.0)
        conv.fin("S", tag="server_fin", delay_ms=0.1)
    elif react == "fin":
        conv.fin("S", tag="server_fin", delay_ms=1.0)
    else:
        conv.rst("S", delay_ms=1.0)
        return conv
    conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def quit_later(cport: int, react: str, *, answer_lost: bool = False, finished: bool = False) -> Conv:
    """TLS 1.2: STARTTLS, 220, the client's ClientHello, the server's whole answer. ``answer_lost``: a
    black hole on the path drops it (the server sends it again 300 ms later, the client never
    acknowledges it), the client's QUIT in the clear 1.2 s after the resend; ``finished``: the
    client's ChangeCipherSpec and Finished, which the server acknowledges and never answers, the
    QUIT 1.2 s after them. Then ``react``: "alert" (the server's cleartext unexpected_message 1 ms
    after the QUIT, its close 0.1 ms later) or "fin" (its close 1 ms after the QUIT), the client
    closing 1 ms after the server; "client": the client closes 1 ms after its QUIT, the server 1 ms
    later (the control: no reaction of the server's to the QUIT)."""
    conv = Conv(cport=cport, close=None)
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt10 {cport}", "mx.example.com", tls13=False), tag="client_hello")
    conv.s(_answer(cport, "tls12"), tag="flight", resend_ms=(300.0,) if answer_lost else None)
    if finished:
        conv.c(client_finish_tls12(f"hunt10 {cport}"), tag="client_finished")
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=1200.0)
    if react == "client":
        conv.fin("C", tag="client_fin", delay_ms=1.0)
        conv.fin("S", tag="server_fin", delay_ms=1.0)
        return conv
    if react == "alert":
        conv.s(alert(UNEXPECTED_MESSAGE), tag="alert", delay_ms=1.0)
        conv.fin("S", tag="server_fin", delay_ms=0.1)
    else:
        conv.fin("S", tag="server_fin", delay_ms=1.0)
    conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def quit_then_record(cport: int, length: int) -> Conv:
    """TLS 1.3, the server's answer in one encrypted record after its ServerHello (whole or short
    cannot be told), the client's QUIT in the clear 1.2 s later, then one more encrypted record of
    ``length`` bytes 1 ms after it (a late session ticket; 35: an alert padded past the size told
    as one) and the server's close, the client's 1 ms after."""
    conv = Conv(cport=cport, close=None)
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt10 {cport}", "mx.example.com", tls13=True), tag="client_hello")
    conv.s(_answer(cport, "tls13-one-record"), tag="flight")
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=1200.0)
    conv.s(record(23, det(f"hunt10 {cport} late", length)), tag="rest", delay_ms=1.0)
    conv.fin("S", tag="server_fin", delay_ms=1.0)
    conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def quit_then_rest(cport: int, react: str) -> Conv:
    """TLS 1.3, the server's answer stopping after its Certificate (the ServerHello, then the
    EncryptedExtensions and the Certificate in two encrypted records: whole or short cannot be
    told from them), the client's QUIT in the clear 1.2 s later, then the rest of the answer (the
    CertificateVerify and the Finished) 1 ms after it and the server's ``react`` ("fin", or "alert":
    a 19-byte encrypted record before its close), the client's close 1 ms after."""
    conv = Conv(cport=cport, close=None)
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt10 {cport}", "mx.example.com", tls13=True), tag="client_hello")
    hello = _answer(cport, "tls13-no-finished")
    head = hello[:5 + int.from_bytes(hello[3:5], "big")]          # the ServerHello record
    conv.s(head + record(23, det(f"hunt10 {cport} ee", 27)) + record(23, det(f"hunt10 {cport} cert", 700)),
           tag="flight")
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=1200.0)
    conv.s(record(23, det(f"hunt10 {cport} cv", 89)) + record(23, det(f"hunt10 {cport} fin", 53)), tag="rest",
           delay_ms=1.0)
    if react == "alert":
        conv.s(record(23, det(f"hunt10 {cport} alert", 19)), tag="alert", delay_ms=1.0)
    conv.fin("S", tag="server_fin", delay_ms=1.0)
    conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def late_ack_quit(cport: int) -> Conv:
    """A long path seen from the server's side: TLS 1.2, the answer without its ServerHelloDone, the
    client's pure ACK of it 300 ms later (``LateAck``), its QUIT in the clear 1.1 s after the answer
    (800 ms after that ACK), the server's close 1 ms after the QUIT, the client's 1 ms later."""
    conv = LateAck(tag="flight", ack_after_ms=300.0, segment=0, cport=cport, close=None)
    opening(conv)
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt10 {cport}", "mx.example.com", tls13=False), tag="client_hello")
    conv.s(_answer(cport, "tls12-no-done"), tag="flight", acked=False)
    conv.c(b"QUIT\r\n", tag="quit", delay_ms=1100.0)
    conv.fin("S", tag="server_fin", delay_ms=1.0)
    conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def shutdown_421(cport: int, *, crossing: bool) -> Conv:
    """The EHLO reply offering STARTTLS; ``crossing``: the server's 421 0.5 ms after it, the
    client's STARTTLS 0.1 ms after the 421 (sent before it arrived); else the STARTTLS, answered
    421. The server closes 1 ms later, the client 1 ms after that."""
    conv = opening(Conv(cport=cport, close=None))
    shutdown = b"421 4.3.2 Service shutting down, closing transmission channel\r\n"
    if crossing:
        conv.s(shutdown, tag="shutdown", delay_ms=0.5, acked=False)
        conv.c(STARTTLS, tag="starttls", delay_ms=0.1)
    else:
        conv.c(STARTTLS, tag="starttls").s(shutdown, tag="shutdown")
    conv.fin("S", tag="server_fin", delay_ms=1.0)
    conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def dropped_starttls(cport: int, how: str) -> Conv:
    """The EHLO reply offering STARTTLS, the client's STARTTLS, and 2 ms later the server's reset
    (``how`` "rst") or its close ("fin", the client closing 1 ms after it)."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls")
    if how == "rst":
        conv.rst("S", delay_ms=2.0)
    else:
        conv.fin("S", tag="server_fin", delay_ms=2.0)
        conv.fin("C", tag="client_fin", delay_ms=1.0)
    return conv


def scenarios() -> list[Capture]:
    at_once = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220)
    at_once_alert = Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                           [("tls-alert", "server", "alert")])
    return [
        Capture("hunt10-quit-at-once-tls12-server-alert.pcap",
                "TLS 1.2, the server's whole answer, QUIT in the clear 5 ms after it, the server's unexpected_message "
                "alert 1 ms after the QUIT: the client gave up on TLS at once, the client's",
                [(quit_then(49101, "tls12", 5.0, "alert"), at_once_alert)]),
        Capture("hunt10-quit-at-once-tls13-server-encrypted-alert.pcap",
                "as hunt10-quit-at-once-tls12-server-alert.pcap in TLS 1.3, the server's alert encrypted (19 bytes): "
                "the client's",
                [(quit_then(49102, "tls13", 5.0, "alert"), at_once_alert)]),
        Capture("hunt10-quit-at-once-tls12-server-fin.pcap",
                "as hunt10-quit-at-once-tls12-server-alert.pcap, the server closing 1 ms after the QUIT: the client's",
                [(quit_then(49103, "tls12", 5.0, "fin"), at_once)]),
        Capture("hunt10-quit-at-once-tls13-server-rst.pcap",
                "TLS 1.3, the server's whole answer, QUIT in the clear 5 ms after it, the server's reset 1 ms after "
                "the QUIT: the client's",
                [(quit_then(49104, "tls13", 5.0, "rst"), at_once)]),
        Capture("hunt10-quit-after-hello-at-once-server-alert.pcap",
                "no answer yet: QUIT in the clear 5 ms after the ClientHello, the server's cleartext "
                "unexpected_message alert 1 ms after it: the client's",
                [(quit_then(49105, None, 5.0, "alert"), at_once_alert)]),
        Capture("hunt10-quit-after-hello-1-2-s-server-rst.pcap",
                "the control: QUIT 1.2 s after the unanswered ClientHello, the server's reset 1 ms after it: the "
                "server never answered (server-silent)",
                [(quit_then(49106, None, 1200.0, "rst"),
                  Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         [("no-answer", "server", "client_hello")]))]),
        Capture("hunt10-stall-quit-1-2-s-server-alert.pcap",
                "the control: TLS 1.2, the answer stopping before its ServerHelloDone, QUIT 1.2 s later, the "
                "server's alert 1 ms after it: the server stalled (server-silent)",
                [(quit_then(49107, "tls12-no-done", 1200.0, "alert"),
                  Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         [("no-answer", "server", "flight"), ("tls-alert", "server", "alert")]))]),
        Capture("hunt10-whole-answer-quit-1-2-s-tls13-server-fin.pcap",
                "the control: TLS 1.3, the whole answer, QUIT 1.2 s later, the server's close 1 ms after it: the "
                "client had all it needed and did not go on (client-silent)",
                [(quit_then(49108, "tls13", 1200.0, "fin"),
                  Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                         [("client-silent", "client", "flight")]))]),
        Capture("hunt10-server-alert-before-quit.pcap",
                "the control: TLS 1.2, the server's alert 2 ms after its whole answer, the client's QUIT 5 ms after "
                "the alert: the alert came first, the server's",
                [(quit_then(49109, "tls12", 5.0, "alert", react_first=True),
                  Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                         [("tls-alert", "server", "alert")]))]),
        *[Capture(f"hunt10-answer-lost-quit-1-2-s-{react}.pcap",
                  f"TLS 1.2, the server's whole answer dropped on the path (resent 300 ms later, never acknowledged), "
                  f"QUIT 1.2 s after the resend, {how}: the client never had the answer, the path's (answer-lost)",
                  [(quit_later(port, react, answer_lost=True),
                    Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                           [("answer-not-received", "middlebox", "flight")]
                           + ([("tls-alert", "server", "alert")] if react == "alert" else [])))])
          for port, react, how in [
              (49115, "alert", "the server's unexpected_message alert 1 ms after it"),
              (49116, "fin", "the server's close 1 ms after it"),
              (49117, "client", "the control: the client closing 1 ms after it")]],
        *[Capture(f"hunt10-client-finished-quit-1-2-s-{react}.pcap",
                  f"TLS 1.2, the whole answer, the client's ChangeCipherSpec and Finished, acknowledged and never "
                  f"answered, QUIT 1.2 s after them, {how}: the server never answered the client's Finished "
                  "(server-silent)",
                  [(quit_later(port, react, finished=True),
                    Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                           [("no-answer", "server", "client_finished")]
                           + ([("tls-alert", "server", "alert")] if react == "alert" else [])))])
          for port, react, how in [
              (49118, "alert", "the server's unexpected_message alert 1 ms after it"),
              (49119, "fin", "the server's close 1 ms after it"),
              (49120, "client", "the control: the client closing 1 ms after it")]],
        *[Capture(f"hunt10-{kind}-quit-1-2-s-{react}.pcap",
                  f"TLS 1.3, the server's answer in {kind.removeprefix('tls13-').replace('-', ' ')} (whole or short "
                  f"cannot be told), QUIT 1.2 s later, {how}: the plaintext ended the handshake, the client's, no "
                  "case, and no certificate refusal",
                  [(quit_then(port, kind, 1200.0, react),
                    Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220,
                           [("tls-alert", "server", "alert")] if react == "alert" else []))])
          for port, kind, react, how in [
              (49141, "tls13-one-record", "alert", "the server's encrypted alert 1 ms after it"),
              (49142, "tls13-one-record", "fin", "the server's close 1 ms after it"),
              (49143, "tls13-two-records", "rst", "the server's reset 1 ms after it"),
              (49144, "tls13-one-record", "client", "the control: the client closing 1 ms after it")]],
        *[Capture(f"hunt10-tls13-quit-1-2-s-then-rest-{react}.pcap",
                  "TLS 1.3, the server's answer in three records up to its Certificate (whole or short cannot be told "
                  "from them), QUIT 1.2 s later, then the rest of the answer (CertificateVerify, Finished) and "
                  f"{how}: the answer was short when the client gave up, the server stalled (server-silent)",
                  [(quit_then_rest(port, react),
                    Expect("aborted", "server", "tls-handshake-failed", "valid", True, 220,
                           [("no-answer", "server", "flight")]
                           + ([("tls-alert", "server", "alert")] if react == "alert" else [])))])
          for port, react, how in [(49148, "fin", "the server's close"),
                                   (49149, "alert", "the server's encrypted alert and close")]],
        *[Capture(f"hunt10-tls13-one-record-quit-1-2-s-then-{length}-byte-record.pcap",
                  "TLS 1.3, the server's answer in one record (whole or short cannot be told), QUIT 1.2 s later, then "
                  f"one more record of {length} bytes ({what}) and the server's close: it ends no flight, so whether "
                  "the answer was whole still cannot be told: the client's, no case",
                  [(quit_then_record(port, length), Expect("aborted", "client", "tls-handshake-failed", "valid", True,
                                                           220))])
          for port, length, what in [(49150, 250, "a late session ticket"),
                                     (49151, 35, "an alert padded past the size told as one")]],
        Capture("hunt10-late-ack-quit-0-8-s-server-fin.pcap",
                "a long path seen from the server's side: TLS 1.2, the answer without its ServerHelloDone acknowledged "
                "300 ms later, QUIT 1.1 s after the answer (800 ms after the ACK), the server's close: the client gave "
                "up at once, and the detail says the 800 ms the decision used",
                [(late_ack_quit(49147), Expect("aborted", "client", "tls-handshake-failed", "valid", True, 220))]),
        Capture("hunt10-421-crosses-starttls.pcap",
                "the server's 421 0.5 ms after its EHLO reply, the client's STARTTLS crossing it, the server's close "
                "1 ms later: a server closing the session, the server's (server-closed), no stray line",
                [(shutdown_421(49111, crossing=True),
                  Expect("aborted", "server", "starttls-refused", "valid", True, 421,
                         [("server-closed", "server", "label:fin:S")]))]),
        Capture("hunt10-421-answers-starttls.pcap",
                "the control: STARTTLS answered 421, the server's close 1 ms later: the server's (server-closed)",
                [(shutdown_421(49112, crossing=False),
                  Expect("aborted", "server", "starttls-refused", "valid", True, 421,
                         [("server-closed", "server", "label:fin:S")]))]),
        Capture("hunt10-server-resets-instead-of-starttls-answer.pcap",
                "the server resets the connection 2 ms after STARTTLS, without answering it: the server's",
                [(dropped_starttls(49113, "rst"), Expect("aborted", "server", "starttls-refused", "valid", True))]),
        Capture("hunt10-server-closes-instead-of-starttls-answer.pcap",
                "the control: the server closes the connection 2 ms after STARTTLS, without answering it: the "
                "server's",
                [(dropped_starttls(49114, "fin"), Expect("aborted", "server", "starttls-refused", "valid", True))]),
    ]
