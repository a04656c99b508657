"""Live capture from a network interface, with an optional rotating pcapng copy.

``LiveSource`` opens a Linux ``PF_PACKET`` socket through scapy's ``conf.L2listen`` (scapy
compiles the BPF filter with libpcap and attaches it in the kernel), then reads raw bytes
itself with ``recvmsg``: no scapy dissection on the hot path, nanosecond timestamps
(``SO_TIMESTAMPNS``), the original wire length (``MSG_TRUNC``), VLAN tags put back from
``PACKET_AUXDATA``, and on loopback the outgoing copy of every packet is dropped (as libpcap
does), so each packet is seen once.

Frame numbering: every frame that passes the filter gets a *global* number, 1, 2, 3, ...
for the whole run; that is what the analysis sees. When ``write`` is given, every such frame
is also written, in order, to a pcapng file. With rotation, each file starts again at frame 1
(so Wireshark's ``frame.number`` matches in every file) and ``locate(global_number)`` gives
``(path, number in that file)``. Without rotation, the global number *is* the number in the
written file.
"""
from __future__ import annotations

import errno
import logging
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Iterator
from typing import Any

from pcapsmtp.capture.base import LINKTYPE, RawFrame
from pcapsmtp.capture.pcapng import PcapngWriter
from pcapsmtp.errors import BackendUnavailable, UsageError

__all__ = ["LiveSource", "PcapngWriter", "RotatingWriter", "default_bpf", "interface_names",
           "privilege_message", "DEFAULT_SNAPLEN"]

DEFAULT_SNAPLEN = 262144

# Linux constants (not all exported by the socket module).
_SOL_PACKET = 263
_PACKET_AUXDATA = 8
_PACKET_STATISTICS = 6
_SO_TIMESTAMPNS = 35
_SO_RCVBUFFORCE = 33
_PACKET_OUTGOING = 4
_TP_STATUS_VLAN_VALID = 0x10
_TP_STATUS_VLAN_TPID_VALID = 0x40
_ETH_P_8021Q = 0x8100
_AUXDATA = struct.Struct("IIIHHHH")      # struct tpacket_auxdata
_TIMESPEC = struct.Struct("qq")

#: ARPHRD_* (Linux device type) -> LINKTYPE_* of the bytes a PF_PACKET/SOCK_RAW socket returns.
_ARPHRD_TO_LINKTYPE = {
    1: LINKTYPE["ETHERNET"],     # ARPHRD_ETHER
    772: LINKTYPE["ETHERNET"],   # ARPHRD_LOOPBACK (Linux lo carries zeroed Ethernet headers)
    519: LINKTYPE["RAW"],        # ARPHRD_RAWIP
    65534: LINKTYPE["RAW"],      # ARPHRD_NONE (tun devices, WireGuard)
}
_ARPHRD_LOOPBACK = 772

#: Receive buffer asked of the kernel: a burst on a busy relay must not overflow it.
_RCVBUF = 16 * 1024 * 1024
#: At most this many frames are read back to back before the generator checks its clock.
_BATCH = 256


def default_bpf(ports: frozenset[int] | set[int] | list[int]) -> str:
    """The kernel filter for the SMTP ports: ``tcp port 25 or tcp port 465 ...``."""
    return " or ".join(f"tcp port {p}" for p in sorted(set(ports)))


def interface_names() -> list[str]:
    """Names of the interfaces that exist here (``socket.if_nameindex``)."""
    try:
        return [name for _, name in socket.if_nameindex()]
    except OSError:
        return []


def privilege_message(iface: str) -> str:
    """The one line shown when the process may not open a packet socket."""
    python = os.path.realpath(sys.executable or "python3")
    return (f"pcapsmtp live: capturing on {iface!r} needs root or the CAP_NET_RAW capability, "
            f"which this process lacks: run it as root, or grant it with "
            f"`sudo setcap cap_net_raw+eip {python}` (on a dedicated interpreter copy), or "
            "AmbientCapabilities=CAP_NET_RAW in its systemd unit (see docs/live.md)")


