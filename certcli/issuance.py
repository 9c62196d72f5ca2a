"""Issuance and renewal of ACME lineages: settings, phases in state.json, new versions.

Shared by `issue` and `renew` (and later `san add`); the protocol itself is certcli.engine.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certcli.config import LETSENCRYPT, LETSENCRYPT_STAGING, resolve_server, setting
from certcli.domains import order_identifiers, validate_lineage_name
from certcli.errors import CertcliError, LockedError, StoreError, UsageError
from certcli.hooks import notify, run_hook
from certcli.models import DEFAULT_KEY_TYPE, CertInfo, LineageConfig, Mode, parse_rfc3339, rfc3339
from certcli.renewal import (
    ari_moment,
    days_left,
    deploy_pending,
    expiry_notice,
    next_attempt,
    not_due_until,
    renewal_reason,
    renewal_window_start,
)
from certcli.store import Store, version_files

if TYPE_CHECKING:
    from certcli.dnscheck import Diagnosis
    from certcli.engine import Ca, CaSettings
    from certcli.leftovers import Journal
    from certcli.solvers import Challenge, Solver
    from certcli.solvers.dns01 import DnsSettings

#: Called with (lineage name, phase) as an issuance moves on; "Queued" (never stored)
#: announces each lineage a pool is about to work on, so that a view knows the total.
Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class AcmeOptions:
    """What the command line says; None means "from the environment, lineage or config"."""

    server: str | None = None
    email: str | None = None
    agree_tos: bool = False
    eab_kid: str | None = None
    eab_hmac_key: str | None = field(default=None, repr=False)  # a secret: never shown
    ca_bundle: str | None = None
    key_type: str | None = None
    webroot: str | None = None
    preferred_chain: str | None = None
    challenge: str | None = None  # "http-01" or "dns-01"; else the lineage's, else by webroot
    deploy_hook: str | None = None  # kept in lineage.toml as hooks.deploy
    profile: str | None = None  # an ACME profile the CA offers; kept for renewals


@dataclass(frozen=True)
class Plan:
    """Everything one issuance needs, resolved."""

    ca: CaSettings
    key_type: str
    webroot: str | None
    preferred_chain: str | None
    challenge: str = "http-01"
    dns: DnsSettings | None = None
    deploy_hook: str | None = None
    profile: str | None = None

    def lineage_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"server": self.ca.directory_url, "challenge": self.challenge}
        if self.dns is not None:
            extra["dns"] = {"target": self.dns.target}
        if self.deploy_hook:
            extra["hooks"] = {"deploy": self.deploy_hook}
        if self.profile:
            extra["profile"] = self.profile
        for key, value in (
            ("webroot", self.webroot),
            ("preferred_chain", self.preferred_chain),
            ("ca_bundle", self.ca.ca_bundle),
        ):
            if value:
                extra[key] = value
        return extra


def _settings(
    config: dict[str, Any], lineage: LineageConfig | None
) -> tuple[Callable[..., Any], Callable[[str, float], float]]:
    """Getters for (key, flag value, default) and for a number of seconds."""
    table = lineage.to_toml() if lineage else None

    def get(key: str, cli: Any = None, default: Any = None) -> Any:
        return setting(key, cli, config, default, table)

    def seconds(key: str, default: float) -> float:
        return float(get(key, None, default))  # checked by its kind, or the default

    return get, seconds


def ca_settings(
    options: AcmeOptions, config: dict[str, Any], lineage: LineageConfig | None = None
) -> CaSettings:
    from certcli.engine import CaSettings

    get, seconds = _settings(config, lineage)
    return CaSettings(
        directory_url=resolve_server(get("server", options.server, LETSENCRYPT)),
        email=get("email", options.email),
        agree_tos=options.agree_tos,
        eab_kid=options.eab_kid,
        eab_hmac_key=options.eab_hmac_key,
        ca_bundle=get("ca_bundle", options.ca_bundle),
        timeout=seconds("acme.timeout", 300),
        network_timeout=seconds("acme.network_timeout", 30),
    )


def rehearsal(store: Store, plan: Plan) -> Plan:
    """The plan of a dry run: at Let's Encrypt, its staging CA (as certbot's dry run does),
    so that rehearsals never count against production's rate limits (five duplicate
    certificates a week would block the real renewal). Whoever has an account at production
    has accepted the terms that staging shares."""
    from certcli.accounts import load_account

    if plan.ca.directory_url != LETSENCRYPT:
        return plan
    agreed = plan.ca.agree_tos or load_account(store, LETSENCRYPT) is not None
    staging = replace(plan.ca, directory_url=LETSENCRYPT_STAGING, agree_tos=agreed)
    return replace(plan, ca=staging)


def make_plan(
    options: AcmeOptions,
    config: dict[str, Any],
    lineage: LineageConfig | None,
    root: Path | None = None,
) -> Plan:
    """Resolve every setting of one issuance; `root` (the store) holds the installation id
    that names the default delegation target."""
    get, seconds = _settings(config, lineage)
    ca = ca_settings(options, config, lineage)
    webroot = get("webroot", options.webroot)
    challenge = _challenge_of(get, options)
    if challenge not in ("http-01", "dns-01"):
        raise UsageError(
            "no way to answer the CA's challenge",
            "give --webroot DIR (HTTP-01) or --dns (DNS-01 by CNAME delegation)",
        )
    dns = None
    if challenge == "dns-01":
        from certcli.dnscheck import parse_servers
        from certcli.solvers.dns01 import DnsSettings

        dns = DnsSettings(
            provider=str(get("dns.provider", None, "rfc2136")),
            target=_delegation_target(get, root),
            resolvers=parse_servers(get("dns.resolvers", None)),
            propagation_timeout=seconds("dns.propagation_timeout", 120),
            query_timeout=seconds("dns.query_timeout", 5),
            authoritative=parse_servers(get("dns.authoritative", None)),
            zone=get("dns.rfc2136.zone", None) or get("dns.zone", None),
            rfc2136={k: get(f"dns.rfc2136.{k}", None) for k in _RFC2136_KEYS},
            hook={k: get(f"dns.hook.{k}", None) for k in ("auth", "cleanup", "timeout")},
        )
    plan = Plan(
        ca=ca,
        key_type=get("key_type", options.key_type, DEFAULT_KEY_TYPE),
        webroot=webroot,
        preferred_chain=get("preferred_chain", options.preferred_chain),
        challenge=challenge,
        dns=dns,
        deploy_hook=options.deploy_hook,
        profile=get("profile", options.profile),
    )
    if lineage is not None:
        check_challenge(lineage.domains, challenge, lineage.name)
    return plan


def _challenge_of(get: Callable[..., Any], options: AcmeOptions) -> str | None:
    """The challenge type asked for: the option, else the setting, else HTTP-01 when there
    is a webroot."""
    webroot = get("webroot", options.webroot)
    return options.challenge or get("challenge", None, "http-01" if webroot else None)


def check_challenge(
    domains: list[str] | tuple[str, ...], challenge: str | None, name: str | None = None
) -> None:
    """A wildcard can only be validated over DNS-01, an IP address only over HTTP-01: an
    order that mixes them the other way is refused before it is placed."""
    from certcli.domains import is_ip

    answers = f"{name!r} answers" if name else "this order answers"
    wildcard = next((d for d in domains if d.startswith("*.")), None)
    if wildcard is not None and challenge != "dns-01":
        raise UsageError(
            f"{wildcard} needs DNS-01, and {answers} HTTP-01 (--webroot)",
            "use --dns or --wildcard (DNS-01 through the CNAME delegation) instead"
            + (f"; `certcli issue ... --name {name} --dns --expand` moves it" if name else ""),
        )
    address = next((d for d in domains if is_ip(d)), None)
    if address is not None and challenge == "dns-01":
        raise UsageError(
            f"{address} is an IP address: it needs HTTP-01, and {answers} DNS-01 (--dns)",
            "use --webroot DIR for IP addresses, in a lineage of their own",
        )


_RFC2136_KEYS = ("server", "tsig_name", "tsig_secret", "tsig_algorithm")


def _delegation_target(get: Callable[..., Any], root: Path | None) -> str:
    """`[dns] target`, else one name per installation under `[dns] zone`."""
    from certcli.domains import normalize_dns_name

    target = get("dns.target", None)
    if target:
        return normalize_dns_name(str(target))
    zone = get("dns.zone", None) or get("dns.rfc2136.zone", None)
    if not zone or root is None:
        raise UsageError(
            "DNS-01 needs a delegation target",
            "set [dns] target (the name every _acme-challenge CNAMEs to) or [dns] zone",
        )
    return f"{installation_id(root)}.{normalize_dns_name(str(zone))}"


def installation_id(root: Path) -> str:
    """A random name made once per store, so two installations never share a target."""
    import secrets

    from certcli.store import atomic_write, make_dirs

    path = root / "installation-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        make_dirs(root)
        atomic_write(path, f"certcli-{secrets.token_hex(5)}\n".encode())
        return path.read_text().strip()


class Session:
    """What one run shares: the store, how to ask the person at the terminal (if any),
    and one engine connection per CA, made on first use (so a renew with nothing due sends
    nothing) and shared by the run's threads."""

    def __init__(
        self,
        store: Store,
        *,
        interactive: bool,
        accept_tos: Callable[[str], bool],
        pause: Callable[[str], None],
    ) -> None:
        self.store = store
        self.interactive = interactive
        self.accept_tos = accept_tos
        self.pause = pause  # shows a message and waits for Enter (manual DNS)
        self._cas: dict[CaSettings, Ca] = {}
        self._lock = threading.Lock()

    def get(self, settings: CaSettings) -> Ca:
        from certcli.engine import Ca

        with self._lock:
            if settings not in self._cas:
                self._cas[settings] = Ca(self.store, settings, self.accept_tos)
            ca = self._cas[settings]
        ca.connect()  # outside the lock: a slow CA holds up only the threads that use it
        return ca


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
    problems: tuple[str, ...] = ()  # e.g. a deploy hook that failed after a renewal
    deploy_error: str | None = None  # the deploy hook of this outcome's version failed
    notes: tuple[str, ...] = ()  # what renew repaired on the way (a broken `live`)

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
            "sans": [d.to_json() for d in getattr(self.error, "diagnoses", ())],
            "problems": list(self.problems),
            "deploy_error": self.deploy_error,
            "notes": list(self.notes),
        }


