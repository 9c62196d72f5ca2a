"""Healing a broken `live`: a link to nothing, to an incomplete version, or no link at all."""

from __future__ import annotations

import json

from certcli.errors import StoreError
from certcli.storage.fsio import atomic_write
from certcli.storage.writes import VersionWriter


class LiveHealer(VersionWriter):
    """Finds a `live` that is not whole, and restores it from the versions that are."""

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
