"""What a passive observer can read of TLS, sans-I/O.

After ``STARTTLS`` is answered ``220`` (or from the first byte on port 465) each side's bytes
should be TLS records. The SMTP core creates one :class:`TlsObserver` per side and feeds it that
side's bytes with their stream offsets; the observer answers with :class:`TlsEvent` objects (data,
never exceptions) whose ``span`` is the record's bytes in the side's stream.

Usage::

    obs = TlsObserver(Side.CLIENT)
    events = obs.feed(data, offset, frame)   # any fragmentation: 1-byte feeds give the same events
    events += obs.gap(lost)                  # bytes the reassembler never saw
    events += obs.end()                      # FIN/RST/end of capture

What is read (all bounded: at most one record (<= 18 KiB) and one handshake message (<= 64 KiB)
are buffered per side, application data is never kept):

- ClientHello: versions offered, SNI, ALPN, cipher count (GREASE values are left out).
- ServerHello: the selected version (``supported_versions`` wins over ``legacy_version``, so
  TLS 1.3 reads 0x0304) and cipher; a HelloRetryRequest is told apart by its magic random.
- Certificate (TLS <= 1.2 only: in TLS 1.3 it is encrypted): subject, SANs, issuer, validity,
  self-signed, SHA-256 (``smtp.certificates``: ``cryptography``, imported lazily).
- Alerts: in clear (a type-21 record of length 2) they carry level and description. A type-21
  record of any other length is encrypted (TLS <= 1.2 after ChangeCipherSpec). In TLS 1.3 an
  encrypted alert travels as an outer type-23 record of 19 bytes (2 alert bytes, 1 inner type,
  16 tag bytes with AES-GCM/ChaCha20/AES-CCM) or 11 (AES-CCM-8). On a side that is in TLS 1.3
  (the server after selecting 0x0304; the client after offering 0x0304 and showing nothing that
  only TLS <= 1.2 sends) such a record is reported as ``TlsAlert(encrypted=True, content_type=23)``
  (a size heuristic: 2 bytes of application data look the same). It still counts as an
  application-data record.
- A side is "encrypted" after its own ChangeCipherSpec (TLS <= 1.2) or after it sent a TLS 1.3
  ServerHello; its later type-22 records are :class:`TlsEncryptedHandshake`. Exceptions, in the
  TLS 1.3 HelloRetryRequest flow: a clear ClientHello after the client's compatibility
  ChangeCipherSpec, and the clear ServerHello after the server's HelloRetryRequest and its
  compatibility ChangeCipherSpec, are parsed.

Limits and end states (documented choices):

- :class:`TlsApplicationData` events: the first ``max_app_data_events`` (8) per side; the rest are
  only counted (``app_data_records``, ``app_data_bytes``).
- At most ``max_events`` events per observer; the last slot holds
  ``TlsStopped(reason="event_limit")``; framing and counters go on silently after it.
- Bytes that are not a TLS record: :class:`TlsNotTls` with a preview of their first line (up to
  and including its LF), at most 64 bytes. To give the same preview whatever the fragmentation, the
  event is emitted once that line is whole or 64 bytes are there, or at
  :meth:`TlsObserver.gap`/:meth:`TlsObserver.end`, or when the session has something else of the
  conversation to emit first (:meth:`TlsObserver.flush_text`: the other side's bytes or close), so
  that the events stay in arrival order: then the preview holds the bytes come so far, and the rest
  of the line belongs to no text; :attr:`TlsObserver.is_tls` turns False at once.
  Its ``ts_ns``, ``ack``, ``ack_age`` and ``frame`` are those given to the feed that carried its first byte (the first
  byte of the record header that proved not TLS), whenever the event comes: the verdict reads when a
  client gave up on TLS and spoke in the clear (PHPMailer's QUIT), and a ``QUIT`` without its
  CRLF, or bytes with no LF, are emitted only at the stream's end or at the other side's next
  bytes, which is not when they were sent. After it the side is no longer parsed (``bytes`` still counts).
- A handshake message over 64 KiB: ``TlsStopped(reason="handshake_too_large")``; records are
  still framed and counted, handshake messages are no longer read.
- Gaps: inside a record's body the framing survives (the record is reported if its content was
  not needed, e.g. application data; a damaged handshake record is dropped and handshake parsing
  resumes at the next record that starts with a plausible message header). Otherwise the observer
  looks for two consecutive plausible record headers in the next ~36 KiB:
  :class:`TlsResynchronised` (bytes skipped) or ``TlsStopped(reason="gap")``.
- At :meth:`TlsObserver.end` an incomplete record or handshake message gives one
  :class:`TlsTruncated` each (``what`` = ``"record"`` or ``"handshake"``).
- Every event's ``frame`` is the ``frame`` given to the feed that completed it (None if none was
  given), but :class:`TlsNotTls`'s (above); it, ``TlsNotTls.ts_ns``, ``ack`` and ``ack_age`` are
  the only fields that depend on how the bytes were chunked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pcapsmtp.model import Side, Span
from pcapsmtp.smtp.certificates import (
    CertInfo, cert_expired, cert_matches_host, cert_not_yet_valid, parse_certificate,
    parse_certificate_cached,
)

__all__ = [
    "ALERT_NAMES", "HANDSHAKE_NAMES", "VERSION_NAMES", "CONTENT_TYPE_NAMES", "MAX_RECORD_LENGTH",
    "MAX_HANDSHAKE_BUFFER", "sniff_tls", "version_name", "alert_name", "handshake_name",
    "tls13_encrypted_alert_length", "looks_like_encrypted_alert", "looks_like_finished", "is_grease",
    "CertInfo", "parse_certificate", "cert_matches_host", "cert_expired", "cert_not_yet_valid",
    "TlsEvent", "TlsClientHello", "TlsServerHello", "TlsHelloRetryRequest", "TlsCertificate",
    "TlsAlert", "TlsChangeCipherSpec", "TlsApplicationData", "TlsHandshakeOther", "TlsServerKeyExchange",
    "TlsEncryptedHandshake", "TlsNotTls", "TlsTruncated", "TlsStopped", "TlsResynchronised",
    "TlsObserver",
]

# --------------------------------------------------------------------------------------------
# Names and numbers
# --------------------------------------------------------------------------------------------

CT_CHANGE_CIPHER_SPEC: Final = 20
CT_ALERT: Final = 21
CT_HANDSHAKE: Final = 22
CT_APPLICATION_DATA: Final = 23
CT_HEARTBEAT: Final = 24

CONTENT_TYPE_NAMES: Final[dict[int, str]] = {
    20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data", 24: "heartbeat",
}

#: RFC 8446 5.1: 2^14 plaintext bytes; ciphertext may add up to 2048 (RFC 5246 6.2.3).
MAX_RECORD_LENGTH: Final = 2**14 + 2048
#: Upper bound of one reassembled handshake message (header included).
MAX_HANDSHAKE_BUFFER: Final = 64 * 1024
_PREVIEW: Final = 64
_RESYNC_WINDOW: Final = 2 * (5 + MAX_RECORD_LENGTH) + 5
_MAX_CERTS: Final = 16

#: TLS alert descriptions, IANA "TLS Alerts" registry (the ``_RESERVED`` suffix left off).
ALERT_NAMES: Final[dict[int, str]] = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 21: "decryption_failed",
    22: "record_overflow", 30: "decompression_failure", 40: "handshake_failure",
    41: "no_certificate", 42: "bad_certificate", 43: "unsupported_certificate",
    44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
    47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
    51: "decrypt_error", 52: "too_many_cids_requested", 60: "export_restriction",
    70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
    86: "inappropriate_fallback", 90: "user_canceled", 100: "no_renegotiation",
    109: "missing_extension", 110: "unsupported_extension", 111: "certificate_unobtainable",
    112: "unrecognized_name", 113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value", 115: "unknown_psk_identity", 116: "certificate_required",
    117: "general_error", 120: "no_application_protocol", 121: "ech_required",
}

#: TLS handshake message types, IANA "TLS HandshakeType" registry.
HANDSHAKE_NAMES: Final[dict[int, str]] = {
    0: "hello_request", 1: "client_hello", 2: "server_hello", 3: "hello_verify_request",
    4: "new_session_ticket", 5: "end_of_early_data", 6: "hello_retry_request",
    8: "encrypted_extensions", 9: "request_connection_id", 10: "new_connection_id",
    11: "certificate", 12: "server_key_exchange", 13: "certificate_request",
    14: "server_hello_done", 15: "certificate_verify", 16: "client_key_exchange",
    17: "client_certificate_request", 20: "finished", 21: "certificate_url",
    22: "certificate_status", 23: "supplemental_data", 24: "key_update",
    25: "compressed_certificate", 26: "ekt_key", 254: "message_hash",
}

VERSION_NAMES: Final[dict[int, str]] = {
    0x0002: "SSL 2.0", 0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1",
    0x0303: "TLS 1.2", 0x0304: "TLS 1.3",
}

#: RFC 8446 4.1.3: the ServerHello.random of a HelloRetryRequest (SHA-256 of "HelloRetryRequest").
HRR_RANDOM: Final = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

_EXT_SERVER_NAME: Final = 0
_EXT_ALPN: Final = 16
_EXT_SUPPORTED_VERSIONS: Final = 43
#: the extensions each hello parser reads (the others are only checked for length)
_CLIENT_HELLO_EXTENSIONS: Final = frozenset({_EXT_SERVER_NAME, _EXT_ALPN, _EXT_SUPPORTED_VERSIONS})
_SERVER_HELLO_EXTENSIONS: Final = frozenset({_EXT_SUPPORTED_VERSIONS})


def is_grease(value: int) -> bool:
    """RFC 8701 GREASE values (0x0a0a, 0x1a1a, ... 0xfafa)."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def version_name(version: int) -> str:
    if version in VERSION_NAMES:
        return VERSION_NAMES[version]
    if 0x7F00 <= version <= 0x7FFF:
        return f"TLS 1.3 draft {version & 0xFF}"
    if is_grease(version):
        return "GREASE"
    return f"unknown 0x{version:04x}"


