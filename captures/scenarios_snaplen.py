"""Captures cut by their snap length: the capture kept only the first N bytes of each frame.

The bytes cut off a frame were on the wire (the frame's length says so): a capture command's
doing (old tcpdump defaults of 68 or 96 bytes, ``-s 128`` habits, appliances that keep headers
only), not packet loss. Each conversation with cut frames gets one ``capture-truncated``
finding at its first cut frame (``tcp-gap`` stays for bytes never seen). Where the cut bytes
decide the verdict it is ``incomplete`` and its detail says the snap length cut the decisive
exchange; where they cannot matter (a message body, TLS application data) the verdict stays.
"""
from __future__ import annotations

from generate import (
    EHLO_NO_TLS, MAIL_STEPS, NOT_OFFERED, QUIT_STEPS, READY, STARTTLS, TLS_OK, Capture, Conv, Expect,
    app_data, client_finish_tls12, client_hello, close_notify, det, not_offered_conv, opening,
    server_finish_tls12, server_flight_tls12,
)

#: one finding per conversation, at its first cut frame
_CUT = ("capture-truncated", "capture", "first_cut")


def _tls_small_handshake(label: str) -> Conv:
    """STARTTLS, then a TLS 1.2 handshake sent in segments of at most 120 bytes (each whole
    within a snap length of 200), then application data records of 300 to 700 bytes in one
    segment each (cut after their first bytes)."""
    c = opening(Conv(cport=46101))
    c.c(STARTTLS, tag="starttls").s(READY, tag="starttls_reply")
    flight, _ = server_flight_tls12(label, "mx.example.com")
    c.c(client_hello(label, "mx.example.com"), tag="client_hello", split=120)
    c.s(flight, tag="server_hello", split=120)
    c.c(client_finish_tls12(label), split=120)
    c.s(server_finish_tls12(label), split=120)
    encrypted = [("C", b"EHLO client.example.org\r\n"), ("S", EHLO_NO_TLS)] + MAIL_STEPS + QUIT_STEPS
    for k, (side, text) in enumerate(encrypted):
        c.step(side, app_data(f"{label} appdata {k}", 300 + len(text)))
    c.c(close_notify(label + " client close"))
    c.s(close_notify(label + " server close"))
    return c


def _body_only(cport: int) -> Conv:
    """starttls-not-offered with a 900-byte message body: only the body is longer than what
    a snap length of 200 keeps."""
    c = opening(Conv(cport=cport), EHLO_NO_TLS)
    body = b"Subject: test\r\n\r\n" + b"".join(det(f"body line {k}", 30).hex().encode() + b"\r\n"
                                              for k in range(14)) + b".\r\n"
    steps = [(side, body if data.startswith(b"Subject:") else data) for side, data in MAIL_STEPS]
    return c.extend(steps + QUIT_STEPS)


def scenarios() -> list[Capture]:
    caps: list[Capture] = []
    add = caps.append

    add(Capture("snaplen-starttls-not-offered.pcap",
                "starttls-not-offered.pcap written with snaplen 96: 42 bytes of payload kept per frame, so "
                "the EHLO reply is cut (frame 8) and whether it offered STARTTLS cannot be told: incomplete, "
                "one capture-truncated finding at the first cut frame, no tcp-gap",
                [(not_offered_conv(cport=46100),
                  Expect("incomplete", "unknown", "incomplete", "unknown", findings=[_CUT]))],
                snaplen=96))

    add(Capture("snaplen-tls-appdata.pcap",
                "STARTTLS and a TLS 1.2 handshake in segments small enough for snaplen 200; only the "
                "application data records are cut: the verdict stays tls-established, with a "
                "capture-truncated finding at the first cut record",
                [(_tls_small_handshake("snaplen appdata"),
                  Expect(TLS_OK.outcome, TLS_OK.caused_by, TLS_OK.reason, TLS_OK.offered, True, 220,
                         [_CUT]))],
                snaplen=200))

    add(Capture("snaplen-body-idb.pcapng",
                "pcapng whose interface (IDB) declares snaplen 200: starttls-not-offered where only the "
                "message body is longer than that; the verdict stays starttls-not-offered (the body "
                "decides nothing), with a capture-truncated finding at the cut body frame",
                [(_body_only(46102),
                  Expect(NOT_OFFERED.outcome, NOT_OFFERED.caused_by, NOT_OFFERED.reason,
                         NOT_OFFERED.offered, findings=[_CUT]))],
                fmt="pcapng", snaplen=200))
    return caps
