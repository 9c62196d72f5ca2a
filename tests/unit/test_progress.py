"""The progress view (rendered without a terminal), the DNS wait shown as a phase, the next
step of a DNS error, and NO_COLOR."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from certcli.challenges.dns01 import next_step as dns_next_step
from certcli.cli.output import Output
from certcli.cli.progress import MAX_ROWS, PhaseView
from certcli.dnscheck import Diagnosis, DnsStatus
from certcli.flows.attempt import _WaitShown


def _out(**kwargs: Any) -> Output:
    return Output(**{"json_mode": False, "quiet": False, "verbose": False, "color": True, **kwargs})


def _screen(view: PhaseView) -> list[str]:
    buffer = io.StringIO()
    Console(file=buffer, width=100, color_system=None).print(view._render())
    return [line.rstrip() for line in buffer.getvalue().splitlines()]


def test_one_lineage_is_one_row_with_its_phase_and_how_long_it_lasts() -> None:
    view = PhaseView(_out())
    view("a.example.com", "Validating")
    (row,) = _screen(view)
    assert row.split()[1:3] == ["a.example.com", "Validating"]
    assert row.endswith("s")


def test_several_lineages_get_a_bar_counting_the_finished_ones() -> None:
    view = PhaseView(_out())
    for name in ("a.example.com", "b.example.com", "c.example.com"):
        view(name, "Queued")
    view("a.example.com", "Completed")
    view("b.example.com", "Failed")
    screen = _screen(view)
    assert [line.split()[:3] for line in screen[:3]] == [
        ["✔", "a.example.com", "Completed"],
        ["✘", "b.example.com", "Failed"],
        ["·", "c.example.com", "Queued"],
    ]
    assert "2/3 done" in screen[3] and "1 failed" in screen[3]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each phase a second after the last, so that "the latest" is well defined."""
    ticks = iter(range(1, 10_000))
    monkeypatch.setattr("certcli.cli.progress.time.monotonic", lambda: float(next(ticks)))


def test_many_lineages_keep_rows_for_those_at_work_and_failed_then_the_latest_finished(
    clock: None,
) -> None:
    view = PhaseView(_out())
    names = [f"n{i:02d}.example.com" for i in range(MAX_ROWS * 3)]
    for name in names:
        view(name, "Queued")
    for name in names[:20]:
        view(name, "Completed")
    view(names[20], "Failed")
    view(names[21], "Validating")
    screen = _screen(view)
    # the rows in their order: the latest finished, then the failure and the one at work
    assert [line.split()[1] for line in screen[:MAX_ROWS]] == names[10:22]
    assert screen[MAX_ROWS] == f"… and {len(names) - MAX_ROWS} more (10 completed, 14 queued)"
    assert f"21/{len(names)} done" in screen[MAX_ROWS + 1]


@pytest.mark.parametrize("count", [MAX_ROWS + 1, 20, 50])
def test_a_finished_run_of_many_lineages_still_shows_rows(clock: None, count: int) -> None:
    view = PhaseView(_out())
    names = [f"e{i:02d}.example.com" for i in range(count)]
    for name in names:
        view(name, "Queued")
    for name in names:
        view(name, "Ordering")
        view(name, "Completed")
    view(names[3], "Failed")  # a failure keeps its row, however early it came
    screen = _screen(view)
    rows = [line.split()[:3] for line in screen[:MAX_ROWS]]
    assert ["✘", names[3], "Failed"] in rows
    finished = [n for n in names if n != names[3]]
    assert [r[1] for r in rows if r[0] == "✔"] == finished[-(MAX_ROWS - 1) :]
    hidden = count - MAX_ROWS
    assert screen[MAX_ROWS] == f"… and {hidden} more ({hidden} completed)"
    assert f"{count}/{count} done" in screen[MAX_ROWS + 1] and "1 failed" in screen[MAX_ROWS + 1]