def alert_name(description: int) -> str:
    return ALERT_NAMES.get(description, f"unknown_{description}")


def handshake_name(handshake_type: int) -> str:
    return HANDSHAKE_NAMES.get(handshake_type, f"unknown_{handshake_type}")


def tls13_encrypted_alert_length(tag_length: int = 16) -> int:
    """Length of a TLS 1.3 record that carries one encrypted alert and no padding.

    The inner plaintext is the 2 alert bytes plus the 1-byte inner content type (21); the AEAD
    adds its tag: 16 bytes for AES-GCM, ChaCha20-Poly1305 and AES-CCM (so 19), 8 for AES-CCM-8
    (so 11). The outer record says type 23 (application_data), as every TLS 1.3 encrypted record.
    """
    return 2 + 1 + tag_length


#: the sizes of a TLS 1.3 record carrying one encrypted alert (16- and 8-byte AEAD tags)
_ENCRYPTED_ALERT_LENGTHS = (tls13_encrypted_alert_length(16), tls13_encrypted_alert_length(8))


def looks_like_encrypted_alert(length: int) -> bool:
    """True when a TLS 1.3 outer type-23 record of ``length`` bytes has the size of an
    encrypted alert."""
    return length in _ENCRYPTED_ALERT_LENGTHS


#: the sizes of a TLS 1.3 record carrying the Finished alone (RFC 8446 4.4.4): its 4-byte message
#: header and verify_data, as long as the suite's hash (32 bytes for SHA-256 suites, 48 for
#: SHA-384), the inner content type (1 byte) and the AEAD's 16-byte tag: 53 and 69
#: (the handshake header, the verify data of a SHA-256 or SHA-384 suite, the inner content
#: type, the AEAD's tag: 16 bytes, or 8 for TLS_AES_128_CCM_8_SHA256, RFC 8446 B.4)
_FINISHED_LENGTHS = (4 + 32 + 1 + 16, 4 + 48 + 1 + 16, 4 + 32 + 1 + 8)
#: the Finished record's size under the suites where it is not 53 bytes
_FINISHED_LENGTH_OF_SUITE = {0x1302: 4 + 48 + 1 + 16, 0x1305: 4 + 32 + 1 + 8}


def looks_like_finished(length: int, suite: int | None = None) -> bool:
    """True when a TLS 1.3 outer type-23 record of ``length`` bytes has the size of an
    encrypted Finished alone under the ServerHello's cipher ``suite`` (53 bytes under the
    SHA-256 suites, 69 under TLS_AES_256_GCM_SHA384, 45 under TLS_AES_128_CCM_8_SHA256, whose
    tag is 8 bytes); any of those when the suite is not known. A Finished padded (RFC 8446 5.4)
    or packed with other messages into one record has another size."""
    if suite is None:
        return length in _FINISHED_LENGTHS
    return length == _FINISHED_LENGTH_OF_SUITE.get(suite, 4 + 32 + 1 + 16)


