"""The self-managed path: a key and CSR for a CA outside ACME, and the upload of a
certificate (completing such a CSR or brought with its own key)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from certcli import x509 as x
from certcli.domains import check_certificate_names, uncovered, validate_lineage_name
from certcli.errors import InvalidInputError, NotConfirmedError, StoreError, UsageError
from certcli.fingerprints import stored_fingerprints
from certcli.inputs import read_input
from certcli.models import CertInfo, LineageSettings, Mode, rfc3339
from certcli.storage.files import version_files
from certcli.storage.protocol import Storage


@dataclass(frozen=True)
class CsrResult:
    name: str
    domains: tuple[str, ...]
    csr_pem: bytes
    key_path: str  # where the key is kept, as the user is told
    replaced: bool


def create_csr(
    store: Storage,
    name: str,
    domains: list[str],
    key_type: str,
    subject: x.Subject,
    *,
    now: datetime,
    replace: bool = False,
) -> CsrResult:
    """Generate a key and CSR and keep both in `pending/` until the certificate is uploaded."""
    validate_lineage_name(name)
    store.check_key_protection()  # a passphrase that cannot be read: nothing written
    key = x.generate_private_key(key_type)  # before the lock: RSA-4096 takes a while
    store.ensure()
    with store.lock(name):
        existing = store.read_settings(name) if store.exists(name) else None
        if existing and existing.mode is Mode.AUTO:
            raise UsageError(
                f"{name!r} is renewed through ACME; certcli manages its key",
                "choose another --name for a certificate from another CA",
            )
        replaced = store.has_pending(name)
        if replaced and not replace:
            raise UsageError(
                f"{name!r} already has a CSR waiting for its certificate",
                "upload that certificate, or add --replace to discard the waiting key",
            )
        csr_pem = x.make_csr(key, domains, subject)
        if existing is None:
            store.write_settings(LineageSettings(name, tuple(domains), Mode.CUSTOM, key_type))
        key_path = store.write_pending(
            name,
            x.private_key_pem(key),
            csr_pem,
            {"domains": domains, "key_type": key_type, "created": rfc3339(now)},
        )
    return CsrResult(name, tuple(domains), csr_pem, key_path, replaced)


@dataclass(frozen=True)
class UploadPlan:
    """What an upload will change, shown to the user before anything is written."""

    name: str
    certificate: CertInfo
    current: CertInfo | None
    added: tuple[str, ...]
    removed: tuple[str, ...]
    completes_csr: bool
    mode_change: bool

    @property
    def needs_confirmation(self) -> bool:
        return self.current is not None and bool(self.added or self.removed or self.mode_change)


@dataclass(frozen=True)
class UploadResult:
    plan: UploadPlan
    version: int | None  # None when the certificate was already live
    warnings: tuple[str, ...] = ()


def upload(
    store: Storage,
    name: str,
    cert_path: Path,
    key_path: Path | None,
    chain_path: Path | None,
    *,
    now: datetime,
    confirm: Callable[[UploadPlan], bool],
) -> UploadResult:
    """Validate a certificate and install it as the lineage's new live version."""
    validate_lineage_name(name)
    certs = x.parse_certificates(read_input(cert_path, "certificate"), str(cert_path))
    leaf, chain = certs[0], certs[1:]
    if chain_path is not None:
        chain += x.parse_certificates(read_input(chain_path, "chain"), str(chain_path))
    key_data = read_input(key_path, "key") if key_path is not None else None
    info = x.cert_info(leaf)
    _check_validity(info, str(cert_path), now)
    if not info.sans:
        raise InvalidInputError(
            f"{cert_path} has no subjectAltName extension; clients reject such certificates"
        )
    x.check_server_certificate(leaf, str(cert_path))
    check_certificate_names(info.sans, str(cert_path))
    x.check_chain(leaf, chain)
    warnings = _chain_warnings(leaf, chain, cert_path)

    store.ensure()
    with store.lock(name):
        config = store.read_settings(name) if store.exists(name) else None
        current = store.live_info(name) if config else None
        if key_data is None and current and current.fingerprint_sha256 == info.fingerprint_sha256:
            # repeated after `csr` completed: the key is in the store already
            plan = UploadPlan(name, info, current, (), (), False, False)
            return UploadResult(plan, None, warnings)
        pending = store.read_pending(name) if config else None
        key = _matching_key(leaf, key_data, key_path, pending, name)
        completes_csr = pending is not None and key_data is None
        if current and current.fingerprint_sha256 == info.fingerprint_sha256:
            plan = UploadPlan(name, info, current, (), (), completes_csr, False)
            return UploadResult(plan, None, warnings)
        _refuse_duplicate(store, info.fingerprint_sha256)
        if completes_csr:
            required = tuple(pending[2].get("domains", ()))
        else:
            required = config.domains if config else ()
        missing = uncovered(info.sans, required)
        if missing:
            raise InvalidInputError(
                f"{cert_path} does not cover {', '.join(missing)} of {name!r} "
                f"(it covers {', '.join(info.sans)})",
                "get a certificate for all of the lineage's domains",
            )
        plan = UploadPlan(
            name=name,
            certificate=info,
            current=current,
            added=tuple(s for s in info.sans if not current or s not in current.sans),
            removed=tuple(s for s in current.sans if s not in info.sans) if current else (),
            completes_csr=completes_csr,
            mode_change=config is not None and config.mode is Mode.AUTO,
        )
        if plan.needs_confirmation and not confirm(plan):
            raise NotConfirmedError(f"upload to {name!r} cancelled; nothing changed")

        leaf_pem = x.cert_pem(leaf)
        chain_pem = b"".join(x.cert_pem(c) for c in chain)
        # an uploaded certificate: its names and key type; the lineage's settings stay
        base = config if config is not None else LineageSettings(name, info.sans)
        uploaded = dataclasses.replace(
            base, domains=info.sans, mode=Mode.CUSTOM, key_type=info.key_type
        )
        version = store.add_version(
            name,
            version_files(leaf_pem, chain_pem, x.private_key_pem(key)),
            {"certificate": info.to_json(), "source": "upload", "created": rfc3339(now)},
            uploaded,
        )
        if completes_csr:
            try:
                store.clear_pending(name)
            except StoreError as exc:  # installed: the waiting key is a copy of the live one
                warnings += (f"the certificate is installed, but {exc.message}",)
    return UploadResult(plan, version, warnings)


