from __future__ import annotations

import pytest

from certcli.domains import (
    covered_by,
    covers,
    default_lineage_name,
    normalize_identifier,
    normalize_identifiers,
    validate_lineage_name,
)
from certcli.errors import ExitCode, UsageError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM", "example.com"),
        ("www.example.com.", "www.example.com"),
        ("*.example.com", "*.example.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a-b.example.com", "a-b.example.com"),
        ("192.0.2.1", "192.0.2.1"),
        ("2001:DB8::0:1", "2001:db8::1"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
    ],
)
def test_valid_identifiers_are_normalized(raw: str, expected: str) -> None:
    assert normalize_identifier(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("-bad.com", "inner hyphens"),
        ("bad-.com", "inner hyphens"),
        ("a..b", "empty label"),
        ("*.*.x.com", "wildcard"),
        ("www.*.example.com", "wildcard"),
        ("w*.example.com", "wildcard"),
        ("a" * 64 + ".com", "label of 64"),
        (".".join(["a" * 50] * 5), "at most 253"),
        ("bücher.example", "not ASCII"),
        ("localhost", "two labels"),
        ("", "empty"),
        ("exa_mple.com", "inner hyphens"),
        ("exa mple.com", "holds a space"),
    ],
)
def test_invalid_identifiers_say_why(raw: str, reason: str) -> None:
    with pytest.raises(UsageError) as caught:
        normalize_identifier(raw)
    assert reason in caught.value.message
    assert caught.value.exit_code == ExitCode.USAGE


def test_non_ascii_suggests_the_idna_form() -> None:
    with pytest.raises(UsageError) as caught:
        normalize_identifier("bücher.example")
    assert caught.value.hint is not None and "xn--bcher-kva.example" in caught.value.hint


def test_repeats_are_dropped_in_order() -> None:
    assert normalize_identifiers(["b.com", "A.com", "B.com."]) == ["b.com", "a.com"]


@pytest.mark.parametrize(
    ("san", "domain", "expected"),
    [
        ("example.com", "example.com", True),
        ("EXAMPLE.com.", "example.com", True),
        ("*.example.com", "www.example.com", True),
        ("*.example.com", "example.com", False),  # not the apex
        ("*.example.com", "a.b.example.com", False),  # exactly one label
        ("*.example.com", "*.example.com", True),
        ("www.example.com", "*.example.com", False),
        ("*.example.com", "*.a.example.com", False),
        ("*.example.com", "wwwexample.com", False),
        ("192.0.2.1", "192.0.2.1", True),
        ("*.example.com", "192.0.2.1", False),
    ],
)
def test_wildcard_coverage(san: str, domain: str, expected: bool) -> None:
    assert covers(san, domain) is expected


def test_covered_by_any_san() -> None:
    assert covered_by(("example.com", "*.example.com"), "shop.example.com")
    assert not covered_by(("example.com", "*.example.com"), "a.shop.example.com")


#: Names that meet every branch of `covers`: apex, one and two labels below, wildcards of
#: either, IPv4/IPv6 (a DNS wildcard whose parent spells an IP's tail), case, trailing dots.
_NAMES = [
    "example.com",
    "EXAMPLE.com.",
    "www.example.com",
    "a.b.example.com",
    "*.example.com",
    "*.b.example.com",
    "*.a.example.com",
    "wwwexample.com",
    "192.0.2.1",
    "*.0.2.1",
    "10.0.2.1",
    "2001:db8::1",
    "*.db8::1",
    ".example.com",
    "*.",
    "com",
]


@pytest.mark.parametrize("domain", _NAMES)
def test_the_san_index_agrees_with_covers_for_every_pair(domain: str) -> None:
    from certcli.domains import covered_in, san_index, uncovered

    for san in _NAMES:
        assert covered_in(san_index([san]), domain) is covers(san, domain), (san, domain)
    expected = any(covers(san, domain) for san in _NAMES)
    assert covered_in(san_index(_NAMES), domain) is expected
    assert covered_by(_NAMES, domain) is expected
    assert uncovered(_NAMES, [domain]) == ([] if expected else [domain])


def test_uncovered_keeps_the_order_of_the_domains() -> None:
    from certcli.domains import uncovered

    sans = ["*.example.com", "example.com"]
    domains = ["z.b.example.com", "shop.example.com", "other.org", "example.com", "a.org"]
    assert uncovered(sans, domains) == ["z.b.example.com", "other.org", "a.org"]
    assert uncovered([], ["a.org"]) == ["a.org"]


def test_lineage_names() -> None:
    assert default_lineage_name(["*.example.com", "example.com"]) == "example.com"
    assert validate_lineage_name("shop_2.example.com") == "shop_2.example.com"
    for bad in ("../etc", ".hidden", "-x", "a/b", "a" * 101, "", "a..b"):
        with pytest.raises(UsageError):
            validate_lineage_name(bad)


def test_order_identifiers_drop_what_the_lineages_wildcards_cover() -> None:
    from certcli.domains import order_identifiers

    domains = ["x.com", "*.x.com", "shop.x.com", "a.b.x.com", "y.com"]
    assert order_identifiers(domains) == ["x.com", "*.x.com", "a.b.x.com", "y.com"]
    assert order_identifiers(["a.com"]) == ["a.com"]
    # an IP never falls under a wildcard, even one whose parent spells its tail
    assert order_identifiers(["*.0.2.1", "192.0.2.1"]) == ["*.0.2.1", "192.0.2.1"]
    many = ["*.x.com", *(f"h{i}.x.com" for i in range(3000)), "a.y.com"]
    assert order_identifiers(many) == ["*.x.com", "a.y.com"]


# -- every pattern matches the whole string: never a trailing newline -----------------------

TRAILERS = ["\n", "\r", "\t", "\x00", " ", "\r\n", "\x0b"]


@pytest.mark.parametrize("tail", TRAILERS)
def test_every_pattern_refuses_a_trailing_or_inner_control_character(tail: str) -> None:
    import certcli.configobj as configobj
    import certcli.storage.versions as versions_module
    from certcli.challenges import http01
    from certcli.domains import check_email
    from certcli.flows.configfile import _check_key

    for bad in (f"example.com{tail}", f"x{tail}.example.com", f"{tail}example.com"):
        with pytest.raises(UsageError):
            normalize_identifier(bad)
    for bad in (f"site{tail}", f"si{tail}te"):
        with pytest.raises(UsageError):
            validate_lineage_name(bad)
    with pytest.raises(UsageError):
        _check_key(f"dns.target{tail}")
    with pytest.raises(UsageError):
        check_email(f"me@example.com{tail}")
    assert not http01._TOKEN.fullmatch(f"abc{tail}")
    assert not versions_module._VERSION_DIR.fullmatch(f"0001{tail}")
    assert configobj._SECTION.fullmatch(f"[renewalparams]{tail}x") is None


def test_a_control_character_is_shown_visibly_in_the_message() -> None:
    with pytest.raises(UsageError) as caught:
        normalize_identifier("evil\n.example.com")
    assert "'evil\\n.example.com'" in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    "good", ["me@example.com", "a.b+tag@sub.example.org", "x@xn--bcher-kva.example"]
)
def test_plain_email_addresses_pass(good: str) -> None:
    from certcli.domains import check_email

    assert check_email(good) == good
