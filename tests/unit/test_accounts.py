from __future__ import annotations

import json
import time
from pathlib import Path

from certcli.accounts import account_dir, load_directory, save_directory
from certcli.storage.files import Store

URL = "https://ca.test/dir"
DIRECTORY = {"newOrder": "https://ca.test/new-order", "newNonce": "https://ca.test/nonce"}


def _store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "config")
    account_dir(store, URL).mkdir(parents=True)
    return store


def test_a_kept_directory_is_used_until_it_is_too_old(tmp_path: Path) -> None:
    store = _store(tmp_path)
    save_directory(store, URL, DIRECTORY)
    assert load_directory(store, URL, max_age=60) == DIRECTORY
    path = account_dir(store, URL) / "directory.json"
    path.write_text(json.dumps({"fetched": time.time() - 120, "directory": DIRECTORY}))
    assert load_directory(store, URL, max_age=60) is None
    path.write_text(json.dumps({"fetched": time.time() + 3600, "directory": DIRECTORY}))
    assert load_directory(store, URL, max_age=60) is None  # from the future: not trusted


def test_a_damaged_kept_directory_is_ignored_and_can_be_forgotten(tmp_path: Path) -> None:
    store = _store(tmp_path)
    path = account_dir(store, URL) / "directory.json"
    for text in ("{", "[]", '{"fetched": "x", "directory": {}}', '{"fetched": 1}'):
        path.write_text(text)
        assert load_directory(store, URL, max_age=1e12) is None
    save_directory(store, URL, None)
    assert not path.exists()


def test_no_directory_is_kept_without_an_account(tmp_path: Path) -> None:
    store = Store(tmp_path / "config")
    save_directory(store, URL, DIRECTORY)
    assert not account_dir(store, URL).exists()
    assert load_directory(store, URL, max_age=60) is None
