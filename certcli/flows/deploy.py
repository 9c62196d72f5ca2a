"""The deploy hook after a new version: run, recorded in state.json, notified if it fails;
and an attempt followed by it."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from certcli.config import setting
from certcli.errors import LockedError, StoreError
from certcli.flows.attempt import attempt
from certcli.flows.notify import notify_event
from certcli.flows.outcome import Outcome, Progress
from certcli.flows.plan import Plan
from certcli.hooks import run_hook
from certcli.models import Action, LineageSettings, rfc3339
from certcli.storage.protocol import Storage

if TYPE_CHECKING:
    from certcli.challenges import Solver
    from certcli.engine import Ca


def deployed(
    store: Storage, config: dict[str, Any], lineage: LineageSettings, outcome: Outcome
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


def attempt_deployed(
    store: Storage,
    config: dict[str, Any],
    ca: Ca,
    lineage: LineageSettings,
    plan: Plan,
    solver: Solver,
    progress: Progress,
    *,
    action: Action,
    dry_run: bool,
    release: Callable[[], None],
    now: datetime | None = None,
    replaces: str | None = None,
    settle: LineageSettings | None = None,
    rng: random.Random | None = None,
) -> Outcome:
    """One attempt (recorded unless a dry run, which passes no `replaces` and no `rng`),
    then the deploy hook of its new version. `release` lets go of the lineage lock between
    the two, as the hook's record takes it anew. `now` defaults to the moment the caller
    has the lock."""
    outcome = attempt(
        store,
        ca,
        lineage,
        plan,
        solver,
        progress,
        record=not dry_run,
        action=action,
        now=now or datetime.now(UTC),
        replaces=None if dry_run else replaces,
        settle=settle,
        rng=None if dry_run else rng,
    )
    release()
    return deployed(store, config, lineage, outcome)


def deploy(store: Storage, config: dict[str, Any], lineage: LineageSettings) -> str | None:
    """Run the lineage's deploy hook (its own, else config.toml's) after a new version;
    return what went wrong, or None (also when there is no hook)."""
    command = setting("hooks.deploy", None, config, None, lineage.to_toml())
    if not command:
        return None
    live = str(store.live_dir(lineage.name))
    domains = " ".join(lineage.domains)
    env = {
        "CERTCLI_NAME": lineage.name,
        "CERTCLI_LIVE_DIR": live,
        "CERTCLI_DOMAINS": domains,
        "RENEWED_LINEAGE": live,  # certbot's names, so its deploy hooks work unchanged
        "RENEWED_DOMAINS": domains,
    }
    return run_hook("deploy", str(command), env, hook_timeout(config, lineage))


def _record_deploy(store: Storage, name: str, version: int, error: str | None) -> None:
    """Keep (or clear) `deploy_failed` in state.json; best effort, as the run reports the
    failure anyway."""
    with contextlib.suppress(LockedError, StoreError), store.lock(name):
        if error is not None:
            failed = {"version": version, "at": rfc3339(datetime.now(UTC)), "error": error}
            store.update_state(name, lambda state: replace(state, deploy_failed=failed))
        elif store.read_lineage_state(name).deploy_failed is not None:  # else: nothing to write
            store.update_state(name, lambda state: state.cleared("deploy_failed"))


def hook_timeout(config: dict[str, Any], lineage: LineageSettings | None = None) -> float:
    table = lineage.to_toml() if lineage else None
    return float(setting("hooks.timeout", None, config, 300, table))