def sniff_tls(data: bytes | bytearray | memoryview) -> bool | None:
    """Does ``data`` start with a TLS record?

    True: a plausible record header (type 20..24, major version 3, minor 0..4, length <= 2^14 +
    2048) or an SSLv2-compatible ClientHello (first byte has 0x80 set, message type 1, version
    3.x or 0.2). False: certainly not. None: fewer than 5 bytes and the prefix is plausible.
    """
    n = len(data)
    if n == 0:
        return None
    b0 = data[0]
    if b0 & 0x80:
        if n >= 3 and data[2] != 1:
            return False
        if n >= 4 and data[3] not in (0, 3):
            return False
        if n >= 5:
            return data[4] <= 4 if data[3] == 3 else data[4] == 2
        return None
    if not CT_CHANGE_CIPHER_SPEC <= b0 <= CT_HEARTBEAT:
        return False
    if n >= 2 and data[1] != 3:
        return False
    if n >= 3 and data[2] > 4:
        return False
    if n >= 4 and (data[3] << 8) > MAX_RECORD_LENGTH:
        return False
    if n < 5:
        return None
    return ((data[3] << 8) | data[4]) <= MAX_RECORD_LENGTH


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------
# Values, as the SMTP events are (``smtp.events``): plain ``@dataclass(kw_only=True,
# unsafe_hash=True)`` classes, not ``model.frozen``, because that is the form Cython compiles
# (``tls.pxd``: extension types whose ``__init__``, equality, hash and repr are C and whose
# fields refuse assignment); here, the reference, dataclasses without slots (nothing assigns a
# field: an assignment is not refused at run time, as with ``model.frozen``).

@dataclass(kw_only=True, unsafe_hash=True)
class TlsEvent:
    """Base of every event. ``span`` covers the record(s) that carried it in ``side``'s stream;
    ``frame`` is the frame of the feed that completed it (None if the caller gave none)."""

    side: Side
    span: Span
    frame: int | None = None


@dataclass(kw_only=True, unsafe_hash=True)
class TlsClientHello(TlsEvent):
    record_version: int
    legacy_version: int
    supported_versions: tuple[int, ...]   #: from the extension, GREASE left out; () if absent
    sni: str | None
    cipher_suites: int                    #: how many offered (GREASE left out)
    alpn: tuple[str, ...]
    sslv2: bool = False                   #: SSLv2-compatible ClientHello (record_version 0x0002)
    error: str | None = None              #: malformed: the fields hold what was read before

    @property
    def max_version(self) -> int:
        return max(self.supported_versions) if self.supported_versions else self.legacy_version


@dataclass(kw_only=True, unsafe_hash=True)
class TlsServerHello(TlsEvent):
    record_version: int
    legacy_version: int
    selected_version: int                 #: supported_versions extension if present, else legacy
    cipher_suite: int
    error: str | None = None


@dataclass(kw_only=True, unsafe_hash=True)
class TlsHelloRetryRequest(TlsEvent):
    """A ServerHello whose random is the HelloRetryRequest magic (TLS 1.3)."""

    record_version: int
    selected_version: int
    cipher_suite: int


@dataclass(kw_only=True, unsafe_hash=True)
class TlsCertificate(TlsEvent):
    """A clear Certificate message (TLS <= 1.2), leaf first."""

    certificates: tuple[CertInfo, ...]
    error: str | None = None              #: the message itself was malformed or cut at 16 certs


@dataclass(kw_only=True, unsafe_hash=True)
class TlsAlert(TlsEvent):
    """``encrypted``: level and description are -1 and ``name`` is ``"encrypted"``.
    ``content_type`` 23 means inferred from a TLS 1.3 record's size (see module doc)."""

    level: int
    description: int
    name: str
    encrypted: bool
    content_type: int = CT_ALERT

    @property
    def fatal(self) -> bool:
        return self.level == 2


@dataclass(kw_only=True, unsafe_hash=True)
class TlsChangeCipherSpec(TlsEvent):
    pass


@dataclass(kw_only=True, unsafe_hash=True)
class TlsApplicationData(TlsEvent):
    length: int                           #: record body length (ciphertext)


@dataclass(kw_only=True, unsafe_hash=True)
class TlsHandshakeOther(TlsEvent):
    handshake_type: int
    name: str


@dataclass(kw_only=True, unsafe_hash=True)
class TlsServerKeyExchange(TlsHandshakeOther):
    """A clear ServerKeyExchange (TLS <= 1.2): the server's ephemeral key-exchange group.
    ``dh_bits`` is the size of a finite-field (DHE, DH_anon) prime, ``curve`` the named group of
    an ECDHE one; 0 when the message is of another kind or could not be read."""

    dh_bits: int = 0
    curve: int = 0


@dataclass(kw_only=True, unsafe_hash=True)
class TlsEncryptedHandshake(TlsEvent):
    length: int


@dataclass(kw_only=True, unsafe_hash=True)
class TlsNotTls(TlsEvent):
    """Bytes that are no TLS record where one was due; emitted once ``preview`` is whole (the
    module's docstring), but stamped with the segment that carried its first byte: ``frame`` and
    ``ts_ns`` are those given to that feed, so its item's time is when the bytes were sent, also when
    they have no line end and the event comes only at the stream's end (or, when something of the
    other side comes first, then, with the bytes come so far: ``TlsObserver.flush_text``)."""

    preview: bytes      #: from the position that is not TLS: its first line (LF included), at most 64 bytes
    ts_ns: int = 0      #: the ``ts_ns`` given to the feed that carried its first byte (0: none given)
    ack: int = -1
    """The ``ack`` given to the feed that carried its first byte: the acknowledgement number the
    segment that carried it carried, as an offset in the other side's stream
    (``tcp.events.StreamData.ack``), what of the other side's bytes this side had received when it
    sent these; -1: not known (none given)."""
    ack_age: int = -1
    """The ``ack_age`` given to that feed: how long before ``ts_ns`` this side's acknowledgement
    first reached ``ack`` (``tcp.events.StreamData.ack_age``, on the same clock as ``ts_ns``); -1:
    not known."""


@dataclass(kw_only=True, unsafe_hash=True)
class TlsTruncated(TlsEvent):
    """At end(): ``what`` = "record" (``content_type`` -1 if the header itself was cut) or
    "handshake" (a message whose records ended early); ``expected`` -1 when unknown."""

    what: str
    content_type: int
    expected: int
    received: int


