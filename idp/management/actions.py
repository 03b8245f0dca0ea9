"""``/api/v2/actions/actions``: drafts, deployments, versions, rollback, tests, executions.

Auth0 Management API v2 routes and scopes (read/create/update/delete:actions); deploying,
rolling back and testing need ``create:actions`` as they do at Auth0. The schemas are in
``schemas.py`` (shared with the bindings). ``{id}`` is the action's id or its name. Lists are
Auth0's ``{actions, total, page, per_page}``. ``GET``/``PATCH``/``DELETE`` of an action carry
its ``ETag`` and honour ``If-Match``. A change that reaches live traffic (an update, a delete,
a deploy, a rollback) moves the generation stamp once committed, so that every worker reloads
the new chain, never the old one.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.actions import build
from idp.actions import service as actions
from idp.actions.engine import run_test
from idp.actions.models import Action, ActionExecution
from idp.extensions import db, services
from idp.management import service as management
from idp.management.base import body as json_body
from idp.management.base import bp, operator, problem
from idp.management.registry import Item, route
from idp.management.schemas import (
    ActionCreate,
    ActionOut,
    ActionsPage,
    ActionUpdate,
    Paging,
    RollbackBody,
    TriggerId,
    VersionOut,
    VersionsPage,
    action_json,
    iso,
    page_of,
    version_json,
)
from idp.management.validation import Body, Out, Query

TAG = "actions"


class ActionsQuery(Paging):
    triggerId: TriggerId | None = Field(None, description="Only this trigger's actions.")
    trigger_id: TriggerId | None = Field(None, description="idp's spelling of triggerId.")
    actionName: str | None = Field(None, max_length=128, description="Only this name.")
    action_name: str | None = Field(None, max_length=128, description="idp's actionName.")
    deployed: bool | None = Field(None, description="Only (un)deployed actions.")
    installed: bool | None = Field(None, description="Only actions from the marketplace.")


class DeleteQuery(Query):
    force: bool = Field(False, description="Also unbind it from its triggers.")


class ExecutionsQuery(Query):
    limit: int = Field(50, ge=1, le=1000, description="How many of the latest executions.")


class TestBody(Body):
    payload: dict[str, Any] | None = Field(None, description="The event; a sample if absent.")
    version: int | None = Field(None, ge=1, le=1_000_000, description="A deployed version.")


class ExecutionOut(Out):
    id: str
    trigger_id: str
    status: str
    action_id: str
    action_version: int | None
    request_id: str | None
    client_id: str | None
    user_id: str | None
    error: str | None
    logs: str
    commands: list[dict[str, Any]]
    duration_ms: float
    test: bool
    created_at: str | None
    updated_at: str | None


class ExecutionsOut(Out):
    executions: list[ExecutionOut]
    stats: dict[str, Any] = Field(description="executions, errors, denied, p50_ms, p99_ms.")


class TestOut(Out):
    payload: dict[str, Any] = Field(description="The run: commands, effects, logs, error.")


def execution_json(row: ActionExecution) -> dict[str, Any]:
    """Logs and commands were scrubbed of the action's secrets when they were recorded."""
    return {
        "id": row.id,
        "trigger_id": row.trigger,
        "status": row.outcome,
        "action_id": row.action_id,
        "action_version": row.version,
        "request_id": row.request_id,
        "client_id": row.client_id,
        "user_id": row.user_id,
        "error": row.error,
        "logs": row.logs,
        "commands": row.commands,
        "duration_ms": row.duration_ms,
        "test": row.test,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.created_at),
    }


def _limits() -> actions.Limits:
    return actions.Limits.from_config(services().config)


def _bump() -> None:
    """After the commit (never before: a worker could reload the old chain)."""
    services().actions.bump()


def _action(action: Action) -> dict[str, Any]:
    s = db.session
    latest = build.newest(s, action)
    return action_json(
        action,
        management.secret_rows(s, action),
        actions.live_version(s, action),
        latest.build_status if latest else build.BUILT,
    )


def find(ident: str, lock: bool = False) -> Action:
    """By id or name; ``lock``: the row is held until the write commits."""
    query = select(Action).where((Action.id == ident) | (Action.name == ident))
    action = db.session.scalar(query.with_for_update() if lock else query)
    if action is None:
        raise actions.NotFound(f"no action named {ident!r}")
    return action


ITEM = Item(ActionOut, lambda lock=False, id="": _action(find(id, lock)))


@bp.errorhandler(actions.NotBuilt)
def _not_built(exc: actions.NotBuilt) -> Response:
    """Binding, rolling back to or testing a version whose dependencies are not installed."""
    db.session.rollback()
    return problem(409, str(exc), "action_not_built")


@route("/actions/actions", scope="read:actions", tag=TAG, summary="List actions",
       query=ActionsQuery, response=ActionsPage)  # fmt: skip
def list_actions(query: ActionsQuery) -> dict[str, Any]:
    """By name; filters ``triggerId`` (or ``trigger_id``), ``actionName``, ``deployed``,
    ``installed``."""
    name = query.actionName or query.action_name
    rows = [
        a
        for a in actions.list_actions(db.session, query.triggerId or query.trigger_id)
        if name in (None, a.name)
        and query.deployed in (None, a.live_version is not None)
        and query.installed in (None, a.marketplace_slug is not None)
    ]
    return page_of("actions", [_action(a) for a in rows], query)


@route("/actions/actions", "POST", scope="create:actions", tag=TAG, summary="Create an action",
       body=ActionCreate, response=ActionOut, status=201)  # fmt: skip
