"""CAA: parsing records and issue values, the rules of RFC 8659 §4 and RFC 8657, the tree
climbing of §3 (against a resolver stand-in), and the settings."""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest

from certcli import caa
from certcli.caa import CaaStatus, Property, Requester, evaluate, from_rdata, parse_issue_value
from certcli.flows.caa import forbidden

ACCOUNT = "https://ca.test/acme/acct/1"
US = Requester(("ca.test",), ACCOUNT, "dns-01")
UNKNOWN_CA = Requester((), ACCOUNT, "dns-01")


def parse_record(text: str) -> Property:
    """A CAA record in zone-file syntax, read as the lookup reads DNS's answers."""
    return from_rdata(dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.CAA, text))


def _set(*records: str) -> list[Property]:
    return [parse_record(r) for r in records]


def _verdict(san: str, *records: str, who: Requester = US) -> caa.CaaFinding:
    return evaluate(san, "example.com", _set(*records), who)


# -- parsing -------------------------------------------------------------------------------


def test_an_issue_value_is_an_issuer_then_parameters() -> None:
    parsed = parse_issue_value(f" CA.test ; accounturi={ACCOUNT}; validationmethods=dns-01 ")
    assert parsed.issuer == "ca.test"  # domain names match without case
    assert parsed.parameters == {"accounturi": ACCOUNT, "validationmethods": "dns-01"}
    assert not parsed.malformed


@pytest.mark.parametrize("value", [";", "", "  ", " ; "])
def test_no_issuer_is_no_ca(value: str) -> None:
    parsed = parse_issue_value(value)
    assert parsed.issuer is None and not parsed.malformed


@pytest.mark.parametrize(
    "value",
    [
        "ca test",  # a space inside the name
        "-ca.test",
        "ca..test",
        "ca.test; accounturi",  # a parameter without =
        "ca.test; account uri=x",
        "ca.test; accounturi=a b",  # a space in a value
        "ca.test; accounturi=a; accounturi=b",  # repeated: ambiguous
        "cä.test",
    ],
)
def test_malformed_values(value: str) -> None:
    assert parse_issue_value(value).malformed


def test_a_record_in_zone_file_syntax() -> None:
    prop = parse_record('128 IssueWild "ca.test; x=\\"y\\""')
    assert (prop.flags, prop.tag, prop.value) == (128, "issuewild", 'ca.test; x="y"')
    assert prop.critical
    assert prop.to_text() == '128 issuewild "ca.test; x=\\"y\\""'


# -- the rules ---------------------------------------------------------------------------


def test_issue_naming_this_ca_allows() -> None:
    assert _verdict("www.example.com", '0 issue "ca.test"').status is CaaStatus.ALLOWED
    # one property of several is enough
    found = _verdict("x.example.com", '0 issue "other.test"', '0 issue "CA.TEST"')
    assert found.status is CaaStatus.ALLOWED


def test_issue_naming_another_ca_forbids_with_the_record_to_add() -> None:
    found = _verdict("www.example.com", '0 issue "other.test"')
    assert found.status is CaaStatus.FORBIDS
    assert "names another CA than ca.test" in found.reason
    assert found.owner == "example.com"
    assert found.records == ('0 issue "other.test"',)
    assert found.record == (
        f'example.com. 300 IN CAA 0 issue "ca.test; accounturi={ACCOUNT}; validationmethods=dns-01"'
    )


def test_issue_semicolon_alone_forbids_every_ca() -> None:
    found = _verdict("www.example.com", '0 issue ";"')
    assert found.status is CaaStatus.FORBIDS and "allows no CA" in found.reason
    # judged without knowing the CA's identities
    unknown = _verdict("www.example.com", '0 issue ";"', who=UNKNOWN_CA)
    assert unknown.status is CaaStatus.FORBIDS
    assert unknown.record is None and "[caa] identities" in unknown.reason


