"""`[store] encrypt_keys`: archived and pending keys encrypted at rest; live stays plaintext."""

from __future__ import annotations

import os
import stat

import pytest

from certcli.keycrypt import decrypt
from tests.conftest import Certcli, live_dir, ok, snapshot, store_contents
from tests.lab import Lab
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration

SECRET = "a long passphrase"


@pytest.fixture
def sealed(certcli: Certcli, lab: Lab) -> Certcli:
    certcli.point_at(lab)
    certcli.config_dir.mkdir(parents=True)
    (certcli.config_dir / "config.toml").write_text("[store]\nencrypt_keys = true\n")
    certcli.env["CERTCLI_PASSPHRASE"] = SECRET
    return certcli


@pytest.mark.file_store  # the privkey.pem.enc files of the archive
def test_archived_keys_are_encrypted_and_live_is_plain(sealed: Certcli, lab: Lab) -> None:
    ok(sealed("issue", "enc.certcli.test", "--webroot", lab.webroot, "--agree-tos"))
    ok(sealed("renew", "--force"))
    archive = sealed.config_dir / "certs" / "enc.certcli.test" / "archive"
    old, live = archive / "0001", archive / "0002"
    assert not (old / "privkey.pem").exists()
    old_sealed = (old / "privkey.pem.enc").read_bytes()
    assert b"PRIVATE KEY" not in old_sealed
    assert stat.S_IMODE(os.stat(old / "privkey.pem.enc").st_mode) == 0o600
    assert decrypt(old_sealed, SECRET.encode(), "k").startswith(b"-----BEGIN PRIVATE KEY-----")
    plain = (live / "privkey.pem").read_bytes()
    assert plain.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert decrypt((live / "privkey.pem.enc").read_bytes(), SECRET.encode(), "k") == plain
    key = ok(sealed("download", "enc.certcli.test", "--what", "key", "--include-key")).stdout
    assert key.encode() == plain


def test_without_the_passphrase_nothing_is_written(sealed: Certcli, lab: Lab) -> None:
    del sealed.env["CERTCLI_PASSPHRASE"]
    run = sealed("csr", "nopass.certcli.test", "--out", "x.csr")
    assert run.code == 2 and "--passphrase-file" in run.stderr
    assert not (sealed.config_dir / "certs" / "nopass.certcli.test" / "pending").exists()


@pytest.mark.file_store  # the files of pending/
def test_a_pending_key_is_encrypted_and_needs_the_right_passphrase(
    sealed: Certcli, tmp_path
) -> None:
    run = ok(sealed("csr", "csr.certcli.test", "--out", "req.csr"))
    pending = sealed.config_dir / "certs" / "csr.certcli.test" / "pending"
    assert sorted(os.listdir(pending)) == ["csr.pem", "meta.json", "privkey.pem.enc"]
    # the key named is the file that exists
    assert f"(key: {pending / 'privkey.pem.enc'})" in run.stderr + run.stdout
    shown = ok(sealed("csr", "csr2.certcli.test", "--out", "req2.csr", "--json")).json()
    assert shown["key_path"].endswith("pending/privkey.pem.enc")
    assert os.path.isfile(shown["key_path"])
    assert b"PRIVATE KEY" not in (pending / "privkey.pem.enc").read_bytes()
    issued = LocalCA(intermediates=1).sign_csr((tmp_path / "req.csr").read_bytes())
    (tmp_path / "cert.pem").write_bytes(issued.fullchain_pem)

    before = snapshot(sealed.config_dir)
    (tmp_path / "wrong").write_text("not it\n")
    run = sealed("upload", "csr.certcli.test", "--cert", "cert.pem", "--passphrase-file", "wrong")
    assert run.code == 4 and "passphrase does not open" in run.stderr
    assert snapshot(sealed.config_dir) == before
    ok(sealed("upload", "csr.certcli.test", "--cert", "cert.pem"))
    live = sealed.config_dir / "certs" / "csr.certcli.test" / "live"
    assert (live / "privkey.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_a_wrong_passphrase_changes_nothing_and_the_right_one_completes_the_csr(
    sealed: Certcli, tmp_path
) -> None:
    """Whichever store: the pending key opens only with its passphrase."""
    ok(sealed("csr", "csr.certcli.test", "--out", "req.csr"))
    issued = LocalCA(intermediates=1).sign_csr((tmp_path / "req.csr").read_bytes())
    (tmp_path / "cert.pem").write_bytes(issued.fullchain_pem)

    before = store_contents(sealed)
    (tmp_path / "wrong").write_text("not it\n")
    run = sealed("upload", "csr.certcli.test", "--cert", "cert.pem", "--passphrase-file", "wrong")
    assert run.code == 4 and "passphrase does not open" in run.stderr
    assert store_contents(sealed) == before
    ok(sealed("upload", "csr.certcli.test", "--cert", "cert.pem"))
    live = live_dir(sealed, "csr.certcli.test")
    assert (live / "privkey.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
