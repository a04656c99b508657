"""A real stateful firewall that drops a TLS record and forwards the segments after it as they are, between
real Linux TCP stacks: three network namespaces (client, box, server) joined by two veth pairs, and in the
box namespace an Ethernet bridge (AF_PACKET) that forwards every frame, except the client's TCP segments
from one source port whose payload starts a TLS handshake record (its ClientHello, and every resend of
it). The client's FIN that follows has a sequence number past the ClientHello, so the capture behind the
box holds a hole the server never acknowledges: what ``pcapsmtp diff`` must tell from a capture's loss.
(No nftables, iptables or tc actions are needed: containers often lack them.)

Run as a script in a namespace (``ip netns exec NS python3 finbox.py ROLE ...``):

- ``bridge OUTSIDE_DEV INSIDE_DEV DROP_SPORT``: forward between the two devices until killed;
- ``server ADDRESS CERT KEY WAIT_S N``: an SMTP server offering STARTTLS (OpenSSL, through Python's ssl) for
  N connections; it gives a TLS handshake WAIT_S seconds, then closes;
- ``client ADDRESS SPORT TIMEOUT_S``: CPython's smtplib from that source port: STARTTLS, waiting TIMEOUT_S for
  the ServerHello (and after the 220, for each reply), then a message if TLS comes up; prints ``tls`` or
  ``gave up``.
"""
from __future__ import annotations

import select
import socket
import smtplib
import ssl
import struct
import sys
from typing import Any, Callable

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def fix_checksums(frame: bytes) -> bytes:
    """The IPv4 and TCP checksums of ``frame`` computed again: a veth hands AF_PACKET the sender's segments
    with the TCP checksum left to the (virtual) hardware, which a frame written back out never gets."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return frame
    ihl = (frame[14] & 0x0F) * 4
    total = struct.unpack("!H", frame[16:18])[0]
    ip = bytearray(frame[14:14 + total])
    ip[10:12] = b"\0\0"
    ip[10:12] = struct.pack("!H", ~_sum16(bytes(ip[:ihl])) & 0xFFFF)
    if ip[9] == 6 and len(ip) >= ihl + 20:
        seg = bytearray(ip[ihl:])
        seg[16:18] = b"\0\0"
        pseudo = bytes(ip[12:20]) + struct.pack("!BBH", 0, 6, len(seg))
        seg[16:18] = struct.pack("!H", ~_sum16(pseudo + bytes(seg)) & 0xFFFF)
        ip[ihl:] = seg
    return frame[:14] + bytes(ip) + frame[14 + total:]


def starts_tls_record(frame: bytes, sport: int) -> bool:
    """A TCP segment of ``sport`` whose payload starts with a TLS handshake record header (0x16)."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return False
    ihl = (frame[14] & 0x0F) * 4
    tcp = 14 + ihl
    if struct.unpack("!H", frame[tcp:tcp + 2])[0] != sport:
        return False
    total = struct.unpack("!H", frame[16:18])[0]
    payload = tcp + (frame[tcp + 12] >> 4) * 4
    return payload < 14 + total and frame[payload] == 0x16


def forward(outside: str, inside: str,
            intercept: Callable[[bytes, socket.socket, socket.socket], bool],
            observe: Callable[[bytes], None] | None = None) -> None:
    """Bridge the two devices until killed: every frame goes through, except the client's
    frames (from ``outside``) that ``intercept(frame, outside_socket, inside_socket)`` takes
    (it returns True: it dropped the frame, or sent something else instead). ``observe`` sees
    every frame of either side first."""
    socks = {}
    for dev in (outside, inside):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((dev, 0))
        socks[dev] = s
    other = {outside: socks[inside], inside: socks[outside]}
    by_sock = {s: dev for dev, s in socks.items()}
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select(list(socks.values()), [], [])
        for s in ready:
            frame, addr = s.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue            # what this bridge itself wrote
            dev = by_sock[s]
            if observe is not None:
                observe(frame)
            if dev == outside and intercept(frame, socks[outside], socks[inside]):
                continue
            other[dev].send(fix_checksums(frame))


def bridge(outside: str, inside: str, drop_sport: int) -> None:
    # the box drops the client's ClientHello (and its resends)
    forward(outside, inside, lambda frame, _o, _i: starts_tls_record(frame, drop_sport))


def _lines(f: Any) -> bytes:
    line = f.readline()
    if not line:
        raise ConnectionError("closed")
    return line


def listen(address: str, cert: str, key: str) -> tuple[ssl.SSLContext, socket.socket]:
    """The server's TLS context (OpenSSL through Python's ssl) and its socket listening on port 25;
    says ``ready`` on standard output."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((address, 25))
    ls.listen(4)
    print("ready", flush=True)
    return ctx, ls


def server(address: str, cert: str, key: str, wait_s: float, n: int) -> None:
    ctx, ls = listen(address, cert, key)
    for _ in range(n):
        conn, _peer = ls.accept()
        try:
            conn.sendall(b"220 mx.example.test ESMTP test\r\n")
            f = conn.makefile("rb")
            _lines(f)                                           # EHLO
            conn.sendall(b"250-mx.example.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
            _lines(f)                                           # STARTTLS
            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
            conn.settimeout(wait_s)
            tls = ctx.wrap_socket(conn, server_side=True)       # the ClientHello, or the timeout
            tf = tls.makefile("rb")
            while True:
                cmd = _lines(tf).upper()
                if cmd.startswith(b"EHLO"):
                    tls.sendall(b"250-mx.example.test\r\n250 8BITMIME\r\n")
                elif cmd.startswith(b"DATA"):
                    tls.sendall(b"354 go ahead\r\n")
                    while _lines(tf) != b".\r\n":
                        pass
                    tls.sendall(b"250 2.0.0 Ok: queued\r\n")
                elif cmd.startswith(b"QUIT"):
                    tls.sendall(b"221 2.0.0 Bye\r\n")
                    break
                else:
                    tls.sendall(b"250 2.1.0 Ok\r\n")
            tls.close()
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()                # the server's own FIN, with its acknowledgement


def client(address: str, sport: int, timeout_s: float) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    c = smtplib.SMTP(address, 25, local_hostname="client.example.test", timeout=10, source_address=("", sport))
    try:
        c.ehlo()
        assert c.sock is not None
        c.sock.settimeout(timeout_s)        # how long it waits for the ServerHello (the 220 comes in time)
        c.starttls(context=ctx)
        c.sendmail("alice@client.example.test", ["bob@mx.example.test"], "Subject: t\r\n\r\nhi\r\n")
        c.quit()
        print("tls", flush=True)
    except (TimeoutError, OSError):
        c.close()
        print("gave up", flush=True)


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "bridge":
        bridge(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif role == "server":
        server(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), int(sys.argv[6]))
    elif role == "client":
        client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
