"""`certcli import certbot`: certbot's lineages adopted into certcli's store.

certbot keeps, under its config directory (/etc/letsencrypt), one renewal configuration per
lineage (`renewal/NAME.conf`, ConfigObj syntax), the live files as symlinks into `archive/`,
and its ACME accounts under `accounts/`. Importing only reads there. Each lineage becomes an
ACME lineage of certcli with the same name, whose version 1 is certbot's live certificate,
chain and key, with the settings certcli can run: the CA, the webroot, the rfc2136 key,
hooks and the key type. What does not map is said in warnings naming what to set instead.

The work is split in a plan (reads and checks everything, writes nothing: `--dry-run` shows
it) and its application (an account, config.toml, then each lineage whole).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from certcli import trust
from certcli import x509 as x
from certcli.accounts import Account, load_account, save_account
from certcli.certbot_conf import (
    SECRET_KEYS,
    ConfError,
    Settings,
    map_renewal,
    parse_configobj,
    text_of,
)
from certcli.config import assign, lookup, setting
from certcli.domains import check_certificate_names, validate_lineage_name
from certcli.errors import (
    CertcliError,
    InvalidInputError,
    NotFoundError,
    StoreError,
    UsageError,
)
from certcli.fingerprints import stored_fingerprints
from certcli.inputs import read_input
from certcli.models import CertInfo, LineageConfig, Mode, rfc3339
from certcli.store import KEY_MODE, Store, atomic_write, version_files

_FILES = ("cert", "chain", "fullchain", "privkey")

# -- reading certbot's directory ------------------------------------------------------------


@dataclass(frozen=True)
class Material:
    """The live files of a certbot lineage, checked: the key matches, the chain is in order."""

    cert_pem: bytes
    chain_pem: bytes
    key_pem: bytes
    info: CertInfo
    sources: dict[str, str]  # cert/chain/privkey -> the archive file read


def _live_file(directory: Path, name: str, conf: dict[str, Any], kind: str) -> Path:
    """The conf's path of a live file, else live/NAME/KIND.pem (a certbot directory that was
    moved or copied keeps its old absolute paths in the confs)."""
    default = directory / "live" / name / f"{kind}.pem"
    configured = text_of(conf.get(kind))
    if configured and (os.path.lexists(configured) or not os.path.lexists(default)):
        return Path(configured)
    return default


def read_material(directory: Path, name: str, conf: dict[str, Any]) -> Material:
    """Read and check the live certificate, chain and key (through the live symlinks)."""
    paths = {kind: _live_file(directory, name, conf, kind) for kind in _FILES}
    leaf = x.parse_certificates(read_input(paths["cert"], "certificate"), str(paths["cert"]))[0]
    try:
        chain_data = read_input(paths["chain"], "chain")
        chain = x.parse_certificates(chain_data, str(paths["chain"]))
        sources = {"chain": str(paths["chain"].resolve())}
    except NotFoundError:  # no chain.pem: the full chain has it
        fullchain = read_input(paths["fullchain"], "full chain")
        chain = x.parse_certificates(fullchain, str(paths["fullchain"]))[1:]
        sources = {"chain": str(paths["fullchain"].resolve())}
    key = x.load_private_key(read_input(paths["privkey"], "private key"), str(paths["privkey"]))
    if not x.same_public_key(key.public_key(), leaf.public_key()):
        raise InvalidInputError(
            f"the key {paths['privkey']} does not match the certificate {paths['cert']}",
            "repair the lineage with certbot (certbot renew --cert-name "
            f"{name} --force-renewal), then import it",
        )
    x.check_chain(leaf, chain)
    info = x.cert_info(leaf)
    if not info.sans:
        raise InvalidInputError(f"{paths['cert']} has no subjectAltName extension")
    check_certificate_names(info.sans, str(paths["cert"]))
    sources |= {k: str(paths[k].resolve()) for k in ("cert", "privkey")}
    return Material(
        cert_pem=x.cert_pem(leaf),
        chain_pem=b"".join(x.cert_pem(c) for c in chain),
        key_pem=x.private_key_pem(key),
        info=info,
        sources=sources,
    )


def _read_conf(path: Path, what: str = "renewal configuration") -> dict[str, Any]:
    data = read_input(path, what)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ConfError(f"{path} is not UTF-8 text") from None
    return parse_configobj(text, str(path), reveal=what != "credentials file")


def _credentials(params: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    path = text_of(params.get("dns_rfc2136_credentials"))
    if not path:
        return None, None
    try:
        return _read_conf(Path(path), "credentials file"), None
    except CertcliError as exc:
        return None, exc.message


def jwk_private_key(jwk: dict[str, Any]) -> x.PrivateKey:
    """A private key from certbot's account key (a JWK: RSA, or EC P-256/P-384)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def number(field: str) -> int:
        value = str(jwk[field])
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    if jwk.get("kty") == "RSA":
        public = rsa.RSAPublicNumbers(number("e"), number("n"))
        return rsa.RSAPrivateNumbers(
            number("p"),
            number("q"),
            number("d"),
            number("dp"),
            number("dq"),
            number("qi"),
            public,
        ).private_key()
    curves = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1}
    if jwk.get("kty") == "EC" and jwk.get("crv") in curves:
        return ec.derive_private_key(number("d"), curves[str(jwk["crv"])]())
    raise ValueError(f"a {jwk.get('kty')} {jwk.get('crv', '')} key, which certcli cannot use")


