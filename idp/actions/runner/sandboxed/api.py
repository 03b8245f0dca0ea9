"""The ``api`` an action gets: recorded commands, and the host's cache and outbound HTTP.

Commands are only recorded here; the host decides what they mean (``idp.actions.commands``).
``api.cache`` and ``api.http`` are RPCs over the child's pipes, served by the host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from base64 import urlsafe_b64decode, urlsafe_b64encode
from typing import Any

from .values import ENCODE, ReadOnlyDict, as_json, labelled


class Channel:
    """Lines on fd 0 and fd 1 with bare ``os.read``/``os.write``: no file object to build in
    each execution's process (every object a child makes or touches costs it a page)."""

    def __init__(self) -> None:
        self.buffer = b""

    def readline(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = os.read(0, 65536)
            if not chunk:
                raise EOFError("host closed the channel")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    @staticmethod
    def send(message: dict[str, Any]) -> None:
        """One line; ``message`` is JSON data already (``as_json``): nothing is turned into
        its ``str()`` on the way."""
        data = ENCODE(message).encode() + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]


class Api:
    """Records commands; the host decides what they mean. Built from the trigger's method list."""

    def __init__(self, job: dict[str, Any], channel: Channel) -> None:
        self._commands: list[dict[str, Any]] = []
        self._channel = channel
        self._job = job
        groups: dict[str, Any] = {}
        for path in job.get("api", []):
            group, _, method = path.partition(".")
            groups.setdefault(group, Namespace(group))
            setattr(groups[group], method, self._recorder(path))
        groups["cache"] = Cache(channel)
        if "http" in job.get("features", []):
            groups["http"] = Http(channel)
        if "redirect" in groups:
            groups["redirect"].can_redirect = lambda: bool(job.get("interactive"))
            groups["redirect"].encode_token = encode_token
            groups["redirect"].validate_token = self._validate_token
        for name, namespace in groups.items():
            setattr(self, name, namespace)

    def _recorder(self, path: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> None:
            call = as_json({"args": list(args), "kwargs": kwargs}, labelled(path, args))
            self._commands.append({"op": path, **call})

        record.__name__ = path.rpartition(".")[2]
        return record

    def _validate_token(self, options: dict[str, Any]) -> dict[str, Any]:
        name = options.get("token_parameter_name", "session_token")
        request = self._job.get("event", {}).get("request", {})
        token = (request.get("body") or {}).get(name) or (request.get("query") or {}).get(name)
        if not token:
            raise ValueError(f"no {name} parameter on the request")
        return decode_token(token, options["secret"], self._job.get("state"))


class Namespace:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"<api.{self._name}>"


class Cache:
    """``api.cache``: served by the host, scoped to this action, shared across executions."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def _call(self, label: str, **message: Any) -> Any:
        self._channel.send(as_json({"rpc": "cache", **message}, label))
        reply = json.loads(self._channel.readline())
        if reply.get("error"):
            raise ValueError(reply["error"])
        return reply.get("result")

    def get(self, key: str) -> Any:
        return self._call("cache.get", op="get", key=key)

    def set(self, key: str, value: str, options: dict[str, Any] | None = None) -> Any:
        ttl = (options or {}).get("ttl")
        label = labelled("cache.set", (key, value))
        return self._call(label, op="set", key=key, value=value, ttl=ttl)

    def delete(self, key: str) -> Any:
        return self._call("cache.delete", op="delete", key=key)


class Http:
    """``api.http``: every call is an RPC the host serves through its SSRF-guarded client."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def request(self, method: str, url: str, **options: Any) -> ReadOnlyDict:
        verb = method.upper()
        message = {"rpc": "http", "method": verb, "url": as_json(url, f"http.{verb.lower()}")}
        for name, value in options.items():
            message[name] = as_json(value, f"http.{verb.lower()}({name}=...)")
        self._channel.send(message)
        reply = json.loads(self._channel.readline())
        if reply.get("error"):
            raise HttpError(reply["error"])
        return ReadOnlyDict(reply)

    def get(self, url: str, **options: Any) -> ReadOnlyDict:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> ReadOnlyDict:
        return self.request("POST", url, **options)

    def put(self, url: str, **options: Any) -> ReadOnlyDict:
        return self.request("PUT", url, **options)

    def patch(self, url: str, **options: Any) -> ReadOnlyDict:
        return self.request("PATCH", url, **options)

    def delete(self, url: str, **options: Any) -> ReadOnlyDict:
        return self.request("DELETE", url, **options)


class HttpError(Exception):
    pass


def _b64(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_token(options: dict[str, Any]) -> str:
    """``api.redirect.encode_token``: an HS256 JWT (RFC 7519) signed with the action's secret."""
    now = int(time.time())
    payload = {**as_json(options.get("payload") or {}, "redirect.encode_token(payload)")}
    payload["iat"] = now
    payload["exp"] = now + int(options.get("expires_in_seconds", 900))
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.new(options["secret"].encode(), f"{header}.{body}".encode(), hashlib.sha256)
    return f"{header}.{body}.{_b64(mac.digest())}"


def decode_token(token: str, secret: str, state: str | None) -> dict[str, Any]:
    header, body, signature = token.split(".")
    mac = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256)
    if not hmac.compare_digest(_b64(mac.digest()), signature):
        raise ValueError("the token's signature is invalid")
    payload = json.loads(_unb64(body))
    if payload.get("exp", 0) < time.time():
        raise ValueError("the token has expired")
    if state is not None and payload.get("state") != state:
        raise ValueError("the token belongs to another transaction")
    return payload
