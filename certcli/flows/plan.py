"""The plan of one issuance: every setting resolved from the command line, the lineage,
config.toml and the environment, before anything is sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from certcli import challenges
from certcli.caa import CaaSettings
from certcli.caa import settings as caa_settings
from certcli.challenges import ChallengeMethod, Get, check_identifiers
from certcli.config import LETSENCRYPT, LETSENCRYPT_STAGING, resolve_server, setting
from certcli.errors import UsageError
from certcli.models import DEFAULT_KEY_TYPE, LineageSettings
from certcli.storage.protocol import Storage

if TYPE_CHECKING:
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
    challenge: str | None = None  # a challenge method's name; else the lineage's, else by webroot
    deploy_hook: str | None = None  # kept in lineage.toml as hooks.deploy
    profile: str | None = None  # an ACME profile the CA offers; kept for renewals


@dataclass(frozen=True)
class Plan:
    """Everything one issuance needs, resolved."""

    ca: CaSettings
    key_type: str
    webroot: str | None
    preferred_chain: str | None
    challenge: str = challenges.DEFAULT  # the challenge method's name
    challenge_settings: Any = None  # the method's own (WebrootSettings, DnsSettings)
    deploy_hook: str | None = None
    profile: str | None = None
    caa: CaaSettings | None = None  # None: no CAA check before ordering

    @property
    def method(self) -> ChallengeMethod:
        return challenges.method(self.challenge)

    def lineage_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"server": self.ca.directory_url, "challenge": self.challenge}
        extra |= self.method.pinned(self.challenge_settings)
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
    agreed = plan.ca.agree_tos or store.read_account(LETSENCRYPT) is not None
    staging = replace(plan.ca, directory_url=LETSENCRYPT_STAGING, agree_tos=agreed)
    return replace(plan, ca=staging)


def make_plan(
    options: AcmeOptions,
    config: dict[str, Any],
    lineage: LineageSettings | None,
    store: Storage | None = None,
) -> Plan:
    """Resolve every setting of one issuance; the store holds the installation id that
    names the default delegation target."""
    get, _ = getters(config, lineage)
    ca = ca_settings(options, config, lineage)
    webroot = get("webroot", options.webroot)
    answer_get = method_getter(get, options)
    answer = challenges.method(challenges.chosen(options.challenge, answer_get))
    answer_settings = answer.settings(answer_get, store)
    plan = Plan(
        ca=ca,
        key_type=get("key_type", options.key_type, DEFAULT_KEY_TYPE),
        webroot=webroot,
        preferred_chain=get("preferred_chain", options.preferred_chain),
        challenge=answer.name,
        challenge_settings=answer_settings,
        deploy_hook=options.deploy_hook,
        profile=get("profile", options.profile),
        caa=caa_settings(answer_get),
    )
    if lineage is not None:
        check_identifiers(lineage.domains, plan.challenge, lineage.name)
    return plan


def challenge_names() -> list[str]:
    """Every challenge method's name, as `--challenge` takes it."""
    return challenges.names()


def asked_challenge(challenge: str | None, *, dns: bool, webroot: bool) -> str | None:
    """The method the command line asks for: `--challenge`, else DNS-01 for `--dns` or
    `--wildcard`, else HTTP-01 for `--webroot`, else None (the lineage's, or config's);
    a usage error when they contradict each other."""
    if dns and webroot:
        raise UsageError("--webroot (HTTP-01) and --dns/--wildcard (DNS-01) exclude each other")
    if challenge is None:
        return challenges.DNS_DEFAULT if dns else (challenges.DEFAULT if webroot else None)
    name = challenges.method(challenge).name  # an unknown name is refused here
    if webroot and name != challenges.DEFAULT:
        raise UsageError(f"--webroot answers {challenges.DEFAULT}: it excludes --challenge {name}")
    if dns and name == challenges.DEFAULT:
        raise UsageError(f"--dns and --wildcard answer over DNS: they exclude --challenge {name}")
    return name


def method_getter(get: Callable[..., Any], options: AcmeOptions) -> Get:
    """The getter a challenge method reads its settings with: the command line's webroot
    and server before the lineage's and config.toml's."""
    given = {"webroot": options.webroot, "server": options.server}
    return lambda key, default: get(key, given.get(key), default)


def lineage_getter(config: dict[str, Any], lineage: LineageSettings) -> Get:
    """The getter a lineage's method reads its settings with, nothing from the command line."""
    return method_getter(getters(config, lineage)[0], AcmeOptions())