# ---------------------------------------------------------------------------------------------
# pcapng writing: ``PcapngWriter`` (capture/pcapng.py), rotated here


class RotatingWriter:
    """Writes frames to ``path``; once a file reaches ``rotate_mb`` million bytes the next
    frame starts a new file ``<stem>.1<suffix>``, ``<stem>.2<suffix>``, ... . With ``keep``,
    only the newest ``keep`` files are kept on disk (older ones are deleted).

    Frame numbers restart at 1 in every file. ``locate(global_number)`` translates the run's
    global frame number into ``(path, number in that file)``."""

    def __init__(self, path: str, linktype: int, snaplen: int, iface: str, *,
                 rotate_mb: int | None = None, keep: int | None = None) -> None:
        self.base = path
        self.linktype = linktype
        self.snaplen = snaplen
        self.iface = iface
        self.limit = None if not rotate_mb else rotate_mb * 1_000_000
        self.keep = keep
        # (global number of the file's first frame, path), oldest first; bounded by ``keep``
        # or by the number of rotations (one small tuple per file).
        self.files: list[tuple[int, str]] = []
        self._next_global = 1
        self._index = 0
        self._cur = self._open(path)

    def _name(self, index: int) -> str:
        if index == 0:
            return self.base
        stem, dot, suffix = self.base.rpartition(".")
        if not dot or "/" in suffix:
            return f"{self.base}.{index}"
        return f"{stem}.{index}.{suffix}"

    def _open(self, path: str) -> PcapngWriter:
        try:
            w = PcapngWriter(path, self.linktype, self.snaplen, self.iface)
        except OSError as exc:
            raise UsageError(f"pcapsmtp live: cannot write {path}: {exc.strerror}") from exc
        self.files.append((self._next_global, path))
        if self.keep is not None and len(self.files) > self.keep:
            _, old = self.files.pop(0)
            try:
                os.unlink(old)
            except OSError:
                pass
        return w

    @property
    def path(self) -> str:
        return self._cur.path

    def write(self, ts_ns: int, data: bytes, wirelen: int) -> None:
        if self.limit is not None and self._cur.frames and self._cur.size >= self.limit:
            self._cur.close()
            self._index += 1
            self._cur = self._open(self._name(self._index))
        self._cur.write(ts_ns, data, wirelen)
        self._next_global += 1

    def locate(self, number: int) -> tuple[str, int]:
        """``(path, frame number in that file)`` for a global frame number. Frames of files
        already deleted by ``keep`` map to the oldest file still listed, with a number <= 0."""
        for start, path in reversed(self.files):
            if number >= start:
                return path, number - start + 1
        start, path = self.files[0]
        return path, number - start + 1

    def file_start(self, path: str) -> int | None:
        """Global number of the first frame of ``path``."""
        for start, p in self.files:
            if p == path:
                return start
        return None

    def flush(self) -> None:
        self._cur.flush()

    def close(self) -> None:
        self._cur.close()


# ---------------------------------------------------------------------------------------------
# the capture source


