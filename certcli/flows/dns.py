"""The challenge method's check before ordering (DNS-01's CNAME Check), what it found kept
in state.json for `status`; and the diagnoses `status --check-dns` and `dns check` show."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from certcli import challenges
from certcli.challenges import Challenge, ChallengeMethod, dns01
from certcli.domains import order_identifiers
from certcli.errors import DnsNotReadyError, UsageError
from certcli.flows.plan import AcmeOptions, Plan, getters, lineage_getter, method_getter
from certcli.models import LineageSettings
from certcli.providers import make_provider
from certcli.storage.protocol import Storage

if TYPE_CHECKING:
    from certcli.dnscheck import Diagnosis


def checked(
    identifiers: list[str], plan: Plan
) -> tuple[dict[str, Any] | None, DnsNotReadyError | None]:
    """The plan's method checks that validation can work: what it found, as the SAN DNS
    cache state.json keeps whether or not the check passed (None when it found nothing to
    keep), and the error it raised."""
    answer, settings = plan.method, plan.challenge_settings
    try:
        found = answer.check(identifiers, settings)
    except DnsNotReadyError as exc:
        return answer.cache(exc.diagnoses, settings, datetime.now(UTC)), exc
    return (None if found is None else answer.cache(found, settings, datetime.now(UTC))), None


def fresh_cache(identifiers: list[str], plan: Plan) -> dict[str, Any] | None:
    """A fresh diagnosis by the plan's method, as `checked` gives it in state (never
    raising for what it finds); None when the method has nothing to diagnose."""
    answer, settings = plan.method, plan.challenge_settings
    found = answer.diagnose(identifiers, settings)
    return None if found is None else answer.cache(found, settings, datetime.now(UTC))


def diagnoser(challenge: str | None) -> ChallengeMethod | None:
    """The method `--challenge` names (checked now, before any lineage is read), or None
    for each lineage's own."""
    return challenges.method(challenge) if challenge else None


def diagnose_lineage(
    store: Storage,
    config: dict[str, Any],
    lineage: LineageSettings,
    method: ChallengeMethod | None = None,
) -> Sequence[Diagnosis] | None:
    """A fresh diagnosis of a lineage's SANs by its method, or by `method` (None when it
    has nothing to diagnose, as over HTTP-01, or when the lineage has no method)."""
    answer = method or challenges.METHODS.get(str(lineage.challenge))
    if answer is None:
        return None
    get = lineage_getter(config, lineage)
    return answer.diagnose(order_identifiers(lineage.domains), answer.settings(get, store))


@dataclass(frozen=True)
class NamesCheck:
    """What `dns check` found, and what `--publish` wrote (target, value) and could not
    (the CNAME records to create first)."""

    diagnoses: list[Diagnosis]
    published: tuple[tuple[str, str], ...] = ()
    delegate: tuple[str, ...] = ()
    caa: dict[str, dict[str, Any]] = field(default_factory=dict)  # each SAN's verdict, as JSON


@dataclass(frozen=True)
class RecordShape:
    """`dns check`'s options for a method whose record the owner publishes."""

    persist_until: str | None = None  # a date, as given
    wildcard_policy: bool = False
    publish: bool = False


def check_names(
    store: Storage,
    config: dict[str, Any],
    names: list[str],
    challenge: str | None = None,
    shape: RecordShape | None = None,
    interactive: bool = False,
    ask: Callable[[str], None] = print,
) -> NamesCheck:
    """The diagnosis of names alone by a method (DNS-01's delegation by default), before
    (or without) an order, with each name's CAA verdict for that method; with
    `shape.publish`, the method's record written first where certcli can write it."""
    from certcli.flows.caa import check_names as caa_names

    name = challenge or dns01.METHOD.name
    found = _diagnosed(store, config, names, name, shape, interactive, ask)
    caa = caa_names(store, config, names, name) or ()
    return replace(found, caa={f.san: f.to_json() for f in caa})


def _diagnosed(
    store: Storage,
    config: dict[str, Any],
    names: list[str],
    name: str,
    shape: RecordShape | None,
    interactive: bool,
    ask: Callable[[str], None],
) -> NamesCheck:
    from certcli.config import Source, checked

    shape = shape or RecordShape()
    answer = challenges.METHODS.get(name)
    others = ", ".join(checkable())
    if answer is None or not _diagnoses(answer):
        problem = "is not a challenge method" if answer is None else "has no DNS to check"
        raise UsageError(f"--challenge {name} {problem}", f"use one of: {others}")
    # the options of a method whose record the domain owner publishes (dns-persist-01)
    shaped, publish = getattr(answer, "record_options", ()), getattr(answer, "publish", None)
    for option, flag, able in (
        (shape.persist_until is not None, "--persist-until", shaped),
        (shape.wildcard_policy, "--wildcard-policy", shaped),
        (shape.publish, "--publish", publish),
    ):
        if option and not able:
            raise UsageError(
                f"{flag} shapes a record the domain owner publishes, and {name} has none",
                "use it with --challenge dns-persist-01",
            )
    given: dict[str, Any] = {}
    if shape.persist_until is not None:
        until = checked("dns_persist.persist_until", shape.persist_until, Source("--persist-until"))
        if until <= datetime.now(UTC).timestamp():
            raise UsageError(
                f"--persist-until {shape.persist_until} is in the past",
                "give a later date: the CA ignores the record after it",
            )
        given["dns_persist.persist_until"] = until
    if shape.wildcard_policy:
        given["dns_persist.wildcard_policy"] = True
    base = method_getter(getters(config, None)[0], AcmeOptions())
    get = lambda key, default: given[key] if key in given else base(key, default)  # noqa: E731
    settings = answer.settings(get, store)
    if not shape.publish or publish is None:
        return NamesCheck(list(answer.diagnose(names, settings) or ()))
    try:
        delegation = dns01.METHOD.settings(base, store)
    except UsageError as exc:  # no target: nowhere to write
        message = f"--publish writes at the delegation target, and {exc.message}"
        raise UsageError(message, exc.hint) from None
    provider = make_provider(delegation, interactive, ask)
    written: list[Challenge] = []

    def write(value: str, domain: str) -> None:
        provider.present(delegation.target, value, domain)
        written.append(Challenge(domain, name, "", "", value))

    done = publish(names, settings, delegation.target, write)
    if written:  # served by every authoritative server before it is checked again
        dns01.DelegationSolver(delegation, provider).wait(written)
    found = list(answer.diagnose(names, settings) or ())
    return NamesCheck(found, done.written, done.delegate)


def _diagnoses(method: ChallengeMethod) -> bool:
    """Whether a method has DNS for `dns check` to diagnose: one with a check of its own
    before ordering (HTTP-01 has none)."""
    return method.check_phase is not None


def checkable() -> list[str]:
    """The methods `dns check --challenge` takes."""
    return [name for name, m in challenges.METHODS.items() if _diagnoses(m)]
