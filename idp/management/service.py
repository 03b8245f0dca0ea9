"""What the management API does beyond ``idp.actions.service``: the API's own resource server,
Auth0's request semantics (whole-list binding replace, version references, secret replace,
forced delete) and the test runner's preparation. No ``flask.request`` here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.actions import service as actions
from idp.actions import triggers
from idp.actions.engine import Link, link_for_test
from idp.actions.models import Action, ActionBinding, ActionExecution, ActionSecret, ActionVersion
from idp.core.crypto import SecretBox
from idp.management.schemas import ActionInput, BindingInput, Ref, SecretInput
from idp.oauth import service as oauth
from idp.oauth.models import ResourceServer

# The management API's scopes, as data: ensure_api adds the ones an existing API lacks.
SCOPES = (
    "read:actions", "create:actions", "update:actions", "delete:actions", "read:logs",
    "read:connections", "create:connections", "update:connections", "delete:connections",
    "read:users", "create:users", "update:users", "delete:users",
    "read:sessions", "delete:sessions", "read:grants", "delete:grants",
    "delete:guardian_enrollments",
    "read:clients", "create:clients", "update:clients", "delete:clients",
    "read:branding", "update:branding", "read:attack_protection", "update:attack_protection",
    "read:guardian_factors", "update:guardian_factors",
    "read:tenant_settings", "update:tenant_settings", "read:stats",
    "read:log_streams", "create:log_streams", "update:log_streams", "delete:log_streams",
    "read:resource_servers", "create:resource_servers", "update:resource_servers",
    "delete:resource_servers",
    "read:client_grants", "create:client_grants", "update:client_grants", "delete:client_grants",
    "read:signing_keys", "create:signing_keys", "update:signing_keys",
)  # fmt: skip
API_NAME = "idp Management API"


class Conflict(Exception):
    """The request contradicts the current state (409)."""


def management_audience(issuer: str) -> str:
    """Auth0's identifier for its Management API: ``https://<tenant>/api/v2/``."""
    return issuer.rstrip("/") + "/api/v2/"


def ensure_api(session: Session, issuer: str) -> ResourceServer:
    """Create the management API's resource server, or add scopes it lacks (idempotent), so
    that an operator can ``idp client-grants create`` a machine client onto it."""
    identifier = management_audience(issuer)
    api = session.scalar(select(ResourceServer).where(ResourceServer.identifier == identifier))
    if api is None:
        return oauth.create_api(session, identifier=identifier, name=API_NAME, scopes=list(SCOPES))
    missing = [s for s in SCOPES if s not in api.scopes]
    if missing:
        api.scopes = [*api.scopes, *missing]
    return api


# ---------------------------------------------------------------------------------- actions
def get_action(session: Session, action_id: str) -> Action:
    """By id (the API's identifier); the CLI's names work too."""
    return actions.get_action(session, action_id)


def secret_rows(session: Session, action: Action) -> list[tuple[str, int]]:
    """Names and update times; the values never leave the database encrypted column."""
    rows = session.execute(
        select(ActionSecret.name, ActionSecret.updated_at)
        .where(ActionSecret.action_id == action.id)
        .order_by(ActionSecret.name)
    ).all()
    return [(r.name, r.updated_at) for r in rows]


def _draft_kwargs(data: ActionInput) -> dict[str, Any]:
    return {
        "code": data.code,
        "dependencies": data.dependencies,
        "allowed_hosts": data.allowed_hosts,
        "configuration": data.configuration,
        "timeout_ms": data.timeout_ms,
    }


def create_action(
    session: Session, limits: actions.Limits, box: SecretBox, data: ActionInput
) -> Action:
    """A new draft (never deployed here: ``/deploy`` makes the first version)."""
    assert data.name is not None
    if session.scalar(select(Action.id).where(Action.name == data.name)) is not None:
        raise Conflict(f"an action named {data.name!r} already exists")
    action = actions.save_draft(session, limits, data.name, trigger=data.trigger,
                                **_draft_kwargs(data))  # fmt: skip
    for secret in data.secrets or []:
        assert secret.value is not None
        actions.set_secret(session, box, limits, action, secret.name, secret.value)
    return action


