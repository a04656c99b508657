# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The file loop, compiled: the twin of ``engine/hotloop.py`` (the readable reference), built
by ``pip install`` when a C compiler is there (``setup.py``; optional). Same contract and the
same result on every input (``tests/perf/test_compiled_equivalence.py``); what differs is only
how the work is done:

- the Ethernet, IPv4/IPv6 and TCP header fields are read from the record buffer in C, not by
  ``struct``;
- the table key is made in one step from the address and port bytes (the same integer as
  ``tcp.streams.int_key``);
- the two cases of ``StreamTable.classify`` that change nothing (a known conversation that is
  not SMTP and a segment with none of SYN/FIN/RST; an undecided one and an empty segment with
  none of them) are answered from the entry's low bits (``KNOWN_MASK``, the table's
  documented contract), without calling it; every other segment calls it.

Everything else (the decoder for other frames, the reassembler, the SMTP analysis) is the same
Python code for both loops.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.dict cimport PyDict_GetItem
from cpython.long cimport PyLong_CheckExact
from cpython.object cimport PyObject
from libc.string cimport memcmp, memcpy

from pcapsmtp.engine.hotloop import keyed
from pcapsmtp.tcp.streams import KNOWN_IGNORED, KNOWN_MASK, KNOWN_UNDECIDED, KeyedSegment

cdef extern from "Python.h":
    object _PyLong_FromByteArray(const unsigned char* data, size_t n, int little_endian,
                                 int is_signed)
    unsigned long long PyLong_AsUnsignedLongLongMask(object o) except? <unsigned long long>-1

cdef unsigned long long K_MASK = KNOWN_MASK
cdef unsigned long long K_IGNORED = KNOWN_IGNORED
cdef unsigned long long K_UNDECIDED = KNOWN_UNDECIDED


cdef inline unsigned int be16(const unsigned char* p) noexcept:
    return (p[0] << 8) | p[1]


cdef inline unsigned int be32(const unsigned char* p) noexcept:
    return (<unsigned int>p[0] << 24) | (<unsigned int>p[1] << 16) | (<unsigned int>p[2] << 8) | p[3]


