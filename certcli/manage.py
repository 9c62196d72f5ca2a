"""Managing what exists: deleting and revoking lineages, the ACME account, config.toml."""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from certcli.domains import validate_lineage_name
from certcli.errors import NotFoundError, StoreError, UsageError
from certcli.models import rfc3339
from certcli.store import KEY_MODE, Store, atomic_write, fsync_dir

#: RFC 5280 reason codes that ACME CAs accept for revocation.
REVOCATION_REASONS = {
    "unspecified": 0,
    "keyCompromise": 1,
    "affiliationChanged": 3,
    "superseded": 4,
    "cessationOfOperation": 5,
}
_KEY = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")  # fullmatch: never a trailing newline


def delete_lineage(store: Store, name: str) -> None:
    """Remove a lineage whole: renamed away in one step, then erased."""
    validate_lineage_name(name)
    with store.lock(name):
        directory = store.require(name)
        doomed = store.certs_dir / f".{name}.deleted.partial.{os.getpid()}"
        try:
            os.rename(directory, doomed)
            fsync_dir(store.certs_dir)
            shutil.rmtree(doomed)
        except OSError as exc:
            raise StoreError(f"cannot delete {directory}: {exc.strerror}") from None
        store.remove_lineage_lock(name)


def reason_name(reason: str) -> str:
    """The RFC 5280 name of a revocation reason given by name (any case) or code."""
    for label, code in REVOCATION_REASONS.items():
        if reason.lower() in (label.lower(), str(code)):
            return label
    raise UsageError(
        f"unknown revocation reason {reason!r}", f"choose one of: {', '.join(REVOCATION_REASONS)}"
    )


def mark_revoked(store: Store, name: str, serial: str, reason: str) -> None:
    """Remember the revocation: the lineage is then due for renewal."""
    state = store.read_state(name)
    state["revoked"] = {"serial": serial, "reason": reason, "at": rfc3339(datetime.now(UTC))}
    store.write_state(name, state)


@dataclass(frozen=True)
class Revocation:
    name: str
    serial: str
    reason: str  # the RFC 5280 name
    already: bool = False  # the CA had revoked it before (an earlier run, say): recorded now

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "serial": self.serial,
            "reason": self.reason,
            "revoked": True,
            "already_revoked": self.already,
        }


def revoke(store: Store, config: dict[str, Any], name: str, reason: str) -> Revocation:
    """Revoke a lineage's live certificate at its CA and record it, under the lineage's
    lock. The store must be able to record it before the CA is asked: a revocation the
    store forgot would leave a revoked certificate live and not due."""
    from certcli.engine import Ca
    from certcli.issuance import AcmeOptions, ca_settings

    label = reason_name(reason)
    store.require(validate_lineage_name(name))  # an unknown name leaves no lock file behind
    with store.lock(name):
        lineage = store.read_config(name)
        info = store.live_info(name)
        if info is None:
            raise UsageError(f"{name!r} has no certificate to revoke")
        cert_pem = store.read_live_file(name, "cert.pem")
        store.write_state(name, store.read_state(name))  # writable? (else StoreError, exit 5)
        settings = ca_settings(AcmeOptions(), config, lineage)
        ca = Ca(store, settings, lambda _url: False, create=False)
        revoked_now = ca.revoke(cert_pem, REVOCATION_REASONS[label])
        mark_revoked(store, name, info.serial, label)
    return Revocation(name, info.serial, label, already=not revoked_now)


# -- config.toml ------------------------------------------------------------------------


def _check_key(key: str) -> list[str]:
    if not _KEY.fullmatch(key):
        raise UsageError(f"invalid setting name {key!r}", "use dotted names like dns.target")
    return key.split(".")


def config_get(config: dict[str, Any], key: str) -> Any:
    node: Any = config
    for part in _check_key(key):
        if not isinstance(node, dict) or part not in node:
            raise NotFoundError(f"{key} is not set in config.toml")
        node = node[part]
    return node


def parse_value(text: str) -> Any:
    """A TOML value (a number, true, a list, a quoted string), else the text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def config_set(store: Store, key: str, value: Any) -> None:
    """Set a key in config.toml, written atomically and 0600 (it may hold secrets)."""
    import tomli_w

    from certcli.config import SECTIONS, Source, checked, load_config

    parts = _check_key(key)
    if key in SECTIONS and not isinstance(value, dict):
        raise UsageError(f"{key} is a section ([{key}]), not a value", f"set {key}.KEY instead")
    # a config.toml others may change is refused first: nothing is written over it
    config = load_config(store.root)
    checked(key, value, Source(key))  # refused as any command would refuse it
    store.ensure()
    node = config
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UsageError(f"{part} in config.toml is a value, not a section")
        node = child
    node[parts[-1]] = value
    path = store.root / "config.toml"
    try:
        atomic_write(path, tomli_w.dumps(config).encode(), KEY_MODE)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}") from None
