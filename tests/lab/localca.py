"""A throwaway certificate authority for tests, the demo and Pebble's own TLS listener."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certcli test lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _pem(obj: x509.Certificate) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


@dataclass
class Authority:
    """One CA certificate and its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | None
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.cert)

    @property
    def chain_pem(self) -> bytes:
        return b"".join(_pem(c) for c in self.chain)

    @property
    def fullchain_pem(self) -> bytes:
        return self.cert_pem + self.chain_pem

    @property
    def key_pem(self) -> bytes:
        assert self.key is not None
        return key_pem(self.key)


class LocalCA:
    """A root and `intermediates` intermediate CAs; leaves are signed by the last one."""

    def __init__(self, name: str = "certcli test", intermediates: int = 1) -> None:
        now = datetime.now(UTC)
        self.root = self._ca(f"{name} root", None, now)
        self.intermediates: list[Authority] = []
        parent = self.root
        for i in range(intermediates):
            parent = self._ca(f"{name} intermediate {i + 1}", parent, now)
            self.intermediates.append(parent)

    @staticmethod
    def _ca(cn: str, parent: Authority | None, now: datetime) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        issuer = parent or None
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(issuer.cert.subject if issuer else _name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
        return Authority(cert, key)

    @property
    def issuer(self) -> Authority:
        return self.intermediates[-1] if self.intermediates else self.root

    @property
    def chain(self) -> list[x509.Certificate]:
        """What a server sends after its leaf: intermediates, nearest first."""
        return [a.cert for a in reversed(self.intermediates)]

    def issue(
        self,
        names: list[str],
        *,
        days: float = 90,
        not_before: datetime | None = None,
        key: ec.EllipticCurvePrivateKey | None = None,
        public_key: object | None = None,
        server_auth: bool = True,
    ) -> Issued:
        """A leaf for `names` (the first also as CN), valid `days` from `not_before`."""
        start = not_before or datetime.now(UTC) - timedelta(minutes=5)
        if public_key is None:
            key = key or ec.generate_private_key(ec.SECP256R1())
            public_key = key.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.issuer.cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        )
        if server_auth:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False
            )
        cert = builder.sign(self.issuer.key, hashes.SHA256())
        return Issued(cert, key, self.chain)

    def sign_csr(self, csr_pem: bytes, *, days: float = 90) -> Issued:
        """Sign a CSR as a commercial CA would: its SANs, its public key."""
        csr = x509.load_pem_x509_csr(csr_pem)
        assert csr.is_signature_valid
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [n.value if isinstance(n, x509.DNSName) else str(n.value) for n in sans]
        return self.issue(names, days=days, public_key=csr.public_key())

    def write_root(self, path: Path) -> Path:
        path.write_bytes(self.root.pem)
        return path
