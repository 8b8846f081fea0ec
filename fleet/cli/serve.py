"""`aedfleet serve`: the console and its JSON API under waitress (a production WSGI server)."""

from __future__ import annotations

import click

from fleet.cli import Context, pass_context
from fleet.cli.alarm import _host_port


@click.command()
@click.option("--http", "http", default=None, help="host:port (default: the `http` setting).")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
@pass_context
def serve(ctx: Context, http: str | None, threads: int) -> None:
    """Serve the console and the JSON API until Ctrl-C (the alarm core runs in `aedfleet alarm`,
    which serves the same application)."""
    import waitress

    from fleet.coverage.live import LiveCoverage
    from web import create_app

    settings = ctx.settings
    host, port = _host_port(http or settings.http)
    app = create_app(ctx.engine, settings=settings, coverage=LiveCoverage(ctx.engine, settings))
    server = waitress.create_server(app, host=host, port=port, threads=threads)
    click.echo(f"aedfleet web on http://{host}:{server.effective_port}",  # type: ignore[union-attr]
               err=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
