"""`certcli issue` as a person at a terminal sees it: run on real pseudo-terminals against the
lab's Pebble, its output read through a terminal emulator (pyte)."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
import select
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyte
import pytest

from tests.conftest import CERTCLI, Certcli, live_dir, ok
from tests.lab import DELEGATION_ZONE, SITE_ZONE, Lab
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration

COLUMNS, LINES = 110, 30
SGR = re.compile(rb"\x1b\[([0-9;]*)m")
PHASE_ROW = re.compile(r"^(\S) (\S+) (\S.*?)(?: +(\d+\.\d+s|\d+m\d\ds))?$")

REDRAW = b"\r\x1b[2K"


@dataclass
class Terminal:
    """What one pseudo-terminal received, raw and as a screen shows it."""

    raw: bytes = b""
    screen: pyte.Screen = field(default_factory=lambda: pyte.Screen(COLUMNS, LINES))
    frames: list[str] = field(default_factory=list)  # every distinct screen, in order

    def __post_init__(self) -> None:
        self.stream = pyte.ByteStream(self.screen)

    def feed(self, data: bytes) -> None:
        self.raw += data
        # A read may hold several redraws (a loaded machine reads late): a frame for each,
        # as Rich begins every redraw by going back to the start of the line and erasing it.
        for i, part in enumerate(data.split(REDRAW)):
            self.stream.feed(REDRAW + part if i else part)
            shown = "\n".join(line.rstrip() for line in self.screen.display).strip("\n")
            if not self.frames or self.frames[-1] != shown:
                self.frames.append(shown)

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display if line.strip()]

    def colours(self) -> set[str]:
        """The SGR parameters that set a colour (foreground, background, 256 or RGB)."""
        found = set()
        for match in SGR.finditer(self.raw):
            params = match.group(1).decode().split(";")
            found |= {p for p in params if re.fullmatch(r"3[0-8]|4[0-8]|9[0-7]|10[0-7]", p)}
        return found


def _pty(columns: int = COLUMNS, lines: int = LINES) -> tuple[int, int]:
    main, sub = os.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    return main, sub


def run_on_terminals(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    *,
    split: bool,
    respond: Callable[[Terminal], bytes | None] | None = None,
    size: tuple[int, int] = (COLUMNS, LINES),
) -> tuple[int, Terminal, Terminal]:
    """Run certcli with stdin, stdout and stderr on one pseudo-terminal (as at a shell), or
    with stdout on a second one (`split`) to tell the two streams apart; both are TTYs.
    `respond` sees the terminal after each output and may type something."""
    err_main, err_sub = _pty(*size)
    out_main, out_sub = _pty(*size) if split else (err_main, err_sub)
    env = {**env, "TERM": "xterm-256color", "COLUMNS": str(size[0]), "LINES": str(size[1])}
    proc = subprocess.Popen(
        [str(CERTCLI), *args],
        stdin=err_sub,
        stdout=out_sub,
        stderr=err_sub,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    os.close(err_sub)
    if split:
        os.close(out_sub)
    err, out = (Terminal(screen=pyte.Screen(*size)) for _ in range(2))
    terminals = {err_main: err, out_main: out} if split else {err_main: err}
    deadline = time.monotonic() + 90
    while terminals and time.monotonic() < deadline:
        ready, _, _ = select.select(list(terminals), [], [], 0.5)
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError as exc:  # EIO: every writer has gone
                if exc.errno != errno.EIO:
                    raise
                data = b""
            if data:
                terminals[fd].feed(data)
                typed = respond(terminals[fd]) if respond else None
                if typed:
                    os.write(err_main, typed)
            else:
                del terminals[fd]
                os.close(fd)
    code = proc.wait(timeout=10)
    for fd in terminals:
        os.close(fd)
    return code, err, out if split else err


@pytest.fixture
def target() -> str:
    """A delegation target of this test's own."""
    return f"t-{secrets.token_hex(4)}.{DELEGATION_ZONE}"


def _env(certcli: Certcli, **extra: str) -> dict[str, str]:
    env = certcli.environ()
    for inherited in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE"):
        env.pop(inherited, None)
    return {**env, **extra}


def _expiry(certcli: Certcli, name: str) -> str:
    (entry,) = [e for e in ok(certcli("status", "--json")).json()["lineages"] if e["name"] == name]
    return entry["not_after"][:10]


