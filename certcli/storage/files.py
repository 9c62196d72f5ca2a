"""The file store under the config dir (layout in docs/store.md).

Contract: every file is written atomically (temp file in the same directory, fsync, rename,
fsync of the directory); directories are created 0700 and private keys 0600, with those modes
from the start. A new certificate version is written complete under a temporary name, renamed
into `archive/NNNN`, and only then does the `live` symlink switch, by rename, so a reader sees
the old version or the new one and never a mix. Leftovers of an interrupted write carry a
`.partial`/`.tmp` name; readers ignore them and `repair` removes them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from certcli.domains import is_lineage_name, validate_lineage_name
from certcli.errors import LockedError, NotFoundError, StoreError
from certcli.models import CertInfo, LineageConfig
from certcli.safepath import create_at, replace_at
from certcli.trust import check_chain, check_path, read_trusted

DIR_MODE = 0o700
KEY_MODE = 0o600
FILE_MODE = 0o644

#: certbot's names, so existing web-server configs can point at live/.
VERSION_FILES = ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem")
_VERSION_DIR = re.compile(r"[0-9]{4,}")  # fullmatch: ASCII digits, no trailing newline
_LIVE_TARGET = re.compile(r"archive/([0-9]{4,})")
_LOCK_WAIT_DEFAULT = 5.0
RENEW_INDEX = "renew-index.json"


#: The types of the keys of state.json that certcli reads (null: not set).
_STATE_TYPES: dict[str, type] = {
    **dict.fromkeys(("phase", "phase_at", "last_attempt", "last_success"), str),
    **dict.fromkeys(("last_error", "last_error_kind", "next_attempt"), str),
    **dict.fromkeys(
        ("dns", "ari", "revoked", "deploy_failed", "expiry_notice", "mismatch_notice"), dict
    ),
    "failures": int,
}
_KIND_NAMES = {str: "a string", dict: "a table", int: "a number"}


def version_files(cert_pem: bytes, chain_pem: bytes, key_pem: bytes) -> dict[str, bytes]:
    """The files of one version, under certbot's names; the full chain is cert + chain."""
    return {
        "cert.pem": cert_pem,
        "chain.pem": chain_pem,
        "fullchain.pem": cert_pem + chain_pem,
        "privkey.pem": key_pem,
    }


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` (which must not exist) with `mode`, write and fsync it."""
    create_at(None, os.fspath(path), data, mode)


def atomic_write(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace `path` with `data` so that readers see the old or the new content, whole."""
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        replace_at(fd, path.name, data, mode)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """Create `path` and any missing parents with mode 0700 (os.makedirs gives the mode to the
    leaf only)."""
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, DIR_MODE)


def _read_if_exists(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _store_error(action: str, path: Path, exc: OSError) -> StoreError:
    reason = exc.strerror or str(exc)
    hint = None
    if exc.errno == errno.EROFS:
        reason = os.strerror(errno.EROFS)  # "Read-only file system", never "Permission denied"
        hint = (
            "remount it read-write, or choose another --config-dir; under systemd's "
            "ProtectSystem=, add the store to the unit's ReadWritePaths="
        )
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.ENOTDIR):
        hint = "choose a writable directory with --config-dir or CERTCLI_CONFIG_DIR"
    return StoreError(f"cannot {action} {path}: {reason}", hint)


def _not_writable(directory: Path) -> OSError:
    """Why `directory` is not writable: a read-only mount, else permissions."""
    try:
        read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    code = errno.EROFS if read_only else errno.EACCES
    return OSError(code, os.strerror(code))


class Store:
    """A certcli store rooted at the config dir.

    `key_passphrase`, when given, returns the passphrase that encrypts archived and pending
    keys, or None when encryption is off; it is asked only when a key is written or read.
    """

    def __init__(
        self, root: Path, key_passphrase: Callable[[], bytes | None] | None = None
    ) -> None:
        self.root = root
        self.certs_dir = root / "certs"
        self._certs = str(self.certs_dir)
        self.locks_dir = root / "locks"
        self._key_passphrase = key_passphrase
        self._trusted = False
        self._valid: set[str] = set()
        # A version's certificate, once read: archive/NNNN never changes after its rename
        # (renew reads each live one twice: to see whether live is whole, then to decide)
        self._infos: dict[tuple[str, int], CertInfo] = {}

    def _passphrase(self) -> bytes | None:
        return self._key_passphrase() if self._key_passphrase else None

    def check_key_protection(self) -> None:
        """Fail now, before a CA issues anything, if keys could not be stored as configured
        (encryption on, passphrase missing)."""
        self._passphrase()

    # -- layout -------------------------------------------------------------------------

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
                    raise _not_writable(directory)
            except OSError as exc:
                raise _store_error("write to the config dir", directory, exc) from None
        self.check_trusted()  # what was just made (by certcli, or by someone in between)

    def _checked(self, name: str) -> str:
        """The name, once known to be a lineage's: no path is ever built from anything else
        (`../x`, `/tmp/x`, `.hidden`), whichever command asked."""
        if name not in self._valid:
            self._valid.add(validate_lineage_name(name))
        return name

    def lineage_dir(self, name: str) -> Path:
        return self.certs_dir / self._checked(name)

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
            raise _store_error("read", self.certs_dir, exc) from None
        return sorted(
            e
            for e in entries
            if is_lineage_name(e) and os.path.isfile(self._path(e, "lineage.toml"))
        )

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

    # -- lineage.toml and state.json ----------------------------------------------------

    def read_config(self, name: str) -> LineageConfig:
        path = self._path(name, "lineage.toml")
        self.check_trusted()
        try:
            # Its hooks run as certcli's user: only a directory and a file nobody else can
            # change are read (a stat and an fstat, cheap enough for `status` over thousands).
            check_path(self._path(name))
            config = LineageConfig.from_toml(tomllib.loads(read_trusted(path).decode()), path)
        except (FileNotFoundError, NotADirectoryError):
            self.require(name)
            raise
        except (OSError, ValueError, TypeError) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from None
        if config.name != name:
            raise StoreError(f"cannot read {path}: its name {config.name!r} is not {name!r}")
        return config

    def write_config(self, config: LineageConfig) -> None:
        try:
            self._write_config_file(config)
        except OSError as exc:
            raise _store_error("write", self.lineage_dir(config.name), exc) from None

    def _write_config_file(self, config: LineageConfig) -> None:
        import tomli_w

        directory = self.lineage_dir(config.name)
        make_dirs(directory)
        atomic_write(directory / "lineage.toml", tomli_w.dumps(config.to_toml()).encode())

    def read_state(self, name: str) -> dict[str, Any]:
        path = self._path(name, "state.json")
        try:
            # it names URLs renew fetches (ARI) and what an order replaces: nobody else's
            state = json.loads(read_trusted(path))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from None
        if not isinstance(state, dict):
            raise StoreError(f"cannot read {path}: not a JSON object", "remove the file")
        for key, kind in _STATE_TYPES.items():
            value = state.get(key)
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise StoreError(
                    f"cannot read {path}: {key} is {value!r}, not {_KIND_NAMES[kind]}",
                    "remove the key (or the file)",
                )
        return state

    def write_state(self, name: str, state: dict[str, Any]) -> None:
        path = self.lineage_dir(name) / "state.json"
        try:
            atomic_write(path, json.dumps(state, indent=2, sort_keys=True).encode())
        except OSError as exc:
            raise _store_error("write", path, exc) from None

    # -- versions -----------------------------------------------------------------------

    def versions(self, name: str) -> list[int]:
        archive = self.lineage_dir(name) / "archive"
        try:
            return sorted(int(e) for e in os.listdir(archive) if _VERSION_DIR.fullmatch(e))
        except FileNotFoundError:
            return []

    # -- the renew index: what `renew` found not due, and until when ---------------------

    def lineage_stamp(self, name: str) -> list[Any]:
        """What changes whenever a lineage's settings, state or live version change: the
        inode, mtime and size of lineage.toml and state.json (certcli replaces files by
        rename, an editor writes them), where `live` points, the files of that version (a
        removed one, its meta.json) so that `renew` heals what `status` shows Damaged."""
        stamp: list[Any] = []
        for filename in ("lineage.toml", "state.json"):
            try:
                st = os.stat(self._path(name, filename))
                stamp += [st.st_ino, st.st_mtime_ns, st.st_size]
            except OSError:
                stamp += [None, None, None]
        live = self._path(name, "live")
        try:
            stamp.append(os.readlink(live))
            st = os.stat(live)  # the version it points at, gone or not, and its files
            stamp += [st.st_ino, st.st_mtime_ns]
        except OSError:
            stamp += [None, None, None]
        try:  # a live version's meta.json garbled in place (status: Damaged) is healed
            st = os.stat(os.path.join(live, "meta.json"))
            stamp += [st.st_ino, st.st_mtime_ns, st.st_size]
        except OSError:
            stamp += [None, None, None]
        return stamp

    def read_renew_index(self) -> dict[str, Any]:
        """The index `renew` keeps (a cache: anything odd in it means an empty one)."""
        try:
            data = json.loads(read_trusted(os.path.join(self.root, RENEW_INDEX)))
        except (OSError, ValueError, StoreError):  # another user's index is no index
            return {}
        ok = isinstance(data, dict) and data.get("format") == 1
        return data["lineages"] if ok and isinstance(data.get("lineages"), dict) else {}

    def write_renew_index(self, lineages: dict[str, Any]) -> None:
        """Best effort: without the index `renew` reads every lineage, and is still right."""
        with contextlib.suppress(OSError):
            payload = {"format": 1, "lineages": lineages}
            atomic_write(self.root / RENEW_INDEX, json.dumps(payload).encode())

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
                raise _store_error("read", Path(live), exc) from None
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

    def live_broken(self, name: str) -> bool:
        """Whether `live` exists but is not a link to a complete version with a readable
        meta.json (see heal_live)."""
        try:
            version = self.live_version(name)
            if version is None:
                return False
            return not self._complete(name, version) or self.version_info(name, version) is None
        except StoreError:
            return True

    def heal_live(self, name: str) -> tuple[str, bool] | None:
        """Repair a broken `live`: a regular file, a directory, a dangling link, a link to
        anything but a version, or to a version whose meta.json is missing or garbled.

        A version with all its files whose meta.json is damaged gets it back from its own
        cert.pem; `live` then points at the version it named, or else at the newest complete
        one. Returns (what was done, whether `live` is whole again), None when it was fine.
        With no complete version `live` stays as it is: the web server keeps what it reads,
        and a new version (a renewal, an upload) replaces it. The caller holds the lineage
        lock. Nothing is followed or deleted through `live`: a link is replaced by rename,
        and a file or directory of unknown content there is moved aside (see _switch_live).
        """
        if not self.live_broken(name):
            return None
        directory = self.lineage_dir(name)
        live = directory / "live"
        try:
            target, problem = self.live_version(name), ""
        except StoreError as exc:
            target, problem = None, exc.message
        complete = [v for v in self.versions(name) if self._complete(name, v)]
        if target in complete:
            problem = f"{live}: the meta.json of version {target} cannot be read"
        elif target is not None:
            problem = f"{live} points at version {target}, which is missing or incomplete"
        if not complete:
            return f"{problem}, and no complete version is left to restore", False
        chosen = target if target in complete else complete[-1]
        try:
            rebuilt = self._rebuild_meta(name, chosen)
            kept = None
            if target != chosen:
                kept = self._switch_live(directory, chosen)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise StoreError(f"cannot restore {live}: {reason}") from None
        done = f"live restored to version {chosen}" if target != chosen else ""
        if rebuilt:
            done += (
                " (its meta.json rebuilt from its cert.pem)"
                if done
                else "meta.json rebuilt from cert.pem"
            )
        if kept is not None:
            done += f"; what was there is kept as {kept.name}"
        return f"{problem}: {done}", True

    def _meta_ok(self, name: str, version: int) -> bool:
        try:
            self.version_info(name, version)
        except StoreError:
            return False
        return True

    def _rebuild_meta(self, name: str, version: int) -> bool:
        """Write a version's meta.json again from its cert.pem, if it cannot be read."""
        if self._meta_ok(name, version):
            return False
        from datetime import UTC, datetime

        from certcli import x509 as x
        from certcli.models import rfc3339

        directory = self.lineage_dir(name) / "archive" / f"{version:04d}"
        cert = x.parse_certificates((directory / "cert.pem").read_bytes(), "cert.pem")[0]
        meta = {
            "certificate": x.cert_info(cert).to_json(),
            "source": "rebuilt",
            "created": rfc3339(datetime.now(UTC)),
            "version": version,
        }
        atomic_write(directory / "meta.json", json.dumps(meta, indent=2).encode())
        return True

    @staticmethod
    def _move_aside(path: Path) -> Path:
        for n in range(1, 1000):
            target = path.with_name(f"{path.name}.broken-{n}")
            if not os.path.lexists(target):
                os.rename(path, target)
                return target
        raise FileExistsError(errno.EEXIST, "too many earlier copies", str(path))

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
            raise _store_error("read", directory, exc) from None

    def add_version(
        self,
        name: str,
        files: dict[str, bytes],
        meta: dict[str, Any],
        config: LineageConfig | None = None,
    ) -> int:
        """Write a complete new version and switch `live` to it; return its number.

        The caller holds the lineage lock. `config`, when given, becomes lineage.toml before
        the switch: the switch is the commit, so a failure (a full disk) leaves `live` and
        lineage.toml as they were, and a kill between the two leaves the new settings with
        the old certificate, which the same command, repeated, completes (settings after the
        switch would leave, say, an uploaded certificate in a lineage still renewed by ACME).
        """
        directory = self.lineage_dir(name)
        archive = directory / "archive"
        self._infos = {k: v for k, v in self._infos.items() if k[0] != name}
        passphrase = self._passphrase()
        sealed = None
        if passphrase is not None:
            from certcli.keycrypt import encrypt

            sealed = encrypt(files["privkey.pem"], passphrase)
        settings = directory / "lineage.toml"
        try:
            previous = _read_if_exists(settings) if config is not None else None
            make_dirs(archive)
            self.repair(name)
            version = max(self.versions(name), default=0) + 1
            partial = archive / f".{version:04d}.partial.{os.getpid()}"
            os.mkdir(partial, DIR_MODE)
            for filename in VERSION_FILES:
                mode = KEY_MODE if filename == "privkey.pem" else FILE_MODE
                _write_new(partial / filename, files[filename], mode)
            if sealed is not None:
                _write_new(partial / "privkey.pem.enc", sealed, KEY_MODE)
            _write_new(
                partial / "meta.json",
                json.dumps({**meta, "version": version}, indent=2).encode(),
                FILE_MODE,
            )
            fsync_dir(partial)
        except OSError as exc:
            raise _store_error("write a new version in", archive, exc) from None
        final = archive / f"{version:04d}"
        try:
            os.rename(partial, final)
            fsync_dir(archive)
            if config is not None:
                self._write_config_file(config)
            self._switch_live(directory, version)
        except OSError as exc:
            # switched, and only a later fsync failed: the new version stands
            if self._live_target(directory) != f"archive/{version:04d}":
                self._undo_version(final, settings, previous, config is not None)
                raise _store_error("write a new version in", archive, exc) from None
        if sealed is not None:
            try:
                self._strip_plain_keys(name, keep=version)
            except OSError as exc:
                raise _store_error("remove older plaintext keys in", archive, exc) from None
        return version

    @staticmethod
    def _live_target(directory: Path) -> str | None:
        try:
            return os.readlink(directory / "live")
        except OSError:
            return None

    @staticmethod
    def _undo_version(final: Path, settings: Path, previous: bytes | None, wrote: bool) -> None:
        """Best effort, after a failed switch: the version never made live goes, and
        lineage.toml gets its earlier content back (or goes, for a lineage that had none)."""
        shutil.rmtree(final, ignore_errors=True)
        if not wrote:
            return
        with contextlib.suppress(OSError):
            if previous is None:
                settings.unlink(missing_ok=True)
            elif _read_if_exists(settings) != previous:
                atomic_write(settings, previous)

    def _strip_plain_keys(self, name: str, keep: int) -> None:
        """With encryption on, only the live version keeps a plaintext key (for the web
        server); older ones keep only their encrypted copy."""
        for version in self.versions(name):
            directory = self.lineage_dir(name) / "archive" / f"{version:04d}"
            if version != keep and (directory / "privkey.pem.enc").exists():
                with contextlib.suppress(FileNotFoundError):
                    (directory / "privkey.pem").unlink()

    def _switch_live(self, directory: Path, version: int) -> Path | None:
        """Point `live` at a version, by rename. A directory where `live` should be (a copy
        made by hand, say) cannot be renamed over: it is moved aside, and returned."""
        tmp = directory / f".live.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(f"archive/{version:04d}", tmp)
        live = directory / "live"
        kept = None
        if live.exists() and not live.is_symlink():  # a directory, or a file: kept
            kept = self._move_aside(live)
        os.replace(tmp, live)
        fsync_dir(directory)
        return kept

    def repair(self, name: str) -> list[Path]:
        """Remove what an interrupted write left behind; return what was removed."""
        removed: list[Path] = []
        directory = self.lineage_dir(name)
        for parent in (directory, directory / "archive", directory / "pending"):
            try:
                entries = os.listdir(parent)
            except FileNotFoundError:
                continue
            for entry in entries:
                if (
                    entry.startswith(".pending-old.partial.")
                    and not self.pending_dir(name).exists()
                ):
                    # killed while replacing pending/: the earlier key comes back
                    os.rename(parent / entry, self.pending_dir(name))
                    continue
                if entry.startswith(".") and (".partial." in entry or entry.endswith(".tmp")):
                    path = parent / entry
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                    removed.append(path)
        return removed

    # -- pending key and CSR ------------------------------------------------------------

    def pending_dir(self, name: str) -> Path:
        return self.lineage_dir(name) / "pending"

    def has_pending(self, name: str) -> bool:
        return os.path.isdir(self._path(name, "pending"))

    def write_pending(
        self, name: str, key_pem: bytes, csr_pem: bytes, meta: dict[str, Any]
    ) -> Path:
        """Store a new key and CSR as `pending/`, replacing any earlier one whole."""
        directory = self.lineage_dir(name)
        pending = self.pending_dir(name)
        partial = directory / f".pending.partial.{os.getpid()}"
        passphrase = self._passphrase()
        try:
            make_dirs(directory)
            self.repair(name)
            os.mkdir(partial, DIR_MODE)
            if passphrase is None:
                _write_new(partial / "privkey.pem", key_pem, KEY_MODE)
            else:
                from certcli.keycrypt import encrypt

                _write_new(partial / "privkey.pem.enc", encrypt(key_pem, passphrase), KEY_MODE)
            _write_new(partial / "csr.pem", csr_pem, FILE_MODE)
            _write_new(partial / "meta.json", json.dumps(meta, indent=2).encode(), FILE_MODE)
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
            raise _store_error("write", pending, exc) from None
        return pending

    def read_pending(self, name: str) -> tuple[bytes, bytes, dict[str, Any]] | None:
        pending = self.pending_dir(name)
        try:
            csr = (pending / "csr.pem").read_bytes()
            meta = json.loads((pending / "meta.json").read_bytes())
            if (pending / "privkey.pem.enc").exists():
                from certcli.keycrypt import decrypt

                passphrase = self._passphrase()
                if passphrase is None:
                    from certcli.errors import UsageError

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
            raise _store_error("remove", pending, exc) from None

    # -- locks --------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Exclusive lock of one lineage, for issue/upload/csr/san."""
        lock = self.locks_dir / f"lineage-{self._checked(name)}.lock"
        with self._flock(lock, f"certificate {name!r}"):
            yield

    @contextlib.contextmanager
    def lock_account(self, account_id: str) -> Iterator[None]:
        """Exclusive lock of one CA account, while it is created or changed."""
        with self._flock(self.locks_dir / f"account-{account_id}.lock", "the ACME account"):
            yield

    @contextlib.contextmanager
    def lock_store(self, wait: float | None = None) -> Iterator[None]:
        """Exclusive lock of the whole store, for renew."""
        with self._flock(self.locks_dir / "store.lock", f"the store {self.root}", wait):
            yield

    def remove_lineage_lock(self, name: str) -> None:
        """Remove the lock file of a lineage that is gone; the caller holds that lock (safe:
        whoever waits on the removed file notices once it has the lock, and locks anew)."""
        with contextlib.suppress(FileNotFoundError):
            (self.locks_dir / f"lineage-{name}.lock").unlink()

    @contextlib.contextmanager
    def _flock(self, path: Path, what: str, wait: float | None = None) -> Iterator[None]:
        self.ensure()
        if wait is None:
            try:
                wait = float(os.environ.get("CERTCLI_LOCK_WAIT", _LOCK_WAIT_DEFAULT))
            except ValueError:
                wait = _LOCK_WAIT_DEFAULT
        deadline = time.monotonic() + wait
        while True:
            fd = self._lock_fd(path, what, deadline)
            # Locked; but if the file was removed meanwhile (`delete` removes a lineage's),
            # this lock guards nothing: lock the file now at that path instead.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            try:  # who holds it, for the message of the next one; the lock holds regardless
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError:
                pass
            yield
        finally:
            os.close(fd)

    @staticmethod
    def _lock_fd(path: Path, what: str, deadline: float) -> int:
        """The lock file at `path` opened (created if need be) and flocked, by `deadline`."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, KEY_MODE)
        except OSError as exc:
            raise _store_error("open the lock", path, exc) from None
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                        raise LockedError(
                            f"{what} is locked by PID {holder}",
                            "another certcli is working on it; try again when it has finished",
                        ) from None
                    time.sleep(0.05)
        except BaseException:
            os.close(fd)
            raise
