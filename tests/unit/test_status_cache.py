"""The file store's status cache (storage/status_cache.py, report.report_texts)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certcli.models import CertInfo, LineageSettings, Mode
from certcli.report import lineage_report, report_texts
from certcli.storage.files import Store

FILES = {"cert.pem": b"c", "chain.pem": b"c", "fullchain.pem": b"cc", "privkey.pem": b"k"}
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "config")
    s.ensure()
    cert = CertInfo("a.example", ("a.example",), "CA", NOW - timedelta(days=10),
                    NOW + timedelta(days=80, hours=3), "01", "AA", "ec-p256")  # fmt: skip
    for name in ("a.example", "b.example", "c.example"):
        s.write_settings(LineageSettings(name, ("a.example",), Mode.AUTO))
        with s.lock(name):
            s.add_version(name, FILES, {"certificate": cert.to_json()})
    return s


def _texts(store: Store, now: datetime = NOW) -> dict[str, dict]:
    return {(d := json.loads(t.text))["name"]: d for t in report_texts(Store(store.root), now)}


def _fresh(store: Store, now: datetime = NOW) -> dict[str, dict]:
    return {n: lineage_report(store, n, now).to_json() for n in store.names()}


def test_a_cached_report_is_the_report(store: Store) -> None:
    first = _texts(store)
    assert first == _fresh(store)
    cache = store.root / "status-cache"
    written = cache.stat().st_mtime_ns
    assert _texts(store) == first
    assert cache.stat().st_mtime_ns == written  # nothing changed: nothing written


def test_time_changes_the_report_when_it_should(store: Store) -> None:
    _texts(store)
    for later in (timedelta(hours=2), timedelta(hours=4), timedelta(days=50), timedelta(days=81)):
        assert _texts(store, NOW + later) == _fresh(store, NOW + later), later
    assert _texts(store, NOW + timedelta(days=81))["a.example"]["status"] == "expired"


def test_what_changes_in_the_files_shows(store: Store) -> None:
    _texts(store)
    store.update_state("a.example", lambda s: replace(s, last_error="boom"))
    path = store.lineage_dir("b.example") / "live" / "meta.json"
    with open(path, "r+b") as meta:  # in place: same inode
        meta.write(b"garbage")
    store.write_settings(LineageSettings("c.example", ("a.example", "x.example"), Mode.AUTO))
    texts = _texts(store)
    assert texts == _fresh(store)
    assert texts["a.example"]["statuses"] == ["failed"]
    assert texts["b.example"]["status"] == "damaged"
    assert texts["c.example"]["statuses"] == ["mismatch"]
    assert _texts(store) == texts  # damaged: never kept, read again


def test_lineages_gone_or_new_and_an_odd_cache(store: Store) -> None:
    _texts(store)
    with store.lock("a.example"):
        store.delete_lineage("a.example")
    assert set(_texts(store)) == {"b.example", "c.example"}
    cache = store.root / "status-cache"
    assert "a.example\t" not in cache.read_text()
    lines = cache.read_text().splitlines(keepends=True)
    cache.write_text(lines[0] + "b.example\tnonsense\n" + lines[2])  # a line not whole
    assert _texts(store) == _fresh(store)
    cache.write_text("something else\n")
    assert _texts(store) == _fresh(store)
    assert cache.read_text().startswith("certcli status cache 1\n")


def test_a_killed_writer_s_file_is_taken_over_and_a_live_one_left_alone(store: Store) -> None:
    import fcntl
    import subprocess
    import sys

    cache = store.root / "status-cache"
    tmp = store.root / ".status-cache.tmp"
    tmp.write_bytes(b"half of a cache a killed status left" * 1000)
    assert _texts(store) == _fresh(store)
    assert cache.exists() and not tmp.exists()  # taken over, renamed into place
    kept = cache.read_bytes()

    # another status writing its successor: this one shows the same, and writes nothing
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys; f = open(sys.argv[1], 'ab'); fcntl.flock(f, fcntl.LOCK_EX); "
         "f.write(b'theirs'); f.flush(); print('held', flush=True); sys.stdin.read()",
         str(tmp)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        store.update_state("a.example", lambda s: replace(s, last_error="boom"))
        texts = _texts(store)
        assert texts == _fresh(store) and texts["a.example"]["statuses"] == ["failed"]
        assert cache.read_bytes() == kept and tmp.read_bytes() == b"theirs"
    finally:
        holder.communicate(b"")
    with open(tmp, "ab") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by its holder's end
    assert _texts(store)["a.example"]["statuses"] == ["failed"]
    assert b"boom" in cache.read_bytes() and not tmp.exists()
