# Augmenting declarations for the compiled build of model.py (Cython, pure-Python mode;
# setup.py). The .py stays the reference and what runs without the build: this file only makes
# ``Span``, made for every line, reply and event (tens of thousands per capture), an extension
# type whose ``@dataclass`` is Cython's: ``__init__``, equality, hash and repr compiled, the same
# signatures and results as the standard library's (docs/performance.md, "Seventeenth
# session"). Its fields keep the Python values the .py stores and are ``readonly``, as a frozen
# dataclass's.

cdef class Span:
    cdef readonly object side, start, end

# ``Item`` (one per event, the verdict's observation): the same, its fields ``public`` (the
# dataclass is not frozen), equality by value and no hash, as the standard library's.
cdef class Item:
    cdef public object event, frames, ts_ns, line_frames
