from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from certcli.errors import LockedError, NotFoundError, StoreError
from certcli.models import LineageSettings, LineageState, Mode
from certcli.storage import fsio, locks
from certcli.storage.files import Store
from certcli.storage.fsio import atomic_write

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
    s.write_settings(LineageSettings("example.com", ("example.com",), Mode.CUSTOM))
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
        s.write_settings(LineageSettings("x.com", ("x.com",), Mode.CUSTOM))
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
    real = fsio.write_new
    calls = []

    def failing(path: Path, data: bytes, mode: int) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, data, mode)

    monkeypatch.setattr(fsio, "write_new", failing)
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
        store.read_settings("nope")


def test_config_round_trip_keeps_unknown_keys(store: Store) -> None:
    config = LineageSettings.build(
        "k.com",
        ("k.com", "*.k.com"),
        Mode.AUTO,
        "rsa-2048",
        {"server": "https://ca.example/dir", "x": 1},
    )
    store.write_settings(config)
    assert store.read_settings("k.com") == config


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


def test_a_deleted_lineage_is_gone_whole_with_its_lock(store: Store) -> None:
    store.add_version("example.com", FILES, {})
    with store.lock("example.com"):
        store.delete_lineage("example.com")
    assert not store.exists("example.com") and store.names() == []
    assert not (store.locks_dir / "lineage-example.com.lock").exists()
    assert [p.name for p in store.certs_dir.iterdir()] == []  # nothing half-deleted left
    with pytest.raises(NotFoundError):
        store.delete_lineage("example.com")


