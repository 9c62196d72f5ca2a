"""certcli store: the PostgreSQL store's schema (`store migrate`), and which store a run
uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certcli.config import setting
from certcli.errors import UsageError

if TYPE_CHECKING:
    from certcli.storage.pgcopy import Copied
    from certcli.storage.postgres import Migrated, StoreUrl
    from certcli.storage.protocol import Storage


def store_url(config: dict[str, Any], given: str | None = None) -> StoreUrl | None:
    """The PostgreSQL store's URL: `--url`, else CERTCLI_STORE_URL, else `[store] url`;
    None for the file store."""
    from certcli.storage.postgres import StoreUrl

    value = setting("store.url", given, config, None, flag="--url")
    if not value:
        return None
    source = "--url" if given else "[store] url (or CERTCLI_STORE_URL)"
    return StoreUrl.parse(str(value), source)


def migrate_store(config: dict[str, Any], given: str | None = None) -> tuple[StoreUrl, Migrated]:
    """Create or migrate the PostgreSQL store's schema to this certcli's version."""
    from certcli.storage.postgres import migrate

    url = store_url(config, given)
    if url is None:
        raise UsageError(
            "no PostgreSQL store to migrate: this store is the file store",
            "set [store] url (or CERTCLI_STORE_URL, or --url) to postgresql://USER@HOST/DB",
        )
    return url, migrate(url)


def copy_store(
    store: Storage, passphrase: bytes | None, to: str | None = None, source: str | None = None
) -> tuple[StoreUrl, Copied]:
    """Copy the file store into the PostgreSQL store at `to` (one transaction, verified;
    the file store is only read), or the PostgreSQL store at `source` into the file store
    (checked whole first, verified; the database is only read)."""
    from certcli.storage.pgcopy import read_store
    from certcli.storage.postgres import StoreUrl

    if (to is None) == (source is None):
        raise UsageError("give --to URL (into PostgreSQL) or --from URL (back into the file store)")
    url = StoreUrl.parse(to or source or "", "--to" if to else "--from")
    if not passphrase:
        raise UsageError(
            "a PostgreSQL store holds keys only encrypted: give a passphrase",
            "with --passphrase-file FILE or CERTCLI_PASSPHRASE",
        )
    if to is not None:
        from certcli.storage.pgcopy import copy_to

        return url, copy_to(url, read_store(store, passphrase), passphrase)
    from certcli.storage.filecopy import copy_into
    from certcli.storage.pgstore import PostgresStore

    database = PostgresStore(url, store.root, passphrase, host_name({}))
    return url, copy_into(store, read_store(database, passphrase), passphrase)


def host_name(config: dict[str, Any]) -> str:
    """This host's name in a shared store: `[store] host` (CERTCLI_STORE_HOST), else the
    system's host name."""
    import socket

    name = str(setting("store.host", None, config, None) or socket.gethostname())
    if not (0 < len(name) <= 63) or not all(33 <= ord(c) < 127 for c in name):
        raise UsageError(
            f"the host name {name!r} cannot name this host in the store",
            "set [store] host (or CERTCLI_STORE_HOST) to at most 63 printable characters",
        )
    return name


def open_store(
    root: Path, config: dict[str, Any], passphrase: Callable[[], bytes | None]
) -> Storage | None:
    """The PostgreSQL store `[store] url` names, None for the file store. It holds keys only
    encrypted: without a passphrase it is refused."""
    url = store_url(config)
    if url is None:
        return None
    # keys are always encrypted here, but a bad value is refused as on the file store
    setting("store.encrypt_keys", None, config, False)
    given = passphrase()
    if not given:
        raise UsageError(
            f"the PostgreSQL store at {url.shown} holds keys only encrypted, and certcli has "
            "no passphrase",
            "give it with --passphrase-file FILE or CERTCLI_PASSPHRASE",
        )
    from certcli.storage.pgstore import PostgresStore

    return PostgresStore(url, root, given, host_name(config))
