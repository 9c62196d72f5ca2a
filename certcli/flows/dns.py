"""The challenge method's check before ordering (DNS-01's CNAME Check), what it found kept
in state.json for `status`; and the diagnoses `status --check-dns` and `dns check` show."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from certcli import challenges
from certcli.challenges import ChallengeMethod, dns01
from certcli.domains import order_identifiers
from certcli.errors import DnsNotReadyError
from certcli.flows.plan import AcmeOptions, Plan, lineage_getter, make_plan
from certcli.models import LineageSettings
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


def check_names(store: Storage, config: dict[str, Any], names: list[str]) -> list[Diagnosis]:
    """The delegation diagnosis of names alone, before (or without) an order."""
    plan = make_plan(AcmeOptions(challenge=dns01.METHOD.name), config, None, store)
    return dns01.diagnose(names, plan.challenge_settings)
