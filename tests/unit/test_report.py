"""What `status` computes for a lineage, as a pure function of the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certcli import domains
from certcli.models import CertInfo, LineageSettings, LineageStatus, Mode
from certcli.report import lineage_report
from certcli.storage.files import Store

FILES = {"cert.pem": b"c", "chain.pem": b"c", "fullchain.pem": b"cc", "privkey.pem": b"k"}


def test_a_lineage_with_thousands_of_sans_is_reported_in_linear_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # counted, not timed: matching every domain against every SAN (2,001 SANs took 41 s)
    # calls is_ip for each pair; status must look each domain up once
    names = ("example.com", *(f"host{i}.example.com" for i in range(1500)), "*.example.org")
    now = datetime.now(UTC)
    cert = CertInfo("example.com", names, "CA", now - timedelta(days=1), now + timedelta(days=80),
                    "01", "AA", "ec-p256")  # fmt: skip
    store = Store(tmp_path / "config")
    store.ensure()
    store.write_settings(LineageSettings("big", names, Mode.CUSTOM))
    store.add_version("big", FILES, {"certificate": cert.to_json()})
    calls = 0
    real = domains.is_ip

    def counted(name: str) -> bool:
        nonlocal calls
        calls += 1
        return real(name)

    monkeypatch.setattr(domains, "is_ip", counted)
    report = lineage_report(store, "big", now)
    assert report.statuses == (LineageStatus.ACTIVE,)
    assert len(report.sans) == len(names)
    assert all(s.ssl_status.value == "covered" for s in report.sans)
    assert calls <= 4 * len(names), calls


def test_status_says_when_renew_renews_and_why_the_ca_chose_it(tmp_path: Path) -> None:
    from certcli.models import LineageState

    now = datetime(2026, 3, 1, tzinfo=UTC)
    cert = CertInfo("a.example.com", ("a.example.com",), "CA", now - timedelta(days=10),
                    now + timedelta(days=80), "01", "AA", "ec-p256")  # fmt: skip
    store = Store(tmp_path / "config")
    store.ensure()
    for name, mode in (("auto", Mode.AUTO), ("ari", Mode.AUTO), ("up", Mode.CUSTOM)):
        store.write_settings(LineageSettings(name, ("a.example.com",), mode))
        store.add_version(name, FILES, {"certificate": cert.to_json()})
    explained = "https://ca.example/why/incident-42"
    window = {"url": "https://ca.example/ari/x", "start": "2026-04-01T00:00:00Z",
              "end": "2026-04-02T00:00:00Z", "fraction": 0.5, "next_check": "2026-03-02T00:00:00Z",
              "explanation_url": explained}  # fmt: skip
    store.update_state("ari", lambda state: LineageState(ari=window))

    plain = lineage_report(store, "auto", now)
    assert plain.renew_at == cert.not_after - timedelta(days=30)  # a third of 90 days left
    assert plain.to_json()["renew_at"] == "2026-04-20T00:00:00Z"
    assert plain.ari_explanation_url is None
    ari = lineage_report(store, "ari", now)
    assert ari.to_json()["renew_at"] == "2026-04-01T12:00:00Z"
    assert ari.to_json()["ari_explanation_url"] == explained
    uploaded = lineage_report(store, "up", now)
    assert uploaded.renew_at is None and uploaded.to_json()["renew_at"] is None
