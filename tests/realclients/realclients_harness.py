"""Harness for the real-client tests: a byte-exact SMTP server, tcpdump, and the real clients.

- :class:`ByteServer`: an asyncio SMTP server on 127.0.0.1 (its own thread and loop) that answers
  EHLO with exactly the bytes it is given (shapes C1..C10 of clients.md, or a reply without
  STARTTLS) and STARTTLS with one of: a real TLS upgrade (``tls``), ``454``, ``502`` (offered
  but not implemented), 220 then an immediate close (``close``), 220 then a fatal TLS alert
  after the ClientHello (``alert``), or 220 then a real TLS server's answer to the ClientHello
  cut short and nothing more (``midanswer``, :func:`cut_short`).
  Every connection is recorded (:class:`ConnRecord`): STARTTLS received, TLS established, mail
  accepted.
- :func:`make_cert`: a self-signed certificate for 127.0.0.1 / localhost, made with
  ``cryptography``; clients are given it as their trust anchor, so verifying clients succeed.
- :class:`Tcpdump`: ``tcpdump -i lo -U --immediate-mode`` started, waited for, stopped with SIGINT.
- :func:`tshark_wire`: tshark's reading of a capture (the test port decoded as SMTP), the frames
  that the tests compare pcapsmtp's with (:class:`Wire`).
- ``run_*``: one delivery with each real client in its opportunistic mode (Ruby net-smtp the
  way ActionMailer calls it, PHPMailer's SMTPAutoTLS path); each returns a
  :class:`ClientRun` (exit status and output).
"""
from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/: the shared helpers
from certs import self_signed  # noqa: E402

HERE = Path(__file__).resolve().parent

BANNER = b"220 mx.example.com ESMTP realclients\r\n"
SHAPES: dict[str, bytes] = {
    "C1": b"250-mx.example.com\r\n250-8BITMIME\r\n250 STARTTLS\r\n",
    "C2": b"250-STARTTLS\r\n250-mx.example.com\r\n250 SIZE 1000\r\n",
    "C3": b"250 STARTTLS\r\n",
    "C4": b"250 mx.example.com\r\n250-STARTTLS\r\n250 SIZE 1000\r\n",
    "C5": b"250-mx.example.com\n250-8BITMIME\n250 STARTTLS\n",
    "C6": b"250-mx.example.com\r\n250 starttls\r\n",
    "C7": b"250-mx.example.com\r\n250 STARTTLS foo\r\n",
    "C8": b"250-mx.example.com\r\n250 XXXXXXXA\r\n",
    "C9": b"250-mx.example.com\r\n220-STARTTLS\r\n250 SIZE 1000\r\n",
    "C10": b"250-mx.example.com\r\n250- STARTTLS\r\n250 SIZE 1000\r\n",
    "none": b"250-mx.example.com\r\n250-8BITMIME\r\n250 SIZE 1000\r\n",
}
AFTER_TLS_EHLO = b"250-mx.example.com\r\n250-8BITMIME\r\n250 SIZE 1000\r\n"
#: a fatal handshake_failure alert (TLS 1.2 record layer)
FATAL_ALERT = b"\x15\x03\x03\x00\x02\x02\x28"

#: what the server does with STARTTLS. The last three are the hangs admins meet most (a stuck
#: server, or a firewall or DPI box in front of it that black-holes or resets TLS):
#: ``silent`` never answers STARTTLS and keeps the connection open until the client leaves;
#: ``stall`` answers 220, reads the ClientHello and then sends nothing until the client leaves;
#: ``rst`` answers 220, reads the first bytes of the ClientHello and resets the connection (a
#: close with SO_LINGER 0: a real RST on the wire); ``midanswer`` answers 220, runs its TLS
#: server (:attr:`ByteServer.ctx`) on the ClientHello, sends that answer without its last
#: message (:func:`cut_short`: a server stalled in the middle of its answer, on a slow signature
#: or an OCSP fetch) and then nothing until the client leaves.
STARTTLS_MODES = ("tls", "454", "502", "close", "alert", "silent", "stall", "rst", "midanswer")
#: how long a hanging server (``silent``, ``stall``) waits for the client to leave before it
#: closes on its own (a client that never times out would otherwise hold the thread)
HANG_LIMIT = 60.0

MAIL_FROM = "alice@example.org"
RCPT_TO = "bob@example.net"
MESSAGE = (f"From: {MAIL_FROM}\r\nTo: {RCPT_TO}\r\nSubject: realclients\r\n"
           "Message-ID: <realclients@example.org>\r\n\r\nhello from a real client\r\n")


# --------------------------------------------------------------------------------------- cert

def make_cert(d: Path) -> tuple[Path, Path]:
    """A self-signed EC P-256 certificate for 127.0.0.1 and localhost (also usable as a CA file)."""
    return self_signed(d, cn="localhost", dns=("localhost",), ips=("127.0.0.1",), ca=True)


# ------------------------------------------------------------------------------------- server

@dataclass
class ConnRecord:
    """What the server saw on one connection."""

    commands: list[str] = field(default_factory=list)
    starttls: bool = False
    tls: bool = False
    tls_error: str = ""
    mail: bool = False        #: a message was accepted (250 after DATA's final dot)
    mail_in_tls: bool = False


