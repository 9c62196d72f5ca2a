"""`certcli import certbot`: certbot's lineages adopted into certcli's store.

certbot keeps, under its config directory (/etc/letsencrypt), one renewal configuration per
lineage (`renewal/NAME.conf`, ConfigObj syntax), the live files as symlinks into `archive/`,
and its ACME accounts under `accounts/`. Importing only reads there. Each lineage becomes an
ACME lineage of certcli with the same name, whose version 1 is certbot's live certificate,
chain and key, with the settings certcli can run: the CA, the webroot, the rfc2136 key,
hooks and the key type. What does not map is said in warnings naming what to set instead.

The work is split in a plan, here (reads and checks everything through certcli.certbot_files,
writes nothing: `--dry-run` shows it), and its application in certcli.importer_apply (an
account, config.toml, then each lineage whole).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from certcli import challenges, trust
from certcli.certbot_conf import Settings, map_renewal
from certcli.certbot_files import (
    Material,
    certbot_notes,
    read_certbot_account,
    read_conf,
    read_credentials,
    read_material,
)
from certcli.config import SECRET_KEYS, lookup, setting
from certcli.errors import (
    CertcliError,
    InvalidInputError,
    NotFoundError,
    StoreError,
)
from certcli.fingerprints import stored_fingerprints
from certcli.models import Account, CertInfo, rfc3339
from certcli.storage.protocol import Storage


@dataclass(frozen=True)
class LineageImport:
    """One certbot lineage: what the import does (or did) with it."""

    name: str
    conf: str  # the renewal configuration's path
    action: str  # import (planned), imported, skipped, failed
    settings: Settings | None = None
    certificate: CertInfo | None = None
    reason: str | None = None  # why it is skipped
    error: CertcliError | None = None
    version: int | None = None
    warnings: tuple[str, ...] = ()
    material: Material | None = field(default=None, repr=False)
    how: str = ""  # how its renewals will be validated, in words (for the text output)

    def to_json(self) -> dict[str, Any]:
        s, cert = self.settings, self.certificate
        return {
            "name": self.name,
            "action": self.action,
            "renewal_conf": self.conf,
            "domains": list(cert.sans) if cert else [],
            "not_after": rfc3339(cert.not_after) if cert else None,
            "fingerprint_sha256": cert.fingerprint_sha256 if cert else None,
            "authenticator": s.authenticator if s else None,
            "server": s.server if s else None,
            "challenge": s.challenge if s else None,
            "webroot": s.webroot if s else None,
            "key_type": s.key_type if s else None,
            "deploy_hook": s.deploy_hook if s else None,
            "version": self.version,
            "reason": self.reason,
            "error": self.error.message if self.error else None,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class AccountImport:
    """certbot's ACME account at one CA: imported unless certcli has one there already."""

    server: str
    action: str  # import (planned), imported, kept (certcli's own), missing
    uri: str | None = None
    reason: str | None = None
    account: Account | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "action": self.action,
            "uri": self.uri,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ImportPlan:
    directory: Path
    lineages: list[LineageImport]
    accounts: list[AccountImport]
    config: dict[str, Any]  # dotted config.toml keys to set (only keys not set yet)
    notes: list[str]  # about the certbot directory as a whole

    @property
    def to_import(self) -> list[LineageImport]:
        return [item for item in self.lineages if item.action == "import"]

    def to_json(self, dry_run: bool) -> dict[str, Any]:
        return {
            "source": str(self.directory),
            "dry_run": dry_run,
            "lineages": [item.to_json() for item in self.lineages],
            "accounts": [a.to_json() for a in self.accounts],
            "config": [
                {"key": k, "value": None if k in SECRET_KEYS else v, "secret": k in SECRET_KEYS}
                for k, v in self.config.items()
            ],
            "warnings": self.notes,
        }


def plan_import(
    store: Storage,
    config: dict[str, Any],
    directory: Path,
    names: list[str],
    *,
    now: datetime,
) -> ImportPlan:
    """Read certbot's directory and decide what to import; nothing is written."""
    if not directory.is_dir():
        raise NotFoundError(
            f"{directory} is not a directory",
            "give certbot's config directory (its --config-dir; /etc/letsencrypt by default)",
        )
    renewal = directory / "renewal"
    if not renewal.is_dir():
        raise NotFoundError(
            f"{directory} has no renewal/ directory: it is not certbot's config directory",
            "give certbot's config directory (its --config-dir; /etc/letsencrypt by default)",
        )
    # its hooks become certcli's (run as root, often): not from where another user can write
    trust.check_chain(renewal)
    for sub in ("renewal", "live", "archive"):
        # certbot makes live/ and archive/ 0700: one clear line, not one per lineage
        if (directory / sub).exists() and not os.access(directory / sub, os.R_OK | os.X_OK):
            raise InvalidInputError(
                f"cannot read {directory / sub}: permission denied",
                "run the import as the user certbot runs as (usually root)",
            )
    try:
        confs = {
            p.name.removesuffix(".conf"): p
            for p in sorted(renewal.iterdir())
            if p.name.endswith(".conf") and not p.name.startswith(".")
        }
    except OSError as exc:
        raise InvalidInputError(f"cannot read {renewal}: {exc.strerror}") from None
    unknown = [n for n in names if n not in confs]
    if unknown:
        raise NotFoundError(
            f"certbot has no lineage {', '.join(map(repr, unknown))} in {renewal}",
            f"its lineages: {', '.join(confs) or 'none'}",
        )
    selected = [confs[n] for n in dict.fromkeys(names)] if names else list(confs.values())
    # fingerprint -> where, the last version of each certificate
    stored = {f: f"{n!r} version {v}" for f, n, v in stored_fingerprints(store)}
    zone = setting("dns.zone", None, config, None)
    dns_target = setting("dns.target", None, config, None) or (
        f"the default target under {zone}" if zone else None
    )
    lineages = [_plan_one(store, directory, path, stored, now, dns_target) for path in selected]
    lineages, changes = _plan_config(config, lineages)
    lineages, accounts = _plan_accounts(store, directory, lineages)
    return ImportPlan(directory, lineages, accounts, changes, certbot_notes(directory))


