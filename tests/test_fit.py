"""render/fit.py: tables fitted to a width keep every character of the cells they show, never
exceed the width when the kept columns can fit, leave columns out only in the given order, and
change nothing without a width."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pcapsmtp.render.fit import GAP, Col, fit_table, layout, render_rows

WORD = st.text(alphabet="abcdefghij-.:0123456789", min_size=1, max_size=14)
CELL = st.lists(WORD, min_size=1, max_size=4).map(" ".join)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[Col], list[list[str]]]:
    n = draw(st.integers(1, 6))
    cols = [Col(draw(st.sampled_from(["stream", "server name", "caused by", "reason", "x"])),
                drop=draw(st.integers(0, 3)), wrap=draw(st.sampled_from([0, 6, 10])),
                right=draw(st.booleans())) for _ in range(n)]
    rows = draw(st.lists(st.lists(CELL, min_size=n, max_size=n), min_size=0, max_size=5))
    return cols, rows


def _cells_by_column(cols: list[Col], lay, rows: list[list[str]]) -> list[list[str]]:
    """Re-read each kept column of the rendered body: the text under each column, per row."""
    lines = render_rows(cols, lay, rows, header=False)
    starts, pos = [], 0
    for w in lay.widths:
        starts.append(pos)
        pos += w + GAP
    out: list[list[str]] = [[] for _ in lay.keep]
    for ln in lines:
        for k, (s, w) in enumerate(zip(starts, lay.widths)):
            out[k].append(ln[s:s + w])
    return out


@settings(max_examples=300, deadline=None)
@given(tables(), st.integers(10, 120))
def test_fitted_tables_keep_content_width_and_drop_order(table, width: int) -> None:
    cols, rows = table
    lay = layout(cols, rows, width)
    kept = list(lay.keep)
    # columns keep their order; only droppable ones go, the highest drop value first
    assert kept == sorted(kept)
    gone = [i for i in range(len(cols)) if i not in kept]
    assert all(cols[i].drop > 0 for i in gone)
    if gone:
        assert min(cols[i].drop for i in gone) >= max((cols[i].drop for i in kept), default=0)
    # every character of every shown cell is still there, in order (wrapping only splits)
    body = _cells_by_column(cols, lay, rows)
    for k, i in enumerate(kept):
        text = "".join(body[k]).replace(" ", "")
        assert text == "".join(r[i] for r in rows).replace(" ", "")
    # the width holds whenever the kept columns' floors fit in it
    out = fit_table(cols, rows, width)
    floors = sum(max(max((len(w) for w in cols[i].header.split()), default=0),
                     min(max((len(r[i]) for r in rows), default=0), cols[i].wrap)
                     if cols[i].wrap else max((len(r[i]) for r in rows), default=0), 1)
                 for i in kept) + GAP * (len(kept) - 1)
    if floors <= width:
        assert max(len(ln) for ln in out.splitlines()) <= width, out


@given(tables())
def test_without_a_width_nothing_wraps_or_goes(table) -> None:
    cols, rows = table
    out = fit_table(cols, rows, None).splitlines()
    assert len(out) == 2 + len(rows)         # header, rule, one line per row
    for row, ln in zip(rows, out[2:]):
        for cell in row:
            assert cell in ln
