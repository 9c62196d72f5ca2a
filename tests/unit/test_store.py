from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from certcli import store as store_module
from certcli.errors import LockedError, NotFoundError, StoreError
from certcli.models import LineageConfig, Mode
from certcli.store import Store, atomic_write

FILES = {
    "cert.pem": b"cert",
    "chain.pem": b"chain",
    "fullchain.pem": b"certchain",
    "privkey.pem": b"key",
}


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "config")
    s.ensure()
    s.write_config(LineageConfig("example.com", ("example.com",), Mode.CUSTOM))
    return s


def test_directories_0700_keys_0600(store: Store) -> None:
    version = store.add_version("example.com", FILES, {"certificate": {}})
    lineage = store.lineage_dir("example.com")
    for directory in (store.root, store.certs_dir, lineage, lineage / "archive"):
        assert _mode(directory) == 0o700
    version_dir = lineage / "archive" / f"{version:04d}"
    assert _mode(version_dir) == 0o700
    assert _mode(version_dir / "privkey.pem") == 0o600
    assert _mode(version_dir / "cert.pem") == 0o644


def test_modes_hold_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        s = Store(tmp_path / "a" / "b")
        s.ensure()
        s.write_config(LineageConfig("x.com", ("x.com",), Mode.CUSTOM))
        s.add_version("x.com", FILES, {})
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a") == 0o700
    assert _mode(s.lineage_dir("x.com") / "live" / "privkey.pem") == 0o600


def test_live_switches_to_each_new_version(store: Store) -> None:
    assert store.live_version("example.com") is None
    assert store.add_version("example.com", FILES, {}) == 1
    second = {**FILES, "cert.pem": b"cert2"}
    assert store.add_version("example.com", second, {}) == 2
    assert os.readlink(store.lineage_dir("example.com") / "live") == "archive/0002"
    assert store.read_live_file("example.com", "cert.pem") == b"cert2"
    assert store.versions("example.com") == [1, 2]
    assert (
        store.lineage_dir("example.com") / "archive" / "0001" / "cert.pem"
    ).read_bytes() == b"cert"


def test_a_crash_mid_version_leaves_live_intact(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add_version("example.com", FILES, {})
    real = store_module._write_new
    calls = []

    def failing(path: Path, data: bytes, mode: int) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, data, mode)

    monkeypatch.setattr(store_module, "_write_new", failing)
    with pytest.raises(StoreError, match="No space left"):
        store.add_version("example.com", {**FILES, "cert.pem": b"new"}, {})
    monkeypatch.undo()
    assert store.live_version("example.com") == 1
    assert store.read_live_file("example.com", "cert.pem") == b"cert"
    leftovers = list((store.lineage_dir("example.com") / "archive").glob(".*partial*"))
    assert len(leftovers) == 1
    # the next write repairs and numbers on from the last complete version
    assert store.add_version("example.com", FILES, {}) == 2
    assert not list((store.lineage_dir("example.com") / "archive").glob(".*partial*"))


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"one", 0o600)
    atomic_write(target, b"two", 0o644)
    assert target.read_bytes() == b"two"
    assert _mode(target) == 0o644
    assert os.listdir(tmp_path) == ["f"]


def test_pending_round_trip_and_replace(store: Store) -> None:
    store.write_pending("example.com", b"k1", b"c1", {"domains": ["example.com"]})
    assert _mode(store.pending_dir("example.com") / "privkey.pem") == 0o600
    store.write_pending("example.com", b"k2", b"c2", {"domains": ["example.com"]})
    assert store.read_pending("example.com") == (b"k2", b"c2", {"domains": ["example.com"]})
    store.clear_pending("example.com")
    assert store.read_pending("example.com") is None
    assert sorted(os.listdir(store.lineage_dir("example.com"))) == ["lineage.toml"]


def test_names_skip_incomplete_and_hidden(store: Store) -> None:
    (store.certs_dir / "half-made").mkdir()
    (store.certs_dir / ".hidden").mkdir()
    assert store.names() == ["example.com"]


