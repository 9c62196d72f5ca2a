"""Where a store's files are, and the checks made before any path is used."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from certcli.domains import is_lineage_name, validate_lineage_name
from certcli.errors import NotFoundError
from certcli.models import CertInfo
from certcli.storage import fsio
from certcli.storage.fsio import FILE_MODE, fsync_dir, make_dirs, not_writable, store_error
from certcli.trust import check_chain, check_path


class StoreLayout:
    shared = False  # one host's store
    """The directories of a store rooted at the config dir, and the names in it.

    `key_passphrase`, when given, returns the passphrase that encrypts archived and pending
    keys, or None when encryption is off; it is asked only when a key is written or read.
    """

    def __init__(
        self, root: Path, key_passphrase: Callable[[], bytes | None] | None = None
    ) -> None:
        self.root = root
        self.certs_dir = root / "certs"
        self.where = str(self.certs_dir)
        self._certs = str(self.certs_dir)
        self.locks_dir = root / "locks"
        self._key_passphrase = key_passphrase
        self._trusted = False
        self._valid: set[str] = set()
        # A version's certificate, once read: archive/NNNN never changes after its rename
        # (renew reads each live one twice: to see whether live is whole, then to decide)
        self._infos: dict[tuple[str, int], CertInfo] = {}
        self._stamps: dict[str, str] = {}  # lineage.toml's, as names() saw it

    def _passphrase(self) -> bytes | None:
        return self._key_passphrase() if self._key_passphrase else None

    def check_key_protection(self) -> None:
        """Fail now, before a CA issues anything, if keys could not be stored as configured
        (encryption on, passphrase missing)."""
        self._passphrase()

    def check_trusted(self) -> None:
        """Refuse a store that another user could change or swap (certcli/trust.py): its
        directory, every directory above it, certs/ and locks/. Checked once per Store, once
        they all exist: one missing when checked could be another user's by the time certcli
        makes it, so `ensure` checks again after making them."""
        if not self._trusted:
            made = all(os.path.isdir(d) for d in (self.root, self.certs_dir, self.locks_dir))
            check_chain(self.root)
            check_path(self.certs_dir)
            check_path(self.locks_dir)
            self._trusted = made

    def ensure(self) -> None:
        """Create the store's directories, or explain why they cannot be created."""
        self.check_trusted()
        for directory in (self.root, self.certs_dir, self.locks_dir):
            try:
                make_dirs(directory)
                if not os.access(directory, os.W_OK | os.X_OK):
                    raise not_writable(directory)
            except OSError as exc:
                raise store_error("write to the config dir", directory, exc) from None
        self.check_trusted()  # what was just made (by certcli, or by someone in between)

    def _checked(self, name: str) -> str:
        """The name, once known to be a lineage's: no path is ever built from anything else
        (`../x`, `/tmp/x`, `.hidden`), whichever command asked."""
        if name not in self._valid:
            self._valid.add(validate_lineage_name(name))
        return name

    def lineage_dir(self, name: str) -> Path:
        return self.certs_dir / self._checked(name)

    def live_dir(self, name: str) -> Path:
        return self.lineage_dir(name) / "live"

    def _path(self, name: str, *parts: str) -> str:
        # Plain strings on the read paths: `status` and `renew` visit every lineage, and
        # pathlib's joins cost more than the reads themselves.
        return os.path.join(self._certs, self._checked(name), *parts)

    def names(self) -> list[str]:
        self.check_trusted()
        try:
            entries = os.listdir(self.certs_dir)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise store_error("read", self.certs_dir, exc) from None
        # paths joined by hand and one stat each, kept as the lineage's stamp (renew_index.py):
        # `renew` lists 100,000 lineages
        certs = self._certs + "/"
        stamps: dict[str, str] = {}
        for e in entries:
            if is_lineage_name(e):
                try:
                    st = os.stat(certs + e + "/lineage.toml")
                except (OSError, ValueError):
                    continue
                if stat.S_ISREG(st.st_mode):
                    stamps[e] = file_stamp(st)
        self._stamps = stamps
        return sorted(stamps)

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._path(name, "lineage.toml"))

    def require(self, name: str) -> Path:
        """The lineage's directory, or NotFoundError naming the store."""
        if not self.exists(name):
            raise NotFoundError(
                f"no certificate named {name!r} in {self.certs_dir}",
                "`certcli status` lists the certificates",
            )
        return self.lineage_dir(name)

    def installation_id(self) -> str:
        """A random name made once per store, so two installations never share a target."""
        path = self.root / "installation-id"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        make_dirs(self.root)
        tmp = self.root / f".installation-id.{secrets.token_hex(8)}.tmp"
        fsio.write_new(tmp, f"certcli-{secrets.token_hex(5)}\n".encode(), FILE_MODE)
        try:
            os.link(tmp, path)  # whole, and only if no other process made one meanwhile
        except FileExistsError:
            pass  # the one made first is the one
        except OSError:  # a file system without hard links: the last rename wins
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        fsync_dir(self.root)
        return path.read_text().strip()

    def leftovers_dir(self) -> Path:
        return self.root / "leftovers"


def file_stamp(st: os.stat_result) -> str:
    """What changes when a file is replaced or written: its inode, mtime and size."""
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"
