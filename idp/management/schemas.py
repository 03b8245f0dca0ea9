"""Request bodies and response shapes of ``/api/v2/actions`` (Auth0 Management API v2 shapes).

Inputs are checked strictly: unknown fields, wrong types and out-of-range values are refused
with a 400 that names the field. Outputs never carry a secret value: secrets are listed by name
and update time only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from idp.actions import triggers
from idp.actions.models import Action, ActionBinding, ActionExecution, ActionVersion

RUNTIME = "python3"
TRIGGER_VERSION = "v1"
REF_TYPES = ("action_id", "action_name", "binding_id")
_SPEC = re.compile(r"[<>=!~]")
MAX_LIST = 100  # the configured per-trigger limit is checked by the service


class SchemaError(ValueError):
    """A request body that does not fit its schema (400, or ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------------- inputs
def _only(data: dict[str, Any], allowed: set[str], where: str = "body") -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise SchemaError(f"unknown field(s) in {where}: {', '.join(extra)}")


def _str(data: dict[str, Any], key: str, limit: int = 256) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise SchemaError(f"{key!r} must be a non-empty string of at most {limit} characters")
    return value


def _int(data: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SchemaError(f"{key!r} must be an integer between {low} and {high}")
    return value


def _bool(data: dict[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise SchemaError(f"{key!r} must be true or false")
    return value


def _objects(data: dict[str, Any], key: str, limit: int = 100) -> list[dict[str, Any]] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > limit:
        raise SchemaError(f"{key!r} must be a list of at most {limit} objects")
    if not all(isinstance(item, dict) for item in value):
        raise SchemaError(f"each item of {key!r} must be an object")
    return value


def requirement(dep: dict[str, Any]) -> str:
    """Auth0's ``{name, version}`` to a pip requirement line (``latest``: unpinned)."""
    _only(dep, {"name", "version", "registry_url"}, "dependencies")
    name = _str(dep, "name", 128)
    version = _str(dep, "version", 64) or "latest"
    if name is None or dep.get("registry_url"):
        raise SchemaError("a dependency is {name, version} from the default index")
    if version == "latest":
        return name
    return name + (version if _SPEC.match(version) else f"=={version}")


@dataclass(frozen=True)
class SecretInput:
    name: str
    value: str | None


@dataclass(frozen=True)
class ActionInput:
    """POST (create) and PATCH (update) of an action; ``None`` leaves a field as it is."""

    name: str | None = None
    trigger: str | None = None
    code: str | None = None
    dependencies: list[str] | None = None
    secrets: list[SecretInput] | None = None
    allowed_hosts: list[str] | None = None
    configuration: dict[str, Any] | None = None
    timeout_ms: int | None = None


_ACTION_FIELDS = {"name", "supported_triggers", "trigger", "code", "dependencies", "secrets",
                  "runtime", "allowed_hosts", "configuration", "timeout_ms"}  # fmt: skip


def action_input(data: dict[str, Any], *, create: bool) -> ActionInput:
    _only(data, _ACTION_FIELDS)
    runtime = _str(data, "runtime", 32)
    if runtime not in (None, RUNTIME, "python"):
        raise SchemaError(f"'runtime' is {RUNTIME!r}: actions are Python")
    trigger = _trigger_field(data)
    code = data.get("code")
    if code is not None and not isinstance(code, str):
        raise SchemaError("'code' must be a string")
    deps = _objects(data, "dependencies")
    secrets = [_secret(item, create) for item in _objects(data, "secrets") or []]
    if len({s.name for s in secrets}) != len(secrets):
        raise SchemaError("a secret name appears twice")
    hosts = data.get("allowed_hosts")
    if hosts is not None and (
        not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts)
    ):
        raise SchemaError("'allowed_hosts' must be a list of host names")
    configuration = data.get("configuration")
    if configuration is not None and not isinstance(configuration, dict):
        raise SchemaError("'configuration' must be an object")
    parsed = ActionInput(
        name=_str(data, "name", 128),
        trigger=trigger,
        code=code,
        dependencies=None if deps is None else [requirement(d) for d in deps],
        secrets=secrets if "secrets" in data and data["secrets"] is not None else None,
        allowed_hosts=hosts,
        configuration=configuration,
        timeout_ms=_int(data, "timeout_ms", 100, 20_000),
    )
    if create and (parsed.name is None or parsed.trigger is None or parsed.code is None):
        raise SchemaError("a new action needs 'name', 'supported_triggers' and 'code'")
    return parsed


def _trigger_field(data: dict[str, Any]) -> str | None:
    supported = _objects(data, "supported_triggers", limit=1)
    single = _str(data, "trigger", 40)
    if supported is not None and single is not None:
        raise SchemaError("send 'supported_triggers' or 'trigger', not both")
    if supported is None:
        return _known_trigger(single) if single else None
    if len(supported) != 1:
        raise SchemaError("'supported_triggers' holds exactly one trigger")
    _only(supported[0], {"id", "version"}, "supported_triggers")
    version = _str(supported[0], "version", 8)
    if version not in (None, TRIGGER_VERSION):
        raise SchemaError(f"trigger version {version!r} is not supported; use {TRIGGER_VERSION!r}")
    return _known_trigger(_str(supported[0], "id", 40))


def _known_trigger(trigger_id: str | None) -> str:
    if trigger_id not in triggers.TRIGGERS:
        raise SchemaError(f"unknown trigger {trigger_id!r}; one of: {', '.join(triggers.TRIGGERS)}")
    return trigger_id


def _secret(item: dict[str, Any], create: bool) -> SecretInput:
    _only(item, {"name", "value"}, "secrets")
    name = _str(item, "name", 128)
    value = item.get("value")
    if name is None:
        raise SchemaError("each secret needs a 'name'")
    if value is not None and not isinstance(value, str):
        raise SchemaError("a secret 'value' must be a string")
    if create and value is None:
        raise SchemaError(f"secret {name!r} needs a 'value'")
    return SecretInput(name, value)


@dataclass(frozen=True)
class Ref:
    type: str
    value: str


def ref(data: Any) -> Ref:
    if not isinstance(data, dict):
        raise SchemaError("'ref' must be an object {type, value}")
    _only(data, {"type", "value"}, "ref")
    kind, value = _str(data, "type", 32), _str(data, "value", 128)
    if kind not in REF_TYPES or value is None:
        raise SchemaError(f"'ref' is {{type, value}} with type one of {', '.join(REF_TYPES)}")
    return Ref(kind, value)


@dataclass(frozen=True)
class BindingInput:
    ref: Ref
    position: int | None = None
    allowed_to_fail: bool | None = None


def binding_list(data: dict[str, Any]) -> list[BindingInput]:
    """PATCH .../bindings: Auth0's whole-list replace, in order."""
    _only(data, {"bindings"})
    items = _objects(data, "bindings", limit=MAX_LIST)
    if items is None:
        raise SchemaError("'bindings' is required (an empty list unbinds everything)")
    out = []
    for item in items:
        _only(item, {"ref", "display_name", "allowed_to_fail", "secrets"}, "bindings")
        if item.get("secrets"):
            raise SchemaError("secrets belong to the action, not to a binding")
        _str(item, "display_name", 128)
        out.append(BindingInput(ref(item.get("ref")), None, _bool(item, "allowed_to_fail")))
    return out


def binding_insert(data: dict[str, Any]) -> BindingInput:
    """POST .../bindings: one binding, by ``ref`` or ``action`` (an id or a name)."""
    _only(data, {"ref", "action", "position", "allowed_to_fail", "display_name"})
    _str(data, "display_name", 128)
    if ("ref" in data) == ("action" in data):
        raise SchemaError("name the action with 'ref' or 'action' (one of them)")
    target = ref(data["ref"]) if "ref" in data else Ref("action", _str(data, "action", 128) or "")
    return BindingInput(target, _int(data, "position", 0, 10_000), _bool(data, "allowed_to_fail"))


def binding_update(data: dict[str, Any]) -> BindingInput:
    """PATCH .../bindings/{id}: move it and/or change allowed_to_fail."""
    _only(data, {"position", "allowed_to_fail"})
    if not data:
        raise SchemaError("send 'position' and/or 'allowed_to_fail'")
    return BindingInput(
        Ref("-", "-"), _int(data, "position", 0, 10_000), _bool(data, "allowed_to_fail")
    )


def test_input(data: dict[str, Any]) -> tuple[dict[str, Any] | None, int | None]:
    """POST .../test: ``{payload}`` (Auth0) is the event; ``version`` tests a deployed one."""
    _only(data, {"payload", "version"})
    payload = data.get("payload")
    if payload is not None and not isinstance(payload, dict):
        raise SchemaError("'payload' must be an object (the event)")
    return payload, _int(data, "version", 1, 1_000_000)


def rollback_input(data: dict[str, Any]) -> bool:
    _only(data, {"update_draft"})
    return bool(_bool(data, "update_draft"))


# ---------------------------------------------------------------------------------- outputs
def iso(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def dependency(line: str) -> dict[str, str]:
    match = _SPEC.search(line)
    if match is None:
        return {"name": line, "version": "latest"}
    name, spec = line[: match.start()], line[match.start() :]
    return {"name": name, "version": spec[2:] if spec.startswith("==") else spec}


def _triggers(trigger_id: str) -> list[dict[str, str]]:
    return [{"id": trigger_id, "version": TRIGGER_VERSION}]


def version_json(version: ActionVersion, action: Action) -> dict[str, Any]:
    return {
        "id": version.id,
        "action_id": action.id,
        "number": version.number,
        "code": version.code,
        "dependencies": [dependency(d) for d in version.dependencies],
        "runtime": RUNTIME,
        "status": version.build_status,  # Auth0's: building, built or failed here
        "errors": _build_errors(version),
        "deployed": version.number == action.live_version,
        "supported_triggers": _triggers(action.trigger),
        "created_by": version.created_by,
        "created_at": iso(version.created_at),
        "updated_at": iso(version.created_at),
    }


def _build_errors(version: ActionVersion) -> list[dict[str, str]]:
    """Auth0's ``errors`` of a version: why its build failed, with pip's output tail."""
    if version.build_status != "failed":
        return []
    msg = "\n".join(p for p in (version.build_error, version.build_output) if p)
    return [{"id": "dependency_install_failed", "msg": msg, "url": ""}]


def action_json(
    action: Action,
    secrets: list[tuple[str, int]],
    live: ActionVersion | None,
    status: str = "built",
) -> dict[str, Any]:
    """``status``: the build of the latest deployment (Auth0 builds the draft instead)."""
    return {
        "id": action.id,
        "name": action.name,
        "supported_triggers": _triggers(action.trigger),
        "code": action.code,
        "dependencies": [dependency(d) for d in action.dependencies],
        "runtime": RUNTIME,
        "status": status,
        "secrets": [{"name": n, "updated_at": iso(t)} for n, t in secrets],
        "allowed_hosts": list(action.allowed_hosts),
        "configuration": dict(action.configuration),
        "timeout_ms": action.timeout_ms,
        "deployed_version": version_json(live, action) if live else None,
        "all_changes_deployed": live is not None
        and live.code == action.code
        and list(live.dependencies) == list(action.dependencies),
        "created_at": iso(action.created_at),
        "updated_at": iso(action.updated_at),
    }


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
            "supported_triggers": _triggers(action.trigger),
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
