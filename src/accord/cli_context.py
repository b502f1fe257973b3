"""What every area's command-line verbs share: the project they run on, its store, JSON output."""

from __future__ import annotations

import json
from typing import Any

import click

from accord.config import ProjectConfig, load_config
from accord.store.backend import Store


def project_config(ctx: click.Context) -> ProjectConfig:
    """The accord.yaml named by the root command's ``-c`` option (default ./accord.yaml)."""
    return load_config((ctx.find_root().obj or {}).get("config"))


def project_store(cfg: ProjectConfig) -> Store:
    """The project's store, migrated to the current schema."""
    from accord.store import open_store

    return open_store(cfg.store_url())


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
