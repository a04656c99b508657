"""``--engine tshark``: TCP segments as Wireshark's own dissectors see them, through pyshark.

Why a second engine: tshark decodes every encapsulation Wireshark knows (GRE, VXLAN, MPLS,
ERSPAN, IP-in-IP, 6in4, 802.1Q/QinQ, PPPoE, Geneve, ...), so SMTP inside a tunnel is found
even where the plain reader (``pcapsmtp.capture.pcapfile``) sees only the outer packet.

How tshark is driven (checked on tshark 4.0.17):

- pyshark's ``FileCapture`` builds the command line with ``use_ek=True`` (``tshark -n -T
  ek``) plus ``-e FIELD`` for each field below; pcapsmtp runs it as a plain child process
  and reads its standard output line by line (``TsharkSource.command``, ``_layers``). With
  ``-e``, every EK line is flat: ``{"timestamp": ..., "layers": {"frame_number": ["1"],
  "ip_src": [...]}}``. (pyshark's own runner is not used: its asyncio child watchers lost a
  finished tshark's exit status now and then, and its EK packet builder expects full
  layers.)
- ``-Y tcp`` keeps only frames with a TCP layer (pyshark's ``display_filter``).
- ``-o tcp.desegment_tcp_streams:FALSE``: otherwise a segment that tshark folds into a
  reassembled SMTP/TLS PDU carries ``tcp.segment_data`` instead of ``tcp.payload``. With
  desegmentation off, ``tcp.payload`` holds exactly the segment's bytes on every frame.
  ``tcp.analyze_sequence_numbers:FALSE`` saves time and changes none of the raw fields.
- Fields: ``frame.number``, ``frame.time_epoch`` (a decimal string with 9 fraction digits,
  parsed to integer nanoseconds without a float), ``frame.protocols`` (the layer list, used
  to pick the IP layer right before the TCP layer: the innermost one), ``ip.src/dst``,
  ``ipv6.src/dst`` and ``ip.ttl``/``ipv6.hlim`` (one value per occurrence, outer first: the
  segment's TTL is the innermost header's), ``tcp.srcport/dstport``,
  ``tcp.seq_raw``, ``tcp.ack_raw`` (present on every frame in 4.0, also without ACK),
  ``tcp.flags`` (hex; the low 8 bits are the flag byte), ``tcp.len`` (payload length from
  the IP length) and ``tcp.payload`` (hex).
- Snaplen cut: tshark gives ``tcp.payload`` for the captured bytes only when the whole
  payload is there; when it is cut it may show nothing. ``missing`` = ``tcp.len`` minus the
  payload bytes obtained, so the reassembler reports the hole either way. To keep the
  captured part, frames with ``frame.cap_len < frame.len`` get their payload from
  ``tcp.payload`` when present, otherwise from ``data.data``/``tcp.segment_data``.
- Frames whose TCP header sits inside an ICMP/ICMPv6 error (a quoted header, not a
  segment) are skipped and counted in ``notes``.

IP fragments are reassembled by tshark (``ip.defragment`` default on): the segment is
reported on the frame that completed the datagram, as Wireshark shows it.
"""
from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Generator, Iterator
from typing import Any

from pcapsmtp.errors import BackendUnavailable, CaptureError
from pcapsmtp.model import TcpSegment

__all__ = ["TsharkSource", "TSHARK_FIELDS", "TSHARK_PREFS", "parse_epoch_ns"]

#: Fields asked from tshark, in this order.
TSHARK_FIELDS: tuple[str, ...] = (
    "frame.number", "frame.time_epoch", "frame.protocols", "frame.len", "frame.cap_len",
    "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.ttl", "ipv6.hlim",
    "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "tcp.len",
    "tcp.payload", "tcp.segment_data",
)

#: Preferences overridden for every run (``-o name:value``).
TSHARK_PREFS: dict[str, str] = {
    "tcp.desegment_tcp_streams": "FALSE",
    "tcp.analyze_sequence_numbers": "FALSE",
}

_ICMP = frozenset({"icmp", "icmpv6"})
_MISSING_MSG = ("tshark not found: install Wireshark's tshark (apt-get install tshark) or use "
                "--engine scapy")


