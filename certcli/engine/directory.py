"""The CA's directory: a copy kept from an earlier run (a round trip saved), fetched afresh
when it is missing, old or damaged, or once when a resource seems to have moved."""

from __future__ import annotations

import copy
import threading
from typing import Any

import josepy as jose
import requests
from acme import errors as acme_errors
from acme import messages

from certcli.engine.network import CaSettings, log, open_network
from certcli.errors import AcmeError, CertcliError
from certcli.storage.protocol import Storage

DIRECTORY_MAX_AGE = 24 * 3600.0  # seconds a kept copy of a CA's directory is used
RESOURCES = ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "renewalInfo")


def resources(directory: Any) -> dict[str, Any]:
    """A directory's resource URLs: what a client uses of it (a CA may add random keys)."""
    return {name: directory.get(name) for name in RESOURCES} if isinstance(directory, dict) else {}


def looks_moved(exc: BaseException, response: requests.Response | None) -> bool:
    """Whether a failure could come from a stale kept directory: no answer at its URL,
    404 or 405 there, or an answer not understood. Never a problem the CA meant."""
    if isinstance(exc, requests.exceptions.ConnectionError | ValueError | KeyError):
        return True
    return response is not None and response.status_code in (404, 405)


class Directory:
    """One CA's directory, shared by the threads that use the CA."""

    def __init__(self, store: Storage, settings: CaSettings) -> None:
        self.store, self.settings = store, settings
        self._lock = threading.Lock()
        self.kept = self._changed = False  # whether `current` is a kept copy
        self.current: messages.Directory
        self._data: Any = None

    def load(self, use_kept: bool) -> None:
        """The kept copy when `use_kept` and it is fresh and sound, else the CA's answer
        (`save` keeps that for the next run)."""
        kept = use_kept and self.store.read_directory(
            self.settings.directory_url, DIRECTORY_MAX_AGE
        )
        if kept:
            try:
                self.use(kept)
                self.kept = True
                return
            except AcmeError:  # a damaged copy: ask the CA instead
                pass
        self.use(self.fetch())

    def save(self) -> None:
        """Keep a fetched directory for the next run (once it has served: an account)."""
        if not self.kept:
            self.store.write_directory(self.settings.directory_url, self._data)

    def fetch(self) -> Any:
        return open_network(self.settings).get(self.settings.directory_url).json()

    def use(self, data: Any) -> None:
        try:
            directory = messages.Directory.from_json(copy.deepcopy(data))  # it edits its input
            if "newOrder" not in directory.to_partial_json():
                raise KeyError("newOrder")
        except (ValueError, KeyError, TypeError, AttributeError, jose.DeserializationError):
            raise AcmeError(
                f"{self.settings.directory_url} is not an ACME directory",
                "check --server (it ends in /directory)",
            ) from None
        self.current, self._data = directory, data

    def forget(self) -> None:
        """A failure while using the kept copy: the next run asks the CA again."""
        if self.kept:
            self.store.write_directory(self.settings.directory_url, None)

    def refresh(self, used: messages.Directory) -> bool:
        """Fetch the directory again if `used` was a kept copy; True when a resource moved.
        Threads that failed on the same copy share one fetch and its answer."""
        with self._lock:
            if self.current is not used:
                return self._changed
            if not self.kept:
                return False
            self.kept = False
            kept = self._data
            log.debug("fetching the directory again: a resource may have moved")
            try:
                self.use(self.fetch())
            except (
                CertcliError,
                requests.exceptions.RequestException,
                acme_errors.Error,
                jose.DeserializationError,
                ValueError,
                KeyError,
            ):
                return False  # the caller reports what went wrong first
            self._changed = resources(self._data) != resources(kept)
        self.store.write_directory(self.settings.directory_url, self._data)
        return self._changed

    @property
    def renewal_info_url(self) -> str | None:
        """The CA's renewalInfo resource (RFC 9773), when it offers one."""
        return self.current.to_partial_json().get("renewalInfo")

    @property
    def profiles(self) -> dict[str, str]:
        """The ACME profiles the CA offers, by name, with their descriptions."""
        return dict(self.current.meta.profiles or {})