def test_a_malformed_issue_value_authorizes_no_one() -> None:
    assert _verdict("a.example.com", '0 issue "ca.test; x"').status is CaaStatus.FORBIDS


def test_issuewild_decides_for_a_wildcard_when_present() -> None:
    records = ('0 issue "ca.test"', '0 issuewild ";"')
    wildcard = _verdict("*.example.com", *records)
    assert wildcard.status is CaaStatus.FORBIDS
    assert "wildcard" in wildcard.reason
    assert wildcard.record is not None and " issuewild " in wildcard.record
    # the name itself follows issue only
    assert _verdict("example.com", *records).status is CaaStatus.ALLOWED


def test_issue_decides_for_a_wildcard_without_issuewild() -> None:
    assert _verdict("*.example.com", '0 issue "ca.test"').status is CaaStatus.ALLOWED
    found = _verdict("*.example.com", '0 issue "other.test"')
    assert found.status is CaaStatus.FORBIDS
    assert found.record is not None and " issue " in found.record


def test_issuewild_never_applies_to_a_name_that_is_not_a_wildcard() -> None:
    found = _verdict("example.com", '0 issuewild "ca.test"', '0 issue "other.test"')
    assert found.status is CaaStatus.FORBIDS
    assert _verdict("example.com", '0 issuewild ";"').status is CaaStatus.ALLOWED


def test_a_set_without_issue_records_restricts_nothing() -> None:
    found = _verdict("a.example.com", '0 iodef "mailto:x@example.com"')
    assert found.status is CaaStatus.ALLOWED


def test_accounturi_must_be_our_account() -> None:
    ours = _verdict("a.example.com", f'0 issue "ca.test; accounturi={ACCOUNT}"')
    assert ours.status is CaaStatus.ALLOWED
    other = _verdict("a.example.com", '0 issue "ca.test; accounturi=https://ca.test/acct/2"')
    assert other.status is CaaStatus.FORBIDS
    assert f"names another account than {ACCOUNT}" in other.reason
    # compared as a string, exactly
    assert (
        _verdict("a.example.com", f'0 issue "ca.test; accounturi={ACCOUNT}/"').status
        is CaaStatus.FORBIDS
    )


def test_validationmethods_must_list_the_method() -> None:
    http = _verdict("a.example.com", '0 issue "ca.test; validationmethods=http-01"')
    assert http.status is CaaStatus.FORBIDS
    assert "allows only http-01, not dns-01" in http.reason
    both = _verdict("a.example.com", '0 issue "ca.test; validationmethods=http-01,dns-01"')
    assert both.status is CaaStatus.ALLOWED


def test_an_unknown_critical_tag_forbids_and_a_known_one_does_not() -> None:
    found = _verdict("a.example.com", '0 issue "ca.test"', '128 tbs "x"')
    assert found.status is CaaStatus.FORBIDS
    assert "critical" in found.reason and found.record is None
    assert _verdict("a.example.com", '0 issue "ca.test"', '0 tbs "x"').status is CaaStatus.ALLOWED
    known = _verdict("a.example.com", '0 issue "ca.test"', '128 iodef "mailto:x@example.com"')
    assert known.status is CaaStatus.ALLOWED


def test_unknown_when_the_ca_identities_are_not_known() -> None:
    found = _verdict("a.example.com", '0 issue "other.test"', who=UNKNOWN_CA)
    assert found.status is CaaStatus.UNKNOWN
    assert "announces no CAA identity" in found.reason
    # what needs no identity is still judged: another account, another method
    excluded = _verdict("a.example.com", '0 issue "x.test; accounturi=https://x/2"', who=UNKNOWN_CA)
    assert excluded.status is CaaStatus.FORBIDS


