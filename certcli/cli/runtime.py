"""The per-invocation context that every command receives through ctx.obj."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import typer

from certcli.cli.output import Output
from certcli.store import Store


@dataclass
class Runtime:
    config_dir_flag: Path | None
    out: Output

    @cached_property
    def store(self) -> Store:
        from certcli.config import config_dir

        return Store(config_dir(self.config_dir_flag))

    @cached_property
    def config(self) -> dict[str, Any]:
        from certcli.config import load_config, secret_warning

        config = load_config(self.store.root)
        warning = secret_warning(self.store.root, config)
        if warning:
            self.out.warn(warning)
        return config

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)


def runtime(ctx: typer.Context) -> Runtime:
    return ctx.find_root().obj
