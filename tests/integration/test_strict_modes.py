"""Files other users can change are not trusted (docs/security.md): certcli, run as root,
meets a store, a parent, a config.toml or a lineage.toml that the unprivileged user
`certcli-other` owns or may write, and refuses it with the `chown`/`chmod` that fixes it;
the hook planted there never runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import (
    Certcli,
    OtherUser,
    Run,
    lineage_names,
    lineage_settings,
    live_version,
    ok,
    on_pg,
)
from tests.lab import Lab
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration


NAME = "strict.certcli.test"


def _issued(acme: Certcli, lab: Lab, config_dir: Path, name: str = NAME) -> Certcli:
    """certcli with a store at `config_dir` holding one issued lineage."""
    acme.config_dir = config_dir
    ok(acme("issue", name, "--webroot", lab.webroot, "--agree-tos", "-q"))
    return acme


def _live(acme: Certcli, name: str = NAME) -> int | None:
    return live_version(acme, name)


def _hook(marker: Path) -> str:
    return f"[hooks]\ndeploy = 'touch {marker}'\n"


def _refused(run: Run, line: str) -> None:
    """One line on stderr, the one expected (the path, what is wrong, the fix)."""
    assert run.stderr.strip().splitlines()[-1] == f"certcli: error: {line}", run.stderr


def test_a_store_owned_by_another_user_is_refused(
    acme: Certcli, lab: Lab, other_user: OtherUser, shared_dir: Path
) -> None:
    store = shared_dir / "store"
    _issued(acme, lab, store)
    before = _live(acme)
    os.chown(store, other_user.uid, other_user.gid)
    marker = shared_dir / "marker"
    # the owner of the directory replaces config.toml (root's, 0600) with their own
    other_user.sh(f'rm -f {store}/config.toml && printf "{_hook(marker)}" > {store}/config.toml')
    line = (
        f"{store} is owned by uid {other_user.uid} (certcli-other), not by you; chown root {store}"
    )
    for argv in (["renew", "--force"], ["issue", "new.certcli.test", "--webroot", lab.webroot]):
        run = acme(*argv)
        assert run.code == 5
        _refused(run, line)
    assert not marker.exists() and _live(acme) == before
    for argv in (["status", NAME], ["status"], ["download", NAME, "--what", "cert"]):
        run = acme(*argv)  # no command uses the store, even to read
        assert run.code == 5 and run.stdout == ""
        _refused(run, line)

    os.chown(store, 0, 0)  # the fix the message gives (the file planted is still theirs)
    run = acme("renew", "--force")
    assert run.code == 5
    _refused(
        run,
        f"{store}/config.toml is owned by uid {other_user.uid} (certcli-other), not by you; "
        f"chown root {store}/config.toml",
    )
    assert not marker.exists()


@pytest.mark.parametrize("where", ["link to their directory", "link in their directory"])
def test_a_link_into_a_directory_another_user_owns_is_refused(
    acme: Certcli,
    lab: Lab,
    other_user: OtherUser,
    shared_dir: Path,
    other_owned: Path,
    tmp_path: Path,
    where: str,
) -> None:
    """They could swap the store the link leads to, or the link itself."""
    if where == "link to their directory":
        _issued(acme, lab, shared_dir / "store")
        shutil.move(shared_dir / "store", other_owned / "store")  # root's store, their parent
        link = tmp_path / "config-link"
        link.symlink_to(other_owned / "store")
    else:
        _issued(acme, lab, shared_dir / "store")
        link = other_owned / "config-link"
        link.symlink_to(shared_dir / "store")
    acme.config_dir = link
    before = _live(acme)
    run = acme("renew", "--force")
    assert run.code == 5
    _refused(
        run,
        f"{other_owned} is owned by uid {other_user.uid} (certcli-other), not by you; "
        f"chown root {other_owned}",
    )
    assert _live(acme) == before


def test_a_link_of_roots_own_into_its_own_store_works(
    acme: Certcli, lab: Lab, shared_dir: Path, tmp_path: Path
) -> None:
    marker = shared_dir / "marker"
    _issued(acme, lab, shared_dir / "store")
    (shared_dir / "store" / "config.toml").write_text(_hook(marker))
    link = tmp_path / "config-link"
    link.symlink_to(shared_dir / "store")
    acme.config_dir = link
    ok(acme("renew", "--force"))
    assert marker.exists()


@pytest.mark.parametrize("mode", [0o666, 0o646, 0o660, 0o620], ids=lambda mode: f"{mode:04o}")
def test_a_config_toml_others_may_write_never_runs_its_hook(
    acme: Certcli, lab: Lab, other_user: OtherUser, shared_dir: Path, mode: int
) -> None:
    store = shared_dir / "store"
    _issued(acme, lab, store)
    before = _live(acme)
    config = store / "config.toml"
    config.write_text("")
    config.chmod(mode)
    marker = shared_dir / "marker"
    if mode & 0o002:  # the other user writes the hook in, as it may
        store.chmod(0o755)
        other_user.sh(f'printf "{_hook(marker)}" >> {config}')
    else:
        config.write_text(_hook(marker))
    assert "deploy" in config.read_text()
    line = f"{config} is writable by other users (mode 0{mode:o}); chmod go-w {config}"
    for argv in (
        ["renew", "--force"],
        ["issue", NAME, "--force-renewal", "--webroot", lab.webroot],
        ["config", "get", "hooks.deploy"],
        ["config", "set", "hooks.deploy", "echo safe"],  # not rewritten over what was planted
    ):
        run = acme(*argv)
        assert run.code == 5, argv
        _refused(run, line)
    assert not marker.exists() and _live(acme) == before
    assert "deploy" in config.read_text() and config.stat().st_mode & 0o777 == mode

    config.chmod(mode & ~0o022)  # the fix the message gives: now it is root's file again
    ok(acme("renew", "--force"))
    assert marker.exists() and _live(acme) != before


@pytest.mark.file_store  # the modes of a lineage.toml file
@pytest.mark.parametrize("mode", [0o664, 0o666], ids=lambda mode: f"{mode:04o}")
def test_a_lineage_toml_others_may_write_is_refused_for_that_lineage(
    acme: Certcli, lab: Lab, shared_dir: Path, mode: int
) -> None:
    marker = shared_dir / "marker"
    _issued(acme, lab, shared_dir / "store")
    ok(acme("issue", "fine.certcli.test", "--webroot", lab.webroot, "-q"))
    toml = acme.config_dir / "certs" / NAME / "lineage.toml"
    toml.write_text(toml.read_text() + f"\n[hooks]\ndeploy = 'touch {marker}'\n")
    toml.chmod(mode)
    before = _live(acme)
    line = f"{toml} is writable by other users (mode 0{mode:o}); chmod go-w {toml}"

    run = acme("renew", "--force")
    assert run.code == 1  # the other lineage is renewed
    assert line in run.stderr and "Renewed fine.certcli.test" in run.stderr + run.stdout
    # status lists it as Damaged (one damaged lineage never hides the others), the fix shown
    run = ok(acme("status", NAME))
    assert "Status:  Damaged" in run.stdout and f"Error:   {line} (damaged)" in run.stdout
    assert acme("status", "--fail-on", "damaged").code == 1
    for argv in (
        ["issue", NAME, "--force-renewal", "--webroot", lab.webroot],
        ["san", "add", NAME, f"www.{NAME}", "--no-issue"],
    ):
        run = acme(*argv)
        assert run.code == 5, argv
        _refused(run, line)
    assert not marker.exists() and _live(acme) == before

    toml.chmod(0o644)
    ok(acme("renew", "--force", NAME))
    assert marker.exists()


@pytest.mark.file_store  # the owner of a lineage's directory under certs/
def test_a_lineage_directory_another_user_owns_is_refused(
    acme: Certcli, lab: Lab, other_user: OtherUser, shared_dir: Path
) -> None:
    marker = shared_dir / "marker"
    store = shared_dir / "store"
    _issued(acme, lab, store)
    lineage = store / "certs" / NAME
    for directory in (store, store / "certs"):
        directory.chmod(0o711)  # they may reach the directory given to them, no more
    os.chown(lineage, other_user.uid, other_user.gid)
    other_user.sh(
        f'cat {lineage}/lineage.toml > {lineage}/new && printf "{_hook(marker)}" >> '
        f"{lineage}/new && mv {lineage}/new {lineage}/lineage.toml"
    )
    before = _live(acme)
    run = acme("renew", "--force")
    assert run.code == 1
    assert (
        f"{lineage} is owned by uid {other_user.uid} (certcli-other), not by you; "
        f"chown root {lineage}"
    ) in run.stderr
    assert not marker.exists() and _live(acme) == before


@pytest.mark.file_store  # accounts/ files (a PostgreSQL store keeps accounts in the database)
@pytest.mark.parametrize("what", ["accounts", "account", "key"])
def test_an_account_another_user_can_change_is_refused(
    acme: Certcli, lab: Lab, other_user: OtherUser, shared_dir: Path, what: str
) -> None:
    """Whoever can change the account key could sign as it."""
    _issued(acme, lab, shared_dir / "store")
    accounts = acme.config_dir / "accounts"
    (account,) = accounts.glob("*/*")
    target = {"accounts": accounts, "account": account, "key": account / "key.pem"}[what]
    os.chown(target, other_user.uid, other_user.gid)
    before = _live(acme)
    run = acme("renew", "--force")
    assert run.code == 1
    line = f"{target} is owned by uid {other_user.uid} (certcli-other), not by you"
    assert line in run.stderr and _live(acme) == before
    run = acme("issue", "another.certcli.test", "--webroot", lab.webroot)
    assert run.code == 5 and line in run.stderr


def test_a_locks_directory_another_user_owns_is_refused(
    acme: Certcli, lab: Lab, other_user: OtherUser, shared_dir: Path
) -> None:
    """The lock file gets the PID written into it: through their link, into any file."""
    store = shared_dir / "store"
    _issued(acme, lab, store)
    victim = shared_dir / "victim"
    victim.write_text("precious\n")
    store.chmod(0o711)
    locks = store / "locks"
    os.chown(locks, other_user.uid, other_user.gid)
    other_user.sh(
        f"rm -f {locks}/* && ln -s {victim} {locks}/lineage-{NAME}.lock "
        f"&& ln -s {victim} {locks}/store.lock"
    )
    run = acme("renew", "--force")
    assert run.code == 5
    _refused(
        run,
        f"{locks} is owned by uid {other_user.uid} (certcli-other), not by you; chown root {locks}",
    )
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777], ids=lambda mode: f"{mode:04o}")
def test_a_parent_others_may_write(
    acme: Certcli, lab: Lab, other_user: OtherUser, shared_dir: Path, mode: int
) -> None:
    """Without the sticky bit anyone may rename the store away and put their own in its
    place; with it (as /tmp) they may not."""
    parent = shared_dir / "parent"
    parent.mkdir()
    parent.chmod(mode)
    acme.config_dir = parent / "store"
    run = acme("issue", NAME, "--webroot", lab.webroot, "--agree-tos", "-q")
    if mode & 0o1000:
        ok(run)
        assert _live(acme) == 1
        other_user.sh(f"mv {parent}/store {parent}/mine", check=False)
        assert (parent / "store").is_dir()  # the sticky bit kept it
        return
    assert run.code == 5
    _refused(run, f"{parent} is writable by other users (mode 0{mode:o}); chmod go-w {parent}")
    assert not (parent / "store").exists()  # nothing created under it


def test_a_store_of_roots_own_with_readable_files_works(
    acme: Certcli, lab: Lab, shared_dir: Path
) -> None:
    """root's files 0644 (not writable by others) under /tmp (sticky) are trusted."""
    marker = shared_dir / "marker"
    store = shared_dir / "store"
    _issued(acme, lab, store)
    (store / "config.toml").write_text(_hook(marker))
    (store / "config.toml").chmod(0o644)
    store.chmod(0o755)
    if not on_pg(acme):
        (store / "certs" / NAME / "lineage.toml").chmod(0o644)
    ok(acme("renew", "--force"))
    assert marker.exists()
    assert ok(acme("status", NAME, "--json")).json()["lineages"][0]["name"] == NAME