def test_the_live_view_starts_once_every_queued_lineage_is_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Queueing draws nothing, so the bar never counts a total that is still growing."""
    view = PhaseView(_out())
    view.live_mode = True
    drawn: list[list[str]] = []
    monkeypatch.setattr(view, "_start_live", lambda: drawn.append(_screen(view)))
    names = ["a.example.com", "b.example.com", "c.example.com"]
    for name in names:
        view(name, "Queued")
    assert drawn == []
    view(names[0], "Pending")
    (screen,) = drawn
    assert "0/3 done" in screen[-1]


def test_without_a_terminal_each_phase_is_a_line_and_queueing_is_silent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with PhaseView(_out()) as view:
        view("a.example.com", "Queued")
        view("a.example.com", "Ordering")
    assert capsys.readouterr() == ("", "a.example.com: Ordering\n")
    with PhaseView(_out(quiet=True)) as view:
        view("a.example.com", "Ordering")
    assert capsys.readouterr() == ("", "")


class FakeSolver:
    def __init__(self, challenge_type: str) -> None:
        self.challenge_type = challenge_type
        self.waited = False

    def wait(self, challenges: list[Any]) -> None:
        self.waited = True


@pytest.mark.parametrize(
    ("kind", "phases"), [("dns-01", ["Waiting for DNS", "Validating"]), ("http-01", [])]
)
def test_the_wait_for_dns_is_a_phase_of_its_own(kind: str, phases: list[str]) -> None:
    from certcli.challenges import method

    solver = FakeSolver(kind)
    seen: list[str] = []
    shown = _WaitShown(solver, seen.append, method(kind).wait_phase)  # type: ignore[arg-type]
    shown.wait([])
    assert solver.waited and seen == phases
    assert shown.challenge_type == kind  # everything else is the solver's own


def _diagnosis(san: str, status: DnsStatus) -> Diagnosis:
    return Diagnosis(san, f"_acme-challenge.{san}", status, "t.delegation.example")


def test_a_dns_error_names_the_record_to_create() -> None:
    one = [_diagnosis("a.example.com", DnsStatus.MISSING)]
    assert dns_next_step(one) == (
        "create the record _acme-challenge.a.example.com. 300 IN CNAME t.delegation.example., "
        "then `certcli renew` issues it"
    )
    several = [
        _diagnosis("a.example.com", DnsStatus.MISSING),
        _diagnosis("b.example.com", DnsStatus.WRONG),
        _diagnosis("c.example.com", DnsStatus.DUPLICATE),
        _diagnosis("d.example.com", DnsStatus.ERROR),
    ]
    assert dns_next_step(several) == (
        "create the 2 CNAME records `certcli dns check` lists, remove the TXT records found "
        "at the challenge names, check that [dns] resolvers answer, then `certcli renew` "
        "issues it"
    )


@pytest.mark.parametrize(
    ("no_color", "flag", "coloured"),
    [(None, True, True), ("1", True, False), ("", True, True), (None, False, False)],
)
def test_no_color_and_the_flag(
    monkeypatch: pytest.MonkeyPatch, no_color: str | None, flag: bool, coloured: bool
) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    out = _out(color=flag)
    assert out.color is coloured
    assert out.console.no_color is not coloured
    assert out.err_console.no_color is not coloured


def test_plain_lines_are_printed_whole_under_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a terminal, lineages renewed concurrently print `name: phase` lines that never
    interleave (print writes the text and the newline separately)."""
    view = PhaseView(_out())
    view.live_mode = False
    writes: list[tuple[str, bool]] = []

    class Err(io.StringIO):
        def write(self, text: str) -> int:
            writes.append((text, view._lock.locked()))
            return len(text)

    monkeypatch.setattr("sys.stderr", Err())
    view("a.example.com", "Queued")
    view("a.example.com", "Pending")
    assert writes == [("a.example.com: Pending", True), ("\n", True)]
