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
- the cases of ``StreamTable.classify`` decided by the table entry alone are answered from
  the entry (the table's documented contract, ``KNOWN_MASK``) without calling it: a known
  conversation that is not SMTP and a segment without SYN (with FIN or RST, its closing bits
  are set as ``classify`` sets them); an undecided one and an empty segment with none of
  SYN/FIN/RST; an entry held as an object (a candidate: always fed). Every other segment
  calls ``classify``.

Everything else (the decoder for other frames, the reassembler, the SMTP analysis) is the same
Python code for both loops.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.dict cimport PyDict_GetItem
from cpython.long cimport PyLong_CheckExact, PyLong_FromLongLong, PyLong_FromUnsignedLongLong
from cpython.object cimport PyObject
from libc.string cimport memcmp, memcpy

from pcapsmtp.engine.hotloop import keyed
from pcapsmtp.capture.decode import TUNNEL_IP_PROTOCOLS, TUNNEL_UDP_PORTS
from pcapsmtp.capture.pcapfile import MAX_CAPLEN
from pcapsmtp.tcp.streams import (ENDED, FIN0, FIN1, KNOWN_IGNORED, KNOWN_MASK,
                                  KNOWN_UNDECIDED, KeyedSegment)

cdef extern from "Python.h":
    object _PyLong_FromByteArray(const unsigned char* data, size_t n, int little_endian,
                                 int is_signed)
    unsigned long long PyLong_AsUnsignedLongLongMask(object o) except? <unsigned long long>-1

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
    return _PyLong_FromByteArray(kb, n + 2 * alen + 4, 0, 0)


cdef class _Loop:
    """The loop's state: one record at a time (``record``), whoever walks the records."""
    cdef object an, an_feed, reasm, table, classify, dec, decode_raw, addresses, addrs, done
    cdef object check, last_ts, number
    cdef Py_ssize_t skipped, fast_frames, fast_tcp
    cdef long cd

    def __cinit__(self, fl):
        self.an = fl.an
        self.an_feed = self.an.feed
        self.reasm = self.an.reassembler
        self.table = self.reasm.table
        self.classify = self.table.classify
        self.dec = fl.dec
        self.decode_raw = self.dec.decode_raw
        self.addresses = self.dec.addresses
        self.addrs = fl.addrs
        self.done = fl.done
        self.check = fl.check
        self.number = fl.frame_base
        self.last_ts = None
        self.skipped = 0
        self.fast_frames = 0
        self.fast_tcp = 0
        self.cd = self.reasm.countdown

    cdef int record(self, object number, object ts_ns, object lt, object buf,
                    const unsigned char* p, Py_ssize_t hend, Py_ssize_t end,
                    object wirelen) except -1:
        """One record: ``p`` is ``buf``'s bytes, the record ``p[hend:end]``."""
        cdef const unsigned char* q
        cdef Py_ssize_t ip_end, pstart, a0 = 0, a1 = 0, t = 0
        cdef unsigned int et, tot, ff, sport = 0, dport = 0, doff, flags = 0, plen
        cdef unsigned int seq = 0, ack = 0
        cdef int d = 0, ok, skip
        cdef unsigned long long m, bits
        cdef PyObject* pv
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
                    # 1: skipped; 0: ask classify; -1: feed (an object entry)
                    skip = 0
                    if not flags & 0x02:                # no SYN
                        young = self.table.young
                        pv = PyDict_GetItem(young, key)
                        if pv is not NULL:
                            if not PyLong_CheckExact(<object>pv):
                                skip = -1
                            else:
                                m = PyLong_AsUnsignedLongLongMask(<object>pv) & K_MASK
                                if m == K_IGNORED:
                                    skip = 1
                                    if flags & 0x05:        # FIN or RST: its closing bits
                                        bits = (K_ENDED if flags & 0x04
                                                else K_FIN1 if d else K_FIN0)
                                        if (PyLong_AsUnsignedLongLongMask(<object>pv) & bits
                                                != bits):
                                            e = (<object>pv) | bits
                                            young[key] = e
                                            if (PyLong_AsUnsignedLongLongMask(e) & K_ENDED
                                                    == K_ENDED):
                                                self.table.ended(key, e, ts_ns)
                                elif (m == K_UNDECIDED and pstart == ip_end
                                        and not flags & 0x05):
                                    skip = 1
                    if skip == 0:
                        skip = self.classify(key, d, seq, flags, buf, pstart, ip_end, number,
                                             ts_ns, ack)
                    if skip > 0:
                        self.skipped += 1
                        self.last_ts = ts_ns
                        return 0
                # the reassembler must see it (with the TTL, IPv4, or the hop limit, IPv6,
                # just before the addresses)
                pair = self.addresses(PyBytes_FromStringAndSize(<const char*>p + a0, a1 - a0))
                seg = KeyedSegment(
                    number, ts_ns, pair[0], sport, pair[1], dport, seq, ack, flags,
                    PyBytes_FromStringAndSize(<const char*>p + pstart, ip_end - pstart), 0,
                    key, d, p[a0 - 4] if a1 - a0 == 8 else p[a0 - 1])
        if not ok:
            # everything else: the general decoder
            seg2 = self.decode_raw(lt, PyBytes_FromStringAndSize(<const char*>p + hend,
                                                                 end - hend),
                                   wirelen, number, ts_ns)
            if seg2 is None:
                return 0
            self.cd -= 1
            seg = keyed(seg2, self.addrs)
        if self.skipped:
            self.an.packets += self.skipped
            self.reasm.skipped(self.skipped, None)
            self.skipped = 0
        self.last_ts = None
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
        self.reasm.skipped(self.skipped, self.last_ts)
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
        st.record(PyLong_FromLongLong(number), PyLong_FromUnsignedLongLong(ts), lt, buf, p,
                  hend, end, wirelen)
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
                st.record(number, ts_ns, lt, buf, _bytes_of(buf), hend, end, wirelen)
    finally:
        st.finish(fl)
