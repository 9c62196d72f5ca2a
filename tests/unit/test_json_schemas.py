"""The schemas of `--json` output themselves: valid, complete, consistent with each other and
with the commands that exist. (Real output is validated in tests/integration.)"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.jsonschemas import COMMAND_SCHEMAS, SCHEMAS_DIR, load_schema, problems, schema_files

FILES = [path.name for path in schema_files()]


def _objects(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sub-schema that declares properties, with where it is."""
    if isinstance(node, dict):
        if "properties" in node and node.get("type") == "object":
            yield where or "(top)", node
        for key, value in node.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{where}/{i}")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_there_are_schemas() -> None:
    assert len(FILES) >= 10, FILES


@pytest.mark.parametrize("file", FILES)
def test_each_schema_is_valid_draft_2020_12(file: str) -> None:
    schema = load_schema(file)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/docs/schemas/{file}")
    assert schema["title"].startswith("certcli ") and schema["description"]


@pytest.mark.parametrize("file", FILES)
def test_objects_list_their_fields_and_allow_more(file: str) -> None:
    """The contract: every field documented and typed, the stable ones required, and room
    for fields a later version adds."""
    objects = list(_objects(load_schema(file)))
    assert objects
    for where, node in objects:
        assert node.get("additionalProperties") is True, where
        assert set(node["required"]) <= set(node["properties"]), where
        assert node["required"], where


@pytest.mark.parametrize("file", FILES)
def test_references_stay_inside_the_file(file: str) -> None:
    """Each schema is usable on its own: no reference to another file or URL."""
    schema = load_schema(file)
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/"), ref
        assert ref.removeprefix("#/$defs/") in schema.get("$defs", {}), ref


def test_shared_definitions_are_the_same_everywhere() -> None:
    """A SAN or a RESULT means one thing in every document that holds one."""
    seen: dict[str, tuple[str, Any]] = {}
    for file in FILES:
        for name, definition in load_schema(file).get("$defs", {}).items():
            first_file, first = seen.setdefault(name, (file, definition))
            assert definition == first, f"$defs/{name} differs in {file} and {first_file}"
    assert {"san", "result", "lineage"} <= set(seen)


def _commands(group: Any, prefix: str = "") -> Iterator[str]:
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            yield from _commands(command, path + " ")
        else:
            yield path


def test_every_command_has_a_schema_and_every_schema_a_command() -> None:
    import typer

    from certcli.cli.app import build

    assert set(_commands(typer.main.get_command(build()))) == set(COMMAND_SCHEMAS)
    assert set(COMMAND_SCHEMAS.values()) == set(FILES)


def test_docs_link_every_schema() -> None:
    text = (SCHEMAS_DIR.parent / "json.md").read_text()
    for file in FILES:
        assert f"(schemas/{file})" in text, file


# -- the schemas say no to what breaks the contract ----------------------------------------

_RESULT = {
    "name": "x.example",
    "action": "issued",
    "domains": ["x.example"],
    "version": 1,
    "reason": None,
    "not_after": "2026-01-01T00:00:00Z",
    "serial": "1f",
    "fingerprint_sha256": ":".join(["AB"] * 32),
    "error": None,
    "error_kind": None,
    "sans": [],
    "problems": [],
    "deploy_error": None,
    "notes": [],
}


def test_a_result_is_checked_field_by_field() -> None:
    assert problems("issue", {"results": [_RESULT], "problems": []}) == []
    assert problems("renew", {"results": [{**_RESULT, "extra": 1}], "problems": []}) == []
    deployed = {**_RESULT, "action": "deployed", "deploy_error": "the deploy hook `x` failed"}
    assert problems("renew", {"results": [deployed], "problems": ["x: it failed"]}) == []
    bad = [
        {**_RESULT, "action": "done"},
        {**_RESULT, "version": None},  # issued without a version
        {**_RESULT, "action": "failed", "error": None},  # failed without saying why
        {**_RESULT, "not_after": "2026-01-01 00:00:00+00:00"},  # not RFC 3339 in UTC
        {**_RESULT, "fingerprint_sha256": "ab:cd"},
        {k: v for k, v in _RESULT.items() if k != "error_kind"},
        {**_RESULT, "action": "deployed", "version": None},  # the hook of which version?
    ]
    for result in bad:
        assert problems("issue", {"results": [result], "problems": []}), result
    assert problems("renew", {"results": [_RESULT]})  # problems is required


def test_upload_version_follows_changed() -> None:
    document = {
        "name": "x.example",
        "changed": True,
        "version": 2,
        "completed_csr": False,
        "added": [],
        "removed": [],
        "sans": ["x.example"],
        "not_after": "2026-01-01T00:00:00Z",
        "fingerprint_sha256": ":".join(["0A"] * 32),
        "warnings": [],
    }
    assert problems("upload", document) == []
    assert problems("upload", {**document, "changed": False, "version": None}) == []
    assert problems("upload", {**document, "version": None})
    assert problems("upload", {**document, "changed": False})


def test_toml_dates_become_rfc_3339_text() -> None:
    from certcli.cli.output import json_default

    assert json_default(datetime.date(1979, 5, 27)) == "1979-05-27"
    assert json_default(datetime.time(7, 32)) == "07:32:00"
    with pytest.raises(TypeError):
        json_default(object())