def update_action(
    session: Session, limits: actions.Limits, box: SecretBox, action: Action, data: ActionInput
) -> Action:
    """Update the draft. ``secrets``, when sent, is the whole list: a listed secret with a
    ``value`` is set, one without keeps its stored value, an unlisted one is deleted."""
    if data.name is not None and data.name != action.name:
        if not actions.NAME.fullmatch(data.name):
            raise actions.ActionError("a name is 1-128 letters, digits, spaces, '_', '.' or '-'")
        if session.scalar(select(Action.id).where(Action.name == data.name)) is not None:
            raise Conflict(f"an action named {data.name!r} already exists")
        action.name = data.name
        session.flush()
    actions.save_draft(session, limits, action.name, trigger=data.trigger, **_draft_kwargs(data))
    if data.secrets is not None:
        _replace_secrets(session, limits, box, action, data.secrets)
    return action


def _replace_secrets(
    session: Session,
    limits: actions.Limits,
    box: SecretBox,
    action: Action,
    secrets: list[SecretInput],
) -> None:
    stored = {name for name, _ in secret_rows(session, action)}
    for secret in secrets:
        if secret.value is None and secret.name not in stored:
            raise actions.ActionError(f"secret {secret.name!r} is new: it needs a 'value'")
    for name in stored - {s.name for s in secrets}:
        actions.delete_secret(session, action, name)
    session.flush()
    for secret in secrets:
        if secret.value is not None:
            actions.set_secret(session, box, limits, action, secret.name, secret.value)


def delete_action(session: Session, action: Action, deps_root: Path, force: bool) -> None:
    """Auth0: a bound action is deleted only with ``force=true`` (which unbinds it)."""
    bound = session.scalars(
        select(ActionBinding.trigger).where(ActionBinding.action_id == action.id)
    ).all()
    if bound and not force:
        raise Conflict(
            f"{action.name!r} is bound to {', '.join(bound)}; unbind it first or use force=true"
        )
    actions.delete_action(session, action, deps_root)


def get_version(session: Session, action: Action, ref: str) -> ActionVersion:
    """A version by its id (``ver_...``) or its number."""
    query = select(ActionVersion).where(ActionVersion.action_id == action.id)
    number = ref.isdigit() and ref.isascii()
    if number and len(ref) < 10:
        version = session.scalar(query.where(ActionVersion.number == int(ref)))
    else:  # a number too large for the column matches nothing (PostgreSQL would refuse it)
        version = None if number else session.scalar(query.where(ActionVersion.id == ref))
    if version is None:
        raise actions.NotFound(f"{action.name!r} has no version {ref}")
    return version


def rollback(
    session: Session, action: Action, version: ActionVersion, update_draft: bool
) -> ActionVersion:
    """Make an earlier version live; ``update_draft`` also copies it into the draft."""
    version = actions.rollback(session, action, version.number)
    if update_draft:
        action.code = version.code
        action.dependencies = list(version.dependencies)
    return version


def test_link(
    session: Session, box: SecretBox, deps_root: Path, action: Action, number: int | None
) -> Link:
    """What the test runner runs: the draft, or a deployed version (as ``idp actions test``)."""
    if number is not None:
        number = get_version(session, action, str(number)).number
    return link_for_test(session, box, deps_root, action, number)


