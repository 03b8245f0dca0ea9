"""The login prompt as data: named checks with reason codes (OIDC Core §3.1.2.1), in the style
of node-oidc-provider's interaction policy. A check that fires means the user must log in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from idp.core import clock
from idp.flows.models import LoginSession


@dataclass(frozen=True)
class PromptContext:
    session: LoginSession | None
    prompts: frozenset[str]
    max_age: int | None
    hint_sub: str | None
    fresh_login: bool


Check = Callable[[PromptContext], bool]


def _no_session(ctx: PromptContext) -> bool:
    return ctx.session is None


def _prompt_login(ctx: PromptContext) -> bool:
    return bool({"login", "select_account"} & ctx.prompts) and not ctx.fresh_login


def _max_age(ctx: PromptContext) -> bool:
    """OIDC Core §3.1.2.1: re-authenticate when the last authentication is older than
    ``max_age`` seconds. ``max_age=0`` always does (as ``prompt=login``): compared with ``>``
    alone, a login in the same second as the request would be reused."""
    if ctx.max_age is None or ctx.session is None or ctx.fresh_login:
        return False
    return ctx.max_age == 0 or clock.now() - ctx.session.auth_time > ctx.max_age


def _hint_mismatch(ctx: PromptContext) -> bool:
    return bool(ctx.hint_sub and ctx.session and ctx.session.user_id != ctx.hint_sub)


LOGIN_CHECKS: tuple[tuple[str, Check], ...] = (
    ("no_session", _no_session),
    ("prompt_login", _prompt_login),
    ("max_age", _max_age),
    ("id_token_hint_mismatch", _hint_mismatch),
)


def login_reasons(ctx: PromptContext) -> list[str]:
    """Reason codes of every login check that fires, in table order."""
    return [name for name, check in LOGIN_CHECKS if check(ctx)]


@dataclass(frozen=True)
class ConsentContext:
    first_party: bool
    prompts: frozenset[str]
    missing: tuple[str, ...]
    fresh_consent: bool


ConsentCheck = Callable[[ConsentContext], bool]


def _prompt_consent(ctx: ConsentContext) -> bool:
    return "consent" in ctx.prompts and not ctx.fresh_consent and not ctx.first_party


def _not_granted(ctx: ConsentContext) -> bool:
    return bool(ctx.missing) and not ctx.first_party


CONSENT_CHECKS: tuple[tuple[str, ConsentCheck], ...] = (
    ("prompt_consent", _prompt_consent),
    ("scopes_not_granted", _not_granted),
)


def consent_reasons(ctx: ConsentContext) -> list[str]:
    """First-party applications never ask; third-party ones ask for what is not yet granted,
    and again on ``prompt=consent`` (OIDC Core §3.1.2.1)."""
    return [name for name, check in CONSENT_CHECKS if check(ctx)]
