"""The key types certcli makes: the one table that adding a type changes. Plain data, so that
reading a setting needs no `cryptography` (status and completion stay light); x509.py makes
and recognises the keys from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeyType:
    """A key type by its name in settings (`key_type = "ec-p256"`)."""

    name: str
    #: EC: the curve's names, cryptography's first (further ones are OpenSSL's aliases).
    curves: tuple[str, ...] = ()
    #: RSA: the modulus size in bits.
    rsa_bits: int | None = None


TABLE: tuple[KeyType, ...] = (
    KeyType("ec-p256", curves=("secp256r1", "prime256v1")),
    KeyType("ec-p384", curves=("secp384r1",)),
    KeyType("rsa-2048", rsa_bits=2048),
    KeyType("rsa-3072", rsa_bits=3072),
    KeyType("rsa-4096", rsa_bits=4096),
)
BY_NAME = {k.name: k for k in TABLE}
KEY_TYPES = tuple(BY_NAME)
DEFAULT_KEY_TYPE = TABLE[0].name
#: The reverse lookups: a curve's name (any alias) or an RSA size -> the key type.
BY_CURVE = {curve: k.name for k in TABLE for curve in k.curves}
BY_RSA_BITS = {k.rsa_bits: k.name for k in TABLE if k.rsa_bits is not None}


def described() -> str:
    """The key types as a --help text says them, the default marked."""
    names = [f"{k} (default)" if k == DEFAULT_KEY_TYPE else k for k in KEY_TYPES]
    return f"{', '.join(names[:-1])} or {names[-1]}."
