"""Where things are printed: data on stdout (tables, or JSON with --json and nothing else),
messages on stderr. Rich is imported only when a terminal will see it."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from functools import cached_property
from typing import Any


def json_default(value: Any) -> str:
    """JSON for the values json cannot write: TOML dates and times (config.toml)."""
    import datetime

    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def error_line(message: str, hint: str | None = None) -> str:
    """The one line certcli prints for a failure: what went wrong; what to do."""
    return f"certcli: error: {message}" + (f"; {hint}" if hint else "")


class Output:
    def __init__(self, *, json_mode: bool, quiet: bool, verbose: bool, color: bool) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.verbose = verbose
        # --no-color, or NO_COLOR set to anything but the empty string (no-color.org)
        self.color = color and not os.environ.get("NO_COLOR")
        self.stdout_tty = sys.stdout.isatty()
        self.stdin_tty = sys.stdin.isatty()
        self.live_view: Any = None  # the progress on screen (a PhaseView), paused for questions

    @cached_property
    def console(self) -> Any:
        """Rich on stdout, for tables."""
        from rich.console import Console

        return Console(no_color=not self.color, highlight=False, soft_wrap=True)

    @cached_property
    def err_console(self) -> Any:
        """Rich on stderr, for progress."""
        from rich.console import Console

        return Console(stderr=True, no_color=not self.color, highlight=False)

    def info(self, message: str) -> None:
        """A message for the person at the terminal; silent with -q."""
        if not self.quiet:
            print(message, file=sys.stderr)

    def warn(self, message: str) -> None:
        print(f"certcli: warning: {message}", file=sys.stderr)

    def line(self, text: str = "") -> None:
        """Human-readable data on stdout (never with --json)."""
        if not self.json_mode:
            print(text)

    def emit_json(self, payload: dict[str, Any]) -> None:
        """The one JSON document of a --json run."""
        sys.stdout.write(json.dumps(payload, indent=2, default=json_default) + "\n")

    def table(
        self,
        headers: list[str],
        rows: list[list[str]],
        styles: list[list[str | None]] | None = None,
    ) -> None:
        """A rich table at a terminal; tab-separated lines with a header otherwise.

        A cell may hold several lines (one domain each); plain output joins them with commas.
        """
        if self.json_mode:
            return
        if not self.stdout_tty:
            print("\t".join(h.lower().replace(" ", "_") for h in headers))
            for row in rows:
                print("\t".join(cell.replace("\n", ",") for cell in row))
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(show_edge=False, header_style="bold", pad_edge=False)
        for header in headers:
            table.add_column(header, overflow="fold")
        for i, row in enumerate(rows):
            row_styles = styles[i] if styles else [None] * len(row)
            table.add_row(*(Text(c, style=s or "") for c, s in zip(row, row_styles, strict=True)))
        self.console.print(table)

    def confirm(self, question: str) -> bool:
        if not self.stdin_tty:
            return False
        with self._screen_for_a_question():
            sys.stderr.write(f"{question} [y/N] ")
            sys.stderr.flush()
            answer = sys.stdin.readline()
        return answer.strip().lower() in ("y", "yes")

    def read_line(self, prompt: str, *, secret: bool = False) -> str:
        """One line from the person at the terminal (not echoed when `secret`), else the
        first line of stdin; without its line break."""
        if not self.stdin_tty:
            return sys.stdin.readline().rstrip("\r\n")
        with self._screen_for_a_question():
            if secret:
                import getpass

                return getpass.getpass(f"{prompt}: ", stream=sys.stderr)
            sys.stderr.write(f"{prompt}: ")
            sys.stderr.flush()
            return sys.stdin.readline().rstrip("\r\n")

    def wait_for_enter(self, message: str) -> None:
        """Show what to do (the manual DNS provider's record) and wait until it is done."""
        with self._screen_for_a_question():
            print(message, file=sys.stderr, flush=True)
            sys.stdin.readline()

    @contextlib.contextmanager
    def _screen_for_a_question(self) -> Iterator[None]:
        # a live view redrawing under the prompt would scramble what the person types
        if self.live_view is None:
            yield
        else:
            with self.live_view.paused():
                yield
