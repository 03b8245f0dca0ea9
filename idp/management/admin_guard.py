"""Admins' credentials are changed from the console only.

A console admin holds every management scope (idp.console), so whoever can change an admin's
email, password, block, second factors or identities can become that admin. A machine client
granted only ``update:users`` must not thereby gain the whole API: such writes on a user
holding the admin role are refused (403) unless the caller is the console, where an admin
acts, or the role is taken away first (``idp admins remove``, on the instance's host).
"""

from __future__ import annotations

from flask import g
from werkzeug.wrappers import Response

from idp.console.service import is_admin
from idp.extensions import db
from idp.management.base import bp, problem


class AdminProtected(Exception):
    """A write on an admin's credentials by a client other than the console (403)."""


def guard_admin(user_id: str, what: str) -> None:
    """Refuse ``what`` on ``user_id`` when the user is an admin and the caller no console."""
    if g.management_token.get("admin"):
        return
    if is_admin(db.session, user_id):
        raise AdminProtected(
            f"The user is an admin: {what} only from the admin console "
            "(or take the admin role away first: idp admins remove)."
        )


@bp.errorhandler(AdminProtected)
def _refused(exc: AdminProtected) -> Response:
    db.session.rollback()
    return problem(403, str(exc), "admin_protected")
