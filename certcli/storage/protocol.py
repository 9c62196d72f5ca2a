"""The contract between certcli and where it keeps certificates (docs/store.md).

What every implementation guarantees, whatever it stores on:

- Names are validated inside the store: a lineage name that is not one (`../x`, `/tmp/x`,
  `.hidden`, a control character) raises UsageError before any path is built from it.
- A missing lineage raises NotFoundError (naming the store) from the methods that need
  one; what cannot be read or written raises StoreError, naming the item and what to do.
- Every write is atomic: a reader sees the old content or the new one, whole (a file is
  written under a temporary name, fsynced, renamed over the old one, and its directory
  fsynced). A new version becomes current in one step, the switch of `live`.
- Safe for concurrent processes on one host: what a command changes in a lineage it changes
  holding that lineage's lock (`lock`); `renew` holds the store's (`lock_store`). Locks
  conflict between processes and between two acquisitions in one process; `update_state`
  alone takes the lineage lock only when the calling thread does not hold it already.
- No ACME: the store keeps bytes, settings and state; what they mean is for the callers.

Everything certcli keeps goes through these methods, so another implementation replaces
the file store without touching a caller. What stays a local file of the config dir,
`root`, is config.toml (certcli/config.py reads and writes it: it is the operator's, edited
by hand) and the directory of the leftovers journal (`leftovers_dir`: flocked files, each
held by the run that may still use what it records).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from certcli.models import Account, CertInfo, LineageSettings, LineageState, StateUpdate


class Caches(Protocol):
    """What a store keeps so that `renew` and `status` need not read every lineage."""

    # -- the renew index (a cache) -----------------------------------------------------

    def lineage_stamp(self, name: str) -> Any:
        """What, with the entries read_renew_index leaves out, shows any change of the
        lineage's settings, state or current version (the file store: lineage.toml's stat,
        the rest by its lock holders' notes)."""

    def read_renew_index(self) -> dict[str, Any]:
        """The renew index; {} for none, or one that is odd in any way."""

    def write_renew_index(self, lineages: dict[str, Any]) -> None:
        """Best effort: a failure leaves no index, never a wrong one."""

    # -- the status cache (a cache; a store may keep none) ---------------------------------

    def report_stamp(self, name: str) -> str | None:
        """What changes whenever what `status` shows of the lineage can, time aside; None
        when this store keeps no status cache."""

    def status_cache(self) -> StatusCacheFile:
        """The status cache, read in the order of `names()` as its successor is written."""


