"""A real injector that kills STARTTLS or TLS with forged resets, between real Linux TCP stacks (the sibling of
finbox.py, whose namespaces, bridge and checksums it reuses): in the box namespace an Ethernet bridge (AF_PACKET)
forwards every frame, except a client's TCP segment, from one of the source ports it watches, that carries the
STARTTLS command (``starttls``) or starts a TLS handshake record, its ClientHello (``hello``). That segment it
drops, and it sends a reset to each end, each with the address of the other end and the box's own TTL, as an
IPS "reset-both" action or a DPI box does: to the client from the server's address (sequence number: what the
client acknowledged), to the server from the client's (sequence number: the dropped segment's).

Two more actions, of a box that copies the TTL of the end it imitates (the last TTL the bridge saw from that
address), so that the TTL gives it away no more: ``client`` (an IPS "reset-client": it lets the segment through
and resets only the client, in the server's name: the server answers the segment, after that reset) and
``server`` ("reset-server": it drops the segment and resets only the server, in the client's name: the client,
which got no reset, sends the segment again). Such a box acts once per port; what follows goes through.

Run as a script in a namespace (``ip netns exec NS python3 rstbox.py ROLE ...``):

- ``bridge OUTSIDE_DEV INSIDE_DEV TTL PORT:KIND[:ACTION[:TTL]] ...``: forward between the two devices until
  killed, resetting as above the connections from each PORT at KIND (``starttls`` or ``hello``); ACTION
  ``both`` (the default), ``client`` or ``server``; the port's TTL (default the first), a number or ``copy``;
- ``server ADDRESS CERT KEY N RESET_PORT``: an SMTP server offering STARTTLS (OpenSSL, through Python's ssl) for N
  connections; the one from RESET_PORT it resets itself when STARTTLS comes (SO_LINGER 0: the kernel's RST, with
  the socket's own TTL).

- ``client ADDRESS SPORT``: CPython's smtplib from that source port: EHLO, STARTTLS, a message if TLS comes up;
  prints ``tls``, or the exception that ended it (``... Connection reset by peer`` for a reset).
"""
from __future__ import annotations

import smtplib
import socket
import ssl
import struct
import sys

from finbox import _lines, fix_checksums, forward, listen

_RST_ACK = 0x14


def _tcp_fields(frame: bytes) -> tuple[int, int, int, int, int, int] | None:
    """(IP header offset, TCP header offset, payload offset, end, source port, destination port) of an
    IPv4 TCP frame, or None."""
    if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    ihl = (frame[14] & 0x0F) * 4
    tcp = 14 + ihl
    end = 14 + struct.unpack("!H", frame[16:18])[0]
    payload = tcp + (frame[tcp + 12] >> 4) * 4
    sport, dport = struct.unpack("!HH", frame[tcp:tcp + 4])
    return 14, tcp, payload, end, sport, dport


def matches(frame: bytes, watch: dict[int, str]) -> bool:
    """A client segment from a watched port carrying what that port's reset waits for."""
    f = _tcp_fields(frame)
    if f is None or f[4] not in watch:
        return False
    _ip, _tcp, payload, end, sport, _dport = f
    data = frame[payload:end]
    if watch[sport] == "starttls":
        return data[:8].upper() == b"STARTTLS"
    return data[:1] == b"\x16"


def addresses(frame: bytes) -> tuple[bytes, bytes, int] | None:
    """(source address, destination address, TTL) of an IPv4 frame, or None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    return frame[26:30], frame[30:34], frame[22]


def forged_resets(frame: bytes, ttl: int, server_ttl: int | None = None) -> tuple[bytes, bytes]:
    """The two resets a box sends for the client's segment ``frame``: (to the client, to the server), with TTL
    ``ttl``; the one to the client, with the server's address, with ``server_ttl`` when given."""
    f = _tcp_fields(frame)
    assert f is not None
    ip, tcp, payload, end, sport, dport = f
    seq, ack = struct.unpack("!II", frame[tcp + 4:tcp + 12])
    src, dst = frame[ip + 12:ip + 16], frame[ip + 16:ip + 20]
    cmac, smac = frame[6:12], frame[0:6]

    def build(eth_dst: bytes, eth_src: bytes, ip_src: bytes, ip_dst: bytes, sp: int, dp: int, s: int,
              a: int, t: int) -> bytes:
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0x4242, 0x4000, t, 6, 0, ip_src, ip_dst)
        tcph = struct.pack("!HHIIBBHHH", sp, dp, s & 0xFFFFFFFF, a & 0xFFFFFFFF, 5 << 4, _RST_ACK, 0, 0, 0)
        return fix_checksums(eth_dst + eth_src + b"\x08\x00" + iph + tcph)

    to_client = build(cmac, smac, dst, src, dport, sport, ack, seq + (end - payload),
                      ttl if server_ttl is None else server_ttl)
    to_server = build(smac, cmac, src, dst, sport, dport, seq, ack, ttl)
    return to_client, to_server


