"""The user code's brute-force shield (RFC 8628 §5.1): wrong codes are counted per IP and
for everyone; past a count the form answers 429 with Retry-After, for a right code too. Low
limits here (3 per IP, 7 in all) stand for the defaults (10, 500 per 15 minutes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, build_app, serving
from tests.device.helpers import Person, device_client, poll, started

SETTINGS = {
    "DEVICE_FLOW_ENABLED": True,
    "TRUSTED_PROXIES": "127.0.0.1",
    "DEVICE_USER_CODE_IP_FAILURES": 3,
    "DEVICE_USER_CODE_GLOBAL_FAILURES": 7,
    "DEVICE_USER_CODE_WINDOW_SECONDS": 900,
}


@pytest.fixture(scope="module")
def shielded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("shield")
    with serving(lambda port: build_app(tmp, port, **SETTINGS)) as server:
        yield server


def test_guessing_from_one_ip_is_blocked_then_everyone(shielded, clock):
    srv = shielded
    client = device_client(srv)
    body = started(srv.url, client)
    guesser = Person(srv.url, ip="203.0.113.7")
    answers = [
        guesser.enter(guess).status_code for guess in ("BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD")
    ]
    assert answers == [400, 400, 400]
    # blocked now: the right code is refused too, with how long to wait
    blocked = guesser.enter(body["user_code"])
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 800
    assert "Too many wrong codes" in blocked.text
    # another address is not blocked: the owner of the code gets on
    owner = Person(srv.url, ip="198.51.100.1")
    page = owner.go(body["user_code"], srv.factory.gen_user())
    assert "Device connected" in page.text
    assert poll(srv.url, client, body["device_code"]).status_code == 200
    # guesses spread over many addresses reach the global count: the form shuts for all
    for i in range(4):
        assert Person(srv.url, ip=f"192.0.2.{i}").enter("FFFF-FFFF").status_code == 400
    fresh = started(srv.url, client)
    refused = Person(srv.url, ip="198.51.100.2").enter(fresh["user_code"])
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    # the window ends: the right code is taken again
    clock.advance(901)
    later = started(srv.url, client)
    page = Person(srv.url, ip="198.51.100.3").go(later["user_code"], srv.factory.gen_user())
    assert "Device connected" in page.text
