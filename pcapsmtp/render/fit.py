"""Tables and paragraphs that fit the terminal.

A table is laid out for a width: every column first gets its natural width; if the table is
wider than the terminal, headers wrap onto two lines, then the columns that may wrap (names,
messages, codes) narrow down to their floor, and only then are the least useful columns left
out, in the order the caller gave. Without a width (output piped to a file or a program) every
column keeps its natural width, so scripts and ``grep`` see whole rows.

Whole tables are drawn by tabulate (our users' choice for tables) in the look of its "simple"
format: two spaces between columns, a dashed rule under the headers, numbers right-aligned.
``live`` prints one row at a time as verdicts arrive, so it lines its rows up itself with
``render_rows`` on a layout fixed when it starts."""
from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["Col", "Layout", "output_width", "layout", "render_rows", "fit_table", "wrap_text"]

GAP = 2  # spaces between two columns


@dataclass(frozen=True, eq=False, repr=False)
class Col:
    header: str
    drop: int = 0       #: 0: always shown; otherwise the higher, the earlier it is left out
    wrap: int = 0       #: narrowest width its cells may be wrapped to; 0: never wrapped
    right: bool = False  #: right-aligned (numbers)


@dataclass(frozen=True, eq=False, repr=False)
class Layout:
    keep: tuple[int, ...]     #: indexes of the columns shown, in order
    widths: tuple[int, ...]   #: their widths


def output_width(stream: TextIO) -> int | None:
    """The width to fit output for: the terminal's when ``stream`` is one (``COLUMNS``
    overrides what the terminal says), None (no limit) when it is a file or a pipe."""
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError, OSError):
        return None
    return max(20, shutil.get_terminal_size().columns)


def _lines_of(cell: str) -> list[str]:
    return cell.split("\n") if cell else [""]


def _longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


def layout(cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int | None,
           indent: int = 0) -> Layout:
    """Which columns to show and how wide, for ``width`` columns of screen (None: no limit)."""
    keep = list(range(len(cols)))
    natural: list[int] = []
    floor: list[int] = []
    for i, c in enumerate(cols):
        cell = max((len(ln) for r in rows for ln in _lines_of(r[i])), default=0)
        natural.append(max(len(c.header), cell))
        cell_floor = min(cell, c.wrap) if c.wrap else cell
        floor.append(max(_longest_word(c.header), cell_floor, 1))
    while True:
        widths = {i: natural[i] for i in keep}
        total = indent + sum(widths.values()) + GAP * (len(keep) - 1)
        if width is None or total <= width:
            break
        excess = total - width
        room = sum(widths[i] - floor[i] for i in keep)
        droppable = [i for i in keep if cols[i].drop > 0]
        if room >= excess or not droppable:
            for _ in range(min(excess, room)):
                # narrow the column with the most room left (ties: the rightmost)
                i = max(keep, key=lambda k: (widths[k] - floor[k], k))
                widths[i] -= 1
            break
        keep.remove(max(droppable, key=lambda k: (cols[k].drop, k)))
    return Layout(tuple(keep), tuple(widths[i] for i in keep))


def _wrap(text: str, width: int) -> list[str]:
    out: list[str] = []
    for para in _lines_of(text):
        if len(para) <= width:
            out.append(para)
        else:
            out += textwrap.wrap(para, width, break_long_words=True, break_on_hyphens=True) or [""]
    return out


def _line(cells: Sequence[str], cols: Sequence[Col], lay: Layout, indent: int) -> str:
    parts = [c.rjust(w) if cols[i].right else c.ljust(w)
             for c, i, w in zip(cells, lay.keep, lay.widths)]
    return (" " * indent + (" " * GAP).join(parts)).rstrip()


def render_rows(cols: Sequence[Col], lay: Layout, rows: Iterable[Sequence[str]], *,
                header: bool = True, indent: int = 0) -> list[str]:
    """The lines of the table (header and rule first when ``header``), cells wrapped to the
    layout's widths; a wrapped row takes several lines and stays aligned."""
    out: list[str] = []
    if header:
        heads = [_wrap(cols[i].header, w) if len(cols[i].header) > w else [cols[i].header]
                 for i, w in zip(lay.keep, lay.widths)]
        height = max((len(h) for h in heads), default=1)
        heads = [[""] * (height - len(h)) + h for h in heads]   # headers sit on the rule
        for n in range(height):
            out.append(_line([h[n] for h in heads], cols, lay, indent))
        out.append(" " * indent + (" " * GAP).join("-" * w for w in lay.widths))
    for row in rows:
        cells = [_wrap(str(row[i]), w) for i, w in zip(lay.keep, lay.widths)]
        height = max((len(c) for c in cells), default=1)
        for n in range(height):
            out.append(_line([c[n] if n < len(c) else "" for c in cells], cols, lay, indent))
    return out


def fit_table(cols: Sequence[Col], rows: Sequence[Sequence[Any]], width: int | None = None,
              indent: int = 0) -> str:
    """The whole table, fitted to ``width`` (None: natural widths): the layout decides which
    columns stay and where cells wrap, tabulate draws it. The headers go in as the first rows
    (bottom-aligned, so they sit on the rule) rather than as tabulate's headers, which would pad
    them by two columns the layout did not count."""
    from tabulate import tabulate
    text_rows = [[str(c) for c in r] for r in rows]
    lay = layout(cols, text_rows, width, indent)
    heads = [_wrap(cols[i].header, w) if len(cols[i].header) > w else [cols[i].header]
             for i, w in zip(lay.keep, lay.widths)]
    height = max((len(h) for h in heads), default=1)
    head_row = ["\n".join([""] * (height - len(h)) + h) for h in heads]
    body = [["\n".join(_wrap(r[i], w)) for i, w in zip(lay.keep, lay.widths)] for r in text_rows]
    drawn = tabulate([head_row] + body, tablefmt="plain", disable_numparse=True,
                     colalign=["right" if cols[i].right else "left" for i in lay.keep])
    lines = [" " * indent + ln.rstrip() if ln.strip() else "" for ln in drawn.split("\n")]
    widths = [max(len(ln) for c in cell_col for ln in c.split("\n"))
              for cell_col in zip(head_row, *body)] if lay.keep else []
    rule = " " * indent + (" " * GAP).join("-" * w for w in widths)
    return "\n".join(lines[:height] + [rule] + lines[height:])


def wrap_text(text: str, width: int | None, indent: str = "") -> str:
    """A paragraph wrapped to ``width`` (None: unchanged); continuation lines get ``indent``."""
    if width is None or len(text) <= width:
        return text
    return "\n".join(textwrap.wrap(text, width, subsequent_indent=indent,
                                   break_long_words=True, break_on_hyphens=False))