def create_action(body: ActionCreate) -> dict[str, Any]:
    """A draft (it runs nowhere until ``/deploy``); secrets are write-only."""
    action = management.create_action(db.session, _limits(), services().box, body.to_input())
    db.session.flush()
    return _action(action)


@route("/actions/actions/{id}", scope="read:actions", tag=TAG, summary="Get an action",
       response=ActionOut, item=ITEM)  # fmt: skip
def get_action(id: str) -> dict[str, Any]:
    return _action(find(id))


@route("/actions/actions/{id}", "PATCH", scope="update:actions", tag=TAG, item=ITEM,
       summary="Update an action", body=ActionUpdate, response=ActionOut,
       after_commit=_bump)  # fmt: skip
def update_action(id: str, body: ActionUpdate) -> dict[str, Any]:
    """The draft changes; live traffic keeps the deployed code. Secrets, allowed hosts,
    configuration and timeout are not versioned (as in the CLI) and apply at once."""
    action = find(id, lock=True)
    management.update_action(db.session, _limits(), services().box, action, body.to_input())
    db.session.flush()
    return _action(action)


@route("/actions/actions/{id}", "DELETE", scope="delete:actions", tag=TAG, item=ITEM,
       summary="Delete an action", query=DeleteQuery, status=204, errors=(409,),
       after_commit=_bump)  # fmt: skip
def delete_action(id: str, query: DeleteQuery) -> None:
    """A bound action is deleted only with ``force=true`` (which unbinds it), else 409."""
    action = find(id, lock=True)
    management.delete_action(db.session, action, services().actions.deps_root, query.force)


@route("/actions/actions/{id}/deploy", "POST", scope="create:actions", tag=TAG,
       summary="Deploy an action", response=VersionOut, after_commit=_bump)  # fmt: skip
def deploy_action(id: str) -> dict[str, Any]:
    """Freeze the draft into the next version and make it live (ARCHITECTURE.md §11). With
    dependencies, the answer is the version ``building`` (it goes live once installed)."""
    action = find(id, lock=True)
    json_body()  # Auth0 sends no body; a malformed one is still refused
    svc = services()
    version = actions.deploy(db.session, _limits(), action, svc.actions.deps_root, operator())
    db.session.flush()
    return version_json(version, action)


@route("/actions/actions/{id}/versions", scope="read:actions", tag=TAG,
       summary="List an action's versions", query=Paging, response=VersionsPage)  # fmt: skip
def list_versions(id: str, query: Paging) -> dict[str, Any]:
    """Newest first."""
    action = find(id)
    rows = [version_json(v, action) for v in actions.versions(db.session, action)]
    return page_of("versions", rows, query)


@route("/actions/actions/{id}/versions/{version_id}", scope="read:actions", tag=TAG,
       summary="Get a version", response=VersionOut)  # fmt: skip
def get_version(id: str, version_id: str) -> dict[str, Any]:
    """``{version_id}`` is the version's id (``ver_...``) or its number."""
    action = find(id)
    return version_json(management.get_version(db.session, action, version_id), action)


@route("/actions/actions/{id}/versions/{version_id}/deploy", "POST", scope="create:actions",
       tag=TAG, summary="Roll back to a version", body=RollbackBody, response=VersionOut,
       after_commit=_bump)  # fmt: skip
def rollback(id: str, version_id: str, body: RollbackBody) -> dict[str, Any]:
    """Make an earlier version live again; ``{"update_draft": true}`` also restores the draft."""
    action = find(id, lock=True)
    version = management.get_version(db.session, action, version_id)
    management.rollback(db.session, action, version, body.update_draft)
    db.session.flush()
    return version_json(version, action)


@route("/actions/actions/{id}/test", "POST", scope="create:actions", tag=TAG,
       summary="Test an action", body=TestBody, response=TestOut)  # fmt: skip
def test_action(id: str, body: TestBody) -> dict[str, Any]:
    """Run the draft (or ``version``) once against ``payload`` or the trigger's sample event.
    Nothing reaches a user or a token; the run is recorded as a test execution."""
    svc = services()
    action = find(id)
    if body.version is not None:  # a version whose dependencies are not installed never runs
        version = management.get_version(db.session, action, str(body.version))
        actions.require_built(action, version)
    link = management.test_link(db.session, svc.box, svc.actions.deps_root, action, body.version)
    trigger_id = action.trigger
    db.session.commit()  # never hold SQLite's write lock while the sandbox runs
    result = run_test(svc.actions, trigger_id, link, body.payload)
    return {"payload": management.redact(result, link.secrets)}


@route("/actions/actions/{id}/executions", scope="read:actions", tag=TAG,
       summary="List an action's executions", query=ExecutionsQuery,
       response=ExecutionsOut)  # fmt: skip
def action_executions(id: str, query: ExecutionsQuery) -> dict[str, Any]:
    """The latest executions of one action with counts and p50/p99 (``limit``)."""
    _flush_records()
    action = find(id)
    rows = actions.executions(db.session, action, query.limit)
    return {
        "executions": [execution_json(e) for e in rows],
        "stats": actions.stats(db.session, action),
    }


@route("/actions/executions/{id}", scope="read:actions", tag=TAG, summary="Get an execution",
       response=ExecutionOut)  # fmt: skip
def get_execution(id: str) -> dict[str, Any]:
    _flush_records()
    return execution_json(management.get_execution(db.session, id))


def _flush_records() -> None:
    """Wait for this process's execution records still on their way to the database. Our own
    transaction ends first: on SQLite it may hold the one write lock the writer needs."""
    db.commit_if_used()
    services().actions.records.flush()