def _solver(plan: Plan, session: Session, store: Store) -> Solver:
    if plan.dns is not None:
        from certcli.solvers.dns01 import DelegationSolver, make_provider

        provider = make_provider(plan.dns, session.interactive, session.pause)
        return DelegationSolver(plan.dns, provider, _leftovers(store, "dns-01"))
    from certcli.solvers.http01 import WebrootSolver

    if not plan.webroot:
        raise UsageError(
            "no webroot for HTTP-01", "give --webroot DIR, the directory your web server serves"
        )
    return WebrootSolver(Path(plan.webroot), _leftovers(store, "http-01"))


def _leftovers(store: Store, kind: str) -> Journal:
    """The store's journal of what a run of this challenge creates outside the store."""
    from certcli.leftovers import Journal

    return Journal(store.root / "leftovers", kind)


def _sweep_webroots(store: Store) -> None:
    """Token files a killed run left in a webroot go at the start of the next run."""
    from certcli.solvers.http01 import sweep

    sweep(_leftovers(store, "http-01"))


def check_dns(domains: tuple[str, ...] | list[str], dns: DnsSettings) -> list[Diagnosis]:
    """The CNAME Check: diagnose every SAN; raise DnsNotReadyError unless all are Valid."""
    from certcli.dnscheck import DnsStatus, diagnose
    from certcli.errors import DnsNotReadyError

    diagnoses = diagnose(list(domains), dns.target, dns.resolvers, dns.query_timeout)
    bad = [d for d in diagnoses if d.status is not DnsStatus.VALID]
    if bad:
        raise DnsNotReadyError(
            "DNS is not ready for " + ", ".join(f"{d.san} ({d.status.value})" for d in bad),
            dns_next_step(bad),
            diagnoses=tuple(diagnoses),
        )
    return diagnoses


