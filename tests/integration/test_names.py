"""A NAME that is not a lineage's never becomes a path: every command that takes one refuses
it (exit 2, one line) and reads nothing, not even a lineage planted where the path would
lead."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import Certcli, live_dir, ok, on_pg, snapshot, store_contents
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration

DEAD_CA = {"CERTCLI_SERVER": "https://127.0.0.1:9/directory"}  # nothing may reach a real CA


def _commands(name: str) -> list[list[str]]:
    return [
        ["status", name],
        ["status", name, "--check-dns"],
        ["download", name],
        ["upload", name, "--cert", "site.pem", "--key", "site.key"],
        ["revoke", name],
        ["delete", name, "--yes"],
        ["san", "add", name, "extra.example.com"],
        ["san", "remove", name, "planted.example.com"],
        ["san", "list", name],
        ["renew", name],
        ["renew", name, "--force"],
        ["issue", "--name", name, "extra.example.com", "--webroot", ".", "--agree-tos"],
        ["csr", "--name", name, "extra.example.com"],
    ]


@pytest.fixture
def store(certcli: Certcli, ca: LocalCA, tmp_path: Path) -> Certcli:
    """A store with one lineage, `planted`, whose directory the tests copy to where a bad
    name's path would lead (on PostgreSQL, its live files: the only lineage directory on
    this host)."""
    cert = ca.issue(["planted.example.com"])
    (tmp_path / "site.pem").write_bytes(cert.fullchain_pem)
    (tmp_path / "site.key").write_bytes(cert.key_pem)
    ok(certcli("upload", "planted", "--cert", "site.pem", "--key", "site.key"))
    return certcli


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("../outside", "config/outside"),
        ("ABSOLUTE", "elsewhere/lineage"),
        ("x/../../up", "config/up"),
        (".hidden", "config/certs/.hidden"),
        ("nl\n", "config/certs/nl\n"),
        ("planted\n", None),  # the real lineage's name with a newline: not that lineage
    ],
    ids=["dotdot", "absolute", "inner-dotdot", "hidden", "newline", "real-newline"],
)
def test_a_name_that_is_not_a_lineage_reads_nothing(
    store: Certcli, tmp_path: Path, name: str, where: str | None
) -> None:
    lineage = store.config_dir / "certs" / "planted"
    if on_pg(store):  # the lineages' directories on this host are live/<name>
        lineage = live_dir(store, "planted")
        where = where and where.replace("config/certs/", "config/live/")
    if name == "ABSOLUTE":
        name = str(tmp_path / where)  # type: ignore[operator]
    if where is not None:
        planted = tmp_path / where
        planted.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(lineage, planted, symlinks=True)
    (lineage.parent / "x").mkdir()  # so that x/../../up would resolve
    before, stored = snapshot(tmp_path), store_contents(store)
    for argv in _commands(name):
        run = store(*argv, env=DEAD_CA)
        assert run.code == 2, (argv, run.stdout, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "invalid certificate name" in lines[0], (argv, run.stderr)
        assert "planted.example.com" not in run.stdout + run.stderr, argv
        assert run.stdout == "", argv
    assert snapshot(tmp_path) == before  # nothing read was changed, nothing written anywhere
    assert store_contents(store) == stored
