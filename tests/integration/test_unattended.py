"""`certcli renew` as cron runs it: hooks, notifications, backoff, and runs that overlap."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.conftest import (
    CERTCLI,
    PASSPHRASE,
    Certcli,
    lineage_settings,
    lineage_state,
    live_dir,
    live_version,
    ok,
    on_pg,
    store_query,
    version_numbers,
    write_settings,
)
from tests.lab import Lab
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration


def _config(certcli: Certcli, text: str) -> None:
    certcli.config_dir.mkdir(parents=True, exist_ok=True)
    (certcli.config_dir / "config.toml").write_text(text)


def _issue(acme: Certcli, lab: Lab, name: str, *args: str) -> None:
    ok(acme("issue", name, "--webroot", lab.webroot, "--agree-tos", *args))


def _edit_lineage(acme: Certcli, name: str, **changes: object) -> None:
    """Change the lineage's settings as a person with an editor would."""
    import tomllib

    import tomli_w

    text = lineage_settings(acme, name)
    assert text is not None, name
    write_settings(acme, name, tomli_w.dumps({**tomllib.loads(text), **changes}))


def _forget_authorizations(acme: Certcli, lab: Lab) -> None:
    """lab.forget_authorizations for either store: it reads the account from a file store's
    layout, so a PostgreSQL store's account is laid out that way first."""
    if not on_pg(acme):
        lab.forget_authorizations(acme.config_dir)
        return
    from certcli.storage.pgstore import PostgresStore
    from certcli.storage.postgres import StoreUrl

    url = StoreUrl.parse(acme.env["CERTCLI_STORE_URL"], "the test")
    store = PostgresStore(url, acme.config_dir, PASSPHRASE.encode(), "test-host")
    account = store.read_account(lab.directory_url)
    assert account is not None
    with tempfile.TemporaryDirectory() as laid_out:
        copy = Path(laid_out) / "accounts" / "lab" / "1"
        copy.mkdir(parents=True)
        (copy / "account.json").write_text(json.dumps(account.to_json()))
        (copy / "key.pem").write_bytes(account.key_pem)
        lab.forget_authorizations(Path(laid_out))


def _set_live_dates(acme: Certcli, name: str, not_before: datetime, not_after: datetime) -> None:
    """Make the store believe the live certificate has these dates (what it recorded of it,
    meta.json's certificate, which status and renew read)."""
    dates = {
        "not_before": not_before.isoformat().replace("+00:00", "Z"),
        "not_after": not_after.isoformat().replace("+00:00", "Z"),
    }
    if on_pg(acme):
        from psycopg.types.json import Jsonb

        changed = store_query(
            acme,
            "UPDATE certcli.versions v SET meta = jsonb_set(meta, '{certificate}', "
            "(meta->'certificate') || %s) FROM certcli.lineages l "
            "WHERE l.name = %s AND v.name = l.name AND v.version = l.live_version "
            "RETURNING v.version",
            (Jsonb(dates), name),
        )
        assert len(changed) == 1, (name, changed)
        return
    meta_path = acme.config_dir / "certs" / name / "live" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["certificate"].update(dates)
    meta_path.write_text(json.dumps(meta))


def _break_webroot(acme: Certcli, lab: Lab, name: str, webroot: Path) -> None:
    """Point the lineage at a webroot no server serves: its next renewal fails validation
    (its earlier authorizations deactivated, so that Pebble cannot reuse one)."""
    webroot.mkdir(exist_ok=True)
    _edit_lineage(acme, name, webroot=str(webroot))
    _forget_authorizations(acme, lab)


