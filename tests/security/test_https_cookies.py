"""Under an https issuer every cookie is Secure (and the CSRF cookie takes the __Host- prefix).

Its own module: it builds its own app, which on PostgreSQL resets the shared test schema."""

from __future__ import annotations

from tests.helpers import auth_params, login_form_action, pkce


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
        assert resp.status_code == 200  # the login form, shown by /authorize itself
        assert login_form_action(resp.get_data(as_text=True))
        cookies = resp.headers.getlist("Set-Cookie")  # the form's CSRF cookie comes too now
        # no sibling can plant it
        assert any(c.startswith("__Host-idp_interaction=") for c in cookies), cookies
        for cookie in cookies:
            assert cookie.startswith("__Host-"), cookie
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
            assert "Path=/" in cookie and "Domain" not in cookie
        assert app.config["SESSION_COOKIE_NAME"].startswith("__Host-")
    finally:
        with app.app_context():
            db.engine.dispose()
