from __future__ import annotations

from certcli.cli.argv import hoist_global_options


def test_global_options_may_follow_the_command() -> None:
    assert hoist_global_options(["status", "--json", "x"]) == ["--json", "status", "x"]
    assert hoist_global_options(["status", "--config-dir", "/d", "-q"]) == [
        "--config-dir",
        "/d",
        "-q",
        "status",
    ]
    assert hoist_global_options(["status", "--config-dir=/d"]) == ["--config-dir=/d", "status"]


def test_nothing_after_a_double_dash_moves() -> None:
    assert hoist_global_options(["csr", "--", "--json"]) == ["csr", "--", "--json"]
