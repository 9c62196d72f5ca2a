"""The file store's renew index and the notes lock holders leave (storage/renew_index.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from certcli.models import LineageSettings, Mode
from certcli.storage import renew_index
from certcli.storage.files import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "config")
    s.ensure()
    for name in ("a.example", "b.example"):
        s.write_settings(LineageSettings(name, (name,), Mode.AUTO))
    return s


def _entries(store: Store) -> dict[str, list]:
    return {
        n: [store.lineage_stamp(n), 4e9, f"{n} 2027-01-01T00:00:00Z 01 AA:BB"]
        for n in store.names()
    }


def test_the_index_round_trips_and_trusts_only_what_no_lock_holder_touched(store: Store) -> None:
    entries = _entries(store)
    store.write_renew_index(entries)
    assert store.read_renew_index() == entries
    with store.lock("a.example"):
        pass
    assert (store.root / "changes" / "a.example").is_file()
    assert store.read_renew_index() == {"b.example": entries["b.example"]}
    # taken: the index on disk no longer has the entry, the note is gone
    assert not (store.root / "changes" / "a.example").exists()
    assert store.read_renew_index() == {"b.example": entries["b.example"]}


def test_a_note_stays_while_the_index_without_its_entry_cannot_be_kept(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _entries(store)
    store.write_renew_index(entries)
    with store.lock("a.example"):
        pass

    def refuse(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(renew_index, "atomic_write", refuse)
    assert "a.example" not in store.read_renew_index()
    assert (store.root / "changes" / "a.example").is_file()  # so the next run reads it too
    monkeypatch.undo()
    assert "a.example" not in store.read_renew_index()
    assert not (store.root / "changes" / "a.example").exists()


def test_a_stamp_changes_with_lineage_toml_edited_in_place(store: Store) -> None:
    store.names()
    before = store.lineage_stamp("a.example")
    path = store.lineage_dir("a.example") / "lineage.toml"
    with open(path, "a") as out:  # in place: same inode
        out.write("# edited\n")
    store.names()
    assert store.lineage_stamp("a.example") != before


@pytest.mark.parametrize(
    "text",
    [
        "",
        "certcli renew index 1\n",
        "certcli renew index 2\na.example\t1:2:3\n",
        "certcli renew index 2\na.example\t1:2:3\tsoon\tx\n",
    ],
)
def test_an_odd_index_is_none(store: Store, text: str) -> None:
    (store.root / "renew-index").write_text(text)
    assert store.read_renew_index() == {}


def test_an_entry_that_would_break_a_line_is_not_kept(store: Store) -> None:
    store.write_renew_index({"a.example": ["1:2:3", 4e9, "a\nb.example x y z"]})
    assert store.read_renew_index() == {}
    assert os.path.getsize(store.root / "renew-index") == len("certcli renew index 2\n")
