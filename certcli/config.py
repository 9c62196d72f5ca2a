"""Settings: command-line flag, then environment (CERTCLI_<SECTION>_<KEY>), then the
lineage's lineage.toml, then config.toml, then the built-in default."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from certcli.errors import StoreError

CONFIG_ENV = "CERTCLI_CONFIG_DIR"


def default_config_dir() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("certcli"))


def config_dir(cli_value: Path | None) -> Path:
    if cli_value is not None:
        return cli_value
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else default_config_dir()


def load_config(root: Path) -> dict[str, Any]:
    """config.toml, once the store and its parents are known to be the user's (certcli/trust.py)."""
    from certcli.trust import check_chain, read_trusted

    path = root / "config.toml"
    check_chain(root)
    try:
        return tomllib.loads(read_trusted(path).decode())
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path}: {exc}", "fix or remove the file") from None


def secret_warning(root: Path, config: dict[str, Any]) -> str | None:
    """A warning when config.toml holds a secret and others may read it."""
    path = root / "config.toml"
    holds_secret = bool(((config.get("dns") or {}).get("rfc2136") or {}).get("tsig_secret"))
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None
    if holds_secret and mode & 0o077:
        return (
            f"{path} holds a TSIG secret and is readable by others (mode {mode:04o}): chmod 600 it"
        )
    return None


def env_name(key: str) -> str:
    return "CERTCLI_" + key.replace(".", "_").replace("-", "_").upper()


def lookup(table: dict[str, Any], key: str) -> Any:
    """A dotted key's value in a TOML table (None when absent)."""
    node: Any = table
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def setting(
    key: str,
    cli_value: Any,
    config: dict[str, Any],
    default: Any,
    lineage: dict[str, Any] | None = None,
) -> Any:
    """The value of a dotted key such as `key_type` or `dns.target`."""
    if cli_value is not None:
        return cli_value
    env = os.environ.get(env_name(key))
    if env:
        return env
    for table in (lineage or {}, config):
        value = lookup(table, key)
        if value is not None:
            return value
    return default


LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
SERVER_SHORTCUTS = {"letsencrypt": LETSENCRYPT, "letsencrypt-staging": LETSENCRYPT_STAGING}


def resolve_server(value: str) -> str:
    """A directory URL from a URL or a shortcut (letsencrypt, letsencrypt-staging)."""
    from certcli.errors import UsageError

    url = SERVER_SHORTCUTS.get(value.strip().lower(), value.strip())
    if not url.startswith(("https://", "http://")):
        raise UsageError(
            f"--server {value!r} is neither a URL nor a known shortcut",
            f"give the CA's directory URL or one of: {', '.join(SERVER_SHORTCUTS)}",
        )
    return url


def number(key: str, value: object) -> float:
    """A numeric setting, or a clear error naming it."""
    from certcli.errors import UsageError

    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"{key} must be a number, not {value!r}") from None
