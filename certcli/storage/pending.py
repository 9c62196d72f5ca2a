"""The pending key and CSR: `pending/`, replaced whole, until a certificate completes it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from certcli.errors import StoreError, UsageError
from certcli.storage import fsio
from certcli.storage.fsio import DIR_MODE, FILE_MODE, KEY_MODE, fsync_dir, make_dirs, store_error
from certcli.storage.heal import LiveHealer


class PendingStore(LiveHealer):
    """A key and CSR waiting for their certificate (`certcli csr`, then `upload`)."""

    def pending_dir(self, name: str) -> Path:
        return self.lineage_dir(name) / "pending"

    def has_pending(self, name: str) -> bool:
        return os.path.isdir(self._path(name, "pending"))

    def write_pending(self, name: str, key_pem: bytes, csr_pem: bytes, meta: dict[str, Any]) -> str:
        """Store a new key and CSR as `pending/`, replacing any earlier one whole."""
        directory = self.lineage_dir(name)
        pending = self.pending_dir(name)
        partial = directory / f".pending.partial.{os.getpid()}"
        passphrase = self._passphrase()
        try:
            make_dirs(directory)
            self._repair(name)
            os.mkdir(partial, DIR_MODE)
            if passphrase is None:
                fsio.write_new(partial / "privkey.pem", key_pem, KEY_MODE)
            else:
                from certcli.keycrypt import encrypt

                fsio.write_new(partial / "privkey.pem.enc", encrypt(key_pem, passphrase), KEY_MODE)
            fsio.write_new(partial / "csr.pem", csr_pem, FILE_MODE)
            fsio.write_new(partial / "meta.json", json.dumps(meta, indent=2).encode(), FILE_MODE)
            fsync_dir(partial)
            if pending.exists():
                old = directory / f".pending-old.partial.{os.getpid()}"
                os.rename(pending, old)
                os.rename(partial, pending)
                shutil.rmtree(old)
            else:
                os.rename(partial, pending)
            fsync_dir(directory)
        except OSError as exc:
            raise store_error("write", pending, exc) from None
        return str(pending / ("privkey.pem" if passphrase is None else "privkey.pem.enc"))

    def read_pending(self, name: str) -> tuple[bytes, bytes, dict[str, Any]] | None:
        pending = self.pending_dir(name)
        try:
            csr = (pending / "csr.pem").read_bytes()
            meta = json.loads((pending / "meta.json").read_bytes())
            if (pending / "privkey.pem.enc").exists():
                from certcli.keycrypt import decrypt

                passphrase = self._passphrase()
                if passphrase is None:
                    raise UsageError(
                        f"the key waiting in {pending} is encrypted",
                        "give its passphrase with --passphrase-file or CERTCLI_PASSPHRASE",
                    )
                key = decrypt((pending / "privkey.pem.enc").read_bytes(), passphrase, str(pending))
            else:
                key = (pending / "privkey.pem").read_bytes()
            return key, csr, meta
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {pending}: {exc}") from None

    def clear_pending(self, name: str) -> None:
        pending = self.pending_dir(name)
        if not pending.exists():
            return
        done = self.lineage_dir(name) / f".pending-done.partial.{os.getpid()}"
        try:
            os.rename(pending, done)
            fsync_dir(self.lineage_dir(name))
            shutil.rmtree(done)
        except OSError as exc:
            raise store_error("remove", pending, exc) from None
