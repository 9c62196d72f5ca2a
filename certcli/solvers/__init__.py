"""Challenge solvers: small present / wait / cleanup units that the engine drives for all
of an order's challenges at once (prepare all, answer all, clean up all, even on failure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Challenge:
    """One challenge to satisfy, in the terms a solver needs."""

    identifier: str  # the domain (with `*.` for a wildcard) or IP address
    type: str  # "http-01" or "dns-01"
    token: str
    key_authorization: str  # what an HTTP-01 file holds
    validation: str  # what the CA checks: the key authorization, or the DNS-01 TXT value


class Solver(Protocol):
    challenge_type: str

    def check(self) -> None:
        """Prove now, before any order, that presenting will work (a writable webroot,
        DNS credentials the server accepts)."""

    def present(self, challenges: list[Challenge]) -> None:
        """Make every challenge answerable (write files, add TXT records)."""

    def wait(self, challenges: list[Challenge]) -> None:
        """Return once the CA can see them (propagation); raise when it never will."""

    def cleanup(self, challenges: list[Challenge]) -> None:
        """Remove what `present` added, and only that. Never raises."""