class Storage(Caches, Protocol):
    """Lineages (settings, state, versions, a pending key and CSR), the ACME accounts, the
    locks, the installation id and the renew index."""

    root: Path  # the config dir: where config.toml is
    certs_dir: Path  # where this host's lineages (or their live files) are
    where: str  # the store, as messages name it (a directory, a database)
    shared: bool  # whether other hosts use the store at once (per-lineage locks)

    # -- the store and its lineages ----------------------------------------------------

    def ensure(self) -> None:
        """Create the store if need be; StoreError saying why it cannot be written to."""

    def check_trusted(self) -> None:
        """StoreError if another user could change or swap the store (certcli/trust.py)."""

    def check_key_protection(self) -> None:
        """Fail before anything is issued if keys could not be stored as configured."""

    def names(self) -> list[str]:
        """The lineages, sorted; what an interrupted creation left is no lineage."""

    def exists(self, name: str) -> bool:
        """Whether the lineage exists (it has its settings)."""

    def require(self, name: str) -> Path:
        """The lineage's directory; NotFoundError when there is no such lineage."""

    def lineage_dir(self, name: str) -> Path:
        """Where the lineage's files are on this host, whether or not it exists yet."""

    def live_dir(self, name: str) -> Path:
        """Where this host's web server reads the current version (cert.pem, chain.pem,
        fullchain.pem, privkey.pem)."""

    # -- settings and state ------------------------------------------------------------

    def read_settings(self, name: str) -> LineageSettings:
        """lineage.toml, each setting checked by type. NotFoundError for no lineage,
        StoreError for a file that cannot be read, is another user's, or names another."""

    def write_settings(self, settings: LineageSettings) -> None:
        """Replace lineage.toml atomically, creating the lineage if need be; the caller
        holds the lineage lock. Keys it does not know are written back as read."""

    def read_lineage_state(self, name: str) -> LineageState:
        """state.json (an empty state when there is none); StoreError for one that cannot
        be read or whose known keys have the wrong type."""

    def state_where(self, name: str) -> str:
        """The lineage's state as an error names it: state.json's path, or its row."""

    def update_state(self, name: str, update: StateUpdate) -> LineageState:
        """Read, apply `update` and write state.json atomically under the lineage lock
        (taken unless the calling thread holds it), so that concurrent updates from other
        processes are never lost; the only writer of the state. Returns what was written;
        an `update` that raises writes nothing."""

    # -- versions ------------------------------------------------------------------------

    def versions(self, name: str) -> list[int]:
        """The complete versions, in order ([] before the first)."""

    def live_version(self, name: str) -> int | None:
        """The current version; None before the first. StoreError for a `live` certcli did
        not make (heal_live repairs it)."""

    def version_meta(self, name: str, version: int) -> dict[str, Any]:
        """A version's meta.json; StoreError naming the file when it cannot be read."""

    def read_version_file(self, name: str, version: int, filename: str) -> bytes | None:
        """One file of a version (cert.pem, chain.pem, privkey.pem, privkey.pem.enc); None
        when the version has no such file."""

    def version_info(self, name: str, version: int) -> CertInfo:
        """A version's certificate, from its meta.json; StoreError naming the file."""

    def live(self, name: str) -> tuple[int | None, CertInfo | None]:
        """The current version and its certificate, read once (None, None before the
        first)."""

    def live_info(self, name: str) -> CertInfo | None:
        """The current version's certificate; None before the first."""

    def read_live_file(self, name: str, filename: str) -> bytes:
        """One file of the current version (read_live_files)."""

    def read_live_files(self, name: str, *filenames: str) -> list[bytes]:
        """Files of the current version, all of one version even if it changes meanwhile.
        NotFoundError for no lineage, or for one with no certificate yet."""

    def add_version(
        self,
        name: str,
        files: dict[str, bytes],
        meta: dict[str, Any],
        config: LineageSettings | None = None,
    ) -> int:
        """Write a complete new version and make it current in one atomic switch; return
        its number. `config`, given, replaces lineage.toml before the switch, so a failure
        leaves both as they were. The caller holds the lineage lock. With key encryption
        on, older versions keep only their encrypted key."""

    def live_broken(self, name: str) -> bool:
        """Whether the current version is not whole (see heal_live)."""

    def heal_live(self, name: str) -> tuple[str, bool] | None:
        """Restore a broken current version from the complete ones; (what was done, whether
        it is whole again), None when it was fine. The caller holds the lineage lock;
        nothing of unknown content is deleted."""

    # -- the pending key and CSR -------------------------------------------------------

    def pending_dir(self, name: str) -> Path: ...

    def has_pending(self, name: str) -> bool:
        """Whether a key and CSR wait for their certificate."""

    def write_pending(self, name: str, key_pem: bytes, csr_pem: bytes, meta: dict[str, Any]) -> str:
        """Store a new key and CSR, replacing any earlier pair whole (a kill meanwhile keeps
        the earlier one); the caller holds the lineage lock. Returns where the key is kept,
        as the user is told."""

    def read_pending(self, name: str) -> tuple[bytes, bytes, dict[str, Any]] | None:
        """(key, CSR, meta) waiting; None when none does. UsageError for an encrypted key
        without its passphrase."""

    def clear_pending(self, name: str) -> None:
        """Remove the waiting key and CSR, atomically; nothing when there are none."""

    # -- ACME accounts, one per CA directory URL -----------------------------------------

    def account_urls(self) -> list[str]:
        """The CA directory URLs that have an account in this store, sorted."""

    def read_account(self, directory_url: str) -> Account | None:
        """The account at that CA; None when there is none. StoreError when it cannot be
        read, or another user could have changed it (its key signs every request)."""

    def write_account(self, account: Account) -> None:
        """Create or replace the account (its key private), atomically; the caller holds
        its lock. StoreError naming where it could not be written."""

    def stage_account_key(self, account: Account, key_pem: bytes) -> None:
        """Keep a new key beside the account's until the CA has taken it (a crash in
        between keeps both); the caller holds the account's lock."""

    def unstage_account_key(self, account: Account) -> None:
        """Remove the staged key, once write_account has kept it as the account's."""

    def retire_account(self, account: Account) -> None:
        """Set a deactivated account aside, in one step: the next issuance creates a new
        one. StoreError when it cannot be moved."""

    def read_directory(self, directory_url: str, max_age: float) -> dict[str, Any] | None:
        """The CA's directory as kept at most `max_age` seconds ago; None when there is
        none, or it is older, or odd in any way (a cache)."""

    def write_directory(self, directory_url: str, directory: dict[str, Any] | None) -> None:
        """Keep the CA's directory with the account (None forgets it); nothing without an
        account; best effort, never raises."""

    # -- what is made once per store ---------------------------------------------------

    def installation_id(self) -> str:
        """A random name made on first use, once per store whatever runs at once, and the
        same ever after."""

    def leftovers_dir(self) -> Path:
        """The local directory of the journal of what runs create outside the store
        (certcli/leftovers.py)."""

    # -- locks ---------------------------------------------------------------------------

    def lock(self, name: str, wait: float | None = None) -> AbstractContextManager[None]:
        """Hold the lineage's lock (exclusive, between processes and hosts too); LockedError
        naming the holder after `wait` seconds (CERTCLI_LOCK_WAIT, 5, for None)."""

    def lock_account(self, directory_url: str) -> AbstractContextManager[None]:
        """Hold the lock of the account at the CA `directory_url` names while it is created
        or changed."""

    def lock_store(self, wait: float | None = None) -> AbstractContextManager[None]:
        """Hold the store's lock (renew; for a shared store, this host's); LockedError after
        `wait` seconds."""

    def delete_lineage(self, name: str) -> None:
        """Remove the lineage whole, its lock file too; the caller holds its lock (a waiter
        locks anew). Atomic: renamed away in one step, then erased. NotFoundError when
        there is none; StoreError when it cannot be removed."""


class StatusCacheFile(Protocol):
    def get(self, name: str) -> list[Any] | None:
        """[report stamp, until, statuses, deploy failed, the report's JSON], or None."""

    def keep(self, name: str, entry: list[Any], *, same: bool) -> None:
        """Into the next cache; `same`: the entry `get` gave."""

    def close(self, *, complete: bool) -> None:
        """The next cache replaces this one if `complete` and anything changed."""