def dns_next_step(bad: list[Diagnosis]) -> str:
    """What to do about the SANs whose delegation is not Valid: the CNAME to create (when
    there is one), the TXT records to remove, the resolvers to check."""
    from certcli.dnscheck import DnsStatus

    fixed_by_cname = (DnsStatus.MISSING, DnsStatus.WRONG)
    records = list(dict.fromkeys(d.record for d in bad if d.status in fixed_by_cname))
    steps = []
    if len(records) == 1:
        steps.append(f"create the record {records[0]}")
    elif records:
        steps.append(f"create the {len(records)} CNAME records `certcli dns check` lists")
    if any(d.status is DnsStatus.DUPLICATE for d in bad):
        steps.append("remove the TXT records found at the challenge names")
    if any(d.status is DnsStatus.ERROR for d in bad):
        steps.append("check that [dns] resolvers answer")
    return ", ".join(steps) + ", then `certcli renew` issues it"


def _check_dns_into(state: dict[str, Any], identifiers: list[str], dns: DnsSettings) -> None:
    """The CNAME Check, its result kept in `state` (the SAN DNS cache) whether or not all
    SANs are Valid; raises DnsNotReadyError as check_dns does."""
    from certcli.errors import DnsNotReadyError

    try:
        diagnoses = check_dns(identifiers, dns)
    except DnsNotReadyError as exc:
        state["dns"] = dns_cache(exc.diagnoses, dns.target)
        raise
    state["dns"] = dns_cache(diagnoses, dns.target)


def dns_cache(diagnoses: tuple[Diagnosis, ...] | list[Diagnosis], target: str) -> dict[str, Any]:
    """The SAN DNS cache kept in state.json, which `status` shows without asking DNS."""
    return {
        "checked_at": rfc3339(datetime.now(UTC)),
        "target": target,
        "sans": {d.san: {"status": d.status.value, "found": d.found} for d in diagnoses},
    }


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
    replaces: str | None = None,
    settle: LineageConfig | None = None,
) -> Outcome:
    """One issuance for a lineage: a fresh key, the order, and (when `record`) the new
    version switched live, with each phase written to state.json. `settle`, the lineage's
    new settings, is written only once the CA has issued for them."""
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
    identifiers = order_identifiers(config.domains)
    try:
        if plan.dns is not None:
            phase("CNAME Check")
            _check_dns_into(state, identifiers, plan.dns)
        solver.check()  # e.g. the TSIG key is accepted: before any order
        key = x.generate_private_key(plan.key_type)
        csr_pem = x.make_csr(key, identifiers)
        shown = _WaitShown(solver, phase)
        chain = ca.obtain(
            identifiers,
            csr_pem,
            lambda _identifier: shown,
            phase,
            plan.preferred_chain,
            profile=plan.profile,
            replaces=replaces,
        )
        cert = x.parse_certificates(chain.cert_pem, "the issued certificate")[0]
        info = x.cert_info(cert)
        version = None
        if record:
            # `settle`, proven by this issuance, is written before the switch, and restored
            # if the switch fails: the outcome reported is the one stored
            version = store.add_version(
                name,
                version_files(chain.cert_pem, chain.chain_pem, x.private_key_pem(key)),
                {
                    "certificate": info.to_json(),
                    "source": "acme",
                    "server": plan.ca.directory_url,
                    "created": rfc3339(datetime.now(UTC)),
                },
                settle,
            )
            state.update(last_success=state["last_attempt"], failures=0)
            for stale in ("last_error", "last_error_kind", "next_attempt", "revoked", "ari"):
                state.pop(stale, None)
            if ca.renewal_info_url:
                cert_id = x.ari_cert_id(cert)
                if cert_id:
                    state["ari"] = refresh_ari(
                        {"url": f"{ca.renewal_info_url.rstrip('/')}/{cert_id}", "id": cert_id},
                        plan.ca,
                    )
        try:
            phase("Completed")
        except StoreError:  # live has switched already: the new certificate stands
            progress(name, "Completed")
        return Outcome(name, action if record else "dry_run", config.domains, version, info)
    except CertcliError as exc:
        _add_next_step(exc, plan)
        if record:
            _failed(state, exc)
        try:
            phase("Failed")
        except StoreError:  # a full disk, say: the failure is still reported
            progress(name, "Failed")
        return Outcome(name, "failed", config.domains, error=exc)


class _WaitShown:
    """A solver whose wait for DNS propagation is a phase of its own ("Waiting for DNS"),
    so that a slow name server shows as such rather than as a slow CA."""

    def __init__(self, solver: Solver, phase: Callable[[str], None]) -> None:
        self._solver = solver
        self._phase = phase
        self.challenge_type = solver.challenge_type

    def check(self) -> None:
        self._solver.check()

    def present(self, challenges: list[Challenge]) -> None:
        self._solver.present(challenges)

    def wait(self, challenges: list[Challenge]) -> None:
        if self.challenge_type != "dns-01":
            self._solver.wait(challenges)
            return
        self._phase("Waiting for DNS")
        self._solver.wait(challenges)
        self._phase("Validating")

    def cleanup(self, challenges: list[Challenge]) -> None:
        self._solver.cleanup(challenges)


