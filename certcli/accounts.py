"""ACME accounts in the store: one per CA directory URL, created once and reused."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from certcli.errors import StoreError
from certcli.storage.files import KEY_MODE, atomic_write, make_dirs
from certcli.storage.protocol import Storage
from certcli.trust import check_path, read_trusted


@dataclass(frozen=True)
class Account:
    directory: str
    uri: str
    contact: tuple[str, ...]
    terms_of_service: str | None
    created: str
    key_pem: bytes


def account_id(directory_url: str) -> str:
    return hashlib.sha256(directory_url.encode()).hexdigest()[:16]


def account_dir(store: Storage, directory_url: str) -> Path:
    host = urlsplit(directory_url).netloc.replace(":", "_") or "unknown"
    return store.root / "accounts" / host / account_id(directory_url)


def load_account(store: Storage, directory_url: str) -> Account | None:
    directory = account_dir(store, directory_url)
    store.check_trusted()
    try:
        # the key signs every request to the CA: only what nobody else can change is used
        for parent in (directory.parent.parent, directory.parent, directory):
            check_path(parent)
        data = json.loads(read_trusted(directory / "account.json"))
        key_pem = read_trusted(directory / "key.pem")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read the account in {directory}: {exc}") from None
    return Account(
        directory=data["directory"],
        uri=data["uri"],
        contact=tuple(data.get("contact", ())),
        terms_of_service=data.get("terms_of_service"),
        created=data["created"],
        key_pem=key_pem,
    )


def load_directory(store: Storage, directory_url: str, max_age: float) -> dict | None:
    """The CA's directory as fetched at most `max_age` seconds ago, if kept (beside the
    account, so a CA without our account is always asked afresh)."""
    path = account_dir(store, directory_url) / "directory.json"
    try:
        data = json.loads(read_trusted(path))
        fresh = 0 <= time.time() - float(data["fetched"]) <= max_age
        return data["directory"] if fresh and isinstance(data["directory"], dict) else None
    except (OSError, ValueError, KeyError, TypeError, StoreError):
        return None  # a cache: anything odd means asking the CA again


def save_directory(store: Storage, directory_url: str, directory: dict | None) -> None:
    """Keep the CA's directory for the next runs (None forgets it); best effort."""
    path = account_dir(store, directory_url) / "directory.json"
    try:
        if directory is None:
            path.unlink(missing_ok=True)
        elif path.parent.is_dir():
            atomic_write(
                path, json.dumps({"fetched": time.time(), "directory": directory}).encode()
            )
    except OSError:
        pass


def save_account(store: Storage, account: Account) -> None:
    directory = account_dir(store, account.directory)
    data = {k: v for k, v in asdict(account).items() if k != "key_pem"}
    data["contact"] = list(account.contact)
    try:
        make_dirs(directory)
        atomic_write(directory / "key.pem", account.key_pem, KEY_MODE)
        atomic_write(directory / "account.json", json.dumps(data, indent=2).encode())
    except OSError as exc:
        raise StoreError(f"cannot write the account in {directory}: {exc.strerror}") from None


def save_pending_key(store: Storage, account: Account, key_pem: bytes) -> Path:
    """Keep a new account key beside the old one until the CA has taken it (a crash in
    between leaves both, and the operator can tell which the CA knows)."""
    path = account_dir(store, account.directory) / "key.pem.new"
    try:
        atomic_write(path, key_pem, KEY_MODE)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}") from None
    return path


def retire_account(store: Storage, account: Account) -> Path:
    """Move a deactivated account aside: the next issuance creates a new one."""
    import os

    directory = account_dir(store, account.directory)
    retired = directory.with_name(f"{directory.name}.deactivated-{int(time.time())}")
    try:
        os.rename(directory, retired)
    except OSError as exc:
        raise StoreError(f"cannot move {directory} aside: {exc.strerror}") from None
    return retired
