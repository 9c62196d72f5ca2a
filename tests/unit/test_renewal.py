from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certcli.models import CertInfo, LineageStatus
from certcli.renewal import (
    EXPIRY_NOTICES,
    days_left,
    deploy_pending,
    expiry_notice,
    last_twentieth,
    lineage_statuses,
    renewal_window_start,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lifetime_days", "window_days"),
    [(90, 30), (45, 15), (6, 3), (9, 4.5), (10, 10 / 3), (365, 365 / 3)],
)
def test_window_is_a_third_of_the_lifetime_or_half_under_ten_days(
    lifetime_days: float, window_days: float
) -> None:
    not_after = T0 + timedelta(days=lifetime_days)
    start = renewal_window_start(T0, not_after)
    assert not_after - start == timedelta(days=window_days)


def test_days_left_rounds_down_and_goes_negative() -> None:
    assert days_left(T0 + timedelta(days=2, hours=23), T0) == 2
    assert days_left(T0, T0 + timedelta(hours=1)) == -1


def _info(lifetime: float = 90) -> CertInfo:
    return CertInfo(
        subject_cn="example.com",
        sans=("example.com",),
        issuer="Test CA",
        not_before=T0,
        not_after=T0 + timedelta(days=lifetime),
        serial="1",
        fingerprint_sha256="AA",
        key_type="ec-p256",
    )


def test_statuses_over_a_certificates_life() -> None:
    info = _info()
    assert lineage_statuses(info, T0 + timedelta(days=1)) == [LineageStatus.ACTIVE]
    assert lineage_statuses(info, T0 + timedelta(days=60)) == [LineageStatus.EXPIRING]
    assert lineage_statuses(info, T0 + timedelta(days=59, hours=23)) == [LineageStatus.ACTIVE]
    assert lineage_statuses(info, T0 + timedelta(days=90)) == [LineageStatus.EXPIRED]
    assert lineage_statuses(None, T0) == [LineageStatus.PENDING]


def test_several_statuses_hold_at_once_most_urgent_first() -> None:
    got = lineage_statuses(
        _info(),
        T0 + timedelta(days=80),
        failed=True,
        dns=frozenset({LineageStatus.DNS_WRONG, LineageStatus.DNS_MISSING}),
    )
    assert got == [
        LineageStatus.FAILED,
        LineageStatus.DNS_MISSING,
        LineageStatus.DNS_WRONG,
        LineageStatus.EXPIRING,
    ]


def test_renewal_reasons() -> None:
    from certcli.renewal import renewal_reason

    info = _info()
    domains = ("example.com",)
    assert renewal_reason(info, domains, T0 + timedelta(days=1)) is None
    assert renewal_reason(info, domains, T0 + timedelta(days=1), force=True) == "forced"
    assert renewal_reason(None, domains, T0) == "no certificate yet"
    assert renewal_reason(info, ("example.com", "www.example.com"), T0) == (
        "not yet covered: www.example.com"
    )
    assert renewal_reason(info, domains, T0 + timedelta(days=61)) == "29 days left"
    assert renewal_reason(info, domains, T0 + timedelta(days=91)) == "expired"


def test_backoff_follows_the_integration_guide() -> None:
    from certcli.renewal import next_attempt

    at = T0
    assert [next_attempt(at, n, "validation_failed") - at for n in (1, 2, 3, 4, 9)] == [
        timedelta(minutes=1),
        timedelta(minutes=10),
        timedelta(minutes=100),
        timedelta(days=1),
        timedelta(days=1),
    ]
    # a rate limit waits at least its Retry-After
    assert next_attempt(at, 1, "rate_limited", 7200) - at == timedelta(hours=2)
    assert next_attempt(at, 3, "rate_limited", 60) - at == timedelta(minutes=100)
    # a failure that never reached the CA does not back off
    assert next_attempt(at, 5, "dns_not_ready") is None


def test_ari_moment_and_reasons() -> None:
    from certcli.renewal import ari_moment, ari_reason, renewal_reason

    start, end = T0 + timedelta(days=60), T0 + timedelta(days=62)
    assert ari_moment(start, end, 0.5) == T0 + timedelta(days=61)
    assert ari_moment(start, end, 7) == end
    info = _info()  # 90 days from T0
    chosen = T0 + timedelta(days=61)
    assert ari_reason(chosen, end, info, T0 + timedelta(days=30)) is None
    assert ari_reason(chosen, end, info, chosen) is not None
    # the window replaces the third-of-lifetime rule...
    assert (
        renewal_reason(
            info,
            ("example.com",),
            T0 + timedelta(days=61),
            ari=(T0 + timedelta(days=70), T0 + timedelta(days=71)),
        )
        is None
    )
    # ...but not the last twentieth of the lifetime (4.5 days of 90)
    late = T0 + timedelta(days=86)
    assert (
        ari_reason(T0 + timedelta(days=200), T0 + timedelta(days=201), info, late) == "4 days left"
    )


