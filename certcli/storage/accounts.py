"""ACME accounts in the store: one per CA directory URL, created once and reused, in
`accounts/<host>/<id>/` with the CA's directory kept beside it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from certcli.errors import StoreError
from certcli.models import Account
from certcli.storage.fsio import KEY_MODE, atomic_write, make_dirs
from certcli.storage.locks import LockingStore
from certcli.trust import check_path, read_trusted


def account_id(directory_url: str) -> str:
    return hashlib.sha256(directory_url.encode()).hexdigest()[:16]


class AccountStore(LockingStore):
    """The accounts' files: the key 0600, written atomically, read only when nobody else
    could have changed them (the key signs every request to the CA)."""

    def _account_dir(self, directory_url: str) -> Path:
        host = urlsplit(directory_url).netloc.replace(":", "_") or "unknown"
        return self.root / "accounts" / host / account_id(directory_url)

    @contextlib.contextmanager
    def lock_account(self, directory_url: str) -> Iterator[None]:
        """Exclusive lock of one CA account, while it is created or changed."""
        lock = self.locks_dir / f"account-{account_id(directory_url)}.lock"
        with self._flock(lock, "the ACME account"):
            yield

    def account_urls(self) -> list[str]:
        """The CA directory URLs that have an account here, sorted (retired ones aside)."""
        found = set()
        for path in (self.root / "accounts").glob("*/*/account.json"):
            if ".deactivated-" in path.parent.name:
                continue
            try:
                found.add(str(json.loads(read_trusted(path))["directory"]))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise StoreError(f"cannot read {path}: {exc}") from None
        return sorted(found)

    def read_account(self, directory_url: str) -> Account | None:
        directory = self._account_dir(directory_url)
        self.check_trusted()
        try:
            for parent in (directory.parent.parent, directory.parent, directory):
                check_path(parent)
            data = json.loads(read_trusted(directory / "account.json"))
            key_pem = read_trusted(directory / "key.pem")
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read the account in {directory}: {exc}") from None
        return Account.from_json(data, key_pem)

    def write_account(self, account: Account) -> None:
        directory = self._account_dir(account.directory)
        data = account.to_json()
        try:
            make_dirs(directory)
            atomic_write(directory / "key.pem", account.key_pem, KEY_MODE)
            atomic_write(directory / "account.json", json.dumps(data, indent=2).encode())
        except OSError as exc:
            raise StoreError(f"cannot write the account in {directory}: {exc.strerror}") from None

    def stage_account_key(self, account: Account, key_pem: bytes) -> None:
        """Keep a new account key beside the old one until the CA has taken it (a crash in
        between leaves both, and the operator can tell which the CA knows)."""
        path = self._account_dir(account.directory) / "key.pem.new"
        try:
            atomic_write(path, key_pem, KEY_MODE)
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror}") from None

    def unstage_account_key(self, account: Account) -> None:
        (self._account_dir(account.directory) / "key.pem.new").unlink()

    def retire_account(self, account: Account) -> None:
        """Move a deactivated account aside: the next issuance creates a new one."""
        directory = self._account_dir(account.directory)
        retired = directory.with_name(f"{directory.name}.deactivated-{int(time.time())}")
        try:
            os.rename(directory, retired)
        except OSError as exc:
            raise StoreError(f"cannot move {directory} aside: {exc.strerror}") from None

    def read_directory(self, directory_url: str, max_age: float) -> dict[str, Any] | None:
        """The CA's directory as fetched at most `max_age` seconds ago, if kept (beside
        the account, so a CA without our account is always asked afresh)."""
        path = self._account_dir(directory_url) / "directory.json"
        try:
            data = json.loads(read_trusted(path))
            fresh = 0 <= time.time() - float(data["fetched"]) <= max_age
            kept = data["directory"]
            return kept if fresh and isinstance(kept, dict) else None
        except (OSError, ValueError, KeyError, TypeError, StoreError):
            return None  # a cache: anything odd means asking the CA again

    def write_directory(self, directory_url: str, directory: dict[str, Any] | None) -> None:
        """Keep the CA's directory for the next runs (None forgets it); best effort."""
        path = self._account_dir(directory_url) / "directory.json"
        try:
            if directory is None:
                path.unlink(missing_ok=True)
            elif path.parent.is_dir():
                payload = {"fetched": time.time(), "directory": directory}
                atomic_write(path, json.dumps(payload).encode())
        except OSError:
            pass
