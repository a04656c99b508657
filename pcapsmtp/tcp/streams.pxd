# Augmenting declarations for the compiled build of streams.py (Cython, pure-Python mode;
# setup.py). The .py stays the reference and what runs without the build: this file only makes
# ``StreamTable`` an extension type whose attributes are fields of its C struct, so that the
# compiled file loop's classifier (``engine/hotloop_c.pyx``, ``TableClassifier``, which cimports
# it) reads the two generations and the watched 4-tuples as C fields instead of through a
# generic attribute look-up for every TCP segment of the capture (docs/performance.md,
# "Nineteenth session"). Every attribute keeps the Python value the .py stores; ``young``,
# ``old`` and ``watched`` are the dictionaries the .py makes (``dict``: another value is
# refused). ``public``: the reassembler and the tests read and set them as before. An attribute
# added in the .py must be declared here (the compiled class has no ``__dict__``), and the
# compiled loop runs only beside the compiled table (``engine.accel``).

cdef class StreamTable:
    cdef public dict young, old, watched
    cdef public object stats, max_tracked, next_stream, ports, could_start, grace
    cdef public object _closed, _closed_cap, newest, _stamp, _quantum

# ``KeyedSegment`` (every segment the compiled file loop hands the reassembler): an extension
# type, a subclass of the compiled ``TcpSegment`` (model.pxd) with its key and direction as C
# struct fields too; the compiled loop makes it with ``__new__`` and stores its fields in C, and
# the compiled reassembler reads them so (docs/performance.md, "Twenty-sixth session"). Because
# of the cimport, the compiled streams runs only beside the compiled model
# (pcapsmtp/__init__.py, ``_NEEDS``).
from pcapsmtp.model cimport TcpSegment

cdef class KeyedSegment(TcpSegment):
    cdef public object d, key
