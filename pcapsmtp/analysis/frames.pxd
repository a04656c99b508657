# Augmenting declarations for the compiled build of frames.py (Cython, pure-Python mode;
# setup.py). The .py stays the reference and what runs without the build: this file only makes
# ``FrameIndex`` an extension type whose two lists are fields of its C struct, with its methods
# called through the type's table, and types the locals of ``make_item``, called once per event
# (tens of thousands per capture): the event's ``Span`` (model.pxd) read as C fields, the index's
# lists and positions typed. Because of the cimport, the compiled frames runs only beside the
# compiled model (pcapsmtp/__init__.py, ``_NEEDS``). Every attribute keeps the Python value the
# .py stores.

cimport cython
from pcapsmtp.model cimport Span

cdef class FrameIndex:
    cdef public list offs, frames

    cpdef add(self, offset, frame)
    @cython.locals(i=Py_ssize_t)
    cpdef trim(self, low)
    @cython.locals(i=Py_ssize_t)
    cpdef at(self, offset)
    @cython.locals(offs=list, i=Py_ssize_t, j=Py_ssize_t)
    cpdef covering(self, start, end)

# (``_KINDS`` and the kinds C globals: the look-up a C call on the dictionary, the comparisons of
# a kind C ones, not a module-dictionary look-up and a method call each)
cdef dict _KINDS
cdef int _BODY, _REPLY, _GAP, _END, _OTHER

@cython.locals(sp=Span, offs=list, n=Py_ssize_t, i=Py_ssize_t, j=Py_ssize_t, lf=dict)
cpdef make_item(ev, FrameIndex idx, ts_default)
