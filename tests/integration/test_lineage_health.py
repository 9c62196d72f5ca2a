"""One damaged lineage never stops the others; a broken `live` heals; a certificate that
misses a domain of its lineage is a Mismatch. Through the real executable."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import (
    Certcli,
    lineage_settings,
    ok,
    on_pg,
    on_postgres,
    store_query,
    write_settings,
    write_state,
)
from tests.lab import Lab
from tests.lab.localca import LocalCA
from tests.lab.postgres import Postgres

pytestmark = pytest.mark.integration


def _upload(certcli: Certcli, ca: LocalCA, tmp_path: Path, name: str, *sans: str) -> None:
    issued = ca.issue(list(sans or [f"{name}.example.com"]))  # a name as valid as the CLI's
    (tmp_path / f"{name}.pem").write_bytes(issued.fullchain_pem)
    (tmp_path / f"{name}.key").write_bytes(issued.key_pem)
    ok(certcli("upload", name, "--cert", f"{name}.pem", "--key", f"{name}.key"))


def _lineages(certcli: Certcli) -> dict[str, dict]:
    return {e["name"]: e for e in ok(certcli("status", "--json")).json()["lineages"]}


def _notify_config(certcli: Certcli, events: Path) -> None:
    certcli.config_dir.mkdir(parents=True, exist_ok=True)
    (certcli.config_dir / "config.toml").write_text(
        f"[notify]\ncommand = 'cat >> {events}; echo >> {events}'\n"
    )


def _events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


#: (what is damaged, how, the file the error names, what it says, whether renew repairs it)
DAMAGE = [
    ("lineage.toml", b"domains = [", "lineage.toml", "Invalid", False),
    ("lineage.toml", b'name = 5\ndomains = ["bad.example.com"]\n', "lineage.toml", "name", False),
    ("lineage.toml", b'name = "bad"\ndomains = "x"\n', "lineage.toml", "domains", False),
    ("lineage.toml", b"\x00\xff\xfe\x89PNG\r\n", "lineage.toml", "codec", False),
    ("state.json", b"[1, 2]", "state.json", "not a JSON object", False),
    ("state.json", b'{"phase": ', "state.json", "Expecting", False),
    ("state.json", b"\xff\xfe\x00garbage", "state.json", "state.json", False),
    ("state.json", b'{"dns": 3}', "state.json", "state.json", False),
    ("meta.json", b"{", "meta.json", "Expecting", True),
    ("meta.json", b'{"certificate": {"sans": ["bad.example.com"]}}', "meta.json", "issuer", True),
    ("meta.json", b"\x00\x01binary", "meta.json", "meta.json", True),
    ("meta.json", None, "meta.json", "No such file", True),  # live names a version without it
    ("live", b"file", "live", "is a regular file", True),
    ("live", b"directory", "live", "is a directory", True),
    ("live", b"dangling", "meta.json", "No such file", True),
]


def _damage(lineage: Path, what: str, content: bytes | None) -> None:
    if what == "meta.json":
        path = lineage / "archive" / "0001" / "meta.json"
    elif what == "live":
        path = lineage / "live"
        path.unlink()
        if content == b"file":
            path.write_text("not a link")
        elif content == b"directory":
            shutil.copytree(lineage / "archive" / "0001", path)
        else:
            path.symlink_to("archive/0007")
        return
    else:
        path = lineage / what
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)


@pytest.mark.file_store  # store files damaged by hand: lineage.toml, state.json, meta.json, live
@pytest.mark.parametrize(("what", "content", "named", "says", "repaired"), DAMAGE)
def test_a_damaged_lineage_is_listed_as_such_and_the_others_work(
    certcli: Certcli,
    ca: LocalCA,
    tmp_path: Path,
    what: str,
    content: bytes | None,
    named: str,
    says: str,
    repaired: bool,
) -> None:
    _upload(certcli, ca, tmp_path, "good")
    _upload(certcli, ca, tmp_path, "bad", "bad.example.com")
    lineage = certcli.config_dir / "certs" / "bad"
    _damage(lineage, what, content)

    # status: the table lists both, the damaged one as Damaged; exit 0 unless --fail-on
    run = ok(certcli("status"))
    rows = {line.split("\t")[0]: line.split("\t") for line in run.stdout.splitlines()[1:]}
    assert rows["good"][-1] == "Active" and rows["bad"][-1] == "Damaged", run.stdout
    entries = _lineages(certcli)
    assert entries["good"]["status"] == "active"
    bad = entries["bad"]
    assert (bad["status"], bad["statuses"], bad["error_kind"]) == (
        "damaged",
        ["damaged"],
        "damaged",
    )
    assert named in bad["error"] and says in bad["error"], bad["error"]
    assert str(lineage) in bad["error"]
    for fail_on in ("any", "damaged"):
        assert certcli("status", "--fail-on", fail_on).code == 1
    assert ok(certcli("status", "--fail-on", "expiring")).code == 0

    # status NAME: the damaged one in detail, the file and the problem on the Error line
    run = ok(certcli("status", "bad"))
    assert re.search(r"^Status: +Damaged$", run.stdout, re.M), run.stdout
    (error,) = [line for line in run.stdout.splitlines() if line.startswith("Error:")]
    assert named in error and says in error
    assert certcli("status", "bad", "--fail-on", "any").code == 1
    run = certcli("san", "list", "bad")  # no SAN to list: the same error, exit 5
    assert run.code == 5 and named in run.stderr and says in run.stderr
    assert ok(certcli("status", "good", "--fail-on", "any")).code == 0
    assert "Traceback" not in run.stderr

    # upload to another lineage still works (the duplicate check skips the damaged one)
    _upload(certcli, ca, tmp_path, "third")

    # renew: the damaged one fails (exit 1) or is repaired (exit 0); the others are looked at
    run = certcli("renew", "--json")
    results = {r["name"]: r for r in run.json()["results"]}
    assert set(results) == {"good", "bad", "third"}, results
    assert results["good"]["action"] == results["third"]["action"] == "skipped"
    assert "Traceback" not in run.stderr
    if repaired:
        assert run.code == 0, run.stderr
        assert results["bad"]["action"] == "skipped" and results["bad"]["notes"], results["bad"]
        assert f"certcli: warning: bad: {lineage / 'live'}" in run.stderr
        assert os.readlink(lineage / "live") == "archive/0001"
        assert _lineages(certcli)["bad"]["status"] == "active"
    else:
        assert run.code == 1
        assert results["bad"]["action"] == "failed" and named in results["bad"]["error"]
        assert "certcli: error: bad: " in run.stderr and str(lineage / named) in run.stderr
        assert _lineages(certcli)["bad"]["status"] == "damaged"


@pytest.mark.parametrize(
    ("state", "says"), [("[1, 2]", "not a JSON object"), ('{"dns": 3}', "dns is 3")]
)
def test_a_damaged_state_row_is_listed_as_such_and_the_others_work(
    certcli: Certcli, ca: LocalCA, tmp_path: Path, postgres: Postgres, state: str, says: str
) -> None:
    if not on_pg(certcli):
        on_postgres(certcli, postgres.new_database(), postgres, "health")
    _upload(certcli, ca, tmp_path, "good")
    _upload(certcli, ca, tmp_path, "bad", "bad.example.com")
    damage = "UPDATE certcli.lineages SET state = %s::jsonb WHERE name = 'bad' RETURNING name"
    assert store_query(certcli, damage, (state,)) == [("bad",)]
    entries = _lineages(certcli)
    assert entries["good"]["status"] == "active"
    error = entries["bad"]["error"]
    assert entries["bad"]["status"] == "damaged", entries["bad"]
    # the row named, not a file: this host holds no state.json
    assert error.startswith("cannot read the state of 'bad' in ") and says in error, error
    assert "state.json" not in error
    run = certcli("renew", "--json")
    results = {r["name"]: r for r in run.json()["results"]}
    assert run.code == 1 and results["good"]["action"] == "skipped", results
    assert results["bad"]["action"] == "failed" and says in results["bad"]["error"]
    assert "Traceback" not in run.stderr


@pytest.mark.file_store  # the live symlink replaced by a directory
def test_a_live_directory_is_moved_aside_never_deleted(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    _upload(certcli, ca, tmp_path, "dir")
    lineage = certcli.config_dir / "certs" / "dir"
    (lineage / "live").unlink()
    (lineage / "live").mkdir()
    (lineage / "live" / "notes.txt").write_text("someone's own file")
    run = ok(certcli("renew", "--json"))
    (result,) = run.json()["results"]
    (note,) = result["notes"]
    assert note.endswith("live restored to version 1; what was there is kept as live.broken-1")
    assert (lineage / "live.broken-1" / "notes.txt").read_text() == "someone's own file"
    assert os.readlink(lineage / "live") == "archive/0001"
    assert ok(certcli("renew", "--json")).json()["results"][0]["notes"] == []  # healed once


def test_a_custom_lineage_that_misses_a_domain_is_a_mismatch_warned_and_notified(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    import tomllib

    import tomli_w

    events = tmp_path / "events.jsonl"
    _notify_config(certcli, events)
    _upload(certcli, ca, tmp_path, "shop", "shop.example.com", "*.shop.example.com")
    _upload(certcli, ca, tmp_path, "fine", "fine.example.com")
    config = tomllib.loads(lineage_settings(certcli, "shop") or "")
    # covered by the wildcard: no mismatch
    config["domains"] += ["api.shop.example.com"]
    write_settings(certcli, "shop", tomli_w.dumps(config))
    assert _lineages(certcli)["shop"]["status"] == "active"
    assert ok(certcli("status", "--fail-on", "any")).code == 0

    # a name the certificate does not cover: Mismatch, and --fail-on mismatch and any match
    config["domains"] += ["a.b.shop.example.com", "other.example.com"]
    write_settings(certcli, "shop", tomli_w.dumps(config))
    shop = _lineages(certcli)["shop"]
    assert (shop["status"], shop["statuses"]) == ("mismatch", ["mismatch"])
    assert {s["name"]: s["ssl_status"] for s in shop["sans"]}["other.example.com"] == "not_covered"
    run = certcli("status", "--fail-on", "mismatch")
    assert run.code == 1
    assert [line.split("\t")[-1] for line in run.stdout.splitlines()[1:]] == ["Active", "Mismatch"]
    assert certcli("status", "--fail-on", "any").code == 1
    assert re.search(r"^Status: +Mismatch$", ok(certcli("status", "shop")).stdout, re.M)

    # renew: an uploaded certificate is never renewed; it warns and notifies
    run = ok(certcli("renew"))
    assert (
        "certcli: warning: shop: uploaded certificate does not cover a.b.shop.example.com, "
        "other.example.com: upload a certificate that covers shop.example.com, "
        "*.shop.example.com, api.shop.example.com, a.b.shop.example.com, other.example.com "
        "(`certcli csr shop` makes a key and CSR for "
        "one), or switch it to ACME with `certcli issue shop --force-renewal`"
    ) in run.stderr
    assert "fine" not in run.stderr
    (event,) = _events(events)
    assert (event["event"], event["name"]) == ("custom_mismatch", "shop")
    assert "does not cover a.b.shop.example.com" in event["text"]


# -- ACME lineages, against the lab -------------------------------------------------------


def _issue(acme: Certcli, lab: Lab, name: str, *args: str) -> None:
    ok(acme("issue", name, "--webroot", lab.webroot, "--agree-tos", *args))


@pytest.mark.file_store  # the live symlink and archive/NNNN
@pytest.mark.parametrize("how", ["file", "directory", "dangling", "no meta.json"])
def test_renew_restores_a_broken_live_from_the_newest_complete_version(
    acme: Certcli, lab: Lab, how: str
) -> None:
    name = f"heal-{how.replace(' ', '').replace('.', '')}.certcli.test"
    _issue(acme, lab, name)
    ok(acme("renew", "--force", name))  # version 2
    lineage = acme.config_dir / "certs" / name
    v2 = json.loads((lineage / "archive" / "0002" / "meta.json").read_text())["certificate"]
    if how == "no meta.json":
        (lineage / "archive" / "0002" / "meta.json").unlink()
    else:
        (lineage / "live").unlink()
        if how == "file":
            (lineage / "live").write_text("x")
        elif how == "directory":
            (lineage / "live").mkdir()
        else:
            (lineage / "live").symlink_to("archive/0003")
    assert _lineages(acme)[name]["status"] == "damaged"

    run = ok(acme("renew", "--json"))
    (result,) = run.json()["results"]
    assert result["action"] == "not_due", result  # repaired, not renewed
    (note,) = result["notes"]
    assert f"certcli: warning: {name}: {note}" in run.stderr
    assert os.readlink(lineage / "live") == "archive/0002"
    assert len(os.listdir(lineage / "archive")) == 2
    entry = _lineages(acme)[name]
    assert (entry["status"], entry["version"], entry["serial"]) == ("active", 2, v2["serial"])


@pytest.mark.file_store  # a key removed from archive/NNNN
def test_renew_issues_anew_when_no_complete_version_is_left(acme: Certcli, lab: Lab) -> None:
    name = "heal-none.certcli.test"
    _issue(acme, lab, name)
    lineage = acme.config_dir / "certs" / name
    (lineage / "archive" / "0001" / "privkey.pem").unlink()
    (lineage / "live").unlink()
    (lineage / "live").mkdir()  # what a hand-made copy leaves
    (lineage / "live" / "cert.pem").write_text("old copy")
    assert _lineages(acme)[name]["status"] == "damaged"
    run = ok(acme("renew", "--json"))
    (result,) = run.json()["results"]
    assert result["action"] == "renewed" and result["version"] == 2, result
    assert result["notes"][0].endswith("no complete version is left to restore")
    assert os.readlink(lineage / "live") == "archive/0002"
    assert (lineage / "live.broken-1" / "cert.pem").read_text() == "old copy"
    assert _lineages(acme)[name]["status"] == "active"


def test_a_domain_added_by_hand_or_without_issuing_is_a_mismatch_until_renew(
    acme: Certcli, lab: Lab
) -> None:
    import tomllib

    import tomli_w

    name = "grow.certcli.test"
    _issue(acme, lab, name)
    config = tomllib.loads(lineage_settings(acme, name) or "")
    write_settings(acme, name, tomli_w.dumps({**config, "domains": [name, f"www.{name}"]}))
    assert _lineages(acme)[name]["statuses"] == ["mismatch"]
    assert acme("status", "--fail-on", "mismatch").code == 1
    ok(acme("san", "add", name, f"api.{name}", "--no-issue"))
    assert _lineages(acme)[name]["statuses"] == ["mismatch"]

    (result,) = ok(acme("renew", "--json")).json()["results"]
    assert result["action"] == "renewed"
    assert result["reason"] == f"not yet covered: www.{name}, api.{name}"
    entry = _lineages(acme)[name]
    assert entry["statuses"] == ["active"]
    assert {s["name"]: s["ssl_status"] for s in entry["sans"]} == {
        name: "covered",
        f"www.{name}": "covered",
        f"api.{name}": "covered",
    }
    assert ok(acme("status", "--fail-on", "any")).code == 0


@pytest.mark.file_store  # files of archive/NNNN damaged
@pytest.mark.parametrize("how", ["garbled meta.json", "no fullchain.pem"])
def test_renew_heals_a_live_version_damaged_after_a_run_found_it_not_due(
    acme: Certcli, lab: Lab, how: str
) -> None:
    # the renew index does not see a version's files changed by hand (it trusts lineage.toml
    # and the lock holders' notes); `renew NAME` reads the lineage whatever the index says
    name = f"heal-late-{how.split()[-1].replace('.', '')}.certcli.test"
    _issue(acme, lab, name)
    ok(acme("renew", "--force", name))  # version 2
    (first,) = ok(acme("renew", "--json")).json()["results"]
    assert first["action"] == "not_due"
    version = acme.config_dir / "certs" / name / "archive" / "0002"
    if how == "garbled meta.json":
        with open(version / "meta.json", "r+b") as meta:  # in place: same inode
            meta.write(b"garbage")
    else:
        (version / "fullchain.pem").unlink()
    if how == "garbled meta.json":
        assert _lineages(acme)[name]["status"] == "damaged"

    (result,) = ok(acme("renew", "--json", name)).json()["results"]
    assert result["notes"], result
    lineage = acme.config_dir / "certs" / name
    want = "archive/0002" if how == "garbled meta.json" else "archive/0001"
    assert os.readlink(lineage / "live") == want
    assert _lineages(acme)[name]["status"] == "active"


@pytest.mark.parametrize(
    ("what", "content", "says"),
    [("settings", "domains = [", "Invalid"), ("state", [1, 2], "not a JSON object")],
)
def test_settings_or_state_that_cannot_be_read_make_one_lineage_damaged(
    certcli: Certcli, ca: LocalCA, tmp_path: Path, what: str, content: object, says: str
) -> None:
    """Whichever store: what an operator (or a bug) wrote that certcli cannot read is this
    lineage's problem only, named in its error."""
    _upload(certcli, ca, tmp_path, "good")
    _upload(certcli, ca, tmp_path, "bad", "bad.example.com")
    if what == "settings":
        write_settings(certcli, "bad", str(content))
    else:
        write_state(certcli, "bad", content)  # type: ignore[arg-type]
    entries = _lineages(certcli)
    assert entries["good"]["status"] == "active"
    assert entries["bad"]["status"] == "damaged"
    assert says in entries["bad"]["error"], entries["bad"]["error"]
    assert certcli("status", "--fail-on", "damaged").code == 1
    run = certcli("renew", "--json")
    assert run.code == 1 and "Traceback" not in run.stderr
    results = {r["name"]: r for r in run.json()["results"]}
    assert results["bad"]["action"] == "failed" and results["good"]["action"] == "skipped"
