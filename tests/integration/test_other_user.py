"""The second local user the security tests act as really is unprivileged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import OtherUser

pytestmark = pytest.mark.integration


def test_the_other_user_cannot_write_what_root_owns(
    other_user: OtherUser, other_owned: Path, shared_dir: Path
) -> None:
    assert other_user.uid != 0
    assert other_user.run("id", "-u").stdout.strip() == str(other_user.uid)
    other_user.sh(f"ln -s /etc/shadow {other_owned}/link")
    assert (other_owned / "link").lstat().st_uid == other_user.uid
    denied = other_user.sh(f"touch {shared_dir}/planted", check=False)
    assert denied.returncode != 0 and not (shared_dir / "planted").exists()
    assert other_user.run("cat", "/etc/shadow", check=False).returncode != 0
    assert os.stat(other_owned).st_uid == other_user.uid
