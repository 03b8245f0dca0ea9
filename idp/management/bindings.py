"""``/api/v2/actions/triggers``: the trigger table and each trigger's ordered chain.

``PATCH .../bindings`` is Auth0's whole-list replace. Issue 4 also asks to insert, remove or
move one binding without resending the list: ``POST .../bindings``, ``GET``, ``PATCH`` and
``DELETE .../bindings/{id}``, where ``{id}`` is a binding id, an action id or an action name;
those single-binding routes carry the binding's ``ETag`` and honour ``If-Match``. Positions
are 0-based. Every change is committed before the generation stamp moves, so workers reload
the new chain, never the old one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from idp.actions import service as actions
from idp.actions import triggers
from idp.actions.models import Action, ActionBinding
from idp.extensions import db, services
from idp.management import service as management
from idp.management.registry import Item, route
from idp.management.schemas import (
    MAX_LIST,
    RUNTIME,
    TRIGGER_VERSION,
    BindingInput,
    Paging,
    Position,
    Ref,
    Text128,
    TriggerRefOut,
    iso,
    page_of,
    trigger_refs,
)
from idp.management.validation import Body, Out

TAG = "actions"


# ---------------------------------------------------------------------------------- schemas
class RefIn(Body):
    type: Literal["action_id", "action_name", "binding_id"]
    value: Text128


class BindingItem(Body):
    ref: RefIn
    display_name: Text128 | None = None
    allowed_to_fail: bool | None = None
    secrets: list[Any] | None = Field(None, max_length=0, description="Refused if not empty.")

    def to_input(self) -> BindingInput:
        return BindingInput(Ref(self.ref.type, self.ref.value), None, self.allowed_to_fail)


class BindingsReplace(Body):
    """Auth0's whole-list replace, in order (an empty list unbinds everything)."""

    bindings: list[BindingItem] = Field(max_length=MAX_LIST)


class BindingInsert(Body):
    """One binding, named by ``ref`` or by ``action`` (an id or a name)."""

    ref: RefIn | None = None
    action: Text128 | None = None
    position: Position | None = None
    allowed_to_fail: bool | None = None
    display_name: Text128 | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Any:
        if (self.ref is None) == (self.action is None):
            raise ValueError("name the action with 'ref' or 'action' (one of them)")
        return self

    def to_input(self) -> BindingInput:
        target = (
            Ref(self.ref.type, self.ref.value) if self.ref else Ref("action", self.action or "")
        )
        return BindingInput(target, self.position, self.allowed_to_fail)


class BindingUpdate(Body):
    """Move one link of the chain and/or change ``allowed_to_fail``."""

    position: Position | None = None
    allowed_to_fail: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            raise ValueError("send 'position' and/or 'allowed_to_fail'")
        return data

    def to_input(self) -> BindingInput:
        return BindingInput(Ref("-", "-"), self.position, self.allowed_to_fail)


class BoundAction(Out):
    id: str
    name: str
    supported_triggers: list[TriggerRefOut]
    deployed_version: int | None


class BindingOut(Out):
    id: str
    trigger_id: str
    display_name: str
    position: int
    allowed_to_fail: bool
    action: BoundAction
    created_at: str | None
    updated_at: str | None


class BindingsOut(Out):
    bindings: list[BindingOut]


class BindingsPage(BindingsOut):
    total: int
    page: int
    per_page: int


class TriggerOut(Out):
    id: str
    version: str
    status: str
    runtimes: list[str]
    default_runtime: str
    compatible_triggers: list[Any]
    blocking: bool
    always_fail_closed: bool
    description: str
    schema_: dict[str, Any] = Field(alias="schema", description="Event fields, sample, api.")


class TriggersOut(Out):
    triggers: list[TriggerOut]


def binding_json(binding: ActionBinding, action: Action) -> dict[str, Any]:
    return {
        "id": binding.id,
        "trigger_id": binding.trigger,
        "display_name": action.name,
        "position": binding.position,
        "allowed_to_fail": binding.allowed_to_fail,
        "action": {
            "id": action.id,
            "name": action.name,
            "supported_triggers": trigger_refs(action.trigger),
            "deployed_version": action.live_version,
        },
        "created_at": iso(binding.created_at),
        "updated_at": iso(binding.created_at),
    }


