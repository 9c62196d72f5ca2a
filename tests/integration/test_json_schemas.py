"""Real `--json` output of every command, validated against docs/schemas/: stdout is exactly
one JSON document, also when the command reports a failure, and messages go to stderr.

One store is shared by the whole module and walked through a scenario once (the
`scenario` fixture): two ACME lineages (one over HTTP-01, one whose DNS-01 delegation is
missing), one uploaded and one waiting for its certificate. It costs three certificates.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from certcli.storage.files import Store
from tests.conftest import Certcli, Run
from tests.jsonschemas import COMMAND_SCHEMAS, load_schema, problems
from tests.lab import DELEGATION_ZONE, SITE_ZONE, Lab
from tests.lab.localca import LocalCA
from tests.lab.postgres import Postgres

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Case:
    command: str  # a key of COMMAND_SCHEMAS
    code: int  # the exit code the run must end with
    error: bool = False  # an error line on stderr (reports like dns check let the code speak)


# Every run of the scenario, in order, and how it must end.
CASES: dict[str, Case] = {
    "config set": Case("config set", 0),
    "config get": Case("config get", 0),
    "dns check, missing": Case("dns check", 17),
    "account register": Case("account register", 0),
    "issue": Case("issue", 0),
    "dns check, persist": Case("dns check", 17),
    "issue, dns not ready": Case("issue", 17, error=True),
    "san add, dns not ready": Case("san add", 17, error=True),
    "csr to stdout": Case("csr", 0),
    "csr to a file": Case("csr", 0),
    "upload": Case("upload", 0),
    "upload again": Case("upload", 0),
    "san add": Case("san add", 1, error=True),
    "san list": Case("san list", 0),
    "renew, one fails": Case("renew", 1, error=True),
    "renew, deploy again": Case("renew", 0),
    "renew, not due": Case("renew", 0),
    "renew, store locked": Case("renew", 0),
    "san remove": Case("san remove", 0),
    "status": Case("status", 0),
    "status NAME": Case("status", 0),
    "status --fail-on": Case("status", 1),
    "download": Case("download", 0),
    "account show": Case("account show", 0),
    "account update": Case("account update", 0),
    "account rollover": Case("account rollover", 0),
    "revoke": Case("revoke", 0),
    "delete": Case("delete", 0),
    "account deactivate": Case("account deactivate", 0),
    # a real certbot directory is imported in test_import_certbot.py, checked by this schema
    "import certbot, empty": Case("import certbot", 0),
    "store migrate": Case("store migrate", 0),
    "store copy": Case("store copy", 0),
    "sync": Case("sync", 0),
    "status, shared store": Case("status", 0),
}


@dataclass
class Scenario:
    http: str  # issued over HTTP-01, renewed, revoked
    dns: str  # DNS-01 with no delegation: never issued, then deleted
    custom: str  # csr, then upload
    pending: str  # csr only
    runs: dict[str, Run]

    def doc(self, label: str) -> Any:
        return json.loads(self.runs[label].stdout)


@pytest.fixture(scope="module")
def scenario(
    lab: Lab, ca: LocalCA, postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Scenario:
    home = tmp_path_factory.mktemp("schemas")
    certcli = Certcli(home / "config", home).point_at(lab)
    certcli.config_dir.mkdir()
    config = certcli.config_dir / "config.toml"
    config.write_text(lab.dns_config(f"t-{secrets.token_hex(4)}.{DELEGATION_ZONE}"))
    config.chmod(0o600)
    tag = secrets.token_hex(3)
    s = Scenario(
        http=f"h{tag}.{SITE_ZONE}",
        dns=f"d{tag}.{SITE_ZONE}",
        custom="custom.example.com",
        pending="pending.example.com",
        runs={},
    )

    def run(label: str, *args: str | Path, env: dict[str, str] | None = None) -> None:
        assert label in CASES and label not in s.runs, label
        s.runs[label] = certcli(*args, "--json", env=env)

    run("config set", "config", "set", "renewal.parallel", "2")
    run("config get", "config", "get", "dns.resolvers")
    run("dns check, missing", "dns", "check", s.dns)
    run("account register", "account", "register", "--agree-tos")
    run("issue", "issue", s.http, "--webroot", lab.webroot, "--agree-tos")
    persist = {"CERTCLI_DNS_PERSIST_ISSUER": "a2c.test"}  # the account exists now
    run("dns check, persist", "dns", "check", "--challenge", "dns-persist-01", "--publish", s.dns,
        env=persist)  # fmt: skip
    run("issue, dns not ready", "issue", s.dns, "--dns", "--agree-tos")
    run("san add, dns not ready", "san", "add", s.dns, f"www.{s.dns}")
    run("csr to stdout", "csr", s.pending)
    run("csr to a file", "csr", s.custom, "--out", "custom.csr")
    issued = ca.sign_csr((home / "custom.csr").read_bytes(), days=90)
    (home / "cert.pem").write_bytes(issued.cert_pem)
    (home / "chain.pem").write_bytes(issued.chain_pem)
    run("upload", "upload", s.custom, "--cert", "cert.pem", "--chain", "chain.pem")
    key = certcli.config_dir / "certs" / s.custom / "live" / "privkey.pem"
    run("upload again", "upload", s.custom, "--cert", "cert.pem", "--key", key)
    # re-issued at once; a deploy hook that fails is a problem, not a failure of the order
    failing_hook = {"CERTCLI_HOOKS_DEPLOY": "echo no >&2; exit 3"}
    run("san add", "san", "add", s.http, f"www.{s.http}", env=failing_hook)
    run("san list", "san", "list", s.http)
    run("renew, one fails", "renew", "--force", env=failing_hook)
    run("renew, deploy again", "renew", s.http)  # the hook that failed runs again (none now)
    run("renew, not due", "renew", s.http)
    with Store(certcli.config_dir).lock_store(wait=0):
        run("renew, store locked", "renew")
    run("san remove", "san", "remove", s.http, f"www.{s.http}")
    run("status", "status")
    run("status NAME", "status", s.dns)
    run("status --fail-on", "status", "--fail-on", "any")
    run("download", "download", s.http, "--what", "bundle", "--include-key", "--out", "b.pem")
    run("account show", "account", "show")
    run("account update", "account", "update", "--email", "ops@certcli.test")
    run("account rollover", "account", "rollover")
    run("revoke", "revoke", s.http, "--reason", "1")
    run("delete", "delete", s.dns, "--yes")
    run("account deactivate", "account", "deactivate", "--yes")
    (home / "letsencrypt" / "renewal").mkdir(parents=True)
    run("import certbot, empty", "import", "certbot", home / "letsencrypt", "--dry-run")
    _drop_schema(postgres)  # the session's database: other tests' rows would conflict
    run("store migrate", "store", "migrate", "--url", postgres.url, env=postgres.env())
    run("store copy", "store", "copy", "--to", postgres.url,
        env={**postgres.env(), "CERTCLI_PASSPHRASE": "scenario"})  # fmt: skip
    # the store just copied, as a host of it sees it
    shared = {**postgres.env(), "CERTCLI_PASSPHRASE": "scenario", "CERTCLI_STORE_URL": postgres.url}
    run("sync", "sync", env=shared)
    run("status, shared store", "status", env=shared)
    return s


def _drop_schema(postgres: Postgres) -> None:
    import psycopg

    with psycopg.connect(postgres.url, password=postgres.password) as connection:
        connection.execute("DROP SCHEMA IF EXISTS certcli CASCADE")


def test_the_scenario_covers_every_command() -> None:
    assert {case.command for case in CASES.values()} == set(COMMAND_SCHEMAS)


@pytest.mark.parametrize("label", list(CASES))
def test_stdout_is_one_document_that_matches_the_schema(scenario: Scenario, label: str) -> None:
    case, run = CASES[label], scenario.runs[label]
    assert run.code == case.code, run.stderr
    assert run.stdout.endswith("}\n"), run.stdout
    document = json.loads(run.stdout)  # exactly one document: json.loads refuses extra data
    assert isinstance(document, dict)
    assert problems(case.command, document) == []
    assert ("certcli: error:" in run.stderr) == case.error, run.stderr
    # the schema is not vacuous: without its first required field the document fails
    first = load_schema(COMMAND_SCHEMAS[case.command])["required"][0]
    assert problems(case.command, {k: v for k, v in document.items() if k != first})


def test_issue_and_its_failure(scenario: Scenario) -> None:
    (issued,) = scenario.doc("issue")["results"]
    assert issued["action"] == "issued" and issued["version"] == 1
    assert issued["domains"] == [scenario.http]
    (failed,) = scenario.doc("issue, dns not ready")["results"]
    assert failed["action"] == "failed" and failed["error_kind"] == "dns_not_ready"
    assert [(s["name"], s["dns_status"]) for s in failed["sans"]] == [(scenario.dns, "missing")]
    assert "DNS is not ready" in scenario.runs["issue, dns not ready"].stderr
    # the records to create are for a terminal; with --json they are in "sans" only
    assert "IN CNAME" not in scenario.runs["issue, dns not ready"].stdout


def test_dns_check_of_a_persist_record(scenario: Scenario) -> None:
    document = scenario.doc("dns check, persist")
    (san,) = document["sans"]
    assert (san["dns_status"], san["challenge_name"]) == (
        "missing",
        f"_validation-persist.{scenario.dns}",
    )
    assert san["record"].startswith(f'_validation-persist.{scenario.dns}. 300 IN TXT "a2c.test; ')
    assert document["published"] == [] and len(document["delegate"]) == 1


def test_renew_reports_every_lineage_and_the_problems(scenario: Scenario) -> None:
    document = scenario.doc("renew, one fails")
    actions = {r["name"]: r["action"] for r in document["results"]}
    assert actions == {
        scenario.http: "renewed",
        scenario.dns: "failed",
        scenario.custom: "skipped",
        scenario.pending: "skipped",
    }
    renewed = next(r for r in document["results"] if r["action"] == "renewed")
    assert renewed["version"] == 3 and renewed["reason"] == "forced"
    assert len(renewed["problems"]) == 1 and "deploy hook" in renewed["problems"][0]
    assert document["problems"] == renewed["problems"]
    (deployed,) = scenario.doc("renew, deploy again")["results"]
    assert (deployed["action"], deployed["deploy_error"]) == ("deployed", None)
    assert deployed["version"] == renewed["version"]
    (not_due,) = scenario.doc("renew, not due")["results"]
    assert not_due["action"] == "not_due" and not_due["serial"] == renewed["serial"]
    assert scenario.doc("renew, store locked") == {"results": [], "problems": []}
    assert "another run is at work" in scenario.runs["renew, store locked"].stderr


def test_san_changes(scenario: Scenario) -> None:
    waiting = scenario.doc("san add, dns not ready")
    assert waiting["added"] == [f"www.{scenario.dns}"]
    assert waiting["result"]["action"] == "failed"
    added = scenario.doc("san add")
    assert added["added"] == [f"www.{scenario.http}"] and added["covered"] == []
    result = added["result"]
    assert result["action"] == "issued" and result["version"] == 2
    assert result["domains"] == [scenario.http, f"www.{scenario.http}"]
    assert len(result["problems"]) == 1 and "deploy hook" in result["problems"][0]
    assert result["problems"][0] in scenario.runs["san add"].stderr
    assert [(s["name"], s["ssl_status"]) for s in scenario.doc("san list")["sans"]] == [
        (scenario.http, "covered"),
        (f"www.{scenario.http}", "covered"),
    ]
    removed = scenario.doc("san remove")
    assert removed["removed"] == [f"www.{scenario.http}"]
    assert removed["unchanged"] == [scenario.http]


def test_status_of_every_kind_of_lineage(scenario: Scenario) -> None:
    lineages = {entry["name"]: entry for entry in scenario.doc("status")["lineages"]}
    assert {name: entry["status"] for name, entry in lineages.items()} == {
        scenario.http: "active",
        scenario.dns: "dns_missing",
        scenario.custom: "active",
        scenario.pending: "pending",
    }
    assert lineages[scenario.custom]["mode"] == "custom"
    (dns,) = scenario.doc("status NAME")["lineages"]
    assert dns == lineages[scenario.dns]
    assert dns["not_after"] is None and dns["version"] is None  # never issued
    assert scenario.doc("status --fail-on") == scenario.doc("status")


def test_self_managed(scenario: Scenario) -> None:
    to_stdout = scenario.doc("csr to stdout")
    assert to_stdout["csr_path"] is None and "PRIVATE" not in scenario.runs["csr to stdout"].stdout
    assert "certcli upload" in scenario.runs["csr to stdout"].stderr  # the next step: stderr
    assert scenario.doc("csr to a file")["csr_path"] == "custom.csr"
    first, again = scenario.doc("upload"), scenario.doc("upload again")
    assert (first["changed"], first["version"], first["completed_csr"]) == (True, 1, True)
    assert (again["changed"], again["version"]) == (False, None)
    assert scenario.doc("download")["mode"] == "0600"


def test_account_config_revoke_delete(scenario: Scenario, lab: Lab) -> None:
    shown = scenario.doc("account show")
    assert scenario.doc("account update")["contact"] == ["mailto:ops@certcli.test"]
    assert scenario.doc("account rollover")["uri"] == shown["uri"]
    assert scenario.doc("account rollover")["persist_records_valid"] is True
    assert scenario.doc("account deactivate")["persist_records_valid"] is False
    assert scenario.doc("account register")["created_now"] is True
    assert scenario.doc("account register")["uri"] == shown["uri"]
    assert "key" not in {k.lower() for k in shown}
    assert scenario.doc("config set") == {"key": "renewal.parallel", "value": 2}
    assert scenario.doc("config get") == {"key": "dns.resolvers", "value": [lab.dns_server]}
    revoked = scenario.doc("revoke")
    assert revoked["reason"] == "keyCompromise" and revoked["revoked"] is True
    assert scenario.doc("delete") == {"name": scenario.dns, "deleted": True}


def test_store_copy_of_the_scenario(scenario: Scenario) -> None:
    copied = scenario.doc("store copy")
    # http, custom and pending (no version yet) stay; dns was deleted; the account retired
    assert {k: copied[k] for k in ("lineages", "accounts", "verified", "unchanged")} == {
        "lineages": 3,
        "accounts": 0,
        "verified": True,
        "unchanged": False,
    }
    assert copied["versions"] >= 4  # http's issue, san add, renewals; custom's two uploads


def test_a_command_stopped_early_prints_nothing_on_stdout(certcli: Certcli) -> None:
    for args in (["status", "nothing.example"], ["delete", "nothing.example"], ["san", "list"]):
        run = certcli(*args, "--json")
        assert run.code in (2, 3), run
        assert run.stdout == "" and "certcli: error:" in run.stderr


def test_toml_dates_in_config(certcli: Certcli) -> None:
    run = certcli("config", "set", "notes.since", "1979-05-27", "--json")
    assert run.code == 0, run.stderr
    assert json.loads(run.stdout) == {"key": "notes.since", "value": "1979-05-27"}
    assert problems("config set", json.loads(run.stdout)) == []
    run = certcli("config", "get", "notes", "--json")
    assert json.loads(run.stdout) == {"key": "notes", "value": {"since": "1979-05-27"}}
    assert certcli("config", "get", "notes.since").stdout == "1979-05-27\n"


def test_a_shared_store_says_what_each_host_serves(scenario: Scenario) -> None:
    synced = scenario.doc("sync")
    assert synced["changes"] and {c["action"] for c in synced["changes"]} == {"updated"}
    doc = scenario.doc("status, shared store")
    (host,) = doc["hosts"]
    assert host["host"] == synced["host"]
    assert host["serving"] == {x["name"]: x["version"] for x in doc["lineages"] if x["version"]}
