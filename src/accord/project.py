"""`accord init`: a commented starter project that ingests as written."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from accord.errors import AccordError


def write_starter_project(directory: Path, force: bool = False) -> list[Path]:
    target = directory / "accord.yaml"
    if target.exists() and not force:
        raise AccordError(f"{target} already exists; pass --force to overwrite it")
    templates = resources.files("accord.templates")
    (directory / "data").mkdir(parents=True, exist_ok=True)
    target.write_text(templates.joinpath("accord.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    sample = directory / "data" / "customers.csv"
    written = [target]
    if not sample.exists() or force:
        sample.write_text(templates.joinpath("customers.csv").read_text(encoding="utf-8"), encoding="utf-8")
        written.append(sample)
    return written
