"""``gen_*`` helpers that create data through the services, as the CLI does."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from flask import Flask

from idp.extensions import db, services
from idp.identity import service as identity
from idp.oauth import service as oauth

RP = "https://rp.test/cb"
RP_LOGOUT = "https://rp.test/logged-out"


@dataclass
class TestClient:
    client_id: str
    client_secret: str | None
    redirect_uri: str | None

    @property
    def basic(self) -> tuple[str, str]:
        assert self.client_secret is not None
        return (self.client_id, self.client_secret)


@dataclass
class TestUser:
    user_id: str
    email: str
    password: str


class Factory:
    def __init__(self, app: Flask) -> None:
        self.app = app

    def gen_client(
        self,
        app_type: str = "regular_web",
        redirect_uris: list[str] | None = None,
        post_logout_redirect_uris: list[str] | None = None,
        auth_method: str | None = None,
        first_party: bool = True,
    ) -> TestClient:
        if redirect_uris is None:
            redirect_uris = [] if app_type == "m2m" else [RP]
        if post_logout_redirect_uris is None:
            post_logout_redirect_uris = [] if app_type == "m2m" else [RP_LOGOUT]
        with self.app.app_context():
            created = oauth.create_client(
                db.session,
                services().box,
                name=f"test {app_type}",
                app_type=app_type,
                redirect_uris=redirect_uris,
                post_logout_redirect_uris=post_logout_redirect_uris,
                first_party=first_party,
            )
            if auth_method:
                oauth.set_auth_method(db.session, created.client.client_id, auth_method)
            db.session.commit()
            return TestClient(
                created.client.client_id,
                created.client_secret,
                redirect_uris[0] if redirect_uris else None,
            )

    def gen_user(self, password: str | None = None, **kwargs: Any) -> TestUser:
        password = password or secrets.token_urlsafe(12)
        email = kwargs.pop("email", f"user-{secrets.token_hex(4)}@example.test")
        with self.app.app_context():
            user = identity.create_user(
                db.session,
                services().passwords,
                email=email,
                password=password,
                email_verified=kwargs.pop("email_verified", True),
            )
            db.session.commit()
            return TestUser(user.id, user.email, password)

    def gen_api(self, identifier: str | None = None, scopes: list[str] | None = None) -> str:
        identifier = identifier or f"https://api-{secrets.token_hex(4)}.test"
        with self.app.app_context():
            oauth.create_api(
                db.session,
                identifier=identifier,
                name="test api",
                scopes=scopes or ["read:things", "write:things"],
            )
            db.session.commit()
        return identifier

    def gen_client_grant(self, client_id: str, audience: str, scopes: list[str]) -> None:
        with self.app.app_context():
            oauth.create_client_grant(
                db.session, client_id=client_id, audience=audience, scopes=scopes
            )
            db.session.commit()

    def m2m(self, scopes: list[str] | None = None) -> tuple[TestClient, str]:
        """An m2m client with a grant on a fresh API; returns (client, audience)."""
        audience = self.gen_api()
        client = self.gen_client("m2m")
        self.gen_client_grant(client.client_id, audience, scopes or ["read:things"])
        return client, audience

    def gen_action(
        self,
        name: str,
        trigger: str,
        code: str,
        *,
        bind: bool = True,
        secrets: dict[str, str] | None = None,
        allowed_hosts: list[str] | None = None,
        configuration: dict[str, Any] | None = None,
        allowed_to_fail: bool = False,
        position: int | None = None,
        timeout_ms: int | None = None,
        dependencies: list[str] | None = None,
    ) -> str:
        """Save, deploy and (by default) bind an action, as `idp actions deploy` + `bind` do."""
        from idp.actions import service as actions

        with self.app.app_context():
            svc = services()
            limits = actions.Limits.from_config(svc.config)
            action = actions.save_draft(
                db.session,
                limits,
                name,
                trigger=trigger,
                code=code,
                allowed_hosts=allowed_hosts,
                configuration=configuration,
                timeout_ms=timeout_ms,
                dependencies=dependencies,
            )
            for key, value in (secrets or {}).items():
                actions.set_secret(db.session, svc.box, limits, action, key, value)
            actions.deploy(db.session, limits, action, svc.actions.deps_root, "tests")
            if dependencies:  # pip runs after the commit, in the background: wait for it
                from idp.actions import build

                db.session.commit()
                assert build.wait(300), "the dependencies were not installed in time"
                db.session.refresh(action)
            if bind:
                actions.bind(db.session, limits, action, trigger, position, allowed_to_fail)
            action_id = action.id
            db.session.commit()
            svc.actions.bump()
            return action_id

    def executions(self, action_id: str) -> list[Any]:
        """The action's execution records, oldest first, once this server's writer has stored
        what it was handed (records are written off the request path)."""
        from sqlalchemy import select

        from idp.actions.models import ActionExecution

        with self.app.app_context():
            assert services().actions.records.flush(), "execution records were not written"
            rows = list(
                db.session.scalars(
                    select(ActionExecution)
                    .where(ActionExecution.action_id == action_id)
                    .order_by(ActionExecution.created_at)
                )
            )
            db.session.expunge_all()
            return rows

    def clear_actions(self) -> None:
        from sqlalchemy import delete

        from idp.actions.models import Action, ActionBinding

        with self.app.app_context():
            db.session.execute(delete(ActionBinding))
            db.session.execute(delete(Action))
            db.session.commit()
            services().actions.bump()
