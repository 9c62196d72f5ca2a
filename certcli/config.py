"""Settings: command-line flag, then environment (CERTCLI_<SECTION>_<KEY>), then the
lineage's lineage.toml, then config.toml, then the built-in default."""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certcli import challenges, persist, providers
from certcli.domains import check_email, spaced
from certcli.errors import CertcliError, StoreError, UsageError
from certcli.keytypes import KEY_TYPES

CONFIG_ENV = "CERTCLI_CONFIG_DIR"
LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
SERVER_SHORTCUTS = {"letsencrypt": LETSENCRYPT, "letsencrypt-staging": LETSENCRYPT_STAGING}


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


def save_config(root: Path, config: dict[str, Any]) -> None:
    """Write config.toml whole, atomically and 0600 (it may hold secrets)."""
    import tomli_w

    from certcli.storage.fsio import KEY_MODE, atomic_write

    path = root / "config.toml"
    try:
        atomic_write(path, tomli_w.dumps(config).encode(), KEY_MODE)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}") from None


def secret_warning(root: Path, config: dict[str, Any]) -> str | None:
    """A warning when config.toml holds a secret and others may read it."""
    path = root / "config.toml"
    held = [key for key in SECRET_KEYS if lookup(config, key)]
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None
    if held and mode & 0o077:
        return (
            f"{path} holds a secret ({', '.join(held)}) and is readable by others "
            f"(mode {mode:04o}): chmod 600 it"
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


def assign(table: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key in a TOML table, making the tables on its way (`lookup`'s writer).
    A part of the way that holds a value, not a table, raises UsageError and sets nothing
    (the tables made before it stay, empty)."""
    *parents, last = key.split(".")
    node = table
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UsageError(f"{part} in config.toml is a value, not a section")
        node = child
    node[last] = value


def _url_problem(url: str) -> str | None:
    """What makes a directory URL unusable, or None."""
    from urllib.parse import urlsplit

    if not url.startswith(("https://", "http://")):
        return "is neither a URL nor a known shortcut"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range or not a number
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if not parts.hostname or spaced(url):
        return "is not a valid URL"
    return None


def resolve_server(value: str) -> str:
    """A directory URL from a URL or a shortcut (letsencrypt, letsencrypt-staging)."""
    url = SERVER_SHORTCUTS.get(value.lower(), value)
    problem = _url_problem(url)
    if problem:
        raise UsageError(
            f"--server {value!r} {problem}",
            f"give the CA's directory URL or one of: {', '.join(SERVER_SHORTCUTS)}",
        )
    return url


def _server(value: object) -> str:
    text = _text(value)
    if _url_problem(SERVER_SHORTCUTS.get(text.lower(), text)):
        raise ValueError(text)
    return text


# -- the type and range of every setting ------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a value came from, as a message names it: `--parallel`,
    `CERTCLI_RENEWAL_PARALLEL (environment)`, `renewal.parallel in /etc/certcli/config.toml`."""

    label: str
    file: str | None = None  # the file it was read from (a bad value there is exit 5)

    def error(self, problem: str, hint: str | None = None) -> CertcliError:
        """`problem` follows the label: "--parallel must be …"."""
        if self.file is not None:
            return StoreError(f"{self.label} {problem}", f"fix it in {self.file}")
        return UsageError(f"{self.label} {problem}", hint)


def _finite(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError
    number = float(value)
    if not math.isfinite(number):
        raise ValueError
    return number


def _positive_seconds(value: object) -> float:
    number = _finite(value)
    if number <= 0:
        raise ValueError
    return number


def _seconds_or_zero(value: object) -> float:
    number = _finite(value)
    if number < 0:
        raise ValueError
    return number


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError
    count = int(value)  # "4" from the environment; "4.5" and "inf" are refused
    if count < 1:
        raise ValueError
    return count


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError
    return value


def _texts(value: object) -> str | list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return _text(value)


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError


def _dns_name(value: object) -> str:
    text = _text(value)
    if not text or spaced(text):
        raise ValueError  # never stripped: "x.example.net\n" is not the name meant
    return text


def _name(value: object) -> str:
    """A name as a CA gives it (a chain's issuer, a profile): not blank, one line."""
    text = _text(value)
    if not text.strip() or not text.isprintable():
        raise ValueError
    return text


def _one_of(*choices: str) -> Kind:
    def parse(value: object) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError
        return value

    return Kind("one of: " + ", ".join(choices), parse)


def _email(value: object) -> str:
    return check_email(_text(value))


@dataclass(frozen=True)
class Kind:
    """What a setting must be ("a number of seconds above 0") and how to read it."""

    text: str
    parse: Callable[[object], Any]


SECONDS = Kind("a number of seconds above 0", _positive_seconds)
TEXT = Kind("text", _text)
DNS_NAME = Kind("a DNS name, without spaces or control characters", _dns_name)
#: The kinds a DNS provider module may give its settings.
_PROVIDER_KINDS = {"text": TEXT, "seconds": SECONDS, "dns_name": DNS_NAME}
_KINDS: dict[str, Kind] = {
    **dict.fromkeys(
        (
            "webroot",
            "ca_bundle",
            "hooks.pre",
            "hooks.post",
            "hooks.deploy",
            "notify.command",
            "notify.webhook",
        ),
        TEXT,
    ),
    "server": Kind(
        "a CA's directory URL or one of: " + ", ".join(SERVER_SHORTCUTS),
        _server,
    ),
    "email": Kind("an email address (name@example.com)", _email),
    "key_type": _one_of(*KEY_TYPES),
    "challenge": _one_of(*challenges.names()),
    "dns.provider": _one_of(*providers.names()),
    **dict.fromkeys(("preferred_chain", "profile"), Kind("a name as the CA gives it", _name)),
    **dict.fromkeys(
        ("dns.target", "dns.zone"),
        DNS_NAME,
    ),
    **dict.fromkeys(
        (
            "acme.timeout",
            "acme.network_timeout",
            "hooks.timeout",
            "dns.propagation_timeout",
            "dns.query_timeout",
        ),
        SECONDS,
    ),
    "renewal.parallel": Kind("a whole number of at least 1", _count),
    "renewal.jitter": Kind("a number of seconds, 0 or more", _seconds_or_zero),
    "notify.on_success": Kind("true or false", _boolean),
    "store.encrypt_keys": Kind("true or false", _boolean),
    "store.url": Kind("a postgresql:// URL", _text),
    "store.host": Kind("a host name", _text),
    "dns_persist.wildcard_policy": Kind("true or false", _boolean),
    "dns_persist.issuer": Kind("an issuer domain name, or a list of them", persist.issuers),
    "dns_persist.persist_until": Kind(
        "a date (YYYY-MM-DD), an RFC 3339 moment or unix seconds", persist.unix_seconds
    ),
    "caa.check": Kind("true or false", _boolean),
    "caa.identities": Kind('a list of CA domain names (["ca.example"]) or text', persist.issuers),
    "dns.resolvers": Kind('a list of servers (["IP:PORT", ...]) or text', _texts),
    "dns.authoritative": Kind('a list of servers (["IP:PORT", ...]) or text', _texts),
    # each DNS provider's own, as its module declares them (certcli/providers/)
    **{key: _PROVIDER_KINDS[kind] for key, kind in providers.setting_kinds().items()},
}
#: Sections that hold settings: each must be a table wherever it is given.
SECTIONS = sorted({key.rsplit(".", 1)[0] for key in _KINDS if "." in key})

#: Settings whose values are secrets: never shown in a message, never taken from argv.
SECRET_KEYS = (
    # several methods share the providers' secrets: each key once
    *dict.fromkeys(key for m in challenges.METHODS.values() for key in m.secret_keys),
    "notify.webhook",
)


def checked(key: str, value: Any, source: Source) -> Any:
    """`value` as the setting `key` needs it (a float of seconds, a count, a bool), or the
    error that names the key and where the value came from."""
    kind = _KINDS.get(key)
    if kind is None:
        return value
    try:
        return kind.parse(value)
    except UsageError as exc:  # the kind's own words: "invalid email address …: no @"
        raise source.error(f"holds an {exc.message}", exc.hint) from None
    except (ValueError, TypeError, OverflowError):
        shown = "(a secret)" if key in SECRET_KEYS else repr(value)
        raise source.error(f"must be {kind.text}, not {shown}") from None


def _kind_of(value: object) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "text" if isinstance(value, str) else "a date"


def check_settings(table: dict[str, Any], where: str) -> None:
    """Check the type and range of every setting a TOML file holds (config.toml, or a
    lineage.toml): its sections must be tables, its known keys of their kinds. `where` is
    the file; keys certcli does not know are left alone."""
    # the keys the file holds, not every key certcli knows: `status` checks each lineage's
    for key, value in _dotted(table):
        if key in SECTIONS and not isinstance(value, dict):
            raise StoreError(
                # the value's kind, not the value: `notify = URL` holds a webhook's token
                f"{key} in {where} must be a table ([{key}]), not {_kind_of(value)}",
                f"fix it in {where}",
            )
        if key in _KINDS:
            checked(key, value, Source(f"{key} in {where}", where))


def _dotted(table: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every key of a TOML table and of the tables inside it, dotted, with its value."""
    for name, value in table.items():
        key = prefix + name
        yield key, value
        if isinstance(value, dict):
            yield from _dotted(value, key + ".")


def setting(
    key: str,
    cli_value: Any,
    config: dict[str, Any],
    default: Any,
    lineage: dict[str, Any] | None = None,
    flag: str | None = None,
) -> Any:
    """The value of a dotted key such as `key_type` or `dns.target`, checked by its kind
    (`flag` names the command-line option that `cli_value` came from)."""
    if cli_value is not None:
        return checked(key, cli_value, Source(flag or "--" + key.replace("_", "-")))
    env = os.environ.get(env_name(key))
    if env:
        return checked(key, env, Source(f"{env_name(key)} (environment)"))
    for table in (lineage or {}, config):
        value = lookup(table, key)
        if value is not None:
            # read from a file that was checked as a whole when loaded: seldom reached
            return checked(key, value, Source(key, "config.toml or lineage.toml"))
    return default
