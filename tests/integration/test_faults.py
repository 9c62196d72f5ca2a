"""Faults during renewal: the CA going away, certcli killed at each step, a full disk.
Whatever happens, `status` reads the store, `live` is the old version or the complete new
one, and the next run finishes the job.

These tests stop servers, so they use a lab of their own."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    CERTCLI,
    Certcli,
    lineage_state,
    live_dir,
    live_version,
    ok,
    on_pg,
    started_lab,
)
from tests.lab import Lab
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fault_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from started_lab(tmp_path_factory, "fault-lab", port_53=False)


@pytest.fixture
def acme(certcli: Certcli, fault_lab: Lab) -> Certcli:
    """Here, certcli talks to this module's own lab."""
    return certcli.point_at(fault_lab)


def _assert_whole(certcli: Certcli, name: str) -> None:
    """`status` reads the lineage and `live` is a complete version."""
    run = ok(certcli("status", name, "--json"))
    assert run.json()["lineages"][0]["version"] is not None
    served = {"cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"}
    if not on_pg(certcli):
        served.add("meta.json")  # the file store's version directory keeps its metadata too
    assert {p.name for p in live_dir(certcli, name).iterdir()} == served


def test_the_ca_going_away_mid_run_backs_off_and_the_next_run_succeeds(
    acme: Certcli, fault_lab: Lab
) -> None:
    for name in ("gone1.certcli.test", "gone2.certcli.test"):
        ok(acme("issue", name, "--webroot", fault_lab.webroot, "--agree-tos"))
    pid = fault_lab.pids["pebble"]
    # The pre hook runs once the run has decided what is due: the CA vanishes right then.
    (acme.config_dir / "config.toml").write_text(f"[hooks]\npre = 'kill {pid}'\n")
    try:
        run = acme("renew", "--force")
        assert run.code == 1
        assert run.stderr.count("cannot reach the CA") == 2
        for name in ("gone1.certcli.test", "gone2.certcli.test"):
            assert live_version(acme, name) == 1
            _assert_whole(acme, name)
            state = lineage_state(acme, name)
            assert state["last_error_kind"] == "ca_unreachable" and state["next_attempt"]
    finally:
        fault_lab.stop("pebble")
        fault_lab.restart_pebble()
    (acme.config_dir / "config.toml").write_text("")
    # Restarted, Pebble has forgotten the account: certcli registers its key again.
    run = ok(acme("renew", "--force"))
    assert run.stdout.count("Renewed") == 2
    assert live_version(acme, "gone1.certcli.test") == 2


# Runs the real `certcli renew --force` in a child whose code stops for good at one step,
# so the test can kill -9 it exactly there.
STALL = textwrap.dedent(
    """
    import sys, time
    from certcli import engine
    from certcli.storage import fsio
    point = sys.argv[1]

    def stall():
        print("stalled", flush=True)
        time.sleep(3600)

    if point == "after-order":
        real_order = engine.order.new_order
        def new_order(*args, **kwargs):
            order = real_order(*args, **kwargs)
            stall()
        engine.order.new_order = new_order
    elif point == "after-finalize":
        real_split = engine.chain.split_chain
        def split(fullchain):
            real_split(fullchain)
            stall()
        engine.chain.split_chain = split
    else:
        real_write, count = fsio.write_new, [0]
        def write(path, data, mode):
            real_write(path, data, mode)
            if ".partial." in str(path):
                count[0] += 1
                if count[0] == 2:
                    stall()
        fsio.write_new = write
    from certcli.cli.main import run
    sys.exit(run(sys.argv[2:]))
    """
)


