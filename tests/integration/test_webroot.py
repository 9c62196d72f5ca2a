"""HTTP-01 in a webroot someone else owns: nothing is touched through a link that user
planted (at `.well-known`, at `acme-challenge`, at a token's name), and the token files of a
run that was killed are removed by the next run, through no link either."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from certcli.challenges import Challenge
from certcli.challenges.http01 import WebrootSolver
from certcli.errors import CertcliError
from tests.conftest import Certcli, OtherUser, ok, snapshot
from tests.lab import Lab

pytestmark = pytest.mark.integration

RECORDS = "leftovers"  # in the store: what a run is about to create outside it


def _challenge(token: str) -> Challenge:
    return Challenge("x.example.com", "http-01", token, f"{token}.thumb", f"{token}.thumb")


@pytest.fixture
def www(other_user: OtherUser, other_owned: Path) -> Path:
    """A webroot the other user owns (a site's user, a web application)."""
    other_user.sh(f"mkdir -m 755 {other_owned}/www")
    return other_owned / "www"


@pytest.fixture
def precious(shared_dir: Path) -> Path:
    """A directory of root's, 0700, holding a file 0600: what a planted link points at."""
    directory = shared_dir / "root-only"
    directory.mkdir(mode=0o700)
    (directory / "shadow").write_text("root:secret\n")
    (directory / "shadow").chmod(0o600)
    return directory


PLANTS = {
    # what the other user plants in its webroot, and the link's path in the message
    "well-known-to-dir": ("ln -s {precious} .well-known", ".well-known"),
    "well-known-to-file": ("ln -s {precious}/shadow .well-known", ".well-known"),
    "challenge-to-dir": (
        "mkdir .well-known && ln -s {precious} .well-known/acme-challenge",
        ".well-known/acme-challenge",
    ),
    "challenge-to-file": (
        "mkdir .well-known && ln -s {precious}/shadow .well-known/acme-challenge",
        ".well-known/acme-challenge",
    ),
}


@pytest.mark.parametrize("plant", PLANTS, ids=list(PLANTS))
def test_a_link_planted_in_the_webroot_is_not_followed(
    other_user: OtherUser, www: Path, precious: Path, plant: str
) -> None:
    script, link = PLANTS[plant]
    other_user.sh(f"cd {www} && " + script.format(precious=precious))
    before = snapshot(precious)
    solver = WebrootSolver(www)
    with pytest.raises(CertcliError) as error:
        solver.present([_challenge("tok")])
    assert f"{link} is a symbolic link owned by another user (uid {other_user.uid})" in str(
        error.value
    )
    assert "certcli does not follow it" in str(error.value)
    solver.cleanup([_challenge("tok")])
    assert snapshot(precious) == before  # same modes, same content, nothing added
    assert stat.S_IMODE((precious / "shadow").stat().st_mode) == 0o600


def test_a_link_planted_at_the_token_name_is_replaced_not_followed(
    other_user: OtherUser, www: Path, precious: Path
) -> None:
    other_user.sh(
        f"mkdir -p {www}/.well-known/acme-challenge && "
        f"ln -s {precious}/shadow {www}/.well-known/acme-challenge/tok"
    )
    solver = WebrootSolver(www)
    solver.present([_challenge("tok")])
    token = www / ".well-known" / "acme-challenge" / "tok"
    st = token.lstat()
    assert stat.S_ISREG(st.st_mode) and (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o644)
    assert token.read_text() == "tok.thumb"
    solver.cleanup([_challenge("tok")])
    assert not token.exists()
    assert (precious / "shadow").read_text() == "root:secret\n"
    assert stat.S_IMODE((precious / "shadow").stat().st_mode) == 0o600


def test_a_webroot_someone_else_owns_gets_directories_of_certcli(
    other_user: OtherUser, www: Path
) -> None:
    solver = WebrootSolver(www)
    old = os.umask(0o077)
    try:
        solver.present([_challenge("tok")])
    finally:
        os.umask(old)
    for directory in (www / ".well-known", www / ".well-known" / "acme-challenge"):
        st = directory.lstat()
        assert stat.S_ISDIR(st.st_mode) and (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o755)
    # the web server (here the other user) reads the token
    assert other_user.run("cat", www / ".well-known" / "acme-challenge" / "tok").stdout == (
        "tok.thumb"
    )
    solver.cleanup([_challenge("tok")])


def test_a_link_of_root_s_own_is_followed(tmp_path: Path) -> None:
    # one .well-known shared by several sites, linked by the administrator
    shared = tmp_path / "shared-well-known"
    shared.mkdir()
    site = tmp_path / "site"
    site.mkdir()
    (site / ".well-known").symlink_to(shared)
    solver = WebrootSolver(site)
    solver.present([_challenge("tok")])
    assert (shared / "acme-challenge" / "tok").read_text() == "tok.thumb"
    solver.cleanup([_challenge("tok")])
    assert os.listdir(shared / "acme-challenge") == []


def test_issue_refuses_a_planted_link_in_the_webroot(
    acme: Certcli, other_user: OtherUser, www: Path, precious: Path
) -> None:
    other_user.sh(f"ln -s {precious} {www}/.well-known")
    before = snapshot(precious)
    run = acme("issue", "planted.certcli.test", "--webroot", www, "--agree-tos")
    assert run.code == 1, run.stderr
    error = run.stderr.strip().splitlines()[-1]
    assert error.startswith(
        f"certcli: error: cannot write the challenge file in {www}/.well-known/acme-challenge: "
        f"{www}/.well-known is a symbolic link owned by another user (uid {other_user.uid})"
    )
    assert snapshot(precious) == before


# -- leftovers of killed runs --------------------------------------------------------------

_CHILD = """
import os, signal, sys
from pathlib import Path
from certcli.challenges import Challenge
from certcli.leftovers import Journal
from certcli.challenges.http01 import WebrootSolver
webroot, records, token, then = sys.argv[1:]
challenges = [Challenge("x.example.com", "http-01", token, token + ".thumb", token + ".thumb")]
solver = WebrootSolver(Path(webroot), Journal(Path(records), "http-01"))
solver.present(challenges)
print("presented", flush=True)
if then == "kill":
    os.kill(os.getpid(), signal.SIGKILL)  # killed during validation: no cleanup
sys.stdin.readline()  # a live run, validating until told to finish
solver.cleanup(challenges)
"""


def _present_in_child(webroot: Path, store: Path, token: str, then: str) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(webroot), str(store / RECORDS), token, then],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "presented\n"
    return child


