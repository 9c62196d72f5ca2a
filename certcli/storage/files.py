"""The file store under the config dir (layout in docs/store.md; contract in protocol.py).

Every file is written atomically (temp file in the same directory, fsync, rename, fsync of
the directory); directories are created 0700 and private keys 0600, with those modes from
the start. A new certificate version is written complete under a temporary name, renamed
into `archive/NNNN`, and only then does the `live` symlink switch, by rename, so a reader sees
the old version or the new one and never a mix. Leftovers of an interrupted write carry a
`.partial`/`.tmp` name; readers ignore them and `_repair` removes them.

The class is built by concern, each layer on the one before: layout.py (paths, names, trust),
locks.py, state.py (lineage.toml, state.json, the renew index), versions.py (reading),
writes.py (a new version, `live`), heal.py (a broken `live`), pending.py (key and CSR);
accounts.py (the ACME accounts and the directory kept beside each) sits beside them on locks.py.
"""

from __future__ import annotations

from certcli.storage.accounts import AccountStore
from certcli.storage.pending import PendingStore
from certcli.storage.versions import version_files

__all__ = ["FileStore", "Store", "version_files"]


class FileStore(AccountStore, PendingStore):
    """A certcli store rooted at the config dir: the Storage protocol on files.

    `key_passphrase`, when given, returns the passphrase that encrypts archived and pending
    keys, or None when encryption is off; it is asked only when a key is written or read.
    """


#: The name the callers use.
Store = FileStore
