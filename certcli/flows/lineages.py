"""certcli delete: a lineage removed whole."""

from __future__ import annotations

import os
import shutil

from certcli.errors import StoreError
from certcli.storage.files import fsync_dir
from certcli.storage.protocol import Storage


def delete_lineage(store: Storage, name: str) -> None:
    """Remove a lineage whole: renamed away in one step, then erased."""
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
