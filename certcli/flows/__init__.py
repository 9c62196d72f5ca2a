"""The application: what each command does, between the command line and the engine.

A flow reads the clock once at its entry and passes `now` to every decision of
certcli.renewal; randomness (jitter, the moment in an ARI window) comes from an `rng` the
caller may give. Dependencies point one way: plan and session first, then dns, ari, notify
and deploy, then attempt, then the entry points (issue, renew, sans, revoke, account).
"""
