"""`certcli --version` and `certcli status` stay light: no ACME stack, no dnspython."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PROBE = """
import json, sys
from certcli.cli.main import run
code = run(sys.argv[1:])
roots = {m.split(".")[0] for m in sys.modules}
heavy = sorted(roots & {"acme", "josepy", "dns", "cryptography", "requests", "psycopg"})
print(json.dumps({"code": code, "heavy": heavy}))
"""


@pytest.mark.parametrize("args", [["--version"], ["status"], ["status", "--json"]])
def test_light_commands_import_no_heavy_module(args: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "CERTCLI_CONFIG_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, check=True
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "heavy": []}


def test_status_over_a_populated_store_stays_light(tmp_path: Path) -> None:
    """With lineages present status reads meta.json, never the certificates."""
    from tests.lab.localca import LocalCA

    issued = LocalCA(intermediates=0).issue(["light.example.com"])
    (tmp_path / "c.pem").write_bytes(issued.fullchain_pem)
    (tmp_path / "k.pem").write_bytes(issued.key_pem)
    env = {**os.environ, "CERTCLI_CONFIG_DIR": str(tmp_path / "store")}
    certcli = Path(sys.executable).with_name("certcli")
    subprocess.run(
        [certcli, "upload", "light", "--cert", "c.pem", "--key", "k.pem"],
        cwd=tmp_path,
        env=env,
        check=True,
    )
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1])["heavy"] == []
    assert '"name": "light"' in proc.stdout


def test_version_matches_the_package_metadata() -> None:
    from importlib.metadata import version

    certcli = Path(sys.executable).with_name("certcli")
    out = subprocess.run([certcli, "--version"], capture_output=True, text=True, check=True).stdout
    assert out == f"certcli {version('certcli')}\n"
