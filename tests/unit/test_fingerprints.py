from __future__ import annotations

from typing import Any

import pytest

from certcli.errors import StoreError
from certcli.fingerprints import stored_fingerprints


class _Store:
    """The four reads stored_fingerprints makes; "bad" is a damaged lineage."""

    def __init__(self) -> None:
        self.meta = {
            ("a", 1): {"certificate": {"fingerprint_sha256": "F1"}},
            ("a", 2): {"certificate": {"fingerprint_sha256": "F2"}},
            ("a", 3): {"certificate": {"fingerprint_sha256": "F3"}},  # never made live
            ("b", 1): {},  # no certificate recorded
        }

    def names(self) -> list[str]:
        return ["a", "bad", "b"]

    def live_version(self, name: str) -> int | None:
        if name == "bad":
            raise StoreError("bad is damaged")
        return 2 if name == "a" else 1

    def versions(self, name: str) -> list[int]:
        return [v for n, v in self.meta if n == name]

    def version_meta(self, name: str, version: int) -> dict[str, Any]:
        return self.meta[(name, version)]


def test_live_versions_only_and_damaged_lineages_as_asked() -> None:
    store: Any = _Store()
    assert list(stored_fingerprints(store, skip_unreadable=True)) == [
        ("F1", "a", 1),
        ("F2", "a", 2),
    ]
    with pytest.raises(StoreError, match="bad is damaged"):
        list(stored_fingerprints(store))
