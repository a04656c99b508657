"""A throwaway self-signed certificate for the tests that run real TLS peers on loopback."""
from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

__all__ = ["self_signed"]


def self_signed(d: Path, *, cn: str, dns: tuple[str, ...] = (), ips: tuple[str, ...] = (),
                ca: bool = False, rsa: bool = False) -> tuple[Path, Path]:
    """An EC P-256 certificate valid from an hour ago for two days, written as ``cert.pem`` and
    ``key.pem`` in ``d``. ``ca``: also usable as the trust anchor (BasicConstraints CA).
    ``rsa``: an RSA 2048 key instead (the DHE_RSA and ECDHE_RSA cipher suites need one)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
    from cryptography.x509.oid import NameOID

    key: ec.EllipticCurvePrivateKey | rsa_keys.RSAPrivateKey = (
        rsa_keys.generate_private_key(public_exponent=65537, key_size=2048) if rsa
        else ec.generate_private_key(ec.SECP256R1()))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=2)))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                        critical=True)
    cert = builder.sign(key, hashes.SHA256())
    d.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = d / "cert.pem", d / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile
