"""Misbehaving paths and peers around STARTTLS whose verdicts were wrong (the eighteenth
session's hunt).

- ``pathhole-answer-server-closes.pcap``: captured at the server; its answer to the ClientHello
  (ServerHello, Certificate, ServerKeyExchange, ServerHelloDone in one full-size segment) is
  resent at 1 and 3 s and never acknowledged (a path MTU black hole); 60 s after it the server's
  handshake timeout closes the connection, and the client, whose own timeout is longer, closes
  5 s after that. The server was blamed, "closed the connection after the ServerHello": the
  client's acknowledgements show it never had the answer, so the path caused it, as when the
  client gives up first (``path-answer-lost.pcap``): ``middlebox``, case ``answer-lost``,
  finding ``answer-not-received`` at the ServerHello.
- ``pathhole-answer-partly-server-closes.pcap``: the same with the ServerHello in a small
  segment of its own that gets through (the client acknowledges it), the rest black-holed.
- ``pathhole-answer-server-closes-end.pcap``: the same as the first, the capture ending with the
  server's FIN: no segment of the client after the answer, only the server's retransmissions,
  show it was never acknowledged.
- ``hunt4-auth-cancel-then-starttls.pcap``: a valid offer; ``AUTH LOGIN``, the server's 334, and
  the client cancels with ``*`` (RFC 4954 4: the server refuses it with 501); then STARTTLS and
  TLS 1.2 with the mail inside. No credentials crossed (``*`` is no base64 of anything): ``tls``
  (was: ``plaintext``, "credentials crossed in the clear").
- ``hunt4-not-offered-auth-refused.pcap``: an EHLO reply without STARTTLS (nor AUTH); the client
  sends ``AUTH LOGIN``, refused 503, then QUIT: the server's ``starttls-not-offered``, and the
  detail says the client tried AUTH in the clear (it said the client left "as a client that
  requires TLS does", which never sends AUTH without TLS).
- ``hunt4-ehlo-late-then-helo.pcap`` and ``hunt4-ehlo-late-then-helo-quit.pcap``: EHLO, no
  answer for 5 s, the client falls back to HELO (PHPMailer), and then a slow server answers
  both, in order: a one-line 250 to the EHLO (no extensions) and a one-line 250 to the HELO;
  then mail in the clear (or QUIT). The first 250 was given to the HELO (``ehlo-rejected``,
  "no reply to EHLO") and the second read as a ``reply-out-of-step``; the session now waits
  for the next step before pairing such a 250, and a second reply pairs both in order: the
  EHLO reply offers no STARTTLS, the server's ``starttls-not-offered``.
- ``hunt4-helo-250-then-idle-421.pcap``: the same fallback, the one-line 250 answering the HELO,
  then nothing of the client; 300 s later the server's idle timeout says 421 and closes. That
  421 answers nothing (a server sends it unasked, RFC 5321 3.8): the 250 answers the HELO and
  the EHLO got no reply, the server's ``ehlo-rejected``, case ``no-answer`` (a second reply is
  taken for the HELO's only within a second of the 250 and when it is not a 421).
- ``pathhole-ready-server-closes.pcap``, ``pathhole-ready-client-closes.pcap`` and
  ``pathhole-ready-client-quits.pcap``: captured at the server; its 220 to STARTTLS is resent at
  1 and 3 s and never acknowledged (a box on the path drops it); then the server's TLS handshake
  timeout closes first (300 s), or the client gives up 5 s after the last copy and closes, or
  sends QUIT in plaintext. The client was blamed (``tls-not-started``: "closed after the 220
  without starting TLS", "did not start the TLS handshake after the 220"): it never had the 220,
  so the path caused it: ``middlebox``, ``tls-not-started``, finding ``answer-not-received`` at
  the 220.
"""
from __future__ import annotations

from generate import (
    EHLO_NO_TLS, QUIT_STEPS, READY, STARTTLS, Capture, Conv, Expect, client_hello, mail_in_clear, opening,
    server_flight_tls12, starttls_ok,
)
from scenarios_hang import EHLO_SILENT, WAIT_MS, ehlo_sent
from scenarios_hunt2 import AUTH_REPLY
from scenarios_hunt3 import HELO, HELO_REPLY
from scenarios_path import RESEND_MS

