"""The admin role: who holds it, given and taken by ``idp admins add|remove``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.console.models import Admin
from idp.core import clock
from idp.core.errors import NotFoundError
from idp.identity.models import User
from idp.identity.service import normalise_email


def _user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFoundError(f"no user has the email {email!r}")
    return user


def add_admin(session: Session, email: str, added_by: str) -> User:
    """Give the user with ``email`` the admin role (again: nothing changes)."""
    user = _user(session, email)
    if session.get(Admin, user.id) is None:
        session.add(Admin(user_id=user.id, added_at=clock.now(), added_by=added_by[:255]))
    return user


def remove_admin(session: Session, email: str) -> User:
    user = _user(session, email)
    admin = session.get(Admin, user.id)
    if admin is None:
        raise NotFoundError(f"{user.email} is not an admin")
    session.delete(admin)
    return user


def admins(session: Session) -> list[tuple[User, Admin]]:
    query = select(User, Admin).join(Admin, Admin.user_id == User.id).order_by(User.email)
    return [(user, admin) for user, admin in session.execute(query)]


def is_admin(session: Session, user_id: str) -> bool:
    return session.get(Admin, user_id) is not None
