"""Keys, CSRs and certificates, on `cryptography` only."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from certcli.domains import is_ip
from certcli.errors import InvalidInputError, UsageError
from certcli.keytypes import BY_CURVE, BY_NAME, BY_RSA_BITS, KEY_TYPES
from certcli.models import CertInfo

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)


@dataclass(frozen=True)
class Subject:
    """Distinguished-name fields of a CSR; the CN is the first domain."""

    org: str | None = None
    org_unit: str | None = None
    country: str | None = None
    state: str | None = None
    city: str | None = None


def generate_private_key(key_type: str) -> PrivateKey:
    spec = BY_NAME.get(key_type)
    if spec is None:
        raise UsageError(f"unknown key type {key_type!r}", f"choose one of: {', '.join(KEY_TYPES)}")
    if spec.rsa_bits is not None:
        return rsa.generate_private_key(public_exponent=65537, key_size=spec.rsa_bits)
    return ec.generate_private_key(getattr(ec, spec.curves[0].upper())())  # ec.SECP256R1


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def key_type_of(public_key: object) -> str:
    """The key type of a key certcli may not have made (an upload, an import): a name out of
    the table, or one in its style (rsa-1024, ec-secp521r1, ed25519)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return BY_RSA_BITS.get(public_key.key_size, f"rsa-{public_key.key_size}")
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return BY_CURVE.get(public_key.curve.name, f"ec-{public_key.curve.name}")
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "ed448"
    return "unknown"


def _general_name(identifier: str) -> x509.GeneralName:
    if is_ip(identifier):
        return x509.IPAddress(ipaddress.ip_address(identifier))
    return x509.DNSName(identifier)


def make_csr(key: PrivateKey, domains: list[str], subject: Subject | None = None) -> bytes:
    """A PEM CSR for `domains` (all as SANs) signed with SHA-256."""
    subject = subject or Subject()
    # The CN repeats the first DNS name; never an IP, which CAs would read as a DNS name.
    first_dns = next((d for d in domains if not is_ip(d)), None)
    attributes = []
    if first_dns and len(first_dns) <= 64:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, first_dns))
    for oid, value in (
        (NameOID.ORGANIZATION_NAME, subject.org),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, subject.org_unit),
        (NameOID.COUNTRY_NAME, subject.country),
        (NameOID.STATE_OR_PROVINCE_NAME, subject.state),
        (NameOID.LOCALITY_NAME, subject.city),
    ):
        if value:
            attributes.append(x509.NameAttribute(oid, value))
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(attributes))
        .add_extension(
            x509.SubjectAlternativeName([_general_name(d) for d in domains]), critical=False
        )
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(data)


def _pem_labels(data: bytes) -> list[str]:
    return [m.group(1).decode() for m in _PEM_BLOCK.finditer(data)]


def parse_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Every certificate in a PEM file, in order; a clear error when there is none."""
    labels = _pem_labels(data)
    if "CERTIFICATE" not in labels:
        if any("PRIVATE KEY" in label for label in labels):
            raise InvalidInputError(f"{source} holds a private key, not a certificate")
        if "CERTIFICATE REQUEST" in labels:
            raise InvalidInputError(
                f"{source} holds a certificate request (CSR), not a certificate",
                "send the CSR to your CA and upload the certificate it returns",
            )
        raise InvalidInputError(f"{source} is not a PEM certificate (no BEGIN CERTIFICATE block)")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise InvalidInputError(f"{source} holds a malformed PEM certificate ({exc})") from None


def load_private_key(data: bytes, source: str) -> PrivateKey:
    labels = _pem_labels(data)
    if not any("PRIVATE KEY" in label for label in labels):
        if "CERTIFICATE" in labels:
            raise InvalidInputError(f"{source} holds a certificate, not a private key")
        raise InvalidInputError(f"{source} is not a PEM private key (no BEGIN PRIVATE KEY block)")
    if "ENCRYPTED PRIVATE KEY" in labels or b"Proc-Type: 4,ENCRYPTED" in data:
        raise InvalidInputError(
            f"{source} holds an encrypted private key",
            f"decrypt it first, e.g. openssl pkey -in {source} -out plain.key",
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{source} holds a malformed private key ({exc})") from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise InvalidInputError(f"{source} holds a key type certcli does not support")
    return key


def same_public_key(a: object, b: object) -> bool:
    def der(key: object) -> bytes:
        return key.public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    return der(a) == der(b)


def sans_of(cert: x509.Certificate) -> tuple[str, ...]:
    """DNS names and IP addresses of the SAN extension, lower-cased, in certificate order."""
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return ()
    names = [n.lower() for n in ext.value.get_values_for_type(x509.DNSName)]
    names += [ip.compressed for ip in ext.value.get_values_for_type(x509.IPAddress)]
    return tuple(dict.fromkeys(names))


def _name_attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attrs = name.get_attributes_for_oid(oid)
    value = attrs[0].value if attrs else None
    return value if isinstance(value, str) else None


def issuer_label(cert: x509.Certificate) -> str:
    """The issuer's CN, else its O, else the whole DN."""
    return (
        _name_attr(cert.issuer, NameOID.COMMON_NAME)
        or _name_attr(cert.issuer, NameOID.ORGANIZATION_NAME)
        or cert.issuer.rfc4514_string()
    )


