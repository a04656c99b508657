# Augmenting declarations for the compiled build of events.py (Cython, pure-Python mode;
# setup.py). The .py stays the reference and what runs without the build: this file only makes
# the events extension types whose fields are C fields of their structs. Their ``@dataclass``
# is then Cython's (cython.dataclasses): ``__init__``, ``__eq__``, ``__hash__`` and ``__repr__``
# compiled, the same signatures and results as the standard library's, so building an event
# costs a C call instead of an interpreted ``__init__`` (docs/performance.md, "Seventeenth
# session"); ``dataclasses.fields`` and ``dataclasses.replace`` work on them as before. Every
# field keeps the Python value the .py stores, and is ``readonly``: the compiled events refuse
# an assignment as a frozen dataclass does (events are replaced), except ``Event.ts_ns``, which
# the session stamps once on an event made without it (``SmtpSession._emit``, through
# ``object.__setattr__``). A field added in the .py must be declared here (the compiled class
# has no ``__dict__``).

cdef class Event:
    cdef readonly object side, span
    cdef public object ts_ns

cdef class ReplyLine:
    cdef readonly object code, sep, text, raw, span, bare_lf, octets, truncated

cdef class Command(Event):
    cdef readonly object verb, argument, raw_verb, bare_lf, octets, inferred

cdef class Reply(Event):
    cdef readonly object code, lines, answers, greeting, damaged, server_answers, stray
    cdef readonly object harmless_hole, lost_command, tls_follows

cdef class MessageBody(Event):
    cdef readonly object octets, bdat, complete

cdef class AuthExchange(Event):
    cdef readonly object lines

cdef class ImplicitTls(Event):
    pass

cdef class TlsInProgress(Event):
    cdef readonly object after_hole

cdef class PlaintextAfterStartTls(Event):
    cdef readonly object preview, smtp_like

cdef class StreamGap(Event):
    cdef readonly object length, cut, acked

cdef class StreamEnded(Event):
    cdef readonly object reset, truncated

cdef class Anomaly(Event):
    cdef readonly object code, detail
