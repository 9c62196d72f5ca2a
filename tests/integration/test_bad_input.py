"""Bad input: one line on stderr, a documented exit code, no traceback, and a store left
exactly as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Certcli, snapshot, store_contents
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(certcli: Certcli, ca: LocalCA, tmp_path: Path) -> Certcli:
    """A store holding one live lineage, and a directory of good and bad files."""
    good = ca.issue(["site.example.com"])
    files = {
        "good.pem": good.fullchain_pem,
        "good.key": good.key_pem,
        "other.key": ca.issue(["x.example.com"]).key_pem,
        "garbage.pem": b"this is not PEM at all\n",
        "truncated.pem": good.cert_pem[:200],
        "expired.pem": (
            expired := ca.issue(
                ["site.example.com"], days=1, not_before=datetime.now(UTC) - timedelta(days=3)
            )
        ).fullchain_pem,
        "expired.key": expired.key_pem,
        "future.pem": (
            future := ca.issue(
                ["site.example.com"], not_before=datetime.now(UTC) + timedelta(days=2)
            )
        ).fullchain_pem,
        "future.key": future.key_pem,
        "narrow.pem": (narrow := ca.issue(["other.example.com"])).fullchain_pem,
        "narrow.key": narrow.key_pem,
        "pw": b"pw\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "adir").mkdir()
    run = certcli("upload", "site", "--cert", "good.pem", "--key", "good.key")
    assert run.code == 0, run.stderr
    replacement = ca.issue(["site.example.com"])
    (tmp_path / "new.pem").write_bytes(replacement.fullchain_pem)
    (tmp_path / "new.key").write_bytes(replacement.key_pem)
    return certcli


CASES = [
    # (args, exit code, words the message must contain)
    (["upload", "site", "--cert", "garbage.pem", "--key", "good.key"], 4, "not a PEM certificate"),
    (
        ["upload", "site", "--cert", "truncated.pem", "--key", "good.key"],
        4,
        "not a PEM certificate",
    ),
    (
        ["upload", "site", "--cert", "good.key", "--key", "good.key"],
        4,
        "private key, not a certificate",
    ),
    (
        ["upload", "site", "--cert", "new.pem", "--key", "new.pem"],
        4,
        "certificate, not a private key",
    ),
    (["upload", "site", "--cert", "new.pem", "--key", "other.key"], 4, "does not match"),
    (["upload", "site", "--cert", "expired.pem", "--key", "expired.key"], 4, "expired on"),
    (["upload", "site", "--cert", "future.pem", "--key", "future.key"], 4, "not valid until"),
    (
        ["upload", "site", "--cert", "narrow.pem", "--key", "narrow.key", "--yes"],
        4,
        "does not cover site.example.com",
    ),
    (["upload", "site", "--cert", "missing.pem", "--key", "good.key"], 3, "does not exist"),
    (["upload", "site", "--cert", "adir", "--key", "good.key"], 4, "is a directory"),
    (["upload", "site", "--cert", "new.pem", "--key", "adir"], 4, "is a directory"),
    (["upload", "site", "--cert", "new.pem"], 2, "--key is required"),
    (["upload", "../evil", "--cert", "new.pem", "--key", "new.key"], 2, "invalid certificate name"),
    (["upload", "site"], 2, "Missing option '--cert'"),
    (["csr", "--", "-bad.com"], 2, "invalid domain name"),
    (["csr", "a..b"], 2, "empty label"),
    (["csr", "*.*.x.com"], 2, "wildcard"),
    (["csr", "a" * 64 + ".com"], 2, "label of 64"),
    (["csr", ".".join(["a" * 50] * 5)], 2, "at most 253"),
    (["csr", "bücher.example"], 2, "xn--bcher-kva.example"),
    (["csr", "ok.example.com", "--key-type", "rsa-1024"], 2, "--key-type must be one of"),
    (["csr", "ok.example.com", "--country", "Germany"], 2, "two-letter"),
    (["csr", "site.example.com", "--name", "site", "--out", "x.csr"], 2, "already has a CSR"),
    (["status", "nope"], 3, "no certificate named 'nope'"),
    (["csr", "ok.example.com", "--name", ""], 2, "invalid certificate name ''"),
    (["issue", "ok.example.com", "--name", "", "--webroot", "."], 2, "invalid certificate name"),
    (["csr", "ok.example.com", "--country", "ÄÖ"], 2, "two-letter"),  # letters, not ASCII
    (["csr", "ok.example.com", "--country", "ßa"], 2, "two-letter"),  # "SSA" once upper
    (["status", "--fail-on", "sometimes"], 2, "--fail-on"),
    (["download", "nope"], 3, "no certificate named 'nope'"),
    (["download", "site", "--what", "pem"], 2, "unknown --what"),
    (["download", "site", "--what", "key"], 2, "--include-key"),
    (
        ["download", "site", "--what", "pkcs12", "--include-key", "--out", "x.p12"],
        2,
        "needs a password",
    ),
    (
        [
            "download",
            "site",
            "--what",
            "pkcs12",
            "--include-key",
            "--password-file",
            "nopw",
            "--out",
            "x.p12",
        ],
        3,
        "does not exist",
    ),
    (["download", "site", "--out", "adir"], 2, "is a directory"),
    (
        ["download", "site", "--out", "no/such/dir/x.pem"],
        3,
        "does not exist; create it: mkdir -p no/such/dir",
    ),
    (
        ["issue", "x.example.com", "--webroot", "no-such-dir", "--agree-tos"],
        2,
        # the webroot is kept absolute (for renewals from cron), and named so
        "/no-such-dir does not exist; give the directory your web server serves",
    ),
    (["account", "show"], 3, "`certcli account register --agree-tos` creates one"),
    (["download", "site", "--json"], 2, "--out FILE"),
    (["status", "--bogus"], 2, "No such option"),
    (["frobnicate"], 2, "No such command"),
]


@pytest.mark.parametrize(("args", "code", "words"), CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_one_line_an_exit_code_and_no_change(
    setup: Certcli, args: list[str], code: int, words: str
) -> None:
    # "already has a CSR" needs a waiting CSR first
    if "already has a CSR" in words:
        setup("csr", "site.example.com", "--name", "site2", "--out", "y.csr")
        args = [a if a != "site" else "site2" for a in args]
    before = snapshot(setup.config_dir), store_contents(setup)
    run = setup(*args)
    assert run.code == code, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("certcli: error: ")
    assert words in lines[0]
    assert "Traceback" not in run.stderr
    assert (snapshot(setup.config_dir), store_contents(setup)) == before


def test_an_unwritable_config_dir_is_one_line(certcli: Certcli, tmp_path: Path) -> None:
    (tmp_path / "plainfile").write_text("")
    run = certcli("csr", "ok.example.com", "--config-dir", tmp_path / "plainfile" / "store")
    assert run.code == 5
    assert run.stderr.startswith("certcli: error: cannot write to the config dir")
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_read_only_config_dir_is_one_line(certcli: Certcli, tmp_path: Path) -> None:
    """A store on a read-only mount (root ignores file modes, so a mount it is)."""
    import shutil
    import subprocess

    store = tmp_path / "ro"
    store.mkdir()
    if not shutil.which("unshare"):
        pytest.fail("util-linux unshare is needed for this test")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        # Not root, or no mount namespaces: the plain permission bits then do the job.
        store.chmod(0o500)
        run = certcli("csr", "ok.example.com", "--config-dir", store)
    else:
        from tests.conftest import CERTCLI

        command = f"{CERTCLI} csr ok.example.com --config-dir {store}"
        script = f"mount --bind -o ro {store} {store} && exec {command}"
        proc = subprocess.run(
            ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, cwd=tmp_path
        )
        run = type("R", (), {"code": proc.returncode, "stderr": proc.stderr})()
    assert run.code == 5, run.stderr
    assert "Read-only file system" in run.stderr or "Permission denied" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert list(store.iterdir()) == []
