"""A NAME that is not a lineage's never becomes a path: every command that takes one refuses
it (exit 2, one line) and reads nothing, not even a lineage planted where the path would
lead."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import Certcli, ok, snapshot
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
    name's path would lead."""
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
    certs = store.config_dir / "certs"
    if name == "ABSOLUTE":
        name = str(tmp_path / where)  # type: ignore[operator]
    if where is not None:
        planted = tmp_path / where
        planted.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(certs / "planted", planted, symlinks=True)
    (certs / "x").mkdir()  # so that x/../../up would resolve
    before = snapshot(tmp_path)
    for argv in _commands(name):
        run = store(*argv, env=DEAD_CA)
        assert run.code == 2, (argv, run.stdout, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "invalid certificate name" in lines[0], (argv, run.stderr)
        assert "planted.example.com" not in run.stdout + run.stderr, argv
        assert run.stdout == "", argv
    assert snapshot(tmp_path) == before  # nothing read was changed, nothing written anywhere
