"""certcli san add / remove: change a lineage's names, re-issuing when it must."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from certcli.challenges import check_identifiers, chosen
from certcli.domains import order_identifiers, uncovered
from certcli.errors import UsageError
from certcli.flows.attempt import make_solver
from certcli.flows.deploy import attempt_deployed
from certcli.flows.dns import fresh_cache
from certcli.flows.notify import custom_next_step
from certcli.flows.outcome import Outcome, Progress
from certcli.flows.plan import AcmeOptions, lineage_getter, make_plan
from certcli.flows.session import Session
from certcli.models import Action, LineageState, Mode, Phase
from certcli.storage.protocol import Storage


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
    store: Storage,
    session: Session,
    name: str,
    sans: list[str],
    config: dict[str, Any],
    progress: Progress,
    *,
    issue: bool = True,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> SanChange:
    """Add SANs to a lineage and, unless the live certificate covers them already, re-issue
    at once. When the DNS of a new SAN is not Valid yet the lineage shows that, and the next
    `renew` re-issues as soon as it is."""
    with contextlib.ExitStack() as held:
        held.enter_context(store.lock(name))
        lineage = store.read_settings(name)
        known = set(lineage.domains)
        new = list(dict.fromkeys(s for s in sans if s not in known))
        live = store.live_info(name)
        missing = set(uncovered(live.sans, new)) if live is not None else set(new)
        covered = [s for s in new if s not in missing]
        updated = replace(lineage, domains=lineage.domains + tuple(new))
        if lineage.mode is Mode.AUTO:
            get = lineage_getter(config, lineage)
            check_identifiers(updated.domains, chosen(None, get), name)
        if new:
            store.write_settings(updated)
        change = SanChange(
            name, tuple(new), (), tuple(s for s in sans if s in known), tuple(covered)
        )
        if lineage.mode is Mode.CUSTOM:
            return replace(change, mode=Mode.CUSTOM, next_step=custom_next_step(updated))
        if len(covered) == len(new):
            return change
        plan = make_plan(AcmeOptions(), config, updated, store)
        if not issue:
            # record the diagnosis (of DNS-01), so that status shows the problem
            cached = fresh_cache(order_identifiers(updated.domains), plan)
            if cached is not None:
                store.update_state(name, lambda state: replace(state, dns=cached))
            return change
        solver = make_solver(plan, session, store)
        ca = session.get(plan.ca)
        progress(name, Phase.PENDING)
        outcome = attempt_deployed(
            store,
            config,
            ca,
            updated,
            plan,
            solver,
            progress,
            action=Action.ISSUED,
            dry_run=False,
            release=held.close,
            now=now,  # else the attempt's start
            rng=rng,
        )
    return replace(change, outcome=outcome)


def san_remove(store: Storage, name: str, sans: list[str]) -> SanChange:
    """Remove SANs from a lineage. The live certificate stays (it covers the rest); the
    next renewal (or, for an uploaded lineage, the next upload) leaves them out."""
    with store.lock(name):
        lineage = store.read_settings(name)
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
        store.write_settings(updated)
        if (store.read_lineage_state(name).dns or {}).get("sans"):
            store.update_state(name, lambda state: _forget_sans(state, sans))
    custom = lineage.mode is Mode.CUSTOM
    return SanChange(
        name,
        removed=tuple(sans),
        unchanged=remaining,
        mode=lineage.mode,
        next_step=custom_next_step(updated) if custom else None,
    )


def _forget_sans(state: LineageState, sans: list[str]) -> LineageState:
    """The state without the SAN DNS cache's entries of these SANs."""
    dns = dict(state.dns or {})
    dns["sans"] = {k: v for k, v in (dns.get("sans") or {}).items() if k not in sans}
    return replace(state, dns=dns)
