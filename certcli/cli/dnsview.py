"""How a DNS diagnosis is shown: a table of SANs, then the exact records to create."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from certcli.cli.output import Output

LABELS = {
    "valid": "Valid",
    "missing": "Missing",
    "wrong": "Wrong",
    "duplicate": "Duplicate",
    "error": "Error",
}
STYLES = {"valid": "green", "error": "yellow"}


def render_diagnoses(out: Output, diagnoses: Sequence[Any]) -> None:
    if out.json_mode or not diagnoses:
        return
    out.table(
        ["SAN", "DNS Status", "Challenge name", "Found"],
        [[d.san, LABELS[d.status.value], d.challenge_name, d.found or "-"] for d in diagnoses],
        [[None, STYLES.get(d.status.value, "red"), None, None] for d in diagnoses],
    )
    todo = [d for d in diagnoses if d.status.value in ("missing", "wrong", "duplicate")]
    if todo and todo[0].expected_record is not None:
        _render_records(out, todo)
    elif todo:
        out.line(f"\nDelegate each name to {todo[0].expected_target} (zone-file syntax):")
        for record in dict.fromkeys(d.record for d in todo):
            out.line(f"  {record}")
        notes = []  # once per challenge name: an apex and its wildcard share one
        for d in todo:
            if d.status.value == "duplicate":
                notes.append(f"  ; and remove the TXT record at {d.challenge_name}: {d.found}")
            elif d.status.value == "wrong":
                notes.append(
                    f"  ; replacing the CNAME of {d.challenge_name} that ends at {d.found}"
                )
        for note in dict.fromkeys(notes):
            out.line(note)
    failed = [d for d in diagnoses if d.status.value == "error"]
    if failed:
        out.line(
            "\nThe lookup failed (which says nothing of the records): check that "
            "[dns] resolvers answer (config.toml or CERTCLI_DNS_RESOLVERS; unset, the system's):"
        )
        for line in dict.fromkeys(f"  {d.challenge_name}: {d.found}" for d in failed):
            out.line(line)


def _render_records(out: Output, todo: Sequence[Any]) -> None:
    """A method's own records (dns-persist-01's TXT), each once, and why each name needs it."""
    out.line("\nPublish once, at each name's DNS provider (zone-file syntax):")
    for record in dict.fromkeys(d.record for d in todo):
        out.line(f"  {record}")
    for note in dict.fromkeys(f"  ; {d.san}: {d.reason}" for d in todo if d.reason):
        out.line(note)


def render_published(
    out: Output, published: Sequence[tuple[str, str]], delegate: Sequence[str]
) -> None:
    """What `dns check --publish` wrote, and the CNAME records it needs first."""
    if out.json_mode:
        return
    for name, value in published:
        out.line(f'Published at {name}: TXT "{value}"')
    if delegate:
        out.line("Not delegated, so not published: create (zone-file syntax)")
        for record in delegate:
            out.line(f"  {record}")
        out.line("or publish the TXT record below yourself.\n")


#: How a CAA verdict that needs a word is introduced (`allowed` and `none` need none).
CAA_SAID = {
    "caa_forbids": "CAA forbids",
    "unknown": "CAA not judged for",
    "error": "CAA lookup failed for",
}


def render_caa(out: Output, findings: Sequence[tuple[str, dict[str, Any] | None]]) -> None:
    """A line per SAN whose CAA verdict is not plain (forbids, unknown, error), with the
    record to add; `findings` pairs a label (the SAN, or `lineage: SAN`) with its JSON."""
    if out.json_mode:
        return
    lines = []
    for label, found in findings:
        said = CAA_SAID.get(found["status"]) if found else None
        if found is None or said is None:
            continue
        lines.append(f"{said} {label}: {found['reason']}")
        if found.get("record"):
            lines.append(f"  add: {found['record']}")
    if lines:
        out.line()
        for line in lines:
            out.line(line)
