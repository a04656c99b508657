"""A capture with many small SMTP conversations (for the 10,000-conversation report test),
packed with ``struct``: Ethernet/IPv4/TCP, handshake, the dialogue, FIN both ways. Each
conversation is one of a few kinds with a known verdict, so the test can count them."""
from __future__ import annotations

import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "captures"))
from generate_hostile import ip_checksum  # noqa: E402

T0_US = 1_767_261_600_000_000   # 2026-01-01T10:00:00Z

BANNER = b"220 mx%d.example.net ESMTP\r\n"
EHLO = b"EHLO client%d.example.org\r\n"
MAIL = [("C", b"MAIL FROM:<a@example.org>\r\n"), ("S", b"250 2.1.0 Ok\r\n"),
        ("C", b"RCPT TO:<b@example.net>\r\n"), ("S", b"250 2.1.5 Ok\r\n"),
        ("C", b"DATA\r\n"), ("S", b"354 go\r\n"), ("C", b"Subject: x\r\n\r\nhello\r\n.\r\n"),
        ("S", b"250 2.0.0 queued\r\n"), ("C", b"QUIT\r\n"), ("S", b"221 bye\r\n")]
#: kind -> (EHLO reply, outcome, caused_by, reason)
KINDS: list[tuple[bytes, str, str, str]] = [
    (b"250-STARTTLS\r\n250-mx.example.net\r\n250 SIZE 1000\r\n", "plaintext", "server", "starttls-misplaced"),
    (b"250-mx.example.net\r\n250-STARTTLS\r\n250 SIZE 1000\r\n", "plaintext", "client", "client-did-not-request"),
    (b"250-mx.example.net\r\n250 SIZE 1000\r\n", "plaintext", "server", "starttls-not-offered"),
]


def write_many(path: Path, n: int, *, servers: int = 40) -> list[tuple[str, str, str]]:
    """Write ``n`` conversations to ``path``; return the (outcome, caused_by, reason) of each."""
    truth: list[tuple[str, str, str]] = []
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for k in range(n):
            reply, *verdict = KINDS[k % len(KINDS)]
            truth.append((verdict[0], verdict[1], verdict[2]))
            cip = bytes([192, 0, 2 + (k >> 14) % 50, 1 + (k >> 8) % 60])
            sidx = k % servers
            sip = bytes([198, 51, 100, 10 + sidx])
            cport = 10000 + k % 50000
            seq = {"C": 1000 + k, "S": 500000 + k}
            t = T0_US + k * 20_000   # a conversation every 20 ms, each lasting ~2 ms
            ident = k & 0xFFFF

            def pkt(side: str, flags: int, payload: bytes = b"", cip: bytes = cip, sip: bytes = sip,
                    cport: int = cport, seq: dict[str, int] = seq) -> None:
                nonlocal t, ident
                src, dst = (cip, sip) if side == "C" else (sip, cip)
                sp, dp = (cport, 25) if side == "C" else (25, cport)
                other = "S" if side == "C" else "C"
                tcp = struct.pack("!HHIIBBHHH", sp, dp, seq[side], seq[other] if flags & 0x10 else 0,
                                  5 << 4, flags, 65535, 0, 0)
                ident = (ident + 1) & 0xFFFF
                ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), ident, 0x4000,
                                 64, 6, 0, src, dst)
                ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
                frame = b"\x02\0\0\0\0\x19\x02\0\0\0\0\x0a\x08\x00" + ip + tcp + payload
                fh.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(frame), len(frame)) + frame)
                t += 100
                seq[side] = (seq[side] + len(payload) + (1 if flags & 0x03 else 0)) % (1 << 32)

            pkt("C", 0x02)
            pkt("S", 0x12)
            pkt("C", 0x10)
            for side, data in [("S", BANNER % sidx), ("C", EHLO % k), ("S", reply)] + MAIL:
                pkt(side, 0x18, data)
            pkt("C", 0x11)
            pkt("S", 0x11)
            pkt("C", 0x10)
    return truth
