"""One attempt at a certificate for a lineage: its phases in state.json, the order, the
new version switched live; and the record of a failure with its backoff."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certcli.challenges.http01 import WebrootSolver, sweep
from certcli.domains import order_identifiers
from certcli.errors import CertcliError, StoreError, UsageError, ValidationFailedError
from certcli.flows.ari import refresh_ari
from certcli.flows.dns import check_dns_into
from certcli.flows.outcome import Outcome, Progress
from certcli.flows.plan import Plan
from certcli.flows.session import Session
from certcli.leftovers import Journal
from certcli.models import LineageConfig, rfc3339
from certcli.renewal import next_attempt
from certcli.storage.files import Store, version_files

if TYPE_CHECKING:
    from certcli.challenges import Challenge, Solver
    from certcli.engine import Ca


def make_solver(plan: Plan, session: Session, store: Store) -> Solver:
    """The solver of the plan's challenge, with the store's journal of what it leaves."""
    if plan.dns is not None:
        from certcli.challenges.dns01 import DelegationSolver  # dnspython
        from certcli.providers import make_provider

        provider = make_provider(plan.dns, session.interactive, session.pause)
        return DelegationSolver(plan.dns, provider, _leftovers(store, "dns-01"))
    if not plan.webroot:
        raise UsageError(
            "no webroot for HTTP-01", "give --webroot DIR, the directory your web server serves"
        )
    return WebrootSolver(Path(plan.webroot), _leftovers(store, "http-01"))


def _leftovers(store: Store, kind: str) -> Journal:
    """The store's journal of what a run of this challenge creates outside the store."""
    return Journal(store.root / "leftovers", kind)


def sweep_webroots(store: Store) -> None:
    """Token files a killed run left in a webroot go at the start of the next run."""
    sweep(_leftovers(store, "http-01"))


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
        if plan.dns is not None:
            phase("CNAME Check")
            check_dns_into(state, identifiers, plan.dns)
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
    if not isinstance(exc, ValidationFailedError):
        return
    if plan.challenge == "http-01" and plan.webroot:
        exc.hint = (
            f"check that the web server serves {plan.webroot} as http://DOMAIN/ "
            "(the CA fetches /.well-known/acme-challenge/ on port 80)"
        )
    elif plan.challenge == "dns-01":
        exc.hint = "`certcli dns check DOMAIN` shows what a resolver finds, and what to fix"


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
