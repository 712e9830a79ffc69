"""``imstags secrets rotate``: re-encrypt the stored AK/SK secrets under a new key."""

from __future__ import annotations

import click

from imstags.cli.common import Context, pass_context, services_of
from imstags.domain.secrets import generate_key


@click.group()
def secrets() -> None:
    """The key that encrypts stored AK/SK secrets."""


@secrets.command("rotate")
@click.option(
    "--new-key",
    envvar="IMSTAGS_NEW_SECRET_KEY",
    help="The Fernet key to encrypt under from now on (default: a new one, printed).",
)
@pass_context
def rotate(ctx: Context, new_key: str | None) -> None:
    """Re-encrypt every stored secret under a new key, in one transaction.

    The current key (IMSTAGS_SECRET_KEY, or secret.key in the data directory; "new,old" lists
    both while hosts roll over) opens them. With a key file, the file is replaced by the new
    key (the old one is kept as secret.key.old); with IMSTAGS_SECRET_KEY, set it to the new
    key on every host and restart them (docs/deploy.md gives the rolling order).
    """
    chosen = new_key or generate_key()
    try:
        with services_of(ctx) as services:
            done = services.accounts.rotate_secret_key(chosen)
    except ValueError as exc:  # a secret the current key cannot open: nothing was changed
        raise click.ClickException(f"{exc} Nothing was changed.") from exc
    click.echo(f"re-encrypted {done.secrets} secrets under the new key")
    if done.key_file is not None:
        click.echo(f"the new key is in {done.key_file}; restart the service to use it")
    elif new_key is None:
        click.echo(f"new key (set IMSTAGS_SECRET_KEY to it on every host): {chosen}")
    else:
        click.echo("set IMSTAGS_SECRET_KEY to the new key on every host and restart them")
