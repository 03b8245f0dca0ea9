"""What every ``idp`` command shares: the :class:`Ctx` (instance folder, ``--json``), its output,
the translation of idp's errors into one-line ``Error:`` messages, and the app session.

This module imports no domain code at module level: each command module imports it, and it
must stay importable without building the application (``idp --help`` stays fast, and the
command modules never import one another through it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from idp.core.errors import IdpError

JSON_HELP = "Machine-readable output."


class Ctx:
    """The state the ``idp`` group hands every command: the instance folder and the format."""

    def __init__(self, instance: Path, as_json: bool) -> None:
        self.instance = instance
        self.as_json = as_json

    def emit(self, data: Any, text: str | Callable[[], str]) -> None:
        """Print ``data`` as JSON with ``--json``, else ``text`` (built only when needed)."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        else:
            click.echo(text() if callable(text) else text)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """An app context and a session whose work commits on success."""
        from idp import create_app
        from idp.extensions import db

        try:
            app = create_app(instance_path=self.instance)
        except (RuntimeError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        with app.app_context():
            # what this command changes that servers cache: told to them after the commit
            app.extensions["idp.versions"].watch(db.session)  # idp.core.versions
            try:
                yield db.session
                db.session.commit()
                _servers_told(app.extensions["idp.versions"])
            except IdpError as exc:
                db.session.rollback()
                raise click.ClickException(str(exc)) from None
            except OperationalError as exc:
                raise click.ClickException(f"database unavailable: {exc.orig}") from None
            finally:
                db.session.close()
                db.engine.dispose()  # a command leaves no pooled connection behind


pass_ctx = click.make_pass_decorator(Ctx)


def _servers_told(versions: Any, tries: int = 3) -> None:
    """After a commit, the running servers must learn of what changed (idp.core.versions). A
    bump that did not reach Redis (or the stamp folder) is retried for a few seconds, then the
    command fails saying so: a server that saw no outage would keep what it cached (a client's
    old secret) for up to CLIENT_CACHE_MAX_SECONDS. Not where no server trusts the versions
    (``Versions.missable``: stamp files with PostgreSQL, a read-only file system): there the
    caches keep to their short lifetimes, the supported way such an instance runs."""
    import time

    for attempt in range(tries):
        if not versions.missable():  # none left, or none a server would trust (read-only stamps)
            return
        if attempt:
            time.sleep(1.0)
        for family in sorted(versions.pending()):
            versions.bump(family)
    if versions.missable():
        raise click.ClickException(
            "the change is saved, but the running servers were not told of it (Redis or the "
            "instance folder's version stamps unreachable): they may keep what they cached for "
            "up to CLIENT_CACHE_MAX_SECONDS. Run `idp caches flush` once it answers."
        )


@contextmanager
def translate(*errors: type[BaseException]) -> Iterator[None]:
    """Turn the given domain errors into a one-line ``Error: ...`` (their text is user-safe),
    for errors outside idp's :class:`IdpError` hierarchy that ``Ctx.session`` translates."""
    try:
        yield
    except errors as exc:
        raise click.ClickException(str(exc)) from None


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    """``rows`` as plain text, one line each with the ``cols`` values; ``(none)`` if empty."""
    if not rows:
        return "(none)"
    return "\n".join("  ".join(str(r.get(c, "")) for c in cols) for r in rows)


# --- --json after the command's name -------------------------------------------------------
# ``idp --json clients list`` sets the format on the root group; the same flag after the
# subcommand (``idp clients list --json``) is an option every command and subgroup gets from its
# class, and sets it on the Ctx the root group already built (parent callbacks run before a
# subcommand parses its own arguments).


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    obj = ctx.find_object(Ctx)
    if value and obj is not None:
        obj.as_json = True


def _json_option() -> click.Option:
    return click.Option(
        ["--json"], is_flag=True, expose_value=False, callback=_set_json, help=JSON_HELP
    )


class Command(click.Command):
    """An ``idp`` command: takes ``--json`` among its own options too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(_json_option())


class Group(click.Group):
    """A group of ``idp`` commands: its commands are :class:`Command`, its subgroups are
    :class:`Group`, and it takes ``--json`` before its subcommand too."""

    command_class = Command
    group_class = type

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(_json_option())
