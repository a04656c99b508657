# Augmenting declarations for the compiled build of events.py (Cython, pure-Python mode;
# setup.py). The .py stays the reference and what runs without the build: this file only makes
# the reassembler's events (a ``StreamData`` for every segment with new bytes) extension types
# whose ``@dataclass`` is Cython's: ``__init__``, equality, hash and repr compiled, the same
# signatures and results as the standard library's (docs/performance.md, "Seventeenth
# session"). Every field keeps the Python value the .py stores and is ``readonly``, as a frozen
# dataclass's (the .py's ``__slots__``, where a class has them, are only a class attribute here).
# ``FlowInfo``, not frozen, stays a Python class. A field added in
# the .py must be declared here (the compiled class has no ``__dict__``).

cdef class FlowOpened:
    cdef readonly object flow

cdef class StreamData:
    cdef readonly object stream, side, offset, data, frame, ts_ns, ack, ack_age

cdef class StreamGap:
    cdef readonly object stream, side, offset, length, frame, ts_ns, cause, acked

cdef class OverlapConflict:
    cdef readonly object stream, side, offset, length, first_frame, second_frame, ts_ns

cdef class StreamEnd:
    cdef readonly object stream, side, reset, truncated, frame, ts_ns, ttl, side_ttl
    cdef readonly object side_ttl_segments, side_ttl_frames

cdef class SentAfterReset:
    cdef readonly object stream, side, reset_frame, kind, frame, ts_ns, last_frame, segments

cdef class FlowClosed:
    cdef readonly object stream, reason, ts_ns, client_acked, server_acked, client_last_ns
    cdef readonly object server_last_ns, client_resent, server_resent, server_acked_ns
    cdef readonly object server_acked_fin, server_acked_frame