def test_hooks_run_once_per_run_and_per_renewed_lineage(
    acme: Certcli, lab: Lab, tmp_path: Path
) -> None:
    log = tmp_path / "hooks.log"
    _config(
        acme,
        "[hooks]\n"
        f"pre = 'echo pre >> {log}'\n"
        f"post = 'echo post failed=[$FAILED_DOMAINS] renewed=[$RENEWED_DOMAINS] >> {log}'\n"
        f"deploy = 'echo deploy $CERTCLI_NAME $RENEWED_LINEAGE $CERTCLI_DOMAINS >> {log}'\n",
    )
    _issue(acme, lab, "h1.certcli.test")
    _issue(acme, lab, "h2.certcli.test")
    lines = log.read_text().splitlines()  # issue runs the deploy hook too
    assert [line.split()[:2] for line in lines] == [
        ["deploy", "h1.certcli.test"],
        ["deploy", "h2.certcli.test"],
    ]
    log.unlink()
    ok(acme("renew"))  # nothing due: no hook at all
    assert not log.exists()

    ok(acme("renew", "--force"))
    lines = log.read_text().splitlines()
    assert lines[0] == "pre" and lines[-1].startswith("post failed=[] renewed=[")
    assert "h1.certcli.test" in lines[-1] and "h2.certcli.test" in lines[-1]
    live = live_dir(acme, "h1.certcli.test")
    assert f"deploy h1.certcli.test {live} h1.certcli.test" in lines
    assert len([line for line in lines if line.startswith("deploy")]) == 2


def test_a_failing_deploy_hook_fails_the_run_but_keeps_the_certificate(
    acme: Certcli, lab: Lab
) -> None:
    _issue(acme, lab, "dh.certcli.test", "--deploy-hook", "true")
    _edit_lineage(acme, "dh.certcli.test", hooks={"deploy": "exit 3"})
    run = acme("renew", "--force")
    assert run.code == 1
    assert "the deploy hook `exit 3` failed (exit 3)" in run.stderr
    assert live_version(acme, "dh.certcli.test") == 2


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    """A real HTTP listener on loopback that records what it is sent."""
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_a_failed_renewal_is_notified_and_backs_off(
    acme: Certcli, lab: Lab, tmp_path: Path, webhook: str
) -> None:
    events = tmp_path / "events.jsonl"
    _config(
        acme,
        f"[notify]\nwebhook = '{webhook}'\ncommand = 'cat >> {events}; echo >> {events}'\n",
    )
    _issue(acme, lab, "nb.certcli.test")
    _break_webroot(acme, lab, "nb.certcli.test", tmp_path / "unserved")

    run = acme("renew", "--force")
    assert run.code == 1
    assert "validation failed for nb.certcli.test" in run.stderr
    (posted,) = _Receiver.received
    assert posted["event"] == "renewal_failed" and posted["name"] == "nb.certcli.test"
    assert posted["text"].startswith("certcli: renewing nb.certcli.test failed")
    assert json.loads(events.read_text().strip())["event"] == "renewal_failed"

    state = lineage_state(acme, "nb.certcli.test")
    assert state["failures"] == 1 and state["last_error_kind"] == "validation_failed"
    waited, attempted = (
        datetime.fromisoformat(state[k].replace("Z", "+00:00"))
        for k in ("next_attempt", "last_attempt")
    )
    # a minute after the failure (which came within the attempt), and still ahead
    assert timedelta(seconds=60) <= waited - attempted < timedelta(seconds=90)
    assert waited > datetime.now(UTC)
    (entry,) = ok(acme("status", "--json")).json()["lineages"]
    assert entry["status"] == "failed" and entry["next_attempt"] == state["next_attempt"]
    assert "Next attempt:" in ok(acme("status", "nb.certcli.test")).stdout

    # inside the backoff, a plain run asks the CA nothing; the lineage's SANs are still due
    # only under --force, so make it due by adding a name first
    before = len(lab.acme_requests())
    run = ok(acme("renew", "-v"))
    assert len(lab.acme_requests()) == before
    _break_webroot(acme, lab, "nb.certcli.test", lab.webroot)  # fixed
    ok(acme("renew", "--force"))  # --force bypasses the backoff
    state = lineage_state(acme, "nb.certcli.test")
    assert "next_attempt" not in state and state["failures"] == 0


