"""`download`: the live certificate material in the shape a server wants."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from certcli.errors import InvalidInputError, NotFoundError, UsageError
from certcli.storage.fsio import FILE_MODE, KEY_MODE
from certcli.storage.protocol import Storage

WHATS = ("cert", "chain", "fullchain", "key", "bundle", "pkcs12")
_WITH_KEY = {"key", "bundle", "pkcs12"}
PASSWORD_ENV = "CERTCLI_PKCS12_PASSWORD"


@dataclass(frozen=True)
class Exported:
    data: bytes
    secret: bool  # holds the private key: written 0600


def export(
    store: Storage, name: str, what: str, *, include_key: bool, password: bytes | None
) -> Exported:
    if what not in WHATS:
        raise UsageError(f"unknown --what {what!r}", f"choose one of: {', '.join(WHATS)}")
    if what in _WITH_KEY and not include_key:
        raise UsageError(
            f"--what {what} contains the private key",
            "add --include-key to let the key leave the store",
        )
    read = store.read_live_file
    if what == "cert":
        return Exported(read(name, "cert.pem"), False)
    if what == "chain":
        chain = read(name, "chain.pem")
        if not chain.strip():
            raise NotFoundError(
                f"{name!r} has no chain: its certificate came without intermediates"
            )
        return Exported(chain, False)
    if what == "fullchain":
        return Exported(read(name, "fullchain.pem"), False)
    if what == "key":
        return Exported(read(name, "privkey.pem"), True)
    if what == "bundle":  # HAProxy's crt file: the full chain, then the key
        return Exported(b"".join(store.read_live_files(name, "fullchain.pem", "privkey.pem")), True)
    if not password:
        raise UsageError(
            "a PKCS#12 file needs a password",
            f"give it with --password-file FILE or the {PASSWORD_ENV} environment variable",
        )
    return Exported(_pkcs12(store, name, password), True)


def _pkcs12(store: Storage, name: str, password: bytes) -> bytes:
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    from certcli import x509 as x

    fullchain, key_pem = store.read_live_files(name, "fullchain.pem", "privkey.pem")
    certs = x.parse_certificates(fullchain, name)
    key = x.load_private_key(key_pem, name)
    return pkcs12.serialize_key_and_certificates(
        name.encode(), key, certs[0], certs[1:] or None, BestAvailableEncryption(password)
    )


def read_password_file(path: Path) -> bytes:
    from certcli.inputs import read_input

    password = read_input(path, "password").split(b"\n", 1)[0].rstrip(b"\r")
    if not password:
        raise InvalidInputError(f"password file {path} is empty")
    return password


def _open_target(path: Path) -> tuple[int, str]:
    """The descriptor of --out's directory and the name in it, once the target is known to
    be a new name or a regular file: a device, FIFO, socket, link or directory there is never
    replaced, and a link in the directory's path is followed only when root or certcli's user
    owns it."""
    from certcli.safepath import PlantedLinkError, kind, lstat_at, open_dir

    if not path.name or path.name == "..":
        raise UsageError(f"--out {path} is a directory", "give a file name")
    try:
        parent = open_dir(path.parent)
    except PlantedLinkError as exc:
        raise UsageError(
            f"--out {path}: {exc.strerror}; certcli does not follow it",
            "give a path without links others own",
        ) from None
    except (FileNotFoundError, NotADirectoryError):
        raise NotFoundError(
            f"the directory of --out {path} does not exist", f"create it: mkdir -p {path.parent}"
        ) from None
    except OSError as exc:
        raise InvalidInputError(f"cannot write {path}: {exc.strerror}") from None
    try:
        st = lstat_at(parent, path.name)
    except OSError as exc:
        os.close(parent)
        raise InvalidInputError(f"cannot write {path}: {exc.strerror}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        os.close(parent)
        raise UsageError(
            f"--out {path} is {kind(st.st_mode)}; certcli replaces only a regular file",
            "give a new file name, or --out - to write to stdout",
        )
    return parent, path.name


def check_export_target(path: Path) -> None:
    """Refuse a bad --out before anything is done (nothing is written)."""
    os.close(_open_target(path)[0])


def write_export(path: Path, exported: Exported) -> None:
    """Write atomically, a key-bearing file 0600 from its creation, by a rename in the
    directory's descriptor (never through whatever stands at the name)."""
    from certcli.safepath import replace_at

    parent, name = _open_target(path)
    try:
        replace_at(parent, name, exported.data, KEY_MODE if exported.secret else FILE_MODE)
    except OSError as exc:
        raise InvalidInputError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        os.close(parent)


def password_from_env() -> bytes | None:
    value = os.environ.get(PASSWORD_ENV)
    return value.encode() if value else None
