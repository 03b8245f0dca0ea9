"""The schemas of ``/api/v2/actions`` (actions, versions, executions, triggers and bindings),
shared by ``actions.py`` and ``bindings.py``: the pydantic models the route registry validates
bodies with and serialises answers through (Auth0 Management API v2 shapes), the JSON of each
row, and the plain inputs ``idp.management.service`` takes.

Outputs never carry a secret value: secrets are listed by name and update time only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from idp.actions import triggers
from idp.actions.models import Action, ActionVersion
from idp.management.validation import Body, Out, Query

RUNTIME = "python3"
TRIGGER_VERSION = "v1"
_SPEC = re.compile(r"[<>=!~]")
MAX_LIST = 100  # the configured per-trigger limit is checked by the service

if TYPE_CHECKING:
    TriggerId = str
else:
    TriggerId = Literal[tuple(triggers.TRIGGERS)]
Text128 = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Position = Annotated[int, Field(ge=0, le=10_000, description="0-based; the end by default.")]


# ---------------------------------------------------------------------- the service's inputs
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


@dataclass(frozen=True)
class Ref:
    type: str
    value: str


@dataclass(frozen=True)
class BindingInput:
    ref: Ref
    position: int | None = None
    allowed_to_fail: bool | None = None


# ---------------------------------------------------------------------------------- bodies
class TriggerRef(Body):
    id: TriggerId
    version: Literal["v1"] = "v1"


class DependencyIn(Body):
    """A PyPI package: ``version`` is an exact version, a specifier (``>=2``) or ``latest``."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    version: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "latest"
    registry_url: Literal[""] | None = Field(None, description="Only the default index.")

    def requirement(self) -> str:
        """A pip requirement line (``latest``: unpinned)."""
        if self.version == "latest":
            return self.name
        return self.name + (self.version if _SPEC.match(self.version) else f"=={self.version}")


class SecretIn(Body):
    name: Text128
    value: str | None = Field(None, description="Write-only.")


class _ActionFields(Body):
    name: Text128 | None = None
    supported_triggers: list[TriggerRef] | None = Field(None, min_length=1, max_length=1)
    trigger: TriggerId | None = Field(None, description="idp's short form of the above.")
    code: str | None = None
    dependencies: list[DependencyIn] | None = Field(None, max_length=100)
    secrets: list[SecretIn] | None = Field(None, max_length=100)
    runtime: Literal["python3", "python"] | None = Field(None, description="Actions are Python.")
    allowed_hosts: list[Annotated[str, StringConstraints(max_length=255)]] | None = Field(
        None, max_length=100
    )
    configuration: dict[str, Any] | None = None
    timeout_ms: int | None = Field(None, ge=100, le=20_000)

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        if self.supported_triggers is not None and self.trigger is not None:
            raise ValueError("send 'supported_triggers' or 'trigger', not both")
        names = [s.name for s in self.secrets or []]
        if len(set(names)) != len(names):
            raise ValueError("a secret name appears twice")
        return self

    def to_input(self) -> ActionInput:
        trigger = self.supported_triggers[0].id if self.supported_triggers else self.trigger
        return ActionInput(
            name=self.name, trigger=trigger, code=self.code,
            dependencies=None if self.dependencies is None else
            [d.requirement() for d in self.dependencies],
            secrets=None if self.secrets is None else
            [SecretInput(s.name, s.value) for s in self.secrets],
            allowed_hosts=self.allowed_hosts, configuration=self.configuration,
            timeout_ms=self.timeout_ms,
        )  # fmt: skip


class ActionCreate(_ActionFields):
    """A new draft: ``name``, ``code`` and its trigger (``supported_triggers`` or
    ``trigger``); each secret with its ``value``."""

    name: Text128
    code: str

    @model_validator(mode="after")
    def _complete(self) -> Any:
        if self.supported_triggers is None and self.trigger is None:
            raise ValueError("a new action needs 'supported_triggers' (or 'trigger')")
        for secret in self.secrets or []:
            if secret.value is None:
                raise ValueError(f"secret {secret.name!r} needs a 'value'")
        return self


class ActionUpdate(_ActionFields):
    """The draft's fields sent change; ``secrets`` is the whole list (a listed secret without
    ``value`` keeps its stored value, an unlisted one is deleted)."""


class RollbackBody(Body):
    update_draft: bool = Field(False, description="Also copy the version into the draft.")


class Paging(Query):
    """Auth0's paging of actions, versions and bindings: ``{<items>, total, page, per_page}``."""

    page: int = Field(0, ge=0, le=1_000_000, description="Page index, 0-based.")
    per_page: int = Field(50, ge=1, le=100, description="Items per page, at most 100.")


# ---------------------------------------------------------------------------------- answers
class TriggerRefOut(Out):
    id: str
    version: str


class DependencyOut(Out):
    name: str
    version: str


class SecretOut(Out):
    name: str
    updated_at: str | None


class BuildError(Out):
    id: str
    msg: str
    url: str


class VersionOut(Out):
    id: str
    action_id: str
    number: int
    code: str
    dependencies: list[DependencyOut]
    runtime: str
    status: str = Field(description="building, built or failed.")
    errors: list[BuildError] = Field(description="Why the build failed, with pip's output.")
    deployed: bool
    supported_triggers: list[TriggerRefOut]
    created_by: str | None
    created_at: str | None
    updated_at: str | None


class ActionOut(Out):
    id: str
    name: str
    supported_triggers: list[TriggerRefOut]
    code: str
    dependencies: list[DependencyOut]
    runtime: str
    status: str = Field(description="The build of the latest deployment.")
    secrets: list[SecretOut] = Field(description="Names and update times, never values.")
    allowed_hosts: list[str]
    configuration: dict[str, Any]
    timeout_ms: int
    deployed_version: VersionOut | None
    all_changes_deployed: bool
    created_at: str | None
    updated_at: str | None


class ActionsPage(Out):
    actions: list[ActionOut]
    total: int
    page: int
    per_page: int


class VersionsPage(Out):
    versions: list[VersionOut]
    total: int
    page: int
    per_page: int


def page_of(key: str, rows: list[Any], query: Paging) -> dict[str, Any]:
    start = query.page * query.per_page
    return {key: rows[start : start + query.per_page], "total": len(rows), "page": query.page,
            "per_page": query.per_page}  # fmt: skip


# ---------------------------------------------------------------------------- rows to JSON
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


def trigger_refs(trigger_id: str) -> list[dict[str, str]]:
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
        "supported_triggers": trigger_refs(action.trigger),
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
        "supported_triggers": trigger_refs(action.trigger),
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