def test_issue_shows_its_phases_then_the_summary(acme: Certcli, lab: Lab) -> None:
    name = "screen.certcli.test"
    args = ["issue", name, f"www.{name}", "--webroot", str(lab.webroot), "--agree-tos"]
    code, term, _ = run_on_terminals(args, _env(acme), acme.cwd, split=False)
    assert code == 0, "\n".join(term.lines)

    # While it works, a row shows the lineage in each phase in turn, with a spinner.
    seen = []
    for frame in term.frames:
        for line in frame.splitlines():
            row = PHASE_ROW.match(line)
            if row and row.group(2) == name and row.group(3) not in seen:
                seen.append(row.group(3))
    assert [p for p in seen if p in ("Ordering", "Validating", "Completed")] == [
        "Ordering",
        "Validating",
        "Completed",
    ], seen

    # At the end: the finished row, then the summary with the name and the expiry date.
    first, *rest = term.lines
    row = PHASE_ROW.match(first)
    assert row and row.groups()[:3] == ("✔", name, "Completed"), term.lines
    summary = " ".join(rest)  # a long line wraps on the screen
    expires = _expiry(acme, name)
    assert summary.startswith(f"Issued {name}: {name}, www.{name}, version 1, expires {expires}")
    assert b"\x1b[?25h" in term.raw


@pytest.mark.parametrize(
    ("how", "coloured"),
    [("default", True), ("NO_COLOR", False), ("--no-color", False), ("NO_COLOR=", True)],
)
def test_stderr_holds_only_the_progress_in_colour_unless_asked_not_to(
    acme: Certcli, lab: Lab, how: str, coloured: bool
) -> None:
    name = f"colour-{how.strip('-=').lower().replace('_', '-')}.certcli.test"
    args = ["issue", name, "--webroot", str(lab.webroot), "--agree-tos"]
    extra = {}
    if how == "NO_COLOR":
        extra["NO_COLOR"] = "1"
    elif how == "NO_COLOR=":  # set but empty: no-color.org says colour stays on
        extra["NO_COLOR"] = ""
    elif how == "--no-color":
        args.append("--no-color")
    code, err, out = run_on_terminals(args, _env(acme, **extra), acme.cwd, split=True)
    assert code == 0, "\n".join(err.lines + out.lines)

    # stderr: the progress rows and nothing else (no summary, warning or log line)
    assert len(err.lines) == 1, err.lines
    row = PHASE_ROW.match(err.lines[0])
    assert row and row.groups()[:3] == ("✔", name, "Completed"), err.lines
    # stdout: the summary alone
    text = out.raw.decode().replace("\r\n", "\n")
    assert re.fullmatch(
        rf"Issued {re.escape(name)}: {re.escape(name)}, version 1, "
        rf"expires {_expiry(acme, name)} \({re.escape(str(live_dir(acme, name)))}\)\n",
        text,
    ), text
    assert not SGR.search(out.raw)  # the summary is plain text
    if coloured:
        assert err.colours(), err.raw[:400]
    else:
        assert err.colours() == set(), err.raw[:400]


def test_renewing_several_lineages_counts_them_on_a_bar(acme: Certcli, lab: Lab) -> None:
    names = [f"bar{i}.certcli.test" for i in range(3)]
    ok(acme("issue", *names, "--each", "--webroot", lab.webroot, "--agree-tos"))
    code, err, out = run_on_terminals(["renew", "--force"], _env(acme), acme.cwd, split=True)
    assert code == 0, "\n".join(err.lines + out.lines)
    *rows, bar = err.lines
    assert [PHASE_ROW.match(r).groups()[:3] for r in rows] == [  # type: ignore[union-attr]
        ("✔", name, "Completed") for name in names
    ]
    assert bar.startswith("━") and " 3/3 done " in f"{bar} "
    # the bar counted them one by one while they renewed, of the whole total from the start
    assert any(" 0/3 done" in frame for frame in err.frames)
    totals = {m.group(1) for f in err.frames for m in re.finditer(r" \d+/(\d+) done", f)}
    assert totals == {"3"}, err.frames
    assert out.raw.decode().count("Renewed ") == 3


def test_a_question_stops_the_live_view_until_it_is_answered(
    acme: Certcli, lab: Lab, target: str
) -> None:
    """The manual DNS provider asks for a TXT record mid-issuance: the prompt stays readable
    while certcli waits, and the progress carries on below the answer."""
    domain = f"manual-{secrets.token_hex(3)}.{SITE_ZONE}"
    lab.delegate(domain, target)
    acme.config_dir.mkdir(parents=True, exist_ok=True)
    config = lab.dns_config(target).replace('provider = "rfc2136"', 'provider = "manual"')
    (acme.config_dir / "config.toml").write_text(config)
    (acme.config_dir / "config.toml").chmod(0o600)
    asked: list[str] = []

    def create_the_record(term: Terminal) -> bytes | None:
        found = re.search(rf'{re.escape(target)}\. 60 IN TXT "([^"]+)"', "\n".join(term.lines))
        if asked or not found:
            return None
        asked.append("\n".join(term.lines))
        lab.update(DELEGATION_ZONE, ("replace", target, "TXT", [found.group(1)]))
        return b"\r"  # Enter

    args = ["issue", domain, "--dns", "--agree-tos"]
    code, term, _ = run_on_terminals(
        args, _env(acme), acme.cwd, split=False, respond=create_the_record
    )
    assert code == 0, "\n".join(term.lines)
    # While certcli waits for Enter the question is all there is: no spinner row over it.
    (screen,) = asked
    prompt = f"For {domain}, create this record, then press Enter:"
    assert screen.splitlines()[0] == prompt, screen
    assert screen.splitlines()[1].startswith(f"  {target}. 60 IN TXT "), screen
    assert len(screen.splitlines()) == 2, screen
    # Then the progress carries on below it: DNS propagation, validation, the result.
    phases = [m.group(3) for f in term.frames for m in map(PHASE_ROW.match, f.splitlines()) if m]
    assert "Waiting for DNS" in phases and phases[-1] == "Completed"
    question, record, row, *summary = term.lines
    assert (question, record) == tuple(screen.splitlines())
    assert PHASE_ROW.match(row).groups()[:3] == ("✔", domain, "Completed")  # type: ignore[union-attr]
    assert " ".join(summary).startswith(f"Issued {domain}: {domain}, version 1, expires")


