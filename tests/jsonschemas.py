"""The JSON Schemas of `--json` output (docs/schemas/) and which command prints which."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "docs" / "schemas"

#: Every command (its path below `certcli`) and the schema of what it prints with --json.
COMMAND_SCHEMAS: dict[str, str] = {
    "issue": "issue.schema.json",
    "renew": "renew.schema.json",
    "csr": "csr.schema.json",
    "upload": "upload.schema.json",
    "status": "status.schema.json",
    "download": "download.schema.json",
    "san add": "san-change.schema.json",
    "san remove": "san-change.schema.json",
    "san list": "san-list.schema.json",
    "dns check": "dns-check.schema.json",
    "revoke": "revoke.schema.json",
    "delete": "delete.schema.json",
    "account register": "account-register.schema.json",
    "account show": "account.schema.json",
    "account update": "account.schema.json",
    "account rollover": "account.schema.json",
    "account deactivate": "account.schema.json",
    "config get": "config.schema.json",
    "config set": "config.schema.json",
    "import certbot": "import-certbot.schema.json",
    "store migrate": "store-migrate.schema.json",
    "store copy": "store-copy.schema.json",
    "sync": "sync.schema.json",
}


def schema_files() -> list[Path]:
    return sorted(SCHEMAS_DIR.glob("*.schema.json"))


@cache
def load_schema(file: str) -> dict[str, Any]:
    return json.loads((SCHEMAS_DIR / file).read_text())


def validator(command: str) -> Draft202012Validator:
    """A validator for the --json output of `command` ("san add"), checking formats too."""
    return Draft202012Validator(
        load_schema(COMMAND_SCHEMAS[command]), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def problems(command: str, document: Any) -> list[str]:
    """Every way `document` breaks the schema of `command`, one line each (empty: valid)."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator(command).iter_errors(document)
    ]
