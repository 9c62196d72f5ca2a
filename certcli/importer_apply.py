"""Applying an import plan (certcli.importer): certbot's account, the settings config.toml
lacks, then each lineage whole; what could not be written is `failed`, the rest goes on."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import datetime
from typing import Any

from certcli.config import assign, load_config, lookup, save_config
from certcli.errors import CertcliError, UsageError
from certcli.importer import AccountImport, ImportPlan, LineageImport
from certcli.models import LineageSettings, Mode, rfc3339
from certcli.storage.files import version_files
from certcli.storage.protocol import Storage


def apply_import(store: Storage, plan: ImportPlan, *, now: datetime) -> ImportPlan:
    """Write what the plan says: accounts, then config.toml (once), then each lineage whole
    (a lineage appears when its lineage.toml is written, last). Returns the plan with what
    was done; a lineage that could not be written is `failed` and the others go on."""
    if not plan.to_import:
        return plan
    store.ensure()
    store.check_key_protection()  # before anything is written
    accounts = [_apply_account(store, a) for a in plan.accounts]
    config = _apply_config(store, plan.config)
    lineages = [
        _apply_lineage(store, item, now) if item.action == "import" else item
        for item in plan.lineages
    ]
    return replace(plan, lineages=lineages, accounts=accounts, config=config)


def _apply_account(store: Storage, item: AccountImport) -> AccountImport:
    if item.action != "import" or item.account is None:
        return item
    with store.lock_account(item.server):
        existing = store.read_account(item.server)
        if existing is not None:  # made meanwhile: certcli's own stays
            return replace(item, action="kept", uri=existing.uri, account=None)
        store.write_account(item.account)
    return replace(item, action="imported")


def _apply_config(store: Storage, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the keys still unset in config.toml, in one atomic write, 0600 (it may hold the
    TSIG secret)."""
    if not changes:
        return changes
    config = load_config(store.root)
    done: dict[str, Any] = {}
    for key, value in changes.items():
        if lookup(config, key) is not None:
            continue
        try:
            assign(config, key, value)
        except UsageError:  # a value where a table should be: left as the user wrote it
            continue
        done[key] = value
    if done:
        save_config(store.root, config)
    return done


def _apply_lineage(store: Storage, item: LineageImport, now: datetime) -> LineageImport:
    assert item.material is not None and item.settings is not None
    name, material, info = item.name, item.material, item.material.info
    try:
        with store.lock(name):
            if store.exists(name):
                return replace(
                    item,
                    action="skipped",
                    reason=f"certcli has a certificate named {name!r} now",
                    material=None,
                )
            directory = store.lineage_dir(name)
            # Without lineage.toml the directory is no lineage: what an interrupted import
            # (or first upload) left, invisible to every reader.
            shutil.rmtree(directory, ignore_errors=True)
            try:
                version = store.add_version(
                    name,
                    version_files(material.cert_pem, material.chain_pem, material.key_pem),
                    {
                        "certificate": info.to_json(),
                        "source": "certbot",
                        "imported_from": item.conf,
                        "certbot_files": material.sources,
                        "created": rfc3339(now),
                    },
                )
                store.write_settings(
                    LineageSettings.build(
                        name,
                        info.sans,
                        Mode.AUTO,
                        item.settings.key_type,
                        item.settings.lineage_extra(),
                    )
                )
            except BaseException:
                if not store.exists(name):
                    shutil.rmtree(directory, ignore_errors=True)
                raise
    except CertcliError as exc:
        return replace(item, action="failed", error=exc, material=None)
    return replace(item, action="imported", version=version, material=None)
