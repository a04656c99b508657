#!/usr/bin/env python3
"""Deterministic generator of the hostile SMTP captures in ``captures/hostile/`` (issue #8).

These files are written by strangers' rules: terminal escape sequences in banners, EHLO replies and
envelope addresses; every AUTH mechanism with a recognisable secret; NUL, 8-bit and C1 bytes;
a 100 000-line EHLO reply and a 2 MB line without CRLF. ``tests/test_security.py`` and
``tests/test_hostile_smtp.py`` run the CLI over them and check that nothing escapes: no raw control
character reaches stdout, no credential reaches any output, memory and time stay bounded.

Run ``python captures/generate_hostile.py`` (or ``--out DIR``) to rewrite every file byte for byte
identically. The bigger cases (a 10 MB line, 200 000 pipelined commands) are not committed: the tests
build them into a temporary folder with ``big_line_capture`` and ``pipelined_capture``.

The dialogue builder, link layers and containers are those of ``captures/generate.py`` (imported,
not modified). ``fast_pcap`` writes plain Ethernet/IPv4/TCP records with ``struct`` for the large
cases, where building thousands of scapy packets would dominate the test's time.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import struct
import sys
from pathlib import Path
from typing import Any, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import (  # noqa: E402  (captures/generate.py, the shared builder)
    BANNER, EHLO, EHLO_OK, MAIL_STEPS, QUIT_STEPS, T0_NS, Capture, Conv, Expect, lines, render,
)

OUT = HERE / "hostile"

#: The secret every AUTH capture carries; it must never appear in any pcapsmtp output.
SECRET = "SECRETpassw0rd"
SECRET_USER = "SECRETuser"
ANSI = "\x1b[31m\x1b]0;pwned\x07"      # colour + set-window-title (terminated by BEL)


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def secrets() -> list[str]:
    """Every string that would betray a credential, in the forms a capture may show it."""
    plain = f"\0{SECRET_USER}\0{SECRET}"
    xoauth = f"user={SECRET_USER}@example.org\x01auth=Bearer {SECRET}\x01\x01"
    return [SECRET, b64(SECRET), b64(plain), b64(xoauth), b64(SECRET_USER), SECRET_USER,
            _cram_response(), b64(_cram_response())]


CRAM_CHALLENGE = "<1896.697170952@mx.example.com>"


def _cram_response() -> str:
    digest = hmac.new(SECRET.encode(), CRAM_CHALLENGE.encode(), hashlib.md5).hexdigest()
    return f"{SECRET_USER} {digest}"


def _auth_conv(cport: int, exchange: list[tuple[Any, ...]], *, only_side: str | None = None) -> Conv:
    """EHLO (offering AUTH, no STARTTLS so that the exchange is readable), the AUTH exchange,
    then a mail transaction in the clear."""
    ehlo = lines("250-mx.example.com", "250-PIPELINING", "250-AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2",
                 "250 8BITMIME")
    conv = Conv(cport=cport, only_side=only_side)
    conv.s(BANNER, tag="banner").c(EHLO, tag="greeting").s(ehlo, tag="ehlo_reply")
    conv.extend(exchange)
    conv.extend(MAIL_STEPS)
    conv.extend(QUIT_STEPS)
    return conv


OK235 = b"235 2.7.0 Authentication successful\r\n"


def _crlf(s: str) -> bytes:
    return s.encode("latin-1") + b"\r\n"


def auth_captures() -> list[Capture]:
    plain = b64(f"\0{SECRET_USER}\0{SECRET}")
    xoauth = b64(f"user={SECRET_USER}@example.org\x01auth=Bearer {SECRET}\x01\x01")
    none = Expect("plaintext", "server", "starttls-not-offered", "absent")
    caps = [
        Capture("auth-plain.pcap", "AUTH PLAIN with an initial response",
                [(_auth_conv(41001, [("C", _crlf(f"AUTH PLAIN {plain}")), ("S", OK235)]), none)]),
        Capture("auth-plain-334.pcap", "AUTH PLAIN without initial response: 334, then the response",
                [(_auth_conv(41002, [("C", b"AUTH PLAIN\r\n"), ("S", b"334 \r\n"),
                                     ("C", _crlf(plain)), ("S", OK235)]), none)]),
        Capture("auth-login.pcap", "AUTH LOGIN: 334 Username:, 334 Password:, both base64",
                [(_auth_conv(41003, [("C", b"AUTH LOGIN\r\n"), ("S", b"334 VXNlcm5hbWU6\r\n"),
                                     ("C", _crlf(b64(SECRET_USER))), ("S", b"334 UGFzc3dvcmQ6\r\n"),
                                     ("C", _crlf(b64(SECRET))), ("S", OK235)]), none)]),
        Capture("auth-login-initial.pcap", "AUTH LOGIN with the user name as initial response",
                [(_auth_conv(41004, [("C", _crlf(f"AUTH LOGIN {b64(SECRET_USER)}")),
                                     ("S", b"334 UGFzc3dvcmQ6\r\n"),
                                     ("C", _crlf(b64(SECRET))), ("S", OK235)]), none)]),
        Capture("auth-cram-md5.pcap", "AUTH CRAM-MD5: challenge, then user name and HMAC digest",
                [(_auth_conv(41005, [("C", b"AUTH CRAM-MD5\r\n"),
                                     ("S", _crlf(f"334 {b64(CRAM_CHALLENGE)}")),
                                     ("C", _crlf(b64(_cram_response()))), ("S", OK235)]), none)]),
        Capture("auth-xoauth2.pcap", "AUTH XOAUTH2 with a bearer token as initial response",
                [(_auth_conv(41006, [("C", _crlf(f"AUTH XOAUTH2 {xoauth}")), ("S", OK235)]), none)]),
        Capture("auth-xoauth2-error.pcap", "AUTH XOAUTH2 refused: a 334 JSON error, the client's "
                "empty line, 535; then the client retries with AUTH PLAIN",
                [(_auth_conv(41007, [("C", _crlf(f"AUTH XOAUTH2 {xoauth}")),
                                     ("S", _crlf("334 " + b64('{"status":"401","schemes":"bearer"}'))),
                                     ("C", b"\r\n"), ("S", b"535 5.7.8 Username and Password not accepted\r\n"),
                                     ("C", _crlf(f"AUTH PLAIN {plain}")), ("S", OK235)]), none)]),
        Capture("auth-login-pipelined.pcap", "AUTH LOGIN with the user name and password sent in the "
                "same segment, before the server's 334 (a misbehaving client)",
                [(_auth_conv(41008, [("C", _crlf("AUTH LOGIN") + _crlf(b64(SECRET_USER)) + _crlf(b64(SECRET))),
                                     ("S", b"334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n" + OK235)]), none)]),
        Capture("auth-login-client-only.pcap", "AUTH LOGIN where only the client's side was captured "
                "(no 334 is visible)",
                [(_auth_conv(41009, [("C", b"AUTH LOGIN\r\n"), ("S", b"334 VXNlcm5hbWU6\r\n"),
                                     ("C", _crlf(b64(SECRET_USER))), ("S", b"334 UGFzc3dvcmQ6\r\n"),
                                     ("C", _crlf(b64(SECRET))), ("S", OK235)], only_side="C"), none)]),
        Capture("auth-plain-server-gap.pcap", "AUTH PLAIN where the server's 334 was lost (capture "
                "drop): the response follows a hole",
                [(_auth_conv(41010, [("C", b"AUTH PLAIN\r\n"), ("S", b"334 \r\n", {"lost": [0]}),
                                     ("C", _crlf(plain)), ("S", OK235)]), none)]),
    ]
    return caps


def terminal_captures() -> list[Capture]:
    esc_banner = ("220 mx.example.com" + ANSI + " ESMTP\x08\x08\x08\x08\rFAKE 250 OK\x7f\x9b2J\r\n").encode("latin-1")
    esc_ehlo = lines("250-mx.example.com", "250-PIPELINING") + \
        ("250-X" + ANSI + "\x1b[2J\x1b[H\rSTARTTLS\x08\x08\r\n").encode("latin-1") + \
        lines("250-STARTTLS", "250 8BITMIME")
    conv = Conv(cport=42001)
    conv.s(esc_banner, tag="banner").c(("EHLO cl\x1b[1mient\x07.example.org\r\n").encode(), tag="greeting")
    conv.s(esc_ehlo, tag="ehlo_reply")
    conv.c(("MAIL FROM:<ev\x1b[0mil\r\x08@example.org>\r\n").encode()).s(b"250 2.1.0 Ok\x1b[5m\r\n")
    conv.c(b"RCPT TO:<bob@example.com>\r\n").s(b"250 2.1.5 Ok\r\n")
    conv.c(b"DATA\r\n").s(b"354 go\r\n")
    conv.c(b"Subject: \x1b]0;body-escape\x07\r\n\r\nBODYSECRET line\r\n.\r\n").s(b"250 queued\r\n")
    conv.extend(QUIT_STEPS)
    # NUL, invalid UTF-8, C1 controls both as raw bytes and as UTF-8 encoded code points, bidi override
    conv2 = Conv(cport=42002)
    conv2.s(b"220 mx\x00.example.com \xff\xfe\xc0\x80 ESMTP \xc2\x9b31m \xe2\x80\xaeevil\r\n", tag="banner")
    conv2.c(b"EHLO \xe9t\xe9.example.org\x00\r\n", tag="greeting")
    conv2.s(lines("250-mx.example.com") + b"250-SIZE\x00 100\r\n250-8BIT\x9bMIME\r\n"
            b"250-\xc3\xa9\xe2\x80\x8f\xe2\x81\xa6X\r\n250 STARTTLS\r\n", tag="ehlo_reply")
    conv2.c(b"MAIL FROM:<\xff\xfe@example.org>\r\n").s(b"250 \x00\x00 Ok\r\n")
    conv2.c(b"QUIT\r\n").s(b"221 \x1bc\r\n")
    weird = Expect("plaintext", "client", "client-did-not-request", "valid")
    return [
        Capture("ansi-escapes.pcap", "ESC/OSC sequences, BEL, BS, CR and DEL in the banner, an EHLO "
                "reply line, the EHLO name, MAIL FROM and the message body", [(conv, weird)]),
        Capture("nul-8bit.pcap", "NUL bytes, invalid UTF-8, C1 controls (raw 0x9b and UTF-8 U+009B), "
                "bidi override and isolate characters in banner, EHLO reply and replies",
                [(conv2, weird)]),
    ]


def size_captures() -> list[Capture]:
    many = b"".join(b"250-X%06d\r\n" % i for i in range(100_000 - 1)) + b"250 STARTTLS\r\n"
    conv = Conv(cport=43001)
    conv.s(BANNER, tag="banner").c(EHLO, tag="greeting").s(many, tag="ehlo_reply")
    conv.extend(QUIT_STEPS)
    big = Conv(cport=43002, close=("rst", "S"))
    big.s(BANNER, tag="banner").c(b"EHLO " + b"A" * (2 * 1024 * 1024), tag="greeting")
    return [
        Capture("ehlo-100k-lines.pcap", "a 100 000-line EHLO reply", [(conv, Expect(
            "aborted", "server", "starttls-not-offered", "absent"))]),
        Capture("line-2mb-no-crlf.pcap", "the client sends a 2 MB EHLO line without CRLF; the server "
                "resets the connection", [(big, Expect("incomplete", "unknown", "incomplete", "unknown"))]),
    ]


def scenarios() -> list[Capture]:
    return auth_captures() + terminal_captures() + size_captures()


# --------------------------------------------------------------------------------------------------
# Large cases for the tests (not committed): a plain Ethernet/IPv4/TCP pcap written with struct
# --------------------------------------------------------------------------------------------------

def ip_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``, as IPv4 and TCP headers carry it."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def fast_pcap(steps: Sequence[tuple[str, bytes]], *, mss: int = 1460, cport: int = 44000,
              close: bool = True) -> bytes:
    """A pcap of one SMTP conversation (client 192.0.2.10, server 198.51.100.25:25): handshake,
    the steps' bytes in ``mss``-sized segments (no ACK-only packets), FIN from both sides."""
    cip, sip = bytes([192, 0, 2, 10]), bytes([198, 51, 100, 25])
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    seq = {"C": 1000, "S": 5000}
    t = T0_NS // 1000
    ident = [0]

    def pkt(side: str, flags: int, payload: bytes = b"") -> None:
        nonlocal t
        src, dst = (cip, sip) if side == "C" else (sip, cip)
        sp, dp = (cport, 25) if side == "C" else (25, cport)
        other = "S" if side == "C" else "C"
        tcp = struct.pack("!HHIIBBHHH", sp, dp, seq[side], seq[other] if flags & 0x10 else 0,
                          5 << 4, flags, 65535, 0, 0)
        ident[0] += 1
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), ident[0] & 0xFFFF,
                         0x4000, 64, 6, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
        eth = b"\x02\0\0\0\0\x19\x02\0\0\0\0\x0a\x08\x00"
        frame = eth + ip + tcp + payload
        out.append(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(frame), len(frame)) + frame)
        t += 10
        seq[side] = (seq[side] + len(payload) + (1 if flags & 0x03 else 0)) % (1 << 32)

    pkt("C", 0x02)
    pkt("S", 0x12)
    pkt("C", 0x10)
    for side, data in steps:
        for i in range(0, len(data), mss):
            pkt(side, 0x18, data[i:i + mss])
    if close:
        pkt("C", 0x11)
        pkt("S", 0x11)
        pkt("C", 0x10)
    return b"".join(out)


