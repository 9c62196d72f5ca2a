"""The file store's status cache: each lineage's `status --json` report, as text.

`status --json` over 100,000 lineages cannot read and parse 100,000 lineage.toml, state.json
and meta.json files. A report is kept with the stamp of the files it was read from and the
moment until which, those files unchanged, it stays the same (report.py says when); it is
used again only while both hold. Unlike the renew index, the stamp sees what changes by hand
(`status` is what shows a damaged lineage): lineage.toml (the stat `names()` makes), the
lineage's directory (state.json, `pending/` and `live` are replaced there by rename), the
version `live` points at (a file removed from it) and its meta.json (edited in place).

One line a lineage, in the order of `names()`, read and rewritten as `status` goes (memory
stays flat at 100,000): `NAME<TAB>STAMP<TAB>UNTIL<TAB>STATUSES<TAB>DEPLOY_FAILED<TAB>JSON`.
"""

from __future__ import annotations

import contextlib
import os
from os import stat
from pathlib import Path
from stat import S_ISREG
from typing import IO, Any

from certcli.errors import StoreError
from certcli.storage.fsio import FILE_MODE, fsync_dir
from certcli.storage.layout import file_stamp
from certcli.storage.renew_index import RenewIndexStore, tsv_line
from certcli.trust import open_trusted

STATUS_CACHE = "status-cache"
_HEADER = b"certcli status cache 1\n"


class StatusCache:
    """The cache as one `status` reads it (names asked in order) and writes its successor.
    Its successor is written only from the first difference on (what came before copied
    from the old one), so a run with nothing changed writes nothing."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._source: IO[bytes] | None = None
        with contextlib.suppress(OSError, StoreError):  # another user's cache is no cache
            source = open_trusted(path)
            if source.readline() == _HEADER:
                self._source = source
            else:
                source.close()
        self._read = self._same = len(_HEADER)  # bytes read; bytes the successor would copy
        self._ahead: list[Any] | None = None
        self._ahead_at = (0, 0)  # where the line read ahead starts and ends
        self._out: IO[bytes] | None = None
        self._failed = False

    def get(self, name: str) -> list[Any] | None:
        """[stamp, until, statuses, deploy failed, JSON] kept for `name`, or None."""
        while True:
            if self._ahead is None and not self._next():
                return None
            assert self._ahead is not None
            if self._ahead[0] >= name:
                break
            self._ahead = None  # a lineage gone, or a line not whole: not copied
        if self._ahead[0] != name:
            return None
        entry, self._ahead = self._ahead[1:], None
        return entry

    def _next(self) -> bool:
        line = self._source.readline() if self._source is not None else b""
        if not line:
            return False
        self._ahead_at = (self._read, self._read + len(line))
        self._read += len(line)
        self._ahead = _entry(line) or ["", None]  # "" sorts first: dropped
        return True

    def keep(self, name: str, entry: list[Any], *, same: bool) -> None:
        """Write the entry into the next cache; `same`: it is the one `get` gave."""
        if same and self._out is None and self._ahead_at[0] == self._same:
            self._same = self._ahead_at[1]  # the old cache's line, copied if need be
            return
        stamp, until, statuses, deploy, text = entry
        line = tsv_line(name, stamp, repr(until), statuses, str(int(deploy)), text)
        if line is not None:
            self._write(line.encode())

    def _write(self, data: bytes) -> None:
        if self._failed:
            return
        try:
            if self._out is None:  # the first difference: what was the same, copied
                self._out = self._take_tmp()
                self._out.write(_HEADER)
                at = len(_HEADER)
                while at < self._same and self._source is not None:
                    chunk = os.pread(self._source.fileno(), min(1 << 20, self._same - at), at)
                    if not chunk:
                        raise OSError("the status cache changed while read")
                    self._out.write(chunk)
                    at += len(chunk)
            self._out.write(data)
        except OSError:  # a read-only store: the cache is used, not kept
            self._failed = True

    @property
    def _tmp(self) -> Path:
        return self._path.with_name(f".{self._path.name}.tmp")

    def _take_tmp(self) -> IO[bytes]:
        """The successor's one file, locked while written; OSError while another `status`
        writes it. The lock dies with its holder, so a file a killed `status` left is taken
        over and truncated, never left to pile up."""
        import fcntl

        fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held, named = os.fstat(fd), os.lstat(self._tmp)
            if not S_ISREG(held.st_mode) or (held.st_dev, held.st_ino) != (
                named.st_dev,
                named.st_ino,
            ):
                raise OSError("the status cache's temporary file was replaced meanwhile")
            os.ftruncate(fd, 0)
            return os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise

    def close(self, *, complete: bool) -> None:
        """Replace the cache with the one written, if every lineage was seen and anything
        differs (a lineage gone included); else leave it as it was."""
        if complete and self._out is None and (self._same != self._read or self._next()):
            self._write(b"")  # lines dropped, none after: the successor is the copy alone
        if self._source is not None:
            self._source.close()
        if self._out is None:
            return
        # renamed or removed while still locked: no other `status` takes it meanwhile
        try:
            if complete and not self._failed:
                self._out.flush()
                os.fsync(self._out.fileno())
                os.replace(self._tmp, self._path)
                self._out.close()
                fsync_dir(self._path.parent)
                return
        except OSError:
            pass
        with contextlib.suppress(OSError):
            os.unlink(self._tmp)
        with contextlib.suppress(OSError):
            self._out.close()


def _entry(line: bytes) -> list[Any] | None:
    """A line read back ([name, stamp, until, statuses, deploy failed, JSON]); None at the
    end, or for a line that is not whole."""
    fields = line.decode(errors="replace").rstrip("\n").split("\t", 5)
    if len(fields) != 6 or not line.endswith(b"\n"):
        return None
    try:
        fields[2] = float(fields[2])
    except ValueError:
        return None
    fields[4] = fields[4] == "1"
    return fields


class NoStatusCache:
    """For a store that keeps none (a database's `status` reads it in few queries)."""

    def get(self, name: str) -> list[Any] | None:
        return None

    def keep(self, name: str, entry: list[Any], *, same: bool) -> None:
        pass

    def close(self, *, complete: bool) -> None:
        pass


class StatusCacheStore(RenewIndexStore):
    def report_stamp(self, name: str) -> str:
        """What changes whenever what `status` shows of the lineage can (but time)."""
        # paths joined by hand, one string made: `status` asks it of 100,000 lineages
        base = self._certs + "/" + name if name in self._stamps else self._path(name)
        parts = [self.lineage_stamp(name)]
        for path in (base, base + "/live", base + "/live/meta.json"):
            try:
                parts.append(file_stamp(stat(path)))
            except OSError:
                parts.append("-")
        return "|".join(parts)

    def status_cache(self) -> StatusCache:
        return StatusCache(self.root / STATUS_CACHE)
