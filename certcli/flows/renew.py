"""certcli renew: every lineage that is due, with config.toml's hooks and notifications."""

from __future__ import annotations

import contextlib
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from certcli.domains import validate_lineage_name
from certcli.errors import CertcliError, LockedError
from certcli.flows.ari import RANDOM
from certcli.flows.attempt import make_solver, record_failure, sweep_leftovers
from certcli.flows.deploy import attempt_deployed, deployed, hook_timeout
from certcli.flows.notify import notify_run
from certcli.flows.outcome import Outcome, Progress
from certcli.flows.plan import AcmeOptions, make_plan, rehearsal
from certcli.flows.scan import Due, indexed_outcome, scan_all
from certcli.flows.session import Session
from certcli.hooks import run_hook
from certcli.models import Action, Phase
from certcli.storage.protocol import Storage


@dataclass(frozen=True)
class RenewRun:
    read: list[Outcome]  # the lineages this run read (all but those the index answered for)
    problems: list[str]  # pre/post hooks and notifications that failed
    indexed: dict[str, str] = field(default_factory=dict)  # not due, by the index (scan.py)

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(
            o.action == Action.FAILED or o.problems for o in self.read
        )

    @cached_property
    def outcomes(self) -> list[Outcome]:
        """Every lineage's outcome, by name. Those the index answered for are built only when
        asked for: a `renew` that shows none of them, over 100,000 lineages, builds none."""
        if not self.indexed:
            return self.read
        built = [indexed_outcome(name, shown) for name, shown in self.indexed.items()]
        return sorted([*self.read, *built], key=lambda o: o.name)