def big_line_capture(size: int = 10 * 1024 * 1024) -> bytes:
    """The client greets with ``EHLO`` followed by ``size`` bytes and no CRLF."""
    return fast_pcap([("S", BANNER), ("C", b"EHLO " + b"B" * size)])


def pipelined_capture(n: int = 200_000) -> bytes:
    """EHLO, then ``n`` pipelined NOOP/RSET commands in one flight, then ``n`` replies."""
    cmds = b"".join(b"NOOP\r\n" if i % 2 else b"RSET\r\n" for i in range(n))
    replies = b"250 2.0.0 Ok\r\n" * n
    return fast_pcap([("S", BANNER), ("C", EHLO), ("S", EHLO_OK), ("C", cmds), ("S", replies),
                      ("C", b"QUIT\r\n"), ("S", b"221 Bye\r\n")])


def endless_reply_capture(n_lines: int = 300_000) -> bytes:
    """A reply that never ends: ``250-`` continuation lines and no last line, until FIN."""
    body = b"".join(b"250-line %d\r\n" % i for i in range(n_lines))
    return fast_pcap([("S", BANNER), ("C", EHLO), ("S", body)])


def generate(out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for cap in scenarios():
        data, _entry = render(cap)
        (out / cap.name).write_bytes(data)
        names.append(cap.name)
    return names


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default: captures/hostile)")
    args = ap.parse_args(argv)
    for name in generate(args.out):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