def _chain_warnings(leaf: object, chain: list, cert_path: Path) -> tuple[str, ...]:
    """A certificate from a CA is served with its intermediates: browsers may find them,
    most other clients (curl, Java, Go, mobile apps) fail without them."""
    if chain or x.is_self_signed(leaf):  # type: ignore[arg-type]
        return ()
    return (
        f"{cert_path} holds no intermediate certificates: most TLS clients need them to "
        "trust it; give them with --chain FILE (or after the certificate in --cert)",
    )


def _check_validity(info: CertInfo, source: str, now: datetime) -> None:
    if now >= info.not_after:
        raise InvalidInputError(
            f"{source} expired on {rfc3339(info.not_after)}", "get a current certificate"
        )
    if now < info.not_before:
        # Serving it now would break every client until then.
        raise InvalidInputError(
            f"{source} is not valid until {rfc3339(info.not_before)}",
            "upload it once it is valid",
        )


def _matching_key(
    leaf: object,
    key_data: bytes | None,
    key_path: Path | None,
    pending: tuple[bytes, bytes, dict] | None,
    name: str,
) -> x.PrivateKey:
    public = leaf.public_key()  # type: ignore[attr-defined]
    if key_data is not None:
        key = x.load_private_key(key_data, str(key_path))
        if not x.same_public_key(key.public_key(), public):
            raise InvalidInputError(f"the key in {key_path} does not match the certificate")
        return key
    if pending is None:
        raise UsageError(
            f"--key is required: {name!r} has no CSR waiting for a certificate",
            "give the certificate's private key with --key FILE",
        )
    key = x.load_private_key(pending[0], f"the pending key of {name!r}")
    if not x.same_public_key(key.public_key(), public):
        raise InvalidInputError(
            f"the certificate does not belong to the CSR made for {name!r} "
            f"on {pending[2].get('created', '?')}: its public key differs",
            "upload the certificate your CA issued for that CSR, or give its key with --key",
        )
    return key


def _refuse_duplicate(store: Storage, fingerprint: str) -> None:
    """The same certificate twice in the store is a mistake (a wrong file, a stale copy)."""
    # a damaged lineage is its own problem (status shows it), not this upload's
    for found, other, version in stored_fingerprints(store, skip_unreadable=True):
        if found == fingerprint:
            raise InvalidInputError(
                f"this certificate is already stored as {other!r} version {version}",
                "check that you picked the right file",
            )
