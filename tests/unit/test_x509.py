from __future__ import annotations

import typing
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from certcli import x509 as x
from certcli.errors import InvalidInputError, UsageError
from tests.lab.localca import LocalCA


@pytest.mark.parametrize(
    ("key_type", "cls", "size"),
    [
        ("ec-p256", ec.EllipticCurvePrivateKey, 256),
        ("ec-p384", ec.EllipticCurvePrivateKey, 384),
        ("rsa-2048", rsa.RSAPrivateKey, 2048),
        ("rsa-3072", rsa.RSAPrivateKey, 3072),
    ],
)
def test_key_generation(key_type: str, cls: type, size: int) -> None:
    key = x.generate_private_key(key_type)
    assert isinstance(key, cls)
    assert key.key_size == size
    assert x.key_type_of(key.public_key()) == key_type


def test_every_key_type_in_the_table_is_made_and_recognised() -> None:
    """The table is the only list: what x509 makes, config accepts and completion offers."""
    from certcli.config import Source, checked
    from certcli.keytypes import TABLE

    for spec in TABLE:
        if spec.rsa_bits != 4096:  # a second to make; rsa-3072 stands for it
            key = x.generate_private_key(spec.name)
            assert x.key_type_of(key.public_key()) == spec.name
        assert checked("key_type", spec.name, Source("key_type")) == spec.name
    other = ec.generate_private_key(ec.SECP521R1()).public_key()
    assert x.key_type_of(other) == "ec-secp521r1"  # outside the table: named in its style
    assert x.key_type_of(rsa.generate_private_key(65537, 1024).public_key()) == "rsa-1024"


def test_the_help_texts_name_the_table_s_key_types() -> None:
    from certcli.cli import cmd_csr, cmd_issue
    from certcli.keytypes import described

    assert described() == "ec-p256 (default), ec-p384, rsa-2048, rsa-3072 or rsa-4096."
    for command in (cmd_csr.csr, cmd_issue.issue):
        hint = typing.get_type_hints(command, include_extras=True)["key_type"]
        assert hint.__metadata__[0].help == described()


def test_unknown_key_type_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="rsa-1024"):
        x.generate_private_key("rsa-1024")


def test_csr_carries_sans_and_dn_and_verifies() -> None:
    key = x.generate_private_key("ec-p256")
    pem = x.make_csr(
        key, ["example.com", "www.example.com", "192.0.2.7"], x.Subject(org="Acme", country="DE")
    )
    csr = x.load_csr(pem)
    assert csr.is_signature_valid
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["example.com", "www.example.com"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "example.com"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme"
    assert csr.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "DE"
    assert x.same_public_key(csr.public_key(), key.public_key())


def test_chain_parsing_info_and_fingerprint() -> None:
    ca = LocalCA(intermediates=2)
    issued = ca.issue(["Shop.Example.com", "*.example.com"], days=30)
    certs = x.parse_certificates(issued.fullchain_pem, "f.pem")
    assert len(certs) == 3
    info = x.cert_info(certs[0])
    assert info.sans == ("shop.example.com", "*.example.com")
    assert info.issuer == "certcli test intermediate 2"
    assert info.key_type == "ec-p256"
    assert info.not_after.tzinfo is not None
    assert len(info.fingerprint_sha256.split(":")) == 32
    assert info.fingerprint_sha256 == info.fingerprint_sha256.upper()
    x.check_chain(certs[0], certs[1:])


def test_chain_out_of_order_is_refused() -> None:
    ca = LocalCA(intermediates=2)
    issued = ca.issue(["example.com"])
    with pytest.raises(InvalidInputError, match="out of order"):
        x.check_chain(issued.cert, list(reversed(issued.chain)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello", "not a PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "malformed"),
    ],
)
def test_bad_certificate_input(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        x.parse_certificates(data, "f.pem")


def test_key_where_certificate_belongs_and_back() -> None:
    ca = LocalCA(intermediates=0)
    issued = ca.issue(["example.com"])
    with pytest.raises(InvalidInputError, match="private key, not a certificate"):
        x.parse_certificates(issued.key_pem, "cert.pem")
    with pytest.raises(InvalidInputError, match="certificate, not a private key"):
        x.load_private_key(issued.cert_pem, "key.pem")
    key = x.load_private_key(issued.key_pem, "key.pem")
    assert x.same_public_key(key.public_key(), issued.cert.public_key())
    other = ec.generate_private_key(ec.SECP256R1())
    assert not x.same_public_key(other.public_key(), issued.cert.public_key())


def test_info_round_trips_through_json() -> None:
    from certcli.models import CertInfo

    issued = LocalCA(intermediates=0).issue(
        ["example.com"], not_before=datetime(2026, 1, 1, tzinfo=UTC)
    )
    info = x.cert_info(issued.cert)
    assert CertInfo.from_json(info.to_json()) == info