def _plan_one(
    store: Storage,
    directory: Path,
    path: Path,
    stored: dict[str, str],
    now: datetime,
    dns_target: str | None,
) -> LineageImport:
    name = path.name.removesuffix(".conf")
    try:
        if store.exists(name):
            return LineageImport(
                name,
                str(path),
                "skipped",
                reason=f"certcli already has a certificate named {name!r} "
                f"(`certcli delete {name}` first to import it again)",
            )
        trust.check_path(path)  # in a directory only we can change: no swap until it is read
        conf = read_conf(path)
        material = read_material(directory, name, conf)
        info = material.info
        if info.fingerprint_sha256 in stored:
            return LineageImport(
                name,
                str(path),
                "skipped",
                certificate=info,
                reason="its certificate is in certcli's store already, as "
                + stored[info.fingerprint_sha256],
            )
        stored[info.fingerprint_sha256] = f"{name!r} (this import)"
        params = conf.get("renewalparams") if isinstance(conf.get("renewalparams"), dict) else {}
        credentials, problem = read_credentials(params)
        settings = map_renewal(
            name,
            info.sans,
            conf,
            live_key_type=info.key_type,
            credentials=credentials,
            credentials_problem=problem,
            dns_target=dns_target,
        )
        warnings = list(settings.warnings)
        if now >= info.not_after:
            warnings.append(
                f"its certificate expired on {info.not_after:%Y-%m-%d}: `certcli renew` will "
                f"try to renew it (`certcli delete {name}` if it is no longer needed)"
            )
        return LineageImport(
            name,
            str(path),
            "import",
            settings,
            info,
            warnings=tuple(warnings),
            material=material,
            how=_how(settings),
        )
    except CertcliError as exc:
        return LineageImport(name, str(path), "failed", error=exc)


def _how(settings: Settings) -> str:
    method = challenges.METHODS.get(settings.challenge or "")
    if method is None:
        return f"no challenge certcli can answer (certbot used {settings.authenticator})"
    return method.describe(settings.webroot)


def _plan_config(
    config: dict[str, Any], lineages: list[LineageImport]
) -> tuple[list[LineageImport], dict[str, Any]]:
    """Settings certcli keeps once per installation (pre/post hooks, the rfc2136 key): set
    when config.toml has none yet, never changed; a different value is a warning."""
    changes: dict[str, Any] = {}
    result = []
    for item in lineages:
        if item.action == "import" and item.settings:
            warnings = list(item.warnings)
            for what, values in item.settings.global_settings:
                present = {k: lookup(config, k) for k in values}
                present = {k: changes.get(k) if v is None else v for k, v in present.items()}
                if all(v is None for v in present.values()):
                    changes.update(values)
                elif present != values:
                    keys = ", ".join(values)
                    warnings.append(
                        f"{what} was not imported: certcli's config.toml has {keys} set "
                        "otherwise already (one per installation)"
                    )
            item = replace(item, warnings=tuple(warnings))
        result.append(item)
    return result, changes


def _plan_accounts(
    store: Storage, directory: Path, lineages: list[LineageImport]
) -> tuple[list[LineageImport], list[AccountImport]]:
    """certcli keeps one account per CA: certbot's is imported where certcli has none."""
    accounts: dict[str, AccountImport] = {}
    chosen: dict[str, str | None] = {}
    result = []
    for item in lineages:
        if item.action != "import" or item.settings is None:
            result.append(item)
            continue
        server, wanted = item.settings.server, item.settings.account
        warnings = list(item.warnings)
        if server not in accounts:
            chosen[server] = wanted
            accounts[server] = _plan_account(store, directory, server, wanted)
            if accounts[server].action == "missing":
                warnings.append(
                    f"no account at {server} imported ({accounts[server].reason}): the first "
                    f"renewal creates one; run `certcli renew {item.name} --force` at a "
                    "terminal to accept the CA's terms"
                )
        elif wanted != chosen[server] and accounts[server].action == "import":
            warnings.append(
                f"certbot's account {wanted} was not imported: certcli keeps one account per "
                f"CA, and renews it with the one imported from certbot's {chosen[server]}"
            )
        result.append(replace(item, warnings=tuple(warnings)))
    return result, list(accounts.values())


def _plan_account(
    store: Storage, directory: Path, server: str, wanted: str | None
) -> AccountImport:
    try:
        existing = store.read_account(server)
    except StoreError:
        existing = None
    if existing is not None:
        return AccountImport(server, "kept", existing.uri, "certcli has an account there")
    if not wanted:
        return AccountImport(server, "missing", reason="the renewal configuration names none")
    try:
        account = read_certbot_account(directory, server, wanted)
    except CertcliError as exc:
        return AccountImport(server, "missing", reason=exc.message)
    return AccountImport(server, "import", account.uri, account=account)
