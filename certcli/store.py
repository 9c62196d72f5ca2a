"""Temporary: the old import path of the store, for the modules not yet moved to the new
layout. Everything else imports certcli.storage.files."""

from certcli.storage.files import (
    DIR_MODE,
    FILE_MODE,
    KEY_MODE,
    VERSION_FILES,
    Store,
    atomic_write,
    fsync_dir,
    make_dirs,
    version_files,
)

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "KEY_MODE",
    "VERSION_FILES",
    "Store",
    "atomic_write",
    "fsync_dir",
    "make_dirs",
    "version_files",
]
