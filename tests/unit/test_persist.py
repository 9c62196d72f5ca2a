"""dns-persist-01: the record's grammar, how it is judged for one CA and account, the record
certcli prints, and the method's settings and check (DNS itself: tests/integration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certcli import persist
from certcli.challenges import METHODS, dns_persist01
from certcli.challenges.dns_persist01 import PersistSettings, PersistSolver
from certcli.config import Source, checked
from certcli.dnscheck import Diagnosis, DnsStatus
from certcli.errors import DnsNotReadyError, UsageError
from certcli.models import Account, Phase
from certcli.persist import Expected, Malformed, parse, verdict
from certcli.storage.files import Store
from certcli.x509 import jwk_thumbprint

ME = "https://ca.test/acct/1"
CA = Expected(("a2c.test",), ME)
NOW = 1_800_000_000


def _verdict(*values: str, wildcard: bool = False, want: Expected = CA) -> tuple[bool, Any]:
    return verdict(values, want, wildcard, NOW)


def test_a_record_is_an_issuer_then_tag_value_parameters() -> None:
    record = parse(" A2C.test ;accounturi=https://ca.test/acct/1 ; Policy = WILDCARD;x-y=1 ")
    assert record.issuer == "a2c.test"  # issuer names compare without case
    assert record.account_uri == ME and record.wildcard and record.persist_until is None
    assert record.parameters["x-y"] == "1"  # unknown tags are kept, and ignored
    assert parse(f"a2c.test; accounturi={ME}; persistUntil=1798761600").persist_until == (
        1798761600
    )
    assert parse(f"a2c.test;\taccounturi={ME}; PERSISTUNTIL=5").persist_until == 5


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no issuer domain name"),
        (f"; accounturi={ME}", "no issuer domain name"),
        (f"a2c.test.; accounturi={ME}", "'a2c.test.' is not an issuer domain name"),
        (f"a2c_test; accounturi={ME}", "'a2c_test' is not an issuer domain name"),
        ("a2c.test", "no accounturi parameter"),
        ("a2c.test; policy=wildcard", "no accounturi parameter"),
        (f"a2c.test; accounturi={ME};", "an empty parameter"),
        (f"a2c.test; accounturi={ME};; policy=wildcard", "an empty parameter"),
        (f"a2c.test; accounturi {ME}", "is not a tag=value parameter"),
        (f"a2c.test; accounturi={ME} policy=wildcard", "is not a tag=value parameter"),
        (f"a2c.test; accounturi={ME}; AccountURI={ME}", "the parameter accounturi is given twice"),
        (f"a2c.test; accounturi={ME}; persistUntil=soon", "persistUntil=soon is not a number"),
        (f"a2c.test; accounturi={ME}; persistUntil=-1", "persistUntil=-1 is not a number"),
        (f"a2c.test; accounturi={ME}; persistUntil=²", "is not a tag=value parameter"),
    ],
)
def test_a_record_that_breaks_the_grammar_says_how(text: str, why: str) -> None:
    with pytest.raises(Malformed, match=f"^{why}" if why.startswith("'") else why):
        parse(text)
    ok, reason = _verdict(text)
    assert not ok and reason.startswith("malformed: ")


def test_each_reason_a_record_does_not_validate() -> None:
    assert _verdict(f"a2c.test; accounturi={ME}") == (True, None)
    assert _verdict(f"other.ca; accounturi={ME}") == (
        False,
        "issued to another CA (other.ca; this CA is a2c.test)",
    )
    assert _verdict("a2c.test; accounturi=https://ca.test/acct/2") == (
        False,
        "accounturi names another account (https://ca.test/acct/2)",
    )
    assert _verdict(f"a2c.test; accounturi={ME}", wildcard=True) == (
        False,
        "no policy=wildcard, which a wildcard SAN needs",
    )
    assert _verdict(f"a2c.test; accounturi={ME}; policy=wildcard", wildcard=True) == (True, None)
    assert _verdict(f"a2c.test; accounturi={ME}; policy=other", wildcard=True)[0] is False
    assert _verdict(f"a2c.test; accounturi={ME}; persistUntil={NOW - 1}") == (
        False,
        f"expired: persistUntil={NOW - 1} (2027-01-15T07:59:59Z) is past",
    )
    assert _verdict(f"a2c.test; accounturi={ME}; persistUntil={NOW}") == (True, None)
    # the account URL is compared exactly, as the CA does
    assert _verdict(f"a2c.test; accounturi={ME.upper()}")[0] is False


def test_several_records_one_for_us_is_enough_else_the_reason_that_matters_most() -> None:
    theirs, other_account = f"other.ca; accounturi={ME}", "a2c.test; accounturi=https://x/9"
    ours = f"a2c.test; accounturi={ME}"
    assert _verdict(theirs, "garbage", ours) == (True, None)
    assert _verdict(theirs, "bad value", other_account, ours, wildcard=True)[1] == (
        "no policy=wildcard, which a wildcard SAN needs"
    )
    assert _verdict(theirs, "bad value", other_account)[1].startswith("accounturi names another")
    assert _verdict(theirs, "bad value")[1].startswith("malformed: ")
    assert _verdict(theirs)[1].startswith("issued to another CA")
    assert _verdict() == (False, None)


def test_the_hashed_account_uri_of_the_draft() -> None:
    # draft-ietf-acme-dns-persist-02, section 10.2
    thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    prefix, account = "https://ca.example/account-hash/", "https://ca.example/acct/123"
    assert persist.hashed_account_uri(prefix, thumbprint, account, "example.com") == (
        prefix + "sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw"
    )
    assert persist.hashed_account_uri(prefix, thumbprint, account, "*") == (
        prefix + "sha-256/NpDnSwUthQK8zCgFdefYxAdAVPnygMLbs9US6oO-5ug"
    )
    want = persist.expected(["authority.example"], account, "example.com", prefix, thumbprint)
    assert want.account_uri.endswith("/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw")
    every = (
        f"authority.example; accounturi={prefix}sha-256/NpDnSwUthQK8zCgFdefYxAdAVPnygMLbs9US6oO-5ug"
    )
    assert verdict([every], want, False, NOW) == (True, None)  # for every domain: accepted
    assert verdict([f"authority.example; accounturi={account}"], want, False, NOW) == (
        False,
        "accounturi is the account URL itself: this CA asks for its hashed form",
    )
    # another domain's hash names this account for that domain only
    theirs = persist.expected(["authority.example"], account, "other.example", prefix, thumbprint)
    other = f"authority.example; accounturi={theirs.account_uri}"
    assert verdict([other], want, False, NOW)[1].startswith("accounturi names another account")


def test_the_thumbprint_is_rfc7638s() -> None:
    import josepy
    from cryptography.hazmat.primitives import hashes

    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    expected = josepy.b64.b64encode(josepy.JWK.load(pem).thumbprint(hashes.SHA256)).decode()
    assert jwk_thumbprint(pem) == expected


def test_the_record_to_publish_in_zone_file_syntax() -> None:
    assert persist.value(CA) == f"a2c.test; accounturi={ME}"
    assert persist.value(CA, True, 1798761600) == (
        f"a2c.test; accounturi={ME}; policy=wildcard; persistUntil=1798761600"
    )
    assert persist.zone_line("_validation-persist.example.com", persist.value(CA, True)) == (
        f'_validation-persist.example.com. 300 IN TXT "a2c.test; accounturi={ME}; policy=wildcard"'
    )
    long = "a2c.test; accounturi=https://ca.test/" + "x" * 300
    line = persist.zone_line("_validation-persist.example.com", long)
    assert line.count('"') == 4 and line.split(" TXT ")[1] == f'"{long[:255]}" "{long[255:]}"'


def test_the_record_and_what_was_found_never_break_a_line() -> None:
    """DNS data and a CA's words are shown in zone-file escapes: a line break, a terminal
    escape or a quote in a TXT value stays inside its string; a character cut by the
    255-byte split is two escapes, never a UnicodeDecodeError."""
    odd = 'a2c.test; accounturi=x"\n\x1b[2J'
    assert persist.zone_line("_validation-persist.x.test", odd).endswith(
        'TXT "a2c.test; accounturi=x\\"\\010\\027[2J"'
    )
    cut = "a" * 254 + "é"
    assert persist.zone_line("x.test", cut).endswith(f'"{"a" * 254}\\195" "\\169"')

    class Resolver:
        nameservers = ("127.0.0.1",)

        def resolve(self, name: str, rtype: str, raise_on_no_answer: bool = True) -> Any:
            import dns.name
            import dns.rrset

            rrset = dns.rrset.from_text_list(name + ".", 60, "IN", "TXT", [r'"a\010b\027[2J"'])
            return type("Answer", (), {"rrset": rrset, "canonical_name": dns.name.from_text(name)})

    found = dns_persist01.diagnose_one("x.test", _settings(), Resolver(), set())  # type: ignore[arg-type]
    assert found.status is DnsStatus.WRONG
    assert found.found == 'TXT "a\\010b\\027[2J"'
    assert found.found.isprintable() and found.record.isprintable()


def test_the_settings_kinds() -> None:
    def until(text: str) -> int:
        return checked("dns_persist.persist_until", text, Source("--persist-until"))

    assert until("2027-01-01") == until("2027-01-01T00:00:00Z") == 1798761600
    assert until("2027-01-01T02:00:00+02:00") == 1798761600 and until("1798761600") == 1798761600
    assert until("253402300799") == persist.LAST_SECOND  # 9999-12-31T23:59:59Z
    for bad in ("tomorrow", "2027-13-01", "2027-01-01T00:00:00", "253402300800", "9" * 30):
        with pytest.raises(UsageError, match="--persist-until must be a date"):
            until(bad)
    issuers = checked("dns_persist.issuer", "A2C.test, other.example", Source("x"))
    assert issuers == ["a2c.test", "other.example"]
    assert checked("dns_persist.issuer", ["a2c.test"], Source("x")) == ["a2c.test"]
    with pytest.raises(UsageError, match="must be an issuer domain name"):
        checked("dns_persist.issuer", "a2c test", Source("x"))


# -- the method ---------------------------------------------------------------------------

URL = "https://ca.test/dir"


def _store(tmp_path: Path, meta: dict[str, Any] | None = None) -> Store:
    store = Store(tmp_path / "store")
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    store.write_account(Account(URL, ME, (), None, "2026-01-01Z", key))
    if meta is not None:
        store.write_directory(URL, {"newNonce": f"{URL}/nonce", "meta": meta})
    return store


def _get(table: dict[str, Any] | None = None) -> Any:
    table = {"server": URL, **(table or {})}
    return lambda key, default: table.get(key, default)


def test_the_method_as_the_registry_knows_it(tmp_path: Path) -> None:
    method = METHODS["dns-persist-01"]
    assert method is dns_persist01.METHOD
    assert (method.wildcards, method.ip_addresses) == (True, False)
    assert (method.check_phase, method.wait_phase) == (Phase.PERSIST_CHECK, None)
    assert method.secret_keys == ()
    solver = method.solver(_settings(), tmp_path, False, print)
    assert isinstance(solver, PersistSolver) and solver.challenge_type == "dns-persist-01"
    for step in (solver.present, solver.wait, solver.cleanup):
        assert step([]) is None  # no DNS write, ever
    assert method.pinned(_settings()) == {}
    assert "certcli dns check --challenge dns-persist-01" in str(method.hint(_settings()))
    assert method.describe(None) == "dns-persist-01 (a TXT record published once)"
    with pytest.raises(UsageError, match=r"192\.0\.2\.1 is an IP address: it needs HTTP-01"):
        method.refuse(["x.test", "192.0.2.1"], "this order answers", None)
    method.refuse(["x.test", "*.x.test"], "this order answers", None)


def _settings(**changes: Any) -> PersistSettings:
    return PersistSettings(**{"resolvers": [], "query_timeout": 1, "issuers": ("a2c.test",),
                              "account_uri": ME, **changes})  # fmt: skip


def test_settings_name_the_account_and_the_issuer(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as none:
        dns_persist01.METHOD.settings(_get(), Store(tmp_path / "empty"))
    assert none.value.message == (
        f"a dns-persist-01 record names your account at {URL}, and there is none yet"
    )
    assert none.value.hint == "run `certcli account register` first"
    store = _store(tmp_path)
    with pytest.raises(UsageError, match="announces no issuer domain name") as unknown:
        dns_persist01.METHOD.settings(_get(), store)
    assert (
        unknown.value.hint == "set the one it documents: certcli config set dns_persist.issuer NAME"
    )
    found = dns_persist01.METHOD.settings(
        _get({"dns_persist.issuer": ["a2c.test"], "dns.resolvers": ["127.0.0.1:53"]}), store
    )
    assert (found.issuers, found.account_uri, found.hash_prefix) == (("a2c.test",), ME, None)
    assert found.resolvers == [("127.0.0.1", 53)]
    with pytest.raises(UsageError, match="persistUntil 1970-01-01T00:00:05Z is in the past"):
        dns_persist01.METHOD.settings(
            _get({"dns_persist.issuer": ["a2c.test"], "dns_persist.persist_until": 5}), store
        )


def test_the_issuer_names_the_directory_announces(tmp_path: Path) -> None:
    store = _store(tmp_path, {"caaIdentities": ["CA.example"]})
    assert dns_persist01.METHOD.settings(_get(), store).issuers == ("ca.example",)
    store = _store(
        tmp_path,
        {
            "caaIdentities": ["ca.example"],
            "issuerDomainNames": ["persist.example"],
            "accountHashPrefix": "https://ca.test/hash/",
        },
    )
    found = dns_persist01.METHOD.settings(_get(), store)
    assert found.issuers == ("persist.example",) and found.hash_prefix == "https://ca.test/hash/"
    account = store.read_account(URL)
    assert account is not None and found.thumbprint == jwk_thumbprint(account.key_pem)
    assert found.expected("x.test").account_uri.startswith("https://ca.test/hash/sha-256/")
    # the setting wins over what the CA announces
    chosen = dns_persist01.METHOD.settings(_get({"dns_persist.issuer": ["mine.example"]}), store)
    assert chosen.issuers == ("mine.example",)


@pytest.mark.parametrize(
    "announced",
    [
        ["evil.example; policy=wildcard"],  # a parameter smuggled into the record to publish
        ["evil.example\nx. 300 IN TXT y"],  # a second zone-file line
        ["Upper.example"],  # not lowercase
        ["trailing.example."],
        ["x" * 250 + ".com"],  # over 253 octets
        [f"n{i}.example" for i in range(11)],  # over 10
        [],
        "persist.example",  # not a list
        [3],
    ],
)
def test_issuer_names_that_break_the_drafts_rules_are_not_used(
    tmp_path: Path, announced: object
) -> None:
    """A directory's issuerDomainNames that break the draft's rules count as not given (the
    next source is its caaIdentities), and a caaIdentities entry that is no domain name is
    never used: the CA's words would become the record the user publishes."""
    meta = {"issuerDomainNames": announced, "caaIdentities": ["bad; policy=wildcard", "ca.example"]}
    store = _store(tmp_path, meta)
    found = dns_persist01.METHOD.settings(_get(), store)
    assert found.issuers == ("ca.example",)
    assert dns_persist01.wanted_value("x.test", False, found) == f"ca.example; accounturi={ME}"
    store = _store(tmp_path, {"issuerDomainNames": announced, "caaIdentities": ["x\ny"]})
    with pytest.raises(UsageError, match="announces no issuer domain name"):
        dns_persist01.METHOD.settings(_get(), store)