def parse_epoch_ns(text: str) -> int:
    """``"1636654421.702930000"`` -> ``1636654421702930000``, exactly (no float)."""
    neg = text.startswith("-")
    if neg:
        text = text[1:]
    whole, _, frac = text.partition(".")
    ns = int(whole or "0") * 1_000_000_000 + int((frac + "000000000")[:9] or "0")
    return -ns if neg else ns


def _first(layers: dict[str, Any], key: str) -> str | None:
    v = layers.get(key)
    if v is None:
        return None
    if isinstance(v, list):
        return str(v[0]) if v else None
    return str(v)


def _nth(layers: dict[str, Any], key: str, n: int) -> str | None:
    v = layers.get(key)
    if v is None:
        return None
    if not isinstance(v, list):
        v = [v]
    return str(v[n]) if 0 <= n < len(v) else None


def _hex(value: str | None) -> bytes:
    if not value:
        return b""
    return bytes.fromhex(value.replace(":", ""))


@functools.lru_cache(maxsize=4)
def _tshark_version(tshark_path: str | None) -> Any:
    from pyshark.tshark.tshark import get_tshark_version  # type: ignore[import-untyped]
    return get_tshark_version(tshark_path)


class TsharkSource:
    """TCP segments of a capture file, decoded by tshark (driven by pyshark).

    ``segments()`` may be called more than once (each call runs tshark again). After a run,
    ``notes`` lists what was skipped and why (ICMP-quoted TCP headers, frames tshark could
    not decode), and ``skipped`` counts those frames.
    """

    def __init__(self, path: str) -> None:
        if shutil.which("tshark") is None:
            raise BackendUnavailable(_MISSING_MSG)
        try:
            import pyshark  # type: ignore[import-untyped]  # noqa: F401  (lazy: optional backend)
        except ImportError as exc:  # pragma: no cover - pyshark is an install requirement
            raise BackendUnavailable(f"pyshark is not installed ({exc}): pip install pyshark, "
                                     "or use --engine scapy") from exc
        self.path = path
        self.notes: list[str] = []
        self.skipped = 0
        #: called with the captured length (``frame.cap_len``) of each TCP frame whose payload
        #: the snap length cut, as ``Decoder.on_cut``
        self.on_cut: Callable[[int], None] | None = None

    # -- the tshark process -----------------------------------------------------------------

    def command(self) -> list[str]:
        """The tshark command line, as pyshark builds it for ``FileCapture`` (EK output, the
        ``-e`` fields, the preferences, ``-Y tcp``, ``-r FILE``), without ``-l``: a file is
        read to its end, so a flush per packet buys nothing and costs tshark time."""
        import pyshark
        from pyshark.tshark.tshark import get_process_path  # type: ignore[import-untyped]

        class _Parameters(pyshark.FileCapture):  # type: ignore[misc]
            """pyshark's parameters only; this capture never starts a process."""

            def _setup_eventloop(self) -> None:
                self.eventloop = None

            def _get_tshark_version(self) -> Any:
                # pyshark runs ``tshark -v`` once per capture; once per process is enough.
                return _tshark_version(self.tshark_path)

        params: list[str] = []
        for field in TSHARK_FIELDS:
            params += ["-e", field]
        cap = _Parameters(self.path, keep_packets=False, display_filter="tcp", use_ek=True,
                          override_prefs=dict(TSHARK_PREFS), custom_parameters=params)
        return [get_process_path(cap.tshark_path), "-n", "-T", "ek"] + cap.get_parameters()

    def _layers(self) -> Generator[dict[str, Any], None, None]:
        """The ``layers`` of each EK packet line, in frame order; then, if tshark exited
        non-zero (a damaged file), a ``CaptureError`` with its last error line, after every
        frame before the damage.

        tshark runs as a plain child process, waited for with its own ``waitpid``. (pyshark
        runs it under asyncio, whose child watchers reap through SIGCHLD handlers or a loop
        that runs only while pyshark reads: a finished tshark's exit status was now and then
        lost and reported as 255, a spurious "tshark stopped reading".) Its errors go to a
        temporary file, so a tshark with much to say never blocks on a full pipe."""
        import json
        import subprocess
        import tempfile

        try:
            cmd = self.command()
        except FileNotFoundError as exc:
            raise CaptureError(self.path, None, f"cannot open: {exc}") from exc
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=errors)
            assert proc.stdout is not None
            finished = False
            bad: bytes | None = None
            try:
                for line in proc.stdout:
                    if line.startswith(b'{"index"'):     # EK's bulk-index line before each packet
                        continue
                    try:
                        doc = json.loads(line)
                    except ValueError:     # a line cut short (tshark killed while writing it)
                        bad = line[:60]
                        break
                    layers = doc.get("layers") if isinstance(doc, dict) else None
                    if layers is not None:
                        yield layers
                finished = True
            finally:
                if not finished and proc.poll() is None:
                    proc.kill()                # the reader stopped early: tshark is not needed
                proc.stdout.close()            # (after a bad line, a tshark still running is killed)
                code = proc.wait()
            if bad is not None and code == 0:
                raise CaptureError(self.path, None, f"tshark wrote a line that is not EK JSON: "
                                                    f"{bad!r}")
            if code != 0:
                errors.seek(0)
                lines = [ln.strip() for ln in errors.read().decode("utf-8", "replace").splitlines()]
                said = [ln for ln in lines if ln and not ln.startswith("Running as user")]
                last = said[-1] if said else f"tshark exited with status {code}"
                raise CaptureError(self.path, None, f"tshark stopped reading: {last}")

    # -- public -----------------------------------------------------------------------------

    def segments(self) -> Iterator[TcpSegment]:
        """Yield one ``TcpSegment`` per TCP frame, in frame order."""
        self.notes = []
        self.skipped = 0
        icmp_frames: list[int] = []
        frames = self._layers()
        try:
            for layers in frames:
                seg = self._segment(layers, icmp_frames)
                if seg is not None:
                    yield seg
        finally:
            frames.close()                     # a reader that stops early ends tshark now
        if icmp_frames:
            shown = ", ".join(map(str, icmp_frames[:20])) + (" ..." if len(icmp_frames) > 20 else "")
            self.notes.append(f"{len(icmp_frames)} frame(s) carry a TCP header quoted in an ICMP "
                              f"error, not a segment; skipped: {shown}")

    def _segment(self, layers: dict[str, Any], icmp_frames: list[int]) -> TcpSegment | None:
        number_s = _first(layers, "frame_number")
        if number_s is None:
            return None
        number = int(number_s)
        protos = (_first(layers, "frame_protocols") or "").split(":")
        try:
            tcp_at = protos.index("tcp")
        except ValueError:
            return None
        before = protos[:tcp_at]
        if _ICMP.intersection(before):
            icmp_frames.append(number)
            self.skipped += 1
            return None
        ip_layer = next((p for p in reversed(before) if p in ("ip", "ipv6")), None)
        if ip_layer is None:
            self._skip(number, "TCP without an IP layer")
            return None
        occ = before.count(ip_layer) - 1
        src = _nth(layers, f"{ip_layer}_src", occ)
        dst = _nth(layers, f"{ip_layer}_dst", occ)
        sport = _first(layers, "tcp_srcport")
        dport = _first(layers, "tcp_dstport")
        seq = _first(layers, "tcp_seq_raw")
        flags = _first(layers, "tcp_flags")
        if None in (src, dst, sport, dport, seq, flags):
            self._skip(number, "TCP header not fully captured")
            return None
        ack = _first(layers, "tcp_ack_raw") or "0"
        payload = _hex(_first(layers, "tcp_payload"))
        tcp_len = int(_first(layers, "tcp_len") or "0")
        if not payload and tcp_len:
            payload = _hex(_first(layers, "tcp_segment_data"))
        missing = max(0, tcp_len - len(payload))
        ttl = _nth(layers, "ip_ttl" if ip_layer == "ip" else "ipv6_hlim", occ)
        if missing and self.on_cut is not None:
            self.on_cut(int(_first(layers, "frame_cap_len") or "0"))
        assert src is not None and dst is not None and sport is not None
        assert dport is not None and seq is not None and flags is not None
        return TcpSegment(number, parse_epoch_ns(_first(layers, "frame_time_epoch") or "0"),
                          src, int(sport), dst, int(dport), int(seq), int(ack),
                          int(flags, 16) & 0xFF, payload, missing, int(ttl) if ttl else 0)

    def _skip(self, number: int, why: str) -> None:
        self.skipped += 1
        if len(self.notes) < 50:
            self.notes.append(f"frame {number}: {why}; skipped")