def test_a_lock_file_removed_while_waited_on_still_excludes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`delete` removes a lineage's lock file while holding it: whoever was waiting on the
    removed file must lock the one now at that path, or two holders would run at once."""
    import threading

    monkeypatch.setenv("CERTCLI_LOCK_WAIT", "5")
    path = store.locks_dir / "lineage-example.com.lock"
    waiting, holding, release = threading.Event(), threading.Event(), threading.Event()
    real_sleep = locks.time.sleep

    def sleep(seconds: float) -> None:
        waiting.set()
        real_sleep(seconds)

    monkeypatch.setattr(locks.time, "sleep", sleep)

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
    store._repair("example.com")
    assert store.read_pending("example.com") == (b"k1", b"c1", {})
    assert sorted(os.listdir(lineage)) == ["lineage.toml", "pending"]


def test_damaged_state_and_lineage_files_are_store_errors(store: Store) -> None:
    (store.lineage_dir("example.com") / "state.json").write_text("[1, 2]")
    with pytest.raises(StoreError, match="not a JSON object"):
        store.read_lineage_state("example.com")
    (store.lineage_dir("example.com") / "lineage.toml").write_text(
        'name = "example.com"\ndomains = 3\n'
    )
    with pytest.raises(StoreError, match=r"domains in .*lineage.toml must be a list"):
        store.read_settings("example.com")


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
        store.read_settings,
        store.read_lineage_state,
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


# -- a damaged lineage: every file read on its own, with the file named -----------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("domains = [", "lineage.toml: "),
        ('name = 5\ndomains = ["example.com"]', "must be the lineage's name, not 5"),
        ('name = "example.com"\ndomains = "x"', "must be a list of names, not 'x'"),
        ('name = "example.com"\ndomains = [1]', "must be a list of names, not [1]"),
        ('name = "example.com"\ndomains = []', "must be a list of names, not []"),
        ('domains = ["example.com"]', "must be the lineage's name, not None"),
        ('name = "other.com"\ndomains = ["example.com"]', "its name 'other.com' is not"),
        (
            'name = "example.com"\ndomains = ["example.com"]\nmode = "x"',
            "must be 'auto' or 'custom', not 'x'",
        ),
        ('name = "example.com"\ndomains = ["example.com"]\nkey_type = 3', "must be text, not 3"),
        ("\x00\xff\xfe\x01", "lineage.toml: "),
    ],
)
def test_a_lineage_toml_certcli_did_not_write_is_a_store_error(
    store: Store, text: str, problem: str
) -> None:
    (store.lineage_dir("example.com") / "lineage.toml").write_bytes(text.encode("latin-1"))
    with pytest.raises(StoreError, match=r"lineage\.toml") as caught:
        store.read_settings("example.com")
    assert problem in caught.value.message


def _real_files() -> dict[str, bytes]:
    from tests.lab.localca import LocalCA

    issued = LocalCA("unit").issue(["example.com"])
    return {
        "cert.pem": issued.cert_pem,
        "chain.pem": issued.chain_pem,
        "fullchain.pem": issued.fullchain_pem,
        "privkey.pem": issued.key_pem,
    }


@pytest.fixture(scope="module")
def real_files() -> dict[str, bytes]:
    return _real_files()


def _version(store: Store, files: dict[str, bytes]) -> int:
    from certcli import x509

    info = x509.cert_info(x509.parse_certificates(files["cert.pem"], "cert")[0])
    return store.add_version("example.com", files, {"certificate": info.to_json()})


@pytest.mark.parametrize(
    ("meta", "problem"),
    [
        ("{", "meta.json: Expecting"),
        ("[]", "not a JSON object"),
        ('{"certificate": {"sans": ["example.com"]}}', "no 'issuer' key"),
        ('{"certificate": {"sans": "example.com"}}', "sans must be a list"),
        ('{"certificate": 5}', "meta.json"),
        (None, "No such file"),
    ],
)
def test_a_damaged_meta_json_names_the_file(
    store: Store, real_files: dict[str, bytes], meta: str | None, problem: str
) -> None:
    version = _version(store, real_files)
    path = store.lineage_dir("example.com") / "archive" / f"{version:04d}" / "meta.json"
    if meta is None:
        path.unlink()
    else:
        path.write_text(meta)
    with pytest.raises(StoreError, match=r"meta\.json") as caught:
        store.live_info("example.com")
    assert problem in caught.value.message
    assert store.live_broken("example.com")
    # renew's repair: the meta.json comes back from the version's own cert.pem
    note, whole = store.heal_live("example.com") or ("", False)
    assert whole and "meta.json rebuilt from cert.pem" in note
    info = store.live_info("example.com")
    assert info is not None and info.sans == ("example.com",)
    assert store.heal_live("example.com") is None


def _break_live(store: Store, how: str) -> Path:
    live = store.lineage_dir("example.com") / "live"
    live.unlink(missing_ok=True)
    if how == "file":
        live.write_text("a copy made by hand")
    elif how == "directory":
        live.mkdir()
        (live / "cert.pem").write_text("unknown content")
    elif how == "dangling":
        live.symlink_to("archive/0009")
    elif how == "outside":
        live.symlink_to("/etc")
    elif how == "incomplete":
        live.symlink_to("archive/0003")
        (live.parent / "archive" / "0003").mkdir()
    return live


@pytest.mark.parametrize("how", ["file", "directory", "dangling", "outside", "incomplete"])
def test_a_broken_live_is_restored_to_the_newest_complete_version(
    store: Store, real_files: dict[str, bytes], how: str
) -> None:
    _version(store, real_files)
    _version(store, real_files)
    live = _break_live(store, how)
    assert store.live_broken("example.com")
    with pytest.raises(StoreError):
        store.live_info("example.com")
    note, whole = store.heal_live("example.com") or ("", False)
    assert whole and note.endswith(("live restored to version 2", "kept as live.broken-1"))
    assert os.readlink(live) == "archive/0002"
    assert store.live_version("example.com") == 2 and not store.live_broken("example.com")
    if how == "directory":  # moved aside, never deleted: its content is unknown
        assert (live.parent / "live.broken-1" / "cert.pem").read_text() == "unknown content"
    if how == "file":
        assert (live.parent / "live.broken-1").read_text() == "a copy made by hand"
    assert os.path.isdir("/etc")  # nothing followed through a planted link


def test_with_no_complete_version_live_is_left_for_a_new_one(
    store: Store, real_files: dict[str, bytes]
) -> None:
    live = _break_live(store, "directory")
    note, whole = store.heal_live("example.com") or ("", True)
    assert not whole and note.endswith("no complete version is left to restore")
    assert (live / "cert.pem").read_text() == "unknown content"
    # the next version (a renewal) takes the place; the directory is moved aside
    _version(store, real_files)
    assert os.readlink(live) == "archive/0001"
    assert (live.parent / "live.broken-1" / "cert.pem").read_text() == "unknown content"


def test_a_fine_live_needs_no_healing(store: Store, real_files: dict[str, bytes]) -> None:
    assert store.heal_live("example.com") is None  # no live at all: nothing to heal
    _version(store, real_files)
    assert not store.live_broken("example.com")
    assert store.heal_live("example.com") is None


def _write_state(store: Store, name: str, data: dict[str, Any]) -> None:
    store.update_state(name, lambda _state: LineageState.from_json(data))


def _count(state: LineageState) -> LineageState:
    return replace(state, failures=(state.failures or 0) + 1)


def test_update_state_outside_a_lock_takes_it(store: Store) -> None:
    _write_state(store, "example.com", {"phase": "Completed", "future": 1})
    written = store.update_state("example.com", _count)
    assert written.failures == 1
    assert store.read_lineage_state("example.com").to_json() == {
        "phase": "Completed",
        "future": 1,
        "failures": 1,
    }
    assert store.read_lineage_state("example.com") == written
    with store.lock("example.com"):  # and let go of it
        pass


def test_update_state_inside_a_held_lock_does_not_wait_for_itself(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTCLI_LOCK_WAIT", "0")
    with store.lock("example.com"):
        store.update_state("example.com", _count)
        # another Store of the same directory, in the same thread, knows the lock is held
        Store(store.root).update_state("example.com", _count)
        # the lock itself still excludes a second holder
        with pytest.raises(LockedError), store.lock("example.com"):
            pass
    assert store.read_lineage_state("example.com").failures == 2
    store.update_state("example.com", _count)  # released: taken again
    assert store.read_lineage_state("example.com").failures == 3


def test_update_state_waits_for_a_lock_another_thread_holds(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    monkeypatch.setenv("CERTCLI_LOCK_WAIT", "0.1")
    held, done = threading.Event(), threading.Event()

    def holder() -> None:
        with store.lock("example.com"):
            held.set()
            done.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(5)
        with pytest.raises(LockedError):
            store.update_state("example.com", _count)
    finally:
        done.set()
        thread.join()
    assert store.read_lineage_state("example.com").to_json() == {}


def test_update_state_writes_nothing_when_the_update_fails(store: Store) -> None:
    _write_state(store, "example.com", {"failures": 4})

    def failing(state: LineageState) -> LineageState:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        store.update_state("example.com", failing)
    assert store.read_lineage_state("example.com").to_json() == {"failures": 4}
    store.update_state("example.com", _count)  # the lock was let go


def test_typed_settings_through_the_store(store: Store) -> None:
    settings = LineageSettings(
        "t.example", ("t.example",), server="https://ca.test/dir", deploy_hook="reload"
    )
    store.write_settings(settings)
    assert store.read_settings("t.example") == settings
    written = tomllib.loads((store.lineage_dir("t.example") / "lineage.toml").read_text())
    assert (written["server"], written["hooks"]) == ("https://ca.test/dir", {"deploy": "reload"})


def test_the_file_store_has_every_method_of_the_protocol() -> None:
    import inspect

    from certcli.storage.protocol import Storage

    members = [
        n for n, v in vars(Storage).items() if not n.startswith("_") and inspect.isfunction(v)
    ]
    assert len(members) > 30
    for member in members:
        ours = inspect.signature(getattr(Store, member))
        theirs = inspect.signature(getattr(Storage, member))
        assert list(ours.parameters) == list(theirs.parameters), member
    for attribute in Storage.__annotations__:
        assert hasattr(Store(Path("/nonexistent")), attribute)


def test_read_version_file_reads_one_version_and_none_for_a_missing_file(store: Store) -> None:
    store.add_version("example.com", FILES, {})
    store.add_version("example.com", {**FILES, "cert.pem": b"second"}, {})
    assert store.read_version_file("example.com", 1, "cert.pem") == FILES["cert.pem"]
    assert store.read_version_file("example.com", 2, "cert.pem") == b"second"
    assert store.read_version_file("example.com", 1, "privkey.pem.enc") is None
    assert store.read_version_file("example.com", 3, "cert.pem") is None
