"""Frozen value types shared by the store, the engine and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from certcli import keytypes


class Mode(StrEnum):
    AUTO = "auto"  # obtained and renewed through ACME
    CUSTOM = "custom"  # uploaded; never renewed, only warned about


class LineageStatus(StrEnum):
    """Ordered from the most to the least urgent; `status` shows the first that holds."""

    DAMAGED = "damaged"  # a file of the lineage cannot be read; the others are unaffected
    EXPIRED = "expired"
    FAILED = "failed"
    DNS_MISSING = "dns_missing"
    DNS_WRONG = "dns_wrong"
    DNS_DUPLICATE = "dns_duplicate"
    MISMATCH = "mismatch"  # the live certificate misses a domain (often the DNS's doing)
    EXPIRING = "expiring"
    PENDING = "pending"
    ACTIVE = "active"


class Phase(StrEnum):
    """Where an attempt is, as state.json's `phase` and the progress lines name it."""

    QUEUED = "Queued"
    PENDING = "Pending"
    STARTING = "Starting"
    CNAME_CHECK = "CNAME Check"
    PERSIST_CHECK = "Persist Check"  # dns-persist-01: the published record, before ordering
    ORDERING = "Ordering"
    WAITING_FOR_DNS = "Waiting for DNS"
    VALIDATING = "Validating"
    COMPLETED = "Completed"
    FAILED = "Failed"


class Action(StrEnum):
    """What a command did to a lineage, as its outcome's `action` (and the JSON) names it."""

    ISSUED = "issued"
    RENEWED = "renewed"
    DRY_RUN = "dry_run"
    FAILED = "failed"
    NOT_DUE = "not_due"
    SKIPPED = "skipped"
    BACKOFF = "backoff"
    DEPLOYED = "deployed"
    KEPT = "kept"
    IMPORTED = "imported"


class SslStatus(StrEnum):
    COVERED = "covered"
    NOT_COVERED = "not_covered"


DEFAULT_KEY_TYPE = keytypes.DEFAULT_KEY_TYPE


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Account:
    """An ACME account as the store keeps it: one per CA directory URL."""

    directory: str
    uri: str
    contact: tuple[str, ...]
    terms_of_service: str | None
    created: str
    key_pem: bytes

    @classmethod
    def from_json(cls, data: dict[str, Any], key_pem: bytes) -> Account:
        """The account from what to_json gave, and its key (KeyError, TypeError for a
        document that is not one)."""
        return cls(
            directory=data["directory"],
            uri=data["uri"],
            contact=tuple(data.get("contact", ())),
            terms_of_service=data.get("terms_of_service"),
            created=data["created"],
            key_pem=key_pem,
        )

    def to_json(self) -> dict[str, Any]:
        """Every field but the key: account.json's content, and what `account --json`
        and a PostgreSQL store's row show."""
        return {
            "directory": self.directory,
            "uri": self.uri,
            "contact": list(self.contact),
            "terms_of_service": self.terms_of_service,
            "created": self.created,
        }


@dataclass(frozen=True)
class CertInfo:
    """What certcli needs to know of a certificate, kept in each version's meta.json so
    that `status` never parses X.509."""

    subject_cn: str | None
    sans: tuple[str, ...]
    issuer: str
    not_before: datetime
    not_after: datetime
    serial: str
    fingerprint_sha256: str
    key_type: str

    def to_json(self) -> dict[str, Any]:
        return {
            "subject_cn": self.subject_cn,
            "sans": list(self.sans),
            "issuer": self.issuer,
            "not_before": rfc3339(self.not_before),
            "not_after": rfc3339(self.not_after),
            "serial": self.serial,
            "fingerprint_sha256": self.fingerprint_sha256,
            "key_type": self.key_type,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CertInfo:
        """Raises KeyError, TypeError or ValueError for what certcli did not write."""
        sans = data["sans"]
        if not isinstance(sans, list) or not all(isinstance(s, str) for s in sans):
            raise TypeError("sans must be a list of names")
        for key in ("issuer", "not_before", "not_after", "serial", "fingerprint_sha256"):
            if not isinstance(data[key], str):
                raise TypeError(f"{key} must be a string")
        return cls(
            subject_cn=data.get("subject_cn"),
            sans=tuple(data["sans"]),
            issuer=data["issuer"],
            not_before=parse_rfc3339(data["not_before"]),
            not_after=parse_rfc3339(data["not_after"]),
            serial=data["serial"],
            fingerprint_sha256=data["fingerprint_sha256"],
            key_type=data.get("key_type", "unknown"),
        )


#: The settings certcli writes in lineage.toml besides the four above, by their path in the
#: file and their field; in the order a new lineage.toml has them.
_SETTINGS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("server",), "server"),
    (("challenge",), "challenge"),
    (("dns", "target"), "dns_target"),
    (("hooks", "deploy"), "deploy_hook"),
    (("profile",), "profile"),
    (("webroot",), "webroot"),
    (("preferred_chain",), "preferred_chain"),
    (("ca_bundle",), "ca_bundle"),
)
_TABLES = ("dns", "hooks")  # the tables that hold one of them
_FIXED = ("name", "domains", "mode", "key_type")  # every lineage has them