def test_backoff_skips_a_due_lineage_until_its_time(
    acme: Certcli, lab: Lab, tmp_path: Path
) -> None:
    _issue(acme, lab, "bo.certcli.test")
    _break_webroot(acme, lab, "bo.certcli.test", tmp_path / "unserved")
    assert acme("renew", "--force").code == 1
    # make it due: a new name that the certificate does not cover (and that is served)
    _edit_lineage(acme, "bo.certcli.test", domains=["bo.certcli.test", "www.bo.certcli.test"])
    before = len(lab.acme_requests())
    run = ok(acme("renew", "-v"))
    assert "bo.certcli.test: failed before; next attempt at" in run.stdout
    assert len(lab.acme_requests()) == before


def test_three_renews_at_once_one_works_the_others_exit_0(
    acme: Certcli, lab: Lab, tmp_path: Path
) -> None:
    _config(acme, "[hooks]\npre = 'sleep 2'\n")  # the first run holds the lock a while
    _issue(acme, lab, "lock.certcli.test")
    env = {**os.environ, **acme.env, "CERTCLI_CONFIG_DIR": str(acme.config_dir)}
    procs = [
        subprocess.Popen(
            [str(CERTCLI), "renew", "--force"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [
        (p.wait(), p.stdout.read() if p.stdout else "", p.stderr.read() if p.stderr else "")
        for p in procs
    ]
    assert [code for code, _, _ in results] == [0, 0, 0], results
    assert sum("Renewed lock.certcli.test" in out for _, out, _ in results) == 1
    assert sum("another run is at work" in err for _, _, err in results) == 2


def test_one_damaged_lineage_does_not_stop_the_others(acme: Certcli, lab: Lab) -> None:
    _issue(acme, lab, "fine.certcli.test")
    _issue(acme, lab, "broken.certcli.test")
    write_settings(acme, "broken.certcli.test", "domains = [")
    run = acme("renew", "--force")
    assert run.code == 1
    assert "Renewed fine.certcli.test" in run.stdout
    assert "certcli: error: broken.certcli.test: cannot read" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_hook_that_hangs_is_stopped_at_its_timeout(acme: Certcli, lab: Lab) -> None:
    _config(acme, "[hooks]\ntimeout = 1\ndeploy = 'sleep 30'\n")
    run = acme("issue", "slow.certcli.test", "--webroot", lab.webroot, "--agree-tos")
    assert run.code == 1
    assert "the deploy hook `sleep 30` did not finish in 1 s" in run.stderr
    assert live_version(acme, "slow.certcli.test") == 1
    assert (live_dir(acme, "slow.certcli.test") / "cert.pem").is_file()
    # a hook that hangs failed, too: recorded, and shown
    assert "did not finish in 1 s" in _state(acme, "slow.certcli.test")["deploy_failed"]["error"]
    assert acme("status", "slow.certcli.test", "--fail-on", "any").code == 1


def _index_path(acme: Certcli) -> Path:
    # the file store's is text; a PostgreSQL store's host keeps a JSON one, naming its store
    return acme.config_dir / ("renew-index.json" if on_pg(acme) else "renew-index")


def _index(acme: Certcli) -> dict[str, list]:
    """The renew index's entries: name -> [stamp, until, what it shows]."""
    text = _index_path(acme).read_text()
    if on_pg(acme):
        return json.loads(text)["lineages"]
    header, *lines = text.splitlines()
    assert header == "certcli renew index 2"
    return {n: [stamp, float(until), shown] for n, stamp, until, shown in map(_fields, lines)}


def _fields(line: str) -> list[str]:
    return line.split("\t")


def _write_index(acme: Certcli, lineages: dict[str, list]) -> None:
    """Replace the index's entries, keeping what else it says (which store it is of)."""
    path = _index_path(acme)
    if on_pg(acme):
        path.write_text(json.dumps({**json.loads(path.read_text()), "lineages": lineages}))
        return
    lines = [f"{n}\t{stamp}\t{until!r}\t{shown}\n" for n, (stamp, until, shown) in lineages.items()]
    path.write_text("certcli renew index 2\n" + "".join(lines))


def _shown(entry: list, domains: str) -> str:
    """The entry's `shown`, its domains replaced (its certificate kept)."""
    return f"{domains} {entry[2].split(' ', 1)[1]}"


def test_renew_keeps_an_index_of_what_is_not_due_and_trusts_it_only_while_unchanged(
    acme: Certcli, lab: Lab
) -> None:
    _issue(acme, lab, "idx.certcli.test")
    ok(acme("renew"))
    entry = _index(acme)["idx.certcli.test"]
    (live,) = ok(acme("status", "--json")).json()["lineages"]
    not_before, not_after = (datetime.fromisoformat(live[k]) for k in ("not_before", "not_after"))
    assert entry[1] == pytest.approx((not_after - (not_after - not_before) / 3).timestamp())
    assert (
        entry[2]
        == f"idx.certcli.test {live['not_after']} {live['serial']} " + (live["fingerprint_sha256"])
    )

    # Unchanged files: the index answers (a marker put in it shows in the results), in
    # --json and -v alike; a lineage named is read.
    _write_index(acme, {"idx.certcli.test": [*entry[:2], _shown(entry, "from.the.index")]})
    (result,) = ok(acme("renew", "--json")).json()["results"]
    assert (result["action"], result["domains"]) == ("not_due", ["from.the.index"])
    assert (result["serial"], result["not_after"]) == (live["serial"], live["not_after"])
    assert "idx.certcli.test: not due" in ok(acme("renew", "-v")).stdout
    (result,) = ok(acme("renew", "--json", "idx.certcli.test")).json()["results"]
    assert (result["action"], result["domains"]) == ("not_due", ["idx.certcli.test"])

    # Past its `until`: the lineage is read again.
    _write_index(acme, {"idx.certcli.test": [entry[0], 0, _shown(entry, "x")]})
    (result,) = ok(acme("renew", "--json")).json()["results"]
    assert (result["action"], result["domains"]) == ("not_due", ["idx.certcli.test"])

    # Its state changed by a command (revoke, under the lineage's lock), lineage.toml not:
    # the index is not trusted, the revoked certificate is replaced.
    ok(acme("renew"))
    _write_index(acme, {"idx.certcli.test": [entry[0], 4e9, _shown(entry, "from.the.index")]})
    ok(acme("revoke", "idx.certcli.test"))
    (result,) = ok(acme("renew", "--json")).json()["results"]
    assert (result["action"], result["reason"]) == ("renewed", "revoked")

    # lineage.toml changed by hand (a name added): the index is not trusted; it is renewed.
    ok(acme("renew"))
    entry = _index(acme)["idx.certcli.test"]
    _write_index(acme, {"idx.certcli.test": [entry[0], 4e9, entry[2]]})
    _edit_lineage(acme, "idx.certcli.test", domains=["idx.certcli.test", "more.certcli.test"])
    (result,) = ok(acme("renew", "--json")).json()["results"]
    assert result["action"] == "renewed" and result["reason"].startswith("not yet covered")
    assert "idx.certcli.test" not in _index(acme) or _index(acme)["idx.certcli.test"][0] != entry[0]


@pytest.mark.file_store  # the file store's notes of what lock holders changed
def test_a_note_is_taken_only_once_the_index_without_its_entry_is_kept(
    acme: Certcli, lab: Lab
) -> None:
    name = "note.certcli.test"
    _issue(acme, lab, name)
    ok(acme("renew"))
    notes = acme.config_dir / "changes"
    assert not (notes / name).exists() and name in _index(acme)
    ok(acme("revoke", name))  # a change under the lineage's lock leaves its note
    assert (notes / name).is_file()
    (result,) = ok(acme("renew", "--json")).json()["results"]
    assert (result["action"], result["reason"]) == ("renewed", "revoked")
    # taken by that run; its renewal (under the lock) left a new one, taken by the next
    assert (notes / name).is_file()
    (result,) = ok(acme("renew", "--json")).json()["results"]
    assert result["action"] == "not_due" and not (notes / name).exists()
    assert name in _index(acme)


def test_a_damaged_index_is_ignored(acme: Certcli, lab: Lab) -> None:
    _issue(acme, lab, "idx2.certcli.test")
    ok(acme("renew"))
    good = _index_path(acme).read_text()
    bad = ["{", "[]", "certcli renew index 2\nidx2.certcli.test\t7\n"]
    if not on_pg(acme):
        bad += [good.replace("\t", " "), good.replace("index 2", "index 3")]
        bad += [good.replace(".certcli.test ", ".certcli.test  ")]  # `shown` of the wrong shape
    for text in bad:
        _index_path(acme).write_text(text)
        (result,) = ok(acme("renew", "--json")).json()["results"]
        assert (result["action"], result["domains"]) == ("not_due", ["idx2.certcli.test"])


def _state(acme: Certcli, name: str) -> dict:
    return lineage_state(acme, name)


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_failed_deploy_hook_is_notified_recorded_shown_and_run_again_until_it_works(
    acme: Certcli, lab: Lab, tmp_path: Path, webhook: str
) -> None:
    """issue, renew and san add each run the deploy hook: a failure is notified (command
    and webhook), kept in state.json, shown by status, and the next renew runs only the
    hook again (no new certificate) until it succeeds."""
    name = "df.certcli.test"
    up, runs, events = tmp_path / "server-up", tmp_path / "deploy.log", tmp_path / "events"
    _config(
        acme,
        f"[notify]\nwebhook = '{webhook}'\ncommand = 'cat >> {events}; echo >> {events}'\n"
        f"[hooks]\ndeploy = 'echo $CERTCLI_NAME >> {runs}; "
        f"test -e {up} || {{ echo server is down >&2; exit 4; }}'\n",
    )

    def deploy_runs() -> int:
        return len(runs.read_text().splitlines())

    run = acme("issue", name, "--webroot", lab.webroot, "--agree-tos")
    assert run.code == 1
    assert "failed (exit 4): server is down" in run.stderr
    assert "Issued df.certcli.test" in run.stdout  # the certificate stands

    # renew: not due, but the hook failed: only the hook runs, and fails again
    before = len(lab.acme_requests())
    run = acme("renew", "--json")
    assert run.code == 1
    (result,) = run.json()["results"]
    assert (result["action"], result["version"]) == ("deployed", 1)
    assert "server is down" in result["deploy_error"]
    assert len(lab.acme_requests()) == before and version_numbers(acme, name) == [1]

    # a renewal and a san add that re-issues: each new version's hook fails, too
    assert acme("renew", "--force").code == 1
    run = acme("san", "add", name, f"www.{name}")
    assert run.code == 1 and "server is down" in run.stderr
    assert version_numbers(acme, name) == [1, 2, 3]
    assert deploy_runs() == 4

    for sent in (_events(events), _Receiver.received):
        assert [(e["event"], e["version"]) for e in sent] == [
            ("deploy_failed", 1),
            ("deploy_failed", 1),
            ("deploy_failed", 2),
            ("deploy_failed", 3),
        ]
        assert all(e["name"] == name and "server is down" in e["deploy_error"] for e in sent)
        assert sent[0]["text"].startswith(f"certcli: deploying {name} (version 1) failed: ")
    failed = _state(acme, name)["deploy_failed"]
    assert failed["version"] == 3 and failed["error"].endswith("failed (exit 4): server is down")

    (entry,) = ok(acme("status", "--json")).json()["lineages"]
    assert (entry["status"], entry["deploy_failed"]) == ("active", True)
    assert "server is down" in entry["deploy_error"]
    assert ok(acme("status")).stdout.splitlines()[1].endswith("\tActive, deploy failed")
    detail = ok(acme("status", name)).stdout
    assert "Active, deploy failed" in detail and "`certcli renew` runs the hook again" in detail
    assert acme("status", "--fail-on", "any").code == 1
    assert acme("status", "--fail-on", "expiring").code == 0

    # the server is back: the next renew deploys the live version, and that clears it
    up.touch()
    run = ok(acme("renew"))
    assert run.stdout.startswith(f"Deployed {name}: version 3;")
    assert "deploy_failed" not in _state(acme, name)
    (entry,) = ok(acme("status", "--json")).json()["lineages"]
    assert (entry["deploy_failed"], entry["deploy_error"]) == (False, None)
    assert ok(acme("status", "--fail-on", "any")).stdout.splitlines()[1].endswith("\tActive")
    assert version_numbers(acme, name) == [1, 2, 3]
    assert deploy_runs() == 5
    (result,) = ok(acme("renew", "--json")).json()["results"]  # done: nothing runs again
    assert result["action"] == "not_due" and deploy_runs() == 5
    assert len(_events(events)) == 4


def test_an_expiring_upload_is_notified_once_per_threshold(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    events, delivered = tmp_path / "events", tmp_path / "delivered"
    _config(
        certcli,
        f"[notify]\ncommand = 'cat >> {events}; echo >> {events}; test -e {delivered}'\n",
    )

    def upload(days_left: float) -> None:
        issued = ca.issue(
            ["up.example.com"], days=90, not_before=datetime.now(UTC) - timedelta(90 - days_left)
        )
        (tmp_path / "c.pem").write_bytes(issued.fullchain_pem)
        (tmp_path / "c.key").write_bytes(issued.key_pem)
        ok(certcli("upload", "up", "--cert", "c.pem", "--key", "c.key", "--yes"))

    upload(days_left=20)
    run = certcli("renew")  # the notice does not get through: it is sent again next time
    assert run.code == 1 and "the notify command" in run.stderr
    assert "expiry_notice" not in _state(certcli, "up")
    delivered.touch()
    run = ok(certcli("renew"))
    assert "up: uploaded certificate expires in 19 days" in run.stderr
    _, event = _events(events)
    assert (event["event"], event["name"]) == ("custom_expiring", "up")
    notice = _state(certcli, "up")["expiry_notice"]
    assert notice == {"serial": event["serial"], "days": 30}
    # the runs after it still warn on stderr, but send nothing until the next threshold
    for _ in range(2):
        assert "expires in 19 days" in ok(certcli("renew")).stderr
    assert len(_events(events)) == 2
    # a new certificate, 5 days from its end: notified (the 7-day threshold), then quiet
    upload(days_left=5)
    ok(certcli("renew"))
    ok(certcli("renew"))
    _, first, second = _events(events)
    assert second["serial"] != first["serial"] and "expires in 4 days" in second["text"]
    assert _state(certcli, "up")["expiry_notice"]["days"] == 7


@pytest.mark.parametrize("case", ["no certificate", "expired", "expiring", "not covered"])
def test_a_backoff_is_said_without_v_when_the_certificate_needs_it(
    acme: Certcli, lab: Lab, tmp_path: Path, case: str
) -> None:
    """cron stays quiet for a lineage that waits out its backoff, unless it has no
    certificate or one that expired or expires soon."""
    name = f"bw-{case.replace(' ', '-')}.certcli.test"
    unserved = tmp_path / "unserved"
    unserved.mkdir()
    if case == "no certificate":
        assert acme("issue", name, "--webroot", unserved, "--agree-tos").code == 13
    else:
        _issue(acme, lab, name)
        _break_webroot(acme, lab, name, unserved)
        assert acme("renew", "--force").code == 1
    if case == "not covered":  # due, but the certificate is fine for now
        _edit_lineage(acme, name, domains=[name, f"www.{name}"])
    elif case != "no certificate":  # the live certificate nears (or passed) its end
        end = datetime.now(UTC) + timedelta(days=-1 if case == "expired" else 5)
        _set_live_dates(acme, name, end - timedelta(days=90), end)
    before = len(lab.acme_requests())
    run = ok(acme("renew"))
    assert len(lab.acme_requests()) == before and run.stdout == ""
    if case == "not covered":
        assert run.stderr == ""
        return
    (line,) = run.stderr.splitlines()
    said = {"no certificate": "no certificate yet", "expired": "expired", "expiring": "4 days left"}
    assert line.startswith(f"certcli: warning: {name}: {said[case]}, but not renewed: ")
    assert "the last attempt failed (validation failed for" in line
    assert f"; next attempt at {_state(acme, name)['next_attempt']}" in line
