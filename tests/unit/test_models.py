"""The typed lineage: lineage.toml and state.json read into values and written back as read."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest
import tomli_w

from certcli.errors import StoreError
from certcli.models import (
    Action,
    LineageSettings,
    LineageState,
    Mode,
    Phase,
)

# The settings tables certcli writes besides the four keys: a new ACME lineage (the order
# of issuance's Plan.lineage_extra), one imported from certbot (certbot_conf's order), and
# hand-edited ones with settings certcli does not write and keys it does not know.
EXTRAS: list[dict[str, Any]] = [
    {},
    {"server": "https://ca.test/dir", "challenge": "http-01", "webroot": "/srv/www"},
    {
        "server": "https://ca.test/dir",
        "challenge": "dns-01",
        "dns": {"target": "acme.example.net"},
        "hooks": {"deploy": "systemctl reload nginx"},
        "profile": "shortlived",
        "webroot": "/srv/www",
        "preferred_chain": "Root X2",
        "ca_bundle": "/etc/ca.pem",
    },
    {
        "server": "https://ca.test/dir",
        "challenge": "http-01",
        "webroot": "/srv/www",
        "preferred_chain": "Root X2",
        "profile": "classic",
        "hooks": {"deploy": "/usr/local/bin/deploy"},
    },
    {
        "future": {"a": 1},
        "hooks": {"pre": "stop", "deploy": "reload", "post": "start"},
        "note": "kept",
        "dns": {"provider": "rfc2136", "target": "t.example", "rfc2136": {"server": "1:53"}},
        "webroot": "/w",
        "email": "me@example.com",
    },
    {"hooks": {}, "dns": {"target": "only.example"}, "server": "https://ca.test/dir"},
]


FOUR = {
    "name": "example.com",
    "domains": ["example.com", "*.example.com"],
    "mode": "auto",
    "key_type": "rsa-2048",
}


def _settings(extra: dict[str, Any]) -> LineageSettings:
    return LineageSettings.build(
        "example.com", ("example.com", "*.example.com"), Mode.AUTO, "rsa-2048", extra
    )


@pytest.mark.parametrize("extra", EXTRAS)
def test_settings_write_the_bytes_certcli_writes_today(extra: dict[str, Any]) -> None:
    today = tomli_w.dumps({**extra, **FOUR})  # the table, then the four keys
    settings = _settings(extra)
    assert tomli_w.dumps(settings.to_toml()) == today
    # and read back from that file, the same again
    again = LineageSettings.from_toml(tomllib.loads(today))
    assert again == settings
    assert tomli_w.dumps(again.to_toml()) == today


def test_every_setting_certcli_writes_is_a_field() -> None:
    settings = _settings(EXTRAS[2])
    assert settings.name == "example.com"
    assert settings.domains == ("example.com", "*.example.com")
    assert settings.mode is Mode.AUTO
    assert settings.key_type == "rsa-2048"
    assert settings.server == "https://ca.test/dir"
    assert settings.challenge == "dns-01"
    assert settings.dns_target == "acme.example.net"
    assert settings.deploy_hook == "systemctl reload nginx"
    assert settings.profile == "shortlived"
    assert settings.webroot == "/srv/www"
    assert settings.preferred_chain == "Root X2"
    assert settings.ca_bundle == "/etc/ca.pem"
    assert settings.extra == {}


def test_unknown_keys_stay_in_extra_and_round_trip() -> None:
    settings = _settings(EXTRAS[4])
    assert settings.deploy_hook == "reload"
    assert settings.dns_target == "t.example"
    assert settings.webroot == "/w"
    assert settings.extra == {
        "future": {"a": 1},
        "hooks": {"pre": "stop", "post": "start"},
        "note": "kept",
        "dns": {"provider": "rfc2136", "rfc2136": {"server": "1:53"}},
        "email": "me@example.com",
    }
    table = settings.to_toml()
    assert list(table["hooks"]) == ["pre", "deploy", "post"]  # in the file's order
    assert EXTRAS[4]["hooks"] == {"pre": "stop", "deploy": "reload", "post": "start"}


def test_new_settings_write_what_a_new_lineage_gets_today() -> None:
    """Made from fields alone (no file read), in the order of issuance's lineage.toml."""
    settings = LineageSettings(
        "example.com",
        ("example.com", "*.example.com"),
        Mode.AUTO,
        "rsa-2048",
        server="https://ca.test/dir",
        challenge="dns-01",
        dns_target="acme.example.net",
        deploy_hook="systemctl reload nginx",
        profile="shortlived",
        webroot="/srv/www",
        preferred_chain="Root X2",
        ca_bundle="/etc/ca.pem",
    )
    assert tomli_w.dumps(settings.to_toml()) == tomli_w.dumps({**EXTRAS[2], **FOUR})
    assert tomli_w.dumps(settings.to_toml()) == (
        'server = "https://ca.test/dir"\n'
        'challenge = "dns-01"\n'
        'profile = "shortlived"\n'
        'webroot = "/srv/www"\n'
        'preferred_chain = "Root X2"\n'
        'ca_bundle = "/etc/ca.pem"\n'
        'name = "example.com"\n'
        'domains = [\n    "example.com",\n    "*.example.com",\n]\n'
        'mode = "auto"\n'
        'key_type = "rsa-2048"\n'
        "\n[dns]\n"
        'target = "acme.example.net"\n'
        "\n[hooks]\n"
        'deploy = "systemctl reload nginx"\n'
    )


