# Augmenting declarations for the compiled build of verdict.py (Cython, pure-Python mode;
# setup.py). The .py stays the reference and what runs without the build: this file only makes
# ``_Facts`` (one per conversation, built by ``judge``) an extension type whose attributes are
# fields of its C struct, so that its one pass over the transcript's items reads and appends to
# its lists and dictionaries as C calls (the locals it takes from them are inferred as ``list``
# and ``dict``), and its methods are called through the type's table from within it
# (docs/performance.md, "Twenty-sixth session"). Every attribute keeps the Python value the .py
# stores. A new attribute of ``_Facts`` in the .py must be declared here (the compiled class has
# no ``__dict__``); one declared ``list`` or ``dict`` must always hold one.

cdef class _Facts:
    cdef public object t, greeting, out_of_step, masked_command, delivered, starttls, mail
    cdef public object transaction, implicit, auth_item, quit, ready, clear
    cdef public list hellos, gaps, overlaps, anomalies, tls, tls_pos, after_tls, commands
    cdef public list all_gaps, harmless_gaps
    cdef public dict replies, stray_after, ends, in_progress, index, meant

    cpdef present(self, side)
    cpdef own_end(self, side)
    cpdef pos(self, it)
    cpdef reply_to(self, cmd_item)
    cpdef gap_before(self, pos)
    cpdef gap_between(self, lo, hi, side=*)