def _add_next_step(exc: CertcliError, plan: Plan) -> None:
    """A failed validation says what to check: the web server behind the webroot, or the
    delegation as a resolver sees it."""
    from certcli.errors import ValidationFailedError

    if not isinstance(exc, ValidationFailedError):
        return
    if plan.challenge == "http-01" and plan.webroot:
        exc.hint = (
            f"check that the web server serves {plan.webroot} as http://DOMAIN/ "
            "(the CA fetches /.well-known/acme-challenge/ on port 80)"
        )
    elif plan.challenge == "dns-01":
        exc.hint = "`certcli dns check DOMAIN` shows what a resolver finds, and what to fix"


def issue(
    store: Store,
    session: Session,
    name: str,
    domains: list[str],
    options: AcmeOptions,
    config: dict[str, Any],
    progress: Progress,
    *,
    dry_run: bool = False,
    force_renewal: bool = False,
    expand: bool = False,
    confirm: Callable[[str], bool] | None = None,
) -> Outcome:
    """Create (or, with --force-renewal/--expand, re-issue) a lineage and obtain its
    certificate. Usage and connection problems fail before anything is stored; a failed
    order leaves the lineage as Failed for `renew` to retry."""
    validate_lineage_name(name)
    plan = make_plan(options, config, None, store.root)
    check_challenge(domains, plan.challenge)
    solver = _solver(plan, session, store)
    store.ensure()
    _sweep_webroots(store)
    if dry_run:
        plan = rehearsal(store, plan)
    else:
        store.check_key_protection()
    ca = session.get(plan.ca)
    _check_profile(ca, plan)
    progress(name, "Pending")
    lineage = LineageConfig(name, tuple(domains), Mode.AUTO, plan.key_type, plan.lineage_extra())
    if dry_run:
        return _attempt(store, ca, lineage, plan, solver, progress, record=False, action="issued")
    with store.lock(name):
        existing = store.read_config(name) if store.exists(name) else None
        _check_existing(
            store, existing, domains, force_renewal=force_renewal, expand=expand, confirm=confirm
        )
        if existing is not None:
            lineage = LineageConfig(
                name, lineage.domains, Mode.AUTO, plan.key_type, {**existing.extra, **lineage.extra}
            )
        # A lineage with a certificate keeps its settings until the CA has issued for the
        # new ones; a new lineage is stored at once, so that `renew` retries a failed order.
        reissue = existing is not None and store.live_version(name) is not None
        if not reissue:
            store.write_config(lineage)
        outcome = _attempt(
            store,
            ca,
            lineage,
            plan,
            solver,
            progress,
            record=True,
            action="issued",
            settle=lineage if reissue else None,
        )
    return _deployed(store, config, lineage, outcome)


def _check_profile(ca: Ca, plan: Plan) -> None:
    if not plan.profile or plan.profile in ca.profiles:
        return
    ca.refresh_directory(ca.directory)  # a kept copy may predate the profile
    if plan.profile not in ca.profiles:
        offered = ", ".join(sorted(ca.profiles)) or "none"
        raise UsageError(f"the CA offers no profile {plan.profile!r}", f"its profiles: {offered}")


def _check_existing(
    store: Store,
    existing: LineageConfig | None,
    domains: list[str],
    *,
    force_renewal: bool,
    expand: bool,
    confirm: Callable[[str], bool] | None = None,
) -> None:
    """The rules for issuing into an existing lineage. An uploaded one (or one whose CSR
    waits for its certificate) becomes an ACME lineage only once `confirm` says yes."""
    if existing is None:
        return
    name = existing.name
    live = store.live_version(name)
    if existing.mode is Mode.CUSTOM and (live is not None or store.has_pending(name)):
        from certcli.errors import NotConfirmedError

        if live is not None and not force_renewal:
            raise UsageError(
                f"{name!r} holds an uploaded certificate",
                "add --force-renewal to switch it to ACME (then certcli renews it), "
                "or choose another --name",
            )
        held = "holds an uploaded certificate" if live is not None else "has a CSR waiting"
        question = f"{name!r} {held}. Switch it to ACME, so that certcli issues and renews it?"
        if confirm is None or not confirm(question):  # without a terminal: not confirmed
            raise NotConfirmedError(
                f"{name!r} {held} and was not switched to ACME",
                "confirm at a terminal, or add --yes",
            )
    if live is None:
        return  # new, or never issued (a failed first attempt): issue freely
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
    session: Session,
    groups: list[list[str]],
    options: AcmeOptions,
    config: dict[str, Any],
    progress: Progress,
    *,
    parallel: int,
    dry_run: bool = False,
) -> list[Outcome]:
    """One lineage per group of domains (a domain, or a domain and its wildcard), issued
    concurrently by a bounded pool."""
    from certcli.domains import default_lineage_name

    # Account creation and usage errors happen once, before the pool starts.
    plan = make_plan(options, config, None, store.root)
    for group in groups:
        check_challenge(group, plan.challenge)
    _solver(plan, session, store)
    session.get(rehearsal(store, plan).ca if dry_run else plan.ca)

    def one(domains: list[str]) -> Outcome:
        name = default_lineage_name(domains)
        try:
            return issue(store, session, name, domains, options, config, progress, dry_run=dry_run)
        except CertcliError as exc:  # e.g. the name exists or is locked: report it, go on
            progress(name, "Failed")
            return Outcome(name, "failed", tuple(domains), error=exc)

    from concurrent.futures import ThreadPoolExecutor

    for domains in groups:  # the progress view learns the total before the pool starts
        progress(default_lineage_name(domains), "Queued")
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, groups))


@dataclass(frozen=True)
class RenewRun:
    outcomes: list[Outcome]
    problems: list[str]  # pre/post hooks and notifications that failed

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(o.action == "failed" or o.problems for o in self.outcomes)