def fingerprint_sha256(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def cert_info(cert: x509.Certificate) -> CertInfo:
    return CertInfo(
        subject_cn=_name_attr(cert.subject, NameOID.COMMON_NAME),
        sans=sans_of(cert),
        issuer=issuer_label(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=format(cert.serial_number, "x"),
        fingerprint_sha256=fingerprint_sha256(cert),
        key_type=key_type_of(cert.public_key()),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


#: ECDSA curves TLS clients accept in a server certificate (the CA/Browser Forum's list).
SERVER_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
MIN_RSA_BITS = 2048


_NOT_A_LEAF = "upload the server certificate your CA issued (first in the file), not a CA's"
_NEW_KEY = "get a certificate for a new key: `certcli csr` makes an ec-p256 or rsa-2048 one"
_NOT_FOR_TLS = "ask your CA for a TLS server certificate (serverAuth)"


def server_certificate_problem(cert: x509.Certificate) -> tuple[str, str] | None:
    """Why `cert` cannot serve as a TLS server's certificate (a CA certificate, a weak or
    unusual key, key usages that exclude TLS) and what to do, or None when it can."""
    ext = cert.extensions
    with contextlib.suppress(x509.ExtensionNotFound):
        if ext.get_extension_for_class(x509.BasicConstraints).value.ca:
            return "it is a CA certificate (basicConstraints CA:TRUE)", _NOT_A_LEAF
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        bits = f"{key.key_size} bits; TLS clients require at least {MIN_RSA_BITS}"
        return f"its RSA key has {bits}", _NEW_KEY
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in SERVER_CURVES:
        curves = ", ".join(SERVER_CURVES.values())
        return f"its key is on the curve {key.curve.name}; TLS clients accept {curves}", _NEW_KEY
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return f"its key type ({type(key).__name__}) is not one TLS servers use", _NEW_KEY
    with contextlib.suppress(x509.ExtensionNotFound):
        usage = ext.get_extension_for_class(x509.KeyUsage).value
        # every TLS 1.3 handshake signs (digitalSignature); TLS 1.2's RSA key exchange
        # needs keyEncipherment
        rsa_ok = isinstance(key, rsa.RSAPublicKey) and usage.key_encipherment
        if not (usage.digital_signature or rsa_ok):
            return "its keyUsage allows neither digitalSignature nor keyEncipherment", _NOT_FOR_TLS
    with contextlib.suppress(x509.ExtensionNotFound):
        purposes = set(ext.get_extension_for_class(x509.ExtendedKeyUsage).value)
        allowed = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
        if not purposes & allowed:
            return "its extendedKeyUsage does not include serverAuth", _NOT_FOR_TLS
    return None


def check_server_certificate(cert: x509.Certificate, source: str) -> None:
    """InvalidInputError saying why, unless `cert` can serve as a TLS server's certificate."""
    problem = server_certificate_problem(cert)
    if problem:
        reason, hint = problem
        raise InvalidInputError(f"{source} cannot serve TLS: {reason}", hint)


def is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def check_chain(leaf: x509.Certificate, chain: list[x509.Certificate]) -> None:
    """Each certificate must be signed by the next one, as servers send them."""
    for child, parent in zip([leaf, *chain], chain, strict=False):
        try:
            child.verify_directly_issued_by(parent)
        except (InvalidSignature, ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"the chain is out of order or does not belong to the certificate: "
                f"{child.subject.rfc4514_string()} is not signed by "
                f"{parent.subject.rfc4514_string()} ({type(exc).__name__})",
                "give the intermediates in order, the one that signed the certificate first",
            ) from None


def ari_cert_id(cert: x509.Certificate) -> str | None:
    """The certificate's ID for ACME Renewal Information (RFC 9773): base64url of its
    authority key identifier, a dot, base64url of its serial's DER bytes; None without AKI."""
    import base64

    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    if aki.key_identifier is None:
        return None
    serial = cert.serial_number
    serial_bytes = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    return f"{b64(aki.key_identifier)}.{b64(serial_bytes)}"


def jwk_thumbprint(key_pem: bytes) -> str:
    """The RFC 7638 SHA-256 thumbprint of a private key's public JWK, unpadded base64url
    (an ACME key authorization's second half; dns-persist-01 hashes it into accounturi)."""
    import base64
    import hashlib
    import json

    def b64(number: int, size: int | None = None) -> str:
        raw = number.to_bytes(size or max(1, (number.bit_length() + 7) // 8), "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    public = load_private_key(key_pem, "the account key").public_key()
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        jwk = {"e": b64(numbers.e), "kty": "RSA", "n": b64(numbers.n)}
    elif isinstance(public, ec.EllipticCurvePublicKey):
        point = public.public_numbers()
        size = (public.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        jwk = {
            "crv": crv[public.curve.name],
            "kty": "EC",
            "x": b64(point.x, size),
            "y": b64(point.y, size),
        }
    else:
        raise InvalidInputError("the account key has no JWK thumbprint certcli can compute")
    # the members in lexicographic order, no whitespace (RFC 7638, section 3)
    text = json.dumps(jwk, sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
