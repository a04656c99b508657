# Augmenting declarations for the compiled build of tls.py (Cython, pure-Python mode; setup.py).
# The .py stays the reference and what runs without the build: this file only makes
# ``TlsObserver`` (one per side of a conversation that speaks TLS) and the parsers' ``_Reader``
# extension types whose attributes are fields of their C structs, so that their methods read
# and write ``self.x`` directly instead of through a generic attribute look-up (about 200
# instructions each, docs/performance.md, "Fifteenth session"). Every attribute keeps the
# Python value the .py stores (counters and offsets stay Python ints, None where the .py
# allows it); only flags the source only ever sets to True or False are C ints (``bint``: read
# back as True or False). ``public``: the session, the tests and the verdict read them as before.

cimport cython

# The parsers' reader (``_parse_client_hello`` and the others): its position and end are C
# integers and its methods ``cpdef`` with C-integer sizes, so that a parser whose readers are
# typed (below) reads each field with a C call, not a method look-up, a Python call and Python
# int arithmetic (docs/performance.md, "Twenty-first session"); from Python they read and
# behave as the .py's (offsets as ints, the same ``_Short`` and its text).
# ``buf`` is ``bytes`` (every parser is given a message's ``bytes``), so that ``uint`` and
# ``take`` index and slice it in C, not through the generic item and slice protocol.
cdef class _Reader:
    cdef public bytes buf
    cdef public Py_ssize_t pos, end
    cpdef Py_ssize_t left(self)
    cpdef object take(self, Py_ssize_t n)
    @cython.locals(pos=Py_ssize_t, buf=bytes)
    cpdef object uint(self, Py_ssize_t n)
    @cython.locals(start=Py_ssize_t, r=_Reader)
    cpdef _Reader sub(self, Py_ssize_t len_bytes)
    cpdef skip(self, Py_ssize_t len_bytes)
    @cython.locals(n=Py_ssize_t, start=Py_ssize_t)
    cpdef Py_ssize_t _vector(self, Py_ssize_t len_bytes)

@cython.locals(exts=_Reader)
cpdef list _extensions(_Reader r, object wanted)

@cython.locals(r=_Reader, suites=_Reader, ext=_Reader, names=_Reader, name=_Reader,
               protos=_Reader, p=_Reader, versions=_Reader, k=Py_ssize_t, n=Py_ssize_t, raw=bytes)
cpdef _parse_client_hello(object body, dict fields)

@cython.locals(r=_Reader, ext=_Reader)
cpdef object _parse_server_hello(object body, dict fields)

# once per application-data record: a C call
cpdef bint looks_like_encrypted_alert(length)

cdef class TlsObserver:
    cdef public object side, records, bytes, app_data_records, app_data_bytes
    cdef public object _max_events, _max_app_events, _emitted, _app_events
    cdef public bint _muted
    cdef public object _pos, _frame, _ts, _ack, _ack_age, _hdr_frame, _hdr_ts, _hdr_ack, _hdr_ack_age
    cdef public list _out
    cdef public bint _dead, _ended
    cdef public object _is_tls
    cdef public object _hdr, _rec_start, _rec_type, _rec_version, _rec_len, _rec_have
    cdef public object _rec_hdr_len, _body
    cdef public bint _in_body, _damaged, _first_record
    cdef public object _nt_buf, _nt_start, _nt_frame, _nt_ts, _nt_ack, _nt_ack_age
    cdef public bint _resync
    cdef public object _rbuf, _rstart, _rscan
    cdef public object _hs, _hs_start
    cdef public bint _hs_dead, _hs_resync, _encrypted, _sent_ccs, _sent_hrr
    cdef public bint _offered_tls13, _tls12_evidence, _server_tls13
    cdef public object _suite

    # The record and handshake layers' steps, run for every record: ``cpdef``, so that the
    # observer's own calls go through the type's table, not a method look-up and a Python call
    # each (docs/performance.md, "Twenty-fourth session"); ``_consume``'s positions in the bytes
    # of one feed are C integers (a feed is at most a segment's bytes).
    cpdef list _take(self)
    cpdef _emit(self, ev)
    cpdef _flush_not_tls(self)
    cpdef _not_tls(self, start, first)
    cpdef _not_tls_more(self)
    @cython.locals(i=Py_ssize_t, n=Py_ssize_t, b0=Py_ssize_t, length=Py_ssize_t, end=Py_ssize_t,
                   need=Py_ssize_t, take=Py_ssize_t)
    cpdef _consume(self, bytes data, offset)
    cpdef _start_record(self)
    cpdef _finish_record(self, end)
    cpdef _handshake_record(self, body, span, length, damaged)
    cpdef _message(self, mtype, body, span)

# The TLS events, as the SMTP events (``events.pxd``): extension types whose ``@dataclass`` is
# Cython's (``__init__``, equality, hash and repr compiled; the same signatures and results as
# the standard library's), every field ``readonly`` and holding the Python value the .py stores.
# Building one costs a C call instead of an interpreted ``__init__``, and importing the module no
# longer generates and compiles their 60 methods from source (docs/performance.md, "Nineteenth
# session"). A field added in the .py must be declared here (the compiled class has no
# ``__dict__``).

cdef class TlsEvent:
    cdef readonly object side, span, frame

cdef class TlsClientHello(TlsEvent):
    cdef readonly object record_version, legacy_version, supported_versions, sni, cipher_suites
    cdef readonly object alpn, sslv2, error

cdef class TlsServerHello(TlsEvent):
    cdef readonly object record_version, legacy_version, selected_version, cipher_suite, error

cdef class TlsHelloRetryRequest(TlsEvent):
    cdef readonly object record_version, selected_version, cipher_suite

cdef class TlsCertificate(TlsEvent):
    cdef readonly object certificates, error

cdef class TlsAlert(TlsEvent):
    cdef readonly object level, description, name, encrypted, content_type

cdef class TlsChangeCipherSpec(TlsEvent):
    pass

cdef class TlsApplicationData(TlsEvent):
    cdef readonly object length

cdef class TlsHandshakeOther(TlsEvent):
    cdef readonly object handshake_type, name

cdef class TlsServerKeyExchange(TlsHandshakeOther):
    cdef readonly object dh_bits, curve

cdef class TlsEncryptedHandshake(TlsEvent):
    cdef readonly object length

cdef class TlsNotTls(TlsEvent):
    cdef readonly object preview, ts_ns, ack, ack_age

cdef class TlsTruncated(TlsEvent):
    cdef readonly object what, content_type, expected, received

cdef class TlsStopped(TlsEvent):
    cdef readonly object reason, detail

cdef class TlsResynchronised(TlsEvent):
    cdef readonly object skipped
