"""HTTP-01 through a webroot: `<webroot>/.well-known/acme-challenge/<token>`.

Whoever owns the webroot (a site's user, a web application) may plant links in it, so below
the webroot every component is opened relative to its parent's descriptor (and a webroot
of root's must be reached through no link another user owns): a link is
followed only when root or certcli's user owns it (`certcli/safepath.py`), directories certcli
creates get their mode by `fchmod` on their own descriptor, and a token file is created with
`O_EXCL | O_NOFOLLOW` and removed with `unlink` in the directory's descriptor.

Before a token file is created, a record naming it is written in the store's journal of
leftovers (`leftovers/http-01-*.json`, certcli/leftovers.py) and held locked while the run
lives; a record whose lock is free belongs to a run that was killed, and the next run removes
the token files it names (and only those).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certcli.errors import CertcliError, UsageError
from certcli.leftovers import Journal, Record
from certcli.models import Phase
from certcli.safepath import PlantedLinkError, create_at, open_dir, trusted

if TYPE_CHECKING:
    from certcli.challenges import Challenge
    from certcli.storage.protocol import Storage

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")  # base64url: never a path separator or '..'
_CHALLENGE_DIR = ".well-known/acme-challenge"


class WebrootSolver:
    """Writes token files a web server serves, readable by it (0644 under 0755 dirs)."""

    challenge_type = "http-01"

    def __init__(self, webroot: Path, journal: Journal | None = None) -> None:
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
        self._journal = journal
        self._record: Record | None = None

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
        if self._journal is not None:
            sweep(self._journal)
            tokens = [c.token for c in challenges]
            self._record = self._journal.record({"webroot": str(self.webroot), "tokens": tokens})
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
            self._record.done() if done else self._record.keep()
            self._record = None


def _create_token(directory: int, challenge: Challenge) -> None:
    # not a secret; readable by the web server whatever the umask. No fsync: the file lives
    # for one validation, a crash ends that anyway, and the journal's record (synced before
    # it) has the next run remove whatever of it a crash leaves.
    data = challenge.key_authorization.encode()
    create_at(directory, challenge.token, data, 0o644, exact_mode=True, sync=False)


def _challenge_dir(webroot: Path, *, create: bool) -> int:
    """The descriptor of the webroot's `.well-known/acme-challenge`, what is below the webroot
    walked without following links others planted."""
    root = _webroot_dir(webroot)
    try:
        return open_dir(_CHALLENGE_DIR, dir_fd=root, create=0o755 if create else None)
    finally:
        os.close(root)


def _webroot_dir(webroot: Path) -> int:
    """The webroot as given, links included (a deploy tool's `current -> releases/…`, owned
    by the site's user, leads to that user's own directory). But a directory of root's or
    certcli's user must be reached through no link another user owns: whoever owns such a
    link (or a directory above it) could point it at any directory of root's (`/etc`)."""
    root = os.open(webroot, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    if not trusted(os.fstat(root).st_uid):
        return root  # theirs: nothing certcli writes there is more than they could
    os.close(root)
    try:
        return open_dir(webroot)
    except PlantedLinkError as exc:  # named from /, or from the current directory
        raise PlantedLinkError(os.path.abspath(exc.link), exc.uid) from None


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


def sweep(journal: Journal) -> None:
    """Remove the token files of runs that were killed before their cleanup (their record's
    lock is free), then their records. Never raises: leftovers wait for the next run."""
    for record in journal.orphans():
        webroot, tokens = record.data.get("webroot"), record.data.get("tokens")
        if not isinstance(webroot, str) or not isinstance(tokens, list):
            record.done()  # names nothing certcli could remove
        elif remove_tokens(Path(webroot), [str(t) for t in tokens]):
            record.done()
        else:
            record.keep()


# -- the method: its settings, its check before ordering, its hint ------------------------


@dataclass(frozen=True)
class WebrootSettings:
    webroot: str | None  # the directory the web server serves as http://DOMAIN/


def _webroot(settings: WebrootSettings) -> Path:
    if not settings.webroot:
        raise UsageError(
            "no webroot for HTTP-01", "give --webroot DIR, the directory your web server serves"
        )
    return Path(settings.webroot)


class Webroot:
    """HTTP-01 through a webroot, as the challenge registry knows it."""

    name = "http-01"
    wildcards = False
    ip_addresses = True
    check_phase: Phase | None = None  # the solver's own check: no phase of its own
    wait_phase: Phase | None = None  # a file is served at once: no phase of its own
    secret_keys: tuple[str, ...] = ()

    def settings(self, get: Callable[[str, Any], Any], store: Storage | None) -> WebrootSettings:
        return WebrootSettings(get("webroot", None))

    def solver(
        self,
        settings: WebrootSettings,
        leftovers: Path,
        interactive: bool,
        ask: Callable[[str], None],
    ) -> WebrootSolver:
        return WebrootSolver(_webroot(settings), Journal(leftovers, self.name))

    def check(self, identifiers: Sequence[str], settings: WebrootSettings) -> None:
        """The webroot exists, is a directory, and certcli may write there."""
        WebrootSolver(_webroot(settings)).check()

    def diagnose(self, identifiers: Sequence[str], settings: WebrootSettings) -> None:
        return None  # nothing to look up before ordering

    def cache(
        self, found: Sequence[Any], settings: WebrootSettings, now: datetime
    ) -> dict[str, Any]:
        return {}  # never called: its check and diagnosis find nothing to keep

    def pinned(self, settings: WebrootSettings) -> dict[str, Any]:
        return {}  # the webroot is a lineage setting of its own

    def hint(self, settings: WebrootSettings) -> str | None:
        if not settings.webroot:
            return None
        return (
            f"check that the web server serves {settings.webroot} as http://DOMAIN/ "
            "(the CA fetches /.well-known/acme-challenge/ on port 80)"
        )

    def refuse(self, domains: Sequence[str], answers: str, name: str | None) -> None:
        wildcard = next((d for d in domains if d.startswith("*.")), None)
        if wildcard is not None:
            raise UsageError(
                f"{wildcard} needs DNS-01, and {answers} HTTP-01 (--webroot)",
                "use --dns or --wildcard (DNS-01 through the CNAME delegation) instead"
                + (f"; `certcli issue ... --name {name} --dns --expand` moves it" if name else ""),
            )

    def sweep(self, leftovers: Path) -> None:
        """Token files a killed run left in a webroot go at the start of the next run."""
        sweep(Journal(leftovers, self.name))

    def describe(self, webroot: str | None) -> str:
        return f"webroot {webroot}"


METHOD = Webroot()