def renew(
    store: Store,
    session: Session,
    names: list[str],
    config: dict[str, Any],
    progress: Progress,
    *,
    now: datetime,
    force: bool = False,
    dry_run: bool = False,
    parallel: int = 4,
    jitter: float = 0.0,
) -> RenewRun:
    """Renew every auto lineage that is due (all of them with --force or --dry-run), with
    the hooks and notifications of config.toml.

    Deciding what is due reads only the store: with nothing due, no request is sent, no hook
    runs and there is no jitter. A lineage that failed waits out its backoff (not with
    --force). A second run while one holds the store lock raises LockedError at once.
    """
    for name in names:
        validate_lineage_name(name)  # before any file is touched, the lock's included
    with store.lock_store(wait=0):
        for name in names:
            store.require(name)
        _sweep_webroots(store)
        outcomes: list[Outcome] = []
        redeploys: list[Outcome] = []  # not due, but the live version's deploy hook failed
        due: list[tuple[LineageConfig, str]] = []
        replaces: dict[str, str | None] = {}  # the certificate each renewal replaces (ARI)
        # What an earlier run found not due, and until when: a lineage whose files have not
        # changed since is not read again.
        index = {} if force or dry_run else store.read_renew_index()
        kept = dict(index) if names else {}
        stamp_now = now.timestamp()
        healed: dict[str, tuple[str, ...]] = {}
        for name in names or store.names():
            stamp = store.lineage_stamp(name)
            known = _not_due_by_index(index.get(name), name, stamp, stamp_now)
            if known is not None:
                outcomes.append(known)
                kept[name] = index[name]
                continue
            kept.pop(name, None)
            try:
                # a dry run stores nothing, repairs included
                healed[name], whole = ((), True) if dry_run else _heal(store, name)
                item = _scan(
                    store,
                    name,
                    config,
                    now,
                    force=force or dry_run,
                    whole=whole,
                    asked=bool(names) or force or dry_run,
                )
            except (CertcliError, KeyError, TypeError, ValueError) as exc:
                # One damaged lineage is reported; the others are still renewed.
                error = (
                    exc
                    if isinstance(exc, CertcliError)
                    else StoreError(
                        f"cannot read the lineage {name!r}: {type(exc).__name__}: {exc}"
                    )
                )
                outcomes.append(Outcome(name, "failed", error=error))
                continue
            if isinstance(item, Outcome) and item.action == "deployed":
                redeploys.append(item)
            elif isinstance(item, Outcome):
                outcomes.append(item)
                if "until" in item.extra and item.certificate is not None:
                    kept[name] = {
                        "stamp": stamp,  # taken before reading: a change meanwhile shows
                        "until": item.extra["until"].timestamp(),
                        "domains": list(item.domains),
                        "certificate": item.certificate.to_json(),
                    }
            else:
                due.append(item[:2])
                replaces[name] = item[2]

        if not (force or dry_run) and kept != index:
            store.write_renew_index(kept)

        # Only the deploy hook runs again: no order, so no pre or post hook.
        outcomes += [_deployed(store, config, o.extra["lineage"], o) for o in redeploys]
        hooks = config.get("hooks") or {}
        problems: list[str] = []
        if due and not dry_run:
            store.check_key_protection()  # no certificate is ordered that could not be stored
        if due and jitter > 0 and not (force or dry_run):
            time.sleep(random.uniform(0, jitter))  # spread a fleet's runs over the CA's day
        if due and not dry_run and hooks.get("pre"):
            problems += filter(
                None, [run_hook("pre", str(hooks["pre"]), {}, _hook_timeout(config))]
            )

        def one(item: tuple[LineageConfig, str]) -> Outcome:
            lineage, reason = item
            progress(lineage.name, "Pending")
            try:
                plan = make_plan(AcmeOptions(), config, lineage, store.root)
                solver = _solver(plan, session, store)
                if dry_run:
                    plan = rehearsal(store, plan)
                ca = session.get(plan.ca)
                if dry_run:
                    return _attempt(
                        store, ca, lineage, plan, solver, progress, record=False, action="renewed"
                    )
                with store.lock(lineage.name):
                    outcome = _attempt(
                        store,
                        ca,
                        lineage,
                        plan,
                        solver,
                        progress,
                        record=True,
                        action="renewed",
                        replaces=replaces.get(lineage.name),
                    )
            except LockedError as exc:  # an issue or upload at work: its state is its own
                progress(lineage.name, "Failed")
                return Outcome(lineage.name, "failed", lineage.domains, error=exc, reason=reason)
            except Exception as exc:  # one lineage's trouble must not stop the run
                error = (
                    exc
                    if isinstance(exc, CertcliError)
                    else CertcliError(
                        f"unexpected {type(exc).__name__}: {exc}", "run with -v and report it"
                    )
                )
                progress(lineage.name, "Failed")
                if not dry_run:
                    _record_failure(store, lineage.name, error)
                return Outcome(lineage.name, "failed", lineage.domains, error=error, reason=reason)
            return replace(_deployed(store, config, lineage, outcome), reason=reason)

        try:
            if due:
                from concurrent.futures import ThreadPoolExecutor

                for lineage, _ in due:  # the progress view learns the total first
                    progress(lineage.name, "Queued")
                with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
                    outcomes += list(pool.map(one, due))
        finally:  # the post hook undoes the pre hook, whatever happened
            outcomes.sort(key=lambda o: o.name)
            if due and not dry_run and hooks.get("post"):
                failed = " ".join(d for o in outcomes if o.action == "failed" for d in o.domains)
                renewed = " ".join(d for o in outcomes if o.action == "renewed" for d in o.domains)
                env = {"FAILED_DOMAINS": failed, "RENEWED_DOMAINS": renewed}
                problem = run_hook("post", str(hooks["post"]), env, _hook_timeout(config))
                problems += filter(None, [problem])
            outcomes = [
                replace(o, notes=o.notes + healed[o.name]) if healed.get(o.name) else o
                for o in outcomes
            ]
        if not dry_run:
            problems += _notify(store, config, outcomes)
    return RenewRun(outcomes, problems)


def _heal(store: Store, name: str) -> tuple[tuple[str, ...], bool]:
    """Repair a broken `live` under the lineage's lock: what was done, and whether `live`
    is whole (else only a new version can replace it)."""
    if not store.live_broken(name):
        return (), True
    with store.lock(name):
        healed = store.heal_live(name)
    return ((), True) if healed is None else ((healed[0],), healed[1])


