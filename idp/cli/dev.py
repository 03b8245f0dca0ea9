"""``idp dev ...``: development and benchmarking tools (issue 17, "Scale")."""

from __future__ import annotations

import click

from idp.cli.context import Command, Ctx, Group, pass_ctx


@click.group(cls=Group)
def dev() -> None:
    """Development tools: not for an instance with real users."""


@dev.command(cls=Command)
@click.option(
    "--users",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Seeded users in all (a later run adds the missing ones).",
)
@click.option(
    "--clients",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Seeded applications in all (one in ten a web app, the rest machine).",
)
@click.option(
    "--password",
    default=None,
    help="The password EVERY seeded user gets [default: seeded-user-password].",
)
@click.option(
    "--client-secret",
    default=None,
    help="The secret every seeded client gets [default: seeded-client-secret].",
)
@click.option(
    "--force", is_flag=True, help="Seed even though the instance has real users or clients."
)
@pass_ctx
def seed(
    ctx: Ctx, users: int, clients: int, password: str | None, client_secret: str | None,
    force: bool,
) -> None:  # fmt: skip
    """Fill the instance with USERS users and CLIENTS applications, in bulk (minutes for a
    million). Every seeded user has the same password and every seeded client the same secret
    (one hash computed once): development and benchmark data only. Refused on an instance that
    has users or clients it did not make, unless --force."""
    from idp.dev import seed as seeding
    from idp.extensions import services

    def progress(line: str) -> None:
        if not ctx.as_json:
            click.echo(line, err=True)

    with ctx.session() as s:
        svc = services()
        report = seeding.seed(
            s, svc.passwords, svc.box, users=users, clients=clients, force=force,
            password=password or seeding.DEFAULT_PASSWORD,
            client_secret=client_secret or seeding.DEFAULT_CLIENT_SECRET, progress=progress,
        )  # fmt: skip
    data = report.as_dict()
    ctx.emit(data, lambda: _describe(data))


def _describe(data: dict[str, object]) -> str:
    return (
        f"seeded users: {data['users']:,} ({data['users_added']:,} added), clients: "
        f"{data['clients']:,} ({data['clients_added']:,} added) in {data['seconds']:.1f} s, "
        f"{data['rows_per_second']:,} rows/s ({data['method']})\n"
        f"every seeded user's password: {data['password']}\n"
        f"every seeded client's secret: {data['client_secret']} (API {data['api']})\n"
        f"users, e.g.: {', '.join(data['examples'])}"  # type: ignore[arg-type]
    )
