"""Issuance phases as they happen: a live view at a terminal, plain lines otherwise.

At a terminal each lineage has a row (a spinner, its name, its phase and how long that phase
has lasted, so a wait for the CA or for DNS visibly moves), and with several lineages a bar
counts the finished ones. With many lineages the ones at work and the failures keep a row
first, then the latest finished. Elsewhere (cron, a pipe) each phase is one `name: phase`
line on stderr.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from certcli.cli.output import Output
from certcli.models import Phase

# Phase.QUEUED is announced before a pool starts (the view knows the total); never printed
_STYLE = {Phase.COMPLETED: "green", Phase.FAILED: "red", Phase.QUEUED: "dim"}
_DONE = (Phase.COMPLETED, Phase.FAILED)
MAX_ROWS = 12  # beyond this many lineages, rows first for those at work and those that failed


class PhaseView:
    """A context manager that is also the engine's progress callback (thread-safe)."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.enabled = not (out.quiet or out.json_mode)
        self.live_mode = self.enabled and sys.stderr.isatty()
        self._phases: dict[str, tuple[str, float]] = {}  # name -> (phase, since)
        self._first_seen: dict[str, float] = {}
        self._begun = time.monotonic()
        self._lock = threading.Lock()
        self._starting = False
        self._live: Any = None

    def __enter__(self) -> PhaseView:
        self.out.live_view = self
        return self

    def _start_live(self) -> None:
        """Started at the first phase, so a prompt before it (terms of service) is plain."""
        from rich.live import Live

        self._live = Live(
            console=self.out.err_console,
            get_renderable=self._render,
            refresh_per_second=8,
            redirect_stdout=False,  # data on stdout stays on stdout
        )
        self._live.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.out.live_view = None
        if self._live is not None:
            self._live.stop()  # draws the last state once more, and leaves it on screen

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The live view cleared while the person at the terminal is asked something, then
        drawn again below the answer."""
        live, self._live = self._live, None
        if live is None:
            yield
            return
        live.transient = True  # a frozen spinner above the question would only mislead
        live.stop()
        try:
            yield
        finally:
            self._start_live()

    def __call__(self, name: str, phase: Phase) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            self._phases[name] = (phase, now)
            if phase != Phase.QUEUED:  # a lineage's time counts from its first real phase
                self._first_seen.setdefault(name, now)
            if not self.live_mode:
                if phase != Phase.QUEUED:  # under the lock: concurrent lineages print whole lines
                    print(f"{name}: {phase}", file=sys.stderr, flush=True)
                return
            if phase == Phase.QUEUED:  # drawn with the first real phase, once the total is known
                return
            start = not self._starting
            self._starting = True
        # Rich's own lock is taken outside ours: its refresh thread takes ours to render.
        if start:
            self._start_live()
        elif self._live is not None:
            self._live.refresh()

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        with self._lock:
            rows = [(n, p, s, self._first_seen.get(n, s)) for n, (p, s) in self._phases.items()]
        done = [r for r in rows if r[1] in _DONE]
        failed = sum(1 for r in done if r[1] == Phase.FAILED)
        shown = _visible(rows)

        table = Table.grid(padding=(0, 1))
        for name, phase, since, first in shown:
            if phase in _DONE:
                marker: Any = Text("✔" if phase == Phase.COMPLETED else "✘", style=_STYLE[phase])
                took = _duration(since - first)
            else:
                marker = Text("·", style="dim") if phase == Phase.QUEUED else Spinner("dots")
                took = "" if phase == Phase.QUEUED else _duration(now - since)
            table.add_row(
                marker,
                Text(name, style="bold"),
                Text(phase, style=_STYLE.get(phase, "cyan")),
                Text(took, style="dim"),
            )
        if len(rows) < 2:
            return table
        summary = Table.grid(padding=(0, 1))
        summary.add_row(
            ProgressBar(total=len(rows), completed=len(done), width=30),
            Text(f"{len(done)}/{len(rows)} done", style="bold"),
            Text(f"{failed} failed", style="red") if failed else Text(""),
            Text(_duration(now - self._begun), style="dim"),
        )
        parts = [table] if shown else []
        hidden = [r[1] for r in rows if r not in shown]
        if hidden:
            kinds = {
                "completed": hidden.count(Phase.COMPLETED),
                "queued": hidden.count(Phase.QUEUED),
            }
            kinds["at work"] = len(hidden) - sum(kinds.values())
            detail = ", ".join(f"{n} {kind}" for kind, n in kinds.items() if n)
            parts.append(Text(f"… and {len(hidden)} more ({detail})", style="dim"))
        return Group(*parts, summary)


def _visible(rows: list[tuple[str, str, float, float]]) -> list[tuple[str, str, float, float]]:
    """At most MAX_ROWS rows, in their order: those at work and those that failed first,
    then the latest finished, then the queued, so a finished run still shows its rows."""
    if len(rows) <= MAX_ROWS:
        return rows

    def rank(row: tuple[str, str, float, float]) -> tuple[int, float]:
        phase, since = row[1], row[2]
        if phase == Phase.QUEUED:
            return (3, since)
        return (2, -since) if phase == Phase.COMPLETED else (1, -since)

    keep = {id(r) for r in sorted(rows, key=rank)[:MAX_ROWS]}
    return [r for r in rows if id(r) in keep]


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"
