"""Per-side line framing with hard limits (no I/O)."""
from __future__ import annotations

__all__ = ["LineBuffer", "Line"]


class Line:
    """A framed line: ``raw`` includes its ending (LF or CRLF) unless ``eol`` is False."""

    __slots__ = ("raw", "start", "end", "bare_lf", "truncated", "eol")

    def __init__(self, raw: bytes, start: int, end: int, bare_lf: bool, truncated: bool,
                 eol: bool) -> None:
        self.raw = raw
        self.start = start
        self.end = end
        self.bare_lf = bare_lf
        self.truncated = truncated
        self.eol = eol

    @property
    def content(self) -> bytes:
        """The line without its ending."""
        raw = self.raw
        if self.truncated or not self.eol:
            return raw.rstrip(b"\r\n") if self.eol else raw
        return raw[:-1] if self.bare_lf else raw[:-2]


class LineBuffer:
    """Accumulates one side's bytes and hands out complete lines.

    ``start`` is the stream offset of the first byte still buffered. A line longer than
    ``max_line`` is cut: the first ``max_line`` bytes are returned with ``truncated`` set
    when its end arrives, and the rest is skipped without being stored. The search offset is
    remembered so that a line arriving one byte at a time costs linear time.
    """

    __slots__ = ("buf", "start", "max_line", "_scan", "_skipping", "_skip_start", "_skip_head",
                 "_skip_last")

    def __init__(self, max_line: int, start: int = 0) -> None:
        self.buf = bytearray()
        self.start = start
        self.max_line = max_line
        self._scan = 0
        self._skipping = False
        self._skip_start = 0
        self._skip_head = b""
        self._skip_last = 0

    def __len__(self) -> int:
        return len(self.buf)

    def push(self, data: bytes) -> None:
        self.buf += data

    def next_line(self) -> Line | None:
        buf = self.buf
        if not buf:
            # (the usual call after a segment's last line: nothing to search, and nothing to
            # change, since every path that empties the buffer leaves ``_scan`` at 0)
            return None
        if self._skipping:
            i = buf.find(b"\n")
            if i < 0:
                if buf:
                    self._skip_last = buf[-1]
                self.start += len(buf)
                del buf[:]
                return None
            before = buf[i - 1] if i > 0 else self._skip_last
            end_off = self.start + i + 1
            del buf[:i + 1]
            self.start = end_off
            self._skipping = False
            head, self._skip_head = self._skip_head, b""
            return Line(head, self._skip_start, end_off, before != 0x0D, True, True)
        i = buf.find(b"\n", self._scan)
        if i < 0:
            if len(buf) > self.max_line:
                # Keep the head for the record, drop the rest until the next LF.
                self._skip_head = bytes(buf[:self.max_line])
                self._skip_last = buf[-1]
                self._skip_start = self.start
                self.start += len(buf)
                del buf[:]
                self._scan = 0
                self._skipping = True
            else:
                self._scan = len(buf)
            return None
        self._scan = 0
        # (``b"" + ...``, not ``bytes(...)``: the same ``bytes``, made by the concatenation's
        # C function, not through a call of the type)
        if i + 1 == len(buf):
            # the whole buffer is the line (a segment of one command or reply line): one copy
            raw = b"" + buf
            buf.clear()
        else:
            raw = b"" + buf[:i + 1]
            del buf[:i + 1]
        start = self.start
        self.start = start + i + 1
        bare_lf = i == 0 or raw[i - 1] != 0x0D
        if len(raw) > self.max_line:
            return Line(raw[:self.max_line], start, self.start, bare_lf, True, True)
        # (the usual line, made without ``__init__``: the compiled build calls no constructor)
        line = Line.__new__(Line)
        line.raw = raw
        line.start = start
        line.end = self.start
        line.bare_lf = bare_lf
        line.truncated = False
        line.eol = True
        return line

    def take_rest(self) -> tuple[bytes, int]:
        """Remove and return everything buffered (for a switch to body, TLS or a flush)."""
        data = bytes(self.buf)
        start = self.start
        self.start += len(data)
        del self.buf[:]
        self._scan = 0
        if self._skipping:
            self._skipping = False
            data = self._skip_head + data
            start = self._skip_start
            self._skip_head = b""
        return data, start

    def advance(self, length: int) -> int | None:
        """Account for ``length`` bytes handed straight to another parser (TLS records) when
        nothing is buffered: returns their stream offset. None, and nothing done, when bytes
        are buffered (then they go through ``push`` and ``take_rest``)."""
        if self.buf or self._skipping:
            return None
        start = self.start
        self.start = start + length
        return start

    def skip(self, length: int) -> None:
        """Forget ``length`` bytes (lost or not ours) after what is buffered: the buffer is
        dropped too, as a partial line cannot be completed across a hole."""
        self.start += len(self.buf) + length
        del self.buf[:]
        self._scan = 0
        self._skipping = False
        self._skip_head = b""

    def flush(self) -> Line | None:
        """At end of stream: the unterminated remainder as a line without ending."""
        if self._skipping:
            self._skipping = False
            head, self._skip_head = self._skip_head, b""
            end = self.start + len(self.buf)
            self.start = end
            del self.buf[:]
            return Line(head, self._skip_start, end, False, True, False)
        if not self.buf:
            return None
        raw, start = self.take_rest()
        truncated = len(raw) > self.max_line
        return Line(raw[:self.max_line], start, start + len(raw), False, truncated, False)
