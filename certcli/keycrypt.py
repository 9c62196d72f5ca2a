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
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = os.urandom(_SALT), os.urandom(_NONCE)
    return MAGIC + salt + nonce + AESGCM(_derive(passphrase, salt)).encrypt(nonce, data, MAGIC)


def decrypt(blob: bytes, passphrase: bytes, source: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not blob.startswith(MAGIC):
        raise InvalidInputError(f"{source} is not a key encrypted by certcli")
    body = blob[len(MAGIC) :]
    salt, nonce, sealed = body[:_SALT], body[_SALT : _SALT + _NONCE], body[_SALT + _NONCE :]
    try:
        return AESGCM(_derive(passphrase, salt)).decrypt(nonce, sealed, MAGIC)
    except InvalidTag:
        raise InvalidInputError(
            f"the passphrase does not open {source}",
            "check CERTCLI_PASSPHRASE or --passphrase-file",
        ) from None
