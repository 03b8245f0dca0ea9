"""Under an https issuer every cookie is Secure (and the CSRF cookie takes the __Host- prefix).

Its own module: it builds its own app, which on PostgreSQL resets the shared test schema."""

from __future__ import annotations

from tests.helpers import auth_params, pkce


def test_cookies_are_secure_under_an_https_issuer(tmp_path):
    from idp.extensions import db
    from tests.conftest import build_app
    from tests.factories import Factory

    app = build_app(tmp_path, 443, ISSUER="https://login.example.test")
    try:
        client = Factory(app).gen_client()
        resp = app.test_client().get(
            "/authorize",
            base_url="https://login.example.test",
            query_string=auth_params(client, pkce()[1]),
        )
        assert resp.status_code == 303
        cookie = resp.headers["Set-Cookie"]
        assert cookie.startswith("__Host-idp_interaction=")  # no sibling can plant it
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Path=/" in cookie and "Domain" not in cookie
        assert app.config["SESSION_COOKIE_NAME"].startswith("__Host-")
    finally:
        with app.app_context():
            db.engine.dispose()
