"""Registration and its management (RFC 7591 §2, RFC 7592 §2.2) with DPoP and back-channel
logout switched off tenant-wide: metadata that *adds* a switched-off feature is refused with
``invalid_client_metadata`` naming the field and the switch, as the clients API refuses it
(idp.oauth.client_features); a replacement that keeps what the client already had (set while
the feature was on) is accepted, and one that drops it removes it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from idp.extensions import db, services
from idp.oauth.models import Client
from tests.conformance._registration_helpers import SETTINGS, manage, register, web_client
from tests.conftest import LiveServer, build_app, serving

BCL = "https://rp.test/bcl"
SERVER_SET = {"registration_access_token", "registration_client_uri", "client_secret",
              "client_secret_expires_at", "client_id_issued_at"}  # fmt: skip


@pytest.fixture(scope="module")
def off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("registration-switches")
    with serving(lambda port: build_app(tmp, port, **SETTINGS, DPOP_ENABLED=False,
                                        BACKCHANNEL_LOGOUT_ENABLED=False)) as server:  # fmt: skip
        yield server


@contextmanager
def switched_on(server: LiveServer, name: str) -> Iterator[None]:
    """The feature on for a moment (the server runs in this process), as before an operator
    turned it off."""
    with server.app.app_context():
        config = services().config
    config[name] = True
    try:
        yield
    finally:
        config[name] = False


def _refused(resp: requests.Response, field: str, switch: str) -> None:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "invalid_client_metadata", body
    assert body["error_description"].startswith(f"{field}: "), body
    assert switch in body["error_description"], body


def _registered(server: LiveServer, **extra: Any) -> dict[str, Any]:
    resp = register(server, web_client(**extra))
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _resent(answer: dict[str, Any], **change: Any) -> dict[str, Any]:
    """The client's metadata as read, with ``change``: a replacement (RFC 7592 §2.2)."""
    return {k: v for k, v in answer.items() if k not in SERVER_SET} | change


def _stored(server: LiveServer, client_id: str) -> Client:
    with server.app.app_context():
        client = db.session.get(Client, client_id)
        assert client is not None
        db.session.expunge(client)
        return client


def test_registration_refuses_switched_off_features(off: LiveServer) -> None:
    _refused(register(off, web_client(dpop_bound_access_tokens=True)),
             "dpop_bound_access_tokens", "DPOP_ENABLED")  # fmt: skip
    _refused(register(off, web_client(backchannel_logout_uri=BCL)),
             "backchannel_logout_uri", "BACKCHANNEL_LOGOUT_ENABLED")  # fmt: skip


def test_a_replacement_keeps_dpop_but_cannot_add_it(off: LiveServer) -> None:
    with switched_on(off, "DPOP_ENABLED"):
        bound = _registered(off, dpop_bound_access_tokens=True)
    assert bound["dpop_bound_access_tokens"] is True
    kept = manage("PUT", bound, json=_resent(bound, client_name="Renamed DPoP RP"))
    assert kept.status_code == 200, kept.text
    assert kept.json()["dpop_bound_access_tokens"] is True
    assert _stored(off, bound["client_id"]).name == "Renamed DPoP RP"
    dropped = manage("PUT", kept.json(), json=_resent(kept.json(), dpop_bound_access_tokens=False))
    assert dropped.status_code == 200, dropped.text
    assert _stored(off, bound["client_id"]).dpop_bound_access_tokens is False
    # dropped, it is an addition again
    readded = manage("PUT", dropped.json(),
                     json=_resent(dropped.json(), dpop_bound_access_tokens=True))  # fmt: skip
    _refused(readded, "dpop_bound_access_tokens", "DPOP_ENABLED")

    plain = _registered(off)
    added = manage("PUT", plain, json=_resent(plain, dpop_bound_access_tokens=True))
    _refused(added, "dpop_bound_access_tokens", "DPOP_ENABLED")
    assert _stored(off, plain["client_id"]).dpop_bound_access_tokens is False
    assert manage("GET", plain).status_code == 200  # refused: the token was not rotated


def test_a_replacement_keeps_the_logout_uri_but_cannot_add_or_change_it(off: LiveServer) -> None:
    with switched_on(off, "BACKCHANNEL_LOGOUT_ENABLED"):
        answer = _registered(off, backchannel_logout_uri=BCL)
    kept = manage("PUT", answer, json=_resent(answer, client_name="Renamed BCL RP"))
    assert kept.status_code == 200, kept.text
    assert kept.json()["backchannel_logout_uri"] == BCL
    moved = manage("PUT", kept.json(), json=_resent(kept.json(), backchannel_logout_uri=BCL + "2"))
    _refused(moved, "backchannel_logout_uri", "BACKCHANNEL_LOGOUT_ENABLED")
    assert _stored(off, answer["client_id"]).backchannel_logout_uri == BCL
    dropped = {k: v for k, v in _resent(kept.json()).items() if k != "backchannel_logout_uri"}
    removed = manage("PUT", kept.json(), json=dropped)
    assert removed.status_code == 200, removed.text
    assert _stored(off, answer["client_id"]).backchannel_logout_uri is None

    plain = _registered(off)
    added = manage("PUT", plain, json=_resent(plain, backchannel_logout_uri=BCL))
    _refused(added, "backchannel_logout_uri", "BACKCHANNEL_LOGOUT_ENABLED")
    assert _stored(off, plain["client_id"]).backchannel_logout_uri is None
