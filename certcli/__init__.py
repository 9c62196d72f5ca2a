"""certcli: a command-line ACME client."""

from __future__ import annotations

import os
import sys
from functools import cache


@cache
def package_version() -> str:
    """The version in the installed distribution's metadata; pyproject.toml is its only
    source. The dist-info's METADATA is read directly, as importlib.metadata would find it
    (first on sys.path): importing importlib.metadata costs 20-40 ms, most of the time of
    `certcli --version`. importlib.metadata remains the fallback for other layouts."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # a zip file, or a missing directory
            continue
        for name in names:
            # a distribution named certcli-something would be certcli_something-…
            if name.startswith("certcli-") and name.endswith(".dist-info"):
                found = _metadata_version(os.path.join(entry, name, "METADATA"))
                if found:
                    return found
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("certcli")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0+unknown"


def _metadata_version(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    break  # the headers end here
                if line.startswith("Version:"):
                    return line.partition(":")[2].strip()
    except OSError:
        return None
    return None


def __getattr__(name: str) -> str:
    # `certcli.__version__` is computed only when someone asks for it
    if name == "__version__":
        return package_version()
    raise AttributeError(f"module 'certcli' has no attribute {name!r}")