def test_unknown_when_our_account_is_not_known_yet() -> None:
    who = Requester(("ca.test",), None, "dns-01")
    found = _verdict("a.example.com", f'0 issue "ca.test; accounturi={ACCOUNT}"', who=who)
    assert found.status is CaaStatus.UNKNOWN and "account register" in found.reason
    suggested = _verdict("a.example.com", '0 issue "o.test"', who=who).record
    assert suggested == 'example.com. 300 IN CAA 0 issue "ca.test; validationmethods=dns-01"'


def test_the_json_of_a_finding() -> None:
    found = _verdict("a.example.com", '0 issue "other.test"')
    assert found.to_json() == {
        "status": "caa_forbids",
        "owner": "example.com",
        "reason": found.reason,
        "records": ['0 issue "other.test"'],
        "record": found.record,
    }


def test_the_refusal_names_each_san_its_reason_and_the_record() -> None:
    found = [
        _verdict("a.example.com", '0 issue "other.test"'),
        _verdict("b.example.com", '0 issue "ca.test"'),
    ]
    error = forbidden(found)
    assert error is not None and error.exit_code == 17 and error.kind == "caa_forbids"
    assert error.message.startswith("CAA forbids a.example.com: the CAA records at example.com")
    assert "b.example.com" not in error.message
    assert error.hint == f"add the record {found[0].record}, then `certcli renew` issues it"
    assert forbidden(found[1:]) is None


# -- the climb ------------------------------------------------------------------------------


class _Answer:
    def __init__(self, rrset: dns.rrset.RRset | None) -> None:
        self.rrset = rrset


class _Resolver:
    """Answers CAA queries from a table: name → records, or an exception to raise; a CNAME
    is followed as a recursive resolver does (the answer names the target)."""

    def __init__(self, table: dict[str, Any], cnames: dict[str, str] | None = None) -> None:
        self.table, self.cnames, self.asked = table, cnames or {}, []
        self.nameservers: list[Any] = []

    def resolve(self, name: str, rtype: str, raise_on_no_answer: bool = True) -> _Answer:
        self.asked.append(name)
        holder = self.cnames.get(name, name)
        found = self.table.get(holder)
        if isinstance(found, Exception):
            raise found
        if found is None:
            raise dns.resolver.NXDOMAIN
        if not found:
            return _Answer(None)
        rrset = dns.rrset.from_text_list(holder + ".", 60, "IN", "CAA", found)
        return _Answer(rrset)


def test_the_first_set_climbing_from_the_name_wins() -> None:
    resolver = _Resolver({"example.com": ['0 issue "other.test"'], "com": ['0 issue "ca.test"']})
    found = caa.check_one("a.b.example.com", US, resolver)  # type: ignore[arg-type]
    assert found.status is CaaStatus.FORBIDS and found.owner == "example.com"
    assert resolver.asked == ["a.b.example.com", "b.example.com", "example.com"]


def test_a_wildcard_is_looked_up_at_its_base() -> None:
    resolver = _Resolver({"example.com": ['0 issuewild ";"', '0 issue "ca.test"']})
    found = caa.check_one("*.example.com", US, resolver)  # type: ignore[arg-type]
    assert found.status is CaaStatus.FORBIDS
    assert resolver.asked == ["example.com"]


def test_an_empty_name_climbs_on_and_no_set_at_all_is_none() -> None:
    resolver = _Resolver({"a.example.com": [], "example.com": []})
    found = caa.check_one("a.example.com", US, resolver)  # type: ignore[arg-type]
    assert found.status is CaaStatus.NONE and found.owner is None
    assert resolver.asked == ["a.example.com", "example.com", "com"]  # never the root


def test_a_cname_leads_to_its_targets_set() -> None:
    resolver = _Resolver(
        {"target.example.net": ['0 issue "other.test"']}, {"www.example.com": "target.example.net"}
    )
    found = caa.check_one("www.example.com", US, resolver)  # type: ignore[arg-type]
    assert found.status is CaaStatus.FORBIDS
    assert found.owner == "target.example.net"
    assert "reached from www.example.com by CNAME" in found.reason
    assert found.record is not None and found.record.startswith("target.example.net. ")


