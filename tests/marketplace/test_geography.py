"""mfa-by-geography end to end, as an operator installs it (``idp marketplace install``), on a
server with a real GeoIP database (tests/geo/mmdb.py) behind a trusted proxy and real MFA:
a French login enrols an authenticator app, a US one does not, and user-claims chained after
it still enriches the tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.geo.live import NS, asks_for_mfa, browser_from, geo_server, start_login
from tests.geo.mmdb import BOSTON, PARIS
from tests.helpers import jwt_parts, redeem
from tests.marketplace.conftest import idp
from tests.mfa.test_totp import enrol, mfa_page, tokens_from


@pytest.fixture(scope="module")
def geo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with geo_server(tmp_path_factory, TRUSTED_PROXIES="127.0.0.1") as live:
        yield live


def _claims(tokens: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt_parts(tokens["id_token"])[1], jwt_parts(tokens["access_token"])[1]


def test_mfa_by_geography_then_user_claims(geo: LiveServer) -> None:
    geo.factory.clear_actions()
    idp(geo, "marketplace", "install", "mfa-by-geography", "--bind")  # Europe by default
    idp(geo, "marketplace", "install", "user-claims", "--bind", "--config", f"namespace={NS}/")
    client = geo.factory.gen_client()
    result, _ = start_login(browser_from(geo, None), client, geo.factory.gen_user())
    assert result.code  # loopback, no location: nothing required (when_unknown is off)

    paris_user = geo.factory.gen_user()
    browser = browser_from(geo, PARIS)
    result, verifier = start_login(browser, client, paris_user)
    assert asks_for_mfa(result)
    _secret, _codes, location = enrol(browser, mfa_page(result))
    assert location
    id_claims, at_claims = _claims(tokens_from(geo, client, location, verifier))
    assert "mfa" in id_claims["amr"] and id_claims[f"{NS}/secretIdentity"] == "Batman"
    assert at_claims[f"{NS}/email"] == paris_user.email

    boston_user = geo.factory.gen_user()
    result, verifier = start_login(browser_from(geo, BOSTON), client, boston_user)
    assert result.code
    id_claims, at_claims = _claims(redeem(geo.url, client, result.code, verifier).json())
    assert "mfa" not in id_claims["amr"] and at_claims[f"{NS}/email"] == boston_user.email


def test_countries_instead_of_continents(geo: LiveServer) -> None:
    geo.factory.clear_actions()
    idp(geo, "marketplace", "install", "mfa-by-geography", "--bind",
        "--config", "continents=", "--config", "countries=us")  # fmt: skip
    client = geo.factory.gen_client()
    result, _ = start_login(browser_from(geo, BOSTON), client, geo.factory.gen_user())
    assert asks_for_mfa(result)
    result, _ = start_login(browser_from(geo, PARIS), client, geo.factory.gen_user())
    assert result.code
