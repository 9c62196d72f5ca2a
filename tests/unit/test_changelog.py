"""CHANGELOG.md keeps the Keep a Changelog 1.1.0 shape that release tooling and readers rely
on: the header, Unreleased first, dated versions newest first, the standard sections."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parents[2] / "CHANGELOG.md"
KINDS = ["Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"]  # in this order
VERSION = re.compile(r"## \[(\d+\.\d+\.\d+(?:[-+.][0-9A-Za-z.]+)?)\] - (\d{4}-\d{2}-\d{2})")


def test_the_changelog_follows_keep_a_changelog() -> None:
    lines = CHANGELOG.read_text().splitlines()
    assert lines[0] == "# Changelog"
    assert "keepachangelog.com/en/1.1.0" in "\n".join(lines[:6])
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[0] == "## [Unreleased]"
    released = [VERSION.fullmatch(h) for h in headings[1:]]
    assert all(released), [h for h, m in zip(headings[1:], released, strict=True) if not m]
    dates = [date.fromisoformat(m.group(2)) for m in released if m]
    assert dates == sorted(dates, reverse=True), "newest version first"

    section = None
    seen: set[str] = set()
    for line in lines:
        if line.startswith("## "):
            section, seen = line, set()
        elif line.startswith("### "):
            kind = line.removeprefix("### ")
            assert kind in KINDS, f"{section}: unknown kind {kind!r}"
            assert kind not in seen, f"{section}: {kind} twice"
            assert all(KINDS.index(k) < KINDS.index(kind) for k in seen), f"{section}: order"
            seen.add(kind)
        elif line.startswith("- "):
            assert section and seen, f"an entry outside a section: {line}"

    # Link references, once there are any, name every version heading.
    refs = {m.group(1) for m in re.finditer(r"^\[([^\]]+)\]: \S+$", "\n".join(lines), re.M)}
    if refs:
        assert {h[4 : h.index("]")] for h in headings} <= refs
