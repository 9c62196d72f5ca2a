"""certcli sync: this host's live/ brought to the shared store's current versions, the
deploy hook run for each one that changed (docs/many-hosts.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from certcli.errors import CertcliError, UsageError

if TYPE_CHECKING:
    from certcli.storage.pgstore import PostgresStore
    from certcli.storage.protocol import Storage


@dataclass(frozen=True)
class Synced:
    name: str
    action: str  # "updated", "removed", "failed"
    version: int | None
    problem: str | None = None  # the deploy hook's failure, or why the files were not written


def shared_store(store: Storage) -> PostgresStore:
    if not store.shared:
        raise UsageError(
            "`certcli sync` serves a shared (PostgreSQL) store's versions on this host, and "
            "this store is the file store, whose live/ is always current",
            "set [store] url (or CERTCLI_STORE_URL) to the PostgreSQL store",
        )
    return store  # type: ignore[return-value]


def sync(store: Storage, config: dict[str, Any]) -> list[Synced]:
    """Write each lineage whose current version this host does not serve, run its deploy
    hook, and remove what the store no longer has. Nothing changed: one question to the
    database."""
    shared = shared_store(store)
    current, recorded = shared.current()
    local = shared.local
    serving = local.all_serving()
    changed = {name: v for name, v in current.items() if serving.get(name) != v}
    done: list[Synced] = []
    files = shared.version_files(changed) if changed else {}
    if changed:  # the hooks' machinery only when there is a hook to run
        from certcli.flows.deploy import deploy

    for name, version in sorted(changed.items()):
        try:
            shared.serve(name, version, files[name])
            serving[name] = version
            problem = deploy(store, config, store.read_settings(name))
        except (OSError, KeyError, CertcliError) as exc:
            reason = exc.message if isinstance(exc, CertcliError) else str(exc)
            done.append(Synced(name, "failed", version, reason))
            continue
        done.append(Synced(name, "updated", version, problem))
    for name in sorted(set(serving) - set(current)):
        try:
            local.remove(name)
            del serving[name]
            done.append(Synced(name, "removed", None))
        except OSError as exc:
            done.append(Synced(name, "failed", None, str(exc)))
    now_serving = {name: v for name, v in serving.items() if v is not None}
    if now_serving != recorded:
        shared.record_serving(now_serving)
    return done


@dataclass(frozen=True)
class HostView:
    """A host of a shared store: when it last synced, and which version of each lineage it
    serves."""

    host: str
    synced_at: str
    serving: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "synced_at": self.synced_at, "serving": self.serving}


def hosts(store: Storage) -> list[HostView] | None:
    """Every host that has synced a shared store; None for a store of one host."""
    if not store.shared:
        return None
    from certcli.models import rfc3339

    return [
        HostView(host, rfc3339(at.replace(microsecond=0)), serving)
        for host, at, serving in shared_store(store).hosts()
    ]
