"""Files a user names as input are read only when they are regular files: a FIFO (which would
block for ever), a device (which reads without end) or a directory gets one line, exit 4."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ON_POSTGRES, Certcli, ok, snapshot, store_contents
from tests.integration.test_import_certbot import fake_lineage
from tests.lab.localca import LocalCA

# a hang fails, not blocks; a run on PostgreSQL costs more (the driver, the key's passphrase)
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180 if ON_POSTGRES else 60)]


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _zero(path: Path) -> None:
    path.symlink_to("/dev/zero")  # a link of the user's own is followed: to a device here


def _directory(path: Path) -> None:
    path.mkdir()


KINDS: list[tuple[str, Callable[[Path], None], str]] = [
    ("fifo", _fifo, "is a FIFO, not a regular file"),
    ("zero", _zero, "is a device, not a regular file"),
    ("directory", _directory, "is a directory, not a regular file"),
]


@pytest.fixture
def files(certcli: Certcli, ca: LocalCA, tmp_path: Path) -> Path:
    """good.pem/good.key, a lineage `site` uploaded from them, and new.pem/new.key."""
    good, new = ca.issue(["site.example.com"]), ca.issue(["site.example.com"])
    (tmp_path / "good.pem").write_bytes(good.fullchain_pem)
    (tmp_path / "good.key").write_bytes(good.key_pem)
    (tmp_path / "new.pem").write_bytes(new.cert_pem)
    (tmp_path / "new.chain").write_bytes(new.chain_pem)
    (tmp_path / "new.key").write_bytes(new.key_pem)
    ok(certcli("upload", "site", "--cert", "good.pem", "--key", "good.key"))
    return tmp_path


def _everything(certcli: Certcli) -> tuple[dict, dict]:
    """The config dir's files and the store's contents (the same thing on the file store)."""
    return snapshot(certcli.config_dir), store_contents(certcli)


def _refused(certcli: Certcli, argv: list[str | Path], words: str) -> None:
    before = _everything(certcli)
    run = certcli(*argv)
    assert run.code == 4, (argv, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], (argv, run.stderr)
    assert _everything(certcli) == before


@pytest.mark.parametrize(("label", "make", "words"), KINDS, ids=[k[0] for k in KINDS])
def test_upload_and_download_inputs_must_be_regular_files(
    certcli: Certcli, files: Path, label: str, make: Callable[[Path], None], words: str
) -> None:
    bad = files / f"bad-{label}"
    make(bad)
    upload = ["upload", "site", "--yes"]
    _refused(
        certcli, [*upload, "--cert", bad, "--key", "new.key"], f"certificate file {bad} {words}"
    )
    _refused(certcli, [*upload, "--cert", "new.pem", "--key", bad], f"key file {bad} {words}")
    _refused(
        certcli,
        [*upload, "--cert", "new.pem", "--chain", bad, "--key", "new.key"],
        f"chain file {bad} {words}",
    )
    out = files / "site.p12"
    _refused(
        certcli,
        [
            "download",
            "site",
            "--what",
            "pkcs12",
            "--include-key",
            "--password-file",
            bad,
            "--out",
            out,
        ],
        f"password file {bad} {words}",
    )
    assert not out.exists()


@pytest.mark.parametrize(("label", "make", "words"), KINDS, ids=[k[0] for k in KINDS])
def test_the_passphrase_file_must_be_a_regular_file(
    certcli: Certcli, files: Path, label: str, make: Callable[[Path], None], words: str
) -> None:
    ok(certcli("config", "set", "store.encrypt_keys", "true"))
    bad = files / f"pass-{label}"
    make(bad)
    _refused(
        certcli,
        ["--passphrase-file", bad, "csr", "enc.example.com"],
        f"password file {bad} {words}",
    )


def test_import_certbot_reads_no_fifo(certcli: Certcli, ca: LocalCA, tmp_path: Path) -> None:
    root = tmp_path / "letsencrypt"
    fake_lineage(root, ca, "a.example.com", ["a.example.com"])
    fake_lineage(root, ca, "b.example.com", ["b.example.com"])
    key = root / "archive" / "a.example.com" / "privkey2.pem"
    key.unlink()
    os.mkfifo(key)  # live/a.example.com/privkey.pem leads here
    conf = root / "renewal" / "b.example.com.conf"
    conf.unlink()
    os.mkfifo(conf)
    run = certcli("import", "certbot", root, "--dry-run")
    assert run.code == 1, run.stderr  # some lineages could not be imported
    assert f"{root}/live/a.example.com/privkey.pem is a FIFO, not a regular file" in run.stderr
    assert f"{conf} is a FIFO, not a regular file" in run.stderr
    assert "Traceback" not in run.stderr