@dataclass(kw_only=True, unsafe_hash=True)
class TlsStopped(TlsEvent):
    """Parsing stopped: ``reason`` is "event_limit", "handshake_too_large" or "gap"."""

    reason: str
    detail: str = ""


@dataclass(kw_only=True, unsafe_hash=True)
class TlsResynchronised(TlsEvent):
    """After a gap that lost the record framing, framing was found again; ``span`` covers the
    ``skipped`` bytes (empty when the bytes after the gap began with a record)."""

    skipped: int


# --------------------------------------------------------------------------------------------
# Message parsers (private: they raise _Short on malformed input, the observer catches it)
# --------------------------------------------------------------------------------------------

class _Short(Exception):
    """A length field runs past its container."""


class _Reader:
    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def left(self) -> int:
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise _Short(f"need {n} bytes, {self.end - self.pos} left")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        pos = self.pos          # (``take`` written out: the parsers read many small fields)
        if n < 0 or pos + n > self.end:
            raise _Short(f"need {n} bytes, {self.end - pos} left")
        self.pos = pos + n
        buf = self.buf
        # (the one- and two-byte fields, most of them, from the bytes themselves: no slice
        # made and no ``int.from_bytes`` looked up and called)
        if n == 2:
            return buf[pos] << 8 | buf[pos + 1]
        if n == 1:
            return buf[pos]
        return int.from_bytes(buf[pos:pos + n], "big")

    def sub(self, len_bytes: int) -> _Reader:
        start = self._vector(len_bytes)
        # (made without ``__init__``: the compiled build then calls no Python constructor)
        r = _Reader.__new__(_Reader)
        r.buf = self.buf
        r.pos = start
        r.end = self.pos
        return r

    def skip(self, len_bytes: int) -> None:
        """Pass over a vector (as ``sub``, without a reader of it)."""
        self._vector(len_bytes)

    def _vector(self, len_bytes: int) -> int:
        """Read a vector's length field and move past the vector; returns where it starts."""
        n = self.uint(len_bytes)
        start = self.pos
        if start + n > self.end:
            raise _Short(f"vector of {n} bytes, {self.end - start} left")
        self.pos = start + n
        return start


def _text(raw: bytes) -> str:
    return raw.decode("ascii", errors="replace")


def _extensions(r: _Reader, wanted: frozenset[int]) -> list[tuple[int, _Reader]]:
    """The extensions of a hello whose type is in ``wanted``, each with a reader of its body
    (every extension's length is checked)."""
    if r.left() == 0:          # extensions are optional before TLS 1.2
        return []
    exts = r.sub(2)
    out = []
    while exts.left():
        etype = exts.uint(2)
        if etype in wanted:
            out.append((etype, exts.sub(2)))
        else:
            exts.skip(2)
    return out


def _parse_client_hello(body: bytes, fields: dict[str, object]) -> None:
    r = _Reader(body)
    fields["legacy_version"] = r.uint(2)
    r.take(32)
    r.skip(1)                              # session id
    suites = r.sub(2)
    raw = suites.take(suites.left())
    # each 2-byte suite that is not GREASE (``is_grease``: both bytes equal, their low nibble
    # 0xA), read from the bytes at once; a stray odd byte at the end is not a suite (a loop, not
    # a generator: the compiled build makes this function a C one, which holds no closure)
    n = 0
    for k in range(0, len(raw) - 1, 2):
        if raw[k] != raw[k + 1] or raw[k] & 0x0F != 0x0A:
            n += 1
    fields["cipher_suites"] = n
    r.skip(1)                              # compression methods
    for etype, ext in _extensions(r, _CLIENT_HELLO_EXTENSIONS):
        if etype == _EXT_SERVER_NAME and fields["sni"] is None:
            names = ext.sub(2)
            while names.left():
                name_type = names.uint(1)
                name = names.sub(2)
                if name_type == 0:
                    fields["sni"] = _text(name.take(name.left()))
                    break
        elif etype == _EXT_ALPN:
            protos = ext.sub(2)
            out = []
            while protos.left():
                p = protos.sub(1)
                out.append(_text(p.take(p.left())))
            fields["alpn"] = tuple(out)
        elif etype == _EXT_SUPPORTED_VERSIONS:
            versions = ext.sub(1)
            vs = []
            while versions.left() >= 2:
                v = versions.uint(2)
                if not is_grease(v):
                    vs.append(v)
            fields["supported_versions"] = tuple(vs)


#: cipher suites whose ServerKeyExchange starts with a finite-field Diffie-Hellman prime
#: (DHE_DSS, DHE_RSA and DH_anon: RFC 5246 7.4.3, RFC 5288, RFC 5289 and RFC 7905 suites)
DHE_SUITES: Final = frozenset({
    0x0011, 0x0012, 0x0013, 0x0014, 0x0015, 0x0016, 0x0017, 0x0018, 0x0019, 0x001A, 0x001B,
    0x0032, 0x0033, 0x0034, 0x0038, 0x0039, 0x003A, 0x0040, 0x0044, 0x0045, 0x0046, 0x0067,
    0x006A, 0x006B, 0x006C, 0x006D, 0x0087, 0x0088, 0x0089, 0x0099, 0x009A, 0x009B, 0x009E,
    0x009F, 0x00A2, 0x00A3, 0x00A6, 0x00A7, 0x00BD, 0x00BE, 0x00BF, 0x00C3, 0x00C4, 0x00C5,
    0xC042, 0xC043, 0xC044, 0xC045, 0xC046, 0xC047, 0xC052, 0xC053, 0xC056, 0xC057, 0xC05A,
    0xC05B, 0xC07C, 0xC07D, 0xC080, 0xC081, 0xC084, 0xC085, 0xC09E, 0xC09F, 0xC0A2, 0xC0A3,
    0xCCAA,
})
_EC_NAMED_CURVE = 3


def _parse_server_key_exchange(body: bytes, suite: int) -> tuple[int, int]:
    """(dh_bits, curve) of a ServerKeyExchange under ``suite``: the bit length of a DHE prime
    (leading zero bytes left out), or the named group of an ECDHE one."""
    r = _Reader(body)
    if suite in DHE_SUITES:
        p = r.sub(2)
        prime = p.take(p.left()).lstrip(b"\x00")
        return (int.from_bytes(prime[:1], "big").bit_length() + 8 * (len(prime) - 1) if prime else 0), 0
    if r.left() >= 3 and r.uint(1) == _EC_NAMED_CURVE:
        return 0, r.uint(2)
    return 0, 0


