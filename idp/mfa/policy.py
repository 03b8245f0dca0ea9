"""When a login needs a second factor: named checks as data, like the login prompt's.

Policy (``MFA_POLICY``, overridable per application): ``never``, ``always``, or ``adaptive``
(MFA for users who have enrolled a factor, Keycloak's "conditional OTP"). Independently of it,
``acr_values`` asking for MFA (OIDC Core §3.1.2.1; the PAPE multi-factor URI Auth0 uses) and a
post-login action calling ``api.multifactor.enable`` force it. A remembered browser skips the
policy's demand, never an explicit ``acr_values`` one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from idp.oauth.acr_names import ACR_ASKING_FOR_MFA, MFA_ACR  # noqa: F401 - re-exported

POLICIES = ("never", "always", "adaptive")


@dataclass(frozen=True)
class MfaContext:
    policy: str  # the application's, else the tenant's
    acr_values: frozenset[str]
    has_factor: bool
    session_has_mfa: bool
    remembered: bool
    action_requested: bool = False


Check = Callable[[MfaContext], bool]


def _acr_requested(ctx: MfaContext) -> bool:
    return bool(ctx.acr_values & ACR_ASKING_FOR_MFA)


def _policy_always(ctx: MfaContext) -> bool:
    return ctx.policy == "always" and not ctx.remembered


def _policy_adaptive(ctx: MfaContext) -> bool:
    return ctx.policy == "adaptive" and ctx.has_factor and not ctx.remembered


def _action_requested(ctx: MfaContext) -> bool:
    return ctx.action_requested


MFA_CHECKS: tuple[tuple[str, Check], ...] = (
    ("acr_values_requested", _acr_requested),
    ("policy_always", _policy_always),
    ("policy_adaptive", _policy_adaptive),
    ("action_requested", _action_requested),
)


def mfa_reasons(ctx: MfaContext) -> list[str]:
    """Every check that fires; none once this session has done MFA."""
    if ctx.session_has_mfa:
        return []
    return [name for name, check in MFA_CHECKS if check(ctx)]
