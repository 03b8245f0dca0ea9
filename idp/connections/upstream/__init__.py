"""Talking to an upstream identity provider: the two legs of a social/enterprise login.

:func:`begin` builds the URL the browser is sent to (authorization code flow with PKCE S256,
``state``, and for OIDC a ``nonce``) and returns what must be kept, server side, until the
callback. :func:`finish` takes the callback's parameters and that kept data, redeems the code
and returns the upstream's verified profile, or raises :class:`UpstreamError`.

Every call to an upstream goes through the SSRF-guarded client (``idp.core.http.fetch``) with
the connection settings' timeout and size cap. The login flow (``idp.flows.connection``) owns
the browser side: it binds ``state`` to the browser's interaction and checks it before
:func:`finish` is called.
"""

from __future__ import annotations

from typing import Any

from idp.connections.upstream.contract import (
    Settings,
    Started,
    UpstreamError,
    UpstreamProfile,
)

__all__ = ["Settings", "Started", "UpstreamError", "UpstreamProfile", "begin", "finish"]


def _protocol(strategy: str) -> str:
    from idp.connections import strategies
    from idp.core.errors import ValidationError

    try:
        kind = strategies.protocol(strategy)
    except ValidationError:
        kind = ""
    if kind not in (strategies.OIDC, strategies.OAUTH2):
        raise UpstreamError(
            "bad_configuration", "This sign-in method is not configured correctly.",
            f"strategy {strategy!r} has no upstream",
        )  # fmt: skip
    return kind


def _options(strategy: str, options: dict[str, Any]) -> dict[str, Any]:
    """The preset's options under the connection's (already there when the options went
    through ``strategies.validate_options``; a no-op then)."""
    from idp.connections import strategies

    preset = strategies.PRESETS.get(strategy)
    return {**(preset[1] if preset else {}), **options}


def begin(
    strategy: str,
    options: dict[str, Any],
    *,
    redirect_uri: str,
    state: str,
    login_hint: str | None,
    settings: Settings,
) -> Started:
    """The first leg: where to send the browser, and what to keep until the callback."""
    from idp.connections.upstream import oauth2, oidc

    module = oidc if _protocol(strategy) == "oidc" else oauth2
    return module.begin(
        strategy, _options(strategy, options), redirect_uri=redirect_uri, state=state,
        login_hint=login_hint, settings=settings,
    )  # fmt: skip


def finish(
    strategy: str,
    options: dict[str, Any],
    *,
    redirect_uri: str,
    params: dict[str, str],
    kept: dict[str, Any],
    settings: Settings,
) -> UpstreamProfile:
    """The second leg: the callback's ``params`` (its ``state`` already matched by the caller)
    and :func:`begin`'s ``kept`` give the upstream's verified profile, or UpstreamError."""
    from idp.connections.upstream import oauth2, oidc

    kind = _protocol(strategy)
    if kept.get("protocol") != kind:
        raise UpstreamError(
            "bad_state", "The sign-in could not be completed. Please try again.",
            "kept data is not from this connection's protocol",
        )  # fmt: skip
    module = oidc if kind == "oidc" else oauth2
    return module.finish(
        strategy, _options(strategy, options), redirect_uri=redirect_uri, params=params,
        kept=kept, settings=settings,
    )  # fmt: skip
