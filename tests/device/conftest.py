"""A live server with the device flow on (RFC 8628); X-Forwarded-For from loopback is
believed, so that tests can speak from several IPs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, build_app, serving


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("device")
    settings = {"DEVICE_FLOW_ENABLED": True, "TRUSTED_PROXIES": "127.0.0.1"}
    with serving(lambda port: build_app(tmp, port, **settings)) as server:
        yield server
