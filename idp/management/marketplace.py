"""``/api/v2/marketplace/plugins``: the reviewed plugins of ``plugins/actions/`` and their
installation as ordinary actions (issue 15: the console's marketplace pages are built on it).

Auth0's Management API has no marketplace resource, so these routes are idp's own, shaped like
the actions routes beside them. A plugin is answered with its manifest's schema (each setting's
name, type, whether it is required, default, choices and description; each secret's name), so
that a client can generate a form from it. ``POST .../{slug}/install`` does what ``idp
marketplace install`` does, through the same service (:func:`idp.actions.marketplace.install`):
the settings checked against the manifest, the secrets stored encrypted (never answered), a new
version deployed and, with ``bind``, the action appended to its trigger's chain. Installing
again over the same plugin upgrades it, keeping settings and secrets not given again.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from sqlalchemy import select

from idp.actions import build
from idp.actions import marketplace as plugins
from idp.actions import service as actions
from idp.actions.models import Action
from idp.extensions import db, services
from idp.management import service as management
from idp.management.base import operator
from idp.management.bindings import BindingOut, binding_json
from idp.management.registry import route
from idp.management.schemas import ActionOut, Text128, VersionOut, action_json, version_json
from idp.management.validation import Body, Out

TAG = "marketplace"
SettingValue = (
    Annotated[str, StringConstraints(max_length=4096)]
    | bool
    | int
    | list[Annotated[str, StringConstraints(max_length=1024)]]
)
SecretValue = Annotated[str, StringConstraints(max_length=4096)]
# The service words its refusals for the command line (``needs --config url=...``).
_CLI_REQUIRED = re.compile(r"needs --(config|secret) (\w+)=\.\.\.")


# ---------------------------------------------------------------------------------- schemas
class SettingOut(Out):
    name: str
    type: str = Field(description="string, list or bool (the manifest's type).")
    required: bool
    default: Any = Field(None, description="Used when the setting is not given.")
    choices: list[str] = Field(description="The allowed values (each item's, for a list).")
    description: str


class SecretFieldOut(Out):
    name: str
    required: bool
    description: str


class EgressOut(Out):
    hosts: list[str] = Field(description="Fixed hosts api.http may reach.")
    from_config: list[str] = Field(description="URL settings whose host api.http may reach.")


class InstalledOut(Out):
    id: str
    name: str


class PluginOut(Out):
    slug: str
    title: str
    version: str
    trigger_id: str
    description: str
    configuration: list[SettingOut] = Field(description="The manifest's settings, in order.")
    secrets: list[SecretFieldOut] = Field(description="The secrets it takes (write-only).")
    egress: EgressOut
    installed: list[InstalledOut] = Field(description="The actions installed from it.")


class PluginsOut(Out):
    plugins: list[PluginOut]


class InstallBody(Body):
    """``{"config": {name: value}, "secrets": {name: value}, "bind": bool, "name"?: str}``. A
    list setting is a list of strings (or comma-separated text), a bool ``true``/``false``."""

    name: Text128 | None = Field(None, description="The action's name; the slug by default.")
    config: dict[str, SettingValue] = Field(default_factory=dict, max_length=100)
    secrets: dict[str, SecretValue] = Field(default_factory=dict, max_length=30)
    bind: bool = Field(False, description="Append it to its trigger's chain (if not there).")


class PluginRefOut(Out):
    slug: str
    version: str


class InstallOut(Out):
    action: ActionOut
    version: VersionOut = Field(description="The version deployed.")
    binding: BindingOut | None = Field(description="Its binding, when it is bound.")
    plugin: PluginRefOut


# ---------------------------------------------------------------------------------- answers
def plugin_json(plugin: plugins.Plugin, installed: list[Action]) -> dict[str, Any]:
    return {
        "slug": plugin.slug,
        "title": plugin.title,
        "version": plugin.version,
        "trigger_id": plugin.trigger,
        "description": plugin.description,
        "configuration": [
            {
                "name": c.name,
                "type": c.type,
                "required": c.required,
                "default": c.default,
                "choices": list(c.choices),
                "description": c.description,
            }
            for c in plugin.config
        ],
        "secrets": [
            {"name": s.name, "required": s.required, "description": s.description}
            for s in plugin.secrets
        ],
        "egress": {
            "hosts": list(plugin.egress_hosts),
            "from_config": list(plugin.egress_from_config),
        },
        "installed": [
            {"id": a.id, "name": a.name} for a in installed if a.marketplace_slug == plugin.slug
        ],
    }


def _installed() -> list[Action]:
    query = select(Action).where(Action.marketplace_slug.is_not(None)).order_by(Action.name)
    return list(db.session.scalars(query))


def _api_words(exc: actions.ActionError) -> actions.ActionError:
    """A missing required setting or secret, named as the body's property."""
    missing = _CLI_REQUIRED.search(str(exc))
    if missing is None:
        return exc
    where = "config" if missing.group(1) == "config" else "secrets"
    return actions.ActionError(
        f"Payload validation error: '{missing.group(2)} is required' on property "
        f"{where}.{missing.group(2)}."
    )


def _bump() -> None:
    """After the commit: workers reload the chain with the new version in place."""
    services().actions.bump()


# ---------------------------------------------------------------------------------- routes
@route("/marketplace/plugins", scope="read:actions", tag=TAG, summary="List plugins",
       response=PluginsOut)  # fmt: skip
def list_plugins() -> dict[str, Any]:
    """Every reviewed plugin with its manifest's settings and secrets, by slug."""
    installed = _installed()
    return {"plugins": [plugin_json(p, installed) for p in plugins.catalog()]}


@route("/marketplace/plugins/{slug}", scope="read:actions", tag=TAG, summary="Get a plugin",
       response=PluginOut)  # fmt: skip
def get_plugin(slug: str) -> dict[str, Any]:
    return plugin_json(plugins.get(slug), _installed())


@route("/marketplace/plugins/{slug}/install", "POST", scope="create:actions", tag=TAG,
       summary="Install a plugin", body=InstallBody, response=InstallOut, status=201,
       errors=(409,), after_commit=_bump)  # fmt: skip
def install_plugin(slug: str, body: InstallBody) -> dict[str, Any]:
    """Save the plugin's action with its settings and secrets, deploy it and, with ``bind``,
    append it to its trigger's chain: ``idp marketplace install SLUG --bind``'s service."""
    svc = services()
    plugin = plugins.get(slug)
    try:
        action, version = plugins.install(
            db.session, actions.Limits.from_config(svc.config), svc.box, svc.actions.deps_root,
            plugin, name=body.name, config=dict(body.config), secrets=dict(body.secrets),
            bind=body.bind, by=operator(),
        )  # fmt: skip
    except actions.NotBuilt:
        raise  # a 409 (idp.management.actions), not a 400
    except actions.ActionError as exc:
        raise _api_words(exc) from None
    db.session.flush()
    binding = next(
        (b for b in actions.bindings(db.session, plugin.trigger) if b.action_id == action.id),
        None,
    )
    latest = build.newest(db.session, action)
    return {
        "action": action_json(
            action,
            management.secret_rows(db.session, action),
            actions.live_version(db.session, action),
            latest.build_status if latest else build.BUILT,
        ),
        "version": version_json(version, action),
        "binding": binding_json(binding, action) if binding is not None else None,
        "plugin": {"slug": plugin.slug, "version": plugin.version},
    }
