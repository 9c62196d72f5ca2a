"""`download --out` and `csr --out` write only a new name or a regular file: a device, FIFO,
socket, directory or link at the target is refused (nothing written), and a link planted in
the path by another user is never followed."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Certcli, OtherUser, lineage_names, ok, snapshot
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration


@pytest.fixture
def site(certcli: Certcli, ca: LocalCA, tmp_path: Path) -> Certcli:
    """A store with one uploaded lineage, `site`."""
    cert = ca.issue(["site.example.com"])
    (tmp_path / "site.pem").write_bytes(cert.fullchain_pem)
    (tmp_path / "site.key").write_bytes(cert.key_pem)
    ok(certcli("upload", "site", "--cert", "site.pem", "--key", "site.key"))
    return certcli


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _device(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # /dev/null's numbers


def _full(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # /dev/full's numbers


def _socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()


def _directory(path: Path) -> None:
    path.mkdir()


def _link_to_stdout(path: Path) -> None:
    path.symlink_to("/proc/self/fd/1")


def _link_to_file(path: Path) -> None:
    victim = path.with_name("victim")
    victim.write_text("precious\n")
    path.symlink_to(victim)


SPECIAL: list[tuple[str, Callable[[Path], None], str, Callable[[int], bool]]] = [
    ("fifo", _fifo, "is a FIFO", stat.S_ISFIFO),
    ("null", _device, "is a device", stat.S_ISCHR),
    ("full", _full, "is a device", stat.S_ISCHR),
    ("socket", _socket, "is a socket", stat.S_ISSOCK),
    ("directory", _directory, "is a directory", stat.S_ISDIR),
    ("stdout-link", _link_to_stdout, "is a symbolic link", stat.S_ISLNK),
    ("file-link", _link_to_file, "is a symbolic link", stat.S_ISLNK),
]


def _refused(run_code: int, stderr: str, words: str) -> None:
    assert run_code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in stderr, stderr
    assert "--out -" in lines[0]


@pytest.mark.parametrize(
    ("label", "make", "words", "is_kind"), SPECIAL, ids=[s[0] for s in SPECIAL]
)
@pytest.mark.parametrize(
    "what", [["--what", "fullchain"], ["--what", "key", "--include-key"]], ids=["cert", "key"]
)
def test_download_never_replaces_a_special_file(
    site: Certcli,
    tmp_path: Path,
    what: list[str],
    label: str,
    make: Callable[[Path], None],
    words: str,
    is_kind: Callable[[int], bool],
) -> None:
    out = tmp_path / "exports" / label
    out.parent.mkdir()
    make(out)
    before = sorted(os.listdir(out.parent))
    run = site("download", "site", *what, "--out", out)
    _refused(run.code, run.stderr, words)
    assert run.stdout == ""  # not even through the link to stdout
    assert is_kind(out.lstat().st_mode)  # still what it was
    assert sorted(os.listdir(out.parent)) == before  # no temporary file left either
    if label == "file-link":
        assert (out.parent / "victim").read_text() == "precious\n"


@pytest.mark.parametrize(
    ("label", "make", "words", "is_kind"), SPECIAL, ids=[s[0] for s in SPECIAL]
)
def test_csr_never_replaces_a_special_file_and_makes_no_key(
    certcli: Certcli,
    tmp_path: Path,
    label: str,
    make: Callable[[Path], None],
    words: str,
    is_kind: Callable[[int], bool],
) -> None:
    out = tmp_path / "exports" / label
    out.parent.mkdir()
    make(out)
    run = certcli("csr", "csr.example.com", "--out", out)
    _refused(run.code, run.stderr, words)
    assert is_kind(out.lstat().st_mode)
    # no key kept, whichever store: no lineage, not even a pending one
    assert "csr.example.com" not in lineage_names(certcli)
    assert "no certificate named 'csr.example.com'" in certcli("status", "csr.example.com").stderr
    assert not (certcli.config_dir / "certs" / "csr.example.com").exists()


def test_stdout_and_regular_files_still_work(site: Certcli, tmp_path: Path) -> None:
    assert ok(site("download", "site", "--out", "-")).stdout.startswith("-----BEGIN CERTIFICATE")
    existing = tmp_path / "key.pem"
    existing.write_text("old\n")
    existing.chmod(0o644)
    ok(site("download", "site", "--what", "key", "--include-key", "--out", existing))
    assert existing.read_bytes() == (tmp_path / "site.key").read_bytes()
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600  # a new file, not the old one's mode
    # a link of root's own in the directory's path is followed
    (tmp_path / "real").mkdir()
    (tmp_path / "via").symlink_to(tmp_path / "real")
    ok(site("download", "site", "--out", tmp_path / "via" / "fullchain.pem"))
    assert (tmp_path / "real" / "fullchain.pem").read_text().startswith("-----BEGIN")


def test_links_another_user_planted_are_not_followed(
    site: Certcli, other_user: OtherUser, other_owned: Path, shared_dir: Path
) -> None:
    # root's own directory, which the other user would like root to write into
    target = shared_dir / "root-only"
    target.mkdir(mode=0o700)
    victim = target / "privkey.pem"
    victim.write_text("root's own\n")
    other_user.sh(f"ln -s {target} {other_owned}/dir-link && ln -s {victim} {other_owned}/key.pem")
    before = snapshot(target)

    run = site("download", "site", "--out", other_owned / "dir-link" / "privkey.pem")
    assert run.code == 2, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert f"{other_owned}/dir-link is a symbolic link owned by another user" in line
    assert f"(uid {other_user.uid})" in line

    run = site(
        "download", "site", "--what", "key", "--include-key", "--out", other_owned / "key.pem"
    )
    assert run.code == 2 and "is a symbolic link" in run.stderr, run.stderr
    run = site("csr", "planted.example.com", "--out", other_owned / "dir-link" / "x.csr")
    assert run.code == 2 and "owned by another user" in run.stderr, run.stderr
    assert snapshot(target) == before and victim.read_text() == "root's own\n"
    assert (other_owned / "key.pem").is_symlink()

    # a regular file the other user made there is replaced (by rename: never written
    # through), by a file of root's that the other user cannot read
    other_user.sh(f"echo mine > {other_owned}/mine.pem")
    ok(
        site(
            "download", "site", "--what", "key", "--include-key", "--out", other_owned / "mine.pem"
        )
    )
    st = (other_owned / "mine.pem").stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    assert other_user.run("cat", other_owned / "mine.pem", check=False).returncode != 0
