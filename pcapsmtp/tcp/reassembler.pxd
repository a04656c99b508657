# Augmenting declarations for the compiled build of reassembler.py (Cython, pure-Python mode;
# setup.py). The .py stays the reference and what runs without the build: this file makes
# ``Flow`` and ``TcpReassembler`` extension types whose attributes are fields of their C
# structs, and types the locals of the two methods every segment of a candidate goes through,
# so that they read the flow's and the two HalfStreams' fields directly (halfstream.pxd)
# instead of through a generic attribute look-up of about 200 instructions each
# (docs/performance.md, "Fifteenth session"). Values stay the Python objects the .py stores.
# Because of the cimport, the compiled reassembler runs only beside the compiled halfstream
# (pcapsmtp/__init__.py, ``_NEEDS``). (A cpdef method holds no generator expression: Cython
# does not compile closures inside one.)

cimport cython
from pcapsmtp.tcp.halfstream cimport HalfStream
# The segment an extension type (model.pxd, tcp/streams.pxd): its fields read as C fields where
# it is typed below. So the compiled reassembler runs only beside the compiled model and streams
# (``_NEEDS``). (Cimported under other names: the module's ``TcpSegment`` and ``KeyedSegment``,
# which it re-exports, stay the Python names it imports.)
from pcapsmtp.model cimport TcpSegment as _Seg
from pcapsmtp.tcp.streams cimport KeyedSegment as _KSeg, StreamTable as _Table

# The TCP flag bits the per-segment methods test, C ints (small: where a Python int is needed
# it is the interpreter's cached one), so that ``flags & _ACK`` with ``flags`` typed below is
# a C operation, not a Python one of about 70 instructions.
cdef int _FIN, _SYN, _RST, _ACK, _FIN_RST, _SYNACK, _SYN_FIN_RST

cdef class Flow:
    cdef public object info, conv
    cdef public tuple halves
    cdef public object sides, last_ts, last_frame
    cdef public list held
    cdef public object held_bytes
    cdef public list nheld, data_ack, data_end
    cdef public object first_for
    cdef public bint blind, rst_held
    cdef public list challenged
    cdef public list held_end

cdef class TcpReassembler:
    cdef public object config, stats, _flows, _pending, _ports, countdown, _last_ts
    # (its two generations read as C fields by ``_segment``)
    cdef public _Table table
    cdef public object _partition, _watch

    # Every segment fed goes through it: the young generation's look-up a dict's (not a method
    # look-up and a Python call), the direction and the flags C ints.
    @cython.locals(young=dict, d=int, flags=int, ks=_KSeg, table=_Table)
    cpdef _segment(self, _Seg seg, list out)

    # Every segment fed: its time read as a C field.
    cpdef list feed(self, _Seg seg)

    # (``d`` a C int: the direction, 0 or 1, as every caller passes it; ``flags`` the segment's
    # flag byte and ``ttl`` its TTL or hop limit, 0 to 255)
    @cython.locals(peer=HalfStream, held=list, flags=int, h=_Seg)
    cpdef _flow_segment(self, Flow flow, int d, _Seg seg, list out)

    @cython.locals(halves=tuple, half=HalfStream, peer=HalfStream, other=HalfStream, flags=int,
                   ttl=int, data_ack=list, data_end=list)
    cpdef _process(self, Flow flow, int d, _Seg seg, list out, gaps=*)

    # (a reset that ends its side: the two halves' fields C reads, as in ``_process``, whose
    # code this was)
    @cython.locals(half=HalfStream, peer=HalfStream)
    cpdef _reset_ends(self, Flow flow, int d, _Seg seg, list out)
