"""Client settings that only work while a feature of the tenant is switched on.

A client made DPoP-bound (RFC 9449 §5.2) while ``DPOP_ENABLED`` is off could never get a
token, and a client given the device-code grant (RFC 8628) while ``DEVICE_FLOW_ENABLED`` is
off could never use it, and a ``backchannel_logout_uri`` set while
``BACKCHANNEL_LOGOUT_ENABLED`` is off would never be called (OIDC Back-Channel Logout §2.2):
the discovery document lists none of them. Dynamic registration and its management (RFC 7591
§2 lets the server refuse metadata; RFC 7592 §2.2 validates a replacement as a
registration), the clients API and the CLI all refuse them with one message each, naming the
field and the switch. Only what a request *adds* is refused: a client that already had the
setting when the switch was turned off keeps it (re-sending it, or editing its other fields,
still works; a different logout URI is an addition), and the token endpoint then answers it
with the same switch named (``idp.oauth.dpop_http.check_client_requirement``; the device
grant is then ``unsupported_grant_type``, as for every client).

Token exchange (RFC 8693) has no switch: its grant is on while a ``custom-token-exchange``
action is bound, so a client may be given it at any time and is refused at use
(``unsupported_grant_type``) while none is bound, as the discovery document shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from idp.core.errors import ValidationError
from idp.oauth.device_models import DEVICE_GRANT

if TYPE_CHECKING:
    from idp.keys.service import KeyRing

DPOP_OFF = "DPoP is off on this tenant (DPOP_ENABLED is false)"
DEVICE_FLOW_OFF = "the device flow is off on this tenant (DEVICE_FLOW_ENABLED is false)"
BACKCHANNEL_OFF = "back-channel logout is off on this tenant (BACKCHANNEL_LOGOUT_ENABLED is false)"


def switched_off(
    config: Mapping[str, Any],
    *,
    grant_types: Iterable[str] = (),
    dpop: bool = False,
    logout_uri: str | None = None,
) -> tuple[str, str] | None:
    """The first of ``grant_types``/``dpop``/``logout_uri`` (what a request adds) whose
    feature is off, as (field, why), or None."""
    if dpop and not config["DPOP_ENABLED"]:
        return "dpop_bound_access_tokens", f"{DPOP_OFF}: a DPoP-bound client could get no token"
    if DEVICE_GRANT in grant_types and not config["DEVICE_FLOW_ENABLED"]:
        return "grant_types", f"{DEVICE_GRANT} needs the device flow, and {DEVICE_FLOW_OFF}"
    if logout_uri and not config["BACKCHANNEL_LOGOUT_ENABLED"]:
        return "backchannel_logout_uri", f"{BACKCHANNEL_OFF}: no Logout Token would be sent"
    return None


def added_switched_off(
    config: Mapping[str, Any],
    *,
    grant_types: Iterable[str] | None = None,
    had_grant_types: Iterable[str] = (),
    dpop: bool | None = None,
    had_dpop: bool = False,
    logout_uri: str | None = None,
    had_logout_uri: str | None = None,
) -> tuple[str, str] | None:
    """:func:`switched_off` for what a change adds to a client: ``had_*`` is the client
    before the change (kept, not refused); None (or nothing) sent adds nothing."""
    added = set(grant_types or ()) - set(had_grant_types)
    new_uri = logout_uri if logout_uri and logout_uri != had_logout_uri else None
    return switched_off(config, grant_types=added, dpop=bool(dpop) and not had_dpop,
                        logout_uri=new_uri)  # fmt: skip


def check_id_token_alg(alg: str | None, keys: KeyRing) -> None:
    """OIDC Registration §2 ``id_token_signed_response_alg``: one of the algorithms the tenant
    signs with now (its discovery document's ``id_token_signing_alg_values_supported``), so
    that the client's ID tokens can be signed; None is RS256, the default."""
    if alg is None:
        return
    keys.refresh()
    if alg not in keys.algorithms:
        raise ValidationError(
            f"id_token_signed_response_alg: {alg} is not an algorithm this tenant signs with "
            f"now (id_token_signing_alg_values_supported: {', '.join(keys.algorithms)})"
        )


def refuse_switched_off(
    config: Mapping[str, Any],
    *,
    grant_types: Iterable[str] | None = None,
    had_grant_types: Iterable[str] = (),
    dpop: bool | None = None,
    had_dpop: bool = False,
    logout_uri: str | None = None,
    had_logout_uri: str | None = None,
) -> None:
    """:class:`ValidationError` ("<field>: <why>") when a change turns on a client setting
    whose feature is off (:func:`added_switched_off`)."""
    found = added_switched_off(
        config, grant_types=grant_types, had_grant_types=had_grant_types, dpop=dpop,
        had_dpop=had_dpop, logout_uri=logout_uri, had_logout_uri=had_logout_uri,
    )  # fmt: skip
    if found is not None:
        raise ValidationError(f"{found[0]}: {found[1]}")