def test_certbot_settings_others_may_write_are_not_imported(
    certcli: Certcli, ca: LocalCA, other_user: OtherUser, tmp_path: Path
) -> None:
    """A renewal configuration's hooks would become the lineage's deploy hook."""
    from tests.integration.test_import_certbot import fake_lineage

    root = tmp_path / "letsencrypt"
    marker = tmp_path / "marker"
    fake_lineage(root, ca, "good.example.com", ["good.example.com"])
    params = (
        f"authenticator = webroot\nwebroot_path = /var/www/html,\nrenew_hook = touch {marker}\n"
        "[[webroot_map]]\nplanted.example.com = /var/www/html\n"
    )
    fake_lineage(root, ca, "planted.example.com", ["planted.example.com"], params=params)
    conf = root / "renewal" / "planted.example.com.conf"
    conf.chmod(0o646)
    run = certcli("import", "certbot", root, "--yes")
    assert run.code == 1
    assert (
        f"certcli: error: planted.example.com: {conf} is writable by other users (mode 0646); "
        f"chmod go-w {conf}"
    ) in run.stderr.splitlines()
    assert lineage_names(certcli) == ["good.example.com"]
    assert "hooks" not in (lineage_settings(certcli, "good.example.com") or "")

    os.chown(root / "renewal", other_user.uid, other_user.gid)
    run = certcli("import", "certbot", root, "--yes", "--name", "planted.example.com")
    assert run.code == 5
    _refused(
        run,
        f"{root / 'renewal'} is owned by uid {other_user.uid} (certcli-other), not by you; "
        f"chown root {root / 'renewal'}",
    )
    conf.chmod(0o644)
    os.chown(root / "renewal", 0, 0)
    ok(certcli("import", "certbot", root, "--yes", "--name", "planted.example.com"))
    toml = lineage_settings(certcli, "planted.example.com") or ""
    assert f"touch {marker}" in toml  # root's own file: its hook is kept
