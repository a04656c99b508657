# Augmenting declarations for the compiled build of session.py (Cython, pure-Python mode;
# setup.py). The .py stays the reference and what runs without the build: this file only makes
# ``SmtpSession`` (one per conversation) and its per-side ``_SideState`` extension types whose
# attributes are fields of their C structs, so that their methods read and write ``self.x``
# directly instead of through a generic attribute look-up (about 200 instructions each,
# docs/performance.md, "Fifteenth session" and "Sixteenth session"), and makes the methods every
# segment and line goes through ``cpdef`` with the side's state (and its ``LineBuffer`` and
# ``Line``, lines.pxd) typed. Every attribute keeps the Python value the .py stores (offsets,
# counters and timestamps stay Python ints, None where the .py allows it); only flags the source
# only ever sets to True or False (or to a bool it computed) are C ints (``bint``: read back as
# True or False). ``public``: the analyzer and the tests read them as before. A new attribute
# in the .py must be declared here (an undeclared one is an AttributeError in the compiled
# build: tests/perf/test_compiled_equivalence.py). Because of the cimport, the compiled session
# runs only beside the compiled lines (pcapsmtp/__init__.py, ``_NEEDS``). (A cpdef method holds
# no generator expression or other closure: Cython does not compile one inside it.)

cimport cython
from pcapsmtp.smtp.lines cimport Line, LineBuffer

# The side's modes (``_SideState.mode``): C globals holding the .py's strings, so that
# ``st.mode is _LINES`` is a pointer comparison, not a look-up of the module's dictionary.
cdef object _LINES, _HOLD, _BODY, _BDAT, _SASL_LINE, _TLS_EXPECTED, _TLS, _STOPPED

# Once per reply line and twice per command: a C call, and ``raw.decode`` on a ``bytes`` Cython
# calls as the C decoder (every caller passes ``bytes``: a line's content or a slice of it, and
# ``_preview``'s copy), not a module-global look-up, a Python call and a method call.
cpdef str decode_text(bytes raw)

cdef class _SideState:
    cdef public object side
    cdef public LineBuffer lines
    cdef public object mode, tls
    cdef public object body_start, body_octets, body_tail, bdat_left
    cdef public bint ended, first_seen, after_gap, small_gap, body_hole
    cdef public object held_ns

cdef class SmtpSession:
    cdef public object config
    cdef public _SideState _c, _s
    cdef public object _pending, _srv_pending, _unclaimed, _srv_last, _helo_held
    cdef public bint _srv_in_data
    cdef public list _reply_lines
    cdef public bint _reply_damaged, _reply_hole, _greeted
    cdef public object _hold_for
    cdef public bint _starttls_accepted, _client_spoke_after_220
    cdef public object _ready_ns
    cdef public bint _decrypted
    cdef public object _ts
    cdef public list _out
    cdef public set _warned
    cdef public bint _injection_reported, _auth_open, _server_gap_unmatched
    cdef public list _short_holes
    cdef public object _commands_seen, _first_command_ns, _reply_began_at, _late
    cdef public bint _client_hole
    cdef public object _hole_cmd, _hole_cmd_server_at, _client_hole_bytes
    cdef public bint _lost, _starttls_sent, _lone_220, _client_bytes, _answer_in_hole, _starttls_2xx
    cdef public bint _greeting_in_hole, _replied, _hold_after_hole, _held_text
    cdef public object _hold_lost, _seg_ack, _starttls_end, _client_last_hole

    @cython.locals(st=_SideState)
    cpdef list receive(self, side, data, ts_ns=*, ack=*, ack_age=*)
    cpdef _emit(self, ev)
    cpdef _emit_all(self, evs)
    cpdef _drain(self, _SideState st)
    cpdef _client_line(self, _SideState st, Line line)
    # (``content`` is a line's ``bytes``: its code's digits read as C integers, its text decoded
    # from offset ``at`` without a copy)
    @cython.locals(content=bytes, at=Py_ssize_t)
    cpdef _server_line(self, _SideState st, Line line)
    cpdef _push_pending(self, cmd)
    cpdef _srv_push(self, cmd)
    cpdef _claim(self)
    cpdef _body_data(self, _SideState st, data, start)
    cpdef _client_reads(self, reply, drain=*)
    # once per reply: called through the type's table, the flags C ints (each only ever True or
    # False in the .py), the lines a tuple (docs/performance.md, "Twenty-third session")
    @cython.locals(lines=tuple, damaged=bint)
    cpdef _finish_reply(self, last=*)
    @cython.locals(greeting=bint, stray=bint, for_lost=bint, gap_unmatched=bint, lone=bint,
                   idx=Py_ssize_t, i=Py_ssize_t)
    cpdef _pair_reply(self, tuple lines, last, bint damaged, bint helo_fallback)
