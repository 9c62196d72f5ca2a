"""The store's ACME accounts, the directory kept beside each, and what it makes once."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from certcli.errors import StoreError
from certcli.models import Account
from certcli.storage.files import Store

URL = "https://ca.test/dir"
DIRECTORY = {"newOrder": "https://ca.test/new-order", "newNonce": "https://ca.test/nonce"}
ACCOUNT = Account(URL, "https://ca.test/acct/1", ("mailto:a@x.test",), "https://tos", "c", b"k")


def _store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "config")
    store._account_dir(URL).mkdir(parents=True)
    return store


def test_a_kept_directory_is_used_until_it_is_too_old(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.write_directory(URL, DIRECTORY)
    assert store.read_directory(URL, max_age=60) == DIRECTORY
    path = store._account_dir(URL) / "directory.json"
    path.write_text(json.dumps({"fetched": time.time() - 120, "directory": DIRECTORY}))
    assert store.read_directory(URL, max_age=60) is None
    path.write_text(json.dumps({"fetched": time.time() + 3600, "directory": DIRECTORY}))
    assert store.read_directory(URL, max_age=60) is None  # from the future: not trusted


def test_a_damaged_kept_directory_is_ignored_and_can_be_forgotten(tmp_path: Path) -> None:
    store = _store(tmp_path)
    path = store._account_dir(URL) / "directory.json"
    for text in ("{", "[]", '{"fetched": "x", "directory": {}}', '{"fetched": 1}'):
        path.write_text(text)
        assert store.read_directory(URL, max_age=1e12) is None
    store.write_directory(URL, None)
    assert not path.exists()


def test_no_directory_is_kept_without_an_account(tmp_path: Path) -> None:
    store = Store(tmp_path / "config")
    store.write_directory(URL, DIRECTORY)
    assert not store._account_dir(URL).exists()
    assert store.read_directory(URL, max_age=60) is None


def test_an_account_is_written_privately_and_read_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "config")
    store.ensure()
    assert store.read_account(URL) is None
    store.write_account(ACCOUNT)
    assert store.read_account(URL) == ACCOUNT
    assert store.read_account("https://other.test/dir") is None
    directory = store._account_dir(URL)
    assert directory == store.root / "accounts" / "ca.test" / directory.name
    assert stat.S_IMODE(os.stat(directory / "key.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    written = json.loads((directory / "account.json").read_text())
    assert written == {
        "directory": URL,
        "uri": "https://ca.test/acct/1",
        "contact": ["mailto:a@x.test"],
        "terms_of_service": "https://tos",
        "created": "c",
    }


def test_a_damaged_account_names_where_it_is(tmp_path: Path) -> None:
    store = Store(tmp_path / "config")
    store.ensure()
    store.write_account(ACCOUNT)
    (store._account_dir(URL) / "account.json").write_text("{")
    with pytest.raises(StoreError, match=r"^cannot read the account in .*ca\.test"):
        store.read_account(URL)


def test_a_staged_key_waits_beside_the_account_until_it_is_taken(tmp_path: Path) -> None:
    store = Store(tmp_path / "config")
    store.ensure()
    store.write_account(ACCOUNT)
    store.stage_account_key(ACCOUNT, b"new")
    staged = store._account_dir(URL) / "key.pem.new"
    assert staged.read_bytes() == b"new" and stat.S_IMODE(os.stat(staged).st_mode) == 0o600
    assert store.read_account(URL) == ACCOUNT  # the CA has not taken it yet
    store.write_account(Account(**{**ACCOUNT.__dict__, "key_pem": b"new"}))
    store.unstage_account_key(ACCOUNT)
    assert not staged.exists() and store.read_account(URL).key_pem == b"new"  # type: ignore[union-attr]


def test_a_retired_account_is_set_aside(tmp_path: Path) -> None:
    store = Store(tmp_path / "config")
    store.ensure()
    store.write_account(ACCOUNT)
    directory = store._account_dir(URL)
    store.retire_account(ACCOUNT)
    assert store.read_account(URL) is None
    (aside,) = directory.parent.glob(f"{directory.name}.deactivated-*")
    assert (aside / "key.pem").read_bytes() == b"k"
    with pytest.raises(StoreError, match=r"^cannot move .* aside"):
        store.retire_account(ACCOUNT)


def test_the_installation_id_is_made_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "config")
    found: list[str] = []
    threads = [
        threading.Thread(target=lambda: found.append(Store(store.root).installation_id()))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1 and found[0].startswith("certcli-")
    assert (store.root / "installation-id").read_text() == found[0] + "\n"
    assert store.installation_id() == found[0]
    assert sorted(os.listdir(store.root)) == ["installation-id"]  # no temp file left


def test_the_leftovers_journal_is_in_the_store(tmp_path: Path) -> None:
    assert Store(tmp_path).leftovers_dir() == tmp_path / "leftovers"


def test_account_urls_lists_the_accounts_but_not_the_retired(tmp_path: Path) -> None:
    store = Store(tmp_path / "config")
    assert store.account_urls() == []
    store.ensure()
    other = Account(**{**ACCOUNT.__dict__, "directory": "https://other.test/dir"})
    store.write_account(ACCOUNT)
    store.write_account(other)
    assert store.account_urls() == ["https://ca.test/dir", "https://other.test/dir"]
    store.retire_account(other)
    assert store.account_urls() == [URL]
