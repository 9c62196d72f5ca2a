"""certcli delete: a lineage removed whole."""

from __future__ import annotations

from collections.abc import Callable

from certcli.errors import NotConfirmedError
from certcli.storage.protocol import Storage


def delete_lineage(store: Storage, name: str, confirm: Callable[[str], bool]) -> None:
    """Remove a lineage whole, once `confirm` says yes: renamed away in one step, then
    erased. An unknown name fails before the question."""
    store.read_settings(name)
    if not confirm(f"Delete {name!r} and every version of its certificate?"):
        raise NotConfirmedError(f"{name!r} was not deleted")
    with store.lock(name):
        store.delete_lineage(name)
