"""Running under systemd: the documented install gives units `systemd-analyze verify`
accepts, and a store the unit leaves read-only (ProtectSystem=) is named as such."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CERTCLI, Certcli, ok
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "docs" / "systemd"


def _install_snippet() -> str:
    """The shell block of docs/unattended.md that installs the units."""
    text = (ROOT / "docs" / "unattended.md").read_text()
    (block,) = [b for b in re.findall(r"```sh\n(.*?)```", text, re.S) if "/PATH/TO/certcli" in b]
    return block


def test_the_documented_install_gives_units_systemd_accepts(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    # the documented commands, into a directory of the test's own, with the venv's certcli
    # on PATH as an install puts it there
    script = _install_snippet().replace("/etc/systemd/system", str(tmp_path))
    script = "\n".join(line for line in script.splitlines() if not line.startswith("systemctl"))
    proc = subprocess.run(
        ["sh", "-ec", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": f"{CERTCLI.parent}:/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr  # systemd-analyze verify found nothing to say
    service = (tmp_path / "certcli-renew.service").read_text()
    assert f"ExecStart={CERTCLI} renew" in service
    assert "/PATH/TO/certcli" not in service
    # and the shipped unit as it is: its placeholder is no executable
    bad = subprocess.run(
        ["systemd-analyze", "verify", UNITS / "certcli-renew.service"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "/PATH/TO/certcli" in bad.stderr


def _read_only(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.fail("this test needs root and mount namespaces (unshare -m)")
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, cwd=tmp_path
    )


@pytest.mark.file_store  # the file store's directories on a read-only mount
def test_a_read_only_store_is_reported_as_such(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    """The whole store read-only (as ProtectSystem=full makes /etc), then one lineage."""
    issued = ca.issue(["ro.example.com"])
    (tmp_path / "c.pem").write_bytes(issued.fullchain_pem)
    (tmp_path / "c.key").write_bytes(issued.key_pem)
    ok(certcli("upload", "ro", "--cert", "c.pem", "--key", "c.key"))
    other = ca.issue(["ro.example.com"])
    (tmp_path / "d.pem").write_bytes(other.fullchain_pem)
    (tmp_path / "d.key").write_bytes(other.key_pem)
    store = certcli.config_dir
    exe = shlex.quote(str(CERTCLI))
    env = f"CERTCLI_CONFIG_DIR={store} CERTCLI_LOCK_WAIT=1"
    for mounted, command in (
        (store, "csr new.example.com"),
        (store, "renew"),
        (store, "config set renewal.jitter 5"),
        (store, "delete ro --yes"),
        (store, "upload ro --cert d.pem --key d.key"),
        (store / "certs" / "ro", "upload ro --cert d.pem --key d.key"),
    ):
        script = f"mount --bind -o ro {mounted} {mounted} && exec env {env} {exe} {command}"
        proc = _read_only(script, tmp_path)
        assert proc.returncode == 5, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert "Read-only file system" in line, line
        assert "Permission denied" not in line
        assert "ReadWritePaths=" in line
    assert (store / "certs" / "ro" / "live").readlink() == Path("archive/0001")