@pytest.mark.parametrize("answer", ["y", "n"])
def test_at_a_terminal_issue_asks_before_it_switches_an_upload_to_acme(
    acme: Certcli, lab: Lab, tmp_path: Path, answer: str
) -> None:
    from tests.lab.localca import LocalCA

    name = f"ask-{answer}.certcli.test"
    issued = LocalCA("ask").issue([name])
    (tmp_path / "c.pem").write_bytes(issued.fullchain_pem)
    (tmp_path / "c.key").write_bytes(issued.key_pem)
    ok(acme("upload", name, "--cert", "c.pem", "--key", "c.key"))
    question = f"'{name}' holds an uploaded certificate. Switch it to ACME"
    asked: list[str] = []

    def reply(term: Terminal) -> bytes | None:
        if asked or not any(line.startswith(question) for line in term.lines):
            return None
        asked.append("\n".join(term.lines))
        return f"{answer}\r".encode()

    args = ["issue", name, "--force-renewal", "--webroot", str(lab.webroot), "--agree-tos"]
    code, term, _ = run_on_terminals(args, _env(acme), acme.cwd, split=False, respond=reply)
    assert asked, term.lines
    (entry,) = [e for e in ok(acme("status", "--json")).json()["lineages"] if e["name"] == name]
    if answer == "y":
        assert code == 0, term.lines
        assert (entry["mode"], entry["version"]) == ("auto", 2)
    else:
        assert code == 7, term.lines
        assert (entry["mode"], entry["version"]) == ("custom", 1)
        assert any("was not switched to ACME" in line for line in term.lines)


LONG_NAMES = [
    "averyveryverylongsubdomain.example-company.com",
    "shop.another-long-example-domain.org",
    "x.example.com",
]


def _whole(names: list[str], term: Terminal) -> None:
    """Each name on one line of the screen: never split between two."""
    for name in names:
        assert any(name in line for line in term.lines), (name, term.lines)


@pytest.mark.parametrize("columns", [80, 120])
def test_tables_never_break_a_domain_name(
    certcli: Certcli, ca: LocalCA, tmp_path: Path, columns: int
) -> None:
    for name, sans in (("long", LONG_NAMES[:2]), ("short", LONG_NAMES[2:])):
        issued = ca.issue(sans)
        (tmp_path / f"{name}.pem").write_bytes(issued.fullchain_pem)
        (tmp_path / f"{name}.key").write_bytes(issued.key_pem)
        ok(certcli("upload", name, "--cert", f"{name}.pem", "--key", f"{name}.key"))
    size = (columns, 60)
    code, term, _ = run_on_terminals(["status"], _env(certcli), certcli.cwd, split=False, size=size)
    assert code == 0, term.lines
    _whole(LONG_NAMES, term)
    assert any("Mismatch" in line or "Active" in line for line in term.lines)
    args = ["status", "long"]
    code, term, _ = run_on_terminals(args, _env(certcli), certcli.cwd, split=False, size=size)
    assert code == 0, term.lines
    (row,) = [line for line in term.lines if line.startswith(LONG_NAMES[0])]
    assert "│ Covered" in row  # the SAN table stays a table, the name whole in its column


def test_dns_check_never_breaks_a_name(lab: Lab, certcli: Certcli) -> None:
    target = f"t-{secrets.token_hex(4)}.{DELEGATION_ZONE}"
    certcli.point_at(lab)
    certcli.config_dir.mkdir(parents=True, exist_ok=True)
    (certcli.config_dir / "config.toml").write_text(lab.dns_config(target))
    (certcli.config_dir / "config.toml").chmod(0o600)
    names = [f"averyveryverylongsubdomain-{secrets.token_hex(3)}.{SITE_ZONE}", f"w.{SITE_ZONE}"]
    args = ["dns", "check", *names]
    code, term, _ = run_on_terminals(args, _env(certcli), certcli.cwd, split=False, size=(80, 60))
    assert code == 17, term.lines
    # a table does not fit 80 columns with these names whole: one block per name instead
    _whole([*names, *(f"_acme-challenge.{n}" for n in names)], term)
    assert f"SAN:            {names[0]}" in term.lines
