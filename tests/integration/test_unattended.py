"""`certcli renew` as cron runs it: hooks, notifications, backoff, and runs that overlap."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.conftest import CERTCLI, Certcli, ok
from tests.lab import Lab

pytestmark = pytest.mark.integration


def _config(certcli: Certcli, text: str) -> None:
    certcli.config_dir.mkdir(parents=True, exist_ok=True)
    (certcli.config_dir / "config.toml").write_text(text)


def _issue(acme: Certcli, lab: Lab, name: str, *args: str) -> None:
    ok(acme("issue", name, "--webroot", lab.webroot, "--agree-tos", *args))


def _edit_lineage(acme: Certcli, name: str, **changes: object) -> None:
    """Change lineage.toml as a person with an editor would."""
    import tomllib

    import tomli_w

    path = acme.config_dir / "certs" / name / "lineage.toml"
    path.write_text(tomli_w.dumps({**tomllib.loads(path.read_text()), **changes}))


def _break_webroot(acme: Certcli, name: str, webroot: Path) -> None:
    """Point the lineage at a webroot no server serves: its next renewal fails validation."""
    webroot.mkdir(exist_ok=True)
    _edit_lineage(acme, name, webroot=str(webroot))


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
    live = acme.config_dir / "certs" / "h1.certcli.test" / "live"
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
    assert os.readlink(acme.config_dir / "certs" / "dh.certcli.test" / "live") == "archive/0002"


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
    _break_webroot(acme, "nb.certcli.test", tmp_path / "unserved")

    run = acme("renew", "--force")
    assert run.code == 1
    assert "validation failed for nb.certcli.test" in run.stderr
    (posted,) = _Receiver.received
    assert posted["event"] == "renewal_failed" and posted["name"] == "nb.certcli.test"
    assert posted["text"].startswith("certcli: renewing nb.certcli.test failed")
    assert json.loads(events.read_text().strip())["event"] == "renewal_failed"

    state = json.loads((acme.config_dir / "certs" / "nb.certcli.test" / "state.json").read_text())
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
    _break_webroot(acme, "nb.certcli.test", lab.webroot)  # fixed
    ok(acme("renew", "--force"))  # --force bypasses the backoff
    state = json.loads((acme.config_dir / "certs" / "nb.certcli.test" / "state.json").read_text())
    assert "next_attempt" not in state and state["failures"] == 0


def test_backoff_skips_a_due_lineage_until_its_time(
    acme: Certcli, lab: Lab, tmp_path: Path
) -> None:
    _issue(acme, lab, "bo.certcli.test")
    _break_webroot(acme, "bo.certcli.test", tmp_path / "unserved")
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
    (acme.config_dir / "certs" / "broken.certcli.test" / "lineage.toml").write_text("domains = [")
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
    assert (acme.config_dir / "certs" / "slow.certcli.test" / "live").is_symlink()


def _index(acme: Certcli) -> dict:
    return json.loads((acme.config_dir / "renew-index.json").read_text())["lineages"]


def _write_index(acme: Certcli, lineages: dict) -> None:
    payload = {"format": 1, "lineages": lineages}
    (acme.config_dir / "renew-index.json").write_text(json.dumps(payload))


def test_renew_keeps_an_index_of_what_is_not_due_and_trusts_it_only_while_unchanged(
    acme: Certcli, lab: Lab
) -> None:
    _issue(acme, lab, "idx.certcli.test")
    ok(acme("renew"))
    entry = _index(acme)["idx.certcli.test"]
    live = json.loads((acme.config_dir / "certs/idx.certcli.test/live/meta.json").read_text())[
        "certificate"
    ]
    not_before, not_after = (datetime.fromisoformat(live[k]) for k in ("not_before", "not_after"))
    assert entry["until"] == pytest.approx((not_after - (not_after - not_before) / 3).timestamp())

    # Unchanged files: the index answers (a marker put in it shows in the results).
    _write_index(acme, {"idx.certcli.test": {**entry, "domains": ["from.the.index"]}})
    (result,) = ok(acme("renew", "--json")).json()["results"]
    assert (result["action"], result["domains"]) == ("not_due", ["from.the.index"])

    # Past its `until`: the lineage is read again.
    _write_index(acme, {"idx.certcli.test": {**entry, "domains": ["x"], "until": 0}})
    (result,) = ok(acme("renew", "--json")).json()["results"]
    assert (result["action"], result["domains"]) == ("not_due", ["idx.certcli.test"])

    # lineage.toml changed by hand (a name added): the index is not trusted; it is renewed.
    _write_index(acme, {"idx.certcli.test": {**entry, "until": 4e9}})
    _edit_lineage(acme, "idx.certcli.test", domains=["idx.certcli.test", "more.certcli.test"])
    (result,) = ok(acme("renew", "--json")).json()["results"]
    assert result["action"] == "renewed" and result["reason"].startswith("not yet covered")
    assert (
        "idx.certcli.test" not in _index(acme)
        or _index(acme)["idx.certcli.test"]["stamp"] != entry["stamp"]
    )


def test_a_damaged_index_is_ignored(acme: Certcli, lab: Lab) -> None:
    _issue(acme, lab, "idx2.certcli.test")
    for text in ("{", "[]", '{"format": 1, "lineages": {"idx2.certcli.test": 7}}'):
        (acme.config_dir / "renew-index.json").write_text(text)
        (result,) = ok(acme("renew", "--json")).json()["results"]
        assert (result["action"], result["domains"]) == ("not_due", ["idx2.certcli.test"])
