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

# ``TcpSegment`` (one per TCP packet the reassembler is fed): an extension type whose fields are
# C struct fields, so that the compiled reassembler and analyzer, which type their segment
# (tcp/reassembler.pxd, engine/analyzer.pxd), read them directly instead of through a generic
# attribute look-up of about 150 instructions each, and the compiled file loop fills them in C
# (engine/hotloop_c.pyx). The fields keep the Python values the .py stores; ``public``: the
# capture layer, the tests and every Python caller read and set them as before.
cdef class TcpSegment:
    cdef public object frame, ts_ns, src, sport, dst, dport, seq, ack, flags, payload, missing, ttl