@pytest.mark.parametrize(
    "point",
    [
        "after-order",
        "after-finalize",
        # a kill point of the file writer, between two files of a .partial version
        pytest.param("during-write", marks=pytest.mark.file_store),
    ],
)
def test_kill_9_at_each_step_leaves_a_whole_store(
    acme: Certcli, fault_lab: Lab, point: str
) -> None:
    name = f"kill-{point}.certcli.test"
    ok(acme("issue", name, "--webroot", fault_lab.webroot, "--agree-tos"))
    env = acme.environ()
    child = subprocess.Popen(
        [sys.executable, "-c", STALL, point, "renew", "--force"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "stalled\n"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    assert live_version(acme, name) == 1
    _assert_whole(acme, name)
    ok(acme("renew", "--force"))  # the next run finishes the job
    assert live_version(acme, name) == 2
    if not on_pg(acme):  # nothing half-written is left in the file store
        archive = acme.config_dir / "certs" / name / "archive"
        assert not [p for p in archive.iterdir() if p.name.startswith(".")]
    _assert_whole(acme, name)


@pytest.mark.file_store  # the file store's writes on a full disk
def test_a_full_filesystem_is_a_clear_error_and_live_is_unchanged(
    acme: Certcli, fault_lab: Lab, tmp_path: Path
) -> None:
    """The store on a 2 MiB tmpfs, filled up, in a mount namespace of its own."""
    ok(acme("issue", "full.certcli.test", "--webroot", fault_lab.webroot, "--agree-tos"))
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.fail("this test needs root and mount namespaces (unshare -m)")
    store = acme.config_dir
    saved = tmp_path / "saved"
    subprocess.run(["cp", "-a", str(store), str(saved)], check=True)
    script = f"""
        set -e
        mount -t tmpfs -o size=2m tmpfs {store}
        cp -a {saved}/. {store}/
        dd if=/dev/zero of={store}/filler bs=4k 2>/dev/null || true
        set +e
        {shlex.quote(str(CERTCLI))} renew --force -v >/dev/null 2>{tmp_path}/err
        echo $? > {tmp_path}/code
        readlink {store}/certs/full.certcli.test/live > {tmp_path}/live
        {shlex.quote(str(CERTCLI))} status full.certcli.test --json > {tmp_path}/status
    """
    env = {**os.environ, **acme.env, "CERTCLI_CONFIG_DIR": str(store)}
    subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, check=True)
    assert (tmp_path / "code").read_text().strip() == "1"
    error = (tmp_path / "err").read_text()
    assert "No space left on device" in error, error
    assert "internal error" not in error, error
    assert (tmp_path / "live").read_text().strip() == "archive/0001"
    assert json.loads((tmp_path / "status").read_text())["lineages"][0]["version"] == 1


@pytest.mark.file_store  # the file store's writes on a full disk, page by page
def test_upload_on_a_full_disk_reports_what_it_stored(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    """At every amount of free space an upload fails (exit 5: `live` and lineage.toml as they
    were) or succeeds (exit 0: both new), never a mix; the store on a small tmpfs."""
    first = ca.issue(["disk.example.com"])
    (tmp_path / "one.pem").write_bytes(first.fullchain_pem)
    (tmp_path / "one.key").write_bytes(first.key_pem)
    ok(certcli("upload", "disk", "--cert", "one.pem", "--key", "one.key"))
    second = ca.issue(["disk.example.com", "www.disk.example.com"])  # new SANs: a new lineage.toml
    (tmp_path / "two.pem").write_bytes(second.fullchain_pem)
    (tmp_path / "two.key").write_bytes(second.key_pem)
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.fail("this test needs root and mount namespaces (unshare -m)")
    store = certcli.config_dir
    saved = tmp_path / "saved"
    subprocess.run(["cp", "-a", str(store), str(saved)], check=True)
    lineage = store / "certs" / "disk"
    results = tmp_path / "results"
    results.mkdir()
    # free pages, one at a time: each file of a version takes one 4 KiB page of tmpfs
    script = f"""
        set -e
        mount -t tmpfs -o size=1m tmpfs {store}
        for free in 0 1 2 3 4 5 6 7 8 9; do
            rm -rf {store}/*
            cp -a {saved}/. {store}/
            dd if=/dev/zero of={store}/filler bs=4k 2>/dev/null || true
            truncate -s -$((free * 4096)) {store}/filler
            set +e
            {shlex.quote(str(CERTCLI))} upload disk --cert {tmp_path}/two.pem \\
                --key {tmp_path}/two.key --yes 2>{results}/$free.err
            echo $? > {results}/$free.code
            set -e
            readlink {lineage}/live > {results}/$free.live
            cp {lineage}/lineage.toml {results}/$free.toml
        done
    """
    env = certcli.environ()
    subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, check=True)
    old_toml = (saved / "certs" / "disk" / "lineage.toml").read_text()
    codes = []
    for free in range(10):
        code = int((results / f"{free}.code").read_text())
        live = (results / f"{free}.live").read_text().strip()
        toml = (results / f"{free}.toml").read_text()
        error = (results / f"{free}.err").read_text()
        codes.append(code)
        if code == 5:
            assert "No space left on device" in error, error
            assert live == "archive/0001", f"{free} pages free: exit 5 but live switched"
            assert toml == old_toml, f"{free} pages free: exit 5 but lineage.toml changed"
        else:
            assert code == 0, error
            assert live == "archive/0002"
            assert "www.disk.example.com" in toml
        assert "internal error" not in error, error
    assert 5 in codes and 0 in codes, codes
