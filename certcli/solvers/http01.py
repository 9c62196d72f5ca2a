"""HTTP-01 through a webroot: `<webroot>/.well-known/acme-challenge/<token>`.

Whoever owns the webroot (a site's user, a web application) may plant links in it, so below
the webroot every component is opened relative to its parent's descriptor: a link is
followed only when root or certcli's user owns it (`certcli/safepath.py`), directories certcli
creates get their mode by `fchmod` on their own descriptor, and a token file is created with
`O_EXCL | O_NOFOLLOW` and removed with `unlink` in the directory's descriptor.

Before a token file is created, a record naming it is written in the store
(`webroot-tokens/`) and held locked while the run lives; a record whose lock is free belongs
to a run that was killed, and the next run removes the token files it names (and only those).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
from pathlib import Path

from certcli.errors import CertcliError, UsageError
from certcli.safepath import PlantedLinkError, create_at, open_dir
from certcli.solvers import Challenge

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")  # base64url: never a path separator or '..'
_CHALLENGE_DIR = ".well-known/acme-challenge"
RECORDS = "webroot-tokens"  # in the store


class WebrootSolver:
    """Writes token files a web server serves, readable by it (0644 under 0755 dirs)."""

    challenge_type = "http-01"

    def __init__(self, webroot: Path, records: Path | None = None) -> None:
        if not webroot.exists():
            raise UsageError(
                f"--webroot {webroot} does not exist",
                "give the directory your web server serves for this site, or create it "
                f"(mkdir -p {webroot}) and serve it as http://DOMAIN/",
            )
        if not webroot.is_dir():
            raise UsageError(
                f"--webroot {webroot} is not a directory",
                "give the directory your web server serves for this site",
            )
        self.webroot = webroot
        self.directory = webroot / _CHALLENGE_DIR
        self._records = records
        self._record: _Record | None = None

    def check(self) -> None:
        existing = self.directory if self.directory.is_dir() else self.webroot
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UsageError(
                f"certcli cannot write in the webroot {existing}",
                "run certcli as a user that may write there",
            )

    def present(self, challenges: list[Challenge]) -> None:
        for challenge in challenges:
            if not _TOKEN.fullmatch(challenge.token):
                raise CertcliError(f"the CA sent a malformed token {challenge.token!r}")
        if self._records is not None:
            sweep(self._records)
            self._record = _Record.write(self._records, self.webroot, challenges)
        try:
            # The directories stay afterwards: concurrent issuances share them.
            directory = _challenge_dir(self.webroot, create=True)
            try:
                for challenge in challenges:
                    try:
                        _create_token(directory, challenge)
                    except FileExistsError:
                        # a leftover, or anything planted at the name: the entry is removed
                        # (unlink never follows it), then the token created afresh
                        os.unlink(challenge.token, dir_fd=directory)
                        _create_token(directory, challenge)
            finally:
                os.close(directory)
        except PlantedLinkError as exc:
            raise CertcliError(
                f"cannot write the challenge file in {self.directory}: {self.webroot / exc.link} "
                f"is a symbolic link owned by another user (uid {exc.uid}); certcli does not "
                "follow it",
                "remove the link, or have it owned by root or by certcli's user",
            ) from None
        except OSError as exc:
            raise CertcliError(
                f"cannot write the challenge file in {self.directory}: {exc.strerror}",
                "check that the webroot is writable by certcli",
            ) from None

    def wait(self, challenges: list[Challenge]) -> None:
        return None  # a file is served as soon as it exists

    def cleanup(self, challenges: list[Challenge]) -> None:
        done = remove_tokens(self.webroot, [c.token for c in challenges])
        if self._record is not None:
            self._record.close(remove=done)
            self._record = None


def _create_token(directory: int, challenge: Challenge) -> None:
    # not a secret; readable by the web server whatever the umask
    data = challenge.key_authorization.encode()
    create_at(directory, challenge.token, data, 0o644, exact_mode=True)


def _challenge_dir(webroot: Path, *, create: bool) -> int:
    """The descriptor of the webroot's `.well-known/acme-challenge`: the webroot as given,
    what is below it walked without following links others planted."""
    root = os.open(webroot, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return open_dir(_CHALLENGE_DIR, dir_fd=root, create=0o755 if create else None)
    finally:
        os.close(root)


def remove_tokens(webroot: Path, tokens: list[str]) -> bool:
    """Remove these token files (never through a link); False when one is still there."""
    try:
        directory = _challenge_dir(webroot, create=False)
    except OSError:
        return True  # no such directory, or not one certcli would enter: nothing of ours
    try:
        for token in tokens:
            if not _TOKEN.fullmatch(token):
                continue
            try:
                os.unlink(token, dir_fd=directory)
            except FileNotFoundError:
                pass
            except OSError:
                return False
        return True
    finally:
        os.close(directory)


class _Record:
    """What a run is about to create in a webroot, locked while the run lives."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def write(cls, records: Path, webroot: Path, challenges: list[Challenge]) -> _Record:
        from certcli.store import make_dirs

        payload = {"webroot": str(webroot), "tokens": [c.token for c in challenges]}
        name = f"{os.getpid()}-{secrets.token_hex(4)}.json"
        tmp = records / f".{name}.tmp"
        try:
            make_dirs(records)
            fd = os.open(
                tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
            fcntl.flock(fd, fcntl.LOCK_EX)  # before anyone can see it under its final name
            os.write(fd, json.dumps(payload).encode())
            os.fsync(fd)
            os.rename(tmp, records / name)
        except OSError as exc:
            raise CertcliError(
                f"cannot record the challenge files in {records}: {exc.strerror}"
            ) from None
        return cls(records / name, fd)

    def close(self, *, remove: bool) -> None:
        if remove:
            with contextlib.suppress(OSError):
                self.path.unlink()
        os.close(self.fd)


def sweep(records: Path) -> None:
    """Remove the token files of runs that were killed before their cleanup (their record's
    lock is free), then their records. Never raises: leftovers wait for the next run."""
    try:
        entries = os.listdir(records)
    except OSError:
        return
    for entry in entries:
        path = records / entry
        if entry.startswith("."):
            # a record being written, not yet locked: it names nothing made yet, and goes
            # only once its writer is gone
            with contextlib.suppress(OSError, ValueError):
                if not _alive(int(entry[1:].split("-", 1)[0])):
                    path.unlink()
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_nlink == 0:
                continue  # its run removed it meanwhile
            try:
                data = json.loads(os.read(fd, 1 << 20) or b"{}")
                tokens = [str(t) for t in data.get("tokens", [])]
                webroot = data.get("webroot")
            except (ValueError, AttributeError, TypeError):
                tokens, webroot = [], None
            if not webroot or remove_tokens(Path(str(webroot)), tokens):
                os.unlink(path)
        except OSError:
            continue  # a live run's (locked), or unreadable: left for later
        finally:
            os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal sent: only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user
    return pid > 0
