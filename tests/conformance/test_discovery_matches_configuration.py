"""Discovery advertises exactly what is enabled (issue 16; OIDC Discovery 1.0 §3, RFC 8414 §2).

``SWITCHES`` is the table: per configuration switch that changes the metadata, the members it
sets when on and when off (``ABSENT``: the member must not be there), and a probe of the
feature each way. For each value of each switch one app is built (they share one database,
migrated once) and, through Flask's test client: the document equals ``BASE`` plus every row's
members at that app's values, member for member; RFC 8414's document is the same; every URL it
advertises answers (``ENDPOINTS``, none may be 404 or 405); and the probe sees the feature work
when on and refuse when off (an endpoint of a feature that is off is 404).

The table is complete: the configuration keys the ``@contributes`` functions read are its rows
(recorded while they build the document), and every configuration key named like a feature
switch is a row or in ``NOT_IN_DISCOVERY`` with the reason. Token exchange has no switch: its
grant is on while a ``custom-token-exchange`` action is bound (idp.actions.token_exchange).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from idp.config import SETTINGS
from idp.extensions import services
from idp.i18n import SUPPORTED as UI_LOCALES
from idp.identity.profile import STANDARD_CLAIMS
from idp.oauth.device_models import DEVICE_GRANT
from idp.oauth.discovery import discovery_document
from tests.conformance import _discovery_probes as probes
from tests.conformance._discovery_auth import ALGORITHM_PROBES, METHODS, endpoint_method
from tests.conformance._discovery_probes import ENDPOINTS, ISSUER, RFC8414_WELL_KNOWN, Apps, Idp
from tests.conformance._discovery_values import BOOLEAN_PROBES, UNIVERSE, VALUE_PROBES, grant_type

ABSENT = "<absent>"
ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA"]  # fmt: skip
HMAC = ["HS256", "HS384", "HS512"]
SECRET_AND_JWT = ["client_secret_basic", "client_secret_post", "private_key_jwt",
                  "client_secret_jwt"]  # fmt: skip

# What every configuration advertises (OIDC Discovery §3, RFC 8414 §2, and the always-on
# features' own members: PAR RFC 9126 §5, JAR RFC 9101 §10.1, RFC 9207 §3, claims, acr,
# ui_locales, form_post, pairwise subjects, RFC 7523 client authentication).
BASE: dict[str, Any] = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/authorize",
    "token_endpoint": f"{ISSUER}/oauth/token",
    "userinfo_endpoint": f"{ISSUER}/userinfo",
    "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
    "revocation_endpoint": f"{ISSUER}/oauth/revoke",
    "introspection_endpoint": f"{ISSUER}/oauth/introspect",
    "end_session_endpoint": f"{ISSUER}/oidc/logout",
    "pushed_authorization_request_endpoint": f"{ISSUER}/oauth/par",
    "scopes_supported": ["openid", "profile", "email", "phone", "address", "offline_access"],
    "response_types_supported": ["code"],
    "response_modes_supported": ["query", "form_post"],
    "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
    "subject_types_supported": ["public", "pairwise"],
    "id_token_signing_alg_values_supported": ["RS256"],  # the one key of the test database
    "token_endpoint_auth_methods_supported": [*SECRET_AND_JWT, "none"],
    "token_endpoint_auth_signing_alg_values_supported": ASYMMETRIC + HMAC,
    "revocation_endpoint_auth_methods_supported": [*SECRET_AND_JWT, "none"],
    "revocation_endpoint_auth_signing_alg_values_supported": ASYMMETRIC + HMAC,
    "introspection_endpoint_auth_methods_supported": SECRET_AND_JWT,  # confidential only
    "introspection_endpoint_auth_signing_alg_values_supported": ASYMMETRIC + HMAC,
    "code_challenge_methods_supported": ["S256"],
    "claims_supported": [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "sid",
        "acr",
        "amr",
        "at_hash",
        *STANDARD_CLAIMS,
    ],
    "claims_parameter_supported": True,
    "request_parameter_supported": True,
    "request_object_signing_alg_values_supported": ASYMMETRIC,
    "request_uri_parameter_supported": False,  # by reference: only PAR's URNs
    "authorization_response_iss_parameter_supported": True,
    "frontchannel_logout_supported": False,
    "acr_values_supported": [
        "urn:idp:acr:single-factor",
        "http://schemas.openid.net/pape/policies/2007/06/multi-factor",
    ],
    "ui_locales_supported": list(UI_LOCALES),
}

Probe = Callable[[Idp], None]


def _nothing(idp: Idp) -> None:
    """The advertised endpoints' own probes (``ENDPOINTS``) are the feature's."""


@dataclass(frozen=True)
class Switch:
    key: str  # a key of idp.config.SETTINGS, or a state that is not configuration
    on: Any
    off: Any
    members_on: dict[str, Any]  # a list extends BASE's list of that name
    members_off: dict[str, Any]
    probe_on: Probe
    probe_off: Probe
    configured: bool = True
    # RFC 7591 client metadata of the feature: registered only while it is on
    client_metadata: dict[str, Any] = field(default_factory=dict)
    # a switch that is not configuration: turned on in the app for the test, then off again
    turn_on: Callable[[Idp], Callable[[], None]] | None = field(default=None, compare=False)

    def members(self, on: bool) -> dict[str, Any]:
        return self.members_on if on else self.members_off

    @property
    def default_on(self) -> bool:
        return self.configured and SETTINGS[self.key].default == self.on


def _bind_exchange(idp: Idp) -> Callable[[], None]:
    probes.bind_exchange_action(idp)
    return idp.factory.clear_actions


SWITCHES = [
    Switch("DEVICE_FLOW_ENABLED", True, False,  # RFC 8628 §4
           {"device_authorization_endpoint": f"{ISSUER}/oauth/device/code",
            "grant_types_supported": [DEVICE_GRANT]},
           {"device_authorization_endpoint": ABSENT},
           _nothing, probes.device_flow_off),
    Switch("DYNAMIC_REGISTRATION_ENABLED", True, False,  # RFC 8414 §2, RFC 7591 §3
           {"registration_endpoint": f"{ISSUER}/oauth/register"},
           {"registration_endpoint": ABSENT},
           probes.registration_on, probes.registration_off),
    Switch("DPOP_ENABLED", True, False,  # RFC 9449 §5.1
           {"dpop_signing_alg_values_supported": [*ASYMMETRIC, "Ed25519"]},
           {"dpop_signing_alg_values_supported": ABSENT},
           probes.dpop_on, probes.dpop_off,
           client_metadata={"dpop_bound_access_tokens": True}),
    Switch("REQUIRE_PUSHED_AUTHORIZATION_REQUESTS", True, False,  # RFC 9126 §5
           {"require_pushed_authorization_requests": True},
           {"require_pushed_authorization_requests": False},
           probes.par_required, probes.par_optional),
    Switch("BACKCHANNEL_LOGOUT_ENABLED", True, False,  # OIDC Back-Channel Logout §2.1
           {"backchannel_logout_supported": True, "backchannel_logout_session_supported": True},
           {"backchannel_logout_supported": False,
            "backchannel_logout_session_supported": ABSENT},
           probes.backchannel_on, probes.backchannel_off,
           client_metadata={"backchannel_logout_uri": "https://rp.test/backchannel"}),
    Switch("custom-token-exchange action bound", True, False,  # RFC 8693 §2.1, RFC 8414 §2
           {"grant_types_supported": [probes.TOKEN_EXCHANGE]}, {},
           probes.token_exchange_on, probes.token_exchange_off,
           configured=False, turn_on=_bind_exchange),
]  # fmt: skip

# Configuration keys named like a feature switch that the metadata does not name, and why.
FEATURE_NAME = re.compile(r"_ENABLED$|^REQUIRE_|_REQUIRED$|_SUPPORTED$|^ENABLE_|^ALLOW_")
NOT_IN_DISCOVERY = {
    "SIGNUP_ENABLED": "sign-up is a link on the login page; no metadata member names it",
    "DPOP_NONCE_REQUIRED": "RFC 9449 §8 has no metadata: clients learn of nonces by use_dpop_nonce",
    "METRICS_ENABLED": "/metrics is for the operator's Prometheus, not an OAuth endpoint",
    "OTEL_ENABLED": "traces go to the operator's collector; no OAuth metadata names them",
}


def _defaults() -> dict[str, Any]:
    return {s.key: SETTINGS[s.key].default for s in SWITCHES if s.configured}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    built = Apps(tmp_path_factory.mktemp("discovery"), _defaults())
    try:
        yield built
    finally:
        built.close()


def expected(switch: Switch, on: bool) -> dict[str, Any]:
    doc = {k: list(v) if isinstance(v, list) else v for k, v in BASE.items()}
    for row in SWITCHES:
        row_on = on if row is switch else row.default_on
        for member, value in row.members(row_on).items():
            if value == ABSENT:
                doc.pop(member, None)
            elif isinstance(BASE.get(member), list):
                doc[member] = [*doc[member], *value]
            else:
                doc[member] = value
    return doc


def _normal(doc: dict[str, Any]) -> dict[str, Any]:
    """Lists compared as sets (their order means nothing), after checking they repeat nothing."""
    for member, value in doc.items():
        if isinstance(value, list):
            assert len(value) == len(set(value)), member
    return {k: sorted(v) if isinstance(v, list) else v for k, v in doc.items()}


@contextmanager
def _state(idp: Idp, switch: Switch, on: bool) -> Iterator[None]:
    undo = switch.turn_on(idp) if on and switch.turn_on is not None else None
    try:
        yield
    finally:
        if undo is not None:
            undo()


CASES = [pytest.param(s, on, id=f"{s.key}={'on' if on else 'off'}")
         for s in SWITCHES for on in (True, False)]  # fmt: skip


@pytest.mark.parametrize(("switch", "on"), CASES)
def test_document_and_endpoints_follow_the_switch(apps: Apps, switch: Switch, on: bool) -> None:
    value = switch.on if on else switch.off
    idp = apps.get(**{switch.key: value}) if switch.configured else apps.get()
    with _state(idp, switch, on):
        doc = idp.document()
        assert _normal(doc) == _normal(expected(switch, on))
        assert idp.document(RFC8414_WELL_KNOWN) == doc  # RFC 8414 §3: the same metadata
        for member, url in doc.items():
            if member.endswith(("_endpoint", "_uri")):
                assert member in ENDPOINTS, f"{member}: add its probe to ENDPOINTS"
                ENDPOINTS[member](idp, url)
        for grant in UNIVERSE["grant_types_supported"]:
            grant_type(idp, grant, grant in doc["grant_types_supported"])
        (switch.probe_on if on else switch.probe_off)(idp)


class _Reads(dict[str, Any]):
    """The configuration as the contributors see it, noting each key they read."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def test_the_table_has_a_row_for_every_switch_the_document_reads(apps: Apps) -> None:
    read: set[str] = set()
    configs = [{}] + [{s.key: s.off if s.default_on else s.on} for s in SWITCHES if s.configured]
    for changes in configs:
        idp = apps.get(**changes)
        with idp.app.app_context():
            svc = services()
            plain, svc.config = svc.config, _Reads(svc.config)
            try:
                discovery_document()
                read |= svc.config.read  # type: ignore[attr-defined]
            finally:
                svc.config = plain
    assert read == {s.key for s in SWITCHES if s.configured}