def _not_due_by_index(entry: Any, name: str, stamp: list[Any], now: float) -> Outcome | None:
    """The index's word on a lineage, if its stamp still holds and its time has not come."""
    if not isinstance(entry, dict) or entry.get("stamp") != stamp:
        return None
    try:
        if now >= entry["until"]:
            return None
        certificate = CertInfo.from_json(entry["certificate"])
        return Outcome(name, "not_due", tuple(entry["domains"]), certificate=certificate)
    except (KeyError, TypeError, ValueError):
        return None


def _scan(
    store: Store,
    name: str,
    config: dict[str, Any],
    now: datetime,
    *,
    force: bool,
    whole: bool = True,
    asked: bool = False,
) -> Outcome | tuple[LineageConfig, str, str | None]:
    """What `renew` does with one lineage: an outcome already (custom, not due, in backoff,
    deploy only), or (lineage, why it is due, the certificate ID it replaces). When `live` is
    not `whole` (broken, nothing to restore) an ACME lineage is issued anew. `asked`: the
    lineage was named or forced, so a custom one says why it is not renewed."""
    lineage = store.read_config(name)
    state = store.read_state(name)
    if not whole and lineage.mode is Mode.CUSTOM:
        raise StoreError(
            f"the live version of {name!r} is damaged and no complete version is left",
            f"upload a certificate with `certcli upload {name}`",
        )
    version, live = store.live(name) if whole else (None, None)
    if lineage.mode is Mode.CUSTOM:
        days = (_notice(state, NOTICE_KEY, live) or {}).get("days")
        return _custom_outcome(
            lineage,
            live,
            now,
            days if isinstance(days, int) else None,
            asked=asked,
            mismatch_notified=_notice(state, MISMATCH_KEY, live) is not None,
        )
    ari, ask_again = (
        (None, None) if live is None else _ari_window(store, name, state, config, lineage, now)
    )
    reason = renewal_reason(
        live,
        lineage.domains,
        now,
        force=force,
        revoked_serial=(state.get("revoked") or {}).get("serial"),
        ari=ari,
    )
    waiting = state.get("next_attempt")
    backoff = bool(reason is not None and waiting and not force and parse_rfc3339(waiting) > now)
    if (reason is None or backoff) and deploy_pending(state, version):
        # the certificate is fine, the server may not have it: run the deploy hook again
        return Outcome(
            name,
            "deployed",
            lineage.domains,
            version,
            live,
            reason="the last deploy hook failed",
            extra={"lineage": lineage},
        )
    if reason is None:
        assert live is not None  # a lineage without a certificate is always due
        until = min(filter(None, (not_due_until(live, ari), ask_again)))
        return Outcome(name, "not_due", lineage.domains, certificate=live, extra={"until": until})
    if backoff:
        # said even without -v when it matters: no certificate, or one expired or expiring
        urgent = live is None or now >= renewal_window_start(live.not_before, live.not_after)
        return Outcome(
            name,
            "backoff",
            lineage.domains,
            certificate=live,
            reason=f"next attempt at {waiting}",
            extra={"urgent": reason, "last_error": state.get("last_error")} if urgent else {},
        )
    return lineage, reason, (state.get("ari") or {}).get("id")


def refresh_ari(ari: dict[str, Any], settings: CaSettings) -> dict[str, Any]:
    """Fetch a certificate's renewal window and pick (once per window) a random moment in
    it. A CA that does not answer leaves the previous window, asked again in an hour."""
    from certcli.engine import fetch_renewal_window

    now = datetime.now(UTC)
    try:
        window = fetch_renewal_window(ari["url"], settings)
    except CertcliError:
        return {**ari, "next_check": rfc3339(now + timedelta(hours=1))}
    start, end = rfc3339(window.start), rfc3339(window.end)
    same = (ari.get("start"), ari.get("end")) == (start, end) and "fraction" in ari
    return {
        **ari,
        "start": start,
        "end": end,
        "fraction": ari["fraction"] if same else random.random(),
        "next_check": rfc3339(now + timedelta(seconds=window.retry_after)),
    }


def _ari_window(
    store: Store,
    name: str,
    state: dict[str, Any],
    config: dict[str, Any],
    lineage: LineageConfig,
    now: datetime,
) -> tuple[tuple[datetime, datetime] | None, datetime | None]:
    """The (chosen moment, window end) of a lineage whose CA offers ARI, asking the CA
    again only once the last answer's Retry-After has passed; and when that will be."""
    ari = state.get("ari")
    if not ari or "url" not in ari:
        return None, None
    if "start" not in ari or now >= parse_rfc3339(ari["next_check"]):
        ari = refresh_ari(ari, ca_settings(AcmeOptions(), config, lineage))
        with contextlib.suppress(LockedError), store.lock(name):  # else: next run keeps it
            fresh = store.read_state(name)
            fresh["ari"] = ari
            store.write_state(name, fresh)
    ask_again = parse_rfc3339(ari["next_check"])
    if "start" not in ari:
        return None, ask_again
    start, end = parse_rfc3339(ari["start"]), parse_rfc3339(ari["end"])
    return (ari_moment(start, end, float(ari["fraction"])), end), ask_again


def _deployed(
    store: Store, config: dict[str, Any], lineage: LineageConfig, outcome: Outcome
) -> Outcome:
    """The outcome, with the deploy hook run when it stored a new version (or, for a
    `deployed` outcome, when the live version's last deploy failed). A failure is an event:
    recorded in state.json (so status shows it and the next renew runs the hook again) and
    notified; a success clears that record."""
    if outcome.version is None:
        return outcome
    error = deploy(store, config, lineage)
    _record_deploy(store, lineage.name, outcome.version, error)
    if error is None:
        return outcome
    problems = (*outcome.problems, f"{lineage.name}: {error}")
    outcome = replace(outcome, problems=problems, deploy_error=error)
    text = f"certcli: deploying {lineage.name} (version {outcome.version}) failed: {error}"
    sent = notify_event(config, outcome, "deploy_failed", text)
    return replace(outcome, problems=outcome.problems + tuple(sent))


