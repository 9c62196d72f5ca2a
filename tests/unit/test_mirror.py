"""This host's live/ for a PostgreSQL store (certcli/storage/mirror.py): which version each
lineage serves, read from the links or from live-index.json while live/ is unchanged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from certcli.storage.mirror import LocalLive

FILES = {"cert.pem": b"c", "chain.pem": b"ch", "fullchain.pem": b"cch", "privkey.pem": b"k"}


def settle(live: LocalLive) -> None:
    """live/ as a second-old directory is: untouched since before the clock's last tick."""
    st = os.stat(live.live_dir)
    os.utime(live.live_dir, ns=(st.st_atime_ns, st.st_mtime_ns - 5_000_000_000))


@pytest.fixture
def live(tmp_path: Path) -> LocalLive:
    local = LocalLive(tmp_path)
    local.put("a.example", 1, FILES)
    local.put("b.example", 3, FILES)
    return local


def test_every_link_read_and_a_foreign_entry_serves_nothing(live: LocalLive) -> None:
    os.symlink("/elsewhere", live.live_dir / "c.example")
    (live.live_dir / ".hidden").write_text("not a lineage")
    assert live.all_serving() == {"a.example": 1, "b.example": 3, "c.example": None}
    assert live.all_serving() == {n: live.serving(n) for n in live.names()}


def test_no_live_dir_serves_nothing(tmp_path: Path) -> None:
    assert LocalLive(tmp_path).all_serving() == {}


def test_an_unchanged_live_is_answered_by_the_index(live: LocalLive, tmp_path: Path) -> None:
    index = tmp_path / "live-index.json"
    live.all_serving()
    assert not index.exists()  # live/ just changed: within the clock's tick, not indexed
    settle(live)
    assert live.all_serving() == {"a.example": 1, "b.example": 3}
    data = json.loads(index.read_text())
    data["serving"]["a.example"] = 7  # what only the index says
    index.write_text(json.dumps(data))
    assert live.all_serving()["a.example"] == 7


def test_a_change_to_live_reads_the_links_again(live: LocalLive, tmp_path: Path) -> None:
    settle(live)
    live.all_serving()
    live.put("a.example", 2, FILES)
    assert live.all_serving() == {"a.example": 2, "b.example": 3}
    live.remove("b.example")
    assert live.all_serving() == {"a.example": 2}


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"format": 2, "live": [], "serving": {}}',
        '{"format": 1, "live": "x", "serving": {}}',
        '{"format": 1, "live": STAMP, "serving": {"a.example": "1"}}',
        '{"format": 1, "live": STAMP, "serving": []}',
    ],
)
def test_an_index_not_of_this_format_or_stamp_is_ignored(
    live: LocalLive, tmp_path: Path, content: str
) -> None:
    settle(live)
    st = os.stat(live.live_dir)
    stamp = json.dumps([st.st_ino, st.st_mtime_ns, st.st_ctime_ns])
    (tmp_path / "live-index.json").write_text(content.replace("STAMP", stamp))
    assert live.all_serving() == {"a.example": 1, "b.example": 3}