def read_certbot_account(directory: Path, server: str, account: str) -> Account:
    """certbot's account `account` at `server`: accounts/<host><path>/<id>/ holds
    private_key.json (a JWK), regr.json (its URI) and meta.json (when it was made)."""
    parts = urlsplit(server)
    path = directory / "accounts" / (parts.netloc + parts.path).strip("/") / account
    if not path.is_dir():
        found = sorted((directory / "accounts").glob(f"**/{account}/regr.json"))
        if not found:
            raise NotFoundError(f"certbot's account {account} is not under {directory}/accounts")
        path = found[0].parent
    # its key becomes certcli's account key, which signs every request to the CA: read only
    # from directories and files nobody else can change, as certcli's own account
    for below in (p for p in reversed((path, *path.parents)) if directory in p.parents):
        trust.check_path(below)  # accounts/, then each directory down to the account's
    for name in ("private_key.json", "regr.json", "meta.json"):
        trust.check_path(path / name)
    try:
        key = jwk_private_key(json.loads(read_input(path / "private_key.json", "account key")))
        regr = json.loads(read_input(path / "regr.json", "account"))
        meta_path = path / "meta.json"
        meta = json.loads(read_input(meta_path, "account")) if meta_path.exists() else {}
        uri = regr["uri"]
        body = regr.get("body") or {}
        return Account(
            directory=server,
            uri=str(uri),
            contact=tuple(str(c) for c in body.get("contact") or ()),
            terms_of_service=regr.get("terms_of_service"),
            created=str(meta.get("creation_dt") or ""),
            key_pem=x.private_key_pem(key),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise InvalidInputError(f"cannot read certbot's account in {path}: {reason}") from None


# -- the plan -------------------------------------------------------------------------------


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
    store: Store,
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
    return ImportPlan(directory, lineages, accounts, changes, _notes(directory))


def _plan_one(
    store: Store,
    directory: Path,
    path: Path,
    stored: dict[str, str],
    now: datetime,
    dns_target: str | None,
) -> LineageImport:
    name = path.name.removesuffix(".conf")
    try:
        validate_lineage_name(name)
        if store.exists(name):
            return LineageImport(
                name,
                str(path),
                "skipped",
                reason=f"certcli already has a certificate named {name!r} "
                f"(`certcli delete {name}` first to import it again)",
            )
        trust.check_path(path)  # in a directory only we can change: no swap until it is read
        conf = _read_conf(path)
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
        credentials, problem = _credentials(params)
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
        )
    except CertcliError as exc:
        return LineageImport(name, str(path), "failed", error=exc)


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
    store: Store, directory: Path, lineages: list[LineageImport]
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


def _plan_account(store: Store, directory: Path, server: str, wanted: str | None) -> AccountImport:
    try:
        existing = load_account(store, server)
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


def _notes(directory: Path) -> list[str]:
    """What certbot does beyond the lineages' own settings and certcli does not."""
    notes = []
    for kind in ("pre", "post", "deploy"):
        hooks = directory / "renewal-hooks" / kind
        try:
            scripts = sorted(
                p.name for p in hooks.iterdir() if p.is_file() and os.access(p, os.X_OK)
            )
        except OSError:
            continue
        if scripts:
            notes.append(
                f"certbot also runs {', '.join(scripts)} from {hooks} at each renewal; certcli "
                f"does not: call them from hooks.{kind} (`certcli config set hooks.{kind} CMD`)"
            )
    if (directory / "cli.ini").is_file():
        notes.append(
            f"{directory / 'cli.ini'} may hold defaults certbot's renewals used too; "
            "certcli did not read it"
        )
    return notes


# -- applying the plan ----------------------------------------------------------------------


def apply_import(store: Store, plan: ImportPlan, *, now: datetime) -> ImportPlan:
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


def _apply_account(store: Store, item: AccountImport) -> AccountImport:
    if item.action != "import" or item.account is None:
        return item
    from certcli.accounts import account_id

    with store.lock_account(account_id(item.server)):
        existing = load_account(store, item.server)
        if existing is not None:  # made meanwhile: certcli's own stays
            return replace(item, action="kept", uri=existing.uri, account=None)
        save_account(store, item.account)
    return replace(item, action="imported")


def _apply_config(store: Store, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the keys still unset in config.toml, in one atomic write, 0600 (it may hold the
    TSIG secret)."""
    if not changes:
        return changes
    import tomli_w

    from certcli.config import load_config

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
        path = store.root / "config.toml"
        try:
            atomic_write(path, tomli_w.dumps(config).encode(), KEY_MODE)
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror}") from None
    return done


def _apply_lineage(store: Store, item: LineageImport, now: datetime) -> LineageImport:
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
                store.write_config(
                    LineageConfig(
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