def deploy(store: Store, config: dict[str, Any], lineage: LineageConfig) -> str | None:
    """Run the lineage's deploy hook (its own, else config.toml's) after a new version;
    return what went wrong, or None (also when there is no hook)."""
    command = setting("hooks.deploy", None, config, None, lineage.to_toml())
    if not command:
        return None
    live = str(store.lineage_dir(lineage.name) / "live")
    domains = " ".join(lineage.domains)
    env = {
        "CERTCLI_NAME": lineage.name,
        "CERTCLI_LIVE_DIR": live,
        "CERTCLI_DOMAINS": domains,
        "RENEWED_LINEAGE": live,  # certbot's names, so its deploy hooks work unchanged
        "RENEWED_DOMAINS": domains,
    }
    return run_hook("deploy", str(command), env, _hook_timeout(config, lineage))


def _record_deploy(store: Store, name: str, version: int, error: str | None) -> None:
    """Keep (or clear) `deploy_failed` in state.json; best effort, as the run reports the
    failure anyway."""
    with contextlib.suppress(LockedError, StoreError), store.lock(name):
        state = store.read_state(name)
        if error is not None:
            at = rfc3339(datetime.now(UTC))
            state["deploy_failed"] = {"version": version, "at": at, "error": error}
        elif state.pop("deploy_failed", None) is None:
            return
        store.write_state(name, state)


def _hook_timeout(config: dict[str, Any], lineage: LineageConfig | None = None) -> float:
    table = lineage.to_toml() if lineage else None
    return float(setting("hooks.timeout", None, config, 300, table))


def notify_event(config: dict[str, Any], outcome: Outcome, kind: str, text: str) -> list[str]:
    """Send one event about an outcome to `[notify]` (if set); what failed in sending it."""
    settings = config.get("notify") or {}
    if not (settings.get("command") or settings.get("webhook")):
        return []
    return notify(settings, {**outcome.to_json(), "event": kind, "text": text})


def _notify(store: Store, config: dict[str, Any], outcomes: list[Outcome]) -> list[str]:
    """The events of a renew run (a deploy hook that failed is notified where it ran)."""
    on_success = (config.get("notify") or {}).get("on_success")
    problems: list[str] = []
    for o in outcomes:
        if o.action == "failed" and o.error is not None:
            text = f"certcli: renewing {o.name} failed: {o.error.message}"
            kind = "renewal_failed"
        elif o.action == "skipped" and "notice" in o.extra:
            text, kind = f"certcli: {o.name}: {o.reason}", o.extra["event"]
        elif o.action == "renewed" and on_success:
            text, kind = f"certcli: renewed {o.name} (version {o.version})", "renewed"
        else:
            continue
        sent = notify_event(config, o, kind, text)
        if "notice" in o.extra and not sent:
            _remember_notice(store, o.name, *o.extra["notice"])
        problems += sent
    return problems


#: state.json's records of the notices sent about an uploaded certificate: the last expiry
#: threshold, and that it misses some of the lineage's domains.
NOTICE_KEY = "expiry_notice"
MISMATCH_KEY = "mismatch_notice"


def _remember_notice(store: Store, name: str, key: str, notice: dict[str, Any]) -> None:
    """Best effort: without it the same notice is sent again at the next run."""
    with contextlib.suppress(LockedError, StoreError), store.lock(name):
        state = store.read_state(name)
        state[key] = notice
        store.write_state(name, state)


def _notice(state: dict[str, Any], key: str, live: CertInfo | None) -> dict[str, Any] | None:
    """The notice recorded under `key` about the live certificate (None: none about it)."""
    notice = state.get(key)
    if live is None or not isinstance(notice, dict) or notice.get("serial") != live.serial:
        return None
    return notice


def _sent(live: CertInfo, **more: Any) -> dict[str, Any]:
    """The record of a notice about the live certificate, kept once it is sent."""
    return {"serial": live.serial, **more}


def custom_next_step(lineage: LineageConfig) -> str:
    """What renews an uploaded lineage: a new upload, or a switch to ACME."""
    return (
        f"upload a certificate that covers {', '.join(lineage.domains)} "
        f"(`certcli csr {lineage.name}` makes a key and CSR for one), or switch it to ACME "
        f"with `certcli issue {lineage.name} --force-renewal`"
    )


def _custom_outcome(
    lineage: LineageConfig,
    live: CertInfo | None,
    now: datetime,
    notified: int | None = None,
    *,
    asked: bool = False,
    mismatch_notified: bool = False,
) -> Outcome:
    """An uploaded lineage is never renewed: inside its renewal window it is warned about,
    and notified once per threshold of days left (renewal.expiry_notice); a certificate that
    misses some of its domains is warned about, and notified once; `asked` (named or
    forced) it says so, and what would renew it."""
    from certcli.domains import uncovered

    reason = "uploaded certificate: certcli does not renew it"
    extra: dict[str, Any] = {}
    if asked:
        reason, extra = f"{reason}; {custom_next_step(lineage)}", {"asked": True}
    if live is not None and now >= renewal_window_start(live.not_before, live.not_after):
        left = days_left(live.not_after, now)
        reason = (
            f"uploaded certificate expires in {left} days: upload a new one"
            if left >= 0
            else "uploaded certificate has expired: upload a new one"
        )
        days = expiry_notice(live.not_after, now, notified)
        extra = {"warn": True}
        if days is not None:  # the event, and what state.json keeps once it is sent
            extra |= {"event": "custom_expiring", "notice": (NOTICE_KEY, _sent(live, days=days))}
        return Outcome(
            lineage.name, "skipped", lineage.domains, certificate=live, reason=reason, extra=extra
        )
    missing = uncovered(live.sans, lineage.domains) if live is not None else []
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        # what renews it, as when asked: named or not, a mismatch is said at every run
        reason = f"uploaded certificate does not cover {shown}: {custom_next_step(lineage)}"
        extra = {**extra, "warn": True}
        if not mismatch_notified:
            extra |= {"event": "custom_mismatch", "notice": (MISMATCH_KEY, _sent(live))}
    return Outcome(
        lineage.name, "skipped", lineage.domains, certificate=live, reason=reason, extra=extra
    )