@pytest.fixture
def killed(certcli: Certcli, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A webroot holding the token file of a run killed during validation, and its record."""
    webroot = tmp_path / "www"
    webroot.mkdir()
    child = _present_in_child(webroot, certcli.config_dir, "killed-token", "kill")
    assert child.wait(timeout=30) == -signal.SIGKILL
    token = webroot / ".well-known" / "acme-challenge" / "killed-token"
    (record,) = (certcli.config_dir / RECORDS).iterdir()
    assert token.read_text() == "killed-token.thumb"
    assert json.loads(record.read_text()) == {"webroot": str(webroot), "tokens": ["killed-token"]}
    yield token, record


def test_the_next_renew_removes_the_tokens_of_a_killed_run(
    certcli: Certcli, killed: tuple[Path, Path]
) -> None:
    token, record = killed
    unrelated = token.with_name("not-certcli-s")
    unrelated.write_text("someone else's\n")
    ok(certcli("renew"))
    assert not token.exists() and not record.exists()
    assert unrelated.read_text() == "someone else's\n"  # only what certcli recorded


def test_a_live_run_s_tokens_are_left_to_it(certcli: Certcli, tmp_path: Path) -> None:
    webroot = tmp_path / "www"
    webroot.mkdir()
    child = _present_in_child(webroot, certcli.config_dir, "live-token", "wait")
    token = webroot / ".well-known" / "acme-challenge" / "live-token"
    try:
        ok(certcli("renew"))
        assert token.read_text() == "live-token.thumb"  # still validating: untouched
    finally:
        child.communicate("\n", timeout=30)
    assert child.returncode == 0
    assert not token.exists() and os.listdir(certcli.config_dir / RECORDS) == []


def test_removing_leftovers_follows_no_planted_link(
    certcli: Certcli, other_user: OtherUser, www: Path, precious: Path
) -> None:
    other_user.sh(f"mkdir {www}/.well-known")
    child = _present_in_child(www, certcli.config_dir, "shadow", "kill")
    assert child.wait(timeout=30) == -signal.SIGKILL
    # the webroot's owner swaps acme-challenge for a link to a directory holding a file
    # of the token's name
    other_user.sh(
        f"cd {www}/.well-known && mv acme-challenge old && ln -s {precious} acme-challenge"
    )
    ok(certcli("renew"))
    assert (precious / "shadow").read_text() == "root:secret\n"
    assert os.listdir(certcli.config_dir / RECORDS) == []  # nothing of certcli's is left there


def test_the_next_issue_removes_the_tokens_of_a_killed_run(
    acme: Certcli, lab: Lab, tmp_path: Path
) -> None:
    child = _present_in_child(lab.webroot, acme.config_dir, "killed-in-lab", "kill")
    assert child.wait(timeout=30) == -signal.SIGKILL
    token = lab.webroot / ".well-known" / "acme-challenge" / "killed-in-lab"
    assert token.exists()
    ok(acme("issue", "after-kill.certcli.test", "--webroot", lab.webroot, "--agree-tos"))
    assert not token.exists()
    assert os.listdir(lab.webroot / ".well-known" / "acme-challenge") == []
    assert os.listdir(acme.config_dir / RECORDS) == []
