"""A server that trusts no proxy: ``X-Forwarded-For`` from the peer (127.0.0.1 here) is the
client talking about itself, and changes nothing (S-BF-11, ``IDP_TRUSTED_PROXIES``).

"Nothing" is shown two ways: the event an action sees is the same with and without the header
(the peer's address, which has no location), and a spoofed address cannot talk a login out of
the MFA that its real (unknown) location gets under ``when_unknown=true``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer
from tests.geo.live import PROBE, PROBE_CLAIM, asks_for_mfa, browser_from, geo_server, install
from tests.geo.live import start_login as login
from tests.geo.mmdb import BOSTON, PARIS
from tests.helpers import jwt_parts, redeem

pytestmark = pytest.mark.usefixtures("fresh_chain")


@pytest.fixture(scope="module")
def untrusted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with geo_server(tmp_path_factory, TRUSTED_PROXIES="") as live:
        yield live


@pytest.fixture
def fresh_chain(untrusted: LiveServer) -> None:
    untrusted.factory.clear_actions()


def test_the_event_is_the_same_with_or_without_the_header(untrusted: LiveServer) -> None:
    untrusted.factory.gen_action("probe", "post-login", PROBE)
    client = untrusted.factory.gen_client()
    seen = []
    for forwarded_for in (None, PARIS, BOSTON, f"{BOSTON}, {PARIS}"):
        result, verifier = login(
            browser_from(untrusted, forwarded_for), client, untrusted.factory.gen_user()
        )
        assert result.code
        tokens = redeem(untrusted.url, client, result.code, verifier).json()
        seen.append(jwt_parts(tokens["id_token"])[1][PROBE_CLAIM])
    assert seen == [{"ip": "127.0.0.1", "geoip": {}}] * 4


def test_a_spoofed_address_does_not_escape_mfa(untrusted: LiveServer) -> None:
    install(untrusted, "mfa-by-geography", when_unknown="true")
    client, user = untrusted.factory.gen_client(), untrusted.factory.gen_user()
    for forwarded_for in (None, BOSTON, f"{PARIS}, {BOSTON}"):
        result, _ = login(browser_from(untrusted, forwarded_for), client, user)
        assert asks_for_mfa(result), forwarded_for
        assert result.code is None
