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


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("BRAND_PRIMARY_COLOR", "red;}body{display:none"),
        ("BRAND_PRIMARY_COLOR", "#12345"),
        ("BRAND_LOGO_URL", "javascript:alert(1)"),
        ("BRAND_LOGO_URL", "http://cdn.example.com/logo.png"),
        ("BRAND_LOGO_URL", 'https://cdn.example.com/a"onerror="x'),
        ("BRAND_LOGO_URL", "/static/../secret.key"),
    ],
)
def test_branding_that_could_inject_is_refused(tmp_path, key, value):
    with pytest.raises(ValueError, match=key):
        load_settings(tmp_path, {key: value})


def test_branding_accepted(tmp_path):
    ok = load_settings(
        tmp_path,
        {"BRAND_PRIMARY_COLOR": "#AA0033", "BRAND_LOGO_URL": "https://cdn.example.com/logo.svg"},
    )
    assert ok["BRAND_PRIMARY_COLOR"] == "#AA0033"


@pytest.mark.parametrize(
    ("issuer", "ok"),
    [
        ("https://login.example.com", True),
        ("http://localhost:5000", True),
        ("http://127.0.0.1:8080", True),
        ("http://login.example.com", False),
        ("ftp://login.example.com", False),
        ("https://login.example.com/?x=1", False),
    ],
)
def test_issuer_must_be_https_off_loopback(tmp_path, issuer, ok):
    if ok:
        assert load_settings(tmp_path, {"ISSUER": issuer})["ISSUER"] == issuer.rstrip("/")
    else:
        with pytest.raises(ValueError, match="ISSUER"):
            load_settings(tmp_path, {"ISSUER": issuer})


def test_plain_http_off_loopback_needs_an_explicit_opt_in(tmp_path):
    settings = {"ISSUER": "http://idp.internal", "INSECURE_HTTP_ALLOWED": True}
    assert load_settings(tmp_path, settings)["ISSUER"] == "http://idp.internal"