def _parse_server_hello(body: bytes, fields: dict[str, object]) -> bytes:
    """Fills fields; returns the server random."""
    r = _Reader(body)
    fields["legacy_version"] = fields["selected_version"] = r.uint(2)
    random = r.take(32)
    r.skip(1)                              # session id
    fields["cipher_suite"] = r.uint(2)
    r.uint(1)
    for etype, ext in _extensions(r, _SERVER_HELLO_EXTENSIONS):
        if etype == _EXT_SUPPORTED_VERSIONS and ext.left() >= 2:
            fields["selected_version"] = ext.uint(2)
    return random


def _parse_certificates(body: bytes) -> tuple[tuple[CertInfo, ...], str | None]:
    certs: list[CertInfo] = []
    try:
        r = _Reader(body)
        chain = r.sub(3)
        while chain.left():
            if len(certs) >= _MAX_CERTS:
                return tuple(certs), f"more than {_MAX_CERTS} certificates; the rest skipped"
            der = chain.sub(3)
            certs.append(parse_certificate_cached(bytes(der.take(der.left()))))
    except _Short as exc:
        return tuple(certs), f"malformed Certificate message: {exc}"
    return tuple(certs), None


# --------------------------------------------------------------------------------------------
# The observer
# --------------------------------------------------------------------------------------------

