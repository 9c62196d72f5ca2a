"""The per-invocation context that every command receives through ctx.obj."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from certcli.cli.output import Output
from certcli.storage.files import Store

if TYPE_CHECKING:
    from certcli.flows.session import Session
    from certcli.storage.protocol import Storage


@dataclass
class Runtime:
    config_dir_flag: Path | None
    out: Output
    passphrase_file: Path | None = None
    command: str | None = None  # the command run (`store`, `status`…)

    @cached_property
    def root(self) -> Path:
        """The store's directory, which holds config.toml."""
        from certcli.config import config_dir

        return config_dir(self.config_dir_flag)

    @cached_property
    def store(self) -> Storage:
        """The store `[store] url` names (PostgreSQL), else the file store under the config
        dir; `store` and `config` always work on the files (`store copy` reads them)."""
        store: Storage | None = None
        if self.command not in _FILE_STORE_ONLY:
            from certcli.flows.store import open_store

            store = open_store(self.root, self.config, self.given_passphrase)
        if store is None:
            store = Store(self.root, self._key_passphrase)
        store.check_trusted()  # no command uses a store another user could change
        return store

    def given_passphrase(self) -> bytes | None:
        """The passphrase given with --passphrase-file or CERTCLI_PASSPHRASE; None without."""
        import os

        if self.passphrase_file is not None:
            from certcli.export import read_password_file

            return read_password_file(self.passphrase_file)
        return os.environ.get("CERTCLI_PASSPHRASE", "").encode() or None

    def _key_passphrase(self) -> bytes | None:
        """The passphrase for keys at rest when `[store] encrypt_keys` is on, else None."""
        from certcli.config import setting
        from certcli.errors import UsageError

        if not setting("store.encrypt_keys", None, self.config, False):
            return None
        found = self.given_passphrase()
        if found is not None:
            return found
        raise UsageError(
            "store.encrypt_keys is on, and certcli has no passphrase",
            "give it with --passphrase-file FILE or CERTCLI_PASSPHRASE",
        )

    @cached_property
    def config(self) -> dict[str, Any]:
        from certcli.config import check_settings, load_config, secret_warning

        config = load_config(self.root)
        check_settings(config, str(self.root / "config.toml"))
        warning = secret_warning(self.root, config)
        if warning:
            self.out.warn(warning)
        return config

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)


#: The commands that work on the file store whatever `[store] url` says: `store copy` copies
#: it, `config` changes the settings of config.toml.
_FILE_STORE_ONLY = frozenset({"store", "config"})


def runtime(ctx: typer.Context) -> Runtime:
    return ctx.find_root().obj


def session(rt: Runtime) -> Session:
    """The pool of CA connections for this run, asking the user through its output."""
    from certcli.flows.session import Session

    return Session(
        rt.store,
        interactive=rt.out.stdin_tty,
        pause=rt.out.wait_for_enter,
        accept_tos=lambda url: rt.out.confirm(f"Do you accept the CA's terms of service at {url}?"),
    )
