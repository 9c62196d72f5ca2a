"""Tables at a terminal: a domain name is never broken, whatever the width."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from certcli.cli.output import Output, column_widths

LONG = "averyveryverylongsubdomain.example-company.com"
HEADERS = ["Name", "Domains", "Mode", "Issuer", "Not After", "Days Left", "Status"]
ROW = [
    "shop.example.com",
    f"shop.example.com\nwww.shop.example.com\n{LONG}",
    "auto",
    "Pebble Intermediate CA 4a7571",
    "2027-02-21",
    "89",
    "DNS Duplicate, Pending",
]


def _render(rows: list[list[str]], width: int) -> list[str]:
    out = Output(json_mode=False, quiet=False, verbose=False, color=False)
    out.stdout_tty = True
    buffer = io.StringIO()
    out.__dict__["console"] = Console(file=buffer, width=width, no_color=True, soft_wrap=True)
    out.table(HEADERS, rows, None)
    return buffer.getvalue().splitlines()


@pytest.mark.parametrize("width", [200, 120, 100, 80, 60, 40])
def test_every_name_appears_whole_on_one_line(width: int) -> None:
    lines = _render(
        [ROW, ["x.example.com", "x.example.com", "custom", "-", "-", "-", "Active"]], width
    )
    for name in ("shop.example.com", "www.shop.example.com", LONG, "x.example.com", "2027-02-21"):
        assert any(name in line for line in lines), (width, name, lines)
    assert all(len(line) <= max(width, len(LONG) + 11) for line in lines), lines


def test_a_table_that_fits_is_a_table_and_one_that_cannot_is_a_block_per_row() -> None:
    wide = _render([ROW], 120)
    assert any(line.split("┃")[0].strip() == "Name" for line in wide), wide
    assert any(line.startswith("shop.example.com ") and "│" in line for line in wide), wide
    narrow = _render([ROW], 60)
    assert narrow[0] == "Name:      shop.example.com"
    assert narrow[1] == "Domains:   shop.example.com"
    assert narrow[3] == f"           {LONG}"


def test_column_widths_give_each_column_its_longest_word_at_least() -> None:
    rows = [["a b c d e", "one.example.com"]]
    assert column_widths(["H", "Name"], rows, 80) == [9, 15]  # all fits on one line
    widths = column_widths(["H", "Name"], rows, 3 + 15 + 3)
    assert widths == [3, 15]  # the words of the first wrap; the name stays whole
    assert column_widths(["H", "Name"], rows, 3 + 14) is None
    assert column_widths(["H"], [], 10) == [1]


def test_a_question_quoting_the_cas_words_sends_the_terminal_no_escape(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`account register` asks about the CA's termsOfService URL, which the CA chose: an
    escape sequence or a line break in it is written as its escape, never obeyed."""
    out = Output(json_mode=False, quiet=False, verbose=False, color=False)
    out.stdin_tty = True
    monkeypatch.setattr("sys.stdin", io.StringIO("y\nname\n\n"))
    url = "https://ca.test/tos\x1b]0;owned\x07\nDo you accept?"
    assert out.confirm(f"Do you accept the CA's terms of service at {url}?")
    assert out.read_line(f"Value for {url}") == "name"
    said = capsys.readouterr().err
    assert "\x1b" not in said and "\x07" not in said and "\n" not in said
    assert said.count("tos\\x1b]0;owned\\x07\\nDo you accept?") == 2
    out.wait_for_enter("create the record\n  _acme-challenge.x.test TXT \x1b[2J")
    assert capsys.readouterr().err == "create the record\n  _acme-challenge.x.test TXT \\x1b[2J\n"


@pytest.mark.parametrize("count", [0, 1, 3])
def test_a_streamed_document_is_the_same_json_as_one_built_whole(
    count: int, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    from datetime import UTC, datetime

    items = [{"name": f"n{i}", "at": datetime(2026, 1, i + 1, tzinfo=UTC)} for i in range(count)]
    out = Output(json_mode=True, quiet=False, verbose=False, color=False)
    out.emit_json({"lineages": items})
    whole = capsys.readouterr().out
    out.emit_json_items("lineages", iter(items))
    streamed = capsys.readouterr().out
    assert json.loads(streamed) == json.loads(whole)
    assert streamed.endswith("}\n")
