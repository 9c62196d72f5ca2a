"""Frozen value types shared by the store, the engine and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


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


class SslStatus(StrEnum):
    COVERED = "covered"
    NOT_COVERED = "not_covered"


KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
DEFAULT_KEY_TYPE = "ec-p256"


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


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


@dataclass(frozen=True)
class LineageConfig:
    """The contents of lineage.toml. Keys certcli does not know are kept in `extra`."""

    name: str
    domains: tuple[str, ...]
    mode: Mode
    key_type: str = DEFAULT_KEY_TYPE
    extra: dict[str, Any] = field(default_factory=dict)

    def to_toml(self) -> dict[str, Any]:
        return {
            **self.extra,
            "name": self.name,
            "domains": list(self.domains),
            "mode": self.mode.value,
            "key_type": self.key_type,
        }

    @classmethod
    def from_toml(cls, data: dict[str, Any], where: str = "lineage.toml") -> LineageConfig:
        """The lineage's settings, each checked by type (`where` names the file in the
        StoreError a wrong one raises)."""
        from certcli.config import check_settings
        from certcli.domains import spaced
        from certcli.errors import StoreError

        def wrong(key: str, what: str) -> StoreError:
            return StoreError(
                f"{key} in {where} must be {what}, not {data.get(key)!r}", f"fix it in {where}"
            )

        known = {"name", "domains", "mode", "key_type"}
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
        extra = {k: v for k, v in data.items() if k not in known}
        check_settings(extra, where)
        return cls(
            name=name,
            domains=tuple(domains),
            mode=Mode(data.get("mode", Mode.AUTO)),
            key_type=data.get("key_type", DEFAULT_KEY_TYPE),
            extra=extra,
        )
