from __future__ import annotations

from pathlib import Path

import pytest

from certcli.config import (
    SECRET_KEYS,
    assign,
    check_settings,
    config_dir,
    env_name,
    load_config,
    lookup,
    resolve_server,
    setting,
)
from certcli.errors import StoreError, UsageError
from certcli.hooks import redact_url


def test_precedence_flag_env_lineage_config_default(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"key_type": "rsa-2048", "dns": {"target": "a.example.net"}}
    lineage = {"key_type": "ec-p384"}
    assert setting("key_type", None, {}, "ec-p256") == "ec-p256"
    assert setting("key_type", None, config, "ec-p256") == "rsa-2048"
    assert setting("key_type", None, config, "ec-p256", lineage) == "ec-p384"
    monkeypatch.setenv("CERTCLI_KEY_TYPE", "rsa-4096")
    assert setting("key_type", None, config, "ec-p256", lineage) == "rsa-4096"
    assert setting("key_type", "rsa-3072", config, "ec-p256", lineage) == "rsa-3072"
    assert setting("dns.target", None, config, None) == "a.example.net"


def test_env_names() -> None:
    assert env_name("dns.target") == "CERTCLI_DNS_TARGET"
    assert env_name("server") == "CERTCLI_SERVER"


def test_config_dir_flag_beats_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CERTCLI_CONFIG_DIR", str(tmp_path / "env"))
    assert config_dir(None) == tmp_path / "env"
    assert config_dir(tmp_path / "flag") == tmp_path / "flag"


def test_broken_config_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("key_type = [")
    with pytest.raises(StoreError, match=r"config\.toml"):
        load_config(tmp_path)
    assert load_config(tmp_path / "absent") == {}


# -- every setting by type and range, with its source in the message ------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("renewal.parallel", "4", 4),
        ("renewal.parallel", 8, 8),
        ("renewal.jitter", "0", 0.0),
        ("acme.timeout", "0.5", 0.5),  # never truncated to 0
        ("acme.network_timeout", 2.5, 2.5),
        ("store.encrypt_keys", "yes", True),
        ("store.encrypt_keys", "off", False),
        ("caa.check", "false", False),
        ("caa.identities", ["ca.example"], ["ca.example"]),
        ("caa.identities", "a.example,B.example", ["a.example", "b.example"]),
        ("notify.on_success", True, True),
        ("dns.resolvers", ["127.0.0.1:53"], ["127.0.0.1:53"]),
        ("email", "me@example.com", "me@example.com"),
        ("server", "letsencrypt", "letsencrypt"),
        ("key_type", "rsa-3072", "rsa-3072"),
        ("challenge", "dns-01", "dns-01"),
        ("dns.provider", "manual", "manual"),
        ("preferred_chain", "ISRG Root X1", "ISRG Root X1"),
        ("unknown.key", object, object),  # certcli does not check keys it does not know
    ],
)
def test_good_values_are_read_as_their_kind(key: str, value: object, expected: object) -> None:
    assert setting(key, value, {}, None) == expected


BAD = [
    ("renewal.parallel", ["inf", "nan", "0", "-1", "1.5", "", True, 2.5, 0]),
    ("renewal.jitter", ["-1", "inf", "nan", "x", False]),
    ("acme.timeout", ["0", "-1", "inf", "nan", "soon", True, 0, -0.5]),
    ("hooks.timeout", ["0", [], {}]),
    ("store.encrypt_keys", ["maybe", 1]),
    ("caa.check", ["maybe", 1]),
    ("caa.identities", [3, [1], True, "ca.example\nx", "ca.example; accounturi=x"]),
    ("hooks.deploy", [3, ["a"], True]),
    ("dns.resolvers", [5, [1, 2]]),
    ("email", ["not an email", "a@b@c.com", "@x.com", "a@", "a@localhost", "a@x.com\n"]),
    ("server", ["https://[::1", "https://:443/d", "https://x:99999/d", "ftp://x", 5]),
    ("dns.target", ["x.example.net\n", "x y.example.net", "\tx.example.net", 3]),
    ("dns.zone", ["zone.example.net\r", 3]),
    ("key_type", ["rsa-1024", "secp256k1", "EC-P256", "", 256]),
    ("challenge", ["tls-alpn-01", "http", "", 1]),
    ("dns.provider", ["route53", "", 2]),
    ("preferred_chain", ["", " ", "ISRG\nRoot", 1]),
    ("profile", ["", "\t", 3]),
]


