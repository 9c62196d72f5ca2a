"""certcli store: the PostgreSQL store's schema (`store migrate`), and which store a run
uses."""

from __future__ import annotations

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


def copy_store(store: Storage, to: str, passphrase: bytes | None) -> tuple[StoreUrl, Copied]:
    """Copy the file store into the PostgreSQL store at `to` (one transaction, verified);
    the file store is only read."""
    from certcli.storage.pgcopy import copy_to, read_file_store
    from certcli.storage.postgres import StoreUrl

    url = StoreUrl.parse(to, "--to")
    if not passphrase:
        raise UsageError(
            "a PostgreSQL store holds keys only encrypted: give a passphrase",
            "with --passphrase-file FILE or CERTCLI_PASSPHRASE",
        )
    return url, copy_to(url, read_file_store(store, passphrase), passphrase)


def refuse_unsupported(config: dict[str, Any]) -> None:
    """A run with `[store] url` set fails, rather than reading and writing the file store
    behind the user's back: only `store migrate` knows the PostgreSQL store yet."""
    if setting("store.url", None, config, None):
        raise UsageError(
            "[store] url names a PostgreSQL store, and this command uses only the file store yet",
            "`certcli store migrate` prepares the database; unset [store] url (or "
            "CERTCLI_STORE_URL) for the other commands",
        )
