from __future__ import annotations

import pytest

from certcli.errors import InvalidInputError
from certcli.keycrypt import MAGIC, decrypt, encrypt

KEY = b"-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\n"


def test_round_trip_and_no_plaintext() -> None:
    sealed = encrypt(KEY, b"correct horse")
    assert sealed.startswith(MAGIC)
    assert b"PRIVATE KEY" not in sealed and b"MIGHAgEA" not in sealed
    assert decrypt(sealed, b"correct horse", "k") == KEY
    assert encrypt(KEY, b"correct horse") != sealed  # a fresh salt and nonce each time


def test_a_wrong_passphrase_or_a_tampered_file_is_a_clear_error() -> None:
    sealed = encrypt(KEY, b"correct horse")
    with pytest.raises(InvalidInputError, match="passphrase does not open"):
        decrypt(sealed, b"battery staple", "k")
    with pytest.raises(InvalidInputError, match="passphrase does not open"):
        decrypt(sealed[:-1] + bytes([sealed[-1] ^ 1]), b"correct horse", "k")
    with pytest.raises(InvalidInputError, match="not a key encrypted by certcli"):
        decrypt(KEY, b"correct horse", "k")
