"""The walk that opens paths component by component (links of other users are refused in
tests/integration, as another user plants them)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from certcli.safepath import kind, open_dir, replace_at


def _real(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def test_own_links_are_followed_relative_and_absolute(tmp_path: Path) -> None:
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "rel").symlink_to("real")
    (tmp_path / "abs").symlink_to(tmp_path / "real" / "sub")
    (tmp_path / "real" / "up").symlink_to("../real/sub")
    assert _real(open_dir(tmp_path / "rel" / "sub")) == str(tmp_path / "real" / "sub")
    assert _real(open_dir(tmp_path / "abs")) == str(tmp_path / "real" / "sub")
    assert _real(open_dir(tmp_path / "rel" / "up" / "..")) == str(tmp_path / "real")
    root = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        assert _real(open_dir("rel/sub", dir_fd=root)) == str(tmp_path / "real" / "sub")
    finally:
        os.close(root)


def test_a_loop_a_file_and_a_missing_directory_fail_as_the_kernel_would(tmp_path: Path) -> None:
    (tmp_path / "l1").symlink_to("l2")
    (tmp_path / "l2").symlink_to("l1")
    with pytest.raises(OSError) as loop:
        open_dir(tmp_path / "l1")
    assert loop.value.errno == errno.ELOOP
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        open_dir(tmp_path / "file")
    with pytest.raises(FileNotFoundError):
        open_dir(tmp_path / "missing" / "deeper")


def test_missing_directories_are_created_with_the_mode_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        os.close(open_dir(tmp_path / "a" / "b", create=0o755))
    finally:
        os.umask(old)
    for path in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755


def test_replace_at_replaces_a_link_itself_never_its_target(tmp_path: Path) -> None:
    (tmp_path / "victim").write_text("precious")
    (tmp_path / "name").symlink_to(tmp_path / "victim")
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        replace_at(fd, "name", b"new", 0o600)
    finally:
        os.close(fd)
    assert (tmp_path / "victim").read_text() == "precious"
    assert not (tmp_path / "name").is_symlink() and (tmp_path / "name").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["name", "victim"]  # no temporary file left


def test_kind_names_each_file_type(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to("fifo")
    assert kind(os.lstat(tmp_path / "fifo").st_mode) == "a FIFO"
    assert kind(os.lstat(tmp_path / "link").st_mode) == "a symbolic link"
    assert kind(os.lstat(tmp_path).st_mode) == "a directory"
    assert kind(os.lstat("/dev/null").st_mode) == "a device"
