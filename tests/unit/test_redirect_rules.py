"""Redirect URI rules at registration (BCP §2.6, S-AZ-06) and native loopback matching
(RFC 8252 §7.3), without a server."""

from __future__ import annotations

import pytest

from idp.core.errors import ValidationError
from idp.oauth.clients import _loopback_match
from idp.oauth.service import validate_redirect_uri


@pytest.mark.parametrize(
    "uri",
    [
        "https://rp.test/cb",
        "https://rp.test/cb?x=1",
        "http://localhost:8080/cb",
        "http://127.0.0.1/cb",
        "http://[::1]:9/cb",
    ],
)
def test_web_redirect_uris_accepted(uri):
    assert validate_redirect_uri(uri, "regular_web") == uri


@pytest.mark.parametrize(
    "uri",
    [
        "http://rp.test/cb",  # http off loopback
        "https://rp.test/cb#frag",
        "/relative/cb",
        "JaVaScRiPt:alert(1)",
        "javascript://rp.test/%0aalert(1)",
        "data:text/html,hi",
        "https://user@rp.test/cb",
        "https://rp.test/c b",
        "https://rp.test\\@evil.test/cb",
        "com.example.app:/cb",  # custom schemes only for native apps
    ],
)
def test_dangerous_redirect_uris_refused(uri):
    with pytest.raises(ValidationError):
        validate_redirect_uri(uri, "regular_web")


def test_native_custom_scheme_needs_reverse_domain():
    assert validate_redirect_uri("com.example.app:/cb", "native") == "com.example.app:/cb"
    with pytest.raises(ValidationError):
        validate_redirect_uri("myapp:/cb", "native")


@pytest.mark.parametrize(
    ("registered", "requested", "ok"),
    [
        ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", True),
        ("http://[::1]/cb", "http://[::1]:8080/cb", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb/", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb?x=1", False),
        ("http://127.0.0.1/cb", "http://localhost:51234/cb", False),
        ("http://127.0.0.1/cb", "https://127.0.0.1:51234/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1.evil.test:80/cb", False),
        ("http://127.0.0.1/cb", "http://evil@127.0.0.1:80/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:notaport/cb", False),
        ("https://rp.test/cb", "https://rp.test:444/cb", False),
    ],
)
def test_loopback_port_variation_only(registered, requested, ok):
    assert _loopback_match(registered, requested) is ok
