# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The file loop, compiled: the twin of ``engine/hotloop.py`` (the readable reference), built
by ``pip install`` when a C compiler is there (``setup.py``; optional). Same contract and the
same result on every input (``tests/perf/test_compiled_equivalence.py``); what differs is only
how the work is done:

- the Ethernet, IPv4/IPv6 and TCP header fields are read from the record buffer in C, not by
  ``struct``;
- the table key is made in one step from the address and port bytes (the same integer as
  ``tcp.streams.int_key``);
- a plain pcap file is walked in its read buffer (``capture.pcapfile.PcapRecords``: the
  record headers are read here, the buffer is refilled by the capture layer's ``more``),
  instead of taking a Python tuple per record from its ``views`` generator; pcapng comes as
  record views, as in the twin;
- ``StreamTable.classify`` (the table's part of a segment: numbering work only, or feed it)
  is done here in C, ``TableClassifier``: the packed entry (tcp/streams.py's layout, wider
  than 64 bits) is read into five 64-bit words, its fields are tested and set there, and the
  result is one new ``int``. Same decisions, same table, statistics and closing bookkeeping
  (``tests/perf/test_compiled_classify.py`` drives both with the same random segments); the
  table's own ``ended`` and ``creation_time`` are called as ``classify`` calls them. What the
  words cannot hold (a timestamp or stream counter past 63 bits) goes to
  ``StreamTable.classify`` itself;
- a segment the reassembler must see is built by ``KeyedSegment.__new__`` and C stores into its
  fields (``_keyed_segment``; an extension type, tcp/streams.pxd), not by calling the class.

Everything else (the decoder for other frames, the reassembler, the SMTP analysis) is the same
Python code for both loops.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.dict cimport PyDict_GetItem
from cpython.long cimport (
    PyLong_CheckExact, PyLong_FromLongLong, PyLong_FromUnsignedLong, PyLong_FromUnsignedLongLong)
from cpython.object cimport PyObject
from libc.string cimport memcmp, memcpy, memset

from pcapsmtp.engine.hotloop import keyed
from pcapsmtp.capture.decode import TUNNEL_IP_PROTOCOLS, TUNNEL_UDP_PORTS
from pcapsmtp.capture.pcapfile import MAX_CAPLEN
from pcapsmtp.tcp.detect import HEAD_BYTES, may_matter
from pcapsmtp.tcp.streams import (
    AK, AK_SHIFT, AKD, B0, B1, CLOSED, ENDED, F_SHIFT, FIN0, FIN1, HAS0, HAS1, IGNORED,
    KEEP_IGNORED, KNOWN_CLOSED, KNOWN_IGNORED, KNOWN_MASK, KNOWN_UNDECIDED, M40, M48, S_SHIFT,
    SA0, SA1, ST, SYN0, SYN1, T_SHIFT, UNDECIDED)
# The table an extension type (tcp/streams.pxd): its two generations and the watched 4-tuples
# are read as C fields, not through a generic attribute look-up per segment. So this loop runs
# only beside the compiled tcp.streams (engine.accel), and refuses to load beside another
# StreamTable (``_table_is_ours``).
from pcapsmtp.tcp.streams cimport StreamTable
# A segment the reassembler must see is a ``KeyedSegment``, an extension type too
# (tcp/streams.pxd): made here by ``__new__`` and C field stores (``_keyed_segment``).
from pcapsmtp.tcp.streams cimport KeyedSegment
from pcapsmtp.tcp import streams as _py_streams
from pcapsmtp.tcp.config import ReassemblyConfig, ReassemblyStats

cdef extern from "Python.h":
    object _PyLong_FromByteArray(const unsigned char* data, size_t n, int little_endian,
                                 int is_signed)
    unsigned long long PyLong_AsUnsignedLongLongMask(object o) except? <unsigned long long>-1

cdef object _keyed_segment(object frame, object ts_ns, object src, object sport, object dst,
                           object dport, object seq, object ack, object flags, object payload,
                           object missing, object key, object d, object ttl):
    """``KeyedSegment(frame, ..., key, d, ttl)``: made by its type's ``__new__`` (no
    ``__init__``: no Python call, no argument parsing) and its fields stored as C fields
    (tcp/streams.pxd, model.pxd), as its ``__init__`` stores them."""
    cdef KeyedSegment s = KeyedSegment.__new__(KeyedSegment)
    s.frame = frame
    s.ts_ns = ts_ns
    s.src = src
    s.sport = sport
    s.dst = dst
    s.dport = dport
    s.seq = seq
    s.ack = ack
    s.flags = flags
    s.payload = payload
    s.missing = missing
    s.ttl = ttl
    s.key = key
    s.d = d
    return s


def keyed_segment(frame, ts_ns, src, sport, dst, dport, seq, ack, flags, payload, missing, key,
                  d, ttl):
    """``KeyedSegment(...)`` as the loop builds it (tests/perf/test_compiled_segment.py)."""
    return _keyed_segment(frame, ts_ns, src, sport, dst, dport, seq, ack, flags, payload, missing,
                          key, d, ttl)


cdef unsigned long long K_MASK = KNOWN_MASK
cdef unsigned long long K_IGNORED = KNOWN_IGNORED
cdef unsigned long long K_UNDECIDED = KNOWN_UNDECIDED
cdef unsigned long long K_ENDED = ENDED
cdef unsigned long long K_FIN0 = FIN0
cdef unsigned long long K_FIN1 = FIN1
cdef Py_ssize_t K_MAXCAP = MAX_CAPLEN

# IPv4 packets that may carry a tunnel go to the general decoder (capture.decode's sets)
cdef unsigned char TUNNEL_PROTO[256]
cdef unsigned int TUNNEL_PORT[8]
cdef int N_TUNNEL_PORTS = 0
for _i in range(256):
    TUNNEL_PROTO[_i] = _i in TUNNEL_IP_PROTOCOLS
for _i in sorted(TUNNEL_UDP_PORTS)[:8]:
    TUNNEL_PORT[N_TUNNEL_PORTS] = _i
    N_TUNNEL_PORTS += 1


cdef inline bint _tunnel4(const unsigned char* q) noexcept:
    """An Ethernet frame ``q`` holding IPv4 without options (54 bytes at least), not TCP: may
    it carry a tunnel? (UDP fragments all may: the decoder reassembles a tunnel's.)"""
    cdef unsigned int sport, dport
    cdef int i
    if TUNNEL_PROTO[q[23]]:
        return 1
    if q[23] != 17:
        return 0
    if be16(q + 20) & 0x3FFF:
        return 1
    sport = be16(q + 34)
    dport = be16(q + 36)
    for i in range(N_TUNNEL_PORTS):
        if sport == TUNNEL_PORT[i] or dport == TUNNEL_PORT[i]:
            return 1
    return 0


cdef inline unsigned int be16(const unsigned char* p) noexcept:
    return (p[0] << 8) | p[1]


cdef inline unsigned int be32(const unsigned char* p) noexcept:
    return (<unsigned int>p[0] << 24) | (<unsigned int>p[1] << 16) | (<unsigned int>p[2] << 8) | p[3]



cdef inline unsigned int le32(const unsigned char* p) noexcept:
    return (<unsigned int>p[3] << 24) | (<unsigned int>p[2] << 16) | (<unsigned int>p[1] << 8) | p[0]


cdef inline const unsigned char* _bytes_of(object buf):
    if type(buf) is bytearray:
        return <const unsigned char*>PyByteArray_AS_STRING(buf)
    return <const unsigned char*>PyBytes_AS_STRING(buf)


cdef extern from *:
    """
    /* The int of kb[0:12], big-endian, unsigned: _PyLong_FromByteArray(kb, 12, 0, 0), an IPv4
       table key, with its 30-bit digits written directly (the generic conversion loops byte by
       byte: about 300 instructions a key). Elsewhere the generic conversion. */
    static PyObject *pcapsmtp_key96(const unsigned char *kb) {
        unsigned long long hi = 0, lo = 0, low64, top;
        int i;
        for (i = 0; i < 8; i++) hi = (hi << 8) | kb[i];
        for (i = 8; i < 12; i++) lo = (lo << 8) | kb[i];
        low64 = (hi << 32) | lo;            /* bits 0..63 */
        top = hi >> 32;                     /* bits 64..95 */
        if (top == 0)
            return PyLong_FromUnsignedLongLong(low64);
    #if PyLong_SHIFT == 30 && !defined(Py_LIMITED_API) && !defined(PYPY_VERSION)
        {
            digit d2 = (digit)(((low64 >> 60) | (top << 4)) & PyLong_MASK);
            digit d3 = (digit)(top >> 26);
            Py_ssize_t n = d3 ? 4 : 3;      /* top != 0: a digit from bit 60 on is not 0 */
            PyLongObject *r = _PyLong_New(n);
            digit *dg;
            if (r == NULL)
                return NULL;
        #if PY_VERSION_HEX >= 0x030C0000
            dg = r->long_value.ob_digit;
        #else
            dg = r->ob_digit;
        #endif
            dg[0] = (digit)(low64 & PyLong_MASK);
            dg[1] = (digit)((low64 >> 30) & PyLong_MASK);
            dg[2] = d2;
            if (n == 4)
                dg[3] = d3;
            return (PyObject *)r;
        }
    #else
        return _PyLong_FromByteArray(kb, 12, 0, 0);
    #endif
    }
    """
    object pcapsmtp_key96(const unsigned char* kb)


cdef inline object _table_key(const unsigned char* q, Py_ssize_t a, Py_ssize_t alen,
                               Py_ssize_t t, int* d):
    """The table key of a segment (the integer ``tcp.streams.int_key`` makes), from its
    addresses at ``q[a:a + 2 * alen]`` (IPv4: 4 bytes each, IPv6: 16) and its TCP header at
    ``q[t:]``; its direction (0: source first in the key) in ``d[0]``."""
    cdef unsigned char kb[37]
    cdef Py_ssize_t n = 0
    cdef unsigned int sport = be16(q + t), dport = be16(q + t + 2)
    cdef int dd
    if sport < dport:
        dd = 0
    elif sport > dport:
        dd = 1
    else:
        dd = 0 if memcmp(q + a, q + a + alen, alen) < 0 else 1
    if alen == 16:
        kb[0] = 0x04            # V6KEY: bit 290
        n = 1
    if dd == 0:
        memcpy(kb + n, q + a, 2 * alen)
        memcpy(kb + n + 2 * alen, q + t, 4)
    else:
        memcpy(kb + n, q + a + alen, alen)
        memcpy(kb + n + alen, q + a, alen)
        memcpy(kb + n + 2 * alen, q + t + 2, 2)
        memcpy(kb + n + 2 * alen + 2, q + t, 2)
    d[0] = dd
    if alen == 4:
        return pcapsmtp_key96(kb)
    return _PyLong_FromByteArray(kb, n + 2 * alen + 4, 0, 0)


# --------------------------------------------------------------------------------------------
# StreamTable.classify in C

cdef extern from *:
    """
    static int pcapsmtp_long_words(PyObject *v, unsigned char *out, size_t n) {
    #if PY_VERSION_HEX >= 0x030D0000
        return _PyLong_AsByteArray((PyLongObject *)v, out, n, 1, 1, 1);
    #else
        return _PyLong_AsByteArray((PyLongObject *)v, out, n, 1, 1);
    #endif
    }
    """
    int pcapsmtp_long_words(object v, unsigned char* out, size_t n)

from cpython.exc cimport PyErr_Clear
from cpython.dict cimport PyDict_Contains
from cpython.long cimport PyLong_AsLongLongAndOverflow

# A packed entry (tcp/streams.py's layout) as NW little-endian 64-bit words, two's complement
# (the first-timestamp field is signed and open-ended: its sign fills the top word).
cdef enum:
    NW = 5
ctypedef unsigned long long u64

cdef int P_B0 = B0, P_B1 = B1, P_S = S_SHIFT, P_F = F_SHIFT, P_AKS = AK_SHIFT, P_T = T_SHIFT
cdef int P_AK = AK.bit_length() - 1, P_AKD = AKD.bit_length() - 1
cdef u64 C_ST = ST, C_HAS0 = HAS0, C_HAS1 = HAS1, C_SYN0 = SYN0, C_SYN1 = SYN1
cdef u64 C_SA0 = SA0, C_SA1 = SA1, C_UNDECIDED = UNDECIDED, C_IGNORED = IGNORED
cdef u64 C_CLOSED = CLOSED, C_KCLOSED = KNOWN_CLOSED
cdef u64 C_M40 = M40, C_M48 = M48
cdef Py_ssize_t C_HEAD = HEAD_BYTES
cdef u64 C_KEEP[NW]
cdef u64 C_KEEP_S[NW]          # KEEP_IGNORED and the stream index field

# the layout this code assumes (tcp/streams.py's docstring): checked once, at import
assert max(ST, HAS0, HAS1, SYN0, SYN1, SA0, SA1, ENDED) < 1 << 10 <= 1 << B0
assert B0 + 32 <= B1 and B1 + 32 <= S_SHIFT and S_SHIFT + 40 <= F_SHIFT
assert F_SHIFT + 48 <= P_AK < P_AKD < AK_SHIFT and AK_SHIFT + 32 <= T_SHIFT
assert T_SHIFT + 64 < NW * 64 and T_SHIFT % 64 + 64 > 64 and 0 < HEAD_BYTES <= 64
assert M40 == (1 << 40) - 1 and M48 == (1 << 48) - 1 and 0 <= KEEP_IGNORED < 1 << (S_SHIFT)


cdef inline void _store(const u64* w, unsigned char* b) noexcept:
    cdef int i, j
    for i in range(NW):
        for j in range(8):
            b[8 * i + j] = <unsigned char>(w[i] >> (8 * j))


cdef inline void _load(u64* w, const unsigned char* b) noexcept:
    cdef int i, j
    for i in range(NW):
        w[i] = 0
        for j in range(8):
            w[i] |= (<u64>b[8 * i + j]) << (8 * j)


cdef inline u64 _get(const u64* w, int off, int n) noexcept:
    """The ``n``-bit field (n < 64) at bit ``off`` of the packed entry ``w``."""
    cdef int i = off >> 6, s = off & 63
    cdef u64 x = w[i] >> s
    if s and s + n > 64:
        x |= w[i + 1] << (64 - s)
    return x & ((<u64>1 << n) - 1)


cdef inline void _or(u64* w, int off, u64 val) noexcept:
    """``w |= val << off`` (``val`` below 2**64, its field inside the words)."""
    cdef int i = off >> 6, s = off & 63
    w[i] |= val << s
    if s and i + 1 < NW:
        w[i + 1] |= val >> (64 - s)


cdef inline bint _bit(const u64* w, int pos) noexcept:
    return (w[pos >> 6] >> (pos & 63)) & 1


cdef inline object _to_int(const u64* w):
    cdef unsigned char b[NW * 8]
    _store(w, b)
    return _PyLong_FromByteArray(b, NW * 8, 1, 1)


cdef int _from_int(object v, u64* w) except -1:
    """``w`` from the packed entry ``v``: 0, or 1 when it does not fit (the Python code
    then decides)."""
    cdef unsigned char b[NW * 8]
    if pcapsmtp_long_words(v, b, NW * 8) < 0:
        PyErr_Clear()
        return 1
    _load(w, b)
    return 0


_tmp = KEEP_IGNORED
for _i in range(NW):
    C_KEEP[_i] = _tmp & 0xFFFFFFFFFFFFFFFF
    C_KEEP_S[_i] = C_KEEP[_i]
    _tmp >>= 64
_or(C_KEEP_S, P_S, C_M40)


cdef bint _server_start(const unsigned char* h) noexcept:
    """``h[:4]`` is one of detect's server starts: 220, 421 or 554, then space or dash."""
    return ((h[3] == 0x20 or h[3] == 0x2D)
            and ((h[0] == 0x32 and h[1] == 0x32 and h[2] == 0x30)
                 or (h[0] == 0x34 and h[1] == 0x32 and h[2] == 0x31)
                 or (h[0] == 0x35 and h[1] == 0x35 and h[2] == 0x34)))


cdef inline unsigned char _up(unsigned char c) noexcept:
    return c - 32 if 0x61 <= c <= 0x7A else c


cdef bint _client_prefix(const unsigned char* h, Py_ssize_t n) noexcept:
    """``h[:n].upper()`` (n <= 4) is a prefix of EHLO, HELO or LHLO."""
    cdef const char* verbs = b"EHLOHELOLHLO"
    cdef int v
    cdef Py_ssize_t i
    for v in range(3):
        for i in range(n):
            if _up(h[i]) != <unsigned char>verbs[4 * v + i]:
                break
        else:
            return 1
    return 0


cdef bint _may_matter(const unsigned char* h, Py_ssize_t n) noexcept:
    """``tcp.detect.may_matter(h[:n])`` for 1 <= n <= HEAD_BYTES (the same rules:
    ``classify_start(head) != START_OTHER``; ``tests/perf/test_compiled_classify.py``)."""
    cdef const char* conn = b"CONNECT "
    cdef Py_ssize_t i
    cdef const char* servers = b"220421554"
    cdef int k
    if n >= 4:
        if _server_start(h):
            return 1
        if _client_prefix(h, 4):
            if n >= 5:
                return h[4] == 0x20 or h[4] == 0x0D or h[4] == 0x0A or h[4] == 0x09
            return 1
    else:
        for k in range(3):          # a proper prefix of a server start (digits only)
            for i in range(n):
                if h[i] != <unsigned char>servers[3 * k + i]:
                    break
            else:
                return 1
        if _client_prefix(h, n):
            return 1
    # tunnel_kind: the start of an HTTP CONNECT request, or a SOCKS5 greeting
    for i in range(n if n < 8 else 8):
        if h[i] != <unsigned char>conn[i]:
            break
    else:
        return 1
    return h[0] == 5 and (n < 2 or 1 <= h[1] <= 16)


def head_may_matter(bytes head):
    """``tcp.detect.may_matter(head)`` as the compiled loop reads it (``head``: 1 to
    ``HEAD_BYTES`` bytes), for the tests."""
    if not 1 <= len(head) <= C_HEAD:
        raise ValueError("head_may_matter takes 1 to HEAD_BYTES bytes")
    return bool(_may_matter(<const unsigned char*>PyBytes_AS_STRING(head), len(head)))


def table_key(bytes frame):
    """``(key, direction)`` as the compiled loop makes them (``_table_key``) for an Ethernet
    frame of IPv4 without options or IPv6 without extension headers, and TCP, for the tests
    (``tcp.streams.int_key`` is the reference)."""
    cdef const unsigned char* q = <const unsigned char*>PyBytes_AS_STRING(frame)
    cdef int d = 0
    if len(frame) >= 54 and be16(q + 12) == 0x0800 and q[14] == 0x45 and q[23] == 6:
        key = _table_key(q, 26, 4, 34, &d)
    elif len(frame) >= 74 and be16(q + 12) == 0x86DD and q[20] == 6:
        key = _table_key(q, 22, 16, 54, &d)
    else:
        raise ValueError("table_key takes an Ethernet frame of IPv4 or IPv6 and TCP")
    return key, d


cdef inline object _int_or(object v, u64 c):
    """``v``, or when it is None the int ``c`` (a timestamp of the pcap walk, made an int only
    where one is handed on)."""
    return v if v is not None else PyLong_FromUnsignedLongLong(c)


cdef inline object _lint_or(object v, long long c):
    """``v``, or when it is None the int ``c`` (a frame number of the pcap walk)."""
    return v if v is not None else PyLong_FromLongLong(c)


cdef bint _table_is_ours() except -1:
    """Whether this process's ``StreamTable`` has the C layout tcp/streams.pxd declares (its
    extension built from it): its ``.py``, or an extension built before the ``.pxd``, make
    instances of the same size whose fields lie elsewhere, which Cython's import of the type
    does not tell. A table's C fields, read as this module reads them, must be its attributes."""
    stats = ReassemblyStats()
    t = _py_streams.StreamTable(ReassemblyConfig(), stats, None)
    cdef StreamTable c = <StreamTable>t
    return (<object>c.young is t.young and <object>c.old is t.old
            and <object>c.watched is t.watched and c.stats is stats)


if not _table_is_ours():
    raise ImportError("the compiled file loop reads the C fields of tcp/streams.pxd's StreamTable, "
                      "and pcapsmtp.tcp.streams is not the extension built from it")


cdef class TableClassifier:
    """``StreamTable.classify`` (tcp/streams.py, the readable reference) done in C on the
    packed entries, for one table: the same decision and the same changes to the table, its
    statistics and its closing bookkeeping (``ended``, ``creation_time``, which stay the
    table's own Python methods). What it cannot represent (an entry or a timestamp wider than
    its words, a stream index past its field) it hands to ``StreamTable.classify`` itself.
    ``could_start`` when it is ``tcp.detect.may_matter`` is read in C (``_may_matter``),
    any other one is called. The table's ``ports`` are read once."""
    cdef StreamTable table
    cdef object stats, classify_py
    cdef unsigned char portbits[8192]
    cdef bint ports_any           # ports not all small ints: ask the set

    def __cinit__(self, StreamTable table):
        self.table = table
        self.stats = table.stats
        self.classify_py = table.classify
        self.ports_any = 0
        memset(self.portbits, 0, sizeof(self.portbits))
        for p in table.ports:
            if type(p) is int and 0 <= p < 65536:
                self.portbits[p >> 3] |= 1 << (p & 7)
            else:
                self.ports_any = 1

    cdef inline bint _port(self, unsigned int port):
        if self.ports_any:
            return port in self.table.ports
        return (self.portbits[port >> 3] >> (port & 7)) & 1

    def classify(self, key, int d, unsigned int seq, unsigned int flags, buf, Py_ssize_t pstart,
                 Py_ssize_t pend, frame, ts_ns, ack):
        """``StreamTable.classify``'s signature and result (``ack`` a 32-bit int), for the
        tests."""
        b = bytes(buf)
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(b)
        return self.run(key, d, seq, flags, p + pstart, pend - pstart, b, pstart, frame, 0,
                        ts_ns, 0, ack, (key & 0xFFFFFFFF) >> 16, key & 0xFFFF)

    cdef int run(self, object key, int d, unsigned int seq, unsigned int flags,
                 const unsigned char* pay, Py_ssize_t plen, object buf, Py_ssize_t pstart,
                 object frame, long long frame_c, object ts_ns, u64 ts_c, unsigned int ack,
                 unsigned int port_a, unsigned int port_b) except -1:
        """1 (``SKIPPED``) or 0 (``FEED``), as ``StreamTable.classify`` for the segment whose
        payload ``pay[:plen]`` is ``buf[pstart:pstart + plen]``; ``port_a``/``port_b``: its
        two ports. The frame number and the timestamp come as ints (``frame``, ``ts_ns``) or,
        when those are None, as ``frame_c`` and ``ts_c`` (the pcap walk's), made ints only
        where they are handed on: most segments need neither."""
        cdef PyObject* pv
        cdef u64 lo, m, bits, has
        cdef u64 w[NW]
        cdef u64 w0[NW]
        cdef int sh, osh, overflow = 0, i
        cdef bint new, changed, st_undecided
        cdef long long tsl
        cdef unsigned int base
        cdef Py_ssize_t hlen
        cdef StreamTable table = self.table
        cdef dict young = table.young
        pv = PyDict_GetItem(young, key)
        if pv is NULL:
            v = None
        else:
            v = <object>pv              # (a reference of its own: Python code runs below)
            if not PyLong_CheckExact(v):
                return 0                # an object: the reassembler's candidate or tunnel
        if v is not None and not flags & 0x02:
            lo = PyLong_AsUnsignedLongLongMask(v)
            m = lo & K_MASK
            if m == K_IGNORED:
                if flags & 0x05:        # FIN or RST: its closing bits
                    bits = K_ENDED if flags & 0x04 else K_FIN1 if d else K_FIN0
                    if lo & bits != bits:
                        e = v | bits
                        young[key] = e
                        if PyLong_AsUnsignedLongLongMask(e) & K_ENDED == K_ENDED:
                            table.ended(key, e, _int_or(ts_ns, ts_c))
                return 1
            if m == K_UNDECIDED and plen == 0 and not flags & 0x05:
                return 1
            if m == C_KCLOSED:
                watched = table.watched
                if watched and PyDict_Contains(watched, key):
                    return 0            # after a reset: the reassembler watches the 4-tuple
                self.stats.after_close_segments += 1
                return 1
        if self._port(port_a) or self._port(port_b):
            return 0
        hlen = plen if plen < C_HEAD else C_HEAD
        cs = None
        if hlen:
            cs = table.could_start
            if cs is not None:
                if cs is may_matter:
                    if _may_matter(pay, hlen):
                        return 0
                elif cs(PyBytes_FromStringAndSize(<const char*>pay, hlen)):
                    return 0
        # what the words cannot hold goes to the Python code (nothing has changed yet)
        if ts_ns is not None:
            tsl = PyLong_AsLongLongAndOverflow(ts_ns, &overflow)
        elif ts_c > <u64>0x7FFFFFFFFFFFFFFF:
            overflow = 1
        else:
            tsl = <long long>ts_c
        if overflow:
            return self.classify_py(key, d, seq, flags, buf, pstart, pstart + plen,
                                    _lint_or(frame, frame_c), _int_or(ts_ns, ts_c), ack)
        if v is None:
            if PyDict_Contains(table.old, key):
                return 0
            watched = table.watched
            if watched and PyDict_Contains(watched, key):
                return 0
            if not self._stream_fits():
                return self.classify_py(key, d, seq, flags, buf, pstart, pstart + plen,
                                        _lint_or(frame, frame_c), _int_or(ts_ns, ts_c), ack)
            table.creation_time(_int_or(ts_ns, ts_c))
            if len(young) + len(table.old) >= table.max_tracked:
                return 0
            self._new_stream(w, frame, frame_c, tsl)
            new = 1
        else:
            watched = table.watched
            if watched and PyDict_Contains(watched, key):
                return 0
            if _from_int(v, w):
                return self.classify_py(key, d, seq, flags, buf, pstart, pstart + plen,
                                        _lint_or(frame, frame_c), _int_or(ts_ns, ts_c), ack)
            new = 0
        memcpy(w0, w, sizeof(w))
        if d == 0:
            has, sh, osh = C_HAS0, P_B0, P_B1
        else:
            has, sh, osh = C_HAS1, P_B1, P_B0
        st_undecided = w[0] & C_ST == C_UNDECIDED
        # stale_for_syn: the old conversation's, after the reuse: numbering work only
        if (not w[0] & has and st_undecided and flags & 0x12 == 0x10
                and w[0] & (C_SYN1 if d == 0 else C_SYN0)
                and (<unsigned int>(ack - <unsigned int>_get(w, osh, 32) - 1)) >= 1u << 30):
            return 1
        if hlen and st_undecided and cs is not None:
            # first_payload_late, start_awaits_ack
            if _late(w, d, flags, seq, ack) or _awaits_ack(w, d, flags):
                return 0
        if w[0] & has:
            base = <unsigned int>_get(w, sh, 32)
            # starts_anew
            if (flags & 0x02 and base != seq
                    and (not flags & 0x10 or w[0] & K_ENDED == K_ENDED
                         or w[0] & C_ST == C_CLOSED)):
                if not self._stream_fits():     # (nothing has changed yet)
                    return self.classify_py(key, d, seq, flags, buf, pstart, pstart + plen,
                                            _lint_or(frame, frame_c), _int_or(ts_ns, ts_c), ack)
                self.stats.reused += 1
                young.pop(key, None)
                self._new_stream(w, frame, frame_c, tsl)
                w[0] |= has
                _or(w, sh, seq)
        else:
            w[0] |= has
            _or(w, sh, seq if flags & 0x02 else <unsigned int>(seq - 1))
        if w[0] & C_ST == C_CLOSED:
            self.stats.after_close_segments += 1
        else:
            if w[0] & C_ST == C_UNDECIDED:
                if flags & 0x02:
                    if flags & 0x10:
                        if _get(w, sh, 32) == seq:
                            w[0] |= C_SA0 if d == 0 else C_SA1
                    else:
                        w[0] |= C_SYN0 if d == 0 else C_SYN1
                if flags & 0x10:
                    _note_start(w, d, flags, seq, ack, plen > 0)
                if hlen:
                    for i in range(NW):
                        w[i] &= C_KEEP_S[i]
                    w[0] |= C_IGNORED
            if flags & 0x05:
                w[0] |= K_ENDED if flags & 0x04 else (K_FIN0 if d == 0 else K_FIN1)
        if new:
            changed = 0
            for i in range(NW):
                if w[i] != 0xFFFFFFFFFFFFFFFF:
                    changed = 1
        else:
            changed = memcmp(w, w0, sizeof(w)) != 0
        if changed:
            e = _to_int(w)
            young[key] = e
            if w[0] & K_ENDED == K_ENDED:
                table.ended(key, e, _int_or(ts_ns, ts_c))
        return 1

    cdef bint _stream_fits(self) except -1:
        """Whether the next stream index is a non-negative 63-bit int (``_new_stream``)."""
        cdef int overflow = 0
        ns = self.table.next_stream
        return (PyLong_CheckExact(ns) and PyLong_AsLongLongAndOverflow(ns, &overflow) >= 0
                and not overflow)

    cdef int _new_stream(self, u64* w, object frame, long long frame_c, long long ts) except -1:
        """``StreamTable.new_stream`` (the next index, counted in ``flows_seen``) into ``w``
        (the frame number ``frame``, or ``frame_c`` when it is None)."""
        cdef int i
        cdef StreamTable table = self.table
        stream = table.next_stream
        table.next_stream = stream + 1
        self.stats.flows_seen += 1
        memset(w, 0, NW * sizeof(u64))
        _or(w, P_S, <u64>stream)
        _or(w, P_F, (PyLong_AsUnsignedLongLongMask(frame) if frame is not None else <u64>frame_c)
            & C_M48)
        # ts << T_SHIFT, signed: the sign fills the words above
        w[P_T >> 6] |= (<u64>ts) << (P_T & 63)
        w[(P_T >> 6) + 1] |= <u64>(ts >> (64 - (P_T & 63)))
        for i in range((P_T >> 6) + 2, NW):
            w[i] = 0xFFFFFFFFFFFFFFFF if ts < 0 else 0
        return 0


cdef inline bint _late(const u64* w, int d, unsigned int flags, unsigned int seq,
                       unsigned int ack) noexcept:
    """``streams.first_payload_late`` (ack at hand)."""
    cdef u64 mine, other
    cdef int sh, osh
    cdef unsigned int known
    if d == 0:
        mine, other, sh, osh = C_SYN0 | C_SA0, C_SYN1 | C_SA1, P_B0, P_B1
    else:
        mine, other, sh, osh = C_SYN1 | C_SA1, C_SYN0 | C_SA0, P_B1, P_B0
    if w[0] & mine and not flags & 0x02 and seq != <unsigned int>(_get(w, sh, 32) + 1):
        return 1
    if flags & 0x10 and w[0] & other and ack != <unsigned int>(_get(w, osh, 32) + 1):
        return 1
    if not _bit(w, P_AK):
        return 0
    # late_for_acked
    known = <unsigned int>_get(w, P_AKS, 32)
    if _bit(w, P_AKD) == d:
        return not flags & 0x02 and seq != known
    return flags & 0x10 and ack != known


cdef inline bint _awaits_ack(const u64* w, int d, unsigned int flags) noexcept:
    """``streams.start_awaits_ack``."""
    cdef u64 other_syn = C_SYN1 if d == 0 else C_SYN0
    cdef u64 mine = C_HAS0 if d == 0 else C_HAS1
    return (w[0] & other_syn) != 0 and not w[0] & mine and not _bit(w, P_AK) and not flags & 0x02


cdef inline void _note_start(u64* w, int d, unsigned int flags, unsigned int seq,
                             unsigned int ack, bint payload) noexcept:
    """``streams.note_start`` (flags has ACK)."""
    cdef u64 mine_syn, mine_sa, other_syn, other_has
    cdef int sh
    cdef bint known
    if _bit(w, P_AK) or flags & 0x05:
        return
    if d == 0:
        mine_syn, mine_sa, other_syn, other_has, sh, known = C_SYN0, C_SA0, C_SYN1, C_HAS1, P_B0, 1
    else:
        mine_syn, mine_sa, other_syn, other_has, sh, known = C_SYN1, C_SA1, C_SYN0, C_HAS0, P_B1, 0
    if flags & 0x02:
        if not (w[0] & mine_sa and not w[0] & other_syn):
            return
    elif not (not payload and w[0] & mine_syn and not w[0] & other_has
              and seq == <unsigned int>(_get(w, sh, 32) + 1)):
        return
    _or(w, P_AK, 1)
    if known:
        _or(w, P_AKD, 1)
    _or(w, P_AKS, ack)


#: address pairs the loop remembers (``_Loop.pairs``), emptied when full
cdef Py_ssize_t _PAIRS_MAX = 4096


cdef class _Loop:
    """The loop's state: one record at a time (``record``), whoever walks the records."""
    cdef object an, an_feed, reasm, table, dec, decode_raw, addresses, addrs, done
    #: raw address bytes -> the decoder's (source, destination) text pair, asked of the decoder
    #: (``Decoder.addresses``, interpreted) once per pair of hosts, not once per segment fed
    cdef dict pairs
    cdef TableClassifier tc
    cdef object check, last_ts
    cdef u64 last_ts_c
    cdef bint has_last_ts
    cdef long long number
    cdef Py_ssize_t skipped, fast_frames, fast_tcp
    cdef long cd

    def __cinit__(self, fl):
        self.an = fl.an
        self.an_feed = self.an.feed
        self.reasm = self.an.reassembler
        self.table = self.reasm.table
        self.tc = TableClassifier(self.table)
        self.dec = fl.dec
        self.decode_raw = self.dec.decode_raw
        self.addresses = self.dec.addresses
        self.pairs = {}
        self.addrs = fl.addrs
        self.done = fl.done
        self.check = fl.check
        self.number = fl.frame_base
        self.last_ts = None
        self.last_ts_c = 0
        self.has_last_ts = 0
        self.skipped = 0
        self.fast_frames = 0
        self.fast_tcp = 0
        self.cd = self.reasm.countdown

    cdef int record(self, long long number, object ts_ns, u64 ts_c, object lt, object buf,
                    const unsigned char* p, Py_ssize_t hend, Py_ssize_t end,
                    object wirelen, unsigned int wirelen_c) except -1:
        """One record: ``p`` is ``buf``'s bytes, the record ``p[hend:end]``. The timestamp and
        the wire length come as ints (``ts_ns``, ``wirelen``) or, when those are None, as
        ``ts_c`` and ``wirelen_c`` (the pcap walk's: made ints only for what is handed on, as
        the frame number, since most records need none of them)."""
        cdef const unsigned char* q
        cdef Py_ssize_t ip_end, pstart, a0 = 0, a1 = 0, t = 0
        cdef unsigned int et, tot, ff, sport = 0, dport = 0, doff, flags = 0, plen
        cdef unsigned int seq = 0, ack = 0
        cdef int d = 0, ok
        self.number = number
        ok = 0
        if lt == 1 and end - hend >= 54:
            q = p + hend
            et = be16(q + 12)
            if et == 0x0800 and q[14] == 0x45 and q[23] != 6:
                if not _tunnel4(q):
                    self.fast_frames += 1     # not TCP, no tunnel: nothing to decode
                    return 0
                # a tunnel: the general decoder
            elif et == 0x0800 and q[14] == 0x45:
                tot = be16(q + 16)
                ff = be16(q + 20)
                doff = q[46]
                ip_end = hend + 14 + tot
                pstart = hend + 34 + ((doff >> 4) << 2)
                if not ff & 0x3FFF and ip_end <= end and hend + 54 <= pstart <= ip_end:
                    ok = 1
                    key = _table_key(q, 26, 4, 34, &d)
                    t = 34
                    a0 = hend + 26
                    a1 = hend + 34
            elif et == 0x86DD and end - hend >= 74:
                plen = be16(q + 18)
                if q[20] == 6 and q[14] >> 4 == 6 and plen:
                    doff = q[66]
                    ip_end = hend + 54 + plen
                    pstart = hend + 54 + ((doff >> 4) << 2)
                    if ip_end <= end and hend + 74 <= pstart <= ip_end:
                        ok = 1
                        key = _table_key(q, 22, 16, 54, &d)
                        t = 54
                        a0 = hend + 22
                        a1 = hend + 54
            if ok:
                sport = be16(q + t)
                dport = be16(q + t + 2)
                seq = be32(q + t + 4)
                ack = be32(q + t + 8)
                flags = q[t + 13]
                self.fast_frames += 1
                self.fast_tcp += 1
                self.cd -= 1
                if self.cd > 0:
                    if self.tc.run(key, d, seq, flags, p + pstart, ip_end - pstart, buf, pstart,
                                   None, number, ts_ns, ts_c, ack, sport, dport):
                        self.skipped += 1
                        self.last_ts = ts_ns
                        self.last_ts_c = ts_c
                        self.has_last_ts = 1
                        return 0
                # the reassembler must see it (with the TTL, IPv4, or the hop limit, IPv6,
                # just before the addresses)
                araw = PyBytes_FromStringAndSize(<const char*>p + a0, a1 - a0)
                pair = self.pairs.get(araw)
                if pair is None:
                    pair = self.addresses(araw)
                    if len(self.pairs) >= _PAIRS_MAX:
                        self.pairs.clear()
                    self.pairs[araw] = pair
                seg = _keyed_segment(
                    PyLong_FromLongLong(number), _int_or(ts_ns, ts_c), pair[0], sport, pair[1],
                    dport, seq, ack, flags,
                    PyBytes_FromStringAndSize(<const char*>p + pstart, ip_end - pstart), 0,
                    key, d, p[a0 - 4] if a1 - a0 == 8 else p[a0 - 1])
        if not ok:
            # everything else: the general decoder
            seg2 = self.decode_raw(lt, PyBytes_FromStringAndSize(<const char*>p + hend,
                                                                 end - hend),
                                   wirelen if wirelen is not None else PyLong_FromUnsignedLong(wirelen_c),
                                   PyLong_FromLongLong(number), _int_or(ts_ns, ts_c))
            if seg2 is None:
                return 0
            self.cd -= 1
            seg = keyed(seg2, self.addrs)
        if self.skipped:
            self.an.packets += self.skipped
            self.reasm.skipped(self.skipped, None)
            self.skipped = 0
        self.last_ts = None
        self.has_last_ts = 0
        self.reasm.countdown = self.cd + 1        # feed counts it
        r = self.an_feed(seg)
        self.cd = self.reasm.countdown
        if r:
            self.done.extend(r)
            if self.check is not None:
                self.check(self.done)
        return 0

    cdef finish(self, fl):
        """Hand the counts kept here to their owners (also after an error)."""
        fl.frames = self.number
        self.an.packets += self.skipped
        self.reasm.skipped(self.skipped, _int_or(self.last_ts, self.last_ts_c)
                           if self.has_last_ts else None)
        self.dec.count(self.fast_frames, self.fast_tcp)
        self.reasm.countdown = self.cd


cdef int _walk_pcap(_Loop st, pcap, progress) except -1:
    """The records of ``pcap`` (a ``PcapRecords``), read in its buffer: what its ``views``
    does, without a tuple per record."""
    h = pcap.header
    cdef bint little = h.endian == "<"
    cdef unsigned long long mult = h.mult
    lt = h.linktype
    buf = pcap.buf
    cdef const unsigned char* p = _bytes_of(buf)
    cdef Py_ssize_t pos = pcap.pos, blen = pcap.blen, base = pcap.base, hend, end
    cdef long long number = pcap.number
    cdef unsigned long long sec, frac, ts
    cdef unsigned int caplen, wirelen
    while True:
        hend = pos + 16
        if hend > blen:
            pcap.pos = pos
            pcap.number = number
            blen = pcap.more(-1)
            if blen == 0:
                return 0
            buf = pcap.buf
            p = _bytes_of(buf)
            base = pcap.base
            pos = 0
            hend = 16
        if little:
            sec = le32(p + pos)
            frac = le32(p + pos + 4)
            caplen = le32(p + pos + 8)
            wirelen = le32(p + pos + 12)
        else:
            sec = be32(p + pos)
            frac = be32(p + pos + 4)
            caplen = be32(p + pos + 8)
            wirelen = be32(p + pos + 12)
        end = hend + caplen
        if end > blen or caplen > K_MAXCAP:
            pcap.pos = pos
            pcap.number = number
            blen = pcap.more(caplen)
            buf = pcap.buf
            p = _bytes_of(buf)
            base = pcap.base
            pos = 0
            hend = 16
            end = 16 + caplen
        number += 1
        ts = sec * 1000000000 + frac * mult
        if progress is not None and not number & 0xFFFF:
            progress(number, base + pos)
        st.record(number, None, ts, lt, buf, p, hend, end, None, wirelen)
        pos = end


def loop(fl, views, progress=None):
    """Feed the records ``views`` through ``fl`` (a ``FusedLoop``); see ``engine.hotloop``.
    ``views`` from ``capture.pcapfile.open_views`` (a ``Records``) of a pcap stream is
    walked in its read buffer; any other source of record views is iterated."""
    cdef _Loop st = _Loop(fl)
    pcap = getattr(views, "pcap", None)
    try:
        if pcap is not None:
            _walk_pcap(st, pcap, progress)
        else:
            for number, ts_ns, lt, buf, hend, end, wirelen, off in views:
                if progress is not None and not number & 0xFFFF:
                    progress(number, off)
                st.record(number, ts_ns, 0, lt, buf, _bytes_of(buf), hend, end, wirelen, 0)
    finally:
        st.finish(fl)
