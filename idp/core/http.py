"""The only outbound HTTP client (ARCHITECTURE.md §11, SECURITY.md §2): every server-side fetch
goes through :func:`fetch`, and a ruff rule bans the other HTTP libraries elsewhere.

The guard, in order: http(s) only, no credentials in the URL, the host on the caller's
allow-list, the name resolved once and *every* address global (no loopback, private,
link-local, multicast or reserved address, unless the operator allowed that network), then a
connection to that pinned address (no second lookup an attacker could rebind), no redirects,
a timeout and a response-size cap. Plain http is refused unless the address is in an
operator-allowed network (a development receiver on loopback, for instance).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from idp.core import tracing

MAX_BODY = 1024 * 1024
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "upgrade"}


class FetchRefused(Exception):
    """The guard refused the request; the message is safe to show to the operator."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def as_json_reply(self) -> dict[str, Any]:
        text = self.body.decode("utf-8", "replace")
        reply: dict[str, Any] = {"status": self.status, "headers": self.headers, "text": text}
        try:
            reply["json"] = json.loads(text)
        except ValueError:
            reply["json"] = None
        return reply


def parse_networks(spec: str | Iterable[str]) -> tuple[Network, ...]:
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    return tuple(ipaddress.ip_network(i.strip(), strict=False) for i in items if i.strip())


def _split_host(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` (a bare v6 address has no port)."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        name, _, port = entry.partition(":")
    else:
        name, port = entry, ""
    return name, int(port) if port.isdigit() else None


def _host_allowed(host: str, port: int, allowed_hosts: Iterable[str]) -> bool:
    for entry in allowed_hosts:
        name, entry_port = _split_host(entry.lower())
        if entry_port is not None and entry_port != port:
            continue
        if name == host or (name.startswith("*.") and host.endswith(name[1:])):
            return True
    return False


def resolve(host: str, port: int, allowed_networks: tuple[Network, ...]) -> tuple[str, bool]:
    """Resolve once; return the address to pin and whether it is operator-allowed private."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise FetchRefused(f"cannot resolve {host}") from None
    addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    if not addresses:
        raise FetchRefused(f"cannot resolve {host}")
    private = False
    for address in addresses:
        if any(address in network for network in allowed_networks):
            private = True
        elif not address.is_global or address.is_multicast:
            raise FetchRefused(f"{host} resolves to a non-public address ({address})")
    return str(sorted(addresses, key=lambda a: a.version)[0]), private


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def _read(answer: http.client.HTTPResponse, max_body: int, deadline: float) -> bytes:
    """The body, at most ``max_body`` bytes, within the request's whole ``timeout``: the
    socket's timeout bounds each read only, and a server dripping a byte at a time would
    otherwise hold the caller for as long as it likes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise FetchRefused("the response took longer than the timeout")
        chunk = answer.read1(min(65536, max_body + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > max_body:
            raise FetchRefused(f"the response is larger than {max_body} bytes")


def _printable(text: str) -> bool:
    return text.isascii() and text.isprintable()


def fetch(
    method: str,
    url: str,
    *,
    allowed_hosts: Iterable[str],
    allowed_networks: tuple[Network, ...] = (),
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 2.0,
    max_body: int = MAX_BODY,
) -> Response:
    """One guarded request (RFC 9110 semantics; redirects are returned, never followed)."""
    if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}:
        raise FetchRefused(f"method {method!r} is not allowed")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise FetchRefused("only absolute http(s) URLs can be fetched")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused("URLs with credentials are refused")
    host = parts.hostname.lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if not _host_allowed(host, port, allowed_hosts):
        raise FetchRefused(f"{host} is not on this action's allow-list")
    address, private = resolve(host, port, allowed_networks)
    if parts.scheme == "http" and not private:
        raise FetchRefused("plain http is refused (use https)")
    deadline = time.monotonic() + timeout
    connection_type = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    connection = connection_type(host, port, address, timeout)
    clean_headers = {k: v for k, v in (headers or {}).items() if k.lower() not in _HOP_HEADERS}
    if any(not _printable(k) or not _printable(v) for k, v in clean_headers.items()):
        # the value is not named: it may be a token
        raise FetchRefused("a header name or value is not printable ASCII")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    # the host and port only: a path or query may carry a key
    where: tracing.Attributes = {
        "http.request.method": method.upper(),
        "server.address": host,
        "server.port": port,
    }
    with tracing.span(f"HTTP {method.upper()}", where, client=True) as span:
        try:
            connection.request(
                method.upper(), path, body=body, headers=tracing.inject(clean_headers)
            )
            answer = connection.getresponse()
            span.set_attribute("http.response.status_code", answer.status)
            data = _read(answer, max_body, deadline)
            return Response(
                status=answer.status,
                headers={k.lower(): v for k, v in answer.getheaders()},
                body=data,
            )
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise FetchRefused(f"the request failed: {type(exc).__name__}") from None
        finally:
            connection.close()
