"""Where things are printed: data on stdout (tables, or JSON with --json and nothing else),
messages on stderr. Rich is imported only when a terminal will see it."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any


def json_default(value: Any) -> str:
    """JSON for the values json cannot write: TOML dates and times (config.toml)."""
    import datetime

    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def printable(text: str, *, lines: bool = False) -> str:
    """`text` as a terminal may be given it: each control character (an escape sequence, a
    carriage return, a line break where one line is due) written as its escape, never obeyed.
    Messages quote what a CA, a hook or a server said."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or (lines and c == "\n") else c.encode("unicode_escape").decode()
        for c in text
    )


def error_line(message: str, hint: str | None = None) -> str:
    """The one line certcli prints for a failure: what went wrong; what to do."""
    return printable(f"certcli: error: {message}" + (f"; {hint}" if hint else ""))


#: What a rich table puts between two columns: a space, the rule, a space.
_GAP = 3


def column_widths(headers: list[str], rows: list[list[str]], total: int) -> list[int] | None:
    """Widths for a table of `total` columns in which no word (a domain name, a date) is ever
    broken: each column gets at least its longest word, then what is left goes to the columns
    whose lines are longer. None when even the longest words do not fit side by side."""
    columns = list(zip(headers, *rows, strict=True))
    lines = [[line for cell in column for line in cell.split("\n")] for column in columns]
    longest = [max(len(line) for line in column) for column in lines]
    word = [max((len(w) for line in column for w in line.split()), default=1) for column in lines]
    room = total - _GAP * (len(columns) - 1)
    if sum(longest) <= room:
        return longest
    if sum(word) > room:
        return None
    widths = list(word)
    spare = room - sum(widths)
    wants = [full - least for full, least in zip(longest, word, strict=True)]
    for i, want in enumerate(wants):  # the spare room in proportion to what each lacks
        widths[i] += min(want, spare * want // sum(wants))
    for i in range(len(widths)):  # what the rounding left
        widths[i] += max(min(room - sum(widths), longest[i] - widths[i]), 0)
    return widths


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
            print(printable(message, lines=True), file=sys.stderr)

    def warn(self, message: str) -> None:
        print(printable(f"certcli: warning: {message}"), file=sys.stderr)

    def line(self, text: str = "") -> None:
        """Human-readable data on stdout (never with --json)."""
        if not self.json_mode:
            print(printable(text, lines=True))

    def emit_json(self, payload: dict[str, Any]) -> None:
        """The one JSON document of a --json run."""
        sys.stdout.write(json.dumps(payload, indent=2, default=json_default) + "\n")

    def emit_json_items(
        self,
        key: str,
        items: Iterable[dict[str, Any] | str],
        after: dict[str, Any] | None = None,
    ) -> None:
        """The JSON document `{key: [items]}`, written item by item as they come: `status
        --json` over 100,000 lineages holds one report at a time, not the whole document
        (and json's C encoder writes each item, one a line; indent=2 takes its Python one).
        An item that is a str is JSON already (the status cache's)."""
        write = sys.stdout.write
        write(f"{{\n  {json.dumps(key)}: [")
        first = True
        chunk: list[str] = []  # written a few hundred at a time: stdout may be unbuffered
        for item in items:
            text = item if isinstance(item, str) else json.dumps(item, default=json_default)
            chunk.append(("\n    " if first else ",\n    ") + text)
            first = False
            if len(chunk) == 256:
                write("".join(chunk))
                chunk.clear()
        write("".join(chunk) + ("]" if first else "\n  ]"))
        for name, value in (after or {}).items():  # the document's other keys, after the list
            write(f",\n  {json.dumps(name)}: {json.dumps(value, default=json_default)}")
        write("\n}\n")

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
                print("\t".join(printable(cell.replace("\n", ",")) for cell in row))
            return
        from rich.table import Table
        from rich.text import Text

        rows = [[printable(cell, lines=True) for cell in row] for row in rows]
        widths = column_widths(headers, rows, self.console.width)
        if widths is None:  # even one word per line would not fit: a block per row
            self._records(headers, rows, styles)
            return
        table = Table(show_edge=False, header_style="bold", pad_edge=False)
        for header, width in zip(headers, widths, strict=True):
            table.add_column(header, width=width, overflow="fold")
        for i, row in enumerate(rows):
            row_styles = styles[i] if styles else [None] * len(row)
            table.add_row(*(Text(c, style=s or "") for c, s in zip(row, row_styles, strict=True)))
        self.console.print(table)

    def _records(
        self, headers: list[str], rows: list[list[str]], styles: list[list[str | None]] | None
    ) -> None:
        from rich.text import Text

        width = max(len(h) for h in headers) + 1
        for i, row in enumerate(rows):
            if i:
                self.console.print()
            row_styles = styles[i] if styles else [None] * len(row)
            for header, cell, style in zip(headers, row, row_styles, strict=True):
                first, *more = cell.split("\n") or [""]
                self.console.print(Text(f"{header + ':':<{width}} ", style="bold"), end="")
                self.console.print(Text(first, style=style or ""))
                for line in more:
                    self.console.print(Text(f"{'':<{width}} {line}", style=style or ""))

    def confirm(self, question: str) -> bool:
        if not self.stdin_tty:
            return False
        with self._screen_for_a_question():
            sys.stderr.write(f"{printable(question)} [y/N] ")  # it may quote the CA's URLs
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

                return getpass.getpass(f"{printable(prompt)}: ", stream=sys.stderr)
            sys.stderr.write(f"{printable(prompt)}: ")
            sys.stderr.flush()
            return sys.stdin.readline().rstrip("\r\n")

    def wait_for_enter(self, message: str) -> None:
        """Show what to do (the manual DNS provider's record) and wait until it is done."""
        with self._screen_for_a_question():
            print(printable(message, lines=True), file=sys.stderr, flush=True)
            sys.stdin.readline()

    @contextlib.contextmanager
    def _screen_for_a_question(self) -> Iterator[None]:
        # a live view redrawing under the prompt would scramble what the person types
        if self.live_view is None:
            yield
        else:
            with self.live_view.paused():
                yield
