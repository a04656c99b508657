# Augmenting declarations for the compiled build of lines.py (Cython, pure-Python mode;
# setup.py). The .py stays the reference and what runs without the build: this file only makes
# ``Line`` and ``LineBuffer`` extension types whose attributes are fields of their C structs,
# read directly by their own methods and by the compiled session (session.pxd cimports them, so
# the compiled session runs only beside the compiled lines: pcapsmtp/__init__.py, ``_NEEDS``).
# Every attribute keeps the Python value the .py stores; only ``_skipping``, which the source
# only ever sets to True or False, is a C int (``bint``).

cimport cython

# (``raw`` stays an object: typed ``bytes``, ``content``'s ``raw[:-2]`` is compiled to
# ``PySequence_GetSlice``, which makes a slice object each time, where an object's slice uses
# Cython's cached one: 29.6 M instead of 14.7 M on the relay file)
cdef class Line:
    cdef public object raw, start, end, bare_lf, truncated, eol

cdef class LineBuffer:
    cdef public bytearray buf
    cdef public object start, max_line, _scan
    cdef public bint _skipping
    cdef public object _skip_start, _skip_head, _skip_last

    # Called once per line and once more per segment by the compiled session (which cimports
    # this type): ``cpdef``, a C call through the type's table, not a method look-up and a
    # Python call. ``i`` is the LF's index (``bytearray.find``'s result, -1 or an index).
    # (``buf`` an object here: Cython takes ``b"" + buf`` for a ``bytearray`` when ``buf`` is
    # typed one, and would then read the ``bytes`` it is as a ``bytearray``)
    @cython.locals(i=Py_ssize_t, line=Line, buf=object, raw=bytes)
    cpdef Line next_line(self)
    # once per segment (and at each switch to TLS or a body): C calls from the compiled
    # session, as ``next_line``
    cpdef push(self, data)
    cpdef tuple take_rest(self)
    cpdef advance(self, length)