@pytest.mark.parametrize(("key", "value"), [(k, v) for k, vs in BAD for v in vs])
def test_bad_values_name_the_key_and_where_they_came_from(
    monkeypatch: pytest.MonkeyPatch, key: str, value: object
) -> None:
    with pytest.raises(UsageError, match=r"^--x "):
        setting(key, value, {}, None, flag="--x")
    if isinstance(value, str) and value:
        monkeypatch.setenv(env_name(key), value)
        with pytest.raises(UsageError, match=rf"^{env_name(key)} \(environment\) "):
            setting(key, None, {}, None)
        monkeypatch.delenv(env_name(key))
    table: dict = {}
    node = table
    *sections, last = key.split(".")
    for part in sections:
        node = node.setdefault(part, {})
    node[last] = value
    with pytest.raises(StoreError, match=rf"^{key} in /etc/x.toml ") as caught:
        check_settings(table, "/etc/x.toml")
    assert caught.value.hint == "fix it in /etc/x.toml"


@pytest.mark.parametrize("section", ["hooks", "notify", "dns", "renewal", "acme", "store"])
def test_sections_must_be_tables(section: str) -> None:
    for value in ("x", 3, [], True):
        with pytest.raises(StoreError, match=rf"^{section} in f must be a table"):
            check_settings({section: value}, "f")
    check_settings({section: {}}, "f")
    with pytest.raises(StoreError, match=r"^dns.rfc2136 in f must be a table"):
        check_settings({"dns": {"rfc2136": "x"}}, "f")


def test_a_bad_secret_is_never_shown() -> None:
    for key in SECRET_KEYS:
        section, _, last = key.rpartition(".")
        table: dict = {}
        node = table
        for part in section.split("."):
            node = node.setdefault(part, {})
        node[last] = 12345
        with pytest.raises(StoreError) as caught:
            check_settings(table, "f")
        assert "12345" not in caught.value.message and "(a secret)" in caught.value.message


def test_server_urls_that_cannot_be_parsed_are_usage_errors() -> None:
    for bad in ("https://[::1", "https://h:x/d", "https:///d", "https://h/d\n", "https://h d/"):
        with pytest.raises(UsageError, match="--server"):
            resolve_server(bad)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com/services/T0/B0/XXXX", "https://hooks.example.com/…"),
        ("https://user:pass@hooks.example.com/x", "https://hooks.example.com/…"),
        ("http://127.0.0.1:9/t?token=x", "http://127.0.0.1:9/…"),
        ("https://[::1]:8/a", "https://[::1]:8/…"),
        ("https://h.example/", "https://h.example/"),
        ("h.example/token", "(a URL that is not valid)"),
        ("https://[::1/token", "(a URL that is not valid)"),
    ],
)
def test_a_url_in_a_message_keeps_only_its_host(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_assign_writes_what_lookup_reads() -> None:
    table: dict[str, object] = {"dns": {"zone": "example.com"}, "email": "a@example.com"}
    assign(table, "dns.target", "acme.example.net")
    assign(table, "renewal.hooks.deploy", "true")
    assert lookup(table, "dns.target") == "acme.example.net"
    assert lookup(table, "dns.zone") == "example.com"
    assert table["renewal"] == {"hooks": {"deploy": "true"}}
    with pytest.raises(UsageError, match=r"email in config\.toml is a value, not a section"):
        assign(table, "email.x", 1)
    assert lookup(table, "email") == "a@example.com"
