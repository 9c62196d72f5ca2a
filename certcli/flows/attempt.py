"""One attempt at a certificate for a lineage: its phases in state.json, the order, the
new version switched live; and the record of a failure with its backoff."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from certcli import challenges
from certcli.domains import order_identifiers
from certcli.errors import CertcliError, StoreError, ValidationFailedError
from certcli.flows.ari import refresh_ari
from certcli.flows.dns import check_into
from certcli.flows.outcome import Outcome, Progress
from certcli.flows.plan import Plan
from certcli.flows.session import Session
from certcli.models import LineageConfig, rfc3339
from certcli.renewal import next_attempt
from certcli.storage.files import Store, version_files

if TYPE_CHECKING:
    from certcli.challenges import Challenge, Solver
    from certcli.engine import Ca


def make_solver(plan: Plan, session: Session, store: Store) -> Solver:
    """The solver of the plan's method, with the store's journal of what it leaves."""
    return plan.method.solver(
        plan.challenge_settings, store.root / "leftovers", session.interactive, session.pause
    )


def sweep_leftovers(store: Store) -> None:
    """What killed runs left outside the store (token files in a webroot) goes at the start
    of the next run."""
    for answer in challenges.METHODS.values():
        answer.sweep(store.root / "leftovers")


def attempt(
    store: Store,
    ca: Ca,
    config: LineageConfig,
    plan: Plan,
    solver: Solver,
    progress: Progress,
    *,
    record: bool,
    action: str,
    now: datetime,
    replaces: str | None = None,
    settle: LineageConfig | None = None,
    rng: random.Random | None = None,
) -> Outcome:
    """One issuance for a lineage, started at `now`: a fresh key, the order, and (when
    `record`) the new version switched live, with each phase written to state.json.
    `settle`, the lineage's new settings, is written only once the CA has issued for them.
    Phases, the new version and a failure are stamped when they happen (an order takes
    minutes), and the backoff counts from the failure."""
    from certcli import x509 as x  # cryptography: only once a key is made

    name = config.name
    state = store.read_state(name) if record else {}

    def phase(value: str) -> None:
        if record:
            state.update(phase=value, phase_at=rfc3339(datetime.now(UTC)))
            store.write_state(name, state)
        progress(name, value)

    if record:
        state["last_attempt"] = rfc3339(now)
    phase("Starting")
    identifiers = order_identifiers(config.domains)
    try:
        if plan.method.check_phase:
            phase(plan.method.check_phase)
        check_into(state, identifiers, plan)  # e.g. the CNAME Check of DNS-01
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
            state.update(last_success=state["last_attempt"], failures=0)
            for stale in ("last_error", "last_error_kind", "next_attempt", "revoked", "ari"):
                state.pop(stale, None)
            if ca.renewal_info_url:
                cert_id = x.ari_cert_id(cert)
                if cert_id:
                    state["ari"] = refresh_ari(
                        {"url": f"{ca.renewal_info_url.rstrip('/')}/{cert_id}", "id": cert_id},
                        plan.ca,
                        datetime.now(UTC),
                        rng,
                    )
        try:
            phase("Completed")
        except StoreError:  # live has switched already: the new certificate stands
            progress(name, "Completed")
        return Outcome(name, action if record else "dry_run", config.domains, version, info)
    except CertcliError as exc:
        _add_next_step(exc, plan)
        if record:
            mark_failed(state, exc, datetime.now(UTC))
        try:
            phase("Failed")
        except StoreError:  # a full disk, say: the failure is still reported
            progress(name, "Failed")
        return Outcome(name, "failed", config.domains, error=exc)


class _WaitShown:
    """A solver whose wait has a phase of its own when its method says so ("Waiting for
    DNS"), so that a slow name server shows as such rather than as a slow CA."""

    def __init__(
        self, solver: Solver, phase: Callable[[str], None], wait_phase: str | None
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
        self._phase("Validating")

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


def record_failure(store: Store, name: str, exc: CertcliError, failed_at: datetime) -> None:
    """A failure before the attempt could start (a CA unreachable, a bad setting)."""
    try:
        state = store.read_state(name)
        state["phase"] = "Failed"
        mark_failed(state, exc, failed_at)
        store.write_state(name, state)
    except StoreError:
        pass  # best effort: the run reports the failure anyway


def mark_failed(state: dict[str, Any], exc: CertcliError, now: datetime) -> None:
    """Record a failure at `now` and when to try again (renewal.next_attempt's backoff)."""
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
