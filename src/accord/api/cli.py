"""``accord serve``: run the API with uvicorn.

Registered in the main group by accord/cli.py; ``python -m accord.cli serve`` runs it without the
console script.
"""

from __future__ import annotations

import os
from pathlib import Path

import click



@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes. DuckDB allows one writing process, so with a DuckDB store this is "
                   "always 1; with PostgreSQL the default is the number of CPUs.")
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="Log every request.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int | None, access_log: bool) -> None:
    """Serve the HTTP API (OpenAPI spec at /openapi.json, docs at /docs)."""
    import uvicorn

    from accord.api.app import CONFIG_ENV, create_app
    from accord.api.auth import configured_keys, sync_keys
    from accord.api.messages import now_utc
    from accord.config import load_config
    from accord.store import open_store

    config_path = Path((ctx.find_root().obj or {}).get("config", "accord.yaml")).resolve()
    cfg = load_config(config_path)
    keys = configured_keys(cfg.api.model_extra)  # bad api.keys: fail before binding the port
    store_url = cfg.store_url()
    if store_url.startswith("duckdb:"):
        if workers and workers > 1:
            click.echo(f"note: a DuckDB store allows one writing process; serving with 1 worker, not {workers}. "
                       "Use a PostgreSQL store for several.", err=True)
        workers = 1
    else:
        workers = workers or os.cpu_count() or 1
    # Migrate and sync the keys once here, so that worker processes do not race to.
    with open_store(store_url) as store:
        sync_keys(store, keys, now_utc())
    click.echo(f"accord API on http://{host}:{port} (docs /docs), {workers} worker(s), store {cfg.store.split(':')[0]}",
               err=True)
    if workers == 1:
        uvicorn.run(create_app(cfg), host=host, port=port, access_log=access_log, log_level="info")
    else:
        os.environ[CONFIG_ENV] = str(config_path)
        # A worker imports the whole app before it answers the supervisor's health check: on a busy
        # machine that takes longer than uvicorn's 5 s default, and the worker would be killed.
        uvicorn.run("accord.api.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
                    access_log=access_log, log_level="info", timeout_worker_healthcheck=120)
