"""Private keys encrypted at rest: AES-256-GCM under a key derived from a passphrase with
scrypt (memory-hard). Used for archived and pending keys when `[store] encrypt_keys` is on;
`live/privkey.pem` stays plaintext (0600) because web servers read it."""

from __future__ import annotations

import os

from certcli.errors import InvalidInputError

MAGIC = b"certcli-encrypted-key-v1\n"
_SALT, _NONCE = 16, 12


def _derive(passphrase: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase)


def encrypt(data: bytes, passphrase: bytes) -> bytes:
    return Sealer(passphrase).seal(data)


def decrypt(blob: bytes, passphrase: bytes, source: str) -> bytes:
    return Sealer(passphrase).open(blob, source)


class Sealer:
    """encrypt/decrypt for many keys under one passphrase, scrypt run once per salt: what
    one Sealer seals shares its salt (each key its own nonce), and a salt met once is not
    derived again. A PostgreSQL store seals and opens every key this way: `sync` of 300
    changed lineages would otherwise run scrypt (memory-hard, slow by design) 300 times."""

    def __init__(self, passphrase: bytes) -> None:
        self._passphrase = passphrase
        self._salt = os.urandom(_SALT)
        self._derived: dict[bytes, bytes] = {}

    def _key(self, salt: bytes) -> bytes:
        if salt not in self._derived:
            self._derived[salt] = _derive(self._passphrase, salt)
        return self._derived[salt]

    def seal(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(_NONCE)
        return (
            MAGIC + self._salt + nonce + AESGCM(self._key(self._salt)).encrypt(nonce, data, MAGIC)
        )

    def open(self, blob: bytes, source: str) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not blob.startswith(MAGIC):
            raise InvalidInputError(f"{source} is not a key encrypted by certcli")
        body = blob[len(MAGIC) :]
        salt, nonce, sealed = body[:_SALT], body[_SALT : _SALT + _NONCE], body[_SALT + _NONCE :]
        try:
            return AESGCM(self._key(salt)).decrypt(nonce, sealed, MAGIC)
        except InvalidTag:
            raise InvalidInputError(
                f"the passphrase does not open {source}",
                "check CERTCLI_PASSPHRASE or --passphrase-file",
            ) from None
