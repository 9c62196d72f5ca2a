"""The StrictModes rule (certcli/trust.py): who may own, and who may write, what certcli reads."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from certcli.errors import StoreError, UntrustedError
from certcli.storage.files import Store
from certcli.trust import check_chain, distrust, read_trusted

ME = 1000
NOBODY_KNOWN = 54321  # a uid with no account


def _st(mode: int, uid: int = ME) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, uid, 0, 0, 0, 0, 0))


@pytest.mark.parametrize(
    ("mode", "uid", "parent"),
    [
        (stat.S_IFREG | 0o600, ME, False),
        (stat.S_IFREG | 0o644, ME, False),
        (stat.S_IFREG | 0o644, 0, False),  # root's
        (stat.S_IFDIR | 0o700, ME, False),
        (stat.S_IFDIR | 0o755, 0, True),
        (stat.S_IFDIR | 0o1777, 0, True),  # /tmp: others add entries, cannot replace ours
        (stat.S_IFDIR | 0o1770, 0, True),
    ],
)
def test_trusted(mode: int, uid: int, parent: bool) -> None:
    assert distrust(_st(mode, uid), "/x", ME, parent=parent) is None


@pytest.mark.parametrize(
    ("mode", "parent", "shown"),
    [
        (stat.S_IFREG | 0o666, False, "0666"),
        (stat.S_IFREG | 0o664, False, "0664"),  # group-writable
        (stat.S_IFREG | 0o602, False, "0602"),
        (stat.S_IFREG | 0o1666, False, "1666"),  # a sticky file is no exception
        (stat.S_IFDIR | 0o777, True, "0777"),  # a parent without the sticky bit
        (stat.S_IFDIR | 0o775, True, "0775"),
        (stat.S_IFDIR | 0o1777, False, "1777"),  # the store itself: sticky is not enough
    ],
)
def test_writable_by_others(mode: int, parent: bool, shown: str) -> None:
    problem = distrust(_st(mode), "/srv/my store/config.toml", ME, parent=parent)
    assert isinstance(problem, UntrustedError) and isinstance(problem, StoreError)
    assert problem.exit_code == 5
    assert problem.message == f"/srv/my store/config.toml is writable by other users (mode {shown})"
    assert problem.hint == "chmod go-w '/srv/my store/config.toml'"


@pytest.mark.parametrize("parent", [False, True])
def test_owned_by_another_user(parent: bool) -> None:
    problem = distrust(_st(stat.S_IFDIR | 0o700, NOBODY_KNOWN), "/x", 0, parent=parent)
    assert problem is not None
    assert problem.message == f"/x is owned by uid {NOBODY_KNOWN}, not by you"
    assert problem.hint == "chown root /x"
    theirs = distrust(_st(stat.S_IFREG | 0o600, 0), "/y", NOBODY_KNOWN)
    assert theirs is None  # root's files are trusted by every user
    mine = distrust(_st(stat.S_IFREG | 0o600, NOBODY_KNOWN), "/y", 0)
    assert mine is not None and mine.hint == "chown root /y"


def test_the_owner_is_named_before_the_mode() -> None:
    problem = distrust(_st(stat.S_IFREG | 0o666, NOBODY_KNOWN), "/y", ME)
    assert problem is not None and "owned by" in problem.message


def test_read_trusted_refuses_links_fifos_and_others_files(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("a = 1\n")
    good.chmod(0o644)
    assert read_trusted(good) == b"a = 1\n"
    link = tmp_path / "link.toml"
    link.symlink_to(good)
    with pytest.raises(UntrustedError, match="is a symbolic link"):
        read_trusted(link)
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(StoreError, match="is not a regular file"):
        read_trusted(fifo)  # refused at once, never blocks
    good.chmod(0o620)
    with pytest.raises(UntrustedError, match=r"writable by other users \(mode 0620\)"):
        read_trusted(good)
    good.chmod(0o600)
    os.chown(good, NOBODY_KNOWN, NOBODY_KNOWN)
    with pytest.raises(UntrustedError, match=f"owned by uid {NOBODY_KNOWN}"):
        read_trusted(good)
    with pytest.raises(FileNotFoundError):
        read_trusted(tmp_path / "missing")


def test_chain_checks_the_parents_and_both_sides_of_a_link(tmp_path: Path) -> None:
    top = tmp_path / "top"
    store = top / "a" / "store"
    store.mkdir(parents=True)
    check_chain(store)
    check_chain(store / "not" / "made" / "yet")
    (top / "a").chmod(0o777)
    with pytest.raises(UntrustedError, match=f"^{top / 'a'} is writable"):
        check_chain(store / "not" / "made" / "yet")
    (top / "a").chmod(0o1777)
    check_chain(store)  # a sticky parent, as /tmp
    (top / "a").chmod(0o755)

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY_KNOWN, NOBODY_KNOWN)
    # a link of ours into a directory they own: they can swap what it names
    (theirs / "store").mkdir()
    link = top / "link"
    link.symlink_to(theirs / "store")
    with pytest.raises(UntrustedError, match=f"^{theirs} is owned by uid {NOBODY_KNOWN}"):
        check_chain(link)
    # a link in their directory to a store of ours: they can replace the link
    (theirs / "mine").symlink_to(store)
    with pytest.raises(UntrustedError, match=f"^{theirs} is owned by uid {NOBODY_KNOWN}"):
        check_chain(theirs / "mine")


def test_store_checks_once_and_refuses_an_untrusted_lineage(tmp_path: Path) -> None:
    from certcli.models import LineageSettings, Mode

    store = Store(tmp_path / "store")
    store.write_settings(LineageSettings("a.example", ("a.example",), Mode.AUTO))
    assert store.read_settings("a.example").domains == ("a.example",)
    toml = store.lineage_dir("a.example") / "lineage.toml"
    toml.chmod(0o664)
    with pytest.raises(UntrustedError, match=f"^{toml} is writable"):
        store.read_settings("a.example")
    toml.chmod(0o644)
    os.chown(store.lineage_dir("a.example"), NOBODY_KNOWN, NOBODY_KNOWN)
    with pytest.raises(UntrustedError, match=r"a\.example is owned by uid"):
        store.read_settings("a.example")
    os.chown(store.certs_dir, NOBODY_KNOWN, NOBODY_KNOWN)
    with pytest.raises(UntrustedError, match=f"^{store.certs_dir} is owned"):
        Store(store.root).names()


@pytest.mark.parametrize(
    "made", ["parent", "parent/store", "parent/store/certs", "parent/store/locks"]
)
def test_a_directory_made_by_another_user_after_the_check_is_refused(
    tmp_path: Path, made: str
) -> None:
    """A store directory missing when checked is checked again once made: another user
    may have made it in between (the race of a first run), and would own it."""
    store = Store(tmp_path / "parent" / "store")
    store.check_trusted()  # nothing there yet: nothing to refuse
    for part in ("parent", "parent/store", "parent/store/certs", "parent/store/locks"):
        path = tmp_path / part
        path.mkdir(mode=0o700)
        if part == made:
            os.chown(path, NOBODY_KNOWN, NOBODY_KNOWN)
            break
    with pytest.raises(UntrustedError, match=f"^{tmp_path / 'parent'}.* is owned by uid"):
        store.ensure()
