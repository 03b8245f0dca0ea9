"""Hosted pages carry the configured brand (name, logo, colour) under the strict CSP."""

from __future__ import annotations

from idp import create_app
from idp.extensions import db
from tests.conftest import build_app


def test_brand_name_logo_and_colour(tmp_path):
    app = build_app(tmp_path, 5000)
    with app.app_context():
        db.engine.dispose()
    branded = create_app(
        {
            "BRAND_NAME": "Acme <ID>",
            "BRAND_LOGO_URL": "https://cdn.acme.test/logo.svg",
            "BRAND_PRIMARY_COLOR": "#aa0033",
            "ISSUER": "http://127.0.0.1:5000",
            "DATABASE_URL": app.config["DATABASE_URL"],
        },
        instance_path=tmp_path,
    )
    try:
        client = branded.test_client()
        page = client.get("/oidc/logout")  # any hosted page
        html = page.get_data(as_text=True)
        assert "Acme &lt;ID&gt;" in html and "<ID>" not in html
        assert 'src="https://cdn.acme.test/logo.svg"' in html
        assert (
            "img-src 'self' data: https://cdn.acme.test" in page.headers["Content-Security-Policy"]
        )
        css = client.get("/branding.css")
        assert css.mimetype == "text/css" and "--accent: #aa0033" in css.get_data(as_text=True)
        assert "--accent-text: #ffffff" in css.get_data(as_text=True)  # 7.4:1 on #aa0033
    finally:
        with branded.app_context():
            db.engine.dispose()


def test_button_text_contrasts_with_any_brand_colour():
    """WCAG 1.4.3: white on dark accents, black on light ones, 4.5:1 either way."""
    from idp.health import text_on

    assert text_on("#2457c5") == "#ffffff"
    assert text_on("#767676") == "#ffffff"  # 4.54:1, the lightest grey white text passes on
    assert text_on("#777777") == "#000000"  # 4.48:1 for white: black reads better
    assert text_on("#ffe680") == "#000000"
    assert text_on("#ffffff") == "#000000"
