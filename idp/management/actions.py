"""``/api/v2/actions/actions``: drafts, deployments, versions, rollback, tests, executions.

Auth0 Management API v2 routes and scopes (read/create/update/delete:actions); deploying,
rolling back and testing need ``create:actions`` as they do at Auth0.
"""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.wrappers import Response

from idp.actions import build, triggers
from idp.actions import service as actions
from idp.actions.engine import run_test
from idp.actions.models import Action
from idp.extensions import db, services
from idp.management import schemas
from idp.management import service as management
from idp.management.base import (
    body,
    bp,
    commit,
    no_content,
    operator,
    problem,
    reply,
    require,
)
from idp.management.schemas import SchemaError


def _limits() -> actions.Limits:
    return actions.Limits.from_config(services().config)


def _action(action: Action) -> dict[str, Any]:
    s = db.session
    latest = build.newest(s, action)
    return schemas.action_json(
        action,
        management.secret_rows(s, action),
        actions.live_version(s, action),
        latest.build_status if latest else build.BUILT,
    )


@bp.errorhandler(actions.NotBuilt)
def _not_built(exc: actions.NotBuilt) -> Response:
    """Binding, rolling back to or testing a version whose dependencies are not installed."""
    db.session.rollback()
    return problem(409, str(exc), "action_not_built")


def _page() -> tuple[int, int]:
    """Auth0's ``page`` (0-based) and ``per_page`` (at most 100)."""
    try:
        page = int(request.args.get("page", 0))
        per_page = int(request.args.get("per_page", 50))
    except ValueError:
        raise SchemaError("'page' and 'per_page' are integers") from None
    if page < 0 or not 1 <= per_page <= 100:
        raise SchemaError("'page' is 0 or more and 'per_page' between 1 and 100")
    return page, per_page


def paged(key: str, rows: list[Any]) -> Response:
    page, per_page = _page()
    start = page * per_page
    return reply(
        {key: rows[start : start + per_page], "total": len(rows), "page": page,
         "per_page": per_page}
    )  # fmt: skip


@bp.get("/actions/actions")
@require("read:actions")
def list_actions() -> Response:
    """Filter with ``trigger_id`` (Auth0 spells it ``triggerId``) and ``action_name``."""
    trigger = request.args.get("trigger_id") or request.args.get("triggerId")
    name = request.args.get("action_name") or request.args.get("actionName")
    if trigger and trigger not in triggers.TRIGGERS:
        raise SchemaError(f"unknown trigger {trigger!r}; one of: {', '.join(triggers.TRIGGERS)}")
    rows = actions.list_actions(db.session, trigger or None)
    return paged("actions", [_action(a) for a in rows if name is None or a.name == name])


@bp.post("/actions/actions")
@require("create:actions")
def create_action() -> Response:
    data = schemas.action_input(body(), create=True)
    action = management.create_action(db.session, _limits(), services().box, data)
    commit(changes_traffic=False)  # a draft with no version runs nowhere
    return reply(_action(action), 201)


@bp.get("/actions/actions/<action_id>")
@require("read:actions")
def get_action(action_id: str) -> Response:
    return reply(_action(management.get_action(db.session, action_id)))


@bp.patch("/actions/actions/<action_id>")
@require("update:actions")
def update_action(action_id: str) -> Response:
    """The draft changes; live traffic keeps the deployed code. Secrets, allowed hosts,
    configuration and timeout are not versioned (as in the CLI) and apply at once."""
    action = management.get_action(db.session, action_id)
    data = schemas.action_input(body(), create=False)
    management.update_action(db.session, _limits(), services().box, action, data)
    commit()
    return reply(_action(action))


@bp.delete("/actions/actions/<action_id>")
@require("delete:actions")
def delete_action(action_id: str) -> Response:
    force = request.args.get("force", "false").lower() in {"true", "1"}
    action = management.get_action(db.session, action_id)
    management.delete_action(db.session, action, services().actions.deps_root, force)
    commit()
    return no_content()


@bp.post("/actions/actions/<action_id>/deploy")
@require("create:actions")
def deploy_action(action_id: str) -> Response:
    """Freeze the draft into the next version and make it live (ARCHITECTURE.md §11)."""
    action = management.get_action(db.session, action_id)
    body()  # Auth0 sends no body; a malformed one is still refused
    svc = services()
    version = actions.deploy(db.session, _limits(), action, svc.actions.deps_root, operator())
    commit()  # with dependencies, this starts their install: the answer says "building"
    return reply(schemas.version_json(version, action))


@bp.get("/actions/actions/<action_id>/versions")
@require("read:actions")
def list_versions(action_id: str) -> Response:
    action = management.get_action(db.session, action_id)
    rows = actions.versions(db.session, action)
    return paged("versions", [schemas.version_json(v, action) for v in rows])


@bp.get("/actions/actions/<action_id>/versions/<version_id>")
@require("read:actions")
def get_version(action_id: str, version_id: str) -> Response:
    action = management.get_action(db.session, action_id)
    return reply(
        schemas.version_json(management.get_version(db.session, action, version_id), action)
    )


@bp.post("/actions/actions/<action_id>/versions/<version_id>/deploy")
@require("create:actions")
def rollback(action_id: str, version_id: str) -> Response:
    """Make an earlier version live again; ``{"update_draft": true}`` also restores the draft."""
    action = management.get_action(db.session, action_id)
    version = management.get_version(db.session, action, version_id)
    update_draft = schemas.rollback_input(body())
    management.rollback(db.session, action, version, update_draft)
    commit()
    return reply(schemas.version_json(version, action))


@bp.post("/actions/actions/<action_id>/test")
@require("create:actions")
def test_action(action_id: str) -> Response:
    """Run the draft (or ``version``) once against ``payload`` or the trigger's sample event.
    Nothing reaches a user or a token; the run is recorded as a test execution."""
    svc = services()
    action = management.get_action(db.session, action_id)
    event, number = schemas.test_input(body())
    if number is not None:  # a version whose dependencies are not installed never runs
        actions.require_built(action, management.get_version(db.session, action, str(number)))
    link = management.test_link(db.session, svc.box, svc.actions.deps_root, action, number)
    trigger_id = action.trigger
    commit(changes_traffic=False)  # never hold SQLite's write lock while the sandbox runs
    result = run_test(svc.actions, trigger_id, link, event)
    return reply({"payload": management.redact(result, link.secrets)})


@bp.get("/actions/actions/<action_id>/executions")
@require("read:actions")
def action_executions(action_id: str) -> Response:
    """Latest executions of one action with counts and p50/p99 (``limit``, at most 1000)."""
    try:
        limit = int(request.args.get("limit", 50))
    except ValueError:
        raise SchemaError("'limit' is an integer") from None
    if not 1 <= limit <= 1000:
        raise SchemaError("'limit' is between 1 and 1000")
    _flush_records()
    action = management.get_action(db.session, action_id)
    rows = actions.executions(db.session, action, limit)
    return reply(
        {
            "executions": [schemas.execution_json(e) for e in rows],
            "stats": actions.stats(db.session, action),
        }
    )


@bp.get("/actions/executions/<execution_id>")
@require("read:actions")
def get_execution(execution_id: str) -> Response:
    _flush_records()
    return reply(schemas.execution_json(management.get_execution(db.session, execution_id)))


def _flush_records() -> None:
    """Wait for this process's execution records still on their way to the database. Our own
    transaction ends first: on SQLite it may hold the one write lock the writer needs."""
    db.commit_if_used()
    services().actions.records.flush()