def test_unknown_lineage(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no certificate named 'nope'"):
        store.read_config("nope")


def test_config_round_trip_keeps_unknown_keys(store: Store) -> None:
    config = LineageConfig(
        "k.com",
        ("k.com", "*.k.com"),
        Mode.AUTO,
        "rsa-2048",
        {"server": "https://ca.example/dir", "x": 1},
    )
    store.write_config(config)
    assert store.read_config("k.com") == config


def test_a_held_lock_says_who_holds_it(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTCLI_LOCK_WAIT", "0.1")
    # flock conflicts between two open file descriptions, even in one process
    with (
        store.lock("example.com"),
        pytest.raises(LockedError, match=f"PID {os.getpid()}"),
        store.lock("example.com"),
    ):
        pass
    with store.lock("example.com"):
        pass


def test_a_lock_file_removed_while_waited_on_still_excludes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`delete` removes a lineage's lock file while holding it: whoever was waiting on the
    removed file must lock the one now at that path, or two holders would run at once."""
    import threading

    monkeypatch.setenv("CERTCLI_LOCK_WAIT", "5")
    path = store.locks_dir / "lineage-example.com.lock"
    waiting, holding, release = threading.Event(), threading.Event(), threading.Event()
    real_sleep = store_module.time.sleep

    def sleep(seconds: float) -> None:
        waiting.set()
        real_sleep(seconds)

    monkeypatch.setattr(store_module.time, "sleep", sleep)

    def waiter() -> None:
        with store.lock("example.com"):
            holding.set()
            release.wait(5)

    with store.lock("example.com"):
        thread = threading.Thread(target=waiter)
        thread.start()
        assert waiting.wait(5)  # the waiter has the old file open and waits for it
        store.remove_lineage_lock("example.com")
    assert holding.wait(5)
    try:
        assert path.exists()  # the waiter locked a new file at the path
        monkeypatch.setenv("CERTCLI_LOCK_WAIT", "0")
        with pytest.raises(LockedError), store.lock("example.com"):
            pass
    finally:
        release.set()
        thread.join()


def test_ensure_reports_an_unusable_config_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot write to the config dir") as caught:
        Store(blocker / "sub").ensure()
    assert caught.value.hint is not None and "--config-dir" in caught.value.hint


def test_a_kill_while_replacing_pending_keeps_the_earlier_key(store: Store) -> None:
    store.write_pending("example.com", b"k1", b"c1", {})
    lineage = store.lineage_dir("example.com")
    # as if killed between the two renames of write_pending
    os.rename(store.pending_dir("example.com"), lineage / ".pending-old.partial.999")
    os.mkdir(lineage / ".pending.partial.999")
    store.repair("example.com")
    assert store.read_pending("example.com") == (b"k1", b"c1", {})
    assert sorted(os.listdir(lineage)) == ["lineage.toml", "pending"]


def test_damaged_state_and_lineage_files_are_store_errors(store: Store) -> None:
    (store.lineage_dir("example.com") / "state.json").write_text("[1, 2]")
    with pytest.raises(StoreError, match="not a JSON object"):
        store.read_state("example.com")
    (store.lineage_dir("example.com") / "lineage.toml").write_text(
        'name = "example.com"\ndomains = 3\n'
    )
    with pytest.raises(StoreError, match=r"domains in .*lineage.toml must be a list"):
        store.read_config("example.com")


def test_live_files_come_from_one_version(store: Store) -> None:
    store.add_version("example.com", FILES, {})
    store.add_version("example.com", {**FILES, "privkey.pem": b"key2", "fullchain.pem": b"fc2"}, {})
    assert store.read_live_files("example.com", "fullchain.pem", "privkey.pem") == [b"fc2", b"key2"]


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "x/../../y", ".hidden", "x\n", "", "a/b"])
def test_the_store_builds_no_path_from_a_name_that_is_not_a_lineage_s(
    tmp_path: Path, name: str
) -> None:
    from certcli.errors import UsageError

    store = Store(tmp_path / "store")
    store.ensure()
    for use in (
        store.lineage_dir,
        store.exists,
        store.require,
        store.read_config,
        store.read_state,
        store.live_version,
        store.pending_dir,
        store.has_pending,
    ):
        with pytest.raises(UsageError, match="invalid certificate name"):
            use(name)
    with pytest.raises(UsageError, match="invalid certificate name"), store.lock(name):
        pass
    assert os.listdir(tmp_path / "store" / "locks") == []


def test_names_skips_directories_that_are_not_lineages(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for name in ("ok.example.com", ".hidden", "bad name", "nl\n"):
        (tmp_path / "certs" / name).mkdir(parents=True)
        (tmp_path / "certs" / name / "lineage.toml").write_text('name = "x"\n')
    assert store.names() == ["ok.example.com"]
