"""What the SAML leg takes and gives, apart from the package's entry points so that every
submodule imports them without importing the package back (tests/unit/test_import_graph.py).

The error, settings and result types are the OIDC upstream's (one contract for the login
flow); :class:`Sp` and :data:`Replay` are SAML's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from idp.connections.upstream.contract import Settings, Started, UpstreamError, UpstreamProfile

__all__ = ["SKEW", "Replay", "Settings", "Sp", "Started", "UpstreamError", "UpstreamProfile"]

# remember(assertion_id, not_on_or_after) -> False when that assertion was seen before (a
# replay): one shared store, so that every worker and instance refuses it.
Replay = Callable[[str, int], bool]

# Clock skew allowed on NotBefore / NotOnOrAfter (SAML 2.0 Core §2.5.1.2 leaves it to the
# relying party; a minute covers honest clocks without stretching an assertion's life).
SKEW = 60


@dataclass(frozen=True)
class Sp:
    """idp's service provider for one connection."""

    entity_id: str  # <issuer>/samlp/metadata/<name>
    acs_url: str  # <issuer>/login/callback/<name> (HTTP-POST binding)
    slo_url: str  # <issuer>/samlp/logout/<name> (HTTP-Redirect binding)


def refused(reason: str, detail: str, description: str = "") -> UpstreamError:
    """An :class:`UpstreamError` for a SAML message idp will not accept: ``detail`` names
    the check for the tenant log (never the XML, a key or an attribute value)."""
    return UpstreamError(
        reason, description or "The sign-in provider's answer could not be accepted.", detail
    )
