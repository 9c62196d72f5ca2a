"""certcli delete: a lineage removed whole."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

from certcli.errors import NotConfirmedError, StoreError
from certcli.storage.files import fsync_dir
from certcli.storage.protocol import Storage


def delete_lineage(store: Storage, name: str, confirm: Callable[[str], bool]) -> None:
    """Remove a lineage whole, once `confirm` says yes: renamed away in one step, then
    erased. An unknown name fails before the question."""
    store.read_settings(name)
    if not confirm(f"Delete {name!r} and every version of its certificate?"):
        raise NotConfirmedError(f"{name!r} was not deleted")
    with store.lock(name):
        directory = store.require(name)
        doomed = store.certs_dir / f".{name}.deleted.partial.{os.getpid()}"
        try:
            os.rename(directory, doomed)
            fsync_dir(store.certs_dir)
            shutil.rmtree(doomed)
        except OSError as exc:
            raise StoreError(f"cannot delete {directory}: {exc.strerror}") from None
        store.remove_lineage_lock(name)