@dataclass
class Behaviour:
    ehlo: bytes = SHAPES["C1"]
    #: tls | 454 | 502 | close | alert | silent | stall | rst | midanswer (:data:`STARTTLS_MODES`)
    on_starttls: str = "tls"
    #: when set, only the first ``fail_first`` STARTTLS get ``on_starttls``; later ones get ``tls``
    fail_first: int | None = None
    #: greet | close | rst | silent: ``close`` and ``rst`` end the accepted connection before
    #: the banner (a server dropping a blocklisted or rate-limited client without a greeting);
    #: ``silent`` never sends it, reading and dropping whatever comes until the client leaves
    on_connect: str = "greet"
    #: reply | silent | stall: ``silent`` never answers EHLO, ``stall`` sends the EHLO reply's
    #: first two lines (not its last) and no more; both then read and drop whatever comes until
    #: the client leaves (a server whose EHLO reply hangs on a DNS lookup or a policy service)
    on_ehlo: str = "reply"


class ByteServer:
    """An SMTP server that sends exactly the configured bytes; see the module docstring."""

    def __init__(self, behaviour: Behaviour, certfile: Path, keyfile: Path, host: str = "127.0.0.1") -> None:
        self.behaviour = behaviour
        self.host = host              #: the address it listens on (another one in a namespace)
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(str(certfile), str(keyfile))
        self.conns: list[ConnRecord] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._starttls_seen = 0

    def reset(self, behaviour: Behaviour) -> None:
        """New behaviour and an empty record (for a server shared by several tests)."""
        self.behaviour = behaviour
        self.conns = []
        self._starttls_seen = 0

    # lifecycle
    def start(self) -> "ByteServer":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test SMTP server did not start")
        return self

    def stop(self) -> None:
        async def _close() -> None:
            if self._server is not None:
                self._server.close()
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def _start() -> None:
            self._server = await asyncio.start_server(self._handle, self.host, 0)
            self.port = self._server.sockets[0].getsockname()[1]
        self._loop.run_until_complete(_start())
        self._ready.set()
        self._loop.run_forever()

    # one connection
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rec = ConnRecord()
        self.conns.append(rec)
        try:
            await self._dialogue(rec, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError, TimeoutError) as exc:
            rec.tls_error = rec.tls_error or repr(exc)
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - already gone
                pass

    async def _dialogue(self, rec: ConnRecord, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        b = self.behaviour
        if b.on_connect == "rst":
            _reset(writer)
            return
        if b.on_connect == "close":
            return                      # ``_handle`` closes: a FIN before any byte
        if b.on_connect == "silent":
            await _drain_until_eof(reader)
            return
        writer.write(BANNER)
        await writer.drain()
        in_tls = False
        while True:
            line = await asyncio.wait_for(reader.readline(), 30)
            if not line:
                return
            text = line.decode("latin-1").rstrip("\r\n")
            rec.commands.append(text)
            verb = text.split(" ", 1)[0].upper()
            if verb == "EHLO" and b.on_ehlo != "reply" and not in_tls:
                if b.on_ehlo == "stall":
                    writer.write(b"".join(b.ehlo.splitlines(keepends=True)[:2]))
                    await writer.drain()
                await _drain_until_eof(reader)
                return
            if verb == "EHLO":
                writer.write(AFTER_TLS_EHLO if in_tls else b.ehlo)
            elif verb == "HELO":
                writer.write(b"250 mx.example.com\r\n")
            elif verb == "STARTTLS" and not in_tls:
                rec.starttls = True
                self._starttls_seen += 1
                mode = b.on_starttls
                if b.fail_first is not None and self._starttls_seen > b.fail_first:
                    mode = "tls"
                if mode == "454":
                    writer.write(b"454 4.7.0 TLS not available due to temporary reason\r\n")
                elif mode == "502":
                    writer.write(b"502 5.5.1 Command not implemented\r\n")
                elif mode == "close":
                    writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                    await writer.drain()
                    return
                elif mode == "silent":
                    # No answer: whatever the client sends next (TLS, a QUIT after its timeout)
                    # is read and dropped until it leaves.
                    await _drain_until_eof(reader)
                    return
                elif mode == "stall":
                    writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                    await writer.drain()
                    await _drain_until_eof(reader)   # the ClientHello, then whatever follows
                    return
                elif mode == "rst":
                    writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                    await writer.drain()
                    await asyncio.wait_for(reader.read(5), 10)  # the ClientHello's record header
                    _reset(writer)
                    return
                elif mode == "midanswer":
                    writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                    await writer.drain()
                    flight = await _first_flight(self.ctx, reader)
                    if flight:
                        writer.write(cut_short(flight))
                        await writer.drain()
                    await _drain_until_eof(reader)   # whatever the client sends as it gives up
                    return
                elif mode == "alert":
                    writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                    await writer.drain()
                    await asyncio.wait_for(reader.read(5), 10)  # the ClientHello's record header
                    writer.write(FATAL_ALERT)
                    await writer.drain()
                    return
                else:
                    writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                    await writer.drain()
                    try:
                        await asyncio.wait_for(writer.start_tls(self.ctx), 15)
                    except Exception as exc:  # noqa: BLE001 - the client ended the handshake
                        rec.tls_error = repr(exc)
                        return
                    rec.tls = in_tls = True
                    continue
            elif verb == "MAIL":
                writer.write(b"250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                writer.write(b"250 2.1.5 Ok\r\n")
            elif verb == "DATA":
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                await writer.drain()
                while True:
                    body = await asyncio.wait_for(reader.readline(), 30)
                    if not body:
                        return
                    if body.rstrip(b"\r\n") == b".":
                        break
                rec.mail = True
                rec.mail_in_tls = in_tls
                writer.write(b"250 2.0.0 Ok: queued\r\n")
            elif verb in ("RSET", "NOOP"):
                writer.write(b"250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"502 5.5.2 Error: command not recognized\r\n")
            await writer.drain()


async def _drain_until_eof(reader: asyncio.StreamReader) -> None:
    """Reads and drops the client's bytes until it closes (or :data:`HANG_LIMIT` passes)."""
    deadline = time.monotonic() + HANG_LIMIT
    while (left := deadline - time.monotonic()) > 0:
        try:
            if not await asyncio.wait_for(reader.read(65536), left):
                return
        except TimeoutError:
            return


async def _first_flight(ctx: ssl.SSLContext, reader: asyncio.StreamReader) -> bytes:
    """The answer of ``ctx``'s TLS server (OpenSSL over a :class:`ssl.MemoryBIO`) to the
    client's ClientHello, read from ``reader``: its whole first flight, as it would have sent it;
    empty when the client leaves first or the server refuses the ClientHello."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        data = await asyncio.wait_for(reader.read(65536), 10)
        if not data:
            return b""
        incoming.write(data)
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError:
            return b""
        if outgoing.pending:
            return outgoing.read()


def _records(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """TLS records of ``data``: (content type, the 5-byte header, the body)."""
    out, i = [], 0
    while i + 5 <= len(data):
        n = struct.unpack("!H", data[i + 3:i + 5])[0]
        out.append((data[i], data[i:i + 5], data[i + 5:i + 5 + n]))
        i += 5 + n
    return out


def cut_short(flight: bytes) -> bytes:
    """A server's first TLS flight (:func:`_first_flight`) without its last message, the one the
    client waits for before it answers: TLS 1.3 (encrypted records after the ServerHello and the
    ChangeCipherSpec) its last encrypted record, the Finished (OpenSSL sends EncryptedExtensions,
    Certificate, CertificateVerify and Finished each in a record of its own); TLS 1.2 and before
    its ServerHelloDone, every other handshake message re-framed in a record of its own (they
    are in clear, and a server may pack several in one record)."""
    recs = _records(flight)
    enc = [i for i, (t, _, _) in enumerate(recs) if t == 23]
    if enc:
        assert len(enc) >= 2, f"a TLS 1.3 flight of {len(enc)} encrypted record(s)"
        return b"".join(hdr + body for i, (_, hdr, body) in enumerate(recs) if i != enc[-1])
    assert all(t == 22 for t, _, _ in recs), [t for t, _, _ in recs]
    hs, version = b"".join(body for _, _, body in recs), recs[0][1][1:3]
    out, i, done = b"", 0, False
    while i + 4 <= len(hs):
        n = int.from_bytes(hs[i + 1:i + 4], "big")
        msg = hs[i:i + 4 + n]
        if hs[i] == 14:             # ServerHelloDone
            done = True
        else:
            out += b"\x16" + version + struct.pack("!H", len(msg)) + msg
        i += 4 + n
    assert done, "a TLS 1.2 flight without its ServerHelloDone"
    return out


def _reset(writer: asyncio.StreamWriter) -> None:
    """Ends the connection with a RST: SO_LINGER on with a zero timeout, then close."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# ------------------------------------------------------------------------------------ tcpdump

class Tcpdump:
    """``tcpdump -i lo`` for one port, written to ``path``; a context manager.

    ``-B 32768``: in immediate mode each slot of the kernel ring is sized for a frame of lo's
    64 KiB MTU, and lo puts every packet in it twice (outgoing and incoming), so the default 2 MiB ring
    held about 15 packets; on a busy machine a burst (a TLS handshake) then overflowed it and a
    segment went missing from the capture ("2 packets dropped by kernel", a ``tcp-gap``).
    :attr:`dropped` is tcpdump's own count, read when it stops.

    Capturing starts before tcpdump says "listening on" (the socket is bound and its filter set
    by then). :meth:`stop` waits for two real conditions instead of a fixed half second: the
    conversations on the captured ports are over (:func:`tcp_settled`: no socket of theirs left
    but in TIME_WAIT or listening, so every FIN and its ACK has been sent), and tcpdump has
    written every packet the kernel queued for it (:meth:`caught_up`); tcpdump stops reading at
    SIGINT, so what is still queued then would be missing from the file.

    One tap of a tap pair each: ``direction`` ``"dst"`` keeps only the packets sent to the ports
    (the clients' direction), ``"src"`` only those sent from them (the servers'); or, on an
    interface ``iface`` of network namespace ``netns`` (a veth end), ``inout`` ``"in"`` or
    ``"out"`` only the packets it receives or sends (``tcpdump -Q``). Off lo neither condition
    of :meth:`stop` can be told from here (the sockets are in the other namespaces, and a packet
    is received once, not twice): it keeps the margin of old."""

    #: the longest :meth:`stop` waits for the conversations to end (seconds): at least the fixed
    #: waits it replaces (0.5 s here, plus 0.3 or 0.5 s in the callers), so a capture that ends
    #: with a connection still open is what it was
    SETTLE_LIMIT = 1.0
    #: the longest it waits for tcpdump to catch up (seconds)
    CATCH_UP_LIMIT = 5.0

    def __init__(self, path: Path, port: int, extra_ports: tuple[int, ...] = (),
                 direction: str = "", *, iface: str = "lo", netns: str = "", inout: str = "") -> None:
        assert direction in ("", "src", "dst") and inout in ("", "in", "out"), (direction, inout)
        self.path = path
        self.iface = iface
        self.ports = (port, *extra_ports)
        ports = " or ".join(f"{direction} port {p}".lstrip() for p in self.ports)
        self.argv = [*(["ip", "netns", "exec", netns] if netns else []),
                     "tcpdump", "-i", iface, *(["-Q", inout] if inout else []), "-n", "-s", "0", "-B", "32768",
                     "-U", "--immediate-mode", "-w", str(path), f"tcp and ({ports})"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.dropped: int | None = None
        self._err = b""

    def __enter__(self) -> "Tcpdump":
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 15
        seen = b""
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            seen += line
            if b"listening on" in line:
                break
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"tcpdump failed: {seen.decode(errors='replace')}")
        else:
            self.stop()
            raise RuntimeError("tcpdump did not start listening")
        return self

    def _stats_line(self, timeout: float) -> bytes:
        """The next line on tcpdump's stderr (empty after ``timeout`` seconds or at its end)."""
        import select
        assert self.proc is not None and self.proc.stderr is not None
        ready, _, _ = select.select([self.proc.stderr], [], [], timeout)
        line = self.proc.stderr.readline() if ready else b""
        self._err += line
        return line

    def caught_up(self) -> bool | None:
        """Has tcpdump written every packet its filter let through? It prints its counters on
        SIGUSR1; on lo every packet is received twice (outgoing and incoming) and written once,
        so it has when twice the packets captured are the packets received by the filter. None
        when that cannot be told (the kernel dropped packets: they count as received)."""
        assert self.proc is not None
        if self.iface != "lo":
            return None
        self.proc.send_signal(signal.SIGUSR1)
        m = re.search(rb"(\d+) packets? captured, (\d+) packets? received by filter, "
                      rb"(\d+) packets? dropped by kernel", self._stats_line(5.0))
        if m is None or int(m.group(3)):
            return None
        return 2 * int(m.group(1)) == int(m.group(2))

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        deadline = time.monotonic() + self.SETTLE_LIMIT
        while self.iface == "lo" and not tcp_settled(self.ports) and time.monotonic() < deadline:
            time.sleep(0.02)
        deadline = time.monotonic() + self.CATCH_UP_LIMIT
        while time.monotonic() < deadline:
            done = self.caught_up()
            if done is None:                   # cannot tell: the margin of old
                time.sleep(0.5)
                break
            if done:
                break
            time.sleep(0.02)
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stderr is not None:
            self._err += self.proc.stderr.read()
            counts = re.findall(rb"(\d+) packets? dropped by kernel", self._err)
            self.dropped = int(counts[-1]) if counts else None      # the last: on exit

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: /proc/net/tcp states in which a connection is over as far as the wire goes: TIME_WAIT (its
#: last ACK sent), CLOSE; and LISTEN, a server's socket
_SETTLED = {"06", "07", "0A"}


def tcp_settled(ports: tuple[int, ...]) -> bool:
    """No TCP socket with a local or remote port in ``ports`` is in a state other than
    TIME_WAIT, CLOSE or LISTEN: every conversation on them has ended on the wire (both FINs
    acknowledged, or a reset), none is being opened."""
    want = {f"{p:04X}" for p in ports}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 3 and (f[1].rsplit(":", 1)[1] in want or f[2].rsplit(":", 1)[1] in want) \
                    and f[3] not in _SETTLED:
                return False
    return True


# ------------------------------------------------------------------------------------- tshark

@dataclass
class Row:
    """One tshark row (the test port decoded as SMTP)."""

    frame: int
    stream: int
    command: str
    responses: list[int]
    handshake: list[int]
    alert_levels: list[int]
    src_port: int
    fin_or_rst: bool
    opaque_types: list[int]      #: tls.record.opaque_type: TLS 1.3's encrypted records (23)
    record_lengths: list[int]    #: tls.record.length of every record, encrypted or not


@dataclass
class Wire:
    """tshark's frames of one capture, to cross-check pcapsmtp's frame numbers with."""

    rows: list[Row]
    port: int      #: the test server's port

    def frames(self, stream: int, *, command: str = "", response: int = 0, handshake: int = 0,
               fatal_alert: bool = False) -> list[int]:
        """tshark's frames of one stream carrying the given command, reply code, TLS handshake
        type or fatal alert."""
        out = []
        for r in self.rows:
            if r.stream != stream:
                continue
            if ((command and r.command.upper().startswith(command))
                    or (response and response in r.responses) or (handshake and handshake in r.handshake)
                    or (fatal_alert and 2 in r.alert_levels)):
                out.append(r.frame)
        return out

    def encrypted_alert_frames(self, stream: int, side: str) -> list[int]:
        """Frames of one stream in which ``side`` (client or server) sent nothing but one encrypted
        record of an alert's size: 19 bytes, the 2-byte alert, its content type and a 16-byte AEAD
        tag (tshark cannot decrypt it, so this is its length only)."""
        return [r.frame for r in self.rows if r.stream == stream and (r.src_port == self.port) is (side == "server")
                and r.opaque_types == [23] and r.record_lengths == [19]]

    def server_close_frames(self, stream: int) -> list[int]:
        """Frames of one stream in which the server sent FIN or RST."""
        return [r.frame for r in self.rows if r.stream == stream and r.src_port == self.port and r.fin_or_rst]

    def ehlo_reply_frame(self, stream: int) -> int:
        """The first reply frame after the first EHLO (the EHLO reply arrives in one write)."""
        greeting = self.frames(stream, command="EHLO")[0]
        return min(r.frame for r in self.rows if r.stream == stream and r.responses and r.frame > greeting)

    def check_dialogue_frames(self, conv: dict[str, Any]) -> None:
        """The greeting (the client's EHLO) and EHLO reply frames of one conversation are tshark's."""
        s = conv["stream"]
        assert conv["greeting"]["frame"] == self.frames(s, command="EHLO")[0]
        assert conv["ehlo_reply"]["frames"] == [self.ehlo_reply_frame(s)]


def _ints(field_: str) -> list[int]:
    return [int(x) for x in field_.split(",") if x.strip().isdigit()]


def tshark_wire(pcap: Path, port: int, extra_ports: tuple[int, ...] = ()) -> Wire:
    """Runs tshark on the capture with ``port`` (and ``extra_ports``: a capture of several test
    servers) decoded as SMTP (skips the test without tshark). The :class:`Wire` is ``port``'s;
    ``dataclasses.replace(wire, port=other)`` gives another server's."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (apt-get install tshark)")
    keep = "smtp || tls || tcp.flags.fin == 1 || tcp.flags.reset == 1"
    decode = [a for p_ in (port, *extra_ports) for a in ("-d", f"tcp.port=={p_},smtp")]
    p = subprocess.run(["tshark", "-n", "-r", str(pcap), *decode, "-Y", keep,
                        "-T", "fields", "-E", "separator=\t", "-e", "frame.number", "-e", "tcp.stream",
                        "-e", "smtp.req.command", "-e", "smtp.response.code", "-e", "tls.handshake.type",
                        "-e", "tls.alert_message.level", "-e", "tcp.srcport", "-e", "tcp.flags.fin",
                        "-e", "tcp.flags.reset", "-e", "tls.record.opaque_type", "-e", "tls.record.length"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    rows = []
    for line in p.stdout.splitlines():
        f = (line.split("\t") + [""] * 11)[:11]
        rows.append(Row(int(f[0]), int(f[1]), f[2], _ints(f[3]), _ints(f[4]), _ints(f[5]), int(f[6]),
                        "1" in (f[7], f[8]) or "True" in (f[7], f[8]), _ints(f[9]), _ints(f[10])))
    return Wire(rows, port)


# ------------------------------------------------------------------------------------ clients

@dataclass
class ClientRun:
    client: str
    returncode: int     #: -999: still running at the run's limit, killed (SIGKILL)
    output: str
    seconds: float = 0.0

    @property
    def killed(self) -> bool:
        return self.returncode == KILLED


#: :attr:`ClientRun.returncode` of a client killed at its run's limit
KILLED = -999


def _run(client: str, argv: list[str], *, stdin: str | None = None, env: dict[str, str] | None = None,
         timeout: float = 40, cwd: Path | None = None) -> ClientRun:
    """Runs one client; at ``timeout`` seconds it is killed (SIGKILL: the kernel then closes its
    connection with a FIN, as any supervisor's timeout would)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, input=stdin.encode() if stdin is not None else None,
                           capture_output=True, timeout=timeout, env=env, cwd=cwd)
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        return ClientRun(client, p.returncode, out, time.monotonic() - t0)
    except subprocess.TimeoutExpired as exc:
        out = ((exc.stdout or b"") + (exc.stderr or b"")).decode("utf-8", "replace")
        return ClientRun(client, KILLED, out + "\n[timeout]", time.monotonic() - t0)


SMTPLIB_SCRIPT = r"""
import smtplib, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
msg = sys.stdin.read()
with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example.org", timeout=float(sys.argv[5])) as s:
    s.ehlo()
    if s.has_extn("starttls"):
        s.starttls(context=ssl.create_default_context(cafile=ca or None))
        s.ehlo()
    s.sendmail(sys.argv[3], [sys.argv[4]], msg)
print("sent")
"""


def run_smtplib(port: int, ca: Path | None, tmp: Path, wait: float = 20, limit: float = 40) -> ClientRun:
    """``ca`` None: the system trust store (the test certificate is then rejected by the client).
    ``wait``: the socket timeout (every run_* takes the client's own timeout so, in seconds)."""
    return _run("python-smtplib", [sys.executable, "-c", SMTPLIB_SCRIPT, str(port), str(ca or ""),
                                   MAIL_FROM, RCPT_TO, str(wait)], stdin=MESSAGE, timeout=limit)


def run_swaks(port: int, ca: Path | None, tmp: Path, wait: float = 20, limit: float = 40) -> ClientRun:
    """swaks does not verify certificates: ``ca`` is ignored."""
    return _run("swaks", ["swaks", "--server", "127.0.0.1", "--port", str(port), "--tls-optional",
                          "--helo", "client.example.org", "--from", MAIL_FROM, "--to", RCPT_TO,
                          "--timeout", f"{max(1, round(wait))}s", "--data", MESSAGE.replace("\r\n", "\n")],
                timeout=limit)


def run_curl(port: int, ca: Path | None, tmp: Path, wait: float = 20, limit: float = 40) -> ClientRun:
    msg = tmp / "message.eml"
    msg.write_text(MESSAGE)
    argv = ["curl", "-sS", "-v", "--ssl", "--max-time", f"{wait:g}", f"smtp://127.0.0.1:{port}/client.example.org",
            "--mail-from", MAIL_FROM, "--mail-rcpt", RCPT_TO, "-T", str(msg)]
    if ca is not None:
        argv[1:1] = ["--cacert", str(ca)]
    return _run("curl", argv, timeout=limit)


def run_msmtp(port: int, ca: Path | None, tmp: Path, wait: float = 20, limit: float = 40) -> ClientRun:
    conf = tmp / "msmtprc"
    conf.write_text("")
    conf.chmod(0o600)
    return _run("msmtp", ["msmtp", f"--file={conf}", "--host=127.0.0.1", f"--port={port}",
                          "--tls=on", "--tls-starttls=on", f"--tls-trust-file={ca or 'system'}", "--auth=off",
                          "--domain=client.example.org", f"--from={MAIL_FROM}", f"--timeout={max(1, round(wait))}",
                          RCPT_TO], stdin=MESSAGE, timeout=limit)


GO_SOURCE = r"""package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"strconv"
	"time"
)

// sendWithDeadline is smtp.SendMail's own sequence (Hello, STARTTLS when the EHLO reply offers
// it, MAIL, RCPT, DATA, QUIT) on a connection with a deadline: SendMail has no timeout of its
// own, and a deadline on the net.Conn is how a Go program bounds net/smtp.
func sendWithDeadline(addr string, wait time.Duration, from string, to []string, msg []byte) error {
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(wait))
	host, _, _ := net.SplitHostPort(addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err = c.Hello("localhost"); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err = c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return err
		}
	}
	if err = c.Mail(from); err != nil {
		return err
	}
	for _, addr := range to {
		if err = c.Rcpt(addr); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err = w.Write(msg); err != nil {
		return err
	}
	if err = w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func main() {
	msg, _ := os.ReadFile(os.Args[2])
	var err error
	if len(os.Args) > 5 {
		secs, _ := strconv.ParseFloat(os.Args[5], 64)
		err = sendWithDeadline("127.0.0.1:"+os.Args[1], time.Duration(secs*float64(time.Second)),
			os.Args[3], []string{os.Args[4]}, msg)
	} else {
		err = smtp.SendMail("127.0.0.1:"+os.Args[1], nil, os.Args[3], []string{os.Args[4]}, msg)
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("sent")
}
"""


def build_go(tmp: Path) -> Path | None:
    """Compiles the tiny net/smtp SendMail program; None when Go is missing or the build fails."""
    go = shutil.which("go")
    if go is None:
        return None
    src = tmp / "gosend"
    src.mkdir(parents=True, exist_ok=True)
    (src / "main.go").write_text(GO_SOURCE)
    (src / "go.mod").write_text("module gosend\n\ngo 1.19\n")
    env = {**os.environ, "GOCACHE": str(tmp / "gocache"), "GOPATH": str(tmp / "gopath"),
           "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    p = subprocess.run([go, "build", "-o", str(src / "gosend"), "."], cwd=src, env=env,
                       capture_output=True, timeout=300)
    return src / "gosend" if p.returncode == 0 else None


def run_go(binary: Path, port: int, ca: Path | None, tmp: Path, wait: float | None = None,
           limit: float = 40) -> ClientRun:
    """``smtp.SendMail``, which has no timeout; with ``wait`` (seconds) the same steps on a
    connection with that deadline (``net.Conn.SetDeadline``, Go's way to bound net/smtp)."""
    msg = tmp / "message.eml"
    msg.write_text(MESSAGE)
    env = dict(os.environ)
    if ca is not None:
        env.update(SSL_CERT_FILE=str(ca), SSL_CERT_DIR=str(tmp / "no-certs"))
    argv = [str(binary), str(port), str(msg), MAIL_FROM, RCPT_TO] + ([f"{wait:g}"] if wait is not None else [])
    return _run("go-net-smtp", argv, env=env, timeout=limit)


NODE_SCRIPT = r"""
const nodemailer = require('nodemailer');
const fs = require('fs');
const [port, ca, from, to, msgfile, wait] = process.argv.slice(2);
const ms = Math.round(Number(wait || 20) * 1000);
const t = nodemailer.createTransport({
  host: '127.0.0.1', port: Number(port), secure: false, opportunisticTLS: true,
  name: 'client.example.org', tls: ca ? { ca: [fs.readFileSync(ca)], servername: 'localhost' } : {},
  connectionTimeout: ms, greetingTimeout: ms, socketTimeout: ms,
});
t.sendMail({ envelope: { from, to: [to] }, raw: fs.readFileSync(msgfile) })
  .then(info => { console.log('sent', JSON.stringify(info.response)); process.exit(0); })
  .catch(err => { console.log('error:', err && err.message); process.exit(1); });
"""


def nodemailer_dir() -> Path | None:
    """Where ``node_modules/nodemailer`` lives: $REALCLIENTS_NODE_PREFIX, tests/realclients/.node,
    or npm's global root."""
    cands = [os.environ.get("REALCLIENTS_NODE_PREFIX", ""), str(HERE / ".node")]
    npm = shutil.which("npm")
    if npm:
        try:
            root = subprocess.run([npm, "root", "-g"], capture_output=True, timeout=20).stdout.decode().strip()
            if root:
                cands.append(str(Path(root).parent))
        except (OSError, subprocess.TimeoutExpired):
            pass
    for c in cands:
        if c and (Path(c) / "node_modules" / "nodemailer" / "package.json").is_file():
            return Path(c)
    return None


def run_nodemailer(prefix: Path, port: int, ca: Path | None, tmp: Path, wait: float = 20,
                   limit: float = 40) -> ClientRun:
    msg = tmp / "message.eml"
    msg.write_text(MESSAGE)
    script = tmp / "send.js"
    script.write_text(NODE_SCRIPT)
    env = {**os.environ, "NODE_PATH": str(prefix / "node_modules")}
    return _run("nodemailer", ["node", str(script), str(port), str(ca or ""), MAIL_FROM, RCPT_TO, str(msg),
                                      f"{wait:g}"], env=env, timeout=limit)


RUBY_SCRIPT = r"""
# What the mail gem (ActionMailer's delivery_method :smtp, enable_starttls_auto: true, the
# default) does: Net::SMTP.new, an SSL context from Net::SMTP.default_ssl_context with
# openssl_verify_mode and ca_file, enable_starttls_auto(context), start(helo), send_message.
require 'net/smtp'
port, ca, from, to, msgfile, wait = ARGV
smtp = Net::SMTP.new('127.0.0.1', Integer(port))
smtp.open_timeout = Float(wait || 20)   # also bounds the TLS handshake after STARTTLS
smtp.read_timeout = Float(wait || 20)
context = Net::SMTP.default_ssl_context
context.verify_mode = OpenSSL::SSL::VERIFY_PEER
context.ca_file = ca unless ca.empty?
smtp.enable_starttls_auto(context)
begin
  smtp.start('client.example.org') { |s| s.send_message(File.binread(msgfile), from, [to]) }
rescue StandardError => e
  puts "error: #{e.class}: #{e.message}"
  exit 1
end
puts 'sent'
"""


def run_ruby(port: int, ca: Path | None, tmp: Path, wait: float = 20, limit: float = 40) -> ClientRun:
    """``ca`` None: the system trust store (the test certificate is then rejected by the client)."""
    msg = tmp / "message.eml"
    msg.write_text(MESSAGE)
    script = tmp / "send.rb"
    script.write_text(RUBY_SCRIPT)
    return _run("ruby-net-smtp", ["ruby", str(script), str(port), str(ca or ""), MAIL_FROM, RCPT_TO, str(msg),
                                  f"{wait:g}"], timeout=limit)


#: where Debian's libphp-phpmailer puts PHPMailer
PHPMAILER_AUTOLOAD = Path("/usr/share/php/libphp-phpmailer/autoload.php")

PHP_SCRIPT = r"""<?php
// PHPMailer's automatic path: isSMTP(), SMTPSecure '' and SMTPAutoTLS true (both the defaults):
// STARTTLS when the EHLO reply offers it. The test CA goes in SMTPOptions' ssl context.
require $argv[1];
use PHPMailer\PHPMailer\PHPMailer;
use PHPMailer\PHPMailer\Exception;
[, , $port, $ca, $from, $to, $wait] = $argv;
$mail = new PHPMailer(true);
try {
    $mail->isSMTP();
    $mail->Host = '127.0.0.1';
    $mail->Port = (int) $port;
    $mail->SMTPAuth = false;
    $mail->SMTPSecure = '';
    $mail->SMTPAutoTLS = true;
    $mail->Helo = 'client.example.org';
    $mail->Timeout = (int) $wait;    // connect, and each read of the socket
    $mail->getSMTPInstance()->Timelimit = (int) $wait;   // the wait for a whole reply (default 300 s)
    $mail->SMTPDebug = 3;            // the dialogue on stdout: the test's evidence
    $mail->Debugoutput = 'echo';
    if ($ca !== '') {
        $mail->SMTPOptions = ['ssl' => ['verify_peer' => true, 'verify_peer_name' => true, 'cafile' => $ca]];
    }
    $mail->setFrom($from);
    $mail->addAddress($to);
    $mail->Subject = 'realclients';
    $mail->Body = 'hello from a real client';
    $mail->send();
    echo "sent\n";
} catch (Exception $e) {
    echo 'error: ', $e->getMessage(), "\n";
    exit(1);
}
"""


def run_phpmailer(port: int, ca: Path | None, tmp: Path, wait: float = 20, limit: float = 40) -> ClientRun:
    """``ca`` None: PHP's default verification against the system trust store."""
    script = tmp / "send.php"
    script.write_text(PHP_SCRIPT)
    return _run("phpmailer", ["php", str(script), str(PHPMAILER_AUTOLOAD), str(port), str(ca or ""),
                              MAIL_FROM, RCPT_TO, str(max(1, round(wait)))], timeout=limit)


def smtplib_and_curl(srv: ByteServer, ca: Path, tmp: Path) -> tuple[Path, list[ClientRun]]:
    """Python's smtplib, then curl when installed, against ``srv`` (started) under tcpdump, each
    waiting 10 s at most; stops ``srv``. The capture and the runs."""
    pcap = tmp / "capture.pcap"
    try:
        with Tcpdump(pcap, srv.port):
            runs = [run_smtplib(srv.port, ca, tmp, wait=10, limit=20)]
            if shutil.which("curl"):
                runs.append(run_curl(srv.port, ca, tmp, wait=10, limit=20))
    finally:
        srv.stop()
    return pcap, runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ mount namespace (MTA rigs)

#: what the OpenSMTPD and Sendmail rigs run their daemon under: a new mount namespace whose
#: mounts are private, so that the bind mounts over the daemon's compiled-in paths stay in it
UNSHARE = ["unshare", "--mount", "--propagation", "private", "--"]


def root_is_mount_point(mountinfo: str) -> bool:
    """Whether ``/`` (of this process) is a mount point, from /proc/self/mountinfo's text (field 5
    is the mount point, relative to the process's root; in a plain chroot no line has ``/``)."""
    return any(len(f) > 4 and f[4] == "/" for f in (ln.split() for ln in mountinfo.splitlines()))


@functools.cache
def mount_namespace_problem(rig: str) -> str:
    """Why :data:`UNSHARE` cannot run here, in one line naming ``rig`` and what it needs (empty
    when it can). Tried for real (``unshare ... true``), then explained: without CAP_SYS_ADMIN
    (an unprivileged container) the kernel refuses the namespace; when ``/`` is not a mount
    point (a plain chroot) unshare cannot make ``/`` private. The rig does not work around the
    latter with ``--propagation unchanged``: the chroot's own files then sit in a mount outside
    the chroot, usually shared with the host (systemd mounts ``/`` shared), so the rig's bind
    mounts would appear in the host's copy of the chroot, and that mount cannot be made private
    from inside the chroot, since its mount point is not there."""
    try:
        p = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{rig} needs {' '.join(UNSHARE[:-1])}, which did not run: {exc}"
    if p.returncode == 0:
        return ""
    err = " ".join(p.stderr.split()) or f"exit status {p.returncode}"
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError:
        mountinfo = ""
    if mountinfo and not root_is_mount_point(mountinfo):
        return (f"{rig} runs its daemon in a private mount namespace ({' '.join(UNSHARE[:-1])}), but / is "
                f"not a mount point here (a plain chroot?), so its mounts cannot be made private ({err}): "
                "make the chroot's directory a mount point before entering it (mount --bind DIR DIR), "
                "or run the tests in a VM or container")
    if "not permitted" in err.lower():
        return (f"{rig} runs its daemon in a private mount namespace ({' '.join(UNSHARE[:-1])}), which this "
                f"process may not create ({err}): it needs root with CAP_SYS_ADMIN (a container: --privileged, "
                "or --cap-add SYS_ADMIN with seccomp and AppArmor profiles that allow unshare and mount)")
    return f"{rig} runs its daemon in a private mount namespace, which {' '.join(UNSHARE[:-1])} could not make: {err}"


# ------------------------------------------------------------------------------------ postfix

POSTFIX_MASTER_CF = """\
{inject} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

POSTFIX_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
mail_owner = postfix
setgid_group = postdrop
myhostname = client.example.org
mydomain = example.org
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:{relay}
smtp_tls_security_level = may
smtp_tls_loglevel = 1
smtp_connection_cache_on_demand = no
smtputf8_enable = no
biff = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""


class PostfixInstance:
    """A throwaway Postfix (``postfix -c DIR``) that accepts mail on 127.0.0.1:``inject`` and relays
    everything to ``[127.0.0.1]:relay`` with ``smtp_tls_security_level = may``. Never touches
    /etc/postfix or port 25; :meth:`stop` kills the master whatever happens."""

    def __init__(self, relay: int) -> None:
        # Postfix's unprivileged daemons must reach the queue: not under pytest's 0700 tmp tree.
        import tempfile
        self.dir = Path(tempfile.mkdtemp(prefix="pcapsmtp-realclients-postfix-"))
        self.dir.chmod(0o755)
        self.relay = relay
        self.inject = free_port()
        self.started = False

    def start(self) -> None:
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        for sub in ("queue", "data"):
            (d / sub).mkdir(exist_ok=True)
        shutil.chown(d / "data", "postfix")
        (d / "main.cf").write_text(POSTFIX_MAIN_CF.format(d=d, relay=self.relay))
        (d / "master.cf").write_text(POSTFIX_MASTER_CF.format(inject=f"127.0.0.1:{self.inject}"))
        (d / "maillog").touch()
        p = subprocess.run(["postfix", "-c", str(d), "start"], capture_output=True, timeout=60)
        self.started = True
        if p.returncode != 0:
            raise RuntimeError("postfix start failed: " + (p.stdout + p.stderr).decode(errors="replace")
                               + "\n" + self.log()[-3000:])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.inject), 1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("postfix smtpd did not listen:\n" + self.log())

    def submit(self) -> None:
        import smtplib
        with smtplib.SMTP("127.0.0.1", self.inject, local_hostname="submitter.example.org", timeout=20) as s:
            s.sendmail(MAIL_FROM, [RCPT_TO], MESSAGE)

    def log(self) -> str:
        try:
            return (self.dir / "maillog").read_text(errors="replace")
        except OSError:
            return ""

    def statuses(self) -> list[str]:
        """The delivery status lines logged so far (``status=sent|deferred|bounced``)."""
        return [ln for ln in self.log().splitlines() if " status=" in ln]

    def wait_status(self, before: int, want: str = "", timeout: float = 30) -> list[str]:
        """Waits until more than ``before`` status lines exist (and, with ``want``, one of the new
        ones contains it); returns the new ones."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.statuses()[before:]
            if new and (not want or any(want in ln for ln in new)):
                return new
            time.sleep(0.2)
        return self.statuses()[before:]

    def purge(self) -> None:
        """Deletes every queued message (a deferred one would retry into the next test)."""
        subprocess.run(["postsuper", "-c", str(self.dir), "-d", "ALL"], capture_output=True, timeout=30)

    def stop(self) -> None:
        if not self.started:
            return
        subprocess.run(["postfix", "-c", str(self.dir), "abort"], capture_output=True, timeout=60)
        pidfile = self.dir / "queue" / "pid" / "master.pid"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                pid = int(pidfile.read_text().split()[0])
                os.kill(pid, 0)
            except (OSError, ValueError, IndexError):
                break
            time.sleep(0.2)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.started = False

    def remove(self) -> None:
        """Deletes the instance directory (after :meth:`stop`)."""
        if not self.started:
            shutil.rmtree(self.dir, ignore_errors=True)
