"""LineBuffer: framing on LF, CRLF vs bare LF, the long-line cut, flush, skip and offsets."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapsmtp.smtp.lines import Line, LineBuffer


def drain(lb: LineBuffer) -> list[Line]:
    out = []
    while (line := lb.next_line()) is not None:
        out.append(line)
    return out


def fields(line: Line) -> tuple[bytes, int, int, bool, bool, bool, bytes]:
    return (line.raw, line.start, line.end, line.bare_lf, line.truncated, line.eol, line.content)


def test_crlf_lines_and_spans() -> None:
    lb = LineBuffer(100)
    lb.push(b"EHLO a\r\nQUIT\r\n")
    a, b = drain(lb)
    assert fields(a) == (b"EHLO a\r\n", 0, 8, False, False, True, b"EHLO a")
    assert fields(b) == (b"QUIT\r\n", 8, 14, False, False, True, b"QUIT")
    assert lb.start == 14 and len(lb) == 0 and lb.next_line() is None


def test_bare_lf_and_empty_lines() -> None:
    lb = LineBuffer(100)
    lb.push(b"250-a\n\n\r\n250 b\r\n")
    a, empty_lf, empty_crlf, b = drain(lb)
    assert fields(a) == (b"250-a\n", 0, 6, True, False, True, b"250-a")
    assert fields(empty_lf) == (b"\n", 6, 7, True, False, True, b"")
    assert fields(empty_crlf) == (b"\r\n", 7, 9, False, False, True, b"")
    assert fields(b) == (b"250 b\r\n", 9, 16, False, False, True, b"250 b")


def test_lone_cr_does_not_end_a_line() -> None:
    lb = LineBuffer(100)
    lb.push(b"a\rb\r\n")
    (line,) = drain(lb)
    assert line.content == b"a\rb" and not line.bare_lf


def test_line_split_across_pushes() -> None:
    lb = LineBuffer(100)
    for piece in (b"MA", b"IL FROM:<a>\r", b"\nRC", b"PT"):
        lb.push(piece)
    (line,) = drain(lb)
    assert fields(line) == (b"MAIL FROM:<a>\r\n", 0, 15, False, False, True, b"MAIL FROM:<a>")
    assert bytes(lb.buf) == b"RCPT" and lb.start == 15


@pytest.mark.parametrize(("size", "cut"), [(7, False), (8, False), (9, True), (100, True)])
def test_limit_boundary_in_one_push(size: int, cut: bool) -> None:
    """``max_line`` counts the line ending: a line of exactly max_line bytes is kept whole."""
    lb = LineBuffer(8)
    raw = b"x" * (size - 2) + b"\r\n"
    lb.push(raw + b"OK\r\n")
    line, ok = drain(lb)
    assert line.truncated is cut and (line.start, line.end) == (0, size)
    assert len(line.raw) <= 8
    assert line.raw == (raw[:8] if cut else raw)
    assert fields(ok) == (b"OK\r\n", size, size + 4, False, False, True, b"OK")


def test_long_line_without_lf_is_skipped_not_stored() -> None:
    lb = LineBuffer(16)
    head = b"0123456789abcdefXYZ"
    lb.push(head)
    assert lb.next_line() is None
    assert len(lb) == 0                      # dropped at once, only the head is remembered
    for _ in range(1000):
        lb.push(b"Z" * 1000)
        assert lb.next_line() is None
        assert len(lb) == 0
    lb.push(b"tail\r\nNEXT\r\n")
    cut, nxt = drain(lb)
    total = len(head) + 1000 * 1000 + 6
    assert cut.truncated and cut.eol and cut.raw == head[:16] and (cut.start, cut.end) == (0, total)
    assert cut.content == head[:16]
    assert fields(nxt) == (b"NEXT\r\n", total, total + 6, False, False, True, b"NEXT")


@pytest.mark.parametrize(("ending", "bare"), [(b"\n", True), (b"\r\n", False)])
@pytest.mark.parametrize("split", [None, 0, 1])
def test_cut_line_bare_lf_flag_does_not_depend_on_chunking(ending: bytes, bare: bool,
                                                          split: int | None) -> None:
    """A cut line keeps its bare-LF flag whether its end came with its head or later."""
    lb = LineBuffer(4)
    raw = b"abcdefgh" + ending
    pieces = [raw] if split is None else [raw[:8 + split], raw[8 + split:]]
    lines = []
    for p in pieces:
        lb.push(p)
        lines += drain(lb)
    (line,) = lines
    assert line.truncated and (line.start, line.end) == (0, len(raw))
    assert line.bare_lf is bare


def test_flush_returns_the_unterminated_rest() -> None:
    lb = LineBuffer(100)
    lb.push(b"QUIT\r\nRCPT TO")
    drain(lb)
    line = lb.flush()
    assert line is not None
    assert fields(line) == (b"RCPT TO", 6, 13, False, False, False, b"RCPT TO")
    assert lb.flush() is None and lb.start == 13


def test_flush_while_skipping_a_long_line() -> None:
    lb = LineBuffer(4)
    lb.push(b"abcdefgh")
    assert lb.next_line() is None
    lb.push(b"ij")
    line = lb.flush()
    assert line is not None
    assert (line.raw, line.start, line.end, line.truncated, line.eol) == (b"abcd", 0, 10, True, False)
    assert lb.start == 10 and lb.flush() is None


def test_flush_of_a_long_unscanned_rest_is_cut() -> None:
    lb = LineBuffer(4)
    lb.push(b"abcdefgh")
    line = lb.flush()
    assert line is not None
    assert (line.raw, line.start, line.end, line.truncated, line.eol) == (b"abcd", 0, 8, True, False)


def test_skip_drops_the_partial_line_and_advances() -> None:
    lb = LineBuffer(100)
    lb.push(b"250-a\r\n250-ST")
    drain(lb)
    lb.skip(10)
    assert len(lb) == 0 and lb.start == 7 + 6 + 10
    lb.push(b"S\r\n250 b\r\n")
    a, b = drain(lb)
    assert (a.raw, a.start, a.end) == (b"S\r\n", 23, 26)
    assert (b.raw, b.start, b.end) == (b"250 b\r\n", 26, 33)


def test_skip_ends_a_long_line_skip() -> None:
    lb = LineBuffer(4)
    lb.push(b"abcdefgh")
    assert lb.next_line() is None
    lb.skip(3)
    lb.push(b"ok\r\n")
    (line,) = drain(lb)
    assert (line.raw, line.start, line.truncated) == (b"ok\r\n", 11, False)


def test_take_rest_returns_bytes_and_offset() -> None:
    lb = LineBuffer(100, start=50)
    lb.push(b"STARTTLS\r\n\x16\x03\x01")
    (line,) = drain(lb)
    assert (line.start, line.end) == (50, 60)
    data, start = lb.take_rest()
    assert (data, start) == (b"\x16\x03\x01", 60)
    assert lb.start == 63 and len(lb) == 0


def test_one_byte_pushes_are_linear() -> None:
    """The search offset is remembered: a long line arriving byte by byte is not rescanned."""
    n = 200_000
    lb = LineBuffer(n + 10)
    t0 = time.perf_counter()
    for _ in range(n):
        lb.push(b"a")
        assert lb.next_line() is None
    assert lb._scan == n  # noqa: SLF001 - the remembered search offset
    lb.push(b"\r\n")
    (line,) = drain(lb)
    assert line.end == n + 2 and not line.truncated
    assert time.perf_counter() - t0 < 20


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(1, 40), min_size=1, max_size=6),
       limit=st.integers(1, 40))
def test_property_chunking_invariant_and_contiguous(data: bytes, cuts: list[int], limit: int) -> None:
    def run(pieces: list[bytes]) -> list[tuple[bytes, int, int, bool, bool, bool]]:
        # (bare_lf of cut lines is left out here: see the test above)
        lb = LineBuffer(limit)
        out = []
        for p in pieces:
            lb.push(p)
            out += [(x.raw, x.start, x.end, x.bare_lf and not x.truncated, x.truncated, x.eol)
                    for x in drain(lb)]
            assert len(lb) <= max(limit, len(p)) + limit
        last = lb.flush()
        if last is not None:
            out.append((last.raw, last.start, last.end, last.bare_lf, last.truncated, last.eol))
        return out

    pieces, pos, i = [], 0, 0
    while pos < len(data):
        pieces.append(data[pos:pos + cuts[i % len(cuts)]])
        pos += cuts[i % len(cuts)]
        i += 1
    whole = run([data] if data else [])
    assert run(pieces) == whole
    pos = 0
    for raw, start, end, _bare, truncated, _eol in whole:
        assert start == pos and end > start
        assert len(raw) <= limit
        if not truncated:
            assert data[start:end] == raw
        pos = end
    assert pos == len(data)


def test_advance_hands_bytes_past_an_empty_buffer_only() -> None:
    """``advance``: bytes that bypass the buffer (TLS records, message content) move ``start``
    when nothing is buffered; with bytes buffered, or a long line being skipped, it refuses
    and changes nothing (the caller then pushes them)."""
    lb = LineBuffer(8)
    lb.push(b"EHLO\r\n")
    assert drain(lb)[0].end == 6
    assert lb.advance(100) == 6 and lb.start == 106
    assert lb.advance(0) == 106 and lb.start == 106
    lb.push(b"QU")
    assert lb.advance(5) is None and lb.start == 106 and len(lb) == 2
    assert lb.take_rest() == (b"QU", 106) and lb.advance(3) == 108 and lb.start == 111
    lb.push(b"0123456789abc")                   # longer than max_line, no LF: skipping
    assert lb.next_line() is None and len(lb) == 0
    assert lb.advance(4) is None and lb.start == 124
    line = lb.next_line() if lb.push(b"\n") is None else None
    assert line is not None and line.truncated and (line.start, line.end) == (111, 125)
