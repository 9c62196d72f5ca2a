"""Shell completion: the committed scripts are current, bash really completes with them, and
the answers certcli gives at each Tab come fast, without the ACME stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from certcli.cli.app import COMMANDS
from tests.conftest import CERTCLI

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {"bash": "certcli.bash", "zsh": "_certcli", "fish": "certcli.fish"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CERTCLI_", "_CERTCLI"))}
    return {**env, **extra}


@pytest.mark.parametrize("shell", SCRIPTS)
def test_the_committed_script_is_what_certcli_generates(shell: str, tmp_path: Path) -> None:
    fresh = tmp_path / SCRIPTS[shell]
    with fresh.open("w") as handle:
        subprocess.run(
            [CERTCLI], stdout=handle, env=_env(_CERTCLI_COMPLETE=f"{shell}_source"), check=True
        )
    committed = ROOT / "completions" / SCRIPTS[shell]
    assert committed.read_text() == fresh.read_text(), (
        f"completions/{SCRIPTS[shell]} is stale: run `make completions` and commit it"
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with two lineages (their names are all completion reads)."""
    for name in ("alpha.example.com", "beta.example.com"):
        (tmp_path / "store" / "certs" / name).mkdir(parents=True)
        (tmp_path / "store" / "certs" / name / "lineage.toml").write_text("")
    (tmp_path / "www").mkdir()
    (tmp_path / "www2").mkdir()
    (tmp_path / "cert.pem").write_text("")
    return tmp_path / "store"


BASH_DRIVER = r"""
source "$SCRIPT"
complete_line() {  # the words of a command line, the last one being completed
    COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=()
    _certcli_complete certcli "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf '%s\n' "$(printf '%s\n' "${COMPREPLY[@]}" | sort | paste -sd ' ')"
}
complete -p certcli
"""


def test_bash_completes_commands_options_and_values(store: Path) -> None:
    lines = {
        "commands": "certcli ''",
        "prefix": "certcli sta",
        "subcommand": "certcli san ''",
        "options": "certcli download x --in",
        "global_after_command": "certcli status --j",
        "values": "certcli download x --what ''",
        "key_types": "certcli issue a.example.com --key-type ec",
        "lineages": f"certcli --config-dir {store} renew ''",
        "lineages_after": f"certcli revoke --config-dir {store} b",
        "dirs": "certcli issue x.example.com --webroot ww",
        "files": "certcli upload x --cert ce",
    }
    script = BASH_DRIVER + "".join(f"complete_line {line}\n" for line in lines.values())
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        cwd=store.parent,
        env=_env(SCRIPT=str(ROOT / "completions" / "certcli.bash"), PATH=_path()),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    registered, *answers = proc.stdout.splitlines()
    assert registered == "complete -F _certcli_complete certcli"
    got = dict(zip(lines, answers, strict=True))
    assert got["commands"] == " ".join(sorted(COMMANDS))  # every one, built for the Tab
    assert got["prefix"] == "status"
    assert got["subcommand"] == "add list remove"
    assert got["options"] == "--include-key"
    assert got["global_after_command"] == "--json"
    assert got["values"] == "bundle cert chain fullchain key pkcs12"
    assert got["key_types"] == "ec-p256 ec-p384"
    assert got["lineages"] == "alpha.example.com beta.example.com"
    assert got["lineages_after"] == "beta.example.com"
    assert got["dirs"] == "www www2"
    assert got["files"] == "cert.pem"


def _path() -> str:
    """certcli first on PATH, as an installed one would be."""
    return f"{CERTCLI.parent}{os.pathsep}{os.environ.get('PATH', '')}"


def _answer(shell: str, *words: str, **env: str) -> list[str]:
    proc = subprocess.run(
        [CERTCLI],
        capture_output=True,
        text=True,
        env=_env(
            _CERTCLI_COMPLETE=f"{shell}_complete",
            COMP_WORDS="\n".join(words),
            COMP_CWORD=str(len(words) - 1),
            **env,
        ),
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_zsh_and_fish_get_descriptions_and_path_requests(store: Path) -> None:
    assert _answer("zsh", "certcli", "dow") == [
        "plain",
        "download:Write the live certificate, chain or key;...",
    ]
    assert _answer("fish", "certcli", "status", "--fail") == [
        "plain",
        "--fail-on\tExit 1 when a lineage is expired, expiring, dns, mismatch, damaged or any "
        "(anything not active).",
    ]
    assert _answer("zsh", "certcli", "issue", "--webroot", "") == ["files"]
    assert _answer("fish", "certcli", "delete", "a", CERTCLI_CONFIG_DIR=str(store)) == [
        "plain",
        "alpha.example.com",
    ]


def test_a_request_that_is_not_one_says_what_to_use() -> None:
    proc = subprocess.run(
        [CERTCLI], capture_output=True, text=True, env=_env(_CERTCLI_COMPLETE="tcsh_source")
    )
    assert proc.returncode == 2
    assert "bash_source, zsh_source or fish_source" in proc.stderr


PROBE = """
import json, sys
from certcli.cli.main import run
code = run([])
roots = {m.split(".")[0] for m in sys.modules}
heavy = sorted(roots & {"acme", "josepy", "dns", "cryptography", "requests", "rich"})
print(json.dumps({"code": code, "heavy": heavy}))
"""


def test_answering_a_tab_loads_no_heavy_module(store: Path) -> None:
    for words in ("certcli\nst", "certcli\nrenew\n", "certcli\ndownload\nx\n--what\n"):
        proc = subprocess.run(
            [sys.executable, "-c", PROBE],
            capture_output=True,
            text=True,
            env=_env(
                _CERTCLI_COMPLETE="bash_complete",
                COMP_WORDS=words,
                COMP_CWORD=str(words.count("\n")),
                CERTCLI_CONFIG_DIR=str(store),
            ),
            check=True,
        )
        assert json.loads(proc.stdout.splitlines()[-1]) == {"code": 0, "heavy": []}
