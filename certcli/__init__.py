"""certcli: a command-line ACME client."""

__version__ = "0.1.0"