class TlsObserver:
    """Reads one side's TLS records passively. See the module docstring for the rules.

    Counters (always updated, whatever the state): ``bytes`` (every byte fed, overlaps
    excepted), ``records`` (complete records framed), ``app_data_records``/``app_data_bytes``
    (outer type 23).
    """

    def __init__(self, side: Side, *, max_events: int = 64, max_app_data_events: int = 8,
                 framed: bool = True) -> None:
        """``framed=False``: the first bytes fed may start inside a record (a capture that
        starts in the middle of a TLS session, or after a hole); the observer first looks for
        the record framing, as it does after a gap."""
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self.side = side
        self.records = 0
        self.bytes = 0
        self.app_data_records = 0
        self.app_data_bytes = 0
        self._max_events = max_events
        self._max_app_events = max_app_data_events
        self._emitted = 0
        self._app_events = 0
        self._muted = False
        self._pos: int | None = None        # next expected stream offset
        self._frame: int | None = None
        self._ts = 0                        # the ``ts_ns`` of the current feed
        self._ack = -1                      # the ``ack`` and ``ack_age`` of the current feed
        self._ack_age = -1
        # the frame and time of the feed that carried the first byte of the record header being
        # read (slow path): a header that proves not TLS stamps its ``TlsNotTls`` with them
        self._hdr_frame: int | None = None
        self._hdr_ts = 0
        self._hdr_ack = -1
        self._hdr_ack_age = -1
        self._out: list[TlsEvent] = []
        self._dead = False                  # not TLS / unrecoverable / ended: count bytes only
        self._ended = False
        self._is_tls: bool | None = None
        # record layer
        self._hdr = bytearray()
        self._rec_start = 0
        self._rec_type = -1
        self._rec_version = -1
        self._rec_len = 0
        self._rec_have = 0
        self._rec_hdr_len = 5
        self._body: bytearray | None = None
        self._in_body = False
        self._damaged = False
        self._first_record = True
        # not-TLS preview collection
        self._nt_buf: bytearray | None = None
        self._nt_start = 0
        self._nt_frame: int | None = None   # the frame and time of the feed of its first byte
        self._nt_ts = 0
        self._nt_ack = -1
        self._nt_ack_age = -1
        # resynchronisation after a gap
        self._resync = False
        self._rbuf = bytearray()
        self._rstart = 0
        self._rscan = 0
        # handshake layer
        self._hs = bytearray()
        self._hs_start = 0
        self._hs_dead = False
        self._hs_resync = False
        self._encrypted = False
        self._sent_ccs = False
        self._sent_hrr = False      # this side sent a HelloRetryRequest (and no ServerHello since)
        self._offered_tls13 = False
        self._tls12_evidence = False
        self._server_tls13 = False
        self._suite = 0             # the cipher suite of the ServerHello (0 before it)
        if not framed:
            self._resync = True
            self._hs_resync = True

    # ---------------------------------------------------------------- public surface

    @property
    def is_tls(self) -> bool | None:
        """None until decided; True once a plausible record header was read; False as soon as
        bytes prove not-TLS (before the :class:`TlsNotTls` event, which waits for its 64-byte
        preview)."""
        return self._is_tls

    @property
    def encrypted(self) -> bool:
        """This side's handshake records are encrypted now."""
        return self._encrypted

    @property
    def tls13(self) -> bool:
        """This side looks like TLS 1.3: sent a ServerHello selecting 0x0304, or offered 0x0304
        in its ClientHello and has shown nothing only TLS <= 1.2 sends."""
        return self._server_tls13 or (self._offered_tls13 and not self._tls12_evidence)

    def feed(self, data: bytes | bytearray | memoryview, offset: int,
             frame: int | None = None, ts_ns: int = 0, ack: int = -1,
             ack_age: int = -1) -> list[TlsEvent]:
        """``data`` at ``offset`` of the side's stream, carried by ``frame`` captured at ``ts_ns``
        whose acknowledgement was ``ack`` (an offset in the other side's stream), reached
        ``ack_age`` before ``ts_ns`` (-1: not known; all optional: they only stamp the events,
        ``ack`` and ``ack_age`` only a ``TlsNotTls``)."""
        self._out = []
        if type(data) is not bytes:     # (``bytes`` from the session: no copy, no call)
            data = bytes(data)
        if not data or self._ended:
            return []
        if self._pos is None:
            self._pos = offset
        elif offset > self._pos:
            self._do_gap(offset - self._pos)
        elif offset < self._pos:
            skip = self._pos - offset
            if skip >= len(data):
                return self._take()
            data = data[skip:]
            offset = self._pos
        self.bytes += len(data)
        self._pos = offset + len(data)
        self._frame = frame
        self._ts = ts_ns
        self._ack = ack
        self._ack_age = ack_age
        if self._nt_buf is not None:        # collecting the preview of a not-TLS position
            self._nt_buf += data[:_PREVIEW - len(self._nt_buf)]
            self._not_tls_more()
        elif not self._dead:
            try:
                self._consume(data, offset)
            except Exception as exc:  # noqa: BLE001 - bad traffic never raises
                self._emit(TlsStopped(side=self.side, span=Span(self.side, offset, offset + len(data)),
                                      frame=self._frame, reason="internal_error",
                                      detail=f"{type(exc).__name__}: {exc}"))
                self._dead = True
        return self._take()

    @property
    def text_pending(self) -> bool:
        """Bytes proven not TLS are held for the :class:`TlsNotTls` preview, its line not whole
        yet (``flush_text``)."""
        return self._nt_buf is not None

    def flush_text(self) -> list[TlsEvent]:
        """Something else of the conversation comes now (the other side's bytes or close): emit
        the pending :class:`TlsNotTls` with the bytes it has (at least one), so that the events
        stay in the order of their bytes' arrival (a ``QUIT`` without its CRLF before the
        server's close). The rest of that line, if it comes later, belongs to no text: the side
        is not TLS, its bytes are only counted."""
        self._out = []
        self._flush_not_tls()
        return self._take()

    def gap(self, length: int) -> list[TlsEvent]:
        self._out = []
        if length > 0 and not self._ended:
            self._do_gap(length)
        return self._take()

    def end(self) -> list[TlsEvent]:
        self._out = []
        if self._ended:
            return []
        self._ended = True
        pos = self._pos if self._pos is not None else 0
        self._flush_not_tls()
        if self._dead:
            return self._take()
        if self._resync and self._rbuf and not self._resync_at_end():
            self._emit(TlsStopped(side=self.side, span=Span(self.side, self._rstart, pos), frame=self._frame,
                                  reason="gap", detail="no record framing found after the gap"))
            self._dead = True
        self._flush_not_tls()               # resynchronising may have met non-TLS bytes
        if self._dead or self._resync:
            return self._finish_end()
        if self._in_body:
            self._emit(TlsTruncated(side=self.side, span=Span(self.side, self._rec_start, pos),
                                    frame=self._frame, what="record", content_type=self._rec_type,
                                    expected=self._rec_hdr_len + self._rec_len,
                                    received=self._rec_hdr_len + self._rec_have))
        elif self._hdr:
            self._emit(TlsTruncated(side=self.side, span=Span(self.side, self._rec_start, pos),
                                    frame=self._frame, what="record", content_type=self._hdr[0], expected=-1,
                                    received=len(self._hdr)))
        if self._hs and not self._hs_dead:
            expected = 4 + int.from_bytes(self._hs[1:4], "big") if len(self._hs) >= 4 else -1
            self._emit(TlsTruncated(side=self.side, span=Span(self.side, self._hs_start, pos),
                                    frame=self._frame, what="handshake", content_type=self._hs[0],
                                    expected=expected, received=len(self._hs)))
        return self._finish_end()

    def _finish_end(self) -> list[TlsEvent]:
        self._dead = True
        self._hs.clear()
        self._body = None
        return self._take()

    # ---------------------------------------------------------------- event plumbing

    def _take(self) -> list[TlsEvent]:
        out, self._out = self._out, []
        return out

    def _emit(self, ev: TlsEvent) -> None:
        """Out with ``ev`` (made by the caller, stamped with the current feed's frame: a
        ``TlsNotTls`` with the frame of its first byte's), unless the event limit is reached:
        then the last slot holds ``TlsStopped(reason="event_limit")`` at ``ev``'s span and frame,
        and nothing more comes out."""
        if self._muted:
            return
        if self._emitted >= self._max_events - 1 and ev.__class__ is not TlsStopped:
            self._out.append(TlsStopped(side=self.side, span=ev.span, frame=ev.frame,
                                        reason="event_limit",
                                        detail=f"{self._max_events} events per side"))
            self._emitted += 1
            self._muted = True
            return
        self._out.append(ev)
        self._emitted += 1
        if self._emitted >= self._max_events:
            self._muted = True

    # ---------------------------------------------------------------- gaps and not-TLS

    def _flush_not_tls(self) -> None:
        if self._nt_buf is not None:
            preview = bytes(self._nt_buf)
            # (stamped with the feed of its first byte, not the one that completed it)
            self._emit(TlsNotTls(side=self.side,
                                 span=Span(self.side, self._nt_start, self._nt_start + len(preview)),
                                 frame=self._nt_frame, preview=preview, ts_ns=self._nt_ts, ack=self._nt_ack,
                                 ack_age=self._nt_ack_age))
            self._nt_buf = None

    def _not_tls(self, start: int, first: bytes) -> None:
        self._is_tls = False
        self._dead = True
        self._nt_start = start
        self._nt_frame, self._nt_ts = self._hdr_frame, self._hdr_ts
        self._nt_ack, self._nt_ack_age = self._hdr_ack, self._hdr_ack_age
        self._nt_buf = bytearray(first[:_PREVIEW])
        self._not_tls_more()

    def _not_tls_more(self) -> None:
        """The preview of a not-TLS position is whole once it holds its first line (up to and
        including the first LF) or ``_PREVIEW`` bytes: emit it then (stamped with the feed of its
        first byte, ``_not_tls``), not at the stream's end. The preview depends only on the bytes,
        never on how they were split into segments."""
        buf = self._nt_buf
        if buf is None:
            return
        nl = buf.find(b"\n")
        if nl >= 0:
            del buf[nl + 1:]
            self._flush_not_tls()
        elif len(buf) >= _PREVIEW:
            self._flush_not_tls()

    def _do_gap(self, length: int) -> None:
        start = self._pos if self._pos is not None else 0
        if self._pos is not None:
            self._pos += length
        self._flush_not_tls()
        if self._dead:
            return
        if self._resync:
            # Lost bytes inside the resync window: start searching afresh after them.
            self._rbuf.clear()
            self._rscan = 0
            return
        if self._in_body and self._rec_len - self._rec_have >= length:
            self._rec_have += length
            self._damaged = True
            if self._rec_have == self._rec_len:
                self._finish_record(start + length)
            return
        # Lost framing: the header (or the bytes after this record) are gone.
        self._resync = True
        self._rbuf.clear()
        self._rscan = 0
        self._hdr.clear()
        self._in_body = False
        self._body = None
        self._hs.clear()
        self._hs_resync = True

    def _try_resync(self) -> None:
        buf = self._rbuf
        p = self._rscan
        n = len(buf)
        while p + 5 <= n:
            if self._first_plausible(buf, p):
                length = (buf[p + 3] << 8) | buf[p + 4]
                q = p + 5 + length
                if q + 5 > n:
                    break                   # wait for the second header
                if self._first_plausible(buf, q) and buf[q + 1:q + 3] == buf[p + 1:p + 3]:
                    self._resynced_at(p)
                    return
            p += 1
        self._rscan = p
        if n > _RESYNC_WINDOW:
            self._emit(TlsStopped(side=self.side, span=Span(self.side, self._rstart, self._rstart + n),
                                  frame=self._frame, reason="gap",
                                  detail=f"no record framing in {n} bytes after the gap"))
            self._resync = False
            self._dead = True
            buf.clear()

    def _resynced_at(self, p: int) -> None:
        buf = self._rbuf
        self._resync = False
        self._rscan = 0
        rest = bytes(buf[p:])
        start = self._rstart
        buf.clear()
        self._emit(TlsResynchronised(side=self.side, span=Span(self.side, start, start + p),
                                     frame=self._frame, skipped=p))
        self._consume(rest, start + p)

    def _resync_at_end(self) -> bool:
        """At end of stream, accept the first position from which plausible headers (same
        version) chain exactly to the end of the bytes, or into a cut final record."""
        buf = self._rbuf
        n = len(buf)
        for p in range(min(n, _RESYNC_WINDOW)):
            q, hops = p, 0
            while q + 5 <= n and hops < 64 and self._first_plausible(buf, q) \
                    and buf[q + 1:q + 3] == buf[p + 1:p + 3]:
                q += 5 + ((buf[q + 3] << 8) | buf[q + 4])
                hops += 1
            if hops and (q == n or (q > n and hops >= 2)):
                self._resynced_at(p)
                return True
        return False

    @staticmethod
    def _first_plausible(buf: bytearray, p: int) -> bool:
        return (CT_CHANGE_CIPHER_SPEC <= buf[p] <= CT_APPLICATION_DATA and buf[p + 1] == 3
                and buf[p + 2] <= 4 and ((buf[p + 3] << 8) | buf[p + 4]) <= MAX_RECORD_LENGTH)

    # ---------------------------------------------------------------- record layer

    def _consume(self, data: bytes, offset: int) -> None:
        if self._resync:
            if not self._rbuf:
                self._rstart = offset
            self._rbuf += data
            self._try_resync()
            return
        i = 0
        n = len(data)
        while i < n and not self._dead and not self._resync:
            if not self._in_body:
                if not self._hdr and i + 5 <= n:
                    # A whole record at a record boundary, header and body in ``data`` (after
                    # the handshake nearly every record): framed at once. The same steps as the
                    # general path below takes byte by byte (``sniff_tls`` on the 5 header
                    # bytes, ``_start_record``, the body, ``_finish_record``): a plausible
                    # non-SSLv2 header, nothing of it buffered before.
                    # ``tests/smtp/test_tls.py`` holds any chunking to the same events and
                    # counters.
                    b0 = data[i]
                    length = (data[i + 3] << 8) | data[i + 4]
                    end = i + 5 + length
                    if (CT_CHANGE_CIPHER_SPEC <= b0 <= CT_HEARTBEAT and data[i + 1] == 3
                            and data[i + 2] <= 4 and length <= MAX_RECORD_LENGTH and end <= n):
                        self._is_tls = True
                        self._rec_start = offset + i
                        self._rec_type = b0
                        self._rec_version = (3 << 8) | data[i + 2]
                        self._rec_hdr_len = 5
                        self._rec_len = self._rec_have = length
                        self._body = (bytearray(data[i + 5:end]) if b0 == CT_HANDSHAKE
                                      or (b0 == CT_ALERT and length == 2) else None)
                        self._damaged = False
                        self._first_record = False
                        i = end
                        self._finish_record(offset + i)
                        continue
                if not self._hdr:
                    self._rec_start = offset + i
                    self._hdr_frame, self._hdr_ts = self._frame, self._ts
                    self._hdr_ack, self._hdr_ack_age = self._ack, self._ack_age
                need = 5 - len(self._hdr)   # SSLv2 too: its 2-byte header + 3 sniffed bytes
                chunk = data[i:i + need]
                self._hdr += chunk
                i += len(chunk)
                verdict = sniff_tls(self._hdr)
                if verdict is True and self._hdr[0] & 0x80:
                    sslv2_len = ((self._hdr[0] & 0x7F) << 8) | self._hdr[1]
                    if not self._first_record or sslv2_len < 9:
                        verdict = False
                if verdict is False:
                    self._not_tls(self._rec_start, bytes(self._hdr) + data[i:i + _PREVIEW])
                    return
                if verdict is None:
                    continue
                self._start_record()
                if self._rec_len == self._rec_have:
                    self._finish_record(offset + i)
                continue
            take = min(self._rec_len - self._rec_have, n - i)
            if self._body is not None and not self._damaged:   # keep only the pre-gap prefix
                self._body += data[i:i + take]
            self._rec_have += take
            i += take
            if self._rec_have == self._rec_len:
                self._finish_record(offset + i)

    def _start_record(self) -> None:
        hdr = self._hdr
        self._is_tls = True
        if hdr[0] & 0x80:                   # SSLv2 record: 2-byte header, 3 body bytes sniffed
            self._rec_type = 1
            self._rec_version = 0x0002
            self._rec_hdr_len = 2
            self._rec_len = ((hdr[0] & 0x7F) << 8) | hdr[1]
            self._body = bytearray(hdr[2:])
            self._rec_have = 3
        else:
            self._rec_type = hdr[0]
            self._rec_version = (hdr[1] << 8) | hdr[2]
            self._rec_hdr_len = 5
            self._rec_len = (hdr[3] << 8) | hdr[4]
            self._rec_have = 0
            keep = self._rec_type == CT_HANDSHAKE or (self._rec_type == CT_ALERT
                                                      and self._rec_len == 2)
            self._body = bytearray() if keep else None
        self._in_body = True
        self._damaged = False
        self._first_record = False

    def _finish_record(self, end: int) -> None:
        span = Span(self.side, self._rec_start, end)
        ctype, length, body, damaged = self._rec_type, self._rec_len, self._body, self._damaged
        self._hdr.clear()
        self._in_body = False
        self._body = None
        self._damaged = False
        self.records += 1
        if self._rec_hdr_len == 2:
            if body is not None and not damaged:
                self._sslv2_hello(bytes(body), span)
            return
        if ctype == CT_APPLICATION_DATA:
            self.app_data_records += 1
            self.app_data_bytes += length
            if looks_like_encrypted_alert(length) and self.tls13:
                self._emit(TlsAlert(side=self.side, span=span, frame=self._frame, level=-1, description=-1,
                                    name="encrypted", encrypted=True, content_type=CT_APPLICATION_DATA))
            elif self._app_events < self._max_app_events:
                self._app_events += 1
                self._emit(TlsApplicationData(side=self.side, span=span, frame=self._frame, length=length))
        elif ctype == CT_CHANGE_CIPHER_SPEC:
            self._sent_ccs = True
            self._encrypted = True
            self._emit(TlsChangeCipherSpec(side=self.side, span=span, frame=self._frame))
        elif ctype == CT_ALERT:
            if length == 2 and body is not None and not damaged:
                self._emit(TlsAlert(side=self.side, span=span, frame=self._frame, level=body[0],
                                    description=body[1], name=alert_name(body[1]), encrypted=False))
            elif length != 2:
                self._emit(TlsAlert(side=self.side, span=span, frame=self._frame, level=-1, description=-1,
                                    name="encrypted", encrypted=True))
        elif ctype == CT_HANDSHAKE:
            self._handshake_record(bytes(body or b""), span, length, damaged)
        # heartbeat (24): counted only

    def _sslv2_hello(self, body: bytes, span: Span) -> None:
        fields: dict[str, object] = {"legacy_version": 0, "cipher_suites": 0}
        error = None
        try:
            r = _Reader(body)
            r.uint(1)                       # message type 1 (checked by sniff_tls)
            fields["legacy_version"] = r.uint(2)
            spec_len = r.uint(2)
            r.uint(2)
            r.uint(2)
            fields["cipher_suites"] = spec_len // 3
        except _Short as exc:
            error = f"malformed SSLv2 ClientHello: {exc}"
        self._emit(TlsClientHello(side=self.side, span=span, frame=self._frame, record_version=0x0002,
                                  supported_versions=(), sni=None, alpn=(), sslv2=True, error=error,
                                  **fields))  # type: ignore[arg-type]

    # ---------------------------------------------------------------- handshake layer

    def _handshake_record(self, body: bytes, span: Span, length: int, damaged: bool) -> None:
        if self._encrypted:
            # A clear ClientHello after a TLS 1.3 compatibility CCS (HelloRetryRequest flow), or
            # the server's clear ServerHello after its HelloRetryRequest and the compatibility
            # CCS it sends right after it (RFC 8446 D.4; OpenSSL does).
            if (len(body) >= 6 and (body[0] == 1 or body[0] == 2 and self._sent_hrr)
                    and not self._hs
                    and int.from_bytes(body[1:4], "big") == len(body) - 4 and body[4] == 3):
                pass
            else:
                if self._sent_ccs:
                    self._tls12_evidence = True
                self._emit(TlsEncryptedHandshake(side=self.side, span=span, frame=self._frame, length=length))
                return
        if self._hs_dead:
            return
        if self._hs_resync:
            if len(body) >= 4 and body[0] in HANDSHAKE_NAMES:
                self._hs_resync = False
            else:
                return
        if not self._hs:
            self._hs_start = span.start
        self._hs += body
        while len(self._hs) >= 4:
            mlen = int.from_bytes(self._hs[1:4], "big")
            if 4 + mlen > MAX_HANDSHAKE_BUFFER:
                self._emit(TlsStopped(side=self.side, span=Span(self.side, self._hs_start, span.end),
                                      frame=self._frame, reason="handshake_too_large",
                                      detail=f"{handshake_name(self._hs[0])} of {mlen} bytes"))
                self._hs_dead = True
                self._hs.clear()
                return
            if len(self._hs) < 4 + mlen:
                break
            mtype = self._hs[0]
            msg = bytes(self._hs[4:4 + mlen])
            del self._hs[:4 + mlen]
            self._message(mtype, msg, Span(self.side, self._hs_start, span.end))
            self._hs_start = span.start
            if self._encrypted and self._hs:
                # Bytes after a TLS 1.3 ServerHello in the same record cannot be clear.
                self._hs.clear()
                break
        if damaged:
            # ``body`` was the part before the gap: the message in progress is lost.
            self._hs.clear()
            self._hs_resync = True

    def _message(self, mtype: int, body: bytes, span: Span) -> None:
        if mtype == 1:
            fields: dict[str, object] = {"legacy_version": 0, "supported_versions": (),
                                         "sni": None, "cipher_suites": 0, "alpn": ()}
            error = None
            try:
                _parse_client_hello(body, fields)
            except _Short as exc:
                error = f"malformed ClientHello: {exc}"
            versions = fields["supported_versions"]
            if isinstance(versions, tuple) and 0x0304 in versions:
                self._offered_tls13 = True
            self._emit(TlsClientHello(side=self.side, span=span, frame=self._frame,
                                      record_version=self._rec_version, error=error,
                                      **fields))  # type: ignore[arg-type]
        elif mtype == 2:
            fields = {"legacy_version": 0, "selected_version": 0, "cipher_suite": 0}
            error = None
            random = b""
            try:
                random = _parse_server_hello(body, fields)
            except _Short as exc:
                error = f"malformed ServerHello: {exc}"
            if random == HRR_RANDOM:
                self._sent_hrr = True
                self._emit(TlsHelloRetryRequest(side=self.side, span=span, frame=self._frame,
                                                record_version=self._rec_version,
                                                selected_version=fields["selected_version"],  # type: ignore[arg-type]
                                                cipher_suite=fields["cipher_suite"]))  # type: ignore[arg-type]
                return
            self._sent_hrr = False
            self._emit(TlsServerHello(side=self.side, span=span, frame=self._frame,
                                      record_version=self._rec_version, error=error,
                                      **fields))  # type: ignore[arg-type]
            self._suite = int(fields["cipher_suite"])  # type: ignore[call-overload]
            if fields["selected_version"] == 0x0304 and error is None:
                self._server_tls13 = True
                self._encrypted = True
        elif mtype == 11:
            self._tls12_evidence = True
            certs, error = _parse_certificates(body)
            self._emit(TlsCertificate(side=self.side, span=span, frame=self._frame, certificates=certs,
                                      error=error))
        elif mtype == 12:
            try:
                dh_bits, curve = _parse_server_key_exchange(body, self._suite)
            except _Short:
                dh_bits = curve = 0
            self._emit(TlsServerKeyExchange(side=self.side, span=span, frame=self._frame,
                                            handshake_type=mtype, name=handshake_name(mtype), dh_bits=dh_bits,
                                            curve=curve))
        else:
            if mtype in (15, 16):
                self._tls12_evidence = True
            self._emit(TlsHandshakeOther(side=self.side, span=span, frame=self._frame, handshake_type=mtype,
                                         name=handshake_name(mtype)))
