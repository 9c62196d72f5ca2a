"""The plan of one issuance: every setting resolved from the command line, the lineage,
config.toml and the environment, before anything is sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certcli.accounts import load_account
from certcli.config import LETSENCRYPT, LETSENCRYPT_STAGING, resolve_server, setting
from certcli.domains import is_ip, normalize_dns_name
from certcli.errors import UsageError
from certcli.flows.session import installation_id
from certcli.models import DEFAULT_KEY_TYPE, LineageSettings
from certcli.storage.protocol import Storage

if TYPE_CHECKING:
    from certcli.challenges.dns01 import DnsSettings
    from certcli.engine import CaSettings


@dataclass(frozen=True)
class AcmeOptions:
    """What the command line says; None means "from the environment, lineage or config".
    A field named as one of engine.CaSettings' reaches it through ca_settings, resolved or
    as given: a new CA setting is declared there and here, never listed a third time."""

    server: str | None = None
    email: str | None = None
    agree_tos: bool = False
    eab_kid: str | None = None
    eab_hmac_key: str | None = field(default=None, repr=False)  # a secret: never shown
    ca_bundle: str | None = None
    key_type: str | None = None
    webroot: str | None = None
    preferred_chain: str | None = None
    challenge: str | None = None  # "http-01" or "dns-01"; else the lineage's, else by webroot
    deploy_hook: str | None = None  # kept in lineage.toml as hooks.deploy
    profile: str | None = None  # an ACME profile the CA offers; kept for renewals


@dataclass(frozen=True)
class Plan:
    """Everything one issuance needs, resolved."""

    ca: CaSettings
    key_type: str
    webroot: str | None
    preferred_chain: str | None
    challenge: str = "http-01"
    dns: DnsSettings | None = None
    deploy_hook: str | None = None
    profile: str | None = None

    def lineage_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"server": self.ca.directory_url, "challenge": self.challenge}
        if self.dns is not None:
            extra["dns"] = {"target": self.dns.target}
        if self.deploy_hook:
            extra["hooks"] = {"deploy": self.deploy_hook}
        if self.profile:
            extra["profile"] = self.profile
        for key, value in (
            ("webroot", self.webroot),
            ("preferred_chain", self.preferred_chain),
            ("ca_bundle", self.ca.ca_bundle),
        ):
            if value:
                extra[key] = value
        return extra


def getters(
    config: dict[str, Any], lineage: LineageSettings | None
) -> tuple[Callable[..., Any], Callable[[str, float], float]]:
    """Getters for (key, flag value, default) and for a number of seconds."""
    table = lineage.to_toml() if lineage else None

    def get(key: str, cli: Any = None, default: Any = None) -> Any:
        return setting(key, cli, config, default, table)

    def seconds(key: str, default: float) -> float:
        return float(get(key, None, default))  # checked by its kind, or the default

    return get, seconds


def ca_settings(
    options: AcmeOptions, config: dict[str, Any], lineage: LineageSettings | None = None
) -> CaSettings:
    """The CA's settings: the options' own fields as given (agree_tos, EAB), and those a
    lineage or config.toml may also set, resolved."""
    from certcli.engine import CaSettings  # the ACME stack: only once a CA is needed

    get, seconds = getters(config, lineage)
    given = {f.name for f in fields(options)}
    resolved = {
        "directory_url": resolve_server(get("server", options.server, LETSENCRYPT)),
        "email": get("email", options.email),
        "ca_bundle": get("ca_bundle", options.ca_bundle),
        "timeout": seconds("acme.timeout", 300),
        "network_timeout": seconds("acme.network_timeout", 30),
    }
    as_given = {f.name: getattr(options, f.name) for f in fields(CaSettings) if f.name in given}
    return CaSettings(**(as_given | resolved))


def rehearsal(store: Storage, plan: Plan) -> Plan:
    """The plan of a dry run: at Let's Encrypt, its staging CA (as certbot's dry run does),
    so that rehearsals never count against production's rate limits (five duplicate
    certificates a week would block the real renewal). Whoever has an account at production
    has accepted the terms that staging shares."""
    if plan.ca.directory_url != LETSENCRYPT:
        return plan
    agreed = plan.ca.agree_tos or load_account(store, LETSENCRYPT) is not None
    staging = replace(plan.ca, directory_url=LETSENCRYPT_STAGING, agree_tos=agreed)
    return replace(plan, ca=staging)


def make_plan(
    options: AcmeOptions,
    config: dict[str, Any],
    lineage: LineageSettings | None,
    root: Path | None = None,
) -> Plan:
    """Resolve every setting of one issuance; `root` (the store) holds the installation id
    that names the default delegation target."""
    get, seconds = getters(config, lineage)
    ca = ca_settings(options, config, lineage)
    webroot = get("webroot", options.webroot)
    challenge = challenge_of(get, options)
    if challenge not in ("http-01", "dns-01"):
        raise UsageError(
            "no way to answer the CA's challenge",
            "give --webroot DIR (HTTP-01) or --dns (DNS-01 by CNAME delegation)",
        )
    dns = None
    if challenge == "dns-01":
        from certcli.challenges.dns01 import DnsSettings
        from certcli.dnscheck import parse_servers  # dnspython: only for DNS-01

        dns = DnsSettings(
            provider=str(get("dns.provider", None, "rfc2136")),
            target=_delegation_target(get, root),
            resolvers=parse_servers(get("dns.resolvers", None)),
            propagation_timeout=seconds("dns.propagation_timeout", 120),
            query_timeout=seconds("dns.query_timeout", 5),
            authoritative=parse_servers(get("dns.authoritative", None)),
            zone=get("dns.rfc2136.zone", None) or get("dns.zone", None),
            rfc2136={k: get(f"dns.rfc2136.{k}", None) for k in _RFC2136_KEYS},
            hook={k: get(f"dns.hook.{k}", None) for k in ("auth", "cleanup", "timeout")},
        )
    plan = Plan(
        ca=ca,
        key_type=get("key_type", options.key_type, DEFAULT_KEY_TYPE),
        webroot=webroot,
        preferred_chain=get("preferred_chain", options.preferred_chain),
        challenge=challenge,
        dns=dns,
        deploy_hook=options.deploy_hook,
        profile=get("profile", options.profile),
    )
    if lineage is not None:
        check_challenge(lineage.domains, challenge, lineage.name)
    return plan


def challenge_of(get: Callable[..., Any], options: AcmeOptions) -> str | None:
    """The challenge type asked for: the option, else the setting, else HTTP-01 when there
    is a webroot."""
    webroot = get("webroot", options.webroot)
    return options.challenge or get("challenge", None, "http-01" if webroot else None)


def check_challenge(
    domains: list[str] | tuple[str, ...], challenge: str | None, name: str | None = None
) -> None:
    """A wildcard can only be validated over DNS-01, an IP address only over HTTP-01: an
    order that mixes them the other way is refused before it is placed."""
    answers = f"{name!r} answers" if name else "this order answers"
    wildcard = next((d for d in domains if d.startswith("*.")), None)
    if wildcard is not None and challenge != "dns-01":
        raise UsageError(
            f"{wildcard} needs DNS-01, and {answers} HTTP-01 (--webroot)",
            "use --dns or --wildcard (DNS-01 through the CNAME delegation) instead"
            + (f"; `certcli issue ... --name {name} --dns --expand` moves it" if name else ""),
        )
    address = next((d for d in domains if is_ip(d)), None)
    if address is not None and challenge == "dns-01":
        raise UsageError(
            f"{address} is an IP address: it needs HTTP-01, and {answers} DNS-01 (--dns)",
            "use --webroot DIR for IP addresses, in a lineage of their own",
        )


_RFC2136_KEYS = ("server", "tsig_name", "tsig_secret", "tsig_algorithm")


def _delegation_target(get: Callable[..., Any], root: Path | None) -> str:
    """`[dns] target`, else one name per installation under `[dns] zone`."""
    target = get("dns.target", None)
    if target:
        return normalize_dns_name(str(target))
    zone = get("dns.zone", None) or get("dns.rfc2136.zone", None)
    if not zone or root is None:
        raise UsageError(
            "DNS-01 needs a delegation target",
            "set [dns] target (the name every _acme-challenge CNAMEs to) or [dns] zone",
        )
    return f"{installation_id(root)}.{normalize_dns_name(str(zone))}"