def loop(fl, views, progress=None):
    """Feed the records ``views`` through ``fl`` (a ``FusedLoop``); see ``engine.hotloop``."""
    an = fl.an
    an_feed = an.feed
    reasm = an.reassembler
    table = reasm.table
    classify = table.classify
    dec = fl.dec
    decode_raw = dec.decode_raw
    addresses = dec.addresses
    addrs = fl.addrs
    done = fl.done
    check = fl.check
    number = fl.frame_base
    cdef Py_ssize_t skipped = 0, fast_frames = 0, fast_tcp = 0
    cdef long cd = reasm.countdown
    cdef const unsigned char* p
    cdef const unsigned char* q
    cdef Py_ssize_t hend, end, ip_end, pstart, a0 = 0, a1 = 0
    cdef unsigned int et, tot, ff, sport, dport, doff, flags, plen
    cdef unsigned int seq, ack
    cdef unsigned char kb[37]
    cdef int d, ok, cmp, skip
    cdef long nnum
    cdef unsigned long long m
    cdef PyObject* pv
    last_ts = None
    try:
        for number, ts_ns, lt, buf, hend, end, wirelen, off in views:
            if progress is not None:
                nnum = number
                if not nnum & 0xFFFF:
                    progress(number, off)
            if lt == 1 and end - hend >= 54:
                if type(buf) is bytearray:
                    p = <const unsigned char*>PyByteArray_AS_STRING(buf)
                else:
                    p = <const unsigned char*>PyBytes_AS_STRING(buf)
                q = p + hend
                et = be16(q + 12)
                ok = 0
                if et == 0x0800 and q[14] == 0x45:
                    if q[23] != 6:
                        fast_frames += 1     # not TCP: nothing to decode
                        continue
                    tot = be16(q + 16)
                    ff = be16(q + 20)
                    doff = q[46]
                    ip_end = hend + 14 + tot
                    pstart = hend + 34 + ((doff >> 4) << 2)
                    if not ff & 0x3FFF and ip_end <= end and hend + 54 <= pstart <= ip_end:
                        ok = 1
                        sport = be16(q + 34)
                        dport = be16(q + 36)
                        if sport < dport:
                            d = 0
                        elif sport > dport:
                            d = 1
                        else:
                            d = 0 if be32(q + 26) < be32(q + 30) else 1
                        if d == 0:
                            memcpy(kb, q + 26, 8)
                            kb[8] = q[34]; kb[9] = q[35]; kb[10] = q[36]; kb[11] = q[37]
                        else:
                            memcpy(kb, q + 30, 4)
                            memcpy(kb + 4, q + 26, 4)
                            kb[8] = q[36]; kb[9] = q[37]; kb[10] = q[34]; kb[11] = q[35]
                        key = _PyLong_FromByteArray(kb, 12, 0, 0)
                        seq = be32(q + 38)
                        ack = be32(q + 42)
                        flags = q[47]
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
                            sport = be16(q + 54)
                            dport = be16(q + 56)
                            if sport < dport:
                                d = 0
                            elif sport > dport:
                                d = 1
                            else:
                                d = 0 if memcmp(q + 22, q + 38, 16) < 0 else 1
                            kb[0] = 0x04        # V6KEY: bit 290
                            if d == 0:
                                memcpy(kb + 1, q + 22, 32)
                                kb[33] = q[54]; kb[34] = q[55]; kb[35] = q[56]; kb[36] = q[57]
                            else:
                                memcpy(kb + 1, q + 38, 16)
                                memcpy(kb + 17, q + 22, 16)
                                kb[33] = q[56]; kb[34] = q[57]; kb[35] = q[54]; kb[36] = q[55]
                            key = _PyLong_FromByteArray(kb, 37, 0, 0)
                            seq = be32(q + 58)
                            ack = be32(q + 62)
                            flags = q[67]
                            a0 = hend + 22
                            a1 = hend + 54
                if ok:
                    fast_frames += 1
                    fast_tcp += 1
                    cd -= 1
                    if cd > 0:
                        skip = 0
                        if not flags & 0x07:            # no SYN, FIN or RST
                            pv = PyDict_GetItem(table.young, key)
                            if pv is not NULL and PyLong_CheckExact(<object>pv):
                                m = PyLong_AsUnsignedLongLongMask(<object>pv) & K_MASK
                                if m == K_IGNORED or (m == K_UNDECIDED and pstart == ip_end):
                                    skip = 1
                        if not skip:
                            skip = classify(key, d, seq, flags, buf, pstart, ip_end, number,
                                            ts_ns, ack)
                        if skip:
                            skipped += 1
                            last_ts = ts_ns
                            continue
                    # the reassembler must see it
                    pair = addresses(PyBytes_FromStringAndSize(<const char*>p + a0, a1 - a0))
                    seg = KeyedSegment(
                        number, ts_ns, pair[0], sport, pair[1], dport, seq, ack, flags,
                        PyBytes_FromStringAndSize(<const char*>p + pstart, ip_end - pstart), 0,
                        key, d)
                else:
                    seg2 = decode_raw(1, PyBytes_FromStringAndSize(<const char*>p + hend,
                                                                   end - hend),
                                      wirelen, number, ts_ns)
                    if seg2 is None:
                        continue
                    cd -= 1
                    seg = keyed(seg2, addrs)
            else:
                seg2 = decode_raw(lt, bytes(buf[hend:end]), wirelen, number, ts_ns)
                if seg2 is None:
                    continue
                cd -= 1
                seg = keyed(seg2, addrs)
            if skipped:
                an.packets += skipped
                reasm.skipped(skipped, None)
                skipped = 0
            last_ts = None
            reasm.countdown = cd + 1        # feed counts it
            r = an_feed(seg)
            cd = reasm.countdown
            if r:
                done.extend(r)
                if check is not None:
                    check(done)
    finally:
        fl.frames = number
        an.packets += skipped
        reasm.skipped(skipped, last_ts)
        dec.count(fast_frames, fast_tcp)
        reasm.countdown = cd