class LiveSource:
    """Frames from a live interface, filtered in the kernel.

    ``frames()`` yields a ``RawFrame`` per captured packet, or ``None`` whenever ``timeout``
    seconds pass without one (so the caller can close idle flows and look at its stop flag).
    ``stop()`` ends the generator at its next wake-up (safe from a signal handler).
    """

    def __init__(self, iface: str, bpf: str, *, write: str | None = None,
                 rotate_mb: int | None = None, rotate_keep: int | None = None,
                 snaplen: int = DEFAULT_SNAPLEN, promisc: bool = False,
                 timeout: float = 0.2, rcvbuf: int = _RCVBUF) -> None:
        self.iface = iface
        self.bpf = bpf
        self.snaplen = snaplen
        self.timeout = timeout
        self._stopped = False
        self._received = 0
        self._kernel_received = 0
        self._kernel_dropped = 0
        #: (after_ns, until_ns, dropped): windows of wall-clock time (the timestamps' clock)
        #: in which the kernel dropped packets, not yet taken by ``take_losses``
        self._losses: list[tuple[int, int, int]] = []
        self._polled_ns = time.time_ns()
        self._drop_outgoing = False
        self._sock: Any = None
        self.writer: RotatingWriter | None = None

        names = interface_names()
        if iface not in names:
            raise BackendUnavailable(
                f"pcapsmtp live: no interface named {iface!r}; interfaces here: "
                + (", ".join(names) or "(none visible)"))
        self._sock = self._open(iface, bpf, promisc)
        try:
            self._ins: socket.socket = self._sock.ins
            hatype = self._ins.getsockname()[3]
            linktype = _ARPHRD_TO_LINKTYPE.get(hatype)
            if linktype is None:
                raise BackendUnavailable(
                    f"pcapsmtp live: interface {iface!r} has device type ARPHRD {hatype}, "
                    "whose link layer pcapsmtp does not decode (Ethernet, loopback and raw IP are "
                    "supported)")
            self.linktype = linktype
            self._drop_outgoing = hatype == _ARPHRD_LOOPBACK
            for opt in (_SO_RCVBUFFORCE, socket.SO_RCVBUF):
                try:
                    self._ins.setsockopt(socket.SOL_SOCKET, opt, rcvbuf)
                    break
                except OSError:
                    continue
            self._ins.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            self._ins.setsockopt(_SOL_PACKET, _PACKET_AUXDATA, 1)
            self._ins.setblocking(False)
            self._read_kernel_stats()      # drop what the kernel counted before the filter was set
            self._kernel_received = self._kernel_dropped = 0
            self._polled_ns = time.time_ns()
            if write:
                self.writer = RotatingWriter(write, linktype, snaplen, iface,
                                             rotate_mb=rotate_mb, keep=rotate_keep)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _open(iface: str, bpf: str, promisc: bool) -> Any:
        # Imported here: scapy is slow to import and only the live mode needs it.
        from scapy.config import conf
        from scapy.error import Scapy_Exception

        # No name resolution of any kind: pcapsmtp never dissects with scapy, and no field is
        # left registered for DNS/services lookups should anything print a packet.
        conf.resolve.remove(*list(conf.resolve.fields))
        logging.getLogger("scapy").setLevel(logging.ERROR)
        import scapy.arch  # noqa: F401  (sets conf.L2listen for this platform)

        try:
            return conf.L2listen(iface=iface, filter=bpf or None, promisc=promisc)
        except PermissionError as exc:
            raise BackendUnavailable(privilege_message(iface)) from exc
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EACCES):
                raise BackendUnavailable(privilege_message(iface)) from exc
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise BackendUnavailable(
                    f"pcapsmtp live: no interface named {iface!r}; interfaces here: "
                    + ", ".join(interface_names())) from exc
            raise BackendUnavailable(f"pcapsmtp live: cannot open {iface!r}: {exc}") from exc
        except (Scapy_Exception, ImportError) as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if isinstance(exc, ImportError) or "libpcap" in text:
                raise BackendUnavailable(
                    "pcapsmtp live: libpcap is needed to compile the BPF filter "
                    f"({text}); install it (apt-get install libpcap0.8)") from exc
            raise UsageError(f"pcapsmtp live: bad capture filter {bpf!r}: {text}") from exc

    # -- reading --------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped

    def frames(self) -> Iterator[RawFrame | None]:
        ins = self._ins
        fd = ins.fileno()
        bufsize = self.snaplen
        ancsize = socket.CMSG_SPACE(_AUXDATA.size) + socket.CMSG_SPACE(_TIMESPEC.size) + 64
        trunc = socket.MSG_TRUNC
        drop_out = self._drop_outgoing
        writer = self.writer
        while not self._stopped:
            try:
                ready, _, _ = select.select([fd], [], [], self.timeout)
            except InterruptedError:       # pragma: no cover - PEP 475 retries for us
                ready = []
            if not ready:
                self.poll_drops()
                yield None
                continue
            self.poll_drops()        # once per batch: a loss is known before what follows it
            for _ in range(_BATCH):
                if self._stopped:
                    break
                try:
                    data, anc, flags, addr = ins.recvmsg(bufsize, ancsize, trunc)
                except (BlockingIOError, InterruptedError):
                    break
                if drop_out and addr[2] == _PACKET_OUTGOING:
                    continue
                ts_ns = 0
                wirelen = len(data)
                for level, kind, value in anc:
                    if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS \
                            and len(value) >= _TIMESPEC.size:
                        sec, nsec = _TIMESPEC.unpack_from(value)
                        ts_ns = sec * 1_000_000_000 + nsec
                    elif level == _SOL_PACKET and kind == _PACKET_AUXDATA \
                            and len(value) >= _AUXDATA.size:
                        status, plen, _snap, _mac, _net, tci, tpid = _AUXDATA.unpack_from(value)
                        wirelen = plen
                        if self.linktype == LINKTYPE["ETHERNET"] and (
                                tci or status & _TP_STATUS_VLAN_VALID):
                            if not status & _TP_STATUS_VLAN_TPID_VALID:
                                tpid = _ETH_P_8021Q
                            data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
                            wirelen += 4
                if flags & trunc and wirelen < len(data):
                    wirelen = len(data)
                if len(data) > bufsize:          # only when a VLAN tag was re-inserted
                    data = data[:bufsize]
                if not ts_ns:
                    ts_ns = time.time_ns()
                self._received += 1
                if writer is not None:
                    writer.write(ts_ns, data, wirelen)
                yield RawFrame(self._received, ts_ns, self.linktype, data, wirelen)

    # -- statistics and bookkeeping ---------------------------------------------------------

    def _read_kernel_stats(self) -> None:
        try:
            raw = self._ins.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 8)
        except OSError:
            return
        packets, drops = struct.unpack("II", raw[:8])
        self._kernel_received += packets     # the kernel resets its counters on every read
        self._kernel_dropped += drops

    def poll_drops(self) -> int:
        """Read the kernel's counters now; the packets dropped since the last read (also
        remembered, with the time window they fell in, for ``take_losses``)."""
        before = self._kernel_dropped
        if self._sock is not None and not getattr(self._sock, "closed", False):
            self._read_kernel_stats()
        now = time.time_ns()
        new = self._kernel_dropped - before
        if new > 0:
            self._losses.append((self._polled_ns, now, new))
        self._polled_ns = now
        return new

    @property
    def losses_pending(self) -> bool:
        return bool(self._losses)

    def take_losses(self) -> list[tuple[int, int, int]]:
        """The drop windows found since the last call: ``(after_ns, until_ns, dropped)``."""
        out, self._losses = self._losses, []
        return out

    def stats(self) -> dict[str, Any]:
        """``received``: frames that passed the filter and were handed on; ``dropped_by_kernel``:
        frames the kernel had to drop (receive buffer full) since the start;
        ``kernel_received``: what the kernel counted (on loopback every packet twice);
        ``written`` / ``files``: the pcapng output, if any."""
        self.poll_drops()
        out: dict[str, Any] = {
            "interface": self.iface,
            "filter": self.bpf,
            "received": self._received,
            "dropped_by_kernel": self._kernel_dropped,
            "kernel_received": self._kernel_received,
        }
        if self.writer is not None:
            out["written"] = self._received
            out["files"] = [p for _, p in self.writer.files]
        return out

    def locate(self, number: int) -> tuple[str, int]:
        """``(file, frame number in it)`` for a global frame number; without ``write`` the
        file is ``live:IFACE`` and the number is unchanged."""
        if self.writer is None:
            return f"live:{self.iface}", number
        return self.writer.locate(number)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self._sock is not None:
            try:
                if not getattr(self._sock, "closed", False):
                    self.poll_drops()
            except Exception:      # noqa: BLE001 - closing must not fail
                pass
            try:
                self._sock.close()
            except Exception:      # noqa: BLE001
                pass
        if self.writer is not None:
            self.writer.close()

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