def test_settings_from_toml_check_as_before() -> None:
    with pytest.raises(StoreError, match=r"domains in lineage\.toml"):
        LineageSettings.from_toml({"name": "x", "domains": []})
    with pytest.raises(StoreError, match="webroot"):
        LineageSettings.from_toml({"name": "x", "domains": ["x"], "webroot": 5})


def test_a_custom_lineage_has_only_the_four_keys() -> None:
    settings = LineageSettings("up.example", ("up.example",), Mode.CUSTOM, "ec-p256")
    assert settings.server is None and settings.extra == {}
    assert settings.to_toml() == {
        "name": "up.example",
        "domains": ["up.example"],
        "mode": "custom",
        "key_type": "ec-p256",
    }


STATE: dict[str, Any] = {
    "phase": "Completed",
    "phase_at": "2026-01-02T03:04:05.123456Z",
    "last_attempt": "2026-01-02T03:04:00Z",
    "last_success": "2026-01-02T03:04:05Z",
    "last_error": "the CA said no",
    "last_error_kind": "ca_refused",
    "next_attempt": "2026-01-02T04:04:00Z",
    "failures": 2,
    "dns": {"target": "t.example", "sans": {"a.example": {"status": "valid", "found": []}}},
    "ari": {"id": "abc.def", "start": "2026-02-01T00:00:00Z"},
    "revoked": {"serial": "01ab", "reason": "keyCompromise", "at": "2026-01-03T00:00:00Z"},
    "deploy_failed": {"version": 2, "at": "2026-01-02T03:04:06Z", "error": "exit 1"},
    "expiry_notice": {"serial": "01ab", "days": 7},
    "mismatch_notice": {"serial": "01ab"},
}


def _dumped(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True)  # as the store writes state.json


def test_state_reads_every_key_certcli_writes() -> None:
    state = LineageState.from_json(STATE)
    assert state.phase is Phase.COMPLETED
    assert state.failures == 2
    assert state.last_error_kind == "ca_refused"
    assert state.deploy_failed == {"version": 2, "at": "2026-01-02T03:04:06Z", "error": "exit 1"}
    assert state.extra == {}
    assert _dumped(state.to_json()) == _dumped(STATE)


def test_state_keeps_unknown_keys_nulls_and_wrong_types() -> None:
    data = {**STATE, "future": [1, 2], "last_error": None, "failures": True, "phase": "Resting"}
    state = LineageState.from_json(data)
    assert state.last_error is None and state.failures is None
    assert state.phase == "Resting" and not isinstance(state.phase, Phase)
    assert state.extra == {"future": [1, 2], "last_error": None, "failures": True}
    assert _dumped(state.to_json()) == _dumped(data)


def test_an_empty_state() -> None:
    assert LineageState.from_json({}) == LineageState()
    assert LineageState().to_json() == {}


def test_phase_and_action_values_are_the_strings_of_the_json() -> None:
    assert [p.value for p in Phase] == [
        "Queued",
        "Pending",
        "Starting",
        "CNAME Check",
        "Persist Check",
        "Ordering",
        "Waiting for DNS",
        "Validating",
        "Completed",
        "Failed",
    ]
    assert json.dumps({"phase": Phase.CNAME_CHECK}) == '{"phase": "CNAME Check"}'
    assert Action.DRY_RUN == "dry_run" and Action.NOT_DUE == "not_due"
    assert {a.value for a in Action} == {
        "issued",
        "renewed",
        "dry_run",
        "failed",
        "not_due",
        "skipped",
        "backoff",
        "deployed",
        "kept",
        "imported",
    }
