"""Issuance and renewal of ACME lineages: settings, phases in state.json, new versions.

Shared by `issue` and `renew` (and later `san add`); the protocol itself is certcli.engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certcli.config import LETSENCRYPT, resolve_server, setting
from certcli.domains import validate_lineage_name
from certcli.errors import CertcliError, NotFoundError, UsageError
from certcli.models import DEFAULT_KEY_TYPE, CertInfo, LineageConfig, Mode, rfc3339
from certcli.renewal import days_left, renewal_reason, renewal_window_start
from certcli.store import Store

if TYPE_CHECKING:
    from certcli.engine import Ca, CaSettings
    from certcli.solvers import Solver

#: Called with (lineage name, phase) as an issuance moves on.
Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class AcmeOptions:
    """What the command line says; None means "from the environment, lineage or config"."""

    server: str | None = None
    email: str | None = None
    agree_tos: bool = False
    eab_kid: str | None = None
    eab_hmac_key: str | None = None
    ca_bundle: str | None = None
    key_type: str | None = None
    webroot: str | None = None
    preferred_chain: str | None = None


@dataclass(frozen=True)
class Plan:
    """Everything one issuance needs, resolved."""

    ca: CaSettings
    key_type: str
    webroot: str | None
    preferred_chain: str | None

    def lineage_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"server": self.ca.directory_url, "challenge": "http-01"}
        for key, value in (
            ("webroot", self.webroot),
            ("preferred_chain", self.preferred_chain),
            ("ca_bundle", self.ca.ca_bundle),
        ):
            if value:
                extra[key] = value
        return extra


def make_plan(options: AcmeOptions, config: dict[str, Any], lineage: LineageConfig | None) -> Plan:
    from certcli.engine import CaSettings

    table = lineage.to_toml() if lineage else None

    def get(key: str, cli: Any, default: Any = None) -> Any:
        return setting(key, cli, config, default, table)

    def seconds(key: str, default: float) -> float:
        value = get(key, None, default)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UsageError(f"{key} {value!r} is not a number of seconds") from None

    ca = CaSettings(
        directory_url=resolve_server(get("server", options.server, LETSENCRYPT)),
        email=get("email", options.email),
        agree_tos=options.agree_tos,
        eab_kid=options.eab_kid,
        eab_hmac_key=options.eab_hmac_key,
        ca_bundle=get("ca_bundle", options.ca_bundle),
        timeout=seconds("acme.timeout", 300),
        network_timeout=seconds("acme.network_timeout", 30),
    )
    return Plan(
        ca=ca,
        key_type=get("key_type", options.key_type, DEFAULT_KEY_TYPE),
        webroot=get("webroot", options.webroot),
        preferred_chain=get("preferred_chain", options.preferred_chain),
    )


class CaPool:
    """One engine connection per CA, made on first use (so a renew with nothing due sends
    nothing) and shared by the threads of one run."""

    def __init__(self, store: Store, accept_tos: Callable[[str], bool]) -> None:
        self.store = store
        self.accept_tos = accept_tos
        self._cas: dict[CaSettings, Ca] = {}
        self._lock = threading.Lock()

    def get(self, settings: CaSettings) -> Ca:
        from certcli.engine import Ca

        with self._lock:
            if settings not in self._cas:
                self._cas[settings] = Ca(self.store, settings, self.accept_tos)
            return self._cas[settings]


@dataclass(frozen=True)
class Outcome:
    """What happened to one lineage in one run."""

    name: str
    action: str  # issued, renewed, dry_run, failed, not_due, skipped
    domains: tuple[str, ...] = ()
    version: int | None = None
    certificate: CertInfo | None = None
    error: CertcliError | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        cert = self.certificate
        return {
            "name": self.name,
            "action": self.action,
            "domains": list(self.domains),
            "version": self.version,
            "reason": self.reason,
            "not_after": rfc3339(cert.not_after) if cert else None,
            "serial": cert.serial if cert else None,
            "fingerprint_sha256": cert.fingerprint_sha256 if cert else None,
            "error": self.error.message if self.error else None,
            "error_kind": getattr(self.error, "kind", "error") if self.error else None,
        }


def _solver(plan: Plan) -> Solver:
    from certcli.solvers.http01 import WebrootSolver

    if not plan.webroot:
        raise UsageError(
            "no way to answer the CA's challenge",
            "give --webroot DIR, the directory your web server serves",
        )
    return WebrootSolver(Path(plan.webroot))


def _attempt(
    store: Store,
    ca: Ca,
    config: LineageConfig,
    plan: Plan,
    solver: Solver,
    progress: Progress,
    *,
    record: bool,
    action: str,
) -> Outcome:
    """One issuance for a lineage: a fresh key, the order, and (when `record`) the new
    version switched live, with each phase written to state.json."""
    from certcli import x509 as x

    name = config.name
    state = store.read_state(name) if record else {}

    def phase(value: str) -> None:
        if record:
            state.update(phase=value, phase_at=rfc3339(datetime.now(UTC)))
            store.write_state(name, state)
        progress(name, value)

    if record:
        state["last_attempt"] = rfc3339(datetime.now(UTC))
    phase("Starting")
    try:
        key = x.generate_private_key(plan.key_type)
        csr_pem = x.make_csr(key, list(config.domains))
        chain = ca.obtain(
            list(config.domains), csr_pem, lambda _identifier: solver, phase, plan.preferred_chain
        )
        info = x.cert_info(x.parse_certificates(chain.cert_pem, "the issued certificate")[0])
        version = None
        if record:
            version = store.add_version(
                name,
                {
                    "cert.pem": chain.cert_pem,
                    "chain.pem": chain.chain_pem,
                    "fullchain.pem": chain.fullchain_pem,
                    "privkey.pem": x.private_key_pem(key),
                },
                {
                    "certificate": info.to_json(),
                    "source": "acme",
                    "server": plan.ca.directory_url,
                    "created": rfc3339(datetime.now(UTC)),
                },
            )
            state.update(last_success=state["last_attempt"], failures=0)
            state.pop("last_error", None)
            state.pop("last_error_kind", None)
        phase("Completed")
        return Outcome(name, action if record else "dry_run", config.domains, version, info)
    except CertcliError as exc:
        if record:
            state.update(
                last_error=exc.message,
                last_error_kind=getattr(exc, "kind", "error"),
                failures=int(state.get("failures", 0)) + 1,
            )
        phase("Failed")
        return Outcome(name, "failed", config.domains, error=exc)


def issue(
    store: Store,
    cas: CaPool,
    name: str,
    domains: list[str],
    options: AcmeOptions,
    config: dict[str, Any],
    progress: Progress,
    *,
    dry_run: bool = False,
    force_renewal: bool = False,
    expand: bool = False,
) -> Outcome:
    """Create (or, with --force-renewal/--expand, re-issue) a lineage and obtain its
    certificate. Usage and connection problems fail before anything is stored; a failed
    order leaves the lineage as Failed for `renew` to retry."""
    validate_lineage_name(name)
    store.ensure()
    plan = make_plan(options, config, None)
    solver = _solver(plan)
    ca = cas.get(plan.ca)
    progress(name, "Pending")
    lineage = LineageConfig(name, tuple(domains), Mode.AUTO, plan.key_type, plan.lineage_extra())
    if dry_run:
        return _attempt(store, ca, lineage, plan, solver, progress, record=False, action="issued")
    with store.lock(name):
        existing = store.read_config(name) if store.exists(name) else None
        _check_existing(store, existing, domains, force_renewal=force_renewal, expand=expand)
        if existing is not None:
            lineage = LineageConfig(
                name, lineage.domains, Mode.AUTO, plan.key_type, {**existing.extra, **lineage.extra}
            )
        store.write_config(lineage)
        return _attempt(store, ca, lineage, plan, solver, progress, record=True, action="issued")


def _check_existing(
    store: Store,
    existing: LineageConfig | None,
    domains: list[str],
    *,
    force_renewal: bool,
    expand: bool,
) -> None:
    if existing is None or store.live_version(existing.name) is None:
        return  # new, or never issued (a failed first attempt): issue freely
    name = existing.name
    if existing.mode is Mode.CUSTOM:
        raise UsageError(
            f"{name!r} holds an uploaded certificate", "choose another --name for an ACME one"
        )
    old, new = set(existing.domains), set(domains)
    if old == new:
        if not force_renewal:
            raise UsageError(
                f"{name!r} already exists for these domains",
                f"renew it now with `certcli renew {name} --force` (or add --force-renewal)",
            )
    elif not expand or not old <= new:
        raise UsageError(
            f"{name!r} already exists for {', '.join(existing.domains)}",
            "add --expand to add domains to it (all current ones included), or choose --name",
        )


def issue_each(
    store: Store,
    cas: CaPool,
    domains: list[str],
    options: AcmeOptions,
    config: dict[str, Any],
    progress: Progress,
    *,
    parallel: int,
    dry_run: bool = False,
) -> list[Outcome]:
    """One lineage per domain, issued concurrently by a bounded pool."""
    from certcli.domains import default_lineage_name

    # Account creation and usage errors happen once, before the pool starts.
    plan = make_plan(options, config, None)
    _solver(plan)
    cas.get(plan.ca)

    def one(domain: str) -> Outcome:
        name = default_lineage_name([domain])
        try:
            return issue(store, cas, name, [domain], options, config, progress, dry_run=dry_run)
        except CertcliError as exc:  # e.g. the name exists or is locked: report it, go on
            progress(name, "Failed")
            return Outcome(name, "failed", (domain,), error=exc)

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, domains))


def renew(
    store: Store,
    cas: CaPool,
    names: list[str],
    config: dict[str, Any],
    progress: Progress,
    *,
    now: datetime,
    force: bool = False,
    dry_run: bool = False,
    parallel: int = 4,
) -> list[Outcome]:
    """Renew every auto lineage that is due (all of them with --force or --dry-run).

    Deciding what is due reads only the store: with nothing due, no request is sent.
    """
    with store.lock_store():
        for name in names:
            validate_lineage_name(name)
            if not store.exists(name):
                raise NotFoundError(
                    f"no certificate named {name!r}", "`certcli status` lists the certificates"
                )
        outcomes: list[Outcome] = []
        due: list[tuple[LineageConfig, str]] = []
        for name in names or store.names():
            lineage = store.read_config(name)
            live = store.live_info(name)
            if lineage.mode is Mode.CUSTOM:
                outcomes.append(_custom_outcome(lineage, live, now))
                continue
            reason = renewal_reason(live, lineage.domains, now, force=force or dry_run)
            if reason is None:
                outcomes.append(Outcome(name, "not_due", lineage.domains, certificate=live))
            else:
                due.append((lineage, reason))

        def one(item: tuple[LineageConfig, str]) -> Outcome:
            lineage, reason = item
            progress(lineage.name, "Pending")
            try:
                plan = make_plan(AcmeOptions(), config, lineage)
                solver = _solver(plan)
                ca = cas.get(plan.ca)
                if dry_run:
                    return _attempt(
                        store, ca, lineage, plan, solver, progress, record=False, action="renewed"
                    )
                with store.lock(lineage.name):
                    outcome = _attempt(
                        store, ca, lineage, plan, solver, progress, record=True, action="renewed"
                    )
            except CertcliError as exc:
                progress(lineage.name, "Failed")
                if not dry_run:
                    _record_failure(store, lineage.name, exc)
                return Outcome(lineage.name, "failed", lineage.domains, error=exc, reason=reason)
            return replace(outcome, reason=reason)

        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            outcomes += list(pool.map(one, due))
    return sorted(outcomes, key=lambda o: o.name)


def _custom_outcome(lineage: LineageConfig, live: CertInfo | None, now: datetime) -> Outcome:
    reason = "uploaded certificate: certcli does not renew it"
    if live is not None and now >= renewal_window_start(live.not_before, live.not_after):
        left = days_left(live.not_after, now)
        reason = (
            f"uploaded certificate expires in {left} days: upload a new one"
            if left >= 0
            else "uploaded certificate has expired: upload a new one"
        )
        return Outcome(
            lineage.name,
            "skipped",
            lineage.domains,
            certificate=live,
            reason=reason,
            extra={"warn": True},
        )
    return Outcome(lineage.name, "skipped", lineage.domains, certificate=live, reason=reason)


def _record_failure(store: Store, name: str, exc: CertcliError) -> None:
    """A failure before the attempt could start (a CA unreachable, a bad setting)."""
    state = store.read_state(name)
    state.update(
        last_attempt=rfc3339(datetime.now(UTC)),
        last_error=exc.message,
        last_error_kind=getattr(exc, "kind", "error"),
        failures=int(state.get("failures", 0)) + 1,
        phase="Failed",
    )
    store.write_state(name, state)