@pytest.mark.parametrize(
    "prefix",
    ["https://ca.test/h; policy=wildcard/", "https://ca.test/h/\n", "https://ca test/", "x" * 2000],
)
def test_an_account_hash_prefix_that_would_change_the_record_is_refused(
    tmp_path: Path, prefix: str
) -> None:
    """The CA's accountHashPrefix starts the accounturi the user publishes: one with a `;`, a
    space or a line break would smuggle a parameter (or a line) into the record."""
    from certcli.errors import AcmeError

    store = _store(tmp_path, {"issuerDomainNames": ["ca.example"], "accountHashPrefix": prefix})
    with pytest.raises(AcmeError) as raised:
        dns_persist01.METHOD.settings(_get(), store)
    assert raised.value.message.startswith("the CA's accountHashPrefix ")
    assert raised.value.message.endswith(" cannot be written in a record")
    assert raised.value.message.isprintable() and len(raised.value.message) < 200


def test_an_account_url_that_would_change_the_record_is_refused(tmp_path: Path) -> None:
    from certcli.errors import AcmeError

    store = Store(tmp_path / "store")
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    store.write_account(Account(URL, f"{ME}; policy=wildcard", (), None, "2026-01-01Z", key))
    with pytest.raises(AcmeError, match=r"the CA's account URL .* cannot be written in a record"):
        dns_persist01.METHOD.settings(_get({"dns_persist.issuer": ["a2c.test"]}), store)


