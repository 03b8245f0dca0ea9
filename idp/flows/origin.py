"""Where a browser request comes from, for the tenant log and the attack protection."""

from __future__ import annotations

from flask import request

from idp.audit import service as audit
from idp.core.net import client_ip
from idp.extensions import services


def request_origin() -> audit.Origin:
    """The client's address (``X-Forwarded-For`` only from the trusted proxies) and agent."""
    ip = client_ip(
        request.remote_addr, request.headers.get("X-Forwarded-For"), services().trusted_proxies
    )
    return audit.Origin(ip, request.headers.get("User-Agent"))
