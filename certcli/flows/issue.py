"""certcli issue: a new lineage (or a re-issue into one) and its first certificate."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from certcli.challenges import check_identifiers
from certcli.domains import default_lineage_name, validate_lineage_name
from certcli.errors import CertcliError, NotConfirmedError, UsageError
from certcli.flows.account import contact_warning
from certcli.flows.attempt import make_solver, sweep_leftovers
from certcli.flows.deploy import attempt_deployed
from certcli.flows.outcome import Outcome, Progress
from certcli.flows.plan import AcmeOptions, Plan, make_plan, rehearsal
from certcli.flows.session import Session
from certcli.models import Action, LineageSettings, Mode, Phase
from certcli.storage.protocol import Storage

if TYPE_CHECKING:
    from certcli.engine import Ca


def issue(
    store: Storage,
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
    warn: Callable[[str], None] | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
    plan: Plan | None = None,
) -> Outcome:
    """Create (or, with --force-renewal/--expand, re-issue) a lineage and obtain its
    certificate. Usage and connection problems fail before anything is stored; a failed
    order leaves the lineage as Failed for `renew` to retry. `warn` is told, first, when
    --email is not the account's contact. `plan`: the one these options and config make,
    made already (by `issue_each`, once for all its lineages)."""
    if warn is not None:
        _warn_contact(store, config, options, warn)
    validate_lineage_name(name)
    if plan is None:
        plan = make_plan(options, config, None, store)
    check_identifiers(domains, plan.challenge)
    solver = make_solver(plan, session, store)
    store.ensure()
    sweep_leftovers(store)
    if dry_run:
        plan = rehearsal(store, plan)
    else:
        store.check_key_protection()
    ca = session.get(plan.ca)
    _check_profile(ca, plan)
    progress(name, Phase.PENDING)
    lineage = LineageSettings.build(
        name, tuple(domains), Mode.AUTO, plan.key_type, plan.lineage_extra()
    )
    with contextlib.ExitStack() as held:
        settle = None
        if not dry_run:
            held.enter_context(store.lock(name))
            lineage, settle = _into_store(
                store, lineage, plan, force_renewal=force_renewal, expand=expand, confirm=confirm
            )
        return attempt_deployed(
            store,
            config,
            ca,
            lineage,
            plan,
            solver,
            progress,
            action=Action.ISSUED,
            dry_run=dry_run,
            release=held.close,
            now=now,  # else the attempt's start: after the CA and the lock
            settle=settle,
            rng=rng,
        )


def _into_store(
    store: Storage,
    lineage: LineageSettings,
    plan: Plan,
    *,
    force_renewal: bool,
    expand: bool,
    confirm: Callable[[str], bool] | None,
) -> tuple[LineageSettings, LineageSettings | None]:
    """Under the lineage lock: the lineage to issue for, and the settings to write once the
    CA has issued (None: written now, or already)."""
    name = lineage.name
    existing = store.read_settings(name) if store.exists(name) else None
    _check_existing(
        store,
        existing,
        list(lineage.domains),
        force_renewal=force_renewal,
        expand=expand,
        confirm=confirm,
    )
    if existing is not None:
        # the plan's settings over the lineage's, table by table
        table = {**existing.to_toml(), **plan.lineage_extra()}
        lineage = LineageSettings.build(name, lineage.domains, Mode.AUTO, plan.key_type, table)
    # A lineage with a certificate keeps its settings until the CA has issued for the new
    # ones; a new lineage is stored at once, so that `renew` retries a failed order.
    reissue = existing is not None and store.live_version(name) is not None
    if not reissue:
        store.write_settings(lineage)
    return lineage, lineage if reissue else None


def _warn_contact(
    store: Storage, config: dict[str, Any], options: AcmeOptions, warn: Callable[[str], None]
) -> None:
    """Only a new account takes --email: say so when the account has another contact.
    The CA's settings are checked on the way, before anything is written."""
    warning = contact_warning(store, config, options)
    if warning:
        warn(warning)


def _check_profile(ca: Ca, plan: Plan) -> None:
    if not plan.profile or plan.profile in ca.profiles:
        return
    ca.refresh_directory(ca.directory)  # a kept copy may predate the profile
    if plan.profile not in ca.profiles:
        offered = ", ".join(sorted(ca.profiles)) or "none"
        raise UsageError(f"the CA offers no profile {plan.profile!r}", f"its profiles: {offered}")


def _check_existing(
    store: Storage,
    existing: LineageSettings | None,
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
    store: Storage,
    session: Session,
    groups: list[list[str]],
    options: AcmeOptions,
    config: dict[str, Any],
    progress: Progress,
    *,
    parallel: int,
    dry_run: bool = False,
    warn: Callable[[str], None] | None = None,
    rng: random.Random | None = None,
) -> list[Outcome]:
    """One lineage per group of domains (a domain, or a domain and its wildcard), issued
    concurrently by a bounded pool; each issue reads its own `now` when the pool starts it.
    `warn` is told once, first, when --email is not the account's contact."""
    if warn is not None:
        _warn_contact(store, config, options, warn)
    # Account creation and usage errors happen once, before the pool starts.
    plan = make_plan(options, config, None, store)
    for group in groups:
        check_identifiers(group, plan.challenge)
    make_solver(plan, session, store)
    session.get(rehearsal(store, plan).ca if dry_run else plan.ca)

    def one(domains: list[str]) -> Outcome:
        name = default_lineage_name(domains)
        try:
            return issue(
                store,
                session,
                name,
                domains,
                options,
                config,
                progress,
                dry_run=dry_run,
                rng=rng,
                plan=plan,
            )
        except CertcliError as exc:  # e.g. the name exists or is locked: report it, go on
            progress(name, Phase.FAILED)
            return Outcome(name, Action.FAILED, tuple(domains), error=exc)

    for domains in groups:  # the progress view learns the total before the pool starts
        progress(default_lineage_name(domains), Phase.QUEUED)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, groups))
