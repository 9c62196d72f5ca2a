"""Which certificates a store already holds, by SHA-256 fingerprint: the same certificate
twice (an upload, an import) is a mistake the user should hear of."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from certcli.errors import StoreError

if TYPE_CHECKING:
    from certcli.storage.protocol import Storage


def stored_fingerprints(
    store: Storage, *, skip_unreadable: bool = False
) -> Iterator[tuple[str, str, int]]:
    """(fingerprint, lineage, version) of every version that was made live, lineage by
    lineage. A version written but never made live (a crash before the switch) is no
    certificate of the store. `skip_unreadable`: a damaged lineage or version is passed over
    (status shows it) instead of raising StoreError."""
    for name in store.names():
        try:
            live = store.live_version(name) or 0
            versions = store.versions(name)
        except (StoreError, OSError):
            if not skip_unreadable:
                raise
            continue
        for version in versions:
            if version > live:
                continue
            try:
                meta = store.version_meta(name, version)
            except StoreError:
                if not skip_unreadable:
                    raise
                continue
            cert = meta.get("certificate")
            fingerprint = cert.get("fingerprint_sha256") if isinstance(cert, dict) else None
            if fingerprint:
                yield fingerprint, name, version
