"""Copying a PostgreSQL store back into a file store (`certcli store copy --from URL`).

The database is read whole first (read_store, as `--to` reads the file store), through the
Storage protocol of each side. Every lineage and account is checked against the file store
before anything is written: one that exists with other content is a conflict and nothing is
written; one that exists with the same content is left alone, so a second copy changes
nothing. Then each lineage's versions are added in order (numbers kept), and every version
is read back and its hash compared."""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING

from certcli.errors import StoreError
from certcli.models import Account, LineageSettings, LineageState
from certcli.storage.pgcopy import Copied, Lineage, Pending, Snapshot, Version
from certcli.storage.versions import version_files

if TYPE_CHECKING:
    from certcli.storage.protocol import Storage


def _conflict(store: Storage, what: str) -> StoreError:
    return StoreError(
        f"{what} exists in {store.where} with other content: nothing was copied",
        "compare the two stores; delete the lineage there, or copy into another config dir",
    )


def _file_key(store: Storage, name: str, number: int, passphrase: bytes) -> bytes | None:
    key = store.read_version_file(name, number, "privkey.pem")
    if key is None:
        from certcli.keycrypt import decrypt

        sealed = store.read_version_file(name, number, "privkey.pem.enc")
        key = None if sealed is None else decrypt(sealed, passphrase, f"{name!r} {number}")
    return key


def _same(store: Storage, lineage: Lineage, version: Version, passphrase: bytes) -> bool:
    cert = store.read_version_file(lineage.name, version.number, "cert.pem")
    chain = store.read_version_file(lineage.name, version.number, "chain.pem") or b""
    key = _file_key(store, lineage.name, version.number, passphrase)
    return (cert, chain, key) == (version.cert, version.chain, version.key)


def _pending_to_write(store: Storage, lineage: Lineage) -> Pending | None:
    """The database's pending key and CSR when the file store holds none; StoreError when
    it holds another, or one the database lacks."""
    held = store.read_pending(lineage.name) if store.exists(lineage.name) else None
    waiting = lineage.pending
    if held is None:
        return waiting
    what = f"the pending key of {lineage.name!r}"
    if waiting is None:
        raise _conflict(store, f"{what}, which the database lacks,")
    if held != waiting:
        raise _conflict(store, what)
    return None


def _to_write(store: Storage, lineage: Lineage, passphrase: bytes) -> list[Version]:
    """The versions the file store lacks; StoreError for one it has otherwise."""
    if not store.exists(lineage.name):
        return list(lineage.versions)
    have = store.versions(lineage.name)
    for version in lineage.versions:
        if version.number in have and not _same(store, lineage, version, passphrase):
            raise _conflict(store, f"version {version.number} of {lineage.name!r}")
    extra = sorted(set(have) - {v.number for v in lineage.versions})
    if extra:
        raise _conflict(store, f"version {extra[0]} of {lineage.name!r}, which the database lacks,")
    return [v for v in lineage.versions if v.number not in have]


def copy_into(store: Storage, snapshot: Snapshot, passphrase: bytes) -> Copied:
    """Write the snapshot into the file store `store`; checked whole first, verified after."""
    plan = [
        (lineage, _to_write(store, lineage, passphrase), _pending_to_write(store, lineage))
        for lineage in snapshot.lineages
    ]
    accounts = []
    for row in snapshot.accounts:
        kept = store.read_account(row.directory_url)
        if kept is None:
            accounts.append(row)
        elif kept.to_json() != row.account or kept.key_pem != row.key:
            raise _conflict(store, f"the account at {row.directory_url}")
    writes = 0
    store.ensure()
    for lineage, missing, pending in plan:
        settings = LineageSettings.from_toml(tomllib.loads(lineage.settings), lineage.name)
        with store.lock(lineage.name):
            for version in missing:
                meta = {k: v for k, v in version.meta.items() if k != "version"}
                files = version_files(version.cert, version.chain, version.key)
                made = store.add_version(lineage.name, files, meta, config=settings)
                if made != version.number:
                    raise StoreError(
                        f"version {version.number} of {lineage.name!r} became {made} in "
                        f"{store.where}: the copy stopped there",
                        "remove that lineage from the file store and copy again",
                    )
                writes += 1
            if missing or not store.exists(lineage.name):  # a lineage without versions too
                store.write_settings(settings)
                state = LineageState.from_json(lineage.state)
                store.update_state(lineage.name, lambda _, state=state: state)
                writes += 1
            if pending is not None:
                store.write_pending(lineage.name, pending.key, pending.csr, pending.meta)
                writes += 1
    for row in accounts:
        with store.lock_account(row.directory_url):
            store.write_account(Account.from_json(row.account, row.key))
        if row.directory is not None:
            store.write_directory(row.directory_url, row.directory)
        writes += 1
    for lineage in snapshot.lineages:  # verified: every version reads back the same
        for version in lineage.versions:
            if not _same(store, lineage, version, passphrase):
                raise StoreError(
                    f"version {version.number} of {lineage.name!r} reads back otherwise "
                    f"from {store.where}"
                )
        if lineage.pending is not None and store.read_pending(lineage.name) != lineage.pending:
            raise StoreError(
                f"the pending key of {lineage.name!r} reads back otherwise from {store.where}"
            )
    return snapshot.copied(writes == 0)
