"""Remembered consent: per user and application, revocable (by the user or an operator)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.consent.models import Consent
from idp.core import clock
from idp.core.crypto import random_token
from idp.core.errors import NotFoundError
from idp.oauth.models import AccessTokenRecord, RefreshToken
from idp.oauth.tokens import OIDC_SCOPES


def requested_grants(scope: str, audience: str | None) -> list[str]:
    """What a request asks for, in the form consent is stored in."""
    out = []
    for item in scope.split():
        if item in OIDC_SCOPES:
            out.append(item)
        elif audience:
            out.append(f"{audience}\t{item}")
    return out


def missing_grants(session: Session, user_id: str, client_id: str, wanted: list[str]) -> list[str]:
    row = session.scalar(
        select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
    )
    have = set(row.grants) if row else set()
    return [g for g in wanted if g not in have]


def record(session: Session, user_id: str, client_id: str, grants: list[str]) -> None:
    """Add ``grants`` to what the user has allowed the application."""
    now = clock.now()
    row = session.scalar(
        select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
    )
    if row is None:
        session.add(
            Consent(
                id="cns_" + random_token(12),
                user_id=user_id,
                client_id=client_id,
                grants=list(dict.fromkeys(grants)),
                created_at=now,
                updated_at=now,
            )
        )
        return
    row.grants = list(dict.fromkeys([*row.grants, *grants]))
    row.updated_at = now


def list_for_user(session: Session, user_id: str) -> list[Consent]:
    return list(session.scalars(select(Consent).where(Consent.user_id == user_id)))


def revoke(session: Session, user_id: str, client_id: str) -> None:
    """Forget the consent and end what it allowed: the app's refresh-token families for the
    user (and their access tokens) stop working (SECURITY.md S-RT-06)."""
    row = session.scalar(
        select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
    )
    if row is None:
        raise NotFoundError("no consent for this user and application")
    session.delete(row)
    session.execute(
        update(AccessTokenRecord)
        .where(AccessTokenRecord.user_id == user_id, AccessTokenRecord.client_id == client_id)
        .values(revoked=True)
    )
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.client_id == client_id)
        .values(status="revoked")
    )
