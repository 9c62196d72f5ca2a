"""Interrupted writes and concurrent processes: `live` never changes until a version is
complete, and two processes never write one lineage at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import Certcli, lineage_names, live_version, on_pg, version_numbers
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration

# Runs the real `certcli upload` code path in a child process whose file writer stops
# for good after writing two files of the new version, so the test can kill -9 it there.
STALLING_UPLOAD = textwrap.dedent(
    """
    import sys, time
    from certcli.storage import fsio
    real, count = fsio.write_new, [0]
    def stall(path, data, mode):
        real(path, data, mode)
        count[0] += 1
        if count[0] == 2 and ".partial." in str(path):
            print("stalled", flush=True)
            time.sleep(3600)
    fsio.write_new = stall
    from certcli.cli.main import run
    sys.exit(run(sys.argv[1:]))
    """
)

HOLD_LOCK = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from certcli.flows.store import open_store
    from certcli.storage.files import Store
    root = Path(sys.argv[1])
    # the store certcli itself would open here: PostgreSQL when CERTCLI_STORE_URL names one
    secret = os.environ.get("CERTCLI_PASSPHRASE", "").encode() or None
    store = open_store(root, {}, lambda: secret) or Store(root)
    with store.lock(sys.argv[2]):
        print("locked", flush=True)
        time.sleep(3600)
    """
)


def _files(tmp_path: Path, ca: LocalCA, stem: str, names: list[str]) -> None:
    issued = ca.issue(names)
    (tmp_path / f"{stem}.pem").write_bytes(issued.fullchain_pem)
    (tmp_path / f"{stem}.key").write_bytes(issued.key_pem)


def _child(script: str, *args: str | Path, cwd: Path, certcli: Certcli) -> subprocess.Popen[str]:
    env = certcli.environ()
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )


@pytest.mark.file_store  # a kill point of the file writer, and its .partial version
def test_kill_9_in_the_middle_of_a_new_version(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    _files(tmp_path, ca, "v1", ["app.example.com"])
    _files(tmp_path, ca, "v2", ["app.example.com"])
    assert certcli("upload", "app", "--cert", "v1.pem", "--key", "v1.key").code == 0
    before = certcli("download", "app", "--what", "fullchain").stdout

    child = _child(
        STALLING_UPLOAD,
        "upload",
        "app",
        "--cert",
        "v2.pem",
        "--key",
        "v2.key",
        cwd=tmp_path,
        certcli=certcli,
    )
    assert child.stdout is not None and child.stdout.readline() == "stalled\n"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    lineage = certcli.config_dir / "certs" / "app"
    assert os.readlink(lineage / "live") == "archive/0001"
    assert list((lineage / "archive").glob(".0002.partial.*")), "the half-written version is there"
    run = certcli("status", "app", "--json")
    assert run.code == 0 and run.json()["lineages"][0]["status"] == "active"
    assert certcli("download", "app", "--what", "fullchain").stdout == before

    # the next write repairs the store and carries on
    assert certcli("upload", "app", "--cert", "v2.pem", "--key", "v2.key").code == 0
    assert os.readlink(lineage / "live") == "archive/0002"
    assert not list((lineage / "archive").glob(".*"))


def test_a_held_lineage_lock_names_the_holder(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    _files(tmp_path, ca, "c", ["locked.example.com"])
    holder = _child(HOLD_LOCK, certcli.config_dir, "locked", cwd=tmp_path, certcli=certcli)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        run = certcli(
            "upload",
            "locked",
            "--cert",
            "c.pem",
            "--key",
            "c.key",
            env={"CERTCLI_LOCK_WAIT": "0.3"},
        )
        assert run.code == 6
        # the file store names the PID; a PostgreSQL store the host too: `HOST (PID N)`
        holder_name = f"test-host (PID {holder.pid})" if on_pg(certcli) else f"PID {holder.pid}"
        assert f"locked by {holder_name}" in run.stderr
        assert "locked" not in lineage_names(certcli)
    finally:
        holder.kill()
        holder.wait()
    assert certcli("upload", "locked", "--cert", "c.pem", "--key", "c.key").code == 0


def test_two_uploads_racing_for_one_lineage_are_serialized(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    _files(tmp_path, ca, "a", ["race.example.com"])
    _files(tmp_path, ca, "b", ["race.example.com"])
    env = certcli.environ({"CERTCLI_LOCK_WAIT": "30"})
    from tests.conftest import CERTCLI

    procs = [
        subprocess.Popen(
            [str(CERTCLI), "upload", "race", "--cert", f"{s}.pem", "--key", f"{s}.key"],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in ("a", "b")
    ]
    results = [(p.wait(), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    assert version_numbers(certcli, "race") == [1, 2]
    assert live_version(certcli, "race") == 2
    assert certcli("status", "race", "--json").json()["lineages"][0]["version"] == 2


# Adds 1 to `failures` in state.json, N times, each a read-modify-write through update_state;
# half of the updates run while the process holds the lineage lock already.
COUNT_UPDATES = textwrap.dedent(
    """
    import sys
    from dataclasses import replace
    from pathlib import Path
    from certcli.storage.files import Store
    store = Store(Path(sys.argv[1]))
    bump = lambda s: replace(s, failures=(s.failures or 0) + 1)
    print("ready", flush=True)
    sys.stdin.readline()
    for n in range(int(sys.argv[3])):
        if n % 2:
            with store.lock(sys.argv[2]):
                store.update_state(sys.argv[2], bump)
        else:
            store.update_state(sys.argv[2], bump)
    """
)


def test_concurrent_state_updates_from_two_processes_lose_nothing(tmp_path: Path) -> None:
    from certcli.models import LineageSettings, LineageState, Mode
    from certcli.storage.files import Store

    root = tmp_path / "config"
    store = Store(root)
    store.ensure()
    store.write_settings(LineageSettings("race.example", ("race.example",), Mode.CUSTOM))
    store.update_state("race.example", lambda _s: LineageState.from_json({"future": "kept"}))
    env = {**os.environ, "CERTCLI_LOCK_WAIT": "60"}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", COUNT_UPDATES, str(root), "race.example", "200"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    for child in children:  # both started before either writes
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.close()
    for child in children:
        assert child.wait(120) == 0
    assert store.read_lineage_state("race.example").to_json() == {"future": "kept", "failures": 400}