def trigger_json(trigger: triggers.Trigger) -> dict[str, Any]:
    return {
        "id": trigger.id,
        "version": TRIGGER_VERSION,
        "status": "CURRENT",
        "runtimes": [RUNTIME],
        "default_runtime": RUNTIME,
        "compatible_triggers": [],
        "blocking": trigger.blocking,
        "always_fail_closed": trigger.always_fail_closed,
        "description": trigger.description,
        "schema": triggers.schema(trigger),
    }


# ---------------------------------------------------------------------------------- routes


def _limits() -> actions.Limits:
    return actions.Limits.from_config(services().config)


def _bump() -> None:
    services().actions.bump()


def _json(binding: ActionBinding) -> dict[str, Any]:
    return binding_json(binding, db.session.get_one(Action, binding.action_id))


def _chain(trigger_id: str) -> list[dict[str, Any]]:
    return [_json(b) for b in actions.bindings(db.session, trigger_id)]


def _one(trigger_id: str, id: str, lock: bool = False) -> dict[str, Any]:
    binding, action = management.find_binding(db.session, trigger_id, id)
    if lock:
        db.session.refresh(binding, with_for_update=True)
    return binding_json(binding, action)


ITEM = Item(BindingOut, lambda lock=False, trigger_id="", id="": _one(trigger_id, id, lock))


@route("/actions/triggers", scope="read:actions", tag=TAG, summary="List triggers",
       response=TriggersOut)  # fmt: skip
def list_triggers() -> dict[str, Any]:
    """Every trigger with its published schema (event fields, sample event, ``api`` methods)."""
    return {"triggers": [trigger_json(t) for t in triggers.TRIGGERS.values()]}


@route("/actions/triggers/{trigger_id}/bindings", scope="read:actions", tag=TAG,
       summary="List a trigger's bindings", query=Paging, response=BindingsPage)  # fmt: skip
def list_bindings(trigger_id: str, query: Paging) -> dict[str, Any]:
    """In the order they run."""
    management.get_trigger(trigger_id)
    return page_of("bindings", _chain(trigger_id), query)


@route("/actions/triggers/{trigger_id}/bindings", "PATCH", scope="update:actions", tag=TAG,
       summary="Replace a trigger's bindings", body=BindingsReplace, response=BindingsOut,
       after_commit=_bump)  # fmt: skip
def replace_bindings(trigger_id: str, body: BindingsReplace) -> dict[str, Any]:
    """``{"bindings": [{"ref": {"type": "action_name"|"action_id"|"binding_id", "value":
    ...}}, ...]}``: the chain becomes exactly this list (kept bindings keep their id)."""
    management.get_trigger(trigger_id)
    items = [item.to_input() for item in body.bindings]
    management.replace_bindings(db.session, _limits(), trigger_id, items)
    return {"bindings": _chain(trigger_id)}


@route("/actions/triggers/{trigger_id}/bindings", "POST", scope="update:actions", tag=TAG,
       summary="Bind one action", body=BindingInsert, response=BindingOut, status=201,
       after_commit=_bump)  # fmt: skip
def insert_binding(trigger_id: str, body: BindingInsert) -> dict[str, Any]:
    """``{"action": id or name, "position"?: n, "allowed_to_fail"?: bool}`` (or ``ref``),
    without resending the list; a deployed action only."""
    management.get_trigger(trigger_id)
    binding = management.insert_binding(db.session, _limits(), trigger_id, body.to_input())
    return _json(binding)


@route("/actions/triggers/{trigger_id}/bindings/{id}", scope="read:actions", tag=TAG,
       summary="Get one binding", response=BindingOut, item=ITEM)  # fmt: skip
def get_binding(trigger_id: str, id: str) -> dict[str, Any]:
    """``{id}``: the binding's id, its action's id or its action's name."""
    return _one(trigger_id, id)


@route("/actions/triggers/{trigger_id}/bindings/{id}", "PATCH", scope="update:actions", tag=TAG,
       summary="Move one binding", body=BindingUpdate, response=BindingOut, item=ITEM,
       after_commit=_bump)  # fmt: skip
def update_binding(trigger_id: str, id: str, body: BindingUpdate) -> dict[str, Any]:
    """``{"position"?: n, "allowed_to_fail"?: bool}``: move one link of the chain."""
    binding = management.update_binding(db.session, trigger_id, id, body.to_input())
    return _json(binding)


@route("/actions/triggers/{trigger_id}/bindings/{id}", "DELETE", scope="update:actions",
       tag=TAG, summary="Unbind one action", status=204, item=ITEM,
       after_commit=_bump)  # fmt: skip
def remove_binding(trigger_id: str, id: str) -> None:
    management.remove_binding(db.session, trigger_id, id)
