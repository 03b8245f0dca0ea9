"""SAML 2.0 identity providers behind idp: idp is their service provider (SP) and the apps'
OpenID provider (the SAML bridge, issue 13). Built on pysaml2 with xmlsec1: no XML signature
code of idp's own.

The login flow (``idp.flows``) owns the browser side exactly as for OIDC upstreams: it binds
``RelayState`` (``<interaction uid>.<secret>``) to the browser's interaction, and calls
:func:`begin` and :func:`finish` outside any transaction. Both take the connection's options
unsealed (``idp.connections.strategies``, strategy ``samlp``) and an :class:`Sp` (where idp's
SP lives for this connection). :func:`finish` returns the same
:class:`~idp.connections.upstream.UpstreamProfile` as the OIDC strategies, or raises
:class:`~idp.connections.upstream.UpstreamError` with a stable reason for the tenant log.

Submodules (each imports the types from :mod:`.contract`, never this package):
``credentials`` (the SP key pair, fingerprints), ``metadata`` (the IdP's, fetched and cached;
the SP's), ``xmlsafe`` (base64 and XML read before pysaml2), ``config`` (pysaml2's SP),
``sso`` (:func:`begin`), ``response`` and ``checks`` (:func:`finish`), ``profile`` (attribute
mapping), ``slo`` (single logout).

pysaml2 (with xmlschema, elementpath and requests, ~20 MB a process, more once its XSD
schemas are read) is imported when a SAML connection is first used, not when the server
starts (issue 17): importing this package loads only the contract; :func:`begin`,
:func:`finish` and the metadata functions import their submodules on first access (PEP 562).
``tests/operations/test_lazy_imports.py`` checks that a server without SAML connections
never imports ``saml2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idp.connections.saml.contract import (
    Replay,
    Settings,
    Sp,
    Started,
    UpstreamError,
    UpstreamProfile,
)

if TYPE_CHECKING:
    from idp.connections.saml.credentials import fingerprint, new_sp_credentials
    from idp.connections.saml.metadata import idp_metadata, metadata_certificates, sp_metadata
    from idp.connections.saml.response import finish
    from idp.connections.saml.sso import begin

__all__ = [
    "Replay", "Settings", "Sp", "Started", "UpstreamError", "UpstreamProfile", "begin",
    "fingerprint", "finish", "idp_metadata", "metadata_certificates", "new_sp_credentials",
    "sp_metadata",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    # Plain import statements, not importlib: tests/unit/test_import_graph.py sees the edges.
    if name in ("fingerprint", "new_sp_credentials"):
        from idp.connections.saml import credentials

        value = getattr(credentials, name)
    elif name in ("idp_metadata", "metadata_certificates", "sp_metadata"):
        from idp.connections.saml import metadata

        value = getattr(metadata, name)
    elif name == "finish":
        from idp.connections.saml import response

        value = response.finish
    elif name == "begin":
        from idp.connections.saml import sso

        value = sso.begin
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # once: later reads skip this function
    return value