#: the server's TLS handshake timeout (it closes this long after its answer to the ClientHello)
SERVER_TLS_TIMEOUT_MS = 60000.0


def answer_lost_server_closes(cport: int, *, hello_through: bool = False, client_close: bool = True) -> Conv:
    """STARTTLS, 220, the ClientHello and the server's flight, resent and never acknowledged
    (with ``hello_through`` its ServerHello record goes first in a small segment of its own and
    gets through); the server closes ``SERVER_TLS_TIMEOUT_MS`` later, its FIN never acknowledged
    (the client's TCP holds it behind the bytes it lacks), and the client closes 5 s after
    (``client_close``; else the capture ends with the server's FIN)."""
    conv = opening(Conv(cport=cport, close=None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    conv.c(client_hello(f"hunt4 {cport}", "mx.example.com"), tag="client_hello")
    flight, hello_len = server_flight_tls12(f"hunt4 {cport}", "mx.example.com")
    if hello_through:
        conv.s(flight[:hello_len], tag="flight")
        conv.s(flight[hello_len:], tag="flight_rest", resend_ms=RESEND_MS, delay_ms=0.1)
    else:
        conv.s(flight, tag="flight", resend_ms=RESEND_MS)
    conv.fin("S", tag="server_fin", delay_ms=SERVER_TLS_TIMEOUT_MS - RESEND_MS[-1], acked=False)
    if client_close:
        conv.fin("C", tag="client_fin", delay_ms=5000.0)
    return conv


def auth_cancel_then_starttls() -> Capture:
    c = opening(Conv(cport=48404), AUTH_REPLY)
    c.c(b"AUTH LOGIN\r\n", tag="auth").s(b"334 VXNlcm5hbWU6\r\n")
    c.c(b"*\r\n", tag="cancel").s(b"501 5.7.0 Authentication aborted\r\n", tag="aborted")
    starttls_ok(c, "hunt4 auth cancel")
    return Capture("hunt4-auth-cancel-then-starttls.pcap",
                   "valid offer; AUTH LOGIN, 334, the client cancels with '*' (RFC 4954 4), 501; then STARTTLS, "
                   "220, TLS 1.2 with the mail inside: no credentials crossed",
                   [(c, Expect("tls", "none", "tls-established", "valid", True, 220))])


def not_offered_auth_refused() -> Capture:
    c = opening(Conv(cport=48405), EHLO_NO_TLS)
    c.c(b"AUTH LOGIN\r\n", tag="auth").s(b"503 5.5.1 Error: authentication not enabled\r\n", tag="refused")
    c.extend(QUIT_STEPS)
    return Capture("hunt4-not-offered-auth-refused.pcap",
                   "an EHLO reply without STARTTLS or AUTH; the client sends AUTH LOGIN, refused 503, then QUIT",
                   [(c, Expect("aborted", "server", "starttls-not-offered", "absent"))])


def ehlo_late_then_helo(mail: bool) -> Capture:
    c = ehlo_sent(48406 if mail else 48407, ("fin", "S"))
    c.c(HELO, tag="helo", delay_ms=WAIT_MS)
    # (the server, slow, answers the EHLO 0.5 s after the HELO, then the HELO)
    c.s(b"250 mx.example.com\r\n", tag="ehlo_reply", delay_ms=500.0).s(HELO_REPLY, tag="helo_reply", delay_ms=0.2)
    if mail:
        mail_in_clear(c)
    else:
        c.extend(QUIT_STEPS)
    name = "hunt4-ehlo-late-then-helo" + ("" if mail else "-quit") + ".pcap"
    what = "mail in the clear" if mail else "QUIT"
    return Capture(name,
                   f"banner, EHLO, no answer; {WAIT_MS / 1000:.0f} s later the client falls back to HELO; the slow "
                   f"server then answers both in order, a one-line 250 each (the EHLO reply without extensions); "
                   f"{what}",
                   [(c, Expect("plaintext" if mail else "aborted", "server", "starttls-not-offered", "absent"))])


def helo_then_idle_421() -> Capture:
    c = ehlo_sent(48411, ("fin", "S"))
    c.c(HELO, tag="helo", delay_ms=WAIT_MS).s(HELO_REPLY, tag="helo_reply")
    # (the client sends nothing more; the server's idle timeout, 300 s later, says 421 and closes)
    c.s(b"421 4.4.2 mx.example.com Error: timeout exceeded\r\n", tag="idle_421", delay_ms=300000.0)
    return Capture("hunt4-helo-250-then-idle-421.pcap",
                   f"banner, EHLO, no answer; {WAIT_MS / 1000:.0f} s later the client falls back to HELO, answered "
                   "with one line 250; the client then sends nothing, and 300 s later the server's idle timeout "
                   "says 421 and closes: the 421 answers nothing, the 250 the HELO",
                   [(c, EHLO_SILENT)])


def ready_lost(cport: int, how: str) -> Conv:
    """STARTTLS, the server's 220 resent and never acknowledged; ``how`` it ends: ``server``
    (its TLS handshake timeout closes 300 s later, the client 10 s after), ``close`` (the client
    gives up 5 s after the last copy and closes) or ``quit`` (it sends QUIT in plaintext, which
    the server, in TLS, cannot read: it closes)."""
    conv = opening(Conv(cport=cport, close=("fin", "S") if how == "quit" else None))
    conv.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply", resend_ms=RESEND_MS)
    if how == "server":
        conv.fin("S", tag="server_fin", delay_ms=300000.0 - RESEND_MS[-1], acked=False)
        conv.fin("C", tag="client_fin", delay_ms=10000.0)
    elif how == "close":
        conv.fin("C", tag="client_fin", delay_ms=5000.0)
    else:
        conv.c(b"QUIT\r\n", tag="quit", delay_ms=5000.0)
    return conv


def scenarios() -> list[Capture]:
    lost = Expect("aborted", "middlebox", "tls-handshake-failed", "valid", True, 220,
                  [("answer-not-received", "middlebox", "flight")])
    ready = Expect("aborted", "middlebox", "tls-not-started", "valid", True, 220,
                   [("answer-not-received", "middlebox", "starttls_reply")])
    return [
        Capture("pathhole-answer-server-closes.pcap",
                "captured at the server: its ServerHello and certificate are resent at 1 and 3 s and never "
                "acknowledged (a path MTU black hole); 60 s after them the server's handshake timeout closes the "
                "connection, the client 5 s later (its ACK still before the flight)",
                [(answer_lost_server_closes(48401), lost)]),
        Capture("pathhole-answer-partly-server-closes.pcap",
                "as pathhole-answer-server-closes.pcap, but the ServerHello goes in a small segment of its own "
                "and gets through (the client acknowledges it); the full-size rest is resent and never "
                "acknowledged",
                [(answer_lost_server_closes(48402, hello_through=True), lost)]),
        Capture("pathhole-answer-server-closes-end.pcap",
                "as pathhole-answer-server-closes.pcap, the capture ending with the server's FIN: only the "
                "server's retransmissions show the flight was never acknowledged",
                [(answer_lost_server_closes(48403, client_close=False), lost)]),
        auth_cancel_then_starttls(), not_offered_auth_refused(), ehlo_late_then_helo(True), ehlo_late_then_helo(False),
        helo_then_idle_421(),
        Capture("pathhole-ready-server-closes.pcap",
                "captured at the server: its 220 to STARTTLS is resent at 1 and 3 s and never acknowledged (a box "
                "drops it); 300 s after it the server's TLS handshake timeout closes the connection, the client "
                "10 s later",
                [(ready_lost(48408, "server"), ready)]),
        Capture("pathhole-ready-client-closes.pcap",
                "as pathhole-ready-server-closes.pcap, but the client gives up 5 s after the last copy and closes",
                [(ready_lost(48409, "close"), ready)]),
        Capture("pathhole-ready-client-quits.pcap",
                "as pathhole-ready-server-closes.pcap, but the client gives up 5 s after the last copy and sends "
                "QUIT in plaintext; the server, in TLS, closes",
                [(ready_lost(48410, "quit"), ready)]),
    ]
