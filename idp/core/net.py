"""The client's IP address: ``X-Forwarded-For`` counts only when the peer is a trusted proxy
(``IDP_TRUSTED_PROXIES``, comma-separated addresses or CIDRs); otherwise it is ignored, so a
client cannot pick the address its failures are counted against (S-BF-11)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(value: str) -> tuple[Network, ...]:
    items = (raw.strip() for raw in value.split(","))
    return tuple(ipaddress.ip_network(item, strict=False) for item in items if item)


def _trusted(addr: str, proxies: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_ip(
    remote_addr: str | None, forwarded_for: str | None, proxies: tuple[Network, ...]
) -> str:
    """Walk ``X-Forwarded-For`` from the right, skipping trusted proxies; the first address
    that is not one of ours is the client."""
    peer = remote_addr or "unknown"
    if not forwarded_for or not _trusted(peer, proxies):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed chain is not evidence of anything
        if not _trusted(hop, proxies):
            return hop
    return peer


def request_id() -> str:
    """This request's id, made on first use: Actions execution records and tenant log events
    of one request carry it, and the response says it in ``X-Request-Id``."""
    from flask import g

    from idp.core.crypto import random_token

    rid: str | None = g.get("idp_request_id")
    if rid is None:
        rid = g.idp_request_id = "req_" + random_token(12)
    return rid
