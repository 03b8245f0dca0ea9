"""The ``idp`` command line: ``idp --instance DIR [--json] <command> ...``.

This is the one place that composes the command modules into the ``idp`` group; each module
holds one domain's commands and imports only :mod:`idp.cli.context` and its own domain's
services (inside the commands, so ``idp --help`` builds no application). ``--json`` is taken
before the command (here) or after it (by every command, see :mod:`idp.cli.context`).

Bad arguments get a one-line error and a non-zero exit, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from idp.cli import (
    actions,
    admins,
    apis,
    caches,
    clients,
    connections,
    consents,
    demo,
    dev,
    instance,
    keys,
    log_streams,
    logs,
    marketplace,
    mfa,
    mfa_mds,
    mfa_vapid,
    registration,
    summaries,
    users,
)
from idp.cli.context import JSON_HELP, Ctx


@click.group()
@click.option(
    "--instance",
    "instance_dir",
    envvar="IDP_INSTANCE",
    default="instance",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Instance folder.",
)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def main(ctx: click.Context, instance_dir: Path, as_json: bool) -> None:
    """idp: OpenID Connect / OAuth 2.1 authorization server."""
    ctx.obj = Ctx(instance_dir.resolve(), as_json)


for _command in (
    instance.init,
    instance.serve,
    keys.keys,
    clients.clients,
    connections.connections,
    apis.apis,
    apis.client_grants,
    users.users,
    consents.consents,
    logs.logs,
    log_streams.log_streams,
    demo.demo,
    demo.demo_app,
    dev.dev,
    actions.actions,
    mfa.mfa,
    marketplace.marketplace,
    admins.admins,
    caches.caches,
):
    main.add_command(_command)

clients.clients.add_command(registration.initial_token)  # idp clients initial-token ...
mfa.mfa.add_command(mfa_mds.mds)  # idp mfa mds import|status
mfa.mfa.add_command(mfa_mds.attestation_policy)  # idp mfa attestation [POLICY] [--allow]
mfa.mfa.add_command(mfa_vapid.vapid)  # idp mfa vapid show

summaries.apply(main)  # one line per command in every --help, examples for the common ones
