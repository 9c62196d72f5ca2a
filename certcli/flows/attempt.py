"""One attempt at a certificate for a lineage: its phases in state.json, the order, the
new version switched live; and the record of a failure with its backoff."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from certcli import challenges
from certcli.domains import order_identifiers
from certcli.errors import CertcliError, LockedError, StoreError, ValidationFailedError
from certcli.flows.ari import refresh_ari
from certcli.flows.caa import refusal
from certcli.flows.dns import checked
from certcli.flows.outcome import RECORD_ENDING, Outcome, Progress
from certcli.flows.plan import Plan
from certcli.flows.session import Session
from certcli.models import (
    Action,
    CertInfo,
    LineageSettings,
    LineageState,
    Phase,
    StateUpdate,
    rfc3339,
)
from certcli.renewal import next_attempt, not_due_until, records_ending
from certcli.storage.files import version_files
from certcli.storage.protocol import Storage

if TYPE_CHECKING:
    from certcli.challenges import Challenge, Solver
    from certcli.engine import Ca


def make_solver(plan: Plan, session: Session, store: Storage) -> Solver:
    """The solver of the plan's method, with the store's journal of what it leaves."""
    return plan.method.solver(
        plan.challenge_settings, store.leftovers_dir(), session.interactive, session.pause
    )


def sweep_leftovers(store: Storage) -> None:
    """What killed runs left outside the store (token files in a webroot) goes at the start
    of the next run."""
    for answer in challenges.METHODS.values():
        answer.sweep(store.leftovers_dir())


def attempt(
    store: Storage,
    ca: Ca,
    config: LineageSettings,
    plan: Plan,
    solver: Solver,
    progress: Progress,
    *,
    record: bool,
    action: Action,
    now: datetime,
    replaces: str | None = None,
    settle: LineageSettings | None = None,
    rng: random.Random | None = None,
) -> Outcome:
    """One issuance for a lineage, started at `now`: a fresh key, the order, and (when
    `record`) the new version switched live, with each phase written to state.json.
    `settle`, the lineage's new settings, is written only once the CA has issued for them.
    Phases, the new version and a failure are stamped when they happen (an order takes
    minutes), and the backoff counts from the failure."""
    from certcli import x509 as x  # cryptography: only once a key is made

    name = config.name
    started = rfc3339(now)
    later: dict[str, Any] = {"last_attempt": started}  # written with the next phase

    def phase(value: Phase, then: StateUpdate | None = None) -> None:
        if record:
            changes = {**later, "phase": value, "phase_at": rfc3339(datetime.now(UTC))}

            def update(state: LineageState) -> LineageState:
                state = with_values(state, changes)
                return then(state) if then else state

            store.update_state(name, update)
            later.clear()
        progress(name, value)

    phase(Phase.STARTING)
    identifiers = order_identifiers(config.domains)
    try:
        if plan.method.check_phase:
            phase(plan.method.check_phase)
        found, problem = checked(identifiers, plan)  # e.g. the CNAME Check of DNS-01
        if found is not None:
            later["dns"] = found
        if problem is not None:
            raise problem
        forbids = refusal(identifiers, plan, store)  # CAA: before any order, for every method
        if forbids is not None:
            raise forbids
        solver.check()  # e.g. the TSIG key is accepted: before any order
        key = x.generate_private_key(plan.key_type)
        csr_pem = x.make_csr(key, identifiers)
        shown = _WaitShown(solver, phase, plan.method.wait_phase)
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
            stale = ("last_error", "last_error_kind", "next_attempt", "revoked", "ari")
            later.update(dict.fromkeys(stale), last_success=started, failures=0)
            if ca.renewal_info_url:
                cert_id = x.ari_cert_id(cert)
                if cert_id:
                    later["ari"] = refresh_ari(
                        {"url": f"{ca.renewal_info_url.rstrip('/')}/{cert_id}", "id": cert_id},
                        plan.ca,
                        datetime.now(UTC),
                        rng,
                    )
        try:
            phase(Phase.COMPLETED)
        except StoreError:  # live has switched already: the new certificate stands
            progress(name, Phase.COMPLETED)
        notes, extra = _records_ending(found, info)
        return Outcome(
            name,
            action if record else Action.DRY_RUN,
            config.domains,
            version,
            info,
            extra=extra,
            notes=notes,
        )
    except CertcliError as exc:
        _add_next_step(exc, plan)
        error, failed_at = exc, datetime.now(UTC)
        try:
            phase(Phase.FAILED, lambda state: mark_failed(state, error, failed_at))
        except StoreError:  # a full disk, say: the failure is still reported
            progress(name, Phase.FAILED)
        return Outcome(name, Action.FAILED, config.domains, error=exc)


def _records_ending(
    found: dict[str, Any] | None, info: CertInfo
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """A note (and the event to notify) when a SAN's record, dns-persist-01's with a
    persistUntil, ends before the new certificate is due for renewal."""
    due = not_due_until(info, None)
    ending = records_ending(found, due)
    if not ending:
        return (), {}
    shown = ", ".join(f"{san} at {rfc3339(until)}" for san, until in ending)
    note = (
        f"the record that validates {shown} ends before the next renewal ({rfc3339(due)}): "
        "publish it again with a later persistUntil (or none), as `certcli dns check` shows"
    )
    # the note itself rides along: renew adds notes of its own after this one
    return (note,), {"event": RECORD_ENDING, "said": note}


class _WaitShown:
    """A solver whose wait has a phase of its own when its method says so ("Waiting for
    DNS"), so that a slow name server shows as such rather than as a slow CA."""

    def __init__(
        self, solver: Solver, phase: Callable[[Phase], None], wait_phase: Phase | None
    ) -> None:
        self._solver = solver
        self._phase = phase
        self._wait_phase = wait_phase
        self.challenge_type = solver.challenge_type

    def check(self) -> None:
        self._solver.check()

    def present(self, challenges: list[Challenge]) -> None:
        self._solver.present(challenges)

    def wait(self, challenges: list[Challenge]) -> None:
        if self._wait_phase is None:
            self._solver.wait(challenges)
            return
        self._phase(self._wait_phase)
        self._solver.wait(challenges)
        self._phase(Phase.VALIDATING)

    def cleanup(self, challenges: list[Challenge]) -> None:
        self._solver.cleanup(challenges)


def _add_next_step(exc: CertcliError, plan: Plan) -> None:
    """A failed validation says what to check, as the plan's method suggests (the web
    server behind the webroot, the delegation as a resolver sees it)."""
    if not isinstance(exc, ValidationFailedError):
        return
    hint = plan.method.hint(plan.challenge_settings)
    if hint:
        exc.hint = hint


def record_failure(store: Storage, name: str, exc: CertcliError, failed_at: datetime) -> None:
    """A failure before the attempt could start (a CA unreachable, a bad setting)."""
    with contextlib.suppress(LockedError, StoreError):  # the run reports the failure anyway
        store.update_state(
            name, lambda state: mark_failed(replace(state, phase=Phase.FAILED), exc, failed_at)
        )


def mark_failed(state: LineageState, exc: CertcliError, now: datetime) -> LineageState:
    """The state with a failure at `now` and when to try again (renewal.next_attempt's
    backoff)."""
    failures = (state.failures or 0) + 1
    kind = getattr(exc, "kind", "error")
    when = next_attempt(now, failures, kind, getattr(exc, "retry_after", None))
    return with_values(
        state,
        {
            "last_attempt": rfc3339(now),
            "last_error": exc.message,
            "last_error_kind": kind,
            "failures": failures,
            "next_attempt": rfc3339(when) if when else None,
        },
    )


def with_values(state: LineageState, values: dict[str, Any]) -> LineageState:
    """The state with these keys set; a None removes its key."""
    gone = [k for k, v in values.items() if v is None]
    return replace(state.cleared(*gone), **{k: v for k, v in values.items() if v is not None})
