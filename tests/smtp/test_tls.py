"""Tests of pcapsmtp.smtp.tls: hand-built records, genuine handshakes made with Python's ssl over
MemoryBIO pairs, a real capture from the public corpus, and Hypothesis properties."""
from __future__ import annotations

import dataclasses
import datetime as dt
import ssl
import struct
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builders import ext, hs, rec, vec  # noqa: E402
from pcapsmtp.model import Side, Span  # noqa: E402
from pcapsmtp.smtp.tls import (  # noqa: E402
    ALERT_NAMES, HANDSHAKE_NAMES, VERSION_NAMES, CertInfo, TlsAlert, TlsApplicationData,
    TlsCertificate, TlsClientHello, TlsEncryptedHandshake, TlsEvent,
    TlsHandshakeOther, TlsHelloRetryRequest, TlsNotTls, TlsObserver, TlsResynchronised,
    TlsServerHello, TlsServerKeyExchange, TlsStopped, TlsTruncated, cert_expired, cert_matches_host, cert_not_yet_valid,
    looks_like_encrypted_alert, looks_like_finished, parse_certificate, sniff_tls, tls13_encrypted_alert_length,
    version_name,
)

CORPUS = Path(__file__).resolve().parents[1].parent / "tests" / "corpus"
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
C, S = Side.CLIENT, Side.SERVER


# ------------------------------------------------------------------------------------------
# A tiny TLS builder
# ------------------------------------------------------------------------------------------

# rec, hs, vec, ext: tests/builders.py


def client_hello(*, sni: str | None = "mx.example.org", versions: Sequence[int] = (0x0304, 0x0303),
                 alpn: Sequence[str] = (), suites: Sequence[int] = (0x1301, 0x1302, 0xC02F),
                 legacy: int = 0x0303, grease: bool = True) -> bytes:
    exts = b""
    if grease:
        exts += ext(0x1A1A, b"")
    if sni is not None:
        exts += ext(0, vec(2, b"\x00" + vec(2, sni.encode())))
    if alpn:
        exts += ext(16, vec(2, b"".join(vec(1, p.encode()) for p in alpn)))
    if versions:
        vs = ([0x3A3A] if grease else []) + list(versions)
        exts += ext(43, vec(1, b"".join(struct.pack("!H", v) for v in vs)))
    all_suites = ([0x0A0A] if grease else []) + list(suites)
    body = (struct.pack("!H", legacy) + b"\x11" * 32 + vec(1, b"\x22" * 32)
            + vec(2, b"".join(struct.pack("!H", s) for s in all_suites)) + vec(1, b"\x00")
            + vec(2, exts))
    return hs(1, body)


def server_hello(*, legacy: int = 0x0303, selected: int | None = None, suite: int = 0x1301,
                 random: bytes = b"\x33" * 32) -> bytes:
    exts = ext(43, struct.pack("!H", selected)) if selected is not None else b""
    body = (struct.pack("!H", legacy) + random + vec(1, b"\x22" * 32) + struct.pack("!H", suite)
            + b"\x00" + (vec(2, exts) if exts else b""))
    return hs(2, body)


def observe(side: Side, data: bytes, *, chunks: Iterable[int] | None = None,
            max_events: int = 64) -> tuple[list[TlsEvent], TlsObserver]:
    obs = TlsObserver(side, max_events=max_events)
    events: list[TlsEvent] = []
    if chunks is None:
        events += obs.feed(data, 0)
    else:
        pos = 0
        for size in chunks:
            if pos >= len(data):
                break
            events += obs.feed(data[pos:pos + size], pos)
            pos += size
        if pos < len(data):
            events += obs.feed(data[pos:], pos)
    events += obs.end()
    return events, obs