def test_ari_certificate_id() -> None:
    from cryptography import x509 as cx

    from certcli.x509 import ari_cert_id
    from tests.lab.localca import LocalCA

    issued = LocalCA(intermediates=0).issue(["x.example.com"])
    assert ari_cert_id(issued.cert) is None  # the test CA sets no AKI
    # RFC 9773's example: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4,
    # serial 00:87:65:43:21 -> aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE
    from unittest import mock

    cert = mock.Mock()
    cert.serial_number = 0x87654321
    aki = cx.AuthorityKeyIdentifier(
        bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4"), None, None
    )
    cert.extensions.get_extension_for_class.return_value.value = aki
    assert ari_cert_id(cert) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def test_not_due_until_is_the_first_moment_a_reason_appears() -> None:
    from certcli.renewal import not_due_until, renewal_reason

    info = _info()
    second = timedelta(seconds=1)
    windows: list[tuple[datetime, datetime] | None] = [
        None,
        (T0 + timedelta(days=70), T0 + timedelta(days=71)),  # ARI: the chosen moment
        (T0 + timedelta(days=200), T0 + timedelta(days=201)),  # ARI: the last twentieth
    ]
    for ari in windows:
        until = not_due_until(info, ari)
        assert renewal_reason(info, ("example.com",), until - second, ari=ari) is None
        assert renewal_reason(info, ("example.com",), until, ari=ari) is not None


@pytest.mark.parametrize(
    ("left", "notified", "due"),
    [
        (timedelta(days=40), None, None),
        (timedelta(days=30), None, None),  # exactly 30 days left: not yet fewer than 30
        (timedelta(days=30) - timedelta(seconds=1), None, 30),
        (timedelta(days=29), 30, None),  # told already
        (timedelta(days=20), None, 30),
        (timedelta(days=13, hours=23), 30, 14),
        (timedelta(days=13), 14, None),
        (timedelta(days=5), 30, 7),  # several crossed since the last run: one notice, the latest
        (timedelta(days=2), 7, 3),
        (timedelta(hours=23), 3, 1),
        (timedelta(hours=1), 1, None),
        (timedelta(0), 1, 0),  # expired
        (timedelta(0), None, 0),
        (-timedelta(days=9), 0, None),
        (-timedelta(days=9), 14, 0),
    ],
)
def test_an_expiry_notice_is_due_once_per_threshold(
    left: timedelta, notified: int | None, due: int | None
) -> None:
    assert expiry_notice(T0 + left, T0, notified) == due


def test_renewing_twice_a_day_notifies_each_threshold_exactly_once() -> None:
    not_after = T0 + timedelta(days=45)
    sent: list[int] = []
    notified = None
    for run in range(2 * 50):  # every 12 hours, until past the expiry
        notice = expiry_notice(not_after, T0 + timedelta(hours=12 * run), notified)
        if notice is not None:
            sent.append(notice)
            notified = notice
    assert sent == list(EXPIRY_NOTICES) == [30, 14, 7, 3, 1, 0]


@pytest.mark.parametrize(
    ("state", "live", "pending"),
    [
        ({}, 2, False),
        ({"deploy_failed": {"version": 2, "at": "x", "error": "e"}}, 2, True),
        ({"deploy_failed": {"version": 1, "at": "x", "error": "e"}}, 2, False),  # superseded
        ({"deploy_failed": {"version": 2}}, None, False),
        ({"deploy_failed": "garbled"}, 2, False),
    ],
)
def test_a_failed_deploy_is_pending_for_the_live_version_only(
    state: dict, live: int | None, pending: bool
) -> None:
    assert deploy_pending(state.get("deploy_failed"), live) is pending


def test_a_certificate_that_misses_a_domain_is_a_mismatch() -> None:
    info = _info()  # covers example.com only
    now = T0 + timedelta(days=1)
    assert lineage_statuses(info, now, domains=("example.com",)) == [LineageStatus.ACTIVE]
    assert lineage_statuses(info, now, domains=("EXAMPLE.com.",)) == [LineageStatus.ACTIVE]
    missing = ("example.com", "www.example.com")
    assert lineage_statuses(info, now, domains=missing) == [LineageStatus.MISMATCH]
    # beside other statuses, in its place; no certificate at all is Pending, not a mismatch
    late = T0 + timedelta(days=80)
    assert lineage_statuses(info, late, failed=True, domains=missing) == [
        LineageStatus.FAILED,
        LineageStatus.MISMATCH,
        LineageStatus.EXPIRING,
    ]
    assert lineage_statuses(None, now, domains=missing) == [LineageStatus.PENDING]


