"""The file store's renew index: what `renew` found not due, and until when.

`renew` over 100,000 lineages with nothing due must not read 100,000 lineages, nor make five
system calls for each. An entry is trusted while two things hold:

- lineage.toml is as it was (inode, mtime, size: the one stat `names()` makes anyway). It is
  the file an operator edits, in place or not;
- no lock holder has touched the lineage since: whatever certcli changes in a lineage (its
  state, a new version, the switch of `live`, a repair) it changes under the lineage's lock,
  which leaves `changes/NAME` when taken and when released (locks.py). `renew`, holding the
  store's lock, takes those notes: it drops their entries (written to disk first), removes
  the notes, and only then reads those lineages again. A change made meanwhile leaves its
  note on release, so it is read by the next run at the latest.

What changes by hand inside a version (a file removed, meta.json garbled) is not seen here:
`status` shows it Damaged, and `renew NAME`, which always reads the lineages it is named,
repairs it (so does any renew once the lineage is due).

The file is text, one line a lineage (a JSON document of 100,000 entries costs three times as
much to read): `NAME<TAB>STAMP<TAB>UNTIL<TAB>SHOWN`, after a first line naming the format.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from certcli.errors import StoreError
from certcli.storage.fsio import atomic_write
from certcli.storage.layout import file_stamp
from certcli.storage.locks import CHANGES, LockingStore
from certcli.trust import open_trusted

RENEW_INDEX = "renew-index"
_HEADER = "certcli renew index 2\n"
_OLD_INDEX = "renew-index.json"  # format 1, before the changes/ notes


class RenewIndexStore(LockingStore):
    def lineage_stamp(self, name: str) -> str:
        """lineage.toml's inode, mtime and size, as `names()` saw them (else now)."""
        stamp = self._stamps.get(name)
        if stamp is None:
            try:
                stamp = file_stamp(os.stat(self._path(name, "lineage.toml")))
            except OSError:
                stamp = "-"
        return stamp

    def read_renew_index(self) -> dict[str, Any]:
        """The index, less the lineages a lock holder touched since it was written (their
        notes taken: see the module's docstring). Anything odd in it means no entry."""
        index = self._read_index()
        directory = os.path.join(self.root, CHANGES)
        try:
            noted = os.listdir(directory)
        except OSError:  # none yet
            return index
        if noted:
            dropped = [index.pop(name) for name in noted if name in index]
            if dropped and not self._write_index(index):
                return index  # the notes stay until an index without their entries is kept
            for name in noted:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))
        return index

    def write_renew_index(self, lineages: dict[str, Any]) -> None:
        """Best effort: without the index `renew` reads every lineage, and is still right."""
        self._write_index(lineages)

    def _read_index(self) -> dict[str, Any]:
        # one pass, a line at a time: this is most of a `renew` with nothing due
        index: dict[str, Any] = {}
        header = _HEADER.encode()
        try:
            with open_trusted(os.path.join(self.root, RENEW_INDEX)) as source:
                if source.readline() != header:
                    return {}
                for line in source:
                    if not line.endswith(b"\n"):  # cut short
                        return {}
                    name, stamp, until, shown = line.decode().split("\t")
                    index[name] = [stamp, float(until), shown[:-1]]
        except (OSError, ValueError, StoreError):  # odd, or another user's: no index
            return {}
        return index

    def _write_index(self, lineages: dict[str, Any]) -> bool:
        lines = [_HEADER]
        for name, (stamp, until, shown) in lineages.items():
            lines.append(tsv_line(name, stamp, repr(until), shown) or "")
        try:
            atomic_write(self.root / RENEW_INDEX, "".join(lines).encode())
        except OSError:
            return False
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self.root, _OLD_INDEX))
        return True


def tsv_line(*fields: str) -> str | None:
    """The fields as one line of a cache, tab-separated; None for fields that would not
    read back whole (a tab or a line break in one): that entry is not kept."""
    line = "\t".join(fields)
    if line.count("\t") != len(fields) - 1 or "\n" in line or "\r" in line:
        return None
    return line + "\n"
