"""``event.request.geoip`` from the test database behind a trusted proxy, and the classic
chained flow: "require MFA by geography" (Europe), then custom claims, end to end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
import requests

from tests.conftest import LiveServer
from tests.geo.live import (
    NS,
    PROBE,
    PROBE_CLAIM,
    asks_for_mfa,
    browser_from,
    geo_server,
    install,
    start_login,
)
from tests.geo.mmdb import BOSTON, NOWHERE, PARIS
from tests.helpers import jwt_parts, redeem
from tests.mfa.test_totp import enrol, follow, mfa_page, post, tokens_from

pytestmark = pytest.mark.usefixtures("fresh_chain")


@pytest.fixture(scope="module")
def geo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with geo_server(tmp_path_factory, TRUSTED_PROXIES="127.0.0.1") as live:
        yield live


@pytest.fixture
def fresh_chain(geo: LiveServer) -> None:
    geo.factory.clear_actions()


def probe_login(geo: LiveServer, forwarded_for: str | None) -> dict[str, Any]:
    client, user = geo.factory.gen_client(), geo.factory.gen_user()
    result, verifier = start_login(browser_from(geo, forwarded_for), client, user)
    assert result.code, result.page[:300]
    tokens = redeem(geo.url, client, result.code, verifier).json()
    return dict(jwt_parts(tokens["id_token"])[1][PROBE_CLAIM])


def test_post_login_event_carries_the_client_location(geo: LiveServer) -> None:
    geo.factory.gen_action("probe", "post-login", PROBE)
    assert probe_login(geo, PARIS) == {
        "ip": PARIS,
        "geoip": {
            "country_code": "FR", "country_name": "France", "continent_code": "EU",
            "subdivision_code": "IDF", "subdivision_name": "Île-de-France", "city_name": "Paris",
            "latitude": 48.8566, "longitude": 2.3522, "time_zone": "Europe/Paris",
        },
    }  # fmt: skip
    assert probe_login(geo, NOWHERE) == {"ip": NOWHERE, "geoip": {}}  # not in the database
    assert probe_login(geo, None) == {"ip": "127.0.0.1", "geoip": {}}  # loopback: no place


def test_a_proxy_chain_is_read_from_the_right(geo: LiveServer) -> None:
    """The client wrote the left part; our proxy appended the address it saw."""
    geo.factory.gen_action("probe", "post-login", PROBE)
    assert probe_login(geo, f"{BOSTON}, {PARIS}")["geoip"]["country_code"] == "FR"
    assert probe_login(geo, f"{PARIS}, {BOSTON}")["geoip"]["country_code"] == "US"


def test_credentials_exchange_event_carries_the_location_too(geo: LiveServer) -> None:
    geo.factory.gen_action("probe", "credentials-exchange", PROBE)
    client, audience = geo.factory.m2m()
    resp = requests.post(
        f"{geo.url}/oauth/token", auth=client.basic, headers={"X-Forwarded-For": BOSTON},
        data={"grant_type": "client_credentials", "audience": audience},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    seen = jwt_parts(resp.json()["access_token"])[1][PROBE_CLAIM]
    assert seen["ip"] == BOSTON and seen["geoip"]["city_name"] == "Boston"


def test_a_french_login_gets_mfa_and_a_us_login_does_not(geo: LiveServer) -> None:
    install(geo, "mfa-by-geography")  # Europe by default
    client, user = geo.factory.gen_client(), geo.factory.gen_user()

    browser = browser_from(geo, PARIS)
    result, verifier = start_login(browser, client, user)
    assert asks_for_mfa(result) and "Set up a second step" in mfa_page(result)
    _secret, _codes, location = enrol(browser, mfa_page(result))
    assert location and location.startswith(client.redirect_uri)
    claims = jwt_parts(tokens_from(geo, client, location, verifier)["id_token"])[1]
    assert "mfa" in claims["amr"]

    # the same user, now enrolled, from Boston: no second step (MFA_POLICY=never here)
    result, verifier = start_login(browser_from(geo, BOSTON), client, user)
    assert result.code and not asks_for_mfa(result)
    claims = jwt_parts(redeem(geo.url, client, result.code, verifier).json()["id_token"])[1]
    assert "mfa" not in claims["amr"]


def test_the_chained_example_geo_mfa_then_custom_claims(geo: LiveServer, clock: Any) -> None:
    """The issue's headline: Europe answers an OTP, then the second action enriches the tokens
    (its claims were decided before the MFA step and are kept: the chain does not run twice)."""
    install(geo, "mfa-by-geography")
    install(geo, "user-claims", namespace=NS)
    client, user = geo.factory.gen_client(), geo.factory.gen_user()

    def assert_tokens(tokens: dict[str, Any], *, mfa: bool) -> None:
        id_claims = jwt_parts(tokens["id_token"])[1]
        at_claims = jwt_parts(tokens["access_token"])[1]
        assert id_claims[f"{NS}/secretIdentity"] == "Batman"
        assert at_claims[f"{NS}/email"] == user.email
        assert ("mfa" in id_claims["amr"]) is mfa

    # first European login: enrol an authenticator app on the way
    browser = browser_from(geo, PARIS)
    result, verifier = start_login(browser, client, user)
    secret, _codes, location = enrol(browser, mfa_page(result))
    assert location
    assert_tokens(tokens_from(geo, client, location, verifier), mfa=True)

    # next European login, another browser: the challenge, answered with the next code
    browser = browser_from(geo, PARIS)
    result, verifier = start_login(browser, client, user)
    page = mfa_page(result)
    assert "Code from your authenticator app" in page
    clock.advance(31)  # the previous code's time step is spent
    location, _ = follow(browser, post(browser, page, {
        "action": "totp", "code": pyotp.TOTP(secret).at(clock.now())}))  # fmt: skip
    assert location and "code=" in location
    assert_tokens(tokens_from(geo, client, location, verifier), mfa=True)

    # from Boston: the claims without a second step
    result, verifier = start_login(browser_from(geo, BOSTON), client, user)
    assert result.code
    assert_tokens(redeem(geo.url, client, result.code, verifier).json(), mfa=False)