def test_a_failed_lookup_is_an_error_never_allowed_or_forbidden() -> None:
    for exc in (dns.resolver.NoNameservers(), dns.exception.Timeout()):
        resolver = _Resolver({"example.com": ['0 issue "other.test"'], "a.example.com": exc})
        found = caa.check_one("a.example.com", US, resolver)  # type: ignore[arg-type]
        assert found.status is CaaStatus.ERROR
        assert "the CAA lookup of a.example.com failed" in found.reason


def test_an_ip_address_has_no_caa() -> None:
    resolver = _Resolver({})
    assert caa.check_one("192.0.2.1", US, resolver).status is CaaStatus.NONE  # type: ignore[arg-type]
    assert resolver.asked == []


def test_parents_stop_before_the_root() -> None:
    assert caa.parents("A.b.Example.com.") == [
        "a.b.example.com",
        "b.example.com",
        "example.com",
        "com",
    ]


# -- the settings -------------------------------------------------------------------------


def _get(values: dict[str, Any]) -> Any:
    return lambda key, default: values.get(key, default)


def test_settings_default_to_checking_with_the_directorys_identities() -> None:
    found = caa.settings(_get({"dns.resolvers": ["127.0.0.1:5353"]}))
    assert found.check and found.identities == ()
    assert found.resolvers == [("127.0.0.1", 5353)]


def test_settings_identities_from_a_list_or_the_environment() -> None:
    assert caa.settings(_get({"caa.identities": ["CA.test"]})).identities == ("ca.test",)
    assert caa.settings(_get({"caa.identities": "a.test, b.test"})).identities == (
        "a.test",
        "b.test",
    )


def test_settings_off_reads_no_resolver() -> None:
    found = caa.settings(_get({"caa.check": False, "dns.resolvers": "not-an-address"}))
    assert not found.check and found.resolvers == []


def test_no_record_is_suggested_for_an_account_url_that_cannot_be_written_in_one() -> None:
    """The account URL comes from the CA (its Location header): one with a `;` or a space
    would put parameters of the CA's choosing in the record the user is told to add."""
    for uri in (f"{ACCOUNT}; validationmethods=http-01", f"{ACCOUNT} x"):
        who = Requester(("ca.test",), uri, "dns-01")
        found = _verdict("a.example.com", '0 issue "other.test"', who=who)
        assert found.status is CaaStatus.FORBIDS and found.record is None
    value = f"ca.test; accounturi={ACCOUNT}; validationmethods=dns-01"
    assert caa.suggested_record("a.example.com", "issue", US) == (
        f'a.example.com. 300 IN CAA 0 issue "{value}"'
    )


def test_a_batch_asks_the_parents_sets_once_for_their_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    import dns.message
    import dns.query

    asked: list[str] = []

    def udp(query: dns.message.Message, *args: Any, **kwargs: Any) -> dns.message.Message:
        name = query.question[0].name.to_text()
        asked.append(name.rstrip("."))
        response = dns.message.make_response(query)
        soa = "ns.example.com. hostmaster.example.com. 1 3600 600 86400 60"
        response.authority.append(dns.rrset.from_text("example.com.", 60, "IN", "SOA", soa))
        return response  # no CAA anywhere: each name's set is empty, for 60 s

    monkeypatch.setattr(dns.query, "udp", udp)
    monkeypatch.setattr(caa, "_answers", {})
    servers = [("127.0.0.1", 5353)]
    for san in ("a.example.com", "b.example.com"):
        assert caa.check([san], US, servers)[0].status is CaaStatus.NONE
    assert asked == ["a.example.com", "example.com", "com", "b.example.com"]
    caa.check(["a.example.com"], US, [("127.0.0.2", 5353)])  # other resolvers: asked anew
    assert asked[4:] == ["a.example.com", "example.com", "com"]