def renew(
    store: Storage,
    session: Session,
    names: list[str],
    config: dict[str, Any],
    progress: Progress,
    *,
    now: datetime | None = None,
    force: bool = False,
    dry_run: bool = False,
    parallel: int = 4,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> RenewRun:
    """Renew every auto lineage that is due (all of them with --force or --dry-run), with
    the hooks and notifications of config.toml.

    Deciding what is due reads only the store: with nothing due, no request is sent, no hook
    runs and there is no jitter. A lineage that failed waits out its backoff (not with
    --force). A second run while one holds the store lock raises LockedError at once.
    What is due is decided at `now`; each renewal stamps its own start, as the pool reaches
    it. `rng` draws the jitter and the moments in ARI windows.
    """
    now = now or datetime.now(UTC)
    rng = rng or RANDOM
    for name in names:
        validate_lineage_name(name)  # before any file is touched, the lock's included
    with store.lock_store(wait=0):
        for name in names:
            store.require(name)
        sweep_leftovers(store)
        found = scan_all(store, names, config, now, force=force, dry_run=dry_run, rng=rng)
        outcomes, due = list(found.outcomes), found.due

        # Only the deploy hook runs again: no order, so no pre or post hook.
        outcomes += [deployed(store, config, o.extra["lineage"], o) for o in found.redeploys]
        hooks = config.get("hooks") or {}
        problems: list[str] = []
        if due and not dry_run:
            store.check_key_protection()  # no certificate is ordered that could not be stored
        if due and jitter > 0 and not (force or dry_run):
            time.sleep(rng.uniform(0, jitter))  # spread a fleet's runs over the CA's day
        if due and not dry_run and hooks.get("pre"):
            problems += filter(None, [run_hook("pre", str(hooks["pre"]), {}, hook_timeout(config))])

        def one(item: Due) -> Outcome:
            return _renew_one(
                store, session, config, progress, item, dry_run=dry_run, rng=rng, started=now
            )

        try:
            if due:
                for item in due:  # the progress view learns the total first
                    progress(item.lineage.name, Phase.QUEUED)
                with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
                    outcomes += list(pool.map(one, due))
        finally:  # the post hook undoes the pre hook, whatever happened
            outcomes.sort(key=lambda o: o.name)
            if due and not dry_run and hooks.get("post"):
                failed = " ".join(
                    d for o in outcomes if o.action == Action.FAILED for d in o.domains
                )
                renewed = " ".join(
                    d for o in outcomes if o.action == Action.RENEWED for d in o.domains
                )
                env = {"FAILED_DOMAINS": failed, "RENEWED_DOMAINS": renewed}
                problem = run_hook("post", str(hooks["post"]), env, hook_timeout(config))
                problems += filter(None, [problem])
            outcomes = [
                replace(o, notes=o.notes + found.healed[o.name]) if found.healed.get(o.name) else o
                for o in outcomes
            ]
        if not dry_run:
            problems += notify_run(store, config, outcomes)
    if store.shared and not dry_run:  # what other hosts renewed is served here too
        from certcli.flows.sync import sync

        try:
            problems += [f"sync: {s.name}: {s.problem}" for s in sync(store, config) if s.problem]
        except CertcliError as exc:
            problems.append(f"sync: {exc.message}")
    return RenewRun(outcomes, problems, found.indexed)


def _renew_one(
    store: Storage,
    session: Session,
    config: dict[str, Any],
    progress: Progress,
    item: Due,
    *,
    dry_run: bool,
    rng: random.Random,
    started: datetime,
) -> Outcome:
    """One due lineage renewed (or rehearsed) in the pool; its trouble is its outcome. In a
    shared store, a lineage another host is renewing, or renewed since this run began, is
    left to it."""
    lineage, reason = item.lineage, item.reason
    progress(lineage.name, Phase.PENDING)
    try:
        plan = make_plan(AcmeOptions(), config, lineage, store)
        solver = make_solver(plan, session, store)
        if dry_run:
            plan = rehearsal(store, plan)
        ca = session.get(plan.ca)
        with contextlib.ExitStack() as held:
            if not dry_run:
                held.enter_context(store.lock(lineage.name, wait=0 if store.shared else None))
                by = renewed_by(store, lineage.name, started) if store.shared else None
                if by is not None:
                    progress(lineage.name, Phase.COMPLETED)
                    return Outcome(lineage.name, Action.SKIPPED, lineage.domains, reason=by)
            outcome = attempt_deployed(
                store,
                config,
                ca,
                lineage,
                plan,
                solver,
                progress,
                action=Action.RENEWED,
                dry_run=dry_run,
                release=held.close,  # this renewal's start is stamped once it has the lock
                replaces=item.replaces,
                rng=rng,
            )
    except LockedError as exc:  # an issue or upload at work: its state is its own
        if store.shared and exc.holder:  # another host renews it now
            progress(lineage.name, Phase.COMPLETED)
            reason = f"being renewed by {exc.holder}"
            return Outcome(lineage.name, Action.SKIPPED, lineage.domains, reason=reason)
        progress(lineage.name, Phase.FAILED)
        return Outcome(lineage.name, Action.FAILED, lineage.domains, error=exc, reason=reason)
    except Exception as exc:  # one lineage's trouble must not stop the run
        error = (
            exc
            if isinstance(exc, CertcliError)
            else CertcliError(
                f"unexpected {type(exc).__name__}: {exc}", "run with -v and report it"
            )
        )
        progress(lineage.name, Phase.FAILED)
        if not dry_run:
            record_failure(store, lineage.name, error, datetime.now(UTC))
        return Outcome(lineage.name, Action.FAILED, lineage.domains, error=error, reason=reason)
    return outcome if dry_run else replace(outcome, reason=reason)  # a rehearsal: no reason


def renewed_by(store: Storage, name: str, since: datetime) -> str | None:
    """`renewed by HOST (PID N)` when another process made the current version after
    `since` (a shared store's versions name their maker)."""
    from certcli.models import parse_rfc3339

    version = store.live_version(name)
    if version is None:
        return None
    meta = store.version_meta(name, version)
    maker = (meta.get("host"), meta.get("pid"))
    try:
        made = parse_rfc3339(str(meta.get("created")))
    except ValueError:
        return None
    if maker[0] is None or made < since or maker == (getattr(store, "host", None), os.getpid()):
        return None
    return f"renewed by {maker[0]} (PID {maker[1]}) at {meta.get('created')}"