def redact(value: Any, secrets: dict[str, str]) -> Any:
    """No secret value in an answer, even one the action put in a claim or a command (the
    same rule as stored logs: values of four characters or more)."""
    if isinstance(value, str):
        for name, secret in secrets.items():
            if len(secret) >= 4:
                value = value.replace(secret, f"[secret {name}]")
        return value
    if isinstance(value, dict):
        return {redact(str(k), secrets): redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    return value


def get_execution(session: Session, execution_id: str) -> ActionExecution:
    row = session.get(ActionExecution, execution_id)
    if row is None:
        raise actions.NotFound(f"no execution {execution_id!r}")
    return row


# ---------------------------------------------------------------------------------- bindings
def get_trigger(trigger_id: str) -> triggers.Trigger:
    trigger = triggers.TRIGGERS.get(trigger_id)
    if trigger is None:
        raise actions.NotFound(f"no trigger {trigger_id!r}")
    return trigger


def _by_ref(session: Session, trigger_id: str, ref: Ref) -> Action:
    """The action a binding request names; an unknown one is a bad request (400)."""
    action: Action | None
    if ref.type == "action_id":
        action = session.get(Action, ref.value)
    elif ref.type == "action_name":
        action = session.scalar(select(Action).where(Action.name == ref.value))
    elif ref.type == "binding_id":
        binding = session.get(ActionBinding, ref.value)
        ok = binding is not None and binding.trigger == trigger_id
        action = session.get(Action, binding.action_id) if binding and ok else None
    else:
        action = session.scalar(
            select(Action).where((Action.id == ref.value) | (Action.name == ref.value))
        )
    if action is None:
        raise actions.ActionError(f"no action with {ref.type} {ref.value!r}")
    return action


def _set_allowed_to_fail(binding: ActionBinding, value: bool | None) -> None:
    if value is None:
        return
    if value and triggers.get(binding.trigger).always_fail_closed:
        raise actions.ActionError(
            f"{binding.trigger} always fails closed; allowed_to_fail is refused"
        )
    binding.allowed_to_fail = value


def replace_bindings(
    session: Session, limits: actions.Limits, trigger_id: str, items: list[BindingInput]
) -> list[ActionBinding]:
    """Auth0's PATCH: the chain becomes exactly ``items``, in order (bindings kept keep their
    id and, unless told, their ``allowed_to_fail``)."""
    get_trigger(trigger_id)
    wanted = [(_by_ref(session, trigger_id, item.ref), item) for item in items]
    if len({a.id for a, _ in wanted}) != len(wanted):
        raise actions.ActionError("an action appears twice in the list")
    keep = {a.id for a, _ in wanted}
    for binding in actions.bindings(session, trigger_id):
        if binding.action_id not in keep:
            actions.unbind(session, session.get_one(Action, binding.action_id), trigger_id)
    session.flush()
    for index, (action, item) in enumerate(wanted):
        current = next(
            (b for b in actions.bindings(session, trigger_id) if b.action_id == action.id), None
        )
        if current is None:
            actions.bind(session, limits, action, trigger_id, index, bool(item.allowed_to_fail))
        else:
            actions.move(session, action, trigger_id, index)
            _set_allowed_to_fail(current, item.allowed_to_fail)
    session.flush()
    return actions.bindings(session, trigger_id)


def insert_binding(
    session: Session, limits: actions.Limits, trigger_id: str, item: BindingInput
) -> ActionBinding:
    """One binding, at ``position`` (0-based; the end by default), without resending the list."""
    get_trigger(trigger_id)
    action = _by_ref(session, trigger_id, item.ref)
    return actions.bind(
        session, limits, action, trigger_id, item.position, bool(item.allowed_to_fail)
    )


def find_binding(session: Session, trigger_id: str, ident: str) -> tuple[ActionBinding, Action]:
    """A bound link by binding id, action id or action name (404 when not bound here)."""
    get_trigger(trigger_id)
    for binding in actions.bindings(session, trigger_id):
        action = session.get_one(Action, binding.action_id)
        if ident in {binding.id, action.id, action.name}:
            return binding, action
    raise actions.NotFound(f"nothing bound to {trigger_id} as {ident!r}")


def update_binding(
    session: Session, trigger_id: str, ident: str, item: BindingInput
) -> ActionBinding:
    binding, action = find_binding(session, trigger_id, ident)
    if item.position is not None:
        actions.move(session, action, trigger_id, item.position)
    _set_allowed_to_fail(binding, item.allowed_to_fail)
    session.flush()
    return binding


def remove_binding(session: Session, trigger_id: str, ident: str) -> None:
    _binding, action = find_binding(session, trigger_id, ident)
    actions.unbind(session, action, trigger_id)
