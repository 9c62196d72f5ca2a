"""certcli config get / set: dotted keys of config.toml."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from certcli.config import SECTIONS, Source, assign, checked, load_config, lookup, save_config
from certcli.errors import NotFoundError, UsageError
from certcli.storage.protocol import Storage

_KEY = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")  # fullmatch: never a trailing newline


def _check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise UsageError(f"invalid setting name {key!r}", "use dotted names like dns.target")
    return key


def config_get(config: dict[str, Any], key: str) -> Any:
    value = lookup(config, _check_key(key))
    if value is None:  # TOML has no null: None is "not set"
        raise NotFoundError(f"{key} is not set in config.toml")
    return value


def parse_value(text: str) -> Any:
    """A TOML value (a number, true, a list, a quoted string), else the text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def config_set(store: Storage, key: str, value: Any) -> None:
    """Set a key in config.toml, written atomically and 0600 (it may hold secrets)."""
    _check_key(key)
    if key in SECTIONS and not isinstance(value, dict):
        raise UsageError(f"{key} is a section ([{key}]), not a value", f"set {key}.KEY instead")
    # a config.toml others may change is refused first: nothing is written over it
    config = load_config(store.root)
    checked(key, value, Source(key))  # refused as any command would refuse it
    store.ensure()
    assign(config, key, value)
    save_config(store.root, config)
