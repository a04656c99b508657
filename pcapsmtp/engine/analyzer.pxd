# Augmenting declarations for the compiled build of analyzer.py (Cython, pure-Python mode;
# setup.py). The .py stays the reference and what runs without the build: this file only makes
# ``_Conv`` (one per conversation) an extension type whose attributes are fields of its C struct,
# and types the locals of ``_data``, ``_route``'s work for each segment with new bytes (75 k on
# the relay benchmark file): the ``StreamData`` (tcp/events.pxd), the conversation, its
# ``FrameIndex`` (analysis/frames.pxd) and its ``SmtpSession`` (smtp/session.pxd) read as C
# fields, and ``SmtpSession.receive`` called through the type's table, not a generic look-up and
# a Python call each (docs/performance.md, "Twenty-fifth session"); and of ``_record_events``,
# which makes the session's events transcript items (each event's ``Span``, model.pxd, read as C
# fields); and of ``_feed``, ``Analyzer.feed`` (the segment and the reassembler typed). Every
# attribute keeps the Python value the .py stores. Because of the cimports, the compiled analyzer
# runs only beside the compiled tcp.events, model, analysis.frames, smtp.session and
# tcp.reassembler (pcapsmtp/__init__.py, ``_NEEDS``).
# A new attribute of ``_Conv`` in the .py must be declared here (the compiled class has no
# ``__dict__``).

cimport cython
from pcapsmtp.tcp.events cimport StreamData
from pcapsmtp.analysis.frames cimport FrameIndex, make_item
from pcapsmtp.smtp.session cimport SmtpSession
from pcapsmtp.model cimport Span
# (under other names: the module's Python names stay the ones it imports)
from pcapsmtp.model cimport TcpSegment as _Seg
from pcapsmtp.tcp.reassembler cimport TcpReassembler as _Reasm

cdef class _Conv:
    cdef public object info
    cdef public SmtpSession session
    cdef public dict index
    cdef public object transcript, emitted, open_tls, bound

# ``Analyzer``'s base: what ``_feed``, ``_route`` and ``_record_events`` read for every segment
# or event, C fields of the analyzer (the Python subclass keeps its other attributes in its
# ``__dict__``); those functions type their analyzer as it.
cdef class _HotState:
    cdef public object packets, config, clock, reassembler, _ports, _early, _max_events
    cdef public dict _convs
    cdef public list _held

@cython.locals(c=_Conv, idx=FrameIndex, offs=list, frames=list, session=SmtpSession)
cpdef _Conv _data(_HotState self, dict convs, StreamData ev, clock, stepped)

@cython.locals(items=list, index=dict, sp=Span)
cpdef _record_events(_HotState self, _Conv c, list evs)

# ``Analyzer.feed`` (every segment fed): the segment's fields read as C fields (model.pxd), the
# reassembler's ``feed`` a C call (tcp/reassembler.pxd).
@cython.locals(reasm=_Reasm)
cpdef _feed(_HotState self, _Seg seg)

# ``_prediction_key`` (once per conversation with an EHLO reply) and its two helpers: the reply's
# lines a typed list, each line's reduction looked up in the memo by a C call on the dictionary,
# the bytes compared and sliced in C, the helpers C calls (every caller passes ``bytes``: the
# verdict's joined reply lines).
@cython.locals(nl=Py_ssize_t, first=bytes, rest=bytes, end=bytes, lines=list, last=bytes,
               memo=dict, red=list, ln=bytes, r=bytes)
cpdef _prediction_key(bytes raw)
cpdef bytes _plain_line(bytes ln)
@cython.locals(out=list, n=Py_ssize_t, i=Py_ssize_t, j=Py_ssize_t, r=bytes)
cpdef list _one_copy_of_runs(list red)

# ``Analyzer._route`` (once per segment that gave events, called in C by ``_feed``): the
# conversations' dictionary read and written by C calls, each conversation's fields read as C
# fields.
@cython.locals(done=list, convs=dict, c=_Conv)
cpdef list _route(_HotState self, events)