def test_issuer_names_that_keep_the_rules() -> None:
    assert persist.announced_issuers(["a.example", "xn--nicode-example-9jb.com"]) == (
        "a.example",
        "xn--nicode-example-9jb.com",
    )
    assert persist.announced_issuers([f"n{i}.example" for i in range(10)]) is not None


def _diagnosis(san: str, status: DnsStatus, reason: str | None = None) -> Diagnosis:
    name = f"_validation-persist.{san.removeprefix('*.')}"
    record = f'{name}. 300 IN TXT "a2c.test; accounturi={ME}"'
    return Diagnosis(san, name, status, None, None, record, reason)


def test_the_check_raises_with_the_record_to_publish(monkeypatch: pytest.MonkeyPatch) -> None:
    found = [_diagnosis("a.test", DnsStatus.VALID), _diagnosis("b.test", DnsStatus.MISSING, "no")]
    monkeypatch.setattr(dns_persist01, "diagnose", lambda names, settings: found)
    with pytest.raises(DnsNotReadyError) as raised:
        dns_persist01.METHOD.check(["a.test", "b.test"], _settings())
    assert raised.value.message == "no valid dns-persist-01 record for b.test (missing: no)"
    assert raised.value.hint == (
        f'publish the record _validation-persist.b.test. 300 IN TXT "a2c.test; accounturi={ME}", '
        "then `certcli renew` issues it"
    )
    assert raised.value.diagnoses == tuple(found)
    found.append(_diagnosis("c.test", DnsStatus.WRONG, "x"))
    found.append(_diagnosis("d.test", DnsStatus.ERROR, "the lookup failed"))
    with pytest.raises(DnsNotReadyError) as raised:
        dns_persist01.METHOD.check(["a.test", "b.test", "c.test", "d.test"], _settings())
    assert raised.value.hint == (
        "publish the 2 TXT records `certcli dns check --challenge dns-persist-01` lists, "
        "check that [dns] resolvers answer, then `certcli renew` issues it"
    )
    found[:] = [_diagnosis("a.test", DnsStatus.VALID)]
    assert dns_persist01.METHOD.check(["a.test"], _settings()) == found


def test_what_state_json_keeps_and_the_json_of_a_san() -> None:
    from datetime import UTC, datetime

    wrong = _diagnosis("*.b.test", DnsStatus.WRONG, "no policy=wildcard")
    kept = dns_persist01.METHOD.cache([wrong], _settings(), datetime(2026, 1, 2, tzinfo=UTC))
    assert kept == {
        "checked_at": "2026-01-02T00:00:00Z",
        "target": None,
        "sans": {
            "*.b.test": {
                "status": "wrong",
                "found": None,
                "challenge_name": "_validation-persist.b.test",
                "reason": "no policy=wildcard",  # status shows why
            }
        },
    }
    assert wrong.to_json() == {
        "name": "*.b.test",
        "dns_status": "wrong",
        "ssl_status": None,
        "challenge_name": "_validation-persist.b.test",
        "expected_target": None,
        "found": None,
        "record": wrong.record,
        "reason": "no policy=wildcard",
        "caa": None,
    }
    # DNS-01's diagnosis has neither field
    delegated = Diagnosis("a.test", "_acme-challenge.a.test", DnsStatus.MISSING, "t.test")
    assert "record" not in delegated.to_json() and delegated.record.endswith("CNAME t.test.")