def test_every_feature_switch_of_the_configuration_is_in_the_table() -> None:
    rows = {s.key for s in SWITCHES if s.configured}
    assert rows <= set(SETTINGS), rows - set(SETTINGS)
    named = {key for key in SETTINGS if FEATURE_NAME.search(key)}
    assert named - rows - set(NOT_IN_DISCOVERY) == set(), "a feature switch without a row"
    for switch in SWITCHES:
        if switch.configured:
            assert SETTINGS[switch.key].default in (switch.on, switch.off), switch.key


METADATA_CASES = [c for c in CASES if c.values[0].client_metadata]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("switch", "on"), METADATA_CASES)
def test_registration_takes_a_feature_s_metadata_only_while_it_is_on(
    apps: Apps, switch: Switch, on: bool
) -> None:
    """RFC 7591 §2, §3.2.2: a client does not register for a feature that is off."""
    value = switch.on if on else switch.off
    idp = apps.get(DYNAMIC_REGISTRATION_ENABLED=True, **{switch.key: value})
    resp = probes.register(idp, switch.client_metadata)
    if on:
        assert resp.status_code == 201, resp.text
        assert switch.client_metadata.items() <= (resp.json or {}).items()
    else:
        probes.oauth_error(resp, 400, "invalid_client_metadata")
        description = (resp.json or {})["error_description"]
        assert any(description.startswith(name) for name in switch.client_metadata), description