def _record_failure(store: Store, name: str, exc: CertcliError) -> None:
    """A failure before the attempt could start (a CA unreachable, a bad setting)."""
    try:
        state = store.read_state(name)
        state["phase"] = "Failed"
        _failed(state, exc)
        store.write_state(name, state)
    except StoreError:
        pass  # best effort: the run reports the failure anyway


def _failed(state: dict[str, Any], exc: CertcliError) -> None:
    """Record a failure and when to try again (the backoff of renewal.next_attempt)."""
    now = datetime.now(UTC)
    failures = int(state.get("failures", 0)) + 1
    kind = getattr(exc, "kind", "error")
    when = next_attempt(now, failures, kind, getattr(exc, "retry_after", None))
    state.update(
        last_attempt=rfc3339(now),
        last_error=exc.message,
        last_error_kind=kind,
        failures=failures,
        next_attempt=rfc3339(when) if when else None,
    )


def diagnose_lineage(
    store: Store, config: dict[str, Any], lineage: LineageConfig
) -> list[Diagnosis] | None:
    """A fresh DNS diagnosis of a DNS-01 lineage's SANs (None for other lineages)."""
    if lineage.extra.get("challenge") != "dns-01":
        return None
    from certcli.dnscheck import diagnose

    dns = make_plan(AcmeOptions(), config, lineage, store.root).dns
    assert dns is not None
    return diagnose(
        order_identifiers(lineage.domains), dns.target, dns.resolvers, dns.query_timeout
    )


@dataclass(frozen=True)
class SanChange:
    name: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()  # already in the lineage
    covered: tuple[str, ...] = ()  # new, but the live certificate covers them already
    outcome: Outcome | None = None  # the re-issue, when one ran
    mode: Mode = Mode.AUTO  # custom: an upload, not certcli, brings the change
    next_step: str | None = None  # for a custom lineage: what brings the new certificate

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": self.mode.value,
            "added": list(self.added),
            "removed": list(self.removed),
            "unchanged": list(self.unchanged),
            "covered": list(self.covered),
            "result": self.outcome.to_json() if self.outcome else None,
            "next_step": self.next_step,
        }


def san_add(
    store: Store,
    session: Session,
    name: str,
    sans: list[str],
    config: dict[str, Any],
    progress: Progress,
    *,
    issue: bool = True,
) -> SanChange:
    """Add SANs to a lineage and, unless the live certificate covers them already, re-issue
    at once. When the DNS of a new SAN is not Valid yet the lineage shows that, and the next
    `renew` re-issues as soon as it is."""
    from certcli.domains import uncovered
    from certcli.errors import DnsNotReadyError

    validate_lineage_name(name)
    with store.lock(name):
        lineage = store.read_config(name)
        known = set(lineage.domains)
        new = list(dict.fromkeys(s for s in sans if s not in known))
        live = store.live_info(name)
        missing = set(uncovered(live.sans, new)) if live is not None else set(new)
        covered = [s for s in new if s not in missing]
        updated = replace(lineage, domains=lineage.domains + tuple(new))
        if lineage.mode is Mode.AUTO:
            get, _ = _settings(config, lineage)
            check_challenge(updated.domains, _challenge_of(get, AcmeOptions()), name)
        if new:
            store.write_config(updated)
        change = SanChange(
            name, tuple(new), (), tuple(s for s in sans if s in known), tuple(covered)
        )
        if lineage.mode is Mode.CUSTOM:
            return replace(change, mode=Mode.CUSTOM, next_step=custom_next_step(updated))
        if len(covered) == len(new):
            return change
        plan = make_plan(AcmeOptions(), config, updated, store.root)
        if not issue:
            if plan.dns is not None:  # record the diagnosis, so status shows the problem
                state = store.read_state(name)
                with contextlib.suppress(DnsNotReadyError):
                    _check_dns_into(state, order_identifiers(updated.domains), plan.dns)
                store.write_state(name, state)
            return change
        solver = _solver(plan, session, store)
        ca = session.get(plan.ca)
        progress(name, "Pending")
        outcome = _attempt(store, ca, updated, plan, solver, progress, record=True, action="issued")
    return replace(change, outcome=_deployed(store, config, updated, outcome))


def san_remove(store: Store, name: str, sans: list[str]) -> SanChange:
    """Remove SANs from a lineage. The live certificate stays (it covers the rest); the
    next renewal (or, for an uploaded lineage, the next upload) leaves them out."""
    validate_lineage_name(name)
    with store.lock(name):
        lineage = store.read_config(name)
        known, removed = set(lineage.domains), set(sans)
        unknown = [s for s in sans if s not in known]
        if unknown:
            raise UsageError(
                f"{name!r} has no SAN {', '.join(unknown)}", f"`certcli san list {name}` shows them"
            )
        remaining = tuple(d for d in lineage.domains if d not in removed)
        if not remaining:
            raise UsageError(f"{name!r} would have no domain left", "keep at least one")
        updated = replace(lineage, domains=remaining)
        store.write_config(updated)
        state = store.read_state(name)
        cached = (state.get("dns") or {}).get("sans")
        if cached:
            for san in sans:
                cached.pop(san, None)
            store.write_state(name, state)
    custom = lineage.mode is Mode.CUSTOM
    return SanChange(
        name,
        removed=tuple(sans),
        unchanged=remaining,
        mode=lineage.mode,
        next_step=custom_next_step(updated) if custom else None,
    )
