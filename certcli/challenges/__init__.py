"""Challenge methods: how certcli proves control of a name, one module per method
(`http01`: a webroot; `dns01`: CNAME delegation), behind one registry. Nothing outside this
package branches on a challenge type: it asks the method. The registry is every module of this
package that defines `METHOD`, so that a new method is one new module.

A method's solver is a small present / wait / cleanup unit that the engine drives for all
of an order's challenges at once (prepare all, answer all, clean up all, even on failure)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from certcli import persist
from certcli.errors import UsageError
from certcli.models import Account, Phase

if TYPE_CHECKING:
    from certcli.storage.protocol import Storage


@dataclass(frozen=True)
class Challenge:
    """One challenge to satisfy, in the terms a solver needs."""

    identifier: str  # the domain (with `*.` for a wildcard) or IP address
    type: str  # the method's name: "http-01", "dns-01"
    token: str
    key_authorization: str  # what an HTTP-01 file holds
    validation: str  # what the CA checks: the key authorization, or the DNS-01 TXT value
    #: The CA's challenge object as JSON text, for a type acme does not know (its own
    #: fields: dns-persist-01's issuerDomainNames); text, so that a Challenge stays hashable.
    offered: str = ""


class Solver(Protocol):
    challenge_type: str

    def check(self) -> None:
        """Prove now, before any order, that presenting will work (a writable webroot,
        DNS credentials the server accepts)."""

    def present(self, challenges: list[Challenge]) -> None:
        """Make every challenge answerable (write files, add TXT records)."""

    def wait(self, challenges: list[Challenge]) -> None:
        """Return once the CA can see them (propagation); raise when it never will."""

    def cleanup(self, challenges: list[Challenge]) -> None:
        """Remove what `present` added, and only that. Never raises."""


#: A setting's value (command line, environment, lineage, config), or the default given.
Get = Callable[[str, Any], Any]


class ChallengeMethod(Protocol):
    name: str  # as ACME names it: "http-01"
    wildcards: bool  # can validate `*.example.com`
    ip_addresses: bool  # can validate an IP address
    check_phase: Phase | None  # the phase shown while `check` runs, if it has its own
    wait_phase: Phase | None  # the phase shown while `Solver.wait` runs, if it has its own
    secret_keys: tuple[str, ...]  # its settings that are secrets (never shown)

    def settings(self, get: Get, store: Storage | None) -> Any:
        """Its settings, typed; the store may name things once per store (its
        installation id)."""

    def solver(
        self, settings: Any, leftovers: Path, interactive: bool, ask: Callable[[str], None]
    ) -> Solver:
        """Its solver; what it leaves outside the store is journalled under `leftovers`."""

    def check(self, identifiers: Sequence[str], settings: Any) -> Sequence[Any] | None:
        """Raise now, before any order, when validation cannot work; returns what it found
        (the DNS diagnoses that the state keeps), or None when it finds nothing to keep.
        A DnsNotReadyError carries what it found all the same."""

    def diagnose(self, identifiers: Sequence[str], settings: Any) -> Sequence[Any] | None:
        """What `status --check-dns` shows of each SAN, or None when there is nothing."""

    def cache(self, found: Sequence[Any], settings: Any, now: datetime) -> dict[str, Any]:
        """What state.json keeps of what `check` or `diagnose` found at `now` (the SAN DNS
        cache that `status` shows without asking DNS)."""

    def pinned(self, settings: Any) -> dict[str, Any]:
        """The settings a lineage keeps so that its renewals answer as its issuance did
        (the delegation target its CNAMEs name), as lineage.toml keys."""

    def hint(self, settings: Any) -> str | None:
        """The next step a failed validation suggests."""

    def refuse(self, domains: Sequence[str], answers: str, name: str | None) -> None:
        """Raise when a name is one it cannot validate (a wildcard, an IP address)."""

    def sweep(self, leftovers: Path) -> None:
        """Remove what killed runs left behind; never raises."""

    def describe(self, webroot: str | None) -> str:
        """How a lineage answers, in a sentence of `import`'s plan."""


#: The method a webroot implies when none is asked for.
DEFAULT = "http-01"
#: The method `--dns` and `--wildcard` imply when none is asked for.
DNS_DEFAULT = "dns-01"


@dataclass(frozen=True)
class CaFacts:
    """What the store knows of the CA a lineage uses, before asking it anything: our
    account's URL there (dns-account-01's label, dns-persist-01's record and RFC 8657 CAA
    name it) and the CA's CAA identities from its kept directory (`meta.caaIdentities`,
    which are also its dns-persist-01 issuer names)."""

    directory_url: str
    account: Account | None = field(repr=False)  # None: none there yet (`account register`)
    caa_identities: tuple[str, ...]  # empty: unknown (no kept directory) or none announced
    meta: dict[str, Any] = field(default_factory=dict)  # the directory's whole `meta`

    @property
    def account_uri(self) -> str | None:
        return self.account.uri if self.account else None


#: How old a kept directory may be and still name the CA's identities (they rarely change).
FACTS_MAX_AGE = 30 * 86400


def ca_facts(get: Get, store: Storage | None) -> CaFacts:
    """The CA's facts for the server a getter resolves (`server`, else Let's Encrypt)."""
    from certcli.config import LETSENCRYPT, resolve_server

    url = resolve_server(str(get("server", None) or LETSENCRYPT))
    account = store.read_account(url) if store is not None else None
    directory = store.read_directory(url, FACTS_MAX_AGE) if store is not None else None
    meta = directory.get("meta") if isinstance(directory, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    identities = meta.get("caaIdentities")
    # the CA's words become records the user adds: only the names that are domain names
    found = tuple(
        i.lower()
        for i in (identities if isinstance(identities, list) else ())
        if isinstance(i, str) and persist.is_issuer_name(i.lower())
    )
    return CaFacts(url, account, found, meta)


def _registered() -> dict[str, ChallengeMethod]:
    """Every module here that defines `METHOD`, the default first, then by name. The method
    modules import this one only to type their solvers: no cycle at import."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "METHOD"):
            found.append(module.METHOD)
    found.sort(key=lambda m: (m.name != DEFAULT, m.name))
    return {m.name: m for m in found}


METHODS: dict[str, ChallengeMethod] = _registered()


def names() -> list[str]:
    return list(METHODS)


def method(name: str | None) -> ChallengeMethod:
    """The method of this name; a usage error when there is none."""
    found = METHODS.get(name or "")
    if found is None and name:
        raise UsageError(f"unknown challenge method {name!r}", f"use one of: {', '.join(METHODS)}")
    if found is None:
        raise UsageError(
            "no way to answer the CA's challenge",
            "give --webroot DIR (HTTP-01) or --dns (DNS-01 by CNAME delegation)",
        )
    return found


def chosen(asked: str | None, get: Get) -> str | None:
    """The method asked for: the option, else the setting, else the default when there is
    a webroot (`get` knows the command line's webroot)."""
    return asked or get("challenge", DEFAULT if get("webroot", None) else None)


def check_identifiers(
    domains: Sequence[str], challenge: str | None, name: str | None = None
) -> None:
    """Refuse, before any order, a name the lineage's method cannot validate (a wildcard
    over HTTP-01, an IP address over DNS-01); with no method, as the default would."""
    answers = f"{name!r} answers" if name else "this order answers"
    METHODS.get(challenge or "", METHODS[DEFAULT]).refuse(domains, answers, name)
