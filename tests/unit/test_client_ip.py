"""Client IP behind proxies (S-BF-11), without a server."""

from __future__ import annotations

import pytest

from idp.core.net import client_ip, parse_proxies

PROXIES = parse_proxies("10.0.0.0/8, 127.0.0.1")


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.5", None, "203.0.113.5"),
        ("203.0.113.5", "1.2.3.4", "203.0.113.5"),  # untrusted peer: header ignored
        ("10.1.1.1", "198.51.100.7", "198.51.100.7"),
        ("10.1.1.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # left part is client-supplied
        ("10.1.1.1", "198.51.100.7, 10.2.2.2", "198.51.100.7"),  # skip our own proxies
        ("10.1.1.1", "10.2.2.2", "10.1.1.1"),  # only proxies: the peer
        ("10.1.1.1", "not-an-ip", "10.1.1.1"),
        ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_ip(peer, xff, expected):
    assert client_ip(peer, xff, PROXIES) == expected
