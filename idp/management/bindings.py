"""``/api/v2/actions/triggers``: the trigger table and each trigger's ordered chain.

``PATCH .../bindings`` is Auth0's whole-list replace. Issue 4 also asks to insert, remove or
move one binding without resending the list: ``POST .../bindings``, ``DELETE`` and ``PATCH
.../bindings/{id}``, where ``{id}`` is a binding id, an action id or an action name. Positions
are 0-based. Every change is committed before the generation stamp moves, so workers reload
the new chain, never the old one.
"""

from __future__ import annotations

from werkzeug.wrappers import Response

from idp.actions import service as actions
from idp.actions import triggers
from idp.actions.models import Action, ActionBinding
from idp.extensions import db, services
from idp.management import schemas
from idp.management import service as management
from idp.management.actions import paged
from idp.management.base import body, bp, commit, no_content, reply, require


def _limits() -> actions.Limits:
    return actions.Limits.from_config(services().config)


def _json(binding: ActionBinding) -> dict[str, object]:
    return schemas.binding_json(binding, db.session.get_one(Action, binding.action_id))


def _chain(trigger_id: str) -> list[dict[str, object]]:
    return [_json(b) for b in actions.bindings(db.session, trigger_id)]


@bp.get("/actions/triggers")
@require("read:actions")
def list_triggers() -> Response:
    """Every trigger with its published schema (event fields, sample event, ``api`` methods)."""
    return reply({"triggers": [schemas.trigger_json(t) for t in triggers.TRIGGERS.values()]})


@bp.get("/actions/triggers/<trigger_id>/bindings")
@require("read:actions")
def list_bindings(trigger_id: str) -> Response:
    management.get_trigger(trigger_id)
    return paged("bindings", _chain(trigger_id))


@bp.patch("/actions/triggers/<trigger_id>/bindings")
@require("update:actions")
def replace_bindings(trigger_id: str) -> Response:
    """``{"bindings": [{"ref": {"type": "action_name"|"action_id", "value": ...}}, ...]}``."""
    management.get_trigger(trigger_id)
    items = schemas.binding_list(body())
    management.replace_bindings(db.session, _limits(), trigger_id, items)
    commit()
    return reply({"bindings": _chain(trigger_id)})


@bp.post("/actions/triggers/<trigger_id>/bindings")
@require("update:actions")
def insert_binding(trigger_id: str) -> Response:
    """``{"action": id or name, "position"?: n, "allowed_to_fail"?: bool}`` (or ``ref``)."""
    management.get_trigger(trigger_id)
    item = schemas.binding_insert(body())
    binding = management.insert_binding(db.session, _limits(), trigger_id, item)
    commit()
    return reply(_json(binding), 201)


@bp.patch("/actions/triggers/<trigger_id>/bindings/<ident>")
@require("update:actions")
def update_binding(trigger_id: str, ident: str) -> Response:
    """``{"position"?: n, "allowed_to_fail"?: bool}``: move one link of the chain."""
    management.find_binding(db.session, trigger_id, ident)
    item = schemas.binding_update(body())
    binding = management.update_binding(db.session, trigger_id, ident, item)
    commit()
    return reply(_json(binding))


@bp.delete("/actions/triggers/<trigger_id>/bindings/<ident>")
@require("update:actions")
def remove_binding(trigger_id: str, ident: str) -> Response:
    management.remove_binding(db.session, trigger_id, ident)
    commit()
    return no_content()
