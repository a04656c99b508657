# Augmenting declarations for the compiled build of halfstream.py (Cython, pure-Python mode;
# setup.py). The .py stays the reference and what runs without the build: this file only makes
# ``HalfStream`` an extension type whose attributes are fields of its C struct, so that its
# methods read and write ``self.x`` directly instead of through a generic attribute look-up
# (about 200 instructions each, docs/performance.md, "Fifteenth session"). Every attribute
# keeps the Python value the .py stores (offsets and sequence numbers stay Python ints, None
# where the .py allows it); only the six flags, which the source only ever sets to True or
# False, are C ints (``bint``: read back as True or False). ``public``: the reassembler and
# the tests read and set them as before.

cdef class HalfStream:
    cdef public object stream, side, stats, max_ooo, retain
    cdef public object base, next_off, next_seq
    cdef public list ooo
    cdef public object ooo_bytes, history, history_bytes
    cdef public object fin_off, fin_frame, fin_ts, fin_seq
    cdef public bint ended
    cdef public object ack_seq, acked_ts, acked_frame, acked_fin, last_frame, last_ts
    cdef public bint ack_timed
    cdef public bint syn_seen, captured, soft
    cdef public object soft_segs, soft_ts
    cdef public bint soft_fixed
    cdef public object late_segments, late_bytes, late_window_ns, resent_end
    cdef public object ttl_lo, ttl_hi, ttl_n, ttl_first, ttl_last, hint
    cdef public list unproven


    # The methods the compiled reassembler (which cimports this type) calls for every segment
    # of a candidate, and those they call in turn: ``cpdef``, a C call through the type's table
    # where the receiver is typed (``self``, the reassembler's ``half`` and ``peer``), not a
    # method look-up and a Python call of about 300 to 600 instructions each. Called from
    # Python (the tests, an untyped receiver), they are the same methods. ``out`` is the list
    # of events every caller passes.
    cpdef _off(self, seq)
    cpdef _set_base(self, seq)
    cpdef syn(self, seq)
    cpdef note_ttl(self, ttl, frame)
    cpdef note_ack(self, seq)
    cpdef sent(self, seq, frame, ts)
    cpdef reset_past(self, seq, ttl)
    cpdef _reset_gap(self, seq, ttl)
    cpdef seen(self, seq, list out)
    cpdef catch_up(self, strict, frame, ts, list out, spare=*)
    cpdef _max_ack_off(self)
    cpdef data(self, seq, payload, missing, frame, ts, list out, ack=*, age=*)
    cpdef _soft_data(self, seq, payload, missing, frame, ts, list out, ack=*, age=*)
    cpdef settle(self, list out)
    cpdef fin(self, seq_after, frame, ts, list out)
    cpdef _check_fin(self, list out)
    cpdef reset(self, frame, ts, list out, ttl, seq)
    cpdef flush(self, list out)
    cpdef _release(self)
    cpdef _advance(self, off)
    cpdef _gap(self, off, length, frame, ts, list out, cause=*)
    cpdef _deliver(self, off, payload, missing, frame, ts, list out, ack, age)
    cpdef _compare_old(self, off, payload, frame, ts, list out)
    cpdef _insert(self, s, e, data, frame, ts, list out, ack, age)
    cpdef _drain(self, list out)
    cpdef _flush_buffer(self, list out)
