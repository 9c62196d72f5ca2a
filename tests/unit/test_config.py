from __future__ import annotations

from pathlib import Path

import pytest

from certcli.config import config_dir, env_name, load_config, setting
from certcli.errors import StoreError


def test_precedence_flag_env_lineage_config_default(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"key_type": "rsa-2048", "dns": {"target": "a.example.net"}}
    lineage = {"key_type": "ec-p384"}
    assert setting("key_type", None, {}, "ec-p256") == "ec-p256"
    assert setting("key_type", None, config, "ec-p256") == "rsa-2048"
    assert setting("key_type", None, config, "ec-p256", lineage) == "ec-p384"
    monkeypatch.setenv("CERTCLI_KEY_TYPE", "rsa-4096")
    assert setting("key_type", None, config, "ec-p256", lineage) == "rsa-4096"
    assert setting("key_type", "rsa-3072", config, "ec-p256", lineage) == "rsa-3072"
    assert setting("dns.target", None, config, None) == "a.example.net"


def test_env_names() -> None:
    assert env_name("dns.target") == "CERTCLI_DNS_TARGET"
    assert env_name("server") == "CERTCLI_SERVER"


def test_config_dir_flag_beats_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CERTCLI_CONFIG_DIR", str(tmp_path / "env"))
    assert config_dir(None) == tmp_path / "env"
    assert config_dir(tmp_path / "flag") == tmp_path / "flag"


def test_broken_config_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("key_type = [")
    with pytest.raises(StoreError, match=r"config\.toml"):
        load_config(tmp_path)
    assert load_config(tmp_path / "absent") == {}
