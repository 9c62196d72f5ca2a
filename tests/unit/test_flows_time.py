"""The flows' moments and random choices come from their callers: `now` and `rng`."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from certcli import engine
from certcli.errors import CertcliError
from certcli.flows.ari import refresh_ari
from certcli.flows.attempt import mark_failed
from certcli.flows.plan import AcmeOptions, ca_settings
from certcli.models import LineageState

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_failure_backs_off_from_the_moment_given() -> None:
    state = mark_failed(LineageState(failures=1), CertcliError("the CA said no"), NOW)
    assert state.failures == 2
    assert state.last_attempt == "2026-03-01T12:00:00Z"
    assert state.next_attempt == "2026-03-01T12:10:00Z"  # the second failure: 10 min
    assert state.last_error == "the CA said no"


def test_the_moment_in_an_ari_window_is_drawn_from_the_rng_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = engine.RenewalWindow(NOW + timedelta(days=1), NOW + timedelta(days=2), 3600)
    monkeypatch.setattr(engine, "fetch_renewal_window", lambda _url, _settings: window)
    settings = ca_settings(AcmeOptions(server="https://ca.test/dir"), {})
    ari = refresh_ari({"url": "https://ca.test/ari/x", "id": "x"}, settings, NOW, random.Random(7))
    assert ari["fraction"] == random.Random(7).random()
    assert ari["next_check"] == "2026-03-01T13:00:00Z"
    # the same window again keeps the moment chosen, whatever the rng
    again = refresh_ari(ari, settings, NOW, random.Random(8))
    assert again["fraction"] == ari["fraction"]


def test_the_explanation_url_of_the_latest_answer_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start, end = NOW + timedelta(days=1), NOW + timedelta(days=2)
    why = "https://ca.test/incidents/2026-03-01"
    answers = iter(
        [engine.RenewalWindow(start, end, 3600, why), engine.RenewalWindow(start, end, 3600)]
    )
    monkeypatch.setattr(engine, "fetch_renewal_window", lambda _url, _settings: next(answers))
    settings = ca_settings(AcmeOptions(server="https://ca.test/dir"), {})
    ari = refresh_ari({"url": "https://ca.test/ari/x", "id": "x"}, settings, NOW)
    assert ari["explanation_url"] == why
    assert "explanation_url" not in refresh_ari(ari, settings, NOW)  # the CA no longer says


def test_only_a_one_line_http_url_is_an_explanation() -> None:
    from certcli.engine.ari import _explanation

    assert _explanation("https://ca.test/why") == "https://ca.test/why"
    for bad in (None, 42, "", "ftp://ca.test/why", "https://ca.test/\x1b[31mwhy", "https://a b"):
        assert _explanation(bad) is None, bad


def test_a_ca_that_does_not_answer_is_asked_again_an_hour_after_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreachable(_url: str, _settings: object) -> engine.RenewalWindow:
        raise CertcliError("unreachable")

    monkeypatch.setattr(engine, "fetch_renewal_window", unreachable)
    settings = ca_settings(AcmeOptions(server="https://ca.test/dir"), {})
    ari = refresh_ari({"url": "u", "id": "x"}, settings, NOW)
    assert ari == {"url": "u", "id": "x", "next_check": "2026-03-01T13:00:00Z"}


def test_the_ca_settings_take_the_options_fields_as_given() -> None:
    options = AcmeOptions(
        server="https://ca.test/dir", agree_tos=True, eab_kid="k", eab_hmac_key="c2VjcmV0"
    )
    settings = ca_settings(options, {"email": "a@example.com"})
    assert (settings.agree_tos, settings.eab_kid, settings.eab_hmac_key) == (True, "k", "c2VjcmV0")
    assert (settings.directory_url, settings.email) == ("https://ca.test/dir", "a@example.com")
    assert (settings.timeout, settings.network_timeout) == (300, 30)
