"""HTTP-01 through a webroot: `<webroot>/.well-known/acme-challenge/<token>`."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from certcli.errors import CertcliError, UsageError
from certcli.solvers import Challenge

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")  # base64url: never a path separator or '..'


class WebrootSolver:
    """Writes token files a web server serves, readable by it (0644 under 0755 dirs)."""

    challenge_type = "http-01"

    def __init__(self, webroot: Path) -> None:
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
        self.directory = webroot / ".well-known" / "acme-challenge"

    def check(self) -> None:
        existing = self.directory if self.directory.is_dir() else self.webroot
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UsageError(
                f"certcli cannot write in the webroot {existing}",
                "run certcli as a user that may write there",
            )

    def present(self, challenges: list[Challenge]) -> None:
        try:
            # The directories stay afterwards: concurrent issuances share them.
            for part in (self.webroot / ".well-known", self.directory):
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755)
                    os.chmod(part, 0o755)  # the web server must read it, whatever the umask
            for challenge in challenges:
                if not _TOKEN.fullmatch(challenge.token):
                    raise CertcliError(f"the CA sent a malformed token {challenge.token!r}")
                path = self.directory / challenge.token
                # O_NOFOLLOW: a link planted at the token's name (by whoever may write in the
                # webroot) must not make certcli write through it as its own user.
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
                fd = os.open(path, flags, 0o644)
                os.fchmod(fd, 0o644)  # not a secret; readable by the web server, whatever the umask
                with os.fdopen(fd, "w") as handle:
                    handle.write(challenge.key_authorization)
        except OSError as exc:
            raise CertcliError(
                f"cannot write the challenge file in {self.directory}: {exc.strerror}",
                "check that the webroot is writable by certcli",
            ) from None

    def wait(self, challenges: list[Challenge]) -> None:
        return None  # a file is served as soon as it exists

    def cleanup(self, challenges: list[Challenge]) -> None:
        for challenge in challenges:
            if _TOKEN.fullmatch(challenge.token):
                with contextlib.suppress(OSError):
                    (self.directory / challenge.token).unlink()
