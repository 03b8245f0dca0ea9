"""What the host answers an execution's RPCs with: ``api.cache`` and ``api.http``.

Every message comes from the sandbox and is untrusted (SECURITY.md §4.4): each field is checked
here, and outbound calls go through the SSRF-guarded client (``idp.core.http``) with the
action's own allow-list and within the execution's time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from idp.actions.store import CacheStore, serve_cache
from idp.core import http

Rpc = Callable[[dict[str, Any]], dict[str, Any]]


def server(
    cache: CacheStore,
    action_id: str,
    allowed_hosts: tuple[str, ...],
    networks: tuple[http.Network, ...],
    timeout: float,
) -> Rpc:
    """The RPC handler for one execution of ``action_id``, which has ``timeout`` seconds."""
    deadline = time.monotonic() + timeout

    def serve(message: dict[str, Any]) -> dict[str, Any]:
        if message.get("rpc") == "cache":
            return serve_cache(cache, action_id, message)
        if message.get("rpc") == "http":
            return outbound(message, allowed_hosts, networks, deadline)
        return {"error": "unknown request"}

    return serve


def outbound(
    message: dict[str, Any],
    allowed_hosts: tuple[str, ...],
    networks: tuple[http.Network, ...],
    deadline: float,
) -> dict[str, Any]:
    """One ``api.http`` call: ``{method, url, headers?, body? | json?, timeout?}``."""
    headers = message.get("headers") or {}
    body = message.get("body")
    if not isinstance(headers, dict):
        return {"error": "headers must be an object"}
    headers = {str(k): str(v) for k, v in headers.items()}
    if "json" in message:
        body = _json_bytes(message["json"])
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    elif body is not None:  # it was dropped without a word: a request without its body
        return {"error": "body is a string; send JSON data with json="}
    try:
        wanted = float(message.get("timeout") or 2.0)
    except (TypeError, ValueError):
        return {"error": "timeout is a number of seconds"}
    timeout = min(wanted, 10.0, deadline - time.monotonic())
    if timeout <= 0:
        return {"error": "no time left for an outbound call"}
    try:
        answer = http.fetch(
            str(message.get("method", "GET")),
            str(message.get("url", "")),
            allowed_hosts=allowed_hosts,
            allowed_networks=networks,
            headers=headers,
            body=body,
            timeout=timeout,
        )
    except http.FetchRefused as exc:
        return {"error": str(exc)}
    return answer.as_json_reply()


def _json_bytes(value: Any) -> bytes:
    """The JSON as it came (the line it came on was parsed as JSON, NaN refused)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