def _default_document() -> dict[str, Any]:
    return expected(SWITCHES[0], SWITCHES[0].default_on)


ALGORITHM_CASES = [pytest.param(member, alg, id=f"{member.split('_alg')[0]}:{alg}")
                   for member in ALGORITHM_PROBES for alg in _default_document()[member]]  # fmt: skip


@pytest.mark.parametrize(("member", "alg"), ALGORITHM_CASES)
def test_every_advertised_algorithm_is_accepted(apps: Apps, member: str, alg: str) -> None:
    idp = apps.get()
    assert alg in idp.document()[member]
    ALGORITHM_PROBES[member](idp, alg)


# Endpoints that authenticate clients, and the metadata member listing their methods (RFC 9126
# §2 and RFC 8628 §3.1: PAR and the device endpoint authenticate as the token endpoint does)
METHOD_MEMBERS = {
    "token_endpoint": "token_endpoint_auth_methods_supported",
    "revocation_endpoint": "revocation_endpoint_auth_methods_supported",
    "introspection_endpoint": "introspection_endpoint_auth_methods_supported",
    "pushed_authorization_request_endpoint": "token_endpoint_auth_methods_supported",
    "device_authorization_endpoint": "token_endpoint_auth_methods_supported",
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("endpoint", list(METHOD_MEMBERS))
def test_endpoints_take_exactly_the_advertised_client_authentication(
    apps: Apps, endpoint: str, method: str
) -> None:
    idp = apps.get(DEVICE_FLOW_ENABLED=True)  # every endpoint there
    advertised = idp.document()[METHOD_MEMBERS[endpoint]]
    assert set(advertised) <= set(METHODS), "a new method: add it to METHODS"
    endpoint_method(idp, endpoint, method, method in advertised)


VALUE_CASES = [
    pytest.param(member, value, id=f"{member.removesuffix('_supported')}:{value}")
    for member in VALUE_PROBES
    if member != "grant_types_supported"  # per switch value, above
    for value in dict.fromkeys([*_default_document()[member], *UNIVERSE[member]])
]


@pytest.mark.parametrize(("member", "value"), VALUE_CASES)
def test_listed_values_work_and_others_are_refused(apps: Apps, member: str, value: str) -> None:
    idp = apps.get()
    VALUE_PROBES[member](idp, value, value in idp.document()[member])


@pytest.mark.parametrize("member", list(BOOLEAN_PROBES))
def test_boolean_members_are_what_a_request_sees(apps: Apps, member: str) -> None:
    idp = apps.get()
    BOOLEAN_PROBES[member](idp, idp.document()[member])


# Members whose truth other modules test, not this one
CHECKED_ELSEWHERE = {
    "issuer": "test_discovery.py (DISC-02, DISC-03: the fetch URL, the tokens' iss)",
    "scopes_supported": "test_standard_claims.py (each scope's claims)",
    "claims_supported": "test_standard_claims.py, test_userinfo_idtoken.py",
    "subject_types_supported": "test_pairwise.py (a pairwise client's sub)",
}


def test_every_member_has_its_probe() -> None:
    """A member added to the metadata comes with a probe here (or says where it is tested)."""
    switched = {m for s in SWITCHES for m in [*s.members_on, *s.members_off]}
    members = {m for s in SWITCHES for on in (True, False) for m in expected(s, on)}
    unprobed = {
        m
        for m in members
        if not m.endswith(("_endpoint", "_uri"))
        and m not in ALGORITHM_PROBES
        and m not in METHOD_MEMBERS.values()
        and m not in VALUE_PROBES
        and m not in BOOLEAN_PROBES
        and m not in switched
        and m not in CHECKED_ELSEWHERE
    }
    assert unprobed == set()
    assert {m for m in members if m.endswith("_alg_values_supported")} == set(ALGORITHM_PROBES)
    assert {m for m in members if m.endswith(("_endpoint", "_uri"))} == set(ENDPOINTS)
