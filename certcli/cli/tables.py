"""Tables more than one command prints: the status labels, and a lineage's SANs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from certcli.cli.output import Output
    from certcli.report import LineageReport

LABELS = {
    "damaged": "Damaged",
    "mismatch": "Mismatch",
    "active": "Active",
    "pending": "Pending",
    "dns_missing": "DNS Missing",
    "dns_wrong": "DNS Wrong",
    "dns_duplicate": "DNS Duplicate",
    "expiring": "Expiring",
    "expired": "Expired",
    "failed": "Failed",
    "covered": "Covered",
    "not_covered": "Not covered",
}


def san_table(out: Output, r: LineageReport) -> None:
    """Each SAN with its SSL status and last DNS status (status NAME, san list)."""
    from certcli.cli.dnsview import LABELS as DNS_LABELS
    from certcli.cli.dnsview import STYLES as DNS_STYLES

    out.table(
        ["SAN", "SSL Status", "DNS Status", "Found"],
        [
            [
                s.name,
                LABELS[s.ssl_status.value],
                DNS_LABELS.get(s.dns_status or "", "not checked"),
                s.found or "-",
            ]
            for s in r.sans
        ],
        [
            [
                None,
                "green" if s.ssl_status.value == "covered" else "red",
                DNS_STYLES.get(s.dns_status, "red") if s.dns_status else None,
                None,
            ]
            for s in r.sans
        ],
    )
