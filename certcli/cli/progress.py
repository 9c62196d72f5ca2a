"""Issuance phases as they happen: a live table at a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any

from certcli.cli.output import Output

_STYLE = {"Completed": "green", "Failed": "red"}


class PhaseView:
    """A context manager that is also the engine's progress callback (thread-safe)."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.enabled = not (out.quiet or out.json_mode)
        self.live_mode = self.enabled and sys.stderr.isatty()
        self._phases: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._live: Any = None

    def __enter__(self) -> PhaseView:
        return self

    def _start_live(self) -> None:
        """Started at the first phase, so a prompt before it (terms of service) is plain."""
        from rich.console import Console
        from rich.live import Live

        console = Console(stderr=True, no_color=not self.out.color)
        self._live = Live(self._render(), console=console, refresh_per_second=8)
        self._live.__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(kind, value, traceback)

    def __call__(self, name: str, phase: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._phases[name] = (phase, time.monotonic())
            if self.live_mode and self._live is None:
                self._start_live()
            if self._live is not None:
                self._live.update(self._render())
            else:
                print(f"{name}: {phase}", file=sys.stderr, flush=True)

    def _render(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 1))
        for name, (phase, _) in self._phases.items():
            done = phase in _STYLE
            marker: Any = (
                Text("✔" if phase == "Completed" else "✘", style=_STYLE.get(phase, ""))
                if done
                else Spinner("dots")
            )
            table.add_row(
                marker, Text(name, style="bold"), Text(phase, style=_STYLE.get(phase, "cyan"))
            )
        return table
