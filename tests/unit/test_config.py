"""Configuration precedence: defaults < config.toml < IDP_* env < factory mapping."""

from __future__ import annotations

import pytest

from idp.config import load_settings


def test_precedence(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text('access_token_ttl = 120\nissuer = "https://a.test/"\n')
    settings = load_settings(tmp_path)
    assert settings["ACCESS_TOKEN_TTL"] == 120
    assert settings["ISSUER"] == "https://a.test"  # trailing slash dropped
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    monkeypatch.setenv("IDP_ACCESS_TOKEN_TTL", "300")
    assert load_settings(tmp_path)["ACCESS_TOKEN_TTL"] == 300
    assert load_settings(tmp_path, {"ACCESS_TOKEN_TTL": 5})["ACCESS_TOKEN_TTL"] == 5


def test_unknown_key_is_an_error(tmp_path):
    (tmp_path / "config.toml").write_text("acess_token_ttl = 1\n")
    with pytest.raises(ValueError, match="unknown setting"):
        load_settings(tmp_path)
