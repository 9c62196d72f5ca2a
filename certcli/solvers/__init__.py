"""Temporary: the old home of certcli/challenges, kept for issuance.py and engine.py until
they move (then this package goes). `certcli.solvers.dns01` and `.http01` name the modules
of certcli/challenges, whose names they import: DelegationSolver, DnsSettings, make_provider,
WebrootSolver, sweep."""

import sys

from certcli.challenges import Challenge, Solver, dns01, http01

sys.modules[f"{__name__}.dns01"] = dns01
sys.modules[f"{__name__}.http01"] = http01

__all__ = ["Challenge", "Solver"]