@dataclass(frozen=True)
class LineageSettings:
    """The contents of lineage.toml, typed.

    `extra` holds what certcli does not write itself (another setting of config.toml given
    for this lineage alone, such as hooks.pre or dns.provider, or a key of a newer
    certcli), as the file has it. `order` is the order of the file's keys, so that writing
    back what was read gives the same file.
    """

    name: str
    domains: tuple[str, ...]
    mode: Mode = Mode.AUTO
    key_type: str = DEFAULT_KEY_TYPE
    server: str | None = None  # the CA's directory URL
    challenge: str | None = None  # "http-01" or "dns-01"
    dns_target: str | None = None  # dns.target: where the _acme-challenge CNAMEs point
    deploy_hook: str | None = None  # hooks.deploy
    profile: str | None = None
    webroot: str | None = None
    preferred_chain: str | None = None
    ca_bundle: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    order: tuple[tuple[str, ...], ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def from_toml(cls, data: dict[str, Any], where: str = "lineage.toml") -> LineageSettings:
        """The lineage's settings, each checked by type (`where` names the file in the
        StoreError a wrong one raises)."""
        from certcli.config import check_settings
        from certcli.domains import spaced
        from certcli.errors import StoreError

        def wrong(key: str, what: str) -> StoreError:
            return StoreError(
                f"{key} in {where} must be {what}, not {data.get(key)!r}", f"fix it in {where}"
            )

        name, domains = data.get("name"), data.get("domains")
        if not isinstance(name, str) or not name:
            raise wrong("name", "the lineage's name")
        if (
            not isinstance(domains, list)
            or not domains
            or not all(isinstance(d, str) for d in domains)
        ):
            raise wrong("domains", "a list of names")
        for domain in domains:  # edited by hand: a line break would break every renewal
            if spaced(domain):
                raise StoreError(
                    f"domains in {where} holds {domain!r}: a space or a control character",
                    f"fix it in {where}",
                )
        if data.get("mode", Mode.AUTO) not in [m.value for m in Mode]:
            raise wrong("mode", " or ".join(repr(m.value) for m in Mode))
        if not isinstance(data.get("key_type", DEFAULT_KEY_TYPE), str):
            raise wrong("key_type", "text")
        table = {k: v for k, v in data.items() if k not in _FIXED}
        check_settings(table, where)
        mode = Mode(data.get("mode", Mode.AUTO))
        return cls.build(name, tuple(domains), mode, data.get("key_type", DEFAULT_KEY_TYPE), table)

    @classmethod
    def build(
        cls,
        name: str,
        domains: tuple[str, ...],
        mode: Mode,
        key_type: str,
        table: Mapping[str, Any],
    ) -> LineageSettings:
        """The settings of a lineage.toml-shaped `table` (unchecked; its name, domains, mode
        and key_type, if any, give way to the arguments): the known keys become fields, the
        others `extra`, and the order of its keys is kept."""
        rest = {k: v for k, v in table.items() if k not in _FIXED}
        order: list[tuple[str, ...]] = []
        for key, value in list(rest.items()):
            order.append((key,))
            if key in _TABLES and isinstance(value, dict):
                order += [(key, sub) for sub in value]
        values: dict[str, Any] = {}
        for path, attr in _SETTINGS:
            inner = rest.get(path[0]) if len(path) == 2 else rest
            if isinstance(inner, dict) and isinstance(inner.get(path[-1]), str):
                if len(path) == 2:
                    inner = rest[path[0]] = dict(inner)  # a copy: `table` stays as it was
                values[attr] = inner.pop(path[-1])
                if len(path) == 2 and not inner:
                    del rest[path[0]]
        return cls(name, domains, mode, key_type, extra=rest, order=tuple(order), **values)

    def to_toml(self) -> dict[str, Any]:
        """The table tomli_w writes: the keys in the order read, then the new ones, then the
        four every lineage has (as certcli has always written them)."""
        values: dict[tuple[str, ...], Any] = {}
        for key, value in self.extra.items():
            if key in _TABLES and isinstance(value, dict):
                values[(key,)] = {}
                values.update(((key, sub), v) for sub, v in value.items())
            else:
                values[(key,)] = value
        for path, attr in _SETTINGS:
            if getattr(self, attr) is not None:
                values[path] = getattr(self, attr)
        table: dict[str, Any] = {}
        for path in (*(p for p in self.order if p in values), *values):
            if len(path) == 1:
                table.setdefault(path[0], values[path])
            else:
                table.setdefault(path[0], {})[path[1]] = values[path]
        return {
            **table,
            "name": self.name,
            "domains": list(self.domains),
            "mode": self.mode.value,
            "key_type": self.key_type,
        }


#: The keys of state.json certcli reads, and their JSON types (null or absent: not set).
STATE_TYPES: dict[str, type] = {
    **dict.fromkeys(("phase", "phase_at", "last_attempt", "last_success"), str),
    **dict.fromkeys(("last_error", "last_error_kind", "next_attempt"), str),
    "failures": int,
    **dict.fromkeys(
        ("dns", "ari", "revoked", "deploy_failed", "expiry_notice", "mismatch_notice"), dict
    ),
}


def is_state_value(key: str, value: object) -> bool:
    """Whether `value` has the type state.json's `key` holds (a bool is no number)."""
    kind = STATE_TYPES.get(key)
    return kind is not None and isinstance(value, kind) and not isinstance(value, bool)


@dataclass(frozen=True)
class LineageState:
    """The contents of state.json: what certcli recorded of a lineage's attempts. None is
    "not recorded" (the key is absent). Keys certcli does not know, and values not of their
    key's type, stay in `extra` and are written back as read; the moments are RFC 3339 text
    as written, so the same content gives the same JSON."""

    phase: Phase | str | None = None  # a Phase; any text from an older certcli
    phase_at: str | None = None
    last_attempt: str | None = None
    last_success: str | None = None
    last_error: str | None = None
    last_error_kind: str | None = None  # an ErrorKind value, e.g. "dns_not_ready"
    next_attempt: str | None = None  # no attempt before it (backoff)
    failures: int | None = None  # attempts failed in a row
    dns: dict[str, Any] | None = None  # the last CNAME Check: target and sans
    # the CA's renewal window: url, start, end, fraction, next_check, explanation_url
    ari: dict[str, Any] | None = None
    revoked: dict[str, Any] | None = None  # serial, reason, at
    deploy_failed: dict[str, Any] | None = None  # version, at, error
    expiry_notice: dict[str, Any] | None = None  # the last notice sent, not to repeat it
    mismatch_notice: dict[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LineageState:
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if not is_state_value(key, value):
                extra[key] = value
            elif key == "phase" and value in _PHASES:
                values[key] = Phase(value)
            else:
                values[key] = value
        return cls(**values, extra=extra)

    def cleared(self, *keys: str) -> LineageState:
        """The state without these keys: neither their field nor a value kept in `extra`
        (a null written by hand)."""
        extra = {k: v for k, v in self.extra.items() if k not in keys}
        return replace(self, **dict.fromkeys(keys), extra=extra)

    def to_json(self) -> dict[str, Any]:
        data = dict(self.extra)
        for key in STATE_TYPES:
            value = getattr(self, key)
            if value is not None:
                data[key] = str(value) if key == "phase" else value
        return data


_PHASES = frozenset(p.value for p in Phase)

#: What Store.update_state applies: the state read, to the state to write.
StateUpdate = Callable[[LineageState], LineageState]
