"""The sdist and the wheel, built offline from a copy of the tree, and the wheel installed into
a fresh virtualenv: only the certcli package ships, and --version comes from the metadata."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VERSION = "0.1.0.post42"  # set in the copy's pyproject.toml alone: the one source of the version
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".lab", ".bench", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and wheel of a copy of the tree, with the lab state a developer leaves."""
    base = tmp_path_factory.mktemp("packaging")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=_NOT_SOURCE)
    for leftover in (".lab/pebble.log", ".bench/certbot/bin/certbot", ".venv/pyvenv.cfg"):
        (src / leftover).parent.mkdir(parents=True, exist_ok=True)
        (src / leftover).write_text("not for the sdist\n")
    pyproject = src / "pyproject.toml"
    text = pyproject.read_text()
    assert '\nversion = "' in text
    pyproject.write_text(
        "\n".join(
            f'version = "{VERSION}"' if line.startswith("version = ") else line
            for line in text.splitlines()
        )
        + "\n"
    )
    # --no-isolation: setuptools comes from this environment, so no index is needed
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", base / "dist", src],
        check=True,
        capture_output=True,
    )
    return base / "dist"


def test_the_wheel_holds_only_the_package_and_its_metadata(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    assert wheel.name == f"certcli-{VERSION}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    info = f"certcli-{VERSION}.dist-info/"
    assert all(n.startswith(("certcli/", info)) for n in names), names
    assert {"certcli/py.typed", "certcli/cli/main.py", "certcli/cli/completion.py"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    metadata = zipfile.ZipFile(wheel).read(info + "METADATA").decode()
    assert f"\nVersion: {VERSION}\n" in metadata
    assert "\nLicense-Expression: MIT\n" in metadata
    assert info + "licenses/LICENSE" in names  # the licence text travels with the package
    assert "typer<0.29" in metadata.replace(" ", "")
    entry_points = zipfile.ZipFile(wheel).read(info + "entry_points.txt").decode()
    assert "certcli = certcli.cli.main:main" in entry_points


def test_the_sdist_holds_source_tests_docs_and_completions_but_no_lab_state(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    top = f"certcli-{VERSION}/"
    with tarfile.open(sdist) as archive:
        names = {n.removeprefix(top) for n in archive.getnames()}
    assert {
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "certcli/cli/main.py",
        "tests/conftest.py",
        "tests/lab/install-packages.sh",
        "docs/json.md",
        "completions/certcli.bash",
        "completions/_certcli",
        "completions/certcli.fish",
    } <= names
    assert not [n for n in names if n.split("/")[0] in (".lab", ".bench", ".venv", ".ci", ".git")]
    assert not [n for n in names if "__pycache__" in n]


def test_the_wheel_installs_into_a_fresh_venv_and_runs(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    subprocess.run([*pip, "install", "-q", "--no-index", "--no-deps", str(wheel)], check=True)
    certcli = venv / "bin" / "certcli"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CERTCLI_", "_CERTCLI"))}
    # --version needs no dependency at all: the fast path reads the metadata
    run = subprocess.run([certcli, "--version"], capture_output=True, text=True, env=env)
    assert (run.returncode, run.stdout, run.stderr) == (0, f"certcli {VERSION}\n", "")

    # The dependencies from this environment (no index here); certcli itself from the wheel.
    purelib = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    probe = "import certcli, sys; print(certcli.__file__); print(certcli.__version__)"
    out = subprocess.run(
        [venv / "bin" / "python", "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    ).stdout.split()
    assert out == [f"{purelib}/certcli/__init__.py", VERSION]
    env["CERTCLI_CONFIG_DIR"] = str(tmp_path / "store")
    status = subprocess.run([certcli, "status", "--json"], capture_output=True, text=True, env=env)
    assert status.returncode == 0, status.stderr
    completion = subprocess.run(
        [certcli],
        capture_output=True,
        text=True,
        env={
            **env,
            "_CERTCLI_COMPLETE": "bash_complete",
            "COMP_WORDS": "certcli\nsta",
            "COMP_CWORD": "1",
        },
    )
    assert completion.stdout == "plain\nstatus\n", completion.stderr


def test_pipx_installs_the_tree() -> None:
    """`pipx install .` as a user runs it, dependencies from pip's configured index; the pipx
    home is kept between runs (as `make pipx-check` keeps it) so that its venv is reused."""
    home = ROOT / ".pipx"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CERTCLI_", "_CERTCLI"))}
    env |= {"PIPX_HOME": str(home), "PIPX_BIN_DIR": str(home / "bin")}
    env["PIPX_MAN_DIR"] = str(home / "man")
    install = subprocess.run(
        [sys.executable, "-m", "pipx", "install", "--force", str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert install.returncode == 0, f"pipx install . failed:\n{install.stderr[-2000:]}"
    version = next(
        line.split('"')[1]
        for line in (ROOT / "pyproject.toml").read_text().splitlines()
        if line.startswith("version = ")
    )
    run = subprocess.run([home / "bin" / "certcli", "--version"], capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (0, f"certcli {version}\n")
