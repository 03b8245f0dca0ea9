"""The Actions marketplace (issue 4): reviewed plugins under ``plugins/actions/<slug>/``.

A plugin is a manifest (``manifest.toml``: trigger, configuration and secrets schema, egress),
its code, a README and sample events with the commands they must produce. ``idp marketplace
install`` turns one into an ordinary action: the operator's ``--config`` is validated against
the manifest and becomes ``event.configuration``, ``--secret`` values are stored encrypted like
any action secret, and the allow-list of ``api.http`` is derived from the manifest's egress
rule (never typed by hand), so a plugin can reach only the hosts its configuration names.

This is the service (no command line here): ``idp/cli/marketplace.py`` holds the commands.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.actions import service, triggers
from idp.actions.models import Action, ActionVersion
from idp.core.crypto import SecretBox

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
TYPES = ("string", "list", "bool")
TRUE, FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0", ""}
MANIFEST_KEYS = {"slug", "title", "version", "kind", "trigger", "description", "code",
                 "timeout_ms", "dependencies", "config", "secrets", "egress"}  # fmt: skip
CONFIG_KEYS = {"name", "type", "required", "default", "description", "choices"}
SECRET_KEYS = {"name", "description", "required"}
EGRESS_KEYS = {"hosts", "from_config"}
ActionError = service.ActionError


def root() -> Path:
    """``IDP_MARKETPLACE_DIR``, else the ``plugins/actions`` folder shipped next to ``idp``."""
    configured = os.environ.get("IDP_MARKETPLACE_DIR")
    return (
        Path(configured) if configured else Path(__file__).resolve().parents[2] / "plugins/actions"
    )


@dataclass(frozen=True)
class ConfigField:
    name: str
    type: str
    required: bool = False
    default: Any = None
    description: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecretField:
    name: str
    description: str = ""
    required: bool = True


@dataclass(frozen=True)
class Plugin:
    slug: str
    title: str
    version: str
    trigger: str
    description: str
    path: Path
    code: str
    timeout_ms: int | None = None
    dependencies: tuple[str, ...] = ()
    config: tuple[ConfigField, ...] = ()
    secrets: tuple[SecretField, ...] = ()
    egress_hosts: tuple[str, ...] = ()
    egress_from_config: tuple[str, ...] = ()
    cases: tuple[Path, ...] = field(default_factory=tuple)


def _keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise ActionError(f"{where}: unknown keys {sorted(unknown)}")


def load(path: Path) -> Plugin:
    """Read and check one plugin folder; a bad manifest is an error, never half a plugin."""
    where = f"{path.name}/manifest.toml"
    try:
        data = tomllib.loads((path / "manifest.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ActionError(f"{where}: {exc}") from None
    _keys(data, MANIFEST_KEYS, where)
    if data.get("kind") != "action":
        raise ActionError(f'{where}: kind must be "action"')
    if data.get("slug") != path.name or not SLUG.fullmatch(path.name):
        raise ActionError(f"{where}: slug must be the folder name, lowercase letters/digits/-")
    for key in ("title", "version", "trigger", "description"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ActionError(f"{where}: {key} is a required string")
    try:
        trigger = triggers.get(data["trigger"])
    except ValueError as exc:
        raise ActionError(f"{where}: {exc}") from None
    config = tuple(_config_field(entry, where) for entry in data.get("config", []))
    secrets = []
    for entry in data.get("secrets", []):
        _keys(entry, SECRET_KEYS, where)
        if not service.SECRET_NAME.fullmatch(str(entry.get("name", ""))):
            raise ActionError(f"{where}: secret name {entry.get('name')!r} is not a valid name")
        secrets.append(SecretField(entry["name"], entry.get("description", ""),
                                   bool(entry.get("required", True))))  # fmt: skip
    egress = data.get("egress", {})
    _keys(egress, EGRESS_KEYS, where)
    names = {c.name: c for c in config}
    for name in egress.get("from_config", []):
        if names.get(name) is None or names[name].type != "string":
            raise ActionError(f"{where}: egress.from_config names {name!r}, not a string config")
    code_name = str(data.get("code", "action.py"))
    if Path(code_name).name != code_name:
        raise ActionError(f"{where}: code is a file name in the plugin's folder")
    try:
        code = (path / code_name).read_text()
    except OSError as exc:
        raise ActionError(f"{where}: the code cannot be read: {exc.strerror}") from None
    service.check_code(code, trigger.id, service.Limits())
    return Plugin(
        slug=data["slug"], title=data["title"], version=data["version"], trigger=trigger.id,
        description=data["description"].strip(), path=path, code=code,
        timeout_ms=data.get("timeout_ms"), dependencies=tuple(data.get("dependencies", [])),
        config=config, secrets=tuple(secrets), egress_hosts=tuple(egress.get("hosts", [])),
        egress_from_config=tuple(egress.get("from_config", [])),
        cases=tuple(sorted((path / "tests").glob("*.json"))),
    )  # fmt: skip


def _config_field(entry: dict[str, Any], where: str) -> ConfigField:
    _keys(entry, CONFIG_KEYS, where)
    name, kind = entry.get("name"), entry.get("type")
    if not isinstance(name, str) or not service.SECRET_NAME.fullmatch(name):
        raise ActionError(f"{where}: config name {name!r} is not a valid name")
    if kind not in TYPES:
        raise ActionError(f"{where}: config {name}: type is one of {', '.join(TYPES)}")
    item = ConfigField(name, kind, bool(entry.get("required", False)), None,
                       entry.get("description", ""), tuple(entry.get("choices", ())))  # fmt: skip
    if "default" in entry:
        # The default passes the same checks as an operator's value.
        item = ConfigField(**{**item.__dict__, "default": _coerce(item, entry["default"])})
    return item


def catalog() -> list[Plugin]:
    base = root()
    if not base.is_dir():
        raise ActionError(f"no marketplace folder at {base} (set IDP_MARKETPLACE_DIR)")
    return [load(p) for p in sorted(base.iterdir()) if (p / "manifest.toml").is_file()]


def get(slug: str) -> Plugin:
    path = root() / slug
    if not SLUG.fullmatch(slug) or not (path / "manifest.toml").is_file():
        raise service.NotFound(f"no marketplace plugin {slug!r} (see `idp marketplace list`)")
    return load(path)


def _coerce(item: ConfigField, value: Any) -> Any:
    """A value from the command line (text) or a JSON/TOML file (typed) into the field's type.
    A list given as text is comma-separated: ``--config fields=user.email,client.client_id``."""
    if item.type == "bool":
        if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
            value = value.strip().lower() in TRUE
        if not isinstance(value, bool):
            raise ActionError(f"{item.name} is true or false, not {value!r}")
    elif item.type == "list":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ActionError(f"{item.name} is a list of strings")
    elif not isinstance(value, str):
        raise ActionError(f"{item.name} is a string, not {value!r}")
    if item.choices:
        for choice in value if isinstance(value, list) else [value]:
            if choice not in item.choices:
                raise ActionError(
                    f"{item.name}: {choice!r} is not one of {', '.join(item.choices)}"
                )
    return value


def configure(plugin: Plugin, given: dict[str, Any]) -> dict[str, Any]:
    """The configuration the action gets: given values checked and typed, defaults filled in."""
    fields = {c.name: c for c in plugin.config}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ActionError(f"{plugin.slug} has no setting {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for item in plugin.config:
        if item.name in given:
            out[item.name] = _coerce(item, given[item.name])
        elif item.default is not None:
            out[item.name] = item.default
        else:  # every setting is present, so the code never meets a missing key
            out[item.name] = {"string": "", "list": [], "bool": False}[item.type]
        if item.required and out[item.name] in ("", []):
            raise ActionError(f"{plugin.slug} needs --config {item.name}=...")
    return out


def allowed_hosts(plugin: Plugin, configuration: dict[str, Any]) -> list[str]:
    """The egress rule applied: the manifest's fixed hosts, plus ``host[:port]`` of each URL
    setting it names. Only absolute http(s) URLs without credentials are accepted; the SSRF
    guard still refuses plain http and private addresses at run time (idp/core/http.py)."""
    hosts = list(plugin.egress_hosts)
    for name in plugin.egress_from_config:
        url = configuration.get(name)
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ActionError(f"{name} must be an absolute https URL")
        if parts.username is not None or parts.password is not None:
            raise ActionError(f"{name} must not carry credentials (use a secret)")
        try:
            port = parts.port
        except ValueError:
            raise ActionError(f"{name} has an invalid port") from None
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        hosts.append(f"{host}:{port}" if port else host)
    return sorted(set(hosts))


def install(
    session: Session,
    limits: service.Limits,
    box: SecretBox,
    deps_root: Path,
    plugin: Plugin,
    *,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    bind: bool = False,
    by: str = "marketplace",
) -> tuple[Action, ActionVersion]:
    """Create (or upgrade) the plugin's action, set its secrets, deploy, and bind if asked.

    Reinstalling over the same plugin keeps earlier settings and secrets that are not given
    again; an action of the same name that did not come from this plugin is never replaced.
    The caller commits, then bumps the generation stamp."""
    name = name or plugin.slug
    secrets = dict(secrets or {})
    existing = session.scalar(select(Action).where(Action.name == name))
    if existing is not None and existing.marketplace_slug != plugin.slug:
        raise ActionError(f"an action named {name!r} exists and is not {plugin.slug}: use --name")
    # An upgrade keeps the earlier settings the new manifest still has.
    known = {c.name for c in plugin.config}
    kept = {k: v for k, v in (existing.configuration if existing else {}).items() if k in known}
    given = {**kept, **(config or {})}
    configuration = configure(plugin, given)
    declared = {s.name for s in plugin.secrets}
    unknown = sorted(set(secrets) - declared)
    if unknown:
        raise ActionError(f"{plugin.slug} has no secret {', '.join(unknown)}")
    have = set(service.secret_names(session, existing)) if existing is not None else set()
    for item in plugin.secrets:
        if item.required and not secrets.get(item.name) and item.name not in have:
            raise ActionError(f"{plugin.slug} needs --secret {item.name}=...")
    action = service.save_draft(
        session, limits, name, trigger=plugin.trigger, code=plugin.code,
        dependencies=list(plugin.dependencies), allowed_hosts=allowed_hosts(plugin, configuration),
        configuration=configuration, timeout_ms=plugin.timeout_ms, marketplace_slug=plugin.slug,
    )  # fmt: skip
    for key, value in secrets.items():
        service.set_secret(session, box, limits, action, key, value)
    version = service.deploy(
        session, limits, action, deps_root, f"{by} ({plugin.slug} {plugin.version})"
    )
    if bind and not any(
        b.action_id == action.id for b in service.bindings(session, plugin.trigger)
    ):
        service.bind(session, limits, action, plugin.trigger)
    return action, version
