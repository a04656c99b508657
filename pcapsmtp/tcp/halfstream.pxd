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