#: a port's action: (what it resets at, which ends it resets, its TTL: a number, or None to copy)
Action = tuple[str, str, "int | None"]


def bridge(outside: str, inside: str, ttl: int, watch: dict[int, Action]) -> None:
    seen: dict[bytes, int] = {}         # address -> the TTL of its last frame
    done: set[int] = set()

    def observe(frame: bytes) -> None:
        a = addresses(frame)
        if a is not None:
            seen[a[0]] = a[2]

    def intercept(frame: bytes, to_outside: socket.socket, to_inside: socket.socket) -> bool:
        f = _tcp_fields(frame)
        if f is None or f[4] in done or not matches(frame, {p: w[0] for p, w in watch.items()}):
            return False
        _what, ends, own = watch[f[4]]
        if ends != "both":
            done.add(f[4])          # (a box that resets one end acts once: what follows goes through)
        a = addresses(frame)
        assert a is not None
        client_ttl, server_ttl = (own, own) if own is not None else (seen[a[0]], seen[a[1]])
        to_client, to_server = forged_resets(frame, client_ttl, server_ttl)
        if ends in ("both", "client"):
            to_outside.send(to_client)
        if ends == "client":
            to_inside.send(fix_checksums(frame))    # the segment goes through, after the reset
            return True
        to_inside.send(to_server)
        return True                 # the segment itself never reaches the server
    forward(outside, inside, intercept, observe)


def server(address: str, cert: str, key: str, n: int, reset_port: int) -> None:
    ctx, ls = listen(address, cert, key)
    for _ in range(n):
        conn, peer = ls.accept()
        f = None
        try:
            conn.settimeout(5)
            conn.sendall(b"220 mx.example.test ESMTP test\r\n")
            f = conn.makefile("rb")
            _lines(f)                                           # EHLO
            conn.sendall(b"250-mx.example.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
            _lines(f)                                           # STARTTLS
            if peer[1] == reset_port:
                # the server's own reset: the kernel sends it from this socket, with its TTL
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                continue
            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
            tls = ctx.wrap_socket(conn, server_side=True)
            tf = tls.makefile("rb")
            while True:
                cmd = _lines(tf).upper()
                if cmd.startswith(b"QUIT"):
                    tls.sendall(b"221 2.0.0 Bye\r\n")
                    break
                tls.sendall(b"354 go ahead\r\n" if cmd.startswith(b"DATA") else b"250 Ok\r\n")
                if cmd.startswith(b"DATA"):
                    while _lines(tf) != b".\r\n":
                        pass
                    tls.sendall(b"250 2.0.0 Ok: queued\r\n")
            tls.close()
        except (OSError, ConnectionError):
            pass
        finally:
            if f is not None:
                f.close()               # (the socket closes, or resets, only once its file is closed)
            conn.close()


def client(address: str, sport: int) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    c = smtplib.SMTP(address, 25, local_hostname="client.example.test", timeout=5, source_address=("", sport))
    try:
        c.ehlo()
        c.starttls(context=ctx)
        c.sendmail("alice@client.example.test", ["bob@mx.example.test"], "Subject: t\r\n\r\nhi\r\n")
        c.quit()
        print("tls", flush=True)
    except (OSError, smtplib.SMTPException) as exc:
        c.close()
        print(f"{type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "bridge":
        default = int(sys.argv[4])
        ports: dict[int, Action] = {}
        for arg in sys.argv[5:]:
            port, what, *rest = arg.split(":")
            ends = rest[0] if rest else "both"
            own = rest[1] if len(rest) > 1 else str(default)
            ports[int(port)] = (what, ends, None if own == "copy" else int(own))
        bridge(sys.argv[2], sys.argv[3], default, ports)
    elif role == "server":
        server(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif role == "client":
        client(sys.argv[2], int(sys.argv[3]))
