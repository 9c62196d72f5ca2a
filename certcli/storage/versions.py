"""Reading the versions of a lineage: archive/NNNN, and the `live` link to one of them."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from typing import Any

from certcli.errors import NotFoundError, StoreError
from certcli.models import CertInfo
from certcli.storage.fsio import store_error
from certcli.storage.state import StateStore

#: certbot's names, so existing web-server configs can point at live/.
VERSION_FILES = ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem")
_VERSION_DIR = re.compile(r"[0-9]{4,}")  # fullmatch: ASCII digits, no trailing newline
_LIVE_TARGET = re.compile(r"archive/([0-9]{4,})")


def version_files(cert_pem: bytes, chain_pem: bytes, key_pem: bytes) -> dict[str, bytes]:
    """The files of one version, under certbot's names; the full chain is cert + chain."""
    return {
        "cert.pem": cert_pem,
        "chain.pem": chain_pem,
        "fullchain.pem": cert_pem + chain_pem,
        "privkey.pem": key_pem,
    }


class VersionReader(StateStore):
    """The versions of a lineage, each complete once its directory has its final name."""

    def versions(self, name: str) -> list[int]:
        archive = self.lineage_dir(name) / "archive"
        try:
            return sorted(int(e) for e in os.listdir(archive) if _VERSION_DIR.fullmatch(e))
        except FileNotFoundError:
            return []

    def live_version(self, name: str) -> int | None:
        """The version `live` points at; None when there is no `live` yet. StoreError for a
        `live` certcli did not make (`renew` heals it, see heal_live)."""
        live = self._path(name, "live")
        try:
            target = os.readlink(live)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise store_error("read", Path(live), exc) from None
            what = "a directory" if os.path.isdir(live) else "a regular file"
            raise StoreError(
                f"{live} is {what}, not a link to a version",
                "`certcli renew` restores it from the newest complete version",
            ) from None
        match = _LIVE_TARGET.fullmatch(target)
        if match is None:
            raise StoreError(
                f"{live} points at {target}, not at a version in archive/",
                "`certcli renew` restores it from the newest complete version",
            )
        return int(match.group(1))

    def version_meta(self, name: str, version: int) -> dict[str, Any]:
        path = self._path(name, "archive", f"{version:04d}", "meta.json")
        try:
            with open(path, "rb") as handle:
                meta = json.load(handle)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise StoreError(f"cannot read {path}: {reason}") from None
        if not isinstance(meta, dict):
            raise StoreError(f"cannot read {path}: not a JSON object")
        return meta

    def read_version_file(self, name: str, version: int, filename: str) -> bytes | None:
        """One file of a version; None when it has no such file (with key encryption on,
        older versions keep only privkey.pem.enc)."""
        path = self._path(name, "archive", f"{version:04d}", filename)
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise store_error("read", Path(path), exc) from None

    def version_info(self, name: str, version: int) -> CertInfo:
        """The certificate of a version, from its meta.json (StoreError naming the file)."""
        known = self._infos.get((name, version))
        if known is not None:
            return known
        meta = self.version_meta(name, version)
        try:
            info = self._infos[name, version] = CertInfo.from_json(meta["certificate"])
            return info
        except KeyError as exc:
            problem = f"no {exc.args[0]!r} key"
        except (TypeError, ValueError, AttributeError) as exc:
            problem = str(exc) or type(exc).__name__
        path = self._path(name, "archive", f"{version:04d}", "meta.json")
        raise StoreError(f"cannot read {path}: {problem}")

    def live_info(self, name: str) -> CertInfo | None:
        return self.live(name)[1]

    def live(self, name: str) -> tuple[int | None, CertInfo | None]:
        """The live version and its certificate (None, None before the first)."""
        version = self.live_version(name)
        return version, None if version is None else self.version_info(name, version)

    def _complete(self, name: str, version: int) -> bool:
        """Whether a version holds, as regular files, every file a web server reads."""
        directory = self._path(name, "archive", f"{version:04d}")
        try:  # one listing, not a stat per file: `renew` asks this of every lineage
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            with os.scandir(fd) as entries:
                files = {e.name for e in entries if e.is_file(follow_symlinks=False)}
        except OSError:
            return False
        finally:
            os.close(fd)
        return files.issuperset(VERSION_FILES)

    def read_live_file(self, name: str, filename: str) -> bytes:
        return self.read_live_files(name, filename)[0]

    def read_live_files(self, name: str, *filenames: str) -> list[bytes]:
        """Files of the live version, all from one version even if `live` switches meanwhile."""
        self.require(name)
        version = self.live_version(name)
        if version is None:
            raise NotFoundError(
                f"{name!r} has no certificate yet",
                "complete it with `certcli upload` (or issue one with `certcli issue`)",
            )
        directory = self.lineage_dir(name) / "archive" / f"{version:04d}"
        try:
            return [(directory / filename).read_bytes() for filename in filenames]
        except OSError as exc:
            raise store_error("read", directory, exc) from None
