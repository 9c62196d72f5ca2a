"""DNS-01 by CNAME delegation through the real executable: the lab's BIND holds the site
zone (certcli.test) and the delegation zone (acme-delegation.test); certcli writes TXT
values at its target by RFC 2136 with a TSIG key, and Pebble validates by asking BIND,
which follows the CNAME."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography import x509

from tests.conftest import CERTCLI, Certcli, live_dir, ok, version_numbers
from tests.lab import ADMIN_KEY_NAME, DELEGATION_ZONE, SITE_ZONE, TSIG_ALGORITHM, Lab, free_port

pytestmark = pytest.mark.integration


def _name() -> str:
    return f"d{secrets.token_hex(3)}.{SITE_ZONE}"


def _orders(lab: Lab) -> int:
    return sum(1 for r in lab.acme_requests() if r == "POST /order-plz")


def _sans(certcli: Certcli, name: str) -> set[str]:
    pem = (live_dir(certcli, name) / "cert.pem").read_bytes()
    ext = x509.load_pem_x509_certificate(pem).extensions
    return set(
        ext.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    )


def test_apex_and_wildcard_through_delegation(dns: Certcli, lab: Lab, target: str) -> None:
    domain = _name()
    lab.delegate(domain, target)
    run = ok(dns("issue", domain, "--wildcard", "--agree-tos"))
    assert f"{domain}: CNAME Check" in run.stderr
    assert _sans(dns, domain) == {domain, f"*.{domain}"}
    assert lab.txt(target) == [], "certcli removes the values it added"
    (entry,) = ok(dns("status", domain, "--json")).json()["lineages"]
    assert entry["status"] == "active"
    assert {s["name"]: s["dns_status"] for s in entry["sans"]} == {
        domain: "valid",
        f"*.{domain}": "valid",
    }
    assert entry["sans"][0]["expected_target"] == target


def test_missing_delegation_orders_nothing_and_says_what_to_create(
    dns: Certcli, lab: Lab, target: str
) -> None:
    domain = _name()
    before = _orders(lab)
    run = dns("issue", domain, "--dns", "--agree-tos")
    assert run.code == 17, run.stderr
    assert f"_acme-challenge.{domain}. 300 IN CNAME {target}." in run.stdout
    assert "Missing" in run.stdout
    # the error line alone says what to create
    assert run.stderr.strip().splitlines()[-1] == (
        f"certcli: error: DNS is not ready for {domain} (missing); create the record "
        f"_acme-challenge.{domain}. 300 IN CNAME {target}., then `certcli renew` issues it"
    )
    assert _orders(lab) == before
    (entry,) = ok(dns("status", "--json")).json()["lineages"]
    assert entry["status"] == "dns_missing"
    assert entry["sans"][0]["dns_status"] == "missing"


def test_each_dns_status_with_dns_check(dns: Certcli, lab: Lab, target: str) -> None:
    valid, missing, wrong, duplicate, chained = (_name() for _ in range(5))
    lab.delegate(valid, target)
    lab.delegate(wrong, f"elsewhere.{DELEGATION_ZONE}")
    lab.update(
        SITE_ZONE,
        ("replace", f"_acme-challenge.{duplicate}", "TXT", ['"left-over"']),
        ("replace", duplicate, "A", ["127.0.0.1"]),
        ("replace", f"_acme-challenge.{chained}", "CNAME", [f"hop-{chained}."]),
        ("replace", chained, "A", ["127.0.0.1"]),
        ("replace", f"hop-{chained}", "CNAME", [f"{target.upper()}."]),  # case never matters
    )
    run = dns("dns", "check", valid, missing, wrong, duplicate, chained, "--json")
    assert run.code == 17
    sans = {s["name"]: s for s in run.json()["sans"]}
    assert {n: s["dns_status"] for n, s in sans.items()} == {
        valid: "valid",
        missing: "missing",
        wrong: "wrong",
        duplicate: "duplicate",
        chained: "valid",
    }
    assert sans[wrong]["found"] == f"elsewhere.{DELEGATION_ZONE}"
    assert '"left-over"' in sans[duplicate]["found"]
    assert sans[missing]["challenge_name"] == f"_acme-challenge.{missing}"
    plain = dns("dns", "check", wrong, duplicate)
    assert f"ends at elsewhere.{DELEGATION_ZONE}" in plain.stdout
    assert f"remove the TXT record at _acme-challenge.{duplicate}" in plain.stdout
    assert ok(dns("dns", "check", valid, chained)).code == 0
    # a chain of CNAMEs validates for real too
    ok(dns("issue", chained, "--dns", "--agree-tos"))
    assert _sans(dns, chained) == {chained}


def test_a_resolver_that_does_not_answer_is_an_error_not_missing(
    dns: Certcli, lab: Lab, target: str
) -> None:
    domain = _name()
    lab.delegate(domain, target)
    dead = {"CERTCLI_DNS_RESOLVERS": f"127.0.0.1:{free_port()}", "CERTCLI_DNS_QUERY_TIMEOUT": "1"}
    run = dns("dns", "check", domain, "--json", env=dead)
    assert run.code == 17
    (san,) = run.json()["sans"]
    assert san["dns_status"] == "error"
    before = _orders(lab)
    run = dns("issue", domain, "--dns", "--agree-tos", env=dead)
    assert run.code == 17 and "(error)" in run.stderr
    assert _orders(lab) == before


def test_a_resolver_failure_names_the_resolver_and_the_setting_once(
    dns: Certcli, lab: Lab, target: str
) -> None:
    domain = _name()
    port = free_port()
    dead = {"CERTCLI_DNS_RESOLVERS": f"127.0.0.1:{port}", "CERTCLI_DNS_QUERY_TIMEOUT": "1"}
    run = dns("dns", "check", domain, f"*.{domain}", env=dead)
    assert run.code == 17
    lines = run.stdout.splitlines()
    assert [line for line in lines if "[dns] resolvers" in line] == [
        "The lookup failed (which says nothing of the records): check that [dns] resolvers "
        "answer (config.toml or CERTCLI_DNS_RESOLVERS; unset, the system's):"
    ]
    # one line for the apex and its wildcard, which share the challenge name
    assert lines.count(f"  _acme-challenge.{domain}: no answer from 127.0.0.1:{port}") == 1
    found = {
        s["name"]: s["found"]
        for s in dns("dns", "check", domain, "--json", env=dead).json()["sans"]
    }
    assert found == {domain: f"no answer from 127.0.0.1:{port}"}
    # issue shows the same table and line before its error
    run = dns("issue", domain, "--wildcard", "--agree-tos", env=dead)
    assert run.code == 17
    assert f"  _acme-challenge.{domain}: no answer from 127.0.0.1:{port}" in run.stdout.splitlines()


def test_a_note_for_an_apex_and_its_wildcard_is_shown_once(dns: Certcli, lab: Lab) -> None:
    duplicate, wrong = _name(), _name()
    lab.update(
        SITE_ZONE,
        ("replace", f"_acme-challenge.{duplicate}", "TXT", ['"left-over"']),
        ("replace", duplicate, "A", ["127.0.0.1"]),
    )
    lab.delegate(wrong, f"elsewhere.{DELEGATION_ZONE}")
    run = dns("dns", "check", duplicate, f"*.{duplicate}", wrong, f"*.{wrong}")
    assert run.code == 17
    lines = run.stdout.splitlines()
    assert (
        sum(f"remove the TXT record at _acme-challenge.{duplicate}" in line for line in lines) == 1
    )
    assert sum(f"replacing the CNAME of _acme-challenge.{wrong}" in line for line in lines) == 1
    assert sum(line.startswith(f"  _acme-challenge.{wrong}. 300 IN CNAME") for line in lines) == 1


def test_a_wrong_tsig_secret_is_a_clear_error_and_nothing_is_ordered(
    dns: Certcli, lab: Lab, target: str
) -> None:
    domain = _name()
    lab.delegate(domain, target)
    wrong = {"CERTCLI_DNS_RFC2136_TSIG_SECRET": "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA=="}
    before = _orders(lab)
    run = dns("issue", domain, "--dns", "--agree-tos", env=wrong)
    assert run.code == 18, run.stderr
    line = run.stderr.strip().splitlines()[-1]
    assert "rejected TSIG key 'certcli-acme'" in line and "tsig_secret" in line
    assert _orders(lab) == before
    (entry,) = ok(dns("status", "--json")).json()["lineages"]
    assert entry["status"] == "failed" and "TSIG" in entry["error"]


def test_only_its_own_values_are_removed(dns: Certcli, lab: Lab, target: str) -> None:
    domain = _name()
    lab.delegate(domain, target)
    lab.update(DELEGATION_ZONE, ("replace", target, "TXT", ['"another-lineage"']))
    ok(dns("issue", domain, "--dns", "--agree-tos"))
    assert lab.txt(target) == ["another-lineage"]


# The real `certcli` in a child that stops for good once its TXT value is at the target (as
# a run killed there, or an add whose answer never came but that landed), so that the test
# can kill -9 it.
STALL_AFTER_ADD = textwrap.dedent(
    """
    import sys, time
    from certcli.challenges import dns01

    def wait(self, challenges):
        print("stalled", flush=True)
        time.sleep(3600)

    dns01.DelegationSolver.wait = wait
    from certcli.cli.main import run
    sys.exit(run(sys.argv[1:]))
    """
)


def _journal(certcli: Certcli) -> list[Path]:
    directory = certcli.config_dir / "leftovers"
    return sorted(directory.iterdir()) if directory.exists() else []


def test_the_txt_value_of_a_killed_run_is_removed_by_the_next_run(
    dns: Certcli, lab: Lab, target: str
) -> None:
    import signal

    domain = _name()
    lab.delegate(domain, target)
    child = subprocess.Popen(
        [sys.executable, "-c", STALL_AFTER_ADD, "issue", domain, "--dns", "--agree-tos"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=dns.environ(),
        cwd=dns.cwd,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "stalled\n"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    (left,) = lab.txt(target)  # what the killed run added stays at the target
    (record,) = _journal(dns)
    assert record.name.startswith("dns-01-") and left in record.read_text()

    ok(dns("issue", domain, "--dns", "--agree-tos"))
    assert lab.txt(target) == [], "the next run removed the killed run's value, then its own"
    assert _journal(dns) == []


def test_only_ended_runs_leftovers_are_removed(dns: Certcli, lab: Lab, target: str) -> None:
    """Recorded and unlocked (a run that ended): removed. Locked (a run still at work): kept,
    as is a value nobody recorded (another installation's)."""
    import fcntl
    import json

    domain = _name()
    lab.delegate(domain, target)
    lab.update(
        DELEGATION_ZONE,
        ("replace", target, "TXT", ['"timed-out-add"', '"still-in-use"', '"not-recorded"']),
    )
    journal = dns.config_dir / "leftovers"
    journal.mkdir(mode=0o700)

    def record(value: str) -> Path:
        path = journal / f"dns-01-{value}.json"
        entry = {"provider": "rfc2136", "target": target, "value": value, "domain": domain}
        path.write_text(json.dumps(entry))
        return path

    ended = record("timed-out-add")
    elsewhere = journal / "dns-01-other-target.json"
    elsewhere.write_text(json.dumps({"provider": "rfc2136", "target": "x.example", "value": "v"}))
    busy = record("still-in-use")
    with open(busy) as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as the run that made it holds it
        ok(dns("issue", domain, "--dns", "--agree-tos"))
    assert lab.txt(target) == ["not-recorded", "still-in-use"]
    assert not ended.exists()
    assert busy.exists() and elsewhere.exists()


def test_two_lineages_through_one_target_at_the_same_time(
    dns: Certcli, lab: Lab, target: str
) -> None:
    first, second = _name(), _name()
    for domain in (first, second):
        lab.delegate(domain, target)
    env = {**os.environ, **dns.env, "CERTCLI_CONFIG_DIR": str(dns.config_dir)}
    procs = [
        subprocess.Popen(
            [str(CERTCLI), "issue", d, "--dns", "--agree-tos"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for d in (first, second)
    ]
    results = [(p.wait(), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    assert lab.txt(target) == []


def test_san_add_reissues_when_the_dns_is_valid(dns: Certcli, lab: Lab, target: str) -> None:
    domain = _name()
    lab.delegate(domain, target)
    ok(dns("issue", domain, "--dns", "--agree-tos"))
    extra = f"www.{domain}"
    lab.delegate(extra, target)
    run = ok(dns("san", "add", domain, extra))
    assert f"added {extra}" in run.stderr
    assert _sans(dns, domain) == {domain, extra}
    assert version_numbers(dns, domain) == [1, 2]
    listed = ok(dns("san", "list", domain, "--json")).json()["sans"]
    assert [(s["name"], s["ssl_status"], s["dns_status"]) for s in listed] == [
        (domain, "covered", "valid"),
        (extra, "covered", "valid"),
    ]


def test_san_add_waits_for_dns_then_renew_picks_it_up(dns: Certcli, lab: Lab, target: str) -> None:
    domain = _name()
    lab.delegate(domain, target)
    ok(dns("issue", domain, "--dns", "--agree-tos"))
    extra = f"api.{domain}"
    run = dns("san", "add", domain, extra)
    assert run.code == 17
    assert f"_acme-challenge.{extra}. 300 IN CNAME {target}." in run.stdout
    (entry,) = ok(dns("status", "--json")).json()["lineages"]
    assert entry["status"] == "dns_missing"
    assert entry["domains"] == [domain, extra]
    assert _sans(dns, domain) == {domain}  # the old certificate is still served

    assert dns("renew").code == 1  # still missing: renew says so
    lab.delegate(extra, target)
    run = ok(dns("renew"))
    assert f"Renewed {domain}" in run.stdout
    assert _sans(dns, domain) == {domain, extra}
    assert ok(dns("status", "--json")).json()["lineages"][0]["status"] == "active"


def test_a_san_covered_by_the_wildcard_needs_no_certificate(
    dns: Certcli, lab: Lab, target: str
) -> None:
    domain = _name()
    lab.delegate(domain, target)
    ok(dns("issue", domain, "--wildcard", "--agree-tos"))
    before = _orders(lab)
    run = ok(dns("san", "add", domain, f"shop.{domain}"))
    assert "covered by the live certificate" in run.stderr
    assert _orders(lab) == before
    ok(dns("renew", "--force"))  # the order leaves the covered name out: no delegation needed
    assert _sans(dns, domain) == {domain, f"*.{domain}"}


def test_status_check_dns_sees_a_change_at_once(dns: Certcli, lab: Lab, target: str) -> None:
    domain = _name()
    lab.delegate(domain, target)
    ok(dns("issue", domain, "--dns", "--agree-tos"))
    lab.delegate(domain, f"moved.{DELEGATION_ZONE}")
    assert ok(dns("status", "--json")).json()["lineages"][0]["status"] == "active"  # cached
    entry = ok(dns("status", domain, "--check-dns", "--json")).json()["lineages"][0]
    assert entry["status"] == "dns_wrong"
    assert entry["sans"][0]["found"] == f"moved.{DELEGATION_ZONE}"
    assert dns("status", "--check-dns", "--fail-on", "dns").code == 1


HOOK = textwrap.dedent(
    """
    import json, os, sys
    import dns.query, dns.tsigkeyring, dns.update
    action, log, port, key, algorithm, secret, zone = sys.argv[1:8]
    name, value = os.environ["CERTCLI_DNS_NAME"], os.environ["CERTCLI_DNS_VALUE"]
    with open(log, "a") as f:
        f.write(json.dumps([action, name, value, os.environ["CERTCLI_DOMAIN"]]) + "\\n")
    keyring = dns.tsigkeyring.from_text({key: (algorithm, secret)})
    update = dns.update.UpdateMessage(zone, keyring=keyring)
    if action == "auth":
        update.add(name + ".", 60, "TXT", '"' + value + '"')
    else:
        update.delete(name + ".", "TXT", '"' + value + '"')
    sys.exit(dns.query.tcp(update, "127.0.0.1", port=int(port), timeout=5).rcode())
    """
)


def test_the_hook_provider_runs_real_commands(
    dns: Certcli, lab: Lab, target: str, tmp_path: Path
) -> None:
    script, log = tmp_path / "hook.py", tmp_path / "hook.log"
    script.write_text(HOOK)
    base = (
        f"{sys.executable} {script} %s {log} {lab.dns_port} "
        f"{ADMIN_KEY_NAME} {TSIG_ALGORITHM} {lab.admin_tsig_secret} {DELEGATION_ZONE}"
    )
    (dns.config_dir / "config.toml").write_text(
        lab.dns_config(target).replace('provider = "rfc2136"', 'provider = "hook"')
        + f'[dns.hook]\nauth = "{base % "auth"}"\ncleanup = "{base % "cleanup"}"\n'
    )
    domain = _name()
    lab.delegate(domain, target)
    ok(dns("issue", domain, "--wildcard", "--agree-tos"))
    import json

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(c[0] for c in calls) == ["auth", "auth", "cleanup", "cleanup"]
    assert {c[1] for c in calls} == {target}
    assert {c[3] for c in calls} == {domain, f"*.{domain}"}
    assert lab.txt(target) == []


def test_a_secret_readable_by_others_is_warned_about(dns: Certcli) -> None:
    (dns.config_dir / "config.toml").chmod(0o644)
    run = dns("dns", "check", f"x.{SITE_ZONE}")
    assert "(dns.rfc2136.tsig_secret) and is readable by others (mode 0644)" in run.stderr


def test_each_with_wildcard_keeps_a_domain_and_its_wildcard_together(
    dns: Certcli, lab: Lab, target: str
) -> None:
    first, second = _name(), _name()
    for domain in (first, second):
        lab.delegate(domain, target)
    ok(dns("issue", first, second, "--each", "--wildcard", "--agree-tos"))
    assert _sans(dns, first) == {first, f"*.{first}"}
    assert _sans(dns, second) == {second, f"*.{second}"}


def test_a_left_over_txt_with_a_line_break_is_shown_escaped(dns: Certcli, lab: Lab) -> None:
    """What a zone holds is shown in zone-file escapes: a TXT value at `_acme-challenge`
    with a line break and a terminal escape cannot add a line to `dns check`'s output."""
    name = _name()
    lab.update(
        SITE_ZONE,
        ("replace", f"_acme-challenge.{name}", "TXT", ['"left\\010  all is well\\027[2J"']),
        ("replace", name, "A", ["127.0.0.1"]),
    )
    run = dns("dns", "check", name)
    assert run.code == 17, run.stderr
    lines = run.stdout.splitlines()
    shown = 'TXT "left\\010  all is well\\027[2J"'
    assert f"  ; and remove the TXT record at _acme-challenge.{name}: {shown}" in lines
    assert not any(line.startswith("  all is well") for line in lines)
    assert "\x1b" not in run.stdout