def test_damaged_comes_first_and_is_never_pending() -> None:
    assert lineage_statuses(None, T0, damaged=True) == [LineageStatus.DAMAGED]
    assert lineage_statuses(_info(), T0 + timedelta(days=95), damaged=True) == [
        LineageStatus.DAMAGED,
        LineageStatus.EXPIRED,
    ]


def test_not_yet_covered_is_a_reason_to_renew_in_the_domains_order() -> None:
    from certcli.renewal import renewal_reason

    info = _info()
    now = T0 + timedelta(days=1)
    assert renewal_reason(info, ("example.com",), now) is None
    reason = renewal_reason(info, ("b.example.com", "example.com", "a.example.com"), now)
    assert reason == "not yet covered: b.example.com, a.example.com"


def test_the_last_twentieth_of_a_lifetime() -> None:
    assert last_twentieth(_info(90)) == T0 + timedelta(days=85.5)
    assert last_twentieth(_info(6)) == T0 + timedelta(days=5.7)


def test_renew_at_is_the_ari_moment_else_the_lifetime_rule() -> None:
    from certcli.renewal import renew_at, stored_ari

    info, names = _info(), ("example.com",)
    before = T0 + timedelta(days=1)
    assert renew_at(info, names, before) == T0 + timedelta(days=60)  # a third of 90 left
    ari = stored_ari(
        {
            "url": "u",
            "start": "2026-03-01T00:00:00Z",
            "end": "2026-03-03T00:00:00Z",
            "fraction": 0.25,
        }
    )
    assert ari == (datetime(2026, 3, 1, 12, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
    assert renew_at(info, names, before, ari=ari) == datetime(2026, 3, 1, 12, tzinfo=UTC)
    # a window past the last twentieth: that one comes first, whatever ARI says
    late = (T0 + timedelta(days=89), T0 + timedelta(days=90))
    assert renew_at(info, names, before, ari=late) == last_twentieth(info)
    # due by time: the moment it became due; due for another reason: a moment in the past
    # that stays put (the certificate's start; without one, the last attempt, else now)
    after = T0 + timedelta(days=70)
    assert renew_at(info, names, after) == T0 + timedelta(days=60)
    assert renew_at(info, names, before, revoked_serial="1") == info.not_before
    assert renew_at(info, (*names, "www.example.com"), before) == info.not_before
    assert renew_at(None, names, before) == before
    assert renew_at(None, names, before, tried_at=T0) == T0
    # no window yet, or none kept for a CA without ARI
    assert stored_ari({"url": "u", "next_check": "2026-03-01T00:00:00Z"}) is None
    assert stored_ari(None) is None and stored_ari({}) is None


def test_records_ending_before_the_renewal_and_ones_past_any_date() -> None:
    """state.json's valid_until comes from a DNS record's persistUntil: one past any date a
    datetime holds (a zone's typo, or a hostile one) never ends, and never raises after the
    certificate was issued."""
    from certcli.renewal import records_ending

    soon, later = T0 + timedelta(days=10), T0 + timedelta(days=100)
    sans = {
        "soon.test": {"valid_until": int(soon.timestamp())},
        "later.test": {"valid_until": int(later.timestamp())},
        "forever.test": {"valid_until": None},
        "huge.test": {"valid_until": 10**20},
        "nan.test": {"valid_until": float("nan")},
        "inf.test": {"valid_until": float("inf")},
        "bool.test": {"valid_until": True},
        "odd.test": "x",
    }
    assert records_ending({"sans": sans}, T0 + timedelta(days=60)) == [("soon.test", soon)]
    assert records_ending(None, T0) == [] and records_ending({"sans": None}, T0) == []


def test_the_record_expiring_event_says_its_own_note_when_renew_added_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """renew appends what it repaired to an outcome's notes after the attempt's note: the
    record_expiring event still says the record's note, not the last one."""
    from certcli.flows import notify as notify_flow
    from certcli.flows.outcome import RECORD_ENDING, Outcome
    from certcli.models import Action

    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(
        notify_flow, "notify_event", lambda config, o, kind, text: sent.append((kind, text)) or []
    )
    said = "the record that validates a.test at 2027-01-01T00:00:00Z ends before the next renewal"
    outcome = Outcome(
        "a.test",
        Action.RENEWED,
        extra={"event": RECORD_ENDING, "said": said},
        notes=(said, "repaired live: it pointed at a missing version"),
    )
    assert notify_flow.notify_run(None, {}, [outcome]) == []  # type: ignore[arg-type]
    assert sent == [(RECORD_ENDING, f"certcli: a.test: {said}")]
