"""X.509 certificates as a passive observer reads them from a clear TLS <= 1.2 Certificate
message (``smtp.tls``), and the checks the verdict makes on them: the name (RFC 6125) and the
validity at capture time. Sans-I/O; ``cryptography`` is imported lazily, inside
:func:`parse_certificate` only."""
from __future__ import annotations

import calendar
import functools
import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = ["CertInfo", "parse_certificate", "parse_certificate_cached", "cert_matches_host",
           "cert_expired", "cert_not_yet_valid"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CertInfo:
    """What a passive observer reads of one X.509 certificate. On a parse failure ``error`` says
    why and the other fields hold what could be read (empty strings otherwise)."""

    subject: str                       #: RFC 4514 string
    common_name: str | None
    sans: tuple[str, ...]              #: subjectAltName DNS names, as written
    issuer: str                        #: RFC 4514 string
    not_before: str                    #: ISO 8601 UTC, "YYYY-MM-DDTHH:MM:SSZ"
    not_after: str
    self_signed: bool
    sha256: str                        #: hex of SHA-256 over the DER
    error: str | None = None
    ip_sans: tuple[str, ...] = ()      #: subjectAltName IP addresses


def _iso(dt: datetime) -> str:
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_certificate(der: bytes) -> CertInfo:
    """Parse one DER certificate. Never raises: failures land in ``CertInfo.error``."""
    digest = hashlib.sha256(der).hexdigest()
    fields: dict[str, object] = {
        "subject": "", "common_name": None, "sans": (), "issuer": "", "not_before": "",
        "not_after": "", "self_signed": False, "sha256": digest, "ip_sans": (),
    }
    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID
    except ImportError as exc:  # pragma: no cover - cryptography is an install requirement
        return CertInfo(error=f"cryptography unavailable: {exc}", **fields)  # type: ignore[arg-type]
    errors: list[str] = []
    try:
        cert = x509.load_der_x509_certificate(bytes(der))
    except Exception as exc:  # noqa: BLE001 - any parse failure is data
        return CertInfo(error=f"not a certificate: {exc}", **fields)  # type: ignore[arg-type]
    try:
        fields["subject"] = cert.subject.rfc4514_string()
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if cns:
            value = cns[0].value
            fields["common_name"] = value if isinstance(value, str) else value.decode("latin-1")
    except Exception as exc:  # noqa: BLE001
        errors.append(f"subject: {exc}")
    try:
        fields["issuer"] = cert.issuer.rfc4514_string()
    except Exception as exc:  # noqa: BLE001
        errors.append(f"issuer: {exc}")
    try:
        nb = getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before
        na = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after
        fields["not_before"] = _iso(nb)
        fields["not_after"] = _iso(na)
    except Exception as exc:  # noqa: BLE001
        errors.append(f"validity: {exc}")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        fields["sans"] = tuple(san.get_values_for_type(x509.DNSName))
        fields["ip_sans"] = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        pass
    except Exception as exc:  # noqa: BLE001
        errors.append(f"subjectAltName: {exc}")
    try:
        if cert.issuer == cert.subject:
            try:
                cert.verify_directly_issued_by(cert)
                fields["self_signed"] = True
            except Exception as exc:  # noqa: BLE001
                # InvalidSignature: the names match but the key did not sign it. Anything else
                # (unsupported algorithm, old cryptography): cannot check cheaply, trust names.
                fields["self_signed"] = type(exc).__name__ != "InvalidSignature"
    except Exception as exc:  # noqa: BLE001
        errors.append(f"self-signed check: {exc}")
    return CertInfo(error="; ".join(errors) or None, **fields)  # type: ignore[arg-type]


def _norm_name(name: str) -> str:
    name = name.strip().rstrip(".").lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    return name


def _match_pattern(pattern: str, host: str) -> bool:
    pattern = _norm_name(pattern)
    if not pattern or not host:
        return False
    if "*" not in pattern:
        return pattern == host
    p_labels = pattern.split(".")
    h_labels = host.split(".")
    # RFC 6125 6.4.3 as browsers and Python's ssl apply it: only a whole left-most label "*",
    # matching exactly one non-empty label, and at least two labels after it (no "*.com").
    if p_labels[0] != "*" or any("*" in label for label in p_labels[1:]):
        return False
    if len(p_labels) < 3 or len(p_labels) != len(h_labels) or not h_labels[0]:
        return False
    return p_labels[1:] == h_labels[1:]


def cert_matches_host(cert: CertInfo, host: str) -> bool:
    """RFC 6125 name check: DNS SANs (a single left-most wildcard label allowed); the subject CN
    only when the certificate has no DNS SAN. An IP address matches only an IP SAN."""
    try:
        ip = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        ip = None
    if ip is not None:
        for candidate in cert.ip_sans:
            try:
                if ipaddress.ip_address(candidate) == ip:
                    return True
            except ValueError:
                continue
        return False
    wanted = _norm_name(host)
    if not wanted or "*" in wanted:
        return False
    names: tuple[str, ...] = cert.sans
    if not names and not cert.ip_sans and cert.common_name:
        names = (cert.common_name,)
    return any(_match_pattern(name, wanted) for name in names)


# A relay sees the same few certificates in conversation after conversation, and strptime
# is slow: each validity date is converted once (bounded).
@functools.lru_cache(maxsize=512)
def _epoch_ns(iso: str) -> int | None:
    try:
        dt = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return calendar.timegm(dt.timetuple()) * 1_000_000_000


def cert_expired(cert: CertInfo, at_ns: int) -> bool:
    """True when ``at_ns`` (the capture time, ns since the epoch) is after ``not_after``."""
    end = _epoch_ns(cert.not_after)
    return end is not None and at_ns > end + 999_999_999


def cert_not_yet_valid(cert: CertInfo, at_ns: int) -> bool:
    """True when ``at_ns`` is before ``not_before``."""
    start = _epoch_ns(cert.not_before)
    return start is not None and at_ns < start


# A relay sees the same few server certificates in conversation after conversation: parse
# each once (CertInfo is immutable). Bounded: 256 entries of a few KiB each.
parse_certificate_cached = functools.lru_cache(maxsize=256)(parse_certificate)