def kinds(events: Sequence[TlsEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


# ------------------------------------------------------------------------------------------
# Names, sniffing
# ------------------------------------------------------------------------------------------

def test_names() -> None:
    assert ALERT_NAMES[48] == "unknown_ca" and ALERT_NAMES[42] == "bad_certificate"
    assert ALERT_NAMES[116] == "certificate_required" and ALERT_NAMES[121] == "ech_required"
    assert HANDSHAKE_NAMES[14] == "server_hello_done" and HANDSHAKE_NAMES[4] == "new_session_ticket"
    assert VERSION_NAMES[0x0300] == "SSL 3.0" and VERSION_NAMES[0x0304] == "TLS 1.3"
    assert version_name(0x7F17) == "TLS 1.3 draft 23" and version_name(0x0A0A) == "GREASE"
    assert tls13_encrypted_alert_length() == 19 and tls13_encrypted_alert_length(8) == 11
    assert looks_like_encrypted_alert(19) and looks_like_encrypted_alert(11)
    assert not looks_like_encrypted_alert(20) and not looks_like_encrypted_alert(2)
    # (a TLS 1.3 Finished alone: 4 + 32 or 48 bytes of verify_data + 1 + a 16-byte tag)
    assert looks_like_finished(53) and looks_like_finished(69)
    assert looks_like_finished(45)     # (TLS_AES_128_CCM_8_SHA256: an 8-byte tag)
    assert not looks_like_finished(19) and not looks_like_finished(52) and not looks_like_finished(70)
    assert not looks_like_finished(44) and not looks_like_finished(46)
    # (the ServerHello's suite decides: 45 only under TLS_AES_128_CCM_8_SHA256, 69 under SHA-384)
    assert looks_like_finished(53, 0x1301) and looks_like_finished(53, 0x1303) and looks_like_finished(53, 0x1304)
    assert not looks_like_finished(45, 0x1301) and looks_like_finished(45, 0x1305)
    assert looks_like_finished(69, 0x1302) and not looks_like_finished(53, 0x1302)


@pytest.mark.parametrize(("data", "expected"), [
    (b"", None),
    (b"\x16", None),
    (b"\x16\x03", None),
    (b"\x16\x03\x01\x02", None),
    (b"\x16\x03\x01\x02\x00", True),
    (b"\x17\x03\x03\x40\x00", True),
    (b"\x18\x03\x03\x00\x03", True),                      # heartbeat accepted
    (b"\x14\x03\x00\x00\x01", True),                      # SSL 3.0 CCS
    (b"\x16\x03\x03\x48\x01", False),                     # 2^14 + 2048 + 1 is over
    (b"\x16\x03\x03\x48\x00", True),
    (b"\x16\x03\x03\x49\x00", False),
    (b"\x16\x03\x05\x00\x10", False),
    (b"\x16\x02\x01\x00\x10", False),
    (b"\x19\x03\x01\x00\x10", False),
    (b"EHLO x\r\n", False),
    (b"220 ok\r\n", False),
    (b"\x80\x2e\x01\x03\x01", True),                      # SSLv2-compatible ClientHello
    (b"\x80\x2e\x01\x00\x02", True),                      # pure SSLv2 ClientHello
    (b"\x80\x2e\x01", None),
    (b"\x80\x2e\x02\x03\x01", False),
    (b"\x80\x2e\x01\x04\x01", False),
])
def test_sniff_tls(data: bytes, expected: bool | None) -> None:
    assert sniff_tls(data) is expected


# ------------------------------------------------------------------------------------------
# Hand-built records
# ------------------------------------------------------------------------------------------

def test_client_hello_fields_and_span() -> None:
    data = rec(22, client_hello(sni="mx.example.org", alpn=("smtp", "h2")), version=0x0301)
    events, obs = observe(C, data)
    assert events == [TlsClientHello(
        side=C, span=Span(C, 0, len(data)), record_version=0x0301, legacy_version=0x0303,
        supported_versions=(0x0304, 0x0303), sni="mx.example.org", cipher_suites=3,
        alpn=("smtp", "h2"))]
    hello = events[0]
    assert isinstance(hello, TlsClientHello) and hello.max_version == 0x0304
    assert obs.records == 1 and obs.bytes == len(data) and obs.is_tls is True
    assert obs.tls13 and not obs.encrypted


def test_old_client_hello_without_extensions() -> None:
    body = struct.pack("!H", 0x0301) + b"\x00" * 32 + b"\x00" + vec(2, b"\x00\x2f") + b"\x01\x00"
    events, _ = observe(C, rec(22, hs(1, body), 0x0300))
    (hello,) = events
    assert isinstance(hello, TlsClientHello)
    assert (hello.legacy_version, hello.supported_versions, hello.sni, hello.cipher_suites,
            hello.error, hello.max_version) == (0x0301, (), None, 1, None, 0x0301)


def test_malformed_client_hello_is_data() -> None:
    events, _ = observe(C, rec(22, hs(1, b"\x03\x03" + b"\x00" * 10)))
    (hello,) = events
    assert isinstance(hello, TlsClientHello)
    assert hello.legacy_version == 0x0303 and hello.error and "ClientHello" in hello.error


def test_tls13_server_becomes_encrypted_after_server_hello() -> None:
    sh = rec(22, server_hello(selected=0x0304))
    data = sh + rec(20, b"\x01") + rec(23, b"\xaa" * 40) + rec(22, b"\xbb" * 30) + rec(23, b"\xcc" * 19)
    events, obs = observe(S, data)
    assert kinds(events) == ["TlsServerHello", "TlsChangeCipherSpec", "TlsApplicationData",
                             "TlsEncryptedHandshake", "TlsAlert"]
    hello = events[0]
    assert isinstance(hello, TlsServerHello)
    assert (hello.legacy_version, hello.selected_version, hello.cipher_suite) == (0x0303, 0x0304,
                                                                                   0x1301)
    assert events[3] == TlsEncryptedHandshake(side=S, span=Span(S, len(data) - 24 - 35,
                                                                len(data) - 24), length=30)
    alert = events[4]
    assert isinstance(alert, TlsAlert)
    assert (alert.encrypted, alert.level, alert.description, alert.content_type) == (True, -1, -1, 23)
    assert alert.span == Span(S, len(data) - 24, len(data))
    assert obs.tls13 and obs.encrypted
    assert obs.records == 5 and obs.app_data_records == 2 and obs.app_data_bytes == 59


def test_hello_retry_request_keeps_clear() -> None:
    data = rec(22, server_hello(selected=0x0304, random=HRR_RANDOM)) + rec(22, server_hello(selected=0x0304))
    events, obs = observe(S, data)
    assert kinds(events) == ["TlsHelloRetryRequest", "TlsServerHello"]
    assert isinstance(events[0], TlsHelloRetryRequest) and events[0].selected_version == 0x0304
    assert obs.encrypted


def test_client_tls13_second_hello_after_compat_ccs() -> None:
    data = (rec(22, client_hello(), 0x0301) + rec(20, b"\x01") + rec(22, client_hello(sni="b.example"))
            + rec(23, b"\x00" * 53) + rec(23, b"\x00" * 19))
    events, obs = observe(C, data)
    assert kinds(events) == ["TlsClientHello", "TlsChangeCipherSpec", "TlsClientHello",
                             "TlsApplicationData", "TlsAlert"]
    assert isinstance(events[2], TlsClientHello) and events[2].sni == "b.example"
    assert obs.tls13


def test_tls12_client_ccs_encrypts_handshake_and_alerts() -> None:
    data = (rec(22, client_hello(versions=()), 0x0301) + rec(22, hs(16, b"\x41" + b"\x04" * 65))
            + rec(20, b"\x01") + rec(22, b"\x00" * 40) + rec(23, b"\x01" * 19) + rec(21, b"\x07" * 26))
    events, obs = observe(C, data)
    assert kinds(events) == ["TlsClientHello", "TlsHandshakeOther", "TlsChangeCipherSpec",
                             "TlsEncryptedHandshake", "TlsApplicationData", "TlsAlert"]
    assert events[1] == TlsHandshakeOther(side=C, span=events[1].span, handshake_type=16,
                                          name="client_key_exchange")
    assert isinstance(events[4], TlsApplicationData) and events[4].length == 19  # not 1.3: data
    alert = events[5]
    assert isinstance(alert, TlsAlert) and alert.encrypted and alert.content_type == 21
    assert not obs.tls13


def test_plain_alerts() -> None:
    data = rec(21, b"\x02\x28") + rec(21, b"\x01\x00") + rec(21, b"\x02\xfe")
    events, _ = observe(S, data)
    assert [(e.level, e.description, e.name, e.encrypted, e.fatal) for e in events
            if isinstance(e, TlsAlert)] == [(2, 40, "handshake_failure", False, True),
                                             (1, 0, "close_notify", False, False),
                                             (2, 254, "unknown_254", False, True)]


def test_handshake_message_across_records_and_coalesced_messages() -> None:
    cert_msg = hs(11, vec(3, b""))                      # an empty chain, split in three records
    sh = server_hello(legacy=0x0303)
    r1 = rec(22, sh + cert_msg[:2])
    r2 = rec(22, cert_msg[2:5])
    r3 = rec(22, cert_msg[5:] + hs(12, b"\x00" * 20) + hs(14, b""))
    events, obs = observe(S, r1 + r2 + r3)
    assert kinds(events) == ["TlsServerHello", "TlsCertificate", "TlsServerKeyExchange",
                             "TlsHandshakeOther"]
    total = len(r1 + r2 + r3)
    assert events[0].span == Span(S, 0, len(r1))
    assert events[1].span == Span(S, 0, total)          # began in r1, completed in r3
    assert isinstance(events[1], TlsCertificate) and events[1].certificates == ()
    assert events[2].span == events[3].span == Span(S, len(r1 + r2), total)
    assert [e.name for e in events[2:] if isinstance(e, TlsHandshakeOther)] == [
        "server_key_exchange", "server_hello_done"]
    assert obs.records == 3 and not obs.encrypted


def test_application_data_events_are_capped_and_counted() -> None:
    data = rec(20, b"\x01") + b"".join(rec(23, bytes(10 + i)) for i in range(12))
    events, obs = observe(C, data)
    assert kinds(events) == ["TlsChangeCipherSpec"] + ["TlsApplicationData"] * 8
    assert [e.length for e in events if isinstance(e, TlsApplicationData)] == list(range(10, 18))
    assert obs.app_data_records == 12 and obs.app_data_bytes == sum(range(10, 22))
    assert obs.records == 13 and obs.bytes == len(data)


def test_plaintext_is_not_tls_and_stops_the_side() -> None:
    text = b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
    obs = TlsObserver(C)
    first = obs.feed(text[:10], 100)
    assert first == [] and obs.is_tls is False          # known at once, event waits for its first line
    second = obs.feed(text[10:], 110)
    assert second == [TlsNotTls(side=C, span=Span(C, 100, 121), preview=b"EHLO client.example\r\n")]
    assert obs.feed(rec(23, b"x" * 10), 100 + len(text)) == [] and obs.end() == []
    assert obs.bytes == len(text) + 15 and obs.records == 0


def test_a_plaintext_line_is_reported_with_the_segment_that_ends_it_whatever_the_split() -> None:
    """The event comes once the first line is whole (its LF), not at the stream's end: a client's
    QUIT in the clear in the middle of the handshake comes when the client sent it (the verdict
    times its giving up by it); its preview depends on the bytes alone."""
    data = b"250 ok\r\n"
    obs = TlsObserver(S)
    assert obs.feed(data, 0) == [TlsNotTls(side=S, span=Span(S, 0, 8), preview=data)]
    assert obs.end() == []
    bulk, _ = observe(S, data + b"more text\r\n")
    single, _ = observe(S, data + b"more text\r\n", chunks=[1] * (len(data) + 11))
    assert bulk == single == [TlsNotTls(side=S, span=Span(S, 0, 8), preview=data)]
    obs = TlsObserver(C)
    good = rec(22, client_hello())
    assert kinds(obs.feed(good, 0)) == ["TlsClientHello"]
    assert obs.feed(b"QU", len(good)) == []
    assert obs.feed(b"IT\r\n", len(good) + 2) == [TlsNotTls(side=C, span=Span(C, len(good), len(good) + 6),
                                                            preview=b"QUIT\r\n")]


def test_plaintext_without_a_line_end_is_reported_at_64_bytes_or_at_the_end() -> None:
    junk = bytes(range(0x30, 0x30 + 70))       # (no LF)
    obs = TlsObserver(C)
    assert obs.feed(junk[:40], 0) == []
    assert obs.feed(junk[40:], 40) == [TlsNotTls(side=C, span=Span(C, 0, 64), preview=junk[:64])]
    short = b"\x00\x01 no line end"
    bulk, _ = observe(S, short)
    single, _ = observe(S, short, chunks=[1] * len(short))
    assert bulk == single == [TlsNotTls(side=S, span=Span(S, 0, len(short)), preview=short)]


def test_plaintext_is_stamped_with_the_feed_of_its_first_byte_whenever_it_is_emitted() -> None:
    """``TlsNotTls``'s ``ts_ns`` and ``frame`` are those of the feed that carried its first byte
    (the first byte of the header that proved not TLS), also when its line ends only later or never
    (emitted at the stream's end): a client's ``QUIT`` without its CRLF was sent when its segment
    was, not at the close. Other events keep the feed that completed them."""
    good = rec(22, client_hello())
    obs = TlsObserver(C)
    (hello,) = obs.feed(good, 0, frame=14, ts_ns=1_000)
    assert hello.frame == 14 and not hasattr(hello, "ts_ns")
    assert obs.feed(b"QUIT", len(good), frame=16, ts_ns=6_000) == []
    assert obs.end() == [TlsNotTls(side=C, span=Span(C, len(good), len(good) + 4), frame=16, preview=b"QUIT",
                                   ts_ns=6_000)]
    # the line ends in a later feed: the first byte's feed still
    obs = TlsObserver(C)
    obs.feed(good, 0, frame=14, ts_ns=1_000)
    assert obs.feed(b"QU", len(good), frame=16, ts_ns=6_000) == []
    assert obs.feed(b"IT\r\n", len(good) + 2, frame=17, ts_ns=20_000_000) == [
        TlsNotTls(side=C, span=Span(C, len(good), len(good) + 6), frame=16, preview=b"QUIT\r\n", ts_ns=6_000)]
    # a header begun in one feed and proved not TLS in the next (an SSLv2 header after the first
    # record): the feed of the header's first byte
    sslv2 = bytes.fromhex("802e0103010015")
    obs = TlsObserver(C)
    obs.feed(good, 0, frame=14, ts_ns=1_000)
    assert obs.feed(sslv2[:2], len(good), frame=16, ts_ns=6_000) == []
    assert obs.feed(sslv2[2:], len(good) + 2, frame=17, ts_ns=9_000) == []
    (nt,) = obs.gap(10)
    assert (nt.frame, nt.ts_ns, nt.preview, nt.span) == (16, 6_000, sslv2, Span(C, len(good), len(good) + 7))
    # any chunking gives the same preview and span; the time is the first byte's feed's
    data = good + b"QUIT"
    for cut in range(len(good) + 1, len(data)):
        obs = TlsObserver(C)
        events = obs.feed(data[:cut], 0, frame=1, ts_ns=10) + obs.feed(data[cut:], cut, frame=2, ts_ns=20)
        events += obs.end()
        assert [(type(e).__name__, e.frame) for e in events] == [("TlsClientHello", 1), ("TlsNotTls", 1)]
        assert events[1].ts_ns == 10 and events[1].preview == b"QUIT"
    obs = TlsObserver(C)
    events = obs.feed(data[:len(good)], 0, frame=1, ts_ns=10) + obs.feed(data[len(good):], len(good), frame=2,
                                                                         ts_ns=20) + obs.end()
    assert (events[1].frame, events[1].ts_ns) == (2, 20)


def test_plaintext_after_a_record() -> None:
    good = rec(22, client_hello())
    events, obs = observe(C, good + b"QUIT\r\n")
    assert kinds(events) == ["TlsClientHello", "TlsNotTls"]
    assert events[1].span == Span(C, len(good), len(good) + 6)
    assert obs.is_tls is False and obs.records == 1


def test_sslv2_compatible_client_hello() -> None:
    specs = bytes.fromhex("010080" "0000ff" "00002f")
    body = b"\x01" + struct.pack("!HHHH", 0x0301, len(specs), 0, 16) + specs + b"\x42" * 16
    data = struct.pack("!H", 0x8000 | len(body)) + body
    events, obs = observe(C, data + rec(22, hs(16, b"\x00" * 4)))
    hello = events[0]
    assert isinstance(hello, TlsClientHello)
    assert (hello.sslv2, hello.record_version, hello.legacy_version, hello.cipher_suites,
            hello.span) == (True, 0x0002, 0x0301, 3, Span(C, 0, len(data)))
    assert kinds(events[1:]) == ["TlsHandshakeOther"] and obs.records == 2
    # Not as the first record: a high first byte later is not TLS.
    events, _ = observe(C, rec(22, client_hello()) + data)
    assert kinds(events) == ["TlsClientHello", "TlsNotTls"]


def test_truncated_record_and_message_at_end() -> None:
    whole = rec(22, client_hello())
    events, _ = observe(C, whole[:-10])
    assert events == [TlsTruncated(side=C, span=Span(C, 0, len(whole) - 10), what="record",
                                   content_type=22, expected=len(whole), received=len(whole) - 10)]
    msg = hs(11, vec(3, b"\x00" * 100))
    events, _ = observe(S, rec(22, msg[:50]))
    assert events == [TlsTruncated(side=S, span=Span(S, 0, 55), what="handshake", content_type=11,
                                   expected=len(msg), received=50)]
    events, _ = observe(S, b"\x16\x03")
    assert events == [TlsTruncated(side=S, span=Span(S, 0, 2), what="record", content_type=22,
                                   expected=-1, received=2)]


def test_gap_inside_application_data_keeps_framing() -> None:
    r1, r2 = rec(23, b"a" * 100), rec(23, b"b" * 30)
    obs = TlsObserver(S)
    events = obs.feed(r1[:40], 0) + obs.gap(50) + obs.feed(r1[90:] + r2, 90) + obs.end()
    assert [(type(e).__name__, e.span) for e in events] == [
        ("TlsApplicationData", Span(S, 0, 105)), ("TlsApplicationData", Span(S, 105, 140))]
    assert obs.records == 2 and obs.bytes == len(r1 + r2) - 50


def test_gap_in_handshake_record_resumes_at_next_message() -> None:
    r1 = rec(22, server_hello() + hs(11, vec(3, b"\x00" * 200)))
    r2 = rec(22, hs(14, b""))
    obs = TlsObserver(S)
    events = obs.feed(r1[:100], 0) + obs.gap(50) + obs.feed(r1[150:] + r2, 150) + obs.end()
    assert kinds(events) == ["TlsServerHello", "TlsHandshakeOther"]
    assert isinstance(events[1], TlsHandshakeOther) and events[1].name == "server_hello_done"


def test_gap_over_record_boundary_resynchronises() -> None:
    r1, r2, r3, r4 = (rec(23, bytes([i]) * (20 + i)) for i in range(4))
    data = r1 + r2 + r3 + r4
    cut = len(r1) + 3                                   # lose r2's header and body start
    resume = len(r1) + 10
    obs = TlsObserver(C)
    events = obs.feed(data[:cut], 0) + obs.gap(resume - cut) + obs.feed(data[resume:], resume)
    events += obs.end()
    assert kinds(events) == ["TlsApplicationData", "TlsResynchronised", "TlsApplicationData",
                             "TlsApplicationData"]
    assert events[1] == TlsResynchronised(side=C, span=Span(C, resume, len(r1 + r2)),
                                          skipped=len(r1 + r2) - resume)
    assert events[2].span == Span(C, len(r1 + r2), len(r1 + r2 + r3))


def test_gap_then_a_single_record_resynchronises_at_end() -> None:
    obs = TlsObserver(C)
    events = obs.feed(rec(22, client_hello()), 0) + obs.gap(300)
    at = obs.bytes + 300
    events += obs.feed(rec(21, b"\x02\x30"), at)
    assert kinds(events) == ["TlsClientHello"]          # one header is not enough mid-stream
    events += obs.end()
    assert kinds(events) == ["TlsClientHello", "TlsResynchronised", "TlsAlert"]
    assert events[1].span == Span(C, at, at) and events[2].span == Span(C, at, at + 7)
    assert isinstance(events[2], TlsAlert) and events[2].name == "unknown_ca"


def test_gap_without_framing_afterwards_stops() -> None:
    obs = TlsObserver(C)
    events = obs.feed(rec(23, b"x" * 10), 0) + obs.gap(7) + obs.feed(b"\x00" * 100, 22) + obs.end()
    assert kinds(events) == ["TlsApplicationData", "TlsStopped"]
    assert isinstance(events[1], TlsStopped) and events[1].reason == "gap"
    big = TlsObserver(C)
    big.feed(rec(23, b"x" * 10), 0)
    big.gap(1)
    out = []
    for i in range(40):
        out += big.feed(b"\x00" * 1000, 16 + i * 1000)
    assert kinds(out) == ["TlsStopped"] and big.end() == [] and big.bytes == 15 + 40_000


def test_offset_jump_is_a_gap_and_overlap_is_ignored() -> None:
    r1 = rec(23, b"a" * 100)
    obs = TlsObserver(S)
    events = obs.feed(r1[:40], 0) + obs.feed(r1[30:60], 30) + obs.feed(r1[90:], 90) + obs.end()
    assert [e.span for e in events] == [Span(S, 0, 105)]
    assert obs.bytes == 60 + 15


def test_handshake_too_large_stops_handshake_parsing_only() -> None:
    header = hs(11, b"")[:1] + (70_000).to_bytes(3, "big")
    data = rec(22, header + b"\x00" * 100) + rec(21, b"\x02\x28")
    events, obs = observe(S, data)
    assert kinds(events) == ["TlsStopped", "TlsAlert"]
    assert isinstance(events[0], TlsStopped) and events[0].reason == "handshake_too_large"
    assert obs.records == 2


def test_event_limit() -> None:
    data = b"".join(rec(21, b"\x01\x00") for _ in range(10))
    events, obs = observe(S, data, max_events=4)
    assert kinds(events) == ["TlsAlert"] * 3 + ["TlsStopped"]
    assert isinstance(events[-1], TlsStopped) and events[-1].reason == "event_limit"
    assert obs.records == 10
    with pytest.raises(ValueError):
        TlsObserver(S, max_events=0)


# ------------------------------------------------------------------------------------------
# Certificates
# ------------------------------------------------------------------------------------------

def _cert_info(**kw: object) -> CertInfo:
    base: dict[str, object] = dict(subject="CN=x", common_name=None, sans=(), issuer="CN=y",
                                   not_before="2024-01-01T00:00:00Z",
                                   not_after="2024-12-31T23:59:59Z", self_signed=False,
                                   sha256="00")
    base.update(kw)
    return CertInfo(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("sans", "cn", "host", "expected"), [
    (("mail.example.com",), None, "mail.example.com", True),
    (("mail.example.com",), None, "MAIL.Example.COM.", True),
    (("*.example.com",), None, "mail.example.com", True),
    (("*.example.com",), None, "a.b.example.com", False),
    (("*.example.com",), None, "example.com", False),
    (("*.com",), None, "example.com", False),
    (("m*.example.com",), None, "mail.example.com", False),
    (("mail.*.com",), None, "mail.example.com", False),
    (("other.example.com",), "mail.example.com", "mail.example.com", False),  # CN ignored
    ((), "mail.example.com", "mail.example.com", True),
    ((), "*.example.com", "mx.example.com", True),
    ((), None, "mail.example.com", False),
    (("xn--bcher-kva.example",), None, "bücher.example", True),
])
def test_cert_matches_host(sans: tuple[str, ...], cn: str | None, host: str, expected: bool) -> None:
    assert cert_matches_host(_cert_info(sans=sans, common_name=cn), host) is expected


def test_cert_matches_ip_only_through_ip_san() -> None:
    assert cert_matches_host(_cert_info(ip_sans=("192.0.2.1",)), "192.0.2.1")
    assert not cert_matches_host(_cert_info(common_name="192.0.2.1"), "192.0.2.1")


def test_cert_validity() -> None:
    cert = _cert_info()
    ns = lambda s: int(dt.datetime.fromisoformat(s).timestamp()) * 10**9  # noqa: E731
    assert not cert_expired(cert, ns("2024-06-01T00:00:00+00:00"))
    assert not cert_expired(cert, ns("2024-12-31T23:59:59+00:00"))
    assert cert_expired(cert, ns("2025-01-01T00:00:00+00:00"))
    assert cert_not_yet_valid(cert, ns("2023-12-31T23:59:59+00:00"))
    assert not cert_not_yet_valid(cert, ns("2024-01-01T00:00:00+00:00"))
    assert not cert_expired(_cert_info(not_after=""), 0)


def test_parse_certificate_junk_keeps_going() -> None:
    info = parse_certificate(b"\x30\x03\x02\x01\x00")
    assert info.error and info.subject == "" and len(info.sha256) == 64
    events, _ = observe(S, rec(22, hs(11, vec(3, vec(3, b"junk") + vec(3, b"more")))))
    (cert,) = events
    assert isinstance(cert, TlsCertificate) and len(cert.certificates) == 2
    assert all(c.error for c in cert.certificates)
    events, _ = observe(S, rec(22, hs(11, vec(3, b"\x00\x00\x09abc")))) # length past the end
    assert isinstance(events[0], TlsCertificate) and events[0].error


# ------------------------------------------------------------------------------------------
# Genuine handshakes: Python's ssl over MemoryBIO pairs
# ------------------------------------------------------------------------------------------

HOST = "mail.example.test"


@dataclasses.dataclass
class Pki:
    chain: Path
    key: Path
    ca: Path
    other_ca: Path
    leaf_der: bytes
    ca_der: bytes
    not_before: dt.datetime
    not_after: dt.datetime
    forged_der: bytes       # issuer == subject, signed by another key


def _make_pki(directory: Path) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    start = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    end = dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pcapsmtp tests"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        return key, cert

    ca_key, ca_cert = ca("Test Root CA")
    other_key, other_cert = ca("Other Root CA")
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(name(HOST)).issuer_name(ca_cert.subject)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST),
                                                        x509.DNSName("*.mx.example.test")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    forged = (x509.CertificateBuilder().subject_name(name("Test Root CA"))
              .issuer_name(name("Test Root CA")).public_key(ca_key.public_key())
              .serial_number(7).not_valid_before(start).not_valid_after(end)
              .sign(other_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = Pki(chain=directory / "chain.pem", key=directory / "key.pem", ca=directory / "ca.pem",
                other_ca=directory / "other-ca.pem", leaf_der=leaf.public_bytes(serialization.Encoding.DER),
                ca_der=ca_cert.public_bytes(serialization.Encoding.DER), not_before=start,
                not_after=end, forged_der=forged.public_bytes(serialization.Encoding.DER))
    paths.chain.write_bytes(leaf.public_bytes(pem) + ca_cert.public_bytes(pem))
    paths.key.write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    paths.ca.write_bytes(ca_cert.public_bytes(pem))
    paths.other_ca.write_bytes(other_cert.public_bytes(pem))
    return paths


@dataclasses.dataclass
class Transcript:
    client: bytes
    server: bytes
    client_error: str | None
    server_error: str | None


def handshake(pki: Pki, version: ssl.TLSVersion, *, trust: Path, require_client_cert: bool = False,
              exchange: bool = True, close: bool = False) -> Transcript:
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(pki.chain, pki.key)
    sctx.minimum_version = sctx.maximum_version = version
    if require_client_cert:
        sctx.verify_mode = ssl.CERT_REQUIRED
        sctx.load_verify_locations(pki.ca)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.load_verify_locations(trust)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = cctx.wrap_bio(c_in, c_out, server_hostname=HOST)
    server = sctx.wrap_bio(s_in, s_out, server_side=True)
    cbytes, sbytes = bytearray(), bytearray()
    cerr: str | None = None
    serr: str | None = None
    cdone = sdone = False

    def pump() -> None:
        data = c_out.read()
        cbytes.extend(data)
        s_in.write(data)
        data = s_out.read()
        sbytes.extend(data)
        c_in.write(data)

    for _ in range(20):
        if not cdone:
            try:
                client.do_handshake()
                cdone = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                cerr, cdone = exc.reason or str(exc), True
        pump()
        if not sdone:
            try:
                server.do_handshake()
                sdone = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                serr, sdone = exc.reason or str(exc), True
        pump()
        if cdone and sdone:
            break
    if cerr is None and serr is None and exchange:
        client.write(b"EHLO client.example\r\n")
        pump()
        try:
            assert server.read() == b"EHLO client.example\r\n"
            server.write(b"250-mail.example.test\r\n250 8BITMIME\r\n")
            pump()
            assert client.read() == b"250-mail.example.test\r\n250 8BITMIME\r\n"
        except ssl.SSLError as exc:
            serr = exc.reason or str(exc)
            pump()
    if close and cerr is None:
        try:
            client.unwrap()
        except ssl.SSLError:
            pass
        pump()
    return Transcript(bytes(cbytes), bytes(sbytes), cerr, serr)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return _make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def transcripts(pki: Pki) -> dict[str, Transcript]:
    v12, v13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
    return {
        "ok12": handshake(pki, v12, trust=pki.ca, close=True),
        "ok13": handshake(pki, v13, trust=pki.ca, close=True),
        "bad12": handshake(pki, v12, trust=pki.other_ca),
        "bad13": handshake(pki, v13, trust=pki.other_ca),
        "nocert13": handshake(pki, v13, trust=pki.ca, require_client_cert=True),
    }


def test_parse_generated_certificate(pki: Pki) -> None:
    info = parse_certificate(pki.leaf_der)
    assert info.error is None
    assert info.subject == f"CN={HOST},O=pcapsmtp tests" and info.common_name == HOST
    assert info.issuer == "CN=Test Root CA,O=pcapsmtp tests" and not info.self_signed
    assert info.sans == (HOST, "*.mx.example.test")
    assert (info.not_before, info.not_after) == ("2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z")
    assert cert_matches_host(info, HOST) and cert_matches_host(info, "a.mx.example.test")
    assert not cert_matches_host(info, "example.test")
    assert parse_certificate(pki.ca_der).self_signed
    forged = parse_certificate(pki.forged_der)
    assert forged.issuer == forged.subject and not forged.self_signed


def test_real_tls12_handshake(transcripts: dict[str, Transcript], pki: Pki) -> None:
    t = transcripts["ok12"]
    assert t.client_error is None and t.server_error is None
    cev, cobs = observe(C, t.client)
    sev, sobs = observe(S, t.server)
    hello = cev[0]
    assert isinstance(hello, TlsClientHello) and hello.sni == HOST and hello.cipher_suites > 0
    assert kinds(cev) == ["TlsClientHello", "TlsHandshakeOther", "TlsChangeCipherSpec",
                          "TlsEncryptedHandshake", "TlsApplicationData", "TlsAlert"]
    close = cev[-1]
    assert isinstance(close, TlsAlert) and close.encrypted and close.content_type == 21
    sh = sev[0]
    assert isinstance(sh, TlsServerHello) and sh.selected_version == 0x0303
    certs = [e for e in sev if isinstance(e, TlsCertificate)]
    assert len(certs) == 1
    leaf, root = certs[0].certificates
    assert leaf.common_name == HOST and leaf.sans == (HOST, "*.mx.example.test")
    assert leaf.issuer == root.subject and root.self_signed and not leaf.self_signed
    assert leaf.sha256 == __import__("hashlib").sha256(pki.leaf_der).hexdigest()
    at = int(dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    assert not cert_expired(leaf, at) and cert_expired(leaf, at * 100 // 30)
    names = [e.name for e in sev if isinstance(e, TlsHandshakeOther)]
    assert "server_key_exchange" in names and names[-1] in ("server_hello_done",
                                                            "new_session_ticket")
    assert "TlsChangeCipherSpec" in kinds(sev) and "TlsEncryptedHandshake" in kinds(sev)
    assert sobs.encrypted and cobs.encrypted and not sobs.tls13 and not cobs.tls13
    assert cobs.bytes == len(t.client) and sobs.bytes == len(t.server)
    assert kinds(sev)[-1] == "TlsApplicationData"


def test_real_tls13_handshake(transcripts: dict[str, Transcript]) -> None:
    t = transcripts["ok13"]
    assert t.client_error is None and t.server_error is None
    cev, cobs = observe(C, t.client)
    sev, sobs = observe(S, t.server)
    sh = sev[0]
    assert isinstance(sh, TlsServerHello) and sh.selected_version == 0x0304
    assert sh.legacy_version == 0x0303 and sh.cipher_suite in (0x1301, 0x1302, 0x1303)
    assert not any(isinstance(e, (TlsCertificate, TlsHandshakeOther)) for e in sev)
    assert set(kinds(sev[1:])) <= {"TlsChangeCipherSpec", "TlsApplicationData"}
    assert sobs.tls13 and sobs.encrypted and sobs.app_data_records >= 3
    hello = cev[0]
    assert isinstance(hello, TlsClientHello) and 0x0304 in hello.supported_versions
    assert cobs.tls13
    # The client's close_notify under TLS 1.3: an outer type-23 record of 19 bytes.
    close = cev[-1]
    assert isinstance(close, TlsAlert) and close.encrypted and close.content_type == 23
    assert close.span.end - close.span.start == 5 + 19


def test_real_tls12_bad_certificate_alert_in_clear(transcripts: dict[str, Transcript]) -> None:
    t = transcripts["bad12"]
    assert t.client_error is not None
    cev, _ = observe(C, t.client)
    alerts = [e for e in cev if isinstance(e, TlsAlert)]
    assert len(alerts) == 1 and alerts[0].side is C
    assert not alerts[0].encrypted and alerts[0].fatal
    assert alerts[0].name in ("unknown_ca", "bad_certificate")
    sev, _ = observe(S, t.server)
    assert any(isinstance(e, TlsCertificate) for e in sev)


def test_real_tls13_bad_certificate_alert(transcripts: dict[str, Transcript]) -> None:
    """The client refuses the server's certificate. OpenSSL 3 sends this alert before it has
    switched its own write keys, so it shows in clear (7-byte record); other stacks (Go,
    BoringSSL, NSS, rustls) send it encrypted under handshake keys: a 19-byte type-23 record."""
    t = transcripts["bad13"]
    assert t.client_error is not None
    cev, cobs = observe(C, t.client)
    alerts = [e for e in cev if isinstance(e, TlsAlert)]
    assert len(alerts) == 1 and alerts[0].side is C
    alert = alerts[0]
    if alert.encrypted:
        assert alert.content_type == 23 and alert.span.end - alert.span.start == 24
    else:
        assert alert.name in ("unknown_ca", "bad_certificate") and alert.fatal
    assert cobs.tls13
    sev, _ = observe(S, t.server)
    assert isinstance(sev[0], TlsServerHello) and sev[0].selected_version == 0x0304


def test_real_tls13_server_alert_is_an_encrypted_19_byte_record(
        transcripts: dict[str, Transcript]) -> None:
    t = transcripts["nocert13"]
    assert t.server_error is not None
    sev, _ = observe(S, t.server)
    alerts = [e for e in sev if isinstance(e, TlsAlert)]
    assert len(alerts) == 1
    assert alerts[0].encrypted and alerts[0].content_type == 23
    assert alerts[0].span.end - alerts[0].span.start == 24


# ------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------

def _no_frames(events: Iterable[TlsEvent]) -> list[TlsEvent]:
    return [dataclasses.replace(e, frame=None) for e in events]


@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(1, 600), max_size=30),
       side=st.sampled_from([C, S]), prefix=st.sampled_from([b"", b"\x16\x03\x01", b"\x17\x03\x03\x00\x05abcde",
                                                             b"\x80\x30\x01\x03\x01"]))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_never_raise_and_chunking_does_not_matter(
        data: bytes, cuts: list[int], side: Side, prefix: bytes) -> None:
    data = prefix + data
    bulk, obs = observe(side, data)
    chunked, obs2 = observe(side, data, chunks=cuts)
    assert bulk == chunked
    assert obs.bytes == obs2.bytes == len(data)
    assert not any(isinstance(e, TlsStopped) and e.reason == "internal_error" for e in bulk)
    assert len(bulk) <= 64


_HS_MESSAGES = st.one_of(
    st.builds(lambda sni, vs: client_hello(sni=sni, versions=vs),
              st.one_of(st.none(), st.text("abc.-", min_size=1, max_size=20)),
              st.lists(st.sampled_from([0x0301, 0x0303, 0x0304, 0x7F1C]), max_size=4)),
    st.builds(lambda sel, hrr: server_hello(selected=sel, random=HRR_RANDOM if hrr else b"\x33" * 32),
              st.sampled_from([None, 0x0303, 0x0304]), st.booleans()),
    st.builds(lambda t, body: hs(t, body), st.sampled_from([0, 4, 11, 12, 13, 14, 16, 20, 99]),
              st.binary(max_size=60)),
)


@st.composite
def tls_streams(draw: st.DrawFn) -> bytes:
    """Mostly well-formed record sequences: handshake messages cut over records at random,
    CCS, alerts, application data, now and then a stray byte."""
    out = bytearray()
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["hs", "hs", "hs", "ccs", "alert", "app", "app", "junk"]))
        if kind == "hs":
            msgs = b"".join(draw(st.lists(_HS_MESSAGES, min_size=1, max_size=3)))
            cuts = sorted(draw(st.lists(st.integers(0, len(msgs)), max_size=3)))
            for a, b in zip([0] + cuts, cuts + [len(msgs)]):
                if b > a:
                    out += rec(22, msgs[a:b])
        elif kind == "ccs":
            out += rec(20, b"\x01")
        elif kind == "alert":
            out += rec(21, draw(st.sampled_from([b"\x02\x30", b"\x01\x00", b"\x15" * 26])))
        elif kind == "app":
            out += rec(23, bytes(draw(st.sampled_from([1, 11, 19, 25, 300]))))
        else:
            out += draw(st.binary(min_size=1, max_size=3))
    return bytes(out)


def _state(obs: TlsObserver) -> tuple[object, ...]:
    return (obs.records, obs.bytes, obs.app_data_records, obs.app_data_bytes, obs.is_tls,
            obs.encrypted, obs.tls13)


@given(data=tls_streams(), cuts=st.lists(st.integers(1, 200), max_size=40),
       side=st.sampled_from([C, S]))
@settings(max_examples=300, deadline=None)
def test_record_streams_parse_the_same_in_any_chunking(data: bytes, cuts: list[int],
                                                        side: Side) -> None:
    bulk, obs = observe(side, data)
    chunked, obs2 = observe(side, data, chunks=cuts)
    single, obs1 = observe(side, data, chunks=[1] * len(data))
    assert bulk == chunked == single
    # and the counters and state the session and the verdict read (a whole record in one feed
    # takes the observer's one-step framing, a record cut over feeds the byte-by-byte path)
    assert _state(obs) == _state(obs2) == _state(obs1)
    assert obs.bytes == len(data)
    assert not any(isinstance(e, TlsStopped) and e.reason == "internal_error" for e in bulk)
    assert all(e.span.start < e.span.end <= len(data) for e in bulk)


@given(ops=st.lists(st.one_of(st.tuples(st.just("feed"), st.binary(max_size=400)),
                              st.tuples(st.just("gap"), st.integers(0, 20_000))), max_size=25))
@settings(max_examples=300, deadline=None)
def test_feeds_and_gaps_never_raise(ops: list[tuple[str, object]]) -> None:
    obs = TlsObserver(C, max_events=16)
    pos = 0
    events: list[TlsEvent] = []
    fed = 0
    for op, arg in ops:
        if op == "feed":
            assert isinstance(arg, bytes)
            events += obs.feed(arg, pos)
            pos += len(arg)
            fed += len(arg)
        else:
            assert isinstance(arg, int)
            events += obs.gap(arg)
            pos += arg
    events += obs.end()
    assert obs.bytes == fed and len(events) <= 16
    assert not any(isinstance(e, TlsStopped) and e.reason == "internal_error" for e in events)


@given(cuts=st.lists(st.integers(1, 300), min_size=1, max_size=60),
       which=st.sampled_from(["ok12", "ok13", "bad12", "bad13", "nocert13"]),
       side=st.sampled_from([C, S]))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_chunking_of_a_real_handshake_gives_the_same_events(
        transcripts: dict[str, Transcript], cuts: list[int], which: str, side: Side) -> None:
    t = transcripts[which]
    data = t.client if side is C else t.server
    expected, _ = observe(side, data)
    got, obs = observe(side, data, chunks=cuts)
    assert got == expected and obs.bytes == len(data)


def test_one_byte_feeds_of_real_handshakes(transcripts: dict[str, Transcript]) -> None:
    for t in transcripts.values():
        for side, data in ((C, t.client), (S, t.server)):
            bulk, _ = observe(side, data)
            obs = TlsObserver(side)
            single: list[TlsEvent] = []
            for i in range(len(data)):
                single += obs.feed(data[i:i + 1], i, frame=i + 1)
            single += obs.end()
            assert _no_frames(single) == bulk
            assert all(e.frame is not None for e in single[:-1] if not isinstance(e, TlsTruncated))


def test_frame_is_the_one_that_completed_the_record() -> None:
    data = rec(22, client_hello())
    obs = TlsObserver(C)
    assert obs.feed(data[:100], 0, frame=7) == []
    (hello,) = obs.feed(data[100:], 100, frame=9)
    assert hello.frame == 9


# ------------------------------------------------------------------------------------------
# A real capture: Zeek's STARTTLS trace to Google (TLS 1.2, certificate chain in clear)
# ------------------------------------------------------------------------------------------

def _streams(path: Path) -> dict[tuple[str, int], bytes]:
    """Per-direction payloads of a single-connection capture, keyed by (src ip, src port),
    ordered by sequence number with retransmissions dropped (test helper, not the product)."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import PcapReader

    segments: dict[tuple[str, int], dict[int, bytes]] = {}
    with PcapReader(str(path)) as reader:
        for pkt in reader:
            if IP not in pkt or TCP not in pkt:
                continue
            payload = bytes(pkt[TCP].payload)
            if payload:
                key = (pkt[IP].src, int(pkt[TCP].sport))
                segments.setdefault(key, {}).setdefault(int(pkt[TCP].seq), payload)
    out = {}
    for key, segs in segments.items():
        buf = bytearray()
        start = min(segs)
        for seq in sorted(segs):
            rel = (seq - start) % 2**32
            if rel >= len(buf):
                buf += segs[seq]
            elif rel + len(segs[seq]) > len(buf):
                buf += segs[seq][len(buf) - rel:]
        out[key] = bytes(buf)
    return out


def test_zeek_smtp_starttls_capture_matches_zeek_x509_log() -> None:
    path = CORPUS / "zeek__zeek" / "testing__btest__Traces__tls__smtp-starttls.pcap"
    streams = _streams(path)
    client = next(v for (ip, port), v in streams.items() if port != 25)
    server = next(v for (ip, port), v in streams.items() if port == 25)
    c_at = client.upper().index(b"STARTTLS\r\n") + len(b"STARTTLS\r\n")
    s_at = server.index(b"\r\n220 ") + 2
    s_at = server.index(b"\r\n", s_at) + 2
    cobs, sobs = TlsObserver(C), TlsObserver(S)
    cev = cobs.feed(client[c_at:], c_at) + cobs.end()
    sev = sobs.feed(server[s_at:], s_at) + sobs.end()
    hello = cev[0]
    assert isinstance(hello, TlsClientHello) and hello.sni is None      # Zeek: server_name "-"
    sh = sev[0]
    assert isinstance(sh, TlsServerHello)
    assert (sh.selected_version, sh.cipher_suite) == (0x0303, 0xC02F)  # ECDHE_RSA_AES_128_GCM
    (certs,) = [e for e in sev if isinstance(e, TlsCertificate)]
    # Fingerprints and names from Zeek's baseline x509.log for this trace.
    assert [c.sha256 for c in certs.certificates] == [
        "4f0a1ac1c6e873c8805fe2fc56c7aac77025f1dcbbbf907e768f1ec88c3485db",
        "a047a37fa2d2e118a4f5095fe074d6cfe0e352425a7632bf8659c03919a6c81d",
        "3c35cc963eb004451323d3275d05b353235053490d9cd83729a2faf5e7ca1cc0"]
    leaf = certs.certificates[0]
    assert leaf.error is None and leaf.common_name == "mx.google.com"
    assert leaf.subject == "CN=mx.google.com,O=Google Inc,L=Mountain View,ST=California,C=US"
    assert leaf.issuer == "CN=Google Internet Authority G2,O=Google Inc,C=US"
    assert (leaf.not_before, leaf.not_after) == ("2013-09-09T11:32:35Z", "2014-09-09T11:32:35Z")
    assert "aspmx.l.google.com" in leaf.sans and cert_matches_host(leaf, "alt1.aspmx.l.google.com")
    assert not any(c.self_signed for c in certs.certificates)
    assert "TlsChangeCipherSpec" in kinds(cev) and "TlsChangeCipherSpec" in kinds(sev)
    assert cobs.app_data_records > 0 and sobs.app_data_records > 0


# ------------------------------------------------------------------------------------------
# ServerKeyExchange: the size of the server's Diffie-Hellman group
# ------------------------------------------------------------------------------------------

def _server_flight_with_key_exchange(suite: int, params: bytes) -> bytes:
    return rec(22, server_hello(suite=suite) + hs(12, params + b"\x04\x01" + vec(2, b"\x55" * 64))
               + hs(14, b""))


@settings(max_examples=60, deadline=None)
@given(prime=st.binary(min_size=1, max_size=600), cuts=st.lists(st.integers(1, 300), max_size=8))
def test_dhe_key_exchange_reports_the_prime_size(prime: bytes, cuts: list[int]) -> None:
    """Under a DHE suite the first vector is the prime: its size in bits (leading zero bytes
    left out) is what the event says, however the records are cut."""
    params = vec(2, prime) + vec(2, b"\x02") + vec(2, b"\x07" * len(prime))
    events, _ = observe(S, _server_flight_with_key_exchange(0x009E, params), chunks=cuts)
    (kx,) = [e for e in events if isinstance(e, TlsServerKeyExchange)]
    assert kx.dh_bits == int.from_bytes(prime, "big").bit_length() and kx.curve == 0
    assert kx.name == "server_key_exchange" and isinstance(kx, TlsHandshakeOther)


def test_ecdhe_key_exchange_reports_the_named_group() -> None:
    params = b"\x03" + struct.pack("!H", 0x001D) + vec(1, b"\x09" * 32)
    events, _ = observe(S, _server_flight_with_key_exchange(0xC02F, params))
    (kx,) = [e for e in events if isinstance(e, TlsServerKeyExchange)]
    assert (kx.dh_bits, kx.curve) == (0, 0x001D)


def test_short_key_exchange_is_read_as_unknown() -> None:
    events, _ = observe(S, _server_flight_with_key_exchange(0x0033, b"\x01"))
    (kx,) = [e for e in events if isinstance(e, TlsServerKeyExchange)]
    assert (kx.dh_bits, kx.curve) == (0, 0)
